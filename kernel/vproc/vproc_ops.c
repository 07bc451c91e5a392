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
#include <linux/magic.h>
#include <linux/mm.h>
#include <linux/namei.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <linux/uidgid.h>

#include "clms.h"
#include "ics.h"
#include "vproc_gen.h"
#include "vproc_ics.h"
#include "vproc_internal.h"

/* /proc of this node's initial PID namespace; remote reads open below it. */
static struct path vproc_proc_root;

/*
 * Files of /proc/<pid> another node may read here.  environ is private:
 * the reader must pass the ptrace-read rule checked in vproc_may_peek().
 */
static const struct {
	const char *name;
	bool private;
} vproc_readable[] = {
	{ "cgroup" }, { "cmdline" }, { "comm" }, { "environ", true },
	{ "io", true }, { "limits" }, { "oom_score" }, { "stat" },
	{ "statm" }, { "status" }, { "wchan" },
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

/* Credentials of a remote caller for check_kill_permission() and friends. */
static struct cred *vproc_make_cred(u32 uid, u32 euid, u32 caps)
{
	kuid_t kuid = make_kuid(&init_user_ns, uid);
	kuid_t keuid = make_kuid(&init_user_ns, euid);
	struct cred *cred;

	if (!uid_valid(kuid) || !uid_valid(keuid))
		return ERR_PTR(-EINVAL);
	cred = prepare_kernel_cred(NULL);
	if (!cred)
		return ERR_PTR(-ENOMEM);
	cred->uid = kuid;
	cred->suid = kuid;
	cred->euid = keuid;
	cred->fsuid = keuid;
	cap_clear(cred->cap_inheritable);
	cap_clear(cred->cap_permitted);
	cap_clear(cred->cap_effective);
	cap_clear(cred->cap_ambient);
	if (caps & VPROC_CAP_KILL)
		cap_raise(cred->cap_effective, CAP_KILL);
	if (caps & VPROC_CAP_SYS_NICE)
		cap_raise(cred->cap_effective, CAP_SYS_NICE);
	cred->cap_permitted = cred->cap_effective;
	return cred;
}

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

	if (!valid_signal(req->sig) || req->sig < 0)
		return -EINVAL;
	if (pid > 0) {
		if (!vproc_is_cluster_pid(pid))
			return -EINVAL;
		ret = vproc_here(pid);
		if (ret)
			return ret;
	} else if (pid == INT_MIN || !vproc_is_cluster_pid(-pid)) {
		return -EINVAL;
	}

	cred = vproc_make_cred(req->uid, req->euid, req->caps);
	if (IS_ERR(cred))
		return PTR_ERR(cred);
	clear_siginfo(&info);
	info.si_signo = req->sig;
	info.si_errno = 0;
	info.si_code = SI_USER;
	info.si_pid = req->sender_pid;
	info.si_uid = req->sender_uid;

	old = override_creds(cred);
	ret = ssi_kill_local(req->sig, &info, pid);
	revert_creds(old);
	put_cred(cred);
	return ret;
}

static int vproc_setprio(struct task_struct *p, const struct vproc_task_req *req)
{
	kuid_t euid = make_kuid(&init_user_ns, req->euid);
	bool cap_nice = req->caps & VPROC_CAP_SYS_NICE;
	int niceval = clamp_t(int, req->arg, MIN_NICE, MAX_NICE);
	const struct cred *tcred;
	bool ok;

	rcu_read_lock();
	tcred = __task_cred(p);
	ok = uid_eq(tcred->uid, euid) || uid_eq(tcred->euid, euid) || cap_nice;
	rcu_read_unlock();
	if (!ok)
		return -EPERM;
	if (niceval < task_nice(p) && !cap_nice &&
	    nice_to_rlimit(niceval) > task_rlimit(p, RLIMIT_NICE))
		return -EACCES;
	set_user_nice(p, niceval);
	return 0;
}

int vproc_srv_task(unsigned int from, const struct vproc_task_req *req,
		   struct vproc_task_rep *rep)
{
	struct task_struct *p;
	long value = 0;
	int ret;

	if (!vproc_is_cluster_pid(req->pid) || req->op > SSI_VPROC_SETPRIO)
		return -EINVAL;
	ret = vproc_here(req->pid);
	if (ret)
		return ret;
	p = vproc_get_task(req->pid);
	if (!p)
		return -ESRCH;

	switch (req->op) {
	case SSI_VPROC_GETPGID:
		value = task_pgrp_nr_ns(p, &init_pid_ns);
		break;
	case SSI_VPROC_GETSID:
		value = task_session_nr_ns(p, &init_pid_ns);
		break;
	case SSI_VPROC_GETPRIO:
		value = nice_to_rlimit(task_nice(p));
		break;
	case SSI_VPROC_SETPRIO:
		ret = vproc_setprio(p, req);
		break;
	}
	put_task_struct(p);
	rep->value = value;
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

/* The ptrace-read rule for a remote reader of environ and io. */
static int vproc_may_peek(pid_t pid, const struct vproc_read_req *req)
{
	kuid_t uid = make_kuid(&init_user_ns, req->fsuid);
	kgid_t gid = make_kgid(&init_user_ns, req->fsgid);
	const struct cred *tcred;
	struct task_struct *p;
	bool ok, dumpable;

	if (req->caps & VPROC_CAP_SYS_PTRACE)
		return 0;
	p = vproc_get_task(pid);
	if (!p)
		return -ESRCH;
	task_lock(p);
	dumpable = p->mm && get_dumpable(p->mm) == SUID_DUMP_USER;
	task_unlock(p);
	rcu_read_lock();
	tcred = __task_cred(p);
	ok = uid_eq(uid, tcred->euid) && uid_eq(uid, tcred->suid) &&
	     uid_eq(uid, tcred->uid) && gid_eq(gid, tcred->egid) &&
	     gid_eq(gid, tcred->sgid) && gid_eq(gid, tcred->gid);
	rcu_read_unlock();
	put_task_struct(p);
	return ok && dumpable ? 0 : -EACCES;
}

/*
 * cmdline and environ: procfs copies them straight to user memory, so they
 * are read here from the process's memory as procfs does (cmdline of a
 * process that rewrote its arguments: up to the first NUL).
 */
static int vproc_read_vm(pid_t pid, bool env, u8 *buf, size_t cap,
			 size_t *len)
{
	unsigned long start, end;
	struct task_struct *p;
	struct mm_struct *mm;
	int got = 0;

	p = vproc_get_task(pid);
	if (!p)
		return -ESRCH;
	mm = get_task_mm(p);
	if (mm) {
		spin_lock(&mm->arg_lock);
		start = env ? mm->env_start : mm->arg_start;
		end = env ? mm->env_end : mm->arg_end;
		spin_unlock(&mm->arg_lock);
		mmput(mm);
		if (end > start)
			got = access_process_vm(p, start, buf,
						min_t(size_t, end - start, cap),
						FOLL_FORCE);
		if (got < 0)
			got = 0;
		if (!env && got && buf[got - 1])
			got = strnlen(buf, got);
	}
	put_task_struct(p);
	*len = got;
	return 0;
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

int vproc_srv_read(unsigned int from, const struct vproc_read_req *req,
		   struct vproc_read_rep *rep)
{
	char path[48];
	struct file *f;
	loff_t pos = 0;
	size_t len = 0;
	ssize_t n;
	int idx, ret;

	if (!vproc_is_cluster_pid(req->pid))
		return -EINVAL;
	idx = vproc_readable_index(req->name);
	if (idx < 0)
		return idx;
	ret = vproc_here(req->pid);
	if (ret)
		return ret;
	if (vproc_readable[idx].private) {
		ret = vproc_may_peek(req->pid, req);
		if (ret)
			return ret;
	}
	if (!strcmp(req->name, "cmdline") || !strcmp(req->name, "environ")) {
		ret = vproc_read_vm(req->pid, req->name[0] == 'e', rep->data,
				    sizeof(rep->data), &len);
		rep->data_len = len;
		return ret;
	}

	snprintf(path, sizeof(path), "%d/%s", req->pid, req->name);
	f = file_open_root(&vproc_proc_root, path, O_RDONLY, 0);
	if (IS_ERR(f))
		return PTR_ERR(f) == -ENOENT ? -ESRCH : PTR_ERR(f);
	while (len < sizeof(rep->data)) {
		n = vproc_read_file(f, rep->data + len,
				    sizeof(rep->data) - len, &pos);
		if (n < 0) {
			ret = n;
			break;
		}
		if (!n)
			break;
		len += n;
	}
	fput(f);
	rep->data_len = len;
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
		if (i >= ARRAY_SIZE(rep->pid))
			break;
		rep->pid[i] = tgid;
		rep->ppid[i] = task_tgid_nr(rcu_dereference(p->real_parent));
		rep->pgid[i] = task_pgrp_nr_ns(p, &init_pid_ns);
		rep->sid[i] = task_session_nr_ns(p, &init_pid_ns);
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
 * Where to send a call about @pid: its origin while it is UP (it serves
 * or answers EREMOTE), else, when @ask_origin or the origin is down, the
 * node that says it runs @pid.
 */
int vproc_locate(pid_t pid, unsigned int *node, bool ask_origin)
{
	unsigned int origin = vproc_origin(pid), n;
	struct vproc_where_req req = { .pid = pid };
	struct vproc_where_rep rep;
	u64 up;
	int ret;

	if (origin == vproc_self())
		return vproc_where_here(pid, node);
	if (clms_node_is_up(origin)) {
		if (!ask_origin) {
			*node = origin;
			return 0;
		}
		ret = ics_vproc_where(origin, &req, &rep, VPROC_TIMEOUT);
		if (ret)
			return vproc_errno(ret);
		if (rep.node < 1 || rep.node > SSI_MAX_NODES)
			return -EBADMSG;
		*node = rep.node;
		return 0;
	}
	up = clms_up_nodes();
	for (n = 1; n <= SSI_MAX_NODES; n++) {
		if (!(up & BIT_ULL(n)) || n == vproc_self())
			continue;
		ret = ics_vproc_where(n, &req, &rep, VPROC_TIMEOUT);
		if (!ret && rep.node == n) {
			*node = n;
			return 0;
		}
	}
	return -ESRCH;
}

typedef int (*vproc_call_fn)(unsigned int node, void *arg);

/* Run @fn where @pid runs; one retry after asking its origin. */
static int vproc_route(pid_t pid, vproc_call_fn fn, void *arg,
		       unsigned int *where)
{
	unsigned int node;
	int ret;

	ret = vproc_locate(pid, &node, false);
	if (ret)
		return vproc_errno(ret);
	ret = fn(node, arg);
	if (ret == -EREMOTE) {
		ret = vproc_locate(pid, &node, true);
		if (!ret)
			ret = fn(node, arg);
	}
	if (!ret && where)
		*where = node;
	return vproc_errno(ret);
}

static int vproc_kill_fn(unsigned int node, void *arg)
{
	struct vproc_kill_rep rep;

	if (node == vproc_self())
		return vproc_srv_kill(node, arg, &rep);
	return ics_vproc_kill(node, arg, &rep, VPROC_TIMEOUT);
}

static void vproc_kill_req(struct vproc_kill_req *req, pid_t pid, int sig,
			   const struct kernel_siginfo *info)
{
	const struct cred *cred = current_cred();

	req->pid = pid;
	req->sig = sig;
	req->sender_pid = info->si_pid;
	req->sender_uid = info->si_uid;
	req->uid = from_kuid_munged(&init_user_ns, cred->uid);
	req->euid = from_kuid_munged(&init_user_ns, cred->euid);
	req->caps = vproc_caps();
}

int vproc_route_kill(pid_t pid, int sig, const struct kernel_siginfo *info)
{
	struct vproc_kill_req req;

	if (!valid_signal(sig) || sig < 0)
		return -EINVAL;
	vproc_kill_req(&req, pid, sig, info);
	return vproc_route(pid, vproc_kill_fn, &req, NULL);
}

/*
 * kill(-pgid) reaches the group's members on every UP node; merged like
 * __kill_pgrp_info(): success if any delivery succeeded, else the last
 * real error (EPERM over ESRCH).
 */
int vproc_kill_pgrp(pid_t pgid, int sig, const struct kernel_siginfo *info,
		    int ret)
{
	struct vproc_kill_req req;
	struct vproc_kill_rep rep;
	bool success = !ret;
	unsigned int node;
	u64 up;
	int err;

	if (!valid_signal(sig) || sig < 0)
		return ret;
	vproc_kill_req(&req, -pgid, sig, info);
	up = clms_up_nodes();
	for (node = 1; node <= SSI_MAX_NODES; node++) {
		if (!(up & BIT_ULL(node)) || node == vproc_self())
			continue;
		err = vproc_errno(ics_vproc_kill(node, &req, &rep,
						 VPROC_TIMEOUT));
		if (!err)
			success = true;
		else if (err != -ESRCH)
			ret = err;
	}
	return success ? 0 : ret;
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

long vproc_route_task(u32 op, pid_t pid, int arg)
{
	const struct cred *cred = current_cred();
	struct vproc_task_call c = {
		.req = {
			.op = op,
			.pid = pid,
			.arg = arg,
			.uid = from_kuid_munged(&init_user_ns, cred->uid),
			.euid = from_kuid_munged(&init_user_ns, cred->euid),
			.caps = vproc_caps(),
		},
	};
	int ret;

	ret = vproc_route(pid, vproc_task_fn, &c, NULL);
	if (ret)
		return ret;
	if (op == SSI_VPROC_SETPRIO)
		return 0;
	/* A process group or session 0 is what the kernel's own threads have. */
	if (c.rep.value < 0 || c.rep.value > INT_MAX ||
	    (op == SSI_VPROC_GETPRIO && (c.rep.value < 1 || c.rep.value > 40)))
		return -EIO;
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
		return ret;
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

/* /proc/<pid>/<name> of a process on another node; kvfree() the reply. */
struct vproc_read_rep *vproc_route_read(pid_t pid, const char *name)
{
	const struct cred *cred = current_cred();
	struct vproc_read_call c = {
		.req = {
			.pid = pid,
			.fsuid = from_kuid_munged(&init_user_ns, cred->fsuid),
			.fsgid = from_kgid_munged(&init_user_ns, cred->fsgid),
			.caps = vproc_caps(),
		},
	};
	int ret;

	if (vproc_readable_index(name) < 0)
		return ERR_PTR(-ENOENT);
	strscpy(c.req.name, name, sizeof(c.req.name));
	c.rep = kvzalloc(sizeof(*c.rep), GFP_KERNEL);
	if (!c.rep)
		return ERR_PTR(-ENOMEM);
	ret = vproc_route(pid, vproc_read_fn, &c, NULL);
	if (ret) {
		kvfree(c.rep);
		return ERR_PTR(ret);
	}
	return c.rep;
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

	ret = kern_path("/proc", LOOKUP_FOLLOW | LOOKUP_DIRECTORY,
			&vproc_proc_root);
	if (ret) {
		pr_err("cannot find /proc: %d\n", ret);
		return ret;
	}
	sb = vproc_proc_root.dentry->d_sb;
	if (sb->s_magic != PROC_SUPER_MAGIC ||
	    vproc_proc_root.dentry != sb->s_root ||
	    proc_pid_ns(sb) != &init_pid_ns) {
		pr_err("/proc is not the initial PID namespace's procfs root\n");
		path_put(&vproc_proc_root);
		return -ENOENT;
	}
	return 0;
}

void vproc_ops_exit(void)
{
	path_put(&vproc_proc_root);
}
