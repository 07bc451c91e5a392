// SPDX-License-Identifier: GPL-2.0-only
/*
 * Clusterwide mounts: the CFS mounts made on every node (ssictl cfs mount
 * adds one once it has mounted it on every UP node, and a server's plain
 * `mount -t cfs /path DIR` of its own directory adds itself), kept in a
 * table on every node, so that a node that joins later, or comes back
 * after a crash, mounts them too.
 *
 * Table.  Entries (server, path, dir), one per dir, at most CFS_CM_MAX,
 * paths absolute, without white space or control characters, at most
 * CFS_CM_PATH bytes.  /sys/kernel/ssi/cfs/cluster_mounts lists them, one
 * "SERVER:PATH DIR STATE" line each, and takes "add SERVER:PATH DIR",
 * "del DIR" or "drop DIR" (del, and every node unmounts it), with
 * CAP_SYS_ADMIN.  States on a node: pending (to be mounted here once the
 * server is UP), mounting (the helper runs), mounted (the helper mounted
 * it, or found a CFS mount at DIR), failed (the helper's status, logged;
 * not tried again until the entry is added again).
 *
 * Messages (cfs.ics).  cmount(add, server, path, dir, credentials): a
 * change of the table (add 1, del 0, drop 2), sent by the node where it
 * was made to every other UP node, which checks CAP_SYS_ADMIN under the
 * sender's credentials, as a local change is checked, and applies it.
 * cmounts(index) -> (total, server, path, dir): the entry at @index of the
 * callee's table.
 *
 * Joining.  At the nodeup of node Y (and, when this module loads, for
 * every node already UP), a node sends Y every entry of its table
 * (cmount, as root: the table is the cluster's) and reads Y's (cmounts),
 * adding what it lacks.  Mounting.  An entry a node adds, from any source,
 * is pending there; a usermode helper mounts it (mkdir -p DIR; mount -t
 * cfs SERVER:PATH DIR; nothing if a CFS mount is at DIR already) once the
 * server is UP, and an entry whose server is down waits for its nodeup.
 * One work item does the sends, reads and mounts, so no CLMS callback and
 * no ICS handler waits for a helper.  Removing an entry (del) unmounts
 * nothing: ssictl cfs umount removes it, then unmounts DIR on every UP
 * node.  A drop is unmounted by that work item on every node that gets it.
 *
 * A server's plain mount.  `mount -t cfs /path DIR` on the server (the
 * "/path" form: its own directory) makes it clusterwide, as the issue's
 * OpenSSI did: the kernel knows the source but not DIR, so once the mount
 * is made, the work item runs a helper that finds DIR in /proc/mounts and
 * adds "SERVER:/path DIR" (its own node mounts nothing more: a CFS mount
 * is at DIR).  When that super block goes (its umount), the helper drops
 * every entry of SERVER:/path whose DIR no longer has a CFS mount here, so
 * every node unmounts it too.  The kernel cannot tell which DIR that super
 * block was at, so an entry of the same source that ssictl added and an
 * admin unmounted on the server by hand goes with it.  A NODE:/path mount
 * stays that node's.
 *
 * Races.  A change and a join crossing: the changer records the change
 * before it lists the UP nodes to send it to; if the joiner is not among
 * them, the changer's nodeup of the joiner comes after that list, so the
 * changer's send of its table to the joiner carries the change.  A joiner
 * whose module is not loaded yet drops such sends; it reads every UP
 * node's table when it loads (its ICS service registered first, so a
 * change made meanwhile reaches it as a send).  Two nodes changing the
 * same DIR at once: each node keeps the last it applied; the tables agree
 * again at the next change of that DIR.  Node failure: every node keeps
 * the whole table; a server going down keeps its entries (its clients'
 * mounts are EIO until it is back, cfs_main.c), and a node coming back
 * gets the table from the others and mounts the lot, its own exports
 * included.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/umh.h>
#include <linux/workqueue.h>

#include "clms.h"
#include "cfs_internal.h"

#define CFS_CM_MAX	16
#define CFS_CM_PATH	1024	/* string<1024> path, dir in cfs.ics */
/* The longest state a line shows: "failed 2147483647". */
#define CFS_CM_STATE	18

/* cmount's @add: what a change of the table does. */
enum cfs_cm_change {
	CFS_CM_CHANGE_DEL,
	CFS_CM_CHANGE_ADD,
	CFS_CM_CHANGE_DROP,
};

enum cfs_cm_state {
	CFS_CM_PENDING,
	CFS_CM_MOUNTING,
	CFS_CM_MOUNTED,
	CFS_CM_FAILED,
};

struct cfs_cmount {
	struct list_head link;
	unsigned int server;
	enum cfs_cm_state state;
	int status;			/* the helper's, when failed */
	char *path;
	char *dir;
};

/* Bounded by the listing's one page. */
static LIST_HEAD(cfs_cms);
static unsigned int cfs_nr_cms;
static size_t cfs_cm_text;		/* the listing's length, at most */
static bool cfs_cm_stopping;
static DEFINE_MUTEX(cfs_cm_lock);
/* Nodes to send the table to and read theirs (bit n: node n). */
static unsigned long cfs_cm_sync;
static struct work_struct cfs_cm_work;

/* What the work item runs a helper for, besides mounting entries. */
enum cfs_cm_job_kind {
	CFS_CM_ANNOUNCE,	/* a plain mount of SERVER:PATH was made here */
	CFS_CM_WITHDRAW,	/* one went */
	CFS_CM_UNMOUNT,		/* a drop: unmount SERVER:PATH from DIR */
};

struct cfs_cm_job {
	struct list_head link;
	enum cfs_cm_job_kind kind;
	char *src;		/* "SERVER:PATH" */
	char *arg;		/* ANNOUNCE: the mount's source; UNMOUNT: DIR */
};

/* Under cfs_cm_lock; at most CFS_CM_JOBS (more are dropped, logged). */
static LIST_HEAD(cfs_cm_jobs);
static unsigned int cfs_nr_cm_jobs;
#define CFS_CM_JOBS	64

static size_t cfs_cm_line_len(unsigned int server, const char *path,
			      const char *dir)
{
	/* "SERVER:PATH DIR STATE\n", SERVER at most 2 digits */
	return 3 + strlen(path) + 1 + strlen(dir) + 1 + CFS_CM_STATE + 1;
}

/* An absolute path of printable characters other than space, bounded. */
static bool cfs_cm_path_ok(const char *p)
{
	size_t len = strnlen(p, CFS_CM_PATH + 1);

	if (p[0] != '/' || len > CFS_CM_PATH)
		return false;
	for (; *p; p++)
		if (!isgraph(*p))
			return false;
	return true;
}

static bool cfs_cm_entry_ok(unsigned int server, const char *path,
			    const char *dir)
{
	return server >= 1 && server < BITS_PER_LONG &&
	       cfs_cm_path_ok(path) && cfs_cm_path_ok(dir);
}

static struct cfs_cmount *cfs_cm_find(const char *dir)
{
	struct cfs_cmount *cm;

	list_for_each_entry(cm, &cfs_cms, link)
		if (!strcmp(cm->dir, dir))
			return cm;
	return NULL;
}

/* An entry's memory, whole or partly allocated (NULL: nothing). */
static void cfs_cm_entry_free(struct cfs_cmount *cm)
{
	if (!cm)
		return;
	kfree(cm->path);
	kfree(cm->dir);
	kfree(cm);
}

static void cfs_cm_free(struct cfs_cmount *cm)
{
	cfs_cm_text -= cfs_cm_line_len(cm->server, cm->path, cm->dir);
	cfs_nr_cms--;
	list_del(&cm->link);
	cfs_cm_entry_free(cm);
}

/*
 * Adds (server, path, dir), pending, or finds it there already; an entry
 * at @dir with another source is replaced.  -ENOSPC: the table is full.
 */
static int cfs_cm_add(unsigned int server, const char *path, const char *dir)
{
	struct cfs_cmount *cm, *old;
	size_t need = cfs_cm_line_len(server, path, dir);
	int ret = 0;

	cm = kzalloc(sizeof(*cm), GFP_KERNEL);
	if (cm) {
		cm->path = kstrdup(path, GFP_KERNEL);
		cm->dir = kstrdup(dir, GFP_KERNEL);
	}
	if (!cm || !cm->path || !cm->dir) {
		cfs_cm_entry_free(cm);
		return -ENOMEM;
	}
	cm->server = server;
	cm->state = CFS_CM_PENDING;

	mutex_lock(&cfs_cm_lock);
	old = cfs_cm_find(dir);
	if (cfs_cm_stopping) {
		ret = -ESHUTDOWN;
	} else if (old && old->server == server && !strcmp(old->path, path)) {
		ret = 1;	/* known: nothing to do */
	} else {
		if (old)
			cfs_cm_free(old);
		if (cfs_nr_cms >= CFS_CM_MAX ||
		    cfs_cm_text + need > PAGE_SIZE) {
			ret = -ENOSPC;
		} else {
			list_add_tail(&cm->link, &cfs_cms);
			cfs_nr_cms++;
			cfs_cm_text += need;
			cm = NULL;
		}
	}
	if (!ret)
		schedule_work(&cfs_cm_work);
	mutex_unlock(&cfs_cm_lock);
	cfs_cm_entry_free(cm);	/* not added */
	return ret < 0 ? ret : 0;
}

static int cfs_cm_del(const char *dir)
{
	struct cfs_cmount *cm;
	int ret = -ENOENT;

	mutex_lock(&cfs_cm_lock);
	cm = cfs_cm_find(dir);
	if (cm) {
		cfs_cm_free(cm);
		ret = 0;
	}
	mutex_unlock(&cfs_cm_lock);
	return ret;
}

/* A job's memory, whole or partly allocated (NULL: nothing). */
static void cfs_cm_job_free(struct cfs_cm_job *job)
{
	if (!job)
		return;
	kfree(job->src);
	kfree(job->arg);
	kfree(job);
}

/*
 * Queues a helper run of @kind about @server's @path (@arg: the mount's
 * source for an announce, DIR for an unmount) for the work item.
 */
static void cfs_cm_job(enum cfs_cm_job_kind kind, unsigned int server,
		       const char *path, const char *arg)
{
	struct cfs_cm_job *job = kzalloc(sizeof(*job), GFP_KERNEL);

	if (job) {
		job->kind = kind;
		job->src = kasprintf(GFP_KERNEL, "%u:%s", server, path);
		job->arg = kstrdup(arg, GFP_KERNEL);
	}
	mutex_lock(&cfs_cm_lock);
	if (!job || !job->src || !job->arg || cfs_cm_stopping ||
	    cfs_nr_cm_jobs >= CFS_CM_JOBS) {
		mutex_unlock(&cfs_cm_lock);
		pr_warn("cluster_mounts: %u:%s %s not done (%s)\n", server, path,
			kind == CFS_CM_UNMOUNT ? "unmount" : "announcement",
			cfs_cm_stopping ? "unloading" : "no room");
		cfs_cm_job_free(job);
		return;
	}
	list_add_tail(&job->link, &cfs_cm_jobs);
	cfs_nr_cm_jobs++;
	schedule_work(&cfs_cm_work);
	mutex_unlock(&cfs_cm_lock);
}

/*
 * A plain mount (source @path, this node's own) was made here, or went
 * (@gone): cfs_super.c tells us; the work item announces or withdraws it.
 */
void cfs_cmount_plain(const char *path, bool gone)
{
	if (!cfs_cm_path_ok(path)) {
		pr_info("cluster_mounts: %s has white space or is too long: this node's alone\n",
			path);
		return;
	}
	cfs_cm_job(gone ? CFS_CM_WITHDRAW : CFS_CM_ANNOUNCE, ssi_node_num(),
		   path, path);
}

/* A cmount request for (change, server, path, dir) as the current task. */
static struct cfs_cmount_req *cfs_cm_req(enum cfs_cm_change change,
					 unsigned int server,
					 const char *path, const char *dir)
{
	struct cfs_cmount_req *req;
	struct ssi_creds creds;

	if (ssi_creds_current(&creds))
		return ERR_PTR(-EPERM);
	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return ERR_PTR(-ENOMEM);
	SSI_CREDS_TO_REQ(req, &creds);
	req->add = change;
	req->server = server;
	strscpy(req->path, path, sizeof(req->path));
	strscpy(req->dir, dir, sizeof(req->dir));
	return req;
}

/* A change of the table, made here, sent to every other UP node. */
static int cfs_cm_send_all(enum cfs_cm_change change, unsigned int server,
			   const char *path, const char *dir)
{
	struct cfs_cmount_req *req = cfs_cm_req(change, server, path, dir);
	struct cfs_cmount_rep rep;
	unsigned long up;
	unsigned int node;
	int ret;

	if (IS_ERR(req))
		return PTR_ERR(req);
	up = clms_up_nodes();
	for_each_set_bit(node, &up, BITS_PER_LONG) {
		if (node == ssi_node_num())
			continue;
		ret = ics_cfs_cmount(node, req, &rep, CFS_TIMEOUT);
		/* a node without cfs reads the table when it loads it */
		if (ret && ret != -EPROTONOSUPPORT && ret != -EHOSTDOWN &&
		    !(ret == -ENOENT && change == CFS_CM_CHANGE_DEL))
			pr_warn("cluster_mounts: node %u did not take the change of %s (%d)\n",
				node, dir, ret);
	}
	kfree(req);
	return 0;
}

int cfs_srv_cmount(unsigned int from, const struct cfs_cmount_req *req,
		   struct cfs_cmount_rep *rep)
{
	const struct cred *old;
	int ret;

	if (!cfs_cm_path_ok(req->dir) || req->add > CFS_CM_CHANGE_DROP ||
	    (req->add && !cfs_cm_entry_ok(req->server, req->path, req->dir)))
		return -EINVAL;
	ret = CFS_SRV_CREDS(req, &old);
	if (ret)
		return ret;
	ret = capable(CAP_SYS_ADMIN) ? 0 : -EPERM;
	revert_creds(old);
	if (ret)
		return ret;
	switch (req->add) {
	case CFS_CM_CHANGE_ADD:
		return cfs_cm_add(req->server, req->path, req->dir);
	case CFS_CM_CHANGE_DROP:
		ret = cfs_cm_del(req->dir);
		cfs_cm_job(CFS_CM_UNMOUNT, req->server, req->path, req->dir);
		return ret == -ENOENT ? 0 : ret;
	default:
		return cfs_cm_del(req->dir);
	}
}

int cfs_srv_cmounts(unsigned int from, const struct cfs_cmounts_req *req,
		    struct cfs_cmounts_rep *rep)
{
	struct cfs_cmount *cm;
	unsigned int i = 0;

	mutex_lock(&cfs_cm_lock);
	rep->total = cfs_nr_cms;
	list_for_each_entry(cm, &cfs_cms, link) {
		if (i++ != req->index)
			continue;
		rep->server = cm->server;
		strscpy(rep->path, cm->path, sizeof(rep->path));
		strscpy(rep->dir, cm->dir, sizeof(rep->dir));
		break;
	}
	mutex_unlock(&cfs_cm_lock);
	return 0;
}

/* ---- the work: sends, reads, mounts ---- */

/* Sends @node every entry of this node's table. */
static void cfs_cm_send_table(unsigned int node)
{
	struct cfs_cmount *cm, *found;
	struct cfs_cmount_req *req;
	struct cfs_cmount_rep rep;
	unsigned int i, n;
	int ret;

	for (i = 0; i < CFS_CM_MAX; i++) {
		found = NULL;
		n = 0;
		mutex_lock(&cfs_cm_lock);
		list_for_each_entry(cm, &cfs_cms, link) {
			if (n++ == i) {
				found = cm;
				break;
			}
		}
		req = found ? cfs_cm_req(CFS_CM_CHANGE_ADD, found->server,
					 found->path, found->dir) : NULL;
		mutex_unlock(&cfs_cm_lock);
		if (IS_ERR_OR_NULL(req))
			return;
		ret = ics_cfs_cmount(node, req, &rep, CFS_TIMEOUT);
		kfree(req);
		if (ret)
			return;	/* gone, or no cfs there: it reads ours */
	}
}

/* Adds every entry of @node's table this node lacks. */
static void cfs_cm_read_table(unsigned int node)
{
	struct cfs_cmounts_req req = {};
	struct cfs_cmounts_rep *rep;

	rep = kzalloc(sizeof(*rep), GFP_KERNEL);
	if (!rep)
		return;
	for (req.index = 0; req.index < CFS_CM_MAX; req.index++) {
		if (ics_cfs_cmounts(node, &req, rep, CFS_TIMEOUT) ||
		    req.index >= rep->total)
			break;
		if (!cfs_cm_entry_ok(rep->server, rep->path, rep->dir)) {
			pr_warn("cluster_mounts: node %u sent a bad entry\n",
				node);
			break;
		}
		cfs_cm_add(rep->server, rep->path, rep->dir);
	}
	kfree(rep);
}

/*
 * Helpers' scripts, a line each, NULL-terminated; paths hold no white
 * space.  Mounting an entry: "$1" DIR, "$2" SERVER:PATH.
 */
static const char *const cfs_cm_mount_script[] = {
	"grep -qF \" $1 cfs \" /proc/mounts && exit 0",
	"mkdir -p \"$1\" && mount -t cfs \"$2\" \"$1\"",
	NULL
};

/*
 * The jobs': "$1" SERVER:PATH, "$2" the mount's source (an announce) or
 * DIR (an unmount).  An announce looks for the mount for up to 2 s (it is
 * attached after cfs_get_tree() returns) and finds nothing if it went at
 * once.
 */
static const char *const cfs_cm_announce_script[] = {
	"t=/sys/kernel/ssi/cfs/cluster_mounts; i=0",
	"while [ $i -lt 20 ]; do",
	"	f=",
	"	while read -r s d y r; do",
	"		[ \"$y\" = cfs ] && [ \"$s\" = \"$2\" ] || continue",
	"		f=1",
	"		grep -qF \"$1 $d \" $t || echo \"add $1 $d\" > $t",
	"	done < /proc/mounts",
	"	[ -n \"$f\" ] && exit 0",
	"	sleep 0.1; i=$((i + 1))",
	"done",
	NULL
};

static const char *const cfs_cm_withdraw_script[] = {
	"t=/sys/kernel/ssi/cfs/cluster_mounts",
	"while read -r s d r; do",
	"	[ \"$s\" = \"$1\" ] || continue",
	"	grep -qF \" $d cfs \" /proc/mounts || echo \"drop $d\" > $t",
	"done < $t",
	NULL
};

static const char *const cfs_cm_unmount_script[] = {
	"grep -qF \"$1 $2 cfs \" /proc/mounts || exit 0",
	"umount \"$2\"",
	NULL
};

/* `sh -c SCRIPT sh @arg1 @arg2`, waited for: 0, or its status. */
static int cfs_cm_helper(const char *const *lines, char *arg1, char *arg2)
{
	char *argv[7], *envp[3], *script;
	size_t len = 1;
	unsigned int i;
	int ret;

	for (i = 0; lines[i]; i++)
		len += strlen(lines[i]) + 1;
	script = kmalloc(len, GFP_KERNEL);
	if (!script)
		return -ENOMEM;
	script[0] = '\0';
	for (i = 0; lines[i]; i++) {
		strcat(script, lines[i]);
		strcat(script, "\n");
	}
	argv[0] = "/bin/sh";
	argv[1] = "-c";
	argv[2] = script;
	argv[3] = "sh";
	argv[4] = arg1;
	argv[5] = arg2;
	argv[6] = NULL;
	envp[0] = "HOME=/";
	envp[1] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	envp[2] = NULL;
	ret = call_usermodehelper(argv[0], argv, envp, UMH_WAIT_PROC);
	kfree(script);
	return ret;
}

/* Mounts (server, path) at @dir here; 0, or the helper's status. */
static int cfs_cm_mount(unsigned int server, const char *path, char *dir)
{
	char *src;
	int ret;

	src = kasprintf(GFP_KERNEL, "%u:%s", server, path);
	if (!src)
		return -ENOMEM;
	ret = cfs_cm_helper(cfs_cm_mount_script, dir, src);
	kfree(src);
	return ret;
}

/* Mounts, one at a time, every pending entry whose server is UP. */
static void cfs_cm_mount_pending(void)
{
	struct cfs_cmount *cm;
	unsigned int i, server;
	char *path, *dir;
	int ret;

	for (i = 0; i < 2 * CFS_CM_MAX; i++) {
		path = NULL;
		dir = NULL;
		mutex_lock(&cfs_cm_lock);
		list_for_each_entry(cm, &cfs_cms, link) {
			if (cm->state != CFS_CM_PENDING ||
			    !clms_node_is_up(cm->server))
				continue;
			server = cm->server;
			path = kstrdup(cm->path, GFP_KERNEL);
			dir = kstrdup(cm->dir, GFP_KERNEL);
			/* not again, whatever the helper says */
			cm->state = CFS_CM_MOUNTING;
			break;
		}
		mutex_unlock(&cfs_cm_lock);
		if (!path || !dir) {
			kfree(path);
			kfree(dir);
			return;
		}
		ret = cfs_cm_mount(server, path, dir);
		if (ret)
			pr_warn("cluster_mounts: mounting %u:%s at %s failed (%d)\n",
				server, path, dir, ret);
		mutex_lock(&cfs_cm_lock);
		cm = cfs_cm_find(dir);
		if (cm && cm->server == server && !strcmp(cm->path, path) &&
		    cm->state == CFS_CM_MOUNTING) {
			cm->state = ret ? CFS_CM_FAILED : CFS_CM_MOUNTED;
			cm->status = ret;
		}
		mutex_unlock(&cfs_cm_lock);
		kfree(path);
		kfree(dir);
	}
}

/* Runs every queued job, oldest first. */
static void cfs_cm_run_jobs(void)
{
	static const char *const *const scripts[] = {
		[CFS_CM_ANNOUNCE] = cfs_cm_announce_script,
		[CFS_CM_WITHDRAW] = cfs_cm_withdraw_script,
		[CFS_CM_UNMOUNT] = cfs_cm_unmount_script,
	};
	struct cfs_cm_job *job;
	int ret;

	for (;;) {
		mutex_lock(&cfs_cm_lock);
		job = list_first_entry_or_null(&cfs_cm_jobs, struct cfs_cm_job,
					       link);
		if (job) {
			list_del(&job->link);
			cfs_nr_cm_jobs--;
		}
		mutex_unlock(&cfs_cm_lock);
		if (!job)
			return;
		ret = cfs_cm_helper(scripts[job->kind], job->src, job->arg);
		if (ret)
			pr_warn("cluster_mounts: %s of %s (%s) failed (%d)\n",
				job->kind == CFS_CM_ANNOUNCE ? "announcing" :
				job->kind == CFS_CM_WITHDRAW ? "withdrawing" :
				"unmounting", job->src, job->arg, ret);
		cfs_cm_job_free(job);
	}
}

static void cfs_cm_worker(struct work_struct *work)
{
	unsigned long nodes = xchg(&cfs_cm_sync, 0);
	unsigned int node;

	for_each_set_bit(node, &nodes, BITS_PER_LONG) {
		if (!clms_node_is_up(node))
			continue;
		cfs_cm_send_table(node);
		cfs_cm_read_table(node);
	}
	cfs_cm_mount_pending();
	cfs_cm_run_jobs();
}

static void cfs_cm_nodeup(unsigned int node, u64 transition)
{
	if (node >= BITS_PER_LONG)
		return;
	set_bit(node, &cfs_cm_sync);
	mutex_lock(&cfs_cm_lock);
	if (!cfs_cm_stopping)
		schedule_work(&cfs_cm_work);
	mutex_unlock(&cfs_cm_lock);
}

static struct clms_notifier cfs_cm_notifier = {
	.nodeup = cfs_cm_nodeup,
};

/* ---- /sys/kernel/ssi/cfs/cluster_mounts ---- */

static const char *const cfs_cm_state_names[] = {
	[CFS_CM_PENDING] = "pending",
	[CFS_CM_MOUNTING] = "mounting",
	[CFS_CM_MOUNTED] = "mounted",
	[CFS_CM_FAILED] = "failed",
};

static ssize_t cluster_mounts_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	struct cfs_cmount *cm;
	int n = 0;

	mutex_lock(&cfs_cm_lock);
	list_for_each_entry(cm, &cfs_cms, link) {
		n += sysfs_emit_at(buf, n, "%u:%s %s ", cm->server, cm->path,
				   cm->dir);
		if (cm->state == CFS_CM_FAILED)
			n += sysfs_emit_at(buf, n, "failed %d\n", cm->status);
		else
			n += sysfs_emit_at(buf, n, "%s\n",
					   cfs_cm_state_names[cm->state]);
	}
	mutex_unlock(&cfs_cm_lock);
	return n;
}

/* A drop of @dir made here: taken out, sent, unmounted here too. */
static int cfs_cm_drop(const char *dir)
{
	struct cfs_cmount *cm;
	unsigned int server = 0;
	char *path = NULL;

	mutex_lock(&cfs_cm_lock);
	cm = cfs_cm_find(dir);
	if (cm) {
		server = cm->server;
		path = kstrdup(cm->path, GFP_KERNEL);
		if (path)
			cfs_cm_free(cm);
	}
	mutex_unlock(&cfs_cm_lock);
	if (!path)
		return cm ? -ENOMEM : -ENOENT;
	cfs_cm_send_all(CFS_CM_CHANGE_DROP, server, path, dir);
	cfs_cm_job(CFS_CM_UNMOUNT, server, path, dir);
	kfree(path);
	return 0;
}

/* "add SERVER:PATH DIR", "del DIR" or "drop DIR", one line. */
static ssize_t cluster_mounts_store(struct kobject *kobj,
				    struct kobj_attribute *attr,
				    const char *buf, size_t count)
{
	char *text, *cur, *verb, *src, *dir, *path;
	unsigned int server;
	int ret = -EINVAL;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	text = kstrndup(buf, count, GFP_KERNEL);
	if (!text)
		return -ENOMEM;
	cur = strim(text);
	verb = strsep(&cur, " ");
	src = strsep(&cur, " ");
	dir = strsep(&cur, " ");
	if (verb && src && !strcmp(verb, "drop") && !dir) {
		ret = cfs_cm_path_ok(src) ? cfs_cm_drop(src) : -EINVAL;
		ret = ret ?: count;
	} else if (verb && src && !strcmp(verb, "del") && !dir) {
		if (!cfs_cm_path_ok(src))
			goto out;
		ret = cfs_cm_del(src);
		if (!ret || ret == -ENOENT) {
			cfs_cm_send_all(CFS_CM_CHANGE_DEL, 0, "", src);
			ret = ret ?: count;
		}
	} else if (verb && src && dir && !cur && !strcmp(verb, "add")) {
		path = strchr(src, ':');
		if (!path)
			goto out;
		*path++ = '\0';
		if (kstrtouint(src, 10, &server) ||
		    !cfs_cm_entry_ok(server, path, dir))
			goto out;
		ret = cfs_cm_add(server, path, dir);
		if (!ret) {
			cfs_cm_send_all(CFS_CM_CHANGE_ADD, server, path, dir);
			ret = count;
		}
	}
out:
	kfree(text);
	return ret;
}

static struct kobj_attribute cfs_cm_attr = __ATTR_RW(cluster_mounts);

int cfs_cmount_init(struct kobject *parent)
{
	int ret;

	INIT_WORK(&cfs_cm_work, cfs_cm_worker);
	cfs_cm_stopping = false;
	ret = sysfs_create_file(parent, &cfs_cm_attr.attr);
	if (ret)
		return ret;
	/* calls cfs_cm_nodeup() for every node UP already */
	ret = clms_register_notifier(&cfs_cm_notifier);
	if (ret)
		sysfs_remove_file(parent, &cfs_cm_attr.attr);
	return ret;
}

/* Adds are refused from here on (-ESHUTDOWN), from ICS or sysfs. */
void cfs_cmount_exit(void)
{
	struct cfs_cm_job *job, *jtmp;
	struct cfs_cmount *cm, *tmp;

	clms_unregister_notifier(&cfs_cm_notifier);
	mutex_lock(&cfs_cm_lock);
	cfs_cm_stopping = true;
	mutex_unlock(&cfs_cm_lock);
	cancel_work_sync(&cfs_cm_work);
	mutex_lock(&cfs_cm_lock);
	list_for_each_entry_safe(cm, tmp, &cfs_cms, link)
		cfs_cm_free(cm);
	list_for_each_entry_safe(job, jtmp, &cfs_cm_jobs, link) {
		list_del(&job->link);
		cfs_cm_job_free(job);
	}
	cfs_nr_cm_jobs = 0;
	mutex_unlock(&cfs_cm_lock);
}
