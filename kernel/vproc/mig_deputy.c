// SPDX-License-Identifier: GPL-2.0-only
/*
 * The deputy: the task a process leaves on its home node when it moves.
 * It keeps the process's place in the home node's process tree (its PID,
 * parent, children, process group and session), forwards every signal
 * sent to it to wherever the process runs, ends with the process's own
 * exit status (so its parent's wait() sees exactly that), and is the task
 * the process is restored into when it comes home.  The process's
 * children stay the deputy's: the process's wait()s elsewhere are run here
 * by the deputy, as itself (mig.wait), and so are its setpgid(0, pgid)
 * and setsid() (mig.setgroup): the deputy holds its place in the groups.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <linux/syscalls.h>
#include <linux/tty.h>
#include <linux/workqueue.h>

#include "ics.h"
#include "migration_gen.h"
#include "mig_ics.h"
#include "mig_internal.h"
#include "vproc.h"

static LIST_HEAD(mig_deputies);
static DEFINE_SPINLOCK(mig_dep_lock);

/* Not SIG_DFL or SIG_IGN: the signal is queued, never acted on here. */
#define MIG_DEPUTY_HANDLER	((__sighandler_t)2)

/*
 * How long mig.wait or mig.setgroup waits for the deputy to run it (it may
 * be forwarding a signal to a process that is moving): then the process
 * asks again.
 */
#define MIG_JOB_QUEUED		(2 * HZ)

enum mig_job_kind {
	MIG_JOB_WAIT,
	MIG_JOB_SETPGID,
	MIG_JOB_SETSID,
};

/* A call of the process, for the deputy to make as itself. */
struct mig_job {
	struct list_head link;		/* in mig_deputy.jobs while queued */
	enum mig_job_kind kind;
	struct ssi_wait *w;		/* MIG_JOB_WAIT */
	pid_t pgid, sid;		/* MIG_JOB_SET*: asked; then the deputy's */
	long ret;
	struct completion done;
};

void mig_deputy_put(struct mig_deputy *dep)
{
	if (refcount_dec_and_test(&dep->ref)) {
		if (dep->homecoming)
			mig_in_put(dep->homecoming);
		put_task_struct(dep->task);
		kfree(dep);
	}
}

struct mig_deputy *mig_deputy_find(pid_t pid)
{
	struct mig_deputy *dep;

	spin_lock(&mig_dep_lock);
	list_for_each_entry(dep, &mig_deputies, link) {
		if (dep->pid == pid) {
			refcount_inc(&dep->ref);
			spin_unlock(&mig_dep_lock);
			return dep;
		}
	}
	spin_unlock(&mig_dep_lock);
	return NULL;
}

/*
 * The deputy of @task, not yet known to anyone: made before the move
 * commits, since nothing may fail after that.
 */
struct mig_deputy *mig_deputy_alloc(struct task_struct *task)
{
	struct mig_deputy *dep = kzalloc(sizeof(*dep), GFP_KERNEL);

	if (!dep)
		return NULL;
	refcount_set(&dep->ref, 1);
	dep->pid = task_tgid_nr(task);
	dep->task = get_task_struct(task);
	init_waitqueue_head(&dep->wq);
	INIT_LIST_HEAD(&dep->jobs);
	return dep;
}

/* The process runs on @node now: @dep takes its place here. */
void mig_deputy_add(struct mig_deputy *dep, unsigned int node)
{
	dep->node = node;
	spin_lock(&mig_dep_lock);
	list_add(&dep->link, &mig_deputies);
	spin_unlock(&mig_dep_lock);
	/* a sub-deputy too: this node's calls about it go where it runs */
	vproc_set_location(dep->pid, node);
}

/*
 * The process's other threads keep their TIDs where it runs now, but
 * their tasks here end: hold their numbers until it ends or comes back,
 * so that this node gives none of them to another task meanwhile.
 */
static void mig_deputy_hold_tids(struct mig_deputy *dep)
{
	dep->nr_tids = mig_tids_hold(dep->pid, dep->tids, dep->nr_tids, NULL);
}

static void mig_deputy_release_tids(struct mig_deputy *dep)
{
	mig_tids_give_back(dep->tids, dep->nr_tids);
	dep->nr_tids = 0;
}

static void mig_deputy_unlist(struct mig_deputy *dep)
{
	struct mig_job *job, *tmp;
	LIST_HEAD(jobs);

	mig_deputy_release_tids(dep);	/* gone, or its threads end here */
	spin_lock(&mig_dep_lock);
	list_del_init(&dep->link);
	dep->closing = true;
	list_splice_init(&dep->jobs, &jobs);
	spin_unlock(&mig_dep_lock);
	/* the process is here again or gone: its children are no one's there */
	list_for_each_entry_safe(job, tmp, &jobs, link) {
		list_del_init(&job->link);
		job->ret = -ECHILD;
		complete(&job->done);
	}
	vproc_set_location(dep->pid, mig_self);
}

unsigned int mig_deputy_node(struct task_struct *task)
{
	struct mig_deputy *dep;
	unsigned int node = mig_self;

	spin_lock(&mig_dep_lock);
	list_for_each_entry(dep, &mig_deputies, link) {
		if (dep->task == task) {
			node = dep->node;
			break;
		}
	}
	spin_unlock(&mig_dep_lock);
	return node;
}

/* From the node running the process: it exited, or moved to @node. */
int mig_deputy_exited(pid_t pid, int status, unsigned int node,
		      unsigned int from)
{
	struct mig_deputy *dep = mig_deputy_find(pid);
	int ret = 0;

	if (!dep)
		return -ESRCH;
	spin_lock(&mig_dep_lock);
	if (dep->node != from) {
		ret = -EPERM;	/* only where it runs may say so */
	} else if (status == -1) {
		if (node < 1 || node > SSI_MAX_NODES)
			ret = -EINVAL;
		else
			dep->node = node;
	} else {
		dep->exited = true;
		dep->exit_status = status & 0xffff;
	}
	spin_unlock(&mig_dep_lock);
	if (!ret && status == -1)
		vproc_set_location(pid, node);
	wake_up(&dep->wq);
	mig_deputy_put(dep);
	return ret;
}

/*
 * @from, where the process runs, says it stopped or went on (@status).
 * A stop is the deputy's to make, in its own context; a continue wakes a
 * stopped deputy with a SIGCONT it will not forward back.
 */
int mig_deputy_jobctl(pid_t pid, int status, unsigned int from)
{
	struct mig_deputy *dep = mig_deputy_find(pid);
	struct task_struct *task = NULL;
	int ret = 0;

	if (!dep)
		return -ESRCH;
	spin_lock(&mig_dep_lock);
	if (dep->node != from) {
		ret = -EPERM;	/* only where it runs may say so */
	} else if (status != 0xffff) {
		dep->stop_signr = (status >> 8) & 0xff;
	} else {
		dep->stop_signr = 0;
		if (dep->task && (dep->task->signal->flags & SIGNAL_STOP_STOPPED)) {
			task = get_task_struct(dep->task);
			dep->remote_conts++;
		}
	}
	spin_unlock(&mig_dep_lock);
	if (task) {
		send_sig_info(SIGCONT, SEND_SIG_PRIV, task);
		put_task_struct(task);
	}
	wake_up(&dep->wq);
	mig_deputy_put(dep);
	return ret;
}

int mig_deputy_homecoming(struct mig_in *in)
{
	struct mig_deputy *dep = mig_deputy_find(in->pid);
	int ret = 0;

	if (!dep)
		return -ESRCH;
	spin_lock(&mig_dep_lock);
	if (dep->node != in->source || dep->homecoming) {
		ret = -EBUSY;
	} else {
		refcount_inc(&in->ref);
		dep->homecoming = in;
	}
	spin_unlock(&mig_dep_lock);
	wake_up(&dep->wq);
	mig_deputy_put(dep);
	return ret;
}

/* Its node died: the process is gone; the deputy ends as if killed. */
void mig_deputy_nodedown(unsigned int node)
{
	struct mig_deputy *dep;

	spin_lock(&mig_dep_lock);
	list_for_each_entry(dep, &mig_deputies, link) {
		if (dep->node == node && !dep->exited) {
			dep->exited = true;
			dep->exit_status = SIGKILL;
			wake_up(&dep->wq);
			/* stopped with its process: only SIGKILL wakes it */
			if (dep->task &&
			    (dep->task->signal->flags & SIGNAL_STOP_STOPPED))
				send_sig_info(SIGKILL, SEND_SIG_PRIV, dep->task);
		}
	}
	spin_unlock(&mig_dep_lock);
}

/*
 * Queue @job for deputy @pid, whose process runs on @from, and wait for
 * its result.  -EAGAIN (the process asks again): a deputy too busy to take
 * it in time, or not in place yet: the process runs on @from as soon as
 * the target's done is answered, before its source here has become its
 * deputy (the move is still listed) or, for a process moving on, before
 * the deputy has heard where it went.  Only the node it runs on is ever
 * served.  No deputy: -ECHILD.
 */
static long mig_deputy_job(pid_t pid, unsigned int from, struct mig_job *job)
{
	struct mig_deputy *dep = mig_deputy_find(pid);
	long ret = 0;

	if (!dep)
		return mig_out_frozen(pid) ? -EAGAIN : -ECHILD;
	init_completion(&job->done);
	spin_lock(&mig_dep_lock);
	if (dep->node != from)
		ret = -EAGAIN;
	else if (dep->closing)
		ret = -ECHILD;
	else
		list_add_tail(&job->link, &dep->jobs);
	spin_unlock(&mig_dep_lock);
	if (ret) {
		mig_deputy_put(dep);
		return ret;
	}
	wake_up(&dep->wq);
	if (!wait_for_completion_timeout(&job->done, MIG_JOB_QUEUED)) {
		spin_lock(&mig_dep_lock);
		if (!list_empty(&job->link)) {
			list_del_init(&job->link);
			ret = -EAGAIN;
		}
		spin_unlock(&mig_dep_lock);
		/* taken: the deputy runs it without blocking; wait for it */
		if (!ret)
			wait_for_completion(&job->done);
	}
	if (!ret)
		ret = job->ret;
	mig_deputy_put(dep);
	return ret;
}

/*
 * mig.wait from @from: run @w as deputy @pid, whose process runs there.
 * Nothing ready comes back as 0, a busy deputy as -EAGAIN, no deputy as
 * -ECHILD.
 */
long mig_deputy_wait(pid_t pid, unsigned int from, struct ssi_wait *w)
{
	struct mig_job job = { .kind = MIG_JOB_WAIT, .w = w };

	return mig_deputy_job(pid, from, &job);
}

/*
 * mig.setgroup from @from: deputy @pid makes its process's setpgid(0,
 * @pgid) (@session: setsid()) as itself; the syscall's result, and in
 * @out_pgid and @out_sid the deputy's group and session after it.
 */
long mig_deputy_setgroup(pid_t pid, unsigned int from, pid_t pgid,
			 bool session, pid_t *out_pgid, pid_t *out_sid)
{
	struct mig_job job = {
		.kind = session ? MIG_JOB_SETSID : MIG_JOB_SETPGID,
		.pgid = pgid,
	};
	long ret = mig_deputy_job(pid, from, &job);

	*out_pgid = job.pgid;
	*out_sid = job.sid;
	return ret;
}

/* Run the process's queued calls as the deputy, whose children they are. */
static void mig_deputy_run_jobs(struct mig_deputy *dep)
{
	struct mig_job *job;

	for (;;) {
		spin_lock(&mig_dep_lock);
		job = list_first_entry_or_null(&dep->jobs, struct mig_job,
					       link);
		if (job)
			list_del_init(&job->link);
		spin_unlock(&mig_dep_lock);
		if (!job)
			return;
		switch (job->kind) {
		case MIG_JOB_WAIT:
			job->w->options |= WNOHANG;
			job->ret = ssi_wait_children(job->w);
			break;
		case MIG_JOB_SETPGID:
			job->ret = ksys_setpgid(0, job->pgid);
			break;
		case MIG_JOB_SETSID:
			job->ret = ksys_setsid();
			break;
		}
		if (job->kind != MIG_JOB_WAIT) {
			job->pgid = task_pgrp_vnr(current);
			job->sid = task_session_vnr(current);
		}
		complete(&job->done);
	}
}

static void mig_deputy_forward(struct mig_deputy *dep,
			       const struct kernel_siginfo *info)
{
	struct mig_signal_req req = {
		.pid = dep->pid,
		.signo = info->si_signo,
		.code = info->si_code,
	};
	struct mig_signal_rep rep;
	unsigned long until = jiffies + MIG_RESTORE_TIMEOUT;
	unsigned int node;
	int ret;

	if (mig_siginfo_is_child(info->si_signo, info->si_code)) {
		/* a child of the deputy (the process's, left here) */
		req.sender_pid = info->si_pid;
		req.sender_uid = info->si_uid;
		req.status = info->si_status;
		req.utime = info->si_utime;
		req.stime = info->si_stime;
	} else if (mig_siginfo_has_value(info->si_code)) {
		req.sender_pid = info->si_pid;
		req.sender_uid = info->si_uid;
		req.value = (uintptr_t)info->si_ptr;
	} else if (info->si_code == SI_USER || info->si_code == SI_TKILL) {
		req.sender_pid = info->si_pid;
		req.sender_uid = info->si_uid;
	} else if (info->si_code > 0) {
		req.code = SI_KERNEL;	/* kernel-made; its fields stay here */
	}
	if (info->si_signo == SIGTSTP || info->si_signo == SIGTTIN ||
	    info->si_signo == SIGTTOU)
		req.orphaned = is_current_pgrp_orphaned();
	for (;;) {
		spin_lock(&mig_dep_lock);
		node = dep->node;
		spin_unlock(&mig_dep_lock);
		ret = ics_mig_signal(node, &req, &rep, MIG_CALL_TIMEOUT);
		/*
		 * EINPROGRESS: moving from @node, where it lands comes with
		 * mig.exited; ENOTCONN: ICS backs off a failed connect for a
		 * moment.  Either way the signal must not be lost.
		 */
		if ((ret != -EINPROGRESS && ret != -ENOTCONN) ||
		    time_after(jiffies, until))
			break;
		msleep(20);
	}
	if (ret)
		pr_info("pid %d: signal %d not forwarded to node %u: %d\n",
			dep->pid, info->si_signo, node, ret);
}

struct mig_forward_work {
	struct work_struct work;
	struct mig_deputy *dep;
	struct kernel_siginfo info;
	struct completion done;
};

static void mig_forward_fn(struct work_struct *work)
{
	struct mig_forward_work *f = container_of(work, struct mig_forward_work,
						  work);

	mig_deputy_forward(f->dep, &f->info);
	complete(&f->done);
}

/*
 * A killed deputy forwards the SIGKILL from a kworker: the fatal signal
 * pending on the deputy cuts every socket wait short, so a deputy whose
 * node had no connection yet to the node running the process could not
 * send it (connect got -EINTR until the forward gave up, 120 s later).
 */
static void mig_deputy_forward_kill(struct mig_deputy *dep)
{
	struct mig_forward_work f = {
		.dep = dep,
		.info = { .si_signo = SIGKILL, .si_code = SI_KERNEL },
	};

	INIT_WORK_ONSTACK(&f.work, mig_forward_fn);
	init_completion(&f.done);
	queue_work(mig_wq, &f.work);
	/* bounded by the forward's own limit; wake now and then meanwhile */
	while (!wait_for_completion_timeout(&f.done, 10 * HZ))
		;
	flush_work(&f.work);
	destroy_work_on_stack(&f.work);
}

/* Queue every signal; act on none (they are the process's, not ours). */
static void mig_deputy_catch_all(void)
{
	struct sighand_struct *sh = mig_sighand();
	sigset_t none;
	int i;

	spin_lock_irq(&sh->siglock);
	for (i = 1; i <= _NSIG; i++) {
		if (i == SIGKILL || i == SIGSTOP)
			continue;
		sh->action[i - 1].sa.sa_handler = MIG_DEPUTY_HANDLER;
		sh->action[i - 1].sa.sa_flags = 0;
	}
	spin_unlock_irq(&sh->siglock);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Was a SIGCONT one that mig_deputy_jobctl() sent?  Counts it off. */
static bool mig_deputy_own_cont(struct mig_deputy *dep)
{
	bool own;

	spin_lock(&mig_dep_lock);
	own = dep->remote_conts > 0;
	if (own)
		dep->remote_conts--;
	spin_unlock(&mig_dep_lock);
	return own;
}

static void mig_deputy_drain_signals(struct mig_deputy *dep)
{
	struct kernel_siginfo info;
	enum pid_type type;
	int sig;

	for (;;) {
		spin_lock_irq(&mig_sighand()->siglock);
		sig = dequeue_signal(current, &current->blocked, &info, &type);
		spin_unlock_irq(&mig_sighand()->siglock);
		if (sig <= 0)
			break;
		if (sig == SIGCONT && info.si_code == SI_KERNEL &&
		    mig_deputy_own_cont(dep))
			continue;	/* it went on there: we followed */
		mig_deputy_forward(dep, &info);
	}
	if (test_thread_flag(TIF_NOTIFY_SIGNAL))
		clear_notify_signal();
}

/*
 * Run as the deputy until the process exits (the task exits with its
 * status: never returns) or comes home (returns 0: the task_work ends and
 * the task returns to user mode as the process).
 */
int mig_deputy_run(struct mig_deputy *dep)
{
	struct mig_in *in;
	bool exec_failed;
	int status;

	mig_deputy_hold_tids(dep);
	mig_deputy_catch_all();
	for (;;) {
		int stop;

		wait_event_interruptible(dep->wq, dep->exited ||
					 dep->homecoming ||
					 READ_ONCE(dep->stop_signr) ||
					 !list_empty_careful(&dep->jobs) ||
					 signal_pending(current));
		if (fatal_signal_pending(current)) {
			mig_deputy_forward_kill(dep);
			status = SIGKILL;
			break;
		}
		if (signal_pending(current))
			mig_deputy_drain_signals(dep);
		mig_deputy_run_jobs(dep);

		spin_lock(&mig_dep_lock);
		stop = dep->stop_signr;
		dep->stop_signr = 0;
		spin_unlock(&mig_dep_lock);
		if (stop)
			ssi_group_stop(stop);	/* until continued or killed */

		spin_lock(&mig_dep_lock);
		in = dep->homecoming;
		dep->homecoming = NULL;
		spin_unlock(&mig_dep_lock);
		if (in) {
			unsigned int nr_held = dep->nr_tids;
			int ret;

			/* its threads take their numbers back (tids[] stays) */
			mig_deputy_release_tids(dep);
			ret = mig_restore_deputy(in);
			if (ret) {
				dep->nr_tids = nr_held;
				mig_deputy_hold_tids(dep);
			}
			/* rexec: home now, it runs the program or ends (127) */
			exec_failed = !ret && in->exec_len && mig_exec_home(in);
			mig_in_put(in);
			if (!ret && exec_failed) {
				status = 127 << 8;	/* as the helper's */
				break;
			}
			if (!ret) {
				mig_deputy_unlist(dep);
				mig_deputy_put(dep);
				return 0;
			}
		}
		if (dep->exited) {
			status = dep->exit_status;
			break;
		}
	}
	mig_deputy_unlist(dep);
	mig_deputy_put(dep);
	ssi_module_put_and_exit(THIS_MODULE, status);
}
