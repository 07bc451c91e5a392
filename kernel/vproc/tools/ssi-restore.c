// SPDX-License-Identifier: GPL-2.0-only
/*
 * ssi-restore: the migration module's restore helper.  The module runs it
 * (as a usermode helper, root) to receive a process:
 *
 *	ssi-restore SESSION PID VVAR CWD [TID...]
 *
 * It creates a task with the process's PID (clone3 with set_tid), which
 * makes a thread for each other TID of the process (each waits in
 * ssisys(SSISYS_MIG_RESTORE_THREAD)), places the vDSO where the process had
 * it, changes to its directory, closes every descriptor and calls
 * ssisys(SSISYS_MIG_RESTORE): the kernel turns the task into the process,
 * lets the threads take their own registers, and the calls return into
 * the process.  This
 * program stays as the process's parent on this node and tells the module
 * when it stops or continues and how it ended (SSISYS_MIG_REAPED), so the
 * deputy on its home node can stop, go on and end as it does.
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

#define THREAD_STACK	(64 * 1024)

/*
 * clone3(@ca) a thread of the new task.  The thread runs on a fresh stack
 * with no libc thread state, so its whole life is this assembly: it waits
 * in ssisys(SSISYS_MIG_RESTORE_THREAD, @req) for the process to be
 * restored and returns from there into it, or exits if that fails.
 */
static long clone3_thread(struct clone_args *ca, struct ssi_mig_restore *req)
{
	long ret;

	asm volatile ("mov %[req], %%r12\n\t"
		      "syscall\n\t"
		      "test %%rax, %%rax\n\t"
		      "jnz 1f\n\t"
		      "mov %[nr_ssisys], %%eax\n\t"
		      "mov %[cmd], %%edi\n\t"
		      "mov %%r12, %%rsi\n\t"
		      "mov %[len], %%edx\n\t"
		      "syscall\n\t"
		      "mov %[nr_exit], %%eax\n\t"
		      "mov $127, %%edi\n\t"
		      "syscall\n\t"
		      "1:\n\t"
		      : "=a"(ret)
		      : "a"((long)SYS_clone3), "D"(ca), "S"(sizeof(*ca)),
			[req] "r"(req), [nr_ssisys] "i"(__NR_ssisys),
			[cmd] "i"(SSISYS_MIG_RESTORE_THREAD),
			[len] "i"(sizeof(*req)), [nr_exit] "i"(SYS_exit)
		      : "rcx", "rdx", "r11", "r12", "memory");
	return ret;
}

static struct ssi_mig_restore thread_req[64];

/* Make the thread @tid (clone3 set_tid). */
static int make_thread(uint64_t session, pid_t tid, int i)
{
	struct clone_args ca;
	char *stack = malloc(THREAD_STACK);

	if (!stack || i >= 64)
		return -1;
	thread_req[i].session = session;
	thread_req[i].pid = tid;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
		   CLONE_THREAD | CLONE_SYSVSEM;
	ca.set_tid = (uintptr_t)&thread_req[i].pid;
	ca.set_tid_size = 1;
	ca.stack = (uintptr_t)stack;
	ca.stack_size = THREAD_STACK;
	return clone3_thread(&ca, &thread_req[i]) < 0 ? -1 : 0;
}

static char exec_buf[SSI_MIG_EXEC_MAX];

/*
 * rexec: the task is the process now, with its files and credentials;
 * execute its program.  Only a failure returns: it is reported on the
 * process's own stderr, as a shell would.
 */
static int run_exec(const struct ssi_mig_restore *r)
{
	uint32_t argc, envc, n = 0;
	char **argv, **envp, *p = exec_buf + 8, *path;

	memcpy(&argc, exec_buf, 4);
	memcpy(&envc, exec_buf + 4, 4);
	argv = calloc(argc + 1, sizeof(*argv));
	envp = calloc(envc + 1, sizeof(*envp));
	if (!argv || !envp)
		return 7;
	path = p;
	p += strlen(p) + 1;
	for (n = 0; n < argc + envc && p < exec_buf + r->exec_len; n++) {
		if (n < argc)
			argv[n] = p;
		else
			envp[n - argc] = p;
		p += strlen(p) + 1;
	}
	execve(path, argv, envp);
	dprintf(2, "rexec: %s: %s\n", path, strerror(errno));
	return 7;
}

/* In the new task: become the process.  Returns only on failure. */
static int restore(uint64_t session, pid_t pid, unsigned long vvar,
		   const char *cwd, char **tids, int nr_tids)
{
	struct ssi_mig_restore r = {
		.session = session, .pid = pid,
		.exec_buf = (uintptr_t)exec_buf, .exec_len = sizeof(exec_buf),
	};
	unsigned long start, end;

	if (chdir(cwd) && chdir("/"))
		return 1;
	for (int i = 0; i < nr_tids; i++)
		if (make_thread(session, (pid_t)strtol(tids[i], NULL, 10), i))
			return 6;
	if (own_vdso(&start, &end))
		return 2;
	if (vvar && start != vvar) {
		/* no libc call that uses the vDSO past this point */
		if (munmap((void *)start, end - start) ||
		    syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, vvar) < 0)
			return 3;
	}
	if (syscall(SYS_close_range, 0, ~0u, 0))
		return 4;
	if (ssisys(SSISYS_MIG_RESTORE, &r, sizeof(r)) == 0 &&
	    r.flags & SSI_MIG_RESTORE_EXEC) {
		run_exec(&r);
		_exit(127);	/* execve failed */
	}
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

	if (argc < 5 || argc > 5 + 64) {
		fprintf(stderr, "usage: %s SESSION PID VVAR CWD [TID...] (run by migration.ko)\n",
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
		_exit(restore(session, pid, vvar, argv[4], argv + 5, argc - 5) + 120);

	/*
	 * Stay the parent here; say when the process stops or goes on (its
	 * deputy at home follows, for the real parent there) and how it ended.
	 */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	for (;;) {
		if (waitpid(child, &status, __WALL | WUNTRACED | WCONTINUED) < 0) {
			if (errno != EINTR)
				return 1;
			continue;
		}
		reaped.pid = pid;
		reaped.status = status & 0xffff;
		ssisys(SSISYS_MIG_REAPED, &reaped, sizeof(reaped));
		if (WIFEXITED(status) || WIFSIGNALED(status))
			return 0;
	}
}
