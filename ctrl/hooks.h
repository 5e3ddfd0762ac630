/* SPDX-License-Identifier: MIT */
/*
 * Test hooks: internal calls that let tests change guest memory at exact
 * points of a pass, the way a running guest could. Not exported.
 */
#ifndef RDMIG_CTRL_HOOKS_H
#define RDMIG_CTRL_HOOKS_H

#include <rdmig/rdmig.h>

#include "../dataplane/worker.h"

/*
 * Calls fn(arg, region, first, npages) in the worker thread after each
 * block of pages was scanned and before its WRITEs are posted (so before
 * the NIC reads them). Set it before or between passes; NULL removes it.
 */
void rdmig__src_set_scan_hook(struct rdmig_src *src, rdmig__scan_hook_fn fn, void *arg);

/*
 * Makes the next connect offer protocol versions [ver_min, ver_max] and
 * capabilities `caps` in its HELLO instead of what this library speaks,
 * as an older or newer peer would (the session itself still runs this
 * library's version: a choice outside it fails the connect).
 */
void rdmig__src_set_offer(struct rdmig_src *src, uint16_t ver_min, uint16_t ver_max, uint32_t caps);

/*
 * The most guest memory one source MR covers (discard.h; 1 GiB), rounded
 * to whole chunks at connect: set it before connecting.
 */
void rdmig__src_set_mr_segment(struct rdmig_src *src, uint64_t bytes);

/* What discards cost so far, and the pages still unsettled (discard.h). */
struct rdmig__discard_counts {
	uint64_t refreshes;	/* MRs registered again */
	uint64_t refresh_bytes; /* the memory they cover */
	uint64_t refresh_ns;	/* time spent registering them and dropping the old ones */
	uint64_t unsettled;
	uint64_t segments; /* MRs of guest memory */
};
void rdmig__src_discard_counts(struct rdmig_src *src, struct rdmig__discard_counts *c);

/*
 * What the control connection of the last connect went through (device,
 * port, local address, GID index and traffic class of its QP); zeroes
 * before a connect, and over loopback.
 */
void rdmig__src_path(struct rdmig_src *src, struct rdmig__xp_path *p);

#endif /* RDMIG_CTRL_HOOKS_H */
