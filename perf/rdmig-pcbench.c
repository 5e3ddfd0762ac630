/* SPDX-License-Identifier: MIT */
/*
 * rdmig-pcbench: what the post-copy install engine (dataplane/uffd.c) costs
 * on this host, with the data already in R (no network): install cost per
 * page through rdmig__pc_arrived() for 1, 16 and 256 pages per call, with
 * UFFDIO_CONTINUE (memfd) and UFFDIO_COPY (copy fallback), and the fault
 * round trip (a thread touches an outstanding page; the request callback
 * reports it arrived at once; the thread is woken). Interleaved rounds,
 * medians; report the ratios, not the absolutes (shared, noisy hosts).
 *
 * Usage: rdmig-pcbench [--pages N] [--rounds N]
 * Needs userfaultfd (root, or the permissions dataplane/uffd.h names).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "common/util.h"
#include "dataplane/uffd.h"

#define PS 4096u

static uint64_t npages = 4096;
static unsigned rounds = 9;

struct region {
	int fd;
	uint8_t *g;
	struct rdmig__pc *pc;
	uint64_t *all;
	bool sync_arrive; /* the request callback reports arrival itself */
};

static int request_cb(void *arg, const struct rdmig__range *runs, unsigned n)
{
	struct region *r = arg;

	for (unsigned i = 0; i < n && r->sync_arrive; i++) {
		int ret = rdmig__pc_arrived(r->pc, runs[i].first, runs[i].count);

		if (ret)
			return ret;
	}
	return 0;
}

static void die(const char *what)
{
	fprintf(stderr, "rdmig-pcbench: %s: %s\n", what, rdmig_last_error());
	exit(1);
}

/* A region, armed with every page outstanding, R already holding the bytes. */
static void region_open(struct region *r, bool copy)
{
	struct rdmig__pc_params p = { .len = npages * PS, .request = request_cb, .request_arg = r };
	uint8_t *base;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (copy) {
		r->g = mmap(NULL, npages * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	} else {
		r->fd = memfd_create("pcbench", MFD_CLOEXEC);
		if (r->fd < 0 || ftruncate(r->fd, (off_t)(npages * PS)))
			die("memfd");
		r->g = mmap(NULL, npages * PS, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	}
	if (r->g == MAP_FAILED)
		die("mmap");
	p.guest = r->g;
	p.fd = r->fd;
	p.no_prefetch = true;
	if (rdmig__pc_open(&r->pc, &p))
		die("open");
	base = rdmig__pc_recv_base(r->pc);
	for (uint64_t i = 0; i < npages; i++)
		memset(base + i * PS, (int)(i & 0xff) | 1, PS);
	r->all = malloc((npages + 63) / 64 * 8);
	memset(r->all, 0xff, (npages + 63) / 64 * 8);
	if (rdmig__pc_arm(r->pc, r->all))
		die("arm");
}

static void region_close(struct region *r)
{
	rdmig__pc_close(r->pc);
	munmap(r->g, npages * PS);
	if (r->fd >= 0)
		close(r->fd);
	free(r->all);
}

/* ns per page installing every page, `k` pages per arrived() call. */
static double install_ns(bool copy, uint64_t k)
{
	struct region r;
	uint64_t t0, t1;

	region_open(&r, copy);
	t0 = rdmig__now_ns();
	for (uint64_t i = 0; i < npages; i += k)
		if (rdmig__pc_arrived(r.pc, i, RDMIG__MIN(k, npages - i)))
			die("arrived");
	t1 = rdmig__now_ns();
	if (r.g[(npages - 1) * PS] != (uint8_t)(((npages - 1) & 0xff) | 1))
		die("image");
	region_close(&r);
	return (double)(t1 - t0) / (double)npages;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median ns of a fault round trip: touch, request, arrived (installs), wake. */
static double fault_ns(bool copy)
{
	uint64_t n = RDMIG__MIN(npages, 1024), *t = malloc(n * sizeof(*t));
	struct rdmig__pc_stats st;
	struct region r;
	double med;

	region_open(&r, copy);
	r.sync_arrive = true;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0 = rdmig__now_ns();

		if (*(volatile uint8_t *)(r.g + i * PS) != (uint8_t)((i & 0xff) | 1))
			die("fault image");
		t[i] = rdmig__now_ns() - t0;
	}
	rdmig__pc_stats(r.pc, &st);
	if (st.faults != n)
		die("fault count");
	if (n < npages && rdmig__pc_arrived(r.pc, n, npages - n)) /* the rest, for a clean close */
		die("arrived");
	qsort(t, n, sizeof(*t), cmp_u64);
	med = (double)t[n / 2];
	region_close(&r);
	free(t);
	return med;
}

static double median(double *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double x = v[j];

			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	return v[n / 2];
}

int main(int argc, char **argv)
{
	static const uint64_t ks[] = { 1, 16, 256 };
	double inst[2][3][64], flt[2][64], m[2][3], f[2];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pages") && i + 1 < argc)
			npages = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = (unsigned)strtoul(argv[++i], NULL, 0);
		else {
			fprintf(stderr, "usage: rdmig-pcbench [--pages N] [--rounds N]\n");
			return 2;
		}
	}
	if (!npages || npages % 256 || !rounds || rounds > 64) {
		fprintf(stderr,
			"rdmig-pcbench: --pages must be a multiple of 256, --rounds 1-64\n");
		return 2;
	}
	/* Interleaved: every round runs every case once. */
	for (unsigned r = 0; r < rounds; r++) {
		for (int c = 0; c < 2; c++) {
			for (int k = 0; k < 3; k++)
				inst[c][k][r] = install_ns(c, ks[k]);
			flt[c][r] = fault_ns(c);
		}
	}
	for (int c = 0; c < 2; c++) {
		for (int k = 0; k < 3; k++)
			m[c][k] = median(inst[c][k], rounds);
		f[c] = median(flt[c], rounds);
	}
	printf("rdmig-pcbench: %lu pages of 4 KiB, %u interleaved rounds, medians\n",
	       (unsigned long)npages, rounds);
	printf("install per page    CONTINUE(ns)  COPY(ns)  COPY/CONTINUE\n");
	for (int k = 0; k < 3; k++)
		printf("  %3lu pages/call   %10.0f  %8.0f  %13.2f\n", (unsigned long)ks[k], m[0][k],
		       m[1][k], m[1][k] / m[0][k]);
	printf("  1/call vs 256/call: CONTINUE %.2fx, COPY %.2fx\n", m[0][0] / m[0][2],
	       m[1][0] / m[1][2]);
	printf("fault round trip    %10.0f  %8.0f  %13.2f\n", f[0], f[1], f[1] / f[0]);
	printf("  fault / 1-page install: CONTINUE %.1fx, COPY %.1fx\n", f[0] / m[0][0],
	       f[1] / m[1][0]);
	return 0;
}
