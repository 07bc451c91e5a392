// SPDX-License-Identifier: GPL-2.0-only
/*
 * rfile, holder side: POSIX lock requests of proxies that wait (F_SETLKW).
 *
 * The holder never sleeps for a proxy's lock: a request that conflicts
 * is EAGAIN and the client asks again.  But a request that may wait
 * (RFILE_LK_SETW) is also left here as a blocked request of the kernel's
 * own lock code, as a local F_SETLKW's is while it sleeps: posix_lock_file()
 * with FL_SLEEP and lock-manager ops whose lm_notify replaces the sleep.
 * So the kernel's deadlock detection sees remote waiters as it sees local
 * ones: a request (remote or local) whose owner waits, through a chain of
 * blocked requests, for itself fails with EDEADLK, exactly where the local
 * file system's would.  When the lock it waits for goes, lm_notify sends
 * the waiting node a `ready` for the export, so the client asks again at
 * once instead of at its next backoff.
 *
 * A waiter goes when its request is granted or fails (EDEADLK...), when
 * the client gives up (RFILE_LK_CANCEL, a signal), with its owner's locks
 * (RFILE_LK_UNOWN: the proxy's close), when its node goes down, and when
 * the export is released.  A waiter's request is the key of the kernel's
 * blocked list: it is unblocked (locks_delete_block()) before it is asked
 * again or freed.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "ics.h"
#include "rfile_gen.h"
#include "rfile_ics.h"
#include "rfile_internal.h"

struct rfile_lkwait {
	struct list_head link;		/* rfile_lkwaits */
	struct file_lock fl;		/* the request, blocked in the kernel */
	struct file *file;		/* the export's held file */
	u64 id;				/* the export, for `ready` */
	unsigned int node;		/* the waiting node */
	struct work_struct notify;
};

static LIST_HEAD(rfile_lkwaits);
static DEFINE_MUTEX(rfile_lkwait_lock);

static void rfile_lkwait_notify_work(struct work_struct *work)
{
	struct rfile_lkwait *w = container_of(work, struct rfile_lkwait,
					      notify);
	struct rfile_ready_req msg = { .id = w->id };

	if (!ics_rfile_ready(w->node, &msg))
		rfile_count(RFILE_CNT_READY_SENT);
}

/* The lock it waited for went: under the kernel's lock spin locks. */
static void rfile_lkwait_notify(struct file_lock *fl)
{
	struct rfile_lkwait *w = container_of(fl, struct rfile_lkwait, fl);

	queue_work(rfile_workqueue(), &w->notify);
}

static const struct lock_manager_operations rfile_lkwait_lmops = {
	.lm_notify = rfile_lkwait_notify,
};

/* @w off the list: unblocked, its notice cancelled, freed. */
static void rfile_lkwait_free(struct rfile_lkwait *w)
{
	locks_delete_block(&w->fl);
	cancel_work_sync(&w->notify);
	locks_release_private(&w->fl);
	kfree(w);
}

static struct rfile_lkwait *rfile_lkwait_find(struct file *file,
					      const struct file_lock *fl)
{
	struct rfile_lkwait *w;

	list_for_each_entry(w, &rfile_lkwaits, link)
		if (w->file == file && w->fl.fl_owner == fl->fl_owner &&
		    w->fl.fl_start == fl->fl_start &&
		    w->fl.fl_end == fl->fl_end && w->fl.fl_type == fl->fl_type)
			return w;
	return NULL;
}

/*
 * The POSIX lock @fl (owner, range, type, pid) on @file, export @id, for
 * @node, which waits for it: 0 (taken), -EAGAIN (a conflict: left blocked
 * here, and @node told when to ask again), -EDEADLK or another errno.
 */
int rfile_lkwait_set(struct file *file, u64 id, unsigned int node,
		     const struct file_lock *fl)
{
	struct rfile_lkwait *w;
	int ret;

	mutex_lock(&rfile_lkwait_lock);
	w = rfile_lkwait_find(file, fl);
	if (w) {
		locks_delete_block(&w->fl);
	} else {
		w = kzalloc(sizeof(*w), GFP_KERNEL);
		if (!w) {
			mutex_unlock(&rfile_lkwait_lock);
			return -ENOMEM;
		}
		locks_init_lock(&w->fl);
		INIT_WORK(&w->notify, rfile_lkwait_notify_work);
		w->file = file;
		w->id = id;
		w->node = node;
		w->fl.fl_flags = FL_POSIX | FL_SLEEP;
		w->fl.fl_lmops = &rfile_lkwait_lmops;
		w->fl.fl_file = file;
		w->fl.fl_owner = fl->fl_owner;
		w->fl.fl_start = fl->fl_start;
		w->fl.fl_end = fl->fl_end;
		w->fl.fl_type = fl->fl_type;
		list_add(&w->link, &rfile_lkwaits);
	}
	w->fl.fl_pid = fl->fl_pid;
	ret = vfs_lock_file(file, F_SETLKW, &w->fl, NULL);
	if (ret == FILE_LOCK_DEFERRED) {
		mutex_unlock(&rfile_lkwait_lock);
		return -EAGAIN;
	}
	list_del(&w->link);
	mutex_unlock(&rfile_lkwait_lock);
	rfile_lkwait_free(w);
	return ret;
}

/*
 * Waiters that go: of @file (NULL: any), @node (0: any), @owner (NULL:
 * any), and, with @fl, only the one waiting for exactly that request.
 */
void rfile_lkwait_drop(struct file *file, unsigned int node,
		       fl_owner_t owner, const struct file_lock *fl)
{
	struct rfile_lkwait *w, *tmp;
	LIST_HEAD(gone);

	mutex_lock(&rfile_lkwait_lock);
	list_for_each_entry_safe(w, tmp, &rfile_lkwaits, link) {
		if ((file && w->file != file) || (node && w->node != node) ||
		    (owner && w->fl.fl_owner != owner))
			continue;
		if (fl && (w->fl.fl_start != fl->fl_start ||
			   w->fl.fl_end != fl->fl_end ||
			   w->fl.fl_type != fl->fl_type))
			continue;
		list_move(&w->link, &gone);
	}
	mutex_unlock(&rfile_lkwait_lock);
	list_for_each_entry_safe(w, tmp, &gone, link) {
		list_del(&w->link);
		rfile_lkwait_free(w);
	}
}
