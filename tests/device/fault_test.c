/* SPDX-License-Identifier: MIT */
/*
 * Randomized fault injection over the loopback transport. For each seed a
 * short migration (a few MiB, three passes, complete) runs through the
 * public API, the source in this thread and the destination in another,
 * while the loopback NIC applies one fault chosen from the seed at a point
 * chosen from the seed: a QP (the requester's or the responder's) moved to
 * error, a SEND dropped, duplicated or delayed, or one side killed
 * (dataplane/xport.h); or, now and then, the source's VMM stalls between
 * two passes for longer than the destination's idle timeout (no transport
 * fault reaches that wait: a source that fails disconnects at once).
 * Every run must end in one of these ways:
 *
 *   - both sides succeed, and the destination's image equals the source's
 *     byte for byte;
 *   - both sides fail, each with a message, within its bound after the
 *     fault (SRC_BOUND_MS, DST_BOUND_MS);
 *   - the source fails in rdmig_src_complete() while the destination
 *     completed, with an exact image. Once COMPLETE is out, the
 *     destination may withdraw its memory and answer at any moment; a
 *     failure the source meets after that (the answer lost, a stale
 *     message before it) comes too late for the destination to hear of.
 *     This is the last-message case that no acknowledgement removes; the
 *     source keeps its guest running, which is always safe (DESIGN.md,
 *     invariant 7).
 *
 * The source's guest memory is never changed by rdmig, and once both
 * handles are destroyed nothing is left: no loopback object (ids, QPs,
 * MRs, CQs, channels, NIC threads, eventfds, events), no thread, no fd.
 *
 * RDMIG_FAULT_SEEDS (default 100) says how many seeds run, RDMIG_FAULT_SEED
 * runs that one seed alone (to replay a failure). The point of a fault is
 * an index into the work requests of one class (side, control or data QP,
 * SEND or WRITE), counted on a run without faults first. Only over
 * loopback: elsewhere the test exits 77.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "dataplane/xport.h"
#include "device/devtest.h"

#define TIMEOUT_MS 1000 /* RDMIG_TIMEOUT_MS of both sides */
#define IDLE_MS	   3000 /* the destination's RDMIG_IDLE_TIMEOUT_MS (its minimum) */
/*
 * From the fault to the error, each side's documented bound plus slack for
 * a shared 2-CPU machine: every wait of the source gives up after
 * RDMIG_TIMEOUT_MS without progress (no guest here is big enough for the
 * allowance of a second per GiB); the destination's longest wait is its
 * idle timeout, and a source that fails disconnects, which it sees at
 * once. (Measured over 1000 seeds: 1.1 s at most on either side, but for
 * the VMM stall, which the destination ends after IDLE_MS.)
 */
#define SLACK_MS     1500
#define SRC_BOUND_MS (TIMEOUT_MS + SLACK_MS)
#define DST_BOUND_MS (IDLE_MS + SLACK_MS)
#define STALL_MS     (IDLE_MS + 500) /* the VMM's pause between passes, when it stalls */
/*
 * A source that fails in connect before it proved the key is, to the
 * destination, a stranger: refused and counted, not fatal. The destination
 * waits on for a real source until its accept timeout.
 */
#define ACCEPT_MS	    2500
#define DST_UNAUTH_BOUND_MS (ACCEPT_MS + SLACK_MS)
#define REGION		    (2ull << 20) /* two regions of this size */
#define CHUNK		    64		 /* pages: several chunks per worker, many WRITEs */
#define WATCHDOG	    30		 /* seconds a seed may take before the test aborts */

static const char *ip;

/* --- the guest -------------------------------------------------------------- */

static uint64_t checksum(const struct dt_guest *g)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t k = 0; k < g->len[i] / 8; k++)
			h = (h ^ ((const uint64_t *)g->hva[i])[k]) * 0x100000001b3ull;
	return h;
}

/* Random content with a share of zero pages, so zero skips happen. */
static void fill(struct dt_guest *g, uint64_t *rng)
{
	dt_guest_fill(g, rng);
	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t p = 0; p < g->len[i] / DT_PAGE; p++)
			if (dt_rng(rng) % 4 == 0)
				memset(g->hva[i] + p * DT_PAGE, 0, DT_PAGE);
}

/*
 * The guest between passes: `count` pages per region change, a quarter of
 * them to zero (the destination then holds data there: a zero-fill order).
 */
static void scribble(struct dt_guest *g, unsigned count, uint64_t *rng)
{
	for (unsigned i = 0; i < g->n; i++) {
		uint64_t pages = g->len[i] / DT_PAGE;

		memset(g->bitmap[i], 0, (pages + 63) / 64 * sizeof(uint64_t));
		for (unsigned k = 0; k < count; k++) {
			uint64_t p = dt_rng(rng) % pages;
			uint8_t *page = g->hva[i] + p * DT_PAGE;

			if (dt_rng(rng) % 4 == 0)
				memset(page, 0, DT_PAGE);
			else
				((uint64_t *)page)[dt_rng(rng) % (DT_PAGE / 8)] = dt_rng(rng) | 1;
			g->bitmap[i][p / 64] |= 1ull << (p % 64);
		}
	}
}

/* --- what a process holds ---------------------------------------------------- */

static int count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

struct held {
	int threads, fds;
	struct rdmig__loop_live lb;
};

static void held_now(struct held *h)
{
	h->threads = count_dir("/proc/self/task");
	h->fds = count_dir("/proc/self/fd");
	rdmig__loopback_live(&h->lb);
}

static bool lb_empty(const struct rdmig__loop_live *l)
{
	return !l->chans && !l->ids && !l->pds && !l->mrs && !l->cqs && !l->qps && !l->nics &&
	       !l->fds && !l->events;
}

/* --- one migration -------------------------------------------------------------- */

/* A run's shape, drawn from the seed. */
struct shape {
	unsigned workers; /* 1..3 */
	bool skip;	  /* skipping on: NOTICEs and HASHES on the data QPs */
	bool dst_zero;	  /* destination zeroed and declared so, else garbage */
	bool stall;	  /* the source's VMM pauses STALL_MS before the second pass */
};

struct outcome {
	int src_ret, dst_ret;
	const char *src_step;	      /* the call that failed */
	uint64_t stall_ns, resume_ns; /* when the VMM stalled and went on, if it did */
	uint64_t src_ns, dst_ns;      /* when each side returned its error */
	char src_err[512], dst_err[512];
};

struct dst_run {
	struct rdmig_dst *dst;
	int ret;
	uint64_t done_ns;
	char err[512];
};

static void *dst_main(void *arg)
{
	struct dst_run *d = arg;

	d->ret = rdmig_dst_run(d->dst, NULL);
	d->done_ns = rdmig__now_ns();
	snprintf(d->err, sizeof(d->err), "%s", rdmig_last_error());
	return NULL;
}

static struct rdmig_opts opts_for(const struct shape *sh)
{
	struct rdmig_opts o;

	rdmig_opts_init(&o);
	o.workers = sh->workers;
	o.chunk_pages = CHUNK;
	o.skip_zero = sh->skip ? RDMIG_SWITCH_ON : RDMIG_SWITCH_OFF;
	o.skip_unchanged = sh->skip ? RDMIG_SWITCH_ON : RDMIG_SWITCH_OFF;
	o.timeout_ms = TIMEOUT_MS;
	o.idle_timeout_ms = IDLE_MS;
	o.accept_timeout_ms = ACCEPT_MS; /* the source always connects at once */
	o.pin = RDMIG_PIN_OFF;
	return o;
}

/* The source's side of a migration: 3 passes, then complete. Fills `out`. */
static void run_source(const struct shape *sh, struct rdmig_src *src, struct dt_guest *g,
		       const char *port, uint64_t *rng, struct outcome *out)
{
	struct rdmig_dirty dirty[DT_MAX_REGIONS];
	uint64_t sum;
	int ret;

	out->src_step = "connect";
	sum = checksum(g);
	ret = rdmig_src_connect(src, ip, port);
	for (unsigned pass = 0; !ret && pass < 3; pass++) {
		out->src_step = "pass";
		if (pass == 1 && sh->stall) {
			out->stall_ns = rdmig__now_ns();
			usleep(STALL_MS * 1000);
			out->resume_ns = rdmig__now_ns();
		}
		if (pass) {
			scribble(g, 24, rng);
			sum = checksum(g);
		}
		dt_dirty(g, dirty);
		ret = pass ? rdmig_src_pass(src, dirty, g->n, 0, NULL)
			   : rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL);
		if (checksum(g) != sum)
			fail_msg("the source's guest changed during a %s", out->src_step);
	}
	if (!ret) {
		out->src_step = "complete";
		ret = rdmig_src_complete(src);
	}
	out->src_ret = ret;
	if (ret) {
		out->src_ns = rdmig__now_ns();
		snprintf(out->src_err, sizeof(out->src_err), "%s", rdmig_last_error());
		/* A failed session stays failed, and says so at once. */
		if (strcmp(out->src_step, "connect"))
			assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL),
					 -EPIPE);
	}
	if (checksum(g) != sum)
		fail_msg("the source's guest changed during %s", out->src_step);
}

/*
 * Runs one migration of a fresh guest from `seed` with fault `f` armed
 * (NULL: none) and returns what both ends did. Afterwards both handles are
 * destroyed and the source's memory is checked against its checksum.
 */
static void migrate(const struct shape *sh, uint64_t seed, const struct rdmig__loop_fault *f,
		    struct dt_guest *sg, struct dt_guest *dg, struct outcome *out)
{
	struct rdmig_opts o = opts_for(sh);
	struct dst_run d = { 0 };
	struct rdmig_src *src;
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1, sum;
	char port[16];
	pthread_t t;
	int p;

	memset(out, 0, sizeof(*out));
	fill(sg, &rng);
	for (unsigned i = 0; i < dg->n; i++) {
		if (sh->dst_zero)
			memset(dg->hva[i], 0, dg->len[i]);
		else
			for (uint64_t k = 0; k < dg->len[i] / 8; k++)
				((uint64_t *)dg->hva[i])[k] = dt_rng(&rng);
	}

	assert_int_equal(rdmig_dst_create(&o, &d.dst), 0);
	for (unsigned i = 0; i < dg->n; i++)
		assert_int_equal(rdmig_dst_add_region(d.dst, dg->gpa[i], dg->hva[i], dg->len[i],
						      sh->dst_zero ? RDMIG_REGION_ZERO_FILLED : 0),
				 (int)i);
	p = rdmig_dst_listen(d.dst, ip, "0");
	assert_true(p > 0);
	snprintf(port, sizeof(port), "%d", p);
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	for (unsigned i = 0; i < sg->n; i++)
		assert_int_equal(rdmig_src_add_region(src, sg->gpa[i], sg->hva[i], sg->len[i]),
				 (int)i);

	rdmig__loopback_set_fault(f);
	assert_int_equal(pthread_create(&t, NULL, dst_main, &d), 0);
	run_source(sh, src, sg, port, &rng, out);
	sum = checksum(sg);
	pthread_join(t, NULL);
	rdmig_src_destroy(src);
	rdmig_dst_destroy(d.dst);
	if (checksum(sg) != sum)
		fail_msg("the source's guest changed in destroy");
	out->dst_ret = d.ret;
	out->dst_ns = d.done_ns;
	snprintf(out->dst_err, sizeof(out->dst_err), "%s", d.err);
}

/* --- the faults ------------------------------------------------------------------- */

static const char *const kind_names[] = {
	"none", "qp-error", "peer-error", "drop", "dup", "delay", "kill-peer", "kill-self",
};

static void class_name(uint32_t c, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s %s", c & RDMIG__LOOP_WR_PASSIVE ? "dst" : "src",
		 c & RDMIG__LOOP_WR_DATA ? "data" : "ctrl",
		 c & RDMIG__LOOP_WR_WRITE ? "WRITE" : "SEND");
}

/* WRs per class of a run without faults, per shape (index by shape_index). */
static bool calibrated[12];
static uint64_t counts[12][RDMIG__LOOP_WR_CLASSES];

static unsigned shape_index(const struct shape *sh)
{
	return (sh->workers - 1) * 4 + sh->skip * 2 + sh->dst_zero;
}

static void calibrate(const struct shape *sh, struct dt_guest *sg, struct dt_guest *dg)
{
	unsigned k = shape_index(sh);
	struct shape plain = *sh;
	struct rdmig__loop_fault_state st;
	struct outcome out;
	unsigned r;

	if (calibrated[k])
		return;
	plain.stall = false;
	migrate(&plain, 0, NULL, sg, dg, &out);
	if (out.src_ret || out.dst_ret)
		fail_msg("a migration without faults failed: source %d (%s): %s; destination "
			 "%d: %s",
			 out.src_ret, out.src_step, out.src_err, out.dst_ret, out.dst_err);
	if (dt_guest_diff(sg, dg, &r) >= 0)
		fail_msg("a migration without faults left a different image");
	rdmig__loopback_fault_state(&st);
	memcpy(counts[k], st.count, sizeof(counts[k]));
	calibrated[k] = true;
}

/* The shape and the fault of a seed. */
static void draw(uint64_t seed, struct shape *sh, struct rdmig__loop_fault *f, struct dt_guest *sg,
		 struct dt_guest *dg)
{
	static const enum rdmig__loop_fault_kind write_kinds[] = {
		RDMIG__LOOP_FAULT_QP_ERROR,  RDMIG__LOOP_FAULT_PEER_ERROR, RDMIG__LOOP_FAULT_DELAY,
		RDMIG__LOOP_FAULT_KILL_PEER, RDMIG__LOOP_FAULT_KILL_SELF,
	};
	uint64_t rng = seed, *c;
	uint32_t classes[RDMIG__LOOP_WR_CLASSES];
	unsigned n = 0;

	memset(sh, 0, sizeof(*sh));
	sh->workers = 1 + (unsigned)(dt_rng(&rng) % 3);
	sh->skip = dt_rng(&rng) % 4 != 0;
	sh->dst_zero = dt_rng(&rng) % 2;
	calibrate(sh, sg, dg);
	c = counts[shape_index(sh)];
	for (uint32_t k = 0; k < RDMIG__LOOP_WR_CLASSES; k++)
		if (c[k])
			classes[n++] = k;
	memset(f, 0, sizeof(*f));
	f->wr_class = classes[dt_rng(&rng) % n];
	/* Now and then past the end: a fault that never comes must not hurt. */
	f->nth = 1 + dt_rng(&rng) % c[f->wr_class];
	if (dt_rng(&rng) % 32 == 0)
		f->nth = c[f->wr_class] + 1 + dt_rng(&rng) % 2;
	if (f->wr_class & RDMIG__LOOP_WR_WRITE)
		f->kind = write_kinds[dt_rng(&rng) % RDMIG__ARRAY_SIZE(write_kinds)];
	else
		f->kind = (enum rdmig__loop_fault_kind)(1 + dt_rng(&rng) % 7);
	/* Short delays are survived, long ones outlast RDMIG_TIMEOUT_MS. */
	f->delay_ms = (uint32_t)(dt_rng(&rng) % (2 * TIMEOUT_MS));
	/* One seed in 50: the VMM stalls instead (3.5 s each). */
	sh->stall = dt_rng(&rng) % 50 == 0;
	if (sh->stall)
		f->kind = RDMIG__LOOP_FAULT_NONE;
}

/* --- the test ------------------------------------------------------------------------ */

struct tally {
	unsigned completed, failed, late_complete, not_fired;
	uint64_t worst_src_ms, worst_dst_ms;
};

/* How a run ended. */
enum ending {
	END_COMPLETED,	   /* both sides, exact image */
	END_FAILED,	   /* both sides, within the bound */
	END_LATE_COMPLETE, /* the destination completed, the source failed in complete */
};

/* Describes a fault in `what`: kind, class, position, and the run's shape. */
static void describe(char *what, size_t len, const char *who, const struct shape *sh,
		     const struct rdmig__loop_fault *f, long long of)
{
	char cls[32];

	class_name(f->wr_class, cls, sizeof(cls));
	snprintf(what, len, "%s: %s on %s #%llu (of %lld), %u workers, skip %s, dst %s", who,
		 kind_names[f->kind], cls, (unsigned long long)f->nth, of, sh->workers,
		 sh->skip ? "on" : "off", sh->dst_zero ? "zero" : "garbage");
	if (f->kind == RDMIG__LOOP_FAULT_DELAY)
		snprintf(what + strlen(what), len - strlen(what), " (%u ms)", f->delay_ms);
	if (sh->stall)
		snprintf(what, len,
			 "%s: the VMM stalls %u ms after pass 1, %u workers, skip %s, "
			 "dst %s",
			 who, STALL_MS, sh->workers, sh->skip ? "on" : "off",
			 sh->dst_zero ? "zero" : "garbage");
}

/*
 * Runs a migration of the guest from `seed` with fault `f` and checks the
 * outcome (see the top of this file). Returns how it ended.
 */
static enum ending check_run(const char *what, uint64_t seed, const struct shape *sh,
			     const struct rdmig__loop_fault *f, struct dt_guest *sg,
			     struct dt_guest *dg, const struct held *base, struct tally *t)
{
	struct rdmig__loop_fault_state st;
	struct outcome out;
	struct held now;
	uint64_t src_ms = 0, dst_ms = 0;
	enum ending end = END_FAILED;
	unsigned r;
	int64_t diff;

	printf("%s\n", what);
	fflush(stdout);
	alarm(WATCHDOG); /* a hang kills the test, after the line above named the seed */
	migrate(sh, seed, f, sg, dg, &out);
	alarm(0);
	rdmig__loopback_fault_state(&st);
	rdmig__loopback_set_fault(NULL);

	if (out.stall_ns) {
		/* The destination's wait began before the stall; the source's
		 * when its VMM called again. */
		st.fired = true;
		st.fired_ns = out.stall_ns;
	}
	if (st.fired && out.src_ret)
		src_ms = (out.src_ns - (out.resume_ns ? out.resume_ns : st.fired_ns)) / 1000000;
	if (st.fired && out.dst_ret)
		dst_ms = (out.dst_ns - st.fired_ns) / 1000000;
	printf("  -> %s; source %d%s%s (%llu ms); destination %d%s%s (%llu ms)\n",
	       st.fired ? "fired" : "did not fire", out.src_ret, out.src_ret ? " in " : "",
	       out.src_ret ? out.src_step : "", (unsigned long long)src_ms, out.dst_ret,
	       out.dst_ret ? ": " : "", out.dst_ret ? out.dst_err : "", (unsigned long long)dst_ms);
	if (out.src_ret)
		printf("     source: %s\n", out.src_err);
	/* An error message names what failed, never a NULL string. */
	if (strstr(out.src_err, "(null)") || strstr(out.dst_err, "(null)"))
		fail_msg("%s: a message with \"(null)\" in it", what);

	/* Nothing is left behind, whatever happened. A joined thread may
	 * linger in /proc/self/task a moment after pthread_join() returns (the
	 * kernel reaps it after it woke the joiner): give it a second. */
	held_now(&now);
	for (int ms = 0; ms < 1000 && now.threads > base->threads; ms++) {
		usleep(1000);
		held_now(&now);
	}
	if (!lb_empty(&now.lb))
		fail_msg("%s: left behind: %d channels, %d ids, %d PDs, %d MRs, %d CQs, %d QPs, "
			 "%d NIC threads, %d eventfds, %d events",
			 what, now.lb.chans, now.lb.ids, now.lb.pds, now.lb.mrs, now.lb.cqs,
			 now.lb.qps, now.lb.nics, now.lb.fds, now.lb.events);
	if (now.threads != base->threads || now.fds != base->fds)
		fail_msg("%s: %d threads and %d fds after, %d and %d before", what, now.threads,
			 now.fds, base->threads, base->fds);
	assert_int_equal(rdmig__loopback_exposed_mrs(), 0);

	diff = dt_guest_diff(sg, dg, &r);
	if (!out.src_ret && !out.dst_ret) {
		if (diff >= 0)
			fail_msg("%s: both sides completed but page %lld of region %u differs",
				 what, (long long)diff, r);
		end = END_COMPLETED;
	} else if (!st.fired) {
		fail_msg("%s: failed with no fault: source %d (%s), destination %d (%s)", what,
			 out.src_ret, out.src_err, out.dst_ret, out.dst_err);
	} else if (!out.src_ret) {
		fail_msg("%s: the source completed but the destination failed: %s", what,
			 out.dst_err);
	} else if (!out.dst_ret) {
		if (strcmp(out.src_step, "complete"))
			fail_msg("%s: the destination completed but the source failed in %s: %s",
				 what, out.src_step, out.src_err);
		if (diff >= 0)
			fail_msg("%s: the destination completed but page %lld of region %u "
				 "differs",
				 what, (long long)diff, r);
		end = END_LATE_COMPLETE;
	} else {
		/* The source never proved the key: the destination waited on. */
		bool unauth = !strcmp(out.src_step, "connect") && out.dst_ret == -ETIMEDOUT &&
			      strstr(out.dst_err, "no source authenticated");

		if (!out.src_err[0] || !out.dst_err[0])
			fail_msg("%s: an error without a message", what);
		if (unauth && !strstr(out.dst_err, "attempts refused"))
			fail_msg("%s: the destination counted no refused attempt: %s", what,
				 out.dst_err);
		if (src_ms > SRC_BOUND_MS || dst_ms > (unauth ? DST_UNAUTH_BOUND_MS : DST_BOUND_MS))
			fail_msg("%s: errors %llu ms (source) and %llu ms (destination) after the "
				 "fault, over the bounds of %u and %u ms",
				 what, (unsigned long long)src_ms, (unsigned long long)dst_ms,
				 SRC_BOUND_MS, unauth ? DST_UNAUTH_BOUND_MS : DST_BOUND_MS);
		end = END_FAILED;
	}
	t->completed += end == END_COMPLETED;
	t->failed += end == END_FAILED;
	t->late_complete += end == END_LATE_COMPLETE;
	t->not_fired += !st.fired;
	t->worst_src_ms = RDMIG__MAX(t->worst_src_ms, src_ms);
	t->worst_dst_ms = RDMIG__MAX(t->worst_dst_ms, dst_ms);
	return end;
}

static void one_seed(uint64_t seed, struct dt_guest *sg, struct dt_guest *dg,
		     const struct held *base, struct tally *t)
{
	struct rdmig__loop_fault f;
	struct shape sh;
	char who[32], what[192];

	draw(seed, &sh, &f, sg, dg);
	snprintf(who, sizeof(who), "seed %llu", (unsigned long long)seed);
	describe(what, sizeof(what), who, &sh, &f, (long long)counts[shape_index(&sh)][f.wr_class]);
	check_run(what, seed, &sh, &f, sg, dg, base, t);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

static const uint64_t guest_gpa[2] = { 0, 1ull << 32 }, guest_len[2] = { REGION, REGION };

/*
 * Faults whose ending is pinned: those that found bugs, at the point that
 * found them, and the last-message case (the seed only shapes the guest's
 * content). Points count from the end of their class (1: its last WR), so
 * that more handshake messages do not move them: passes here take less
 * than a second, so no PROGRESS is sent, and the source's last control
 * SEND is COMPLETE, the destination's COMPLETE_ACK after a PASS_ACK per
 * pass.
 */
static const struct regression {
	const char *bug;
	struct shape sh;
	struct rdmig__loop_fault f; /* nth: from the end */
	enum ending want;
} regressions[] = {
	{
		/* The destination took the copy for a protocol error after its
		 * COMPLETE_ACK was out: the source completed, the destination
		 * reported failure. */
		"a duplicated COMPLETE",
		{ .workers = 1, .skip = false, .dst_zero = true },
		{ .kind = RDMIG__LOOP_FAULT_DUP, .wr_class = 0, .nth = 1 },
		END_COMPLETED,
	},
	{
		/* Not a bug: the answer to COMPLETE is lost. The destination
		 * completed; the source cannot know and fails, keeping its
		 * guest. */
		"a lost COMPLETE_ACK",
		{ .workers = 2, .skip = true, .dst_zero = false },
		{ .kind = RDMIG__LOOP_FAULT_DROP, .wr_class = RDMIG__LOOP_WR_PASSIVE, .nth = 1 },
		END_LATE_COMPLETE,
	},
	{
		/* The destination's idle timeout ends it; the source's next
		 * pass fails at once. */
		"a VMM stall",
		{ .workers = 2, .skip = true, .dst_zero = true, .stall = true },
		{ .kind = RDMIG__LOOP_FAULT_NONE, .nth = 1 },
		END_FAILED,
	},
};

static void fault_regressions_end_as_they_must(void **state)
{
	struct dt_guest sg, dg;
	struct tally t = { 0 };
	struct held base;

	(void)state;
	dt_guest_init(&sg, 2, guest_gpa, guest_len);
	dt_guest_init(&dg, 2, guest_gpa, guest_len);
	held_now(&base);
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(regressions); i++) {
		const struct regression *rg = &regressions[i];
		struct rdmig__loop_fault f = rg->f;
		uint64_t of;
		char what[192];
		enum ending end;

		calibrate(&rg->sh, &sg, &dg);
		of = counts[shape_index(&rg->sh)][f.wr_class];
		assert_true(of >= f.nth);
		f.nth = of + 1 - f.nth;
		describe(what, sizeof(what), rg->bug, &rg->sh, &f, (long long)of);
		end = check_run(what, i + 1, &rg->sh, &f, &sg, &dg, &base, &t);
		if (end != rg->want)
			fail_msg("%s: ended as %d, not %d", what, (int)end, (int)rg->want);
	}
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

static void fault_random_seeds_exact_or_both_fail_in_bound(void **state)
{
	uint64_t seeds = env_u64("RDMIG_FAULT_SEEDS", 100), only = env_u64("RDMIG_FAULT_SEED", 0);
	uint64_t first = only ? only : 1, last = only ? only : seeds;
	uint64_t t0 = dt_now_ms();
	struct dt_guest sg, dg;
	struct tally t = { 0 };
	struct held base;

	(void)state;
	dt_guest_init(&sg, 2, guest_gpa, guest_len);
	dt_guest_init(&dg, 2, guest_gpa, guest_len);
	held_now(&base);
	assert_true(lb_empty(&base.lb));

	for (uint64_t seed = first; seed <= last; seed++)
		one_seed(seed, &sg, &dg, &base, &t);

	print_message("%llu seeds in %llu ms: %u completed, %u failed on both sides, %u "
		      "completed at the destination only (the source failed in complete), %u "
		      "faults never came; slowest errors after the fault: source %llu ms, "
		      "destination %llu ms (bounds %u and %u ms)\n",
		      (unsigned long long)(last - first + 1),
		      (unsigned long long)(dt_now_ms() - t0), t.completed, t.failed,
		      t.late_complete, t.not_fired, (unsigned long long)t.worst_src_ms,
		      (unsigned long long)t.worst_dst_ms, SRC_BOUND_MS, DST_BOUND_MS);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fault_regressions_end_as_they_must),
		cmocka_unit_test(fault_random_seeds_exact_or_both_fail_in_bound),
	};

	ip = devtest_ip();
	if (!dt_loopback()) {
		printf("SKIP: fault injection needs RDMIG_TRANSPORT=loopback\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
