// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS RPC: the service registry, server-side dispatch of incoming calls
 * and one-way messages, and the client side (ics_call, ics_send) with
 * xid matching, timeouts and prompt failure when a node goes down.
 */
#define pr_fmt(fmt) "ics: " fmt

#include <linux/err.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/ssi.h>

#include "ics_internal.h"

static DEFINE_XARRAY(ics_services);
static DEFINE_MUTEX(ics_services_lock);

struct ics_dispatch_work {
	struct work_struct work;
	struct ics_conn *conn;
	struct ics_hdr hdr;
	void *body;
	size_t len;
	struct page **pages;
	unsigned int nr_pages;
};

int ics_register_service(const struct ics_service *svc)
{
	int ret;

	if (!svc || !svc->id || !svc->owner || svc->chan >= ICS_NR_CHANS ||
	    (svc->nr_ops && !svc->ops))
		return -EINVAL;
	mutex_lock(&ics_services_lock);
	ret = xa_insert(&ics_services, svc->id, (void *)svc, GFP_KERNEL);
	mutex_unlock(&ics_services_lock);
	if (!ret)
		pr_info("service %s (%u) registered\n", svc->name, svc->id);
	return ret;
}
EXPORT_SYMBOL_GPL(ics_register_service);

void ics_unregister_service(const struct ics_service *svc)
{
	mutex_lock(&ics_services_lock);
	if (xa_load(&ics_services, svc->id) == svc)
		xa_erase(&ics_services, svc->id);
	mutex_unlock(&ics_services_lock);
	synchronize_rcu();
}
EXPORT_SYMBOL_GPL(ics_unregister_service);

/* Finds the op and pins its service's module, or returns NULL. */
static const struct ics_op *ics_find_op(const struct ics_hdr *hdr,
					const struct ics_service **svcp)
{
	const struct ics_service *svc;
	const struct ics_op *found = NULL;
	u16 op = le16_to_cpu(hdr->op), ver = le16_to_cpu(hdr->op_version);
	bool oneway = (hdr->kind & ~ICS_KIND_PAGES) == ICS_KIND_ONEWAY;
	unsigned int i;

	rcu_read_lock();
	svc = xa_load(&ics_services, le16_to_cpu(hdr->service));
	if (svc && try_module_get(svc->owner)) {
		for (i = 0; i < svc->nr_ops; i++) {
			if (svc->ops[i].op == op &&
			    svc->ops[i].version == ver &&
			    svc->ops[i].oneway == oneway) {
				found = &svc->ops[i];
				break;
			}
		}
		if (!found)
			module_put(svc->owner);
	}
	rcu_read_unlock();
	*svcp = svc;
	return found;
}

/*
 * The reply to @call: @len bytes of @body, then @nr_pages @pages if
 * @paged (an op whose reply has a pages<N> field; not for an error).
 */
static void ics_reply(struct ics_conn *conn, const struct ics_hdr *call,
		      const void *body, size_t len, bool paged,
		      struct page *const *pages, unsigned int nr_pages,
		      int status)
{
	struct ics_hdr hdr;

	ics_hdr_fill(&hdr, ICS_KIND_REPLY | (paged ? ICS_KIND_PAGES : 0),
		     le16_to_cpu(call->service), le16_to_cpu(call->op),
		     le16_to_cpu(call->op_version),
		     len + (size_t)nr_pages * ICS_PAGE_SIZE, status,
		     le64_to_cpu(call->xid));
	ics_conn_send(conn, &hdr, body, len, pages, nr_pages,
		      jiffies + ICS_SEND_TIMEOUT);
}

/*
 * Runs @op's dispatch_pages on @dw's request; the reply (and its pages,
 * if it has some: *@rep_pages, put by the caller) in *@rep.
 */
static int ics_dispatch_pages(struct ics_dispatch_work *dw,
			      const struct ics_op *op, void *rep,
			      size_t rep_max, struct page ***rep_pages,
			      unsigned int *nr_rep_pages)
{
	struct ics_msg req_msg = {
		.buf = dw->body,
		.len = dw->len,
		.pages = dw->pages,
		.nr_pages = dw->nr_pages,
	};
	struct ics_msg rep_msg = { .buf = rep, .len = rep_max };
	int ret;

	if (op->rep_pages) {
		rep_msg.pages = kcalloc(op->rep_pages, sizeof(*rep_msg.pages),
					GFP_KERNEL);
		if (!rep_msg.pages)
			return -ENOMEM;
	}
	ret = op->dispatch_pages(dw->conn->node, &req_msg, &rep_msg);
	*rep_pages = rep_msg.pages;
	*nr_rep_pages = min_t(unsigned int, rep_msg.nr_pages, op->rep_pages);
	return ret;
}

static void ics_dispatch_work_fn(struct work_struct *work)
{
	struct ics_dispatch_work *dw =
		container_of(work, struct ics_dispatch_work, work);
	bool call = (dw->hdr.kind & ~ICS_KIND_PAGES) == ICS_KIND_CALL;
	bool paged = dw->hdr.kind & ICS_KIND_PAGES, rep_paged = false;
	struct page **rep_pages = NULL;
	unsigned int nr_rep_pages = 0;
	const struct ics_service *svc;
	const struct ics_op *op;
	size_t rep_max = 0;
	void *rep = NULL;
	int ret;

	op = ics_find_op(&dw->hdr, &svc);
	if (!op) {
		ics_count(ICS_CNT_UNKNOWN_OP);
		if (call)
			ics_reply(dw->conn, &dw->hdr, NULL, 0, false, NULL, 0,
				  EPROTONOSUPPORT);
		goto out;
	}
	/* @op lives in the service's module: read it before the module may go. */
	rep_max = op->rep_max;
	rep_paged = op->rep_pages;
	/* pages come exactly with the ops whose request has a pages<N> field */
	if (paged != !!op->req_pages || dw->nr_pages > op->req_pages) {
		ret = -EBADMSG;
		goto done;
	}
	if (rep_max) {
		rep = kvmalloc(rep_max, GFP_KERNEL);
		if (!rep) {
			ret = -ENOMEM;
			goto done;
		}
	}
	if (op->dispatch_pages)
		ret = ics_dispatch_pages(dw, op, rep, rep_max, &rep_pages,
					 &nr_rep_pages);
	else
		ret = op->dispatch(dw->conn->node, dw->body, dw->len, rep,
				   rep_max);
	ics_count(ICS_CNT_DISPATCHED);
done:
	module_put(svc->owner);
	if (ret == -EBADMSG)
		ics_count(ICS_CNT_MALFORMED_BODY);
	if (call && ret < 0)
		ics_reply(dw->conn, &dw->hdr, NULL, 0, false, NULL, 0, -ret);
	else if (call)
		ics_reply(dw->conn, &dw->hdr, rep, min_t(size_t, ret, rep_max),
			  rep_paged, rep_pages, nr_rep_pages, 0);
	ics_free_pages(rep_pages, nr_rep_pages);
	kvfree(rep);
out:
	ics_conn_put(dw->conn);
	kvfree(dw->body);
	ics_free_pages(dw->pages, dw->nr_pages);
	kfree(dw);
}

/* The channel a service declared, which picks its dispatch queue; -1 if none. */
static int ics_service_chan(u16 id)
{
	const struct ics_service *svc;
	int chan = -1;

	rcu_read_lock();
	svc = xa_load(&ics_services, id);
	if (svc)
		chan = svc->chan;
	rcu_read_unlock();
	return chan;
}

void ics_rx_call(struct ics_conn *conn, const struct ics_hdr *hdr,
		 void *body, size_t len, struct page **pages,
		 unsigned int nr_pages)
{
	struct ics_dispatch_work *dw;
	int chan = ics_service_chan(le16_to_cpu(hdr->service));

	/*
	 * The queue follows the service, not the channel the peer chose, and
	 * a service is only called on its own channel: a peer cannot put bulk
	 * work on the queue that carries heartbeats.
	 */
	if (chan >= 0 && chan != conn->chan) {
		ics_count(ICS_CNT_UNKNOWN_OP);
		if ((hdr->kind & ~ICS_KIND_PAGES) == ICS_KIND_CALL)
			ics_reply(conn, hdr, NULL, 0, false, NULL, 0,
				  EPROTONOSUPPORT);
		kvfree(body);
		ics_free_pages(pages, nr_pages);
		return;
	}
	dw = kmalloc(sizeof(*dw), GFP_KERNEL);
	if (!dw) {
		kvfree(body);
		ics_free_pages(pages, nr_pages);
		return;
	}
	INIT_WORK(&dw->work, ics_dispatch_work_fn);
	kref_get(&conn->ref);
	dw->conn = conn;
	dw->hdr = *hdr;
	dw->body = body;
	dw->len = len;
	dw->pages = pages;
	dw->nr_pages = nr_pages;
	queue_work(chan == ICS_CHAN_PRIO ? ics_prio_wq : ics_dispatch_wq,
		   &dw->work);
}

void ics_rx_reply(struct ics_conn *conn, const struct ics_hdr *hdr,
		  void **body, size_t len, struct page ***pages,
		  unsigned int nr_pages)
{
	u64 xid = le64_to_cpu(hdr->xid);
	u32 status = le32_to_cpu(hdr->status);
	bool paged = hdr->kind & ICS_KIND_PAGES;
	struct ics_pending *p = NULL;

	xa_lock(&conn->pending);
	if (xid <= U32_MAX)
		p = __xa_erase(&conn->pending, xid);
	if (!p) {
		xa_unlock(&conn->pending);
		ics_count(ICS_CNT_STALE_REPLIES);
		return;
	}
	if (status) {
		p->status = status < MAX_ERRNO ? -(int)status : -EPROTO;
	} else if (len > p->rep_cap) {
		p->status = -EMSGSIZE;
	} else if (paged != !!p->max_pages || nr_pages > p->max_pages) {
		/* pages come exactly with a reply that has a pages<N> field */
		ics_count(ICS_CNT_MALFORMED_BODY);
		p->status = -EBADMSG;
	} else if (p->take) {
		p->pages = *pages;
		*pages = NULL;
		p->nr_pages = nr_pages;
		p->rep = *body;
		*body = NULL;
		p->rep_len = len;
		p->status = 0;
	} else {
		memcpy(p->rep, *body, len);
		p->rep_len = len;
		p->status = 0;
	}
	complete(&p->done);
	xa_unlock(&conn->pending);
}

void ics_fail_pending(struct ics_conn *conn, int status)
{
	struct ics_pending *p;
	unsigned long xid;

	xa_lock(&conn->pending);
	xa_for_each(&conn->pending, xid, p) {
		__xa_erase(&conn->pending, xid);
		p->status = status;
		complete(&p->done);
	}
	xa_unlock(&conn->pending);
}

static bool ics_args_ok(unsigned int node, enum ics_chan chan, size_t len)
{
	return node >= 1 && node <= SSI_MAX_NODES && node != ssi_node_num() &&
	       chan < ICS_NR_CHANS && len <= ICS_MAX_BODY;
}

static int ics_call_pending(unsigned int node, enum ics_chan chan,
			    u16 service, u16 op, u16 op_version,
			    const void *req, size_t req_len, bool paged,
			    struct page *const *pages, unsigned int nr_pages,
			    struct ics_pending *p, unsigned long timeout)
{
	/* One deadline for the whole call: connect, handshake, send, reply. */
	unsigned long deadline = jiffies + timeout;
	unsigned int down_gen;
	struct ics_conn *conn;
	struct ics_hdr hdr;
	long left;
	u32 xid;
	int ret;

	if (!ics_args_ok(node, chan, req_len) || nr_pages > ICS_MAX_PAGES)
		return -EINVAL;
	down_gen = READ_ONCE(ics_peers[node].down_gen);
	ics_count(ICS_CNT_CALLS);
	conn = ics_conn_get_out(node, chan, deadline, down_gen);
	if (IS_ERR(conn)) {
		ics_count(ICS_CNT_CALL_ERRORS);
		if (PTR_ERR(conn) == -ETIMEDOUT)
			ics_count(ICS_CNT_CALL_TIMEOUTS);
		return PTR_ERR(conn);
	}
	init_completion(&p->done);
	ret = xa_alloc_cyclic(&conn->pending, &xid, p, xa_limit_32b,
			      &conn->next_xid, GFP_KERNEL);
	if (ret < 0)
		goto out_err;
	/* Pairs with the DEAD bit set before ics_fail_pending() walks. */
	if (test_bit(ICS_CONN_DEAD, &conn->flags)) {
		ret = test_bit(ICS_CONN_NODE_DOWN, &conn->flags) ? -EHOSTDOWN :
		      -ENOTCONN;
		goto out_erase;
	}
	ics_hdr_fill(&hdr, ICS_KIND_CALL | (paged ? ICS_KIND_PAGES : 0),
		     service, op, op_version,
		     req_len + (size_t)nr_pages * ICS_PAGE_SIZE, 0, xid);
	ret = ics_conn_send(conn, &hdr, req, req_len, pages, nr_pages,
			    deadline);
	if (ret)
		goto out_erase;

	left = (long)(deadline - jiffies);
	left = wait_for_completion_killable_timeout(&p->done, left > 0 ? left : 1);
	xa_lock(&conn->pending);
	if (__xa_erase(&conn->pending, xid)) {
		/* Nobody completed us: we own the outcome. */
		xa_unlock(&conn->pending);
		ret = left < 0 ? -EINTR : -ETIMEDOUT;
		if (ret == -ETIMEDOUT)
			ics_count(ICS_CNT_CALL_TIMEOUTS);
		goto out_err;
	}
	xa_unlock(&conn->pending);
	ret = p->status;
	if (ret)
		ics_count(ICS_CNT_CALL_ERRORS);
	ics_conn_put(conn);
	return ret;

out_erase:
	xa_erase(&conn->pending, xid);
out_err:
	ics_count(ICS_CNT_CALL_ERRORS);
	ics_conn_put(conn);
	return ret;
}

int ics_call(unsigned int node, enum ics_chan chan, u16 service, u16 op,
	     u16 op_version, const void *req, size_t req_len, void *rep,
	     size_t rep_cap, size_t *rep_len, unsigned long timeout)
{
	struct ics_pending p = { .rep = rep, .rep_cap = rep_cap };
	int ret;

	ret = ics_call_pending(node, chan, service, op, op_version, req,
			       req_len, false, NULL, 0, &p, timeout);
	if (!ret && rep_len)
		*rep_len = p.rep_len;
	return ret;
}
EXPORT_SYMBOL_GPL(ics_call);

int ics_call_take(unsigned int node, enum ics_chan chan, u16 service, u16 op,
		  u16 op_version, const void *req, size_t req_len, void **rep,
		  size_t rep_cap, size_t *rep_len, unsigned long timeout)
{
	struct ics_pending p = { .rep_cap = rep_cap, .take = true };
	int ret;

	*rep = NULL;
	ret = ics_call_pending(node, chan, service, op, op_version, req,
			       req_len, false, NULL, 0, &p, timeout);
	if (!ret) {
		*rep = p.rep;
		*rep_len = p.rep_len;
	}
	return ret;
}
EXPORT_SYMBOL_GPL(ics_call_take);

int ics_call_pages(unsigned int node, enum ics_chan chan, u16 service,
		   u16 op, u16 op_version, const void *req, size_t req_len,
		   struct page *const *req_pages, unsigned int nr_req_pages,
		   struct ics_msg *rep, size_t rep_cap,
		   unsigned int rep_max_pages, unsigned long timeout)
{
	struct ics_pending p = {
		.rep_cap = rep_cap,
		.take = true,
		.max_pages = rep_max_pages,
	};
	int ret;

	memset(rep, 0, sizeof(*rep));
	if (rep_max_pages > ICS_MAX_PAGES)
		return -EINVAL;
	ret = ics_call_pending(node, chan, service, op, op_version, req,
			       req_len, !!req_pages, req_pages,
			       nr_req_pages, &p, timeout);
	if (!ret) {
		rep->buf = p.rep;
		rep->len = p.rep_len;
		rep->pages = p.pages;
		rep->nr_pages = p.nr_pages;
	}
	return ret;
}
EXPORT_SYMBOL_GPL(ics_call_pages);

int ics_send(unsigned int node, enum ics_chan chan, u16 service, u16 op,
	     u16 op_version, const void *msg, size_t len)
{
	unsigned long deadline = jiffies + ICS_SEND_TIMEOUT;
	struct ics_conn *conn;
	struct ics_hdr hdr;
	int ret;

	if (!ics_args_ok(node, chan, len))
		return -EINVAL;
	conn = ics_conn_get_out(node, chan, deadline,
				READ_ONCE(ics_peers[node].down_gen));
	if (IS_ERR(conn))
		return PTR_ERR(conn);
	ics_hdr_fill(&hdr, ICS_KIND_ONEWAY, service, op, op_version, len, 0, 0);
	ret = ics_conn_send(conn, &hdr, msg, len, NULL, 0, deadline);
	if (!ret)
		ics_count(ICS_CNT_ONEWAY_SENT);
	ics_conn_put(conn);
	return ret;
}
EXPORT_SYMBOL_GPL(ics_send);

void ics_rpc_exit(void)
{
	WARN_ON(!xa_empty(&ics_services));
}
