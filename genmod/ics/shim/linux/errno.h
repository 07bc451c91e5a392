/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace stand-in for <linux/errno.h> (genmod.ics host tests): the
 * uapi header of the same name has the E* values; <errno.h> reaches this
 * file too, through <bits/errno.h>.
 */
#ifndef _ICS_SHIM_LINUX_ERRNO_H
#define _ICS_SHIM_LINUX_ERRNO_H

#include_next <linux/errno.h>

#endif
