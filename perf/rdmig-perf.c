/* SPDX-License-Identifier: MIT */
/*
 * rdmig-perf: a demo migration of a synthetic guest, in the manner of
 * perftest's ib_write_bw.
 *
 *   rdmig-perf [options]            destination: listen and receive
 *   rdmig-perf [options] HOST       source: connect to HOST and migrate
 *   rdmig-perf --local [options]    both ends in one process over one device
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
	bool local;
	bool quiet;
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
	while ((c = getopt_long(argc, argv, "b:p:s:r:n:d:w:qh", opts, NULL)) != -1) {
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
	    a->dirty_pct > 100 || a->size_mib == 0 ||
	    a->size_mib * 1024 * 1024 / PAGE < a->regions) {
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

static int run_src(const struct args *a, const char *host, const char *port, struct guest *dstg)
{
	struct rdmig_opts o = make_opts(a);
	struct rdmig_dirty dirty[16];
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_src *src;
	uint64_t rng = a->seed, total_bytes = 0, total_pages = 0;
	struct guest g;
	double t0;
	int ret;

	if (guest_alloc(&g, a))
		return 1;
	for (unsigned i = 0; i < g.n; i++)
		for (uint64_t k = 0; k < g.len[i] / 8; k++)
			((uint64_t *)g.hva[i])[k] = rng_next(&rng);
	if ((ret = rdmig_src_create(&o, &src)))
		return fail("rdmig_src_create", ret);
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
	printf("source: connected to %s port %s in %.3f s; guest %" PRIu64 " MiB in %u regions\n",
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
		if (final && rdmig_src_estimate(src, dirty, g.n, 0, &est) == 0)
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
		if (final && est.final_pass_ns)
			printf("  final pass measured: %.3f s, predicted %.3f s (error %+.1f%%)\n",
			       (double)st.duration_ns / 1e9, (double)est.final_pass_ns / 1e9,
			       100.0 * ((double)est.final_pass_ns - (double)st.duration_ns) /
				       (double)st.duration_ns);
		total_bytes += st.wire_bytes;
		total_pages += st.written_pages;
	}
	if ((ret = rdmig_src_complete(src))) {
		ret = fail("rdmig_src_complete", ret);
		goto out;
	}
	{
		double secs = now_s() - t0;

		printf("source: %u passes, %" PRIu64 " pages, %.1f MiB written in %.3f s "
		       "(%.1f MiB/s), image digest %016" PRIx64 "\n",
		       a->passes + 1, total_pages, (double)total_bytes / (1 << 20), secs,
		       (double)total_bytes / (1 << 20) / secs, guest_digest(&g));
	}
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
				return 1;
			}
		}
		printf("image: MATCH (%" PRIu64 " MiB compared byte for byte)\n", a->size_mib);
	}
	return 0;
out:
	/* Abandoning the session tells the destination, which then fails too. */
	rdmig_src_destroy(src);
	return ret;
}

int main(int argc, char **argv)
{
	struct args a;
	struct dst_job j;
	pthread_t t;
	char port[16];
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse(argc, argv, &a))
		return 2;
	if (!a.local)
		return a.host ? run_src(&a, a.host, a.port, NULL) : run_dst(&a);

	memset(&j, 0, sizeof(j));
	j.a = &a;
	if (dst_prepare(&j))
		return 1;
	snprintf(port, sizeof(port), "%d", j.port);
	pthread_create(&t, NULL, dst_thread, &j);
	ret = run_src(&a, a.bind, port, &j.g);
	pthread_join(t, NULL);
	if (!ret && j.ret)
		ret = 1;
	if (!ret)
		printf("destination: %" PRIu64 " passes confirmed, %.1f MiB received\n",
		       j.stats.passes, (double)j.stats.wire_bytes / (1 << 20));
	rdmig_dst_destroy(j.dst);
	return ret;
}
