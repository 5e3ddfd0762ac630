/* SPDX-License-Identifier: MIT */
/*
 * Worker placement with hwloc: the device's local cpuset, intersected with
 * the CPUs the process is allowed to use.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>

#include <hwloc.h>
#include <hwloc/openfabrics-verbs.h>

#include "../common/util.h"
#include "topo.h"

int rdmig__topo_device_cpus(struct ibv_device *dev, int *cpus, int max)
{
	hwloc_topology_t topo = NULL;
	hwloc_bitmap_t near = NULL;
	cpu_set_t allowed;
	int n = 0, cpu;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return rdmig__err(-errno, "sched_getaffinity: %s", strerror(errno));

	if (dev && !hwloc_topology_init(&topo) && !hwloc_topology_load(topo)) {
		near = hwloc_bitmap_alloc();
		if (near && dev && !hwloc_ibv_get_device_cpuset(topo, dev, near)) {
			hwloc_bitmap_foreach_begin(cpu, near) {
				if (n < max && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &allowed))
					cpus[n++] = cpu;
			}
			hwloc_bitmap_foreach_end();
		}
	}
	if (near)
		hwloc_bitmap_free(near);
	if (topo)
		hwloc_topology_destroy(topo);

	if (n == 0) {
		for (cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
			if (CPU_ISSET(cpu, &allowed))
				cpus[n++] = cpu;
	}
	rdmig__log(RDMIG__LOG_INFO, "%d CPUs near %s", n,
		   dev ? ibv_get_device_name(dev) : "loopback");
	return n ? n : rdmig__err(-ENODEV, "no CPU to run workers on");
}
