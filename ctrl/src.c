/* SPDX-License-Identifier: MIT */
/*
 * The source side: regions, connecting (control connection, HELLO, data
 * connections), passes and completion. The calling thread owns the control
 * connection; workers own the data QPs (dataplane/worker.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>

#include <openssl/crypto.h>

#include "../dataplane/model.h"
#include "../dataplane/ranges.h"
#include "../dataplane/scan.h"
#include "../dataplane/worker.h"
#include "../common/conn.h"
#include "../common/proto.h"
#include "blob.h"
#include "handshake.h"
#include "discard.h"
#include "hooks.h"
#include "path.h"
#include "session.h"

/*
 * How often a running pass tells the destination it goes on; the
 * destination's RDMIG_IDLE_TIMEOUT_MS must be a few times longer.
 */
#define PROGRESS_NS (1000ull * 1000000)

/* Dirty pages an estimate scans to learn what a pass would send (~2 ms):
 * with a tenth of them written, the share is known to about 5%, and better
 * once pooled with recent passes' counts (the model does when they agree). */
#define ESTIMATE_SAMPLE 4096
/* With larger pages, as many as fit in the same 16 MiB (one at least):
 * what the estimate reads stays about 2 ms whatever the page size. */
#define ESTIMATE_SAMPLE_BYTES (ESTIMATE_SAMPLE * 4096ull)

enum src_state {
	SRC_IDLE,      /* adding regions; may connect */
	SRC_CONNECTED, /* passes may run */
	SRC_FAILED,    /* the session broke; only destroy is left */
	SRC_DONE,      /* completed */
};

struct src_region {
	uint64_t gpa;
	uint8_t *hva;
	uint64_t len;
	/*
	 * Pages that some pass has sent: complete refuses while any page never
	 * was (DESIGN.md invariant 1), NULL until the first partial pass.
	 */
	uint64_t *sent;
	uint64_t unsent; /* clear bits of `sent` */
	bool all_sent;
	/*
	 * Pages left unsent as don't-care (dirty while in the skip set). One
	 * that leaves the skip set must be dirty when it does, or the
	 * destination keeps a stale copy: a pass refuses that. NULL until a
	 * pass has a skip set.
	 */
	uint64_t *ballooned;
	/*
	 * A final pass's second round: the pages whose copy mismatched in its
	 * first (a snapshot of dpr[].mismatch, which the round changes).
	 */
	uint64_t *retry;
	/* Every page set: the dirty log of an RDMIG_PASS_ALL pass given skip
	 * sets. NULL until the first such pass. */
	uint64_t *all;
	/* A pass over dirty lists: their pages as a bitmap, set for the pass
	 * and cleared after (only the words of its chunks). NULL until the
	 * first such pass. */
	uint64_t *list;
};

struct rdmig_src {
	struct rdmig__config cfg;
	struct rdmig__scanner scanner; /* chosen at create: RDMIG_SIMD errors show early */
	enum src_state state;
	int fail_err;
	char fail_msg[512];

	struct src_region regions[RDMIG__MAX_REGIONS];
	struct rdmig__dp_region dpr[RDMIG__MAX_REGIONS];
	unsigned nregions;
	/* The MRs of guest memory and the discards that stale them (discard.h). */
	struct rdmig__disc disc;
	struct rdmig_dirty dirty_scratch[RDMIG__MAX_REGIONS]; /* a pass's logs with discards */

	const struct rdmig__xp_ops *xp; /* the transport (RDMIG_TRANSPORT) */
	struct rdmig__xp_chan *ch;
	struct rdmig__xp_pd *pd;
	struct rdmig__ep ctrl;
	struct rdmig__ep data[RDMIG__MAX_QPS];
	unsigned nqps; /* data endpoints set up */
	struct rdmig__dp dp;
	struct rdmig__scan_key key;    /* this migration's hash key, derived (never sent) */
	struct rdmig__hs hs;	       /* the handshake, then the session's keys */
	uint16_t offer_min, offer_max; /* versions HELLO offers (tests may widen it) */
	uint32_t offer_caps;
	bool hs_plain_ok; /* waiting for HELLO_ACK: a plain ERROR may come instead */
	bool peer_error;  /* the destination's ERROR was read (rdmig__err says it) */
	/* The last control message as received: the handshake needs its bytes. */
	uint8_t raw[RDMIG__HS_HELLO_MAX];
	size_t raw_len;
	rdmig__scan_hook_fn hook; /* tests only: see ctrl/hooks.h */
	void *hook_arg;
	struct rdmig_pass_stats totals; /* summed over passes */
	struct rdmig__model model;	/* recent passes, for rdmig_src_estimate() */
	/*
	 * The skip policy (RDMIG_SKIP_POLICY): the share of dirty pages
	 * compared with the destination's hash that were unchanged, in the
	 * last pass that compared any (negative: none yet), and what hashing
	 * and a zero check cost a worker per byte, measured at connect.
	 */
	double skip_share;
	double hash_rate, zero_rate; /* bytes per second, one worker */
	bool dp_started;
	uint64_t token;
	uint64_t passes;
	uint64_t mismatch_pending; /* bits set in dpr[].mismatch */
	uint64_t progress_ns;	   /* when the last PROGRESS went out */
	uint64_t pass_start_ns;

	/* A control message that arrived while we waited for something else. */
	bool stashed;
	struct rdmig__msg stash;
	struct rdmig__msg msg; /* scratch: messages are too big for the stack */

	struct rdmig__cancel cancel; /* rdmig_src_cancel(): any thread, a signal handler */

	/* Choosing the path (path.h): where every id leaves from, and what the
	 * control connection went through (tests read it, ctrl/hooks.h). */
	bool path_has_local;
	struct sockaddr_storage path_local;
	struct rdmig__xp_path path;

	/* An RDMIG_PASS_ALL pass with skip sets: the VMM's entries, with
	 * regions[].all for their bitmaps. */
	struct rdmig_dirty all_scratch[RDMIG__MAX_REGIONS];
	/* rdmig_src_mismatch(): what the destination said of the latest connect. */
	struct rdmig_layout_mismatch mismatch;

	/* Device state (blob.h, rdmig_src_send_state()): sent once per session. */
	bool state_sent;
	uint64_t state_expect; /* rdmig_src_expect_state() */
	/* What the estimate of the whole downtime builds on, measured at connect:
	 * the HELLO -> CHALLENGE round trip, and registering guest memory. */
	uint64_t rtt_ns;
	uint64_t reg_bytes, reg_ns;
	/* While rdmig_src_send_state() runs: its blobs' MRs, which teardown
	 * drops after the QPs that could read them and before the PD. */
	struct rdmig__state_tx *state_tx;

	/*
	 * rdmig_src_progress(), from any thread: the workers publish their
	 * counters in pub[] (never freed before destroy, so a reader never
	 * touches freed memory whatever the session does); the owner changes
	 * the rest only inside a seqlock write (prog_seq odd), so a reader
	 * sees a pass's start, pause and end whole, and retries meanwhile.
	 */
	atomic_uint prog_seq;
	atomic_uint prog_state, prog_workers;
	atomic_uint_fast64_t prog_pass, prog_chunks, prog_base_bytes;
	struct rdmig__dp_pub pub[RDMIG__MAX_WORKERS];

	/*
	 * The chunks with work in the current pass (src_work_walk(),
	 * src_work_list()), increasing: what the workers take, and the only
	 * words the pass reads besides (discards, coverage). use_work false:
	 * every chunk (RDMIG_PASS_ALL without skip sets).
	 */
	uint64_t *work;
	uint64_t nwork, work_cap;
	bool use_work;
	bool list_live; /* regions[].list hold a pass's bits: src_list_done() clears them */
	struct rdmig_dirty list_dirty[RDMIG__MAX_REGIONS];

	/* The pass under way in slices (rdmig_src_pass_budget()). */
	struct src_held {
		bool on;			 /* paused: rdmig_src_pass_resume() goes on */
		bool final;			 /* RDMIG_PASS_FINAL */
		unsigned dpf;			 /* its RDMIG__DP_* flags */
		const struct rdmig_dirty *dirty; /* its logs: the VMM's, or `copy` once paused */
		struct rdmig_dirty copy[RDMIG__MAX_REGIONS];
		uint64_t *bits; /* the copies' bits: dirty and skip of every region */
		struct rdmig__worker_stats before; /* the pass's sums at the last slice's end */
		uint64_t duration_ns;		   /* of the slices before this one */
	} held;
};

int rdmig_src_create(const struct rdmig_opts *opts, struct rdmig_src **srcp)
{
	struct rdmig_src *src;
	int ret;

	rdmig__err_clear();
	if (!srcp)
		return rdmig__err(-EINVAL, "srcp is NULL");
	/* Aligned: the scan key inside is read with aligned vector loads. */
	src = aligned_alloc(64, sizeof(*src));
	if (src)
		memset(src, 0, sizeof(*src));
	if (!src)
		return rdmig__err(-ENOMEM, "no memory for a source handle");
	ret = rdmig__config_resolve(opts, &src->cfg);
	if (!ret)
		ret = rdmig__scanner_init(&src->scanner, src->cfg.simd);
	if (ret) {
		rdmig__config_wipe(&src->cfg);
		free(src);
		return ret;
	}
	src->offer_min = RDMIG__PROTO_MIN;
	src->offer_max = RDMIG__PROTO_VERSION;
	src->offer_caps = RDMIG__CAPS;
	if ((ret = rdmig__cancel_init(&src->cancel))) {
		rdmig__config_wipe(&src->cfg);
		free(src);
		return ret;
	}
	rdmig__disc_init(&src->disc, src->cfg.page_size);
	src->disc.cancel = &src->cancel.raised;
	*srcp = src;
	return 0;
}

int rdmig_src_cancel(struct rdmig_src *src)
{
	/* Async-signal-safe: nothing but the raise (not even rdmig__err_clear:
	 * the interrupted thread's message stays). */
	if (!src)
		return rdmig__err(-EINVAL, "src is NULL");
	rdmig__cancel_raise(&src->cancel);
	return 0;
}

/* Has the VMM cancelled? Then -ECANCELED, with a message. */
static int src_cancel_check(struct rdmig_src *src)
{
	if (rdmig__cancelled(&src->cancel))
		return rdmig__err(-ECANCELED, "cancelled by the VMM (rdmig_src_cancel)");
	return 0;
}

static void src_teardown(struct rdmig_src *src);
static int src_fail(struct rdmig_src *src, int err);

/* The owner's side of the progress seqlock: between begin and end, readers retry. */
static void src_prog_begin(struct rdmig_src *src)
{
	atomic_fetch_add_explicit(&src->prog_seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void src_prog_end(struct rdmig_src *src)
{
	atomic_fetch_add_explicit(&src->prog_seq, 1, memory_order_release);
}

static void src_prog_state(struct rdmig_src *src, unsigned state)
{
	src_prog_begin(src);
	atomic_store_explicit(&src->prog_state, state, memory_order_relaxed);
	src_prog_end(src);
}

static int src_usable(struct rdmig_src *src)
{
	int ret;

	if (!src)
		return rdmig__err(-EINVAL, "src is NULL");
	if (src->state == SRC_FAILED && src->fail_err == -ECANCELED)
		return rdmig__err(-ECANCELED, "the migration was cancelled");
	if (src->state != SRC_FAILED && (ret = src_cancel_check(src)))
		return src_fail(src, ret);
	if (src->state == SRC_FAILED)
		return rdmig__err(-EPIPE, "the session failed earlier: %s", src->fail_msg);
	if (src->state == SRC_DONE)
		return rdmig__err(-EPIPE, "the migration is complete already");
	if (src->state != SRC_CONNECTED)
		return rdmig__err(-ENOTCONN, "not connected: call rdmig_src_connect() first");
	return 0;
}

int rdmig_src_add_region(struct rdmig_src *src, uint64_t gpa, void *hva, uint64_t len)
{
	struct rdmig__region_check rc[RDMIG__MAX_REGIONS];
	int ret;

	rdmig__err_clear();
	if (!src)
		return rdmig__err(-EINVAL, "src is NULL");
	if ((ret = src_cancel_check(src)))
		return src_fail(src, ret);
	if (src->state == SRC_FAILED || src->state == SRC_DONE)
		return src_usable(src);
	if (src->state != SRC_IDLE)
		return rdmig__err(-EISCONN, "regions can only be added before connecting");
	for (unsigned i = 0; i < src->nregions; i++)
		rc[i] = (struct rdmig__region_check){ src->regions[i].gpa,
						      (uintptr_t)src->regions[i].hva,
						      src->regions[i].len };
	ret = rdmig__region_validate(rc, src->nregions, gpa, hva, len, src->cfg.page_size);
	if (ret)
		return ret;
	src->regions[src->nregions] = (struct src_region){ .gpa = gpa, .hva = hva, .len = len };
	rdmig__disc_add_region(&src->disc, gpa, hva, len / src->cfg.page_size);
	return (int)src->nregions++;
}

/*
 * Tells the destination we give up (cancelled), so it sees an abort and
 * not a disconnect or a silence: an ERROR on the control QP, sealed, and
 * up to 100 ms for it to leave before the disconnect overtakes it.
 */
static void src_send_abort(struct rdmig_src *src)
{
	struct rdmig__msg *m = &src->msg;

	if (!src->ctrl.has_qp || !rdmig__seal_on(&src->ctrl.seal))
		return;
	rdmig__msg_error(m, -ECANCELED, "the source cancelled the migration");
	rdmig__ep_send_flush(&src->ctrl, m, 100);
}

/*
 * Records that the session failed, tells the destination at once and lets
 * go of everything: connections, workers, the registration of guest
 * memory. Only ever called with no pass running.
 */
static int src_fail(struct rdmig_src *src, int err)
{
	if (src->state == SRC_FAILED)
		return err;
	src->state = SRC_FAILED;
	src->held.on = false;
	src_prog_state(src, RDMIG_PROGRESS_IDLE);
	atomic_store(&src->disc.ended, true); /* rdmig_src_discard() now says -EPIPE */
	src->fail_err = err;
	snprintf(src->fail_msg, sizeof(src->fail_msg), "%s", rdmig_last_error());
	if (err == -ECANCELED)
		src_send_abort(src);
	if (src->dp_started)
		atomic_store(&src->dp.abort, true);
	if (src->ctrl.id)
		src->xp->disconnect(src->ctrl.id);
	for (unsigned i = 0; i < src->nqps; i++)
		src->xp->disconnect(src->data[i].id);
	src_teardown(src);
	rdmig__err_set(err, src->fail_msg);
	return err;
}

/*
 * Undoes connect: workers, connections, registrations. Back to SRC_IDLE's
 * resources. `keep_mrs`: guest memory stays registered (local access only:
 * it exposes nothing) with its PD, and the per-page records stay, for
 * rdmig_src_destroy() to release; so complete does not wait for the kernel
 * to unpin and unmap in proportion to the guest.
 */
static void src_teardown_keep(struct rdmig_src *src, bool keep_mrs)
{
	if (src->dp_started)
		rdmig__dp_stop(&src->dp);
	src->dp_started = false;
	for (unsigned i = 0; i < src->nqps; i++)
		rdmig__ep_destroy(&src->data[i]);
	src->nqps = 0;
	rdmig__ep_destroy(&src->ctrl);
	if (src->state_tx)
		rdmig__state_tx_release(src->state_tx, src->xp);
	if (!keep_mrs) {
		if (src->xp)
			rdmig__disc_deregister(&src->disc, src->xp);
		/* The per-page records too: unmapping them also takes time in
		 * proportion to the guest. */
		for (unsigned i = 0; i < src->nregions; i++) {
			free(src->dpr[i].pkind);
			free(src->dpr[i].phash);
			free(src->dpr[i].mismatch);
			free(src->regions[i].retry);
			src->dpr[i].pkind = NULL;
			src->dpr[i].phash = NULL;
			src->dpr[i].mismatch = NULL;
			src->regions[i].retry = NULL;
		}
		if (src->pd)
			src->xp->pd_free(src->pd);
		src->pd = NULL;
	}
	src->mismatch_pending = 0;
	if (src->ch)
		src->xp->chan_destroy(src->ch);
	src->ch = NULL;
	src->stashed = false;
	src->hs_plain_ok = false;
	rdmig__hs_wipe(&src->hs);
	OPENSSL_cleanse(&src->key, sizeof(src->key));
}

static void src_teardown(struct rdmig_src *src)
{
	src_teardown_keep(src, false);
}

/* Looks at connection events without blocking: any of them now means trouble. */
static int src_check_cm(struct rdmig_src *src)
{
	struct rdmig__xp_event ev;
	int ret = 0;

	while (!ret && !rdmig__cm_next(src->ch, 0, &ev)) {
		if (ev.event != RDMA_CM_EVENT_TIMEWAIT_EXIT &&
		    ev.event != RDMA_CM_EVENT_ESTABLISHED)
			ret = rdmig__err(
				ev.event == RDMA_CM_EVENT_DEVICE_REMOVAL ? -ENODEV : -ECONNRESET,
				"the destination connection broke: %s", rdma_event_str(ev.event));
		src->xp->chan_ack(&ev);
	}
	return ret;
}

/*
 * Handles one control completion. Returns 1 with a decoded message in *m,
 * 0 for a send completion, or a negative errno.
 */
static int src_ctrl_wc(struct rdmig_src *src, const struct ibv_wc *wc, struct rdmig__msg *m)
{
	uint32_t i = rdmig__wr_val_of(wc->wr_id);
	const uint8_t *buf;
	char why[256];
	int ret;

	if (wc->status != IBV_WC_SUCCESS)
		return rdmig__err(wc->status == IBV_WC_WR_FLUSH_ERR ? -ECONNRESET : -EIO,
				  "control connection: %s (status %d)",
				  ibv_wc_status_str(wc->status), wc->status);
	if (rdmig__wr_kind_of(wc->wr_id) == RDMIG__WR_SEND) {
		rdmig__ep_send_done(&src->ctrl, i);
		return 0;
	}
	buf = rdmig__ep_recv_buf(&src->ctrl, i);
	src->raw_len = RDMIG__MIN((size_t)wc->byte_len, sizeof(src->raw));
	memcpy(src->raw, buf, src->raw_len);
	ret = rdmig__ep_open(&src->ctrl, buf, wc->byte_len, m, why, sizeof(why));
	/* A destination that did not take our proof cannot seal its refusal. */
	if (ret && src->hs_plain_ok && !rdmig__msg_decode(buf, wc->byte_len, m, NULL, 0) &&
	    m->type == RDMIG__MSG_ERROR)
		ret = 0;
	if (ret)
		return rdmig__err(ret, "bad message from the destination: %s", why);
	if ((ret = rdmig__ep_post_recv(&src->ctrl, i)))
		return ret;
	if (m->type == RDMIG__MSG_ERROR)
		src->peer_error = true;
	/* A layout refusal says how, in a tag at the end of its text. */
	if (m->type == RDMIG__MSG_ERROR && m->error.code == EINVAL &&
	    rdmig__layout_untag(m->error.text, &src->mismatch))
		src->mismatch.size = sizeof(src->mismatch);
	if (m->type == RDMIG__MSG_ERROR && m->error.code == ECANCELED)
		return rdmig__err(-ECONNABORTED, "the destination aborted: %s", m->error.text);
	if (m->type == RDMIG__MSG_ERROR)
		return rdmig__err(m->error.code == EACCES ? -EACCES : -EPROTO,
				  "the destination refused: %s", m->error.text);
	return 1;
}

/* Waits (bounded) for the next control message that is not an ERROR. */
static int src_ctrl_recv(struct rdmig_src *src, int timeout_ms, struct rdmig__msg *m)
{
	uint64_t deadline = rdmig__now_ns() + (uint64_t)timeout_ms * 1000000;
	struct ibv_wc wc;
	int n, ret;

	if (src->stashed) {
		src->stashed = false;
		*m = src->stash;
		return 0;
	}
	for (;;) {
		int left = rdmig__ms_left(deadline);

		/* Completions before connection events: an ERROR that arrived
		 * before the disconnect says more than the disconnect does. */
		n = rdmig__cq_wait(src->ctrl.cq, &wc, 1, RDMIG__MIN(left, 50));
		if (n < 0)
			return n;
		if (n == 1 && (ret = src_ctrl_wc(src, &wc, m)) != 0)
			return ret < 0 ? ret : 0;
		if (n == 0 && (ret = src_check_cm(src)))
			return ret;
		if ((ret = src_cancel_check(src)))
			return ret;
		if (rdmig__ms_left(deadline) == 0)
			return rdmig__err(-ETIMEDOUT, "no answer from the destination within %d ms",
					  timeout_ms);
	}
}

/* Sends a control message; waits for a free buffer if need be. */
static int src_ctrl_send(struct rdmig_src *src, const struct rdmig__msg *m)
{
	uint64_t deadline = rdmig__now_ns() + (uint64_t)src->cfg.timeout_ms * 1000000;
	struct ibv_wc wc;
	int n, ret;

	while ((ret = rdmig__ep_send(&src->ctrl, m)) == -EAGAIN) {
		n = rdmig__cq_wait(src->ctrl.cq, &wc, 1, 50);
		if (n < 0)
			return n;
		if (n == 1 && (ret = src_ctrl_wc(src, &wc, &src->stash)) != 0) {
			if (ret < 0)
				return ret;
			src->stashed = true;
		}
		if ((ret = src_cancel_check(src)))
			return ret;
		if (rdmig__ms_left(deadline) == 0)
			return rdmig__err(-ETIMEDOUT, "control sends stuck for %u ms",
					  src->cfg.timeout_ms);
	}
	return ret;
}

/*
 * Registers guest memory for local read (the source never lets anything
 * write it), in segments (discard.h), and checks that the largest WRITE
 * fits the device.
 */
static int src_register(struct rdmig_src *src)
{
	uint64_t max_wr = (uint64_t)src->cfg.chunk_pages * src->cfg.page_size;
	uint64_t max_msg = src->xp->max_msg(src->pd);

	if (max_wr > max_msg)
		return rdmig__err(-EINVAL,
				  "RDMIG_CHUNK_PAGES: %u pages of %u bytes make WRITEs of %" PRIu64
				  " bytes, more than %s allows (%" PRIu64 ")",
				  src->cfg.chunk_pages, src->cfg.page_size, max_wr,
				  src->xp->dev_name(src->pd), max_msg);
	return rdmig__disc_register(&src->disc, src->xp, src->pd, src->cfg.chunk_pages);
}

/*
 * Resolves, sets up the endpoint and connects one connection id, made on
 * channel `ch`. The data connections run this in parallel (src_dial()):
 * past the control connection it only reads the handle.
 */
static int src_connect_ep(struct rdmig_src *src, struct rdmig__xp_chan *ch, struct sockaddr *addr,
			  struct rdmig__ep *ep, uint32_t index, const struct rdmig__ep_attr *attr,
			  struct rdmig__msg *hello)
{
	int tmo = (int)src->cfg.timeout_ms;
	struct rdmig__xp_id *id;
	uint8_t pdata[RDMIG__CONNECT_LEN];
	char why[128];
	int ret, len;

	if ((ret = src->xp->id_create(ch, &id)))
		return ret;
	ep->id = id;
	if ((ret = rdmig__path_set(&src->cfg, src->xp, id,
				   src->path_has_local ? (struct sockaddr *)&src->path_local
						       : NULL)))
		goto fail;
	if ((ret = src->xp->resolve(id, addr, tmo))) {
		if (src->path_has_local) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", rdmig_last_error());
			rdmig__err(ret, "%s (leaving from %s)", msg,
				   src->cfg.has_local ? src->cfg.local_str
						      : "the address of RDMIG_GID_INDEX's entry");
		}
		goto fail;
	}
	if ((ret = rdmig__path_check(&src->cfg, src->xp, id, "the route to the destination")))
		goto fail;

	if (!src->pd) {
		if ((ret = src->xp->pd_alloc(id, &src->pd)))
			goto fail;
		/* Before the control connection exists: registering a large
		 * guest takes time that no protocol timeout should include. */
		uint64_t t0 = rdmig__now_ns();

		if ((ret = src_register(src)))
			goto fail;
		src->reg_ns = rdmig__now_ns() - t0;
		src->reg_bytes = 0;
		for (unsigned i = 0; i < src->nregions; i++)
			src->reg_bytes += src->regions[i].len;
	} else if (!src->xp->pd_on_dev_of(src->pd, id)) {
		ret = rdmig__err(-ENODEV, "data connection %u resolved to another device than %s",
				 index, src->xp->dev_name(src->pd));
		goto fail;
	}
	if ((ret = rdmig__ep_setup(ep, id, src->pd, NULL, index, attr)))
		goto fail;

	/* A data QP proves it belongs to the session: a tag over its number. */
	if (hello->connect.kind == RDMIG__CONN_DATA &&
	    (ret = rdmig__hs_data_tag(&src->hs.keys, hello->connect.index, hello->connect.token,
				      src->xp->qp_num(id), hello->connect.tag)))
		goto fail;
	len = rdmig__msg_encode(hello, pdata, sizeof(pdata), why, sizeof(why));
	if (len < 0) {
		ret = rdmig__err(len, "internal: cannot encode CONNECT: %s", why);
		goto fail;
	}
	if ((ret = src->xp->connect(id, pdata, (uint8_t)len, tmo)))
		goto fail;
	if ((ret = rdmig__path_verify(&src->cfg, src->xp, id,
				      index ? "a data connection" : "the control connection",
				      index ? NULL : &src->path)))
		goto fail;
	return 0;

fail:
	rdmig__ep_destroy(ep);
	return ret;
}

/*
 * How long the destination may take to register or deregister the guest's
 * memory, on top of RDMIG_TIMEOUT_MS: a second per GiB, far slower than
 * pinning runs on any host we know of.
 */
static int src_mr_allowance_ms(const struct rdmig_src *src)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < src->nregions; i++)
		bytes += src->regions[i].len;
	return (int)RDMIG__MIN((bytes >> 30) * 1000, (uint64_t)INT32_MAX - src->cfg.timeout_ms);
}

static void src_account(struct rdmig_src *src, const struct rdmig__worker_stats *sum,
			uint64_t duration_ns, struct rdmig_pass_stats *stats);

/* Is any skipping on (and can the destination answer)? Then passes scan,
 * decide and send NOTICEs. */
/*
 * What one worker's hashing and zero check cost, timed over 256 KiB of
 * non-zero data (the best case: cached): the skip policy's hash and scan
 * rates until passes say more. A zero check of data stops at the first
 * non-zero word, as it does in a pass.
 */
static void src_scan_rates(struct rdmig_src *src)
{
	const uint32_t ps = src->cfg.page_size, n = RDMIG__MAX(1u, (256u << 10) / ps);
	uint64_t x = 0x9e3779b97f4a7c15ull, t0, t1, t2;
	struct rdmig__hash h;
	volatile int sink = 0;
	uint64_t *buf = aligned_alloc(64, (size_t)n * ps);

	src->hash_rate = src->zero_rate = 0;
	if (!buf)
		return;
	for (size_t i = 0; i < (size_t)n * ps / 8; i++)
		buf[i] = (x ^= x << 13, x ^= x >> 7, x ^= x << 17);
	/* The best of five: a preempted round says nothing of the CPU. */
	for (int round = 0; round < 5; round++) {
		double hr, zr;

		t0 = rdmig__now_ns();
		for (uint32_t i = 0; i < n; i++)
			sink += rdmig__scan_page(&src->scanner, &src->key,
						 (uint8_t *)buf + (size_t)i * ps, ps, &h);
		t1 = rdmig__now_ns();
		for (uint32_t i = 0; i < n; i++)
			sink += src->scanner.ops.is_zero((uint8_t *)buf + (size_t)i * ps, ps);
		t2 = rdmig__now_ns();
		hr = (double)n * ps * 1e9 / (double)RDMIG__MAX(t1 - t0, 1ull);
		zr = (double)n * ps * 1e9 / (double)RDMIG__MAX(t2 - t1, 1ull);
		src->hash_rate = RDMIG__MAX(src->hash_rate, hr);
		src->zero_rate = RDMIG__MAX(src->zero_rate, zr);
	}
	(void)sink;
	free(buf);
	rdmig__log(RDMIG__LOG_DEBUG, "a worker hashes %.0f MB/s, zero-checks %.0f MB/s",
		   src->hash_rate / 1e6, src->zero_rate / 1e6);
}

/*
 * Whether the next pass hashes (dp->hashing; RDMIG_SKIP_POLICY): a final
 * pass always (its verified image needs the hashes); otherwise as the
 * policy says, auto asking the model with the measured wire rate (or the
 * cap, before any pass wrote), the scan rates and the recent share of
 * unchanged pages; while that share is unknown, the pass's own first
 * compared pages decide for the rest of it (dp->probe_share). The
 * destination hashes with a thread per data QP.
 */
static bool src_hashing(struct rdmig_src *src, bool final)
{
	const struct rdmig__model *m = &src->model;
	struct rdmig__skip_in in = { .share = src->skip_share };
	double wire = m->all_wire_ns ? (double)m->all_wire_bytes * 1e9 / (double)m->all_wire_ns : 0;

	src->dp.probe_share = -1;
	if (final || src->cfg.skip_policy == RDMIG__SKIP_ALWAYS)
		return true;
	if (src->cfg.skip_policy == RDMIG__SKIP_NEVER)
		return false;
	if (m->max_bandwidth && (!wire || wire > (double)m->max_bandwidth))
		wire = (double)m->max_bandwidth;
	in.wire_rate = wire;
	in.hash_rate = src->hash_rate * src->nqps;
	in.dst_hash_rate = src->hash_rate * src->nqps;
	in.zero_rate = src->zero_rate * src->nqps;
	/* The share unknown: hashing, until the pass's first compared pages
	 * say otherwise (with a wire rate to weigh them against). */
	if (in.share < 0 && wire > 0)
		src->dp.probe_share = rdmig__model_hash_share_needed(&in);
	return rdmig__model_hash_pays(&in);
}

static bool src_notices(const struct rdmig_src *src)
{
	return (src->cfg.skip_zero || src->cfg.skip_unchanged) &&
	       (src->hs.caps_agreed & RDMIG__CAP_NOTICES);
}

/* Sends handshake bytes and waits for the answer's bytes (in src->raw). */
static int src_hs_exchange(struct rdmig_src *src, const uint8_t *out, int len, int timeout_ms,
			   struct rdmig__msg *m)
{
	int ret;

	/* Two handshake messages, four send buffers: one is always free. */
	if ((ret = rdmig__ep_send_raw(&src->ctrl, out, (size_t)len)))
		return ret == -EAGAIN ? rdmig__err(-EIO, "internal: no send buffer") : ret;
	return src_ctrl_recv(src, timeout_ms, m);
}

/*
 * HELLO -> CHALLENGE -> AUTH -> HELLO_ACK: agree on version and
 * capabilities, prove the key both ways, then on page size, QPs and
 * regions. From AUTH on the control channel is sealed.
 */
static int src_handshake(struct rdmig_src *src, unsigned want_qps)
{
	struct rdmig__msg *m = &src->msg;
	struct rdmig__xp_conn_info ci;
	struct rdmig__hs *hs = &src->hs;
	uint8_t out[RDMIG__MSG_MAX];
	char why[512];
	int ret, len;

	memset(hs, 0, sizeof(*hs));
	hs->psk = src->cfg.auth == RDMIG_AUTH_PSK ? src->cfg.psk : NULL;
	hs->psk_len = src->cfg.auth == RDMIG_AUTH_PSK ? src->cfg.psk_len : 0;
	hs->ver_min = src->offer_min;
	hs->ver_max = src->offer_max;
	hs->caps = src->offer_caps;
	if ((ret = src->xp->conn_info(src->ctrl.id, &ci)))
		return ret;
	rdmig__hs_bind(hs, &ci, true);
	if ((len = rdmig__hs_src_hello(hs, out, sizeof(out), why, sizeof(why))) < 0)
		return rdmig__err(len, "HELLO: %s", why);
	src->rtt_ns = rdmig__now_ns();
	ret = src_hs_exchange(src, out, len, (int)src->cfg.timeout_ms, m);
	src->rtt_ns = rdmig__now_ns() - src->rtt_ns; /* the destination only hashes meanwhile */
	if (ret == -EACCES || ret == -EPROTO)
		return ret; /* the destination refused, and said why */
	if (ret)
		return ret;
	if ((ret = rdmig__hs_src_challenge(hs, src->raw, src->raw_len, why, sizeof(why))))
		return rdmig__err(ret, "%s", why);
	/* Every final pass is verified (NOTICE and HASHES): no peer without. */
	if (!(hs->caps_agreed & RDMIG__CAP_NOTICES))
		return rdmig__err(-EPROTO,
				  "the destination does not offer NOTICE and HASHES (capabilities "
				  "0x%x), which verifying the image needs",
				  hs->caps_agreed);

	memset(m, 0, sizeof(*m));
	m->auth.page_size = src->cfg.page_size;
	m->auth.nqps = want_qps;
	m->auth.nregions = src->nregions;
	/* NOTICEs flow in a final pass whatever the skip settings. */
	m->auth.flags = RDMIG__AUTH_VERIFY | (src_notices(src) ? RDMIG__AUTH_NOTICES : 0);
	for (unsigned i = 0; i < src->nregions; i++) {
		m->auth.regions[i].gpa = src->regions[i].gpa;
		m->auth.regions[i].len = src->regions[i].len;
	}
	if ((len = rdmig__hs_src_auth(hs, m, out, sizeof(out), why, sizeof(why))) < 0)
		return rdmig__err(len, "AUTH: %s", why);
	/* Everything from here on is sealed with the session's keys. */
	if ((ret = rdmig__seal_init(&src->ctrl.seal, hs->keys.s2d, hs->keys.d2s, 0)))
		return ret;
	memcpy(src->key.secret, hs->keys.hash_secret, sizeof(src->key.secret));
	src->hs_plain_ok = true;
	ret = src_hs_exchange(src, out, len, (int)src->cfg.timeout_ms + src_mr_allowance_ms(src),
			      m);
	src->hs_plain_ok = false;
	OPENSSL_cleanse(out, sizeof(out));
	if (ret)
		return ret;
	if (m->type != RDMIG__MSG_HELLO_ACK)
		return rdmig__err(-EPROTO, "expected HELLO_ACK from the destination, got %s",
				  rdmig__msg_type_name(m->type));
	if (m->hello_ack.page_size != src->cfg.page_size || m->hello_ack.nqps > want_qps ||
	    m->hello_ack.nregions != src->nregions)
		return rdmig__err(-EPROTO,
				  "HELLO_ACK does not answer our HELLO (page size %u, "
				  "%u QPs, %u regions)",
				  m->hello_ack.page_size, m->hello_ack.nqps, m->hello_ack.nregions);
	for (unsigned i = 0; i < src->nregions; i++) {
		const struct rdmig__wire_target *t = &m->hello_ack.regions[i];
		struct rdmig__dp_region *d = &src->dpr[i];

		if (t->gpa != src->regions[i].gpa || t->len != src->regions[i].len)
			return rdmig__err(-EPROTO,
					  "HELLO_ACK region %u is gpa 0x%" PRIx64 " len 0x%" PRIx64
					  ", ours is gpa 0x%" PRIx64 " len 0x%" PRIx64,
					  i, t->gpa, t->len, src->regions[i].gpa,
					  src->regions[i].len);
		d->hva = src->regions[i].hva;
		d->npages = src->regions[i].len / src->cfg.page_size;
		d->lkeys = src->disc.r[i].lkeys;
		d->seg_pages = src->disc.seg_pages;
		d->raddr = t->addr;
		d->rkey = t->rkey;
		if (src_notices(src)) {
			/* What the destination holds: zero where it says its
			 * memory is, unknown elsewhere (DESIGN.md invariant 2). */
			d->pkind = malloc(d->npages);
			d->phash = calloc(d->npages, sizeof(*d->phash));
			if (!d->pkind || !d->phash)
				return rdmig__err(-ENOMEM,
						  "no memory for region %u's page state "
						  "(%" PRIu64 " pages)",
						  i, d->npages);
			memset(d->pkind,
			       t->flags & RDMIG__TARGET_ZERO ? RDMIG__PK_ZERO : RDMIG__PK_UNKNOWN,
			       d->npages);
		}
		d->chunk_base =
			i ? src->dpr[i - 1].chunk_base + rdmig__chunk_count(src->dpr[i - 1].npages,
									    src->cfg.chunk_pages)
			  : 0;
	}
	src->token = m->hello_ack.token;
	return (int)m->hello_ack.nqps;
}

/*
 * The data connections, made in parallel: each one's resolve, route,
 * endpoint and connect take round trips that do not depend on the others'
 * (one after another they were most of connect's time). Up to SRC_DIALERS
 * threads take the next index each; every connection is made on a channel
 * of the thread's own, so that each blocking step sees only its own
 * events, and moved to src->ch once established, where the session
 * watches all of them. Each CONNECT carries its own tag over its own QP
 * number, as before. Bounded: every step has RDMIG_TIMEOUT_MS, and a
 * cancel reaches every channel. On failure the first error (by index)
 * is returned, every other connection is torn down, src->nqps stays 0.
 */
#define SRC_DIALERS 8 /* below the destination's listen backlog (16) */

struct src_dial {
	struct rdmig_src *src;
	struct sockaddr *addr;
	const struct rdmig__ep_attr *attr;
};

/* Data connection i, on a channel of its own, then moved to src->ch. */
static int src_dial_one(void *arg, unsigned i)
{
	struct src_dial *d = arg;
	struct rdmig_src *src = d->src;
	struct rdmig__xp_chan *ch;
	struct rdmig__msg conn;
	int ret;

	if ((ret = src->xp->chan_create(&ch)))
		return ret;
	ch->cancel = &src->cancel.raised;
	ch->cancel_fd = src->cancel.fd;
	memset(&conn, 0, sizeof(conn));
	conn.type = RDMIG__MSG_CONNECT;
	conn.connect.kind = RDMIG__CONN_DATA;
	conn.connect.index = i;
	conn.connect.token = src->token;
	ret = src_connect_ep(src, ch, d->addr, &src->data[i], i + 1, d->attr, &conn);
	if (!ret && (ret = src->xp->id_migrate(src->data[i].id, src->ch)))
		rdmig__ep_destroy(&src->data[i]);
	if (!ret &&
	    (ret = rdmig__seal_init(&src->data[i].seal, src->hs.keys.s2d, src->hs.keys.d2s, i + 1)))
		rdmig__ep_destroy(&src->data[i]);
	src->xp->chan_destroy(ch);
	return ret;
}

static int src_dial(struct rdmig_src *src, struct sockaddr *addr, unsigned nqps,
		    const struct rdmig__ep_attr *attr)
{
	struct src_dial d = { .src = src, .addr = addr, .attr = attr };
	int ret = rdmig__parallel(nqps, SRC_DIALERS, src_dial_one, &d);

	/* After a failure, indices nobody took have no endpoint. */
	for (unsigned i = 0; i < nqps && !ret; i++)
		if (!src->data[i].id)
			ret = rdmig__err(-EIO, "internal: data connection %u not made", i);
	if (ret) {
		for (unsigned i = 0; i < nqps; i++)
			rdmig__ep_destroy(&src->data[i]);
		return ret;
	}
	src->nqps = nqps;
	return 0;
}

static void *src_crypto_warm(void *arg)
{
	(void)arg;
	rdmig__crypto_warm();
	return NULL;
}

int rdmig_src_connect(struct rdmig_src *src, const char *host, const char *port)
{
	struct rdmig__ep_attr ctrl_attr = {
		.send_depth = 8, .recv_depth = 8, .nrecv = 4, .nsend = 4, .bufsize = RDMIG__MSG_MAX
	};
	struct rdmig__ep_attr data_attr;
	struct rdmig__msg conn;
	struct sockaddr_storage ss;
	int cpus[RDMIG__MAX_WORKERS];
	int ncpus, nqps, ret;
	unsigned want;
	/* Where connect's time goes, for the INFO line at the end. */
	uint64_t t0 = rdmig__now_ns(), t_chan, t_ctrl, t_place, t_hs, t_data;
	pthread_t warm;
	bool warming = false;

	rdmig__err_clear();
	if (!src)
		return rdmig__err(-EINVAL, "src is NULL");
	if (src->state == SRC_FAILED || src->state == SRC_DONE)
		return src_usable(src);
	if (src->state != SRC_IDLE)
		return rdmig__err(-EISCONN, "already connected");
	if (!src->nregions)
		return rdmig__err(-EINVAL, "no regions: add guest memory before connecting");
	if (!host)
		return rdmig__err(-EINVAL, "host is NULL");
	if ((ret = src_cancel_check(src)))
		return src_fail(src, ret);
	memset(&src->mismatch, 0, sizeof(src->mismatch));
	if ((ret = rdmig__resolve(host, port, &ss)))
		return ret;
	if ((ret = rdmig__config_auth_ready(&src->cfg, "rdmig_src_connect")))
		return ret;

	src->xp = rdmig__xp_ops_of(src->cfg.transport);
	if ((ret = rdmig__path_local(&src->cfg, src->xp, &src->path_local)) < 0)
		return ret;
	src->path_has_local = ret == 1;
	/* libcrypto's first use, beside rdma_cm's start and the control
	 * connection rather than inside the handshake (joined before it). */
	warming = !pthread_create(&warm, NULL, src_crypto_warm, NULL);
	if ((ret = src->xp->chan_create(&src->ch)))
		goto fail;
	src->ch->cancel = &src->cancel.raised;
	src->ch->cancel_fd = src->cancel.fd;
	t_chan = rdmig__now_ns();

	ctrl_attr.qp_timeout = src->cfg.qp_timeout;
	memset(&conn, 0, sizeof(conn));
	conn.type = RDMIG__MSG_CONNECT;
	conn.connect.kind = RDMIG__CONN_CTRL;
	/* The first connection allocates the PD and registers guest memory. */
	if ((ret = src_connect_ep(src, src->ch, (struct sockaddr *)&ss, &src->ctrl, 0, &ctrl_attr,
				  &conn)))
		goto fail;
	t_ctrl = rdmig__now_ns();

	ncpus = src->xp->dev_cpus(src->pd, cpus, RDMIG__MAX_WORKERS);
	if (ncpus > 0) /* RDMIG_WORKER_CPUS narrows the placement */
		ncpus = rdmig__path_worker_cpus(&src->cfg, cpus, ncpus, RDMIG__MAX_WORKERS);
	if (ncpus < 0) {
		ret = ncpus;
		goto fail;
	}
	want = src->cfg.workers ? src->cfg.workers : (unsigned)RDMIG__MIN(ncpus, 4);
	if (warming)
		pthread_join(warm, NULL);
	warming = false;
	t_place = rdmig__now_ns();
	if ((nqps = src_handshake(src, want)) < 0) {
		ret = nqps;
		goto fail;
	}
	t_hs = rdmig__now_ns();

	/* Receives for the HASHES answers; sends for the NOTICEs and PASS_END. */
	data_attr = (struct rdmig__ep_attr){ .send_depth = src->cfg.queue_depth + 1,
					     .recv_depth = RDMIG__NOTICE_CREDITS,
					     .nrecv = RDMIG__NOTICE_CREDITS,
					     .nsend = RDMIG__NOTICE_CREDITS + 1,
					     .bufsize = RDMIG__DATA_MSG_MAX,
					     .qp_timeout = src->cfg.qp_timeout,
					     .rate_mbps = src->cfg.loopback_rate_mbps };
	if ((ret = src_dial(src, (struct sockaddr *)&ss, (unsigned)nqps, &data_attr)))
		goto fail;
	t_data = rdmig__now_ns();
	ret = rdmig__dp_start(&src->dp, &src->cfg, src->data, src->nqps, src->cfg.pin ? cpus : NULL,
			      src->cfg.pin ? (unsigned)ncpus : 0);
	if (ret)
		goto fail;
	src->dp_started = true;
	src->dp.pub = src->pub;
	src_prog_begin(src);
	atomic_store_explicit(&src->prog_workers, src->nqps, memory_order_relaxed);
	src_prog_end(src);
	rdmig__model_init(&src->model, src->cfg.page_size);
	src->model.max_bandwidth = src->cfg.max_bandwidth;
	src->skip_share = -1;
	src_scan_rates(src);
	src->model.hash_rate = (uint64_t)src->hash_rate;
	src->dp.scanner = &src->scanner;
	src->dp.key = &src->key;
	src->dp.notices = src_notices(src);
	src->dp.hook = src->hook;
	src->dp.hook_arg = src->hook_arg;
	src->state = SRC_CONNECTED;
	/* The proof and MAC keys did their work (the seals keep their own
	 * contexts; the data QPs are tagged): no copy stays in the handle. */
	rdmig__keys_wipe(&src->hs.keys);
	rdmig__log(RDMIG__LOG_INFO, "connected to %s:%s with %u data QPs over %s, protocol %u, %s",
		   host, port, src->nqps, src->xp->name, src->hs.version,
		   src->cfg.auth == RDMIG_AUTH_PSK ? "authenticated" : "NOT authenticated");
	rdmig__log(RDMIG__LOG_INFO,
		   "connect took %.1f ms: event channel %.1f, control connection %.1f "
		   "(registering %" PRIu64 " bytes %.1f), placement %.1f, handshake %.1f "
		   "(HELLO round trip %.1f), %u data connections %.1f, workers %.1f",
		   (double)(rdmig__now_ns() - t0) / 1e6, (double)(t_chan - t0) / 1e6,
		   (double)(t_ctrl - t_chan) / 1e6, src->reg_bytes, (double)src->reg_ns / 1e6,
		   (double)(t_place - t_ctrl) / 1e6, (double)(t_hs - t_place) / 1e6,
		   (double)src->rtt_ns / 1e6, src->nqps, (double)(t_data - t_hs) / 1e6,
		   (double)(rdmig__now_ns() - t_data) / 1e6);
	return 0;

fail:
	if (warming)
		pthread_join(warm, NULL);
	if (ret == -ECANCELED)
		return src_fail(src, ret); /* tells the destination, tears down */
	src_teardown(src);
	return ret;
}

/*
 * The bits of word w of a region's bitmap that stand for pages of it: the
 * VMM's bitmaps may hold anything past the region's end (rdmig.h says those
 * bits are ignored), so every bitmap rdmig keeps across passes is masked
 * with this before it takes bits from the VMM's.
 */
static uint64_t src_valid_bits(uint64_t npages, uint64_t w)
{
	return w == npages / 64 && npages % 64 ? (1ull << (npages % 64)) - 1 : ~0ull;
}

/* Checks the VMM's dirty logs (and skip sets) against the regions. */
static int src_check_dirty(const struct rdmig_src *src, const struct rdmig_dirty *dirty,
			   unsigned ndirty)
{
	if (!dirty)
		return rdmig__err(-EINVAL, "dirty is NULL (use RDMIG_PASS_ALL to send all)");
	if (ndirty != src->nregions)
		return rdmig__err(-EINVAL, "%u dirty logs for %u regions", ndirty, src->nregions);
	for (unsigned i = 0; i < ndirty; i++) {
		uint64_t need = (src->dpr[i].npages + 63) / 64;

		if (!dirty[i].bitmap)
			return rdmig__err(-EINVAL, "region %u: dirty bitmap is NULL", i);
		if (dirty[i].words < need)
			return rdmig__err(-EINVAL,
					  "region %u: dirty bitmap of %zu words is shorter than "
					  "the region (%" PRIu64 " pages need %" PRIu64 " words)",
					  i, dirty[i].words, src->dpr[i].npages, need);
		if (dirty[i].skip && dirty[i].skip_words < need)
			return rdmig__err(-EINVAL,
					  "region %u: skip bitmap of %zu words is shorter than "
					  "the region (%" PRIu64 " pages need %" PRIu64 " words)",
					  i, dirty[i].skip_words, src->dpr[i].npages, need);
	}
	return 0;
}

/*
 * RDMIG_PASS_ALL with `dirty` given: every entry's bitmap is NULL (every
 * page is dirty) and its skip set is honoured. Returns in *out the logs
 * the pass reads: the VMM's skip sets with an all-ones dirty bitmap each,
 * so that the rest of the pass (coverage, balloon tracking, discards)
 * treats it as any other.
 */
static int src_all_dirty(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
			 const struct rdmig_dirty **out)
{
	if (ndirty != src->nregions)
		return rdmig__err(-EINVAL, "%u skip logs for %u regions (RDMIG_PASS_ALL)", ndirty,
				  src->nregions);
	for (unsigned i = 0; i < ndirty; i++) {
		uint64_t need = (src->dpr[i].npages + 63) / 64;

		if (dirty[i].bitmap)
			return rdmig__err(
				-EINVAL,
				"region %u: with RDMIG_PASS_ALL every page is dirty: "
				"the dirty bitmap must be NULL (only the skip set is read)",
				i);
		if (dirty[i].skip && dirty[i].skip_words < need)
			return rdmig__err(-EINVAL,
					  "region %u: skip bitmap of %zu words is shorter than "
					  "the region (%" PRIu64 " pages need %" PRIu64 " words)",
					  i, dirty[i].skip_words, src->dpr[i].npages, need);
	}
	for (unsigned i = 0; i < ndirty; i++) {
		struct src_region *r = &src->regions[i];
		uint64_t words = (src->dpr[i].npages + 63) / 64;

		if (!r->all) {
			if (!(r->all = malloc(words * sizeof(uint64_t))))
				return rdmig__err(-ENOMEM, "no memory to track region %u's pages",
						  i);
			memset(r->all, 0xff, words * sizeof(uint64_t));
			r->all[words - 1] &= src_valid_bits(src->dpr[i].npages, words - 1);
		}
		src->all_scratch[i] = (struct rdmig_dirty){ .bitmap = r->all,
							    .words = words,
							    .skip = dirty[i].skip,
							    .skip_words = dirty[i].skip_words };
	}
	*out = src->all_scratch;
	return 0;
}

/*
 * Before a partial pass: refuses a page that left the skip set without
 * being dirty (its destination copy would stay stale), and makes room to
 * record which pages the pass sends.
 */
static int src_coverage_prepare(struct rdmig_src *src, const struct rdmig_dirty *dirty)
{
	for (unsigned i = 0; i < src->nregions; i++) {
		struct src_region *r = &src->regions[i];
		uint64_t words = (src->dpr[i].npages + 63) / 64;

		for (uint64_t w = 0; r->ballooned && w < words; w++) {
			uint64_t stale = r->ballooned[w] & ~dirty[i].bitmap[w] &
					 ~(dirty[i].skip ? dirty[i].skip[w] : 0) &
					 src_valid_bits(src->dpr[i].npages, w);

			if (stale)
				return rdmig__err(-EINVAL,
						  "page %" PRIu64 " of region %u left the skip set "
						  "without being marked dirty: its copy at the "
						  "destination would stay stale",
						  w * 64 + (uint64_t)__builtin_ctzll(stale), i);
		}
		if (dirty[i].skip && !r->ballooned) {
			r->ballooned = calloc(words, sizeof(uint64_t));
			if (!r->ballooned)
				return rdmig__err(-ENOMEM, "no memory to track region %u's pages",
						  i);
		}

		if (r->all_sent || r->sent)
			continue;
		r->sent = calloc((src->dpr[i].npages + 63) / 64, sizeof(uint64_t));
		if (!r->sent)
			return rdmig__err(-ENOMEM, "no memory to track region %u's pages", i);
		r->unsent = src->dpr[i].npages;
	}
	return 0;
}

/* Records the pages a pass placed at the destination (or left as don't-care). */
static void src_coverage_record(struct rdmig_src *src, const struct rdmig_dirty *dirty)
{
	uint64_t k = 0, w0, w1;
	unsigned ri = 0;

	if (!dirty) {
		/* RDMIG_PASS_ALL without skip sets sends everything. */
		for (unsigned i = 0; i < src->nregions; i++) {
			struct src_region *r = &src->regions[i];

			if (r->ballooned)
				memset(r->ballooned, 0, (src->dpr[i].npages + 63) / 64 * 8);
			r->all_sent = true;
			free(r->sent);
			r->sent = NULL;
		}
		return;
	}
	/* Only the words of the pass's chunks: no dirty bit is set elsewhere
	 * (and a paused pass's copy holds no other words). */
	while (rdmig__dp_next_span(src->dpr, src->nregions, src->cfg.chunk_pages,
				   src->use_work ? src->work : NULL, src->nwork, &k, &ri, &w0,
				   &w1)) {
		struct src_region *r = &src->regions[ri];
		const uint64_t *bm = dirty[ri].bitmap, *skip = dirty[ri].skip;

		/* A dirty page is now either sent or ballooned; others keep
		 * what they were. */
		for (uint64_t w = w0; r->ballooned && w < w1; w++)
			r->ballooned[w] =
				((r->ballooned[w] & ~bm[w]) | (skip ? bm[w] & skip[w] : 0)) &
				src_valid_bits(src->dpr[ri].npages, w);
		if (r->all_sent)
			continue;
		for (uint64_t w = w0; w < w1; w++) {
			uint64_t add = bm[w] & ~r->sent[w];

			if (!add)
				continue;
			add &= src_valid_bits(src->dpr[ri].npages, w);
			r->sent[w] |= add;
			r->unsent -= (uint64_t)__builtin_popcountll(add);
		}
	}
	for (unsigned i = 0; i < src->nregions; i++) {
		struct src_region *r = &src->regions[i];

		if (r->all_sent || r->unsent)
			continue;
		r->all_sent = true;
		free(r->sent);
		r->sent = NULL;
	}
}

/*
 * The chunks with work in a pass over `dirty` (with `again`, the pages
 * whose copy mismatched too), into src->work: a read of the bitmaps, once.
 */
static int src_work_add(struct rdmig_src *src, uint64_t c)
{
	if (src->nwork && src->work[src->nwork - 1] == c)
		return 0;
	if (src->nwork == src->work_cap) {
		uint64_t cap = src->work_cap ? src->work_cap * 2 : 1024;
		uint64_t *grown = realloc(src->work, cap * sizeof(*grown));

		if (!grown)
			return rdmig__err(
				-ENOMEM,
				"no memory for a pass's list of chunks (%" PRIu64 " of them)", cap);
		src->work = grown;
		src->work_cap = cap;
	}
	src->work[src->nwork++] = c;
	return 0;
}

/* An empty list of chunks (never NULL: the workers take a NULL one as all). */
static int src_work_reset(struct rdmig_src *src)
{
	src->nwork = 0;
	src->use_work = false;
	if (!src->work && !(src->work = malloc(1024 * sizeof(*src->work))))
		return rdmig__err(-ENOMEM, "no memory for a pass's list of chunks");
	if (src->work_cap < 1024)
		src->work_cap = 1024;
	src->use_work = true;
	return 0;
}

static int src_work_walk(struct rdmig_src *src, const struct rdmig_dirty *dirty, bool again)
{
	uint32_t cp = src->cfg.chunk_pages;
	int ret;

	if ((ret = src_work_reset(src)))
		return ret;
	for (unsigned i = 0; i < src->nregions; i++) {
		const struct rdmig__dp_region *d = &src->dpr[i];
		const uint64_t *bm = dirty[i].bitmap, *mm = again ? d->mismatch : NULL;
		uint64_t words = (d->npages + 63) / 64;

		for (uint64_t w = 0; w < words; w++) {
			uint64_t v = bm[w] | (mm ? mm[w] : 0);

			if (!v)
				continue;
			v &= src_valid_bits(d->npages, w);
			while (v) {
				uint64_t c = (w * 64 + (uint64_t)__builtin_ctzll(v)) / cp;
				uint64_t next = (c + 1) * cp;

				if ((ret = src_work_add(src, d->chunk_base + c)))
					return ret;
				v = next >= (w + 1) * 64 ? 0 : v & (~0ull << (next - w * 64));
			}
		}
	}
	return 0;
}

/*
 * The chunks the pass works on (src->work): none to list with every page
 * dirty; the list's own when the pass is over dirty lists, with no
 * discard added and no mismatched page to take up again; else a walk of
 * the bitmaps.
 */
static int src_work_prepare(struct rdmig_src *src, const struct rdmig_dirty *dirty)
{
	bool listed = src->list_live && !src->mismatch_pending;

	if (!dirty) {
		src->use_work = false;
		src->nwork = 0;
		return 0;
	}
	for (unsigned i = 0; listed && i < src->nregions; i++)
		listed = dirty[i].bitmap == src->regions[i].list; /* no discards merged */
	if (listed) {
		src->use_work = true;
		return 0; /* src_list_prepare() made it */
	}
	return src_work_walk(src, dirty, src->mismatch_pending != 0);
}

/*
 * Before a pass: room for the mismatch bitmaps (one bit per page each: the
 * pages whose copy mismatched, and a final pass's snapshot), made on the
 * first. A mismatched page now in the skip set is don't-care: no longer
 * mismatched, and ballooned (it must be dirty when it leaves the set) even
 * if not dirty now, as if it had been.
 */
static int src_verify_prepare(struct rdmig_src *src, const struct rdmig_dirty *dirty)
{
	for (unsigned i = 0; i < src->nregions; i++) {
		uint64_t words = (src->dpr[i].npages + 63) / 64;
		uint64_t *bm = src->dpr[i].mismatch;

		for (uint64_t w = 0; src->mismatch_pending && dirty && dirty[i].skip && w < words;
		     w++) {
			uint64_t gone =
				bm[w] & dirty[i].skip[w] & src_valid_bits(src->dpr[i].npages, w);

			bm[w] &= ~gone;
			src->regions[i].ballooned[w] |= gone & ~dirty[i].bitmap[w];
			src->mismatch_pending -= (uint64_t)__builtin_popcountll(gone);
		}
		if (bm)
			continue;
		src->dpr[i].mismatch = calloc(words, sizeof(uint64_t));
		src->regions[i].retry = calloc(words, sizeof(uint64_t));
		if (!src->dpr[i].mismatch || !src->regions[i].retry) {
			free(src->dpr[i].mismatch);
			free(src->regions[i].retry);
			src->dpr[i].mismatch = NULL;
			src->regions[i].retry = NULL;
			return rdmig__err(-ENOMEM, "no memory to verify region %u's pages", i);
		}
	}
	return 0;
}

/* The first page whose copy mismatched, in region *ri; false if none. */
static bool src_first_mismatch(const struct rdmig_src *src, unsigned *ri, uint64_t *page)
{
	for (unsigned i = 0; i < src->nregions; i++) {
		const uint64_t *bm = src->dpr[i].mismatch;

		for (uint64_t w = 0; bm && w < (src->dpr[i].npages + 63) / 64; w++)
			if (bm[w]) {
				*ri = i;
				*page = w * 64 + (uint64_t)__builtin_ctzll(bm[w]);
				return true;
			}
	}
	return false;
}

static int src_poll_cb(void *arg);
static int src_send_progress(struct rdmig_src *src, uint64_t now);

/*
 * A final pass's second round, over the pages whose copy mismatched in the
 * first (or before it, and again in it): each is sent and verified once
 * more, within the same pass. One that mismatches again stays marked, and
 * complete refuses. With none, the round only ends the pass.
 */
static int src_final_retry(struct rdmig_src *src, const struct rdmig_dirty *dirty,
			   struct rdmig__worker_stats *sum)
{
	struct rdmig_dirty retry[RDMIG__MAX_REGIONS];
	unsigned flags = RDMIG__DP_VERIFY | RDMIG__DP_RETRY | RDMIG__DP_AGAIN;
	uint64_t before = src->mismatch_pending, first_set = sum->mism_set;
	uint64_t first_cleared = sum->mism_cleared;
	unsigned ri;
	uint64_t page;
	int ret;

	for (unsigned i = 0; i < src->nregions; i++) {
		uint64_t words = (src->dpr[i].npages + 63) / 64;

		if (before)
			memcpy(src->regions[i].retry, src->dpr[i].mismatch,
			       words * sizeof(uint64_t));
		retry[i] = (struct rdmig_dirty){ .bitmap = src->regions[i].retry,
						 .words = words,
						 .skip = dirty ? dirty[i].skip : NULL,
						 .skip_words = dirty ? dirty[i].skip_words : 0 };
	}
	/* Every chunk, the clean ones skipped: the retry bitmaps are rdmig's. */
	src->dp.work = NULL;
	ret = rdmig__dp_run_pass(&src->dp, src->dpr, src->nregions, retry, src->passes + 1,
				 before ? flags : flags | RDMIG__DP_NONE, src_poll_cb, src, sum);
	if (ret)
		return ret;
	/* The sums are the whole pass's: count this round's changes only. */
	src->mismatch_pending += (sum->mism_set - first_set) - (sum->mism_cleared - first_cleared);
	if (src->mismatch_pending && src_first_mismatch(src, &ri, &page))
		rdmig__log(RDMIG__LOG_WARN,
			   "final pass %" PRIu64 ": %" PRIu64 " page(s) landed other than the "
			   "source holds them, again when sent a second time, the first page "
			   "%" PRIu64 " of region %u (gpa 0x%" PRIx64 "): complete will refuse",
			   src->passes + 1, src->mismatch_pending, page, ri,
			   src->regions[ri].gpa + page * src->cfg.page_size);
	return 0;
}

/* Called by the pass's waiting loop: is the session still healthy? */
static int src_poll_cb(void *arg)
{
	struct rdmig_src *src = arg;
	struct ibv_wc wc;
	int ret;
	uint64_t now = rdmig__now_ns();

	if ((ret = src_cancel_check(src)))
		return ret;

	/* Tell the destination the pass goes on (it cannot see our WRITEs).
	 * No free send buffer: the next call tries again. */
	if (!src->stashed && now - src->progress_ns >= PROGRESS_NS &&
	    (ret = src_send_progress(src, now)))
		return ret;

	/* The destination may report an error while we write; anything else
	 * (its PASS_ACK racing our last completion) is kept for later. */
	ret = rdmig__xp_poll(src->ctrl.cq, 1, &wc);
	if (ret < 0)
		return rdmig__err(-EIO, "polling the control CQ failed");
	if (ret == 1) {
		ret = src_ctrl_wc(src, &wc, &src->stash);
		if (ret < 0)
			return ret;
		if (ret == 1) {
			if (src->stashed)
				return rdmig__err(-EPROTO, "unexpected %s from the destination",
						  rdmig__msg_type_name(src->stash.type));
			src->stashed = true;
		}
		return 0;
	}
	return src_check_cm(src);
}

/*
 * A pass failed on a data QP (flushed: the destination is gone). If the
 * destination said why on the control QP before it went, that is the
 * better error: returns it, else `err` as it was.
 */
static int src_peer_said(struct rdmig_src *src, int err)
{
	char was[512];
	struct ibv_wc wc;
	int n, ret;

	if (src->stashed || !src->ctrl.cq)
		return err;
	snprintf(was, sizeof(was), "%s", rdmig_last_error());
	/* Its ERROR may trail what broke our data QP (it revokes access before
	 * it writes): give it 200 ms. */
	for (uint64_t deadline = rdmig__now_ns() + 200ull * 1000000;
	     (n = rdmig__cq_wait(src->ctrl.cq, &wc, 1, rdmig__ms_left(deadline))) >= 0;) {
		if (n == 0)
			break;
		ret = src_ctrl_wc(src, &wc, &src->stash);
		if (ret < 0 && src->peer_error)
			return ret;
		if (ret < 0)
			break;
	}
	rdmig__err_set(err, was);
	return err;
}

/* Chunks in a round over every region (as rdmig__dp_run_pass() counts them). */
static uint64_t src_nchunks(const struct rdmig_src *src)
{
	const struct rdmig__dp_region *last = &src->dpr[src->nregions - 1];

	return last->chunk_base + rdmig__chunk_count(last->npages, src->cfg.chunk_pages);
}

/* A new round's chunks count in the progress figures (the final pass's second). */
static void src_prog_round(struct rdmig_src *src, uint64_t chunks)
{
	src_prog_begin(src);
	atomic_fetch_add_explicit(&src->prog_chunks, chunks, memory_order_relaxed);
	src_prog_end(src);
}

/*
 * A paused pass keeps a copy of its dirty and skip bitmaps (see
 * rdmig_src_pass_budget()): the VMM may reuse its own, and the pass ends
 * on the very bits it began with. The room is made at the first pause and
 * kept. -ENOMEM: no copy, the caller goes on to the pass's end instead.
 */
static int src_hold_copy(struct rdmig_src *src)
{
	struct src_held *h = &src->held;
	uint64_t words = 0, *p, *at[RDMIG__MAX_REGIONS];

	if (!h->dirty || h->dirty == h->copy)
		return 0;
	for (unsigned i = 0; i < src->nregions; i++)
		words += 2 * ((src->dpr[i].npages + 63) / 64);
	if (!h->bits && !(h->bits = malloc(words * sizeof(uint64_t))))
		return rdmig__err(-ENOMEM,
				  "no memory to keep a paused pass's bitmaps (%" PRIu64 " bytes)",
				  words * 8);
	p = h->bits;
	for (unsigned i = 0; i < src->nregions; i++) {
		size_t n = (src->dpr[i].npages + 63) / 64;

		at[i] = p;
		h->copy[i] = (struct rdmig_dirty){ .bitmap = p, .words = n };
		p += n;
		if (h->dirty[i].skip) {
			h->copy[i].skip = p;
			h->copy[i].skip_words = n;
		}
		p += n;
	}
	/* Only the words of the pass's chunks: nothing else is read (the
	 * copy's other words are never looked at). */
	{
		uint64_t k = 0, w0, w1;
		unsigned ri = 0;

		while (rdmig__dp_next_span(src->dpr, src->nregions, src->cfg.chunk_pages,
					   src->use_work ? src->work : NULL, src->nwork, &k, &ri,
					   &w0, &w1)) {
			size_t n = (src->dpr[ri].npages + 63) / 64;

			memcpy(at[ri] + w0, h->dirty[ri].bitmap + w0, (w1 - w0) * sizeof(uint64_t));
			if (h->dirty[ri].skip)
				memcpy(at[ri] + n + w0, h->dirty[ri].skip + w0,
				       (w1 - w0) * sizeof(uint64_t));
		}
	}
	h->dirty = h->copy;
	return 0;
}

/*
 * Tells the destination that `pass` goes on (it cannot see WRITEs land).
 * With `wait`, this one must go: waits for a send buffer; without, no free
 * buffer means next time.
 */
static int src_progress(struct rdmig_src *src, uint64_t pass, uint64_t now, bool wait)
{
	struct rdmig__msg m = { .type = RDMIG__MSG_PROGRESS };
	int ret;

	m.progress.pass = pass;
	m.progress.elapsed_ms = (now - src->pass_start_ns) / 1000000;
	ret = wait ? src_ctrl_send(src, &m) : rdmig__ep_send(&src->ctrl, &m);
	if (ret && ret != -EAGAIN)
		return ret;
	if (!ret)
		src->progress_ns = now;
	return 0;
}

/* The pass under way goes on. */
static int src_send_progress(struct rdmig_src *src, uint64_t now)
{
	return src_progress(src, src->passes + 1, now, false);
}

/* What a slice of a pass did: the pass's sums now less those at its start. */
static void src_slice_stats(const struct rdmig_src *src, const struct rdmig__worker_stats *sum,
			    uint64_t duration_ns, struct rdmig_pass_stats *stats)
{
	const struct rdmig__worker_stats *b = &src->held.before;
	struct rdmig_pass_stats s = {
		.size = sizeof(s),
		.pass = src->passes + 1,
		.dirty_pages = sum->dirty - b->dirty,
		.written_pages = sum->pages - b->pages,
		.wire_bytes = sum->bytes - b->bytes,
		.writes = sum->writes - b->writes,
		.duration_ns = duration_ns,
		.workers = src->nqps,
		.scanned_pages = sum->scanned - b->scanned,
		.skipped_zero = sum->skipped_zero - b->skipped_zero,
		.skipped_unchanged = sum->skipped_unchanged - b->skipped_unchanged,
		.skipped_ballooned = sum->skipped_ballooned - b->skipped_ballooned,
		.zero_filled_pages = sum->zero_filled - b->zero_filled,
		.scan_ns = sum->scan_ns - b->scan_ns,
		/* The slowest worker's, which only grows: the slices' add up. */
		.wire_ns = sum->wire_ns - b->wire_ns,
		.mismatched_pages = sum->mismatched - b->mismatched,
		.resent_pages = sum->resent - b->resent,
		.mismatch_pending = src->mismatch_pending,
	};

	if (stats) {
		s.size = stats->size;
		memcpy(stats, &s, RDMIG__MIN(stats->size, sizeof(s)));
	}
}

/*
 * Runs the pass set up in src->held, from where it stands, to its end or
 * until `budget` (NULL: none) is spent: see rdmig_src_pass_budget(). t0:
 * when the call began.
 */
static int src_pass_go(struct rdmig_src *src, uint64_t t0, const struct rdmig_budget *budget,
		       bool resume, struct rdmig_pass_stats *stats)
{
	struct src_held *h = &src->held;
	struct rdmig__worker_stats sum;
	struct rdmig__msg *m;
	uint64_t now;
	unsigned dpf;
	int ret;

	for (;;) {
		dpf = h->dpf | (resume ? RDMIG__DP_RESUME : 0);
		if (budget) {
			dpf |= RDMIG__DP_BUDGET;
			/* A bound past the clock's range is no bound. */
			src->dp.deadline_ns = !budget->time_ns ? 0
					      : budget->time_ns > UINT64_MAX - t0
						      ? UINT64_MAX
						      : t0 + budget->time_ns;
			src->dp.byte_budget = budget->wire_bytes;
		}
		src->dp.work = src->use_work ? src->work : NULL;
		src->dp.nwork = src->nwork;
		ret = rdmig__dp_run_pass(&src->dp, src->dpr, src->nregions, h->dirty,
					 src->passes + 1, dpf, src_poll_cb, src, &sum);
		if (ret && ret != -ECANCELED)
			ret = src_peer_said(src, ret);
		if (ret)
			return src_fail(src, ret);
		src->mismatch_pending += (sum.mism_set - h->before.mism_set) -
					 (sum.mism_cleared - h->before.mism_cleared);
		if (!src->dp.paused)
			break;
		/* Without room for the bitmaps' copy the pass cannot wait for
		 * the VMM: it goes on to its end now instead. */
		if (src_hold_copy(src)) {
			rdmig__log(RDMIG__LOG_WARN, "%s: pass %" PRIu64 " goes on to its end",
				   rdmig_last_error(), src->passes + 1);
			rdmig__err_clear();
			h->before.mism_set = sum.mism_set;
			h->before.mism_cleared = sum.mism_cleared;
			budget = NULL;
			resume = true;
			continue;
		}
		/* The destination's idle window starts now, not at the last
		 * heartbeat: the VMM gets all of it. So this one must go: wait
		 * for a send buffer if need be. */
		now = rdmig__now_ns();
		if ((ret = src_progress(src, src->passes + 1, now, true)))
			return src_fail(src, ret);
		src_slice_stats(src, &sum, now - t0, stats);
		h->before = sum;
		h->duration_ns += now - t0;
		h->on = true;
		src_prog_state(src, RDMIG_PROGRESS_PAUSED);
		return RDMIG_PASS_PAUSED;
	}
	if (h->final) {
		src_prog_round(src, src->mismatch_pending ? src_nchunks(src) : 0);
		if ((ret = src_final_retry(src, h->dirty, &sum)))
			return src_fail(src, ret);
	}

	/* Our writes completed; the destination confirms they are placed. */
	m = &src->msg;
	if ((ret = src_ctrl_recv(src, (int)src->cfg.timeout_ms, m)))
		return src_fail(src, ret);
	if (m->type != RDMIG__MSG_PASS_ACK || m->pass_ack.pass != src->passes + 1 ||
	    m->pass_ack.bytes != sum.bytes)
		return src_fail(
			src, rdmig__err(-EPROTO,
					"expected PASS_ACK for pass %" PRIu64 " (%" PRIu64
					" bytes), got %s for pass %" PRIu64 " (%" PRIu64 " bytes)",
					src->passes + 1, sum.bytes, rdmig__msg_type_name(m->type),
					m->pass_ack.pass, m->pass_ack.bytes));
	now = rdmig__now_ns();
	src_slice_stats(src, &sum, now - t0, stats);
	src->passes++;
	src_coverage_record(src, h->dirty);
	src_account(src, &sum, h->duration_ns + (now - t0), NULL);
	h->on = false;
	src_prog_begin(src);
	atomic_store_explicit(&src->prog_base_bytes, src->totals.wire_bytes, memory_order_relaxed);
	atomic_store_explicit(&src->prog_state, RDMIG_PROGRESS_IDLE, memory_order_relaxed);
	src_prog_end(src);
	return 0;
}

/* Checks a budget and copies what of it the caller's size holds into *b. */
static int src_budget_read(const struct rdmig_budget *budget, struct rdmig_budget *b)
{
	memset(b, 0, sizeof(*b));
	if (!budget)
		return rdmig__err(-EINVAL, "budget is NULL (rdmig_src_pass() has none)");
	if (budget->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "budget->size is %zu: set it to sizeof(*budget)",
				  budget->size);
	memcpy(b, budget, RDMIG__MIN(budget->size, sizeof(*b)));
	b->size = sizeof(*b);
	if (!b->time_ns && !b->wire_bytes)
		return rdmig__err(-EINVAL,
				  "a budget of zero (time_ns 0 and wire_bytes 0) bounds nothing: "
				  "set one, or call rdmig_src_pass() for no bound");
	return 0;
}

/* A pass is paused: only resuming it may run one. */
static int src_held_busy(const struct rdmig_src *src, const char *call)
{
	if (!src->held.on)
		return 0;
	return rdmig__err(-EBUSY,
			  "%s: pass %" PRIu64 " is paused on its budget: finish it with "
			  "rdmig_src_pass_resume() first",
			  call, src->passes + 1);
}

/* Checks a pass's dirty lists against the regions (see struct rdmig_dirty_list). */
static int src_check_list(const struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			  unsigned ndirty)
{
	if (!dirty)
		return rdmig__err(-EINVAL, "dirty is NULL (use rdmig_src_pass() with "
					   "RDMIG_PASS_ALL to send all)");
	if (ndirty != src->nregions)
		return rdmig__err(-EINVAL, "%u dirty lists for %u regions", ndirty, src->nregions);
	for (unsigned i = 0; i < ndirty; i++) {
		uint64_t np = src->dpr[i].npages, need = (np + 63) / 64;

		if (dirty[i].count && !dirty[i].pages)
			return rdmig__err(-EINVAL,
					  "region %u: %zu dirty pages listed, pages is NULL", i,
					  dirty[i].count);
		if (dirty[i].skip && dirty[i].skip_words < need)
			return rdmig__err(-EINVAL,
					  "region %u: skip bitmap of %zu words is shorter than "
					  "the region (%" PRIu64 " pages need %" PRIu64 " words)",
					  i, dirty[i].skip_words, np, need);
		for (size_t k = 0; k < dirty[i].count; k++)
			if (dirty[i].pages[k] >= np)
				return rdmig__err(-EINVAL,
						  "region %u: dirty list entry %zu is page %" PRIu64
						  ", past the region's end (%" PRIu64 " pages)",
						  i, k, dirty[i].pages[k], np);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Clears what src_list_prepare() set: by the lists' pages when the caller
 * still has them (`dirty`), else by the words of the pass's chunks (a
 * paused pass's lists may be gone; its chunks cover every bit).
 */
static void src_list_done(struct rdmig_src *src, const struct rdmig_dirty_list *dirty)
{
	uint64_t k = 0, w0, w1;
	unsigned ri = 0;

	if (!src->list_live)
		return;
	src->list_live = false;
	if (dirty) {
		for (unsigned i = 0; i < src->nregions; i++)
			for (size_t j = 0; j < dirty[i].count; j++)
				src->regions[i].list[dirty[i].pages[j] / 64] = 0;
		return;
	}
	while (rdmig__dp_next_span(src->dpr, src->nregions, src->cfg.chunk_pages, src->work,
				   src->nwork, &k, &ri, &w0, &w1))
		memset(src->regions[ri].list + w0, 0, (w1 - w0) * sizeof(uint64_t));
}

/*
 * A pass (or estimate) over dirty lists: checks them, sets their pages in
 * regions[].list (made at the first such pass, zero between passes) and
 * lists their chunks in src->work, sorted, each once. The pass then reads
 * src->list_dirty as any other dirty log, and src_list_done() clears it.
 * Costs the lists' length (and a sort), not the guest's size.
 */
static int src_list_prepare(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			    unsigned ndirty)
{
	uint32_t cp = src->cfg.chunk_pages;
	bool sorted = true;
	uint64_t n = 0;
	int ret;

	if ((ret = src_check_list(src, dirty, ndirty)))
		return ret;
	for (unsigned i = 0; i < ndirty; i++) {
		struct src_region *r = &src->regions[i];
		uint64_t words = (src->dpr[i].npages + 63) / 64;

		if (!r->list && !(r->list = calloc(words, sizeof(uint64_t))))
			return rdmig__err(-ENOMEM,
					  "no memory for region %u's dirty list as a bitmap", i);
		src->list_dirty[i] = (struct rdmig_dirty){ .bitmap = r->list,
							   .words = words,
							   .skip = dirty[i].skip,
							   .skip_words = dirty[i].skip_words };
	}
	if ((ret = src_work_reset(src)))
		return ret;
	src->list_live = true;
	for (unsigned i = 0; i < ndirty; i++) {
		uint64_t *bm = src->regions[i].list, base = src->dpr[i].chunk_base;

		for (size_t j = 0; j < dirty[i].count; j++) {
			uint64_t p = dirty[i].pages[j], c = base + p / cp;

			bm[p / 64] |= 1ull << (p % 64);
			if (src->nwork && c < src->work[src->nwork - 1])
				sorted = false;
			if ((ret = src_work_add(src, c))) {
				src_list_done(src, dirty);
				return ret;
			}
		}
	}
	if (sorted)
		return 0;
	/* As a dirty ring gives them: in no order. */
	qsort(src->work, src->nwork, sizeof(*src->work), cmp_u64);
	for (uint64_t j = 0; j < src->nwork; j++)
		if (!n || src->work[j] != src->work[n - 1])
			src->work[n++] = src->work[j];
	src->nwork = n;
	return 0;
}

/* Checks and sets up a pass (logs, discards, verification), then runs it. */
static int src_pass_start(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
			  unsigned flags, const struct rdmig_budget *budget,
			  struct rdmig_pass_stats *stats)
{
	uint64_t t0 = rdmig__now_ns();
	struct src_held *h = &src->held;
	bool final;
	int ret;

	if (flags & ~(RDMIG_PASS_ALL | RDMIG_PASS_FINAL))
		return rdmig__err(-EINVAL, "unknown pass flags 0x%x",
				  flags & ~(RDMIG_PASS_ALL | RDMIG_PASS_FINAL));
	if (stats && stats->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "stats->size is %zu: set it to sizeof(*stats)",
				  stats->size);
	if (!(flags & RDMIG_PASS_ALL)) {
		if ((ret = src_check_dirty(src, dirty, ndirty)))
			return ret;
	} else if (dirty && (ret = src_all_dirty(src, dirty, ndirty, &dirty))) {
		return ret;
	}
	/* Pages discarded since the last pass: dirty now (the pass reads the
	 * VMM's logs with them added), their MRs registered again. */
	if ((ret = rdmig__disc_take(&src->disc, dirty, src->dirty_scratch, &dirty)))
		return ret;
	if ((dirty && (ret = src_coverage_prepare(src, dirty))) ||
	    (ret = src_verify_prepare(src, dirty)) || (ret = src_work_prepare(src, dirty))) {
		rdmig__disc_untake(&src->disc);
		return ret;
	}
	if ((ret = rdmig__disc_apply(&src->disc, src->xp, src->pd, dirty, src->dpr,
				     src->cfg.chunk_pages, src->use_work ? src->work : NULL,
				     src->nwork)))
		return ret;

	/*
	 * With hashes at hand (skip_unchanged) every pass compares them; a
	 * final pass always does, and sends a page that mismatched again in
	 * a second round of its own. Before a final pass, a mismatch simply
	 * makes the page go again in the next pass.
	 */
	final = flags & RDMIG_PASS_FINAL;
	memset(&h->before, 0, sizeof(h->before));
	h->duration_ns = 0;
	h->final = final;
	h->dirty = dirty;
	src->dp.hashing = src_hashing(src, final);
	rdmig__log(RDMIG__LOG_DEBUG, "pass %" PRIu64 ": %s (share unchanged %.3f)", src->passes + 1,
		   src->dp.hashing ? "hashing" : "hashing the sample only", src->skip_share);
	h->dpf = (final ? RDMIG__DP_VERIFY : 0) | (final ? RDMIG__DP_MORE : 0) |
		 (src->mismatch_pending ? RDMIG__DP_AGAIN : 0);
	src->pass_start_ns = src->progress_ns = t0;
	src_prog_begin(src);
	rdmig__dp_progress_reset(src->pub, src->nqps);
	atomic_store_explicit(&src->prog_pass, src->passes + 1, memory_order_relaxed);
	atomic_store_explicit(&src->prog_chunks, src->use_work ? src->nwork : src_nchunks(src),
			      memory_order_relaxed);
	atomic_store_explicit(&src->prog_state, RDMIG_PROGRESS_RUNNING, memory_order_relaxed);
	src_prog_end(src);
	return src_pass_go(src, t0, budget, false, stats);
}

int rdmig_src_pass(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
		   unsigned flags, struct rdmig_pass_stats *stats)
{
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_pass")))
		return ret;
	return src_pass_start(src, dirty, ndirty, flags, NULL, stats);
}

int rdmig_src_pass_budget(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
			  unsigned flags, const struct rdmig_budget *budget,
			  struct rdmig_pass_stats *stats)
{
	struct rdmig_budget b;
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_pass_budget")) ||
	    (ret = src_budget_read(budget, &b)))
		return ret;
	return src_pass_start(src, dirty, ndirty, flags, &b, stats);
}

/* A pass over dirty lists: as a bitmap pass over their bitmap (src_list_prepare()). */
static int src_pass_list(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			 unsigned ndirty, unsigned flags, const struct rdmig_budget *budget,
			 struct rdmig_pass_stats *stats)
{
	int ret;

	if (flags & RDMIG_PASS_ALL)
		return rdmig__err(-EINVAL, "RDMIG_PASS_ALL takes no dirty list: call "
					   "rdmig_src_pass() or rdmig_src_pass_budget()");
	if ((ret = src_list_prepare(src, dirty, ndirty)))
		return ret;
	ret = src_pass_start(src, src->list_dirty, src->nregions, flags, budget, stats);
	/* Paused: the lists' bits stay until the pass ends (resume clears them). */
	if (!src->held.on)
		src_list_done(src, dirty);
	return ret;
}

int rdmig_src_pass_list(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			unsigned ndirty, unsigned flags, struct rdmig_pass_stats *stats)
{
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_pass_list")))
		return ret;
	return src_pass_list(src, dirty, ndirty, flags, NULL, stats);
}

int rdmig_src_pass_list_budget(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			       unsigned ndirty, unsigned flags, const struct rdmig_budget *budget,
			       struct rdmig_pass_stats *stats)
{
	struct rdmig_budget b;
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_pass_list_budget")) ||
	    (ret = src_budget_read(budget, &b)))
		return ret;
	return src_pass_list(src, dirty, ndirty, flags, &b, stats);
}

int rdmig_src_pass_resume(struct rdmig_src *src, const struct rdmig_budget *budget,
			  struct rdmig_pass_stats *stats)
{
	uint64_t t0 = rdmig__now_ns();
	struct rdmig_budget b;
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)))
		return ret;
	if (!src->held.on)
		return rdmig__err(-EINVAL, "rdmig_src_pass_resume: no pass is paused");
	if (budget && (ret = src_budget_read(budget, &b)))
		return ret;
	if (stats && stats->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "stats->size is %zu: set it to sizeof(*stats)",
				  stats->size);
	src->held.on = false;
	src_prog_state(src, RDMIG_PROGRESS_RUNNING);
	ret = src_pass_go(src, t0, budget ? &b : NULL, true, stats);
	if (!src->held.on)
		src_list_done(src, NULL); /* a pass over dirty lists ended */
	return ret;
}

int rdmig_src_progress(struct rdmig_src *src, struct rdmig_progress *progress)
{
	struct rdmig_progress p = { .size = sizeof(p) };
	struct rdmig__worker_stats sum;
	unsigned s1, s2;
	uint64_t base;

	if (!src || !progress)
		return rdmig__err(-EINVAL, "%s is NULL", src ? "progress" : "src");
	if (progress->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "progress->size is %zu: set it to sizeof(*progress)",
				  progress->size);
	/* A seqlock read: retried while the owner changes the pass's state. */
	for (;;) {
		s1 = atomic_load_explicit(&src->prog_seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		p.pass = atomic_load_explicit(&src->prog_pass, memory_order_relaxed);
		p.state = atomic_load_explicit(&src->prog_state, memory_order_relaxed);
		p.workers = atomic_load_explicit(&src->prog_workers, memory_order_relaxed);
		p.chunks = atomic_load_explicit(&src->prog_chunks, memory_order_relaxed);
		base = atomic_load_explicit(&src->prog_base_bytes, memory_order_relaxed);
		rdmig__dp_progress(src->pub, RDMIG__MIN(p.workers, RDMIG__MAX_WORKERS), &sum);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&src->prog_seq, memory_order_relaxed);
		if (s1 == s2)
			break;
	}
	p.dirty_pages = sum.dirty;
	p.written_pages = sum.pages;
	p.wire_bytes = sum.bytes;
	p.writes = sum.writes;
	p.skipped_pages = sum.skipped_zero;
	p.zero_filled_pages = sum.zero_filled;
	p.chunks_done = sum.chunks;
	/* Once a pass ended its bytes are in the base already. */
	p.total_wire_bytes = base + (p.state != RDMIG_PROGRESS_IDLE ? sum.bytes : 0);
	p.size = progress->size;
	memcpy(progress, &p, RDMIG__MIN(progress->size, sizeof(p)));
	return 0;
}

/* Adds a pass to the totals and fills the caller's stats, if any. */
static void src_account(struct rdmig_src *src, const struct rdmig__worker_stats *sum,
			uint64_t duration_ns, struct rdmig_pass_stats *stats)
{
	struct rdmig_pass_stats s = {
		.size = sizeof(s),
		.pass = src->passes,
		.dirty_pages = sum->dirty,
		.written_pages = sum->pages,
		.wire_bytes = sum->bytes,
		.writes = sum->writes,
		.duration_ns = duration_ns,
		.workers = src->nqps,
		.scanned_pages = sum->scanned,
		.skipped_zero = sum->skipped_zero,
		.skipped_unchanged = sum->skipped_unchanged,
		.skipped_ballooned = sum->skipped_ballooned,
		.zero_filled_pages = sum->zero_filled,
		.scan_ns = sum->scan_ns,
		.wire_ns = sum->wire_ns,
		.mismatched_pages = sum->mismatched,
		.resent_pages = sum->resent,
		.mismatch_pending = src->mismatch_pending,
	};
	struct rdmig_pass_stats *t = &src->totals;
	struct rdmig__model_pass mp = {
		.dirty = sum->dirty,
		.ballooned = sum->skipped_ballooned,
		.scanned = sum->scanned,
		.written = sum->pages,
		.wire_bytes = sum->bytes,
		.writes = sum->writes,
		.scan_ns = sum->scan_ns,
		.wire_ns = sum->wire_ns,
		.duration_ns = duration_ns,
		.workers = src->nqps,
	};

	t->pass = src->passes;
	t->dirty_pages += s.dirty_pages;
	t->written_pages += s.written_pages;
	t->wire_bytes += s.wire_bytes;
	t->writes += s.writes;
	t->duration_ns += s.duration_ns;
	t->workers = s.workers;
	t->scanned_pages += s.scanned_pages;
	t->skipped_zero += s.skipped_zero;
	t->skipped_unchanged += s.skipped_unchanged;
	t->skipped_ballooned += s.skipped_ballooned;
	t->zero_filled_pages += s.zero_filled_pages;
	t->scan_ns += s.scan_ns;
	t->wire_ns += s.wire_ns;
	t->mismatched_pages += s.mismatched_pages;
	t->resent_pages += s.resent_pages;
	t->mismatch_pending = s.mismatch_pending;
	rdmig__model_add(&src->model, &mp);
	if (sum->compared)
		src->skip_share = (double)sum->skipped_unchanged / (double)sum->compared;
	if (stats) {
		s.size = stats->size;
		memcpy(stats, &s, RDMIG__MIN(stats->size, sizeof(s)));
	}
}

/*
 * The estimate for `dirty` (checked; NULL: dirty_pages of no known layout),
 * whose bits lie in src->work's chunks only when `listed`.
 */
static int src_estimate_for(struct rdmig_src *src, const struct rdmig_dirty *dirty, bool listed,
			    uint64_t dirty_pages, struct rdmig_estimate *est)
{
	struct rdmig_estimate e = { .size = sizeof(e) };
	struct rdmig__model_sample sample = { 0 };
	uint64_t ballooned = UINT64_MAX, k = 0, w0, w1;
	unsigned ri = 0;
	int ret;

	if (dirty) {
		dirty_pages = 0;
		ballooned = 0;
		while (rdmig__dp_next_span(src->dpr, src->nregions, src->cfg.chunk_pages,
					   listed ? src->work : NULL, src->nwork, &k, &ri, &w0,
					   &w1)) {
			const uint64_t *bm = dirty[ri].bitmap + w0, *skip = dirty[ri].skip;
			uint64_t np = RDMIG__MIN(src->dpr[ri].npages, w1 * 64) - w0 * 64;

			dirty_pages += rdmig__bitmap_count(bm, np);
			if (skip)
				ballooned += rdmig__bitmap_count_and(bm, skip + w0, np);
		}
	}
	/* What a pass would do with the dirty set as it is now, from a sample
	 * of it (recent passes ran while the guest ran, the final one will
	 * not), and how its pages lie in runs (how many WRITEs they make). */
	if (dirty)
		rdmig__dp_sample(
			&src->dp, src->dpr, src->nregions, dirty, listed ? src->work : NULL,
			src->nwork, dirty_pages - ballooned,
			RDMIG__MAX(1ull, RDMIG__MIN((uint64_t)ESTIMATE_SAMPLE,
						    ESTIMATE_SAMPLE_BYTES / src->cfg.page_size)),
			&sample);
	ret = rdmig__model_estimate(&src->model, dirty_pages, ballooned, src->nqps, &sample, &e);
	if (ret)
		return ret;
	{
		const struct rdmig__model_after after = {
			.state_bytes = src->state_sent ? 0 : src->state_expect,
			.rtt_ns = src->rtt_ns,
			.reg_bytes = src->reg_bytes,
			.reg_ns = src->reg_ns
		};

		rdmig__model_downtime(&after, src->nqps, &e);
	}
	e.size = est->size;
	memcpy(est, &e, RDMIG__MIN(est->size, sizeof(e)));
	return 0;
}

int rdmig_src_estimate(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned ndirty,
		       uint64_t dirty_pages, struct rdmig_estimate *est)
{
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_estimate")))
		return ret;
	if (!est || est->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "est is NULL or est->size is not set");
	if (dirty && (ret = src_check_dirty(src, dirty, ndirty)))
		return ret;
	return src_estimate_for(src, dirty, false, dirty_pages, est);
}

int rdmig_src_estimate_list(struct rdmig_src *src, const struct rdmig_dirty_list *dirty,
			    unsigned ndirty, struct rdmig_estimate *est)
{
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_estimate_list")))
		return ret;
	if (!est || est->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "est is NULL or est->size is not set");
	if ((ret = src_list_prepare(src, dirty, ndirty)))
		return ret;
	ret = src_estimate_for(src, src->list_dirty, true, 0, est);
	src_list_done(src, dirty);
	return ret;
}

int rdmig_src_stats(struct rdmig_src *src, struct rdmig_pass_stats *stats)
{
	struct rdmig_pass_stats t;

	rdmig__err_clear();
	if (!src || !stats)
		return rdmig__err(-EINVAL, "%s is NULL", src ? "stats" : "src");
	if (stats->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "stats->size is %zu: set it to sizeof(*stats)",
				  stats->size);
	t = src->totals;
	t.size = stats->size;
	memcpy(stats, &t, RDMIG__MIN(stats->size, sizeof(t)));
	return 0;
}

void rdmig__src_set_offer(struct rdmig_src *src, uint16_t ver_min, uint16_t ver_max, uint32_t caps)
{
	src->offer_min = ver_min;
	src->offer_max = ver_max;
	src->offer_caps = caps;
}

void rdmig__src_set_scan_hook(struct rdmig_src *src, rdmig__scan_hook_fn fn, void *arg)
{
	src->hook = fn;
	src->hook_arg = arg;
	src->dp.hook = fn;
	src->dp.hook_arg = arg;
}

/*
 * Complete is refused while a discarded page waits for a pass: the
 * destination may hold what the old frame had (DESIGN.md invariant 1).
 * Past this check, discards are refused.
 */
static int src_check_discards(struct rdmig_src *src)
{
	unsigned region;
	uint64_t page;

	if (!rdmig__disc_close(&src->disc, &region, &page))
		return 0;
	return rdmig__err(-EINVAL,
			  "page %" PRIu64 " of region %u (gpa 0x%" PRIx64
			  ") was discarded after the last pass: the destination may hold "
			  "its old content (run another pass, then complete)",
			  page, region, src->regions[region].gpa + page * src->cfg.page_size);
}

int rdmig_src_mismatch(struct rdmig_src *src, struct rdmig_layout_mismatch *mm)
{
	rdmig__err_clear();
	if (!src)
		return rdmig__err(-EINVAL, "src is NULL");
	return rdmig__layout_copy(&src->mismatch, mm);
}

int rdmig_src_discard(struct rdmig_src *src, unsigned region, uint64_t offset, uint64_t len)
{
	rdmig__err_clear();
	if (!src)
		return rdmig__err(-EINVAL, "src is NULL");
	return rdmig__disc_record(&src->disc, region, offset, len);
}

void rdmig__src_path(struct rdmig_src *src, struct rdmig__xp_path *p)
{
	*p = src->path;
}

void rdmig__src_set_mr_segment(struct rdmig_src *src, uint64_t bytes)
{
	src->disc.seg_bytes = bytes;
}

void rdmig__src_discard_counts(struct rdmig_src *src, struct rdmig__discard_counts *c)
{
	c->refreshes = src->disc.refreshes;
	c->refresh_bytes = src->disc.refresh_bytes;
	c->refresh_ns = src->disc.refresh_ns;
	c->unsettled = 0;
	for (unsigned i = 0; i < src->nregions; i++)
		c->unsettled += src->disc.r[i].nunsettled;
	c->segments = 0;
	for (unsigned i = 0; i < src->nregions; i++)
		c->segments += src->disc.r[i].nsegs;
}

int rdmig_src_complete(struct rdmig_src *src)
{
	struct rdmig__msg *m;
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_complete")))
		return ret;
	for (unsigned i = 0; i < src->nregions; i++) {
		const struct src_region *r = &src->regions[i];
		uint64_t pos;

		if (r->all_sent)
			continue;
		/* The first page no pass has sent (a clear bit of `sent`). */
		for (pos = 0; pos < src->dpr[i].npages; pos++)
			if (!r->sent || !(r->sent[pos / 64] & (1ull << (pos % 64))))
				break;
		return rdmig__err(-EINVAL,
				  "page %" PRIu64 " of region %u (gpa 0x%" PRIx64
				  ") was never sent: the destination would keep stale memory "
				  "(run a pass with RDMIG_PASS_ALL first)",
				  pos, i, r->gpa + pos * src->cfg.page_size);
	}
	/* No page may be left whose copy is known to differ from ours. */
	if (src->mismatch_pending) {
		unsigned ri = 0;
		uint64_t page = 0;

		src_first_mismatch(src, &ri, &page);
		return rdmig__err(-EIO,
				  "page %" PRIu64 " of region %u (gpa 0x%" PRIx64
				  ") landed at the destination other than the source holds "
				  "(its hash of what landed is not ours), and %" PRIu64
				  " pages in all: the destination image is not exact (run "
				  "another final pass, or abandon the migration)",
				  page, ri, src->regions[ri].gpa + page * src->cfg.page_size,
				  src->mismatch_pending);
	}
	/* Last of the refusals: it closes discards for good (none may slip in
	 * past the check), and a refusal after it would leave them closed on
	 * a session that goes on. */
	if ((ret = src_check_discards(src)))
		return ret;
	m = &src->msg;
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_COMPLETE;
	m->complete.passes = src->passes;
	/* The destination revokes access and answers at once: deregistering
	 * waits until after the ACK there (no allowance per GiB). */
	if ((ret = src_ctrl_send(src, m)) ||
	    (ret = src_ctrl_recv(src, (int)src->cfg.timeout_ms, m)))
		return src_fail(src, ret);
	if (m->type != RDMIG__MSG_COMPLETE_ACK || m->complete.passes != src->passes)
		return src_fail(src, rdmig__err(-EPROTO, "expected COMPLETE_ACK, got %s",
						rdmig__msg_type_name(m->type)));
	src->state = SRC_DONE;
	/* Deregistering the guest (unpinning it) waits for destroy: the guest
	 * is paused until this returns. */
	src_teardown_keep(src, true);
	return 0;
}

void rdmig_src_destroy(struct rdmig_src *src)
{
	if (!src)
		return;
	src_teardown(src);
	for (unsigned i = 0; i < src->nregions; i++) {
		free(src->regions[i].sent);
		free(src->regions[i].ballooned);
		free(src->regions[i].all);
		free(src->regions[i].list);
	}
	free(src->work);
	free(src->held.bits);
	rdmig__config_wipe(&src->cfg);
	OPENSSL_cleanse(&src->key, sizeof(src->key));
	rdmig__cancel_fini(&src->cancel);
	rdmig__disc_fini(&src->disc);
	free(src);
}

/* --- device state (blob.h) ------------------------------------------------- */

int rdmig_src_expect_state(struct rdmig_src *src, uint64_t bytes)
{
	rdmig__err_clear();
	if (!src)
		return rdmig__err(-EINVAL, "src is NULL");
	src->state_expect = bytes;
	return 0;
}

/* About once a second while the state goes: the destination cannot see WRITEs land. */
static int src_state_progress(struct rdmig_src *src)
{
	uint64_t now = rdmig__now_ns();

	if (now - src->progress_ns < PROGRESS_NS)
		return 0;
	return src_progress(src, src->passes, now, false);
}

/* prepare's tick: cancel, progress (nothing was described yet, so no answer is due). */
static int src_state_tick(void *arg)
{
	struct rdmig_src *src = arg;
	int ret;

	if ((ret = src_cancel_check(src)))
		return ret;
	return src_state_progress(src);
}

/*
 * The state's send loop on the control CQ: WRITE completions are ours,
 * the rest goes through src_ctrl_wc (a message that arrives meanwhile is
 * kept). Waits until fewer than `most` WRITEs are in flight (and, with
 * `need_buf`, a send buffer is free), or every one completed (most 1).
 */
struct state_wire {
	unsigned inflight;
	uint64_t bytes_inflight;
	uint64_t last_ns; /* the last completion (progress) */
	uint64_t first_ns, done_ns;
	uint64_t seq;
	uint64_t len[RDMIG__STATE_WRITES];
};

static int src_state_wait(struct rdmig_src *src, struct state_wire *sw, unsigned most,
			  uint64_t bytes_most, bool need_buf)
{
	const uint32_t all = (1u << src->ctrl.attr.nsend) - 1;
	struct ibv_wc wc;
	int n, ret;

	while (sw->inflight >= most || (sw->inflight && sw->bytes_inflight > bytes_most) ||
	       (need_buf && src->ctrl.send_busy == all)) {
		n = rdmig__cq_wait(src->ctrl.cq, &wc, 1, 50);
		if (n < 0)
			return n;
		if (n == 1 && rdmig__wr_kind_of(wc.wr_id) == RDMIG__WR_WRITE) {
			if (wc.status != IBV_WC_SUCCESS)
				return src_peer_said(
					src,
					rdmig__err(wc.status == IBV_WC_RETRY_EXC_ERR ? -ETIMEDOUT
										     : -EIO,
						   "device state: RDMA WRITE failed: %s "
						   "(status %d)",
						   ibv_wc_status_str(wc.status), wc.status));
			sw->inflight--;
			sw->bytes_inflight -=
				sw->len[rdmig__wr_val_of(wc.wr_id) % RDMIG__STATE_WRITES];
			sw->last_ns = sw->done_ns = rdmig__now_ns();
		} else if (n == 1) {
			if ((ret = src_ctrl_wc(src, &wc, &src->stash)) < 0)
				return ret;
			if (ret == 1) {
				if (src->stashed)
					return rdmig__err(
						-EPROTO,
						"unexpected %s from the destination while "
						"the device state is written",
						rdmig__msg_type_name(src->stash.type));
				src->stashed = true;
			}
		} else if ((ret = src_check_cm(src))) {
			return ret;
		}
		if ((ret = src_cancel_check(src)) || (ret = src_state_progress(src)))
			return ret;
		if (rdmig__now_ns() - sw->last_ns > (uint64_t)src->cfg.timeout_ms * 1000000)
			return rdmig__err(-ETIMEDOUT,
					  "device state: no completion for %u ms (%u WRITEs in "
					  "flight)",
					  src->cfg.timeout_ms, sw->inflight);
	}
	return 0;
}

/* Descriptors, buffers, WRITEs, end marker, confirmation. Any failure fails the session. */
static int src_state_exchange(struct rdmig_src *src, struct rdmig__state_tx *tx,
			      struct rdmig_state_stats *st)
{
	const uint64_t max_wr = (uint64_t)src->cfg.chunk_pages * src->cfg.page_size;
	/* The destination registers (and at the end hashes) up to 16 GiB:
	 * a second per GiB on top, as for guest memory. */
	const int tmo = (int)RDMIG__MIN((uint64_t)src->cfg.timeout_ms + (tx->bytes >> 30) * 1000,
					(uint64_t)INT32_MAX);
	struct state_wire sw = { .last_ns = rdmig__now_ns() };
	struct rdmig__msg *m = &src->msg;
	uint64_t off, len, writes = 0;
	unsigned bi;
	int ret;

	rdmig__state_tx_desc(tx, m);
	if ((ret = src_ctrl_send(src, m)))
		return ret;
	while (rdmig__state_tx_next_zero(tx, m))
		if ((ret = src_ctrl_send(src, m)))
			return ret;
	if ((ret = src_ctrl_recv(src, tmo, m)))
		return ret;
	if ((ret = rdmig__state_tx_targets(tx, m)))
		return ret;

	sw.first_ns = sw.done_ns = sw.last_ns = rdmig__now_ns();
	while (rdmig__state_tx_next_write(tx, max_wr, &bi, &off, &len)) {
		const struct rdmig__state_tx_blob *b = &tx->b[bi];
		struct ibv_sge sge = { .addr = (uintptr_t)(b->data + off),
				       .length = (uint32_t)len,
				       .lkey = b->mr->lkey };
		struct ibv_send_wr wr = { 0 }, *bad;

		if ((ret = src_state_wait(src, &sw, RDMIG__STATE_WRITES,
					  src->cfg.inflight_bytes -
						  RDMIG__MIN(len, src->cfg.inflight_bytes),
					  false)))
			return ret;
		/* The cap covers the state too: its estimate counts it at the cap. */
		rdmig__dp_pace(&src->dp, len);
		wr.wr_id =
			rdmig__wr_id(RDMIG__WR_WRITE, 0, (uint32_t)(sw.seq % RDMIG__STATE_WRITES));
		wr.opcode = IBV_WR_RDMA_WRITE;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.wr.rdma.remote_addr = b->raddr + off;
		wr.wr.rdma.rkey = b->rkey;
		if ((ret = rdmig__xp_post_send(src->ctrl.id, &wr, &bad)))
			return rdmig__err(-ret, "device state: posting a WRITE of blob %u: %s", bi,
					  strerror(ret));
		sw.len[sw.seq++ % RDMIG__STATE_WRITES] = len;
		sw.inflight++;
		sw.bytes_inflight += len;
		writes++;
	}

	/* Behind the WRITEs on the same QP: its arrival proves them placed. */
	if ((ret = src_state_wait(src, &sw, RDMIG__STATE_WRITES + 1, UINT64_MAX, true)))
		return ret;
	memset(m, 0, sizeof(*m));
	m->type = RDMIG__MSG_STATE_END;
	m->state_end.nblobs = tx->n;
	m->state_end.writes = writes;
	m->state_end.bytes = tx->wire_bytes;
	if ((ret = rdmig__ep_send(&src->ctrl, m)))
		return ret;
	if ((ret = src_state_wait(src, &sw, 1, 0, false)))
		return ret;
	if ((ret = src_ctrl_recv(src, tmo, m))) {
		/* The destination's verdict on a blob: its message names it. */
		if (m->type == RDMIG__MSG_ERROR && m->error.code == EIO)
			ret = rdmig__err_set(-EIO, rdmig_last_error());
		return ret;
	}
	if (m->type != RDMIG__MSG_STATE_ACK || m->state_ack.nblobs != tx->n ||
	    m->state_ack.bytes != tx->wire_bytes)
		return rdmig__err(-EPROTO,
				  "expected STATE_ACK for %u blobs (%" PRIu64 " bytes), got %s",
				  tx->n, tx->wire_bytes, rdmig__msg_type_name(m->type));
	st->writes = writes;
	st->wire_ns = sw.done_ns - sw.first_ns;
	return 0;
}

int rdmig_src_send_state(struct rdmig_src *src, const struct rdmig_blob *blobs, unsigned n,
			 struct rdmig_state_stats *stats)
{
	struct rdmig_state_stats st = { .size = sizeof(st) };
	uint64_t t0 = rdmig__now_ns();
	struct rdmig__state_tx *tx;
	int ret;

	rdmig__err_clear();
	if ((ret = src_usable(src)) || (ret = src_held_busy(src, "rdmig_src_send_state")))
		return ret;
	if (stats && stats->size < sizeof(size_t))
		return rdmig__err(-EINVAL, "stats->size is %zu: set it to sizeof(*stats)",
				  stats->size);
	if (src->state_sent)
		return rdmig__err(-EALREADY, "the device state was sent already in this session");
	if (!src->passes)
		return rdmig__err(
			-EINVAL, "no pass has run yet: the device state goes after the final pass");
	tx = malloc(sizeof(*tx));
	if (!tx)
		return rdmig__err(-ENOMEM, "no memory for the device state's descriptors");
	src->pass_start_ns = src->progress_ns = t0;
	/* Bad input is refused here, before anything goes: the session is unharmed. */
	ret = rdmig__state_tx_prepare(tx, blobs, n, src->cfg.page_size, &src->scanner, &src->key,
				      src_state_tick, src);
	if (!ret)
		ret = rdmig__state_tx_register(tx, src->xp, src->pd);
	if (ret) {
		/* Bad input, or a registration that failed: nothing went, the
		 * session is unharmed (but for a cancel). */
		rdmig__state_tx_release(tx, src->xp);
		free(tx);
		return ret == -ECANCELED ? src_fail(src, ret) : ret;
	}
	/* Once descriptors go, a failure fails the session: teardown destroys
	 * the QPs (no WRITE reads a blob any more), drops the blobs' MRs
	 * (src->state_tx), then the PD. */
	src->state_tx = tx;
	if ((ret = src_state_exchange(src, tx, &st))) {
		ret = src_fail(src, ret);
		src->state_tx = NULL;
		free(tx);
		return ret;
	}
	rdmig__state_tx_release(tx, src->xp);
	src->state_tx = NULL;
	src->state_sent = true;
	st.blobs = tx->n;
	st.bytes = tx->bytes;
	st.wire_bytes = tx->wire_bytes;
	st.zero_pages = tx->zero_pages;
	st.scan_ns = tx->scan_ns;
	st.duration_ns = rdmig__now_ns() - t0;
	free(tx);
	if (stats) {
		st.size = stats->size;
		memcpy(stats, &st, RDMIG__MIN(stats->size, sizeof(st)));
	}
	return 0;
}
