/* SPDX-License-Identifier: MIT */
/*
 * The source's worker pool. Each worker owns one data QP and its CQ, is
 * pinned near the RDMA device, and during a pass takes chunks of pages off a
 * shared counter, coalesces their dirty bits into runs and posts one RDMA
 * WRITE per run, signalling one WR in N and never exceeding its queue depth
 * or its bytes-in-flight bound. It ends its share of a pass with a PASS_END
 * SEND on the same QP: RC delivers in order, so when the destination
 * receives it, every WRITE before it is placed. The destination's HASHES
 * answers to its NOTICEs are compared with what it scanned; a page that
 * landed otherwise is marked in the region's mismatch bitmap, and the next
 * pass, or a final pass's next round (same pass number, one PASS_END at
 * the end of the last round), takes it up again.
 *
 * Threads: the pool's owner (the thread calling rdmig_src_*) starts passes
 * and waits for them; only the worker touches its QP and CQ during a pass.
 */
#ifndef RDMIG_DATAPLANE_WORKER_H
#define RDMIG_DATAPLANE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rdmig/rdmig.h>

#include "../common/util.h"
#include "../common/conn.h"
#include "scan.h"

/*
 * NOTICEs a worker may have unanswered at once; the destination posts this
 * many receive buffers (plus one for PASS_END) per data QP.
 */
#define RDMIG__NOTICE_CREDITS 8

/*
 * What the source knows the destination holds for a page (DESIGN.md,
 * invariant 2): learned only from the destination (a HASHES answer, a
 * zero-fill order it confirmed, a region it declared zero), never from a
 * hash the source took itself.
 */
enum rdmig__pkind {
	RDMIG__PK_UNKNOWN = 0,
	RDMIG__PK_ZERO = 1,
	RDMIG__PK_HASH = 2, /* the page's hash is in phash[] */
};

/* What happens to a dirty page, not ballooned, once scanned. */
enum rdmig__decision {
	RDMIG__GO_WRITE,
	RDMIG__GO_ZERO_FILL, /* zero, the destination may hold other bytes: it memsets */
	RDMIG__GO_SKIP_ZERO, /* zero, and so is the destination's copy */
	RDMIG__GO_SKIP_SAME, /* the destination's hash of what landed equals ours */
};

/*
 * DESIGN.md invariants 2-4 for one page of scan result `kind` (hash h)
 * whose destination copy is known as pkind/phash. The only place the
 * decision is made: passes and estimates share it.
 */
static inline enum rdmig__decision rdmig__decide(const struct rdmig__config *cfg, int kind,
						 const struct rdmig__hash *h, uint8_t pkind,
						 const struct rdmig__hash *phash)
{
	if (kind == RDMIG__PAGE_ZERO && pkind == RDMIG__PK_ZERO)
		return cfg->skip_zero ? RDMIG__GO_SKIP_ZERO : RDMIG__GO_SKIP_SAME;
	if (kind == RDMIG__PAGE_ZERO && cfg->skip_zero)
		return RDMIG__GO_ZERO_FILL;
	if (kind == RDMIG__PAGE_DATA && cfg->skip_unchanged && pkind == RDMIG__PK_HASH &&
	    phash->lo == h->lo && phash->hi == h->hi)
		return RDMIG__GO_SKIP_SAME;
	return RDMIG__GO_WRITE;
}

/*
 * Called after a block of pages was scanned and before its WRITEs are
 * posted: tests use it to change a page the way a running guest would.
 */
typedef void (*rdmig__scan_hook_fn)(void *arg, unsigned region, uint64_t first, uint32_t npages);

/* A region as the data plane sees it: where to read, where to write. */
struct rdmig__dp_region {
	uint8_t *hva;
	uint64_t npages;
	/* The region is registered as MRs of seg_pages pages (whole chunks,
	 * so a WRITE never spans two): page p is read through lkeys[p /
	 * seg_pages]. The owner may change a key between passes (a discard). */
	const uint32_t *lkeys;
	uint64_t seg_pages;
	uint64_t raddr;
	uint32_t rkey;
	uint64_t chunk_base; /* index of the region's first chunk in the pass */
	/* Per page, what the destination holds; NULL when nothing is skipped.
	 * A page is touched by one worker at a time (it lies in one chunk). */
	uint8_t *pkind;
	struct rdmig__hash *phash;
	/*
	 * Bit per page, owned by the source session: the destination's hash
	 * of what the page's last write landed as is not the hash the source
	 * took when it scanned the page (or one is zero and the other not).
	 * Such a page is taken up again by the next pass (or round) whether
	 * or not it is dirty, and verified then; complete refuses while any
	 * bit is set. Pages of one 64-bit word may lie in chunks of different
	 * workers: read and changed with atomics (see worker.c).
	 */
	uint64_t *mismatch;
};

struct rdmig__worker;

struct rdmig__dp {
	const struct rdmig__config *cfg;
	struct rdmig__worker *workers;
	unsigned nworkers;

	/* The current pass, read-only for workers while it runs. */
	const struct rdmig__dp_region *regions;
	unsigned nregions;
	const struct rdmig_dirty *dirty; /* NULL: every page is dirty */
	const struct rdmig__scanner *scanner;
	const struct rdmig__scan_key *key;
	bool notices; /* skipping is on: scan, decide, send NOTICEs */
	/*
	 * The pass hashes (skip_unchanged on): the source compares the hash of
	 * every dirty page the destination's hash is known of (to skip it if
	 * equal), and the destination hashes every page written (for a later
	 * pass to compare with). Off (the skip policy found it does not pay):
	 * only pages of the sample (rdmig__dp_sampled()) are, the others
	 * being written unhashed and their state forgotten (PK_UNKNOWN: the
	 * next pass writes them again). A final pass always hashes.
	 */
	bool hashing;
	/*
	 * With hashing on while the share of unchanged pages is unknown: the
	 * share above which hashing pays (rdmig__model_hash_share_needed()).
	 * A worker whose compared pages in this pass (RDMIG__DP_PROBE_PAGES
	 * at least) show no higher share stops hashing for the rest of the
	 * pass, but for the sample. Negative: no such check.
	 */
	double probe_share;
	unsigned flags; /* RDMIG__DP_* of the current round */
	rdmig__scan_hook_fn hook;
	void *hook_arg;
	uint64_t nchunks;
	/*
	 * Set by the owner before a round. NULL: the round's chunks are every
	 * region's in order, clean ones skipped at the cost of reading their
	 * bits. Else the round takes only the nwork chunks work[] (chunk
	 * numbers as chunk_base counts them, increasing), outside of which no
	 * dirty bit is set and RDMIG__DP_AGAIN is not given: a pass over
	 * dirty lists (rdmig_src_pass_list()) costs its dirty chunks only.
	 */
	const uint64_t *work;
	uint64_t nwork;
	uint64_t pass;
	atomic_uint_fast64_t next_chunk;
	atomic_bool abort; /* set by anyone: stop posting, end the pass */

	pthread_mutex_t lock;
	pthread_cond_t start, done;
	uint64_t generation; /* bumped to start a pass */
	unsigned running;    /* workers still in the current pass */
	bool stop;

	/*
	 * A round's budget (rdmig__dp_run_pass() with RDMIG__DP_BUDGET): once
	 * the deadline passed or the round's WRITEs reached byte_budget
	 * bytes, no worker takes another chunk (the first chunk of a round is
	 * always taken, so every round gets somewhere). next_chunk then holds
	 * RDMIG__DP_CLOSED and the chunks taken: all of them done when the
	 * round returns, the rest for a round with RDMIG__DP_RESUME.
	 */
	uint64_t deadline_ns; /* 0: none */
	uint64_t byte_budget; /* 0: none */
	uint64_t round_first; /* next_chunk when the round started */
	atomic_uint_fast64_t round_bytes;
	bool paused; /* the last round stopped on its budget, chunks left */
	/*
	 * The bandwidth cap (cfg->max_bandwidth, bytes per second), shared by
	 * the workers: a virtual clock of when the wire is free (GCRA, a token
	 * bucket of RDMIG__DP_BURST_NS worth of bytes). A WRITE books its
	 * bytes' time after the booked time (or after now less the burst,
	 * whichever is later) and is posted when its slot starts.
	 */
	atomic_uint_fast64_t wire_free_ns;
	/* Where workers publish their counters for rdmig__dp_progress();
	 * NULL: nowhere. Owned by the caller, who sets it before passes. */
	struct rdmig__dp_pub *pub;
};

/* The burst the bandwidth cap allows: this long at the capped rate. */
#define RDMIG__DP_BURST_NS (2ull * 1000000)

/*
 * One worker's running counters of the current pass (all its rounds), for
 * readers on other threads (rdmig_src_progress()): written by the worker
 * after every block of pages, relaxed, each on a cache line of its own so
 * that a reader costs the worker nothing. Reset by the owner between
 * passes only.
 */
struct rdmig__dp_pub {
	_Alignas(64) atomic_uint_fast64_t dirty;
	atomic_uint_fast64_t pages, bytes, writes;
	atomic_uint_fast64_t skipped, zero_filled, chunks;
};

/* What one worker did in a pass. */
struct rdmig__worker_stats {
	uint64_t dirty, pages, bytes, writes; /* pages/bytes: written */
	uint64_t scanned, skipped_zero, skipped_unchanged, skipped_ballooned, zero_filled;
	uint64_t scan_ns, wire_ns;
	uint64_t mismatched; /* writes that landed other than scanned */
	uint64_t resent;     /* pages sent again because their last copy mismatched */
	/* Mismatch bits this worker set (clear before) and cleared (set before). */
	uint64_t mism_set, mism_cleared;
	uint64_t chunks; /* chunks done */
	/* Dirty data pages hashed to compare with the destination's hash
	 * (of them, skipped_unchanged were skipped): the skip policy's share. */
	uint64_t compared;
};

/*
 * The sample that keeps the share of unchanged pages current while the
 * pass does not hash (dp->hashing off): one page in 64, the same pages in
 * every pass (so that one hashed in a pass is known in the next), spread
 * by a hash of the page's index so that no stride of the guest's aliases.
 */
#define RDMIG__DP_SAMPLE_SHIFT 6
#define RDMIG__DP_PROBE_PAGES  256
static inline bool rdmig__dp_sampled(unsigned region, uint64_t page)
{
	uint64_t x = (page ^ ((uint64_t)region << 56)) * 0x9e3779b97f4a7c15ull;

	return (x >> (64 - RDMIG__DP_SAMPLE_SHIFT)) == 0;
}

/*
 * Starts `n` workers over the connected data endpoints eps[0..n-1], each
 * pinned to cpus[i % ncpus] when ncpus > 0. Returns 0 or a negative errno.
 */
int rdmig__dp_start(struct rdmig__dp *dp, const struct rdmig__config *cfg, struct rdmig__ep *eps,
		    unsigned n, const int *cpus, unsigned ncpus);

/* Flags of rdmig__dp_run_pass(). */
#define RDMIG__DP_VERIFY (1u << 0) /* hash every written page at both ends, compare */
#define RDMIG__DP_MORE	 (1u << 1) /* another round of this pass follows: no PASS_END */
/*
 * A later round of the same pass: the workers' statistics go on adding up
 * (PASS_END reports the whole pass), its pages are not counted as dirty
 * again.
 */
#define RDMIG__DP_RETRY (1u << 2)
#define RDMIG__DP_NONE	(1u << 3) /* no pages: only end the pass (PASS_END) */
/* Some mismatch bit may be set: such pages are taken up as if dirty. */
#define RDMIG__DP_AGAIN (1u << 4)
/*
 * The round has a budget (dp->deadline_ns, dp->byte_budget): it may stop
 * with chunks left (dp->paused), and then sends no PASS_END, whatever
 * RDMIG__DP_MORE says.
 */
#define RDMIG__DP_BUDGET (1u << 5)
/*
 * Goes on with the round that stopped on its budget: from the chunk it
 * stopped at, statistics adding up (as RDMIG__DP_RETRY), its pages counted
 * as dirty (they were not yet).
 */
#define RDMIG__DP_RESUME (1u << 6)
/* next_chunk's bit: the round stopped on its budget, no chunk is taken. */
#define RDMIG__DP_CLOSED (1ull << 63)

/*
 * Runs a round of pass `pass` over the regions and returns when every
 * worker is done: all its WRITEs, NOTICEs and (unless RDMIG__DP_MORE) its
 * PASS_END completed. A pass is one round, or several on the same pass
 * number: every round but the last has RDMIG__DP_MORE, every one but the
 * first RDMIG__DP_RETRY. While waiting it calls poll_cb(arg) every few
 * milliseconds; a negative return aborts the pass. Returns 0, or the first
 * failure (with rdmig__err set). Per-worker statistics (of the whole pass
 * so far) are summed into *sum.
 */
int rdmig__dp_run_pass(struct rdmig__dp *dp, const struct rdmig__dp_region *regions,
		       unsigned nregions, const struct rdmig_dirty *dirty, uint64_t pass,
		       unsigned flags, int (*poll_cb)(void *arg), void *arg,
		       struct rdmig__worker_stats *sum);

/*
 * For an estimate: counts the runs of dirty pages outside the skip sets as
 * a pass would split them into WRITEs (at block boundaries), and, with
 * skipping on, scans about `want` of those pages, spread evenly, and counts
 * what a pass would do with them now (no state changes, nothing sent).
 * `work` (may be NULL: every region's bitmap is read whole) lists the only
 * chunks with dirty bits, nwork of them, increasing, as dp->work does.
 * Between passes only.
 */
struct rdmig__model_sample;
void rdmig__dp_sample(const struct rdmig__dp *dp, const struct rdmig__dp_region *regions,
		      unsigned nregions, const struct rdmig_dirty *dirty, const uint64_t *work,
		      uint64_t nwork, uint64_t pages, uint64_t want, struct rdmig__model_sample *s);

/*
 * Walks the bitmap words a pass's chunks cover, as spans: with `work` NULL,
 * every region whole; else only the nwork chunks listed (increasing chunk
 * numbers as chunk_base counts them), neighbours merged, each word once
 * (chunks may share one). Start with *k = 0 and *ri = 0; each call returns
 * true with words [*w0, *w1) of region *ri, false at the end.
 */
bool rdmig__dp_next_span(const struct rdmig__dp_region *regions, unsigned nregions,
			 uint32_t chunk_pages, const uint64_t *work, uint64_t nwork, uint64_t *k,
			 unsigned *ri, uint64_t *w0, uint64_t *w1);

/*
 * Sums the counters the workers published (dp->pub, n of them) into *sum
 * (dirty, pages, bytes, writes; skipped_zero holds every skipped page,
 * zero_filled; scanned holds the chunks done). Any thread, any time: relaxed
 * loads, no lock; each counter is exact as of its worker's last block.
 */
void rdmig__dp_progress(const struct rdmig__dp_pub *pub, unsigned n,
			struct rdmig__worker_stats *sum);
/* Zeroes the published counters: by the owner, between passes. */
void rdmig__dp_progress_reset(struct rdmig__dp_pub *pub, unsigned n);

/*
 * The bandwidth cap for WRITEs posted outside a pass (the device state):
 * books len bytes on the workers' clock of the wire and sleeps until
 * their slot starts. At once without a cap. The pool's owner only.
 */
int rdmig__dp_pace(struct rdmig__dp *dp, uint64_t len);

/* Stops and joins the workers. Safe on a pool that never started. */
void rdmig__dp_stop(struct rdmig__dp *dp);

#endif /* RDMIG_DATAPLANE_WORKER_H */
