/* SPDX-License-Identifier: GPL-2.0-only */
/* vproc internals shared by vproc_main.c, vproc_ops.c and vproc_proc.c. */
#ifndef _VPROC_INTERNAL_H
#define _VPROC_INTERNAL_H

#include <linux/build_bug.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/minmax.h>
#include <linux/string.h>
#include <linux/types.h>

#include "ics.h"
#include "ssi_core.h"
#include "vproc.h"

struct cred;
struct dentry;
struct dir_context;
struct file;
struct kernel_siginfo;
struct ssi_vproc_proc;
struct vproc_list_rep;
struct vproc_read_rep;

/* Every ICS call of vproc is bounded by this (a down node fails sooner). */
#define VPROC_TIMEOUT		(3 * HZ * ICS_SLOW_KERNEL_FACTOR)
/* Clusterwide PIDs are routed; node-local ones (< 65536) never are. */
static inline bool vproc_is_cluster_pid(pid_t pid)
{
	return pid > SSI_PID_LOCAL_MASK && vproc_origin(pid) <= SSI_MAX_NODES;
}

unsigned int vproc_self(void);
/* Turn an ICS transport failure into "no such process". */
int vproc_errno(int err);

/* Errnos a call may return (abi/ERRNOS.md "vproc and the process calls"). */
#define VPROC_OK_EPERM		BIT(0)
#define VPROC_OK_EACCES		BIT(1)
#define VPROC_OK_EAGAIN		BIT(2)
#define VPROC_OK_ENOENT		BIT(3)
#define VPROC_OK_ENOMEM		BIT(4)
int vproc_clamp(int err, unsigned int ok);

/* Location table (vproc_main.c). */
int vproc_where_here(pid_t pid, unsigned int *node);
bool vproc_emigrant(pid_t pid);
int vproc_here(pid_t pid);

/* Processes that outlive their origin (vproc_adopt.c). */
#define VPROC_ADOPT_GONE	BIT(0)
bool vproc_orphan_node(pid_t pid, unsigned int *node);
void vproc_adopt_nodedown(unsigned int node);
void vproc_adopt_nodeup(unsigned int node);
int vproc_adopt_init(void);
void vproc_adopt_exit(void);

/* Calls routed to where a process runs (vproc_ops.c). */
#define VPROC_COMM_LEN		16
int vproc_locate(pid_t pid, unsigned int *node, bool ask_origin);
int vproc_kill_pgrp(pid_t pgid, int sig, const struct kernel_siginfo *info,
		    int ret);
int vproc_route_kill(pid_t pid, int sig, const struct kernel_siginfo *info);
void vproc_queue_pgrp_signal(pid_t pgid, int sig, bool priv);
int vproc_route_goto(pid_t pid, unsigned int node);
long vproc_route_task(u32 op, pid_t pid, int arg);
int vproc_route_attr(pid_t pid, unsigned int *node, u32 *uid, u32 *gid);
struct vproc_read_rep *vproc_route_read(pid_t pid, const char *name);
bool vproc_proc_file_ok(const char *name, bool *private);
const char *vproc_proc_file_name(unsigned int i);
int vproc_list_node(unsigned int node, struct vproc_list_rep *rep);
void vproc_list_local(struct vproc_list_rep *rep);
int vproc_ops_init(void);
void vproc_ops_exit(void);

/* Attribute cache of other nodes' processes (vproc_proc.c). */
void vproc_cache_put(pid_t pid, unsigned int node, u32 uid, u32 gid);
bool vproc_cache_get(pid_t pid, unsigned int *node, u32 *uid, u32 *gid);
void vproc_cache_drop_node(unsigned int node);
void vproc_cache_clear(void);

/* /proc (vproc_proc.c). */
int vproc_proc_readdir(struct file *file, struct dir_context *ctx,
		       loff_t base);
struct dentry *vproc_proc_lookup(struct dentry *dentry, unsigned int tgid,
				 unsigned int flags);
int vproc_proc_init(void);
void vproc_proc_exit(void);

#endif /* _VPROC_INTERNAL_H */
