/* SPDX-License-Identifier: MIT */
/*
 * Tests of chunking and coalescing (dataplane/ranges.h, ranges.c): how a
 * region is cut into chunks, and how the runs of dirty pages found in a
 * window of a KVM-layout bitmap compare with a naive bit-by-bit scan.
 * Bitmaps end right before a PROT_NONE page, so a read past the last word
 * the window needs crashes the test instead of passing unnoticed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dataplane/ranges.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define GUARD_WORDS   4096 /* bitmap capacity before the guard page: 256 Ki bits */
#define MAX_RUNS      (GUARD_WORDS * 64 / 2 + 1)

struct runs {
	unsigned n;
	struct rdmig__range r[MAX_RUNS];
};

static struct runs got, want;

/* A writable area of GUARD_WORDS words followed by an inaccessible page. */
static uint64_t *area;
static size_t area_len;

static int map_area(void **state)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *p;

	(void)state;
	area_len = GUARD_WORDS * sizeof(uint64_t) + (size_t)pg;
	p = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	if (mprotect(p + GUARD_WORDS * sizeof(uint64_t), (size_t)pg, PROT_NONE))
		return -1;
	area = (uint64_t *)(void *)p;
	return 0;
}

static int unmap_area(void **state)
{
	(void)state;
	return munmap(area, area_len);
}

/*
 * A bitmap of `words` words whose last word is the last one before the guard
 * page, all bits clear.
 */
static uint64_t *bitmap(size_t words)
{
	uint64_t *bm = area + GUARD_WORDS - words;

	assert_true(words <= GUARD_WORDS);
	memset(bm, 0, words * sizeof(uint64_t));
	return bm;
}

static void set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

static bool test_bit(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

/* Every run in [start, end), through rdmig__bitmap_next_run(), checking how pos moves. */
static void scan(const uint64_t *bm, uint64_t start, uint64_t end, struct runs *out)
{
	uint64_t pos = start;
	struct rdmig__range r;

	out->n = 0;
	while (rdmig__bitmap_next_run(bm, &pos, end, &r)) {
		assert_true(out->n < MAX_RUNS);
		assert_true(r.count > 0);
		assert_int_equal(pos, r.first + r.count);
		assert_true(pos <= end);
		out->r[out->n++] = r;
	}
	assert_int_equal(pos, end);
}

/* The reference: bit by bit. */
static void naive(const uint64_t *bm, uint64_t start, uint64_t end, struct runs *out)
{
	out->n = 0;
	for (uint64_t i = start; i < end; i++) {
		if (!test_bit(bm, i))
			continue;
		if (out->n && out->r[out->n - 1].first + out->r[out->n - 1].count == i) {
			out->r[out->n - 1].count++;
		} else {
			assert_true(out->n < MAX_RUNS);
			out->r[out->n++] = (struct rdmig__range){ i, 1 };
		}
	}
}

static void assert_runs_equal(const struct runs *a, const struct runs *b)
{
	assert_int_equal(a->n, b->n);
	for (unsigned i = 0; i < a->n; i++) {
		assert_int_equal(a->r[i].first, b->r[i].first);
		assert_int_equal(a->r[i].count, b->r[i].count);
	}
}

/* Scans [start, end) and expects exactly the runs given as (first, count) pairs. */
static void expect_runs(const uint64_t *bm, uint64_t start, uint64_t end, unsigned n,
			const uint64_t *pairs)
{
	scan(bm, start, end, &got);
	want.n = n;
	for (unsigned i = 0; i < n; i++)
		want.r[i] = (struct rdmig__range){ pairs[2 * i], pairs[2 * i + 1] };
	assert_runs_equal(&got, &want);
}

/* --- chunks ------------------------------------------------------------------ */

/* The chunks of a region tile it: contiguous, in order, none empty, all but the last full. */
static void assert_chunks_tile(uint64_t npages, uint32_t chunk_pages)
{
	uint64_t n = rdmig__chunk_count(npages, chunk_pages);
	uint64_t next = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct rdmig__range r = rdmig__chunk(npages, chunk_pages, i);

		assert_int_equal(r.first, next);
		assert_true(r.count > 0);
		if (i + 1 < n)
			assert_int_equal(r.count, chunk_pages);
		else
			assert_true(r.count <= chunk_pages);
		next = r.first + r.count;
	}
	assert_int_equal(next, npages);
}

static void ranges_chunk_exact_multiple_all_full(void **state)
{
	struct rdmig__range r;

	(void)state;
	assert_int_equal(rdmig__chunk_count(1024, 256), 4);
	r = rdmig__chunk(1024, 256, 3);
	assert_int_equal(r.first, 768);
	assert_int_equal(r.count, 256);
	assert_chunks_tile(1024, 256);
}

static void ranges_chunk_remainder_short_last_chunk(void **state)
{
	struct rdmig__range r;

	(void)state;
	assert_int_equal(rdmig__chunk_count(1025, 256), 5);
	r = rdmig__chunk(1025, 256, 4);
	assert_int_equal(r.first, 1024);
	assert_int_equal(r.count, 1);
	assert_int_equal(rdmig__chunk_count(1279, 256), 5);
	r = rdmig__chunk(1279, 256, 4);
	assert_int_equal(r.first, 1024);
	assert_int_equal(r.count, 255);
	assert_chunks_tile(1025, 256);
	assert_chunks_tile(1279, 256);
}

static void ranges_chunk_larger_than_region_one_chunk(void **state)
{
	struct rdmig__range r;

	(void)state;
	assert_int_equal(rdmig__chunk_count(100, 256), 1);
	r = rdmig__chunk(100, 256, 0);
	assert_int_equal(r.first, 0);
	assert_int_equal(r.count, 100);
	assert_int_equal(rdmig__chunk_count(1, 1u << 20), 1);
	r = rdmig__chunk(1, 1u << 20, 0);
	assert_int_equal(r.count, 1);
}

static void ranges_chunk_one_page_chunks_one_per_page(void **state)
{
	(void)state;
	assert_int_equal(rdmig__chunk_count(777, 1), 777);
	for (uint64_t i = 0; i < 777; i++) {
		struct rdmig__range r = rdmig__chunk(777, 1, i);

		assert_int_equal(r.first, i);
		assert_int_equal(r.count, 1);
	}
	assert_chunks_tile(777, 1);
}

static void ranges_chunk_zero_pages_no_chunks(void **state)
{
	(void)state;
	assert_int_equal(rdmig__chunk_count(0, 256), 0);
	assert_int_equal(rdmig__chunk_count(0, 1), 0);
}

/* A 64 TiB region of 4 KiB pages: page numbers past 32 bits must not be cut. */
static void ranges_chunk_huge_region_no_overflow(void **state)
{
	const uint64_t npages = (1ull << 34) + 3;
	uint64_t n;
	struct rdmig__range r;

	(void)state;
	n = rdmig__chunk_count(npages, 1);
	assert_int_equal(n, npages);
	r = rdmig__chunk(npages, 1, n - 1);
	assert_int_equal(r.first, npages - 1);
	assert_int_equal(r.count, 1);
	n = rdmig__chunk_count(npages, 1u << 20);
	assert_int_equal(n, (1ull << 34) / (1u << 20) + 1);
	r = rdmig__chunk(npages, 1u << 20, n - 1);
	assert_int_equal(r.first, npages - 3);
	assert_int_equal(r.count, 3);
}

static void ranges_chunk_many_sizes_tile_region(void **state)
{
	static const uint32_t sizes[] = { 1, 2, 3, 7, 63, 64, 65, 256, 1000, 4096 };

	(void)state;
	for (unsigned s = 0; s < ARRAY_SIZE(sizes); s++)
		for (uint64_t npages = 1; npages <= 3000; npages += 37)
			assert_chunks_tile(npages, sizes[s]);
}

/* --- runs -------------------------------------------------------------------- */

static void ranges_next_run_empty_bitmap_no_run(void **state)
{
	uint64_t *bm = bitmap(4);
	struct rdmig__range r = { 99, 99 };
	uint64_t pos = 0;

	(void)state;
	assert_false(rdmig__bitmap_next_run(bm, &pos, 256, &r));
	assert_int_equal(pos, 256);
	/* an empty window reads nothing and finds nothing, even at the very end */
	pos = 256;
	assert_false(rdmig__bitmap_next_run(bm, &pos, 256, &r));
	assert_int_equal(pos, 256);
	pos = 0;
	assert_false(rdmig__bitmap_next_run(bm, &pos, 0, &r));
	assert_int_equal(pos, 0);
}

/* Every bit set, including bits past the end in the last word: one run, cut at end. */
static void ranges_next_run_full_bitmap_one_run(void **state)
{
	static const uint64_t ends[] = { 1, 63, 64, 65, 200, 256 };

	(void)state;
	for (unsigned i = 0; i < ARRAY_SIZE(ends); i++) {
		size_t words = (ends[i] + 63) / 64;
		uint64_t *bm = bitmap(words);
		uint64_t pair[2] = { 0, ends[i] };

		memset(bm, 0xff, words * sizeof(uint64_t));
		expect_runs(bm, 0, ends[i], 1, pair);
	}
}

static void ranges_next_run_single_bit_at_edges_found(void **state)
{
	uint64_t *bm;

	(void)state;
	/* page 0 */
	bm = bitmap(2);
	set_bit(bm, 0);
	expect_runs(bm, 0, 100, 1, (const uint64_t[]){ 0, 1 });
	/* the last page of a region whose end is inside a word */
	bm = bitmap(2);
	set_bit(bm, 99);
	expect_runs(bm, 0, 100, 1, (const uint64_t[]){ 99, 1 });
	/* the last page of a region that ends on a word boundary */
	bm = bitmap(2);
	set_bit(bm, 127);
	expect_runs(bm, 0, 128, 1, (const uint64_t[]){ 127, 1 });
	/* bit 63 alone, bit 64 alone, both: one run across the word boundary */
	bm = bitmap(2);
	set_bit(bm, 63);
	expect_runs(bm, 0, 128, 1, (const uint64_t[]){ 63, 1 });
	bm = bitmap(2);
	set_bit(bm, 64);
	expect_runs(bm, 0, 128, 1, (const uint64_t[]){ 64, 1 });
	bm = bitmap(2);
	set_bit(bm, 63);
	set_bit(bm, 64);
	expect_runs(bm, 0, 128, 1, (const uint64_t[]){ 63, 2 });
	/* first and last page: two runs */
	bm = bitmap(3);
	set_bit(bm, 0);
	set_bit(bm, 191);
	expect_runs(bm, 0, 192, 2, (const uint64_t[]){ 0, 1, 191, 1 });
}

/* Bits at or past `end` in the last, partial word are not part of any run. */
static void ranges_next_run_bits_past_end_ignored(void **state)
{
	uint64_t *bm;

	(void)state;
	/* only bits past the end: nothing */
	bm = bitmap(2);
	bm[1] = ~0ull << 6; /* bits 70..127 */
	expect_runs(bm, 0, 70, 0, NULL);
	/* a run that reaches the end stops there */
	bm = bitmap(2);
	bm[1] = ~0ull; /* bits 64..127 */
	expect_runs(bm, 0, 70, 1, (const uint64_t[]){ 64, 6 });
	/* a run ending exactly at end - 1, then a clear bit at end, then set bits */
	bm = bitmap(2);
	bm[1] = 0x3full | (~0ull << 7); /* 64..69, 71..127 */
	expect_runs(bm, 0, 71, 1, (const uint64_t[]){ 64, 6 });
	/* end inside the first word */
	bm = bitmap(1);
	bm[0] = ~0ull;
	expect_runs(bm, 0, 5, 1, (const uint64_t[]){ 0, 5 });
}

static void ranges_next_run_spanning_words_one_run(void **state)
{
	uint64_t *bm = bitmap(8);

	(void)state;
	for (uint64_t i = 10; i <= 200; i++)
		set_bit(bm, i);
	for (uint64_t i = 256; i < 512; i++)
		set_bit(bm, i); /* four whole words */
	expect_runs(bm, 0, 512, 2, (const uint64_t[]){ 10, 191, 256, 256 });
}

static void ranges_next_run_alternating_bits_one_page_runs(void **state)
{
	uint64_t *bm = bitmap(4);
	struct rdmig__range r;
	uint64_t pos = 0;
	unsigned n = 0;

	(void)state;
	for (unsigned w = 0; w < 4; w++)
		bm[w] = 0x5555555555555555ull;
	while (rdmig__bitmap_next_run(bm, &pos, 256, &r)) {
		assert_int_equal(r.first, 2 * n);
		assert_int_equal(r.count, 1);
		n++;
	}
	assert_int_equal(n, 128);

	for (unsigned w = 0; w < 4; w++)
		bm[w] = 0xaaaaaaaaaaaaaaaaull;
	pos = 0;
	n = 0;
	while (rdmig__bitmap_next_run(bm, &pos, 256, &r)) {
		assert_int_equal(r.first, 2 * n + 1);
		assert_int_equal(r.count, 1);
		n++;
	}
	assert_int_equal(n, 128);
}

/* A window not starting at 0 clips runs on both sides, as a chunk does. */
static void ranges_next_run_window_clips_runs(void **state)
{
	uint64_t *bm = bitmap(8);

	(void)state;
	memset(bm, 0xff, 8 * sizeof(uint64_t));
	expect_runs(bm, 100, 300, 1, (const uint64_t[]){ 100, 200 });
	expect_runs(bm, 64, 128, 1, (const uint64_t[]){ 64, 64 });
	expect_runs(bm, 511, 512, 1, (const uint64_t[]){ 511, 1 });

	/* a run from 90 to 140 seen through [100, 130) and [130, 200) */
	memset(bm, 0, 8 * sizeof(uint64_t));
	for (uint64_t i = 90; i < 140; i++)
		set_bit(bm, i);
	set_bit(bm, 150);
	expect_runs(bm, 100, 130, 1, (const uint64_t[]){ 100, 30 });
	expect_runs(bm, 130, 200, 2, (const uint64_t[]){ 130, 10, 150, 1 });
	/* and nothing through a window just past it */
	expect_runs(bm, 151, 512, 0, NULL);
}

/* Scanning chunk by chunk breaks runs at chunk boundaries and loses nothing. */
static void ranges_next_run_per_chunk_covers_region(void **state)
{
	const uint64_t npages = 1000;
	const uint32_t chunk = 256;
	uint64_t *bm = bitmap((npages + 63) / 64);
	uint64_t total = 0;

	(void)state;
	memset(bm, 0xff, (npages + 63) / 64 * sizeof(uint64_t));
	assert_int_equal(rdmig__chunk_count(npages, chunk), 4);
	for (uint64_t c = 0; c < 4; c++) {
		struct rdmig__range ch = rdmig__chunk(npages, chunk, c);

		scan(bm, ch.first, ch.first + ch.count, &got);
		assert_int_equal(got.n, 1);
		assert_int_equal(got.r[0].first, ch.first);
		assert_int_equal(got.r[0].count, ch.count);
		total += got.r[0].count;
	}
	assert_int_equal(total, npages);
}

/* xorshift64*: fixed seed, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* A random word with density about 1/2, 1/8, 7/8, 1/64 or 63/64, or all clear / all set. */
static uint64_t random_word(unsigned kind)
{
	uint64_t a = rnd(), b = rnd(), c = rnd();

	switch (kind % 7) {
	case 0:
		return a;
	case 1:
		return a & b & c;
	case 2:
		return a | b | c;
	case 3:
		return (a & b & c & rnd() & rnd() & rnd());
	case 4:
		return ~(a & b & c & rnd() & rnd() & rnd());
	case 5:
		return 0;
	default:
		return ~0ull;
	}
}

static void ranges_next_run_random_bitmaps_match_naive_scan(void **state)
{
	(void)state;
	for (unsigned iter = 0; iter < 5000; iter++) {
		uint64_t nbits = 1 + rnd() % (iter % 10 == 0 ? 64 * GUARD_WORDS : 2000);
		uint64_t start = rnd() % (nbits + 1);
		uint64_t end = iter % 2 ? nbits : start + rnd() % (nbits - start + 1);
		/*
		 * Exactly the words the window needs, the last one right before
		 * the guard page; its bits past `end` are random like the rest
		 * and must be ignored.
		 */
		size_t words = (size_t)((end + 63) / 64);
		uint64_t *bm = bitmap(words);
		unsigned kind = (unsigned)rnd();

		/* one density per bitmap, or a mix word by word */
		for (size_t w = 0; w < words; w++)
			bm[w] = random_word(iter % 3 ? kind : (unsigned)rnd());

		scan(bm, start, end, &got);
		naive(bm, start, end, &want);
		if (got.n != want.n)
			fail_msg("iteration %u [%llu, %llu): %u runs, expected %u", iter,
				 (unsigned long long)start, (unsigned long long)end, got.n, want.n);
		assert_runs_equal(&got, &want);
	}
}

/* --- count ------------------------------------------------------------------- */

static void ranges_count_partial_words_counts_only_nbits(void **state)
{
	uint64_t *bm = bitmap(3);

	(void)state;
	memset(bm, 0xff, 3 * sizeof(uint64_t));
	assert_int_equal(rdmig__bitmap_count(bm, 0), 0);
	assert_int_equal(rdmig__bitmap_count(bm, 1), 1);
	assert_int_equal(rdmig__bitmap_count(bm, 63), 63);
	assert_int_equal(rdmig__bitmap_count(bm, 64), 64);
	assert_int_equal(rdmig__bitmap_count(bm, 65), 65);
	assert_int_equal(rdmig__bitmap_count(bm, 130), 130);
	assert_int_equal(rdmig__bitmap_count(bm, 192), 192);

	bm = bitmap(2);
	bm[0] = 1ull << 63;
	bm[1] = 1ull | 1ull << 5 | 1ull << 63;
	assert_int_equal(rdmig__bitmap_count(bm, 63), 0);
	assert_int_equal(rdmig__bitmap_count(bm, 64), 1);
	assert_int_equal(rdmig__bitmap_count(bm, 65), 2);
	assert_int_equal(rdmig__bitmap_count(bm, 69), 2);
	assert_int_equal(rdmig__bitmap_count(bm, 70), 3);
	assert_int_equal(rdmig__bitmap_count(bm, 127), 3);
	assert_int_equal(rdmig__bitmap_count(bm, 128), 4);
}

static void ranges_count_random_bitmaps_match_naive_count(void **state)
{
	(void)state;
	for (unsigned iter = 0; iter < 2000; iter++) {
		uint64_t nbits = rnd() % 5000;
		size_t words = (size_t)((nbits + 63) / 64);
		uint64_t *bm = bitmap(words);
		uint64_t n = 0;

		for (size_t w = 0; w < words; w++)
			bm[w] = random_word((unsigned)rnd());
		for (uint64_t i = 0; i < nbits; i++)
			n += test_bit(bm, i);
		assert_int_equal(rdmig__bitmap_count(bm, nbits), n);
	}
}

/* Bits set in both bitmaps, partial last word included, beyond it ignored. */
static void ranges_count_and_counts_common_bits_within_nbits(void **state)
{
	const uint64_t a[2] = { 0xff00ff00ff00ff00ull, ~0ull };
	const uint64_t b[2] = { 0x0ff00ff00ff00ff0ull, 0x5ull };

	(void)state;
	assert_int_equal(rdmig__bitmap_count_and(a, b, 128), 16 + 2);
	assert_int_equal(rdmig__bitmap_count_and(a, b, 64), 16);
	assert_int_equal(rdmig__bitmap_count_and(a, b, 65), 17);
	assert_int_equal(rdmig__bitmap_count_and(a, b, 66), 17); /* bit 65: b is 0 */
	assert_int_equal(rdmig__bitmap_count_and(a, b, 0), 0);
	assert_int_equal(rdmig__bitmap_count_and(a, NULL, 72), 32 + 8);
}

/* --- find2 and window: the pass's word-at-a-time walks ---------------------- */

static void ranges_find2_empty_bitmaps_return_end(void **state)
{
	uint64_t *a = bitmap(8);
	static uint64_t b[8];

	(void)state;
	memset(b, 0, sizeof(b));
	assert_int_equal(rdmig__bitmap_find2(a, NULL, 0, 512), 512);
	assert_int_equal(rdmig__bitmap_find2(a, b, 3, 500), 500);
	assert_int_equal(rdmig__bitmap_find2(a, b, 7, 7), 7);
}

static void ranges_find2_bit_in_either_found_first(void **state)
{
	uint64_t *a = bitmap(8);
	static uint64_t b[8];

	(void)state;
	memset(b, 0, sizeof(b));
	set_bit(a, 300);
	set_bit(b, 200);
	assert_int_equal(rdmig__bitmap_find2(a, NULL, 0, 512), 300);
	assert_int_equal(rdmig__bitmap_find2(a, b, 0, 512), 200);
	assert_int_equal(rdmig__bitmap_find2(a, b, 201, 512), 300);
	/* A bit at or past `end` is not found, nor one before `first`. */
	assert_int_equal(rdmig__bitmap_find2(a, b, 201, 300), 300);
	assert_int_equal(rdmig__bitmap_find2(a, b, 301, 512), 512);
}

static void ranges_find2_random_bitmaps_match_naive_scan(void **state)
{
	static uint64_t b[GUARD_WORDS];

	(void)state;
	for (unsigned iter = 0; iter < 5000; iter++) {
		uint64_t nbits = 1 + rnd() % (iter % 10 == 0 ? 64 * GUARD_WORDS : 2000);
		uint64_t start = rnd() % (nbits + 1);
		uint64_t end = start + rnd() % (nbits - start + 1);
		size_t words = (size_t)((end + 63) / 64);
		uint64_t *a = bitmap(words), expect = end;
		bool with_b = iter % 2;

		/* Sparse: most words clean, as in a pass with little dirty. */
		for (size_t w = 0; w < words; w++) {
			a[w] = rnd() % 16 == 0 ? random_word((unsigned)rnd()) : 0;
			b[w] = rnd() % 32 == 0 ? random_word((unsigned)rnd()) : 0;
		}
		for (uint64_t i = start; i < end; i++)
			if (test_bit(a, i) || (with_b && test_bit(b, i))) {
				expect = i;
				break;
			}
		if (rdmig__bitmap_find2(a, with_b ? b : NULL, start, end) != expect)
			fail_msg("iteration %u [%llu, %llu): found %llu, expected %llu", iter,
				 (unsigned long long)start, (unsigned long long)end,
				 (unsigned long long)rdmig__bitmap_find2(a, with_b ? b : NULL,
									 start, end),
				 (unsigned long long)expect);
	}
}

static void ranges_window_random_offsets_match_naive_bits(void **state)
{
	(void)state;
	for (unsigned iter = 0; iter < 20000; iter++) {
		uint64_t nbits = 1 + rnd() % 2000;
		uint64_t pos = rnd() % nbits;
		uint64_t end = pos + 1 + rnd() % (nbits - pos);
		/* The words up to `end` only: the window must not read past them. */
		size_t words = (size_t)((end + 63) / 64);
		uint64_t *bm = bitmap(words), seen, expect = 0;

		for (size_t w = 0; w < words; w++)
			bm[w] = random_word((unsigned)rnd());
		for (uint64_t i = pos; i < end && i < pos + 64; i++)
			expect |= (uint64_t)test_bit(bm, i) << (i - pos);
		seen = rdmig__bitmap_window(bm, pos, end);
		if (seen != expect)
			fail_msg("iteration %u pos %llu end %llu: 0x%llx, expected 0x%llx", iter,
				 (unsigned long long)pos, (unsigned long long)end,
				 (unsigned long long)seen, (unsigned long long)expect);
	}
}

static void ranges_count_sparse_bitmap_counts_set_bits(void **state)
{
	uint64_t *bm = bitmap(1024);

	(void)state;
	set_bit(bm, 5);
	set_bit(bm, 64 * 700 + 3);
	set_bit(bm, 64 * 1023 + 63);
	assert_int_equal(rdmig__bitmap_count(bm, 64 * 1024), 3);
	assert_int_equal(rdmig__bitmap_count(bm, 64 * 1023 + 63), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ranges_chunk_exact_multiple_all_full),
		cmocka_unit_test(ranges_chunk_remainder_short_last_chunk),
		cmocka_unit_test(ranges_chunk_larger_than_region_one_chunk),
		cmocka_unit_test(ranges_chunk_one_page_chunks_one_per_page),
		cmocka_unit_test(ranges_chunk_zero_pages_no_chunks),
		cmocka_unit_test(ranges_chunk_huge_region_no_overflow),
		cmocka_unit_test(ranges_chunk_many_sizes_tile_region),
		cmocka_unit_test(ranges_next_run_empty_bitmap_no_run),
		cmocka_unit_test(ranges_next_run_full_bitmap_one_run),
		cmocka_unit_test(ranges_next_run_single_bit_at_edges_found),
		cmocka_unit_test(ranges_next_run_bits_past_end_ignored),
		cmocka_unit_test(ranges_next_run_spanning_words_one_run),
		cmocka_unit_test(ranges_next_run_alternating_bits_one_page_runs),
		cmocka_unit_test(ranges_next_run_window_clips_runs),
		cmocka_unit_test(ranges_next_run_per_chunk_covers_region),
		cmocka_unit_test(ranges_next_run_random_bitmaps_match_naive_scan),
		cmocka_unit_test(ranges_count_partial_words_counts_only_nbits),
		cmocka_unit_test(ranges_count_random_bitmaps_match_naive_count),
		cmocka_unit_test(ranges_count_and_counts_common_bits_within_nbits),
		cmocka_unit_test(ranges_find2_empty_bitmaps_return_end),
		cmocka_unit_test(ranges_find2_bit_in_either_found_first),
		cmocka_unit_test(ranges_find2_random_bitmaps_match_naive_scan),
		cmocka_unit_test(ranges_window_random_offsets_match_naive_bits),
		cmocka_unit_test(ranges_count_sparse_bitmap_counts_set_bits),
	};

	return cmocka_run_group_tests(tests, map_area, unmap_area);
}
