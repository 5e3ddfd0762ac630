/* SPDX-License-Identifier: MIT */
/*
 * The scanner's dispatch and keys (see scan.h): which ISA this CPU runs,
 * chosen once per scanner, and the per-migration XXH3 secret. The ISA code
 * itself is in scan_scalar.c, scan_avx2.c and scan_avx512.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "../common/util.h"
#include "scan.h"

_Static_assert(RDMIG__SCAN_SECRET_SIZE >= XXH3_SECRET_SIZE_MIN, "XXH3 secret too small");

static const char *const simd_names[] = {
	[RDMIG_SIMD_AUTO] = "auto",
	[RDMIG_SIMD_AVX512] = "avx512",
	[RDMIG_SIMD_AVX2] = "avx2",
	[RDMIG_SIMD_SCALAR] = "scalar",
};

/* What a forced ISA needs, for the -ENOTSUP message. */
static const char *const simd_needs[] = {
	[RDMIG_SIMD_AVX512] = "AVX-512 F, BW and VL",
	[RDMIG_SIMD_AVX2] = "AVX2",
	[RDMIG_SIMD_SCALAR] = "the portable code", /* only a test's mask can lack it */
};

/* Best first: AUTO takes the first one supported. */
static const uint32_t simd_order[] = { RDMIG_SIMD_AVX512, RDMIG_SIMD_AVX2, RDMIG_SIMD_SCALAR };

const char *rdmig__simd_name(uint32_t simd)
{
	return simd < RDMIG__ARRAY_SIZE(simd_names) ? simd_names[simd] : "?";
}

unsigned rdmig__simd_supported(void)
{
	unsigned m = 1u << RDMIG_SIMD_SCALAR;

#if defined(__x86_64__)
	/* Checks the OS enables the register state too (XGETBV), not only CPUID. */
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		m |= 1u << RDMIG_SIMD_AVX2;
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl"))
		m |= 1u << RDMIG_SIMD_AVX512;
#endif
	return m;
}

int rdmig__simd_pick(uint32_t simd, unsigned supported, uint32_t *chosen)
{
	if (simd > RDMIG_SIMD_SCALAR)
		return rdmig__err(-EINVAL, "RDMIG_SIMD: %u is not an enum rdmig_simd value", simd);
	if (simd == RDMIG_SIMD_AUTO) {
		for (size_t i = 0; i < RDMIG__ARRAY_SIZE(simd_order); i++) {
			if (supported & (1u << simd_order[i])) {
				*chosen = simd_order[i];
				return 0;
			}
		}
		*chosen = RDMIG_SIMD_SCALAR; /* not reached: scalar is always supported */
		return 0;
	}
	if (!(supported & (1u << simd)))
		return rdmig__err(-ENOTSUP, "RDMIG_SIMD=%s: this CPU does not support %s",
				  simd_names[simd], simd_needs[simd]);
	*chosen = simd;
	return 0;
}

static const struct rdmig__scan_ops *simd_ops(uint32_t simd)
{
	switch (simd) {
#if defined(__x86_64__)
	case RDMIG_SIMD_AVX512:
		return &rdmig__scan_ops_avx512;
	case RDMIG_SIMD_AVX2:
		return &rdmig__scan_ops_avx2;
#endif
	default:
		return &rdmig__scan_ops_scalar;
	}
}

int rdmig__scanner_init(struct rdmig__scanner *s, uint32_t simd)
{
	uint32_t chosen;
	int ret = rdmig__simd_pick(simd, rdmig__simd_supported(), &chosen);

	if (ret)
		return ret;
	s->ops = *simd_ops(chosen);
	return 0;
}

int rdmig__scan_key_random(struct rdmig__scan_key *k)
{
	uint8_t seed[64];
	size_t got = 0;

	while (got < sizeof(seed)) {
		ssize_t n = getrandom(seed + got, sizeof(seed) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rdmig__err(-errno, "getrandom: %s", strerror(errno));
		}
		got += (size_t)n;
	}
	XXH3_generateSecret(k->secret, sizeof(k->secret), seed, sizeof(seed));
	return 0;
}

void rdmig__scan_key_from_seed(struct rdmig__scan_key *k, uint64_t seed)
{
	uint8_t le[8];

	for (unsigned i = 0; i < 8; i++)
		le[i] = (uint8_t)(seed >> (8 * i));
	XXH3_generateSecret(k->secret, sizeof(k->secret), le, sizeof(le));
}
