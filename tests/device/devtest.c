/* SPDX-License-Identifier: MIT */
/* Device test helpers; see devtest.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>
#include <time.h>

#include <infiniband/verbs.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataplane/xport.h"
#include "devtest.h"

bool dt_loopback(void)
{
	const char *t = getenv("RDMIG_TRANSPORT");

	return t && !strcmp(t, "loopback");
}

const struct rdmig__xp_ops *dt_transport(void)
{
	return dt_loopback() ? &rdmig__xp_loopback : &rdmig__xp_verbs;
}

const char *dt_psk_file(void)
{
	static char path[64];
	uint8_t key[32];
	FILE *f;
	int fd;

	if (path[0])
		return path;
	snprintf(path, sizeof(path), "/tmp/rdmig-test-key.XXXXXX");
	fd = mkstemp(path); /* mode 0600 */
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f || getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key) ||
	    fwrite(key, sizeof(key), 1, f) != 1 || fclose(f)) {
		fprintf(stderr, "cannot write a test key to %s\n", path);
		exit(1);
	}
	return path;
}

static void dt_remove_key(void)
{
	unlink(dt_psk_file());
}

const char *devtest_ip(void)
{
	const char *ip = getenv("RDMIG_TEST_IP");
	struct ibv_device **list;
	int n = 0;

	/* Every session of the run is authenticated with a key made for it. */
	if (!getenv("RDMIG_PSK_FILE") && !getenv("RDMIG_AUTH")) {
		setenv("RDMIG_PSK_FILE", dt_psk_file(), 1);
		atexit(dt_remove_key);
	}

	if (dt_loopback()) {
		printf("transport: loopback (no device)\n");
		return "127.0.0.1";
	}

	list = ibv_get_device_list(&n);
	if (list)
		ibv_free_device_list(list);
	if (!ip || !*ip || n == 0) {
		printf("SKIP: no RDMA device (%d devices) or RDMIG_TEST_IP unset: run through "
		       "ci/rxe-run.sh\n",
		       n);
		exit(77);
	}
	return ip;
}

uint64_t dt_rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t dt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void dt_guest_init(struct dt_guest *g, unsigned n, const uint64_t *gpa, const uint64_t *len)
{
	memset(g, 0, sizeof(*g));
	g->n = n;
	for (unsigned i = 0; i < n; i++) {
		uint64_t pages = len[i] / DT_PAGE;

		g->gpa[i] = gpa[i];
		g->len[i] = len[i];
		g->hva[i] = mmap(NULL, len[i], PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		g->bitmap[i] = calloc((pages + 63) / 64, sizeof(uint64_t));
		if (g->hva[i] == MAP_FAILED || !g->bitmap[i]) {
			fprintf(stderr, "cannot allocate a test guest\n");
			exit(1);
		}
	}
}

void dt_guest_fini(struct dt_guest *g)
{
	for (unsigned i = 0; i < g->n; i++) {
		munmap(g->hva[i], g->len[i]);
		free(g->bitmap[i]);
	}
	memset(g, 0, sizeof(*g));
}

void dt_guest_fill(struct dt_guest *g, uint64_t *rng)
{
	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t k = 0; k < g->len[i] / 8; k++)
			((uint64_t *)g->hva[i])[k] = dt_rng(rng);
}

static bool mark(struct dt_guest *g, unsigned i, uint64_t p, uint64_t *rng)
{
	uint64_t *w = (uint64_t *)(g->hva[i] + p * DT_PAGE) + dt_rng(rng) % (DT_PAGE / 8);
	uint64_t bit = 1ull << (p % 64);
	bool fresh = !(g->bitmap[i][p / 64] & bit);

	*w = dt_rng(rng) | 1; /* never the value already there by chance */
	g->bitmap[i][p / 64] |= bit;
	return fresh;
}

uint64_t dt_guest_write(struct dt_guest *g, uint64_t count, uint64_t *rng)
{
	uint64_t dirty = 0;

	for (unsigned i = 0; i < g->n; i++) {
		uint64_t pages = g->len[i] / DT_PAGE;

		memset(g->bitmap[i], 0, (pages + 63) / 64 * sizeof(uint64_t));
		dirty += mark(g, i, 0, rng);
		dirty += mark(g, i, pages - 1, rng);
		for (uint64_t k = 0; k < count; k++)
			dirty += mark(g, i, dt_rng(rng) % pages, rng);
	}
	return dirty;
}

int64_t dt_guest_diff(const struct dt_guest *a, const struct dt_guest *b, unsigned *region)
{
	for (unsigned i = 0; i < a->n; i++) {
		if (!memcmp(a->hva[i], b->hva[i], a->len[i]))
			continue;
		for (uint64_t p = 0; p < a->len[i] / DT_PAGE; p++)
			if (memcmp(a->hva[i] + p * DT_PAGE, b->hva[i] + p * DT_PAGE, DT_PAGE)) {
				*region = i;
				return (int64_t)p;
			}
	}
	return -1;
}

uint64_t dt_guest_bytes(const struct dt_guest *g)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < g->n; i++)
		n += g->len[i];
	return n;
}

int dt_mr_count(pid_t pid)
{
	char line[512], needle[32];
	FILE *f;
	int n = 0;

	if (dt_loopback())
		return rdmig__loopback_exposed_mrs();
	f = popen("rdma resource show mr 2>/dev/null", "r");
	if (!f)
		return -1;
	/*
	 * The kernel names the thread that registered an MR, not the
	 * process; once that thread has exited (connect's helpers register
	 * MR segments and are joined) it names none. Tests run one at a
	 * time: an MR with no pid is one of ours.
	 */
	snprintf(needle, sizeof(needle), " pid %d ", (int)pid);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle) || !strstr(line, " pid "))
			n++;
	return pclose(f) == 0 ? n : -1;
}

static void *dst_main(void *arg)
{
	struct dt_dst *d = arg;

	d->stats.size = sizeof(d->stats);
	d->ret = rdmig_dst_run(d->dst, &d->stats);
	snprintf(d->err, sizeof(d->err), "%s", rdmig_last_error());
	return NULL;
}

void dt_dst_start(struct dt_dst *d, const char *ip, const struct dt_guest *g, unsigned flags,
		  const struct rdmig_opts *opts)
{
	struct rdmig_opts o;
	int port;

	memset(d, 0, sizeof(*d));
	if (opts)
		o = *opts;
	else
		rdmig_opts_init(&o);
	o.accept_timeout_ms = 60000;
	assert_int_equal(rdmig_dst_create(&o, &d->dst), 0);
	for (unsigned i = 0; i < g->n; i++)
		assert_int_equal(
			rdmig_dst_add_region(d->dst, g->gpa[i], g->hva[i], g->len[i], flags),
			(int)i);
	port = rdmig_dst_listen(d->dst, ip, "0");
	assert_true(port > 0);
	snprintf(d->port, sizeof(d->port), "%d", port);
	assert_int_equal(pthread_create(&d->thread, NULL, dst_main, d), 0);
}

int dt_dst_join(struct dt_dst *d)
{
	pthread_join(d->thread, NULL);
	rdmig_dst_destroy(d->dst);
	d->dst = NULL;
	return d->ret;
}

struct rdmig_src *dt_src_connect(const char *ip, const struct dt_dst *d, const struct dt_guest *g,
				 const struct rdmig_opts *opts)
{
	struct rdmig_src *src;

	assert_int_equal(rdmig_src_create(opts, &src), 0);
	for (unsigned i = 0; i < g->n; i++)
		assert_int_equal(rdmig_src_add_region(src, g->gpa[i], g->hva[i], g->len[i]),
				 (int)i);
	if (rdmig_src_connect(src, ip, d->port))
		fail_msg("connect: %s", rdmig_last_error());
	return src;
}

void dt_dirty(const struct dt_guest *g, struct rdmig_dirty *dirty)
{
	for (unsigned i = 0; i < g->n; i++)
		dirty[i] = (struct rdmig_dirty){ .bitmap = g->bitmap[i],
						 .words = (g->len[i] / DT_PAGE + 63) / 64 };
}
