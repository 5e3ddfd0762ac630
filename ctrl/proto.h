/* SPDX-License-Identifier: MIT */
/*
 * The rdmig wire protocol: versioned, length-prefixed binary messages,
 * little-endian. Encoding and decoding are pure functions (no I/O, no
 * session state): decode validates every field it can check on its own and
 * fails with a message; checks that need the session (does the layout match
 * ours, is this the pass we expect) are the caller's.
 *
 * Every message starts with a 16-byte header:
 *   u32 magic 'RDMG'  u16 version  u16 type  u32 length (header included)  u32 flags (0)
 *
 * Control messages travel on the control QP (SEND/RECV); PASS_END travels on
 * each data QP after that QP's writes of the pass, so that its arrival proves
 * those writes are placed (RC delivers in order); CONNECT is the rdma_cm
 * private data of every connection request.
 */
#ifndef RDMIG_CTRL_PROTO_H
#define RDMIG_CTRL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"

#define RDMIG__PROTO_MAGIC   0x474d4452u /* "RDMG" little-endian */
#define RDMIG__PROTO_VERSION 1
#define RDMIG__HDR_LEN	     16
#define RDMIG__MSG_MAX	     16384 /* largest message; receive buffers are this big */
#define RDMIG__ERRMSG_MAX    1024
#define RDMIG__CONNECT_LEN   (RDMIG__HDR_LEN + 16) /* fits rdma_cm's 56 bytes */

enum rdmig__msg_type {
	RDMIG__MSG_CONNECT = 1,	     /* connect private data: which connection this is */
	RDMIG__MSG_HELLO = 2,	     /* source -> destination: proposal */
	RDMIG__MSG_HELLO_ACK = 3,    /* destination -> source: accepted, with rkeys */
	RDMIG__MSG_PASS_END = 4,     /* source -> destination, on each data QP */
	RDMIG__MSG_PASS_ACK = 5,     /* destination -> source: pass placed */
	RDMIG__MSG_COMPLETE = 6,     /* source -> destination: migration done */
	RDMIG__MSG_COMPLETE_ACK = 7, /* destination -> source: memory no longer exposed */
	RDMIG__MSG_ERROR = 8,	     /* either way: the session is over, here is why */
	RDMIG__MSG_PROGRESS = 9,     /* source -> destination: a pass is under way */
	RDMIG__MSG_TYPE_MAX = RDMIG__MSG_PROGRESS,
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
};

struct rdmig__msg {
	uint16_t type;
	union {
		struct {
			uint32_t kind;	/* enum rdmig__conn_kind */
			uint32_t index; /* data QP index (0 for control) */
			uint64_t token; /* session token from HELLO_ACK (0 for control) */
		} connect;
		struct {
			uint16_t ver_min, ver_max;
			uint32_t page_size;
			uint32_t nqps; /* data QPs the source wants */
			uint32_t nregions;
			struct rdmig__wire_region regions[RDMIG__MAX_REGIONS];
		} hello;
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
 * On failure `err` (errlen bytes) says why.
 */
int rdmig__msg_encode(const struct rdmig__msg *m, void *buf, size_t cap, char *err, size_t errlen);

/*
 * Decodes exactly `len` bytes (the header's length must equal len). Returns
 * 0, or -EBADMSG (malformed, truncated, oversized, a field out of range),
 * -EPROTO (unknown version). `err` says which field and why.
 */
int rdmig__msg_decode(const void *buf, size_t len, struct rdmig__msg *m, char *err, size_t errlen);

/*
 * Returns the length the header at buf claims, or -EBADMSG if fewer than
 * RDMIG__HDR_LEN bytes are there or the magic is wrong. For private data,
 * which a transport may pad with zeros.
 */
int rdmig__msg_peek_len(const void *buf, size_t len);

const char *rdmig__msg_type_name(unsigned type);

#endif /* RDMIG_CTRL_PROTO_H */
