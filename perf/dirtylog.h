/* SPDX-License-Identifier: MIT */
/*
 * A dirty log from the kernel, for rdmig-perf: the pages of some ranges of
 * this process's memory written since the last sync, in KVM's bitmap layout
 * (bit p of word p / 64 for the page at offset p * 4096), without the
 * writer's help. Two methods:
 *
 * - soft-dirty: bit 55 of each range's /proc/self/pagemap entries, then
 *   "4" to /proc/self/clear_refs (which clears the bits of the whole
 *   process and write-protects its pages, so the next store faults and sets
 *   the bit again). Needs CONFIG_MEM_SOFT_DIRTY. The read and the clear are
 *   two steps: a store between them is lost, so the caller must stop the
 *   writers for the sync (dirtylog_atomic() is false).
 * - pagemap-scan: the ranges registered with a userfaultfd in write-protect
 *   mode with UFFD_FEATURE_WP_ASYNC (a store to a protected page lifts the
 *   protection in the fault handler, no fault reaches userspace) and
 *   protected; a sync is one PAGEMAP_SCAN ioctl per range asking for the
 *   pages no longer protected (PAGE_IS_WRITTEN) and protecting them again
 *   as it reports them (PM_SCAN_WP_MATCHING), under the page table lock:
 *   writers may keep storing. Needs Linux 6.7 or later.
 */
#ifndef RDMIG_PERF_DIRTYLOG_H
#define RDMIG_PERF_DIRTYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIRTYLOG_PAGE	    4096ull
#define DIRTYLOG_MAX_RANGES 16

enum dirtylog_method {
	DIRTYLOG_WRITER,       /* the writer logs its own stores (not this module) */
	DIRTYLOG_SOFT_DIRTY,   /* pagemap bit 55 and clear_refs */
	DIRTYLOG_PAGEMAP_SCAN, /* userfaultfd WP_ASYNC and PAGEMAP_SCAN */
	DIRTYLOG_AUTO,	       /* pagemap-scan if it works, else soft-dirty */
};

struct dirtylog_range {
	uint8_t *hva; /* page-aligned */
	uint64_t len; /* a multiple of DIRTYLOG_PAGE */
};

struct dirtylog {
	enum dirtylog_method method; /* soft-dirty or pagemap-scan once open */
	unsigned n;
	struct dirtylog_range r[DIRTYLOG_MAX_RANGES];
	int pagemap;	/* /proc/self/pagemap */
	int clear_refs; /* soft-dirty: /proc/self/clear_refs */
	int uffd;	/* pagemap-scan: the userfaultfd holding the registration */
	uint64_t *buf;	/* pagemap entries, or struct page_region for the scan */
	size_t buf_bytes;
	/* What the syncs cost: calls, time, bytes of ranges covered, pages found. */
	uint64_t syncs, sync_ns, scanned_bytes, dirty_pages;
};

const char *dirtylog_name(enum dirtylog_method m);

/* "writer", "soft-dirty", "pagemap-scan" or "auto"; -1 for anything else. */
int dirtylog_parse(const char *s, enum dirtylog_method *m);

/*
 * MAP_PRIVATE or MAP_SHARED: how to map memory that method m logs. For
 * soft-dirty, shared: clear_refs leaves the bit set on a page pinned for
 * DMA in a private mapping (write-protecting it would let a write fault
 * copy the page away from the pin, fs/proc/task_mmu.c pte_is_pinned()),
 * and an RDMA memory registration pins every page: a private guest would
 * be all dirty at every sync. A shared mapping never copies on write, so
 * its pinned pages are cleared like the others.
 */
int dirtylog_mmap_flags(enum dirtylog_method m);

/*
 * Whether method m works here, tried on a scratch mapping (pages written
 * must be reported exactly, then none); *got gets the method (auto:
 * pagemap-scan, else soft-dirty). Returns 0 or a negative errno with the
 * reason in err (-ENOTSUP: the kernel lacks it; -EIO: it answered wrong).
 */
int dirtylog_probe(enum dirtylog_method m, enum dirtylog_method *got, char *err, size_t errlen);

/*
 * Starts logging the ranges: a sync reports every page written after this
 * returns. DIRTYLOG_AUTO takes pagemap-scan if a trial on a scratch mapping
 * works, else soft-dirty if that does; d->method says which. Returns 0, or
 * a negative errno with the reason in err (a method the kernel lacks:
 * -ENOTSUP).
 */
int dirtylog_open(struct dirtylog *d, enum dirtylog_method m, unsigned n,
		  const struct dirtylog_range *r, char *err, size_t errlen);

/*
 * ORs the pages written since the last sync (or dirtylog_open) into
 * bitmap[i] for range i and starts the next interval; *found (may be NULL)
 * gets how many pages it reported. Returns 0 or a negative errno (err says
 * what failed).
 */
int dirtylog_sync(struct dirtylog *d, uint64_t *const *bitmap, uint64_t *found, char *err,
		  size_t errlen);

/* Whether a sync may run while writers store (false: stop them meanwhile). */
bool dirtylog_atomic(const struct dirtylog *d);

/* Ends logging (pagemap-scan: unregisters) and frees what open took. */
void dirtylog_close(struct dirtylog *d);

#endif
