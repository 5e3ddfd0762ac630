/* SPDX-License-Identifier: MIT */
/*
 * Worker placement with hwloc: the device's local cpuset, intersected with
 * the CPUs the process is allowed to use.
 *
 * No topology is loaded. hwloc_ibv_get_device_cpuset() (hwloc's
 * openfabrics-verbs.h) needs one only to check that it describes this
 * system and to fall back to its complete cpuset; what it reads is the
 * device's sysfs local_cpus mask, through hwloc_linux_read_path_as_cpumask().
 * Loading the topology cost 55-127 ms of every connect under soft-RoCE in
 * a VM (issue 14), for that one mask: read the same mask the same way,
 * and fall back to every allowed CPU where hwloc would take the complete
 * cpuset (which the allowed set is intersected with anyway). Nothing is
 * shared between calls, so any number of handles may ask at once.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <hwloc.h>
#include <hwloc/linux.h>

#include "../common/util.h"
#include "topo.h"

/* The device's local CPUs as hwloc_ibv_get_device_cpuset() reads them; 0 or -1. */
static int topo_local_cpus(struct ibv_device *dev, hwloc_bitmap_t set)
{
	char path[128 + IBV_SYSFS_NAME_MAX];

	snprintf(path, sizeof(path), "/sys/class/infiniband/%s/device/local_cpus",
		 ibv_get_device_name(dev));
	if (hwloc_linux_read_path_as_cpumask(path, set) < 0 || hwloc_bitmap_iszero(set))
		return -1;
	return 0;
}

int rdmig__topo_device_cpus(struct ibv_device *dev, int *cpus, int max)
{
	hwloc_bitmap_t near = NULL;
	cpu_set_t allowed;
	int n = 0, cpu;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return rdmig__err(-errno, "sched_getaffinity: %s", strerror(errno));

	if (dev && (near = hwloc_bitmap_alloc()) && !topo_local_cpus(dev, near)) {
		hwloc_bitmap_foreach_begin(cpu, near) {
			if (n < max && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &allowed))
				cpus[n++] = cpu;
		}
		hwloc_bitmap_foreach_end();
	}
	if (near)
		hwloc_bitmap_free(near);

	if (n == 0) {
		for (cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
			if (CPU_ISSET(cpu, &allowed))
				cpus[n++] = cpu;
	}
	rdmig__log(RDMIG__LOG_INFO, "%d CPUs near %s", n,
		   dev ? ibv_get_device_name(dev) : "loopback");
	return n ? n : rdmig__err(-ENODEV, "no CPU to run workers on");
}
