/* SPDX-License-Identifier: MIT */
/*
 * The kernel's dirty log for rdmig-perf: soft-dirty bits or PAGEMAP_SCAN
 * over userfaultfd write protection. See dirtylog.h.
 */
#define _GNU_SOURCE
#include "dirtylog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>

/*
 * The uapi of Linux 6.7 (include/uapi/linux/fs.h, userfaultfd.h), for
 * headers older than the kernel we run on (Debian 12's are 6.1): the kernel
 * decides at run time whether it has them.
 */
#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start;
	__u64 end; /* exclusive */
	__u64 categories;
};

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end; /* where the walk stopped (the output filled up) */
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN	      _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN	      (1 << 1)
#define PM_SCAN_WP_MATCHING   (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define PM_SOFT_DIRTY (1ull << 55) /* Documentation/admin-guide/mm/pagemap.rst */
#define BUF_BYTES     (256 * 1024)

static const char *const names[] = { "writer", "soft-dirty", "pagemap-scan", "auto" };

const char *dirtylog_name(enum dirtylog_method m)
{
	return (unsigned)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

int dirtylog_parse(const char *s, enum dirtylog_method *m)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(s, names[i])) {
			*m = (enum dirtylog_method)i;
			return 0;
		}
	return -1;
}

int dirtylog_mmap_flags(enum dirtylog_method m)
{
	return m == DIRTYLOG_SOFT_DIRTY ? MAP_SHARED : MAP_PRIVATE;
}

bool dirtylog_atomic(const struct dirtylog *d)
{
	return d->method == DIRTYLOG_PAGEMAP_SCAN;
}

static int say(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Puts the reason in err and returns ret (a negative errno). */
static int say(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sets bits [first, first + count) of a KVM-layout bitmap. */
static void set_bits(uint64_t *bm, uint64_t first, uint64_t count)
{
	while (count) {
		unsigned shift = (unsigned)(first % 64);
		uint64_t take = 64 - shift < count ? 64 - shift : count;
		uint64_t mask = take == 64 ? ~0ull : ((1ull << take) - 1) << shift;

		bm[first / 64] |= mask;
		first += take;
		count -= take;
	}
}

void dirtylog_close(struct dirtylog *d)
{
	if (d->uffd >= 0) {
		/* Unregistering also lifts the protection that is left. */
		for (unsigned i = 0; i < d->n; i++) {
			struct uffdio_range r = { (uintptr_t)d->r[i].hva, d->r[i].len };

			ioctl(d->uffd, UFFDIO_UNREGISTER, &r);
		}
		close(d->uffd);
	}
	if (d->pagemap >= 0)
		close(d->pagemap);
	if (d->clear_refs >= 0)
		close(d->clear_refs);
	free(d->buf);
	d->uffd = d->pagemap = d->clear_refs = -1;
	d->buf = NULL;
}

/* "4" to clear_refs: every soft-dirty bit of the process cleared. */
static int soft_dirty_clear(struct dirtylog *d, char *err, size_t errlen)
{
	if (pwrite(d->clear_refs, "4", 1, 0) != 1)
		return say(err, errlen, -errno,
			   "soft-dirty: writing 4 to /proc/self/clear_refs: %s", strerror(errno));
	return 0;
}

static int soft_dirty_open(struct dirtylog *d, char *err, size_t errlen)
{
	if ((d->clear_refs = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC)) < 0)
		return say(err, errlen, errno == ENOENT ? -ENOTSUP : -errno,
			   "soft-dirty: /proc/self/clear_refs: %s", strerror(errno));
	return soft_dirty_clear(d, err, errlen);
}

static int soft_dirty_sync(struct dirtylog *d, uint64_t *const *bitmap, uint64_t *found, char *err,
			   size_t errlen)
{
	size_t cap = d->buf_bytes / sizeof(uint64_t);

	for (unsigned i = 0; i < d->n; i++) {
		uint64_t pages = d->r[i].len / DIRTYLOG_PAGE;
		off_t base = (off_t)((uintptr_t)d->r[i].hva / DIRTYLOG_PAGE * sizeof(uint64_t));

		for (uint64_t p = 0; p < pages;) {
			size_t want = pages - p < cap ? (size_t)(pages - p) : cap;
			ssize_t got = pread(d->pagemap, d->buf, want * sizeof(uint64_t),
					    base + (off_t)(p * sizeof(uint64_t)));

			if (got <= 0 || got % (ssize_t)sizeof(uint64_t))
				return say(err, errlen, got < 0 ? -errno : -EIO,
					   "soft-dirty: reading /proc/self/pagemap: %s",
					   got < 0 ? strerror(errno) : "short read");
			for (size_t k = 0; k < (size_t)got / sizeof(uint64_t); k++, p++)
				if (d->buf[k] & PM_SOFT_DIRTY) {
					bitmap[i][p / 64] |= 1ull << (p % 64);
					(*found)++;
				}
		}
	}
	return soft_dirty_clear(d, err, errlen);
}

static int uffd_create(void)
{
	/* User-mode-only needs no privilege (vm.unprivileged_userfaultfd=0
	 * refuses the rest to users without CAP_SYS_PTRACE), and asynchronous
	 * write protection never delivers a fault, kernel-mode or not. */
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	if (fd < 0 && errno == EINVAL) /* kernels before 5.11 */
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	return fd;
}

static int pagemap_scan_open(struct dirtylog *d, char *err, size_t errlen)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	struct pm_scan_arg probe = { .size = sizeof(probe) };

	if ((d->uffd = uffd_create()) < 0)
		return say(err, errlen, errno == ENOSYS ? -ENOTSUP : -errno,
			   "pagemap-scan: userfaultfd: %s", strerror(errno));
	/* WP_UNPOPULATED: a page never touched is protected too (a marker in
	 * its empty pte), so its first store is reported like any other. */
	if (ioctl(d->uffd, UFFDIO_API, &api) < 0)
		return say(err, errlen, errno == EINVAL ? -ENOTSUP : -errno,
			   "pagemap-scan: UFFDIO_API with UFFD_FEATURE_WP_ASYNC: %s (Linux 6.7 "
			   "or later has it)",
			   strerror(errno));
	/* An empty scan: ENOTTY where pagemap has no ioctl (before 6.7). */
	if (ioctl(d->pagemap, PAGEMAP_SCAN, &probe) < 0)
		return say(err, errlen, errno == ENOTTY || errno == EINVAL ? -ENOTSUP : -errno,
			   "pagemap-scan: PAGEMAP_SCAN: %s", strerror(errno));
	for (unsigned i = 0; i < d->n; i++) {
		struct uffdio_register reg = {
			.range = { (uintptr_t)d->r[i].hva, d->r[i].len },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};
		struct uffdio_writeprotect wp = {
			.range = reg.range,
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};

		if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) < 0)
			return say(err, errlen, -errno,
				   "pagemap-scan: UFFDIO_REGISTER (write-protect) of %p+%#" PRIx64
				   ": %s",
				   (void *)d->r[i].hva, d->r[i].len, strerror(errno));
		if (ioctl(d->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
			return say(err, errlen, -errno,
				   "pagemap-scan: UFFDIO_WRITEPROTECT of %p+%#" PRIx64 ": %s",
				   (void *)d->r[i].hva, d->r[i].len, strerror(errno));
	}
	return 0;
}

/*
 * One walk per range, more when the output fills: the pages written since
 * they were last protected, protected again by the same walk.
 * PM_SCAN_CHECK_WPASYNC makes a range that lost its registration an error
 * rather than a range that seems clean.
 */
static int pagemap_scan_sync(struct dirtylog *d, uint64_t *const *bitmap, uint64_t *found,
			     char *err, size_t errlen)
{
	struct page_region *vec = (struct page_region *)d->buf;
	uint64_t cap = d->buf_bytes / sizeof(*vec);

	for (unsigned i = 0; i < d->n; i++) {
		uint64_t base = (uintptr_t)d->r[i].hva, end = base + d->r[i].len, cur = base;

		while (cur < end) {
			struct pm_scan_arg a = {
				.size = sizeof(a),
				.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				.start = cur,
				.end = end,
				.vec = (uintptr_t)vec,
				.vec_len = cap,
				.category_mask = PAGE_IS_WRITTEN,
				.return_mask = PAGE_IS_WRITTEN,
			};
			long n = ioctl(d->pagemap, PAGEMAP_SCAN, &a);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return say(err, errlen, -errno,
					   "pagemap-scan: PAGEMAP_SCAN over %#" PRIx64 "-%#" PRIx64
					   ": %s",
					   cur, end, strerror(errno));
			for (long k = 0; k < n; k++) {
				if (vec[k].start < cur || vec[k].end > end ||
				    vec[k].end <= vec[k].start)
					return say(err, errlen, -EIO,
						   "pagemap-scan: a region %#llx-%#llx outside "
						   "the scan %#" PRIx64 "-%#" PRIx64,
						   (unsigned long long)vec[k].start,
						   (unsigned long long)vec[k].end, cur, end);
				set_bits(bitmap[i], (vec[k].start - base) / DIRTYLOG_PAGE,
					 (vec[k].end - vec[k].start) / DIRTYLOG_PAGE);
				*found += (vec[k].end - vec[k].start) / DIRTYLOG_PAGE;
			}
			if (a.walk_end <= cur)
				return say(err, errlen, -EIO,
					   "pagemap-scan: the walk made no progress at %#" PRIx64,
					   cur);
			cur = a.walk_end;
		}
	}
	return 0;
}

int dirtylog_sync(struct dirtylog *d, uint64_t *const *bitmap, uint64_t *found, char *err,
		  size_t errlen)
{
	uint64_t t0 = now_ns(), n = 0;
	int ret;

	if (d->method == DIRTYLOG_SOFT_DIRTY)
		ret = soft_dirty_sync(d, bitmap, &n, err, errlen);
	else if (d->method == DIRTYLOG_PAGEMAP_SCAN)
		ret = pagemap_scan_sync(d, bitmap, &n, err, errlen);
	else
		ret = say(err, errlen, -EINVAL, "%s: not a kernel dirty log",
			  dirtylog_name(d->method));
	d->sync_ns += now_ns() - t0;
	d->syncs++;
	for (unsigned i = 0; i < d->n; i++)
		d->scanned_bytes += d->r[i].len;
	d->dirty_pages += n;
	if (found)
		*found = n;
	return ret;
}

static int open_method(struct dirtylog *d, enum dirtylog_method m, unsigned n,
		       const struct dirtylog_range *r, char *err, size_t errlen)
{
	int ret;

	memset(d, 0, sizeof(*d));
	d->uffd = d->pagemap = d->clear_refs = -1;
	d->method = m;
	if (m != DIRTYLOG_SOFT_DIRTY && m != DIRTYLOG_PAGEMAP_SCAN)
		return say(err, errlen, -EINVAL, "%s: not a kernel dirty log", dirtylog_name(m));
	if (!n || n > DIRTYLOG_MAX_RANGES)
		return say(err, errlen, -EINVAL, "%u ranges: 1 to %u", n, DIRTYLOG_MAX_RANGES);
	for (unsigned i = 0; i < n; i++) {
		if ((uintptr_t)r[i].hva % DIRTYLOG_PAGE || !r[i].len || r[i].len % DIRTYLOG_PAGE)
			return say(err, errlen, -EINVAL,
				   "range %u (%p+%#" PRIx64 ") not whole pages", i,
				   (void *)r[i].hva, r[i].len);
		d->r[i] = r[i];
	}
	d->n = n;
	d->buf_bytes = BUF_BYTES;
	if (!(d->buf = malloc(d->buf_bytes)))
		return say(err, errlen, -ENOMEM, "out of memory");
	if ((d->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0)
		return say(err, errlen, -errno, "/proc/self/pagemap: %s", strerror(errno));
	ret = m == DIRTYLOG_SOFT_DIRTY ? soft_dirty_open(d, err, errlen)
				       : pagemap_scan_open(d, err, errlen);
	return ret;
}

/*
 * Whether method m works here, tried on a scratch mapping: two pages
 * written (one with the bytes it held) must be reported, exactly, and a
 * second sync must report none. A kernel built without CONFIG_MEM_SOFT_DIRTY
 * still takes "4" in clear_refs; only this shows that it never sets a bit.
 */
static int trial(enum dirtylog_method m, char *err, size_t errlen)
{
	enum {
		PAGES = 8
	};
	uint64_t bm = 0, found = 0, *bmp = &bm;
	struct dirtylog d;
	struct dirtylog_range r;
	uint8_t *p = mmap(NULL, PAGES * DIRTYLOG_PAGE, PROT_READ | PROT_WRITE,
			  dirtylog_mmap_flags(m) | MAP_ANONYMOUS, -1, 0);
	int ret;

	if (p == MAP_FAILED)
		return say(err, errlen, -errno, "mmap: %s", strerror(errno));
	for (unsigned i = 0; i < PAGES; i++)
		p[i * DIRTYLOG_PAGE] = (uint8_t)(i + 1);
	r.hva = p;
	r.len = PAGES * DIRTYLOG_PAGE;
	if (!(ret = open_method(&d, m, 1, &r, err, errlen))) {
		p[1 * DIRTYLOG_PAGE + 9] = 7;
		*(volatile uint8_t *)&p[5 * DIRTYLOG_PAGE] =
			*(volatile uint8_t *)&p[5 * DIRTYLOG_PAGE];
		ret = dirtylog_sync(&d, &bmp, &found, err, errlen);
		/* Only a soft-dirty log that never reports is a kernel without
		 * it; any other wrong answer is a broken log (-EIO), never a
		 * reason to skip it. */
		if (!ret && bm != ((1ull << 1) | (1ull << 5)))
			ret = say(err, errlen, m == DIRTYLOG_SOFT_DIRTY && !bm ? -ENOTSUP : -EIO,
				  "%s: pages 1 and 5 of 8 written, the kernel reported %#" PRIx64
				  "%s",
				  dirtylog_name(m), bm,
				  m == DIRTYLOG_SOFT_DIRTY && !bm
					  ? " (no soft-dirty: CONFIG_MEM_SOFT_DIRTY unset?)"
					  : "");
		bm = 0;
		if (!ret && !(ret = dirtylog_sync(&d, &bmp, &found, err, errlen)) && bm)
			ret = say(err, errlen, -EIO,
				  "%s: nothing written since the last sync, the kernel reported "
				  "%#" PRIx64,
				  dirtylog_name(m), bm);
	}
	dirtylog_close(&d);
	munmap(p, PAGES * DIRTYLOG_PAGE);
	return ret;
}

int dirtylog_probe(enum dirtylog_method m, enum dirtylog_method *got, char *err, size_t errlen)
{
	char why[256];
	int ret;

	if (m != DIRTYLOG_AUTO) {
		if (!(ret = trial(m, err, errlen)))
			*got = m;
		return ret;
	}
	if (!(ret = trial(DIRTYLOG_PAGEMAP_SCAN, why, sizeof(why)))) {
		*got = DIRTYLOG_PAGEMAP_SCAN;
		return 0;
	}
	if (!(ret = trial(DIRTYLOG_SOFT_DIRTY, err, errlen))) {
		*got = DIRTYLOG_SOFT_DIRTY;
		return 0;
	}
	if (err) {
		size_t l = strlen(err);

		if (l + 3 < errlen)
			snprintf(err + l, errlen - l, "; %s", why);
	}
	return ret;
}

int dirtylog_open(struct dirtylog *d, enum dirtylog_method m, unsigned n,
		  const struct dirtylog_range *r, char *err, size_t errlen)
{
	int ret;

	if ((ret = dirtylog_probe(m, &m, err, errlen))) {
		memset(d, 0, sizeof(*d));
		d->uffd = d->pagemap = d->clear_refs = -1;
		return ret;
	}
	if ((ret = open_method(d, m, n, r, err, errlen)))
		dirtylog_close(d);
	return ret;
}
