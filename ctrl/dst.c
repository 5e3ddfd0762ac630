/* SPDX-License-Identifier: MIT */
/*
 * The destination side: listens, accepts one source per rdmig_dst_run(),
 * checks its proposal against our regions, exposes guest memory for remote
 * write for the session only, and confirms each pass once every data QP's
 * PASS_END has arrived (and so every WRITE before it is placed).
 *
 * One thread (the caller of rdmig_dst_run) does everything but hashing: it
 * waits on the connection event channel and on one CQ shared by all of the
 * session's QPs, so a disconnect, an error completion or a message each
 * wake it. What lands (zero-fill orders, the hashes of written pages) is
 * the data plane's (dataplane/land.h): the NOTICEs of one wake-up go to a
 * pool of hashing threads, one per data QP, as one batch, and their
 * answers are sent from here, in order on each QP.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

#include "../dataplane/land.h"
#include "../dataplane/scan.h"
#include "../dataplane/worker.h"
#include "../common/conn.h"
#include "../common/proto.h"
#include "blob.h"
#include "handshake.h"
#include "path.h"
#include "session.h"

struct dst_region {
	uint64_t gpa;
	uint8_t *hva;
	uint64_t len;
	unsigned flags;
	struct rdmig__xp_mr *mr;
};

enum dst_state {
	DST_WAIT_CTRL,	/* waiting for a source to authenticate (dst->pending) */
	DST_RUNNING,	/* memory exposed: data QPs connect, passes run */
	DST_COMPLETING, /* remote access revoked, COMPLETE_ACK on its way */
	DST_DONE,
};

struct dst_session {
	enum dst_state state;
	struct rdmig__xp_pd *pd;	       /* the control QP's, and the state buffers' */
	struct rdmig__xp_cq *cq;	       /* the data QPs' (ctrl has its own) */
	struct rdmig__ep ctrl;		       /* endpoint index 0 */
	struct rdmig__hs hs;		       /* the handshake that made it: keys */
	struct rdmig__ep data[RDMIG__MAX_QPS]; /* endpoint index i + 1 */
	unsigned nqps;			       /* data QPs agreed */
	uint64_t token;
	uint64_t passes;     /* confirmed */
	uint64_t seen;	     /* bit i: data QP i ended the current pass */
	uint64_t pass_bytes; /* bytes the current pass reported so far */
	uint64_t wire_bytes;
	uint64_t deadline;    /* 0: none */
	uint64_t complete_ns; /* COMPLETE received to COMPLETE_ACK posted */

	bool notices;			  /* the source sends NOTICEs (skipping, verification) */
	struct rdmig__scan_key key;	  /* the migration's hash key, derived */
	unsigned nsrc;			  /* regions, in the source's order: */
	unsigned map[RDMIG__MAX_REGIONS]; /* source region index -> ours */
	/*
	 * Data QP messages not yet handled, in arrival order (receive buffer
	 * and length): a NOTICE waits here while every buffer for its HASHES
	 * answer is still being sent.
	 */
	struct {
		uint32_t buf[RDMIG__NOTICE_CREDITS + 1], len[RDMIG__NOTICE_CREDITS + 1];
		unsigned head, n;
	} backlog[RDMIG__MAX_QPS];
	bool drain; /* a data QP's message or send completion came: dst_drain() */
	/*
	 * The hashing pool (started once the data QPs are agreed) and one
	 * batch of its jobs: at most RDMIG__NOTICE_CREDITS per data QP (each
	 * has its answer's send buffer reserved: queued[qp]).
	 */
	struct rdmig__land land;
	struct rdmig__land_job *jobs;
	unsigned queued[RDMIG__MAX_QPS];
};

/*
 * A control connection that has not proven the key yet. It costs a PD, a
 * CQ, a QP and 128 KiB of message buffers, and nothing of guest memory;
 * at most DST_MAX_PENDING exist, each for at most RDMIG_AUTH_TIMEOUT_MS.
 */
#define DST_MAX_PENDING 4

struct dst_pending {
	bool used;
	bool closing; /* an ERROR is on its way: close at its completion or deadline */
	struct rdmig__xp_pd *pd;
	struct rdmig__ep ep; /* own CQ; endpoint index 0 */
	uint64_t deadline;
	struct rdmig__hs hs;
};

struct rdmig_dst {
	struct rdmig__config cfg;
	struct rdmig__scanner scanner; /* chosen at create: RDMIG_SIMD errors show early */
	struct dst_region regions[RDMIG__MAX_REGIONS];
	unsigned nregions;
	/*
	 * Guest memory's PD: its MRs and the data QPs, nothing else, so the
	 * control QP (on the session's pd) can never write guest memory, and
	 * moving the data QPs to error revokes every remote access to it.
	 * Made at AUTH; it and the MRs outlive a completed session until
	 * dst_release_memory() (the next run, or destroy).
	 */
	struct rdmig__xp_pd *gpd;
	const struct rdmig__xp_ops *xp; /* the transport (RDMIG_TRANSPORT) */
	struct rdmig__xp_chan *ch;
	struct rdmig__xp_id *listen_id;
	struct dst_session s;
	struct dst_pending pending[DST_MAX_PENDING];
	uint64_t rejected;	       /* attempts refused in this run */
	uint64_t log_window_ns;	       /* the second the refusals below were logged in */
	unsigned log_lines, log_quiet; /* lines logged in it, and left out */
	char last_reject[256];	       /* and why the last one was */
	struct rdmig__msg msg;	       /* scratch */

	struct rdmig__cancel cancel; /* rdmig_dst_cancel(): any thread, a signal handler */

	struct rdmig_layout_mismatch mismatch; /* rdmig_dst_mismatch(): this run's */

	/* The device state of the current (or last successful) run: blob.h. */
	struct rdmig__state_rx state;
};

static int dst_on_state(struct rdmig_dst *dst, const struct rdmig__msg *m);

#define CTRL_ATTR                                                         \
	{                                                                 \
		.send_depth = 8, .recv_depth = 8, .nrecv = 4, .nsend = 4, \
		.bufsize = RDMIG__MSG_MAX                                 \
	}
/* Data QPs: receives for NOTICEs and PASS_END, sends for HASHES answers. */
#define DATA_ATTR                                                                             \
	{                                                                                     \
		.send_depth = RDMIG__NOTICE_CREDITS, .recv_depth = RDMIG__NOTICE_CREDITS + 1, \
		.nrecv = RDMIG__NOTICE_CREDITS + 1, .nsend = RDMIG__NOTICE_CREDITS,           \
		.bufsize = RDMIG__DATA_MSG_MAX                                                \
	}
#define CQ_DEPTH (16 + RDMIG__MAX_QPS * (2 * RDMIG__NOTICE_CREDITS + 1))

int rdmig_dst_create(const struct rdmig_opts *opts, struct rdmig_dst **dstp)
{
	struct rdmig_dst *dst;
	int ret;

	rdmig__err_clear();
	if (!dstp)
		return rdmig__err(-EINVAL, "dstp is NULL");
	/* Aligned: the scan key inside is read with aligned vector loads. */
	dst = aligned_alloc(64, sizeof(*dst));
	if (dst)
		memset(dst, 0, sizeof(*dst));
	if (!dst)
		return rdmig__err(-ENOMEM, "no memory for a destination handle");
	ret = rdmig__config_resolve(opts, &dst->cfg);
	if (!ret)
		ret = rdmig__scanner_init(&dst->scanner, dst->cfg.simd);
	if (!ret)
		ret = rdmig__cancel_init(&dst->cancel);
	if (ret) {
		rdmig__config_wipe(&dst->cfg);
		free(dst);
		return ret;
	}
	*dstp = dst;
	return 0;
}

int rdmig_dst_cancel(struct rdmig_dst *dst)
{
	/* Async-signal-safe: nothing but the raise. */
	if (!dst)
		return rdmig__err(-EINVAL, "dst is NULL");
	rdmig__cancel_raise(&dst->cancel);
	return 0;
}

int rdmig_dst_add_region(struct rdmig_dst *dst, uint64_t gpa, void *hva, uint64_t len,
			 unsigned flags)
{
	struct rdmig__region_check rc[RDMIG__MAX_REGIONS];
	int ret;

	rdmig__err_clear();
	if (!dst)
		return rdmig__err(-EINVAL, "dst is NULL");
	if (dst->listen_id)
		return rdmig__err(-EISCONN, "regions can only be added before listening");
	if (flags & ~RDMIG_REGION_ZERO_FILLED)
		return rdmig__err(-EINVAL, "unknown region flags 0x%x",
				  flags & ~RDMIG_REGION_ZERO_FILLED);
	for (unsigned i = 0; i < dst->nregions; i++)
		rc[i] = (struct rdmig__region_check){ dst->regions[i].gpa,
						      (uintptr_t)dst->regions[i].hva,
						      dst->regions[i].len };
	ret = rdmig__region_validate(rc, dst->nregions, gpa, hva, len, dst->cfg.page_size);
	if (ret)
		return ret;
	dst->regions[dst->nregions] = (struct dst_region){ gpa, hva, len, flags, NULL };
	return (int)dst->nregions++;
}

int rdmig_dst_listen(struct rdmig_dst *dst, const char *host, const char *port)
{
	struct sockaddr_storage ss;
	char why[512];
	int ret;

	rdmig__err_clear();
	if (!dst)
		return rdmig__err(-EINVAL, "dst is NULL");
	if (dst->listen_id)
		return rdmig__err(-EALREADY, "already listening");
	if (!dst->nregions)
		return rdmig__err(-EINVAL, "no regions: add guest memory before listening");
	if ((ret = rdmig__resolve(host, port, &ss)))
		return ret;
	if ((ret = rdmig__config_auth_ready(&dst->cfg, "rdmig_dst_listen")))
		return ret;
	dst->xp = rdmig__xp_ops_of(dst->cfg.transport);
	/* host NULL: RDMIG_LOCAL_ADDR (or RDMIG_GID_INDEX's address) if given. */
	if ((ret = rdmig__path_listen_addr(&dst->cfg, dst->xp, host, &ss)))
		return ret;
	if ((ret = dst->xp->chan_create(&dst->ch)))
		return ret;
	if ((ret = dst->xp->id_create(dst->ch, &dst->listen_id)) ||
	    (ret = rdmig__path_set(&dst->cfg, dst->xp, dst->listen_id, NULL)))
		goto fail;
	ret = dst->xp->listen(dst->listen_id, (struct sockaddr *)&ss);
	if (ret >= 0) {
		int err = rdmig__path_check(&dst->cfg, dst->xp, dst->listen_id,
					    "the listening address");

		if (!err) {
			/* While nobody is there: not in the first source's HELLO. */
			rdmig__crypto_warm();
			return ret;
		}
		ret = err;
		goto fail;
	}
	snprintf(why, sizeof(why), "%s", rdmig_last_error());
	rdmig__err(ret, "listening on %s:%s: %s", host ? host : "*", port, why);

fail:
	if (dst->listen_id)
		dst->xp->id_destroy(dst->listen_id);
	dst->listen_id = NULL;
	dst->xp->chan_destroy(dst->ch);
	dst->ch = NULL;
	return ret;
}

/*
 * Deregisters guest memory and frees its PD: time in proportion to the
 * guest (the kernel unpins every page). Only once no QP is left in the
 * PD (dst_end_session() destroyed the data QPs), or on a session whose
 * remote access is revoked.
 */
static void dst_release_memory(struct rdmig_dst *dst)
{
	for (unsigned i = 0; i < dst->nregions; i++) {
		if (dst->regions[i].mr)
			dst->xp->mr_dereg(dst->regions[i].mr);
		dst->regions[i].mr = NULL;
	}
	if (dst->gpd)
		dst->xp->pd_free(dst->gpd);
	dst->gpd = NULL;
}

/*
 * Revokes remote access to guest memory at once (DESIGN.md invariant 6):
 * every data QP, the only QPs in the guest's PD, goes to error, so nothing
 * a source WRITEs lands from here on, whatever rkeys it holds; the device
 * state buffers (on the control QP's PD, small) are deregistered. Constant
 * time, whatever the guest's size: the guest's registrations stay until
 * dst_release_memory(). Idempotent.
 */
static void dst_revoke(struct rdmig_dst *dst)
{
	struct dst_session *s = &dst->s;

	if (!dst->xp)
		return;
	rdmig__state_rx_withdraw(&dst->state, dst->xp);
	for (unsigned i = 0; i < RDMIG__MAX_QPS; i++) {
		if (!s->data[i].has_qp || !s->data[i].id->ops->qp_error(s->data[i].id))
			continue;
		/* A QP that cannot be stopped: take its memory away instead
		 * (its own buffers stay registered until it is destroyed). */
		rdmig__log(RDMIG__LOG_WARN, "data QP %u: %s; deregistering guest memory now", i,
			   rdmig_last_error());
		for (unsigned j = 0; j < dst->nregions; j++) {
			if (dst->regions[j].mr)
				dst->xp->mr_dereg(dst->regions[j].mr);
			dst->regions[j].mr = NULL;
		}
	}
}

/*
 * Ends the session: remote access first, so nothing can write guest
 * memory any more, then the connections. `keep`: guest memory stays
 * registered (a completed run: deregistering takes time in proportion to
 * the guest, which the VMM must not wait for to resume it); it is
 * unreachable, no QP being left in its PD.
 */
static void dst_end_session(struct rdmig_dst *dst, bool keep)
{
	struct dst_session *s = &dst->s;

	dst_revoke(dst);
	rdmig__land_stop(&s->land);
	free(s->jobs);
	for (unsigned i = 0; i < RDMIG__MAX_QPS; i++)
		rdmig__ep_destroy(&s->data[i]);
	if (!keep)
		dst_release_memory(dst);
	rdmig__ep_destroy(&s->ctrl);
	if (s->cq)
		dst->xp->cq_destroy(s->cq);
	if (s->pd)
		dst->xp->pd_free(s->pd);
	rdmig__hs_wipe(&s->hs);
	OPENSSL_cleanse(&s->key, sizeof(s->key));
	memset(s, 0, sizeof(*s));
}

static void dst_pending_free(struct rdmig_dst *dst, struct dst_pending *p)
{
	rdmig__ep_destroy(&p->ep);
	if (p->pd)
		dst->xp->pd_free(p->pd);
	rdmig__hs_wipe(&p->hs);
	memset(p, 0, sizeof(*p));
}

/* An attempt refused: counted for the stats, logged, remembered for a timeout's message. */
static void dst_reject_note(struct rdmig_dst *dst, const char *fmt, ...) RDMIG__FMT(2, 3);

static void dst_reject_note(struct rdmig_dst *dst, const char *fmt, ...)
{
	va_list ap;

	uint64_t now = rdmig__now_ns();

	dst->rejected++;
	va_start(ap, fmt);
	vsnprintf(dst->last_reject, sizeof(dst->last_reject), fmt, ap);
	va_end(ap);
	/* A flood of strangers must not flood the log: 10 lines a second at
	 * most, the rest counted (rdmig_dst_stats.rejected). */
	if (now - dst->log_window_ns > 1000000000ull) {
		if (dst->log_quiet)
			rdmig__log(RDMIG__LOG_WARN,
				   "%u more connections refused in the last second",
				   dst->log_quiet);
		dst->log_window_ns = now;
		dst->log_lines = dst->log_quiet = 0;
	}
	if (dst->log_lines++ < 10)
		rdmig__log(RDMIG__LOG_WARN, "refused a connection: %s", dst->last_reject);
	else
		dst->log_quiet++;
}

/*
 * Gives up on a pending connection: logs `text`, tells the peer (plain: it
 * has proven nothing) no more than that the versions or auth modes differ
 * or that authentication failed, and closes once that is sent, or in 100
 * ms at most, so a peer that never acknowledges holds nothing for long.
 */
static void dst_pending_refuse(struct rdmig_dst *dst, struct dst_pending *p, int err,
			       const char *why)
{
	struct rdmig__msg *m = &dst->msg;
	const char *text = why;

	dst_reject_note(dst, "%s", why);
	if (!p->hs.proven && strncmp(why, "no common protocol version", 26) &&
	    strncmp(why, "authentication mismatch", 23))
		text = "authentication failed";
	rdmig__msg_error(m, err, text);
	if (p->ep.has_qp && !rdmig__ep_send(&p->ep, m)) {
		p->closing = true;
		p->deadline = rdmig__now_ns() + 100ull * 1000000;
		return;
	}
	dst_pending_free(dst, p);
}

static void dst_arm(struct rdmig_dst *dst, uint32_t ms)
{
	dst->s.deadline = ms ? rdmig__now_ns() + (uint64_t)ms * 1000000 : 0;
}

/* Tells the source why we give up, as far as the connection still allows. */
static void dst_send_error_within(struct rdmig_dst *dst, int err, const char *text,
				  uint64_t wait_ms)
{
	struct dst_session *s = &dst->s;

	if (!s->ctrl.has_qp)
		return;
	/* Let it reach the source before the disconnect does (bounded). */
	rdmig__msg_error(&dst->msg, err, text);
	rdmig__ep_send_flush(&s->ctrl, &dst->msg, wait_ms);
}

static void dst_send_error(struct rdmig_dst *dst, int err, const char *text)
{
	dst_send_error_within(dst, err, text, 1000);
}

/* Fails the session with a message, after telling the source. */
static int dst_refuse(struct rdmig_dst *dst, int err, const char *fmt, ...) RDMIG__FMT(3, 4);

static int dst_refuse(struct rdmig_dst *dst, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* No remote write lands from the moment we give up. */
	dst_revoke(dst);
	dst_send_error(dst, err, text);
	return rdmig__err(err, "%s", text);
}

static int dst_send(struct rdmig_dst *dst, const struct rdmig__msg *m)
{
	int ret = rdmig__ep_send(&dst->s.ctrl, m);

	/* Each request gets one answer and the source waits for it, so four
	 * send buffers are never all busy unless the source misbehaves. */
	if (ret == -EAGAIN)
		return rdmig__err(-EPROTO,
				  "the source sends requests faster than it reads answers");
	return ret;
}

/*
 * A control connection request: a pending connection with a PD, CQ and QP
 * of its own, given RDMIG_AUTH_TIMEOUT_MS to authenticate. Returns 0 if
 * accepted, 1 if it must be rejected.
 */
static int dst_accept_ctrl(struct rdmig_dst *dst, struct rdmig__xp_id *id)
{
	struct rdmig__ep_attr attr = CTRL_ATTR;
	struct rdmig__xp_conn_info ci;
	struct dst_pending *p = NULL;
	int ret;

	for (unsigned i = 0; i < DST_MAX_PENDING && !p; i++)
		if (!dst->pending[i].used)
			p = &dst->pending[i];
	/*
	 * Every slot taken: the newcomer gets the slot of the one that has
	 * waited longest without proving anything. Refusing the newcomer
	 * instead would let a few silent strangers, reconnecting as they are
	 * dropped, keep the real source out for good; this way they must
	 * outpace its handshake, a round trip, DST_MAX_PENDING times over.
	 */
	for (unsigned i = 0; i < DST_MAX_PENDING && !p; i++) {
		struct dst_pending *q = &dst->pending[i];

		if (!q->closing && (!p || q->deadline < p->deadline))
			p = q;
	}
	if (p && p->used) {
		dst_reject_note(dst, "dropped for a newer connection: %d were authenticating",
				DST_MAX_PENDING);
		dst_pending_free(dst, p);
	}
	if (!p) {
		dst_reject_note(dst, "%d connections are already authenticating", DST_MAX_PENDING);
		return 1;
	}
	attr.qp_timeout = dst->cfg.qp_timeout;
	memset(p, 0, sizeof(*p));
	p->used = true;
	if ((ret = dst->xp->pd_alloc(id, &p->pd)) ||
	    (ret = rdmig__ep_setup(&p->ep, id, p->pd, NULL, 0, &attr)) ||
	    (ret = dst->xp->accept(id)) || (ret = dst->xp->conn_info(id, &ci)) ||
	    (ret = rdmig__path_verify(&dst->cfg, dst->xp, id, "a control connection", NULL))) {
		dst_reject_note(dst, "setting up a control connection failed: %s",
				rdmig_last_error());
		rdmig__ep_teardown(&p->ep);
		p->ep.id = NULL; /* the caller rejects and destroys the id */
		dst_pending_free(dst, p);
		return 1;
	}
	p->hs.psk = dst->cfg.auth == RDMIG_AUTH_PSK ? dst->cfg.psk : NULL;
	p->hs.psk_len = dst->cfg.auth == RDMIG_AUTH_PSK ? dst->cfg.psk_len : 0;
	p->hs.ver_min = RDMIG__PROTO_MIN;
	p->hs.ver_max = RDMIG__PROTO_VERSION;
	p->hs.caps = RDMIG__CAPS;
	rdmig__hs_bind(&p->hs, &ci, false);
	p->deadline = rdmig__now_ns() + (uint64_t)dst->cfg.auth_timeout_ms * 1000000;
	return 0;
}

static int dst_accept_data(struct rdmig_dst *dst, struct rdmig__xp_id *id, uint32_t index)
{
	struct dst_session *s = &dst->s;
	struct rdmig__ep_attr attr = DATA_ATTR;
	int ret;

	attr.qp_timeout = dst->cfg.qp_timeout;
	if (!dst->gpd || !dst->xp->pd_on_dev_of(dst->gpd, id))
		return rdmig__err(-ENODEV, "data QP %u arrived on another device", index);
	/* In the guest's PD: the only QPs that can write guest memory. */
	if ((ret = rdmig__ep_setup(&s->data[index], id, dst->gpd, s->cq, index + 1, &attr)) ||
	    (ret = rdmig__seal_init(&s->data[index].seal, s->hs.keys.d2s, s->hs.keys.s2d,
				    index + 1)))
		return ret;
	return dst->xp->accept(id);
}

/*
 * A connection request. Returns 1 if the id must be rejected and destroyed,
 * 0 if it became part of the session, or a negative errno (session over).
 */
static int dst_on_connect(struct rdmig_dst *dst, const struct rdmig__xp_event *ev)
{
	struct dst_session *s = &dst->s;
	const void *pd = ev->pdata;
	size_t pdlen = ev->pdlen;
	uint8_t tag[RDMIG__TAG_LEN];
	struct rdmig__msg m;
	char why[256];
	int len, ret;

	len = rdmig__msg_peek_len(pd, pdlen);
	if (len < 0 || (size_t)len > pdlen) {
		dst_reject_note(dst, "not rdmig's (%zu bytes of private data)", pdlen);
		return 1;
	}
	if (rdmig__msg_decode(pd, (size_t)len, &m, why, sizeof(why))) {
		dst_reject_note(dst, "%s", why);
		return 1;
	}
	if (m.type != RDMIG__MSG_CONNECT) {
		dst_reject_note(dst, "%s is not a CONNECT", rdmig__msg_type_name(m.type));
		return 1;
	}
	if (m.connect.kind == RDMIG__CONN_CTRL) {
		if (s->state != DST_WAIT_CTRL) {
			dst_reject_note(dst, "a second source while one migrates");
			return 1;
		}
		return dst_accept_ctrl(dst, ev->id);
	}
	/* A data QP must show the session's key over its own QP number. */
	if (s->state != DST_RUNNING || m.connect.index >= s->nqps || s->data[m.connect.index].id ||
	    rdmig__hs_data_tag(&s->hs.keys, m.connect.index, m.connect.token, ev->peer_qpn, tag) ||
	    !rdmig__mac_equal(tag, m.connect.tag, sizeof(tag)) || m.connect.token != s->token) {
		dst_reject_note(dst, "data connection %u does not belong to the session",
				m.connect.index);
		return 1;
	}
	if ((ret = dst_accept_data(dst, ev->id, m.connect.index)))
		return ret;
	return 0;
}

static struct dst_pending *dst_pending_of(struct rdmig_dst *dst, const struct rdmig__xp_id *id)
{
	for (unsigned i = 0; i < DST_MAX_PENDING; i++)
		if (dst->pending[i].used && dst->pending[i].ep.id == id)
			return &dst->pending[i];
	return NULL;
}

/* Does the session own this id? */
static bool dst_owns(const struct dst_session *s, const struct rdmig__xp_id *id)
{
	if (s->ctrl.id == id)
		return true;
	for (unsigned i = 0; i < RDMIG__MAX_QPS; i++)
		if (s->data[i].id == id)
			return true;
	return false;
}

static int dst_on_ctrl_msg(struct rdmig_dst *dst, const struct rdmig__msg *m);

/*
 * The session broke on a flushed work request or a disconnect. If the
 * source said why on the control QP before it went (its ERROR is queued
 * there, unread), that is the better error: returns it, else `err`.
 */
static int dst_source_said(struct rdmig_dst *dst, int err)
{
	struct dst_session *s = &dst->s;
	struct rdmig__msg m;
	struct ibv_wc wc;
	char was[512];

	if (!s->ctrl.cq)
		return err;
	snprintf(was, sizeof(was), "%s", rdmig_last_error());
	while (rdmig__xp_poll(s->ctrl.cq, 1, &wc) == 1) {
		if (wc.status != IBV_WC_SUCCESS || rdmig__wr_kind_of(wc.wr_id) != RDMIG__WR_RECV)
			continue;
		if (!rdmig__ep_open(&s->ctrl,
				    rdmig__ep_recv_buf(&s->ctrl, rdmig__wr_val_of(wc.wr_id)),
				    wc.byte_len, &m, NULL, 0) &&
		    m.type == RDMIG__MSG_ERROR)
			return dst_on_ctrl_msg(dst, &m);
	}
	rdmig__err_set(err, was);
	return err;
}

static int dst_on_cm(struct rdmig_dst *dst, struct rdmig__xp_event *ev)
{
	struct dst_session *s = &dst->s;
	struct rdmig__xp_id *id = ev->id;
	struct dst_pending *p;
	int ret = 0;

	switch (ev->event) {
	case RDMA_CM_EVENT_CONNECT_REQUEST:
		ret = dst_on_connect(dst, ev);
		if (ret) {
			/* Rejected, or the setup failed: the id must not stay. */
			if (dst_owns(s, id)) {
				if (s->ctrl.id == id) {
					rdmig__ep_teardown(&s->ctrl);
					memset(&s->ctrl, 0, sizeof(s->ctrl));
				} else {
					for (unsigned i = 0; i < RDMIG__MAX_QPS; i++)
						if (s->data[i].id == id) {
							rdmig__ep_teardown(&s->data[i]);
							memset(&s->data[i], 0, sizeof(s->data[i]));
						}
				}
			}
			dst->xp->reject(id);
			dst->xp->chan_ack(ev);
			dst->xp->id_destroy(id);
			return ret > 0 ? 0 : ret;
		}
		break;
	case RDMA_CM_EVENT_ESTABLISHED:
	case RDMA_CM_EVENT_TIMEWAIT_EXIT:
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		if ((p = dst_pending_of(dst, id))) {
			if (!p->closing)
				dst_reject_note(dst, "the peer left before authenticating");
			dst->xp->chan_ack(ev);
			dst_pending_free(dst, p);
			return 0;
		}
		/* While completing, the ACK's completion decides (dst_on_wc). */
		if (dst_owns(s, id) && s->state != DST_DONE && s->state != DST_COMPLETING)
			ret = dst_source_said(
				dst, rdmig__err(-ECONNRESET,
						"the source disconnected after %" PRIu64
						" confirmed passes%s",
						s->passes,
						s->seen ? ", while the next one was ending" : ""));
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		ret = rdmig__err(-ENODEV, "the RDMA device was removed");
		break;
	default:
		if ((p = dst_pending_of(dst, id))) {
			dst_reject_note(dst, "%s before authenticating", rdma_event_str(ev->event));
			dst->xp->chan_ack(ev);
			dst_pending_free(dst, p);
			return 0;
		}
		if (dst_owns(s, id))
			ret = rdmig__err(-ECONNRESET, "source connection: %s (status %d)",
					 rdma_event_str(ev->event), ev->status);
		break;
	}
	dst->xp->chan_ack(ev);
	return ret;
}

/*
 * As dst_refuse(), for a layout or page size that differs from ours: the
 * difference is recorded for rdmig_dst_mismatch() and sent to the source
 * as a tag at the end of the ERROR's text (ctrl/handshake.h), for its
 * rdmig_src_mismatch(). Our own message has no tag.
 */
static int dst_refuse_layout(struct rdmig_dst *dst, uint32_t field, uint32_t region,
			     uint32_t dst_region, uint64_t sv, uint64_t dv, const char *fmt, ...)
	RDMIG__FMT(7, 8);

static int dst_refuse_layout(struct rdmig_dst *dst, uint32_t field, uint32_t region,
			     uint32_t dst_region, uint64_t sv, uint64_t dv, const char *fmt, ...)
{
	char text[512], tag[96];
	size_t n;
	va_list ap;

	dst->mismatch = (struct rdmig_layout_mismatch){ .size = sizeof(dst->mismatch),
							.field = field,
							.region = region,
							.dst_region = dst_region,
							.source = sv,
							.destination = dv };
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	rdmig__layout_tag(&dst->mismatch, tag, sizeof(tag));
	n = strlen(text);
	dst_revoke(dst);
	if (n + strlen(tag) < sizeof(text))
		memcpy(text + n, tag, strlen(tag) + 1);
	dst_send_error(dst, -EINVAL, text);
	text[n] = '\0';
	return rdmig__err(-EINVAL, "%s", text);
}

/* Compares the source's regions with ours (matched by gpa). */
static int dst_check_layout(struct rdmig_dst *dst, const struct rdmig__msg *m)
{
	const uint32_t n = m->auth.nregions;

	for (unsigned i = 0; i < n; i++) {
		const struct rdmig__wire_region *r = &m->auth.regions[i];
		uint32_t near = UINT32_MAX;
		unsigned j;

		for (j = 0; j < dst->nregions; j++)
			if (dst->regions[j].gpa == r->gpa)
				break;
		/* No region there: the lowest of ours it overlaps, if any. */
		for (unsigned k = 0; j == dst->nregions && k < dst->nregions; k++)
			if (dst->regions[k].gpa < r->gpa + r->len &&
			    r->gpa < dst->regions[k].gpa + dst->regions[k].len &&
			    (near == UINT32_MAX || dst->regions[k].gpa < dst->regions[near].gpa))
				near = k;
		if (j == dst->nregions)
			return dst_refuse_layout(
				dst, RDMIG_LAYOUT_GPA, i, near, r->gpa,
				near == UINT32_MAX ? UINT64_MAX : dst->regions[near].gpa,
				"region layout mismatch: the source's "
				"region %u (gpa 0x%" PRIx64 ", len 0x%" PRIx64 ") has no "
				"destination region at that gpa",
				i, r->gpa, r->len);
		if (dst->regions[j].len != r->len)
			return dst_refuse_layout(
				dst, RDMIG_LAYOUT_LENGTH, i, j, r->len, dst->regions[j].len,
				"region layout mismatch: gpa 0x%" PRIx64 " is 0x%" PRIx64
				" bytes at the source but 0x%" PRIx64 " at the destination",
				r->gpa, r->len, dst->regions[j].len);
	}
	if (n != dst->nregions)
		return dst_refuse_layout(dst, RDMIG_LAYOUT_COUNT, UINT32_MAX, UINT32_MAX, n,
					 dst->nregions,
					 "region layout mismatch: the source has %u regions, "
					 "the destination %u",
					 n, dst->nregions);
	return 0;
}

/*
 * The hashing pool: a thread per data QP (this one counting as one), no
 * more than the CPUs, and room for a batch of NOTICEs from every QP.
 */
static int dst_land_start(struct rdmig_dst *dst, unsigned nqps)
{
	struct dst_session *s = &dst->s;
	unsigned n = RDMIG__MIN(nqps, rdmig__ncpus_allowed());

	s->jobs = calloc((size_t)nqps * RDMIG__NOTICE_CREDITS, sizeof(*s->jobs));
	if (!s->jobs)
		return rdmig__err(-ENOMEM, "no memory for %u NOTICEs",
				  nqps * RDMIG__NOTICE_CREDITS);
	return rdmig__land_start(&s->land, &dst->scanner, &s->key, dst->cfg.page_size,
				 n ? n - 1 : 0);
}

/*
 * The source proved the key (its AUTH checked out): the pending connection
 * becomes the session, and only now is its proposal looked at, guest memory
 * registered and the layout with the rkeys sent (sealed).
 */
/*
 * Registering guest memory for remote write pins every page, and a page
 * not yet mapped is faulted in first (allocated and zeroed): for a fresh
 * guest nearly all of the time, one page after another in ibv_reg_mr().
 * MADV_POPULATE_WRITE (Linux 5.14) does that same fault-in, as a write
 * would and as the pin would, in slices on several threads; the pin then
 * finds the pages there. Contents are untouched (a page that exists keeps
 * its bytes; a missing one becomes the zero-filled page the pin would
 * make). Verbs only: the loopback pins nothing. Best effort: a kernel
 * without it, or a slice that fails, leaves the work (and the error, if
 * any) to ibv_reg_mr().
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PREFAULT_SLICE	 (64ull << 20)
#define PREFAULT_THREADS 8u

struct dst_prefault {
	struct rdmig_dst *dst;
	uint8_t *hva;
	uint64_t len;
};

static int dst_prefault_one(void *arg, unsigned job)
{
	struct dst_prefault *f = arg;
	uint64_t off = (uint64_t)job * PREFAULT_SLICE;

	if (rdmig__cancelled(&f->dst->cancel))
		return -ECANCELED; /* the caller says so */
	if (madvise(f->hva + off, RDMIG__MIN(PREFAULT_SLICE, f->len - off), MADV_POPULATE_WRITE))
		rdmig__log(RDMIG__LOG_DEBUG, "MADV_POPULATE_WRITE: %s", strerror(errno));
	return 0;
}

static void dst_prefault(struct rdmig_dst *dst, const struct dst_region *r)
{
	struct dst_prefault f = { .dst = dst, .hva = r->hva, .len = r->len };
	unsigned threads = RDMIG__MIN(rdmig__ncpus_allowed(), PREFAULT_THREADS);

	if (dst->cfg.transport == RDMIG__XPORT_LOOPBACK || threads < 2 ||
	    r->len < 2 * PREFAULT_SLICE)
		return;
	(void)rdmig__parallel((unsigned)((r->len + PREFAULT_SLICE - 1) / PREFAULT_SLICE), threads,
			      dst_prefault_one, &f);
}

static int dst_on_auth(struct rdmig_dst *dst, struct dst_pending *p, const struct rdmig__msg *hello)
{
	struct dst_session *s = &dst->s;
	struct rdmig__msg *ack = &dst->msg;
	uint64_t t0, bytes = 0;
	uint32_t nqps;
	int ret;

	s->pd = p->pd;
	s->ctrl = p->ep;
	s->hs = p->hs;
	memset(p, 0, sizeof(*p));
	if ((ret = rdmig__seal_init(&s->ctrl.seal, s->hs.keys.d2s, s->hs.keys.s2d, 0)))
		return ret;
	memcpy(s->key.secret, s->hs.keys.hash_secret, sizeof(s->key.secret));
	if ((ret = dst->xp->cq_create(s->pd, CQ_DEPTH, &s->cq)))
		return dst_refuse(dst, ret, "destination cannot create a CQ: %s", strerror(-ret));
	s->state = DST_RUNNING;
	for (unsigned i = 0; i < DST_MAX_PENDING; i++)
		if (dst->pending[i].used) /* they are strangers now */
			dst_pending_refuse(
				dst, &dst->pending[i], -EBUSY,
				"authentication failed: another peer proved the key first");

	if (hello->auth.page_size != dst->cfg.page_size)
		return dst_refuse_layout(dst, RDMIG_LAYOUT_PAGE_SIZE, UINT32_MAX, UINT32_MAX,
					 hello->auth.page_size, dst->cfg.page_size,
					 "page size mismatch: the source uses %u, the "
					 "destination %u",
					 hello->auth.page_size, dst->cfg.page_size);
	if ((ret = dst_check_layout(dst, hello)))
		return ret;
	nqps = RDMIG__MIN(hello->auth.nqps, dst->cfg.max_qps);

	/*
	 * Expose guest memory for remote write, from here to the session's
	 * end, in a PD of its own: only the data QPs join it (the control
	 * QP's, p->pd, holds nothing of the guest).
	 */
	t0 = rdmig__now_ns();
	if ((ret = dst->xp->pd_alloc(s->ctrl.id, &dst->gpd)))
		return dst_refuse(dst, ret, "destination cannot allocate a PD: %s",
				  rdmig_last_error());
	for (unsigned i = 0; i < dst->nregions; i++) {
		struct dst_region *r = &dst->regions[i];

		dst_prefault(dst, r);
		if (rdmig__cancelled(&dst->cancel)) /* registering a TiB takes minutes */
			return dst_refuse(dst, -ECANCELED,
					  "the destination cancelled the migration");
		ret = dst->xp->mr_reg(dst->gpd, r->hva, r->len,
				      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, &r->mr);
		if (ret)
			return dst_refuse(dst, ret,
					  "destination cannot register region %u (gpa "
					  "0x%" PRIx64 ", %" PRIu64 " bytes): %s",
					  i, r->gpa, r->len, strerror(-ret));
		bytes += r->len;
	}
	rdmig__log(RDMIG__LOG_INFO, "registered %u regions, %" PRIu64 " bytes, in %.1f ms",
		   dst->nregions, bytes, (double)(rdmig__now_ns() - t0) / 1e6);
	do {
		if (rdmig__random(&s->token, sizeof(s->token)))
			return dst_refuse(dst, -EIO, "no random token: %s", rdmig_last_error());
	} while (!s->token);

	memset(ack, 0, sizeof(*ack));
	ack->type = RDMIG__MSG_HELLO_ACK;
	ack->hello_ack.version = RDMIG__PROTO_VERSION;
	ack->hello_ack.page_size = dst->cfg.page_size;
	ack->hello_ack.nqps = nqps;
	ack->hello_ack.token = s->token;
	ack->hello_ack.nregions = hello->auth.nregions;
	s->notices = (hello->auth.flags & (RDMIG__AUTH_NOTICES | RDMIG__AUTH_VERIFY)) &&
		     (s->hs.caps_agreed & RDMIG__CAP_NOTICES);
	s->nsrc = hello->auth.nregions;
	for (unsigned i = 0; i < hello->auth.nregions; i++) {
		struct rdmig__wire_target *t = &ack->hello_ack.regions[i];
		const struct dst_region *r = NULL;

		for (unsigned j = 0; j < dst->nregions; j++)
			if (dst->regions[j].gpa == hello->auth.regions[i].gpa) {
				r = &dst->regions[j];
				s->map[i] = j;
			}
		t->gpa = r->gpa;
		t->len = r->len;
		t->addr = (uintptr_t)r->hva;
		t->rkey = r->mr->rkey;
		t->flags = r->flags & RDMIG_REGION_ZERO_FILLED ? RDMIG__TARGET_ZERO : 0;
	}
	/* From now on a source may write there: no later session may take
	 * this memory for zero-filled. */
	for (unsigned j = 0; j < dst->nregions; j++)
		dst->regions[j].flags &= ~RDMIG_REGION_ZERO_FILLED;
	if (s->notices && (ret = dst_land_start(dst, nqps)))
		return dst_refuse(dst, ret, "destination cannot hash what lands: %s",
				  rdmig_last_error());
	if ((ret = dst_send(dst, ack)))
		return ret;
	s->nqps = nqps;
	dst_arm(dst, dst->cfg.idle_timeout_ms);
	rdmig__log(RDMIG__LOG_INFO,
		   "serving a source over %s: protocol %u, %u data QPs, %u regions, %s",
		   dst->xp->name, s->hs.version, nqps, dst->nregions,
		   dst->cfg.auth == RDMIG_AUTH_PSK ? "authenticated" : "NOT authenticated");
	return 0;
}

static int dst_on_ctrl_msg(struct rdmig_dst *dst, const struct rdmig__msg *m)
{
	struct dst_session *s = &dst->s;
	struct rdmig__msg *ack = &dst->msg;

	if (m->type == RDMIG__MSG_COMPLETE && s->state == DST_RUNNING) {
		uint64_t t0 = rdmig__now_ns();
		bool pending = false;
		int ret;

		for (unsigned q = 0; q < s->nqps; q++)
			pending |= s->backlog[q].n != 0;
		if (dst->state.step == RDMIG__STATE_RUNS || dst->state.step == RDMIG__STATE_EXPOSED)
			return dst_refuse(dst, -EPROTO,
					  "COMPLETE while the device state is being sent");
		if (s->seen || pending || m->complete.passes != s->passes || !s->passes)
			return dst_refuse(dst, -EPROTO,
					  "COMPLETE after %" PRIu64 " passes, but %" PRIu64
					  " passes are placed%s",
					  m->complete.passes, s->passes,
					  s->seen ? " and one is under way" : "");
		/* No remote write is possible after this line. Deregistering
		 * waits: it takes time in proportion to the guest, and the
		 * source's guest is paused until it reads the ACK. */
		dst_revoke(dst);
		memset(ack, 0, sizeof(*ack));
		ack->type = RDMIG__MSG_COMPLETE_ACK;
		ack->complete.passes = s->passes;
		s->state = DST_COMPLETING;
		dst_arm(dst, dst->cfg.timeout_ms);
		ret = dst_send(dst, ack);
		s->complete_ns = rdmig__now_ns() - t0;
		return ret;
	}
	/* PROGRESS travels on the control QP, PASS_END on the data QPs: one
	 * sent just before a pass ended may arrive just after. */
	if (m->type == RDMIG__MSG_PROGRESS && s->state == DST_RUNNING &&
	    (m->progress.pass == s->passes + 1 || m->progress.pass == s->passes))
		return 0; /* the idle timer was re-armed on receipt */
	if (m->type == RDMIG__MSG_ERROR)
		return rdmig__err(-ECONNABORTED, "the source gave up: %s", m->error.text);
	if (m->type >= RDMIG__MSG_STATE_DESC && m->type <= RDMIG__MSG_STATE_END &&
	    m->type != RDMIG__MSG_STATE_READY && s->state == DST_RUNNING)
		return dst_on_state(dst, m);
	return dst_refuse(dst, -EPROTO, "unexpected %s from the source",
			  rdmig__msg_type_name(m->type));
}

static int dst_on_pass_end(struct rdmig_dst *dst, uint32_t qp, const struct rdmig__msg *m)
{
	struct dst_session *s = &dst->s;
	struct rdmig__msg *ack = &dst->msg;

	if (m->type != RDMIG__MSG_PASS_END)
		return dst_refuse(dst, -EPROTO, "unexpected %s on data QP %u",
				  rdmig__msg_type_name(m->type), qp);
	if (m->pass_end.qp != qp || m->pass_end.pass != s->passes + 1 || (s->seen & (1ull << qp)))
		return dst_refuse(dst, -EPROTO,
				  "PASS_END for pass %" PRIu64 " QP %u arrived on QP "
				  "%u while pass %" PRIu64 " runs",
				  m->pass_end.pass, m->pass_end.qp, qp, s->passes + 1);
	s->seen |= 1ull << qp;
	s->pass_bytes += m->pass_end.bytes;
	if ((unsigned)__builtin_popcountll(s->seen) < s->nqps)
		return 0;

	/* Every data QP has ended the pass: all its writes are placed. */
	s->passes++;
	s->wire_bytes += s->pass_bytes;
	memset(ack, 0, sizeof(*ack));
	ack->type = RDMIG__MSG_PASS_ACK;
	ack->pass_ack.pass = s->passes;
	ack->pass_ack.bytes = s->pass_bytes;
	s->seen = 0;
	s->pass_bytes = 0;
	return dst_send(dst, ack);
}

/*
 * A NOTICE: the WRITEs before it on this QP are placed. Checked here, then
 * queued for the hashing pool (dataplane/land.h): zero the pages the
 * source ordered zeroed, hash those it wrote, answer with what landed.
 */
static int dst_on_notice(struct rdmig_dst *dst, uint32_t qp, struct rdmig__land_job *job)
{
	struct dst_session *s = &dst->s;
	const struct rdmig__msg *m = &job->notice;
	const uint32_t ps = dst->cfg.page_size;
	const struct dst_region *r;
	uint64_t npages, last;

	if (!s->notices)
		return dst_refuse(dst, -EPROTO, "NOTICE on data QP %u, but HELLO announced none",
				  qp);
	/* Only while guest memory is exposed, and before this QP ended the pass. */
	if (s->state != DST_RUNNING || (s->seen & (1ull << qp)))
		return dst_refuse(dst, -EPROTO, "NOTICE on data QP %u %s", qp,
				  s->state != DST_RUNNING ? "outside the session's write window"
							  : "after its PASS_END");
	if (m->notice.pass != s->passes + 1)
		return dst_refuse(dst, -EPROTO,
				  "NOTICE for pass %" PRIu64 " on data QP %u while pass %" PRIu64
				  " runs",
				  m->notice.pass, qp, s->passes + 1);
	if (m->notice.region >= s->nsrc)
		return dst_refuse(dst, -EBADMSG, "NOTICE for region %u of %u", m->notice.region,
				  s->nsrc);
	r = &dst->regions[s->map[m->notice.region]];
	npages = r->len / ps;
	/* The entries increase (decode checked): the last page is the largest. */
	last = m->notice.page[m->notice.npages - 1] & ~RDMIG__NOTICE_ZERO;
	if (last >= npages)
		return dst_refuse(dst, -EBADMSG,
				  "NOTICE for page %" PRIu64 " of region %u, which has %" PRIu64,
				  last, m->notice.region, npages);
	job->hva = r->hva;
	job->qp = qp;
	s->queued[qp]++;
	return 0;
}

/*
 * Takes the data QP's waiting messages, in order, into the batch (jobs
 * from *njobs on): a NOTICE while a send buffer is free for its answer, a
 * PASS_END once no NOTICE before it waits in the batch (*later: it waits
 * for the batch's answers).
 */
static int dst_gather(struct rdmig_dst *dst, uint32_t qp, unsigned *njobs, bool *later)
{
	struct dst_session *s = &dst->s;
	struct rdmig__ep *ep = &s->data[qp];
	struct rdmig__land_job *job;
	struct rdmig__msg m;
	char why[256];
	int ret;

	while (s->backlog[qp].n) {
		unsigned k = s->backlog[qp].head % (RDMIG__NOTICE_CREDITS + 1);
		uint32_t buf = s->backlog[qp].buf[k];
		const uint8_t *b = rdmig__ep_recv_buf(ep, buf);
		bool notice = s->backlog[qp].len[k] >= RDMIG__HDR_LEN &&
			      (b[6] | b[7] << 8) == RDMIG__MSG_NOTICE;

		/* Every answer buffer in flight or taken: a completion resumes
		 * us. The type is peeked unchecked (the MAC is checked once,
		 * when it is taken); it only decides whether to wait. */
		if (notice &&
		    (unsigned)__builtin_popcount(ep->send_busy) + s->queued[qp] >= ep->attr.nsend)
			return 0;
		if (!notice && s->queued[qp]) {
			*later = true;
			return 0;
		}
		/* No pool without NOTICEs announced: one is refused below. */
		job = s->jobs ? &s->jobs[*njobs] : NULL;
		ret = rdmig__ep_open(ep, b, s->backlog[qp].len[k], job ? &job->notice : &m, why,
				     sizeof(why));
		if (ret)
			return dst_refuse(dst, ret, "bad message on data connection %u: %s", qp + 1,
					  why);
		s->backlog[qp].head++;
		s->backlog[qp].n--;
		if ((ret = rdmig__ep_post_recv(ep, buf)))
			return ret;
		/* The MAC covers the type the peek read: they agree. */
		if (job && job->notice.type == RDMIG__MSG_NOTICE) {
			if ((ret = dst_on_notice(dst, qp, job)))
				return ret;
			(*njobs)++;
		} else if (!job && m.type == RDMIG__MSG_NOTICE) {
			return dst_refuse(dst, -EPROTO,
					  "NOTICE on data QP %u, but HELLO announced none", qp);
		} else if ((ret = dst_on_pass_end(dst, qp, job ? &job->notice : &m))) {
			return ret;
		}
	}
	return 0;
}

/*
 * Handles the data QPs' waiting messages: each QP's in order, the NOTICEs
 * of all of them hashed as one batch by the pool, their answers sent in
 * order on each NOTICE's QP; again while a PASS_END waited for them.
 */
static int dst_drain(struct rdmig_dst *dst)
{
	struct dst_session *s = &dst->s;
	bool later = true;
	int ret;

	s->drain = false;
	while (later && s->state == DST_RUNNING) {
		unsigned njobs = 0;

		later = false;
		for (unsigned qp = 0; qp < s->nqps; qp++)
			if ((ret = dst_gather(dst, qp, &njobs, &later)))
				return ret;
		if (!njobs)
			return 0;
		rdmig__land_run(&s->land, s->jobs, njobs);
		for (unsigned j = 0; j < njobs; j++) {
			s->queued[s->jobs[j].qp]--;
			if ((ret = rdmig__ep_send(&s->data[s->jobs[j].qp], &s->jobs[j].ans)))
				return ret;
		}
	}
	return 0;
}

static int dst_on_wc(struct rdmig_dst *dst, const struct ibv_wc *wc)
{
	struct dst_session *s = &dst->s;
	uint32_t epi = rdmig__wr_ep_of(wc->wr_id), i = rdmig__wr_val_of(wc->wr_id);
	struct rdmig__ep *ep = epi == 0 ? &s->ctrl : &s->data[epi - 1];
	struct rdmig__msg m;
	char why[256];
	int ret;

	/*
	 * Once COMPLETE_ACK is posted the source closes as soon as it reads
	 * it, and its disconnect may overtake our ACK's own completion: then
	 * only that completion says whether the ACK arrived. Nor may anything
	 * that arrives meanwhile (a duplicated COMPLETE, a stale message)
	 * fail us: remote access is revoked, so nothing can change the
	 * image, and the source may have read the ACK already: failing here
	 * would leave a source that completed beside a destination that
	 * reports failure.
	 */
	if (s->state >= DST_COMPLETING &&
	    !(epi == 0 && rdmig__wr_kind_of(wc->wr_id) == RDMIG__WR_SEND))
		return 0;
	/* A receive that fails locally met a message too big for its buffer
	 * (soft-RoCE reports that as a QP operation error). */
	if ((wc->status == IBV_WC_LOC_LEN_ERR || wc->status == IBV_WC_LOC_QP_OP_ERR) &&
	    rdmig__wr_kind_of(wc->wr_id) == RDMIG__WR_RECV)
		return dst_refuse(dst, -EBADMSG,
				  "%s connection %u: a message larger than %u bytes (%s)",
				  epi ? "data" : "control", epi, ep->attr.bufsize,
				  ibv_wc_status_str(wc->status));
	if (wc->status != IBV_WC_SUCCESS)
		return dst_source_said(
			dst,
			rdmig__err(wc->status == IBV_WC_WR_FLUSH_ERR ? -ECONNRESET : -EIO,
				   "%s connection %u: %s (status %d)%s", epi ? "data" : "control",
				   epi, ibv_wc_status_str(wc->status), wc->status,
				   wc->status == IBV_WC_WR_FLUSH_ERR ? ": the source is gone"
								     : ""));
	if (rdmig__wr_kind_of(wc->wr_id) == RDMIG__WR_SEND) {
		rdmig__ep_send_done(ep, i);
		if (s->state == DST_COMPLETING && epi == 0 && !s->ctrl.send_busy)
			s->state = DST_DONE;
		s->drain |= epi != 0;
		return 0;
	}
	if (epi) {
		unsigned qp = epi - 1, k;

		if (s->backlog[qp].n > RDMIG__NOTICE_CREDITS)
			return dst_refuse(dst, -EPROTO,
					  "data QP %u: more than %u NOTICEs unanswered", qp,
					  RDMIG__NOTICE_CREDITS);
		k = (s->backlog[qp].head + s->backlog[qp].n++) % (RDMIG__NOTICE_CREDITS + 1);
		s->backlog[qp].buf[k] = i;
		s->backlog[qp].len[k] = wc->byte_len;
		if (s->state == DST_RUNNING)
			dst_arm(dst, dst->cfg.idle_timeout_ms);
		s->drain = true;
		return 0;
	}
	ret = rdmig__ep_open(ep, rdmig__ep_recv_buf(ep, i), wc->byte_len, &m, why, sizeof(why));
	if (ret)
		return dst_refuse(dst, ret, "bad message on %s connection %u: %s",
				  epi ? "data" : "control", epi, why);
	if ((ret = rdmig__ep_post_recv(ep, i)))
		return ret;
	if (s->state == DST_RUNNING)
		dst_arm(dst, dst->cfg.idle_timeout_ms);
	return dst_on_ctrl_msg(dst, &m);
}

static int dst_pending_wc(struct rdmig_dst *dst, struct dst_pending *p, const struct ibv_wc *wc);

/* Lets the ERROR dst_pending_refuse() posted leave (100 ms at most). */
static void dst_pending_flush(struct rdmig_dst *dst, struct dst_pending *p)
{
	while (p->used && p->closing && rdmig__ms_left(p->deadline) > 0) {
		struct ibv_wc w;

		if (rdmig__cq_wait(p->ep.cq, &w, 1, 10) == 1 && dst_pending_wc(dst, p, &w) < 0)
			break;
	}
}

/*
 * A completion on a pending connection: its HELLO (answered with the
 * CHALLENGE), then its AUTH (the session begins), or anything that ends
 * the attempt. Returns 0, or a negative errno when the run must end.
 */
static int dst_pending_wc(struct rdmig_dst *dst, struct dst_pending *p, const struct ibv_wc *wc)
{
	uint32_t i = rdmig__wr_val_of(wc->wr_id);
	struct rdmig__msg *m = &dst->msg;
	uint8_t out[RDMIG__HDR_LEN + 96];
	const uint8_t *buf;
	char why[512];
	bool fatal;
	int ret;

	if (wc->status != IBV_WC_SUCCESS) {
		if (!p->closing)
			dst_reject_note(dst, "connection error before authenticating: %s",
					ibv_wc_status_str(wc->status));
		dst_pending_free(dst, p);
		return 0;
	}
	if (rdmig__wr_kind_of(wc->wr_id) == RDMIG__WR_SEND) {
		rdmig__ep_send_done(&p->ep, i);
		if (p->closing && !p->ep.send_busy)
			dst_pending_free(dst, p);
		return 0;
	}
	if (p->closing)
		return 0;
	buf = rdmig__ep_recv_buf(&p->ep, i);
	if (p->hs.step == RDMIG__HS_START) {
		ret = rdmig__hs_dst_hello(&p->hs, buf, wc->byte_len, out, sizeof(out), &fatal, why,
					  sizeof(why));
		if (ret < 0) {
			dst_pending_refuse(dst, p, ret, why);
			if (!fatal)
				return 0;
			/* Without a key every peer is the source: its mismatch ends the
			 * run, once the source had 100 ms to read why. */
			dst_pending_flush(dst, p);
			return rdmig__err(ret, "%s", why);
		}
		if (rdmig__ep_post_recv(&p->ep, i) ||
		    rdmig__ep_send_raw(&p->ep, out, (size_t)ret)) {
			dst_reject_note(dst, "cannot answer a HELLO: %s", rdmig_last_error());
			dst_pending_free(dst, p);
		}
		return 0;
	}
	if ((ret = rdmig__hs_dst_auth(&p->hs, buf, wc->byte_len, m, why, sizeof(why)))) {
		dst_pending_refuse(dst, p, ret, why);
		if (!p->hs.proven)
			return 0;
		/* A peer that proved the key is the source: its bad AUTH ends the run. */
		dst_pending_flush(dst, p);
		return rdmig__err(ret, "the source proved the key, then: %s", why);
	}
	if ((ret = rdmig__ep_post_recv(&p->ep, i))) {
		dst_pending_free(dst, p);
		return ret;
	}
	/* m is dst->msg, which the HELLO_ACK is built in: keep a copy. */
	{
		struct rdmig__msg *prop = malloc(sizeof(*prop));

		if (!prop) {
			dst_pending_free(dst, p);
			return rdmig__err(-ENOMEM, "no memory for the source's proposal");
		}
		*prop = *m;
		ret = dst_on_auth(dst, p, prop);
		free(prop);
	}
	return ret;
}

/*
 * Handles what cq holds: the session's (p NULL) or pending connection
 * p's. Returns how many completions it handled, or the error that ends
 * the run.
 */
static int dst_drain_cq(struct rdmig_dst *dst, struct rdmig__xp_cq *cq, struct dst_pending *p)
{
	struct dst_session *s = &dst->s;
	struct ibv_wc wc[64];
	int n = 0, ret, done = 0;

	/* A few batches, then back to the loop: under a pass's steady stream
	 * the data CQ never empties, and a cancel, a deadline or a connection
	 * event must not wait for it to. */
	for (unsigned batch = 0;
	     batch < 4 && (n = rdmig__xp_poll(cq, RDMIG__ARRAY_SIZE(wc), wc)) > 0; batch++) {
		done += n;
		for (int i = 0; i < n; i++) {
			if (p && p->used)
				ret = dst_pending_wc(dst, p, &wc[i]);
			else if (s->state != DST_DONE && (cq == s->ctrl.cq || cq == s->cq))
				ret = dst_on_wc(dst, &wc[i]); /* p became the session */
			else
				return done; /* p is gone, and its CQ with it */
			if (ret)
				return ret;
		}
		/* The batch's NOTICEs, hashed together. */
		if (s->drain && (ret = dst_drain(dst)))
			return ret;
		if (p && !p->used && cq != s->ctrl.cq)
			return done;
	}
	if (n < 0)
		return rdmig__err(-EIO, "polling the CQ failed");
	return done;
}

/* Pending connections out of time: refused (or, when refused already, closed). */
static void dst_pending_expire(struct rdmig_dst *dst)
{
	uint64_t now = rdmig__now_ns();
	char why[128];

	for (unsigned i = 0; i < DST_MAX_PENDING; i++) {
		struct dst_pending *p = &dst->pending[i];

		if (!p->used || now < p->deadline)
			continue;
		if (p->closing) {
			dst_pending_free(dst, p);
			continue;
		}
		snprintf(why, sizeof(why), "no proof of the key within %u ms",
			 dst->cfg.auth_timeout_ms);
		dst_pending_refuse(dst, p, -ETIMEDOUT, why);
	}
}

static int dst_serve(struct rdmig_dst *dst)
{
	struct dst_session *s = &dst->s;
	struct rdmig__xp_event ev;
	int ret;

	dst_arm(dst, dst->cfg.accept_timeout_ms);
	while (s->state != DST_DONE) {
		/* Once COMPLETE_ACK is posted the source may be done and the guest
		 * on its way here: a cancel then would lose it. Finish instead. */
		if (rdmig__cancelled(&dst->cancel) && s->state < DST_COMPLETING) {
			/* No remote write from here on; then the source learns why. */
			dst_revoke(dst);
			dst_send_error_within(dst, -ECANCELED,
					      "the destination cancelled the migration", 100);
			return rdmig__err(-ECANCELED, "cancelled by the VMM (rdmig_dst_cancel)%s",
					  s->state == DST_RUNNING ? ", the source told" : "");
		}
		struct rdmig__xp_cq *cqs[2 + DST_MAX_PENDING];
		struct dst_pending *owner[2 + DST_MAX_PENDING];
		struct pollfd pfd[4 + DST_MAX_PENDING];
		uint64_t next = s->deadline;
		unsigned ncq = 0;
		bool ready = false;
		int wait;

		if (s->deadline && rdmig__ms_left(s->deadline) == 0) {
			switch (s->state) {
			case DST_WAIT_CTRL:
				return rdmig__err(-ETIMEDOUT,
						  "no source authenticated within %u ms (%" PRIu64
						  " attempts refused%s%s)",
						  dst->cfg.accept_timeout_ms, dst->rejected,
						  dst->rejected ? ", the last: " : "",
						  dst->rejected ? dst->last_reject : "");
			case DST_RUNNING:
				/* Tell the source, should it come back, why: not a
				 * bare flush. Remote access goes first. */
				dst_revoke(dst);
				dst_send_error_within(dst, -ETIMEDOUT,
						      "the destination gave up: the source was "
						      "silent for longer than its idle timeout",
						      100);
				return rdmig__err(-ETIMEDOUT,
						  "the source was silent for %u ms "
						  "(RDMIG_IDLE_TIMEOUT_MS) after %" PRIu64
						  " passes",
						  dst->cfg.idle_timeout_ms, s->passes);
			default:
				return rdmig__err(-ETIMEDOUT,
						  "the source did not go on within %u ms",
						  dst->cfg.timeout_ms);
			}
		}
		dst_pending_expire(dst);

		if (s->ctrl.cq)
			cqs[ncq] = s->ctrl.cq, owner[ncq++] = NULL;
		if (s->cq)
			cqs[ncq] = s->cq, owner[ncq++] = NULL;
		for (unsigned i = 0; i < DST_MAX_PENDING; i++)
			if (dst->pending[i].used) {
				cqs[ncq] = dst->pending[i].ep.cq;
				owner[ncq++] = &dst->pending[i];
				if (!next || dst->pending[i].deadline < next)
					next = dst->pending[i].deadline;
			}
		/* Arm, then take what is already there: a completion after the
		 * arming wakes the poll, one before it is handled now. */
		pfd[0] = (struct pollfd){ .fd = dst->ch->fd, .events = POLLIN };
		for (unsigned i = 0; i < ncq; i++) {
			if (cqs[i]->ops->cq_arm(cqs[i]))
				return rdmig__err(-EIO, "arming a CQ failed");
			pfd[1 + i] = (struct pollfd){ .fd = cqs[i]->fd, .events = POLLIN };
		}
		pfd[1 + ncq] = (struct pollfd){ .fd = dst->cancel.fd, .events = POLLIN };
		/* Completions first: a message that arrived before a disconnect
		 * (an ERROR, the last PASS_END) is worth reading. */
		for (unsigned i = 0; i < ncq && s->state != DST_DONE; i++) {
			if (owner[i] && (!owner[i]->used || owner[i]->ep.cq != cqs[i]))
				continue; /* freed or promoted by an earlier CQ's work */
			if ((ret = dst_drain_cq(dst, cqs[i], owner[i])) < 0)
				return ret;
			ready |= ret > 0;
		}
		if (s->state == DST_DONE)
			break;
		wait = next ? rdmig__ms_left(next) : -1;
		if (!ready && poll(pfd, 2 + ncq, wait) < 0 && errno != EINTR)
			return rdmig__err(-errno, "poll: %s", strerror(errno));
		for (unsigned i = 0; i < ncq; i++)
			if (!owner[i] || (owner[i]->used && owner[i]->ep.cq == cqs[i]))
				cqs[i]->ops->cq_ack(cqs[i]);
		ret = 0;
		while (s->state != DST_DONE && !(ret = rdmig__cm_next(dst->ch, 0, &ev)))
			if ((ret = dst_on_cm(dst, &ev)))
				return ret;
		if (ret && ret != -ETIMEDOUT)
			return ret;
	}
	return 0;
}

int rdmig_dst_run(struct rdmig_dst *dst, struct rdmig_dst_stats *stats)
{
	uint64_t t0;
	int ret;

	rdmig__err_clear();
	if (!dst)
		return rdmig__err(-EINVAL, "dst is NULL");
	if (!dst->listen_id)
		return rdmig__err(-ENOTCONN, "not listening: call rdmig_dst_listen() first");
	if (stats && stats->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "stats->size is %zu: set it to sizeof(*stats)",
				  stats->size);
	if (rdmig__cancelled(&dst->cancel))
		return rdmig__err(-ECANCELED, "cancelled by the VMM (rdmig_dst_cancel)");
	/* What the last completed run left registered (and unreachable). */
	dst_release_memory(dst);
	memset(&dst->s, 0, sizeof(dst->s));
	memset(&dst->mismatch, 0, sizeof(dst->mismatch));
	rdmig__state_rx_reset(&dst->state); /* the last run's blobs are gone now */
	dst->rejected = 0;
	dst->last_reject[0] = '\0';
	t0 = rdmig__now_ns();
	ret = dst_serve(dst);
	if (stats) {
		struct rdmig_dst_stats st = { .size = stats->size,
					      .passes = dst->s.passes,
					      .wire_bytes = dst->s.wire_bytes,
					      .duration_ns = rdmig__now_ns() - t0,
					      .rejected = dst->rejected,
					      .state_blobs = dst->state.n,
					      .state_bytes = dst->state.bytes,
					      .state_wire_bytes = dst->state.wrote,
					      .state_zero_pages = dst->state.zero,
					      .complete_ns = dst->s.complete_ns };

		if (dst->state.step != RDMIG__STATE_DONE)
			st.state_blobs = st.state_bytes = st.state_wire_bytes =
				st.state_zero_pages = 0;
		memcpy(stats, &st, RDMIG__MIN(stats->size, sizeof(st)));
	}
	/* Completed: the connections go, guest memory stays registered (but
	 * unreachable) until the next run or destroy, so the VMM can resume
	 * the guest now. Failed: nothing stays. */
	dst_end_session(dst, !ret);
	/* Only a completed migration's state is the VMM's to read. */
	if (ret || dst->state.step != RDMIG__STATE_DONE)
		rdmig__state_rx_reset(&dst->state);
	for (unsigned i = 0; i < DST_MAX_PENDING; i++)
		if (dst->pending[i].used)
			dst_pending_free(dst, &dst->pending[i]);
	/* Served: a stranger refused meanwhile is no failure of this call. */
	if (!ret)
		rdmig__err_clear();
	return ret;
}

int rdmig_dst_mismatch(struct rdmig_dst *dst, struct rdmig_layout_mismatch *mm)
{
	rdmig__err_clear();
	if (!dst)
		return rdmig__err(-EINVAL, "dst is NULL");
	return rdmig__layout_copy(&dst->mismatch, mm);
}

void rdmig_dst_destroy(struct rdmig_dst *dst)
{
	if (!dst)
		return;
	dst_end_session(dst, false);
	rdmig__state_rx_reset(&dst->state);
	for (unsigned i = 0; i < DST_MAX_PENDING; i++)
		if (dst->pending[i].used)
			dst_pending_free(dst, &dst->pending[i]);
	if (dst->listen_id)
		dst->xp->id_destroy(dst->listen_id);
	if (dst->ch)
		dst->xp->chan_destroy(dst->ch);
	rdmig__config_wipe(&dst->cfg);
	rdmig__cancel_fini(&dst->cancel);
	free(dst);
}

/* --- device state (blob.h) ------------------------------------------------- */

/*
 * STATE_DESC, STATE_ZERO, STATE_END from the source, between passes: the
 * buffers are obtained and zeroed as the descriptors come, exposed for
 * remote write once the last run arrived, withdrawn at the end marker
 * (every WRITE before it on the control QP is placed), then every blob is
 * hashed as it landed. A blob whose hash differs fails the session, naming
 * it (the source sees -EIO).
 */
static int dst_on_state(struct rdmig_dst *dst, const struct rdmig__msg *m)
{
	struct dst_session *s = &dst->s;
	struct rdmig__state_rx *rx = &dst->state;
	bool pending = false;
	char why[384];
	int ret;

	for (unsigned q = 0; q < s->nqps; q++)
		pending |= s->backlog[q].n != 0;
	if (!s->passes || s->seen || pending)
		return dst_refuse(dst, -EPROTO, "%s %s", rdmig__msg_type_name(m->type),
				  !s->passes ? "before any pass" : "while a pass is under way");
	switch (m->type) {
	case RDMIG__MSG_STATE_DESC:
		ret = rdmig__state_rx_desc(rx, m, dst->cfg.page_size, why, sizeof(why));
		break;
	case RDMIG__MSG_STATE_ZERO:
		ret = rdmig__state_rx_zero(rx, m, dst->cfg.page_size, why, sizeof(why));
		break;
	default: /* STATE_END */
		ret = rdmig__state_rx_end(rx, dst->xp, m, &dst->scanner, &s->key, &dst->msg, why,
					  sizeof(why));
		if (!ret)
			return dst_send(dst, &dst->msg);
		break;
	}
	if (ret)
		return dst_refuse(dst, ret, "%s", why);
	if (!rdmig__state_rx_ready(rx))
		return 0;
	/* Exposed from here to STATE_END, or the session's end. */
	if ((ret = rdmig__state_rx_expose(rx, dst->xp, s->pd, &dst->msg, why, sizeof(why))))
		return dst_refuse(dst, ret, "%s", why);
	return dst_send(dst, &dst->msg);
}

int rdmig_dst_set_state_alloc(struct rdmig_dst *dst, rdmig_state_alloc_fn fn, void *arg)
{
	rdmig__err_clear();
	if (!dst)
		return rdmig__err(-EINVAL, "dst is NULL");
	dst->state.alloc = fn;
	dst->state.alloc_arg = fn ? arg : NULL;
	return 0;
}

int rdmig_dst_state(struct rdmig_dst *dst, const struct rdmig_blob **blobs)
{
	rdmig__err_clear();
	if (!dst || !blobs)
		return rdmig__err(-EINVAL, "%s is NULL", dst ? "blobs" : "dst");
	*blobs = dst->state.pub;
	return dst->state.step == RDMIG__STATE_DONE ? (int)dst->state.n : 0;
}
