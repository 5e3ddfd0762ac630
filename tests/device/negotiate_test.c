/* SPDX-License-Identifier: MIT */
/*
 * Version, capability and auth-mode negotiation end to end, over real verbs
 * (and loopback): a source that offers an older and a newer range than
 * this library's still migrates on the common version; ranges with
 * nothing in common fail both ends naming both ranges; unknown capability
 * bits are ignored; a key on one end only fails both, naming the mismatch
 * (the keyed destination only refuses the attempt and keeps waiting); a
 * wrong key fails with "authentication failed" and exposes nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "common/proto.h"
#include "ctrl/hooks.h"
#include "device/devtest.h"

static const char *ip;

static struct rdmig_src *src_for(const struct dt_guest *g, const struct rdmig_opts *o)
{
	struct rdmig_src *src;

	assert_int_equal(rdmig_src_create(o, &src), 0);
	for (unsigned i = 0; i < g->n; i++)
		assert_int_equal(rdmig_src_add_region(src, g->gpa[i], g->hva[i], g->len[i]),
				 (int)i);
	return src;
}

static void guests(struct dt_guest *sg, struct dt_guest *dg)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { 2ull << 20 };
	uint64_t rng = 3;

	dt_guest_init(sg, 1, gpa, len);
	dt_guest_init(dg, 1, gpa, len);
	dt_guest_fill(sg, &rng);
}

static uint8_t key_a[32], key_b[32];

/* Options with key k (NULL: an unauthenticated session). */
static struct rdmig_opts keyed(const uint8_t *k)
{
	struct rdmig_opts o;

	rdmig_opts_init(&o);
	o.accept_timeout_ms = 20000;
	if (k) {
		o.psk = k;
		o.psk_len = 32;
	} else {
		o.auth = RDMIG_AUTH_NONE;
	}
	return o;
}

/* Migrates everything once and checks the image. */
static void migrate_exact(struct rdmig_src *src, struct dt_dst *d, struct dt_guest *sg,
			  struct dt_guest *dg)
{
	unsigned region;

	if (rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL) || rdmig_src_complete(src))
		fail_msg("migration: %s", rdmig_last_error());
	assert_int_equal(dt_dst_join(d), 0);
	assert_int_equal(dt_guest_diff(sg, dg, &region), -1);
}

/* [3, 9] and [4, 4] have 4 in common; unknown capability bits are dropped. */
static void older_and_newer_range_settles_on_common_version(void **state)
{
	struct rdmig_opts ka = keyed(key_a);
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	guests(&sg, &dg);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, &ka);
	src = src_for(&sg, &ka);
	rdmig__src_set_offer(src, RDMIG__PROTO_MIN - 1, RDMIG__PROTO_VERSION + 5,
			     RDMIG__CAPS | 0xfff0u);
	if (rdmig_src_connect(src, ip, d.port))
		fail_msg("connect: %s", rdmig_last_error());
	migrate_exact(src, &d, &sg, &dg);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * Without NOTICE and HASHES the final image cannot be verified: a source
 * that cannot agree on them refuses to go on, naming them.
 */
static void no_notice_capability_refused(void **state)
{
	struct rdmig_opts ka = keyed(key_a);
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	guests(&sg, &dg);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, &ka);
	src = src_for(&sg, &ka);
	rdmig__src_set_offer(src, RDMIG__PROTO_MIN, RDMIG__PROTO_VERSION, 0);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), -EPROTO);
	assert_non_null(strstr(rdmig_last_error(), "NOTICE and HASHES"));
	rdmig_src_destroy(src);
	/* It gave up before its own proof: for the destination, one more
	 * refused attempt; it would wait on for a source. */
	assert_int_equal(rdmig_dst_cancel(d.dst), 0);
	assert_int_equal(dt_dst_join(&d), -ECANCELED);
	assert_int_equal(d.stats.rejected, 1);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* A destination serving from a thread of its own, with the options given. */
struct runner {
	pthread_t thread;
	struct rdmig_dst *dst;
	struct rdmig_dst_stats st;
	int ret;
	char err[512];
	char port[16];
};

static void *run_main(void *arg)
{
	struct runner *r = arg;

	r->st.size = sizeof(r->st);
	r->ret = rdmig_dst_run(r->dst, &r->st);
	snprintf(r->err, sizeof(r->err), "%s", rdmig_last_error());
	return NULL;
}

static void runner_start(struct runner *r, const struct dt_guest *g, const struct rdmig_opts *o)
{
	int p;

	memset(r, 0, sizeof(*r));
	assert_int_equal(rdmig_dst_create(o, &r->dst), 0);
	assert_int_equal(rdmig_dst_add_region(r->dst, 0, g->hva[0], g->len[0], 0), 0);
	p = rdmig_dst_listen(r->dst, ip, "0");
	assert_true(p > 0);
	snprintf(r->port, sizeof(r->port), "%d", p);
	assert_int_equal(pthread_create(&r->thread, NULL, run_main, r), 0);
}

static void runner_join(struct runner *r)
{
	pthread_join(r->thread, NULL);
	rdmig_dst_destroy(r->dst);
}

static void expect_err(int got, int want, const char *msg, const char *needle, const char *who)
{
	if (got != want || !strstr(msg, needle))
		fail_msg("%s returned %d '%s', expected %d naming '%s'", who, got, msg, want,
			 needle);
}

/* Nothing in common: the source fails naming both ranges; the destination
 * refuses the attempt, counts it, and names it when its wait runs out. */
static void no_common_version_names_both_ranges(void **state)
{
	const uint16_t ranges[2][2] = { { RDMIG__PROTO_VERSION + 1, RDMIG__PROTO_VERSION + 5 },
					{ 2, RDMIG__PROTO_MIN - 1 } };
	struct dt_guest sg, dg;
	struct rdmig_opts o;

	(void)state;
	guests(&sg, &dg);
	for (unsigned i = 0; i < 2; i++) {
		struct rdmig_src *src;
		struct runner r;
		char theirs[32], ours[32];

		snprintf(theirs, sizeof(theirs), "[%u, %u]", ranges[i][0], ranges[i][1]);
		snprintf(ours, sizeof(ours), "[%u, %u]", RDMIG__PROTO_MIN, RDMIG__PROTO_VERSION);
		o = keyed(key_a);
		o.accept_timeout_ms = 1500;
		runner_start(&r, &dg, &o);
		src = src_for(&sg, &o);
		rdmig__src_set_offer(src, ranges[i][0], ranges[i][1], RDMIG__CAPS);
		expect_err(rdmig_src_connect(src, ip, r.port), -EPROTO, rdmig_last_error(), theirs,
			   "connect");
		expect_err(-EPROTO, -EPROTO, rdmig_last_error(), ours, "connect");
		rdmig_src_destroy(src);
		runner_join(&r);
		expect_err(r.ret, -ETIMEDOUT, r.err, theirs, "rdmig_dst_run");
		expect_err(r.ret, -ETIMEDOUT, r.err, "1 attempts refused", "rdmig_dst_run");
		assert_int_equal(r.st.rejected, 1);
	}
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* Only the source has a key: both fail, naming the mismatch. */
static void key_on_source_only_fails_both(void **state)
{
	struct rdmig_opts so = keyed(key_a), dso = keyed(NULL);
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct runner r;

	(void)state;
	guests(&sg, &dg);
	runner_start(&r, &dg, &dso);
	src = src_for(&sg, &so);
	expect_err(rdmig_src_connect(src, ip, r.port), -EACCES, rdmig_last_error(), "mismatch",
		   "connect");
	rdmig_src_destroy(src);
	runner_join(&r);
	expect_err(r.ret, -EACCES, r.err, "the destination has none", "rdmig_dst_run");
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* Only the destination has a key: the source fails naming the mismatch;
 * the destination refuses it and takes the real source after it. */
static void key_on_destination_only_then_real_source(void **state)
{
	struct rdmig_opts none = keyed(NULL), ka = keyed(key_a);
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct runner r;
	unsigned region;

	(void)state;
	guests(&sg, &dg);
	runner_start(&r, &dg, &ka);
	src = src_for(&sg, &none);
	expect_err(rdmig_src_connect(src, ip, r.port), -EACCES, rdmig_last_error(),
		   "the destination requires a pre-shared key", "connect");
	rdmig_src_destroy(src);
	src = src_for(&sg, &ka);
	if (rdmig_src_connect(src, ip, r.port) ||
	    rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL) || rdmig_src_complete(src))
		fail_msg("the real source: %s", rdmig_last_error());
	rdmig_src_destroy(src);
	runner_join(&r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.st.rejected, 1);
	assert_int_equal(dt_guest_diff(&sg, &dg, &region), -1);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* A wrong key: "authentication failed", nothing more; the right one gets in. */
static void wrong_key_refused_then_right_key(void **state)
{
	struct rdmig_opts ka = keyed(key_a), kb = keyed(key_b);
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct runner r;
	unsigned region;

	(void)state;
	guests(&sg, &dg);
	runner_start(&r, &dg, &ka);
	src = src_for(&sg, &kb);
	expect_err(rdmig_src_connect(src, ip, r.port), -EACCES, rdmig_last_error(),
		   "authentication failed", "connect");
	/* Neither the layout nor the regions' addresses are in the message. */
	assert_null(strstr(rdmig_last_error(), "region"));
	assert_null(strstr(rdmig_last_error(), "0x"));
	rdmig_src_destroy(src);
	src = src_for(&sg, &ka);
	if (rdmig_src_connect(src, ip, r.port) ||
	    rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL) || rdmig_src_complete(src))
		fail_msg("the real source: %s", rdmig_last_error());
	rdmig_src_destroy(src);
	runner_join(&r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.st.rejected, 1);
	assert_int_equal(dt_guest_diff(&sg, &dg, &region), -1);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(older_and_newer_range_settles_on_common_version),
		cmocka_unit_test(no_notice_capability_refused),
		cmocka_unit_test(no_common_version_names_both_ranges),
		cmocka_unit_test(key_on_source_only_fails_both),
		cmocka_unit_test(key_on_destination_only_then_real_source),
		cmocka_unit_test(wrong_key_refused_then_right_key),
	};
	ip = devtest_ip();
	/* The key cases bring their own keys: the run's file would override them. */
	for (unsigned i = 0; i < 32; i++) {
		key_a[i] = (uint8_t)(0xa0 + i);
		key_b[i] = (uint8_t)(0xb0 + i);
	}
	unsetenv("RDMIG_PSK_FILE");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
