/* SPDX-License-Identifier: MIT */
/*
 * Cancel from another thread and from a signal handler, over real verbs
 * (and over loopback): a cancelled connect, pass or run returns
 * -ECANCELED within the documented bound (100 ms plus the flush of work
 * requests in flight: the assertion allows 2 s, TCG-emulated soft-RoCE
 * being slow to flush, and prints what it measured); the peer sees an
 * abort (-ECONNABORTED), not a timeout; no memory registration is left;
 * an idle handle's next call fails; destroy afterwards is safe.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "device/devtest.h"

#define BOUND_MS 2000

static const char *ip;

struct canceller {
	pthread_t thread;
	struct rdmig_src *src;
	struct rdmig_dst *dst;
	unsigned after_ms;
	uint64_t at_ms; /* when it cancelled */
};

static void *cancel_main(void *arg)
{
	struct canceller *c = arg;

	usleep(c->after_ms * 1000);
	c->at_ms = dt_now_ms();
	assert_int_equal(c->src ? rdmig_src_cancel(c->src) : rdmig_dst_cancel(c->dst), 0);
	return NULL;
}

static void cancel_later(struct canceller *c, struct rdmig_src *src, struct rdmig_dst *dst,
			 unsigned after_ms)
{
	memset(c, 0, sizeof(*c));
	c->src = src;
	c->dst = dst;
	c->after_ms = after_ms;
	assert_int_equal(pthread_create(&c->thread, NULL, cancel_main, c), 0);
}

/* A guest large enough that a pass over it lasts well beyond the cancel. */
static void big_guest(struct dt_guest *g, uint64_t mib)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { mib << 20 };
	uint64_t rng = 7;

	dt_guest_init(g, 1, gpa, len);
	dt_guest_fill(g, &rng);
}

/* The source is cancelled from another thread in the middle of its first pass. */
static void cancel_during_pass_returns_ecanceled_peer_aborts(void **state)
{
	struct dt_guest sg, dg;
	struct canceller c;
	struct dt_dst d;
	struct rdmig_src *src;
	uint64_t t0, took;
	int ret;

	(void)state;
	/* Over loopback the wire is capped so the pass lasts about 2 s. */
	if (dt_loopback())
		setenv("RDMIG_LOOPBACK_RATE_MBPS", "400", 1);
	big_guest(&sg, dt_loopback() ? 96 : 64);
	big_guest(&dg, dt_loopback() ? 96 : 64);
	dt_dst_start(&d, ip, &dg, 0, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);
	unsetenv("RDMIG_LOOPBACK_RATE_MBPS");
	t0 = dt_now_ms();
	cancel_later(&c, src, NULL, 300);
	ret = rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL);
	took = dt_now_ms();
	pthread_join(c.thread, NULL);
	if (ret != -ECANCELED)
		fail_msg("pass returned %d (%s) after %llu ms, expected -ECANCELED", ret,
			 rdmig_last_error(), (unsigned long long)(took - t0));
	printf("pass returned -ECANCELED %llu ms after the cancel\n",
	       (unsigned long long)(took - c.at_ms));
	assert_true(took - c.at_ms < BOUND_MS);
	assert_non_null(strstr(rdmig_last_error(), "cancel"));
	/* The destination heard an abort, not a silence or a disconnect. */
	assert_int_equal(dt_dst_join(&d), -ECONNABORTED);
	assert_non_null(strstr(d.err, "cancelled"));
	/* Every later call but destroy says the same. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), -ECANCELED);
	assert_int_equal(rdmig_src_complete(src), -ECANCELED);
	/* Guest memory is deregistered already, before destroy. */
	assert_int_equal(dt_mr_count(getpid()), 0);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

static struct rdmig_src *signal_src;

static void on_alarm(int sig)
{
	(void)sig;
	rdmig_src_cancel(signal_src);
}

/* The same from a signal handler that interrupts the thread inside the pass. */
static void cancel_from_signal_handler(void **state)
{
	struct itimerval it = { .it_value = { .tv_usec = 300000 } };
	struct sigaction sa = { .sa_handler = on_alarm };
	struct dt_guest sg, dg;
	struct dt_dst d;
	uint64_t t0;
	int ret;

	(void)state;
	if (dt_loopback())
		setenv("RDMIG_LOOPBACK_RATE_MBPS", "400", 1);
	big_guest(&sg, dt_loopback() ? 96 : 64);
	big_guest(&dg, dt_loopback() ? 96 : 64);
	dt_dst_start(&d, ip, &dg, 0, NULL);
	signal_src = dt_src_connect(ip, &d, &sg, NULL);
	unsetenv("RDMIG_LOOPBACK_RATE_MBPS");
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
	t0 = dt_now_ms();
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	ret = rdmig_src_pass(signal_src, NULL, 0, RDMIG_PASS_ALL, NULL);
	printf("pass returned %d %llu ms after it started (the signal came at 300 ms)\n", ret,
	       (unsigned long long)(dt_now_ms() - t0));
	assert_int_equal(ret, -ECANCELED);
	assert_true(dt_now_ms() - t0 < 300 + BOUND_MS);
	assert_int_equal(dt_dst_join(&d), -ECONNABORTED);
	rdmig_src_destroy(signal_src);
	signal(SIGALRM, SIG_DFL);
	assert_int_equal(dt_mr_count(getpid()), 0);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * A destination that listens but never runs: the connect waits for an
 * answer that does not come (up to RDMIG_TIMEOUT_MS, 20 s); a cancel
 * ends it at once.
 */
static void cancel_during_connect(void **state)
{
	struct dt_guest g;
	struct canceller c;
	struct rdmig_dst *dst;
	struct rdmig_src *src;
	char port[16];
	uint64_t took;
	int p, ret;

	(void)state;
	big_guest(&g, 1);
	assert_int_equal(rdmig_dst_create(NULL, &dst), 0);
	assert_int_equal(rdmig_dst_add_region(dst, 0, g.hva[0], g.len[0], 0), 0);
	p = rdmig_dst_listen(dst, ip, "0");
	assert_true(p > 0);
	snprintf(port, sizeof(port), "%d", p);
	assert_int_equal(rdmig_src_create(NULL, &src), 0);
	assert_int_equal(rdmig_src_add_region(src, 0, g.hva[0], g.len[0]), 0);
	cancel_later(&c, src, NULL, 300);
	ret = rdmig_src_connect(src, ip, port);
	took = dt_now_ms();
	pthread_join(c.thread, NULL);
	printf("connect returned %d %llu ms after the cancel\n", ret,
	       (unsigned long long)(took - c.at_ms));
	assert_int_equal(ret, -ECANCELED);
	assert_true(took - c.at_ms < BOUND_MS);
	assert_int_equal(rdmig_src_connect(src, ip, port), -ECANCELED);
	rdmig_src_destroy(src);
	rdmig_dst_destroy(dst);
	assert_int_equal(dt_mr_count(getpid()), 0);
	dt_guest_fini(&g);
}

/* Cancelled between calls: the next one fails, and the destination is told then. */
static void cancel_idle_handles(void **state)
{
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct rdmig_dst *dst;
	struct dt_dst d;

	(void)state;
	big_guest(&sg, 1);
	big_guest(&dg, 1);
	/* Not yet connected. */
	assert_int_equal(rdmig_src_create(NULL, &src), 0);
	assert_int_equal(rdmig_src_cancel(src), 0);
	assert_int_equal(rdmig_src_add_region(src, 0, sg.hva[0], sg.len[0]), -ECANCELED);
	assert_int_equal(rdmig_src_connect(src, ip, "1"), -ECANCELED);
	rdmig_src_destroy(src);
	assert_int_equal(rdmig_dst_create(NULL, &dst), 0);
	assert_int_equal(rdmig_dst_add_region(dst, 0, dg.hva[0], dg.len[0], 0), 0);
	assert_true(rdmig_dst_listen(dst, ip, "0") > 0);
	assert_int_equal(rdmig_dst_cancel(dst), 0);
	assert_int_equal(rdmig_dst_run(dst, NULL), -ECANCELED);
	assert_int_equal(rdmig_dst_run(dst, NULL), -ECANCELED);
	rdmig_dst_destroy(dst);

	/* Connected, between passes. */
	dt_dst_start(&d, ip, &dg, 0, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), 0);
	assert_int_equal(rdmig_src_cancel(src), 0);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), -ECANCELED);
	assert_int_equal(dt_dst_join(&d), -ECONNABORTED);
	assert_int_equal(rdmig_src_complete(src), -ECANCELED);
	rdmig_src_destroy(src);
	assert_int_equal(dt_mr_count(getpid()), 0);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* The destination is cancelled while a source is connected; the source learns of it. */
static void dst_cancel_during_session(void **state)
{
	struct dt_guest sg, dg;
	struct canceller c;
	struct dt_dst d;
	struct rdmig_src *src;
	uint64_t took;
	int ret;

	(void)state;
	big_guest(&sg, 4);
	big_guest(&dg, 4);
	dt_dst_start(&d, ip, &dg, 0, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), 0);
	cancel_later(&c, NULL, d.dst, 100);
	pthread_join(d.thread, NULL);
	took = dt_now_ms();
	pthread_join(c.thread, NULL);
	printf("rdmig_dst_run returned %d %llu ms after the cancel\n", d.ret,
	       (unsigned long long)(took - c.at_ms));
	assert_int_equal(d.ret, -ECANCELED);
	assert_true(took - c.at_ms < BOUND_MS);
	/* The source's next call hears the abort, not a timeout. */
	ret = rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL);
	if (ret != -ECONNABORTED)
		fail_msg("pass returned %d (%s), expected -ECONNABORTED", ret, rdmig_last_error());
	assert_non_null(strstr(rdmig_last_error(), "cancelled"));
	rdmig_src_destroy(src);
	rdmig_dst_destroy(d.dst);
	assert_int_equal(dt_mr_count(getpid()), 0);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* Waiting for a source that never comes: cancel ends the wait. */
static void dst_cancel_while_waiting(void **state)
{
	struct dt_guest g;
	struct canceller c;
	struct dt_dst d;
	uint64_t took;

	(void)state;
	big_guest(&g, 1);
	dt_dst_start(&d, ip, &g, 0, NULL);
	cancel_later(&c, NULL, d.dst, 200);
	pthread_join(d.thread, NULL);
	took = dt_now_ms();
	pthread_join(c.thread, NULL);
	assert_int_equal(d.ret, -ECANCELED);
	assert_true(took - c.at_ms < BOUND_MS);
	rdmig_dst_destroy(d.dst);
	dt_guest_fini(&g);
}

static void cancel_null_einval(void **state)
{
	(void)state;
	assert_int_equal(rdmig_src_cancel(NULL), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "src"));
	assert_int_equal(rdmig_dst_cancel(NULL), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "dst"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cancel_null_einval),
		cmocka_unit_test(cancel_during_pass_returns_ecanceled_peer_aborts),
		cmocka_unit_test(cancel_from_signal_handler),
		cmocka_unit_test(cancel_during_connect),
		cmocka_unit_test(cancel_idle_handles),
		cmocka_unit_test(dst_cancel_during_session),
		cmocka_unit_test(dst_cancel_while_waiting),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
