/* SPDX-License-Identifier: MIT */
/*
 * rdmig-passcost: what a pass costs beyond the pages it sends (issue 14,
 * "a pass costs what is dirty"), both ends in this process.
 *
 *   rdmig-passcost [--size-gib N] [--regions R] [--dirty P] [--reps K]
 *                  [--workers W] [--list] [--fresh] [--json]
 *
 * The guest is sparse: each end maps N GiB (default 1024) with
 * MAP_NORESERVE and nothing touches a page but the P (default 10000)
 * scattered dirty pages, which the source fills with random data (an
 * untouched page reads as zero). They are drawn before connect and written
 * once then (a resident working set), or with --fresh left as holes until
 * their pass (then each pass also reads their pagemap entries: see
 * ctrl/discard.h). No pass covers the whole guest, so the
 * session is abandoned at the end, not completed; the dirty pages are
 * compared byte for byte at the destination after every pass that sent
 * them. Per repetition, interleaved:
 *
 *   read     the time to read every dirty bitmap once (N GiB / 4 KiB bits)
 *   empty    a pass over those bitmaps with nothing dirty
 *   sparse   a pass over P scattered dirty pages (new random data each time),
 *            with its scan time (per worker) and wire time
 *   list-0   (--list) a pass over empty dirty lists (rdmig_src_pass_list)
 *   list-P   (--list) the P scattered pages as a dirty list
 *
 * and reports medians: empty/read (issue 14 wants <= 2), list-0 in ms (<= 1),
 * and the sparse passes' overhead: duration - max(scan_ns / workers,
 * wire_ns), the model's per-pass overhead (<= 5 ms). Exits 1 if a migrated page differs, 2 on bad arguments. Run it
 * under a lock on a shared machine (ci/bench.sh, perf/passcost-report.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include <rdmig/rdmig.h>

#define PAGE 4096ull
#define GAP  (1ull << 40) /* guest-physical distance between regions */

struct args {
	uint64_t size_gib;
	unsigned regions, reps, workers;
	uint64_t dirty;
	bool list, json;
	bool fresh; /* dirty pages are holes until written (not resident at connect) */
};

struct region {
	uint8_t *src, *dst;
	uint64_t len, npages, words;
	uint64_t *bitmap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n ? v[n / 2] : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: rdmig-passcost [--size-gib N] [--regions R] [--dirty P] "
			"[--reps K] [--workers W] [--list] [--fresh] [--json]\n");
}

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "size-gib", required_argument, NULL, 's' },
		{ "regions", required_argument, NULL, 'r' },
		{ "dirty", required_argument, NULL, 'd' },
		{ "reps", required_argument, NULL, 'n' },
		{ "workers", required_argument, NULL, 'w' },
		{ "list", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "fresh", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	*a = (struct args){ .size_gib = 1024, .regions = 1, .reps = 7, .dirty = 10000 };
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		unsigned long long v;

		if (c == 'l') {
			a->list = true;
			continue;
		}
		if (c == 'j') {
			a->json = true;
			continue;
		}
		if (c == 'f') {
			a->fresh = true;
			continue;
		}
		if (c == 'h' || c == '?' || !optarg) {
			usage();
			return -1;
		}
		errno = 0;
		v = strtoull(optarg, &end, 10);
		if (errno || *end || end == optarg) {
			fprintf(stderr, "rdmig-passcost: bad number '%s'\n", optarg);
			return -1;
		}
		switch (c) {
		case 's':
			a->size_gib = v;
			break;
		case 'r':
			a->regions = (unsigned)v;
			break;
		case 'd':
			a->dirty = v;
			break;
		case 'n':
			a->reps = (unsigned)v;
			break;
		case 'w':
			a->workers = (unsigned)v;
			break;
		}
	}
	if (!a->size_gib || !a->regions || a->regions > 64 || !a->reps || a->reps > 1000 ||
	    a->size_gib % a->regions ||
	    (2 * (uint64_t)a->reps + 1) * a->dirty > a->size_gib * (1ull << 30) / PAGE / 2) {
		fprintf(stderr, "rdmig-passcost: size, regions (1-64, dividing the size), reps "
				"(1-1000) or dirty (times 2 reps + 1: at most half the pages) out "
				"of range\n");
		return -1;
	}
	return 0;
}

struct dst_job {
	struct rdmig_dst *dst;
	int ret;
};

static void *dst_thread(void *arg)
{
	struct dst_job *j = arg;

	j->ret = rdmig_dst_run(j->dst, NULL);
	return NULL;
}

static int fail(const char *what, int ret)
{
	fprintf(stderr, "rdmig-passcost: %s: %s (%s)\n", what, strerror(-ret), rdmig_last_error());
	return 1;
}

/* Reads every bitmap once; the sum keeps the compiler from dropping it. */
static uint64_t read_bitmaps(const struct region *r, unsigned n, uint64_t *sink)
{
	uint64_t t0 = now_ns(), acc = 0;

	for (unsigned i = 0; i < n; i++)
		for (uint64_t w = 0; w < r[i].words; w++)
			acc |= ((volatile const uint64_t *)r[i].bitmap)[w];
	*sink += acc;
	return now_ns() - t0;
}

/* A dirty page: region and page index. */
struct pick {
	unsigned region;
	uint64_t page;
};

/*
 * The pages the passes dirty, drawn at random before connect, distinct:
 * each pass takes the next `dirty` of them. Unless --fresh they are
 * written now, so that they hold frames of their own when the source
 * registers memory (a guest's working set); with --fresh they are holes
 * until their pass, and the source looks at each one's pagemap entry
 * then (ctrl/discard.h, "unsettled").
 */
static struct pick *pool;
static uint64_t pool_n, pool_next;

static int pool_make(struct region *r, unsigned n, uint64_t count, bool touch)
{
	pool = calloc(count ? count : 1, sizeof(*pool));
	if (!pool)
		return -1;
	for (pool_n = 0; pool_n < count;) {
		unsigned ri = (unsigned)(rng() % n);
		uint64_t pg = rng() % r[ri].npages;

		if (r[ri].bitmap[pg / 64] >> (pg % 64) & 1)
			continue;
		r[ri].bitmap[pg / 64] |= 1ull << (pg % 64);
		pool[pool_n++] = (struct pick){ ri, pg };
	}
	for (uint64_t k = 0; k < pool_n; k++) {
		r[pool[k].region].bitmap[pool[k].page / 64] = 0;
		if (touch)
			r[pool[k].region].src[pool[k].page * PAGE] = 1;
	}
	return 0;
}

static void pick_pages(struct region *r, unsigned n, struct pick *p, uint64_t count)
{
	(void)n;
	for (uint64_t k = 0; k < count; k++) {
		p[k] = pool[pool_next++ % pool_n];
		r[p[k].region].bitmap[p[k].page / 64] |= 1ull << (p[k].page % 64);
	}
}

static void fill_pages(struct region *r, const struct pick *p, uint64_t count)
{
	for (uint64_t k = 0; k < count; k++) {
		uint64_t *q = (uint64_t *)(r[p[k].region].src + p[k].page * PAGE);

		for (unsigned i = 0; i < PAGE / 8; i++)
			q[i] = rng();
	}
}

static void clear_bits(struct region *r, const struct pick *p, uint64_t count)
{
	for (uint64_t k = 0; k < count; k++)
		r[p[k].region].bitmap[p[k].page / 64] = 0;
}

static int check_pages(const struct region *r, const struct pick *p, uint64_t count)
{
	for (uint64_t k = 0; k < count; k++) {
		uint64_t off = p[k].page * PAGE;

		if (memcmp(r[p[k].region].src + off, r[p[k].region].dst + off, PAGE)) {
			fprintf(stderr,
				"rdmig-passcost: page %" PRIu64 " of region %u differs at the "
				"destination\n",
				p[k].page, p[k].region);
			return 1;
		}
	}
	return 0;
}

static int do_pass(struct rdmig_src *src, const struct rdmig_dirty *d, unsigned n,
		   struct rdmig_pass_stats *st)
{
	int ret;

	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	if ((ret = rdmig_src_pass(src, d, n, 0, st)))
		return fail("rdmig_src_pass", ret);
	return 0;
}

#ifndef RDMIG_PASSCOST_NO_LIST
static int do_list(struct rdmig_src *src, struct rdmig_dirty_list *l, unsigned n,
		   struct rdmig_pass_stats *st)
{
	int ret;

	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	if ((ret = rdmig_src_pass_list(src, l, n, 0, st)))
		return fail("rdmig_src_pass_list", ret);
	return 0;
}
#endif

/*
 * The pass's duration less its slower stage, the scan (per worker) or the
 * wire, as DESIGN.md's model has it (t_pass = max(scan, wire) + overhead):
 * what the pass cost beyond its pages.
 */
static uint64_t overhead(const struct rdmig_pass_stats *st)
{
	uint64_t scan = st->scan_ns / (st->workers ? st->workers : 1);
	uint64_t work = scan > st->wire_ns ? scan : st->wire_ns;

	return st->duration_ns > work ? st->duration_ns - work : 0;
}

int main(int argc, char **argv)
{
	struct region reg[64];
	struct rdmig_dirty dirty[64];
	struct rdmig_opts o;
	uint8_t key[32];
	struct rdmig_src *src = NULL;
	struct dst_job j = { 0 };
	struct pick *picks = NULL;
	uint64_t *t_read, *t_empty, *t_sparse, *o_sparse, *t_list0, *t_list, *o_list, sink = 0;
	struct rdmig_pass_stats st;
	pthread_t thr;
	char port[16];
	uint64_t rlen;
	int ret, rc = 1;
	struct args a;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse(argc, argv, &a))
		return 2;
#ifdef RDMIG_PASSCOST_NO_LIST
	if (a.list) {
		fprintf(stderr, "rdmig-passcost: --list: this rdmig has no dirty lists\n");
		return 2;
	}
#endif
	setenv("RDMIG_TRANSPORT", "loopback", 1);
	rlen = a.size_gib * (1ull << 30) / a.regions;
	memset(reg, 0, sizeof(reg));
	t_read = calloc(7 * (size_t)a.reps, sizeof(uint64_t));
	picks = calloc(a.dirty ? a.dirty : 1, sizeof(*picks));
	if (!t_read || !picks)
		return fail("calloc", -ENOMEM);
	t_empty = t_read + a.reps;
	t_sparse = t_empty + a.reps;
	o_sparse = t_sparse + a.reps;
	t_list0 = o_sparse + a.reps;
	t_list = t_list0 + a.reps;
	o_list = t_list + a.reps;
	for (unsigned i = 0; i < a.regions; i++) {
		struct region *r = &reg[i];
		int fl = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

		r->len = rlen;
		r->npages = rlen / PAGE;
		r->words = (r->npages + 63) / 64;
		r->src = mmap(NULL, rlen, PROT_READ | PROT_WRITE, fl, -1, 0);
		r->dst = mmap(NULL, rlen, PROT_READ | PROT_WRITE, fl, -1, 0);
		r->bitmap = calloc(r->words, sizeof(uint64_t));
		if (r->src == MAP_FAILED || r->dst == MAP_FAILED || !r->bitmap)
			return fail("mapping the guest", -ENOMEM);
		/* The bitmaps are the VMM's, resident like a real dirty log. */
		memset(r->bitmap, 0, r->words * sizeof(uint64_t));
		dirty[i] = (struct rdmig_dirty){ .bitmap = r->bitmap, .words = r->words };
	}

	/* Two sets of pages per repetition (bitmaps, lists), each used once. */
	if (pool_make(reg, a.regions, (2 * (uint64_t)a.reps + 1) * a.dirty, !a.fresh))
		return fail("calloc", -ENOMEM);
	rdmig_opts_init(&o);
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key))
		return fail("getrandom", -errno);
	o.psk = key;
	o.psk_len = sizeof(key);
	o.accept_timeout_ms = 60000;
	if (a.workers)
		o.workers = a.workers;
	if ((ret = rdmig_dst_create(&o, &j.dst)))
		return fail("rdmig_dst_create", ret);
	for (unsigned i = 0; i < a.regions; i++)
		if ((ret = rdmig_dst_add_region(j.dst, i * GAP, reg[i].dst, rlen,
						RDMIG_REGION_ZERO_FILLED)) < 0)
			return fail("rdmig_dst_add_region", ret);
	if ((ret = rdmig_dst_listen(j.dst, "127.0.0.1", "0")) < 0)
		return fail("rdmig_dst_listen", ret);
	snprintf(port, sizeof(port), "%d", ret);
	pthread_create(&thr, NULL, dst_thread, &j);
	if ((ret = rdmig_src_create(&o, &src))) {
		fail("rdmig_src_create", ret);
		goto out;
	}
	for (unsigned i = 0; i < a.regions; i++)
		if ((ret = rdmig_src_add_region(src, i * GAP, reg[i].src, rlen)) < 0) {
			fail("rdmig_src_add_region", ret);
			goto out;
		}
	if ((ret = rdmig_src_connect(src, "127.0.0.1", port))) {
		fail("rdmig_src_connect", ret);
		goto out;
	}
	/* One pass of each kind first: the first touches state the others reuse. */
	if (do_pass(src, dirty, a.regions, &st))
		goto out;

	for (unsigned k = 0; k < a.reps; k++) {
		t_read[k] = read_bitmaps(reg, a.regions, &sink);
		if (do_pass(src, dirty, a.regions, &st))
			goto out;
		t_empty[k] = st.duration_ns;

		pick_pages(reg, a.regions, picks, a.dirty);
		fill_pages(reg, picks, a.dirty);
		if (do_pass(src, dirty, a.regions, &st))
			goto out;
		clear_bits(reg, picks, a.dirty);
		if (st.dirty_pages != a.dirty || check_pages(reg, picks, a.dirty)) {
			fprintf(stderr,
				"rdmig-passcost: pass saw %" PRIu64 " of %" PRIu64 " dirty\n",
				st.dirty_pages, a.dirty);
			goto out;
		}
		t_sparse[k] = st.duration_ns;
		o_sparse[k] = overhead(&st);
#ifndef RDMIG_PASSCOST_NO_LIST
		if (a.list) {
			struct rdmig_dirty_list l[64];
			uint64_t *offs = malloc(a.dirty * sizeof(uint64_t) + 8), *p = offs;

			if (!offs)
				goto out;
			memset(l, 0, sizeof(l));
			if (do_list(src, l, a.regions, &st)) {
				free(offs);
				goto out;
			}
			t_list0[k] = st.duration_ns;
			pick_pages(reg, a.regions, picks, a.dirty);
			fill_pages(reg, picks, a.dirty);
			clear_bits(reg, picks, a.dirty);
			/* As a dirty ring hands them: in no order, per region. */
			for (unsigned i = 0; i < a.regions; i++) {
				l[i].pages = p;
				for (uint64_t q = 0; q < a.dirty; q++)
					if (picks[q].region == i)
						*p++ = picks[q].page;
				l[i].count = (size_t)(p - l[i].pages);
			}
			ret = do_list(src, l, a.regions, &st);
			free(offs);
			if (ret || st.dirty_pages != a.dirty || check_pages(reg, picks, a.dirty))
				goto out;
			t_list[k] = st.duration_ns;
			o_list[k] = overhead(&st);
		}
#endif
	}
	{
		uint64_t mr = median(t_read, a.reps), me = median(t_empty, a.reps);
		uint64_t ms = median(t_sparse, a.reps), mo = median(o_sparse, a.reps);
		uint64_t ml0 = median(t_list0, a.reps), ml = median(t_list, a.reps);
		uint64_t mlo = median(o_list, a.reps);

		if (a.json)
			printf("{\"guest_gib\":%" PRIu64 ",\"regions\":%u,\"dirty\":%" PRIu64
			       ",\"reps\":%u,\"read_ns\":%" PRIu64 ",\"empty_ns\":%" PRIu64
			       ",\"empty_over_read\":%.3f,\"sparse_ns\":%" PRIu64
			       ",\"sparse_overhead_ns\":%" PRIu64 ",\"list0_ns\":%" PRIu64
			       ",\"list_ns\":%" PRIu64 ",\"list_overhead_ns\":%" PRIu64 "}\n",
			       a.size_gib, a.regions, a.dirty, a.reps, mr, me,
			       mr ? (double)me / (double)mr : 0, ms, mo, ml0, ml, mlo);
		else {
			printf("guest %" PRIu64 " GiB in %u regions, %" PRIu64
			       " scattered dirty pages, medians of %u\n",
			       a.size_gib, a.regions, a.dirty, a.reps);
			printf("  read the bitmaps once   %9.3f ms\n", (double)mr / 1e6);
			printf("  empty pass (bitmaps)    %9.3f ms  = %.2f x the read\n",
			       (double)me / 1e6, mr ? (double)me / (double)mr : 0);
			printf("  sparse pass (bitmaps)   %9.3f ms, overhead %.3f ms\n",
			       (double)ms / 1e6, (double)mo / 1e6);
			if (a.list) {
				printf("  empty pass (list)       %9.3f ms\n", (double)ml0 / 1e6);
				printf("  sparse pass (list)      %9.3f ms, overhead %.3f ms\n",
				       (double)ml / 1e6, (double)mlo / 1e6);
			}
		}
	}
	rc = 0;
out:
	/* Abandoned, not completed: no pass covered the whole guest. */
	rdmig_src_destroy(src);
	pthread_join(thr, NULL);
	rdmig_dst_destroy(j.dst);
	for (unsigned i = 0; i < a.regions; i++) {
		munmap(reg[i].src, rlen);
		munmap(reg[i].dst, rlen);
		free(reg[i].bitmap);
	}
	free(picks);
	free(pool);
	free(t_read);
	return rc;
}
