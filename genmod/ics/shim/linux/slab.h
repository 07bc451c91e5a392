/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Userspace stand-in for <linux/slab.h> (genmod.ics host tests).
 * kvmalloc() memory comes filled with 0xa5, so generated code that reads
 * what it did not write shows in the tests.  Set
 * ics_shim_allocs_left to N >= 0 to make every allocation after the next
 * N fail (-1, the default: never fail).
 */
#ifndef _ICS_SHIM_LINUX_SLAB_H
#define _ICS_SHIM_LINUX_SLAB_H

#include <stdlib.h>
#include <string.h>
#include <linux/types.h>

typedef unsigned int gfp_t;

#define GFP_KERNEL 0u

__attribute__((weak)) long ics_shim_allocs_left = -1;

static inline void *ics_shim_alloc(size_t size, bool zero)
{
	if (ics_shim_allocs_left == 0)
		return NULL;
	if (ics_shim_allocs_left > 0)
		ics_shim_allocs_left--;
	void *p;

	if (zero)
		return calloc(1, size ? size : 1);
	/* poisoned as SLUB debugging would: nothing may rely on its contents */
	p = malloc(size ? size : 1);
	if (p)
		memset(p, 0xa5, size);
	return p;
}

static inline void *kvmalloc(size_t size, gfp_t flags __always_unused)
{
	return ics_shim_alloc(size, false);
}

static inline void *kvzalloc(size_t size, gfp_t flags __always_unused)
{
	return ics_shim_alloc(size, true);
}

static inline void kvfree(const void *p)
{
	free((void *)(uintptr_t)p);
}

#define kmalloc kvmalloc
#define kzalloc kvzalloc
#define kfree kvfree

#endif
