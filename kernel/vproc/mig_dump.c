// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration, source side: freeze the process in its own context (a
 * TWA_SIGNAL task_work, run on its way back to user mode), write its
 * image, offer it to the target, serve the target's page pulls from the
 * frozen address space, and on success leave the task behind as the
 * process's deputy.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/elf.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/futex.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/magic.h>
#include <linux/personality.h>
#include <linux/proc_fs.h>
#include <linux/ptrace.h>
#include <linux/regset.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <linux/task_work.h>
#include <linux/vmalloc.h>
#include <asm/cpufeature.h>

#include "cfs.h"
#include "clms.h"
#include "ics.h"
#include "migration_gen.h"
#include "mig_ics.h"
#include "mig_internal.h"
#include "vproc.h"
#include "rfile.h"

static LIST_HEAD(mig_outs);
static DEFINE_SPINLOCK(mig_out_lock);

struct mig_work {
	struct callback_head cb;
	unsigned int node;
	bool self;		/* migrate(): its errno becomes the return value */
	bool rfork;		/* an rfork child, not yet run: move or end */
	void *exec;		/* rexec: program and arguments (mig_image.h) */
	u32 exec_len;
	/* a move asked from outside pre-copies first, in mig_wq */
	struct work_struct precopy;
	struct task_struct *task;
	struct mig_out *pre;
	bool deferred;		/* requeued behind the task works before it */
};

/* rfork children on their way out, and what their parent is told. */
struct mig_rfork {
	struct list_head link;
	pid_t pid;
	int status;		/* 1 while pending */
	struct completion done;
};

static LIST_HEAD(mig_rforks);
static DEFINE_SPINLOCK(mig_rfork_lock);

static void mig_rfork_done(pid_t pid, int status)
{
	struct mig_rfork *rf;

	spin_lock(&mig_rfork_lock);
	list_for_each_entry(rf, &mig_rforks, link) {
		if (rf->pid == pid && rf->status == 1) {
			rf->status = status;
			complete(&rf->done);
			break;
		}
	}
	spin_unlock(&mig_rfork_lock);
}

/* The parent of an rfork child: did it get to its node? */
int mig_rfork_wait(pid_t pid)
{
	struct mig_rfork *rf, *found = NULL;
	int ret;

	spin_lock(&mig_rfork_lock);
	list_for_each_entry(rf, &mig_rforks, link) {
		if (rf->pid == pid) {
			found = rf;
			break;
		}
	}
	spin_unlock(&mig_rfork_lock);
	if (!found)
		return 0;	/* rfork to this node: a plain fork */
	ret = wait_for_completion_killable(&found->done);
	spin_lock(&mig_rfork_lock);
	list_del(&found->link);
	if (!ret)
		ret = found->status;
	spin_unlock(&mig_rfork_lock);
	kfree(found);
	return ret;
}

/* Bytes written into an image being built, bounded by its capacity. */
struct mig_buf {
	u8 *p;
	size_t len;
	size_t cap;
};

static void *mig_put(struct mig_buf *b, const void *data, size_t len)
{
	void *at;

	if (len > b->cap - b->len)
		return NULL;
	at = b->p + b->len;
	if (data)
		memcpy(at, data, len);
	b->len += len;
	return at;
}

const struct user_regset *mig_regset(unsigned int note)
{
	const struct user_regset_view *view = task_user_regset_view(current);
	unsigned int i;

	for (i = 0; i < view->n; i++)
		if (view->regsets[i].core_note_type == note)
			return &view->regsets[i];
	return NULL;
}

unsigned int mig_fpu_note(void)
{
	return boot_cpu_has(X86_FEATURE_XSAVE) ? NT_X86_XSTATE : NT_PRFPREG;
}

/*
 * A file other nodes can map as the same file: on CFS (mounted at the same
 * path there; the target checks it is the same file, and pages stay
 * coherent through the server's recalls, so a shared writable mapping's
 * dirty pages here are written back when the target first touches them),
 * or on a read-only filesystem the admin declares identical on every node
 * (module parameter shared_ro_fs: the harness's guests share the host root
 * over 9p and one EROFS image of the interpreter and its libraries).
 */
static bool mig_shared_fs(struct file *file)
{
	struct super_block *sb = file_inode(file)->i_sb;
	const char *list = migration_shared_ro_fs, *type = sb->s_type->name;
	size_t len = strlen(type);

	/* CFS: the same file on every node that mounts it, pages coherent */
	if (cfs_backing_file(file))
		return true;
	if (!sb_rdonly(sb) || !list)
		return false;
	while (*list) {
		const char *end = strchrnul(list, ',');

		if (end - list == len && !strncmp(list, type, len))
			return true;
		list = *end ? end + 1 : end;
	}
	return false;
}

/*
 * A file under /proc/<pid> of the moving process itself: /proc/<pid>
 * follows the process, so the same path on the target names the same
 * entry.  Left behind, it would answer only where the process is no more
 * (ESRCH; its home, where the deputy stands in, is the exception).
 */
static bool mig_own_proc_file(struct file *file)
{
	struct super_block *sb = file_inode(file)->i_sb;
	struct dentry *d = file->f_path.dentry;
	struct name_snapshot name;
	int nr;
	bool own;

	if (sb->s_magic != PROC_SUPER_MAGIC || IS_ROOT(d))
		return false;
	/* procfs never renames: the chain is stable while the file pins it */
	while (!IS_ROOT(d->d_parent))
		d = d->d_parent;
	take_dentry_name_snapshot(&name, d);
	own = !kstrtoint(name.name.name, 10, &nr) &&
	      nr == task_tgid_nr_ns(current, proc_pid_ns(sb));
	release_dentry_name_snapshot(&name);
	return own;
}

/* A file the target can open by path as the very same file. */
static bool mig_reopenable(struct file *file)
{
	struct inode *inode = file_inode(file);

	if (mig_own_proc_file(file))
		return S_ISREG(inode->i_mode) || S_ISDIR(inode->i_mode);
	if (mig_shared_fs(file) && !(file->f_mode & FMODE_WRITE))
		return S_ISREG(inode->i_mode) || S_ISDIR(inode->i_mode);
	/* Stateless character devices, the same on every node. */
	if (S_ISCHR(inode->i_mode) && imajor(inode) == 1) {
		switch (iminor(inode)) {
		case 3: case 5: case 7: case 8: case 9:	/* null zero full random urandom */
			return true;
		}
	}
	return false;
}

bool mig_special_vma(struct vm_area_struct *vma, const char **name)
{
	*name = NULL;
	if (vma->vm_ops && vma->vm_ops->name)
		*name = vma->vm_ops->name(vma);
	return !!*name;
}

static bool mig_uses_io_uring(struct task_struct *t)
{
#ifdef CONFIG_IO_URING
	if (t->io_uring)
		return true;
#endif
	return t->flags & PF_IO_WORKER;
}

static u64 mig_cap(kernel_cap_t c)
{
	return (u64)c.cap[1] << 32 | c.cap[0];
}

/*
 * The image carries one set of credentials, the mover's: a thread that
 * changed its own (a raw setuid(2), not glibc's broadcast) would get
 * them too.
 */
static bool mig_same_creds(const struct cred *a, const struct cred *b)
{
	const struct group_info *ga = a->group_info, *gb = b->group_info;
	int i;

	if (a == b)
		return true;
	if (!uid_eq(a->uid, b->uid) || !uid_eq(a->euid, b->euid) ||
	    !uid_eq(a->suid, b->suid) || !uid_eq(a->fsuid, b->fsuid) ||
	    !gid_eq(a->gid, b->gid) || !gid_eq(a->egid, b->egid) ||
	    !gid_eq(a->sgid, b->sgid) || !gid_eq(a->fsgid, b->fsgid) ||
	    a->securebits != b->securebits ||
	    mig_cap(a->cap_inheritable) != mig_cap(b->cap_inheritable) ||
	    mig_cap(a->cap_permitted) != mig_cap(b->cap_permitted) ||
	    mig_cap(a->cap_effective) != mig_cap(b->cap_effective) ||
	    mig_cap(a->cap_bset) != mig_cap(b->cap_bset) ||
	    mig_cap(a->cap_ambient) != mig_cap(b->cap_ambient))
		return false;
	if (ga == gb)
		return true;
	if (ga->ngroups != gb->ngroups)
		return false;
	for (i = 0; i < ga->ngroups; i++)
		if (!gid_eq(ga->gid[i], gb->gid[i]))
			return false;
	return true;
}

/*
 * A process leaving a node that is not its home with children there
 * leaves a sub-deputy to keep them (step 4 of the protocol): else they
 * would be reparented to this node's reaper, and its wait() elsewhere
 * would never see them or their exit status.  Called with every other
 * thread parked, so none of them forks meanwhile; a child that exits only
 * empties the lists, and list_empty() reads each head once.
 */
static bool mig_has_children_here(struct task_struct *p)
{
	struct task_struct *t;
	bool found = false;

	rcu_read_lock();
	for_each_thread(p, t) {
		if (!list_empty(&t->children)) {
			found = true;
			break;
		}
	}
	rcu_read_unlock();
	return found;
}

/*
 * Does a task outside @p's thread group run on its mm (CLONE_VM, vfork)?
 * mm_users alone cannot say: every /proc/PID/stat or cmdline read and
 * every ptrace access holds a passing reference, and refusing a move for
 * one of those was a spurious EBUSY.  So count first, then look.
 */
static bool mig_mm_shared(struct task_struct *p)
{
	struct mm_struct *mm = p->mm;
	struct task_struct *g, *t;
	bool shared = false;

	if (atomic_read(&mm->mm_users) <= get_nr_threads(p))
		return false;
	rcu_read_lock();
	for_each_process(g) {
		if (same_thread_group(g, p))
			continue;
		for_each_thread(g, t) {
			if (READ_ONCE(t->mm) == mm) {
				shared = true;
				goto out;
			}
		}
	}
out:
	rcu_read_unlock();
	return shared;
}

/*
 * Fault injection aimed at the process (/proc/PID/make-it-fail) went with
 * it: what is left here, threads that end and a deputy, tears down and
 * serves without it.  Failing allocations while the 9p root's files close
 * left that node unable to exec anything (the 9p client does not survive a
 * failed allocation mid-request).
 */
static void mig_drop_fault_injection(struct task_struct *p)
{
#ifdef CONFIG_FAULT_INJECTION
	struct task_struct *t;

	rcu_read_lock();
	for_each_thread(p, t)
		WRITE_ONCE(t->make_it_fail, 0);
	rcu_read_unlock();
#endif
}

/* Refusals: what cannot move yet leaves the process exactly as it was. */
static int mig_check_movable(void)
{
	struct task_struct *p = current, *t;
	pid_t pid = task_tgid_nr(p);
	int ret = 0;

	if (get_nr_threads(p) > MIG_MAX_THREADS + 1) {
		mig_refuse(pid, "more than %d threads", MIG_MAX_THREADS + 1);
		return -EOPNOTSUPP;
	}
	if (p->signal->flags & SIGNAL_GROUP_EXIT || p->signal->group_exec_task)
		return -ESRCH;
	/* the image does not carry it: a rexec there would drop the sandbox */
	if (task_no_new_privs(p)) {
		mig_refuse(pid, "no_new_privs is set");
		return -EOPNOTSUPP;
	}
	if (!p->mm || mig_mm_shared(p)) {
		mig_refuse(pid, "shares its address space (vfork or CLONE_VM)");
		return -EBUSY;
	}
	rcu_read_lock();
	for_each_thread(p, t) {
		if (t->ptrace || !list_empty(&t->ptraced)) {
			mig_refuse(pid, "ptraced or ptracing");
			ret = -EBUSY;
		} else if (mig_uses_io_uring(t)) {
			mig_refuse(pid, "uses io_uring");
			ret = -EOPNOTSUPP;
#ifdef CONFIG_SECCOMP
		} else if (t->seccomp.mode) {
			mig_refuse(pid, "under seccomp");
			ret = -EOPNOTSUPP;
#endif
		} else if (t->vfork_done) {
			mig_refuse(pid, "a vfork child");
			ret = -EBUSY;
		} else if (!mig_same_creds(__task_cred(t), current_cred())) {
			mig_refuse(pid, "threads with different credentials");
			ret = -EOPNOTSUPP;
		}
		if (ret)
			break;
	}
	rcu_read_unlock();
	return ret;
}

static void mig_dump_creds(struct mig_img_hdr *h)
{
	const struct cred *c = current_cred();

	h->uid = cpu_to_le32(from_kuid_munged(&init_user_ns, c->uid));
	h->euid = cpu_to_le32(from_kuid_munged(&init_user_ns, c->euid));
	h->suid = cpu_to_le32(from_kuid_munged(&init_user_ns, c->suid));
	h->fsuid = cpu_to_le32(from_kuid_munged(&init_user_ns, c->fsuid));
	h->gid = cpu_to_le32(from_kgid_munged(&init_user_ns, c->gid));
	h->egid = cpu_to_le32(from_kgid_munged(&init_user_ns, c->egid));
	h->sgid = cpu_to_le32(from_kgid_munged(&init_user_ns, c->sgid));
	h->fsgid = cpu_to_le32(from_kgid_munged(&init_user_ns, c->fsgid));
	h->securebits = cpu_to_le32(c->securebits);
	h->cap_inheritable = cpu_to_le64(mig_cap(c->cap_inheritable));
	h->cap_permitted = cpu_to_le64(mig_cap(c->cap_permitted));
	h->cap_effective = cpu_to_le64(mig_cap(c->cap_effective));
	h->cap_bset = cpu_to_le64(mig_cap(c->cap_bset));
	h->cap_ambient = cpu_to_le64(mig_cap(c->cap_ambient));
}

static int mig_dump_groups(struct mig_img_hdr *h, struct mig_buf *b)
{
	const struct group_info *gi = current_cred()->group_info;
	int i;

	if (gi->ngroups > MIG_MAX_GROUPS)
		return -EOPNOTSUPP;
	for (i = 0; i < gi->ngroups; i++) {
		__le32 g = cpu_to_le32(from_kgid_munged(&init_user_ns,
							gi->gid[i]));

		if (!mig_put(b, &g, sizeof(g)))
			return -E2BIG;
	}
	h->nr_groups = cpu_to_le32(gi->ngroups);
	return 0;
}

/* The user registers as the thread will see them when it resumes. */
static int mig_dump_regs(__le64 *regs)
{
	const struct user_regset *rs = mig_regset(NT_PRSTATUS);
	struct user_regs_struct r;
	int ret, i;
	u64 *w = (u64 *)&r;

	BUILD_BUG_ON(sizeof(r) != MIG_NR_REGS * sizeof(u64));
	if (!rs)
		return -EOPNOTSUPP;
	ret = regset_get(current, rs, sizeof(r), &r);
	if (ret < 0)
		return ret;
	/* Interrupted in a system call: resume it on the target. */
	if ((long)r.orig_ax >= 0) {
		switch ((long)r.ax) {
		case -ERESTARTSYS:
		case -ERESTARTNOHAND:
		case -ERESTARTNOINTR:
			r.ax = r.orig_ax;
			r.ip -= 2;
			break;
		case -ERESTART_RESTARTBLOCK:
			/* restart_block holds kernel pointers of this node */
			r.ax = -EINTR;
			break;
		}
	}
	for (i = 0; i < MIG_NR_REGS; i++)
		regs[i] = cpu_to_le64(w[i]);
	return 0;
}

/* current's own state: registers, FPU, mask, stack, futex and rseq. */
static int mig_dump_thread(struct mig_thread_rec *rec)
{
	struct task_struct *t = current;
	const struct user_regset *rs = mig_regset(mig_fpu_note());
	sigset_t blocked;
	int ret;

	rec->task = t;
	rec->t.tid = cpu_to_le32(task_pid_nr(t));
	if (t->thread.fsindex || t->thread.gsindex || t->thread.gsbase) {
		mig_refuse(task_tgid_nr(t),
			   "thread %d uses segment TLS (set_thread_area or GS)",
			   task_pid_nr(t));
		return -EOPNOTSUPP;
	}
	ret = mig_dump_regs(rec->t.regs);
	if (ret)
		return ret;
	if (!rs)
		return -EOPNOTSUPP;
	ret = regset_get_alloc(t, rs, rs->n * rs->size, &rec->xstate);
	if (ret < 0)
		return ret;
	if (ret > MIG_MAX_XSTATE)
		return -E2BIG;
	rec->xstate_len = ret;
	rec->t.xstate_len = cpu_to_le32(ret);
	spin_lock_irq(&mig_sighand()->siglock);
	blocked = test_restore_sigmask() ? t->saved_sigmask : t->blocked;
	spin_unlock_irq(&mig_sighand()->siglock);
	rec->t.blocked = cpu_to_le64(blocked.sig[0]);
	rec->t.sas_ss_sp = cpu_to_le64(t->sas_ss_sp);
	rec->t.sas_ss_size = cpu_to_le64(t->sas_ss_size);
	rec->t.sas_ss_flags = cpu_to_le32(t->sas_ss_flags);
	rec->t.robust_list = cpu_to_le64((__force u64)t->robust_list);
	rec->t.clear_child_tid = cpu_to_le64((__force u64)t->clear_child_tid);
#ifdef CONFIG_RSEQ
	rec->t.rseq = cpu_to_le64((__force u64)t->rseq);
	rec->t.rseq_sig = cpu_to_le32(t->rseq_sig);
#endif
	get_task_comm(rec->t.comm, t);
	rec->t.nice = cpu_to_le32(task_nice(t));
	rec->t.personality = cpu_to_le32(t->personality);
	return 0;
}

static void mig_dump_signals(struct mig_img_hdr *h)
{
	struct sighand_struct *sh = mig_sighand();
	int i;

	spin_lock_irq(&sh->siglock);
	for (i = 0; i < MIG_NR_SIGS; i++) {
		const struct sigaction *sa = &sh->action[i].sa;

		h->act[i].handler = cpu_to_le64((__force u64)sa->sa_handler);
		h->act[i].flags = cpu_to_le64(sa->sa_flags);
#ifdef __ARCH_HAS_SA_RESTORER
		h->act[i].restorer = cpu_to_le64((__force u64)sa->sa_restorer);
#endif
		h->act[i].mask = cpu_to_le64(sa->sa_mask.sig[0]);
	}
	spin_unlock_irq(&sh->siglock);
}

static int mig_dump_sigq_list(struct list_head *list, bool shared,
			      struct mig_buf *b, u32 *nr)
{
	struct sigqueue *q;

	list_for_each_entry(q, list, list) {
		struct mig_img_sig s = {
			.signo = cpu_to_le32(q->info.si_signo),
			.code = cpu_to_le32(q->info.si_code),
			.pid = cpu_to_le32(q->info.si_pid),
			.uid = cpu_to_le32(q->info.si_uid),
			.shared = cpu_to_le32(shared),
		};

		if (*nr >= MIG_MAX_SIGQ || !mig_put(b, &s, sizeof(s)))
			return -E2BIG;
		(*nr)++;
	}
	return 0;
}

static int mig_dump_pending(struct mig_img_hdr *h, struct mig_buf *b)
{
	struct sighand_struct *sh = mig_sighand();
	u32 nr = 0;
	int ret;

	spin_lock_irq(&sh->siglock);
	ret = mig_dump_sigq_list(&current->pending.list, false, b, &nr);
	if (!ret)
		ret = mig_dump_sigq_list(&current->signal->shared_pending.list,
					 true, b, &nr);
	spin_unlock_irq(&sh->siglock);
	h->nr_sigq = cpu_to_le32(nr);
	return ret;
}

static int mig_put_path(struct mig_buf *b, const struct path *path,
			__le32 *len_out, char *scratch)
{
	char *p = d_path(path, scratch, PATH_MAX);
	size_t len;

	if (IS_ERR(p))
		return PTR_ERR(p);
	len = strlen(p);
	if (!mig_put(b, p, len))
		return -E2BIG;
	*len_out = cpu_to_le32(len);
	return 0;
}

static int mig_dump_vmas(struct mig_img_hdr *h, struct mig_buf *b,
			 char *scratch)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	u32 nr = 0;
	int ret = 0;

	VMA_ITERATOR(vmi, mm, 0);
	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		struct mig_img_vma *v;
		const char *special;
		u32 flags = 0;

		if (mig_special_vma(vma, &special)) {
			if (!strcmp(special, "[vdso]"))
				h->vdso_start = cpu_to_le64(vma->vm_start);
			else if (!strcmp(special, "[vvar]"))
				h->vvar_start = cpu_to_le64(vma->vm_start);
			else
				ret = -EOPNOTSUPP;
			if (ret)
				break;
			continue;
		}
		if (vma->vm_flags & (VM_IO | VM_PFNMAP | VM_MIXEDMAP | VM_HUGETLB)) {
			mig_refuse(task_tgid_nr(current),
				   "device or hugetlb mapping at %lx",
				   vma->vm_start);
			ret = -EOPNOTSUPP;
			break;
		}
		if (vma->vm_file && !mig_shared_fs(vma->vm_file)) {
			mig_refuse(task_tgid_nr(current),
				   "mapping at %lx of a file other nodes cannot open (node-local, shared memory or device)",
				   vma->vm_start);
			ret = -EOPNOTSUPP;
			break;
		}
		if (nr >= MIG_MAX_VMAS) {
			ret = -E2BIG;
			break;
		}
		v = mig_put(b, NULL, sizeof(*v));
		if (!v) {
			ret = -E2BIG;
			break;
		}
		if (vma->vm_flags & VM_READ)
			flags |= MIG_VMA_READ;
		if (vma->vm_flags & VM_WRITE)
			flags |= MIG_VMA_WRITE;
		if (vma->vm_flags & VM_EXEC)
			flags |= MIG_VMA_EXEC;
		if (vma->vm_flags & VM_SHARED)
			flags |= MIG_VMA_SHARED;
		if (vma->vm_flags & VM_GROWSDOWN)
			flags |= MIG_VMA_GROWSDOWN;
		if (vma->vm_flags & VM_DONTDUMP)
			flags |= MIG_VMA_DONTDUMP;
		if (vma->vm_flags & VM_LOCKED)
			flags |= MIG_VMA_LOCKED;
		v->start = cpu_to_le64(vma->vm_start);
		v->end = cpu_to_le64(vma->vm_end);
		v->pgoff = cpu_to_le64(vma->vm_pgoff);
		v->path_len = 0;
		v->ino = 0;
		if (vma->vm_file && cfs_backing_file(vma->vm_file)) {
			flags |= MIG_VMA_CFS;
			v->ino = cpu_to_le64(file_inode(vma->vm_file)->i_ino);
		}
		if ((vma->vm_flags & VM_SHARED) && (vma->vm_flags & VM_MAYWRITE))
			flags |= MIG_VMA_MAYWRITE;
		if (vma->vm_file) {
			flags |= MIG_VMA_FILE;
			ret = mig_put_path(b, &vma->vm_file->f_path,
					   &v->path_len, scratch);
			if (ret)
				break;
		}
		v->flags = cpu_to_le32(flags);
		nr++;
	}

	h->start_code = cpu_to_le64(mm->start_code);
	h->end_code = cpu_to_le64(mm->end_code);
	h->start_data = cpu_to_le64(mm->start_data);
	h->end_data = cpu_to_le64(mm->end_data);
	h->start_brk = cpu_to_le64(mm->start_brk);
	h->brk = cpu_to_le64(mm->brk);
	h->start_stack = cpu_to_le64(mm->start_stack);
	h->arg_start = cpu_to_le64(mm->arg_start);
	h->arg_end = cpu_to_le64(mm->arg_end);
	h->env_start = cpu_to_le64(mm->env_start);
	h->env_end = cpu_to_le64(mm->env_end);
	h->mmap_base = cpu_to_le64(mm->mmap_base);
	h->mmap_legacy_base = cpu_to_le64(mm->mmap_legacy_base);
	mmap_read_unlock(mm);

	BUILD_BUG_ON(AT_VECTOR_SIZE > MIG_NR_AUXV);
	if (!ret) {
		int i;

		for (i = 0; i < AT_VECTOR_SIZE; i++)
			h->auxv[i] = cpu_to_le64(mm->saved_auxv[i]);
		if (!h->vdso_start || !h->vvar_start)
			ret = -EOPNOTSUPP;	/* the vDSO moved or went */
	}
	h->nr_vmas = cpu_to_le32(nr);
	return ret;
}

/*
 * Open files: reopened by path on the target when it is the same file
 * there, else exported through rfile for the target.  Every exported
 * handle is recorded in @exports so that a failed migration gives the
 * references back.
 */
struct mig_export {
	struct rfile_handle h;
};

static int mig_dump_files(struct mig_img_hdr *h, struct mig_buf *b,
			  unsigned int target, char *scratch,
			  struct mig_export *exports, u32 *nr_exports)
{
	struct files_struct *files = current->files;
	struct file **seen;
	unsigned int fd, max;
	u32 nr = 0;
	int ret = 0;

	rcu_read_lock();
	max = files_fdtable(files)->max_fds;
	rcu_read_unlock();
	seen = kvcalloc(MIG_MAX_FILES, sizeof(*seen), GFP_KERNEL);
	if (!seen)
		return -ENOMEM;

	for (fd = 0; fd < max; fd++) {
		struct file *file = fget_raw(fd), *backing;
		struct mig_img_file *f;
		struct rfile_handle rh;
		bool cloexec;
		u32 i;

		if (!file)
			continue;
		if (nr >= MIG_MAX_FILES) {
			fput(file);
			ret = -E2BIG;
			break;
		}
		f = mig_put(b, NULL, sizeof(*f));
		if (!f) {
			fput(file);
			ret = -E2BIG;
			break;
		}
		memset(f, 0, sizeof(*f));
		spin_lock(&files->file_lock);
		cloexec = close_on_exec(fd, files_fdtable(files));
		spin_unlock(&files->file_lock);
		f->fd = cpu_to_le32(fd);
		f->f_flags = cpu_to_le32(file->f_flags);
		f->fd_flags = cpu_to_le32(cloexec ? MIG_FILE_CLOEXEC : 0);
		f->pos = cpu_to_le64(file->f_pos);
		f->same_as = cpu_to_le32(~0u);
		seen[nr] = file;
		for (i = 0; i < nr; i++) {
			if (seen[i] == file) {
				f->same_as = cpu_to_le32(i);
				break;
			}
		}
		nr++;
		if (le32_to_cpu(f->same_as) != ~0u)
			continue;

		backing = cfs_backing_file(file);
		if (backing) {
			/*
			 * A CFS file goes as the server's open file it stands
			 * for, positioned where this one is: the target uses
			 * it directly, its offset, flags and locks with it.
			 */
			loff_t pos = vfs_llseek(backing, file->f_pos, SEEK_SET);

			/*
			 * A proxy's positioned use by CFS here goes on
			 * (cfs_open()); a server's own mount has the file
			 * itself, whose position now is the process's.
			 */
			if (rfile_is_proxy(backing, &rh))
				backing->f_pos = -1;
			if (pos < 0 && rfile_proxy_is_dead(backing)) {
				pos = 0;	/* as below: EIO there too */
			} else if (pos < 0) {
				ret = pos;
				mig_refuse(task_tgid_nr(current),
					   "fd %u: its CFS server did not take its position: %d",
					   fd, ret);
				break;
			}
			file = backing;
		}
		if (rfile_is_proxy(file, &rh)) {
			bool dead = rfile_proxy_is_dead(file);

			if (!dead) {
				ret = rfile_get(&rh, target);
				dead = ret && !clms_node_is_up(rh.node);
			}
			if (dead) {
				/* its holder is down: EIO here, and there */
				f->kind = cpu_to_le32(MIG_FILE_DEAD);
				f->rnode = cpu_to_le32(rh.node);
				f->rid = cpu_to_le64(rh.id);
				ret = 0;
				continue;
			}
		} else if (mig_reopenable(file)) {
			f->kind = cpu_to_le32(MIG_FILE_REOPEN);
			ret = mig_put_path(b, &file->f_path, &f->path_len,
					   scratch);
			if (ret)
				break;
			continue;
		} else {
			ret = rfile_export(file, target, &rh);
		}
		if (ret) {
			mig_refuse(task_tgid_nr(current),
				   "fd %u cannot be served remotely: %d", fd, ret);
			break;
		}
		exports[(*nr_exports)++].h = rh;
		f->kind = cpu_to_le32(MIG_FILE_REMOTE);
		f->rnode = cpu_to_le32(rh.node);
		f->rid = cpu_to_le64(rh.id);
	}
	/* seen[] holds no references beyond the loop: compare pointers only */
	for (fd = 0; fd < nr; fd++)
		fput(seen[fd]);
	kvfree(seen);
	h->nr_files = cpu_to_le32(nr);
	return ret;
}

static void mig_dump_task(struct mig_img_hdr *h)
{
	struct task_struct *t = current;
	int i;

	rcu_read_lock();
	h->ppid = cpu_to_le32(task_tgid_nr(rcu_dereference(t->real_parent)));
	rcu_read_unlock();
	if (test_bit(SSI_PFA_MIGRANT, &t->atomic_flags)) {
		pid_t ppid;

		if (!mig_migrant_ppid(task_tgid_nr(t), &ppid))
			h->ppid = cpu_to_le32(ppid);
	}
	h->pgid = cpu_to_le32(ssi_group_nr(t, &init_pid_ns, false,
					   task_pgrp_nr_ns(t, &init_pid_ns)));
	h->sid = cpu_to_le32(ssi_group_nr(t, &init_pid_ns, true,
					  task_session_nr_ns(t, &init_pid_ns)));
	h->dumpable = cpu_to_le32(get_dumpable(t->mm));
	h->umask = cpu_to_le32(t->fs->umask);
	h->robust_list_len = cpu_to_le64(sizeof(struct robust_list_head));
	task_lock(t->group_leader);
	for (i = 0; i < MIG_NR_RLIMITS; i++) {
		h->rlim_cur[i] = cpu_to_le64(t->signal->rlim[i].rlim_cur);
		h->rlim_max[i] = cpu_to_le64(t->signal->rlim[i].rlim_max);
	}
	task_unlock(t->group_leader);
}

static struct file *mig_exe_file(struct mm_struct *mm)
{
	struct file *exe;

	rcu_read_lock();
	exe = rcu_dereference(mm->exe_file);
	if (exe && !get_file_rcu(exe))
		exe = NULL;
	rcu_read_unlock();
	return exe;
}

static int mig_dump_paths(struct mig_img_hdr *h, struct mig_buf *b,
			  char *scratch)
{
	struct path pwd;
	struct file *exe;
	int ret;

	get_fs_pwd(current->fs, &pwd);
	ret = mig_put_path(b, &pwd, &h->cwd_len, scratch);
	path_put(&pwd);
	if (ret)
		return ret;
	exe = mig_exe_file(current->mm);
	if (!exe)
		return 0;
	ret = mig_put_path(b, &exe->f_path, &h->exe_len, scratch);
	fput(exe);
	return ret;
}

/* The leader's own state goes in the header, the others' at the end. */
static void mig_put_leader(struct mig_img_hdr *h,
			   const struct mig_thread_rec *rec)
{
	memcpy(h->regs, rec->t.regs, sizeof(h->regs));
	h->blocked = rec->t.blocked;
	h->sas_ss_sp = rec->t.sas_ss_sp;
	h->sas_ss_size = rec->t.sas_ss_size;
	h->sas_ss_flags = rec->t.sas_ss_flags;
	h->robust_list = rec->t.robust_list;
	h->clear_child_tid = rec->t.clear_child_tid;
	h->rseq = rec->t.rseq;
	h->rseq_sig = rec->t.rseq_sig;
	memcpy(h->comm, rec->t.comm, sizeof(h->comm));
	h->nice = rec->t.nice;
	h->personality = rec->t.personality;
	h->xstate_note = cpu_to_le32(mig_fpu_note());
	h->xstate_len = cpu_to_le32(rec->xstate_len);
}

static int mig_put_threads(struct mig_img_hdr *h, struct mig_buf *b,
			   struct mig_group *g)
{
	struct mig_thread_rec *rec;
	u32 nr = 0;

	list_for_each_entry(rec, &g->recs, link) {
		if (rec->task == current->group_leader)
			continue;
		if (!mig_put(b, &rec->t, sizeof(rec->t)) ||
		    !mig_put(b, rec->xstate, rec->xstate_len))
			return -E2BIG;
		nr++;
	}
	h->nr_threads = cpu_to_le32(nr);
	return 0;
}

/* Write the image of current's process into @b. */
static int mig_dump(struct mig_buf *b, unsigned int target,
		    struct mig_export *exports, u32 *nr_exports,
		    struct mig_group *g, const void *exec, u32 exec_len)
{
	struct mig_thread_rec *rec, *leader = NULL;
	struct mig_img_hdr *h;
	char *scratch;
	int ret;

	list_for_each_entry(rec, &g->recs, link) {
		if (rec->err)
			return rec->err;
		if (rec->task == current->group_leader)
			leader = rec;
	}
	if (!leader)
		return -ESRCH;
	h = mig_put(b, NULL, sizeof(*h));
	if (!h)
		return -E2BIG;
	memset(h, 0, sizeof(*h));
	h->magic = cpu_to_le32(MIG_IMG_MAGIC);
	h->version = cpu_to_le16(MIG_IMG_VERSION);

	scratch = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!scratch)
		return -ENOMEM;
	mig_dump_task(h);
#ifdef CONFIG_FAULT_INJECTION
	/* a debugging attribute of the process: it goes where the process goes */
	if (current->group_leader->make_it_fail)
		h->flags |= cpu_to_le16(MIG_IMG_MAKE_IT_FAIL);
#endif
	mig_dump_creds(h);
	mig_dump_signals(h);
	mig_put_leader(h, leader);
	if (exec) {
		/* the thread that calls exec becomes the process */
		h->flags |= cpu_to_le16(MIG_IMG_REXEC);
		h->nice = cpu_to_le32(task_nice(current));
		h->personality = cpu_to_le32(current->personality);
	}
	ret = mig_dump_groups(h, b);
	if (!ret && !exec)
		ret = mig_dump_vmas(h, b, scratch);
	if (!ret)
		ret = mig_dump_files(h, b, target, scratch, exports,
				     nr_exports);
	if (!ret)
		ret = mig_dump_pending(h, b);
	if (!ret && !mig_put(b, leader->xstate, leader->xstate_len))
		ret = -E2BIG;
	if (!ret)
		ret = mig_dump_paths(h, b, scratch);
	if (!ret && !exec)
		ret = mig_put_threads(h, b, g);	/* exec ends them anyway */
	if (!ret && exec) {
		if (!mig_put(b, exec, exec_len))
			ret = -E2BIG;
		h->exec_len = cpu_to_le32(exec_len);
	}
	kfree(scratch);
	return ret;
}

/* --- parking the other threads ------------------------------------ */

struct mig_park_work {
	struct callback_head cb;
	struct mig_group *g;
};

static void mig_group_put(struct mig_group *g)
{
	struct mig_thread_rec *rec, *tmp;

	if (!refcount_dec_and_test(&g->ref))
		return;
	list_for_each_entry_safe(rec, tmp, &g->recs, link) {
		kfree(rec->xstate);
		kfree(rec);
	}
	kfree(g);
}

/* Dump current's own state into @g; false: nothing could be recorded. */
static bool mig_group_record(struct mig_group *g)
{
	struct mig_thread_rec *rec = kzalloc(sizeof(*rec), GFP_KERNEL);

	if (!rec)
		return false;
	rec->err = mig_dump_thread(rec);
	spin_lock(&g->lock);
	list_add_tail(&rec->link, &g->recs);
	spin_unlock(&g->lock);
	return true;
}

/*
 * Another thread of a process being sent: record its own state, wait for
 * the outcome, then go on (resume), end (moved; the leader stays behind
 * as the deputy instead).
 */
static void mig_park_fn(struct callback_head *cb)
{
	struct mig_park_work *w = container_of(cb, struct mig_park_work, cb);
	struct mig_group *g = w->g;
	struct mig_deputy *dep;
	bool recorded;
	int outcome;

	kfree(w);
	recorded = mig_group_record(g);
	spin_lock(&g->lock);
	g->arrived++;
	if (!recorded)
		g->outcome = -ENOMEM;
	spin_unlock(&g->lock);
	wake_up_all(&g->wq);
	if (wait_event_killable(g->wq, READ_ONCE(g->outcome)))
		goto resume;	/* killed: the whole process is going */
	outcome = READ_ONCE(g->outcome);
	if (outcome <= 0)
		goto resume;
	if (current == current->group_leader && g->dep) {
		dep = g->dep;
		mig_group_put(g);
		mig_deputy_run(dep);
		module_put(THIS_MODULE);
		return;
	}
	mig_group_put(g);
	ssi_module_put_and_exit(THIS_MODULE, 0);	/* it runs elsewhere now */
resume:
	mig_group_put(g);
	module_put(THIS_MODULE);
}

/* Park every other thread of current's process; 0 once all have. */
static int mig_park_others(struct mig_group *g)
{
	struct task_struct *p = current, *t;
	long left;
	int ret = 0;

	rcu_read_lock();
	for_each_thread(p, t) {
		struct mig_park_work *w;

		if (t == p)
			continue;
		w = kzalloc(sizeof(*w), GFP_ATOMIC);
		if (!w || !try_module_get(THIS_MODULE)) {
			kfree(w);
			ret = -ENOMEM;
			break;
		}
		w->g = g;
		refcount_inc(&g->ref);
		init_task_work(&w->cb, mig_park_fn);
		if (task_work_add(t, &w->cb, TWA_SIGNAL)) {
			refcount_dec(&g->ref);
			kfree(w);
			module_put(THIS_MODULE);
			continue;	/* exiting */
		}
		g->expected++;
	}
	rcu_read_unlock();
	if (ret)
		return ret;
	left = wait_event_killable_timeout(g->wq,
					   READ_ONCE(g->arrived) == g->expected,
					   10 * HZ);
	if (left <= 0)
		return left ? (int)left : -EBUSY;	/* one never stopped */
	if (READ_ONCE(g->outcome) < 0)
		return g->outcome;
	/* a thread created meanwhile was not parked */
	if (get_nr_threads(p) != g->expected + 1)
		return -EAGAIN;
	return 0;
}

/* Every parked thread's TID but the leader's (the PID); returns how many. */
static unsigned int mig_group_tids(struct mig_group *g, pid_t *tids)
{
	struct mig_thread_rec *rec;
	unsigned int nr = 0;

	spin_lock(&g->lock);
	list_for_each_entry(rec, &g->recs, link)
		if (rec->task != current->group_leader &&
		    nr < MIG_MAX_THREADS)
			tids[nr++] = task_pid_nr(rec->task);
	spin_unlock(&g->lock);
	return nr;
}

static void mig_group_end(struct mig_group *g, int outcome)
{
	spin_lock(&g->lock);
	g->outcome = outcome;
	spin_unlock(&g->lock);
	wake_up_all(&g->wq);
}

/* --- sessions -------------------------------------------------------- */

struct mig_out *mig_out_find(u64 session, unsigned int target)
{
	struct mig_out *out;

	spin_lock(&mig_out_lock);
	list_for_each_entry(out, &mig_outs, link) {
		if (out->session == session && out->target == target) {
			refcount_inc(&out->ref);
			spin_unlock(&mig_out_lock);
			return out;
		}
	}
	spin_unlock(&mig_out_lock);
	return NULL;
}

void mig_out_put(struct mig_out *out)
{
	if (refcount_dec_and_test(&out->ref)) {
		mmdrop(out->mm);
		kfree(out);
	}
}

/* Is @pid frozen here for a move (its image taken or being taken)? */
bool mig_out_frozen(pid_t pid)
{
	struct mig_out *out;
	bool frozen = false;

	spin_lock(&mig_out_lock);
	list_for_each_entry(out, &mig_outs, link)
		if (out->pid == pid && READ_ONCE(out->frozen))
			frozen = true;
	spin_unlock(&mig_out_lock);
	return frozen;
}

/* A listed session for moving @pid's @mm (mmgrab) to @target. */
struct mig_out *mig_out_new(pid_t pid, unsigned int target,
			    struct mm_struct *mm)
{
	struct mig_out *out = kzalloc(sizeof(*out), GFP_KERNEL);

	if (!out)
		return NULL;
	refcount_set(&out->ref, 1);
	init_completion(&out->done);
	out->session = mig_new_session();
	out->pid = pid;
	out->target = target;
	out->mm = mm;
	mmgrab(mm);
	spin_lock(&mig_out_lock);
	list_add(&out->link, &mig_outs);
	spin_unlock(&mig_out_lock);
	return out;
}

/* Unlist @out and drop the creator's reference. */
void mig_out_discard(struct mig_out *out)
{
	spin_lock(&mig_out_lock);
	list_del(&out->link);
	spin_unlock(&mig_out_lock);
	mig_out_put(out);
}

/* First finisher wins: the target's done, a nodedown, or the source. */
void mig_out_finish(struct mig_out *out, int status)
{
	bool first;

	spin_lock(&mig_out_lock);
	first = !out->finished;
	if (first) {
		out->finished = true;
		out->status = status;
	}
	spin_unlock(&mig_out_lock);
	if (first)
		complete(&out->done);
}

void mig_out_nodedown(unsigned int node)
{
	struct mig_out *out;

	spin_lock(&mig_out_lock);
	list_for_each_entry(out, &mig_outs, link) {
		if (out->target == node && !out->finished) {
			out->finished = true;
			out->status = -EHOSTDOWN;
			complete(&out->done);
		}
	}
	spin_unlock(&mig_out_lock);
}

/* --- the deputy's last steps ------------------------------------------ */

static void mig_close_all_fds(void)
{
	unsigned int fd, max;

	rcu_read_lock();
	max = files_fdtable(current->files)->max_fds;
	rcu_read_unlock();
	for (fd = 0; fd < max; fd++)
		close_fd(fd);
}

/* The memory went with the process; keep only the vDSO and its data. */
static void mig_drop_memory(unsigned long vvar, unsigned long vdso_end)
{
	struct vm_area_struct *vma;

	mmap_read_lock(current->mm);
	vma = find_vma(current->mm, vdso_end);
	vdso_end = vma ? vma->vm_end : vdso_end + PAGE_SIZE;
	mmap_read_unlock(current->mm);
	vm_munmap(0, vvar);
	vm_munmap(vdso_end, TASK_SIZE - vdso_end);
}

/*
 * Move current's process to @node.  Returns an errno with the process
 * untouched, or does not return: current ends (its process runs on @node)
 * or, being the thread group leader, becomes the deputy and ends when the
 * process does.  A process coming back here is restored into its deputy,
 * which then returns 0 to the task_work and on to user mode.
 */
/*
 * @pre: the session of a pre-copy to @node, or NULL; mig_out_run() ends
 * it either way.
 */
static int mig_out_run(unsigned int node, void **exec, u32 exec_len,
		       struct mig_out *pre)
{
	struct mig_start_req *req = NULL;
	struct mig_start_rep rep;
	struct mig_export *exports = NULL;
	unsigned long vvar, vdso;
	u32 nr_exports = 0, i;
	struct mig_buf b;
	struct mig_out *out = NULL;
	struct mig_deputy *dep = NULL;
	struct mig_group *g;
	ktime_t frozen = ktime_get();
	bool leader = current == current->group_leader;
	bool migrant, deputy, going_home, precopied = false;
	u64 keepers = 0;
	unsigned int pages = 0;
	size_t image_len = 0;
	long left;
	int ret;

	/* an exec since the pre-copy made it worthless */
	if (pre && pre->mm != current->mm) {
		mig_out_discard(pre);
		pre = NULL;
	}
	ret = mig_check_movable();
	if (!ret) {
		g = kzalloc(sizeof(*g), GFP_KERNEL);
		if (!g)
			ret = -ENOMEM;
	}
	if (ret) {
		if (pre)
			mig_out_discard(pre);
		return ret;
	}
	refcount_set(&g->ref, 1);
	spin_lock_init(&g->lock);
	INIT_LIST_HEAD(&g->recs);
	init_waitqueue_head(&g->wq);
	ret = mig_park_others(g);
	if (!ret && !mig_group_record(g))
		ret = -ENOMEM;
	if (ret) {
		if (pre)
			mig_out_discard(pre);
		goto end_group;
	}

	req = kvzalloc(sizeof(*req), GFP_KERNEL);
	exports = kvcalloc(MIG_MAX_FILES, sizeof(*exports), GFP_KERNEL);
	out = pre ?: mig_out_new(task_tgid_nr(current), node, current->mm);
	pre = NULL;
	/*
	 * A migrant moving on: its deputy stays where it is, and this node
	 * keeps a sub-deputy only for children it has here.
	 */
	migrant = test_bit(SSI_PFA_MIGRANT, &current->atomic_flags);
	going_home = migrant && node == mig_migrant_home(task_tgid_nr(current));
	if (going_home)
		keepers = mig_keepers_settle(task_tgid_nr(current));
	else if (migrant)
		keepers = mig_migrant_keepers(task_tgid_nr(current));
	if (migrant && mig_has_children_here(current))
		keepers |= mig_node_bit(mig_self);
	keepers &= ~mig_node_bit(node);	/* the one it goes to */
	if (going_home && keepers) {
		/* at home it is no migrant: nothing would ask them */
		mig_refuse(task_tgid_nr(current),
			   "has children on node %u, which its home cannot keep: wait for them first",
			   (unsigned int)__ffs64(keepers) + 1);
		ret = -EBUSY;
		goto free;
	}
	deputy = !migrant || (keepers & mig_node_bit(mig_self));
	if (deputy)
		dep = mig_deputy_alloc(current->group_leader);
	if (!req || !exports || !out || (deputy && !dep)) {
		ret = -ENOMEM;
		goto free;
	}
	/* signals from now on miss the image: the deputy retries them */
	WRITE_ONCE(out->frozen, true);
	b.p = req->image;
	b.len = 0;
	b.cap = sizeof(req->image);
	ret = mig_dump(&b, node, exports, &nr_exports, g, *exec, exec_len);
	/* the image has its own copy; a deputy would never free it */
	kvfree(*exec);
	*exec = NULL;
	if (ret)
		goto unexport;
	vvar = le64_to_cpu(((struct mig_img_hdr *)req->image)->vvar_start);
	vdso = le64_to_cpu(((struct mig_img_hdr *)req->image)->vdso_start);
	req->image_len = b.len;
	precopied = out->precopied;
	if (precopied) {
		struct mig_img_hdr *h = (struct mig_img_hdr *)req->image;

		h->flags |= cpu_to_le16(MIG_IMG_PRECOPIED);
	}
	((struct mig_img_hdr *)req->image)->keepers = cpu_to_le64(keepers);

	req->session = out->session;
	req->pid = out->pid;
	req->home = migrant ? mig_migrant_home(out->pid) : mig_self;
	if (!req->home && node == vproc_origin(out->pid)) {
		/* its deputy's node died; restarted, it keeps nothing of it */
		mig_refuse(out->pid, "its home node %u restarted since it left",
			   node);
		ret = -EHOSTDOWN;
		mig_out_finish(out, ret);
		goto unlist;
	}
	/* its deputy's node died: the target records it without a home */
	if (!req->home)
		req->home = vproc_origin(out->pid);
	ret = ics_mig_start(node, req, &rep, MIG_CALL_TIMEOUT);
	if (!ret) {
		left = wait_for_completion_killable_timeout(&out->done,
							    MIG_RESTORE_TIMEOUT);
		if (left <= 0)
			mig_out_finish(out, left ? (int)left : -ETIMEDOUT);
		ret = out->status;
	} else {
		mig_out_finish(out, ret);
	}
unlist:
	pages = atomic_read(&out->pages);
	image_len = req->image_len;
	/* moved on: its deputy learns the new node before signals come here */
	if (!ret && migrant)
		mig_migrant_moved(task_tgid_nr(current), node);
	/*
	 * It may already run there and ask its deputy (wait, setpgid): the
	 * deputy takes its place while the session is still listed, which
	 * until then makes such calls wait (mig_deputy_job()).
	 */
	if (!ret && deputy)
		mig_deputy_add(dep, node);
	mig_out_discard(out);
	out = NULL;
	if (ret)
		goto unexport;

	/* The process runs on @node now. */
	mig_drop_fault_injection(current);
	kvfree(req);
	kvfree(exports);
	/* frozen: from the freeze to the target's done, on this node's clock */
	pr_info("pid %d moved to node %u: frozen %lld us, image %zu bytes, %u pages%s, %d threads\n",
		task_tgid_nr(current), node,
		ktime_us_delta(ktime_get(), frozen), image_len, pages,
		precopied ? " after pre-copy" : "", g->expected + 1);
	mig_outcome(task_tgid_nr(current), node, 0);
	mig_close_all_fds();
	if (!deputy) {
		pid_t tids[MIG_MAX_THREADS];

		/* not its home: every thread here ends, reaped quietly; */
		/* this node keeps the numbers of its range */
		mig_tids_left(task_tgid_nr(current), tids,
			      mig_group_tids(g, tids));
		mig_group_end(g, 1);
		mig_group_put(g);
		ssi_module_put_and_exit(THIS_MODULE, 0);
	}
	mig_drop_memory(vvar, vdso);
	BUILD_BUG_ON(ARRAY_SIZE(dep->tids) != MIG_MAX_THREADS);
	dep->nr_tids = mig_group_tids(g, dep->tids);
	g->dep = dep;
	mig_group_end(g, 1);
	mig_group_put(g);
	mig_rfork_done(task_tgid_nr(current), 0);
	if (!leader)
		ssi_module_put_and_exit(THIS_MODULE, 0);  /* the leader stays */
	return mig_deputy_run(dep);

unexport:
	for (i = 0; i < nr_exports; i++)
		rfile_put(&exports[i].h, node);
free:
	if (dep)
		mig_deputy_put(dep);
	if (out)
		mig_out_discard(out);
	kvfree(exports);
	kvfree(req);
end_group:
	mig_group_end(g, ret);
	mig_group_put(g);
	return ret;
}

/*
 * What migrate(), rexec() and rfork() may return (abi/ERRNOS.md): the
 * outcome as it came where it means the same to the caller, else the
 * nearest documented one.
 */
static int mig_errno(int err)
{
	switch (err) {
	case -EINVAL: case -EHOSTDOWN: case -EOPNOTSUPP: case -EBUSY:
	case -EAGAIN: case -ENOMEM: case -E2BIG: case -ETIMEDOUT:
	case -EPROTO: case -ESRCH: case -ENOENT: case -EACCES: case -EPERM:
	case -ENOEXEC: case -EFAULT: case -ENOTDIR: case -ELOOP:
	case -ENAMETOOLONG: case -EINTR:
		return err;
	case -ENOTCONN: case -EHOSTUNREACH:
		return -EHOSTDOWN;	/* the target cannot be reached */
	case -ECANCELED:
		return -ETIMEDOUT;	/* the source had given up */
	case -EEXIST:
		return -EBUSY;		/* the PID is in use there */
	default:
		return -EAGAIN;		/* the target could not take it now */
	}
}

static void mig_work_fn(struct callback_head *cb)
{
	struct mig_work *w = container_of(cb, struct mig_work, cb);
	unsigned int node = w->node;
	bool self = w->self;
	bool rfork = w->rfork;
	void *exec = w->exec;
	u32 exec_len = w->exec_len;
	struct mig_out *pre = w->pre;
	int ret;

	/*
	 * task_work_run() runs a detached chain; this work may end the task
	 * (moved on) or run the deputy for the process's life, and the rest
	 * of that chain (an ____fput() of a file just closed...) would be
	 * lost.  So run once more, alone, after the chain.
	 */
	if (!w->deferred) {
		w->deferred = true;
		if (!task_work_add(current, cb, TWA_NONE))
			return;
	}
	kfree(w);
	ret = mig_out_run(node, &exec, exec_len, pre);
	kvfree(exec);
	if (ret)
		ret = mig_errno(ret);
	if (ret) {
		pr_info("pid %d: stays on node %u (%d)\n",
			task_tgid_nr(current), mig_self, ret);
		mig_outcome(task_tgid_nr(current), node, ret);
	}
	if (rfork && ret) {
		/* an rfork child that could not move never runs */
		mig_rfork_done(task_tgid_nr(current), ret);
		ssi_module_put_and_exit(THIS_MODULE, 0);
	}
	if (self && ret)
		task_pt_regs(current)->ax = ret;
	module_put(THIS_MODULE);
}

static void mig_precopy_fn(struct work_struct *work)
{
	struct mig_work *w = container_of(work, struct mig_work, precopy);
	struct task_struct *task = w->task;

	w->pre = mig_precopy(task, w->node);
	if (task_work_add(task, &w->cb, TWA_SIGNAL)) {
		/* it ended meanwhile */
		if (w->pre)
			mig_out_discard(w->pre);
		kfree(w);
		put_task_struct(task);
		module_put(THIS_MODULE);	/* mig_wq drains before unload */
		return;
	}
	put_task_struct(task);
}

/*
 * Ask @task to move itself to @node at its next return to user mode.
 * @self: the caller is @task (migrate()), whose return value the outcome
 * becomes.
 */
static int mig_queue_work(struct task_struct *task, unsigned int node,
			  bool self, bool rfork, void *exec, u32 exec_len)
{
	struct mig_work *w;
	int ret;

	ret = mig_check_node(node);
	if (ret)
		return ret;
	if (node == mig_self)
		return 0;
	if (task->flags & (PF_KTHREAD | PF_EXITING))
		return -EINVAL;
	w = kzalloc(sizeof(*w), GFP_KERNEL);
	if (!w)
		return -ENOMEM;
	if (!try_module_get(THIS_MODULE)) {
		kfree(w);
		return -ENOENT;
	}
	w->node = node;
	w->self = self;
	w->rfork = rfork;
	w->exec = exec;
	w->exec_len = exec_len;
	init_task_work(&w->cb, mig_work_fn);
	if (!self && !rfork && migration_precopy) {
		/* it runs on while its memory goes; then it is asked */
		get_task_struct(task);
		w->task = task;
		INIT_WORK(&w->precopy, mig_precopy_fn);
		queue_work(mig_wq, &w->precopy);
		return 0;
	}
	ret = task_work_add(task, &w->cb, TWA_SIGNAL);
	if (ret) {
		kfree(w);
		module_put(THIS_MODULE);
	}
	return ret;
}

int mig_queue(struct task_struct *task, unsigned int node, bool self)
{
	return mig_queue_work(task, node, self, false, NULL, 0);
}

/*
 * rexec(): @exec (kvmalloc'ed, taken over on success) runs on @node in
 * place of current, which keeps its PID.
 */
int mig_queue_exec(unsigned int node, void *exec, u32 exec_len)
{
	return mig_queue_work(current, node, true, false, exec, exec_len);
}

/* From kernel_clone(): @child of rfork has not run yet; send it to @node. */
void mig_forked(struct task_struct *child, unsigned int node)
{
	struct mig_rfork *rf = kzalloc(sizeof(*rf), GFP_KERNEL);

	if (rf) {
		rf->pid = task_tgid_nr(child);
		rf->status = 1;
		init_completion(&rf->done);
		spin_lock(&mig_rfork_lock);
		list_add(&rf->link, &mig_rforks);
		spin_unlock(&mig_rfork_lock);
	}
	if (!rf || mig_queue_work(child, node, false, true, NULL, 0)) {
		/* it must not run here as if it had moved */
		send_sig(SIGKILL, child, 1);
		if (rf)
			mig_rfork_done(rf->pid, -ENOMEM);
	}
}
