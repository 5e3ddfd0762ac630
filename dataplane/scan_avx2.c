/* SPDX-License-Identifier: MIT */
/*
 * The AVX2 scanner. This file alone is compiled with -mavx2 (CMakeLists.txt),
 * so xxhash.h's AVX2 path is the one inlined here; rdmig__scanner_init()
 * uses it only on a CPU that has AVX2.
 */
#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__)
#if !defined(__AVX2__)
#error "scan_avx2.c must be compiled with -mavx2"
#endif

#include <immintrin.h>

#define XXH_INLINE_ALL
/*
 * XXH3 prefetches this far ahead of the stripe it hashes (xxhash.h: 512 for
 * AVX-512, 384 otherwise). From DRAM, 2 KiB ahead measured a few per cent
 * faster for 4 KiB pages (rdmig-scanbench); at the end of a page it runs into
 * the next one, which the batch form scans next.
 */
#define XXH_PREFETCH_DIST 2048
#define XXH_VECTOR	  XXH_AVX2
#include <xxhash.h>

#include "scan.h"

static inline __m256i load256(const uint8_t *p)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

static inline bool first_line_zero(const uint8_t *p)
{
	__m256i a = _mm256_or_si256(load256(p), load256(p + 32));

	return _mm256_testz_si256(a, a);
}

static inline bool lines_1_3_zero(const uint8_t *p)
{
	__m256i a = _mm256_or_si256(_mm256_or_si256(load256(p + 64), load256(p + 96)),
				    _mm256_or_si256(load256(p + 128), load256(p + 160)));

	a = _mm256_or_si256(a, _mm256_or_si256(load256(p + 192), load256(p + 224)));
	return _mm256_testz_si256(a, a);
}

static inline bool block_zero(const uint8_t *p)
{
	__m256i a = _mm256_or_si256(load256(p), load256(p + 32));
	__m256i b = _mm256_or_si256(load256(p + 64), load256(p + 96));
	__m256i c = _mm256_or_si256(load256(p + 128), load256(p + 160));
	__m256i d = _mm256_or_si256(load256(p + 192), load256(p + 224));

	a = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
	return _mm256_testz_si256(a, a);
}

#define SCAN_ISA  avx2
#define SCAN_SIMD RDMIG_SIMD_AVX2
#include "scan_impl.h"

#endif /* __x86_64__ */
