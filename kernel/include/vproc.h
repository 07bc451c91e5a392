/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vproc, ssikit clusterwide processes: what other SSI modules (migration)
 * use.  A PID's origin node (pid >> SSI_PID_NODE_SHIFT) always knows
 * where its process runs; a process running at home needs no entry, one
 * that moved away is recorded with vproc_set_location() on its origin,
 * and on any other node where a sub-deputy of it keeps its children.
 */
#ifndef _SSI_VPROC_H
#define _SSI_VPROC_H

#include <linux/ssi.h>
#include <linux/types.h>

/* Origin node of a clusterwide PID, 0 for a node-local one. */
static inline unsigned int vproc_origin(pid_t pid)
{
	return pid > 0 ? (u32)pid >> SSI_PID_NODE_SHIFT : 0;
}

/*
 * On the origin: @pid now runs on @node (this node: at home again, the
 * entry goes).  -EINVAL for a PID of another origin; -ENOMEM.
 */
int vproc_set_location(pid_t pid, unsigned int node);

/* Where @pid runs: 0 and *@node, or -ESRCH.  May sleep (ICS calls). */
int vproc_where(pid_t pid, unsigned int *node);

/*
 * @pid, of another origin, runs here since a migration: if it outlived its
 * origin, this node answers for it from now on (vproc_adopt.c).
 */
void vproc_arrived(pid_t pid);

#endif /* _SSI_VPROC_H */
