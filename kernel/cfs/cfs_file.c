// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the client's open files: an open file of the server, used through
 * an rfile proxy (its read, write, fsync and lseek go to the server; on the
 * server's own mount, the file itself), and directory listings read from
 * the server.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <asm/unaligned.h>

#include "cfs_internal.h"
#include "rfile.h"

static int cfs_open_call(struct inode *inode, unsigned int flags,
			 struct rfile_handle *h, u32 *f_flags,
			 struct cfs_fifo_ends *ends)
{
	struct cfs_open_req *req;
	struct cfs_open_rep rep;
	int ret;

	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	req->flags = flags & CFS_OPEN_FLAGS;
	ret = CFS_CALL(inode->i_sb, open, req, &rep);
	kvfree(req);
	if (ret)
		return ret;
	if (rep.no_reader)
		return -ENXIO;	/* a FIFO's writer, no reader there */
	h->node = rep.node;
	h->id = rep.id;
	*f_flags = rep.f_flags;
	if (ends) {
		ends->writers = rep.writers;
		ends->w_counter = rep.w_counter;
	}
	return 0;
}

/*
 * The server's open file of @inode with @flags, as the caller: an rfile
 * proxy (the server's own file on its own mount).  The proxy's own
 * position is parked where no read or write can start, so that rfile
 * takes each of ours as positioned at the position we give: the CFS
 * file's f_pos is the only one (rfile_proxy.c, rfile_io_mode()).  A
 * FIFO's @ends: what the server's open found of its other end.
 */
struct file *cfs_open_backing(struct inode *inode, unsigned int flags,
			      struct cfs_fifo_ends *ends)
{
	struct rfile_handle h;
	struct file *proxy;
	u32 f_flags;
	int ret;

	ret = cfs_open_call(inode, flags, &h, &f_flags, ends);
	if (ret)
		return ERR_PTR(ret);
	proxy = rfile_import(&h, f_flags);
	if (IS_ERR(proxy))
		return ERR_PTR(cfs_errno(PTR_ERR(proxy)));
	proxy->f_pos = -1;
	return proxy;
}

static int cfs_open(struct inode *inode, struct file *file)
{
	struct file *backing = cfs_open_backing(inode, file->f_flags, NULL);

	if (IS_ERR(backing))
		return PTR_ERR(backing);
	file->private_data = backing;
	return 0;
}

static int cfs_release(struct inode *inode, struct file *file)
{
	fput(file->private_data);
	cfs_data_release(inode, file);
	return 0;
}

/*
 * The data path: the server's open file at this file's position, through
 * vfs_iter_read()/vfs_iter_write(), so that the server's own mount (whose
 * open file is the server file system's file itself) raises the events
 * tokens are revoked by, as rfile's serving of a proxy does there.  Pages
 * kept for mappings: dirty ones in the range go to the server first, and
 * those a write changed are dropped after it.  On the server's own mount
 * the op waits for and recalls other nodes' pages itself, as rfile's
 * hooks do for a proxy's (cfs_srv.c).
 */
static int cfs_io_begin(struct file *backing, bool write)
{
	if (rfile_is_proxy(backing, &(struct rfile_handle){}))
		return 0;
	return cfs_data_begin(backing->f_path.dentry, ssi_node_num(),
			      write ? CFS_DATA_WRITE : CFS_DATA_READ, NULL);
}

static void cfs_io_end(struct file *backing, bool write, int counted)
{
	if (counted > 0)
		cfs_data_end(backing->f_path.dentry,
			     write ? CFS_DATA_WRITE : CFS_DATA_READ);
}

/*
 * read(2) through the page cache (protocol version 4): a page missing is
 * read with readpages, which registers this node as keeping pages of the
 * file, so every other node's write, truncation or writable recalls them
 * first; our own write is kept in them or drops its range after it.  The
 * size is current under the file's token (else asked for; the writer's
 * own is).  O_DIRECT, cfs.cache=0, the server's own mount (whose file is
 * the file system's, with its own page cache) and a file another node
 * has been using (a recall within cfs.shared_ms) read the server's file
 * directly.
 */
static bool cfs_read_cached(struct kiocb *iocb, struct file *backing)
{
	struct cfs_inode *ci = CFS_I(file_inode(iocb->ki_filp));
	unsigned long shared = msecs_to_jiffies(READ_ONCE(cfs_shared_ms));

	return cfs_cache && !(iocb->ki_flags & IOCB_DIRECT) &&
	       rfile_is_proxy(backing, &(struct rfile_handle){}) &&
	       !time_before(jiffies, READ_ONCE(ci->recalled_at) + shared);
}

static ssize_t cfs_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct file *backing = iocb->ki_filp->private_data;
	struct inode *inode = file_inode(iocb->ki_filp);
	size_t count = iov_iter_count(to);
	loff_t pos = iocb->ki_pos;
	ssize_t ret;
	int counted;

	if (!(backing->f_mode & FMODE_READ))
		return -EBADF;
	if (!count)
		return 0;
	if (cfs_read_cached(iocb, backing)) {
		/* the writer's own size is the file's, token or not */
		if (!cfs_tok_valid(inode) && !cfs_data_excl(inode)) {
			ret = cfs_refresh(inode);
			if (ret)
				return ret;
		}
		ret = generic_file_read_iter(iocb, to);
		return ret < 0 ? cfs_errno(ret) : ret;
	}
	ret = cfs_data_flush(inode, pos, pos + count - 1);
	if (ret)
		return ret;
	counted = cfs_io_begin(backing, false);
	if (counted < 0)
		return counted;
	ret = vfs_iter_read(backing, to, &pos, 0);
	cfs_io_end(backing, false, counted);
	if (ret > 0)
		iocb->ki_pos = pos;
	return ret < 0 ? cfs_errno(ret) : ret;
}

/* write(2) to the server's file, at once (write-through). */
static ssize_t cfs_write_through(struct kiocb *iocb, struct iov_iter *from)
{
	struct file *file = iocb->ki_filp;
	struct file *backing = file->private_data;
	struct inode *inode = file_inode(file);
	size_t count = iov_iter_count(from);
	loff_t pos = iocb->ki_pos;
	ssize_t ret;
	int counted;

	/* O_APPEND: the server puts it at its end, wherever that is */
	ret = (file->f_flags & O_APPEND) ?
	      cfs_data_flush(inode, 0, LLONG_MAX) :
	      cfs_data_flush(inode, pos, pos + count - 1);
	if (ret)
		return ret;
	counted = cfs_io_begin(backing, true);
	if (counted < 0)
		return counted;
	ret = vfs_iter_write(backing, from, &pos, 0);
	cfs_io_end(backing, true, counted);
	if (ret > 0) {
		iocb->ki_pos = pos;
		cfs_data_drop(inode, pos - ret, pos - 1);
		spin_lock(&inode->i_lock);
		if (iocb->ki_pos > i_size_read(inode))
			i_size_write(inode, iocb->ki_pos);
		spin_unlock(&inode->i_lock);
	}
	return ret < 0 ? cfs_errno(ret) : ret;
}

/*
 * write(2) kept in the page cache (protocol version 5, cfs_data_write()),
 * as read(2) is, and for the same files, but never O_APPEND (the server's
 * end is where that goes), O_DSYNC or O_SYNC (the server's file does
 * that), nor a set-user-ID or set-group-ID file (the server's write takes
 * those bits off, as a local one would, when it happens).
 */
static bool cfs_write_cached(struct kiocb *iocb, struct file *backing)
{
	struct inode *inode = file_inode(iocb->ki_filp);

	return cfs_read_cached(iocb, backing) &&
	       !(iocb->ki_flags & (IOCB_APPEND | IOCB_DSYNC)) &&
	       !(backing->f_flags & O_APPEND) && S_ISREG(inode->i_mode) &&
	       !(inode->i_mode & (S_ISUID | S_ISGID));
}

static ssize_t cfs_write_kept(struct kiocb *iocb, struct iov_iter *from)
{
	struct file *file = iocb->ki_filp;
	struct inode *inode = file_inode(file);
	size_t left, piece;
	ssize_t ret, n;

	inode_lock(inode);
	ret = generic_write_checks(iocb, from);
	if (ret <= 0)
		goto out;
	ret = file_update_time(file);
	if (ret)
		goto out;
	while (iov_iter_count(from)) {
		n = cfs_data_write(iocb, from);
		if (n > 0)
			atomic64_inc(&cfs_writes_kept);
		if (n == -EAGAIN) {
			/* a page to read first and no file to read it with */
			left = iov_iter_count(from);
			piece = min_t(size_t, left,
				      PAGE_SIZE - offset_in_page(iocb->ki_pos));
			iov_iter_truncate(from, piece);
			n = cfs_write_through(iocb, from);
			iov_iter_reexpand(from, left - (n > 0 ? n : 0));
		}
		if (n <= 0) {
			if (!ret)
				ret = n;
			break;
		}
		ret += n;
	}
out:
	inode_unlock(inode);
	return ret < 0 ? cfs_errno(ret) : ret;
}

static ssize_t cfs_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct file *backing = iocb->ki_filp->private_data;

	if (!(backing->f_mode & FMODE_WRITE))
		return -EBADF;
	if (!iov_iter_count(from))
		return 0;
	if (cfs_write_cached(iocb, backing))
		return cfs_write_kept(iocb, from);
	return cfs_write_through(iocb, from);
}

static loff_t cfs_llseek(struct file *file, loff_t offset, int whence)
{
	int ret;

	/* the end, data and holes are the server's, as they are now */
	if (whence == SEEK_END || whence == SEEK_DATA || whence == SEEK_HOLE) {
		ret = cfs_refresh(file_inode(file));
		if (ret)
			return ret;
	}
	return generic_file_llseek(file, offset, whence);
}

/*
 * fallocate(2): the server's, on its open file, as the caller.  Our dirty
 * pages go first (collapse and insert move what follows),
 * our kept ones after are dropped, and the size is asked for again.
 */
static long cfs_fallocate(struct file *file, int mode, loff_t offset,
			  loff_t len)
{
	struct file *backing = file->private_data;
	struct inode *inode = file_inode(file);
	struct cfs_fallocate_req *req;
	struct cfs_fallocate_rep rep;
	struct rfile_handle h;
	int ret;

	/* all of them: our size may be ahead of the server's until then */
	ret = cfs_data_flush(inode, 0, LLONG_MAX);
	if (ret) {
		pr_warn_ratelimited("inode %lu: dirty pages not written back before fallocate: %d\n",
				    inode->i_ino, ret);
		return ret;
	}
	if (!rfile_is_proxy(backing, &h)) {
		ret = cfs_srv_fallocate_file(backing, ssi_node_num(), mode,
					     offset, len);
	} else {
		ret = CFS_NEW_REQ(req, inode);
		if (ret)
			return ret;
		req->id = h.id;
		req->mode = mode;
		req->offset = offset;
		req->len = len;
		ret = CFS_OP(h.node, fallocate, req, &rep);
		kvfree(req);
	}
	if (ret)
		pr_warn_ratelimited("inode %lu: fallocate %#x at %lld+%lld: %d\n",
				    inode->i_ino, mode, offset, len, ret);
	cfs_data_drop(inode, offset, LLONG_MAX);
	if (!ret)
		ret = cfs_refresh_attr(inode, true);
	return cfs_errno(ret);
}

/* Dirty pages of mappings first, then the server's file itself. */
static int cfs_fsync(struct file *file, loff_t start, loff_t end,
		     int datasync)
{
	int ret = cfs_data_flush(file_inode(file), start, end);

	if (ret)
		return ret;
	return cfs_errno(vfs_fsync_range(file->private_data, start, end,
					 datasync));
}

/*
 * Record locks, OFD locks and flock are the server's, on the open file it
 * holds for us: rfile runs them there (never on this node's inode), where
 * every other node's and the server's own processes' locks of the file
 * are.  Ours are asked for again while they conflict (F_SETLKW).  On the
 * server's own mount the open file is the file system's file itself: the
 * lock is taken on it here, as one of its own would be, an OFD lock owned
 * by it (it goes when the file does, at our release).
 */
static int cfs_lock_local(struct file *file, struct file *backing, int cmd,
			  struct file_lock *fl)
{
	struct file *orig = fl->fl_file;
	int ret;

	fl->fl_file = backing;
	if (fl->fl_owner == file)
		fl->fl_owner = backing;
	/* waits only with FL_SLEEP (F_SETLKW, a blocking flock) */
	ret = IS_GETLK(cmd) ? vfs_test_lock(backing, fl) :
	      locks_lock_file_wait(backing, fl);
	fl->fl_file = orig;
	if (fl->fl_owner == backing)
		fl->fl_owner = file;
	return ret;
}

static int cfs_lock(struct file *file, int cmd, struct file_lock *fl)
{
	struct file *backing = file->private_data;

	if (!backing->f_op->lock)
		return cfs_lock_local(file, backing, cmd, fl);
	return cfs_errno(backing->f_op->lock(backing, cmd, fl));
}

static int cfs_flock(struct file *file, int cmd, struct file_lock *fl)
{
	struct file *backing = file->private_data;

	if (!backing->f_op->flock)
		return cfs_lock_local(file, backing, cmd, fl);
	return cfs_errno(backing->f_op->flock(backing, cmd, fl));
}

/* close(2) drops the closer's POSIX locks of the file, as locally. */
static int cfs_flush(struct file *file, fl_owner_t id)
{
	struct file *backing = file->private_data;

	if (!backing->f_op->flush) {
		locks_remove_posix(backing, id);
		return 0;
	}
	return backing->f_op->flush(backing, id);
}

const struct file_operations cfs_file_fops = {
	.owner = THIS_MODULE,
	.open = cfs_open,
	.release = cfs_release,
	.read_iter = cfs_read_iter,
	.write_iter = cfs_write_iter,
	.llseek = cfs_llseek,
	.fsync = cfs_fsync,
	.mmap = cfs_mmap,
	.fallocate = cfs_fallocate,
	.lock = cfs_lock,
	.flock = cfs_flock,
	.flush = cfs_flush,
};

/* ---- directories ---- */

/*
 * Emits the entries of one reply, each at its own position: an entry the
 * caller's buffer has no room for leaves ctx->pos at it, to be asked for
 * again.  False when @ctx wants no more (or the reply is malformed).
 */
static bool cfs_emit(struct dir_context *ctx, const u8 *p, u32 len)
{
	u32 off = 0, n;

	while (off < len) {
		if (len - off < CFS_DIRENT_HEAD)
			return false;
		n = p[off + 17];
		if (!n || len - off - CFS_DIRENT_HEAD < n)
			return false;
		ctx->pos = get_unaligned_le64(p + off);
		if (!dir_emit(ctx, (const char *)p + off + CFS_DIRENT_HEAD, n,
			      get_unaligned_le64(p + off + 8), p[off + 16]))
			return false;
		off += CFS_DIRENT_HEAD + n;
	}
	return true;
}

static int cfs_iterate(struct file *file, struct dir_context *ctx)
{
	struct inode *inode = file_inode(file);
	struct cfs_readdir_req *req;
	struct cfs_readdir_rep *rep;
	int ret;

	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	rep = kvmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		req->pos = ctx->pos;
		ret = CFS_CALL(inode->i_sb, readdir, req, rep);
		if (ret)
			break;
		if (!cfs_emit(ctx, rep->entries, rep->entries_len))
			break;
		ctx->pos = rep->pos;
		if (rep->eof || !rep->entries_len)
			break;
	}
out:
	kvfree(rep);
	kvfree(req);
	return ret;
}

const struct file_operations cfs_dir_fops = {
	.owner = THIS_MODULE,
	.iterate_shared = cfs_iterate,
	.llseek = generic_file_llseek,
	.read = generic_read_dir,
};
