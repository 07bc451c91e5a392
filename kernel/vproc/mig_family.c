// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration: a parent and child whose home node died.
 *
 * A process P that forked C on their home node H and both moved away are
 * tied by C's deputy on H: that task is the child P's wait() asks H about
 * (mig.wait).  When H goes down the deputies go with it and both processes
 * run on, but P's wait() finds nobody (ECHILD) and C's end reaches nobody.
 * This file keeps the two a family without H (service mig, call family):
 *
 *  - The node running C (a migrant whose home is gone: record home 0, a
 *    parent PID of the same origin) finds P's node through vproc's table
 *    of processes that outlived their origin (vproc_where()) and tells it
 *    family(runs, ppid, pid, node, pgid, uid).  It does so after every
 *    node going down and when C arrives on a node, so P's node always
 *    knows where C runs.  vproc fills that table asynchronously, so a
 *    parent not found yet is asked again every MIG_KIN_RETRY, up to
 *    MIG_KIN_TRIES times; a parent never found (it ran on H and died with
 *    it, or it ended) makes C an orphan: its getppid() says 1.
 *  - P's node keeps a kin record per child.  C's end is family(exited,
 *    status): the record becomes a zombie that P's wait4()/waitid() (the
 *    mig_wait() hook) take as from a local zombie, and P gets the SIGCHLD
 *    a local child's end sends, unless SIGCHLD is ignored or has
 *    SA_NOCLDWAIT, where the child is reaped at once as locally.
 *  - The node running C going down ends C as killed (SIGKILL): a node
 *    takes its processes with it.
 *  - P moving on hands its records to its new node (runs; zombie: no
 *    second SIGCHLD).  P ending tells each running child's node
 *    family(parent gone): the child becomes an orphan.
 *
 * For the announces' time after a node goes down, the wait of a moved
 * process whose home is gone and that finds no record says "none ready"
 * (it sleeps, WNOHANG returns 0) instead of ECHILD: its children may not
 * have announced themselves.  A child it forked where it runs waits as
 * any local process.
 *
 * Not kept: stops and continues of C (no WUNTRACED/WCONTINUED reports),
 * its rusage and the times in SIGCHLD's siginfo (0).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <linux/sysfs.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "clms.h"
#include "ics.h"
#include "migration_gen.h"
#include "mig_ics.h"
#include "mig_internal.h"
#include "vproc.h"

#define MIG_KIN_MAX	4096		/* records on a parent's node */
#define MIG_KIN_RETRY	(HZ / 2)
#define MIG_KIN_TRIES	20		/* 10 s: vproc's table settles first */

/* On the parent's node: a child the parent's home took with it. */
struct mig_kin {
	struct list_head link;
	pid_t ppid, pid, pgid;
	unsigned int node;		/* runs there; 0 once it ended */
	uid_t uid;
	int status;			/* its wait status, once it ended */
};

static LIST_HEAD(mig_kins);
static unsigned int mig_nr_kins;
static DEFINE_SPINLOCK(mig_kin_lock);

static void mig_kin_announce_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(mig_kin_announce, mig_kin_announce_fn);
static unsigned int mig_kin_tries;	/* under mig_kin_lock */
/*
 * Until then a wait finding no record answers "none ready" rather than
 * ECHILD: the children of a node that went down announce themselves
 * within the announce's tries.
 */
static unsigned long mig_kin_grace_until = INITIAL_JIFFIES;	/* none yet */

static struct mig_kin *mig_kin_find(pid_t ppid, pid_t pid)
{
	struct mig_kin *k;

	list_for_each_entry(k, &mig_kins, link)
		if (k->ppid == ppid && k->pid == pid)
			return k;
	return NULL;
}

/* An ended child's record goes: reaped at once, as a local one would be. */
static void mig_kin_forget(pid_t ppid, pid_t pid)
{
	struct mig_kin *k;

	spin_lock(&mig_kin_lock);
	k = mig_kin_find(ppid, pid);
	if (k && !k->node) {
		list_del(&k->link);
		mig_nr_kins--;
	} else {
		k = NULL;
	}
	spin_unlock(&mig_kin_lock);
	kfree(k);
}

/* A wait status a process can end with: exit(code) or a signal (+ core). */
static bool mig_kin_status_ok(int status)
{
	if (status & ~0xffff)
		return false;
	if (!(status & 0x7f))
		return !(status & 0xff);		/* exited: code << 8 */
	return !(status & 0xff00) && (status & 0x7f) <= _NSIG &&
	       (status & 0x7f) != 0x7f;		/* signaled, maybe core */
}

/* waitid()'s cause and status for wait status @st. */
static void mig_kin_cause(int st, int *cause, int *status)
{
	if (!(st & 0x7f)) {
		*cause = CLD_EXITED;
		*status = (st >> 8) & 0xff;
	} else {
		*cause = st & 0x80 ? CLD_DUMPED : CLD_KILLED;
		*status = st & 0x7f;
	}
}

/*
 * @ppid, the thread-group leader of a migrant running here whose home is
 * gone, with a reference; else NULL.
 */
static struct task_struct *mig_kin_parent(pid_t ppid)
{
	struct task_struct *task;

	if (ppid <= 1 || mig_migrant_home(ppid) || mig_migrant_moved_on(ppid))
		return NULL;
	rcu_read_lock();
	task = pid_task(find_vpid(ppid), PIDTYPE_PID);
	if (task && (task != task->group_leader ||
		     !test_bit(SSI_PFA_MIGRANT, &task->atomic_flags)))
		task = NULL;
	if (task)
		get_task_struct(task);
	rcu_read_unlock();
	return task;
}

/*
 * Child @k->pid of @parent ended: the SIGCHLD a local child's end sends
 * (do_notify_parent()).  True when the parent keeps no zombie (SIGCHLD
 * ignored, or SA_NOCLDWAIT).
 */
static bool mig_kin_notify(struct task_struct *parent, pid_t pid, uid_t uid,
			   int st)
{
	struct sighand_struct *sighand;
	struct kernel_siginfo info;
	bool ignored, autoreap;

	/* word reads: a sigaction() meanwhile races as it would locally */
	rcu_read_lock();
	sighand = rcu_dereference(parent->sighand);
	if (!sighand) {
		rcu_read_unlock();
		return true;		/* it is ending itself */
	}
	ignored = READ_ONCE(sighand->action[SIGCHLD - 1].sa.sa_handler) ==
		  SIG_IGN;
	autoreap = ignored ||
		   READ_ONCE(sighand->action[SIGCHLD - 1].sa.sa_flags) &
		   SA_NOCLDWAIT;
	rcu_read_unlock();
	if (!ignored) {
		clear_siginfo(&info);
		info.si_signo = SIGCHLD;
		mig_kin_cause(st, &info.si_code, &info.si_status);
		info.si_pid = pid;
		info.si_uid = uid;
		send_sig_info(SIGCHLD, &info, parent);
	}
	/* the key is a task, as do_wait()'s wake-up callback expects */
	__wake_up(&parent->signal->wait_chldexit, TASK_INTERRUPTIBLE, 1,
		  parent);
	return autoreap;
}

/* The record of a child of @parent that @req speaks of, made or updated. */
static int mig_kin_record(struct task_struct *parent,
			  const struct mig_family_req *req)
{
	struct mig_kin *k, *fresh = kzalloc(sizeof(*fresh), GFP_KERNEL);
	bool ended = req->what != MIG_FAMILY_RUNS;
	bool notify = req->what == MIG_FAMILY_EXITED;
	uid_t uid = req->uid;
	int ret = 0;

	if (!fresh)
		return -ENOMEM;
	spin_lock(&mig_kin_lock);
	k = mig_kin_find(req->ppid, req->pid);
	if (k && !k->node) {
		notify = false;		/* it ended already: said once */
		goto out;
	}
	if (!k) {
		if (mig_nr_kins >= MIG_KIN_MAX) {
			ret = -ENOSPC;
			goto out;
		}
		k = fresh;
		fresh = NULL;
		k->ppid = req->ppid;
		k->pid = req->pid;
		k->pgid = req->pgid;
		k->uid = req->uid;
		list_add_tail(&k->link, &mig_kins);
		mig_nr_kins++;
	}
	if (ended) {
		/* its user and group as last announced, if it was */
		uid = k->uid;
		k->node = 0;
		k->status = req->status;
	} else {
		k->pgid = req->pgid;
		k->uid = req->uid;
		k->node = req->node;
	}
out:
	spin_unlock(&mig_kin_lock);
	kfree(fresh);
	if (!ret && notify && mig_kin_notify(parent, req->pid, uid,
					     req->status))
		mig_kin_forget(req->ppid, req->pid);
	return ret;
}

int mig_srv_family(unsigned int from, const struct mig_family_req *req,
		   struct mig_family_rep *rep)
{
	struct task_struct *parent;
	int ret;

	if (req->pid <= 1 || req->ppid <= 1 || req->pid == req->ppid ||
	    !vproc_origin(req->pid) ||
	    vproc_origin(req->pid) != vproc_origin(req->ppid))
		return -EINVAL;
	switch (req->what) {
	case MIG_FAMILY_PARENT_GONE:
		return mig_migrant_orphan(req->pid, req->ppid) ? 0 : -ESRCH;
	case MIG_FAMILY_RUNS:
		if (req->node < 1 || req->node > SSI_MAX_NODES ||
		    (req->node != mig_self && !clms_node_is_up(req->node)))
			return -EINVAL;
		if (req->pgid < 0)
			return -EINVAL;
		break;
	case MIG_FAMILY_EXITED:
	case MIG_FAMILY_ZOMBIE:
		if (!mig_kin_status_ok(req->status))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	parent = mig_kin_parent(req->ppid);
	if (!parent)
		return -ESRCH;
	ret = mig_kin_record(parent, req);
	put_task_struct(parent);
	return ret;
}

/* Send @req to @node, this node included. */
static int mig_family_call(unsigned int node, struct mig_family_req *req)
{
	struct mig_family_rep rep;

	if (node == mig_self)
		return mig_srv_family(mig_self, req, &rep);
	return ics_mig_family(node, req, &rep, MIG_CALL_TIMEOUT);
}

/* Tell the node running @req->ppid (found by vproc); -ESRCH: none. */
static int mig_family_tell_parent(struct mig_family_req *req)
{
	unsigned int node;
	int ret = vproc_where(req->ppid, &node);

	return ret ?: mig_family_call(node, req);
}

/* --- the child's side ------------------------------------------------ */

/*
 * Tell the parent of every migrant here whose home is gone where it runs.
 * Parents not found yet are asked again; after MIG_KIN_TRIES, their
 * children are orphans.
 */
static void mig_kin_announce_fn(struct work_struct *work)
{
	struct mig_homeless *hl;
	unsigned int i, n, left = 0;
	bool last;

	hl = kcalloc(MIG_KIN_MAX, sizeof(*hl), GFP_KERNEL);
	if (!hl) {
		queue_delayed_work(mig_wq, &mig_kin_announce, MIG_KIN_RETRY);
		return;
	}
	spin_lock(&mig_kin_lock);
	last = ++mig_kin_tries >= MIG_KIN_TRIES;
	spin_unlock(&mig_kin_lock);
	n = mig_migrants_homeless(hl, MIG_KIN_MAX);
	for (i = 0; i < n; i++) {
		struct mig_family_req req = {
			.what = MIG_FAMILY_RUNS,
			.ppid = hl[i].ppid,
			.pid = hl[i].pid,
			.node = mig_self,
			.pgid = hl[i].pgid,
			.uid = hl[i].uid,
		};
		int ret = mig_family_tell_parent(&req);

		if (!ret)
			continue;
		if (last || (ret != -ESRCH && ret != -EHOSTDOWN &&
			     ret != -ENOTCONN && ret != -ETIMEDOUT &&
			     ret != -ENOMEM)) {
			pr_info("pid %d: its parent %d is gone (%d): an orphan\n",
				req.pid, req.ppid, ret);
			mig_migrant_orphan(req.pid, req.ppid);
		} else {
			left++;
		}
	}
	kfree(hl);
	if (left)
		queue_delayed_work(mig_wq, &mig_kin_announce, MIG_KIN_RETRY);
}

/* Announce the homeless migrants here again, from the first try. */
void mig_family_announce(void)
{
	spin_lock(&mig_kin_lock);
	mig_kin_tries = 0;
	spin_unlock(&mig_kin_lock);
	mod_delayed_work(mig_wq, &mig_kin_announce, 0);
}

/* Homeless migrant @pid, child of @ppid, ended here with wait status @st. */
void mig_family_child_exited(pid_t pid, pid_t ppid, int st)
{
	struct mig_family_req req = {
		.what = MIG_FAMILY_EXITED,
		.ppid = ppid,
		.pid = pid,
		.status = st,
	};
	int ret;

	if (!mig_kin_status_ok(st))
		return;
	ret = mig_family_tell_parent(&req);
	if (ret && ret != -ESRCH)
		pr_info("pid %d: its end not told to its parent %d: %d\n",
			pid, ppid, ret);
}

/* --- the parent's side ----------------------------------------------- */

/*
 * A wait of current (see struct ssi_wait) among its kin records: the
 * child's PID with @w filled, 0 while a matching child runs, else -ECHILD.
 */
long mig_family_wait(struct ssi_wait *w)
{
	pid_t ppid = task_tgid_nr(current), unused;
	struct mig_kin *k, *reaped = NULL;
	long ret = -ECHILD;
	/*
	 * Only a moved process (its own record) had children at its home; a
	 * child it forked here inherits SSI_PFA_MIGRANT but no record, and
	 * gets its ECHILD at once.
	 */
	bool moved = !mig_migrant_ppid(ppid, &unused);

	spin_lock(&mig_kin_lock);
	list_for_each_entry(k, &mig_kins, link) {
		if (k->ppid != ppid ||
		    (w->which == P_PID && k->pid != w->nr) ||
		    (w->which == P_PGID && k->pgid != w->nr))
			continue;
		if (k->node) {
			ret = 0;	/* it may still end */
			continue;
		}
		if (!(w->options & WEXITED))
			continue;
		w->stat = k->status;
		mig_kin_cause(k->status, &w->cause, &w->status);
		w->uid = k->uid;
		memset(&w->ru, 0, sizeof(w->ru));
		ret = k->pid;
		if (!(w->options & WNOWAIT)) {
			list_del(&k->link);
			mig_nr_kins--;
			reaped = k;
		}
		break;
	}
	if (ret == -ECHILD && moved &&
	    time_before(jiffies, mig_kin_grace_until))
		ret = 0;
	spin_unlock(&mig_kin_lock);
	kfree(reaped);
	return ret;
}

/* Take @ppid's records off the list, onto @out. */
static void mig_kin_take(pid_t ppid, struct list_head *out)
{
	struct mig_kin *k, *tmp;

	spin_lock(&mig_kin_lock);
	list_for_each_entry_safe(k, tmp, &mig_kins, link) {
		if (k->ppid == ppid) {
			list_move_tail(&k->link, out);
			mig_nr_kins--;
		}
	}
	spin_unlock(&mig_kin_lock);
}

/* Parent @ppid, running here, moved to @node: its records go with it. */
void mig_family_parent_moved(pid_t ppid, unsigned int node)
{
	struct mig_kin *k, *tmp;
	LIST_HEAD(taken);

	mig_kin_take(ppid, &taken);
	list_for_each_entry_safe(k, tmp, &taken, link) {
		struct mig_family_req req = {
			.what = k->node ? MIG_FAMILY_RUNS : MIG_FAMILY_ZOMBIE,
			.ppid = k->ppid,
			.pid = k->pid,
			.node = k->node,
			.status = k->status,
			.pgid = k->pgid,
			.uid = k->uid,
		};
		int ret = mig_family_call(node, &req);

		if (ret)
			pr_info("pid %d: its child %d not handed to node %u: %d\n",
				ppid, k->pid, node, ret);
		list_del(&k->link);
		kfree(k);
	}
}

/* Parent @ppid, running here, ended: its running children are orphans. */
void mig_family_parent_exited(pid_t ppid)
{
	struct mig_kin *k, *tmp;
	LIST_HEAD(taken);

	mig_kin_take(ppid, &taken);
	list_for_each_entry_safe(k, tmp, &taken, link) {
		struct mig_family_req req = {
			.what = MIG_FAMILY_PARENT_GONE,
			.ppid = k->ppid,
			.pid = k->pid,
		};

		if (k->node)
			mig_family_call(k->node, &req);
		list_del(&k->link);
		kfree(k);
	}
}

/*
 * A node is going down: from before any migrant here loses its home
 * (mig_in_nodedown()), a wait finding no record waits for the announces.
 */
void mig_family_grace(void)
{
	spin_lock(&mig_kin_lock);
	mig_kin_grace_until = jiffies + (MIG_KIN_TRIES + 2) * MIG_KIN_RETRY;
	spin_unlock(&mig_kin_lock);
}

/*
 * @node went down: the children it ran end as killed; this node's
 * homeless migrants tell their parents again (theirs may have been there).
 */
void mig_family_nodedown(unsigned int node)
{
	struct mig_kin *k;
	struct {
		pid_t ppid, pid;
		uid_t uid;
	} *dead;
	unsigned int i, n = 0;

	dead = kcalloc(MIG_KIN_MAX, sizeof(*dead), GFP_KERNEL);
	spin_lock(&mig_kin_lock);
	list_for_each_entry(k, &mig_kins, link) {
		if (k->node != node)
			continue;
		k->node = 0;
		k->status = SIGKILL;
		if (dead && n < MIG_KIN_MAX) {
			dead[n].ppid = k->ppid;
			dead[n].pid = k->pid;
			dead[n++].uid = k->uid;
		}
	}
	spin_unlock(&mig_kin_lock);
	for (i = 0; i < n; i++) {
		struct task_struct *parent = mig_kin_parent(dead[i].ppid);

		if (!parent)
			continue;
		if (mig_kin_notify(parent, dead[i].pid, dead[i].uid, SIGKILL))
			mig_kin_forget(dead[i].ppid, dead[i].pid);
		put_task_struct(parent);
	}
	kfree(dead);
	mig_family_announce();
}

/*
 * /sys/kernel/ssi/migration/family: "PPID PID NODE STATUS" per record
 * kept here (NODE 0: it ended with wait status STATUS), as many as a
 * page holds.
 */
int mig_family_show(char *buf)
{
	struct mig_kin *k;
	int len = 0;

	spin_lock(&mig_kin_lock);
	list_for_each_entry(k, &mig_kins, link) {
		if (len > PAGE_SIZE - 48)
			break;
		len += sysfs_emit_at(buf, len, "%d %d %u %d\n", k->ppid,
				     k->pid, k->node, k->node ? 0 : k->status);
	}
	spin_unlock(&mig_kin_lock);
	return len;
}

void mig_family_exit(void)
{
	struct mig_kin *k, *tmp;

	cancel_delayed_work_sync(&mig_kin_announce);
	spin_lock(&mig_kin_lock);
	list_for_each_entry_safe(k, tmp, &mig_kins, link) {
		list_del(&k->link);
		kfree(k);
	}
	mig_nr_kins = 0;
	spin_unlock(&mig_kin_lock);
}
