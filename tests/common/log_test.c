/* SPDX-License-Identifier: MIT */
/*
 * Tests of the log callback (rdmig_set_log(), common/util.c): lines from a
 * real migration over the loopback transport reach it from the threads
 * that make them, a failure's line from a config error does too, NULL
 * gives stderr back, and the setter is safe against lines made at once on
 * other threads. RDMIG_LOG_LEVEL is read once per process, so CMake runs
 * this program once per level (warn, info, debug, and a bad one) and each
 * test checks what that level lets through.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "device/devtest.h"

static const char *ip;
static int level; /* what RDMIG_LOG_LEVEL says; -1: a bad value */

#define MAX_LINES 64

struct line {
	int level;
	pthread_t thread;
	char msg[256];
};

/* What one callback saw: the first MAX_LINES lines, and counts of all. */
struct capture {
	pthread_mutex_t lock;
	unsigned n, total, above; /* `above`: lines above the process's level */
	unsigned per_level[4];
	struct line lines[MAX_LINES];
};

static void capture_init(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
}

static void sink(void *arg, enum rdmig_log_level lvl, const char *msg)
{
	struct capture *c = arg;

	pthread_mutex_lock(&c->lock);
	c->total++;
	c->above += (int)lvl > level;
	if ((unsigned)lvl < 4)
		c->per_level[lvl]++;
	if (c->n < MAX_LINES) {
		c->lines[c->n].level = (int)lvl;
		c->lines[c->n].thread = pthread_self();
		snprintf(c->lines[c->n].msg, sizeof(c->lines[c->n].msg), "%s", msg);
		c->n++;
	}
	pthread_mutex_unlock(&c->lock);
}

/* The first captured line of `lvl` that contains `needle`, or NULL. */
static const struct line *find(const struct capture *c, int lvl, const char *needle)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->lines[i].level == lvl && strstr(c->lines[i].msg, needle))
			return &c->lines[i];
	return NULL;
}

/* A migration over loopback: the source's INFO line comes from this
 * thread, the destination's from the thread inside rdmig_dst_run(). */
static void log_hook_loopback_migration_lines_from_their_threads(void **state)
{
	const uint64_t gpa[1] = { 0 }, len[1] = { 64 * DT_PAGE };
	struct dt_guest sg, dg;
	struct capture c;
	struct rdmig_src *src;
	const struct line *l;
	uint64_t seed = 5;
	struct dt_dst d;

	(void)state;
	capture_init(&c);
	rdmig_set_log(sink, &c);
	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	dt_guest_fill(&sg, &seed);
	dt_dst_start(&d, ip, &dg, 0, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL | RDMIG_PASS_FINAL, NULL), 0);
	assert_int_equal(rdmig_src_complete(src), 0);
	assert_int_equal(dt_dst_join(&d), 0);
	rdmig_src_destroy(src);
	rdmig_set_log(NULL, NULL);
	assert_int_equal(c.above, 0); /* RDMIG_LOG_LEVEL filters before the callback */
	if (level >= RDMIG_LOG_INFO) {
		l = find(&c, RDMIG_LOG_INFO, "connected to 127.0.0.1");
		if (!l)
			fail_msg("no INFO line from connect (%u lines)", c.total);
		assert_true(pthread_equal(l->thread, pthread_self()));
		assert_non_null(strstr(l->msg, "rdmig_src_connect:")); /* function:line: */
		l = find(&c, RDMIG_LOG_INFO, "serving a source");
		if (!l)
			fail_msg("no INFO line from the destination (%u lines)", c.total);
		assert_true(pthread_equal(l->thread, d.thread));
	} else {
		assert_int_equal(c.per_level[RDMIG_LOG_INFO], 0);
		assert_int_equal(c.per_level[RDMIG_LOG_DEBUG], 0);
	}
	assert_memory_equal(sg.hva[0], dg.hva[0], len[0]);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* A bad variable fails create; at debug its message is also a line. */
static void log_hook_config_error_line_at_debug(void **state)
{
	struct rdmig_src *src = NULL;
	struct capture c;
	const struct line *l;

	(void)state;
	capture_init(&c);
	rdmig_set_log(sink, &c);
	setenv("RDMIG_WORKERS", "many", 1);
	assert_int_equal(rdmig_src_create(NULL, &src), -EINVAL);
	unsetenv("RDMIG_WORKERS");
	rdmig_set_log(NULL, NULL);
	assert_non_null(strstr(rdmig_last_error(), "RDMIG_WORKERS"));
	l = find(&c, RDMIG_LOG_DEBUG, "RDMIG_WORKERS: 'many' is not a number");
	if (level >= RDMIG_LOG_DEBUG)
		assert_non_null(l);
	else
		assert_int_equal(c.total, 0);
}

/* NULL gives the lines back to stderr, "rdmig LEVEL function:line: text". */
static void log_hook_null_restores_stderr(void **state)
{
	char path[] = "/tmp/rdmig-log-test-XXXXXX", buf[4096] = { 0 };
	int fd = mkstemp(path), saved = dup(2);
	struct capture c;
	ssize_t n;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	capture_init(&c);
	rdmig_set_log(sink, &c);
	assert_int_equal(dup2(fd, 2), 2);
	assert_int_equal(rdmig_src_create(NULL, NULL), -EINVAL); /* "srcp is NULL" */
	rdmig_set_log(NULL, NULL);
	assert_int_equal(rdmig_dst_create(NULL, NULL), -EINVAL); /* "dstp is NULL" */
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n >= 0);
	assert_null(strstr(buf, "srcp is NULL"));
	if (level >= RDMIG_LOG_DEBUG) {
		assert_non_null(find(&c, RDMIG_LOG_DEBUG, "srcp is NULL"));
		assert_null(find(&c, RDMIG_LOG_DEBUG, "dstp is NULL"));
		if (!strstr(buf, "rdmig debug ") || !strstr(buf, "dstp is NULL"))
			fail_msg("stderr has no line for the second failure: '%s'", buf);
	} else {
		assert_int_equal(c.total, 0);
		assert_int_equal(n, 0);
	}
}

/*
 * Four threads make lines while the main thread swaps the callback
 * between two sinks: every line reaches exactly one of them, and once
 * rdmig_set_log() returns, the sink it replaced is never called again.
 */
struct swap {
	struct capture a, b;
	atomic_int retired; /* 1: a is replaced, 2: b is */
	atomic_int late;    /* calls into a retired sink */
	atomic_bool stop;
	atomic_uint made;
};

static struct swap sw;

static void sink_a(void *arg, enum rdmig_log_level lvl, const char *msg)
{
	if (atomic_load(&sw.retired) == 1)
		atomic_fetch_add(&sw.late, 1);
	sink(arg, lvl, msg);
}

static void sink_b(void *arg, enum rdmig_log_level lvl, const char *msg)
{
	if (atomic_load(&sw.retired) == 2)
		atomic_fetch_add(&sw.late, 1);
	sink(arg, lvl, msg);
}

static void *maker(void *arg)
{
	(void)arg;
	while (!atomic_load(&sw.stop)) {
		/* A DEBUG line each (at debug); no cmocka assert off the
		 * test's thread: a wrong result shows in the counts. */
		if (rdmig_src_create(NULL, NULL) == -EINVAL)
			atomic_fetch_add(&sw.made, 1);
	}
	return NULL;
}

static void log_hook_swapped_under_concurrent_lines(void **state)
{
	pthread_t t[4];

	(void)state;
	memset(&sw, 0, sizeof(sw));
	capture_init(&sw.a);
	capture_init(&sw.b);
	rdmig_set_log(sink_a, &sw.a);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, maker, NULL), 0);
	for (unsigned k = 0; k < 2000; k++) {
		/* While the swap runs either sink may be called. */
		atomic_store(&sw.retired, 0);
		if (k % 2) {
			rdmig_set_log(sink_a, &sw.a);
			atomic_store(&sw.retired, 2);
		} else {
			rdmig_set_log(sink_b, &sw.b);
			atomic_store(&sw.retired, 1);
		}
		if (k % 100 == 0)
			usleep(100);
	}
	atomic_store(&sw.stop, true);
	for (unsigned i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	rdmig_set_log(NULL, NULL);
	assert_int_equal(atomic_load(&sw.late), 0);
	if (level >= RDMIG_LOG_DEBUG) {
		assert_int_equal(sw.a.total + sw.b.total, atomic_load(&sw.made));
		assert_true(sw.a.total > 0 && sw.b.total > 0);
	} else {
		assert_int_equal(sw.a.total + sw.b.total, 0);
	}
}

/* RDMIG_LOG_LEVEL=loud: said through the callback, at error, and create
 * fails naming the variable. */
static void log_hook_bad_level_said_through_the_callback(void **state)
{
	struct rdmig_dst *dst = NULL;
	struct capture c;

	(void)state;
	if (level != -1)
		skip();
	capture_init(&c);
	rdmig_set_log(sink, &c);
	assert_int_equal(rdmig_dst_create(NULL, &dst), -EINVAL);
	rdmig_set_log(NULL, NULL);
	assert_non_null(strstr(rdmig_last_error(), "RDMIG_LOG_LEVEL"));
	assert_int_equal(c.per_level[RDMIG_LOG_ERROR], 1);
	assert_non_null(find(&c, RDMIG_LOG_ERROR, "RDMIG_LOG_LEVEL: 'loud'"));
}

int main(void)
{
	const char *v = getenv("RDMIG_LOG_LEVEL");
	const struct CMUnitTest all[] = {
		cmocka_unit_test(log_hook_loopback_migration_lines_from_their_threads),
		cmocka_unit_test(log_hook_config_error_line_at_debug),
		cmocka_unit_test(log_hook_null_restores_stderr),
		cmocka_unit_test(log_hook_swapped_under_concurrent_lines),
	};
	const struct CMUnitTest bad[] = {
		cmocka_unit_test(log_hook_bad_level_said_through_the_callback),
	};

	level = !v || !strcmp(v, "warn") ? RDMIG_LOG_WARN
		: !strcmp(v, "error")	 ? RDMIG_LOG_ERROR
		: !strcmp(v, "info")	 ? RDMIG_LOG_INFO
		: !strcmp(v, "debug")	 ? RDMIG_LOG_DEBUG
					 : -1;
	if (level == -1)
		return cmocka_run_group_tests(bad, NULL, NULL);
	ip = devtest_ip();
	return cmocka_run_group_tests(all, NULL, NULL);
}
