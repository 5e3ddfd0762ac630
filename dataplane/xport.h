/* SPDX-License-Identifier: MIT */
/*
 * The transport seam: the part of verbs and rdma_cm that rdmig uses, behind
 * one table of operations with two implementations.
 *
 *   verbs     (xport_verbs.c)  libibverbs and librdmacm on a real device.
 *   loopback  (xport_loop.c)   memory copies between a source and a
 *                              destination in one process: a software
 *                              "NIC" thread per QP, an optional wire-rate
 *                              cap, and a hook in the middle of every read
 *                              of source memory, so tests run without a
 *                              device and can inject races deterministically.
 *
 * The objects mirror verbs' (event channel, cm id, PD, MR, CQ, QP owned by
 * its id) and so do the semantics the library relies on: an RC send queue
 * executes in order and a SEND is delivered only after every WRITE before it
 * is placed; a CQ completes in order; a WRITE needs a remote key registered
 * for remote write in the peer's PD and covering the range; a QP in error
 * completes every outstanding WR with IBV_WC_WR_FLUSH_ERR; a disconnect
 * puts both QPs in error and raises DISCONNECTED at the peer; a QP moved
 * to error (qp_error) places nothing its peer sends from then on, so it
 * revokes the peer's remote access at once, however much memory its PD
 * has registered; deregistering an MR returns only once no access to it
 * is under way.
 *
 * Work requests and completions are verbs' own plain structs (ibv_send_wr,
 * ibv_recv_wr, ibv_wc, one SGE at most); post calls return a positive errno
 * like ibv_post_send(). Only the verbs transport touches a device.
 */
#ifndef RDMIG_DATAPLANE_XPORT_H
#define RDMIG_DATAPLANE_XPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "../common/util.h"

struct rdmig__xp_ops;

/*
 * An event channel: `fd` is readable while events wait. Its owner may set
 * `cancel` (and `cancel_fd`, an eventfd written when it is set): then the
 * transport's blocking calls (resolve, connect) and rdmig__cm_next() give
 * up with -ECANCELED within a few milliseconds of it.
 */
struct rdmig__xp_chan {
	const struct rdmig__xp_ops *ops;
	int fd;
	const atomic_bool *cancel; /* NULL: no cancellation */
	int cancel_fd;
};

/* A connection id; it owns at most one QP. */
struct rdmig__xp_id {
	const struct rdmig__xp_ops *ops;
	struct rdmig__xp_chan *chan;
};

/* A protection domain on the device an id resolved to. */
struct rdmig__xp_pd {
	const struct rdmig__xp_ops *ops;
};

struct rdmig__xp_mr {
	const struct rdmig__xp_ops *ops;
	uint32_t lkey, rkey;
};

/* A CQ: once armed, `fd` becomes readable at the next completion. */
struct rdmig__xp_cq {
	const struct rdmig__xp_ops *ops;
	int fd;
};

/* A connection event; valid until acked. */
struct rdmig__xp_event {
	enum rdma_cm_event_type event; /* verbs' names for both transports */
	int status;
	struct rdmig__xp_id *id; /* CONNECT_REQUEST: a new id, the caller's to keep or destroy */
	const void *pdata;
	uint8_t pdlen;
	uint32_t peer_qpn; /* CONNECT_REQUEST: the requester's QP number */
	void *impl;
};

/*
 * Who a connected id talks to, for binding a handshake to its connection:
 * both addresses in 16-byte GID form (an IPv4 address mapped into IPv6, as
 * RoCE derives its GIDs) and both QP numbers.
 */
struct rdmig__xp_conn_info {
	uint8_t local_gid[16], peer_gid[16];
	uint32_t local_qpn, peer_qpn;
};

struct rdmig__xp_qp_attr {
	struct rdmig__xp_cq *cq; /* send and receive completions */
	uint32_t send_depth, recv_depth;
	uint32_t qp_timeout; /* verbs: the RC ACK timeout exponent */
	uint32_t rate_mbps;  /* loopback: wire-rate cap of what this QP sends, 0 = none */
	uint32_t index;	     /* endpoint index: 0 the control connection, else a data QP
			      * (the loopback's fault injection tells them apart) */
};

/*
 * What a verbs id goes through (rdmig.h, "Choosing the path"): once
 * resolved or bound, its device and port and its local address; once its
 * QP is connected, the GID index and traffic class the QP really uses.
 */
struct rdmig__xp_path {
	char dev[64]; /* "": bound to no single device (a wildcard listen) */
	uint32_t port;
	struct sockaddr_storage local;
	int sgid_index; /* -1: no connected QP yet */
	int tclass;	/* -1: no connected QP yet */
};

/* A port's GID table entry, and the sizes it was checked against. */
struct rdmig__xp_gid {
	uint8_t gid[16];
	const char *type;      /* "IB", "RoCE v1", "RoCE v2" */
	uint32_t ndev_ifindex; /* RoCE: the netdev of the entry's address */
	uint32_t nports;       /* ports of the device */
	uint32_t tbl_len;      /* entries in the port's GID table */
};

struct rdmig__xp_ops {
	const char *name;

	/* Connection management. */
	int (*chan_create)(struct rdmig__xp_chan **chp);
	void (*chan_destroy)(struct rdmig__xp_chan *ch);
	/* The next event without blocking: 0, or -EAGAIN when none waits. */
	int (*chan_get)(struct rdmig__xp_chan *ch, struct rdmig__xp_event *ev);
	void (*chan_ack)(struct rdmig__xp_event *ev);
	int (*id_create)(struct rdmig__xp_chan *ch, struct rdmig__xp_id **idp);
	/* Destroys the id (its QP first, if any); drops its pending events. */
	void (*id_destroy)(struct rdmig__xp_id *id);
	/*
	 * Moves the id, and the events waiting for it, to channel `ch`: its
	 * later events arrive there (rdma_migrate_id()). Lets connections be
	 * made in parallel, each on a channel of its own, and then watched
	 * together on one.
	 */
	int (*id_migrate)(struct rdmig__xp_id *id, struct rdmig__xp_chan *ch);
	/* Binds and listens; returns the port (an ephemeral one for port 0). */
	int (*listen)(struct rdmig__xp_id *id, const struct sockaddr *addr);
	/* Active side, each bounded by timeout_ms: resolve address and route,
	 * then (after qp_create) connect with private data. */
	int (*resolve)(struct rdmig__xp_id *id, const struct sockaddr *addr, int timeout_ms);
	int (*connect)(struct rdmig__xp_id *id, const void *pdata, uint8_t len, int timeout_ms);
	/* Passive side, on a CONNECT_REQUEST's id (after qp_create). */
	int (*accept)(struct rdmig__xp_id *id);
	void (*reject)(struct rdmig__xp_id *id);
	void (*disconnect)(struct rdmig__xp_id *id);
	/* Once connected (the passive side: after accept). */
	int (*conn_info)(struct rdmig__xp_id *id, struct rdmig__xp_conn_info *ci);
	/* The number of the id's QP (after qp_create). */
	uint32_t (*qp_num)(struct rdmig__xp_id *id);

	/* The device behind a resolved or requesting id. */
	int (*pd_alloc)(struct rdmig__xp_id *id, struct rdmig__xp_pd **pdp);
	void (*pd_free)(struct rdmig__xp_pd *pd);
	bool (*pd_on_dev_of)(const struct rdmig__xp_pd *pd, const struct rdmig__xp_id *id);
	const char *(*dev_name)(const struct rdmig__xp_pd *pd);
	uint64_t (*max_msg)(const struct rdmig__xp_pd *pd);
	/* CPUs near the device (every allowed CPU when it says nothing). */
	int (*dev_cpus)(const struct rdmig__xp_pd *pd, int *cpus, int max);

	int (*mr_reg)(struct rdmig__xp_pd *pd, void *addr, size_t len, int access,
		      struct rdmig__xp_mr **mrp);
	void (*mr_dereg)(struct rdmig__xp_mr *mr);

	int (*cq_create)(struct rdmig__xp_pd *pd, int depth, struct rdmig__xp_cq **cqp);
	void (*cq_destroy)(struct rdmig__xp_cq *cq);
	/* Up to n completions; a negative value on failure. */
	int (*cq_poll)(struct rdmig__xp_cq *cq, int n, struct ibv_wc *wc);
	int (*cq_arm)(struct rdmig__xp_cq *cq);
	/* Consumes the wakeups that made fd readable. */
	void (*cq_ack)(struct rdmig__xp_cq *cq);

	int (*qp_create)(struct rdmig__xp_id *id, struct rdmig__xp_pd *pd,
			 const struct rdmig__xp_qp_attr *attr);
	void (*qp_destroy)(struct rdmig__xp_id *id);
	/*
	 * Moves the id's QP to error (verbs: ibv_modify_qp to IBV_QPS_ERR):
	 * once it returns, nothing the peer sends or WRITEs is placed or
	 * received; what is outstanding completes with IBV_WC_WR_FLUSH_ERR.
	 * The peer is not told (it learns when it next sends). Constant time,
	 * whatever is registered: how a session revokes remote access before
	 * it deregisters. 0 or a negative errno; none without a QP.
	 */
	int (*qp_error)(struct rdmig__xp_id *id);
	int (*post_send)(struct rdmig__xp_id *id, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
	int (*post_recv)(struct rdmig__xp_id *id, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);

	/*
	 * Choosing the path: verbs only, NULL in the loopback (it has no
	 * device, GID or traffic class: ctrl/path.c accepts and ignores
	 * those there). set_path, before resolve or listen: leave from
	 * `local` (NULL: the route's choice), with IP TOS `tos` (-1: the
	 * device's default). gid_query: entry `index` of port `port` of
	 * device `dev` (index -1: only the sizes; port 0: port 1): -ENODEV
	 * when there is no such device, -EINVAL when the port or index is out
	 * of range or the entry empty, with what exists in `why`.
	 */
	int (*set_path)(struct rdmig__xp_id *id, const struct sockaddr *local, int tos);
	int (*path_info)(struct rdmig__xp_id *id, struct rdmig__xp_path *p);
	int (*gid_query)(const char *dev, uint32_t port, int index, struct rdmig__xp_gid *g,
			 char *why, size_t whylen);
};

extern const struct rdmig__xp_ops rdmig__xp_verbs;
extern const struct rdmig__xp_ops rdmig__xp_loopback;

static inline const struct rdmig__xp_ops *rdmig__xp_ops_of(uint32_t transport)
{
	return transport == RDMIG__XPORT_LOOPBACK ? &rdmig__xp_loopback : &rdmig__xp_verbs;
}

static inline int rdmig__xp_post_send(struct rdmig__xp_id *id, struct ibv_send_wr *wr,
				      struct ibv_send_wr **bad)
{
	return id->ops->post_send(id, wr, bad);
}

static inline int rdmig__xp_post_recv(struct rdmig__xp_id *id, struct ibv_recv_wr *wr,
				      struct ibv_recv_wr **bad)
{
	return id->ops->post_recv(id, wr, bad);
}

static inline int rdmig__xp_poll(struct rdmig__xp_cq *cq, int n, struct ibv_wc *wc)
{
	return cq->ops->cq_poll(cq, n, wc);
}

/*
 * Loopback test hook: called by the loopback NIC before it reads each piece
 * of src[off .. off + RDMIG__LOOP_PIECE) for an RDMA WRITE of len bytes, so
 * a test can change a page while it is being read (the destination then
 * holds a page that is half old, half new). Global; NULL removes it. The
 * hook runs with the loopback fabric's lock held: it may change memory but
 * must not call into the transport.
 */
#define RDMIG__LOOP_PIECE 2048
typedef void (*rdmig__loop_read_hook_fn)(void *arg, const uint8_t *src, uint64_t len, uint64_t off);
void rdmig__loopback_set_read_hook(rdmig__loop_read_hook_fn fn, void *arg);

/*
 * Loopback: MRs registered for remote write right now, in this process (the
 * loopback analogue of listing a device's MRs: exposed memory).
 */
int rdmig__loopback_exposed_mrs(void);

/*
 * Loopback fault injection, for tests. Every work request a loopback NIC
 * is about to execute falls in one of RDMIG__LOOP_WR_CLASSES classes (an OR
 * of the bits below) and is counted there; the armed fault hits the nth
 * one of its class (1 = the first after arming), once:
 *
 *   QP_ERROR    the executing QP goes to error: that WR and every one
 *               outstanding on it complete with IBV_WC_WR_FLUSH_ERR, its
 *               receives too; the peer is not told (as when a local
 *               QP fails), it learns when it next sends to it.
 *   PEER_ERROR  the responder's QP goes to error first: the WR fails with
 *               IBV_WC_RETRY_EXC_ERR, the responder's queues are flushed.
 *   DROP        the WR completes at the requester but never reaches the
 *               responder: a lost message (real RC retransmits or fails
 *               the QP instead), only a timeout can catch it. For SENDs:
 *               a dropped WRITE would be corruption that no RC allows.
 *   DUP         the WR is executed twice: a SEND arrives twice.
 *   DELAY       the WR, and the QP's queue behind it, waits delay_ms first
 *               (cut short if the QP goes to error or is destroyed).
 *   KILL_PEER   the responder's process crashes: every connected id on
 *               its event channel (its whole side of the session) is
 *               disconnected at once, its QPs to error, and their peers
 *               get DISCONNECTED. Nothing is delivered to the dead side.
 *   KILL_SELF   the same for the requester's side.
 *
 * Global; setting a fault (NULL: none) resets the counts and the record of
 * the last one. Tests only: with no fault armed the NIC only counts.
 */
#define RDMIG__LOOP_WR_PASSIVE 1u /* posted on the passive side (rdmig's destination) */
#define RDMIG__LOOP_WR_DATA    2u /* on a data QP (endpoint index > 0), else the control QP */
#define RDMIG__LOOP_WR_WRITE   4u /* an RDMA WRITE, else a SEND */
#define RDMIG__LOOP_WR_CLASSES 8

enum rdmig__loop_fault_kind {
	RDMIG__LOOP_FAULT_NONE = 0,
	RDMIG__LOOP_FAULT_QP_ERROR,
	RDMIG__LOOP_FAULT_PEER_ERROR,
	RDMIG__LOOP_FAULT_DROP,
	RDMIG__LOOP_FAULT_DUP,
	RDMIG__LOOP_FAULT_DELAY,
	RDMIG__LOOP_FAULT_KILL_PEER,
	RDMIG__LOOP_FAULT_KILL_SELF,
};

struct rdmig__loop_fault {
	enum rdmig__loop_fault_kind kind;
	uint32_t wr_class; /* RDMIG__LOOP_WR_* bits */
	uint64_t nth;	   /* which WR of that class, from 1 */
	uint32_t delay_ms; /* DELAY */
};

void rdmig__loopback_set_fault(const struct rdmig__loop_fault *f);

/* What the NICs executed since the fault was set, and whether it hit. */
struct rdmig__loop_fault_state {
	uint64_t count[RDMIG__LOOP_WR_CLASSES]; /* WRs executed (or dropped), per class */
	bool fired;
	uint64_t fired_ns; /* when it hit (rdmig__now_ns(), CLOCK_MONOTONIC) */
};

void rdmig__loopback_fault_state(struct rdmig__loop_fault_state *st);

/*
 * Loopback, tests: the next connect of an active side's endpoint `index`
 * (a data QP's: 1 and up; 0 disarms) waits delay_ms (cut short by a
 * cancel), then fails with -ECONNREFUSED as a refusal would, once: a
 * data connection that fails while the others are being made.
 */
void rdmig__loopback_refuse_connect(uint32_t index, uint32_t delay_ms);

/*
 * Loopback objects alive in this process, so a test can check that a
 * session leaves nothing behind: every count is 0 once all handles are
 * destroyed. `fds` counts the eventfds of channels and CQs, `nics` the NIC
 * threads, `events` connection events queued or not yet acked.
 */
struct rdmig__loop_live {
	int chans, ids, pds, mrs, cqs, qps, nics, fds, events;
};

void rdmig__loopback_live(struct rdmig__loop_live *live);

#endif /* RDMIG_DATAPLANE_XPORT_H */
