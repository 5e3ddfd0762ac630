/* SPDX-License-Identifier: MIT */
/*
 * Tests of the page scanner (dataplane/scan.h, scan*.c), run for every ISA
 * this CPU supports (the others are skipped with a note; the portable one
 * always runs): zero pages, a single non-zero byte anywhere, hashes equal
 * across ISAs and to a reference XXH3_128bits_withSecret() compiled here
 * with xxhash's portable scalar path, keys, page sizes 4 KiB to 2 MiB, the
 * batch form with a skip bitmap, and the ISA choice (RDMIG_SIMD, -ENOTSUP).
 * Every page under test ends right before a PROT_NONE page, so a read past
 * its end crashes instead of passing unnoticed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The reference: xxhash's scalar code, independent of every scanner path. */
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_SCALAR
#include <xxhash.h>

#include "common/util.h"
#include "dataplane/scan.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_PAGE      (2u << 20)
#define GUARD	      4096u

#define assert_contains(s, sub)                                            \
	do {                                                               \
		const char *s_ = (s);                                      \
		if (!strstr(s_, (sub)))                                    \
			fail_msg("'%s' does not contain '%s'", s_, (sub)); \
	} while (0)

static const uint32_t all_simd[] = { RDMIG_SIMD_AVX512, RDMIG_SIMD_AVX2, RDMIG_SIMD_SCALAR };
static const size_t page_sizes[] = { 4096, 16384, MAX_PAGE };

/* The scanners this CPU runs, in all_simd order; n_scanners of them. */
static struct rdmig__scanner scanners[ARRAY_SIZE(all_simd)];
static unsigned n_scanners;

/* MAX_PAGE + slack writable bytes, then a guard page. */
static uint8_t *area;
static size_t area_len;

static int map_area(void **state)
{
	uint8_t *p;

	(void)state;
	area_len = MAX_PAGE + 2 * GUARD;
	p = mmap(NULL, area_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	if (mprotect(p + MAX_PAGE + GUARD, GUARD, PROT_NONE))
		return -1;
	area = p;
	return 0;
}

static int unmap_area(void **state)
{
	(void)state;
	return munmap(area, area_len);
}

/* `len` zero bytes ending right before the guard page. */
static uint8_t *zero_buf(size_t len)
{
	uint8_t *p = area + MAX_PAGE + GUARD - len;

	assert_true(len <= MAX_PAGE + GUARD);
	memset(p, 0, len);
	return p;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = splitmix(&seed);

		memcpy(p + i, &v, RDMIG__MIN(8, len - i));
	}
}

static struct rdmig__hash reference(const struct rdmig__scan_key *k, const void *p, size_t len)
{
	XXH128_hash_t x = XXH3_128bits_withSecret(p, len, k->secret, sizeof(k->secret));

	return (struct rdmig__hash){ x.low64, x.high64 };
}

static void assert_hash_equal(struct rdmig__hash a, struct rdmig__hash b, const char *what,
			      uint32_t simd, size_t len)
{
	if (a.lo != b.lo || a.hi != b.hi)
		fail_msg("%s, %s, %zu bytes: %016llx%016llx != %016llx%016llx", what,
			 rdmig__simd_name(simd), len, (unsigned long long)a.hi,
			 (unsigned long long)a.lo, (unsigned long long)b.hi,
			 (unsigned long long)b.lo);
}

static const struct rdmig__hash sentinel = { 0x5a5a5a5a5a5a5a5aull, 0xa5a5a5a5a5a5a5a5ull };

/* One page through one scanner: checks page(), is_zero() and, for data, the hash. */
static void expect_kind(const struct rdmig__scanner *s, const struct rdmig__scan_key *k,
			const uint8_t *p, size_t page_size, int want, size_t at)
{
	struct rdmig__hash h = sentinel;
	int got = rdmig__scan_page(s, k, p, page_size, &h);

	if (got != want)
		fail_msg("%s, page %zu, byte %zu: kind %d, expected %d",
			 rdmig__simd_name(s->ops.simd), page_size, at, got, want);
	assert_int_equal(s->ops.is_zero(p, page_size), want == RDMIG__PAGE_ZERO);
	if (want == RDMIG__PAGE_ZERO) {
		/* h is only written for data pages */
		assert_memory_equal(&h, &sentinel, sizeof(h));
		return;
	}
	assert_hash_equal(h, reference(k, p, page_size), "page", s->ops.simd, page_size);
}

/* --- classification ------------------------------------------------------------ */

static void scan_zero_page_zero_every_size(void **state)
{
	struct rdmig__scan_key k;

	(void)state;
	rdmig__scan_key_from_seed(&k, 1);
	for (unsigned z = 0; z < ARRAY_SIZE(page_sizes); z++) {
		uint8_t *p = zero_buf(page_sizes[z]);

		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, page_sizes[z], RDMIG__PAGE_ZERO, 0);
	}
}

/* Every offset of a 4 KiB page, with values that catch sign-bit and per-byte slips. */
static void scan_one_nonzero_byte_any_offset_data(void **state)
{
	static const uint8_t values[] = { 0x01, 0x80, 0xff };
	struct rdmig__scan_key k;
	uint8_t *p = zero_buf(4096);

	(void)state;
	rdmig__scan_key_from_seed(&k, 2);
	for (size_t off = 0; off < 4096; off++) {
		p[off] = values[off % ARRAY_SIZE(values)];
		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, 4096, RDMIG__PAGE_DATA, off);
		p[off] = 0;
	}
	for (unsigned i = 0; i < n_scanners; i++)
		expect_kind(&scanners[i], &k, p, 4096, RDMIG__PAGE_ZERO, 0);
}

/* Larger pages: the first line, every 64-byte line edge of the first 1 KiB, each
 * 256-byte block's edges, and a spread of offsets through the page. */
static void scan_one_nonzero_byte_large_pages_data(void **state)
{
	struct rdmig__scan_key k;

	(void)state;
	rdmig__scan_key_from_seed(&k, 3);
	for (unsigned z = 1; z < ARRAY_SIZE(page_sizes); z++) {
		size_t size = page_sizes[z];
		uint8_t *p = zero_buf(size);
		size_t step = size > 16384 ? 4093 : 1;

		for (size_t off = 0; off < size; off += (off < 1024 ? 1 : step)) {
			p[off] = (uint8_t)(1u << (off % 8));
			for (unsigned i = 0; i < n_scanners; i++)
				expect_kind(&scanners[i], &k, p, size, RDMIG__PAGE_DATA, off);
			p[off] = 0;
		}
		for (size_t b = 256; b<size; b += size> 16384 ? 65536 + 256 : 256) {
			const size_t edges[] = { b - 1, b, b + 63, b + 64 };

			for (unsigned e = 0; e < ARRAY_SIZE(edges); e++) {
				p[edges[e]] = 0x80;
				for (unsigned i = 0; i < n_scanners; i++)
					expect_kind(&scanners[i], &k, p, size, RDMIG__PAGE_DATA,
						    edges[e]);
				p[edges[e]] = 0;
			}
		}
		p[size - 1] = 1; /* the very last byte */
		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, size, RDMIG__PAGE_DATA, size - 1);
		p[size - 1] = 0;
		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, size, RDMIG__PAGE_ZERO, 0);
	}
}

/* --- hashes -------------------------------------------------------------------- */

/* Random pages of every size: every ISA gives the reference hash (so the same hash). */
static void scan_random_pages_same_hash_every_isa(void **state)
{
	struct rdmig__scan_key k;

	(void)state;
	rdmig__scan_key_from_seed(&k, 4);
	for (unsigned z = 0; z < ARRAY_SIZE(page_sizes); z++) {
		for (uint64_t seed = 1; seed <= (page_sizes[z] > 16384 ? 3 : 40); seed++) {
			uint8_t *p = zero_buf(page_sizes[z]);

			fill_random(p, page_sizes[z], seed);
			for (unsigned i = 0; i < n_scanners; i++)
				expect_kind(&scanners[i], &k, p, page_sizes[z], RDMIG__PAGE_DATA,
					    0);
		}
	}
}

/* A page whose first line is zero and the rest is not (the full zero scan, then the hash). */
static void scan_zero_first_line_random_rest_data(void **state)
{
	struct rdmig__scan_key k;

	(void)state;
	rdmig__scan_key_from_seed(&k, 5);
	for (unsigned z = 0; z < ARRAY_SIZE(page_sizes); z++) {
		uint8_t *p = zero_buf(page_sizes[z]);

		fill_random(p + 64, page_sizes[z] - 64, z);
		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, page_sizes[z], RDMIG__PAGE_DATA, 64);
	}
}

/* The page pointer need not be aligned (the hash has no alignment assumption either). */
static void scan_unaligned_page_same_result(void **state)
{
	static const size_t shifts[] = { 1, 7, 8, 31, 32, 63 };
	struct rdmig__scan_key k;

	(void)state;
	rdmig__scan_key_from_seed(&k, 6);
	for (unsigned j = 0; j < ARRAY_SIZE(shifts); j++) {
		uint8_t *p = zero_buf(4096 + 64) + 64 - shifts[j];

		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, 4096, RDMIG__PAGE_ZERO, 0);
		fill_random(p, 4096, j);
		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, 4096, RDMIG__PAGE_DATA, 0);
		memset(p, 0, 4096);
		p[4095] = 2;
		for (unsigned i = 0; i < n_scanners; i++)
			expect_kind(&scanners[i], &k, p, 4096, RDMIG__PAGE_DATA, 4095);
	}
}

/* ops.hash takes any length: short, mid-size and long inputs all match the reference. */
static void scan_hash_any_length_matches_reference(void **state)
{
	static const size_t lens[] = { 0,   1,	 3,   8,   16,	 17,   64,   128,  129,
				       240, 241, 255, 256, 1000, 1024, 1025, 4096, 4097 };
	struct rdmig__scan_key k;
	uint8_t *p = zero_buf(8192);

	(void)state;
	rdmig__scan_key_from_seed(&k, 7);
	fill_random(p, 8192, 7);
	for (unsigned l = 0; l < ARRAY_SIZE(lens); l++) {
		/* ending at the guard: the last byte read is the last byte given */
		const uint8_t *q = p + 8192 - lens[l];

		for (unsigned i = 0; i < n_scanners; i++) {
			struct rdmig__hash h;

			scanners[i].ops.hash(&k, q, lens[l], &h);
			assert_hash_equal(h, reference(&k, q, lens[l]), "hash",
					  scanners[i].ops.simd, lens[l]);
		}
	}
}

/* --- keys ---------------------------------------------------------------------- */

static void scan_key_differs_hash_differs(void **state)
{
	struct rdmig__scan_key a, b, a2, r1, r2;
	uint8_t *p = zero_buf(4096);

	(void)state;
	rdmig__scan_key_from_seed(&a, 100);
	rdmig__scan_key_from_seed(&a2, 100);
	rdmig__scan_key_from_seed(&b, 101);
	assert_memory_equal(&a, &a2, sizeof(a)); /* reproducible */
	assert_memory_not_equal(&a, &b, sizeof(a));
	assert_int_equal(rdmig__scan_key_random(&r1), 0);
	assert_int_equal(rdmig__scan_key_random(&r2), 0);
	assert_memory_not_equal(&r1, &r2, sizeof(r1));
	assert_memory_not_equal(&r1, &a, sizeof(r1));

	fill_random(p, 4096, 8);
	for (unsigned i = 0; i < n_scanners; i++) {
		const struct rdmig__scan_key *keys[] = { &a, &b, &r1, &r2 };
		struct rdmig__hash h[ARRAY_SIZE(keys)];

		for (unsigned j = 0; j < ARRAY_SIZE(keys); j++) {
			assert_int_equal(rdmig__scan_page(&scanners[i], keys[j], p, 4096, &h[j]),
					 RDMIG__PAGE_DATA);
			assert_hash_equal(h[j], reference(keys[j], p, 4096), "key",
					  scanners[i].ops.simd, 4096);
		}
		for (unsigned j = 0; j < ARRAY_SIZE(keys); j++)
			for (unsigned m = j + 1; m < ARRAY_SIZE(keys); m++)
				assert_false(h[j].lo == h[m].lo && h[j].hi == h[m].hi);
	}
}

/* The seeded key is fixed forever: a change would silently change every test's hashes. */
static void scan_key_from_seed_stable(void **state)
{
	struct rdmig__scan_key k;
	uint8_t le[8] = { 42 };
	uint8_t want[RDMIG__SCAN_SECRET_SIZE];

	(void)state;
	rdmig__scan_key_from_seed(&k, 42);
	XXH3_generateSecret(want, sizeof(want), le, sizeof(le));
	assert_memory_equal(k.secret, want, sizeof(want));
}

/* --- batch --------------------------------------------------------------------- */

/* pages() equals page() page by page, honours the skip bitmap at an offset, counts data. */
static void scan_pages_batch_matches_single(void **state)
{
	enum {
		N = 200
	};
	static uint8_t kinds[N];
	static struct rdmig__hash hashes[N];
	const size_t size = 4096;
	uint64_t skip[8] = { 0 };
	const uint64_t skip_first = 70; /* not word-aligned */
	struct rdmig__scan_key k;
	uint8_t *base = area + MAX_PAGE + GUARD - N * size;
	size_t want_data = 0;
	uint64_t rng = 9;

	(void)state;
	assert_true(N * size <= MAX_PAGE + GUARD);
	rdmig__scan_key_from_seed(&k, 9);
	for (size_t i = 0; i < N; i++) {
		uint8_t *p = base + i * size;
		uint64_t r = splitmix(&rng);

		memset(p, 0, size);
		if (r & 1)
			fill_random(p, size, r);
		else if (r & 2)
			p[(r >> 8) % size] = 1;
		if ((r >> 4) % 3 == 0 || i == N / 2) {
			skip[(skip_first + i) / 64] |= 1ull << ((skip_first + i) % 64);
			/* a skipped page is never read: make one unreadable */
			if (i == N / 2)
				assert_int_equal(mprotect(p, size, PROT_NONE), 0);
		}
	}

	for (unsigned s = 0; s < n_scanners; s++) {
		size_t ndata;

		memset(kinds, 0xee, sizeof(kinds));
		for (size_t i = 0; i < N; i++)
			hashes[i] = sentinel;
		ndata = rdmig__scan_pages(&scanners[s], &k, base, size, N, skip, skip_first, kinds,
					  hashes);
		want_data = 0;
		for (size_t i = 0; i < N; i++) {
			const uint8_t *p = base + i * size;
			uint64_t bit = skip_first + i;
			struct rdmig__hash h = sentinel;

			if ((skip[bit / 64] >> (bit % 64)) & 1) {
				assert_int_equal(kinds[i], RDMIG__PAGE_SKIP);
				assert_memory_equal(&hashes[i], &sentinel, sizeof(h));
				continue;
			}
			assert_int_equal(kinds[i], rdmig__scan_page(&scanners[s], &k, p, size, &h));
			assert_memory_equal(&hashes[i], &h, sizeof(h));
			want_data += kinds[i] == RDMIG__PAGE_DATA;
		}
		assert_int_equal(ndata, want_data);
	}
	assert_true(want_data > N / 5 && want_data < N);
	assert_int_equal(mprotect(base + (N / 2) * size, size, PROT_READ | PROT_WRITE), 0);

	/* without a skip bitmap every page is read */
	for (unsigned s = 0; s < n_scanners; s++) {
		size_t ndata =
			rdmig__scan_pages(&scanners[s], &k, base, size, N, NULL, 0, kinds, hashes);
		size_t n = 0;

		for (size_t i = 0; i < N; i++) {
			assert_int_not_equal(kinds[i], RDMIG__PAGE_SKIP);
			n += kinds[i] == RDMIG__PAGE_DATA;
		}
		assert_int_equal(ndata, n);
	}
	/* n = 0 touches nothing */
	assert_int_equal(rdmig__scan_pages(&scanners[0], &k, NULL, size, 0, NULL, 0, NULL, NULL),
			 0);
}

/* --- choosing the ISA ---------------------------------------------------------- */

static void scan_simd_names(void **state)
{
	(void)state;
	assert_string_equal(rdmig__simd_name(RDMIG_SIMD_AUTO), "auto");
	assert_string_equal(rdmig__simd_name(RDMIG_SIMD_AVX512), "avx512");
	assert_string_equal(rdmig__simd_name(RDMIG_SIMD_AVX2), "avx2");
	assert_string_equal(rdmig__simd_name(RDMIG_SIMD_SCALAR), "scalar");
	assert_string_equal(rdmig__simd_name(4), "?");
	assert_string_equal(rdmig__simd_name(UINT32_MAX), "?");
}

#define M(x) (1u << RDMIG_SIMD_##x)

/* The choice on pretend CPUs: AUTO takes the best, a forced ISA must be there. */
static void scan_simd_pick_mapping(void **state)
{
	static const struct {
		uint32_t simd;
		unsigned mask;
		int ret;
		uint32_t chosen;
	} cases[] = {
		{ RDMIG_SIMD_AUTO, M(AVX512) | M(AVX2) | M(SCALAR), 0, RDMIG_SIMD_AVX512 },
		{ RDMIG_SIMD_AUTO, M(AVX2) | M(SCALAR), 0, RDMIG_SIMD_AVX2 },
		{ RDMIG_SIMD_AUTO, M(AVX512) | M(SCALAR), 0, RDMIG_SIMD_AVX512 },
		{ RDMIG_SIMD_AUTO, M(SCALAR), 0, RDMIG_SIMD_SCALAR },
		{ RDMIG_SIMD_AVX512, M(AVX512) | M(AVX2) | M(SCALAR), 0, RDMIG_SIMD_AVX512 },
		{ RDMIG_SIMD_AVX2, M(AVX512) | M(AVX2) | M(SCALAR), 0, RDMIG_SIMD_AVX2 },
		{ RDMIG_SIMD_SCALAR, M(AVX512) | M(AVX2) | M(SCALAR), 0, RDMIG_SIMD_SCALAR },
		{ RDMIG_SIMD_SCALAR, M(SCALAR), 0, RDMIG_SIMD_SCALAR },
		{ RDMIG_SIMD_AVX512, M(AVX2) | M(SCALAR), -ENOTSUP, 0 },
		{ RDMIG_SIMD_AVX512, M(SCALAR), -ENOTSUP, 0 },
		{ RDMIG_SIMD_AVX2, M(SCALAR), -ENOTSUP, 0 },
		{ RDMIG_SIMD_AVX2, M(AVX512) | M(SCALAR), -ENOTSUP, 0 },
		{ 4, M(AVX512) | M(AVX2) | M(SCALAR), -EINVAL, 0 },
		{ UINT32_MAX, M(SCALAR), -EINVAL, 0 },
	};

	(void)state;
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t chosen = 99;
		int ret;

		rdmig__err_clear();
		ret = rdmig__simd_pick(cases[i].simd, cases[i].mask, &chosen);
		if (ret != cases[i].ret)
			fail_msg("case %u: %d, expected %d (%s)", i, ret, cases[i].ret,
				 rdmig_last_error());
		if (!ret) {
			assert_int_equal(chosen, cases[i].chosen);
			continue;
		}
		assert_int_equal(chosen, 99); /* untouched on failure */
		assert_contains(rdmig_last_error(), "RDMIG_SIMD");
		if (ret == -ENOTSUP) {
			assert_contains(rdmig_last_error(), rdmig__simd_name(cases[i].simd));
			assert_contains(rdmig_last_error(),
					cases[i].simd == RDMIG_SIMD_AVX2 ? "AVX2" : "AVX-512");
		}
	}
}

/* On this CPU: AUTO is the best supported; forcing a supported one gives it; forcing
 * one it lacks is -ENOTSUP with nothing written. */
static void scan_scanner_init_this_cpu(void **state)
{
	unsigned mask = rdmig__simd_supported();
	struct rdmig__scanner s;

	(void)state;
	assert_true(mask & M(SCALAR));
	assert_int_equal(rdmig__scanner_init(&s, RDMIG_SIMD_AUTO), 0);
	assert_int_equal(s.ops.simd, scanners[0].ops.simd);
	for (unsigned i = 0; i < ARRAY_SIZE(all_simd); i++) {
		uint32_t simd = all_simd[i];

		memset(&s, 0xa5, sizeof(s));
		if (mask & (1u << simd)) {
			assert_int_equal(rdmig__scanner_init(&s, simd), 0);
			assert_int_equal(s.ops.simd, simd);
			assert_non_null(s.ops.page);
			assert_non_null(s.ops.pages);
			assert_non_null(s.ops.is_zero);
			assert_non_null(s.ops.hash);
		} else {
			struct rdmig__scanner before;

			memcpy(&before, &s, sizeof(s));
			assert_int_equal(rdmig__scanner_init(&s, simd), -ENOTSUP);
			assert_contains(rdmig_last_error(), "RDMIG_SIMD");
			assert_memory_equal(&s, &before, sizeof(s));
		}
	}
	assert_int_equal(rdmig__scanner_init(&s, 4), -EINVAL);
}

/* RDMIG_SIMD, through the configuration, forces the ISA the scanner runs. */
static void scan_simd_env_forces_isa(void **state)
{
	static const char *const values[] = { "auto", "avx512", "avx2", "scalar" };
	unsigned mask = rdmig__simd_supported();
	struct rdmig__config cfg;

	(void)state;
	for (uint32_t v = 0; v < ARRAY_SIZE(values); v++) {
		struct rdmig__scanner s;
		int ret;

		assert_int_equal(setenv("RDMIG_SIMD", values[v], 1), 0);
		assert_int_equal(rdmig__config_resolve(NULL, &cfg), 0);
		assert_int_equal(cfg.simd, v);
		ret = rdmig__scanner_init(&s, cfg.simd);
		if (v == RDMIG_SIMD_AUTO) {
			assert_int_equal(ret, 0);
			assert_int_equal(s.ops.simd, scanners[0].ops.simd);
		} else if (mask & (1u << v)) {
			assert_int_equal(ret, 0);
			assert_int_equal(s.ops.simd, v);
		} else {
			assert_int_equal(ret, -ENOTSUP);
			assert_contains(rdmig_last_error(), values[v]);
		}
	}
	assert_int_equal(setenv("RDMIG_SIMD", "sse", 1), 0);
	assert_int_equal(rdmig__config_resolve(NULL, &cfg), -EINVAL);
	assert_contains(rdmig_last_error(), "RDMIG_SIMD");
	unsetenv("RDMIG_SIMD");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(scan_zero_page_zero_every_size),
		cmocka_unit_test(scan_one_nonzero_byte_any_offset_data),
		cmocka_unit_test(scan_one_nonzero_byte_large_pages_data),
		cmocka_unit_test(scan_random_pages_same_hash_every_isa),
		cmocka_unit_test(scan_zero_first_line_random_rest_data),
		cmocka_unit_test(scan_unaligned_page_same_result),
		cmocka_unit_test(scan_hash_any_length_matches_reference),
		cmocka_unit_test(scan_key_differs_hash_differs),
		cmocka_unit_test(scan_key_from_seed_stable),
		cmocka_unit_test(scan_pages_batch_matches_single),
		cmocka_unit_test(scan_simd_names),
		cmocka_unit_test(scan_simd_pick_mapping),
		cmocka_unit_test(scan_scanner_init_this_cpu),
		cmocka_unit_test(scan_simd_env_forces_isa),
	};
	unsigned mask;

	unsetenv("RDMIG_SIMD");
	mask = rdmig__simd_supported();
	for (unsigned i = 0; i < ARRAY_SIZE(all_simd); i++) {
		if (!(mask & (1u << all_simd[i]))) {
			printf("# scan_test: this CPU lacks %s: its scanner is not tested here\n",
			       rdmig__simd_name(all_simd[i]));
			continue;
		}
		if (rdmig__scanner_init(&scanners[n_scanners], all_simd[i])) {
			fprintf(stderr, "scan_test: %s\n", rdmig_last_error());
			return 1;
		}
		n_scanners++;
	}
	printf("# scan_test: testing %u scanner(s):", n_scanners);
	for (unsigned i = 0; i < n_scanners; i++)
		printf(" %s", rdmig__simd_name(scanners[i].ops.simd));
	printf("\n");
	return cmocka_run_group_tests(tests, map_area, unmap_area);
}
