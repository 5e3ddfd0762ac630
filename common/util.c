/* SPDX-License-Identifier: MIT */
/*
 * The per-thread error message behind rdmig_last_error(), and logging.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util.h"

static __thread char last_error[512];

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
	fprintf(stderr, "rdmig: RDMIG_LOG_LEVEL: '%s' is not error|warn|info|debug\n", v);
}

enum rdmig__log_level rdmig__log_level(void)
{
	pthread_once(&log_once, log_init);
	return log_level;
}

void rdmig__log_at(enum rdmig__log_level lvl, const char *func, int line, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warn", "info", "debug" };
	int saved = errno;
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "rdmig %s %s:%d: %s\n", tags[lvl], func, line, buf);
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
