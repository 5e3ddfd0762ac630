/* SPDX-License-Identifier: MIT */
/*
 * rdmig-vmm-example: the migration loop as a VMM writes it, against the
 * installed API only (<rdmig/rdmig.h>, -lrdmig). Start here.
 *
 *   rdmig-vmm-example [options] dst ADDR PORT    destination: receive one guest
 *   rdmig-vmm-example [options] src ADDR PORT    source: migrate the guest there
 *   rdmig-vmm-example [options] local ADDR       both ends in this process,
 *                                                then compare the two images
 * options:
 *   --make-key FILE   create FILE with a fresh 32-byte key (if it does not
 *                     exist) and use it; else RDMIG_PSK_FILE must name the key
 *   --size MIB        guest memory (64)
 *   --rate N          pages the "vCPU" dirties per second meanwhile (500)
 *   --downtime MS     stop-and-copy once the final pass is predicted shorter (300)
 *   --max-passes N    pre-copy passes at most, then stop anyway (8)
 *
 * The guest is one anonymous mapping; a thread stands in for the vCPUs and
 * logs what it writes in a KVM-style dirty bitmap (sync_dirty_log() below
 * plays KVM_GET_DIRTY_LOG). SIGINT or SIGTERM cancels the migration
 * (rdmig_src_cancel / rdmig_dst_cancel are async-signal-safe); the guest
 * keeps running at the source, as after any failure. Exit status: 0
 * migrated, 1 failed, 130 cancelled by a signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#define PAGE 4096ull

static uint64_t size = 64ull << 20, rate = 500, downtime_ms = 300, max_passes = 8;

/* --- the guest: memory, a vCPU that dirties it, its dirty log ------------- */

static uint8_t *ram;
static uint64_t npages, words;
static _Atomic uint64_t *dirty_log; /* set by the vCPU, like KVM's log */
static atomic_bool vcpu_stop;
static pthread_t vcpu;

static void *vcpu_main(void *arg)
{
	uint64_t x = (uintptr_t)arg | 1;

	(void)arg;
	while (!atomic_load(&vcpu_stop)) {
		uint64_t p;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		p = x % npages;
		((volatile uint64_t *)(ram + p * PAGE))[x % (PAGE / 8)] = x;
		atomic_fetch_or(&dirty_log[p / 64], 1ull << (p % 64));
		if (rate)
			usleep((useconds_t)(1000000 / rate));
	}
	return NULL;
}

/* KVM_GET_DIRTY_LOG: take the log (clearing it) and add it to `into`. */
static void sync_dirty_log(uint64_t *into)
{
	for (uint64_t i = 0; i < words; i++)
		into[i] |= atomic_exchange(&dirty_log[i], 0);
}

static uint64_t count_bits(const uint64_t *b)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(b[i]);
	return n;
}

static void *map_guest(void)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* --- cancel on a signal ------------------------------------------------- */

static struct rdmig_src *_Atomic sig_src;
static struct rdmig_dst *_Atomic sig_dst;
static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
	struct rdmig_src *s = atomic_load(&sig_src);
	struct rdmig_dst *d = atomic_load(&sig_dst);

	(void)sig;
	signalled = 1;
	/* The call in progress returns -ECANCELED within about 100 ms. The
	 * source's cancel tells the destination (it sees -ECONNABORTED), so
	 * with both ends here only the source is cancelled. */
	if (s)
		rdmig_src_cancel(s);
	else if (d)
		rdmig_dst_cancel(d);
}

static int failed(const char *what, int ret)
{
	fprintf(stderr, "%s: %s (%s)%s\n", what, rdmig_last_error(), strerror(-ret),
		ret == -ECANCELED ? ": cancelled" : "");
	return ret == -ECANCELED && signalled ? 130 : 1;
}

/* --- the source: connect, pre-copy until converged, stop and copy --------- */

static int source(const char *addr, const char *port)
{
	uint64_t *pending = calloc(words, sizeof(uint64_t));
	struct rdmig_dirty dirty = { .bitmap = pending, .words = words };
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_estimate est = { .size = sizeof(est) };
	struct rdmig_opts opts;
	struct rdmig_src *src;
	int ret, rc = 1;

	rdmig_opts_init(&opts); /* RDMIG_* variables (the key: RDMIG_PSK_FILE) apply */
	if ((ret = rdmig_src_create(&opts, &src)))
		return failed("rdmig_src_create", ret);
	atomic_store(&sig_src, src);
	/* One region per memslot; its index is its dirty log's index. */
	if ((ret = rdmig_src_add_region(src, 0, ram, size)) < 0 ||
	    (ret = rdmig_src_connect(src, addr, port))) {
		rc = failed("connect", ret);
		goto out;
	}
	/* Pass 1 sends everything; the vCPU runs on meanwhile. */
	if ((ret = rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, &st))) {
		rc = failed("pass 1", ret);
		goto out;
	}
	printf("pass 1: %llu pages written in %.1f ms\n", (unsigned long long)st.written_pages,
	       st.duration_ns / 1e6);
	for (unsigned pass = 2; pass <= max_passes; pass++) {
		sync_dirty_log(pending);
		/* Would a final pass over what is dirty now fit the downtime? */
		ret = rdmig_src_estimate(src, &dirty, 1, 0, &est);
		if (ret == 0 && !(est.flags & RDMIG_ESTIMATE_EXTRAPOLATED) &&
		    est.final_pass_ns <= downtime_ms * 1000000) {
			printf("converged: %llu dirty pages, final pass predicted %.1f ms\n",
			       (unsigned long long)est.dirty_pages, est.final_pass_ns / 1e6);
			break;
		}
		if ((ret = rdmig_src_pass(src, &dirty, 1, 0, &st))) {
			rc = failed("pre-copy pass", ret);
			goto out;
		}
		printf("pass %u: %llu dirty, %llu written, %.1f ms (predicted %.1f ms)\n", pass,
		       (unsigned long long)st.dirty_pages, (unsigned long long)st.written_pages,
		       st.duration_ns / 1e6, est.final_pass_ns / 1e6);
		memset(pending, 0, words * sizeof(uint64_t)); /* sent: start over */
	}

	/* Stop and copy: pause the vCPUs, take the last log, final pass. */
	atomic_store(&vcpu_stop, true);
	pthread_join(vcpu, NULL);
	sync_dirty_log(pending);
	printf("paused: %llu dirty pages\n", (unsigned long long)count_bits(pending));
	if ((ret = rdmig_src_pass(src, &dirty, 1, RDMIG_PASS_FINAL, &st))) {
		rc = failed("final pass", ret);
		goto out;
	}
	printf("final pass: %llu written, %.1f ms of downtime for memory\n",
	       (unsigned long long)st.written_pages, st.duration_ns / 1e6);
	/* Device state, the guest still paused: one blob per device (here a
	 * made-up "vCPU" state), checked end to end by the destination. */
	{
		static uint8_t cpu_state[8192];
		struct rdmig_blob blob = { .id = 1, .data = cpu_state, .len = sizeof(cpu_state) };
		struct rdmig_state_stats ss = { .size = sizeof(ss) };

		snprintf((char *)cpu_state, sizeof(cpu_state), "vcpu0: rip=0x%x", 0xfff0);
		if ((ret = rdmig_src_send_state(src, &blob, 1, &ss))) {
			rc = failed("device state", ret);
			goto out;
		}
		printf("device state: %llu bytes, %llu zero pages left off the wire\n",
		       (unsigned long long)ss.bytes, (unsigned long long)ss.zero_pages);
	}
	if ((ret = rdmig_src_complete(src))) { /* -EIO: a page's copy differs */
		rc = failed("complete", ret);
		goto out;
	}
	printf("source: migration complete; the guest may resume at the destination\n");
	rc = 0;
out:
	/* On failure the guest simply goes on here (a real VMM resumes it). */
	atomic_store(&sig_src, NULL);
	rdmig_src_destroy(src);
	free(pending);
	return rc;
}

/* --- the destination: declare memory, listen, serve one source ------------ */

static struct rdmig_dst *dst_listen(uint8_t *mem, const char *addr, const char *port, char *bound,
				    size_t len)
{
	struct rdmig_opts opts;
	struct rdmig_dst *dst;
	int ret;

	rdmig_opts_init(&opts);
	if ((ret = rdmig_dst_create(&opts, &dst))) {
		failed("rdmig_dst_create", ret);
		return NULL;
	}
	/* Fresh anonymous memory is zero: zero pages need not travel. */
	if ((ret = rdmig_dst_add_region(dst, 0, mem, size, RDMIG_REGION_ZERO_FILLED)) < 0 ||
	    (ret = rdmig_dst_listen(dst, addr, port)) < 0) {
		failed("listen", ret);
		rdmig_dst_destroy(dst);
		return NULL;
	}
	snprintf(bound, len, "%d", ret); /* port "0" picks a free one */
	printf("destination: listening on %s port %d\n", addr, ret);
	fflush(stdout);
	return dst;
}

static int dst_serve(struct rdmig_dst *dst)
{
	struct rdmig_dst_stats st = { .size = sizeof(st) };
	int ret;

	atomic_store(&sig_dst, dst);
	ret = rdmig_dst_run(dst, &st); /* blocks until complete or failed */
	atomic_store(&sig_dst, NULL);
	if (ret)
		return failed("rdmig_dst_run", ret);
	/* The device state that came with it (rdmig's buffers: valid until
	 * the next run or destroy); a real VMM loads it into its devices. */
	{
		const struct rdmig_blob *blobs;
		int n = rdmig_dst_state(dst, &blobs);

		for (int i = 0; i < n; i++)
			printf("destination: device state %llu, %llu bytes: \"%.32s\"\n",
			       (unsigned long long)blobs[i].id, (unsigned long long)blobs[i].len,
			       (const char *)blobs[i].data);
		if (n != 1)
			return failed("rdmig_dst_state", n < 0 ? n : -ENODATA);
	}
	printf("destination: %llu passes received; the guest may resume here\n",
	       (unsigned long long)st.passes);
	return 0;
}

/* --- the demo around it --------------------------------------------------- */

/* A key file made for the demo: 32 random bytes, readable by its owner only. */
static int make_key(const char *path)
{
	uint8_t key[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	if (fd < 0 && errno == EEXIST)
		return setenv("RDMIG_PSK_FILE", path, 1); /* made by the other end */
	if (fd < 0 || getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key) ||
	    write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || close(fd)) {
		perror(path);
		return -1;
	}
	return setenv("RDMIG_PSK_FILE", path, 1);
}

static void *dst_thread(void *dst)
{
	return (void *)(intptr_t)dst_serve(dst);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *mode;
	int i = 1, rc = 1;

	for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
		if (!strcmp(argv[i], "--make-key")) {
			if (make_key(argv[i + 1]))
				return 1;
		} else if (!strcmp(argv[i], "--size")) {
			size = strtoull(argv[i + 1], NULL, 0) << 20;
		} else if (!strcmp(argv[i], "--rate")) {
			rate = strtoull(argv[i + 1], NULL, 0);
		} else if (!strcmp(argv[i], "--downtime")) {
			downtime_ms = strtoull(argv[i + 1], NULL, 0);
		} else if (!strcmp(argv[i], "--max-passes")) {
			max_passes = strtoull(argv[i + 1], NULL, 0);
		} else {
			break;
		}
	}
	mode = i < argc ? argv[i] : "";
	if (!size || (strcmp(mode, "local") ? argc - i != 3 : argc - i != 2) ||
	    (strcmp(mode, "src") && strcmp(mode, "dst") && strcmp(mode, "local"))) {
		fprintf(stderr,
			"usage: %s [--make-key FILE] [--size MIB] [--rate N] "
			"[--downtime MS] [--max-passes N] src|dst ADDR PORT | local ADDR\n",
			argv[0]);
		return 2;
	}
	if (!getenv("RDMIG_PSK_FILE") && !getenv("RDMIG_AUTH")) {
		fprintf(stderr, "no key: set RDMIG_PSK_FILE (the same key file on both hosts) "
				"or pass --make-key FILE\n");
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	npages = size / PAGE;
	words = (npages + 63) / 64;
	dirty_log = calloc(words, sizeof(uint64_t));
	ram = map_guest();

	if (!strcmp(mode, "dst")) {
		char port[16];
		struct rdmig_dst *dst =
			dst_listen(ram, argv[i + 1], argv[i + 2], port, sizeof(port));

		rc = dst ? dst_serve(dst) : 1;
		rdmig_dst_destroy(dst);
		return rc;
	}

	/* The source's guest: some data, some zero pages, the vCPU running. */
	for (uint64_t p = 0; p < npages; p += 3)
		memset(ram + p * PAGE, (int)(p % 251) + 1, PAGE);
	pthread_create(&vcpu, NULL, vcpu_main, NULL);

	if (!strcmp(mode, "src")) {
		rc = source(argv[i + 1], argv[i + 2]);
	} else {
		/* Both ends: the destination's guest is a second mapping. */
		uint8_t *dst_ram = map_guest();
		struct rdmig_dst *dst;
		char port[16];
		void *drc;
		pthread_t t;

		if (!(dst = dst_listen(dst_ram, argv[i + 1], "0", port, sizeof(port))))
			goto out;
		pthread_create(&t, NULL, dst_thread, dst);
		rc = source(argv[i + 1], port);
		if (rc)
			rdmig_dst_cancel(dst); /* the source gave up: so does its peer */
		pthread_join(t, &drc);
		rdmig_dst_destroy(dst);
		if (!rc && (rc = (int)(intptr_t)drc) == 0) {
			rc = memcmp(ram, dst_ram, size) != 0;
			printf("images %s (%llu MiB)\n", rc ? "DIFFER" : "identical",
			       (unsigned long long)(size >> 20));
		}
	}
out:
	if (!atomic_load(&vcpu_stop)) {
		atomic_store(&vcpu_stop, true);
		pthread_join(vcpu, NULL);
	}
	return rc;
}
