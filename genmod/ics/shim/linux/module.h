/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace stand-in for <linux/module.h> (genmod.ics host tests). */
#ifndef _ICS_SHIM_LINUX_MODULE_H
#define _ICS_SHIM_LINUX_MODULE_H

struct module;

#define THIS_MODULE ((struct module *)0)

#endif
