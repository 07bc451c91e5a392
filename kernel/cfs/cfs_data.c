// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the client's page cache: what mmap(2) of a CFS file maps, read(2)
 * reads and write(2) writes (cfs_file.c says which ones).  Pages are kept
 * under the server's data tokens (the protocol is at the top of
 * cfs_main.c, the server's side in cfs_token.c).
 *
 * A page is read with `readpages`, which registers this node as keeping
 * pages of the file before the server reads them, so every later write
 * by another node recalls them.  The first store to a page of a shared
 * writable mapping, and a write(2) kept, ask `writable` (one node at a
 * time may keep dirty pages, and no other node keeps any); dirty pages
 * are written back through an open file of the inode's own (wb_file).  A
 * `recall` unmaps every page, writes the dirty ones back and drops them
 * all, before it is answered.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/bvec.h>
#include <linux/completion.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/uio.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>
#include <linux/writeback.h>

#include "cfs_internal.h"
#include "rfile.h"

/* wb_file of every inode: set and dropped under it */
static DEFINE_MUTEX(cfs_wb_lock);

/*
 * The bytes at @pos of the server's file into @to (as many as it holds,
 * fewer at the end of the file), read through @backing (the file's open
 * file there: a proxy, or the server file system's own file on the
 * server's own mount) for keeping.
 */
static ssize_t cfs_data_read(struct file *backing, loff_t pos,
			     struct iov_iter *to)
{
	size_t count = iov_iter_count(to), n;
	struct cfs_readpages_req req = {};
	struct cfs_readpages_rep *rep;
	struct rfile_handle h;
	unsigned int i;
	ssize_t ret;

	if (!rfile_is_proxy(backing, &h))
		return cfs_srv_read_kept(backing, ssi_node_num(), pos, to);
	rep = kmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return -ENOMEM;
	req.id = h.id;
	req.pos = pos;
	req.count = count;
	ret = CFS_OP(h.node, readpages, &req, rep);
	if (ret)
		goto out;
	ret = rep->len;
	if (rep->len > count || rep->len > rep->data_count * PAGE_SIZE) {
		pr_warn_ratelimited("readpages of %zu bytes: %u bytes in %u pages came back\n",
				    count, rep->len, rep->data_count);
		ret = -EIO;
	}
	/* only the pages @len covers: a reply may carry more than it needs */
	for (i = 0; ret > 0 && i * PAGE_SIZE < rep->len; i++) {
		n = min_t(size_t, rep->len - i * PAGE_SIZE, PAGE_SIZE);
		if (copy_page_to_iter(rep->data[i], 0, n, to) != n)
			ret = -EFAULT;
	}
	ics_put_pages(rep->data, rep->data_count);
out:
	kfree(rep);
	return ret;
}

/*
 * A recall of @inode's pages is being answered here: pages read now could
 * outlive it unregistered (its invalidation may have passed them), and
 * each such read registers this node again, so that the recaller finds it
 * a reader once more and a reader that keeps reading starves it.  Reads
 * for keeping wait for the recall to end, without the page's lock, which
 * the recall's invalidation may be waiting for.
 */
static bool cfs_data_recall_running(struct inode *inode)
{
	return atomic_read(&CFS_I(inode)->recalls) > 0;
}

/*
 * @folio read through @backing; unlocked on return.  @may_wait: a page
 * not for a kept write, which waits for a recall being answered.
 */
static int cfs_read_folio_from(struct file *backing, struct folio *folio,
			       bool may_wait)
{
	struct inode *inode = folio->mapping->host;
	struct page *page = &folio->page;
	struct iov_iter iter;
	struct bio_vec bvec;
	ssize_t n;

	if (!backing) {
		folio_unlock(folio);
		return -EBADF;
	}
	if (may_wait && cfs_data_recall_running(inode)) {
		folio_unlock(folio);
		wait_var_event(&CFS_I(inode)->recalls,
			       !cfs_data_recall_running(inode));
		return AOP_TRUNCATED_PAGE;	/* looked up again */
	}
	bvec_set_page(&bvec, page, PAGE_SIZE, 0);
	iov_iter_bvec(&iter, ITER_DEST, &bvec, 1, PAGE_SIZE);
	n = cfs_data_read(backing, page_offset(page), &iter);
	if (n >= 0) {
		zero_user_segment(page, n, PAGE_SIZE);
		flush_dcache_page(page);
		SetPageUptodate(page);
	}
	folio_unlock(folio);
	if (n < 0)
		pr_warn_ratelimited("inode %lu: a page could not be read (%zd)\n",
				    inode->i_ino, n);
	return n < 0 ? n : 0;
}

static int cfs_read_folio(struct file *file, struct folio *folio)
{
	return cfs_read_folio_from(file ? file->private_data :
				   CFS_I(folio->mapping->host)->wb_file,
				   folio, true);
}

/* Pages read by one call: what a readpages reply carries. */
#define CFS_RA_BATCH	64
#define CFS_RA_CALLS	4
/* Pages written back by one call: what a writepages call carries. */
#define CFS_WB_BATCH	64

/*
 * One readpages call of a readahead, made by a worker so that the calls
 * of one readahead travel at once (one after another, a stream kept one
 * node's vCPU busy at a time).  Its pages are read into straight from the
 * reply's (on the server's own mount, from the server's file).
 */
struct cfs_ra_call {
	struct work_struct work;
	struct completion done;
	struct file *backing;
	loff_t pos;
	unsigned int nr;
	struct bio_vec bvec[CFS_RA_BATCH];
	ssize_t n;
};

static void cfs_ra_work(struct work_struct *work)
{
	struct cfs_ra_call *c = container_of(work, struct cfs_ra_call, work);
	struct iov_iter iter;

	BUILD_BUG_ON(sizeof_field(struct cfs_readpages_rep, data) <
		     CFS_RA_BATCH * sizeof(struct page *));
	iov_iter_bvec(&iter, ITER_DEST, c->bvec, c->nr, c->nr * PAGE_SIZE);
	c->n = cfs_data_read(c->backing, c->pos, &iter);
	complete(&c->done);
}

static void cfs_ra_send(struct cfs_ra_call *c)
{
	INIT_WORK(&c->work, cfs_ra_work);
	init_completion(&c->done);
	queue_work(system_unbound_wq, &c->work);
}

/*
 * @c answered: its pages up to date (zeros past what was read) and
 * unlocked; on an error only unlocked.
 */
static void cfs_ra_reap(struct cfs_ra_call *c)
{
	struct page *page;
	size_t have;
	unsigned int i;

	wait_for_completion(&c->done);
	for (i = 0; i < c->nr; i++) {
		page = c->bvec[i].bv_page;
		if (c->n >= 0) {
			have = clamp_t(ssize_t, c->n - (ssize_t)i * PAGE_SIZE,
				       0, PAGE_SIZE);
			zero_user_segment(page, have, PAGE_SIZE);
			flush_dcache_page(page);
			SetPageUptodate(page);
		}
		unlock_page(page);
	}
	c->nr = 0;
}

/*
 * Readahead (a mapping's faults, and read(2), read around them): the
 * run of pages in calls of up to CFS_RA_BATCH pages, up to CFS_RA_CALLS
 * of them in flight at once.  A page left out (no memory, a recall being
 * answered, an error) is read again by ->read_folio when it is needed.
 */
static void cfs_readahead(struct readahead_control *rac)
{
	struct inode *inode = rac->mapping->host;
	struct cfs_ra_call *calls, *c = NULL;
	unsigned int i, nr = 0;
	struct file *backing;
	struct folio *folio;

	backing = rac->file ? rac->file->private_data : CFS_I(inode)->wb_file;
	calls = kcalloc(CFS_RA_CALLS, sizeof(*calls), GFP_KERNEL);
	while ((folio = readahead_folio(rac))) {
		if (!calls || !backing || folio_test_large(folio) ||
		    cfs_data_recall_running(inode)) {
			folio_unlock(folio);
			continue;
		}
		if (!c || c->nr == CFS_RA_BATCH) {
			if (c)
				cfs_ra_send(c);
			if (nr == CFS_RA_CALLS) {
				for (i = 0; i < nr; i++)
					cfs_ra_reap(&calls[i]);
				nr = 0;
			}
			c = &calls[nr++];
			c->backing = backing;
			c->pos = folio_pos(folio);
		}
		bvec_set_page(&c->bvec[c->nr++], &folio->page, PAGE_SIZE, 0);
	}
	if (c && c->nr)
		cfs_ra_send(c);
	for (i = 0; i < nr; i++)
		if (calls[i].nr)
			cfs_ra_reap(&calls[i]);
	kfree(calls);
}

/*
 * Write @nr pages of @inode from @pages[0] on (contiguous) back to the
 * server: the bytes below the file's end, in one `writepages` call that
 * sends the pages themselves (on the server's own mount, a write of its
 * file here, from them).  A writeback never waits for or recalls other
 * nodes: its pages were dirtied by the writer.
 */
static int cfs_data_write_back(struct inode *inode, struct page **pages,
			       unsigned int nr)
{
	struct file *wb = CFS_I(inode)->wb_file;
	loff_t size = i_size_read(inode), pos = page_offset(pages[0]);
	struct cfs_writepages_req *req;
	struct cfs_writepages_rep rep;
	struct rfile_handle h;
	struct iov_iter iter;
	struct bio_vec *bvec;
	size_t len;
	ssize_t ret;

	if (!wb)
		return -EIO;
	BUILD_BUG_ON(ARRAY_SIZE(req->data) < CFS_WB_BATCH);
	if (WARN_ON_ONCE(nr > CFS_WB_BATCH))
		return -EINVAL;
	if (pos >= size)
		return 0;
	len = min_t(loff_t, (loff_t)nr * PAGE_SIZE, size - pos);
	nr = DIV_ROUND_UP(len, PAGE_SIZE);
	if (!rfile_is_proxy(wb, &h)) {
		bvec = cfs_pages_iter(&iter, ITER_SOURCE, pages, nr, len,
				      GFP_NOFS);
		if (!bvec)
			return -ENOMEM;
		ret = cfs_srv_write_back(wb, ssi_node_num(), pos, &iter);
		kfree(bvec);
	} else {
		req = kmalloc(sizeof(*req), GFP_NOFS);
		if (!req)
			return -ENOMEM;
		req->id = h.id;
		req->pos = pos;
		req->len = len;
		req->data_count = nr;
		memcpy(req->data, pages, nr * sizeof(*pages));
		ret = CFS_OP(h.node, writepages, req, &rep);
		if (!ret)
			ret = rep.written;
		kfree(req);
	}
	if (ret != len)
		pr_warn_ratelimited("inode %lu: writeback at %lld: %zd of %zu bytes\n",
				    inode->i_ino, pos, ret, len);
	if (ret >= 0 && ret != len)
		ret = -EIO;
	return ret < 0 ? cfs_errno(ret) : 0;
}

/*
 * writepages calls of one writeback in flight at once.  With 64 KiB
 * calls, 8 against 4 gave a sequential fio write 40.6 against 36.6 MiB/s;
 * with 256 KiB calls, 4 and 8 are alike (dd 36.0 and 36.7 MiB/s, fio
 * 48.3 and 43.8, NFS 35.7 and 34.8; 2026-12-06), and 4 pins less.
 */
#define CFS_WB_CALLS	4

/*
 * Writeback in runs: contiguous dirty pages, up to CFS_WB_BATCH, go in
 * one call (each page under writeback, unlocked, until it is done), made
 * by a worker, so that up to CFS_WB_CALLS of them travel at once (one
 * after another, a stream of writes waited a round trip per call).
 */
struct cfs_wb_call {
	struct work_struct work;
	struct completion done;
	struct inode *inode;
	struct page *pages[CFS_WB_BATCH];
	unsigned int nr;
	bool sent;
	int err;
};

struct cfs_wb_batch {
	struct cfs_wb_call calls[CFS_WB_CALLS];
	unsigned int fill;	/* the call pages are added to */
	int err;
};

static void cfs_wb_work(struct work_struct *work)
{
	struct cfs_wb_call *c = container_of(work, struct cfs_wb_call, work);
	unsigned int i;

	c->err = cfs_data_write_back(c->inode, c->pages, c->nr);
	if (c->err)
		mapping_set_error(c->inode->i_mapping, c->err);
	for (i = 0; i < c->nr; i++)
		end_page_writeback(c->pages[i]);
	complete(&c->done);
}

/* @c answered, if it was sent: its error kept, and it may be filled again. */
static void cfs_wb_reap(struct cfs_wb_batch *b, struct cfs_wb_call *c)
{
	if (!c->sent)
		return;
	wait_for_completion(&c->done);
	c->sent = false;
	c->nr = 0;
	if (c->err && !b->err)
		b->err = c->err;
}

/* The call being filled goes; the next one (once answered) is filled. */
static void cfs_wb_send(struct cfs_wb_batch *b)
{
	struct cfs_wb_call *c = &b->calls[b->fill];

	if (!c->nr)
		return;
	INIT_WORK(&c->work, cfs_wb_work);
	init_completion(&c->done);
	c->sent = true;
	queue_work(system_unbound_wq, &c->work);
	b->fill = (b->fill + 1) % CFS_WB_CALLS;
	cfs_wb_reap(b, &b->calls[b->fill]);
}

static int cfs_wb_add(struct page *page, struct writeback_control *wbc,
		      void *data)
{
	struct cfs_wb_batch *b = data;
	struct cfs_wb_call *c = &b->calls[b->fill];

	if (c->nr && (c->nr == CFS_WB_BATCH ||
		      page->index != c->pages[c->nr - 1]->index + 1)) {
		cfs_wb_send(b);
		c = &b->calls[b->fill];
	}
	set_page_writeback(page);
	unlock_page(page);
	c->pages[c->nr++] = page;
	return 0;
}

static int cfs_writepages(struct address_space *mapping,
			  struct writeback_control *wbc)
{
	struct cfs_wb_batch *b = kzalloc(sizeof(*b), GFP_NOFS);
	unsigned int i;
	int ret;

	if (!b)
		return -ENOMEM;
	for (i = 0; i < CFS_WB_CALLS; i++)
		b->calls[i].inode = mapping->host;
	ret = write_cache_pages(mapping, wbc, cfs_wb_add, b);
	cfs_wb_send(b);
	for (i = 0; i < CFS_WB_CALLS; i++)
		cfs_wb_reap(b, &b->calls[i]);
	if (!ret)
		ret = b->err;
	kfree(b);
	return ret;
}

static int cfs_writepage(struct page *page, struct writeback_control *wbc)
{
	struct inode *inode = page->mapping->host;
	int ret;

	set_page_writeback(page);
	ret = cfs_data_write_back(inode, &page, 1);
	if (ret)
		mapping_set_error(page->mapping, ret);
	end_page_writeback(page);
	unlock_page(page);
	return ret;
}

/* A dirty folio that must go (invalidate_inode_pages2()): written first. */
static int cfs_launder_folio(struct folio *folio)
{
	struct page *page = &folio->page;

	if (!folio_clear_dirty_for_io(folio))
		return 0;
	return cfs_data_write_back(folio->mapping->host, &page, 1);
}

/*
 * A file here open for reading, to read a page that a write(2) fills in
 * part: the writer's own, or the one dirty pages go back through; NULL if
 * neither is (the server reads pages only for a file opened for reading).
 */
static struct file *cfs_data_reader(struct file *file)
{
	struct file *backing = file->private_data;

	if (backing->f_mode & FMODE_READ)
		return backing;
	backing = READ_ONCE(CFS_I(file_inode(file))->wb_file);
	return backing && (backing->f_mode & FMODE_READ) ? backing : NULL;
}

/*
 * A page of a write(2) kept here (cfs_data_write()): one it fills only
 * in part is read first, unless it lies past the end (zeros).  -EAGAIN
 * when it must be read and cannot be (cfs_data_reader()): nothing of it
 * is written, and the caller sends that piece to the server instead.
 * The read does not wait for a recall of the file being answered here:
 * that recall waits for this write (wr_sem); a node being recalled reads
 * without waiting on the server too, and the recall drops the page after.
 */
static int cfs_write_begin(struct file *file, struct address_space *mapping,
			   loff_t pos, unsigned int len, struct page **pagep)
{
	struct file *reader;
	struct page *page;
	int ret;

	for (;;) {
		page = grab_cache_page_write_begin(mapping, pos >> PAGE_SHIFT);
		if (!page)
			return -ENOMEM;
		if (PageUptodate(page) || len == PAGE_SIZE)
			break;
		if (page_offset(page) >= i_size_read(mapping->host)) {
			zero_user(page, 0, PAGE_SIZE);
			SetPageUptodate(page);
			break;
		}
		reader = cfs_data_reader(file);
		if (!reader) {
			unlock_page(page);
			put_page(page);
			return -EAGAIN;
		}
		/* unlocks it; the page is looked up again either way */
		ret = cfs_read_folio_from(reader, page_folio(page), false);
		put_page(page);
		if (ret && ret != AOP_TRUNCATED_PAGE)
			return ret;
	}
	*pagep = page;
	return 0;
}

/*
 * The page is dirty, and the file as long as what was written: the size
 * grows here, under i_lock, where a reply's size is taken
 * (cfs_inode_update()), after the page is dirty, which that looks at.
 */
static int cfs_write_end(struct address_space *mapping, loff_t pos,
			 unsigned int len, unsigned int copied,
			 struct page *page)
{
	struct inode *inode = mapping->host;

	if (!PageUptodate(page)) {
		/* a whole page that was not all copied: none of it kept */
		if (copied < len) {
			copied = 0;
			goto out;
		}
		SetPageUptodate(page);
	}
	if (copied) {
		set_page_dirty(page);
		spin_lock(&inode->i_lock);
		if (pos + copied > i_size_read(inode))
			i_size_write(inode, pos + copied);
		spin_unlock(&inode->i_lock);
	}
out:
	unlock_page(page);
	put_page(page);
	return copied;
}

const struct address_space_operations cfs_file_aops = {
	.read_folio = cfs_read_folio,
	.readahead = cfs_readahead,
	.writepage = cfs_writepage,
	.writepages = cfs_writepages,
	.dirty_folio = filemap_dirty_folio,
	.launder_folio = cfs_launder_folio,
};

/* Pages of @inode here are dirty or being written back. */
static bool cfs_data_unwritten(struct inode *inode)
{
	struct address_space *mapping = inode->i_mapping;

	return mapping_tagged(mapping, PAGECACHE_TAG_DIRTY) ||
	       mapping_tagged(mapping, PAGECACHE_TAG_WRITEBACK);
}

/*
 * Our size of @inode may be ahead of the server's (a reply's is then not
 * taken if smaller, cfs_inode_update()): this node may keep dirty pages,
 * has some or is writing them back, or answers a recall.  Under i_lock.
 */
bool cfs_data_size_ahead(struct inode *inode)
{
	struct cfs_inode *ci = CFS_I(inode);

	return S_ISREG(inode->i_mode) &&
	       (READ_ONCE(ci->excl) || atomic_read(&ci->recalls) ||
		cfs_data_unwritten(inode));
}

/* The grant this node holds covers dirty pages (@writes: of write(2)s). */
static bool cfs_data_held(struct cfs_inode *ci, bool writes)
{
	return READ_ONCE(ci->excl) && (!writes || READ_ONCE(ci->excl_writes));
}

/* This node may keep dirty pages of @inode (no other may keep any). */
bool cfs_data_excl(struct inode *inode)
{
	return cfs_data_held(CFS_I(inode), false);
}

/*
 * This node may keep dirty pages of @inode (@writes: of write(2)s too,
 * which the server must know of: cfs_data_settle()): asked of the server
 * unless held.  A recall newer than the grant (it overtook the reply)
 * voids it.  The grant's size is the file's (every earlier writer's pages
 * are back), unless pages of ours are still unwritten and ours is larger.
 */
static int cfs_data_want_excl(struct inode *inode, bool writes)
{
	struct cfs_inode *ci = CFS_I(inode);
	struct cfs_writable_req req = {};
	struct cfs_writable_rep rep;
	struct rfile_handle h;
	unsigned int tries;
	struct file *wb;
	s64 size = 0;
	u64 seq = 0;
	int ret;

	for (tries = 0; tries < 100; tries++) {
		if (cfs_data_held(ci, writes))
			return 0;
		wb = READ_ONCE(ci->wb_file);
		if (!wb)
			return -EIO;
		if (!rfile_is_proxy(wb, &h)) {
			ret = cfs_srv_make_writable(wb, ssi_node_num(), writes,
						    &seq, &size);
		} else {
			req.id = h.id;
			req.writes = writes;
			ret = CFS_OP(h.node, writable, &req, &rep);
			seq = rep.seq;
			size = rep.size;
		}
		if (ret)
			return ret;
		spin_lock(&inode->i_lock);
		if (seq >= ci->recall_seq) {
			if (!ci->excl)
				ci->excl_writes = false;
			ci->excl = true;
			ci->excl_writes |= writes;
			if (size >= 0 && (size > i_size_read(inode) ||
					  !cfs_data_unwritten(inode)))
				i_size_write(inode, size);
		}
		spin_unlock(&inode->i_lock);
	}
	return -EAGAIN;
}

/* filemap_fault() checks the page against the size: a current one. */
static vm_fault_t cfs_fault(struct vm_fault *vmf)
{
	struct inode *inode = file_inode(vmf->vma->vm_file);

	if (!cfs_tok_valid(inode) && cfs_refresh(inode))
		return VM_FAULT_SIGBUS;
	return filemap_fault(vmf);
}

static vm_fault_t cfs_page_mkwrite(struct vm_fault *vmf)
{
	struct inode *inode = file_inode(vmf->vma->vm_file);
	int ret = cfs_data_want_excl(inode, false);

	if (ret) {
		pr_warn_ratelimited("inode %lu: no leave to write its pages (%d)\n",
				    inode->i_ino, ret);
		return vmf_error(ret);
	}
	return filemap_page_mkwrite(vmf);
}

static const struct vm_operations_struct cfs_vm_ops = {
	.fault = cfs_fault,
	.map_pages = filemap_map_pages,
	.page_mkwrite = cfs_page_mkwrite,
};

/*
 * A shared mapping that may be written needs an open file to write the
 * pages back through, whichever file it was made from: opened for
 * writing (never O_APPEND), as the mapper.
 */
static int cfs_data_wb_open(struct inode *inode)
{
	struct cfs_inode *ci = CFS_I(inode);
	struct file *wb;
	int ret = 0;

	mutex_lock(&cfs_wb_lock);
	if (!ci->wb_file) {
		wb = cfs_open_backing(inode, O_WRONLY | O_LARGEFILE, NULL);
		if (IS_ERR(wb))
			ret = PTR_ERR(wb);
		else
			ci->wb_file = wb;
	}
	mutex_unlock(&cfs_wb_lock);
	return ret;
}

/*
 * A write(2) kept here: dirty pages go back through @backing, the
 * writer's open file (opened for writing, never O_APPEND), unless one is
 * there already.  It stays while a file of the inode is open for writing
 * here (cfs_data_release()).
 */
static void cfs_data_wb_use(struct inode *inode, struct file *backing)
{
	struct cfs_inode *ci = CFS_I(inode);

	if (READ_ONCE(ci->wb_file))
		return;
	mutex_lock(&cfs_wb_lock);
	if (!ci->wb_file)
		ci->wb_file = get_file(backing);
	mutex_unlock(&cfs_wb_lock);
}

/*
 * Copies @i into the page cache at iocb->ki_pos, page by page, as
 * generic_perform_write() does but never faulting: the copy from the
 * user's buffer is atomic, and one that faults ends the run (0 if it was
 * the first page), for the caller to fault the buffer in without wr_sem
 * held (the buffer may be a mapping of this very file, whose fault may
 * wait for a recall, which waits for wr_sem).
 */
static ssize_t cfs_data_copy(struct kiocb *iocb, struct iov_iter *i)
{
	struct file *file = iocb->ki_filp;
	struct address_space *mapping = file->f_mapping;
	loff_t pos = iocb->ki_pos;
	ssize_t written = 0;
	unsigned long off, bytes;
	struct page *page;
	size_t copied;
	int status = 0;

	while (iov_iter_count(i)) {
		if (fatal_signal_pending(current)) {
			status = -EINTR;
			break;
		}
		off = offset_in_page(pos);
		bytes = min_t(unsigned long, PAGE_SIZE - off,
			      iov_iter_count(i));
		status = cfs_write_begin(file, mapping, pos, bytes, &page);
		if (status)
			break;
		if (mapping_writably_mapped(mapping))
			flush_dcache_page(page);
		copied = copy_page_from_iter_atomic(page, off, bytes, i);
		flush_dcache_page(page);
		status = cfs_write_end(mapping, pos, bytes, copied, page);
		if (unlikely(status < copied))
			iov_iter_revert(i, copied - max(status, 0));
		if (!status)
			break;	/* a fault: the caller faults it in */
		pos += status;
		written += status;
		balance_dirty_pages_ratelimited(mapping);
	}
	if (!written)
		return status;
	iocb->ki_pos += written;
	return written;
}

/* Bytes a kept write copies between two looks at this node's grant. */
#define CFS_WRITE_CHUNK		SZ_256K

/*
 * write(2) kept in the page cache (protocol version 5), at iocb->ki_pos,
 * under the inode's lock (cfs_file.c): this node is made the writer of
 * write(2)s (writable: every other node's pages recalled, its attributes
 * revoked), then up to CFS_WRITE_CHUNK bytes are copied into pages,
 * dirtied, the size grown here, under wr_sem held for reading with the
 * grant looked at again: a recall takes the grant, then waits for wr_sem
 * before it writes back and drops the pages, so it finds every page a
 * write under the grant dirtied.
 * Returns the bytes written, or an errno: -EAGAIN, nothing written, when
 * the page at the position must be read first and cannot be
 * (cfs_write_begin()).
 */
ssize_t cfs_data_write(struct kiocb *iocb, struct iov_iter *from)
{
	struct inode *inode = file_inode(iocb->ki_filp);
	struct cfs_inode *ci = CFS_I(inode);
	size_t left = iov_iter_count(from);
	size_t chunk = min_t(size_t, left, CFS_WRITE_CHUNK);
	ssize_t done;
	int ret;

	cfs_data_wb_use(inode, iocb->ki_filp->private_data);
	for (;;) {
		ret = cfs_data_want_excl(inode, true);
		if (ret)
			return ret;
		if (fault_in_iov_iter_readable(from, chunk) == chunk)
			return -EFAULT;
		down_read(&ci->wr_sem);
		if (cfs_data_held(ci, true)) {
			iov_iter_truncate(from, chunk);
			done = cfs_data_copy(iocb, from);
			iov_iter_reexpand(from, left - (done > 0 ? done : 0));
			up_read(&ci->wr_sem);
			if (done)
				return done;
			continue;	/* a fault: faulted in again */
		}
		up_read(&ci->wr_sem);
	}
}

int cfs_mmap(struct file *file, struct vm_area_struct *vma)
{
	int ret;

	if ((vma->vm_flags & VM_SHARED) && (vma->vm_flags & VM_MAYWRITE)) {
		ret = cfs_data_wb_open(file_inode(file));
		if (ret)
			return ret;
	}
	file_accessed(file);
	vma->vm_ops = &cfs_vm_ops;
	return 0;
}

/*
 * @file of @inode is released (its mappings went before): once no shared
 * writable mapping is left and no other file of the inode is open for
 * writing here (@file still counts in i_writecount: the VFS puts its
 * write access after this), the dirty pages go back, and wb_file with
 * them.  The writeback runs without cfs_wb_lock, which mmap takes under
 * mmap_lock (and writing back takes sb_writers, which is taken before
 * mmap_lock elsewhere); wb_file goes only if no page was dirtied or put
 * under writeback meanwhile (none can be without a writable mapping or a
 * file open for writing, and a new mapping waits for the lock), else it
 * stays until the inode goes.
 */
void cfs_data_release(struct inode *inode, struct file *file)
{
	struct address_space *mapping = inode->i_mapping;
	struct cfs_inode *ci = CFS_I(inode);
	int writers = file->f_mode & FMODE_WRITER ? 1 : 0;
	struct file *wb = NULL;
	int ret;

	if (!READ_ONCE(ci->wb_file) || mapping_writably_mapped(mapping) ||
	    atomic_read(&inode->i_writecount) > writers)
		return;
	ret = filemap_write_and_wait(mapping);
	if (ret)
		pr_warn_ratelimited("inode %lu: writeback failed (%d)\n",
				    inode->i_ino, ret);
	mutex_lock(&cfs_wb_lock);
	if (ci->wb_file && !mapping_writably_mapped(mapping) &&
	    atomic_read(&inode->i_writecount) <= writers &&
	    !cfs_data_unwritten(inode)) {
		wb = ci->wb_file;
		ci->wb_file = NULL;
	}
	mutex_unlock(&cfs_wb_lock);
	if (wb)
		fput(wb);
}

/* Dirty pages of [@start, @end] written back (before a read or write). */
int cfs_data_flush(struct inode *inode, loff_t start, loff_t end)
{
	if (!inode->i_mapping->nrpages)
		return 0;
	return filemap_write_and_wait_range(inode->i_mapping, start, end);
}

/* Kept pages of [@start, @end] dropped: a write of ours changed them. */
void cfs_data_drop(struct inode *inode, loff_t start, loff_t end)
{
	if (!inode->i_mapping->nrpages || end < start)
		return;
	invalidate_inode_pages2_range(inode->i_mapping, start >> PAGE_SHIFT,
				      end >> PAGE_SHIFT);
}

/*
 * The server recalls @inode's pages (sequence @seq): no more dirty pages
 * here without asking again, every mapping of them unmapped, dirty ones
 * written back, all dropped.
 */
int cfs_data_recalled(struct inode *inode, u64 seq)
{
	struct cfs_inode *ci = CFS_I(inode);
	struct address_space *mapping = inode->i_mapping;
	int ret, err;

	atomic64_inc(&cfs_recalls_taken);
	atomic_inc(&ci->recalls);
	WRITE_ONCE(ci->recalled_at, jiffies);
	spin_lock(&inode->i_lock);
	if (seq > ci->recall_seq)
		ci->recall_seq = seq;
	ci->excl = false;
	ci->excl_writes = false;
	spin_unlock(&inode->i_lock);
	/* a kept write that saw the grant dirties its pages first */
	down_write(&ci->wr_sem);
	up_write(&ci->wr_sem);
	ret = 0;
	if (S_ISREG(inode->i_mode) && mapping->nrpages) {
		unmap_mapping_range(mapping, 0, 0, 0);
		ret = filemap_write_and_wait(mapping);
		err = invalidate_inode_pages2(mapping);
		if (ret || err)
			pr_warn_ratelimited("inode %lu: pages not given back cleanly (%d, %d)\n",
					    inode->i_ino, ret, err);
	}
	if (atomic_dec_and_test(&ci->recalls))
		wake_up_var(&ci->recalls);
	return ret;
}

/* The server of @inode went down: kept pages are of a past incarnation. */
void cfs_data_forget(struct inode *inode)
{
	struct cfs_inode *ci = CFS_I(inode);

	spin_lock(&inode->i_lock);
	ci->excl = false;
	ci->excl_writes = false;
	spin_unlock(&inode->i_lock);
	if (S_ISREG(inode->i_mode))
		invalidate_mapping_pages(inode->i_mapping, 0, -1);
}
