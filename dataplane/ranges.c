/* SPDX-License-Identifier: MIT */
/*
 * Bitmap scanning for coalescing (see ranges.h). Works a 64-bit word at a
 * time: a clean word costs one load and compare, a run is found with
 * count-trailing-zeros rather than bit by bit.
 */
#include <stddef.h>

#include "ranges.h"

/* Index of the first bit in [from, end) equal to `want`, or end. */
static uint64_t find_bit(const uint64_t *bm, uint64_t from, uint64_t end, bool want)
{
	while (from < end) {
		uint64_t word = bm[from / 64];

		if (!want)
			word = ~word;
		word &= ~0ull << (from % 64); /* drop bits below `from` */
		if (word) {
			uint64_t bit = (from & ~63ull) + (uint64_t)__builtin_ctzll(word);

			return bit < end ? bit : end;
		}
		from = (from & ~63ull) + 64;
	}
	return end;
}

bool rdmig__bitmap_next_run(const uint64_t *bm, uint64_t *pos, uint64_t end,
			    struct rdmig__range *run)
{
	uint64_t start = find_bit(bm, *pos, end, true);
	uint64_t stop;

	if (start >= end) {
		*pos = end;
		return false;
	}
	stop = find_bit(bm, start, end, false);
	run->first = start;
	run->count = stop - start;
	*pos = stop;
	return true;
}

uint64_t rdmig__bitmap_count_and(const uint64_t *a, const uint64_t *b, uint64_t nbits)
{
	uint64_t n = 0, full = nbits / 64;

	/* Clean words cost no popcount (a library call without -mpopcnt). */
	for (uint64_t i = 0; i < full; i++)
		if (a[i])
			n += (uint64_t)__builtin_popcountll(a[i] & (b ? b[i] : ~0ull));
	if (nbits % 64)
		n += (uint64_t)__builtin_popcountll(a[full] & (b ? b[full] : ~0ull) &
						    ((1ull << (nbits % 64)) - 1));
	return n;
}

uint64_t rdmig__bitmap_count(const uint64_t *bm, uint64_t nbits)
{
	return rdmig__bitmap_count_and(bm, NULL, nbits);
}

uint64_t rdmig__bitmap_find2(const uint64_t *a, const uint64_t *b, uint64_t first, uint64_t end)
{
	for (uint64_t w = first / 64; first < end; w++) {
		uint64_t v = a[w] | (b ? __atomic_load_n(&b[w], __ATOMIC_RELAXED) : 0);

		v &= ~0ull << (first % 64);
		if (v) {
			uint64_t bit = w * 64 + (uint64_t)__builtin_ctzll(v);

			return bit < end ? bit : end;
		}
		first = (w + 1) * 64;
	}
	return end;
}
