/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace stand-in for <linux/kernel.h> (genmod.ics host tests). */
#ifndef _ICS_SHIM_LINUX_KERNEL_H
#define _ICS_SHIM_LINUX_KERNEL_H

#include <linux/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
