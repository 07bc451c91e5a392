// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the cluster file system: a directory of one node, its server,
 * mounted on other nodes (mount -t cfs NODE:/path /mountpoint).
 *
 * Protocol (messages in cfs.ics, ICS bulk channel), version 1: no cache
 * -----------------------------------------------------------------
 * Every operation of a client is a call to the server, made when it
 * happens, and nothing the server says is kept past the operation that
 * asked for it: attributes are fetched for every stat (->getattr), every
 * cached dentry is looked up again before it is used (->d_revalidate),
 * every read and write goes to the server's open file.  So a client sees
 * the server's file system as it is when each call is served: a write()
 * that returned on one node is seen by a read() on any other that starts
 * after it, sizes and times agree, and entries appear and vanish
 * everywhere at once.  Speed comes later from a page and attribute cache
 * under server-granted tokens; this version is the coherent base it must
 * match.
 *
 * Files.  The server names a file by an exportfs file handle of its own
 * file system (ext4: inode number and generation), under an export: the
 * directory a client mounted (mount: CAP_SYS_ADMIN, a directory; the same
 * path is the same export).  A handle that no longer decodes (the file
 * was deleted) is ESTALE.  Handles are not checked to lie under their
 * export's directory (as NFS's no_subtree_check): a client could only
 * name files it was given handles of, or guess them, and every operation
 * is permission-checked as the caller anyway.
 *
 * Credentials.  Every request carries the caller's (ssi_creds: ids in the
 * initial user namespace, capability sets, up to 64 groups; a caller in
 * more is refused with EPERM before anything is sent), and the server
 * performs the operation under them (override_creds() of ssi_cred_build()),
 * so the server's file system checks permissions, and returns errnos, as
 * for a local caller.  Opening a file checks the access the flags ask for
 * (inode_permission()), as open(2) does.
 *
 * Open files.  An open asks the server to open the file under the
 * caller's credentials and to export that open file through rfile for the
 * client node; the client imports it as a proxy, and read, write,
 * pread/pwrite, O_APPEND, fsync, lseek, record locks (POSIX and OFD) and
 * flock use rfile's forwarding (its protocol: kernel/ipc/rfile_main.c).
 * Locks are thus the server's, on its file, together with those of every
 * other node and of the server's own processes: a lock held on one node
 * blocks the others, F_GETLK reports the holder's (clusterwide) PID,
 * close(2) drops the closer's POSIX locks, and a client node going down
 * gives its open files, and their locks, back (rfile's nodedown).
 * F_SETLKW waits by asking again (no deadlock detection across nodes).
 * The client's file keeps its own position and gives it with every read
 * and write.  The open file lives
 * on the server until the last client reference goes (close, or the
 * client node going down), so an unlinked file stays readable and
 * writable by those that hold it open, as locally.
 *
 * Namespace.  lookup, create (O_EXCL is the server's vfs_create() on a
 * locked directory: exclusive clusterwide), mkdir, unlink, rmdir and
 * rename are calls made under the server's directory locks; readdir
 * returns as many entries as fit in a reply from a position, and the next
 * position (the server file system's own directory cookie).  setattr
 * carries chmod, chown, truncate (O_TRUNC too) and utimes.
 *
 * Failure.  A call that cannot reach the server (ICS: EHOSTDOWN, ENOTCONN,
 * ETIMEDOUT...) fails with EIO, within CFS_TIMEOUT; the open files of a
 * dead server fail with EIO as rfile's proxies do.  The mount stays and
 * works again once the server is back (handles are the file system's own,
 * so they survive its reboot; open files do not).
 *
 * symlink, link, readlink (read from the server at every use), statfs (the
 * server file system's figures) and extended attributes (user., trusted.,
 * security.: get, set, remove, list) are calls too.
 *
 * Not yet: the page cache under tokens, the server mounting its own
 * export (refused: its files are there already), clusterwide mounts and
 * their propagation, mmap (ENODEV), devices, FIFOs and sockets on CFS (mknod is
 * refused, opening one is EOPNOTSUPP), POSIX ACLs, and migration
 * reopening CFS files instead of forwarding them.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/module.h>

#include "cfs_gen.h"
#include "cfs_internal.h"

/*
 * What a failed call returns to the caller: the server's own errno, but
 * an unreachable or silent server (or an ICS failure) is EIO.
 */
int cfs_errno(int err)
{
	switch (err) {
	case -EHOSTDOWN:
	case -EHOSTUNREACH:
	case -ENOTCONN:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -ETIMEDOUT:
	case -EPROTONOSUPPORT:
	case -EBADMSG:
	case -EMSGSIZE:
	case -EPROTO:
		return -EIO;
	}
	if (err < -MAX_ERRNO || err > 0)
		return -EIO;
	return err;
}

int cfs_init(void)
{
	int ret;

	if (!ssi_node_num()) {
		pr_err("this node is not clustered (no ssi.node=)\n");
		return -ENODEV;
	}
	ret = cfs_inode_cache_init();
	if (ret)
		return ret;
	ret = ics_register_service(&cfs_ics_service);
	if (ret)
		goto err_cache;
	ret = register_filesystem(&cfs_fs_type);
	if (ret)
		goto err_service;
	pr_info("cluster file system on node %u (no cache: every operation asks its server)\n",
		ssi_node_num());
	return 0;

err_service:
	ics_unregister_service(&cfs_ics_service);
err_cache:
	cfs_inode_cache_exit();
	return ret;
}

void cfs_exit(void)
{
	unregister_filesystem(&cfs_fs_type);
	ics_unregister_service(&cfs_ics_service);
	cfs_srv_exit();
	cfs_inode_cache_exit();
}
