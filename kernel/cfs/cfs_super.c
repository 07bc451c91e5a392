// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the client: the file system type, mounting (NODE:/path), the super
 * block and the inodes that stand for the server's files.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/backing-dev.h>
#include <linux/cred.h>
#include <linux/fs_context.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/string.h>

#include "clms.h"
#include "cfs_internal.h"

static struct kmem_cache *cfs_inode_cachep;

static struct inode *cfs_alloc_inode(struct super_block *sb)
{
	struct cfs_inode *ci = alloc_inode_sb(sb, cfs_inode_cachep, GFP_KERNEL);

	if (!ci)
		return NULL;
	memset(&ci->fh, 0, sizeof(ci->fh));
	ci->tok = 0;
	ci->dir_gen = 1;	/* a dentry's d_time starts at 0: never current */
	INIT_LIST_HEAD(&ci->xattrs);
	ci->nr_xattrs = 0;
	ci->wb_file = NULL;
	ci->excl = false;
	ci->excl_writes = false;
	ci->recall_seq = 0;
	atomic_set(&ci->recalls, 0);
	init_rwsem(&ci->wr_sem);
	ci->recalled_at = jiffies - msecs_to_jiffies(CFS_SHARED_MAX_MS) - 1;
	return &ci->vfs_inode;
}

static void cfs_evict_inode(struct inode *inode)
{
	struct file *wb = CFS_I(inode)->wb_file;

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (wb)
		fput(wb);
}

static void cfs_free_inode(struct inode *inode)
{
	cfs_xattr_forget(inode);
	kmem_cache_free(cfs_inode_cachep, CFS_I(inode));
}

static void cfs_inode_init_once(void *p)
{
	struct cfs_inode *ci = p;

	inode_init_once(&ci->vfs_inode);
}

int cfs_inode_cache_init(void)
{
	cfs_inode_cachep = kmem_cache_create("cfs_inode_cache",
					     sizeof(struct cfs_inode), 0,
					     SLAB_RECLAIM_ACCOUNT |
					     SLAB_MEM_SPREAD | SLAB_ACCOUNT,
					     cfs_inode_init_once);
	return cfs_inode_cachep ? 0 : -ENOMEM;
}

void cfs_inode_cache_exit(void)
{
	rcu_barrier();	/* inodes freed by RCU */
	kmem_cache_destroy(cfs_inode_cachep);
}

/*
 * @attr, from a reply, into @inode.  The size never shrinks while this
 * node writes pages the server has not seen yet (cfs_data_size_ahead()):
 * the server's is behind ours then, and only our own truncation or
 * fallocate, which write everything back first, set a smaller one
 * (cfs_inode_set_size()).
 */
void cfs_inode_update(struct inode *inode, const struct cfs_attr *attr)
{
	/* A file never changes type; a handle reused for another is stale. */
	inode->i_mode = (inode->i_mode & S_IFMT) | (attr->mode & ~S_IFMT);
	inode->i_uid = make_kuid(&init_user_ns, attr->uid);
	inode->i_gid = make_kgid(&init_user_ns, attr->gid);
	set_nlink(inode, attr->nlink);
	spin_lock(&inode->i_lock);
	if (attr->size >= i_size_read(inode) || !cfs_data_size_ahead(inode))
		i_size_write(inode, attr->size);
	spin_unlock(&inode->i_lock);
	inode->i_blocks = attr->blocks;
	inode->i_atime = attr->atime;
	inode->i_mtime = attr->mtime;
	inode->i_ctime = attr->ctime;
}

/* @size, the server's after our own truncation or fallocate. */
void cfs_inode_set_size(struct inode *inode, loff_t size)
{
	spin_lock(&inode->i_lock);
	i_size_write(inode, size);
	spin_unlock(&inode->i_lock);
}

static int cfs_inode_test(struct inode *inode, void *data)
{
	return cfs_fh_equal(&CFS_I(inode)->fh, data);
}

static int cfs_inode_set(struct inode *inode, void *data)
{
	CFS_I(inode)->fh = *(const struct cfs_fh *)data;
	return 0;
}

/* The inode of the server's file @fh, made or found, with @attr. */
struct inode *cfs_iget(struct super_block *sb, const struct cfs_fh *fh,
		       const struct cfs_attr *attr)
{
	struct inode *inode;

	inode = iget5_locked(sb, (unsigned long)attr->ino, cfs_inode_test,
			     cfs_inode_set, (void *)fh);
	if (!inode)
		return ERR_PTR(-ENOMEM);
	if (!(inode->i_state & I_NEW)) {
		if ((inode->i_mode ^ attr->mode) & S_IFMT) {
			iput(inode);
			return ERR_PTR(-ESTALE);
		}
		cfs_inode_update(inode, attr);
		return inode;
	}
	inode->i_ino = attr->ino;
	inode->i_mode = attr->mode;
	inode->i_rdev = new_decode_dev(attr->rdev);
	cfs_inode_update(inode, attr);
	switch (attr->mode & S_IFMT) {
	case S_IFDIR:
		inode->i_op = &cfs_dir_iops;
		inode->i_fop = &cfs_dir_fops;
		break;
	case S_IFREG:
		inode->i_op = &cfs_file_iops;
		inode->i_fop = &cfs_file_fops;
		inode->i_mapping->a_ops = &cfs_file_aops;
		break;
	case S_IFLNK:
		inode->i_op = &cfs_symlink_iops;
		break;
	case S_IFIFO:
		inode->i_op = &cfs_file_iops;
		inode->i_fop = &cfs_fifo_fops;
		break;
	default:
		/* a device is this node's own (as on NFS); a socket: ENXIO */
		inode->i_op = &cfs_file_iops;
		init_special_inode(inode, inode->i_mode, inode->i_rdev);
		break;
	}
	unlock_new_inode(inode);
	return inode;
}

/* The inode of the server's file (@ino, @fh) if this mount has it in use. */
struct inode *cfs_ilookup(struct super_block *sb, u64 ino,
			  const struct cfs_fh *fh)
{
	return ilookup5_nowait(sb, (unsigned long)ino, cfs_inode_test,
			       (void *)fh);
}

/* The server file system's figures, asked for each time. */
static int cfs_statfs(struct dentry *dentry, struct kstatfs *buf)
{
	struct inode *inode = d_inode(dentry);
	struct cfs_statfs_req *req;
	struct cfs_statfs_rep rep;
	int ret;

	ret = CFS_NEW_REQ(req, inode);
	if (ret)
		return ret;
	ret = CFS_CALL(inode->i_sb, statfs, req, &rep);
	if (ret)
		goto out;
	buf->f_type = CFS_SUPER_MAGIC;
	buf->f_bsize = rep.bsize;
	buf->f_frsize = rep.frsize;
	buf->f_blocks = rep.blocks;
	buf->f_bfree = rep.bfree;
	buf->f_bavail = rep.bavail;
	buf->f_files = rep.files;
	buf->f_ffree = rep.ffree;
	buf->f_namelen = rep.namelen;
out:
	kvfree(req);
	return ret;
}

static const struct super_operations cfs_sops = {
	.alloc_inode = cfs_alloc_inode,
	.evict_inode = cfs_evict_inode,
	.free_inode = cfs_free_inode,
	.drop_inode = generic_delete_inode,	/* nothing worth keeping */
	.statfs = cfs_statfs,
};

/* ---- mounting ---- */

struct cfs_fs_context {
	unsigned int server;
	char *path;
	bool plain;	/* "/path", not "NODE:/path" */
};

/*
 * "NODE:/path": the server's node number and an absolute path there;
 * "/path": a directory of this node (its processes then see its files as
 * every client does, through the same calls and tokens).
 */
static int cfs_parse_source(struct fs_context *fc, const char *source)
{
	struct cfs_fs_context *ctx = fc->fs_private;
	const char *colon = strchr(source, ':');
	const char *path = colon ? colon + 1 : source;
	char node[4];
	int ret;

	ctx->plain = !colon;
	if (!colon) {
		ctx->server = ssi_node_num();
	} else if (colon == source || colon - source >= sizeof(node)) {
		return invalfc(fc, "cfs: the source is NODE:/path or /path, not %s",
			       source);
	} else {
		memcpy(node, source, colon - source);
		node[colon - source] = '\0';
		ret = kstrtouint(node, 10, &ctx->server);
		if (ret || !ctx->server || ctx->server > SSI_MAX_NODES)
			return invalfc(fc, "cfs: %s is not a node number (1..%u)",
				       node, SSI_MAX_NODES);
	}
	if (path[0] != '/' || strlen(path) > 1024)
		return invalfc(fc, "cfs: the source is NODE:/path or /path, not %s",
			       source);
	kfree(ctx->path);
	ctx->path = kstrdup(path, GFP_KERNEL);
	return ctx->path ? 0 : -ENOMEM;
}

static int cfs_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	if (strcmp(param->key, "source"))
		return invalfc(fc, "cfs: no option %s", param->key);
	if (param->type != fs_value_is_string)
		return invalfc(fc, "cfs: the source must be a string");
	if (fc->source)
		return invalfc(fc, "cfs: one source only");
	fc->source = param->string;
	param->string = NULL;
	return cfs_parse_source(fc, fc->source);
}

static int cfs_mount_call(unsigned int server, const char *path,
			  struct cfs_fh *fh, struct cfs_attr *attr, u32 *export,
			  u64 *token)
{
	struct cfs_mount_req *req;
	struct cfs_mount_rep *rep;
	struct ssi_creds c;
	int ret;

	req = kzalloc(sizeof(*req), GFP_KERNEL);
	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	ret = -ENOMEM;
	if (!req || !rep)
		goto out;
	ret = -EPERM;
	if (ssi_creds_current(&c))
		goto out;
	SSI_CREDS_TO_REQ(req, &c);
	strscpy(req->path, path, sizeof(req->path));
	ret = CFS_OP(server, mount, req, rep);
	if (ret)
		goto out;
	*export = rep->export;
	*token = rep->token;
	CFS_FH_FROM_REP(fh, rep);
	CFS_ATTR_FROM_REP(attr, rep);
	ret = S_ISDIR(attr->mode) ? 0 : -ENOTDIR;
out:
	kfree(req);
	kfree(rep);
	return ret;
}

/*
 * The server restarted and forgot the export: ask for it again as the
 * mounter did.  Its root must still be the directory mounted.
 */
int cfs_remount(struct super_block *sb)
{
	struct cfs_sb_info *sbi = CFS_SB(sb);
	const struct cred *old;
	struct cfs_attr attr;
	struct cfs_fh fh;
	u64 token;
	u32 export;
	int ret;

	old = override_creds(sbi->mounter);
	ret = cfs_mount_call(sbi->server, sbi->path, &fh, &attr, &export,
			     &token);
	revert_creds(old);
	if (ret)
		return ret;
	if (!cfs_fh_equal(&fh, &CFS_I(d_inode(sb->s_root))->fh))
		return -ESTALE;	/* another directory by that path now */
	WRITE_ONCE(sbi->export, export);
	pr_info("node %u: export of %s found again\n", sbi->server, sbi->path);
	return 0;
}

static int cfs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct cfs_fs_context *ctx = fc->fs_private;
	struct cfs_sb_info *sbi;
	struct cfs_attr attr;
	struct inode *root;
	struct cfs_fh fh;
	u64 token;
	int ret;

	sbi = kzalloc(sizeof(*sbi), GFP_KERNEL);
	if (!sbi)
		return -ENOMEM;
	sb->s_fs_info = sbi;
	sbi->sb = sb;
	INIT_LIST_HEAD(&sbi->link);
	sbi->tok_epoch = 1;
	sbi->server = ctx->server;
	sbi->mounter = get_cred(current_cred());
	sbi->path = kstrdup(ctx->path, GFP_KERNEL);
	if (!sbi->path)
		return -ENOMEM;	/* kill_sb frees sbi */
	ret = cfs_mount_call(sbi->server, sbi->path, &fh, &attr,
			     &sbi->export, &token);
	if (ret)
		return ret;
	sbi->counted = true;
	/* a nodev super block's default has no writeback: mappings need it */
	ret = super_setup_bdi(sb);
	if (ret)
		return ret;
	/* readahead's calls go at once (cfs_data.c): let its window grow */
	sb->s_bdi->ra_pages = CFS_RA_PAGES;
	sb->s_magic = CFS_SUPER_MAGIC;
	/* the server's ACLs, and the caller's umask applied there */
	sb->s_flags |= SB_POSIXACL;
	sb->s_op = &cfs_sops;
	sb->s_d_op = &cfs_dops;
	sb->s_xattr = cfs_xattr_handlers;
	sb->s_maxbytes = MAX_LFS_FILESIZE;
	sb->s_time_gran = 1;
	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	root = cfs_iget(sb, &fh, &attr);
	if (IS_ERR(root))
		return PTR_ERR(root);
	sb->s_root = d_make_root(root);
	if (!sb->s_root)
		return -ENOMEM;
	cfs_tok_sb_add(sb);	/* revokes find its inodes from now on */
	cfs_tok_install(root, token);
	return 0;
}

static int cfs_get_tree(struct fs_context *fc)
{
	struct cfs_fs_context *ctx = fc->fs_private;
	struct cfs_sb_info *sbi;
	int ret;

	if (!ctx->path)
		return invalfc(fc, "cfs: no source: mount -t cfs NODE:/path DIR");
	/* every mount its own super block: two mounts are two clients */
	ret = get_tree_nodev(fc, cfs_fill_super);
	if (ret || !ctx->plain)
		return ret;
	/* the server's own plain mount is every node's (cfs_cmount.c) */
	sbi = fc->root->d_sb->s_fs_info;
	sbi->plain = true;
	cfs_cmount_plain(sbi->path, false);
	return 0;
}

static void cfs_free_fc(struct fs_context *fc)
{
	struct cfs_fs_context *ctx = fc->fs_private;

	if (ctx)
		kfree(ctx->path);
	kfree(ctx);
}

static const struct fs_context_operations cfs_context_ops = {
	.parse_param = cfs_parse_param,
	.get_tree = cfs_get_tree,
	.free = cfs_free_fc,
};

static int cfs_init_fs_context(struct fs_context *fc)
{
	struct cfs_fs_context *ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);

	if (!ctx)
		return -ENOMEM;
	fc->fs_private = ctx;
	fc->ops = &cfs_context_ops;
	return 0;
}

/* The server counts its clients: tell it, unless it is down. */
static void cfs_unmount_call(struct cfs_sb_info *sbi)
{
	struct cfs_unmount_req req = { .export = READ_ONCE(sbi->export) };
	struct cfs_unmount_rep rep;

	if (sbi->counted && (sbi->server == ssi_node_num() ||
			     clms_node_is_up(sbi->server)))
		CFS_OP(sbi->server, unmount, &req, &rep);
}

static void cfs_kill_sb(struct super_block *sb)
{
	struct cfs_sb_info *sbi = sb->s_fs_info;

	if (sbi) {
		cfs_tok_sb_del(sb);
		cfs_unmount_call(sbi);
		if (sbi->plain)
			cfs_cmount_plain(sbi->path, true);
	}
	kill_anon_super(sb);
	if (sbi) {
		put_cred(sbi->mounter);
		kfree(sbi->path);
	}
	kfree(sbi);
}

struct file_system_type cfs_fs_type = {
	.owner = THIS_MODULE,
	.name = "cfs",
	.init_fs_context = cfs_init_fs_context,
	.kill_sb = cfs_kill_sb,
};
MODULE_ALIAS_FS("cfs");
