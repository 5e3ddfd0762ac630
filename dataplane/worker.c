/* SPDX-License-Identifier: MIT */
/*
 * Worker threads: chunk -> blocks of pages -> scan and decide -> runs of
 * pages to write -> RDMA WRITEs, with credits (queue depth and bytes in
 * flight), selective signalling and batched doorbells; then NOTICEs
 * telling the destination which pages to hash and which to zero, up to
 * RDMIG__NOTICE_PAGES pages of several blocks each, whose HASHES answers
 * update what we know it holds. See worker.h.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <numa.h>
#include <stdarg.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "ranges.h"
#include "worker.h"

#define POST_BATCH    32 /* WRs chained per doorbell, at most */
#define POLL_BATCH    32 /* completions taken per poll */
#define WAIT_SLICE_MS 50 /* how often a blocked worker looks at dp->abort */
/* Chunks a worker looks through for work before it claims them clean. */
#define SKIP_SPAN 4096

/*
 * A signalled WR's mark: once its completion arrives, every WR posted up to
 * it is complete too (a send queue completes in order).
 */
struct mark {
	uint64_t wrs, bytes;
};

/*
 * The pages of a NOTICE: being gathered, or sent and not yet answered (or
 * its send buffer not yet free). page[] as in the message: increasing page
 * indices, RDMIG__NOTICE_ZERO marking zero-fill orders. For entry i of a
 * written page, what our scan saw: zero (bit i of szero) or shash[i],
 * compared with what the destination says landed; or, bit i of nocmp, no
 * scan hash (the page had nothing to compare with and the pass does not
 * verify): what landed is only recorded, for a later pass to compare with.
 */
struct notice_slot {
	uint64_t wr_pos; /* its SEND is complete once done_wrs reaches this */
	uint32_t region, npages;
	uint64_t page[RDMIG__NOTICE_PAGES];
	uint64_t szero[RDMIG__NOTICE_WORDS];
	uint64_t nocmp[RDMIG__NOTICE_WORDS];
	struct rdmig__hash shash[RDMIG__NOTICE_PAGES];
};

struct rdmig__worker {
	struct rdmig__dp *dp;
	struct rdmig__ep *ep;
	unsigned idx;
	int cpu; /* -1: not pinned */
	pthread_t thread;
	bool started;

	struct ibv_send_wr wr[POST_BATCH];
	struct ibv_sge sge[POST_BATCH];
	unsigned batched;
	uint64_t batched_bytes;

	uint64_t posted_wrs, posted_bytes; /* handed to the NIC, this pass */
	uint64_t done_wrs, done_bytes;	   /* known complete */
	unsigned since_signal;
	struct mark *marks; /* ring of queue_depth + 1 */
	uint32_t nmarks;
	uint64_t mark_seq;

	/* NOTICEs: slots[nhead % K .. ntail % K) await their HASHES; `next`
	 * gathers the pages of the next one, whose WRITEs are posted. */
	struct notice_slot slots[RDMIG__NOTICE_CREDITS];
	uint64_t nhead, ntail;
	struct notice_slot next;
	uint64_t busy_since_ns; /* the wire went busy (bytes outstanding) at */

	/* The current block's scan results, by page index in the block
	 * (bnocmp: written unhashed, the destination's hash only recorded). */
	struct rdmig__hash bhash[RDMIG__NOTICE_PAGES];
	uint64_t bzero[RDMIG__NOTICE_WORDS];
	uint64_t bnocmp[RDMIG__NOTICE_WORDS];

	bool nohash; /* the probe said hashing does not pay (dp->probe_share) */
	uint64_t max_wr_bytes;
	uint64_t budget_counted; /* of stats.bytes, what dp->round_bytes has */
	struct rdmig__worker_stats stats;
	int status;
	char err[512];
	struct rdmig__msg msg; /* scratch for messages: too big for the stack */
};

static int wfail(struct rdmig__worker *w, int err, const char *fmt, ...) RDMIG__FMT(3, 4);

static int wfail(struct rdmig__worker *w, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(w->err, sizeof(w->err), "worker %u: ", w->idx);
	va_start(ap, fmt);
	vsnprintf(w->err + n, sizeof(w->err) - (size_t)n, fmt, ap);
	va_end(ap);
	atomic_store(&w->dp->abort, true);
	return err;
}

/*
 * The WRs and SGEs are built once, chained in order (wr[i].next is
 * wr[i + 1]); add_wr() patches only what differs from one WR to the next,
 * and flush() cuts the chain after the last one queued for the time of the
 * post, as perftest does.
 */
static void wr_init(struct rdmig__worker *w)
{
	memset(w->wr, 0, sizeof(w->wr));
	for (unsigned i = 0; i < POST_BATCH; i++) {
		w->wr[i].sg_list = &w->sge[i];
		w->wr[i].num_sge = 1;
		w->wr[i].next = i + 1 < POST_BATCH ? &w->wr[i + 1] : NULL;
	}
}

/* Posts what is queued: one chain, one doorbell. */
static int flush(struct rdmig__worker *w)
{
	struct ibv_send_wr *bad, *last;
	int ret;

	if (!w->batched)
		return 0;
	last = &w->wr[w->batched - 1];
	last->next = NULL;
	/* The wire goes busy when bytes are posted with none outstanding. */
	if (w->posted_bytes == w->done_bytes)
		w->busy_since_ns = rdmig__now_ns();
	ret = rdmig__xp_post_send(w->ep->id, &w->wr[0], &bad);
	last->next = w->batched < POST_BATCH ? last + 1 : NULL;
	if (ret)
		return wfail(w, -ret, "posting %u WRs: %s", w->batched, strerror(ret));
	w->posted_wrs += w->batched;
	w->posted_bytes += w->batched_bytes;
	w->batched = 0;
	w->batched_bytes = 0;
	return 0;
}

static inline bool bit(const uint64_t *bm, uint64_t i)
{
	return bm[i / 64] >> (i % 64) & 1;
}

static inline void set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

/*
 * The mismatch bitmaps: a page lies in one chunk, so one worker at a time
 * changes its bit, but the 64 pages of a word may lie in chunks of
 * different workers (RDMIG_CHUNK_PAGES need not be a multiple of 64):
 * atomic, relaxed (the pass's end orders them for the owner). Read a
 * word at a time, as rdmig__bitmap_window() reads the dirty log.
 */
static inline uint64_t mism_window(const uint64_t *bm, uint64_t pos, uint64_t end)
{
	uint64_t w = pos / 64, sh = pos % 64, v = __atomic_load_n(&bm[w], __ATOMIC_RELAXED) >> sh;

	if (sh && pos + 64 - sh < end)
		v |= __atomic_load_n(&bm[w + 1], __ATOMIC_RELAXED) << (64 - sh);
	if (end - pos < 64)
		v &= (1ull << (end - pos)) - 1;
	return v;
}

/* Sets or clears page i's bit; counts the changes. */
static inline void mism_put(struct rdmig__worker *w, uint64_t *bm, uint64_t i, bool on)
{
	uint64_t b = 1ull << (i % 64);

	if (on) {
		if (!(__atomic_fetch_or(&bm[i / 64], b, __ATOMIC_RELAXED) & b))
			w->stats.mism_set++;
	} else if (__atomic_load_n(&bm[i / 64], __ATOMIC_RELAXED) & b) {
		if (__atomic_fetch_and(&bm[i / 64], ~b, __ATOMIC_RELAXED) & b)
			w->stats.mism_cleared++;
	}
}

/*
 * The destination's answer to our oldest NOTICE: what landed in each page
 * we wrote. Only now does the source learn what the destination holds,
 * and whether it is what we scanned: a page that landed otherwise (the
 * guest wrote it between our scan and the NIC's read, or something broke
 * on the way) is marked mismatched, to be sent again.
 */
static int on_hashes(struct rdmig__worker *w, const struct ibv_wc *wc)
{
	struct rdmig__dp *dp = w->dp;
	uint32_t buf = rdmig__wr_val_of(wc->wr_id);
	const struct rdmig__dp_region *r;
	struct notice_slot *sl;
	struct rdmig__msg *m = &w->msg;
	uint32_t want = 0, j = 0;
	char why[256];
	int ret;

	ret = rdmig__ep_open(w->ep, rdmig__ep_recv_buf(w->ep, buf), wc->byte_len, m, why,
			     sizeof(why));
	if (ret)
		return wfail(w, ret, "bad message from the destination: %s", why);
	if (m->type != RDMIG__MSG_HASHES)
		return wfail(w, -EPROTO, "unexpected %s on data QP %u",
			     rdmig__msg_type_name(m->type), w->idx);
	if (w->nhead == w->ntail)
		return wfail(w, -EPROTO, "HASHES for no NOTICE on data QP %u", w->idx);
	sl = &w->slots[w->nhead % RDMIG__NOTICE_CREDITS];
	if (m->hashes.pass != dp->pass || m->hashes.region != sl->region ||
	    m->hashes.first != (sl->page[0] & ~RDMIG__NOTICE_ZERO) ||
	    m->hashes.npages != sl->npages)
		return wfail(w, -EPROTO,
			     "HASHES (pass %llu, region %u, %u pages from %llu) does not answer "
			     "our NOTICE (pass %llu, region %u, %u pages from %llu)",
			     (unsigned long long)m->hashes.pass, m->hashes.region, m->hashes.npages,
			     (unsigned long long)m->hashes.first, (unsigned long long)dp->pass,
			     sl->region, sl->npages,
			     (unsigned long long)(sl->page[0] & ~RDMIG__NOTICE_ZERO));
	for (uint32_t i = 0; i < sl->npages; i++) {
		bool zero = bit(m->hashes.landed_zero, i);

		if (!(sl->page[i] & RDMIG__NOTICE_ZERO))
			want += !zero;
		else if (zero) /* what landed, where we wrote nothing */
			return wfail(w, -EPROTO,
				     "HASHES on data QP %u says page %llu of region %u landed "
				     "zero, but our NOTICE ordered it zeroed: nothing was written",
				     w->idx,
				     (unsigned long long)(sl->page[i] & ~RDMIG__NOTICE_ZERO),
				     sl->region);
	}
	if (m->hashes.nhashes != want)
		return wfail(w, -EPROTO,
			     "HASHES on data QP %u holds %u hashes, but %u pages of our NOTICE "
			     "(pass %llu, region %u, from page %llu) were written and did not "
			     "land zero",
			     w->idx, m->hashes.nhashes, want, (unsigned long long)dp->pass,
			     sl->region, (unsigned long long)(sl->page[0] & ~RDMIG__NOTICE_ZERO));

	r = &dp->regions[sl->region];
	for (uint32_t i = 0; i < sl->npages; i++) {
		uint64_t p = sl->page[i] & ~RDMIG__NOTICE_ZERO;
		const struct rdmig__hash *h = NULL; /* NULL: it holds zero */
		bool same;

		if (sl->page[i] & RDMIG__NOTICE_ZERO) {
			/* The destination zeroed it: what we scanned, zero. */
			same = true;
		} else {
			if (!bit(m->hashes.landed_zero, i))
				h = &m->hashes.hash[j++];
			if (bit(sl->nocmp, i)) {
				/* Nothing to compare with (never a page sent
				 * again after a mismatch: those are hashed):
				 * only what it holds is learned. */
				if (r->pkind) {
					r->pkind[p] = h ? RDMIG__PK_HASH : RDMIG__PK_ZERO;
					if (h)
						r->phash[p] = *h;
				}
				continue;
			}
			if (bit(sl->szero, i))
				same = !h;
			else
				same = h && h->lo == sl->shash[i].lo && h->hi == sl->shash[i].hi;
		}
		w->stats.mismatched += !same;
		mism_put(w, r->mismatch, p, !same);
		if (!r->pkind)
			continue; /* nothing is skipped: what it holds is not kept */
		if (!h) {
			r->pkind[p] = RDMIG__PK_ZERO;
		} else {
			r->pkind[p] = RDMIG__PK_HASH;
			r->phash[p] = *h;
		}
	}
	w->nhead++;
	return rdmig__ep_post_recv(w->ep, buf) ? wfail(w, -EIO, "cannot repost a receive") : 0;
}

/*
 * Reaps completions; if `block`, waits (bounded) until at least one arrives.
 * Any completion with an error status fails the pass: the QP is then in
 * error and nothing after it will land.
 */
static int reap(struct rdmig__worker *w, bool block)
{
	const struct rdmig__config *cfg = w->dp->cfg;
	uint64_t deadline = rdmig__now_ns() + (uint64_t)cfg->timeout_ms * 1000000;
	struct ibv_wc wc[POLL_BATCH];
	int n;

	for (;;) {
		n = block ? rdmig__cq_wait(w->ep->cq, wc, POLL_BATCH, WAIT_SLICE_MS)
			  : rdmig__xp_poll(w->ep->cq, POLL_BATCH, wc);
		if (n < 0)
			return wfail(w, -EIO, "polling the CQ failed");
		if (n > 0 || !block)
			break;
		if (atomic_load(&w->dp->abort))
			return -ECANCELED;
		if (rdmig__ms_left(deadline) == 0)
			return wfail(w, -ETIMEDOUT,
				     "no completion for %u ms (%llu of %llu WRs done, %llu bytes "
				     "in flight)",
				     cfg->timeout_ms, (unsigned long long)w->done_wrs,
				     (unsigned long long)w->posted_wrs,
				     (unsigned long long)(w->posted_bytes - w->done_bytes));
	}
	for (int i = 0; i < n; i++) {
		/* An unsignalled WR has wr_id 0: a flush reports it too. */
		static const char *const what[] = { [0] = "unsignalled WR",
						    [RDMIG__WR_RECV] = "receive",
						    [RDMIG__WR_SEND] = "SEND",
						    [RDMIG__WR_WRITE] = "RDMA WRITE" };
		enum rdmig__wr_kind kind = rdmig__wr_kind_of(wc[i].wr_id);
		const struct mark *m;
		int ret;

		if (wc[i].status != IBV_WC_SUCCESS)
			return wfail(w, wc[i].status == IBV_WC_RETRY_EXC_ERR ? -ETIMEDOUT : -EIO,
				     "%s failed: %s (status %d, vendor error 0x%x)",
				     kind <= RDMIG__WR_WRITE ? what[kind] : "?",
				     ibv_wc_status_str(wc[i].status), wc[i].status,
				     wc[i].vendor_err);
		if (kind == RDMIG__WR_RECV) {
			if ((ret = on_hashes(w, &wc[i])))
				return ret;
			continue;
		}
		m = &w->marks[rdmig__wr_val_of(wc[i].wr_id) % w->nmarks];
		w->done_wrs = m->wrs;
		w->done_bytes = m->bytes;
		/* ... and idle when the last of them completed: only that time
		 * counts as wire time (not scanning, not waiting for answers). */
		if (w->done_bytes == w->posted_bytes)
			w->stats.wire_ns += rdmig__now_ns() - w->busy_since_ns;
	}
	return 0;
}

/* Waits until a WR of `len` bytes may be posted without overrunning a bound. */
static int make_room(struct rdmig__worker *w, uint64_t len)
{
	const struct rdmig__config *cfg = w->dp->cfg;
	int ret;

	for (;;) {
		uint64_t wrs = w->posted_wrs + w->batched - w->done_wrs;
		uint64_t bytes = w->posted_bytes + w->batched_bytes - w->done_bytes;

		/* A WR bigger than the bound still goes when nothing is in flight. */
		if (wrs + 1 <= cfg->queue_depth &&
		    (bytes == 0 || bytes + len <= cfg->inflight_bytes))
			return 0;
		/* The last WR queued was signalled (see add_wr), so waiting ends. */
		if ((ret = flush(w)) || (ret = reap(w, true)))
			return ret;
	}
}

static void sleep_until(uint64_t t_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(t_ns / 1000000000),
			       .tv_nsec = (long)(t_ns % 1000000000) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * The bandwidth cap (cfg->max_bandwidth): books a WRITE of `len` bytes on
 * the workers' shared virtual clock of the wire and waits until its slot
 * starts. A slot may start up to RDMIG__DP_BURST_NS in the past: a worker
 * that wakes late, or a wire idle for a while, catches up by at most that
 * burst, so the rate over any stretch is the cap, give or take one burst
 * and one WRITE. What is batched goes before the wait (it was booked
 * already). The wait counts as wire time: under a cap the wire is the
 * slower stage, and the model (model.c) fits what the wire took, cap
 * included, so estimates come out at the capped rate.
 */
/* Books len bytes on the cap's clock: when their slot starts (<= now: at once). */
static uint64_t book(struct rdmig__dp *dp, uint64_t len, uint64_t now)
{
	uint64_t bw = dp->cfg->max_bandwidth, t, start, cost;

	cost = (uint64_t)((unsigned __int128)len * 1000000000u / bw);
	t = atomic_load_explicit(&dp->wire_free_ns, memory_order_relaxed);
	do
		start = RDMIG__MAX(t, now - RDMIG__DP_BURST_NS);
	while (!atomic_compare_exchange_weak_explicit(&dp->wire_free_ns, &t, start + cost,
						      memory_order_relaxed, memory_order_relaxed));
	return start;
}

int rdmig__dp_pace(struct rdmig__dp *dp, uint64_t len)
{
	uint64_t start, now;

	if (!dp->cfg || !dp->cfg->max_bandwidth)
		return 0;
	start = book(dp, len, now = rdmig__now_ns());
	while (now < start) {
		sleep_until(RDMIG__MIN(start, now + WAIT_SLICE_MS * 1000000ull));
		now = rdmig__now_ns();
	}
	return 0;
}

static int pace(struct rdmig__worker *w, uint64_t len)
{
	struct rdmig__dp *dp = w->dp;
	uint64_t now, t, start;
	bool idle;
	int ret;

	if (!dp->cfg->max_bandwidth)
		return 0;
	now = rdmig__now_ns();
	start = book(dp, len, now);
	if (start <= now)
		return 0;
	if ((ret = flush(w)))
		return ret;
	/* With bytes outstanding the busy wire's time covers the wait (their
	 * completions are reaped after it); without, it is counted here. */
	idle = w->posted_bytes == w->done_bytes;
	t = now;
	while ((now = rdmig__now_ns()) < start) {
		if (atomic_load(&dp->abort))
			return -ECANCELED;
		sleep_until(RDMIG__MIN(start, now + WAIT_SLICE_MS * 1000000ull));
	}
	if (idle)
		w->stats.wire_ns += now - t;
	return 0;
}

/* Signals the last WR queued: its completion marks all before it done. */
static void signal_last(struct rdmig__worker *w)
{
	struct ibv_send_wr *wr = &w->wr[w->batched - 1];
	uint32_t seq;

	if (wr->send_flags & IBV_SEND_SIGNALED)
		return;
	seq = (uint32_t)(w->mark_seq++ % w->nmarks);
	w->marks[seq].wrs = w->posted_wrs + w->batched;
	w->marks[seq].bytes = w->posted_bytes + w->batched_bytes;
	wr->send_flags = IBV_SEND_SIGNALED;
	wr->wr_id = rdmig__wr_id(wr->opcode == IBV_WR_SEND ? RDMIG__WR_SEND : RDMIG__WR_WRITE,
				 w->idx, seq);
	w->since_signal = 0;
}

/*
 * Queues one WR. It is signalled every signal_interval WRs, and also
 * whenever the next WR might have to wait for room: that way a worker that
 * blocks always has a signalled WR in flight to wake it.
 */
static int add_wr(struct rdmig__worker *w, enum ibv_wr_opcode op, uint64_t laddr, uint32_t lkey,
		  uint64_t raddr, uint32_t rkey, uint32_t len, uint64_t wr_max_next)
{
	const struct rdmig__config *cfg = w->dp->cfg;
	struct ibv_send_wr *wr;
	struct ibv_sge *sge;
	uint64_t wrs_after, bytes_after;
	bool signal;
	int ret;

	if ((ret = make_room(w, len)))
		return ret;
	if (op == IBV_WR_RDMA_WRITE && (ret = pace(w, len)))
		return ret;
	wr = &w->wr[w->batched];
	sge = &w->sge[w->batched];
	wrs_after = w->posted_wrs + w->batched + 1 - w->done_wrs;
	bytes_after = w->posted_bytes + w->batched_bytes + len - w->done_bytes;
	signal = ++w->since_signal >= cfg->signal_interval || wrs_after + 1 > cfg->queue_depth ||
		 bytes_after + wr_max_next > cfg->inflight_bytes || wr_max_next == 0;

	sge->addr = laddr;
	sge->length = len;
	sge->lkey = lkey;
	wr->opcode = op;
	/* Unsignalled WRs complete only in error: their kind names the failure. */
	wr->wr_id = rdmig__wr_id(op == IBV_WR_SEND ? RDMIG__WR_SEND : RDMIG__WR_WRITE, w->idx, 0);
	wr->send_flags = 0;
	wr->wr.rdma.remote_addr = raddr;
	wr->wr.rdma.rkey = rkey;
	w->batched++;
	w->batched_bytes += len;
	if (signal)
		signal_last(w);
	/*
	 * WRITEs wait for a full chain or the end of their block (do_block()
	 * flushes); a SEND goes at once: the peer waits for it. Whoever waits
	 * for room or for a completion flushes first (make_room(),
	 * WAIT_UNTIL), so the signalled WR it waits for is posted. The CQ is
	 * polled once per doorbell, not per WR.
	 */
	if (w->batched == POST_BATCH || op == IBV_WR_SEND) {
		ret = flush(w);
		if (!ret && w->posted_wrs - w->done_wrs > 0)
			ret = reap(w, false);
	}
	return ret;
}

/* The region of chunk c: the last whose chunk_base <= c. */
static const struct rdmig__dp_region *region_of(const struct rdmig__dp_region *regions, unsigned n,
						uint64_t c)
{
	unsigned lo = 0, hi = n;

	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (regions[mid].chunk_base <= c)
			lo = mid;
		else
			hi = mid;
	}
	return &regions[lo];
}

static const struct rdmig__dp_region *region_of_chunk(const struct rdmig__dp *dp, uint64_t c)
{
	return region_of(dp->regions, dp->nregions, c);
}

static int write_run(struct rdmig__worker *w, const struct rdmig__dp_region *r,
		     const struct rdmig__range *run)
{
	uint32_t ps = w->dp->cfg->page_size;
	uint64_t off = run->first * ps;
	uint64_t len = run->count * ps;

	w->stats.pages += run->count;
	w->stats.writes++;
	w->stats.bytes += len;
	return add_wr(w, IBV_WR_RDMA_WRITE, (uintptr_t)(r->hva + off),
		      r->lkeys[run->first / r->seg_pages], r->raddr + off, r->rkey, (uint32_t)len,
		      w->max_wr_bytes);
}

/* Waits (bounded) until `cond` holds; every wait ends with a completion. */
#define WAIT_UNTIL(w, cond)                                                          \
	do {                                                                         \
		int wait_ret_;                                                       \
		while (!(cond))                                                      \
			if ((wait_ret_ = flush(w)) || (wait_ret_ = reap((w), true))) \
				return wait_ret_;                                    \
	} while (0)

/*
 * Sends the gathered NOTICE, after the WRITEs of its pages on the same QP:
 * which pages to hash and which to zero. At most RDMIG__NOTICE_CREDITS are
 * unanswered; a slot's buffer is reused only once its SEND completed.
 */
static int post_notice(struct rdmig__worker *w)
{
	struct rdmig__msg *m = &w->msg;
	struct notice_slot *sl;
	uint8_t *buf;
	int len, ret;

	if (!w->next.npages)
		return 0;
	WAIT_UNTIL(w, w->ntail - w->nhead < RDMIG__NOTICE_CREDITS);
	sl = &w->slots[w->ntail % RDMIG__NOTICE_CREDITS];
	WAIT_UNTIL(w, w->done_wrs >= sl->wr_pos);

	sl->region = w->next.region;
	sl->npages = w->next.npages;
	memcpy(sl->page, w->next.page, sizeof(sl->page[0]) * sl->npages);
	memcpy(sl->szero, w->next.szero, sizeof(sl->szero));
	memcpy(sl->nocmp, w->next.nocmp, sizeof(sl->nocmp));
	memcpy(sl->shash, w->next.shash, sizeof(sl->shash[0]) * sl->npages);
	w->next.npages = 0;
	memset(w->next.szero, 0, sizeof(w->next.szero));
	memset(w->next.nocmp, 0, sizeof(w->next.nocmp));
	memset(m, 0, offsetof(struct rdmig__msg, notice.page));
	m->type = RDMIG__MSG_NOTICE;
	m->notice.pass = w->dp->pass;
	m->notice.region = sl->region;
	m->notice.npages = sl->npages;
	memcpy(m->notice.page, sl->page, sizeof(sl->page[0]) * sl->npages);
	buf = w->ep->bufs +
	      (size_t)(w->ep->attr.nrecv + w->ntail % RDMIG__NOTICE_CREDITS) * w->ep->attr.bufsize;
	if ((len = rdmig__ep_encode(w->ep, m, buf)) < 0)
		return wfail(w, len, "cannot encode a NOTICE: %s", rdmig_last_error());
	/* Counted before posting: the answer may be reaped inside add_wr(). */
	w->ntail++;
	/* Signalled (wr_max_next 0, so flushed at once): its buffer is free
	 * again once done_wrs reaches wr_pos. */
	if ((ret = add_wr(w, IBV_WR_SEND, (uintptr_t)buf, w->ep->mr->lkey, 0, 0, (uint32_t)len, 0)))
		return ret;
	sl->wr_pos = w->posted_wrs;
	return 0;
}

/*
 * Adds a block's pages to hash (written) and to zero to the next NOTICE,
 * their WRITEs being posted, with what the scan saw of each written page
 * (w->bzero, w->bhash): the NOTICE goes when it is full, when the pages
 * of another region come, and at the end of the pass. In a sparse pass
 * one NOTICE so covers many blocks, not a round trip each.
 */
static int gather_notice(struct rdmig__worker *w, unsigned region, uint64_t first, uint32_t n,
			 const uint64_t *written, const uint64_t *zeroed)
{
	struct notice_slot *nx = &w->next;
	uint32_t count = 0;
	int ret;

	for (unsigned k = 0; k < RDMIG__NOTICE_WORDS; k++)
		count += (uint32_t)__builtin_popcountll(written[k] | zeroed[k]);
	if (!count)
		return 0;
	if (nx->npages && (nx->region != region || nx->npages + count > RDMIG__NOTICE_PAGES))
		if ((ret = post_notice(w)))
			return ret;
	nx->region = region;
	(void)n;
	for (unsigned k = 0; k < RDMIG__NOTICE_WORDS; k++) {
		for (uint64_t bits = written[k] | zeroed[k]; bits; bits &= bits - 1) {
			uint32_t i = k * 64 + (uint32_t)__builtin_ctzll(bits);

			if (bit(zeroed, i)) {
				nx->page[nx->npages++] = (first + i) | RDMIG__NOTICE_ZERO;
				continue;
			}
			if (bit(w->bnocmp, i))
				set_bit(nx->nocmp, nx->npages);
			else if (bit(w->bzero, i))
				set_bit(nx->szero, nx->npages);
			else
				nx->shash[nx->npages] = w->bhash[i];
			nx->page[nx->npages++] = first + i;
		}
	}
	return 0;
}

/* Zero check, and the hash if `hash`. */
static int scan(const struct rdmig__dp *dp, const uint8_t *page, struct rdmig__hash *h, bool hash)
{
	uint32_t ps = dp->cfg->page_size;

	if (hash)
		return rdmig__scan_page(dp->scanner, dp->key, page, ps, h);
	return dp->scanner->ops.is_zero(page, ps) ? RDMIG__PAGE_ZERO : RDMIG__PAGE_DATA;
}

/*
 * One block of at most RDMIG__NOTICE_PAGES pages of a chunk: classify every
 * dirty page, and every page whose last copy mismatched, decide (DESIGN.md,
 * invariants 2-4), write what must go, order zero-fills, and tell the
 * destination which pages to hash, keeping what we scanned to compare.
 */
static int do_block(struct rdmig__worker *w, unsigned ri, uint64_t first, uint32_t n)
{
	struct rdmig__dp *dp = w->dp;
	const struct rdmig__config *cfg = dp->cfg;
	const struct rdmig__dp_region *r = &dp->regions[ri];
	const uint64_t *dirty = dp->dirty ? dp->dirty[ri].bitmap : NULL;
	const uint64_t *skip = dp->dirty ? dp->dirty[ri].skip : NULL;
	uint64_t write[RDMIG__NOTICE_WORDS] = { 0 }, hashme[RDMIG__NOTICE_WORDS] = { 0 };
	uint64_t zero[RDMIG__NOTICE_WORDS] = { 0 };
	uint32_t ps = cfg->page_size;
	uint64_t t0 = 0, pos = 0, end = first + n;
	bool look = dp->flags & RDMIG__DP_AGAIN, scanned = false, any = false;
	struct rdmig__range run;
	int ret;

	memset(w->bzero, 0, sizeof(w->bzero));
	memset(w->bnocmp, 0, sizeof(w->bnocmp));
	/*
	 * A word of the dirty log (and of the mismatch bitmap) at a time: the
	 * pages of a clean word are never looked at, and the clock is read
	 * only around pages that are scanned.
	 */
	for (uint32_t base = 0; base < n; base += 64) {
		uint64_t mbits = look ? mism_window(r->mismatch, first + base, end) : 0;
		uint64_t bits = dirty		 ? rdmig__bitmap_window(dirty, first + base, end)
				: n - base >= 64 ? ~0ull
						 : (1ull << (n - base)) - 1;

		bits |= mbits;
		any |= bits != 0;
		for (; bits; bits &= bits - 1) {
			uint32_t i = base + (uint32_t)__builtin_ctzll(bits);
			uint64_t p = first + i;
			const uint8_t *page = r->hva + p * ps;
			struct rdmig__hash h = { 0, 0 };
			enum rdmig__decision go;
			/* A mismatched page goes again as if dirty: the
			 * destination's copy is not what we scanned, and the VMM
			 * may never mark it (the guest wrote nothing since, or it
			 * was not the guest). */
			bool again = mbits >> (i - base) & 1, verify, cmp, record, hashing;
			int kind;

			if (!(dp->flags & RDMIG__DP_RETRY))
				w->stats.dirty++;
			if (skip && bit(skip, p)) {
				/* Don't-care content: not read, not sent, and
				 * whatever the destination holds is no longer
				 * known, nor cared. */
				w->stats.skipped_ballooned++;
				if (r->pkind)
					r->pkind[p] = RDMIG__PK_UNKNOWN;
				if (again)
					mism_put(w, r->mismatch, p, false);
				continue;
			}
			/* A page sent again after a mismatch is always verified. */
			verify = (dp->flags & RDMIG__DP_VERIFY) || again;
			if (!dp->notices && !verify) {
				set_bit(write, i);
				continue;
			}
			if (!scanned) {
				t0 = rdmig__now_ns();
				scanned = true;
			}
			w->stats.scanned++;
			/*
			 * Hashed here only when the hash is compared with
			 * something: the destination's hash of what the page
			 * holds (it may be skipped), or, verifying, the hash of
			 * what lands. A page with neither is written unhashed;
			 * when the pass records (dp->hashing, or the page is in
			 * the sample) the destination still hashes what landed,
			 * for the next pass to compare with.
			 */
			hashing = (dp->hashing && !w->nohash) || rdmig__dp_sampled(ri, p);
			cmp = r->pkind && cfg->skip_unchanged && r->pkind[p] == RDMIG__PK_HASH &&
			      hashing;
			record = dp->notices && cfg->skip_unchanged && hashing;
			kind = scan(dp, page, &h, verify || cmp);
			w->stats.compared += cmp && kind == RDMIG__PAGE_DATA;
			/* A hash not taken is no hash to skip on. */
			go = r->pkind ? rdmig__decide(cfg, kind, &h,
						      r->pkind[p] == RDMIG__PK_HASH && !cmp
							      ? RDMIG__PK_UNKNOWN
							      : r->pkind[p],
						      &r->phash[p])
				      : RDMIG__GO_WRITE; /* nothing is skipped */
			switch (go) {
			case RDMIG__GO_SKIP_ZERO:
				w->stats.skipped_zero++;
				break;
			case RDMIG__GO_SKIP_SAME:
				w->stats.skipped_unchanged++;
				break;
			case RDMIG__GO_ZERO_FILL:
				/* The destination may hold something else: zero it there,
				 * never 4 KiB of zeros on the wire. */
				set_bit(zero, i);
				w->stats.zero_filled++;
				r->pkind[p] = RDMIG__PK_UNKNOWN;
				break;
			case RDMIG__GO_WRITE:
				/* The destination will hold what the NIC reads, which may
				 * differ from what we scanned: only its own hash counts,
				 * and it must equal ours. */
				set_bit(write, i);
				if (verify || cmp) {
					/* Hashed: compared with what lands. */
					set_bit(hashme, i);
					if (kind == RDMIG__PAGE_ZERO)
						set_bit(w->bzero, i);
					else
						w->bhash[i] = h;
				} else if (record) {
					set_bit(hashme, i);
					set_bit(w->bnocmp, i);
				}
				if (r->pkind)
					r->pkind[p] = RDMIG__PK_UNKNOWN;
				break;
			}
			if (again && go != RDMIG__GO_WRITE && go != RDMIG__GO_ZERO_FILL)
				/* Skipped: the destination proved it holds what the
				 * page is now; the pair agrees again. */
				mism_put(w, r->mismatch, p, false);
			w->stats.resent +=
				again && (go == RDMIG__GO_WRITE || go == RDMIG__GO_ZERO_FILL);
		}
	}
	if (scanned)
		w->stats.scan_ns += rdmig__now_ns() - t0;
	if (!any)
		return 0; /* nothing dirty, nothing to write or tell */
	/* The share was unknown: what this pass compared so far tells it. */
	if (dp->probe_share >= 0 && !w->nohash && w->stats.compared >= RDMIG__DP_PROBE_PAGES &&
	    (double)w->stats.skipped_unchanged <= dp->probe_share * (double)w->stats.compared)
		w->nohash = true;
	if (dp->hook)
		dp->hook(dp->hook_arg, ri, first, n);

	while (rdmig__bitmap_next_run(write, &pos, n, &run)) {
		run.first += first;
		if ((ret = write_run(w, r, &run)))
			return ret;
	}
	/*
	 * The block's WRITEs go before the next block is scanned, the last
	 * one signalled: whoever waits for all of them to complete (the end
	 * of a round) then has a completion to wait for.
	 */
	if (w->batched)
		signal_last(w);
	if ((ret = flush(w)))
		return ret;
	return gather_notice(w, ri, first, n, hashme, zero);
}

/*
 * Publishes the counters for readers on other threads (dp->pub) and, with
 * a byte budget, adds the WRITE bytes since the last call to the round's.
 */
static void publish(struct rdmig__worker *w)
{
	struct rdmig__dp *dp = w->dp;
	const struct rdmig__worker_stats *st = &w->stats;
	struct rdmig__dp_pub *p = dp->pub ? &dp->pub[w->idx] : NULL;

	if (p) {
		atomic_store_explicit(&p->dirty, st->dirty, memory_order_relaxed);
		atomic_store_explicit(&p->pages, st->pages, memory_order_relaxed);
		atomic_store_explicit(&p->bytes, st->bytes, memory_order_relaxed);
		atomic_store_explicit(&p->writes, st->writes, memory_order_relaxed);
		atomic_store_explicit(&p->skipped,
				      st->skipped_zero + st->skipped_unchanged +
					      st->skipped_ballooned,
				      memory_order_relaxed);
		atomic_store_explicit(&p->zero_filled, st->zero_filled, memory_order_relaxed);
		atomic_store_explicit(&p->chunks, st->chunks, memory_order_relaxed);
	}
	if (dp->byte_budget && st->bytes != w->budget_counted) {
		atomic_fetch_add_explicit(&dp->round_bytes, st->bytes - w->budget_counted,
					  memory_order_relaxed);
		w->budget_counted = st->bytes;
	}
}

/*
 * The first chunk in [from, lim) with work in this round: a dirty page,
 * or a mismatched one (RDMIG__DP_AGAIN); lim if none. Reads bitmaps only.
 */
static uint64_t first_busy(const struct rdmig__dp *dp, uint64_t from, uint64_t lim)
{
	uint32_t cp = dp->cfg->chunk_pages;

	if (!dp->dirty)
		return from; /* every page is dirty */
	while (from < lim) {
		const struct rdmig__dp_region *r = region_of_chunk(dp, from);
		unsigned ri = (unsigned)(r - dp->regions);
		uint64_t rend = RDMIG__MIN(lim, r->chunk_base + rdmig__chunk_count(r->npages, cp));
		uint64_t first = (from - r->chunk_base) * cp;
		uint64_t end = RDMIG__MIN((rend - r->chunk_base) * cp, r->npages);
		uint64_t p = rdmig__bitmap_find2(dp->dirty[ri].bitmap,
						 dp->flags & RDMIG__DP_AGAIN ? r->mismatch : NULL,
						 first, end);

		if (p < end)
			return r->chunk_base + p / cp;
		from = rend;
	}
	return lim;
}

static bool budget_spent(struct rdmig__dp *dp)
{
	return (dp->deadline_ns && rdmig__now_ns() >= dp->deadline_ns) ||
	       (dp->byte_budget &&
		atomic_load_explicit(&dp->round_bytes, memory_order_relaxed) >= dp->byte_budget);
}

/*
 * Takes the next chunk of the round: false when none is left, or when the
 * round's budget is spent (then the round is closed: no worker takes
 * another, and every one of them sees the same end). The first chunk of a
 * round is taken whatever the budget.
 */
static bool take_chunk(struct rdmig__worker *w, uint64_t *c)
{
	struct rdmig__dp *dp = w->dp;
	uint_fast64_t v = atomic_load(&dp->next_chunk);

	for (;;) {
		uint64_t lim, f;

		if ((v & RDMIG__DP_CLOSED) || v >= dp->nchunks)
			return false;
		if ((dp->flags & RDMIG__DP_BUDGET) && v > dp->round_first && budget_spent(dp)) {
			if (atomic_compare_exchange_weak(&dp->next_chunk, &v, v | RDMIG__DP_CLOSED))
				return false;
			continue;
		}
		if (dp->work) {
			/* A list of the chunks with work: each is taken. */
			if (atomic_compare_exchange_weak(&dp->next_chunk, &v, v + 1)) {
				*c = dp->work[v];
				return true;
			}
			continue;
		}
		/* Clean chunks are claimed a span at a time, their pages
		 * never looked at: done at the cost of reading their bits. */
		lim = RDMIG__MIN((uint64_t)v + SKIP_SPAN, dp->nchunks);
		f = first_busy(dp, v, lim);
		if (atomic_compare_exchange_weak(&dp->next_chunk, &v, f < lim ? f + 1 : lim)) {
			w->stats.chunks += f - v;
			if (f < lim) {
				*c = f;
				return true;
			}
			v = lim;
		}
	}
}

static int do_chunk(struct rdmig__worker *w, uint64_t c)
{
	const struct rdmig__dp *dp = w->dp;
	const struct rdmig__dp_region *r = region_of_chunk(dp, c);
	struct rdmig__range chunk =
		rdmig__chunk(r->npages, dp->cfg->chunk_pages, c - r->chunk_base);
	unsigned ri = (unsigned)(r - dp->regions);
	int ret;

	for (uint64_t off = 0; off < chunk.count; off += RDMIG__NOTICE_PAGES) {
		uint32_t n = (uint32_t)RDMIG__MIN(chunk.count - off, (uint64_t)RDMIG__NOTICE_PAGES);

		if ((ret = do_block(w, ri, chunk.first + off, n)))
			return ret;
		if (off + n < chunk.count)
			publish(w);
	}
	w->stats.chunks++;
	publish(w);
	return 0;
}

static int worker_pass(struct rdmig__worker *w)
{
	struct rdmig__dp *dp = w->dp;
	struct rdmig__msg m;
	uint8_t *buf;
	uint64_t c;
	int len, ret;

	/* A later round adds to the pass's statistics: PASS_END has them all. */
	if (!(dp->flags & (RDMIG__DP_RETRY | RDMIG__DP_RESUME))) {
		memset(&w->stats, 0, sizeof(w->stats));
		w->nohash = false;
	}
	w->budget_counted = w->stats.bytes;
	memset(w->slots, 0, sizeof(w->slots));
	w->posted_wrs = w->posted_bytes = w->done_wrs = w->done_bytes = 0;
	w->nhead = w->ntail = 0;
	w->next.npages = 0;
	memset(w->next.szero, 0, sizeof(w->next.szero));
	memset(w->next.nocmp, 0, sizeof(w->next.nocmp));
	w->since_signal = 0;
	w->busy_since_ns = 0;
	w->err[0] = '\0';

	while (take_chunk(w, &c)) {
		if (atomic_load(&dp->abort))
			return -ECANCELED;
		if ((ret = do_chunk(w, c)))
			return ret;
	}
	if (atomic_load(&dp->abort))
		return -ECANCELED;
	/* Every NOTICE sent and answered: what the destination holds is known. */
	if ((ret = post_notice(w)))
		return ret;
	WAIT_UNTIL(w, w->nhead == w->ntail);
	publish(w);
	/* Stopped on its budget: the pass goes on in a later round. Once closed
	 * the round stays so: every worker sees the same. */
	if ((dp->flags & RDMIG__DP_MORE) || (atomic_load(&dp->next_chunk) & RDMIG__DP_CLOSED)) {
		/* Another round follows: it starts with nothing in flight. */
		while (w->done_wrs < w->posted_wrs)
			if ((ret = reap(w, true)))
				return ret;
		return 0;
	}

	/* PASS_END goes on this QP after every WRITE of ours. */
	memset(&m, 0, sizeof(m));
	m.type = RDMIG__MSG_PASS_END;
	m.pass_end.pass = dp->pass;
	m.pass_end.qp = w->idx;
	m.pass_end.writes = w->stats.writes;
	m.pass_end.bytes = w->stats.bytes;
	buf = w->ep->bufs +
	      (size_t)(w->ep->attr.nrecv + RDMIG__NOTICE_CREDITS) * w->ep->attr.bufsize;
	if ((len = rdmig__ep_encode(w->ep, &m, buf)) < 0)
		return wfail(w, len, "cannot encode PASS_END: %s", rdmig_last_error());
	if ((ret = add_wr(w, IBV_WR_SEND, (uintptr_t)buf, w->ep->mr->lkey, 0, 0, (uint32_t)len, 0)))
		return ret;
	while (w->done_wrs < w->posted_wrs)
		if ((ret = reap(w, true)))
			return ret;
	return 0;
}

static void pin_self(struct rdmig__worker *w)
{
	const struct rdmig__config *cfg = w->dp->cfg;
	cpu_set_t set;

	CPU_ZERO(&set);
	if (w->cpu < 0) {
		/* Not pinned, but RDMIG_WORKER_CPUS still fences the workers in:
		 * they float over the list, never onto the vCPUs' cores. */
		if (!cfg->has_worker_cpus)
			return;
		for (unsigned c = 0; c < RDMIG__MAX_CPUS && c < CPU_SETSIZE; c++)
			if (rdmig__cpu_isset(cfg->worker_cpus, c))
				CPU_SET(c, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			rdmig__log(RDMIG__LOG_WARN, "worker %u: cannot keep to RDMIG_WORKER_CPUS",
				   w->idx);
		return;
	}
	CPU_SET(w->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		rdmig__log(RDMIG__LOG_WARN, "worker %u: cannot pin to CPU %d", w->idx, w->cpu);
	else if (numa_available() >= 0)
		numa_set_localalloc(); /* our allocations come from our node */
}

static void *worker_main(void *arg)
{
	struct rdmig__worker *w = arg;
	struct rdmig__dp *dp = w->dp;
	uint64_t seen = 0;

	pin_self(w);
	pthread_mutex_lock(&dp->lock);
	for (;;) {
		while (!dp->stop && dp->generation == seen)
			pthread_cond_wait(&dp->start, &dp->lock);
		if (dp->stop)
			break;
		seen = dp->generation;
		pthread_mutex_unlock(&dp->lock);

		w->status = worker_pass(w);

		pthread_mutex_lock(&dp->lock);
		if (--dp->running == 0)
			pthread_cond_broadcast(&dp->done);
	}
	pthread_mutex_unlock(&dp->lock);
	return NULL;
}

int rdmig__dp_start(struct rdmig__dp *dp, const struct rdmig__config *cfg, struct rdmig__ep *eps,
		    unsigned n, const int *cpus, unsigned ncpus)
{
	pthread_condattr_t ca;
	int ret;

	memset(dp, 0, sizeof(*dp));
	dp->cfg = cfg;
	pthread_mutex_init(&dp->lock, NULL);
	pthread_cond_init(&dp->start, NULL);
	/* The owner's timed wait must not follow wall-clock steps. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&dp->done, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&dp->next_chunk, 0);
	atomic_init(&dp->abort, false);
	dp->workers = calloc(n, sizeof(*dp->workers));
	if (!dp->workers)
		return rdmig__err(-ENOMEM, "no memory for %u workers", n);
	dp->nworkers = n;
	for (unsigned i = 0; i < n; i++) {
		struct rdmig__worker *w = &dp->workers[i];

		w->dp = dp;
		w->ep = &eps[i];
		w->idx = i;
		w->cpu = ncpus ? cpus[i % ncpus] : -1;
		w->nmarks = cfg->queue_depth + 1;
		w->max_wr_bytes = (uint64_t)cfg->chunk_pages * cfg->page_size;
		wr_init(w);
		w->marks = calloc(w->nmarks, sizeof(*w->marks));
		if (!w->marks) {
			ret = rdmig__err(-ENOMEM, "no memory for worker %u", i);
			goto fail;
		}
		ret = pthread_create(&w->thread, NULL, worker_main, w);
		if (ret) {
			ret = rdmig__err(-ret, "cannot start worker %u: %s", i, strerror(ret));
			goto fail;
		}
		w->started = true;
	}
	return 0;
fail:
	rdmig__dp_stop(dp);
	return ret;
}

int rdmig__dp_run_pass(struct rdmig__dp *dp, const struct rdmig__dp_region *regions,
		       unsigned nregions, const struct rdmig_dirty *dirty, uint64_t pass,
		       unsigned flags, int (*poll_cb)(void *arg), void *arg,
		       struct rdmig__worker_stats *sum)
{
	const struct rdmig__dp_region *last = &regions[nregions - 1];
	int ret = 0;

	dp->regions = regions;
	dp->nregions = nregions;
	dp->dirty = dirty;
	dp->pass = pass;
	dp->flags = flags;
	dp->nchunks = flags & RDMIG__DP_NONE ? 0
		      : dp->work	     ? dp->nwork
					     : last->chunk_base +
					   rdmig__chunk_count(last->npages, dp->cfg->chunk_pages);
	/* A resumed round goes on from the chunk its budget stopped it at. */
	if (flags & RDMIG__DP_RESUME)
		atomic_store(&dp->next_chunk, atomic_load(&dp->next_chunk) & ~RDMIG__DP_CLOSED);
	else
		atomic_store(&dp->next_chunk, 0);
	dp->round_first = atomic_load(&dp->next_chunk);
	atomic_store(&dp->round_bytes, 0);
	if (!(flags & RDMIG__DP_BUDGET))
		dp->deadline_ns = dp->byte_budget = 0;
	dp->paused = false;
	atomic_store(&dp->abort, false);

	pthread_mutex_lock(&dp->lock);
	dp->running = dp->nworkers;
	dp->generation++;
	pthread_cond_broadcast(&dp->start);
	while (dp->running) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&dp->done, &dp->lock, &ts);
		if (!dp->running || ret)
			continue;
		/* The callback watches the connection (peer gone, error message). */
		pthread_mutex_unlock(&dp->lock);
		ret = poll_cb(arg);
		if (ret)
			atomic_store(&dp->abort, true);
		pthread_mutex_lock(&dp->lock);
	}
	pthread_mutex_unlock(&dp->lock);

	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < dp->nworkers; i++) {
		struct rdmig__worker *w = &dp->workers[i];

		sum->dirty += w->stats.dirty;
		sum->pages += w->stats.pages;
		sum->bytes += w->stats.bytes;
		sum->writes += w->stats.writes;
		sum->scanned += w->stats.scanned;
		sum->skipped_zero += w->stats.skipped_zero;
		sum->skipped_unchanged += w->stats.skipped_unchanged;
		sum->skipped_ballooned += w->stats.skipped_ballooned;
		sum->zero_filled += w->stats.zero_filled;
		sum->scan_ns += w->stats.scan_ns;
		sum->wire_ns = RDMIG__MAX(sum->wire_ns, w->stats.wire_ns);
		sum->mismatched += w->stats.mismatched;
		sum->resent += w->stats.resent;
		sum->mism_set += w->stats.mism_set;
		sum->compared += w->stats.compared;
		sum->mism_cleared += w->stats.mism_cleared;
		sum->chunks += w->stats.chunks;
		/* The first real failure explains the others' -ECANCELED. */
		if (!ret && w->status && w->status != -ECANCELED) {
			ret = rdmig__err_set(w->status, w->err);
		}
	}
	if (!ret) {
		for (unsigned i = 0; i < dp->nworkers; i++)
			if (dp->workers[i].status)
				return rdmig__err(dp->workers[i].status, "pass %llu was cancelled",
						  (unsigned long long)pass);
	}
	dp->paused = !ret && (atomic_load(&dp->next_chunk) & RDMIG__DP_CLOSED);
	return ret;
}

void rdmig__dp_progress(const struct rdmig__dp_pub *pub, unsigned n,
			struct rdmig__worker_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < n; i++) {
		const struct rdmig__dp_pub *p = &pub[i];

		sum->dirty += atomic_load_explicit(&p->dirty, memory_order_relaxed);
		sum->pages += atomic_load_explicit(&p->pages, memory_order_relaxed);
		sum->bytes += atomic_load_explicit(&p->bytes, memory_order_relaxed);
		sum->writes += atomic_load_explicit(&p->writes, memory_order_relaxed);
		sum->skipped_zero += atomic_load_explicit(&p->skipped, memory_order_relaxed);
		sum->zero_filled += atomic_load_explicit(&p->zero_filled, memory_order_relaxed);
		sum->chunks += atomic_load_explicit(&p->chunks, memory_order_relaxed);
	}
}

void rdmig__dp_progress_reset(struct rdmig__dp_pub *pub, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		atomic_store_explicit(&pub[i].dirty, 0, memory_order_relaxed);
		atomic_store_explicit(&pub[i].pages, 0, memory_order_relaxed);
		atomic_store_explicit(&pub[i].bytes, 0, memory_order_relaxed);
		atomic_store_explicit(&pub[i].writes, 0, memory_order_relaxed);
		atomic_store_explicit(&pub[i].skipped, 0, memory_order_relaxed);
		atomic_store_explicit(&pub[i].zero_filled, 0, memory_order_relaxed);
		atomic_store_explicit(&pub[i].chunks, 0, memory_order_relaxed);
	}
}

/* The sampling walk's state, across the words it reads (rdmig__dp_sample()). */
struct sample_walk {
	uint64_t stride, seen, next;
	uint64_t carry; /* the previous word's last page is in a run */
};

/* Words [w0, w1) of region ri's log, for rdmig__dp_sample(). */
static void sample_words(const struct rdmig__dp *dp, const struct rdmig__dp_region *r,
			 const struct rdmig_dirty *d, uint64_t w0, uint64_t w1,
			 struct sample_walk *sw, struct rdmig__model_sample *s)
{
	const uint64_t *skip = d->skip;

	for (uint64_t wd = w0; wd < w1; wd++) {
		uint64_t bits = d->bitmap[wd] & ~(skip ? skip[wd] : 0), count;

		if (wd == r->npages / 64)
			bits &= (1ull << (r->npages % 64)) - 1;
		/* A pass's WRITEs never span blocks, which start at each
		 * chunk's start and every RDMIG__NOTICE_PAGES after. Only
		 * block starts on a word boundary are seen here: with an
		 * odd RDMIG_CHUNK_PAGES a few runs go uncounted. */
		if (wd * 64 % dp->cfg->chunk_pages % RDMIG__NOTICE_PAGES == 0)
			sw->carry = 0;
		s->runs += (uint64_t)__builtin_popcountll(bits & ~(bits << 1 | sw->carry));
		sw->carry = bits >> 63;
		count = (uint64_t)__builtin_popcountll(bits);
		s->run_pages += count;
		if (!dp->notices)
			continue; /* nothing skipped: every page is written */
		if (sw->seen + count <= sw->next) {
			sw->seen += count;
			continue; /* no page to sample in this word */
		}
		while (bits) {
			uint64_t p = wd * 64 + (uint64_t)__builtin_ctzll(bits);
			struct rdmig__hash h = { 0, 0 };
			int kind;

			bits &= bits - 1;
			if (sw->seen++ != sw->next)
				continue;
			sw->next += sw->stride;
			kind = scan(dp, r->hva + p * dp->cfg->page_size, &h,
				    dp->cfg->skip_unchanged && r->pkind[p] == RDMIG__PK_HASH);
			s->pages++;
			if (rdmig__decide(dp->cfg, kind, &h, r->pkind[p], &r->phash[p]) ==
			    RDMIG__GO_WRITE)
				s->written++;
		}
	}
}

bool rdmig__dp_next_span(const struct rdmig__dp_region *regions, unsigned nregions,
			 uint32_t chunk_pages, const uint64_t *work, uint64_t nwork, uint64_t *k,
			 unsigned *ri, uint64_t *w0, uint64_t *w1)
{
	const struct rdmig__dp_region *r;
	struct rdmig__range c;

	if (!work) {
		if (*k >= nregions)
			return false;
		*ri = (unsigned)*k;
		*w0 = 0;
		*w1 = (regions[*k].npages + 63) / 64;
		++*k;
		return true;
	}
	if (*k >= nwork)
		return false;
	r = region_of(regions, nregions, work[*k]);
	c = rdmig__chunk(r->npages, chunk_pages, work[*k] - r->chunk_base);
	*ri = (unsigned)(r - regions);
	*w0 = c.first / 64;
	*w1 = (c.first + c.count + 63) / 64;
	/* The next chunks of the same region while their words touch ours. */
	for (++*k;
	     *k < nwork && work[*k] - r->chunk_base < rdmig__chunk_count(r->npages, chunk_pages);
	     ++*k) {
		c = rdmig__chunk(r->npages, chunk_pages, work[*k] - r->chunk_base);
		if (c.first / 64 > *w1)
			break;
		*w1 = RDMIG__MAX(*w1, (c.first + c.count + 63) / 64);
	}
	return true;
}

void rdmig__dp_sample(const struct rdmig__dp *dp, const struct rdmig__dp_region *regions,
		      unsigned nregions, const struct rdmig_dirty *dirty, const uint64_t *work,
		      uint64_t nwork, uint64_t pages, uint64_t want, struct rdmig__model_sample *s)
{
	struct sample_walk sw = { .stride = RDMIG__MAX(pages / RDMIG__MAX(want, 1ull), 1ull) };
	uint64_t k = 0, w0, w1;
	unsigned ri = 0;

	memset(s, 0, sizeof(*s));
	while (rdmig__dp_next_span(regions, nregions, dp->cfg->chunk_pages, work, nwork, &k, &ri,
				   &w0, &w1)) {
		sw.carry = 0;
		sample_words(dp, &regions[ri], &dirty[ri], w0, w1, &sw, s);
	}
}

void rdmig__dp_stop(struct rdmig__dp *dp)
{
	if (!dp->workers)
		return;
	pthread_mutex_lock(&dp->lock);
	dp->stop = true;
	pthread_cond_broadcast(&dp->start);
	pthread_mutex_unlock(&dp->lock);
	for (unsigned i = 0; i < dp->nworkers; i++) {
		if (dp->workers[i].started)
			pthread_join(dp->workers[i].thread, NULL);
		free(dp->workers[i].marks);
	}
	free(dp->workers);
	dp->workers = NULL;
	pthread_cond_destroy(&dp->start);
	pthread_cond_destroy(&dp->done);
	pthread_mutex_destroy(&dp->lock);
}
