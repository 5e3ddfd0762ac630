/* SPDX-License-Identifier: MIT */
/*
 * rdmig-perf: a demo migration of a synthetic guest, in the manner of
 * perftest's ib_write_bw.
 *
 *   rdmig-perf [options]            destination: listen and receive
 *   rdmig-perf [options] HOST       source: connect to HOST and migrate
 *   rdmig-perf --local [options]    both ends in one process over one device
 *   rdmig-perf --local --matrix     the same over guest touched 0/50/100%, skipping
 *                                   off/on and 1/2/4 workers, as one table
 *
 * The source fills its guest with random data, runs a first pass over all of
 * it, then `--passes` more passes, each after a writer changed a share of
 * random pages (and marked them in KVM-layout dirty bitmaps), then completes.
 * Both ends print an XXH64 digest of the guest image; --local compares the
 * two images byte for byte and exits 1 if they differ.
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
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <rdmig/rdmig.h>

#define PAGE	   4096ull
#define REGION_GAP (1ull << 32) /* guest-physical distance between regions */

struct args {
	const char *host, *bind, *port;
	uint64_t size_mib;
	unsigned regions, passes, dirty_pct;
	uint64_t seed;
	unsigned workers;
	unsigned touched_pct; /* share of pages with data; the rest are zero */
	int skip;	      /* -1: the library's default, 0: off, 1: on */
	bool local;
	bool quiet;
	bool matrix;
};

/* What one migration did, for the summary and the matrix. */
struct result {
	bool exact;
	unsigned passes;
	double secs;
	struct rdmig_pass_stats total;
};

struct guest {
	unsigned n;
	uint64_t gpa[16], len[16];
	uint8_t *hva[16];
	uint64_t *bitmap[16];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rdmig-perf [options] [HOST]\n"
		"  without HOST: destination, listens; with HOST: source, connects\n"
		"  --local          run both ends in this process\n"
		"  -b, --bind ADDR  address to listen on / connect to in --local (default\n"
		"                   $RDMIG_TEST_IP, else 0.0.0.0)\n"
		"  -p, --port PORT  port (default 18515)\n"
		"  -s, --size MIB   guest size in MiB (default 64)\n"
		"  -r, --regions N  guest memory regions, 1-16 (default 3)\n"
		"  -n, --passes N   passes after the first, each after the writer (default 5)\n"
		"  -d, --dirty PCT  share of pages the writer changes between passes (default 10)\n"
		"  -w, --workers N  source workers (default: RDMIG_WORKERS or automatic)\n"
		"  -t, --touched PCT share of guest pages holding data, the rest zero (100)\n"
		"  --skip on|off    skip zero and unchanged pages (default: on, or RDMIG_SKIP_*)\n"
		"  --matrix         with --local: touched 0/50/100%%, skip off/on, 1/2/4 workers\n"
		"  --seed N         random seed (default 1)\n"
		"  -q, --quiet      no per-pass lines\n");
}

static int parse(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "local", no_argument, NULL, 'L' },
		{ "bind", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "regions", required_argument, NULL, 'r' },
		{ "passes", required_argument, NULL, 'n' },
		{ "dirty", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, 'S' },
		{ "touched", required_argument, NULL, 't' },
		{ "skip", required_argument, NULL, 'K' },
		{ "matrix", no_argument, NULL, 'M' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	a->bind = getenv("RDMIG_TEST_IP") ? getenv("RDMIG_TEST_IP") : "0.0.0.0";
	a->port = "18515";
	a->size_mib = 64;
	a->regions = 3;
	a->passes = 5;
	a->dirty_pct = 10;
	a->seed = 1;
	a->touched_pct = 100;
	a->skip = -1;
	while ((c = getopt_long(argc, argv, "b:p:s:r:n:d:w:t:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			a->local = true;
			break;
		case 'b':
			a->bind = optarg;
			break;
		case 'p':
			a->port = optarg;
			break;
		case 's':
			a->size_mib = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			a->regions = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			a->passes = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			a->dirty_pct = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'w':
			a->workers = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'S':
			a->seed = strtoull(optarg, NULL, 0);
			break;
		case 'q':
			a->quiet = true;
			break;
		case 't':
			a->touched_pct = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'K':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				usage(stderr);
				return -1;
			}
			a->skip = !strcmp(optarg, "on");
			break;
		case 'M':
			a->matrix = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc)
		a->host = argv[optind++];
	if (optind < argc || (a->local && a->host) || !a->regions || a->regions > 16 ||
	    a->dirty_pct > 100 || a->touched_pct > 100 || a->size_mib == 0 ||
	    (a->matrix && !a->local) || a->size_mib * 1024 * 1024 / PAGE < a->regions) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* Splits the guest into regions of whole pages, the last taking the rest. */
static int guest_alloc(struct guest *g, const struct args *a)
{
	uint64_t pages = a->size_mib * 1024 * 1024 / PAGE;

	memset(g, 0, sizeof(*g));
	g->n = a->regions;
	for (unsigned i = 0; i < g->n; i++) {
		uint64_t np = i + 1 < g->n ? pages / g->n : pages - (pages / g->n) * (g->n - 1);

		g->gpa[i] = i * REGION_GAP;
		g->len[i] = np * PAGE;
		g->hva[i] = mmap(NULL, g->len[i], PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		g->bitmap[i] = calloc((np + 63) / 64, sizeof(uint64_t));
		if (g->hva[i] == MAP_FAILED || !g->bitmap[i]) {
			fprintf(stderr, "rdmig-perf: cannot allocate a %" PRIu64 "-byte region\n",
				g->len[i]);
			return -1;
		}
	}
	return 0;
}

static void guest_free(struct guest *g)
{
	for (unsigned i = 0; i < g->n; i++) {
		munmap(g->hva[i], g->len[i]);
		free(g->bitmap[i]);
	}
	g->n = 0;
}

/* Random data in touched_pct of the pages, zero in the rest. */
static void guest_fill(struct guest *g, unsigned touched_pct, uint64_t *rng)
{
	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t p = 0; p < g->len[i] / PAGE; p++) {
			uint64_t *w = (uint64_t *)(g->hva[i] + p * PAGE);

			if (rng_next(rng) % 100 >= touched_pct)
				continue; /* left zero */
			for (uint64_t k = 0; k < PAGE / 8; k++)
				w[k] = rng_next(rng);
		}
}

static uint64_t guest_digest(const struct guest *g)
{
	XXH64_state_t *st = XXH64_createState();
	uint64_t d;

	XXH64_reset(st, 0);
	for (unsigned i = 0; i < g->n; i++)
		XXH64_update(st, g->hva[i], g->len[i]);
	d = XXH64_digest(st);
	XXH64_freeState(st);
	return d;
}

/* The writer: changes `pct` percent of random pages and marks them dirty. */
static uint64_t writer_round(struct guest *g, unsigned pct, uint64_t *rng)
{
	uint64_t dirty = 0;

	for (unsigned i = 0; i < g->n; i++) {
		uint64_t np = g->len[i] / PAGE, count = np * pct / 100;

		memset(g->bitmap[i], 0, (np + 63) / 64 * sizeof(uint64_t));
		for (uint64_t k = 0; k < count; k++) {
			uint64_t p = rng_next(rng) % np;
			uint64_t *w =
				(uint64_t *)(g->hva[i] + p * PAGE) + rng_next(rng) % (PAGE / 8);

			*w = rng_next(rng);
			if (!(g->bitmap[i][p / 64] & (1ull << (p % 64))))
				dirty++;
			g->bitmap[i][p / 64] |= 1ull << (p % 64);
		}
	}
	return dirty;
}

static int fail(const char *what, int ret)
{
	fprintf(stderr, "rdmig-perf: %s: %s (%s)\n", what, strerror(-ret), rdmig_last_error());
	return 1;
}

static struct rdmig_opts make_opts(const struct args *a)
{
	struct rdmig_opts o;

	rdmig_opts_init(&o);
	o.workers = a->workers;
	if (a->skip >= 0)
		o.skip_zero = o.skip_unchanged = a->skip ? RDMIG_SWITCH_ON : RDMIG_SWITCH_OFF;
	/* Both ends in one process: a source that never comes must not leave
	 * the destination waiting forever. */
	if (a->local)
		o.accept_timeout_ms = 60000;
	return o;
}

/* --- destination ---------------------------------------------------------- */

struct dst_job {
	const struct args *a;
	struct guest g;
	struct rdmig_dst *dst;
	int port;
	int ret;
	struct rdmig_dst_stats stats;
};

static int dst_prepare(struct dst_job *j)
{
	struct rdmig_opts o = make_opts(j->a);
	int ret;

	if (guest_alloc(&j->g, j->a))
		return 1;
	if ((ret = rdmig_dst_create(&o, &j->dst)))
		return fail("rdmig_dst_create", ret);
	for (unsigned i = 0; i < j->g.n; i++)
		if ((ret = rdmig_dst_add_region(j->dst, j->g.gpa[i], j->g.hva[i], j->g.len[i],
						RDMIG_REGION_ZERO_FILLED)) < 0)
			return fail("rdmig_dst_add_region", ret);
	ret = rdmig_dst_listen(j->dst, j->a->local || !j->a->host ? j->a->bind : NULL, j->a->port);
	if (ret < 0)
		return fail("rdmig_dst_listen", ret);
	j->port = ret;
	return 0;
}

static void *dst_thread(void *arg)
{
	struct dst_job *j = arg;

	j->stats.size = sizeof(j->stats);
	j->ret = rdmig_dst_run(j->dst, &j->stats);
	if (j->ret)
		fprintf(stderr, "rdmig-perf: destination: %s (%s)\n", strerror(-j->ret),
			rdmig_last_error());
	return NULL;
}

static int run_dst(const struct args *a)
{
	struct dst_job j = { .a = a };

	if (dst_prepare(&j))
		return 1;
	printf("destination: listening on %s port %d, guest %" PRIu64 " MiB in %u regions\n",
	       a->bind, j.port, a->size_mib, a->regions);
	fflush(stdout);
	dst_thread(&j);
	if (j.ret)
		return 1;
	printf("destination: %" PRIu64 " passes, %.1f MiB received, image digest %016" PRIx64 "\n",
	       j.stats.passes, (double)j.stats.wire_bytes / (1 << 20), guest_digest(&j.g));
	rdmig_dst_destroy(j.dst);
	return 0;
}

/* --- source --------------------------------------------------------------- */

static void print_pass(const struct args *a, const struct rdmig_pass_stats *s)
{
	double secs = (double)s->duration_ns / 1e9;

	if (a->quiet)
		return;
	printf("  pass %2" PRIu64 ": %8" PRIu64 " dirty %8" PRIu64 " written %8" PRIu64
	       " zero-skip %7" PRIu64 " same %7" PRIu64 " zero-fill %9.1f MiB %8.3f s "
	       "%8.1f MiB/s wire\n",
	       s->pass, s->dirty_pages, s->written_pages, s->skipped_zero, s->skipped_unchanged,
	       s->zero_filled_pages, (double)s->wire_bytes / (1 << 20), secs,
	       s->wire_ns ? (double)s->wire_bytes / (1 << 20) / ((double)s->wire_ns / 1e9) : 0.0);
	fflush(stdout);
}

static int run_src(const struct args *a, const char *host, const char *port, struct guest *dstg,
		   struct result *res)
{
	struct rdmig_opts o = make_opts(a);
	struct rdmig_dirty dirty[16];
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_src *src;
	uint64_t rng = a->seed, total_bytes = 0, total_pages = 0;
	struct guest g;
	double t0;
	int ret;

	memset(res, 0, sizeof(*res));
	res->total.size = sizeof(res->total);
	if (guest_alloc(&g, a))
		return 1;
	guest_fill(&g, a->touched_pct, &rng);
	if ((ret = rdmig_src_create(&o, &src))) {
		guest_free(&g);
		return fail("rdmig_src_create", ret);
	}
	for (unsigned i = 0; i < g.n; i++) {
		if ((ret = rdmig_src_add_region(src, g.gpa[i], g.hva[i], g.len[i])) < 0)
			return fail("rdmig_src_add_region", ret);
		dirty[i] = (struct rdmig_dirty){ .bitmap = g.bitmap[i],
						 .words = (g.len[i] / PAGE + 63) / 64 };
	}
	t0 = now_s();
	if ((ret = rdmig_src_connect(src, host, port))) {
		ret = fail("rdmig_src_connect", ret);
		goto out;
	}
	if (!a->quiet)
		printf("source: connected to %s port %s in %.3f s; guest %" PRIu64
		       " MiB in %u regions\n",
		       host, port, now_s() - t0, a->size_mib, a->regions);

	t0 = now_s();
	if ((ret = rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st))) {
		ret = fail("first pass", ret);
		goto out;
	}
	print_pass(a, &st);
	total_bytes += st.wire_bytes;
	total_pages += st.written_pages;
	for (unsigned p = 0; p < a->passes; p++) {
		struct rdmig_estimate est = { .size = sizeof(est), .final_pass_ns = 0 };
		bool final = p + 1 == a->passes;

		writer_round(&g, a->dirty_pct, &rng);
		/* The VMM's question before it pauses the guest. */
		if (final && rdmig_src_estimate(src, dirty, g.n, 0, &est) == 0 && !a->quiet)
			printf("  final pass predicted: %.3f s for %" PRIu64
			       " dirty pages, %.1f MiB "
			       "on the wire (wire %.1f MiB/s, scan %.1f MiB/s, overhead %.3f s)\n",
			       (double)est.final_pass_ns / 1e9, est.dirty_pages,
			       (double)est.wire_bytes / (1 << 20),
			       (double)est.wire_rate / (1 << 20), (double)est.scan_rate / (1 << 20),
			       (double)est.overhead_ns / 1e9);
		if ((ret = rdmig_src_pass(src, dirty, g.n, 0, &st))) {
			ret = fail("pass", ret);
			goto out;
		}
		print_pass(a, &st);
		if (final && est.final_pass_ns && !a->quiet)
			printf("  final pass measured: %.3f s, predicted %.3f s (error %+.1f%%)\n",
			       (double)st.duration_ns / 1e9, (double)est.final_pass_ns / 1e9,
			       100.0 * ((double)est.final_pass_ns - (double)st.duration_ns) /
				       (double)st.duration_ns);
		total_bytes += st.wire_bytes;
		total_pages += st.written_pages;
	}
	rdmig_src_stats(src, &res->total);
	if ((ret = rdmig_src_complete(src))) {
		ret = fail("rdmig_src_complete", ret);
		goto out;
	}
	res->passes = a->passes + 1;
	res->secs = now_s() - t0;
	if (!a->quiet)
		printf("source: %u passes, %" PRIu64 " pages, %.1f MiB written in %.3f s "
		       "(%.1f MiB/s), image digest %016" PRIx64 "\n",
		       res->passes, total_pages, (double)total_bytes / (1 << 20), res->secs,
		       (double)total_bytes / (1 << 20) / res->secs, guest_digest(&g));
	rdmig_src_destroy(src);
	src = NULL;

	if (dstg) {
		for (unsigned i = 0; i < g.n; i++) {
			if (memcmp(g.hva[i], dstg->hva[i], g.len[i])) {
				for (uint64_t off = 0; off < g.len[i]; off += PAGE)
					if (memcmp(g.hva[i] + off, dstg->hva[i] + off, PAGE)) {
						printf("image: MISMATCH at gpa 0x%" PRIx64 "\n",
						       g.gpa[i] + off);
						break;
					}
				guest_free(&g);
				return 1;
			}
		}
		res->exact = true;
		if (!a->quiet)
			printf("image: MATCH (%" PRIu64 " MiB compared byte for byte)\n",
			       a->size_mib);
	}
	guest_free(&g);
	return 0;
out:
	/* Abandoning the session tells the destination, which then fails too. */
	rdmig_src_destroy(src);
	guest_free(&g);
	return ret;
}

/* Both ends in this process: a destination thread and the source. */
static int run_local(const struct args *a, struct result *res)
{
	struct dst_job j;
	pthread_t t;
	char port[16];
	int ret;

	memset(&j, 0, sizeof(j));
	j.a = a;
	if (dst_prepare(&j))
		return 1;
	snprintf(port, sizeof(port), "%d", j.port);
	pthread_create(&t, NULL, dst_thread, &j);
	ret = run_src(a, a->bind, port, &j.g, res);
	pthread_join(t, NULL);
	if (!ret && j.ret)
		ret = 1;
	if (!ret && !a->quiet)
		printf("destination: %" PRIu64 " passes confirmed, %.1f MiB received\n",
		       j.stats.passes, (double)j.stats.wire_bytes / (1 << 20));
	rdmig_dst_destroy(j.dst);
	guest_free(&j.g);
	return ret;
}

/*
 * The matrix: guest touched 0%, 50%, 100%; skipping off and on; 1, 2 and
 * 4 workers. Fails (1) only if a destination image was not exact.
 */
static int run_matrix(const struct args *base)
{
	static const unsigned touched[] = { 0, 50, 100 }, workers[] = { 1, 2, 4 };
	int bad = 0;

	printf("%-8s %-5s %-7s %6s %10s %10s %10s %8s %10s %10s  %s\n", "touched", "skip",
	       "workers", "passes", "wire MiB", "zero MiB", "same MiB", "time s", "eff MiB/s",
	       "wire MiB/s", "image");
	for (unsigned t = 0; t < 3; t++)
		for (int sk = 0; sk < 2; sk++)
			for (unsigned w = 0; w < 3; w++) {
				struct args a = *base;
				struct result r;
				int ret;

				a.touched_pct = touched[t];
				a.skip = sk;
				a.workers = workers[w];
				a.quiet = true;
				a.port = "0";
				ret = run_local(&a, &r);
				bad |= ret || !r.exact;
				printf("%7u%% %-5s %7u %6u %10.1f %10.1f %10.1f %8.3f %10.1f "
				       "%10.1f  "
				       "%s\n",
				       touched[t], sk ? "on" : "off", workers[w], r.passes,
				       (double)r.total.wire_bytes / (1 << 20),
				       (double)(r.total.skipped_zero + r.total.zero_filled_pages) *
					       PAGE / (1 << 20),
				       (double)r.total.skipped_unchanged * PAGE / (1 << 20), r.secs,
				       r.secs > 0 ? (double)a.size_mib / r.secs : 0.0,
				       r.total.wire_ns ? (double)r.total.wire_bytes / (1 << 20) /
								 ((double)r.total.wire_ns / 1e9)
						       : 0.0,
				       ret	 ? "FAILED"
				       : r.exact ? "exact"
						 : "MISMATCH");
			}
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct result r;
	struct args a;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse(argc, argv, &a))
		return 2;
	if (a.matrix)
		return run_matrix(&a);
	if (a.local)
		return run_local(&a, &r);
	return a.host ? run_src(&a, a.host, a.port, NULL, &r) : run_dst(&a);
}
