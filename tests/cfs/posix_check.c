// SPDX-License-Identifier: GPL-2.0-only
/*
 * posix_check DIR: a fixed sequence of file, directory, permission and link
 * operations under DIR (which must exist and be empty), each printed with
 * its outcome: what it returned (the part that does not depend on where it
 * ran: sizes, modes, link counts, data, names) or the errno's name.  Run as
 * root; the last steps drop to uid/gid 65534.  The same output from a CFS
 * client and from the server's own file system (with fs.protected_hardlinks
 * on, as CFS's server always has it) is the test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

static void out(const char *step, long ret, const char *detail)
{
	if (ret < 0)
		printf("%-28s %s\n", step, strerrorname_np(errno));
	else if (detail)
		printf("%-28s ok %s\n", step, detail);
	else
		printf("%-28s ok %ld\n", step, ret);
}

static void stat_of(const char *step, const char *path, int follow)
{
	struct stat st;
	char buf[96];
	int ret = follow ? stat(path, &st) : lstat(path, &st);

	if (!ret)
		snprintf(buf, sizeof(buf), "mode %o nlink %lu size %lld uid %u gid %u",
			 st.st_mode, (unsigned long)st.st_nlink,
			 (long long)st.st_size, st.st_uid, st.st_gid);
	out(step, ret, ret ? NULL : buf);
}

static void read_of(const char *step, int fd, off_t at, size_t len)
{
	char buf[64] = "";
	ssize_t n = pread(fd, buf, len < sizeof(buf) ? len : sizeof(buf) - 1, at);
	char shown[160] = "";
	ssize_t i;

	for (i = 0; n > 0 && i < n; i++)
		snprintf(shown + strlen(shown), sizeof(shown) - strlen(shown),
			 buf[i] >= 32 && buf[i] < 127 ? "%c" : "\\%o",
			 (unsigned char)buf[i]);
	out(step, n, n < 0 ? NULL : shown);
}

static void list_of(const char *step, const char *dir)
{
	char names[1024] = "", *sorted[64];
	struct dirent *e;
	int n = 0, i, j;
	DIR *d = opendir(dir);

	if (!d) {
		out(step, -1, NULL);
		return;
	}
	while ((e = readdir(d)) && n < 64)
		sorted[n++] = strdup(e->d_name);
	closedir(d);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (strcmp(sorted[j], sorted[i]) < 0) {
				char *t = sorted[i];

				sorted[i] = sorted[j];
				sorted[j] = t;
			}
	for (i = 0; i < n; i++) {
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%s%s", i ? "," : "", sorted[i]);
		free(sorted[i]);
	}
	out(step, 0, names);
}

int main(int argc, char **argv)
{
	char longname[300], target[64], detail[64];
	struct timespec times[2] = { { 1000000000, 5 }, { 1200000000, 7 } };
	struct statfs sf;
	struct stat st;
	int fd, fd2;
	ssize_t n;

	if (argc != 2 || chdir(argv[1])) {
		fprintf(stderr, "usage: posix_check EMPTY-DIR\n");
		return 2;
	}
	umask(022);
	out("mkdir d", mkdir("d", 0755), NULL);
	out("mkdir d again", mkdir("d", 0755), NULL);
	out("rmdir missing", rmdir("missing"), NULL);
	fd = open("d/f", O_CREAT | O_EXCL | O_WRONLY, 0640);
	out("create d/f excl", fd, fd < 0 ? NULL : "fd");
	out("create d/f excl again", open("d/f", O_CREAT | O_EXCL | O_WRONLY, 0640), NULL);
	out("write hello", write(fd, "hello", 5), NULL);
	out("pwrite X at 10", pwrite(fd, "X", 1, 10), NULL);
	stat_of("stat d/f", "d/f", 1);
	fd2 = open("d/f", O_RDONLY);
	read_of("read d/f", fd2, 0, 20);
	read_of("read at eof", fd2, 11, 5);
	out("ftruncate 3", ftruncate(fd, 3), NULL);
	stat_of("stat after ftruncate", "d/f", 1);
	out("write on read-only fd", write(fd2, "x", 1), NULL);
	out("read on write-only fd", read(fd, detail, 1), NULL);
	close(fd);
	fd = open("d/f", O_WRONLY | O_APPEND);
	out("append ab", write(fd, "ab", 2), NULL);
	out("append cd", write(fd, "cd", 2), NULL);
	close(fd);
	read_of("read after appends", fd2, 0, 20);
	out("truncate path 2", truncate("d/f", 2), NULL);
	stat_of("stat after truncate", "d/f", 1);
	out("fsync", fsync(fd2), NULL);
	close(fd2);
	fd = open("d/f", O_WRONLY | O_TRUNC);
	close(fd);
	stat_of("stat after O_TRUNC", "d/f", 1);
	out("lseek end", (fd = open("d/f", O_RDWR)) < 0 ? -1 :
	    (write(fd, "0123456789", 10), lseek(fd, -3, SEEK_END)), NULL);
	read_of("read after lseek", fd, lseek(fd, 0, SEEK_CUR), 10);
	close(fd);

	out("rename f g", rename("d/f", "d/g"), NULL);
	stat_of("stat old name", "d/f", 1);
	stat_of("stat new name", "d/g", 1);
	fd = open("d/r", O_CREAT | O_WRONLY, 0644);
	out("write r", write(fd, "rrr", 3), NULL);
	close(fd);
	out("rename g over r", rename("d/g", "d/r"), NULL);
	stat_of("stat r", "d/r", 1);
	out("mkdir d/x, d/x/y", mkdir("d/x", 0755) ?: mkdir("d/x/y", 0755), NULL);
	out("mkdir e, e/z", mkdir("e", 0755) ?: mkdir("e/z", 0755), NULL);
	out("rename dir onto non-empty", rename("d/x", "e"), NULL);
	out("rename dir into itself", rename("d/x", "d/x/y/in"), NULL);
	out("rename file onto dir", rename("d/r", "e"), NULL);
	out("rename noreplace", renameat2(AT_FDCWD, "d/r", AT_FDCWD, "e/z",
					  RENAME_NOREPLACE), NULL);

	out("link r h", link("d/r", "d/h"), NULL);
	stat_of("stat after link", "d/r", 1);
	out("link to a dir", link("d/x", "d/xl"), NULL);
	out("link onto existing", link("d/r", "d/h"), NULL);
	out("unlink r", unlink("d/r"), NULL);
	stat_of("stat h after unlink", "d/h", 1);
	out("symlink s -> h", symlink("h", "d/s"), NULL);
	n = readlink("d/s", target, sizeof(target) - 1);
	if (n >= 0)
		target[n] = '\0';
	out("readlink s", n, n < 0 ? NULL : target);
	stat_of("lstat s", "d/s", 0);
	stat_of("stat s", "d/s", 1);
	out("symlink dangling", symlink("nowhere", "d/dangle"), NULL);
	stat_of("stat dangling", "d/dangle", 1);
	out("create through symlink excl", open("d/s", O_CREAT | O_EXCL | O_WRONLY, 0644),
	    NULL);

	out("rmdir non-empty", rmdir("d"), NULL);
	out("unlink a dir", unlink("d/x/y"), NULL);
	out("rmdir a file", rmdir("d/h"), NULL);
	out("rmdir d/x/y", rmdir("d/x/y"), NULL);
	out("open file as dir", open("d/h", O_RDONLY | O_DIRECTORY), NULL);
	out("open dir for write", open("d", O_WRONLY), NULL);
	out("open missing", open("d/missing", O_RDONLY), NULL);
	out("path through a file", open("d/h/x", O_RDONLY), NULL);
	memset(longname, 'n', 256);
	longname[256] = '\0';
	out("name of 256 bytes", open(longname, O_CREAT | O_WRONLY, 0644), NULL);
	list_of("readdir d", "d");

	out("chmod h 0600", chmod("d/h", 0600), NULL);
	out("chown h 65534", chown("d/h", 65534, 65534), NULL);
	stat_of("stat h after chown", "d/h", 1);
	out("utimensat h", utimensat(AT_FDCWD, "d/h", times, 0), NULL);
	if (!stat("d/h", &st))
		snprintf(detail, sizeof(detail), "atime %ld.%09ld mtime %ld.%09ld",
			 (long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
			 (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	out("times of h", 0, detail);
	out("statfs namelen", statfs(".", &sf) ? -1 : (long)sf.f_namelen, NULL);

	fd = open("d/h", O_RDONLY);
	out("unlink open h", unlink("d/h"), NULL);
	read_of("read unlinked h", fd, 0, 20);
	close(fd);

	out("setxattr user.k", setxattr("d/x", "user.k", "v1", 2, 0), NULL);
	out("setxattr create again", setxattr("d/x", "user.k", "v2", 2, XATTR_CREATE),
	    NULL);
	n = getxattr("d/x", "user.k", detail, sizeof(detail) - 1);
	if (n >= 0)
		detail[n] = '\0';
	out("getxattr user.k", n, n < 0 ? NULL : detail);
	out("getxattr missing", getxattr("d/x", "user.none", detail, 10), NULL);
	out("getxattr small buffer", getxattr("d/x", "user.k", detail, 1), NULL);
	out("removexattr user.k", removexattr("d/x", "user.k"), NULL);

	/* as nobody from here */
	out("mkdir open 1777", mkdir("open", 01777) ?: chmod("open", 01777), NULL);
	fd = open("secret", O_CREAT | O_WRONLY, 0600);
	out("write secret", write(fd, "s", 1), NULL);
	close(fd);
	fd = open("open/roots", O_CREAT | O_WRONLY, 0644);
	close(fd);
	out("drop to 65534", setgroups(0, NULL) ?: setgid(65534) ?: setuid(65534), NULL);
	out("nobody reads secret", open("secret", O_RDONLY), NULL);
	out("nobody writes 0644 file", open("open/roots", O_WRONLY), NULL);
	out("nobody creates in 0755 dir", open("d/new", O_CREAT | O_WRONLY, 0644), NULL);
	out("nobody chmods root's", chmod("secret", 0666), NULL);
	out("nobody hard-links root's", link("secret", "open/stolen"), NULL);
	out("nobody O_NOATIME root's", open("open/roots", O_RDONLY | O_NOATIME), NULL);
	out("nobody unlinks in sticky", unlink("open/roots"), NULL);
	fd = open("open/mine", O_CREAT | O_WRONLY, 0640);
	out("nobody creates in 1777", fd, fd < 0 ? NULL : "fd");
	close(fd);
	stat_of("stat nobody's file", "open/mine", 1);
	out("nobody chowns to root", chown("open/mine", 0, 0), NULL);
	out("nobody sets user xattr", setxattr("open/roots", "user.k", "v", 1, 0), NULL);
	out("nobody unlinks own", unlink("open/mine"), NULL);
	return 0;
}
