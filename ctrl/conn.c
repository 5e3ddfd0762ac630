/* SPDX-License-Identifier: MIT */
/*
 * Endpoints (QP + buffers) and bounded waits on rdma_cm and CQ events.
 */
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"

int rdmig__set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return rdmig__err(-errno, "fcntl(O_NONBLOCK): %s", strerror(errno));
	return 0;
}

int rdmig__ms_left(uint64_t deadline_ns)
{
	uint64_t now = rdmig__now_ns();

	if (now >= deadline_ns)
		return 0;
	return (int)RDMIG__MIN((deadline_ns - now + 999999) / 1000000, (uint64_t)INT32_MAX);
}

int rdmig__ep_setup(struct rdmig__ep *ep, struct rdma_cm_id *id, struct ibv_pd *pd,
		    struct ibv_cq *shared_cq, uint32_t index, const struct rdmig__ep_attr *attr)
{
	struct ibv_qp_init_attr qa;
	size_t bytes = (size_t)(attr->nrecv + attr->nsend) * attr->bufsize;
	uint8_t timeout = (uint8_t)attr->qp_timeout;
	int ret;

	memset(ep, 0, sizeof(*ep));
	ep->id = id;
	ep->attr = *attr;
	ep->index = index;
	if (attr->nsend > RDMIG__EP_MAX_SEND_BUFS)
		return rdmig__err(-EINVAL, "internal: %u send buffers", attr->nsend);

	if (shared_cq) {
		ep->cq = shared_cq;
	} else {
		ep->ch = ibv_create_comp_channel(id->verbs);
		if (!ep->ch) {
			ret = rdmig__err(-errno, "ibv_create_comp_channel: %s", strerror(errno));
			goto fail;
		}
		if ((ret = rdmig__set_nonblock(ep->ch->fd)))
			goto fail;
		ep->cq = ibv_create_cq(id->verbs, (int)(attr->send_depth + attr->recv_depth), NULL,
				       ep->ch, 0);
		if (!ep->cq) {
			ret = rdmig__err(-errno, "ibv_create_cq(%u): %s",
					 attr->send_depth + attr->recv_depth, strerror(errno));
			goto fail;
		}
	}

	memset(&qa, 0, sizeof(qa));
	qa.qp_type = IBV_QPT_RC;
	qa.send_cq = ep->cq;
	qa.recv_cq = ep->cq;
	qa.cap.max_send_wr = attr->send_depth;
	qa.cap.max_recv_wr = attr->recv_depth;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	qa.sq_sig_all = 0;
	if (rdma_create_qp(id, pd, &qa)) {
		ret = rdmig__err(-errno, "rdma_create_qp(send %u, recv %u): %s", attr->send_depth,
				 attr->recv_depth, strerror(errno));
		goto fail;
	}
	ep->qp = id->qp;

	/*
	 * The RC ACK timeout: rdma_cm's default (from the path, ~67 ms on RoCE)
	 * is too short for large writes under soft-RoCE, which then retries
	 * forever without completing anything (notes/soft-roce.md).
	 */
	if (rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &timeout,
			    sizeof(timeout)))
		rdmig__log(RDMIG__LOG_WARN, "cannot set the ACK timeout to %u: %s", timeout,
			   strerror(errno));

	if (bytes) {
		ep->bufs = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
		if (!ep->bufs) {
			ret = rdmig__err(-ENOMEM, "no memory for %zu bytes of message buffers",
					 bytes);
			goto fail;
		}
		memset(ep->bufs, 0, bytes);
		ep->mr = ibv_reg_mr(pd, ep->bufs, bytes, IBV_ACCESS_LOCAL_WRITE);
		if (!ep->mr) {
			ret = rdmig__err(-errno, "ibv_reg_mr(message buffers, %zu bytes): %s",
					 bytes, strerror(errno));
			goto fail;
		}
	}
	for (uint32_t i = 0; i < attr->nrecv; i++)
		if ((ret = rdmig__ep_post_recv(ep, i)))
			goto fail;
	return 0;

fail:
	rdmig__ep_teardown(ep);
	return ret;
}

void rdmig__ep_teardown(struct rdmig__ep *ep)
{
	if (ep->qp)
		rdma_destroy_qp(ep->id);
	ep->qp = NULL;
	if (ep->mr)
		ibv_dereg_mr(ep->mr);
	ep->mr = NULL;
	free(ep->bufs);
	ep->bufs = NULL;
	if (ep->ch) {
		if (ep->cq)
			ibv_destroy_cq(ep->cq);
		ibv_destroy_comp_channel(ep->ch);
	}
	ep->ch = NULL;
	ep->cq = NULL;
}

void rdmig__ep_destroy(struct rdmig__ep *ep)
{
	struct rdma_cm_id *id = ep->id;

	if (id)
		rdma_disconnect(id); /* -EINVAL on an id that never connected: harmless */
	rdmig__ep_teardown(ep);
	if (id)
		rdma_destroy_id(id);
	memset(ep, 0, sizeof(*ep));
}

int rdmig__ep_post_recv(struct rdmig__ep *ep, uint32_t i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)rdmig__ep_recv_buf(ep, i),
		.length = ep->attr.bufsize,
		.lkey = ep->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = rdmig__wr_id(RDMIG__WR_RECV, ep->index, i),
				  .sg_list = &sge,
				  .num_sge = 1 };
	struct ibv_recv_wr *bad;
	int ret = ibv_post_recv(ep->qp, &wr, &bad);

	if (ret)
		return rdmig__err(-ret, "ibv_post_recv: %s", strerror(ret));
	return 0;
}

int rdmig__ep_send(struct rdmig__ep *ep, const struct rdmig__msg *m)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	char why[256];
	uint32_t i;
	uint8_t *buf;
	int len, ret;

	for (i = 0; i < ep->attr.nsend; i++)
		if (!(ep->send_busy & (1u << i)))
			break;
	if (i == ep->attr.nsend)
		return -EAGAIN;
	buf = ep->bufs + (size_t)(ep->attr.nrecv + i) * ep->attr.bufsize;
	len = rdmig__msg_encode(m, buf, ep->attr.bufsize, why, sizeof(why));
	if (len < 0)
		return rdmig__err(len, "internal: cannot encode %s: %s",
				  rdmig__msg_type_name(m->type), why);

	sge.addr = (uintptr_t)buf;
	sge.length = (uint32_t)len;
	sge.lkey = ep->mr->lkey;
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = rdmig__wr_id(RDMIG__WR_SEND, ep->index, i);
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	ret = ibv_post_send(ep->qp, &wr, &bad);
	if (ret)
		return rdmig__err(-ret, "ibv_post_send(%s): %s", rdmig__msg_type_name(m->type),
				  strerror(ret));
	ep->send_busy |= 1u << i;
	return 0;
}

int rdmig__cm_next(struct rdma_event_channel *ec, int timeout_ms, struct rdma_cm_event **ev)
{
	uint64_t deadline = rdmig__now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;

	for (;;) {
		struct pollfd pfd = { .fd = ec->fd, .events = POLLIN };
		int left = timeout_ms < 0 ? -1 : rdmig__ms_left(deadline);

		if (!rdma_get_cm_event(ec, ev))
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return rdmig__err(-errno, "rdma_get_cm_event: %s", strerror(errno));
		if (left == 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, left) < 0 && errno != EINTR)
			return rdmig__err(-errno, "poll: %s", strerror(errno));
	}
}

/* The errno that best describes an unexpected rdma_cm event. */
static int cm_event_errno(const struct rdma_cm_event *ev)
{
	switch (ev->event) {
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

int rdmig__cm_expect(struct rdma_event_channel *ec, struct rdma_cm_id *id,
		     enum rdma_cm_event_type want, int timeout_ms, const char *what)
{
	struct rdma_cm_event *ev;
	int ret = rdmig__cm_next(ec, timeout_ms, &ev);

	if (ret == -ETIMEDOUT)
		return rdmig__err(ret, "%s: no answer within %d ms", what, timeout_ms);
	if (ret)
		return ret;
	if (ev->id == id && ev->event == want) {
		rdma_ack_cm_event(ev);
		return 0;
	}
	ret = cm_event_errno(ev);
	rdmig__err(ret, "%s: %s (status %d)%s", what, rdma_event_str(ev->event), ev->status,
		   ev->id == id ? "" : " on another connection");
	rdma_ack_cm_event(ev);
	return ret;
}

int rdmig__resolve(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	int ret;

	if (!port)
		return rdmig__err(-EINVAL, "no port given");
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret)
		return rdmig__err(-EADDRNOTAVAIL, "cannot resolve '%s' port '%s': %s",
				  host ? host : "*", port, gai_strerror(ret));
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, RDMIG__MIN((size_t)res->ai_addrlen, sizeof(*ss)));
	freeaddrinfo(res);
	return 0;
}

int rdmig__cq_wait(struct ibv_cq *cq, struct ibv_comp_channel *ch, struct ibv_wc *wc, int n,
		   int wait_ms)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	int got;

	got = ibv_poll_cq(cq, n, wc);
	if (got)
		goto out;
	/* Arm first, then poll again: a completion that raced the arming is
	 * either seen by this poll or raises the event we wait for. */
	if (ibv_req_notify_cq(cq, 0))
		return rdmig__err(-EIO, "ibv_req_notify_cq failed");
	got = ibv_poll_cq(cq, n, wc);
	if (got)
		goto out;
	if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
		return rdmig__err(-errno, "poll(completion channel): %s", strerror(errno));
	while (!ibv_get_cq_event(ch, &ev_cq, &ev_ctx))
		ibv_ack_cq_events(ev_cq, 1);
	got = ibv_poll_cq(cq, n, wc);
out:
	if (got < 0)
		return rdmig__err(-EIO, "ibv_poll_cq failed");
	return got;
}
