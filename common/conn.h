/* SPDX-License-Identifier: MIT */
/*
 * Connections: a connection id with its RC QP, CQ and message buffers, and
 * the bounded waits on connection events and completions that both sides
 * build on, over either transport (dataplane/xport.h).
 */
#ifndef RDMIG_COMMON_CONN_H
#define RDMIG_COMMON_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util.h"
#include "../dataplane/xport.h"
#include "proto.h"

/* wr_id = kind << 56 | endpoint index << 32 | value (buffer or mark index) */
enum rdmig__wr_kind {
	RDMIG__WR_RECV = 1,
	RDMIG__WR_SEND = 2,
	RDMIG__WR_WRITE = 3,
};

static inline uint64_t rdmig__wr_id(enum rdmig__wr_kind kind, uint32_t ep, uint32_t val)
{
	return (uint64_t)kind << 56 | (uint64_t)(ep & 0xffffff) << 32 | val;
}

static inline enum rdmig__wr_kind rdmig__wr_kind_of(uint64_t wr_id)
{
	return (enum rdmig__wr_kind)(wr_id >> 56);
}

static inline uint32_t rdmig__wr_ep_of(uint64_t wr_id)
{
	return (uint32_t)(wr_id >> 32) & 0xffffff;
}

static inline uint32_t rdmig__wr_val_of(uint64_t wr_id)
{
	return (uint32_t)wr_id;
}

#define RDMIG__EP_MAX_SEND_BUFS 32

/* What an endpoint needs: queue sizes and message buffers. */
struct rdmig__ep_attr {
	uint32_t send_depth; /* max_send_wr */
	uint32_t recv_depth; /* max_recv_wr; nrecv buffers are posted */
	uint32_t nrecv, nsend;
	uint32_t bufsize; /* bytes per message buffer */
	uint32_t qp_timeout;
	uint32_t rate_mbps; /* loopback wire-rate cap, 0: none */
};

struct rdmig__ep {
	struct rdmig__xp_id *id;
	bool has_qp;
	struct rdmig__xp_cq *cq;
	bool own_cq; /* false when the CQ is shared */
	struct rdmig__xp_mr *mr;
	uint8_t *bufs; /* nrecv receive buffers, then nsend send buffers */
	struct rdmig__ep_attr attr;
	uint32_t send_busy; /* bit i: send buffer i is posted */
	uint32_t index;	    /* in wr_ids */
	/* Once the handshake is done: every message in and out is sealed. */
	struct rdmig__seal seal;
};

/*
 * Creates the QP on `id` (and a CQ of its own unless `shared_cq` is given),
 * registers message buffers and posts the receives. On failure everything
 * it made is undone.
 */
int rdmig__ep_setup(struct rdmig__ep *ep, struct rdmig__xp_id *id, struct rdmig__xp_pd *pd,
		    struct rdmig__xp_cq *shared_cq, uint32_t index,
		    const struct rdmig__ep_attr *attr);
/* Destroys what rdmig__ep_setup() made (not the id). Safe on a zeroed ep. */
void rdmig__ep_teardown(struct rdmig__ep *ep);
/*
 * Disconnects (so the peer learns at once), tears down and destroys the id,
 * leaving ep zeroed. Safe on an ep that never connected, or has no id.
 */
void rdmig__ep_destroy(struct rdmig__ep *ep);

/* Posts receive buffer i again. */
int rdmig__ep_post_recv(struct rdmig__ep *ep, uint32_t i);
static inline uint8_t *rdmig__ep_recv_buf(struct rdmig__ep *ep, uint32_t i)
{
	return ep->bufs + (size_t)i * ep->attr.bufsize;
}

/*
 * Encodes `m` into buf (attr.bufsize bytes), sealed once the endpoint's
 * seal is on (which takes a sequence number: post what it encoded, in
 * order). Returns the length, or a negative errno with rdmig__err set.
 */
int rdmig__ep_encode(struct rdmig__ep *ep, const struct rdmig__msg *m, uint8_t *buf);
/*
 * Decodes a received message, checking and stripping its seal first when
 * the endpoint's seal is on. Returns 0, or -EBADMSG / -EPROTO / -EIO with
 * `err` saying why (not rdmig__err: callers add who sent it).
 */
int rdmig__ep_open(struct rdmig__ep *ep, const uint8_t *buf, size_t len, struct rdmig__msg *m,
		   char *err, size_t errlen);

/*
 * Encodes (and seals, see rdmig__ep_encode) and posts `m` as a signalled
 * SEND from a free send buffer.
 * Returns 0, -EAGAIN (no free buffer: reap completions first), or an error
 * (with rdmig__err set).
 */
int rdmig__ep_send(struct rdmig__ep *ep, const struct rdmig__msg *m);
/*
 * Fills m with an ERROR for the peer: the code of `err` (a negative errno;
 * EPROTO when out of range), `text` cut to RDMIG__ERRMSG_MAX bytes with
 * anything not printable ASCII made '?'.
 */
void rdmig__msg_error(struct rdmig__msg *m, int err, const char *text);

/*
 * Sends m (sealed if the seal is on) and waits, wait_ms at most in all,
 * for its send completion, so that it leaves before a disconnect
 * overtakes it. If every send buffer is busy, reaps until one is free
 * first. Completions met meanwhile: sends are marked done, receives are
 * posted again (their messages dropped: for a session that ends). The
 * caller owns the endpoint's CQ. Returns 0 once it went, or an errno.
 */
int rdmig__ep_send_flush(struct rdmig__ep *ep, const struct rdmig__msg *m, uint64_t wait_ms);

/* Posts len bytes already encoded (handshake messages) as ep_send does. */
int rdmig__ep_send_raw(struct rdmig__ep *ep, const void *bytes, size_t len);
/* A send completion for buffer i arrived. */
static inline void rdmig__ep_send_done(struct rdmig__ep *ep, uint32_t i)
{
	ep->send_busy &= ~(1u << i);
}

/*
 * Waits for the next connection event for at most timeout_ms (< 0: forever).
 * Returns 0 with *ev (to be acked), -ETIMEDOUT, or another error.
 */
int rdmig__cm_next(struct rdmig__xp_chan *ch, int timeout_ms, struct rdmig__xp_event *ev);

/* Resolves host:port (numeric or a name) to an address. */
int rdmig__resolve(const char *host, const char *port, struct sockaddr_storage *ss);

/* Milliseconds left until deadline_ns (CLOCK_MONOTONIC), clamped at 0. */
int rdmig__ms_left(uint64_t deadline_ns);

/*
 * Polls the CQ once for up to n completions. If none, arms the CQ and waits
 * on its fd for at most wait_ms. Returns the number of completions (0 if the
 * wait ran out), or a negative errno.
 */
int rdmig__cq_wait(struct rdmig__xp_cq *cq, struct ibv_wc *wc, int n, int wait_ms);

#endif /* RDMIG_COMMON_CONN_H */
