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

#endif /* RDMIG_CTRL_HOOKS_H */
