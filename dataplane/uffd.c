/* SPDX-License-Identifier: MIT */
/*
 * The destination's post-copy install engine (see uffd.h): userfaultfd
 * registration of G, the fault thread, installs (UFFDIO_CONTINUE, or
 * UFFDIO_COPY in the copy fallback) and the page-state bitmaps that make
 * "installed only after it arrived, and only once" hold.
 *
 * Locking: pc->lock guards the bitmaps, the pending-fault table, the
 * histogram and the counters. It is never held across an ioctl that
 * installs, nor across the request callback: an installer claims its pages
 * under the lock, issues the ioctl without it, and records the result under
 * it again. `installing` counts claims whose result is not recorded yet, so
 * that arm and fail can wait until G stops changing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/vfs.h>

#include "../common/util.h"
#include "uffd.h"

#define EVENT_BATCH   64   /* fault events read per read(2) */
#define PENDING_SLOTS 1024 /* faults timed at once: one per blocked thread */
#define HELD_CHUNK    4096 /* pages per claim of install_held */
#define POLL_MS	      1000 /* the fault thread's poll bound; the eventfd stops it at once */
#define EAGAIN_TRIES  1000 /* retries without progress (EAGAIN: the mm is changing, fork, mremap) */

/*
 * Fault latency histogram: log-linear, 8 sub-buckets per power of two
 * (12.5% resolution), fixed size whatever the fault count.
 */
#define HIST_SUB_BITS 3
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

enum fill_op {
	OP_CONTINUE,
	OP_COPY,
	OP_ZEROPAGE,
	OP_COPY_ZERO
};

struct pending {
	uint64_t page;
	uint64_t t_ns;
	uint32_t tid;
	bool used;
};

/* A page the fault thread decided to install (held) or re-install (installed). */
struct candidate {
	uint64_t page;
	bool refault;
};

struct rdmig__pc {
	uint8_t *g;
	uint64_t len, npages;
	uint32_t ps;
	bool copy; /* copy fallback: R is staging, installs are UFFDIO_COPY */
	bool huge; /* hugetlb pages: no UFFDIO_ZEROPAGE */
	enum fill_op zero_op;
	uint8_t *r;    /* R (fd) or staging (copy) */
	uint8_t *zero; /* ps bytes of zeros for OP_COPY_ZERO, or NULL */
	int uffd, stopfd;
	bool thread_id;
	uint32_t prefetch;
	rdmig__pc_request_fn request;
	void *request_arg;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;
	pthread_cond_t idle; /* installing dropped to 0 */
	unsigned installing;
	bool armed, failed;
	uint64_t *outstanding, *requested, *arrived, *claimed, *installed;
	uint64_t left; /* outstanding, not installed */
	struct pending pending[PENDING_SLOTS];
	unsigned npending;
	uint64_t blocked_since; /* when npending last rose from 0 */
	uint64_t hist[HIST_BUCKETS];
	struct rdmig__pc_stats st;

	/* Fault thread only. */
	struct rdmig__range *runs;
	unsigned runs_cap;
	struct candidate cand[EVENT_BATCH];
};

/* --- bitmaps ------------------------------------------------------------------- */

static inline bool bit(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static inline void bit_set(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ull << (i % 64);
}

static inline void bit_clear(uint64_t *bm, uint64_t i)
{
	bm[i / 64] &= ~(1ull << (i % 64));
}

static void bits_set(uint64_t *bm, uint64_t first, uint64_t n)
{
	for (uint64_t i = first; i < first + n; i++)
		bit_set(bm, i);
}

/* --- latency ------------------------------------------------------------------- */

static unsigned hist_bucket(uint64_t ns)
{
	unsigned e;

	if (ns < (1u << HIST_SUB_BITS))
		return (unsigned)ns;
	e = 63u - (unsigned)__builtin_clzll(ns); /* >= HIST_SUB_BITS */
	return ((e - HIST_SUB_BITS + 1) << HIST_SUB_BITS) |
	       (unsigned)((ns >> (e - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1));
}

/* The middle of bucket b. */
static uint64_t hist_value(unsigned b)
{
	unsigned e, sub;
	uint64_t lo;

	if (b < (1u << HIST_SUB_BITS))
		return b;
	e = (b >> HIST_SUB_BITS) + HIST_SUB_BITS - 1;
	sub = b & ((1u << HIST_SUB_BITS) - 1);
	lo = (1ull << e) | ((uint64_t)sub << (e - HIST_SUB_BITS));
	return lo + (1ull << (e - HIST_SUB_BITS)) / 2;
}

static uint64_t hist_quantile(const struct rdmig__pc *pc, uint64_t permille)
{
	uint64_t want, seen = 0;

	if (!pc->st.latency_count)
		return 0;
	want = (pc->st.latency_count * permille + 999) / 1000;
	if (!want)
		want = 1;
	for (unsigned b = 0; b < HIST_BUCKETS; b++) {
		seen += pc->hist[b];
		if (seen >= want)
			return RDMIG__MIN(hist_value(b), pc->st.latency_max_ns);
	}
	return pc->st.latency_max_ns;
}

/* Under the lock: a fault event read at `now` for `page` by thread `tid`. */
static void pending_add(struct rdmig__pc *pc, uint64_t page, uint32_t tid, uint64_t now)
{
	struct pending *free_slot = NULL;

	for (unsigned i = 0; i < PENDING_SLOTS && (pc->npending || !free_slot); i++) {
		struct pending *s = &pc->pending[i];

		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		/*
		 * A thread blocks on one fault at a time: an older entry of the
		 * same thread ended without a wake we saw (a signal).
		 */
		if (pc->thread_id && s->tid == tid) {
			*s = (struct pending){ page, now, tid, true };
			return;
		}
	}
	if (!free_slot)
		return; /* more blocked threads than slots: served, not timed */
	*free_slot = (struct pending){ page, now, tid, true };
	if (!pc->npending++)
		pc->blocked_since = now;
}

/* Under the lock: pages [first, first + n) were just installed, their waiters woken. */
static void pending_woken(struct rdmig__pc *pc, uint64_t first, uint64_t n)
{
	uint64_t now;

	if (!pc->npending || !n)
		return;
	now = rdmig__now_ns();
	for (unsigned i = 0; i < PENDING_SLOTS && pc->npending; i++) {
		struct pending *s = &pc->pending[i];
		uint64_t d;

		if (!s->used || s->page < first || s->page >= first + n)
			continue;
		d = now > s->t_ns ? now - s->t_ns : 0;
		pc->hist[hist_bucket(d)]++;
		pc->st.latency_count++;
		pc->st.blocktime_ns += d;
		if (d > pc->st.latency_max_ns)
			pc->st.latency_max_ns = d;
		s->used = false;
		if (!--pc->npending)
			pc->st.blocked_any_ns += now - pc->blocked_since;
	}
}

/* --- installs ------------------------------------------------------------------- */

/*
 * One install ioctl over pages [page, page + n): the bytes installed (> 0),
 * or -errno for the first page. The kernel stops at the first page it cannot
 * install and reports the progress before it (notes' table).
 */
static int64_t fill(struct rdmig__pc *pc, enum fill_op op, uint64_t page, uint64_t n)
{
	uint64_t dst = (uint64_t)(uintptr_t)(pc->g + page * pc->ps), len = n * pc->ps;
	int64_t done = 0;
	int ret = 0;

	switch (op) {
	case OP_CONTINUE: {
		struct uffdio_continue c = { .range = { dst, len } };

		ret = ioctl(pc->uffd, UFFDIO_CONTINUE, &c);
		done = c.mapped;
		break;
	}
	case OP_COPY: {
		struct uffdio_copy c = { .dst = dst,
					 .src = (uint64_t)(uintptr_t)(pc->r + page * pc->ps),
					 .len = len };

		ret = ioctl(pc->uffd, UFFDIO_COPY, &c);
		done = c.copy;
		break;
	}
	case OP_ZEROPAGE: {
		struct uffdio_zeropage z = { .range = { dst, len } };

		ret = ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
		done = z.zeropage;
		break;
	}
	case OP_COPY_ZERO: {
		struct uffdio_copy c = { .dst = dst,
					 .src = (uint64_t)(uintptr_t)pc->zero,
					 .len = pc->ps };

		ret = ioctl(pc->uffd, UFFDIO_COPY, &c);
		done = c.copy;
		break;
	}
	}
	if (ret == 0)
		return op == OP_COPY_ZERO ? (int64_t)pc->ps : (int64_t)len;
	if (done > 0)
		return done;
	return done < 0 ? done : -errno; /* the ioctl failed before any page */
}

struct install_result {
	uint64_t done;	  /* pages of the run handled: [first, first + done) */
	uint64_t present; /* of those, found already mapped and skipped */
	uint64_t calls;	  /* ioctls that installed */
	uint64_t installed;
	bool woke;
};

static enum fill_op base_op(const struct rdmig__pc *pc, bool held)
{
	if (pc->copy)
		return held ? pc->zero_op : OP_COPY;
	return OP_CONTINUE;
}

/*
 * Installs the claimed pages [first, first + n), without the lock. Held
 * pages take what R (or G, in the copy fallback) holds, holes as zeros;
 * arrived pages take R's bytes and must exist there. A page found mapped
 * already is skipped and the run goes on (pitfall 5); the range is then
 * woken, since the skipped page's waiter may have been left to us.
 * Returns 0 or -errno (with the message set); res says how far it got.
 */
static int install_run(struct rdmig__pc *pc, uint64_t first, uint64_t n, bool held,
		       struct install_result *res)
{
	uint64_t cur = first, end = first + n;
	enum fill_op op = base_op(pc, held);
	unsigned tries = 0;
	int ret = 0;

	*res = (struct install_result){ 0 };
	while (cur < end) {
		int64_t r = fill(pc, op, cur, op == OP_COPY_ZERO ? 1 : end - cur);

		if (r > 0) {
			uint64_t k = (uint64_t)r / pc->ps;

			res->calls++;
			res->installed += k;
			cur += k;
			op = base_op(pc, held);
			tries = 0;
			continue;
		}
		if (++tries > EAGAIN_TRIES) {
			ret = rdmig__err(-EIO,
					 "post-copy: page %" PRIu64 " cannot be installed (%s)",
					 cur, strerror((int)-r));
			break;
		}
		if (r == -EEXIST && op != OP_CONTINUE && !pc->copy) {
			op = OP_CONTINUE; /* zero-filling a hole found a page in the cache */
			continue;
		}
		if (r == -EEXIST) { /* already mapped: skip it, go on */
			res->present++;
			cur++;
			op = base_op(pc, held);
			tries = 0;
			continue;
		}
		if (r == -EFAULT && op == OP_CONTINUE && held) {
			op = pc->zero_op; /* a hole in the file: a held page there is zero */
			continue;
		}
		if (r == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (r == -EFAULT && op == OP_CONTINUE)
			ret = rdmig__err(-EIO,
					 "post-copy: page %" PRIu64
					 " was reported arrived but R holds no page there",
					 cur);
		else
			ret = rdmig__err((int)r, "post-copy: installing page %" PRIu64 ": %s", cur,
					 strerror((int)-r));
		break;
	}
	res->done = cur - first;
	if (res->present && res->done) {
		struct uffdio_range w = { (uint64_t)(uintptr_t)(pc->g + first * pc->ps),
					  res->done * pc->ps };

		if (ioctl(pc->uffd, UFFDIO_WAKE, &w) == 0)
			res->woke = true;
	}
	return ret;
}

static void fail_locked(struct rdmig__pc *pc, int err)
{
	if (pc->failed)
		return;
	pc->failed = true;
	pc->st.error = err < 0 ? err : -EIO;
	rdmig__log(RDMIG__LOG_ERR,
		   "post-copy region at %p failed (%s): %" PRIu64
		   " outstanding pages will not be installed",
		   (void *)pc->g, strerror(-pc->st.error), pc->left);
}

/* Under the lock: the result of an install of claimed pages [first, first + n). */
static void install_done(struct rdmig__pc *pc, uint64_t first, const struct install_result *res,
			 bool held, int ret)
{
	bits_set(pc->installed, first, res->done);
	if (held) {
		pc->st.pages_installed_held += res->done - res->present;
	} else {
		pc->st.pages_installed += res->done;
		pc->left -= res->done;
	}
	pc->st.pages_present += res->present;
	pc->st.install_calls += res->calls;
	pc->st.install_call_pages += res->installed;
	pc->st.wakes += res->woke;
	pending_woken(pc, first, res->done);
	if (ret < 0)
		fail_locked(pc, ret);
	if (!--pc->installing)
		pthread_cond_broadcast(&pc->idle);
}

/* --- fault thread ------------------------------------------------------------------- */

/* Under the lock: appends page p to the runs being requested. */
static void runs_add(struct rdmig__pc *pc, unsigned *n, uint64_t p)
{
	if (*n && pc->runs[*n - 1].first + pc->runs[*n - 1].count == p) {
		pc->runs[*n - 1].count++;
		return;
	}
	pc->runs[(*n)++] = (struct rdmig__range){ p, 1 };
}

static bool wanted(const struct rdmig__pc *pc, uint64_t p)
{
	return bit(pc->outstanding, p) && !bit(pc->arrived, p) && !bit(pc->requested, p);
}

/* The fault thread's answer to `n` fault events read together. */
static void handle_faults(struct rdmig__pc *pc, const struct uffd_msg *msg, unsigned n)
{
	uint64_t now = rdmig__now_ns();
	unsigned nruns = 0, ncand = 0;
	int ret = 0;

	pthread_mutex_lock(&pc->lock);
	for (unsigned i = 0; i < n; i++) {
		uint64_t addr = msg[i].arg.pagefault.address, page;

		if (msg[i].event != UFFD_EVENT_PAGEFAULT)
			continue; /* no other event is enabled */
		if (addr < (uint64_t)(uintptr_t)pc->g ||
		    addr >= (uint64_t)(uintptr_t)pc->g + pc->len)
			continue;
		page = (addr - (uint64_t)(uintptr_t)pc->g) / pc->ps;
		pc->st.faults++;
		pending_add(pc, page, pc->thread_id ? msg[i].arg.pagefault.feat.ptid : 0, now);
		if (pc->failed) {
			pc->st.faults_failed++; /* left blocked: see uffd.h */
		} else if (bit(pc->outstanding, page) && !bit(pc->arrived, page)) {
			uint64_t end = RDMIG__MIN(pc->npages, page + 1 + pc->prefetch);

			if (!wanted(pc, page)) {
				pc->st.faults_waiting++; /* requested or pushed: its arrival wakes it */
				continue;
			}
			for (uint64_t p = page; p < end; p++) {
				if (!wanted(pc, p))
					continue;
				bit_set(pc->requested, p);
				runs_add(pc, &nruns, p);
				pc->st.pages_requested++;
			}
		} else if (bit(pc->installed, page)) {
			pc->st.faults_installed++;
			pc->cand[ncand++] = (struct candidate){ page, true };
		} else if (bit(pc->claimed, page)) {
			pc->st.faults_waiting++; /* an install under way wakes it */
		} else {
			pc->st.faults_held++;
			pc->cand[ncand++] = (struct candidate){ page, false };
		}
	}
	if (nruns)
		pc->st.requests++;
	pthread_mutex_unlock(&pc->lock);

	/* Requests first: the network round trip is the long part. */
	if (nruns)
		ret = pc->request(pc->request_arg, pc->runs, nruns);

	pthread_mutex_lock(&pc->lock);
	if (ret < 0) {
		rdmig__log(RDMIG__LOG_ERR, "post-copy: the fault request failed (%s)",
			   strerror(-ret));
		fail_locked(pc, ret);
	}
	for (unsigned i = 0; i < ncand; i++) {
		struct candidate *c = &pc->cand[i];
		struct install_result res;
		bool ok;

		/* Checked again: arm or another installer may have come in between. */
		if (pc->failed)
			break;
		if (c->refault)
			ok = bit(pc->installed, c->page) &&
			     (!bit(pc->outstanding, c->page) || bit(pc->arrived, c->page));
		else
			ok = !bit(pc->outstanding, c->page) && !bit(pc->claimed, c->page);
		if (!ok)
			continue;
		bit_set(pc->claimed, c->page);
		pc->installing++;
		pthread_mutex_unlock(&pc->lock);
		ret = install_run(pc, c->page, 1, true, &res);
		/*
		 * A refault that installs: the VMM discarded the page from G
		 * (its PTE, not the file's page). One that finds the page
		 * mapped: a stale event; wake it to be sure.
		 */
		if (c->refault && res.present) {
			struct uffdio_range w = { (uint64_t)(uintptr_t)(pc->g + c->page * pc->ps),
						  pc->ps };

			ioctl(pc->uffd, UFFDIO_WAKE, &w);
		}
		pthread_mutex_lock(&pc->lock);
		if (c->refault) {
			/* Counted as held: the page was installed once already. */
			pc->st.pages_installed_held += res.done - res.present;
			pc->st.pages_present += res.present;
			pc->st.install_calls += res.calls;
			pc->st.install_call_pages += res.installed;
			pending_woken(pc, c->page, 1);
			if (ret < 0)
				fail_locked(pc, ret);
			if (!--pc->installing)
				pthread_cond_broadcast(&pc->idle);
		} else {
			install_done(pc, c->page, &res, true, ret);
		}
	}
	pthread_mutex_unlock(&pc->lock);
}

static void *fault_main(void *arg)
{
	struct rdmig__pc *pc = arg;
	struct pollfd pfd[2] = { { .fd = pc->uffd, .events = POLLIN },
				 { .fd = pc->stopfd, .events = POLLIN } };
	struct uffd_msg msg[EVENT_BATCH];

	for (;;) {
		ssize_t got;
		int r = poll(pfd, 2, POLL_MS);

		if (r < 0 && errno != EINTR) {
			rdmig__log(RDMIG__LOG_ERR, "post-copy fault thread: poll: %s",
				   strerror(errno));
			break;
		}
		if (r <= 0)
			continue;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		got = read(pc->uffd, msg, sizeof(msg));
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			rdmig__log(RDMIG__LOG_ERR, "post-copy fault thread: read: %s",
				   strerror(errno));
			break;
		}
		handle_faults(pc, msg, (unsigned)((size_t)got / sizeof(msg[0])));
	}
	return NULL;
}

/* --- open ------------------------------------------------------------------- */

static const char *kernel_release(char *buf, size_t len)
{
	struct utsname u;

	if (uname(&u))
		return "unknown";
	snprintf(buf, len, "%s", u.release);
	return buf;
}

/*
 * A new userfaultfd that sees kernel-mode faults too (not
 * UFFD_USER_MODE_ONLY: KVM and vhost touch G from the kernel). The syscall
 * first, then /dev/userfaultfd (Linux 6.1+), whose access the admin grants.
 */
static int uffd_new(void)
{
	int fd, dev, e_sys, e_dev;
	char knob[16] = "?";
	FILE *f;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	e_sys = errno;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		e_dev = errno;
		close(dev);
		if (fd >= 0)
			return fd;
	} else {
		e_dev = errno;
	}
	if (e_sys == ENOSYS && e_dev == ENOENT)
		return rdmig__err(-ENOSYS,
				  "post-copy: this kernel has no userfaultfd (CONFIG_USERFAULTFD)");
	f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "re");
	if (f) {
		if (!fgets(knob, sizeof(knob), f))
			snprintf(knob, sizeof(knob), "?");
		knob[strcspn(knob, "\n")] = 0;
		fclose(f);
	}
	return rdmig__err(-EPERM,
			  "post-copy: no permission for userfaultfd (userfaultfd(2): %s; "
			  "/dev/userfaultfd: %s): the process needs CAP_SYS_PTRACE, or "
			  "vm.unprivileged_userfaultfd=1 (it is %s), or read-write access "
			  "to /dev/userfaultfd",
			  strerror(e_sys), strerror(e_dev), knob);
}

/* Opens the userfaultfd with the features this region needs, or says which is missing. */
static int uffd_open(struct rdmig__pc *pc, bool shmem_fd)
{
	struct uffdio_api api = { .api = UFFD_API };
	uint64_t need = 0, want;
	const char *name = NULL, *since = NULL;
	char rel[128];
	int fd = uffd_new();

	if (fd < 0)
		return fd;
	/* Probe: features 0 returns everything the kernel supports. */
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = errno;

		close(fd);
		return rdmig__err(-e, "post-copy: UFFDIO_API: %s", strerror(e));
	}
	close(fd);
	if (!pc->copy && shmem_fd) {
		need = UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MISSING_SHMEM;
		name = !(api.features & UFFD_FEATURE_MINOR_SHMEM) ? "UFFD_FEATURE_MINOR_SHMEM"
								  : "UFFD_FEATURE_MISSING_SHMEM";
		since = "5.14";
	} else if (!pc->copy) {
		need = UFFD_FEATURE_MINOR_HUGETLBFS | UFFD_FEATURE_MISSING_HUGETLBFS;
		name = !(api.features & UFFD_FEATURE_MINOR_HUGETLBFS)
			       ? "UFFD_FEATURE_MINOR_HUGETLBFS"
			       : "UFFD_FEATURE_MISSING_HUGETLBFS";
		since = "5.13";
	}
	if ((api.features & need) != need)
		return rdmig__err(-EOPNOTSUPP,
				  "post-copy: the kernel (%s) lacks %s: minor faults on this "
				  "region's memory need Linux %s or later",
				  kernel_release(rel, sizeof(rel)), name, since);
	/* The copy fallback registers whatever G is: ask for shmem/hugetlb too if offered. */
	want = need | (api.features & UFFD_FEATURE_THREAD_ID);
	if (pc->copy)
		want |= api.features &
			(UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MISSING_HUGETLBFS);
	fd = uffd_new();
	if (fd < 0)
		return fd;
	api = (struct uffdio_api){ .api = UFFD_API, .features = want };
	if (ioctl(fd, UFFDIO_API, &api)) {
		int e = errno;

		close(fd);
		return rdmig__err(-e, "post-copy: UFFDIO_API (features 0x%" PRIx64 "): %s", want,
				  strerror(e));
	}
	pc->thread_id = want & UFFD_FEATURE_THREAD_ID;
	pc->uffd = fd;
	return 0;
}

/*
 * G must be a shared mapping of the fd's file at the given offset, or the
 * installs would map another file's pages: checked against /proc/self/maps.
 */
static int check_mapping(const void *g, uint64_t len, const struct stat *st, uint64_t offset)
{
	uint64_t start = (uint64_t)(uintptr_t)g, end = start + len, covered = start;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return 0; /* no procfs: the registration still refuses non-file memory */
	while (covered < end && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off, ino;
		unsigned maj, mnr;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &lo, &hi, perms, &off, &maj, &mnr,
			   &ino) != 7)
			continue;
		if (hi <= covered || lo >= end)
			continue;
		if (lo > covered)
			break; /* a gap */
		if (perms[3] != 's' || ino != st->st_ino || maj != major(st->st_dev) ||
		    mnr != minor(st->st_dev) || off - lo != offset - start) {
			fclose(f);
			return rdmig__err(-EINVAL,
					  "post-copy: G [%#" PRIx64 ", +%#" PRIx64
					  ") is not a shared mapping of the region's fd at offset "
					  "%#" PRIx64 " (at %#llx: %s)",
					  start, len, offset, lo, line);
		}
		covered = hi;
	}
	fclose(f);
	if (covered < end)
		return rdmig__err(-EFAULT,
				  "post-copy: G [%#" PRIx64 ", +%#" PRIx64
				  ") is not mapped at %#" PRIx64,
				  start, len, covered);
	return 0;
}

/* fd mode: the file kind, its page size, the bounds. */
static int check_fd(const struct rdmig__pc_params *p, uint32_t *ps, bool *shmem, struct stat *st)
{
	struct statfs sfs;
	int fl;

	if (fstat(p->fd, st))
		return rdmig__err(-errno, "post-copy: fd %d: %s", p->fd, strerror(errno));
	if (fstatfs(p->fd, &sfs))
		return rdmig__err(-errno, "post-copy: fd %d: fstatfs: %s", p->fd, strerror(errno));
	if (!S_ISREG(st->st_mode) ||
	    ((uint64_t)sfs.f_type != TMPFS_MAGIC && (uint64_t)sfs.f_type != HUGETLBFS_MAGIC))
		return rdmig__err(-EINVAL,
				  "post-copy: fd %d is not a memfd, shmem or hugetlbfs file "
				  "(file system type %#llx); give one, or no fd for the copy "
				  "fallback",
				  p->fd, (unsigned long long)sfs.f_type);
	*shmem = (uint64_t)sfs.f_type == TMPFS_MAGIC;
	*ps = *shmem ? (uint32_t)sysconf(_SC_PAGESIZE) : (uint32_t)sfs.f_bsize;
	fl = fcntl(p->fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDWR)
		return rdmig__err(-EBADF, "post-copy: fd %d is not open read-write", p->fd);
	if (p->offset % *ps)
		return rdmig__err(-EINVAL,
				  "post-copy: offset %#" PRIx64 " is not a multiple of the page "
				  "size %u",
				  p->offset, *ps);
	if (p->offset > (uint64_t)st->st_size || p->len > (uint64_t)st->st_size - p->offset)
		return rdmig__err(-EINVAL,
				  "post-copy: offset %#" PRIx64 " + length %#" PRIx64
				  " is past the end of fd %d (%lld bytes)",
				  p->offset, p->len, p->fd, (long long)st->st_size);
	return 0;
}

int rdmig__pc_open(struct rdmig__pc **out, const struct rdmig__pc_params *p)
{
	uint32_t sys_ps = (uint32_t)sysconf(_SC_PAGESIZE), ps = sys_ps;
	struct uffdio_register reg;
	struct rdmig__pc *pc;
	bool shmem = false;
	struct stat st;
	uint64_t words;
	int ret;

	*out = NULL;
	if (!p || !p->guest || !p->len || !p->request)
		return rdmig__err(-EINVAL, "post-copy: a region needs G, a length and a request "
					   "callback");
	if (p->fd >= 0) {
		ret = check_fd(p, &ps, &shmem, &st);
		if (ret)
			return ret;
		if (p->page_size && p->page_size != ps)
			return rdmig__err(-EINVAL,
					  "post-copy: page size %u given, but fd %d has %u-byte "
					  "pages",
					  p->page_size, p->fd, ps);
	} else if (p->page_size) {
		ps = p->page_size;
		if (ps < sys_ps || (ps & (ps - 1)))
			return rdmig__err(-EINVAL,
					  "post-copy: page size %u is not a power of two "
					  ">= the system's",
					  ps);
	}
	if ((uintptr_t)p->guest % ps || p->len % ps)
		return rdmig__err(-EINVAL,
				  "post-copy: G %p + %#" PRIx64 " is not aligned to the %u-byte "
				  "page",
				  p->guest, p->len, ps);
	if (p->prefetch > RDMIG__PC_PREFETCH_MAX)
		return rdmig__err(-EINVAL, "post-copy: prefetch %u is above %u", p->prefetch,
				  RDMIG__PC_PREFETCH_MAX);
	if (p->fd >= 0) {
		ret = check_mapping(p->guest, p->len, &st, p->offset);
		if (ret)
			return ret;
	}

	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return rdmig__err(-ENOMEM, "post-copy: out of memory");
	pc->g = p->guest;
	pc->len = p->len;
	pc->ps = ps;
	pc->npages = p->len / ps;
	pc->copy = p->fd < 0;
	pc->huge = ps > sys_ps;
	pc->uffd = pc->stopfd = -1;
	pc->r = MAP_FAILED;
	pc->zero = MAP_FAILED;
	pc->prefetch = p->no_prefetch ? 0 : p->prefetch ? p->prefetch : RDMIG__PC_PREFETCH_DEFAULT;
	pc->request = p->request;
	pc->request_arg = p->request_arg;
	pthread_mutex_init(&pc->lock, NULL);
	pthread_cond_init(&pc->idle, NULL);
	words = (pc->npages + 63) / 64;
	pc->outstanding = calloc(5 * words, sizeof(uint64_t));
	/* Worst case per event: every other page of its window is wanted. */
	pc->runs_cap = EVENT_BATCH * (pc->prefetch / 2 + 1);
	pc->runs = calloc(pc->runs_cap, sizeof(*pc->runs));
	if (!pc->outstanding || !pc->runs) {
		ret = rdmig__err(-ENOMEM, "post-copy: out of memory for %" PRIu64 " pages",
				 pc->npages);
		goto fail;
	}
	pc->requested = pc->outstanding + words;
	pc->arrived = pc->requested + words;
	pc->claimed = pc->arrived + words;
	pc->installed = pc->claimed + words;

	if (pc->copy)
		pc->r = mmap(NULL, p->len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	else
		pc->r = mmap(NULL, p->len, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd,
			     (off_t)p->offset);
	if (pc->r == MAP_FAILED) {
		ret = rdmig__err(-errno, "post-copy: mapping %s of %" PRIu64 " bytes: %s",
				 pc->copy ? "the staging area" : "R", p->len, strerror(errno));
		goto fail;
	}

	ret = uffd_open(pc, shmem);
	if (ret)
		goto fail;
	reg = (struct uffdio_register){
		.range = { (uint64_t)(uintptr_t)p->guest, p->len },
		.mode = pc->copy ? UFFDIO_REGISTER_MODE_MISSING
				 : UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR,
	};
	if (ioctl(pc->uffd, UFFDIO_REGISTER, &reg)) {
		ret = rdmig__err(-errno,
				 "post-copy: cannot register G %p + %#" PRIx64 " with userfaultfd "
				 "(%s mode): %s",
				 p->guest, p->len, pc->copy ? "MISSING" : "MINOR|MISSING",
				 strerror(errno));
		goto fail;
	}
	if (!(reg.ioctls & (1ull << (pc->copy ? _UFFDIO_COPY : _UFFDIO_CONTINUE)))) {
		ret = rdmig__err(-EOPNOTSUPP, "post-copy: the kernel offers no %s on G",
				 pc->copy ? "UFFDIO_COPY" : "UFFDIO_CONTINUE");
		goto fail_unreg;
	}
	pc->zero_op =
		(reg.ioctls & (1ull << _UFFDIO_ZEROPAGE)) && !pc->huge ? OP_ZEROPAGE : OP_COPY_ZERO;
	if (pc->zero_op == OP_COPY_ZERO) {
		pc->zero = mmap(NULL, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (pc->zero == MAP_FAILED) {
			ret = rdmig__err(-errno, "post-copy: mapping a zero page: %s",
					 strerror(errno));
			goto fail_unreg;
		}
	}

	pc->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pc->stopfd < 0) {
		ret = rdmig__err(-errno, "post-copy: eventfd: %s", strerror(errno));
		goto fail_unreg;
	}
	ret = -pthread_create(&pc->thread, NULL, fault_main, pc);
	if (ret) {
		rdmig__err(ret, "post-copy: starting the fault thread: %s", strerror(-ret));
		goto fail_unreg;
	}
	pthread_setname_np(pc->thread, "rdmig-pcfault");
	pc->thread_started = true;
	*out = pc;
	return 0;

fail_unreg:
	ioctl(pc->uffd, UFFDIO_UNREGISTER, &reg.range);
fail:
	if (pc->stopfd >= 0)
		close(pc->stopfd);
	if (pc->uffd >= 0)
		close(pc->uffd);
	if (pc->r != MAP_FAILED)
		munmap(pc->r, p->len);
	if (pc->zero != MAP_FAILED)
		munmap(pc->zero, ps);
	free(pc->runs);
	free(pc->outstanding);
	pthread_cond_destroy(&pc->idle);
	pthread_mutex_destroy(&pc->lock);
	free(pc);
	return ret;
}

void *rdmig__pc_recv_base(const struct rdmig__pc *pc)
{
	return pc->r;
}

uint32_t rdmig__pc_page_size(const struct rdmig__pc *pc)
{
	return pc->ps;
}

uint64_t rdmig__pc_npages(const struct rdmig__pc *pc)
{
	return pc->npages;
}

bool rdmig__pc_is_copy(const struct rdmig__pc *pc)
{
	return pc->copy;
}

/* --- arm, arrived, fail ------------------------------------------------------------- */

int rdmig__pc_arm(struct rdmig__pc *pc, const uint64_t *outstanding)
{
	uint64_t words = (pc->npages + 63) / 64, pos = 0;
	struct rdmig__range run;
	int ret = 0;

	pthread_mutex_lock(&pc->lock);
	if (pc->failed) {
		ret = rdmig__err(-ECANCELED, "post-copy: the region failed");
		goto out;
	}
	if (pc->armed) {
		ret = rdmig__err(-EALREADY, "post-copy: the region is armed already");
		goto out;
	}
	/*
	 * Outstanding from now on: no fault installs these pages any more.
	 * Then wait for installs under way (pre-arm faults), so that the
	 * MADV_DONTNEED below is the last word on G.
	 */
	memcpy(pc->outstanding, outstanding, words * sizeof(uint64_t));
	if (pc->npages % 64)
		pc->outstanding[words - 1] &= (1ull << (pc->npages % 64)) - 1;
	pc->armed = true;
	while (pc->installing)
		pthread_cond_wait(&pc->idle, &pc->lock);
	while (rdmig__bitmap_next_run(pc->outstanding, &pos, pc->npages, &run)) {
		if (madvise(pc->g + run.first * pc->ps, run.count * pc->ps, MADV_DONTNEED)) {
			ret = rdmig__err(-errno,
					 "post-copy: dropping pages %" PRIu64 "+%" PRIu64
					 " from G: %s",
					 run.first, run.count, strerror(errno));
			fail_locked(pc, ret);
			goto out;
		}
		for (uint64_t i = run.first; i < run.first + run.count; i++) {
			bit_clear(pc->claimed, i);
			bit_clear(pc->installed, i);
		}
		pc->left += run.count;
	}
out:
	pthread_mutex_unlock(&pc->lock);
	return ret;
}

int rdmig__pc_arrived(struct rdmig__pc *pc, uint64_t first, uint64_t count)
{
	struct install_result res;
	uint64_t asked = 0;
	int ret;

	if (!count)
		return 0;
	if (first >= pc->npages || count > pc->npages - first)
		return rdmig__err(-EINVAL,
				  "post-copy: pages %" PRIu64 "+%" PRIu64 " are outside the region "
				  "(%" PRIu64 " pages)",
				  first, count, pc->npages);
	pthread_mutex_lock(&pc->lock);
	if (pc->failed) {
		pthread_mutex_unlock(&pc->lock);
		return rdmig__err(-ECANCELED, "post-copy: the region failed");
	}
	for (uint64_t i = first; i < first + count; i++) {
		if (pc->armed && bit(pc->outstanding, i) && !bit(pc->arrived, i)) {
			asked += bit(pc->requested, i);
			continue;
		}
		/*
		 * A second WRITE of a page may already have overwritten what
		 * the guest wrote since its install (pitfall 3): not ours to
		 * repair, but never to be let through quietly either.
		 */
		ret = rdmig__err(-EPROTO, "post-copy: page %" PRIu64 " reported arrived but it %s",
				 i,
				 !pc->armed		    ? "is not armed yet"
				 : !bit(pc->outstanding, i) ? "was not outstanding"
							    : "arrived before");
		fail_locked(pc, ret);
		pthread_mutex_unlock(&pc->lock);
		return ret;
	}
	/* Outstanding pages not arrived are never claimed: these are ours alone. */
	bits_set(pc->arrived, first, count);
	bits_set(pc->claimed, first, count);
	pc->st.pages_arrived += count;
	pc->st.pages_arrived_requested += asked;
	pc->installing++;
	pthread_mutex_unlock(&pc->lock);

	ret = install_run(pc, first, count, false, &res);

	pthread_mutex_lock(&pc->lock);
	install_done(pc, first, &res, false, ret);
	pthread_mutex_unlock(&pc->lock);
	return ret;
}

/* Under the lock: the next run of held pages not claimed, in [*pos, npages), at most max. */
static bool next_held(struct rdmig__pc *pc, uint64_t *pos, uint64_t max, struct rdmig__range *run)
{
	uint64_t p = *pos;

	while (p < pc->npages && (bit(pc->outstanding, p) || bit(pc->claimed, p))) {
		if (p % 64 == 0 && p + 64 <= pc->npages &&
		    (pc->outstanding[p / 64] | pc->claimed[p / 64]) == ~0ull)
			p += 64;
		else
			p++;
	}
	if (p >= pc->npages) {
		*pos = p;
		return false;
	}
	run->first = p;
	while (p < pc->npages && p - run->first < max && !bit(pc->outstanding, p) &&
	       !bit(pc->claimed, p))
		p++;
	run->count = p - run->first;
	*pos = p;
	return true;
}

int rdmig__pc_install_held(struct rdmig__pc *pc)
{
	struct rdmig__range run;
	uint64_t pos = 0;
	int ret = 0;

	pthread_mutex_lock(&pc->lock);
	if (!pc->armed) {
		pthread_mutex_unlock(&pc->lock);
		return rdmig__err(-EINVAL, "post-copy: install_held before arm");
	}
	while (!pc->failed && next_held(pc, &pos, HELD_CHUNK, &run)) {
		struct install_result res;

		bits_set(pc->claimed, run.first, run.count);
		pc->installing++;
		pthread_mutex_unlock(&pc->lock);
		ret = install_run(pc, run.first, run.count, true, &res);
		pthread_mutex_lock(&pc->lock);
		install_done(pc, run.first, &res, true, ret);
		if (ret)
			break;
	}
	if (!ret && pc->failed)
		ret = rdmig__err(-ECANCELED, "post-copy: the region failed");
	pthread_mutex_unlock(&pc->lock);
	return ret;
}

uint64_t rdmig__pc_outstanding(struct rdmig__pc *pc)
{
	uint64_t n;

	pthread_mutex_lock(&pc->lock);
	n = pc->left;
	pthread_mutex_unlock(&pc->lock);
	return n;
}

void rdmig__pc_fail(struct rdmig__pc *pc, int err)
{
	pthread_mutex_lock(&pc->lock);
	fail_locked(pc, err);
	while (pc->installing)
		pthread_cond_wait(&pc->idle, &pc->lock);
	pthread_mutex_unlock(&pc->lock);
}

void rdmig__pc_stats(struct rdmig__pc *pc, struct rdmig__pc_stats *st)
{
	pthread_mutex_lock(&pc->lock);
	*st = pc->st;
	st->npages = pc->npages;
	st->outstanding = pc->left;
	st->latency_p50_ns = hist_quantile(pc, 500);
	st->latency_p99_ns = hist_quantile(pc, 990);
	pthread_mutex_unlock(&pc->lock);
}

void rdmig__pc_close(struct rdmig__pc *pc)
{
	struct uffdio_range range;
	uint64_t one = 1;

	if (!pc)
		return;
	if (pc->thread_started) {
		if (write(pc->stopfd, &one, sizeof(one)) != sizeof(one))
			rdmig__log(RDMIG__LOG_WARN, "post-copy: waking the fault thread: %s",
				   strerror(errno));
		pthread_join(pc->thread, NULL);
	}
	/* The fault thread is gone; other callers are done (uffd.h): no lock needed. */
	if (pc->armed && pc->left) {
		/*
		 * Unregistering wakes every blocked thread, and G would then
		 * show R's zeros where pages never came: make G fault loudly.
		 */
		rdmig__log(RDMIG__LOG_WARN,
			   "post-copy: closing with %" PRIu64 " pages outstanding: G made "
			   "inaccessible",
			   pc->left);
		if (mprotect(pc->g, pc->len, PROT_NONE))
			rdmig__log(RDMIG__LOG_ERR, "post-copy: mprotect G: %s", strerror(errno));
	}
	range = (struct uffdio_range){ (uint64_t)(uintptr_t)pc->g, pc->len };
	if (ioctl(pc->uffd, UFFDIO_UNREGISTER, &range))
		rdmig__log(RDMIG__LOG_WARN, "post-copy: UFFDIO_UNREGISTER: %s", strerror(errno));
	close(pc->uffd);
	close(pc->stopfd);
	munmap(pc->r, pc->len);
	if (pc->zero != MAP_FAILED)
		munmap(pc->zero, pc->ps);
	free(pc->runs);
	free(pc->outstanding);
	pthread_cond_destroy(&pc->idle);
	pthread_mutex_destroy(&pc->lock);
	free(pc);
}
