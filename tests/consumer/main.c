/* SPDX-License-Identifier: MIT */
/*
 * The smallest VMM-side use of an installed librdmig: create handles,
 * declare memory, and see a misuse refused with a message. Needs no device.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdmig/rdmig.h>

int main(void)
{
	struct rdmig_opts opts;
	struct rdmig_src *src;
	struct rdmig_dst *dst;
	void *mem = aligned_alloc(4096, 1 << 20);
	int ret;

	rdmig_opts_init(&opts);
	if (!mem || rdmig_src_create(&opts, &src) || rdmig_dst_create(&opts, &dst))
		return 1;
	if (rdmig_src_add_region(src, 0, mem, 1 << 20) != 0 ||
	    rdmig_dst_add_region(dst, 0, mem, 1 << 20, RDMIG_REGION_ZERO_FILLED) != 0)
		return 1;
	ret = rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL);
	printf("consumer: rdmig %d.%d: pass before connect: %s (%s)\n", RDMIG_VERSION_MAJOR,
	       RDMIG_VERSION_MINOR, strerror(-ret), rdmig_last_error());
	rdmig_src_destroy(src);
	rdmig_dst_destroy(dst);
	free(mem);
	return ret == -ENOTCONN && *rdmig_last_error() ? 0 : 1;
}
