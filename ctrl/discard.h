/* SPDX-License-Identifier: MIT */
/*
 * The source's registrations of guest memory and the discards that make
 * them stale (rdmig_src_discard()).
 *
 * Each region is registered as MRs of at most a segment (1 GiB, a whole
 * number of chunks, so no WRITE spans two; one chunk when a chunk is
 * larger, as with large pages). The NIC reads the frames an MR
 * pinned when it was registered, not what the process maps now: after
 * MADV_DONTNEED (or a hole punched in a memfd) the next touch maps another
 * frame and the MR still reads the old one (notes/postcopy.md, pitfall 4).
 * So a discard is recorded (any thread, under `lock`), and the next pass,
 * in its own thread before any worker runs, takes the recorded pages,
 * registers each touched segment again and deregisters the old MR after,
 * marks the pages dirty for that pass and what the destination holds of
 * them unknown.
 *
 * A page that is a hole when its segment is registered (at connect, or
 * again after a discard) may be pinned as the shared zero page, and the
 * guest's first write then moves it to a fresh frame: the MR is stale once
 * more, with no discard to report it. (Linux 6.1 gives the hole a frame of
 * its own at the pin instead, seen over rxe; other kernels, or other
 * versions, need not.) So such a page stays "unsettled": at every pass
 * start the /proc/self/pagemap entries of the unsettled pages that pass
 * sends are read, before any pin, and one that holds a frame of its own
 * (present and exclusively mapped anonymous memory, or swapped out) has
 * its segment registered again and is settled. Looking only at dirty
 * pages is enough: a page that got a frame was written, so it is dirty in
 * the first pass whose log was synced after the write. Without pagemap, a
 * segment with unsettled pages that a pass sends is registered again in
 * every such pass.
 */
#ifndef RDMIG_CTRL_DISCARD_H
#define RDMIG_CTRL_DISCARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/util.h"
#include "../dataplane/worker.h"
#include "../dataplane/xport.h"

/* Default segment: the most guest memory one MR covers. */
#define RDMIG__MR_SEGMENT_BYTES (1ull << 30)

struct rdmig__disc_region {
	uint64_t gpa; /* for messages */
	uint8_t *hva;
	uint64_t npages;
	/* Under the lock: pages discarded since a pass last took them. */
	uint64_t *fresh;
	uint64_t nfresh;
	/* The pass thread's: swapped with `fresh` when a pass takes them. */
	uint64_t *taken;
	uint64_t ntaken;
	/* The pass thread's: see the top of this file. NULL until needed. */
	uint64_t *unsettled;
	uint64_t nunsettled;
	uint64_t *merged; /* a pass's dirty log with the taken pages added */
	/* rdmig__disc_apply()'s scratch: zero between passes, NULL until needed. */
	uint64_t *cand, *own;
	uint8_t *reseg; /* per segment: register again */
	/* Registration: nsegs MRs of seg_pages pages (the last may be shorter). */
	struct rdmig__xp_mr **mrs;
	uint32_t *lkeys; /* what the workers read (rdmig__dp_region.lkeys) */
	uint64_t nsegs;
};

struct rdmig__disc {
	pthread_mutex_t lock;
	unsigned nregions; /* under the lock */
	uint32_t page_size;
	uint64_t seg_bytes;	   /* tests may shrink it (hooks.h) */
	uint64_t seg_pages;	   /* set at registration */
	atomic_bool ended;	   /* the session failed or completed: discards refused */
	const atomic_bool *cancel; /* rdmig_src_cancel(): registration stops between segments */
	int pagemap_fd;		   /* -1: not open (or unavailable) */
	/* Counted since create, for tests and measurements. */
	uint64_t refreshes, refresh_bytes, refresh_ns;
	struct rdmig__disc_region r[RDMIG__MAX_REGIONS];
};

void rdmig__disc_init(struct rdmig__disc *d, uint32_t page_size);
/* Frees what is left; the MRs must be deregistered already. */
void rdmig__disc_fini(struct rdmig__disc *d);
/* A region was added as index d->nregions (before connect, by the owner). */
void rdmig__disc_add_region(struct rdmig__disc *d, uint64_t gpa, uint8_t *hva, uint64_t npages);

/*
 * Registers every region in segments of whole chunks, for local read.
 * Discards recorded before are dropped (the MRs pin what is mapped now).
 * Returns 0, or a negative errno with a message; what was registered stays
 * until rdmig__disc_deregister().
 */
int rdmig__disc_register(struct rdmig__disc *d, const struct rdmig__xp_ops *xp,
			 struct rdmig__xp_pd *pd, uint32_t chunk_pages);
void rdmig__disc_deregister(struct rdmig__disc *d, const struct rdmig__xp_ops *xp);

/* rdmig_src_discard(): checks and records; any thread. */
int rdmig__disc_record(struct rdmig__disc *d, unsigned region, uint64_t offset, uint64_t len);

/*
 * Pass start, step 1: takes the recorded discards and returns the dirty
 * logs the pass is to use: `dirty` itself, or `scratch` filled with the
 * taken pages added (`dirty` NULL, every page dirty: NULL). -ENOMEM with
 * nothing taken. Undo with rdmig__disc_untake() if the pass goes no
 * further.
 */
int rdmig__disc_take(struct rdmig__disc *d, const struct rdmig_dirty *dirty,
		     struct rdmig_dirty *scratch, const struct rdmig_dirty **out);
void rdmig__disc_untake(struct rdmig__disc *d);
/*
 * Step 2: registers again the segments that need it (see the top), updates
 * the lkeys, and marks the taken pages unknown in dpr[].pkind. `dirty` is
 * what step 1 returned. `work` (NULL: all) lists the chunks (chunk_pages
 * pages each, numbered as dpr[].chunk_base counts them, increasing) outside
 * of which `dirty` has no bit set, taken pages included: only their words
 * are read, so a pass with little dirty costs little here. On failure
 * everything taken is put back (a later pass retries) and a negative errno
 * returned with a message.
 */
int rdmig__disc_apply(struct rdmig__disc *d, const struct rdmig__xp_ops *xp,
		      struct rdmig__xp_pd *pd, const struct rdmig_dirty *dirty,
		      struct rdmig__dp_region *dpr, uint32_t chunk_pages, const uint64_t *work,
		      uint64_t nwork);

/*
 * Before completing: 1 with *region and *page when a discarded page is
 * still waiting for a pass; else 0, and from now on discards are refused
 * (-EPIPE), so none can arrive unseen while the session completes.
 */
int rdmig__disc_close(struct rdmig__disc *d, unsigned *region, uint64_t *page);

#endif /* RDMIG_CTRL_DISCARD_H */
