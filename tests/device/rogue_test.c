/* SPDX-License-Identifier: MIT */
/*
 * Device tests with a rogue source that speaks rdma_cm and the wire format
 * by hand and sends malformed control messages. The destination must fail
 * with a message naming what was wrong, close the connection, leave guest
 * memory untouched, and hold no memory registration afterwards; a peer that
 * had the rkeys can no longer write once the session failed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "common/conn.h"
#include "common/proto.h"
#include "device/devtest.h"

#define PATTERN 0xa5
#define REGION	(1ull << 20)

static const char *ip;
static struct rdmig__msg msg; /* too big for the stack of a test */

struct dst_run {
	struct dt_guest g;
	struct rdmig_dst *dst;
	pthread_t thread;
	pid_t tid;		 /* the thread that registers memory, as `rdma res` lists it */
	volatile int registered; /* guest MRs seen while the session ran */
	int ret;
	char err[512];
	char port[16];
};

static void *dst_main(void *arg)
{
	struct dst_run *d = arg;

	d->tid = (pid_t)syscall(SYS_gettid);
	d->ret = rdmig_dst_run(d->dst, NULL);
	snprintf(d->err, sizeof(d->err), "%s", rdmig_last_error());
	return NULL;
}

static void dst_start(struct dst_run *d)
{
	const uint64_t gpa[2] = { 0, 1ull << 32 };
	const uint64_t len[2] = { REGION, REGION };
	struct rdmig_opts o;
	int port;

	memset(d, 0, sizeof(*d));
	dt_guest_init(&d->g, 2, gpa, len);
	for (unsigned i = 0; i < 2; i++)
		memset(d->g.hva[i], PATTERN, REGION);
	rdmig_opts_init(&o);
	o.accept_timeout_ms = 30000;
	o.timeout_ms = 5000;
	assert_int_equal(rdmig_dst_create(&o, &d->dst), 0);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(rdmig_dst_add_region(d->dst, gpa[i], d->g.hva[i], len[i], 0),
				 (int)i);
	port = rdmig_dst_listen(d->dst, ip, "0");
	assert_true(port > 0);
	snprintf(d->port, sizeof(d->port), "%d", port);
	assert_int_equal(pthread_create(&d->thread, NULL, dst_main, d), 0);
}

/* Every byte of guest memory still holds the pattern. */
static void assert_untouched(const struct dt_guest *g, uint64_t except_off, uint64_t except_len)
{
	for (unsigned i = 0; i < g->n; i++)
		for (uint64_t off = 0; off < g->len[i]; off++) {
			if (i == 0 && off >= except_off && off < except_off + except_len)
				continue;
			if (g->hva[i][off] != PATTERN)
				fail_msg("region %u byte 0x%llx was written", i,
					 (unsigned long long)off);
		}
}

/* Joins the destination and checks it failed as `want` says, cleanly. */
static void dst_finish(struct dst_run *d, int want_ret, const char *want_text)
{
	pthread_join(d->thread, NULL);
	if (d->ret != want_ret || !strstr(d->err, want_text))
		fail_msg("destination returned %d '%s', expected %d with '%s'", d->ret, d->err,
			 want_ret, want_text);
	/* Nothing registered any more: not guest memory, not buffers. */
	assert_int_equal(dt_mr_count(d->tid), 0);
	assert_untouched(&d->g, 0, 0);
	rdmig_dst_destroy(d->dst);
	dt_guest_fini(&d->g);
}

struct rogue {
	const struct rdmig__xp_ops *xp;
	struct rdmig__xp_chan *ch;
	struct rdmig__xp_pd *pd;
	struct rdmig__xp_mr *mr;
	uint8_t page[DT_PAGE];
	struct rdmig__ep ep;   /* control */
	struct rdmig__ep data; /* data QP 0, once connected */
	struct sockaddr_storage ss;
};

/* Connects one more connection id as `kind` (with index and token for data). */
static void rogue_connect_ep(struct rogue *r, struct rdmig__ep *ep, uint32_t epi, uint32_t kind,
			     uint64_t token)
{
	struct rdmig__ep_attr attr = { .send_depth = 8,
				       .recv_depth = 4,
				       .nrecv = 2,
				       .nsend = 2,
				       .bufsize = RDMIG__MSG_MAX + 8192,
				       .qp_timeout = 18 };
	struct rdmig__xp_id *id;
	uint8_t pdata[RDMIG__CONNECT_LEN];
	char why[128];
	int len;

	assert_int_equal(r->xp->id_create(r->ch, &id), 0);
	assert_int_equal(r->xp->resolve(id, (struct sockaddr *)&r->ss, 5000), 0);
	if (!r->pd) {
		assert_int_equal(r->xp->pd_alloc(id, &r->pd), 0);
		memset(r->page, 0x5a, sizeof(r->page));
		assert_int_equal(r->xp->mr_reg(r->pd, r->page, sizeof(r->page), 0, &r->mr), 0);
	}
	assert_int_equal(rdmig__ep_setup(ep, id, r->pd, NULL, epi, &attr), 0);

	memset(&msg, 0, sizeof(msg));
	msg.type = RDMIG__MSG_CONNECT;
	msg.connect.kind = kind;
	msg.connect.token = token;
	len = rdmig__msg_encode(&msg, pdata, sizeof(pdata), why, sizeof(why));
	assert_true(len > 0);
	assert_int_equal(r->xp->connect(id, pdata, (uint8_t)len, 5000), 0);
}

static void rogue_connect(struct rogue *r, const char *port)
{
	memset(r, 0, sizeof(*r));
	r->xp = dt_transport();
	assert_int_equal(r->xp->chan_create(&r->ch), 0);
	assert_int_equal(rdmig__resolve(ip, port, &r->ss), 0);
	rogue_connect_ep(r, &r->ep, 0, RDMIG__CONN_CTRL, 0);
}

static void rogue_close(struct rogue *r)
{
	rdmig__ep_destroy(&r->data);
	rdmig__ep_destroy(&r->ep);
	r->xp->mr_dereg(r->mr);
	r->xp->pd_free(r->pd);
	r->xp->chan_destroy(r->ch);
}

/* Waits for one completion on ep; returns its status, or -1 if none came. */
static int rogue_wait_on(struct rdmig__ep *ep, struct ibv_wc *wc)
{
	uint64_t end = dt_now_ms() + 5000;

	while (dt_now_ms() < end) {
		int n = rdmig__cq_wait(ep->cq, wc, 1, 100);

		if (n == 1)
			return wc->status;
	}
	return -1;
}

static int rogue_wait(struct rogue *r, struct ibv_wc *wc)
{
	return rogue_wait_on(&r->ep, wc);
}

/* Posts `len` raw bytes as one SEND on ep; returns its completion status. */
static int rogue_send_on(struct rdmig__ep *ep, const void *buf, size_t len)
{
	uint8_t *sbuf = ep->bufs + (size_t)ep->attr.nrecv * ep->attr.bufsize;
	struct ibv_sge sge = { (uintptr_t)sbuf, (uint32_t)len, ep->mr->lkey };
	struct ibv_send_wr wr = { .wr_id = rdmig__wr_id(RDMIG__WR_SEND, 0, 0),
				  .sg_list = &sge,
				  .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED };
	struct ibv_send_wr *bad;
	struct ibv_wc wc;

	assert_true(len <= ep->attr.bufsize);
	memcpy(sbuf, buf, len);
	assert_int_equal(rdmig__xp_post_send(ep->id, &wr, &bad), 0);
	return rogue_wait_on(ep, &wc);
}

static int rogue_send_raw(struct rogue *r, const void *buf, size_t len)
{
	return rogue_send_on(&r->ep, buf, len);
}

/* The next message from the destination (decoded into msg), or fails. */
static void rogue_recv(struct rogue *r, unsigned want_type)
{
	struct ibv_wc wc;
	char why[256];

	assert_int_equal(rogue_wait(r, &wc), IBV_WC_SUCCESS);
	assert_int_equal(rdmig__wr_kind_of(wc.wr_id), RDMIG__WR_RECV);
	assert_int_equal(rdmig__msg_decode(rdmig__ep_recv_buf(&r->ep, rdmig__wr_val_of(wc.wr_id)),
					   wc.byte_len, &msg, why, sizeof(why)),
			 0);
	if (msg.type != want_type)
		fail_msg("got %s, expected %s", rdmig__msg_type_name(msg.type),
			 rdmig__msg_type_name(want_type));
}

/* A valid HELLO for the destination's layout, encoded into buf. */
static size_t hello_flags(uint8_t *buf, uint32_t flags)
{
	char why[128];
	int len;

	memset(&msg, 0, sizeof(msg));
	msg.type = RDMIG__MSG_HELLO;
	msg.hello.ver_min = msg.hello.ver_max = RDMIG__PROTO_VERSION;
	msg.hello.page_size = 4096;
	msg.hello.nqps = 1;
	msg.hello.nregions = 2;
	msg.hello.regions[0] = (struct rdmig__wire_region){ 0, REGION };
	msg.hello.regions[1] = (struct rdmig__wire_region){ 1ull << 32, REGION };
	msg.hello.flags = flags;
	len = rdmig__msg_encode(&msg, buf, RDMIG__MSG_MAX, why, sizeof(why));
	assert_true(len > 0);
	return (size_t)len;
}

static size_t hello(uint8_t *buf)
{
	return hello_flags(buf, RDMIG__HELLO_NOTICES);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * Sends a HELLO broken by `patch` (or cut to `cut` bytes), and checks the
 * destination refuses it with `want` in its message, answers with an ERROR
 * saying the same, and touched nothing.
 */
static void bad_hello(void (*patch)(uint8_t *buf, size_t *len), int want_ret, const char *want,
		      bool answered)
{
	static uint8_t buf[RDMIG__MSG_MAX + 8192];
	struct dst_run d;
	struct rogue r;
	size_t len;

	dst_start(&d);
	rogue_connect(&r, d.port);
	memset(buf, 0, sizeof(buf));
	len = hello(buf);
	patch(buf, &len);
	if (answered) {
		assert_int_equal(rogue_send_raw(&r, buf, len), IBV_WC_SUCCESS);
		rogue_recv(&r, RDMIG__MSG_ERROR);
		if (!strstr(msg.error.text, want))
			fail_msg("ERROR to the source says '%s', expected '%s'", msg.error.text,
				 want);
	} else {
		/* Too big for any receive buffer: the transport refuses it and
		 * the connection breaks before an ERROR could go back. */
		assert_int_not_equal(rogue_send_raw(&r, buf, len), IBV_WC_SUCCESS);
	}
	dst_finish(&d, want_ret, want);
	rogue_close(&r);
}

static void cut_short(uint8_t *buf, size_t *len)
{
	(void)buf;
	*len -= 5;
}

static void bad_version(uint8_t *buf, size_t *len)
{
	(void)len;
	buf[4] = 7; /* header version */
}

static void overlapping(uint8_t *buf, size_t *len)
{
	(void)len;
	/* Region 1 (the second entry after the header and the fixed part)
	 * moved into region 0. */
	const size_t regions = RDMIG__HDR_LEN + 216;

	for (unsigned i = 0; i < 8; i++)
		buf[regions + 16 + i] = i == 1 ? 0x10 : 0; /* gpa 0x1000 */
}

static void claims_more(uint8_t *buf, size_t *len)
{
	put32(buf + 8, (uint32_t)*len + 4096);
}

static void too_big(uint8_t *buf, size_t *len)
{
	*len = RDMIG__MSG_MAX + 4096; /* more than any receive buffer */
	put32(buf + 8, (uint32_t)*len);
}

static void hello_truncated_refused_memory_untouched(void **state)
{
	(void)state;
	bad_hello(cut_short, -EBADMSG, "arrived", true);
}

static void hello_unknown_version_refused(void **state)
{
	(void)state;
	bad_hello(bad_version, -EPROTO, "unsupported protocol version 7", true);
}

static void hello_overlapping_regions_refused(void **state)
{
	(void)state;
	bad_hello(overlapping, -EBADMSG, "overlap", true);
}

static void hello_length_lie_refused(void **state)
{
	(void)state;
	bad_hello(claims_more, -EBADMSG, "header says", true);
}

static void hello_oversized_refused(void **state)
{
	(void)state;
	bad_hello(too_big, -EBADMSG, "larger than", false);
}

/*
 * A peer that got the rkeys writes (allowed: the session runs), then sends
 * garbage: the destination fails, and a write with the same rkey no longer
 * lands.
 */
static void garbage_after_hello_withdraws_memory(void **state)
{
	static uint8_t buf[RDMIG__MSG_MAX];
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	struct ibv_wc wc;
	struct dst_run d;
	struct rogue r;
	uint64_t addr;
	uint32_t rkey;
	int st;

	(void)state;
	dst_start(&d);
	rogue_connect(&r, d.port);
	assert_int_equal(rogue_send_raw(&r, buf, hello(buf)), IBV_WC_SUCCESS);
	rogue_recv(&r, RDMIG__MSG_HELLO_ACK);
	addr = msg.hello_ack.regions[0].addr;
	rkey = msg.hello_ack.regions[0].rkey;
	assert_true(dt_mr_count(d.tid) >= 2); /* both regions are exposed now */

	memset(&wr, 0, sizeof(wr));
	sge = (struct ibv_sge){ (uintptr_t)r.page, DT_PAGE, r.mr->lkey };
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = addr;
	wr.wr.rdma.rkey = rkey;
	assert_int_equal(rdmig__xp_post_send(r.ep.id, &wr, &bad), 0);
	assert_int_equal(rogue_wait(&r, &wc), IBV_WC_SUCCESS);

	memset(buf, 0xee, 64); /* no magic: garbage */
	assert_int_equal(rogue_send_raw(&r, buf, 64), IBV_WC_SUCCESS);
	rogue_recv(&r, RDMIG__MSG_ERROR);
	pthread_join(d.thread, NULL);

	/* The session is over: a second write must not land. */
	wr.wr.rdma.remote_addr = addr + DT_PAGE;
	st = rdmig__xp_post_send(r.ep.id, &wr, &bad) ? -2 : rogue_wait(&r, &wc);
	print_message("write after the failure: %s\n",
		      st >= 0 ? ibv_wc_status_str((enum ibv_wc_status)st) : "not posted");
	assert_int_not_equal(st, IBV_WC_SUCCESS);
	if (d.ret != -EBADMSG || !strstr(d.err, "bad magic"))
		fail_msg("destination returned %d '%s'", d.ret, d.err);
	assert_int_equal(dt_mr_count(d.tid), 0);
	/* Only the first page, written during the session, changed. */
	assert_untouched(&d.g, 0, DT_PAGE);
	assert_int_equal(d.g.hva[0][0], 0x5a);
	rogue_close(&r);
	rdmig_dst_destroy(d.dst);
	dt_guest_fini(&d.g);
}

/*
 * A source that got through HELLO and onto a data QP sends a NOTICE the
 * destination must refuse. Every NOTICE orders its pages first..first +
 * npages - 1 zeroed, so guest memory still holding the pattern proves
 * nothing was applied.
 */
static void bad_notice(uint32_t hello_flags_, uint64_t pass, uint32_t region, uint64_t first,
		       uint32_t npages, int want_ret, const char *want)
{
	static uint8_t buf[RDMIG__MSG_MAX];
	struct dst_run d;
	struct rogue r;
	char why[128];
	int len;

	dst_start(&d);
	rogue_connect(&r, d.port);
	assert_int_equal(rogue_send_raw(&r, buf, hello_flags(buf, hello_flags_)), IBV_WC_SUCCESS);
	rogue_recv(&r, RDMIG__MSG_HELLO_ACK);
	rogue_connect_ep(&r, &r.data, 1, RDMIG__CONN_DATA, msg.hello_ack.token);

	memset(&msg, 0, sizeof(msg));
	msg.type = RDMIG__MSG_NOTICE;
	msg.notice.pass = pass;
	msg.notice.region = region;
	msg.notice.npages = npages;
	for (uint32_t i = 0; i < npages; i++)
		msg.notice.page[i] = (first + i) | RDMIG__NOTICE_ZERO;
	len = rdmig__msg_encode(&msg, buf, sizeof(buf), why, sizeof(why));
	assert_true(len > 0);
	assert_int_equal(rogue_send_on(&r.data, buf, (size_t)len), IBV_WC_SUCCESS);
	rogue_recv(&r, RDMIG__MSG_ERROR);
	if (!strstr(msg.error.text, want))
		fail_msg("ERROR to the source says '%s', expected '%s'", msg.error.text, want);
	dst_finish(&d, want_ret, want);
	rogue_close(&r);
}

static void notice_region_out_of_range_refused(void **state)
{
	(void)state;
	bad_notice(RDMIG__HELLO_NOTICES, 1, 2, 0, 8, -EBADMSG, "NOTICE for region 2 of 2");
}

static void notice_pages_past_region_end_refused(void **state)
{
	(void)state;
	bad_notice(RDMIG__HELLO_NOTICES, 1, 0, REGION / DT_PAGE - 4, 8, -EBADMSG, "which has 256");
}

static void notice_wrong_pass_refused(void **state)
{
	(void)state;
	bad_notice(RDMIG__HELLO_NOTICES, 5, 0, 0, 8, -EPROTO, "NOTICE for pass 5");
}

static void notice_not_announced_refused(void **state)
{
	(void)state;
	bad_notice(0, 1, 0, 0, 8, -EPROTO, "HELLO announced none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hello_truncated_refused_memory_untouched),
		cmocka_unit_test(hello_unknown_version_refused),
		cmocka_unit_test(hello_overlapping_regions_refused),
		cmocka_unit_test(hello_length_lie_refused),
		cmocka_unit_test(hello_oversized_refused),
		cmocka_unit_test(garbage_after_hello_withdraws_memory),
		cmocka_unit_test(notice_region_out_of_range_refused),
		cmocka_unit_test(notice_pages_past_region_end_refused),
		cmocka_unit_test(notice_wrong_pass_refused),
		cmocka_unit_test(notice_not_announced_refused),
	};

	ip = devtest_ip();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
