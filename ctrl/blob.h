/* SPDX-License-Identifier: MIT */
/*
 * Device state (rdmig_src_send_state(), rdmig.h): what each end keeps of
 * the blobs while they travel, without the sessions' connections. The
 * source prepares (checks, finds runs of zero pages, hashes), registers
 * and walks the pieces to write; the destination checks the descriptors,
 * obtains and zeroes its buffers, exposes them for the transfer only and
 * hashes what landed. The sessions (src.c, dst.c) send and receive the
 * messages (proto.h: STATE_DESC, STATE_ZERO, STATE_READY, STATE_END,
 * STATE_ACK) and post the WRITEs.
 *
 * Why the control QP carries the WRITEs: the state goes once, after the
 * final pass, while the workers idle; the calling thread owns that QP, so
 * the end marker behind the WRITEs on the same QP proves them placed (RC
 * delivers in order) without waking the workers.
 *
 * Threads: a tx belongs to the thread inside rdmig_src_send_state(), an rx
 * to the destination handle's owner (the thread inside rdmig_dst_run()).
 */
#ifndef RDMIG_CTRL_BLOB_H
#define RDMIG_CTRL_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rdmig/rdmig.h>

#include "../common/proto.h"
#include "../dataplane/scan.h"
#include "../dataplane/xport.h"

/* WRITEs of the state in flight at once: the control QP's send queue is 8
 * deep at the source and up to 4 SENDs share it. */
#define RDMIG__STATE_WRITES 4

/* Bytes scanned between two calls of prepare's tick (progress, cancel). */
#define RDMIG__STATE_TICK (64ull << 20)

/* --- source ---------------------------------------------------------------- */

struct rdmig__state_tx_blob {
	uint64_t id, len;
	const uint8_t *data;
	uint64_t zero_pages; /* left off the wire */
	uint32_t nruns;	     /* the runs they make: runs[run0 .. run0 + nruns) */
	uint64_t run0;
	struct rdmig__hash hash;
	/* The bytes to write lie in [span_lo, span_hi): registered, nothing else. */
	uint64_t span_lo, span_hi;
	struct rdmig__xp_mr *mr;
	uint64_t raddr; /* the destination's buffer */
	uint32_t rkey;
};

struct rdmig__state_tx {
	uint32_t page_size;
	unsigned n;
	struct rdmig__state_tx_blob b[RDMIG_STATE_BLOBS_MAX];
	struct rdmig__wire_run *runs; /* every blob's, blob by blob */
	uint64_t nruns, cap;
	uint64_t bytes, wire_bytes, zero_pages;
	uint64_t scan_ns;
	/* The next STATE_ZERO's first run, and the next piece to write. */
	unsigned zblob;
	uint64_t zrun;
	unsigned wblob;
	uint64_t woff, wrun;
};

/*
 * Checks the VMM's blobs against the limits of rdmig.h (nothing else is
 * done when they fail: -EINVAL naming the blob), then finds every blob's
 * page-sized zero pieces and hashes it (keyed XXH3-128, the session's
 * key). tick(arg) is called every RDMIG__STATE_TICK bytes scanned; a
 * negative return stops the scan and is returned. -ENOMEM with a message.
 * Release with rdmig__state_tx_release().
 */
int rdmig__state_tx_prepare(struct rdmig__state_tx *tx, const struct rdmig_blob *blobs, unsigned n,
			    uint32_t page_size, const struct rdmig__scanner *sc,
			    const struct rdmig__scan_key *key, int (*tick)(void *arg), void *arg);
/* The STATE_DESC that describes them. */
void rdmig__state_tx_desc(const struct rdmig__state_tx *tx, struct rdmig__msg *m);
/* The next STATE_ZERO, or false when every run was listed. */
bool rdmig__state_tx_next_zero(struct rdmig__state_tx *tx, struct rdmig__msg *m);
/* Registers what is to be written of each blob for local read. */
int rdmig__state_tx_register(struct rdmig__state_tx *tx, const struct rdmig__xp_ops *xp,
			     struct rdmig__xp_pd *pd);
/* Takes the destination's STATE_READY: -EPROTO with a message if it does not fit. */
int rdmig__state_tx_targets(struct rdmig__state_tx *tx, const struct rdmig__msg *m);
/*
 * The next piece to write, at most `max` bytes: blob *blob, bytes [*off,
 * *off + *len). False when every byte outside the zero pages was given.
 */
bool rdmig__state_tx_next_write(struct rdmig__state_tx *tx, uint64_t max, unsigned *blob,
				uint64_t *off, uint64_t *len);
/* Deregisters and frees; safe on a zeroed or released tx. */
void rdmig__state_tx_release(struct rdmig__state_tx *tx, const struct rdmig__xp_ops *xp);

/* --- destination ----------------------------------------------------------- */

enum rdmig__state_step {
	RDMIG__STATE_NONE = 0, /* nothing received in this session */
	RDMIG__STATE_RUNS,     /* STATE_DESC taken: STATE_ZEROs to come */
	RDMIG__STATE_EXPOSED,  /* buffers registered for remote write, STATE_READY sent */
	RDMIG__STATE_DONE,     /* every blob hashed as sent */
};

struct rdmig__state_rx_blob {
	uint64_t id, len, zero_pages;
	uint32_t nruns;
	struct rdmig__hash hash;
	uint8_t *buf;
	size_t map_len; /* rdmig's own mapping of buf; 0: the VMM's buffer (or none) */
	struct rdmig__xp_mr *mr;
	uint32_t runs_seen;
	uint64_t zero_seen, end_page; /* pages in runs so far; where the last one ended */
};

struct rdmig__state_rx {
	enum rdmig__state_step step;
	unsigned n;
	struct rdmig__state_rx_blob b[RDMIG_STATE_BLOBS_MAX];
	unsigned zblob;		    /* the blob whose runs come next */
	uint64_t bytes;		    /* all blobs' */
	uint64_t wire;		    /* the bytes the source must write */
	uint64_t zero;		    /* zero pages */
	uint64_t wrote;		    /* STATE_END's bytes */
	rdmig_state_alloc_fn alloc; /* the VMM's, or NULL: rdmig maps buffers */
	void *alloc_arg;
	struct rdmig_blob pub[RDMIG_STATE_BLOBS_MAX]; /* rdmig_dst_state() */
};

/*
 * A STATE_DESC (decoded, so within the limits): checks it against the
 * session's page size, obtains a buffer per blob (the VMM's callback, or
 * an anonymous mapping, zero already). Returns 0, -EPROTO (not now, or
 * zero pages the page size cannot hold) or -ENOMEM (the callback said
 * NULL, or no memory), `err` naming the blob.
 */
int rdmig__state_rx_desc(struct rdmig__state_rx *rx, const struct rdmig__msg *m, uint32_t page_size,
			 char *err, size_t errlen);
/*
 * A STATE_ZERO: checks its runs follow the ones before within the blob's
 * zero-page count, and zeroes those pages of a VMM buffer. -EPROTO with
 * `err`.
 */
int rdmig__state_rx_zero(struct rdmig__state_rx *rx, const struct rdmig__msg *m, uint32_t page_size,
			 char *err, size_t errlen);
/* Every run arrived: the buffers may be exposed. */
static inline bool rdmig__state_rx_ready(const struct rdmig__state_rx *rx)
{
	return rx->step == RDMIG__STATE_RUNS && rx->zblob == rx->n;
}
/* Registers the buffers for remote write and fills the STATE_READY. */
int rdmig__state_rx_expose(struct rdmig__state_rx *rx, const struct rdmig__xp_ops *xp,
			   struct rdmig__xp_pd *pd, struct rdmig__msg *ready, char *err,
			   size_t errlen);
/*
 * A STATE_END (every WRITE before it placed): withdraws remote access,
 * checks the count, hashes every blob as it landed and compares. Returns
 * 0 (fills the STATE_ACK), -EPROTO, or -EIO naming the first blob whose
 * hash differs.
 */
int rdmig__state_rx_end(struct rdmig__state_rx *rx, const struct rdmig__xp_ops *xp,
			const struct rdmig__msg *m, const struct rdmig__scanner *sc,
			const struct rdmig__scan_key *key, struct rdmig__msg *ack, char *err,
			size_t errlen);
/* Deregisters every buffer (no remote write lands after it). Safe any time. */
void rdmig__state_rx_withdraw(struct rdmig__state_rx *rx, const struct rdmig__xp_ops *xp);
/* Forgets the blobs and unmaps rdmig's buffers (withdraw first); keeps alloc. */
void rdmig__state_rx_reset(struct rdmig__state_rx *rx);

#endif /* RDMIG_CTRL_BLOB_H */
