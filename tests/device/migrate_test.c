/* SPDX-License-Identifier: MIT */
/*
 * Device tests of a whole migration over real verbs (soft-RoCE in CI):
 * a 64 MiB guest in 3 regions with a writer between passes must land
 * exactly; a mismatched region layout must be refused with a message that
 * names the mismatch; misuse of a live session is refused without harm.
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

#include <rdmig/rdmig.h>

#include "device/devtest.h"

static const char *ip;

/* Completes; on failure says what both ends reported. */
static void complete_ok(struct rdmig_src *src, struct dt_dst *d)
{
	char why[512];

	if (!rdmig_src_complete(src))
		return;
	snprintf(why, sizeof(why), "%s", rdmig_last_error());
	dt_dst_join(d);
	fail_msg("complete: %s; destination: %s", why, d->err);
}

static struct rdmig_src *src_for(const struct dt_guest *g)
{
	struct rdmig_src *src;

	assert_int_equal(rdmig_src_create(NULL, &src), 0);
	for (unsigned i = 0; i < g->n; i++)
		assert_int_equal(rdmig_src_add_region(src, g->gpa[i], g->hva[i], g->len[i]),
				 (int)i);
	return src;
}

static uint64_t bitmap_pages(const struct dt_guest *g)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t w = 0; w < (g->len[i] / DT_PAGE + 63) / 64; w++)
			n += (uint64_t)__builtin_popcountll(g->bitmap[i][w]);
	return n;
}

static void migrate_64mib_3regions_writer_image_exact(void **state)
{
	/* Unequal regions with gaps in guest-physical space; sizes not a
	 * multiple of the chunk, so the last chunk of each is partial. */
	const uint64_t gpa[3] = { 0, 1ull << 32, 6ull << 30 };
	const uint64_t len[3] = { 8ull << 20, (40ull << 20) + 5 * DT_PAGE,
				  (16ull << 20) - 5 * DT_PAGE };
	struct dt_guest sg, dg;
	struct rdmig_dirty dirty[3];
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct dt_dst d;
	struct rdmig_src *src;
	uint64_t rng = 42, want;
	unsigned region;
	int64_t page;

	(void)state;
	dt_guest_init(&sg, 3, gpa, len);
	dt_guest_init(&dg, 3, gpa, len);
	dt_guest_fill(&sg, &rng);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = src_for(&sg);
	for (unsigned i = 0; i < 3; i++)
		dirty[i] = (struct rdmig_dirty){ .bitmap = sg.bitmap[i],
						 .words = (len[i] / DT_PAGE + 63) / 64 };

	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	/* A second connect is refused and leaves the session as it was. */
	assert_int_equal(rdmig_src_connect(src, ip, d.port), -EISCONN);

	/* Pass 1: everything. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	assert_int_equal(st.pass, 1);
	assert_int_equal(st.dirty_pages, dt_guest_bytes(&sg) / DT_PAGE);
	assert_int_equal(st.wire_bytes, dt_guest_bytes(&sg));

	/* A bitmap shorter than its region is refused; nothing is sent. */
	dirty[1].words--;
	assert_int_equal(rdmig_src_pass(src, dirty, 3, 0, &st), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "shorter than the region"));
	dirty[1].words++;
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), -EINVAL);

	/* Five pre-copy passes with the writer changing pages in between, then
	 * the final pass after the last change ("paused guest"). */
	for (unsigned p = 0; p < 6; p++) {
		want = dt_guest_write(&sg, 200 + 150 * p, &rng);
		assert_int_equal(want, bitmap_pages(&sg));
		assert_int_equal(rdmig_src_pass(src, dirty, 3, 0, &st), 0);
		assert_int_equal(st.pass, 2 + p);
		assert_int_equal(st.dirty_pages, want);
		assert_int_equal(st.wire_bytes, want * DT_PAGE);
		assert_true(st.writes >= 1 && st.writes <= want);
	}
	/* Every change was followed by a pass; compare once the destination
	 * has let go of the memory. */
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	assert_int_equal(d.stats.passes, 7);

	page = dt_guest_diff(&sg, &dg, &region);
	if (page >= 0)
		fail_msg("page %lld of region %u differs after the migration", (long long)page,
			 region);

	/* After completion the session is over. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), -EPIPE);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * The dirty log's set bits as lists, as a dirty ring gives them: backwards,
 * with every fifth page listed twice. Returns the pages listed (with the
 * duplicates); pages[] must hold twice the bits set.
 */
static uint64_t to_lists(const struct dt_guest *g, struct rdmig_dirty_list *l, uint64_t *pages)
{
	uint64_t *p = pages;

	for (unsigned i = 0; i < g->n; i++) {
		uint64_t np = g->len[i] / DT_PAGE;

		l[i] = (struct rdmig_dirty_list){ .pages = p };
		for (uint64_t q = np; q-- > 0;)
			if (g->bitmap[i][q / 64] >> (q % 64) & 1) {
				*p++ = q;
				if (q % 5 == 0)
					*p++ = q;
			}
		l[i].count = (size_t)(p - l[i].pages);
	}
	return (uint64_t)(p - pages);
}

/*
 * A migration whose passes take dirty lists: refusals of bad lists (nothing
 * sent, the session goes on), pre-copy passes, an estimate, a pass paused
 * on its budget whose lists are overwritten before it resumes, and a
 * final pass: the image must be exact, and every pass's counts those of
 * the distinct pages listed.
 */
static void migrate_dirty_lists_final_image_exact(void **state)
{
	const uint64_t gpa[3] = { 0, 1ull << 32, 6ull << 30 };
	const uint64_t len[3] = { 8ull << 20, (40ull << 20) + 5 * DT_PAGE,
				  (16ull << 20) - 5 * DT_PAGE };
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_estimate est = { .size = sizeof(est) };
	struct rdmig_budget b = { .size = sizeof(b), .wire_bytes = 1 };
	struct rdmig_dirty_list l[3];
	struct dt_guest sg, dg;
	struct dt_dst d;
	struct rdmig_src *src;
	uint64_t rng = 7, want, *pages, bad;
	unsigned region;
	int64_t page;
	int ret;

	(void)state;
	dt_guest_init(&sg, 3, gpa, len);
	dt_guest_init(&dg, 3, gpa, len);
	dt_guest_fill(&sg, &rng);
	pages = calloc(2 * dt_guest_bytes(&sg) / DT_PAGE, sizeof(*pages));
	assert_non_null(pages);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = src_for(&sg);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);

	/* Bad lists are refused, naming what is wrong; nothing is sent. */
	dt_guest_write(&sg, 50, &rng);
	to_lists(&sg, l, pages);
	assert_int_equal(rdmig_src_pass_list(src, l, 2, 0, &st), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "2 dirty lists for 3 regions"));
	assert_int_equal(rdmig_src_pass_list(src, NULL, 3, 0, &st), -EINVAL);
	bad = pages[l[1].pages - pages];
	pages[l[1].pages - pages] = len[1] / DT_PAGE;
	assert_int_equal(rdmig_src_pass_list(src, l, 3, 0, &st), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "past the region's end"));
	assert_int_equal(rdmig_src_estimate_list(src, l, 3, &est), -EINVAL);
	pages[l[1].pages - pages] = bad;
	l[2].pages = NULL;
	assert_int_equal(rdmig_src_pass_list(src, l, 3, 0, &st), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "pages is NULL"));
	assert_int_equal(rdmig_src_pass_list(src, l, 3, RDMIG_PASS_ALL, &st), -EINVAL);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);

	/* Empty lists: a pass with nothing to do. */
	for (unsigned i = 0; i < 3; i++)
		l[i] = (struct rdmig_dirty_list){ 0 };
	assert_int_equal(rdmig_src_pass_list(src, l, 3, 0, &st), 0);
	assert_int_equal(st.dirty_pages, 0);
	assert_int_equal(st.wire_bytes, 0);

	for (unsigned p = 0; p < 4; p++) {
		want = dt_guest_write(&sg, 300 + 100 * p, &rng);
		assert_true(to_lists(&sg, l, pages) > want);
		assert_int_equal(rdmig_src_estimate_list(src, l, 3, &est), 0);
		assert_int_equal(est.dirty_pages, want);
		assert_int_equal(rdmig_src_pass_list(src, l, 3, 0, &st), 0);
		assert_int_equal(st.dirty_pages, want);
		assert_int_equal(st.wire_bytes, want * DT_PAGE);
	}

	/* In slices: the lists may be reused once the call returns. */
	want = dt_guest_write(&sg, 2000, &rng);
	to_lists(&sg, l, pages);
	ret = rdmig_src_pass_list_budget(src, l, 3, 0, &b, &st);
	assert_int_equal(ret, RDMIG_PASS_PAUSED);
	memset(pages, 0xff, 2 * dt_guest_bytes(&sg) / DT_PAGE * sizeof(*pages));
	assert_int_equal(rdmig_src_pass_list(src, l, 3, 0, &st), -EBUSY);
	assert_int_equal(rdmig_src_pass_resume(src, NULL, &st), 0);

	/* The final pass, over lists too. */
	want = dt_guest_write(&sg, 500, &rng);
	to_lists(&sg, l, pages);
	assert_int_equal(rdmig_src_pass_list(src, l, 3, RDMIG_PASS_FINAL, &st), 0);
	assert_int_equal(st.dirty_pages, want);
	assert_int_equal(st.mismatch_pending, 0);
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	page = dt_guest_diff(&sg, &dg, &region);
	if (page >= 0)
		fail_msg("page %lld of region %u differs after the migration", (long long)page,
			 region);
	rdmig_src_destroy(src);
	free(pages);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * The credit paths: a queue depth of 4, a signal every 4th WR, a bytes-in-
 * flight bound smaller than one WRITE (3-page chunks, 2 pages in flight) and
 * three workers. Every worker blocks for room again and again; the image
 * must still be exact and the pass statistics exact.
 */
static void migrate_tight_credits_image_exact(void **state)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t len[2] = { (8ull << 20) + DT_PAGE, 4ull << 20 };
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct dt_dst d;
	uint64_t rng = 9, want;
	unsigned region;
	int64_t page;

	(void)state;
	dt_guest_init(&sg, 2, gpa, len);
	dt_guest_init(&dg, 2, gpa, len);
	dt_guest_fill(&sg, &rng);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	rdmig_opts_init(&o);
	o.workers = 3;
	o.queue_depth = 4;
	o.signal_interval = 4;
	o.inflight_bytes = 2 * DT_PAGE;
	o.chunk_pages = 3;
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(rdmig_src_add_region(src, gpa[i], sg.hva[i], len[i]), (int)i);
		dirty[i] = (struct rdmig_dirty){ .bitmap = sg.bitmap[i],
						 .words = (len[i] / DT_PAGE + 63) / 64 };
	}
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	assert_int_equal(st.workers, 3);
	assert_int_equal(st.wire_bytes, dt_guest_bytes(&sg));
	for (unsigned p = 0; p < 3; p++) {
		want = dt_guest_write(&sg, 500, &rng);
		assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
		assert_int_equal(st.dirty_pages, want);
	}
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	page = dt_guest_diff(&sg, &dg, &region);
	if (page >= 0)
		fail_msg("page %lld of region %u differs", (long long)page, region);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * The destination cannot see RDMA WRITEs land; a pass longer than its idle
 * timeout must still succeed, because the source reports progress. The
 * pass is slowed down (one worker, one page per WRITE, 8 KiB in flight) so
 * that it takes longer than the timeout; the test checks it did.
 */
static void pass_longer_than_idle_timeout_kept_alive(void **state)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { 512ull << 20 };
	const uint32_t idle_ms = 3000; /* the smallest allowed */
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct dt_dst d;
	uint64_t rng = 11;
	unsigned region;

	(void)state;
	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	for (uint64_t p = 0; p < len[0] / DT_PAGE; p += 97) /* enough to compare */
		memset(sg.hva[0] + p * DT_PAGE, (int)(dt_rng(&rng) | 1), 64);
	rdmig_opts_init(&o);
	o.idle_timeout_ms = idle_ms;
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, &o);
	rdmig_opts_init(&o);
	/* Every page goes, so that the pass takes long (nothing is skipped). */
	o.skip_zero = RDMIG_SWITCH_OFF;
	o.skip_unchanged = RDMIG_SWITCH_OFF;
	o.workers = 1;
	o.chunk_pages = 1;
	o.queue_depth = 4;
	o.signal_interval = 1;
	o.inflight_bytes = 2 * DT_PAGE;
	/* Loopback copies far faster than soft-RoCE: cap its wire (4 Gb of
	 * pages at 800 Mb/s take 5 s). */
	if (dt_loopback())
		setenv("RDMIG_LOOPBACK_RATE_MBPS", "800", 1);
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	unsetenv("RDMIG_LOOPBACK_RATE_MBPS");
	assert_int_equal(rdmig_src_add_region(src, gpa[0], sg.hva[0], len[0]), 0);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	print_message("a %.2f s pass against a %.2f s idle timeout\n", (double)st.duration_ns / 1e9,
		      idle_ms / 1e3);
	if (st.duration_ns < 6ull * idle_ms * 1000000 / 5)
		fail_msg("the pass took %llu ms: too fast to prove anything; slow it down",
			 (unsigned long long)(st.duration_ns / 1000000));
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	assert_int_equal(dt_guest_diff(&sg, &dg, &region), -1);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * Completing while some page was never sent would leave the destination with
 * stale memory (DESIGN.md invariant 1): refused, naming the first such page,
 * and the session stays usable.
 */
static void complete_with_unsent_pages_refused(void **state)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t len[2] = { 1ull << 20, 1ull << 20 };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;
	uint64_t rng = 5;
	unsigned region;

	(void)state;
	dt_guest_init(&sg, 2, gpa, len);
	dt_guest_init(&dg, 2, gpa, len);
	dt_guest_fill(&sg, &rng);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = src_for(&sg);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	/* Region 0 entirely, region 1 all but page 200, over two passes. */
	for (unsigned i = 0; i < 2; i++)
		dirty[i] = (struct rdmig_dirty){ .bitmap = sg.bitmap[i], .words = 4 };
	memset(sg.bitmap[0], 0xff, 32);
	memset(sg.bitmap[1], 0xff, 32);
	sg.bitmap[1][200 / 64] &= ~(1ull << (200 % 64));
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, NULL), 0);
	assert_int_equal(rdmig_src_complete(src), -EINVAL);
	if (!strstr(rdmig_last_error(), "page 200 of region 1") ||
	    !strstr(rdmig_last_error(), "never sent"))
		fail_msg("the refusal does not name the page: %s", rdmig_last_error());
	/* The page goes in a later pass; then completion is fine. */
	memset(sg.bitmap[0], 0, 32);
	memset(sg.bitmap[1], 0, 32);
	sg.bitmap[1][200 / 64] |= 1ull << (200 % 64);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, NULL), 0);
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	assert_int_equal(dt_guest_diff(&sg, &dg, &region), -1);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* A guest page changed after its last pass must NOT reach the destination:
 * proves the comparison above can fail (the test is not vacuous). */
static void migrate_unsent_change_detected_by_compare(void **state)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { 1ull << 20 };
	struct dt_guest sg, dg;
	struct dt_dst d;
	struct rdmig_src *src;
	uint64_t rng = 7;
	unsigned region;

	(void)state;
	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	dt_guest_fill(&sg, &rng);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = src_for(&sg);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), 0);
	sg.hva[0][5 * DT_PAGE + 17] ^= 0xff; /* changed, never marked dirty */
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	assert_int_equal(dt_guest_diff(&sg, &dg, &region), 5);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

static void layout_check(const uint64_t *sgpa, const uint64_t *slen, unsigned sn,
			 const uint64_t *dgpa, const uint64_t *dlen, unsigned dn,
			 const char *needle)
{
	struct dt_guest sg, dg;
	struct dt_dst d;
	struct rdmig_src *src;

	dt_guest_init(&sg, sn, sgpa, slen);
	dt_guest_init(&dg, dn, dgpa, dlen);
	dt_dst_start(&d, ip, &dg, 0, NULL);
	src = src_for(&sg);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), -EPROTO);
	if (!strstr(rdmig_last_error(), "region layout mismatch") ||
	    !strstr(rdmig_last_error(), needle))
		fail_msg("source error does not name the mismatch (%s): %s", needle,
			 rdmig_last_error());
	dt_dst_join(&d);
	assert_true(d.ret < 0);
	if (!strstr(d.err, "region layout mismatch") || !strstr(d.err, needle))
		fail_msg("destination error does not name the mismatch (%s): %s", needle, d.err);
	/* The refused source is back where it was and may not pass. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), -ENOTCONN);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

static void connect_region_length_mismatch_refused(void **state)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t slen[2] = { 4ull << 20, 4ull << 20 };
	const uint64_t dlen[2] = { 4ull << 20, 8ull << 20 };

	(void)state;
	layout_check(gpa, slen, 2, gpa, dlen, 2, "gpa 0x100000000");
}

static void connect_region_gpa_mismatch_refused(void **state)
{
	const uint64_t sgpa[2] = { 0, 1ull << 32 };
	const uint64_t dgpa[2] = { 0, 2ull << 32 };
	const uint64_t len[2] = { 1ull << 20, 1ull << 20 };

	(void)state;
	layout_check(sgpa, len, 2, dgpa, len, 2, "no destination region at that gpa");
}

static void connect_region_count_mismatch_refused(void **state)
{
	const uint64_t gpa[3] = { 0, 1ull << 32, 2ull << 32 };
	const uint64_t len[3] = { 1ull << 20, 1ull << 20, 1ull << 20 };

	(void)state;
	layout_check(gpa, len, 2, gpa, len, 3, "2 regions, the destination 3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(migrate_64mib_3regions_writer_image_exact),
		cmocka_unit_test(migrate_tight_credits_image_exact),
		cmocka_unit_test(migrate_dirty_lists_final_image_exact),
		cmocka_unit_test(pass_longer_than_idle_timeout_kept_alive),
		cmocka_unit_test(complete_with_unsent_pages_refused),
		cmocka_unit_test(migrate_unsent_change_detected_by_compare),
		cmocka_unit_test(connect_region_length_mismatch_refused),
		cmocka_unit_test(connect_region_gpa_mismatch_refused),
		cmocka_unit_test(connect_region_count_mismatch_refused),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
