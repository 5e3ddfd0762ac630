/* SPDX-License-Identifier: MIT */
/*
 * Where guest memory lies (issue 14 item 5): the NUMA node of pages, as the
 * kernel reports it without moving anything (move_pages(2) with no target
 * nodes), so that a worker can scan a chunk on the node that holds it.
 * Guest memory that was never touched has no node yet: it reads as zero and
 * is as cheap to scan from anywhere.
 *
 * Threads: any, no state of its own (libnuma's queries are thread-safe).
 */
#ifndef RDMIG_DATAPLANE_NUMA_H
#define RDMIG_DATAPLANE_NUMA_H

#include <stdint.h>

/* No node: the page is not present (never touched), or NUMA is absent. */
#define RDMIG__NODE_NONE (-1)

/*
 * Nodes memory may lie on: the highest node number plus one, at least 1
 * (1 on a host without NUMA, or where libnuma reports it unavailable).
 */
int rdmig__numa_nodes(void);

/*
 * The node of each of n pages (addresses of this process, any alignment:
 * the page holding each is meant): nodes[i] >= 0, or RDMIG__NODE_NONE for a
 * page not present, or not mapped (kernels such as 6.1 report both the
 * same way). Without NUMA every page is on node 0. Returns 0, or a negative
 * errno.
 */
int rdmig__numa_query(void *const *pages, unsigned long n, int *nodes);

/*
 * The node of each chunk of a region: the region's npages pages of
 * page_size bytes at hva, cut into chunks of chunk_pages pages (the last
 * one shorter); nodes[c] for chunk c. A chunk's node is that of the first
 * of `probes` pages spread evenly over it (its first page included) that is
 * present; RDMIG__NODE_NONE if none is. One move_pages(2) call per batch of
 * chunks: about 1 us a probe, 1 s for a TiB of 1 MiB chunks probed once
 * each, so it is taken when a region is added, not per pass. Returns 0 or
 * a negative errno.
 */
int rdmig__numa_chunk_nodes(const uint8_t *hva, uint64_t npages, uint32_t page_size,
			    uint64_t chunk_pages, unsigned probes, int16_t *nodes);

#endif /* RDMIG_DATAPLANE_NUMA_H */
