/* SPDX-License-Identifier: MIT */
/*
 * Internal helpers shared by every part of librdmig: the per-thread error
 * message, logging, time, and the resolved configuration (options struct
 * overridden by RDMIG_* environment variables).
 */
#ifndef RDMIG_COMMON_UTIL_H
#define RDMIG_COMMON_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <rdmig/rdmig.h>

#define RDMIG__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RDMIG__MIN(a, b)     ((a) < (b) ? (a) : (b))
#define RDMIG__MAX(a, b)     ((a) > (b) ? (a) : (b))
#define RDMIG__FMT(f, a)     __attribute__((format(printf, f, a)))

/*
 * Error reporting. rdmig__err() records a message for rdmig_last_error() on
 * the calling thread and returns `err` (a negative errno), so a failing path
 * reads `return rdmig__err(-EINVAL, "...", ...);`. errno is preserved.
 */
int rdmig__err(int err, const char *fmt, ...) RDMIG__FMT(2, 3);
/* Clears the calling thread's message (done on entry to every API call). */
void rdmig__err_clear(void);
/* Sets the calling thread's message to a prepared string. */
int rdmig__err_set(int err, const char *msg);

enum rdmig__log_level {
	RDMIG__LOG_ERR = 0,
	RDMIG__LOG_WARN = 1,
	RDMIG__LOG_INFO = 2,
	RDMIG__LOG_DEBUG = 3,
};

/* The level from RDMIG_LOG_LEVEL (error|warn|info|debug, default warn). */
enum rdmig__log_level rdmig__log_level(void);
void rdmig__log_at(enum rdmig__log_level lvl, const char *func, int line, const char *fmt, ...)
	RDMIG__FMT(4, 5);

#define rdmig__log(lvl, ...)                                                   \
	do {                                                                   \
		if ((lvl) <= rdmig__log_level())                               \
			rdmig__log_at((lvl), __func__, __LINE__, __VA_ARGS__); \
	} while (0)

/* Data-path logging compiles out unless built with RDMIG_DATAPATH_DEBUG. */
#ifdef RDMIG_DATAPATH_DEBUG
#define rdmig__dp_log(...) rdmig__log(RDMIG__LOG_DEBUG, __VA_ARGS__)
#else
#define rdmig__dp_log(...) ((void)0)
#endif

static inline uint64_t rdmig__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

enum rdmig__transport {
	RDMIG__XPORT_VERBS = 0,
	RDMIG__XPORT_LOOPBACK = 1, /* dataplane/xport_loop.c */
};

/* The configuration a handle runs with: every field resolved and checked. */
struct rdmig__config {
	uint32_t page_size;
	uint32_t workers; /* 0: choose from the topology at connect */
	uint32_t chunk_pages;
	uint32_t queue_depth;
	uint32_t signal_interval;
	uint32_t qp_timeout;
	uint64_t inflight_bytes;
	uint32_t timeout_ms;
	uint32_t idle_timeout_ms;
	uint32_t accept_timeout_ms;
	uint32_t max_qps;
	bool pin;
	uint32_t simd; /* enum rdmig_simd; AUTO is resolved by rdmig__scanner_init() */
	bool skip_zero;
	bool skip_unchanged;
	uint32_t transport; /* enum rdmig__transport (RDMIG_TRANSPORT) */
	uint32_t loopback_rate_mbps;
	uint32_t auth; /* RDMIG_AUTH_PSK (a key is in psk) or RDMIG_AUTH_NONE; 0: no key given */
	uint32_t auth_timeout_ms;
	uint32_t psk_len;
	uint8_t psk[RDMIG_PSK_MAX]; /* wiped by rdmig__config_wipe() */
	uint64_t max_bandwidth;	    /* bytes per second of RDMA WRITEs, 0: no cap */
};

/* The lowest bandwidth cap: below it a 1 MiB WRITE takes over a second. */
#define RDMIG__MIN_BANDWIDTH (1ull << 20)

/* Limits that the wire protocol and the data plane share. */
#define RDMIG__MAX_WORKERS 64
#define RDMIG__MAX_QPS	   64
#define RDMIG__MAX_REGIONS 256

/*
 * Merges `opts` (may be NULL), the RDMIG_* environment and the defaults into
 * `cfg`. Returns 0, or -EINVAL with a message naming the field or variable.
 */
int rdmig__config_resolve(const struct rdmig_opts *opts, struct rdmig__config *cfg);
/* Wipes the key in cfg (handles call it when destroyed). */
void rdmig__config_wipe(struct rdmig__config *cfg);
/*
 * Before connect or listen: 0 if the handle has a key or the VMM chose an
 * unauthenticated session (then a warning, once per process), else
 * -EACCES saying how to give a key. `who` names the call.
 */
int rdmig__config_auth_ready(const struct rdmig__config *cfg, const char *who);

#endif /* RDMIG_COMMON_UTIL_H */
