/* SPDX-License-Identifier: MIT */
/*
 * Progress and control while a pass runs, over real verbs (soft-RoCE in
 * CI) and over loopback: rdmig_src_progress() read from another thread
 * moves during a pass and ends equal to the pass's statistics; the
 * bandwidth cap holds the wire near its rate (roughly: the precise check
 * is perf/cap-report.sh); a pass in slices (rdmig_src_pass_budget(),
 * _resume()) lands exact, its slices' statistics add up, the VMM may
 * reuse its bitmaps while it is paused, a final pass and a discard stay
 * right across slices, and the destination's idle timeout does not fire
 * while the VMM does other work in between; a budget of zero and calls
 * out of turn are refused without harm.
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
#include <time.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "ctrl/hooks.h"
#include "device/devtest.h"

static const char *ip;

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts))
		;
}

static void complete_ok(struct rdmig_src *src, struct dt_dst *d)
{
	char why[512];

	if (!rdmig_src_complete(src))
		return;
	snprintf(why, sizeof(why), "%s", rdmig_last_error());
	dt_dst_join(d);
	fail_msg("complete: %s; destination: %s", why, d->err);
}

static void image_exact(const struct dt_guest *sg, const struct dt_guest *dg)
{
	unsigned region;
	int64_t page = dt_guest_diff(sg, dg, &region);

	if (page >= 0)
		fail_msg("page %lld of region %u differs after the migration", (long long)page,
			 region);
}

static struct rdmig_src *src_for(const struct dt_guest *g, const struct rdmig_opts *o)
{
	struct rdmig_src *src;

	assert_int_equal(rdmig_src_create(o, &src), 0);
	for (unsigned i = 0; i < g->n; i++)
		assert_int_equal(rdmig_src_add_region(src, g->gpa[i], g->hva[i], g->len[i]),
				 (int)i);
	return src;
}

/* Zeroes every 4th page: with a zero-filled destination, they are skipped. */
static void zero_some(struct dt_guest *g)
{
	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t p = 0; p < g->len[i] / DT_PAGE; p += 4)
			memset(g->hva[i] + p * DT_PAGE, 0, DT_PAGE);
}

/* --- progress --------------------------------------------------------------- */

/* A thread reading rdmig_src_progress() every millisecond. */
struct poller {
	struct rdmig_src *src;
	pthread_t thread;
	atomic_bool stop;
	uint64_t total;	      /* bytes the pass will write (to see "in between") */
	unsigned samples;     /* calls made */
	unsigned running_mid; /* samples: running, some but not all bytes written */
	unsigned paused;      /* samples in RDMIG_PROGRESS_PAUSED */
	unsigned errors;      /* failed calls */
	unsigned backwards;   /* a counter of the same pass went down */
	char why[256];
};

static void *poll_main(void *arg)
{
	struct poller *p = arg;
	struct rdmig_progress last = { 0 };

	while (!atomic_load(&p->stop)) {
		struct rdmig_progress pr = { .size = sizeof(pr) };

		if (rdmig_src_progress(p->src, &pr)) {
			p->errors++;
			snprintf(p->why, sizeof(p->why), "%s", rdmig_last_error());
		}
		p->samples++;
		if (pr.state == RDMIG_PROGRESS_RUNNING && pr.wire_bytes > 0 &&
		    pr.wire_bytes < p->total)
			p->running_mid++;
		p->paused += pr.state == RDMIG_PROGRESS_PAUSED;
		if (pr.pass == last.pass &&
		    (pr.dirty_pages < last.dirty_pages || pr.wire_bytes < last.wire_bytes ||
		     pr.written_pages < last.written_pages || pr.writes < last.writes ||
		     pr.skipped_pages < last.skipped_pages || pr.chunks_done < last.chunks_done ||
		     pr.total_wire_bytes < last.total_wire_bytes)) {
			p->backwards++;
			snprintf(p->why, sizeof(p->why),
				 "pass %llu: wire bytes %llu after %llu, dirty %llu after %llu",
				 (unsigned long long)pr.pass, (unsigned long long)pr.wire_bytes,
				 (unsigned long long)last.wire_bytes,
				 (unsigned long long)pr.dirty_pages,
				 (unsigned long long)last.dirty_pages);
		}
		last = pr;
		sleep_ms(1);
	}
	return NULL;
}

static void poller_start(struct poller *p, struct rdmig_src *src, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->src = src;
	p->total = total;
	assert_int_equal(pthread_create(&p->thread, NULL, poll_main, p), 0);
}

static void poller_stop(struct poller *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	if (p->errors || p->backwards)
		fail_msg("progress: %u failed calls, %u went backwards: %s", p->errors,
			 p->backwards, p->why);
}

/* The progress figures once a pass ended are its statistics, field for field. */
static void progress_equals(struct rdmig_src *src, const struct rdmig_pass_stats *st)
{
	struct rdmig_progress pr = { .size = sizeof(pr) };
	struct rdmig_pass_stats tot = { .size = sizeof(tot) };

	assert_int_equal(rdmig_src_progress(src, &pr), 0);
	assert_int_equal(rdmig_src_stats(src, &tot), 0);
	assert_int_equal(pr.state, RDMIG_PROGRESS_IDLE);
	assert_int_equal(pr.pass, st->pass);
	assert_int_equal(pr.dirty_pages, st->dirty_pages);
	assert_int_equal(pr.written_pages, st->written_pages);
	assert_int_equal(pr.wire_bytes, st->wire_bytes);
	assert_int_equal(pr.writes, st->writes);
	assert_int_equal(pr.skipped_pages,
			 st->skipped_zero + st->skipped_unchanged + st->skipped_ballooned);
	assert_int_equal(pr.zero_filled_pages, st->zero_filled_pages);
	assert_int_equal(pr.chunks_done, pr.chunks);
	assert_int_equal(pr.total_wire_bytes, tot.wire_bytes);
	assert_int_equal(pr.workers, st->workers);
}

/*
 * A 24 MiB guest, a quarter of it zero, under a cap of 16 MiB/s (a pass of
 * about a second and a half): a thread polling every millisecond sees the
 * pass running with some but not all of its bytes written, no counter
 * ever goes back, and once the pass ended the figures are its statistics.
 * Then a pass over a writer's dirty pages, the same. The wire rate stays
 * under the cap (generous slack: a burst and a WRITE per worker; the
 * precise check is a benchmark).
 */
static void progress_moves_during_pass_ends_equal_to_stats(void **state)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t len[2] = { 8ull << 20, (16ull << 20) + 3 * DT_PAGE };
	const uint64_t cap = 16ull << 20;
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_progress pr = { .size = sizeof(pr) };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct poller p;
	struct dt_dst d;
	uint64_t rng = 5;
	double rate;

	(void)state;
	dt_guest_init(&sg, 2, gpa, len);
	dt_guest_init(&dg, 2, gpa, len);
	dt_guest_fill(&sg, &rng);
	zero_some(&sg);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	rdmig_opts_init(&o);
	o.max_bandwidth = cap;
	o.workers = 2;
	src = src_for(&sg, &o);
	dt_dirty(&sg, dirty);

	/* Before connect: no pass, no workers; bad calls refused. */
	assert_int_equal(rdmig_src_progress(src, &pr), 0);
	assert_int_equal(pr.pass, 0);
	assert_int_equal(pr.state, RDMIG_PROGRESS_IDLE);
	assert_int_equal(rdmig_src_progress(NULL, &pr), -EINVAL);
	assert_int_equal(rdmig_src_progress(src, NULL), -EINVAL);
	pr.size = 0;
	assert_int_equal(rdmig_src_progress(src, &pr), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "progress->size"));

	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	poller_start(&p, src, dt_guest_bytes(&sg) * 3 / 4);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);
	poller_stop(&p);
	print_message("pass 1: %.2f s, %u samples, %u mid-pass; %.1f MiB/s against a cap of "
		      "%.1f\n",
		      st.duration_ns / 1e9, p.samples, p.running_mid,
		      st.wire_bytes / (st.duration_ns / 1e9) / (1 << 20), cap / (double)(1 << 20));
	assert_true(st.skipped_zero > 0);
	if (p.running_mid < 10)
		fail_msg("only %u of %u samples saw the pass under way", p.running_mid, p.samples);
	progress_equals(src, &st);
	rate = st.wire_bytes / (st.duration_ns / 1e9);
	if (rate > 1.3 * (double)cap)
		fail_msg("%.1f MiB/s on the wire, over the cap of %.1f MiB/s", rate / (1 << 20),
			 cap / (double)(1 << 20));
	if (dt_loopback() && rate < 0.5 * (double)cap)
		fail_msg("%.1f MiB/s on the wire, far under the cap of %.1f MiB/s",
			 rate / (1 << 20), cap / (double)(1 << 20));

	/* A pass over scattered dirty pages; the totals cover both passes. */
	dt_guest_write(&sg, 1500, &rng);
	poller_start(&p, src, UINT64_MAX);
	assert_int_equal(rdmig_src_pass(src, dirty, 2, RDMIG_PASS_FINAL, &st), 0);
	poller_stop(&p);
	assert_int_equal(st.pass, 2);
	progress_equals(src, &st);
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	image_exact(&sg, &dg);
	/* After completion the figures stay the last pass's. */
	progress_equals(src, &st);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* --- passes in slices -------------------------------------------------------- */

/* Adds a slice's statistics to *sum. */
static void add_stats(struct rdmig_pass_stats *sum, const struct rdmig_pass_stats *s)
{
	sum->dirty_pages += s->dirty_pages;
	sum->written_pages += s->written_pages;
	sum->wire_bytes += s->wire_bytes;
	sum->writes += s->writes;
	sum->duration_ns += s->duration_ns;
	sum->scanned_pages += s->scanned_pages;
	sum->skipped_zero += s->skipped_zero;
	sum->skipped_unchanged += s->skipped_unchanged;
	sum->skipped_ballooned += s->skipped_ballooned;
	sum->zero_filled_pages += s->zero_filled_pages;
	sum->scan_ns += s->scan_ns;
	sum->wire_ns += s->wire_ns;
	sum->mismatched_pages += s->mismatched_pages;
	sum->resent_pages += s->resent_pages;
}

/* The totals grew by exactly the slices' sums. */
static void totals_grew_by(const struct rdmig_pass_stats *before,
			   const struct rdmig_pass_stats *after, const struct rdmig_pass_stats *sum)
{
	assert_int_equal(after->pass, before->pass + 1);
	assert_int_equal(after->dirty_pages - before->dirty_pages, sum->dirty_pages);
	assert_int_equal(after->written_pages - before->written_pages, sum->written_pages);
	assert_int_equal(after->wire_bytes - before->wire_bytes, sum->wire_bytes);
	assert_int_equal(after->writes - before->writes, sum->writes);
	assert_int_equal(after->duration_ns - before->duration_ns, sum->duration_ns);
	assert_int_equal(after->scanned_pages - before->scanned_pages, sum->scanned_pages);
	assert_int_equal(after->skipped_zero - before->skipped_zero, sum->skipped_zero);
	assert_int_equal(after->skipped_unchanged - before->skipped_unchanged,
			 sum->skipped_unchanged);
	assert_int_equal(after->zero_filled_pages - before->zero_filled_pages,
			 sum->zero_filled_pages);
	assert_int_equal(after->scan_ns - before->scan_ns, sum->scan_ns);
	assert_int_equal(after->wire_ns - before->wire_ns, sum->wire_ns);
	assert_int_equal(after->mismatched_pages - before->mismatched_pages, sum->mismatched_pages);
	assert_int_equal(after->resent_pages - before->resent_pages, sum->resent_pages);
}

/*
 * Runs a pass in slices of `b` until it ends, `gap_ms` of "other work"
 * between them (during which `between`, if any, runs once, after the first
 * slice); returns the slices, their sums in *sum.
 */
static unsigned sliced_pass(struct rdmig_src *src, const struct rdmig_dirty *dirty, unsigned n,
			    unsigned flags, const struct rdmig_budget *b, unsigned gap_ms,
			    void (*between)(void *), void *arg, struct rdmig_pass_stats *sum)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_pass_stats tot0 = { .size = sizeof(tot0) }, tot1 = { .size = sizeof(tot1) };
	struct rdmig_progress pr = { .size = sizeof(pr) };
	unsigned slices = 1;
	int ret;

	memset(sum, 0, sizeof(*sum));
	assert_int_equal(rdmig_src_stats(src, &tot0), 0);
	ret = rdmig_src_pass_budget(src, dirty, n, flags, b, &st);
	for (;;) {
		if (ret < 0)
			fail_msg("slice %u: %d: %s", slices, ret, rdmig_last_error());
		assert_int_equal(st.pass, tot0.pass + 1);
		add_stats(sum, &st);
		if (ret == 0)
			break;
		assert_int_equal(ret, RDMIG_PASS_PAUSED);
		assert_int_equal(rdmig_src_progress(src, &pr), 0);
		assert_int_equal(pr.state, RDMIG_PROGRESS_PAUSED);
		assert_int_equal(pr.pass, tot0.pass + 1);
		assert_int_equal(pr.wire_bytes, sum->wire_bytes);
		assert_int_equal(pr.dirty_pages, sum->dirty_pages);
		/* The totals hold passes that ended only. */
		assert_int_equal(rdmig_src_stats(src, &tot1), 0);
		assert_int_equal(tot1.pass, tot0.pass);
		assert_int_equal(tot1.wire_bytes, tot0.wire_bytes);
		if (between && slices == 1)
			between(arg);
		if (gap_ms)
			sleep_ms(gap_ms);
		slices++;
		ret = rdmig_src_pass_resume(src, b, &st);
	}
	assert_int_equal(rdmig_src_stats(src, &tot1), 0);
	totals_grew_by(&tot0, &tot1, sum);
	progress_equals(src,
			&(struct rdmig_pass_stats){ .pass = tot1.pass,
						    .dirty_pages = sum->dirty_pages,
						    .written_pages = sum->written_pages,
						    .wire_bytes = sum->wire_bytes,
						    .writes = sum->writes,
						    .skipped_zero = sum->skipped_zero,
						    .skipped_unchanged = sum->skipped_unchanged,
						    .skipped_ballooned = sum->skipped_ballooned,
						    .zero_filled_pages = sum->zero_filled_pages,
						    .workers = tot1.workers });
	return slices;
}

/* While paused, the VMM syncs its next dirty log into the same bitmaps. */
struct reuse {
	struct dt_guest *g;
	uint64_t *rng;
	uint64_t next; /* pages dirty in the next log */
};

static void reuse_bitmaps(void *arg)
{
	struct reuse *r = arg;

	for (unsigned i = 0; i < r->g->n; i++)
		memset(r->g->bitmap[i], 0, (r->g->len[i] / DT_PAGE + 63) / 64 * 8);
	r->next = dt_guest_write(r->g, 300, r->rng);
}

/*
 * A 32 MiB guest migrated in slices: the first pass by 4 MiB of WRITEs a
 * call (at least 8 slices, each at most its budget and a chunk per
 * worker), a pre-copy pass by a millisecond a call under a cap, with the
 * VMM syncing its next dirty log into the same bitmaps while the pass is
 * paused (the pass still ends on the pages it began with; the next pass
 * sends the new ones), and a final pass in slices. The image is exact and
 * every pass's slices add up to what the totals took; the calls that may
 * not run while a pass is paused say -EBUSY and change nothing.
 */
static void budgeted_passes_split_land_exact_stats_add_up(void **state)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t len[2] = { (12ull << 20) + 5 * DT_PAGE, 20ull << 20 };
	const struct rdmig_budget bytes = { .size = sizeof(bytes), .wire_bytes = 4ull << 20 };
	const struct rdmig_budget ms = { .size = sizeof(ms), .time_ns = 1000000 };
	struct rdmig_pass_stats st = { .size = sizeof(st) }, sum;
	struct rdmig_estimate est = { .size = sizeof(est) };
	struct rdmig_dirty dirty[2];
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct reuse ru;
	struct dt_dst d;
	uint64_t rng = 77, want;
	unsigned slices;

	(void)state;
	dt_guest_init(&sg, 2, gpa, len);
	dt_guest_init(&dg, 2, gpa, len);
	dt_guest_fill(&sg, &rng);
	zero_some(&sg);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	rdmig_opts_init(&o);
	o.workers = 2;
	o.max_bandwidth = 64ull << 20;
	src = src_for(&sg, &o);
	dt_dirty(&sg, dirty);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);

	/* Pass 1 by bytes: a slice writes its budget and at most a chunk per
	 * worker beyond it. */
	assert_int_equal(rdmig_src_pass_budget(src, NULL, 0, RDMIG_PASS_ALL, &bytes, &st),
			 RDMIG_PASS_PAUSED);
	assert_true(st.wire_bytes >= bytes.wire_bytes);
	assert_true(st.wire_bytes <= bytes.wire_bytes + 2 * (1ull << 20));
	/* Paused: no other pass, no estimate, no complete; nothing changes. */
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), -EBUSY);
	assert_non_null(strstr(rdmig_last_error(), "rdmig_src_pass_resume"));
	assert_int_equal(rdmig_src_pass_budget(src, NULL, 0, RDMIG_PASS_ALL, &bytes, NULL), -EBUSY);
	assert_int_equal(rdmig_src_estimate(src, NULL, 0, 100, &est), -EBUSY);
	assert_int_equal(rdmig_src_complete(src), -EBUSY);
	{
		/* Device state goes after the pass, not in its middle. */
		static const uint8_t b[64] = { 1 };
		struct rdmig_blob blob = { .id = 7, .data = b, .len = sizeof(b) };

		assert_int_equal(rdmig_src_send_state(src, &blob, 1, NULL), -EBUSY);
	}
	sum = st;
	slices = 1;
	while ((want = (uint64_t)rdmig_src_pass_resume(src, &bytes, &st)) == RDMIG_PASS_PAUSED) {
		assert_true(st.wire_bytes <= bytes.wire_bytes + 2 * (1ull << 20));
		add_stats(&sum, &st);
		slices++;
	}
	assert_int_equal(want, 0);
	add_stats(&sum, &st);
	slices++;
	print_message("pass 1 in %u slices of 4 MiB\n", slices);
	assert_true(slices >= 4);
	assert_int_equal(sum.dirty_pages, dt_guest_bytes(&sg) / DT_PAGE);
	assert_int_equal(sum.written_pages + sum.skipped_zero, dt_guest_bytes(&sg) / DT_PAGE);
	assert_int_equal(sum.wire_bytes, sum.written_pages * DT_PAGE);
	assert_int_equal(rdmig_src_pass_resume(src, &bytes, NULL), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "no pass is paused"));

	/* Pass 2 by time, the bitmaps reused while paused. */
	want = dt_guest_write(&sg, 3000, &rng);
	ru = (struct reuse){ .g = &sg, .rng = &rng };
	slices = sliced_pass(src, dirty, 2, 0, &ms, 0, reuse_bitmaps, &ru, &sum);
	print_message("pass 2: %llu dirty pages in %u slices of 1 ms\n", (unsigned long long)want,
		      slices);
	assert_true(slices >= 2);
	assert_int_equal(sum.dirty_pages, want);

	/* Pass 3: the log synced meanwhile, in slices too. */
	slices = sliced_pass(src, dirty, 2, 0, &ms, 0, NULL, NULL, &sum);
	assert_int_equal(sum.dirty_pages, ru.next);

	/* The final pass, in slices, over a last change. */
	want = dt_guest_write(&sg, 2000, &rng);
	slices = sliced_pass(src, dirty, 2, RDMIG_PASS_FINAL, &ms, 0, NULL, NULL, &sum);
	assert_int_equal(sum.dirty_pages, want);
	assert_int_equal(sum.mismatched_pages, 0);
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	assert_int_equal(d.stats.passes, 4);
	image_exact(&sg, &dg);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/* A page changed after its scan in the first slice of a final pass. */
struct bump {
	uint64_t page;
	uint64_t *word;
	atomic_int fired;
};

static void bump_hook(void *arg, unsigned region, uint64_t first, uint32_t npages)
{
	struct bump *b = arg;

	if (region != 0 || b->page < first || b->page >= first + npages ||
	    atomic_exchange(&b->fired, 1))
		return;
	*b->word += 1;
}

/* While paused, a page is discarded and written anew, and reported. */
struct disc {
	struct rdmig_src *src;
	struct dt_guest *g;
	uint64_t page;
};

static void discard_page(void *arg)
{
	struct disc *x = arg;
	uint8_t *pg = x->g->hva[0] + x->page * DT_PAGE;

	assert_int_equal(madvise(pg, DT_PAGE, MADV_DONTNEED), 0);
	memset(pg, 0x5a, DT_PAGE);
	assert_int_equal(rdmig_src_discard(x->src, 0, x->page * DT_PAGE, DT_PAGE), 0);
}

/*
 * Verification and discards across slices. A final pass in slices whose
 * first slice sends a page the guest changes after its scan: the page
 * mismatches and goes again in the second round, within the call that
 * ends the first, and complete succeeds. A page discarded (and written
 * anew) while a pass is paused waits for the next pass: complete refuses
 * until one ran, then the image is exact.
 */
static void sliced_final_pass_verifies_discard_waits_for_next_pass(void **state)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { 16ull << 20 };
	const struct rdmig_budget b = { .size = sizeof(b), .wire_bytes = 1 };
	struct rdmig_pass_stats st = { .size = sizeof(st) }, sum;
	struct rdmig_dirty dirty[1];
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct bump bp = { 0 };
	struct disc x;
	struct dt_dst d;
	uint64_t rng = 3;
	int ret;

	(void)state;
	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	dt_guest_fill(&sg, &rng);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	rdmig_opts_init(&o);
	o.workers = 1;
	src = src_for(&sg, &o);
	dt_dirty(&sg, dirty);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st), 0);

	/* A pre-copy pass in slices of one byte (a chunk each), a page
	 * discarded during the first pause. */
	for (uint64_t p = 0; p < len[0] / DT_PAGE; p += 2) {
		*(uint64_t *)(sg.hva[0] + p * DT_PAGE) += 1; /* changed: not skipped */
		sg.bitmap[0][p / 64] |= 1ull << (p % 64);
	}
	x = (struct disc){ .src = src, .g = &sg, .page = 4000 };
	assert_true(sliced_pass(src, dirty, 1, 0, &b, 0, discard_page, &x, &sum) >= 8);
	/*
	 * Refused: the discard waits for the next pass (-EINVAL, "discarded")
	 * or, where a later slice sent the page from its old frame (a NIC
	 * reads what the MR pinned: the discard applies to the next pass),
	 * verification caught the stale copy first (-EIO). Both name it.
	 */
	ret = rdmig_src_complete(src);
	if ((ret != -EINVAL && ret != -EIO) || !strstr(rdmig_last_error(), "page 4000"))
		fail_msg("complete returned %d: %s", ret, rdmig_last_error());

	/* The final pass, in slices, with a page torn by the guest. */
	dt_guest_write(&sg, 100, &rng); /* a fresh log */
	for (uint64_t p = 0; p < 1024; p++)
		sg.bitmap[0][p / 64] |= 1ull << (p % 64);
	bp.page = 7;
	bp.word = (uint64_t *)(sg.hva[0] + bp.page * DT_PAGE);
	*bp.word += 1; /* changed, so written (and then torn) */
	rdmig__src_set_scan_hook(src, bump_hook, &bp);
	assert_true(sliced_pass(src, dirty, 1, RDMIG_PASS_FINAL, &b, 0, NULL, NULL, &sum) >= 2);
	rdmig__src_set_scan_hook(src, NULL, NULL);
	assert_int_equal(atomic_load(&bp.fired), 1);
	/* The second round took the page up again, in the call that ended
	 * the first: the destination had landed its torn content, which is
	 * what the page holds now, so it is proven and left off the wire. */
	assert_int_equal(sum.mismatched_pages, 1);
	assert_int_equal(rdmig_src_stats(src, &st), 0);
	assert_int_equal(st.mismatch_pending, 0);
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	image_exact(&sg, &dg);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * The destination's idle timeout (3 s, the least) and a VMM that does
 * 2.2 s of other work between slices, four times: with skipping off no
 * NOTICE reaches the destination, so only the source's word at each pause
 * keeps it waiting. A pause longer than the timeout then fails both ends,
 * each with a clear error.
 */
static void pauses_shorter_than_idle_timeout_kept_alive_longer_fail(void **state)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { 8ull << 20 };
	const struct rdmig_budget b = { .size = sizeof(b), .wire_bytes = 1 };
	struct rdmig_pass_stats sum;
	struct rdmig_dirty dirty[1];
	struct dt_guest sg, dg;
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct dt_dst d;
	uint64_t rng = 8;
	unsigned slices;
	int ret;

	(void)state;
	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	dt_guest_fill(&sg, &rng);
	rdmig_opts_init(&o);
	o.idle_timeout_ms = 3000;
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, &o);
	rdmig_opts_init(&o);
	o.workers = 1;
	o.chunk_pages = 512; /* 4 chunks in the guest: 4 slices */
	o.skip_zero = RDMIG_SWITCH_OFF;
	o.skip_unchanged = RDMIG_SWITCH_OFF;
	src = src_for(&sg, &o);
	dt_dirty(&sg, dirty);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);
	slices = sliced_pass(src, NULL, 0, RDMIG_PASS_ALL, &b, 2200, NULL, NULL, &sum);
	assert_int_equal(slices, 4);
	assert_int_equal(sum.wire_bytes, len[0]);

	/* Now a pause past the timeout. */
	dt_guest_write(&sg, 100, &rng);
	assert_int_equal(rdmig_src_pass_budget(src, NULL, 0, RDMIG_PASS_ALL, &b, NULL),
			 RDMIG_PASS_PAUSED);
	sleep_ms(4500);
	ret = rdmig_src_pass_resume(src, NULL, NULL);
	print_message("resumed after 4.5 s: %d (%s)\n", ret, rdmig_last_error());
	assert_true(ret < 0 && ret != -EINVAL && ret != -EBUSY);
	assert_int_equal(rdmig_src_pass_resume(src, NULL, NULL), -EPIPE);
	assert_int_equal(dt_dst_join(&d), -ETIMEDOUT);
	assert_non_null(strstr(d.err, "RDMIG_IDLE_TIMEOUT_MS"));
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

/*
 * Bad budgets are refused before anything happens, each naming what is
 * wrong, and the session goes on to an exact image.
 */
static void budget_zero_einval_session_unharmed(void **state)
{
	const uint64_t gpa[1] = { 0 };
	const uint64_t len[1] = { 4ull << 20 };
	struct rdmig_budget zero = { .size = sizeof(zero) };
	struct rdmig_budget unsized = { .size = 0, .time_ns = 1000000 };
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_progress pr = { .size = sizeof(pr) };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct dt_dst d;
	uint64_t rng = 1;

	(void)state;
	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	dt_guest_fill(&sg, &rng);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = src_for(&sg, NULL);
	assert_int_equal(rdmig_src_connect(src, ip, d.port), 0);

	assert_int_equal(rdmig_src_pass_budget(src, NULL, 0, RDMIG_PASS_ALL, &zero, &st), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "budget of zero"));
	assert_int_equal(rdmig_src_pass_budget(src, NULL, 0, RDMIG_PASS_ALL, NULL, &st), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "budget is NULL"));
	assert_int_equal(rdmig_src_pass_budget(src, NULL, 0, RDMIG_PASS_ALL, &unsized, &st),
			 -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "budget->size"));
	assert_int_equal(rdmig_src_pass_budget(NULL, NULL, 0, RDMIG_PASS_ALL, &zero, &st), -EINVAL);
	assert_int_equal(rdmig_src_pass_resume(src, NULL, &st), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "no pass is paused"));
	/* A bad resume budget leaves the pass paused. */
	unsized.size = sizeof(unsized);
	assert_int_equal(rdmig_src_pass_budget(
				 src, NULL, 0, RDMIG_PASS_ALL,
				 &(struct rdmig_budget){ .size = sizeof(zero), .wire_bytes = 1 },
				 &st),
			 RDMIG_PASS_PAUSED);
	assert_int_equal(rdmig_src_pass_resume(src, &zero, &st), -EINVAL);
	assert_int_equal(rdmig_src_progress(src, &pr), 0);
	assert_int_equal(pr.state, RDMIG_PROGRESS_PAUSED);
	assert_int_equal(pr.pass, 1);
	/* Nothing was harmed: the pass goes on to its end, and completes. */
	assert_int_equal(rdmig_src_pass_resume(src, NULL, &st), 0);
	assert_int_equal(st.pass, 1);
	complete_ok(src, &d);
	dt_dst_join(&d);
	assert_int_equal(d.ret, 0);
	image_exact(&sg, &dg);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(progress_moves_during_pass_ends_equal_to_stats),
		cmocka_unit_test(budgeted_passes_split_land_exact_stats_add_up),
		cmocka_unit_test(sliced_final_pass_verifies_discard_waits_for_next_pass),
		cmocka_unit_test(pauses_shorter_than_idle_timeout_kept_alive_longer_fail),
		cmocka_unit_test(budget_zero_einval_session_unharmed),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
