/* SPDX-License-Identifier: MIT */
/*
 * Options: struct rdmig_opts, overridden by RDMIG_* environment variables,
 * checked against their ranges. One table lists every knob once, so the
 * struct field, the variable, the default and the bounds cannot drift apart.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util.h"

_Static_assert(sizeof(struct rdmig_opts) == 144, "struct rdmig_opts is ABI: append only");
/* The limits rdmig.h promises are the ones the code enforces. */
_Static_assert(RDMIG_MAX_REGIONS == RDMIG__MAX_REGIONS, "RDMIG_MAX_REGIONS");
_Static_assert(RDMIG_MAX_WORKERS == RDMIG__MAX_WORKERS, "RDMIG_MAX_WORKERS");
_Static_assert(RDMIG_MAX_QPS == RDMIG__MAX_QPS, "RDMIG_MAX_QPS");

struct knob {
	const char *env;
	size_t opt_off;	 /* offset in struct rdmig_opts */
	size_t opt_size; /* 4 or 8 */
	size_t cfg_off;	 /* offset in struct rdmig__config */
	size_t cfg_size;
	uint64_t def, min, max;
	bool pow2;
};

#define KNOB(envname, field, d, lo, hi, p2)                                                      \
	{                                                                                        \
		.env = envname, .opt_off = offsetof(struct rdmig_opts, field),                   \
		.opt_size = sizeof(((struct rdmig_opts *)0)->field),                             \
		.cfg_off = offsetof(struct rdmig__config, field),                                \
		.cfg_size = sizeof(((struct rdmig__config *)0)->field), .def = (d), .min = (lo), \
		.max = (hi), .pow2 = (p2)                                                        \
	}

/* def 0 for workers means "choose at connect time from the topology". */
static const struct knob knobs[] = {
	KNOB("RDMIG_PAGE_SIZE", page_size, 4096, RDMIG_PAGE_SIZE_MIN, RDMIG_PAGE_SIZE_MAX, true),
	KNOB("RDMIG_WORKERS", workers, 0, 1, RDMIG__MAX_WORKERS, false),
	KNOB("RDMIG_CHUNK_PAGES", chunk_pages, 0, 1, 1u << 19, false),
	KNOB("RDMIG_QUEUE_DEPTH", queue_depth, 128, 4, 4096, false),
	KNOB("RDMIG_SIGNAL_INTERVAL", signal_interval, 16, 1, 4096, false),
	KNOB("RDMIG_QP_TIMEOUT", qp_timeout, 18, 8, 31, false),
	/* def 0 for chunk pages and in-flight bytes: they follow the page size (below). */
	KNOB("RDMIG_INFLIGHT_BYTES", inflight_bytes, 0, 4096, 1ull << 40, false),
	KNOB("RDMIG_TIMEOUT_MS", timeout_ms, 20000, 100, 3600000, false),
	/* At least three progress heartbeats (one a second, see ctrl/src.c). */
	KNOB("RDMIG_IDLE_TIMEOUT_MS", idle_timeout_ms, 120000, 3000, 86400000, false),
	KNOB("RDMIG_ACCEPT_TIMEOUT_MS", accept_timeout_ms, 0, 0, 86400000, false),
	KNOB("RDMIG_MAX_QPS", max_qps, 64, 1, RDMIG__MAX_QPS, false),
	KNOB("RDMIG_AUTH_TIMEOUT_MS", auth_timeout_ms, 2000, 10, 600000, false),
	/* 0 (no cap) or at least RDMIG__MIN_BANDWIDTH: checked below. */
	KNOB("RDMIG_MAX_BANDWIDTH", max_bandwidth, 0, 0, 1ull << 40, false),
};

static uint64_t load(const void *base, size_t off, size_t size)
{
	const char *p = (const char *)base + off;
	uint32_t v32;
	uint64_t v64;

	if (size == 4) {
		memcpy(&v32, p, 4);
		return v32;
	}
	memcpy(&v64, p, 8);
	return v64;
}

static void store(void *base, size_t off, size_t size, uint64_t v)
{
	char *p = (char *)base + off;
	uint32_t v32 = (uint32_t)v;

	if (size == 4)
		memcpy(p, &v32, 4);
	else
		memcpy(p, &v, 8);
}

/* Parses a decimal number with an optional K, M or G (binary) suffix. */
static int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		unsigned shift = 0;

		switch (*end) {
		case 'K':
		case 'k':
			shift = 10;
			break;
		case 'M':
		case 'm':
			shift = 20;
			break;
		case 'G':
		case 'g':
			shift = 30;
			break;
		default:
			return -EINVAL;
		}
		if (end[1] || v > (UINT64_MAX >> shift))
			return -EINVAL;
		v <<= shift;
	}
	*out = v;
	return 0;
}

static int check(const struct knob *k, uint64_t v, const char *what)
{
	if (v < k->min || v > k->max)
		return rdmig__err(-EINVAL,
				  "%s: %" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "]",
				  what, v, k->min, k->max);
	if (k->pow2 && (v & (v - 1)))
		return rdmig__err(-EINVAL, "%s: %" PRIu64 " is not a power of two", what, v);
	return 0;
}

/*
 * An on/off knob: the field (0 default = on, 1 on, 2 off, as enum rdmig_pin
 * and enum rdmig_switch), overridden by the variable (1|0|on|off).
 */
static int resolve_switch(const char *env, const char *field, uint32_t v, bool *out)
{
	const char *e = getenv(env);

	if (v > 2)
		return rdmig__err(-EINVAL, "opts.%s: %u is not 0 (default), 1 (on) or 2 (off)",
				  field, v);
	*out = v != 2;
	if (!e)
		return 0;
	if (!strcmp(e, "1") || !strcmp(e, "on"))
		*out = true;
	else if (!strcmp(e, "0") || !strcmp(e, "off"))
		*out = false;
	else
		return rdmig__err(-EINVAL, "%s: '%s' is not 1|0|on|off", env, e);
	return 0;
}

/*
 * RDMIG_SIMD, when set, replaces opts.simd (which is then never looked at);
 * whether the CPU has the ISA is checked when the scanner starts.
 */
static int resolve_simd(const struct rdmig_opts *o, uint32_t *simd)
{
	static const char *const names[] = {
		[RDMIG_SIMD_AUTO] = "auto",
		[RDMIG_SIMD_AVX512] = "avx512",
		[RDMIG_SIMD_AVX2] = "avx2",
		[RDMIG_SIMD_SCALAR] = "scalar",
	};
	const char *v = getenv("RDMIG_SIMD");

	if (v) {
		for (uint32_t i = 0; i < RDMIG__ARRAY_SIZE(names); i++) {
			if (!strcmp(v, names[i])) {
				*simd = i;
				return 0;
			}
		}
		return rdmig__err(-EINVAL, "RDMIG_SIMD: '%s' is not auto|avx512|avx2|scalar", v);
	}
	if (o->simd > RDMIG_SIMD_SCALAR)
		return rdmig__err(-EINVAL,
				  "opts.simd: %u is not an enum rdmig_simd value (see RDMIG_SIMD)",
				  o->simd);
	*simd = o->simd;
	return 0;
}

/* RDMIG_SKIP_POLICY=auto|always|never (util.h): environment only. */
static int resolve_skip_policy(uint32_t *policy)
{
	static const char *const names[] = {
		[RDMIG__SKIP_AUTO] = "auto",
		[RDMIG__SKIP_ALWAYS] = "always",
		[RDMIG__SKIP_NEVER] = "never",
	};
	const char *v = getenv("RDMIG_SKIP_POLICY");

	*policy = RDMIG__SKIP_AUTO;
	if (!v)
		return 0;
	for (uint32_t i = 0; i < RDMIG__ARRAY_SIZE(names); i++)
		if (!strcmp(v, names[i])) {
			*policy = i;
			return 0;
		}
	return rdmig__err(-EINVAL, "RDMIG_SKIP_POLICY: '%s' is not auto|always|never", v);
}

/*
 * The transport, for tests and benchmarks: RDMIG_TRANSPORT=verbs (the
 * default) or loopback (both ends in this process, no device), and the
 * loopback's wire-rate cap RDMIG_LOOPBACK_RATE_MBPS in megabits per second
 * (0 or unset: as fast as memory copies go).
 */
static int resolve_transport(struct rdmig__config *cfg)
{
	const char *t = getenv("RDMIG_TRANSPORT");
	const char *r = getenv("RDMIG_LOOPBACK_RATE_MBPS");
	uint64_t v = 0;

	if (!t || !strcmp(t, "verbs"))
		cfg->transport = RDMIG__XPORT_VERBS;
	else if (!strcmp(t, "loopback"))
		cfg->transport = RDMIG__XPORT_LOOPBACK;
	else
		return rdmig__err(-EINVAL, "RDMIG_TRANSPORT: '%s' is not verbs|loopback", t);
	if (r && (parse_u64(r, &v) || v > 10000000))
		return rdmig__err(-EINVAL,
				  "RDMIG_LOOPBACK_RATE_MBPS: '%s' is not a rate in Mb/s "
				  "from 0 (uncapped) to 10000000",
				  r);
	cfg->loopback_rate_mbps = (uint32_t)v;
	return 0;
}

/*
 * RDMIG_PSK_FILE: the key's bytes, from a regular file that only its owner
 * may read (no permission bits for group or others): a key anyone on the
 * host can read authenticates anyone.
 */
static int read_psk_file(const char *path, struct rdmig__config *cfg)
{
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return rdmig__err(-EINVAL, "RDMIG_PSK_FILE: cannot open '%s': %s", path,
				  strerror(errno));
	if (fstat(fd, &st)) {
		ret = rdmig__err(-EINVAL, "RDMIG_PSK_FILE: cannot stat '%s': %s", path,
				 strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		ret = rdmig__err(-EINVAL, "RDMIG_PSK_FILE: '%s' is not a regular file", path);
	} else if (st.st_mode & 077) {
		ret = rdmig__err(-EINVAL,
				 "RDMIG_PSK_FILE: '%s' is open to group or others (mode %04o): "
				 "chmod 600 it",
				 path, (unsigned)(st.st_mode & 07777));
	} else if (st.st_size < RDMIG_PSK_MIN || st.st_size > RDMIG_PSK_MAX) {
		ret = rdmig__err(-EINVAL,
				 "RDMIG_PSK_FILE: '%s' holds %lld bytes, a key is %d to %d bytes "
				 "(head -c 32 /dev/urandom > FILE)",
				 path, (long long)st.st_size, RDMIG_PSK_MIN, RDMIG_PSK_MAX);
	} else {
		n = read(fd, cfg->psk, (size_t)st.st_size);
		if (n != st.st_size)
			ret = rdmig__err(-EINVAL, "RDMIG_PSK_FILE: reading '%s': %s", path,
					 n < 0 ? strerror(errno) : "short read");
		else
			cfg->psk_len = (uint32_t)n;
	}
	close(fd);
	return ret;
}

/* The key (opts.psk or RDMIG_PSK_FILE) and the mode (opts.auth or RDMIG_AUTH). */
static int resolve_auth(const struct rdmig_opts *o, struct rdmig__config *cfg)
{
	const char *file = getenv("RDMIG_PSK_FILE");
	const char *mode = getenv("RDMIG_AUTH");
	uint32_t auth = o->auth;
	int ret;

	if (mode) {
		if (!strcmp(mode, "psk"))
			auth = RDMIG_AUTH_PSK;
		else if (!strcmp(mode, "none"))
			auth = RDMIG_AUTH_NONE;
		else
			return rdmig__err(-EINVAL, "RDMIG_AUTH: '%s' is not psk|none", mode);
	} else if (auth > RDMIG_AUTH_NONE) {
		return rdmig__err(-EINVAL,
				  "opts.auth: %u is not an enum rdmig_auth value (see RDMIG_AUTH)",
				  auth);
	}
	if (file) {
		if ((ret = read_psk_file(file, cfg)))
			return ret;
	} else if (o->psk || o->psk_len) {
		if (!o->psk || o->psk_len < RDMIG_PSK_MIN || o->psk_len > RDMIG_PSK_MAX)
			return rdmig__err(
				-EINVAL, "opts.psk: %zu bytes%s, a key is %d to %d random bytes",
				o->psk_len, o->psk ? "" : " at NULL", RDMIG_PSK_MIN, RDMIG_PSK_MAX);
		memcpy(cfg->psk, o->psk, o->psk_len);
		cfg->psk_len = (uint32_t)o->psk_len;
	}
	if (auth == RDMIG_AUTH_NONE && cfg->psk_len) {
		rdmig__config_wipe(cfg);
		return rdmig__err(-EINVAL,
				  "%s asks for no authentication, but a key is given (%s): "
				  "choose one",
				  mode ? "RDMIG_AUTH=none" : "opts.auth",
				  file ? "RDMIG_PSK_FILE" : "opts.psk");
	}
	cfg->auth = auth == RDMIG_AUTH_NONE ? RDMIG_AUTH_NONE
		    : cfg->psk_len	    ? RDMIG_AUTH_PSK
					    : RDMIG_AUTH_DEFAULT;
	return 0;
}

/* --- Choosing the path (rdmig.h): address, device, GID, TOS, worker CPUs --- */

int rdmig__cpus_allowed(uint64_t *set)
{
	cpu_set_t cs;

	memset(set, 0, RDMIG__CPU_WORDS * sizeof(uint64_t));
	if (sched_getaffinity(0, sizeof(cs), &cs))
		return rdmig__err(-errno, "sched_getaffinity: %s", strerror(errno));
	for (unsigned c = 0; c < RDMIG__MAX_CPUS && c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &cs))
			set[c / 64] |= 1ull << (c % 64);
	return 0;
}

void rdmig__cpus_format(const uint64_t *set, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (unsigned c = 0; c < RDMIG__MAX_CPUS && len < size; c++) {
		unsigned last = c;
		int n;

		if (!rdmig__cpu_isset(set, c))
			continue;
		while (rdmig__cpu_isset(set, last + 1))
			last++;
		n = last == c ? snprintf(buf + len, size - len, "%s%u", len ? "," : "", c)
			      : snprintf(buf + len, size - len, "%s%u-%u", len ? "," : "", c, last);
		len += n > 0 ? (size_t)n : 0;
		c = last;
	}
	if (!buf[0])
		snprintf(buf, size, "(none)");
}

/* A decimal number up to `max` at *s; advances *s. */
static bool take_uint(const char **s, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)**s))
		return false;
	errno = 0;
	v = strtoul(*s, &end, 10);
	if (errno || v > max)
		return false;
	*s = end;
	*out = (unsigned)v;
	return true;
}

/*
 * A CPU list as the kernel prints them (cpuset.cpus, /proc/self/status):
 * "N" or "N-M", separated by commas, each CPU below RDMIG__MAX_CPUS.
 */
static int parse_cpu_list(const char *what, const char *s, uint64_t *set)
{
	const char *p = s;

	memset(set, 0, RDMIG__CPU_WORDS * sizeof(uint64_t));
	for (;;) {
		unsigned lo, hi;

		if (!take_uint(&p, RDMIG__MAX_CPUS - 1, &lo))
			return rdmig__err(
				-EINVAL,
				"%s: '%s' is not a CPU list like \"2-5,8\" (CPUs 0 to %d) "
				"at '%s'",
				what, s, RDMIG__MAX_CPUS - 1, p);
		hi = lo;
		if (*p == '-') {
			p++;
			if (!take_uint(&p, RDMIG__MAX_CPUS - 1, &hi) || hi < lo)
				return rdmig__err(-EINVAL,
						  "%s: '%s' has a bad range at '%s' (N-M, N <= M "
						  "< %d)",
						  what, s, p, RDMIG__MAX_CPUS);
		}
		for (unsigned c = lo; c <= hi; c++)
			set[c / 64] |= 1ull << (c % 64);
		if (!*p)
			return 0;
		if (*p != ',')
			return rdmig__err(-EINVAL,
					  "%s: '%s' is not a CPU list like \"2-5,8\" at '%s'", what,
					  s, p);
		p++;
	}
}

/* The worker CPU set, and that the process may run on some of it. */
static int resolve_worker_cpus(const struct rdmig_opts *o, struct rdmig__config *cfg)
{
	const char *e = getenv("RDMIG_WORKER_CPUS");
	const char *what = e ? "RDMIG_WORKER_CPUS" : "opts.worker_cpus";
	const char *s = e ? e : o->worker_cpus;
	uint64_t allowed[RDMIG__CPU_WORDS];
	char a[256], b[256];
	bool any = false;
	int ret;

	if (!s)
		return 0;
	if ((ret = parse_cpu_list(what, s, cfg->worker_cpus)))
		return ret;
	if ((ret = rdmig__cpus_allowed(allowed)))
		return ret;
	for (unsigned i = 0; i < RDMIG__CPU_WORDS; i++)
		any |= (cfg->worker_cpus[i] & allowed[i]) != 0;
	if (!any) {
		rdmig__cpus_format(cfg->worker_cpus, a, sizeof(a));
		rdmig__cpus_format(allowed, b, sizeof(b));
		return rdmig__err(-EINVAL,
				  "%s: none of CPUs %s is one this process may run on (its "
				  "affinity: %s)",
				  what, a, b);
	}
	cfg->has_worker_cpus = true;
	return 0;
}

/* "name" or "name:port": a device name as the kernel allows (IB_DEVICE_NAME_MAX 64). */
static int parse_device(const char *what, const char *s, struct rdmig__config *cfg)
{
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);
	unsigned port = 0;

	if (len == 0 || len >= sizeof(cfg->device))
		return rdmig__err(-EINVAL, "%s: '%s' is not a device name of 1 to %zu characters",
				  what, s, sizeof(cfg->device) - 1);
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_-.", s[i]))
			return rdmig__err(-EINVAL,
					  "%s: '%s' is not a device name (letters, digits, _ - .), "
					  "or name:port",
					  what, s);
	if (colon) {
		const char *p = colon + 1;

		if (!take_uint(&p, 255, &port) || *p || port == 0)
			return rdmig__err(-EINVAL,
					  "%s: '%s': the port after ':' must be a number from 1 "
					  "to 255",
					  what, s);
	}
	memcpy(cfg->device, s, len);
	cfg->device[len] = 0;
	cfg->device_port = port;
	return 0;
}

/* A numeric address (no name lookup: create does not block). */
static int parse_local_addr(const char *what, const char *s, struct rdmig__config *cfg)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *res;

	if (strlen(s) >= sizeof(cfg->local_str) || getaddrinfo(s, NULL, &hints, &res))
		return rdmig__err(-EINVAL, "%s: '%s' is not a numeric IPv4 or IPv6 address", what,
				  s);
	memset(&cfg->local, 0, sizeof(cfg->local));
	memcpy(&cfg->local, res->ai_addr, RDMIG__MIN((size_t)res->ai_addrlen, sizeof(cfg->local)));
	freeaddrinfo(res);
	snprintf(cfg->local_str, sizeof(cfg->local_str), "%s", s);
	cfg->has_local = true;
	return 0;
}

/*
 * A value that 0 does not mean "unset" for: the variable, else the field
 * when its bit is in opts.set. -1 when neither.
 */
static int resolve_small(const char *env, const char *field, bool given, uint32_t v, uint32_t max,
			 int32_t *out)
{
	const char *e = getenv(env);
	uint64_t u;

	*out = -1;
	if (e) {
		if (parse_u64(e, &u) || u > max)
			return rdmig__err(-EINVAL, "%s: '%s' is not a number from 0 to %u", env, e,
					  max);
		*out = (int32_t)u;
	} else if (given) {
		if (v > max)
			return rdmig__err(-EINVAL, "opts.%s: %u is out of range [0, %u] (%s)",
					  field, v, max, env);
		*out = (int32_t)v;
	}
	return 0;
}

static int resolve_path(const struct rdmig_opts *o, struct rdmig__config *cfg)
{
	const char *e;
	int ret;

	cfg->gid_index = cfg->tos = -1;
	if (o->set & ~(RDMIG_OPTS_GID_INDEX | RDMIG_OPTS_TOS))
		return rdmig__err(-EINVAL, "opts.set: 0x%x has bits this librdmig does not know",
				  o->set);
	if (o->reserved2)
		return rdmig__err(-EINVAL, "opts.reserved2 is %u, must be 0", o->reserved2);
	if ((e = getenv("RDMIG_LOCAL_ADDR")) || o->local_addr)
		if ((ret = parse_local_addr(e ? "RDMIG_LOCAL_ADDR" : "opts.local_addr",
					    e ? e : o->local_addr, cfg)))
			return ret;
	if ((e = getenv("RDMIG_DEVICE")) || o->device)
		if ((ret = parse_device(e ? "RDMIG_DEVICE" : "opts.device", e ? e : o->device,
					cfg)))
			return ret;
	/* The AH's sgid_index is a byte; the device's table may be smaller. */
	if ((ret = resolve_small("RDMIG_GID_INDEX", "gid_index", o->set & RDMIG_OPTS_GID_INDEX,
				 o->gid_index, 255, &cfg->gid_index)))
		return ret;
	if ((ret = resolve_small("RDMIG_TOS", "tos", o->set & RDMIG_OPTS_TOS, o->tos, 255,
				 &cfg->tos)))
		return ret;
	return resolve_worker_cpus(o, cfg);
}

void rdmig__config_wipe(struct rdmig__config *cfg)
{
	OPENSSL_cleanse(cfg->psk, sizeof(cfg->psk));
	cfg->psk_len = 0;
}

int rdmig__config_auth_ready(const struct rdmig__config *cfg, const char *who)
{
	static atomic_bool warned;

	if (cfg->auth == RDMIG_AUTH_PSK)
		return 0;
	if (cfg->auth == RDMIG_AUTH_NONE) {
		if (!atomic_exchange(&warned, true))
			rdmig__log(RDMIG__LOG_WARN,
				   "authentication is off (RDMIG_AUTH=none): any host that "
				   "reaches the port can read or write guest memory");
		return 0;
	}
	return rdmig__err(-EACCES,
			  "%s: no pre-shared key: set opts.psk or RDMIG_PSK_FILE (the same key on "
			  "both ends), or choose an unauthenticated session with opts.auth = "
			  "RDMIG_AUTH_NONE or RDMIG_AUTH=none",
			  who);
}

int rdmig__config_resolve(const struct rdmig_opts *in, struct rdmig__config *cfg)
{
	struct rdmig_opts o;
	const char *lvl;
	int ret;

	rdmig_opts_init(&o);
	if (in) {
		if (in->size < offsetof(struct rdmig_opts, page_size))
			return rdmig__err(-EINVAL,
					  "opts.size %zu is too small: call rdmig_opts_init()",
					  in->size);
		if (in->size > sizeof(o)) {
			/* A newer caller: only accept fields we do not know if unset. */
			for (size_t i = sizeof(o); i < in->size; i++)
				if (((const char *)in)[i])
					return rdmig__err(
						-EINVAL,
						"opts sets fields this librdmig does not know "
						"(size %zu > %zu)",
						in->size, sizeof(o));
		}
		memcpy(&o, in, RDMIG__MIN(in->size, sizeof(o)));
	}

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < RDMIG__ARRAY_SIZE(knobs); i++) {
		const struct knob *k = &knobs[i];
		uint64_t v = load(&o, k->opt_off, k->opt_size);
		const char *env = getenv(k->env);
		char what[64];

		if (env) {
			if (parse_u64(env, &v))
				return rdmig__err(-EINVAL, "%s: '%s' is not a number", k->env, env);
			snprintf(what, sizeof(what), "%s", k->env);
		} else {
			snprintf(what, sizeof(what), "opts field for %s", k->env);
		}
		if (v == 0 && !env) {
			v = k->def;
		} else if ((ret = check(k, v, what))) {
			return ret;
		}
		store(cfg, k->cfg_off, k->cfg_size, v);
	}

	lvl = getenv("RDMIG_LOG_LEVEL");
	if (lvl && strcmp(lvl, "error") && strcmp(lvl, "warn") && strcmp(lvl, "info") &&
	    strcmp(lvl, "debug"))
		return rdmig__err(-EINVAL, "RDMIG_LOG_LEVEL: '%s' is not error|warn|info|debug",
				  lvl);

	/* Default chunk: 1 MiB of guest memory, at least one page. */
	if (!cfg->chunk_pages)
		cfg->chunk_pages = RDMIG__MAX(1u, (1u << 20) / cfg->page_size);
	/* Default bytes in flight per QP: 4 MiB, but at least two pages, so that
	 * with large pages (RDMIG_PAGE_SIZE up to 1 GiB) one WRITE is in flight
	 * while the next is posted, and a page size the caller set alone never
	 * trips over a default it did not choose. */
	if (!cfg->inflight_bytes)
		cfg->inflight_bytes = RDMIG__MAX(4ull << 20, 2ull * cfg->page_size);
	ret = resolve_switch("RDMIG_PIN", "pin", o.pin, &cfg->pin);
	if (!ret)
		ret = resolve_switch("RDMIG_SKIP_ZERO", "skip_zero", o.skip_zero, &cfg->skip_zero);
	if (!ret)
		ret = resolve_switch("RDMIG_SKIP_UNCHANGED", "skip_unchanged", o.skip_unchanged,
				     &cfg->skip_unchanged);
	if (ret)
		return ret;
	ret = resolve_simd(&o, &cfg->simd);
	if (!ret)
		ret = resolve_skip_policy(&cfg->skip_policy);
	if (ret)
		return ret;
	if ((ret = resolve_transport(cfg)))
		return ret;
	if (cfg->inflight_bytes < cfg->page_size)
		return rdmig__err(-EINVAL,
				  "RDMIG_INFLIGHT_BYTES: %" PRIu64 " is less than one page (%u)",
				  cfg->inflight_bytes, cfg->page_size);
	if (cfg->signal_interval > cfg->queue_depth)
		return rdmig__err(-EINVAL, "RDMIG_SIGNAL_INTERVAL: %u exceeds RDMIG_QUEUE_DEPTH %u",
				  cfg->signal_interval, cfg->queue_depth);
	if (cfg->max_bandwidth && cfg->max_bandwidth < RDMIG__MIN_BANDWIDTH)
		return rdmig__err(-EINVAL,
				  "%s: %" PRIu64 " bytes per second is below the least cap, %llu "
				  "(1M; 0 for none)",
				  getenv("RDMIG_MAX_BANDWIDTH") ? "RDMIG_MAX_BANDWIDTH"
								: "opts.max_bandwidth",
				  cfg->max_bandwidth, RDMIG__MIN_BANDWIDTH);
	if ((uint64_t)cfg->chunk_pages * cfg->page_size > (1ull << 31))
		return rdmig__err(-EINVAL, "RDMIG_CHUNK_PAGES: %u pages of %u bytes exceed 2 GiB",
				  cfg->chunk_pages, cfg->page_size);
	if ((ret = resolve_path(&o, cfg)))
		return ret;
	/* Last: nothing fails after the key is copied in. */
	return resolve_auth(&o, cfg);
}

void rdmig_opts_init(struct rdmig_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}
