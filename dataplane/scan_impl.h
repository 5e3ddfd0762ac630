/* SPDX-License-Identifier: MIT */
/*
 * The scanner's ISA-independent part, included once by each scan_<isa>.c
 * after it has included xxhash.h (XXH_INLINE_ALL, its own XXH_VECTOR) and
 * defined:
 *   SCAN_ISA   the suffix of the ops table (scalar, avx2, avx512)
 *   SCAN_SIMD  its enum rdmig_simd value
 *   static inline bool first_line_zero(const uint8_t *p): bytes [0, 64) zero
 *   static inline bool lines_1_3_zero(const uint8_t *p): bytes [64, 256) zero
 *   static inline bool block_zero(const uint8_t *p): bytes [0, 256) zero
 * (p any alignment), each OR-accumulating its loads and testing once.
 * Everything here is static, so each copy is compiled for its file's ISA.
 * Not a header of its own: there is no include guard on purpose.
 */
#define SCAN_CAT2(a, b) a##b
#define SCAN_CAT(a, b)	SCAN_CAT2(a, b)

/*
 * The zero check asks for the block after the one it tests. Measured from
 * DRAM (rdmig-scanbench): 5-7% faster on zero and mixed data; a plain read
 * loop of 64-byte loads gains about as much, so the hardware prefetchers
 * alone do not keep up. It costs 5-10% on pages already in L2. Past the last
 * block it fetches the start of the next page, which the batch form tests
 * next; a prefetch never faults.
 */
static inline void prefetch_block(const uint8_t *p)
{
	__builtin_prefetch(p, 0, 3);
	__builtin_prefetch(p + 64, 0, 3);
	__builtin_prefetch(p + 128, 0, 3);
	__builtin_prefetch(p + 192, 0, 3);
}

/* Bytes [64, len) zero; an early exit every 256 bytes. */
static inline bool rest_zero(const uint8_t *p, size_t len)
{
	prefetch_block(p + 256);
	if (!lines_1_3_zero(p))
		return false;
	for (size_t off = 256; off < len; off += 256) {
		prefetch_block(p + off + 256);
		if (!block_zero(p + off))
			return false;
	}
	return true;
}

static bool scan_is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	/* The first line decides most data pages after one cache-line miss. */
	return first_line_zero(b) && rest_zero(b, len);
}

static inline void scan_hash_inline(const struct rdmig__scan_key *k, const void *p, size_t len,
				    struct rdmig__hash *h)
{
	/* sizeof(k->secret) is a constant, so XXH3's block loop is specialised. */
	XXH128_hash_t x = XXH3_128bits_withSecret(p, len, k->secret, sizeof(k->secret));

	h->lo = x.low64;
	h->hi = x.high64;
}

static void scan_hash(const struct rdmig__scan_key *k, const void *p, size_t len,
		      struct rdmig__hash *h)
{
	scan_hash_inline(k, p, len, h);
}

static inline int scan_one(const struct rdmig__scan_key *k, const uint8_t *page, size_t page_size,
			   struct rdmig__hash *h)
{
	if (first_line_zero(page) && rest_zero(page, page_size))
		return RDMIG__PAGE_ZERO;
	/* The page is in L1/L2 now (or streaming in): hash it while it is. */
	scan_hash_inline(k, page, page_size, h);
	return RDMIG__PAGE_DATA;
}

static int scan_page(const struct rdmig__scan_key *k, const void *page, size_t page_size,
		     struct rdmig__hash *h)
{
	return scan_one(k, page, page_size, h);
}

static size_t scan_pages(const struct rdmig__scan_key *k, const void *base, size_t page_size,
			 size_t n, const uint64_t *skip, uint64_t skip_first, uint8_t *kinds,
			 struct rdmig__hash *hashes)
{
	const uint8_t *p = base;
	size_t ndata = 0;

	for (size_t i = 0; i < n; i++, p += page_size) {
		uint64_t bit = skip_first + i;
		int kind;

		if (skip && (skip[bit / 64] >> (bit % 64)) & 1) {
			kinds[i] = RDMIG__PAGE_SKIP;
			continue;
		}
		kind = scan_one(k, p, page_size, &hashes[i]);
		kinds[i] = (uint8_t)kind;
		ndata += kind == RDMIG__PAGE_DATA;
	}
	return ndata;
}

const struct rdmig__scan_ops SCAN_CAT(rdmig__scan_ops_, SCAN_ISA) = {
	.simd = SCAN_SIMD,
	.page = scan_page,
	.pages = scan_pages,
	.is_zero = scan_is_zero,
	.hash = scan_hash,
};
