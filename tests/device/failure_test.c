/* SPDX-License-Identifier: MIT */
/*
 * Device tests of failure: a peer process killed in the middle of a pass
 * must turn into an error on the other side within the configured bound,
 * and a destination whose source died must no longer expose guest memory
 * (its memory registrations are gone, as the kernel's resource tracking
 * shows). The peer runs in a child process so that it can be SIGKILLed; the
 * child re-executes this program, because RDMA state (open device
 * contexts) must not be inherited across fork.
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
#include <sys/wait.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "device/devtest.h"

#define TIMEOUT_MS 4000 /* RDMIG_TIMEOUT_MS both sides run with */
#define IDLE_MS	   8000 /* the destination's RDMIG_IDLE_TIMEOUT_MS */
#define SLACK_MS   3000 /* scheduling under emulation */
#define GUEST	   (64ull << 20)

static const char *ip;
static const char *self;

/* Starts this program as a child in `mode`, with fd `fd` and `arg`. */
static pid_t spawn(const char *mode, int fd, const char *arg)
{
	char fdstr[16];
	pid_t pid = fork();

	if (pid == 0) {
		snprintf(fdstr, sizeof(fdstr), "%d", fd);
		execl("/proc/self/exe", self, mode, fdstr, arg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static struct rdmig_opts opts(void)
{
	struct rdmig_opts o;

	rdmig_opts_init(&o);
	/* Every pass writes the whole guest, so a kill lands among WRITEs. */
	o.skip_zero = RDMIG_SWITCH_OFF;
	o.skip_unchanged = RDMIG_SWITCH_OFF;
	o.timeout_ms = TIMEOUT_MS;
	o.idle_timeout_ms = IDLE_MS;
	o.accept_timeout_ms = 30000;
	return o;
}

static void guest(struct dt_guest *g, uint64_t seed)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t len[2] = { GUEST / 2, GUEST / 2 };

	dt_guest_init(g, 2, gpa, len);
	dt_guest_fill(g, &seed);
}

/* Child: a destination that tells the parent its port, then serves. */
static void child_destination(int fd)
{
	struct rdmig_opts o = opts();
	struct rdmig_dst *dst;
	struct dt_guest g;
	int port;

	guest(&g, 1);
	if (rdmig_dst_create(&o, &dst) ||
	    rdmig_dst_add_region(dst, g.gpa[0], g.hva[0], g.len[0], 0) < 0 ||
	    rdmig_dst_add_region(dst, g.gpa[1], g.hva[1], g.len[1], 0) < 0)
		_exit(2);
	port = rdmig_dst_listen(dst, ip, "0");
	if (port <= 0 || write(fd, &port, sizeof(port)) != sizeof(port))
		_exit(3);
	_exit(rdmig_dst_run(dst, NULL) ? 4 : 0);
}

struct killer {
	pid_t pid;
	int delay_ms;
	volatile int go;
	uint64_t killed_at;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	while (!k->go)
		usleep(1000);
	usleep((useconds_t)k->delay_ms * 1000);
	k->killed_at = dt_now_ms();
	kill(k->pid, SIGKILL);
	return NULL;
}

/* (c) The destination dies mid-pass: the source's pass fails within the bound. */
static void pass_destination_killed_source_fails_in_bound(void **state)
{
	struct rdmig_opts o = opts();
	struct rdmig_src *src;
	struct killer k = { .delay_ms = 150 };
	struct dt_guest g;
	pthread_t t;
	char port[16];
	int fds[2], p = 0, ret = 0, status;
	unsigned passes = 0;
	uint64_t failed_at;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	k.pid = spawn("--child-destination", fds[1], "");
	assert_true(k.pid > 0);
	close(fds[1]); /* a dead child reads as EOF, not as a hang */
	assert_int_equal(read(fds[0], &p, sizeof(p)), (ssize_t)sizeof(p));
	snprintf(port, sizeof(port), "%d", p);

	guest(&g, 2);
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	for (unsigned i = 0; i < g.n; i++)
		assert_true(rdmig_src_add_region(src, g.gpa[i], g.hva[i], g.len[i]) >= 0);
	assert_int_equal(rdmig_src_connect(src, ip, port), 0);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), 0);

	/* Back-to-back full passes; the kill lands in one of them. */
	assert_int_equal(pthread_create(&t, NULL, killer_main, &k), 0);
	k.go = 1;
	while (passes < 10000 && (ret = rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL)) == 0)
		passes++;
	failed_at = dt_now_ms();
	pthread_join(t, NULL);
	print_message("source failed %llu ms after the kill (%u passes before): %s\n",
		      (unsigned long long)(failed_at - k.killed_at), passes, rdmig_last_error());
	assert_true(ret == -ECONNRESET || ret == -ETIMEDOUT || ret == -EIO);
	assert_true(strlen(rdmig_last_error()) > 0);
	assert_true(failed_at - k.killed_at <= TIMEOUT_MS + SLACK_MS);
	/* The session is over; later calls say so at once. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), -EPIPE);
	assert_non_null(strstr(rdmig_last_error(), "failed earlier"));
	assert_int_equal(rdmig_src_complete(src), -EPIPE);
	rdmig_src_destroy(src);
	assert_int_equal(waitpid(k.pid, &status, 0), k.pid);
	assert_true(WIFSIGNALED(status));
	dt_guest_fini(&g);
	close(fds[0]);
}

/* Child: a source that connects and runs full passes until it is killed. */
static void child_source(const char *port, int fd)
{
	struct rdmig_opts o = opts();
	struct rdmig_src *src;
	struct dt_guest g;
	char one = 1;

	guest(&g, 3);
	if (rdmig_src_create(&o, &src) ||
	    rdmig_src_add_region(src, g.gpa[0], g.hva[0], g.len[0]) < 0 ||
	    rdmig_src_add_region(src, g.gpa[1], g.hva[1], g.len[1]) < 0 ||
	    rdmig_src_connect(src, ip, port) || rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL))
		_exit(2);
	if (write(fd, &one, 1) != 1)
		_exit(3);
	for (;;)
		if (rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL))
			_exit(4);
}

struct mr_watch {
	int fd;
	struct killer *k;
	int during; /* our registrations while the session ran */
};

static void *watch_main(void *arg)
{
	struct mr_watch *w = arg;
	char c;

	if (read(w->fd, &c, 1) != 1) {
		/* The child failed before its first pass. Kill it anyway so the
		 * destination's wait ends; the assertions then report it. */
		w->k->go = 1;
		w->k->delay_ms = 0;
		return killer_main(w->k);
	}
	w->during = dt_mr_count(getpid());
	w->k->go = 1;
	return killer_main(w->k);
}

/* (d) The source dies mid-pass: the destination fails and no longer exposes memory. */
static void run_source_killed_destination_fails_mrs_gone(void **state)
{
	struct rdmig_opts o = opts();
	struct killer k = { .delay_ms = 100 };
	struct mr_watch w = { .k = &k, .during = -1 };
	struct rdmig_dst *dst;
	struct dt_guest g;
	pthread_t t;
	char port[16];
	int fds[2], p, ret, status, after;
	uint64_t failed_at;

	(void)state;
	guest(&g, 4);
	assert_int_equal(rdmig_dst_create(&o, &dst), 0);
	for (unsigned i = 0; i < g.n; i++)
		assert_true(rdmig_dst_add_region(dst, g.gpa[i], g.hva[i], g.len[i], 0) >= 0);
	p = rdmig_dst_listen(dst, ip, "0");
	assert_true(p > 0);
	snprintf(port, sizeof(port), "%d", p);
	assert_int_equal(dt_mr_count(getpid()), 0); /* nothing exposed before a session */

	assert_int_equal(pipe(fds), 0);
	k.pid = spawn("--child-source", fds[1], port);
	assert_true(k.pid > 0);
	close(fds[1]);
	w.fd = fds[0];
	assert_int_equal(pthread_create(&t, NULL, watch_main, &w), 0);

	/* This thread registered the memory, so the kernel lists it under our pid. */
	ret = rdmig_dst_run(dst, NULL);
	failed_at = dt_now_ms();
	pthread_join(t, NULL);
	after = dt_mr_count(getpid());
	print_message("destination failed %llu ms after the kill: %s; MRs during %d, after %d\n",
		      (unsigned long long)(failed_at - k.killed_at), rdmig_last_error(), w.during,
		      after);
	assert_true(ret == -ECONNRESET || ret == -ETIMEDOUT || ret == -EIO);
	assert_true(k.killed_at > 0);
	assert_true(failed_at - k.killed_at <= IDLE_MS + SLACK_MS);
	/* Two guest regions were exposed during the session... */
	assert_true(w.during >= 2);
	/* ...and none is after it failed. */
	assert_int_equal(after, 0);
	assert_int_equal(waitpid(k.pid, &status, 0), k.pid);
	assert_true(WIFSIGNALED(status));
	rdmig_dst_destroy(dst);
	dt_guest_fini(&g);
	close(fds[0]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pass_destination_killed_source_fails_in_bound),
		cmocka_unit_test(run_source_killed_destination_fails_mrs_gone),
	};

	ip = devtest_ip();
	self = argv[0];
	if (argc == 4 && !strcmp(argv[1], "--child-destination"))
		child_destination(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "--child-source"))
		child_source(argv[3], atoi(argv[2]));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
