/* SPDX-License-Identifier: MIT */
/*
 * Device state over real verbs, or over loopback with
 * RDMIG_TRANSPORT=loopback (rdmig_src_send_state, rdmig_dst_state): blobs
 * of several sizes land byte for byte, into the VMM's buffers pre-filled
 * with 0xAA (the zero pages left off the wire read zero) or into rdmig's;
 * a 1 GiB sparse blob over loopback; bad input (an id twice, over the
 * limits) is -EINVAL and the session goes on; over loopback, a blob torn
 * in the NIC's read is caught by the hash (-EIO at both ends, naming the
 * blob); a cancel in the middle of the transfer leaves nothing
 * registered; the estimate's downtime adds the announced state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "dataplane/xport.h"
#include "device/devtest.h"

static const char *ip;

#define PG DT_PAGE

/* The VMM's buffers: 0xAA until rdmig fills them. */
struct vmm_bufs {
	struct rdmig_src *cancel; /* cancelled when the descriptors arrive */
	unsigned n;
	uint64_t id[RDMIG_STATE_BLOBS_MAX], len[RDMIG_STATE_BLOBS_MAX];
	uint8_t *buf[RDMIG_STATE_BLOBS_MAX];
};

static void *vmm_alloc(void *arg, uint64_t id, uint64_t len)
{
	struct vmm_bufs *v = arg;
	uint8_t *b = malloc(len);

	if (v->cancel)
		rdmig_src_cancel(v->cancel);

	memset(b, 0xaa, len);
	v->id[v->n] = id;
	v->len[v->n] = len;
	v->buf[v->n++] = b;
	return b;
}

static void vmm_free(struct vmm_bufs *v)
{
	for (unsigned i = 0; i < v->n; i++)
		free(v->buf[i]);
}

/* A guest of one 64-page region, the destination serving it (callback if v). */
struct rig {
	struct dt_guest sg, dg;
	struct dt_dst d;
	struct rdmig_src *src;
};

static void *run_main(void *arg)
{
	struct dt_dst *d = arg;

	d->stats.size = sizeof(d->stats);
	d->ret = rdmig_dst_run(d->dst, &d->stats);
	snprintf(d->err, sizeof(d->err), "%s", rdmig_last_error());
	return NULL;
}

static void rig_up(struct rig *r, struct vmm_bufs *v)
{
	const uint64_t gpa[1] = { 0 }, len[1] = { 64 * PG };
	struct rdmig_opts o;
	uint64_t rng = 5;
	int port;

	dt_guest_init(&r->sg, 1, gpa, len);
	dt_guest_init(&r->dg, 1, gpa, len);
	dt_guest_fill(&r->sg, &rng);
	memset(&r->d, 0, sizeof(r->d));
	rdmig_opts_init(&o);
	o.accept_timeout_ms = 60000;
	assert_int_equal(rdmig_dst_create(&o, &r->d.dst), 0);
	assert_int_equal(rdmig_dst_add_region(r->d.dst, 0, r->dg.hva[0], 64 * PG, 0), 0);
	if (v)
		assert_int_equal(rdmig_dst_set_state_alloc(r->d.dst, vmm_alloc, v), 0);
	port = rdmig_dst_listen(r->d.dst, ip, "0");
	assert_true(port > 0);
	snprintf(r->d.port, sizeof(r->d.port), "%d", port);
	assert_int_equal(pthread_create(&r->d.thread, NULL, run_main, &r->d), 0);
	r->src = dt_src_connect(ip, &r->d, &r->sg, NULL);
	assert_int_equal(rdmig_src_pass(r->src, NULL, 0, RDMIG_PASS_ALL | RDMIG_PASS_FINAL, NULL),
			 0);
}

/* Completes, joins the destination (its handle stays: rdmig_dst_state). */
static void rig_complete(struct rig *r)
{
	unsigned region;

	if (rdmig_src_complete(r->src))
		fail_msg("complete: %s", rdmig_last_error());
	pthread_join(r->d.thread, NULL);
	if (r->d.ret)
		fail_msg("destination: %s", r->d.err);
	assert_int_equal(dt_guest_diff(&r->sg, &r->dg, &region), -1);
}

static void rig_down(struct rig *r)
{
	rdmig_src_destroy(r->src);
	rdmig_dst_destroy(r->d.dst);
	dt_guest_fini(&r->sg);
	dt_guest_fini(&r->dg);
}

static uint8_t *random_bytes(uint64_t len, uint64_t seed)
{
	uint8_t *p = malloc(len + 8);

	for (uint64_t k = 0; k < len; k += 8) {
		uint64_t v = dt_rng(&seed);

		memcpy(p + k, &v, 8);
	}
	return p;
}

/*
 * Five blobs: 100 bytes; 3 pages and 123 bytes whose page 1 is zero; 10
 * pages whose pages 0, 1, 5 and 9 are zero; 4 zero pages; and an empty
 * one. 9 zero pages in all, left off the wire.
 */
struct five {
	uint8_t *data[5];
	struct rdmig_blob b[5];
};

static void five_blobs(struct five *f)
{
	static const uint64_t len[5] = { 100, 3 * PG + 123, 10 * PG, 4 * PG, 0 };

	for (unsigned i = 0; i < 5; i++) {
		f->data[i] = random_bytes(len[i], 100 + i);
		f->b[i] =
			(struct rdmig_blob){ .id = 0x1000 + i, .data = f->data[i], .len = len[i] };
	}
	memset(f->data[1] + PG, 0, PG);
	for (unsigned p = 0; p < 10; p++)
		if (p == 0 || p == 1 || p == 5 || p == 9)
			memset(f->data[2] + p * PG, 0, PG);
	memset(f->data[3], 0, 4 * PG);
}

static void five_free(struct five *f)
{
	for (unsigned i = 0; i < 5; i++)
		free(f->data[i]);
}

static void check_landed(const struct five *f, struct rdmig_dst *dst)
{
	const struct rdmig_blob *got;

	assert_int_equal(rdmig_dst_state(dst, &got), 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_int_equal(got[i].id, f->b[i].id);
		assert_int_equal(got[i].len, f->b[i].len);
		if (got[i].len)
			assert_memory_equal(got[i].data, f->b[i].data, got[i].len);
	}
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Into the VMM's 0xAA buffers: every byte lands, the elided pages read zero. */
static void state_into_vmm_buffers_zero_pages_read_zero(void **state)
{
	struct rdmig_state_stats st = { .size = sizeof(st) };
	struct vmm_bufs v = { 0 };
	struct five f;
	struct rig r;

	(void)state;
	five_blobs(&f);
	rig_up(&r, &v);
	if (rdmig_src_send_state(r.src, f.b, 5, &st))
		fail_msg("send_state: %s", rdmig_last_error());
	assert_int_equal(st.blobs, 5);
	assert_int_equal(st.bytes, 100 + 3 * PG + 123 + 10 * PG + 4 * PG);
	assert_int_equal(st.zero_pages, 9);
	assert_int_equal(st.wire_bytes, st.bytes - 9 * PG);
	assert_true(st.writes >= 3);
	/* The callback gave a buffer per non-empty blob, in order. */
	assert_int_equal(v.n, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(v.id[i], f.b[i].id);
		assert_int_equal(v.len[i], f.b[i].len);
	}
	/* Once is all: the session goes on. */
	assert_int_equal(rdmig_src_send_state(r.src, f.b, 5, NULL), -EALREADY);
	rig_complete(&r);

	check_landed(&f, r.d.dst);
	{
		const struct rdmig_blob *got;

		rdmig_dst_state(r.d.dst, &got);
		for (unsigned i = 0; i < 4; i++)
			assert_ptr_equal(got[i].data, v.buf[i]);
	}
	/* The pages never sent were 0xAA here: now they read zero. */
	assert_true(all_zero(v.buf[1] + PG, PG));
	assert_true(all_zero(v.buf[2], 2 * PG));
	assert_true(all_zero(v.buf[2] + 5 * PG, PG));
	assert_true(all_zero(v.buf[2] + 9 * PG, PG));
	assert_true(all_zero(v.buf[3], 4 * PG));
	assert_int_equal(r.d.stats.state_blobs, 5);
	assert_int_equal(r.d.stats.state_bytes, st.bytes);
	assert_int_equal(r.d.stats.state_wire_bytes, st.wire_bytes);
	assert_int_equal(r.d.stats.state_zero_pages, 9);
	rig_down(&r);
	vmm_free(&v);
	five_free(&f);
}

/* Without a callback rdmig allocates; the blobs stay until the handle goes. */
static void state_into_rdmig_buffers(void **state)
{
	struct five f;
	struct rig r;

	(void)state;
	five_blobs(&f);
	rig_up(&r, NULL);
	if (rdmig_src_send_state(r.src, f.b, 5, NULL))
		fail_msg("send_state: %s", rdmig_last_error());
	rig_complete(&r);
	check_landed(&f, r.d.dst);
	rig_down(&r);
	five_free(&f);
}

/* A 1 GiB blob, mostly zero pages (cheap over loopback; too slow over TCG rxe). */
static void state_gigabyte_sparse_blob(void **state)
{
	const uint64_t len = 1ull << 30, pages = len / PG;
	struct rdmig_state_stats st = { .size = sizeof(st) };
	const struct rdmig_blob *got;
	struct rdmig_blob b;
	uint8_t *data;
	struct rig r;

	(void)state;
	if (!dt_loopback())
		skip();
	data = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(data != MAP_FAILED);
	memset(data + 7 * PG, 0x11, PG);
	memset(data + (pages / 2) * PG + 5, 0x22, 10);
	memset(data + len - 3, 0x33, 3);
	b = (struct rdmig_blob){ .id = 42, .data = data, .len = len };
	rig_up(&r, NULL);
	if (rdmig_src_send_state(r.src, &b, 1, &st))
		fail_msg("send_state: %s", rdmig_last_error());
	printf("1 GiB blob, 3 pages of data: %.1f ms (scan %.1f ms, wire %.1f ms)\n",
	       st.duration_ns / 1e6, st.scan_ns / 1e6, st.wire_ns / 1e6);
	assert_int_equal(st.zero_pages, pages - 3);
	assert_int_equal(st.wire_bytes, 3 * PG);
	rig_complete(&r);
	assert_int_equal(rdmig_dst_state(r.d.dst, &got), 1);
	assert_int_equal(got[0].id, 42);
	assert_int_equal(got[0].len, len);
	assert_memory_equal(got[0].data, data, len);
	rig_down(&r);
	munmap(data, len);
}

/* Bad input: -EINVAL naming it, nothing sent; the session goes on. */
static void state_bad_input_einval_session_unharmed(void **state)
{
	static uint8_t one[PG];
	struct rdmig_blob b[RDMIG_STATE_BLOBS_MAX + 1];
	const uint64_t gpa[1] = { 0 }, len[1] = { 64 * PG };
	struct dt_guest sg, dg;
	struct rdmig_src *src;
	struct five f;
	struct rig r;
	struct dt_dst d;

	(void)state;
	/* Before any pass: refused. */
	dt_guest_init(&sg, 1, gpa, len);
	dt_guest_init(&dg, 1, gpa, len);
	dt_dst_start(&d, ip, &dg, RDMIG_REGION_ZERO_FILLED, NULL);
	src = dt_src_connect(ip, &d, &sg, NULL);
	b[0] = (struct rdmig_blob){ .id = 1, .data = one, .len = sizeof(one) };
	assert_int_equal(rdmig_src_send_state(src, b, 1, NULL), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "no pass has run yet"));
	assert_int_equal(rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL), 0);
	assert_int_equal(rdmig_src_complete(src), 0);
	assert_int_equal(dt_dst_join(&d), 0);
	rdmig_src_destroy(src);
	dt_guest_fini(&sg);
	dt_guest_fini(&dg);

	five_blobs(&f);
	rig_up(&r, NULL);
	for (unsigned i = 0; i <= RDMIG_STATE_BLOBS_MAX; i++)
		b[i] = (struct rdmig_blob){ .id = i, .data = one, .len = sizeof(one) };
	b[7].id = 3;
	assert_int_equal(rdmig_src_send_state(r.src, b, 8, NULL), -EINVAL);
	if (!strstr(rdmig_last_error(), "blobs 3 and 7 have the same id 0x3"))
		fail_msg("the refusal does not name the duplicate: %s", rdmig_last_error());
	b[7].id = 7;
	b[2].len = RDMIG_STATE_BLOB_MAX + 1; /* never read: refused first */
	assert_int_equal(rdmig_src_send_state(r.src, b, 8, NULL), -EINVAL);
	if (!strstr(rdmig_last_error(), "blob 2 (id 0x2) of 4294967297 bytes is over the limit"))
		fail_msg("the refusal does not name the blob: %s", rdmig_last_error());
	for (unsigned i = 0; i < 5; i++)
		b[i].len = RDMIG_STATE_BLOB_MAX;
	assert_int_equal(rdmig_src_send_state(r.src, b, 5, NULL), -EINVAL);
	assert_non_null(strstr(rdmig_last_error(), "RDMIG_STATE_TOTAL_MAX"));
	for (unsigned i = 0; i <= RDMIG_STATE_BLOBS_MAX; i++)
		b[i].len = sizeof(one);
	assert_int_equal(rdmig_src_send_state(r.src, b, RDMIG_STATE_BLOBS_MAX + 1, NULL), -EINVAL);
	assert_int_equal(rdmig_src_send_state(r.src, b, 0, NULL), -EINVAL);
	b[1].flags = 1;
	assert_int_equal(rdmig_src_send_state(r.src, b, 2, NULL), -EINVAL);
	b[1].flags = 0;
	b[1].data = NULL;
	assert_int_equal(rdmig_src_send_state(r.src, b, 2, NULL), -EINVAL);
	/* All 64 at once is fine; then the five. Only the first call counts. */
	b[1].data = one;
	if (rdmig_src_send_state(r.src, b, RDMIG_STATE_BLOBS_MAX, NULL))
		fail_msg("send_state: %s", rdmig_last_error());
	assert_int_equal(rdmig_src_send_state(r.src, f.b, 5, NULL), -EALREADY);
	rig_complete(&r);
	{
		const struct rdmig_blob *got;

		assert_int_equal(rdmig_dst_state(r.d.dst, &got), RDMIG_STATE_BLOBS_MAX);
		assert_int_equal(got[63].id, 63);
		assert_memory_equal(got[63].data, one, sizeof(one));
	}
	rig_down(&r);
	five_free(&f);
}

/* Over loopback: the NIC's read of blob 1's page 2 is torn, once. */
struct tear {
	const uint8_t *at;
	uint8_t *flip;
	atomic_int fired;
	struct rdmig_src *cancel; /* instead: cancel the source there */
};

static void tear_hook(void *arg, const uint8_t *src, uint64_t len, uint64_t off)
{
	struct tear *t = arg;

	(void)len;
	if (src + off != t->at || atomic_fetch_add(&t->fired, 1))
		return;
	if (t->cancel)
		rdmig_src_cancel(t->cancel);
	else
		*t->flip ^= 1;
}

static void state_torn_blob_caught_by_hash(void **state)
{
	struct vmm_bufs v = { 0 };
	struct tear t = { 0 };
	struct five f;
	struct rig r;

	(void)state;
	if (!dt_loopback())
		skip(); /* only the loopback NIC can be stopped in mid-read */
	five_blobs(&f);
	rig_up(&r, &v);
	/* Half-way through the NIC's read of page 2 of blob 1 (3 pages + 123
	 * bytes), a byte of the half still to read changes after the source
	 * hashed it: the destination holds bytes the source never hashed. */
	t.at = f.data[1] + 2 * PG + RDMIG__LOOP_PIECE;
	t.flip = f.data[1] + 2 * PG + 3000;
	rdmig__loopback_set_read_hook(tear_hook, &t);
	assert_int_equal(rdmig_src_send_state(r.src, f.b, 5, NULL), -EIO);
	rdmig__loopback_set_read_hook(NULL, NULL);
	assert_int_equal(atomic_load(&t.fired), 1);
	if (!strstr(rdmig_last_error(), "blob 1 (id 0x1001, 12411 bytes) landed other"))
		fail_msg("the source's error does not name the blob: %s", rdmig_last_error());
	pthread_join(r.d.thread, NULL);
	assert_int_equal(r.d.ret, -EIO);
	if (!strstr(r.d.err, "blob 1 (id 0x1001"))
		fail_msg("the destination's error does not name the blob: %s", r.d.err);
	/* Nothing exposed, and the failed run lists no blobs. */
	assert_int_equal(dt_mr_count(getpid()), 0);
	{
		const struct rdmig_blob *got;

		assert_int_equal(rdmig_dst_state(r.d.dst, &got), 0);
	}
	assert_int_equal(rdmig_src_complete(r.src), -EPIPE);
	rig_down(&r);
	vmm_free(&v);
	five_free(&f);
}

/*
 * Cancelled in the middle of the transfer (over loopback: inside the NIC's
 * read of the blob, half-way; over rxe: when the destination's callback is
 * asked for a buffer, the descriptors having arrived): -ECANCELED, the
 * destination aborts, nothing stays registered at either end.
 */
static void state_cancel_during_transfer(void **state)
{
	const uint64_t len = 64ull << 20;
	struct rdmig_state_stats st = { .size = sizeof(st) };
	struct vmm_bufs v = { 0 };
	struct tear t = { 0 };
	struct rdmig_blob b;
	uint8_t *data;
	struct rig r;
	int ret;

	(void)state;
	data = random_bytes(len, 9);
	b = (struct rdmig_blob){ .id = 9, .data = data, .len = len };
	rig_up(&r, &v);
	if (dt_loopback()) {
		t.at = data + (32ull << 20);
		t.cancel = r.src;
		rdmig__loopback_set_read_hook(tear_hook, &t);
	} else {
		v.cancel = r.src;
	}
	ret = rdmig_src_send_state(r.src, &b, 1, &st);
	rdmig__loopback_set_read_hook(NULL, NULL);
	if (ret != -ECANCELED)
		fail_msg("send_state returned %d: %s", ret, rdmig_last_error());
	pthread_join(r.d.thread, NULL);
	/* (The callback counts its buffer after it cancelled: read it now.) */
	assert_int_equal(dt_loopback() ? atomic_load(&t.fired) : (int)v.n, 1);
	assert_int_equal(r.d.ret, -ECONNABORTED);
	/* The source's blob and guest memory, the destination's buffer and guest
	 * memory: all deregistered before the calls returned. */
	if (dt_loopback()) {
		struct rdmig__loop_live live;

		rdmig__loopback_live(&live);
		assert_int_equal(live.mrs, 0);
		assert_int_equal(live.pds, 0);
	} else {
		assert_int_equal(dt_mr_count(getpid()), 0);
	}
	rig_down(&r);
	vmm_free(&v);
	free(data);
}

/* The estimate's downtime: final pass, plus the announced state, plus complete. */
static void state_estimate_counts_the_whole_downtime(void **state)
{
	struct rdmig_estimate e = { .size = sizeof(e) }, e0 = { .size = sizeof(e0) };
	struct rig r;

	(void)state;
	rig_up(&r, NULL);
	assert_int_equal(rdmig_src_estimate(r.src, NULL, 0, 64, &e0), 0);
	assert_int_equal(e0.state_bytes, 0);
	assert_int_equal(e0.state_ns, 0);
	assert_true(e0.complete_ns > 0);
	assert_int_equal(e0.downtime_ns, e0.final_pass_ns + e0.complete_ns);
	assert_int_equal(rdmig_src_expect_state(r.src, 64ull << 20), 0);
	assert_int_equal(rdmig_src_estimate(r.src, NULL, 0, 64, &e), 0);
	assert_int_equal(e.state_bytes, 64ull << 20);
	/* At least the bytes at the wire rate. */
	assert_true(e.state_ns >= (uint64_t)((64ull << 20) * 1e9 / (double)e.wire_rate));
	assert_int_equal(e.downtime_ns, e.final_pass_ns + e.state_ns + e.complete_ns);
	printf("estimate: final pass %.2f ms + 64 MiB of state %.2f ms + complete %.3f ms\n",
	       e.final_pass_ns / 1e6, e.state_ns / 1e6, e.complete_ns / 1e6);
	{
		uint8_t *data = random_bytes(64ull << 20, 3);
		struct rdmig_blob b = { .id = 1, .data = data, .len = 64ull << 20 };
		struct rdmig_state_stats st = { .size = sizeof(st) };

		fflush(stdout);
		if (rdmig_src_send_state(r.src, &b, 1, &st))
			fail_msg("send_state: %s", rdmig_last_error());
		printf("measured: 64 MiB of state %.2f ms (scan %.2f, wire %.2f)\n",
		       st.duration_ns / 1e6, st.scan_ns / 1e6, st.wire_ns / 1e6);
		free(data);
	}
	rig_complete(&r);
	rig_down(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_into_vmm_buffers_zero_pages_read_zero),
		cmocka_unit_test(state_into_rdmig_buffers),
		cmocka_unit_test(state_gigabyte_sparse_blob),
		cmocka_unit_test(state_bad_input_einval_session_unharmed),
		cmocka_unit_test(state_torn_blob_caught_by_hash),
		cmocka_unit_test(state_cancel_during_transfer),
		cmocka_unit_test(state_estimate_counts_the_whole_downtime),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
