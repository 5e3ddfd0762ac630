/* SPDX-License-Identifier: MIT */
/*
 * Connect made fast (issue 14): the data connections are made in parallel
 * (ctrl/src.c, src_dial()), the source's MR segments registered on several
 * threads (ctrl/discard.c), the destination's memory faulted in on several
 * threads before it is registered (ctrl/dst.c), and the device's CPUs read
 * without loading a topology (dataplane/topo.c). What must hold:
 *
 *   - more data QPs than connecting threads: every one connects, each in
 *     its own slot, and the migration is byte-exact;
 *   - many MR segments registered at once: every WRITE finds the key of
 *     its own segment (a wrong or missing one fails it), byte-exact;
 *   - one data connection refused while the others are being made (a
 *     loopback fault): connect fails with that refusal, within its bound,
 *     and nothing is left (loopback objects, threads, fds); the same when
 *     the VMM cancels while one hangs;
 *   - the CPUs near the device are the ones hwloc's own
 *     hwloc_ibv_get_device_cpuset() gives, from several threads at once.
 *
 * Over rxe and over loopback (the refusals: loopback only).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hwloc.h>
#include <hwloc/openfabrics-verbs.h>

#include <rdmig/rdmig.h>

#include "common/util.h"
#include "ctrl/hooks.h"
#include "dataplane/topo.h"
#include "dataplane/xport.h"
#include "device/devtest.h"

static const char *ip;

static void assert_same(const struct dt_guest *a, const struct dt_guest *b)
{
	unsigned region;
	int64_t page = dt_guest_diff(a, b, &region);

	if (page >= 0)
		fail_msg("page %lld of region %u differs", (long long)page, region);
}

/* Two passes over everything the guest holds, complete, compare. */
static void migrate_all(struct rdmig_src *src, struct dt_dst *d, struct dt_guest *sg,
			const struct dt_guest *dg, uint64_t *rng)
{
	struct rdmig_dirty dirty[DT_MAX_REGIONS];
	struct rdmig_pass_stats st = { .size = sizeof(st) };

	if (rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st))
		fail_msg("pass: %s", rdmig_last_error());
	dt_guest_write(sg, 64, rng);
	dt_dirty(sg, dirty);
	if (rdmig_src_pass(src, dirty, sg->n, RDMIG_PASS_FINAL, &st))
		fail_msg("final pass: %s", rdmig_last_error());
	if (rdmig_src_complete(src))
		fail_msg("complete: %s", rdmig_last_error());
	if (dt_dst_join(d))
		fail_msg("destination: %s", d->err);
	rdmig_src_destroy(src);
	assert_same(sg, dg);
}

/*
 * Twelve data QPs, more than the eight connecting threads: some threads
 * make several, all land in their own slot at the destination (which
 * refuses a second connection for a slot) and every worker's WRITEs land.
 */
static void more_data_qps_than_connecting_threads(void **state)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 }, len[2] = { 4ull << 20, 2ull << 20 };
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct rdmig_progress p = { .size = sizeof(p) };
	struct dt_dst d;
	uint64_t rng = 7;

	(void)state;
	dt_guest_init(&sg, 2, gpa, len);
	dt_guest_init(&dg, 2, gpa, len);
	dt_guest_fill(&sg, &rng);
	rdmig_opts_init(&o);
	o.max_qps = 12;
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, &o);
	rdmig_opts_init(&o);
	o.workers = 12;
	o.chunk_pages = 16;
	src = dt_src_connect(ip, &d, &sg, &o);
	assert_int_equal(rdmig_src_progress(src, &p), 0);
	assert_int_equal(p.workers, 12);
	migrate_all(src, &d, &sg, &dg, &rng);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * 2 regions in 16-page segments: 48 MRs registered on every CPU at once.
 * Each worker picks the lkey of the segment its chunk lies in; a key of
 * another segment (or none) fails the WRITE, over rxe and over loopback.
 */
static void many_segments_registered_at_once(void **state)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 }, len[2] = { 512 * DT_PAGE, 256 * DT_PAGE };
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct dt_dst d;
	uint64_t rng = 11;

	(void)state;
	dt_guest_init(&sg, 2, gpa, len);
	dt_guest_init(&dg, 2, gpa, len);
	dt_guest_fill(&sg, &rng);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	rdmig_opts_init(&o);
	o.chunk_pages = 16;
	o.workers = 3;
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	for (unsigned i = 0; i < sg.n; i++)
		assert_int_equal(rdmig_src_add_region(src, sg.gpa[i], sg.hva[i], sg.len[i]),
				 (int)i);
	rdmig__src_set_mr_segment(src, 16 * DT_PAGE);
	if (rdmig_src_connect(src, ip, d.port))
		fail_msg("connect: %s", rdmig_last_error());
	migrate_all(src, &d, &sg, &dg, &rng);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- failures while connecting (loopback) ------------------------------------ */

static int count_dir(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

static void assert_nothing_left(int threads, int fds)
{
	struct rdmig__loop_live l;

	rdmig__loopback_live(&l);
	assert_int_equal(
		l.chans + l.ids + l.pds + l.mrs + l.cqs + l.qps + l.nics + l.fds + l.events, 0);
	assert_int_equal(count_dir("/proc/self/task"), threads);
	assert_int_equal(count_dir("/proc/self/fd"), fds);
}

struct canceller {
	struct rdmig_src *src;
	unsigned after_ms;
};

static void *cancel_main(void *arg)
{
	struct canceller *c = arg;

	usleep(c->after_ms * 1000);
	rdmig_src_cancel(c->src);
	return NULL;
}

/*
 * Data connection 3 of 6 (endpoint 4) is refused after `delay_ms`, while
 * the others connect; with `cancel_ms` the VMM cancels before that.
 * Returns what connect returned and how long it took.
 */
static int connect_with_refusal(unsigned delay_ms, unsigned cancel_ms, uint64_t *took_ms, char *err,
				size_t errlen)
{
	const uint64_t gpa[1] = { 0 }, len[1] = { 2ull << 20 };
	struct canceller c = { .after_ms = cancel_ms };
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct dt_dst d;
	pthread_t t;
	uint64_t t0;
	int ret, threads = count_dir("/proc/self/task"), fds = count_dir("/proc/self/fd");

	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	rdmig_opts_init(&o);
	o.workers = 6;
	o.timeout_ms = 2000;
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	assert_int_equal(rdmig_src_add_region(src, 0, sg.hva[0], len[0]), 0);
	rdmig__loopback_refuse_connect(4, delay_ms);
	c.src = src;
	if (cancel_ms)
		assert_int_equal(pthread_create(&t, NULL, cancel_main, &c), 0);
	t0 = dt_now_ms();
	ret = rdmig_src_connect(src, ip, d.port);
	*took_ms = dt_now_ms() - t0;
	snprintf(err, errlen, "%s", rdmig_last_error());
	if (cancel_ms)
		pthread_join(t, NULL);
	rdmig__loopback_refuse_connect(0, 0);
	rdmig_src_destroy(src);
	/* The source tore its connections down: the destination's session ends. */
	assert_true(dt_dst_join(&d) < 0);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
	assert_nothing_left(threads, fds);
	return ret;
}

static void data_connection_refused_mid_connect_leaves_nothing(void **state)
{
	char err[512];
	uint64_t ms;
	int ret;

	(void)state;
	if (!dt_loopback())
		skip();
	ret = connect_with_refusal(100, 0, &ms, err, sizeof(err));
	print_message("refused: %d after %llu ms: %s\n", ret, (unsigned long long)ms, err);
	assert_int_equal(ret, -ECONNREFUSED);
	assert_non_null(strstr(err, "refused"));
	assert_true(ms < 2000);
}

static void cancel_while_a_data_connection_hangs(void **state)
{
	char err[512];
	uint64_t ms;
	int ret;

	(void)state;
	if (!dt_loopback())
		skip();
	/* The refusal would come after 10 s; the cancel after 200 ms wins. */
	ret = connect_with_refusal(10000, 200, &ms, err, sizeof(err));
	print_message("cancelled: %d after %llu ms: %s\n", ret, (unsigned long long)ms, err);
	assert_int_equal(ret, -ECANCELED);
	assert_true(ms < 1500);
}

/* --- the CPUs near the device ----------------------------------------------- */

struct topo_ask {
	struct ibv_device *dev;
	int cpus[RDMIG__MAX_WORKERS];
	int n;
};

static void *topo_main(void *arg)
{
	struct topo_ask *a = arg;

	for (int k = 0; k < 20; k++)
		a->n = rdmig__topo_device_cpus(a->dev, a->cpus, RDMIG__MAX_WORKERS);
	return NULL;
}

static void device_cpus_are_hwlocs(void **state)
{
	struct ibv_device **list;
	hwloc_topology_t topo;
	int ndev;

	(void)state;
	if (dt_loopback())
		skip();
	list = ibv_get_device_list(&ndev);
	assert_non_null(list);
	assert_int_equal(hwloc_topology_init(&topo), 0);
	assert_int_equal(hwloc_topology_load(topo), 0);
	for (int i = 0; i < ndev; i++) {
		struct topo_ask ask[4];
		pthread_t t[4];
		hwloc_bitmap_t set = hwloc_bitmap_alloc();
		cpu_set_t allowed;
		int want[RDMIG__MAX_WORKERS], n = 0, cpu;

		/* hwloc's answer, with the fallback topo.c documents. */
		assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
		assert_int_equal(hwloc_ibv_get_device_cpuset(topo, list[i], set), 0);
		hwloc_bitmap_foreach_begin(cpu, set) {
			if (n < RDMIG__MAX_WORKERS && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &allowed))
				want[n++] = cpu;
		}
		hwloc_bitmap_foreach_end();
		for (cpu = 0; n == 0 && cpu < CPU_SETSIZE; cpu++)
			if (CPU_ISSET(cpu, &allowed) && n < RDMIG__MAX_WORKERS)
				want[n++] = cpu;
		hwloc_bitmap_free(set);
		for (int k = 0; k < 4; k++) {
			ask[k].dev = list[i];
			assert_int_equal(pthread_create(&t[k], NULL, topo_main, &ask[k]), 0);
		}
		for (int k = 0; k < 4; k++) {
			pthread_join(t[k], NULL);
			print_message("%s: %d CPUs (hwloc: %d)\n", ibv_get_device_name(list[i]),
				      ask[k].n, n);
			assert_int_equal(ask[k].n, n);
			assert_memory_equal(ask[k].cpus, want, (size_t)n * sizeof(int));
		}
	}
	hwloc_topology_destroy(topo);
	ibv_free_device_list(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(more_data_qps_than_connecting_threads),
		cmocka_unit_test(many_segments_registered_at_once),
		cmocka_unit_test(data_connection_refused_mid_connect_leaves_nothing),
		cmocka_unit_test(cancel_while_a_data_connection_hangs),
		cmocka_unit_test(device_cpus_are_hwlocs),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
