// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration, target side: check an offered image, start the restore
 * helper (which creates a task with the process's PID, with clone3's
 * set_tid, and calls SSISYS_MIG_RESTORE in it), and restore the process
 * into the calling task: address space, pages pulled from the source,
 * open files, credentials, signals, registers.  The same code restores a
 * process coming home into its deputy.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/binfmts.h>
#include <linux/cred.h>
#include <linux/magic.h>
#include <linux/elf.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/futex.h>
#include <linux/mm.h>
#include <linux/delay.h>
#include <linux/mman.h>
#include <linux/mount.h>
#include <linux/namei.h>
#include <linux/module.h>
#include <linux/ptrace.h>
#include <linux/regset.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <linux/task_work.h>
#include <linux/umh.h>
#include <linux/vmalloc.h>
#include <asm/fpu/api.h>
#include <asm/fsgsbase.h>
#include <asm/segment.h>
#include <asm/unaligned.h>

#include "cfs.h"
#include "clms.h"
#include "ics.h"
#include "migration_gen.h"
#include "mig_ics.h"
#include "mig_internal.h"
#include "vproc.h"
#include "rfile.h"

/* An unclaimed session (the helper never came) goes after this. */
#define MIG_CLAIM_TIMEOUT	(30 * HZ * ICS_SLOW_KERNEL_FACTOR)

static LIST_HEAD(mig_ins);
static LIST_HEAD(mig_migrants);
/*
 * Children a migrant forked here that were in its group when it changed
 * its group (mig.setgroup): they stay in the old one, as POSIX has it, but
 * would find the new one at their nearest migrant ancestor, so the old one
 * is pinned to them.  Keyed by PID and start time: a PID is reused.
 */
struct mig_pin {
	struct list_head link;
	pid_t pid;
	u64 start_time;
	pid_t pgid, sid;
};

static LIST_HEAD(mig_pins);
static DEFINE_SPINLOCK(mig_in_lock);	/* mig_ins, mig_migrants, mig_pins */

/* --- the image, checked ----------------------------------------------- */

struct mig_parsed {
	const struct mig_img_hdr *h;
	const __le32 *groups;
	const u8 *vmas;		/* nr_vmas of (struct mig_img_vma, path) */
	const u8 *files;
	const struct mig_img_sig *sigq;
	const u8 *xstate;
	const char *cwd;
	const char *exe;
	const u8 *threads;	/* nr_threads of (struct mig_img_thread, xstate) */
	const u8 *exec;		/* rexec: SSI_MIG_RESTORE_EXEC layout */
	bool rexec;
	bool precopied;		/* its pages were staged here beforehand */
	u32 nr_groups, nr_vmas, nr_files, nr_sigq, xstate_len, cwd_len,
	    exe_len, nr_threads, exec_len;
};

struct mig_cursor {
	const u8 *p;
	size_t left;
};

static const void *mig_take(struct mig_cursor *c, size_t len)
{
	const void *at = c->p;

	if (len > c->left)
		return NULL;
	c->p += len;
	c->left -= len;
	return at;
}

/* A path of the image: no NUL inside, shorter than PATH_MAX. */
static bool mig_path_ok(const char *p, u32 len)
{
	return len && len < PATH_MAX && !memchr(p, 0, len);
}

/* rexec's program and arguments: counts, then exactly that many strings. */
static int mig_check_exec(const u8 *p, size_t left, u32 len)
{
	u32 argc, envc, strings = 0, i;

	if (len > left || len > SSI_MIG_EXEC_MAX || len < 2 * sizeof(u32) + 1)
		return -EPROTO;
	argc = get_unaligned_le32(p);
	envc = get_unaligned_le32(p + sizeof(u32));
	if (p[len - 1])
		return -EPROTO;
	for (i = 2 * sizeof(u32); i < len; i++)
		strings += !p[i];
	if (!argc || (u64)argc + envc + 1 != strings)
		return -EPROTO;
	return 0;
}

static int mig_parse(const void *image, size_t len, struct mig_parsed *m)
{
	struct mig_cursor c = { .p = image, .left = len };
	const struct mig_img_hdr *h;
	u64 prev_end = 0;
	u32 i;

	memset(m, 0, sizeof(*m));
	h = mig_take(&c, sizeof(*h));
	if (!h || le32_to_cpu(h->magic) != MIG_IMG_MAGIC ||
	    le16_to_cpu(h->version) != MIG_IMG_VERSION)
		return -EPROTO;
	m->h = h;
	m->nr_groups = le32_to_cpu(h->nr_groups);
	m->nr_vmas = le32_to_cpu(h->nr_vmas);
	m->nr_files = le32_to_cpu(h->nr_files);
	m->nr_sigq = le32_to_cpu(h->nr_sigq);
	m->xstate_len = le32_to_cpu(h->xstate_len);
	m->cwd_len = le32_to_cpu(h->cwd_len);
	m->exe_len = le32_to_cpu(h->exe_len);
	m->nr_threads = le32_to_cpu(h->nr_threads);
	if (m->nr_groups > MIG_MAX_GROUPS || m->nr_vmas > MIG_MAX_VMAS ||
	    m->nr_files > MIG_MAX_FILES || m->nr_sigq > MIG_MAX_SIGQ ||
	    m->xstate_len > MIG_MAX_XSTATE || m->nr_threads > MIG_MAX_THREADS)
		return -EPROTO;

	m->groups = mig_take(&c, m->nr_groups * sizeof(__le32));
	if (!m->groups)
		return -EPROTO;
	m->vmas = c.p;
	for (i = 0; i < m->nr_vmas; i++) {
		const struct mig_img_vma *v = mig_take(&c, sizeof(*v));
		u64 start, end;
		u32 pl;
		const char *path;

		if (!v)
			return -EPROTO;
		start = le64_to_cpu(v->start);
		end = le64_to_cpu(v->end);
		pl = le32_to_cpu(v->path_len);
		if (start >= end || end > TASK_SIZE_MAX ||
		    (start | end) & ~PAGE_MASK || start < prev_end)
			return -EPROTO;	/* mappings come in address order */
		prev_end = end;
		path = mig_take(&c, pl);
		if (!path)
			return -EPROTO;
		if (!!(le32_to_cpu(v->flags) & MIG_VMA_FILE) != !!pl ||
		    (pl && !mig_path_ok(path, pl)))
			return -EPROTO;
	}
	m->files = c.p;
	for (i = 0; i < m->nr_files; i++) {
		const struct mig_img_file *f = mig_take(&c, sizeof(*f));
		u32 pl, kind, same;
		const char *path;

		if (!f)
			return -EPROTO;
		pl = le32_to_cpu(f->path_len);
		kind = le32_to_cpu(f->kind);
		same = le32_to_cpu(f->same_as);
		if (le32_to_cpu(f->fd) >= INR_OPEN_MAX)
			return -EPROTO;
		if (same != ~0u ? same >= i || pl :
		    kind != MIG_FILE_REOPEN && kind != MIG_FILE_REMOTE &&
		    kind != MIG_FILE_DEAD)
			return -EPROTO;
		path = mig_take(&c, pl);
		if (!path || (kind == MIG_FILE_REOPEN && same == ~0u &&
			      !mig_path_ok(path, pl)))
			return -EPROTO;
	}
	m->sigq = mig_take(&c, m->nr_sigq * sizeof(*m->sigq));
	m->xstate = mig_take(&c, m->xstate_len);
	m->cwd = mig_take(&c, m->cwd_len);
	m->exe = mig_take(&c, m->exe_len);
	if (!m->sigq || !m->xstate || !m->cwd || !m->exe)
		return -EPROTO;
	m->threads = c.p;
	for (i = 0; i < m->nr_threads; i++) {
		const struct mig_img_thread *t = mig_take(&c, sizeof(*t));
		s32 tid;

		if (!t || le32_to_cpu(t->xstate_len) != m->xstate_len ||
		    !mig_take(&c, m->xstate_len))
			return -EPROTO;
		tid = le32_to_cpu(t->tid);
		if (tid <= 0 || (u32)tid >> SSI_PID_NODE_SHIFT == 0)
			return -EPROTO;
	}
	if (le16_to_cpu(h->flags) & ~(MIG_IMG_REXEC | MIG_IMG_PRECOPIED |
				      MIG_IMG_MAKE_IT_FAIL))
		return -EPROTO;
	if (le64_to_cpu(h->keepers) & ~GENMASK_ULL(SSI_MAX_NODES - 1, 0))
		return -EPROTO;
	if (le32_to_cpu(h->pgid) > PID_MAX_LIMIT ||
	    le32_to_cpu(h->sid) > PID_MAX_LIMIT)
		return -EPROTO;
	m->rexec = le16_to_cpu(h->flags) & MIG_IMG_REXEC;
	m->precopied = le16_to_cpu(h->flags) & MIG_IMG_PRECOPIED;
	m->exec_len = le32_to_cpu(h->exec_len);
	if (m->rexec) {
		if (mig_check_exec(c.p, c.left, m->exec_len) || m->nr_vmas ||
		    m->nr_threads)
			return -EPROTO;
		m->exec = c.p;
		c.left -= m->exec_len;
	} else if (m->exec_len) {
		return -EPROTO;
	}
	if (c.left)
		return -EPROTO;
	if (!mig_path_ok(m->cwd, m->cwd_len) ||
	    (m->exe_len && !mig_path_ok(m->exe, m->exe_len)))
		return -EPROTO;
	if (!m->rexec && le32_to_cpu(h->xstate_note) != mig_fpu_note())
		return -EPROTO;		/* other FPU model: cannot resume */
	return 0;
}

static char *mig_strndup(const char *p, u32 len)
{
	return kmemdup_nul(p, len, GFP_KERNEL);
}

/* --- sessions --------------------------------------------------------- */

void mig_in_put(struct mig_in *in)
{
	if (refcount_dec_and_test(&in->ref)) {
		kvfree(in->image);
		kfree(in);
	}
}

static void mig_in_unlink(struct mig_in *in)
{
	spin_lock(&mig_in_lock);
	if (!list_empty(&in->link))
		list_del_init(&in->link);
	spin_unlock(&mig_in_lock);
}

/* The restoring task takes its session: once, by the PID it has. */
struct mig_in *mig_in_claim(u64 session, pid_t pid)
{
	struct mig_in *in;

	spin_lock(&mig_in_lock);
	list_for_each_entry(in, &mig_ins, link) {
		if (in->session == session && in->pid == pid && !in->claimed) {
			in->claimed = true;
			refcount_inc(&in->ref);
			spin_unlock(&mig_in_lock);
			return in;
		}
	}
	spin_unlock(&mig_in_lock);
	return NULL;
}

/* A thread of a process being restored finds its session. */
static struct mig_in *mig_in_find(u64 session, pid_t pid)
{
	struct mig_in *in;

	spin_lock(&mig_in_lock);
	list_for_each_entry(in, &mig_ins, link) {
		if (in->session == session && in->pid == pid) {
			refcount_inc(&in->ref);
			spin_unlock(&mig_in_lock);
			return in;
		}
	}
	spin_unlock(&mig_in_lock);
	return NULL;
}

static void mig_in_expire(void)
{
	struct mig_in *in, *tmp;
	LIST_HEAD(dead);

	spin_lock(&mig_in_lock);
	list_for_each_entry_safe(in, tmp, &mig_ins, link) {
		if (!in->claimed && time_after(jiffies, in->expires))
			list_move(&in->link, &dead);
	}
	spin_unlock(&mig_in_lock);
	list_for_each_entry_safe(in, tmp, &dead, link) {
		list_del_init(&in->link);
		mig_in_put(in);
	}
}

/*
 * Is @pid taken here?  A process coming back soon after it left may find
 * its old task still ending (freeing its memory) and not yet reaped by the
 * helper; that one goes within seconds, so wait for it (bounded).
 */
static bool mig_pid_in_use(pid_t pid)
{
	unsigned long until = jiffies + MIG_CALL_TIMEOUT / 2;
	struct task_struct *t;
	bool leaving;

	for (;;) {
		rcu_read_lock();
		t = pid_task(find_vpid(pid), PIDTYPE_PID);
		leaving = t && t->flags & PF_EXITING;
		rcu_read_unlock();
		if (!t)
			return false;
		if (!leaving || time_after(jiffies, until))
			return true;
		msleep(20);
	}
}

int mig_in_add(u64 session, pid_t pid, unsigned int source,
	       unsigned int home, const void *image, size_t len)
{
	struct mig_parsed m;
	struct mig_in *in;
	bool exists;
	int ret;

	ret = mig_parse(image, len, &m);
	if (ret)
		return ret;
	mig_in_expire();
	in = kzalloc(sizeof(*in), GFP_KERNEL);
	if (!in)
		return -ENOMEM;
	in->image = kvmalloc(len, GFP_KERNEL);
	if (!in->image) {
		kfree(in);
		return -ENOMEM;
	}
	memcpy(in->image, image, len);
	in->image_len = len;
	if (m.rexec) {
		in->exec = in->image + (m.exec - (const u8 *)image);
		in->exec_len = m.exec_len;
	}
	refcount_set(&in->ref, 1);
	in->session = session;
	in->pid = pid;
	in->source = source;
	in->home = home;
	in->expires = jiffies + MIG_CLAIM_TIMEOUT;
	INIT_LIST_HEAD(&in->link);
	in->nr_threads = m.nr_threads;
	in->leader_status = 1;
	init_waitqueue_head(&in->wq);

	in->into_deputy = true;
	if (home == mig_self) {
		/* coming home (to run a program, for rexec): its deputy restores it */
		ret = mig_deputy_homecoming(in);
		mig_in_put(in);
		return ret;
	}
	mig_tids_arriving(pid);	/* numbers its threads had here */
	/* back where a sub-deputy keeps children of it: restored into that */
	ret = mig_deputy_homecoming(in);
	if (ret != -ESRCH) {
		mig_in_put(in);
		return ret;
	}
	in->into_deputy = false;
	exists = mig_pid_in_use(pid);
	if (exists) {
		mig_in_put(in);
		return -EEXIST;
	}
	spin_lock(&mig_in_lock);
	list_add(&in->link, &mig_ins);
	spin_unlock(&mig_in_lock);
	ret = mig_spawn_helper(in);
	if (ret) {
		mig_in_unlink(in);
		mig_in_put(in);
	}
	return ret;
}

void mig_in_nodedown(unsigned int node)
{
	struct mig_migrant *mg;

	spin_lock(&mig_in_lock);
	list_for_each_entry(mg, &mig_migrants, link) {
		if (mg->home == node)
			mg->home = 0;	/* its deputy went: exits go nowhere */
		/* and the children a sub-deputy kept there with it */
		mg->keepers &= ~mig_node_bit(node);
	}
	spin_unlock(&mig_in_lock);
}

void mig_in_exit(void)
{
	struct mig_in *in, *tmp;
	struct mig_migrant *mg, *mtmp;
	struct mig_pin *pin, *ptmp;

	spin_lock(&mig_in_lock);
	list_for_each_entry_safe(in, tmp, &mig_ins, link) {
		list_del_init(&in->link);
		mig_in_put(in);
	}
	list_for_each_entry_safe(mg, mtmp, &mig_migrants, link) {
		list_del(&mg->link);
		kfree(mg);
	}
	list_for_each_entry_safe(pin, ptmp, &mig_pins, link) {
		list_del(&pin->link);
		kfree(pin);
	}
	spin_unlock(&mig_in_lock);
}

/* --- the helper --------------------------------------------------------- */

int mig_spawn_helper(struct mig_in *in)
{
	struct mig_cursor c;
	struct mig_parsed m;
	char session[24], pid[16], vvar[24];
	char **argv, *cwd, *tids;
	u32 i;
	int ret;

	if (!mig_helper_path || !*mig_helper_path)
		return -ENOEXEC;
	ret = mig_parse(in->image, in->image_len, &m);
	if (ret)
		return ret;
	cwd = mig_strndup(m.cwd, m.cwd_len);
	argv = kcalloc(6 + m.nr_threads, sizeof(*argv), GFP_KERNEL);
	tids = kcalloc(m.nr_threads + 1, 12, GFP_KERNEL);
	if (!cwd || !argv || !tids) {
		ret = -ENOMEM;
		goto out;
	}
	snprintf(session, sizeof(session), "%llx", in->session);
	snprintf(pid, sizeof(pid), "%d", in->pid);
	/* rexec: the helper executes a program; no vDSO to place */
	snprintf(vvar, sizeof(vvar), "%llx",
		 m.rexec ? 0 : le64_to_cpu(m.h->vvar_start));
	argv[0] = mig_helper_path;
	argv[1] = session;
	argv[2] = pid;
	argv[3] = vvar;
	argv[4] = cwd;
	c.p = m.threads;
	c.left = ~0ul;
	for (i = 0; i < m.nr_threads; i++) {
		const struct mig_img_thread *t = mig_take(&c, sizeof(*t));

		mig_take(&c, m.xstate_len);
		snprintf(tids + i * 12, 12, "%d", le32_to_cpu(t->tid));
		argv[5 + i] = tids + i * 12;
	}
	/* no environment: it execs nothing by name (rexec brings its own) */
	ret = call_usermodehelper(mig_helper_path, argv, argv + 5 + m.nr_threads,
				  UMH_WAIT_EXEC);
	if (ret)
		pr_warn("cannot start the restore helper %s: %d\n",
			mig_helper_path, ret);
	ret = ret < 0 ? ret : ret ? -ECHILD : 0;
out:
	kfree(tids);
	kfree(argv);
	kfree(cwd);
	return ret;
}

/* --- migrants ------------------------------------------------------------ */

static struct mig_migrant *mig_migrant_find(pid_t pid)
{
	struct mig_migrant *mg;

	list_for_each_entry(mg, &mig_migrants, link)
		if (mg->pid == pid)
			return mg;
	return NULL;
}

int mig_migrant_ppid(pid_t pid, pid_t *ppid)
{
	struct mig_migrant *mg;
	int ret = -ESRCH;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg && !mg->moved_on) {
		*ppid = mg->ppid;
		ret = 0;
	}
	spin_unlock(&mig_in_lock);
	return ret;
}

static struct mig_pin *mig_pin_find(struct task_struct *t)
{
	struct mig_pin *pin;

	list_for_each_entry(pin, &mig_pins, link)
		if (pin->pid == task_tgid_nr(t) &&
		    pin->start_time == t->group_leader->start_time)
			return pin;
	return NULL;
}

/*
 * The nearest of @task and its ancestors that is a migrant restored here
 * (@*mg) or a pinned child (@*pin), both NULL if none is.  Under
 * rcu_read_lock() and mig_in_lock.
 */
static void mig_group_source(struct task_struct *task, struct mig_migrant **mg,
			     struct mig_pin **pin)
{
	struct task_struct *t;
	int depth = 0;

	*mg = NULL;
	*pin = NULL;
	for (t = task; t && test_bit(SSI_PFA_MIGRANT, &t->atomic_flags) &&
	     depth < MIG_GROUP_DEPTH; depth++) {
		*pin = mig_pin_find(t);
		if (*pin)
			return;
		*mg = mig_migrant_find(task_tgid_nr(t));
		if (*mg)
			return;
		t = rcu_dereference(t->real_parent);
	}
}

/*
 * The process group (@session: session) of @task, a process restored
 * here or a child it forked here that kept the group it was born in: the
 * nearest migrant among it and its ancestors knows it, unless the child
 * was pinned to the group the migrant left.  -ESRCH: none.
 */
pid_t mig_migrant_group(struct task_struct *task, bool session)
{
	struct mig_migrant *mg;
	struct mig_pin *pin;
	pid_t nr = -ESRCH;

	rcu_read_lock();
	spin_lock(&mig_in_lock);
	mig_group_source(task, &mg, &pin);
	if (pin)
		nr = session ? pin->sid : pin->pgid;
	else if (mg && !mg->moved_on)
		nr = session ? mg->sid : mg->pgid;
	spin_unlock(&mig_in_lock);
	rcu_read_unlock();
	return nr;
}

/* Pins whose task is gone go; under rcu_read_lock() and mig_in_lock. */
static void mig_pins_prune(void)
{
	struct mig_pin *pin, *tmp;
	struct task_struct *t;

	list_for_each_entry_safe(pin, tmp, &mig_pins, link) {
		t = pid_task(find_pid_ns(pin->pid, &init_pid_ns), PIDTYPE_PID);
		if (t && t->group_leader->start_time == pin->start_time)
			continue;
		list_del(&pin->link);
		kfree(pin);
	}
}

/*
 * Migrant @pid's group and session changed at home (mig.setgroup): the
 * children it forked here that were in its old ones stay there.
 */
void mig_migrant_set_group(pid_t pid, pid_t pgid, pid_t sid)
{
	struct task_struct *t;
	struct mig_migrant *mg, *src;
	struct mig_pin *pin;

	rcu_read_lock();
	spin_lock(&mig_in_lock);
	mig_pins_prune();
	mg = mig_migrant_find(pid);
	for_each_process(t) {
		if (!mg || task_tgid_nr(t) == pid ||
		    !test_bit(SSI_PFA_MIGRANT, &t->atomic_flags) ||
		    task_pgrp_nr_ns(t, &init_pid_ns) ||
		    task_session_nr_ns(t, &init_pid_ns))
			continue;	/* not in a group by its ancestor */
		mig_group_source(t, &src, &pin);
		if (pin || src != mg)
			continue;
		pin = kzalloc(sizeof(*pin), GFP_ATOMIC);
		if (!pin) {
			/* it follows the migrant's new group instead */
			pr_warn_ratelimited("pid %d: group of child %d not kept\n",
					    pid, task_tgid_nr(t));
			continue;
		}
		pin->pid = task_tgid_nr(t);
		pin->start_time = t->start_time;
		pin->pgid = mg->pgid;
		pin->sid = mg->sid;
		list_add(&pin->link, &mig_pins);
	}
	if (mg) {
		mg->pgid = pgid;
		mg->sid = sid;
	}
	spin_unlock(&mig_in_lock);
	rcu_read_unlock();
}

unsigned int mig_migrant_home(pid_t pid)
{
	struct mig_migrant *mg;
	unsigned int home = 0;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg)
		home = mg->home;
	spin_unlock(&mig_in_lock);
	return home;
}

/* The nodes whose sub-deputies keep children of migrant @pid. */
u64 mig_migrant_keepers(pid_t pid)
{
	struct mig_migrant *mg;
	u64 keepers = 0;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg)
		keepers = mg->keepers;
	spin_unlock(&mig_in_lock);
	return keepers;
}

/* Its sub-deputy on @node ended, or is told to. */
void mig_migrant_drop_keeper(pid_t pid, unsigned int node)
{
	struct mig_migrant *mg;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg)
		mg->keepers &= ~mig_node_bit(node);
	spin_unlock(&mig_in_lock);
}

/* May @from speak for a deputy of migrant @pid: its home, or a keeper? */
bool mig_migrant_may_ask(pid_t pid, unsigned int from)
{
	struct mig_migrant *mg;
	bool may = false;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg)
		may = from == mg->home || (mg->keepers & mig_node_bit(from));
	spin_unlock(&mig_in_lock);
	return may;
}

/*
 * Tell @pid's deputy at @home and its sub-deputies (@keepers) what
 * @req says: where it runs now, or that it ended.  Not @skip, which is
 * where it goes (that deputy takes it back instead).
 */
static int mig_tell_deputies(unsigned int home, u64 keepers,
			     const struct mig_exited_req *req,
			     unsigned int skip)
{
	struct mig_exited_rep rep;
	unsigned long bits = keepers;
	unsigned int bit;
	int ret = 0;

	if (home && home != skip)
		ret = ics_mig_exited(home, req, &rep, MIG_CALL_TIMEOUT);
	for_each_set_bit(bit, &bits, SSI_MAX_NODES) {
		int err;

		if (bit + 1 == skip)
			continue;
		/* a keeper that missed it ends with the node running it */
		err = ics_mig_exited(bit + 1, req, &rep, MIG_CALL_TIMEOUT);
		if (err)
			pr_info("pid %d: its sub-deputy on node %u not told: %d\n",
				req->pid, bit + 1, err);
	}
	return ret;
}

/* The migrant left for @node: tell its deputies; its exit here is none. */
void mig_migrant_moved(pid_t pid, unsigned int node)
{
	struct mig_exited_req req = { .pid = pid, .status = -1, .node = node };
	struct mig_migrant *mg;
	unsigned int home = 0;
	u64 keepers = 0;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg) {
		mg->moved_on = true;
		home = mg->home;
		keepers = mg->keepers;
	}
	spin_unlock(&mig_in_lock);
	mig_tell_deputies(home, keepers, &req, node);
	mig_family_parent_moved(pid, node);
}

/* Did @pid, restored here, move on (its task here only ends)? */
bool mig_migrant_moved_on(pid_t pid)
{
	struct mig_migrant *mg;
	bool moved;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	moved = mg && mg->moved_on;
	spin_unlock(&mig_in_lock);
	return moved;
}

/* Its home is gone and its parent came from there: mig_family.c's. */
static bool mig_migrant_homeless(const struct mig_migrant *mg)
{
	return !mg->home && !mg->moved_on && mg->ppid > 1 &&
	       vproc_origin(mg->ppid) == vproc_origin(mg->pid);
}

/* The migrants here that mig_family.c tells their parents about. */
unsigned int mig_migrants_homeless(struct mig_homeless *out, unsigned int max)
{
	struct mig_migrant *mg;
	unsigned int n = 0;

	rcu_read_lock();
	spin_lock(&mig_in_lock);
	list_for_each_entry(mg, &mig_migrants, link) {
		struct task_struct *t;

		if (n == max)
			break;
		if (!mig_migrant_homeless(mg))
			continue;
		t = pid_task(find_vpid(mg->pid), PIDTYPE_PID);
		if (!t)
			continue;
		out[n].pid = mg->pid;
		out[n].ppid = mg->ppid;
		out[n].pgid = mg->pgid;
		out[n++].uid = from_kuid_munged(&init_user_ns,
						__task_cred(t)->uid);
	}
	spin_unlock(&mig_in_lock);
	rcu_read_unlock();
	return n;
}

/* Parent @ppid of migrant @pid is gone: getppid() says 1, as locally. */
bool mig_migrant_orphan(pid_t pid, pid_t ppid)
{
	struct mig_migrant *mg;
	bool done = false;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg && mg->ppid == ppid) {
		mg->ppid = 1;
		done = true;
	}
	spin_unlock(&mig_in_lock);
	return done;
}

/* The process the helper watches stopped or went on: tell its deputy. */
static int mig_jobctl(pid_t pid, int status)
{
	struct mig_jobctl_req req = { .pid = pid, .status = status };
	struct mig_jobctl_rep rep;
	struct mig_migrant *mg;
	unsigned int home = 0;
	bool moved = false;

	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg) {
		home = mg->home;
		moved = mg->moved_on;
	}
	spin_unlock(&mig_in_lock);
	if (!mg)
		return -ESRCH;
	if (moved || !home)
		return 0;
	return ics_mig_jobctl(home, &req, &rep, MIG_CALL_TIMEOUT);
}

/*
 * The restore helper reaped @pid with wait status @status, or saw it stop
 * or continue (it goes on).
 */
int mig_reaped(pid_t pid, int status)
{
	struct mig_exited_req req = { .pid = pid, .status = status };
	struct mig_migrant *mg;
	unsigned int home = 0;
	u64 keepers = 0;
	bool moved = false, homeless = false;
	pid_t ppid = 0;

	if (mig_status_is_jobctl(status))
		return mig_jobctl(pid, status);
	spin_lock(&mig_in_lock);
	mg = mig_migrant_find(pid);
	if (mg) {
		list_del(&mg->link);
		home = mg->home;
		keepers = mg->keepers;
		moved = mg->moved_on;
		homeless = mig_migrant_homeless(mg);
		ppid = mg->ppid;
		kfree(mg);
	}
	spin_unlock(&mig_in_lock);
	if (!mg)
		return -ESRCH;
	if (moved)
		return 0;
	mig_family_parent_exited(pid);
	if (homeless)
		mig_family_child_exited(pid, ppid, status);
	return mig_tell_deputies(home, keepers, &req, 0);
}

static int mig_migrant_add(pid_t pid, const struct mig_img_hdr *h,
			   unsigned int home, u64 keepers)
{
	struct mig_migrant *mg = kzalloc(sizeof(*mg), GFP_KERNEL);
	struct mig_migrant *old;
	bool homeless;

	if (!mg)
		return -ENOMEM;
	mg->pid = pid;
	mg->ppid = le32_to_cpu(h->ppid);
	mg->pgid = le32_to_cpu(h->pgid);
	mg->sid = le32_to_cpu(h->sid);
	/* a home that died, before or during the move: exits go nowhere */
	mg->home = clms_node_is_up(home) ? home : 0;
	mg->keepers = keepers;
	spin_lock(&mig_in_lock);
	old = mig_migrant_find(pid);
	if (old) {
		list_del(&old->link);
		kfree(old);
	}
	list_add(&mg->link, &mig_migrants);
	homeless = mig_migrant_homeless(mg);
	spin_unlock(&mig_in_lock);
	/* its parent learns where it runs now (once it runs: a retry) */
	if (homeless)
		mig_family_announce();
	return 0;
}

/* --- restore into current ------------------------------------------------ */

static unsigned long mig_prot(u32 flags)
{
	return (flags & MIG_VMA_READ ? PROT_READ : 0) |
	       (flags & MIG_VMA_WRITE ? PROT_WRITE : 0) |
	       (flags & MIG_VMA_EXEC ? PROT_EXEC : 0);
}

static int mig_restore_vmas(const struct mig_parsed *m)
{
	struct mig_cursor c = { .p = m->vmas, .left = ~0ul };
	u32 i;

	for (i = 0; i < m->nr_vmas; i++) {
		const struct mig_img_vma *v = mig_take(&c, sizeof(*v));
		u32 pl = le32_to_cpu(v->path_len);
		const char *p = mig_take(&c, pl);
		u32 flags = le32_to_cpu(v->flags);
		unsigned long start = le64_to_cpu(v->start);
		unsigned long len = le64_to_cpu(v->end) - start;
		unsigned long mflags = MAP_FIXED, addr;
		struct file *file = NULL;

		mflags |= flags & MIG_VMA_SHARED ? MAP_SHARED : MAP_PRIVATE;
		if (flags & MIG_VMA_GROWSDOWN)
			mflags |= MAP_GROWSDOWN;
		if (flags & MIG_VMA_FILE) {
			char *path = mig_strndup(p, pl);

			if (!path)
				return -ENOMEM;
			/* a shared mapping that may be written needs write access */
			file = filp_open(path, (flags & MIG_VMA_MAYWRITE ?
						O_RDWR : O_RDONLY) | O_LARGEFILE, 0);
			if (IS_ERR(file)) {
				pr_info("restore of pid %d: cannot open mapped %s: %ld\n",
					task_tgid_nr(current), path, PTR_ERR(file));
				kfree(path);
				return PTR_ERR(file);
			}
			/* a CFS file's path must name the same file here */
			if ((flags & MIG_VMA_CFS) &&
			    (!cfs_backing_file(file) ||
			     file_inode(file)->i_ino != le64_to_cpu(v->ino))) {
				pr_info("restore of pid %d: %s is not the CFS file it mapped there\n",
					task_tgid_nr(current), path);
				kfree(path);
				fput(file);
				return -EXDEV;
			}
			kfree(path);
		} else {
			mflags |= MAP_ANONYMOUS;
		}
		addr = vm_mmap(file, start, len, mig_prot(flags), mflags,
			       file ? le64_to_cpu(v->pgoff) << PAGE_SHIFT : 0);
		if (file)
			fput(file);
		if (addr != start)
			return IS_ERR_VALUE(addr) ? (int)addr : -EFAULT;
	}
	return 0;
}

#define MIG_MAX_SPANS		128

/* The (start, end) pairs covering the private mappings the image lists. */
static u32 mig_spans(const struct mig_parsed *m, u64 *span)
{
	struct mig_cursor c = { .p = m->vmas, .left = ~0ul };
	u32 i, n = 0;

	for (i = 0; i < m->nr_vmas; i++) {
		const struct mig_img_vma *v = mig_take(&c, sizeof(*v));
		u64 start = le64_to_cpu(v->start), end = le64_to_cpu(v->end);

		mig_take(&c, le32_to_cpu(v->path_len));
		if (le32_to_cpu(v->flags) & MIG_VMA_SHARED)
			continue;	/* the same pages there: nothing to pull */
		if (n && (span[2 * n - 1] == start || n == MIG_MAX_SPANS)) {
			span[2 * n - 1] = end;
			continue;
		}
		span[2 * n] = start;
		span[2 * n + 1] = end;
		n++;
	}
	return n;
}

static int mig_pull_memory(struct mig_in *in, const struct mig_parsed *m)
{
	u64 *span = kmalloc_array(2 * MIG_MAX_SPANS, sizeof(*span),
				  GFP_KERNEL);
	int ret;

	if (!span)
		return -ENOMEM;
	ret = mig_restore_pages(in, span, mig_spans(m, span), m->precopied);
	kfree(span);
	return ret;
}

static int mig_restore_mm_fields(const struct mig_parsed *m)
{
	const struct mig_img_hdr *h = m->h;
	struct mm_struct *mm = current->mm;
	struct file *exe = NULL;
	int i, ret = 0;

	if (m->exe_len) {
		char *path = mig_strndup(m->exe, m->exe_len);

		if (!path)
			return -ENOMEM;
		exe = filp_open(path, O_RDONLY | O_LARGEFILE, 0);
		kfree(path);
		if (IS_ERR(exe))
			exe = NULL;	/* /proc/<pid>/exe only */
	}
	if (exe) {
		ret = replace_mm_exe_file(mm, exe);
		fput(exe);
		if (ret)
			pr_info("restore of pid %d: exe link not restored: %d\n",
				task_tgid_nr(current), ret);
		ret = 0;
	}
	mmap_write_lock(mm);
	spin_lock(&mm->arg_lock);
	mm->start_code = le64_to_cpu(h->start_code);
	mm->end_code = le64_to_cpu(h->end_code);
	mm->start_data = le64_to_cpu(h->start_data);
	mm->end_data = le64_to_cpu(h->end_data);
	mm->start_brk = le64_to_cpu(h->start_brk);
	mm->brk = le64_to_cpu(h->brk);
	mm->start_stack = le64_to_cpu(h->start_stack);
	mm->arg_start = le64_to_cpu(h->arg_start);
	mm->arg_end = le64_to_cpu(h->arg_end);
	mm->env_start = le64_to_cpu(h->env_start);
	mm->env_end = le64_to_cpu(h->env_end);
	spin_unlock(&mm->arg_lock);
	mm->mmap_base = le64_to_cpu(h->mmap_base);
	mm->mmap_legacy_base = le64_to_cpu(h->mmap_legacy_base);
	for (i = 0; i < AT_VECTOR_SIZE; i++)
		mm->saved_auxv[i] = le64_to_cpu(h->auxv[i]);
	mmap_write_unlock(mm);
	return ret;
}

/* Open files at their numbers; the helper closed all of its own. */
static kernel_cap_t mig_cap(__le64 v)
{
	kernel_cap_t c;
	u64 x = le64_to_cpu(v);

	c.cap[0] = (u32)x;
	c.cap[1] = (u32)(x >> 32);
	return c;
}

/* The process's credentials from the image, prepared, not committed. */
static struct cred *mig_build_creds(const struct mig_parsed *m)
{
	const struct mig_img_hdr *h = m->h;
	struct group_info *gi;
	struct cred *new;
	u32 i;

	gi = groups_alloc(m->nr_groups);
	if (!gi)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < m->nr_groups; i++) {
		gi->gid[i] = make_kgid(&init_user_ns,
				       le32_to_cpu(m->groups[i]));
		if (!gid_valid(gi->gid[i])) {
			put_group_info(gi);
			return ERR_PTR(-EPROTO);
		}
	}
	groups_sort(gi);
	new = prepare_creds();
	if (!new) {
		put_group_info(gi);
		return ERR_PTR(-ENOMEM);
	}
	new->uid = make_kuid(&init_user_ns, le32_to_cpu(h->uid));
	new->euid = make_kuid(&init_user_ns, le32_to_cpu(h->euid));
	new->suid = make_kuid(&init_user_ns, le32_to_cpu(h->suid));
	new->fsuid = make_kuid(&init_user_ns, le32_to_cpu(h->fsuid));
	new->gid = make_kgid(&init_user_ns, le32_to_cpu(h->gid));
	new->egid = make_kgid(&init_user_ns, le32_to_cpu(h->egid));
	new->sgid = make_kgid(&init_user_ns, le32_to_cpu(h->sgid));
	new->fsgid = make_kgid(&init_user_ns, le32_to_cpu(h->fsgid));
	if (!uid_valid(new->uid) || !uid_valid(new->euid) ||
	    !uid_valid(new->suid) || !uid_valid(new->fsuid) ||
	    !gid_valid(new->gid) || !gid_valid(new->egid) ||
	    !gid_valid(new->sgid) || !gid_valid(new->fsgid)) {
		put_group_info(gi);
		abort_creds(new);
		return ERR_PTR(-EPROTO);
	}
	new->securebits = le32_to_cpu(h->securebits);
	new->cap_inheritable = mig_cap(h->cap_inheritable);
	new->cap_permitted = mig_cap(h->cap_permitted);
	new->cap_effective = mig_cap(h->cap_effective);
	new->cap_bset = mig_cap(h->cap_bset);
	new->cap_ambient = mig_cap(h->cap_ambient);
	set_groups(new, gi);
	put_group_info(gi);
	return new;
}

static int mig_restore_creds(const struct mig_parsed *m)
{
	struct cred *new = mig_build_creds(m);

	if (IS_ERR(new))
		return PTR_ERR(new);
	commit_creds(new);
	return 0;
}

/*
 * A procfs file reopened by path carries the process's credentials as its
 * opener's, not the helper's (root): some /proc files answer by their
 * opener's (pagemap shows frame numbers only to an opener with
 * CAP_SYS_ADMIN).  It cannot be opened under them yet: until the restore
 * commits them, /proc/<pid> is root's.  The file is new and ours alone, so
 * its f_cred is replaced before anyone sees it.
 */
static struct file *mig_reopen_proc(const struct mig_parsed *m,
				    struct file *file)
{
	const struct cred *helper;
	struct cred *cred;

	if (file_inode(file)->i_sb->s_magic != PROC_SUPER_MAGIC)
		return file;
	cred = mig_build_creds(m);
	if (IS_ERR(cred)) {
		fput(file);
		return ERR_CAST(cred);
	}
	helper = file->f_cred;
	file->f_cred = cred;	/* prepare_creds()'s reference, now the file's */
	put_cred(helper);
	return file;
}

static int mig_restore_files(const struct mig_parsed *m)
{
	struct mig_cursor c = { .p = m->files, .left = ~0ul };
	struct file **opened;
	unsigned int fd, next = 0;
	int ret = 0;
	u32 i;

	opened = kvcalloc(m->nr_files ?: 1, sizeof(*opened), GFP_KERNEL);
	if (!opened)
		return -ENOMEM;
	for (i = 0; i < m->nr_files; i++) {
		const struct mig_img_file *f = mig_take(&c, sizeof(*f));
		u32 pl = le32_to_cpu(f->path_len);
		const char *p = mig_take(&c, pl);
		u32 same = le32_to_cpu(f->same_as);
		u32 flags = le32_to_cpu(f->f_flags);
		struct file *file;
		int got;

		fd = le32_to_cpu(f->fd);
		if (same != ~0u) {
			file = opened[same];
			if (!file) {
				ret = -EPROTO;
				break;
			}
			get_file(file);
		} else if (le32_to_cpu(f->kind) == MIG_FILE_REOPEN) {
			char *path = mig_strndup(p, pl);
			int oflags = (flags & ~(O_CREAT | O_TRUNC | O_EXCL)) |
				     O_LARGEFILE;

			if (!path) {
				ret = -ENOMEM;
				break;
			}
			file = filp_open(path, oflags, 0);
			if (!IS_ERR(file))
				file = mig_reopen_proc(m, file);
			kfree(path);
			if (IS_ERR(file)) {
				ret = PTR_ERR(file);
				break;
			}
			file->f_pos = le64_to_cpu(f->pos);
		} else {
			struct rfile_handle h = {
				.node = le32_to_cpu(f->rnode),
				.id = le64_to_cpu(f->rid),
			};

			if (le32_to_cpu(f->kind) == MIG_FILE_DEAD)
				file = rfile_import_dead(&h, flags);
			else
				file = rfile_import(&h, flags);
			if (IS_ERR(file)) {
				ret = PTR_ERR(file);
				break;
			}
		}
		opened[i] = file;
		get_file(file);
		/* fill the gap below @fd; the placeholders go at the end */
		for (;;) {
			got = get_unused_fd_flags(le32_to_cpu(f->fd_flags) &
						  MIG_FILE_CLOEXEC ?
						  O_CLOEXEC : 0);
			if (got < 0 || got >= fd)
				break;
			fd_install(got, get_file(file));
			next = max_t(unsigned int, next, got + 1);
		}
		if (got != fd) {
			if (got >= 0)
				put_unused_fd(got);
			fput(file);
			ret = got < 0 ? got : -EBADF;
			break;
		}
		fd_install(got, file);
	}
	/* close the placeholders: every fd below the last that is not ours */
	c.p = m->files;
	if (!ret) {
		unsigned long *keep = bitmap_zalloc(next + 1, GFP_KERNEL);

		if (keep) {
			for (i = 0; i < m->nr_files; i++) {
				const struct mig_img_file *f =
					mig_take(&c, sizeof(*f));

				mig_take(&c, le32_to_cpu(f->path_len));
				if (le32_to_cpu(f->fd) < next)
					__set_bit(le32_to_cpu(f->fd), keep);
			}
			for (fd = 0; fd < next; fd++)
				if (!test_bit(fd, keep))
					close_fd(fd);
			bitmap_free(keep);
		} else {
			ret = -ENOMEM;
		}
	}
	for (i = 0; i < m->nr_files; i++)
		if (opened[i])
			fput(opened[i]);
	kvfree(opened);
	return ret;
}

static void mig_restore_task(const struct mig_parsed *m)
{
	const struct mig_img_hdr *h = m->h;
	struct task_struct *t = current;
	int i;

	task_lock(t);
	memcpy(t->comm, h->comm, sizeof(t->comm));
	t->comm[sizeof(t->comm) - 1] = 0;
	task_unlock(t);
	t->personality = le32_to_cpu(h->personality);
	t->fs->umask = le32_to_cpu(h->umask) & 0777;
	set_user_nice(t, clamp_t(int, (s32)le32_to_cpu(h->nice),
				 MIN_NICE, MAX_NICE));
	task_lock(t->group_leader);
	for (i = 0; i < MIG_NR_RLIMITS; i++) {
		t->signal->rlim[i].rlim_cur = le64_to_cpu(h->rlim_cur[i]);
		t->signal->rlim[i].rlim_max = le64_to_cpu(h->rlim_max[i]);
	}
	task_unlock(t->group_leader);
	if (m->rexec)
		return;		/* addresses in a memory that did not come */
	t->robust_list = (void __user *)le64_to_cpu(h->robust_list);
	t->clear_child_tid = (int __user *)le64_to_cpu(h->clear_child_tid);
#ifdef CONFIG_RSEQ
	t->rseq = (void __user *)le64_to_cpu(h->rseq);
	t->rseq_sig = le32_to_cpu(h->rseq_sig);
	if (t->rseq) {
		__set_bit(RSEQ_EVENT_MIGRATE_BIT, &t->rseq_event_mask);
		rseq_set_notify_resume(t);
	}
#endif
}

static void mig_restore_signals(const struct mig_parsed *m)
{
	const struct mig_img_hdr *h = m->h;
	struct sighand_struct *sh = mig_sighand();
	sigset_t blocked;
	u32 i;

	spin_lock_irq(&sh->siglock);
	for (i = 0; i < MIG_NR_SIGS; i++) {
		struct sigaction *sa = &sh->action[i].sa;

		if (i + 1 == SIGKILL || i + 1 == SIGSTOP)
			continue;
		sa->sa_handler = (__sighandler_t)le64_to_cpu(h->act[i].handler);
		sa->sa_flags = le64_to_cpu(h->act[i].flags);
		/* rexec: as execve, caught signals go back to their default */
		if (m->rexec && sa->sa_handler != SIG_IGN &&
		    sa->sa_handler != SIG_DFL) {
			sa->sa_handler = SIG_DFL;
			sa->sa_flags = 0;
		}
#ifdef __ARCH_HAS_SA_RESTORER
		sa->sa_restorer = (__sigrestore_t)le64_to_cpu(h->act[i].restorer);
#endif
		sa->sa_mask.sig[0] = le64_to_cpu(h->act[i].mask);
		sigdelsetmask(&sa->sa_mask, sigmask(SIGKILL) | sigmask(SIGSTOP));
	}
	spin_unlock_irq(&sh->siglock);
	blocked.sig[0] = le64_to_cpu(h->blocked);
	sigdelsetmask(&blocked, sigmask(SIGKILL) | sigmask(SIGSTOP));
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	if (!m->rexec) {
		current->sas_ss_sp = le64_to_cpu(h->sas_ss_sp);
		current->sas_ss_size = le64_to_cpu(h->sas_ss_size);
		current->sas_ss_flags = le32_to_cpu(h->sas_ss_flags);
	}

	for (i = 0; i < m->nr_sigq; i++) {
		const struct mig_img_sig *s = &m->sigq[i];
		struct kernel_siginfo info;
		int sig = le32_to_cpu(s->signo);

		if (!valid_signal(sig) || !sig)
			continue;
		clear_siginfo(&info);
		info.si_signo = sig;
		info.si_code = le32_to_cpu(s->code);
		info.si_pid = le32_to_cpu(s->pid);
		info.si_uid = le32_to_cpu(s->uid);
		send_sig_info(sig, &info, current);
	}
}

static int mig_restore_fpu(const void *xstate, u32 len)
{
	const struct user_regset *rs = mig_regset(mig_fpu_note());
	void *scratch;
	int ret;

	if (!rs)
		return -EOPNOTSUPP;
	if (len != rs->n * rs->size)
		return -EPROTO;
	/* Save the live registers so that a context switch cannot clobber
	 * what we write; then have them loaded on the way out.
	 */
	ret = regset_get_alloc(current, rs, rs->n * rs->size, &scratch);
	if (ret < 0)
		return ret;
	kfree(scratch);
	fpregs_lock();
	set_thread_flag(TIF_NEED_FPU_LOAD);
	fpregs_unlock();
	return rs->set(current, rs, 0, len, xstate, NULL);
}

#define MIG_FLAG_MASK	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | \
			 X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_TF | \
			 X86_EFLAGS_DF | X86_EFLAGS_OF | X86_EFLAGS_RF | \
			 X86_EFLAGS_AC)

/* current's user registers; returns the value rax must have. */
static long mig_restore_regs(const __le64 *saved)
{
	struct pt_regs *regs = task_pt_regs(current);
	struct user_regs_struct r;
	u64 *w = (u64 *)&r;
	int i;

	for (i = 0; i < MIG_NR_REGS; i++)
		w[i] = le64_to_cpu(saved[i]);
	regs->r15 = r.r15;
	regs->r14 = r.r14;
	regs->r13 = r.r13;
	regs->r12 = r.r12;
	regs->bp = r.bp;
	regs->bx = r.bx;
	regs->r11 = r.r11;
	regs->r10 = r.r10;
	regs->r9 = r.r9;
	regs->r8 = r.r8;
	regs->ax = r.ax;
	regs->cx = r.cx;
	regs->dx = r.dx;
	regs->si = r.si;
	regs->di = r.di;
	regs->orig_ax = -1;
	regs->ip = r.ip;
	regs->cs = __USER_CS;
	regs->flags = (r.flags & MIG_FLAG_MASK) | X86_EFLAGS_IF;
	regs->sp = r.sp;
	regs->ss = __USER_DS;

	preempt_disable();
	loadsegment(fs, 0);
	x86_fsbase_write_cpu(r.fs_base);
	current->thread.fsindex = 0;
	current->thread.fsbase = r.fs_base;
	preempt_enable();
	return r.ax;
}

/* Unmap everything but the vDSO and its data, which the helper placed. */
static int mig_clear_mm(const struct mig_parsed *m)
{
	unsigned long vvar = le64_to_cpu(m->h->vvar_start);
	unsigned long vdso = le64_to_cpu(m->h->vdso_start);
	struct vm_area_struct *vma;
	unsigned long vdso_end;
	const char *name = NULL;

	mmap_read_lock(current->mm);
	vma = find_vma(current->mm, vdso);
	if (vma && vma->vm_start == vdso && vma->vm_ops && vma->vm_ops->name)
		name = vma->vm_ops->name(vma);
	vdso_end = vma ? vma->vm_end : 0;
	mmap_read_unlock(current->mm);
	if (!name || strcmp(name, "[vdso]"))
		return -EFAULT;		/* the helper did not place the vDSO */
	if (vm_munmap(0, vvar))
		return -EFAULT;
	return vm_munmap(vdso_end, TASK_SIZE - vdso_end);
}

/* Tell the source how it ended; only its yes lets the process run. */
static int mig_report(struct mig_in *in, int status)
{
	struct mig_done_req req = { .session = in->session, .status = status };
	struct mig_done_rep rep;

	return ics_mig_done(in->source, &req, &rep, MIG_CALL_TIMEOUT);
}

/*
 * Restore the process of @in into current.  On success *@ax is the value
 * rax must hold when it returns to user mode and 0 is returned; on failure
 * the source has been told and the task must not return to user mode
 * (its memory is gone) unless it is a deputy.
 */
/* rexec: may the restored credentials execute @path (as execve checks)? */
static int mig_check_exec_path(const struct mig_parsed *m)
{
	const char *name = (const char *)m->exec + 2 * sizeof(u32);
	struct inode *inode;
	struct path path;
	int ret;

	ret = kern_path(name, LOOKUP_FOLLOW, &path);
	if (ret)
		return ret;
	inode = d_backing_inode(path.dentry);
	if (S_ISDIR(inode->i_mode))
		ret = -EACCES;
	else if (!S_ISREG(inode->i_mode))
		ret = -EACCES;
	else if (path.mnt->mnt_flags & MNT_NOEXEC ||
		 path.mnt->mnt_sb->s_iflags & SB_I_NOEXEC)
		ret = -EACCES;	/* path_noexec(), not exported */
	else
		ret = inode_permission(mnt_user_ns(path.mnt), inode, MAY_EXEC);
	path_put(&path);
	return ret;
}

/*
 * At home: take up the working directory the process had where it ran.
 * Elsewhere the helper does, with chdir(2) before it becomes the process,
 * and falls back to / when the path is not there; so does this.
 */
static int mig_restore_cwd(const struct mig_parsed *m)
{
	char *name = mig_strndup(m->cwd, m->cwd_len);
	struct path path;
	int ret;

	if (!name)
		return -ENOMEM;
	ret = kern_path(name, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &path);
	kfree(name);
	if (ret)
		ret = kern_path("/", LOOKUP_DIRECTORY, &path);
	if (ret)
		return ret;
	set_fs_pwd(current->fs, &path);
	path_put(&path);
	return 0;
}

static int mig_restore_into(struct mig_in *in, long *ax)
{
	struct mig_parsed m;
	int ret;

	ret = mig_parse(in->image, in->image_len, &m);
	/* every other thread is waiting in the kernel before anything goes */
	if (!ret && wait_event_killable_timeout(in->wq,
						READ_ONCE(in->arrived) ==
						in->nr_threads,
						MIG_CALL_TIMEOUT) <= 0)
		ret = -ECHILD;
	if (!ret && !m.rexec)
		ret = mig_clear_mm(&m);
	/* the executable link first: it cannot change while the old one is mapped */
	if (!ret && !m.rexec)
		ret = mig_restore_mm_fields(&m);
	if (!ret && !m.rexec)
		ret = mig_restore_vmas(&m);
	if (!ret && !m.rexec)
		ret = mig_pull_memory(in, &m);
	if (!ret)
		ret = mig_restore_files(&m);
	if (!ret && !m.rexec)
		ret = mig_restore_fpu(m.xstate, m.xstate_len);
	if (!ret)
		ret = mig_restore_creds(&m);
	/*
	 * Looked up as the restored process; the helper's chdir elsewhere runs
	 * before it becomes the process, as root, so a directory the process
	 * cannot reach by its path is / here and its directory there.
	 */
	if (!ret && in->into_deputy)
		ret = mig_restore_cwd(&m);
	/* commit_creds() made it undumpable (other ids than the helper's) */
	if (!ret && !m.rexec)
		set_mask_bits(&current->mm->flags, MMF_DUMPABLE_MASK,
			      min_t(u32, le32_to_cpu(m.h->dumpable),
				    SUID_DUMP_ROOT));
	if (!ret && m.rexec)
		ret = mig_check_exec_path(&m);
	if (ret) {
		pr_info("restore of pid %d from node %u failed: %d\n",
			in->pid, in->source, ret);
		mig_report(in, ret);
		return ret;
	}
	mig_restore_task(&m);
	mig_restore_signals(&m);
	*ax = m.rexec ? 0 : mig_restore_regs(m.h->regs);
	if (in->home != mig_self) {
		ret = mig_migrant_add(in->pid, m.h, in->home,
				      le64_to_cpu(m.h->keepers) &
				      ~mig_node_bit(mig_self));
		if (ret) {
			mig_report(in, ret);
			return ret;
		}
		set_bit(SSI_PFA_MIGRANT, &current->atomic_flags);
	} else {
		clear_bit(SSI_PFA_MIGRANT, &current->atomic_flags);
	}
	ret = mig_report(in, 0);
	if (ret) {
		/* the source took the process back (or is gone): not ours */
		pr_info("restore of pid %d: source %u said %d; dropping it\n",
			in->pid, in->source, ret);
		return ret;
	}
	/* outlived its origin: this node now answers for it clusterwide */
	vproc_arrived(in->pid);
#ifdef CONFIG_FAULT_INJECTION
	/* last: the restore itself is not what the process asked to fail */
	current->make_it_fail = !!(le16_to_cpu(m.h->flags) &
				   MIG_IMG_MAKE_IT_FAIL);
#endif
	pr_info("pid %d arrived from node %u%s\n", in->pid, in->source,
		m.rexec ? " to execute a program" : "");
	return 0;
}

/* Let the other threads go on (0) or give up; the session is done. */
static void mig_in_finish(struct mig_in *in, int status)
{
	spin_lock(&mig_in_lock);
	in->leader_status = status;
	spin_unlock(&mig_in_lock);
	wake_up_all(&in->wq);
	spin_lock(&mig_in_lock);
	if (!list_empty(&in->link)) {
		list_del_init(&in->link);
		spin_unlock(&mig_in_lock);
		mig_in_put(in);		/* the list's reference */
		return;
	}
	spin_unlock(&mig_in_lock);
}

long mig_restore_current(struct mig_in *in)
{
	long ax = 0;
	int ret = mig_restore_into(in, &ax);

	mig_in_finish(in, ret);
	if (ret) {
		force_sig(SIGKILL);
		return ret;
	}
	return ax;
}

/*
 * Another thread of a process being restored, made with its TID by the
 * helper (SSISYS_MIG_RESTORE_THREAD) or, at home, by the deputy.  It
 * waits for the leader to restore the process, then takes its own
 * registers, FPU and per-thread state; *@ax is its rax.  Made by the
 * deputy (@home), a thread that fails before the leader's outcome just
 * ends: the deputy goes on; after it, the process dies as anywhere.
 */
static int mig_restore_thread_in(struct mig_in *in, pid_t tid, bool home,
				 long *ax)
{
	const struct mig_img_thread *t = NULL;
	struct mig_cursor c;
	struct mig_parsed m;
	sigset_t blocked;
	u32 i;
	int ret;

	ret = mig_parse(in->image, in->image_len, &m);
	c.p = m.threads;
	c.left = ~0ul;
	for (i = 0; !ret && i < m.nr_threads; i++) {
		const struct mig_img_thread *x = mig_take(&c, sizeof(*x));

		mig_take(&c, m.xstate_len);
		if (le32_to_cpu(x->tid) == tid)
			t = x;
	}
	if (!ret && (!t || tid != task_pid_nr(current)))
		ret = -ESRCH;
	if (ret)
		return ret;
	/*
	 * The helper made this thread with its own (root) credentials: it
	 * takes the process's before the leader goes on, so that the
	 * leader's commit_creds() is the last to set the mm's dumpable mode
	 * and no thread ever reaches user mode as the helper.
	 */
	ret = mig_restore_creds(&m);
	if (ret) {
		if (!home)
			force_sig(SIGKILL); /* the leader gives up waiting */
		return ret;
	}
	spin_lock(&mig_in_lock);
	in->arrived++;
	spin_unlock(&mig_in_lock);
	wake_up_all(&in->wq);
	if (wait_event_killable(in->wq, READ_ONCE(in->leader_status) != 1))
		return -EINTR;
	if (in->leader_status)
		return -ECANCELED;	/* the leader failed: the process dies */
	ret = mig_restore_fpu(t + 1, m.xstate_len);
	if (ret) {
		force_sig(SIGKILL);
		return ret;
	}
	blocked.sig[0] = le64_to_cpu(t->blocked);
	sigdelsetmask(&blocked, sigmask(SIGKILL) | sigmask(SIGSTOP));
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	current->sas_ss_sp = le64_to_cpu(t->sas_ss_sp);
	current->sas_ss_size = le64_to_cpu(t->sas_ss_size);
	current->sas_ss_flags = le32_to_cpu(t->sas_ss_flags);
	current->robust_list = (void __user *)le64_to_cpu(t->robust_list);
	current->clear_child_tid =
		(int __user *)le64_to_cpu(t->clear_child_tid);
#ifdef CONFIG_RSEQ
	current->rseq = (void __user *)le64_to_cpu(t->rseq);
	current->rseq_sig = le32_to_cpu(t->rseq_sig);
	if (current->rseq) {
		__set_bit(RSEQ_EVENT_MIGRATE_BIT, &current->rseq_event_mask);
		rseq_set_notify_resume(current);
	}
#endif
	task_lock(current);
	memcpy(current->comm, t->comm, sizeof(current->comm));
	current->comm[sizeof(current->comm) - 1] = 0;
	task_unlock(current);
	current->personality = le32_to_cpu(t->personality);
	/* each thread its own: the helper's nice is no one's */
	set_user_nice(current, clamp_t(int, (s32)le32_to_cpu(t->nice),
				       MIN_NICE, MAX_NICE));
	if (in->home != mig_self)
		set_bit(SSI_PFA_MIGRANT, &current->atomic_flags);
	else
		clear_bit(SSI_PFA_MIGRANT, &current->atomic_flags);
	*ax = mig_restore_regs(t->regs);
	return 0;
}

/* SSISYS_MIG_RESTORE_THREAD: the system call returns to user mode as it. */
long mig_restore_thread(u64 session, pid_t tid)
{
	struct mig_in *in = mig_in_find(session, task_tgid_nr(current));
	long ax = 0;
	int ret;

	if (!in)
		return -ESRCH;
	ret = mig_restore_thread_in(in, tid, false, &ax);
	mig_in_put(in);
	return ret ?: ax;
}

/* --- threads of a process coming home, made by its deputy ----------- */

struct mig_home_thread {
	struct callback_head cb;
	struct mig_in *in;
	pid_t tid;
	long ax;
};

/* On the way to user mode, after ret_from_fork zeroed rax. */
static void mig_home_thread_ax(struct callback_head *cb)
{
	struct mig_home_thread *ht = container_of(cb, struct mig_home_thread,
						  cb);

	current_pt_regs()->ax = ht->ax;
	kfree(ht);
	module_put(THIS_MODULE);
}

static int mig_home_thread_fn(void *arg)
{
	struct mig_home_thread *ht = arg;
	int ret = mig_restore_thread_in(ht->in, ht->tid, true, &ht->ax);

	mig_in_put(ht->in);
	if (!ret) {
		init_task_work(&ht->cb, mig_home_thread_ax);
		ret = task_work_add(current, &ht->cb, TWA_RESUME);
		if (!ret)
			return 0;	/* to user mode, as the thread */
		force_sig(SIGKILL);	/* cannot happen: we are not exiting */
	}
	kfree(ht);
	ssi_module_put_and_exit(THIS_MODULE, 0);
}

/*
 * Make the threads of the process coming home into its deputy (current),
 * with their TIDs, before the leader restores it: each waits for the
 * leader's outcome in mig_restore_thread_in().  Creating a thread with a
 * given TID takes CAP_CHECKPOINT_RESTORE, which the deputy, running with
 * the process's credentials, may not have: the threads are made with the
 * kernel's and take the process's before the leader goes on.
 */
static int mig_spawn_home_threads(struct mig_in *in, const struct mig_parsed *m)
{
	const struct cred *kcred, *old;
	struct mig_cursor c = { .p = m->threads, .left = ~0ul };
	sigset_t all;
	int ret = 0;
	u32 i;

	if (!m->nr_threads)
		return 0;
	kcred = prepare_kernel_cred(NULL);
	if (!kcred)
		return -ENOMEM;
	/* a pending signal would fail the clone (fork vs signal) */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	old = override_creds(kcred);
	for (i = 0; !ret && i < m->nr_threads; i++) {
		const struct mig_img_thread *t = mig_take(&c, sizeof(*t));
		struct mig_home_thread *ht;
		pid_t tid;

		mig_take(&c, m->xstate_len);
		ht = kzalloc(sizeof(*ht), GFP_KERNEL);
		if (!ht || !try_module_get(THIS_MODULE)) {
			kfree(ht);
			ret = -ENOMEM;
			break;
		}
		refcount_inc(&in->ref);
		ht->in = in;
		ht->tid = le32_to_cpu(t->tid);
		tid = ssi_clone_thread(mig_home_thread_fn, ht, ht->tid);
		if (tid < 0) {
			mig_in_put(in);
			kfree(ht);
			module_put(THIS_MODULE);
			pr_info("pid %d: thread %u not made at home: %d\n",
				in->pid, le32_to_cpu(t->tid), tid);
			ret = tid;
		}
	}
	revert_creds(old);
	put_cred(kcred);
	return ret;
}

/*
 * The process comes home into its deputy (current).  On failure the
 * source has been told (the process goes on there), the threads made for
 * it end, and current stays the deputy.
 */
int mig_restore_deputy(struct mig_in *in)
{
	struct mig_parsed m;
	sigset_t saved = current->blocked;
	long ax;
	int ret;

	ret = mig_parse(in->image, in->image_len, &m);
	if (!ret)
		ret = mig_spawn_home_threads(in, &m);
	if (ret)
		mig_report(in, ret);
	else
		ret = mig_restore_into(in, &ax);
	spin_lock(&mig_in_lock);
	in->leader_status = ret;
	spin_unlock(&mig_in_lock);
	wake_up_all(&in->wq);
	if (ret)
		sigprocmask(SIG_SETMASK, &saved, NULL);
	return ret;
}

/*
 * rexec() to the home node: the process, restored into its deputy
 * (current), executes its program, as the helper does on other nodes.
 * The path was checked against the process's credentials before the
 * source let it go; what fails now (ENOEXEC, ENOMEM...) ends the process
 * with status 127 and a line on its stderr, as with the helper.  Returns
 * 0 when current runs the program on its return to user mode.
 */
int mig_exec_home(const struct mig_in *in)
{
	const char *p = (const char *)in->exec + 2 * sizeof(u32);
	u32 argc = get_unaligned_le32(in->exec);
	u32 envc = get_unaligned_le32((const u8 *)in->exec + sizeof(u32));
	const char *path = p, **strs;
	struct file *err;
	char *msg;
	u32 i;
	int ret;

	/* mig_parse() checked the layout: argc >= 1, argc + envc + 1 strings */
	strs = kvcalloc(argc + envc + 2, sizeof(*strs), GFP_KERNEL);
	if (!strs) {
		ret = -ENOMEM;
		goto fail;
	}
	p += strlen(p) + 1;
	for (i = 0; i < argc + envc; i++) {
		strs[i < argc ? i : i + 1] = p;
		p += strlen(p) + 1;
	}
	ret = kernel_execve(path, strs, strs + argc + 1);
	kvfree(strs);
	if (!ret) {
		/* execve's 0; the deputy's registers held its own call's */
		current_pt_regs()->ax = 0;
		return 0;
	}
fail:
	pr_info("pid %d: rexec of %s at home failed: %d\n",
		task_tgid_nr(current), path, ret);
	err = fget(2);
	msg = kasprintf(GFP_KERNEL, "rexec: %s: error %d\n", path, -ret);
	if (err && msg && (err->f_mode & FMODE_WRITE)) {
		/* f_pos under its lock, as write(2) takes it (fdget_pos) */
		bool lock = err->f_mode & FMODE_ATOMIC_POS;

		if (lock)
			mutex_lock(&err->f_pos_lock);
		kernel_write(err, msg, strlen(msg), &err->f_pos);
		if (lock)
			mutex_unlock(&err->f_pos_lock);
	}
	kfree(msg);
	if (err)
		fput(err);
	return ret;
}
