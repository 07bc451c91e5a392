/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ssi_core: what the other SSI modules use from the core module, i.e. the
 * ssisys command table, the /sys/kernel/ssi directory, and the credentials
 * a remote caller's requests carry (ssi_creds.c).
 */
#ifndef _SSI_CORE_H
#define _SSI_CORE_H

#include <linux/build_bug.h>
#include <linux/kobject.h>
#include <linux/minmax.h>
#include <linux/ssi.h>
#include <linux/string.h>
#include <linux/types.h>

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

/* Supplementary groups a request carries (array<u32, 64> groups). */
#define SSI_CREDS_NGROUPS		64

/*
 * A caller's credentials as ICS requests carry them (vproc.ics, cfs.ics):
 * the fields uid, euid, suid, fsuid, gid, egid, sgid, fsgid, cap_effective,
 * cap_permitted and array<u32, 64> groups.  Ids in the
 * initial user namespace, capability sets (bit n = capability n) and the
 * supplementary groups.
 */
struct ssi_creds {
	u32 uid, euid, suid, fsuid;
	u32 gid, egid, sgid, fsgid;
	u64 cap_effective, cap_permitted;
	u32 ngroups;
	u32 groups[SSI_CREDS_NGROUPS];
};

/* Copy between struct ssi_creds and a request carrying those fields. */
#define SSI_CREDS_TO_REQ(req, c) do {					\
	typeof(req) r_ = (req);						\
	const struct ssi_creds *c_ = (c);				\
									\
	BUILD_BUG_ON(ARRAY_SIZE(r_->groups) != SSI_CREDS_NGROUPS);		\
	r_->uid = c_->uid;						\
	r_->euid = c_->euid;						\
	r_->suid = c_->suid;						\
	r_->fsuid = c_->fsuid;						\
	r_->gid = c_->gid;						\
	r_->egid = c_->egid;						\
	r_->sgid = c_->sgid;						\
	r_->fsgid = c_->fsgid;						\
	r_->cap_effective = c_->cap_effective;				\
	r_->cap_permitted = c_->cap_permitted;				\
	r_->groups_count = c_->ngroups;					\
	memcpy(r_->groups, c_->groups, c_->ngroups * sizeof(u32));	\
} while (0)

#define SSI_CREDS_FROM_REQ(c, req) do {				\
	struct ssi_creds *c_ = (c);					\
	typeof(req) r_ = (req);						\
									\
	BUILD_BUG_ON(ARRAY_SIZE(r_->groups) != SSI_CREDS_NGROUPS);		\
	c_->uid = r_->uid;						\
	c_->euid = r_->euid;						\
	c_->suid = r_->suid;						\
	c_->fsuid = r_->fsuid;						\
	c_->gid = r_->gid;						\
	c_->egid = r_->egid;						\
	c_->sgid = r_->sgid;						\
	c_->fsgid = r_->fsgid;						\
	c_->cap_effective = r_->cap_effective;				\
	c_->cap_permitted = r_->cap_permitted;				\
	c_->ngroups = min_t(u32, r_->groups_count, SSI_CREDS_NGROUPS);	\
	memcpy(c_->groups, r_->groups, c_->ngroups * sizeof(u32));	\
} while (0)

int ssi_creds_current(struct ssi_creds *c);
struct cred *ssi_cred_build(const struct ssi_creds *c);

/* /sys/kernel/ssi; valid while ssi_core is loaded. */
struct kobject *ssi_sysfs_root(void);

#endif /* _SSI_CORE_H */
