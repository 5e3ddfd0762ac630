/* SPDX-License-Identifier: MIT */
/*
 * Regression tests for defects found by driving the API as a VMM would
 * (issue 13, item 9), over real verbs or over the loopback transport
 * (RDMIG_TRANSPORT=loopback): bitmaps whose bits past a region's end hold
 * garbage, a first pass with balloon information, large pages, and layout
 * mismatches reported field by field at both ends.
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
#include <sys/mman.h>

#include <rdmig/rdmig.h>

#include "device/devtest.h"

static const char *ip;

static void set_page(uint64_t *bm, uint64_t p)
{
	bm[p / 64] |= 1ull << (p % 64);
}

static void assert_same(const struct dt_guest *a, const struct dt_guest *b)
{
	unsigned region;
	int64_t page = dt_guest_diff(a, b, &region);

	if (page >= 0)
		fail_msg("page %lld of region %u differs", (long long)page, region);
}

/*
 * As dt_guest_init(), with every region mapped at a multiple of `align`
 * (a large page size): the mapping is trimmed to the region, so
 * dt_guest_fini() unmaps it.
 */
static void guest_aligned(struct dt_guest *g, unsigned n, const uint64_t *gpa, const uint64_t *len,
			  uint64_t align)
{
	memset(g, 0, sizeof(*g));
	g->n = n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *m = mmap(NULL, len[i] + align, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint8_t *a;

		assert_true(m != MAP_FAILED);
		a = (uint8_t *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
		if (a > m)
			munmap(m, (size_t)(a - m));
		if (m + align > a)
			munmap(a + len[i], (size_t)(m + align - a));
		memset(a, 0, len[i]);
		g->gpa[i] = gpa[i];
		g->len[i] = len[i];
		g->hva[i] = a;
		g->bitmap[i] = calloc((len[i] / DT_PAGE + 63) / 64, sizeof(uint64_t));
		assert_non_null(g->bitmap[i]);
	}
}

/* One region of `pages` pages of `ps` bytes, random content, at gpa 0. */
static void one_region(struct dt_guest *sg, struct dt_guest *dg, uint64_t pages, uint64_t ps,
		       uint64_t seed)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { pages * ps };

	guest_aligned(sg, 1, gpa, len, ps);
	guest_aligned(dg, 1, gpa, len, ps);
	dt_guest_fill(sg, &seed);
}

static void pass_ok(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned n,
		    unsigned flags, struct rdmig_pass_stats *st)
{
	int ret = rdmig_src_pass(src, dirty, n, flags, st);

	if (ret)
		fail_msg("pass: %d: %s", ret, rdmig_last_error());
}

static void finish(struct rdmig_src *src, struct dt_dst *d)
{
	if (rdmig_src_complete(src))
		fail_msg("complete: %s", rdmig_last_error());
	if (dt_dst_join(d))
		fail_msg("destination: %s", d->err);
	/* A run that served its source leaves no message (rdmig_last_error()). */
	assert_string_equal(d->err, "");
	rdmig_src_destroy(src);
}

/* --- bits past the region's end ------------------------------------------ */

/*
 * A 65-page region: its bitmaps have two words, of which only bit 0 of the
 * second is a page. A VMM that fills bitmaps with memset(0xff) (and a
 * kernel's bitmap rounded up to longs) leaves the other 63 bits set in
 * one pass and not in the next. They used to be kept as "ballooned", and
 * every later pass failed with -EINVAL naming page 65, which does not
 * exist.
 */
static void skip_tail_bits_past_end_ignored_every_pass(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	uint64_t dirty_bm[2], skip[2];
	struct rdmig_dirty dirty[1] = {
		{ .bitmap = dirty_bm, .words = 2, .skip = skip, .skip_words = 2 }
	};
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	one_region(&sg, &dg, 65, DT_PAGE, 21);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);

	/* Pass 1: every page dirty, page 64 ballooned; both bitmaps' last
	 * words all ones. */
	memset(dirty_bm, 0xff, sizeof(dirty_bm));
	skip[0] = 0;
	skip[1] = ~0ull;
	pass_ok(src, dirty, 1, 0, &st);
	assert_int_equal(st.dirty_pages, 65);
	assert_int_equal(st.skipped_ballooned, 1);

	/* Pass 2: the skip set exact (page 64 still in it), a few pages dirty,
	 * the dirty bitmap exact too. */
	memset(dirty_bm, 0, sizeof(dirty_bm));
	skip[1] = 1;
	for (uint64_t p = 10; p < 13; p++) {
		sg.hva[0][p * DT_PAGE] ^= 0x5a;
		set_page(dirty_bm, p);
	}
	pass_ok(src, dirty, 1, 0, &st);
	assert_int_equal(st.dirty_pages, 3);
	assert_int_equal(st.skipped_ballooned, 0);

	/* Pass 3: and again, garbage past the end of the dirty log alone. */
	dirty_bm[1] = ~1ull;
	pass_ok(src, dirty, 1, 0, &st);
	assert_int_equal(st.dirty_pages, 3);

	/* Page 64 leaves the skip set, dirty: sent; then the final pass. */
	skip[1] = 0;
	memset(dirty_bm, 0, sizeof(dirty_bm));
	set_page(dirty_bm, 64);
	dirty_bm[1] |= ~1ull; /* garbage again */
	pass_ok(src, dirty, 1, RDMIG_PASS_FINAL, &st);
	assert_int_equal(st.dirty_pages, 1);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* The refusal the check exists for still names a real page. */
static void skip_tail_bits_real_page_left_set_still_refused(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	uint64_t dirty_bm[2], skip[2] = { 0, ~0ull };
	struct rdmig_dirty dirty[1] = {
		{ .bitmap = dirty_bm, .words = 2, .skip = skip, .skip_words = 2 }
	};
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	one_region(&sg, &dg, 65, DT_PAGE, 22);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);
	memset(dirty_bm, 0xff, sizeof(dirty_bm));
	pass_ok(src, dirty, 1, 0, &st);
	/* Page 64 leaves the set without being dirty: refused, naming it. */
	memset(dirty_bm, 0, sizeof(dirty_bm));
	skip[1] = 0;
	assert_int_equal(rdmig_src_pass(src, dirty, 1, 0, &st), -EINVAL);
	if (!strstr(rdmig_last_error(), "page 64 of region 0 left the skip set"))
		fail_msg("the refusal does not name page 64: %s", rdmig_last_error());
	set_page(dirty_bm, 64);
	pass_ok(src, dirty, 1, RDMIG_PASS_FINAL, &st);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- RDMIG_PASS_ALL with skip sets ----------------------------------------- */

static void pass_all_with_skip_sets_ballooned_pages_left_off(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	uint64_t skip0[2] = { 1ull << 3 | 1ull << 4, 1ull << 6 }, skip1[1] = { 0 };
	uint64_t dirty_bm[2] = { 0 };
	struct rdmig_dirty all[2] = { { .skip = skip0, .skip_words = 2 }, { .skip = NULL } };
	struct rdmig_dirty dirty[2];
	const uint64_t gpa[2] = { 0, 1ull << 20 };
	const uint64_t len[2] = { 100 * DT_PAGE, 64 * DT_PAGE };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	uint64_t seed = 23;
	struct dt_dst d;

	(void)state;
	dt_guest_init(&sg, 2, gpa, len);
	dt_guest_init(&dg, 2, gpa, len);
	dt_guest_fill(&sg, &seed);
	memset(dg.hva[0], 0xa5, dg.len[0]);
	dt_dst_start(&d, ip, &dg, 0, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);

	/* An entry with a bitmap is refused: it would be ignored. */
	all[1].bitmap = dirty_bm;
	assert_int_equal(rdmig_src_pass(src, all, 2, RDMIG_PASS_ALL, &st), -EINVAL);
	if (!strstr(rdmig_last_error(), "region 1") || !strstr(rdmig_last_error(), "NULL"))
		fail_msg("the refusal does not name the entry: %s", rdmig_last_error());
	all[1].bitmap = NULL;
	assert_int_equal(rdmig_src_pass(src, all, 1, RDMIG_PASS_ALL, &st), -EINVAL);

	/* The first pass: everything but pages 3, 4 and 70 of region 0. */
	pass_ok(src, all, 2, RDMIG_PASS_ALL, &st);
	assert_int_equal(st.dirty_pages, 164);
	assert_int_equal(st.skipped_ballooned, 3);
	assert_int_equal(st.written_pages + st.skipped_zero + st.zero_filled_pages, 161);
	assert_int_equal(dg.hva[0][3 * DT_PAGE + 7], 0xa5); /* never written */
	assert_int_equal(dg.hva[0][70 * DT_PAGE + 7], 0xa5);

	/* They are ballooned, as with a bitmap: page 4 must be dirty when it
	 * leaves the set. */
	skip0[0] = 1ull << 3;
	dt_dirty(&sg, dirty);
	memset(sg.bitmap[0], 0, 2 * sizeof(uint64_t));
	memset(sg.bitmap[1], 0, sizeof(uint64_t));
	dirty[0].skip = skip0;
	dirty[0].skip_words = 2;
	dirty[1].skip = skip1;
	dirty[1].skip_words = 1;
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), -EINVAL);
	if (!strstr(rdmig_last_error(), "page 4 of region 0 left the skip set"))
		fail_msg("the refusal does not name page 4: %s", rdmig_last_error());
	set_page(sg.bitmap[0], 4);
	set_page(sg.bitmap[0], 70); /* dirty but still ballooned */
	pass_ok(src, dirty, 2, RDMIG_PASS_FINAL, &st);
	assert_int_equal(st.skipped_ballooned, 1);
	/* Complete: pages 3 and 70 were left off as don't-care, not unsent. */
	finish(src, &d);
	for (uint64_t p = 0; p < 100; p++)
		if (p != 3 && p != 70)
			assert_memory_equal(sg.hva[0] + p * DT_PAGE, dg.hva[0] + p * DT_PAGE,
					    DT_PAGE);
	assert_memory_equal(sg.hva[1], dg.hva[1], sg.len[1]);
	assert_int_equal(dg.hva[0][3 * DT_PAGE], 0xa5);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- large pages ------------------------------------------------------------ */

/* RDMIG_PAGE_SIZE 8 MiB set alone: create used to fail naming
 * RDMIG_INFLIGHT_BYTES. Now a migration of 8 MiB pages is exact. */
static void large_pages_8m_alone_migrate_exact(void **state)
{
	const uint64_t ps = 8ull << 20;
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	uint64_t bm[1] = { 0 };
	struct rdmig_dirty dirty[1] = { { .bitmap = bm, .words = 1 } };
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	rdmig_opts_init(&o);
	o.page_size = (uint32_t)ps;
	one_region(&sg, &dg, 4, ps, 24);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, &o);
	src = dt_src_connect(ip, &d, &sg, &o);
	pass_ok(src, NULL, 0, RDMIG_PASS_ALL, &st);
	assert_int_equal(st.written_pages, 4);
	assert_int_equal(st.wire_bytes, 4 * ps);
	sg.hva[0][2 * ps + 4096] ^= 1;
	set_page(bm, 2);
	pass_ok(src, dirty, 1, RDMIG_PASS_FINAL, &st);
	assert_int_equal(st.written_pages, 1);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- layout mismatches ------------------------------------------------------- */

struct mm_dst {
	struct rdmig_dst *dst;
	pthread_t thread;
	int ret, mret;
	struct rdmig_layout_mismatch mm;
	char port[16];
};

static void *mm_main(void *arg)
{
	struct mm_dst *d = arg;

	d->ret = rdmig_dst_run(d->dst, NULL);
	d->mm.size = sizeof(d->mm);
	d->mret = rdmig_dst_mismatch(d->dst, &d->mm);
	return NULL;
}

struct layout {
	unsigned n;
	uint64_t gpa[3], len[3];
	uint32_t page_size; /* 0: default */
};

/*
 * Source `s` against destination `t`: connect fails (-EPROTO), the run
 * fails (-EINVAL), and both ends report the same mismatch, returned.
 */
static struct rdmig_layout_mismatch mismatch_of(const struct layout *s, const struct layout *t)
{
	struct rdmig_layout_mismatch sm = { .size = sizeof(sm) };
	struct dt_guest sg, dg;
	struct rdmig_opts so, to;
	struct rdmig_src *src;
	struct mm_dst d = { 0 };
	int port, ret;

	guest_aligned(&sg, s->n, s->gpa, s->len, 1ull << 20);
	guest_aligned(&dg, t->n, t->gpa, t->len, 1ull << 20);
	rdmig_opts_init(&so);
	rdmig_opts_init(&to);
	so.page_size = s->page_size;
	to.page_size = t->page_size;
	to.accept_timeout_ms = 60000;
	assert_int_equal(rdmig_dst_create(&to, &d.dst), 0);
	for (unsigned i = 0; i < t->n; i++)
		assert_int_equal(rdmig_dst_add_region(d.dst, t->gpa[i], dg.hva[i], t->len[i], 0),
				 (int)i);
	port = rdmig_dst_listen(d.dst, ip, "0");
	assert_true(port > 0);
	snprintf(d.port, sizeof(d.port), "%d", port);
	/* Nothing recorded before a run. */
	assert_int_equal(rdmig_dst_mismatch(d.dst, &sm), -ENODATA);
	assert_int_equal(sm.field, RDMIG_LAYOUT_NONE);
	assert_int_equal(pthread_create(&d.thread, NULL, mm_main, &d), 0);

	assert_int_equal(rdmig_src_create(&so, &src), 0);
	for (unsigned i = 0; i < s->n; i++)
		assert_int_equal(rdmig_src_add_region(src, s->gpa[i], sg.hva[i], s->len[i]),
				 (int)i);
	assert_int_equal(rdmig_src_mismatch(src, &sm), -ENODATA);
	ret = rdmig_src_connect(src, ip, d.port);
	if (ret != -EPROTO)
		fail_msg("connect returned %d, expected -EPROTO: %s", ret, rdmig_last_error());
	/* The text stays for people; the tag it carried is not in it. */
	if (!strstr(rdmig_last_error(), "mismatch") || strstr(rdmig_last_error(), "[layout"))
		fail_msg("connect's message: %s", rdmig_last_error());
	assert_int_equal(rdmig_src_mismatch(src, &sm), 0);
	pthread_join(d.thread, NULL);
	assert_int_equal(d.ret, -EINVAL);
	assert_int_equal(d.mret, 0);
	assert_int_equal(sm.size, sizeof(sm));
	assert_int_equal(sm.field, d.mm.field);
	assert_int_equal(sm.region, d.mm.region);
	assert_int_equal(sm.dst_region, d.mm.dst_region);
	assert_int_equal(sm.source, d.mm.source);
	assert_int_equal(sm.destination, d.mm.destination);
	rdmig_src_destroy(src);
	rdmig_dst_destroy(d.dst);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
	return sm;
}

static void layout_mismatch_length_names_regions_and_lengths(void **state)
{
	const struct layout s = {
		3, { 0, 4ull << 20, 8ull << 20 }, { 1ull << 20, 1ull << 20, 1ull << 20 }, 0
	};
	const struct layout t = {
		3, { 8ull << 20, 0, 4ull << 20 }, { 1ull << 20, 1ull << 20, 2ull << 20 }, 0
	};
	struct rdmig_layout_mismatch m;

	(void)state;
	m = mismatch_of(&s, &t);
	assert_int_equal(m.field, RDMIG_LAYOUT_LENGTH);
	assert_int_equal(m.region, 1);	   /* the source's index */
	assert_int_equal(m.dst_region, 2); /* the destination's, matched by gpa */
	assert_int_equal(m.source, 1ull << 20);
	assert_int_equal(m.destination, 2ull << 20);
}

static void layout_mismatch_gpa_names_overlapping_region(void **state)
{
	const struct layout s = { 2, { 0, 6ull << 20 }, { 1ull << 20, 1ull << 20 }, 0 };
	const struct layout t = { 2, { 0, 5ull << 20 }, { 1ull << 20, 4ull << 20 }, 0 };
	const struct layout u = { 2, { 0, 9ull << 20 }, { 1ull << 20, 1ull << 20 }, 0 };
	struct rdmig_layout_mismatch m;

	(void)state;
	m = mismatch_of(&s, &t);
	assert_int_equal(m.field, RDMIG_LAYOUT_GPA);
	assert_int_equal(m.region, 1);
	assert_int_equal(m.dst_region, 1);
	assert_int_equal(m.source, 6ull << 20);
	assert_int_equal(m.destination, 5ull << 20);
	/* Nothing of the destination's there at all. */
	m = mismatch_of(&s, &u);
	assert_int_equal(m.field, RDMIG_LAYOUT_GPA);
	assert_int_equal(m.region, 1);
	assert_int_equal(m.dst_region, UINT32_MAX);
	assert_int_equal(m.destination, UINT64_MAX);
}

static void layout_mismatch_count_and_page_size(void **state)
{
	const struct layout s = { 1, { 0 }, { 1ull << 20 }, 0 };
	const struct layout t = { 2, { 0, 4ull << 20 }, { 1ull << 20, 1ull << 20 }, 0 };
	struct layout s16 = s;
	struct rdmig_layout_mismatch m;

	(void)state;
	m = mismatch_of(&s, &t);
	assert_int_equal(m.field, RDMIG_LAYOUT_COUNT);
	assert_int_equal(m.region, UINT32_MAX);
	assert_int_equal(m.source, 1);
	assert_int_equal(m.destination, 2);
	/* The page size is checked first. */
	s16.page_size = 16384;
	m = mismatch_of(&s16, &t);
	assert_int_equal(m.field, RDMIG_LAYOUT_PAGE_SIZE);
	assert_int_equal(m.source, 16384);
	assert_int_equal(m.destination, 4096);
}

/* A session that connects records nothing; NULL and an unset size are -EINVAL. */
static void layout_mismatch_none_after_success_enodata(void **state)
{
	struct rdmig_layout_mismatch m = { .size = sizeof(m) };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	one_region(&sg, &dg, 16, DT_PAGE, 25);
	dt_dst_start(&d, ip, &dg, 0, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);
	assert_int_equal(rdmig_src_mismatch(src, &m), -ENODATA);
	assert_int_equal(m.field, RDMIG_LAYOUT_NONE);
	assert_int_equal(rdmig_src_mismatch(src, NULL), -EINVAL);
	m.size = 0;
	assert_int_equal(rdmig_src_mismatch(src, &m), -EINVAL);
	assert_int_equal(rdmig_src_mismatch(NULL, &m), -EINVAL);
	assert_int_equal(rdmig_dst_mismatch(NULL, &m), -EINVAL);
	pass_ok(src, NULL, 0, RDMIG_PASS_ALL | RDMIG_PASS_FINAL, NULL);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(skip_tail_bits_past_end_ignored_every_pass),
		cmocka_unit_test(skip_tail_bits_real_page_left_set_still_refused),
		cmocka_unit_test(pass_all_with_skip_sets_ballooned_pages_left_off),
		cmocka_unit_test(large_pages_8m_alone_migrate_exact),
		cmocka_unit_test(layout_mismatch_length_names_regions_and_lengths),
		cmocka_unit_test(layout_mismatch_gpa_names_overlapping_region),
		cmocka_unit_test(layout_mismatch_count_and_page_size),
		cmocka_unit_test(layout_mismatch_none_after_success_enodata),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
