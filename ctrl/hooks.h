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

#endif /* RDMIG_CTRL_HOOKS_H */
