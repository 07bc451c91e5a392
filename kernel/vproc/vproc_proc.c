// SPDX-License-Identifier: GPL-2.0-only
/*
 * vproc /proc: the root of procfs lists the processes of every UP node
 * after this node's own, and /proc/<pid> of a process running on another
 * node is a directory this module builds on procfs's superblock.  Its
 * files are read through ICS from the node that runs the process, which
 * opens its own /proc/<pid>/<file>, so the text is exactly procfs's; the
 * snapshot is taken at open.  /proc/<pid>/node says where it runs.
 *
 * Dentries are never kept once unused (a lookup asks again), and an
 * attribute cache filled by listings and lookups keeps ps from asking
 * twice within VPROC_CACHE_TTL.  Every dentry pins this module.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/threads.h>
#include <linux/uidgid.h>

#include "clms.h"
#include "vproc_gen.h"
#include "vproc_ics.h"
#include "vproc_internal.h"

#define VPROC_CACHE_TTL		HZ
#define VPROC_CACHE_MAX		16384

struct vproc_cached {
	struct hlist_node link;
	pid_t pid;
	unsigned int node;
	u32 uid, gid;
	unsigned long stamp;
};

static DEFINE_HASHTABLE(vproc_cache, 10);
static DEFINE_SPINLOCK(vproc_cache_lock);
static unsigned int vproc_cache_count;

static void vproc_cache_del(struct vproc_cached *c)
{
	hash_del(&c->link);
	kfree(c);
	vproc_cache_count--;
}

void vproc_cache_put(pid_t pid, unsigned int node, u32 uid, u32 gid)
{
	struct vproc_cached *c, *new;
	struct hlist_node *tmp;

	new = kmalloc(sizeof(*new), GFP_KERNEL);
	if (!new)
		return;
	new->pid = pid;
	new->node = node;
	new->uid = uid;
	new->gid = gid;
	new->stamp = jiffies;

	spin_lock(&vproc_cache_lock);
	hash_for_each_possible_safe(vproc_cache, c, tmp, link, pid)
		if (c->pid == pid)
			vproc_cache_del(c);
	if (vproc_cache_count >= VPROC_CACHE_MAX) {
		kfree(new);
	} else {
		hash_add(vproc_cache, &new->link, pid);
		vproc_cache_count++;
	}
	spin_unlock(&vproc_cache_lock);
}

bool vproc_cache_get(pid_t pid, unsigned int *node, u32 *uid, u32 *gid)
{
	struct vproc_cached *c;
	struct hlist_node *tmp;
	bool found = false;

	spin_lock(&vproc_cache_lock);
	hash_for_each_possible_safe(vproc_cache, c, tmp, link, pid) {
		if (c->pid != pid)
			continue;
		if (time_after(jiffies, c->stamp + VPROC_CACHE_TTL) ||
		    !clms_node_is_up(c->node)) {
			vproc_cache_del(c);
			continue;
		}
		*node = c->node;
		*uid = c->uid;
		*gid = c->gid;
		found = true;
	}
	spin_unlock(&vproc_cache_lock);
	return found;
}

static void vproc_cache_drop(unsigned int node, bool stale_only)
{
	struct vproc_cached *c;
	struct hlist_node *tmp;
	int bkt;

	spin_lock(&vproc_cache_lock);
	hash_for_each_safe(vproc_cache, bkt, tmp, c, link) {
		if (stale_only ?
		    time_after(jiffies, c->stamp + VPROC_CACHE_TTL) :
		    (!node || c->node == node))
			vproc_cache_del(c);
	}
	spin_unlock(&vproc_cache_lock);
}

void vproc_cache_drop_node(unsigned int node)
{
	vproc_cache_drop(node, false);
}

void vproc_cache_clear(void)
{
	vproc_cache_drop(0, false);
}

/*
 * i_private of a remote inode: the pid, the node it ran on at lookup and,
 * for a file, 1 + its index in the directory (0 for the directory).
 */
static unsigned long vproc_ipriv(pid_t pid, unsigned int node,
				 unsigned int file)
{
	return (unsigned long)pid | (unsigned long)node << 24 |
	       (unsigned long)file << 32;
}

static pid_t vproc_ipid(const struct inode *inode)
{
	return (unsigned long)inode->i_private & 0xffffff;
}

static unsigned int vproc_inode_node(const struct inode *inode)
{
	return ((unsigned long)inode->i_private >> 24) & 0xff;
}

static int vproc_d_revalidate(struct dentry *dentry, unsigned int flags)
{
	struct inode *inode;

	if (flags & LOOKUP_RCU)
		return -ECHILD;
	inode = d_inode(dentry);
	return inode && clms_node_is_up(vproc_inode_node(inode));
}

/*
 * Each dentry holds a reference on this module (vproc_instantiate());
 * built-in code drops it, as our own d_release would run our text after
 * the last module_put().
 */
static const struct dentry_operations vproc_dops = {
	.d_revalidate = vproc_d_revalidate,
	.d_delete = always_delete_dentry,
	.d_release = ssi_d_release_module_put,
};

/* ---- files ---- */

struct vproc_fbuf {
	size_t len;
	const char *data;
	struct vproc_read_rep *rep;
	char text[16];
};

static int vproc_file_open(struct inode *inode, struct file *file)
{
	const char *name = file->f_path.dentry->d_name.name;
	struct vproc_read_rep *rep;
	struct vproc_fbuf *b;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	if (!strcmp(name, "node")) {
		b->len = scnprintf(b->text, sizeof(b->text), "%u\n",
				   vproc_inode_node(inode));
		b->data = b->text;
	} else {
		rep = vproc_route_read(vproc_ipid(inode), name);
		if (IS_ERR(rep)) {
			kfree(b);
			return PTR_ERR(rep);
		}
		b->rep = rep;
		b->data = rep->data;
		b->len = min_t(size_t, rep->data_len, sizeof(rep->data));
	}
	file->private_data = b;
	return 0;
}

static ssize_t vproc_file_read(struct file *file, char __user *buf,
			       size_t count, loff_t *ppos)
{
	struct vproc_fbuf *b = file->private_data;

	return simple_read_from_buffer(buf, count, ppos, b->data, b->len);
}

static int vproc_file_release(struct inode *inode, struct file *file)
{
	struct vproc_fbuf *b = file->private_data;

	kvfree(b->rep);
	kfree(b);
	return 0;
}

static const struct file_operations vproc_file_fops = {
	.owner = THIS_MODULE,
	.open = vproc_file_open,
	.read = vproc_file_read,
	.llseek = default_llseek,
	.release = vproc_file_release,
};

/* goto: the node running the process moves it, under the writer's creds. */
static ssize_t vproc_goto_write(struct file *file, const char __user *buf,
				size_t count, loff_t *ppos)
{
	unsigned int node;
	int ret;

	ret = kstrtouint_from_user(buf, count, 10, &node);
	if (ret)
		return ret;
	ret = vproc_route_goto(vproc_ipid(file_inode(file)), node);
	return ret ? ret : count;
}

static const struct file_operations vproc_goto_fops = {
	.owner = THIS_MODULE,
	.write = vproc_goto_write,
	.llseek = noop_llseek,
};

/* A process's owner as another node reported it, root if not mappable. */
static void vproc_owner(u32 uid, u32 gid, kuid_t *kuid, kgid_t *kgid)
{
	*kuid = make_kuid(&init_user_ns, uid);
	*kgid = make_kgid(&init_user_ns, gid);
	if (!uid_valid(*kuid))
		*kuid = GLOBAL_ROOT_UID;
	if (!gid_valid(*kgid))
		*kgid = GLOBAL_ROOT_GID;
}

/*
 * A private file (0400, as procfs makes environ and io) is its process's
 * owner's, and that owner came from the attribute cache: a process that
 * changed its uid within VPROC_CACHE_TTL (setpriv, su) is still shown as
 * the old one.  procfs refreshes the owner at every lookup; here a denial
 * asks the node running the process again before it stands.  A stale
 * grant needs nothing: the serving procfs checks the reader at open.
 */
static int vproc_private_permission(struct user_namespace *mnt_userns,
				    struct inode *inode, int mask)
{
	pid_t pid = vproc_ipid(inode);
	unsigned int node;
	u32 uid, gid;
	kuid_t kuid;
	kgid_t kgid;
	int ret;

	ret = generic_permission(mnt_userns, inode, mask);
	if (ret != -EACCES)
		return ret;
	if (mask & MAY_NOT_BLOCK)
		return -ECHILD;
	if (vproc_route_attr(pid, &node, &uid, &gid))
		return ret;
	vproc_cache_put(pid, node, uid, gid);
	vproc_owner(uid, gid, &kuid, &kgid);
	if (uid_eq(kuid, inode->i_uid) && gid_eq(kgid, inode->i_gid))
		return ret;
	inode->i_uid = kuid;
	inode->i_gid = kgid;
	return generic_permission(mnt_userns, inode, mask);
}

static const struct inode_operations vproc_private_iops = {
	.permission = vproc_private_permission,
};

/* ---- /proc/<pid> of another node ---- */

static const struct inode_operations vproc_dir_iops;
static const struct file_operations vproc_dir_fops;

static struct dentry *vproc_instantiate(struct dentry *dentry, umode_t mode,
					unsigned long priv, kuid_t uid,
					kgid_t gid)
{
	struct inode *inode = new_inode(dentry->d_sb);

	if (!inode)
		return ERR_PTR(-ENOMEM);
	inode->i_ino = get_next_ino();
	inode->i_mode = mode;
	inode->i_uid = uid;
	inode->i_gid = gid;
	inode->i_mtime = current_time(inode);
	inode->i_atime = inode->i_mtime;
	inode->i_ctime = inode->i_mtime;
	inode->i_private = (void *)priv;
	if (S_ISDIR(mode)) {
		inode->i_op = &vproc_dir_iops;
		inode->i_fop = &vproc_dir_fops;
		set_nlink(inode, 2);
	} else if (!strcmp(dentry->d_name.name, "goto")) {
		inode->i_fop = &vproc_goto_fops;
	} else {
		inode->i_fop = &vproc_file_fops;
		if (!(mode & 0044))
			inode->i_op = &vproc_private_iops;
	}
	__module_get(THIS_MODULE);
	d_set_d_op(dentry, &vproc_dops);
	return d_splice_alias(inode, dentry);
}

/* Entries of a remote /proc/<pid>: the readable files, "node", "goto". */
static const char *vproc_dir_entry(unsigned int i, bool *private)
{
	const char *name = vproc_proc_file_name(i);

	*private = false;
	if (name) {
		vproc_proc_file_ok(name, private);
		return name;
	}
	if (i && vproc_proc_file_name(i - 1))
		return "node";
	if (i > 1 && vproc_proc_file_name(i - 2))
		return "goto";
	return NULL;
}

static struct dentry *vproc_dir_lookup(struct inode *dir,
				       struct dentry *dentry,
				       unsigned int flags)
{
	const char *name = dentry->d_name.name;
	bool private = false;
	unsigned int i;

	for (i = 0; vproc_dir_entry(i, &private); i++)
		if (!strcmp(vproc_dir_entry(i, &private), name))
			break;
	if (!vproc_dir_entry(i, &private))
		return ERR_PTR(-ENOENT);
	return vproc_instantiate(dentry, !strcmp(name, "goto") ? S_IFREG | 0222 :
				 S_IFREG | (private ? 0400 : 0444),
				 vproc_ipriv(vproc_ipid(dir),
					     vproc_inode_node(dir), i + 1),
				 dir->i_uid, dir->i_gid);
}

static int vproc_dir_iterate(struct file *file, struct dir_context *ctx)
{
	const char *name;
	bool private;

	if (!dir_emit_dots(file, ctx))
		return 0;
	while ((name = vproc_dir_entry(ctx->pos - 2, &private))) {
		if (!dir_emit(ctx, name, strlen(name), 1, DT_REG))
			return 0;
		ctx->pos++;
	}
	return 0;
}

static const struct inode_operations vproc_dir_iops = {
	.lookup = vproc_dir_lookup,
};

static const struct file_operations vproc_dir_fops = {
	.owner = THIS_MODULE,
	.read = generic_read_dir,
	.iterate_shared = vproc_dir_iterate,
	.llseek = generic_file_llseek,
};

struct dentry *vproc_proc_lookup(struct dentry *dentry, unsigned int tgid,
				 unsigned int flags)
{
	pid_t pid = tgid;
	unsigned int node;
	u32 uid, gid;
	kuid_t kuid;
	kgid_t kgid;

	if ((current->flags & PF_KTHREAD) || tgid > PID_MAX_LIMIT ||
	    !vproc_is_cluster_pid(pid))
		return ERR_PTR(-ENOENT);
	if (!vproc_cache_get(pid, &node, &uid, &gid)) {
		if (vproc_route_attr(pid, &node, &uid, &gid))
			return ERR_PTR(-ENOENT);
		vproc_cache_put(pid, node, uid, gid);
	}
	if (node == vproc_self())
		return ERR_PTR(-ENOENT);
	vproc_owner(uid, gid, &kuid, &kgid);
	return vproc_instantiate(dentry, S_IFDIR | 0555,
				 vproc_ipriv(pid, node, 0), kuid, kgid);
}

static bool vproc_pid_is_local(pid_t pid)
{
	bool local;

	rcu_read_lock();
	local = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);
	rcu_read_unlock();
	return local;
}

static int vproc_pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Other nodes' processes, at positions @base + pid (so a getdents that
 * stops half way resumes where it was), ending at @base + PID_MAX_LIMIT + 1.
 */
int vproc_proc_readdir(struct file *file, struct dir_context *ctx,
		       loff_t base)
{
	loff_t end = base + PID_MAX_LIMIT + 1;
	struct vproc_list_rep *rep;
	unsigned int node, nr = 0;
	pid_t *pids, start;
	char name[16];
	int len;
	u64 up;
	u32 i;

	if (ctx->pos >= end || (current->flags & PF_KTHREAD))
		return 0;
	start = ctx->pos - base;
	up = clms_up_nodes() & ~BIT_ULL(vproc_self());
	rep = kvzalloc(sizeof(*rep), GFP_KERNEL);
	pids = kvmalloc_array(hweight64(up) * ARRAY_SIZE(rep->pid) + 1,
			      sizeof(*pids), GFP_KERNEL);
	if (!rep || !pids)
		goto out;

	vproc_cache_drop(0, true);
	for (node = 1; node <= SSI_MAX_NODES; node++) {
		if (!(up & BIT_ULL(node)) || vproc_list_node(node, rep))
			continue;
		for (i = 0; i < rep->pid_count; i++) {
			if (rep->pid[i] < start)
				continue;
			pids[nr++] = rep->pid[i];
			vproc_cache_put(rep->pid[i], node, rep->euid[i],
					rep->egid[i]);
		}
	}
	sort(pids, nr, sizeof(*pids), vproc_pid_cmp, NULL);
	for (i = 0; i < nr; i++) {
		if (i && pids[i] == pids[i - 1])
			continue;
		/* a deputy's: the kernel listed its local task already */
		if (vproc_pid_is_local(pids[i]))
			continue;
		len = snprintf(name, sizeof(name), "%d", pids[i]);
		ctx->pos = base + pids[i];
		if (!dir_emit(ctx, name, len, pids[i], DT_DIR))
			goto out;
	}
	ctx->pos = end;
out:
	kvfree(pids);
	kvfree(rep);
	return 0;
}

int vproc_proc_init(void)
{
	return 0;
}

void vproc_proc_exit(void)
{
	vproc_cache_clear();
}
