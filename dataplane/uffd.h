/* SPDX-License-Identifier: MIT */
/*
 * Post-copy install engine of the destination (issue 12): userfaultfd on the
 * guest's view of one region, and the rule that a page becomes visible to the
 * guest only once, and only after the transport proved that it arrived.
 * Internal: the protocol (ctrl/) drives it; nothing here knows about QPs.
 *
 * Two mappings of the same guest memory (shared/notes/postcopy.md):
 * - G, the VMM's mapping that the guest uses (vCPUs, KVM, vhost). The VMM
 *   maps it; rdmig registers it with userfaultfd and otherwise never touches
 *   it (no load or store through G: only ioctls on it).
 * - R, where the NIC writes ("receive base"). With an fd (memfd, shmem or
 *   hugetlbfs file) R is a second MAP_SHARED mapping of the same file range
 *   that rdmig makes itself: a WRITE into R fills the page cache, and
 *   UFFDIO_CONTINUE maps that very page into G, no copy. Without an fd
 *   ("copy fallback", any G that userfaultfd can register in MISSING mode,
 *   e.g. anonymous memory) R is a staging area of the region's size and a
 *   page is installed with UFFDIO_COPY (about 3-7 times the CPU cost per
 *   page, notes' table). The staging area is never freed page by page: once
 *   registered as an MR it is pinned, and discarding pinned memory detaches
 *   the MR (pitfall 4); it costs a second region-sized buffer until close.
 *
 * Life of a region:
 *   open    validate, map R, open and register the userfaultfd, start the
 *           fault thread. Before arm every page is "held" (the destination
 *           has it): a fault on G (a VMM touching guest memory) installs the
 *           page at once, content as it is in R (in the copy fallback a
 *           fault means the page is absent from G: zeros).
 *   arm     the outstanding set: those pages are dropped from G
 *           (MADV_DONTNEED: a page the VMM or pre-copy touched would
 *           otherwise never fault) and from then on are installed only by
 *           arrived(). Pages not outstanding stay held: present ones stay,
 *           absent ones are installed when touched or by install_held().
 *   fault   the fault thread reads fault events; for an outstanding page not
 *           yet requested it asks the transport (the request callback) for
 *           the page and its `prefetch` following outstanding neighbours,
 *           batched over every event read at once; no limit on requests in
 *           flight. A fault on a page already requested just waits.
 *   arrived the transport proved that pages [first, first + count) landed in
 *           R (in the protocol: a write-with-immediate or SEND on the QP of
 *           their WRITE, pitfall 1): they are installed in one ioctl per run,
 *           which wakes the threads blocked there. A page that arrives twice,
 *           or that was not outstanding, is a protocol error (-EPROTO) and
 *           fails the region: its second WRITE may already have overwritten
 *           what the guest wrote since the install (pitfall 3), which only
 *           the source can prevent (each page written once).
 *   fail    after it nothing is installed again. Threads blocked on an
 *           outstanding page stay blocked (killable): R holds zeros there
 *           (pitfall 1), so waking them would let the guest read zeros.
 *           The VMM must stop the guest (every thread that may touch G).
 *   close   stops the fault thread, unregisters G, unmaps R, closes every
 *           fd. If pages are still outstanding (a failure, or close before
 *           the end), G is first made inaccessible (mprotect PROT_NONE) so
 *           that a thread still blocked, or one that touches G later, gets
 *           SIGSEGV (user access) or EFAULT (kernel access: KVM_RUN, vhost,
 *           read/write on G) instead of silently reading zeros.
 *
 * Page states, each a bitmap under pc->lock: outstanding (set by arm),
 * requested (asked of the transport), arrived (proved landed), claimed (an
 * installer took it: only one thread ever issues its ioctl), installed (that
 * ioctl is done). A page is claimed only if held or arrived, so a page that
 * did not arrive is never installed; claims are exclusive, so no page is
 * installed twice. An install that finds the page already mapped (EEXIST,
 * e.g. a present held page) skips it and goes on, then wakes the range
 * (pitfall 5).
 *
 * Threads:
 *   rdmig__pc_open, _arm, _close: one thread, the one that owns the region;
 *     arm at most once; close last, with no other call in progress or later.
 *   rdmig__pc_arrived, _install_held, _fail, _stats, _recv_base: any thread,
 *     concurrently (arrived from every completion thread of the transport).
 *   The request callback runs on the fault thread, never with a lock held;
 *     it must not block for long (every fault waits behind it) and must not
 *     call rdmig__pc_close; it may call arrived (the page is installed) and
 *     fail. A negative return fails the region with that error: a request
 *     that was not sent leaves a thread blocked for good.
 *   Blocking: arrived and install_held block for their ioctls (microseconds
 *   per page, notes' table); fail waits for installs already under way;
 *   close joins the fault thread (it wakes within its poll at once).
 */
#ifndef RDMIG_DATAPLANE_UFFD_H
#define RDMIG_DATAPLANE_UFFD_H

#include <stdbool.h>
#include <stdint.h>

#include "ranges.h"

/* Neighbours requested with a faulted page when the caller gives none. */
#define RDMIG__PC_PREFETCH_DEFAULT 15
#define RDMIG__PC_PREFETCH_MAX	   1024

/*
 * Called on the fault thread with `n` runs of outstanding pages that no one
 * asked for yet, in the order the faults came: for each fault the faulted
 * page first, then the outstanding pages among its `prefetch` successors
 * (pages already requested or arrived left out, so a window may split into
 * several runs; adjacent runs merge). The transport should send the first
 * page of each fault first. Returns 0, or -errno (fails the region).
 */
typedef int (*rdmig__pc_request_fn)(void *arg, const struct rdmig__range *runs, unsigned n);

struct rdmig__pc_params {
	void *guest;	    /* G: page-aligned, mapped by the VMM */
	uint64_t len;	    /* bytes, a multiple of the page size */
	int fd;		    /* memfd / shmem / hugetlbfs file backing G, or -1: copy fallback */
	uint64_t offset;    /* of G's first byte in fd (page-aligned) */
	uint32_t page_size; /* 0: from the fd (fstatfs) or the system page; else must match */
	uint32_t prefetch;  /* neighbours per fault; 0: RDMIG__PC_PREFETCH_DEFAULT */
	bool no_prefetch;   /* request only the faulted page */
	rdmig__pc_request_fn request;
	void *request_arg;
};

/* Counters since open; fault latency is fault event read to wake. */
struct rdmig__pc_stats {
	uint64_t npages;
	uint64_t outstanding;	   /* outstanding pages not installed yet */
	uint64_t faults;	   /* fault events read (one per blocked thread) */
	uint64_t faults_held;	   /* on a page not outstanding: installed at once */
	uint64_t faults_waiting;   /* on an outstanding page already requested or in flight */
	uint64_t faults_installed; /* on a page already installed: stale event or re-zapped PTE */
	uint64_t faults_failed;	   /* read after a failure: left blocked */
	uint64_t requests;	   /* request callback calls */
	uint64_t pages_requested;  /* pages asked for on demand (faulted + prefetched) */
	uint64_t pages_arrived;
	uint64_t pages_arrived_requested; /* of those, pages that had been requested */
	uint64_t pages_installed;	  /* outstanding pages installed (by arrived) */
	uint64_t pages_installed_held;	  /* held pages installed (by a fault or install_held) */
	uint64_t pages_present;		  /* found already mapped (EEXIST) and skipped */
	uint64_t install_calls;		  /* ioctls that installed at least one page */
	uint64_t install_call_pages;	  /* pages those calls installed */
	uint64_t wakes;			  /* UFFDIO_WAKE calls */
	uint64_t latency_count;		  /* faults whose wake was timed */
	uint64_t latency_p50_ns, latency_p99_ns, latency_max_ns;
	uint64_t blocktime_ns; /* sum over timed faults: thread time spent blocked */
	/*
	 * Wall time during which at least one thread was blocked on a fault
	 * (QEMU's overlapped blocktime counts only the time when every vCPU
	 * was: that needs the vCPU threads' ids, which the VMM does not give
	 * yet). Intervals still open are not counted.
	 */
	uint64_t blocked_any_ns;
	int error; /* 0, or the -errno the region failed with */
};

struct rdmig__pc;

/*
 * Opens a post-copy region (see the top of this file). Returns 0 with *out
 * set, or -errno with rdmig__err saying what is wrong or missing (fd kind,
 * sizes, alignment, kernel feature, userfaultfd permission); on failure
 * nothing is left open or mapped. The caller keeps its fd (rdmig maps it and
 * does not need it afterwards).
 */
int rdmig__pc_open(struct rdmig__pc **out, const struct rdmig__pc_params *p);
/* Where the transport writes page i: recv_base + i * page_size (R). */
void *rdmig__pc_recv_base(const struct rdmig__pc *pc);
uint32_t rdmig__pc_page_size(const struct rdmig__pc *pc);
uint64_t rdmig__pc_npages(const struct rdmig__pc *pc);
/* True while the region runs in the copy fallback (no fd). */
bool rdmig__pc_is_copy(const struct rdmig__pc *pc);

/*
 * Arms post-copy: bit i of `outstanding` (KVM layout, npages bits) set means
 * the destination does not hold page i. Drops those pages from G; from now
 * on they fault and are requested. 0, or -errno (-EALREADY: armed before;
 * -ECANCELED: failed). The request callback may run before arm returns.
 */
int rdmig__pc_arm(struct rdmig__pc *pc, const uint64_t *outstanding);

/*
 * Pages [first, first + count) were proved to have arrived in R: installs
 * them. 0; -EINVAL (out of the region); -EPROTO (a page not outstanding or
 * arrived before: the region fails, nothing of this call is installed);
 * -ECANCELED (the region failed before); -EIO and friends from the kernel
 * (the region fails). Installs what it can of a run before an error.
 */
int rdmig__pc_arrived(struct rdmig__pc *pc, uint64_t first, uint64_t count);

/*
 * Installs every held page not installed yet (absent from G): runs them in
 * big batches so that the guest does not fault on them one by one (a fault
 * costs about eight one-page installs, perf/rdmig-pcbench). Any thread, after
 * arm, typically right after resume while the push runs. A page already
 * present in G costs one failing ioctl (EEXIST) and is skipped. 0 or -errno.
 */
int rdmig__pc_install_held(struct rdmig__pc *pc);

/* Outstanding pages not installed yet (0: every page is in G). */
uint64_t rdmig__pc_outstanding(struct rdmig__pc *pc);

/*
 * Fails the region with `err` (a negative errno, e.g. -ECONNRESET): when it
 * returns, no install is under way and none will start. Idempotent (the
 * first error stays).
 */
void rdmig__pc_fail(struct rdmig__pc *pc, int err);

void rdmig__pc_stats(struct rdmig__pc *pc, struct rdmig__pc_stats *st);

/* Closes the region (see the top of this file); NULL is a no-op. */
void rdmig__pc_close(struct rdmig__pc *pc);

#endif /* RDMIG_DATAPLANE_UFFD_H */
