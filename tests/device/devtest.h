/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the device tests: find the RDMA device (or exit 77 so the
 * test counts as skipped), build synthetic guests, count a process's memory
 * registrations through the kernel's resource tracking (`rdma res show mr`).
 */
#ifndef RDMIG_TESTS_DEVTEST_H
#define RDMIG_TESTS_DEVTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include <rdmig/rdmig.h>

struct rdmig__xp_ops;

#define DT_PAGE	       4096ull
#define DT_MAX_REGIONS 8

/*
 * The IP of the RDMA device to test on; exits 77 when there is none. With
 * RDMIG_TRANSPORT=loopback no device is needed: 127.0.0.1. Unless the
 * environment says otherwise (RDMIG_PSK_FILE or RDMIG_AUTH), it also sets
 * RDMIG_PSK_FILE to dt_psk_file(), so every handle the test creates
 * authenticates with the run's key.
 */
const char *devtest_ip(void);
/* A file holding 32 random bytes made for this run (mode 0600), removed at exit. */
const char *dt_psk_file(void);
/* Is this run over the loopback transport (RDMIG_TRANSPORT=loopback)? */
bool dt_loopback(void);
/* The transport's operations (for tests that speak it directly). */
const struct rdmig__xp_ops *dt_transport(void);

struct dt_guest {
	unsigned n;
	uint64_t gpa[DT_MAX_REGIONS], len[DT_MAX_REGIONS];
	uint8_t *hva[DT_MAX_REGIONS];
	uint64_t *bitmap[DT_MAX_REGIONS]; /* KVM-layout dirty log per region */
};

/* Maps regions of the given sizes (bytes) at the given guest addresses. */
void dt_guest_init(struct dt_guest *g, unsigned n, const uint64_t *gpa, const uint64_t *len);
void dt_guest_fini(struct dt_guest *g);
/* Fills every byte from the generator. */
void dt_guest_fill(struct dt_guest *g, uint64_t *rng);
/*
 * The writer: changes `count` random pages per region (one word each), plus
 * the first and last page of every region, marking them dirty. Returns the
 * number of distinct dirty pages.
 */
uint64_t dt_guest_write(struct dt_guest *g, uint64_t count, uint64_t *rng);
/* Index of the first page that differs between a and b, or -1. */
int64_t dt_guest_diff(const struct dt_guest *a, const struct dt_guest *b, unsigned *region);
uint64_t dt_guest_bytes(const struct dt_guest *g);

uint64_t dt_rng(uint64_t *s);
uint64_t dt_now_ms(void);

/*
 * Memory registrations held by process `pid` on any RDMA device, or -1:
 * those the kernel lists with that pid, and those it lists with none
 * (registered on a thread since exited). Over loopback: the process's MRs
 * open to remote write (exposed memory).
 */
int dt_mr_count(pid_t pid);

struct rdmig_dst;
struct rdmig_src;
struct rdmig_opts;

/* A destination serving one session from a thread of its own. */
struct dt_dst {
	struct rdmig_dst *dst;
	pthread_t thread;
	int ret;
	char err[512];
	char port[16];
	struct rdmig_dst_stats stats;
};

/* Creates a destination for g (regions added with `flags`), listens on a
 * free port and serves from a thread. opts may be NULL. */
void dt_dst_start(struct dt_dst *d, const char *ip, const struct dt_guest *g, unsigned flags,
		  const struct rdmig_opts *opts);
/* Joins the thread, destroys the handle, returns what rdmig_dst_run did. */
int dt_dst_join(struct dt_dst *d);
/* A source for g, connected to d. opts may be NULL. */
struct rdmig_src *dt_src_connect(const char *ip, const struct dt_dst *d, const struct dt_guest *g,
				 const struct rdmig_opts *opts);
/* The KVM-layout dirty logs of g, for rdmig_src_pass (no skip set). */
void dt_dirty(const struct dt_guest *g, struct rdmig_dirty *dirty);

#endif
