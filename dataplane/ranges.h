/* SPDX-License-Identifier: MIT */
/*
 * Chunking and coalescing: how a pass turns the VMM's dirty bitmaps into
 * whole-page ranges. Pure functions, unit-tested in tests/dataplane/.
 *
 * A region of `npages` pages is cut into chunks of `chunk_pages` pages (the
 * last one may be shorter); a worker takes one chunk at a time and turns the
 * dirty bits inside it into runs of consecutive dirty pages, each of which
 * becomes one RDMA WRITE. Everything is counted in pages, so no range can
 * start or end inside a page (DESIGN.md, invariant 5).
 */
#ifndef RDMIG_DATAPLANE_RANGES_H
#define RDMIG_DATAPLANE_RANGES_H

#include <stdbool.h>
#include <stdint.h>

/* Pages [first, first + count) of a region. */
struct rdmig__range {
	uint64_t first;
	uint64_t count;
};

/* How many chunks a region of npages pages splits into (0 for 0 pages). */
static inline uint64_t rdmig__chunk_count(uint64_t npages, uint32_t chunk_pages)
{
	return npages / chunk_pages + (npages % chunk_pages != 0);
}

/* The pages of chunk `index` of a region; index < rdmig__chunk_count(). */
static inline struct rdmig__range rdmig__chunk(uint64_t npages, uint32_t chunk_pages,
					       uint64_t index)
{
	struct rdmig__range r = { index * chunk_pages, chunk_pages };

	if (r.first + r.count > npages)
		r.count = npages - r.first;
	return r;
}

/*
 * Finds the first run of set bits in [*pos, end) of bitmap `bm` (KVM layout:
 * bit i is bit i % 64 of 64-bit word i / 64). Returns true with the run in
 * *run and *pos moved past it, or false when no bit is set before `end`.
 * Bits at or past `end` are never read as part of a run.
 */
bool rdmig__bitmap_next_run(const uint64_t *bm, uint64_t *pos, uint64_t end,
			    struct rdmig__range *run);

/*
 * The first bit in [first, end) set in `a` or, if `b` is not NULL, in `b`;
 * `end` if none. A word at a time, so a clean word costs a load and a
 * compare. `b` may change under us (the mismatch bitmaps): it is read
 * with relaxed atomics.
 */
uint64_t rdmig__bitmap_find2(const uint64_t *a, const uint64_t *b, uint64_t first, uint64_t end);

/*
 * The bits [pos, pos + 64) of `bm`, shifted down so that bit 0 is page
 * `pos`, with bits at or past `end` cleared. `pos` need not be a
 * multiple of 64.
 */
static inline uint64_t rdmig__bitmap_window(const uint64_t *bm, uint64_t pos, uint64_t end)
{
	uint64_t w = pos / 64, sh = pos % 64, v = bm[w] >> sh;

	if (sh && pos + 64 - sh < end)
		v |= bm[w + 1] << (64 - sh);
	if (end - pos < 64)
		v &= (1ull << (end - pos)) - 1;
	return v;
}

/* Number of set bits in [0, nbits). */
uint64_t rdmig__bitmap_count(const uint64_t *bm, uint64_t nbits);
/* Number of bits in [0, nbits) set in both a and b. */
uint64_t rdmig__bitmap_count_and(const uint64_t *a, const uint64_t *b, uint64_t nbits);

#endif /* RDMIG_DATAPLANE_RANGES_H */
