/* SPDX-License-Identifier: MIT */
/*
 * Tests of verification over real verbs, or over the loopback transport
 * with RDMIG_TRANSPORT=loopback: the destination's hash of what landed is
 * compared with the source's hash of what it scanned; a page where they
 * differ goes again (the next pass, or within a final pass), a page that
 * keeps differing makes complete fail with -EIO naming it, and a final
 * pass verifies with skipping off too. The destination gets a page other
 * than the one scanned through the scan hook (the page changes after its
 * scan, before the NIC reads it) or, over loopback, a read torn in the
 * middle of the NIC's copy (the destination holds bytes the source never
 * held).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rdmig/rdmig.h>

#include "ctrl/hooks.h"
#include "dataplane/xport.h"
#include "device/devtest.h"

static const char *ip;

static void set_page(struct dt_guest *g, unsigned r, uint64_t p)
{
	g->bitmap[r][p / 64] |= 1ull << (p % 64);
}

static void clear_dirty(struct dt_guest *g)
{
	for (unsigned i = 0; i < g->n; i++)
		memset(g->bitmap[i], 0, (g->len[i] / DT_PAGE + 63) / 64 * sizeof(uint64_t));
}

static uint64_t *page_word(struct dt_guest *g, unsigned r, uint64_t p)
{
	return (uint64_t *)(g->hva[r] + p * DT_PAGE);
}

static void assert_same(const struct dt_guest *a, const struct dt_guest *b)
{
	unsigned region;
	int64_t page = dt_guest_diff(a, b, &region);

	if (page >= 0)
		fail_msg("page %lld of region %u differs", (long long)page, region);
}

/* Two regions of `pages` pages each, random content, at gpa 0 and 4 GiB. */
static void two_regions(struct dt_guest *sg, struct dt_guest *dg, uint64_t pages, uint64_t seed)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t len[2] = { pages * DT_PAGE, pages * DT_PAGE };

	dt_guest_init(sg, 2, gpa, len);
	dt_guest_init(dg, 2, gpa, len);
	dt_guest_fill(sg, &seed);
}

static struct rdmig_src *connect_opts(struct dt_dst *d, struct dt_guest *sg, struct dt_guest *dg,
				      bool skipping)
{
	struct rdmig_opts o;

	rdmig_opts_init(&o);
	if (!skipping) {
		o.skip_zero = RDMIG_SWITCH_OFF;
		o.skip_unchanged = RDMIG_SWITCH_OFF;
	}
	dt_dst_start(d, ip, dg, RDMIG_REGION_ZERO_FILLED, NULL);
	return dt_src_connect(ip, d, sg, &o);
}

static void finish_exact(struct rdmig_src *src, struct dt_dst *d, struct dt_guest *sg,
			 struct dt_guest *dg)
{
	if (rdmig_src_complete(src))
		fail_msg("complete: %s", rdmig_last_error());
	if (dt_dst_join(d))
		fail_msg("destination: %s", d->err);
	rdmig_src_destroy(src);
	assert_same(sg, dg);
	dt_guest_fini(sg);
	dt_guest_fini(dg);
}

/*
 * After the scan of page `page` of `region`, before the NIC reads it, the
 * guest adds 1 to its first word: the destination gets a page other than
 * the one hashed. `times` scans are changed (-1: every one).
 */
struct bump {
	unsigned region;
	uint64_t page;
	uint64_t *word;
	atomic_int times, fired;
};

static void bump_hook(void *arg, unsigned region, uint64_t first, uint32_t npages)
{
	struct bump *b = arg;

	if (region != b->region || b->page < first || b->page >= first + npages ||
	    atomic_load(&b->times) == 0)
		return;
	*b->word += 1;
	atomic_fetch_add(&b->fired, 1);
	if (atomic_load(&b->times) > 0)
		atomic_fetch_sub(&b->times, 1);
}

/*
 * Over loopback: the NIC's read of a page is torn half-way, a word of each
 * half changing (the destination holds the old first and the new second
 * half: a page that never existed at the source), once.
 */
struct tear {
	const uint8_t *page;
	uint64_t *first, *second;
	atomic_int fired;
};

static void tear_hook(void *arg, const uint8_t *src, uint64_t len, uint64_t off)
{
	struct tear *t = arg;

	(void)len;
	if (atomic_load(&t->fired) == 0 && src + off == t->page + DT_PAGE / 2) {
		*t->first ^= 0x8000;
		*t->second ^= 0x8000;
		atomic_fetch_add(&t->fired, 1);
	}
}

static void tear_arm(struct tear *t, struct dt_guest *g, unsigned r, uint64_t p)
{
	t->page = g->hva[r] + p * DT_PAGE;
	t->first = page_word(g, r, p) + 10;
	t->second = page_word(g, r, p) + 300;
	atomic_store(&t->fired, 0);
	rdmig__loopback_set_read_hook(tear_hook, t);
}

/* --- (a) pre-copy: a mismatch goes again in the next pass ------------------- */

/*
 * A page torn in the NIC's read in pre-copy, and not marked dirty again by
 * the VMM: only the comparison of the destination's hash with the scan
 * shows it. A pre-copy pass hashes, and so compares, a page whose hash at
 * the destination it holds (the first pass recorded every page's): the
 * second pass rewrites the page and counts the tear; complete refuses,
 * naming it, while it is outstanding; the next pass, over an empty dirty
 * log, sends it again; the image ends exact.
 */
static void precopy_mismatch_resent_next_pass_without_dirty_bit(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) }, tot = { .size = sizeof(tot) };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct tear t = { 0 };
	struct dt_dst d;

	(void)state;
	if (!dt_loopback())
		skip(); /* only the loopback NIC can be stopped in mid-read */
	two_regions(&sg, &dg, 64, 11);
	src = connect_opts(&d, &sg, &dg, true);
	dt_dirty(&sg, dirty);

	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	assert_int_equal(st.written_pages, 128);
	assert_int_equal(st.mismatched_pages, 0);
	clear_dirty(&sg);
	*page_word(&sg, 1, 20) += 1;
	set_page(&sg, 1, 20);
	tear_arm(&t, &sg, 1, 20);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
	rdmig__loopback_set_read_hook(NULL, NULL);
	assert_int_equal(atomic_load(&t.fired), 1);
	assert_int_equal(st.written_pages, 1);
	assert_int_equal(st.mismatched_pages, 1);
	assert_int_equal(st.resent_pages, 0);
	assert_int_equal(st.mismatch_pending, 1);
	assert_memory_not_equal(sg.hva[1] + 20 * DT_PAGE, dg.hva[1] + 20 * DT_PAGE, DT_PAGE);

	/* The destination's copy is known to differ: complete says which. */
	assert_int_equal(rdmig_src_complete(src), -EIO);
	if (!strstr(rdmig_last_error(), "page 20 of region 1 (gpa 0x100014000)"))
		fail_msg("the refusal does not name the page: %s", rdmig_last_error());

	/* Nothing dirty, yet the page goes again, and is verified this time. */
	clear_dirty(&sg);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
	assert_int_equal(st.written_pages, 1);
	assert_int_equal(st.resent_pages, 1);
	assert_int_equal(st.mismatched_pages, 0);
	assert_int_equal(st.mismatch_pending, 0);
	/* And not again after that. */
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
	assert_int_equal(st.written_pages + st.resent_pages + st.scanned_pages, 0);
	assert_int_equal(rdmig_src_stats(src, &tot), 0);
	assert_int_equal(tot.mismatched_pages, 1);
	assert_int_equal(tot.resent_pages, 1);
	assert_int_equal(tot.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

/*
 * A page that mismatched and then went into the skip set is don't-care:
 * no longer mismatched, but ballooned, so it must be dirty when it leaves
 * the set (as any page ballooned while dirty).
 */
static void mismatched_then_ballooned_must_be_dirty_to_leave(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct bump b = { .region = 0, .page = 3 };
	uint64_t skip[2][1] = { { 0 } };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	two_regions(&sg, &dg, 64, 18);
	src = connect_opts(&d, &sg, &dg, true);
	dt_dirty(&sg, dirty);
	for (unsigned r = 0; r < 2; r++) {
		dirty[r].skip = skip[r];
		dirty[r].skip_words = 1;
	}
	/* The first pass records what landed; the second compares with it. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	clear_dirty(&sg);
	*page_word(&sg, 0, 3) += 1;
	set_page(&sg, 0, 3);
	b.word = page_word(&sg, 0, 3);
	atomic_store(&b.times, 1);
	rdmig__src_set_scan_hook(src, bump_hook, &b);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	assert_int_equal(st.mismatch_pending, 1);

	/* Into the balloon, not dirty: not taken up, no longer mismatched. */
	skip[0][0] = 1ull << 3;
	clear_dirty(&sg);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
	assert_int_equal(st.mismatch_pending, 0);
	assert_int_equal(st.written_pages + st.scanned_pages + st.resent_pages, 0);
	/* Out of it without a dirty bit: refused, as for any ballooned page. */
	skip[0][0] = 0;
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), -EINVAL);
	if (!strstr(rdmig_last_error(), "page 3 of region 0 left the skip set"))
		fail_msg("the refusal does not name the page: %s", rdmig_last_error());
	*page_word(&sg, 0, 3) += 1;
	set_page(&sg, 0, 3);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
	assert_int_equal(st.written_pages, 1);
	finish_exact(src, &d, &sg, &dg);
}

/*
 * Dirty lists take mismatched pages up as bitmaps do: a page changed after
 * its scan in a pre-copy pass over a list is looked at again in the next
 * pass, over an empty list; in a final pass over a list, within the pass.
 */
static void lists_mismatch_taken_up_precopy_and_final(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct bump b = { .region = 0, .page = 33 };
	struct rdmig_dirty_list l[2];
	uint64_t pages[10];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	two_regions(&sg, &dg, 300, 12);
	/* Every pre-copy pass hashes what it compares, whatever the rates the
	 * policy would go by: the mismatch must be seen in pass 2. */
	setenv("RDMIG_SKIP_POLICY", "always", 1);
	src = connect_opts(&d, &sg, &dg, true);
	unsetenv("RDMIG_SKIP_POLICY");
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);

	for (uint64_t p = 30; p < 40; p++) {
		page_word(&sg, 0, p)[7] += 1;
		pages[p - 30] = 69 - p; /* backwards: 39 down to 30 */
	}
	l[0] = (struct rdmig_dirty_list){ .pages = pages, .count = 10 };
	l[1] = (struct rdmig_dirty_list){ 0 };
	b.word = page_word(&sg, 0, 33);
	atomic_store(&b.times, 1);
	rdmig__src_set_scan_hook(src, bump_hook, &b);
	assert_int_equal(rdmig_src_pass_list(src, l, 2, 0, &st), 0);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	assert_int_equal(atomic_load(&b.fired), 1);
	assert_int_equal(st.dirty_pages, 10);
	assert_int_equal(st.mismatched_pages, 1);
	assert_int_equal(st.mismatch_pending, 1);

	/* Nothing listed, yet the page is taken up again: scanned, and left
	 * since the destination holds what it is now (the NIC read it after
	 * the change). */
	l[0].count = 0;
	assert_int_equal(rdmig_src_pass_list(src, l, 2, 0, &st), 0);
	assert_int_equal(st.scanned_pages, 1);
	assert_int_equal(st.skipped_unchanged, 1);
	assert_int_equal(st.mismatch_pending, 0);

	/* A final pass over a list: the mismatch is dealt with in the pass. */
	for (uint64_t p = 50; p < 60; p++) {
		page_word(&sg, 1, p)[7] += 1;
		pages[p - 50] = p;
	}
	l[1] = (struct rdmig_dirty_list){ .pages = pages, .count = 10 };
	b.region = 1;
	b.page = 55;
	b.word = page_word(&sg, 1, 55);
	atomic_store(&b.fired, 0);
	atomic_store(&b.times, 1);
	rdmig__src_set_scan_hook(src, bump_hook, &b);
	assert_int_equal(rdmig_src_pass_list(src, l, 2, RDMIG_PASS_FINAL, &st), 0);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	assert_int_equal(atomic_load(&b.fired), 1);
	assert_int_equal(st.dirty_pages, 10);
	assert_int_equal(st.mismatched_pages, 1);
	assert_int_equal(st.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

/* --- (b) a final pass sends a mismatched page again within the pass --------- */

/*
 * Ten pages changed while the guest ran; it is paused now. One of them
 * changes after its scan (something the source's hash did not see): it
 * mismatches, and the pass's second round finds the destination holding
 * what the page now is (the NIC read it after the change), so leaves it.
 * Over loopback another one is torn in the NIC's read: it mismatches, and
 * is written again within the pass.
 */
static void final_pass_mismatch_resent_within_pass(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct bump b = { .region = 0, .page = 33 };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct tear t = { 0 };
	struct dt_dst d;
	uint64_t lb = dt_loopback();

	(void)state;
	two_regions(&sg, &dg, 300, 12);
	src = connect_opts(&d, &sg, &dg, true);
	dt_dirty(&sg, dirty);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	assert_int_equal(st.mismatched_pages, 0);

	clear_dirty(&sg);
	for (uint64_t p = 30; p < 40; p++) {
		page_word(&sg, 0, p)[7] += 1;
		set_page(&sg, 0, p);
	}
	b.word = page_word(&sg, 0, 33);
	atomic_store(&b.times, 1);
	rdmig__src_set_scan_hook(src, bump_hook, &b);
	if (lb) {
		page_word(&sg, 1, 250)[7] += 1;
		set_page(&sg, 1, 250);
		tear_arm(&t, &sg, 1, 250);
	}
	assert_int_equal(rdmig_src_pass(src, dirty, 2, RDMIG_PASS_FINAL, &st), 0);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	rdmig__loopback_set_read_hook(NULL, NULL);
	assert_int_equal(atomic_load(&b.fired), 1);
	assert_int_equal(atomic_load(&t.fired), lb);
	assert_int_equal(st.pass, 2); /* one pass, of two rounds */
	assert_int_equal(st.dirty_pages, 10 + lb);
	assert_int_equal(st.mismatched_pages, 1 + lb);
	assert_int_equal(st.resent_pages, lb);
	assert_int_equal(st.written_pages, 10 + 2 * lb);
	assert_int_equal(st.skipped_unchanged, 1);
	assert_int_equal(st.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

/* --- (c) a page that mismatches every time: complete fails, naming it -------- */

/*
 * Over loopback: every NIC read of the page is torn (a word of the half
 * already copied and one of the half still to copy change), so no copy of
 * it ever lands as scanned: the final pass's second round mismatches too,
 * and complete refuses with -EIO naming it; the session stays usable, and
 * once the reads are whole a final pass repairs it.
 */
struct tear_always {
	const uint8_t *page;
	uint64_t *first, *second;
	atomic_int fired;
};

static void tear_always_hook(void *arg, const uint8_t *src, uint64_t len, uint64_t off)
{
	struct tear_always *t = arg;

	(void)len;
	if (src + off == t->page + DT_PAGE / 2) {
		*t->first += 1;
		*t->second += 1;
		atomic_fetch_add(&t->fired, 1);
	}
}

static void final_pass_page_keeps_mismatching_complete_eio(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct tear_always t = { 0 };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	if (!dt_loopback())
		skip();
	two_regions(&sg, &dg, 64, 13);
	src = connect_opts(&d, &sg, &dg, true);
	dt_dirty(&sg, dirty);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);

	clear_dirty(&sg);
	page_word(&sg, 1, 5)[7] += 1;
	set_page(&sg, 1, 5);
	set_page(&sg, 0, 6);
	t.page = sg.hva[1] + 5 * DT_PAGE;
	t.first = page_word(&sg, 1, 5) + 10;
	t.second = page_word(&sg, 1, 5) + 300;
	rdmig__loopback_set_read_hook(tear_always_hook, &t);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, RDMIG_PASS_FINAL, &st), 0);
	rdmig__loopback_set_read_hook(NULL, NULL);
	assert_int_equal(atomic_load(&t.fired), 2); /* the first round and the second */
	assert_int_equal(st.mismatched_pages, 2);
	assert_int_equal(st.resent_pages, 1);
	assert_int_equal(st.mismatch_pending, 1);

	assert_int_equal(rdmig_src_complete(src), -EIO);
	if (!strstr(rdmig_last_error(), "page 5 of region 1 (gpa 0x100005000)"))
		fail_msg("the refusal does not name the page: %s", rdmig_last_error());
	/* The session stays usable: refused again, then repaired; and the
	 * refusals did not close discards (a balloon may go on reporting). */
	assert_int_equal(rdmig_src_complete(src), -EIO);
	assert_int_equal(rdmig_src_discard(src, 1, 5 * DT_PAGE, DT_PAGE), 0);
	clear_dirty(&sg);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, RDMIG_PASS_FINAL, &st), 0);
	assert_int_equal(st.written_pages, 1);
	assert_int_equal(st.resent_pages, 1);
	assert_int_equal(st.mismatched_pages, 0);
	assert_int_equal(st.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

/*
 * Over either transport, with skipping off (nothing is ever skipped, so
 * every round writes it): the page changes after every scan, before the
 * NIC reads it. Complete refuses; a source that gives up then is seen to
 * go by the destination.
 */
static void final_pass_mismatch_abandoned_destination_fails(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct bump b = { .region = 0, .page = 0 };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	two_regions(&sg, &dg, 16, 14);
	src = connect_opts(&d, &sg, &dg, false);
	b.word = page_word(&sg, 0, 0);
	atomic_store(&b.times, -1);
	rdmig__src_set_scan_hook(src, bump_hook, &b);
	/* A stop-and-copy: the first pass is the final one. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL | RDMIG_PASS_FINAL, &st), 0);
	assert_int_equal(atomic_load(&b.fired), 2);
	assert_int_equal(st.mismatched_pages, 2);
	assert_int_equal(st.mismatch_pending, 1);
	assert_int_equal(rdmig_src_complete(src), -EIO);
	if (!strstr(rdmig_last_error(), "page 0 of region 0 (gpa 0x0)"))
		fail_msg("the refusal does not name the page: %s", rdmig_last_error());
	rdmig_src_destroy(src);
	assert_int_equal(dt_dst_join(&d), -ECONNRESET);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * Skipping off, so a plain pass verifies nothing, except a page it takes
 * up because its copy mismatched: that one is hashed at both ends (NOTICEs
 * flow for it), and the pair agrees again.
 */
static void switches_off_plain_pass_repairs_and_verifies_mismatch(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct bump b = { .region = 1, .page = 9 };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	two_regions(&sg, &dg, 32, 19);
	src = connect_opts(&d, &sg, &dg, false);
	dt_dirty(&sg, dirty);
	b.word = page_word(&sg, 1, 9);
	atomic_store(&b.times, -1);
	rdmig__src_set_scan_hook(src, bump_hook, &b);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL | RDMIG_PASS_FINAL, &st), 0);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	assert_int_equal(st.mismatch_pending, 1);
	assert_int_equal(rdmig_src_complete(src), -EIO);

	clear_dirty(&sg);
	set_page(&sg, 0, 1);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, 0, &st), 0);
	assert_int_equal(st.written_pages, 2);
	assert_int_equal(st.scanned_pages, 1); /* the mismatched page alone */
	assert_int_equal(st.resent_pages, 1);
	assert_int_equal(st.mismatched_pages, 0);
	assert_int_equal(st.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

/* --- (d) skipping off: the final pass still verifies ------------------------- */

static void switches_off_final_pass_verifies(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct bump b = { .region = 1, .page = 60 };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	two_regions(&sg, &dg, 64, 15);
	memset(sg.hva[0], 0, 8 * DT_PAGE); /* zero pages are written too */
	src = connect_opts(&d, &sg, &dg, false);
	dt_dirty(&sg, dirty);
	/* Pre-copy with skipping off scans nothing, verifies nothing. */
	b.word = page_word(&sg, 1, 60);
	atomic_store(&b.times, 1);
	rdmig__src_set_scan_hook(src, bump_hook, &b);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	assert_int_equal(st.scanned_pages, 0);
	assert_int_equal(st.mismatched_pages, 0);
	assert_int_equal(atomic_load(&b.fired), 1);

	/* The final pass hashes every page it writes, at both ends. */
	clear_dirty(&sg);
	for (uint64_t p = 0; p < 12; p++)
		set_page(&sg, 0, p); /* 8 zero, 4 data */
	set_page(&sg, 1, 60);
	atomic_store(&b.times, 1);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, RDMIG_PASS_FINAL, &st), 0);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	assert_int_equal(atomic_load(&b.fired), 2);
	assert_int_equal(st.dirty_pages, 13);
	assert_int_equal(st.scanned_pages, 14);
	assert_int_equal(st.written_pages, 14);
	assert_int_equal(st.skipped_zero + st.skipped_unchanged + st.zero_filled_pages, 0);
	assert_int_equal(st.mismatched_pages, 1);
	assert_int_equal(st.resent_pages, 1);
	assert_int_equal(st.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

/* Skipping off and a page torn in mid-read of the final pass (loopback). */
static void switches_off_final_pass_torn_read_resent(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct tear t = { 0 };
	struct dt_dst d;

	(void)state;
	if (!dt_loopback())
		skip();
	two_regions(&sg, &dg, 64, 16);
	src = connect_opts(&d, &sg, &dg, false);
	dt_dirty(&sg, dirty);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	clear_dirty(&sg);
	for (uint64_t p = 0; p < 64; p += 2) {
		page_word(&sg, 0, p)[3] += 1;
		set_page(&sg, 0, p);
	}
	tear_arm(&t, &sg, 0, 40);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, RDMIG_PASS_FINAL, &st), 0);
	rdmig__loopback_set_read_hook(NULL, NULL);
	assert_int_equal(atomic_load(&t.fired), 1);
	assert_int_equal(st.written_pages, 33);
	assert_int_equal(st.mismatched_pages, 1);
	assert_int_equal(st.resent_pages, 1);
	assert_int_equal(st.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

/* Nothing goes wrong: a final pass changes nothing but the cost. */
static void final_pass_clean_counts_nothing(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	two_regions(&sg, &dg, 600, 17);
	src = connect_opts(&d, &sg, &dg, true);
	dt_dirty(&sg, dirty);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	clear_dirty(&sg);
	for (uint64_t p = 0; p < 600; p += 3) {
		page_word(&sg, 1, p)[0] += 1;
		set_page(&sg, 1, p);
	}
	assert_int_equal(rdmig_src_pass(src, dirty, 2, RDMIG_PASS_FINAL, &st), 0);
	assert_int_equal(st.written_pages, 200);
	assert_int_equal(st.dirty_pages, 200);
	assert_int_equal(st.mismatched_pages + st.resent_pages + st.mismatch_pending, 0);
	finish_exact(src, &d, &sg, &dg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(precopy_mismatch_resent_next_pass_without_dirty_bit),
		cmocka_unit_test(mismatched_then_ballooned_must_be_dirty_to_leave),
		cmocka_unit_test(final_pass_mismatch_resent_within_pass),
		cmocka_unit_test(lists_mismatch_taken_up_precopy_and_final),
		cmocka_unit_test(final_pass_page_keeps_mismatching_complete_eio),
		cmocka_unit_test(final_pass_mismatch_abandoned_destination_fails),
		cmocka_unit_test(switches_off_plain_pass_repairs_and_verifies_mismatch),
		cmocka_unit_test(switches_off_final_pass_verifies),
		cmocka_unit_test(switches_off_final_pass_torn_read_resent),
		cmocka_unit_test(final_pass_clean_counts_nothing),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
