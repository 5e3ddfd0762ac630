/* SPDX-License-Identifier: MIT */
/* What the source and destination sessions share: region validation. */
#ifndef RDMIG_CTRL_SESSION_H
#define RDMIG_CTRL_SESSION_H

#include <stdint.h>

struct rdmig__region_check {
	uint64_t gpa, hva, len;
};

/*
 * Checks a region about to be added against the page size and the `n`
 * regions already there (no overlap in guest-physical or host-virtual
 * space). Returns 0 or -EINVAL / -ENOSPC with a message.
 */
int rdmig__region_validate(const struct rdmig__region_check *have, unsigned n, uint64_t gpa,
			   const void *hva, uint64_t len, uint32_t page_size);

#endif /* RDMIG_CTRL_SESSION_H */
