/* SPDX-License-Identifier: MIT */
/*
 * Tests of rdmig-perf's kernel dirty log (perf/dirtylog.c), for the method
 * named by the first argument (soft-dirty or pagemap-scan); exits 77
 * (skipped) where this kernel lacks it, unless RDMIG_DIRTYLOG_REQUIRE names
 * it (CI on a kernel that has it: a skip there would hide a broken probe).
 *
 *   dirtylog_test METHOD              the tests
 *   dirtylog_test METHOD --probe      exits 0 if this kernel has METHOD, else 77
 *   dirtylog_test METHOD --bench MIB  the cost of a sync per GiB scanned
 *
 * Known pages are written (a page's first and last byte, pages at word
 * boundaries, a rewrite of the bytes a page holds, a page written by the
 * kernel through read(2)) and a sync must report exactly those, and the
 * next one none; reads report nothing; and a writer that keeps storing
 * while syncs run (stopped for each sync where the method needs that)
 * loses no store: copying the pages each sync reports, as a pass would,
 * leaves a copy equal to the memory.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "perf/dirtylog.h"

#define PG DIRTYLOG_PAGE

static enum dirtylog_method method;

/* Two ranges that end mid-word in the bitmap: 67 and 130 pages. */
static const uint64_t range_pages[2] = { 67, 130 };

struct fixture {
	struct dirtylog d;
	struct dirtylog_range r[2];
	uint64_t *bm[2], *want[2];
};

static uint64_t words(uint64_t pages)
{
	return (pages + 63) / 64;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];
	int ret;

	assert_non_null(f);
	for (unsigned i = 0; i < 2; i++) {
		f->r[i].len = range_pages[i] * PG;
		f->r[i].hva =
			mmap(NULL, f->r[i].len, PROT_READ | PROT_WRITE,
			     dirtylog_mmap_flags(method) | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		assert_true(f->r[i].hva != MAP_FAILED);
		/* 4 KiB granularity, as KVM logs while dirty logging is on. */
		madvise(f->r[i].hva, f->r[i].len, MADV_NOHUGEPAGE);
		memset(f->r[i].hva, 0x5a, f->r[i].len);
		f->bm[i] = calloc(words(range_pages[i]), 8);
		f->want[i] = calloc(words(range_pages[i]), 8);
		assert_non_null(f->bm[i]);
		assert_non_null(f->want[i]);
	}
	ret = dirtylog_open(&f->d, method, 2, f->r, err, sizeof(err));
	if (ret)
		print_error("dirtylog_open: %s\n", err);
	assert_int_equal(ret, 0);
	assert_int_equal(f->d.method, method);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dirtylog_close(&f->d);
	for (unsigned i = 0; i < 2; i++) {
		munmap(f->r[i].hva, f->r[i].len);
		free(f->bm[i]);
		free(f->want[i]);
	}
	free(f);
	return 0;
}

static void want_page(struct fixture *f, unsigned i, uint64_t p)
{
	f->want[i][p / 64] |= 1ull << (p % 64);
}

/* Syncs and checks that exactly the pages in want were reported; clears both. */
static void sync_expect(struct fixture *f)
{
	uint64_t found = 0, nwant = 0;
	char err[512];
	int ret;

	for (unsigned i = 0; i < 2; i++)
		memset(f->bm[i], 0, words(range_pages[i]) * 8);
	ret = dirtylog_sync(&f->d, f->bm, &found, err, sizeof(err));
	if (ret)
		print_error("dirtylog_sync: %s\n", err);
	assert_int_equal(ret, 0);
	for (unsigned i = 0; i < 2; i++)
		for (uint64_t p = 0; p < range_pages[i]; p++) {
			bool got = f->bm[i][p / 64] >> (p % 64) & 1;
			bool exp = f->want[i][p / 64] >> (p % 64) & 1;

			if (got != exp)
				print_error("range %u page %" PRIu64 ": %s\n", i, p,
					    exp ? "written, not reported"
						: "reported, not written");
			assert_int_equal(got, exp);
			nwant += exp;
		}
	for (unsigned i = 0; i < 2; i++) /* nothing past the range's last page */
		assert_int_equal(f->bm[i][words(range_pages[i]) - 1] &
					 ~f->want[i][words(range_pages[i]) - 1],
				 0);
	assert_int_equal(found, nwant);
	for (unsigned i = 0; i < 2; i++)
		memset(f->want[i], 0, words(range_pages[i]) * 8);
}

static void test_known_pages(void **state)
{
	struct fixture *f = *state;
	volatile uint8_t *a = f->r[0].hva, *b = f->r[1].hva;

	sync_expect(f); /* nothing since open */

	a[0] = 1; /* the first byte of the first page */
	want_page(f, 0, 0);
	a[1 * PG + PG - 1] = 2; /* the last byte of page 1 */
	want_page(f, 0, 1);
	a[63 * PG] = 3; /* both sides of a bitmap word boundary */
	a[63 * PG + 8] = 4;
	want_page(f, 0, 63);
	a[64 * PG] = 5;
	want_page(f, 0, 64);
	a[66 * PG + 100] = a[66 * PG + 100]; /* the bytes it holds: still a store */
	want_page(f, 0, 66);
	b[0] = 6;
	want_page(f, 1, 0);
	memset(f->r[1].hva + 65 * PG, 0, PG);
	want_page(f, 1, 65);
	b[129 * PG + PG - 8] = 7; /* the last page of the last range */
	want_page(f, 1, 129);
	sync_expect(f);
	sync_expect(f); /* and nothing again */

	/* A page reported before, and its neighbour, written again. */
	a[1 * PG] = 8;
	want_page(f, 0, 1);
	a[2 * PG] = 9;
	want_page(f, 0, 2);
	sync_expect(f);
}

static void test_reads_are_clean(void **state)
{
	struct fixture *f = *state;
	uint64_t sum = 0;

	sync_expect(f);
	for (unsigned i = 0; i < 2; i++)
		for (uint64_t off = 0; off < f->r[i].len; off += 64)
			sum += *(volatile uint8_t *)(f->r[i].hva + off);
	assert_true(sum > 0);
	sync_expect(f);
}

/* A store by the kernel (read(2) into the page, as vhost writes guest RAM). */
static void test_kernel_store(void **state)
{
	struct fixture *f = *state;
	int fds[2];

	sync_expect(f);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "kernel", 6), 6);
	assert_int_equal(read(fds[0], f->r[1].hva + 40 * PG + 17, 6), 6);
	close(fds[0]);
	close(fds[1]);
	want_page(f, 1, 40);
	sync_expect(f);
}

/* --- a writer storing while syncs run ---------------------------------- */

struct racer {
	struct fixture *f;
	pthread_mutex_t
		lock; /* held around each batch: a sync that needs the writer stopped takes it */
	volatile bool stop;
	uint64_t stores;
};

static void *racer_thread(void *arg)
{
	struct racer *r = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	while (!r->stop) {
		pthread_mutex_lock(&r->lock);
		for (unsigned k = 0; k < 64; k++) {
			unsigned i;
			uint64_t p;

			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			i = (unsigned)(rng & 1);
			p = (rng >> 1) % range_pages[i];
			/* A new value every time: a lost store leaves the copy stale. */
			((volatile uint64_t *)(r->f->r[i].hva + p * PG))[(rng >> 20) % (PG / 8)] =
				++r->stores;
		}
		pthread_mutex_unlock(&r->lock);
	}
	return NULL;
}

/*
 * Copies each page a sync reports into a shadow, as a pass sends the dirty
 * pages, while the writer runs; after the writer stopped, one more sync and
 * copy must leave the shadow equal to the memory: no store lost between a
 * sync's look at a page and its restart of the log.
 */
static void test_concurrent_writer(void **state)
{
	struct fixture *f = *state;
	bool stop_for_sync = !dirtylog_atomic(&f->d);
	struct racer r = { .f = f };
	uint8_t *shadow[2];
	pthread_t t;
	char err[512];

	for (unsigned i = 0; i < 2; i++) {
		shadow[i] = malloc(f->r[i].len);
		assert_non_null(shadow[i]);
		memcpy(shadow[i], f->r[i].hva, f->r[i].len);
		memset(f->bm[i], 0, words(range_pages[i]) * 8);
	}
	assert_int_equal(dirtylog_sync(&f->d, f->bm, NULL, err, sizeof(err)), 0);
	pthread_mutex_init(&r.lock, NULL);
	assert_int_equal(pthread_create(&t, NULL, racer_thread, &r), 0);
	for (unsigned round = 0; round <= 200; round++) {
		int ret;

		if (round == 200) {
			r.stop = true;
			pthread_join(t, NULL);
		}
		for (unsigned i = 0; i < 2; i++)
			memset(f->bm[i], 0, words(range_pages[i]) * 8);
		if (stop_for_sync)
			pthread_mutex_lock(&r.lock);
		ret = dirtylog_sync(&f->d, f->bm, NULL, err, sizeof(err));
		if (stop_for_sync)
			pthread_mutex_unlock(&r.lock);
		if (ret)
			print_error("dirtylog_sync: %s\n", err);
		assert_int_equal(ret, 0);
		for (unsigned i = 0; i < 2; i++)
			for (uint64_t p = 0; p < range_pages[i]; p++)
				if (f->bm[i][p / 64] >> (p % 64) & 1)
					memcpy(shadow[i] + p * PG, f->r[i].hva + p * PG, PG);
		if (round % 8 == 0)
			usleep(200);
	}
	assert_true(r.stores > 0);
	for (unsigned i = 0; i < 2; i++) {
		for (uint64_t p = 0; p < range_pages[i]; p++)
			if (memcmp(shadow[i] + p * PG, f->r[i].hva + p * PG, PG))
				print_error("range %u page %" PRIu64 ": a store never reported\n",
					    i, p);
		assert_memory_equal(shadow[i], f->r[i].hva, f->r[i].len);
		free(shadow[i]);
	}
	pthread_mutex_destroy(&r.lock);
}

/* --- the cost of a sync ------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Syncs over a MIB-sized guest with 0%, 1%, 10% and 100% of its pages
 * written since the last sync (the median of 5 each), in ms per GiB
 * scanned; and what the first store to a page costs after a sync (the
 * fault that restarts its logging) beside a store to a page already
 * written.
 */
static int bench(uint64_t mib)
{
	static const unsigned pct[] = { 0, 1, 10, 100 };
	uint64_t len = mib << 20, pages = len / PG, *bm;
	struct dirtylog_range r;
	struct dirtylog d;
	char err[512];
	double gib = (double)len / (1 << 30);

	r.len = len;
	r.hva = mmap(NULL, len, PROT_READ | PROT_WRITE, dirtylog_mmap_flags(method) | MAP_ANONYMOUS,
		     -1, 0);
	if (r.hva == MAP_FAILED || !(bm = calloc(words(pages), 8))) {
		fprintf(stderr, "dirtylog_test: cannot map %" PRIu64 " MiB\n", mib);
		return 1;
	}
	madvise(r.hva, len, MADV_NOHUGEPAGE);
	memset(r.hva, 1, len);
	if (dirtylog_open(&d, method, 1, &r, err, sizeof(err))) {
		fprintf(stderr, "dirtylog_test: %s\n", err);
		return 1;
	}
	printf("%s over %" PRIu64 " MiB (%" PRIu64 " pages):\n", dirtylog_name(method), mib, pages);
	for (unsigned k = 0; k < sizeof(pct) / sizeof(pct[0]); k++) {
		double t[5], fault = 0, plain = 0;
		uint64_t step = pct[k] ? 100 / pct[k] : 0, n = 0, found = 0;

		for (unsigned run = 0; run < 5; run++) {
			double t0;

			n = 0;
			t0 = now_s();
			for (uint64_t p = 0; step && p < pages; p += step, n++)
				r.hva[p * PG + run] = (uint8_t)run; /* first store since the sync */
			fault += now_s() - t0;
			t0 = now_s();
			for (uint64_t p = 0; step && p < pages; p += step)
				r.hva[p * PG + run + 8] = (uint8_t)run; /* and a second */
			plain += now_s() - t0;
			memset(bm, 0, words(pages) * 8);
			t0 = now_s();
			if (dirtylog_sync(&d, &bm, &found, err, sizeof(err))) {
				fprintf(stderr, "dirtylog_test: %s\n", err);
				return 1;
			}
			t[run] = now_s() - t0;
			if (found != n) {
				fprintf(stderr,
					"dirtylog_test: %" PRIu64 " pages written, %" PRIu64
					" reported\n",
					n, found);
				return 1;
			}
		}
		for (unsigned i = 0; i < 5; i++) /* sort, for the median */
			for (unsigned j = i + 1; j < 5; j++)
				if (t[j] < t[i]) {
					double x = t[i];

					t[i] = t[j];
					t[j] = x;
				}
		printf("  %3u%% written: sync %8.2f ms per GiB scanned (min %.2f, max %.2f)",
		       pct[k], t[2] * 1e3 / gib, t[0] * 1e3 / gib, t[4] * 1e3 / gib);
		if (n)
			printf("; first store after a sync %.0f ns, a second %.0f ns",
			       fault / 5 / (double)n * 1e9, plain / 5 / (double)n * 1e9);
		printf("\n");
	}
	dirtylog_close(&d);
	munmap(r.hva, len);
	free(bm);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_known_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_are_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writer, setup, teardown),
	};
	const char *req = getenv("RDMIG_DIRTYLOG_REQUIRE");
	struct dirtylog probe;
	struct dirtylog_range r;
	char err[512];
	uint8_t *p;
	int ret;

	if (argc < 2 || dirtylog_parse(argv[1], &method) || method == DIRTYLOG_WRITER ||
	    method == DIRTYLOG_AUTO) {
		fprintf(stderr,
			"usage: dirtylog_test soft-dirty|pagemap-scan [--probe | --bench MIB]\n");
		return 2;
	}
	/* Does this kernel have it? (open tries it on a scratch mapping) */
	p = mmap(NULL, PG, PROT_READ | PROT_WRITE, dirtylog_mmap_flags(method) | MAP_ANONYMOUS, -1,
		 0);
	assert_true(p != MAP_FAILED);
	r.hva = p;
	r.len = PG;
	ret = dirtylog_open(&probe, method, 1, &r, err, sizeof(err));
	dirtylog_close(&probe);
	munmap(p, PG);
	if (ret == -ENOTSUP && !(req && !strcmp(req, argv[1]))) {
		printf("dirtylog_test: skipped, %s\n", err);
		return 77;
	}
	if (ret) {
		fprintf(stderr, "dirtylog_test: %s\n", err);
		return 1;
	}
	if (argc == 3 && !strcmp(argv[2], "--probe"))
		return 0;
	if (argc == 4 && !strcmp(argv[2], "--bench"))
		return bench(strtoull(argv[3], NULL, 0));
	return cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
}
