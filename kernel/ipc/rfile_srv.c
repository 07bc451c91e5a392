// SPDX-License-Identifier: GPL-2.0-only
/*
 * rfile server side: the table of this node's exported open files, the
 * per-node references on them, the readiness subscriptions, and the ICS
 * handlers that run proxies' operations on the held files.  The protocol
 * is described at the top of rfile_main.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/fdtable.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/kthread.h>
#include <linux/major.h>
#include <linux/net.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/coredump.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/socket.h>
#include <linux/stat.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/uio.h>

#include "clms.h"
#include "ics.h"
#include "rfile_gen.h"
#include "rfile_ics.h"
#include "rfile_internal.h"
#include "ssi_core.h"

/* Wait queue heads one file registers in its ->poll (pipes and ttys: 2). */
#define RFILE_POLL_HEADS	2

struct rfile_export;

struct rfile_poll_entry {
	wait_queue_entry_t wait;
	wait_queue_head_t *whead;	/* NULL once POLLFREE unhooked it */
	struct rfile_export *ex;
};

struct rfile_export {
	struct hlist_node hnode;	/* rfile_exports, under rfile_lock */
	struct list_head dead;		/* node-down collection */
	u64 id;
	struct file *file;
	struct file *shadow;		/* O_NONBLOCK twin, under poll_lock */
	bool no_shadow;			/* none can be made */
	refcount_t users;		/* the table's, one per op in flight */
	u32 total;			/* sum of refs[], under rfile_lock */
	u32 refs[SSI_MAX_NODES + 1];	/* per node, under rfile_lock */
	atomic64_t subscribers;		/* bit n: node n gets `ready` */
	atomic64_t lockers;		/* bit n: node n took POSIX locks */
	bool hooked;			/* reads and writes run rfile_hooks */
	struct list_head lk_list;	/* node-down lock cleanup */
	struct mutex poll_lock;		/* arming */
	bool armed;
	unsigned int nr_entries;
	struct rfile_poll_entry entries[RFILE_POLL_HEADS];
	poll_table pt;
	struct work_struct notify_work;
};

static DEFINE_SPINLOCK(rfile_lock);
static DEFINE_HASHTABLE(rfile_exports, 8);
/* The I/O hooks of hooked exports; read-held across each hooked op. */
static DECLARE_RWSEM(rfile_hooks_sem);
static const struct rfile_io_hooks *rfile_hooks;
static u64 rfile_next_id;		/* under rfile_lock */

static struct rfile_export *rfile_lookup(u64 id)
{
	struct rfile_export *ex;

	lockdep_assert_held(&rfile_lock);
	hash_for_each_possible(rfile_exports, ex, hnode, id)
		if (ex->id == id)
			return ex;
	return NULL;
}

static void rfile_disarm(struct rfile_export *ex)
{
	wait_queue_head_t *wh;
	unsigned int i;

	for (i = 0; i < ex->nr_entries; i++) {
		rcu_read_lock();
		/* Pairs with the release in rfile_wake() (POLLFREE). */
		wh = smp_load_acquire(&ex->entries[i].whead);
		if (wh)
			remove_wait_queue(wh, &ex->entries[i].wait);
		rcu_read_unlock();
	}
	ex->nr_entries = 0;
}

static void rfile_unlock_remote(struct file *file, unsigned int node);

/* The last user is gone: unhook from the file's wait queues and release. */
static void rfile_export_free(struct rfile_export *ex)
{
	mutex_lock(&ex->poll_lock);
	rfile_disarm(ex);
	mutex_unlock(&ex->poll_lock);
	cancel_work_sync(&ex->notify_work);
	rfile_lkwait_drop(ex->file, 0, NULL, NULL);
	/* No node holds it: no proxy's POSIX lock may outlive the export. */
	if (atomic64_read(&ex->lockers))
		rfile_unlock_remote(ex->file, 0);
	if (ex->shadow)
		fput(ex->shadow);
	if (ex->hooked) {
		down_read(&rfile_hooks_sem);
		if (rfile_hooks && rfile_hooks->release)
			rfile_hooks->release(ex->file);
		up_read(&rfile_hooks_sem);
	}
	fput(ex->file);
	rfile_count(RFILE_CNT_RELEASED);
	kfree(ex);
}

void rfile_export_put_op(struct rfile_export *ex)
{
	if (refcount_dec_and_test(&ex->users))
		rfile_export_free(ex);
}

struct file *rfile_export_file(struct rfile_export *ex)
{
	return ex->file;
}

/*
 * The export @id for an op from node @from, which must hold a reference
 * of it (this node itself always may); NULL (counted) otherwise.  Put it
 * with rfile_export_put_op().
 */
struct rfile_export *rfile_export_find(u64 id, unsigned int from)
{
	struct rfile_export *ex;

	spin_lock(&rfile_lock);
	ex = rfile_lookup(id);
	if (ex && from != rfile_self() &&
	    (from > SSI_MAX_NODES || !ex->refs[from]))
		ex = NULL;
	if (ex)
		refcount_inc(&ex->users);
	spin_unlock(&rfile_lock);
	if (!ex)
		rfile_count(RFILE_CNT_BAD_HANDLE);
	return ex;
}

static void rfile_notify_work(struct work_struct *work)
{
	struct rfile_export *ex = container_of(work, struct rfile_export,
					       notify_work);
	struct rfile_ready_req msg = { .id = ex->id };
	u64 subs = atomic64_read(&ex->subscribers);
	unsigned int node;

	msg.mask = (__force u32)vfs_poll(ex->file, NULL);
	for (node = 1; node <= SSI_MAX_NODES; node++) {
		if (!(subs & BIT_ULL(node)) || node == rfile_self())
			continue;
		if (!ics_rfile_ready(node, &msg))
			rfile_count(RFILE_CNT_READY_SENT);
	}
	/* Local proxies of this node's own exports do not exist (import
	 * returns the file itself), so nothing to wake here.
	 */
}

static int rfile_wake(wait_queue_entry_t *wait, unsigned int mode, int sync,
		      void *key)
{
	struct rfile_poll_entry *e = container_of(wait, struct rfile_poll_entry,
						  wait);
	__poll_t mask = key_to_poll(key);

	if (mask & POLLFREE) {
		/* The head goes away (after an RCU grace period). */
		list_del_init(&wait->entry);
		/* Pairs with the acquire in rfile_disarm(). */
		smp_store_release(&e->whead, NULL);
	}
	queue_work(rfile_workqueue(), &e->ex->notify_work);
	return 0;
}

static void rfile_queue_proc(struct file *file, wait_queue_head_t *wh,
			     poll_table *pt)
{
	struct rfile_export *ex = container_of(pt, struct rfile_export, pt);
	struct rfile_poll_entry *e;

	if (ex->nr_entries >= RFILE_POLL_HEADS) {
		pr_warn_once("a file registers more than %d wait queues\n",
			     RFILE_POLL_HEADS);
		return;
	}
	e = &ex->entries[ex->nr_entries++];
	e->ex = ex;
	e->whead = wh;
	init_waitqueue_func_entry(&e->wait, rfile_wake);
	add_wait_queue(wh, &e->wait);
}

/*
 * Subscribe @from to `ready` messages of @ex, hooking the held file's wait
 * queues the first time.  Done before an op that may find the file not
 * ready, so a change after the op is always notified.
 */
static void rfile_subscribe(struct rfile_export *ex, unsigned int from)
{
	if (from <= SSI_MAX_NODES)
		atomic64_or(BIT_ULL(from), &ex->subscribers);
	if (READ_ONCE(ex->armed))
		return;
	mutex_lock(&ex->poll_lock);
	if (!ex->armed) {
		init_poll_funcptr(&ex->pt, rfile_queue_proc);
		vfs_poll(ex->file, &ex->pt);
		WRITE_ONCE(ex->armed, true);
	}
	mutex_unlock(&ex->poll_lock);
}

static int rfile_export_new(struct file *file, unsigned int to_node,
			    struct rfile_handle *h, bool hooked)
{
	struct rfile_export *ex, *new;
	unsigned int bkt;

	if (!to_node || to_node > SSI_MAX_NODES)
		return -EINVAL;
	new = kzalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return -ENOMEM;
	spin_lock(&rfile_lock);
	hash_for_each(rfile_exports, bkt, ex, hnode)
		if (ex->file == file)
			goto found;
	ex = new;
	new = NULL;
	ex->id = ++rfile_next_id;
	ex->file = get_file(file);
	refcount_set(&ex->users, 1);
	atomic64_set(&ex->subscribers, 0);
	atomic64_set(&ex->lockers, 0);
	mutex_init(&ex->poll_lock);
	INIT_WORK(&ex->notify_work, rfile_notify_work);
	hash_add(rfile_exports, &ex->hnode, ex->id);
	rfile_count(RFILE_CNT_EXPORTS);
found:
	if (hooked)
		ex->hooked = true;
	ex->refs[to_node]++;
	ex->total++;
	h->node = rfile_self();
	h->id = ex->id;
	spin_unlock(&rfile_lock);
	kfree(new);
	return 0;
}

int rfile_export(struct file *file, unsigned int to_node,
		 struct rfile_handle *h)
{
	return rfile_export_new(file, to_node, h, false);
}
EXPORT_SYMBOL_GPL(rfile_export);

int rfile_export_hooked(struct file *file, unsigned int to_node,
			struct rfile_handle *h)
{
	return rfile_export_new(file, to_node, h, true);
}
EXPORT_SYMBOL_GPL(rfile_export_hooked);

void rfile_set_io_hooks(const struct rfile_io_hooks *hooks)
{
	down_write(&rfile_hooks_sem);
	rfile_hooks = hooks;
	up_write(&rfile_hooks_sem);
}
EXPORT_SYMBOL_GPL(rfile_set_io_hooks);

struct file *rfile_export_file_get(u64 id, unsigned int from)
{
	struct rfile_export *ex = rfile_export_find(id, from);
	struct file *file;

	if (!ex)
		return NULL;
	file = get_file(ex->file);
	rfile_export_put_op(ex);
	return file;
}
EXPORT_SYMBOL_GPL(rfile_export_file_get);

/*
 * Before a read or write of @ex's regular file for @from: the hooks' say
 * (an errno refuses the op), *@cookie for rfile_io_end().  The hooks stay
 * set until then.
 */
static int rfile_io_begin(struct rfile_export *ex, unsigned int from,
			  bool write, int *cookie)
{
	int ret = 0;

	*cookie = 0;
	if (!ex->hooked)
		return 0;
	down_read(&rfile_hooks_sem);
	if (rfile_hooks)
		ret = rfile_hooks->begin(ex->file, from, write);
	if (ret < 0) {
		up_read(&rfile_hooks_sem);
		return ret;
	}
	*cookie = ret;
	return 0;
}

static void rfile_io_end(struct rfile_export *ex, bool write, int cookie)
{
	if (!ex->hooked)
		return;
	if (rfile_hooks)
		rfile_hooks->end(ex->file, write, cookie);
	up_read(&rfile_hooks_sem);
}

/* One more reference of @id for @to_node, asked by @from (holding one). */
int rfile_ref_get(u64 id, unsigned int from, unsigned int to_node)
{
	struct rfile_export *ex;
	int ret = 0;

	if (!to_node || to_node > SSI_MAX_NODES) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -EINVAL;
	}
	spin_lock(&rfile_lock);
	ex = rfile_lookup(id);
	if (!ex || (from != rfile_self() &&
		    (from > SSI_MAX_NODES || !ex->refs[from]))) {
		ret = -ENOENT;
	} else if (ex->refs[to_node] == U32_MAX) {
		ret = -EOVERFLOW;
	} else {
		ex->refs[to_node]++;
		ex->total++;
	}
	spin_unlock(&rfile_lock);
	if (ret == -ENOENT)
		rfile_count(RFILE_CNT_BAD_HANDLE);
	return ret;
}

/*
 * Give back a reference of @to_node, asked by @from: @to_node itself, this
 * node, or a node holding one (which took it for @to_node).
 */
int rfile_ref_put(u64 id, unsigned int from, unsigned int to_node)
{
	struct rfile_export *ex;
	bool last = false;
	int ret = 0;

	if (!to_node || to_node > SSI_MAX_NODES) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -EINVAL;
	}
	spin_lock(&rfile_lock);
	ex = rfile_lookup(id);
	if (!ex || !ex->refs[to_node] ||
	    (from != rfile_self() && from != to_node &&
	     (from > SSI_MAX_NODES || !ex->refs[from]))) {
		ret = -EBADF;
	} else {
		ex->refs[to_node]--;
		ex->total--;
		if (!ex->refs[to_node])
			atomic64_andnot(BIT_ULL(to_node), &ex->subscribers);
		if (!ex->total) {
			hash_del(&ex->hnode);
			last = true;
		}
	}
	spin_unlock(&rfile_lock);
	if (ret)
		rfile_count(RFILE_CNT_BAD_HANDLE);
	if (last)
		rfile_export_put_op(ex);
	return ret;
}

/* @node went down: drop every reference it held, and its POSIX locks. */
void rfile_srv_node_down(unsigned int node)
{
	struct rfile_export *ex, *tmp;
	struct hlist_node *n;
	unsigned int bkt;
	LIST_HEAD(locked);
	LIST_HEAD(gone);

	if (!node || node > SSI_MAX_NODES)
		return;
	/* its waiting requests first: they could wait for its locks */
	rfile_lkwait_drop(NULL, node, NULL, NULL);
	spin_lock(&rfile_lock);
	hash_for_each_safe(rfile_exports, bkt, n, ex, hnode) {
		if (atomic64_read(&ex->lockers) & BIT_ULL(node)) {
			refcount_inc(&ex->users);
			list_add(&ex->lk_list, &locked);
		}
		if (!ex->refs[node])
			continue;
		ex->total -= ex->refs[node];
		ex->refs[node] = 0;
		atomic64_andnot(BIT_ULL(node), &ex->subscribers);
		if (!ex->total) {
			hash_del(&ex->hnode);
			list_add(&ex->dead, &gone);
		}
	}
	spin_unlock(&rfile_lock);
	list_for_each_entry_safe(ex, tmp, &locked, lk_list) {
		list_del(&ex->lk_list);
		atomic64_andnot(BIT_ULL(node), &ex->lockers);
		rfile_unlock_remote(ex->file, node);
		rfile_export_put_op(ex);
	}
	list_for_each_entry_safe(ex, tmp, &gone, dead) {
		list_del(&ex->dead);
		rfile_export_put_op(ex);
	}
}

/* The table for /sys/kernel/ssi/rfile/table: "id node:refs..." lines. */
ssize_t rfile_table_show(char *buf)
{
	struct rfile_export *ex;
	unsigned int bkt, node;
	ssize_t len = 0;

	spin_lock(&rfile_lock);
	hash_for_each(rfile_exports, bkt, ex, hnode) {
		len += scnprintf(buf + len, PAGE_SIZE - len, "%llu", ex->id);
		for (node = 1; node <= SSI_MAX_NODES; node++)
			if (ex->refs[node])
				len += scnprintf(buf + len, PAGE_SIZE - len,
						 " %u:%u", node, ex->refs[node]);
		len += scnprintf(buf + len, PAGE_SIZE - len, "\n");
	}
	spin_unlock(&rfile_lock);
	return len;
}

/* ---- the ops ---- */

/* The proxy's changed O_APPEND / O_NONBLOCK onto the held file (F_SETFL). */
static int rfile_apply_fl(struct file *file, u32 fl)
{
	unsigned int want = fl & RFILE_SETFL_MASK;

	if (!(fl & RFILE_FL_SET) || !((file->f_flags ^ want) & RFILE_SETFL_MASK))
		return 0;
	if (!(want & O_APPEND) && (file->f_flags & O_APPEND) &&
	    IS_APPEND(file_inode(file)))
		return -EPERM;
	spin_lock(&file->f_lock);
	file->f_flags = (file->f_flags & ~RFILE_SETFL_MASK) | want;
	spin_unlock(&file->f_lock);
	return 0;
}

/* May an op on @file wait for another party (pipe, tty, socket...)? */
static bool rfile_may_block(struct file *file)
{
	umode_t mode = file_inode(file)->i_mode;

	return !S_ISREG(mode) && !S_ISBLK(mode) && !S_ISDIR(mode);
}

/*
 * A second open file on the same pipe or terminal, O_NONBLOCK, for ops
 * that must not wait: opened on the held file's own path with its opener's
 * credentials (anonymous pipes too: pipefs), O_NOCTTY.  Only pipes, FIFOs
 * and terminals whose reopening reaches the same object (pty slaves,
 * virtual consoles and serial lines; not a pty master, whose reopening
 * makes a new pty).  It counts as a reader or writer of the pipe for as
 * long as the export itself holds the file open.  NULL if none.
 */
static struct file *rfile_shadow(struct rfile_export *ex)
{
	struct file *file = ex->file, *sh;
	struct inode *inode = file_inode(file);
	unsigned int major = imajor(inode);

	if (READ_ONCE(ex->no_shadow))
		return NULL;
	sh = READ_ONCE(ex->shadow);
	if (sh)
		return sh;
	mutex_lock(&ex->poll_lock);
	if (ex->shadow || ex->no_shadow)
		goto out;
	if (!S_ISFIFO(inode->i_mode) &&
	    !(S_ISCHR(inode->i_mode) &&
	      (major == TTY_MAJOR ||
	       (major >= UNIX98_PTY_SLAVE_MAJOR &&
		major < UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT)))) {
		WRITE_ONCE(ex->no_shadow, true);
		goto out;
	}
	sh = dentry_open(&file->f_path, (file->f_flags & O_ACCMODE) |
			 O_NONBLOCK | O_NOCTTY | O_LARGEFILE, file->f_cred);
	if (IS_ERR(sh))
		WRITE_ONCE(ex->no_shadow, true);
	else
		WRITE_ONCE(ex->shadow, sh);
out:
	mutex_unlock(&ex->poll_lock);
	return READ_ONCE(ex->shadow);
}

/* Test aid (test_knobs): a pause after a readiness check, in ms. */
unsigned int rfile_test_io_delay_ms;
atomic_t rfile_test_io_delays;

/*
 * The file to run a read (@events EPOLLIN) or write (EPOLLOUT) of @ex on
 * without waiting, or ERR_PTR(-EAGAIN) if it is not ready: the held file
 * itself when it cannot wait (a regular file, or O_NONBLOCK); else its
 * O_NONBLOCK shadow; else (a pty master, a device) after a readiness
 * check, and *@unguarded is set: another user of the same file on this
 * node can still take the data (or the tty's read lock) between the check
 * and the op, so a read then runs as rfile_guarded_read() does.
 * Sockets are handled by the caller (MSG_DONTWAIT).
 */
static struct file *rfile_io_file(struct rfile_export *ex, __poll_t events,
				  bool *unguarded)
{
	struct file *file = ex->file, *sh;
	unsigned int delay;
	__poll_t mask;

	*unguarded = false;
	if (!rfile_may_block(file) || (file->f_flags & O_NONBLOCK))
		return file;
	sh = rfile_shadow(ex);
	if (sh)
		return sh;
	mask = vfs_poll(file, NULL);
	if (!(mask & (events | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
		return ERR_PTR(-EAGAIN);
	delay = READ_ONCE(rfile_test_io_delay_ms);
	if (delay && rfile_test_knobs) {
		atomic_inc(&rfile_test_io_delays);
		msleep(delay);
	}
	*unguarded = true;
	return file;
}

static ssize_t rfile_plain_io(struct file *file, void *buf, size_t count,
			      loff_t *ppos, bool write, bool guard);

/* A waiting op of a guarded read, cut short by the flag: not ready. */
static ssize_t rfile_unguard_ret(ssize_t ret)
{
	if (ret == -EINTR || ret == -ERESTARTSYS || ret == -ERESTARTNOINTR ||
	    ret == -ERESTARTNOHAND || ret == -ERESTART_RESTARTBLOCK)
		return -EAGAIN;
	return ret;
}

/*
 * A read of a file with no O_NONBLOCK twin, which may wait after all (the
 * data checked for was taken by another reader here, or that reader holds
 * the tty's read lock while it waits): run with TIF_NOTIFY_SIGNAL set on
 * the worker, as io_uring interrupts its workers' blocking ops, so every
 * interruptible wait inside returns at once; nothing read is EAGAIN (the
 * client waits for `ready`).  Not for writes: n_tty_write() gives up
 * before writing anything when a signal is pending.
 */
static ssize_t rfile_guarded_read(struct file *file, struct iov_iter *iter,
				  loff_t *ppos)
{
	ssize_t ret;

	set_thread_flag(TIF_NOTIFY_SIGNAL);
	ret = vfs_iter_read(file, iter, ppos, 0);
	clear_notify_signal();
	return rfile_unguard_ret(ret);
}

/* A socket: send or receive with MSG_DONTWAIT (and never SIGPIPE here). */
static ssize_t rfile_sock_io(struct socket *sock, struct iov_iter *iter,
			     bool write)
{
	struct msghdr msg = { .msg_iter = *iter };

	if (write) {
		msg.msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
		return sock_sendmsg(sock, &msg);
	}
	return sock_recvmsg(sock, &msg, MSG_DONTWAIT);
}

/*
 * The position a read or write of a proxy uses (@flags of the request):
 * RFILE_IO_SHARED, the held file's own f_pos, taken and (rfile_pos_end)
 * advanced under its f_pos_lock as read(2) and write(2) here do through
 * fdget_pos(); RFILE_IO_POS, the request's @pos (pread/pwrite, the held
 * file's position untouched); else none (a stream).  Returns whether
 * f_pos_lock is held.  The lock is only ever held for one op of a
 * regular file or directory (FMODE_ATOMIC_POS), never across a wait for
 * another party.
 */
static bool rfile_pos_begin(struct file *file, u32 flags, loff_t *pos,
			    loff_t **ppos)
{
	bool locked = false;

	if (flags & RFILE_IO_SHARED) {
		if (file->f_mode & FMODE_STREAM) {
			*ppos = NULL;
			return false;
		}
		if (file->f_mode & FMODE_ATOMIC_POS) {
			mutex_lock(&file->f_pos_lock);
			locked = true;
		}
		*pos = file->f_pos;
		*ppos = pos;
		return locked;
	}
	*ppos = (flags & RFILE_IO_POS) ? pos : NULL;
	return false;
}

static void rfile_pos_end(struct file *file, u32 flags, bool locked,
			  ssize_t ret, loff_t pos)
{
	/* As ksys_read()/ksys_write(): the position moves on success. */
	if ((flags & RFILE_IO_SHARED) && !(file->f_mode & FMODE_STREAM) &&
	    ret >= 0)
		file->f_pos = pos;
	if (locked)
		mutex_unlock(&file->f_pos_lock);
}

int rfile_srv_read(unsigned int from, const struct rfile_read_req *req,
		   struct rfile_read_rep *rep)
{
	struct rfile_export *ex;
	struct iov_iter iter;
	struct kvec kv;
	struct file *file, *io;
	struct socket *sock;
	loff_t pos = req->pos, *ppos;
	bool locked, unguarded;
	int cookie;
	ssize_t ret;

	if (req->count > RFILE_CHUNK || req->pos < 0) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -EINVAL;
	}
	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	file = ex->file;
	ret = rfile_apply_fl(file, req->fl);
	if (ret)
		goto out;
	if (!(file->f_mode & FMODE_READ)) {
		ret = -EBADF;
		goto out;
	}
	if (rfile_may_block(file))
		rfile_subscribe(ex, from);
	kv.iov_base = rep->data;
	kv.iov_len = req->count;
	iov_iter_kvec(&iter, ITER_DEST, &kv, 1, req->count);
	sock = sock_from_file(file);
	if (sock) {
		ret = rfile_sock_io(sock, &iter, false);
	} else {
		io = rfile_io_file(ex, EPOLLIN | EPOLLRDNORM, &unguarded);
		if (IS_ERR(io)) {
			ret = PTR_ERR(io);
			goto out;
		}
		ret = rfile_io_begin(ex, from, false, &cookie);
		if (ret)
			goto out;
		locked = rfile_pos_begin(file, req->flags, &pos, &ppos);
		if (!io->f_op->read_iter && io->f_op->read)
			ret = rfile_plain_io(io, rep->data, req->count, ppos,
					     false, unguarded);
		else if (unguarded)
			ret = rfile_guarded_read(io, &iter, ppos);
		else
			ret = vfs_iter_read(io, &iter, ppos, 0);
		rfile_pos_end(file, req->flags, locked, ret, pos);
		rfile_io_end(ex, false, cookie);
	}
	if (ret >= 0) {
		rep->data_len = ret;
		rep->pos = pos;
		ret = 0;
	}
out:
	rfile_export_put_op(ex);
	return ret;
}

int rfile_srv_write(unsigned int from, const struct rfile_write_req *req,
		    struct rfile_write_rep *rep)
{
	struct rfile_export *ex;
	struct iov_iter iter;
	struct kvec kv;
	struct file *file, *io;
	struct socket *sock;
	loff_t pos = req->pos, *ppos;
	bool locked, unguarded;
	int cookie;
	ssize_t ret;

	if (req->pos < 0) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -EINVAL;
	}
	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	file = ex->file;
	ret = rfile_apply_fl(file, req->fl);
	if (ret)
		goto out;
	if (!(file->f_mode & FMODE_WRITE)) {
		ret = -EBADF;
		goto out;
	}
	if (rfile_may_block(file))
		rfile_subscribe(ex, from);
	kv.iov_base = (void *)req->data;
	kv.iov_len = req->data_len;
	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, req->data_len);
	sock = sock_from_file(file);
	if (sock) {
		ret = rfile_sock_io(sock, &iter, true);
	} else {
		io = rfile_io_file(ex, EPOLLOUT | EPOLLWRNORM, &unguarded);
		if (IS_ERR(io)) {
			ret = PTR_ERR(io);
			goto out;
		}
		ret = rfile_io_begin(ex, from, true, &cookie);
		if (ret)
			goto out;
		locked = rfile_pos_begin(file, req->flags, &pos, &ppos);
		if (!io->f_op->write_iter && io->f_op->write)
			ret = rfile_plain_io(io, (void *)req->data,
					     req->data_len, ppos, true, false);
		else
			ret = vfs_iter_write(io, &iter, ppos, 0);
		rfile_pos_end(file, req->flags, locked, ret, pos);
		rfile_io_end(ex, true, cookie);
	}
	if (ret >= 0) {
		rep->written = ret;
		rep->pos = pos;
		ret = 0;
	}
out:
	rfile_export_put_op(ex);
	return ret;
}

int rfile_srv_poll(unsigned int from, const struct rfile_poll_req *req,
		   struct rfile_poll_rep *rep)
{
	struct rfile_export *ex;
	int ret;

	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	ret = rfile_apply_fl(ex->file, req->fl);
	if (!ret) {
		rfile_subscribe(ex, from);
		rep->mask = (__force u32)vfs_poll(ex->file, NULL);
	}
	rfile_export_put_op(ex);
	return ret;
}

int rfile_srv_fsync(unsigned int from, const struct rfile_fsync_req *req,
		    struct rfile_fsync_rep *rep)
{
	struct rfile_export *ex;
	int ret;

	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	ret = vfs_fsync(ex->file, !!req->datasync);
	rfile_export_put_op(ex);
	return ret;
}

int rfile_srv_llseek(unsigned int from, const struct rfile_llseek_req *req,
		     struct rfile_llseek_rep *rep)
{
	struct rfile_export *ex;
	struct file *file;
	bool locked = false;
	loff_t ret;

	if (req->whence > SEEK_MAX) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -EINVAL;
	}
	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	file = ex->file;
	if (!(file->f_mode & FMODE_LSEEK)) {
		ret = -ESPIPE;
		goto out;
	}
	/*
	 * The proxy's lseek moves the open file description's one position,
	 * the held file's, as lseek(2) here does (fdget_pos: f_pos_lock).
	 */
	if (file->f_mode & FMODE_ATOMIC_POS) {
		mutex_lock(&file->f_pos_lock);
		locked = true;
	}
	ret = vfs_llseek(file, req->offset, req->whence);
	if (locked)
		mutex_unlock(&file->f_pos_lock);
	if (ret >= 0) {
		rep->pos = ret;
		ret = 0;
	}
out:
	rfile_export_put_op(ex);
	return ret;
}

int rfile_srv_stat(unsigned int from, const struct rfile_stat_req *req,
		   struct rfile_stat_rep *rep)
{
	struct rfile_export *ex;
	struct file *file;
	struct kstat st;
	int ret;

	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	file = ex->file;
	ret = vfs_getattr(&file->f_path, &st, STATX_BASIC_STATS,
			  AT_STATX_SYNC_AS_STAT);
	if (!ret) {
		rep->mode = st.mode;
		rep->uid = from_kuid_munged(&init_user_ns, st.uid);
		rep->gid = from_kgid_munged(&init_user_ns, st.gid);
		rep->rdev = new_encode_dev(st.rdev);
		rep->nlink = st.nlink;
		rep->blksize = st.blksize;
		rep->ino = st.ino;
		rep->size = st.size;
		rep->blocks = st.blocks;
		rep->atime = st.atime.tv_sec;
		rep->atime_ns = st.atime.tv_nsec;
		rep->mtime = st.mtime.tv_sec;
		rep->mtime_ns = st.mtime.tv_nsec;
		rep->ctime = st.ctime.tv_sec;
		rep->ctime_ns = st.ctime.tv_nsec;
		rep->pos = file->f_pos;
		rep->f_flags = file->f_flags;
		rep->fmode = (__force u32)(file->f_mode & RFILE_FMODE_MIRROR);
	}
	rfile_export_put_op(ex);
	return ret;
}

/*
 * ioctl runs the held file's own ->unlocked_ioctl, which takes a user
 * pointer: the argument is copied into one scratch page of a user address
 * space this module keeps (PID 1's at first use, referenced for good), and
 * the dispatch worker runs the ioctl with that address space adopted
 * (kthread_use_mm), as io_uring's workers do.
 */
static DEFINE_MUTEX(rfile_ioc_lock);
static struct mm_struct *rfile_ioc_mm;
static unsigned long rfile_ioc_addr;

static int rfile_ioc_setup(void)
{
	struct task_struct *init;
	struct mm_struct *mm;
	unsigned long addr;

	lockdep_assert_held(&rfile_ioc_lock);
	if (rfile_ioc_mm)
		return 0;
	if (!(current->flags & PF_KTHREAD) || current->mm)
		return -EOPNOTSUPP;
	rcu_read_lock();
	init = pid_task(find_pid_ns(1, &init_pid_ns), PIDTYPE_PID);
	if (init)
		get_task_struct(init);
	rcu_read_unlock();
	if (!init)
		return -ESRCH;
	mm = get_task_mm(init);
	put_task_struct(init);
	if (!mm)
		return -ESRCH;
	kthread_use_mm(mm);
	addr = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, 0);
	kthread_unuse_mm(mm);
	if (IS_ERR_VALUE(addr)) {
		mmput(mm);
		return (int)addr;
	}
	rfile_ioc_mm = mm;
	rfile_ioc_addr = addr;
	return 0;
}

/*
 * A file with ->read or ->write but no ->read_iter/->write_iter (most of
 * /proc/<pid>/, proc_create() entries, many character devices), which
 * vfs_iter_read()/vfs_iter_write() refuse (EINVAL): run its own op on a
 * user buffer, the ioctl scratch page, one page at a time, as read(2) and
 * write(2) would (file_start_write() as vfs_write()).  What was done
 * before an error is the answer; @guard as rfile_guarded_read().
 */
static ssize_t rfile_plain_io(struct file *file, void *buf, size_t count,
			      loff_t *ppos, bool write, bool guard)
{
	char __user *ubuf;
	size_t done = 0;
	ssize_t ret;

	mutex_lock(&rfile_ioc_lock);
	ret = rfile_ioc_setup();
	if (ret)
		goto unlock;
	kthread_use_mm(rfile_ioc_mm);
	ubuf = (char __user *)rfile_ioc_addr;
	if (guard)
		set_thread_flag(TIF_NOTIFY_SIGNAL);
	while (done < count) {
		size_t len = min_t(size_t, count - done, PAGE_SIZE);

		if (write) {
			if (copy_to_user(ubuf, buf + done, len)) {
				ret = -EFAULT;
				break;
			}
			file_start_write(file);
			ret = file->f_op->write(file, ubuf, len, ppos);
			file_end_write(file);
		} else {
			ret = file->f_op->read(file, ubuf, len, ppos);
			if (ret > 0 && copy_from_user(buf + done, ubuf, ret))
				ret = -EFAULT;
		}
		if (ret <= 0)
			break;
		done += ret;
		if ((size_t)ret < len)
			break;
	}
	if (guard) {
		clear_notify_signal();
		ret = rfile_unguard_ret(ret);
	}
	kthread_unuse_mm(rfile_ioc_mm);
unlock:
	mutex_unlock(&rfile_ioc_lock);
	return done ? done : ret;
}

int rfile_srv_ioctl(unsigned int from, const struct rfile_ioctl_req *req,
		    struct rfile_ioctl_rep *rep)
{
	struct rfile_export *ex;
	void __user *uarg;
	u32 in_len, out_len;
	long ret;

	if (!rfile_ioctl_allowed(req->cmd, &in_len, &out_len) ||
	    req->in_len != in_len) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -ENOTTY;
	}
	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	ret = rfile_apply_fl(ex->file, req->fl);
	if (ret)
		goto out;
	if (!ex->file->f_op->unlocked_ioctl) {
		ret = -ENOTTY;
		goto out;
	}
	mutex_lock(&rfile_ioc_lock);
	ret = rfile_ioc_setup();
	if (ret)
		goto unlock;
	kthread_use_mm(rfile_ioc_mm);
	uarg = (void __user *)rfile_ioc_addr;
	if (in_len && copy_to_user(uarg, req->in, in_len)) {
		ret = -EFAULT;
		goto unuse;
	}
	if (in_len || out_len)
		ret = ex->file->f_op->unlocked_ioctl(ex->file, req->cmd,
						     (unsigned long)uarg);
	else
		ret = ex->file->f_op->unlocked_ioctl(ex->file, req->cmd,
						     req->arg);
	if (ret == -ENOIOCTLCMD)	/* as vfs_ioctl() */
		ret = -ENOTTY;
	if (ret >= 0 && out_len) {
		if (copy_from_user(rep->out, uarg, out_len))
			ret = -EFAULT;
		else
			rep->out_len = out_len;
	}
	rep->ret = ret;
	if (ret >= 0)
		ret = 0;
unuse:
	kthread_unuse_mm(rfile_ioc_mm);
unlock:
	mutex_unlock(&rfile_ioc_lock);
out:
	rfile_export_put_op(ex);
	return ret;
}

/* ---- record locks and flock ---- */

/*
 * The owner on this node of the POSIX locks a process of node @node takes
 * through a proxy (@owner: its files_struct's address there): a value no
 * local owner can be (bit 62 set and 63 clear: neither a kernel nor a user
 * address), the node in bits 48..53, the low 48 bits of @owner below.
 */
#define RFILE_OWNER_TAG		BIT_ULL(62)
#define RFILE_OWNER_TAGMASK	GENMASK_ULL(63, 62)
#define RFILE_OWNER_NODE_SHIFT	48
#define RFILE_OWNER_LOW		GENMASK_ULL(47, 0)

static fl_owner_t rfile_owner(unsigned int node, u64 owner)
{
	return (fl_owner_t)(unsigned long)(RFILE_OWNER_TAG |
		((u64)node << RFILE_OWNER_NODE_SHIFT) |
		(owner & RFILE_OWNER_LOW));
}

/* Is @o a remote owner, of @node (0: of any node)? */
static bool rfile_owner_of(fl_owner_t o, unsigned int node)
{
	u64 v = (unsigned long)o;

	if ((v & RFILE_OWNER_TAGMASK) != RFILE_OWNER_TAG)
		return false;
	return !node || ((v >> RFILE_OWNER_NODE_SHIFT) & 0x3f) == node;
}

/* Drop every POSIX lock @owner holds on @file's inode (close(2) does so). */
static int rfile_unlock_owner(struct file *file, fl_owner_t owner)
{
	struct file_lock fl;
	int ret;

	locks_init_lock(&fl);
	fl.fl_flags = FL_POSIX;
	fl.fl_type = F_UNLCK;
	fl.fl_owner = owner;
	fl.fl_file = file;
	fl.fl_start = 0;
	fl.fl_end = OFFSET_MAX;
	ret = vfs_lock_file(file, F_SETLK, &fl, NULL);
	locks_release_private(&fl);
	return ret;
}

/*
 * Drop the POSIX locks remote owners (of @node; 0: of every node) took on
 * @file: a node went down, or the export is released (a lock of it left
 * behind would outlive the file: "leaked POSIX lock" at its last fput).
 */
static void rfile_unlock_remote(struct file *file, unsigned int node)
{
	struct file_lock_context *ctx;
	struct file_lock *fl;
	fl_owner_t owner;
	unsigned int i;

	/* Pairs with locks_get_lock_context()'s cmpxchg, as fs/locks.c reads it. */
	ctx = smp_load_acquire(&file_inode(file)->i_flctx);
	if (!ctx)
		return;
	for (i = 0; i < 4096; i++) {
		owner = NULL;
		spin_lock(&ctx->flc_lock);
		list_for_each_entry(fl, &ctx->flc_posix, fl_list) {
			if (fl->fl_file == file &&
			    rfile_owner_of(fl->fl_owner, node)) {
				owner = fl->fl_owner;
				break;
			}
		}
		spin_unlock(&ctx->flc_lock);
		if (!owner || rfile_unlock_owner(file, owner))
			return;
	}
}

/*
 * A lock request of a proxy, run on the held file without waiting: a
 * conflict is EAGAIN and the client retries (F_SETLKW, blocking flock).
 * POSIX locks belong to the calling node's process (rfile_owner()), OFD
 * locks and flock to the open file description, which is the held file.
 */
int rfile_srv_lock(unsigned int from, const struct rfile_lock_req *req,
		   struct rfile_lock_rep *rep)
{
	struct rfile_export *ex;
	struct file_lock fl;
	struct file *file;
	int ret;

	bool waits = req->op == RFILE_LK_SETW || req->op == RFILE_LK_CANCEL;

	if (!from || from > SSI_MAX_NODES || req->op > RFILE_LK_CANCEL ||
	    req->kind > RFILE_LK_FLOCK ||
	    (req->type != F_RDLCK && req->type != F_WRLCK &&
	     req->type != F_UNLCK) ||
	    req->start < 0 || req->end < req->start ||
	    (req->kind == RFILE_LK_FLOCK && req->op != RFILE_LK_SET) ||
	    (req->op == RFILE_LK_UNOWN && req->kind != RFILE_LK_POSIX) ||
	    (waits && (req->kind != RFILE_LK_POSIX ||
		       req->type == F_UNLCK))) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -EINVAL;
	}
	ex = rfile_export_find(req->id, from);
	if (!ex)
		return -EBADF;
	file = ex->file;
	if (req->op == RFILE_LK_UNOWN) {
		rfile_lkwait_drop(file, from, rfile_owner(from, req->owner),
				  NULL);
		ret = rfile_unlock_owner(file, rfile_owner(from, req->owner));
		goto out;
	}
	locks_init_lock(&fl);
	fl.fl_file = file;
	fl.fl_type = req->type;
	fl.fl_pid = req->pid;
	fl.fl_start = req->start;
	fl.fl_end = req->end;
	if (req->kind == RFILE_LK_FLOCK) {
		fl.fl_flags = FL_FLOCK;
		fl.fl_owner = file;
		fl.fl_start = 0;
		fl.fl_end = OFFSET_MAX;
		if (file->f_op->flock)
			ret = file->f_op->flock(file, F_SETLK, &fl);
		else
			ret = locks_lock_file_wait(file, &fl);
		goto done;
	}
	if (req->kind == RFILE_LK_OFD) {
		fl.fl_flags = FL_POSIX | FL_OFDLCK;
		fl.fl_owner = file;
	} else {
		fl.fl_flags = FL_POSIX;
		fl.fl_owner = rfile_owner(from, req->owner);
	}
	if (req->op == RFILE_LK_TEST) {
		ret = vfs_test_lock(file, &fl);
		if (!ret) {
			rep->type = fl.fl_type;
			rep->pid = (fl.fl_flags & FL_OFDLCK) ? -1 : fl.fl_pid;
			rep->start = fl.fl_start;
			rep->end = fl.fl_end;
		}
		goto done;
	}
	if (req->op == RFILE_LK_CANCEL) {
		rfile_lkwait_drop(file, from, fl.fl_owner, &fl);
		ret = 0;
		goto done;
	}
	/* Before the lock exists, so a node-down after it always sees it. */
	if (req->kind == RFILE_LK_POSIX && req->type != F_UNLCK)
		atomic64_or(BIT_ULL(from), &ex->lockers);
	/*
	 * A file system with its own ->lock (9p, NFS) might sleep in it for
	 * F_SETLKW: its requests are tried as F_SETLK, without detection.
	 */
	if (req->op == RFILE_LK_SETW && !file->f_op->lock)
		ret = rfile_lkwait_set(file, ex->id, from, &fl);
	else
		ret = vfs_lock_file(file, F_SETLK, &fl, NULL);
done:
	locks_release_private(&fl);
out:
	rfile_export_put_op(ex);
	return ret;
}

/* ---- getfd ---- */

/* The credentials of a remote caller (ssi_cred_build()). */
static struct cred *rfile_cred_build(const struct rfile_getfd_req *r)
{
	struct ssi_creds c;

	SSI_CREDS_FROM_REQ(&c, r);
	return ssi_cred_build(&c);
}

/* CAP_SYS_PTRACE over everything: only a caller of the initial user ns. */
static bool rfile_ptrace_cap(const struct cred *cred)
{
	return cred->user_ns == &init_user_ns &&
	       cap_raised(cred->cap_effective, CAP_SYS_PTRACE);
}

/*
 * __ptrace_may_access(task, PTRACE_MODE_ATTACH_REALCREDS) for @cred: the
 * real ids match all of the target's, or CAP_SYS_PTRACE; a non-dumpable
 * target needs CAP_SYS_PTRACE.  ptrace_may_access() itself is not
 * exported, so the LSM hook (Yama) is not run: see README.md.
 */
static bool rfile_may_attach(struct task_struct *task, const struct cred *cred)
{
	const struct cred *tcred;
	struct mm_struct *mm;
	bool ok;

	if (task->flags & PF_KTHREAD)
		return false;
	rcu_read_lock();
	tcred = __task_cred(task);
	ok = (uid_eq(cred->uid, tcred->euid) && uid_eq(cred->uid, tcred->suid) &&
	      uid_eq(cred->uid, tcred->uid) && gid_eq(cred->gid, tcred->egid) &&
	      gid_eq(cred->gid, tcred->sgid) && gid_eq(cred->gid, tcred->gid)) ||
	     rfile_ptrace_cap(cred);
	rcu_read_unlock();
	if (!ok)
		return false;
	task_lock(task);
	mm = task->mm;
	if (mm && get_dumpable(mm) != SUID_DUMP_USER && !rfile_ptrace_cap(cred))
		ok = false;
	task_unlock(task);
	return ok;
}

/*
 * pidfd_getfd() of fd @fd of process @pid (initial PID namespace) running
 * here, for a caller with credentials @cred: the file, referenced.
 */
int rfile_getfd_local(pid_t pid, int fd, const struct cred *cred,
		      struct file **filep)
{
	struct task_struct *task;
	struct file *file;
	unsigned int n = fd;
	int ret;

	if (pid <= 0)
		return -ESRCH;
	if (fd < 0)
		return -EBADF;
	rcu_read_lock();
	task = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);
	if (task)
		get_task_struct(task);
	rcu_read_unlock();
	if (!task)
		return -ESRCH;
	ret = down_read_killable(&task->signal->exec_update_lock);
	if (ret)
		goto out_task;
	if (!rfile_may_attach(task, cred)) {
		ret = -EPERM;
		goto out_unlock;
	}
	rcu_read_lock();
	file = task_lookup_next_fd_rcu(task, &n);
	if (!file || n != fd || !get_file_rcu(file))
		file = NULL;
	rcu_read_unlock();
	if (!file) {
		ret = -EBADF;
		goto out_unlock;
	}
	*filep = file;
out_unlock:
	up_read(&task->signal->exec_update_lock);
out_task:
	put_task_struct(task);
	return ret;
}

int rfile_srv_getfd(unsigned int from, const struct rfile_getfd_req *req,
		    struct rfile_getfd_rep *rep)
{
	struct rfile_handle h;
	struct file *file;
	struct cred *cred;
	int ret;

	if (!from || from > SSI_MAX_NODES || from == rfile_self()) {
		rfile_count(RFILE_CNT_BAD_REQUEST);
		return -EINVAL;
	}
	cred = rfile_cred_build(req);
	if (IS_ERR(cred))
		return PTR_ERR(cred);
	ret = rfile_getfd_local(req->pid, req->fd, cred, &file);
	put_cred(cred);
	if (ret)
		return ret;
	ret = rfile_export(file, from, &h);
	if (!ret) {
		rep->id = h.id;
		rep->f_flags = file->f_flags;
	}
	fput(file);
	return ret;
}

int rfile_srv_init(void)
{
	return 0;
}

static void rfile_ioc_unmap(struct work_struct *work)
{
	kthread_use_mm(rfile_ioc_mm);
	vm_munmap(rfile_ioc_addr, PAGE_SIZE);
	kthread_unuse_mm(rfile_ioc_mm);
}

/* Module exit: no export is left (every proxy holds the module). */
void rfile_srv_exit(void)
{
	struct rfile_export *ex;
	struct hlist_node *n;
	unsigned int bkt;
	LIST_HEAD(gone);

	spin_lock(&rfile_lock);
	hash_for_each_safe(rfile_exports, bkt, n, ex, hnode) {
		hash_del(&ex->hnode);
		list_add(&ex->dead, &gone);
	}
	spin_unlock(&rfile_lock);
	while (!list_empty(&gone)) {
		ex = list_first_entry(&gone, struct rfile_export, dead);
		list_del(&ex->dead);
		rfile_export_put_op(ex);
	}
	if (rfile_ioc_mm) {
		struct work_struct w;

		INIT_WORK_ONSTACK(&w, rfile_ioc_unmap);
		queue_work(rfile_workqueue(), &w);
		flush_work(&w);
		destroy_work_on_stack(&w);
		mmput(rfile_ioc_mm);
		rfile_ioc_mm = NULL;
	}
}
