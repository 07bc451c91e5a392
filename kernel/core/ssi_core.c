// SPDX-License-Identifier: GPL-2.0-only
/*
 * ssi_core: registers with the kernel's SSI hook table, serves the ssisys
 * system call through a per-command table other SSI modules fill, and
 * owns /sys/kernel/ssi.  rexec, rfork and migrate stay unserved until the
 * modules that implement them exist.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/kobject.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/sysfs.h>

#include "ssi_core.h"
#include "ssi_core_gen.h"

static struct kobject *ssi_kobj;

static const struct ssisys_handler __rcu *ssisys_table[SSISYS_NR_CMDS];
static DEFINE_MUTEX(ssisys_table_lock);

static bool ssisys_builtin(unsigned int cmd)
{
	return cmd == SSISYS_ABI_VERSION || cmd == SSISYS_NODE_NUM ||
	       cmd == SSISYS_MAX_NODES;
}

int ssisys_register(unsigned int cmd, const struct ssisys_handler *handler)
{
	int ret = 0;

	if (cmd >= SSISYS_NR_CMDS || ssisys_builtin(cmd) || !handler ||
	    !handler->call || !handler->owner)
		return -EINVAL;

	mutex_lock(&ssisys_table_lock);
	if (rcu_access_pointer(ssisys_table[cmd]))
		ret = -EBUSY;
	else
		rcu_assign_pointer(ssisys_table[cmd], handler);
	mutex_unlock(&ssisys_table_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ssisys_register);

void ssisys_unregister(unsigned int cmd, const struct ssisys_handler *handler)
{
	if (cmd >= SSISYS_NR_CMDS)
		return;

	mutex_lock(&ssisys_table_lock);
	if (rcu_access_pointer(ssisys_table[cmd]) == handler)
		RCU_INIT_POINTER(ssisys_table[cmd], NULL);
	mutex_unlock(&ssisys_table_lock);
	synchronize_rcu();
}
EXPORT_SYMBOL_GPL(ssisys_unregister);

struct kobject *ssi_sysfs_root(void)
{
	return ssi_kobj;
}
EXPORT_SYMBOL_GPL(ssi_sysfs_root);

static long ssi_core_ssisys(unsigned int cmd, void __user *buf, size_t len)
{
	const struct ssisys_handler *handler;
	long ret;

	switch (cmd) {
	case SSISYS_ABI_VERSION:
		return SSI_ABI_VERSION;
	case SSISYS_NODE_NUM:
		return ssi_node_num();
	case SSISYS_MAX_NODES:
		return SSI_MAX_NODES;
	}
	if (cmd >= SSISYS_NR_CMDS)
		return -ENOIOCTLCMD;
	/* @cmd indexes a table of function pointers: no speculation past the check. */
	cmd = array_index_nospec(cmd, SSISYS_NR_CMDS);

	rcu_read_lock();
	handler = rcu_dereference(ssisys_table[cmd]);
	if (handler && !try_module_get(handler->owner))
		handler = NULL;
	rcu_read_unlock();
	if (!handler)
		return -ENOIOCTLCMD;

	ret = handler->call(buf, len);
	module_put(handler->owner);
	return ret;
}

static const struct ssi_proc_ops __rcu *ssi_proc_ptr;
static DEFINE_MUTEX(ssi_proc_lock);

static void ssi_core_route_proc_calls(const struct ssi_proc_ops *ops);

int ssi_proc_register(const struct ssi_proc_ops *ops)
{
	int ret = 0;

	if (!ops || !ops->owner)
		return -EINVAL;
	mutex_lock(&ssi_proc_lock);
	if (rcu_access_pointer(ssi_proc_ptr)) {
		ret = -EBUSY;
	} else {
		rcu_assign_pointer(ssi_proc_ptr, ops);
		ssi_core_route_proc_calls(ops);
	}
	mutex_unlock(&ssi_proc_lock);
	return ret;
}
EXPORT_SYMBOL_GPL(ssi_proc_register);

void ssi_proc_unregister(const struct ssi_proc_ops *ops)
{
	mutex_lock(&ssi_proc_lock);
	if (rcu_access_pointer(ssi_proc_ptr) == ops)
		RCU_INIT_POINTER(ssi_proc_ptr, NULL);
	mutex_unlock(&ssi_proc_lock);
	synchronize_rcu();
}
EXPORT_SYMBOL_GPL(ssi_proc_unregister);

static const struct ssi_proc_ops *ssi_proc_get(void)
{
	const struct ssi_proc_ops *ops;

	rcu_read_lock();
	ops = rcu_dereference(ssi_proc_ptr);
	if (ops && !try_module_get(ops->owner))
		ops = NULL;
	rcu_read_unlock();
	return ops;
}

static long ssi_core_migrate(unsigned int node)
{
	const struct ssi_proc_ops *ops = ssi_proc_get();
	long ret = -ENOSYS;

	if (ops && ops->migrate)
		ret = ops->migrate(node);
	if (ops)
		module_put(ops->owner);
	return ret;
}

static long ssi_core_rfork(unsigned int node)
{
	const struct ssi_proc_ops *ops = ssi_proc_get();
	long ret = -ENOSYS;

	if (ops && ops->rfork)
		ret = ops->rfork(node);
	if (ops)
		module_put(ops->owner);
	return ret;
}

static long ssi_core_rexec(unsigned int node, const struct ssi_exec_args *args)
{
	const struct ssi_proc_ops *ops = ssi_proc_get();
	long ret = -ENOSYS;

	if (ops && ops->rexec)
		ret = ops->rexec(node, args);
	if (ops)
		module_put(ops->owner);
	return ret;
}

/*
 * migrate, rfork and rexec stay unserved (the kernel answers ENOSYS, before
 * looking at the node) until a module registers them; from then on they
 * are routed here, which answers ENOSYS while none is registered.  A
 * member is never cleared once set: the kernel reads it twice per call.
 */
static struct ssi_ops ssi_core_ops = {
	.owner = THIS_MODULE,
	.ssisys = ssi_core_ssisys,
};

static void ssi_core_route_proc_calls(const struct ssi_proc_ops *ops)
{
	if (ops->migrate)
		WRITE_ONCE(ssi_core_ops.migrate, ssi_core_migrate);
	if (ops->rfork)
		WRITE_ONCE(ssi_core_ops.rfork, ssi_core_rfork);
	if (ops->rexec)
		WRITE_ONCE(ssi_core_ops.rexec, ssi_core_rexec);
}

static ssize_t node_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%u\n", ssi_node_num());
}

static struct kobj_attribute node_attr = __ATTR_RO(node);

static ssize_t abi_version_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%d\n", SSI_ABI_VERSION);
}

static struct kobj_attribute abi_version_attr = __ATTR_RO(abi_version);

static struct attribute *ssi_core_attrs[] = {
	&node_attr.attr,
	&abi_version_attr.attr,
	NULL,
};

static const struct attribute_group ssi_core_group = {
	.attrs = ssi_core_attrs,
};

int ssi_core_init(void)
{
	int ret;

	if (!ssi_node_num())
		pr_warn("booted without ssi.node=: this node is not clustered\n");

	ssi_kobj = kobject_create_and_add("ssi", kernel_kobj);
	if (!ssi_kobj)
		return -ENOMEM;

	ret = sysfs_create_group(ssi_kobj, &ssi_core_group);
	if (ret)
		goto err_put;

	ret = ssi_register_ops(&ssi_core_ops);
	if (ret) {
		pr_err("cannot register SSI ops: %d\n", ret);
		goto err_group;
	}

	pr_info("node %u, ABI %d\n", ssi_node_num(), SSI_ABI_VERSION);
	return 0;

err_group:
	sysfs_remove_group(ssi_kobj, &ssi_core_group);
err_put:
	kobject_put(ssi_kobj);
	return ret;
}

void ssi_core_exit(void)
{
	ssi_unregister_ops(&ssi_core_ops);
	sysfs_remove_group(ssi_kobj, &ssi_core_group);
	kobject_put(ssi_kobj);
}
