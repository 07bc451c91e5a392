// SPDX-License-Identifier: GPL-2.0-only
/*
 * Helper of the migration benchmark (bench/migrate.py), one static binary
 * run in the guests, a mode per first argument:
 *
 *   migbench hold MIB           fill MIB MiB of anonymous memory with a
 *                               pattern (every page touched: that is the
 *                               resident set), print "pid P", then sleep
 *                               in 20 ms steps until killed.  SIGUSR1
 *                               makes it check the pattern and print
 *                               "check ok|BAD node N".
 *   migbench goto PID NODE      write NODE to /proc/PID/goto and wait
 *                               (300 s at most) until it moved: for a
 *                               process running here, by poll() of the
 *                               migration outcomes file, else by reading
 *                               /proc/PID/node every 1 ms; print the
 *                               nanoseconds from before the write to
 *                               then (one clock: the node this runs on)
 *   migbench sink PORT          accept one TCP connection, read it to EOF,
 *                               answer with the byte count (8 bytes)
 *   migbench send HOST PORT FILE...
 *                               send the files' contents over one TCP
 *                               connection, wait for the sink's count;
 *                               print "NS BYTES" (from connect to answer)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned char *mem;
static size_t mem_len;
static unsigned long long mem_sum;
static int check_requested;	/* set by SIGUSR1 */

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int read_int_file(const char *path, long *val)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	*val = strtol(buf, NULL, 10);
	return 0;
}

static unsigned long long pattern(unsigned char *p, size_t len, unsigned long long seed, int write)
{
	unsigned long long x = seed, s = 0, v;

	for (size_t i = 0; i < len; i += 8) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		if (write)
			memcpy(p + i, &x, 8);
		memcpy(&v, p + i, 8);
		s += v ^ x;	/* 0 per word while the pattern is intact */
	}
	return s;
}

static void on_usr1(int sig)
{
	(void)sig;
	__atomic_store_n(&check_requested, 1, __ATOMIC_RELAXED);
}

static int mode_hold(char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	long node = -1;

	mem_len = (size_t)atol(argv[2]) << 20;
	mem = mmap(NULL, mem_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 2;
	mem_sum = pattern(mem, mem_len, (unsigned long long)getpid(), 1);
	sigaction(SIGUSR1, &sa, NULL);
	printf("pid %d\n", getpid());
	fflush(stdout);
	for (;;) {
		sleep_ns(20000000L);
		if (!__atomic_exchange_n(&check_requested, 0, __ATOMIC_RELAXED))
			continue;
		read_int_file("/proc/self/node", &node);
		printf("check %s node %ld\n",
		       pattern(mem, mem_len, (unsigned long long)getpid(), 0) == mem_sum &&
		       mem_sum == 0 ? "ok" : "BAD", node);
		fflush(stdout);
	}
}

#define OUTCOMES "/sys/kernel/ssi/migration/outcomes"

/*
 * The outcomes file (read from its start, which also re-arms its poll):
 * the newest seq of all in *@newest, and the node and errno of @pid's
 * newest outcome after @after (1 if there is one, else 0).
 */
static int read_outcome(int fd, long pid, unsigned long long after,
			unsigned long long *newest, long *node, long *err)
{
	static char buf[16384];
	unsigned long long seq;
	long p, n, e;
	int found = 0;
	ssize_t len;
	char *line;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	if (len < 0)
		return -1;
	buf[len] = 0;
	*newest = after;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (sscanf(line, "%llu %ld %ld %ld", &seq, &p, &n, &e) != 4)
			continue;
		if (seq > *newest)
			*newest = seq;
		if (seq > after && p == pid) {
			*node = n;
			*err = e;
			found = 1;
		}
	}
	return found;
}

/*
 * Wait for the move of @pid, which runs on this node, to end: a poll()
 * of the outcomes file wakes at each outcome, so the wait costs the
 * source's vCPU nothing while the move runs (a 1 ms /proc poll took some
 * 5 % of it under TCG).  Returns 0 once it moved to @want.
 */
static int wait_outcome(int fd, long pid, long want, unsigned long long seq0,
			long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLPRI | POLLERR };
	unsigned long long newest;
	long node = -1, err = 0;

	for (;;) {
		int found = read_outcome(fd, pid, seq0, &newest, &node, &err);

		if (found < 0) {
			perror(OUTCOMES);
			return 1;
		}
		if (found && err) {
			fprintf(stderr, "not moved: errno %ld\n", err);
			return 1;
		}
		if (found && node == want)
			return 0;
		if (now_ns() > deadline) {
			fprintf(stderr, "no outcome after 300 s\n");
			return 1;
		}
		poll(&pfd, 1, 1000);
	}
}

static int mode_goto(char **argv)
{
	char path[64], num[16];
	long want = atol(argv[3]), node = -1, self = -1, err = 0;
	unsigned long long seq0 = 0;
	long long t0, deadline;
	int fd, ofd = -1, len;

	snprintf(path, sizeof(path), "/proc/%s/node", argv[2]);
	/* a process that runs here: its outcome is recorded here */
	if (!read_int_file(path, &node) &&
	    !read_int_file("/proc/self/node", &self) && node == self) {
		ofd = open(OUTCOMES, O_RDONLY);
		if (ofd >= 0 &&
		    read_outcome(ofd, 0, 0, &seq0, &node, &err) < 0) {
			close(ofd);
			ofd = -1;
		}
	}
	snprintf(path, sizeof(path), "/proc/%s/goto", argv[2]);
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	len = snprintf(num, sizeof(num), "%ld\n", want);
	snprintf(path, sizeof(path), "/proc/%s/node", argv[2]);
	t0 = now_ns();
	deadline = t0 + 300 * 1000000000LL;
	if (write(fd, num, len) != len) {
		perror("goto");
		return 1;
	}
	close(fd);
	if (ofd >= 0) {
		if (wait_outcome(ofd, atol(argv[2]), want, seq0, deadline))
			return 1;
		printf("%lld\n", (long long)(now_ns() - t0));
		return 0;
	}
	while (read_int_file(path, &node) || node != want) {
		if (now_ns() > deadline) {
			fprintf(stderr, "still on node %ld after 300 s\n", node);
			return 1;
		}
		/*
		 * Each poll costs this node's vCPU an open and a read under
		 * TCG; at 200 us the poller took CPU from the move it timed.
		 * 1 ms bounds the error to 1 ms.
		 */
		sleep_ns(1000000L);
	}
	printf("%lld\n", (long long)(now_ns() - t0));
	return 0;
}

static int mode_sink(char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(atoi(argv[2])) };
	static char buf[1 << 20];
	unsigned long long total = 0;
	int one = 1, lfd, fd;
	ssize_t n;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 1))
		return 1;
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return 1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += n;
	if (write(fd, &total, sizeof(total)) != sizeof(total))
		return 1;
	close(fd);
	return n < 0;
}

static int mode_send(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(atoi(argv[3])) };
	static char buf[1 << 20];
	unsigned long long sent = 0, got = 0;
	long long t0;
	int fd;

	if (inet_pton(AF_INET, argv[2], &sin.sin_addr) != 1)
		return 2;
	t0 = now_ns();
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		perror("connect");
		return 1;
	}
	for (int i = 4; i < argc; i++) {
		int in = open(argv[i], O_RDONLY);
		ssize_t n;

		if (in < 0) {
			perror(argv[i]);
			return 1;
		}
		while ((n = read(in, buf, sizeof(buf))) > 0) {
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(fd, buf + off, n - off);

				if (w <= 0)
					return 1;
				off += w;
			}
			sent += n;
		}
		close(in);
	}
	shutdown(fd, SHUT_WR);
	if (read(fd, &got, sizeof(got)) != sizeof(got) || got != sent) {
		fprintf(stderr, "sink got %llu of %llu bytes\n",
			(unsigned long long)got, (unsigned long long)sent);
		return 1;
	}
	printf("%lld %llu\n", (long long)(now_ns() - t0), (unsigned long long)sent);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return mode_hold(argv);
	if (argc == 4 && !strcmp(argv[1], "goto"))
		return mode_goto(argv);
	if (argc == 3 && !strcmp(argv[1], "sink"))
		return mode_sink(argv);
	if (argc >= 5 && !strcmp(argv[1], "send"))
		return mode_send(argc, argv);
	fputs("usage: migbench hold MIB | goto PID NODE | sink PORT |\n"
	      "       migbench send HOST PORT FILE...\n", stderr);
	return 2;
}
