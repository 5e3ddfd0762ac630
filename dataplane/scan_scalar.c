/* SPDX-License-Identifier: MIT */
/*
 * The portable scanner, built with the library's baseline flags: runs on any
 * CPU. The zero check is plain 64-bit C; the hash is xxhash.h's default path
 * for the target (SSE2 on x86-64, NEON on AArch64), which every CPU of that
 * target has and which gives the same hashes as every other path.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "scan.h"

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v)); /* one mov; no alignment or aliasing assumption */
	return v;
}

/* OR of the 8 words of one 64-byte line. */
static inline uint64_t or_line(const uint8_t *p)
{
	return load64(p) | load64(p + 8) | load64(p + 16) | load64(p + 24) | load64(p + 32) |
	       load64(p + 40) | load64(p + 48) | load64(p + 56);
}

static inline bool first_line_zero(const uint8_t *p)
{
	return !or_line(p);
}

static inline bool lines_1_3_zero(const uint8_t *p)
{
	return !(or_line(p + 64) | or_line(p + 128) | or_line(p + 192));
}

static inline bool block_zero(const uint8_t *p)
{
	return !(or_line(p) | or_line(p + 64) | or_line(p + 128) | or_line(p + 192));
}

#define SCAN_ISA  scalar
#define SCAN_SIMD RDMIG_SIMD_SCALAR
#include "scan_impl.h"
