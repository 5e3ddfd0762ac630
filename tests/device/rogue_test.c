/* SPDX-License-Identifier: MIT */
/*
 * Device tests with hostile peers in both directions, built from rdma_cm
 * and the wire format by hand (common/, ctrl/handshake.h).
 *
 * A rogue source that holds the run's key authenticates properly, then
 * misbehaves (malformed proposals, NOTICEs past a region's end, forged or
 * replayed sealed messages): the destination fails with a message naming
 * what was wrong, leaves guest memory untouched and holds no registration
 * afterwards; a peer that had the rkeys can no longer write once the
 * session failed.
 *
 * Strangers (no key, a wrong key, a replayed handshake, garbage, silence, a
 * data QP without the session's tag, a flood of 16): each gets at most
 * "authentication failed" or the mismatch, never an rkey or a byte of
 * layout; the destination registers no guest memory while they are there
 * (VmPin and the device's MR list say so), counts them in
 * rdmig_dst_stats.rejected, and then accepts the real source, which
 * completes with an exact image.
 *
 * A rogue destination that authenticates properly, then lies in HELLO_ACK
 * (sizes, page size, addresses, rkeys), in HASHES (pages not asked about,
 * pages claimed held) or forges its messages: the real source refuses each
 * with a clear error, and writes nothing outside the windows the
 * destination declared (guard pages around its regions stay intact).
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
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <rdmig/rdmig.h>

#include "common/conn.h"
#include "common/proto.h"
#include "common/seal.h"
#include "ctrl/handshake.h"
#include "dataplane/scan.h"
#include "dataplane/worker.h"
#include "device/devtest.h"

#define PATTERN 0xa5
#define GUARD	0x6b /* the rogue destination's guard pages */
#define REGION	(1ull << 20)
#define NPAGES	(REGION / DT_PAGE)
#define BUFSZ	(RDMIG__MSG_MAX + 8192)

static const char *ip;
static uint8_t run_key[RDMIG_PSK_MAX]; /* the run's key, as every real peer holds it */
static size_t run_key_len;
static const uint64_t layout_gpa[2] = { 0, 1ull << 32 };
static const uint64_t layout_len[2] = { REGION, REGION };

/* Messages are too big for the stack of a test; each thread has its own. */
static _Thread_local struct rdmig__msg msg;
static _Thread_local char why[512];

static void load_run_key(void)
{
	const char *path = getenv("RDMIG_PSK_FILE");
	FILE *f = fopen(path ? path : dt_psk_file(), "rb");

	assert_non_null(f);
	run_key_len = fread(run_key, 1, sizeof(run_key), f);
	fclose(f);
	assert_true(run_key_len >= RDMIG_PSK_MIN);
}

/* The memory this process has pinned (VmPin), in KiB. */
static long vm_pin_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmPin: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ---------------------------------------------------------------------------
 * The real destination, serving from a thread.
 */
struct dst_run {
	struct dt_guest g;
	struct rdmig_dst *dst;
	pthread_t thread;
	volatile pid_t tid; /* the thread that registers memory, as `rdma res` lists it */
	int ret;
	char err[512];
	char port[16];
	struct rdmig_dst_stats stats;
};

static void *dst_main(void *arg)
{
	struct dst_run *d = arg;

	d->tid = (pid_t)syscall(SYS_gettid);
	d->stats.size = sizeof(d->stats);
	d->ret = rdmig_dst_run(d->dst, &d->stats);
	snprintf(d->err, sizeof(d->err), "%s", rdmig_last_error());
	return NULL;
}

static void dst_start_opts(struct dst_run *d, uint32_t auth_timeout_ms)
{
	struct rdmig_opts o;
	int port;

	memset(d, 0, sizeof(*d));
	dt_guest_init(&d->g, 2, layout_gpa, layout_len);
	for (unsigned i = 0; i < 2; i++)
		memset(d->g.hva[i], PATTERN, REGION);
	rdmig_opts_init(&o);
	o.accept_timeout_ms = 30000;
	o.timeout_ms = 5000;
	o.auth_timeout_ms = auth_timeout_ms;
	assert_int_equal(rdmig_dst_create(&o, &d->dst), 0);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(
			rdmig_dst_add_region(d->dst, layout_gpa[i], d->g.hva[i], layout_len[i], 0),
			(int)i);
	port = rdmig_dst_listen(d->dst, ip, "0");
	assert_true(port > 0);
	snprintf(d->port, sizeof(d->port), "%d", port);
	assert_int_equal(pthread_create(&d->thread, NULL, dst_main, d), 0);
	while (!d->tid)
		usleep(1000);
}

static void dst_start(struct dst_run *d)
{
	dst_start_opts(d, 0); /* the default: 2000 ms to authenticate */
}

/*
 * Guest memory the destination has registered: over rxe, the MRs its
 * thread holds that are as large as a region (its message buffers are
 * smaller); over loopback, MRs open to remote write.
 */
static int guest_mrs(const struct dst_run *d)
{
	char line[512], needle[32];
	const char *p;
	FILE *f;
	int n = 0;

	if (dt_loopback())
		return dt_mr_count(d->tid);
	f = popen("rdma resource show mr 2>/dev/null", "r");
	if (!f)
		return -1;
	snprintf(needle, sizeof(needle), " pid %d ", (int)d->tid);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle) && (p = strstr(line, " mrlen ")) &&
		    strtoull(p + 7, NULL, 10) >= REGION)
			n++;
	return pclose(f) == 0 ? n : -1;
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

static void dst_close(struct dst_run *d)
{
	rdmig_dst_destroy(d->dst);
	dt_guest_fini(&d->g);
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
	dst_close(d);
}

/*
 * The real source migrates to d (which kept listening through whatever
 * came before): two passes, complete, the image exact. Then d is joined
 * and closed, and the attempts it refused are returned.
 */
static uint64_t real_source_completes(struct dst_run *d)
{
	struct rdmig_dirty dirty[2];
	struct rdmig_opts o;
	struct rdmig_src *src;
	struct dt_guest g;
	uint64_t rng = 7, rejected;
	unsigned region;
	int64_t page;

	dt_guest_init(&g, 2, layout_gpa, layout_len);
	dt_guest_fill(&g, &rng);
	memset(g.hva[0] + 5 * DT_PAGE, 0, DT_PAGE); /* a zero-fill order */
	rdmig_opts_init(&o);
	o.timeout_ms = 10000;
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(rdmig_src_add_region(src, g.gpa[i], g.hva[i], g.len[i]), (int)i);
	if (rdmig_src_connect(src, ip, d->port))
		fail_msg("the real source cannot connect: %s", rdmig_last_error());
	if (rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL))
		fail_msg("pass 1: %s", rdmig_last_error());
	dt_guest_write(&g, 16, &rng);
	dt_dirty(&g, dirty);
	if (rdmig_src_pass(src, dirty, 2, 0, NULL) || rdmig_src_complete(src))
		fail_msg("pass 2 or complete: %s", rdmig_last_error());
	rdmig_src_destroy(src);
	pthread_join(d->thread, NULL);
	if (d->ret)
		fail_msg("destination: %d '%s'", d->ret, d->err);
	page = dt_guest_diff(&g, &d->g, &region);
	if (page >= 0)
		fail_msg("page %lld of region %u differs", (long long)page, region);
	assert_int_equal(d->stats.passes, 2);
	rejected = d->stats.rejected;
	dt_guest_fini(&g);
	dst_close(d);
	return rejected;
}

/* ---------------------------------------------------------------------------
 * Endpoints of the rogues: a library endpoint, and the completions of the
 * kind not waited for, kept for later (a reply may come before our SEND's
 * own completion).
 */
struct rep {
	struct rdmig__ep ep;
	struct ibv_wc stash[16];
	unsigned nstash;
};

static const struct rdmig__ep_attr rogue_attr = {
	.send_depth = 8,
	.recv_depth = 8,
	.nrecv = 4,
	.nsend = 2,
	.bufsize = BUFSZ,
	.qp_timeout = 18,
};

/* The rogue destination's: a receive for every NOTICE the source may send ahead, and PASS_END. */
static const struct rdmig__ep_attr rdst_attr = {
	.send_depth = 8,
	.recv_depth = RDMIG__NOTICE_CREDITS + 2,
	.nrecv = RDMIG__NOTICE_CREDITS + 2,
	.nsend = 2,
	.bufsize = BUFSZ,
	.qp_timeout = 18,
};

/* The next completion of `kind` on e within ms; its status, or -1 if none came. */
static int rep_wait(struct rep *e, enum rdmig__wr_kind kind, struct ibv_wc *out, int ms)
{
	uint64_t end = dt_now_ms() + (uint64_t)ms;

	for (unsigned i = 0; i < e->nstash; i++)
		if (rdmig__wr_kind_of(e->stash[i].wr_id) == kind) {
			*out = e->stash[i];
			memmove(&e->stash[i], &e->stash[i + 1],
				(e->nstash - i - 1) * sizeof(e->stash[0]));
			e->nstash--;
			return out->status;
		}
	while (dt_now_ms() < end) {
		struct ibv_wc wc;
		int n = rdmig__cq_wait(e->ep.cq, &wc, 1, 20);

		if (n < 0)
			return -1;
		if (n == 0)
			continue;
		if (rdmig__wr_kind_of(wc.wr_id) == kind) {
			*out = wc;
			return wc.status;
		}
		if (e->nstash < RDMIG__ARRAY_SIZE(e->stash))
			e->stash[e->nstash++] = wc;
	}
	return -1;
}

/* The next completion on e, stashed ones first, without waiting: 1, or 0 if none. */
static int rep_poll(struct rep *e, struct ibv_wc *wc)
{
	if (e->nstash) {
		*wc = e->stash[0];
		memmove(&e->stash[0], &e->stash[1], --e->nstash * sizeof(e->stash[0]));
		return 1;
	}
	return rdmig__xp_poll(e->ep.cq, 1, wc) == 1;
}

/* Posts `len` raw bytes as one SEND on e; returns its completion status. */
static int rep_send_raw(struct rep *e, const void *buf, size_t len)
{
	uint8_t *sbuf = e->ep.bufs + (size_t)e->ep.attr.nrecv * e->ep.attr.bufsize;
	struct ibv_sge sge = { (uintptr_t)sbuf, (uint32_t)len, e->ep.mr->lkey };
	struct ibv_send_wr wr = { .wr_id = rdmig__wr_id(RDMIG__WR_SEND, 0, 0),
				  .sg_list = &sge,
				  .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED };
	struct ibv_send_wr *bad;
	struct ibv_wc wc;

	if (len > e->ep.attr.bufsize)
		return -1;
	memcpy(sbuf, buf, len);
	if (rdmig__xp_post_send(e->ep.id, &wr, &bad))
		return -1;
	return rep_wait(e, RDMIG__WR_SEND, &wc, 5000);
}

/* Encodes m (sealed once e's seal is on) into buf; returns the length. */
static size_t rep_encode(struct rep *e, const struct rdmig__msg *m, uint8_t *buf)
{
	int len = rdmig__ep_encode(&e->ep, m, buf);

	if (len <= 0)
		fail_msg("encode %s: %s", rdmig__msg_type_name(m->type), rdmig_last_error());
	return (size_t)len;
}

static int rep_send(struct rep *e, const struct rdmig__msg *m)
{
	static _Thread_local uint8_t buf[BUFSZ];

	return rep_send_raw(e, buf, rep_encode(e, m, buf));
}

/*
 * The next message's bytes into buf (BUFSZ); their length, or -1 if none
 * came (a flushed receive: the peer is gone).
 */
static int rep_recv_raw(struct rep *e, uint8_t *buf, int ms)
{
	struct ibv_wc wc;
	uint32_t i;

	if (rep_wait(e, RDMIG__WR_RECV, &wc, ms) != IBV_WC_SUCCESS)
		return -1;
	i = rdmig__wr_val_of(wc.wr_id);
	memcpy(buf, rdmig__ep_recv_buf(&e->ep, i), wc.byte_len);
	rdmig__ep_post_recv(&e->ep, i);
	return (int)wc.byte_len;
}

/*
 * The next message, decoded into msg: opened with the seal once it is on,
 * except a plain ERROR (a refusal before the peer took our proof). Returns
 * 0, or -1 with `why` saying what was wrong.
 */
static int rep_recv(struct rep *e, bool *sealed, int ms)
{
	static _Thread_local uint8_t buf[BUFSZ];
	int len = rep_recv_raw(e, buf, ms);

	*sealed = false;
	if (len < 0) {
		snprintf(why, sizeof(why), "nothing arrived");
		return -1;
	}
	if (!rdmig__seal_on(&e->ep.seal))
		return rdmig__msg_decode(buf, (size_t)len, &msg, why, sizeof(why)) ? -1 : 0;
	if (!rdmig__ep_open(&e->ep, buf, (size_t)len, &msg, why, sizeof(why))) {
		*sealed = true;
		return 0;
	}
	if (!rdmig__msg_decode(buf, (size_t)len, &msg, NULL, 0) && msg.type == RDMIG__MSG_ERROR)
		return 0;
	return -1;
}

/* ---------------------------------------------------------------------------
 * The rogue source.
 */
struct rogue {
	const struct rdmig__xp_ops *xp;
	struct rdmig__xp_chan *ch;
	struct rdmig__xp_pd *pd;
	struct rdmig__xp_mr *mr;
	uint8_t page[DT_PAGE];
	struct rep ctrl;
	struct rep data; /* data QP 0, once connected */
	struct sockaddr_storage ss;
	struct rdmig__hs hs;
	uint8_t hello[RDMIG__HS_HELLO_MAX];
	size_t hello_len;
	uint64_t token; /* from HELLO_ACK */
	uint64_t addr[2];
	uint32_t rkey[2];
};

/*
 * Connects one more connection id with CONNECT `conn`; a data connection's
 * tag is made with the session's keys when `tag` says so. Returns 0 or the
 * transport's error (a rejected connection: -ECONNREFUSED).
 */
static int rogue_try_ep(struct rogue *r, struct rep *e, uint32_t epi, struct rdmig__msg *conn,
			bool tag)
{
	struct rdmig__xp_id *id;
	uint8_t pdata[RDMIG__CONNECT_LEN];
	char w[128];
	int len, ret;

	memset(e, 0, sizeof(*e));
	if ((ret = r->xp->id_create(r->ch, &id)))
		return ret;
	if ((ret = r->xp->resolve(id, (struct sockaddr *)&r->ss, 5000))) {
		r->xp->id_destroy(id);
		return ret;
	}
	if (!r->pd) {
		if ((ret = r->xp->pd_alloc(id, &r->pd))) {
			r->xp->id_destroy(id);
			return ret;
		}
		memset(r->page, 0x5a, sizeof(r->page));
		if ((ret = r->xp->mr_reg(r->pd, r->page, sizeof(r->page), 0, &r->mr)))
			return ret;
	}
	if ((ret = rdmig__ep_setup(&e->ep, id, r->pd, NULL, epi, &rogue_attr))) {
		r->xp->id_destroy(id);
		memset(e, 0, sizeof(*e));
		return ret;
	}
	if (tag)
		rdmig__hs_data_tag(&r->hs.keys, conn->connect.index, conn->connect.token,
				   r->xp->qp_num(id), conn->connect.tag);
	len = rdmig__msg_encode(conn, pdata, sizeof(pdata), w, sizeof(w));
	if (len <= 0)
		return -EINVAL;
	return r->xp->connect(id, pdata, (uint8_t)len, 5000);
}

static int rogue_try_connect(struct rogue *r, const char *port)
{
	struct rdmig__msg conn = { .type = RDMIG__MSG_CONNECT };
	int ret;

	memset(r, 0, sizeof(*r));
	r->xp = dt_transport();
	if ((ret = r->xp->chan_create(&r->ch)) || (ret = rdmig__resolve(ip, port, &r->ss)))
		return ret;
	conn.connect.kind = RDMIG__CONN_CTRL;
	return rogue_try_ep(r, &r->ctrl, 0, &conn, false);
}

static void rogue_connect(struct rogue *r, const char *port)
{
	if (rogue_try_connect(r, port))
		fail_msg("connect: %s", rdmig_last_error());
}

/* Data QP 0 of the session, tagged with its keys. */
static void rogue_connect_data(struct rogue *r)
{
	struct rdmig__msg conn = { .type = RDMIG__MSG_CONNECT };

	conn.connect.kind = RDMIG__CONN_DATA;
	conn.connect.token = r->token;
	if (rogue_try_ep(r, &r->data, 1, &conn, true))
		fail_msg("data connect: %s", rdmig_last_error());
	assert_int_equal(rdmig__seal_init(&r->data.ep.seal, r->hs.keys.s2d, r->hs.keys.d2s, 1), 0);
}

static void rogue_close(struct rogue *r)
{
	rdmig__ep_destroy(&r->data.ep);
	rdmig__ep_destroy(&r->ctrl.ep);
	if (r->mr)
		r->xp->mr_dereg(r->mr);
	if (r->pd)
		r->xp->pd_free(r->pd);
	if (r->ch)
		r->xp->chan_destroy(r->ch);
	rdmig__hs_wipe(&r->hs);
}

/* Sends a HELLO offering the key psk (NULL: none). */
static void rogue_hello(struct rogue *r, const uint8_t *psk, size_t psk_len)
{
	struct rdmig__xp_conn_info ci;
	int len;

	memset(&r->hs, 0, sizeof(r->hs));
	r->hs.psk = psk;
	r->hs.psk_len = psk_len;
	r->hs.ver_min = RDMIG__PROTO_MIN;
	r->hs.ver_max = RDMIG__PROTO_VERSION;
	r->hs.caps = RDMIG__CAPS;
	assert_int_equal(r->xp->conn_info(r->ctrl.ep.id, &ci), 0);
	rdmig__hs_bind(&r->hs, &ci, true);
	len = rdmig__hs_src_hello(&r->hs, r->hello, sizeof(r->hello), why, sizeof(why));
	assert_true(len > 0);
	r->hello_len = (size_t)len;
	assert_int_equal(rep_send_raw(&r->ctrl, r->hello, r->hello_len), IBV_WC_SUCCESS);
}

/* The destination's answer to HELLO, checked by the handshake: its result. */
static int rogue_challenge(struct rogue *r)
{
	static _Thread_local uint8_t buf[BUFSZ];
	int len = rep_recv_raw(&r->ctrl, buf, 5000);

	assert_true(len > 0);
	return rdmig__hs_src_challenge(&r->hs, buf, (size_t)len, why, sizeof(why));
}

/* Our proposal for the destination's layout, as AUTH (with its proof) into out. */
static size_t rogue_auth_bytes(struct rogue *r, uint32_t flags, uint8_t *out)
{
	int len;

	memset(&msg, 0, sizeof(msg));
	msg.auth.page_size = DT_PAGE;
	msg.auth.nqps = 1;
	msg.auth.nregions = 2;
	for (unsigned i = 0; i < 2; i++)
		msg.auth.regions[i] = (struct rdmig__wire_region){ layout_gpa[i], layout_len[i] };
	msg.auth.flags = flags;
	len = rdmig__hs_src_auth(&r->hs, &msg, out, BUFSZ, why, sizeof(why));
	if (len <= 0)
		fail_msg("AUTH: %s", why);
	return (size_t)len;
}

/*
 * The source's proof again over AUTH bytes we changed (handshake.c's
 * src_proof: HELLO, CHALLENGE, the binding, AUTH up to its proof), so the
 * destination takes them as the key holder's and reads what they say.
 */
static void rogue_reprove(struct rogue *r, uint8_t *auth, size_t len)
{
	struct rdmig__piece p[4] = { { r->hs.hello, r->hs.hello_len },
				     { r->hs.chall, r->hs.chall_len },
				     { r->hs.binding, sizeof(r->hs.binding) },
				     { auth, len - RDMIG__KEY_LEN } };

	assert_int_equal(rdmig__hmac(r->hs.keys.src_proof, p, 4, auth + len - RDMIG__KEY_LEN,
				     RDMIG__KEY_LEN),
			 0);
}

/* Everything after AUTH is sealed. */
static void rogue_seal(struct rogue *r)
{
	assert_int_equal(rdmig__seal_init(&r->ctrl.ep.seal, r->hs.keys.s2d, r->hs.keys.d2s, 0), 0);
}

/* Receives one message and checks its type (and that it was sealed, if asked). */
static void rogue_expect(struct rogue *r, unsigned want_type, bool want_sealed)
{
	bool sealed;

	if (rep_recv(&r->ctrl, &sealed, 5000))
		fail_msg("expected %s: %s", rdmig__msg_type_name(want_type), why);
	if (msg.type != want_type)
		fail_msg("got %s, expected %s%s%s", rdmig__msg_type_name(msg.type),
			 rdmig__msg_type_name(want_type), msg.type == RDMIG__MSG_ERROR ? ": " : "",
			 msg.type == RDMIG__MSG_ERROR ? msg.error.text : "");
	if (want_sealed && !sealed)
		fail_msg("%s was not sealed", rdmig__msg_type_name(msg.type));
}

static void expect_error_text(const char *want)
{
	if (!strstr(msg.error.text, want))
		fail_msg("ERROR to the rogue says '%s', expected '%s'", msg.error.text, want);
}

/*
 * Connects and authenticates with the run's key, AUTH flags `flags`: the
 * destination answers with a sealed HELLO_ACK, whose token and rkeys are
 * kept.
 */
static void rogue_login(struct rogue *r, const char *port, uint32_t flags)
{
	static uint8_t auth[BUFSZ];

	rogue_connect(r, port);
	rogue_hello(r, run_key, run_key_len);
	if (rogue_challenge(r))
		fail_msg("CHALLENGE: %s", why);
	assert_int_equal(rep_send_raw(&r->ctrl, auth, rogue_auth_bytes(r, flags, auth)),
			 IBV_WC_SUCCESS);
	rogue_seal(r);
	rogue_expect(r, RDMIG__MSG_HELLO_ACK, true);
	r->token = msg.hello_ack.token;
	for (unsigned i = 0; i < 2; i++) {
		r->addr[i] = msg.hello_ack.regions[i].addr;
		r->rkey[i] = msg.hello_ack.regions[i].rkey;
	}
}

/*
 * One RDMA WRITE of our page to addr/rkey on e (the control QP or the data
 * QP); its status, or -2 if it could not be posted.
 */
static int rogue_write(struct rogue *r, struct rep *e, uint64_t addr, uint32_t rkey)
{
	struct ibv_sge sge = { (uintptr_t)r->page, DT_PAGE, r->mr->lkey };
	struct ibv_send_wr wr, *bad;
	struct ibv_wc wc;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = rdmig__wr_id(RDMIG__WR_WRITE, 0, 0);
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = addr;
	wr.wr.rdma.rkey = rkey;
	if (rdmig__xp_post_send(e->ep.id, &wr, &bad))
		return -2;
	return rep_wait(e, RDMIG__WR_WRITE, &wc, 5000);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ---------------------------------------------------------------------------
 * A rogue that holds the key sends a proposal the destination must refuse.
 * It proved the key, so it is the source, a broken one: it hears why, and
 * the destination's run fails with that reason, never having registered
 * guest memory. An AUTH too big for any buffer proves nothing (it never
 * arrives): that attempt is a stranger's, and the real source then
 * completes.
 */
static void bad_auth(void (*patch)(uint8_t *buf, size_t *len), const char *want, int want_ret,
		     bool answered)
{
	static uint8_t buf[BUFSZ];
	struct dst_run d;
	struct rogue r;
	size_t len;

	dst_start(&d);
	rogue_connect(&r, d.port);
	rogue_hello(&r, run_key, run_key_len);
	assert_int_equal(rogue_challenge(&r), 0);
	memset(buf, 0, sizeof(buf));
	len = rogue_auth_bytes(&r, RDMIG__AUTH_NOTICES, buf);
	patch(buf, &len);
	rogue_reprove(&r, buf, len);
	if (answered) {
		assert_int_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
		rogue_expect(&r, RDMIG__MSG_ERROR, false);
		expect_error_text(want);
		rogue_close(&r);
		dst_finish(&d, want_ret, want);
		return;
	} else {
		/* Too big for any receive buffer: the transport refuses it and
		 * the connection breaks before an ERROR could go back. */
		assert_int_not_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
	}
	assert_int_equal(guest_mrs(&d), 0);
	assert_untouched(&d.g, 0, 0);
	rogue_close(&r);
	assert_int_equal(real_source_completes(&d), 1);
}

/* AUTH's fields: the header, 16 bytes of fixed part, then the regions. */
#define AUTH_REGIONS (RDMIG__HDR_LEN + 16)

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
	/* Region 1's gpa moved into region 0: 0x1000. */
	for (unsigned i = 0; i < 8; i++)
		buf[AUTH_REGIONS + 16 + i] = i == 1 ? 0x10 : 0;
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

static void wrong_size(uint8_t *buf, size_t *len)
{
	(void)len;
	buf[AUTH_REGIONS + 8 + 2] = 0x20; /* region 0: 2 MiB */
}

static void auth_truncated_refused_nothing_registered(void **state)
{
	(void)state;
	bad_auth(cut_short, "arrived", -EBADMSG, true);
}

static void auth_unknown_version_refused(void **state)
{
	(void)state;
	bad_auth(bad_version, "unsupported protocol version 7", -EPROTO, true);
}

static void auth_overlapping_regions_refused(void **state)
{
	(void)state;
	bad_auth(overlapping, "overlap", -EBADMSG, true);
}

static void auth_length_lie_refused(void **state)
{
	(void)state;
	bad_auth(claims_more, "header says", -EBADMSG, true);
}

static void auth_oversized_refused(void **state)
{
	(void)state;
	bad_auth(too_big, "", 0, false);
}

/*
 * A proposal that is well formed but does not match: refused after the
 * proof, so it ends the session (the key holder is the source), naming the
 * mismatch; nothing was registered.
 */
static void auth_layout_mismatch_fails_session(void **state)
{
	static uint8_t buf[BUFSZ];
	struct dst_run d;
	struct rogue r;
	size_t len;

	(void)state;
	dst_start(&d);
	rogue_connect(&r, d.port);
	rogue_hello(&r, run_key, run_key_len);
	assert_int_equal(rogue_challenge(&r), 0);
	len = rogue_auth_bytes(&r, 0, buf);
	wrong_size(buf, &len);
	rogue_reprove(&r, buf, len);
	assert_int_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
	rogue_seal(&r);
	rogue_expect(&r, RDMIG__MSG_ERROR, true);
	expect_error_text("region layout mismatch");
	dst_finish(&d, -EINVAL, "is 0x200000 bytes at the source but 0x100000");
	rogue_close(&r);
}

/*
 * A peer that got the rkeys writes on its data QP (allowed: the session
 * runs), then sends something the destination refuses: it fails, and a
 * write with the same rkey no longer lands. `sealed`: the garbage carries
 * a valid seal (so the decoder behind the MAC sees it), else it fails the
 * MAC.
 */
static void garbage_withdraws_memory(bool sealed, int want_ret, const char *want)
{
	static uint8_t buf[BUFSZ];
	struct dst_run d;
	struct rogue r;
	int st;

	dst_start(&d);
	rogue_login(&r, d.port, RDMIG__AUTH_NOTICES);
	assert_true(guest_mrs(&d) == 2); /* both regions are exposed now */
	rogue_connect_data(&r);
	assert_int_equal(rogue_write(&r, &r.data, r.addr[0], r.rkey[0]), IBV_WC_SUCCESS);

	memset(buf, 0xee, 64); /* no magic: garbage */
	if (sealed)
		assert_int_equal(rdmig__seal_tx(&r.ctrl.ep.seal, buf, 64), 0);
	assert_int_equal(rep_send_raw(&r.ctrl, buf, 64), IBV_WC_SUCCESS);
	rogue_expect(&r, RDMIG__MSG_ERROR, true);
	pthread_join(d.thread, NULL);

	/* The session is over: a second write must not land. */
	st = rogue_write(&r, &r.data, r.addr[0] + DT_PAGE, r.rkey[0]);
	print_message("write after the failure: %s\n",
		      st >= 0 ? ibv_wc_status_str((enum ibv_wc_status)st) : "not posted");
	assert_int_not_equal(st, IBV_WC_SUCCESS);
	if (d.ret != want_ret || !strstr(d.err, want))
		fail_msg("destination returned %d '%s'", d.ret, d.err);
	assert_int_equal(dt_mr_count(d.tid), 0);
	/* Only the first page, written during the session, changed. */
	assert_untouched(&d.g, 0, DT_PAGE);
	assert_int_equal(d.g.hva[0][0], 0x5a);
	rogue_close(&r);
	dst_close(&d);
}

static void garbage_after_auth_fails_mac_withdraws_memory(void **state)
{
	(void)state;
	garbage_withdraws_memory(false, -EBADMSG, "bad MAC (message 0 on channel 0)");
}

static void sealed_garbage_after_auth_withdraws_memory(void **state)
{
	(void)state;
	garbage_withdraws_memory(true, -EBADMSG, "bad magic");
}

/*
 * The control QP is in a protection domain of its own: a source that
 * holds valid rkeys cannot write guest memory through it, only through the
 * data QPs, the ones COMPLETE and every failure move to error. (The write
 * fails the control connection too, as a remote access error does.)
 */
static void control_qp_cannot_write_guest_memory(void **state)
{
	struct dst_run d;
	struct rogue r;
	int st;

	(void)state;
	dst_start(&d);
	rogue_login(&r, d.port, 0);
	rogue_connect_data(&r);
	assert_true(guest_mrs(&d) == 2);
	st = rogue_write(&r, &r.ctrl, r.addr[0], r.rkey[0]);
	print_message("write on the control QP: %s\n",
		      st >= 0 ? ibv_wc_status_str((enum ibv_wc_status)st) : "not posted");
	assert_int_not_equal(st, IBV_WC_SUCCESS);
	st = rogue_write(&r, &r.ctrl, r.addr[1] + DT_PAGE, r.rkey[1]);
	assert_int_not_equal(st, IBV_WC_SUCCESS);
	rogue_close(&r);
	pthread_join(d.thread, NULL);
	print_message("destination: %d '%s'\n", d.ret, d.err);
	assert_true(d.ret < 0);
	assert_int_equal(dt_mr_count(d.tid), 0);
	assert_untouched(&d.g, 0, 0);
	dst_close(&d);
}

/* Runs pass 1 by hand: the source's PASS_END on data QP 0, the destination's PASS_ACK. */
static void rogue_pass(struct rogue *r, uint64_t bytes)
{
	memset(&msg, 0, sizeof(msg));
	msg.type = RDMIG__MSG_PASS_END;
	msg.pass_end.pass = 1;
	msg.pass_end.qp = 0;
	msg.pass_end.bytes = bytes;
	assert_int_equal(rep_send(&r->data, &msg), IBV_WC_SUCCESS);
	rogue_expect(r, RDMIG__MSG_PASS_ACK, true);
	assert_int_equal(msg.pass_ack.pass, 1);
}

/*
 * COMPLETE revokes remote access before it is acknowledged (DESIGN.md
 * invariant 6): the data QP is in error by the time COMPLETE_ACK is
 * posted, so a WRITE with a valid rkey after it lands nowhere. Over
 * loopback the ACK is held in the destination's send queue (a delay
 * fault) and the WRITE goes while the session still stands, its guest
 * memory still registered: only the QP in error stops it. After the run
 * (it completed) guest memory is deregistered by destroy at the latest.
 */
static void complete_revokes_access_before_ack(void **state)
{
	struct rdmig__loop_fault_state fs;
	struct dst_run d;
	struct rogue r;
	int st;

	(void)state;
	dst_start(&d);
	rogue_login(&r, d.port, 0);
	rogue_connect_data(&r);
	assert_int_equal(rogue_write(&r, &r.data, r.addr[0], r.rkey[0]), IBV_WC_SUCCESS);
	rogue_pass(&r, DT_PAGE);

	if (dt_loopback()) {
		/* The destination's next control SEND is the ACK: held 1.5 s. */
		struct rdmig__loop_fault f = { .kind = RDMIG__LOOP_FAULT_DELAY,
					       .wr_class = RDMIG__LOOP_WR_PASSIVE,
					       .nth = 1,
					       .delay_ms = 1500 };

		rdmig__loopback_set_fault(&f);
	}
	memset(&msg, 0, sizeof(msg));
	msg.type = RDMIG__MSG_COMPLETE;
	msg.complete.passes = 1;
	assert_int_equal(rep_send(&r.ctrl, &msg), IBV_WC_SUCCESS);
	if (dt_loopback()) {
		uint64_t end = dt_now_ms() + 5000;

		do {
			rdmig__loopback_fault_state(&fs);
			usleep(1000);
		} while (!fs.fired && dt_now_ms() < end);
		assert_true(fs.fired);		    /* the ACK is posted: access must be gone */
		assert_int_equal(guest_mrs(&d), 2); /* still registered... */
		st = rogue_write(&r, &r.data, r.addr[0] + DT_PAGE, r.rkey[0]);
		rdmig__loopback_fault_state(&fs);
		/* ...but unreachable, and the session stood meanwhile. */
		assert_true(dt_now_ms() < fs.fired_ns / 1000000 + 1500);
		print_message("write while COMPLETE_ACK is held: %s\n",
			      st >= 0 ? ibv_wc_status_str((enum ibv_wc_status)st) : "not posted");
		assert_int_not_equal(st, IBV_WC_SUCCESS);
	}
	rogue_expect(&r, RDMIG__MSG_COMPLETE_ACK, true);
	assert_int_equal(msg.complete.passes, 1);
	st = rogue_write(&r, &r.data, r.addr[1], r.rkey[1]);
	print_message("write after COMPLETE_ACK: %s\n",
		      st >= 0 ? ibv_wc_status_str((enum ibv_wc_status)st) : "not posted");
	assert_int_not_equal(st, IBV_WC_SUCCESS);
	rdmig__loopback_set_fault(NULL);
	rogue_close(&r);
	pthread_join(d.thread, NULL);
	if (d.ret)
		fail_msg("destination: %d '%s'", d.ret, d.err);
	assert_int_equal(d.stats.passes, 1);
	print_message("destination: COMPLETE to COMPLETE_ACK posted in %.3f ms\n",
		      (double)d.stats.complete_ns / 1e6);
	assert_true(d.stats.complete_ns > 0);
	/* Only the page written while the session ran changed. */
	assert_untouched(&d.g, 0, DT_PAGE);
	assert_int_equal(d.g.hva[0][0], 0x5a);
	rdmig_dst_destroy(d.dst);
	d.dst = NULL;
	assert_int_equal(dt_mr_count(d.tid), 0);
	assert_int_equal(dt_mr_count(getpid()), 0);
	dt_guest_fini(&d.g);
}

/*
 * A source that authenticated and got onto a data QP sends a NOTICE the
 * destination must refuse. Every NOTICE orders its pages first..first +
 * npages - 1 zeroed, so guest memory still holding the pattern proves
 * nothing was applied.
 */
static void bad_notice(uint32_t auth_flags, uint64_t pass, uint32_t region, uint64_t first,
		       uint32_t npages, int want_ret, const char *want)
{
	struct dst_run d;
	struct rogue r;

	dst_start(&d);
	rogue_login(&r, d.port, auth_flags);
	rogue_connect_data(&r);

	memset(&msg, 0, sizeof(msg));
	msg.type = RDMIG__MSG_NOTICE;
	msg.notice.pass = pass;
	msg.notice.region = region;
	msg.notice.npages = npages;
	for (uint32_t i = 0; i < npages; i++)
		msg.notice.page[i] = (first + i) | RDMIG__NOTICE_ZERO;
	assert_int_equal(rep_send(&r.data, &msg), IBV_WC_SUCCESS);
	rogue_expect(&r, RDMIG__MSG_ERROR, true);
	expect_error_text(want);
	dst_finish(&d, want_ret, want);
	rogue_close(&r);
}

static void notice_region_out_of_range_refused(void **state)
{
	(void)state;
	bad_notice(RDMIG__AUTH_NOTICES, 1, 2, 0, 8, -EBADMSG, "NOTICE for region 2 of 2");
}

static void notice_pages_past_region_end_refused(void **state)
{
	(void)state;
	bad_notice(RDMIG__AUTH_NOTICES, 1, 0, NPAGES - 4, 8, -EBADMSG, "which has 256");
}

static void notice_wrong_pass_refused(void **state)
{
	(void)state;
	bad_notice(RDMIG__AUTH_NOTICES, 5, 0, 0, 8, -EPROTO, "NOTICE for pass 5");
}

static void notice_not_announced_refused(void **state)
{
	(void)state;
	bad_notice(0, 1, 0, 0, 8, -EPROTO, "announced none");
}

/*
 * Sealed messages changed after the handshake: a flipped byte fails the
 * MAC, the same message twice fails the sequence number, one skipped
 * fails it too, and a NOTICE forged on a data QP fails there. Each ends
 * the session with an error naming the MAC or the sequence number, and
 * memory is withdrawn.
 */
enum tamper {
	T_FLIP,
	T_REPLAY,
	T_SKIP,
	T_DATA_FLIP,
	T_MOVED
};

static void tampered(enum tamper how, int want_ret, const char *want)
{
	static uint8_t buf[BUFSZ];
	struct dst_run d;
	struct rogue r;
	size_t len;

	dst_start(&d);
	rogue_login(&r, d.port, RDMIG__AUTH_NOTICES);
	memset(&msg, 0, sizeof(msg));
	msg.type = RDMIG__MSG_PROGRESS; /* one the destination takes silently */
	msg.progress.pass = 1;
	switch (how) {
	case T_FLIP:
		len = rep_encode(&r.ctrl, &msg, buf);
		buf[RDMIG__HDR_LEN + 9] ^= 0x01; /* elapsed_ms */
		assert_int_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
		break;
	case T_REPLAY:
		len = rep_encode(&r.ctrl, &msg, buf);
		assert_int_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
		assert_int_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
		break;
	case T_SKIP:
		rep_encode(&r.ctrl, &msg, buf); /* sequence number 0, never sent */
		assert_int_equal(rep_send(&r.ctrl, &msg), IBV_WC_SUCCESS);
		break;
	case T_DATA_FLIP:
		rogue_connect_data(&r);
		memset(&msg, 0, sizeof(msg));
		msg.type = RDMIG__MSG_NOTICE;
		msg.notice.pass = 1;
		msg.notice.npages = 1;
		msg.notice.page[0] = 3 | RDMIG__NOTICE_ZERO;
		len = rep_encode(&r.data, &msg, buf);
		buf[RDMIG__HDR_LEN + 16] ^= 0x04; /* page 3 -> page 7 */
		assert_int_equal(rep_send_raw(&r.data, buf, len), IBV_WC_SUCCESS);
		break;
	case T_MOVED:
		/* Sealed for the control channel, sent on a data QP. */
		rogue_connect_data(&r);
		len = rep_encode(&r.ctrl, &msg, buf);
		assert_int_equal(rep_send_raw(&r.data, buf, len), IBV_WC_SUCCESS);
		break;
	}
	rogue_expect(&r, RDMIG__MSG_ERROR, true);
	dst_finish(&d, want_ret, want);
	rogue_close(&r);
}

static void sealed_message_flipped_byte_fails_mac(void **state)
{
	(void)state;
	tampered(T_FLIP, -EBADMSG, "bad MAC (message 0 on channel 0): forged or corrupted");
}

static void sealed_message_replayed_fails_sequence(void **state)
{
	(void)state;
	tampered(T_REPLAY, -EPROTO, "sequence number 0 on channel 0, expected 1: a replayed");
}

static void sealed_message_skipped_fails_sequence(void **state)
{
	(void)state;
	tampered(T_SKIP, -EPROTO,
		 "sequence number 1 on channel 0, expected 0: a message is missing");
}

static void data_message_flipped_byte_fails_mac(void **state)
{
	(void)state;
	tampered(T_DATA_FLIP, -EBADMSG, "data connection 1: bad MAC (message 0 on channel 1)");
}

static void control_message_on_data_qp_fails_mac(void **state)
{
	(void)state;
	tampered(T_MOVED, -EBADMSG, "data connection 1: bad MAC (message 0 on channel 1)");
}

/* ---------------------------------------------------------------------------
 * Strangers: peers without the key.
 */

/* The destination's guest addresses as they would travel (8 bytes, LE). */
static bool holds_layout(const struct dst_run *d, const uint8_t *buf, size_t len)
{
	for (unsigned i = 0; i < 2; i++) {
		uint64_t a = (uintptr_t)d->g.hva[i];

		for (size_t off = 0; off + 8 <= len; off++)
			if (!memcmp(buf + off, &a, 8))
				return true;
	}
	return false;
}

/*
 * What a stranger may be told: that it failed to authenticate, that the
 * auth modes or versions differ, or what was wrong with its own bytes;
 * never the destination's layout, page size or anything after the proof.
 */
static void assert_stranger_told_nothing(const struct dst_run *d, const uint8_t *buf, size_t len)
{
	static const char *const allowed[] = { "authentication failed", "authentication mismatch",
					       "no common protocol version", "bad first message",
					       "expected HELLO first" };
	bool ok = false;

	assert_false(holds_layout(d, buf, len));
	assert_true(len >= RDMIG__HDR_LEN);
	if ((buf[6] | buf[7] << 8) == RDMIG__MSG_CHALLENGE)
		return; /* a nonce and a proof of the key: nothing else */
	assert_int_equal(rdmig__msg_decode(buf, len, &msg, why, sizeof(why)), 0);
	if (msg.type != RDMIG__MSG_ERROR)
		fail_msg("a stranger got %s", rdmig__msg_type_name(msg.type));
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(allowed); i++)
		ok |= !strncmp(msg.error.text, allowed[i], strlen(allowed[i]));
	if (!ok || strstr(msg.error.text, "region") || strstr(msg.error.text, "page size"))
		fail_msg("a stranger was told '%s'", msg.error.text);
	print_message("stranger told: %s\n", msg.error.text);
}

/* The next message to a stranger, checked; returns its type (0: none came). */
static unsigned stranger_reply(const struct dst_run *d, struct rogue *r, int ms)
{
	static uint8_t buf[BUFSZ];
	int len = rep_recv_raw(&r->ctrl, buf, ms);

	if (len < 0)
		return 0;
	assert_stranger_told_nothing(d, buf, (size_t)len);
	return buf[6] | buf[7] << 8;
}

/* What a rogue pins itself: its endpoints' buffers and its page, in KiB. */
static long rogue_pin_kb(unsigned eps)
{
	return (long)(eps * ((rogue_attr.nrecv + rogue_attr.nsend) * BUFSZ + DT_PAGE) +
		      2 * DT_PAGE) /
	       1024;
}

/*
 * While strangers are there: no guest memory registered, and nothing
 * pinned but message buffers: the `eps` endpoints of our rogues and the
 * destination's pending connections (128 KiB each); one region of guest
 * memory would be REGION more.
 */
static void assert_nothing_exposed(const struct dst_run *d, long pin_before, unsigned eps)
{
	long pin = vm_pin_kb(), own = rogue_pin_kb(eps);

	assert_int_equal(guest_mrs(d), 0);
	if (pin - pin_before - own >= (long)(REGION / 1024))
		fail_msg("VmPin grew from %ld to %ld kB (%ld kB of it our rogues') while strangers "
			 "were connected",
			 pin_before, pin, own);
}

enum stranger {
	S_NO_KEY,
	S_WRONG_KEY,
	S_GARBAGE,
	S_NOT_HELLO,
	S_AUTH_FIRST
};

/* A stranger of kind `how` tries once; it gets nothing, and is counted. */
static void stranger_try(struct dst_run *d, enum stranger how, long pin_before)
{
	static uint8_t buf[BUFSZ];
	uint8_t wrong[32];
	struct rogue r;
	size_t len;

	rogue_connect(&r, d->port);
	switch (how) {
	case S_NO_KEY:
		rogue_hello(&r, NULL, 0);
		assert_int_equal(stranger_reply(d, &r, 5000), RDMIG__MSG_ERROR);
		expect_error_text("authentication mismatch");
		break;
	case S_WRONG_KEY:
		memset(wrong, 0x42, sizeof(wrong));
		rogue_hello(&r, wrong, sizeof(wrong));
		/* The destination proves its key in CHALLENGE: not ours. */
		assert_int_equal(rogue_challenge(&r), -EACCES);
		assert_non_null(strstr(why, "authentication failed"));
		assert_nothing_exposed(d, pin_before, 1);
		/* It answers anyway, with a proof under its own key. */
		assert_int_equal(rdmig__keys_derive(wrong, sizeof(wrong), r.hs.nonce_src,
						    r.hs.nonce_dst, &r.hs.keys),
				 0);
		r.hs.step = RDMIG__HS_SRC_CHALLENGE_OK;
		len = rogue_auth_bytes(&r, RDMIG__AUTH_NOTICES, buf);
		assert_int_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
		assert_int_equal(stranger_reply(d, &r, 5000), RDMIG__MSG_ERROR);
		assert_string_equal(msg.error.text, "authentication failed");
		break;
	case S_GARBAGE:
		memset(buf, 0xee, 200);
		assert_int_equal(rep_send_raw(&r.ctrl, buf, 200), IBV_WC_SUCCESS);
		assert_int_equal(stranger_reply(d, &r, 5000), RDMIG__MSG_ERROR);
		break;
	case S_NOT_HELLO:
		/* A PROGRESS straight away. */
		memset(&msg, 0, sizeof(msg));
		msg.type = RDMIG__MSG_PROGRESS;
		msg.progress.pass = 1;
		len = rep_encode(&r.ctrl, &msg, buf);
		assert_int_equal(rep_send_raw(&r.ctrl, buf, len), IBV_WC_SUCCESS);
		assert_int_equal(stranger_reply(d, &r, 5000), RDMIG__MSG_ERROR);
		break;
	case S_AUTH_FIRST:
		/* A HELLO, then a second HELLO where AUTH belongs. */
		rogue_hello(&r, run_key, run_key_len);
		assert_int_equal(stranger_reply(d, &r, 5000), RDMIG__MSG_CHALLENGE);
		assert_nothing_exposed(d, pin_before, 1);
		assert_int_equal(rep_send_raw(&r.ctrl, r.hello, r.hello_len), IBV_WC_SUCCESS);
		assert_int_equal(stranger_reply(d, &r, 5000), RDMIG__MSG_ERROR);
		assert_string_equal(msg.error.text, "authentication failed");
		break;
	}
	assert_nothing_exposed(d, pin_before, 1);
	/* Nothing more comes: the destination closed (at most a flush). */
	assert_int_equal(stranger_reply(d, &r, 300), 0);
	rogue_close(&r);
}

/*
 * One destination, strangers one after the other, each refused with no
 * more than the allowed words; guest memory never registered; then the
 * real source migrates, and every attempt was counted.
 */
static void strangers_refused_then_real_source_completes(void **state)
{
	static const enum stranger all[] = { S_NO_KEY, S_WRONG_KEY, S_GARBAGE, S_NOT_HELLO,
					     S_AUTH_FIRST };
	struct dst_run d;
	long pin0;

	(void)state;
	dst_start(&d);
	pin0 = vm_pin_kb();
	print_message("VmPin listening: %ld kB\n", pin0);
	for (unsigned i = 0; i < RDMIG__ARRAY_SIZE(all); i++)
		stranger_try(&d, all[i], pin0);
	assert_int_equal(guest_mrs(&d), 0);
	assert_int_equal(real_source_completes(&d), RDMIG__ARRAY_SIZE(all));
}

/*
 * Strangers that say nothing (or stop after HELLO) are dropped once
 * RDMIG_AUTH_TIMEOUT_MS has passed, told only "authentication failed";
 * while they wait nothing is registered; then the real source gets in.
 */
static void silent_strangers_dropped_after_auth_timeout(void **state)
{
	enum {
		TMO = 300
	};
	struct rogue quiet, halfway;
	struct dst_run d;
	uint64_t t0, took;
	long pin0;
	unsigned type;

	(void)state;
	dst_start_opts(&d, TMO);
	pin0 = vm_pin_kb();
	t0 = dt_now_ms();
	rogue_connect(&quiet, d.port);
	rogue_connect(&halfway, d.port);
	rogue_hello(&halfway, run_key, run_key_len);
	assert_int_equal(stranger_reply(&d, &halfway, 5000), RDMIG__MSG_CHALLENGE);
	assert_nothing_exposed(&d, pin0, 2);

	type = stranger_reply(&d, &quiet, 5000);
	took = dt_now_ms() - t0;
	print_message("a silent stranger dropped after %llu ms\n", (unsigned long long)took);
	/* The ERROR may lose the race with the disconnect; either way it is gone. */
	assert_true(type == 0 || type == RDMIG__MSG_ERROR);
	if (type)
		expect_error_text("authentication failed"); /* and no more: not its timeout */
	assert_true(took >= TMO - 50 && took < TMO + 3000);
	type = stranger_reply(&d, &halfway, 5000);
	assert_true(type == 0 || type == RDMIG__MSG_ERROR);
	assert_int_equal(guest_mrs(&d), 0);
	rogue_close(&quiet);
	rogue_close(&halfway);
	assert_int_equal(real_source_completes(&d), 2);
}

/*
 * A data connection from a stranger that knows the session's token (it
 * travels sealed, but say it leaked) and not its keys: no tag, a tag made
 * with another key, a tag for another QP's number: each refused, and the
 * session goes on (its own data QP still gets in).
 */
static void data_qp_without_session_tag_refused(void **state)
{
	struct rdmig__msg conn = { .type = RDMIG__MSG_CONNECT };
	struct rogue r, s;
	struct rep e;
	struct dst_run d;
	uint8_t other[32];
	int ret;

	(void)state;
	dst_start(&d);
	rogue_login(&r, d.port, RDMIG__AUTH_NOTICES);
	conn.connect.kind = RDMIG__CONN_DATA;
	conn.connect.token = r.token;

	memset(&s, 0, sizeof(s));
	s.xp = dt_transport();
	assert_int_equal(s.xp->chan_create(&s.ch), 0);
	assert_int_equal(rdmig__resolve(ip, d.port, &s.ss), 0);
	/* No tag at all. */
	ret = rogue_try_ep(&s, &e, 1, &conn, false);
	assert_int_not_equal(ret, 0);
	rdmig__ep_destroy(&e.ep);
	/* A tag under keys derived from another key. */
	memset(other, 0x17, sizeof(other));
	assert_int_equal(rdmig__keys_derive(other, sizeof(other), r.hs.nonce_src, r.hs.nonce_dst,
					    &s.hs.keys),
			 0);
	ret = rogue_try_ep(&s, &e, 1, &conn, true);
	assert_int_not_equal(ret, 0);
	rdmig__ep_destroy(&e.ep);
	/* The session's own tag, but over another QP's number (one seen on the wire). */
	assert_int_equal(rdmig__hs_data_tag(&r.hs.keys, 0, r.token, r.xp->qp_num(r.ctrl.ep.id),
					    conn.connect.tag),
			 0);
	ret = rogue_try_ep(&s, &e, 1, &conn, false);
	assert_int_not_equal(ret, 0);
	rdmig__ep_destroy(&e.ep);
	rogue_close(&s);
	assert_int_equal(guest_mrs(&d), 2); /* the session still runs */

	rogue_connect_data(&r); /* the session's own gets in */
	rogue_close(&r);
	pthread_join(d.thread, NULL);
	/* The disconnect, or the flush it causes, whichever the destination sees first. */
	if (d.ret != -ECONNRESET || !strstr(d.err, "the source"))
		fail_msg("destination returned %d '%s'", d.ret, d.err);
	assert_int_equal(d.stats.rejected, 3);
	assert_int_equal(dt_mr_count(d.tid), 0);
	dst_close(&d);
}

/* Strangers that connect and try while the real source migrates. */
struct flood {
	const char *port;
	unsigned n;
	volatile bool go;
	unsigned refused, answered, other;
	int last_err;
};

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	struct rogue *r = malloc(sizeof(*r));

	while (!f->go)
		usleep(1000);
	for (unsigned i = 0; r && i < f->n; i++) {
		int ret = rogue_try_connect(r, f->port);

		if (ret) {
			f->refused++;
			f->last_err = ret;
		} else {
			/* Let in: what it gets is checked by the main thread's counts. */
			uint8_t junk[64];
			int len;

			memset(junk, 0xee, sizeof(junk));
			len = rep_send_raw(&r->ctrl, junk, sizeof(junk));
			if (len == IBV_WC_SUCCESS && rep_recv_raw(&r->ctrl, junk, 2000) > 0)
				f->answered++;
			else
				f->other++;
		}
		rogue_close(r);
	}
	free(r);
	return NULL;
}

/*
 * A flood of 16 strangers. First before the source: 16 connections held
 * open at once; only DST_MAX_PENDING (4) are let in to authenticate, the
 * rest are refused at connect, nothing is registered, and the 4 are
 * dropped at the auth timeout. Then 16 more from a thread while the real
 * source migrates (each refused: a session runs); the migration completes
 * exact and all 32 were counted.
 */
static void flood_of_strangers_real_source_completes(void **state)
{
	enum {
		N = 16
	};
	static struct rogue held[N];
	bool let_in[N];
	struct rdmig_dirty dirty[2];
	struct rdmig_src *src;
	struct rdmig_opts o;
	struct dt_guest g;
	struct dst_run d;
	struct flood f = { 0 };
	pthread_t th;
	unsigned in = 0, out = 0, region;
	uint64_t rng = 9;
	long pin0;
	int64_t page;

	(void)state;
	dst_start_opts(&d, 2000);
	pin0 = vm_pin_kb();
	for (unsigned i = 0; i < N; i++) {
		let_in[i] = !rogue_try_connect(&held[i], d.port);
		in += let_in[i];
		out += !let_in[i];
	}
	/* Each newcomer takes the slot of the one that waited longest: all are
	 * let in, at most PENDING_MAX at a time, the others dropped. */
	print_message("burst of %u: %u let in to authenticate, %u refused\n", N, in, out);
	assert_int_equal(in, N);
	assert_int_equal(out, 0);
	assert_nothing_exposed(&d, pin0, N); /* the strangers' own buffers are counted */

	/* The last PENDING_MAX hold every slot, silent: the real source gets in
	 * at once all the same, without waiting for their timeout. */
	dt_guest_init(&g, 2, layout_gpa, layout_len);
	dt_guest_fill(&g, &rng);
	rdmig_opts_init(&o);
	o.timeout_ms = 10000;
	assert_int_equal(rdmig_src_create(&o, &src), 0);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(rdmig_src_add_region(src, g.gpa[i], g.hva[i], g.len[i]), (int)i);
	if (rdmig_src_connect(src, ip, d.port))
		fail_msg("the real source cannot connect: %s", rdmig_last_error());
	/* The strangers heard nothing but their dismissal. */
	for (unsigned i = 0; i < N; i++) {
		assert_true(stranger_reply(&d, &held[i], 3000) != RDMIG__MSG_CHALLENGE);
		rogue_close(&held[i]);
	}
	f.port = d.port;
	f.n = N;
	assert_int_equal(pthread_create(&th, NULL, flood_main, &f), 0);
	f.go = true;
	if (rdmig_src_pass(src, NULL, 0, RDMIG_PASS_ALL, NULL))
		fail_msg("pass 1: %s", rdmig_last_error());
	for (unsigned p = 0; p < 3; p++) {
		dt_guest_write(&g, 32, &rng);
		dt_dirty(&g, dirty);
		if (rdmig_src_pass(src, dirty, 2, 0, NULL))
			fail_msg("pass %u: %s", p + 2, rdmig_last_error());
	}
	pthread_join(th, NULL);
	print_message("during the migration: %u refused at connect, %u answered, %u other\n",
		      f.refused, f.answered, f.other);
	assert_int_equal(f.refused, N);
	if (rdmig_src_complete(src))
		fail_msg("complete: %s", rdmig_last_error());
	rdmig_src_destroy(src);
	pthread_join(d.thread, NULL);
	if (d.ret)
		fail_msg("destination: %d '%s'", d.ret, d.err);
	page = dt_guest_diff(&g, &d.g, &region);
	if (page >= 0)
		fail_msg("page %lld of region %u differs", (long long)page, region);
	assert_int_equal(d.stats.rejected, 2 * N);
	dt_guest_fini(&g);
	dst_close(&d);
}

/* ---------------------------------------------------------------------------
 * The rogue destination: a raw server that authenticates with the run's
 * key (or, as a stranger, another one), then answers the real source
 * honestly or with the lie a test asks for.
 */
enum lie {
	L_HONEST,
	L_STRANGER,	   /* CHALLENGE proven under another key */
	L_ACK_LEN,	   /* region 0 declared twice as long */
	L_ACK_GPA,	   /* region 1 at another guest address */
	L_ACK_PAGE,	   /* another page size */
	L_ACK_NQPS,	   /* more data QPs than proposed */
	L_ACK_WRAP,	   /* addr + len wraps around */
	L_ACK_OVERLAP,	   /* both regions at the same destination address */
	L_ACK_TAMPER,	   /* HELLO_ACK with a flipped byte */
	L_ACK_RKEY,	   /* an rkey nothing was registered under */
	L_ACK_PAST_MR,	   /* region 0's window runs a page past the registration */
	L_H_FIRST,	   /* HASHES from another page than asked */
	L_H_REGION,	   /* HASHES for another region */
	L_H_PASS,	   /* HASHES for another pass */
	L_H_UNSOLICITED,   /* a second HASHES for the first NOTICE */
	L_H_ZERO_FILLED,   /* a zero-fill order claimed landed zero */
	L_H_EXTRA_HASH,	   /* a hash claimed for a page zero-filled */
	L_H_BEYOND,	   /* a landed-zero bit beyond the NOTICE's pages */
	L_H_REPLAY,	   /* the first HASHES sent again */
	L_H_FALSE,	   /* hashes and zeros that lie about what landed */
	L_PASS_ACK_TAMPER, /* PASS_ACK with a flipped byte */
	L_PASS_ACK_BYTES,  /* PASS_ACK with other byte counts */
	L_COMPLETE_EARLY,  /* COMPLETE_ACK where PASS_ACK belongs */
};

/* Two pages: a window at a guard's end stays aligned to twice the page size. */
#define GUARD_LEN (2 * DT_PAGE)
#define MEM_LEN	  (REGION + 2 * GUARD_LEN)
#define MEM_ALIGN (64ull << 10)

struct rdst {
	enum lie lie;
	const struct rdmig__xp_ops *xp;
	struct rdmig__xp_chan *ch;
	struct rdmig__xp_id *listen;
	struct rdmig__xp_pd *pd;
	struct rep ctrl, data;
	bool has_data;
	struct rdmig__hs hs;
	struct rdmig__scanner scanner;
	struct rdmig__scan_key key;
	/* guard | region | guard, all under one registration, 64 KiB aligned */
	uint8_t *map[2], *mem[2];
	struct rdmig__xp_mr *mr[2];
	uint64_t addr[2], len[2]; /* the windows declared */
	uint64_t token;
	char port[16];
	/* A real source's handshake, recorded. */
	uint8_t hello[BUFSZ], auth[BUFSZ];
	size_t hello_len, auth_len;
	/* The pass under way. */
	uint64_t pass, pass_bytes;
	bool lied;
	uint8_t last_hashes[BUFSZ];
	size_t last_hashes_len;
	bool closed;
};

/*
 * Sends on one of the rogue destination's connections. Once the source
 * gave up (it refused a lie) sends fail: the connection is then closed.
 */
static void rdst_send_raw(struct rdst *rd, struct rep *e, const void *buf, size_t len)
{
	if (!rd->closed && rep_send_raw(e, buf, len) != IBV_WC_SUCCESS)
		rd->closed = true;
}

static void rdst_send(struct rdst *rd, struct rep *e, const struct rdmig__msg *m)
{
	static uint8_t buf[BUFSZ];

	rdst_send_raw(rd, e, buf, rep_encode(e, m, buf));
}

static uint8_t *rdst_region(struct rdst *rd, unsigned i)
{
	return rd->mem[i] + GUARD_LEN;
}

static void rdst_listen(struct rdst *rd, enum lie lie)
{
	struct sockaddr_storage ss;
	int port;

	memset(rd, 0, sizeof(*rd));
	rd->lie = lie;
	rd->xp = dt_transport();
	assert_int_equal(rdmig__scanner_init(&rd->scanner, RDMIG_SIMD_AUTO), 0);
	for (unsigned i = 0; i < 2; i++) {
		rd->map[i] = mmap(NULL, MEM_LEN + MEM_ALIGN, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		assert_true(rd->map[i] != MAP_FAILED);
		rd->mem[i] =
			(uint8_t *)(((uintptr_t)rd->map[i] + MEM_ALIGN - 1) & ~(MEM_ALIGN - 1));
		memset(rd->mem[i], GUARD, MEM_LEN);
		memset(rdst_region(rd, i), PATTERN, REGION);
	}
	assert_int_equal(rd->xp->chan_create(&rd->ch), 0);
	assert_int_equal(rd->xp->id_create(rd->ch, &rd->listen), 0);
	assert_int_equal(rdmig__resolve(ip, "0", &ss), 0);
	port = rd->xp->listen(rd->listen, (struct sockaddr *)&ss);
	assert_true(port > 0);
	snprintf(rd->port, sizeof(rd->port), "%d", port);
}

static void rdst_close(struct rdst *rd)
{
	rdmig__ep_destroy(&rd->data.ep);
	rdmig__ep_destroy(&rd->ctrl.ep);
	for (unsigned i = 0; i < 2; i++) {
		if (rd->mr[i])
			rd->xp->mr_dereg(rd->mr[i]);
		munmap(rd->map[i], MEM_LEN + MEM_ALIGN);
	}
	if (rd->pd)
		rd->xp->pd_free(rd->pd);
	rd->xp->id_destroy(rd->listen);
	rd->xp->chan_destroy(rd->ch);
	rdmig__hs_wipe(&rd->hs);
}

/*
 * Nothing outside the declared windows changed: the guards, and (where a
 * lie moved a window) whatever of the registration it left out.
 */
static void rdst_assert_outside_untouched(struct rdst *rd)
{
	for (unsigned i = 0; i < 2; i++) {
		uintptr_t base = (uintptr_t)rd->mem[i];
		/* A window elsewhere (a lie the source refused): all of it must hold. */
		bool in = rd->addr[i] >= base && rd->addr[i] < base + MEM_LEN;
		uint64_t lo = in ? rd->addr[i] - base : 0;
		uint64_t hi = in ? lo + rd->len[i] : 0;

		for (uint64_t off = 0; off < MEM_LEN; off++) {
			uint8_t want =
				off < GUARD_LEN || off >= GUARD_LEN + REGION ? GUARD : PATTERN;

			if (off >= lo && off < hi)
				continue;
			if (rd->mem[i][off] != want)
				fail_msg("region %u: byte 0x%llx outside the declared window "
					 "[0x%llx, 0x%llx) was written",
					 i, (unsigned long long)off, (unsigned long long)lo,
					 (unsigned long long)hi);
		}
	}
}

/* The HELLO_ACK for the source's proposal in msg, with this test's lie. */
static void rdst_ack(struct rdst *rd)
{
	static struct rdmig__msg prop;
	static uint8_t buf[BUFSZ];
	struct rdmig__msg *a = &msg;
	size_t len;

	prop = msg;
	assert_int_equal(prop.auth.nregions, 2);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(prop.auth.regions[i].len, REGION);
		assert_int_equal(rd->xp->mr_reg(rd->pd, rd->mem[i], MEM_LEN,
						IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE,
						&rd->mr[i]),
				 0);
	}
	rd->token = 0x1234567890abcdefull;
	memset(a, 0, sizeof(*a));
	a->type = RDMIG__MSG_HELLO_ACK;
	a->hello_ack.version = RDMIG__PROTO_VERSION;
	a->hello_ack.page_size = DT_PAGE;
	a->hello_ack.nqps = 1;
	a->hello_ack.nregions = 2;
	a->hello_ack.token = rd->token;
	for (unsigned i = 0; i < 2; i++) {
		struct rdmig__wire_target *t = &a->hello_ack.regions[i];

		t->gpa = prop.auth.regions[i].gpa;
		t->len = prop.auth.regions[i].len;
		t->addr = (uintptr_t)rdst_region(rd, i);
		t->rkey = rd->mr[i]->rkey;
	}
	switch (rd->lie) {
	case L_ACK_LEN:
		a->hello_ack.regions[0].len /= 2;
		break;
	case L_ACK_GPA:
		a->hello_ack.regions[1].gpa += 1ull << 30;
		break;
	case L_ACK_PAGE:
		a->hello_ack.page_size = 2 * DT_PAGE;
		break;
	case L_ACK_NQPS:
		a->hello_ack.nqps = 2;
		break;
	case L_ACK_WRAP:
		a->hello_ack.regions[1].addr = 0 - REGION / 2;
		break;
	case L_ACK_OVERLAP:
		a->hello_ack.regions[1].addr = a->hello_ack.regions[0].addr + DT_PAGE;
		a->hello_ack.regions[1].rkey = a->hello_ack.regions[0].rkey;
		break;
	case L_ACK_RKEY:
		a->hello_ack.regions[0].rkey ^= 0x00ff0000u;
		break;
	case L_ACK_PAST_MR:
		/* The registration ends a guard after the region: a page past that. */
		a->hello_ack.regions[0].addr += GUARD_LEN + DT_PAGE;
		break;
	default:
		break;
	}
	for (unsigned i = 0; i < 2; i++) {
		rd->addr[i] = a->hello_ack.regions[i].addr;
		rd->len[i] = a->hello_ack.regions[i].len;
	}
	if (rd->lie == L_ACK_WRAP || rd->lie == L_ACK_OVERLAP || rd->lie == L_ACK_TAMPER) {
		/* What our encoder refuses to write, written by hand. */
		a->hello_ack.regions[1].addr = (uintptr_t)rdst_region(rd, 1);
		a->hello_ack.regions[1].rkey = rd->mr[1]->rkey;
		len = (size_t)rdmig__msg_encode_ext(a, RDMIG__TRAILER_LEN, buf, sizeof(buf), why,
						    sizeof(why));
		assert_true(len > 0);
		/* Region 1's entry: after 24 bytes of fixed part and region 0's 32. */
		if (rd->lie != L_ACK_TAMPER) {
			uint64_t v = rd->lie == L_ACK_WRAP
					     ? 0 - REGION / 2
					     : (uintptr_t)rdst_region(rd, 0) + DT_PAGE;

			memcpy(buf + RDMIG__HDR_LEN + 24 + 32 + 16, &v, 8);
			if (rd->lie == L_ACK_OVERLAP)
				memcpy(buf + RDMIG__HDR_LEN + 24 + 32 + 24, &rd->mr[0]->rkey, 4);
		}
		assert_int_equal(rdmig__seal_tx(&rd->ctrl.ep.seal, buf, len), 0);
		if (rd->lie == L_ACK_TAMPER)
			buf[RDMIG__HDR_LEN + 24 + 16] ^= 0x10; /* region 0's addr */
		rdst_send_raw(rd, &rd->ctrl, buf, len);
		return;
	}
	rdst_send(rd, &rd->ctrl, a);
}

/* A connection request: the source's control or data connection. */
static void rdst_on_connect(struct rdst *rd, struct rdmig__xp_event *ev)
{
	struct rdmig__xp_conn_info ci;
	struct rdmig__msg conn;
	uint8_t tag[RDMIG__TAG_LEN];
	struct rep *e;
	int len = rdmig__msg_peek_len(ev->pdata, ev->pdlen);

	assert_true(len > 0);
	assert_int_equal(rdmig__msg_decode(ev->pdata, (size_t)len, &conn, why, sizeof(why)), 0);
	e = conn.connect.kind == RDMIG__CONN_CTRL ? &rd->ctrl : &rd->data;
	assert_null(e->ep.id);
	if (conn.connect.kind == RDMIG__CONN_DATA) {
		/* The real source's data QP proves the session's keys. */
		assert_int_equal(conn.connect.token, rd->token);
		assert_int_equal(rdmig__hs_data_tag(&rd->hs.keys, conn.connect.index,
						    conn.connect.token, ev->peer_qpn, tag),
				 0);
		assert_memory_equal(tag, conn.connect.tag, sizeof(tag));
	}
	if (!rd->pd)
		assert_int_equal(rd->xp->pd_alloc(ev->id, &rd->pd), 0);
	assert_int_equal(rdmig__ep_setup(&e->ep, ev->id, rd->pd, NULL,
					 conn.connect.kind == RDMIG__CONN_CTRL ? 0 : 1, &rdst_attr),
			 0);
	assert_int_equal(rd->xp->accept(ev->id), 0);
	if (conn.connect.kind == RDMIG__CONN_DATA) {
		rd->has_data = true;
		assert_int_equal(rdmig__seal_init(&e->ep.seal, rd->hs.keys.d2s, rd->hs.keys.s2d, 1),
				 0);
		return;
	}
	assert_int_equal(rd->xp->conn_info(ev->id, &ci), 0);
	rd->hs.psk = run_key;
	rd->hs.psk_len = run_key_len;
	rd->hs.ver_min = RDMIG__PROTO_MIN;
	rd->hs.ver_max = RDMIG__PROTO_VERSION;
	rd->hs.caps = RDMIG__CAPS;
	rdmig__hs_bind(&rd->hs, &ci, false);
}

/* The source's HELLO or AUTH on the control connection. */
static void rdst_on_handshake(struct rdst *rd, const uint8_t *buf, size_t len)
{
	static uint8_t out[BUFSZ];
	static const uint8_t other[32] = { 1, 2, 3 };
	bool fatal;
	int n;

	if (rd->hs.step == RDMIG__HS_START) {
		memcpy(rd->hello, buf, len);
		rd->hello_len = len;
		if (rd->lie == L_STRANGER) {
			rd->hs.psk = other;
			rd->hs.psk_len = sizeof(other);
		}
		n = rdmig__hs_dst_hello(&rd->hs, buf, len, out, sizeof(out), &fatal, why,
					sizeof(why));
		if (n <= 0)
			fail_msg("HELLO: %s", why);
		rdst_send_raw(rd, &rd->ctrl, out, (size_t)n);
		return;
	}
	/* A stranger's CHALLENGE fails the source: no AUTH may come, no layout. */
	assert_int_not_equal(rd->lie, L_STRANGER);
	memcpy(rd->auth, buf, len);
	rd->auth_len = len;
	if (rdmig__hs_dst_auth(&rd->hs, buf, len, &msg, why, sizeof(why)))
		fail_msg("AUTH: %s", why);
	memcpy(rd->key.secret, rd->hs.keys.hash_secret, sizeof(rd->key.secret));
	assert_int_equal(rdmig__seal_init(&rd->ctrl.ep.seal, rd->hs.keys.d2s, rd->hs.keys.s2d, 0),
			 0);
	rdst_ack(rd);
}

/* Sends HASHES from msg, sealed, after patching it for L_H_BEYOND. */
static void rdst_send_hashes(struct rdst *rd, bool beyond)
{
	static uint8_t buf[BUFSZ];
	int len =
		rdmig__msg_encode_ext(&msg, RDMIG__TRAILER_LEN, buf, sizeof(buf), why, sizeof(why));

	if (len <= 0)
		fail_msg("encode HASHES: %s", why);
	if (beyond) {
		/* landed_zero after pass, region, npages, first: bit npages. */
		uint32_t n = msg.hashes.npages;

		assert_true(n < RDMIG__NOTICE_PAGES);
		buf[RDMIG__HDR_LEN + 24 + n / 8] |= (uint8_t)(1u << (n % 8));
	}
	assert_int_equal(rdmig__seal_tx(&rd->data.ep.seal, buf, (size_t)len), 0);
	memcpy(rd->last_hashes, buf, (size_t)len);
	rd->last_hashes_len = (size_t)len;
	rdst_send_raw(rd, &rd->data, buf, (size_t)len);
}

/* A NOTICE: zero and hash what it says, answer honestly, or with the lie. */
static void rdst_on_notice(struct rdst *rd, const struct rdmig__msg *m)
{
	static struct rdmig__msg n;
	struct rdmig__msg *h = &msg;
	/* Where the source writes: the window declared (honest: the region). */
	uint8_t *base = (uint8_t *)(uintptr_t)rd->addr[m->notice.region];
	uint32_t k = 0, zero_fill = UINT32_MAX;
	bool lie;

	n = *m;
	assert_true(m->notice.region < 2);
	memset(h, 0, sizeof(*h));
	h->type = RDMIG__MSG_HASHES;
	h->hashes.pass = n.notice.pass;
	h->hashes.region = n.notice.region;
	h->hashes.npages = n.notice.npages;
	h->hashes.first = n.notice.page[0] & ~RDMIG__NOTICE_ZERO;
	for (uint32_t i = 0; i < n.notice.npages; i++) {
		uint64_t e = n.notice.page[i];
		uint8_t *page = base + (e & ~RDMIG__NOTICE_ZERO) * DT_PAGE;

		assert_true((e & ~RDMIG__NOTICE_ZERO) < NPAGES);
		if (e & RDMIG__NOTICE_ZERO) {
			memset(page, 0, DT_PAGE);
			if (zero_fill == UINT32_MAX)
				zero_fill = i;
		} else if (rdmig__scan_page(&rd->scanner, &rd->key, page, DT_PAGE,
					    &h->hashes.hash[k]) == RDMIG__PAGE_ZERO) {
			h->hashes.landed_zero[i / 64] |= 1ull << (i % 64);
		} else {
			k++;
		}
	}
	h->hashes.nhashes = k;
	/* Each lie once, on the first NOTICE it can be told about. */
	switch (rd->lie) {
	case L_H_ZERO_FILLED:
	case L_H_EXTRA_HASH: /* needs a zero-fill order to lie about */
		lie = !rd->lied && zero_fill != UINT32_MAX;
		break;
	case L_H_BEYOND: /* needs room after the NOTICE's pages */
		lie = !rd->lied && n.notice.npages < RDMIG__NOTICE_PAGES;
		break;
	case L_H_FIRST:
	case L_H_REGION:
	case L_H_PASS:
	case L_H_UNSOLICITED:
	case L_H_REPLAY:
		lie = !rd->lied;
		break;
	case L_H_FALSE: /* every NOTICE */
		lie = k > 0;
		break;
	default:
		lie = false;
		break;
	}
	rd->lied |= lie;
	if (lie) {
		switch (rd->lie) {
		case L_H_FIRST:
			h->hashes.first++;
			break;
		case L_H_REGION:
			h->hashes.region ^= 1;
			break;
		case L_H_PASS:
			h->hashes.pass++;
			break;
		case L_H_ZERO_FILLED:
			h->hashes.landed_zero[zero_fill / 64] |= 1ull << (zero_fill % 64);
			break;
		case L_H_EXTRA_HASH:
			h->hashes.hash[h->hashes.nhashes++] = (struct rdmig__hash){ 1, 2 };
			break;
		case L_H_FALSE:
			/* The first written page said zero, every other hash off by one. */
			for (uint32_t i = 0; i < n.notice.npages; i++)
				if (!(n.notice.page[i] & RDMIG__NOTICE_ZERO) &&
				    !(h->hashes.landed_zero[i / 64] >> (i % 64) & 1)) {
					h->hashes.landed_zero[i / 64] |= 1ull << (i % 64);
					break;
				}
			memmove(&h->hashes.hash[0], &h->hashes.hash[1],
				(k - 1) * sizeof(h->hashes.hash[0]));
			h->hashes.nhashes = --k;
			for (uint32_t i = 0; i < k; i++)
				h->hashes.hash[i].lo++;
			break;
		default:
			break;
		}
	}
	rdst_send_hashes(rd, lie && rd->lie == L_H_BEYOND);
	if (lie && rd->lie == L_H_UNSOLICITED)
		rdst_send_hashes(rd, false);
	if (lie && rd->lie == L_H_REPLAY)
		rdst_send_raw(rd, &rd->data, rd->last_hashes, rd->last_hashes_len);
}

static void rdst_on_pass_end(struct rdst *rd, const struct rdmig__msg *m)
{
	static uint8_t buf[BUFSZ];
	struct rdmig__msg *a = &msg;
	size_t len;

	rd->pass = m->pass_end.pass;
	rd->pass_bytes = m->pass_end.bytes;
	memset(a, 0, sizeof(*a));
	a->type = rd->lie == L_COMPLETE_EARLY ? RDMIG__MSG_COMPLETE_ACK : RDMIG__MSG_PASS_ACK;
	a->pass_ack.pass = rd->pass;
	a->pass_ack.bytes = rd->pass_bytes + (rd->lie == L_PASS_ACK_BYTES ? DT_PAGE : 0);
	if (rd->lie == L_COMPLETE_EARLY)
		a->complete.passes = rd->pass;
	len = rep_encode(&rd->ctrl, a, buf);
	if (rd->lie == L_PASS_ACK_TAMPER)
		buf[RDMIG__HDR_LEN] ^= 0x01; /* pass 1 -> 0 */
	rdst_send_raw(rd, &rd->ctrl, buf, len);
}

/* One message on e (control or data), or the end of it. */
static void rdst_on_msg(struct rdst *rd, struct rep *e, const uint8_t *buf, size_t len)
{
	struct rdmig__msg m;

	if (e == &rd->ctrl && rd->hs.step != RDMIG__HS_DONE) {
		rdst_on_handshake(rd, buf, len);
		return;
	}
	if (rdmig__ep_open(&e->ep, buf, len, &msg, why, sizeof(why)))
		fail_msg("from the real source: %s", why);
	m = msg; /* the small ones: NOTICE is handled from msg */
	switch (msg.type) {
	case RDMIG__MSG_NOTICE:
		rdst_on_notice(rd, &msg);
		break;
	case RDMIG__MSG_PASS_END:
		rdst_on_pass_end(rd, &m);
		break;
	case RDMIG__MSG_PROGRESS:
		break;
	case RDMIG__MSG_COMPLETE:
		memset(&msg, 0, sizeof(msg));
		msg.type = RDMIG__MSG_COMPLETE_ACK;
		msg.complete.passes = m.complete.passes;
		rdst_send(rd, &rd->ctrl, &msg);
		break;
	case RDMIG__MSG_ERROR:
		print_message("the source says: %s\n", msg.error.text);
		break;
	default:
		fail_msg("unexpected %s from the real source", rdmig__msg_type_name(msg.type));
	}
}

/* The real source: connect, passes, complete, in a thread of its own. */
struct src_run {
	struct dt_guest g;
	const char *port;
	unsigned passes;
	bool same_again; /* the passes after the first mark pages dirty, unchanged */
	pthread_t thread;
	int ret; /* the first failure */
	const char *step;
	char err[512];
	struct rdmig_pass_stats st[4];
	volatile bool done;
};

static void *src_main(void *arg)
{
	struct src_run *s = arg;
	struct rdmig_dirty dirty[2];
	struct rdmig_src *src = NULL;
	struct rdmig_opts o;
	uint64_t rng = 3;

	rdmig_opts_init(&o);
	o.workers = 1;
	o.timeout_ms = 5000;
	if ((s->ret = rdmig_src_create(&o, &src)))
		goto out;
	for (unsigned i = 0; i < 2; i++)
		rdmig_src_add_region(src, s->g.gpa[i], s->g.hva[i], s->g.len[i]);
	s->step = "connect";
	if ((s->ret = rdmig_src_connect(src, ip, s->port)))
		goto out;
	for (unsigned p = 0; p < s->passes; p++) {
		s->step = "pass";
		s->st[p].size = sizeof(s->st[p]);
		if (p && s->same_again) {
			for (unsigned i = 0; i < 2; i++)
				memset(s->g.bitmap[i], 0xff, NPAGES / 8);
		} else if (p) {
			dt_guest_write(&s->g, 8, &rng);
		}
		dt_dirty(&s->g, dirty);
		if ((s->ret = rdmig_src_pass(src, p ? dirty : NULL, 2, p ? 0 : RDMIG_PASS_ALL,
					     &s->st[p])))
			goto out;
	}
	s->step = "complete";
	s->ret = rdmig_src_complete(src);
out:
	snprintf(s->err, sizeof(s->err), "%s", s->ret ? rdmig_last_error() : "");
	rdmig_src_destroy(src);
	s->done = true;
	return NULL;
}

static void src_start(struct src_run *s, const char *port, unsigned passes, bool same_again)
{
	uint64_t rng = 11;

	memset(s, 0, sizeof(*s));
	dt_guest_init(&s->g, 2, layout_gpa, layout_len);
	dt_guest_fill(&s->g, &rng);
	/* Zero pages: zero-fill orders in the first pass's NOTICEs. */
	memset(s->g.hva[0] + 5 * DT_PAGE, 0, 2 * DT_PAGE);
	memset(s->g.hva[1] + 100 * DT_PAGE, 0, DT_PAGE);
	s->port = port;
	s->passes = passes;
	s->same_again = same_again;
	assert_int_equal(pthread_create(&s->thread, NULL, src_main, s), 0);
}

/* Serves the real source until its thread is done (or 30 s passed). */
static void rdst_serve(struct rdst *rd, struct src_run *s)
{
	static uint8_t buf[BUFSZ];
	uint64_t end = dt_now_ms() + 30000;

	while (!s->done && dt_now_ms() < end) {
		struct rdmig__xp_event ev;
		struct rep *eps[2] = { &rd->ctrl, &rd->data };
		bool busy = false;

		while (!rdmig__cm_next(rd->ch, 0, &ev)) {
			busy = true;
			if (ev.event == RDMA_CM_EVENT_CONNECT_REQUEST)
				rdst_on_connect(rd, &ev);
			else if (ev.event == RDMA_CM_EVENT_DISCONNECTED)
				rd->closed = true;
			rd->xp->chan_ack(&ev);
		}
		for (unsigned i = 0; i < 2; i++) {
			struct ibv_wc wc;

			if (!eps[i]->ep.id)
				continue;
			if (!rep_poll(eps[i], &wc))
				continue;
			busy = true;
			if (wc.status != IBV_WC_SUCCESS) {
				rd->closed = true;
				continue;
			}
			if (rdmig__wr_kind_of(wc.wr_id) != RDMIG__WR_RECV)
				continue;
			memcpy(buf, rdmig__ep_recv_buf(&eps[i]->ep, rdmig__wr_val_of(wc.wr_id)),
			       wc.byte_len);
			rdmig__ep_post_recv(&eps[i]->ep, rdmig__wr_val_of(wc.wr_id));
			if (!rd->closed)
				rdst_on_msg(rd, eps[i], buf, wc.byte_len);
		}
		if (!busy)
			usleep(500);
	}
	assert_true(s->done);
	pthread_join(s->thread, NULL);
}

/*
 * The real source against a rogue destination lying as `lie`: it fails at
 * `want_step` with `want` in its error (NULL: it completes), and writes
 * nothing outside the windows the destination declared.
 */
static void lying_destination(enum lie lie, const char *want_step, int want_ret, const char *want)
{
	static struct rdst rd;
	struct src_run s;

	rdst_listen(&rd, lie);
	src_start(&s, rd.port, 2, false);
	rdst_serve(&rd, &s);
	print_message("source: %s: %d %s\n", s.step, s.ret, s.err);
	if (!want_step) {
		unsigned region;
		int64_t page;
		struct dt_guest got = s.g;

		if (s.ret)
			fail_msg("the source failed at %s: %s", s.step, s.err);
		for (unsigned i = 0; i < 2; i++)
			got.hva[i] = rdst_region(&rd, i);
		page = dt_guest_diff(&s.g, &got, &region);
		if (page >= 0)
			fail_msg("page %lld of region %u differs", (long long)page, region);
	} else if (s.ret != want_ret || strcmp(s.step, want_step) || !strstr(s.err, want)) {
		fail_msg("the source returned %d at %s: '%s', expected %d at %s with '%s'", s.ret,
			 s.step, s.err, want_ret, want_step, want);
	}
	rdst_assert_outside_untouched(&rd);
	dt_guest_fini(&s.g);
	rdst_close(&rd);
}

static void rogue_dst_honest_completes_guards_intact(void **state)
{
	(void)state;
	lying_destination(L_HONEST, NULL, 0, NULL);
}

static void rogue_dst_without_key_refused_no_layout_sent(void **state)
{
	(void)state;
	/* rdst_on_handshake fails the test if an AUTH (the layout) arrives. */
	lying_destination(L_STRANGER, "connect", -EACCES,
			  "authentication failed: the destination did not prove it holds the key");
}

static void rogue_dst_region_size_refused(void **state)
{
	(void)state;
	lying_destination(
		L_ACK_LEN, "connect", -EPROTO,
		"HELLO_ACK region 0 is gpa 0x0 len 0x80000, ours is gpa 0x0 len 0x100000");
}

static void rogue_dst_region_gpa_refused(void **state)
{
	(void)state;
	lying_destination(L_ACK_GPA, "connect", -EPROTO, "HELLO_ACK region 1 is gpa 0x140000000");
}

static void rogue_dst_page_size_refused(void **state)
{
	(void)state;
	lying_destination(L_ACK_PAGE, "connect", -EPROTO, "page size 8192");
}

static void rogue_dst_more_qps_refused(void **state)
{
	(void)state;
	lying_destination(L_ACK_NQPS, "connect", -EPROTO, "2 QPs");
}

static void rogue_dst_address_wraps_refused(void **state)
{
	(void)state;
	lying_destination(L_ACK_WRAP, "connect", -EBADMSG, "region 1: addr 0xfffffffffff80000");
}

static void rogue_dst_overlapping_windows_refused(void **state)
{
	(void)state;
	lying_destination(L_ACK_OVERLAP, "connect", -EBADMSG,
			  "regions 0 and 1 overlap in destination address space");
}

static void rogue_dst_tampered_ack_refused(void **state)
{
	(void)state;
	lying_destination(L_ACK_TAMPER, "connect", -EBADMSG, "bad MAC (message 0 on channel 0)");
}

static void rogue_dst_unregistered_rkey_pass_fails(void **state)
{
	(void)state;
	/* The source cannot know the destination's rkeys: the NIC refuses. */
	lying_destination(L_ACK_RKEY, "pass", -EIO, "RDMA WRITE failed: remote access error");
}

static void rogue_dst_window_past_registration_pass_fails(void **state)
{
	(void)state;
	lying_destination(L_ACK_PAST_MR, "pass", -EIO, "RDMA WRITE failed: remote access error");
}

static void rogue_dst_hashes_other_pages_refused(void **state)
{
	(void)state;
	lying_destination(L_H_FIRST, "pass", -EPROTO, "does not answer our NOTICE");
}

static void rogue_dst_hashes_other_region_refused(void **state)
{
	(void)state;
	lying_destination(L_H_REGION, "pass", -EPROTO, "does not answer our NOTICE");
}

static void rogue_dst_hashes_other_pass_refused(void **state)
{
	(void)state;
	lying_destination(L_H_PASS, "pass", -EPROTO, "does not answer our NOTICE");
}

static void rogue_dst_hashes_unsolicited_refused(void **state)
{
	(void)state;
	lying_destination(L_H_UNSOLICITED, "pass", -EPROTO, "HASHES");
}

static void rogue_dst_zero_fill_claimed_landed_refused(void **state)
{
	(void)state;
	lying_destination(L_H_ZERO_FILLED, "pass", -EPROTO,
			  "says page 5 of region 0 landed zero, but our NOTICE ordered it zeroed");
}

static void rogue_dst_hash_for_zero_filled_page_refused(void **state)
{
	(void)state;
	lying_destination(L_H_EXTRA_HASH, "pass", -EPROTO,
			  "holds 255 hashes, but 254 pages of our NOTICE");
}

static void rogue_dst_landed_zero_beyond_notice_refused(void **state)
{
	(void)state;
	lying_destination(L_H_BEYOND, "pass", -EBADMSG, "is beyond its");
}

static void rogue_dst_replayed_hashes_refused(void **state)
{
	(void)state;
	lying_destination(L_H_REPLAY, "pass", -EPROTO, "a replayed message");
}

static void rogue_dst_tampered_pass_ack_refused(void **state)
{
	(void)state;
	lying_destination(L_PASS_ACK_TAMPER, "pass", -EBADMSG, "bad MAC");
}

static void rogue_dst_pass_ack_bytes_refused(void **state)
{
	(void)state;
	lying_destination(L_PASS_ACK_BYTES, "pass", -EPROTO, "expected PASS_ACK for pass 1");
}

static void rogue_dst_complete_ack_early_refused(void **state)
{
	(void)state;
	lying_destination(L_COMPLETE_EARLY, "pass", -EPROTO, "got COMPLETE_ACK");
}

/*
 * Hashes that lie about what landed cannot be told from a guest that
 * changed a page after it was read (DESIGN.md invariant 3), so the source
 * never skips on them: with every page dirty again and unchanged, an
 * honest destination's hashes skip them all, the lying one's skip none.
 * And since every verifying pass compares the destination's hashes with
 * the source's own, a destination that keeps lying never gets a
 * completed migration: complete fails with -EIO naming the page.
 */
static void rogue_dst_false_hashes_never_complete(void **state)
{
	static struct rdst rd;
	struct dt_guest got;
	struct src_run s;
	unsigned region;
	int64_t page;

	(void)state;
	for (int honest = 1; honest >= 0; honest--) {
		rdst_listen(&rd, honest ? L_HONEST : L_H_FALSE);
		src_start(&s, rd.port, 2, true);
		rdst_serve(&rd, &s);
		if (honest && s.ret)
			fail_msg("the source failed at %s: %s", s.step, s.err);
		if (!honest &&
		    (s.ret != -EIO || strcmp(s.step, "complete") || !strstr(s.err, "not exact")))
			fail_msg("the source returned %d at %s (%s), expected -EIO at complete",
				 s.ret, s.step, s.err);
		print_message("%s destination: pass 2 wrote %llu pages, skipped %llu unchanged\n",
			      honest ? "honest" : "lying",
			      (unsigned long long)s.st[1].written_pages,
			      (unsigned long long)s.st[1].skipped_unchanged);
		if (honest) {
			assert_int_equal(s.st[1].written_pages, 0);
		} else {
			assert_int_equal(s.st[1].skipped_unchanged, 0);
			assert_true(s.st[1].written_pages > 0);
		}
		got = s.g;
		for (unsigned i = 0; i < 2; i++)
			got.hva[i] = rdst_region(&rd, i);
		page = dt_guest_diff(&s.g, &got, &region);
		if (page >= 0)
			fail_msg("page %lld of region %u differs", (long long)page, region);
		rdst_assert_outside_untouched(&rd);
		dt_guest_fini(&s.g);
		rdst_close(&rd);
	}
}

/*
 * A real source's HELLO and AUTH, recorded by the rogue destination from a
 * session that completed, replayed byte for byte against the real
 * destination: its fresh nonce (and the new connection's binding) makes
 * the old proof worthless. "authentication failed", nothing registered,
 * and the real source still gets in.
 */
static void replayed_handshake_from_earlier_session_refused(void **state)
{
	static struct rdst rd;
	struct src_run s;
	struct dst_run d;
	struct rogue r;
	long pin0;

	(void)state;
	rdst_listen(&rd, L_HONEST);
	src_start(&s, rd.port, 1, false);
	rdst_serve(&rd, &s);
	assert_int_equal(s.ret, 0);
	assert_true(rd.hello_len > 0 && rd.auth_len > 0);
	dt_guest_fini(&s.g);
	rdst_close(&rd); /* its recording stays */

	dst_start(&d);
	pin0 = vm_pin_kb();
	rogue_connect(&r, d.port);
	assert_int_equal(rep_send_raw(&r.ctrl, rd.hello, rd.hello_len), IBV_WC_SUCCESS);
	assert_int_equal(stranger_reply(&d, &r, 5000), RDMIG__MSG_CHALLENGE);
	assert_int_equal(rep_send_raw(&r.ctrl, rd.auth, rd.auth_len), IBV_WC_SUCCESS);
	assert_int_equal(stranger_reply(&d, &r, 5000), RDMIG__MSG_ERROR);
	assert_string_equal(msg.error.text, "authentication failed");
	assert_nothing_exposed(&d, pin0, 1);
	rogue_close(&r);
	assert_int_equal(real_source_completes(&d), 1);
}

/* The check behind the stranger tests: a real session does pin its guest. */
static void vm_pin_counts_a_real_session(void **state)
{
	struct rogue r;
	struct dst_run d;
	long pin0, pin;

	(void)state;
	if (dt_loopback())
		skip(); /* the loopback transport pins nothing */
	dst_start(&d);
	pin0 = vm_pin_kb();
	rogue_login(&r, d.port, 0);
	pin = vm_pin_kb();
	print_message("VmPin %ld kB listening, %ld kB in a session\n", pin0, pin);
	assert_true(pin - pin0 >= (long)(2 * REGION / 1024));
	assert_int_equal(guest_mrs(&d), 2);
	rogue_close(&r);
	pthread_join(d.thread, NULL);
	dst_close(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(auth_truncated_refused_nothing_registered),
		cmocka_unit_test(auth_unknown_version_refused),
		cmocka_unit_test(auth_overlapping_regions_refused),
		cmocka_unit_test(auth_length_lie_refused),
		cmocka_unit_test(auth_oversized_refused),
		cmocka_unit_test(auth_layout_mismatch_fails_session),
		cmocka_unit_test(garbage_after_auth_fails_mac_withdraws_memory),
		cmocka_unit_test(sealed_garbage_after_auth_withdraws_memory),
		cmocka_unit_test(control_qp_cannot_write_guest_memory),
		cmocka_unit_test(complete_revokes_access_before_ack),
		cmocka_unit_test(notice_region_out_of_range_refused),
		cmocka_unit_test(notice_pages_past_region_end_refused),
		cmocka_unit_test(notice_wrong_pass_refused),
		cmocka_unit_test(notice_not_announced_refused),
		cmocka_unit_test(sealed_message_flipped_byte_fails_mac),
		cmocka_unit_test(sealed_message_replayed_fails_sequence),
		cmocka_unit_test(sealed_message_skipped_fails_sequence),
		cmocka_unit_test(data_message_flipped_byte_fails_mac),
		cmocka_unit_test(control_message_on_data_qp_fails_mac),
		cmocka_unit_test(vm_pin_counts_a_real_session),
		cmocka_unit_test(strangers_refused_then_real_source_completes),
		cmocka_unit_test(silent_strangers_dropped_after_auth_timeout),
		cmocka_unit_test(data_qp_without_session_tag_refused),
		cmocka_unit_test(replayed_handshake_from_earlier_session_refused),
		cmocka_unit_test(flood_of_strangers_real_source_completes),
		cmocka_unit_test(rogue_dst_honest_completes_guards_intact),
		cmocka_unit_test(rogue_dst_without_key_refused_no_layout_sent),
		cmocka_unit_test(rogue_dst_region_size_refused),
		cmocka_unit_test(rogue_dst_region_gpa_refused),
		cmocka_unit_test(rogue_dst_page_size_refused),
		cmocka_unit_test(rogue_dst_more_qps_refused),
		cmocka_unit_test(rogue_dst_address_wraps_refused),
		cmocka_unit_test(rogue_dst_overlapping_windows_refused),
		cmocka_unit_test(rogue_dst_tampered_ack_refused),
		cmocka_unit_test(rogue_dst_unregistered_rkey_pass_fails),
		cmocka_unit_test(rogue_dst_window_past_registration_pass_fails),
		cmocka_unit_test(rogue_dst_hashes_other_pages_refused),
		cmocka_unit_test(rogue_dst_hashes_other_region_refused),
		cmocka_unit_test(rogue_dst_hashes_other_pass_refused),
		cmocka_unit_test(rogue_dst_hashes_unsolicited_refused),
		cmocka_unit_test(rogue_dst_zero_fill_claimed_landed_refused),
		cmocka_unit_test(rogue_dst_hash_for_zero_filled_page_refused),
		cmocka_unit_test(rogue_dst_landed_zero_beyond_notice_refused),
		cmocka_unit_test(rogue_dst_replayed_hashes_refused),
		cmocka_unit_test(rogue_dst_tampered_pass_ack_refused),
		cmocka_unit_test(rogue_dst_pass_ack_bytes_refused),
		cmocka_unit_test(rogue_dst_complete_ack_early_refused),
		cmocka_unit_test(rogue_dst_false_hashes_never_complete),
	};

	ip = devtest_ip();
	load_run_key();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
