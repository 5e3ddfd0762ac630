/* SPDX-License-Identifier: MIT */
/*
 * The verbs transport: thin wrappers over libibverbs and librdmacm. Each
 * rdma_cm id's `context` points at its wrapper, so events map back to it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "../common/conn.h"
#include "topo.h"
#include "xport.h"

struct vb_chan {
	struct rdmig__xp_chan pub;
	struct rdma_event_channel *ec;
};

struct vb_id {
	struct rdmig__xp_id pub;
	struct rdma_cm_id *id;
	bool has_local; /* set_path: resolve from `local` */
	struct sockaddr_storage local;
};

struct vb_pd {
	struct rdmig__xp_pd pub;
	struct ibv_pd *pd;
	uint8_t port; /* the port the id it was made for is bound to */
};

struct vb_mr {
	struct rdmig__xp_mr pub;
	struct ibv_mr *mr;
};

struct vb_cq {
	struct rdmig__xp_cq pub;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
};

#define VB(type, p)  ((struct type *)(void *)(p))
#define VBC(type, p) ((const struct type *)(const void *)(p))

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return rdmig__err(-errno, "fcntl(O_NONBLOCK): %s", strerror(errno));
	return 0;
}

static int vb_chan_create(struct rdmig__xp_chan **chp)
{
	struct vb_chan *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return rdmig__err(-ENOMEM, "no memory for an event channel");
	c->ec = rdma_create_event_channel();
	if (!c->ec) {
		ret = rdmig__err(errno == ENOENT || errno == ENODEV ? -ENODEV : -errno,
				 "rdma_create_event_channel: %s (is an RDMA device present?)",
				 strerror(errno));
		free(c);
		return ret;
	}
	if ((ret = set_nonblock(c->ec->fd))) {
		rdma_destroy_event_channel(c->ec);
		free(c);
		return ret;
	}
	c->pub.ops = &rdmig__xp_verbs;
	c->pub.fd = c->ec->fd;
	*chp = &c->pub;
	return 0;
}

static void vb_chan_destroy(struct rdmig__xp_chan *ch)
{
	if (!ch)
		return;
	rdma_destroy_event_channel(VB(vb_chan, ch)->ec);
	free(ch);
}

static struct vb_id *vb_wrap(struct rdmig__xp_chan *ch, struct rdma_cm_id *id)
{
	struct vb_id *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->pub.ops = &rdmig__xp_verbs;
	v->pub.chan = ch;
	v->id = id;
	id->context = v;
	return v;
}

static int vb_chan_get(struct rdmig__xp_chan *ch, struct rdmig__xp_event *ev)
{
	struct rdma_cm_event *e;

	if (rdma_get_cm_event(VB(vb_chan, ch)->ec, &e)) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -EAGAIN;
		return rdmig__err(-errno, "rdma_get_cm_event: %s", strerror(errno));
	}
	memset(ev, 0, sizeof(*ev));
	ev->event = e->event;
	ev->status = e->status;
	ev->impl = e;
	if (e->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
		struct vb_id *v = vb_wrap(ch, e->id);

		if (!v) {
			struct rdma_cm_id *id = e->id;

			rdma_reject(id, NULL, 0);
			rdma_ack_cm_event(e);
			rdma_destroy_id(id);
			return rdmig__err(-ENOMEM, "no memory for a connection request");
		}
		ev->id = &v->pub;
		ev->pdata = e->param.conn.private_data;
		ev->pdlen = e->param.conn.private_data_len;
		ev->peer_qpn = e->param.conn.qp_num;
	} else {
		ev->id = e->id ? e->id->context : NULL;
	}
	return 0;
}

static void vb_chan_ack(struct rdmig__xp_event *ev)
{
	rdma_ack_cm_event(ev->impl);
}

static int vb_id_create(struct rdmig__xp_chan *ch, struct rdmig__xp_id **idp)
{
	struct rdma_cm_id *id;
	struct vb_id *v;

	if (rdma_create_id(VB(vb_chan, ch)->ec, &id, NULL, RDMA_PS_TCP))
		return rdmig__err(-errno, "rdma_create_id: %s", strerror(errno));
	v = vb_wrap(ch, id);
	if (!v) {
		rdma_destroy_id(id);
		return rdmig__err(-ENOMEM, "no memory for a connection id");
	}
	*idp = &v->pub;
	return 0;
}

static void vb_qp_destroy(struct rdmig__xp_id *id)
{
	struct rdma_cm_id *cm = VB(vb_id, id)->id;

	if (cm->qp)
		rdma_destroy_qp(cm);
}

static void vb_id_destroy(struct rdmig__xp_id *id)
{
	if (!id)
		return;
	vb_qp_destroy(id);
	rdma_destroy_id(VB(vb_id, id)->id);
	free(id);
}

static int vb_id_migrate(struct rdmig__xp_id *id, struct rdmig__xp_chan *ch)
{
	if (rdma_migrate_id(VB(vb_id, id)->id, VB(vb_chan, ch)->ec))
		return rdmig__err(-errno, "rdma_migrate_id: %s", strerror(errno));
	id->chan = ch;
	return 0;
}

static int vb_listen(struct rdmig__xp_id *id, const struct sockaddr *addr)
{
	struct rdma_cm_id *cm = VB(vb_id, id)->id;

	if (rdma_bind_addr(cm, (struct sockaddr *)(uintptr_t)addr))
		return rdmig__err(-errno, "cannot bind: %s", strerror(errno));
	if (rdma_listen(cm, 16))
		return rdmig__err(-errno, "cannot listen: %s", strerror(errno));
	return ntohs(rdma_get_src_port(cm));
}

/* The errno that best describes an unexpected rdma_cm event. */
static int cm_event_errno(enum rdma_cm_event_type event)
{
	switch (event) {
	case RDMA_CM_EVENT_ADDR_ERROR:
	case RDMA_CM_EVENT_ROUTE_ERROR:
	case RDMA_CM_EVENT_UNREACHABLE:
		return -EHOSTUNREACH;
	case RDMA_CM_EVENT_REJECTED:
		return -ECONNREFUSED;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		return -ENODEV;
	case RDMA_CM_EVENT_DISCONNECTED:
		return -ECONNRESET;
	default:
		return -EPROTO;
	}
}

/*
 * Waits until `id` reports `want`. Any other event for any id is a
 * failure; `what` names the step for messages.
 */
static int cm_expect(struct vb_id *v, enum rdma_cm_event_type want, int timeout_ms,
		     const char *what)
{
	struct rdmig__xp_event ev;
	int ret = rdmig__cm_next(v->pub.chan, timeout_ms, &ev);

	if (ret == -ETIMEDOUT)
		return rdmig__err(ret, "%s: no answer within %d ms", what, timeout_ms);
	if (ret)
		return ret;
	if (ev.id == &v->pub && ev.event == want) {
		vb_chan_ack(&ev);
		return 0;
	}
	ret = cm_event_errno(ev.event);
	rdmig__err(ret, "%s: %s (status %d)%s", what, rdma_event_str(ev.event), ev.status,
		   ev.id == &v->pub ? "" : " on another connection");
	vb_chan_ack(&ev);
	if (ev.event == RDMA_CM_EVENT_CONNECT_REQUEST) /* not ours to keep */
		vb_id_destroy(ev.id);
	return ret;
}

static int vb_resolve(struct rdmig__xp_id *id, const struct sockaddr *addr, int timeout_ms)
{
	struct vb_id *v = VB(vb_id, id);
	int ret;

	if (rdma_resolve_addr(v->id, v->has_local ? (struct sockaddr *)&v->local : NULL,
			      (struct sockaddr *)(uintptr_t)addr, timeout_ms))
		return rdmig__err(-errno, "rdma_resolve_addr: %s", strerror(errno));
	if ((ret = cm_expect(v, RDMA_CM_EVENT_ADDR_RESOLVED, timeout_ms,
			     "resolving the destination address")))
		return ret;
	if (rdma_resolve_route(v->id, timeout_ms))
		return rdmig__err(-errno, "rdma_resolve_route: %s", strerror(errno));
	return cm_expect(v, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout_ms,
			 "resolving the route to the destination");
}

static int vb_connect(struct rdmig__xp_id *id, const void *pdata, uint8_t len, int timeout_ms)
{
	struct vb_id *v = VB(vb_id, id);
	struct rdma_conn_param param;

	memset(&param, 0, sizeof(param));
	param.private_data = pdata;
	param.private_data_len = len;
	param.responder_resources = 1;
	param.initiator_depth = 1;
	param.retry_count = 7;
	param.rnr_retry_count = 7;
	if (rdma_connect(v->id, &param))
		return rdmig__err(-errno, "rdma_connect: %s", strerror(errno));
	return cm_expect(v, RDMA_CM_EVENT_ESTABLISHED, timeout_ms, "connecting");
}

static int vb_accept(struct rdmig__xp_id *id)
{
	struct rdma_conn_param param;

	memset(&param, 0, sizeof(param));
	param.responder_resources = 1;
	param.initiator_depth = 1;
	param.rnr_retry_count = 7;
	if (rdma_accept(VB(vb_id, id)->id, &param))
		return rdmig__err(-errno, "rdma_accept: %s", strerror(errno));
	return 0;
}

static void vb_reject(struct rdmig__xp_id *id)
{
	rdma_reject(VB(vb_id, id)->id, NULL, 0);
}

static void vb_disconnect(struct rdmig__xp_id *id)
{
	rdma_disconnect(VB(vb_id, id)->id); /* -EINVAL if never connected: harmless */
}

/* An address as a GID: IPv6 as it is, IPv4 mapped (::ffff:a.b.c.d). */
static void addr_gid(const struct sockaddr *sa, uint8_t *gid)
{
	memset(gid, 0, 16);
	if (sa->sa_family == AF_INET6) {
		memcpy(gid, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	} else if (sa->sa_family == AF_INET) {
		gid[10] = gid[11] = 0xff;
		memcpy(gid + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	}
}

static int vb_conn_info(struct rdmig__xp_id *id, struct rdmig__xp_conn_info *ci)
{
	struct rdma_cm_id *cm = VB(vb_id, id)->id;
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr qa;
	int ret;

	memset(ci, 0, sizeof(*ci));
	if (!cm->qp)
		return rdmig__err(-ENOTCONN, "internal: connection info without a QP");
	/* The QP's own record of its peer: what RC will actually talk to. */
	ret = ibv_query_qp(cm->qp, &qa, IBV_QP_DEST_QPN, &init);
	if (ret)
		return rdmig__err(-ret, "ibv_query_qp: %s", strerror(ret));
	addr_gid(rdma_get_local_addr(cm), ci->local_gid);
	addr_gid(rdma_get_peer_addr(cm), ci->peer_gid);
	ci->local_qpn = cm->qp->qp_num;
	ci->peer_qpn = qa.dest_qp_num;
	return 0;
}

static uint32_t vb_qp_num(struct rdmig__xp_id *id)
{
	return VB(vb_id, id)->id->qp ? VB(vb_id, id)->id->qp->qp_num : 0;
}

static int vb_pd_alloc(struct rdmig__xp_id *id, struct rdmig__xp_pd **pdp)
{
	struct ibv_context *ctx = VB(vb_id, id)->id->verbs;
	struct vb_pd *p = calloc(1, sizeof(*p));

	if (!p)
		return rdmig__err(-ENOMEM, "no memory for a protection domain");
	p->pd = ibv_alloc_pd(ctx);
	if (!p->pd) {
		int ret = rdmig__err(-errno, "ibv_alloc_pd(%s): %s",
				     ibv_get_device_name(ctx->device), strerror(errno));

		free(p);
		return ret;
	}
	p->pub.ops = &rdmig__xp_verbs;
	p->port = VB(vb_id, id)->id->port_num;
	*pdp = &p->pub;
	return 0;
}

static void vb_pd_free(struct rdmig__xp_pd *pd)
{
	if (!pd)
		return;
	ibv_dealloc_pd(VB(vb_pd, pd)->pd);
	free(pd);
}

static bool vb_pd_on_dev_of(const struct rdmig__xp_pd *pd, const struct rdmig__xp_id *id)
{
	return VBC(vb_pd, pd)->pd->context == VBC(vb_id, id)->id->verbs;
}

static const char *vb_dev_name(const struct rdmig__xp_pd *pd)
{
	return ibv_get_device_name(VBC(vb_pd, pd)->pd->context->device);
}

static uint64_t vb_max_msg(const struct rdmig__xp_pd *pd)
{
	struct ibv_context *ctx = VBC(vb_pd, pd)->pd->context;
	struct ibv_port_attr pa;

	if (ibv_query_port(ctx, VBC(vb_pd, pd)->port, &pa))
		return UINT64_MAX;
	return pa.max_msg_sz;
}

static int vb_dev_cpus(const struct rdmig__xp_pd *pd, int *cpus, int max)
{
	return rdmig__topo_device_cpus(VBC(vb_pd, pd)->pd->context->device, cpus, max);
}

static int vb_mr_reg(struct rdmig__xp_pd *pd, void *addr, size_t len, int access,
		     struct rdmig__xp_mr **mrp)
{
	struct vb_mr *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->mr = ibv_reg_mr(VB(vb_pd, pd)->pd, addr, len, access);
	if (!m->mr) {
		int ret = -errno;

		free(m);
		return ret ? ret : -EIO;
	}
	m->pub.ops = &rdmig__xp_verbs;
	m->pub.lkey = m->mr->lkey;
	m->pub.rkey = m->mr->rkey;
	*mrp = &m->pub;
	return 0;
}

static void vb_mr_dereg(struct rdmig__xp_mr *mr)
{
	if (!mr)
		return;
	ibv_dereg_mr(VB(vb_mr, mr)->mr);
	free(mr);
}

static void vb_cq_destroy(struct rdmig__xp_cq *cq)
{
	struct vb_cq *c = VB(vb_cq, cq);

	if (!cq)
		return;
	if (c->cq)
		ibv_destroy_cq(c->cq);
	if (c->ch)
		ibv_destroy_comp_channel(c->ch);
	free(c);
}

static int vb_cq_create(struct rdmig__xp_pd *pd, int depth, struct rdmig__xp_cq **cqp)
{
	struct ibv_context *ctx = VB(vb_pd, pd)->pd->context;
	struct vb_cq *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return rdmig__err(-ENOMEM, "no memory for a CQ");
	c->pub.ops = &rdmig__xp_verbs;
	c->ch = ibv_create_comp_channel(ctx);
	if (!c->ch) {
		ret = rdmig__err(-errno, "ibv_create_comp_channel: %s", strerror(errno));
		goto fail;
	}
	if ((ret = set_nonblock(c->ch->fd)))
		goto fail;
	c->cq = ibv_create_cq(ctx, depth, NULL, c->ch, 0);
	if (!c->cq) {
		ret = rdmig__err(-errno, "ibv_create_cq(%d): %s", depth, strerror(errno));
		goto fail;
	}
	c->pub.fd = c->ch->fd;
	*cqp = &c->pub;
	return 0;
fail:
	vb_cq_destroy(&c->pub);
	return ret;
}

static int vb_cq_poll(struct rdmig__xp_cq *cq, int n, struct ibv_wc *wc)
{
	return ibv_poll_cq(VB(vb_cq, cq)->cq, n, wc);
}

static int vb_cq_arm(struct rdmig__xp_cq *cq)
{
	return ibv_req_notify_cq(VB(vb_cq, cq)->cq, 0) ? -EIO : 0;
}

static void vb_cq_ack(struct rdmig__xp_cq *cq)
{
	struct ibv_cq *ev_cq;
	void *ctx;

	while (!ibv_get_cq_event(VB(vb_cq, cq)->ch, &ev_cq, &ctx))
		ibv_ack_cq_events(ev_cq, 1);
}

static int vb_qp_create(struct rdmig__xp_id *id, struct rdmig__xp_pd *pd,
			const struct rdmig__xp_qp_attr *attr)
{
	struct rdma_cm_id *cm = VB(vb_id, id)->id;
	struct ibv_cq *cq = VB(vb_cq, attr->cq)->cq;
	uint8_t timeout = (uint8_t)attr->qp_timeout;
	struct ibv_qp_init_attr qa;

	memset(&qa, 0, sizeof(qa));
	qa.qp_type = IBV_QPT_RC;
	qa.send_cq = cq;
	qa.recv_cq = cq;
	qa.cap.max_send_wr = attr->send_depth;
	qa.cap.max_recv_wr = attr->recv_depth;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	qa.sq_sig_all = 0;
	if (rdma_create_qp(cm, VB(vb_pd, pd)->pd, &qa))
		return rdmig__err(-errno, "rdma_create_qp(send %u, recv %u): %s", attr->send_depth,
				  attr->recv_depth, strerror(errno));
	/*
	 * The RC ACK timeout: rdma_cm's default (from the path, ~67 ms on RoCE)
	 * is too short for large writes under soft-RoCE, which then retries
	 * forever without completing anything (notes/soft-roce.md).
	 */
	if (rdma_set_option(cm, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &timeout,
			    sizeof(timeout)))
		rdmig__log(RDMIG__LOG_WARN, "cannot set the ACK timeout to %u: %s", timeout,
			   strerror(errno));
	return 0;
}

static int vb_qp_error(struct rdmig__xp_id *id)
{
	struct rdma_cm_id *cm = VB(vb_id, id)->id;
	struct ibv_qp_attr qa = { .qp_state = IBV_QPS_ERR };
	int ret;

	if (!cm->qp)
		return 0;
	/* Any state may go to error; from then on the responder drops what
	 * arrives (the requester retries in vain). */
	if ((ret = ibv_modify_qp(cm->qp, &qa, IBV_QP_STATE)))
		return rdmig__err(-ret, "ibv_modify_qp(IBV_QPS_ERR): %s", strerror(ret));
	return 0;
}

static int vb_post_send(struct rdmig__xp_id *id, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	return ibv_post_send(VB(vb_id, id)->id->qp, wr, bad);
}

static int vb_post_recv(struct rdmig__xp_id *id, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	return ibv_post_recv(VB(vb_id, id)->id->qp, wr, bad);
}

static int vb_set_path(struct rdmig__xp_id *id, const struct sockaddr *local, int tos)
{
	struct vb_id *v = VB(vb_id, id);
	uint8_t t = (uint8_t)tos;

	v->has_local = local != NULL;
	if (local)
		memcpy(&v->local, local,
		       local->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						    : sizeof(struct sockaddr_in));
	/* Before the route is resolved (or the id listens): the kernel takes
	 * the traffic class and service level from it then. */
	if (tos >= 0 && rdma_set_option(v->id, RDMA_OPTION_ID, RDMA_OPTION_ID_TOS, &t, sizeof(t)))
		return rdmig__err(-errno, "RDMIG_TOS: rdma_set_option(RDMA_OPTION_ID_TOS, %d): %s",
				  tos, strerror(errno));
	return 0;
}

static int vb_path_info(struct rdmig__xp_id *id, struct rdmig__xp_path *p)
{
	struct rdma_cm_id *cm = VB(vb_id, id)->id;
	const struct sockaddr *sa = rdma_get_local_addr(cm);
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr qa;
	int ret;

	memset(p, 0, sizeof(*p));
	p->sgid_index = p->tclass = -1;
	if (cm->verbs)
		snprintf(p->dev, sizeof(p->dev), "%s", ibv_get_device_name(cm->verbs->device));
	p->port = cm->port_num;
	memcpy(&p->local, sa,
	       sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in));
	if (!cm->qp)
		return 0;
	/* The QP's own address vector: what its packets really carry. */
	if ((ret = ibv_query_qp(cm->qp, &qa, IBV_QP_AV, &init)))
		return rdmig__err(-ret, "ibv_query_qp(AV): %s", strerror(ret));
	if (qa.ah_attr.is_global) {
		p->sgid_index = qa.ah_attr.grh.sgid_index;
		p->tclass = qa.ah_attr.grh.traffic_class;
	}
	return 0;
}

static const char *gid_type_name(enum ibv_gid_type t)
{
	switch (t) {
	case IBV_GID_TYPE_IB:
		return "IB";
	case IBV_GID_TYPE_ROCE_V1:
		return "RoCE v1";
	case IBV_GID_TYPE_ROCE_V2:
		return "RoCE v2";
	}
	return "unknown type";
}

/* "0, 1, 2" : the entries of the port's table in use, for messages. */
static void gid_in_use(struct ibv_context *ctx, uint32_t port, uint32_t tbl_len, char *buf,
		       size_t size)
{
	struct ibv_gid_entry e[64];
	ssize_t n = ibv_query_gid_table(ctx, e, RDMIG__ARRAY_SIZE(e), 0);
	size_t len = 0;

	buf[0] = 0;
	for (ssize_t i = 0; i < n && len < size; i++) {
		int k;

		if (e[i].port_num != port)
			continue;
		k = snprintf(buf + len, size - len, "%s%u (%s)", len ? ", " : "", e[i].gid_index,
			     gid_type_name(e[i].gid_type));
		len += k > 0 ? (size_t)k : 0;
	}
	if (!buf[0])
		snprintf(buf, size, "none of %u", tbl_len);
}

static int vb_gid_query(const char *name, uint32_t port, int index, struct rdmig__xp_gid *g,
			char *why, size_t whylen)
{
	struct ibv_context *ctx = NULL;
	struct ibv_device **list;
	struct ibv_device_attr da;
	struct ibv_port_attr pa;
	struct ibv_gid_entry e;
	char names[256] = "", used[512];
	size_t len = 0;
	int n = 0, ret = 0;

	memset(g, 0, sizeof(*g));
	list = ibv_get_device_list(&n);
	for (int i = 0; list && i < n && !ctx; i++) {
		const char *d = ibv_get_device_name(list[i]);
		int k;

		if (!strcmp(d, name)) {
			ctx = ibv_open_device(list[i]);
			if (!ctx)
				ret = -errno;
		}
		k = snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", d);
		if (k > 0 && (size_t)k < sizeof(names) - len)
			len += (size_t)k;
	}
	if (list)
		ibv_free_device_list(list);
	if (!ctx) {
		snprintf(why, whylen,
			 ret ? "cannot open RDMA device '%s': %s"
			     : "no RDMA device '%s' on this host (devices: %s)",
			 name, ret ? strerror(-ret) : (names[0] ? names : "none"));
		return ret ? ret : -ENODEV;
	}
	port = port ? port : 1;
	if ((ret = ibv_query_device(ctx, &da))) {
		snprintf(why, whylen, "cannot query %s: %s", name, strerror(ret));
		ret = -ret;
		goto out;
	}
	g->nports = da.phys_port_cnt;
	if (port > da.phys_port_cnt) {
		snprintf(why, whylen, "%s has no port %u (ports 1 to %u)", name, port,
			 da.phys_port_cnt);
		ret = -EINVAL;
		goto out;
	}
	if ((ret = ibv_query_port(ctx, (uint8_t)port, &pa))) {
		snprintf(why, whylen, "cannot query %s port %u: %s", name, port, strerror(ret));
		ret = -ret;
		goto out;
	}
	g->tbl_len = (uint32_t)pa.gid_tbl_len;
	if (index < 0)
		goto out;
	if ((uint32_t)index >= g->tbl_len) {
		snprintf(why, whylen,
			 "%d is out of range: %s port %u has a GID table of %u entries (0 to %u)",
			 index, name, port, g->tbl_len, g->tbl_len - 1);
		ret = -EINVAL;
		goto out;
	}
	if ((ret = ibv_query_gid_ex(ctx, port, (uint32_t)index, &e, 0))) {
		gid_in_use(ctx, port, g->tbl_len, used, sizeof(used));
		snprintf(why, whylen, "entry %d of %s port %u is empty (%s); entries in use: %s",
			 index, name, port, strerror(ret), used);
		ret = -EINVAL;
		goto out;
	}
	memcpy(g->gid, e.gid.raw, 16);
	g->type = gid_type_name(e.gid_type);
	g->ndev_ifindex = e.ndev_ifindex;
out:
	ibv_close_device(ctx);
	return ret;
}

const struct rdmig__xp_ops rdmig__xp_verbs = {
	.name = "verbs",
	.chan_create = vb_chan_create,
	.chan_destroy = vb_chan_destroy,
	.chan_get = vb_chan_get,
	.chan_ack = vb_chan_ack,
	.id_create = vb_id_create,
	.id_destroy = vb_id_destroy,
	.id_migrate = vb_id_migrate,
	.listen = vb_listen,
	.resolve = vb_resolve,
	.connect = vb_connect,
	.accept = vb_accept,
	.reject = vb_reject,
	.disconnect = vb_disconnect,
	.conn_info = vb_conn_info,
	.qp_num = vb_qp_num,
	.pd_alloc = vb_pd_alloc,
	.pd_free = vb_pd_free,
	.pd_on_dev_of = vb_pd_on_dev_of,
	.dev_name = vb_dev_name,
	.max_msg = vb_max_msg,
	.dev_cpus = vb_dev_cpus,
	.mr_reg = vb_mr_reg,
	.mr_dereg = vb_mr_dereg,
	.cq_create = vb_cq_create,
	.cq_destroy = vb_cq_destroy,
	.cq_poll = vb_cq_poll,
	.cq_arm = vb_cq_arm,
	.cq_ack = vb_cq_ack,
	.qp_create = vb_qp_create,
	.qp_destroy = vb_qp_destroy,
	.qp_error = vb_qp_error,
	.post_send = vb_post_send,
	.post_recv = vb_post_recv,
	.set_path = vb_set_path,
	.path_info = vb_path_info,
	.gid_query = vb_gid_query,
};
