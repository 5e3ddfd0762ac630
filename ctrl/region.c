/* SPDX-License-Identifier: MIT */
/* Region validation at registration (DESIGN.md, invariant 5). */
#include <inttypes.h>

#include "../common/util.h"
#include "session.h"

int rdmig__region_validate(const struct rdmig__region_check *have, unsigned n, uint64_t gpa,
			   const void *hva, uint64_t len, uint32_t page_size)
{
	uint64_t h = (uintptr_t)hva;

	if (n >= RDMIG__MAX_REGIONS)
		return rdmig__err(-ENOSPC, "too many regions (at most %u)", RDMIG__MAX_REGIONS);
	if (!hva)
		return rdmig__err(-EINVAL, "region gpa 0x%" PRIx64 ": hva is NULL", gpa);
	if (!len)
		return rdmig__err(-EINVAL, "region gpa 0x%" PRIx64 ": length is 0", gpa);
	if (gpa % page_size || h % page_size || len % page_size)
		return rdmig__err(-EINVAL,
				  "region gpa 0x%" PRIx64 " hva %p len 0x%" PRIx64
				  ": not aligned to the page size %u",
				  gpa, hva, len, page_size);
	if (gpa + len < gpa || h + len < h)
		return rdmig__err(-EINVAL,
				  "region gpa 0x%" PRIx64 " len 0x%" PRIx64 ": wraps around", gpa,
				  len);
	for (unsigned i = 0; i < n; i++) {
		if (gpa < have[i].gpa + have[i].len && have[i].gpa < gpa + len)
			return rdmig__err(-EINVAL,
					  "region gpa 0x%" PRIx64 " len 0x%" PRIx64
					  " overlaps region %u (gpa 0x%" PRIx64 " len 0x%" PRIx64
					  ")",
					  gpa, len, i, have[i].gpa, have[i].len);
		if (h < have[i].hva + have[i].len && have[i].hva < h + len)
			return rdmig__err(-EINVAL,
					  "region gpa 0x%" PRIx64 " hva %p overlaps the memory of "
					  "region %u (hva 0x%" PRIx64 ")",
					  gpa, hva, i, have[i].hva);
	}
	return 0;
}
