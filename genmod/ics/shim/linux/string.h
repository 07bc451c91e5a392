/* SPDX-License-Identifier: GPL-2.0-only */
/* Userspace stand-in for <linux/string.h> (genmod.ics host tests). */
#ifndef _ICS_SHIM_LINUX_STRING_H
#define _ICS_SHIM_LINUX_STRING_H

#include <string.h>

#endif
