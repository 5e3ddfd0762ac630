/* SPDX-License-Identifier: MIT */
/*
 * Tests of option resolution (common/config.c): defaults, struct rdmig_opts
 * fields over defaults, RDMIG_* environment variables over fields, the
 * range, syntax and cross checks of every knob with a message that names
 * it, the opts->size protocol, and that create fails cleanly on a bad
 * variable. Every test starts and ends with no RDMIG_* variable set.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

#define assert_contains(s, sub)                                            \
	do {                                                               \
		const char *s_ = (s);                                      \
		if (!strstr(s_, (sub)))                                    \
			fail_msg("'%s' does not contain '%s'", s_, (sub)); \
	} while (0)

/* Every variable rdmig reads. */
static const char *const all_vars[] = {
	"RDMIG_PAGE_SIZE",
	"RDMIG_WORKERS",
	"RDMIG_CHUNK_PAGES",
	"RDMIG_QUEUE_DEPTH",
	"RDMIG_SIGNAL_INTERVAL",
	"RDMIG_QP_TIMEOUT",
	"RDMIG_INFLIGHT_BYTES",
	"RDMIG_TIMEOUT_MS",
	"RDMIG_IDLE_TIMEOUT_MS",
	"RDMIG_ACCEPT_TIMEOUT_MS",
	"RDMIG_MAX_QPS",
	"RDMIG_PIN",
	"RDMIG_LOG_LEVEL",
	"RDMIG_SIMD",
	"RDMIG_SKIP_POLICY",
	"RDMIG_PSK_FILE",
	"RDMIG_AUTH",
	"RDMIG_AUTH_TIMEOUT_MS",
	"RDMIG_LOCAL_ADDR",
	"RDMIG_DEVICE",
	"RDMIG_GID_INDEX",
	"RDMIG_TOS",
	"RDMIG_WORKER_CPUS",
	"RDMIG_MAX_BANDWIDTH",
};

/* The numeric knobs, with the bounds README.md documents. */
struct knob {
	const char *env;
	uint64_t min, max;
};

static const struct knob knobs[] = {
	{ "RDMIG_PAGE_SIZE", 4096, 1u << 30 },	      { "RDMIG_WORKERS", 1, RDMIG__MAX_WORKERS },
	{ "RDMIG_CHUNK_PAGES", 1, 1u << 19 },	      { "RDMIG_QUEUE_DEPTH", 4, 4096 },
	{ "RDMIG_SIGNAL_INTERVAL", 1, 4096 },	      { "RDMIG_QP_TIMEOUT", 8, 31 },
	{ "RDMIG_INFLIGHT_BYTES", 4096, 1ull << 40 }, { "RDMIG_TIMEOUT_MS", 100, 3600000 },
	{ "RDMIG_IDLE_TIMEOUT_MS", 3000, 86400000 },  { "RDMIG_ACCEPT_TIMEOUT_MS", 0, 86400000 },
	{ "RDMIG_MAX_QPS", 1, RDMIG__MAX_QPS },	      { "RDMIG_AUTH_TIMEOUT_MS", 10, 600000 },
};

static struct rdmig__config cfg;

static void clear_env(void)
{
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(all_vars); i++)
		unsetenv(all_vars[i]);
}

static int env_setup(void **state)
{
	(void)state;
	clear_env();
	rdmig__err_clear();
	memset(&cfg, 0xa5, sizeof(cfg));
	return 0;
}

static int env_teardown(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

static void set(const char *name, const char *value)
{
	assert_int_equal(setenv(name, value, 1), 0);
}

/* Resolves with `opts` and expects -EINVAL with a message naming `needle`. */
static void check_einval(const struct rdmig_opts *opts, const char *needle, int line)
{
	int ret;

	rdmig__err_clear();
	ret = rdmig__config_resolve(opts, &cfg);
	if (ret != -EINVAL)
		fail_msg("line %d: resolve returned %d, expected -EINVAL (%s)", line, ret,
			 rdmig_last_error());
	if (!strstr(rdmig_last_error(), needle))
		fail_msg("line %d: '%s' does not name '%s'", line, rdmig_last_error(), needle);
}

static void check_ok(const struct rdmig_opts *opts, int line)
{
	int ret = rdmig__config_resolve(opts, &cfg);

	if (ret)
		fail_msg("line %d: resolve returned %d: %s", line, ret, rdmig_last_error());
}

#define EXPECT_EINVAL(opts, needle) check_einval(opts, needle, __LINE__)
#define EXPECT_OK(opts)		    check_ok(opts, __LINE__)

/* Sets one variable, expects -EINVAL naming it, unsets it. */
static void check_env_einval(const char *name, const char *value, int line)
{
	set(name, value);
	check_einval(NULL, name, line);
	unsetenv(name);
}

#define ENV_EINVAL(name, value) check_env_einval(name, value, __LINE__)

static void assert_defaults(const struct rdmig__config *c)
{
	assert_int_equal(c->page_size, 4096);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->chunk_pages, 256);
	assert_int_equal(c->queue_depth, 128);
	assert_int_equal(c->signal_interval, 16);
	assert_int_equal(c->qp_timeout, 18);
	assert_int_equal(c->inflight_bytes, 4u << 20);
	assert_int_equal(c->timeout_ms, 20000);
	assert_int_equal(c->idle_timeout_ms, 120000);
	assert_int_equal(c->accept_timeout_ms, 0);
	assert_int_equal(c->max_qps, 64);
	assert_int_equal(c->auth_timeout_ms, 2000);
	assert_true(c->pin);
	assert_int_equal(c->simd, RDMIG_SIMD_AUTO);
}

/* --- defaults and precedence ---------------------------------------------- */

static void config_null_opts_defaults(void **state)
{
	(void)state;
	EXPECT_OK(NULL);
	assert_defaults(&cfg);
}

static void config_initialised_opts_defaults(void **state)
{
	struct rdmig_opts o;

	(void)state;
	memset(&o, 0xff, sizeof(o));
	rdmig_opts_init(&o);
	assert_int_equal(o.size, sizeof(o));
	assert_int_equal(o.page_size, 0);
	assert_int_equal(o.inflight_bytes, 0);
	assert_int_equal(o.simd, RDMIG_SIMD_AUTO);
	EXPECT_OK(&o);
	assert_defaults(&cfg);
}

static void config_opts_fields_override_defaults(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.page_size = 2u << 20;
	o.workers = 7;
	o.chunk_pages = 64;
	o.queue_depth = 512;
	o.signal_interval = 32;
	o.qp_timeout = 20;
	o.inflight_bytes = 5ull << 30;
	o.timeout_ms = 1234;
	o.idle_timeout_ms = 5678;
	o.accept_timeout_ms = 9999;
	o.max_qps = 8;
	o.pin = RDMIG_PIN_OFF;
	o.simd = RDMIG_SIMD_AVX2;
	EXPECT_OK(&o);
	assert_int_equal(cfg.page_size, 2u << 20);
	assert_int_equal(cfg.workers, 7);
	assert_int_equal(cfg.chunk_pages, 64);
	assert_int_equal(cfg.queue_depth, 512);
	assert_int_equal(cfg.signal_interval, 32);
	assert_int_equal(cfg.qp_timeout, 20);
	assert_int_equal(cfg.inflight_bytes, 5ull << 30);
	assert_int_equal(cfg.timeout_ms, 1234);
	assert_int_equal(cfg.idle_timeout_ms, 5678);
	assert_int_equal(cfg.accept_timeout_ms, 9999);
	assert_int_equal(cfg.max_qps, 8);
	assert_false(cfg.pin);
	assert_int_equal(cfg.simd, RDMIG_SIMD_AVX2);

	rdmig_opts_init(&o);
	o.pin = RDMIG_PIN_ON;
	EXPECT_OK(&o);
	assert_true(cfg.pin);
}

static void config_env_overrides_opts_fields(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.page_size = 8192;
	o.workers = 2;
	o.chunk_pages = 64;
	o.queue_depth = 512;
	o.signal_interval = 32;
	o.qp_timeout = 20;
	o.inflight_bytes = 1u << 20;
	o.timeout_ms = 1234;
	o.idle_timeout_ms = 5678;
	o.accept_timeout_ms = 9999;
	o.max_qps = 8;
	o.pin = RDMIG_PIN_ON;
	set("RDMIG_PAGE_SIZE", "16384");
	set("RDMIG_WORKERS", "3");
	set("RDMIG_CHUNK_PAGES", "1000");
	set("RDMIG_QUEUE_DEPTH", "64");
	set("RDMIG_SIGNAL_INTERVAL", "8");
	set("RDMIG_QP_TIMEOUT", "14");
	set("RDMIG_INFLIGHT_BYTES", "65536");
	set("RDMIG_TIMEOUT_MS", "100");
	set("RDMIG_IDLE_TIMEOUT_MS", "86400000");
	set("RDMIG_ACCEPT_TIMEOUT_MS", "1");
	set("RDMIG_MAX_QPS", "64");
	set("RDMIG_PIN", "off");
	EXPECT_OK(&o);
	assert_int_equal(cfg.page_size, 16384);
	assert_int_equal(cfg.workers, 3);
	assert_int_equal(cfg.chunk_pages, 1000);
	assert_int_equal(cfg.queue_depth, 64);
	assert_int_equal(cfg.signal_interval, 8);
	assert_int_equal(cfg.qp_timeout, 14);
	assert_int_equal(cfg.inflight_bytes, 65536);
	assert_int_equal(cfg.timeout_ms, 100);
	assert_int_equal(cfg.idle_timeout_ms, 86400000);
	assert_int_equal(cfg.accept_timeout_ms, 1);
	assert_int_equal(cfg.max_qps, 64);
	assert_false(cfg.pin);
}

/* RDMIG_ACCEPT_TIMEOUT_MS=0 ("forever") is a value, not "unset": it beats the field. */
static void config_env_zero_accept_timeout_overrides_field(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.accept_timeout_ms = 5000;
	set("RDMIG_ACCEPT_TIMEOUT_MS", "0");
	EXPECT_OK(&o);
	assert_int_equal(cfg.accept_timeout_ms, 0);
}

/* The env overrides one field; the others keep their option values. */
static void config_env_overrides_only_its_field(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.queue_depth = 256;
	o.timeout_ms = 777;
	set("RDMIG_QUEUE_DEPTH", "1024");
	EXPECT_OK(&o);
	assert_int_equal(cfg.queue_depth, 1024);
	assert_int_equal(cfg.timeout_ms, 777);
	assert_int_equal(cfg.chunk_pages, 256);
}

static void config_pin_values_parsed(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.pin = RDMIG_PIN_OFF;
	set("RDMIG_PIN", "1");
	EXPECT_OK(&o);
	assert_true(cfg.pin);
	set("RDMIG_PIN", "on");
	EXPECT_OK(&o);
	assert_true(cfg.pin);
	o.pin = RDMIG_PIN_ON;
	set("RDMIG_PIN", "0");
	EXPECT_OK(&o);
	assert_false(cfg.pin);
	set("RDMIG_PIN", "off");
	EXPECT_OK(&o);
	assert_false(cfg.pin);
}

/* Every spelling maps to its enum value and replaces the field; unset, the field is used. */
static void config_simd_values_parsed(void **state)
{
	static const struct {
		const char *env;
		uint32_t simd;
	} ok[] = {
		{ "auto", RDMIG_SIMD_AUTO },
		{ "avx512", RDMIG_SIMD_AVX512 },
		{ "avx2", RDMIG_SIMD_AVX2 },
		{ "scalar", RDMIG_SIMD_SCALAR },
	};
	struct rdmig_opts o;

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(ok); i++) {
		set("RDMIG_SIMD", ok[i].env);
		EXPECT_OK(NULL);
		assert_int_equal(cfg.simd, ok[i].simd);
		/* over a field that says something else */
		rdmig_opts_init(&o);
		o.simd = ok[i].simd == RDMIG_SIMD_SCALAR ? RDMIG_SIMD_AVX512 : RDMIG_SIMD_SCALAR;
		EXPECT_OK(&o);
		assert_int_equal(cfg.simd, ok[i].simd);
	}
	unsetenv("RDMIG_SIMD");
	for (uint32_t v = RDMIG_SIMD_AUTO; v <= RDMIG_SIMD_SCALAR; v++) {
		rdmig_opts_init(&o);
		o.simd = v;
		EXPECT_OK(&o);
		assert_int_equal(cfg.simd, v);
	}
}

static void config_log_levels_accepted(void **state)
{
	static const char *const ok[] = { "error", "warn", "info", "debug" };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(ok); i++) {
		set("RDMIG_LOG_LEVEL", ok[i]);
		EXPECT_OK(NULL);
	}
}

/* --- values ------------------------------------------------------------------ */

static void config_size_suffixes_scale_binary(void **state)
{
	(void)state;
	set("RDMIG_INFLIGHT_BYTES", "16M");
	set("RDMIG_PAGE_SIZE", "64K");
	set("RDMIG_CHUNK_PAGES", "1k");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.inflight_bytes, 16u << 20);
	assert_int_equal(cfg.page_size, 64u << 10);
	assert_int_equal(cfg.chunk_pages, 1024);

	set("RDMIG_INFLIGHT_BYTES", "3G");
	set("RDMIG_PAGE_SIZE", "2m");
	set("RDMIG_CHUNK_PAGES", "1");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.inflight_bytes, 3ull << 30);
	assert_int_equal(cfg.page_size, 2u << 20);

	set("RDMIG_INFLIGHT_BYTES", "1024g");
	set("RDMIG_PAGE_SIZE", "1G");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.inflight_bytes, 1ull << 40);
	assert_int_equal(cfg.page_size, 1u << 30);
}

/* The smallest and largest value of each knob are accepted (cross checks satisfied). */
static void config_range_limits_accepted(void **state)
{
	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(knobs); i++) {
		const struct knob *k = &knobs[i];
		uint64_t v[2] = { k->min, k->max };

		for (unsigned j = 0; j < 2; j++) {
			char s[32];

			clear_env();
			snprintf(s, sizeof(s), "%llu", (unsigned long long)v[j]);
			set(k->env, s);
			/* companions, so that only the range check is tested */
			if (!strcmp(k->env, "RDMIG_PAGE_SIZE")) {
				set("RDMIG_CHUNK_PAGES", "1");
				set("RDMIG_INFLIGHT_BYTES", "1G");
			} else if (!strcmp(k->env, "RDMIG_QUEUE_DEPTH")) {
				set("RDMIG_SIGNAL_INTERVAL", "1");
			} else if (!strcmp(k->env, "RDMIG_SIGNAL_INTERVAL")) {
				set("RDMIG_QUEUE_DEPTH", "4096");
			}
			if (rdmig__config_resolve(NULL, &cfg))
				fail_msg("%s=%s refused: %s", k->env, s, rdmig_last_error());
		}
	}
}

/* Bad syntax, for every numeric knob. */
static void config_env_malformed_number_einval(void **state)
{
	static const char *const bad[] = {
		"abc",		"",	 "-1",	   "4X",  "4KB", "4KK", " 4096",
		"4096 ",	"+4096", "0x1000", "4.0", "1e3", "K",	"18446744073709551616",
		"17179869184G",
	};

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(knobs); i++)
		for (unsigned j = 0; j < RDMIG__ARRAY_SIZE(bad); j++)
			ENV_EINVAL(knobs[i].env, bad[j]);
}

/* Just below the minimum and just above the maximum, for every numeric knob. */
static void config_env_out_of_range_einval(void **state)
{
	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(knobs); i++) {
		char s[32];

		if (knobs[i].min) {
			snprintf(s, sizeof(s), "%llu", (unsigned long long)knobs[i].min - 1);
			ENV_EINVAL(knobs[i].env, s);
		}
		snprintf(s, sizeof(s), "%llu", (unsigned long long)knobs[i].max + 1);
		ENV_EINVAL(knobs[i].env, s);
		/* past 32 bits, so that a 32-bit field cannot wrap it into range */
		if (knobs[i].max < (1ull << 32)) {
			snprintf(s, sizeof(s), "%llu", (1ull << 32) + knobs[i].min);
			ENV_EINVAL(knobs[i].env, s);
		}
	}
	ENV_EINVAL("RDMIG_QP_TIMEOUT", "1K");
	ENV_EINVAL("RDMIG_MAX_QPS", "1M");
}

static void config_env_page_size_not_power_of_two_einval(void **state)
{
	(void)state;
	ENV_EINVAL("RDMIG_PAGE_SIZE", "12288");
	ENV_EINVAL("RDMIG_PAGE_SIZE", "4097");
	ENV_EINVAL("RDMIG_PAGE_SIZE", "1000000");
	set("RDMIG_PAGE_SIZE", "12288");
	EXPECT_EINVAL(NULL, "power of two");
}

static void config_env_bad_pin_einval(void **state)
{
	static const char *const bad[] = { "maybe", "", "2", "ON", "yes", "true", "1 ", "01" };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(bad); i++)
		ENV_EINVAL("RDMIG_PIN", bad[i]);
}

static void config_env_bad_simd_einval(void **state)
{
	static const char *const bad[] = { "",	"AVX2", "avx-512", "avx512 ", "sse",  "avx",  "0",
					   "1", "3",	"none",	   "native",  "Auto", " auto" };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(bad); i++)
		ENV_EINVAL("RDMIG_SIMD", bad[i]);
	set("RDMIG_SIMD", "avx1024");
	EXPECT_EINVAL(NULL, "auto|avx512|avx2|scalar");
}

/* RDMIG_SKIP_POLICY: auto (the default), always, never; anything else names it. */
static void config_skip_policy_parsed_bad_einval(void **state)
{
	static const char *const bad[] = { "", "Auto", "on", "1", "always ", "none" };

	(void)state;
	EXPECT_OK(NULL);
	assert_int_equal(cfg.skip_policy, RDMIG__SKIP_AUTO);
	set("RDMIG_SKIP_POLICY", "always");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.skip_policy, RDMIG__SKIP_ALWAYS);
	set("RDMIG_SKIP_POLICY", "never");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.skip_policy, RDMIG__SKIP_NEVER);
	set("RDMIG_SKIP_POLICY", "auto");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.skip_policy, RDMIG__SKIP_AUTO);
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(bad); i++)
		ENV_EINVAL("RDMIG_SKIP_POLICY", bad[i]);
	set("RDMIG_SKIP_POLICY", "sometimes");
	EXPECT_EINVAL(NULL, "auto|always|never");
	unsetenv("RDMIG_SKIP_POLICY");
}

static void config_env_bad_log_level_einval(void **state)
{
	static const char *const bad[] = { "loud", "", "WARN", "3", "warning", "debug " };

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(bad); i++)
		ENV_EINVAL("RDMIG_LOG_LEVEL", bad[i]);
}

/* A bad option field is refused too, with the variable of the same name. */
static void config_opts_field_out_of_range_einval(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.queue_depth = 5000;
	EXPECT_EINVAL(&o, "RDMIG_QUEUE_DEPTH");
	rdmig_opts_init(&o);
	o.page_size = 12288;
	EXPECT_EINVAL(&o, "RDMIG_PAGE_SIZE");
	rdmig_opts_init(&o);
	o.workers = RDMIG__MAX_WORKERS + 1;
	EXPECT_EINVAL(&o, "RDMIG_WORKERS");
	rdmig_opts_init(&o);
	o.inflight_bytes = (1ull << 40) + 1;
	EXPECT_EINVAL(&o, "RDMIG_INFLIGHT_BYTES");
	rdmig_opts_init(&o);
	o.qp_timeout = 7;
	EXPECT_EINVAL(&o, "RDMIG_QP_TIMEOUT");
	rdmig_opts_init(&o);
	o.pin = RDMIG_PIN_OFF + 1;
	EXPECT_EINVAL(&o, "pin");
}

/* opts.simd past the enum: -EINVAL naming the field and RDMIG_SIMD, unless the variable is set. */
static void config_opts_simd_out_of_range_einval(void **state)
{
	static const uint32_t bad[] = { RDMIG_SIMD_SCALAR + 1, 0x80000000u, UINT32_MAX };
	struct rdmig_opts o;

	(void)state;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(bad); i++) {
		rdmig_opts_init(&o);
		o.simd = bad[i];
		EXPECT_EINVAL(&o, "opts.simd");
		EXPECT_EINVAL(&o, "RDMIG_SIMD");
		/* a valid variable replaces the field, which is then never used */
		set("RDMIG_SIMD", "avx2");
		EXPECT_OK(&o);
		assert_int_equal(cfg.simd, RDMIG_SIMD_AVX2);
		unsetenv("RDMIG_SIMD");
	}
}

/* A valid variable repairs a bad field: the field is never used. */
static void config_env_replaces_bad_opts_field(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.max_qps = 1000;
	set("RDMIG_MAX_QPS", "4");
	EXPECT_OK(&o);
	assert_int_equal(cfg.max_qps, 4);
}

/* --- cross checks ------------------------------------------------------------ */

static void config_signal_interval_above_queue_depth_einval(void **state)
{
	struct rdmig_opts o;

	(void)state;
	set("RDMIG_QUEUE_DEPTH", "16");
	set("RDMIG_SIGNAL_INTERVAL", "32");
	EXPECT_EINVAL(NULL, "RDMIG_SIGNAL_INTERVAL");
	set("RDMIG_SIGNAL_INTERVAL", "16"); /* equal is fine */
	EXPECT_OK(NULL);
	clear_env();

	/* the default interval (16) against a small depth from opts */
	rdmig_opts_init(&o);
	o.queue_depth = 8;
	EXPECT_EINVAL(&o, "RDMIG_SIGNAL_INTERVAL");
}

static void config_inflight_below_page_size_einval(void **state)
{
	(void)state;
	set("RDMIG_PAGE_SIZE", "2M");
	set("RDMIG_INFLIGHT_BYTES", "1M");
	EXPECT_EINVAL(NULL, "RDMIG_INFLIGHT_BYTES");
	set("RDMIG_INFLIGHT_BYTES", "2M"); /* one page is fine */
	EXPECT_OK(NULL);
	clear_env();
}

/*
 * Issue 13: RDMIG_PAGE_SIZE of 8 MiB to 1 GiB alone made create fail
 * naming RDMIG_INFLIGHT_BYTES, which nobody set: the defaults follow.
 */
static void config_large_page_size_alone_defaults_follow(void **state)
{
	char v[32];

	(void)state;
	clear_env();
	for (uint64_t ps = 4096; ps <= RDMIG_PAGE_SIZE_MAX; ps *= 2) {
		struct rdmig_src *src = NULL;
		struct rdmig_dst *dst = NULL;

		snprintf(v, sizeof(v), "%llu", (unsigned long long)ps);
		set("RDMIG_PAGE_SIZE", v);
		if (rdmig__config_resolve(NULL, &cfg))
			fail_msg("page size %s: %s", v, rdmig_last_error());
		assert_int_equal(cfg.page_size, ps);
		assert_int_equal(cfg.chunk_pages, ps >= (1u << 20) ? 1 : (1u << 20) / ps);
		/* 4 MiB as before up to 2 MiB pages; two pages beyond. */
		assert_int_equal(cfg.inflight_bytes, ps <= (2u << 20) ? 4u << 20 : 2 * ps);
		if (rdmig_src_create(NULL, &src) || rdmig_dst_create(NULL, &dst))
			fail_msg("page size %s: create: %s", v, rdmig_last_error());
		rdmig_src_destroy(src);
		rdmig_dst_destroy(dst);
	}
	/* Set explicitly, the in-flight bound still must hold a page. */
	set("RDMIG_PAGE_SIZE", "8M");
	set("RDMIG_INFLIGHT_BYTES", "4M");
	EXPECT_EINVAL(NULL, "RDMIG_INFLIGHT_BYTES");
	clear_env();
}

static void config_chunk_over_two_gib_einval(void **state)
{
	(void)state;
	set("RDMIG_CHUNK_PAGES", "1M");
	EXPECT_EINVAL(NULL, "RDMIG_CHUNK_PAGES");
	set("RDMIG_CHUNK_PAGES", "512K"); /* exactly 2 GiB of 4 KiB pages */
	EXPECT_OK(NULL);
	set("RDMIG_CHUNK_PAGES", "524289");
	EXPECT_EINVAL(NULL, "RDMIG_CHUNK_PAGES");
}

static void config_chunk_default_follows_page_size_one_mib(void **state)
{
	(void)state;
	clear_env();
	set("RDMIG_PAGE_SIZE", "16K");
	assert_int_equal(rdmig__config_resolve(NULL, &cfg), 0);
	assert_int_equal(cfg.chunk_pages, 64);
	/* A page larger than 1 MiB: one page per chunk, never zero. */
	set("RDMIG_PAGE_SIZE", "2M");
	assert_int_equal(rdmig__config_resolve(NULL, &cfg), 0);
	assert_int_equal(cfg.chunk_pages, 1);
	clear_env();
}

/* --- opts->size --------------------------------------------------------------- */

static void config_opts_size_too_small_einval(void **state)
{
	struct rdmig_opts o;

	(void)state;
	for (size_t size = 0; size < offsetof(struct rdmig_opts, page_size); size++) {
		rdmig_opts_init(&o);
		o.size = size;
		EXPECT_EINVAL(&o, "size");
	}
}

/* An older caller's struct: fields past its size are not read. */
static void config_opts_smaller_size_ignores_later_fields(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.size = offsetof(struct rdmig_opts, workers);
	o.page_size = 8192;
	o.workers = 1000; /* out of range, but past the caller's struct */
	o.simd = 99;	  /* likewise */
	o.max_qps = 1000;
	EXPECT_OK(&o);
	assert_int_equal(cfg.page_size, 8192);
	assert_int_equal(cfg.workers, 0);
	assert_int_equal(cfg.max_qps, 64);
	assert_int_equal(cfg.simd, RDMIG_SIMD_AUTO);

	/* a caller that predates the simd field: it takes its default */
	rdmig_opts_init(&o);
	o.size = offsetof(struct rdmig_opts, simd);
	o.pin = RDMIG_PIN_OFF;
	o.simd = 99;
	EXPECT_OK(&o);
	assert_false(cfg.pin);
	assert_int_equal(cfg.simd, RDMIG_SIMD_AUTO);
}

/* A newer caller's struct: unknown trailing fields must be zero. */
static void config_opts_larger_size_nonzero_tail_einval(void **state)
{
	struct {
		struct rdmig_opts o;
		uint32_t newer[4];
	} big;

	_Static_assert(sizeof(big) == 160, "the messages below name size 160");

	(void)state;
	memset(&big, 0, sizeof(big));
	rdmig_opts_init(&big.o);
	big.o.size = sizeof(big);
	big.o.timeout_ms = 555;
	EXPECT_OK(&big.o);
	assert_int_equal(cfg.timeout_ms, 555);

	big.newer[3] = 1;
	EXPECT_EINVAL(&big.o, "size 160");
	big.newer[3] = 0;
	big.newer[0] = 0x100;
	EXPECT_EINVAL(&big.o, "size 160");
}

/*
 * The bandwidth cap: bytes per second with binary suffixes, 0 for none
 * (also from the variable, overriding a field), at least 1 MiB/s, at most
 * 1 TiB/s; a bad value names the variable or the field.
 */
static void config_max_bandwidth(void **state)
{
	struct rdmig_opts o;

	(void)state;
	EXPECT_OK(NULL);
	assert_int_equal(cfg.max_bandwidth, 0);
	rdmig_opts_init(&o);
	o.max_bandwidth = 250000000;
	EXPECT_OK(&o);
	assert_int_equal(cfg.max_bandwidth, 250000000);
	set("RDMIG_MAX_BANDWIDTH", "1G");
	EXPECT_OK(&o);
	assert_int_equal(cfg.max_bandwidth, 1ull << 30);
	set("RDMIG_MAX_BANDWIDTH", "0");
	EXPECT_OK(&o);
	assert_int_equal(cfg.max_bandwidth, 0);
	set("RDMIG_MAX_BANDWIDTH", "1M");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.max_bandwidth, 1ull << 20);
	unsetenv("RDMIG_MAX_BANDWIDTH");
	ENV_EINVAL("RDMIG_MAX_BANDWIDTH", "1048575");
	ENV_EINVAL("RDMIG_MAX_BANDWIDTH", "2T");
	ENV_EINVAL("RDMIG_MAX_BANDWIDTH", "1025G");
	ENV_EINVAL("RDMIG_MAX_BANDWIDTH", "-1");
	o.max_bandwidth = 1000;
	EXPECT_EINVAL(&o, "opts.max_bandwidth");
	/* The variable replaces a bad field. */
	set("RDMIG_MAX_BANDWIDTH", "8M");
	EXPECT_OK(&o);
	assert_int_equal(cfg.max_bandwidth, 8ull << 20);
}

/* --- create ------------------------------------------------------------------ */

static void config_src_create_bad_env_einval_no_handle(void **state)
{
	struct rdmig_src *src = NULL;

	(void)state;
	set("RDMIG_QUEUE_DEPTH", "abc");
	assert_int_equal(rdmig_src_create(NULL, &src), -EINVAL);
	assert_null(src);
	assert_contains(rdmig_last_error(), "RDMIG_QUEUE_DEPTH");
	clear_env();
	set("RDMIG_PIN", "maybe");
	assert_int_equal(rdmig_src_create(NULL, &src), -EINVAL);
	assert_null(src);
	assert_contains(rdmig_last_error(), "RDMIG_PIN");
	clear_env();
	set("RDMIG_SIMD", "sse2");
	assert_int_equal(rdmig_src_create(NULL, &src), -EINVAL);
	assert_null(src);
	assert_contains(rdmig_last_error(), "RDMIG_SIMD");
	clear_env();
	/* and with the variable gone, create works and clears the message */
	assert_int_equal(rdmig_src_create(NULL, &src), 0);
	assert_non_null(src);
	assert_string_equal(rdmig_last_error(), "");
	rdmig_src_destroy(src);
}

static void config_dst_create_bad_env_einval_no_handle(void **state)
{
	struct rdmig_dst *dst = NULL;
	struct rdmig_opts o;

	(void)state;
	set("RDMIG_PAGE_SIZE", "12288");
	assert_int_equal(rdmig_dst_create(NULL, &dst), -EINVAL);
	assert_null(dst);
	assert_contains(rdmig_last_error(), "RDMIG_PAGE_SIZE");
	clear_env();
	set("RDMIG_LOG_LEVEL", "loud");
	rdmig_opts_init(&o);
	assert_int_equal(rdmig_dst_create(&o, &dst), -EINVAL);
	assert_null(dst);
	assert_contains(rdmig_last_error(), "RDMIG_LOG_LEVEL");
	clear_env();
	assert_int_equal(rdmig_dst_create(&o, &dst), 0);
	assert_non_null(dst);
	assert_string_equal(rdmig_last_error(), "");
	rdmig_dst_destroy(dst);
}

static void config_create_bad_opts_einval_no_handle(void **state)
{
	struct rdmig_src *src = NULL;
	struct rdmig_dst *dst = NULL;
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.simd = RDMIG_SIMD_SCALAR + 1;
	assert_int_equal(rdmig_src_create(&o, &src), -EINVAL);
	assert_null(src);
	assert_contains(rdmig_last_error(), "simd");
	assert_int_equal(rdmig_dst_create(&o, &dst), -EINVAL);
	assert_null(dst);
	assert_contains(rdmig_last_error(), "simd");
}

static void config_create_null_handle_pointer_einval(void **state)
{
	(void)state;
	assert_int_equal(rdmig_src_create(NULL, NULL), -EINVAL);
	assert_contains(rdmig_last_error(), "srcp");
	assert_int_equal(rdmig_dst_create(NULL, NULL), -EINVAL);
	assert_contains(rdmig_last_error(), "dstp");
}

/* --- authentication ---------------------------------------------------------- */

/* Writes n bytes to a new file of the given mode; returns its path (static). */
static const char *key_file(size_t n, mode_t mode)
{
	static char path[64];
	uint8_t key[RDMIG_PSK_MAX + 1];
	int fd;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	snprintf(path, sizeof(path), "/tmp/rdmig-config-test.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, key, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void config_no_key_resolves_but_connect_is_refused(void **state)
{
	struct rdmig__config c;

	(void)state;
	EXPECT_OK(NULL);
	assert_int_equal(cfg.auth, RDMIG_AUTH_DEFAULT);
	assert_int_equal(cfg.psk_len, 0);
	c = cfg;
	assert_int_equal(rdmig__config_auth_ready(&c, "connect"), -EACCES);
	assert_non_null(strstr(rdmig_last_error(), "RDMIG_PSK_FILE"));
	assert_non_null(strstr(rdmig_last_error(), "RDMIG_AUTH=none"));
	/* RDMIG_AUTH=psk says the same thing, explicitly. */
	set("RDMIG_AUTH", "psk");
	EXPECT_OK(NULL);
	assert_int_equal(rdmig__config_auth_ready(&cfg, "connect"), -EACCES);
}

static void config_psk_from_opts_and_file(void **state)
{
	uint8_t key[40];
	struct rdmig_opts o;
	const char *f;

	(void)state;
	memset(key, 0x3c, sizeof(key));
	rdmig_opts_init(&o);
	o.psk = key;
	o.psk_len = sizeof(key);
	EXPECT_OK(&o);
	assert_int_equal(cfg.auth, RDMIG_AUTH_PSK);
	assert_int_equal(cfg.psk_len, sizeof(key));
	assert_memory_equal(cfg.psk, key, sizeof(key));
	assert_int_equal(rdmig__config_auth_ready(&cfg, "connect"), 0);
	/* The file overrides the field. */
	f = key_file(32, 0600);
	set("RDMIG_PSK_FILE", f);
	EXPECT_OK(&o);
	assert_int_equal(cfg.psk_len, 32);
	assert_int_equal(cfg.psk[0], 1);
	assert_int_equal(cfg.psk[31], (uint8_t)(31 * 7 + 1));
	/* 0400 is fine too: only the owner may read it. */
	assert_int_equal(chmod(f, 0400), 0);
	EXPECT_OK(NULL);
	unlink(f);
	rdmig__config_wipe(&cfg);
	assert_int_equal(cfg.psk_len, 0);
	assert_int_equal(cfg.psk[0], 0);
}

static void config_psk_file_refusals(void **state)
{
	static const mode_t open_modes[] = { 0640, 0604, 0660, 0644, 0602, 0610 };
	const char *f;

	(void)state;
	set("RDMIG_PSK_FILE", "/nonexistent/rdmig.key");
	EXPECT_EINVAL(NULL, "RDMIG_PSK_FILE");
	EXPECT_EINVAL(NULL, "cannot open");
	/* Too short, too long. */
	f = key_file(31, 0600);
	set("RDMIG_PSK_FILE", f);
	EXPECT_EINVAL(NULL, "31 bytes");
	unlink(f);
	f = key_file(RDMIG_PSK_MAX + 1, 0600);
	set("RDMIG_PSK_FILE", f);
	EXPECT_EINVAL(NULL, "RDMIG_PSK_FILE");
	unlink(f);
	/* Any permission for group or others. */
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(open_modes); i++) {
		f = key_file(32, open_modes[i]);
		set("RDMIG_PSK_FILE", f);
		EXPECT_EINVAL(NULL, "group or others");
		unlink(f);
	}
	/* Not a regular file. */
	set("RDMIG_PSK_FILE", "/dev/null");
	EXPECT_EINVAL(NULL, "not a regular file");
	set("RDMIG_PSK_FILE", "/tmp");
	EXPECT_EINVAL(NULL, "RDMIG_PSK_FILE");
}

static void config_auth_values(void **state)
{
	uint8_t key[32] = { 1 };
	struct rdmig_opts o;

	(void)state;
	ENV_EINVAL("RDMIG_AUTH", "off");
	ENV_EINVAL("RDMIG_AUTH", "");
	ENV_EINVAL("RDMIG_AUTH", "NONE");
	rdmig_opts_init(&o);
	o.auth = 3;
	EXPECT_EINVAL(&o, "opts.auth");
	o.auth = RDMIG_AUTH_NONE;
	EXPECT_OK(&o);
	assert_int_equal(cfg.auth, RDMIG_AUTH_NONE);
	assert_int_equal(rdmig__config_auth_ready(&cfg, "connect"), 0);
	/* No authentication and a key at once is a contradiction. */
	o.psk = key;
	o.psk_len = sizeof(key);
	EXPECT_EINVAL(&o, "choose one");
	rdmig_opts_init(&o);
	o.psk = key;
	o.psk_len = sizeof(key);
	set("RDMIG_AUTH", "none");
	EXPECT_EINVAL(&o, "RDMIG_AUTH=none");
	unsetenv("RDMIG_AUTH");
	/* A key field that is no key. */
	o.psk_len = 31;
	EXPECT_EINVAL(&o, "opts.psk");
	o.psk = NULL;
	o.psk_len = 32;
	EXPECT_EINVAL(&o, "NULL");
	o.psk = key;
	o.psk_len = 0;
	EXPECT_EINVAL(&o, "opts.psk");
}

/* --- choosing the path: address, device, GID index, TOS, worker CPUs -------- */

static void config_path_defaults_leave_the_choice(void **state)
{
	(void)state;
	EXPECT_OK(NULL);
	assert_false(cfg.has_local);
	assert_string_equal(cfg.device, "");
	assert_int_equal(cfg.device_port, 0);
	assert_int_equal(cfg.gid_index, -1);
	assert_int_equal(cfg.tos, -1);
	assert_false(cfg.has_worker_cpus);
}

static void config_local_addr_parsed(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	o.local_addr = "10.1.2.3";
	EXPECT_OK(&o);
	assert_true(cfg.has_local);
	assert_int_equal(cfg.local.ss_family, AF_INET);
	assert_string_equal(cfg.local_str, "10.1.2.3");
	set("RDMIG_LOCAL_ADDR", "fd00::7");
	EXPECT_OK(&o); /* the variable wins */
	assert_int_equal(cfg.local.ss_family, AF_INET6);
	assert_string_equal(cfg.local_str, "fd00::7");
}

static void config_bad_local_addr_einval(void **state)
{
	struct rdmig_opts o;

	(void)state;
	ENV_EINVAL("RDMIG_LOCAL_ADDR", "");
	ENV_EINVAL("RDMIG_LOCAL_ADDR", "example.com"); /* no name lookup at create */
	ENV_EINVAL("RDMIG_LOCAL_ADDR", "10.1.2.300");
	ENV_EINVAL("RDMIG_LOCAL_ADDR", "10.1.2.3:80");
	rdmig_opts_init(&o);
	o.local_addr = "not an address";
	EXPECT_EINVAL(&o, "opts.local_addr");
	EXPECT_EINVAL(&o, "not an address");
}

static void config_device_parsed(void **state)
{
	struct rdmig_opts o;

	(void)state;
	set("RDMIG_DEVICE", "rxe0");
	EXPECT_OK(NULL);
	assert_string_equal(cfg.device, "rxe0");
	assert_int_equal(cfg.device_port, 0);
	set("RDMIG_DEVICE", "mlx5_bond.0-x:2");
	EXPECT_OK(NULL);
	assert_string_equal(cfg.device, "mlx5_bond.0-x");
	assert_int_equal(cfg.device_port, 2);
	unsetenv("RDMIG_DEVICE");
	rdmig_opts_init(&o);
	o.device = "mlx5_1:1";
	EXPECT_OK(&o);
	assert_string_equal(cfg.device, "mlx5_1");
	assert_int_equal(cfg.device_port, 1);
}

static void config_bad_device_einval(void **state)
{
	struct rdmig_opts o;
	char longname[80];

	(void)state;
	ENV_EINVAL("RDMIG_DEVICE", "");
	ENV_EINVAL("RDMIG_DEVICE", ":1");
	ENV_EINVAL("RDMIG_DEVICE", "rxe0:");
	ENV_EINVAL("RDMIG_DEVICE", "rxe0:0");
	ENV_EINVAL("RDMIG_DEVICE", "rxe0:256");
	ENV_EINVAL("RDMIG_DEVICE", "rxe0:1x");
	ENV_EINVAL("RDMIG_DEVICE", "rxe 0");
	ENV_EINVAL("RDMIG_DEVICE", "../rxe0");
	memset(longname, 'a', 64);
	longname[64] = 0;
	ENV_EINVAL("RDMIG_DEVICE", longname);
	longname[63] = 0; /* 63 characters fit */
	set("RDMIG_DEVICE", longname);
	EXPECT_OK(NULL);
	unsetenv("RDMIG_DEVICE");
	rdmig_opts_init(&o);
	o.device = "bad/name";
	EXPECT_EINVAL(&o, "opts.device");
}

static void config_gid_index_and_tos_parsed(void **state)
{
	struct rdmig_opts o;

	(void)state;
	rdmig_opts_init(&o);
	/* 0 is a value: without its bit the field means "unset" */
	o.gid_index = 3;
	o.tos = 96;
	EXPECT_OK(&o);
	assert_int_equal(cfg.gid_index, -1);
	assert_int_equal(cfg.tos, -1);
	o.set = RDMIG_OPTS_GID_INDEX | RDMIG_OPTS_TOS;
	EXPECT_OK(&o);
	assert_int_equal(cfg.gid_index, 3);
	assert_int_equal(cfg.tos, 96);
	o.gid_index = 0;
	o.tos = 0;
	EXPECT_OK(&o);
	assert_int_equal(cfg.gid_index, 0);
	assert_int_equal(cfg.tos, 0);
	set("RDMIG_GID_INDEX", "255");
	set("RDMIG_TOS", "255");
	EXPECT_OK(&o);
	assert_int_equal(cfg.gid_index, 255);
	assert_int_equal(cfg.tos, 255);
	set("RDMIG_GID_INDEX", "0");
	set("RDMIG_TOS", "0");
	EXPECT_OK(NULL);
	assert_int_equal(cfg.gid_index, 0);
	assert_int_equal(cfg.tos, 0);
}

static void config_bad_gid_index_and_tos_einval(void **state)
{
	struct rdmig_opts o;

	(void)state;
	ENV_EINVAL("RDMIG_GID_INDEX", "256");
	ENV_EINVAL("RDMIG_GID_INDEX", "-1");
	ENV_EINVAL("RDMIG_GID_INDEX", "");
	ENV_EINVAL("RDMIG_GID_INDEX", "1x");
	ENV_EINVAL("RDMIG_TOS", "256");
	ENV_EINVAL("RDMIG_TOS", "-1");
	ENV_EINVAL("RDMIG_TOS", "0x10");
	ENV_EINVAL("RDMIG_TOS", "");
	rdmig_opts_init(&o);
	o.set = RDMIG_OPTS_GID_INDEX;
	o.gid_index = 256;
	EXPECT_EINVAL(&o, "opts.gid_index");
	o.set = RDMIG_OPTS_TOS;
	o.tos = 1000;
	EXPECT_EINVAL(&o, "opts.tos");
	o.set = 1u << 7;
	EXPECT_EINVAL(&o, "opts.set");
	o.set = 0;
	o.reserved2 = 1;
	EXPECT_EINVAL(&o, "opts.reserved2");
}

/* The lowest and highest CPU this process may run on. */
static void allowed_range(unsigned *lo, unsigned *hi)
{
	cpu_set_t cs;

	assert_int_equal(sched_getaffinity(0, sizeof(cs), &cs), 0);
	*lo = CPU_SETSIZE;
	*hi = 0;
	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &cs)) {
			*lo = c < *lo ? c : *lo;
			*hi = c;
		}
	assert_true(*lo <= *hi);
}

static void config_worker_cpus_parsed(void **state)
{
	struct rdmig_opts o;
	unsigned lo, hi;
	char list[64];

	(void)state;
	allowed_range(&lo, &hi);
	set("RDMIG_WORKER_CPUS", "0-3,8,10-11");
	if (lo <= 3 || lo == 8 || lo == 10 || lo == 11) {
		EXPECT_OK(NULL);
		assert_true(cfg.has_worker_cpus);
		for (unsigned c = 0; c < 16; c++)
			assert_int_equal(rdmig__cpu_isset(cfg.worker_cpus, c),
					 c <= 3 || c == 8 || c == 10 || c == 11);
	}
	snprintf(list, sizeof(list), "%u", hi);
	set("RDMIG_WORKER_CPUS", list);
	EXPECT_OK(NULL);
	for (unsigned c = 0; c < RDMIG__MAX_CPUS; c++)
		assert_int_equal(rdmig__cpu_isset(cfg.worker_cpus, c), c == hi);
	unsetenv("RDMIG_WORKER_CPUS");
	rdmig_opts_init(&o);
	snprintf(list, sizeof(list), "%u-%u,1023", lo, hi);
	o.worker_cpus = list;
	EXPECT_OK(&o);
	assert_true(rdmig__cpu_isset(cfg.worker_cpus, lo));
	assert_true(rdmig__cpu_isset(cfg.worker_cpus, hi));
	assert_true(rdmig__cpu_isset(cfg.worker_cpus, 1023));
}

static void config_bad_worker_cpus_einval(void **state)
{
	struct rdmig_opts o;

	(void)state;
	ENV_EINVAL("RDMIG_WORKER_CPUS", "");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "a");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "0,");
	ENV_EINVAL("RDMIG_WORKER_CPUS", ",0");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "0-");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "3-1");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "0 1");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "0-1-2");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "1024");
	ENV_EINVAL("RDMIG_WORKER_CPUS", "0-99999999999");
	/* A list the process may not run on at all: named, with its affinity. */
	set("RDMIG_WORKER_CPUS", "1023");
	EXPECT_EINVAL(NULL, "RDMIG_WORKER_CPUS: none of CPUs 1023");
	EXPECT_EINVAL(NULL, "affinity");
	unsetenv("RDMIG_WORKER_CPUS");
	rdmig_opts_init(&o);
	o.worker_cpus = "2-";
	EXPECT_EINVAL(&o, "opts.worker_cpus");
}

static void config_cpus_format_round_trips(void **state)
{
	uint64_t set_[RDMIG__CPU_WORDS] = { 0 };
	char buf[128];

	(void)state;
	rdmig__cpus_format(set_, buf, sizeof(buf));
	assert_string_equal(buf, "(none)");
	set_[0] = 0xfull | 1ull << 8 | 3ull << 10;
	set_[15] = 1ull << 63;
	rdmig__cpus_format(set_, buf, sizeof(buf));
	assert_string_equal(buf, "0-3,8,10-11,1023");
}

#define T(f) cmocka_unit_test_setup_teardown(f, env_setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(config_null_opts_defaults),
		T(config_initialised_opts_defaults),
		T(config_opts_fields_override_defaults),
		T(config_env_overrides_opts_fields),
		T(config_env_zero_accept_timeout_overrides_field),
		T(config_env_overrides_only_its_field),
		T(config_pin_values_parsed),
		T(config_simd_values_parsed),
		T(config_log_levels_accepted),
		T(config_size_suffixes_scale_binary),
		T(config_range_limits_accepted),
		T(config_env_malformed_number_einval),
		T(config_env_out_of_range_einval),
		T(config_env_page_size_not_power_of_two_einval),
		T(config_env_bad_pin_einval),
		T(config_env_bad_simd_einval),
		T(config_skip_policy_parsed_bad_einval),
		T(config_env_bad_log_level_einval),
		T(config_opts_field_out_of_range_einval),
		T(config_opts_simd_out_of_range_einval),
		T(config_env_replaces_bad_opts_field),
		T(config_signal_interval_above_queue_depth_einval),
		T(config_inflight_below_page_size_einval),
		T(config_chunk_over_two_gib_einval),
		T(config_large_page_size_alone_defaults_follow),
		T(config_chunk_default_follows_page_size_one_mib),
		T(config_opts_size_too_small_einval),
		T(config_opts_smaller_size_ignores_later_fields),
		T(config_opts_larger_size_nonzero_tail_einval),
		T(config_src_create_bad_env_einval_no_handle),
		T(config_dst_create_bad_env_einval_no_handle),
		T(config_create_bad_opts_einval_no_handle),
		T(config_create_null_handle_pointer_einval),
		T(config_no_key_resolves_but_connect_is_refused),
		T(config_psk_from_opts_and_file),
		T(config_psk_file_refusals),
		T(config_auth_values),
		T(config_path_defaults_leave_the_choice),
		T(config_local_addr_parsed),
		T(config_bad_local_addr_einval),
		T(config_device_parsed),
		T(config_bad_device_einval),
		T(config_gid_index_and_tos_parsed),
		T(config_bad_gid_index_and_tos_einval),
		T(config_worker_cpus_parsed),
		T(config_bad_worker_cpus_einval),
		T(config_cpus_format_round_trips),
		T(config_max_bandwidth),
	};

	/* Whatever the caller's environment holds, the tests start from none. */
	clear_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
