/* SPDX-License-Identifier: MIT */
/*
 * The bandwidth model (DESIGN.md): a pass is a two-stage pipeline, the
 * scanner reading every dirty page and the wire carrying only what must go,
 *
 *   t_pass ~ max(scan_bytes / scan_rate, wire_bytes / wire_rate) + overhead
 *
 * - the wire: t_wire = bytes / B + writes * c, a per-byte and a per-WRITE
 *   cost fitted (least squares) to the busy wire time of recent passes:
 *   many small scattered WRITEs cost more per byte than a few large ones.
 *   Only bytes actually written enter it, never skipped ones
 *   (cloud-hypervisor's inflated bandwidth);
 * - scan_rate: bytes scanned per worker-second, times the workers;
 * - both rates leave out a recent pass that stands out from their fit (one
 *   the machine stalled): missed by more than 10%, and by half as much
 *   again as any other pass, when two others remain;
 * - the shares of pages scanned and written, from recent passes or, better,
 *   from a sample of the dirty set itself, so the wire bytes of a dirty set
 *   are predicted from what would really be sent, not from its size (QEMU's
 *   pessimistic cutoff). A sample that agrees with recent passes is pooled
 *   with them (a few thousand pages know a share only to a few percent);
 *   one that does not says the guest changed its ways, and counts alone;
 * - the WRITEs: from the runs of the dirty bitmaps, each page written with
 *   the sampled share; without bitmaps, per written page as in the latest
 *   pass that wrote. A dirty set whose WRITEs are unlike every recent
 *   pass's (a scattered set after a first pass of 1 MiB WRITEs) leaves the
 *   per-WRITE cost unknown: the estimate says it extrapolates;
 * - overhead: what a pass costs beyond its slower stage (the pipeline's
 *   bubbles, handshakes, the last completions and answers), as a share of
 *   that stage, the median over recent passes: a bulk pass's milliseconds
 *   say nothing of a small one's, nor one stalled pass of the next.
 * Pure: no I/O, no locks; the source feeds it after every pass.
 */
#ifndef RDMIG_DATAPLANE_MODEL_H
#define RDMIG_DATAPLANE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <rdmig/rdmig.h>

/* Passes the shares and rates are taken from: recent behaviour, not history. */
#define RDMIG__MODEL_WINDOW 4

/* What the model keeps of one pass. */
struct rdmig__model_pass {
	uint64_t dirty, ballooned, scanned, written; /* pages */
	uint64_t wire_bytes, writes;
	uint64_t scan_ns; /* summed over workers */
	uint64_t wire_ns; /* the wire's busy time */
	uint64_t duration_ns;
	uint32_t workers;
};

struct rdmig__model {
	uint32_t page_size;
	struct rdmig__model_pass win[RDMIG__MODEL_WINDOW];
	unsigned n;	 /* passes in the window */
	uint64_t passes; /* passes ever added */
	/* Every pass since the start, for rates a quiet window cannot give
	 * (a window of passes that wrote nothing says nothing of the wire). */
	uint64_t all_wire_bytes, all_wire_ns, all_scan_bytes, all_scan_ns;
	/*
	 * The source's bandwidth cap (opts.max_bandwidth), bytes per second,
	 * 0: none. The wire never goes faster: a prediction's wire stage
	 * takes at least its bytes at the cap, whatever recent passes were
	 * fitted to (a small pass may ride the cap's burst).
	 */
	uint64_t max_bandwidth;
	/*
	 * What one worker hashes, bytes per second (0: unknown). A final
	 * pass hashes every page it writes whatever the skip policy did
	 * before it: its scan stage takes at least those bytes at this rate,
	 * however fast recent passes that did not hash scanned.
	 */
	uint64_t hash_rate;
};

void rdmig__model_init(struct rdmig__model *m, uint32_t page_size);
void rdmig__model_add(struct rdmig__model *m, const struct rdmig__model_pass *p);

/*
 * What a pass would do with a sample of the dirty set as it is now (the
 * source scans it and applies the pass's own decision): better than recent
 * passes' shares when the guest's writes change character, as they do once
 * it is paused.
 */
struct rdmig__model_sample {
	uint64_t pages;	  /* sampled (dirty, not ballooned) */
	uint64_t written; /* of them */
	/* All the dirty pages not ballooned (not just the sampled ones), and
	 * the runs they make, split where a pass splits WRITEs. */
	uint64_t run_pages, runs;
};

/*
 * A window pass that a rate's fit misses by more than this share of the
 * predicted time, and by half as much again as any other pass (a pass the
 * machine stalled), is left out of that fit, if two others remain.
 */
#define RDMIG__MODEL_OUTLIER 0.10

/*
 * A WRITE size no recent pass came within this factor of: the estimate
 * extrapolates (RDMIG_ESTIMATE_EXTRAPOLATED).
 */
#define RDMIG__MODEL_SIMILAR_WRITES 4

/*
 * Predicts a pass over `dirty` dirty pages of which `ballooned` are in the
 * skip set (UINT64_MAX: unknown, use the recent share) with `workers`
 * workers. The share of pages written comes from `sample` when it holds
 * pages (pooled with recent passes' counts when the two agree), else from
 * recent passes; the WRITEs from its runs when it counted some. Fills *e
 * (all of it; e->size is the caller's). Returns 0, or -ENODATA (no pass
 * yet, or pages to write and no byte ever written).
 */
int rdmig__model_estimate(const struct rdmig__model *m, uint64_t dirty, uint64_t ballooned,
			  uint32_t workers, const struct rdmig__model_sample *sample,
			  struct rdmig_estimate *e);

/*
 * What follows the final pass until rdmig_src_complete() returns, for the
 * whole downtime: the device state the VMM announced (bytes, 0: none), the
 * control round trip (the handshake's HELLO -> CHALLENGE) and what
 * registering guest memory took at connect (bytes, time).
 */
struct rdmig__model_after {
	uint64_t state_bytes;
	uint64_t rtt_ns;
	uint64_t reg_bytes, reg_ns;
};

/*
 * Fills e->state_bytes, state_ns, complete_ns and downtime_ns from an
 * estimate of the final pass (its wire_rate, scan_rate and final_pass_ns).
 * The state: its bytes at wire_rate (taken as all non-zero: an upper
 * bound), two scans of it at one worker's share of scan_rate (the source
 * finds zero pages and hashes, the destination hashes: each one thread),
 * its registration at both ends at the measured rate, and two round trips
 * (descriptors -> buffers, end -> confirmation). Complete: one round trip.
 * With no wire rate known the state's wire time is not counted and the
 * estimate is flagged RDMIG_ESTIMATE_EXTRAPOLATED.
 */
void rdmig__model_downtime(const struct rdmig__model_after *a, uint32_t workers,
			   struct rdmig_estimate *e);

#endif /* RDMIG_DATAPLANE_MODEL_H */

/*
 * The skip policy (RDMIG_SKIP_POLICY=auto): does hashing pay in the next
 * pass? A pass that hashes runs the source's scan at hash_rate and the
 * destination's hashing of what lands at dst_hash_rate, and its wire
 * carries (1 - share) of the pages; one that does not scans at zero_rate
 * and its wire carries them all. The slower stage governs either
 * (DESIGN.md, the bandwidth model): hashing pays when the pass that
 * hashes is no slower, the pages skipped paying for the hashing. Rates in
 * bytes per second, all workers (0: unknown); share of the dirty pages
 * compared that were unchanged, recently (negative: unknown).
 */
struct rdmig__skip_in {
	double share;
	double zero_rate, hash_rate, dst_hash_rate, wire_rate;
};

/*
 * True when hashing pays: with the share unknown (nothing compared yet: a
 * first pass, whose hashes every later one compares with) or nothing
 * known of the wire, it is taken to; otherwise by the pipeline's times.
 */
bool rdmig__model_hash_pays(const struct rdmig__skip_in *in);

/*
 * The share of unchanged pages above which hashing pays, by the same
 * times (in->share is not read): 0 when it pays with none unchanged
 * beyond 0, more than 1 when it never does; 0 with the wire unknown. A
 * pass that hashes while the share is unknown stops hashing, but for the
 * sample, once what it compared shows a share no higher (worker.c).
 */
double rdmig__model_hash_share_needed(const struct rdmig__skip_in *in);
