/* SPDX-License-Identifier: MIT */
/* Choosing the path: see path.h and rdmig.h ("Choosing the path"). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "path.h"

/* An address in GID form: IPv6 as it is, IPv4 mapped (::ffff:a.b.c.d). */
static void addr_gid(const struct sockaddr_storage *ss, uint8_t *gid)
{
	memset(gid, 0, 16);
	if (ss->ss_family == AF_INET6) {
		memcpy(gid, &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr, 16);
	} else if (ss->ss_family == AF_INET) {
		gid[10] = gid[11] = 0xff;
		memcpy(gid + 12, &((const struct sockaddr_in *)(const void *)ss)->sin_addr, 4);
	}
}

static bool gid_is_v4(const uint8_t *gid)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return !memcmp(gid, prefix, sizeof(prefix));
}

/* A GID as an address, the way `ip` would print it. */
static const char *gid_str(const uint8_t *gid, char *buf, size_t size)
{
	if (gid_is_v4(gid))
		inet_ntop(AF_INET, gid + 12, buf, (socklen_t)size);
	else
		inet_ntop(AF_INET6, gid, buf, (socklen_t)size);
	return buf;
}

int rdmig__path_local(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		      struct sockaddr_storage *local)
{
	struct rdmig__xp_gid g;
	char why[512], a[64];
	int ret;

	if (xp->gid_query && cfg->device[0]) {
		/* An unknown device or port fails here, before the route does. */
		ret = xp->gid_query(cfg->device, cfg->device_port, -1, &g, why, sizeof(why));
		if (ret)
			return rdmig__err(ret, "RDMIG_DEVICE: %s", why);
	}
	if (cfg->has_local) {
		*local = cfg->local;
		return 1;
	}
	if (!xp->gid_query || cfg->gid_index < 0 || !cfg->device[0])
		return 0;
	/* rdma_cm takes the GID from the local address: give it the GID's. */
	ret = xp->gid_query(cfg->device, cfg->device_port, cfg->gid_index, &g, why, sizeof(why));
	if (ret)
		return rdmig__err(ret, "RDMIG_GID_INDEX: %s", why);
	memset(local, 0, sizeof(*local));
	if (gid_is_v4(g.gid)) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)local;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, g.gid + 12, 4);
	} else if (!strcmp(g.type, "IB")) {
		return rdmig__err(-EINVAL,
				  "RDMIG_GID_INDEX: %s is InfiniBand, where rdma_cm takes the GID "
				  "from the IPoIB address: set RDMIG_LOCAL_ADDR instead",
				  cfg->device);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)local;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, g.gid, 16);
		if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr))
			in6->sin6_scope_id = g.ndev_ifindex;
	}
	rdmig__log(RDMIG__LOG_INFO, "RDMIG_GID_INDEX %d of %s: leaving from %s (%s)",
		   cfg->gid_index, cfg->device, gid_str(g.gid, a, sizeof(a)), g.type);
	return 1;
}

int rdmig__path_listen_addr(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
			    const char *host, struct sockaddr_storage *ss)
{
	struct sockaddr_storage local;
	in_port_t port = ss->ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)ss)->sin6_port
						   : ((struct sockaddr_in *)(void *)ss)->sin_port;
	int ret = rdmig__path_local(cfg, xp, &local);

	if (ret <= 0 || host)
		return ret < 0 ? ret : 0;
	*ss = local;
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)(void *)ss)->sin6_port = port;
	else
		((struct sockaddr_in *)(void *)ss)->sin_port = port;
	return 0;
}

int rdmig__path_set(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		    struct rdmig__xp_id *id, const struct sockaddr *local)
{
	if (!xp->set_path)
		return 0;
	return xp->set_path(id, local, cfg->tos);
}

int rdmig__path_check(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		      struct rdmig__xp_id *id, const char *what)
{
	struct rdmig__xp_path p;
	struct rdmig__xp_gid g;
	uint8_t mine[16];
	char why[512], a[64], b[64];
	int ret;

	if (!xp->path_info || (!cfg->device[0] && cfg->gid_index < 0))
		return 0;
	if ((ret = xp->path_info(id, &p)))
		return ret;
	if (!p.dev[0])
		return rdmig__err(-EINVAL,
				  "%s: %s needs an address on one device, and a wildcard address "
				  "listens on all: listen on an address of %s",
				  what, cfg->device[0] ? "RDMIG_DEVICE" : "RDMIG_GID_INDEX",
				  cfg->device[0] ? cfg->device : "the device");
	if (cfg->device[0] &&
	    (strcmp(p.dev, cfg->device) || (cfg->device_port && p.port != cfg->device_port))) {
		snprintf(b, sizeof(b), " port %u", cfg->device_port);
		return rdmig__err(-EINVAL,
				  "RDMIG_DEVICE: %s goes through %s port %u, not %s%s: set "
				  "RDMIG_LOCAL_ADDR to an address on %s",
				  what, p.dev, p.port, cfg->device, cfg->device_port ? b : "",
				  cfg->device);
	}
	if (cfg->gid_index < 0)
		return 0;
	if ((ret = xp->gid_query(p.dev, p.port, cfg->gid_index, &g, why, sizeof(why))))
		return rdmig__err(ret, "RDMIG_GID_INDEX: %s", why);
	addr_gid(&p.local, mine);
	if (memcmp(mine, g.gid, 16))
		return rdmig__err(-EINVAL,
				  "RDMIG_GID_INDEX: entry %d of %s port %u holds %s (%s), but %s "
				  "leaves from %s: set RDMIG_LOCAL_ADDR to the entry's address, "
				  "or RDMIG_DEVICE so that rdmig takes it",
				  cfg->gid_index, p.dev, p.port, gid_str(g.gid, a, sizeof(a)),
				  g.type, what, gid_str(mine, b, sizeof(b)));
	return 0;
}

int rdmig__path_verify(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		       struct rdmig__xp_id *id, const char *what, struct rdmig__xp_path *out)
{
	struct rdmig__xp_path p;
	struct rdmig__xp_gid g, c;
	char why[512];
	int ret;

	if (!xp->path_info)
		return 0;
	if ((ret = xp->path_info(id, &p)))
		return ret;
	if (out)
		*out = p;
	rdmig__log(RDMIG__LOG_INFO, "%s: %s port %u, GID index %d, traffic class %d", what, p.dev,
		   p.port, p.sgid_index, p.tclass);
	if (cfg->gid_index >= 0 && p.sgid_index != cfg->gid_index) {
		/* Name both entries: typically one address, two RoCE types. */
		bool ok = !xp->gid_query(p.dev, p.port, cfg->gid_index, &g, why, sizeof(why)) &&
			  p.sgid_index >= 0 &&
			  !xp->gid_query(p.dev, p.port, p.sgid_index, &c, why, sizeof(why));

		return rdmig__err(-EINVAL,
				  "RDMIG_GID_INDEX: %s uses GID index %d of %s port %u (%s), not "
				  "%d (%s): rdma_cm takes the entry of the local address with its "
				  "default RoCE type",
				  what, p.sgid_index, p.dev, p.port, ok ? c.type : "?",
				  cfg->gid_index, ok ? g.type : "?");
	}
	if (cfg->tos >= 0 && p.tclass != cfg->tos)
		rdmig__log(RDMIG__LOG_WARN,
			   "%s: traffic class %d, RDMIG_TOS asked for %d (the device maps it)",
			   what, p.tclass, cfg->tos);
	return 0;
}

int rdmig__path_worker_cpus(const struct rdmig__config *cfg, int *cpus, int ncpus, int max)
{
	uint64_t allowed[RDMIG__CPU_WORDS];
	char a[256], b[256];
	int n = 0, ret;

	if (!cfg->has_worker_cpus)
		return ncpus;
	for (int i = 0; i < ncpus; i++)
		if (cpus[i] >= 0 && rdmig__cpu_isset(cfg->worker_cpus, (unsigned)cpus[i]))
			cpus[n++] = cpus[i];
	if (n)
		return n;
	/* None of the list is near the device: the VMM's list wins over
	 * locality (the point is to keep off the vCPUs' cores). */
	if ((ret = rdmig__cpus_allowed(allowed)))
		return ret;
	for (unsigned c = 0; c < RDMIG__MAX_CPUS && n < max; c++)
		if (rdmig__cpu_isset(cfg->worker_cpus, c) && rdmig__cpu_isset(allowed, c))
			cpus[n++] = (int)c;
	if (n) {
		rdmig__log(RDMIG__LOG_INFO, "no CPU of RDMIG_WORKER_CPUS is near the device");
		return n;
	}
	rdmig__cpus_format(cfg->worker_cpus, a, sizeof(a));
	rdmig__cpus_format(allowed, b, sizeof(b));
	return rdmig__err(-EINVAL,
			  "RDMIG_WORKER_CPUS: none of CPUs %s is one this process may run on now "
			  "(its affinity: %s)",
			  a, b);
}
