// SPDX-License-Identifier: GPL-2.0-only
/*
 * failing-insmod MODULE.ko: load a module with fault injection on for exactly
 * the finit_module() call. Writing 1 to /proc/self/make-it-fail in a shell and
 * then exec'ing insmod also fails exec's own allocations (E2BIG, ENOMEM)
 * before the module is ever read; here the file is read first and only the
 * load runs under failslab / fail_page_alloc (with their task-filter on).
 *
 * The module comes from memory (init_module(), this program's pages locked),
 * never from the 9p root while allocations fail: the 9p client does not
 * survive a failed allocation in the middle of a request (afterwards the
 * node could exec nothing, every execve EINVAL), and that is not what this
 * tests.
 *
 * Prints "loaded" or "refused ERRNO_NAME" and exits 0 either way; exits 2 on
 * bad usage and 3 when fault injection cannot be switched on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
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

/* The whole of @path in a malloc'ed buffer, its length in @len. */
static void *read_all(const char *path, size_t *len)
{
	size_t cap = 1 << 20, got = 0;
	char *buf = malloc(cap), *bigger;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0 || !buf)
		goto fail;
	while ((n = read(fd, buf + got, cap - got)) > 0) {
		got += n;
		if (got < cap)
			continue;
		bigger = realloc(buf, cap * 2);
		if (!bigger)
			goto fail;
		buf = bigger;
		cap *= 2;
	}
	if (n < 0)
		goto fail;
	close(fd);
	*len = got;
	return buf;
fail:
	n = errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	errno = n;
	return NULL;
}

int main(int argc, char **argv)
{
	const char *name;
	size_t len;
	void *image;
	long ret;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: failing-insmod MODULE.ko\n");
		return 2;
	}
	image = read_all(argv[1], &len);
	if (!image) {
		fprintf(stderr, "failing-insmod: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	/* no page of ours is read from the 9p root while allocations fail */
	if (mlockall(MCL_CURRENT)) {
		fprintf(stderr, "failing-insmod: mlockall: %s\n", strerror(errno));
		return 2;
	}
	if (set_make_it_fail("1")) {
		fprintf(stderr, "failing-insmod: /proc/self/make-it-fail: %s\n", strerror(errno));
		return 3;
	}
	ret = syscall(SYS_init_module, image, len, "");
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
