// SPDX-License-Identifier: GPL-2.0-only
/*
 * CFS, the cluster file system: a directory of one node, its server,
 * mounted on other nodes (mount -t cfs NODE:/path /mountpoint).
 *
 * Protocol (messages in cfs.ics, ICS bulk channel), version 5: attributes
 * and entries under tokens, pages (mapped, read(2)'s and write(2)'s) under
 * data tokens
 * -----------------------------------------------------------------
 * Every operation that changes something, and every read and write of
 * data, is a call to the server, made when it happens.  What a client
 * keeps is a file's attributes and a directory's entries (its dentries,
 * positive and negative), and only while it holds the server's token on
 * that file (cfs_token.c); without one, every stat asks the server
 * (->getattr) and every cached dentry is looked up again before it is
 * used (->d_revalidate), as in version 1.
 *
 * Tokens.  States of a (client, file) pair: none, held.  Messages: every
 * reply that carries a file's attributes (mount, getattr, lookup, create,
 * setattr, symlink, link) carries @token, and lookup also @dir_token for
 * the directory: the server registered the caller as a holder (an
 * fsnotify mark of CFS's group on its inode, holders a node mask) before
 * it read them, and @token is its revoke sequence number at that moment
 * (0: no token).  revoke(seq, ino, fh), server -> client: the file
 * changed.  Server: any change to a marked inode, by anyone (a CFS call,
 * rfile's read/write/truncate for a client, the server's own processes),
 * raises an fsnotify event in the changer's context once the change is
 * visible: attributes or data (FS_ATTRIB, FS_MODIFY), a directory's
 * entries (FS_CREATE, FS_DELETE, FS_MOVED_FROM, FS_MOVED_TO), the file
 * itself going or moving.  The handler takes every holder off, bumps the
 * sequence number and calls revoke on each holder, waiting for each
 * answer: the change's system call (and so the client call that made it)
 * returns only after every holder has dropped what it kept.  A token
 * nobody holds goes.  Client: holds iff its inode's tok equals the
 * mount's epoch.  It takes a reply's token only if no revoke from that
 * server with a higher number has come since (spin lock, checked and set
 * at once): a revoke for the file may have overtaken the reply, and one
 * for another file just costs a call.  A revoke drops the file's token and
 * bumps its dir_gen: dentries are stamped (d_time) with their directory's
 * dir_gen when looked up, and a dentry is trusted without a call only
 * while its directory's token is held and the stamp is current, also in
 * an RCU walk.  Permission checks use attributes under a token (fetched,
 * with one, when there is none).
 *
 * Races.  A revoke and a reply crossing: the sequence check above.  A
 * change between the server's registering and reading: the reader sees
 * it, and its revoke (a higher number) follows.  A change made before the
 * registering: read by it; its revoke, if one overtakes the reply, has a
 * number not above the reply's token, so the token stands.  A revoke for
 * a file the client has no inode of: nothing to drop.  A grant racing the
 * handler that removes a token nobody holds: the grant finds it going and
 * makes a new one (bounded retries, else no token).  Node failure: a client
 * going down is taken off every token; a server going down bumps the
 * epoch of its mounts on every client (all their tokens go) and forgets
 * its revoke numbers (a new incarnation starts again).  A holder that does
 * not answer a revoke within CFS_TIMEOUT is left (logged): it is going
 * down, and its own nodedown drops its tokens.
 *
 * Not kept, so always current: readdir, symlink targets, statfs.  atime
 * changes by reads raise no event: a client's cached atime lags the
 * server's, and a read served from kept pages (below) does not touch the
 * server's.
 *
 * Pages (version 3: mmap; version 4: read(2); version 5: write(2)).  A
 * mapping of a CFS file maps the client's page cache (cfs_data.c), read(2)
 * reads it and write(2) writes into it (cfs_file.c), except for O_DIRECT,
 * the server's own mount, and for a second after a recall of the file
 * here (another node is using it, and keeping pages would only add a
 * recall to each of its ops); write(2) also not for O_APPEND, O_SYNC or
 * O_DSYNC, nor for set-user-ID or set-group-ID files.  Those go to the
 * server's open file at once (write-through) and drop the range here.
 * The pages are kept under the server's data state of the file
 * (cfs_token.c): a set of nodes that keep clean pages (readers) and at
 * most one that may keep dirty ones (the writer), never both at once.
 * Messages: readpages(id, pos, count) -> (len, pages) registers the
 * caller as a reader, then reads (a fault and its readahead, a page a
 * write fills in part) into pages that travel as themselves, up to
 * 256 KiB a call;
 * writable(id) -> (seq, size) makes the caller the writer (the first
 * store to a page of a shared writable mapping, ->page_mkwrite; a
 * write(2) kept), and revokes every other node's token on the file;
 * recall(seq, ino, fh), server -> client: unmap every page of the file,
 * write the dirty ones back, drop them all, then answer.  @id is the
 * rfile export of the caller's open file of it, which the server checks
 * the caller holds, open for reading (readpages) or writing (writable).
 * Server, before each data op of a node (rfile's reads and writes of a
 * file CFS opened, through rfile's I/O hooks; a truncation; the server's
 * own mount's reads and writes): recall every node in the way (a read:
 * the writer, unless it is the caller; a write, a truncation or writable:
 * every other node keeping pages), one recall at a time per file (its
 * token stays while a client has the file open: cfs_srv_open() counts
 * it, rfile's release hook uncounts it); ops are counted while they run,
 * and pages read for keeping wait while a write runs, writable waits
 * until no op runs, and new ops wait while a writable waits (or it could
 * starve).  Every reply that carries a file's attributes to a node other
 * than the writer recalls the writer first (cfs_data_settle()): the
 * writer's write(2)s grow the file and change its times in its own page
 * cache, and the disk has them only once they are written back.  Dirty
 * pages go back with writepages(id, pos, len, pages), from the pages
 * themselves (whole pages, up to 256 KiB a call), which, from the writer or
 * a node being recalled, waits for nothing and recalls nobody (they were
 * dirtied by the writer, and a recall waits for them; from any other node
 * it is a write like rfile's); pages read for keeping by a node being
 * recalled do not wait either (its fault holds them locked, and the
 * recall's invalidation waits for them), so the recaller looks again
 * after each recall.  Every other op of a node being recalled waits like
 * anyone's: one that went ahead would change the file without recalling
 * the others.
 *
 * Client.  The writer's size is the file's: the grant's, grown by its own
 * writes; a reply's smaller size is not taken while the node may keep or
 * still has dirty pages or answers a recall (it predates them), only its
 * own truncation and fallocate set one (after writing everything back).
 * A write(2) that is not kept, fallocate(2) and read(2) not from kept
 * pages first write back the node's dirty pages of the range (fallocate:
 * all), and a write drops its pages of the range after; fsync, msync and
 * the last close of the file for writing here (with no shared writable
 * mapping left) write back; a setattr writes back first (a truncation
 * must find the pages on the disk, and times set after writing must not
 * be undone by their writeback).  Writeback names an open file of the
 * inode's own: the first kept writer's, or one opened for writing at the
 * first shared writable mmap; never O_APPEND.
 *
 * Races.  A recall overtaking the reply to writable: the grant carries
 * the server's sequence number and the recall a higher one; a client
 * whose newest recall of the file is newer than its grant asks again.  A
 * recall racing a kept write(2): the recall takes the grant, then counts
 * itself, then writes back and drops the pages; a write copies at most
 * 256 KiB after each look at the grant, and if a recall was counted since
 * its look, it writes back and drops what it wrote itself (the recall
 * may have gone by those pages before they were dirty), as a write of a
 * node that is not the writer, which recalls the new writer first.  A
 * reply's attributes racing the grant: the writer is set before the
 * other holders are revoked, and a reply's holder registered before the
 * server looks for a writer, so the reply either comes after a recall or
 * has its token revoked.  A recall racing a page being read in: the page
 * is in the page cache, locked, before readpages registers the reader,
 * and the recall's invalidation waits for it and drops it.  A reader
 * that keeps reading while it is recalled: each read for keeping it
 * makes then registers it again, and the recaller, which looks again
 * after each recall, would find it a reader every time (a read(2) loop
 * starved a fallocate for 8 s).  So a client answering a recall of a file
 * starts no read for keeping of it (readahead leaves its pages out;
 * ->read_folio lets go of its page, waits for the recall to end and has
 * the page looked up again), and the server looks again at the file's
 * state without letting go of it in between, so that a read sent after
 * the recall ended waits behind the recaller; only reads already sent
 * when the recall came make another round.  A write fault racing a
 * recall: the recall unmaps first; a fault whose page went retries.
 * Writes by the server's own processes to the file on its disk (not
 * through its CFS mount) recall the readers after them, from the
 * fsnotify event; they do not wait for a writer's dirty pages, which may
 * then overwrite them, and its own processes' stat(2) and read(2) of the
 * disk do not recall the writer: the server's processes share a file
 * with other nodes through the server's own CFS mount.  Node failure: a
 * client going down is no reader or writer any more (its dirty pages are
 * lost, as a crashed node's: what fsync returned for is on the disk); a
 * server going down drops every clean page of its mounts on the clients.
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
 * F_SETLKW waits by asking again, its request left blocked on the server
 * meanwhile, where the kernel's deadlock detection sees it (EDEADLK as on
 * the server's disk; rfile_lkwait.c).
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
 * Clusterwide mounts: a table every node keeps, exchanged at nodeup, so
 * a node that joins later mounts what every node has (cfs_cmount.c, its
 * own protocol at its top).  POSIX ACLs are xattrs of the server's, the
 * ACL the VFS keeps dropped at each revoke (cfs_xattr.c).
 *
 * FIFOs, devices, sockets (create with a file type: mknod).  A FIFO is
 * the server's pipe, one for every node: an open anywhere opens it on
 * the server, O_NONBLOCK there (the server never waits for the other
 * end), and reads and writes it through rfile, which waits on the client
 * for data or room as a local pipe does (cfs_fifo.c).  What a blocking
 * open waits for, the client waits for by asking again: a writer, while
 * the server's open finds no reader (open's @no_reader: ENXIO as an errno
 * would mean an unknown export); a reader, until the FIFO has a writer or
 * has had one since its open (the fifo call, against the count of writer
 * opens the open gave).  A device node opens the opener's own device, as
 * on NFS (clusterwide devices are /cluster/nodeN/dev's business), and is
 * made only with CAP_MKNOD.  A socket file is a name only, as on NFS:
 * connect(2) through CFS does not reach a socket bound on the server.
 */
#define pr_fmt(fmt) "cfs: " fmt

#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/sysfs.h>

#include "cfs_gen.h"
#include "cfs_internal.h"
#include "rfile.h"

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

/*
 * /sys/kernel/ssi/cfs/counters: calls this node made as a client (data
 * I/O is rfile's), revokes it sent as a server and took as a client, and
 * the tokens it keeps as a server, recalls of kept pages it sent as a
 * server and took as a client, and write(2)s it kept in its page cache
 * as a client (the others went to the server at once).
 */
atomic64_t cfs_calls = ATOMIC64_INIT(0);
atomic64_t cfs_revokes_sent = ATOMIC64_INIT(0);
atomic64_t cfs_revokes_taken = ATOMIC64_INIT(0);
atomic64_t cfs_recalls_sent = ATOMIC64_INIT(0);
atomic64_t cfs_recalls_taken = ATOMIC64_INIT(0);
atomic64_t cfs_writes_kept = ATOMIC64_INIT(0);
static struct kobject *cfs_kobj;

static ssize_t counters_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	int n;

	n = sysfs_emit(buf, "calls %lld\nrevokes_sent %lld\nrevokes_taken %lld\n",
		       atomic64_read(&cfs_calls),
		       atomic64_read(&cfs_revokes_sent),
		       atomic64_read(&cfs_revokes_taken));
	n += sysfs_emit_at(buf, n, "tokens %u\nrecalls_sent %lld\nrecalls_taken %lld\n",
			   cfs_tok_count(), atomic64_read(&cfs_recalls_sent),
			   atomic64_read(&cfs_recalls_taken));
	n += sysfs_emit_at(buf, n, "writes_kept %lld\n",
			   atomic64_read(&cfs_writes_kept));
	return n;
}

static struct kobj_attribute cfs_counters_attr = __ATTR_RO(counters);

static ssize_t exports_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	return cfs_srv_exports_show(buf);
}

static struct kobj_attribute cfs_exports_attr = __ATTR_RO(exports);

bool cfs_cache = true;
module_param_named(cache, cfs_cache, bool, 0644);
MODULE_PARM_DESC(cache, "Keep attributes and entries under server tokens (else every stat and lookup asks the server)");

static int cfs_shared_ms_set(const char *val, const struct kernel_param *kp)
{
	unsigned int ms;
	int ret = kstrtouint(val, 0, &ms);

	if (ret)
		return ret;
	if (ms > CFS_SHARED_MAX_MS)
		return -ERANGE;
	WRITE_ONCE(cfs_shared_ms, ms);
	return 0;
}

static const struct kernel_param_ops cfs_shared_ms_ops = {
	.set = cfs_shared_ms_set,
	.get = param_get_uint,
};

unsigned int cfs_shared_ms = 1000;
module_param_cb(shared_ms, &cfs_shared_ms_ops, &cfs_shared_ms, 0644);
MODULE_PARM_DESC(shared_ms, "For this long after a recall of a file's pages, read and write it without keeping pages (0 to 60000 ms)");

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
	ret = cfs_tok_init();
	if (ret)
		goto err_cache;
	ret = ics_register_service(&cfs_ics_service);
	if (ret)
		goto err_tok;
	cfs_kobj = kobject_create_and_add("cfs", ssi_sysfs_root());
	ret = -ENOMEM;
	if (!cfs_kobj)
		goto err_service;
	ret = sysfs_create_file(cfs_kobj, &cfs_counters_attr.attr);
	if (!ret)
		ret = sysfs_create_file(cfs_kobj, &cfs_exports_attr.attr);
	if (ret)
		goto err_kobj;
	ret = cfs_cmount_init(cfs_kobj);
	if (ret)
		goto err_kobj;
	rfile_set_io_hooks(&cfs_srv_io_hooks);
	ret = register_filesystem(&cfs_fs_type);
	if (ret)
		goto err_hooks;
	pr_info("cluster file system on node %u (attributes and entries under tokens%s)\n",
		ssi_node_num(), cfs_cache ? "" : ": off");
	return 0;

err_hooks:
	rfile_set_io_hooks(NULL);
	cfs_cmount_exit();
err_kobj:
	kobject_put(cfs_kobj);
err_service:
	ics_unregister_service(&cfs_ics_service);
err_tok:
	cfs_tok_exit();
err_cache:
	cfs_inode_cache_exit();
	return ret;
}

void cfs_exit(void)
{
	unregister_filesystem(&cfs_fs_type);
	cfs_cmount_exit();
	kobject_put(cfs_kobj);
	/* no call is served after this: no token is granted */
	ics_unregister_service(&cfs_ics_service);
	rfile_set_io_hooks(NULL);
	cfs_tok_exit();
	cfs_srv_exit();
	cfs_inode_cache_exit();
}
