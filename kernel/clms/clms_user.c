// SPDX-License-Identifier: GPL-2.0-only
/*
 * CLMS user interfaces: the SSISYS_CLUSTER_* / SSISYS_CLUSTERNODE_INFO
 * system calls and /sys/kernel/ssi/clms:
 *
 *   heartbeat_ms, timeout_ms   tunables (rw): 10..5000, and
 *                              3 x heartbeat_ms..60000; the master's for
 *                              the whole cluster (a write goes to it)
 *   transition, master, quorum this node's view (master 0: none)
 *   mode                       member | joining | noquorum
 *   incarnation, name, up_nodes (bit mask, as clms_up_nodes())
 *   members                    "node state incarnation since_ns" per
 *                              configured node; poll(2) on it (or on
 *                              transition) wakes on every change
 *   heartbeats_sent ...        counters, one file each
 *   test_ping, test_notifier   test aids, refused unless the test_knobs
 *                              module parameter is set
 */
#define pr_fmt(fmt) "clms: " fmt

#include <linux/bitops.h>
#include <linux/capability.h>
#include <linux/cpumask.h>
#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/loadavg.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>

#include "clms_internal.h"
#include "ics.h"
#include "ssi_core.h"
#include "clms_gen.h"

static const char *const clms_state_names[] = {
	[SSI_NODE_NEVERUP] = "NEVERUP",
	[SSI_NODE_COMINGUP] = "COMINGUP",
	[SSI_NODE_UP] = "UP",
	[SSI_NODE_SHUTDOWN] = "SHUTDOWN",
	[SSI_NODE_GOINGDOWN] = "GOINGDOWN",
	[SSI_NODE_KCLEANUP] = "KCLEANUP",
	[SSI_NODE_UCLEANUP] = "UCLEANUP",
	[SSI_NODE_DOWN] = "DOWN",
};

static const char *const clms_mode_names[] = {
	[CLMS_NOQUORUM] = "noquorum",
	[CLMS_JOINING] = "joining",
	[CLMS_MEMBER] = "member",
};

const char *clms_state_name(unsigned int state)
{
	return state < ARRAY_SIZE(clms_state_names) ?
	       clms_state_names[state] : "?";
}

/* Cluster names: 0..SSI_NAME_MAX-1 printable ASCII characters. */
bool clms_name_valid(const char *name, size_t len)
{
	size_t i;

	if (len >= SSI_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (name[i] < 0x20 || name[i] > 0x7e)
			return false;
	return true;
}

/* The state of @node as this node reports it; NEVERUP if not in the table. */
static u8 clms_report_state(unsigned int node)
{
	if (!(clms.configured & BIT_ULL(node)))
		return SSI_NODE_NEVERUP;
	return clms.view.state[node];
}

/* ---- ssisys ---- */

static long clms_ssisys_membership(void __user *buf, size_t len)
{
	struct ssi_membership m = {};
	unsigned int n;

	if (len < sizeof(m))
		return -EINVAL;
	mutex_lock(&clms.lock);
	m.transition = clms.view.transition;
	m.master = clms.mode == CLMS_MEMBER ? clms.view.master : 0;
	m.self = clms_self;
	m.quorum = clms.mode != CLMS_NOQUORUM;
	m.nr_configured = hweight64(clms.configured);
	for (n = 1; n < CLMS_NR_SLOTS; n++)
		m.state[n] = clms_report_state(n);
	mutex_unlock(&clms.lock);
	if (copy_to_user(buf, &m, sizeof(m)))
		return -EFAULT;
	return 0;
}

static void clms_fill_load(struct ssi_node_info *info,
			   const struct clms_load *l)
{
	info->cpus = l->cpus;
	info->mem_total_kb = l->mem_total_kb;
	info->mem_free_kb = l->mem_free_kb;
	memcpy(info->load, l->load, sizeof(info->load));
	info->nr_running = l->nr_running;
	info->mem_available_kb = l->mem_avail_kb;
	info->flags |= SSI_NODEINFO_LOAD;
}

/*
 * Any @len from SSI_NODEINFO_SIZE_V1 (a caller built before the load
 * figures) on: min(@len, sizeof(info)) bytes are written.
 */
static long clms_ssisys_node_info(void __user *buf, size_t len)
{
	struct ssi_node_info info = {};
	struct clms_load self_load;
	struct clms_peer *p;
	unsigned long now;
	u32 node;

	if (len < SSI_NODEINFO_SIZE_V1)
		return -EINVAL;
	if (copy_from_user(&node, buf + offsetof(struct ssi_node_info, node),
			   sizeof(node)))
		return -EFAULT;
	if (node < 1 || node > SSI_MAX_NODES)
		return -EINVAL;
	if (!(ics_configured_nodes() & BIT_ULL(node)))
		return -ESRCH;

	if (node == clms_self)
		clms_local_load(&self_load);
	info.node = node;
	info.addr = (__force __u32)ics_peer_addr(info.node);
	mutex_lock(&clms.lock);
	info.state = clms_report_state(node);
	info.incarnation = node == clms_self ? clms.incarnation :
			   clms.view.inc[node];
	info.since_ns = clms.view.since_ns[node];
	info.transition = clms.view.changed_in[node];
	p = &clms.peers[node];
	now = jiffies;
	if (node == clms_self) {
		clms_fill_load(&info, &self_load);
	} else if (clms_peer_fresh(p, now)) {
		clms_fill_load(&info, &p->load);
		info.figures_age_ms = jiffies_to_msecs(now - p->last_heard);
	}
	mutex_unlock(&clms.lock);

	if (copy_to_user(buf, &info, min(len, sizeof(info))))
		return -EFAULT;
	return 0;
}

static long clms_ssisys_name(void __user *buf, size_t len)
{
	char name[SSI_NAME_MAX] = {};

	if (len < SSI_NAME_MAX)
		return -EINVAL;
	mutex_lock(&clms.lock);
	strscpy(name, clms.view.name, sizeof(name));
	mutex_unlock(&clms.lock);
	if (copy_to_user(buf, name, sizeof(name)))
		return -EFAULT;
	return 0;
}

static long clms_ssisys_set_name(void __user *buf, size_t len)
{
	char name[SSI_NAME_MAX] = {};

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (len < 1 || len > SSI_NAME_MAX - 1)
		return -EINVAL;
	if (copy_from_user(name, buf, len))
		return -EFAULT;
	/* Exactly @len printable characters: no NUL, no control bytes. */
	if (!clms_name_valid(name, len))
		return -EINVAL;
	return clms_set_name(name);
}

static const struct ssisys_handler clms_membership_handler = {
	.owner = THIS_MODULE,
	.call = clms_ssisys_membership,
};

static const struct ssisys_handler clms_node_info_handler = {
	.owner = THIS_MODULE,
	.call = clms_ssisys_node_info,
};

static const struct ssisys_handler clms_name_handler = {
	.owner = THIS_MODULE,
	.call = clms_ssisys_name,
};

static const struct ssisys_handler clms_set_name_handler = {
	.owner = THIS_MODULE,
	.call = clms_ssisys_set_name,
};

static const struct {
	unsigned int cmd;
	const struct ssisys_handler *handler;
} clms_ssisys_cmds[] = {
	{ SSISYS_CLUSTER_MEMBERSHIP, &clms_membership_handler },
	{ SSISYS_CLUSTERNODE_INFO, &clms_node_info_handler },
	{ SSISYS_CLUSTER_NAME, &clms_name_handler },
	{ SSISYS_CLUSTER_SET_NAME, &clms_set_name_handler },
};

static void clms_ssisys_unregister(unsigned int nr)
{
	while (nr--)
		ssisys_unregister(clms_ssisys_cmds[nr].cmd,
				  clms_ssisys_cmds[nr].handler);
}

static int clms_ssisys_register(void)
{
	unsigned int i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(clms_ssisys_cmds); i++) {
		ret = ssisys_register(clms_ssisys_cmds[i].cmd,
				      clms_ssisys_cmds[i].handler);
		if (ret) {
			clms_ssisys_unregister(i);
			return ret;
		}
	}
	return 0;
}

/* ---- sysfs ---- */

static struct kobject *clms_kobj;

/*
 * poll(2) on members or transition wakes up on every change of this
 * node's view (userspace watchers need not spin).  sysfs_notify() may
 * sleep, so it runs from a work item.
 */
static DEFINE_MUTEX(clms_kobj_lock);
static bool clms_kobj_live;

static void clms_sysfs_notify_fn(struct work_struct *work)
{
	mutex_lock(&clms_kobj_lock);
	if (clms_kobj_live) {
		sysfs_notify(clms_kobj, NULL, "members");
		sysfs_notify(clms_kobj, NULL, "transition");
	}
	mutex_unlock(&clms_kobj_lock);
}

static DECLARE_WORK(clms_sysfs_notify_work, clms_sysfs_notify_fn);

void clms_user_changed(void)
{
	schedule_work(&clms_sysfs_notify_work);
}

static ssize_t heartbeat_ms_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(clms_heartbeat_ms));
}

static ssize_t heartbeat_ms_store(struct kobject *kobj,
				  struct kobj_attribute *attr,
				  const char *buf, size_t count)
{
	unsigned int val;
	int ret;

	ret = kstrtouint(buf, 0, &val);
	if (ret)
		return ret;
	if (val < CLMS_HEARTBEAT_MIN_MS || val > CLMS_HEARTBEAT_MAX_MS)
		return -EINVAL;
	/* below a third of timeout_ms: raise timeout_ms first */
	ret = clms_set_timing(val, 0);
	return ret ? ret : count;
}

static struct kobj_attribute heartbeat_ms_attr = __ATTR_RW(heartbeat_ms);

static ssize_t timeout_ms_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(clms_timeout_ms));
}

static ssize_t timeout_ms_store(struct kobject *kobj,
				struct kobj_attribute *attr,
				const char *buf, size_t count)
{
	unsigned int val;
	int ret;

	ret = kstrtouint(buf, 0, &val);
	if (ret)
		return ret;
	if (!val || val > CLMS_TIMEOUT_MAX_MS)
		return -EINVAL;
	ret = clms_set_timing(0, val);
	return ret ? ret : count;
}

static struct kobj_attribute timeout_ms_attr = __ATTR_RW(timeout_ms);

static ssize_t transition_show(struct kobject *kobj,
			       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", clms_transition());
}

static struct kobj_attribute transition_attr = __ATTR_RO(transition);

static ssize_t master_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%u\n", clms_master());
}

static struct kobj_attribute master_attr = __ATTR_RO(master);

static ssize_t quorum_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%d\n", clms_have_quorum());
}

static struct kobj_attribute quorum_attr = __ATTR_RO(quorum);

static ssize_t incarnation_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(clms.incarnation));
}

static struct kobj_attribute incarnation_attr = __ATTR_RO(incarnation);

static ssize_t mode_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s\n", clms_mode_names[READ_ONCE(clms.mode)]);
}

static struct kobj_attribute mode_attr = __ATTR_RO(mode);

static ssize_t up_nodes_show(struct kobject *kobj,
			     struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%#llx\n", clms_up_nodes());
}

static struct kobj_attribute up_nodes_attr = __ATTR_RO(up_nodes);

static ssize_t name_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	ssize_t len;

	mutex_lock(&clms.lock);
	len = sysfs_emit(buf, "%s\n", clms.view.name);
	mutex_unlock(&clms.lock);
	return len;
}

static struct kobj_attribute name_attr = __ATTR_RO(name);

/* One line per configured node: node state incarnation since_ns. */
static ssize_t members_show(struct kobject *kobj,
			    struct kobj_attribute *attr, char *buf)
{
	unsigned int n;
	int len = 0;

	mutex_lock(&clms.lock);
	for (n = 1; n < CLMS_NR_SLOTS; n++) {
		if (!(clms.configured & BIT_ULL(n)))
			continue;
		len += sysfs_emit_at(buf, len, "%u %s %u %llu\n", n,
				     clms_state_name(clms.view.state[n]),
				     n == clms_self ? clms.incarnation :
				     clms.view.inc[n],
				     clms.view.since_ns[n]);
	}
	mutex_unlock(&clms.lock);
	return len;
}

static struct kobj_attribute members_attr = __ATTR_RO(members);

/*
 * Test aid, refused unless the test_knobs module parameter is set:
 * writing "NODE [DELAY_MS]" makes an ICS call to NODE whose server sleeps
 * DELAY_MS first; the write returns the call's error.  Reading shows the
 * last result.
 */
static DEFINE_MUTEX(clms_ping_lock);
static char clms_ping_result[64] = "none\n";

static ssize_t test_ping_show(struct kobject *kobj,
			      struct kobj_attribute *attr, char *buf)
{
	ssize_t len;

	mutex_lock(&clms_ping_lock);
	len = sysfs_emit(buf, "%s", clms_ping_result);
	mutex_unlock(&clms_ping_lock);
	return len;
}

static ssize_t test_ping_store(struct kobject *kobj,
			       struct kobj_attribute *attr,
			       const char *buf, size_t count)
{
	unsigned int node, delay = 0;
	u32 inc = 0;
	int ret;

	if (!READ_ONCE(clms_test_knobs))
		return -EPERM;
	if (sscanf(buf, "%u %u", &node, &delay) < 1)
		return -EINVAL;
	if (node < 1 || node > SSI_MAX_NODES || node == clms_self ||
	    delay > CLMS_PING_MAX_DELAY_MS)
		return -EINVAL;
	ret = clms_test_ping(node, delay, &inc);
	mutex_lock(&clms_ping_lock);
	if (ret)
		snprintf(clms_ping_result, sizeof(clms_ping_result),
			 "node %u error %d\n", node, ret);
	else
		snprintf(clms_ping_result, sizeof(clms_ping_result),
			 "node %u incarnation %u\n", node, inc);
	mutex_unlock(&clms_ping_lock);
	return ret ? ret : count;
}

static struct kobj_attribute test_ping_attr = __ATTR_RW_MODE(test_ping, 0600);

/*
 * Test aid, refused unless test_knobs is set: writing 1 registers a
 * notifier that logs its callbacks ("up|down NODE TRANSITION", the last
 * CLMS_TN_LOG), 0 unregisters it; reading shows the log.
 */
#define CLMS_TN_LOG	32
#define CLMS_TN_LINE	40

static DEFINE_MUTEX(clms_tn_lock);	/* registration */
static bool clms_tn_registered;
static DEFINE_SPINLOCK(clms_tn_log_lock);
static char clms_tn_log[CLMS_TN_LOG][CLMS_TN_LINE];
static unsigned int clms_tn_next;	/* total lines logged */

static void clms_tn_record(const char *what, unsigned int node, u64 transition)
{
	spin_lock(&clms_tn_log_lock);
	snprintf(clms_tn_log[clms_tn_next % CLMS_TN_LOG], CLMS_TN_LINE,
		 "%s %u %llu\n", what, node, transition);
	clms_tn_next++;
	spin_unlock(&clms_tn_log_lock);
}

static void clms_tn_nodeup(unsigned int node, u64 transition)
{
	clms_tn_record("up", node, transition);
}

static void clms_tn_nodedown(unsigned int node, u64 transition)
{
	clms_tn_record("down", node, transition);
}

static struct clms_notifier clms_test_nb = {
	.nodeup = clms_tn_nodeup,
	.nodedown = clms_tn_nodedown,
};

static ssize_t test_notifier_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	unsigned int i, first;
	int len = 0;

	spin_lock(&clms_tn_log_lock);
	first = clms_tn_next > CLMS_TN_LOG ? clms_tn_next - CLMS_TN_LOG : 0;
	for (i = first; i < clms_tn_next; i++)
		len += sysfs_emit_at(buf, len, "%s",
				     clms_tn_log[i % CLMS_TN_LOG]);
	spin_unlock(&clms_tn_log_lock);
	return len;
}

static ssize_t test_notifier_store(struct kobject *kobj,
				   struct kobj_attribute *attr,
				   const char *buf, size_t count)
{
	bool on;
	int ret;

	if (!READ_ONCE(clms_test_knobs))
		return -EPERM;
	ret = kstrtobool(buf, &on);
	if (ret)
		return ret;
	mutex_lock(&clms_tn_lock);
	if (on && !clms_tn_registered) {
		spin_lock(&clms_tn_log_lock);
		clms_tn_next = 0;
		spin_unlock(&clms_tn_log_lock);
		ret = clms_register_notifier(&clms_test_nb);
		clms_tn_registered = !ret;
	} else if (!on && clms_tn_registered) {
		clms_unregister_notifier(&clms_test_nb);
		clms_tn_registered = false;
	}
	mutex_unlock(&clms_tn_lock);
	return ret ? ret : count;
}

static struct kobj_attribute test_notifier_attr =
	__ATTR_RW_MODE(test_notifier, 0600);

struct clms_counter_attr {
	struct kobj_attribute attr;
	enum clms_counter counter;
};

static struct clms_counter_attr clms_counter_attrs[CLMS_NR_COUNTERS];

static ssize_t clms_counter_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	struct clms_counter_attr *ca =
		container_of(attr, struct clms_counter_attr, attr);

	return sysfs_emit(buf, "%lld\n",
			  atomic64_read(&clms_counters[ca->counter]));
}

static struct attribute *clms_fixed_attrs[] = {
	&heartbeat_ms_attr.attr,
	&timeout_ms_attr.attr,
	&transition_attr.attr,
	&master_attr.attr,
	&quorum_attr.attr,
	&incarnation_attr.attr,
	&mode_attr.attr,
	&up_nodes_attr.attr,
	&name_attr.attr,
	&members_attr.attr,
	&test_ping_attr.attr,
	&test_notifier_attr.attr,
};

static struct attribute *clms_attrs[ARRAY_SIZE(clms_fixed_attrs) +
				    CLMS_NR_COUNTERS + 1];

static const struct attribute_group clms_group = {
	.attrs = clms_attrs,
};

static int clms_sysfs_init(void)
{
	unsigned int i, nr = 0;
	int ret;

	for (i = 0; i < ARRAY_SIZE(clms_fixed_attrs); i++)
		clms_attrs[nr++] = clms_fixed_attrs[i];
	for (i = 0; i < CLMS_NR_COUNTERS; i++) {
		struct clms_counter_attr *ca = &clms_counter_attrs[i];

		sysfs_attr_init(&ca->attr.attr);
		ca->attr.attr.name = clms_counter_names[i];
		ca->attr.attr.mode = 0444;
		ca->attr.show = clms_counter_show;
		ca->counter = i;
		clms_attrs[nr++] = &ca->attr.attr;
	}

	clms_kobj = kobject_create_and_add("clms", ssi_sysfs_root());
	if (!clms_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(clms_kobj, &clms_group);
	if (ret) {
		kobject_put(clms_kobj);
		return ret;
	}
	mutex_lock(&clms_kobj_lock);
	clms_kobj_live = true;
	mutex_unlock(&clms_kobj_lock);
	return 0;
}

static void clms_sysfs_exit(void)
{
	mutex_lock(&clms_kobj_lock);
	clms_kobj_live = false;
	mutex_unlock(&clms_kobj_lock);
	sysfs_remove_group(clms_kobj, &clms_group);
	kobject_put(clms_kobj);
}

int clms_user_init(void)
{
	int ret;

	ret = clms_sysfs_init();
	if (ret)
		return ret;
	ret = clms_ssisys_register();
	if (ret) {
		clms_sysfs_exit();
		cancel_work_sync(&clms_sysfs_notify_work);
	}
	return ret;
}

void clms_user_exit(void)
{
	clms_ssisys_unregister(ARRAY_SIZE(clms_ssisys_cmds));
	clms_sysfs_exit();
	if (clms_tn_registered)
		clms_unregister_notifier(&clms_test_nb);
}

/* Once nothing can call clms_user_changed() any more. */
void clms_user_final(void)
{
	cancel_work_sync(&clms_sysfs_notify_work);
}
