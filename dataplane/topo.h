/* SPDX-License-Identifier: MIT */
/* Worker placement: which CPUs are nearest the RDMA device. */
#ifndef RDMIG_DATAPLANE_TOPO_H
#define RDMIG_DATAPLANE_TOPO_H

#include <infiniband/verbs.h>

/*
 * Fills cpus[] (at most max) with the CPUs this process may run on that are
 * local to `dev` per hwloc (the device's NUMA node); if the device reports
 * no locality (soft-RoCE, a single-node host) or is NULL (the loopback
 * transport), every allowed CPU. Returns the
 * count (>= 1) or a negative errno.
 */
int rdmig__topo_device_cpus(struct ibv_device *dev, int *cpus, int max);

#endif /* RDMIG_DATAPLANE_TOPO_H */
