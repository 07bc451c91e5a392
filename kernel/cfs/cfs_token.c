// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS tokens: what lets a client keep a file's attributes, and a
 * directory's entries, without asking the server each time (the protocol
 * is at the top of cfs_main.c).
 *
 * Server.  A token is an fsnotify mark of CFS's group on the server's
 * inode, with the set of client nodes holding it.  Any change to the
 * inode — made through CFS, by rfile's I/O for a client, or by the
 * server's own processes — raises an fsnotify event in the changer's
 * context once the change is visible; the handler takes the holders off
 * the token and calls revoke on each before it returns, so the change's
 * system call returns only after every holder has dropped what it kept.
 * A token nobody holds any more goes.
 *
 * Client.  A reply's token is the server's sequence number when it
 * registered the caller, taken before it read the attributes; a revoke
 * carries the number after the change.  A client keeps a reply's
 * attributes as valid only if no revoke from that server with a higher
 * number has come in the meantime (it may have been for this file and
 * have overtaken the reply), and a revoke drops the file's validity and
 * makes its directory's dentries be looked up again.  A server going
 * down drops every token of its mounts.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/delay.h>
#include <linux/fsnotify_backend.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "cfs_internal.h"
#include "clms.h"

/* Events that change what a token covers: attributes, data, entries. */
#define CFS_TOK_EVENTS	(FS_MODIFY | FS_ATTRIB | FS_CREATE | FS_DELETE | \
			 FS_MOVED_FROM | FS_MOVED_TO | FS_DELETE_SELF | \
			 FS_MOVE_SELF)
/* Tokens a server keeps at most (each pins its inode); past it, none. */
#define CFS_TOK_MAX	65536
/* Tries to replace a token that is going (its mark not yet detached). */
#define CFS_TOK_TRIES	100

/* ---- server ---- */

struct cfs_tok {
	struct fsnotify_mark mark;
	struct list_head link;		/* cfs_toks; the link owns a reference */
	u64 holders;			/* BIT(node) of each client holding it */
	u64 ino;
	struct cfs_fh fh;
	/* data (cfs_data.c), under cfs_tok_lock */
	u64 readers;			/* nodes keeping clean pages */
	unsigned int writer;		/* the node keeping dirty ones, or 0 */
	bool writer_ahead;		/* of its write(2)s: size, times ahead */
	u64 recalling;			/* nodes being recalled (their writeback) */
	bool busy;			/* a recall is under way */
	unsigned int reads, writes;	/* data ops running */
	unsigned int excl_wanted;	/* CFS_DATA_EXCL waiting for them */
	unsigned int opens;		/* open files of clients (cfs_srv_open()) */
};

static struct fsnotify_group *cfs_tok_group;
/* cfs_toks, every token's holders and link, and cfs_last_revoke[] */
static DEFINE_SPINLOCK(cfs_tok_lock);
static LIST_HEAD(cfs_toks);
static unsigned int cfs_nr_toks;
static atomic64_t cfs_tok_seq = ATOMIC64_INIT(1);
/* A token's data state changed: busy cleared, an op ended. */
static DECLARE_WAIT_QUEUE_HEAD(cfs_data_wq);

static struct cfs_tok *cfs_tok_of(struct fsnotify_mark *mark)
{
	return container_of(mark, struct cfs_tok, mark);
}

/* Nobody holds @tok, keeps pages under it or reads or writes through it. */
static bool cfs_tok_unused(const struct cfs_tok *tok)
{
	lockdep_assert_held(&cfs_tok_lock);
	return !tok->holders && !tok->readers && !tok->writer &&
	       !tok->recalling && !tok->busy && !tok->reads && !tok->writes &&
	       !tok->excl_wanted && !tok->opens;
}

/*
 * Take @tok off cfs_toks (if @unheld, only when nobody holds it): true if
 * this call did, and so owns the reference the link had.
 */
static bool cfs_tok_unlink(struct cfs_tok *tok, bool unheld)
{
	bool unlinked = false;

	spin_lock(&cfs_tok_lock);
	if (!list_empty(&tok->link) && (!unheld || cfs_tok_unused(tok))) {
		list_del_init(&tok->link);
		cfs_nr_toks--;
		unlinked = true;
	}
	spin_unlock(&cfs_tok_lock);
	return unlinked;
}

/* Unlinked by the caller: detach it and drop the link's reference. */
static void cfs_tok_destroy(struct cfs_tok *tok)
{
	fsnotify_destroy_mark(&tok->mark, cfs_tok_group);
	fsnotify_put_mark(&tok->mark);
}

/*
 * Call @op (revoke or recall, both (seq, ino, fh)) on each node of @nodes
 * about @tok's file, with sequence @number, waiting for each answer: this
 * node's own mount of its export directly, others over ICS.  A node going
 * down drops what it held itself, so only a live one's failure is logged.
 */
#define CFS_TOK_TELL(op, tok, nodes, number, sent) do {			\
	struct cfs_tok *tell_tok_ = (tok);				\
	u64 tell_nodes_ = (nodes), tell_seq_ = (number);		\
	struct cfs_##op##_req *tell_req_;				\
	struct cfs_##op##_rep tell_rep_;				\
	unsigned int tell_node_;					\
	int tell_ret_;							\
									\
	tell_req_ = kzalloc(sizeof(*tell_req_), GFP_KERNEL);		\
	for (tell_node_ = 1; tell_node_ <= SSI_MAX_NODES; tell_node_++) { \
		if (!(tell_nodes_ & BIT_ULL(tell_node_)))		\
			continue;					\
		if (!tell_req_) {					\
			pr_warn_ratelimited("no memory for a " #op " of node %u\n", \
					    tell_node_);		\
			continue;					\
		}							\
		tell_req_->seq = tell_seq_;				\
		tell_req_->ino = tell_tok_->ino;			\
		CFS_FH_TO_REQ(tell_req_, &tell_tok_->fh);		\
		atomic64_inc(&(sent));					\
		tell_ret_ = tell_node_ == ssi_node_num() ?		\
			cfs_srv_##op(tell_node_, tell_req_, &tell_rep_) : \
			ics_cfs_##op(tell_node_, tell_req_, &tell_rep_,	\
				     CFS_TIMEOUT);			\
		if (tell_ret_ && clms_node_is_up(tell_node_))		\
			pr_warn_ratelimited("node %u: no answer to " #op " of inode %llu (%d)\n", \
					    tell_node_, tell_tok_->ino,	\
					    tell_ret_);			\
	}								\
	kfree(tell_req_);						\
} while (0)

/* Tell each node of @holders that @tok's file changed (sequence @seq). */
static void cfs_tok_revoke(struct cfs_tok *tok, u64 holders, u64 seq)
{
	CFS_TOK_TELL(revoke, tok, holders, seq, cfs_revokes_sent);
}

/* Tell each node of @nodes to write back and drop its pages of @tok. */
static void cfs_data_recall(struct cfs_tok *tok, u64 nodes, u64 seq)
{
	CFS_TOK_TELL(recall, tok, nodes, seq, cfs_recalls_sent);
}

static int cfs_tok_event(struct fsnotify_mark *mark, u32 mask,
			 struct inode *inode, struct inode *dir,
			 const struct qstr *name, u32 cookie)
{
	struct cfs_tok *tok = cfs_tok_of(mark);
	u64 holders, readers = 0, seq;

	spin_lock(&cfs_tok_lock);
	holders = tok->holders;
	tok->holders = 0;
	/*
	 * Data written outside CFS's data ops (by the server's own
	 * processes): pages kept elsewhere are stale.  A CFS write recalled
	 * them before it began; recalling from within it could recall the
	 * very node whose writeback this is, which waits for it.
	 */
	if ((mask & FS_MODIFY) && !tok->writes && !tok->busy) {
		readers = tok->readers;
		tok->readers = 0;
	}
	seq = atomic64_inc_return(&cfs_tok_seq);
	spin_unlock(&cfs_tok_lock);
	if (readers)
		cfs_data_recall(tok, readers, seq);
	if (holders)
		cfs_tok_revoke(tok, holders, seq);
	/* nobody took it again meanwhile: it goes */
	if (cfs_tok_unlink(tok, true))
		cfs_tok_destroy(tok);
	return 0;
}

/* The mark goes (ours, or its inode's): whoever unlinks puts the link's. */
static void cfs_tok_freeing(struct fsnotify_mark *mark,
			    struct fsnotify_group *group)
{
	if (cfs_tok_unlink(cfs_tok_of(mark), false))
		fsnotify_put_mark(mark);
}

static void cfs_tok_free(struct fsnotify_mark *mark)
{
	kfree(cfs_tok_of(mark));
}

static const struct fsnotify_ops cfs_tok_ops = {
	.handle_inode_event = cfs_tok_event,
	.freeing_mark = cfs_tok_freeing,
	.free_mark = cfs_tok_free,
};

/* Add @node to the holders of @tok unless it is going: false then. */
static bool cfs_tok_hold(struct cfs_tok *tok, unsigned int node, u64 *seq)
{
	bool held = false;

	spin_lock(&cfs_tok_lock);
	if (!list_empty(&tok->link)) {
		tok->holders |= BIT_ULL(node);
		*seq = atomic64_read(&cfs_tok_seq);
		held = true;
	}
	spin_unlock(&cfs_tok_lock);
	return held;
}

/* A new token on @inode held by @holders; -EEXIST when another came first. */
static int cfs_tok_new(struct inode *inode, const struct cfs_fh *fh,
		       u64 holders, u64 *seq)
{
	struct cfs_tok *tok = kzalloc(sizeof(*tok), GFP_KERNEL);
	int ret;

	if (!tok)
		return -ENOMEM;
	fsnotify_init_mark(&tok->mark, cfs_tok_group);
	tok->mark.mask = CFS_TOK_EVENTS;
	tok->ino = inode->i_ino;
	tok->fh = *fh;
	tok->holders = holders;
	spin_lock(&cfs_tok_lock);
	if (cfs_nr_toks >= CFS_TOK_MAX) {
		spin_unlock(&cfs_tok_lock);
		fsnotify_put_mark(&tok->mark);
		return -ENOSPC;
	}
	list_add(&tok->link, &cfs_toks);	/* takes the initial reference */
	cfs_nr_toks++;
	*seq = atomic64_read(&cfs_tok_seq);
	spin_unlock(&cfs_tok_lock);
	ret = fsnotify_add_inode_mark(&tok->mark, inode, 0);
	if (ret && cfs_tok_unlink(tok, false))
		fsnotify_put_mark(&tok->mark);
	return ret;
}

/*
 * Register client @node as a holder of the token of @inode (named @fh on
 * the wire), before the caller reads what the token covers.  Returns the
 * sequence number for the reply's token field, or 0: no token (the
 * client then keeps nothing).
 */
u64 cfs_tok_grant(struct inode *inode, const struct cfs_fh *fh,
		  unsigned int node)
{
	struct fsnotify_mark *mark;
	unsigned int tries;
	u64 seq = 0;
	int ret;

	if (!node || node > SSI_MAX_NODES || !cfs_tok_group)
		return 0;
	for (tries = 0; tries < CFS_TOK_TRIES; tries++) {
		mark = fsnotify_find_mark(&inode->i_fsnotify_marks,
					  cfs_tok_group);
		if (mark) {
			bool held = cfs_tok_hold(cfs_tok_of(mark), node, &seq);

			fsnotify_put_mark(mark);
			if (held)
				return seq;
			cond_resched();	/* going: its event handler detaches it */
			continue;
		}
		ret = cfs_tok_new(inode, fh, BIT_ULL(node), &seq);
		if (!ret)
			return seq;
		if (ret != -EEXIST)
			return 0;
	}
	return 0;
}

/* ---- server: data ---- */

/*
 * The token of @dentry's inode, made if it has none (held by nobody),
 * with a reference of its mark: cfs_tok_put().
 */
static struct cfs_tok *cfs_tok_get(struct dentry *dentry)
{
	struct inode *inode = d_inode(dentry);
	struct fsnotify_mark *mark;
	struct cfs_fh fh;
	unsigned int tries;
	u64 seq;
	int ret;

	if (!cfs_tok_group)
		return ERR_PTR(-ENODEV);
	for (tries = 0; tries < CFS_TOK_TRIES; tries++) {
		mark = fsnotify_find_mark(&inode->i_fsnotify_marks,
					  cfs_tok_group);
		if (mark) {
			struct cfs_tok *tok = cfs_tok_of(mark);
			bool live;

			spin_lock(&cfs_tok_lock);
			live = !list_empty(&tok->link);
			spin_unlock(&cfs_tok_lock);
			if (live)
				return tok;
			fsnotify_put_mark(mark);
			/* going: its destroyer detaches it from the inode */
			usleep_range(50, 100);
			continue;
		}
		ret = cfs_srv_fh(dentry, &fh);
		if (!ret)
			ret = cfs_tok_new(inode, &fh, 0, &seq);
		if (ret && ret != -EEXIST)
			return ERR_PTR(ret);
	}
	return ERR_PTR(-EAGAIN);
}

/*
 * @tok (from cfs_tok_get()), or, if it went before the caller could count
 * on it, a new one; cfs_tok_lock is held on entry and on return (dropped
 * meanwhile to make the new one).  ERR_PTR if none can be had.
 */
static struct cfs_tok *cfs_tok_relive(struct cfs_tok *tok,
				      struct dentry *dentry)
	__must_hold(&cfs_tok_lock)
{
	while (list_empty(&tok->link)) {
		spin_unlock(&cfs_tok_lock);
		fsnotify_put_mark(&tok->mark);
		tok = cfs_tok_get(dentry);
		spin_lock(&cfs_tok_lock);
		if (IS_ERR(tok))
			break;
	}
	return tok;
}

/* Drop cfs_tok_get()'s reference; a token left unused goes. */
static void cfs_tok_put(struct cfs_tok *tok)
{
	if (cfs_tok_unlink(tok, true))
		cfs_tok_destroy(tok);
	fsnotify_put_mark(&tok->mark);
}

/* Nodes whose pages of @tok stand in the way of @use by @from. */
static u64 cfs_data_conflicts(const struct cfs_tok *tok, unsigned int from,
			      enum cfs_data_use use)
{
	u64 nodes = 0;

	if (tok->writer && tok->writer != from)
		nodes |= BIT_ULL(tok->writer);
	if (use == CFS_DATA_WRITE || use == CFS_DATA_EXCL)
		nodes |= tok->readers & ~BIT_ULL(from);
	return nodes;
}

/*
 * Must @use wait: a recall is under way, or ops run that it may not
 * overlap (pages read for keeping while a write runs would be stale, and
 * a node may keep dirty pages only while nobody reads or writes).
 */
static bool cfs_data_must_wait(const struct cfs_tok *tok,
			       enum cfs_data_use use)
{
	if (READ_ONCE(tok->busy))
		return true;
	if (use == CFS_DATA_EXCL)
		return READ_ONCE(tok->reads) || READ_ONCE(tok->writes);
	/* a node waiting to keep dirty pages goes first, or it may starve */
	if (READ_ONCE(tok->excl_wanted))
		return true;
	return use == CFS_DATA_CACHE && READ_ONCE(tok->writes);
}

/*
 * Pages read for keeping by a node being recalled go on without waiting:
 * a fault holds its pages locked while it reads them, and the recall's
 * invalidation waits for them (the recaller then looks again, finds the
 * node a reader again, and recalls it once more).
 */
static bool cfs_data_recalled_node(const struct cfs_tok *tok,
				   unsigned int from, enum cfs_data_use use)
{
	return use == CFS_DATA_CACHE &&
	       (READ_ONCE(tok->recalling) & BIT_ULL(from));
}

/*
 * Before @use of @dentry's file by node @from (this node for the server's
 * own mount): recall the pages of every node in the way, which write back
 * their dirty ones first, and wait for the ops @use may not overlap.
 * A node being recalled reads pages for keeping without waiting; a
 * writeback (CFS_DATA_WB) of the writer or of a node being recalled never
 * waits and recalls nobody.
 * Returns 1 for an op to end with cfs_data_end(), 0 when there is none to
 * end (CFS_DATA_EXCL: *@seq is the grant's sequence number), or an errno.
 */
int cfs_data_begin(struct dentry *dentry, unsigned int from,
		   enum cfs_data_use use, u64 *seq)
{
	bool ahead = use == CFS_DATA_EXCL_AHEAD;
	u64 victims, rseq, others = 0;
	struct cfs_tok *tok;
	bool recalled;

	if (!from || from > SSI_MAX_NODES)
		return -EINVAL;
	if (ahead)
		use = CFS_DATA_EXCL;
	tok = cfs_tok_get(dentry);
	if (IS_ERR(tok))
		return PTR_ERR(tok);
	if (use == CFS_DATA_WB) {
		/*
		 * The writer's pages, or a recalled node's: what others wait
		 * for.  From any other node (one whose recall timed out, or a
		 * peer that never was the writer) it is a plain write, which
		 * recalls the others' pages first.
		 */
		spin_lock(&cfs_tok_lock);
		tok = cfs_tok_relive(tok, dentry);
		if (IS_ERR(tok)) {
			spin_unlock(&cfs_tok_lock);
			return PTR_ERR(tok);
		}
		if (tok->writer == from || (tok->recalling & BIT_ULL(from))) {
			tok->writes++;
			spin_unlock(&cfs_tok_lock);
			cfs_tok_put(tok);
			return 1;
		}
		spin_unlock(&cfs_tok_lock);
		use = CFS_DATA_WRITE;
	}
	/*
	 * cfs_tok_lock is held from the end of a recall to the next look at
	 * the token: a node's read for keeping that slipped in between would
	 * make it a reader again, and one that keeps reading would starve us.
	 */
	spin_lock(&cfs_tok_lock);
	for (;;) {
		tok = cfs_tok_relive(tok, dentry);
		if (IS_ERR(tok)) {
			spin_unlock(&cfs_tok_lock);
			return PTR_ERR(tok);
		}
		recalled = cfs_data_recalled_node(tok, from, use);
		if (!recalled && cfs_data_must_wait(tok, use)) {
			if (use == CFS_DATA_EXCL)
				tok->excl_wanted++;
			spin_unlock(&cfs_tok_lock);
			wait_event(cfs_data_wq,
				   cfs_data_recalled_node(tok, from, use) ||
				   !cfs_data_must_wait(tok, use));
			spin_lock(&cfs_tok_lock);
			if (use == CFS_DATA_EXCL)
				tok->excl_wanted--;
			continue;
		}
		victims = recalled ? 0 : cfs_data_conflicts(tok, from, use);
		if (!victims)
			break;
		tok->busy = true;
		tok->readers &= ~victims;
		if (tok->writer && (victims & BIT_ULL(tok->writer)))
			tok->writer = 0;
		tok->recalling |= victims;
		rseq = atomic64_inc_return(&cfs_tok_seq);
		spin_unlock(&cfs_tok_lock);
		/* their writeback may be waiting already */
		wake_up_all(&cfs_data_wq);
		cfs_data_recall(tok, victims, rseq);
		spin_lock(&cfs_tok_lock);
		tok->recalling &= ~victims;
		tok->busy = false;
		/* the waiters look once we let go of the lock */
		wake_up_all(&cfs_data_wq);
	}
	switch (use) {
	case CFS_DATA_CACHE:
		if (tok->writer != from)
			tok->readers |= BIT_ULL(from);
		fallthrough;
	case CFS_DATA_READ:
		tok->reads++;
		break;
	case CFS_DATA_WRITE:
		tok->writes++;
		break;
	case CFS_DATA_EXCL:
		/* a new writer: the last one was recalled (a conflict) */
		if (tok->writer != from)
			tok->writer_ahead = false;
		tok->writer = from;
		tok->readers &= ~BIT_ULL(from);
		/*
		 * Its write(2)s run its size and times ahead of the disk's:
		 * other nodes' attributes go, and are given again only after
		 * a recall of the writer (cfs_data_settle()).  A mapping's
		 * stores change neither.
		 */
		if (ahead && !tok->writer_ahead) {
			tok->writer_ahead = true;
			others = tok->holders & ~BIT_ULL(from);
			tok->holders &= ~others;
		}
		*seq = others ? atomic64_inc_return(&cfs_tok_seq) :
			atomic64_read(&cfs_tok_seq);
		break;
	case CFS_DATA_EXCL_AHEAD:
	case CFS_DATA_WB:
		break;	/* not here */
	}
	spin_unlock(&cfs_tok_lock);
	if (others)
		cfs_tok_revoke(tok, others, *seq);
	cfs_tok_put(tok);
	return use == CFS_DATA_EXCL ? 0 : 1;
}

/*
 * Before the attributes of @dentry's file are read for node @from (a
 * reply that carries them, the caller registered as a holder first): a
 * writer of write(2)s other than @from writes its dirty pages back, so
 * that the size and times are what it wrote.  The writer is set before
 * the holders are revoked (above) and the holder registered before this
 * look: a reply either comes after the recall or has its token revoked.
 */
void cfs_data_settle(struct dentry *dentry, unsigned int from)
{
	struct fsnotify_mark *mark;
	struct cfs_tok *tok;
	bool writer;

	if (!cfs_tok_group || !d_is_reg(dentry))
		return;
	mark = fsnotify_find_mark(&d_inode(dentry)->i_fsnotify_marks,
				  cfs_tok_group);
	if (!mark)
		return;
	tok = cfs_tok_of(mark);
	spin_lock(&cfs_tok_lock);
	writer = tok->writer && tok->writer != from && tok->writer_ahead;
	spin_unlock(&cfs_tok_lock);
	fsnotify_put_mark(mark);
	if (writer && cfs_data_begin(dentry, from, CFS_DATA_READ, NULL) > 0)
		cfs_data_end(dentry, CFS_DATA_READ);
}

/*
 * A client opened @dentry's file (cfs_srv_open()): its token stays while
 * the open file does, so that reads and writes find it instead of making
 * and destroying one each (cfs_data_close() when the open file goes).
 */
int cfs_data_open(struct dentry *dentry)
{
	struct cfs_tok *tok = cfs_tok_get(dentry);

	if (IS_ERR(tok))
		return PTR_ERR(tok);
	spin_lock(&cfs_tok_lock);
	tok = cfs_tok_relive(tok, dentry);
	if (IS_ERR(tok)) {
		spin_unlock(&cfs_tok_lock);
		return PTR_ERR(tok);
	}
	tok->opens++;
	spin_unlock(&cfs_tok_lock);
	cfs_tok_put(tok);
	return 0;
}

void cfs_data_close(struct dentry *dentry)
{
	struct inode *inode = d_inode(dentry);
	struct fsnotify_mark *mark;
	struct cfs_tok *tok;

	mark = fsnotify_find_mark(&inode->i_fsnotify_marks, cfs_tok_group);
	if (WARN_ON_ONCE(!mark))
		return;
	tok = cfs_tok_of(mark);
	spin_lock(&cfs_tok_lock);
	tok->opens--;
	spin_unlock(&cfs_tok_lock);
	cfs_tok_put(tok);
}

/* A data op that cfs_data_begin() counted (it returned 1) is over. */
void cfs_data_end(struct dentry *dentry, enum cfs_data_use use)
{
	struct inode *inode = d_inode(dentry);
	struct fsnotify_mark *mark;
	struct cfs_tok *tok;

	mark = fsnotify_find_mark(&inode->i_fsnotify_marks, cfs_tok_group);
	if (WARN_ON_ONCE(!mark))
		return;
	tok = cfs_tok_of(mark);
	spin_lock(&cfs_tok_lock);
	if (use == CFS_DATA_WRITE || use == CFS_DATA_WB)
		tok->writes--;
	else
		tok->reads--;
	spin_unlock(&cfs_tok_lock);
	wake_up_all(&cfs_data_wq);
	cfs_tok_put(tok);
}

unsigned int cfs_tok_count(void)
{
	return READ_ONCE(cfs_nr_toks);
}

/* @node went down: it holds nothing any more. */
static void cfs_tok_node_gone(unsigned int node)
{
	struct cfs_tok *tok;

	spin_lock(&cfs_tok_lock);
	list_for_each_entry(tok, &cfs_toks, link) {
		tok->holders &= ~BIT_ULL(node);
		tok->readers &= ~BIT_ULL(node);
		if (tok->writer == node)
			tok->writer = 0;
	}
	spin_unlock(&cfs_tok_lock);
	wake_up_all(&cfs_data_wq);
}

/* ---- client ---- */

/* Per server: the highest revoke number heard from it. */
static u64 cfs_last_revoke[SSI_MAX_NODES + 1];
/* Every CFS super block of this node, for revokes and nodedown. */
static LIST_HEAD(cfs_sbs);
static DEFINE_MUTEX(cfs_sbs_lock);

void cfs_tok_sb_add(struct super_block *sb)
{
	mutex_lock(&cfs_sbs_lock);
	list_add(&CFS_SB(sb)->link, &cfs_sbs);
	mutex_unlock(&cfs_sbs_lock);
}

void cfs_tok_sb_del(struct super_block *sb)
{
	mutex_lock(&cfs_sbs_lock);
	list_del_init(&CFS_SB(sb)->link);
	mutex_unlock(&cfs_sbs_lock);
}

/*
 * @inode's attributes (and a directory's entries) just came in a reply
 * whose token is @seq: valid from now on unless a revoke may have
 * overtaken the reply.
 */
void cfs_tok_install(struct inode *inode, u64 seq)
{
	struct cfs_sb_info *sbi = CFS_SB(inode->i_sb);

	if (!seq || !cfs_cache)
		return;
	spin_lock(&cfs_tok_lock);
	if (seq >= cfs_last_revoke[sbi->server])
		WRITE_ONCE(CFS_I(inode)->tok, sbi->tok_epoch);
	spin_unlock(&cfs_tok_lock);
}

/*
 * A reply about @inode with token @seq brought something (an xattr) to
 * keep: its stamp in *@st, or false if a revoke may have overtaken it.
 */
bool cfs_tok_stamp(struct inode *inode, u64 seq, struct cfs_stamp *st)
{
	struct cfs_sb_info *sbi = CFS_SB(inode->i_sb);
	bool ok = false;

	if (!seq || !cfs_cache)
		return false;
	spin_lock(&cfs_tok_lock);
	if (seq >= cfs_last_revoke[sbi->server]) {
		st->gen = CFS_I(inode)->dir_gen;
		st->epoch = sbi->tok_epoch;
		ok = true;
	}
	spin_unlock(&cfs_tok_lock);
	return ok;
}

/* @inode's cached attributes are not valid any more. */
void cfs_tok_drop(struct inode *inode)
{
	struct cfs_inode *ci = CFS_I(inode);

	spin_lock(&cfs_tok_lock);
	WRITE_ONCE(ci->tok, 0);
	WRITE_ONCE(ci->dir_gen, ci->dir_gen + 1);
	spin_unlock(&cfs_tok_lock);
}

int cfs_srv_revoke(unsigned int from, const struct cfs_revoke_req *req,
		   struct cfs_revoke_rep *rep)
{
	struct cfs_sb_info *sbi;
	struct cfs_fh fh;

	if (!from || from > SSI_MAX_NODES || !req->fh_len ||
	    req->fh_len > CFS_FH_MAX)
		return -EINVAL;
	CFS_FH_FROM_REP(&fh, req);
	atomic64_inc(&cfs_revokes_taken);
	spin_lock(&cfs_tok_lock);
	if (req->seq > cfs_last_revoke[from])
		cfs_last_revoke[from] = req->seq;
	spin_unlock(&cfs_tok_lock);
	mutex_lock(&cfs_sbs_lock);
	list_for_each_entry(sbi, &cfs_sbs, link) {
		struct inode *inode;

		if (sbi->server != from)
			continue;
		inode = cfs_ilookup(sbi->sb, req->ino, &fh);
		if (inode) {
			cfs_tok_drop(inode);
			cfs_acl_forget(inode);
			iput(inode);
		}
	}
	mutex_unlock(&cfs_sbs_lock);
	return 0;
}

/*
 * The server's recall of a file's pages (cfs_data.c).  The inodes are
 * found under cfs_sbs_lock and recalled after it: their writeback calls
 * the server, whose changes revoke tokens here (cfs_srv_revoke()).
 */
#define CFS_RECALL_MOUNTS	8

int cfs_srv_recall(unsigned int from, const struct cfs_recall_req *req,
		   struct cfs_recall_rep *rep)
{
	struct inode *inodes[CFS_RECALL_MOUNTS];
	unsigned int n = 0, i;
	struct cfs_sb_info *sbi;
	struct cfs_fh fh;
	int ret = 0, err;

	if (!from || from > SSI_MAX_NODES || !req->fh_len ||
	    req->fh_len > CFS_FH_MAX)
		return -EINVAL;
	CFS_FH_FROM_REP(&fh, req);
	mutex_lock(&cfs_sbs_lock);
	list_for_each_entry(sbi, &cfs_sbs, link) {
		if (sbi->server != from || n == CFS_RECALL_MOUNTS)
			continue;
		inodes[n] = cfs_ilookup(sbi->sb, req->ino, &fh);
		if (inodes[n])
			n++;
	}
	mutex_unlock(&cfs_sbs_lock);
	for (i = 0; i < n; i++) {
		err = cfs_data_recalled(inodes[i], req->seq);
		if (!ret)
			ret = err;
		iput(inodes[i]);
	}
	return ret;
}

/* Every inode of @sb: its kept pages are of a server that went down. */
static void cfs_data_forget_sb(struct super_block *sb)
{
	struct inode *inode, *prev = NULL;

	spin_lock(&sb->s_inode_list_lock);
	list_for_each_entry(inode, &sb->s_inodes, i_sb_list) {
		spin_lock(&inode->i_lock);
		if ((inode->i_state & (I_FREEING | I_WILL_FREE | I_NEW)) ||
		    !S_ISREG(inode->i_mode)) {
			spin_unlock(&inode->i_lock);
			continue;
		}
		__iget(inode);
		spin_unlock(&inode->i_lock);
		spin_unlock(&sb->s_inode_list_lock);
		cfs_data_forget(inode);
		iput(prev);
		prev = inode;
		cond_resched();
		spin_lock(&sb->s_inode_list_lock);
	}
	spin_unlock(&sb->s_inode_list_lock);
	iput(prev);
}

/* @node went down: as a server, its tokens are gone; as a client, its own. */
static void cfs_tok_nodedown(unsigned int node, u64 transition)
{
	struct cfs_sb_info *sbi;

	if (!node || node > SSI_MAX_NODES)
		return;
	cfs_tok_node_gone(node);
	cfs_srv_nodedown(node);
	mutex_lock(&cfs_sbs_lock);
	spin_lock(&cfs_tok_lock);
	/* a new incarnation numbers its revokes from 1 again */
	cfs_last_revoke[node] = 0;
	list_for_each_entry(sbi, &cfs_sbs, link) {
		if (sbi->server == node)
			sbi->tok_epoch++;
	}
	spin_unlock(&cfs_tok_lock);
	list_for_each_entry(sbi, &cfs_sbs, link) {
		if (sbi->server == node)
			cfs_data_forget_sb(sbi->sb);
	}
	mutex_unlock(&cfs_sbs_lock);
}

static struct clms_notifier cfs_tok_notifier = {
	.nodedown = cfs_tok_nodedown,
};

int cfs_tok_init(void)
{
	int ret;

	cfs_tok_group = fsnotify_alloc_group(&cfs_tok_ops, 0);
	if (IS_ERR(cfs_tok_group)) {
		ret = PTR_ERR(cfs_tok_group);
		cfs_tok_group = NULL;
		return ret;
	}
	ret = clms_register_notifier(&cfs_tok_notifier);
	if (ret) {
		fsnotify_put_group(cfs_tok_group);
		cfs_tok_group = NULL;
	}
	return ret;
}

void cfs_tok_exit(void)
{
	struct cfs_tok *tok;

	clms_unregister_notifier(&cfs_tok_notifier);
	for (;;) {
		spin_lock(&cfs_tok_lock);
		tok = list_first_entry_or_null(&cfs_toks, struct cfs_tok, link);
		if (tok) {
			list_del_init(&tok->link);
			cfs_nr_toks--;
		}
		spin_unlock(&cfs_tok_lock);
		if (!tok)
			break;
		cfs_tok_destroy(tok);
	}
	fsnotify_wait_marks_destroyed();
	fsnotify_put_group(cfs_tok_group);
	cfs_tok_group = NULL;
}
