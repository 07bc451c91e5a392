// SPDX-License-Identifier: GPL-2.0-only
/*
 * migration: a running process moves to another node and keeps its PID.
 *
 * Protocol (ICS service mig, kernel/vproc/mig.ics; S = source, T =
 * target, H = the process's home node, where its deputy lives):
 *
 *  0. A move asked from outside the process (a write to /proc/<pid>/goto;
 *     module parameter precopy) first pre-copies, in a kworker on S while
 *     the process runs: S clears its soft-dirty bits and calls T:
 *     precopy(session, pid, spans); T pulls every private page with
 *     pages(mode 1) and stages it.  Any failure only costs the pre-copy.
 *  1. migrate(node) or a write to /proc/<pid>/goto queues a TWA_SIGNAL
 *     task_work on the process.  It runs on the way back to user mode,
 *     where the user registers are final (an interrupted system call is
 *     rewound to be restarted, or returns EINTR if it needs kernel restart
 *     state).  What cannot move yet is refused there with an errno and a
 *     dmesg line, and the process goes on untouched.
 *  2. S writes the image (mig_image.h: registers, FPU, credentials,
 *     signals, the VMA list, open files, cwd) and calls T: start(session,
 *     pid, home, image).  Files the target can open as the same file are
 *     reopened by path; every other descriptor is exported through rfile
 *     and stays served by the node that holds it.
 *  3. T checks the image and, unless T is H, starts the restore helper
 *     (module parameter `helper`), which clone3()s a task with the PID and
 *     calls SSISYS_MIG_RESTORE in it; start then returns.  The task
 *     rebuilds the address space, pulls the private pages from S with
 *     pages(session, addr, end, mode) over windows of its mappings, three
 *     calls in flight (the frozen process's mapped pages: holes stay
 *     holes; after a pre-copy, mode 2: the pages written since, and the
 *     clean ones named for T to take from its stage).  A reply carries
 *     up to 128 pages as an ICS pages<N> field: S sends them from the
 *     process's own pages, T receives them into the pages it maps (or
 *     stages), with no copy in between.  T then reinstalls the
 *     files, credentials, signals, FPU and registers, and calls S:
 *     done(session, 0).
 *  4. S's yes to done is the commit: the process runs on T from then on.
 *     S's task, frozen all along, becomes the deputy (on H); on any other
 *     node (a process moving on) it becomes a sub-deputy if the process
 *     has children there, which it keeps as the deputy keeps those at
 *     home, and else exits quietly.  The image names the nodes with a
 *     sub-deputy (keepers); each move and the exit are told to every one
 *     of them as to H.  The numbers of
 *     the threads that end on S stay taken there while they run elsewhere:
 *     by the deputy or sub-deputy, else by mig_tids.c.  Anything else
 *     (an error, S or T down, 120 s) ends the attempt: the process goes on
 *     at S, and a restored task on T dies before reaching user mode.
 *  5. The deputy forwards each signal it gets with signal(pid, ...) to the
 *     node the process runs on, with the siginfo fields a local receiver
 *     would see (sender, sigqueue value, a child's CLD_* code, status and
 *     times; other kernel-made signals arrive as SI_KERNEL).  That
 *     node's restore helper reaps the process when it ends and calls H:
 *     exited(pid, status); the deputy exits with that status, so the
 *     parent's wait() gets it.  A process moving on tells H exited(pid,
 *     -1, node).  T = H (or a node with a sub-deputy of it): the deputy
 *     itself restores the process and
 *     returns to user mode as it; it first makes the process's other
 *     threads with their TIDs (ssi_clone_thread(), patch 0009), which H
 *     held while the process was away (ssi_pid_hold(), patch 0008), and
 *     takes up the process's working directory (the helper's chdir
 *     elsewhere).  A rexec() to H restores no memory: the deputy executes
 *     the program itself (kernel_execve(), patch 0010).
 *  6. The children the process had when it left stay the deputy's (or a
 *     sub-deputy's).  Its wait4()/waitid() where it runs (patch 0006) look
 *     for a child there and call H and every keeper: wait(pid, which, nr,
 *     options); the deputy runs the same
 *     wait as itself, never blocking, and answers with the child's PID
 *     and status, 0 (none ready: the caller sleeps until a local child
 *     event, the SIGCHLD the deputy forwards, or 250 ms, and asks again)
 *     or ECHILD.  Only the node the process runs on may ask.
 *  7. Job control: the restore helper, the process's parent where it runs,
 *     also sees it stop and continue, and calls H: jobctl(pid, status).
 *     The deputy stops with it (ssi_group_stop(), patch 0007), so the
 *     parent at home sees the stop as wait(WUNTRACED) and CLD_STOPPED; a
 *     continue there sends the stopped deputy a SIGCONT, which it does not
 *     forward back.  A SIGCONT sent to the deputy continues it at once and
 *     is forwarded as any signal.
 *
 *  8. H going down: a parent and child that had both left it stay a
 *     family through family(...) between their nodes (mig_family.c).
 *
 * On H, vproc's location table says where the process runs, so every
 * node's kill, /proc and ps find it; /proc/<pid>/node on H reads it from
 * the deputy.  A node going down fails the migrations it takes part in;
 * the deputies of processes it ran end as killed (SIGKILL).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/ssi.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <asm/unaligned.h>

#include "clms.h"
#include "ics.h"
#include "ssi_core.h"
#include "migration_gen.h"
#include "mig_ics.h"
#include "mig_internal.h"

unsigned int mig_self;
char *mig_helper_path;
struct workqueue_struct *mig_wq;

u64 mig_new_session(void)
{
	return get_random_u64() | 1;
}

int mig_check_node(unsigned int node)
{
	if (node < 1 || node > SSI_MAX_NODES)
		return -EINVAL;
	if (node != mig_self && !clms_node_is_up(node))
		return -EHOSTDOWN;
	return 0;
}

/*
 * --- outcomes: /sys/kernel/ssi/migration/outcomes --------------------
 *
 * The last MIG_NR_OUTCOMES moves this node's processes ended, one line
 * each, oldest first: "SEQ PID NODE ERRNO WHY", ERRNO 0 and WHY "moved"
 * for a move made.  A goto returns before the move is tried, so this is
 * where `ssictl migrate` finds why a process stayed (dmesg says it too;
 * root only, like dmesg).  Each outcome wakes a poll() of the file
 * (POLLPRI), so a waiter needs no polling loop on the node it measures.
 */
#define MIG_NR_OUTCOMES		32
#define MIG_WHY_LEN		112
/* Between two mig.setgroup calls a deputy answered EAGAIN to. */
#define MIG_SETGROUP_RETRY	max(HZ / 100, 1)

struct mig_outcome_rec {
	u64 seq;
	pid_t pid;
	unsigned int node;
	int err;		/* 1: a refusal whose errno is not known yet */
	char why[MIG_WHY_LEN];
};

static struct kobject *mig_kobj;
static struct mig_outcome_rec mig_outcomes[MIG_NR_OUTCOMES];
static u64 mig_outcome_seq;
static DEFINE_SPINLOCK(mig_outcome_lock);

static struct mig_outcome_rec *mig_outcome_new(pid_t pid)
{
	struct mig_outcome_rec *o;

	o = &mig_outcomes[mig_outcome_seq % MIG_NR_OUTCOMES];
	memset(o, 0, sizeof(*o));
	o->seq = ++mig_outcome_seq;
	o->pid = pid;
	return o;
}

/* Why @pid does not move: dmesg, and the outcome its errno completes. */
void mig_refuse(pid_t pid, const char *fmt, ...)
{
	struct mig_outcome_rec *o;
	va_list args;

	spin_lock(&mig_outcome_lock);
	o = mig_outcome_new(pid);
	o->err = 1;
	va_start(args, fmt);
	vsnprintf(o->why, sizeof(o->why), fmt, args);
	va_end(args);
	pr_info("pid %d: not moved: %s\n", pid, o->why);
	spin_unlock(&mig_outcome_lock);
}

/* The end of a move of @pid to @node: made (0) or not (its errno). */
void mig_outcome(pid_t pid, unsigned int node, int err)
{
	struct mig_outcome_rec *o = NULL;
	unsigned int i;

	spin_lock(&mig_outcome_lock);
	/* the refusal this move recorded, if it is the latest of @pid */
	for (i = 0; i < MIG_NR_OUTCOMES; i++) {
		struct mig_outcome_rec *r = &mig_outcomes[i];

		if (r->seq && r->pid == pid && (!o || r->seq > o->seq))
			o = r;
	}
	if (!o || o->err != 1 || !err) {
		o = mig_outcome_new(pid);
		strscpy(o->why, err ? "see dmesg" : "moved", sizeof(o->why));
	}
	o->node = node;
	o->err = err < 0 ? -err : err;
	spin_unlock(&mig_outcome_lock);
	if (mig_kobj)
		sysfs_notify(mig_kobj, NULL, "outcomes");
}

static ssize_t outcomes_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	u64 first, seq;
	int len = 0;

	spin_lock(&mig_outcome_lock);
	first = mig_outcome_seq > MIG_NR_OUTCOMES ?
		mig_outcome_seq - MIG_NR_OUTCOMES + 1 : 1;
	for (seq = first; seq <= mig_outcome_seq; seq++) {
		const struct mig_outcome_rec *o =
			&mig_outcomes[(seq - 1) % MIG_NR_OUTCOMES];

		if (o->err == 1)
			continue;	/* its move has not ended yet */
		len += sysfs_emit_at(buf, len, "%llu %d %u %d %s\n", o->seq,
				     o->pid, o->node, o->err, o->why);
	}
	spin_unlock(&mig_outcome_lock);
	return len;
}

/* root only, as dmesg: the reasons name addresses and descriptors */
static struct kobj_attribute mig_outcomes_attr = __ATTR(outcomes, 0400,
							 outcomes_show, NULL);

static ssize_t family_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return mig_family_show(buf);
}

/* root only: it names other users' processes */
static struct kobj_attribute mig_family_attr = __ATTR(family, 0400,
						      family_show, NULL);

/* --- ICS server handlers ---------------------------------------------- */

int mig_srv_start(unsigned int from, const struct mig_start_req *req,
		  struct mig_start_rep *rep)
{
	if (req->pid <= 0 || (u32)req->pid >> SSI_PID_NODE_SHIFT == 0 ||
	    req->home < 1 || req->home > SSI_MAX_NODES)
		return -EINVAL;
	return mig_in_add(req->session, req->pid, from, req->home,
			  req->image, req->image_len);
}

int mig_srv_pages(unsigned int from, const struct mig_pages_req *req,
		  struct mig_pages_rep *rep)
{
	struct mig_out *out = mig_out_find(req->session, from);
	int ret;

	if (!out)
		return -ESRCH;
	BUILD_BUG_ON(ARRAY_SIZE(rep->page_addr) != ARRAY_SIZE(rep->data));
	ret = mig_serve_pages(out, req, rep);
	mig_out_put(out);
	return ret;
}

int mig_srv_done(unsigned int from, const struct mig_done_req *req,
		 struct mig_done_rep *rep)
{
	struct mig_out *out = mig_out_find(req->session, from);
	int ret = 0;

	if (!out)
		return -ESRCH;
	/* first word wins: a source that gave up already says no */
	mig_out_finish(out, req->status > 0 ? -EPROTO : req->status);
	if (out->status != req->status)
		ret = -ECANCELED;
	mig_out_put(out);
	return ret;
}

/*
 * The task of migrant @pid, for the node of its deputy or of one of its
 * sub-deputies (@from) only; or NULL.
 */
static struct task_struct *mig_migrant_task(unsigned int from, pid_t pid)
{
	struct task_struct *task;

	if (!mig_migrant_may_ask(pid, from))
		return NULL;
	rcu_read_lock();
	task = pid_task(find_vpid(pid), PIDTYPE_PID);
	if (task)
		get_task_struct(task);
	rcu_read_unlock();
	return task;
}

/*
 * A terminal stop signal for an orphaned process group is dropped unless
 * the process handles it (get_signal() drops it at its default action).
 */
static bool mig_orphaned_stop_is_dropped(struct task_struct *task, int signo)
{
	struct sighand_struct *sighand;
	bool dropped = false;

	if (signo != SIGTSTP && signo != SIGTTIN && signo != SIGTTOU)
		return false;
	/* one word read: a handler set meanwhile races as it would locally */
	rcu_read_lock();
	sighand = rcu_dereference(task->sighand);
	if (sighand)
		dropped = READ_ONCE(sighand->action[signo - 1].sa.sa_handler) ==
			  SIG_DFL;
	rcu_read_unlock();
	return dropped;
}

int mig_srv_signal(unsigned int from, const struct mig_signal_req *req,
		   struct mig_signal_rep *rep)
{
	struct kernel_siginfo info;
	struct task_struct *task;
	int ret;

	if (!valid_signal(req->signo) || !req->signo)
		return -EINVAL;
	task = mig_migrant_task(from, req->pid);
	if (!task)
		return -ESRCH;		/* only its deputy signals it this way */
	if (mig_out_frozen(req->pid) || mig_migrant_moved_on(req->pid)) {
		/* it is leaving: the deputy asks again where it lands */
		put_task_struct(task);
		return -EINPROGRESS;
	}
	if (req->orphaned && mig_orphaned_stop_is_dropped(task, req->signo)) {
		put_task_struct(task);
		return 0;
	}
	clear_siginfo(&info);
	info.si_signo = req->signo;
	info.si_code = req->code;
	info.si_pid = req->sender_pid;
	info.si_uid = req->sender_uid;
	if (mig_siginfo_is_child(req->signo, req->code)) {
		info.si_status = req->status;
		info.si_utime = req->utime;
		info.si_stime = req->stime;
	} else if (mig_siginfo_has_value(req->code)) {
		info.si_ptr = (void __user *)(uintptr_t)req->value;
	} else if (req->code > 0) {
		/* no other kernel-made siginfo is forwarded with its fields */
		info.si_code = SI_KERNEL;
		info.si_pid = 0;
		info.si_uid = 0;
	}
	ret = send_sig_info(req->signo, &info, task);
	/*
	 * A child of its deputy changed state: wake the process's wait() (a
	 * SIGCHLD it ignores is never queued) to ask home again.  The key is
	 * a task, as do_wait()'s wake-up callback expects.
	 */
	if (req->signo == SIGCHLD)
		__wake_up(&task->signal->wait_chldexit, TASK_INTERRUPTIBLE, 1,
			  task);
	put_task_struct(task);
	return ret;
}

int mig_srv_exited(unsigned int from, const struct mig_exited_req *req,
		   struct mig_exited_rep *rep)
{
	if (req->status < -1)
		return -EINVAL;
	return mig_deputy_exited(req->pid, req->status, req->node, from);
}

int mig_srv_jobctl(unsigned int from, const struct mig_jobctl_req *req,
		   struct mig_jobctl_rep *rep)
{
	if (!mig_status_is_jobctl(req->status) ||
	    ((req->status & 0xff) == 0x7f &&
	     !sig_kernel_stop((req->status >> 8) & 0xff)))
		return -EINVAL;
	return mig_deputy_jobctl(req->pid, req->status, from);
}

int mig_srv_wait(unsigned int from, const struct mig_wait_req *req,
		 struct mig_wait_rep *rep)
{
	struct ssi_wait w = {
		.which = req->which,
		.nr = req->nr,
		.options = req->options | WNOHANG,
		.waitid = req->waitid,
	};
	long ret;
	int i;

	/* the rest of the options and @nr is checked as waitid() checks them */
	if (req->which != P_ALL && req->which != P_PID && req->which != P_PGID)
		return -EINVAL;
	ret = mig_deputy_wait(req->pid, from, &w);
	if (ret < 0)
		return ret;
	rep->child = ret;
	if (!ret)
		return 0;
	rep->stat = w.stat;
	rep->cause = w.cause;
	rep->status = w.status;
	rep->uid = w.uid;
	rep->utime_us = w.ru.ru_utime.tv_sec * USEC_PER_SEC +
			w.ru.ru_utime.tv_usec;
	rep->stime_us = w.ru.ru_stime.tv_sec * USEC_PER_SEC +
			w.ru.ru_stime.tv_usec;
	BUILD_BUG_ON(ARRAY_SIZE(rep->ru_counts) !=
		     (sizeof(w.ru) - offsetof(struct rusage, ru_maxrss)) /
		     sizeof(long));
	for (i = 0; i < ARRAY_SIZE(rep->ru_counts); i++)
		rep->ru_counts[i] = (&w.ru.ru_maxrss)[i];
	rep->ru_counts_count = ARRAY_SIZE(rep->ru_counts);
	return 0;
}

int mig_srv_setgroup(unsigned int from, const struct mig_setgroup_req *req,
		     struct mig_setgroup_rep *rep)
{
	long ret;

	if (req->setsid > 1 || (req->setsid && req->pgid))
		return -EINVAL;
	ret = mig_deputy_setgroup(req->pid, from, req->pgid, req->setsid,
				  &rep->pgid, &rep->sid);
	return ret < 0 ? ret : 0;
}

int mig_srv_move(unsigned int from, const struct mig_move_req *req,
		 struct mig_move_rep *rep)
{
	struct task_struct *task;
	int ret;

	task = mig_migrant_task(from, req->pid);
	if (!task)
		return -ESRCH;		/* only its deputy moves it this way */
	ret = mig_queue(task, req->node, false);
	put_task_struct(task);
	return ret;
}

/* --- ssisys --------------------------------------------------------------- */

static long mig_ssisys_restore(void __user *buf, size_t len)
{
	struct ssi_mig_restore r;
	struct mig_in *in;
	long ret;

	if (len != sizeof(r))
		return -EINVAL;
	if (copy_from_user(&r, buf, sizeof(r)))
		return -EFAULT;
	if (r.flags || r.pid != task_tgid_nr(current))
		return -EINVAL;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (current != current->group_leader)
		return -EINVAL;
	in = mig_in_claim(r.session, r.pid);
	if (!in)
		return -ESRCH;
	if (in->exec_len && r.exec_len < in->exec_len) {
		mig_in_put(in);
		return -ENOSPC;		/* before anything is touched */
	}
	ret = mig_restore_current(in);
	if (!ret && in->exec_len) {
		/* rexec: the helper, now the process, executes the program */
		r.flags = SSI_MIG_RESTORE_EXEC;
		r.exec_len = in->exec_len;
		if (copy_to_user(u64_to_user_ptr(r.exec_buf), in->exec,
				 in->exec_len) ||
		    copy_to_user(buf, &r, sizeof(r))) {
			force_sig(SIGKILL);
			ret = -EFAULT;
		}
	}
	mig_in_put(in);
	return ret;
}

static const struct ssisys_handler mig_restore_handler = {
	.owner = THIS_MODULE,
	.call = mig_ssisys_restore,
};

static long mig_ssisys_restore_thread(void __user *buf, size_t len)
{
	struct ssi_mig_restore r;

	if (len != sizeof(r))
		return -EINVAL;
	if (copy_from_user(&r, buf, sizeof(r)))
		return -EFAULT;
	if (r.flags || r.pid != task_pid_nr(current) ||
	    current == current->group_leader)
		return -EINVAL;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return mig_restore_thread(r.session, r.pid);
}

static const struct ssisys_handler mig_restore_thread_handler = {
	.owner = THIS_MODULE,
	.call = mig_ssisys_restore_thread,
};

static long mig_ssisys_reaped(void __user *buf, size_t len)
{
	struct ssi_mig_reaped r;

	if (len != sizeof(r))
		return -EINVAL;
	if (copy_from_user(&r, buf, sizeof(r)))
		return -EFAULT;
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (r.pid <= 0 || r.status < 0 || r.status > 0xffff)
		return -EINVAL;
	return mig_reaped(r.pid, r.status);
}

static const struct ssisys_handler mig_reaped_handler = {
	.owner = THIS_MODULE,
	.call = mig_ssisys_reaped,
};

/* --- system calls and kernel hooks --------------------------------------- */

static long mig_migrate(unsigned int node)
{
	return mig_queue(current, node, true);
}

static long mig_rfork(unsigned int node)
{
	int ret = mig_check_node(node);

	if (ret)
		return ret;
	return ssi_rfork_current(node == mig_self ? 0 : node);
}

/* Append the user string @u to @buf (NUL included); false when too long. */
static long mig_put_string(char *buf, u32 *len, const char __user *u)
{
	long n = strncpy_from_user(buf + *len, u, SSI_MIG_EXEC_MAX - *len);

	if (n < 0)
		return n;
	if (n == SSI_MIG_EXEC_MAX - *len)
		return -E2BIG;
	*len += n + 1;
	return 0;
}

/* A NULL-terminated array of user strings; the count in *@count. */
static long mig_put_strings(char *buf, u32 *len,
			    const char __user *const __user *v, u32 *count)
{
	const char __user *p;
	long ret;

	for (*count = 0; v; (*count)++) {
		if (get_user(p, v + *count))
			return -EFAULT;
		if (!p)
			break;
		ret = mig_put_string(buf, len, p);
		if (ret)
			return ret;
		if (fatal_signal_pending(current))
			return -EINTR;
	}
	return 0;
}

/*
 * rexec(node, path, argv, envp): the process moves to @node without its
 * memory and executes @path there, keeping its PID, files, directory and
 * credentials.  Arguments are copied here, at the call: at most
 * SSI_MIG_EXEC_MAX bytes (E2BIG).  Executing on this node is execve(2)'s
 * job: EINVAL.
 */
static long mig_rexec(unsigned int node, const struct ssi_exec_args *args)
{
	u32 len = 2 * sizeof(u32), argc, envc;
	char *buf;
	long ret;

	ret = mig_check_node(node);
	if (ret)
		return ret;
	if (node == mig_self)
		return -EINVAL;
	buf = kvmalloc(SSI_MIG_EXEC_MAX, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	ret = mig_put_string(buf, &len, args->path);
	if (!ret && len == 2 * sizeof(u32) + 1)
		ret = -ENOENT;		/* empty path, as execve */
	if (!ret)
		ret = mig_put_strings(buf, &len, args->argv, &argc);
	if (!ret && !argc) {
		/* as execve(2) does since 5.18: an empty argv gets "" */
		if (len == SSI_MIG_EXEC_MAX)
			ret = -E2BIG;
		else
			buf[len++] = 0;
		argc = 1;
	}
	if (!ret)
		ret = mig_put_strings(buf, &len, args->envp, &envc);
	if (!ret) {
		put_unaligned_le32(argc, buf);
		put_unaligned_le32(envc, buf + sizeof(u32));
		ret = mig_queue_exec(node, buf, len);
	}
	if (ret)
		kvfree(buf);
	return ret;
}

static const struct ssi_proc_ops mig_proc_ops = {
	.owner = THIS_MODULE,
	.migrate = mig_migrate,
	.rfork = mig_rfork,
	.rexec = mig_rexec,
};

/* /proc/<pid>/goto: allowed to whoever may kill the process. */
static int mig_goto_node(struct task_struct *task, unsigned int node)
{
	pid_t pid = task_tgid_nr(task);
	int ret;

	unsigned int runs = mig_deputy_node(task->group_leader);

	ret = ssi_kill_local(0, SEND_SIG_NOINFO, pid);
	if (ret)
		return ret;
	if (runs != mig_self) {
		/* a deputy: the process runs on @runs; it moves from there */
		struct mig_move_req req = { .pid = pid, .node = node };
		struct mig_move_rep rep;

		unsigned long until = jiffies + MIG_CALL_TIMEOUT;

		ret = mig_check_node(node);
		if (ret || runs == node)
			return ret;
		/* ENOTCONN: ICS backs off a failed connect for a moment */
		while ((ret = ics_mig_move(runs, &req, &rep,
					   MIG_CALL_TIMEOUT)) == -ENOTCONN &&
		       time_before(jiffies, until))
			msleep(20);
		return ret == -ENOTCONN ? -EAGAIN : ret;
	}
	return mig_queue(task->group_leader, node, false);
}

static unsigned int mig_task_node(struct task_struct *task)
{
	return mig_deputy_node(task->group_leader);
}

static pid_t mig_group(struct task_struct *task, bool session)
{
	return mig_migrant_group(task, session);
}

static pid_t mig_getppid(struct task_struct *task)
{
	pid_t ppid;

	if (mig_migrant_ppid(task_tgid_nr(task), &ppid))
		return -ESRCH;
	return ppid;
}

/*
 * setpgid(0, @pgid) or setsid() (@session) of current, a process restored
 * here: its deputy at home makes it (mig.setgroup), and the groups it
 * reports become the process's here (mig_migrant_group()).  A child
 * forked here (no record of its own) has local groups, and a process
 * whose home is gone (no deputy left) has only those: both call locally.
 */
static bool mig_setgroup(pid_t pgid, bool session, long *ret)
{
	pid_t pid = task_tgid_nr(current);
	unsigned int home = mig_migrant_home(pid);
	struct mig_setgroup_req req = {
		.pid = pid,
		.pgid = pgid,
		.setsid = session,
	};
	struct mig_setgroup_rep rep;
	long err;

	if (!home || home == mig_self)
		return false;
	/* a deputy busy or not in place yet (EAGAIN): ask again */
	while ((err = ics_mig_setgroup(home, &req, &rep,
				       MIG_CALL_TIMEOUT)) == -EAGAIN &&
	       !fatal_signal_pending(current))
		schedule_timeout_killable(MIG_SETGROUP_RETRY);
	if (err == -ECHILD || err == -EHOSTDOWN)
		return false;
	/* ids from the wire: a PID or nothing */
	if (!err && (rep.pgid <= 0 || rep.pgid > PID_MAX_LIMIT ||
		     rep.sid <= 0 || rep.sid > PID_MAX_LIMIT))
		err = -EPROTO;
	if (!err) {
		mig_migrant_set_group(pid, rep.pgid, rep.sid);
		err = session ? rep.sid : 0;
	}
	*ret = err;
	return true;
}

/*
 * One node's deputy of current runs @req as itself: the child's PID (and
 * @rep), 0 while none of its children is ready, -ECHILD when it has none.
 * Down: those children are out of reach, as if gone (ECHILD); a busy
 * deputy, or a node not reached before its nodedown ran here: none ready
 * yet.
 */
static long mig_wait_at(unsigned int node, const struct mig_wait_req *req,
			struct mig_wait_rep *rep)
{
	long ret = ics_mig_wait(node, req, rep, MIG_CALL_TIMEOUT);

	if (ret == -EAGAIN)
		return 0;
	if (!ret)
		return rep->child >= 0 ? rep->child : -ECHILD;
	/*
	 * Not reached, while the process's record still names the node (its
	 * nodedown has not run here yet): it may be dying, and then its
	 * nodedown says what became of the children (mig_family.c), or slow.
	 */
	if ((ret == -EHOSTDOWN || ret == -ENOTCONN || ret == -ETIMEDOUT ||
	     ret == -EHOSTUNREACH || ret == -ECONNRESET || ret == -ENOMEM) &&
	    (mig_migrant_home(req->pid) == node ||
	     mig_migrant_keepers(req->pid) & mig_node_bit(node)))
		return 0;
	if (ret != -ECHILD && ret != -EINVAL && ret != -EINTR) {
		pr_info_ratelimited("pid %d: wait at node %u: %ld\n",
				    req->pid, node, ret);
		return -ECHILD;
	}
	return ret;
}

/*
 * A wait of current, a process restored here, for the children it left
 * with its deputy at home and with its sub-deputies on other nodes: the
 * first child ready on any of them, 0 while some has children but none
 * is ready, else ECHILD.
 */
static long mig_wait(struct ssi_wait *w)
{
	pid_t pid = task_tgid_nr(current);
	unsigned int home = mig_migrant_home(pid);
	unsigned long keepers = mig_migrant_keepers(pid);
	struct mig_wait_req req = {
		.pid = pid,
		.which = w->which,
		.nr = w->nr,
		.options = w->options | WNOHANG,
		.waitid = w->waitid,
	};
	struct mig_wait_rep rep;
	unsigned int bit;
	long ret, found = -ECHILD;
	int i;

	/* not the moved process itself (home 0: no record, or home died) */
	if (home == mig_self)
		return -ECHILD;
	if (!home && !keepers)
		return mig_family_wait(w);
	/* every node keeping children of it: home and the keepers */
	keepers = mig_node_bit(home) | keepers;
	for_each_set_bit(bit, &keepers, SSI_MAX_NODES) {
		ret = mig_wait_at(bit + 1, &req, &rep);
		if (ret == -EINTR || ret == -EINVAL)
			return ret;
		if (ret >= 0)
			found = ret;
		if (found > 0)
			break;
	}
	/* and the children its home took with it, if it died (meanwhile) */
	if (found <= 0 && !mig_migrant_home(pid)) {
		ret = mig_family_wait(w);
		if (ret >= 0)
			return ret;
	}
	if (found > 0) {
		w->stat = rep.stat;
		w->cause = rep.cause;
		w->status = rep.status;
		w->uid = rep.uid;
		w->ru.ru_utime.tv_sec = rep.utime_us / USEC_PER_SEC;
		w->ru.ru_utime.tv_usec = rep.utime_us % USEC_PER_SEC;
		w->ru.ru_stime.tv_sec = rep.stime_us / USEC_PER_SEC;
		w->ru.ru_stime.tv_usec = rep.stime_us % USEC_PER_SEC;
		for (i = 0; i < rep.ru_counts_count; i++)
			(&w->ru.ru_maxrss)[i] = rep.ru_counts[i];
	}
	return found;
}

/*
 * Migrant @pid, running here, is about to go home, which cannot keep
 * children on other nodes: its sub-deputies with no child left (alive or
 * zombie; a wait with WNOWAIT takes no status) end now.  Returns the
 * keepers that still have some.
 */
u64 mig_keepers_settle(pid_t pid)
{
	struct mig_wait_req req = {
		.pid = pid,
		.which = P_ALL,
		.options = WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT |
			   __WALL,
		.waitid = 1,
	};
	struct mig_exited_req end = { .pid = pid, .status = 0 };
	unsigned long keepers = mig_migrant_keepers(pid);
	struct mig_exited_rep end_rep;
	struct mig_wait_rep rep;
	unsigned int bit;

	for_each_set_bit(bit, &keepers, SSI_MAX_NODES) {
		if (mig_wait_at(bit + 1, &req, &rep) != -ECHILD)
			continue;
		/* gone, or unreachable: its children are out of reach anyway */
		mig_migrant_drop_keeper(pid, bit + 1);
		ics_mig_exited(bit + 1, &end, &end_rep, MIG_CALL_TIMEOUT);
	}
	return mig_migrant_keepers(pid);
}

static const struct ssi_mig_ops mig_hooks = {
	.owner = THIS_MODULE,
	.goto_node = mig_goto_node,
	.task_node = mig_task_node,
	.getppid = mig_getppid,
	.forked = mig_forked,
	.rfork_wait = mig_rfork_wait,
	.wait = mig_wait,
	.group = mig_group,
	.setgroup = mig_setgroup,
};

static void mig_nodedown(unsigned int node, u64 transition)
{
	/* before home 0 lets a wait find no record and no grace */
	mig_family_grace();
	mig_out_nodedown(node);
	mig_in_nodedown(node);
	mig_stage_nodedown(node);
	mig_deputy_nodedown(node);
	mig_family_nodedown(node);
}

static struct clms_notifier mig_notifier = {
	.nodedown = mig_nodedown,
};

int migration_init(void)
{
	int ret;

	mig_self = ssi_node_num();
	mig_helper_path = migration_helper;
	mig_wq = alloc_workqueue("ssi_migration", WQ_UNBOUND, 0);
	if (!mig_wq)
		return -ENOMEM;
	ret = ics_register_service(&mig_ics_service);
	if (ret)
		goto err_wq;
	ret = clms_register_notifier(&mig_notifier);
	if (ret)
		goto err_ics;
	ret = ssisys_register(SSISYS_MIG_RESTORE, &mig_restore_handler);
	if (ret)
		goto err_clms;
	ret = ssisys_register(SSISYS_MIG_REAPED, &mig_reaped_handler);
	if (ret)
		goto err_restore;
	ret = ssisys_register(SSISYS_MIG_RESTORE_THREAD,
			      &mig_restore_thread_handler);
	if (ret)
		goto err_reaped;
	ret = ssi_register_mig_ops(&mig_hooks);
	if (ret)
		goto err_thread;
	mig_kobj = kobject_create_and_add("migration", ssi_sysfs_root());
	if (!mig_kobj) {
		ret = -ENOMEM;
		goto err_hooks;
	}
	ret = sysfs_create_file(mig_kobj, &mig_outcomes_attr.attr);
	if (!ret)
		ret = sysfs_create_file(mig_kobj, &mig_family_attr.attr);
	if (ret)
		goto err_kobj;
	ret = ssi_proc_register(&mig_proc_ops);
	if (ret)
		goto err_kobj;
	return 0;

err_kobj:
	kobject_put(mig_kobj);
err_hooks:
	ssi_unregister_mig_ops(&mig_hooks);
err_thread:
	ssisys_unregister(SSISYS_MIG_RESTORE_THREAD, &mig_restore_thread_handler);
err_reaped:
	ssisys_unregister(SSISYS_MIG_REAPED, &mig_reaped_handler);
err_restore:
	ssisys_unregister(SSISYS_MIG_RESTORE, &mig_restore_handler);
err_clms:
	clms_unregister_notifier(&mig_notifier);
err_ics:
	ics_unregister_service(&mig_ics_service);
err_wq:
	destroy_workqueue(mig_wq);
	return ret;
}

void migration_exit(void)
{
	ssi_proc_unregister(&mig_proc_ops);
	kobject_put(mig_kobj);
	ssi_unregister_mig_ops(&mig_hooks);
	ssisys_unregister(SSISYS_MIG_RESTORE_THREAD, &mig_restore_thread_handler);
	ssisys_unregister(SSISYS_MIG_REAPED, &mig_reaped_handler);
	ssisys_unregister(SSISYS_MIG_RESTORE, &mig_restore_handler);
	clms_unregister_notifier(&mig_notifier);
	ics_unregister_service(&mig_ics_service);
	mig_family_exit();
	destroy_workqueue(mig_wq);
	mig_tids_exit();
	mig_in_exit();
	mig_stage_exit();
}
