/* SPDX-License-Identifier: MIT */
/*
 * Tests of the span walk over a pass's chunks (rdmig__dp_next_span() in
 * dataplane/worker.c): what the source reads of the bitmaps when a pass
 * lists the chunks it works on, and what it reads when it does not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dataplane/ranges.h"
#include "dataplane/worker.h"

struct span {
	unsigned ri;
	uint64_t w0, w1;
};

static unsigned walk(const struct rdmig__dp_region *r, unsigned n, uint32_t cp,
		     const uint64_t *work, uint64_t nwork, struct span *out, unsigned max)
{
	uint64_t k = 0, w0, w1;
	unsigned ri = 0, got = 0;

	while (rdmig__dp_next_span(r, n, cp, work, nwork, &k, &ri, &w0, &w1)) {
		assert_true(got < max);
		out[got++] = (struct span){ ri, w0, w1 };
	}
	return got;
}

/* Two regions: 1000 pages (chunks 0-3 of 256, the last of 232), then 300. */
static void regions(struct rdmig__dp_region *r)
{
	memset(r, 0, 2 * sizeof(*r));
	r[0].npages = 1000;
	r[0].chunk_base = 0;
	r[1].npages = 300;
	r[1].chunk_base = rdmig__chunk_count(1000, 256);
}

static void worker_span_no_work_whole_regions(void **state)
{
	struct rdmig__dp_region r[2];
	struct span s[8];

	(void)state;
	regions(r);
	assert_int_equal(walk(r, 2, 256, NULL, 0, s, 8), 2);
	assert_int_equal(s[0].ri, 0);
	assert_int_equal(s[0].w0, 0);
	assert_int_equal(s[0].w1, 16); /* 1000 pages: 15 words and a part */
	assert_int_equal(s[1].ri, 1);
	assert_int_equal(s[1].w1, 5);
}

static void worker_span_empty_work_no_span(void **state)
{
	struct rdmig__dp_region r[2];
	struct span s[8];
	uint64_t none = 0;

	(void)state;
	regions(r);
	assert_int_equal(walk(r, 2, 256, &none, 0, s, 8), 0);
}

static void worker_span_neighbours_merged_regions_apart(void **state)
{
	struct rdmig__dp_region r[2];
	/* chunks 0 and 1 touch, 3 stands alone (the short last one), 4 and 5
	 * are region 1's: never merged with region 0's. */
	const uint64_t work[] = { 0, 1, 3, 4, 5 };
	struct span s[8];

	(void)state;
	regions(r);
	assert_int_equal(walk(r, 2, 256, work, 5, s, 8), 3);
	assert_int_equal(s[0].ri, 0);
	assert_int_equal(s[0].w0, 0);
	assert_int_equal(s[0].w1, 8);
	assert_int_equal(s[1].ri, 0);
	assert_int_equal(s[1].w0, 12);
	assert_int_equal(s[1].w1, 16);
	assert_int_equal(s[2].ri, 1);
	assert_int_equal(s[2].w0, 0);
	assert_int_equal(s[2].w1, 5);
}

static void worker_span_shared_word_read_once(void **state)
{
	struct rdmig__dp_region r[1];
	/* Chunks of 100 pages: chunk 0 ends inside word 1, chunk 1 starts in it. */
	const uint64_t work[] = { 0, 1, 5 };
	struct span s[8];

	(void)state;
	memset(r, 0, sizeof(r));
	r[0].npages = 1000;
	assert_int_equal(walk(r, 1, 100, work, 3, s, 8), 2);
	assert_int_equal(s[0].w0, 0);
	assert_int_equal(s[0].w1, 4); /* pages 0-199: words 0-3 */
	assert_int_equal(s[1].w0, 7); /* pages 500-599: words 7-9 */
	assert_int_equal(s[1].w1, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(worker_span_no_work_whole_regions),
		cmocka_unit_test(worker_span_empty_work_no_span),
		cmocka_unit_test(worker_span_neighbours_merged_regions_apart),
		cmocka_unit_test(worker_span_shared_word_read_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
