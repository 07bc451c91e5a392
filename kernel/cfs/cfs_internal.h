/* SPDX-License-Identifier: GPL-2.0-only */
/* CFS module internals shared by its source files. */
#ifndef _SSI_CFS_INTERNAL_H
#define _SSI_CFS_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/rwsem.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/stat.h>
#include <linux/string.h>
#include <linux/types.h>

#include "cfs.h"
#include "ics.h"
#include "ssi_core.h"
#include "cfs_ics.h"

#define CFS_FH_MAX		64		/* bytes<64> fh in cfs.ics */
#define CFS_NAME_MAX		255
/* A readdir entry: __le64 pos, __le64 ino, u8 d_type, u8 name length, name */
#define CFS_DIRENT_HEAD		18
/* Every call is bounded by this; a server that does not answer is EIO. */
#define CFS_TIMEOUT		(5 * HZ * ICS_SLOW_KERNEL_FACTOR)

/* A file on its server: the export it is under and its exportfs handle. */
struct cfs_fh {
	u32 type;
	u32 len;
	u8 data[CFS_FH_MAX];
};

static inline bool cfs_fh_equal(const struct cfs_fh *a, const struct cfs_fh *b)
{
	return a->type == b->type && a->len == b->len &&
	       !memcmp(a->data, b->data, a->len);
}

/* Attributes as replies carry them. */
struct cfs_attr {
	u64 ino;
	u32 mode, nlink, uid, gid, rdev, blksize;
	s64 size;
	u64 blocks;
	struct timespec64 atime, mtime, ctime;
};

#define CFS_ATTR_FROM_REP(a, rep) do {					\
	struct cfs_attr *a_ = (a);					\
	typeof(rep) p_ = (rep);						\
									\
	a_->ino = p_->ino;						\
	a_->mode = p_->mode;						\
	a_->nlink = p_->nlink;						\
	a_->uid = p_->uid;						\
	a_->gid = p_->gid;						\
	a_->rdev = p_->rdev;						\
	a_->size = p_->size;						\
	a_->blocks = p_->blocks;					\
	a_->blksize = p_->blksize;					\
	a_->atime.tv_sec = p_->atime;					\
	a_->atime.tv_nsec = p_->atime_ns;				\
	a_->mtime.tv_sec = p_->mtime;					\
	a_->mtime.tv_nsec = p_->mtime_ns;				\
	a_->ctime.tv_sec = p_->ctime;					\
	a_->ctime.tv_nsec = p_->ctime_ns;				\
} while (0)

#define CFS_ATTR_TO_REP(rep, st) do {					\
	typeof(rep) p_ = (rep);						\
	const struct kstat *s_ = (st);					\
									\
	p_->ino = s_->ino;						\
	p_->mode = s_->mode;						\
	p_->nlink = s_->nlink;						\
	p_->uid = from_kuid_munged(&init_user_ns, s_->uid);		\
	p_->gid = from_kgid_munged(&init_user_ns, s_->gid);		\
	p_->rdev = new_encode_dev(s_->rdev);				\
	p_->size = s_->size;						\
	p_->blocks = s_->blocks;					\
	p_->blksize = s_->blksize;					\
	p_->atime = s_->atime.tv_sec;					\
	p_->atime_ns = s_->atime.tv_nsec;				\
	p_->mtime = s_->mtime.tv_sec;					\
	p_->mtime_ns = s_->mtime.tv_nsec;				\
	p_->ctime = s_->ctime.tv_sec;					\
	p_->ctime_ns = s_->ctime.tv_nsec;				\
} while (0)

/* A request's file handle fields from/to struct cfs_fh. */
#define CFS_FH_TO_REQ(req, f) do {					\
	typeof(req) q_ = (req);						\
	const struct cfs_fh *f_ = (f);					\
									\
	q_->fh_type = f_->type;						\
	q_->fh_len = f_->len;						\
	memcpy(q_->fh, f_->data, f_->len);				\
} while (0)

#define CFS_FH_FROM_REP(f, rep) do {					\
	struct cfs_fh *f_ = (f);					\
	typeof(rep) p_ = (rep);						\
									\
	f_->type = p_->fh_type;						\
	f_->len = p_->fh_len;						\
	memcpy(f_->data, p_->fh, p_->fh_len);				\
} while (0)

/*
 * The client's view of a mount: its server, the export there, and what
 * asks for the export again when the server has forgotten it (restarted):
 * the path and the mounter's credentials.
 */
struct cfs_sb_info {
	unsigned int server;
	u32 export;
	char *path;
	const struct cred *mounter;
	struct super_block *sb;
	struct list_head link;		/* cfs_token.c: every mount of the node */
	u64 tok_epoch;			/* an inode's token is valid at this */
	bool counted;			/* the server counts this mount */
	bool plain;			/* "/path": clusterwide (cfs_cmount.c) */
};

/*
 * Call @op (cfs.ics) of @sb's server: through ICS, or, when this node is
 * the server (a mount of its own export), its handler right here, in the
 * caller's context, as the server would run it for a peer.
 */
#define CFS_OP(server, op, req, rep) ({					\
	unsigned int op_server_ = (server);				\
	typeof(req) op_req_ = (req);					\
	typeof(rep) op_rep_ = (rep);					\
	int op_ret_;							\
									\
	atomic64_inc(&cfs_calls);					\
	if (op_server_ == ssi_node_num()) {				\
		memset(op_rep_, 0, sizeof(*op_rep_));			\
		op_ret_ = cfs_srv_##op(op_server_, op_req_, op_rep_);	\
	} else {							\
		op_ret_ = ics_cfs_##op(op_server_, op_req_, op_rep_,	\
				       CFS_TIMEOUT);			\
	}								\
	cfs_errno(op_ret_);						\
})

/*
 * A call about a file of @sb's mount.  A server that restarted no longer
 * knows the export (ENXIO): it is asked for it again, as the mounter, and
 * the call made once more; a mount it cannot give back is stale.
 */
#define CFS_CALL(sb, op, req, rep) ({					\
	struct super_block *call_sb_ = (sb);				\
	typeof(req) call_req_ = (req);					\
	typeof(rep) call_rep_ = (rep);					\
	int call_ret_, call_try_;					\
									\
	for (call_try_ = 0; call_try_ < 2; call_try_++) {		\
		call_ret_ = CFS_OP(CFS_SB(call_sb_)->server, op,	\
				   call_req_, call_rep_);		\
		if (call_ret_ != -ENXIO || call_try_ ||			\
		    cfs_remount(call_sb_))				\
			break;						\
		call_req_->export = READ_ONCE(CFS_SB(call_sb_)->export);	\
	}								\
	call_ret_ == -ENXIO ? -ESTALE : call_ret_;			\
})

/*
 * @tok: the super block's tok_epoch while the server's token on the file
 * is held (its attributes, a directory's entries, are valid here), else 0.
 * @dir_gen: changes at each revoke; a dentry (d_time) made under an older
 * one is looked up again.  Both under cfs_token.c's lock.
 */
struct cfs_inode {
	struct inode vfs_inode;
	struct cfs_fh fh;
	u64 tok;
	unsigned long dir_gen;
	struct list_head xattrs;	/* cfs_xattr.c, under i_lock */
	unsigned int nr_xattrs;
	/* cfs_data.c: the page cache */
	struct file *wb_file;		/* dirty pages go back through it */
	bool excl;			/* may keep dirty pages (i_lock) */
	bool excl_writes;		/* of write(2)s too (i_lock) */
	u64 recall_seq;			/* the newest recall's number (i_lock) */
	atomic_t recalls;		/* recalls being answered here */
	struct rw_semaphore wr_sem;	/* kept write(2)s copying: a recall waits */
	unsigned long recalled_at;	/* jiffies of the last recall taken */
};

/*
 * For cfs.shared_ms (1 s by default) after a recall of its pages, read(2)
 * and write(2) of a file use the server's file instead of keeping pages:
 * another node uses it, and each of its ops would recall them again (the
 * plain random exerciser, two nodes writing one file, took 2.1x as long
 * with every read kept).  0 keeps every read and write (the exercisers
 * run so to race recalls with kept writes); at most CFS_SHARED_MAX_MS.
 */
#define CFS_SHARED_MAX_MS	60000

/*
 * A request's caller's credentials, in force until revert_creds(*@old)
 * (cfs_srv.c's cfs_srv_revert()).
 */
#define CFS_SRV_CREDS(req, old) ({					\
	struct ssi_creds srv_creds_;					\
	struct cred *srv_new_;						\
	int srv_ret_ = 0;						\
									\
	SSI_CREDS_FROM_REQ(&srv_creds_, (req));				\
	srv_new_ = ssi_cred_build(&srv_creds_);				\
	if (IS_ERR(srv_new_)) {						\
		srv_ret_ = PTR_ERR(srv_new_);				\
	} else {							\
		*(old) = override_creds(srv_new_);			\
		put_cred(srv_new_);	/* override_creds() took one */	\
	}								\
	srv_ret_;							\
})

/* What a reply brought may be kept while this stamp is current. */
struct cfs_stamp {
	unsigned long gen;
	u64 epoch;
};

static inline struct cfs_inode *CFS_I(struct inode *inode)
{
	return container_of(inode, struct cfs_inode, vfs_inode);
}

static inline struct cfs_sb_info *CFS_SB(struct super_block *sb)
{
	return sb->s_fs_info;
}

/*
 * A request for a call about @inode: zeroed, the caller's credentials,
 * the inode's export and handle.  kvfree() it (an xattr request is 64
 * KiB).  -EPERM: a caller in more groups than a request carries is
 * refused, never sent with fewer.
 */
#define CFS_NEW_REQ(req, ino) ({					\
	typeof(req) *new_reqp_ = &(req);				\
	struct ssi_creds new_creds_;					\
	struct inode *new_ino_ = (ino);					\
	int new_ret_ = -ENOMEM;						\
									\
	*new_reqp_ = kvzalloc(sizeof(**new_reqp_), GFP_KERNEL);		\
	if (*new_reqp_ && ssi_creds_current(&new_creds_)) {		\
		kvfree(*new_reqp_);					\
		*new_reqp_ = NULL;					\
		new_ret_ = -EPERM;					\
	} else if (*new_reqp_) {					\
		SSI_CREDS_TO_REQ(*new_reqp_, &new_creds_);		\
		(*new_reqp_)->export = CFS_SB(new_ino_->i_sb)->export;	\
		CFS_FH_TO_REQ(*new_reqp_, &CFS_I(new_ino_)->fh);	\
		new_ret_ = 0;						\
	}								\
	new_ret_;							\
})

static inline bool cfs_stamp_current(struct inode *inode,
				     const struct cfs_stamp *st)
{
	return READ_ONCE(CFS_I(inode)->dir_gen) == st->gen &&
	       READ_ONCE(CFS_SB(inode->i_sb)->tok_epoch) == st->epoch;
}

/* The server's token on @inode is held: what it keeps of it is valid. */
static inline bool cfs_tok_valid(struct inode *inode)
{
	u64 tok = READ_ONCE(CFS_I(inode)->tok);

	return tok && tok == READ_ONCE(CFS_SB(inode->i_sb)->tok_epoch);
}

/* What a client's open carries to the server (cfs_srv_open()). */
#define CFS_OPEN_FLAGS	(O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | \
			 __O_SYNC | O_DIRECT | O_NOATIME | O_LARGEFILE)

/* cfs_main.c */
extern bool cfs_cache;
extern unsigned int cfs_shared_ms;
extern atomic64_t cfs_calls, cfs_revokes_sent, cfs_revokes_taken;
extern atomic64_t cfs_recalls_sent, cfs_recalls_taken, cfs_writes_kept;
int cfs_errno(int err);

/* cfs_super.c: the file system type, its super block and inodes */
extern struct file_system_type cfs_fs_type;
int cfs_inode_cache_init(void);
void cfs_inode_cache_exit(void);
struct inode *cfs_iget(struct super_block *sb, const struct cfs_fh *fh,
		       const struct cfs_attr *attr);
void cfs_inode_update(struct inode *inode, const struct cfs_attr *attr);
void cfs_inode_set_size(struct inode *inode, loff_t size);
struct inode *cfs_ilookup(struct super_block *sb, u64 ino,
			  const struct cfs_fh *fh);
int cfs_remount(struct super_block *sb);

/* cfs_inode.c: inode and dentry operations */
extern const struct inode_operations cfs_dir_iops;
extern const struct inode_operations cfs_file_iops;
extern const struct inode_operations cfs_symlink_iops;
extern const struct dentry_operations cfs_dops;
int cfs_refresh_attr(struct inode *inode, bool exact_size);

/* Fetches @inode's attributes from the server (cfs_inode_update()). */
static inline int cfs_refresh(struct inode *inode)
{
	return cfs_refresh_attr(inode, false);
}

/* cfs_file.c: file operations */
extern const struct file_operations cfs_file_fops;
extern const struct file_operations cfs_dir_fops;

/* What the server's open of a FIFO found: its writers, writer opens ever. */
struct cfs_fifo_ends {
	u32 writers;
	u32 w_counter;
};

struct file *cfs_open_backing(struct inode *inode, unsigned int flags,
			      struct cfs_fifo_ends *ends);

/* cfs_fifo.c: FIFOs, the server's pipe through rfile */
extern const struct file_operations cfs_fifo_fops;

/* cfs_data.c: the page cache of mappings and reads */
#define CFS_RA_PAGES	(SZ_1M / PAGE_SIZE)	/* the readahead window's */
extern const struct address_space_operations cfs_file_aops;
int cfs_mmap(struct file *file, struct vm_area_struct *vma);
void cfs_data_release(struct inode *inode, struct file *file);
int cfs_data_flush(struct inode *inode, loff_t start, loff_t end);
void cfs_data_drop(struct inode *inode, loff_t start, loff_t end);
int cfs_data_recalled(struct inode *inode, u64 seq);
bool cfs_data_size_ahead(struct inode *inode);
bool cfs_data_excl(struct inode *inode);
ssize_t cfs_data_write(struct kiocb *iocb, struct iov_iter *from);
void cfs_data_forget(struct inode *inode);

/* cfs_xattr.c: extended attributes */
extern const struct xattr_handler *cfs_xattr_handlers[];
ssize_t cfs_listxattr(struct dentry *dentry, char *buffer, size_t size);
struct posix_acl *cfs_get_acl(struct inode *inode, int type, bool rcu);
int cfs_set_acl(struct user_namespace *ns, struct inode *inode,
		struct posix_acl *acl, int type);
void cfs_acl_forget(struct inode *inode);
void cfs_xattr_forget(struct inode *inode);

/* cfs_srv.c: the serving side */
struct rfile_io_hooks;
extern const struct rfile_io_hooks cfs_srv_io_hooks;
void cfs_srv_exit(void);
int cfs_srv_fh(struct dentry *dentry, struct cfs_fh *fh);
struct bio_vec *cfs_pages_iter(struct iov_iter *iter, unsigned int dir,
			       struct page *const *pages, unsigned int nr,
			       size_t count, gfp_t gfp);
ssize_t cfs_srv_read_kept(struct file *file, unsigned int from, loff_t pos,
			  struct iov_iter *to);
int cfs_srv_make_writable(struct file *file, unsigned int from, bool writes,
			  u64 *seq, s64 *size);
ssize_t cfs_srv_write_back(struct file *file, unsigned int node, loff_t pos,
			   struct iov_iter *from);
int cfs_srv_fallocate_file(struct file *file, unsigned int from, int mode,
			   loff_t offset, loff_t len);
int cfs_srv_fifo_ends(struct file *file, u32 *writers, u32 *w_counter);
void cfs_srv_nodedown(unsigned int node);
ssize_t cfs_srv_exports_show(char *buf);

/* cfs_cmount.c: the table of clusterwide mounts */
struct kobject;
int cfs_cmount_init(struct kobject *parent);
void cfs_cmount_exit(void);
void cfs_cmount_plain(const char *path, bool gone);

/* cfs_token.c: tokens, the server's and the client's side */
int cfs_tok_init(void);
void cfs_tok_exit(void);
u64 cfs_tok_grant(struct inode *inode, const struct cfs_fh *fh,
		  unsigned int node);
void cfs_tok_install(struct inode *inode, u64 seq);
bool cfs_tok_stamp(struct inode *inode, u64 seq, struct cfs_stamp *st);
void cfs_tok_drop(struct inode *inode);
void cfs_tok_sb_add(struct super_block *sb);
void cfs_tok_sb_del(struct super_block *sb);
unsigned int cfs_tok_count(void);

/*
 * What a data op of a node does with the server's file (cfs_data_begin()):
 * reads it (read(2), or rfile's read for a client), writes, truncates or
 * fallocates it, reads pages the node keeps, lets the node keep dirty
 * pages (of its mappings; or of its write(2)s too, which run its size and
 * times ahead of the disk's), or writes dirty pages back.
 */
enum cfs_data_use {
	CFS_DATA_READ,
	CFS_DATA_WRITE,
	CFS_DATA_CACHE,
	CFS_DATA_EXCL,
	CFS_DATA_EXCL_AHEAD,
	CFS_DATA_WB,
};

int cfs_data_begin(struct dentry *dentry, unsigned int from,
		   enum cfs_data_use use, u64 *seq);
void cfs_data_end(struct dentry *dentry, enum cfs_data_use use);
void cfs_data_settle(struct dentry *dentry, unsigned int from);
int cfs_data_open(struct dentry *dentry);
void cfs_data_close(struct dentry *dentry);

#endif /* _SSI_CFS_INTERNAL_H */
