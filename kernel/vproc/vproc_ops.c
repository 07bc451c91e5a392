// SPDX-License-Identifier: GPL-2.0-only
/*
 * vproc calls about one process: the ICS servers (run on the node where
 * the process runs, checked against the caller's credentials sent along)
 * and the client side that routes each call there.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/kref.h>
#include <linux/magic.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/namei.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/security.h>
#include <linux/seq_file.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uidgid.h>
#include <linux/uio.h>
#include <linux/workqueue.h>

#include "clms.h"
#include "ics.h"
#include "vproc_gen.h"
#include "vproc_ics.h"
#include "vproc_internal.h"

/* /proc of this node's initial PID namespace; remote reads open below it. */
static struct path vproc_proc_root;

/*
 * Files of /proc/<pid> another node may read here.  Private ones are mode
 * 0400 as in procfs; the serving node's procfs checks every reader anyway.
 */
static const struct {
	const char *name;
	bool private;
} vproc_readable[] = {
	/* Those this kernel's procfs has (fs/proc/base.c tgid_base_stuff). */
#ifdef CONFIG_CGROUPS
	{ "cgroup" },
#endif
	{ "cmdline" }, { "comm" }, { "environ", true },
#ifdef CONFIG_TASK_IO_ACCOUNTING
	{ "io", true },
#endif
	{ "limits" }, { "oom_score" }, { "stat" }, { "statm" }, { "status" },
#ifdef CONFIG_KALLSYMS
	{ "wchan" },
#endif
};

static int vproc_readable_index(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vproc_readable); i++)
		if (!strcmp(vproc_readable[i].name, name))
			return i;
	return -ENOENT;
}

static struct task_struct *vproc_get_task(pid_t pid)
{
	struct task_struct *p;

	rcu_read_lock();
	p = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);
	if (p)
		get_task_struct(p);
	rcu_read_unlock();
	return p;
}

/* The credentials a request carries, built for serving it here. */
static struct cred *vproc_kill_cred(const struct vproc_kill_req *req)
{
	struct ssi_creds c;

	SSI_CREDS_FROM_REQ(&c, req);
	return ssi_cred_build(&c);
}

static struct cred *vproc_task_cred(const struct vproc_task_req *req)
{
	struct ssi_creds c;

	SSI_CREDS_FROM_REQ(&c, req);
	return ssi_cred_build(&c);
}

static struct cred *vproc_read_cred(const struct vproc_read_req *req)
{
	struct ssi_creds c;

	SSI_CREDS_FROM_REQ(&c, req);
	return ssi_cred_build(&c);
}

/*
 * The LSM hooks of getpgid, getsid and setpriority, run under the remote
 * caller's credentials.  Without CONFIG_SECURITY (the node kernel) they are
 * the inline fallbacks: none for getpgid and getsid, and for setnice
 * commoncap's cap_task_setnice(), which is not exported, so its rule
 * (cap_safe_nice()) is repeated here.  With an LSM built in, these hooks
 * are not exported to modules: the calls are refused (README.md).
 */
#ifdef CONFIG_SECURITY
static int vproc_security_getpgid(struct task_struct *p)
{
	return -EPERM;
}

static int vproc_security_getsid(struct task_struct *p)
{
	return -EPERM;
}

static int vproc_security_setnice(struct task_struct *p)
{
	return -EPERM;
}
#else
static int vproc_security_getpgid(struct task_struct *p)
{
	return security_task_getpgid(p);
}

static int vproc_security_getsid(struct task_struct *p)
{
	return security_task_getsid(p);
}

static int vproc_security_setnice(struct task_struct *p)
{
	const struct cred *tcred;
	int ret = 0;

	rcu_read_lock();
	tcred = __task_cred(p);
	if (!cap_issubset(tcred->cap_permitted, current_cred()->cap_permitted) &&
	    !ns_capable(tcred->user_ns, CAP_SYS_NICE))
		ret = -EPERM;
	rcu_read_unlock();
	return ret;
}
#endif

/* ---- servers ---- */

int vproc_srv_where(unsigned int from, const struct vproc_where_req *req,
		    struct vproc_where_rep *rep)
{
	unsigned int node;
	int ret;

	if (!vproc_is_cluster_pid(req->pid))
		return -EINVAL;
	ret = vproc_where_here(req->pid, &node);
	if (!ret)
		rep->node = node;
	return ret;
}

int vproc_srv_kill(unsigned int from, const struct vproc_kill_req *req,
		   struct vproc_kill_rep *rep)
{
	struct kernel_siginfo info;
	const struct cred *old;
	struct cred *cred;
	pid_t pid = req->pid;
	int ret;

	if (!valid_signal(req->sig) || req->sig < 0 || req->kernel > 1)
		return -EINVAL;
	if (pid > 0) {
		if (!vproc_is_cluster_pid(pid) || req->kernel)
			return -EINVAL;
		ret = vproc_here(pid);
		if (ret)
			return ret;
	} else if (pid == INT_MIN || !vproc_is_cluster_pid(-pid)) {
		return -EINVAL;
	}
	if (req->kernel)
		return ssi_kill_local(req->sig, SEND_SIG_PRIV, pid);

	cred = vproc_kill_cred(req);
	if (IS_ERR(cred))
		return PTR_ERR(cred);
	clear_siginfo(&info);
	info.si_signo = req->sig;
	info.si_errno = 0;
	info.si_code = SI_USER;
	info.si_pid = req->sender_pid;
	/* In the initial user namespace: the kernel maps it for the target. */
	info.si_uid = req->uid;

	/* check_kill_permission() and security_task_kill() as for a local kill. */
	old = override_creds(cred);
	ret = ssi_kill_local(req->sig, &info, pid);
	revert_creds(old);
	put_cred(cred);
	return ret;
}

/* set_one_prio() of kernel/sys.c, under the caller's credentials. */
static int vproc_setprio(struct task_struct *p, int niceval)
{
	const struct cred *cred = current_cred(), *tcred;
	bool ok;
	int ret;

	rcu_read_lock();
	tcred = __task_cred(p);
	ok = uid_eq(tcred->uid, cred->euid) || uid_eq(tcred->euid, cred->euid) ||
	     ns_capable(tcred->user_ns, CAP_SYS_NICE);
	rcu_read_unlock();
	if (!ok)
		return -EPERM;
	if (niceval < task_nice(p) && !can_nice(p, niceval))
		return -EACCES;
	ret = vproc_security_setnice(p);
	if (ret)
		return ret;
	set_user_nice(p, niceval);
	return 0;
}

int vproc_srv_task(unsigned int from, const struct vproc_task_req *req,
		   struct vproc_task_rep *rep)
{
	const struct cred *old;
	struct task_struct *p;
	struct cred *cred;
	long value = 0;
	int ret;

	if (!vproc_is_cluster_pid(req->pid) || req->op > SSI_VPROC_SETPRIO)
		return -EINVAL;
	ret = vproc_here(req->pid);
	if (ret)
		return ret;
	cred = vproc_task_cred(req);
	if (IS_ERR(cred))
		return PTR_ERR(cred);
	p = vproc_get_task(req->pid);
	if (!p) {
		put_cred(cred);
		return -ESRCH;
	}

	old = override_creds(cred);
	switch (req->op) {
	case SSI_VPROC_GETPGID:
		ret = vproc_security_getpgid(p);
		value = ssi_group_nr(p, &init_pid_ns, false,
				     task_pgrp_nr_ns(p, &init_pid_ns));
		break;
	case SSI_VPROC_GETSID:
		ret = vproc_security_getsid(p);
		value = ssi_group_nr(p, &init_pid_ns, true,
				     task_session_nr_ns(p, &init_pid_ns));
		break;
	case SSI_VPROC_GETPRIO:
		/* getpriority(2) runs no hook. */
		value = nice_to_rlimit(task_nice(p));
		break;
	case SSI_VPROC_SETPRIO:
		ret = vproc_setprio(p, clamp_t(int, req->arg, MIN_NICE,
					       MAX_NICE));
		break;
	}
	revert_creds(old);
	put_cred(cred);
	put_task_struct(p);
	rep->value = ret ? 0 : value;
	return ret;
}

int vproc_srv_attr(unsigned int from, const struct vproc_attr_req *req,
		   struct vproc_attr_rep *rep)
{
	const struct cred *cred;
	struct task_struct *p;
	int ret;

	if (!vproc_is_cluster_pid(req->pid))
		return -EINVAL;
	ret = vproc_here(req->pid);
	if (ret)
		return ret;
	p = vproc_get_task(req->pid);
	if (!p)
		return -ESRCH;
	rcu_read_lock();
	cred = __task_cred(p);
	rep->uid = from_kuid_munged(&init_user_ns, cred->euid);
	rep->gid = from_kgid_munged(&init_user_ns, cred->egid);
	rcu_read_unlock();
	put_task_struct(p);
	return 0;
}

/*
 * access_remote_vm() as procfs calls it for cmdline and environ (it is not
 * exported): FOLL_ANON and no FOLL_FORCE, so a file-backed page (one a
 * FUSE server could stall) or an unreadable one ends the read instead of
 * being read.  Unlike __access_remote_vm(), neither grows the stack nor
 * tries a VM_IO mapping's ->access(): argument and environment strings
 * live in the stack's pages.
 */
static int vproc_access_mm(struct mm_struct *mm, unsigned long addr, u8 *buf,
			   int len)
{
	u8 *start = buf;

	if (mmap_read_lock_killable(mm))
		return 0;
	while (len) {
		struct vm_area_struct *vma;
		struct page *page;
		int bytes, offset;
		void *maddr;

		if (get_user_pages_remote(mm, addr, 1, FOLL_ANON, &page, &vma,
					  NULL) <= 0)
			break;
		offset = addr & (PAGE_SIZE - 1);
		bytes = min_t(int, len, PAGE_SIZE - offset);
		maddr = kmap_local_page(page);
		copy_from_user_page(vma, page, addr, buf, maddr + offset, bytes);
		kunmap_local(maddr);
		put_page(page);
		len -= bytes;
		buf += bytes;
		addr += bytes;
	}
	mmap_read_unlock(mm);
	return buf - start;
}

/* get_mm_cmdline() of fs/proc/base.c, one read of @count from offset 0. */
static size_t vproc_cmdline(struct mm_struct *mm, u8 *buf, size_t count)
{
	unsigned long arg_start, arg_end, env_start, env_end, pos;
	size_t got = 0;
	int n;
	char c;

	if (!mm->env_end)
		return 0;
	spin_lock(&mm->arg_lock);
	arg_start = mm->arg_start;
	arg_end = mm->arg_end;
	env_start = mm->env_start;
	env_end = mm->env_end;
	spin_unlock(&mm->arg_lock);
	if (arg_start >= arg_end)
		return 0;
	/* setproctitle() may overflow into the environment, and only there. */
	if (env_start != arg_end || env_end < env_start) {
		env_start = arg_end;
		env_end = arg_end;
	}
	count = min_t(size_t, count, env_end - arg_start);
	if (!count)
		return 0;

	/* The argv[] end byte is not 0: setproctitle(), at most one page. */
	if (vproc_access_mm(mm, arg_end - 1, &c, 1) == 1 && c) {
		n = vproc_access_mm(mm, arg_start, buf,
				    min_t(size_t, count, PAGE_SIZE));
		if (n <= 0)
			return 0;
		got = strnlen(buf, n);
		if (got < n)
			got++;	/* the NUL */
		return got;
	}

	count = min_t(size_t, count, arg_end - arg_start);
	pos = arg_start;
	while (count) {
		n = vproc_access_mm(mm, pos, buf + got,
				    min_t(size_t, PAGE_SIZE, count));
		if (n <= 0)
			break;
		pos += n;
		got += n;
		count -= n;
	}
	return got;
}

/*
 * environ_read() of fs/proc/base.c, one read of @count from offset 0, of
 * the mm procfs's environ_open() bound to the file (after checking the
 * reader with mm_access(PTRACE_MODE_READ_FSCREDS)).  Like procfs, a read
 * that meets a page it cannot read returns nothing.
 */
static size_t vproc_environ(struct mm_struct *mm, u8 *buf, size_t count)
{
	unsigned long env_start, env_end, src = 0;
	size_t got = 0;
	int n;

	if (!mm || !mm->env_end || !mmget_not_zero(mm))
		return 0;
	spin_lock(&mm->arg_lock);
	env_start = mm->env_start;
	env_end = mm->env_end;
	spin_unlock(&mm->arg_lock);

	while (count > 0 && src < env_end - env_start) {
		n = vproc_access_mm(mm, env_start + src, buf + got,
				    min3(env_end - (env_start + src),
					 (unsigned long)PAGE_SIZE,
					 (unsigned long)count));
		if (n <= 0) {
			got = 0;
			break;
		}
		got += n;
		src += n;
		count -= n;
	}
	mmput(mm);
	return got;
}

/* Read a procfs file whose f_op has no read_iter but is a seq_file. */
static ssize_t vproc_read_file(struct file *f, u8 *buf, size_t len,
			       loff_t *pos)
{
	struct kvec kv = { .iov_base = buf, .iov_len = len };
	struct iov_iter iter;
	struct kiocb kiocb;
	ssize_t n;

	if (f->f_op->read_iter)
		return kernel_read(f, buf, len, pos);
	if (f->f_op->read != seq_read)
		return -EINVAL;
	init_sync_kiocb(&kiocb, f);
	kiocb.ki_pos = *pos;
	iov_iter_kvec(&iter, ITER_DEST, &kv, 1, len);
	n = seq_read_iter(&kiocb, &iter);
	if (n > 0)
		*pos = kiocb.ki_pos;
	return n;
}

/* The text of @f, this node's /proc/<pid>/<name>, opened by the reader. */
static int vproc_read_proc(struct file *f, const struct vproc_read_req *req,
			   struct vproc_read_rep *rep)
{
	const size_t cap = sizeof(rep->data);
	struct task_struct *p;
	struct mm_struct *mm;
	loff_t pos = 0;
	size_t len = 0;
	ssize_t n;

	if (!strcmp(req->name, "cmdline")) {
		/* procfs reads cmdline of the task's mm at read time. */
		p = vproc_get_task(req->pid);
		mm = p ? get_task_mm(p) : NULL;
		if (mm) {
			len = vproc_cmdline(mm, rep->data, cap);
			mmput(mm);
		}
		if (p)
			put_task_struct(p);
	} else if (!strcmp(req->name, "environ")) {
		/* environ_open() keeps the checked mm in private_data. */
		len = vproc_environ(f->private_data, rep->data, cap);
	} else {
		while (len < cap) {
			n = vproc_read_file(f, rep->data + len, cap - len, &pos);
			if (n < 0) {
				rep->data_len = 0;
				return n;
			}
			if (!n)
				break;
			len += n;
		}
	}
	rep->data_len = len;
	return 0;
}

/*
 * /proc/<pid>/<name> opened and read by this node's procfs under the
 * reader's credentials, so every permission check and every field procfs
 * hides from that reader is what a local read gets.
 */
int vproc_srv_read(unsigned int from, const struct vproc_read_req *req,
		   struct vproc_read_rep *rep)
{
	const struct cred *old;
	struct cred *cred;
	char path[48];
	struct file *f;
	int idx, ret;

	if (!vproc_is_cluster_pid(req->pid))
		return -EINVAL;
	idx = vproc_readable_index(req->name);
	if (idx < 0)
		return idx;
	ret = vproc_here(req->pid);
	if (ret)
		return ret;
	cred = vproc_read_cred(req);
	if (IS_ERR(cred))
		return PTR_ERR(cred);

	old = override_creds(cred);
	snprintf(path, sizeof(path), "%d/%s", req->pid, req->name);
	f = file_open_root(&vproc_proc_root, path, O_RDONLY, 0);
	if (IS_ERR(f)) {
		ret = PTR_ERR(f);
		/* No such file here (not built in), or no such process. */
		if (ret == -ENOENT && vproc_here(req->pid))
			ret = -ESRCH;
	} else {
		ret = vproc_read_proc(f, req, rep);
		fput(f);
	}
	revert_creds(old);
	put_cred(cred);
	return ret;
}

void vproc_list_local(struct vproc_list_rep *rep)
{
	struct task_struct *p;
	const struct cred *cred;
	u32 i = 0;

	rcu_read_lock();
	for_each_process(p) {
		pid_t tgid = task_tgid_nr(p);

		if (!vproc_is_cluster_pid(tgid) || (p->flags & PF_KTHREAD))
			continue;
		/* a deputy: the node running the process lists it */
		if (vproc_emigrant(tgid))
			continue;
		if (i >= ARRAY_SIZE(rep->pid))
			break;
		rep->pid[i] = tgid;
		/* a process moved here: its parent, group and session at home */
		rep->ppid[i] = test_bit(SSI_PFA_MIGRANT, &p->atomic_flags) ?
			       ssi_mig_getppid(p) :
			       task_tgid_nr(rcu_dereference(p->real_parent));
		rep->pgid[i] = ssi_group_nr(p, &init_pid_ns, false,
					    task_pgrp_nr_ns(p, &init_pid_ns));
		rep->sid[i] = ssi_group_nr(p, &init_pid_ns, true,
					   task_session_nr_ns(p, &init_pid_ns));
		cred = __task_cred(p);
		rep->uid[i] = from_kuid_munged(&init_user_ns, cred->uid);
		rep->euid[i] = from_kuid_munged(&init_user_ns, cred->euid);
		rep->egid[i] = from_kgid_munged(&init_user_ns, cred->egid);
		rep->state[i] = task_state_to_char(p);
		rep->start_ns[i] = p->start_boottime;
		__get_task_comm(rep->comm + i * VPROC_COMM_LEN, VPROC_COMM_LEN,
				p);
		i++;
	}
	rcu_read_unlock();
	rep->pid_count = i;
	rep->ppid_count = i;
	rep->pgid_count = i;
	rep->sid_count = i;
	rep->uid_count = i;
	rep->euid_count = i;
	rep->egid_count = i;
	rep->state_count = i;
	rep->start_ns_count = i;
	rep->comm_len = i * VPROC_COMM_LEN;
}

int vproc_srv_list(unsigned int from, const struct vproc_list_req *req,
		   struct vproc_list_rep *rep)
{
	if (req->flags)
		return -EINVAL;
	vproc_list_local(rep);
	return 0;
}

/* ---- clients ---- */

/*
 * Where to send a call about @pid: its origin, which serves it or answers
 * EREMOTE (then, with @ask_origin, the node the origin says runs it).
 * An origin that is not UP (down, or not in the cluster table): the node
 * that vproc_adopt.c's table names, else ESRCH at once, with no node asked
 * (issue 9, finding 8).
 */
int vproc_locate(pid_t pid, unsigned int *node, bool ask_origin)
{
	unsigned int origin = vproc_origin(pid);
	struct vproc_where_req req = { .pid = pid };
	struct vproc_where_rep rep;
	int ret;

	if (origin == vproc_self())
		return vproc_where_here(pid, node);
	if (!clms_node_is_up(origin))
		return vproc_where_here(pid, node);
	if (!ask_origin) {
		*node = origin;
		return 0;
	}
	ret = ics_vproc_where(origin, &req, &rep, VPROC_TIMEOUT);
	if (ret)
		return ret;
	if (rep.node < 1 || rep.node > SSI_MAX_NODES)
		return -EBADMSG;
	*node = rep.node;
	return 0;
}

typedef int (*vproc_call_fn)(unsigned int node, void *arg);

/*
 * Run @fn where @pid runs; one retry after asking its origin.  The outcome
 * as it came (the peer's status or the transport's): callers clamp it.
 */
static int vproc_route(pid_t pid, vproc_call_fn fn, void *arg,
		       unsigned int *where)
{
	unsigned int node;
	int ret;

	ret = vproc_locate(pid, &node, false);
	if (ret)
		return ret;
	ret = fn(node, arg);
	if (ret == -EREMOTE) {
		ret = vproc_locate(pid, &node, true);
		if (!ret)
			ret = fn(node, arg);
	}
	if (!ret && where)
		*where = node;
	return ret;
}

static int vproc_kill_fn(unsigned int node, void *arg)
{
	struct vproc_kill_rep rep;

	if (node == vproc_self())
		return vproc_srv_kill(node, arg, &rep);
	return ics_vproc_kill(node, arg, &rep, VPROC_TIMEOUT);
}

/* -E2BIG: the sender is in more groups than a request carries. */
static int vproc_kill_req(struct vproc_kill_req *req, pid_t pid, int sig,
			  const struct kernel_siginfo *info)
{
	struct ssi_creds c;
	int ret;

	ret = ssi_creds_current(&c);
	if (ret)
		return ret;
	req->pid = pid;
	req->sig = sig;
	/* The sender's tgid: the hooks run only in the initial PID namespace. */
	req->sender_pid = info->si_pid;
	SSI_CREDS_TO_REQ(req, &c);
	return 0;
}

int vproc_srv_move(unsigned int from, const struct vproc_move_req *req,
		   struct vproc_move_rep *rep)
{
	struct task_struct *task;
	struct ssi_creds c;
	const struct cred *old;
	struct cred *cred;
	int ret;

	if (!vproc_is_cluster_pid(req->pid))
		return -EINVAL;
	ret = vproc_here(req->pid);
	if (ret)
		return ret;
	task = vproc_get_task(req->pid);
	if (!task)
		return -ESRCH;
	SSI_CREDS_FROM_REQ(&c, req);
	cred = ssi_cred_build(&c);
	if (IS_ERR(cred)) {
		put_task_struct(task);
		return PTR_ERR(cred);
	}
	/* what a write to /proc/<pid>/goto here by the caller would do */
	old = override_creds(cred);
	ret = ssi_mig_goto(task, req->node);
	revert_creds(old);
	put_cred(cred);
	put_task_struct(task);
	return ret;
}

static int vproc_goto_fn(unsigned int node, void *arg)
{
	struct vproc_move_rep rep;

	if (node == vproc_self())
		return vproc_srv_move(node, arg, &rep);
	return ics_vproc_move(node, arg, &rep, VPROC_TIMEOUT);
}

/*
 * /proc/<pid>/goto of a process running on another node: what the write
 * there returned (abi/ERRNOS.md), the transport's own failures as
 * EHOSTDOWN (the node went) or EAGAIN (try again).
 */
int vproc_route_goto(pid_t pid, unsigned int node)
{
	struct vproc_move_req req = { .pid = pid, .node = node };
	struct ssi_creds c;
	int ret;

	if (ssi_creds_current(&c))
		return -EPERM;
	SSI_CREDS_TO_REQ(&req, &c);
	ret = vproc_route(pid, vproc_goto_fn, &req, NULL);
	switch (ret) {
	case -ENOTCONN: case -EHOSTUNREACH:
		return -EHOSTDOWN;
	case -ETIMEDOUT: case -EBADMSG: case -EMSGSIZE: case -EPROTO:
	case -EREMOTE:
		return -EAGAIN;
	default:
		return ret;
	}
}

/* kill(2): EPERM, ESRCH, and EAGAIN as a local real-time signal's. */
#define VPROC_KILL_OK	(VPROC_OK_EPERM | VPROC_OK_EAGAIN)

int vproc_route_kill(pid_t pid, int sig, const struct kernel_siginfo *info)
{
	struct vproc_kill_req req;

	if (!valid_signal(sig) || sig < 0)
		return -EINVAL;
	if (vproc_kill_req(&req, pid, sig, info))
		return -EPERM;
	return vproc_clamp(vproc_route(pid, vproc_kill_fn, &req, NULL),
			   VPROC_KILL_OK);
}

/*
 * kill(-pgid) on the other UP nodes: one work item per node, all at once,
 * and one deadline (VPROC_TIMEOUT) for the whole fan-out: the caller
 * stops waiting then, and a node that has not answered counts as having
 * no member of the group.  The calls' shared state is refcounted, so a
 * straggler finishes on its own.
 */
struct vproc_fanout;

struct vproc_fanout_call {
	struct work_struct work;
	struct vproc_fanout *fo;
	unsigned int node;
	int ret;
	bool done;
};

struct vproc_fanout {
	struct kref ref;
	struct completion all_done;
	atomic_t pending;
	unsigned long deadline;
	struct vproc_kill_req req;
	unsigned int nr;
	struct vproc_fanout_call calls[];
};

static struct workqueue_struct *vproc_fanout_wq;

static void vproc_fanout_free(struct kref *ref)
{
	kfree(container_of(ref, struct vproc_fanout, ref));
}

static void vproc_fanout_fn(struct work_struct *work)
{
	struct vproc_fanout_call *c =
		container_of(work, struct vproc_fanout_call, work);
	struct vproc_fanout *fo = c->fo;
	long left = (long)(fo->deadline - jiffies);
	struct vproc_kill_rep rep;
	int ret = -ETIMEDOUT;

	if (left > 0)
		ret = ics_vproc_kill(c->node, &fo->req, &rep, left);
	c->ret = ret;
	/* Pairs with smp_load_acquire() in vproc_fanout_kill(). */
	smp_store_release(&c->done, true);
	if (atomic_dec_and_test(&fo->pending))
		complete(&fo->all_done);
	kref_put(&fo->ref, vproc_fanout_free);
}

/*
 * @req, a kill(-pgid), on every other UP node under one deadline.  Merged
 * like __kill_pgrp_info(), with @ret the local result: success if any
 * delivery succeeded (here or on another node), else the last real error
 * (EPERM over ESRCH).
 */
static int vproc_fanout_kill(const struct vproc_kill_req *req, int ret)
{
	bool success = !ret;
	struct vproc_fanout *fo;
	unsigned int node, i;
	long left;
	u64 up;
	int err;

	up = clms_up_nodes() & ~BIT_ULL(vproc_self());
	if (!up)
		return ret;
	fo = kzalloc(struct_size(fo, calls, hweight64(up)), GFP_KERNEL);
	if (!fo)
		return success ? 0 : ret;
	fo->req = *req;
	kref_init(&fo->ref);
	init_completion(&fo->all_done);
	fo->deadline = jiffies + VPROC_TIMEOUT;
	for (node = 1; node <= SSI_MAX_NODES; node++) {
		if (!(up & BIT_ULL(node)))
			continue;
		fo->calls[fo->nr].node = node;
		fo->calls[fo->nr].fo = fo;
		INIT_WORK(&fo->calls[fo->nr].work, vproc_fanout_fn);
		fo->nr++;
	}
	atomic_set(&fo->pending, fo->nr);
	for (i = 0; i < fo->nr; i++) {
		kref_get(&fo->ref);
		queue_work(vproc_fanout_wq, &fo->calls[i].work);
	}

	left = (long)(fo->deadline - jiffies);
	if (left > 0)
		wait_for_completion_timeout(&fo->all_done, left);
	for (i = 0; i < fo->nr; i++) {
		struct vproc_fanout_call *c = &fo->calls[i];

		/* Pairs with smp_store_release() in vproc_fanout_fn(). */
		if (!smp_load_acquire(&c->done))
			continue;	/* no answer in time: as ESRCH */
		err = vproc_clamp(c->ret, VPROC_KILL_OK);
		if (!err)
			success = true;
		else if (err != -ESRCH)
			ret = err;
	}
	kref_put(&fo->ref, vproc_fanout_free);
	return success ? 0 : ret;
}

int vproc_kill_pgrp(pid_t pgid, int sig, const struct kernel_siginfo *info,
		    int ret)
{
	struct vproc_kill_req *req;

	if (!valid_signal(sig) || sig < 0)
		return ret;
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return ret;
	if (vproc_kill_req(req, -pgid, sig, info))
		ret = ret ? -EPERM : 0;
	else
		ret = vproc_fanout_kill(req, ret);
	kfree(req);
	return ret;
}

/*
 * A terminal's signals to a process group (kill_pgrp()) go to the other
 * nodes from here, one at a time and in order (Ctrl-Z before the SIGCONT
 * of a later fg), after kill_pgrp() has returned: it may hold the
 * terminal's locks and cannot wait for other nodes.
 */
static struct workqueue_struct *vproc_pgrp_signal_wq;

struct vproc_pgrp_signal {
	struct work_struct work;
	struct vproc_kill_req req;
};

static void vproc_pgrp_signal_fn(struct work_struct *work)
{
	struct vproc_pgrp_signal *s =
		container_of(work, struct vproc_pgrp_signal, work);

	/* as for kill_pgrp(): nobody waits for the outcome */
	vproc_fanout_kill(&s->req, 0);
	kfree(s);
}

/* struct ssi_vproc_ops.kill_pgrp: any context, never sleeps. */
void vproc_queue_pgrp_signal(pid_t pgid, int sig, bool priv)
{
	struct vproc_pgrp_signal *s;
	struct ssi_creds c;

	if (!valid_signal(sig) || sig <= 0 || !vproc_is_cluster_pid(pgid))
		return;
	s = kzalloc(sizeof(*s), GFP_ATOMIC);
	if (!s) {
		pr_warn_ratelimited("signal %d to group %d: not sent to other nodes (no memory)\n",
				    sig, pgid);
		return;
	}
	s->req.pid = -pgid;
	s->req.sig = sig;
	if (priv) {
		s->req.kernel = 1;
	} else {
		/* sent as current, who may be in too many groups to say */
		if (ssi_creds_current(&c)) {
			kfree(s);
			return;
		}
		s->req.sender_pid = task_tgid_nr(current);
		SSI_CREDS_TO_REQ(&s->req, &c);
	}
	INIT_WORK(&s->work, vproc_pgrp_signal_fn);
	queue_work(vproc_pgrp_signal_wq, &s->work);
}

struct vproc_task_call {
	struct vproc_task_req req;
	struct vproc_task_rep rep;
};

static int vproc_task_fn(unsigned int node, void *arg)
{
	struct vproc_task_call *c = arg;

	if (node == vproc_self())
		return vproc_srv_task(node, &c->req, &c->rep);
	return ics_vproc_task(node, &c->req, &c->rep, VPROC_TIMEOUT);
}

/* The errnos each call may return besides ESRCH (abi/ERRNOS.md). */
static unsigned int vproc_task_ok(u32 op)
{
	switch (op) {
	case SSI_VPROC_GETPGID:
	case SSI_VPROC_GETSID:
		return VPROC_OK_EPERM;
	case SSI_VPROC_SETPRIO:
		return VPROC_OK_EPERM | VPROC_OK_EACCES;
	default:
		return 0;
	}
}

long vproc_route_task(u32 op, pid_t pid, int arg)
{
	struct vproc_task_call c = {
		.req = { .op = op, .pid = pid, .arg = arg },
	};
	struct ssi_creds creds;
	int ret;

	if (ssi_creds_current(&creds))
		return op == SSI_VPROC_GETPRIO ? -ESRCH : -EPERM;
	SSI_CREDS_TO_REQ(&c.req, &creds);
	ret = vproc_clamp(vproc_route(pid, vproc_task_fn, &c, NULL),
			  vproc_task_ok(op));
	if (ret)
		return ret;
	if (op == SSI_VPROC_SETPRIO)
		return 0;
	/*
	 * A value no process can have is an unusable answer, as if the node
	 * were unreachable (a process group or session 0 is what the children
	 * of the kernel's own threads have).
	 */
	if (c.rep.value < 0 || c.rep.value > INT_MAX ||
	    (op == SSI_VPROC_GETPRIO && c.rep.value > 40))
		return -ESRCH;
	return c.rep.value;
}

struct vproc_attr_call {
	struct vproc_attr_req req;
	struct vproc_attr_rep rep;
};

static int vproc_attr_fn(unsigned int node, void *arg)
{
	struct vproc_attr_call *c = arg;

	if (node == vproc_self())
		return -ESRCH;	/* not here after all: a race with exit */
	return ics_vproc_attr(node, &c->req, &c->rep, VPROC_TIMEOUT);
}

int vproc_route_attr(pid_t pid, unsigned int *node, u32 *uid, u32 *gid)
{
	struct vproc_attr_call c = { .req = { .pid = pid } };
	int ret;

	ret = vproc_route(pid, vproc_attr_fn, &c, node);
	if (ret)
		return vproc_errno(ret);
	*uid = c.rep.uid;
	*gid = c.rep.gid;
	return 0;
}

struct vproc_read_call {
	struct vproc_read_req req;
	struct vproc_read_rep *rep;
};

static int vproc_read_fn(unsigned int node, void *arg)
{
	struct vproc_read_call *c = arg;

	if (node == vproc_self())
		return -ESRCH;
	return ics_vproc_read(node, &c->req, c->rep, VPROC_TIMEOUT);
}

/*
 * /proc/<pid>/<name> of a process on another node; kvfree() the reply.
 * open(2) of it fails with what the serving procfs said (EACCES, EPERM,
 * ENOENT, ENOMEM) or ESRCH.
 */
struct vproc_read_rep *vproc_route_read(pid_t pid, const char *name)
{
	struct vproc_read_call *c;
	struct ssi_creds creds;
	struct vproc_read_rep *rep;
	int ret;

	if (vproc_readable_index(name) < 0)
		return ERR_PTR(-ENOENT);
	if (ssi_creds_current(&creds))
		return ERR_PTR(-EACCES);
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return ERR_PTR(-ENOMEM);
	c->req.pid = pid;
	strscpy(c->req.name, name, sizeof(c->req.name));
	SSI_CREDS_TO_REQ(&c->req, &creds);
	c->rep = kvzalloc(sizeof(*c->rep), GFP_KERNEL);
	if (!c->rep) {
		kfree(c);
		return ERR_PTR(-ENOMEM);
	}
	ret = vproc_clamp(vproc_route(pid, vproc_read_fn, c, NULL),
			  VPROC_OK_EPERM | VPROC_OK_EACCES | VPROC_OK_ENOENT |
			  VPROC_OK_ENOMEM);
	rep = c->rep;
	kfree(c);
	if (ret) {
		kvfree(rep);
		return ERR_PTR(ret);
	}
	return rep;
}

bool vproc_proc_file_ok(const char *name, bool *private)
{
	int idx = vproc_readable_index(name);

	if (idx < 0)
		return false;
	*private = vproc_readable[idx].private;
	return true;
}

const char *vproc_proc_file_name(unsigned int i)
{
	return i < ARRAY_SIZE(vproc_readable) ? vproc_readable[i].name : NULL;
}

/* Fetch @node's process list; every field is checked before use. */
int vproc_list_node(unsigned int node, struct vproc_list_rep *rep)
{
	struct vproc_list_req req = { .flags = 0 };
	u32 i, n;
	int ret;

	ret = ics_vproc_list(node, &req, rep, VPROC_TIMEOUT);
	if (ret)
		return vproc_errno(ret);
	n = rep->pid_count;
	if (rep->ppid_count != n || rep->pgid_count != n ||
	    rep->sid_count != n || rep->uid_count != n ||
	    rep->euid_count != n || rep->egid_count != n ||
	    rep->state_count != n || rep->start_ns_count != n ||
	    rep->comm_len != n * VPROC_COMM_LEN)
		return -EBADMSG;
	for (i = 0; i < n; i++) {
		if (!vproc_is_cluster_pid(rep->pid[i]))
			return -EBADMSG;
		rep->comm[i * VPROC_COMM_LEN + VPROC_COMM_LEN - 1] = '\0';
	}
	return 0;
}

int vproc_ops_init(void)
{
	struct super_block *sb;
	int ret;

	vproc_fanout_wq = alloc_workqueue("vproc_fanout", WQ_UNBOUND, 0);
	if (!vproc_fanout_wq)
		return -ENOMEM;
	vproc_pgrp_signal_wq = alloc_ordered_workqueue("vproc_pgrp_signal", 0);
	if (!vproc_pgrp_signal_wq) {
		destroy_workqueue(vproc_fanout_wq);
		return -ENOMEM;
	}

	ret = kern_path("/proc", LOOKUP_FOLLOW | LOOKUP_DIRECTORY,
			&vproc_proc_root);
	if (ret) {
		pr_err("cannot find /proc: %d\n", ret);
		destroy_workqueue(vproc_pgrp_signal_wq);
		destroy_workqueue(vproc_fanout_wq);
		return ret;
	}
	sb = vproc_proc_root.dentry->d_sb;
	if (sb->s_magic != PROC_SUPER_MAGIC ||
	    vproc_proc_root.dentry != sb->s_root ||
	    proc_pid_ns(sb) != &init_pid_ns) {
		pr_err("/proc is not the initial PID namespace's procfs root\n");
		path_put(&vproc_proc_root);
		destroy_workqueue(vproc_pgrp_signal_wq);
		destroy_workqueue(vproc_fanout_wq);
		return -ENOENT;
	}
	return 0;
}

void vproc_ops_exit(void)
{
	/*
	 * The hooks are unregistered: no signal is queued any more.  Waits
	 * for the queued ones, then for a fan-out's stragglers (each bounded
	 * by VPROC_TIMEOUT).
	 */
	destroy_workqueue(vproc_pgrp_signal_wq);
	destroy_workqueue(vproc_fanout_wq);
	path_put(&vproc_proc_root);
}
