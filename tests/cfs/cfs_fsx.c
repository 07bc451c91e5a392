// SPDX-License-Identifier: GPL-2.0-only
/*
 * cfs_fsx: random reads and writes on one file from several nodes at once,
 * each checked against a model (an fsx for a file shared across nodes).
 *
 *   cfs_fsx run FILE SLOT NSLOTS OPS SEED [mmap]   operate as SLOT of NSLOTS
 *   cfs_fsx sum FILE NSLOTS                        per-slot checksums of the file
 *
 * The file (FILE_SIZE bytes, made by the caller) is cut into STRIPE-byte
 * stripes dealt round-robin to the slots: a slot writes only its own
 * stripes and knows what they must hold, so every read of them is checked
 * while the other slots write theirs next to them.  Reads span several
 * stripes (the others' bytes are read but not judged), writes are any
 * range within one stripe, some operations punch a hole in, zero or
 * allocate (fallocate(2)) a range within one stripe, and some fsync.  `run` ends with the
 * checksum of its own stripes from its model; `sum` computes them from the
 * file (on the server, say): they must agree.
 *
 * With `mmap`, half the reads and writes are loads and stores through a
 * shared writable mapping of the whole file instead of pread/pwrite, and
 * half the syncs are msync(MS_SYNC): stripes are smaller than a page, so
 * the nodes' writes to one page interleave through both paths.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_SIZE	(1 << 20)
#define STRIPE		512
#define NSTRIPES	(FILE_SIZE / STRIPE)
#define MAX_READ	(16 * STRIPE)

static uint64_t rng;
/* for a mismatch's report: the op that last set each byte, and how */
static long last_op[FILE_SIZE];
static char last_how[FILE_SIZE];

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned int below(unsigned int n)
{
	return (unsigned int)(next() % n);
}

static int owner(unsigned long off, int nslots)
{
	return (int)((off / STRIPE) % (unsigned long)nslots);
}

static uint64_t slot_sum(const unsigned char *buf, int slot, int nslots)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	unsigned long off;

	for (off = 0; off < FILE_SIZE; off++) {
		if (owner(off, nslots) != slot)
			continue;
		h ^= buf[off];
		h *= 1099511628211ULL;
	}
	return h;
}

static int full_pread(int fd, unsigned char *buf, size_t len, off_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int run(const char *path, int slot, int nslots, long ops, int use_mmap)
{
	static unsigned char model[FILE_SIZE], buf[MAX_READ], data[STRIPE];
	unsigned long off, len, stripe, i;
	long op, reads = 0, writes = 0, syncs = 0, mapped = 0, fallocs = 0;
	unsigned char *map = NULL;
	char how;
	int fd = open(path, O_RDWR);

	if (fd < 0) {
		perror("open");
		return 2;
	}
	if (use_mmap) {
		map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fd, 0);
		if (map == MAP_FAILED) {
			perror("mmap");
			return 2;
		}
	}
	/* what our stripes hold now: the file as it starts (zeros) */
	if (full_pread(fd, model, FILE_SIZE, 0)) {
		perror("initial read");
		return 2;
	}
	for (op = 0; op < ops; op++) {
		unsigned int what = below(100);

		if (what < 45) {
			/* a range within one of our stripes */
			do {
				stripe = below(NSTRIPES);
			} while ((int)(stripe % (unsigned long)nslots) != slot);
			off = stripe * STRIPE + below(STRIPE);
			len = 1 + below((unsigned int)(stripe * STRIPE + STRIPE - off));
			for (i = 0; i < len; i++)
				data[i] = (unsigned char)next();
			how = 'w';
			if (map && below(2)) {
				memcpy(map + off, data, len);
				mapped++;
				how = 'm';
			} else if (pwrite(fd, data, len, (off_t)off) != (ssize_t)len) {
				printf("write failed at %lu+%lu: %s\n", off, len,
				       strerror(errno));
				return 1;
			}
			memcpy(model + off, data, len);
			for (i = 0; i < len; i++) {
				last_op[off + i] = op;
				last_how[off + i] = how;
			}
			writes++;
		} else if (what < 49) {
			static const int modes[] = {
				FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				FALLOC_FL_KEEP_SIZE,
			};
			int mode = modes[below(3)];

			do {
				stripe = below(NSTRIPES);
			} while ((int)(stripe % (unsigned long)nslots) != slot);
			off = stripe * STRIPE + below(STRIPE);
			len = 1 + below((unsigned int)(stripe * STRIPE + STRIPE - off));
			if (fallocate(fd, mode, (off_t)off, (off_t)len)) {
				printf("fallocate 0x%x failed at %lu+%lu: %s\n",
				       mode, off, len, strerror(errno));
				return 1;
			}
			if (mode != FALLOC_FL_KEEP_SIZE) {
				memset(model + off, 0, len);
				for (i = 0; i < len; i++) {
					last_op[off + i] = op;
					last_how[off + i] = mode & FALLOC_FL_PUNCH_HOLE ? 'p' : 'z';
				}
			}
			fallocs++;
		} else if (what < 97) {
			off = below(FILE_SIZE - 1);
			len = 1 + below(MAX_READ);
			if (off + len > FILE_SIZE)
				len = FILE_SIZE - off;
			how = 'r';
			if (map && below(2)) {
				memcpy(buf, map + off, len);
				mapped++;
				how = 'm';
			} else if (full_pread(fd, buf, len, (off_t)off)) {
				printf("read failed at %lu+%lu: %s\n", off, len,
				       strerror(errno));
				return 1;
			}
			for (i = 0; i < len; i++) {
				if (owner(off + i, nslots) != slot ||
				    buf[i] == model[off + i])
					continue;
				printf("MISMATCH op %ld at %lu (read %s %lu+%lu): read 0x%02x, wrote 0x%02x at op %ld (%s)\n",
				       op, off + i, how == 'm' ? "mapped" : "pread",
				       off, len, buf[i], model[off + i],
				       last_op[off + i],
				       last_how[off + i] == 'm' ? "mapped store" :
				       last_how[off + i] == 'w' ? "pwrite" :
				       last_how[off + i] == 'p' ? "punch" :
				       last_how[off + i] == 'z' ? "zero range" : "initial");
				return 1;
			}
			reads++;
		} else {
			if (map && below(2) ? msync(map, FILE_SIZE, MS_SYNC) :
			    fsync(fd)) {
				printf("fsync failed: %s\n", strerror(errno));
				return 1;
			}
			syncs++;
		}
	}
	if (map && munmap(map, FILE_SIZE)) {
		perror("munmap");
		return 1;
	}
	if (fsync(fd) || close(fd)) {
		printf("final fsync/close failed: %s\n", strerror(errno));
		return 1;
	}
	printf("ok slot %d ops %ld reads %ld writes %ld fsyncs %ld mapped %ld fallocates %ld sum %016" PRIx64 "\n",
	       slot, ops, reads, writes, syncs, mapped, fallocs,
	       slot_sum(model, slot, nslots));
	return 0;
}

static int sum(const char *path, int nslots)
{
	static unsigned char file[FILE_SIZE];
	int fd = open(path, O_RDONLY);
	int slot;

	if (fd < 0 || full_pread(fd, file, FILE_SIZE, 0)) {
		perror(path);
		return 2;
	}
	close(fd);
	for (slot = 0; slot < nslots; slot++)
		printf("slot %d sum %016" PRIx64 "\n", slot,
		       slot_sum(file, slot, nslots));
	return 0;
}

int main(int argc, char **argv)
{
	if ((argc == 7 || (argc == 8 && !strcmp(argv[7], "mmap"))) &&
	    !strcmp(argv[1], "run")) {
		int slot = atoi(argv[3]), nslots = atoi(argv[4]);

		rng = strtoull(argv[6], NULL, 0) * 2654435761ULL + 1 + (uint64_t)slot;
		if (nslots < 1 || slot < 0 || slot >= nslots)
			return 2;
		return run(argv[2], slot, nslots, atol(argv[5]), argc == 8);
	}
	if (argc == 4 && !strcmp(argv[1], "sum"))
		return sum(argv[2], atoi(argv[3]));
	fprintf(stderr, "usage: cfs_fsx run FILE SLOT NSLOTS OPS SEED [mmap] | sum FILE NSLOTS\n");
	return 2;
}
