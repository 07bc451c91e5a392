// SPDX-License-Identifier: GPL-2.0-only
/*
 * ssi-restore: the migration module's restore helper.  The module runs it
 * (as a usermode helper, root) to receive a process:
 *
 *	ssi-restore SESSION PID VVAR CWD
 *
 * It creates a task with the process's PID (clone3 with set_tid), which
 * places the vDSO where the process had it, changes to its directory,
 * closes every descriptor and calls ssisys(SSISYS_MIG_RESTORE): the kernel
 * turns the task into the process and the call returns into it.  This
 * program stays as the process's parent on this node and tells the module
 * how it ended (SSISYS_MIG_REAPED), so the deputy on its home node can end
 * with the same status.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../../abi/ssi_abi.h"

#ifndef ARCH_MAP_VDSO_64
#define ARCH_MAP_VDSO_64 0x2003
#endif

static long ssisys(unsigned int cmd, void *buf, size_t len)
{
	return syscall(__NR_ssisys, cmd, buf, len);
}

/* The [vvar]+[vdso] range of this process, from /proc/self/maps. */
static int own_vdso(unsigned long *start, unsigned long *end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	*start = *end = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;

		if (sscanf(line, "%lx-%lx", &a, &b) != 2)
			continue;
		if (strstr(line, "[vvar]") || strstr(line, "[vdso]")) {
			if (!*start || a < *start)
				*start = a;
			if (b > *end)
				*end = b;
		}
	}
	fclose(f);
	return *start ? 0 : -1;
}

/* In the new task: become the process.  Returns only on failure. */
static int restore(uint64_t session, pid_t pid, unsigned long vvar,
		   const char *cwd)
{
	struct ssi_mig_restore r = { .session = session, .pid = pid };
	unsigned long start, end;

	if (chdir(cwd) && chdir("/"))
		return 1;
	if (own_vdso(&start, &end))
		return 2;
	if (start != vvar) {
		/* no libc call that uses the vDSO past this point */
		if (munmap((void *)start, end - start) ||
		    syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, vvar) < 0)
			return 3;
	}
	if (syscall(SYS_close_range, 0, ~0u, 0))
		return 4;
	ssisys(SSISYS_MIG_RESTORE, &r, sizeof(r));
	return 5;
}

int main(int argc, char **argv)
{
	struct clone_args ca;
	struct ssi_mig_reaped reaped;
	uint64_t session;
	unsigned long vvar;
	pid_t pid, child;
	int status;

	if (argc != 5) {
		fprintf(stderr, "usage: %s SESSION PID VVAR CWD (run by migration.ko)\n",
			argv[0]);
		return 2;
	}
	session = strtoull(argv[1], NULL, 16);
	pid = (pid_t)strtol(argv[2], NULL, 10);
	vvar = strtoul(argv[3], NULL, 16);

	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uintptr_t)&pid;
	ca.set_tid_size = 1;
	child = syscall(SYS_clone3, &ca, sizeof(ca));
	if (child < 0) {
		fprintf(stderr, "ssi-restore: clone3(set_tid=%d): %s\n", pid,
			strerror(errno));
		return 1;
	}
	if (child == 0)
		_exit(restore(session, pid, vvar, argv[4]) + 120);

	/* Stay the parent here; say how the process ended. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	while (waitpid(child, &status, __WALL) < 0)
		if (errno != EINTR)
			return 1;
	reaped.pid = pid;
	reaped.status = status & 0xffff;
	ssisys(SSISYS_MIG_REAPED, &reaped, sizeof(reaped));
	return 0;
}
