/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ssi_core: what the other SSI modules use from the core module, i.e. the
 * ssisys command table and the /sys/kernel/ssi directory.
 */
#ifndef _SSI_CORE_H
#define _SSI_CORE_H

#include <linux/kobject.h>
#include <linux/ssi.h>

struct module;

/*
 * One ssisys command.  @call gets the caller's buffer unchecked and must
 * validate @len and every field it reads; it runs with a reference on
 * @owner.
 */
struct ssisys_handler {
	struct module *owner;
	long (*call)(void __user *buf, size_t len);
};

int ssisys_register(unsigned int cmd, const struct ssisys_handler *handler);
void ssisys_unregister(unsigned int cmd,
		       const struct ssisys_handler *handler);

/*
 * migrate, rfork and rexec, served by the migration module (one at a
 * time); a NULL member, or no module, makes the call fail with -ENOSYS.
 * Called with a reference on @owner.
 */
struct ssi_proc_ops {
	struct module *owner;
	long (*migrate)(unsigned int node);
	long (*rfork)(unsigned int node);
	long (*rexec)(unsigned int node, const struct ssi_exec_args *args);
};

int ssi_proc_register(const struct ssi_proc_ops *ops);
void ssi_proc_unregister(const struct ssi_proc_ops *ops);

/* /sys/kernel/ssi; valid while ssi_core is loaded. */
struct kobject *ssi_sysfs_root(void);

#endif /* _SSI_CORE_H */
