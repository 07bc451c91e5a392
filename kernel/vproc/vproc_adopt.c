// SPDX-License-Identifier: GPL-2.0-only
/*
 * vproc: processes that outlive their origin.
 *
 * A PID's origin knows where its process runs.  When the origin goes
 * down, a process of its range running on another node (it moved there)
 * lives on, but no node could route a call about it any more: kill and
 * /proc reached it only on the node running it.  So every node keeps a
 * table of such processes, pid -> node, filled by the nodes that run
 * them (ICS call vproc.adopt):
 *
 *  - At the origin's nodedown, each node lists the processes of its range
 *    it runs (not the deputies it keeps) as its own entries and tells
 *    every UP node.
 *  - A process with an entry, or whose origin is down, that arrives by
 *    migration (vproc_arrived(), from the migration module once it runs
 *    here) becomes an own entry of its new node, which tells every UP
 *    node; the entry naming the old node is replaced.
 *  - A node that comes up is told every own entry by each node: a late
 *    joiner routes to them, and a rebooted origin answers for them from
 *    then on and holds their numbers (ssi_pid_hold()), so that it never
 *    gives one of them to a new task.  A number it gave out before it
 *    was told stays with both (logged).
 *  - Every VPROC_ADOPT_SWEEP, a node withdraws (flag gone) the own entries
 *    whose process no longer runs here; a gone removes only an entry that
 *    names its sender, so it cannot undo a newer arrival elsewhere.
 *  - A node going down takes the entries naming it.
 *
 * A call about a PID whose origin is down is routed by this table alone:
 * a PID nobody announced costs no ICS call (issue 9, finding 8).  Sends
 * that fail (the peer has no vproc yet, or a transport error) are retried
 * every VPROC_ADOPT_RETRY while the peer is UP, VPROC_ADOPT_TRIES times.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/ssi.h>
#include <linux/workqueue.h>

#include "clms.h"
#include "ics.h"
#include "vproc_gen.h"
#include "vproc_ics.h"
#include "vproc_internal.h"

#define VPROC_ADOPT_MAX		16384
#define VPROC_ADOPT_SWEEP	(5 * HZ)
#define VPROC_ADOPT_RETRY	(2 * HZ)
#define VPROC_ADOPT_TRIES	30

struct vproc_orphan {
	struct hlist_node link;
	pid_t pid;
	unsigned int node;
	bool held;	/* of this node's range: its number is held here */
};

/* Writers hold vproc_orphan_mutex (holds sleep), then the spinlock. */
static DEFINE_HASHTABLE(vproc_orphans, 8);
static DEFINE_SPINLOCK(vproc_orphan_lock);
static DEFINE_MUTEX(vproc_orphan_mutex);
static unsigned int vproc_orphan_count;

static struct workqueue_struct *vproc_adopt_wq;
static struct work_struct vproc_scan_work;
static struct delayed_work vproc_tell_work;
static struct delayed_work vproc_sweep_work;
static atomic_t vproc_adopt_live = ATOMIC_INIT(0);

/* Origins whose nodedown is still to be scanned; nodes still to be told. */
static DEFINE_SPINLOCK(vproc_adopt_pending_lock);
static u64 vproc_scan_pending;
static u64 vproc_tell_pending;
static u8 vproc_tell_tries[SSI_MAX_NODES + 1];

static struct vproc_orphan *vproc_orphan_find(pid_t pid)
{
	struct vproc_orphan *o;

	lockdep_assert_held(&vproc_orphan_lock);
	hash_for_each_possible(vproc_orphans, o, link, pid)
		if (o->pid == pid)
			return o;
	return NULL;
}

/* The node the table says runs @pid. */
bool vproc_orphan_node(pid_t pid, unsigned int *node)
{
	struct vproc_orphan *o;
	bool found = false;

	spin_lock(&vproc_orphan_lock);
	o = vproc_orphan_find(pid);
	if (o) {
		*node = o->node;
		found = true;
	}
	spin_unlock(&vproc_orphan_lock);
	return found;
}

static void vproc_orphan_add(pid_t pid, unsigned int node)
{
	struct vproc_orphan *o, *new;
	int err;

	lockdep_assert_held(&vproc_orphan_mutex);
	spin_lock(&vproc_orphan_lock);
	o = vproc_orphan_find(pid);
	if (o)
		o->node = node;
	spin_unlock(&vproc_orphan_lock);
	if (o)
		return;
	if (vproc_orphan_count >= VPROC_ADOPT_MAX) {
		pr_warn_once("table of processes outliving their origin is full (%u)\n",
			     VPROC_ADOPT_MAX);
		return;
	}
	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return;
	new->pid = pid;
	new->node = node;
	if (vproc_origin(pid) == vproc_self()) {
		err = ssi_pid_hold(pid);
		new->held = !err;
		if (err == -EBUSY)
			pr_warn("pid %d runs on node %u, and this node gave the number to a task of its own since it restarted\n",
				pid, node);
	}
	spin_lock(&vproc_orphan_lock);
	hash_add(vproc_orphans, &new->link, pid);
	vproc_orphan_count++;
	spin_unlock(&vproc_orphan_lock);
}

static void vproc_orphan_free(struct vproc_orphan *o)
{
	if (o->held)
		ssi_pid_release(o->pid);
	kfree(o);
}

/* Remove @pid's entry if it names @node (0: whichever). */
static void vproc_orphan_remove(pid_t pid, unsigned int node)
{
	struct vproc_orphan *o;

	lockdep_assert_held(&vproc_orphan_mutex);
	spin_lock(&vproc_orphan_lock);
	o = vproc_orphan_find(pid);
	if (o && (!node || o->node == node)) {
		hash_del(&o->link);
		vproc_orphan_count--;
	} else {
		o = NULL;
	}
	spin_unlock(&vproc_orphan_lock);
	if (o)
		vproc_orphan_free(o);
}

static bool vproc_orphan_dropped(const struct vproc_orphan *o,
				 unsigned int node, bool by_origin)
{
	if (by_origin)
		return vproc_origin(o->pid) == node && o->node != vproc_self();
	return !node || o->node == node;
}

/*
 * Remove the entries naming @node (0: all), or with @by_origin those of
 * @node's range that name another node than this one.
 */
static void vproc_orphan_drop(unsigned int node, bool by_origin)
{
	struct vproc_orphan *o;
	struct hlist_node *tmp;
	HLIST_HEAD(gone);
	int bkt;

	mutex_lock(&vproc_orphan_mutex);
	spin_lock(&vproc_orphan_lock);
	hash_for_each_safe(vproc_orphans, bkt, tmp, o, link) {
		if (!vproc_orphan_dropped(o, node, by_origin))
			continue;
		hash_del(&o->link);
		vproc_orphan_count--;
		hlist_add_head(&o->link, &gone);
	}
	spin_unlock(&vproc_orphan_lock);
	hlist_for_each_entry_safe(o, tmp, &gone, link)
		vproc_orphan_free(o);
	mutex_unlock(&vproc_orphan_mutex);
}

/* @pid runs here: a thread-group leader, not a deputy kept for it. */
static bool vproc_runs_here(pid_t pid)
{
	struct task_struct *p;
	bool here;

	rcu_read_lock();
	p = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_TGID);
	here = p && !(p->flags & PF_KTHREAD) && !p->exit_state;
	rcu_read_unlock();
	return here && !vproc_emigrant(pid);
}

/* This node's own entries, into @pids (room for VPROC_ADOPT_MAX). */
static unsigned int vproc_own_entries(pid_t *pids)
{
	struct vproc_orphan *o;
	unsigned int nr = 0, self = vproc_self();
	int bkt;

	lockdep_assert_held(&vproc_orphan_mutex);
	spin_lock(&vproc_orphan_lock);
	hash_for_each(vproc_orphans, bkt, o, link)
		if (o->node == self && nr < VPROC_ADOPT_MAX)
			pids[nr++] = o->pid;
	spin_unlock(&vproc_orphan_lock);
	return nr;
}

/* Send @pids to @node in calls of at most the request's array size. */
static int vproc_adopt_send(unsigned int node, const pid_t *pids,
			    unsigned int nr, u32 flags)
{
	struct vproc_adopt_req *req;
	struct vproc_adopt_rep rep;
	unsigned int i, n;
	int ret = 0;

	req = kmalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	for (i = 0; i < nr && !ret; i += n) {
		n = min_t(unsigned int, nr - i, ARRAY_SIZE(req->pid));
		req->flags = flags;
		req->pid_count = n;
		memcpy(req->pid, pids + i, n * sizeof(*pids));
		ret = ics_vproc_adopt(node, req, &rep, VPROC_TIMEOUT);
	}
	kfree(req);
	return ret;
}

/* Own entries whose process runs here, into @pids (VPROC_ADOPT_MAX). */
static unsigned int vproc_own_live(pid_t *pids)
{
	unsigned int i, nr, live = 0;

	mutex_lock(&vproc_orphan_mutex);
	nr = vproc_own_entries(pids);
	mutex_unlock(&vproc_orphan_mutex);
	for (i = 0; i < nr; i++)
		if (vproc_runs_here(pids[i]))
			pids[live++] = pids[i];
	return live;
}

static void vproc_tell_fn(struct work_struct *work)
{
	unsigned int node, nr = 0;
	bool again = false;
	pid_t *pids;
	u64 nodes;
	int ret;

	spin_lock(&vproc_adopt_pending_lock);
	nodes = vproc_tell_pending;
	vproc_tell_pending = 0;
	spin_unlock(&vproc_adopt_pending_lock);
	pids = kvmalloc_array(VPROC_ADOPT_MAX, sizeof(*pids), GFP_KERNEL);
	if (pids)
		nr = vproc_own_live(pids);
	for (node = 1; node <= SSI_MAX_NODES; node++) {
		if (!(nodes & BIT_ULL(node)) || !clms_node_is_up(node))
			continue;
		ret = !pids ? -ENOMEM :
		      nr ? vproc_adopt_send(node, pids, nr, 0) : 0;
		if (!ret)
			continue;
		spin_lock(&vproc_adopt_pending_lock);
		if (++vproc_tell_tries[node] < VPROC_ADOPT_TRIES) {
			vproc_tell_pending |= BIT_ULL(node);
			again = true;
		} else {
			pr_info("could not tell node %u the processes outliving their origin: %d\n",
				node, ret);
		}
		spin_unlock(&vproc_adopt_pending_lock);
	}
	kvfree(pids);
	if (again && atomic_read(&vproc_adopt_live))
		queue_delayed_work(vproc_adopt_wq, &vproc_tell_work,
				   VPROC_ADOPT_RETRY);
}

static void vproc_tell(u64 nodes)
{
	unsigned int node;

	nodes &= ~BIT_ULL(vproc_self());
	if (!nodes || !atomic_read(&vproc_adopt_live))
		return;
	spin_lock(&vproc_adopt_pending_lock);
	vproc_tell_pending |= nodes;
	for (node = 1; node <= SSI_MAX_NODES; node++)
		if (nodes & BIT_ULL(node))
			vproc_tell_tries[node] = 0;
	spin_unlock(&vproc_adopt_pending_lock);
	mod_delayed_work(vproc_adopt_wq, &vproc_tell_work, 0);
}

/* Every UP node is told our entries, and the sweep watches them. */
static void vproc_tell_all(void)
{
	if (!atomic_read(&vproc_adopt_live))
		return;
	vproc_tell(clms_up_nodes());
	mod_delayed_work(vproc_adopt_wq, &vproc_sweep_work, VPROC_ADOPT_SWEEP);
}

/* Origins went down: what of their ranges runs here becomes ours. */
static void vproc_scan_fn(struct work_struct *work)
{
	struct task_struct *p;
	unsigned int i, nr = 0;
	u64 origins;
	pid_t *pids;

	spin_lock(&vproc_adopt_pending_lock);
	origins = vproc_scan_pending;
	vproc_scan_pending = 0;
	spin_unlock(&vproc_adopt_pending_lock);
	pids = kvmalloc_array(VPROC_ADOPT_MAX, sizeof(*pids), GFP_KERNEL);
	if (!pids)
		return;
	rcu_read_lock();
	for_each_process(p) {
		pid_t tgid = task_tgid_nr(p);

		if (vproc_is_cluster_pid(tgid) && nr < VPROC_ADOPT_MAX &&
		    (origins & BIT_ULL(vproc_origin(tgid))) &&
		    !(p->flags & PF_KTHREAD))
			pids[nr++] = tgid;
	}
	rcu_read_unlock();
	mutex_lock(&vproc_orphan_mutex);
	for (i = 0; i < nr; i++)
		if (vproc_runs_here(pids[i]))
			vproc_orphan_add(pids[i], vproc_self());
	mutex_unlock(&vproc_orphan_mutex);
	kvfree(pids);
	if (nr)
		vproc_tell_all();
}

/* Withdraw the own entries whose process ended here or left. */
static void vproc_sweep_fn(struct work_struct *work)
{
	unsigned int i, ended = 0, own;
	pid_t *pids;
	u64 up;

	pids = kvmalloc_array(VPROC_ADOPT_MAX, sizeof(*pids), GFP_KERNEL);
	if (!pids)
		goto again;
	mutex_lock(&vproc_orphan_mutex);
	own = vproc_own_entries(pids);
	for (i = 0; i < own; i++) {
		if (vproc_runs_here(pids[i]))
			continue;
		vproc_orphan_remove(pids[i], vproc_self());
		pids[ended++] = pids[i];
	}
	mutex_unlock(&vproc_orphan_mutex);
	up = clms_up_nodes() & ~BIT_ULL(vproc_self());
	for (i = 1; ended && i <= SSI_MAX_NODES; i++)
		if (up & BIT_ULL(i))
			vproc_adopt_send(i, pids, ended, VPROC_ADOPT_GONE);
	kvfree(pids);
	if (own == ended)
		return;		/* nothing of ours left to watch */
again:
	if (atomic_read(&vproc_adopt_live))
		queue_delayed_work(vproc_adopt_wq, &vproc_sweep_work,
				   VPROC_ADOPT_SWEEP);
}

int vproc_srv_adopt(unsigned int from, const struct vproc_adopt_req *req,
		    struct vproc_adopt_rep *rep)
{
	u32 i;

	if (req->flags & ~VPROC_ADOPT_GONE)
		return -EINVAL;
	/* a node's own range is routed by the node itself */
	for (i = 0; i < req->pid_count; i++)
		if (!vproc_is_cluster_pid(req->pid[i]) ||
		    vproc_origin(req->pid[i]) == from)
			return -EINVAL;
	mutex_lock(&vproc_orphan_mutex);
	for (i = 0; i < req->pid_count; i++) {
		if (req->flags & VPROC_ADOPT_GONE)
			vproc_orphan_remove(req->pid[i], from);
		else
			vproc_orphan_add(req->pid[i], from);
	}
	mutex_unlock(&vproc_orphan_mutex);
	return 0;
}

/*
 * @pid, a process of another origin, runs here since a migration: if it
 * outlived its origin (an entry names it, or the origin is down), this
 * node now answers for it.
 */
void vproc_arrived(pid_t pid)
{
	unsigned int origin = vproc_origin(pid), node;

	if (!vproc_is_cluster_pid(pid) || origin == vproc_self())
		return;
	if (clms_node_is_up(origin) && !vproc_orphan_node(pid, &node))
		return;
	mutex_lock(&vproc_orphan_mutex);
	vproc_orphan_add(pid, vproc_self());
	mutex_unlock(&vproc_orphan_mutex);
	vproc_tell_all();
}
EXPORT_SYMBOL_GPL(vproc_arrived);

void vproc_adopt_nodedown(unsigned int node)
{
	vproc_orphan_drop(node, false);
	if (!atomic_read(&vproc_adopt_live))
		return;
	spin_lock(&vproc_adopt_pending_lock);
	vproc_scan_pending |= BIT_ULL(node);
	spin_unlock(&vproc_adopt_pending_lock);
	queue_work(vproc_adopt_wq, &vproc_scan_work);
}

void vproc_adopt_nodeup(unsigned int node)
{
	if (node == vproc_self())
		return;
	/* the origin is back: it answers for its range again */
	vproc_orphan_drop(node, true);
	vproc_tell(BIT_ULL(node));
}

int vproc_adopt_init(void)
{
	/* ordered: a scan's entries are in before the tell it queues runs */
	vproc_adopt_wq = alloc_ordered_workqueue("vproc_adopt", 0);
	if (!vproc_adopt_wq)
		return -ENOMEM;
	INIT_WORK(&vproc_scan_work, vproc_scan_fn);
	INIT_DELAYED_WORK(&vproc_tell_work, vproc_tell_fn);
	INIT_DELAYED_WORK(&vproc_sweep_work, vproc_sweep_fn);
	atomic_set(&vproc_adopt_live, 1);
	return 0;
}

/*
 * After the CLMS notifier, the ICS service and the migration module (the
 * callers) are gone.  A running scan may still queue a tell and the sweep:
 * they are cancelled after it, and neither requeues once not live.
 */
void vproc_adopt_exit(void)
{
	atomic_set(&vproc_adopt_live, 0);
	cancel_work_sync(&vproc_scan_work);
	cancel_delayed_work_sync(&vproc_tell_work);
	cancel_delayed_work_sync(&vproc_sweep_work);
	destroy_workqueue(vproc_adopt_wq);
	vproc_orphan_drop(0, false);
}
