/* SPDX-License-Identifier: MIT */
/*
 * The per-thread error message behind rdmig_last_error(), and logging
 * (to stderr, or to the VMM's callback: rdmig_set_log()).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util.h"

static __thread char last_error[RDMIG_ERROR_MAX];

const char *rdmig_last_error(void)
{
	return last_error;
}

void rdmig__err_clear(void)
{
	last_error[0] = '\0';
}

int rdmig__err_set(int err, const char *msg)
{
	if (msg != last_error)
		snprintf(last_error, sizeof(last_error), "%s", msg);
	return err;
}

int rdmig__err(int err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	rdmig__log(RDMIG__LOG_DEBUG, "%s (%s)", last_error, strerror(-err));
	errno = saved;
	return err;
}

static enum rdmig__log_level log_level = RDMIG__LOG_WARN;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

_Static_assert(RDMIG_LOG_ERROR == (int)RDMIG__LOG_ERR && RDMIG_LOG_WARN == (int)RDMIG__LOG_WARN &&
		       RDMIG_LOG_INFO == (int)RDMIG__LOG_INFO &&
		       RDMIG_LOG_DEBUG == (int)RDMIG__LOG_DEBUG,
	       "the public log levels are the internal ones");

/*
 * The VMM's log callback (rdmig_set_log()), NULL for stderr. Lines are
 * emitted under the read side of `sink_lock` and the setter takes the
 * write side: so lines from any number of threads go out at once, the
 * (fn, arg) pair is always read as one, and once rdmig_set_log() returns
 * no thread is still inside the old callback, so the VMM may free its arg.
 * Statically initialised: it works before any handle exists, and rdmig
 * has no constructors.
 */
static pthread_rwlock_t sink_lock = PTHREAD_RWLOCK_INITIALIZER;
static rdmig_log_fn sink_fn;
static void *sink_arg;

void rdmig_set_log(rdmig_log_fn fn, void *arg)
{
	int saved = errno;

	pthread_rwlock_wrlock(&sink_lock);
	sink_fn = fn;
	sink_arg = fn ? arg : NULL;
	pthread_rwlock_unlock(&sink_lock);
	errno = saved;
}

/* One finished line (no newline): to the VMM's callback, or to stderr. */
static void log_emit(enum rdmig__log_level lvl, const char *line)
{
	static const char *const tags[] = { "error", "warn", "info", "debug" };

	pthread_rwlock_rdlock(&sink_lock);
	if (sink_fn)
		sink_fn(sink_arg, (enum rdmig_log_level)lvl, line);
	else
		fprintf(stderr, "rdmig %s %s\n", tags[lvl], line);
	pthread_rwlock_unlock(&sink_lock);
}

static void log_init(void)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	const char *v = getenv("RDMIG_LOG_LEVEL");

	if (!v || !*v)
		return;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(names); i++) {
		if (!strcmp(v, names[i])) {
			log_level = (enum rdmig__log_level)i;
			return;
		}
	}
	/* Logging must work before any handle exists, so a bad level is
	 * reported here; rdmig__config_resolve() also rejects it. */
	{
		char line[160];

		snprintf(line, sizeof(line),
			 "RDMIG_LOG_LEVEL: '%.64s' is not error|warn|info|debug (warn is used)", v);
		log_emit(RDMIG__LOG_ERR, line);
	}
}

enum rdmig__log_level rdmig__log_level(void)
{
	pthread_once(&log_once, log_init);
	return log_level;
}

void rdmig__log_at(enum rdmig__log_level lvl, const char *func, int line, const char *fmt, ...)
{
	int saved = errno, n;
	char buf[768];
	va_list ap;

	n = snprintf(buf, sizeof(buf), "%s:%d: ", func, line);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	log_emit(lvl, buf);
	errno = saved;
}

int rdmig__cancel_init(struct rdmig__cancel *c)
{
	atomic_init(&c->raised, false);
	c->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->fd < 0)
		return rdmig__err(-errno, "eventfd: %s", strerror(errno));
	return 0;
}

void rdmig__cancel_fini(struct rdmig__cancel *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

void rdmig__cancel_raise(struct rdmig__cancel *c)
{
	uint64_t one = 1;

	/* An atomic store and a write(2), nothing else: callable from a
	 * signal handler. */
	atomic_store(&c->raised, true);
	if (write(c->fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so it is readable already */
	}
}

int rdmig__errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

struct par {
	int (*fn)(void *arg, unsigned job);
	void *arg;
	unsigned njobs;
	atomic_uint next;
	atomic_bool failed;
	pthread_mutex_t lock; /* guards err, job, msg */
	int err;
	unsigned job; /* the failed job with the lowest index */
	char msg[RDMIG_ERROR_MAX];
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	unsigned j;

	while (!atomic_load(&p->failed) && (j = atomic_fetch_add(&p->next, 1)) < p->njobs) {
		int ret;

		rdmig__err_clear();
		if (!(ret = p->fn(p->arg, j)))
			continue;
		pthread_mutex_lock(&p->lock);
		if (!p->err || j < p->job) {
			p->err = ret;
			p->job = j;
			snprintf(p->msg, sizeof(p->msg), "%s", last_error);
		}
		pthread_mutex_unlock(&p->lock);
		atomic_store(&p->failed, true);
	}
	return NULL;
}

int rdmig__parallel(unsigned njobs, unsigned threads, int (*fn)(void *arg, unsigned job), void *arg)
{
	struct par *p;
	pthread_t th[64];
	unsigned nth = threads < njobs ? threads : njobs, started = 0;
	int ret = 0;

	if (nth > 64)
		nth = 64;
	if (nth <= 1) {
		for (unsigned j = 0; j < njobs; j++)
			if ((ret = fn(arg, j)))
				return ret;
		return 0;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return rdmig__err(-ENOMEM, "no memory for helper threads");
	p->fn = fn;
	p->arg = arg;
	p->njobs = njobs;
	atomic_init(&p->next, 0);
	atomic_init(&p->failed, false);
	pthread_mutex_init(&p->lock, NULL);
	for (unsigned t = 1; t < nth; t++) {
		if ((ret = pthread_create(&th[started], NULL, par_main, p)))
			break;
		started++;
	}
	if (ret) /* fewer helpers: the jobs still all run */
		rdmig__log(RDMIG__LOG_WARN, "cannot start a helper thread (%s): %u of %u run",
			   strerror(ret), started + 1, nth);
	par_main(p);
	for (unsigned t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	ret = p->err;
	if (ret)
		rdmig__err_set(ret, p->msg);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return ret;
}

unsigned rdmig__ncpus_allowed(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}
