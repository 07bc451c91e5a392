// SPDX-License-Identifier: GPL-2.0-only
/*
 * ics_test: the ICS self-test service.  Serves null, echo, ping and info,
 * and lets root drive back-to-back calls against another node through
 * ssisys(SSISYS_ICS_TEST) for tests and the ICS benchmark.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/jiffies.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/utsname.h>

#include "ics.h"
#include "ssi_core.h"
#include "ics_test_gen.h"
#include "ics_test_ics.h"

static atomic64_t ics_test_pings;

int ics_test_srv_null(unsigned int from, const struct ics_test_null_req *req,
		      struct ics_test_null_rep *rep)
{
	return 0;
}

int ics_test_srv_echo(unsigned int from, const struct ics_test_echo_req *req,
		      struct ics_test_echo_rep *rep)
{
	rep->seq = req->seq;
	rep->data_len = req->data_len;
	memcpy(rep->data, req->data, req->data_len);
	return 0;
}

int ics_test_srv_echo_pages(unsigned int from,
			    const struct ics_test_echo_pages_req *req,
			    struct ics_test_echo_pages_rep *rep)
{
	u32 i;

	rep->seq = req->seq;
	for (i = 0; i < req->data_count; i++) {
		/* the reply's own reference: ICS puts the request's */
		get_page(req->data[i]);
		rep->data[i] = req->data[i];
	}
	rep->data_count = req->data_count;
	return 0;
}

void ics_test_srv_ping(unsigned int from, const struct ics_test_ping_req *msg)
{
	atomic64_inc(&ics_test_pings);
}

int ics_test_srv_info(unsigned int from, const struct ics_test_info_req *req,
		      struct ics_test_info_rep *rep)
{
	u64 nodes = ics_configured_nodes();
	unsigned int node;

	rep->node = ssi_node_num();
	strscpy(rep->release, utsname()->release, sizeof(rep->release));
	rep->peers_count = 0;
	for (node = 1; node <= SSI_MAX_NODES; node++)
		if (nodes & BIT_ULL(node))
			rep->peers[rep->peers_count++] = node;
	return 0;
}

struct ics_test_bufs {
	struct ics_test_echo_req req;
	struct ics_test_echo_rep rep;
	struct ics_test_echo_pages_req preq;
	struct ics_test_echo_pages_rep prep;
};

/* An echo_pages call: its reply must be the pages sent, byte for byte. */
static int ics_test_echo_pages(const struct ssi_ics_test *t, u32 seq,
			       struct ics_test_bufs *b, unsigned long timeout)
{
	u32 i;
	int ret;

	b->preq.seq = seq;
	ret = ics_ics_test_echo_pages(t->node, &b->preq, &b->prep, timeout);
	if (ret)
		return ret;
	if (b->prep.seq != seq || b->prep.data_count != b->preq.data_count)
		ret = -EIO;
	for (i = 0; !ret && i < b->prep.data_count; i++) {
		if (memcmp(page_address(b->prep.data[i]),
			   page_address(b->preq.data[i]), PAGE_SIZE))
			ret = -EIO;
	}
	ics_put_pages(b->prep.data, b->prep.data_count);
	return ret;
}

static int ics_test_one(const struct ssi_ics_test *t, u32 seq,
			struct ics_test_bufs *b, unsigned long timeout)
{
	struct ics_test_null_req nreq = { };
	struct ics_test_null_rep nrep;
	struct ics_test_ping_req ping = { .seq = seq, .from = ssi_node_num() };
	int ret;

	switch (t->op) {
	case SSI_ICS_TEST_NULL:
		return ics_ics_test_null(t->node, &nreq, &nrep, timeout);
	case SSI_ICS_TEST_PING:
		return ics_ics_test_ping(t->node, &ping);
	case SSI_ICS_TEST_ECHO_PAGES:
		return ics_test_echo_pages(t, seq, b, timeout);
	default:
		b->req.seq = seq;
		ret = ics_ics_test_echo(t->node, &b->req, &b->rep, timeout);
		if (ret)
			return ret;
		if (b->rep.seq != seq || b->rep.data_len != b->req.data_len ||
		    memcmp(b->rep.data, b->req.data, b->req.data_len))
			return -EIO;
		return 0;
	}
}

static long ics_test_ssisys(void __user *buf, size_t len)
{
	struct ics_test_bufs *b = NULL;
	struct ssi_ics_test t;
	unsigned long timeout;
	ktime_t start;
	u32 i;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (len != sizeof(t))
		return -EINVAL;
	if (copy_from_user(&t, buf, sizeof(t)))
		return -EFAULT;
	if (t.node < 1 || t.node > SSI_MAX_NODES || t.op < SSI_ICS_TEST_NULL ||
	    t.op > SSI_ICS_TEST_ECHO_PAGES || t.count < 1 ||
	    t.count > 1000000 || t.size > sizeof(b->req.data) ||
	    t.timeout_ms < 1 || t.timeout_ms > 60000 || t.reserved ||
	    (t.op == SSI_ICS_TEST_ECHO_PAGES && t.size % PAGE_SIZE))
		return -EINVAL;
	if (t.node == ssi_node_num())
		return -EINVAL;

	if (t.op == SSI_ICS_TEST_ECHO || t.op == SSI_ICS_TEST_ECHO_PAGES) {
		b = kvzalloc(sizeof(*b), GFP_KERNEL);
		if (!b)
			return -ENOMEM;
		b->req.data_len = t.size;
		for (i = 0; i < t.size; i++)
			b->req.data[i] = i * 7 + 1;
	}
	if (t.op == SSI_ICS_TEST_ECHO_PAGES) {
		for (i = 0; i < t.size / PAGE_SIZE; i++) {
			b->preq.data[i] = alloc_page(GFP_KERNEL);
			if (!b->preq.data[i]) {
				ret = -ENOMEM;
				goto out;
			}
			b->preq.data_count++;
			memcpy(page_address(b->preq.data[i]),
			       b->req.data + i * PAGE_SIZE, PAGE_SIZE);
		}
	}
	timeout = msecs_to_jiffies(t.timeout_ms);
	t.errors = 0;
	t.last_error = 0;
	start = ktime_get();
	for (i = 0; i < t.count; i++) {
		ret = ics_test_one(&t, i, b, timeout);
		if (ret) {
			t.errors++;
			t.last_error = ret;
		}
		if (fatal_signal_pending(current))
			break;
		cond_resched();
	}
	t.elapsed_ns = ktime_to_ns(ktime_sub(ktime_get(), start));
	ret = copy_to_user(buf, &t, sizeof(t)) ? -EFAULT : 0;
out:
	if (b)
		ics_put_pages(b->preq.data, b->preq.data_count);
	kvfree(b);
	return ret;
}

static const struct ssisys_handler ics_test_handler = {
	.owner = THIS_MODULE,
	.call = ics_test_ssisys,
};

static ssize_t pings_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(&ics_test_pings));
}

static struct kobj_attribute pings_attr = __ATTR_RO(pings);
static struct kobject *ics_test_kobj;

int ics_test_init(void)
{
	int ret;

	ics_test_kobj = kobject_create_and_add("ics_test", ssi_sysfs_root());
	if (!ics_test_kobj)
		return -ENOMEM;
	ret = sysfs_create_file(ics_test_kobj, &pings_attr.attr);
	if (ret)
		goto err_kobj;
	ret = ics_register_service(&ics_test_ics_service);
	if (ret)
		goto err_file;
	ret = ssisys_register(SSISYS_ICS_TEST, &ics_test_handler);
	if (ret)
		goto err_service;
	return 0;

err_service:
	ics_unregister_service(&ics_test_ics_service);
err_file:
	sysfs_remove_file(ics_test_kobj, &pings_attr.attr);
err_kobj:
	kobject_put(ics_test_kobj);
	return ret;
}

void ics_test_exit(void)
{
	ssisys_unregister(SSISYS_ICS_TEST, &ics_test_handler);
	ics_unregister_service(&ics_test_ics_service);
	sysfs_remove_file(ics_test_kobj, &pings_attr.attr);
	kobject_put(ics_test_kobj);
}
