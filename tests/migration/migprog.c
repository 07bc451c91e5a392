// SPDX-License-Identifier: GPL-2.0-only
/*
 * Programs the migration tests run in the guests (one binary, a mode per
 * first argument).  Each checks itself and says what it saw on stdout.
 *
 *   migprog self NODE... MIB     fill MIB MiB with a pattern, migrate() to
 *                                each NODE in turn, check the pattern, the
 *                                PID and /proc/self/node after each move
 *   migprog count N MS [MIB]     print "i pid node" every MS ms, N lines
 *                                (holding MIB MiB of touched memory)
 *   migprog exit CODE NODE       migrate() to NODE, exit(CODE)
 *   migprog abort NODE           migrate() to NODE, then abort() (core)
 *   migprog append FILE N MS     append "i\n" to FILE every MS ms
 *   migprog threads MIB NODE WHO 4 threads checksum MIB MiB while the
 *                                process moves (WHO: main = the main thread
 *                                calls migrate(), 1 = the first worker
 *                                does, goto = it waits for a write to
 *                                /proc/<pid>/goto); checks every sum, TID
 *                                and each thread's credentials and nice
 *   migprog refuse KIND NODE     set up KIND (shm, nnp, seccomp, ptracing,
 *                                setuid: a thread with other ids,
 *                                ptraced, vfork: the vfork child asks,
 *                                clonevm: a CLONE_VM child shares the mm,
 *                                none) and print migrate()'s errno; NODE
 *                                wait: print "KIND ready pid P" and wait
 *   migprog rfork NODE CODE      rfork() a child to NODE that reports its
 *                                PID, parent and node and exits CODE; the
 *                                parent reaps it and prints its status
 *   migprog rexec NODE ARG       rexec() this program on NODE as
 *                                "migprog report ARG"
 *   migprog rexecvia A NODE DIR ARG  migrate() to A, chdir(DIR), then
 *                                rexec() this program on NODE as
 *                                "migprog report ARG" (PROG "-": a program
 *                                that does not exist, which must fail)
 *   migprog report ARG           print "report pid P node N arg ARG cwd
 *                                D", exit 5
 *   migprog cwd DIR NODE...      migrate() to each NODE in turn, chdir(DIR)
 *                                after the first move, print "cwd node N
 *                                dir D" after each
 *   migprog tcp ADDR PORT N MS   connect, send "i\n" every MS ms, N lines,
 *                                then close and print "tcp sent N NODE"
 *   migprog spin SECS            print "spin pid P node N", burn CPU for
 *                                SECS s (wall time), print "spin done node N"
 *   migprog hog MIB SECS         touch MIB MiB, print "hog pid P mib MIB",
 *                                sleep SECS s holding it
 *   migprog coredump NODE SIG    fork a child that raises its soft core
 *                                limit to the hard one,
 *                                migrate()s to NODE, prints "child pid P
 *                                node N" and dies of SIG (segv: a NULL
 *                                write, abrt: abort()); the parent reaps it
 *                                and prints "parent child P signaled S sig
 *                                G core C status X"
 *   migprog waitkids NODE        fork children that wait for SIGUSR1 (then
 *                                exit 7) or die of SIGTERM, migrate() to
 *                                NODE (they stay), then wait for each in
 *                                turn with wait4 and waitid (WNOHANG while
 *                                none is ready, blocking, by PID and any,
 *                                one local child too), and check the
 *                                siginfo of each child's SIGCHLD; prints a
 *                                line per step and "waitkids done bad B"
 *   migprog deadfd               print "deadfd pid P", then a line every
 *                                20 ms whatever write() says; on SIGUSR1
 *                                append "deadfd write errno E node N" (one
 *                                more write's errno) to /tmp/deadfd.out
 *                                where it runs then, and end
 *   migprog family               fork two children that wait for SIGUSR1
 *                                (then append "child P ppid Q node N" to
 *                                /tmp/family.child and exit 7); append
 *                                "family pid P kids A B" to
 *                                /tmp/family.out, then wait4(-1)
 *                                until ECHILD, appending "reaped C status
 *                                S sigchld N code C sigstatus T node N"
 *                                or "wait errno E node N" to
 *                                /tmp/family.out where it runs then
 *   migprog forkwait NODE        migrate() to NODE, fork a child that waits
 *                                for SIGUSR1, then appends to
 *                                /tmp/forkwait.out "forkwait wnohang R
 *                                errno E blocking R errno E ms M" (two
 *                                wait4(-1) with no child to wait for)
 *   migprog jobctl NODE          fork a child that migrate()s to NODE and
 *                                pauses; print "jobctl stopped SIG",
 *                                "jobctl continued", "jobctl killed SIG" as
 *                                waitpid(WUNTRACED | WCONTINUED) reports them
 *   migprog siginfo NODE         migrate() to NODE, then print the siginfo
 *                                of a SIGRTMIN+2 and a SIGUSR2 (sigwaitinfo):
 *                                "siginfo sig S code C pid P uid U value V"
 *   migprog sigcount             count SIGRTMIN+1 until SIGTERM, then print
 *                                "sigcount got N node N"
 *   migprog sweep MIB SECS       until SIGUSR1 (or for SECS s), each
 *                                generation writes an eighth
 *                                of MIB MiB (page i when i % 8 == gen % 8;
 *                                some pages are dropped with MADV_DONTNEED
 *                                instead) after checking that the page still
 *                                holds what the last writer left; prints
 *                                "sweep pid P node N", then "sweep done gens
 *                                G nodes N,N... errors E node N"
 *   migprog holdtids NODE[,NODE]... start 3 threads that pause, migrate()
 *                                to each NODE, printing "holdtids moved
 *                                (then the next: then) R errno E node N pid
 *                                P tids T T T"; with one NODE pause, else
 *                                wake each thread and print "holdtids
 *                                threads node N tids ok|BAD creds ok|BAD"
 *                                (each is itself, with the process's ids)
 *   migprog latethreads A B      migrate() to A, start 3 threads that pause
 *                                there, migrate() to B, print "latethreads
 *                                moved R errno E node N pid P tids T T T"
 *                                and pause
 *   migprog keepkids A B         migrate() to A (not home), fork there a
 *                                child that waits and one that exits, and
 *                                move on to B: A keeps them.  Prints
 *                                "keepkids pid P node N children L Z",
 *                                waits for /tmp/keepkids.go (on B), reaps
 *                                both from B, comes back to A, forks one
 *                                more, moves to B, cannot go home while
 *                                that child lives, reaps it, goes home; prints
 *                                "keepkids STEP ok|BAD" per check and
 *                                "keepkids done bad B node N"
 *   migprog groups NODE...       print "groups start pid P node N pgid G
 *                                sid S ppid Q", migrate() to each NODE in
 *                                turn and print the same "groups moved"
 *                                line and a "groups child" line of a child
 *                                forked there (its ppid is P); then forks a
 *                                child there that does kill(0, SIGRTMIN+1),
 *                                prints "groups done bad B kid K" (B: lines
 *                                that differ from the start) and both count
 *                                SIGRTMIN+1 until SIGTERM: "groups kid got
 *                                N node N", then "groups got N node N"
 *   migprog setgroup NODE pgid|sid   migrate() to NODE, then setpgid(0, 0)
 *                                and setsid() (pgid; a child forked
 *                                before stays in the old group: "setgroup
 *                                kid ids pid K pgid G sid S node N" and,
 *                                after SIGTERM, "setgroup kid got N") or
 *                                setsid() alone (sid): "setgroup setpgid
 *                                R errno E" and "setgroup setsid R errno
 *                                E" per call, "setgroup ids pid P pgid G
 *                                sid S node N", then counts SIGRTMIN+1
 *                                until SIGTERM: "setgroup got N node N"
 *   migprog pagemap NODE         open /proc/self/pagemap, migrate() to
 *                                NODE, read the entry of a page it wrote:
 *                                "pagemap migrate R present P pfn F node N"
 *   migprog failmig MIB NODE N   fill MIB MiB, lock its pages, then N
 *                                times migrate() to
 *                                NODE and to the node it started on in
 *                                turn, each call with fault injection on
 *                                for this task (/proc/self/make-it-fail)
 *                                and off again before anything else;
 *                                prints "failmig I to T errno E node N pid
 *                                P mem ok|BAD" per call and "failmig done
 *                                moved M failed F bad B"
 *   migprog watched NODE N       fork a child that reads this process's
 *                                /proc/PID/stat and cmdline without pause
 *                                (each read holds its mm a moment), then N
 *                                times migrate() to NODE and back; prints
 *                                "watched I to T errno E node N" per call,
 *                                "watched done moved M reads R"
 *   migprog claim TID...         clone3() a child with each TID (set_tid,
 *                                root only) and print "claim TID errno E"
 *                                (0: the number was free and is again)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "../../abi/ssi_abi.h"

static int node_of_self(void)
{
	char buf[16] = "";
	int fd = open("/proc/self/node", O_RDONLY);

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return atoi(buf);
}

static long migrate(int node)
{
	return syscall(__NR_ssi_migrate, node);
}

/* migrate(), saying why on stderr when it fails: a test shows the errno. */
static long migrate_or_say(int node)
{
	long r = migrate(node);

	if (r)
		fprintf(stderr, "migprog %d: migrate to %d: %s\n", getpid(),
			node, strerror(errno));
	return r;
}

static uint64_t fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed, sum = 0;

	for (size_t i = 0; i < len; i += 8) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(p + i, &x, 8);
		sum += x;
	}
	return sum;
}

static uint64_t sum(const uint8_t *p, size_t len)
{
	uint64_t s = 0, x;

	for (size_t i = 0; i < len; i += 8) {
		memcpy(&x, p + i, 8);
		s += x;
	}
	return s;
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int mode_self(int argc, char **argv)
{
	size_t len = (size_t)atoi(argv[argc - 1]) << 20;
	uint8_t *p = malloc(len);
	pid_t pid = getpid();
	uint64_t want;
	int bad = 0;

	if (!p)
		return 2;
	want = fill(p, len, (uint64_t)pid);
	printf("start pid %d node %d sum %llx\n", pid, node_of_self(),
	       (unsigned long long)want);
	fflush(stdout);
	for (int i = 2; i < argc - 1; i++) {
		int node = atoi(argv[i]);
		long r = migrate(node);
		uint64_t got = sum(p, len);

		printf("moved %d ret %ld errno %d pid %d node %d sum %s\n",
		       node, r, r ? errno : 0, getpid(), node_of_self(),
		       got == want ? "ok" : "BAD");
		fflush(stdout);
		bad |= r != 0 || got != want || getpid() != pid ||
		       node_of_self() != node;
	}
	return bad;
}

static int mode_count(int argc, char **argv)
{
	int n = atoi(argv[2]), ms = atoi(argv[3]);

	if (argc == 5) {
		size_t len = (size_t)atoi(argv[4]) << 20;
		uint8_t *p = malloc(len);

		if (!p)
			return 2;
		fill(p, len, 7);
	}

	for (int i = 0; i < n; i++) {
		printf("%d %d %d\n", i, getpid(), node_of_self());
		fflush(stdout);
		msleep(ms);
	}
	return 0;
}

static int mode_append(char **argv)
{
	int n = atoi(argv[3]), ms = atoi(argv[4]);
	int fd = open(argv[2], O_WRONLY | O_APPEND | O_CREAT, 0644);
	char line[32];

	if (fd < 0)
		return 2;
	for (int i = 0; i < n; i++) {
		int len = snprintf(line, sizeof(line), "%d\n", i);

		if (write(fd, line, len) != len)
			return 3;
		msleep(ms);
	}
	return close(fd) ? 4 : 0;
}

struct part {
	const uint8_t *p;
	size_t len;
	uint64_t sum;
	int rounds;
	pid_t tid_before, tid_after;
	char creds_before[96], creds_after[96];
	int nice, nice_before, nice_after;	/* each worker its own */
	int bad;
	int mover;		/* this worker calls migrate(mover) */
	long moved;
	int from;		/* goto: go on until moved off this node */
};

static void *thread_sum(void *arg)
{
	struct part *pt = arg;

	for (int round = 0; round < 20; round++)
		pt->sum = sum(pt->p, pt->len);
	return NULL;
}

static void *thread_pause(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/*
 * This thread's own credentials (the raw system calls: each thread has
 * its own, and glibc's wrappers would hide a difference between them).
 */
static void thread_creds(char *buf, size_t len)
{
	unsigned int r[3], e[3];
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
	struct { uint32_t eff, perm, inh; } cap[2];

	syscall(SYS_getresuid, &r[0], &r[1], &r[2]);
	syscall(SYS_getresgid, &e[0], &e[1], &e[2]);
	memset(cap, 0, sizeof(cap));
	syscall(SYS_capget, &hdr, cap);
	snprintf(buf, len, "%u/%u/%u:%u/%u/%u:%x%08x:%ld", r[0], r[1], r[2],
		 e[0], e[1], e[2], cap[1].eff, cap[0].eff,
		 syscall(SYS_getgroups, 0, NULL));
}

static void *thread_setuid(void *arg)
{
	(void)arg;
	if (!syscall(SYS_setresuid, 65534, 65534, 65534))
		pause();
	return NULL;
}

static void *thread_work(void *arg)
{
	struct part *pt = arg;
	uint64_t first = 0;
	struct timespec t0, t;

	pt->tid_before = gettid();
	setpriority(PRIO_PROCESS, 0, pt->nice);
	pt->nice_before = getpriority(PRIO_PROCESS, 0);
	thread_creds(pt->creds_before, sizeof(pt->creds_before));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/*
	 * Moved from outside: that may come late (pre-copy runs first, and
	 * takes minutes under a debug kernel), so go on until moved, for
	 * at most 10 minutes.
	 */
	for (int r = 0; r < pt->rounds ||
	     (pt->from && node_of_self() == pt->from &&
	      !clock_gettime(CLOCK_MONOTONIC, &t) && t.tv_sec - t0.tv_sec < 600);
	     r++) {
		uint64_t s = sum(pt->p, pt->len);

		if (r == 0)
			first = s;
		else if (s != first)
			pt->bad = 1;
		if (r == 1 && pt->mover)
			pt->moved = migrate(pt->mover);
		pt->sum = s;
	}
	pt->tid_after = gettid();
	thread_creds(pt->creds_after, sizeof(pt->creds_after));
	pt->nice_after = getpriority(PRIO_PROCESS, 0);
	return NULL;
}

static int mode_threads(char **argv)
{
	size_t len = (size_t)atoi(argv[2]) << 20, q = len / 4;
	int node = atoi(argv[3]);
	const char *who = argv[4];
	uint8_t *p = malloc(len);
	struct part pt[4];
	pthread_t t[4];
	uint64_t want, got = 0;
	long r = 0;
	int bad = 0, bad_creds = 0;
	char creds[96];

	if (!p)
		return 2;
	want = fill(p, len, 42);
	thread_creds(creds, sizeof(creds));
	printf("threads pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	for (int i = 0; i < 4; i++) {
		pt[i] = (struct part){ .p = p + i * q, .len = q,
				       .rounds = strcmp(who, "0") ? 12 : 20,
				       .nice = i + 1,
				       .mover = (i == 0 && !strcmp(who, "1")) ?
						node : 0,
				       .from = strcmp(who, "0") ? 0 :
					       node_of_self() };
		if (pthread_create(&t[i], NULL, thread_work, &pt[i]))
			return 2;
	}
	if (!strcmp(who, "main")) {
		msleep(200);
		r = migrate(node);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		got += pt[i].sum;
		bad |= pt[i].bad || pt[i].tid_before != pt[i].tid_after;
		bad_creds |= strcmp(pt[i].creds_before, creds) ||
			     strcmp(pt[i].creds_after, creds) ||
			     pt[i].nice_before != pt[i].nice ||
			     pt[i].nice_after != pt[i].nice;
		if (pt[i].nice_after != pt[i].nice)
			printf("thread %d nice %d, was %d\n", pt[i].tid_after,
			       pt[i].nice_after, pt[i].nice);
		if (strcmp(pt[i].creds_after, creds))
			printf("thread %d creds %s, process %s\n",
			       pt[i].tid_after, pt[i].creds_after, creds);
		if (pt[i].mover)
			r = pt[i].moved;
	}
	printf("threads migrate %ld errno %d node %d pid %d sum %s tids %s creds %s\n",
	       r, r ? errno : 0, node_of_self(), getpid(),
	       got == want ? "ok" : "BAD", bad ? "BAD" : "ok",
	       bad_creds ? "BAD" : "ok");
	return r || got != want || bad || bad_creds;
}

static int clonevm_child(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

/* migrate() to @node and print its outcome, a refusal case named @kind. */
static void refuse_report(const char *kind, int node)
{
	long r = migrate(node);

	printf("%s migrate %ld errno %d node %d pid %d\n", kind, r,
	       r ? errno : 0, node_of_self(), getpid());
}

/* refuse_report(), then kill and reap @child, the task the case hinges on. */
static int refuse_report_child(const char *kind, int node, pid_t child)
{
	refuse_report(kind, node);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}

static int mode_refuse(char **argv)
{
	const char *kind = argv[2];
	int node = atoi(argv[3]);
	pthread_t t;
	long r;

	if (!strcmp(kind, "threads")) {
		static struct part pt;
		static uint8_t buf[4096];

		pt.p = buf;
		pt.len = sizeof(buf);
		if (pthread_create(&t, NULL, thread_sum, &pt))
			return 2;
		pthread_join(t, NULL);
		if (pthread_create(&t, NULL, thread_pause, NULL))
			return 2;
	} else if (!strcmp(kind, "setuid")) {
		/* a thread takes other ids for itself alone (a raw setresuid) */
		if (pthread_create(&t, NULL, thread_setuid, NULL))
			return 2;
		msleep(100);
	} else if (!strcmp(kind, "shm")) {
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			return 2;
		memset(m, 1, 4096);
	} else if (!strcmp(kind, "nnp")) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
			return 2;
	} else if (!strcmp(kind, "seccomp")) {
		struct sock_filter allow =
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
		struct sock_fprog prog = { .len = 1, .filter = &allow };

		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0))
			return 2;
	} else if (!strcmp(kind, "ptracing")) {
		/* a child that asked to be traced, stopped: we trace it */
		pid_t c = fork();
		int st;

		if (c == 0) {
			ptrace(PTRACE_TRACEME, 0, NULL, NULL);
			raise(SIGSTOP);
			_exit(0);
		}
		if (c < 0 || waitpid(c, &st, WUNTRACED) != c)
			return 2;
		return refuse_report_child(kind, node, c);
	} else if (!strcmp(kind, "ptraced")) {
		/* a child seizes us (no stop) and tells us through a pipe */
		int fds[2];
		pid_t c, me = getpid();
		char b;

		if (pipe(fds))
			return 2;
		c = fork();
		if (c == 0) {
			b = ptrace(PTRACE_SEIZE, me, NULL, NULL) ? 'n' : 'y';
			if (write(fds[1], &b, 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		if (c < 0 || read(fds[0], &b, 1) != 1 || b != 'y')
			return 2;
		return refuse_report_child(kind, node, c);
	} else if (!strcmp(kind, "clonevm")) {
		/* a process of its own on our address space (CLONE_VM) */
		static char stack[64 * 1024];
		pid_t c = clone(clonevm_child, stack + sizeof(stack),
				CLONE_VM | SIGCHLD, NULL);

		if (c < 0)
			return 2;
		return refuse_report_child(kind, node, c);
	} else if (!strcmp(kind, "vfork")) {
		/* checked from the child side of vfork: shared mm */
		int st;
		pid_t c = vfork();

		if (c == 0) {
			r = migrate(node);
			_exit(r ? errno : 0);
		}
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st))
			return 2;
		/* the child's errno, as the others print their own */
		printf("%s migrate %d errno %d node %d pid %d\n", kind,
		       WEXITSTATUS(st) ? -1 : 0, WEXITSTATUS(st),
		       node_of_self(), c);
		return 0;
	}
	if (!strcmp(argv[3], "wait")) {
		/* moved (or not) from outside; a signal ends it */
		printf("%s ready pid %d\n", kind, getpid());
		fflush(stdout);
		pause();
		return 0;
	}
	refuse_report(kind, node);
	return 0;
}

static int mode_rfork(char **argv)
{
	int node = atoi(argv[2]), code = atoi(argv[3]), status;
	pid_t parent = getpid();
	long child = syscall(__NR_ssi_rfork, node);

	if (child < 0) {
		printf("rfork -1 errno %d\n", errno);
		return 1;
	}
	if (child == 0) {
		printf("child pid %d ppid %d node %d parent %d\n", getpid(),
		       getppid(), node_of_self(), parent);
		fflush(stdout);
		_exit(code);
	}
	if (waitpid(child, &status, 0) != child)
		return 2;
	printf("parent pid %d child %ld status %d exited %d code %d\n",
	       getpid(), child, status, WIFEXITED(status),
	       WEXITSTATUS(status));
	return 0;
}

/* This program's path into @buf (PATH_MAX); false if unknown. */
static bool self_path(char *buf)
{
	ssize_t n = readlink("/proc/self/exe", buf, PATH_MAX - 1);

	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

static int mode_rexec(char **argv)
{
	char *args[] = { "migprog", "report", argv[3], NULL };
	char self[PATH_MAX];
	long r;

	if (!self_path(self))
		return 2;
	printf("rexec pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	r = syscall(__NR_ssi_rexec, atoi(argv[2]), self, args, environ);
	printf("rexec -1 errno %d\n", r ? errno : 0);
	return 1;
}

static int mode_rexecvia(char **argv)
{
	char *args[] = { "migprog", "report", argv[5], NULL };
	char self[PATH_MAX];
	long r;

	if (!self_path(self))
		return 2;
	if (migrate(atoi(argv[2]))) {
		perror("migrate");
		return 100;
	}
	if (chdir(argv[4])) {
		perror("chdir");
		return 3;
	}
	printf("rexecvia pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	r = syscall(__NR_ssi_rexec, atoi(argv[3]),
		    strcmp(argv[5], "-") ? self : "/nonexistent/migprog",
		    args, environ);
	printf("rexecvia -1 errno %d node %d\n", r ? errno : 0,
	       node_of_self());
	return 1;
}

/*
 * Fault injection on ("1") or off ("0") for this task.  Switching it off
 * opens the file with injection still on, which may fail itself: retry.
 * (No descriptor is kept: the process moves, its /proc/self does not.)
 */
static int make_it_fail(const char *on)
{
	for (int tries = 0; tries < 1000; tries++) {
		int fd = open("/proc/self/make-it-fail", O_WRONLY);
		int ok;

		if (fd < 0)
			continue;
		ok = write(fd, on, 1) == 1;
		close(fd);
		if (ok)
			return 0;
	}
	return -1;
}

static volatile sig_atomic_t statreader_stop;

static void on_statreader_stop(int sig)
{
	(void)sig;
	statreader_stop = 1;
}

/* Read @pid's stat and cmdline until SIGTERM; print how many reads got text. */
static void statreader(pid_t pid)
{
	char path[2][64], buf[4096];
	unsigned long reads = 0;
	int i, fd;

	signal(SIGTERM, on_statreader_stop);
	snprintf(path[0], sizeof(path[0]), "/proc/%d/stat", pid);
	snprintf(path[1], sizeof(path[1]), "/proc/%d/cmdline", pid);
	while (!statreader_stop) {
		for (i = 0; i < 2; i++) {
			fd = open(path[i], O_RDONLY);
			if (fd < 0)
				continue;
			if (read(fd, buf, sizeof(buf)) > 0)
				reads++;
			close(fd);
		}
	}
	printf("watched reader reads %lu\n", reads);
	fflush(stdout);
}

static int mode_watched(char **argv)
{
	int node = atoi(argv[2]), n = atoi(argv[3]), home = node_of_self();
	int i, moved = 0, to;
	pid_t reader;
	long r;

	fflush(stdout);
	reader = fork();
	if (reader < 0)
		return 3;
	if (reader == 0) {
		statreader(getppid());
		_exit(0);
	}
	for (i = 0; i < 2 * n; i++) {
		to = i % 2 ? home : node;
		r = migrate(to);
		printf("watched %d to %d errno %d node %d\n", i, to,
		       r ? errno : 0, node_of_self());
		fflush(stdout);
		moved += !r;
	}
	kill(reader, SIGTERM);
	waitpid(reader, NULL, 0);
	printf("watched done moved %d of %d\n", moved, 2 * n);
	return moved == 2 * n ? 0 : 1;
}

static int mode_failmig(char **argv)
{
	size_t len = (size_t)atoi(argv[2]) << 20;
	int away = atoi(argv[3]), home = node_of_self(), moved = 0, failed = 0;
	uint8_t *p = malloc(len);
	pid_t pid = getpid();
	uint64_t want;
	int bad = 0;

	if (!p)
		return 2;
	want = fill(p, len, (uint64_t)pid);
	/*
	 * Nothing of ours is faulted in from the 9p root while allocations
	 * fail: the 9p client does not survive that (the node could exec
	 * nothing afterwards), and it is not what this tests.  The lock moves
	 * with the process (MIG_VMA_LOCKED).
	 */
	if (mlockall(MCL_CURRENT))
		return 2;
	for (int i = 0; i < atoi(argv[4]); i++) {
		int from = node_of_self(), to = from == away ? home : away;
		long r;
		int err;

		if (make_it_fail("1"))
			return 3;
		r = migrate(to);
		err = r ? errno : 0;
		if (make_it_fail("0"))
			return 3;
		bad |= sum(p, len) != want || getpid() != pid ||
		       node_of_self() != (r ? from : to);
		printf("failmig %d to %d errno %d node %d pid %d mem %s\n", i,
		       to, err, node_of_self(), getpid(),
		       sum(p, len) == want ? "ok" : "BAD");
		fflush(stdout);
		if (r)
			failed++;
		else
			moved++;
	}
	printf("failmig done moved %d failed %d bad %d\n", moved, failed, bad);
	return bad;
}

static int mode_cwd(int argc, char **argv)
{
	char dir[4096];
	int bad = 0;

	for (int i = 3; i < argc; i++) {
		int node = atoi(argv[i]);

		if (migrate(node)) {
			printf("cwd migrate %d errno %d\n", node, errno);
			return 100;
		}
		if (i == 3 && chdir(argv[2])) {
			perror("chdir");
			return 3;
		}
		if (!getcwd(dir, sizeof(dir)))
			strcpy(dir, "?");
		printf("cwd node %d dir %s\n", node_of_self(), dir);
		fflush(stdout);
		bad |= strcmp(dir, argv[2]) != 0;
	}
	return bad;
}

static int mode_tcp(char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(atoi(argv[3])) };
	int n = atoi(argv[4]), ms = atoi(argv[5]), fd, i;
	char line[32];

	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return 3;
	printf("tcp pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	for (i = 0; i < n; i++) {
		int len = snprintf(line, sizeof(line), "%d\n", i);

		if (write(fd, line, len) != len) {
			printf("tcp write %d errno %d\n", i, errno);
			return 4;
		}
		msleep(ms);
	}
	/* close, not shutdown(): socket calls do not reach a moved socket yet */
	i = close(fd) ? -1 : i;
	printf("tcp sent %d node %d\n", i, node_of_self());
	return i < 0 ? 5 : 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int mode_spin(char **argv)
{
	double end = now_s() + atof(argv[2]);
	volatile uint64_t x = 0;

	printf("spin pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	while (now_s() < end)
		for (int i = 0; i < 1000000; i++)
			x += i;
	printf("spin done node %d\n", node_of_self());
	return 0;
}

static int mode_hog(char **argv)
{
	size_t len = (size_t)atoi(argv[2]) << 20;
	uint8_t *p = malloc(len);

	if (!p)
		return 2;
	fill(p, len, 42);
	printf("hog pid %d mib %d\n", getpid(), atoi(argv[2]));
	fflush(stdout);
	msleep(atol(argv[3]) * 1000);
	printf("hog sum %llx\n", (unsigned long long)sum(p, len));
	return 0;
}

static int mode_coredump(char **argv)
{
	int node = atoi(argv[2]), status;
	const char *sig = argv[3];
	pid_t child;

	if (strcmp(sig, "segv") && strcmp(sig, "abrt"))
		return 2;
	fflush(stdout);
	child = fork();
	if (child < 0)
		return 3;
	if (child == 0) {
		struct rlimit rl;

		/* soft limit up to the hard one (which the caller chose) */
		if (getrlimit(RLIMIT_CORE, &rl))
			_exit(101);
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_CORE, &rl))
			_exit(101);
		if (migrate_or_say(node))
			_exit(100);
		printf("child pid %d node %d\n", getpid(), node_of_self());
		fflush(stdout);
		if (!strcmp(sig, "abrt"))
			abort();
		*(volatile int *)0 = 1;
		_exit(102);
	}
	if (waitpid(child, &status, 0) != child)
		return 4;
	printf("parent child %d signaled %d sig %d core %d status %d\n",
	       child, WIFSIGNALED(status),
	       WIFSIGNALED(status) ? WTERMSIG(status) : 0,
	       WIFSIGNALED(status) ? !!WCOREDUMP(status) : 0, status);
	return 0;
}

static void exit_seven(int sig)
{
	(void)sig;
	_exit(7);
}

/* A child that waits for SIGUSR1 (exit 7) or dies of SIGTERM. */
static pid_t waiting_child(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		signal(SIGUSR1, exit_seven);
		for (;;)
			pause();
	}
	return pid;
}

static int waitkids_bad;
static const char *waitkids_mode = "waitkids";

static void waitkids_check(const char *what, int ok)
{
	printf("%s %s %s\n", waitkids_mode, what, ok ? "ok" : "BAD");
	fflush(stdout);
	waitkids_bad += !ok;
}

/* The SIGCHLDs the parent's handler saw: child, si_code, si_status. */
static volatile sig_atomic_t chld_seen;
static volatile sig_atomic_t chld_pid[8], chld_code[8], chld_status[8];

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	int i = chld_seen;

	(void)sig;
	(void)uc;
	if (i < 8) {
		chld_pid[i] = si->si_pid;
		chld_code[i] = si->si_code;
		chld_status[i] = si->si_status;
		chld_seen = i + 1;
	}
}

/* Did the handler see @pid end with @code and @status (waiting up to 5 s)? */
static int chld_saw(pid_t pid, int code, int status)
{
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	int i, tries;

	for (tries = 0; tries < 250; tries++) {
		for (i = 0; i < chld_seen && i < 8; i++)
			if (chld_pid[i] == pid)
				return chld_code[i] == code &&
				       chld_status[i] == status;
		nanosleep(&tick, NULL);
	}
	return 0;
}

/* Where the handler noted @pid's SIGCHLD in chld_*[], or -1. */
static int chld_index(pid_t pid)
{
	int i;

	for (i = 0; i < chld_seen && i < 8; i++)
		if (chld_pid[i] == pid)
			return i;
	return -1;
}

/* Append a line to @path, opened where this process runs now. */
static void note_here(const char *path, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;	/* cut, never read past it */
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, n) != n)
		n = -1;	/* nobody to tell: the test sees the line missing */
	close(fd);
}

static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen = 1;
}

/*
 * migprog deadfd: write a line to stdout every 20 ms whatever it returns;
 * on SIGUSR1 note the errno of one more write (0: it went) in
 * /tmp/deadfd.out where it runs then, and end.
 */
static int mode_deadfd(void)
{
	char line[64];
	int n, i;

	signal(SIGUSR1, on_usr1);
	n = snprintf(line, sizeof(line), "deadfd pid %d\n", getpid());
	if (write(1, line, n) != n)
		return 2;
	for (i = 0; !usr1_seen; i++) {
		n = snprintf(line, sizeof(line), "%d\n", i);
		if (write(1, line, n) < 0 && errno != EIO)
			note_here("/tmp/deadfd.out", "deadfd unexpected errno %d\n",
				  errno);
		usleep(20000);
	}
	n = write(1, "end\n", 4) < 0 ? errno : 0;
	note_here("/tmp/deadfd.out", "deadfd write errno %d node %d\n", n,
		  node_of_self());
	return 0;
}

/*
 * migprog forkwait NODE: migrate() to NODE, fork a child there that waits
 * for SIGUSR1, then notes in /tmp/forkwait.out "forkwait wnohang R errno
 * E blocking R errno E ms M": a wait4(-1, WNOHANG) and a blocking
 * wait4(-1) of a process with no children, and how long the second took.
 */
static int mode_forkwait(char **argv)
{
	struct timespec t0, t1;
	pid_t kid;
	int r1, e1, r2, e2;

	if (migrate(atoi(argv[2])))
		return 2;
	kid = fork();
	if (kid < 0)
		return 3;
	if (kid > 0) {
		note_here("/tmp/forkwait.out", "forkwait kid %d node %d\n", kid,
			  node_of_self());
		return 0;
	}
	signal(SIGUSR1, on_usr1);
	while (!usr1_seen)
		pause();
	r1 = wait4(-1, NULL, WNOHANG, NULL);
	e1 = r1 < 0 ? errno : 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r2 = wait4(-1, NULL, 0, NULL);
	e2 = r2 < 0 ? errno : 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	note_here("/tmp/forkwait.out",
		  "forkwait wnohang %d errno %d blocking %d errno %d ms %ld\n",
		  r1, e1, r2, e2, (long)((t1.tv_sec - t0.tv_sec) * 1000 +
					 (t1.tv_nsec - t0.tv_nsec) / 1000000));
	return 0;
}

static void family_child_ends(int sig)
{
	(void)sig;
	note_here("/tmp/family.child", "child %d ppid %d node %d\n", getpid(),
		  getppid(), node_of_self());
	_exit(7);
}

/*
 * migprog family: two children that wait for SIGUSR1 (then note their
 * parent and exit 7); the parent notes who they are, then waits with
 * wait4(-1) until ECHILD, noting each result with the SIGCHLDs seen so
 * far.  Notes go to /tmp/family.out where it runs then: its stdout, had
 * it been a pipe or a file of the node it started on, could die with it.
 */
static int mode_family(void)
{
	struct sigaction sa = { .sa_sigaction = on_chld,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	pid_t kid[2], r;
	int i, status;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL))
		return 2;
	fflush(stdout);
	for (i = 0; i < 2; i++) {
		kid[i] = fork();
		if (kid[i] < 0)
			return 3;
		if (kid[i] == 0) {
			signal(SIGUSR1, family_child_ends);
			for (;;)
				pause();
		}
	}
	note_here("/tmp/family.out", "family pid %d kids %d %d\n", getpid(),
		  kid[0], kid[1]);
	for (;;) {
		r = wait4(-1, &status, 0, NULL);
		if (r < 0) {
			note_here("/tmp/family.out", "wait errno %d node %d\n",
				  errno, node_of_self());
			return 0;
		}
		for (i = 0; i < 250 && chld_index(r) < 0; i++)
			usleep(20000);
		i = chld_index(r);
		note_here("/tmp/family.out",
			  "reaped %d status %d sigchld %d code %d sigstatus %d node %d\n",
			  r, status, chld_seen, i < 0 ? -1 : chld_code[i],
			  i < 0 ? -1 : chld_status[i], node_of_self());
	}
}

static int mode_waitkids(char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_chld,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	int node = atoi(argv[2]), status = 0;
	pid_t a, b, d, c, r;
	siginfo_t si;

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL))
		return 2;
	fflush(stdout);
	a = waiting_child();
	b = waiting_child();
	d = waiting_child();
	if (a < 0 || b < 0 || d < 0)
		return 3;
	if (migrate_or_say(node))
		return 4;
	printf("waitkids pid %d node %d children %d %d %d\n", getpid(),
	       node_of_self(), a, b, d);
	/* none ready: 0, not ECHILD */
	r = waitpid(-1, &status, WNOHANG);
	waitkids_check("wnohang-any", r == 0);
	memset(&si, 0, sizeof(si));
	r = waitid(P_PID, b, &si, WEXITED | WNOHANG);
	waitkids_check("waitid-wnohang", r == 0 && si.si_pid == 0);
	/* by PID, blocking */
	kill(a, SIGUSR1);
	r = waitpid(a, &status, 0);
	printf("waitkids wait4 pid %d got %d status %#x\n", a, r, status);
	waitkids_check("wait4-pid", r == a && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 7);
	/* any, blocking, waitid's fields */
	kill(b, SIGTERM);
	memset(&si, 0, sizeof(si));
	r = waitid(P_ALL, 0, &si, WEXITED);
	printf("waitkids waitid got %d pid %d code %d status %d\n", r,
	       si.si_pid, si.si_code, si.si_status);
	waitkids_check("waitid-any", r == 0 && si.si_pid == b &&
		       si.si_code == CLD_KILLED && si.si_status == SIGTERM &&
		       si.si_signo == SIGCHLD);
	/* a child made here and one at home: each reaped by wait(-1) */
	c = fork();
	if (c == 0)
		_exit(5);
	r = waitpid(-1, &status, 0);
	printf("waitkids local got %d (child %d) status %#x\n", r, c, status);
	waitkids_check("wait4-local", r == c && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 5);
	kill(d, SIGUSR1);
	r = waitpid(-1, &status, 0);
	waitkids_check("wait4-home", r == d && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 7);
	r = waitpid(-1, &status, 0);
	waitkids_check("echild", r == -1 && errno == ECHILD);
	/* The handler got each home child's SIGCHLD as a local one would be. */
	waitkids_check("sigchld-exited", chld_saw(a, CLD_EXITED, 7));
	waitkids_check("sigchld-killed", chld_saw(b, CLD_KILLED, SIGTERM));
	waitkids_check("sigchld-local", chld_saw(c, CLD_EXITED, 5));
	waitkids_check("sigchld-home", chld_saw(d, CLD_EXITED, 7));
	printf("waitkids done bad %d node %d\n", waitkids_bad, node_of_self());
	return 0;
}

/* Until the test creates @path (on the node this process runs on). */
static int wait_for_file(const char *path, int seconds)
{
	for (int i = 0; i < seconds * 10; i++) {
		if (!access(path, F_OK))
			return 0;
		usleep(100000);
	}
	return -1;
}

static int mode_keepkids(char **argv)
{
	struct sigaction sa = { .sa_sigaction = on_chld,
				.sa_flags = SA_SIGINFO | SA_RESTART };
	int a = atoi(argv[2]), b = atoi(argv[3]), status = 0;
	int home = node_of_self();
	pid_t live, zombie, late, r;
	siginfo_t si;
	long moved;

	waitkids_mode = "keepkids";
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL))
		return 2;
	if (migrate_or_say(a))
		return 4;
	live = waiting_child();
	zombie = fork();
	if (zombie == 0)
		_exit(9);
	if (live < 0 || zombie < 0)
		return 3;
	/* a zombie: exited, its status not collected yet */
	if (waitid(P_PID, zombie, &si, WEXITED | WNOWAIT))
		return 3;
	if (migrate_or_say(b))
		return 4;
	printf("keepkids pid %d node %d children %d %d\n", getpid(),
	       node_of_self(), live, zombie);
	fflush(stdout);
	/* the test looks at node A meanwhile */
	if (wait_for_file("/tmp/keepkids.go", 300))
		return 5;
	r = waitpid(-1, &status, WNOHANG);
	waitkids_check("wnohang-zombie", r == zombie && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 9);
	r = waitpid(-1, &status, WNOHANG);
	waitkids_check("wnohang-none-ready", r == 0);
	kill(live, SIGUSR1);
	r = waitpid(live, &status, 0);
	waitkids_check("wait4-live", r == live && WIFEXITED(status) &&
		       WEXITSTATUS(status) == 7);
	r = waitpid(-1, &status, 0);
	waitkids_check("echild", r == -1 && errno == ECHILD);
	waitkids_check("sigchld-zombie", chld_saw(zombie, CLD_EXITED, 9));
	waitkids_check("sigchld-live", chld_saw(live, CLD_EXITED, 7));
	/* back to A, into the task that kept them: then leave a child again */
	if (migrate_or_say(a))
		return 4;
	waitkids_check("back", node_of_self() == a);
	late = waiting_child();
	if (late < 0)
		return 3;
	if (migrate_or_say(b))
		return 4;
	waitkids_check("again", node_of_self() == b);
	/* home cannot keep a child on another node */
	moved = migrate(home);
	waitkids_check("home-refused", moved == -1 && errno == EBUSY &&
		       node_of_self() == b);
	kill(late, SIGTERM);
	memset(&si, 0, sizeof(si));
	r = waitid(P_ALL, 0, &si, WEXITED);
	waitkids_check("waitid-late", r == 0 && si.si_pid == late &&
		       si.si_code == CLD_KILLED && si.si_status == SIGTERM);
	/* none left there: its sub-deputy ends, and home takes it */
	moved = migrate(home);
	waitkids_check("home", moved == 0 && node_of_self() == home);
	printf("keepkids done bad %d node %d\n", waitkids_bad, node_of_self());
	return 0;
}

static volatile sig_atomic_t rt_count, rt_done;

static void on_rt(int sig)
{
	(void)sig;
	rt_count++;
}

static void on_term(int sig)
{
	(void)sig;
	rt_done = 1;
}

/* Count SIGRTMIN+1 (queued, never merged) until SIGTERM; print the count. */
/* One "groups WHAT" line; nonzero if the ids differ from @want. */
static int groups_line(const char *what, const pid_t *want)
{
	pid_t have[3] = { getpgrp(), getsid(0), getppid() };

	printf("groups %s pid %d node %d pgid %d sid %d ppid %d\n", what,
	       getpid(), node_of_self(), have[0], have[1], have[2]);
	fflush(stdout);
	return memcmp(have, want, sizeof(have)) != 0;
}

static int mode_groups(int argc, char **argv)
{
	struct sigaction st = { .sa_handler = on_term };
	pid_t start[3] = { getpgrp(), getsid(0), getppid() };
	pid_t self = getpid(), child;
	int bad = 0, status, ready[2];
	ssize_t n;
	char c;

	sigemptyset(&st.sa_mask);
	if (sigaction(SIGTERM, &st, NULL))
		return 2;
	groups_line("start", start);
	for (int i = 2; i < argc; i++) {
		if (migrate(atoi(argv[i]))) {
			printf("groups migrate %s errno %d\n", argv[i], errno);
			return 100;
		}
		bad += groups_line("moved", start);
		fflush(stdout);
		child = fork();
		if (child < 0)
			return 3;
		if (!child) {
			pid_t want[3] = { start[0], start[1], self };

			_exit(groups_line("child", want));
		}
		if (waitpid(child, &status, 0) != child ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			bad++;
	}
	if (sigaction(SIGRTMIN + 1, &(struct sigaction){ .sa_handler = on_rt },
		      NULL) || pipe(ready))
		return 2;
	child = fork();
	if (child < 0)
		return 3;
	if (!child) {
		if (kill(0, SIGRTMIN + 1) || write(ready[1], "k", 1) != 1)
			_exit(4);
		while (!rt_done)
			pause();
		printf("groups kid got %d node %d\n", (int)rt_count,
		       node_of_self());
		fflush(stdout);
		_exit(0);
	}
	while ((n = read(ready[0], &c, 1)) < 0 && errno == EINTR)
		;	/* the kid's kill(0) reaches this process too */
	if (n != 1)
		bad++;
	printf("groups done bad %d kid %d\n", bad, child);
	fflush(stdout);
	while (!rt_done)
		pause();
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		bad++;
	printf("groups got %d node %d\n", (int)rt_count, node_of_self());
	return bad;
}

static int mode_pagemap(char **argv)
{
	static char page[4096] __attribute__((aligned(4096)));
	int fd = open("/proc/self/pagemap", O_RDONLY);
	unsigned long long e = 0;
	long r;

	if (fd < 0)
		return 2;
	r = migrate(atoi(argv[2]));
	page[0] = 1;	/* present after the move */
	if (pread(fd, &e, sizeof(e), (off_t)((unsigned long)page / 4096) * 8) !=
	    sizeof(e))
		return 3;
	printf("pagemap migrate %ld errno %d present %llu pfn %llu node %d\n", r,
	       r ? errno : 0, e >> 63,
	       e & ((1ULL << 55) - 1), node_of_self());
	return 0;
}

static void on_chld_wake(int sig)
{
	(void)sig;
}

static int mode_setgroup(char **argv)
{
	struct sigaction st = { .sa_handler = on_term };
	struct sigaction sa = { .sa_handler = on_rt };
	long r;

	sigemptyset(&st.sa_mask);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &st, NULL) || sigaction(SIGRTMIN + 1, &sa, NULL))
		return 2;
	if (migrate(atoi(argv[2]))) {
		printf("setgroup migrate %s errno %d\n", argv[2], errno);
		return 100;
	}
	if (!strcmp(argv[3], "pgid")) {
		int go[2];
		pid_t kid;
		char c;

		if (pipe(go))
			return 2;
		fflush(stdout);
		kid = fork();
		if (kid < 0)
			return 3;
		if (!kid) {
			/* after the parent changed its group */
			if (read(go[0], &c, 1) != 1)
				_exit(4);
			printf("setgroup kid ids pid %d pgid %d sid %d node %d\n",
			       getpid(), getpgrp(), getsid(0), node_of_self());
			fflush(stdout);
			while (!rt_done)
				pause();
			printf("setgroup kid got %d\n", (int)rt_count);
			fflush(stdout);
			_exit(0);
		}
		r = setpgid(0, 0);
		printf("setgroup setpgid %ld errno %d\n", r, r ? errno : 0);
		if (write(go[1], "g", 1) != 1)
			return 2;
	}
	r = setsid();
	printf("setgroup setsid %ld errno %d\n", r, r < 0 ? errno : 0);
	printf("setgroup ids pid %d pgid %d sid %d node %d\n", getpid(),
	       getpgrp(), getsid(0), node_of_self());
	fflush(stdout);
	/* SIGCHLD wakes pause(): the kid is reaped, so this can go home */
	if (sigaction(SIGCHLD, &(struct sigaction){ .sa_handler = on_chld_wake },
		      NULL))
		return 2;
	while (!rt_done) {
		pause();
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	printf("setgroup got %d node %d\n", (int)rt_count, node_of_self());
	return 0;
}

static int mode_sigcount(void)
{
	struct sigaction sa = { .sa_handler = on_rt };
	struct sigaction st = { .sa_handler = on_term };

	sigemptyset(&sa.sa_mask);
	sigemptyset(&st.sa_mask);
	if (sigaction(SIGRTMIN + 1, &sa, NULL) || sigaction(SIGTERM, &st, NULL))
		return 2;
	printf("sigcount pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	while (!rt_done)
		pause();
	printf("sigcount got %d node %d\n", (int)rt_count, node_of_self());
	return 0;
}

/*
 * Fork a child that moves to @node and waits for signals; report each of
 * its stops, continues and its end as wait(WUNTRACED | WCONTINUED) gives
 * them, a line each.
 */
static int mode_jobctl(char **argv)
{
	int node = atoi(argv[2]), status;
	pid_t child, r;

	fflush(stdout);
	child = fork();
	if (child < 0)
		return 2;
	if (child == 0) {
		/* a job of its own, as a shell makes it: not an orphaned group */
		setpgid(0, 0);
		if (migrate_or_say(node))
			_exit(4);
		for (;;)
			pause();
	}
	setpgid(child, child);
	printf("jobctl parent %d child %d\n", getpid(), child);
	fflush(stdout);
	for (;;) {
		r = waitpid(child, &status, WUNTRACED | WCONTINUED);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			printf("jobctl waitpid errno %d\n", errno);
			return 1;
		}
		if (WIFSTOPPED(status))
			printf("jobctl stopped %d\n", WSTOPSIG(status));
		else if (WIFCONTINUED(status))
			printf("jobctl continued\n");
		else if (WIFSIGNALED(status))
			printf("jobctl killed %d\n", WTERMSIG(status));
		else
			printf("jobctl exited %d\n", WEXITSTATUS(status));
		fflush(stdout);
		if (WIFSIGNALED(status) || WIFEXITED(status))
			return 0;
	}
}

/*
 * Move to @node, then take SIGRTMIN+2 and SIGUSR2 (blocked, by sigwaitinfo)
 * and print each one's siginfo: what the deputy forwarded must read as a
 * local delivery would.
 */
static int mode_siginfo(char **argv)
{
	int node = atoi(argv[2]), i;
	sigset_t set;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 2);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return 2;
	if (migrate_or_say(node))
		return 4;
	printf("siginfo pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	for (i = 0; i < 2; i++) {
		if (sigwaitinfo(&set, &si) < 0)
			return 5;
		printf("siginfo sig %s code %d pid %d uid %d value %d node %d\n",
		       si.si_signo == SIGUSR2 ? "usr2" : "rtmin2", si.si_code,
		       si.si_pid, si.si_uid,
		       si.si_code == SI_QUEUE ? si.si_value.sival_int : 0,
		       node_of_self());
		fflush(stdout);
	}
	return 0;
}

/* What generation @gen leaves in page @i: its mark, or 0 if it dropped it. */
static uint64_t sweep_mark(uint64_t gen, size_t i)
{
	if (gen % 5 == 0 && i % 7 == 3)
		return 0;
	return gen << 32 | (i & 0xffffffff) | 1;
}

static volatile sig_atomic_t sweep_stop;

static void sweep_on_usr1(int sig)
{
	(void)sig;
	sweep_stop = 1;
}

static int mode_sweep(char **argv)
{
	size_t npages = ((size_t)atoi(argv[2]) << 20) / 4096;
	double end = now_s() + atof(argv[3]);
	uint64_t *p = mmap(NULL, npages * 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char nodes[256] = "";
	long errors = 0;
	int last = -1;
	uint64_t gen;

	if (p == MAP_FAILED || signal(SIGUSR1, sweep_on_usr1) == SIG_ERR)
		return 2;
	/* as if generations 8..15 had written their eighths */
	for (size_t i = 0; i < npages; i++) {
		uint64_t *pg = p + i * 512;

		gen = 8 + i % 8;
		if (sweep_mark(gen, i))
			pg[0] = pg[511] = sweep_mark(gen, i);
	}
	printf("sweep pid %d node %d\n", getpid(), node_of_self());
	fflush(stdout);
	for (gen = 16; now_s() < end && !sweep_stop; gen++) {
		int node = node_of_self();

		if (node != last && strlen(nodes) < sizeof(nodes) - 8) {
			snprintf(nodes + strlen(nodes), 8, "%s%d",
				 last < 0 ? "" : ",", node);
			last = node;
		}
		for (size_t i = gen % 8; i < npages; i += 8) {
			uint64_t *pg = p + i * 512;
			uint64_t want = sweep_mark(gen - 8, i);

			if (pg[0] != want || pg[511] != want) {
				if (errors++ < 5)
					fprintf(stderr, "sweep gen %llu page %zu: %llx %llx, want %llx\n",
						(unsigned long long)gen, i,
						(unsigned long long)pg[0],
						(unsigned long long)pg[511],
						(unsigned long long)want);
			}
			if (!sweep_mark(gen, i))
				madvise(pg, 4096, MADV_DONTNEED);
			else
				pg[0] = pg[511] = sweep_mark(gen, i);
		}
		msleep(1);
	}
	/* every page, as the last eight generations left them */
	for (size_t i = 0; i < npages; i++) {
		uint64_t g = gen - 1 - ((gen - 1 - i % 8) % 8);
		uint64_t want = sweep_mark(g, i);

		if (p[i * 512] != want || p[i * 512 + 511] != want)
			errors++;
	}
	printf("sweep done gens %llu nodes %s errors %ld node %d\n",
	       (unsigned long long)(gen - 16), nodes, errors, node_of_self());
	return errors != 0;
}

struct tid_slot {
	pid_t tid, tid_after;
	int go, done;
	char creds[96];
};

static void on_wake(int sig)
{
	(void)sig;
}

/* Pause until told to, then report the TID and credentials it runs with. */
static void *thread_tid_pause(void *arg)
{
	struct tid_slot *s = arg;

	__atomic_store_n(&s->tid, gettid(), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE))
		pause();
	s->tid_after = gettid();
	thread_creds(s->creds, sizeof(s->creds));
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
	return NULL;
}

static int mode_holdtids(char **argv)
{
	static struct tid_slot slot[3];
	struct sigaction sa = { .sa_handler = on_wake };
	char nodes[64], *node, *save = NULL, creds[96];
	int moves = 0, bad_tids = 0, bad_creds = 0;
	pthread_t t;
	long r;

	sigaction(SIGUSR1, &sa, NULL);
	thread_creds(creds, sizeof(creds));
	for (int i = 0; i < 3; i++)
		if (pthread_create(&t, NULL, thread_tid_pause, &slot[i]))
			return 2;
	for (int i = 0; i < 3; i++)
		while (!__atomic_load_n(&slot[i].tid, __ATOMIC_ACQUIRE))
			msleep(10);
	snprintf(nodes, sizeof(nodes), "%s", argv[2]);
	for (node = strtok_r(nodes, ",", &save); node;
	     node = strtok_r(NULL, ",", &save), moves++) {
		r = migrate(atoi(node));
		printf("holdtids %s %ld errno %d node %d pid %d tids %d %d %d\n",
		       moves ? "then" : "moved", r, r ? errno : 0,
		       node_of_self(), getpid(), slot[0].tid, slot[1].tid,
		       slot[2].tid);
		fflush(stdout);
		if (r)
			return 1;
	}
	if (moves == 1)
		for (;;)
			pause();
	/* wake each thread where it is now: is it itself, with our ids? */
	for (int i = 0; i < 3; i++) {
		__atomic_store_n(&slot[i].go, 1, __ATOMIC_RELEASE);
		for (int w = 0; w < 1000 &&
		     !__atomic_load_n(&slot[i].done, __ATOMIC_ACQUIRE); w++) {
			syscall(SYS_tgkill, getpid(), slot[i].tid, SIGUSR1);
			msleep(10);
		}
		bad_tids |= !slot[i].done || slot[i].tid_after != slot[i].tid;
		bad_creds |= !slot[i].done || strcmp(slot[i].creds, creds);
		if (slot[i].done && strcmp(slot[i].creds, creds))
			printf("thread %d creds %s, process %s\n", slot[i].tid,
			       slot[i].creds, creds);
	}
	printf("holdtids threads node %d tids %s creds %s\n", node_of_self(),
	       bad_tids ? "BAD" : "ok", bad_creds ? "BAD" : "ok");
	return bad_tids || bad_creds;
}

/* Threads made after a first move get TIDs of that node's range. */
static int mode_latethreads(char **argv)
{
	static struct tid_slot slot[3];
	pthread_t t;
	long r;

	r = migrate(atoi(argv[2]));
	for (int i = 0; !r && i < 3; i++)
		if (pthread_create(&t, NULL, thread_tid_pause, &slot[i]))
			return 2;
	for (int i = 0; !r && i < 3; i++)
		while (!__atomic_load_n(&slot[i].tid, __ATOMIC_ACQUIRE))
			msleep(10);
	if (!r)
		r = migrate(atoi(argv[3]));
	printf("latethreads moved %ld errno %d node %d pid %d tids %d %d %d\n",
	       r, r ? errno : 0, node_of_self(), getpid(), slot[0].tid,
	       slot[1].tid, slot[2].tid);
	fflush(stdout);
	for (;;)
		pause();
}

/* clone3(set_tid): the child gets @tid or the call fails (EEXIST: taken). */
static int mode_claim(int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		pid_t tid = atoi(argv[i]);
		struct clone_args ca = {
			.exit_signal = SIGCHLD,
			.set_tid = (uint64_t)(uintptr_t)&tid,
			.set_tid_size = 1,
		};
		long r = syscall(SYS_clone3, &ca, sizeof(ca));

		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid(r, NULL, 0);
		printf("claim %d errno %d\n", tid, r < 0 ? errno : 0);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "self"))
		return mode_self(argc, argv);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "count"))
		return mode_count(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "exit")) {
		if (migrate(atoi(argv[3]))) {
			perror("migrate");
			return 100;
		}
		return atoi(argv[2]);
	}
	if (argc == 3 && !strcmp(argv[1], "abort")) {
		if (migrate_or_say(atoi(argv[2])))
			return 100;
		abort();
	}
	if (argc == 5 && !strcmp(argv[1], "append"))
		return mode_append(argv);
	if (argc == 6 && !strcmp(argv[1], "tcp"))
		return mode_tcp(argv);
	if (argc == 4 && !strcmp(argv[1], "rfork"))
		return mode_rfork(argv);
	if (argc == 4 && !strcmp(argv[1], "rexec"))
		return mode_rexec(argv);
	if (argc == 6 && !strcmp(argv[1], "rexecvia"))
		return mode_rexecvia(argv);
	if (argc >= 4 && !strcmp(argv[1], "cwd"))
		return mode_cwd(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "report")) {
		char dir[4096];

		if (!getcwd(dir, sizeof(dir)))
			strcpy(dir, "?");
		printf("report pid %d node %d arg %s cwd %s\n", getpid(),
		       node_of_self(), argv[2], dir);
		return 5;
	}
	if (argc == 5 && !strcmp(argv[1], "threads"))
		return mode_threads(argv);
	if (argc == 4 && !strcmp(argv[1], "refuse"))
		return mode_refuse(argv);
	if (argc == 3 && !strcmp(argv[1], "spin"))
		return mode_spin(argv);
	if (argc == 4 && !strcmp(argv[1], "hog"))
		return mode_hog(argv);
	if (argc == 3 && !strcmp(argv[1], "pagemap"))
		return mode_pagemap(argv);
	if (argc == 4 && !strcmp(argv[1], "setgroup"))
		return mode_setgroup(argv);
	if (argc >= 3 && !strcmp(argv[1], "groups"))
		return mode_groups(argc, argv);
	if (argc == 2 && !strcmp(argv[1], "sigcount"))
		return mode_sigcount();
	if (argc == 4 && !strcmp(argv[1], "sweep"))
		return mode_sweep(argv);
	if (argc == 2 && !strcmp(argv[1], "deadfd"))
		return mode_deadfd();
	if (argc == 3 && !strcmp(argv[1], "forkwait"))
		return mode_forkwait(argv);
	if (argc == 2 && !strcmp(argv[1], "family"))
		return mode_family();
	if (argc == 3 && !strcmp(argv[1], "waitkids"))
		return mode_waitkids(argv);
	if (argc == 3 && !strcmp(argv[1], "siginfo"))
		return mode_siginfo(argv);
	if (argc == 3 && !strcmp(argv[1], "jobctl"))
		return mode_jobctl(argv);
	if (argc == 4 && !strcmp(argv[1], "coredump"))
		return mode_coredump(argv);
	if (argc == 3 && !strcmp(argv[1], "holdtids"))
		return mode_holdtids(argv);
	if (argc == 4 && !strcmp(argv[1], "latethreads"))
		return mode_latethreads(argv);
	if (argc == 4 && !strcmp(argv[1], "watched"))
		return mode_watched(argv);
	if (argc == 5 && !strcmp(argv[1], "failmig"))
		return mode_failmig(argv);
	if (argc == 4 && !strcmp(argv[1], "keepkids"))
		return mode_keepkids(argv);
	if (argc >= 3 && !strcmp(argv[1], "claim"))
		return mode_claim(argc, argv);
	fprintf(stderr, "usage: see the comment at the top of migprog.c\n");
	return 2;
}
