// SPDX-License-Identifier: GPL-2.0-only
/*
 * The credentials of a remote caller: what its node packs into a request
 * (ssi_creds_current()) and what the serving node acts under
 * (ssi_cred_build()), for every service that acts for a caller (vproc,
 * cfs).  A remote operation never has more privilege than the same call
 * made locally: the server overrides its credentials with these for the
 * whole operation, so the kernel's own permission checks and LSM hooks
 * run as they would for the caller.
 */
#include <linux/bitops.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/sched.h>
#include <linux/sched/task.h>
#include <linux/securebits.h>
#include <linux/uidgid.h>

#include "ssi_core.h"

/*
 * The caller's credentials for a request, in the initial user namespace.
 * Capabilities held in another user namespace give nothing there, so a
 * caller outside the initial one sends none.  -E2BIG: more supplementary
 * groups than a request carries (the caller is refused, never sent with
 * fewer groups than it has).
 */
int ssi_creds_current(struct ssi_creds *c)
{
	const struct cred *cred = current_cred();
	const struct group_info *gi = cred->group_info;
	u32 i;

	if (gi->ngroups > SSI_CREDS_NGROUPS)
		return -E2BIG;
	c->uid = from_kuid_munged(&init_user_ns, cred->uid);
	c->euid = from_kuid_munged(&init_user_ns, cred->euid);
	c->suid = from_kuid_munged(&init_user_ns, cred->suid);
	c->fsuid = from_kuid_munged(&init_user_ns, cred->fsuid);
	c->gid = from_kgid_munged(&init_user_ns, cred->gid);
	c->egid = from_kgid_munged(&init_user_ns, cred->egid);
	c->sgid = from_kgid_munged(&init_user_ns, cred->sgid);
	c->fsgid = from_kgid_munged(&init_user_ns, cred->fsgid);
	c->cap_effective = 0;
	c->cap_permitted = 0;
	if (cred->user_ns == &init_user_ns) {
		for (i = 0; i <= CAP_LAST_CAP; i++) {
			if (cap_raised(cred->cap_effective, i))
				c->cap_effective |= BIT_ULL(i);
			if (cap_raised(cred->cap_permitted, i))
				c->cap_permitted |= BIT_ULL(i);
		}
	}
	c->ngroups = gi->ngroups;
	for (i = 0; i < gi->ngroups; i++)
		c->groups[i] = from_kgid_munged(&init_user_ns, gi->gid[i]);
	return 0;
}
EXPORT_SYMBOL_GPL(ssi_creds_current);

static bool ssi_kuid(u32 id, kuid_t *k)
{
	*k = make_kuid(&init_user_ns, id);
	return uid_valid(*k);
}

static bool ssi_kgid(u32 id, kgid_t *k)
{
	*k = make_kgid(&init_user_ns, id);
	return gid_valid(*k);
}

/*
 * Credentials for serving a remote caller: a copy of this node's PID 1's
 * (the initial user namespace, and the LSM state of a user process that
 * made no domain transition; never the kernel's own), with every id,
 * both capability sets and the groups replaced by the caller's, no
 * inheritable or ambient capabilities and default securebits.  The server
 * overrides its credentials with them (override_creds()) for the whole
 * call, so the kernel's own checks and hooks run as for a local caller.
 * put_cred() the result.  -EINVAL: an id that maps to nothing.
 */
struct cred *ssi_cred_build(const struct ssi_creds *c)
{
	kuid_t uid, euid, suid, fsuid;
	kgid_t gid, egid, sgid, fsgid;
	struct task_struct *init;
	struct group_info *gi;
	struct cred *cred;
	u32 i;

	if (!ssi_kuid(c->uid, &uid) || !ssi_kuid(c->euid, &euid) ||
	    !ssi_kuid(c->suid, &suid) || !ssi_kuid(c->fsuid, &fsuid) ||
	    !ssi_kgid(c->gid, &gid) || !ssi_kgid(c->egid, &egid) ||
	    !ssi_kgid(c->sgid, &sgid) || !ssi_kgid(c->fsgid, &fsgid) ||
	    c->ngroups > SSI_CREDS_NGROUPS)
		return ERR_PTR(-EINVAL);

	gi = groups_alloc(c->ngroups);
	if (!gi)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < c->ngroups; i++) {
		if (!ssi_kgid(c->groups[i], &gi->gid[i])) {
			put_group_info(gi);
			return ERR_PTR(-EINVAL);
		}
	}
	groups_sort(gi);

	rcu_read_lock();
	init = pid_task(find_pid_ns(1, &init_pid_ns), PIDTYPE_PID);
	if (init)
		get_task_struct(init);
	rcu_read_unlock();
	if (!init) {
		put_group_info(gi);
		return ERR_PTR(-ESRCH);
	}
	cred = prepare_kernel_cred(init);
	put_task_struct(init);
	if (!cred) {
		put_group_info(gi);
		return ERR_PTR(-ENOMEM);
	}
	if (cred->user_ns != &init_user_ns) {
		put_group_info(gi);
		put_cred(cred);
		return ERR_PTR(-EINVAL);
	}

	cred->uid = uid;
	cred->euid = euid;
	cred->suid = suid;
	cred->fsuid = fsuid;
	cred->gid = gid;
	cred->egid = egid;
	cred->sgid = sgid;
	cred->fsgid = fsgid;
	cred->securebits = SECUREBITS_DEFAULT;
	cap_clear(cred->cap_inheritable);
	cap_clear(cred->cap_permitted);
	cap_clear(cred->cap_effective);
	cap_clear(cred->cap_ambient);
	for (i = 0; i <= CAP_LAST_CAP; i++) {
		if (c->cap_permitted & BIT_ULL(i))
			cap_raise(cred->cap_permitted, i);
		/* Effective is always within permitted, as locally. */
		if (c->cap_effective & c->cap_permitted & BIT_ULL(i))
			cap_raise(cred->cap_effective, i);
	}
	set_groups(cred, gi);
	put_group_info(gi);
	return cred;
}
EXPORT_SYMBOL_GPL(ssi_cred_build);
