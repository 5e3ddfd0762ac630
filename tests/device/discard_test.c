/* SPDX-License-Identifier: MIT */
/*
 * Discards at the source (rdmig_src_discard()) over real verbs, or over the
 * loopback transport with RDMIG_TRANSPORT=loopback.
 *
 * A NIC reads the frames an MR pinned, so after MADV_DONTNEED on a
 * registered page and a new write, a pass that is not told sends the old
 * frame: the first test shows that over rxe (the loopback NIC reads through
 * the mapping and cannot show it, so that run skips it, saying so). The
 * others show that with the call the image is exact: a discarded page
 * rewritten before the pass, one still a hole at the pass and written after
 * it (its MR is pinned to the zero page then: the pagemap watch), a page
 * that was a hole at connect, discards from another thread while passes
 * run, a discard inside a pass, and bad input on a live session.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "ctrl/hooks.h"
#include "device/devtest.h"

static const char *ip;

static void clear_dirty(struct dt_guest *g)
{
	for (unsigned i = 0; i < g->n; i++)
		memset(g->bitmap[i], 0, (g->len[i] / DT_PAGE + 63) / 64 * sizeof(uint64_t));
}

static void set_dirty(struct dt_guest *g, unsigned r, uint64_t p)
{
	g->bitmap[r][p / 64] |= 1ull << (p % 64);
}

static uint8_t *page_at(const struct dt_guest *g, unsigned r, uint64_t p)
{
	return g->hva[r] + p * DT_PAGE;
}

static void fill_page(uint8_t *page, uint64_t seed)
{
	for (uint64_t k = 0; k < DT_PAGE / 8; k++)
		((uint64_t *)(void *)page)[k] = dt_rng(&seed) | 1; /* never all zero */
}

static void assert_same(const struct dt_guest *a, const struct dt_guest *b)
{
	unsigned region;
	int64_t page = dt_guest_diff(a, b, &region);

	if (page >= 0)
		fail_msg("page %lld of region %u differs", (long long)page, region);
}

/* The guest drops page p (as a balloon does) and gets a fresh frame later. */
static void discard_page(struct dt_guest *g, unsigned r, uint64_t p)
{
	assert_int_equal(madvise(page_at(g, r, p), DT_PAGE, MADV_DONTNEED), 0);
}

/*
 * One region of `pages` random pages at gpa 0, MRs of `seg_pages` pages,
 * the pages holes[0..nholes) discarded before connect registers them.
 */
static struct rdmig_src *setup_holes(struct dt_guest *sg, struct dt_guest *dg, struct dt_dst *d,
				     uint64_t pages, uint64_t seg_pages, uint64_t seed,
				     const uint64_t *holes, unsigned nholes)
{
	const uint64_t gpa[1] = { 0 }, len[1] = { pages * DT_PAGE };
	struct rdmig_opts o;
	struct rdmig_src *src;

	dt_guest_init(sg, 1, gpa, len);
	dt_guest_init(dg, 1, gpa, len);
	dt_guest_fill(sg, &seed);
	for (unsigned i = 0; i < nholes; i++)
		discard_page(sg, 0, holes[i]);
	dt_dst_start(d, ip, dg, RDMIG_REGION_ZERO_FILLED, NULL);
	rdmig_opts_init(&o);
	o.chunk_pages = 16; /* segments are whole chunks: small ones for small guests */
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	assert_int_equal(rdmig_src_add_region(src, 0, sg->hva[0], len[0]), 0);
	rdmig__src_set_mr_segment(src, seg_pages * DT_PAGE);
	if (rdmig_src_connect(src, ip, d->port))
		fail_msg("connect: %s", rdmig_last_error());
	return src;
}

static struct rdmig_src *setup(struct dt_guest *sg, struct dt_guest *dg, struct dt_dst *d,
			       uint64_t pages, uint64_t seg_pages, uint64_t seed)
{
	return setup_holes(sg, dg, d, pages, seg_pages, seed, NULL, 0);
}

static void pass_all(struct rdmig_src *src)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };

	if (rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st))
		fail_msg("pass: %s", rdmig_last_error());
}

static void pass_dirty(struct rdmig_src *src, struct dt_guest *g, struct rdmig_pass_stats *st)
{
	struct rdmig_dirty dirty[DT_MAX_REGIONS];

	dt_dirty(g, dirty);
	if (rdmig_src_pass(src, dirty, g->n, 0, st))
		fail_msg("pass: %s", rdmig_last_error());
}

static void finish(struct rdmig_src *src, struct dt_dst *d)
{
	if (rdmig_src_complete(src))
		fail_msg("complete: %s", rdmig_last_error());
	if (dt_dst_join(d))
		fail_msg("destination: %s", d->err);
	rdmig_src_destroy(src);
}

static struct rdmig__discard_counts counts(struct rdmig_src *src)
{
	struct rdmig__discard_counts c;

	rdmig__src_discard_counts(src, &c);
	return c;
}

/*
 * The stale frame: MADV_DONTNEED on a registered page, new content, the
 * page dirty, a pass, and no rdmig_src_discard(). The NIC reads the frame
 * the MR pinned at connect, so the destination ends with the page's old
 * content. Without verification the migration would "complete"; with it,
 * the destination's hash of what landed differs from the source's scan and
 * complete refuses with -EIO naming the page. The call below is what
 * prevents the stale frame in the first place.
 */
static void stale_frame_without_discard_caught_by_verification(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	uint8_t old[DT_PAGE], now[DT_PAGE];
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	if (dt_loopback()) {
		printf("loopback: its NIC reads through the mapping, not pinned frames, so it "
		       "cannot show a stale frame; over rxe this case runs\n");
		skip();
	}
	src = setup(&sg, &dg, &d, 64, 32, 11);
	pass_all(src);
	memcpy(old, page_at(&sg, 0, 9), DT_PAGE);
	discard_page(&sg, 0, 9);
	fill_page(page_at(&sg, 0, 9), 99);
	memcpy(now, page_at(&sg, 0, 9), DT_PAGE);
	clear_dirty(&sg);
	set_dirty(&sg, 0, 9);
	pass_dirty(src, &sg, &st);
	assert_int_equal(st.written_pages, 1);
	/* The NIC read the old frame, the scan the new content: verification
	 * sees the destination's hash differ from the source's. */
	assert_int_equal(st.mismatched_pages, 1);
	assert_int_equal(rdmig_src_complete(src), -EIO);
	assert_non_null(strstr(rdmig_last_error(), "page 9 of region 0"));
	assert_memory_equal(page_at(&dg, 0, 9), old, DT_PAGE);
	assert_memory_not_equal(page_at(&dg, 0, 9), now, DT_PAGE);
	printf("without rdmig_src_discard the destination holds the old frame of page 9, "
	       "and complete refuses: %s\n",
	       rdmig_last_error());
	rdmig_src_destroy(src);
	assert_true(dt_dst_join(&d) < 0);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * The same with the call: the segment holding the page (and only that
 * one) is registered again, the old MR dropped, and the image is exact.
 */
static void discard_rewritten_page_image_exact(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;
	int mrs;

	(void)state;
	src = setup(&sg, &dg, &d, 256, 32, 12); /* 8 segments */
	assert_int_equal(counts(src).segments, 8);
	pass_all(src);
	mrs = dt_mr_count(getpid());
	discard_page(&sg, 0, 9);
	fill_page(page_at(&sg, 0, 9), 98);
	discard_page(&sg, 0, 200);
	fill_page(page_at(&sg, 0, 200), 97);
	clear_dirty(&sg);
	set_dirty(&sg, 0, 9);
	set_dirty(&sg, 0, 200);
	assert_int_equal(rdmig_src_discard(src, 0, 9 * DT_PAGE, DT_PAGE), 0);
	assert_int_equal(rdmig_src_discard(src, 0, 200 * DT_PAGE, DT_PAGE), 0);
	pass_dirty(src, &sg, &st);
	assert_int_equal(st.written_pages, 2);
	assert_int_equal(counts(src).refreshes, 2); /* segments 0 and 6 */
	assert_int_equal(counts(src).refresh_bytes, 2 * 32 * DT_PAGE);
	assert_int_equal(dt_mr_count(getpid()), mrs); /* the old MRs are gone */
	/* They had frames of their own at the pin: settled, nothing more. */
	assert_int_equal(counts(src).unsettled, 0);
	set_dirty(&sg, 0, 10);
	pass_dirty(src, &sg, &st);
	assert_int_equal(counts(src).refreshes, 2);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * Discarded without being dirty in the VMM's log: the pass sends it anyway
 * (a zero page now, so a zero-fill) and forgets the destination's hash.
 */
static void discard_counts_as_dirty_and_unknown(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	src = setup(&sg, &dg, &d, 64, 32, 13);
	pass_all(src);
	discard_page(&sg, 0, 3); /* reads as zero now */
	clear_dirty(&sg);
	assert_int_equal(rdmig_src_discard(src, 0, 3 * DT_PAGE, DT_PAGE), 0);
	pass_dirty(src, &sg, &st);
	assert_int_equal(st.dirty_pages, 1);
	assert_int_equal(st.zero_filled_pages, 1);
	/* A page rewritten with its old bytes after a discard is sent again:
	 * its destination hash is not trusted across the discard. */
	pass_dirty(src, &sg, &st); /* nothing dirty */
	assert_int_equal(st.dirty_pages, 0);
	fill_page(page_at(&sg, 0, 5), 5);
	set_dirty(&sg, 0, 5);
	pass_dirty(src, &sg, &st);
	assert_int_equal(st.written_pages, 1);
	{
		uint8_t keep[DT_PAGE];

		memcpy(keep, page_at(&sg, 0, 5), DT_PAGE);
		discard_page(&sg, 0, 5);
		memcpy(page_at(&sg, 0, 5), keep, DT_PAGE);
	}
	assert_int_equal(rdmig_src_discard(src, 0, 5 * DT_PAGE, DT_PAGE), 0);
	pass_dirty(src, &sg, &st); /* page 5 still dirty in the log too */
	assert_int_equal(st.skipped_unchanged, 0);
	assert_int_equal(st.written_pages, 1);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * A page discarded and still a hole when the pass registers its segment
 * again: the pin takes the zero page, and the guest's later write moves the
 * page to a new frame. The next pass that sends it sees (pagemap) that it
 * has a frame of its own and registers the segment once more: exact, where
 * a single re-registration would leave zeros at the destination.
 */
static void discard_hole_written_after_pass_image_exact(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	src = setup(&sg, &dg, &d, 128, 32, 14);
	pass_all(src);
	discard_page(&sg, 0, 40);
	clear_dirty(&sg);
	assert_int_equal(rdmig_src_discard(src, 0, 40 * DT_PAGE, DT_PAGE), 0);
	pass_dirty(src, &sg, &st);
	assert_int_equal(counts(src).refreshes, 1);
	assert_int_equal(counts(src).unsettled, 1);
	/* Not dirty: not looked at, nothing registered. */
	pass_dirty(src, &sg, &st);
	assert_int_equal(counts(src).refreshes, 1);

	fill_page(page_at(&sg, 0, 40), 40);
	set_dirty(&sg, 0, 40);
	pass_dirty(src, &sg, &st);
	assert_int_equal(st.written_pages, 1);
	assert_int_equal(counts(src).refreshes, 2);
	assert_int_equal(counts(src).unsettled, 0);
	/* Settled: written again, nothing more to register. */
	fill_page(page_at(&sg, 0, 40), 41);
	pass_dirty(src, &sg, &st);
	assert_int_equal(counts(src).refreshes, 2);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * The same pitfall without any discard: a page that is a hole when connect
 * registers the guest is unsettled from the start. What a read-only pin
 * does with a hole depends on the kernel: Linux 6.1 (rxe's VM) gives it a
 * fresh frame of its own (seen through pagemap), so the first pass finds
 * both holes settled-looking and registers their segments once more; a
 * kernel that pins the shared zero page instead leaves them holes, and the
 * first write to one must make the next pass register its segment again.
 * Either way the image ends exact.
 */
static void hole_at_connect_written_later_image_exact(void **state)
{
	static const uint64_t holes[2] = { 17, 50 };
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	uint64_t at_first;
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	src = setup_holes(&sg, &dg, &d, 64, 32, 15, holes, 2);
	assert_int_equal(counts(src).unsettled, 2);
	pass_all(src);
	at_first = counts(src).refreshes;
	printf("after the first pass: %llu MRs registered again (%s)\n",
	       (unsigned long long)at_first,
	       at_first ? "the pin gave the holes frames" : "the holes are still holes");
	assert_true(at_first == 0 || at_first == 2); /* pages 17 and 50: two segments */
	fill_page(page_at(&sg, 0, 17), 17);
	clear_dirty(&sg);
	set_dirty(&sg, 0, 17);
	pass_dirty(src, &sg, &st);
	/* Page 17 is settled now, by one registration or the other. */
	assert_int_equal(counts(src).refreshes, at_first ? 2 : 1);
	assert_int_equal(counts(src).unsettled, at_first ? 0 : 1);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- a discard while a pass runs ------------------------------------------- */

struct in_pass {
	struct rdmig_src *src;
	struct dt_guest *g;
	uint64_t page;
	atomic_int fired;
};

/*
 * In a worker, after the block holding the page was scanned and before
 * its WRITEs go: the guest drops the page, writes it anew and the VMM
 * reports the discard (from this thread: any thread may).
 */
static void in_pass_hook(void *arg, unsigned region, uint64_t first, uint32_t npages)
{
	struct in_pass *ip_ = arg;

	if (region || ip_->page < first || ip_->page >= first + npages ||
	    atomic_exchange(&ip_->fired, 1))
		return;
	madvise(page_at(ip_->g, 0, ip_->page), DT_PAGE, MADV_DONTNEED);
	fill_page(page_at(ip_->g, 0, ip_->page), 77);
	if (rdmig_src_discard(ip_->src, 0, ip_->page * DT_PAGE, DT_PAGE))
		atomic_store(&ip_->fired, 2);
}

/*
 * It applies to the next pass, not to the one running: complete is
 * refused until a pass has taken it, the session goes on, and the next
 * pass (nothing dirty in the VMM's log) makes the image exact.
 */
static void discard_during_pass_applies_to_next_pass(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct in_pass h;
	struct dt_dst d;
	int ret;

	(void)state;
	src = setup(&sg, &dg, &d, 64, 32, 16);
	h = (struct in_pass){ .src = src, .g = &sg, .page = 21 };
	rdmig__src_set_scan_hook(src, in_pass_hook, &h);
	pass_all(src);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	assert_int_equal(atomic_load(&h.fired), 1);
	assert_int_equal(counts(src).refreshes, 0);

	/* Refused for both reasons the page has: rewritten after its scan (a
	 * mismatch, -EIO, which complete checks first) and discarded after
	 * the pass (-EINVAL, over a transport whose reads see the new
	 * mapping only when nothing mismatched). */
	ret = rdmig_src_complete(src);
	if ((ret != -EIO && ret != -EINVAL) || !strstr(rdmig_last_error(), "page 21 of region 0"))
		fail_msg("complete returned %d: %s", ret, rdmig_last_error());
	clear_dirty(&sg);
	pass_dirty(src, &sg, &st);
	assert_int_equal(st.dirty_pages, 1);
	assert_int_equal(st.written_pages, 1);
	assert_int_equal(counts(src).refreshes, 1);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- a balloon thread ------------------------------------------------------ */

struct balloon {
	struct rdmig_src *src;
	struct dt_guest *g;
	atomic_int stop;
	atomic_int done; /* discards reported */
	int err;
	uint64_t seed;
};

/* Drops random runs of pages, writes them anew, reports them; no waiting. */
static void *balloon_main(void *arg)
{
	struct balloon *b = arg;
	uint64_t pages = b->g->len[0] / DT_PAGE;

	while (!atomic_load(&b->stop) || atomic_load(&b->done) < 50) {
		uint64_t p = dt_rng(&b->seed) % pages, n = 1 + dt_rng(&b->seed) % 4;

		n = RDMIG__MIN(n, pages - p);
		madvise(page_at(b->g, 0, p), n * DT_PAGE, MADV_DONTNEED);
		for (uint64_t k = 0; k < n; k++)
			if (dt_rng(&b->seed) % 2) /* the others stay holes (zero) */
				fill_page(page_at(b->g, 0, p + k), dt_rng(&b->seed));
		if ((b->err = rdmig_src_discard(b->src, 0, p * DT_PAGE, n * DT_PAGE)))
			return NULL;
		atomic_fetch_add(&b->done, 1);
		usleep(200);
	}
	return NULL;
}

static void balloon_thread_while_passes_run_image_exact(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct balloon b;
	struct dt_dst d;
	pthread_t t;

	(void)state;
	src = setup(&sg, &dg, &d, 512, 64, 17);
	b = (struct balloon){ .src = src, .g = &sg, .seed = 18 };
	pass_all(src);
	assert_int_equal(pthread_create(&t, NULL, balloon_main, &b), 0);
	for (int i = 0; i < 6; i++) {
		clear_dirty(&sg);
		pass_dirty(src, &sg, &st);
	}
	atomic_store(&b.stop, 1);
	pthread_join(t, NULL);
	if (b.err)
		fail_msg("discard from the balloon thread: %d", b.err);
	/* The final pass after the last discard: no write since, no log. */
	clear_dirty(&sg);
	pass_dirty(src, &sg, &st);
	printf("%d discards, %llu MRs registered again\n", atomic_load(&b.done),
	       (unsigned long long)counts(src).refreshes);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- bad input on a live session ----------------------------------------- */

static void discard_bad_input_session_unharmed(void **state)
{
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;
	uint64_t rlen = 64 * DT_PAGE;

	(void)state;
	src = setup(&sg, &dg, &d, 64, 32, 19);
	pass_all(src);
	assert_int_equal(rdmig_src_discard(NULL, 0, 0, DT_PAGE), -EINVAL);
	assert_int_equal(rdmig_src_discard(src, 1, 0, DT_PAGE), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "region 1 does not exist (1 regions)"));
	assert_int_equal(rdmig_src_discard(src, 0, 100, DT_PAGE), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "offset 0x64"));
	assert_int_equal(rdmig_src_discard(src, 0, 0, 100), -EINVAL);
	assert_int_equal(rdmig_src_discard(src, 0, 0, 0), -EINVAL);
	assert_int_equal(rdmig_src_discard(src, 0, rlen, DT_PAGE), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "past the region (0x40000 bytes)"));
	assert_int_equal(rdmig_src_discard(src, 0, rlen - DT_PAGE, 2 * DT_PAGE), -EINVAL);
	assert_int_equal(rdmig_src_discard(src, 0, DT_PAGE, UINT64_MAX - DT_PAGE + 1), -EINVAL);
	/* Nothing recorded: complete is not refused, and the image is exact. */
	assert_int_equal(counts(src).refreshes, 0);
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* After completion a discard is refused: nothing is left to refresh. */
static void discard_after_complete_epipe(void **state)
{
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	src = setup(&sg, &dg, &d, 32, 32, 20);
	pass_all(src);
	assert_int_equal(rdmig_src_complete(src), 0);
	assert_int_equal(rdmig_src_discard(src, 0, 0, DT_PAGE), -EPIPE);
	assert_non_null(strstr(rdmig_last_error(), "ended"));
	assert_int_equal(dt_dst_join(&d), 0);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- what it costs --------------------------------------------------------- */

/*
 * Registering again a whole guest of 64 MiB in 16 MiB segments, once per
 * segment (a discarded page in each), and the time it took per GiB.
 */
static void refresh_cost_per_gib(void **state)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	const uint64_t pages = 16384, seg = 4096;
	struct rdmig__discard_counts c;
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;

	(void)state;
	src = setup(&sg, &dg, &d, pages, seg, 21);
	pass_all(src);
	clear_dirty(&sg);
	for (uint64_t s = 0; s < pages / seg; s++) {
		discard_page(&sg, 0, s * seg + 1);
		fill_page(page_at(&sg, 0, s * seg + 1), s);
		set_dirty(&sg, 0, s * seg + 1);
		assert_int_equal(rdmig_src_discard(src, 0, (s * seg + 1) * DT_PAGE, DT_PAGE), 0);
	}
	pass_dirty(src, &sg, &st);
	c = counts(src);
	assert_int_equal(c.refreshes, pages / seg);
	printf("registered again: %llu MRs, %llu MiB in %.1f ms: %.0f ms per GiB (%s)\n",
	       (unsigned long long)c.refreshes, (unsigned long long)(c.refresh_bytes >> 20),
	       (double)c.refresh_ns / 1e6,
	       (double)c.refresh_ns / 1e6 / ((double)c.refresh_bytes / (1ull << 30)),
	       dt_loopback() ? "loopback: no pinning, bookkeeping only" : "verbs");
	finish(src, &d);
	assert_same(&sg, &dg);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stale_frame_without_discard_caught_by_verification),
		cmocka_unit_test(discard_rewritten_page_image_exact),
		cmocka_unit_test(discard_counts_as_dirty_and_unknown),
		cmocka_unit_test(discard_hole_written_after_pass_image_exact),
		cmocka_unit_test(hole_at_connect_written_later_image_exact),
		cmocka_unit_test(discard_during_pass_applies_to_next_pass),
		cmocka_unit_test(balloon_thread_while_passes_run_image_exact),
		cmocka_unit_test(discard_bad_input_session_unharmed),
		cmocka_unit_test(discard_after_complete_epipe),
		cmocka_unit_test(refresh_cost_per_gib),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
