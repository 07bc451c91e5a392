// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the client's page cache: what mmap(2) of a CFS file maps and
 * read(2) reads (cfs_file.c); write(2) goes to the server's file
 * (write-through) and drops the pages of its range.  Pages are kept under
 * the server's data tokens (the protocol is at the top of cfs_main.c, the
 * server's side in cfs_token.c).
 *
 * A page is read with `readpages`, which registers this node as keeping
 * pages of the file before the server reads them, so every later write
 * by another node recalls them.  The first write to a page of a shared
 * writable mapping asks `writable` (one node at a time may keep dirty
 * pages, and no other node keeps any); dirty pages are written back
 * through an open file of the inode's own (wb_file).  A `recall` unmaps
 * every page, writes the dirty ones back and drops them all, before it is
 * answered.
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
 * @count bytes at @pos of the server's file, read through @backing (the
 * file's open file there: a proxy, or the server file system's own file
 * on the server's own mount) for keeping.
 */
static ssize_t cfs_data_read(struct file *backing, loff_t pos, void *buf,
			     u32 count)
{
	struct cfs_readpages_req req = {};
	struct cfs_readpages_rep *rep;
	struct rfile_handle h;
	ssize_t ret;

	if (!rfile_is_proxy(backing, &h))
		return cfs_srv_read_kept(backing, ssi_node_num(), pos, buf,
					 count);
	rep = kvmalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return -ENOMEM;
	req.id = h.id;
	req.pos = pos;
	req.count = count;
	ret = CFS_OP(h.node, readpages, &req, rep);
	if (!ret) {
		ret = min_t(u32, rep->data_len, count);
		memcpy(buf, rep->data, ret);
	}
	kvfree(rep);
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

static int cfs_read_folio(struct file *file, struct folio *folio)
{
	struct inode *inode = folio->mapping->host;
	struct page *page = &folio->page;
	struct file *backing;
	ssize_t n;
	void *buf;

	backing = file ? file->private_data : CFS_I(inode)->wb_file;
	if (!backing) {
		folio_unlock(folio);
		return -EBADF;
	}
	if (cfs_data_recall_running(inode)) {
		folio_unlock(folio);
		wait_var_event(&CFS_I(inode)->recalls,
			       !cfs_data_recall_running(inode));
		return AOP_TRUNCATED_PAGE;	/* looked up again */
	}
	buf = kmap_local_page(page);
	n = cfs_data_read(backing, page_offset(page), buf, PAGE_SIZE);
	if (n >= 0) {
		memset(buf + n, 0, PAGE_SIZE - n);
		flush_dcache_page(page);
		SetPageUptodate(page);
	}
	kunmap_local(buf);
	folio_unlock(folio);
	if (n < 0)
		pr_warn_ratelimited("inode %lu: a page could not be read (%zd)\n",
				    inode->i_ino, n);
	return n < 0 ? n : 0;
}

/* Pages read by one call: what a readpages reply carries. */
#define CFS_DATA_BATCH	(65536 / PAGE_SIZE)
#define CFS_RA_CALLS	4

/*
 * One readpages call of a readahead, made by a worker so that the calls
 * of one readahead travel at once (one after another, a stream kept one
 * node's vCPU busy at a time).
 */
struct cfs_ra_call {
	struct work_struct work;
	struct completion done;
	struct file *backing;
	loff_t pos;
	size_t len;
	ssize_t n;
	void *buf;
};

static void cfs_ra_work(struct work_struct *work)
{
	struct cfs_ra_call *c = container_of(work, struct cfs_ra_call, work);

	c->n = cfs_data_read(c->backing, c->pos, c->buf, c->len);
	complete(&c->done);
}

/* The folios of @rac from @folio on that lie in [@pos, @pos + @len). */
static struct folio *cfs_ra_fill(struct readahead_control *rac,
				 struct folio *folio, loff_t pos, size_t len,
				 const void *buf, ssize_t n)
{
	size_t off, have;
	void *dst;

	while (folio && folio_pos(folio) < pos + len) {
		off = folio_pos(folio) - pos;
		if (n >= 0 && !folio_test_large(folio)) {
			have = n > off ? min_t(size_t, n - off, PAGE_SIZE) : 0;
			dst = kmap_local_folio(folio, 0);
			memcpy(dst, buf + off, have);
			memset(dst + have, 0, PAGE_SIZE - have);
			kunmap_local(dst);
			flush_dcache_folio(folio);
			folio_mark_uptodate(folio);
		}
		folio_unlock(folio);
		folio = readahead_folio(rac);
	}
	return folio;
}

/*
 * Readahead (a mapping's faults, and read(2), read around them): the
 * run of pages in calls of up to CFS_DATA_BATCH pages, up to CFS_RA_CALLS
 * of them in flight at once.  A page left out (an error) is read again by
 * ->read_folio when it is needed.
 */
static void cfs_readahead(struct readahead_control *rac)
{
	struct inode *inode = rac->mapping->host;
	struct cfs_ra_call *calls;
	struct file *backing;
	struct folio *folio;
	unsigned int i, nr;
	loff_t pos;
	size_t left;

	backing = rac->file ? rac->file->private_data : CFS_I(inode)->wb_file;
	calls = kcalloc(CFS_RA_CALLS, sizeof(*calls), GFP_KERNEL);
	/* right after readahead_folio(), the request starts at that folio */
	folio = readahead_folio(rac);
	while (folio) {
		pos = readahead_pos(rac);
		left = readahead_length(rac);
		for (nr = 0; calls && backing && left && nr < CFS_RA_CALLS &&
		     !cfs_data_recall_running(inode); nr++) {
			struct cfs_ra_call *c = &calls[nr];

			c->len = min_t(size_t, left, CFS_DATA_BATCH * PAGE_SIZE);
			c->buf = kvmalloc(c->len, GFP_KERNEL);
			if (!c->buf)
				break;
			c->backing = backing;
			c->pos = pos;
			pos += c->len;
			left -= c->len;
			INIT_WORK(&c->work, cfs_ra_work);
			init_completion(&c->done);
			queue_work(system_unbound_wq, &c->work);
		}
		if (!nr) {	/* no memory or a recall: every folio left out */
			folio = cfs_ra_fill(rac, folio, readahead_pos(rac),
					    readahead_length(rac), NULL,
					    -ENOMEM);
			continue;
		}
		for (i = 0; i < nr; i++) {
			wait_for_completion(&calls[i].done);
			folio = cfs_ra_fill(rac, folio, calls[i].pos,
					    calls[i].len, calls[i].buf,
					    calls[i].n);
			kvfree(calls[i].buf);
		}
	}
	kfree(calls);
}

/*
 * Write @nr pages of @inode from @pages[0] on (contiguous) back to the
 * server: the bytes below the file's end, in one `writepages` call (on
 * the server's own mount, a write of its file here).  A writeback never
 * waits for or recalls other nodes: its pages were dirtied by the writer.
 */
static int cfs_data_write_back(struct inode *inode, struct page **pages,
			       unsigned int nr)
{
	struct file *wb = CFS_I(inode)->wb_file;
	loff_t size = i_size_read(inode), pos = page_offset(pages[0]);
	struct cfs_writepages_req *req;
	struct cfs_writepages_rep rep;
	struct rfile_handle h;
	size_t len = 0, n;
	unsigned int i;
	ssize_t ret;
	void *src;

	if (!wb)
		return -EIO;
	req = kvmalloc(sizeof(*req), GFP_NOFS);
	if (!req)
		return -ENOMEM;
	for (i = 0; i < nr && page_offset(pages[i]) < size; i++) {
		n = min_t(loff_t, PAGE_SIZE, size - page_offset(pages[i]));
		src = kmap_local_page(pages[i]);
		memcpy(req->data + len, src, n);
		kunmap_local(src);
		len += n;
	}
	ret = 0;
	if (len) {
		req->data_len = len;
		req->pos = pos;
		if (!rfile_is_proxy(wb, &h)) {
			ret = cfs_srv_write_back(wb, ssi_node_num(), pos,
						 req->data, len);
		} else {
			req->id = h.id;
			ret = CFS_OP(h.node, writepages, req, &rep);
			if (!ret)
				ret = rep.written;
		}
		if (ret != len)
			pr_warn_ratelimited("inode %lu: writeback at %lld: %zd of %zu bytes\n",
					    inode->i_ino, pos, ret, len);
		if (ret >= 0 && ret != len)
			ret = -EIO;
	}
	kvfree(req);
	return ret < 0 ? cfs_errno(ret) : 0;
}

/*
 * Writeback in runs: contiguous dirty pages, up to CFS_DATA_BATCH, go in
 * one call (each page under writeback, unlocked, until it is done).
 */
struct cfs_wb_batch {
	struct inode *inode;
	struct page *pages[CFS_DATA_BATCH];
	unsigned int nr;
	int err;
};

static void cfs_wb_flush(struct cfs_wb_batch *b)
{
	unsigned int i;
	int ret;

	if (!b->nr)
		return;
	ret = cfs_data_write_back(b->inode, b->pages, b->nr);
	if (ret) {
		mapping_set_error(b->inode->i_mapping, ret);
		if (!b->err)
			b->err = ret;
	}
	for (i = 0; i < b->nr; i++)
		end_page_writeback(b->pages[i]);
	b->nr = 0;
}

static int cfs_wb_add(struct page *page, struct writeback_control *wbc,
		      void *data)
{
	struct cfs_wb_batch *b = data;

	if (b->nr && (b->nr == CFS_DATA_BATCH ||
		      page->index != b->pages[b->nr - 1]->index + 1))
		cfs_wb_flush(b);
	set_page_writeback(page);
	unlock_page(page);
	b->pages[b->nr++] = page;
	return 0;
}

static int cfs_writepages(struct address_space *mapping,
			  struct writeback_control *wbc)
{
	struct cfs_wb_batch *b = kmalloc(sizeof(*b), GFP_NOFS);
	int ret;

	if (!b)
		return -ENOMEM;
	b->inode = mapping->host;
	b->nr = 0;
	b->err = 0;
	ret = write_cache_pages(mapping, wbc, cfs_wb_add, b);
	cfs_wb_flush(b);
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

const struct address_space_operations cfs_file_aops = {
	.read_folio = cfs_read_folio,
	.readahead = cfs_readahead,
	.writepage = cfs_writepage,
	.writepages = cfs_writepages,
	.dirty_folio = filemap_dirty_folio,
	.launder_folio = cfs_launder_folio,
};

/*
 * This node may keep dirty pages of @inode: asked of the server unless
 * held.  A recall newer than the grant (it overtook the reply) voids it.
 */
static int cfs_data_want_excl(struct inode *inode)
{
	struct cfs_inode *ci = CFS_I(inode);
	struct cfs_writable_req req = {};
	struct cfs_writable_rep rep;
	struct rfile_handle h;
	unsigned int tries;
	struct file *wb;
	u64 seq = 0;
	int ret;

	for (tries = 0; tries < 100; tries++) {
		if (READ_ONCE(ci->excl))
			return 0;
		wb = READ_ONCE(ci->wb_file);
		if (!wb)
			return -EIO;
		if (!rfile_is_proxy(wb, &h)) {
			ret = cfs_srv_make_writable(wb, ssi_node_num(), &seq);
		} else {
			req.id = h.id;
			ret = CFS_OP(h.node, writable, &req, &rep);
			seq = rep.seq;
		}
		if (ret)
			return ret;
		spin_lock(&inode->i_lock);
		if (seq >= ci->recall_seq)
			ci->excl = true;
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
	int ret = cfs_data_want_excl(inode);

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
		wb = cfs_open_backing(inode, O_WRONLY | O_LARGEFILE);
		if (IS_ERR(wb))
			ret = PTR_ERR(wb);
		else
			ci->wb_file = wb;
	}
	mutex_unlock(&cfs_wb_lock);
	return ret;
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
 * A file of @inode is released (its mappings went before): once no
 * shared writable mapping is left, the dirty pages go back and wb_file
 * with them.  The writeback runs without cfs_wb_lock, which mmap takes
 * under mmap_lock (and writing back takes sb_writers, which is taken
 * before mmap_lock elsewhere); wb_file goes only if no page was dirtied
 * or put under writeback meanwhile (none can be without a writable
 * mapping, and a new one waits for the lock), else it stays until the
 * inode goes.
 */
void cfs_data_release(struct inode *inode)
{
	struct address_space *mapping = inode->i_mapping;
	struct cfs_inode *ci = CFS_I(inode);
	struct file *wb = NULL;
	int ret;

	if (!READ_ONCE(ci->wb_file) || mapping_writably_mapped(mapping))
		return;
	ret = filemap_write_and_wait(mapping);
	if (ret)
		pr_warn_ratelimited("inode %lu: writeback failed (%d)\n",
				    inode->i_ino, ret);
	mutex_lock(&cfs_wb_lock);
	if (ci->wb_file && !mapping_writably_mapped(mapping) &&
	    !mapping_tagged(mapping, PAGECACHE_TAG_DIRTY) &&
	    !mapping_tagged(mapping, PAGECACHE_TAG_WRITEBACK)) {
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
	spin_unlock(&inode->i_lock);
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
	spin_unlock(&inode->i_lock);
	if (S_ISREG(inode->i_mode))
		invalidate_mapping_pages(inode->i_mapping, 0, -1);
}
