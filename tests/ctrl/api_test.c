/* SPDX-License-Identifier: MIT */
/*
 * Tests of the public API where it works without an RDMA device (ctrl/src.c,
 * ctrl/dst.c, ctrl/region.c): region declaration and its checks on both
 * sides, NULL handles, calls in the wrong state, and rdmig_last_error()
 * after each failure and success. Nothing here connects or listens, so no
 * memory is registered; guest memory is plain mmap'd pages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rdmig/rdmig.h>

#include "common/util.h"

#define PAGE	  4096ull
#define MEM_PAGES (RDMIG__MAX_REGIONS + 8)

#define assert_contains(s, sub)                                            \
	do {                                                               \
		const char *s_ = (s);                                      \
		if (!strstr(s_, (sub)))                                    \
			fail_msg("'%s' does not contain '%s'", s_, (sub)); \
	} while (0)

/* Either side, so that each region test runs against both. */
struct side {
	bool is_dst;
	struct rdmig_src *src;
	struct rdmig_dst *dst;
	uint8_t *mem; /* MEM_PAGES pages */
};

static struct side src_side = { .is_dst = false };
static struct side dst_side = { .is_dst = true };

static int side_setup(void **state)
{
	struct side *s = *state;
	int ret;

	s->mem = mmap(NULL, MEM_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (s->mem == MAP_FAILED)
		return -1;
	ret = s->is_dst ? rdmig_dst_create(NULL, &s->dst) : rdmig_src_create(NULL, &s->src);
	return ret ? -1 : 0;
}

static int side_teardown(void **state)
{
	struct side *s = *state;

	rdmig_src_destroy(s->src);
	rdmig_dst_destroy(s->dst);
	s->src = NULL;
	s->dst = NULL;
	return munmap(s->mem, MEM_PAGES * PAGE);
}

static int add(struct side *s, uint64_t gpa, void *hva, uint64_t len)
{
	if (s->is_dst)
		return rdmig_dst_add_region(s->dst, gpa, hva, len, 0);
	return rdmig_src_add_region(s->src, gpa, hva, len);
}

static void *page(struct side *s, uint64_t i)
{
	return s->mem + i * PAGE;
}

/* Expects `ret` to be `code` and the last error to contain `needle`. */
static void check_fail(int ret, int code, const char *needle, int line)
{
	if (ret != code)
		fail_msg("line %d: returned %d, expected %d (%s)", line, ret, code,
			 rdmig_last_error());
	if (!strstr(rdmig_last_error(), needle))
		fail_msg("line %d: '%s' does not contain '%s'", line, rdmig_last_error(), needle);
}

#define EXPECT_FAIL(call, code, needle) check_fail((call), (code), (needle), __LINE__)

/* --- regions, both sides -------------------------------------------------- */

static void add_region_first_regions_return_indices(void **state)
{
	struct side *s = *state;

	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	assert_string_equal(rdmig_last_error(), "");
	assert_int_equal(add(s, 16 * PAGE, page(s, 1), 4 * PAGE), 1);
	assert_int_equal(add(s, 1ull << 40, page(s, 5), 2 * PAGE), 2);
	assert_int_equal(add(s, 8 * PAGE, page(s, 7), PAGE), 3);
}

static void add_region_null_hva_einval(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(add(s, 0, NULL, PAGE), -EINVAL, "hva");
}

static void add_region_zero_length_einval(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(add(s, 0, page(s, 0), 0), -EINVAL, "length");
}

static void add_region_misaligned_einval(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(add(s, 1, page(s, 0), PAGE), -EINVAL, "aligned");
	EXPECT_FAIL(add(s, PAGE / 2, page(s, 0), PAGE), -EINVAL, "aligned");
	EXPECT_FAIL(add(s, PAGE * 3 + 8, page(s, 0), PAGE), -EINVAL, "aligned");
	EXPECT_FAIL(add(s, 0, s->mem + 1, PAGE), -EINVAL, "aligned");
	EXPECT_FAIL(add(s, 0, s->mem + PAGE - 8, PAGE), -EINVAL, "aligned");
	EXPECT_FAIL(add(s, 0, page(s, 0), 1), -EINVAL, "aligned");
	EXPECT_FAIL(add(s, 0, page(s, 0), PAGE + 512), -EINVAL, "aligned");
	/* nothing was added */
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
}

/* Alignment is to the configured page size, not the host's. */
static void add_region_misaligned_to_configured_page_size_einval(void **state)
{
	struct side *s = *state;
	struct side t = { .is_dst = s->is_dst };
	struct rdmig_opts o;
	uint8_t *mem = (uint8_t *)(((uintptr_t)s->mem + 0xffff) & ~(uintptr_t)0xffff);
	int ret;

	rdmig_opts_init(&o);
	o.page_size = 16384;
	if (t.is_dst)
		assert_int_equal(rdmig_dst_create(&o, &t.dst), 0);
	else
		assert_int_equal(rdmig_src_create(&o, &t.src), 0);
	EXPECT_FAIL(add(&t, PAGE, mem, 16384), -EINVAL, "16384");
	EXPECT_FAIL(add(&t, 0, mem + PAGE, 16384), -EINVAL, "16384");
	EXPECT_FAIL(add(&t, 0, mem, PAGE), -EINVAL, "16384");
	ret = add(&t, 16384, mem, 2 * 16384);
	rdmig_src_destroy(t.src);
	rdmig_dst_destroy(t.dst);
	assert_int_equal(ret, 0);
}

static void add_region_overlapping_gpa_einval(void **state)
{
	struct side *s = *state;

	/* region 0: gpa [16, 24) pages */
	assert_int_equal(add(s, 16 * PAGE, page(s, 0), 8 * PAGE), 0);
	/* identical, inside, straddling the start, straddling the end, swallowing */
	EXPECT_FAIL(add(s, 16 * PAGE, page(s, 10), 8 * PAGE), -EINVAL, "overlaps region 0");
	EXPECT_FAIL(add(s, 18 * PAGE, page(s, 10), 2 * PAGE), -EINVAL, "overlaps region 0");
	EXPECT_FAIL(add(s, 12 * PAGE, page(s, 10), 5 * PAGE), -EINVAL, "overlaps region 0");
	EXPECT_FAIL(add(s, 23 * PAGE, page(s, 10), 4 * PAGE), -EINVAL, "overlaps region 0");
	EXPECT_FAIL(add(s, 0, page(s, 10), 64 * PAGE), -EINVAL, "overlaps region 0");
	/* against a later region, not just the first */
	assert_int_equal(add(s, 100 * PAGE, page(s, 20), PAGE), 1);
	EXPECT_FAIL(add(s, 100 * PAGE, page(s, 30), PAGE), -EINVAL, "overlaps region 1");
}

static void add_region_overlapping_hva_einval(void **state)
{
	struct side *s = *state;

	/* region 0: hva pages [8, 16) */
	assert_int_equal(add(s, 0, page(s, 8), 8 * PAGE), 0);
	EXPECT_FAIL(add(s, 100 * PAGE, page(s, 8), 8 * PAGE), -EINVAL, "memory of region 0");
	EXPECT_FAIL(add(s, 100 * PAGE, page(s, 10), PAGE), -EINVAL, "memory of region 0");
	EXPECT_FAIL(add(s, 100 * PAGE, page(s, 4), 5 * PAGE), -EINVAL, "memory of region 0");
	EXPECT_FAIL(add(s, 100 * PAGE, page(s, 15), 4 * PAGE), -EINVAL, "memory of region 0");
	EXPECT_FAIL(add(s, 100 * PAGE, page(s, 0), 32 * PAGE), -EINVAL, "memory of region 0");
	assert_int_equal(add(s, 200 * PAGE, page(s, 40), 2 * PAGE), 1);
	EXPECT_FAIL(add(s, 100 * PAGE, page(s, 41), PAGE), -EINVAL, "memory of region 1");
}

/* Touching is not overlapping, in either space. */
static void add_region_adjacent_regions_accepted(void **state)
{
	struct side *s = *state;

	assert_int_equal(add(s, 16 * PAGE, page(s, 8), 8 * PAGE), 0);
	assert_int_equal(add(s, 24 * PAGE, page(s, 16), PAGE), 1); /* right after, both */
	assert_int_equal(add(s, 15 * PAGE, page(s, 7), PAGE), 2);  /* right before, both */
	assert_int_equal(add(s, 0, page(s, 17), 15 * PAGE), 3);	   /* up to region 2's gpa */
}

static void add_region_wraparound_einval(void **state)
{
	struct side *s = *state;
	void *top = (void *)(~(uintptr_t)0 & ~(uintptr_t)(PAGE - 1)); /* last page of the space */

	EXPECT_FAIL(add(s, 0xffffffffffffe000ull, page(s, 0), 4 * PAGE), -EINVAL, "wraps");
	EXPECT_FAIL(add(s, 0xfffffffffffff000ull, page(s, 0), 0xfffffffffffff000ull), -EINVAL,
		    "wraps");
	EXPECT_FAIL(add(s, 0, top, 2 * PAGE), -EINVAL, "wraps");
}

/* RDMIG__MAX_REGIONS regions fit; one more is -ENOSPC and changes nothing. */
static void add_region_too_many_enospc(void **state)
{
	struct side *s = *state;

	for (unsigned i = 0; i < RDMIG__MAX_REGIONS; i++)
		assert_int_equal(add(s, (uint64_t)i * 2 * PAGE, page(s, i), PAGE), (int)i);
	EXPECT_FAIL(add(s, 1ull << 40, page(s, RDMIG__MAX_REGIONS + 1), PAGE), -ENOSPC, "too many");
	EXPECT_FAIL(add(s, 1ull << 41, page(s, RDMIG__MAX_REGIONS + 2), PAGE), -ENOSPC, "too many");
}

/* A refused region leaves no trace: the next one gets the next index. */
static void add_region_failure_changes_nothing(void **state)
{
	struct side *s = *state;

	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(add(s, PAGE, page(s, 1), 0), -EINVAL, "length");
	EXPECT_FAIL(add(s, 0, page(s, 2), PAGE), -EINVAL, "overlaps");
	assert_int_equal(add(s, PAGE, page(s, 1), PAGE), 1);
	/* the refused one was not recorded: its gpa and hva are still free */
	assert_int_equal(add(s, 2 * PAGE, page(s, 2), PAGE), 2);
}

/* A success after a failure clears the message. */
static void add_region_success_clears_last_error(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(add(s, 0, NULL, PAGE), -EINVAL, "hva");
	assert_true(rdmig_last_error()[0] != '\0');
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	assert_string_equal(rdmig_last_error(), "");
}

/* The message carries the values involved. */
static void add_region_error_names_values(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(add(s, 0x123000, page(s, 0), 0), -EINVAL, "0x123000");
	EXPECT_FAIL(add(s, 0x123400, page(s, 0), PAGE), -EINVAL, "4096");
	assert_int_equal(add(s, 0x200000, page(s, 0), PAGE), 0);
	EXPECT_FAIL(add(s, 0x200000, page(s, 1), PAGE), -EINVAL, "0x200000");
}

/* --- source ------------------------------------------------------------------ */

static void src_null_handle_einval(void **state)
{
	uint8_t *mem = *state;

	EXPECT_FAIL(rdmig_src_add_region(NULL, 0, mem, PAGE), -EINVAL, "src");
	EXPECT_FAIL(rdmig_src_connect(NULL, "127.0.0.1", "1"), -EINVAL, "src");
	EXPECT_FAIL(rdmig_src_pass(NULL, NULL, 0, RDMIG_PASS_ALL, NULL), -EINVAL, "src");
	EXPECT_FAIL(rdmig_src_complete(NULL), -EINVAL, "src");
}

static void src_pass_before_connect_enotconn(void **state)
{
	struct side *s = *state;
	uint64_t bm = ~0ull;
	struct rdmig_dirty d = { .bitmap = &bm, .words = 1 };

	EXPECT_FAIL(rdmig_src_pass(s->src, NULL, 0, RDMIG_PASS_ALL, NULL), -ENOTCONN, "connect");
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(rdmig_src_pass(s->src, &d, 1, 0, NULL), -ENOTCONN, "connect");
	EXPECT_FAIL(rdmig_src_pass(s->src, NULL, 0, RDMIG_PASS_ALL, NULL), -ENOTCONN, "connect");
	{
		/* Dirty lists: the same, before any list is looked at. */
		const uint64_t one = 0;
		struct rdmig_dirty_list l = { .pages = &one, .count = 1 };
		struct rdmig_estimate e = { .size = sizeof(e) };
		struct rdmig_budget b = { .size = sizeof(b), .time_ns = 1 };

		EXPECT_FAIL(rdmig_src_pass_list(s->src, &l, 1, 0, NULL), -ENOTCONN, "connect");
		EXPECT_FAIL(rdmig_src_pass_list_budget(s->src, &l, 1, 0, &b, NULL), -ENOTCONN,
			    "connect");
		EXPECT_FAIL(rdmig_src_estimate_list(s->src, &l, 1, &e), -ENOTCONN, "connect");
		EXPECT_FAIL(rdmig_src_pass_list(NULL, &l, 1, 0, NULL), -EINVAL, "src");
	}
	/* and the handle still takes regions: nothing changed */
	assert_int_equal(add(s, PAGE, page(s, 1), PAGE), 1);
}

static void src_complete_before_connect_enotconn(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(rdmig_src_complete(s->src), -ENOTCONN, "connect");
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(rdmig_src_complete(s->src), -ENOTCONN, "connect");
}

/*
 * Passes in slices before connect: -ENOTCONN, and a bad budget changes
 * nothing; progress works in every state (idle, pass 0, no workers).
 */
static void src_slices_and_progress_before_connect(void **state)
{
	struct side *s = *state;
	struct rdmig_budget b = { .size = sizeof(b), .time_ns = 1000 };
	struct rdmig_progress pr = { .size = sizeof(pr) };

	EXPECT_FAIL(rdmig_src_pass_budget(s->src, NULL, 0, RDMIG_PASS_ALL, &b, NULL), -ENOTCONN,
		    "connect");
	EXPECT_FAIL(rdmig_src_pass_resume(s->src, &b, NULL), -ENOTCONN, "connect");
	EXPECT_FAIL(rdmig_src_pass_budget(NULL, NULL, 0, RDMIG_PASS_ALL, &b, NULL), -EINVAL, "src");
	EXPECT_FAIL(rdmig_src_pass_resume(NULL, &b, NULL), -EINVAL, "src");
	memset(&pr, 0xff, sizeof(pr));
	pr.size = sizeof(pr);
	assert_int_equal(rdmig_src_progress(s->src, &pr), 0);
	assert_int_equal(pr.size, sizeof(pr));
	assert_int_equal(pr.pass, 0);
	assert_int_equal(pr.state, RDMIG_PROGRESS_IDLE);
	assert_int_equal(pr.workers, 0);
	assert_int_equal(pr.wire_bytes, 0);
	assert_int_equal(pr.total_wire_bytes, 0);
	/* An older caller's smaller struct: nothing past its size is written. */
	memset(&pr, 0xff, sizeof(pr));
	pr.size = offsetof(struct rdmig_progress, workers);
	assert_int_equal(rdmig_src_progress(s->src, &pr), 0);
	assert_int_equal(pr.state, RDMIG_PROGRESS_IDLE);
	assert_int_equal(pr.workers, UINT32_MAX);
	EXPECT_FAIL(rdmig_src_progress(NULL, &pr), -EINVAL, "src");
	EXPECT_FAIL(rdmig_src_progress(s->src, NULL), -EINVAL, "progress");
	/* and the handle still takes regions: nothing changed */
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
}

/* Checked before anything touches the network or a device. */
static void src_connect_no_regions_einval(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(rdmig_src_connect(s->src, "127.0.0.1", "18515"), -EINVAL, "no regions");
	EXPECT_FAIL(rdmig_src_connect(s->src, NULL, NULL), -EINVAL, "no regions");
	/* still idle: regions can be added */
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
}

/* A missing address is refused before anything needs a device. */
static void src_connect_null_host_or_port_einval(void **state)
{
	struct side *s = *state;

	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(rdmig_src_connect(s->src, NULL, "18515"), -EINVAL, "host");
	EXPECT_FAIL(rdmig_src_connect(s->src, "127.0.0.1", NULL), -EINVAL, "port");
	/* still idle */
	assert_int_equal(add(s, PAGE, page(s, 1), PAGE), 1);
}

/* No key and no explicit choice of an unauthenticated session: refused, idle. */
static void src_connect_without_key_eacces(void **state)
{
	struct side *s = *state;

	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(rdmig_src_connect(s->src, "127.0.0.1", "18515"), -EACCES, "RDMIG_PSK_FILE");
	EXPECT_FAIL(rdmig_src_connect(s->src, "127.0.0.1", "18515"), -EACCES, "no pre-shared key");
	assert_int_equal(add(s, PAGE, page(s, 1), PAGE), 1);
}

/* --- rdmig_src_discard ------------------------------------------------------ */

/* Each bad range is refused, naming its values; the handle goes on. */
static void src_discard_bad_input_einval_names_values(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(rdmig_src_discard(NULL, 0, 0, PAGE), -EINVAL, "src is NULL");
	EXPECT_FAIL(rdmig_src_discard(s->src, 0, 0, PAGE), -EINVAL, "region 0 does not exist (0");
	assert_int_equal(add(s, 0, page(s, 0), 4 * PAGE), 0);
	assert_int_equal(add(s, 16 * PAGE, page(s, 4), 2 * PAGE), 1);
	EXPECT_FAIL(rdmig_src_discard(s->src, 2, 0, PAGE), -EINVAL, "region 2 does not exist (2");
	EXPECT_FAIL(rdmig_src_discard(s->src, 7, 0, PAGE), -EINVAL, "region 7");
	EXPECT_FAIL(rdmig_src_discard(s->src, 0, 0x800, PAGE), -EINVAL, "offset 0x800");
	EXPECT_FAIL(rdmig_src_discard(s->src, 0, PAGE, 0x1800), -EINVAL, "length 0x1800");
	EXPECT_FAIL(rdmig_src_discard(s->src, 0, PAGE, 0), -EINVAL, "length 0x0");
	EXPECT_FAIL(rdmig_src_discard(s->src, 0, 0, 5 * PAGE), -EINVAL, "past the region (0x4000");
	EXPECT_FAIL(rdmig_src_discard(s->src, 1, 2 * PAGE, PAGE), -EINVAL, "offset 0x2000");
	/* No wrap-around: offset + length overflows 64 bits. */
	EXPECT_FAIL(rdmig_src_discard(s->src, 1, PAGE, UINT64_MAX - PAGE + 1), -EINVAL,
		    "past the region (0x2000");
	/* Nothing was harmed: good ranges are taken, before connect too. */
	assert_int_equal(rdmig_src_discard(s->src, 0, 0, 4 * PAGE), 0);
	assert_string_equal(rdmig_last_error(), "");
	assert_int_equal(rdmig_src_discard(s->src, 1, PAGE, PAGE), 0);
	assert_int_equal(add(s, 32 * PAGE, page(s, 6), PAGE), 2);
}

/* The page size is the configured one, not 4 KiB. */
static void src_discard_misaligned_to_configured_page_size_einval(void **state)
{
	struct rdmig_opts o;
	struct rdmig_src *src;
	uint8_t *map, *mem;

	(void)state;
	rdmig_opts_init(&o);
	o.page_size = 4 * PAGE;
	map = mmap(NULL, 12 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	mem = (uint8_t *)(((uintptr_t)map + 4 * PAGE - 1) & ~(uintptr_t)(4 * PAGE - 1));
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	assert_int_equal(rdmig_src_add_region(src, 0, mem, 8 * PAGE), 0);
	EXPECT_FAIL(rdmig_src_discard(src, 0, PAGE, 4 * PAGE), -EINVAL, "page size (16384)");
	EXPECT_FAIL(rdmig_src_discard(src, 0, 0, PAGE), -EINVAL, "length 0x1000");
	assert_int_equal(rdmig_src_discard(src, 0, 4 * PAGE, 4 * PAGE), 0);
	rdmig_src_destroy(src);
	munmap(map, 12 * PAGE);
}

/* A balloon thread may call it while the owner adds regions. */
struct discard_race {
	struct rdmig_src *src;
	atomic_int stop;
	atomic_long calls, taken; /* calls made; calls that recorded a discard */
};

static void *discard_thread(void *arg)
{
	struct discard_race *r = arg;

	while (!atomic_load(&r->stop)) {
		int ret = rdmig_src_discard(r->src, 0, 0, PAGE);

		if (ret && ret != -EINVAL)
			return (void *)1; /* only "no region 0 yet" may fail */
		atomic_fetch_add(&r->calls, 1);
		if (!ret)
			atomic_fetch_add(&r->taken, 1);
	}
	return NULL;
}

static void src_discard_other_thread_while_adding_regions(void **state)
{
	struct side *s = *state;
	struct discard_race r = { .src = s->src };
	pthread_t t;
	void *res;

	assert_int_equal(pthread_create(&t, NULL, discard_thread, &r), 0);
	while (!atomic_load(&r.calls))
		sched_yield();
	for (unsigned i = 0; i < RDMIG__MAX_REGIONS; i++)
		assert_int_equal(add(s, i * 2 * PAGE, page(s, i), PAGE), (int)i);
	while (atomic_load(&r.taken) < 100)
		sched_yield();
	atomic_store(&r.stop, 1);
	pthread_join(t, &res);
	assert_null(res);
}

/* --- destination ------------------------------------------------------------- */

static void dst_listen_without_key_eacces(void **state)
{
	struct side *s = *state;

	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(rdmig_dst_listen(s->dst, "127.0.0.1", "0"), -EACCES, "RDMIG_AUTH=none");
	/* not listening: regions can still be added, run still refuses */
	assert_int_equal(add(s, PAGE, page(s, 1), PAGE), 1);
	EXPECT_FAIL(rdmig_dst_run(s->dst, NULL), -ENOTCONN, "listen");
}

static void dst_null_handle_einval(void **state)
{
	uint8_t *mem = *state;

	EXPECT_FAIL(rdmig_dst_add_region(NULL, 0, mem, PAGE, 0), -EINVAL, "dst");
	EXPECT_FAIL(rdmig_dst_listen(NULL, "127.0.0.1", "0"), -EINVAL, "dst");
	EXPECT_FAIL(rdmig_dst_run(NULL, NULL), -EINVAL, "dst");
}

static void dst_add_region_unknown_flags_einval(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(rdmig_dst_add_region(s->dst, 0, page(s, 0), PAGE, 1u << 1), -EINVAL, "flags");
	EXPECT_FAIL(rdmig_dst_add_region(s->dst, 0, page(s, 0), PAGE,
					 RDMIG_REGION_ZERO_FILLED | 1u << 31),
		    -EINVAL, "0x80000000");
	assert_int_equal(
		rdmig_dst_add_region(s->dst, 0, page(s, 0), PAGE, RDMIG_REGION_ZERO_FILLED), 0);
	assert_int_equal(rdmig_dst_add_region(s->dst, PAGE, page(s, 1), PAGE, 0), 1);
}

static void dst_listen_no_regions_einval(void **state)
{
	struct side *s = *state;

	EXPECT_FAIL(rdmig_dst_listen(s->dst, "127.0.0.1", "0"), -EINVAL, "no regions");
	EXPECT_FAIL(rdmig_dst_listen(s->dst, NULL, NULL), -EINVAL, "no regions");
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
}

static void dst_listen_null_port_einval(void **state)
{
	struct side *s = *state;

	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(rdmig_dst_listen(s->dst, "127.0.0.1", NULL), -EINVAL, "port");
	/* not listening: regions can still be added, run still refuses */
	assert_int_equal(add(s, PAGE, page(s, 1), PAGE), 1);
	EXPECT_FAIL(rdmig_dst_run(s->dst, NULL), -ENOTCONN, "listen");
}

static void dst_run_before_listen_enotconn(void **state)
{
	struct side *s = *state;
	struct rdmig_dst_stats st = { .size = sizeof(st) };

	EXPECT_FAIL(rdmig_dst_run(s->dst, NULL), -ENOTCONN, "listen");
	assert_int_equal(add(s, 0, page(s, 0), PAGE), 0);
	EXPECT_FAIL(rdmig_dst_run(s->dst, &st), -ENOTCONN, "listen");
}

/* --- handles ----------------------------------------------------------------- */

static void destroy_null_handle_no_effect(void **state)
{
	(void)state;
	rdmig_src_destroy(NULL);
	rdmig_dst_destroy(NULL);
}

/* Destroying a handle that holds regions but never connected frees it cleanly. */
static void destroy_idle_handle_with_regions_succeeds(void **state)
{
	uint8_t *mem = *state;
	struct rdmig_src *src = NULL;
	struct rdmig_dst *dst = NULL;

	assert_int_equal(rdmig_src_create(NULL, &src), 0);
	assert_int_equal(rdmig_dst_create(NULL, &dst), 0);
	assert_int_equal(rdmig_src_add_region(src, 0, mem, PAGE), 0);
	assert_int_equal(rdmig_dst_add_region(dst, 0, mem, PAGE, 0), 0);
	rdmig_src_destroy(src);
	rdmig_dst_destroy(dst);
}

/* Handles are independent: regions on one do not collide with another's. */
static void add_region_same_range_other_handle_accepted(void **state)
{
	uint8_t *mem = *state;
	struct rdmig_src *a = NULL, *b = NULL;

	assert_int_equal(rdmig_src_create(NULL, &a), 0);
	assert_int_equal(rdmig_src_create(NULL, &b), 0);
	assert_int_equal(rdmig_src_add_region(a, 0, mem, PAGE), 0);
	assert_int_equal(rdmig_src_add_region(b, 0, mem, PAGE), 0);
	assert_int_equal(rdmig_src_add_region(b, PAGE, mem + PAGE, PAGE), 1);
	rdmig_src_destroy(a);
	rdmig_src_destroy(b);
}

static void *other_thread(void *arg)
{
	char *seen = arg;

	/* the main thread's failure is not visible here */
	strcpy(seen, rdmig_last_error());
	/* and this thread's failure does not reach the main thread */
	rdmig_src_complete(NULL);
	return NULL;
}

/* rdmig_last_error() belongs to the calling thread. */
static void last_error_other_thread_not_shared(void **state)
{
	struct side *s = *state;
	char seen[512] = "unset";
	pthread_t t;

	EXPECT_FAIL(rdmig_src_pass(s->src, NULL, 0, RDMIG_PASS_ALL, NULL), -ENOTCONN, "connect");
	assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "");
	assert_contains(rdmig_last_error(), "connect");
}

/*
 * Issue 13: rdmig_last_error() is dlerror-like, as rdmig.h says: the next
 * call clears it, success leaves "", and only rdmig_opts_init(),
 * rdmig_set_log(), the cancels and rdmig_last_error() itself leave it.
 */
static void last_error_cleared_by_next_call_kept_by_the_others(void **state)
{
	struct side *s = *state;
	struct rdmig_pass_stats st = { .size = sizeof(st) };
	struct rdmig_opts o;
	struct rdmig_src *other;
	const char *p;

	assert_int_equal(rdmig_src_create(NULL, &other), 0);
	EXPECT_FAIL(rdmig_src_pass(s->src, NULL, 0, RDMIG_PASS_ALL, NULL), -ENOTCONN, "connect");
	p = rdmig_last_error();
	assert_ptr_equal(rdmig_last_error(), p); /* the thread's own buffer */
	rdmig_opts_init(&o);
	rdmig_set_log(NULL, NULL);
	assert_int_equal(rdmig_src_cancel(other), 0);
	assert_contains(rdmig_last_error(), "connect");
	assert_true(strlen(rdmig_last_error()) < RDMIG_ERROR_MAX);
	/* The next failure replaces it; the next success clears it. */
	EXPECT_FAIL(rdmig_src_stats(s->src, NULL), -EINVAL, "stats");
	assert_true(strstr(rdmig_last_error(), "connect") == NULL);
	assert_int_equal(rdmig_src_stats(s->src, &st), 0);
	assert_string_equal(rdmig_last_error(), "");
	/* A cancel with a NULL handle sets it, and only then. */
	assert_int_equal(rdmig_src_cancel(NULL), -EINVAL);
	assert_contains(rdmig_last_error(), "src is NULL");
	rdmig_src_destroy(other);
}

static int mem_setup(void **state)
{
	void *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	*state = p;
	return 0;
}

static int mem_teardown(void **state)
{
	return munmap(*state, 2 * PAGE);
}

/* Handles are created with defaults: no RDMIG_* variable from the caller may change them. */
static void clear_rdmig_env(void)
{
	static const char *const vars[] = {
		"RDMIG_PAGE_SIZE",	   "RDMIG_WORKERS",	    "RDMIG_CHUNK_PAGES",
		"RDMIG_QUEUE_DEPTH",	   "RDMIG_SIGNAL_INTERVAL", "RDMIG_QP_TIMEOUT",
		"RDMIG_INFLIGHT_BYTES",	   "RDMIG_TIMEOUT_MS",	    "RDMIG_IDLE_TIMEOUT_MS",
		"RDMIG_ACCEPT_TIMEOUT_MS", "RDMIG_MAX_QPS",	    "RDMIG_PIN",
		"RDMIG_LOG_LEVEL",	   "RDMIG_PSK_FILE",	    "RDMIG_AUTH",
	};

	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(vars); i++)
		unsetenv(vars[i]);
}

/* Region tests run once per side, each under its own name. */
#define SIDE_TEST(name, f, side)                          \
	{                                                 \
		name, f, side_setup, side_teardown, &side \
	}
#define BOTH(f) SIDE_TEST("src_" #f, f, src_side), SIDE_TEST("dst_" #f, f, dst_side)
#define SRC(f)	SIDE_TEST(#f, f, src_side)
#define DST(f)	SIDE_TEST(#f, f, dst_side)
#define MEM(f)	cmocka_unit_test_setup_teardown(f, mem_setup, mem_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(add_region_first_regions_return_indices),
		BOTH(add_region_null_hva_einval),
		BOTH(add_region_zero_length_einval),
		BOTH(add_region_misaligned_einval),
		BOTH(add_region_misaligned_to_configured_page_size_einval),
		BOTH(add_region_overlapping_gpa_einval),
		BOTH(add_region_overlapping_hva_einval),
		BOTH(add_region_adjacent_regions_accepted),
		BOTH(add_region_wraparound_einval),
		BOTH(add_region_too_many_enospc),
		BOTH(add_region_failure_changes_nothing),
		BOTH(add_region_success_clears_last_error),
		BOTH(add_region_error_names_values),
		MEM(src_null_handle_einval),
		SRC(src_pass_before_connect_enotconn),
		SRC(src_complete_before_connect_enotconn),
		SRC(src_slices_and_progress_before_connect),
		SRC(src_connect_no_regions_einval),
		SRC(src_connect_null_host_or_port_einval),
		SRC(src_discard_bad_input_einval_names_values),
		cmocka_unit_test(src_discard_misaligned_to_configured_page_size_einval),
		SRC(src_discard_other_thread_while_adding_regions),
		MEM(dst_null_handle_einval),
		DST(dst_add_region_unknown_flags_einval),
		DST(dst_listen_no_regions_einval),
		DST(dst_listen_null_port_einval),
		DST(dst_listen_without_key_eacces),
		SRC(src_connect_without_key_eacces),
		DST(dst_run_before_listen_enotconn),
		SRC(last_error_other_thread_not_shared),
		SRC(last_error_cleared_by_next_call_kept_by_the_others),
		cmocka_unit_test(destroy_null_handle_no_effect),
		MEM(destroy_idle_handle_with_regions_succeeds),
		MEM(add_region_same_range_other_handle_accepted),
	};

	clear_rdmig_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
