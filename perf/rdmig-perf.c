/* SPDX-License-Identifier: MIT */
/*
 * rdmig-perf: a demo migration of a synthetic guest, in the manner of
 * perftest's ib_write_bw.
 *
 *   rdmig-perf [options]            destination: listen and receive
 *   rdmig-perf [options] HOST       source: connect to HOST and migrate
 *   rdmig-perf --local [options]    both ends in one process
 *   rdmig-perf --local --matrix     the same over guest touched 0/50/100%, skipping
 *                                   off/on and 1/2/4 workers, as one table
 *
 * The source fills --touched of its guest's pages with random data (the rest
 * stay zero) and migrates it in one of two ways:
 *
 * - The VMM loop (when --rate, --downtime or --max-passes is given). A
 *   writer thread stores to --rate random pages per second while pre-copy
 *   runs and logs each in a live dirty bitmap (KVM's layout; the bit is set
 *   atomically after the store, see writer_page()). The loop runs a first
 *   pass over everything; then, over and over, it syncs the dirty log (each
 *   live word exchanged with 0 and ORed into the bitmap rdmig gets, as
 *   KVM_GET_DIRTY_LOG with clear), asks rdmig_src_estimate() how long a final
 *   pass over that set would take, and stops when the answer is at most
 *   --downtime (and not extrapolated from passes unlike this one) or when
 *   the next pass would be pass --max-passes; otherwise it runs a pass.
 *   Then it pauses the writer (a handshake: the writer says it has
 *   stopped), syncs once more and runs the final pass over the set of the
 *   last sync and everything since, timed, and completes.
 * - Fixed passes (otherwise): a first pass, then --passes more, each after a
 *   writer round changed --dirty of the pages with the guest stopped.
 *
 * Of the writer's stores, --same rewrite the bytes the page holds (the page
 * is dirty, its content unchanged: skipping of unchanged pages at work); in
 * the loop, of the others --touched store data and the rest zero the page.
 * --workload memcached makes the loop's writer SET 256-byte items instead.
 *
 * --dirty-log soft-dirty|pagemap-scan|auto: the writer's bitmap is not the
 * pass's; each sync reads the kernel's log instead (dirtylog.h), and the
 * run checks that log against the pages the writer stored to.
 *
 * The source reports passes, total time, the final pass measured next to
 * its prediction, complete's time (rdmig_src_complete(); with --local also
 * the destination's COMPLETE-to-ACK time and when its run returned), wire
 * bytes, bytes skipped per reason, effective rate (guest
 * bytes over total time) and wire rate: a table, or one JSON object on stdout
 * with --json; a progress line goes to stderr before each pass (rewritten in
 * place on a terminal). Both ends report an XXH64 digest of the guest image;
 * --local compares the two images byte for byte and exits 1 if they differ.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <rdmig/rdmig.h>

#include "dirtylog.h"

#define PAGE	   4096ull
#define REGION_GAP (1ull << 32) /* guest-physical distance between regions */
#define MIB	   (1024.0 * 1024.0)

struct args {
	const char *host, *bind, *port;
	uint64_t size_mib;
	unsigned regions, passes, dirty_pct;
	uint64_t seed;
	unsigned workers;
	unsigned touched_pct; /* share of pages with data; the rest are zero */
	unsigned same_pct;    /* share of the writer's stores that change nothing */
	bool scatter;	      /* fixed passes: every other page, not --dirty random ones */
	bool have_same;
	enum dirtylog_method dirty_log; /* who logs the writer's stores */
	bool memcached;			/* the loop's writer: memcached-like SETs */
	int skip;			/* -1: the library's default, 0: off, 1: on */
	bool verify;			/* the final pass has RDMIG_PASS_FINAL (verified) */
	bool loop;			/* the VMM loop: --rate, --downtime or --max-passes given */
	uint64_t rate;			/* writer thread: pages per second during pre-copy */
	uint64_t downtime_ns;		/* target for the predicted final pass */
	unsigned max_passes;		/* passes in all, the final one included */
	const char *transport;
	bool have_wire_mbps;
	uint64_t wire_mbps; /* Mbit/s, 0: no cap */
	bool local;
	bool quiet;
	bool json;
	bool matrix;
	bool silent;		/* a matrix run: no output of its own */
	uint64_t max_bandwidth; /* opts.max_bandwidth, bytes per second, 0: no cap */
};

/* The writer thread's stores by kind, and how long it ran. */
struct writer_stats {
	uint64_t data, zero, same;
	double secs;
};

/* The kernel's dirty log over the run (--dirty-log soft-dirty|pagemap-scan). */
struct klog_stats {
	enum dirtylog_method method; /* the one open (auto resolved) */
	uint64_t syncs, sync_ns, scanned_bytes, dirty_pages;
	bool checked;	     /* what the kernel reported was compared with the stores */
	uint64_t unwritten;  /* pages reported and never written */
	uint64_t unreported; /* pages written and never reported */
};

/* One pass, and the estimate taken for its dirty set just before it. */
struct pass_rec {
	struct rdmig_pass_stats st;
	bool predicted;
	uint64_t predicted_ns;
};

/* What one migration did, for the report and the matrix. */
struct result {
	bool ok;      /* migrated and completed */
	bool checked; /* --local: the images were compared */
	bool exact;   /* and they are equal */
	uint64_t mismatch_gpa;
	const char *stop; /* why pre-copy ended */
	double connect_secs;
	double secs; /* from the first pass to completion */
	/* rdmig_src_complete(): when it was called (now_s()) and how long it took */
	double complete_t0, complete_secs;
	/* --local: the destination's rdmig_dst_run() returned this long after
	 * complete was called (where its VMM would resume the guest) */
	bool have_dst_return;
	double dst_return_secs;
	struct pass_rec *pass;
	unsigned npass;
	bool have_decision;		/* the estimate that ended pre-copy (loop) */
	struct rdmig_estimate decision; /* for the dirty set of the last sync before it */
	bool have_predicted;
	struct rdmig_estimate predicted; /* for the final pass's own dirty set */
	struct rdmig_pass_stats total;
	bool have_writer;
	struct writer_stats writer;
	bool have_klog;
	struct klog_stats klog;
	uint64_t digest;
	bool have_dst;
	struct rdmig_dst_stats dst;
	/* rdmig_src_progress() polled every millisecond from another thread
	 * while passes ran: what one call cost. */
	uint64_t progress_calls;
	double progress_ns;	/* mean */
	double progress_max_ns; /* the costliest batch's mean */
};

struct guest {
	unsigned n;
	uint64_t pages;
	uint64_t gpa[16], len[16], words[16];
	uint8_t *hva[16];
	uint64_t *bitmap[16]; /* the dirty log a pass gets */
	uint64_t *live[16];   /* the writer thread's dirty log (the loop), atomic */
	/*
	 * With the kernel's dirty log, live is no pass's: it holds every page
	 * the writer ever stored to (fixed passes: those of the last round),
	 * to check against seen, every page the kernel reported.
	 */
	struct dirtylog *log;
	uint64_t *seen[16];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ratio(double num, double den)
{
	return den > 0 ? num / den : 0.0;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* --- progress line ---------------------------------------------------------- */

static bool progress_tty;   /* stderr is a terminal: one line, rewritten */
static bool progress_shown; /* that line is on the screen now */

/* Takes the progress line off the screen before something else is printed. */
static void progress_clear(void)
{
	if (progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = false;
}

static void progress(const struct args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Says what runs now: on a terminal as one line rewritten in place, else as
 * a plain line. The per-pass lines and the report go to stdout.
 */
static void progress(const struct args *a, const char *fmt, ...)
{
	va_list ap;

	if (a->quiet || a->silent)
		return;
	fputs(progress_tty ? "\rrdmig-perf: " : "rdmig-perf: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(progress_tty ? "\033[K" : "\n", stderr);
	progress_shown = progress_tty;
}

/* --- options ---------------------------------------------------------------- */

enum {
	OPT_SAME = 256,
	OPT_RATE,
	OPT_DOWNTIME,
	OPT_MAX_PASSES,
	OPT_JSON,
	OPT_TRANSPORT,
	OPT_WIRE_MBPS,
	OPT_VERIFY,
	OPT_MAX_BANDWIDTH,
	OPT_DIRTY_LOG,
	OPT_WORKLOAD,
	OPT_SCATTER,
};

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
		"  -t, --touched PCT share of guest pages holding data, the rest zero (100);\n"
		"                   in the loop also the share of the writer's changing stores\n"
		"                   that write data (the others zero their page)\n"
		"  --same PCT       share of the writer's stores that rewrite the bytes the page\n"
		"                   holds: dirty, content unchanged (default 0; memcached 80)\n"
		"  --dirty-log writer|soft-dirty|pagemap-scan|auto\n"
		"                   who logs the writer's stores: the writer itself (default),\n"
		"                   or the kernel: soft-dirty bits (pagemap bit 55, clear_refs)\n"
		"                   or PAGEMAP_SCAN over userfaultfd write protection (6.7+);\n"
		"                   auto: pagemap-scan if it works here, else soft-dirty\n"
		"  -w, --workers N  source workers (default: RDMIG_WORKERS or automatic)\n"
		"  --skip on|off    skip zero and unchanged pages (default: on, or RDMIG_SKIP_*)\n"
		"  --verify on|off  the final pass verifies every page it writes\n"
		"                   (RDMIG_PASS_FINAL, default on); off: a plain pass\n"
		"  --seed N         random seed (default 1)\n"
		" the VMM loop, run when one of these is given:\n"
		"  --rate N         a writer thread stores to N random pages per second while\n"
		"                   pre-copy runs, logging them in a dirty bitmap (default 0)\n"
		"  --workload random|memcached  the writer's stores: a word of a random page\n"
		"                   (default), or SETs of 256-byte items, 80%% of them to a\n"
		"                   fifth of the items, --same of them rewriting the value held\n"
		"  --downtime MS    end pre-copy once the predicted final pass takes at most MS\n"
		"                   milliseconds (default 300) and is not extrapolated\n"
		"  --max-passes N   at most N passes, the final one included, N >= 2 (default 30)\n"
		" fixed passes, otherwise:\n"
		"  -n, --passes N   passes after the first, each after a writer round (default 5)\n"
		"  -d, --dirty PCT  share of pages a writer round changes (default 10)\n"
		"  --scatter        a writer round changes every other page instead: each\n"
		"                   dirty page is a WRITE of its own (the posting path's\n"
		"                   worst case; pass lines then show WRITEs per second)\n"
		" output:\n"
		"  --json           one JSON object on stdout instead of the table\n"
		"  -q, --quiet      no per-pass lines, no progress line\n"
		"  --matrix         with --local: touched 0/50/100%%, skip off/on, 1/2/4 workers\n"
		" transport (set before any rdmig handle exists):\n"
		"  --transport verbs|loopback  sets RDMIG_TRANSPORT; loopback (an in-process\n"
		"                   memory copy) only with --local\n"
		"  --wire-mbps N    sets RDMIG_LOOPBACK_RATE_MBPS: wire-rate cap, Mbit/s, 0 = "
		"none\n"
		" source:\n"
		"  --max-bandwidth N  opts.max_bandwidth: rdmig's own cap, bytes per second\n"
		"                   (K, M, G binary; 250000000 is 2 Gb/s), 0 = none\n");
}

/* A whole number in [min, max]; anything else is false. */
static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end || x < min || x > max)
		return false;
	*v = x;
	return true;
}

static int bad_value(const char *opt, const char *val, const char *want)
{
	fprintf(stderr, "rdmig-perf: %s %s: expected %s\n", opt, val, want);
	return -1;
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
		{ "same", required_argument, NULL, OPT_SAME },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "downtime", required_argument, NULL, OPT_DOWNTIME },
		{ "max-passes", required_argument, NULL, OPT_MAX_PASSES },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "transport", required_argument, NULL, OPT_TRANSPORT },
		{ "wire-mbps", required_argument, NULL, OPT_WIRE_MBPS },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "max-bandwidth", required_argument, NULL, OPT_MAX_BANDWIDTH },
		{ "dirty-log", required_argument, NULL, OPT_DIRTY_LOG },
		{ "workload", required_argument, NULL, OPT_WORKLOAD },
		{ "scatter", no_argument, NULL, OPT_SCATTER },
		{ NULL, 0, NULL, 0 },
	};
	const char *transport;
	uint64_t v;
	double ms;
	char *end;
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
	a->verify = true;
	a->downtime_ns = 300 * 1000000ull;
	a->max_passes = 30;
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
		case OPT_SAME:
			if (!parse_u64(optarg, 0, 100, &v))
				return bad_value("--same", optarg, "a percentage, 0-100");
			a->same_pct = (unsigned)v;
			a->have_same = true;
			break;
		case OPT_DIRTY_LOG:
			if (dirtylog_parse(optarg, &a->dirty_log))
				return bad_value("--dirty-log", optarg,
						 "writer, soft-dirty, pagemap-scan or auto");
			break;
		case OPT_SCATTER:
			a->scatter = true;
			break;
		case OPT_WORKLOAD:
			if (strcmp(optarg, "random") && strcmp(optarg, "memcached"))
				return bad_value("--workload", optarg, "random or memcached");
			a->memcached = !strcmp(optarg, "memcached");
			break;
		case OPT_RATE:
			if (!parse_u64(optarg, 0, 1000000000, &v))
				return bad_value("--rate", optarg, "pages per second");
			a->rate = v;
			a->loop = true;
			break;
		case OPT_DOWNTIME:
			errno = 0;
			ms = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(ms >= 0) || ms > 1e9)
				return bad_value("--downtime", optarg, "milliseconds");
			a->downtime_ns = (uint64_t)(ms * 1e6);
			a->loop = true;
			break;
		case OPT_MAX_PASSES:
			if (!parse_u64(optarg, 2, 1000000, &v))
				return bad_value("--max-passes", optarg,
						 "a number of passes, at least 2");
			a->max_passes = (unsigned)v;
			a->loop = true;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_TRANSPORT:
			if (strcmp(optarg, "verbs") && strcmp(optarg, "loopback"))
				return bad_value("--transport", optarg, "verbs or loopback");
			a->transport = optarg;
			break;
		case OPT_VERIFY:
			if (strcmp(optarg, "on") && strcmp(optarg, "off"))
				return bad_value("--verify", optarg, "on or off");
			a->verify = !strcmp(optarg, "on");
			break;
		case OPT_MAX_BANDWIDTH: {
			unsigned shift = 0;
			size_t n = strlen(optarg);
			char num[32];

			if (n && n < sizeof(num) && strchr("KkMmGg", optarg[n - 1])) {
				shift = strchr("Kk", optarg[n - 1])   ? 10
					: strchr("Mm", optarg[n - 1]) ? 20
								      : 30;
				n--;
			}
			snprintf(num, sizeof(num), "%.*s", (int)n, optarg);
			if (n >= sizeof(num) || !parse_u64(num, 0, 1ull << 40 >> shift, &v))
				return bad_value("--max-bandwidth", optarg,
						 "bytes per second (K, M, G binary), 0 for no cap");
			a->max_bandwidth = v << shift;
			break;
		}
		case OPT_WIRE_MBPS:
			if (!parse_u64(optarg, 0, UINT32_MAX, &v))
				return bad_value("--wire-mbps", optarg,
						 "megabits per second, 0 for no cap");
			a->wire_mbps = v;
			a->have_wire_mbps = true;
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
	/* A cache refreshed by SETs, most of them of the value it holds. */
	if (a->memcached && !a->have_same)
		a->same_pct = 80;
	if (optind < argc || (a->local && a->host) || !a->regions || a->regions > 16 ||
	    a->dirty_pct > 100 || a->touched_pct > 100 || a->size_mib == 0 ||
	    (a->matrix && !a->local) || a->size_mib * 1024 * 1024 / PAGE < a->regions) {
		usage(stderr);
		return -1;
	}
	/* The loopback transport copies inside one process: no peer elsewhere. */
	transport = a->transport ? a->transport : getenv("RDMIG_TRANSPORT");
	if (transport && !strcmp(transport, "loopback") && !a->local) {
		fprintf(stderr, "rdmig-perf: the loopback transport copies within one process: "
				"it needs --local (both ends here)\n");
		return -1;
	}
	return 0;
}

/* --- the synthetic guest ------------------------------------------------------ */

static void guest_free(struct guest *g)
{
	for (unsigned i = 0; i < g->n; i++) {
		if (g->hva[i] && g->hva[i] != MAP_FAILED)
			munmap(g->hva[i], g->len[i]);
		free(g->bitmap[i]);
		free(g->live[i]);
		free(g->seen[i]);
	}
	g->n = 0;
}

/*
 * Splits the guest into regions of whole pages, the last taking the rest.
 * With logged (a source whose dirty log is the kernel's) its memory is
 * mapped as that log needs (soft-dirty: shared, see dirtylog_mmap_flags())
 * and kept in 4 KiB pages, as KVM keeps guest memory while it logs: a huge
 * page would be logged whole, 512 pages dirty for one store.
 */
static int guest_alloc(struct guest *g, const struct args *a, bool logged)
{
	uint64_t pages = a->size_mib * 1024 * 1024 / PAGE;

	memset(g, 0, sizeof(*g));
	g->n = a->regions;
	g->pages = pages;
	for (unsigned i = 0; i < g->n; i++) {
		uint64_t np = i + 1 < g->n ? pages / g->n : pages - (pages / g->n) * (g->n - 1);

		g->gpa[i] = i * REGION_GAP;
		g->len[i] = np * PAGE;
		g->words[i] = (np + 63) / 64;
		g->hva[i] = mmap(
			NULL, g->len[i], PROT_READ | PROT_WRITE,
			(logged ? dirtylog_mmap_flags(a->dirty_log) : MAP_PRIVATE | MAP_POPULATE) |
				MAP_ANONYMOUS,
			-1, 0);
		g->bitmap[i] = calloc(g->words[i], sizeof(uint64_t));
		g->live[i] = calloc(g->words[i], sizeof(uint64_t));
		g->seen[i] = logged ? calloc(g->words[i], sizeof(uint64_t)) : NULL;
		if (g->hva[i] != MAP_FAILED && logged) {
			/* Populated after the advice, or it comes too late. */
			madvise(g->hva[i], g->len[i], MADV_NOHUGEPAGE);
			for (uint64_t off = 0; off < g->len[i]; off += PAGE)
				((volatile uint8_t *)g->hva[i])[off] = 0;
		}
		if (g->hva[i] == MAP_FAILED || !g->bitmap[i] || !g->live[i] ||
		    (logged && !g->seen[i])) {
			fprintf(stderr, "rdmig-perf: cannot allocate a %" PRIu64 "-byte region\n",
				g->len[i]);
			guest_free(g);
			return -1;
		}
	}
	return 0;
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

/*
 * A writer round, the guest stopped (fixed passes): stores to `pct` percent
 * of random pages and marks them dirty; `same_pct` of those stores rewrite
 * the word they hit with its own value (with `scatter`, every other page
 * instead). Returns the pages now dirty. With
 * the kernel's dirty log the marks go to g->live instead, for the sync to
 * be checked against.
 */
static uint64_t writer_round(struct guest *g, unsigned pct, unsigned same_pct, bool scatter,
			     uint64_t *rng)
{
	uint64_t dirty = 0;

	for (unsigned i = 0; i < g->n; i++) {
		uint64_t np = g->len[i] / PAGE, count = np * pct / 100;
		uint64_t *bm = g->log ? g->live[i] : g->bitmap[i];

		memset(g->bitmap[i], 0, g->words[i] * sizeof(uint64_t));
		memset(bm, 0, g->words[i] * sizeof(uint64_t));
		if (scatter)
			count = (np + 1) / 2;
		for (uint64_t k = 0; k < count; k++) {
			uint64_t p = scatter ? 2 * k : rng_next(rng) % np;
			uint64_t *w =
				(uint64_t *)(g->hva[i] + p * PAGE) + rng_next(rng) % (PAGE / 8);

			if (same_pct && rng_next(rng) % 100 < same_pct)
				*(volatile uint64_t *)w = *(volatile uint64_t *)w;
			else
				*w = rng_next(rng);
			if (!(bm[p / 64] & (1ull << (p % 64))))
				dirty++;
			bm[p / 64] |= 1ull << (p % 64);
		}
	}
	return dirty;
}

/*
 * The VMM's dirty-log sync (KVM_GET_DIRTY_LOG with clear): takes each word
 * of the live bitmap, leaving 0 there, and ORs it into the bitmap the next
 * pass gets, which may still hold pages that no pass has sent since they
 * were logged. Returns the dirty pages there.
 */
static uint64_t sync_dirty_log(struct guest *g)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t k = 0; k < g->words[i]; k++) {
			g->bitmap[i][k] |= __atomic_exchange_n(&g->live[i][k], 0, __ATOMIC_ACQUIRE);
			n += (uint64_t)__builtin_popcountll(g->bitmap[i][k]);
		}
	return n;
}

static uint64_t count_dirty(const struct guest *g)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t k = 0; k < g->words[i]; k++)
			n += (uint64_t)__builtin_popcountll(g->bitmap[i][k]);
	return n;
}

/* After a pass: what the bitmap held is at the destination. */
static void clear_dirty(struct guest *g)
{
	for (unsigned i = 0; i < g->n; i++)
		memset(g->bitmap[i], 0, g->words[i] * sizeof(uint64_t));
}

/* --- the writer thread (the guest's vCPUs, in the loop) ---------------------- */

struct writer {
	struct guest *g;
	uint64_t rate; /* pages per second */
	unsigned touched_pct, same_pct;
	bool memcached;
	uint64_t rng;
	bool started;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool hold;		/* under lock: a pause asked (writer_pause, writer_hold) */
	bool paused, stop;	/* under lock */
	atomic_bool attn;	/* look under the lock: pause or stop asked */
	struct writer_stats st; /* the writer's own until it has paused */
};

/*
 * One store to a random page, then its bit in the live dirty log. The bit
 * goes after the store, and with release order: a sync that takes the bit
 * (an acquiring exchange) sees the store, and the pass after that sync reads
 * the page after it; a sync that comes between the store and the bit leaves
 * the bit to the next sync, whose pass covers the store. Either way every
 * store is followed by a pass that reads the page after it, and once the
 * writer has paused, the final sync has every bit set since the last one.
 * The other order (bit, then store) would lose a store that lands after a
 * sync took the bit and its pass had read the page; KVM avoids that by
 * write-protecting the page again when it clears the bit, so that a later
 * store faults and sets the bit again.
 */
static void writer_page(struct writer *w)
{
	struct guest *g = w->g;
	uint64_t p = rng_next(&w->rng) % g->pages, r = rng_next(&w->rng);
	volatile uint64_t *word;
	unsigned i = 0;
	uint8_t *page;

	while (p >= g->len[i] / PAGE)
		p -= g->len[i++] / PAGE;
	page = g->hva[i] + p * PAGE;
	word = (volatile uint64_t *)page + rng_next(&w->rng) % (PAGE / 8);
	if (r % 100 < w->same_pct) {
		*word = *word; /* the bytes it holds: dirty, unchanged */
		w->st.same++;
	} else if (r / 100 % 100 >= w->touched_pct) {
		memset(page, 0, PAGE);
		w->st.zero++;
	} else {
		*word = rng_next(&w->rng);
		w->st.data++;
	}
	__atomic_fetch_or(&g->live[i][p / 64], 1ull << (p % 64), __ATOMIC_RELEASE);
}

#define ITEM 256 /* bytes of a memcached-like item: 16 to a page */

/*
 * A memcached-like SET: 80% of them to a fifth of the items (every fifth
 * one, so hot items lie on every page, as a slab allocator scatters them),
 * the rest to any; same_pct of them store the value the item holds (a
 * client refreshing a key with what it already has), the others a new one.
 * Then the page's bit in the live log, as writer_page() does.
 */
static void writer_set(struct writer *w)
{
	struct guest *g = w->g;
	uint64_t items = g->pages * (PAGE / ITEM), r = rng_next(&w->rng);
	uint64_t item = r % 100 < 80 ? rng_next(&w->rng) % (items / 5 ? items / 5 : 1) * 5
				     : rng_next(&w->rng) % items;
	uint64_t p = item / (PAGE / ITEM);
	volatile uint64_t *v;
	unsigned i = 0;

	while (p >= g->len[i] / PAGE)
		p -= g->len[i++] / PAGE;
	v = (volatile uint64_t *)(g->hva[i] + p * PAGE + item % (PAGE / ITEM) * ITEM);
	if (r / 100 % 100 < w->same_pct) {
		for (unsigned k = 0; k < ITEM / 8; k++)
			v[k] = v[k];
		w->st.same++;
	} else {
		for (unsigned k = 0; k < ITEM / 8; k++)
			v[k] = rng_next(&w->rng);
		w->st.data++;
	}
	__atomic_fetch_or(&g->live[i][p / 64], 1ull << (p % 64), __ATOMIC_RELEASE);
}

/*
 * Stores at w->rate pages per second, paced by the clock (a writer that
 * fell behind catches up), until asked to pause; then it says so and waits
 * to be released (writer_release: a sync that needed it stopped, the time
 * stopped not counted in the pace) or stopped.
 */
static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	double t0 = now_s(), stopped = 0;
	uint64_t done = 0;

	for (;;) {
		double t;
		uint64_t due;

		if (atomic_load_explicit(&w->attn, memory_order_acquire)) {
			double tp = now_s();

			pthread_mutex_lock(&w->lock);
			w->st.secs = tp - t0 - stopped;
			w->paused = true;
			pthread_cond_broadcast(&w->cond);
			while (!w->stop && w->hold)
				pthread_cond_wait(&w->cond, &w->lock);
			if (w->stop) {
				pthread_mutex_unlock(&w->lock);
				return NULL;
			}
			w->paused = false;
			pthread_mutex_unlock(&w->lock);
			stopped += now_s() - tp;
			continue;
		}
		t = now_s() - t0;
		due = (uint64_t)(t * (double)w->rate);
		if (done >= due) {
			/* Until a batch of 64 stores is due, at most 1 ms: a
			 * pause is answered within about that. (Waking for
			 * every store, a fast writer spent much of a CPU in
			 * nanosleep, a CPU the migration wanted.) */
			double wait = (double)(done + 64) / (double)w->rate - t;
			struct timespec ts = { 0, (long)((wait < 1e-3 ? wait : 1e-3) * 1e9) };

			if (ts.tv_nsec > 0)
				nanosleep(&ts, NULL);
			continue;
		}
		for (uint64_t n = due - done < 64 ? due - done : 64; n; n--, done++)
			if (w->memcached)
				writer_set(w);
			else
				writer_page(w);
	}
}

static int writer_start(struct writer *w, struct guest *g, const struct args *a)
{
	int ret;

	w->g = g;
	w->rate = a->rate;
	w->touched_pct = a->touched_pct;
	w->same_pct = a->same_pct;
	w->memcached = a->memcached;
	w->rng = a->seed ^ 0x5752495445520000ull; /* apart from the fill's */
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	atomic_init(&w->attn, false);
	if ((ret = pthread_create(&w->thread, NULL, writer_thread, w))) {
		fprintf(stderr, "rdmig-perf: cannot start the writer: %s\n", strerror(ret));
		return -1;
	}
	w->started = true;
	return 0;
}

/*
 * Pauses the writer, as a VMM pauses the vCPUs: returns once the writer has
 * said it stopped storing. Its stores and dirty bits are visible here after
 * (the lock orders them).
 */
static void writer_pause(struct writer *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->hold = true;
	atomic_store_explicit(&w->attn, true, memory_order_release);
	while (!w->paused)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

/*
 * Lets a writer paused by writer_pause() store again. (A writer that has
 * not yet woken from the pause before is still paused: w->paused stays
 * true until it leaves the wait, so a pause asked meanwhile holds.)
 */
static void writer_release(struct writer *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->hold = false;
	atomic_store_explicit(&w->attn, false, memory_order_relaxed);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Ends the writer thread, paused or not. */
static void writer_stop(struct writer *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	atomic_store_explicit(&w->attn, true, memory_order_release);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	w->started = false;
}

/* --- the kernel's dirty log ---------------------------------------------------- */

/*
 * The VMM's dirty-log sync from the kernel's log: ORs the pages written
 * since the last sync into the bitmap the next pass gets, and into g->seen.
 * A log whose read and restart are two steps (soft-dirty) would lose a
 * store between them: the writer w (NULL: it is paused already) is stopped
 * for the sync, as CRIU freezes a task to read its soft-dirty bits.
 * Returns the dirty pages in the bitmap, or -1 (said why).
 */
static int64_t kernel_sync(struct guest *g, struct writer *w)
{
	bool stop = w && !dirtylog_atomic(g->log);
	uint64_t n = 0;
	char err[512];
	int ret;

	if (stop)
		writer_pause(w);
	ret = dirtylog_sync(g->log, g->bitmap, NULL, err, sizeof(err));
	if (stop)
		writer_release(w);
	if (ret) {
		progress_clear();
		fprintf(stderr, "rdmig-perf: dirty log: %s\n", err);
		return -1;
	}
	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t k = 0; k < g->words[i]; k++) {
			g->seen[i][k] |= g->bitmap[i][k];
			n += (uint64_t)__builtin_popcountll(g->bitmap[i][k]);
		}
	return (int64_t)n;
}

/*
 * Compares what the kernel reported (reported: g->seen, or a round's
 * g->bitmap) with what the writer stored to (g->live) and counts the pages
 * in one and not the other into k: a page never written must never be
 * reported (a log that does not restart, say), a page written must be (the
 * image check would catch a missed store only where it changed the page).
 */
static void kernel_check(const struct guest *g, uint64_t *const *reported, struct klog_stats *k)
{
	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t w = 0; w < g->words[i]; w++) {
			k->unwritten +=
				(uint64_t)__builtin_popcountll(reported[i][w] & ~g->live[i][w]);
			k->unreported +=
				(uint64_t)__builtin_popcountll(g->live[i][w] & ~reported[i][w]);
		}
	k->checked = true;
}

/* --- both ends ---------------------------------------------------------------- */

static int fail(const char *what, int ret)
{
	progress_clear();
	fprintf(stderr, "rdmig-perf: %s: %s (%s)\n", what, strerror(-ret), rdmig_last_error());
	return 1;
}

/*
 * --local: both ends are this process, so a key made for the run
 * authenticates them (unless RDMIG_PSK_FILE or RDMIG_AUTH says otherwise).
 * Between two hosts the key comes from RDMIG_PSK_FILE on each.
 */
static const uint8_t *local_key(void)
{
	static uint8_t key[32];
	static bool made;

	if (!made && getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		fprintf(stderr, "rdmig-perf: getrandom: %s\n", strerror(errno));
		exit(1);
	}
	made = true;
	return key;
}

static struct rdmig_opts make_opts(const struct args *a)
{
	struct rdmig_opts o;

	rdmig_opts_init(&o);
	if (a->local && !getenv("RDMIG_PSK_FILE") && !getenv("RDMIG_AUTH")) {
		o.psk = local_key();
		o.psk_len = 32;
	}
	o.workers = a->workers;
	o.max_bandwidth = a->max_bandwidth;
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
	double returned; /* now_s() when rdmig_dst_run() returned */
};

static int dst_prepare(struct dst_job *j)
{
	struct rdmig_opts o = make_opts(j->a);
	int ret;

	if (guest_alloc(&j->g, j->a, false))
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
	j->returned = now_s();
	if (j->ret)
		fprintf(stderr, "rdmig-perf: destination: %s (%s)\n", strerror(-j->ret),
			rdmig_last_error());
	return NULL;
}

static int run_dst(const struct args *a)
{
	struct dst_job j = { .a = a };
	uint64_t digest;

	if (dst_prepare(&j))
		return 1;
	fprintf(a->json ? stderr : stdout,
		"destination: listening on %s port %d, guest %" PRIu64 " MiB in %u regions\n",
		a->bind, j.port, a->size_mib, a->regions);
	fflush(stdout);
	dst_thread(&j);
	if (j.ret)
		return 1;
	digest = guest_digest(&j.g);
	if (a->json)
		printf("{\"role\":\"destination\",\"guest_bytes\":%" PRIu64 ",\"regions\":%u,"
		       "\"passes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64 ",\"duration_ns\":%" PRIu64
		       ",\"image_digest\":\"%016" PRIx64 "\"}\n",
		       a->size_mib << 20, a->regions, j.stats.passes, j.stats.wire_bytes,
		       j.stats.duration_ns, digest);
	else
		printf("destination: %" PRIu64
		       " passes, %.1f MiB received, image digest %016" PRIx64 "\n",
		       j.stats.passes, (double)j.stats.wire_bytes / MIB, digest);
	rdmig_dst_destroy(j.dst);
	guest_free(&j.g);
	return 0;
}

/* --- source --------------------------------------------------------------- */

/* Per-pass lines and the like go to stdout in the human form only. */
static bool human(const struct args *a)
{
	return !a->quiet && !a->silent && !a->json;
}

static void print_pass(const struct args *a, const struct rdmig_pass_stats *s)
{
	double secs = (double)s->duration_ns / 1e9;

	if (!human(a))
		return;
	progress_clear();
	/* same: dirty and unchanged ("false dirty"), with its share of dirty. */
	printf("  pass %2" PRIu64 ": %8" PRIu64 " dirty %8" PRIu64 " written %8" PRIu64
	       " zero-skip %7" PRIu64 " same (%3.0f%%) %7" PRIu64 " zero-fill %9.1f MiB %8.3f s "
	       "%8.1f MiB/s wire\n",
	       s->pass, s->dirty_pages, s->written_pages, s->skipped_zero, s->skipped_unchanged,
	       ratio(100.0 * (double)s->skipped_unchanged, (double)s->dirty_pages),
	       s->zero_filled_pages, (double)s->wire_bytes / MIB, secs,
	       s->wire_ns ? (double)s->wire_bytes / MIB / ((double)s->wire_ns / 1e9) : 0.0);
	fflush(stdout);
}

/* Keeps a pass for the report, with the estimate taken for it if any. */
static int record_pass(const struct args *a, struct result *res, const struct rdmig_pass_stats *s,
		       const struct rdmig_estimate *est)
{
	struct pass_rec *p = realloc(res->pass, (res->npass + 1) * sizeof(*p));

	if (!p) {
		fprintf(stderr, "rdmig-perf: out of memory\n");
		return 1;
	}
	res->pass = p;
	p += res->npass++;
	p->st = *s;
	p->predicted = est != NULL;
	p->predicted_ns = est ? est->final_pass_ns : 0;
	print_pass(a, s);
	return 0;
}

static void result_free(struct result *res)
{
	free(res->pass);
	res->pass = NULL;
	res->npass = 0;
}

/* Runs a pass over the dirty log in g->bitmap and records it. */
static int dirty_pass(const struct args *a, struct rdmig_src *src, struct guest *g,
		      const struct rdmig_dirty *dirty, const struct rdmig_estimate *est,
		      unsigned flags, struct result *res)
{
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	int ret;

	if ((ret = rdmig_src_pass(src, dirty, g->n, flags, &st)))
		return fail("pass", ret);
	return record_pass(a, res, &st, est);
}

/*
 * Fixed passes: each after a writer round with the guest stopped. Returns
 * with the last round's pages in g->bitmap, for the final pass.
 */
static int precopy_fixed(const struct args *a, struct rdmig_src *src, struct guest *g,
			 const struct rdmig_dirty *dirty, uint64_t *rng, struct result *res,
			 double t0)
{
	res->stop = "fixed";
	for (unsigned p = 0; p < a->passes; p++) {
		struct rdmig_estimate est = { .size = sizeof(est) };
		uint64_t n = writer_round(g, a->dirty_pct, a->same_pct, a->scatter, rng);
		bool have;

		/* The guest stopped: the kernel must report exactly the round's pages. */
		if (g->log) {
			if (kernel_sync(g, NULL) < 0)
				return 1;
			kernel_check(g, g->bitmap, &res->klog);
		}
		if (p + 1 == a->passes)
			break;
		have = rdmig_src_estimate(src, dirty, g->n, 0, &est) == 0;
		progress(a, "pass %u: %" PRIu64 " dirty pages; %.1f s elapsed", res->npass + 1, n,
			 now_s() - t0);
		if (dirty_pass(a, src, g, dirty, have ? &est : NULL, 0, res))
			return 1;
	}
	return 0;
}

/*
 * The VMM's loop, the writer thread running: sync the dirty log, ask for
 * the final pass it would take, run a pass unless that is short enough or
 * the pass limit is near. Returns with the writer paused and the final
 * pass's pages (the last sync's and everything since) in g->bitmap.
 */
static int precopy_loop(const struct args *a, struct rdmig_src *src, struct guest *g,
			const struct rdmig_dirty *dirty, struct writer *w, struct result *res,
			double t0)
{
	for (;;) {
		struct rdmig_estimate est = { .size = sizeof(est) };
		int64_t n = g->log ? kernel_sync(g, w) : (int64_t)sync_dirty_log(g);
		int ret;

		if (n < 0)
			return 1;
		ret = rdmig_src_estimate(src, dirty, g->n, 0, &est);
		if (ret == -ENODATA) {
			/* Nothing ever needed the wire: no rate to predict
			 * with, and nothing so far that the final pass could
			 * not skip. */
			res->stop = "no-estimate";
			break;
		}
		if (ret)
			return fail("rdmig_src_estimate", ret);
		res->decision = est;
		res->have_decision = true;
		/* An estimate from passes unlike this one (a scattered set
		 * after the first pass's large WRITEs) earns one more pass. */
		if (est.final_pass_ns <= a->downtime_ns &&
		    !(est.flags & RDMIG_ESTIMATE_EXTRAPOLATED)) {
			res->stop = "converged";
			break;
		}
		if (res->npass + 1 >= a->max_passes) {
			res->stop = "max-passes";
			break;
		}
		progress(a,
			 "pass %u: %" PRIu64 " dirty pages, final pass predicted %.2f ms%s, "
			 "target %.2f ms; %.1f s elapsed",
			 res->npass + 1, (uint64_t)n, (double)est.final_pass_ns / 1e6,
			 est.flags & RDMIG_ESTIMATE_EXTRAPOLATED ? " (extrapolated)" : "",
			 (double)a->downtime_ns / 1e6, now_s() - t0);
		if (dirty_pass(a, src, g, dirty, &est, 0, res))
			return 1;
		clear_dirty(g);
	}
	writer_pause(w);
	if (!g->log) {
		sync_dirty_log(g);
		return 0;
	}
	/* Every store is in now: the kernel must have reported each page
	 * written, and none other. */
	if (kernel_sync(g, NULL) < 0)
		return 1;
	kernel_check(g, g->seen, &res->klog);
	return 0;
}

/*
 * A VMM's monitoring thread: rdmig_src_progress() every millisecond while
 * the passes run, timed in batches of 16 calls (the clock's own cost
 * spread over them).
 */
struct poller {
	struct rdmig_src *src;
	pthread_t thread;
	atomic_bool stop;
	bool started;
	uint64_t calls;
	double ns, max_ns; /* summed, and the costliest batch's mean */
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct timespec ms = { 0, 1000000 };

	while (!atomic_load(&p->stop)) {
		struct rdmig_progress pr = { .size = sizeof(pr) };
		double t0 = now_ns(), batch;

		for (int i = 0; i < 16; i++)
			rdmig_src_progress(p->src, &pr);
		batch = (now_ns() - t0) / 16;
		p->ns += batch * 16;
		p->calls += 16;
		if (batch > p->max_ns)
			p->max_ns = batch;
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static void poller_stop(struct poller *p, struct result *res)
{
	if (!p->started)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	p->started = false;
	res->progress_calls = p->calls;
	res->progress_ns = p->calls ? p->ns / (double)p->calls : 0;
	res->progress_max_ns = p->max_ns;
}

/*
 * Migrates a synthetic guest to host:port and fills *res. Returns 0 when
 * the migration completed (the image check is in *res), else 1.
 */
static int run_src(const struct args *a, const char *host, const char *port, struct guest *dstg,
		   struct result *res)
{
	struct rdmig_opts o = make_opts(a);
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_dirty dirty[16];
	struct rdmig_src *src = NULL;
	uint64_t rng = a->seed;
	struct poller pl;
	struct dirtylog log = { .uffd = -1, .pagemap = -1, .clear_refs = -1 };
	struct writer w;
	struct guest g;
	double t0;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	memset(&pl, 0, sizeof(pl));
	res->total.size = sizeof(res->total);
	res->predicted.size = sizeof(res->predicted);
	if (guest_alloc(&g, a, a->dirty_log != DIRTYLOG_WRITER))
		return 1;
	guest_fill(&g, a->touched_pct, &rng);
	if ((ret = rdmig_src_create(&o, &src))) {
		src = NULL;
		ret = fail("rdmig_src_create", ret);
		goto out;
	}
	for (unsigned i = 0; i < g.n; i++) {
		if ((ret = rdmig_src_add_region(src, g.gpa[i], g.hva[i], g.len[i])) < 0) {
			ret = fail("rdmig_src_add_region", ret);
			goto out;
		}
		dirty[i] = (struct rdmig_dirty){ .bitmap = g.bitmap[i], .words = g.words[i] };
	}
	t0 = now_s();
	if ((ret = rdmig_src_connect(src, host, port))) {
		ret = fail("rdmig_src_connect", ret);
		goto out;
	}
	res->connect_secs = now_s() - t0;
	if (human(a))
		printf("source: connected to %s port %s in %.3f s; guest %" PRIu64
		       " MiB in %u regions\n",
		       host, port, res->connect_secs, a->size_mib, a->regions);

	/*
	 * The kernel logs from here, after connecting: the connection
	 * registered guest memory, and on Linux before 6.2 that pins every
	 * page with FOLL_WRITE (ib_umem_get breaks copy-on-write for
	 * read-only MRs too), a write fault that marks each page soft-dirty.
	 * Nothing stores to the guest until the first pass has started. (main
	 * tried the method already: a kernel without it failed the run
	 * before a peer waited.)
	 */
	if (a->dirty_log != DIRTYLOG_WRITER) {
		struct dirtylog_range r[16];
		char err[512];

		for (unsigned i = 0; i < g.n; i++)
			r[i] = (struct dirtylog_range){ g.hva[i], g.len[i] };
		if ((ret = dirtylog_open(&log, a->dirty_log, g.n, r, err, sizeof(err)))) {
			progress_clear();
			fprintf(stderr, "rdmig-perf: --dirty-log %s: %s\n",
				dirtylog_name(a->dirty_log), err);
			ret = 1;
			goto out;
		}
		g.log = &log;
		res->have_klog = true;
		res->klog.method = log.method;
		if (human(a))
			printf("source: dirty log from the kernel: %s\n",
			       dirtylog_name(log.method));
	}

	pl.src = src;
	pl.started = !pthread_create(&pl.thread, NULL, poller_main, &pl);

	/* Dirty logging is on from here: the first pass runs with the guest live. */
	t0 = now_s();
	if (a->loop && a->rate && writer_start(&w, &g, a)) {
		ret = 1;
		goto out;
	}
	progress(a, "pass 1: all %" PRIu64 " pages%s", g.pages,
		 w.started ? ", the writer running" : "");
	/* With --passes 0 the first pass is the final one, a stop-and-copy. */
	if ((ret = rdmig_src_pass(
		     src, NULL, 0,
		     RDMIG_PASS_ALL | (!a->loop && !a->passes && a->verify ? RDMIG_PASS_FINAL : 0),
		     &st))) {
		ret = fail("first pass", ret);
		goto out;
	}
	if ((ret = record_pass(a, res, &st, NULL)))
		goto out;
	if (a->loop)
		ret = precopy_loop(a, src, &g, dirty, &w, res, t0);
	else
		ret = precopy_fixed(a, src, &g, dirty, &rng, res, t0);
	if (ret)
		goto out;

	/*
	 * The guest is stopped and g.bitmap holds what changed since the pass
	 * before. (Fixed passes with --passes 0: the first pass was the final
	 * one, a stop-and-copy.)
	 */
	if (a->loop || a->passes > 0) {
		ret = rdmig_src_estimate(src, dirty, g.n, 0, &res->predicted);
		if (ret && ret != -ENODATA) {
			ret = fail("rdmig_src_estimate", ret);
			goto out;
		}
		res->have_predicted = ret == 0;
		if (res->have_predicted && human(a)) {
			const struct rdmig_estimate *e = &res->predicted;

			progress_clear();
			printf("  final pass predicted: %.3f s for %" PRIu64 " dirty pages, "
			       "%.1f MiB on the wire (wire %.1f MiB/s, scan %.1f MiB/s, "
			       "overhead %.3f s)\n",
			       (double)e->final_pass_ns / 1e9, e->dirty_pages,
			       (double)e->wire_bytes / MIB, (double)e->wire_rate / MIB,
			       (double)e->scan_rate / MIB, (double)e->overhead_ns / 1e9);
		}
		progress(a, "final pass %u: %" PRIu64 " dirty pages, the guest stopped",
			 res->npass + 1, count_dirty(&g));
		if (dirty_pass(a, src, &g, dirty, res->have_predicted ? &res->predicted : NULL,
			       a->verify ? RDMIG_PASS_FINAL : 0, res)) {
			ret = 1;
			goto out;
		}
	}
	rdmig_src_stats(src, &res->total);
	poller_stop(&pl, res);
	res->complete_t0 = now_s();
	if ((ret = rdmig_src_complete(src))) {
		ret = fail("rdmig_src_complete", ret);
		goto out;
	}
	res->complete_secs = now_s() - res->complete_t0;
	res->secs = now_s() - t0;
	res->ok = true;
	progress_clear();
	writer_stop(&w);
	if (g.log) {
		res->klog.syncs = log.syncs;
		res->klog.sync_ns = log.sync_ns;
		res->klog.scanned_bytes = log.scanned_bytes;
		res->klog.dirty_pages = log.dirty_pages;
		dirtylog_close(&log);
	}
	res->have_writer = a->loop && a->rate;
	res->writer = w.st;
	res->digest = guest_digest(&g);
	rdmig_src_destroy(src);
	src = NULL;

	if (dstg) {
		res->checked = true;
		res->exact = true;
		for (unsigned i = 0; i < g.n && res->exact; i++) {
			if (!memcmp(g.hva[i], dstg->hva[i], g.len[i]))
				continue;
			res->exact = false;
			for (uint64_t off = 0; off < g.len[i]; off += PAGE)
				if (memcmp(g.hva[i] + off, dstg->hva[i] + off, PAGE)) {
					res->mismatch_gpa = g.gpa[i] + off;
					break;
				}
		}
	}
	guest_free(&g);
	return 0;
out:
	/* Abandoning the session tells the destination, which then fails too. */
	progress_clear();
	poller_stop(&pl, res);
	writer_stop(&w);
	dirtylog_close(&log);
	rdmig_src_destroy(src);
	guest_free(&g);
	return ret;
}

/* --- the report ------------------------------------------------------------- */

/* The predicted final pass's error against the measured one, in percent. */
static double error_pct(const struct result *r)
{
	double m = (double)r->pass[r->npass - 1].st.duration_ns;

	return ratio(100.0 * ((double)r->predicted.final_pass_ns - m), m);
}

/*
 * Pages the dirty log marked dirty in the passes after the first (which
 * takes every page, logged or not) and those of them rdmig found unchanged
 * (skipped_unchanged: the destination's hash of what it holds matched):
 * "false dirty".
 */
static void false_dirty(const struct result *r, uint64_t *dirty, uint64_t *unchanged)
{
	*dirty = *unchanged = 0;
	for (unsigned i = 1; i < r->npass; i++) {
		*dirty += r->pass[i].st.dirty_pages;
		*unchanged += r->pass[i].st.skipped_unchanged;
	}
}

/* A sync's cost per GiB of guest memory it covered. */
static double sync_ms_per_gib(const struct klog_stats *k)
{
	return ratio((double)k->sync_ns / 1e6, (double)k->scanned_bytes / (1024.0 * MIB));
}

static bool klog_bad(const struct result *r)
{
	return r->have_klog && r->klog.checked && (r->klog.unwritten || r->klog.unreported);
}

static const char *skip_name(const struct args *a)
{
	return a->skip < 0 ? "default" : a->skip ? "on" : "off";
}

static void print_human(const struct args *a, const struct result *r)
{
	const struct rdmig_pass_stats *t = &r->total, *fin = &r->pass[r->npass - 1].st;
	double guest = (double)(a->size_mib << 20);

	if (!strcmp(r->stop, "converged"))
		printf("result: %u passes; pre-copy converged: final pass predicted %.2f ms <= "
		       "target %.2f ms\n",
		       r->npass, (double)r->decision.final_pass_ns / 1e6,
		       (double)a->downtime_ns / 1e6);
	else if (!strcmp(r->stop, "max-passes"))
		printf("result: %u passes; pre-copy stopped at the pass limit (%u): final pass "
		       "predicted %.2f ms > target %.2f ms\n",
		       r->npass, a->max_passes, (double)r->decision.final_pass_ns / 1e6,
		       (double)a->downtime_ns / 1e6);
	else if (!strcmp(r->stop, "no-estimate"))
		printf("result: %u passes; pre-copy ended: no estimate (nothing has needed the "
		       "wire)\n",
		       r->npass);
	else
		printf("result: %u passes; fixed: %u after the first\n", r->npass, a->passes);
	printf("  %-20s %u (%u pre-copy, 1 final)\n", "passes", r->npass, r->npass - 1);
	printf("  %-20s %.3f s from the first pass to completion (connect %.3f s)\n", "total time",
	       r->secs, r->connect_secs);
	if (r->ok) {
		printf("  %-20s %.2f ms (rdmig_src_complete)", "complete", r->complete_secs * 1e3);
		if (r->have_dst)
			printf(", destination %.3f ms from COMPLETE to its ACK",
			       (double)r->dst.complete_ns / 1e6);
		if (r->have_dst_return)
			printf(", its run returned %.2f ms after complete was called",
			       r->dst_return_secs * 1e3);
		printf("\n");
	}
	printf("  %-20s %.2f ms measured", "final pass", (double)fin->duration_ns / 1e6);
	if (r->have_predicted)
		printf(", %.2f ms predicted (error %+.1f%%)",
		       (double)r->predicted.final_pass_ns / 1e6, error_pct(r));
	else
		printf(", no prediction");
	printf(", %" PRIu64 " dirty pages, %s", fin->dirty_pages,
	       a->verify ? "verified" : "not verified");
	if (fin->mismatched_pages || fin->mismatch_pending)
		printf(" (%" PRIu64 " mismatched, %" PRIu64 " sent again, %" PRIu64
		       " still differ)",
		       fin->mismatched_pages, fin->resent_pages, fin->mismatch_pending);
	printf("\n");
	if (r->have_decision)
		printf("  %-20s %.2f ms predicted for %" PRIu64 " dirty pages at the last sync\n",
		       "pre-copy decision", (double)r->decision.final_pass_ns / 1e6,
		       r->decision.dirty_pages);
	printf("  %-20s %.1f MiB in %" PRIu64 " WRITEs, %" PRIu64 " pages written\n", "wire",
	       (double)t->wire_bytes / MIB, t->writes, t->written_pages);
	printf("  %-20s %.1f MiB (%" PRIu64 " pages)\n", "skipped: zero",
	       (double)(t->skipped_zero * PAGE) / MIB, t->skipped_zero);
	printf("  %-20s %.1f MiB (%" PRIu64 " pages)\n", "skipped: unchanged",
	       (double)(t->skipped_unchanged * PAGE) / MIB, t->skipped_unchanged);
	printf("  %-20s %.1f MiB (%" PRIu64 " pages)\n", "skipped: ballooned",
	       (double)(t->skipped_ballooned * PAGE) / MIB, t->skipped_ballooned);
	printf("  %-20s %.1f MiB (%" PRIu64 " pages)\n", "zero-filled",
	       (double)(t->zero_filled_pages * PAGE) / MIB, t->zero_filled_pages);
	printf("  %-20s %.1f MiB/s (guest %" PRIu64 " MiB over the total time)\n", "effective rate",
	       ratio(guest / MIB, r->secs), a->size_mib);
	printf("  %-20s %.1f MiB/s over the time the wire was busy (%.3f s), %.1f MiB/s over "
	       "the total time\n",
	       "wire rate", ratio((double)t->wire_bytes / MIB, (double)t->wire_ns / 1e9),
	       (double)t->wire_ns / 1e9, ratio((double)t->wire_bytes / MIB, r->secs));
	if (a->max_bandwidth && r->npass) {
		const struct rdmig_pass_stats *first = &r->pass[0].st;

		printf("  %-20s %.1f MiB/s (%" PRIu64 " bytes/s): pass 1 at %.3f of it, the "
		       "final pass at %.3f (bytes over the pass's time)\n",
		       "bandwidth cap", (double)a->max_bandwidth / MIB, a->max_bandwidth,
		       ratio((double)first->wire_bytes * 1e9 / (double)first->duration_ns,
			     (double)a->max_bandwidth),
		       ratio((double)fin->wire_bytes * 1e9 / (double)fin->duration_ns,
			     (double)a->max_bandwidth));
	}
	if (r->progress_calls)
		printf("  %-20s %.0f ns a call (mean of %" PRIu64 " calls from another thread, "
		       "16 every ms while the passes ran; costliest batch %.0f ns a call)\n",
		       "rdmig_src_progress", r->progress_ns, r->progress_calls, r->progress_max_ns);
	if (r->have_writer)
		printf("  %-20s %" PRIu64 " pages/s asked, %.0f done: %" PRIu64 " stores (%" PRIu64
		       " data, %" PRIu64 " zero, %" PRIu64 " same) in %.3f s\n",
		       "writer", a->rate,
		       ratio((double)(r->writer.data + r->writer.zero + r->writer.same),
			     r->writer.secs),
		       r->writer.data + r->writer.zero + r->writer.same, r->writer.data,
		       r->writer.zero, r->writer.same, r->writer.secs);
	{
		uint64_t fd, fu;

		false_dirty(r, &fd, &fu);
		printf("  %-20s %s", "dirty log",
		       dirtylog_name(r->have_klog ? r->klog.method : DIRTYLOG_WRITER));
		if (r->have_klog)
			printf(" (the kernel's): %" PRIu64 " syncs, %.3f ms each, %.2f ms per GiB "
			       "scanned%s; %" PRIu64 " pages reported",
			       r->klog.syncs,
			       ratio((double)r->klog.sync_ns / 1e6, (double)r->klog.syncs),
			       sync_ms_per_gib(&r->klog),
			       r->klog.method == DIRTYLOG_SOFT_DIRTY
				       ? ", the writer stopped meanwhile"
				       : "",
			       r->klog.dirty_pages);
		else
			printf(" (the writer logs its own stores)");
		printf("\n");
		if (r->have_klog && r->klog.checked)
			printf("  %-20s %s: %" PRIu64 " pages reported and never written, %" PRIu64
			       " written and never reported\n",
			       "dirty log check", klog_bad(r) ? "WRONG" : "exact",
			       r->klog.unwritten, r->klog.unreported);
		if (a->skip == 0)
			printf("  %-20s unknown: skipping off\n", "false dirty");
		else
			printf("  %-20s %" PRIu64 " of %" PRIu64
			       " pages logged dirty after the first "
			       "pass were unchanged (%.1f%%)\n",
			       "false dirty", fu, fd, ratio(100.0 * (double)fu, (double)fd));
	}
	if (!r->checked)
		printf("  %-20s digest %016" PRIx64 "\n", "image", r->digest);
	else if (r->exact)
		printf("  %-20s MATCH (%" PRIu64 " MiB compared byte for byte), digest %016" PRIx64
		       "\n",
		       "image", a->size_mib, r->digest);
	else
		printf("  %-20s MISMATCH at gpa 0x%" PRIx64 "\n", "image", r->mismatch_gpa);
	if (r->have_dst)
		printf("  %-20s %" PRIu64 " passes confirmed, %.1f MiB received\n", "destination",
		       r->dst.passes, (double)r->dst.wire_bytes / MIB);
}

/* One JSON object, no newline. Keys are stable; a value unknown is null. */
static void print_json(const struct args *a, const struct result *r)
{
	const struct rdmig_pass_stats *t = &r->total;
	double guest = (double)(a->size_mib << 20);
	uint64_t stores = r->writer.data + r->writer.zero + r->writer.same;

	printf("{\"role\":\"source\",\"ok\":%s,\"mode\":\"%s\",\"stop\":", r->ok ? "true" : "false",
	       a->loop ? "loop" : "fixed");
	if (r->stop)
		printf("\"%s\"", r->stop);
	else
		printf("null");
	printf(",\"guest_bytes\":%" PRIu64 ",\"regions\":%u,\"page_size\":%llu,"
	       "\"touched_pct\":%u,\"same_pct\":%u,\"skip\":\"%s\",\"workers\":%u,"
	       "\"rate_pages_per_s\":%" PRIu64 ",\"workload\":\"%s\",",
	       a->size_mib << 20, a->regions, PAGE, a->touched_pct, a->same_pct, skip_name(a),
	       t->workers, a->loop ? a->rate : 0, a->memcached ? "memcached" : "random");
	if (a->loop)
		printf("\"downtime_target_ns\":%" PRIu64 ",\"max_passes\":%u,", a->downtime_ns,
		       a->max_passes);
	else
		printf("\"downtime_target_ns\":null,\"max_passes\":null,");
	printf("\"passes\":%u,\"connect_ns\":%.0f,\"total_ns\":%.0f,", r->npass,
	       r->connect_secs * 1e9, r->secs * 1e9);
	if (r->ok)
		printf("\"complete_ns\":%.0f,", r->complete_secs * 1e9);
	else
		printf("\"complete_ns\":null,");
	if (r->npass) {
		const struct rdmig_pass_stats *fin = &r->pass[r->npass - 1].st;

		printf("\"final_pass\":{\"measured_ns\":%" PRIu64 ",\"dirty_pages\":%" PRIu64
		       ",\"wire_bytes\":%" PRIu64 ",\"writes\":%" PRIu64 ",\"verified\":%s"
		       ",\"mismatched_pages\":%" PRIu64 ",\"resent_pages\":%" PRIu64 ",",
		       fin->duration_ns, fin->dirty_pages, fin->wire_bytes, fin->writes,
		       a->verify ? "true" : "false", fin->mismatched_pages, fin->resent_pages);
		if (r->have_predicted)
			printf("\"predicted_ns\":%" PRIu64 ",\"predicted_wire_bytes\":%" PRIu64
			       ",\"predicted_writes\":%" PRIu64 ",\"extrapolated\":%s"
			       ",\"error_pct\":%.2f},",
			       r->predicted.final_pass_ns, r->predicted.wire_bytes,
			       r->predicted.writes,
			       r->predicted.flags & RDMIG_ESTIMATE_EXTRAPOLATED ? "true" : "false",
			       error_pct(r));
		else
			printf("\"predicted_ns\":null,\"predicted_wire_bytes\":null,"
			       "\"predicted_writes\":null,\"extrapolated\":null,"
			       "\"error_pct\":null},");
	} else {
		printf("\"final_pass\":null,");
	}
	if (r->have_decision)
		printf("\"decision\":{\"predicted_ns\":%" PRIu64 ",\"dirty_pages\":%" PRIu64 "},",
		       r->decision.final_pass_ns, r->decision.dirty_pages);
	else
		printf("\"decision\":null,");
	printf("\"wire_bytes\":%" PRIu64 ",\"writes\":%" PRIu64 ",\"dirty_pages\":%" PRIu64
	       ",\"scanned_pages\":%" PRIu64 ",\"written_pages\":%" PRIu64 ","
	       "\"skipped_bytes\":{\"zero\":%" PRIu64 ",\"unchanged\":%" PRIu64
	       ",\"ballooned\":%" PRIu64 "},\"zero_filled_bytes\":%" PRIu64 ","
	       "\"wire_ns\":%" PRIu64 ",\"scan_ns\":%" PRIu64 ",",
	       t->wire_bytes, t->writes, t->dirty_pages, t->scanned_pages, t->written_pages,
	       (uint64_t)(t->skipped_zero * PAGE), (uint64_t)(t->skipped_unchanged * PAGE),
	       (uint64_t)(t->skipped_ballooned * PAGE), (uint64_t)(t->zero_filled_pages * PAGE),
	       t->wire_ns, t->scan_ns);
	printf("\"effective_rate_bytes_per_s\":%.0f,\"wire_rate_bytes_per_s\":%.0f,"
	       "\"wire_rate_total_bytes_per_s\":%.0f,",
	       ratio(guest, r->secs), ratio((double)t->wire_bytes, (double)t->wire_ns / 1e9),
	       ratio((double)t->wire_bytes, r->secs));
	printf("\"max_bandwidth\":%" PRIu64 ",\"progress_calls\":%" PRIu64
	       ",\"progress_call_ns\":%.1f,",
	       a->max_bandwidth, r->progress_calls, r->progress_ns);
	if (r->have_writer)
		printf("\"writer\":{\"rate_pages_per_s\":%" PRIu64 ",\"stores\":%" PRIu64
		       ",\"data\":%" PRIu64 ",\"zero\":%" PRIu64 ",\"same\":%" PRIu64
		       ",\"secs\":%.3f,\"achieved_pages_per_s\":%.0f},",
		       a->rate, stores, r->writer.data, r->writer.zero, r->writer.same,
		       r->writer.secs, ratio((double)stores, r->writer.secs));
	else
		printf("\"writer\":null,");
	{
		uint64_t fd, fu;

		false_dirty(r, &fd, &fu);
		printf("\"dirty_log\":{\"method\":\"%s\",\"kernel\":%s,",
		       dirtylog_name(r->have_klog ? r->klog.method : DIRTYLOG_WRITER),
		       r->have_klog ? "true" : "false");
		if (r->have_klog)
			printf("\"syncs\":%" PRIu64 ",\"sync_ns\":%" PRIu64
			       ",\"scanned_bytes\":%" PRIu64 ",\"sync_ms_per_gib\":%.3f"
			       ",\"reported_pages\":%" PRIu64 ",\"checked\":%s,",
			       r->klog.syncs, r->klog.sync_ns, r->klog.scanned_bytes,
			       sync_ms_per_gib(&r->klog), r->klog.dirty_pages,
			       r->klog.checked ? "true" : "false");
		else
			printf("\"syncs\":null,\"sync_ns\":null,\"scanned_bytes\":null,"
			       "\"sync_ms_per_gib\":null,\"reported_pages\":null,\"checked\":"
			       "null,");
		if (r->have_klog && r->klog.checked)
			printf("\"unwritten_pages\":%" PRIu64 ",\"unreported_pages\":%" PRIu64 "},",
			       r->klog.unwritten, r->klog.unreported);
		else
			printf("\"unwritten_pages\":null,\"unreported_pages\":null},");
		printf("\"false_dirty\":{\"dirty_pages\":%" PRIu64 ",\"unchanged_pages\":%" PRIu64
		       ",\"pct\":",
		       fd, fu);
		if (a->skip == 0)
			printf("null},");
		else
			printf("%.2f},", ratio(100.0 * (double)fu, (double)fd));
	}
	printf("\"per_pass\":[");
	for (unsigned i = 0; i < r->npass; i++) {
		const struct pass_rec *p = &r->pass[i];

		printf("%s{\"pass\":%" PRIu64 ",\"dirty_pages\":%" PRIu64
		       ",\"written_pages\":%" PRIu64 ",\"wire_bytes\":%" PRIu64
		       ",\"writes\":%" PRIu64 ",\"skipped_zero\":%" PRIu64
		       ",\"skipped_unchanged\":%" PRIu64 ",\"skipped_ballooned\":%" PRIu64
		       ",\"zero_filled_pages\":%" PRIu64 ",\"duration_ns\":%" PRIu64
		       ",\"wire_ns\":%" PRIu64 ",\"scan_ns\":%" PRIu64 ",\"false_dirty_pct\":%.2f"
		       ",\"predicted_ns\":",
		       i ? "," : "", p->st.pass, p->st.dirty_pages, p->st.written_pages,
		       p->st.wire_bytes, p->st.writes, p->st.skipped_zero, p->st.skipped_unchanged,
		       p->st.skipped_ballooned, p->st.zero_filled_pages, p->st.duration_ns,
		       p->st.wire_ns, p->st.scan_ns,
		       ratio(100.0 * (double)p->st.skipped_unchanged, (double)p->st.dirty_pages));
		if (p->predicted)
			printf("%" PRIu64 "}", p->predicted_ns);
		else
			printf("null}");
	}
	printf("],\"image\":\"%s\",", !r->ok	    ? "failed"
				      : !r->checked ? "unchecked"
				      : r->exact    ? "exact"
						    : "mismatch");
	if (r->checked && !r->exact)
		printf("\"mismatch_gpa\":%" PRIu64 ",", r->mismatch_gpa);
	else
		printf("\"mismatch_gpa\":null,");
	if (r->ok)
		printf("\"image_digest\":\"%016" PRIx64 "\",", r->digest);
	else
		printf("\"image_digest\":null,");
	if (r->have_dst)
		printf("\"destination\":{\"passes\":%" PRIu64 ",\"wire_bytes\":%" PRIu64
		       ",\"duration_ns\":%" PRIu64 ",\"complete_ns\":%" PRIu64
		       ",\"returned_after_complete_ns\":",
		       r->dst.passes, r->dst.wire_bytes, r->dst.duration_ns, r->dst.complete_ns);
	if (r->have_dst && r->have_dst_return)
		printf("%.0f}}", r->dst_return_secs * 1e9);
	else if (r->have_dst)
		printf("null}}");
	else
		printf("\"destination\":null}");
}

/*
 * Prints the report of a source run (not for a matrix row) and returns the
 * exit status: 1 if the migration failed or the image is not exact.
 */
static int report(const struct args *a, const struct result *r, int ret)
{
	if (a->json) {
		print_json(a, r);
		printf("\n");
	} else if (!ret && r->ok) {
		print_human(a, r);
	}
	if (klog_bad(r))
		fprintf(stderr,
			"rdmig-perf: the kernel's dirty log (%s) is wrong: %" PRIu64
			" pages reported and never written, %" PRIu64
			" written and never reported\n",
			dirtylog_name(r->klog.method), r->klog.unwritten, r->klog.unreported);
	return ret || !r->ok || (r->checked && !r->exact) || klog_bad(r) ? 1 : 0;
}

/* Both ends in this process: a destination thread and the source. */
static int run_local(const struct args *a, struct result *res)
{
	struct dst_job j;
	pthread_t t;
	char port[16];
	int ret;

	memset(res, 0, sizeof(*res));
	memset(&j, 0, sizeof(j));
	j.a = a;
	if (dst_prepare(&j)) {
		rdmig_dst_destroy(j.dst);
		guest_free(&j.g);
		return 1;
	}
	snprintf(port, sizeof(port), "%d", j.port);
	pthread_create(&t, NULL, dst_thread, &j);
	ret = run_src(a, a->bind, port, &j.g, res);
	pthread_join(t, NULL);
	if (!ret && j.ret)
		ret = 1;
	if (!j.ret) {
		res->have_dst = true;
		res->dst = j.stats;
	}
	if (!j.ret && res->ok) {
		res->have_dst_return = true;
		res->dst_return_secs = j.returned - res->complete_t0;
	}
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
	bool first = true;
	int bad = 0;

	if (base->json)
		printf("{\"matrix\":[");
	else
		printf("%-8s %-5s %-7s %6s %10s %10s %10s %8s %10s %10s  %s\n", "touched", "skip",
		       "workers", "passes", "wire MiB", "zero MiB", "same MiB", "time s",
		       "eff MiB/s", "wire MiB/s", "image");
	for (unsigned t = 0; t < 3; t++)
		for (int sk = 0; sk < 2; sk++)
			for (unsigned w = 0; w < 3; w++) {
				struct args a = *base;
				struct result r;
				int ret;

				a.touched_pct = touched[t];
				a.skip = sk;
				a.workers = workers[w];
				a.silent = true;
				a.port = "0";
				ret = run_local(&a, &r);
				bad |= ret || !r.ok || !r.exact;
				if (base->json) {
					printf("%s", first ? "" : ",");
					print_json(&a, &r);
					first = false;
					result_free(&r);
					continue;
				}
				printf("%7u%% %-5s %7u %6u %10.1f %10.1f %10.1f %8.3f %10.1f "
				       "%10.1f  "
				       "%s\n",
				       touched[t], sk ? "on" : "off", workers[w], r.npass,
				       (double)r.total.wire_bytes / MIB,
				       (double)(r.total.skipped_zero + r.total.zero_filled_pages) *
					       PAGE / MIB,
				       (double)r.total.skipped_unchanged * PAGE / MIB, r.secs,
				       ratio((double)a.size_mib, r.secs),
				       ratio((double)r.total.wire_bytes / MIB,
					     (double)r.total.wire_ns / 1e9),
				       ret || !r.ok ? "FAILED"
				       : r.exact    ? "exact"
						    : "MISMATCH");
				result_free(&r);
			}
	if (base->json)
		printf("],\"exact\":%s}\n", bad ? "false" : "true");
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct result r;
	struct args a;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	progress_tty = isatty(STDERR_FILENO);
	if (parse(argc, argv, &a))
		return 2;
	/* Read when a handle is created: set before any is. */
	if (a.transport)
		setenv("RDMIG_TRANSPORT", a.transport, 1);
	if (a.have_wire_mbps) {
		char mbps[24];

		snprintf(mbps, sizeof(mbps), "%" PRIu64, a.wire_mbps);
		setenv("RDMIG_LOOPBACK_RATE_MBPS", mbps, 1);
	}
	/* A kernel without the log asked for fails here, before any peer waits. */
	if (a.dirty_log != DIRTYLOG_WRITER && (a.local || a.host)) {
		char err[512];

		if (dirtylog_probe(a.dirty_log, &a.dirty_log, err, sizeof(err))) {
			fprintf(stderr, "rdmig-perf: --dirty-log %s: %s\n",
				dirtylog_name(a.dirty_log), err);
			return 1;
		}
	}
	if (a.matrix)
		return run_matrix(&a);
	if (!a.local && !a.host)
		return run_dst(&a);
	if (a.local)
		ret = run_local(&a, &r);
	else
		ret = run_src(&a, a.host, a.port, NULL, &r);
	ret = report(&a, &r, ret);
	result_free(&r);
	return ret;
}
