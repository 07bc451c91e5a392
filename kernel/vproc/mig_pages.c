// SPDX-License-Identifier: GPL-2.0-only
/*
 * Migration, memory: the private pages of a process go from the source to
 * the target.
 *
 * The source answers mig.pages from the process's page tables: only
 * mapped pages are candidates (holes stay holes and are never faulted
 * in), their contents are read with get_user_pages_remote(FOLL_DUMP), and
 * each reply says where the next mapped page is, so the target skips
 * empty stretches of address space without asking.  The target cuts the
 * mappings into windows and keeps MIG_PULL_DEPTH calls in flight, so the
 * source's copying, the wire and its own copying overlap.
 *
 * Pre-copy: a move asked from outside the process (a write to
 * /proc/<pid>/goto, ssictl migrate) first clears the process's
 * soft-dirty bits and has the target pull every private page while the
 * process still runs (mig.precopy; the target stages the pages).  Once the
 * process is frozen the target pulls with mode "delta": the source sends
 * the pages written since the clear and names the clean ones, which the
 * target takes from its staged copy.  The process stops for what it wrote
 * meanwhile, not for all of its memory.  A clean page the target did not
 * stage fails the move (the process goes on at the source).
 *
 * The target maps the pages it staged, or filled from a reply, as they
 * are (ssi_mm_install_anon_page(), patch 0005): under TCG a fault, a clear
 * and a copy cost some 15 us a page, which a frozen process waited for.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagewalk.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "ics.h"
#include "migration_gen.h"
#include "mig_ics.h"
#include "mig_internal.h"

#define MIG_PULL_DEPTH		3		/* calls in flight */
#define MIG_PULL_WINDOW		(2UL << 20)	/* address space per window */
#define MIG_KEPT_RUN_MAX	4096		/* pages per kept[] entry */
#define MIG_PAGE_BATCH		16		/* pages per GUP or mapping batch */
/* Staged pages nobody restored go after this. */
#define MIG_STAGE_TIMEOUT	(60 * HZ * ICS_SLOW_KERNEL_FACTOR)
/* A pre-copy pulls everything; it may take a while on a slow link. */
#define MIG_PRECOPY_TIMEOUT	(300 * HZ * ICS_SLOW_KERNEL_FACTOR)

/* --- source: serving pages ------------------------------------------- */

struct mig_walk {
	unsigned long end;
	u32 mode;
	u64 *data_addr;
	u32 nr_data, max_data;
	u64 *kept;
	u32 nr_kept, max_kept;
	unsigned long next;
};

/* The mappings whose pages travel; the rest the target maps itself. */
static bool mig_private_vma(struct vm_area_struct *vma)
{
	const char *name;

	if (mig_special_vma(vma, &name) || vma->vm_flags & (VM_PFNMAP | VM_IO))
		return false;
	return !(vma->vm_file && vma->vm_flags & VM_SHARED);
}

static int mig_walk_test(unsigned long start, unsigned long end,
			 struct mm_walk *walk)
{
	return mig_private_vma(walk->vma) ? 0 : 1;
}

/* A page of a private file mapping is the file's until it is written. */
static bool mig_pte_anon(struct vm_area_struct *vma, pte_t v)
{
	unsigned long pfn = pte_pfn(v);

	if (!vma->vm_file)
		return true;
	return pfn_valid(pfn) && PageAnon(pfn_to_page(pfn));
}

static bool mig_kept_add(struct mig_walk *w, unsigned long addr)
{
	if (w->nr_kept) {
		u64 *last = &w->kept[w->nr_kept - 1];
		u64 n = (*last & ~PAGE_MASK) + 1;

		if ((*last & PAGE_MASK) + n * PAGE_SIZE == addr &&
		    n < MIG_KEPT_RUN_MAX) {
			(*last)++;
			return true;
		}
	}
	if (w->nr_kept == w->max_kept)
		return false;
	w->kept[w->nr_kept++] = addr;
	return true;
}

/* Under the page table lock: never sleeps. */
static int mig_walk_pte(pte_t *pte, unsigned long addr, unsigned long next,
			struct mm_walk *walk)
{
	struct mig_walk *w = walk->private;
	pte_t v = ptep_get(pte);
	bool dirty;

	if (pte_none(v))
		return 0;	/* a hole stays a hole */
	/* the zero page, or a private file page never written: mapped there */
	if (pte_present(v) && (pte_special(v) || !mig_pte_anon(walk->vma, v)))
		return 0;
	if (addr >= w->end) {
		w->next = addr;	/* nothing mapped between the window and here */
		return 1;
	}
	dirty = w->mode != MIG_PAGES_DELTA || !pte_present(v) ||
		pte_soft_dirty(v) || walk->vma->vm_flags & VM_SOFTDIRTY;
	if (dirty) {
		if (w->nr_data == w->max_data) {
			w->next = addr;
			return 1;
		}
		w->data_addr[w->nr_data++] = addr;
		return 0;
	}
	if (!mig_kept_add(w, addr)) {
		w->next = addr;
		return 1;
	}
	return 0;
}

static const struct mm_walk_ops mig_walk_ops = {
	.pte_entry = mig_walk_pte,
	.test_walk = mig_walk_test,
};

/*
 * Take a reference on each page listed in @addrs, for the reply to send
 * from where it is (@data); returns how many there are, @addrs holding
 * theirs.
 */
static u32 mig_take_pages(struct mm_struct *mm, u64 *addrs, u32 nr,
			  struct page **data)
{
	struct vm_area_struct *vmas[MIG_PAGE_BATCH];
	struct page *pages[MIG_PAGE_BATCH];
	u32 i = 0, out = 0;

	while (i < nr) {
		unsigned long start = addrs[i];
		long run = 1, got, j;

		while (i + run < nr && run < MIG_PAGE_BATCH &&
		       addrs[i + run] == start + run * PAGE_SIZE)
			run++;
		got = get_user_pages_remote(mm, start, run,
					    FOLL_FORCE | FOLL_DUMP, pages, vmas,
					    NULL);
		if (got < 0)
			got = 0;
		for (j = 0; j < got; j++) {
			if (vmas[j]->vm_file && !PageAnon(pages[j])) {
				put_page(pages[j]);
				continue;	/* never written: the file's page */
			}
			data[out] = pages[j];	/* the reply's reference */
			addrs[out++] = start + j * PAGE_SIZE;
		}
		/* a page GUP refused (the zero page under FOLL_DUMP) is skipped */
		i += got < run ? got + 1 : run;
	}
	return out;
}

int mig_serve_pages(struct mig_out *out, const struct mig_pages_req *req,
		    struct mig_pages_rep *rep)
{
	struct mm_struct *mm = out->mm;
	struct mig_walk w = {
		.end = req->end,
		.mode = req->mode,
		.data_addr = rep->page_addr,
		.max_data = ARRAY_SIZE(rep->page_addr),
		.kept = rep->kept,
		.max_kept = ARRAY_SIZE(rep->kept),
	};
	bool live = READ_ONCE(out->live);
	bool precopy = req->mode == MIG_PAGES_PRECOPY;
	int ret;

	if (req->addr & ~PAGE_MASK || req->addr >= req->end ||
	    req->end > TASK_SIZE_MAX)
		return -EINVAL;
	/* pre-copy reads a running process, the others a frozen one */
	if (req->mode > MIG_PAGES_DELTA ||
	    live != precopy ||
	    (req->mode == MIG_PAGES_DELTA && !out->precopied))
		return -EPROTO;
	if (!mmget_not_zero(mm))
		return -ESRCH;
	if (mmap_read_lock_killable(mm)) {
		mmput(mm);
		return -EINTR;
	}
	ret = walk_page_range(mm, req->addr, TASK_SIZE_MAX, &mig_walk_ops, &w);
	if (ret >= 0) {
		rep->next = ret ? w.next : 0;
		rep->page_addr_count = mig_take_pages(mm, rep->page_addr,
						      w.nr_data, rep->data);
		rep->data_count = rep->page_addr_count;
		rep->kept_count = w.nr_kept;
		atomic_add(rep->page_addr_count, &out->pages);
		ret = 0;
	}
	mmap_read_unlock(mm);
	mmput(mm);
	return ret;
}

/* The (start, end) pairs of @mm's private mappings, at most @max pairs. */
static u32 mig_mm_spans(struct mm_struct *mm, u64 *span, u32 max)
{
	struct vm_area_struct *vma;
	u32 n = 0;

	VMA_ITERATOR(vmi, mm, 0);

	mmap_read_lock(mm);
	for_each_vma(vmi, vma) {
		if (!mig_private_vma(vma))
			continue;
		if (n && (span[2 * n - 1] == vma->vm_start || n == max)) {
			span[2 * n - 1] = vma->vm_end;	/* joins the last */
			continue;
		}
		span[2 * n] = vma->vm_start;
		span[2 * n + 1] = vma->vm_end;
		n++;
	}
	mmap_read_unlock(mm);
	return n;
}

/*
 * Pre-copy @task's memory to @node while it runs.  Returns the session
 * (listed, pre-copied) for the move that follows, or NULL when the move
 * goes without one (nothing is lost but time).
 */
struct mig_out *mig_precopy(struct task_struct *task, unsigned int node)
{
	struct mig_precopy_req *req;
	struct mig_precopy_rep rep;
	struct mm_struct *mm;
	struct mig_out *out;
	ktime_t t0 = ktime_get();
	int ret = -ENOMEM;

	if (!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY) || !migration_precopy)
		return NULL;
	mm = get_task_mm(task);
	if (!mm)
		return NULL;
	/* a small one moves faster in one go, and is not frozen much longer */
	if (get_mm_counter(mm, MM_ANONPAGES) <
	    (migration_precopy_min_kb >> (PAGE_SHIFT - 10))) {
		mmput(mm);
		return NULL;
	}
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	out = req ? mig_out_new(task_tgid_nr(task), node, mm) : NULL;
	if (!out)
		goto fail;
	WRITE_ONCE(out->live, true);
	ret = ssi_mm_clear_soft_dirty(mm);
	if (ret)
		goto fail;
	req->session = out->session;
	req->pid = out->pid;
	req->span_count = 2 * mig_mm_spans(mm, req->span,
					   ARRAY_SIZE(req->span) / 2);
	ret = ics_mig_precopy(node, req, &rep, MIG_PRECOPY_TIMEOUT);
	WRITE_ONCE(out->live, false);
	if (ret)
		goto fail;
	out->precopied = true;
	pr_debug("pid %d: %llu pages pre-copied to node %u in %lld us\n",
		 out->pid, rep.staged, node, ktime_us_delta(ktime_get(), t0));
	kfree(req);
	mmput(mm);
	return out;
fail:
	pr_info("pid %d: no pre-copy to node %u (%d)\n", task_tgid_nr(task),
		node, ret);
	if (out)
		mig_out_discard(out);
	kfree(req);
	mmput(mm);
	return NULL;
}

/* --- target: staged pages -------------------------------------------- */

struct mig_stage {
	struct list_head link;
	u64 session;
	unsigned int source;
	struct xarray pages;		/* page index -> struct page * */
	unsigned long nr, limit;
	unsigned long expires;
};

static LIST_HEAD(mig_stages);
static DEFINE_SPINLOCK(mig_stage_lock);
/* Pages staged on this node, every stage and source together. */
static atomic_long_t mig_staged_pages = ATOMIC_LONG_INIT(0);

static void mig_staged_put(struct page *page)
{
	put_page(page);
	atomic_long_dec(&mig_staged_pages);
}

static void mig_stage_free(struct mig_stage *st)
{
	struct page *page;
	unsigned long idx;

	xa_for_each(&st->pages, idx, page)
		mig_staged_put(page);
	xa_destroy(&st->pages);
	kfree(st);
}

/* Take the stage of @session from @source off the list; or NULL. */
static struct mig_stage *mig_stage_take(u64 session, unsigned int source)
{
	struct mig_stage *st, *found = NULL;

	spin_lock(&mig_stage_lock);
	list_for_each_entry(st, &mig_stages, link) {
		if (st->session == session && st->source == source) {
			list_del(&st->link);
			found = st;
			break;
		}
	}
	spin_unlock(&mig_stage_lock);
	return found;
}

/* Drop stages of @node (0: expired ones; ~0u: all). */
static void mig_stage_drop(unsigned int node)
{
	struct mig_stage *st, *tmp;
	LIST_HEAD(gone);

	spin_lock(&mig_stage_lock);
	list_for_each_entry_safe(st, tmp, &mig_stages, link) {
		if (node == ~0u || st->source == node ||
		    (!node && time_after(jiffies, st->expires)))
			list_move(&st->link, &gone);
	}
	spin_unlock(&mig_stage_lock);
	list_for_each_entry_safe(st, tmp, &gone, link)
		mig_stage_free(st);
}

static void mig_stage_reap(struct work_struct *work);
static DECLARE_DELAYED_WORK(mig_stage_reaper, mig_stage_reap);

/* Stages no restore came for (the process ended, the source gave up). */
static void mig_stage_reap(struct work_struct *work)
{
	bool more;

	mig_stage_drop(0);
	spin_lock(&mig_stage_lock);
	more = !list_empty(&mig_stages);
	spin_unlock(&mig_stage_lock);
	if (more)
		schedule_delayed_work(&mig_stage_reaper, MIG_STAGE_TIMEOUT);
}

void mig_stage_nodedown(unsigned int node)
{
	mig_stage_drop(node);
}

void mig_stage_exit(void)
{
	cancel_delayed_work_sync(&mig_stage_reaper);
	mig_stage_drop(~0u);
}

/* --- target: pulling ------------------------------------------------- */

struct mig_pull;

struct mig_pull_slot {
	struct work_struct work;
	struct mig_pull *pull;
	struct mig_pages_req req;
	struct mig_pages_rep *rep;
	u64 win_end;
	int ret;
	bool busy;
};

struct mig_pull {
	unsigned int source;
	u64 session;
	u32 mode;
	const u64 *span;		/* (start, end) pairs, ascending */
	u32 nr_spans, cur;
	u64 pos;			/* windows below this are handed out */
	wait_queue_head_t wq;
	spinlock_t lock;		/* done */
	unsigned long done;		/* slots whose call returned */
	struct mig_pull_slot slot[MIG_PULL_DEPTH];
	/* takes the pages it keeps (sets their rep->data[] NULL) */
	int (*consume)(struct mig_pull *pull, struct mig_pages_rep *rep);
	struct mig_stage *stage;
	unsigned long staged, kept;
};

static void mig_pull_call(struct work_struct *work)
{
	struct mig_pull_slot *s = container_of(work, struct mig_pull_slot,
					       work);
	struct mig_pull *pull = s->pull;

	s->ret = ics_mig_pages(pull->source, &s->req, s->rep,
			       MIG_CALL_TIMEOUT);
	spin_lock(&pull->lock);
	pull->done |= BIT(s - pull->slot);
	spin_unlock(&pull->lock);
	wake_up(&pull->wq);
}

/* The next window of address space for @s; false when none is left. */
static bool mig_pull_window(struct mig_pull *pull, struct mig_pull_slot *s)
{
	while (pull->cur < pull->nr_spans) {
		u64 start = pull->span[2 * pull->cur];
		u64 end = pull->span[2 * pull->cur + 1];

		if (pull->pos < start)
			pull->pos = start;
		if (pull->pos >= end) {
			pull->cur++;
			continue;
		}
		s->req.addr = pull->pos;
		s->win_end = min(end, pull->pos + MIG_PULL_WINDOW);
		s->req.end = s->win_end;
		pull->pos = s->win_end;
		return true;
	}
	return false;
}

static void mig_pull_issue(struct mig_pull *pull, struct mig_pull_slot *s)
{
	s->busy = true;
	queue_work(system_unbound_wq, &s->work);
}

/* Check a reply against its request before anything of it is used. */
static int mig_pull_check(const struct mig_pages_req *req,
			  const struct mig_pages_rep *rep)
{
	u64 last = 0;
	u32 i;

	if (rep->page_addr_count != rep->data_count)
		return -EPROTO;
	if (rep->next && rep->next <= req->addr)
		return -EPROTO;		/* a source going backwards */
	for (i = 0; i < rep->page_addr_count; i++) {
		u64 a = rep->page_addr[i];

		if (a & ~PAGE_MASK || a < req->addr || a >= req->end ||
		    (i && a <= last))
			return -EPROTO;
		last = a;
	}
	for (i = 0; i < rep->kept_count; i++) {
		u64 a = rep->kept[i] & PAGE_MASK;
		u64 n = (rep->kept[i] & ~PAGE_MASK) + 1;

		if (req->mode != MIG_PAGES_DELTA || a < req->addr ||
		    n > MIG_KEPT_RUN_MAX || a + n * PAGE_SIZE > req->end)
			return -EPROTO;
	}
	return 0;
}

/*
 * Pull every window of @pull's spans, MIG_PULL_DEPTH calls at a time, each
 * reply handed to pull->consume in the caller's context.
 */
static int mig_pull_run(struct mig_pull *pull)
{
	int err = 0, busy = 0, i;

	init_waitqueue_head(&pull->wq);
	spin_lock_init(&pull->lock);
	for (i = 0; i < MIG_PULL_DEPTH; i++) {
		struct mig_pull_slot *s = &pull->slot[i];

		s->pull = pull;
		s->req.session = pull->session;
		s->req.mode = pull->mode;
		INIT_WORK_ONSTACK(&s->work, mig_pull_call);
		s->rep = kvzalloc(sizeof(*s->rep), GFP_KERNEL);
		if (!s->rep)
			err = -ENOMEM;
	}
	for (i = 0; !err && i < MIG_PULL_DEPTH; i++) {
		if (mig_pull_window(pull, &pull->slot[i])) {
			mig_pull_issue(pull, &pull->slot[i]);
			busy++;
		}
	}
	while (busy) {
		unsigned long done;

		/* bounded: every call ends within MIG_CALL_TIMEOUT */
		wait_event(pull->wq, READ_ONCE(pull->done));
		spin_lock(&pull->lock);
		done = pull->done;
		pull->done = 0;
		spin_unlock(&pull->lock);
		for_each_set_bit(i, &done, MIG_PULL_DEPTH) {
			struct mig_pull_slot *s = &pull->slot[i];
			u64 next;

			s->busy = false;
			busy--;
			if (!err)
				err = s->ret ?: mig_pull_check(&s->req, s->rep);
			if (!err)
				err = pull->consume(pull, s->rep);
			if (!s->ret) {
				/* the pages consume did not take */
				ics_put_pages(s->rep->data, s->rep->data_count);
				s->rep->data_count = 0;
			}
			if (err)
				continue;
			next = s->rep->next;
			if (next && next < s->win_end) {
				s->req.addr = next;	/* the window goes on */
			} else {
				/* nothing mapped before @next: skip to it */
				if (!next)
					pull->cur = pull->nr_spans;
				else if (next > pull->pos)
					pull->pos = next;
				if (!mig_pull_window(pull, s))
					continue;
			}
			mig_pull_issue(pull, s);
			busy++;
		}
	}
	for (i = 0; i < MIG_PULL_DEPTH; i++) {
		/* no call is in flight any more: every slot came back */
		destroy_work_on_stack(&pull->slot[i].work);
		kvfree(pull->slot[i].rep);
	}
	return err;
}

/* Pre-copy: keep the pages (those of the reply) for the restore to come. */
static int mig_stage_consume(struct mig_pull *pull,
			     struct mig_pages_rep *rep)
{
	struct mig_stage *st = pull->stage;
	u32 i;

	for (i = 0; i < rep->page_addr_count; i++) {
		struct page *page = rep->data[i], *old;

		/* every peer's stages together: the move goes without */
		if (atomic_long_read(&mig_staged_pages) >= st->limit)
			return -ENOMEM;
		old = xa_store(&st->pages, rep->page_addr[i] >> PAGE_SHIFT,
			       page, GFP_KERNEL);
		if (xa_is_err(old))
			return xa_err(old);
		rep->data[i] = NULL;	/* the stage's now */
		atomic_long_inc(&mig_staged_pages);
		if (old)
			mig_staged_put(old);
		else
			st->nr++;
	}
	return 0;
}

int mig_srv_precopy(unsigned int from, const struct mig_precopy_req *req,
		    struct mig_precopy_rep *rep)
{
	struct mig_pull pull = {
		.source = from,
		.session = req->session,
		.mode = MIG_PAGES_PRECOPY,
		.span = req->span,
		.nr_spans = req->span_count / 2,
		.consume = mig_stage_consume,
	};
	struct mig_stage *st;
	u32 i;
	int ret;

	if (req->span_count % 2)
		return -EINVAL;
	for (i = 0; i < req->span_count; i++) {
		if (req->span[i] & ~PAGE_MASK || req->span[i] > TASK_SIZE_MAX ||
		    (i && req->span[i] < req->span[i - 1]) ||
		    (i % 2 && req->span[i] == req->span[i - 1]))
			return -EINVAL;
	}
	mig_stage_drop(0);
	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!st)
		return -ENOMEM;
	st->session = req->session;
	st->source = from;
	xa_init(&st->pages);
	/*
	 * Half of what staging may use (the memory available plus what is
	 * staged already): a restore needs as much again, and no peer may
	 * take a node's memory by asking for pre-copies.
	 */
	st->limit = (si_mem_available() +
		     atomic_long_read(&mig_staged_pages)) / 2;
	pull.stage = st;
	ret = mig_pull_run(&pull);
	if (ret) {
		mig_stage_free(st);
		return ret;
	}
	rep->staged = st->nr;
	st->expires = jiffies + MIG_STAGE_TIMEOUT;
	spin_lock(&mig_stage_lock);
	list_add(&st->link, &mig_stages);
	spin_unlock(&mig_stage_lock);
	schedule_delayed_work(&mig_stage_reaper, MIG_STAGE_TIMEOUT + HZ);
	return 0;
}

/* --- target: restoring ----------------------------------------------- */

/*
 * Write the contents of @page at @addr of current's process (also into a
 * read-only mapping, as ptrace would).  For a page that cannot be mapped
 * as it is.
 */
static int mig_write_page(unsigned long addr, struct page *page)
{
	struct page *dst;
	void *to;
	long got;

	if (mmap_read_lock_killable(current->mm))
		return -EINTR;
	got = get_user_pages(addr, 1, FOLL_WRITE | FOLL_FORCE, &dst, NULL);
	mmap_read_unlock(current->mm);
	if (got != 1)
		return got < 0 ? (int)got : -EFAULT;
	to = kmap_local_page(dst);
	memcpy(to, page_address(page), PAGE_SIZE);
	kunmap_local(to);
	put_page(dst);
	return 0;
}

/*
 * Make @pages[i] the page at @addr[i] of current's process, i < @nr, with
 * ssi_mm_install_anon_page(): no fault, no clear, no copy.  A page that
 * cannot be mapped so (something is mapped there, a kernel without the
 * helper) is written instead.  Consumes every reference of @pages.
 */
static int mig_map_pages(const unsigned long *addr, struct page **pages,
			 u32 nr)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma = NULL;
	int ret = 0;
	u32 i;

	if (mmap_read_lock_killable(mm)) {
		ret = -EINTR;
		goto put;
	}
	for (i = 0; i < nr && !ret; i++) {
		if (!vma || addr[i] < vma->vm_start || addr[i] >= vma->vm_end)
			vma = vma_lookup(mm, addr[i]);
		if (!vma) {
			ret = -EFAULT;	/* not a mapping of the image */
			break;
		}
		ret = IS_ENABLED(CONFIG_USERFAULTFD) ?
		      ssi_mm_install_anon_page(vma, addr[i], pages[i]) :
		      -EOPNOTSUPP;
		if (!ret)
			pages[i] = NULL;	/* the page table's now */
		else if (ret == -EEXIST || ret == -EINVAL ||
			 ret == -EOPNOTSUPP)
			ret = 0;		/* written below */
	}
	mmap_read_unlock(mm);
	for (i = 0; i < nr && !ret; i++) {
		if (pages[i])
			ret = mig_write_page(addr[i], pages[i]);
	}
put:
	for (i = 0; i < nr; i++) {
		if (pages[i])
			put_page(pages[i]);
	}
	return ret;
}

/* A run of clean pages: the staged ones become the process's. */
static int mig_map_kept(struct mig_stage *st, unsigned long addr, u32 nr)
{
	unsigned long at[MIG_PAGE_BATCH];
	struct page *pages[MIG_PAGE_BATCH];
	u32 done, n, i;
	int ret = 0;

	for (done = 0; done < nr && !ret; done += n) {
		n = min_t(u32, nr - done, MIG_PAGE_BATCH);
		for (i = 0; i < n; i++) {
			at[i] = addr + (unsigned long)(done + i) * PAGE_SIZE;
			pages[i] = st ? xa_erase(&st->pages, at[i] >> PAGE_SHIFT) :
				   NULL;
			if (!pages[i]) {
				ret = -EPROTO;	/* clean, but never staged */
				break;
			}
			atomic_long_dec(&mig_staged_pages);	/* ours now */
		}
		if (ret) {
			while (i--)
				put_page(pages[i]);
			break;
		}
		ret = mig_map_pages(at, pages, n);
	}
	return ret;
}

/* Pages of a reply, @nr from @first: the pages they came in are mapped. */
static int mig_map_data(struct mig_pages_rep *rep, u32 first, u32 nr)
{
	unsigned long at[MIG_PAGE_BATCH];
	struct page *pages[MIG_PAGE_BATCH];
	u32 i;

	for (i = 0; i < nr; i++) {
		pages[i] = rep->data[first + i];
		rep->data[first + i] = NULL;	/* mig_map_pages() takes it */
		at[i] = rep->page_addr[first + i];
	}
	return mig_map_pages(at, pages, nr);
}

static int mig_restore_consume(struct mig_pull *pull,
			       struct mig_pages_rep *rep)
{
	int ret = 0;
	u32 i, n;

	for (i = 0; i < rep->page_addr_count && !ret; i += n) {
		n = min_t(u32, rep->page_addr_count - i, MIG_PAGE_BATCH);
		ret = mig_map_data(rep, i, n);
	}
	for (i = 0; i < rep->kept_count && !ret; i++) {
		n = (rep->kept[i] & ~PAGE_MASK) + 1;
		ret = mig_map_kept(pull->stage, rep->kept[i] & PAGE_MASK, n);
		pull->kept += n;
	}
	return ret;
}

/*
 * Fill current's new address space (its mappings made from the image)
 * with the private pages of the process @in brings, from @span (pairs
 * covering its mappings).  @precopied: the source pre-copied them here.
 */
int mig_restore_pages(struct mig_in *in, const u64 *span, u32 nr_spans,
		      bool precopied)
{
	struct mig_pull pull = {
		.source = in->source,
		.session = in->session,
		.mode = MIG_PAGES_ALL,
		.span = span,
		.nr_spans = nr_spans,
		.consume = mig_restore_consume,
	};
	int ret;

	if (precopied) {
		pull.stage = mig_stage_take(in->session, in->source);
		if (pull.stage)
			pull.mode = MIG_PAGES_DELTA;
		else
			pr_info("pid %d: its pre-copy is gone; pulling it all\n",
				in->pid);
	}
	ret = mig_pull_run(&pull);
	if (pull.stage) {
		pr_debug("pid %d: %lu pages from the pre-copy\n", in->pid,
			 pull.kept);
		mig_stage_free(pull.stage);
	}
	return ret;
}
