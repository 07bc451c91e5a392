// SPDX-License-Identifier: GPL-2.0-only
/*
 * vproc: one process space across the SSI cluster.
 *
 * PIDs are node-partitioned (pid = origin << 16 | local), and the origin
 * node of a PID always knows where its process runs: at home (the
 * kernel's own PID table says so) or, once migration exists, on the node
 * recorded in this module's location table (emigrants only).  Calls about
 * a process go to its origin, which serves them or answers EREMOTE; the
 * caller then asks it where the process runs.  When the origin is down,
 * the nodes running processes of its range have told every node which
 * (vproc_adopt.c), and calls about any other PID of the range fail with
 * ESRCH at once.
 *
 * The kernel asks this module through struct ssi_vproc_ops (patches/0002)
 * when a local answer is not the whole one: kill of a PID or process
 * group, get/setpriority, getpgid, getsid, and the /proc listing and
 * lookup.  A node going down drops what it ran from every other node's
 * view: its entries in the location table and in the /proc cache go, and
 * ICS fails every pending call to it at once.
 *
 * ssisys: SSISYS_VPROC_WHERE, SSISYS_VPROC_LIST, SSISYS_VPROC_LOCALVIEW.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/err.h>
#include <linux/hashtable.h>
#include <linux/kernel.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>

#include "clms.h"
#include "ics.h"
#include "ssi_core.h"
#include "vproc_gen.h"
#include "vproc_ics.h"
#include "vproc_internal.h"

/* Emigrants of this origin: pid -> node it runs on. */
struct vproc_loc {
	struct hlist_node link;
	pid_t pid;
	unsigned int node;
};

static DEFINE_HASHTABLE(vproc_locs, 8);
static DEFINE_SPINLOCK(vproc_loc_lock);

unsigned int vproc_self(void)
{
	return ssi_node_num();
}

int vproc_errno(int err)
{
	switch (err) {
	case -EHOSTDOWN:
	case -ENOTCONN:
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EPIPE:
	case -EREMOTE:
		return -ESRCH;
	default:
		return err;
	}
}

/*
 * The errno a process call returns for @err, the outcome of serving it
 * here or on another node (the peer's status, or the transport's): 0 and
 * ESRCH as they are, the errnos in @ok (VPROC_OK_*) as they are, EACCES as
 * EPERM where only EPERM is allowed (an LSM's refusal), and everything
 * else, whatever the peer sent (protocol, transport, out-of-range or
 * kernel-internal codes), as ESRCH: the process could not be reached.
 */
int vproc_clamp(int err, unsigned int ok)
{
	switch (err) {
	case 0:
	case -ESRCH:
		return err;
	case -EPERM:
		return ok & VPROC_OK_EPERM ? err : -ESRCH;
	case -EACCES:
		if (ok & VPROC_OK_EACCES)
			return err;
		return ok & VPROC_OK_EPERM ? -EPERM : -ESRCH;
	case -EAGAIN:
		return ok & VPROC_OK_EAGAIN ? err : -ESRCH;
	case -ENOENT:
		return ok & VPROC_OK_ENOENT ? err : -ESRCH;
	case -ENOMEM:
		return ok & VPROC_OK_ENOMEM ? err : -ESRCH;
	default:
		return -ESRCH;
	}
}

/* 0 if @pid runs here, -EREMOTE if it is ours but runs elsewhere, -ESRCH. */
int vproc_here(pid_t pid)
{
	unsigned int node;
	bool found;

	/* its deputy is here; the process itself serves calls about it */
	if (vproc_emigrant(pid))
		return -EREMOTE;
	rcu_read_lock();
	found = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);
	rcu_read_unlock();
	if (found)
		return 0;
	if (vproc_origin(pid) == vproc_self() && !vproc_where_here(pid, &node))
		return node == vproc_self() ? -ESRCH : -EREMOTE;
	return -ESRCH;
}

/* What this node knows of @pid: it runs here, or, as its origin, where. */
int vproc_where_here(pid_t pid, unsigned int *node)
{
	struct vproc_loc *loc;
	bool found;
	int ret = -ESRCH;

	/*
	 * The table first: a process that moved away leaves its deputy here
	 * (the migration module), a local task that is not where it runs.
	 */
	spin_lock(&vproc_loc_lock);
	hash_for_each_possible(vproc_locs, loc, link, pid) {
		if (loc->pid == pid) {
			*node = loc->node;
			ret = 0;
			break;
		}
	}
	spin_unlock(&vproc_loc_lock);
	if (!ret)
		return 0;
	rcu_read_lock();
	found = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);
	rcu_read_unlock();
	if (found) {
		*node = vproc_self();
		return 0;
	}
	/* a process that outlived its origin (this one, rebooted, or another) */
	return vproc_orphan_node(pid, node) ? 0 : -ESRCH;
}

/*
 * @pid runs on another node, and a deputy of it is here: its origin's, or
 * a sub-deputy that keeps children of it on a node it moved through.
 */
bool vproc_emigrant(pid_t pid)
{
	struct vproc_loc *loc;
	bool found = false;

	spin_lock(&vproc_loc_lock);
	hash_for_each_possible(vproc_locs, loc, link, pid) {
		if (loc->pid == pid) {
			found = true;
			break;
		}
	}
	spin_unlock(&vproc_loc_lock);
	return found;
}

int vproc_set_location(pid_t pid, unsigned int node)
{
	struct vproc_loc *loc, *new = NULL;
	struct hlist_node *tmp;

	if (!vproc_is_cluster_pid(pid) || node < 1 || node > SSI_MAX_NODES)
		return -EINVAL;
	if (node != vproc_self()) {
		new = kmalloc(sizeof(*new), GFP_KERNEL);
		if (!new)
			return -ENOMEM;
		new->pid = pid;
		new->node = node;
	}

	spin_lock(&vproc_loc_lock);
	hash_for_each_possible_safe(vproc_locs, loc, tmp, link, pid) {
		if (loc->pid == pid) {
			hash_del(&loc->link);
			kfree(loc);
		}
	}
	if (new)
		hash_add(vproc_locs, &new->link, pid);
	spin_unlock(&vproc_loc_lock);
	return 0;
}
EXPORT_SYMBOL_GPL(vproc_set_location);

static void vproc_locs_drop(unsigned int node)
{
	struct vproc_loc *loc;
	struct hlist_node *tmp;
	int bkt;

	spin_lock(&vproc_loc_lock);
	hash_for_each_safe(vproc_locs, bkt, tmp, loc, link) {
		if (!node || loc->node == node) {
			hash_del(&loc->link);
			kfree(loc);
		}
	}
	spin_unlock(&vproc_loc_lock);
}

/* A dead node's processes are gone; those it was only origin of are not. */
static void vproc_nodedown(unsigned int node, u64 transition)
{
	vproc_locs_drop(node);
	vproc_cache_drop_node(node);
	vproc_adopt_nodedown(node);
}

static void vproc_nodeup(unsigned int node, u64 transition)
{
	vproc_adopt_nodeup(node);
}

static struct clms_notifier vproc_notifier = {
	.nodeup = vproc_nodeup,
	.nodedown = vproc_nodedown,
};

/* ---- kernel hooks (struct ssi_vproc_ops) ---- */

static int vproc_hook_kill(pid_t pid, int sig, struct kernel_siginfo *info,
			   int ret)
{
	if (pid > 0)
		return vproc_is_cluster_pid(pid) ?
		       vproc_route_kill(pid, sig, info) : ret;
	if (pid == INT_MIN || !vproc_is_cluster_pid(-pid))
		return ret;
	return vproc_kill_pgrp(-pid, sig, info, ret);
}

static long vproc_hook_task_op(enum ssi_vproc_op op, pid_t pid, int arg,
			       long ret)
{
	if (!vproc_is_cluster_pid(pid))
		return ret;
	return vproc_route_task(op, pid, arg);
}

static const struct ssi_vproc_ops vproc_ops = {
	.owner = THIS_MODULE,
	.kill = vproc_hook_kill,
	.task_op = vproc_hook_task_op,
	.proc_readdir = vproc_proc_readdir,
	.proc_lookup = vproc_proc_lookup,
	.kill_pgrp = vproc_queue_pgrp_signal,
};

/* ---- ssisys ---- */

int vproc_where(pid_t pid, unsigned int *node)
{
	if (!vproc_is_cluster_pid(pid))
		return -ESRCH;
	return vproc_clamp(vproc_locate(pid, node, true), 0);
}
EXPORT_SYMBOL_GPL(vproc_where);

static long vproc_sys_where(void __user *buf, size_t len)
{
	struct ssi_vproc_where w;
	unsigned int node;
	int ret;

	if (len != sizeof(w))
		return -EINVAL;
	if (copy_from_user(&w, buf, sizeof(w)))
		return -EFAULT;
	if (w.pid <= 0)
		return -EINVAL;
	if (vproc_here(w.pid) == 0) {
		node = vproc_self();
	} else {
		if (test_bit(SSI_PFA_LOCALVIEW, &current->atomic_flags))
			return -ESRCH;
		ret = vproc_where(w.pid, &node);
		if (ret)
			return ret;
	}
	w.node = node;
	if (copy_to_user(buf, &w, sizeof(w)))
		return -EFAULT;
	return 0;
}

static const struct ssisys_handler vproc_where_handler = {
	.owner = THIS_MODULE,
	.call = vproc_sys_where,
};

static int vproc_copy_list(struct ssi_vproc_proc __user *out, u32 cap,
			   u32 *count, u32 *total, unsigned int node,
			   const struct vproc_list_rep *rep)
{
	struct ssi_vproc_proc p;
	u32 i;

	for (i = 0; i < rep->pid_count; i++, (*total)++) {
		if (*count >= cap)
			continue;
		memset(&p, 0, sizeof(p));
		p.pid = rep->pid[i];
		p.ppid = rep->ppid[i];
		p.pgid = rep->pgid[i];
		p.sid = rep->sid[i];
		p.uid = rep->uid[i];
		p.euid = rep->euid[i];
		p.node = node;
		p.state = rep->state[i];
		p.start_ns = rep->start_ns[i];
		memcpy(p.comm, rep->comm + i * VPROC_COMM_LEN, VPROC_COMM_LEN);
		p.comm[sizeof(p.comm) - 1] = '\0';
		if (copy_to_user(out + *count, &p, sizeof(p)))
			return -EFAULT;
		(*count)++;
	}
	return 0;
}

static long vproc_sys_list(void __user *buf, size_t len)
{
	struct ssi_vproc_proc __user *out;
	struct vproc_list_rep *rep;
	struct ssi_vproc_list l;
	unsigned int node;
	u64 up;
	int ret = 0;

	if (len != sizeof(l))
		return -EINVAL;
	if (copy_from_user(&l, buf, sizeof(l)))
		return -EFAULT;
	if (l.flags & ~SSI_VPROC_LIST_LOCAL)
		return -EINVAL;
	if (test_bit(SSI_PFA_LOCALVIEW, &current->atomic_flags))
		l.flags |= SSI_VPROC_LIST_LOCAL;
	out = u64_to_user_ptr(l.procs);
	rep = kvzalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return -ENOMEM;

	l.count = 0;
	l.total = 0;
	l.failed_nodes = 0;
	vproc_list_local(rep);
	ret = vproc_copy_list(out, l.capacity, &l.count, &l.total,
			      vproc_self(), rep);
	up = (l.flags & SSI_VPROC_LIST_LOCAL) ? 0 : clms_up_nodes();
	for (node = 1; node <= SSI_MAX_NODES && !ret; node++) {
		if (!(up & BIT_ULL(node)) || node == vproc_self())
			continue;
		if (vproc_list_node(node, rep)) {
			l.failed_nodes |= BIT_ULL(node);
			continue;
		}
		ret = vproc_copy_list(out, l.capacity, &l.count, &l.total,
				      node, rep);
	}
	kvfree(rep);
	if (ret)
		return ret;
	if (copy_to_user(buf, &l, sizeof(l)))
		return -EFAULT;
	return 0;
}

static const struct ssisys_handler vproc_list_handler = {
	.owner = THIS_MODULE,
	.call = vproc_sys_list,
};

static long vproc_sys_localview(void __user *buf, size_t len)
{
	struct ssi_vproc_localview lv;
	bool was = test_bit(SSI_PFA_LOCALVIEW, &current->atomic_flags);

	if (len != sizeof(lv))
		return -EINVAL;
	if (copy_from_user(&lv, buf, sizeof(lv)))
		return -EFAULT;
	if (lv.reserved || lv.set > SSI_VPROC_LOCALVIEW_QUERY)
		return -EINVAL;
	if (lv.set == 1)
		set_bit(SSI_PFA_LOCALVIEW, &current->atomic_flags);
	else if (lv.set == 0)
		clear_bit(SSI_PFA_LOCALVIEW, &current->atomic_flags);
	return was;
}

static const struct ssisys_handler vproc_localview_handler = {
	.owner = THIS_MODULE,
	.call = vproc_sys_localview,
};

int vproc_init(void)
{
	int ret;

	if (!vproc_self()) {
		pr_err("this node is not clustered (no ssi.node=)\n");
		return -ENODEV;
	}
	ret = vproc_ops_init();
	if (ret)
		return ret;
	ret = vproc_proc_init();
	if (ret)
		goto err_ops;
	ret = vproc_adopt_init();
	if (ret)
		goto err_proc;
	ret = ics_register_service(&vproc_ics_service);
	if (ret)
		goto err_adopt;
	ret = clms_register_notifier(&vproc_notifier);
	if (ret)
		goto err_service;
	ret = ssisys_register(SSISYS_VPROC_WHERE, &vproc_where_handler);
	if (ret)
		goto err_notifier;
	ret = ssisys_register(SSISYS_VPROC_LIST, &vproc_list_handler);
	if (ret)
		goto err_where;
	ret = ssisys_register(SSISYS_VPROC_LOCALVIEW, &vproc_localview_handler);
	if (ret)
		goto err_list;
	ret = ssi_register_vproc_ops(&vproc_ops);
	if (ret)
		goto err_localview;
	pr_info("clusterwide processes on node %u\n", vproc_self());
	return 0;

err_localview:
	ssisys_unregister(SSISYS_VPROC_LOCALVIEW, &vproc_localview_handler);
err_list:
	ssisys_unregister(SSISYS_VPROC_LIST, &vproc_list_handler);
err_where:
	ssisys_unregister(SSISYS_VPROC_WHERE, &vproc_where_handler);
err_notifier:
	clms_unregister_notifier(&vproc_notifier);
err_service:
	ics_unregister_service(&vproc_ics_service);
err_adopt:
	vproc_adopt_exit();
err_proc:
	vproc_proc_exit();
err_ops:
	vproc_ops_exit();
	return ret;
}

void vproc_exit(void)
{
	ssi_unregister_vproc_ops(&vproc_ops);
	ssisys_unregister(SSISYS_VPROC_LOCALVIEW, &vproc_localview_handler);
	ssisys_unregister(SSISYS_VPROC_LIST, &vproc_list_handler);
	ssisys_unregister(SSISYS_VPROC_WHERE, &vproc_where_handler);
	clms_unregister_notifier(&vproc_notifier);
	ics_unregister_service(&vproc_ics_service);
	vproc_adopt_exit();
	vproc_proc_exit();
	vproc_ops_exit();
	vproc_locs_drop(0);
}
