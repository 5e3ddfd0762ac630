/* SPDX-License-Identifier: MIT */
/*
 * Endpoints (QP + buffers) and bounded waits on connection and CQ events.
 */
#include <netdb.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"

int rdmig__ms_left(uint64_t deadline_ns)
{
	uint64_t now = rdmig__now_ns();

	if (now >= deadline_ns)
		return 0;
	return (int)RDMIG__MIN((deadline_ns - now + 999999) / 1000000, (uint64_t)INT32_MAX);
}

int rdmig__ep_setup(struct rdmig__ep *ep, struct rdmig__xp_id *id, struct rdmig__xp_pd *pd,
		    struct rdmig__xp_cq *shared_cq, uint32_t index,
		    const struct rdmig__ep_attr *attr)
{
	const struct rdmig__xp_ops *ops = id->ops;
	struct rdmig__xp_qp_attr qa;
	size_t bytes = (size_t)(attr->nrecv + attr->nsend) * attr->bufsize;
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
		ret = ops->cq_create(pd, (int)(attr->send_depth + attr->recv_depth), &ep->cq);
		if (ret)
			goto fail;
		ep->own_cq = true;
	}

	qa = (struct rdmig__xp_qp_attr){ .cq = ep->cq,
					 .send_depth = attr->send_depth,
					 .recv_depth = attr->recv_depth,
					 .qp_timeout = attr->qp_timeout,
					 .rate_mbps = attr->rate_mbps,
					 .index = index };
	if ((ret = ops->qp_create(id, pd, &qa)))
		goto fail;
	ep->has_qp = true;

	if (bytes) {
		ep->bufs = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
		if (!ep->bufs) {
			ret = rdmig__err(-ENOMEM, "no memory for %zu bytes of message buffers",
					 bytes);
			goto fail;
		}
		memset(ep->bufs, 0, bytes);
		ret = ops->mr_reg(pd, ep->bufs, bytes, IBV_ACCESS_LOCAL_WRITE, &ep->mr);
		if (ret) {
			ret = rdmig__err(ret, "registering %zu bytes of message buffers: %s", bytes,
					 strerror(-ret));
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
	if (!ep->id)
		return;
	if (ep->has_qp)
		ep->id->ops->qp_destroy(ep->id);
	ep->has_qp = false;
	if (ep->mr)
		ep->id->ops->mr_dereg(ep->mr);
	ep->mr = NULL;
	free(ep->bufs);
	ep->bufs = NULL;
	if (ep->own_cq && ep->cq)
		ep->id->ops->cq_destroy(ep->cq);
	ep->own_cq = false;
	ep->cq = NULL;
	rdmig__seal_fini(&ep->seal);
}

void rdmig__ep_destroy(struct rdmig__ep *ep)
{
	struct rdmig__xp_id *id = ep->id;

	if (id)
		id->ops->disconnect(id); /* so the peer learns at once */
	rdmig__ep_teardown(ep);
	if (id)
		id->ops->id_destroy(id);
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
	int ret = rdmig__xp_post_recv(ep->id, &wr, &bad);

	if (ret)
		return rdmig__err(-ret, "posting a receive: %s", strerror(ret));
	return 0;
}

int rdmig__ep_encode(struct rdmig__ep *ep, const struct rdmig__msg *m, uint8_t *buf)
{
	bool sealed = rdmig__seal_on(&ep->seal);
	char why[256];
	int len;

	len = rdmig__msg_encode_ext(m, sealed ? RDMIG__TRAILER_LEN : 0, buf, ep->attr.bufsize, why,
				    sizeof(why));
	if (len < 0)
		return rdmig__err(len, "internal: cannot encode %s: %s",
				  rdmig__msg_type_name(m->type), why);
	if (sealed && rdmig__seal_tx(&ep->seal, buf, (size_t)len))
		return -EIO;
	return len;
}

int rdmig__ep_open(struct rdmig__ep *ep, const uint8_t *buf, size_t len, struct rdmig__msg *m,
		   char *err, size_t errlen)
{
	int ret;

	if (!rdmig__seal_on(&ep->seal))
		return rdmig__msg_decode(buf, len, m, err, errlen);
	/* The MAC first: nothing a forger wrote reaches the decoder. The
	 * header's length is checked against len by the decoder, and the MAC
	 * covers the header, so a truncated message fails one or the other. */
	if ((ret = rdmig__seal_rx(&ep->seal, buf, len, err, errlen)))
		return ret;
	return rdmig__msg_decode_ext(buf, len, RDMIG__TRAILER_LEN, m, err, errlen);
}

/* A free send buffer's index, or -EAGAIN. */
static int free_send_buf(const struct rdmig__ep *ep)
{
	for (uint32_t i = 0; i < ep->attr.nsend; i++)
		if (!(ep->send_busy & (1u << i)))
			return (int)i;
	return -EAGAIN;
}

static uint8_t *send_buf(struct rdmig__ep *ep, uint32_t i)
{
	return ep->bufs + (size_t)(ep->attr.nrecv + i) * ep->attr.bufsize;
}

static int post_buf(struct rdmig__ep *ep, uint32_t i, size_t len, const char *what)
{
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	int ret;

	sge.addr = (uintptr_t)send_buf(ep, i);
	sge.length = (uint32_t)len;
	sge.lkey = ep->mr->lkey;
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = rdmig__wr_id(RDMIG__WR_SEND, ep->index, i);
	wr.opcode = IBV_WR_SEND;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	ret = rdmig__xp_post_send(ep->id, &wr, &bad);
	if (ret)
		return rdmig__err(-ret, "posting a SEND (%s): %s", what, strerror(ret));
	ep->send_busy |= 1u << i;
	return 0;
}

int rdmig__ep_send(struct rdmig__ep *ep, const struct rdmig__msg *m)
{
	int i = free_send_buf(ep), len, ret;

	if (i < 0)
		return i;
	if ((len = rdmig__ep_encode(ep, m, send_buf(ep, (uint32_t)i))) < 0)
		return len;
	ret = post_buf(ep, (uint32_t)i, (size_t)len, rdmig__msg_type_name(m->type));
	/* Not sent: its sequence number is free again, so an ERROR sent after
	 * this failure is not refused as "a message is missing". */
	if (ret && rdmig__seal_on(&ep->seal))
		ep->seal.tx_seq--;
	return ret;
}

void rdmig__msg_error(struct rdmig__msg *m, int err, const char *text)
{
	memset(m, 0, offsetof(struct rdmig__msg, error) + sizeof(m->error));
	m->type = RDMIG__MSG_ERROR;
	m->error.code = -err > 0 && -err < 4096 ? -err : EPROTO;
	m->error.len = (uint32_t)RDMIG__MIN(strlen(text), (size_t)RDMIG__ERRMSG_MAX);
	for (uint32_t i = 0; i < m->error.len; i++)
		m->error.text[i] = text[i] >= 0x20 && text[i] <= 0x7e ? text[i] : '?';
}

/* One completion of ep's CQ within wait_ms: 1 handled, 0 none, <0 broken. */
static int reap_one(struct rdmig__ep *ep, int wait_ms)
{
	struct ibv_wc wc;
	int n = rdmig__cq_wait(ep->cq, &wc, 1, wait_ms);

	if (n <= 0)
		return n;
	if (wc.status != IBV_WC_SUCCESS)
		return -ECONNRESET;
	if (rdmig__wr_kind_of(wc.wr_id) == RDMIG__WR_SEND)
		rdmig__ep_send_done(ep, rdmig__wr_val_of(wc.wr_id));
	else if (rdmig__wr_kind_of(wc.wr_id) == RDMIG__WR_RECV &&
		 rdmig__ep_post_recv(ep, rdmig__wr_val_of(wc.wr_id)))
		return -EIO;
	return 1;
}

int rdmig__ep_send_flush(struct rdmig__ep *ep, const struct rdmig__msg *m, uint64_t wait_ms)
{
	uint64_t deadline = rdmig__now_ns() + wait_ms * 1000000;
	uint32_t before, mine;
	int ret;

	if (!ep->has_qp)
		return -ENOTCONN;
	while (free_send_buf(ep) < 0) {
		if (rdmig__ms_left(deadline) == 0)
			return -ETIMEDOUT;
		if ((ret = reap_one(ep, 10)) < 0)
			return ret;
	}
	before = ep->send_busy;
	if ((ret = rdmig__ep_send(ep, m)))
		return ret;
	mine = ep->send_busy & ~before;
	while (ep->send_busy & mine) {
		if (rdmig__ms_left(deadline) == 0)
			return -ETIMEDOUT;
		if ((ret = reap_one(ep, 10)) < 0)
			return ret;
	}
	return 0;
}

int rdmig__ep_send_raw(struct rdmig__ep *ep, const void *bytes, size_t len)
{
	int i = free_send_buf(ep);

	if (i < 0)
		return i;
	if (len > ep->attr.bufsize)
		return rdmig__err(-ENOSPC, "internal: %zu bytes to send", len);
	memcpy(send_buf(ep, (uint32_t)i), bytes, len);
	return post_buf(ep, (uint32_t)i, len, "handshake");
}

int rdmig__cm_next(struct rdmig__xp_chan *ch, int timeout_ms, struct rdmig__xp_event *ev)
{
	uint64_t deadline = rdmig__now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000;

	for (;;) {
		struct pollfd pfd[2] = { { .fd = ch->fd, .events = POLLIN },
					 { .fd = ch->cancel ? ch->cancel_fd : -1,
					   .events = POLLIN } };
		int left = timeout_ms < 0 ? -1 : rdmig__ms_left(deadline);
		int ret;

		if (ch->cancel && atomic_load(ch->cancel))
			return rdmig__err(-ECANCELED, "cancelled");
		ret = ch->ops->chan_get(ch, ev);
		if (ret != -EAGAIN)
			return ret;
		if (left == 0)
			return -ETIMEDOUT;
		if (poll(pfd, 2, left) < 0 && errno != EINTR)
			return rdmig__err(-errno, "poll: %s", strerror(errno));
	}
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

int rdmig__cq_wait(struct rdmig__xp_cq *cq, struct ibv_wc *wc, int n, int wait_ms)
{
	struct pollfd pfd = { .fd = cq->fd, .events = POLLIN };
	int got;

	got = rdmig__xp_poll(cq, n, wc);
	if (got)
		goto out;
	/* Arm first, then poll again: a completion that raced the arming is
	 * either seen by this poll or raises the event we wait for. */
	if (cq->ops->cq_arm(cq))
		return rdmig__err(-EIO, "arming the CQ failed");
	got = rdmig__xp_poll(cq, n, wc);
	if (got)
		goto out;
	if (poll(&pfd, 1, wait_ms) < 0 && errno != EINTR)
		return rdmig__err(-errno, "poll(completion channel): %s", strerror(errno));
	cq->ops->cq_ack(cq);
	got = rdmig__xp_poll(cq, n, wc);
out:
	if (got < 0)
		return rdmig__err(-EIO, "polling the CQ failed");
	return got;
}
