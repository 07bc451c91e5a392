// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the serving side: exports, file handles, and each call performed
 * under the caller's credentials on the server's own file system.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/bvec.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/exportfs.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/mount.h>
#include <linux/mutex.h>
#include <linux/namei.h>
#include <linux/pipe_fs_i.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uio.h>
#include <linux/xattr.h>
#include <asm/unaligned.h>

#include "cfs_internal.h"
#include "rfile.h"

/* Exports live until the module goes: a client's mount may outlive us. */
#define CFS_MAX_EXPORTS	64

static struct path cfs_exports[CFS_MAX_EXPORTS];
/* Mounts of each export per node (its clients), counted by mount/unmount. */
static u16 cfs_export_mounts[CFS_MAX_EXPORTS][SSI_MAX_NODES + 1];
static unsigned int cfs_nr_exports;
static DEFINE_MUTEX(cfs_exports_lock);

void cfs_srv_exit(void)
{
	unsigned int i;

	mutex_lock(&cfs_exports_lock);
	for (i = 0; i < cfs_nr_exports; i++)
		path_put(&cfs_exports[i]);
	cfs_nr_exports = 0;
	memset(cfs_export_mounts, 0, sizeof(cfs_export_mounts));
	mutex_unlock(&cfs_exports_lock);
}

/* @node went down: it mounts nothing any more. */
void cfs_srv_nodedown(unsigned int node)
{
	unsigned int i;

	mutex_lock(&cfs_exports_lock);
	for (i = 0; i < cfs_nr_exports; i++)
		cfs_export_mounts[i][node] = 0;
	mutex_unlock(&cfs_exports_lock);
}

int cfs_srv_unmount(unsigned int from, const struct cfs_unmount_req *req,
		    struct cfs_unmount_rep *rep)
{
	int ret = -ENOENT;

	if (from > SSI_MAX_NODES)
		return -EINVAL;
	mutex_lock(&cfs_exports_lock);
	if (req->export < cfs_nr_exports &&
	    cfs_export_mounts[req->export][from]) {
		cfs_export_mounts[req->export][from]--;
		ret = 0;
	}
	mutex_unlock(&cfs_exports_lock);
	return ret;
}

/*
 * /sys/kernel/ssi/cfs/exports: "ID PATH NODES" per export this node
 * serves, NODES the nodes that mount it ("-": none now).
 */
ssize_t cfs_srv_exports_show(char *buf)
{
	unsigned int i, node;
	char *p, *page;
	bool any;
	int n = 0;

	page = (char *)__get_free_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	mutex_lock(&cfs_exports_lock);
	for (i = 0; i < cfs_nr_exports; i++) {
		p = d_path(&cfs_exports[i], page, PAGE_SIZE);
		if (IS_ERR(p))
			p = "?";
		n += sysfs_emit_at(buf, n, "%u %s ", i, p);
		any = false;
		for (node = 1; node <= SSI_MAX_NODES; node++) {
			if (!cfs_export_mounts[i][node])
				continue;
			n += sysfs_emit_at(buf, n, "%s%u", any ? "," : "",
					   node);
			any = true;
		}
		n += sysfs_emit_at(buf, n, "%s\n", any ? "" : "-");
	}
	mutex_unlock(&cfs_exports_lock);
	free_page((unsigned long)page);
	return n;
}

static void cfs_srv_revert(const struct cred *old)
{
	revert_creds(old);
}

/* -ENXIO: no such export here (this node restarted since the mount). */
static int cfs_export_root(u32 export, struct path *root)
{
	int ret = -ENXIO;

	mutex_lock(&cfs_exports_lock);
	if (export < cfs_nr_exports) {
		*root = cfs_exports[export];
		path_get(root);
		ret = 0;
	}
	mutex_unlock(&cfs_exports_lock);
	return ret;
}

static int cfs_acceptable(void *ctx, struct dentry *dentry)
{
	return 1;	/* no subtree check: cfs_main.c */
}

/* The file (fh_type, fh) of a request under its export, as a path. */
#define CFS_SRV_PATH(req, out) ({					\
	typeof(req) path_req_ = (req);					\
									\
	cfs_srv_decode(path_req_->export, path_req_->fh_type,		\
		       path_req_->fh, path_req_->fh_len, (out));	\
})

static int cfs_srv_decode(u32 export, u32 type, const u8 *fh, u32 len,
			  struct path *path)
{
	u32 words[CFS_FH_MAX / 4];
	struct dentry *dentry;
	struct path root;
	int ret;

	if (!len || len % 4 || len > CFS_FH_MAX || type > 0xff)
		return -ESTALE;
	ret = cfs_export_root(export, &root);
	if (ret)
		return ret;
	memcpy(words, fh, len);
	dentry = exportfs_decode_fh(root.mnt, (struct fid *)words, len / 4,
				    type, cfs_acceptable, NULL);
	if (IS_ERR_OR_NULL(dentry)) {
		path_put(&root);
		return -ESTALE;
	}
	path->mnt = mntget(root.mnt);
	path->dentry = dentry;
	path_put(&root);
	return 0;
}

static int cfs_srv_encode(struct dentry *dentry, u32 *type, u8 *fh, u32 *len)
{
	u32 words[CFS_FH_MAX / 4];
	int max = ARRAY_SIZE(words);
	int t;

	t = exportfs_encode_fh(dentry, (struct fid *)words, &max, 0);
	if (t < 0 || t == FILEID_INVALID || max <= 0 ||
	    max > (int)ARRAY_SIZE(words))
		return -EOPNOTSUPP;	/* a file system without handles */
	*type = t;
	*len = max * 4;
	memcpy(fh, words, *len);
	return 0;
}

/* @dentry's handle, for a token made on it (cfs_token.c). */
int cfs_srv_fh(struct dentry *dentry, struct cfs_fh *fh)
{
	return cfs_srv_encode(dentry, &fh->type, fh->data, &fh->len);
}

/*
 * @path's attributes for node @from, which the caller registered as a
 * holder of its token before: a node that keeps dirty pages of the file
 * (its size and times ahead of the disk's) writes them back first, unless
 * it is @from.
 */
static int cfs_srv_stat(unsigned int from, const struct path *path,
			struct kstat *st)
{
	cfs_data_settle(path->dentry, from);
	return vfs_getattr(path, st, STATX_BASIC_STATS,
			   AT_STATX_SYNC_AS_STAT);
}

/*
 * Register client @from as a holder of @dentry's token (the file named
 * @type, @fh, @len on the wire), before what it covers is read: the
 * reply's token field (cfs_token.c).
 */
static u64 cfs_srv_grant(unsigned int from, struct dentry *dentry, u32 type,
			 const u8 *fh, u32 len)
{
	struct cfs_fh f = { .type = type, .len = len };

	if (!len || len > CFS_FH_MAX || d_really_is_negative(dentry))
		return 0;
	memcpy(f.data, fh, len);
	return cfs_tok_grant(d_inode(dentry), &f, from);
}

/* Handle, token and attributes of @dentry under @vfsmnt into a reply. */
#define CFS_SRV_REPLY_FILE(rep, from, vfsmnt, dent) ({			\
	typeof(rep) srv_rep_ = (rep);					\
	unsigned int srv_from_ = (from);				\
	struct path srv_pa_ = { .mnt = (vfsmnt), .dentry = (dent) };	\
	struct kstat srv_st_;						\
	int srv_r_ = cfs_srv_encode(srv_pa_.dentry, &srv_rep_->fh_type,\
				    srv_rep_->fh, &srv_rep_->fh_len);	\
									\
	if (!srv_r_) {							\
		srv_rep_->token = cfs_srv_grant(srv_from_, srv_pa_.dentry,\
						srv_rep_->fh_type,	\
						srv_rep_->fh,		\
						srv_rep_->fh_len);	\
		srv_r_ = cfs_srv_stat(srv_from_, &srv_pa_, &srv_st_);	\
	}								\
	if (!srv_r_)							\
		CFS_ATTR_TO_REP(srv_rep_, &srv_st_);			\
	srv_r_;								\
})

/* The request's own file: its token, then its attributes, into a reply. */
#define CFS_SRV_REPLY_REQ_FILE(rep, from, req, file) ({			\
	typeof(rep) srv_rep_ = (rep);					\
	typeof(req) srv_req_ = (req);					\
	unsigned int srv_from_ = (from);				\
	const struct path *srv_pa_ = (file);				\
	struct kstat srv_st_;						\
	int srv_r_;							\
									\
	srv_rep_->token = cfs_srv_grant(srv_from_, srv_pa_->dentry,	\
					srv_req_->fh_type, srv_req_->fh,\
					srv_req_->fh_len);		\
	srv_r_ = cfs_srv_stat(srv_from_, srv_pa_, &srv_st_);		\
	if (!srv_r_)							\
		CFS_ATTR_TO_REP(srv_rep_, &srv_st_);			\
	srv_r_;								\
})

int cfs_srv_mount(unsigned int from, const struct cfs_mount_req *req,
		  struct cfs_mount_rep *rep)
{
	const struct cred *old;
	struct path path;
	unsigned int i;
	int ret;

	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = -EPERM;
	if (!capable(CAP_SYS_ADMIN))
		goto out;
	ret = kern_path(req->path, LOOKUP_FOLLOW | LOOKUP_DIRECTORY, &path);
	if (ret)
		goto out;
	mutex_lock(&cfs_exports_lock);
	for (i = 0; i < cfs_nr_exports; i++)
		if (path_equal(&cfs_exports[i], &path))
			break;
	if (i == cfs_nr_exports) {
		if (i == CFS_MAX_EXPORTS) {
			mutex_unlock(&cfs_exports_lock);
			path_put(&path);
			ret = -ENOSPC;
			goto out;
		}
		cfs_exports[i] = path;
		path_get(&path);
		cfs_nr_exports++;
	}
	mutex_unlock(&cfs_exports_lock);
	rep->export = i;
	ret = CFS_SRV_REPLY_FILE(rep, from, path.mnt, path.dentry);
	if (!ret && from <= SSI_MAX_NODES) {
		mutex_lock(&cfs_exports_lock);
		if (i < cfs_nr_exports && cfs_export_mounts[i][from] < U16_MAX)
			cfs_export_mounts[i][from]++;
		mutex_unlock(&cfs_exports_lock);
	}
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_getattr(unsigned int from, const struct cfs_getattr_req *req,
		    struct cfs_getattr_rep *rep)
{
	const struct cred *old;
	struct path path;
	int ret;

	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (!ret) {
		ret = CFS_SRV_REPLY_REQ_FILE(rep, from, req, &path);
		path_put(&path);
	}
	cfs_srv_revert(old);
	return ret;
}

static int cfs_srv_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > CFS_NAME_MAX || strchr(name, '/') ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

int cfs_srv_lookup(unsigned int from, const struct cfs_lookup_req *req,
		   struct cfs_lookup_rep *rep)
{
	const struct cred *old;
	struct dentry *child;
	struct path dir;
	int ret;

	ret = cfs_srv_name_ok(req->name);
	if (ret)
		return ret;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &dir);
	if (ret)
		goto out;
	ret = -ENOTDIR;
	if (!d_is_dir(dir.dentry))
		goto put;
	/* the directory's entries are read after this */
	rep->dir_token = cfs_srv_grant(from, dir.dentry, req->fh_type,
				       req->fh, req->fh_len);
	/* checks the caller may search @dir */
	child = lookup_one_len_unlocked(req->name, dir.dentry,
					strlen(req->name));
	ret = PTR_ERR_OR_ZERO(child);
	if (ret)
		goto put;
	rep->found = d_is_positive(child);
	if (rep->found)
		ret = CFS_SRV_REPLY_FILE(rep, from, dir.mnt, child);
	dput(child);
put:
	path_put(&dir);
out:
	cfs_srv_revert(old);
	return ret;
}

/* readdir: packs entries into the reply until one does not fit. */
struct cfs_readdir_ctx {
	struct dir_context ctx;
	struct cfs_readdir_rep *rep;
	bool full;
};

static bool cfs_srv_filldir(struct dir_context *ctx, const char *name,
			    int len, loff_t pos, u64 ino, unsigned int type)
{
	struct cfs_readdir_ctx *c = container_of(ctx, struct cfs_readdir_ctx,
						 ctx);
	struct cfs_readdir_rep *rep = c->rep;
	size_t need = CFS_DIRENT_HEAD + len;
	u8 *p;

	if (len <= 0 || len > CFS_NAME_MAX)
		return true;	/* no such name on the wire; skip it */
	if (rep->entries_len + need > sizeof(rep->entries)) {
		c->full = true;
		return false;
	}
	p = rep->entries + rep->entries_len;
	put_unaligned_le64(pos, p);
	put_unaligned_le64(ino, p + 8);
	p[16] = type;
	p[17] = len;
	memcpy(p + CFS_DIRENT_HEAD, name, len);
	rep->entries_len += need;
	return true;
}

int cfs_srv_readdir(unsigned int from, const struct cfs_readdir_req *req,
		    struct cfs_readdir_rep *rep)
{
	struct cfs_readdir_ctx c = {
		.ctx.actor = cfs_srv_filldir,
		.rep = rep,
	};
	const struct cred *old;
	struct file *file;
	struct path dir;
	loff_t pos;
	int ret;

	if (req->pos < 0)
		return -EINVAL;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &dir);
	if (ret)
		goto out;
	ret = -ENOTDIR;
	if (!d_is_dir(dir.dentry))
		goto put;
	ret = inode_permission(mnt_user_ns(dir.mnt), d_inode(dir.dentry),
			       MAY_READ);
	if (ret)
		goto put;
	file = dentry_open(&dir, O_RDONLY | O_DIRECTORY, current_cred());
	ret = PTR_ERR_OR_ZERO(file);
	if (ret)
		goto put;
	pos = vfs_llseek(file, req->pos, SEEK_SET);
	if (pos < 0) {
		ret = pos;
		goto close;
	}
	rep->entries_len = 0;
	ret = iterate_dir(file, &c.ctx);
	if (ret)
		goto close;
	if (c.full && !rep->entries_len) {
		ret = -EOVERFLOW;
		goto close;
	}
	rep->pos = c.ctx.pos;
	rep->eof = !c.full;
close:
	fput(file);
put:
	path_put(&dir);
out:
	cfs_srv_revert(old);
	return ret;
}

/* What open(2)'s may_open() checks for these flags, as the caller. */
static int cfs_srv_may_open(const struct path *path, u32 flags)
{
	struct inode *inode = d_inode(path->dentry);
	int acc = 0;

	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		acc = MAY_READ;
		break;
	case O_WRONLY:
		acc = MAY_WRITE;
		break;
	case O_RDWR:
		acc = MAY_READ | MAY_WRITE;
		break;
	default:
		return -EINVAL;
	}
	if (d_is_dir(path->dentry) && (acc & MAY_WRITE))
		return -EISDIR;
	/* a client opens devices itself (its own), and a socket is ENXIO */
	if (!d_is_reg(path->dentry) && !d_is_dir(path->dentry) &&
	    !S_ISFIFO(inode->i_mode))
		return -EOPNOTSUPP;
	if (IS_APPEND(inode) && (acc & MAY_WRITE) && !(flags & O_APPEND))
		return -EPERM;
	if ((flags & O_NOATIME) &&
	    !inode_owner_or_capable(mnt_user_ns(path->mnt), inode))
		return -EPERM;
	return inode_permission(mnt_user_ns(path->mnt), inode,
				acc | MAY_OPEN);
}

/* Writers of the FIFO @file opened, and the count of writer opens ever. */
int cfs_srv_fifo_ends(struct file *file, u32 *writers, u32 *w_counter)
{
	struct pipe_inode_info *pipe;

	if (!S_ISFIFO(file_inode(file)->i_mode))
		return -EINVAL;
	/* an open file of a FIFO pins its pipe (fifo_open()) */
	pipe = READ_ONCE(file_inode(file)->i_pipe);
	if (!pipe)
		return -EINVAL;
	*writers = READ_ONCE(pipe->writers);
	*w_counter = READ_ONCE(pipe->w_counter);
	return 0;
}

int cfs_srv_fifo(unsigned int from, const struct cfs_fifo_req *req,
		 struct cfs_fifo_rep *rep)
{
	struct file *file;
	int ret;

	file = rfile_export_file_get(req->id, from);
	if (!file)
		return -EBADF;
	ret = cfs_srv_fifo_ends(file, &rep->writers, &rep->w_counter);
	fput(file);
	return ret;
}

int cfs_srv_open(unsigned int from, const struct cfs_open_req *req,
		 struct cfs_open_rep *rep)
{
	const struct cred *old;
	struct rfile_handle h;
	struct file *file;
	struct path path;
	bool fifo;
	int ret;

	if (req->flags & ~CFS_OPEN_FLAGS)
		return -EINVAL;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (ret)
		goto out;
	ret = cfs_srv_may_open(&path, req->flags);
	if (ret)
		goto put;
	fifo = S_ISFIFO(d_inode(path.dentry)->i_mode);
	/* a FIFO's open never waits for its other end here (the client does) */
	file = dentry_open(&path, req->flags | (fifo ? O_NONBLOCK : 0),
			   current_cred());
	ret = PTR_ERR_OR_ZERO(file);
	if (fifo && ret == -ENXIO) {
		rep->no_reader = 1;	/* not the call's errno: see cfs.ics */
		ret = 0;
		goto put;
	}
	if (ret)
		goto put;
	if (fifo)
		cfs_srv_fifo_ends(file, &rep->writers, &rep->w_counter);
	/*
	 * Its reads and writes wait for and recall kept pages (cfs_data.c),
	 * on a token that stays while it is open (released with the export).
	 */
	if (S_ISREG(file_inode(file)->i_mode)) {
		ret = cfs_data_open(file->f_path.dentry);
		if (ret) {
			fput(file);
			ret = ret == -ENOSPC ? -ENFILE : ret;
			goto put;
		}
	}
	ret = rfile_export_hooked(file, from, &h);
	if (ret && S_ISREG(file_inode(file)->i_mode))
		cfs_data_close(file->f_path.dentry);
	if (!ret) {
		rep->node = h.node;
		rep->id = h.id;
		rep->f_flags = file->f_flags;
	}
	fput(file);	/* the export holds its own reference */
put:
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

/*
 * A new file's mode comes without the caller's umask (the client's mount
 * has SB_POSIXACL), and the file system applies the current task's, as
 * for a local create (posix_acl_create(): unless the directory has a
 * default ACL).  A worker's is the kernel's, 0022, so while it creates for
 * a client it takes the caller's: its own fs_struct (nfsd's threads have
 * theirs too).  In the caller's own context (the server's mount of its
 * export) the umask is the caller's already.  *@saved: what to give back
 * to cfs_srv_umask_on().
 */
static int cfs_srv_umask_set(unsigned int umask, int *saved)
{
	*saved = -1;
	if (!(current->flags & PF_WQ_WORKER))
		return 0;
	if (READ_ONCE(current->fs->users) > 1 && unshare_fs_struct())
		return -ENOMEM;
	*saved = current->fs->umask;
	current->fs->umask = umask & 0777;
	return 0;
}

static void cfs_srv_umask_on(int saved)
{
	if (saved >= 0)
		current->fs->umask = saved;
}

/*
 * @name in directory @parent, which is locked for a change of its
 * entries (the caller is a writer of its mount): the child's dentry,
 * maybe negative, or an errno.  cfs_srv_unlock_child() after.
 */
static struct dentry *cfs_srv_lock_child(const struct path *parent,
					 const char *name)
{
	struct inode *dir = d_inode(parent->dentry);
	struct dentry *child;
	int ret;

	if (!d_is_dir(parent->dentry))
		return ERR_PTR(-ENOTDIR);
	ret = mnt_want_write(parent->mnt);
	if (ret)
		return ERR_PTR(ret);
	inode_lock_nested(dir, I_MUTEX_PARENT);
	child = lookup_one_len(name, parent->dentry, strlen(name));
	if (IS_ERR(child)) {
		inode_unlock(dir);
		mnt_drop_write(parent->mnt);
	}
	return child;
}

static void cfs_srv_unlock_child(const struct path *parent,
				 struct dentry *child)
{
	dput(child);
	inode_unlock(d_inode(parent->dentry));
	mnt_drop_write(parent->mnt);
}

/* @mode names a FIFO, socket or device (mknod), else a regular file. */
static bool cfs_srv_special(u32 mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return true;
	default:
		return false;
	}
}

int cfs_srv_create(unsigned int from, const struct cfs_create_req *req,
		   struct cfs_create_rep *rep)
{
	struct user_namespace *ns;
	const struct cred *old;
	struct dentry *child;
	struct inode *dir;
	struct path parent;
	int umask;
	umode_t mode;
	int ret;

	if (!req->dir && (req->mode & S_IFMT) &&
	    (req->mode & S_IFMT) != S_IFREG && !cfs_srv_special(req->mode))
		return -EINVAL;
	ret = cfs_srv_name_ok(req->name);
	if (ret)
		return ret;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &parent);
	if (ret)
		goto out;
	child = cfs_srv_lock_child(&parent, req->name);
	ret = PTR_ERR_OR_ZERO(child);
	if (ret)
		goto put;
	ns = mnt_user_ns(parent.mnt);
	dir = d_inode(parent.dentry);
	if (d_is_positive(child)) {
		ret = req->excl || req->dir ? -EEXIST : 0;
	} else if (cfs_srv_umask_set(req->umask, &umask)) {
		ret = -ENOMEM;
	} else {
		if (req->dir) {
			mode = (req->mode & 01777) | S_IFDIR;	/* rwx, sticky */
			ret = vfs_mkdir(ns, dir, child, mode);
		} else if (cfs_srv_special(req->mode)) {
			mode = req->mode & (S_IFMT | S_IALLUGO);
			ret = vfs_mknod(ns, dir, child, mode,
					new_decode_dev(req->rdev));
		} else {
			mode = (req->mode & S_IALLUGO) | S_IFREG;
			ret = vfs_create(ns, dir, child, mode, req->excl);
		}
		cfs_srv_umask_on(umask);
	}
	if (!ret && d_is_negative(child))
		ret = -ENOENT;	/* a file system that unhashed it (none here) */
	if (!ret)
		ret = CFS_SRV_REPLY_FILE(rep, from, parent.mnt, child);
	cfs_srv_unlock_child(&parent, child);
put:
	path_put(&parent);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_remove(unsigned int from, const struct cfs_remove_req *req,
		   struct cfs_remove_rep *rep)
{
	struct user_namespace *ns;
	const struct cred *old;
	struct dentry *child;
	struct inode *dir;
	struct path parent;
	int ret;

	ret = cfs_srv_name_ok(req->name);
	if (ret)
		return ret;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &parent);
	if (ret)
		goto out;
	child = cfs_srv_lock_child(&parent, req->name);
	ret = PTR_ERR_OR_ZERO(child);
	if (ret)
		goto put;
	ns = mnt_user_ns(parent.mnt);
	dir = d_inode(parent.dentry);
	if (d_is_negative(child))
		ret = -ENOENT;
	else if (req->rmdir)
		ret = vfs_rmdir(ns, dir, child);
	else
		ret = vfs_unlink(ns, dir, child, NULL);
	cfs_srv_unlock_child(&parent, child);
put:
	path_put(&parent);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_rename(unsigned int from, const struct cfs_rename_req *req,
		   struct cfs_rename_rep *rep)
{
	struct dentry *old_dentry, *new_dentry, *trap;
	struct path old_dir, new_dir;
	struct renamedata rd = { };
	const struct cred *old;
	int ret;

	if (req->flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	ret = cfs_srv_name_ok(req->name) ?: cfs_srv_name_ok(req->to_name);
	if (ret)
		return ret;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &old_dir);
	if (ret)
		goto out;
	ret = cfs_srv_decode(req->export, req->to_type, req->to, req->to_len,
			     &new_dir);
	if (ret)
		goto put_old;
	ret = -EXDEV;
	if (old_dir.mnt != new_dir.mnt)
		goto put_new;
	ret = -ENOTDIR;
	if (!d_is_dir(old_dir.dentry) || !d_is_dir(new_dir.dentry))
		goto put_new;
	ret = mnt_want_write(old_dir.mnt);
	if (ret)
		goto put_new;
	trap = lock_rename(new_dir.dentry, old_dir.dentry);
	old_dentry = lookup_one_len(req->name, old_dir.dentry,
				    strlen(req->name));
	ret = PTR_ERR_OR_ZERO(old_dentry);
	if (ret)
		goto unlock;
	new_dentry = lookup_one_len(req->to_name, new_dir.dentry,
				    strlen(req->to_name));
	ret = PTR_ERR_OR_ZERO(new_dentry);
	if (ret)
		goto put_od;
	ret = -ENOENT;
	if (d_is_negative(old_dentry) ||
	    ((req->flags & RENAME_EXCHANGE) && d_is_negative(new_dentry)))
		goto put_nd;
	ret = -EEXIST;
	if ((req->flags & RENAME_NOREPLACE) && d_is_positive(new_dentry))
		goto put_nd;
	/* as do_renameat2(): a source that is an ancestor of the target... */
	ret = -EINVAL;
	if (old_dentry == trap)
		goto put_nd;
	/* ...and a target that is an ancestor of the source */
	ret = (req->flags & RENAME_EXCHANGE) ? -EINVAL : -ENOTEMPTY;
	if (new_dentry == trap)
		goto put_nd;
	rd.old_mnt_userns = mnt_user_ns(old_dir.mnt);
	rd.old_dir = d_inode(old_dir.dentry);
	rd.old_dentry = old_dentry;
	rd.new_mnt_userns = mnt_user_ns(new_dir.mnt);
	rd.new_dir = d_inode(new_dir.dentry);
	rd.new_dentry = new_dentry;
	rd.flags = req->flags;
	ret = vfs_rename(&rd);
put_nd:
	dput(new_dentry);
put_od:
	dput(old_dentry);
unlock:
	unlock_rename(new_dir.dentry, old_dir.dentry);
	mnt_drop_write(old_dir.mnt);
put_new:
	path_put(&new_dir);
put_old:
	path_put(&old_dir);
out:
	cfs_srv_revert(old);
	return ret;
}

#define CFS_SETATTR_VALID (ATTR_MODE | ATTR_UID | ATTR_GID | ATTR_SIZE | \
			   ATTR_ATIME | ATTR_MTIME | ATTR_ATIME_SET | \
			   ATTR_MTIME_SET | ATTR_TOUCH | ATTR_TIMES_SET)

static int cfs_srv_iattr(const struct cfs_setattr_req *req,
			 struct iattr *ia)
{
	memset(ia, 0, sizeof(*ia));
	if (req->valid & ~CFS_SETATTR_VALID)
		return -EINVAL;
	ia->ia_valid = req->valid;
	if (req->valid & ATTR_MODE)
		ia->ia_mode = req->set_mode & S_IALLUGO;
	if (req->valid & ATTR_UID) {
		ia->ia_uid = make_kuid(&init_user_ns, req->set_uid);
		if (!uid_valid(ia->ia_uid))
			return -EINVAL;
	}
	if (req->valid & ATTR_GID) {
		ia->ia_gid = make_kgid(&init_user_ns, req->set_gid);
		if (!gid_valid(ia->ia_gid))
			return -EINVAL;
	}
	if (req->valid & ATTR_SIZE) {
		if (req->set_size < 0)
			return -EINVAL;
		ia->ia_size = req->set_size;
	}
	if (req->set_atime_ns >= NSEC_PER_SEC ||
	    req->set_mtime_ns >= NSEC_PER_SEC)
		return -EINVAL;
	ia->ia_atime.tv_sec = req->set_atime;
	ia->ia_atime.tv_nsec = req->set_atime_ns;
	ia->ia_mtime.tv_sec = req->set_mtime;
	ia->ia_mtime.tv_nsec = req->set_mtime_ns;
	/* setattr_prepare() fills ctime: the change happens now, here */
	ia->ia_valid |= ATTR_CTIME;
	return 0;
}

int cfs_srv_setattr(unsigned int from, const struct cfs_setattr_req *req,
		    struct cfs_setattr_rep *rep)
{
	const struct cred *old;
	struct inode *inode;
	struct iattr ia;
	struct path path;
	int ret;

	ret = cfs_srv_iattr(req, &ia);
	if (ret)
		return ret;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (ret)
		goto out;
	inode = d_inode(path.dentry);
	/* as chmod_common(): the permission bits change, never the type */
	if (ia.ia_valid & ATTR_MODE)
		ia.ia_mode = (ia.ia_mode & S_IALLUGO) |
			     (inode->i_mode & ~S_IALLUGO);
	if (ia.ia_valid & ATTR_SIZE) {
		/* as vfs_truncate(): the caller must be able to write it */
		ret = -EISDIR;
		if (S_ISDIR(inode->i_mode))
			goto put;
		ret = -EINVAL;
		if (!S_ISREG(inode->i_mode))
			goto put;
		ret = inode_permission(mnt_user_ns(path.mnt), inode, MAY_WRITE);
		if (ret)
			goto put;
		ret = -EPERM;
		if (IS_APPEND(inode))
			goto put;
	}
	/* a truncation is a write: pages kept elsewhere go first */
	if (ia.ia_valid & ATTR_SIZE) {
		ret = cfs_data_begin(path.dentry, from, CFS_DATA_WRITE, NULL);
		if (ret < 0)
			goto put;
	}
	ret = mnt_want_write(path.mnt);
	if (!ret) {
		inode_lock(inode);
		ret = notify_change(mnt_user_ns(path.mnt), path.dentry, &ia,
				    NULL);
		inode_unlock(inode);
		mnt_drop_write(path.mnt);
	}
	if (ia.ia_valid & ATTR_SIZE)
		cfs_data_end(path.dentry, CFS_DATA_WRITE);
	if (!ret)
		ret = CFS_SRV_REPLY_REQ_FILE(rep, from, req, &path);
put:
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_symlink(unsigned int from, const struct cfs_symlink_req *req,
		    struct cfs_symlink_rep *rep)
{
	const struct cred *old;
	struct dentry *child;
	struct inode *dir;
	struct path parent;
	int ret;

	ret = cfs_srv_name_ok(req->name);
	if (ret)
		return ret;
	if (!req->target[0])
		return -ENOENT;	/* as symlink(2) with an empty target */
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &parent);
	if (ret)
		goto out;
	child = cfs_srv_lock_child(&parent, req->name);
	ret = PTR_ERR_OR_ZERO(child);
	if (ret)
		goto put;
	dir = d_inode(parent.dentry);
	ret = d_is_positive(child) ? -EEXIST :
	      vfs_symlink(mnt_user_ns(parent.mnt), dir, child, req->target);
	if (!ret && d_is_negative(child))
		ret = -ENOENT;
	if (!ret)
		ret = CFS_SRV_REPLY_FILE(rep, from, parent.mnt, child);
	cfs_srv_unlock_child(&parent, child);
put:
	path_put(&parent);
out:
	cfs_srv_revert(old);
	return ret;
}

/*
 * linkat(2)'s rule for the source (may_linkat() with fs.protected_hardlinks
 * on, Debian's default; the sysctl is not visible to modules, so its safe
 * setting always applies): the caller owns the file, or may read and write
 * a regular file that is neither setuid nor setgid-executable, or has
 * CAP_FOWNER.
 */
static int cfs_srv_may_link(const struct path *target)
{
	struct user_namespace *ns = mnt_user_ns(target->mnt);
	struct inode *inode = d_inode(target->dentry);

	if (uid_eq(current_fsuid(), i_uid_into_mnt(ns, inode)))
		return 0;
	if (S_ISREG(inode->i_mode) && !(inode->i_mode & S_ISUID) &&
	    (inode->i_mode & 02010) != 02010 &&	/* setgid and group-exec */
	    !inode_permission(ns, inode, MAY_READ | MAY_WRITE))
		return 0;
	return capable_wrt_inode_uidgid(ns, inode, CAP_FOWNER) ? 0 : -EPERM;
}

int cfs_srv_link(unsigned int from, const struct cfs_link_req *req,
		 struct cfs_link_rep *rep)
{
	struct path target, parent;
	const struct cred *old;
	struct dentry *child;
	int ret;

	ret = cfs_srv_name_ok(req->to_name);
	if (ret)
		return ret;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &target);
	if (ret)
		goto out;
	ret = cfs_srv_decode(req->export, req->to_type, req->to, req->to_len,
			     &parent);
	if (ret)
		goto put_target;
	ret = -EXDEV;
	if (parent.mnt != target.mnt)
		goto put_parent;
	ret = -EPERM;	/* as linkat(2): no hard links to directories */
	if (d_is_dir(target.dentry))
		goto put_parent;
	ret = cfs_srv_may_link(&target);
	if (ret)
		goto put_parent;
	child = cfs_srv_lock_child(&parent, req->to_name);
	ret = PTR_ERR_OR_ZERO(child);
	if (ret)
		goto put_parent;
	ret = d_is_positive(child) ? -EEXIST :
	      vfs_link(target.dentry, mnt_user_ns(parent.mnt),
		       d_inode(parent.dentry), child, NULL);
	cfs_srv_unlock_child(&parent, child);
	if (!ret)
		ret = CFS_SRV_REPLY_REQ_FILE(rep, from, req, &target);
put_parent:
	path_put(&parent);
put_target:
	path_put(&target);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_readlink(unsigned int from, const struct cfs_readlink_req *req,
		     struct cfs_readlink_rep *rep)
{
	DEFINE_DELAYED_CALL(done);
	const struct cred *old;
	const char *link;
	struct path path;
	int ret;

	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (ret)
		goto out;
	ret = -EINVAL;
	if (!d_is_symlink(path.dentry))
		goto put;
	link = vfs_get_link(path.dentry, &done);
	ret = PTR_ERR_OR_ZERO(link);
	if (!ret && strscpy(rep->target, link, sizeof(rep->target)) < 0)
		ret = -ENAMETOOLONG;
	do_delayed_call(&done);
put:
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_statfs(unsigned int from, const struct cfs_statfs_req *req,
		   struct cfs_statfs_rep *rep)
{
	const struct cred *old;
	struct kstatfs st;
	struct path path;
	int ret;

	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (ret)
		goto out;
	ret = vfs_statfs(&path, &st);
	if (!ret) {
		rep->blocks = st.f_blocks;
		rep->bfree = st.f_bfree;
		rep->bavail = st.f_bavail;
		rep->files = st.f_files;
		rep->ffree = st.f_ffree;
		rep->bsize = st.f_bsize;
		rep->namelen = st.f_namelen;
		rep->frsize = st.f_frsize;
	}
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

/* A name as getxattr(2) takes it: "prefix.rest", NUL-free, not too long. */
static int cfs_srv_xattr_name(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > XATTR_NAME_MAX)
		return -ERANGE;
	return 0;
}

int cfs_srv_getxattr(unsigned int from, const struct cfs_getxattr_req *req,
		     struct cfs_getxattr_rep *rep)
{
	const struct cred *old;
	struct path path;
	ssize_t n;
	int ret;

	ret = cfs_srv_xattr_name(req->name);
	if (ret)
		return ret;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (ret)
		goto out;
	rep->token = cfs_srv_grant(from, path.dentry, req->fh_type, req->fh,
				   req->fh_len);
	n = vfs_getxattr(mnt_user_ns(path.mnt), path.dentry, req->name,
			 req->size ? rep->value : NULL,
			 min_t(u32, req->size, sizeof(rep->value)));
	if (n == -ENODATA) {
		rep->absent = 1;
	} else if (n < 0) {
		ret = n;
	} else {
		rep->len = n;
		rep->value_len = req->size ? n : 0;
	}
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_listxattr(unsigned int from, const struct cfs_listxattr_req *req,
		      struct cfs_listxattr_rep *rep)
{
	const struct cred *old;
	struct path path;
	ssize_t n;
	int ret;

	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (ret)
		goto out;
	n = vfs_listxattr(path.dentry, req->size ? (char *)rep->names : NULL,
			  min_t(u32, req->size, sizeof(rep->names)));
	if (n < 0) {
		ret = n;
	} else {
		rep->len = n;
		rep->names_len = req->size ? n : 0;
	}
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

int cfs_srv_setxattr(unsigned int from, const struct cfs_setxattr_req *req,
		     struct cfs_setxattr_rep *rep)
{
	const struct cred *old;
	struct path path;
	int ret;

	ret = cfs_srv_xattr_name(req->name);
	if (ret)
		return ret;
	if (req->flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = CFS_SRV_PATH(req, &path);
	if (ret)
		goto out;
	ret = mnt_want_write(path.mnt);
	if (ret)
		goto put;
	if (req->remove)
		ret = vfs_removexattr(mnt_user_ns(path.mnt), path.dentry,
				      req->name);
	else
		ret = vfs_setxattr(mnt_user_ns(path.mnt), path.dentry,
				   req->name, req->value, req->value_len,
				   req->flags);
	mnt_drop_write(path.mnt);
put:
	path_put(&path);
out:
	cfs_srv_revert(old);
	return ret;
}

/* ---- data: the page cache's calls and rfile's hooks ---- */

/* rfile's reads and writes of a file a client opened through CFS. */
static int cfs_srv_io_begin(struct file *file, unsigned int from, bool write)
{
	int ret;

	if (!S_ISREG(file_inode(file)->i_mode))
		return 0;
	ret = cfs_data_begin(file->f_path.dentry, from,
			     write ? CFS_DATA_WRITE : CFS_DATA_READ, NULL);
	/* no token to be had (the table is full): nobody keeps pages */
	return ret == -ENOSPC ? 0 : ret;
}

static void cfs_srv_io_end(struct file *file, bool write, int counted)
{
	if (counted > 0)
		cfs_data_end(file->f_path.dentry,
			     write ? CFS_DATA_WRITE : CFS_DATA_READ);
}

static void cfs_srv_io_release(struct file *file)
{
	if (S_ISREG(file_inode(file)->i_mode))
		cfs_data_close(file->f_path.dentry);
}

const struct rfile_io_hooks cfs_srv_io_hooks = {
	.begin = cfs_srv_io_begin,
	.end = cfs_srv_io_end,
	.release = cfs_srv_io_release,
};

/*
 * @count bytes of @file at @pos into @buf for node @from, which keeps
 * them: registered before they are read.  The byte count or an errno.
 */
ssize_t cfs_srv_read_kept(struct file *file, unsigned int from, loff_t pos,
			  struct iov_iter *to)
{
	ssize_t ret;
	int counted;

	if (!(file->f_mode & FMODE_READ))
		return -EBADF;
	if (!S_ISREG(file_inode(file)->i_mode))
		return -EINVAL;
	counted = cfs_data_begin(file->f_path.dentry, from, CFS_DATA_CACHE,
				 NULL);
	if (counted < 0)
		return counted;
	ret = vfs_iter_read(file, to, &pos, 0);
	cfs_data_end(file->f_path.dentry, CFS_DATA_CACHE);
	return ret;
}

/*
 * @iter over @count bytes of @nr whole pages (@dir: ITER_SOURCE, or
 * ITER_DEST), through the bio_vec array returned, which the caller frees
 * once done with @iter; NULL without memory.
 */
struct bio_vec *cfs_pages_iter(struct iov_iter *iter, unsigned int dir,
			       struct page *const *pages, unsigned int nr,
			       size_t count, gfp_t gfp)
{
	struct bio_vec *bvec = kmalloc_array(nr, sizeof(*bvec), gfp);
	unsigned int i;

	if (!bvec)
		return NULL;
	for (i = 0; i < nr; i++)
		bvec_set_page(&bvec[i], pages[i], PAGE_SIZE, 0);
	iov_iter_bvec(iter, dir, bvec, nr, count);
	return bvec;
}

int cfs_srv_readpages(unsigned int from, const struct cfs_readpages_req *req,
		      struct cfs_readpages_rep *rep)
{
	unsigned int nr = DIV_ROUND_UP(req->count, PAGE_SIZE), used, i;
	struct bio_vec *bvec = NULL;
	struct iov_iter iter;
	struct file *file;
	ssize_t ret;

	if (req->pos < 0 || !req->count || nr > ARRAY_SIZE(rep->data))
		return -EINVAL;
	file = rfile_export_file_get(req->id, from);
	if (!file)
		return -EBADF;
	for (i = 0; i < nr; i++) {
		rep->data[i] = alloc_page(GFP_KERNEL);
		if (!rep->data[i])
			break;
	}
	if (i == nr)
		bvec = cfs_pages_iter(&iter, ITER_DEST, rep->data, nr,
				      req->count, GFP_KERNEL);
	ret = bvec ? cfs_srv_read_kept(file, from, req->pos, &iter) : -ENOMEM;
	kfree(bvec);
	fput(file);
	used = ret > 0 ? DIV_ROUND_UP(ret, PAGE_SIZE) : 0;
	/* the rest of the last page is not the peer's to see */
	if (used && offset_in_page(ret))
		memzero_page(rep->data[used - 1], offset_in_page(ret),
			     PAGE_SIZE - offset_in_page(ret));
	ics_put_pages(rep->data + used, i - used);
	if (ret < 0)
		return ret;
	rep->len = ret;
	rep->data_count = used;
	return 0;
}

/*
 * fallocate(2) of @file for node @from (under its credentials): a write,
 * so pages kept elsewhere are recalled first.
 */
int cfs_srv_fallocate_file(struct file *file, unsigned int from, int mode,
			   loff_t offset, loff_t len)
{
	int ret, counted;

	if (!S_ISREG(file_inode(file)->i_mode))
		return -ENODEV;
	counted = cfs_data_begin(file->f_path.dentry, from, CFS_DATA_WRITE,
				 NULL);
	if (counted < 0)
		return counted;
	ret = vfs_fallocate(file, mode, offset, len);
	cfs_data_end(file->f_path.dentry, CFS_DATA_WRITE);
	return ret;
}

/* The bytes of @from at @pos of @file, node @node's dirty pages: a writeback. */
ssize_t cfs_srv_write_back(struct file *file, unsigned int node, loff_t pos,
			   struct iov_iter *from)
{
	ssize_t ret;
	int counted;

	if (!(file->f_mode & FMODE_WRITE))
		return -EBADF;
	if (!S_ISREG(file_inode(file)->i_mode))
		return -EINVAL;
	counted = cfs_data_begin(file->f_path.dentry, node, CFS_DATA_WB, NULL);
	if (counted < 0)
		return counted;
	file_start_write(file);
	ret = vfs_iter_write(file, from, &pos, 0);
	file_end_write(file);
	cfs_data_end(file->f_path.dentry, CFS_DATA_WB);
	return ret;
}

int cfs_srv_writepages(unsigned int from, const struct cfs_writepages_req *req,
		       struct cfs_writepages_rep *rep)
{
	struct bio_vec *bvec;
	struct iov_iter iter;
	struct file *file;
	ssize_t ret;

	if (req->pos < 0 || !req->data_count ||
	    req->len > req->data_count * PAGE_SIZE ||
	    req->len <= (req->data_count - 1) * PAGE_SIZE)
		return -EINVAL;
	file = rfile_export_file_get(req->id, from);
	if (!file)
		return -EBADF;
	bvec = cfs_pages_iter(&iter, ITER_SOURCE, req->data, req->data_count,
			      req->len, GFP_KERNEL);
	ret = bvec ? cfs_srv_write_back(file, from, req->pos, &iter) : -ENOMEM;
	kfree(bvec);
	fput(file);
	if (ret < 0)
		return ret;
	rep->written = ret;
	return 0;
}

/*
 * Node @from may keep dirty pages of @file (@writes: of its write(2)s
 * too): *@seq, the grant's number, and *@size, the file's size then
 * (every earlier writer's pages are back).
 */
int cfs_srv_make_writable(struct file *file, unsigned int from, bool writes,
			  u64 *seq, s64 *size)
{
	int ret;

	if (!(file->f_mode & FMODE_WRITE))
		return -EBADF;
	if (!S_ISREG(file_inode(file)->i_mode))
		return -EINVAL;
	ret = cfs_data_begin(file->f_path.dentry, from,
			     writes ? CFS_DATA_EXCL_AHEAD : CFS_DATA_EXCL, seq);
	if (ret < 0)
		return ret;
	*size = i_size_read(file_inode(file));
	return 0;
}

int cfs_srv_writable(unsigned int from, const struct cfs_writable_req *req,
		     struct cfs_writable_rep *rep)
{
	struct file *file;
	int ret;

	file = rfile_export_file_get(req->id, from);
	if (!file)
		return -EBADF;
	ret = cfs_srv_make_writable(file, from, req->writes, &rep->seq,
				    &rep->size);
	fput(file);
	return ret;
}

int cfs_srv_fallocate(unsigned int from, const struct cfs_fallocate_req *req,
		      struct cfs_fallocate_rep *rep)
{
	const struct cred *old;
	struct file *file;
	int ret;

	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	file = rfile_export_file_get(req->id, from);
	if (!file) {
		ret = -EBADF;
		goto out;
	}
	ret = cfs_srv_fallocate_file(file, from, req->mode, req->offset,
				     req->len);
	fput(file);
out:
	cfs_srv_revert(old);
	return ret;
}
