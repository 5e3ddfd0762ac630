/* SPDX-License-Identifier: MIT */
/*
 * The page scanner: classifies a guest page as skipped (the VMM's skip set:
 * ballooned or free, content is don't-care), zero, or data, and hashes data
 * pages with XXH3-128 keyed by a per-migration secret.
 *
 * From DRAM the scan is bound by memory bandwidth (about 250-400 ns per 4 KiB
 * page per core); the compute (~100 ns of XXH3 per 4 KiB with AVX-512) hides
 * behind it only if it is cheap, so (perf/rdmig-scanbench measures it against
 * a raw read loop):
 * - the zero check tests the first cache line first: a data page is usually
 *   classified after one cache-line miss; the rest is OR-accumulated in wide
 *   registers, 256 bytes between early-exit tests, prefetching the next 256;
 * - the hash is xxhash.h inlined (XXH_INLINE_ALL) and compiled per ISA, so
 *   XXH3's inner loop uses the same vector unit as the zero check. It runs
 *   after the zero check, not fused with it: a data page usually leaves the
 *   zero check after one line, and fusing would slow zero pages down;
 * - the ISA is chosen once, at rdmig__scanner_init(): AVX-512 (F+BW+VL), else
 *   AVX2, else the portable code (plain 64-bit C zero check; the hash uses
 *   xxhash's baseline path for the target, SSE2 on x86-64). RDMIG_SIMD
 *   (struct rdmig__config.simd) forces one. Every ISA gives identical results.
 *
 * Each ISA lives in its own file compiled with its own flags
 * (scan_scalar.c, scan_avx2.c, scan_avx512.c, from the template
 * scan_impl.h); the rest of the library never runs an instruction the CPU
 * may lack.
 *
 * A hash is proof of nothing by itself (DESIGN.md, invariant 3): the source
 * may skip a page only when its hash equals the one the destination
 * computed over the bytes that landed, with the same key.
 *
 * Threads: a scanner and a key are read-only once initialised; any number of
 * threads may scan with the same ones at once. Nothing here allocates.
 */
#ifndef RDMIG_DATAPLANE_SCAN_H
#define RDMIG_DATAPLANE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rdmig/rdmig.h>

/* XXH3-128 of a page. */
struct rdmig__hash {
	uint64_t lo, hi;
};

/* Bytes of XXH3 secret: XXH3_SECRET_DEFAULT_SIZE, the size XXH3 is tuned for. */
#define RDMIG__SCAN_SECRET_SIZE 192

/*
 * The hash key of one migration: an XXH3 secret. Both ends must hash with the
 * same key; a fresh one per migration keeps a guest from crafting pages whose
 * hashes collide with what the destination holds.
 */
struct rdmig__scan_key {
	_Alignas(64) uint8_t secret[RDMIG__SCAN_SECRET_SIZE];
};

enum rdmig__page_kind {
	RDMIG__PAGE_ZERO = 0, /* every byte is 0 */
	RDMIG__PAGE_DATA = 1, /* not all zero; hashed */
	RDMIG__PAGE_SKIP = 2, /* in the skip set: not read at all (batch form only) */
};

/*
 * One ISA's implementation. Never a NULL member.
 *
 * page: classifies `page_size` bytes at `page` (page_size a power of two
 *   >= 4096, any alignment); returns RDMIG__PAGE_ZERO or RDMIG__PAGE_DATA and
 *   fills *h only for DATA.
 * pages: the same for `n` consecutive pages from `base`. Page i is
 *   RDMIG__PAGE_SKIP, and is not read, when `skip` is not NULL and bit
 *   skip_first + i of it is set (KVM layout: 64-bit words, bit j in word
 *   j / 64 at position j % 64). Writes kinds[i] for every page and hashes[i]
 *   only for DATA pages (both arrays have n entries). Returns the number of
 *   DATA pages.
 * is_zero: whether `len` bytes at `p` are all zero; len a multiple of 256
 *   (every page size is), at least 256.
 * hash: XXH3-128 of `len` bytes at `p` (any length) with the key's secret,
 *   equal to XXH3_128bits_withSecret(p, len, k->secret, sizeof(k->secret)).
 */
struct rdmig__scan_ops {
	uint32_t simd; /* enum rdmig_simd, never RDMIG_SIMD_AUTO */
	int (*page)(const struct rdmig__scan_key *k, const void *page, size_t page_size,
		    struct rdmig__hash *h);
	size_t (*pages)(const struct rdmig__scan_key *k, const void *base, size_t page_size,
			size_t n, const uint64_t *skip, uint64_t skip_first, uint8_t *kinds,
			struct rdmig__hash *hashes);
	bool (*is_zero)(const void *p, size_t len);
	void (*hash)(const struct rdmig__scan_key *k, const void *p, size_t len,
		     struct rdmig__hash *h);
};

/* The scanner a migration runs with: a copy of the chosen ISA's ops. */
struct rdmig__scanner {
	struct rdmig__scan_ops ops;
};

/*
 * Chooses the ISA for `simd` (enum rdmig_simd: AUTO picks the best this CPU
 * supports) and fills *s. Returns 0, -EINVAL (not an enum rdmig_simd value),
 * or -ENOTSUP (a forced ISA this CPU lacks; the message names RDMIG_SIMD and
 * the ISA). Does not block.
 */
int rdmig__scanner_init(struct rdmig__scanner *s, uint32_t simd);

/*
 * The ISAs this CPU (and OS) supports, as a mask of 1u << enum rdmig_simd;
 * RDMIG_SIMD_SCALAR is always in it. valgrind hides AVX-512.
 */
unsigned rdmig__simd_supported(void);

/*
 * The choice rdmig__scanner_init() makes, given the `supported` mask: 0 and
 * *chosen (never AUTO), or -EINVAL / -ENOTSUP with a message. Separate so that
 * tests can pretend a CPU lacks an ISA.
 */
int rdmig__simd_pick(uint32_t simd, unsigned supported, uint32_t *chosen);

/* "auto", "avx512", "avx2", "scalar" (the RDMIG_SIMD spellings), or "?". */
const char *rdmig__simd_name(uint32_t simd);

/*
 * A fresh random key for one migration (getrandom(), then
 * XXH3_generateSecret()). Returns 0 or a negative errno with a message; may
 * block only if the kernel's entropy pool is not yet initialised (early boot).
 */
int rdmig__scan_key_random(struct rdmig__scan_key *k);

/* A key derived from `seed`, for tests and benchmarks that must be reproducible. */
void rdmig__scan_key_from_seed(struct rdmig__scan_key *k, uint64_t seed);

/* Classifies one page; see struct rdmig__scan_ops.page. */
static inline int rdmig__scan_page(const struct rdmig__scanner *s, const struct rdmig__scan_key *k,
				   const void *page, size_t page_size, struct rdmig__hash *h)
{
	return s->ops.page(k, page, page_size, h);
}

/* Classifies n consecutive pages; see struct rdmig__scan_ops.pages. */
static inline size_t rdmig__scan_pages(const struct rdmig__scanner *s,
				       const struct rdmig__scan_key *k, const void *base,
				       size_t page_size, size_t n, const uint64_t *skip,
				       uint64_t skip_first, uint8_t *kinds,
				       struct rdmig__hash *hashes)
{
	return s->ops.pages(k, base, page_size, n, skip, skip_first, kinds, hashes);
}

/* The per-ISA implementations (scan_*.c); only scan.c picks among them. */
extern const struct rdmig__scan_ops rdmig__scan_ops_scalar;
#if defined(__x86_64__)
extern const struct rdmig__scan_ops rdmig__scan_ops_avx2;
extern const struct rdmig__scan_ops rdmig__scan_ops_avx512;
#endif

#endif /* RDMIG_DATAPLANE_SCAN_H */
