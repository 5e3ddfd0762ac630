/* SPDX-License-Identifier: MIT */
/*
 * The loopback transport: a source and a destination in one process, wired
 * by memory copies (see xport.h for the semantics it keeps).
 *
 * Every QP has a "NIC" thread that executes its send queue in order: an
 * RDMA WRITE copies from a local MR into the peer's MR named by the rkey
 * (checked like a responder would: the peer's PD, remote write access, the
 * range), a SEND takes the peer's oldest posted receive (waiting while
 * there is none, as RNR retries would) and completes it there. With a rate
 * cap, a QP's sends share one paced wire clock with every other capped QP,
 * so several workers cannot exceed the link together.
 *
 * Locks: `fab.lock` guards connection state (listeners, ids, the condition
 * a connecting id waits on). `fab.rw` is held for reading by a NIC while it
 * touches its peer (the peer QP, the peer's MRs and CQ) and for writing
 * when peers are linked or unlinked and MRs come or go: so deregistering an
 * MR, or destroying a QP, waits for the copy under way and no later one can
 * start. Order: fab.lock, then fab.rw, then a QP's lock, then a CQ's lock,
 * then a channel's lock. `flt.lock` (fault injection) is taken alone.
 *
 * Tests can arm one fault (xport.h): the NIC counts the WRs it is about to
 * execute and applies the fault to the chosen one, before executing it,
 * with no lock held. Every object is counted while it lives (`live`), so
 * a test can check that a session leaves nothing behind.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "topo.h"
#include "xport.h"

enum lb_state {
	LB_IDLE,
	LB_LISTENING,
	LB_RESOLVED,
	LB_CONNECTING, /* active: waiting for accept or reject */
	LB_REQUESTED,  /* passive: handed to the listener, not yet accepted */
	LB_CONNECTED,
	LB_REJECTED,
	LB_DISCONNECTED,
};

struct lb_ev {
	struct lb_ev *next;
	struct rdmig__xp_event ev;
	uint8_t pdata[256];
};

struct lb_chan {
	struct rdmig__xp_chan pub;
	pthread_mutex_t lock;
	struct lb_ev *head, **tail;
};

struct lb_qp;

struct lb_id {
	struct rdmig__xp_id pub;
	enum lb_state state;
	bool passive; /* made by a connect request: the listening side's */
	int port;
	struct lb_id *peer;
	struct lb_id *next_listener;
	struct lb_id *next_all, **prev_all; /* fab.ids, under fab.lock */
	struct lb_qp *qp;
};

struct lb_pd {
	struct rdmig__xp_pd pub;
};

struct lb_mr {
	struct rdmig__xp_mr pub;
	struct lb_pd *pd;
	uint8_t *addr;
	size_t len;
	int access;
	uint32_t slot;
};

struct lb_cq {
	struct rdmig__xp_cq pub;
	pthread_mutex_t lock;
	struct ibv_wc *ring;
	uint32_t cap, head, n;
	bool armed, overrun;
};

struct lb_swr {
	uint64_t wr_id;
	enum ibv_wr_opcode op;
	bool signaled;
	uint64_t addr, raddr;
	uint32_t len, lkey, rkey;
};

struct lb_rwr {
	uint64_t wr_id, addr;
	uint32_t len, lkey;
};

struct lb_qp {
	struct lb_id *id;
	struct lb_pd *pd;
	struct lb_cq *cq;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct lb_swr *sq;
	uint32_t sq_cap, sq_head, sq_n;
	struct lb_rwr *rq;
	uint32_t rq_cap, rq_head, rq_n;
	bool error, stop;
	struct lb_qp *peer; /* under fab.rw */
	uint32_t rate_mbps;
	uint32_t qpn;	   /* unique in the process, like a device's QP numbers */
	uint32_t wr_class; /* RDMIG__LOOP_WR_PASSIVE and _DATA bits of its WRs */
	uint32_t index;	   /* its endpoint's (rdmig__xp_qp_attr.index) */
	pthread_t nic;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* connection state changed (CLOCK_MONOTONIC) */
	pthread_rwlock_t rw;
	struct lb_id *listeners;
	struct lb_id *ids; /* every id, for a fault that kills one side */
	int next_port;
	uint32_t next_qpn;
	struct lb_mr **mrs; /* under rw; slot i holds keys with low bits i + 1 */
	uint32_t nmrs;
	uint32_t mr_gen;
	pthread_mutex_t pace_lock;
	uint64_t wire_free_ns; /* the capped wire is busy until then */
	rdmig__loop_read_hook_fn hook;
	void *hook_arg;
} fab = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.rw = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP,
	.pace_lock = PTHREAD_MUTEX_INITIALIZER,
	.next_port = 40000,
};

static pthread_once_t fab_once = PTHREAD_ONCE_INIT;

/* The armed fault and the counts of WRs executed since it was set. */
static struct {
	pthread_mutex_t lock;
	struct rdmig__loop_fault f;
	struct rdmig__loop_fault_state st;
} flt = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void sleep_until(uint64_t t_ns);

/* The armed connect refusal (rdmig__loopback_refuse_connect()), under flt.lock. */
static struct {
	uint32_t index, delay_ms;
} refuse;

/* Objects alive, for rdmig__loopback_live(). */
static struct {
	atomic_int chans, ids, pds, mrs, cqs, qps, nics, fds, events;
} live;

static void fab_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fab.cond, &ca);
	pthread_condattr_destroy(&ca);
}

#define LB(type, p) ((struct type *)(void *)(p))

void rdmig__loopback_set_read_hook(rdmig__loop_read_hook_fn fn, void *arg)
{
	pthread_rwlock_wrlock(&fab.rw);
	fab.hook = fn;
	fab.hook_arg = arg;
	pthread_rwlock_unlock(&fab.rw);
}

void rdmig__loopback_set_fault(const struct rdmig__loop_fault *f)
{
	pthread_mutex_lock(&flt.lock);
	memset(&flt.st, 0, sizeof(flt.st));
	memset(&flt.f, 0, sizeof(flt.f));
	if (f)
		flt.f = *f;
	pthread_mutex_unlock(&flt.lock);
}

void rdmig__loopback_refuse_connect(uint32_t index, uint32_t delay_ms)
{
	pthread_mutex_lock(&flt.lock);
	refuse.index = index;
	refuse.delay_ms = delay_ms;
	pthread_mutex_unlock(&flt.lock);
}

/* Is this connect the armed refusal? Then it waits, as a far peer would, and fails. */
static int refused(struct lb_id *id)
{
	uint64_t until;
	bool hit;

	pthread_mutex_lock(&flt.lock);
	hit = refuse.index && id->qp && id->qp->index == refuse.index;
	if (hit)
		refuse.index = 0;
	until = rdmig__now_ns() + (uint64_t)refuse.delay_ms * 1000000;
	pthread_mutex_unlock(&flt.lock);
	if (!hit)
		return 0;
	while (rdmig__now_ns() < until &&
	       !(id->pub.chan->cancel && atomic_load(id->pub.chan->cancel)))
		sleep_until(RDMIG__MIN(until, rdmig__now_ns() + 5000000));
	if (id->pub.chan->cancel && atomic_load(id->pub.chan->cancel))
		return rdmig__err(-ECANCELED, "connecting: cancelled");
	return rdmig__err(-ECONNREFUSED, "connecting: the destination refused (loopback fault)");
}

void rdmig__loopback_fault_state(struct rdmig__loop_fault_state *st)
{
	pthread_mutex_lock(&flt.lock);
	*st = flt.st;
	pthread_mutex_unlock(&flt.lock);
}

void rdmig__loopback_live(struct rdmig__loop_live *l)
{
	*l = (struct rdmig__loop_live){
		.chans = atomic_load(&live.chans),
		.ids = atomic_load(&live.ids),
		.pds = atomic_load(&live.pds),
		.mrs = atomic_load(&live.mrs),
		.cqs = atomic_load(&live.cqs),
		.qps = atomic_load(&live.qps),
		.nics = atomic_load(&live.nics),
		.fds = atomic_load(&live.fds),
		.events = atomic_load(&live.events),
	};
}

int rdmig__loopback_exposed_mrs(void)
{
	int n = 0;

	pthread_rwlock_rdlock(&fab.rw);
	for (uint32_t i = 0; i < fab.nmrs; i++)
		n += fab.mrs[i] && (fab.mrs[i]->access & IBV_ACCESS_REMOTE_WRITE);
	pthread_rwlock_unlock(&fab.rw);
	return n;
}

/* --- events ----------------------------------------------------------------- */

static int lb_chan_create(struct rdmig__xp_chan **chp)
{
	struct lb_chan *c = calloc(1, sizeof(*c));

	pthread_once(&fab_once, fab_init);
	if (!c)
		return rdmig__err(-ENOMEM, "no memory for an event channel");
	c->pub.ops = &rdmig__xp_loopback;
	c->pub.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->pub.fd < 0) {
		int ret = rdmig__err(-errno, "eventfd: %s", strerror(errno));

		free(c);
		return ret;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->tail = &c->head;
	atomic_fetch_add(&live.chans, 1);
	atomic_fetch_add(&live.fds, 1);
	*chp = &c->pub;
	return 0;
}

static void wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow at our rates; nothing to do. */
	}
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing was pending. */
	}
}

static void push_ev(struct rdmig__xp_chan *pub, enum rdma_cm_event_type type, struct lb_id *id,
		    const void *pdata, uint8_t len, uint32_t peer_qpn)
{
	struct lb_chan *c = LB(lb_chan, pub);
	struct lb_ev *e = calloc(1, sizeof(*e));

	if (!e) {
		rdmig__log(RDMIG__LOG_ERR, "loopback: no memory for a %s event",
			   rdma_event_str(type));
		return;
	}
	atomic_fetch_add(&live.events, 1);
	e->ev.event = type;
	e->ev.id = &id->pub;
	e->ev.impl = e;
	e->ev.peer_qpn = peer_qpn;
	if (len) {
		memcpy(e->pdata, pdata, len);
		e->ev.pdata = e->pdata;
		e->ev.pdlen = len;
	}
	pthread_mutex_lock(&c->lock);
	*c->tail = e;
	c->tail = &e->next;
	wake(c->pub.fd);
	pthread_mutex_unlock(&c->lock);
}

static void push_event(struct rdmig__xp_chan *pub, enum rdma_cm_event_type type, struct lb_id *id,
		       const void *pdata, uint8_t len)
{
	push_ev(pub, type, id, pdata, len, 0);
}

/* A connection request carries the requester's QP number, as rdma_cm's does. */
static void push_request(struct rdmig__xp_chan *pub, struct lb_id *id, const void *pdata,
			 uint8_t len, uint32_t qpn)
{
	push_ev(pub, RDMA_CM_EVENT_CONNECT_REQUEST, id, pdata, len, qpn);
}

static int lb_chan_get(struct rdmig__xp_chan *pub, struct rdmig__xp_event *ev)
{
	struct lb_chan *c = LB(lb_chan, pub);
	struct lb_ev *e;

	pthread_mutex_lock(&c->lock);
	e = c->head;
	if (e) {
		c->head = e->next;
		if (!c->head)
			c->tail = &c->head;
		*ev = e->ev;
	} else {
		drain(c->pub.fd);
	}
	pthread_mutex_unlock(&c->lock);
	return e ? 0 : -EAGAIN;
}

static void ev_free(struct lb_ev *e)
{
	atomic_fetch_sub(&live.events, 1);
	free(e);
}

static void lb_chan_ack(struct rdmig__xp_event *ev)
{
	ev_free(ev->impl);
}

/* Removes the events waiting for `id` (it is being destroyed). */
static void chan_drop(struct lb_chan *c, const struct lb_id *id)
{
	struct lb_ev **pp, *e;

	pthread_mutex_lock(&c->lock);
	for (pp = &c->head; (e = *pp);) {
		if (e->ev.id == &id->pub) {
			*pp = e->next;
			ev_free(e);
		} else {
			pp = &e->next;
		}
	}
	c->tail = &c->head;
	while (*c->tail)
		c->tail = &(*c->tail)->next;
	pthread_mutex_unlock(&c->lock);
}

static void lb_id_destroy(struct rdmig__xp_id *pub);

static void lb_chan_destroy(struct rdmig__xp_chan *pub)
{
	struct lb_chan *c = LB(lb_chan, pub);

	if (!pub)
		return;
	/* Connection requests nobody took: their ids die with them. */
	for (;;) {
		struct lb_ev *e;

		pthread_mutex_lock(&c->lock);
		e = c->head;
		if (e)
			c->head = e->next;
		pthread_mutex_unlock(&c->lock);
		if (!e)
			break;
		if (e->ev.event == RDMA_CM_EVENT_CONNECT_REQUEST)
			lb_id_destroy(e->ev.id);
		ev_free(e);
	}
	close(c->pub.fd);
	pthread_mutex_destroy(&c->lock);
	free(c);
	atomic_fetch_sub(&live.chans, 1);
	atomic_fetch_sub(&live.fds, 1);
}

/* --- ids and connections ---------------------------------------------------- */

/* With fab.lock held: a new id joins fab.ids. */
static void id_link(struct lb_id *id)
{
	id->next_all = fab.ids;
	if (fab.ids)
		fab.ids->prev_all = &id->next_all;
	id->prev_all = &fab.ids;
	fab.ids = id;
	atomic_fetch_add(&live.ids, 1);
}

static int lb_id_create(struct rdmig__xp_chan *ch, struct rdmig__xp_id **idp)
{
	struct lb_id *id = calloc(1, sizeof(*id));

	if (!id)
		return rdmig__err(-ENOMEM, "no memory for a connection id");
	id->pub.ops = &rdmig__xp_loopback;
	id->pub.chan = ch;
	pthread_mutex_lock(&fab.lock);
	id_link(id);
	pthread_mutex_unlock(&fab.lock);
	*idp = &id->pub;
	return 0;
}

static int port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return -1;
}

static struct lb_id *find_listener(int port)
{
	for (struct lb_id *l = fab.listeners; l; l = l->next_listener)
		if (l->port == port)
			return l;
	return NULL;
}

static int lb_listen(struct rdmig__xp_id *pub, const struct sockaddr *addr)
{
	struct lb_id *id = LB(lb_id, pub);
	int port = port_of(addr);

	if (port < 0)
		return rdmig__err(-EAFNOSUPPORT, "loopback: not an IP address");
	pthread_mutex_lock(&fab.lock);
	if (port == 0) {
		do
			port = fab.next_port = fab.next_port >= 65535 ? 40000 : fab.next_port + 1;
		while (find_listener(port));
	} else if (find_listener(port)) {
		pthread_mutex_unlock(&fab.lock);
		return rdmig__err(-EADDRINUSE, "cannot listen on loopback port %d: in use", port);
	}
	id->port = port;
	id->state = LB_LISTENING;
	id->next_listener = fab.listeners;
	fab.listeners = id;
	pthread_mutex_unlock(&fab.lock);
	return port;
}

static int lb_resolve(struct rdmig__xp_id *pub, const struct sockaddr *addr, int timeout_ms)
{
	struct lb_id *id = LB(lb_id, pub);
	int port = port_of(addr);

	(void)timeout_ms;
	if (port <= 0)
		return rdmig__err(-EAFNOSUPPORT, "loopback: not an IP address with a port");
	pthread_mutex_lock(&fab.lock);
	id->port = port;
	id->state = LB_RESOLVED;
	pthread_mutex_unlock(&fab.lock);
	return 0;
}

static void qp_set_error(struct lb_qp *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->error = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static int lb_connect(struct rdmig__xp_id *pub, const void *pdata, uint8_t len, int timeout_ms)
{
	struct lb_id *id = LB(lb_id, pub), *l, *p;
	uint64_t deadline = rdmig__now_ns() + (uint64_t)timeout_ms * 1000000;
	struct timespec ts = { .tv_sec = (time_t)(deadline / 1000000000),
			       .tv_nsec = (long)(deadline % 1000000000) };
	int ret = refused(id);

	if (ret)
		return ret;
	pthread_mutex_lock(&fab.lock);
	if (id->state != LB_RESOLVED || !id->qp) {
		pthread_mutex_unlock(&fab.lock);
		return rdmig__err(-EINVAL, "loopback: connect before resolve and QP creation");
	}
	l = find_listener(id->port);
	p = l ? calloc(1, sizeof(*p)) : NULL;
	if (!p) {
		pthread_mutex_unlock(&fab.lock);
		return l ? rdmig__err(-ENOMEM, "no memory to connect")
			 : rdmig__err(-ECONNREFUSED,
				      "connecting: nobody listens on loopback port %d", id->port);
	}
	p->pub.ops = &rdmig__xp_loopback;
	p->pub.chan = l->pub.chan;
	p->passive = true;
	id_link(p);
	p->state = LB_REQUESTED;
	p->peer = id;
	id->peer = p;
	id->state = LB_CONNECTING;
	push_request(l->pub.chan, p, pdata, len, id->qp->qpn);
	/* In slices, to notice a cancel (rdmig__xp_chan.cancel). */
	while (id->state == LB_CONNECTING && rdmig__now_ns() < deadline &&
	       !(id->pub.chan->cancel && atomic_load(id->pub.chan->cancel))) {
		uint64_t t = RDMIG__MIN(deadline, rdmig__now_ns() + 20ull * 1000000);

		ts = (struct timespec){ .tv_sec = (time_t)(t / 1000000000),
					.tv_nsec = (long)(t % 1000000000) };
		pthread_cond_timedwait(&fab.cond, &fab.lock, &ts);
	}
	if (id->state == LB_CONNECTING) {
		ret = id->pub.chan->cancel && atomic_load(id->pub.chan->cancel)
			      ? rdmig__err(-ECANCELED, "connecting: cancelled")
			      : rdmig__err(-ETIMEDOUT, "connecting: no answer within %d ms",
					   timeout_ms);
		if (id->peer)
			id->peer->peer = NULL;
		id->peer = NULL;
		id->state = LB_DISCONNECTED;
	} else if (id->state != LB_CONNECTED) {
		ret = rdmig__err(-ECONNREFUSED, "connecting: the destination refused");
	}
	pthread_mutex_unlock(&fab.lock);
	return ret;
}

static int lb_accept(struct rdmig__xp_id *pub)
{
	struct lb_id *id = LB(lb_id, pub), *a;

	pthread_mutex_lock(&fab.lock);
	a = id->peer;
	if (id->state != LB_REQUESTED || !a || a->state != LB_CONNECTING || !id->qp || !a->qp) {
		pthread_mutex_unlock(&fab.lock);
		return rdmig__err(-ECONNRESET, "loopback: the source gave up connecting");
	}
	pthread_rwlock_wrlock(&fab.rw);
	id->qp->peer = a->qp;
	a->qp->peer = id->qp;
	pthread_rwlock_unlock(&fab.rw);
	id->state = LB_CONNECTED;
	a->state = LB_CONNECTED;
	pthread_cond_broadcast(&fab.cond);
	push_event(id->pub.chan, RDMA_CM_EVENT_ESTABLISHED, id, NULL, 0);
	pthread_mutex_unlock(&fab.lock);
	return 0;
}

static void lb_reject(struct rdmig__xp_id *pub)
{
	struct lb_id *id = LB(lb_id, pub), *a;

	pthread_mutex_lock(&fab.lock);
	a = id->peer;
	if (a && a->state == LB_CONNECTING) {
		a->state = LB_REJECTED;
		pthread_cond_broadcast(&fab.cond);
	}
	if (a && a->peer == id)
		a->peer = NULL;
	id->peer = NULL;
	id->state = LB_REJECTED;
	pthread_mutex_unlock(&fab.lock);
}

/* With fab.lock held. */
static void disconnect_locked(struct lb_id *id)
{
	struct lb_id *p = id->peer;

	if (id->state != LB_CONNECTED)
		return;
	id->state = LB_DISCONNECTED;
	qp_set_error(id->qp);
	if (p && p->state == LB_CONNECTED) {
		p->state = LB_DISCONNECTED;
		qp_set_error(p->qp);
		push_event(p->pub.chan, RDMA_CM_EVENT_DISCONNECTED, p, NULL, 0);
	}
}

static void lb_disconnect(struct rdmig__xp_id *pub)
{
	pthread_mutex_lock(&fab.lock);
	disconnect_locked(LB(lb_id, pub));
	pthread_mutex_unlock(&fab.lock);
}

static void lb_qp_destroy(struct rdmig__xp_id *pub);

static void lb_id_destroy(struct rdmig__xp_id *pub)
{
	struct lb_id *id = LB(lb_id, pub);

	if (!pub)
		return;
	pthread_mutex_lock(&fab.lock);
	disconnect_locked(id);
	pthread_mutex_unlock(&fab.lock);
	lb_qp_destroy(pub);

	pthread_mutex_lock(&fab.lock);
	if (id->peer) {
		if (id->peer->state == LB_CONNECTING) {
			id->peer->state = LB_REJECTED;
			pthread_cond_broadcast(&fab.cond);
		}
		if (id->peer->peer == id)
			id->peer->peer = NULL;
	}
	for (struct lb_id **pp = &fab.listeners; *pp; pp = &(*pp)->next_listener)
		if (*pp == id) {
			*pp = id->next_listener;
			break;
		}
	*id->prev_all = id->next_all;
	if (id->next_all)
		id->next_all->prev_all = id->prev_all;
	pthread_mutex_unlock(&fab.lock);
	chan_drop(LB(lb_chan, id->pub.chan), id);
	free(id);
	atomic_fetch_sub(&live.ids, 1);
}

/*
 * Under fab.lock, which every push of an event for an id holds: no event
 * for it is queued meanwhile, so its events keep their order.
 */
static int lb_id_migrate(struct rdmig__xp_id *pub, struct rdmig__xp_chan *to)
{
	struct lb_chan *from = LB(lb_chan, pub->chan), *c = LB(lb_chan, to);
	struct lb_ev **pp, *e, *moved = NULL, **mtail = &moved;

	if (from == c)
		return 0;
	pthread_mutex_lock(&fab.lock);
	pthread_mutex_lock(&from->lock);
	for (pp = &from->head; (e = *pp);) {
		if (e->ev.id == pub) {
			*pp = e->next;
			e->next = NULL;
			*mtail = e;
			mtail = &e->next;
		} else {
			pp = &e->next;
		}
	}
	from->tail = &from->head;
	while (*from->tail)
		from->tail = &(*from->tail)->next;
	pthread_mutex_unlock(&from->lock);
	pub->chan = to;
	if (moved) {
		pthread_mutex_lock(&c->lock);
		*c->tail = moved;
		c->tail = mtail;
		wake(c->pub.fd);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&fab.lock);
	return 0;
}

/* --- the device: PDs, MRs, CQs ------------------------------------------------ */

static int lb_conn_info(struct rdmig__xp_id *pub, struct rdmig__xp_conn_info *ci)
{
	struct lb_id *id = LB(lb_id, pub);
	int ret = 0;

	memset(ci, 0, sizeof(*ci));
	/* Both ends are this host: ::ffff:127.0.0.1. */
	ci->local_gid[10] = ci->local_gid[11] = ci->peer_gid[10] = ci->peer_gid[11] = 0xff;
	ci->local_gid[12] = ci->peer_gid[12] = 127;
	ci->local_gid[15] = ci->peer_gid[15] = 1;
	pthread_mutex_lock(&fab.lock);
	if (id->state != LB_CONNECTED || !id->qp || !id->peer || !id->peer->qp)
		ret = rdmig__err(-ENOTCONN, "loopback: connection info of an id not connected");
	else
		ci->local_qpn = id->qp->qpn, ci->peer_qpn = id->peer->qp->qpn;
	pthread_mutex_unlock(&fab.lock);
	return ret;
}

static uint32_t lb_qp_num(struct rdmig__xp_id *pub)
{
	struct lb_id *id = LB(lb_id, pub);
	uint32_t n;

	pthread_mutex_lock(&fab.lock);
	n = id->qp ? id->qp->qpn : 0;
	pthread_mutex_unlock(&fab.lock);
	return n;
}

static int lb_pd_alloc(struct rdmig__xp_id *id, struct rdmig__xp_pd **pdp)
{
	struct lb_pd *p = calloc(1, sizeof(*p));

	(void)id;
	if (!p)
		return rdmig__err(-ENOMEM, "no memory for a protection domain");
	p->pub.ops = &rdmig__xp_loopback;
	atomic_fetch_add(&live.pds, 1);
	*pdp = &p->pub;
	return 0;
}

static void lb_pd_free(struct rdmig__xp_pd *pd)
{
	if (pd)
		atomic_fetch_sub(&live.pds, 1);
	free(pd);
}

static bool lb_pd_on_dev_of(const struct rdmig__xp_pd *pd, const struct rdmig__xp_id *id)
{
	(void)pd;
	(void)id;
	return true; /* one device */
}

static const char *lb_dev_name(const struct rdmig__xp_pd *pd)
{
	(void)pd;
	return "loopback";
}

static uint64_t lb_max_msg(const struct rdmig__xp_pd *pd)
{
	(void)pd;
	return 1ull << 31;
}

static int lb_dev_cpus(const struct rdmig__xp_pd *pd, int *cpus, int max)
{
	(void)pd;
	return rdmig__topo_device_cpus(NULL, cpus, max);
}

static int lb_mr_reg(struct rdmig__xp_pd *pd, void *addr, size_t len, int access,
		     struct rdmig__xp_mr **mrp)
{
	struct lb_mr *m;
	uint32_t slot;

	/* As verbs: remote write needs local write too. */
	if (!addr || !len ||
	    ((access & IBV_ACCESS_REMOTE_WRITE) && !(access & IBV_ACCESS_LOCAL_WRITE)))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_rwlock_wrlock(&fab.rw);
	for (slot = 0; slot < fab.nmrs && fab.mrs[slot]; slot++)
		;
	if (slot == fab.nmrs) {
		uint32_t n = fab.nmrs ? fab.nmrs * 2 : 64;
		/* Keys carry slot + 1 in their low 20 bits. */
		struct lb_mr **grown = n < (1u << 20) ? realloc(fab.mrs, n * sizeof(*grown)) : NULL;

		if (!grown) {
			pthread_rwlock_unlock(&fab.rw);
			free(m);
			return -ENOMEM;
		}
		memset(grown + fab.nmrs, 0, (n - fab.nmrs) * sizeof(*grown));
		fab.mrs = grown;
		fab.nmrs = n;
	}
	m->pub.ops = &rdmig__xp_loopback;
	m->pub.lkey = m->pub.rkey = (slot + 1) | (++fab.mr_gen & 0xfffu) << 20;
	m->pd = LB(lb_pd, pd);
	m->addr = addr;
	m->len = len;
	m->access = access;
	m->slot = slot;
	fab.mrs[slot] = m;
	pthread_rwlock_unlock(&fab.rw);
	atomic_fetch_add(&live.mrs, 1);
	*mrp = &m->pub;
	return 0;
}

static void lb_mr_dereg(struct rdmig__xp_mr *pub)
{
	struct lb_mr *m = LB(lb_mr, pub);

	if (!pub)
		return;
	/* Waits for a copy into or out of it that is under way. */
	pthread_rwlock_wrlock(&fab.rw);
	fab.mrs[m->slot] = NULL;
	pthread_rwlock_unlock(&fab.rw);
	free(m);
	atomic_fetch_sub(&live.mrs, 1);
}

/* With fab.rw held: the MR of `key` in `pd` covering [addr, addr + len) with `access`. */
static const struct lb_mr *mr_find(uint32_t key, const struct lb_pd *pd, uint64_t addr,
				   uint64_t len, int access)
{
	uint32_t slot = (key & 0xfffffu) - 1;
	const struct lb_mr *m = slot < fab.nmrs ? fab.mrs[slot] : NULL;

	if (!m || m->pub.lkey != key || m->pd != pd || (m->access & access) != access)
		return NULL;
	if (addr < (uintptr_t)m->addr || len > m->len || addr - (uintptr_t)m->addr > m->len - len)
		return NULL;
	return m;
}

static int lb_cq_create(struct rdmig__xp_pd *pd, int depth, struct rdmig__xp_cq **cqp)
{
	struct lb_cq *c = calloc(1, sizeof(*c));

	(void)pd;
	if (!c || depth <= 0 || !(c->ring = calloc((size_t)depth, sizeof(*c->ring)))) {
		free(c);
		return rdmig__err(-ENOMEM, "no memory for a CQ of %d", depth);
	}
	c->pub.ops = &rdmig__xp_loopback;
	c->pub.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->pub.fd < 0) {
		int ret = rdmig__err(-errno, "eventfd: %s", strerror(errno));

		free(c->ring);
		free(c);
		return ret;
	}
	c->cap = (uint32_t)depth;
	pthread_mutex_init(&c->lock, NULL);
	atomic_fetch_add(&live.cqs, 1);
	atomic_fetch_add(&live.fds, 1);
	*cqp = &c->pub;
	return 0;
}

static void lb_cq_destroy(struct rdmig__xp_cq *pub)
{
	struct lb_cq *c = LB(lb_cq, pub);

	if (!pub)
		return;
	close(c->pub.fd);
	pthread_mutex_destroy(&c->lock);
	free(c->ring);
	free(c);
	atomic_fetch_sub(&live.cqs, 1);
	atomic_fetch_sub(&live.fds, 1);
}

static void cq_push(struct lb_cq *c, uint64_t wr_id, enum ibv_wc_status status,
		    enum ibv_wc_opcode op, uint32_t byte_len)
{
	pthread_mutex_lock(&c->lock);
	if (c->n == c->cap) {
		/* A verbs CQ overrun is fatal to the CQ; so it is here. */
		if (!c->overrun)
			rdmig__log(RDMIG__LOG_ERR, "loopback: CQ of %u overrun", c->cap);
		c->overrun = true;
	} else {
		struct ibv_wc *wc = &c->ring[(c->head + c->n++) % c->cap];

		memset(wc, 0, sizeof(*wc));
		wc->wr_id = wr_id;
		wc->status = status;
		wc->opcode = op;
		wc->byte_len = byte_len;
	}
	if (c->armed || c->overrun) {
		c->armed = false;
		wake(c->pub.fd);
	}
	pthread_mutex_unlock(&c->lock);
}

static int lb_cq_poll(struct rdmig__xp_cq *pub, int n, struct ibv_wc *wc)
{
	struct lb_cq *c = LB(lb_cq, pub);
	int got = 0;

	pthread_mutex_lock(&c->lock);
	if (c->overrun)
		got = -1;
	while (got >= 0 && got < n && c->n) {
		wc[got++] = c->ring[c->head];
		c->head = (c->head + 1) % c->cap;
		c->n--;
	}
	pthread_mutex_unlock(&c->lock);
	return got;
}

static int lb_cq_arm(struct rdmig__xp_cq *pub)
{
	struct lb_cq *c = LB(lb_cq, pub);

	pthread_mutex_lock(&c->lock);
	c->armed = true;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

static void lb_cq_ack(struct rdmig__xp_cq *pub)
{
	drain(pub->fd);
}

/* --- QPs and the NIC ----------------------------------------------------------- */

static void sleep_until(uint64_t t_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(t_ns / 1000000000),
			       .tv_nsec = (long)(t_ns % 1000000000) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * A capped QP books the wire for len bytes' worth of time, after whatever
 * is already booked on it, and returns when that slot ends (0: uncapped).
 * The copy runs inside the slot, as a NIC's DMA read overlaps its
 * transmission: the wire, not the copy, sets the rate while the copy keeps
 * up. A slot may start up to PACE_SLACK_NS in the past: that is how late a
 * sleeping NIC thread wakes, and a wire with work queued does not idle.
 */
#define PACE_SLACK_NS 100000

static uint64_t book(const struct lb_qp *q, uint64_t len)
{
	uint64_t now, end;

	if (!q->rate_mbps)
		return 0;
	now = rdmig__now_ns();
	pthread_mutex_lock(&fab.pace_lock);
	fab.wire_free_ns =
		RDMIG__MAX(fab.wire_free_ns, now - PACE_SLACK_NS) + len * 8000 / q->rate_mbps;
	end = fab.wire_free_ns;
	pthread_mutex_unlock(&fab.pace_lock);
	return end;
}

/*
 * Completes no earlier than the slot ends. Short waits are not slept one
 * by one: the booked time runs ahead, and a later, longer sleep catches up.
 */
static void pace(uint64_t end)
{
	if (end > rdmig__now_ns() + PACE_SLACK_NS)
		sleep_until(end);
}

/* Copies a WRITE's bytes, calling the test hook between pieces. */
static void copy_out(uint8_t *dst, const uint8_t *src, uint64_t len)
{
	rdmig__loop_read_hook_fn hook = fab.hook;

	if (!hook) {
		memcpy(dst, src, len);
		return;
	}
	for (uint64_t off = 0; off < len; off += RDMIG__LOOP_PIECE) {
		uint64_t n = RDMIG__MIN(len - off, (uint64_t)RDMIG__LOOP_PIECE);

		hook(fab.hook_arg, src, len, off);
		memcpy(dst + off, src + off, n);
	}
}

static enum ibv_wc_status do_write(struct lb_qp *q, struct lb_qp *p, const struct lb_swr *w)
{
	const struct lb_mr *to;

	bool dead;

	if (w->len && !mr_find(w->lkey, q->pd, w->addr, w->len, 0))
		return IBV_WC_LOC_PROT_ERR;
	/* A responder in error places nothing; the requester retries in vain. */
	pthread_mutex_lock(&p->lock);
	dead = p->error;
	pthread_mutex_unlock(&p->lock);
	if (dead)
		return IBV_WC_RETRY_EXC_ERR;
	to = mr_find(w->rkey, p->pd, w->raddr, w->len, IBV_ACCESS_REMOTE_WRITE);
	if (!to) {
		qp_set_error(p); /* the responder's QP fails too */
		return IBV_WC_REM_ACCESS_ERR;
	}
	copy_out((uint8_t *)(uintptr_t)w->raddr, (const uint8_t *)(uintptr_t)w->addr, w->len);
	return IBV_WC_SUCCESS;
}

/* 1: no receive posted yet (try again), else a completion status. */
static int do_send(struct lb_qp *q, struct lb_qp *p, const struct lb_swr *w)
{
	struct lb_rwr r;

	if (w->len && !mr_find(w->lkey, q->pd, w->addr, w->len, 0))
		return IBV_WC_LOC_PROT_ERR;
	pthread_mutex_lock(&p->lock);
	if (p->error) {
		pthread_mutex_unlock(&p->lock);
		return IBV_WC_RETRY_EXC_ERR;
	}
	if (!p->rq_n) {
		pthread_mutex_unlock(&p->lock);
		return 1;
	}
	r = p->rq[p->rq_head];
	p->rq_head = (p->rq_head + 1) % p->rq_cap;
	p->rq_n--;
	pthread_mutex_unlock(&p->lock);

	if (w->len > r.len ||
	    (w->len && !mr_find(r.lkey, p->pd, r.addr, w->len, IBV_ACCESS_LOCAL_WRITE))) {
		cq_push(p->cq, r.wr_id, IBV_WC_LOC_LEN_ERR, IBV_WC_RECV, 0);
		qp_set_error(p);
		return IBV_WC_REM_INV_REQ_ERR;
	}
	memcpy((void *)(uintptr_t)r.addr, (const void *)(uintptr_t)w->addr, w->len);
	cq_push(p->cq, r.wr_id, IBV_WC_SUCCESS, IBV_WC_RECV, w->len);
	return IBV_WC_SUCCESS;
}

static bool qp_quit(struct lb_qp *q)
{
	bool quit;

	pthread_mutex_lock(&q->lock);
	quit = q->stop || q->error;
	pthread_mutex_unlock(&q->lock);
	return quit;
}

static enum ibv_wc_status execute(struct lb_qp *q, const struct lb_swr *w)
{
	uint64_t end = book(q, w->len);
	int st;

	for (;;) {
		pthread_rwlock_rdlock(&fab.rw);
		if (!q->peer)
			st = IBV_WC_RETRY_EXC_ERR; /* nobody answers */
		else if (w->op == IBV_WR_RDMA_WRITE)
			st = do_write(q, q->peer, w);
		else
			st = do_send(q, q->peer, w);
		pthread_rwlock_unlock(&fab.rw);
		if (st != 1) {
			pace(end);
			return (enum ibv_wc_status)st;
		}
		/* Receiver not ready: retry, as rnr_retry 7 does, until torn down. */
		if (qp_quit(q))
			return IBV_WC_WR_FLUSH_ERR;
		usleep(20);
	}
}

static enum ibv_wc_opcode wc_op(enum ibv_wr_opcode op)
{
	return op == IBV_WR_RDMA_WRITE ? IBV_WC_RDMA_WRITE : IBV_WC_SEND;
}

/* With q->lock held: completes everything queued with a flush error. */
static void flush_all(struct lb_qp *q)
{
	while (q->sq_n) {
		const struct lb_swr *w = &q->sq[q->sq_head];

		cq_push(q->cq, w->wr_id, IBV_WC_WR_FLUSH_ERR, wc_op(w->op), 0);
		q->sq_head = (q->sq_head + 1) % q->sq_cap;
		q->sq_n--;
	}
	while (q->rq_n) {
		cq_push(q->cq, q->rq[q->rq_head].wr_id, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV, 0);
		q->rq_head = (q->rq_head + 1) % q->rq_cap;
		q->rq_n--;
	}
}

/* --- fault injection ------------------------------------------------------------ */

static const char *const fault_names[] = {
	[RDMIG__LOOP_FAULT_NONE] = "none",
	[RDMIG__LOOP_FAULT_QP_ERROR] = "QP error",
	[RDMIG__LOOP_FAULT_PEER_ERROR] = "peer QP error",
	[RDMIG__LOOP_FAULT_DROP] = "drop",
	[RDMIG__LOOP_FAULT_DUP] = "duplicate",
	[RDMIG__LOOP_FAULT_DELAY] = "delay",
	[RDMIG__LOOP_FAULT_KILL_PEER] = "kill the peer",
	[RDMIG__LOOP_FAULT_KILL_SELF] = "kill the requester",
};

/*
 * A process crash on one side: every connected id on `ch` (a side's event
 * channel holds all of its session's ids) drops at once, as the kernel
 * does for a dead process. The dead side gets no event; its QPs are in
 * error, so whatever is still running there fails instead of going on.
 */
static void kill_side(struct lb_qp *q, bool peer)
{
	struct rdmig__xp_chan *ch;

	pthread_mutex_lock(&fab.lock);
	ch = !peer ? q->id->pub.chan : q->id->peer ? q->id->peer->pub.chan : NULL;
	for (struct lb_id *i = fab.ids; ch && i; i = i->next_all)
		if (i->pub.chan == ch)
			disconnect_locked(i);
	pthread_mutex_unlock(&fab.lock);
}

/* Holds the QP's queue for ms, unless it goes to error or away meanwhile. */
static void hold(struct lb_qp *q, uint32_t ms)
{
	uint64_t end = rdmig__now_ns() + (uint64_t)ms * 1000000;
	struct timespec ts = { .tv_sec = (time_t)(end / 1000000000),
			       .tv_nsec = (long)(end % 1000000000) };

	pthread_mutex_lock(&q->lock);
	while (!q->stop && !q->error)
		if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&q->lock);
}

/*
 * Counts a WR about to execute and, when it is the armed fault's, applies
 * the fault. Returns the fault's kind (NONE for every other WR). No lock
 * held on entry.
 */
static enum rdmig__loop_fault_kind fault_apply(struct lb_qp *q, const struct lb_swr *w)
{
	uint32_t cls = q->wr_class | (w->op == IBV_WR_RDMA_WRITE ? RDMIG__LOOP_WR_WRITE : 0);
	struct rdmig__loop_fault f;
	bool hit;

	pthread_mutex_lock(&flt.lock);
	f = flt.f;
	hit = ++flt.st.count[cls] == f.nth && f.kind != RDMIG__LOOP_FAULT_NONE &&
	      f.wr_class == cls && !flt.st.fired;
	if (hit) {
		flt.st.fired = true;
		flt.st.fired_ns = rdmig__now_ns();
	}
	pthread_mutex_unlock(&flt.lock);
	if (!hit)
		return RDMIG__LOOP_FAULT_NONE;
	rdmig__log(RDMIG__LOG_INFO, "loopback: fault '%s' on WR %llu of class %u (%s %s %s)",
		   f.kind < RDMIG__ARRAY_SIZE(fault_names) ? fault_names[f.kind] : "?",
		   (unsigned long long)f.nth, cls,
		   cls & RDMIG__LOOP_WR_PASSIVE ? "passive" : "active",
		   cls & RDMIG__LOOP_WR_DATA ? "data" : "control",
		   cls & RDMIG__LOOP_WR_WRITE ? "WRITE" : "SEND");
	switch (f.kind) {
	case RDMIG__LOOP_FAULT_QP_ERROR:
		qp_set_error(q);
		break;
	case RDMIG__LOOP_FAULT_PEER_ERROR:
		pthread_rwlock_rdlock(&fab.rw);
		qp_set_error(q->peer);
		pthread_rwlock_unlock(&fab.rw);
		break;
	case RDMIG__LOOP_FAULT_DELAY:
		hold(q, f.delay_ms);
		break;
	case RDMIG__LOOP_FAULT_KILL_PEER:
	case RDMIG__LOOP_FAULT_KILL_SELF:
		kill_side(q, f.kind == RDMIG__LOOP_FAULT_KILL_PEER);
		break;
	default:
		break;
	}
	return f.kind;
}

static void *nic_main(void *arg)
{
	struct lb_qp *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		enum rdmig__loop_fault_kind fault;
		struct lb_swr w;
		enum ibv_wc_status st;

		while (!q->stop && !q->sq_n && !(q->error && q->rq_n))
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop)
			break;
		if (q->error) {
			flush_all(q);
			continue;
		}
		w = q->sq[q->sq_head];
		pthread_mutex_unlock(&q->lock);
		fault = fault_apply(q, &w);
		if (fault != RDMIG__LOOP_FAULT_NONE) {
			/* The fault may have put this QP in error (or it went
			 * meanwhile): then w is flushed with the rest. */
			pthread_mutex_lock(&q->lock);
			if (q->stop)
				break;
			if (q->error)
				continue;
			pthread_mutex_unlock(&q->lock);
		}
		if (fault == RDMIG__LOOP_FAULT_DROP) {
			st = IBV_WC_SUCCESS; /* the requester never learns */
		} else {
			st = execute(q, &w);
			if (fault == RDMIG__LOOP_FAULT_DUP && st == IBV_WC_SUCCESS)
				st = execute(q, &w);
		}
		pthread_mutex_lock(&q->lock);
		if (q->stop)
			break;
		q->sq_head = (q->sq_head + 1) % q->sq_cap;
		q->sq_n--;
		if (st != IBV_WC_SUCCESS)
			q->error = true;
		if (st != IBV_WC_SUCCESS || w.signaled)
			cq_push(q->cq, w.wr_id, st, wc_op(w.op), 0);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static int lb_qp_create(struct rdmig__xp_id *pub, struct rdmig__xp_pd *pd,
			const struct rdmig__xp_qp_attr *attr)
{
	struct lb_id *id = LB(lb_id, pub);
	struct lb_qp *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;
	int ret;

	if (!q || !(q->sq = calloc(attr->send_depth, sizeof(*q->sq))) ||
	    !(q->rq = calloc(attr->recv_depth, sizeof(*q->rq)))) {
		ret = rdmig__err(-ENOMEM, "no memory for a loopback QP");
		goto fail;
	}
	q->id = id;
	q->pd = LB(lb_pd, pd);
	q->cq = LB(lb_cq, attr->cq);
	q->sq_cap = attr->send_depth;
	q->rq_cap = attr->recv_depth;
	q->rate_mbps = attr->rate_mbps;
	q->index = attr->index;
	q->wr_class = (id->passive ? RDMIG__LOOP_WR_PASSIVE : 0) |
		      (attr->index ? RDMIG__LOOP_WR_DATA : 0);
	pthread_mutex_init(&q->lock, NULL);
	/* Monotonic: a delayed WR's timed wait must not follow clock steps. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	ret = pthread_create(&q->nic, NULL, nic_main, q);
	if (ret) {
		ret = rdmig__err(-ret, "cannot start a loopback NIC thread: %s", strerror(ret));
		pthread_cond_destroy(&q->cond);
		pthread_mutex_destroy(&q->lock);
		goto fail;
	}
	atomic_fetch_add(&live.qps, 1);
	atomic_fetch_add(&live.nics, 1);
	pthread_mutex_lock(&fab.lock);
	q->qpn = ++fab.next_qpn & 0xffffff;
	id->qp = q;
	pthread_mutex_unlock(&fab.lock);
	return 0;
fail:
	if (q) {
		free(q->sq);
		free(q->rq);
	}
	free(q);
	return ret;
}

static void lb_qp_destroy(struct rdmig__xp_id *pub)
{
	struct lb_id *id = LB(lb_id, pub);
	struct lb_qp *q = id->qp;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->nic, NULL);
	atomic_fetch_sub(&live.nics, 1);

	pthread_mutex_lock(&fab.lock);
	pthread_rwlock_wrlock(&fab.rw);
	if (q->peer && q->peer->peer == q)
		q->peer->peer = NULL;
	pthread_rwlock_unlock(&fab.rw);
	id->qp = NULL;
	pthread_mutex_unlock(&fab.lock);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q->sq);
	free(q->rq);
	free(q);
	atomic_fetch_sub(&live.qps, 1);
}

static int lb_qp_error(struct rdmig__xp_id *pub)
{
	/* do_write() and do_send() check the responder's flag under fab.rw's
	 * read lock: taking it for writing waits out a copy under way, so none
	 * into this QP's PD is placed once this returns. */
	pthread_rwlock_wrlock(&fab.rw);
	qp_set_error(LB(lb_id, pub)->qp);
	pthread_rwlock_unlock(&fab.rw);
	return 0;
}

static int lb_post_send(struct rdmig__xp_id *pub, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	struct lb_qp *q = LB(lb_id, pub)->qp;
	int ret = 0;

	if (!q) {
		*bad = wr;
		return EINVAL;
	}
	pthread_mutex_lock(&q->lock);
	for (; wr; wr = wr->next) {
		struct lb_swr *s;

		if (wr->num_sge > 1 ||
		    (wr->opcode != IBV_WR_RDMA_WRITE && wr->opcode != IBV_WR_SEND)) {
			ret = EINVAL;
			break;
		}
		if (q->sq_n == q->sq_cap) {
			ret = ENOMEM;
			break;
		}
		s = &q->sq[(q->sq_head + q->sq_n++) % q->sq_cap];
		s->wr_id = wr->wr_id;
		s->op = wr->opcode;
		s->signaled = wr->send_flags & IBV_SEND_SIGNALED;
		s->addr = wr->num_sge ? wr->sg_list[0].addr : 0;
		s->len = wr->num_sge ? wr->sg_list[0].length : 0;
		s->lkey = wr->num_sge ? wr->sg_list[0].lkey : 0;
		s->raddr = wr->wr.rdma.remote_addr;
		s->rkey = wr->wr.rdma.rkey;
	}
	if (ret)
		*bad = wr;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

static int lb_post_recv(struct rdmig__xp_id *pub, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	struct lb_qp *q = LB(lb_id, pub)->qp;
	int ret = 0;

	if (!q) {
		*bad = wr;
		return EINVAL;
	}
	pthread_mutex_lock(&q->lock);
	for (; wr; wr = wr->next) {
		struct lb_rwr *r;

		if (wr->num_sge != 1) {
			ret = EINVAL;
			break;
		}
		if (q->rq_n == q->rq_cap) {
			ret = ENOMEM;
			break;
		}
		r = &q->rq[(q->rq_head + q->rq_n++) % q->rq_cap];
		r->wr_id = wr->wr_id;
		r->addr = wr->sg_list[0].addr;
		r->len = wr->sg_list[0].length;
		r->lkey = wr->sg_list[0].lkey;
	}
	if (ret)
		*bad = wr;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return ret;
}

const struct rdmig__xp_ops rdmig__xp_loopback = {
	.name = "loopback",
	.chan_create = lb_chan_create,
	.chan_destroy = lb_chan_destroy,
	.chan_get = lb_chan_get,
	.chan_ack = lb_chan_ack,
	.id_create = lb_id_create,
	.id_destroy = lb_id_destroy,
	.id_migrate = lb_id_migrate,
	.listen = lb_listen,
	.resolve = lb_resolve,
	.connect = lb_connect,
	.accept = lb_accept,
	.reject = lb_reject,
	.disconnect = lb_disconnect,
	.conn_info = lb_conn_info,
	.qp_num = lb_qp_num,
	.pd_alloc = lb_pd_alloc,
	.pd_free = lb_pd_free,
	.pd_on_dev_of = lb_pd_on_dev_of,
	.dev_name = lb_dev_name,
	.max_msg = lb_max_msg,
	.dev_cpus = lb_dev_cpus,
	.mr_reg = lb_mr_reg,
	.mr_dereg = lb_mr_dereg,
	.cq_create = lb_cq_create,
	.cq_destroy = lb_cq_destroy,
	.cq_poll = lb_cq_poll,
	.cq_arm = lb_cq_arm,
	.cq_ack = lb_cq_ack,
	.qp_create = lb_qp_create,
	.qp_destroy = lb_qp_destroy,
	.qp_error = lb_qp_error,
	.post_send = lb_post_send,
	.post_recv = lb_post_recv,
};
