// SPDX-License-Identifier: GPL-2.0-only
/*
 * vproc-probe: small helpers for tests/cluster/test_vproc_security.py, run in
 * the guests (built static on the host into build/bin/vproc-probe).
 *
 *   vproc-probe call kill SIG PID       kill(PID, SIG)
 *   vproc-probe call getpgid PID        getpgid(PID)
 *   vproc-probe call getsid PID         getsid(PID)
 *   vproc-probe call getprio PID        getpriority(PRIO_PROCESS, PID)
 *   vproc-probe call setprio PID NICE   setpriority(PRIO_PROCESS, PID, NICE)
 *	print "ok VALUE MS" or "err ERRNO MS" (MS: milliseconds the call took)
 *
 *   vproc-probe hide file|none READY PATH [ARG...]
 *	make one page strictly inside the argument strings and one strictly
 *	inside the environment strings unreadable to procfs: map PATH over it
 *	(file: a file-backed page, which FOLL_ANON refuses) or make it
 *	PROT_NONE (none: needs FOLL_FORCE to read); then create READY and
 *	sleep.  Pass long arguments and a long variable so both areas span
 *	more than two pages.
 *
 *   vproc-probe sigwait READY OUT       block SIGUSR1, create READY, wait
 *	for SIGUSR1 and write "si_pid si_uid si_code" to OUT.
 *
 *   vproc-probe read PATH...            read each PATH to its end as cat
 *	does (reads of up to 4 KiB) and print "== PATH", then "ok LEN HEX"
 *	(every byte read, in hex) or "open ERRNO" or "read ERRNO LEN HEX"
 *	(what was read before the failing read).  One process for many files:
 *	each process started costs a second in a guest under TCG.
 *
 *   vproc-probe failcalls N PID...      N rounds of kill(PID, 0), getpgid,
 *	getsid, getpriority and a read of /proc/PID/stat for each PID, each
 *	call with fault injection on for this task (/proc/self/make-it-fail)
 *	and off again before anything else; then print "CALL ERRNO COUNT"
 *	for every outcome (ERRNO 0: success), sorted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: see the comment at the top of vproc_probe.c\n");
	return 2;
}

static int do_call(int argc, char **argv)
{
	const char *what;
	long ret = 0;
	double t0;
	int err;

	if (argc < 2)
		return usage();
	what = argv[0];
	t0 = now_ms();
	errno = 0;
	if (!strcmp(what, "kill") && argc == 3) {
		ret = kill((pid_t)atol(argv[2]), atoi(argv[1]));
	} else if (!strcmp(what, "getpgid")) {
		ret = getpgid((pid_t)atol(argv[1]));
	} else if (!strcmp(what, "getsid")) {
		ret = getsid((pid_t)atol(argv[1]));
	} else if (!strcmp(what, "getprio")) {
		ret = getpriority(PRIO_PROCESS, (id_t)atol(argv[1]));
		if (ret == -1 && !errno)
			ret = -2;	/* nice -1: not an error */
	} else if (!strcmp(what, "setprio") && argc == 3) {
		ret = setpriority(PRIO_PROCESS, (id_t)atol(argv[1]),
				  atoi(argv[2]));
	} else {
		return usage();
	}
	err = errno;
	if (ret == -1 && err)
		printf("err %d %.1f\n", err, now_ms() - t0);
	else
		printf("ok %ld %.1f\n", ret == -2 ? -1L : ret, now_ms() - t0);
	return 0;
}

/* The first page that lies wholly inside [start, end), or 0. */
static uintptr_t inner_page(uintptr_t start, uintptr_t end, long psz)
{
	uintptr_t p = (start + psz - 1) & ~(uintptr_t)(psz - 1);

	return p + psz <= end ? p : 0;
}

static int hide(uintptr_t page, long psz, int fd)
{
	void *got;

	if (fd < 0)
		return mprotect((void *)page, psz, PROT_NONE);
	got = mmap((void *)page, psz, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd,
		   0);
	return got == MAP_FAILED ? -1 : 0;
}

static int do_hide(int argc, char **argv, char **all_argv, int all_argc)
{
	long psz = sysconf(_SC_PAGESIZE);
	uintptr_t a0, a1, e0, e1, pa, pe;
	int fd = -1, i;

	if (argc < 3)
		return usage();
	if (!strcmp(argv[0], "file")) {
		fd = open(argv[2], O_RDONLY);
		if (fd < 0) {
			perror(argv[2]);
			return 1;
		}
	} else if (strcmp(argv[0], "none")) {
		return usage();
	}
	a0 = (uintptr_t)all_argv[0];
	a1 = (uintptr_t)all_argv[all_argc - 1] +
	     strlen(all_argv[all_argc - 1]) + 1;
	e0 = e1 = 0;
	for (i = 0; environ[i]; i++) {
		uintptr_t s = (uintptr_t)environ[i];

		if (!e0 || s < e0)
			e0 = s;
		if (s + strlen(environ[i]) + 1 > e1)
			e1 = s + strlen(environ[i]) + 1;
	}
	pa = inner_page(a0, a1, psz);
	pe = inner_page(e0, e1, psz);
	if (!pa || !pe) {
		fprintf(stderr, "arguments or environment too short\n");
		return 1;
	}
	if (hide(pa, psz, fd) || hide(pe, psz, fd)) {
		perror("hide");
		return 1;
	}
	/* Nothing below may touch argv or environ any more. */
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 1;
	close(fd);
	for (;;)
		pause();
}

static int do_sigwait(int argc, char **argv)
{
	siginfo_t si;
	sigset_t set;
	FILE *out;
	int fd;

	if (argc != 2)
		return usage();
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return 1;
	fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 1;
	close(fd);
	if (sigwaitinfo(&set, &si) < 0)
		return 1;
	out = fopen(argv[1], "w");
	if (!out)
		return 1;
	fprintf(out, "%d %u %d\n", (int)si.si_pid, (unsigned int)si.si_uid,
		si.si_code);
	return fclose(out) ? 1 : 0;
}

static void print_hex(const unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		printf("%02x", buf[i]);
}

static int do_read(int argc, char **argv)
{
	static unsigned char buf[1 << 20];
	size_t len;
	ssize_t n;
	int i, fd;

	for (i = 0; i < argc; i++) {
		printf("== %s\n", argv[i]);
		fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			printf("open %d\n", errno);
			continue;
		}
		len = 0;
		do {
			n = read(fd, buf + len, sizeof(buf) - len < 4096 ?
				 sizeof(buf) - len : 4096);
			if (n > 0)
				len += n;
		} while (n > 0 && len < sizeof(buf));
		if (n < 0)
			printf("read %d %zu ", errno, len);
		else
			printf("ok %zu ", len);
		print_hex(buf, len);
		printf("\n");
		close(fd);
	}
	return fflush(stdout) ? 1 : 0;
}

enum { FC_KILL, FC_GETPGID, FC_GETSID, FC_GETPRIO, FC_STAT, FC_NR };

static const char *const fc_name[FC_NR] = {
	"kill", "getpgid", "getsid", "getpriority", "proc-stat",
};

/* Fault injection on ("1") or off ("0") through @fd, opened before. */
static int make_it_fail(int fd, const char *on)
{
	return pwrite(fd, on, 1, 0) == 1 ? 0 : -1;
}

/* The call @which on @pid; 0 or its errno. */
static int fc_call(int which, pid_t pid)
{
	char path[64], buf[4096];
	long r = 0;
	int fd;

	errno = 0;
	switch (which) {
	case FC_KILL:
		r = kill(pid, 0);
		break;
	case FC_GETPGID:
		r = getpgid(pid);
		break;
	case FC_GETSID:
		r = getsid(pid);
		break;
	case FC_GETPRIO:
		/* -1 is also a priority: errno tells */
		r = getpriority(PRIO_PROCESS, pid);
		return r == -1 ? errno : 0;
	default:
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			return errno;
		r = read(fd, buf, sizeof(buf));
		close(fd);
		break;
	}
	return r < 0 ? errno : 0;
}

static int do_failcalls(int argc, char **argv)
{
	static unsigned int count[FC_NR][4096];
	int fd = open("/proc/self/make-it-fail", O_WRONLY);

	if (argc < 2)
		return usage();
	/*
	 * Every page of ours in memory first: a fault on the 9p root under
	 * injection fails its read and ends us with SIGBUS (seen).
	 */
	if (fd < 0 || mlockall(MCL_CURRENT))
		return 3;
	for (int round = 0; round < atoi(argv[0]); round++) {
		for (int i = 1; i < argc; i++) {
			for (int which = 0; which < FC_NR; which++) {
				int err;

				if (make_it_fail(fd, "1"))
					return 3;
				err = fc_call(which, atoi(argv[i]));
				if (make_it_fail(fd, "0"))
					return 3;
				count[which][err < 4096 ? err : 4095]++;
			}
		}
	}
	for (int which = 0; which < FC_NR; which++)
		for (int err = 0; err < 4096; err++)
			if (count[which][err])
				printf("%s %d %u\n", fc_name[which], err,
				       count[which][err]);
	return fflush(stdout) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "call"))
		return do_call(argc - 2, argv + 2);
	if (!strcmp(argv[1], "hide"))
		return do_hide(argc - 2, argv + 2, argv, argc);
	if (!strcmp(argv[1], "sigwait"))
		return do_sigwait(argc - 2, argv + 2);
	if (!strcmp(argv[1], "read"))
		return do_read(argc - 2, argv + 2);
	if (!strcmp(argv[1], "failcalls"))
		return do_failcalls(argc - 2, argv + 2);
	return usage();
}
