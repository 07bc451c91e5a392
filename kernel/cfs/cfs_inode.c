// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the client's inode and dentry operations: each a call to the server
 * (cfs_srv.c), made under the caller's credentials.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/namei.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "cfs_internal.h"

/*
 * Fetches @inode's attributes from the server; @exact_size: its size too,
 * even below ours (after our own fallocate, everything written back).
 */
int cfs_refresh_attr(struct inode *inode, bool exact_size)
{
	struct cfs_getattr_req *req;
	struct cfs_getattr_rep rep;
	struct cfs_attr attr;
	int ret;

	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	ret = CFS_CALL(inode->i_sb, getattr, req, &rep);
	kvfree(req);
	if (ret)
		return ret;
	CFS_ATTR_FROM_REP(&attr, &rep);
	if ((attr.mode ^ inode->i_mode) & S_IFMT)
		return -ESTALE;
	cfs_inode_update(inode, &attr);
	if (exact_size)
		cfs_inode_set_size(inode, attr.size);
	cfs_tok_install(inode, rep.token);
	return 0;
}

static int cfs_getattr(struct user_namespace *ns, const struct path *path,
		       struct kstat *stat, u32 request_mask,
		       unsigned int flags)
{
	struct inode *inode = d_inode(path->dentry);
	unsigned int sync = flags & AT_STATX_SYNC_TYPE;
	int ret;

	if (sync == AT_STATX_FORCE_SYNC ||
	    (sync != AT_STATX_DONT_SYNC && !cfs_tok_valid(inode))) {
		ret = cfs_refresh(inode);
		if (ret)
			return ret;
	}
	generic_fillattr(ns, inode, stat);
	stat->blksize = PAGE_SIZE;
	return 0;
}

/* What a lookup of a name found: the file (if any) and the tokens. */
struct cfs_found {
	bool found;
	struct cfs_fh fh;
	struct cfs_attr attr;
	u64 token, dir_token;
};

/* @name in @dir on the server, into *@f; or an error. */
static int cfs_lookup_call(struct inode *dir, const struct qstr *name,
			   struct cfs_found *f)
{
	struct cfs_lookup_req *req;
	struct cfs_lookup_rep *rep;
	int ret;

	if (name->len > CFS_NAME_MAX)
		return -ENAMETOOLONG;
	ret = CFS_NEW_REQ(req, dir);
	if (ret)
		return ret;
	rep = kmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		kvfree(req);
		return -ENOMEM;
	}
	memcpy(req->name, name->name, name->len);
	req->name[name->len] = '\0';
	ret = CFS_CALL(dir->i_sb, lookup, req, rep);
	if (!ret) {
		f->found = rep->found;
		f->dir_token = rep->dir_token;
		f->token = rep->token;
		if (f->found) {
			CFS_FH_FROM_REP(&f->fh, rep);
			CFS_ATTR_FROM_REP(&f->attr, rep);
		}
	}
	kfree(rep);
	kvfree(req);
	return ret;
}

/*
 * A dentry looked up while @gen was its directory's dir_gen stays valid
 * without asking as long as the directory's token is held and no revoke
 * came since (cfs_token.c).
 */
static void cfs_dentry_stamp(struct dentry *dentry, unsigned long gen)
{
	WRITE_ONCE(dentry->d_time, gen);
}

static bool cfs_dentry_cached(struct dentry *dentry, struct inode *dir)
{
	return cfs_tok_valid(dir) &&
	       READ_ONCE(dentry->d_time) == READ_ONCE(CFS_I(dir)->dir_gen);
}

static struct dentry *cfs_lookup(struct inode *dir, struct dentry *dentry,
				 unsigned int flags)
{
	unsigned long gen = READ_ONCE(CFS_I(dir)->dir_gen);
	struct inode *inode = NULL;
	struct dentry *res;
	struct cfs_found f;
	int ret;

	ret = cfs_lookup_call(dir, &dentry->d_name, &f);
	if (ret)
		return ERR_PTR(ret);
	cfs_tok_install(dir, f.dir_token);
	if (f.found) {
		inode = cfs_iget(dir->i_sb, &f.fh, &f.attr);
		if (IS_ERR(inode))
			return ERR_CAST(inode);
		cfs_tok_install(inode, f.token);
	}
	res = d_splice_alias(inode, dentry);
	if (!IS_ERR(res))
		cfs_dentry_stamp(res ?: dentry, gen);
	return res;
}

/*
 * A dentry is trusted without asking while its directory's token is held
 * and was since it was looked up; otherwise the server is asked: the name
 * may have gone or become another file there since.
 */
static int cfs_d_revalidate(struct dentry *dentry, unsigned int flags)
{
	struct inode *dir, *inode;
	struct dentry *parent;
	unsigned long gen;
	struct cfs_found f;
	int ret;

	if (flags & LOOKUP_RCU) {
		parent = READ_ONCE(dentry->d_parent);
		dir = d_inode_rcu(parent);
		if (dir && cfs_dentry_cached(dentry, dir))
			return 1;
		return -ECHILD;
	}
	parent = dget_parent(dentry);
	dir = d_inode(parent);
	if (cfs_dentry_cached(dentry, dir)) {
		dput(parent);
		return 1;
	}
	inode = d_inode(dentry);
	gen = READ_ONCE(CFS_I(dir)->dir_gen);
	ret = cfs_lookup_call(dir, &dentry->d_name, &f);
	if (!ret)
		cfs_tok_install(dir, f.dir_token);
	dput(parent);
	if (ret)
		return ret == -ESTALE ? 0 : ret;
	if (!f.found) {
		if (inode)
			return 0;
		cfs_dentry_stamp(dentry, gen);	/* still absent */
		return 1;
	}
	if (!inode || !cfs_fh_equal(&CFS_I(inode)->fh, &f.fh) ||
	    ((inode->i_mode ^ f.attr.mode) & S_IFMT))
		return 0;	/* another file by that name now */
	cfs_inode_update(inode, &f.attr);
	cfs_tok_install(inode, f.token);
	cfs_dentry_stamp(dentry, gen);
	return 1;
}

/*
 * Permission is checked on attributes that are current: the token's, or
 * fetched now (and a token with them); in an RCU walk, only the token's.
 */
static int cfs_permission(struct user_namespace *ns, struct inode *inode,
			  int mask)
{
	int ret;

	if (!cfs_cache || !cfs_tok_valid(inode)) {
		if (mask & MAY_NOT_BLOCK)
			return -ECHILD;
		/* mode and ACLs as they are now: the ACLs are asked again */
		cfs_acl_forget(inode);
		if (cfs_cache) {
			ret = cfs_refresh(inode);
			if (ret)
				return ret;
		}
	}
	return generic_permission(ns, inode, mask);
}

const struct dentry_operations cfs_dops = {
	.d_revalidate = cfs_d_revalidate,
};

/* create and mkdir: @dir is locked by the VFS, the server locks its own. */
static int cfs_create_call(struct inode *dir, struct dentry *dentry,
			   umode_t mode, dev_t rdev, bool excl, bool is_dir)
{
	struct cfs_create_req *req;
	struct cfs_create_rep *rep;
	struct inode *inode;
	struct cfs_attr attr;
	struct cfs_fh fh;
	u64 token = 0;
	int ret;

	if (dentry->d_name.len > CFS_NAME_MAX)
		return -ENAMETOOLONG;
	ret = CFS_NEW_REQ(req, dir);
	if (ret)
		return ret;
	rep = kmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		kvfree(req);
		return -ENOMEM;
	}
	memcpy(req->name, dentry->d_name.name, dentry->d_name.len);
	req->name[dentry->d_name.len] = '\0';
	req->mode = mode;
	req->rdev = new_encode_dev(rdev);
	req->umask = current_umask();
	req->excl = excl;
	req->dir = is_dir;
	ret = CFS_CALL(dir->i_sb, create, req, rep);
	if (!ret) {
		CFS_FH_FROM_REP(&fh, rep);
		CFS_ATTR_FROM_REP(&attr, rep);
		token = rep->token;
	}
	kfree(rep);
	kvfree(req);
	if (ret)
		return ret;
	inode = cfs_iget(dir->i_sb, &fh, &attr);
	if (IS_ERR(inode))
		return PTR_ERR(inode);
	cfs_tok_install(inode, token);
	d_instantiate(dentry, inode);
	return cfs_refresh(dir);
}

static int cfs_create(struct user_namespace *ns, struct inode *dir,
		      struct dentry *dentry, umode_t mode, bool excl)
{
	return cfs_create_call(dir, dentry, mode, 0, excl, false);
}

/*
 * A FIFO (the server's pipe, opened through it from every node:
 * cfs_fifo.c), a socket, or a device (opened on the opener's own node,
 * as on NFS); made on the server's disk.
 */
static int cfs_mknod(struct user_namespace *ns, struct inode *dir,
		     struct dentry *dentry, umode_t mode, dev_t rdev)
{
	return cfs_create_call(dir, dentry, mode, rdev, true, false);
}

static int cfs_mkdir(struct user_namespace *ns, struct inode *dir,
		     struct dentry *dentry, umode_t mode)
{
	return cfs_create_call(dir, dentry, mode, 0, true, true);
}

static int cfs_symlink(struct user_namespace *ns, struct inode *dir,
		       struct dentry *dentry, const char *target)
{
	struct cfs_symlink_req *req;
	struct cfs_symlink_rep *rep;
	struct inode *inode;
	struct cfs_attr attr;
	struct cfs_fh fh;
	u64 token = 0;
	int ret;

	if (dentry->d_name.len > CFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (strlen(target) >= sizeof(req->target))
		return -ENAMETOOLONG;
	ret = CFS_NEW_REQ(req, dir);
	if (ret)
		return ret;
	rep = kmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		kvfree(req);
		return -ENOMEM;
	}
	memcpy(req->name, dentry->d_name.name, dentry->d_name.len);
	req->name[dentry->d_name.len] = '\0';
	strscpy(req->target, target, sizeof(req->target));
	ret = CFS_CALL(dir->i_sb, symlink, req, rep);
	if (!ret) {
		CFS_FH_FROM_REP(&fh, rep);
		CFS_ATTR_FROM_REP(&attr, rep);
		token = rep->token;
	}
	kfree(rep);
	kvfree(req);
	if (ret)
		return ret;
	inode = cfs_iget(dir->i_sb, &fh, &attr);
	if (IS_ERR(inode))
		return PTR_ERR(inode);
	cfs_tok_install(inode, token);
	d_instantiate(dentry, inode);
	return cfs_refresh(dir);
}

static int cfs_link(struct dentry *old_dentry, struct inode *dir,
		    struct dentry *dentry)
{
	struct inode *inode = d_inode(old_dentry);
	const struct cfs_fh *to = &CFS_I(dir)->fh;
	struct cfs_link_req *req;
	struct cfs_link_rep rep;
	struct cfs_attr attr;
	int ret;

	if (dentry->d_name.len > CFS_NAME_MAX)
		return -ENAMETOOLONG;
	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	req->to_type = to->type;
	req->to_len = to->len;
	memcpy(req->to, to->data, to->len);
	memcpy(req->to_name, dentry->d_name.name, dentry->d_name.len);
	req->to_name[dentry->d_name.len] = '\0';
	ret = CFS_CALL(dir->i_sb, link, req, &rep);
	kvfree(req);
	if (ret)
		return ret;
	CFS_ATTR_FROM_REP(&attr, &rep);
	cfs_inode_update(inode, &attr);
	cfs_tok_install(inode, rep.token);
	ihold(inode);
	d_instantiate(dentry, inode);
	return cfs_refresh(dir);
}

/* The target is read from the server each time: it may change there. */
static const char *cfs_get_link(struct dentry *dentry, struct inode *inode,
				struct delayed_call *done)
{
	struct cfs_readlink_req *req;
	struct cfs_readlink_rep *rep;
	char *target;
	int ret;

	if (!dentry)
		return ERR_PTR(-ECHILD);	/* RCU walk: it needs a call */
	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ERR_PTR(ret);
	rep = kmalloc(sizeof(*rep), GFP_KERNEL);
	ret = -ENOMEM;
	if (rep)
		ret = CFS_CALL(inode->i_sb, readlink, req, rep);
	target = ret ? ERR_PTR(ret) : kstrdup(rep->target, GFP_KERNEL);
	if (!target)
		target = ERR_PTR(-ENOMEM);
	kfree(rep);
	kvfree(req);
	if (!IS_ERR(target))
		set_delayed_call(done, kfree_link, target);
	return target;
}

static int cfs_remove_call(struct inode *dir, struct dentry *dentry,
			   bool rmdir)
{
	struct cfs_remove_req *req;
	struct cfs_remove_rep rep;
	int ret;

	ret = CFS_NEW_REQ(req, dir);
	if (ret)
		return ret;
	memcpy(req->name, dentry->d_name.name, dentry->d_name.len);
	req->name[dentry->d_name.len] = '\0';
	req->rmdir = rmdir;
	ret = CFS_CALL(dir->i_sb, remove, req, &rep);
	kvfree(req);
	if (ret)
		return ret;
	/* what the server now says of both (nlink of an open file...) */
	cfs_refresh(d_inode(dentry));
	if (rmdir)
		clear_nlink(d_inode(dentry));
	return cfs_refresh(dir);
}

static int cfs_unlink(struct inode *dir, struct dentry *dentry)
{
	return cfs_remove_call(dir, dentry, false);
}

static int cfs_rmdir(struct inode *dir, struct dentry *dentry)
{
	return cfs_remove_call(dir, dentry, true);
}

static int cfs_rename(struct user_namespace *ns, struct inode *old_dir,
		      struct dentry *old_dentry, struct inode *new_dir,
		      struct dentry *new_dentry, unsigned int flags)
{
	struct cfs_rename_req *req;
	struct cfs_rename_rep rep;
	const struct cfs_fh *to = &CFS_I(new_dir)->fh;
	int ret;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	ret = CFS_NEW_REQ(req, old_dir);
	if (ret)
		return ret;
	memcpy(req->name, old_dentry->d_name.name, old_dentry->d_name.len);
	req->name[old_dentry->d_name.len] = '\0';
	memcpy(req->to_name, new_dentry->d_name.name, new_dentry->d_name.len);
	req->to_name[new_dentry->d_name.len] = '\0';
	req->to_type = to->type;
	req->to_len = to->len;
	memcpy(req->to, to->data, to->len);
	req->flags = flags;
	ret = CFS_CALL(old_dir->i_sb, rename, req, &rep);
	kvfree(req);
	if (ret)
		return ret;
	if (d_really_is_positive(new_dentry) && !(flags & RENAME_EXCHANGE))
		cfs_refresh(d_inode(new_dentry));
	cfs_refresh(new_dir);
	return cfs_refresh(old_dir);
}

static int cfs_setattr(struct user_namespace *ns, struct dentry *dentry,
		       struct iattr *ia)
{
	struct inode *inode = d_inode(dentry);
	struct cfs_setattr_req *req;
	struct cfs_setattr_rep rep;
	struct cfs_attr attr;
	int ret;

	/* the server checks and applies; these are for it to redo or none */
	ia->ia_valid &= ~(ATTR_KILL_SUID | ATTR_KILL_SGID | ATTR_KILL_PRIV |
			  ATTR_FORCE | ATTR_FILE | ATTR_OPEN | ATTR_CTIME);
	if (!ia->ia_valid)
		return 0;
	/*
	 * Our dirty pages go first, as another node's would: a truncation
	 * must find them on the disk, and their writeback would undo times
	 * set now (touch -m after writing, cp -p).
	 */
	if (S_ISREG(inode->i_mode)) {
		ret = cfs_data_flush(inode, 0, LLONG_MAX);
		if (ret)
			return ret;
	}
	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	req->valid = ia->ia_valid;
	req->set_mode = ia->ia_mode;
	req->set_uid = from_kuid(&init_user_ns, ia->ia_uid);
	req->set_gid = from_kgid(&init_user_ns, ia->ia_gid);
	req->set_size = ia->ia_size;
	req->set_atime = ia->ia_atime.tv_sec;
	req->set_atime_ns = ia->ia_atime.tv_nsec;
	req->set_mtime = ia->ia_mtime.tv_sec;
	req->set_mtime_ns = ia->ia_mtime.tv_nsec;
	ret = CFS_CALL(inode->i_sb, setattr, req, &rep);
	kvfree(req);
	if (ret)
		return ret;
	CFS_ATTR_FROM_REP(&attr, &rep);
	cfs_inode_update(inode, &attr);
	cfs_tok_install(inode, rep.token);
	if ((ia->ia_valid & ATTR_SIZE) && S_ISREG(inode->i_mode)) {
		cfs_inode_set_size(inode, attr.size);
		truncate_pagecache(inode, attr.size);
	}
	return 0;
}

const struct inode_operations cfs_dir_iops = {
	.get_acl = cfs_get_acl,
	.set_acl = cfs_set_acl,
	.lookup = cfs_lookup,
	.create = cfs_create,
	.mkdir = cfs_mkdir,
	.mknod = cfs_mknod,
	.unlink = cfs_unlink,
	.rmdir = cfs_rmdir,
	.rename = cfs_rename,
	.symlink = cfs_symlink,
	.link = cfs_link,
	.permission = cfs_permission,
	.getattr = cfs_getattr,
	.setattr = cfs_setattr,
	.listxattr = cfs_listxattr,
};

const struct inode_operations cfs_file_iops = {
	.get_acl = cfs_get_acl,
	.set_acl = cfs_set_acl,
	.permission = cfs_permission,
	.getattr = cfs_getattr,
	.setattr = cfs_setattr,
	.listxattr = cfs_listxattr,
};

const struct inode_operations cfs_symlink_iops = {
	.get_link = cfs_get_link,
	.permission = cfs_permission,
	.getattr = cfs_getattr,
	.setattr = cfs_setattr,
	.listxattr = cfs_listxattr,
};
