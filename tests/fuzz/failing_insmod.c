// SPDX-License-Identifier: GPL-2.0-only
/*
 * failing-insmod MODULE.ko: load a module with fault injection on for exactly
 * the finit_module() call. Writing 1 to /proc/self/make-it-fail in a shell and
 * then exec'ing insmod also fails exec's own allocations (E2BIG, ENOMEM)
 * before the module is ever read; here the file is opened first and only the
 * load runs under failslab / fail_page_alloc (with their task-filter on).
 *
 * Prints "loaded" or "refused ERRNO_NAME" and exits 0 either way; exits 2 on
 * bad usage and 3 when fault injection cannot be switched on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int set_make_it_fail(const char *value)
{
	int fd = open("/proc/self/make-it-fail", O_WRONLY);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, value, 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *name;
	long ret;
	int fd, err;

	if (argc != 2) {
		fprintf(stderr, "usage: failing-insmod MODULE.ko\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "failing-insmod: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	if (set_make_it_fail("1")) {
		fprintf(stderr, "failing-insmod: /proc/self/make-it-fail: %s\n", strerror(errno));
		return 3;
	}
	ret = syscall(SYS_finit_module, fd, "", 0);
	err = errno;
	set_make_it_fail("0");
	if (ret == 0) {
		printf("loaded\n");
		return 0;
	}
	name = strerrorname_np(err);
	printf("refused %s\n", name ? name : "?");
	return 0;
}
