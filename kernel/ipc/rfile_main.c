// SPDX-License-Identifier: GPL-2.0-only
/*
 * rfile, ssikit remote file access (kernel/include/rfile.h): a node holds
 * an open file and other nodes use it through proxy files.  Module setup,
 * the ICS service, node-down cleanup, SSISYS_RFILE_GETFD and counters.
 *
 * The protocol (ICS service `rfile`, id 5, bulk channel; rfile.ics):
 *
 *   Exports.  The holding node H keeps a table id -> (open file, a
 *   reference count per node).  rfile_export() / `get` add one for a node,
 *   a proxy's last fput sends `put` for its own node, H's nodedown
 *   notifier drops all of a dead node's.  The file is released (fput)
 *   when no node holds one.  Every op names the export by id and H serves
 *   it only if the calling node holds a reference (else EBADF, counted in
 *   /sys/kernel/ssi/rfile/bad_handle); ids are never reused while H runs.
 *
 *   Ops.  read, write, poll, ioctl, fsync, llseek, lock and stat run on
 *   H in an ICS dispatch worker, in full or not at all, and never wait for
 *   another party: reads and writes of a file that can block (anything
 *   but regular files and block devices) use RWF_NOWAIT where the file
 *   supports it (pipes, sockets) and otherwise check vfs_poll() first
 *   (ttys); a file that is not ready answers EAGAIN.  Every request
 *   carries the proxy's O_APPEND and O_NONBLOCK, applied to the held file
 *   first when they changed on the proxy since its last request, so
 *   fcntl(F_SETFL) and FIONBIO on a proxy reach the open file description
 *   (at the next op).  Data moves in chunks of at most 64 KiB
 *   per call; a positioned read or write of a regular file (not
 *   O_APPEND) longer than that keeps up to four chunk calls in flight
 *   from the proxy, which H may serve at once (rfile_proxy.c,
 *   "Pipelined I/O").  A seekable file has one position, the held file's f_pos
 *   (the open file description's, shared with H's users of it): a
 *   proxy's read/write uses and advances it on H, under its f_pos_lock as
 *   fdget_pos() takes it (read/write flag RFILE_IO_SHARED), and the proxy's
 *   f_pos mirrors the reply; pread/pwrite send their offset (RFILE_IO_POS)
 *   and leave it alone.  The proxy tells them apart by ki_pos: read(2)
 *   passes the proxy's f_pos (a pread at exactly that offset is taken for
 *   a read: README.md).  llseek is vfs_llseek of the held file itself.
 *   O_APPEND appends at H's end of file.  Record locks and flock are
 *   taken on H's file without waiting (EAGAIN: F_SETLKW and a blocking
 *   flock retry from the client with a backoff); a POSIX F_SETLKW that
 *   conflicts stays on H as a blocked request of H's kernel until it is
 *   taken or given up (rfile_lkwait.c), so H's deadlock detection counts
 *   it (EDEADLK) and the lock's release sends a `ready` that ends the
 *   backoff; POSIX locks belong to a
 *   per-(node, process) owner on H, dropped by the proxy's flush at
 *   close, by the node's nodedown, and at the export's release.
 *
 *   Waiting.  Before a read, write or poll of a file that can block, H
 *   subscribes the calling node: it hooks the file's wait queues once (a
 *   poll_table of its own), and every wakeup queues a work item that
 *   sends one-way `ready` (id, vfs_poll mask) to each subscribed node.
 *   The client notes its proxy's ready sequence number before sending the
 *   op; on EAGAIN it sleeps interruptibly until the number changes (or H
 *   goes down) and retries.  So the blocking happens on the client, in
 *   the calling task: a signal ends the wait with -ERESTARTSYS (restarted
 *   under SA_RESTART, EINTR otherwise), as a local pipe or tty read.  A
 *   proxy's ->poll waits on the same queue and asks H for the mask; epoll
 *   and select are woken by `ready`.  SIGPIPE is raised on the client.
 *
 *   Failure.  ICS fails calls pending to a node that goes down
 *   (EHOSTDOWN); rfile's CLMS nodedown marks that node's proxies dead and
 *   wakes their waiters: every op then fails with EIO (poll reports
 *   ERR|HUP).  On the holder, a dead node's references are dropped.
 *
 *   Credentials.  Ops on an open file run without the caller's
 *   credentials, as a local fd does after open; getfd carries them
 *   (vproc.ics layout) and the holder checks ptrace-attach under them.
 *   ioctls are limited to a table of tty and FIONREAD-style commands.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>

#include "clms.h"
#include "ics.h"
#include "ssi_core.h"
#include "rfile_gen.h"
#include "rfile_ics.h"
#include "rfile_internal.h"

atomic64_t rfile_counters[RFILE_NR_COUNTERS];

static const char *const rfile_counter_names[RFILE_NR_COUNTERS] = {
	[RFILE_CNT_EXPORTS] = "exports",
	[RFILE_CNT_RELEASED] = "released",
	[RFILE_CNT_BAD_HANDLE] = "bad_handle",
	[RFILE_CNT_BAD_REQUEST] = "bad_request",
	[RFILE_CNT_READY_SENT] = "ready_sent",
	[RFILE_CNT_READY_RX] = "ready_rx",
	[RFILE_CNT_PROXIES] = "proxies",
};

static struct workqueue_struct *rfile_wq;

unsigned int rfile_self(void)
{
	return ssi_node_num();
}

struct workqueue_struct *rfile_workqueue(void)
{
	return rfile_wq;
}

/* ---- ICS handlers not tied to one op file ---- */

int rfile_srv_get(unsigned int from, const struct rfile_get_req *req,
		  struct rfile_get_rep *rep)
{
	return rfile_ref_get(req->id, from, req->to_node);
}

int rfile_srv_put(unsigned int from, const struct rfile_put_req *req,
		  struct rfile_put_rep *rep)
{
	return rfile_ref_put(req->id, from, req->to_node);
}

void rfile_srv_ready(unsigned int from, const struct rfile_ready_req *msg)
{
	rfile_proxy_ready(from, msg->id, msg->mask);
}

/* ---- membership ---- */

static void rfile_nodeup(unsigned int node, u64 transition)
{
}

static void rfile_nodedown(unsigned int node, u64 transition)
{
	rfile_proxy_node_down(node);
	rfile_srv_node_down(node);
}

static struct clms_notifier rfile_notifier = {
	.nodeup = rfile_nodeup,
	.nodedown = rfile_nodedown,
};

/* ---- SSISYS_RFILE_GETFD ---- */

/* -E2BIG: a caller in more groups than a request carries. */
static int rfile_creds_current(struct rfile_getfd_req *r)
{
	struct ssi_creds c;
	int ret = ssi_creds_current(&c);

	if (!ret)
		SSI_CREDS_TO_REQ(r, &c);
	return ret;
}

static struct file *rfile_getfd_remote(unsigned int node, pid_t pid, int fd)
{
	struct rfile_getfd_req *req;
	struct rfile_getfd_rep rep;
	struct rfile_handle h;
	struct file *file;
	int ret;

	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return ERR_PTR(-ENOMEM);
	req->pid = pid;
	req->fd = fd;
	/* A caller in more than 64 groups is refused, never sent with fewer. */
	ret = rfile_creds_current(req) ? -EPERM : 0;
	if (!ret)
		ret = ics_rfile_getfd(node, req, &rep, RFILE_TIMEOUT);
	kfree(req);
	if (ret) {
		/* As pidfd_getfd: a process on an unreachable node is gone. */
		if (rfile_errno(ret) == -EIO)
			ret = -ESRCH;
		return ERR_PTR(ret);
	}
	h.node = node;
	h.id = rep.id;
	file = rfile_import(&h, rep.f_flags);
	/* The node went down between getfd and the proxy's stat. */
	if (file == ERR_PTR(-EIO))
		return ERR_PTR(-ESRCH);
	return file;
}

static long rfile_sys_getfd(void __user *buf, size_t len)
{
	struct ssi_rfile_getfd g;
	struct file *file;
	int fd, ret;

	if (len != sizeof(g))
		return -EINVAL;
	if (copy_from_user(&g, buf, sizeof(g)))
		return -EFAULT;
	if (g.flags & ~SSI_RFILE_GETFD_CLOEXEC || g.node > SSI_MAX_NODES)
		return -EINVAL;
	if (g.fd < 0)
		return -EBADF;
	if (!g.node || g.node == rfile_self()) {
		ret = rfile_getfd_local(g.pid, g.fd, current_cred(), &file);
		if (ret)
			return ret;
	} else {
		file = rfile_getfd_remote(g.node, g.pid, g.fd);
		if (IS_ERR(file))
			return PTR_ERR(file);
	}
	fd = get_unused_fd_flags((g.flags & SSI_RFILE_GETFD_CLOEXEC) ?
				 O_CLOEXEC : 0);
	if (fd < 0) {
		fput(file);
		return fd;
	}
	fd_install(fd, file);
	return fd;
}

static const struct ssisys_handler rfile_getfd_handler = {
	.owner = THIS_MODULE,
	.call = rfile_sys_getfd,
};

/* ---- sysfs: /sys/kernel/ssi/rfile ---- */

static struct kobject *rfile_kobj;

static ssize_t rfile_counter_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	unsigned int i;

	for (i = 0; i < RFILE_NR_COUNTERS; i++)
		if (!strcmp(attr->attr.name, rfile_counter_names[i]))
			return sysfs_emit(buf, "%lld\n",
					  atomic64_read(&rfile_counters[i]));
	return -EINVAL;
}

#define RFILE_COUNTER_ATTR(n) \
	static struct kobj_attribute rfile_attr_##n = \
		__ATTR(n, 0444, rfile_counter_show, NULL)

RFILE_COUNTER_ATTR(exports);
RFILE_COUNTER_ATTR(released);
RFILE_COUNTER_ATTR(bad_handle);
RFILE_COUNTER_ATTR(bad_request);
RFILE_COUNTER_ATTR(ready_sent);
RFILE_COUNTER_ATTR(ready_rx);
RFILE_COUNTER_ATTR(proxies);

static ssize_t exported_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&rfile_counters[RFILE_CNT_EXPORTS]) -
			  atomic64_read(&rfile_counters[RFILE_CNT_RELEASED]));
}

static struct kobj_attribute rfile_attr_exported = __ATTR_RO(exported);

static ssize_t table_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	return rfile_table_show(buf);
}

static struct kobj_attribute rfile_attr_table = __ATTR(table, 0400,
						       table_show, NULL);

/*
 * Test aid (rfile.test_knobs=1, root): "<node> <id> [op]" sends a request
 * for export <id> to <node> as this node, without holding a reference
 * (op: stat, the default, read, put; big: a read of more than a chunk;
 * short: a truncated stat body); the write fails with the reply's errno.
 * Used to check that holders refuse such requests.
 */
static ssize_t test_call_store(struct kobject *kobj,
			       struct kobj_attribute *attr, const char *buf,
			       size_t count)
{
	struct rfile_read_rep *rrep;
	unsigned int node;
	char op[8] = "stat";
	u64 id;
	int ret;

	if (!rfile_test_knobs || !capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (sscanf(buf, "%u %llu %7s", &node, &id, op) < 2 || !node ||
	    node > SSI_MAX_NODES)
		return -EINVAL;
	if (!strcmp(op, "stat")) {
		struct rfile_stat_req req = { .id = id };
		struct rfile_stat_rep rep;

		ret = ics_rfile_stat(node, &req, &rep, RFILE_TIMEOUT);
	} else if (!strcmp(op, "read")) {
		struct rfile_read_req req = { .id = id, .count = 1 };

		rrep = kvmalloc(sizeof(*rrep), GFP_KERNEL);
		if (!rrep)
			return -ENOMEM;
		ret = ics_rfile_read(node, &req, rrep, RFILE_TIMEOUT);
		kvfree(rrep);
	} else if (!strcmp(op, "big")) {
		struct rfile_read_req req = { .id = id, .count = RFILE_CHUNK + 1 };

		rrep = kvmalloc(sizeof(*rrep), GFP_KERNEL);
		if (!rrep)
			return -ENOMEM;
		ret = ics_rfile_read(node, &req, rrep, RFILE_TIMEOUT);
		kvfree(rrep);
	} else if (!strcmp(op, "short")) {
		u8 body[3] = { 0 };	/* a stat request is 8 bytes */
		u8 rep[RFILE_STAT_REP_MAX];
		size_t len;

		ret = ics_call(node, ICS_CHAN_BULK, RFILE_ICS_SERVICE,
			       RFILE_ICS_OP_STAT, RFILE_ICS_OP_STAT_VERSION,
			       body, sizeof(body), rep, sizeof(rep), &len,
			       RFILE_TIMEOUT);
	} else if (!strcmp(op, "put")) {
		struct rfile_put_req req = { .id = id, .to_node = rfile_self() };
		struct rfile_put_rep rep;

		ret = ics_rfile_put(node, &req, &rep, RFILE_TIMEOUT);
	} else {
		return -EINVAL;
	}
	return ret ? ret : count;
}

static struct kobj_attribute rfile_attr_test_call = __ATTR_WO(test_call);

/*
 * Test aid (rfile.test_knobs=1, root): "<ms>" pauses every read or write
 * of a file with no O_NONBLOCK twin that long after its readiness check
 * (0: off), to open the window in which another reader on the holder
 * takes the data; reads "<ms> <pauses so far>".
 */
static ssize_t test_io_delay_ms_show(struct kobject *kobj,
				     struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u %d\n", READ_ONCE(rfile_test_io_delay_ms),
			  atomic_read(&rfile_test_io_delays));
}

static ssize_t test_io_delay_ms_store(struct kobject *kobj,
				      struct kobj_attribute *attr,
				      const char *buf, size_t count)
{
	unsigned int ms;
	int ret;

	if (!rfile_test_knobs || !capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = kstrtouint(buf, 10, &ms);
	if (ret)
		return ret;
	if (ms > 4000)		/* below RFILE_TIMEOUT */
		return -EINVAL;
	WRITE_ONCE(rfile_test_io_delay_ms, ms);
	return count;
}

static struct kobj_attribute rfile_attr_test_io_delay_ms =
	__ATTR(test_io_delay_ms, 0600, test_io_delay_ms_show,
	       test_io_delay_ms_store);

static struct attribute *rfile_attrs[] = {
	&rfile_attr_exports.attr,
	&rfile_attr_released.attr,
	&rfile_attr_bad_handle.attr,
	&rfile_attr_bad_request.attr,
	&rfile_attr_ready_sent.attr,
	&rfile_attr_ready_rx.attr,
	&rfile_attr_proxies.attr,
	&rfile_attr_exported.attr,
	&rfile_attr_table.attr,
	&rfile_attr_test_call.attr,
	&rfile_attr_test_io_delay_ms.attr,
	NULL,
};

static const struct attribute_group rfile_group = {
	.attrs = rfile_attrs,
};

int rfile_init(void)
{
	int ret;

	if (!rfile_self()) {
		pr_err("this node is not clustered (no ssi.node=)\n");
		return -ENODEV;
	}
	rfile_wq = alloc_workqueue("rfile", WQ_UNBOUND, 0);
	if (!rfile_wq)
		return -ENOMEM;
	ret = rfile_srv_init();
	if (ret)
		goto err_wq;
	ret = rfile_proxy_init();
	if (ret)
		goto err_srv;
	rfile_kobj = kobject_create_and_add("rfile", ssi_sysfs_root());
	if (!rfile_kobj) {
		ret = -ENOMEM;
		goto err_proxy;
	}
	ret = sysfs_create_group(rfile_kobj, &rfile_group);
	if (ret)
		goto err_kobj;
	ret = ics_register_service(&rfile_ics_service);
	if (ret)
		goto err_kobj;
	ret = clms_register_notifier(&rfile_notifier);
	if (ret)
		goto err_service;
	ret = ssisys_register(SSISYS_RFILE_GETFD, &rfile_getfd_handler);
	if (ret)
		goto err_notifier;
	pr_info("remote file access on node %u\n", rfile_self());
	return 0;

err_notifier:
	clms_unregister_notifier(&rfile_notifier);
err_service:
	ics_unregister_service(&rfile_ics_service);
err_kobj:
	kobject_put(rfile_kobj);
err_proxy:
	rfile_proxy_exit();
err_srv:
	rfile_srv_exit();
err_wq:
	destroy_workqueue(rfile_wq);
	return ret;
}

void rfile_exit(void)
{
	ssisys_unregister(SSISYS_RFILE_GETFD, &rfile_getfd_handler);
	clms_unregister_notifier(&rfile_notifier);
	ics_unregister_service(&rfile_ics_service);
	kobject_put(rfile_kobj);
	rfile_srv_exit();
	rfile_proxy_exit();
	destroy_workqueue(rfile_wq);
}
