/* SPDX-License-Identifier: MIT */
/* Which NUMA node holds a page (numa.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <numa.h>
#include <numaif.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "numa.h"

/* Pages asked of move_pages(2) at once. */
#define QUERY_BATCH 512

int rdmig__numa_nodes(void)
{
	int max;

	if (numa_available() < 0)
		return 1;
	max = numa_max_node();
	return max < 0 ? 1 : max + 1;
}

int rdmig__numa_query(void *const *pages, unsigned long n, int *nodes)
{
	bool numa = numa_available() >= 0;
	uintptr_t mask = ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);

	for (unsigned long done = 0; done < n;) {
		unsigned long k = RDMIG__MIN(n - done, (unsigned long)QUERY_BATCH);
		/* move_pages(2) takes the page holding each address. */
		void *pg[QUERY_BATCH];

		for (unsigned long i = 0; i < k; i++)
			pg[i] = (void *)((uintptr_t)pages[done + i] & mask);
		/* No target nodes: only where each page is. */
		if (move_pages(0, k, pg, NULL, nodes + done, 0) < 0) {
			int err = errno;

			/* No NUMA in the kernel: every page on node 0, present or not
			 * cannot be told (mincore would, but nothing needs it then). */
			if (!numa || err == ENOSYS) {
				for (unsigned long i = 0; i < k; i++)
					nodes[done + i] = 0;
				done += k;
				continue;
			}
			return rdmig__err(-err, "move_pages (querying %lu pages' nodes): %s", k,
					  strerror(err));
		}
		/*
		 * -ENOENT: not present. -EFAULT: not present either on kernels
		 * before 6.x's change to follow_page (6.1 reports a hole in an
		 * anonymous mapping so), or not mapped at all, which the two
		 * cannot tell apart. Anything else: unknown.
		 */
		for (unsigned long i = 0; i < k; i++)
			if (nodes[done + i] < 0)
				nodes[done + i] = RDMIG__NODE_NONE;
		done += k;
	}
	return 0;
}

int rdmig__numa_chunk_nodes(const uint8_t *hva, uint64_t npages, uint32_t page_size,
			    uint64_t chunk_pages, unsigned probes, int16_t *nodes)
{
	uint64_t nchunks;
	void *pg[QUERY_BATCH];
	int got[QUERY_BATCH];
	int ret;

	if (!chunk_pages || !page_size)
		return rdmig__err(-EINVAL, "chunk of %" PRIu64 " pages of %u bytes", chunk_pages,
				  page_size);
	nchunks = (npages + chunk_pages - 1) / chunk_pages;
	probes = RDMIG__MAX(1u, RDMIG__MIN(probes, (unsigned)QUERY_BATCH));
	/* Whole chunks per batch: ask, then read each chunk's probes in order. */
	for (uint64_t c0 = 0; c0 < nchunks;) {
		uint64_t per = RDMIG__MAX((uint64_t)1, (uint64_t)(QUERY_BATCH / probes));
		uint64_t cn = RDMIG__MIN(nchunks - c0, per);
		unsigned long k = 0;

		for (uint64_t c = c0; c < c0 + cn; c++) {
			uint64_t first = c * chunk_pages;
			uint64_t len = RDMIG__MIN(chunk_pages, npages - first);
			unsigned np = (unsigned)RDMIG__MIN((uint64_t)probes, len);

			for (unsigned j = 0; j < np; j++)
				pg[k++] = (void *)(uintptr_t)(hva +
							      (first + j * len / np) * page_size);
			for (unsigned j = np; j < probes; j++)
				pg[k++] = (void *)(uintptr_t)(hva + first * page_size);
		}
		if ((ret = rdmig__numa_query(pg, k, got)))
			return ret;
		for (uint64_t c = c0, i = 0; c < c0 + cn; c++) {
			int16_t node = RDMIG__NODE_NONE;

			for (unsigned j = 0; j < probes; j++, i++)
				if (node == RDMIG__NODE_NONE && got[i] >= 0)
					node = (int16_t)got[i];
			nodes[c] = node;
		}
		c0 += cn;
	}
	return 0;
}
