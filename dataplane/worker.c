/* SPDX-License-Identifier: MIT */
/*
 * Worker threads: chunk -> runs -> RDMA WRITEs, with credits (queue depth and
 * bytes in flight), selective signalling and batched doorbells; see worker.h.
 */
#define _GNU_SOURCE
#include <numa.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranges.h"
#include "worker.h"

#define POST_BATCH    16 /* WRs chained per doorbell */
#define POLL_BATCH    16
#define WAIT_SLICE_MS 50 /* how often a blocked worker looks at dp->abort */

/*
 * A signalled WR's mark: once its completion arrives, every WR posted up to
 * it is complete too (a send queue completes in order).
 */
struct mark {
	uint64_t wrs, bytes;
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

	uint64_t max_wr_bytes;
	struct rdmig__worker_stats stats;
	int status;
	char err[512];
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

static int flush(struct rdmig__worker *w)
{
	struct ibv_send_wr *bad;
	int ret;

	if (!w->batched)
		return 0;
	for (unsigned i = 0; i + 1 < w->batched; i++)
		w->wr[i].next = &w->wr[i + 1];
	w->wr[w->batched - 1].next = NULL;
	ret = ibv_post_send(w->ep->qp, &w->wr[0], &bad);
	if (ret)
		return wfail(w, -ret, "ibv_post_send of %u WRs: %s", w->batched, strerror(ret));
	w->posted_wrs += w->batched;
	w->posted_bytes += w->batched_bytes;
	w->batched = 0;
	w->batched_bytes = 0;
	return 0;
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
		n = block ? rdmig__cq_wait(w->ep->cq, w->ep->ch, wc, POLL_BATCH, WAIT_SLICE_MS)
			  : ibv_poll_cq(w->ep->cq, POLL_BATCH, wc);
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
		const struct mark *m;

		if (wc[i].status != IBV_WC_SUCCESS)
			return wfail(
				w, wc[i].status == IBV_WC_RETRY_EXC_ERR ? -ETIMEDOUT : -EIO,
				"%s failed: %s (status %d, vendor error 0x%x)",
				rdmig__wr_kind_of(wc[i].wr_id) == RDMIG__WR_SEND ? "PASS_END SEND"
										 : "RDMA WRITE",
				ibv_wc_status_str(wc[i].status), wc[i].status, wc[i].vendor_err);
		m = &w->marks[rdmig__wr_val_of(wc[i].wr_id) % w->nmarks];
		w->done_wrs = m->wrs;
		w->done_bytes = m->bytes;
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
	wr = &w->wr[w->batched];
	sge = &w->sge[w->batched];
	wrs_after = w->posted_wrs + w->batched + 1 - w->done_wrs;
	bytes_after = w->posted_bytes + w->batched_bytes + len - w->done_bytes;
	signal = ++w->since_signal >= cfg->signal_interval || wrs_after + 1 > cfg->queue_depth ||
		 bytes_after + wr_max_next > cfg->inflight_bytes || wr_max_next == 0;

	sge->addr = laddr;
	sge->length = len;
	sge->lkey = lkey;
	memset(wr, 0, sizeof(*wr));
	wr->sg_list = sge;
	wr->num_sge = 1;
	wr->opcode = op;
	if (op == IBV_WR_RDMA_WRITE) {
		wr->wr.rdma.remote_addr = raddr;
		wr->wr.rdma.rkey = rkey;
	}
	w->batched++;
	w->batched_bytes += len;
	if (signal) {
		uint32_t seq = (uint32_t)(w->mark_seq++ % w->nmarks);

		w->marks[seq].wrs = w->posted_wrs + w->batched;
		w->marks[seq].bytes = w->posted_bytes + w->batched_bytes;
		wr->send_flags = IBV_SEND_SIGNALED;
		wr->wr_id = rdmig__wr_id(op == IBV_WR_SEND ? RDMIG__WR_SEND : RDMIG__WR_WRITE,
					 w->idx, seq);
		w->since_signal = 0;
	}
	if (w->batched == POST_BATCH || signal)
		ret = flush(w);
	if (!ret && w->posted_wrs - w->done_wrs > 0)
		ret = reap(w, false);
	return ret;
}

static const struct rdmig__dp_region *region_of_chunk(const struct rdmig__dp *dp, uint64_t c)
{
	unsigned lo = 0, hi = dp->nregions;

	/* Last region whose chunk_base <= c. */
	while (hi - lo > 1) {
		unsigned mid = (lo + hi) / 2;

		if (dp->regions[mid].chunk_base <= c)
			lo = mid;
		else
			hi = mid;
	}
	return &dp->regions[lo];
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
	return add_wr(w, IBV_WR_RDMA_WRITE, (uintptr_t)(r->hva + off), r->lkey, r->raddr + off,
		      r->rkey, (uint32_t)len, w->max_wr_bytes);
}

static int do_chunk(struct rdmig__worker *w, uint64_t c)
{
	const struct rdmig__dp *dp = w->dp;
	const struct rdmig__dp_region *r = region_of_chunk(dp, c);
	struct rdmig__range chunk =
		rdmig__chunk(r->npages, dp->cfg->chunk_pages, c - r->chunk_base);
	const uint64_t *bm;
	struct rdmig__range run;
	uint64_t pos, end;
	int ret;

	if (!dp->dirty)
		return write_run(w, r, &chunk);
	bm = dp->dirty[r - dp->regions].bitmap;
	pos = chunk.first;
	end = chunk.first + chunk.count;
	while (rdmig__bitmap_next_run(bm, &pos, end, &run))
		if ((ret = write_run(w, r, &run)))
			return ret;
	return 0;
}

static int worker_pass(struct rdmig__worker *w)
{
	struct rdmig__dp *dp = w->dp;
	struct rdmig__msg m;
	uint8_t *buf;
	uint64_t c;
	char why[128];
	int len, ret;

	memset(&w->stats, 0, sizeof(w->stats));
	w->posted_wrs = w->posted_bytes = w->done_wrs = w->done_bytes = 0;
	w->since_signal = 0;
	w->err[0] = '\0';

	while ((c = atomic_fetch_add(&dp->next_chunk, 1)) < dp->nchunks) {
		if (atomic_load(&dp->abort))
			return -ECANCELED;
		if ((ret = do_chunk(w, c)))
			return ret;
	}
	if (atomic_load(&dp->abort))
		return -ECANCELED;

	/* PASS_END goes on this QP after every WRITE of ours. */
	memset(&m, 0, sizeof(m));
	m.type = RDMIG__MSG_PASS_END;
	m.pass_end.pass = dp->pass;
	m.pass_end.qp = w->idx;
	m.pass_end.writes = w->stats.writes;
	m.pass_end.bytes = w->stats.bytes;
	buf = w->ep->bufs + (size_t)w->ep->attr.nrecv * w->ep->attr.bufsize;
	len = rdmig__msg_encode(&m, buf, w->ep->attr.bufsize, why, sizeof(why));
	if (len < 0)
		return wfail(w, len, "cannot encode PASS_END: %s", why);
	if ((ret = add_wr(w, IBV_WR_SEND, (uintptr_t)buf, w->ep->mr->lkey, 0, 0, (uint32_t)len, 0)))
		return ret;
	while (w->done_wrs < w->posted_wrs)
		if ((ret = reap(w, true)))
			return ret;
	return 0;
}

static void pin_self(struct rdmig__worker *w)
{
	cpu_set_t set;

	if (w->cpu < 0)
		return;
	CPU_ZERO(&set);
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
		       int (*poll_cb)(void *arg), void *arg, struct rdmig__worker_stats *sum)
{
	const struct rdmig__dp_region *last = &regions[nregions - 1];
	int ret = 0;

	dp->regions = regions;
	dp->nregions = nregions;
	dp->dirty = dirty;
	dp->pass = pass;
	dp->nchunks = last->chunk_base + rdmig__chunk_count(last->npages, dp->cfg->chunk_pages);
	atomic_store(&dp->next_chunk, 0);
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

		sum->pages += w->stats.pages;
		sum->bytes += w->stats.bytes;
		sum->writes += w->stats.writes;
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
	return ret;
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
