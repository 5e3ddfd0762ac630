/* SPDX-License-Identifier: MIT */
/*
 * The rdmig wire protocol: versioned, length-prefixed binary messages,
 * little-endian. Encoding and decoding are pure functions (no I/O, no
 * session state): decode validates every field it can check on its own and
 * fails with a message; checks that need the session (does the layout match
 * ours, is this the pass we expect, does the MAC verify) are the caller's.
 *
 * Every message starts with a 16-byte header:
 *   u32 magic 'RDMG'  u16 version  u16 type  u32 length (header included)  u32 flags (0)
 *
 * The handshake (protocol 4), on the control connection:
 *   source -> HELLO      its offer: versions, capabilities, auth mode, nonce
 *   dest   -> CHALLENGE  the choice, its nonce and its proof of the key
 *   source -> AUTH       its proposal (page size, QPs, layout) and proof
 *   dest   -> HELLO_ACK  sealed: the layout accepted, rkeys, data QP token
 * Each proof is an HMAC-SHA256 under its own role's key (common/seal.h) of
 * the transcript: every byte of HELLO and CHALLENGE, then the connection's
 * binding (both addresses as 16-byte GIDs and both control QP numbers,
 * source first), and for the source's proof the CHALLENGE's proof and the
 * AUTH message before its own proof field. The destination registers
 * nothing and sends no layout until the source's proof checked out. Every
 * message after AUTH is sealed: a u64 sequence number and a 16-byte MAC
 * trail it, counted in the header's length (common/seal.h). Only an ERROR
 * during the handshake travels unsealed, and before the source proved the
 * key it says no more than "authentication failed".
 *
 * HELLO is frozen: whatever version a peer speaks, its first message has
 * this header and these first 48 payload bytes, so any version can read
 * any other's offer. A later version may append fields to HELLO (a reader
 * ignores what follows the 48 bytes, though the transcript covers all of
 * it) and may change every other message. Versions 2 and 3 sent a HELLO
 * whose first 4 payload bytes were also ver_min, ver_max: so even their
 * offer is read (hello.legacy), to name both ranges in the refusal.
 *
 * Payloads, field by field after the header (reserved fields are sent 0
 * and refused unless 0):
 *   CONNECT      u32 kind, u32 index, u64 token, u8 tag[16]                  32 bytes
 *   HELLO        u16 ver_min, u16 ver_max, u32 caps, u32 auth, u32 reserved,
 *                u8 nonce[32]                                                48 bytes (+ any)
 *   CHALLENGE    u16 version, u16 reserved, u32 caps, u32 auth, u32 reserved,
 *                u8 nonce[32], u8 proof[32]                                  80 bytes
 *   AUTH         u32 page_size, u32 nqps, u32 nregions, u32 flags            16 bytes
 *                then nregions x { u64 gpa, u64 len }, then u8 proof[32]    + 16 each + 32
 *   HELLO_ACK    u16 version, u16 reserved, u32 page_size, u32 nqps,
 *                u32 nregions, u64 token                                     24 bytes
 *                then nregions x { u64 gpa, u64 len, u64 addr, u32 rkey,
 *                u32 flags }                                                + 32 each
 *   PASS_END     u64 pass, u32 qp, u32 reserved, u64 writes, u64 bytes       32 bytes
 *   PASS_ACK     u64 pass, u64 bytes                                         16 bytes
 *   PROGRESS     u64 pass, u64 elapsed_ms                                    16 bytes
 *   COMPLETE(_ACK) u64 passes                                                 8 bytes
 *   ERROR        u32 code, u32 len, then len bytes of printable ASCII    8 + len bytes
 *   NOTICE       u64 pass, u32 region, u32 npages                            16 bytes
 *                then npages x u64 page (bit 63: zero it, else hash it)      + 8 each
 *   HASHES       u64 pass, u32 region, u32 npages, u64 first,
 *                u64 landed_zero[4], u32 nhashes, u32 reserved               64 bytes
 *                then nhashes x { u64 lo, u64 hi }                          + 16 each
 *   STATE_DESC   u32 nblobs, u32 reserved                                     8 bytes
 *                then nblobs x { u64 id, u64 len, u64 zero_pages, u32 nruns,
 *                u32 reserved, u64 hash_lo, u64 hash_hi }                   + 48 each
 *   STATE_ZERO   u32 blob, u32 nruns                                          8 bytes
 *                then nruns x { u64 first, u64 count } (pages)              + 16 each
 *   STATE_READY  u32 nblobs, u32 reserved                                     8 bytes
 *                then nblobs x { u64 addr, u32 rkey, u32 reserved }         + 16 each
 *   STATE_END    u32 nblobs, u32 reserved, u64 writes, u64 bytes             24 bytes
 *   STATE_ACK    u32 nblobs, u32 reserved, u64 bytes                         16 bytes
 * Device state (ctrl/blob.h), all on the control QP, after a pass: the
 * source's STATE_DESC describes every blob (its hash: keyed XXH3-128 of
 * the whole blob), then STATE_ZERO messages list each blob's runs of zero
 * pages (blob by blob, increasing, nruns of the DESC in all); the
 * destination answers STATE_READY with a buffer per blob (addr 0, rkey 0
 * for an empty one); the source's WRITEs go on the control QP and
 * STATE_END after them; STATE_ACK confirms every blob hashed as sent.
 * A NOTICE lists its pages in increasing order, so one message covers the
 * scattered pages of many blocks (a sparse pass would otherwise spend its
 * time on round trips). Its HASHES answer indexes the same list: bit i of
 * landed_zero (word i / 64) is the NOTICE's page i; `first` repeats its
 * first page.
 *
 * Control messages travel on the control QP (SEND/RECV); PASS_END travels on
 * each data QP after that QP's writes of the pass, so that its arrival proves
 * those writes are placed (RC delivers in order); CONNECT is the rdma_cm
 * private data of every connection request. A data QP's CONNECT carries
 * the tag of HMAC(source-to-destination key, "data" || index || token ||
 * the QP's number): only a holder of the session's keys can attach a QP.
 */
#ifndef RDMIG_COMMON_PROTO_H
#define RDMIG_COMMON_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "util.h"
#include "../dataplane/scan.h"

#define RDMIG__PROTO_MAGIC 0x474d4452u /* "RDMG" little-endian */
/*
 * The versions this library speaks. 2: NOTICE, HASHES, the key in HELLO;
 * 3: NOTICE lists; 4: authentication, negotiation, sealed messages. Every
 * version from 4 on is authenticated: a keyed end never settles on less.
 */
#define RDMIG__PROTO_VERSION 4
#define RDMIG__PROTO_MIN     4
#define RDMIG__HDR_LEN	     16
#define RDMIG__HELLO_LEN     48	   /* HELLO's frozen payload */
#define RDMIG__MSG_MAX	     16384 /* largest message; receive buffers are this big */
#define RDMIG__ERRMSG_MAX    1024
#define RDMIG__CONNECT_LEN   (RDMIG__HDR_LEN + 32) /* fits rdma_cm's 56 bytes */

/* Pages one NOTICE (and its HASHES answer) lists at most. */
#define RDMIG__NOTICE_PAGES 256
#define RDMIG__NOTICE_WORDS (RDMIG__NOTICE_PAGES / 64)
/* A NOTICE entry with this bit orders its page zeroed; without, hashed. */
#define RDMIG__NOTICE_ZERO (1ull << 63)
/* The largest message on a data QP: a sealed HASHES for a full NOTICE. */
#define RDMIG__DATA_MSG_MAX (RDMIG__HDR_LEN + 64 + 16 * RDMIG__NOTICE_PAGES + RDMIG__TRAILER_LEN)

/*
 * Capabilities (HELLO, CHALLENGE): the destination answers with the
 * intersection of both sets; bits a side does not know are ignored.
 */
#define RDMIG__CAP_NOTICES (1u << 0) /* NOTICE and HASHES on the data QPs */
#define RDMIG__CAPS	   RDMIG__CAP_NOTICES

/* Authentication modes (HELLO, CHALLENGE): both ends must agree. */
#define RDMIG__AUTH_NONE 0
#define RDMIG__AUTH_PSK	 1

/* AUTH flags. */
#define RDMIG__AUTH_NOTICES (1u << 0) /* the source sends NOTICEs: answer with HASHES */
/*
 * The source verifies what lands: it may send NOTICEs in any pass (in a
 * final pass always, whatever its skip settings): answer with HASHES.
 */
#define RDMIG__AUTH_VERIFY (1u << 1)
#define RDMIG__AUTH_FLAGS  (RDMIG__AUTH_NOTICES | RDMIG__AUTH_VERIFY)

/* HELLO_ACK region flags. */
#define RDMIG__TARGET_ZERO (1u << 0) /* the destination region is known all zero */

enum rdmig__msg_type {
	RDMIG__MSG_CONNECT = 1,	     /* connect private data: which connection this is */
	RDMIG__MSG_HELLO = 2,	     /* source -> destination: offer (frozen) */
	RDMIG__MSG_HELLO_ACK = 3,    /* destination -> source: accepted, with rkeys */
	RDMIG__MSG_PASS_END = 4,     /* source -> destination, on each data QP */
	RDMIG__MSG_PASS_ACK = 5,     /* destination -> source: pass placed */
	RDMIG__MSG_COMPLETE = 6,     /* source -> destination: migration done */
	RDMIG__MSG_COMPLETE_ACK = 7, /* destination -> source: memory no longer exposed */
	RDMIG__MSG_ERROR = 8,	     /* either way: the session is over, here is why */
	RDMIG__MSG_PROGRESS = 9,     /* source -> destination: a pass is under way */
	RDMIG__MSG_NOTICE = 10,	     /* source -> destination, on a data QP after its WRITEs */
	RDMIG__MSG_HASHES = 11,	     /* destination -> source, on the same data QP: the answer */
	RDMIG__MSG_CHALLENGE = 12,   /* destination -> source: choice, nonce, proof */
	RDMIG__MSG_AUTH = 13,	     /* source -> destination: proposal and proof */
	RDMIG__MSG_STATE_DESC = 14,  /* source -> destination: the device state's blobs */
	RDMIG__MSG_STATE_ZERO = 15,  /* source -> destination: a blob's runs of zero pages */
	RDMIG__MSG_STATE_READY = 16, /* destination -> source: a buffer per blob */
	RDMIG__MSG_STATE_END = 17,   /* source -> destination, after the state's WRITEs */
	RDMIG__MSG_STATE_ACK = 18,   /* destination -> source: every blob hashed as sent */
	RDMIG__MSG_TYPE_MAX = RDMIG__MSG_STATE_ACK,
};

/* Runs of zero pages one STATE_ZERO lists at most (its size is a HASHES'). */
#define RDMIG__STATE_MSG_RUNS 256

/* A blob as STATE_DESC describes it. */
struct rdmig__wire_blob {
	uint64_t id;
	uint64_t len;
	uint64_t zero_pages; /* page-sized zero pieces, not sent */
	uint32_t nruns;	     /* the runs they make, in STATE_ZERO messages */
	struct rdmig__hash hash;
};

/* A run of pages: [first, first + count). */
struct rdmig__wire_run {
	uint64_t first;
	uint64_t count;
};

enum rdmig__conn_kind {
	RDMIG__CONN_CTRL = 1,
	RDMIG__CONN_DATA = 2,
};

/* A region as the source proposes it. */
struct rdmig__wire_region {
	uint64_t gpa;
	uint64_t len;
};

/* A region as the destination exposes it. */
struct rdmig__wire_target {
	uint64_t gpa;
	uint64_t len;
	uint64_t addr; /* destination virtual address for RDMA WRITE */
	uint32_t rkey;
	uint32_t flags; /* RDMIG__TARGET_* */
};

struct rdmig__msg {
	uint16_t type;
	union {
		struct {
			uint32_t kind;	/* enum rdmig__conn_kind */
			uint32_t index; /* data QP index (0 for control) */
			uint64_t token; /* session token from HELLO_ACK (0 for control) */
			uint8_t tag[RDMIG__TAG_LEN]; /* data: proof of the session keys */
		} connect;
		struct {
			uint16_t ver_min, ver_max; /* protocol versions offered */
			uint32_t caps;		   /* RDMIG__CAP_* offered */
			uint32_t auth;		   /* RDMIG__AUTH_* */
			uint8_t nonce[RDMIG__NONCE_LEN];
			/* decode: the header said version 2 or 3, only the range was read */
			bool legacy;
		} hello;
		struct {
			uint16_t version; /* chosen: the highest both speak */
			uint32_t caps;	  /* both offered */
			uint32_t auth;	  /* RDMIG__AUTH_*: the destination's */
			uint8_t nonce[RDMIG__NONCE_LEN];
			uint8_t proof[RDMIG__KEY_LEN];
		} challenge;
		struct {
			uint32_t page_size;
			uint32_t nqps; /* data QPs the source wants */
			uint32_t nregions;
			uint32_t flags; /* RDMIG__AUTH_* flags */
			struct rdmig__wire_region regions[RDMIG__MAX_REGIONS];
			uint8_t proof[RDMIG__KEY_LEN];
		} auth;
		struct {
			uint16_t version; /* chosen */
			uint32_t page_size;
			uint32_t nqps; /* data QPs accepted, <= proposed */
			uint32_t nregions;
			uint64_t token;
			struct rdmig__wire_target regions[RDMIG__MAX_REGIONS];
		} hello_ack;
		struct {
			uint64_t pass;
			uint32_t qp;
			uint64_t writes;
			uint64_t bytes;
		} pass_end;
		struct {
			uint64_t pass;
			uint64_t bytes; /* sum of the PASS_END bytes */
		} pass_ack;
		struct {
			uint64_t passes;
		} complete;
		/*
		 * Sent about once a second while a pass runs: the destination
		 * cannot see RDMA WRITEs land, so without it a long pass would
		 * look like a silent (dead) source.
		 */
		struct {
			uint64_t pass;
			uint64_t elapsed_ms;
		} progress;
		/*
		 * What some pages of a region became in this pass. Sent on a
		 * data QP after the WRITEs of its pages, so they are placed
		 * when it arrives. Each entry is a page index, in increasing
		 * order: with RDMIG__NOTICE_ZERO, a zero-fill order (set the
		 * page to zero); without, a page just written, to be hashed.
		 */
		struct {
			uint64_t pass;
			uint32_t region;
			uint32_t npages; /* 1..RDMIG__NOTICE_PAGES */
			uint64_t page[RDMIG__NOTICE_PAGES];
		} notice;
		/*
		 * The answer to one NOTICE, entry by entry (npages and first
		 * repeat the NOTICE's count and first page): for its written
		 * pages, what landed: all zero (bit i of landed_zero for entry
		 * i) or the hash, in entry order, of every written page that
		 * is not zero.
		 */
		struct {
			uint64_t pass;
			uint32_t region;
			uint32_t npages;
			uint64_t first;
			uint64_t landed_zero[RDMIG__NOTICE_WORDS];
			uint32_t nhashes;
			struct rdmig__hash hash[RDMIG__NOTICE_PAGES];
		} hashes;
		struct {
			uint32_t nblobs; /* 1..RDMIG_STATE_BLOBS_MAX, distinct ids */
			struct rdmig__wire_blob blob[RDMIG_STATE_BLOBS_MAX];
		} state_desc;
		struct {
			uint32_t blob;	/* index in the STATE_DESC */
			uint32_t nruns; /* 1..RDMIG__STATE_MSG_RUNS, increasing, disjoint */
			struct rdmig__wire_run run[RDMIG__STATE_MSG_RUNS];
		} state_zero;
		struct {
			uint32_t nblobs;
			struct {
				uint64_t addr;
				uint32_t rkey;
			} buf[RDMIG_STATE_BLOBS_MAX];
		} state_ready;
		struct {
			uint32_t nblobs;
			uint64_t writes;
			uint64_t bytes;
		} state_end;
		struct {
			uint32_t nblobs;
			uint64_t bytes; /* STATE_END's */
		} state_ack;
		struct {
			int32_t code; /* positive errno */
			uint32_t len;
			char text[RDMIG__ERRMSG_MAX + 1]; /* NUL-terminated after decode */
		} error;
	};
};

/*
 * Encodes `m` into buf (cap bytes). Returns the length, or -EINVAL if the
 * message is not valid (encode checks what decode checks) or -ENOSPC.
 * On failure `err` (errlen bytes) says why. rdmig__msg_encode_ext leaves
 * `trailer` bytes after the payload, counted in the header's length, for
 * the sealing (common/seal.h) to fill.
 */
int rdmig__msg_encode(const struct rdmig__msg *m, void *buf, size_t cap, char *err, size_t errlen);
int rdmig__msg_encode_ext(const struct rdmig__msg *m, size_t trailer, void *buf, size_t cap,
			  char *err, size_t errlen);

/*
 * Decodes exactly `len` bytes (the header's length must equal len), the last
 * `trailer` of them not part of the payload (rdmig__msg_decode: none).
 * Returns 0, or -EBADMSG (malformed, truncated, oversized, a field out of
 * range), -EPROTO (a version we do not speak). `err` says which field and
 * why. A HELLO decodes whatever its version (see above).
 */
int rdmig__msg_decode(const void *buf, size_t len, struct rdmig__msg *m, char *err, size_t errlen);
int rdmig__msg_decode_ext(const void *buf, size_t len, size_t trailer, struct rdmig__msg *m,
			  char *err, size_t errlen);

/*
 * Returns the length the header at buf claims, or -EBADMSG if fewer than
 * RDMIG__HDR_LEN bytes are there or the magic is wrong. For private data,
 * which a transport may pad with zeros.
 */
int rdmig__msg_peek_len(const void *buf, size_t len);

const char *rdmig__msg_type_name(unsigned type);

#endif /* RDMIG_COMMON_PROTO_H */
