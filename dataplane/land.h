/* SPDX-License-Identifier: MIT */
/*
 * What lands at the destination: the data plane's side of a NOTICE. The
 * WRITEs before a NOTICE on its QP are placed when it arrives; the pages it
 * orders zeroed are zeroed here, and every page it says was written is
 * hashed as it landed (DESIGN.md, invariant 2: only the destination's hash
 * is proof), the answer being a HASHES message.
 *
 * Hashing is the destination's one heavy job and it runs on a pool: the
 * event loop (ctrl/dst.c) gathers the NOTICEs that arrived on all data QPs
 * and hands them over as one batch, works on it too, and when every job
 * is done sends the answers itself, in order on each NOTICE's own QP. So
 * the pool touches guest memory and the scan key only: no endpoint, no
 * message sequence, no session state, nothing of the control plane.
 *
 * Threads: start/stop/run by one thread (the event loop); the pool's own
 * threads run jobs only while run() waits for them.
 */
#ifndef RDMIG_DATAPLANE_LAND_H
#define RDMIG_DATAPLANE_LAND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/proto.h"
#include "scan.h"

/*
 * Zero-fills and hashes one NOTICE's pages in the region at hva (the
 * caller checked the NOTICE against the region) and fills *ans, the
 * HASHES answer.
 */
void rdmig__land_notice(const struct rdmig__scanner *sc, const struct rdmig__scan_key *key,
			uint8_t *hva, uint32_t page_size, const struct rdmig__msg *notice,
			struct rdmig__msg *ans);

/* One NOTICE to handle: set by the caller, `ans` filled by the pool. */
struct rdmig__land_job {
	uint8_t *hva; /* the NOTICE's region */
	unsigned qp;  /* the caller's: where the answer goes */
	struct rdmig__msg notice, ans;
};

/* Helper threads beyond the caller: at most this many. */
#define RDMIG__LAND_THREADS_MAX 15

struct rdmig__land {
	const struct rdmig__scanner *sc;
	const struct rdmig__scan_key *key;
	uint32_t page_size;
	unsigned nthreads; /* started */
	pthread_t threads[RDMIG__LAND_THREADS_MAX];

	pthread_mutex_t lock;
	pthread_cond_t start, done;
	bool inited, stop;
	uint32_t generation; /* bumped for each batch */
	struct rdmig__land_job *jobs;
	unsigned njobs;
	/*
	 * The batch's generation (high half) and its next job (low half): a
	 * helper takes a job only of the batch it woke for, so one that wakes
	 * late never touches a later batch's jobs with an earlier's count.
	 * The caller waits for `finished` only, never for the helpers to wake.
	 */
	_Atomic uint64_t next;
	atomic_uint finished;
};

/*
 * Starts `helpers` threads (0: the caller hashes alone) that hash with the
 * scanner and key given (both must outlive the pool). Returns 0 or a
 * negative errno (rdmig__err set; nothing is left started).
 */
int rdmig__land_start(struct rdmig__land *l, const struct rdmig__scanner *sc,
		      const struct rdmig__scan_key *key, uint32_t page_size, unsigned helpers);

/* Handles jobs[0..n-1], the caller and the helpers together; returns when all are done. */
void rdmig__land_run(struct rdmig__land *l, struct rdmig__land_job *jobs, unsigned n);

/* Stops and joins the helpers. Safe on a pool never started (zeroed) or stopped. */
void rdmig__land_stop(struct rdmig__land *l);

#endif /* RDMIG_DATAPLANE_LAND_H */
