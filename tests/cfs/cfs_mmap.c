// SPDX-License-Identifier: GPL-2.0-only
/*
 * cfs_mmap: shared mappings of one CFS file from several nodes.
 *
 *   cfs_mmap counter FILE N       N times: take a write lock of FILE (fcntl
 *                                 F_SETLKW, whole file), add one to the
 *                                 64-bit counter at its start through a
 *                                 shared writable mapping, unlock.  Prints
 *                                 the last value it stored.
 *   cfs_mmap store FILE OFF TEXT [hold]
 *                                 store TEXT at OFF through a shared
 *                                 writable mapping and print "stored";
 *                                 with `hold`, then keep the mapping (no
 *                                 msync) until a signal ends the process.
 *   cfs_mmap load FILE OFF LEN    print LEN bytes at OFF, read through a
 *                                 shared mapping.
 *   cfs_mmap follow FILE          store "before" at 0 through a shared
 *                                 writable mapping; then, every 50 ms, once
 *                                 byte 200 reads '!', store "after" at 100;
 *                                 until a signal ends it (a process to
 *                                 migrate with its mapping).
 *
 * Run `counter` from several nodes at once: the counter ends at the sum of
 * their N only if the page moves to each writer with what the last one
 * stored.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAP_LEN	(64 * 1024)

static int lock(int fd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, F_SETLKW, &fl);
}

static unsigned char *map_file(const char *path, int writable, int *fd)
{
	void *p;

	*fd = open(path, writable ? O_RDWR : O_RDONLY);
	if (*fd < 0) {
		perror(path);
		return NULL;
	}
	p = mmap(NULL, MAP_LEN, PROT_READ | (writable ? PROT_WRITE : 0),
		 MAP_SHARED, *fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return NULL;
	}
	return p;
}

static int counter(const char *path, long n)
{
	volatile uint64_t *ctr;
	uint64_t last = 0;
	long i;
	int fd;

	ctr = (volatile uint64_t *)map_file(path, 1, &fd);
	if (!ctr)
		return 2;
	for (i = 0; i < n; i++) {
		if (lock(fd, F_WRLCK)) {
			perror("lock");
			return 1;
		}
		last = ++*ctr;
		if (lock(fd, F_UNLCK)) {
			perror("unlock");
			return 1;
		}
	}
	if (munmap((void *)ctr, MAP_LEN) || close(fd)) {
		perror("munmap/close");
		return 1;
	}
	printf("ok last %llu\n", (unsigned long long)last);
	return 0;
}

static int store(const char *path, long off, const char *text, int hold)
{
	unsigned char *map;
	int fd;

	map = map_file(path, 1, &fd);
	if (!map || off < 0 || off + strlen(text) > MAP_LEN)
		return 2;
	memcpy(map + off, text, strlen(text));
	printf("stored\n");
	fflush(stdout);
	while (hold)
		pause();
	return munmap(map, MAP_LEN) || close(fd);
}

static int load(const char *path, long off, long len)
{
	unsigned char *map;
	int fd;

	map = map_file(path, 0, &fd);
	if (!map || off < 0 || len < 0 || off + len > MAP_LEN)
		return 2;
	fwrite(map + off, 1, len, stdout);
	printf("\n");
	return munmap(map, MAP_LEN) || close(fd);
}

static int follow(const char *path)
{
	volatile unsigned char *map;
	int fd;

	map = map_file(path, 1, &fd);
	if (!map)
		return 2;
	memcpy((void *)map, "before", 6);
	for (;;) {
		if (map[200] == '!')
			memcpy((void *)(map + 100), "after", 5);
		usleep(50000);
	}
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "counter"))
		return counter(argv[2], atol(argv[3]));
	if ((argc == 5 || (argc == 6 && !strcmp(argv[5], "hold"))) &&
	    !strcmp(argv[1], "store"))
		return store(argv[2], atol(argv[3]), argv[4], argc == 6);
	if (argc == 3 && !strcmp(argv[1], "follow"))
		return follow(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "load"))
		return load(argv[2], atol(argv[3]), atol(argv[4]));
	fprintf(stderr, "usage: cfs_mmap counter FILE N | store FILE OFF TEXT [hold] | load FILE OFF LEN | follow FILE\n");
	return 2;
}
