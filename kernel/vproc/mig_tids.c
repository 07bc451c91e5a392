// SPDX-License-Identifier: GPL-2.0-only
/*
 * migration: the TIDs this node keeps for processes that left it.
 *
 * A thread keeps its TID wherever its process goes.  A thread made here
 * has a number of this node's PID range; when its process moves on, the
 * thread's task here ends and the number would go back to this node's
 * allocator while the thread still runs under it elsewhere.  At home the
 * deputy holds its threads' numbers (mig_deputy.c); on any other node
 * this file does: it holds them (ssi_pid_hold(), patch 0008) once the
 * tasks are released, gives them back when the process comes here again
 * (its restore helper makes the threads with them) and, checking with
 * vproc every MIG_TIDS_CHECK, once the process no longer exists anywhere.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "vproc.h"
#include "mig_internal.h"

#define MIG_TIDS_CHECK		(10 * HZ)

struct mig_tid_hold {
	struct list_head link;
	struct work_struct work;	/* holds the numbers, once free */
	pid_t pid;			/* the process's */
	bool ready;			/* the work is done */
	bool gone;			/* back here or ended: give them back */
	unsigned int nr;
	pid_t tids[MIG_MAX_THREADS];
};

static LIST_HEAD(mig_holds);
static DEFINE_SPINLOCK(mig_holds_lock);
static bool mig_holds_stopping;
static void mig_tids_check(struct work_struct *work);
static DECLARE_DELAYED_WORK(mig_holds_check, mig_tids_check);

static void mig_tids_release(struct mig_tid_hold *h)
{
	mig_tids_give_back(h->tids, h->nr);
	kfree(h);
}

/* @tid is still a task of @pid's leaving this node, or a slot in flux */
static bool mig_tid_leaving(pid_t tid, pid_t pid)
{
	struct task_struct *t;
	bool leaving;

	rcu_read_lock();
	t = pid_task(find_pid_ns(tid, &init_pid_ns), PIDTYPE_PID);
	leaving = !t || task_tgid_nr(t) == pid;
	rcu_read_unlock();
	return leaving;
}

/*
 * Hold the numbers @tids of @pid's threads, each once its task here is
 * released (just after the thread wakes from its park), unless *@stop
 * turns true meanwhile.  The held ones are moved to the front of @tids;
 * returns how many.
 */
unsigned int mig_tids_hold(pid_t pid, pid_t *tids, unsigned int nr,
			   const bool *stop)
{
	unsigned long deadline = jiffies + 10 * HZ;
	unsigned int i, held = 0;

	for (i = 0; i < nr && !(stop && READ_ONCE(*stop)); i++) {
		int ret;

		while ((ret = ssi_pid_hold(tids[i])) == -EBUSY &&
		       mig_tid_leaving(tids[i], pid) &&
		       !(stop && READ_ONCE(*stop)) &&
		       time_before(jiffies, deadline))
			usleep_range(200, 1000);
		if (!ret)
			tids[held++] = tids[i];
		else if (!(stop && READ_ONCE(*stop)))
			pr_warn("pid %d: the number of its thread %d could not be held (%d): this node may give it out again\n",
				pid, tids[i], ret);
	}
	return held;
}

/* Give back @nr numbers mig_tids_hold() held; @tids stays as it was. */
void mig_tids_give_back(const pid_t *tids, unsigned int nr)
{
	while (nr)
		ssi_pid_release(tids[--nr]);
}

static void mig_tids_hold_fn(struct work_struct *work)
{
	struct mig_tid_hold *h = container_of(work, struct mig_tid_hold, work);
	unsigned int held;
	bool gone;

	held = mig_tids_hold(h->pid, h->tids, h->nr, &h->gone);
	h->nr = held;
	spin_lock(&mig_holds_lock);
	gone = h->gone || !held;
	if (gone)
		list_del_init(&h->link);
	else
		h->ready = true;
	spin_unlock(&mig_holds_lock);
	if (gone)
		mig_tids_release(h);
	else if (!READ_ONCE(mig_holds_stopping))
		schedule_delayed_work(&mig_holds_check, MIG_TIDS_CHECK);
}

/*
 * @pid is leaving this node, which is not its home, for good: its threads
 * @tids (of any range) end here now.  Keep those of this node's range.
 */
void mig_tids_left(pid_t pid, const pid_t *tids, unsigned int nr)
{
	struct mig_tid_hold *h;
	unsigned int i;

	h = kzalloc(sizeof(*h), GFP_KERNEL);
	if (!h)
		return;		/* the numbers stay free: as before holding */
	h->pid = pid;
	for (i = 0; i < nr && h->nr < ARRAY_SIZE(h->tids); i++)
		if (vproc_origin(tids[i]) == mig_self)
			h->tids[h->nr++] = tids[i];
	if (!h->nr) {
		kfree(h);
		return;
	}
	INIT_WORK(&h->work, mig_tids_hold_fn);
	spin_lock(&mig_holds_lock);
	list_add_tail(&h->link, &mig_holds);
	spin_unlock(&mig_holds_lock);
	queue_work(mig_wq, &h->work);
}

/* @pid is coming back here: its threads take their numbers again. */
void mig_tids_arriving(pid_t pid)
{
	struct mig_tid_hold *h, *tmp;
	LIST_HEAD(back);

	spin_lock(&mig_holds_lock);
	list_for_each_entry_safe(h, tmp, &mig_holds, link) {
		if (h->pid != pid)
			continue;
		if (h->ready)
			list_move(&h->link, &back);
		else
			WRITE_ONCE(h->gone, true);	/* its work gives them back */
	}
	spin_unlock(&mig_holds_lock);
	list_for_each_entry_safe(h, tmp, &back, link)
		mig_tids_release(h);
}

/* Give back the numbers of processes that exist nowhere any more. */
static void mig_tids_check(struct work_struct *work)
{
	struct mig_tid_hold *h, *tmp;
	unsigned int nr = 0, i, node;
	bool more = false;
	pid_t *pids;
	LIST_HEAD(ended);

	spin_lock(&mig_holds_lock);
	list_for_each_entry(h, &mig_holds, link)
		nr++;
	spin_unlock(&mig_holds_lock);
	if (!nr)
		return;
	pids = kcalloc(nr, sizeof(*pids), GFP_KERNEL);
	if (!pids)
		goto again;
	i = 0;
	spin_lock(&mig_holds_lock);
	list_for_each_entry(h, &mig_holds, link)
		if (h->ready && i < nr)
			pids[i++] = h->pid;
	spin_unlock(&mig_holds_lock);
	nr = i;
	/* outside the lock: asking may take an ICS call */
	for (i = 0; i < nr; i++)
		if (vproc_where(pids[i], &node) != -ESRCH)
			pids[i] = 0;
	spin_lock(&mig_holds_lock);
	list_for_each_entry_safe(h, tmp, &mig_holds, link) {
		for (i = 0; i < nr; i++) {
			if (h->ready && pids[i] && h->pid == pids[i]) {
				list_move(&h->link, &ended);
				break;
			}
		}
	}
	more = !list_empty(&mig_holds);
	spin_unlock(&mig_holds_lock);
	kfree(pids);
	list_for_each_entry_safe(h, tmp, &ended, link)
		mig_tids_release(h);
	if (!more)
		return;
again:
	if (!READ_ONCE(mig_holds_stopping))
		schedule_delayed_work(&mig_holds_check, MIG_TIDS_CHECK);
}

/* Unloading, after mig_wq is gone: nothing keeps the numbers any more. */
void mig_tids_exit(void)
{
	struct mig_tid_hold *h, *tmp;
	LIST_HEAD(all);

	WRITE_ONCE(mig_holds_stopping, true);
	cancel_delayed_work_sync(&mig_holds_check);
	spin_lock(&mig_holds_lock);
	list_splice_init(&mig_holds, &all);
	spin_unlock(&mig_holds_lock);
	list_for_each_entry_safe(h, tmp, &all, link)
		mig_tids_release(h);
}
