/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * CFS, what other modules may know of its files without depending on the
 * cfs module: the super block magic, and that an open regular file of CFS
 * keeps the server's open file it stands for (an rfile proxy) in
 * ->private_data (kernel/cfs/cfs_file.c).  Process migration moves that
 * open file itself.
 */
#ifndef _SSI_CFS_H
#define _SSI_CFS_H

#include <linux/fs.h>

#define CFS_SUPER_MAGIC		0x43465331	/* "CFS1" */

/* The server's open file behind @file, or NULL if @file is not CFS's. */
static inline struct file *cfs_backing_file(struct file *file)
{
	struct inode *inode = file_inode(file);

	if (inode->i_sb->s_magic != CFS_SUPER_MAGIC || !S_ISREG(inode->i_mode))
		return NULL;
	return file->private_data;
}

#endif /* _SSI_CFS_H */
