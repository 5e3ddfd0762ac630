/* SPDX-License-Identifier: MIT */
/*
 * rdmig-connbench: what connecting costs (issue 14, "fast connect").
 *
 *   rdmig-connbench bare  ADDR PORT MIB   one RC QP over rdma_cm, as rping or
 *                                         ib_write_bw set it up, plus
 *                                         ibv_reg_mr of MIB MiB at both ends
 *   rdmig-connbench rdmig ADDR PORT MIB   rdmig_src_connect() for a guest of
 *                                         MIB MiB, handshake included
 *
 * One measurement per run, in a fresh process, as a VMM connects once: the
 * destination (server) is forked before anything touches RDMA, listens,
 * and says so on a pipe; then the source (client) starts its clock, with
 * nothing of librdmacm loaded yet, and stops it once connected. Both ends
 * register what rdmig's would: the source memory it reads (resident,
 * written before the clock starts; no access flags), the destination a
 * fresh mapping for local and remote write, after the request arrives (as
 * rdmig's registers after the source proved the key). So `bare` is "a bare
 * rdma_cm connect plus the registration of the same memory" and the ratio
 * rdmig/bare is what rdmig adds. Prints one line:
 *
 *   MODE MIB total_ms=T [src_reg_ms=S dst_reg_ms=D] [rdmig's INFO breakdown]
 *
 * perf/connect-report.sh runs it in interleaved rounds and takes medians.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <rdmig/rdmig.h>

#define TMO_MS 10000

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
	fprintf(stderr, "rdmig-connbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void *guest(uint64_t bytes, bool touch)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	if (touch)
		memset(p, 0x5a, bytes);
	return p;
}

static struct sockaddr_storage addr_of(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
	struct sockaddr_storage ss;

	if (getaddrinfo(host, port, &hints, &res)) {
		fprintf(stderr, "rdmig-connbench: cannot resolve %s:%s\n", host, port);
		exit(2);
	}
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return ss;
}

static struct rdma_cm_event *expect(struct rdma_event_channel *ec, enum rdma_cm_event_type want)
{
	struct rdma_cm_event *e;

	if (rdma_get_cm_event(ec, &e))
		die("rdma_get_cm_event");
	if (e->event != want) {
		fprintf(stderr, "rdmig-connbench: %s, expected %s\n", rdma_event_str(e->event),
			rdma_event_str(want));
		exit(2);
	}
	return e;
}

static struct ibv_qp_init_attr qp_attr(struct ibv_cq *cq)
{
	struct ibv_qp_init_attr qa = { .send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_RC };

	qa.cap.max_send_wr = qa.cap.max_recv_wr = 64;
	qa.cap.max_send_sge = qa.cap.max_recv_sge = 1;
	return qa;
}

/* --- bare rdma_cm ---------------------------------------------------------- */

static void bare_server(struct sockaddr_storage *ss, uint64_t bytes, int ready, int report)
{
	struct rdma_event_channel *ec = rdma_create_event_channel();
	struct rdma_conn_param cp = { .responder_resources = 1, .initiator_depth = 1 };
	struct rdma_cm_id *lid, *id;
	struct rdma_cm_event *e;
	struct ibv_qp_init_attr qa;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	void *mem = guest(bytes, false);
	double t, reg;

	if (!ec || rdma_create_id(ec, &lid, NULL, RDMA_PS_TCP) ||
	    rdma_bind_addr(lid, (struct sockaddr *)ss) || rdma_listen(lid, 16))
		die("server listen");
	if (write(ready, "r", 1) != 1)
		die("write");
	e = expect(ec, RDMA_CM_EVENT_CONNECT_REQUEST);
	id = e->id;
	rdma_ack_cm_event(e);
	pd = ibv_alloc_pd(id->verbs);
	t = now_ms();
	mr = ibv_reg_mr(pd, mem, bytes, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	reg = now_ms() - t;
	cq = ibv_create_cq(id->verbs, 128, NULL, NULL, 0);
	if (!pd || !mr || !cq)
		die("server resources");
	qa = qp_attr(cq);
	if (rdma_create_qp(id, pd, &qa) || rdma_accept(id, &cp))
		die("server accept");
	rdma_ack_cm_event(expect(ec, RDMA_CM_EVENT_ESTABLISHED));
	dprintf(report, "dst_reg_ms=%.1f", reg);
	close(report);
	rdma_ack_cm_event(expect(ec, RDMA_CM_EVENT_DISCONNECTED));
	rdma_destroy_qp(id);
	ibv_dereg_mr(mr);
	exit(0);
}

static void bare_client(struct sockaddr_storage *ss, uint64_t bytes, void *mem)
{
	struct rdma_conn_param cp = { .responder_resources = 1,
				      .initiator_depth = 1,
				      .retry_count = 7,
				      .rnr_retry_count = 7 };
	struct rdma_event_channel *ec;
	struct ibv_qp_init_attr qa;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	double t0 = now_ms(), t_ec, t_res, t_reg, t_qp, t_end;

	ec = rdma_create_event_channel();
	if (!ec || rdma_create_id(ec, &id, NULL, RDMA_PS_TCP))
		die("client id");
	t_ec = now_ms();
	if (rdma_resolve_addr(id, NULL, (struct sockaddr *)ss, TMO_MS))
		die("rdma_resolve_addr");
	rdma_ack_cm_event(expect(ec, RDMA_CM_EVENT_ADDR_RESOLVED));
	if (rdma_resolve_route(id, TMO_MS))
		die("rdma_resolve_route");
	rdma_ack_cm_event(expect(ec, RDMA_CM_EVENT_ROUTE_RESOLVED));
	t_res = now_ms();
	pd = ibv_alloc_pd(id->verbs);
	mr = pd ? ibv_reg_mr(pd, mem, bytes, 0) : NULL;
	t_reg = now_ms();
	cq = ibv_create_cq(id->verbs, 128, NULL, NULL, 0);
	if (!mr || !cq)
		die("client resources");
	qa = qp_attr(cq);
	if (rdma_create_qp(id, pd, &qa))
		die("rdma_create_qp");
	t_qp = now_ms();
	if (rdma_connect(id, &cp))
		die("rdma_connect");
	rdma_ack_cm_event(expect(ec, RDMA_CM_EVENT_ESTABLISHED));
	t_end = now_ms();
	printf("total_ms=%.1f src_reg_ms=%.1f cm_start_ms=%.1f resolve_ms=%.1f qp_ms=%.1f "
	       "connect_ms=%.1f",
	       t_end - t0, t_reg - t_res, t_ec - t0, t_res - t_ec, t_qp - t_reg, t_end - t_qp);
	rdma_disconnect(id);
	rdma_destroy_qp(id);
	ibv_dereg_mr(mr);
}

/* --- rdmig ------------------------------------------------------------------ */

static const uint8_t key[32] = "rdmig-connbench: not a secret.";

static char info[1024];

/* Keeps the lines that say where connect's time went. */
static void on_log(void *arg, enum rdmig_log_level level, const char *msg)
{
	const char *p;

	(void)arg;
	if (level <= RDMIG_LOG_WARN)
		fprintf(stderr, "rdmig: %s\n", msg);
	if ((p = strstr(msg, "connect took ")) || (p = strstr(msg, "registered ")))
		snprintf(info, sizeof(info), "%s", p);
}

static void opts(struct rdmig_opts *o)
{
	rdmig_opts_init(o);
	o->psk = key;
	o->psk_len = sizeof(key);
}

static void rdmig_server(const char *host, const char *port, uint64_t bytes, int ready, int report)
{
	struct rdmig_dst_stats st;
	struct rdmig_opts o;
	struct rdmig_dst *dst;

	opts(&o);
	rdmig_set_log(on_log, NULL);
	/* add_region returns the index, listen the port: only < 0 fails. */
	if (rdmig_dst_create(&o, &dst) ||
	    rdmig_dst_add_region(dst, 0, guest(bytes, false), bytes, RDMIG_REGION_ZERO_FILLED) <
		    0 ||
	    rdmig_dst_listen(dst, host, port) < 0) {
		fprintf(stderr, "rdmig-connbench: destination: %s\n", rdmig_last_error());
		exit(2);
	}
	if (write(ready, "r", 1) != 1)
		die("write");
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	rdmig_dst_run(dst, &st); /* ends when the source leaves */
	dprintf(report, "dst: %s", info);
	close(report);
	rdmig_dst_destroy(dst);
	exit(0);
}

static void rdmig_client(const char *host, const char *port, uint64_t bytes, void *mem)
{
	struct rdmig_opts o;
	struct rdmig_src *src;
	double t0, t;

	opts(&o);
	rdmig_set_log(on_log, NULL);
	if (rdmig_src_create(&o, &src) || rdmig_src_add_region(src, 0, mem, bytes) < 0) {
		fprintf(stderr, "rdmig-connbench: source: %s\n", rdmig_last_error());
		exit(2);
	}
	t0 = now_ms();
	if (rdmig_src_connect(src, host, port)) {
		fprintf(stderr, "rdmig-connbench: rdmig_src_connect: %s\n", rdmig_last_error());
		exit(2);
	}
	t = now_ms() - t0;
	printf("total_ms=%.1f src: %s", t, info);
	rdmig_src_destroy(src);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	uint64_t bytes;
	int ready[2], report[2], st;
	char buf[1024];
	ssize_t n;
	pid_t pid;
	bool bare;
	void *mem;

	if (argc != 5 || (strcmp(argv[1], "bare") && strcmp(argv[1], "rdmig"))) {
		fprintf(stderr, "usage: rdmig-connbench bare|rdmig ADDR PORT MIB\n");
		return 2;
	}
	bare = !strcmp(argv[1], "bare");
	bytes = strtoull(argv[4], NULL, 0) << 20;
	ss = addr_of(argv[2], argv[3]);
	if (pipe(ready) || pipe(report))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(ready[0]);
		close(report[0]);
		if (bare)
			bare_server(&ss, bytes, ready[1], report[1]);
		rdmig_server(argv[2], argv[3], bytes, ready[1], report[1]);
	}
	close(ready[1]);
	close(report[1]);
	mem = guest(bytes, true);
	if (read(ready[0], buf, 1) != 1) {
		fprintf(stderr, "rdmig-connbench: the destination did not start\n");
		return 2;
	}
	printf("%s %s ", argv[1], argv[4]);
	if (bare)
		bare_client(&ss, bytes, mem);
	else
		rdmig_client(argv[2], argv[3], bytes, mem);
	n = read(report[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	printf(" %s\n", buf);
	fflush(stdout);
	waitpid(pid, &st, 0);
	return 0;
}
