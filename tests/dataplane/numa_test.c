/* SPDX-License-Identifier: MIT */
/*
 * Tests of dataplane/numa.c: the node of pages and chunks as the kernel
 * reports it. On a one-node host the node tests check node 0 and pages not
 * present; with two nodes or more (ci/device-suite.sh runs this program
 * again in the soft-RoCE VM, booted with RDMIG_VM_NUMA=2, where it must not
 * skip: RDMIG_NUMA_REQUIRE=2) memory bound to each node is found there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dataplane/numa.h"

static long pgsz;

static uint8_t *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	/* A transparent huge page would make untouched neighbours present. */
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void nodes_at_least_one(void **state)
{
	(void)state;
	assert_true(rdmig__numa_nodes() >= 1);
	if (numa_available() >= 0)
		assert_int_equal(rdmig__numa_nodes(), numa_max_node() + 1);
}

/* A touched page has a node in range; one never touched has none. */
static void present_and_absent_pages(void **state)
{
	uint8_t *a = map(4 * (size_t)pgsz);
	void *pages[4] = { a, a + pgsz, a + 2 * pgsz + 100, a + 3 * pgsz };
	int nodes[4];

	(void)state;
	a[0] = 1;
	a[2 * pgsz + 7] = 1; /* any address inside the page means the page */
	assert_int_equal(rdmig__numa_query(pages, 4, nodes), 0);
	assert_in_range(nodes[0], 0, rdmig__numa_nodes() - 1);
	assert_in_range(nodes[2], 0, rdmig__numa_nodes() - 1);
	if (numa_available() >= 0) {
		assert_int_equal(nodes[1], RDMIG__NODE_NONE);
		assert_int_equal(nodes[3], RDMIG__NODE_NONE);
	}
	munmap(a, 4 * (size_t)pgsz);
}

/* More pages than one move_pages batch: every answer lands where it belongs. */
static void many_pages(void **state)
{
	const unsigned n = 1500;
	uint8_t *a = map(n * (size_t)pgsz);
	void **pages = calloc(n, sizeof(*pages));
	int *nodes = calloc(n, sizeof(*nodes));

	(void)state;
	assert_non_null(pages);
	assert_non_null(nodes);
	for (unsigned i = 0; i < n; i++) {
		pages[i] = a + (size_t)i * pgsz;
		if (i % 3 == 0)
			a[(size_t)i * pgsz] = 1;
	}
	assert_int_equal(rdmig__numa_query(pages, n, nodes), 0);
	for (unsigned i = 0; i < n; i++) {
		if (i % 3 == 0)
			assert_in_range(nodes[i], 0, rdmig__numa_nodes() - 1);
		else if (numa_available() >= 0)
			assert_int_equal(nodes[i], RDMIG__NODE_NONE);
	}
	free(nodes);
	free(pages);
	munmap(a, n * (size_t)pgsz);
}

/* A page not mapped has no node, like one not present: no error. */
static void unmapped_page_has_no_node(void **state)
{
	uint8_t *a = map(2 * (size_t)pgsz);
	void *pages[2] = { a, a + pgsz };
	int nodes[2];

	(void)state;
	if (numa_available() < 0)
		skip();
	a[0] = 1;
	munmap(a + pgsz, (size_t)pgsz);
	assert_int_equal(rdmig__numa_query(pages, 2, nodes), 0);
	assert_true(nodes[0] >= 0);
	assert_int_equal(nodes[1], RDMIG__NODE_NONE);
	munmap(a, (size_t)pgsz);
}

/*
 * Chunks of 4 pages probed at 3 places (pages 0, 1 and 2 of each): a chunk
 * is found where any probed page is present, and a page no probe looks at
 * (the last of a 4-page chunk) is not; the last, shorter chunk too.
 */
static void chunk_nodes_probe(void **state)
{
	const uint64_t np = 4 * 6 + 2, cp = 4;
	uint8_t *a = map(np * (size_t)pgsz);
	int16_t nodes[7];

	(void)state;
	if (numa_available() < 0)
		skip();
	a[0 * pgsz] = 1;	/* chunk 0: its first page */
	a[(4 + 1) * pgsz] = 1;	/* chunk 1: its second page */
	a[(8 + 3) * pgsz] = 1;	/* chunk 2: its last page, probed by none */
	a[(12 + 2) * pgsz] = 1; /* chunk 3: its third page */
	a[(24 + 1) * pgsz] = 1; /* chunk 6 (two pages): its last page */
	memset(nodes, 0x55, sizeof(nodes));
	assert_int_equal(rdmig__numa_chunk_nodes(a, np, (uint32_t)pgsz, cp, 3, nodes), 0);
	assert_true(nodes[0] >= 0);
	assert_true(nodes[1] >= 0);
	assert_int_equal(nodes[2], RDMIG__NODE_NONE);
	assert_true(nodes[3] >= 0);
	assert_int_equal(nodes[4], RDMIG__NODE_NONE);
	assert_int_equal(nodes[5], RDMIG__NODE_NONE);
	assert_true(nodes[6] >= 0);
	assert_int_equal(rdmig__numa_chunk_nodes(a, np, (uint32_t)pgsz, 0, 3, nodes), -EINVAL);
	munmap(a, np * (size_t)pgsz);
}

/* With two nodes: memory bound to each one is reported there, per page and per chunk. */
static void memory_found_on_its_node(void **state)
{
	const size_t half = 64 * (size_t)pgsz;
	int want = getenv("RDMIG_NUMA_REQUIRE") ? atoi(getenv("RDMIG_NUMA_REQUIRE")) : 0;
	int16_t nodes[2];
	uint8_t *a;
	int n;

	(void)state;
	n = rdmig__numa_nodes();
	if (want && n < want)
		fail_msg("RDMIG_NUMA_REQUIRE=%d, but this machine has %d node(s)", want, n);
	if (n < 2) {
		printf("one NUMA node: nothing to tell apart\n");
		skip();
	}
	a = map(2 * half);
	numa_tonode_memory(a, half, 1);
	numa_tonode_memory(a + half, half, 0);
	memset(a, 1, 2 * half);
	for (int node = 0; node < 2; node++) {
		void *pages[2] = { a + (node ? 0 : half), a + (node ? 0 : half) + half - 1 };
		int got[2];

		assert_int_equal(rdmig__numa_query(pages, 2, got), 0);
		assert_int_equal(got[0], node ? 1 : 0);
		assert_int_equal(got[1], node ? 1 : 0);
	}
	assert_int_equal(rdmig__numa_chunk_nodes(a, 2 * half / (size_t)pgsz, (uint32_t)pgsz,
						 half / (size_t)pgsz, 4, nodes),
			 0);
	assert_int_equal(nodes[0], 1);
	assert_int_equal(nodes[1], 0);
	munmap(a, 2 * half);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nodes_at_least_one), cmocka_unit_test(present_and_absent_pages),
		cmocka_unit_test(many_pages),	      cmocka_unit_test(unmapped_page_has_no_node),
		cmocka_unit_test(chunk_nodes_probe),  cmocka_unit_test(memory_found_on_its_node),
	};

	pgsz = sysconf(_SC_PAGESIZE);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
