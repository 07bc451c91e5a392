/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * rfile, ssikit remote file access: a node keeps an open file (a tty, a
 * pipe or FIFO end, a socket, a file on a node-local filesystem, a device)
 * on behalf of other nodes, and they use it through proxy files whose
 * file_operations forward each call over ICS to the node that holds it.
 * Process migration moves descriptors this way; CFS and clusterwide IPC
 * build on it.
 *
 * A handle names one exported open file clusterwide: the node that holds
 * it and an id unique there.  The holding node counts references per node:
 * rfile_export() and rfile_get() take one for a node, importing consumes
 * it into that node's proxy, and the proxy's last fput (or that node going
 * down) gives it back.  The exported file is released when no node holds a
 * reference.
 */
#ifndef _SSI_RFILE_H
#define _SSI_RFILE_H

#include <linux/types.h>

struct file;

struct rfile_handle {
	u32 node;	/* the node that holds the open file */
	u64 id;		/* unique on that node, never reused while it runs */
};

/*
 * On the node that holds @file: export it for @to_node (one reference for
 * that node; the file itself gets a reference of its own).  A file already
 * exported keeps its handle.  0 or -ENOMEM; may sleep.
 */
int rfile_export(struct file *file, unsigned int to_node,
		 struct rfile_handle *h);

/*
 * What a file system serving its files through rfile (CFS) runs around
 * each read and write a node makes of a regular file exported with
 * rfile_export_hooked(): @begin before it (a negative errno refuses the op;
 * any other value is handed to @end, after it); and @release when the
 * export goes (no node holds it any more).  One set at a time;
 * rfile_set_io_hooks(NULL) returns once no op runs them any more.
 */
struct rfile_io_hooks {
	int (*begin)(struct file *file, unsigned int from, bool write);
	void (*end)(struct file *file, bool write, int cookie);
	void (*release)(struct file *file);
};

void rfile_set_io_hooks(const struct rfile_io_hooks *hooks);

/* rfile_export(), its reads and writes running the I/O hooks. */
int rfile_export_hooked(struct file *file, unsigned int to_node,
			struct rfile_handle *h);

/*
 * On the node that holds it: the file of export @id, for a call of node
 * @from that holds a reference of it (NULL otherwise).  fput() it.
 */
struct file *rfile_export_file_get(u64 id, unsigned int from);

/*
 * Take one more reference of @h for @to_node (a proxy moving on to another
 * node).  Asks h->node over ICS unless that is this node.  0, -ENOENT
 * (no such export), or an ICS errno (-EHOSTDOWN...).  May sleep.
 */
int rfile_get(const struct rfile_handle *h, unsigned int to_node);

/* Give back a reference taken for @to_node that will not be imported. */
void rfile_put(const struct rfile_handle *h, unsigned int to_node);

/*
 * On the node a reference was taken for: the file to install, consuming
 * that reference.  On h->node itself this is the exported file (a process
 * coming back gets its own open file again); elsewhere a proxy whose
 * operations go to h->node.  @f_flags are the open file's flags (O_ACCMODE,
 * O_APPEND, O_NONBLOCK...) as the holder reported them.  ERR_PTR on error
 * (the reference is then given back).  May sleep.
 */
struct file *rfile_import(const struct rfile_handle *h, unsigned int f_flags);

/* True if @file is a proxy; *@h is then its handle. */
bool rfile_is_proxy(struct file *file, struct rfile_handle *h);

/* True if @file is a proxy whose holder went down (its calls fail EIO). */
bool rfile_proxy_is_dead(struct file *file);

/*
 * A proxy of @h, whose holder went down, for a process moving on with a
 * descriptor it served: every call fails with EIO, as with the proxy it
 * stands for.  Takes and gives back no reference.  ERR_PTR(-ENOMEM).
 */
struct file *rfile_import_dead(const struct rfile_handle *h,
			       unsigned int f_flags);

#endif /* _SSI_RFILE_H */
