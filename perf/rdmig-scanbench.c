/* SPDX-License-Identifier: MIT */
/*
 * rdmig-scanbench: how fast the page scanner (dataplane/scan.h) classifies
 * and hashes memory, next to how fast this machine can merely read it.
 *
 * For each data kind (zero, random, mixed 50/50, optionally "tail": zero
 * pages but for their last byte, the early exit's worst case), each thread
 * count and each ISA, it times the scanner over a large buffer and, in the
 * same run, over the same buffer and with the same threads, a raw read loop
 * (wide loads OR-accumulated into a value that is kept, so the compiler
 * cannot drop them). Repetitions alternate the two, and the medians are
 * compared: the scanner is at the machine's limit when its rate is close to
 * the raw rate (goal: >= 0.85 on data pages, >= 0.95 on zero pages).
 * "raw" is the fastest of the AVX-512 and AVX2 read loops (which one wins
 * varies by machine; "by" names it), "ratio" the scanner against it;
 * "raw(isa)" and "ratio/isa" use the read loop of the scanner's own ISA
 * (plain 64-bit loads for the portable one).
 *
 * With 4 KiB mappings every page costs a TLB miss that a hashing scanner
 * overlaps less well than a plain read loop; --thp backs the buffer with
 * transparent huge pages, as VMMs usually back guest memory.
 *
 * Every page is written before timing (faulted in, never the shared zero
 * page). Threads split the buffer into contiguous slices; a run's time is
 * from their common start to the last one's end.
 */
#define _GNU_SOURCE /* CPU_SET, pthread_setaffinity_np */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "common/util.h"
#include "dataplane/scan.h"

#define MAX_THREADS 256
#define MAX_REPS    101
#define MAX_BATCH   4096

enum kind {
	K_ZERO,
	K_RANDOM,
	K_MIXED,
	K_TAIL,
	K_COUNT
};
static const char *const kind_names[K_COUNT] = { "zero", "random", "mixed", "tail" };

/* What to run: from the command line. */
static struct {
	size_t size, page_size, batch;
	unsigned kinds, isas; /* masks: 1u << enum kind, 1u << enum rdmig_simd */
	unsigned threads[16], nthreads;
	unsigned reps;
	bool thp, json, pin;
} opt = { .size = 1ull << 30, .page_size = 4096, .batch = 256, .reps = 5 };

static uint8_t *buf;
static size_t npages;
static unsigned loops;	   /* passes over the buffer per timed run: small buffers repeat */
static size_t expect_data; /* data pages in the buffer, to check the scanner's count */
static struct rdmig__scan_key key;
static int cpus[MAX_THREADS];
static unsigned ncpus;
static volatile uint64_t sink; /* keeps every result alive */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- raw read loops ------------------------------------------------------------ */

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t raw_avx512(const uint8_t *p, size_t len)
{
	__m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;

	for (size_t i = 0; i < len; i += 256) {
		a = _mm512_or_si512(a, _mm512_loadu_si512((const void *)(p + i)));
		b = _mm512_or_si512(b, _mm512_loadu_si512((const void *)(p + i + 64)));
		c = _mm512_or_si512(c, _mm512_loadu_si512((const void *)(p + i + 128)));
		d = _mm512_or_si512(d, _mm512_loadu_si512((const void *)(p + i + 192)));
	}
	a = _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d));
	return (uint64_t)_mm512_reduce_or_epi64(a);
}

__attribute__((target("avx2"))) static uint64_t raw_avx2(const uint8_t *p, size_t len)
{
	__m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;

	for (size_t i = 0; i < len; i += 128) {
		a = _mm256_or_si256(a, _mm256_loadu_si256((const __m256i *)(const void *)(p + i)));
		b = _mm256_or_si256(
			b, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32)));
		c = _mm256_or_si256(
			c, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 64)));
		d = _mm256_or_si256(
			d, _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 96)));
	}
	a = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
	return (uint64_t)(_mm256_extract_epi64(a, 0) | _mm256_extract_epi64(a, 1) |
			  _mm256_extract_epi64(a, 2) | _mm256_extract_epi64(a, 3));
}
#endif

/* Plain 64-bit loads, as the portable scanner's zero check does them. */
static uint64_t raw_scalar(const uint8_t *p, size_t len)
{
	uint64_t a[8] = { 0 };

	for (size_t i = 0; i < len; i += 64) {
		for (unsigned j = 0; j < 8; j++) {
			uint64_t v;

			memcpy(&v, p + i + 8 * j, 8);
			a[j] |= v;
		}
	}
	return a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7];
}

static uint64_t raw_read(uint32_t simd, const uint8_t *p, size_t len)
{
	switch (simd) {
#if defined(__x86_64__)
	case RDMIG_SIMD_AVX512:
		return raw_avx512(p, len);
	case RDMIG_SIMD_AVX2:
		return raw_avx2(p, len);
#endif
	default:
		return raw_scalar(p, len);
	}
}

/* --- threads ------------------------------------------------------------------- */

struct job {
	bool scan; /* else raw read */
	const struct rdmig__scanner *scanner;
	uint32_t simd;
	unsigned nthreads;
	pthread_barrier_t start;
};

struct worker {
	pthread_t tid;
	struct job *job;
	unsigned index;
	size_t ndata;
	double end;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct job *j = w->job;
	size_t first = npages * w->index / j->nthreads;
	size_t last = npages * (w->index + 1) / j->nthreads;
	const uint8_t *start = buf + first * opt.page_size;
	uint64_t acc = 0;
	uint8_t kinds[MAX_BATCH];
	struct rdmig__hash hashes[MAX_BATCH];

	if (opt.pin && ncpus) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpus[w->index % ncpus], &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	w->ndata = 0;
	pthread_barrier_wait(&j->start);
	for (unsigned l = 0; l < loops; l++) {
		const uint8_t *p = start;

		if (!j->scan) {
			acc += raw_read(j->simd, p, (last - first) * opt.page_size);
			continue;
		}
		if (opt.batch == 1) {
			for (size_t i = first; i < last; i++, p += opt.page_size) {
				struct rdmig__hash h;

				if (rdmig__scan_page(j->scanner, &key, p, opt.page_size, &h) ==
				    RDMIG__PAGE_DATA) {
					acc ^= h.lo ^ h.hi;
					w->ndata++;
				}
			}
			continue;
		}
		for (size_t i = first; i < last; i += opt.batch) {
			size_t n = RDMIG__MIN(opt.batch, last - i);

			w->ndata += rdmig__scan_pages(j->scanner, &key, p, opt.page_size, n, NULL,
						      0, kinds, hashes);
			for (size_t m = 0; m < n; m++)
				if (kinds[m] == RDMIG__PAGE_DATA)
					acc ^= hashes[m].lo ^ hashes[m].hi;
			p += n * opt.page_size;
		}
	}
	w->end = now_s();
	sink ^= acc;
	return NULL;
}

/* One timed pass over the whole buffer; returns seconds. */
static double run_once(bool scan, const struct rdmig__scanner *s, uint32_t simd, unsigned nthreads)
{
	static struct worker w[MAX_THREADS];
	struct job j = { .scan = scan, .scanner = s, .simd = simd, .nthreads = nthreads };
	size_t ndata = 0;
	double t0, end = 0;

	pthread_barrier_init(&j.start, NULL, nthreads + 1);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .job = &j, .index = i };
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i])) {
			fprintf(stderr, "rdmig-scanbench: pthread_create failed\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&j.start);
	t0 = now_s();
	for (unsigned i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		end = RDMIG__MAX(end, w[i].end);
		ndata += w[i].ndata;
	}
	pthread_barrier_destroy(&j.start);
	if (scan && ndata != expect_data * loops) {
		fprintf(stderr, "rdmig-scanbench: %s scanner found %zu data pages, expected %zu\n",
			rdmig__simd_name(simd), ndata, expect_data * loops);
		exit(1);
	}
	return end - t0;
}

/* --- buffer -------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_page_random(uint8_t *p, uint64_t seed)
{
	for (size_t i = 0; i < opt.page_size; i += 8) {
		uint64_t v = splitmix(&seed);

		memcpy(p + i, &v, 8);
	}
}

/* Writes every page of the buffer (so each is faulted in) with `kind` data. */
static void fill(enum kind kind)
{
	uint64_t coin = 12345;

	expect_data = 0;
	for (size_t i = 0; i < npages; i++) {
		uint8_t *p = buf + i * opt.page_size;
		bool data;

		switch (kind) {
		case K_ZERO:
			data = false;
			break;
		case K_MIXED:
			data = splitmix(&coin) & 1;
			break;
		default:
			data = true;
		}
		if (!data) {
			memset(p, 0, opt.page_size);
		} else if (kind == K_TAIL) {
			memset(p, 0, opt.page_size);
			p[opt.page_size - 1] = 1;
		} else {
			fill_page_random(p, i + 1);
		}
		expect_data += data;
	}
}

/* --- results ------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool first_row = true;

static void report(enum kind kind, unsigned nthreads, uint32_t simd, double t_scan,
		   double t_raw_isa, uint32_t best, double t_raw_best)
{
	double bytes = (double)npages * (double)opt.page_size * loops;
	double gbs = bytes / t_scan / 1e9, raw = bytes / t_raw_best / 1e9;
	double raw_isa = bytes / t_raw_isa / 1e9, pps = (double)npages * loops / t_scan;

	if (opt.json) {
		printf("%s\n  {\"kind\": \"%s\", \"threads\": %u, \"isa\": \"%s\", "
		       "\"scan_gbps\": %.3f, \"pages_per_s\": %.0f, \"raw_gbps\": %.3f, "
		       "\"raw_isa\": \"%s\", \"ratio\": %.3f, \"raw_own_gbps\": %.3f, "
		       "\"ratio_own\": %.3f}",
		       first_row ? "[" : ",", kind_names[kind], nthreads, rdmig__simd_name(simd),
		       gbs, pps, raw, rdmig__simd_name(best), gbs / raw, raw_isa, gbs / raw_isa);
	} else {
		if (first_row)
			printf("%-7s %7s %-7s %10s %10s %10s %-7s %6s %14s %9s\n", "kind",
			       "threads", "isa", "scan GB/s", "Mpages/s", "raw GB/s", "(by)",
			       "ratio", "raw(isa) GB/s", "ratio/isa");
		printf("%-7s %7u %-7s %10.2f %10.3f %10.2f %-7s %6.2f %14.2f %9.2f\n",
		       kind_names[kind], nthreads, rdmig__simd_name(simd), gbs, pps / 1e6, raw,
		       rdmig__simd_name(best), gbs / raw, raw_isa, gbs / raw_isa);
	}
	first_row = false;
	fflush(stdout);
}

/*
 * One kind, one thread count. Every repetition times each raw loop (`raws`,
 * a mask of enum rdmig_simd) and each scanner back to back, alternating the
 * order, so that drift in the machine's load hits both sides alike. The
 * reference ("raw") is the fastest raw loop's median.
 */
static void bench(enum kind kind, unsigned nthreads, const struct rdmig__scanner *scanners,
		  unsigned nisa, unsigned raws)
{
	static double t_scan[4][MAX_REPS], t_raw[4][MAX_REPS];
	const struct rdmig__scanner *by_simd[4] = { NULL };
	uint32_t best = RDMIG_SIMD_SCALAR;

	for (unsigned i = 0; i < nisa; i++)
		by_simd[scanners[i].ops.simd] = &scanners[i];
	for (unsigned r = 0; r < opt.reps; r++) {
		for (uint32_t v = RDMIG_SIMD_AVX512; v <= RDMIG_SIMD_SCALAR; v++) {
			if (!(raws & (1u << v)))
				continue;
			if (by_simd[v] && r % 2)
				t_scan[v][r] = run_once(true, by_simd[v], v, nthreads);
			t_raw[v][r] = run_once(false, NULL, v, nthreads);
			if (by_simd[v] && !(r % 2))
				t_scan[v][r] = run_once(true, by_simd[v], v, nthreads);
		}
	}
	for (uint32_t v = RDMIG_SIMD_AVX512; v <= RDMIG_SIMD_SCALAR; v++) {
		if (!(raws & (1u << v)))
			continue;
		t_raw[v][0] = median(t_raw[v], opt.reps);
		if (by_simd[v])
			t_scan[v][0] = median(t_scan[v], opt.reps);
	}
	/* the memory's limit: the fastest wide-load loop (plain 64-bit loads only if none) */
	for (uint32_t v = RDMIG_SIMD_AVX512; v <= RDMIG_SIMD_AVX2; v++)
		if (raws & (1u << v) && (best == RDMIG_SIMD_SCALAR || t_raw[v][0] < t_raw[best][0]))
			best = v;
	for (unsigned i = 0; i < nisa; i++) {
		uint32_t v = scanners[i].ops.simd;

		report(kind, nthreads, v, t_scan[v][0], t_raw[v][0], best, t_raw[best][0]);
	}
}

/* --- command line -------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f, "usage: rdmig-scanbench [options]\n"
		   "  -s, --size BYTES       buffer size, K/M/G suffix (1G)\n"
		   "  -k, --kind LIST        zero,random,mixed,tail or all (zero,random,mixed)\n"
		   "  -t, --threads LIST     thread counts, e.g. 1,2 (1 and one per CPU)\n"
		   "  -i, --isa LIST         avx512,avx2,scalar (all this CPU supports)\n"
		   "  -r, --reps N           repetitions, the median is reported (5)\n"
		   "  -p, --page-size BYTES  power of two >= 4096 (4096)\n"
		   "  -b, --batch PAGES      pages per scanner call, 1 = the one-page call (256)\n"
		   "      --thp              back the buffer with transparent huge pages\n"
		   "      --pin              pin thread i to the i-th allowed CPU\n"
		   "      --json             a JSON array instead of the table\n");
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10, end++;
		break;
	case 'm':
	case 'M':
		v <<= 20, end++;
		break;
	case 'g':
	case 'G':
		v <<= 30, end++;
		break;
	}
	if (*end || !v)
		return -1;
	*out = (size_t)v;
	return 0;
}

/* A comma-separated list of names into a mask of their indices. */
static int parse_names(char *s, const char *const *names, unsigned n, unsigned *mask)
{
	*mask = 0;
	for (char *t = strtok(s, ","); t; t = strtok(NULL, ",")) {
		unsigned i;

		for (i = 0; i < n; i++)
			if (names[i] && !strcmp(t, names[i]))
				break;
		if (i == n)
			return -1;
		*mask |= 1u << i;
	}
	return *mask ? 0 : -1;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "kind", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 't' },
		{ "isa", required_argument, NULL, 'i' },
		{ "reps", required_argument, NULL, 'r' },
		{ "page-size", required_argument, NULL, 'p' },
		{ "batch", required_argument, NULL, 'b' },
		{ "thp", no_argument, NULL, 'H' },
		{ "pin", no_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const isa_names[] = { NULL, "avx512", "avx2", "scalar" };
	int c;

	while ((c = getopt_long(argc, argv, "s:k:t:i:r:p:b:h", longopts, NULL)) != -1) {
		size_t v;

		switch (c) {
		case 's':
			if (parse_size(optarg, &opt.size))
				goto bad;
			break;
		case 'k':
			if (!strcmp(optarg, "all"))
				opt.kinds = (1u << K_COUNT) - 1;
			else if (parse_names(optarg, kind_names, K_COUNT, &opt.kinds))
				goto bad;
			break;
		case 't':
			opt.nthreads = 0;
			for (char *t = strtok(optarg, ","); t; t = strtok(NULL, ",")) {
				if (parse_size(t, &v) || v > MAX_THREADS ||
				    opt.nthreads == RDMIG__ARRAY_SIZE(opt.threads))
					goto bad;
				opt.threads[opt.nthreads++] = (unsigned)v;
			}
			if (!opt.nthreads)
				goto bad;
			break;
		case 'i':
			if (parse_names(optarg, isa_names, 4, &opt.isas))
				goto bad;
			break;
		case 'r':
			if (parse_size(optarg, &v) || v > MAX_REPS)
				goto bad;
			opt.reps = (unsigned)v;
			break;
		case 'p':
			if (parse_size(optarg, &opt.page_size) || opt.page_size < 4096 ||
			    (opt.page_size & (opt.page_size - 1)))
				goto bad;
			break;
		case 'b':
			if (parse_size(optarg, &opt.batch) || opt.batch > MAX_BATCH)
				goto bad;
			break;
		case 'H':
			opt.thp = true;
			break;
		case 'P':
			opt.pin = true;
			break;
		case 'J':
			opt.json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			goto bad;
		}
	}
	if (optind == argc)
		return;
bad:
	usage(stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct rdmig__scanner scanners[3];
	unsigned supported = rdmig__simd_supported(), nisa = 0, raws = 0;
	static const uint32_t order[] = { RDMIG_SIMD_AVX512, RDMIG_SIMD_AVX2, RDMIG_SIMD_SCALAR };
	cpu_set_t set;
	size_t map_len;

	parse_args(argc, argv);
	if (!opt.kinds)
		opt.kinds = (1u << K_ZERO) | (1u << K_RANDOM) | (1u << K_MIXED);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && ncpus < MAX_THREADS; c++)
			if (CPU_ISSET(c, &set))
				cpus[ncpus++] = c;
	if (!ncpus)
		ncpus = 1;
	if (!opt.nthreads) {
		opt.threads[opt.nthreads++] = 1;
		if (ncpus > 1)
			opt.threads[opt.nthreads++] = ncpus;
	}
	if (!opt.isas)
		opt.isas = supported;
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(order); i++) {
		/* every wide-load loop the CPU has, and each scanner's own */
		if (supported & (1u << order[i]) && order[i] != RDMIG_SIMD_SCALAR)
			raws |= 1u << order[i];
		if (!(opt.isas & (1u << order[i])))
			continue;
		if (rdmig__scanner_init(&scanners[nisa], order[i])) {
			fprintf(stderr, "rdmig-scanbench: %s\n", rdmig_last_error());
			return 1;
		}
		raws |= 1u << order[i];
		nisa++;
	}
	rdmig__scan_key_from_seed(&key, 1);

	npages = opt.size / opt.page_size;
	if (!npages) {
		fprintf(stderr, "rdmig-scanbench: the buffer is smaller than a page\n");
		return 2;
	}
	for (unsigned i = 0; i < opt.nthreads; i++)
		if (!opt.threads[i] || opt.threads[i] > npages)
			opt.threads[i] = 1;
	/* at least 256 MiB per timed run, so that thread start-up is noise */
	loops = (unsigned)RDMIG__MAX(1, (256u << 20) / (npages * opt.page_size));
	map_len = npages * opt.page_size + (2u << 20);
	buf = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("rdmig-scanbench: mmap");
		return 1;
	}
	/* 2 MiB-aligned, so that --thp can back all of it */
	buf = (uint8_t *)(((uintptr_t)buf + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
	madvise(buf, npages * opt.page_size, opt.thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);

	if (!opt.json) {
		printf("rdmig-scanbench: %.3f GiB (x%u per run), %zu pages of %zu bytes, THP %s, "
		       "%s, "
		       "median of %u; CPU has:",
		       (double)(npages * opt.page_size) / (1u << 30), loops, npages, opt.page_size,
		       opt.thp ? "on" : "off",
		       opt.batch == 1 ? "one page per call" : "batched calls", opt.reps);
		for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(order); i++)
			if (supported & (1u << order[i]))
				printf(" %s", rdmig__simd_name(order[i]));
		printf("; raw = the fastest of the wide-load read loops\n");
	}
	for (unsigned k = 0; k < K_COUNT; k++) {
		if (!(opt.kinds & (1u << k)))
			continue;
		fill((enum kind)k);
		/* an untimed pass: page tables and TLB warm, like every timed one */
		run_once(false, NULL, scanners[0].ops.simd, 1);
		for (unsigned t = 0; t < opt.nthreads; t++)
			bench((enum kind)k, opt.threads[t], scanners, nisa, raws);
	}
	if (opt.json)
		printf("\n]\n");
	return 0;
}
