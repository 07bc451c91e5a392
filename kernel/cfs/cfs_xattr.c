// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the client's extended attributes: every set, remove and list is a
 * call to the server, which applies its file system's rules (and the
 * caller's permissions) to the full name.  A get's answer, a value of up
 * to CFS_XATTR_KEPT_MAX bytes or "no such attribute", is kept under the
 * file's token (cfs_token.c: a change to the file's xattrs is an
 * FS_ATTRIB event on the server, which revokes it), so `ls -l` asking
 * each file for security.selinux costs no call when warm.  The VFS checks
 * the caller's access (xattr_permission()) before any of this.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/fs.h>
#include <linux/posix_acl.h>
#include <linux/posix_acl_xattr.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/xattr.h>

#include "cfs_internal.h"

#define CFS_XATTR_KEPT_MAX	256	/* bytes of a value kept */
#define CFS_XATTR_KEPT_PER_FILE	8

struct cfs_xattr_kept {
	struct list_head link;
	struct cfs_stamp stamp;
	int len;			/* -ENODATA: the file has none */
	char *name;			/* in the same allocation */
	u8 value[];
};

/* Under i_lock: drop one kept answer (freed by the caller). */
static void cfs_xattr_unkeep(struct inode *inode, struct cfs_xattr_kept *k,
			     struct list_head *gone)
{
	list_move(&k->link, gone);
	CFS_I(inode)->nr_xattrs--;
}

static void cfs_xattr_free_list(struct list_head *gone)
{
	struct cfs_xattr_kept *k, *tmp;

	list_for_each_entry_safe(k, tmp, gone, link)
		kfree(k);
}

/*
 * Every kept answer of @inode goes: the inode is being freed (an RCU
 * callback, in softirq context), nobody else can reach it, no lock.
 */
void cfs_xattr_forget(struct inode *inode)
{
	struct cfs_inode *ci = CFS_I(inode);

	cfs_xattr_free_list(&ci->xattrs);
	INIT_LIST_HEAD(&ci->xattrs);
	ci->nr_xattrs = 0;
}

/* A kept answer for @name: its getxattr result, or -EAGAIN (ask). */
static int cfs_xattr_kept_get(struct inode *inode, const char *name,
			      void *buffer, size_t size)
{
	struct cfs_xattr_kept *k, *tmp;
	int ret = -EAGAIN;
	LIST_HEAD(gone);

	spin_lock(&inode->i_lock);
	list_for_each_entry_safe(k, tmp, &CFS_I(inode)->xattrs, link) {
		if (!cfs_stamp_current(inode, &k->stamp)) {
			cfs_xattr_unkeep(inode, k, &gone);
			continue;
		}
		if (strcmp(k->name, name))
			continue;
		ret = k->len;
		if (ret >= 0 && size && ret > size)
			ret = -ERANGE;
		else if (ret > 0 && size)
			memcpy(buffer, k->value, ret);
		break;
	}
	spin_unlock(&inode->i_lock);
	cfs_xattr_free_list(&gone);
	return ret;
}

/* Keep the answer (@len bytes of @value, or -ENODATA) a reply brought. */
static void cfs_xattr_keep(struct inode *inode, const char *name, int len,
			   const void *value, u64 token)
{
	struct cfs_inode *ci = CFS_I(inode);
	size_t name_len = strlen(name) + 1;
	struct cfs_xattr_kept *k, *old, *tmp;
	size_t bytes = len > 0 ? len : 0;
	LIST_HEAD(gone);

	if (len > CFS_XATTR_KEPT_MAX)
		return;
	k = kmalloc(struct_size(k, value, bytes) + name_len, GFP_KERNEL);
	if (!k)
		return;		/* only a call more next time */
	if (!cfs_tok_stamp(inode, token, &k->stamp)) {
		kfree(k);
		return;
	}
	k->len = len;
	memcpy(k->value, value, bytes);
	k->name = (char *)k->value + bytes;
	memcpy(k->name, name, name_len);
	spin_lock(&inode->i_lock);
	list_for_each_entry_safe(old, tmp, &ci->xattrs, link) {
		if (!strcmp(old->name, name))
			cfs_xattr_unkeep(inode, old, &gone);
	}
	if (ci->nr_xattrs >= CFS_XATTR_KEPT_PER_FILE) {
		old = list_last_entry(&ci->xattrs, struct cfs_xattr_kept, link);
		cfs_xattr_unkeep(inode, old, &gone);
	}
	list_add(&k->link, &ci->xattrs);
	ci->nr_xattrs++;
	spin_unlock(&inode->i_lock);
	cfs_xattr_free_list(&gone);
}

/* getxattr of @inode's @full name: kept, or asked of the server. */
static int cfs_getxattr(struct inode *inode, const char *full, void *buffer,
			size_t size)
{
	struct cfs_getxattr_req *req;
	struct cfs_getxattr_rep *rep;
	int ret;

	if (strlen(full) > XATTR_NAME_MAX)
		return -ERANGE;
	ret = cfs_xattr_kept_get(inode, full, buffer, size);
	if (ret != -EAGAIN)
		return ret;
	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	rep = kvmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		kvfree(req);
		return -ENOMEM;
	}
	strscpy(req->name, full, sizeof(req->name));
	req->size = min_t(size_t, size, sizeof(rep->value));
	ret = CFS_CALL(inode->i_sb, getxattr, req, rep);
	if (!ret && rep->absent) {
		cfs_xattr_keep(inode, full, -ENODATA, NULL, rep->token);
		ret = -ENODATA;
	} else if (!ret) {
		ret = rep->len;
		if (size && rep->value_len <= size) {
			memcpy(buffer, rep->value, rep->value_len);
			if (rep->value_len == rep->len)
				cfs_xattr_keep(inode, full, rep->len,
					       rep->value, rep->token);
		} else if (size) {
			ret = -ERANGE;
		}
	}
	kvfree(rep);
	kvfree(req);
	return ret;
}

static int cfs_xattr_get(const struct xattr_handler *handler,
			 struct dentry *dentry, struct inode *inode,
			 const char *name, void *buffer, size_t size)
{
	return cfs_getxattr(inode, xattr_full_name(handler, name), buffer,
			    size);
}

/* setxattr (@value) or removexattr (NULL) of @inode's @full name. */
static int cfs_setxattr(struct inode *inode, const char *full,
			const void *value, size_t size, int flags)
{
	struct cfs_setxattr_req *req;
	struct cfs_setxattr_rep rep;
	int ret;

	if (strlen(full) > XATTR_NAME_MAX)
		return -ERANGE;
	if (size > sizeof(req->value))
		return -E2BIG;
	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	strscpy(req->name, full, sizeof(req->name));
	req->remove = !value;
	req->flags = flags & (XATTR_CREATE | XATTR_REPLACE);
	if (value) {
		memcpy(req->value, value, size);
		req->value_len = size;
	}
	ret = CFS_CALL(inode->i_sb, setxattr, req, &rep);
	kvfree(req);
	return ret ?: cfs_refresh(inode);	/* ctime moved */
}

static int cfs_xattr_set(const struct xattr_handler *handler,
			 struct user_namespace *ns, struct dentry *dentry,
			 struct inode *inode, const char *name,
			 const void *value, size_t size, int flags)
{
	return cfs_setxattr(inode, xattr_full_name(handler, name), value, size,
			    flags);
}

/*
 * POSIX ACLs: the server's, as its file system keeps them (its
 * system.posix_acl_* attributes, ids of the initial user namespace).  The
 * VFS keeps what ->get_acl returns on the inode: dropped at each revoke
 * and whenever the file's token is not held (cfs_acl_forget()), so a
 * permission check never uses an ACL the server changed.
 */
struct posix_acl *cfs_get_acl(struct inode *inode, int type, bool rcu)
{
	const char *name = type == ACL_TYPE_ACCESS ?
			   XATTR_NAME_POSIX_ACL_ACCESS :
			   XATTR_NAME_POSIX_ACL_DEFAULT;
	struct posix_acl *acl;
	void *value;
	int len;

	if (rcu)
		return ERR_PTR(-ECHILD);
	value = kvmalloc(XATTR_SIZE_MAX, GFP_KERNEL);
	if (!value)
		return ERR_PTR(-ENOMEM);
	len = cfs_getxattr(inode, name, value, XATTR_SIZE_MAX);
	if (len == -ENODATA || len == -EOPNOTSUPP || !len)
		acl = NULL;
	else if (len < 0)
		acl = ERR_PTR(len);
	else
		acl = posix_acl_from_xattr(&init_user_ns, value, len);
	kvfree(value);
	return acl;
}

int cfs_set_acl(struct user_namespace *ns, struct inode *inode,
		struct posix_acl *acl, int type)
{
	const char *name = type == ACL_TYPE_ACCESS ?
			   XATTR_NAME_POSIX_ACL_ACCESS :
			   XATTR_NAME_POSIX_ACL_DEFAULT;
	void *value = NULL;
	int len = 0, ret;

	if (acl) {
		len = posix_acl_xattr_size(acl->a_count);
		value = kmalloc(len, GFP_KERNEL);
		if (!value)
			return -ENOMEM;
		ret = posix_acl_to_xattr(&init_user_ns, acl, value, len);
		if (ret < 0)
			goto out;
	}
	ret = cfs_setxattr(inode, name, value, len, 0);
	if (ret == -ENODATA && !acl)
		ret = 0;	/* removing an ACL the file does not have */
out:
	kfree(value);
	forget_all_cached_acls(inode);
	return ret;
}

/* The VFS's kept ACLs of @inode are not current any more. */
void cfs_acl_forget(struct inode *inode)
{
	forget_all_cached_acls(inode);
}

ssize_t cfs_listxattr(struct dentry *dentry, char *buffer, size_t size)
{
	struct inode *inode = d_inode(dentry);
	struct cfs_listxattr_req *req;
	struct cfs_listxattr_rep *rep;
	ssize_t ret;

	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	rep = kvmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep) {
		kvfree(req);
		return -ENOMEM;
	}
	req->size = min_t(size_t, size, sizeof(rep->names));
	ret = CFS_CALL(inode->i_sb, listxattr, req, rep);
	if (!ret) {
		ret = rep->len;
		if (size && rep->names_len <= size)
			memcpy(buffer, rep->names, rep->names_len);
		else if (size)
			ret = -ERANGE;
	}
	kvfree(rep);
	kvfree(req);
	return ret;
}

static const struct xattr_handler cfs_user_xattr = {
	.prefix = XATTR_USER_PREFIX,
	.get = cfs_xattr_get,
	.set = cfs_xattr_set,
};

static const struct xattr_handler cfs_trusted_xattr = {
	.prefix = XATTR_TRUSTED_PREFIX,
	.get = cfs_xattr_get,
	.set = cfs_xattr_set,
};

static const struct xattr_handler cfs_security_xattr = {
	.prefix = XATTR_SECURITY_PREFIX,
	.get = cfs_xattr_get,
	.set = cfs_xattr_set,
};

const struct xattr_handler *cfs_xattr_handlers[] = {
	&posix_acl_access_xattr_handler,
	&posix_acl_default_xattr_handler,
	&cfs_user_xattr,
	&cfs_trusted_xattr,
	&cfs_security_xattr,
	NULL,
};
