/* SPDX-License-Identifier: MIT */
/*
 * Tests of the post-copy install engine (dataplane/uffd.h, uffd.c) with a
 * fake transport: a thread that serves the engine's requests by copying the
 * source's bytes into R and calling arrived(), and that pushes the other
 * outstanding pages in address order. Like the real source it writes each
 * page at most once (a page both requested and pushed goes once).
 *
 * The guest's threads touch G from user mode (loads and stores) and from the
 * kernel (write(2) from G to a pipe: copy_from_user, as KVM and vhost do;
 * read(2) from a pipe into G: copy_to_user). Every test ends with the image
 * checked byte for byte. Needs userfaultfd with minor faults on shmem (root,
 * or the permissions uffd.h names): exits 77 without. Hugetlbfs regions are
 * skipped where no huge page is free (vm.nr_hugepages), but for
 * RDMIG_UFFD_REQUIRE_HUGETLB=1 (ci/device-suite.sh, in the soft-RoCE VM,
 * after reserving them), where that fails.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include "common/util.h"
#include "dataplane/uffd.h"

#define PS 4096u

/* --- the fake transport --------------------------------------------------------- */

struct xport {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rdmig__range *q; /* requests, FIFO */
	size_t qn, qcap, qhead;
	bool stop, push, hold; /* hold: leave requests queued */
	atomic_bool refuse;    /* requests fail, as when the QP is gone */
	uint64_t push_pos, push_batch;
	unsigned push_delay_us;
	struct rdmig__pc *pc;
	const uint8_t *src;
	uint8_t *r;
	uint32_t ps;
	uint64_t npages;
	const uint64_t *outstanding;
	uint8_t *sent;		     /* pages written into R */
	atomic_uint_fast64_t writes; /* every page write, duplicates included */
	atomic_int errors;
};

static bool tbit(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static void sbit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

/* WRITE then proof: the pages of [first, first + n) not sent yet, run by run. */
static void send_pages(struct xport *x, uint64_t first, uint64_t n)
{
	uint64_t i = first, end = first + n;

	while (i < end) {
		uint64_t s;

		while (i < end && (x->sent[i] || !tbit(x->outstanding, i)))
			i++;
		s = i;
		while (i < end && !x->sent[i] && tbit(x->outstanding, i)) {
			x->sent[i] = 1;
			memcpy(x->r + i * x->ps, x->src + i * x->ps, x->ps);
			atomic_fetch_add(&x->writes, 1);
			i++;
		}
		if (i > s && rdmig__pc_arrived(x->pc, s, i - s))
			atomic_fetch_add(&x->errors, 1);
	}
}

static void cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_cond_timedwait(c, m, &ts);
}

static void *xport_main(void *arg)
{
	struct xport *x = arg;

	pthread_mutex_lock(&x->lock);
	for (;;) {
		if (x->stop)
			break;
		if (!x->hold && x->qhead < x->qn) {
			struct rdmig__range r = x->q[x->qhead++];

			pthread_mutex_unlock(&x->lock);
			send_pages(x, r.first, r.count); /* requests go ahead of the push */
			pthread_mutex_lock(&x->lock);
			continue;
		}
		if (x->push && x->push_pos < x->npages) {
			uint64_t first = x->push_pos,
				 n = RDMIG__MIN(x->push_batch, x->npages - first);

			x->push_pos += n;
			pthread_mutex_unlock(&x->lock);
			send_pages(x, first, n);
			if (x->push_delay_us)
				usleep(x->push_delay_us);
			pthread_mutex_lock(&x->lock);
			continue;
		}
		/*
		 * Timed and re-checked: a test that failed leaves its transport
		 * thread behind on a stack address the next test reuses.
		 */
		cond_wait_ms(&x->cond, &x->lock, 100);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

static atomic_uint_fast64_t requested_pages;

static int xport_request(void *arg, const struct rdmig__range *runs, unsigned n)
{
	struct xport *x = arg;

	if (atomic_load(&x->refuse))
		return -ENOTCONN;
	pthread_mutex_lock(&x->lock);
	for (unsigned i = 0; i < n; i++) {
		if (x->qn == x->qcap) {
			x->qcap = x->qcap ? 2 * x->qcap : 256;
			x->q = realloc(x->q, x->qcap * sizeof(*x->q));
		}
		x->q[x->qn++] = runs[i];
		atomic_fetch_add(&requested_pages, runs[i].count);
	}
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
	return 0;
}

static void xport_set(struct xport *x, bool push, bool hold)
{
	pthread_mutex_lock(&x->lock);
	x->push = push;
	x->hold = hold;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

/* --- a region and its guest ------------------------------------------------------- */

enum backing {
	SHMEM,
	HUGETLB,
	COPY
};

struct env {
	enum backing kind;
	uint32_t ps;
	uint64_t npages, len;
	int fd;
	uint8_t *g, *src;
	uint64_t *out;
	uint64_t nout;
	struct rdmig__pc *pc;
	struct xport x;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_page(uint8_t *p, uint32_t ps, uint64_t tag)
{
	for (uint32_t i = 0; i < ps; i += 8) {
		uint64_t v = tag * 0x100000001b3ull + i;

		memcpy(p + i, &v, 8);
	}
}

static bool hugepages_free(unsigned want)
{
	char line[128];
	unsigned long n = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %lu", &n) == 1)
			break;
	fclose(f);
	return n >= want;
}

/*
 * A region of npages pages: the source image `src`; the destination holds
 * the right bytes for pages not outstanding; an outstanding page holds
 * stale bytes (an older pre-copy) or is a hole (never written, pitfall 2),
 * every `hole_every`-th one. prefault: G touched before registration.
 */
static void env_init(struct env *e, enum backing kind, uint64_t npages, unsigned out_pct,
		     unsigned hole_every, bool prefault, uint32_t prefetch)
{
	struct rdmig__pc_params p = { 0 };
	int ret;

	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->ps = kind == HUGETLB ? 2u << 20 : PS;
	e->npages = npages;
	e->len = npages * e->ps;
	e->fd = -1;
	e->src = malloc(e->len);
	e->out = calloc((npages + 63) / 64, 8);
	assert_non_null(e->src);
	for (uint64_t i = 0; i < npages; i++) {
		fill_page(e->src + i * e->ps, e->ps, rnd());
		if (rnd() % 100 < out_pct) {
			sbit(e->out, i);
			e->nout++;
		}
	}
	if (kind == COPY) {
		e->g = mmap(NULL, e->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			    0);
	} else {
		e->fd = memfd_create("uffd_test",
				     MFD_CLOEXEC | (kind == HUGETLB ? MFD_HUGETLB : 0));
		assert_true(e->fd >= 0);
		assert_int_equal(ftruncate(e->fd, (off_t)e->len), 0);
		e->g = mmap(NULL, e->len, PROT_READ | PROT_WRITE, MAP_SHARED, e->fd, 0);
	}
	assert_true(e->g != MAP_FAILED);
	/* What pre-copy left: through a second view for the fd (G stays untouched). */
	{
		uint8_t *w = kind == COPY ? e->g
					  : mmap(NULL, e->len, PROT_READ | PROT_WRITE, MAP_SHARED,
						 e->fd, 0);
		uint64_t k = 0;

		assert_true(w != MAP_FAILED);
		for (uint64_t i = 0; i < npages; i++) {
			if (!tbit(e->out, i))
				memcpy(w + i * e->ps, e->src + i * e->ps, e->ps);
			else if (!hole_every || ++k % hole_every)
				fill_page(w + i * e->ps, e->ps, ~i); /* stale */
		}
		if (w != e->g)
			munmap(w, e->len);
	}
	if (prefault)
		for (uint64_t i = 0; i < npages; i++)
			(void)*(volatile uint8_t *)(e->g + i * e->ps);

	p.guest = e->g;
	p.len = e->len;
	p.fd = e->fd;
	p.prefetch = prefetch;
	p.no_prefetch = prefetch == 0;
	p.request = xport_request;
	p.request_arg = &e->x;
	ret = rdmig__pc_open(&e->pc, &p);
	if (ret)
		print_message("open: %s\n", rdmig_last_error());
	assert_int_equal(ret, 0);
	assert_int_equal(rdmig__pc_page_size(e->pc), e->ps);
	assert_int_equal(rdmig__pc_is_copy(e->pc), kind == COPY);

	e->x.pc = e->pc;
	e->x.src = e->src;
	e->x.r = rdmig__pc_recv_base(e->pc);
	e->x.ps = e->ps;
	e->x.npages = npages;
	e->x.outstanding = e->out;
	e->x.sent = calloc(npages, 1);
	e->x.push_batch = 16;
	pthread_mutex_init(&e->x.lock, NULL);
	pthread_cond_init(&e->x.cond, NULL);
	assert_int_equal(pthread_create(&e->x.thread, NULL, xport_main, &e->x), 0);
}

static void env_arm(struct env *e)
{
	assert_int_equal(rdmig__pc_arm(e->pc, e->out), 0);
	assert_int_equal(rdmig__pc_outstanding(e->pc), e->nout);
}

/* Waits (bounded) until every outstanding page is installed. */
static void env_wait_done(struct env *e)
{
	for (int i = 0; i < 30000 && rdmig__pc_outstanding(e->pc); i++)
		usleep(1000);
	assert_int_equal(rdmig__pc_outstanding(e->pc), 0);
}

static void env_fini(struct env *e)
{
	pthread_mutex_lock(&e->x.lock);
	e->x.stop = true;
	pthread_cond_broadcast(&e->x.cond);
	pthread_mutex_unlock(&e->x.lock);
	pthread_join(e->x.thread, NULL);
	rdmig__pc_close(e->pc);
	munmap(e->g, e->len);
	if (e->fd >= 0)
		close(e->fd);
	free(e->x.q);
	free(e->x.sent);
	free(e->src);
	free(e->out);
}

/* The guest's image equals the source's (a store by the guest excepted: see the test). */
static void assert_image(struct env *e)
{
	for (uint64_t i = 0; i < e->npages; i++)
		if (memcmp(e->g + i * e->ps, e->src + i * e->ps, e->ps)) {
			print_message("page %lu differs (outstanding %d, sent %d)\n",
				      (unsigned long)i, tbit(e->out, i), e->x.sent[i]);
			fail();
		}
}

/* Whether G's page i is mapped (pagemap "present"), without touching it. */
static bool mapped(struct env *e, uint64_t i)
{
	uint64_t ent = 0, vpn = (uint64_t)(uintptr_t)(e->g + i * e->ps) / PS;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &ent, 8, (off_t)(vpn * 8)), 8);
	close(fd);
	return ent >> 63;
}

/*
 * Counters are recorded after the ioctl that woke the guest's thread: wait
 * (bounded) for the condition before asserting it.
 */
#define WAIT_STATS(e, st, cond)                                                           \
	for (int wait_i_ = 0; rdmig__pc_stats((e)->pc, &(st)), !(cond) && wait_i_ < 5000; \
	     wait_i_++)                                                                   \
	usleep(1000)

static uint64_t nth_outstanding(struct env *e, uint64_t n)
{
	for (uint64_t i = 0; i < e->npages; i++)
		if (tbit(e->out, i) && !n--)
			return i;
	fail();
	return 0;
}

/* --- guest threads ------------------------------------------------------------------ */

struct toucher {
	struct env *e;
	pthread_t t;
	unsigned touches;
	uint64_t seed;
	bool kernel; /* through write(2) to a pipe instead of loads */
	atomic_int bad;
	atomic_bool done;
};

static void *touch_main(void *arg)
{
	struct toucher *t = arg;
	struct env *e = t->e;
	uint8_t *buf = malloc(PS);
	int pfd[2] = { -1, -1 };

	if (t->kernel && pipe2(pfd, O_CLOEXEC))
		atomic_fetch_add(&t->bad, 1);
	for (unsigned k = 0; k < t->touches; k++) {
		uint64_t z = (t->seed += 0x9e3779b97f4a7c15ull), i, off;

		z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
		i = (z >> 8) % e->npages;
		off = (z % (e->ps / PS)) * PS; /* a 4 KiB piece of the page */
		if (t->kernel) {
			if (write(pfd[1], e->g + i * e->ps + off, PS) != PS ||
			    read(pfd[0], buf, PS) != PS)
				atomic_fetch_add(&t->bad, 1);
		} else {
			memcpy(buf, e->g + i * e->ps + off, PS);
		}
		if (memcmp(buf, e->src + i * e->ps + off, PS))
			atomic_fetch_add(&t->bad, 1);
	}
	if (t->kernel) {
		close(pfd[0]);
		close(pfd[1]);
	}
	free(buf);
	atomic_store(&t->done, true);
	return NULL;
}

static void touchers_start(struct toucher *t, unsigned n, struct env *e, unsigned touches,
			   bool kernel)
{
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct toucher){
			.e = e, .touches = touches, .seed = rnd(), .kernel = kernel && i % 2
		};
		assert_int_equal(pthread_create(&t[i].t, NULL, touch_main, &t[i]), 0);
	}
}

/* Joins them within 30 s: a thread still blocked on a fault fails the test. */
static void touchers_join(struct toucher *t, unsigned n)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 30;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_timedjoin_np(t[i].t, NULL, &dl)) {
			print_message("toucher %u stayed blocked\n", i);
			fail();
		}
		assert_int_equal(atomic_load(&t[i].bad), 0);
	}
}

static void assert_stats_sane(struct env *e, struct rdmig__pc_stats *st)
{
	rdmig__pc_stats(e->pc, st);
	assert_int_equal(st->npages, e->npages);
	assert_int_equal(st->pages_arrived, e->nout);
	assert_int_equal(st->pages_installed, e->nout);
	assert_int_equal(st->outstanding, 0);
	assert_int_equal(st->error, 0);
	assert_true(st->pages_arrived_requested <= st->pages_requested);
	assert_true(st->latency_count <= st->faults);
	if (st->latency_count) {
		assert_true(st->latency_p50_ns <= st->latency_p99_ns);
		assert_true(st->latency_p99_ns <= st->latency_max_ns);
		assert_true(st->blocktime_ns >= st->latency_max_ns);
		assert_true(st->blocked_any_ns >= st->latency_max_ns);
		assert_true(st->blocked_any_ns <= st->blocktime_ns);
	}
	assert_true(st->install_call_pages >= st->pages_installed);
	/* Each page written at most once by the transport, and it was. */
	assert_int_equal(atomic_load(&e->x.writes), e->nout);
	assert_int_equal(atomic_load(&e->x.errors), 0);
}

static enum backing kind_of(void **state)
{
	return (enum backing)(uintptr_t)*state;
}

static bool skip_kind(enum backing k, uint64_t pages)
{
	if (k == HUGETLB && !hugepages_free((unsigned)pages)) {
		/* ci/device-suite.sh reserves them in the VM: there they must run. */
		if (getenv("RDMIG_UFFD_REQUIRE_HUGETLB"))
			fail_msg("RDMIG_UFFD_REQUIRE_HUGETLB is set, but no %" PRIu64
				 " free 2 MiB huge pages",
				 pages);
		print_message("no free 2 MiB huge pages (vm.nr_hugepages): skipped\n");
		return true;
	}
	return false;
}

/* --- tests ---------------------------------------------------------------------------- */

/* (a), (f), (h), (i): random touches, user and kernel mode, during the push. */
static void uffd_random_touch_during_push_image_exact(void **state)
{
	enum backing k = kind_of(state);
	uint64_t n = k == HUGETLB ? 16 : 4096;
	struct toucher t[6];
	struct rdmig__pc_stats st;
	struct env e;

	if (skip_kind(k, n))
		skip();
	env_init(&e, k, n, 60, 5, false, 0 + 7);
	env_arm(&e);
	e.x.push_delay_us = k == HUGETLB ? 20000 : 200; /* slow enough for faults to win */
	touchers_start(t, 6, &e, k == HUGETLB ? 20 : 400, true);
	xport_set(&e.x, true, false);
	touchers_join(t, 6);
	env_wait_done(&e);
	assert_image(&e);
	assert_stats_sane(&e, &st);
	assert_true(st.faults > 0);
	assert_true(st.pages_requested > 0);
	print_message("faults %lu (held %lu waiting %lu) requested %lu pushed %lu, latency p50 "
		      "%lu p99 %lu max %lu ns, blocktime %lu us, %lu pages in %lu calls\n",
		      st.faults, st.faults_held, st.faults_waiting, st.pages_requested,
		      st.pages_arrived - st.pages_arrived_requested, st.latency_p50_ns,
		      st.latency_p99_ns, st.latency_max_ns, st.blocktime_ns / 1000,
		      st.install_call_pages, st.install_calls);
	env_fini(&e);
}

struct one_touch {
	struct env *e;
	uint64_t page;
	pthread_t t;
	atomic_bool done;
	bool ok;
};

static void *one_touch_main(void *arg)
{
	struct one_touch *o = arg;

	o->ok = !memcmp(o->e->g + o->page * o->e->ps, o->e->src + o->page * o->e->ps, o->e->ps);
	atomic_store(&o->done, true);
	return NULL;
}

static bool wait_flag(atomic_bool *f, int ms)
{
	for (int i = 0; i < ms && !atomic_load(f); i++)
		usleep(1000);
	return atomic_load(f);
}

/*
 * (b): a fault on a page whose WRITE is in flight: the request is queued
 * but not served, a second thread faults on the same page (it waits, no new
 * request), then the WRITE lands and both are woken with the right bytes.
 */
static void uffd_fault_on_inflight_page_waits_for_arrival(void **state)
{
	enum backing k = kind_of(state);
	struct one_touch a = { 0 }, b = { 0 };
	struct rdmig__pc_stats st;
	struct env e;
	uint64_t req;

	env_init(&e, k, 256, 50, 3, false, 3);
	env_arm(&e);
	xport_set(&e.x, false, true); /* requests stay in flight */
	a.e = b.e = &e;
	a.page = b.page = nth_outstanding(&e, 10);
	req = atomic_load(&requested_pages);
	assert_int_equal(pthread_create(&a.t, NULL, one_touch_main, &a), 0);
	usleep(50000);
	assert_int_equal(pthread_create(&b.t, NULL, one_touch_main, &b), 0);
	usleep(50000);
	assert_false(atomic_load(&a.done)); /* blocked: the page did not arrive */
	assert_false(atomic_load(&b.done));
	assert_false(mapped(&e, a.page));
	WAIT_STATS(&e, st, st.faults == 2);
	assert_int_equal(st.faults, 2);
	assert_int_equal(st.faults_waiting, 1);
	assert_int_equal(st.requests, 1);
	assert_true(atomic_load(&requested_pages) - req >= 1);
	/* Both events are read: each thread waits 30 ms more, at least. */
	usleep(30000);
	xport_set(&e.x, false, false); /* the WRITE lands */
	assert_true(wait_flag(&a.done, 10000));
	assert_true(wait_flag(&b.done, 10000));
	pthread_join(a.t, NULL);
	pthread_join(b.t, NULL);
	assert_true(a.ok && b.ok);
	WAIT_STATS(&e, st, st.latency_count == 2);
	assert_int_equal(st.latency_count, 2);
	assert_true(st.latency_max_ns >= 30000000);
	assert_true(st.latency_p50_ns >= 25000000); /* a bucket's middle: within 12.5% */
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	assert_image(&e);
	assert_stats_sane(&e, &st);
	env_fini(&e);
}

/*
 * (c) pitfall 3: a page the guest writes right after its install is never
 * overwritten by the push (the transport writes it once), and a second
 * arrival of it is a protocol error that installs nothing more.
 */
static void uffd_write_after_install_survives_duplicate_is_eproto(void **state)
{
	enum backing k = kind_of(state);
	uint64_t p, q;
	struct rdmig__pc_stats st;
	struct env e;

	env_init(&e, k, 512, 50, 0, false, 0);
	env_arm(&e);
	xport_set(&e.x, false, false);
	p = nth_outstanding(&e, 3);
	q = nth_outstanding(&e, e.nout - 1);
	assert_int_equal(memcmp(e.g + p * e.ps, e.src + p * e.ps, e.ps), 0); /* fetched */
	memset(e.g + p * e.ps, 0xab, 64);				     /* the guest writes */
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	memset(e.src + p * e.ps, 0xab, 64); /* ... so the expected image has it */
	assert_image(&e);
	assert_stats_sane(&e, &st);
	/* A duplicate: refused, and the region stops installing. */
	assert_int_equal(rdmig__pc_arrived(e.pc, p, 1), -EPROTO);
	assert_non_null(strstr(rdmig_last_error(), "arrived before"));
	rdmig__pc_stats(e.pc, &st);
	assert_int_equal(st.error, -EPROTO);
	assert_int_equal(rdmig__pc_arrived(e.pc, q, 1), -ECANCELED);
	assert_int_equal(st.pages_installed, e.nout);
	assert_image(&e); /* the guest's write is still there */
	env_fini(&e);
}

/* arrived() for a page that was never outstanding: a protocol error. */
static void uffd_arrival_of_held_page_is_eproto(void **state)
{
	enum backing k = kind_of(state);
	struct env e;
	uint64_t h = 0;

	env_init(&e, k, 128, 50, 0, false, 0);
	assert_int_equal(rdmig__pc_arrived(e.pc, 0, 1), -EPROTO); /* not armed */
	env_fini(&e);
	env_init(&e, k, 128, 50, 0, false, 0);
	env_arm(&e);
	while (tbit(e.out, h))
		h++;
	assert_int_equal(rdmig__pc_arrived(e.pc, e.npages, 1), -EINVAL);
	assert_int_equal(rdmig__pc_arrived(e.pc, h, 1), -EPROTO);
	assert_non_null(strstr(rdmig_last_error(), "not outstanding"));
	env_fini(&e);
}

/*
 * (d) pitfall 2: an outstanding page that is a hole in the file (never
 * written at the destination) faults and is served with the source's bytes,
 * not a silent zero page; a held hole (a page the destination holds as zero)
 * is installed as zeros.
 */
static void uffd_touch_on_hole_faults_and_is_served(void **state)
{
	enum backing k = kind_of(state);
	struct rdmig__pc_stats st;
	struct env e;
	uint64_t p;

	env_init(&e, k, 256, 50, 1, false, 0); /* every outstanding page is a hole */
	env_arm(&e);
	xport_set(&e.x, false, false); /* no push: only the fault fetches */
	p = nth_outstanding(&e, 5);
	assert_int_equal(memcmp(e.g + p * e.ps, e.src + p * e.ps, e.ps), 0);
	WAIT_STATS(&e, st, st.pages_installed == 1);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.pages_requested, 1);
	assert_int_equal(st.pages_installed, 1);
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	assert_image(&e);
	env_fini(&e);
}

static void uffd_held_hole_installs_zeros(void **state)
{
	enum backing k = kind_of(state);
	static uint8_t zero[PS];
	struct env e;
	uint64_t h = 0;

	env_init(&e, k, 64, 50, 0, false, 0);
	while (tbit(e.out, h))
		h++;
	/* Make held page h a hole (fd) / absent (copy): the destination holds zero. */
	if (k == COPY)
		assert_int_equal(madvise(e.g + h * e.ps, e.ps, MADV_DONTNEED), 0);
	else
		assert_int_equal(fallocate(e.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   (off_t)(h * e.ps), e.ps),
				 0);
	memset(e.src + h * e.ps, 0, e.ps);
	env_arm(&e);
	assert_int_equal(memcmp(e.g + h * e.ps, zero, PS), 0); /* a fault, zero-filled */
	assert_int_equal(rdmig__pc_install_held(e.pc), 0);
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	assert_image(&e);
	env_fini(&e);
}

/*
 * (e) pitfall 5: batch installs racing fault installs: many threads fault
 * on outstanding and held pages while the push installs batches and
 * install_held runs; no thread stays blocked, every page is right.
 */
static void uffd_batch_racing_faults_no_thread_blocked(void **state)
{
	enum backing k = kind_of(state);
	struct toucher t[12];
	struct rdmig__pc_stats st;
	struct env e;

	env_init(&e, k, 8192, 70, 7, true, 1);
	env_arm(&e);
	e.x.push_batch = 64;
	touchers_start(t, 12, &e, 300, true);
	xport_set(&e.x, true, false);
	assert_int_equal(rdmig__pc_install_held(e.pc), 0);
	touchers_join(t, 12);
	env_wait_done(&e);
	assert_image(&e);
	assert_stats_sane(&e, &st);
	print_message("faults %lu: held %lu waiting %lu installed %lu; present %lu, wakes %lu\n",
		      st.faults, st.faults_held, st.faults_waiting, st.faults_installed,
		      st.pages_present, st.wakes);
	env_fini(&e);
}

struct pusher {
	struct env *e;
	unsigned stripe, nstripes;
	pthread_t t;
};

/* Pushes the outstanding pages i with i % nstripes == stripe, one arrived() each. */
static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	struct xport *x = &p->e->x;

	for (uint64_t i = p->stripe; i < x->npages; i += p->nstripes) {
		if (!tbit(x->outstanding, i))
			continue;
		x->sent[i] = 1; /* this thread's pages only: no request is served */
		memcpy(x->r + i * x->ps, x->src + i * x->ps, x->ps);
		atomic_fetch_add(&x->writes, 1);
		if (rdmig__pc_arrived(x->pc, i, 1))
			atomic_fetch_add(&x->errors, 1);
	}
	return NULL;
}

/*
 * arrived() from several threads at once (every completion thread of the
 * transport), one page per call, while the guest faults: requests are left
 * unserved, so each faulting thread waits for the push.
 */
static void uffd_concurrent_arrivals_image_exact(void **state)
{
	enum backing k = kind_of(state);
	struct toucher t[6];
	struct pusher p[4];
	struct rdmig__pc_stats st;
	struct env e;

	env_init(&e, k, 4096, 80, 4, false, 3);
	env_arm(&e);
	xport_set(&e.x, false, true);
	touchers_start(t, 6, &e, 200, true);
	for (unsigned i = 0; i < 4; i++) {
		p[i] = (struct pusher){ .e = &e, .stripe = i, .nstripes = 4 };
		assert_int_equal(pthread_create(&p[i].t, NULL, pusher_main, &p[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(p[i].t, NULL);
	touchers_join(t, 6);
	env_wait_done(&e);
	assert_image(&e);
	assert_stats_sane(&e, &st);
	assert_int_equal(st.install_calls, e.nout + st.pages_installed_held);
	env_fini(&e);
}

/*
 * (f) kernel-mode faults: write(2) from G (copy_from_user) and read(2) into
 * G (copy_to_user, a write fault) are served like loads.
 */
static void uffd_kernel_mode_access_faults_and_resolves(void **state)
{
	enum backing k = kind_of(state);
	uint8_t buf[PS], msg[100];
	struct rdmig__pc_stats st;
	int pfd[2];
	struct env e;
	uint64_t p, q;

	env_init(&e, k, 256, 50, 2, false, 0);
	env_arm(&e);
	xport_set(&e.x, false, false);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	p = nth_outstanding(&e, 7);
	q = nth_outstanding(&e, 20);
	assert_int_equal(write(pfd[1], e.g + p * e.ps, PS), PS);
	assert_int_equal(read(pfd[0], buf, PS), PS);
	assert_int_equal(memcmp(buf, e.src + p * e.ps, PS), 0);
	/* The kernel stores 100 bytes into G: the rest of the page is the source's. */
	memset(msg, 0x5a, sizeof(msg));
	assert_int_equal(write(pfd[1], msg, sizeof(msg)), sizeof(msg));
	assert_int_equal(read(pfd[0], e.g + q * e.ps + 8, sizeof(msg)), sizeof(msg));
	WAIT_STATS(&e, st, st.faults == 2);
	assert_int_equal(st.faults, 2);
	close(pfd[0]);
	close(pfd[1]);
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	/* The expected image (after the push: the transport reads src until then). */
	memcpy(e.src + q * e.ps + 8, msg, sizeof(msg));
	assert_image(&e);
	env_fini(&e);
}

/* (g): G touched before registration: outstanding pages still fault after arm. */
static void uffd_prefaulted_guest_outstanding_pages_fault(void **state)
{
	enum backing k = kind_of(state);
	struct rdmig__pc_stats st;
	struct env e;
	uint64_t p, h = 0;

	env_init(&e, k, 256, 50, 0, true, 0);
	p = nth_outstanding(&e, 4);
	while (tbit(e.out, h))
		h++;
	assert_true(mapped(&e, p));
	env_arm(&e);
	assert_false(mapped(&e, p)); /* dropped */
	assert_true(mapped(&e, h));  /* a held page that was present stays */
	xport_set(&e.x, false, false);
	assert_int_equal(memcmp(e.g + p * e.ps, e.src + p * e.ps, e.ps), 0); /* not stale */
	assert_int_equal(memcmp(e.g + h * e.ps, e.src + h * e.ps, e.ps), 0);
	WAIT_STATS(&e, st, st.pages_installed == 1);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.pages_installed, 1);
	assert_int_equal(rdmig__pc_install_held(e.pc), 0);
	rdmig__pc_stats(e.pc, &st);
	assert_int_equal(st.pages_installed_held, 0); /* all were present */
	assert_int_equal(st.pages_present, e.npages - e.nout);
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	assert_image(&e);
	env_fini(&e);
}

/* install_held over long runs of present pages (a prefaulted G) skips them all. */
static void uffd_install_held_skips_long_present_runs(void **state)
{
	enum backing k = kind_of(state);
	struct rdmig__pc_stats st;
	struct env e;

	env_init(&e, k, 8192, 0, 0, true, 0); /* runs of 4096 (a claim) */
	env_arm(&e);
	assert_int_equal(rdmig__pc_install_held(e.pc), 0);
	rdmig__pc_stats(e.pc, &st);
	assert_int_equal(st.pages_present, e.npages - e.nout);
	assert_int_equal(st.pages_installed_held, 0);
	assert_int_equal(st.error, 0);
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	assert_image(&e);
	env_fini(&e);
}

/* A fault before arm (the VMM touching G) is served at once with what R holds. */
static void uffd_fault_before_arm_is_served(void **state)
{
	enum backing k = kind_of(state);
	struct rdmig__pc_stats st;
	struct env e;
	uint64_t h = 0;

	env_init(&e, k, 64, 50, 0, false, 0);
	while (tbit(e.out, h))
		h++;
	if (k == COPY) { /* pre-copy stored into G: only an absent (zero) page faults */
		assert_int_equal(madvise(e.g + h * e.ps, e.ps, MADV_DONTNEED), 0);
		memset(e.src + h * e.ps, 0, e.ps);
	}
	assert_int_equal(memcmp(e.g + h * e.ps, e.src + h * e.ps, e.ps), 0);
	WAIT_STATS(&e, st, st.pages_installed_held == 1);
	assert_int_equal(st.pages_installed_held, 1);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.faults_held, 1);
	env_arm(&e);
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	assert_image(&e);
	env_fini(&e);
}

struct kwriter {
	struct env *e;
	uint64_t page;
	pthread_t t;
	atomic_bool done;
	ssize_t ret;
	int err;
};

static void *kwriter_main(void *arg)
{
	struct kwriter *w = arg;
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC))
		return NULL;
	w->ret = write(pfd[1], w->e->g + w->page * w->e->ps, PS);
	w->err = errno;
	close(pfd[0]);
	close(pfd[1]);
	atomic_store(&w->done, true);
	return NULL;
}

/*
 * (k): after fail() nothing is installed: an arrival is refused, the
 * thread blocked on the page stays blocked, and at close it gets EFAULT
 * (G made inaccessible), never the zeros R holds.
 */
static void uffd_fail_installs_nothing_blocked_thread_gets_efault(void **state)
{
	enum backing k = kind_of(state);
	struct kwriter w = { 0 };
	struct rdmig__pc_stats st;
	struct env e;

	if (skip_kind(k, 8))
		skip();
	env_init(&e, k, k == HUGETLB ? 8 : 128, 50, 0, false, 0);
	env_arm(&e);
	xport_set(&e.x, false, true); /* the request never gets served */
	w.e = &e;
	w.page = nth_outstanding(&e, 2);
	assert_int_equal(pthread_create(&w.t, NULL, kwriter_main, &w), 0);
	usleep(50000);
	rdmig__pc_fail(e.pc, -ECONNRESET);
	rdmig__pc_fail(e.pc, -EIO); /* the first error stays */
	/* The WRITE lands after the failure: not installed. */
	memcpy(e.x.r + w.page * e.ps, e.src + w.page * e.ps, e.ps);
	assert_int_equal(rdmig__pc_arrived(e.pc, w.page, 1), -ECANCELED);
	assert_int_equal(rdmig__pc_arm(e.pc, e.out), -ECANCELED);
	assert_int_equal(rdmig__pc_install_held(e.pc), -ECANCELED);
	usleep(50000);
	assert_false(atomic_load(&w.done));
	assert_false(mapped(&e, w.page));
	rdmig__pc_stats(e.pc, &st);
	assert_int_equal(st.error, -ECONNRESET);
	assert_int_equal(st.pages_installed, 0);
	assert_int_equal(st.outstanding, e.nout);
	/* close: the blocked write fails with EFAULT. */
	pthread_mutex_lock(&e.x.lock);
	e.x.stop = true;
	pthread_cond_broadcast(&e.x.cond);
	pthread_mutex_unlock(&e.x.lock);
	pthread_join(e.x.thread, NULL);
	rdmig__pc_close(e.pc);
	assert_true(wait_flag(&w.done, 10000));
	pthread_join(w.t, NULL);
	assert_int_equal(w.ret, -1);
	assert_int_equal(w.err, EFAULT);
	munmap(e.g, e.len);
	if (e.fd >= 0)
		close(e.fd);
	free(e.x.q);
	free(e.x.sent);
	free(e.src);
	free(e.out);
}

/*
 * A page the VMM discards from G after its install (MADV_DONTNEED, as a
 * balloon does) faults again: with an fd it comes back from the file
 * unchanged, in the copy fallback as zeros (what anonymous memory gives).
 */
static void uffd_discarded_after_install_refaults(void **state)
{
	enum backing k = kind_of(state);
	static uint8_t zero[PS];
	struct rdmig__pc_stats st;
	struct env e;
	uint64_t p;

	env_init(&e, k, 128, 50, 0, false, 0);
	env_arm(&e);
	xport_set(&e.x, true, false);
	env_wait_done(&e);
	p = nth_outstanding(&e, 1);
	assert_true(mapped(&e, p));
	assert_int_equal(madvise(e.g + p * e.ps, e.ps, MADV_DONTNEED), 0);
	assert_false(mapped(&e, p));
	if (k == COPY)
		assert_int_equal(memcmp(e.g + p * e.ps, zero, PS), 0);
	else
		assert_int_equal(memcmp(e.g + p * e.ps, e.src + p * e.ps, e.ps), 0);
	WAIT_STATS(&e, st, st.faults_installed == 1);
	assert_int_equal(st.faults_installed, 1);
	assert_int_equal(st.error, 0);
	if (k == COPY)
		memset(e.src + p * e.ps, 0, e.ps);
	assert_image(&e);
	env_fini(&e);
}

/* A request the transport cannot send fails the region: its page never installs. */
static void uffd_request_error_fails_region(void **state)
{
	enum backing k = kind_of(state);
	struct kwriter w = { 0 };
	struct rdmig__pc_stats st;
	struct env e;

	env_init(&e, k, 64, 50, 0, false, 0);
	env_arm(&e);
	atomic_store(&e.x.refuse, true);
	w.e = &e;
	w.page = nth_outstanding(&e, 0);
	assert_int_equal(pthread_create(&w.t, NULL, kwriter_main, &w), 0);
	WAIT_STATS(&e, st, st.error != 0);
	assert_int_equal(st.error, -ENOTCONN);
	memcpy(e.x.r + w.page * e.ps, e.src + w.page * e.ps, e.ps);
	assert_int_equal(rdmig__pc_arrived(e.pc, w.page, 1), -ECANCELED);
	usleep(20000);
	assert_false(atomic_load(&w.done));
	assert_false(mapped(&e, w.page));
	env_fini(&e); /* close: the blocked write gets EFAULT */
	assert_true(wait_flag(&w.done, 10000));
	pthread_join(w.t, NULL);
	assert_int_equal(w.ret, -1);
	assert_int_equal(w.err, EFAULT);
}

/* --- what a process holds: fds, threads, mappings ------------------------------------ */

static unsigned count_dir(const char *path)
{
	DIR *d = opendir(path);
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static unsigned count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned n = 0;
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

struct held {
	unsigned fds, threads, maps;
};

static struct held held_now(void)
{
	return (struct held){ count_dir("/proc/self/fd"), count_dir("/proc/self/task"),
			      count_maps() };
}

static void assert_held(struct held a)
{
	struct held b = held_now();

	assert_int_equal(a.fds, b.fds);
	assert_int_equal(a.threads, b.threads);
	assert_int_equal(a.maps, b.maps);
}

static int noop_request(void *arg, const struct rdmig__range *runs, unsigned n)
{
	(void)arg;
	(void)runs;
	(void)n;
	return 0;
}

/* (l): open, arm, a full run, close: no fd, thread or mapping left. */
static void uffd_close_leaves_nothing(void **state)
{
	struct rdmig__pc_params p = { .len = 64 * PS, .request = noop_request };
	struct rdmig__pc *pc;
	uint64_t all[1] = { ~0ull };
	struct held before;
	int fd = memfd_create("uffd_l", MFD_CLOEXEC);
	uint8_t *g;

	(void)state;
	assert_int_equal(ftruncate(fd, 64 * PS), 0);
	g = mmap(NULL, 64 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p.guest = g;
	p.fd = fd;
	before = held_now();
	assert_int_equal(rdmig__pc_open(&pc, &p), 0);
	assert_true(held_now().fds > before.fds);
	assert_true(held_now().threads > before.threads);
	assert_int_equal(rdmig__pc_arm(pc, all), 0);
	assert_int_equal(rdmig__pc_arm(pc, all), -EALREADY);
	memset(rdmig__pc_recv_base(pc), 7, 64 * PS);
	assert_int_equal(rdmig__pc_arrived(pc, 0, 64), 0);
	assert_int_equal(rdmig__pc_outstanding(pc), 0);
	assert_int_equal(g[63 * PS], 7);
	rdmig__pc_close(pc);
	assert_held(before);
	/* G is the VMM's again, accessible and unregistered. */
	g[0] = 1;
	assert_int_equal(munmap(g, 64 * PS), 0);
	close(fd);
}

static bool reg_is_disk;

/*
 * A regular file on a file system that is neither tmpfs nor hugetlbfs, where
 * there is one (the build directory, /var/tmp); else one on tmpfs.
 */
static int disk_file(void)
{
	static const char *dirs[] = { ".", "/var/tmp", "/tmp" };
	char path[256];
	int fd = -1;

	for (unsigned i = 0; i < 3; i++) {
		struct statfs sfs;

		snprintf(path, sizeof(path), "%s/uffd_test_XXXXXX", dirs[i]);
		fd = mkstemp(path);
		if (fd < 0)
			continue;
		unlink(path);
		reg_is_disk = !fstatfs(fd, &sfs) && (uint64_t)sfs.f_type != TMPFS_MAGIC &&
			      (uint64_t)sfs.f_type != HUGETLBFS_MAGIC;
		if (reg_is_disk || i == 2)
			return fd;
		close(fd);
	}
	assert_true(fd >= 0);
	return fd;
}

/* (j): bad input: a clear error naming what is wrong, nothing left open. */
static void uffd_bad_input_clear_error_nothing_left(void **state)
{
	struct rdmig__pc_params p = { .len = 16 * PS, .request = noop_request };
	struct rdmig__pc *pc = (void *)1;
	struct held before;
	int fd = memfd_create("uffd_j", MFD_CLOEXEC), other, reg, ro;
	uint8_t *g, *a;
	char link[64];

	(void)state;
	assert_int_equal(ftruncate(fd, 16 * PS), 0);
	g = mmap(NULL, 16 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	a = mmap(NULL, 16 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	other = memfd_create("uffd_j2", MFD_CLOEXEC);
	assert_int_equal(ftruncate(other, 16 * PS), 0);
	reg = disk_file();
	assert_int_equal(ftruncate(reg, 16 * PS), 0);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ro = open(link, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	before = held_now();

	p.guest = g;
	p.fd = reg; /* a regular file on a disk file system */
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	assert_null(pc);
	if (reg_is_disk)
		assert_non_null(strstr(rdmig_last_error(), "not a memfd, shmem or hugetlbfs"));
	else /* only tmpfs here (the soft-RoCE VM): the mapping check refuses it */
		assert_non_null(strstr(rdmig_last_error(), "not a shared mapping"));
	p.fd = fd;
	p.offset = PS; /* offset + len past the end */
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "past the end"));
	p.offset = 100; /* unaligned offset */
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	p.offset = 0;
	p.guest = g + 100; /* unaligned G */
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "not aligned"));
	p.guest = g;
	p.len = 16 * PS + 1;
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	p.len = 16 * PS;
	p.fd = other; /* G maps another file */
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "not a shared mapping"));
	p.fd = fd;
	p.guest = a; /* G is anonymous memory, not the fd's */
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	p.guest = g;
	p.fd = ro;
	assert_int_equal(rdmig__pc_open(&pc, &p), -EBADF);
	assert_non_null(strstr(rdmig_last_error(), "read-write"));
	p.fd = fd;
	p.page_size = 2u << 20;
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	p.page_size = 0;
	p.prefetch = RDMIG__PC_PREFETCH_MAX + 1;
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	p.prefetch = 0;
	p.request = NULL;
	assert_int_equal(rdmig__pc_open(&pc, &p), -EINVAL);
	p.request = noop_request;
	/* The copy fallback on memory userfaultfd cannot register: unmapped. */
	p.fd = -1;
	p.guest = mmap(NULL, 16 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, reg, 0);
	assert_true(p.guest != MAP_FAILED);
	if (reg_is_disk) { /* (tmpfs would register: it is shmem) */
		assert_true(rdmig__pc_open(&pc, &p) < 0);
		assert_non_null(strstr(rdmig_last_error(), "cannot register G"));
	}
	munmap(p.guest, 16 * PS);
	assert_held(before);

	munmap(g, 16 * PS);
	munmap(a, 16 * PS);
	close(fd);
	close(other);
	close(reg);
	close(ro);
}

/*
 * No permission for userfaultfd (an unprivileged user, with
 * vm.unprivileged_userfaultfd=0 and a root-only /dev/userfaultfd): -EPERM
 * naming all three ways to grant it. Runs in a child that drops root.
 */
static void uffd_no_permission_names_the_knobs(void **state)
{
	int status, fd;
	pid_t pid;
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "re");
	int knob = f ? fgetc(f) : '?';

	(void)state;
	if (f)
		fclose(f);
	if (geteuid() != 0 || knob != '0')
		skip(); /* only root can drop to a user that has no permission */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rdmig__pc_params p = { .len = 4 * PS, .request = noop_request };
		struct rdmig__pc *pc;
		const char *m;
		int ret;

		fd = memfd_create("uffd_perm", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, 4 * PS))
			_exit(2);
		p.guest = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		p.fd = fd;
		if (setgid(65534) || setuid(65534))
			_exit(3);
		ret = rdmig__pc_open(&pc, &p);
		m = rdmig_last_error();
		if (ret != -EPERM || !strstr(m, "vm.unprivileged_userfaultfd") ||
		    !strstr(m, "/dev/userfaultfd") || !strstr(m, "CAP_SYS_PTRACE")) {
			fprintf(stderr, "got %d: %s\n", ret, m);
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Whether this host can run the engine at all (else exit 77). */
static int probe(void)
{
	struct rdmig__pc_params p = { .len = PS, .request = noop_request };
	struct rdmig__pc *pc;
	int fd = memfd_create("uffd_probe", MFD_CLOEXEC), ret;

	if (fd < 0 || ftruncate(fd, PS))
		return -errno;
	p.guest = mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	p.fd = fd;
	ret = rdmig__pc_open(&pc, &p);
	if (!ret)
		rdmig__pc_close(pc);
	else
		fprintf(stderr, "uffd_test: skipped: %s\n", rdmig_last_error());
	munmap(p.guest, PS);
	close(fd);
	return ret;
}

#define KINDS(fn)                                                \
	cmocka_unit_test_prestate(fn, (void *)(uintptr_t)SHMEM), \
		cmocka_unit_test_prestate(fn, (void *)(uintptr_t)COPY)
#define KINDS3(fn) KINDS(fn), cmocka_unit_test_prestate(fn, (void *)(uintptr_t)HUGETLB)

int main(void)
{
	const struct CMUnitTest tests[] = {
		KINDS3(uffd_random_touch_during_push_image_exact),
		KINDS(uffd_fault_on_inflight_page_waits_for_arrival),
		KINDS(uffd_write_after_install_survives_duplicate_is_eproto),
		KINDS(uffd_arrival_of_held_page_is_eproto),
		KINDS(uffd_touch_on_hole_faults_and_is_served),
		KINDS(uffd_held_hole_installs_zeros),
		KINDS(uffd_batch_racing_faults_no_thread_blocked),
		KINDS(uffd_concurrent_arrivals_image_exact),
		KINDS(uffd_kernel_mode_access_faults_and_resolves),
		KINDS(uffd_prefaulted_guest_outstanding_pages_fault),
		KINDS(uffd_install_held_skips_long_present_runs),
		KINDS(uffd_fault_before_arm_is_served),
		KINDS(uffd_discarded_after_install_refaults),
		KINDS(uffd_request_error_fails_region),
		KINDS3(uffd_fail_installs_nothing_blocked_thread_gets_efault),
		cmocka_unit_test(uffd_close_leaves_nothing),
		cmocka_unit_test(uffd_bad_input_clear_error_nothing_left),
		cmocka_unit_test(uffd_no_permission_names_the_knobs),
	};
	int ret = probe();

	if (ret == -EPERM || ret == -ENOSYS || ret == -EOPNOTSUPP)
		return 77;
	if (ret)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
