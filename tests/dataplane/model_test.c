/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the bandwidth model (dataplane/model.c) on synthetic pass
 * histories: the prediction is the slower stage plus the overhead, skipped
 * bytes never count as wire bytes, shares and rates come from recent passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "dataplane/model.h"

#define PS 4096ull
#define MS 1000000ull

static struct rdmig__model m;
static struct rdmig_estimate e;

/* A pass: `dirty` pages, all scanned, `written` of them written, the wire
 * busy `wire_ms`, scanning `scan_ms` per worker (2 workers), and `extra_ms`
 * of overhead on top of the slower stage. */
static void add(uint64_t dirty, uint64_t written, uint64_t wire_ms, uint64_t scan_ms,
		uint64_t extra_ms)
{
	struct rdmig__model_pass p = {
		.dirty = dirty,
		.scanned = dirty,
		.written = written,
		.wire_bytes = written * PS,
		.writes = written,
		.wire_ns = written ? wire_ms * MS : 0,
		.scan_ns = 2 * scan_ms * MS,
		.workers = 2,
	};

	p.duration_ns = (wire_ms > scan_ms ? wire_ms : scan_ms) * MS + extra_ms * MS;
	rdmig__model_add(&m, &p);
}

static int estimate(uint64_t dirty, uint64_t ballooned)
{
	memset(&e, 0xee, sizeof(e));
	e.size = sizeof(e);
	return rdmig__model_estimate(&m, dirty, ballooned, 2, NULL, &e);
}

static int setup(void **state)
{
	(void)state;
	rdmig__model_init(&m, PS);
	return 0;
}

static void model_no_pass_enodata(void **state)
{
	(void)state;
	assert_int_equal(estimate(100, 0), -ENODATA);
	assert_int_equal(e.size, sizeof(e));
}

static void model_wire_bound_predicts_wire_time_plus_overhead(void **state)
{
	(void)state;
	/* 1000 dirty, half written in 100 ms of wire (20.48 MB/s), scan 10 ms. */
	for (int i = 0; i < 3; i++)
		add(1000, 500, 100, 10, 5);
	assert_int_equal(estimate(2000, 0), 0);
	assert_int_equal(e.wire_bytes, 1000 * PS);
	assert_int_equal(e.wire_rate, 500 * PS * 1000 / 100);
	assert_int_equal(e.wire_ns, 200 * MS);
	assert_int_equal(e.scan_ns, 20 * MS);
	/* 5 ms over 100 ms of wire: 5% of the 200 ms predicted. */
	assert_int_equal(e.overhead_ns, 10 * MS);
	assert_int_equal(e.final_pass_ns, 210 * MS);
	assert_int_equal(e.write_share_ppm, 500000);
	assert_int_equal(e.dirty_pages, 2000);
	assert_int_equal(e.passes, 3);
}

static void model_scan_bound_predicts_scan_time(void **state)
{
	(void)state;
	/* Few pages written: the scan (40 ms per worker for 1000 pages) wins. */
	add(1000, 10, 2, 40, 1);
	assert_int_equal(estimate(500, 0), 0);
	assert_int_equal(e.scan_rate, 2 * (1000 * PS * 1000 / 80));
	assert_int_equal(e.scan_ns, 20 * MS);
	assert_int_equal(e.wire_ns, 1 * MS);
	assert_int_equal(e.final_pass_ns, 20 * MS + MS / 2); /* 1 ms over 40: 2.5% */
}

/*
 * Overhead is a share of the slower stage, averaged over the passes: a
 * small pass after a large one is charged neither the large one's
 * milliseconds nor nothing.
 */
static void model_overhead_is_a_share_of_the_pass(void **state)
{
	(void)state;
	add(10000, 10000, 1000, 10, 10); /* a bulk pass: 10 ms over 1000 ms, 1% */
	add(1000, 1000, 100, 10, 11);	 /* a small one: 11 ms over 100 ms, 11% */
	assert_int_equal(estimate(2000, 0), 0);
	assert_int_equal(e.wire_ns, 200 * MS);
	assert_int_equal(e.overhead_ns, 12 * MS); /* 6% */
	assert_int_equal(e.final_pass_ns, 212 * MS);
	/* Nothing dirty: no stage, no share of it. */
	assert_int_equal(estimate(0, 0), 0);
	assert_int_equal(e.final_pass_ns, 0);
}

/* One pass the machine stalled (50% over) among three at 5%: the median. */
static void model_overhead_ignores_one_stalled_pass(void **state)
{
	(void)state;
	add(1000, 1000, 100, 10, 5);
	add(1000, 1000, 100, 10, 50);
	add(1000, 1000, 100, 10, 5);
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.overhead_ns, 5 * MS);
	add(1000, 1000, 100, 10, 5); /* four: the mean of the middle two */
	add(1000, 1000, 100, 10, 7);
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.overhead_ns, 6 * MS);
}

/*
 * A pass whose wire the machine stalled (150 ms where two others took 100)
 * is left out of the wire's fit; one 8% slower is ordinary noise and kept;
 * with two passes, neither can be told to be the odd one.
 */
static void model_wire_fit_leaves_out_a_stalled_pass(void **state)
{
	(void)state;
	add(1000, 1000, 100, 10, 0);
	add(1000, 1000, 150, 10, 0);
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.wire_rate, 2000 * PS * 1000 / 250); /* both: 125 ms each */
	add(1000, 1000, 100, 10, 0);
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.wire_rate, 1000 * PS * 1000 / 100);
	assert_int_equal(e.wire_ns, 100 * MS);

	setup(NULL);
	add(1000, 1000, 100, 10, 0);
	add(1000, 1000, 108, 10, 0);
	add(1000, 1000, 100, 10, 0);
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.wire_rate, (3000 * PS * 1000 + 154) / 308); /* rounded */
}

/*
 * However far off the stalled pass (300 ms against 100), it is the one
 * left out, never one of the good ones; passes that merely spread (100,
 * 112 and 125 ms: the fit misses both ends by 11%) are all kept.
 */
static void model_wire_fit_keeps_the_good_passes(void **state)
{
	(void)state;
	add(1000, 1000, 100, 10, 0);
	add(1000, 1000, 100, 10, 0);
	add(1000, 1000, 300, 10, 0);
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.wire_ns, 100 * MS);

	setup(NULL);
	add(1000, 1000, 100, 10, 0);
	add(1000, 1000, 112, 10, 0);
	add(1000, 1000, 125, 10, 0);
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.wire_ns, 337 * MS / 3); /* the mean */
}

/*
 * With WRITEs of different sizes (per byte and per WRITE both fitted), a
 * pass of small WRITEs stalled to 1.5 times its time is left out and the
 * costs come out exact from the rest: 1 ns per byte, 20 us per WRITE.
 */
static void model_wire_fit_per_write_leaves_out_a_stalled_pass(void **state)
{
	struct rdmig__model_pass p = {
		.dirty = 2560, .scanned = 2560, .written = 2560, .workers = 2
	};

	(void)state;
	for (int i = 0; i < 4; i++) {
		/* A bulk pass of 10 WRITEs, then small ones, one page each. */
		p.writes = i ? 1000 : 10;
		p.dirty = p.scanned = p.written = i ? 1000 : 2560;
		p.wire_bytes = p.written * PS;
		p.wire_ns = p.wire_bytes + p.writes * 20000;
		if (i == 2)
			p.wire_ns = p.wire_ns * 3 / 2;
		p.duration_ns = p.wire_ns;
		rdmig__model_add(&m, &p);
	}
	assert_int_equal(estimate(500, 0), 0);
	assert_int_equal(e.wire_rate, 1000000000);
	assert_int_equal(e.write_cost_ns, 20000);
}

/* The same for the scan: a pass that scanned at two thirds of the rate. */
static void model_scan_fit_leaves_out_a_stalled_pass(void **state)
{
	(void)state;
	add(1000, 0, 0, 10, 0);
	add(1000, 0, 0, 15, 0);
	add(1000, 0, 0, 10, 0);
	assert_int_equal(estimate(1000, 0), 0);
	/* 1000 pages shared by two workers, each scanning for 10 ms. */
	assert_int_equal(e.scan_rate, 1000 * PS * 1000 / 10);
	assert_int_equal(e.scan_ns, 10 * MS);
}

static void model_skipped_pages_never_count_as_wire_bytes(void **state)
{
	(void)state;
	add(1000, 1000, 100, 10, 0); /* everything written once */
	add(1000, 0, 0, 10, 0);	     /* then everything skipped */
	assert_int_equal(estimate(1000, 0), 0);
	/* The share written is over the window: 1000 of 2000. */
	assert_int_equal(e.wire_bytes, 500 * PS);
	/* The rate is bytes over busy time: the idle pass did not dilute it. */
	assert_int_equal(e.wire_rate, 1000 * PS * 1000 / 100);
	assert_int_equal(e.wire_ns, 50 * MS);
}

static void model_window_forgets_old_passes(void **state)
{
	(void)state;
	add(1000, 1000, 100, 10, 0); /* writes everything */
	for (int i = 0; i < RDMIG__MODEL_WINDOW; i++)
		add(1000, 0, 0, 10, 0); /* then writes nothing */
	assert_int_equal(estimate(1000, 0), 0);
	assert_int_equal(e.wire_bytes, 0);
	assert_int_equal(e.write_share_ppm, 0);
	assert_int_equal(e.final_pass_ns, 10 * MS); /* the scan alone: 2 workers, 10 ms each */
	/* The wire rate is still known, from the whole history. */
	assert_int_equal(e.wire_rate, 1000 * PS * 1000 / 100);
}

static void model_ballooned_pages_cost_nothing(void **state)
{
	(void)state;
	add(1000, 1000, 100, 10, 0);
	assert_int_equal(estimate(1000, 400), 0);
	assert_int_equal(e.wire_bytes, 600 * PS);
	assert_int_equal(e.wire_ns, 60 * MS);
	assert_int_equal(e.scan_ns, 6 * MS);
}

static void model_unknown_ballooned_uses_recent_share(void **state)
{
	struct rdmig__model_pass p = { .dirty = 1000,
				       .ballooned = 250,
				       .scanned = 750,
				       .written = 750,
				       .wire_bytes = 750 * PS,
				       .wire_ns = 75 * MS,
				       .scan_ns = 20 * MS,
				       .duration_ns = 75 * MS,
				       .workers = 2 };

	(void)state;
	rdmig__model_add(&m, &p);
	assert_int_equal(estimate(2000, UINT64_MAX), 0);
	assert_int_equal(e.wire_bytes, 1500 * PS); /* a quarter ballooned, the rest written */
	assert_int_equal(e.wire_ns, 150 * MS);
}

static void model_pages_to_write_without_wire_rate_enodata(void **state)
{
	(void)state;
	add(0, 0, 0, 0, 1); /* an empty pass: no share, no rate */
	assert_int_equal(estimate(10, 0), -ENODATA);
	assert_int_equal(estimate(0, 0), 0);
	assert_int_equal(e.final_pass_ns, 1 * MS);
}

static void model_skipping_off_counts_every_dirty_page(void **state)
{
	struct rdmig__model_pass p = { .dirty = 800,
				       .written = 800,
				       .wire_bytes = 800 * PS,
				       .wire_ns = 80 * MS,
				       .duration_ns = 90 * MS,
				       .workers = 2 };

	(void)state;
	rdmig__model_add(&m, &p); /* nothing scanned */
	assert_int_equal(estimate(400, 0), 0);
	assert_int_equal(e.wire_bytes, 400 * PS);
	assert_int_equal(e.scan_ns, 0);
	assert_int_equal(e.final_pass_ns, 40 * MS + 5 * MS); /* 10 ms over 80: 12.5% */
}

/*
 * Large WRITEs and small scattered ones cost differently per byte: with
 * passes of both, the per-byte and per-WRITE costs are recovered and a
 * third mix is predicted exactly.
 */
static void model_write_sizes_fitted_per_byte_and_per_write(void **state)
{
	/* Truth: 1 ns per byte (1 GB/s) plus 20 us per WRITE. */
	struct rdmig__model_pass big = { .dirty = 2560,
					 .scanned = 2560,
					 .written = 2560,
					 .wire_bytes = 2560 * PS,
					 .writes = 10,
					 .workers = 2 };
	struct rdmig__model_pass small = { .dirty = 1000,
					   .scanned = 1000,
					   .written = 1000,
					   .wire_bytes = 1000 * PS,
					   .writes = 1000,
					   .workers = 2 };

	(void)state;
	big.wire_ns = big.wire_bytes + big.writes * 20000;
	small.wire_ns = small.wire_bytes + small.writes * 20000;
	big.duration_ns = big.wire_ns;
	small.duration_ns = small.wire_ns;
	rdmig__model_add(&m, &big);
	rdmig__model_add(&m, &small);
	/* Next: 500 pages, coalesced as the latest pass did (one WRITE each),
	 * not as the window's sum would say (1010 WRITEs for 3560 pages). */
	assert_int_equal(estimate(500, 0), 0);
	assert_int_equal(e.wire_bytes, 500 * PS);
	assert_int_equal(e.wire_rate, 1000000000);
	assert_int_equal(e.wire_ns, 500 * PS + 500 * 20000);
}

/*
 * A sample of the dirty set decides the shares: after a first pass that
 * wrote all of a big guest, the window says "everything is written", but
 * the sample shows that 3 pages in 10 would be.
 */
static void model_sample_shares_replace_the_window(void **state)
{
	struct rdmig__model_sample smp = { .pages = 1000, .written = 300 };

	(void)state;
	add(100000, 100000, 100000 * 10, 10, 0);
	add(1000, 900, 9000, 10, 0);
	assert_int_equal(estimate(2000, 0), 0);
	assert_true(e.wire_bytes > 1800 * PS); /* the window: almost everything */
	assert_int_equal(rdmig__model_estimate(&m, 2000, 0, 2, &smp, &e), 0);
	assert_int_equal(e.wire_bytes, 600 * PS);
	assert_int_equal(e.write_share_ppm, 300000);
	/* An empty sample (skipping off, or no bitmaps) leaves the window's. */
	smp.pages = 0;
	assert_int_equal(rdmig__model_estimate(&m, 2000, 0, 2, &smp, &e), 0);
	assert_true(e.wire_bytes > 1800 * PS);
}

/*
 * A sample of 4096 of 100000 dirty pages knows a share of 10% to about 5%
 * (as much as 4271 pages drawn at random: the finite-population
 * correction); the window's passes counted 40000 pages at 10%. A sample
 * that agrees with them, up to two standard errors of the difference, is
 * pooled with them, each weighted by its pages; one that does not (449
 * written is 1.98 standard errors off, 451 is 2.08) replaces them. A
 * sample of half the dirty set knows as much as twice its pages; one that
 * took every dirty page is exact.
 */
static void model_sample_pooled_with_the_window_when_they_agree(void **state)
{
	struct rdmig__model_sample smp = { .pages = 4096, .written = 430 };

	(void)state;
	for (int i = 0; i < 4; i++)
		add(10000, 1000, 10, 10, 0);
	/* (4271 * 430 / 4096 + 40000 * 0.1) / (4271 + 40000) = 10.048% */
	assert_int_equal(rdmig__model_estimate(&m, 100000, 0, 2, &smp, &e), 0);
	assert_int_equal(e.write_share_ppm, 100480);
	assert_int_equal(e.wire_bytes, 10048 * PS);
	smp.written = 449;
	assert_int_equal(rdmig__model_estimate(&m, 100000, 0, 2, &smp, &e), 0);
	assert_int_equal(e.write_share_ppm, 100928);
	assert_int_equal(e.wire_bytes, 10093 * PS);
	smp.written = 451; /* 451 / 4096 */
	assert_int_equal(rdmig__model_estimate(&m, 100000, 0, 2, &smp, &e), 0);
	assert_int_equal(e.write_share_ppm, 110107);
	assert_int_equal(e.wire_bytes, 11011 * PS);
	/* Half the dirty set: 8192 pages' worth, not 4096 (that gives 823). */
	smp.written = 430;
	assert_int_equal(rdmig__model_estimate(&m, 8192, 0, 2, &smp, &e), 0);
	assert_int_equal(e.wire_bytes, 826 * PS);
	assert_int_equal(rdmig__model_estimate(&m, 4096, 0, 2, &smp, &e), 0);
	assert_int_equal(e.wire_bytes, 430 * PS);
}

/* A first pass over 4096 pages in 16 WRITEs of 1 MiB, wire-bound. */
static void add_bulk_pass(void)
{
	struct rdmig__model_pass p = { .dirty = 4096,
				       .scanned = 4096,
				       .written = 4096,
				       .wire_bytes = 4096 * PS,
				       .writes = 16,
				       .wire_ns = 4096 * PS, /* 1 byte per ns */
				       .duration_ns = 4096 * PS,
				       .workers = 2 };

	rdmig__model_add(&m, &p);
}

/* The WRITEs predicted for `dirty` pages when a sample of 1000 saw
 * `written` of them written and the dirty set made `runs` runs. */
static uint64_t writes_for(uint64_t dirty, uint64_t written, uint64_t runs)
{
	struct rdmig__model_sample smp = {
		.pages = 1000, .written = written, .run_pages = 1000, .runs = runs
	};

	assert_int_equal(rdmig__model_estimate(&m, dirty, 0, 2, &smp, &e), 0);
	assert_int_equal(e.wire_bytes, dirty * written / 1000 * PS);
	return e.writes;
}

/*
 * The WRITEs come from the runs of the dirty set, each page written with
 * the sampled share p: a run of L pages makes p + (L - 1) p (1 - p) runs of
 * written pages on average; not from how the first pass coalesced.
 */
static void model_writes_from_dirty_runs(void **state)
{
	(void)state;
	add_bulk_pass();
	/* Every page written: a WRITE per run, scattered or not. */
	assert_int_equal(writes_for(1000, 1000, 1000), 1000);
	assert_int_equal(writes_for(1000, 1000, 10), 10);
	/* Half written (the rest unchanged): single pages make 500 WRITEs;
	 * one run of 1000 makes 0.5 + 999 / 4 of them. */
	assert_int_equal(writes_for(1000, 500, 1000), 500);
	assert_int_equal(writes_for(1000, 500, 1), 250);
	/* Runs counted over the whole set scale to the pages asked about. */
	assert_int_equal(writes_for(2000, 500, 1000), 1000);
	/* No runs counted (a page count, no bitmaps): as the last pass. */
	assert_int_equal(estimate(1024, 0), 0);
	assert_int_equal(e.writes, 4);
}

/*
 * An estimate whose WRITEs are unlike every recent pass's says so: after
 * the first pass's 1 MiB WRITEs, a scattered set's per-WRITE cost is
 * unknown. One pass of small WRITEs later, it is not extrapolated.
 */
static void model_extrapolation_flagged_until_a_similar_pass(void **state)
{
	struct rdmig__model_sample smp = {
		.pages = 100, .written = 100, .run_pages = 100, .runs = 100
	};
	struct rdmig__model_pass small = { .dirty = 100,
					   .scanned = 100,
					   .written = 100,
					   .wire_bytes = 100 * PS,
					   .writes = 50, /* 8 KiB each: within 4x of 4 KiB */
					   .wire_ns = 100 * PS * 2,
					   .duration_ns = 100 * PS * 2,
					   .workers = 2 };

	(void)state;
	add_bulk_pass();
	assert_int_equal(rdmig__model_estimate(&m, 100, 0, 2, &smp, &e), 0);
	assert_int_equal(e.writes, 100);
	assert_true(e.flags & RDMIG_ESTIMATE_EXTRAPOLATED);
	/* Coalesced like the bulk pass: not extrapolated. */
	smp.runs = 1;
	assert_int_equal(rdmig__model_estimate(&m, 100, 0, 2, &smp, &e), 0);
	assert_false(e.flags & RDMIG_ESTIMATE_EXTRAPOLATED);
	/* A pass of small WRITEs joins the window. */
	rdmig__model_add(&m, &small);
	smp.runs = 100;
	assert_int_equal(rdmig__model_estimate(&m, 100, 0, 2, &smp, &e), 0);
	assert_false(e.flags & RDMIG_ESTIMATE_EXTRAPOLATED);
	/* Nothing to write: nothing to extrapolate. */
	smp.written = 0;
	assert_int_equal(rdmig__model_estimate(&m, 100, 0, 2, &smp, &e), 0);
	assert_int_equal(e.writes, 0);
	assert_false(e.flags & RDMIG_ESTIMATE_EXTRAPOLATED);
}

/*
 * The whole downtime: 1 GB of state at 1 GB/s of wire (1 s), scanned twice
 * by one of 4 workers of 4 GB/s in all (2 x 1 s), registered twice at
 * 0.25 s/GB (0.5 s), two round trips of 1 ms; complete one round trip.
 */
static void model_downtime_adds_state_and_complete(void **state)
{
	struct rdmig__model_after a = { .state_bytes = 1000000000,
					.rtt_ns = 1000000,
					.reg_bytes = 4000000000,
					.reg_ns = 1000000000 };
	struct rdmig_estimate de = { .size = sizeof(de),
				     .final_pass_ns = 7000000,
				     .wire_rate = 1000000000,
				     .scan_rate = 4000000000 };

	(void)state;
	rdmig__model_downtime(&a, 4, &de);
	assert_int_equal(de.state_bytes, 1000000000);
	assert_int_equal(de.state_ns, 1000000000ull + 2000000000ull + 500000000ull + 2000000ull);
	assert_int_equal(de.complete_ns, 1000000);
	assert_int_equal(de.downtime_ns, 7000000 + de.state_ns + 1000000);
	assert_false(de.flags & RDMIG_ESTIMATE_EXTRAPOLATED);

	/* No state announced: the final pass and complete. */
	a.state_bytes = 0;
	rdmig__model_downtime(&a, 4, &de);
	assert_int_equal(de.state_ns, 0);
	assert_int_equal(de.downtime_ns, 7000000 + 1000000);

	/* No wire rate known: the wire is left out, and said to be. */
	a.state_bytes = 1000000000;
	de.wire_rate = 0;
	rdmig__model_downtime(&a, 4, &de);
	assert_int_equal(de.state_ns, 2000000000ull + 500000000ull + 2000000ull);
	assert_true(de.flags & RDMIG_ESTIMATE_EXTRAPOLATED);
}

/*
 * The bandwidth cap bounds the wire: recent passes that rode the cap's
 * burst (small ones, faster than the cap) do not make a large pass look
 * faster than the cap allows; where the fit is slower than the cap it
 * stands; and no cap, no bound.
 */
static void model_cap_bounds_the_wire(void **state)
{
	(void)state;
	/* 500 pages in 10 ms: 204.8 MB/s, faster than a 100 MB/s cap. */
	for (int i = 0; i < 3; i++)
		add(1000, 500, 10, 1, 0);
	m.max_bandwidth = 100000000;
	assert_int_equal(estimate(20000, 0), 0);
	assert_int_equal(e.wire_rate, 100000000);
	/* 10000 pages written at the cap: 409.6 ms. */
	assert_int_equal(e.wire_ns, 10000 * PS * 1000000000ull / 100000000);
	assert_int_equal(e.final_pass_ns, e.wire_ns);

	/* A cap above the fitted rate changes nothing. */
	m.max_bandwidth = 1000000000;
	assert_int_equal(estimate(20000, 0), 0);
	assert_int_equal(e.wire_rate, 500 * PS * 100);
	assert_int_equal(e.wire_ns, 200 * MS);

	m.max_bandwidth = 0;
	assert_int_equal(estimate(20000, 0), 0);
	assert_int_equal(e.wire_ns, 200 * MS);
}

/*
 * The skip policy: hashing pays when a pass that hashes is faster than one
 * that does not, the slower stage governing each; unknown share or wire:
 * it is taken to pay.
 */
static void model_hash_pays_when_the_wire_is_slower_and_pages_repeat(void **state)
{
	const double GB = 1e9;
	struct rdmig__skip_in in = {
		.share = 0.5,
		.zero_rate = 100 * GB,
		.hash_rate = 8 * GB,
		.dst_hash_rate = 8 * GB,
		.wire_rate = 1.25 * GB, /* 10 Gb/s */
	};

	(void)state;
	/* Half unchanged, a slow wire: half the wire time saved. */
	assert_true(rdmig__model_hash_pays(&in));
	/* Nothing unchanged: no saving, and hashing is no faster. */
	in.share = 0;
	assert_false(rdmig__model_hash_pays(&in));
	/* A little unchanged, the wire still slower than hashing: pays. */
	in.share = 0.05;
	assert_true(rdmig__model_hash_pays(&in));
	/* A wire faster than hashing: 5% skipped does not pay for it... */
	in.wire_rate = 20 * GB;
	assert_false(rdmig__model_hash_pays(&in));
	/* ...nor half: the hash stage (8 GB/s) is slower than the wire (20). */
	in.share = 0.5;
	assert_false(rdmig__model_hash_pays(&in));
	/* 70%: the wire carries 6 GB/s worth, hashing 8: pays. */
	in.share = 0.7;
	in.wire_rate = 4 * GB;
	assert_true(rdmig__model_hash_pays(&in));
	/* The destination hashing slowly (one thread) is the slower stage. */
	in.dst_hash_rate = 1 * GB;
	assert_false(rdmig__model_hash_pays(&in));
	/* Unknown share (nothing compared yet) or wire: hashing is taken. */
	in.share = -1;
	assert_true(rdmig__model_hash_pays(&in));
	in.share = 0;
	in.wire_rate = 0;
	assert_true(rdmig__model_hash_pays(&in));
}

/* The share above which hashing pays, as rdmig__model_hash_pays() weighs it. */
static void model_hash_share_needed_matches_hash_pays(void **state)
{
	const double GB = 1e9;
	struct rdmig__skip_in in = {
		.zero_rate = 100 * GB,
		.hash_rate = 8 * GB,
		.dst_hash_rate = 8 * GB,
	};
	const double wires[] = { 1.25 * GB, 4 * GB, 7 * GB, 20 * GB };

	(void)state;
	/* A wire slower than hashing: any share but none pays. */
	in.wire_rate = 1.25 * GB;
	assert_true(rdmig__model_hash_share_needed(&in) == 0);
	/* Hashing slower than the wire: never. */
	in.wire_rate = 20 * GB;
	assert_true(rdmig__model_hash_share_needed(&in) > 1);
	/* In between the two agree. */
	in.hash_rate = 40 * GB;
	for (unsigned i = 0; i < sizeof(wires) / sizeof(wires[0]); i++) {
		double need;

		in.wire_rate = wires[i];
		need = rdmig__model_hash_share_needed(&in);
		for (double s = 0; s <= 1; s += 0.01) {
			in.share = s;
			if (s > need + 1e-9 || s < need - 1e-9)
				assert_int_equal(rdmig__model_hash_pays(&in), s > need);
		}
	}
	/* The wire unknown: no share needed. */
	in.wire_rate = 0;
	assert_true(rdmig__model_hash_share_needed(&in) == 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, setup)
	const struct CMUnitTest tests[] = {
		T(model_no_pass_enodata),
		T(model_wire_bound_predicts_wire_time_plus_overhead),
		T(model_overhead_is_a_share_of_the_pass),
		T(model_overhead_ignores_one_stalled_pass),
		T(model_wire_fit_leaves_out_a_stalled_pass),
		T(model_wire_fit_keeps_the_good_passes),
		T(model_wire_fit_per_write_leaves_out_a_stalled_pass),
		T(model_scan_fit_leaves_out_a_stalled_pass),
		T(model_scan_bound_predicts_scan_time),
		T(model_skipped_pages_never_count_as_wire_bytes),
		T(model_window_forgets_old_passes),
		T(model_ballooned_pages_cost_nothing),
		T(model_unknown_ballooned_uses_recent_share),
		T(model_pages_to_write_without_wire_rate_enodata),
		T(model_skipping_off_counts_every_dirty_page),
		T(model_write_sizes_fitted_per_byte_and_per_write),
		T(model_sample_shares_replace_the_window),
		T(model_sample_pooled_with_the_window_when_they_agree),
		T(model_writes_from_dirty_runs),
		T(model_extrapolation_flagged_until_a_similar_pass),
		T(model_downtime_adds_state_and_complete),
		T(model_cap_bounds_the_wire),
		T(model_hash_pays_when_the_wire_is_slower_and_pages_repeat),
		T(model_hash_share_needed_matches_hash_pays),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
