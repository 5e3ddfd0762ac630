/* SPDX-License-Identifier: MIT */
/*
 * The AVX-512 scanner. This file alone is compiled with -mavx512f -mavx512bw
 * -mavx512vl (CMakeLists.txt), so xxhash.h's AVX-512 path is the one inlined
 * here; rdmig__scanner_init() uses it only on a CPU that has all three.
 */
#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__)
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "scan_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512vl"
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
#define XXH_VECTOR	  XXH_AVX512
#include <xxhash.h>

#include "scan.h"

static inline __m512i load512(const uint8_t *p)
{
	return _mm512_loadu_si512((const void *)p);
}

static inline bool first_line_zero(const uint8_t *p)
{
	__m512i a = load512(p);

	return !_mm512_test_epi64_mask(a, a);
}

static inline bool lines_1_3_zero(const uint8_t *p)
{
	__m512i a = _mm512_or_si512(_mm512_or_si512(load512(p + 64), load512(p + 128)),
				    load512(p + 192));

	return !_mm512_test_epi64_mask(a, a);
}

static inline bool block_zero(const uint8_t *p)
{
	__m512i a = _mm512_or_si512(_mm512_or_si512(load512(p), load512(p + 64)),
				    _mm512_or_si512(load512(p + 128), load512(p + 192)));

	return !_mm512_test_epi64_mask(a, a);
}

#define SCAN_ISA  avx512
#define SCAN_SIMD RDMIG_SIMD_AVX512
#include "scan_impl.h"

#endif /* __x86_64__ */
