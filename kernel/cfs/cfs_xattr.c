// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the client's extended attributes: every get, set, remove and list
 * is a call to the server, which applies its file system's rules (and
 * the caller's permissions) to the full name.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/xattr.h>

#include "cfs_internal.h"

static int cfs_xattr_get(const struct xattr_handler *handler,
			 struct dentry *dentry, struct inode *inode,
			 const char *name, void *buffer, size_t size)
{
	const char *full = xattr_full_name(handler, name);
	struct cfs_getxattr_req *req;
	struct cfs_getxattr_rep *rep;
	int ret;

	if (strlen(full) > XATTR_NAME_MAX)
		return -ERANGE;
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
	ret = CFS_CALL(inode->i_sb, ics_cfs_getxattr, req, rep);
	if (!ret) {
		ret = rep->len;
		if (size && rep->value_len <= size)
			memcpy(buffer, rep->value, rep->value_len);
		else if (size)
			ret = -ERANGE;
	}
	kvfree(rep);
	kvfree(req);
	return ret;
}

static int cfs_xattr_set(const struct xattr_handler *handler,
			 struct user_namespace *ns, struct dentry *dentry,
			 struct inode *inode, const char *name,
			 const void *value, size_t size, int flags)
{
	const char *full = xattr_full_name(handler, name);
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
	ret = CFS_CALL(inode->i_sb, ics_cfs_setxattr, req, &rep);
	kvfree(req);
	return ret ?: cfs_refresh(inode);	/* ctime moved */
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
	ret = CFS_CALL(inode->i_sb, ics_cfs_listxattr, req, rep);
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
	&cfs_user_xattr,
	&cfs_trusted_xattr,
	&cfs_security_xattr,
	NULL,
};
