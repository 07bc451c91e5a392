// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS FIFOs: a FIFO on a CFS mount is one pipe clusterwide, the server's.
 * An open on any node opens the FIFO on the server (O_NONBLOCK there, so
 * that the server never waits for the other end) and reads and writes it
 * through an rfile proxy, which waits here for data or room (rfile's
 * "ready"), raises SIGPIPE and gives EOF as a local pipe does.  What
 * open(2) waits for is waited for here, asking the server again:
 *
 *  - for reading, blocking: until a writer is there, or one has opened
 *    since this open (the count of writer opens the open's reply gave);
 *  - for writing, blocking: the server's open is ENXIO while no reader is
 *    there, and is asked again;
 *  - with O_NONBLOCK, or O_RDWR: at once, as locally (ENXIO for a writer
 *    with no reader).
 *
 * The asking starts every CFS_FIFO_POLL_MIN and slows down to every
 * CFS_FIFO_POLL_MAX; a signal ends the wait (the open restarts or is
 * EINTR, as a local one).  A reader that opens and closes again between
 * two asks of a waiting writer is not seen (locally the writer's open
 * would return, and its first write fail with EPIPE).
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/delay.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/uio.h>

#include "cfs_internal.h"
#include "rfile.h"

#define CFS_FIFO_POLL_MIN	10	/* ms */
#define CFS_FIFO_POLL_MAX	500	/* ms */

/* Sleeps the next poll interval (doubling @ms); false on a signal. */
static bool cfs_fifo_pause(unsigned int *ms)
{
	if (msleep_interruptible(*ms) || signal_pending(current))
		return false;
	*ms = min(*ms * 2, CFS_FIFO_POLL_MAX);
	return true;
}

/* A writer of @backing's FIFO is there, or came since @ends was taken. */
static int cfs_fifo_wait_writer(struct inode *inode, struct file *backing,
				const struct cfs_fifo_ends *ends)
{
	unsigned int ms = CFS_FIFO_POLL_MIN;
	struct cfs_fifo_req req = {};
	struct cfs_fifo_rep rep;
	struct rfile_handle h;
	int ret;

	if (ends->writers)
		return 0;
	for (;;) {
		if (!cfs_fifo_pause(&ms))
			return -ERESTARTSYS;
		if (!rfile_is_proxy(backing, &h)) {
			/* the server's own mount: the FIFO itself */
			ret = cfs_srv_fifo_ends(backing, &rep.writers,
						&rep.w_counter);
		} else {
			req.id = h.id;
			ret = CFS_OP(h.node, fifo, &req, &rep);
		}
		if (ret)
			return ret;
		if (rep.writers || rep.w_counter != ends->w_counter)
			return 0;
	}
}

static int cfs_fifo_open(struct inode *inode, struct file *file)
{
	unsigned int flags = file->f_flags, ms = CFS_FIFO_POLL_MIN;
	bool blocking = !(flags & O_NONBLOCK);
	struct cfs_fifo_ends ends;
	struct file *backing;
	int ret;

	for (;;) {
		backing = cfs_open_backing(inode, flags, &ends);
		if (!IS_ERR(backing))
			break;
		/* a writer and no reader yet: a blocking one waits for one */
		if (PTR_ERR(backing) != -ENXIO || !blocking)
			return PTR_ERR(backing);
		if (!cfs_fifo_pause(&ms))
			return -ERESTARTSYS;
	}
	if (blocking && (flags & O_ACCMODE) == O_RDONLY) {
		ret = cfs_fifo_wait_writer(inode, backing, &ends);
		if (ret) {
			fput(backing);
			return ret;
		}
	}
	file->private_data = backing;
	return stream_open(inode, file);
}

static int cfs_fifo_release(struct inode *inode, struct file *file)
{
	fput(file->private_data);
	return 0;
}

/*
 * The proxy waits (or answers EAGAIN) by its own O_NONBLOCK: this file's,
 * which fcntl(F_SETFL) may have changed since the open.
 */
static struct file *cfs_fifo_backing(struct file *file)
{
	struct file *backing = file->private_data;
	unsigned int nonblock = READ_ONCE(file->f_flags) & O_NONBLOCK;

	if ((READ_ONCE(backing->f_flags) & O_NONBLOCK) != nonblock) {
		spin_lock(&backing->f_lock);
		backing->f_flags = (backing->f_flags & ~O_NONBLOCK) | nonblock;
		spin_unlock(&backing->f_lock);
	}
	return backing;
}

static ssize_t cfs_fifo_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct file *backing = cfs_fifo_backing(iocb->ki_filp);
	ssize_t ret;

	if (!iov_iter_count(to))
		return 0;
	ret = vfs_iter_read(backing, to, NULL, 0);
	return ret < 0 ? cfs_errno(ret) : ret;
}

static ssize_t cfs_fifo_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct file *backing = cfs_fifo_backing(iocb->ki_filp);
	ssize_t ret;

	if (!iov_iter_count(from))
		return 0;
	ret = vfs_iter_write(backing, from, NULL, 0);
	return ret < 0 ? cfs_errno(ret) : ret;
}

static __poll_t cfs_fifo_poll(struct file *file, poll_table *wait)
{
	return vfs_poll(cfs_fifo_backing(file), wait);
}

/* FIONREAD and the like: the server's pipe answers */
static long cfs_fifo_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct file *backing = file->private_data;

	if (!backing->f_op->unlocked_ioctl)
		return -ENOTTY;
	return backing->f_op->unlocked_ioctl(backing, cmd, arg);
}

static int cfs_fifo_fasync(int fd, struct file *file, int on)
{
	struct file *backing = file->private_data;

	if (!backing->f_op->fasync)
		return -EINVAL;
	return backing->f_op->fasync(fd, backing, on);
}

const struct file_operations cfs_fifo_fops = {
	.owner = THIS_MODULE,
	.open = cfs_fifo_open,
	.release = cfs_fifo_release,
	.read_iter = cfs_fifo_read_iter,
	.write_iter = cfs_fifo_write_iter,
	.poll = cfs_fifo_poll,
	.unlocked_ioctl = cfs_fifo_ioctl,
	.fasync = cfs_fifo_fasync,
	.llseek = no_llseek,
};
