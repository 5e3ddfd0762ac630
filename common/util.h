/* SPDX-License-Identifier: MIT */
/*
 * Internal helpers shared by every part of librdmig: the per-thread error
 * message, logging, time, and the resolved configuration (options struct
 * overridden by RDMIG_* environment variables).
 */
#ifndef RDMIG_COMMON_UTIL_H
#define RDMIG_COMMON_UTIL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>

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
/*
 * For pure functions that report into a caller's buffer instead (codecs,
 * checks): formats into err (errlen bytes; nothing if err is NULL) and
 * returns `code`.
 */
int rdmig__errf(char *err, size_t errlen, int code, const char *fmt, ...) RDMIG__FMT(4, 5);
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

/*
 * Runs fn(arg, job) for job 0 .. njobs-1 on up to `threads` threads, the
 * calling one among them (no thread at all for one job or one thread):
 * each takes the next job. After a failure no new job starts (those under
 * way finish). Returns 0, or the error of the failed job with the lowest
 * index, its message set on the calling thread (rdmig_last_error()).
 * For connect's independent steps (ctrl/src.c, ctrl/dst.c): fn must be
 * thread-safe, and it is rdmig's own thread that calls it (the log
 * callback may run there).
 */
int rdmig__parallel(unsigned njobs, unsigned threads, int (*fn)(void *arg, unsigned job),
		    void *arg);

/* CPUs this thread may run on (at least 1): how many helpers are worth it. */
unsigned rdmig__ncpus_allowed(void);

enum rdmig__transport {
	RDMIG__XPORT_VERBS = 0,
	RDMIG__XPORT_LOOPBACK = 1, /* dataplane/xport_loop.c */
};

#define RDMIG__MAX_CPUS	 1024 /* CPU_SETSIZE */
#define RDMIG__CPU_WORDS (RDMIG__MAX_CPUS / 64)

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
	uint32_t skip_policy; /* enum rdmig__skip_policy (RDMIG_SKIP_POLICY) */
	uint32_t transport;   /* enum rdmig__transport (RDMIG_TRANSPORT) */
	uint32_t loopback_rate_mbps;
	uint32_t auth; /* RDMIG_AUTH_PSK (a key is in psk) or RDMIG_AUTH_NONE; 0: no key given */
	uint32_t auth_timeout_ms;
	uint32_t psk_len;
	uint8_t psk[RDMIG_PSK_MAX]; /* wiped by rdmig__config_wipe() */
	/* The path (rdmig.h, "Choosing the path"): RDMIG_LOCAL_ADDR and friends. */
	bool has_local;
	struct sockaddr_storage local; /* port 0 */
	char local_str[64];	       /* as given, for messages */
	char device[64];	       /* "": any device */
	uint32_t device_port;	       /* 0: any port */
	int32_t gid_index;	       /* -1: rdma_cm's choice */
	int32_t tos;		       /* -1: the device's default */
	bool has_worker_cpus;
	uint64_t worker_cpus[RDMIG__CPU_WORDS]; /* bit c: CPU c */
	uint64_t max_bandwidth;			/* bytes per second of RDMA WRITEs, 0: no cap */
};

/*
 * RDMIG_SKIP_POLICY: whether a pass with skip_unchanged on hashes what it
 * writes (so that a later pass may skip what is rewritten unchanged).
 * AUTO: when the model says it pays (dataplane/model.h,
 * rdmig__model_hash_pays); ALWAYS: every pass; NEVER: no pass but a
 * sample. Final passes verify, and so hash, whatever it says.
 */
enum rdmig__skip_policy {
	RDMIG__SKIP_AUTO = 0,
	RDMIG__SKIP_ALWAYS = 1,
	RDMIG__SKIP_NEVER = 2,
};

/* The lowest bandwidth cap: below it a 1 MiB WRITE takes over a second. */
#define RDMIG__MIN_BANDWIDTH (1ull << 20)

/*
 * A cancel request (rdmig_src_cancel, rdmig_dst_cancel): a flag any thread
 * or a signal handler may raise, and an eventfd written with it so that a
 * thread asleep in poll(2) wakes. Raising it is async-signal-safe.
 */
struct rdmig__cancel {
	atomic_bool raised;
	int fd; /* eventfd, readable once raised */
};

int rdmig__cancel_init(struct rdmig__cancel *c);
void rdmig__cancel_fini(struct rdmig__cancel *c);
void rdmig__cancel_raise(struct rdmig__cancel *c);
static inline bool rdmig__cancelled(const struct rdmig__cancel *c)
{
	return atomic_load(&c->raised);
}

/*
 * CPU sets as plain bitmaps (bit c of word c / 64), so that this header
 * needs no _GNU_SOURCE for cpu_set_t.
 */
static inline bool rdmig__cpu_isset(const uint64_t *set, unsigned cpu)
{
	return cpu < RDMIG__MAX_CPUS && (set[cpu / 64] >> (cpu % 64)) & 1;
}
/* Fills `set` with the CPUs this thread may run on. 0 or -errno. */
int rdmig__cpus_allowed(uint64_t *set);
/* Writes `set` as a CPU list ("0-3,8"), "(none)" when empty. */
void rdmig__cpus_format(const uint64_t *set, char *buf, size_t size);

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
