/* SPDX-License-Identifier: MIT */
/*
 * Choosing the path (rdmig.h), over real verbs (and over loopback, where
 * device, GID index and TOS are accepted and ignored): a migration that
 * names its local address, device, GID index, TOS and worker CPUs runs
 * over exactly that (the control QP's device, GID index and traffic class
 * are read back from its address vector) with every worker on the allowed
 * CPUs (recorded from inside the workers), pinned or not; the GID index
 * alone picks the local address; an unknown device, a device the route
 * does not take, an empty or unusable GID entry fail with -ENODEV or
 * -EINVAL and a message naming the value and what exists.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdmig/rdmig.h>

#include "ctrl/hooks.h"
#include "dataplane/xport.h"
#include "device/devtest.h"

#define assert_contains(s, sub)                                            \
	do {                                                               \
		const char *s_ = (s);                                      \
		if (!strstr(s_, (sub)))                                    \
			fail_msg("'%s' does not contain '%s'", s_, (sub)); \
	} while (0)

static const char *ip;
static const char *dev; /* RDMIG_TEST_DEV; a made-up name over loopback */
static int gid_index;	/* RDMIG_TEST_GID_INDEX */

/* What the workers saw from inside: every CPU they ran on, every mask. */
struct cpu_seen {
	cpu_set_t allowed; /* what they may use */
	atomic_uint calls;
	atomic_uint outside; /* calls on a CPU, or with a mask, outside `allowed` */
	atomic_int bad_cpu;
};

static void cpu_hook(void *arg, unsigned region, uint64_t first, uint32_t npages)
{
	struct cpu_seen *s = arg;
	int cpu = sched_getcpu();
	cpu_set_t mine;

	(void)region, (void)first, (void)npages;
	atomic_fetch_add(&s->calls, 1);
	if (cpu < 0 || !CPU_ISSET(cpu, &s->allowed)) {
		atomic_fetch_add(&s->outside, 1);
		atomic_store(&s->bad_cpu, cpu);
	}
	if (sched_getaffinity(0, sizeof(mine), &mine))
		atomic_fetch_add(&s->outside, 1);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &mine) && !CPU_ISSET(c, &s->allowed)) {
			atomic_fetch_add(&s->outside, 1);
			atomic_store(&s->bad_cpu, c);
		}
}

/* The highest CPU this process may use, and the lowest (may be the same). */
static void cpu_range(int *lo, int *hi)
{
	cpu_set_t cs;

	assert_int_equal(sched_getaffinity(0, sizeof(cs), &cs), 0);
	*lo = *hi = -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &cs)) {
			*lo = *lo < 0 ? c : *lo;
			*hi = c;
		}
}

static void path_opts(struct rdmig_opts *o, bool local, bool device, bool gid, bool tos)
{
	rdmig_opts_init(o);
	o->local_addr = local ? ip : NULL;
	o->device = device ? dev : NULL;
	o->gid_index = (uint32_t)gid_index;
	o->tos = 96; /* DSCP 24 (CS3), a common lossless RoCE class */
	o->set = (gid ? RDMIG_OPTS_GID_INDEX : 0) | (tos ? RDMIG_OPTS_TOS : 0);
}

/* Migrates g over src to d in two passes and checks the image. */
static void migrate(struct rdmig_src *src, struct dt_dst *d, struct dt_guest *g,
		    struct dt_guest *back)
{
	struct rdmig_dirty dirty[DT_MAX_REGIONS];
	uint64_t rng = 7;
	unsigned region = 0;
	int64_t p;

	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), 0);
	dt_guest_write(g, 64, &rng);
	dt_dirty(g, dirty);
	if (rdmig_src_pass(src, dirty, g->n, RDMIG_PASS_FINAL, NULL))
		fail_msg("final pass: %s", rdmig_last_error());
	if (rdmig_src_complete(src))
		fail_msg("complete: %s", rdmig_last_error());
	rdmig_src_destroy(src);
	if (dt_dst_join(d))
		fail_msg("destination: %s", d->err);
	p = dt_guest_diff(g, back, &region);
	if (p >= 0)
		fail_msg("page %lld of region %u differs", (long long)p, region);
}

static void run_pinned(bool pin)
{
	uint64_t gpa[1] = { 0 }, len[1] = { 8 << 20 }, rng = 1;
	struct dt_guest g, back;
	struct rdmig_opts so, dopts;
	struct rdmig__xp_path path;
	struct cpu_seen seen;
	struct rdmig_src *src;
	struct dt_dst d;
	char list[32];
	int lo = -1, hi = -1;

	dt_guest_init(&g, 1, gpa, len);
	dt_guest_init(&back, 1, gpa, len);
	dt_guest_fill(&g, &rng);

	/* Workers on the highest allowed CPU only: the one a VMM would keep
	 * free of vCPUs is as good as any other for the check. */
	cpu_range(&lo, &hi);
	snprintf(list, sizeof(list), "%d", hi);
	memset(&seen, 0, sizeof(seen));
	CPU_ZERO(&seen.allowed);
	CPU_SET(hi, &seen.allowed);

	path_opts(&dopts, false, true, true, true);
	dt_dst_start(&d, ip, &back, RDMIG_REGION_ZERO_FILLED, &dopts);
	path_opts(&so, true, true, true, true);
	so.worker_cpus = list;
	so.workers = 2; /* two workers on one CPU: both must keep to it */
	so.pin = pin ? RDMIG_PIN_ON : RDMIG_PIN_OFF;
	src = dt_src_connect(ip, &d, &g, &so);
	rdmig__src_path(src, &path);
	if (!dt_loopback()) {
		char a[64] = "?";

		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&path.local)->sin_addr, a,
			  sizeof(a));
		printf("control connection: %s port %u, GID index %d, traffic class %d, from %s\n",
		       path.dev, path.port, path.sgid_index, path.tclass, a);
		assert_string_equal(path.dev, dev);
		assert_int_equal(path.sgid_index, gid_index);
		assert_int_equal(path.tclass, 96);
		assert_string_equal(a, ip);
	}
	rdmig__src_set_scan_hook(src, cpu_hook, &seen);
	migrate(src, &d, &g, &back);
	printf("workers: %u scan blocks, %u outside CPU %d (pin %s)\n", atomic_load(&seen.calls),
	       atomic_load(&seen.outside), hi, pin ? "on" : "off");
	assert_true(atomic_load(&seen.calls) > 0);
	if (atomic_load(&seen.outside))
		fail_msg("a worker ran on or could run on CPU %d, outside RDMIG_WORKER_CPUS %s",
			 atomic_load(&seen.bad_cpu), list);
	dt_guest_fini(&g);
	dt_guest_fini(&back);
}

static void path_everything_named_is_used(void **state)
{
	(void)state;
	run_pinned(true);
}

static void path_worker_cpus_fence_unpinned_workers(void **state)
{
	(void)state;
	run_pinned(false);
}

/* RDMIG_GID_INDEX with RDMIG_DEVICE and no address: the GID's address is
 * the one both ends use (the destination listens on host NULL). */
static void path_gid_index_picks_the_address(void **state)
{
	uint64_t gpa[1] = { 0 }, len[1] = { 1 << 20 }, rng = 2;
	struct dt_guest g, back;
	struct rdmig_opts o;
	struct rdmig__xp_path path;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	dt_guest_init(&g, 1, gpa, len);
	dt_guest_init(&back, 1, gpa, len);
	dt_guest_fill(&g, &rng);
	path_opts(&o, false, true, true, false);
	/* Host NULL: a wildcard would fail the device check, so this listens
	 * on the GID's address or fails. */
	dt_dst_start(&d, dt_loopback() ? ip : NULL, &back, 0, &o);
	src = dt_src_connect(ip, &d, &g, &o);
	rdmig__src_path(src, &path);
	if (!dt_loopback()) {
		char a[64] = "?";

		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&path.local)->sin_addr, a,
			  sizeof(a));
		assert_string_equal(a, ip);
		assert_int_equal(path.sgid_index, gid_index);
	}
	migrate(src, &d, &g, &back);
	dt_guest_fini(&g);
	dt_guest_fini(&back);
}

/* Connects with `o` to a plain destination; returns connect's result. */
static int try_connect(const struct rdmig_opts *o, char *err, size_t errlen)
{
	uint64_t gpa[1] = { 0 }, len[1] = { 1 << 20 };
	struct dt_guest g, back;
	struct rdmig_src *src;
	struct dt_dst d;
	int ret;

	dt_guest_init(&g, 1, gpa, len);
	dt_guest_init(&back, 1, gpa, len);
	dt_dst_start(&d, ip, &back, 0, NULL);
	assert_int_equal(rdmig_src_create(o, &src), 0);
	assert_int_equal(rdmig_src_add_region(src, 0, g.hva[0], len[0]), 0);
	ret = rdmig_src_connect(src, ip, d.port);
	snprintf(err, errlen, "%s", rdmig_last_error());
	printf("connect: %d %s\n", ret, err);
	if (ret == 0)
		assert_int_equal(
			rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL | RDMIG_PASS_FINAL, NULL), 0);
	if (ret == 0)
		assert_int_equal(rdmig_src_complete(src), 0);
	rdmig_src_destroy(src);
	if (ret)
		rdmig_dst_cancel(d.dst);
	dt_dst_join(&d);
	dt_guest_fini(&g);
	dt_guest_fini(&back);
	return ret;
}

static void path_unknown_device_fails_naming_it(void **state)
{
	struct rdmig_opts o;
	struct rdmig_dst *dst;
	uint8_t page[4096] __attribute__((aligned(4096)));
	char err[512];
	int ret;

	(void)state;
	rdmig_opts_init(&o);
	o.device = "mlx5_nosuch";
	ret = try_connect(&o, err, sizeof(err));
	if (dt_loopback()) {
		assert_int_equal(ret, 0); /* accepted and ignored */
		return;
	}
	assert_int_equal(ret, -ENODEV);
	assert_contains(err, "RDMIG_DEVICE");
	assert_contains(err, "mlx5_nosuch");
	assert_contains(err, dev); /* the devices there are */

	/* The destination checks before it listens. */
	assert_int_equal(rdmig_dst_create(&o, &dst), 0);
	assert_int_equal(rdmig_dst_add_region(dst, 0, page, sizeof(page), 0), 0);
	assert_int_equal(rdmig_dst_listen(dst, ip, "0"), -ENODEV);
	assert_contains(rdmig_last_error(), "mlx5_nosuch");
	rdmig_dst_destroy(dst);

	/* A port the device does not have. */
	snprintf(err, sizeof(err), "%s:9", dev);
	o.device = err;
	ret = try_connect(&o, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	assert_contains(err, "no port 9");
}

static void path_empty_or_unusable_gid_fails_naming_it(void **state)
{
	const struct rdmig__xp_ops *xp = dt_transport();
	struct rdmig__xp_gid gq;
	struct rdmig_opts o;
	char err[512], why[512], num[16];
	int ret, other = -1;

	(void)state;
	path_opts(&o, false, false, true, false);
	o.gid_index = 255; /* within a byte, past what any port here fills */
	ret = try_connect(&o, err, sizeof(err));
	if (dt_loopback()) {
		assert_int_equal(ret, 0);
		return;
	}
	assert_int_equal(ret, -EINVAL);
	assert_contains(err, "RDMIG_GID_INDEX");
	assert_contains(err, "255");
	/* rxe's table has 1024 entries, so 255 is in range but empty; a
	 * smaller table says out of range, naming its size */
	if (!strstr(err, "empty"))
		assert_contains(err, "out of range");

	/* Another entry that exists: not the one rdma_cm uses for this
	 * address (another address, or the same one's other RoCE type). */
	assert_int_equal(xp->gid_query(dev, 1, -1, &gq, why, sizeof(why)), 0);
	for (int i = 0; i < (int)gq.tbl_len && i < 256 && other < 0; i++)
		if (i != gid_index && !xp->gid_query(dev, 1, i, &gq, why, sizeof(why)))
			other = i;
	if (other < 0) {
		printf("only GID entry %d is in use: no second entry to try\n", gid_index);
		return;
	}
	o.gid_index = (uint32_t)other;
	snprintf(num, sizeof(num), "%d", other);
	ret = try_connect(&o, err, sizeof(err));
	assert_int_equal(ret, -EINVAL);
	assert_contains(err, "RDMIG_GID_INDEX");
	assert_contains(err, num);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(path_everything_named_is_used),
		cmocka_unit_test(path_worker_cpus_fence_unpinned_workers),
		cmocka_unit_test(path_gid_index_picks_the_address),
		cmocka_unit_test(path_unknown_device_fails_naming_it),
		cmocka_unit_test(path_empty_or_unusable_gid_fails_naming_it),
	};
	const char *g;

	ip = devtest_ip();
	dev = getenv("RDMIG_TEST_DEV");
	g = getenv("RDMIG_TEST_GID_INDEX");
	if (dt_loopback()) {
		dev = dev ? dev : "rxe0";
		g = g ? g : "0";
	}
	if (!dev || !g) {
		printf("SKIP: RDMIG_TEST_DEV or RDMIG_TEST_GID_INDEX unset: run through "
		       "ci/rxe-run.sh\n");
		return 77;
	}
	gid_index = atoi(g);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
