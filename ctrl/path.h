/* SPDX-License-Identifier: MIT */
/*
 * Choosing the path (rdmig.h): the local address, device and port, GID
 * index and TOS of every connection, and the CPUs the workers may use.
 * rdma_cm chooses most of it from the addresses; these calls steer it where
 * it can be steered and check, with a message naming the variable, what it
 * chose where it cannot. Over the loopback transport (no device) only the
 * worker CPUs apply; the rest was validated at create and is ignored.
 */
#ifndef RDMIG_CTRL_PATH_H
#define RDMIG_CTRL_PATH_H

#include <sys/socket.h>

#include "../common/util.h"
#include "../dataplane/xport.h"

/*
 * Before the first resolve (source) or the bind (destination): checks that
 * RDMIG_DEVICE names a device and port this host has, and picks the local
 * address: RDMIG_LOCAL_ADDR, else, with RDMIG_GID_INDEX and RDMIG_DEVICE,
 * the address of that GID entry. Returns 1 and *local, 0 when the route
 * chooses, or a negative errno.
 */
int rdmig__path_local(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		      struct sockaddr_storage *local);

/*
 * The destination's listen address: with host NULL, the local address of
 * rdmig__path_local() if there is one, on the port already in *ss (else
 * *ss is left as it is). Returns 0 or a negative errno.
 */
int rdmig__path_listen_addr(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
			    const char *host, struct sockaddr_storage *ss);

/*
 * On a new id, before resolve or listen: leave from `local` (NULL: the
 * route's choice) with RDMIG_TOS.
 */
int rdmig__path_set(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		    struct rdmig__xp_id *id, const struct sockaddr *local);

/*
 * After resolve (source) or bind (destination): the id goes through the
 * device and port RDMIG_DEVICE asks for, and the RDMIG_GID_INDEX entry
 * exists there and holds the id's local address. `what` names the id.
 */
int rdmig__path_check(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		      struct rdmig__xp_id *id, const char *what);

/*
 * Once the id's QP is connected: it really uses the RDMIG_GID_INDEX entry
 * (a mismatch is -EINVAL); a traffic class other than RDMIG_TOS is logged.
 * Fills *out (may be NULL) with what it found.
 */
int rdmig__path_verify(const struct rdmig__config *cfg, const struct rdmig__xp_ops *xp,
		       struct rdmig__xp_id *id, const char *what, struct rdmig__xp_path *out);

/*
 * The CPUs workers are placed on: `cpus` (ncpus, those near the device)
 * narrowed to RDMIG_WORKER_CPUS, or, when none of them is in it, the
 * list's CPUs the process may use. Returns the new count (>= 1) or a
 * negative errno.
 */
int rdmig__path_worker_cpus(const struct rdmig__config *cfg, int *cpus, int ncpus, int max);

#endif /* RDMIG_CTRL_PATH_H */
