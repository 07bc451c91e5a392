// SPDX-License-Identifier: GPL-2.0-only
/*
 * rfile client side: proxy files.  A proxy is a file of rfile's own
 * pseudo filesystem whose inode mirrors the held file's type, mode, owner
 * and rdev (fstat looks like the real thing), and whose file_operations
 * forward every call over ICS to the node holding the file.  Blocking
 * reads and writes wait here, interruptibly, for the holder's `ready`
 * messages.  The protocol is described at the top of rfile_main.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/kdev_t.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/poll.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/splice.h>
#include <linux/stat.h>
#include <linux/termios.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <linux/workqueue.h>

#include "clms.h"
#include "ics.h"
#include "rfile_gen.h"
#include "rfile_ics.h"
#include "rfile_internal.h"

#define RFILE_FS_MAGIC	0x5253464c	/* "RSFL" */

struct rfile_proxy {
	struct hlist_node hnode;	/* rfile_proxies, under rfile_px_lock */
	struct rfile_handle h;
	wait_queue_head_t wq;		/* waiters for the holder's `ready` */
	atomic_t seq;			/* bumped by every `ready` */
	bool dead;			/* the holder went down */
	u32 sent_fl;			/* f_flags & RFILE_SETFL_MASK last sent */
	bool posix_locks;		/* a POSIX lock was taken through it */
	struct fasync_struct *fasync;
};

static DEFINE_SPINLOCK(rfile_px_lock);
static DEFINE_HASHTABLE(rfile_proxies, 8);
static struct vfsmount *rfile_mnt;

static const struct file_operations rfile_fops;
static const struct inode_operations rfile_iops;

static u64 rfile_px_key(const struct rfile_handle *h)
{
	return h->id ^ ((u64)h->node << 56);
}

/* An ICS transport failure is an I/O error of the proxy. */
int rfile_errno(int err)
{
	switch (err) {
	case -EHOSTDOWN:
	case -ENOTCONN:
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EBADMSG:
	case -EMSGSIZE:
		return -EIO;
	default:
		return err;
	}
}

static int rfile_px_err(struct rfile_proxy *px, int err)
{
	if (READ_ONCE(px->dead))
		return -EIO;
	return rfile_errno(err);
}

/*
 * The proxy's O_APPEND/O_NONBLOCK for a request, marked RFILE_FL_SET when
 * they changed (F_SETFL, FIONBIO) since the proxy last sent them: only
 * then does the holder apply them, so a change made on the holder's side
 * of the open file description is not undone by every proxy op.
 */
static u32 rfile_fl(struct file *file)
{
	struct rfile_proxy *px = file->private_data;
	u32 fl = READ_ONCE(file->f_flags) & RFILE_SETFL_MASK;

	if (fl == READ_ONCE(px->sent_fl))
		return fl;
	WRITE_ONCE(px->sent_fl, fl);
	return fl | RFILE_FL_SET;
}

/*
 * Wait until a `ready` newer than @seq arrived (or the holder died).
 * -ERESTARTSYS on a signal: the syscall is restarted (SA_RESTART) or
 * fails with EINTR, as a local blocking read of a pipe or tty does.
 */
static int rfile_wait(struct rfile_proxy *px, int seq)
{
	if (wait_event_interruptible(px->wq, atomic_read(&px->seq) != seq ||
				     READ_ONCE(px->dead)))
		return -ERESTARTSYS;
	return READ_ONCE(px->dead) ? -EIO : 0;
}

static bool rfile_nonblock(struct kiocb *iocb)
{
	return (iocb->ki_filp->f_flags & O_NONBLOCK) ||
	       (iocb->ki_flags & IOCB_NOWAIT);
}

/*
 * How a read or write of a proxy is positioned (the request's flags).  A
 * stream (no FMODE_LSEEK): not at all.  A seekable file has ONE position,
 * the held file's f_pos (the open file description's, shared with the
 * holder's other users and every other proxy of it): read(2), write(2),
 * readv, writev, splice and sendfile without an offset use and advance it
 * on the holder (RFILE_IO_SHARED), and the proxy's own f_pos mirrors the
 * answer.  ->read_iter cannot tell those from pread(2) and friends, which
 * must leave it alone: the VFS hands read(2) the proxy's f_pos as
 * ki_pos, so any other ki_pos is positioned (RFILE_IO_POS).  A pread at
 * exactly the proxy's (mirrored, maybe stale) f_pos is taken for a read
 * (README.md).
 */
static u32 rfile_io_mode(struct kiocb *iocb)
{
	struct file *file = iocb->ki_filp;

	if (!(file->f_mode & FMODE_LSEEK))
		return 0;
	return iocb->ki_pos == file->f_pos ? RFILE_IO_SHARED : RFILE_IO_POS;
}

/*
 * Pipelined I/O.  A positioned read or write of a regular file (never
 * O_APPEND) longer than one chunk keeps up to RFILE_WINDOW chunk calls in
 * flight, each made by a worker of rfile's workqueue, so that the holder works
 * on one chunk while the next travels (one stream used one vCPU at a time
 * of the two nodes).  The caller copies each chunk from or to its iterator
 * itself, in order, and the result is the longest prefix done, as one
 * call after another would give; a chunk that fails or comes short ends
 * it.  Chunks issued after that one are waited for and their data, a
 * read's, dropped: a write's were written, beyond the count returned, as
 * a failed write-behind of NFS leaves them.
 */
#define RFILE_WINDOW	4

struct rfile_chunk {
	struct work_struct work;
	struct completion done;
	unsigned int node;
	size_t count;
	int ret;
	struct rfile_write_req *wreq;	/* a write's, with its data */
	struct rfile_write_rep wrep;
	struct rfile_read_req rreq;
	struct rfile_read_rep *rrep;	/* a read's, with its data */
};

static void rfile_chunk_work(struct work_struct *work)
{
	struct rfile_chunk *c = container_of(work, struct rfile_chunk, work);

	if (c->wreq)
		c->ret = ics_rfile_write(c->node, c->wreq, &c->wrep,
					 RFILE_TIMEOUT);
	else
		c->ret = ics_rfile_read(c->node, &c->rreq, c->rrep,
					RFILE_TIMEOUT);
	complete(&c->done);
}

static bool rfile_pipelined(struct kiocb *iocb, size_t count)
{
	struct file *file = iocb->ki_filp;

	return count > RFILE_CHUNK && S_ISREG(file_inode(file)->i_mode) &&
	       !(iocb->ki_flags & (IOCB_APPEND | IOCB_NOWAIT)) &&
	       rfile_io_mode(iocb) == RFILE_IO_POS;
}

static void rfile_chunks_free(struct rfile_chunk *c, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		kvfree(c[i].wreq);
		kvfree(c[i].rrep);
	}
	kfree(c);
}

static struct rfile_chunk *rfile_chunks_alloc(size_t count, bool write,
					      unsigned int *n)
{
	struct rfile_chunk *c;
	unsigned int i;

	*n = min_t(size_t, RFILE_WINDOW, DIV_ROUND_UP(count, RFILE_CHUNK));
	c = kcalloc(*n, sizeof(*c), GFP_KERNEL);
	if (!c)
		return NULL;
	for (i = 0; i < *n; i++) {
		INIT_WORK(&c[i].work, rfile_chunk_work);
		init_completion(&c[i].done);
		if (write)
			c[i].wreq = kvmalloc(sizeof(*c[i].wreq), GFP_KERNEL);
		else
			c[i].rrep = kvmalloc(sizeof(*c[i].rrep), GFP_KERNEL);
		if (write ? !c[i].wreq : !c[i].rrep) {
			rfile_chunks_free(c, i + 1);
			return NULL;
		}
	}
	return c;
}

/* A chunk of @iter at @pos on its way: the caller's bytes copied first. */
static int rfile_chunk_issue(struct rfile_proxy *px, struct rfile_chunk *c,
			     struct iov_iter *iter, loff_t pos, u32 fl)
{
	size_t copied;

	c->node = px->h.node;
	c->count = min_t(size_t, iov_iter_count(iter), RFILE_CHUNK);
	if (c->wreq) {
		copied = copy_from_iter(c->wreq->data, c->count, iter);
		if (copied != c->count) {
			iov_iter_revert(iter, copied);
			return -EFAULT;
		}
		c->wreq->id = px->h.id;
		c->wreq->data_len = c->count;
		c->wreq->pos = pos;
		c->wreq->fl = fl;
		c->wreq->flags = RFILE_IO_POS;
	} else {
		c->rreq = (struct rfile_read_req) {
			.id = px->h.id, .pos = pos, .count = c->count,
			.fl = fl, .flags = RFILE_IO_POS,
		};
	}
	reinit_completion(&c->done);
	queue_work(rfile_workqueue(), &c->work);
	return 0;
}

/*
 * The bytes chunk @c did, its data copied to @iter for a read: @c->count,
 * or fewer (the end; *@fault: the copy to the caller failed), or an errno.
 */
static ssize_t rfile_chunk_done(struct rfile_proxy *px, struct rfile_chunk *c,
				struct iov_iter *iter, loff_t *pos, bool *fault)
{
	size_t n, copied;

	if (c->ret)
		return rfile_px_err(px, c->ret);
	if (c->wreq) {
		*pos = c->wrep.pos;
		return min_t(size_t, c->wrep.written, c->count);
	}
	n = min_t(size_t, c->rrep->data_len, c->count);
	copied = copy_to_iter(c->rrep->data, n, iter);
	*fault = copied != n;
	*pos = c->rrep->pos - (n - copied);
	return copied;
}

static ssize_t rfile_pipelined_io(struct kiocb *iocb, struct iov_iter *iter,
				  bool write)
{
	struct file *file = iocb->ki_filp;
	struct rfile_proxy *px = file->private_data;
	unsigned int n, head = 0, tail = 0;
	loff_t next = iocb->ki_pos, pos = iocb->ki_pos;
	size_t issued = 0;
	struct rfile_chunk *chunks, *c;
	ssize_t total = 0, got;
	bool ended = false, fault = false;
	u32 fl = rfile_fl(file);
	int ret = 0;

	chunks = rfile_chunks_alloc(iov_iter_count(iter), write, &n);
	if (!chunks)
		return -ENOMEM;
	while (head != tail || (!ended && iov_iter_count(iter))) {
		if (!ended && iov_iter_count(iter) && tail - head < n) {
			c = &chunks[tail % n];
			if (READ_ONCE(px->dead)) {
				ret = -EIO;
				ended = true;
				continue;
			}
			ret = rfile_chunk_issue(px, c, iter, next, fl);
			if (ret) {
				ended = true;
				continue;
			}
			next += c->count;
			issued += c->count;
			tail++;
			continue;
		}
		c = &chunks[head++ % n];
		wait_for_completion(&c->done);
		if (ended)
			continue;
		got = rfile_chunk_done(px, c, iter, &pos, &fault);
		if (got < 0) {
			ret = got;
			ended = true;
			continue;
		}
		total += got;
		iocb->ki_pos = pos;
		if (fault)
			ret = -EFAULT;
		if (got < c->count)
			ended = true;
	}
	rfile_chunks_free(chunks, n);
	/* a write's iterator gave what was issued: give back what was not done */
	if (write && issued > total)
		iov_iter_revert(iter, issued - total);
	return total ? total : ret;
}

static ssize_t rfile_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct file *file = iocb->ki_filp;
	struct rfile_proxy *px = file->private_data;
	u32 mode = rfile_io_mode(iocb);
	struct rfile_read_req req = { .id = px->h.id };
	struct rfile_read_rep *rep;
	ssize_t total = 0;
	size_t count, n;
	int ret = 0, seq;

	if (!iov_iter_count(to))
		return 0;
	if (rfile_pipelined(iocb, iov_iter_count(to)))
		return rfile_pipelined_io(iocb, to, false);
	rep = kvmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return -ENOMEM;
	while (iov_iter_count(to)) {
		if (READ_ONCE(px->dead)) {
			ret = -EIO;
			break;
		}
		count = min_t(size_t, iov_iter_count(to), RFILE_CHUNK);
		req.pos = mode ? iocb->ki_pos : 0;
		req.count = count;
		req.fl = rfile_fl(file);
		req.flags = mode;
		seq = atomic_read(&px->seq);
		ret = ics_rfile_read(px->h.node, &req, rep, RFILE_TIMEOUT);
		if (ret == -EAGAIN && !total && !rfile_nonblock(iocb)) {
			ret = rfile_wait(px, seq);
			if (ret)
				break;
			continue;
		}
		if (ret) {
			ret = rfile_px_err(px, ret);
			break;
		}
		n = copy_to_iter(rep->data, rep->data_len, to);
		total += n;
		if (mode)
			iocb->ki_pos = rep->pos;
		if (n < rep->data_len) {
			ret = -EFAULT;
			break;
		}
		/* A stream returns what it had; a file reads on to the end. */
		if (!mode || rep->data_len < count)
			break;
	}
	kvfree(rep);
	return total ? total : ret;
}

static ssize_t rfile_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct file *file = iocb->ki_filp;
	struct rfile_proxy *px = file->private_data;
	u32 mode = rfile_io_mode(iocb);
	struct rfile_write_rep rep;
	struct rfile_write_req *req;
	ssize_t total = 0;
	size_t count, n;
	int ret = 0, seq;

	if (!iov_iter_count(from))
		return 0;
	if (rfile_pipelined(iocb, iov_iter_count(from)))
		return rfile_pipelined_io(iocb, from, true);
	req = kvmalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	req->id = px->h.id;
	while (iov_iter_count(from)) {
		if (READ_ONCE(px->dead)) {
			ret = -EIO;
			break;
		}
		count = min_t(size_t, iov_iter_count(from), RFILE_CHUNK);
		if (copy_from_iter(req->data, count, from) != count) {
			ret = -EFAULT;
			break;
		}
		req->data_len = count;
		req->pos = mode ? iocb->ki_pos : 0;
		req->fl = rfile_fl(file);
		req->flags = mode;
		seq = atomic_read(&px->seq);
		ret = ics_rfile_write(px->h.node, req, &rep, RFILE_TIMEOUT);
		if (ret) {
			iov_iter_revert(from, count);
			if (ret == -EAGAIN && !rfile_nonblock(iocb)) {
				ret = rfile_wait(px, seq);
				if (ret)
					break;
				continue;
			}
			ret = rfile_px_err(px, ret);
			break;
		}
		n = min_t(size_t, rep.written, count);
		if (n < count)
			iov_iter_revert(from, count - n);
		total += n;
		if (mode)
			iocb->ki_pos = rep.pos;
		if (!n || (n < count && rfile_nonblock(iocb)))
			break;
	}
	kvfree(req);
	if (total)
		return total;
	/* The holder's worker ignores SIGPIPE: raise it here, as locally. */
	if (ret == -EPIPE)
		send_sig(SIGPIPE, current, 0);
	return ret;
}

/*
 * lseek moves the held file's own position (SEEK_CUR and SEEK_END from
 * the holder's), which the proxy's f_pos then mirrors.
 */
static loff_t rfile_llseek(struct file *file, loff_t offset, int whence)
{
	struct rfile_proxy *px = file->private_data;
	struct rfile_llseek_req req = {
		.id = px->h.id, .offset = offset, .whence = whence,
	};
	struct rfile_llseek_rep rep;
	int ret;

	if (!(file->f_mode & FMODE_LSEEK))
		return -ESPIPE;
	if (READ_ONCE(px->dead))
		return -EIO;
	ret = ics_rfile_llseek(px->h.node, &req, &rep, RFILE_TIMEOUT);
	if (ret)
		return rfile_px_err(px, ret);
	if (rep.pos < 0)
		return -EINVAL;
	if (rep.pos != file->f_pos) {
		file->f_pos = rep.pos;
		file->f_version = 0;
	}
	return rep.pos;
}

static __poll_t rfile_poll(struct file *file, poll_table *pt)
{
	struct rfile_proxy *px = file->private_data;
	struct rfile_poll_req req = { .id = px->h.id, .fl = rfile_fl(file) };
	struct rfile_poll_rep rep;

	poll_wait(file, &px->wq, pt);
	if (READ_ONCE(px->dead))
		return EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP;
	if (ics_rfile_poll(px->h.node, &req, &rep, RFILE_TIMEOUT))
		return EPOLLERR;
	return (__force __poll_t)rep.mask;
}

/*
 * The ioctls forwarded, with the bytes each reads from and writes to its
 * argument; the rest fail with ENOTTY (FIONBIO and FIOASYNC never get
 * here: the VFS applies them to the proxy, and O_NONBLOCK reaches the
 * held file with the next op).  Not TIOCSTI (input injection).
 */
static const struct {
	u32 cmd;
	u8 in, out;
} rfile_ioctls[] = {
	{ TCGETS, 0, sizeof(struct termios) },
	{ TCSETS, sizeof(struct termios), 0 },
	{ TCSETSW, sizeof(struct termios), 0 },
	{ TCSETSF, sizeof(struct termios), 0 },
	{ TCGETS2, 0, sizeof(struct termios2) },
	{ TCSETS2, sizeof(struct termios2), 0 },
	{ TCSETSW2, sizeof(struct termios2), 0 },
	{ TCSETSF2, sizeof(struct termios2), 0 },
	{ TIOCGWINSZ, 0, sizeof(struct winsize) },
	{ TIOCSWINSZ, sizeof(struct winsize), 0 },
	{ TIOCGPGRP, 0, sizeof(int) },
	{ TIOCSPGRP, sizeof(int), 0 },
	{ TIOCGSID, 0, sizeof(int) },
	{ FIONREAD, 0, sizeof(int) },
	{ TIOCOUTQ, 0, sizeof(int) },
	{ TIOCGPTN, 0, sizeof(unsigned int) },
	{ TIOCSPTLCK, sizeof(int), 0 },
	{ TCFLSH, 0, 0 },
	{ TCSBRK, 0, 0 },
	{ TCSBRKP, 0, 0 },
	{ TCXONC, 0, 0 },
};

bool rfile_ioctl_allowed(u32 cmd, u32 *in_len, u32 *out_len)
{
	unsigned int i;

	BUILD_BUG_ON(sizeof(struct termios2) > RFILE_IOC_MAX);
	for (i = 0; i < ARRAY_SIZE(rfile_ioctls); i++) {
		if (rfile_ioctls[i].cmd == cmd) {
			*in_len = rfile_ioctls[i].in;
			*out_len = rfile_ioctls[i].out;
			return true;
		}
	}
	return false;
}

static long rfile_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct rfile_proxy *px = file->private_data;
	struct rfile_ioctl_req req = {
		.id = px->h.id, .fl = rfile_fl(file), .cmd = cmd, .arg = arg,
	};
	struct rfile_ioctl_rep rep;
	void __user *uarg = (void __user *)arg;
	u32 in_len, out_len;
	int ret;

	if (!rfile_ioctl_allowed(cmd, &in_len, &out_len))
		return -ENOTTY;
	if (READ_ONCE(px->dead))
		return -EIO;
	if (in_len && copy_from_user(req.in, uarg, in_len))
		return -EFAULT;
	req.in_len = in_len;
	ret = ics_rfile_ioctl(px->h.node, &req, &rep, RFILE_TIMEOUT);
	if (ret)
		return rfile_px_err(px, ret);
	if (rep.ret >= 0 && out_len) {
		if (rep.out_len != out_len)
			return -EIO;
		if (copy_to_user(uarg, rep.out, out_len))
			return -EFAULT;
	}
	return rep.ret;
}

static int rfile_fsync(struct file *file, loff_t start, loff_t end,
		       int datasync)
{
	struct rfile_proxy *px = file->private_data;
	struct rfile_fsync_req req = { .id = px->h.id, .datasync = datasync };
	struct rfile_fsync_rep rep;
	int ret;

	if (READ_ONCE(px->dead))
		return -EIO;
	ret = ics_rfile_fsync(px->h.node, &req, &rep, RFILE_TIMEOUT);
	return ret ? rfile_px_err(px, ret) : 0;
}

static int rfile_fasync(int fd, struct file *file, int on)
{
	struct rfile_proxy *px = file->private_data;

	return fasync_helper(fd, file, on, &px->fasync);
}

/*
 * Record locks and flock are the held file's, run by the holder (never
 * taken on the proxy's own inode).  @op, @kind: RFILE_LK_*.
 */
static int rfile_lock_call(struct file *file, u32 op, u32 kind,
			   const struct file_lock *fl, struct rfile_lock_rep *rep)
{
	struct rfile_proxy *px = file->private_data;
	struct rfile_lock_req req = {
		.id = px->h.id, .op = op, .kind = kind, .type = fl->fl_type,
		.pid = fl->fl_pid, .owner = (unsigned long)fl->fl_owner,
		.start = fl->fl_start, .end = fl->fl_end,
	};
	int ret;

	if (READ_ONCE(px->dead))
		return -EIO;
	ret = ics_rfile_lock(px->h.node, &req, rep, RFILE_TIMEOUT);
	return ret ? rfile_px_err(px, ret) : 0;
}

/* A `ready` newer than @seq came, or the holder went down. */
static bool rfile_woken(struct rfile_proxy *px, int seq)
{
	return atomic_read(&px->seq) != seq || READ_ONCE(px->dead);
}

/*
 * Set (or remove) a lock; the holder never waits, so a request that may
 * wait (F_SETLKW, flock without LOCK_NB) asks again while it conflicts,
 * after 10 ms doubling to 500 ms, until a signal: -ERESTARTSYS, as a
 * local wait for a lock.  A POSIX request that waits is left on the
 * holder as a blocked request of its kernel (RFILE_LK_SETW,
 * rfile_lkwait.c): its deadlock detection counts it (EDEADLK), and the
 * holder's `ready` when the lock it waits for goes ends the backoff
 * early.  A signal takes the request back (RFILE_LK_CANCEL).
 */
static int rfile_lock_set(struct file *file, u32 kind, struct file_lock *fl,
			  bool wait)
{
	struct rfile_proxy *px = file->private_data;
	u32 op = wait && kind == RFILE_LK_POSIX && fl->fl_type != F_UNLCK ?
		 RFILE_LK_SETW : RFILE_LK_SET;
	struct rfile_lock_rep rep;
	unsigned int ms = 10;
	long left;
	int ret, seq;

	for (;;) {
		seq = atomic_read(&px->seq);
		ret = rfile_lock_call(file, op, kind, fl, &rep);
		if (ret != -EAGAIN || !wait)
			return ret;
		left = wait_event_interruptible_timeout(px->wq,
							rfile_woken(px, seq),
							msecs_to_jiffies(ms));
		if (left < 0 || signal_pending(current)) {
			if (op == RFILE_LK_SETW)
				rfile_lock_call(file, RFILE_LK_CANCEL, kind, fl,
						&rep);
			return -ERESTARTSYS;
		}
		if (READ_ONCE(px->dead))
			return -EIO;
		ms = min(ms * 2, 500U);
	}
}

/* fcntl F_GETLK/F_SETLK/F_SETLKW and their OFD forms. */
static int rfile_lock(struct file *file, int cmd, struct file_lock *fl)
{
	struct rfile_proxy *px = file->private_data;
	u32 kind = (fl->fl_flags & FL_OFDLCK) ? RFILE_LK_OFD : RFILE_LK_POSIX;
	struct rfile_lock_rep rep;
	int ret;

	if (!(fl->fl_flags & FL_POSIX))
		return -ENOLCK;
	if (IS_GETLK(cmd)) {
		ret = rfile_lock_call(file, RFILE_LK_TEST, kind, fl, &rep);
		if (ret)
			return ret;
		fl->fl_type = rep.type;
		if (rep.type != F_UNLCK) {
			fl->fl_start = rep.start;
			fl->fl_end = rep.end;
			fl->fl_pid = rep.pid;
			/* An OFD lock reports l_pid -1 (locks_translate_pid). */
			if (rep.pid < 0)
				fl->fl_flags |= FL_OFDLCK;
		}
		return 0;
	}
	/* Its owner's locks go at close(2): see rfile_flush(). */
	if (kind == RFILE_LK_POSIX && fl->fl_type != F_UNLCK)
		WRITE_ONCE(px->posix_locks, true);
	return rfile_lock_set(file, kind, fl, IS_SETLKW(cmd));
}

/* flock(2): the lock is the open file description's, i.e. the held file's. */
static int rfile_flock(struct file *file, int cmd, struct file_lock *fl)
{
	if (!(fl->fl_flags & FL_FLOCK))
		return -ENOLCK;
	/*
	 * Not at the proxy's last fput (__fput has dropped the count): the
	 * open file description lives on with the holder, and so does its
	 * lock (released with the held file itself).
	 */
	if (fl->fl_type == F_UNLCK && !file_count(file))
		return 0;
	return rfile_lock_set(file, RFILE_LK_FLOCK, fl, IS_SETLKW(cmd));
}

/*
 * close(2) of a proxy drops the closing process's POSIX locks of the held
 * file, as a local close does (the VFS's own locks_remove_posix() finds
 * none on the proxy's inode).  Only once a POSIX lock went through it.
 */
static int rfile_flush(struct file *file, fl_owner_t id)
{
	struct rfile_proxy *px = file->private_data;
	struct file_lock fl = {
		.fl_type = F_UNLCK, .fl_owner = id, .fl_end = OFFSET_MAX,
	};
	struct rfile_lock_rep rep;

	if (READ_ONCE(px->posix_locks) && !READ_ONCE(px->dead))
		rfile_lock_call(file, RFILE_LK_UNOWN, RFILE_LK_POSIX, &fl, &rep);
	return 0;
}

static int rfile_release(struct inode *inode, struct file *file)
{
	struct rfile_proxy *px = file->private_data;

	spin_lock(&rfile_px_lock);
	hash_del(&px->hnode);
	spin_unlock(&rfile_px_lock);
	if (!READ_ONCE(px->dead))
		rfile_put(&px->h, rfile_self());
	/* A stat through /proc/<pid>/fd may still reach the inode: it fails. */
	WRITE_ONCE(px->dead, true);
	return 0;
}

static const struct file_operations rfile_fops = {
	.owner = THIS_MODULE,
	.llseek = rfile_llseek,
	.read_iter = rfile_read_iter,
	.write_iter = rfile_write_iter,
	.poll = rfile_poll,
	.unlocked_ioctl = rfile_ioctl,
	.fsync = rfile_fsync,
	.fasync = rfile_fasync,
	.flush = rfile_flush,
	.lock = rfile_lock,
	.flock = rfile_flock,
	.release = rfile_release,
	.splice_read = generic_file_splice_read,
	.splice_write = iter_file_splice_write,
};

static void rfile_fill_inode(struct inode *inode,
			     const struct rfile_stat_rep *st)
{
	inode->i_mode = st->mode;
	inode->i_uid = make_kuid(&init_user_ns, st->uid);
	inode->i_gid = make_kgid(&init_user_ns, st->gid);
	inode->i_rdev = new_decode_dev(st->rdev);
	set_nlink(inode, st->nlink);
	i_size_write(inode, st->size);
	inode->i_blocks = st->blocks;
	inode->i_atime.tv_sec = st->atime;
	inode->i_atime.tv_nsec = st->atime_ns;
	inode->i_mtime.tv_sec = st->mtime;
	inode->i_mtime.tv_nsec = st->mtime_ns;
	inode->i_ctime.tv_sec = st->ctime;
	inode->i_ctime.tv_nsec = st->ctime_ns;
}

static int rfile_getattr(struct user_namespace *mnt_userns,
			 const struct path *path, struct kstat *stat,
			 u32 request_mask, unsigned int query_flags)
{
	struct inode *inode = d_inode(path->dentry);
	struct rfile_proxy *px = inode->i_private;
	struct rfile_stat_req req = { .id = px->h.id };
	struct rfile_stat_rep rep;
	int ret;

	if (READ_ONCE(px->dead))
		return -EIO;
	ret = ics_rfile_stat(px->h.node, &req, &rep, RFILE_TIMEOUT);
	if (ret)
		return rfile_px_err(px, ret);
	/* The held file's type never changes; its mode, size, times may. */
	if ((rep.mode & S_IFMT) == (inode->i_mode & S_IFMT)) {
		spin_lock(&inode->i_lock);
		rfile_fill_inode(inode, &rep);
		spin_unlock(&inode->i_lock);
	}
	generic_fillattr(mnt_userns, inode, stat);
	stat->ino = rep.ino;
	stat->blksize = rep.blksize;
	return 0;
}

/* chmod, chown, truncate of a proxy are not forwarded (EOPNOTSUPP). */
static int rfile_setattr(struct user_namespace *mnt_userns,
			 struct dentry *dentry, struct iattr *attr)
{
	return -EOPNOTSUPP;
}

static const struct inode_operations rfile_iops = {
	.getattr = rfile_getattr,
	.setattr = rfile_setattr,
};

static struct file *rfile_new_proxy(const struct rfile_handle *h,
				    unsigned int f_flags,
				    const struct rfile_stat_rep *st)
{
	struct rfile_proxy *px;
	struct inode *inode;
	struct file *file;
	char name[48];

	px = kzalloc(sizeof(*px), GFP_KERNEL);
	if (!px)
		return ERR_PTR(-ENOMEM);
	px->h = *h;
	init_waitqueue_head(&px->wq);
	atomic_set(&px->seq, 0);
	inode = new_inode(rfile_mnt->mnt_sb);
	if (!inode) {
		kfree(px);
		return ERR_PTR(-ENOMEM);
	}
	inode->i_ino = get_next_ino();
	rfile_fill_inode(inode, st);
	inode->i_op = &rfile_iops;
	inode->i_flags |= S_PRIVATE;
	inode->i_private = px;
	snprintf(name, sizeof(name), "rfile:[%u:%llu]", h->node, h->id);
	/* The file's last fput drops it (fops_put), as for anon_inode files. */
	if (!try_module_get(THIS_MODULE)) {
		iput(inode);	/* frees @px */
		return ERR_PTR(-ENOENT);
	}
	file = alloc_file_pseudo(inode, rfile_mnt, name,
				 f_flags & (O_ACCMODE | O_APPEND | O_NONBLOCK |
					    O_DSYNC | O_SYNC),
				 &rfile_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(inode);	/* frees @px */
		return file;
	}
	file->private_data = px;
	file->f_mode &= ~(FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE |
			  FMODE_ATOMIC_POS | FMODE_STREAM);
	file->f_mode |= (__force fmode_t)st->fmode & RFILE_FMODE_MIRROR;
	file->f_pos = st->pos;
	px->sent_fl = file->f_flags & RFILE_SETFL_MASK;
	spin_lock(&rfile_px_lock);
	hash_add(rfile_proxies, &px->hnode, rfile_px_key(h));
	spin_unlock(&rfile_px_lock);
	rfile_count(RFILE_CNT_PROXIES);
	return file;
}

struct file *rfile_import(const struct rfile_handle *h, unsigned int f_flags)
{
	struct rfile_stat_req req = { .id = h->id };
	struct rfile_stat_rep rep;
	struct rfile_export *ex;
	struct file *file;
	int ret;

	if (!h->node || h->node > SSI_MAX_NODES)
		return ERR_PTR(-EINVAL);
	if (h->node == rfile_self()) {
		ex = rfile_export_find(h->id, rfile_self());
		if (!ex)
			return ERR_PTR(-EBADF);
		file = get_file(rfile_export_file(ex));
		rfile_export_put_op(ex);
		ret = rfile_ref_put(h->id, rfile_self(), rfile_self());
		if (ret) {
			fput(file);
			return ERR_PTR(ret);
		}
		return file;
	}
	ret = ics_rfile_stat(h->node, &req, &rep, RFILE_TIMEOUT);
	if (ret) {
		rfile_put(h, rfile_self());
		return ERR_PTR(rfile_errno(ret));
	}
	file = rfile_new_proxy(h, f_flags, &rep);
	if (IS_ERR(file))
		rfile_put(h, rfile_self());
	return file;
}
EXPORT_SYMBOL_GPL(rfile_import);

bool rfile_is_proxy(struct file *file, struct rfile_handle *h)
{
	struct rfile_proxy *px;

	if (file->f_op != &rfile_fops)
		return false;
	px = file->private_data;
	*h = px->h;
	return true;
}
EXPORT_SYMBOL_GPL(rfile_is_proxy);

bool rfile_proxy_is_dead(struct file *file)
{
	struct rfile_proxy *px;

	if (file->f_op != &rfile_fops)
		return false;
	px = file->private_data;
	return READ_ONCE(px->dead);
}
EXPORT_SYMBOL_GPL(rfile_proxy_is_dead);

struct file *rfile_import_dead(const struct rfile_handle *h,
			       unsigned int f_flags)
{
	/* nothing to ask: getattr of a dead proxy fails before using it */
	struct rfile_stat_rep st = {};
	struct rfile_proxy *px;
	struct file *file;

	if (!h->node || h->node > SSI_MAX_NODES)
		return ERR_PTR(-EINVAL);
	file = rfile_new_proxy(h, f_flags, &st);
	if (IS_ERR(file))
		return file;
	px = file->private_data;
	WRITE_ONCE(px->dead, true);
	return file;
}
EXPORT_SYMBOL_GPL(rfile_import_dead);

int rfile_get(const struct rfile_handle *h, unsigned int to_node)
{
	struct rfile_get_req req = { .id = h->id, .to_node = to_node };
	struct rfile_get_rep rep;

	if (!h->node || h->node > SSI_MAX_NODES || !to_node ||
	    to_node > SSI_MAX_NODES)
		return -EINVAL;
	if (h->node == rfile_self())
		return rfile_ref_get(h->id, rfile_self(), to_node);
	return ics_rfile_get(h->node, &req, &rep, RFILE_TIMEOUT);
}
EXPORT_SYMBOL_GPL(rfile_get);

void rfile_put(const struct rfile_handle *h, unsigned int to_node)
{
	struct rfile_put_req req = { .id = h->id, .to_node = to_node };
	struct rfile_put_rep rep;

	if (!h->node || h->node > SSI_MAX_NODES)
		return;
	if (h->node == rfile_self()) {
		rfile_ref_put(h->id, rfile_self(), to_node);
		return;
	}
	/* A holder that does not answer is down: its nodedown drops it. */
	ics_rfile_put(h->node, &req, &rep, RFILE_TIMEOUT);
}
EXPORT_SYMBOL_GPL(rfile_put);

/* `ready` from @node for its export @id: wake this node's proxies of it. */
void rfile_proxy_ready(unsigned int node, u64 id, u32 mask)
{
	struct rfile_handle h = { .node = node, .id = id };
	__poll_t events = (__force __poll_t)mask;	/* as the holder's vfs_poll() */
	struct rfile_proxy *px;

	rfile_count(RFILE_CNT_READY_RX);
	spin_lock(&rfile_px_lock);
	hash_for_each_possible(rfile_proxies, px, hnode, rfile_px_key(&h)) {
		if (px->h.node != node || px->h.id != id)
			continue;
		atomic_inc(&px->seq);
		wake_up_interruptible_poll(&px->wq, events);
		if (events & (EPOLLIN | EPOLLRDNORM))
			kill_fasync(&px->fasync, SIGIO, POLL_IN);
		else if (events & (EPOLLOUT | EPOLLWRNORM))
			kill_fasync(&px->fasync, SIGIO, POLL_OUT);
	}
	spin_unlock(&rfile_px_lock);
}

/* @node went down: its proxies here fail with EIO from now on. */
void rfile_proxy_node_down(unsigned int node)
{
	struct rfile_proxy *px;
	unsigned int bkt;

	spin_lock(&rfile_px_lock);
	hash_for_each(rfile_proxies, bkt, px, hnode) {
		if (px->h.node != node)
			continue;
		WRITE_ONCE(px->dead, true);
		wake_up_interruptible_poll(&px->wq, EPOLLIN | EPOLLOUT |
					   EPOLLERR | EPOLLHUP);
		kill_fasync(&px->fasync, SIGIO, POLL_HUP);
	}
	spin_unlock(&rfile_px_lock);
}

/* The proxy lives as long as its inode (getattr uses it). */
static void rfile_evict_inode(struct inode *inode)
{
	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	kfree(inode->i_private);
}

static const struct super_operations rfile_sops = {
	.statfs = simple_statfs,
	.drop_inode = generic_delete_inode,
	.evict_inode = rfile_evict_inode,
};

static int rfile_init_fs_context(struct fs_context *fc)
{
	struct pseudo_fs_context *ctx = init_pseudo(fc, RFILE_FS_MAGIC);

	if (!ctx)
		return -ENOMEM;
	ctx->ops = &rfile_sops;
	return 0;
}

static struct file_system_type rfile_fs_type = {
	.name = "ssi_rfile",
	.init_fs_context = rfile_init_fs_context,
	.kill_sb = kill_anon_super,
};

int rfile_proxy_init(void)
{
	rfile_mnt = kern_mount(&rfile_fs_type);
	if (IS_ERR(rfile_mnt))
		return PTR_ERR(rfile_mnt);
	return 0;
}

void rfile_proxy_exit(void)
{
	kern_unmount(rfile_mnt);
}
