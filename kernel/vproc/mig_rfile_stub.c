// SPDX-License-Identifier: GPL-2.0-only
/* DEV ONLY, not committed: rfile stand-in until rfile.ko lands. */
#include <linux/err.h>
#include <linux/errno.h>
#include "rfile.h"
int rfile_export(struct file *file, unsigned int to_node, struct rfile_handle *h) { return -EOPNOTSUPP; }
int rfile_get(const struct rfile_handle *h, unsigned int to_node) { return -EOPNOTSUPP; }
void rfile_put(const struct rfile_handle *h, unsigned int to_node) { }
struct file *rfile_import(const struct rfile_handle *h, unsigned int f_flags) { return ERR_PTR(-EOPNOTSUPP); }
bool rfile_is_proxy(struct file *file, struct rfile_handle *h) { return false; }
