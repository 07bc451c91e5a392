// SPDX-License-Identifier: GPL-2.0-only
/*
 * Programs of the migration soak test (tests/cluster/test_migrate_soak.py):
 * one binary, a mode per first argument.  Every line a workload writes
 * names its PID and the node it ran on, so the test can check that no
 * line was lost or written twice and that the PID never changed.
 * SIGUSR1 asks a streaming workload to stop cleanly.
 *
 *   soak term LOG FIFO PROG ARG...   a "terminal": opens a pty (37 rows,
 *                 101 columns), runs PROG ARG... as a new session with the
 *                 slave as controlling tty and stdin/stdout/stderr (ECHO
 *                 off, ISIG and NOFLSH on), appends everything read from
 *                 the master to LOG and writes to the master whatever is
 *                 written into FIFO (typed input, ^C included); ends with
 *                 "term exit STATUS" in LOG when PROG has ended
 *   soak tty MS   the session: "c I PID NODE" every MS ms; a typed line
 *                 "line K" gets "ans K PID NODE", "probe K" gets "probe K
 *                 isatty A lflag L ws ROWSxCOLS set S PID NODE" (tty ioctls
 *                 on fd 0), "kid" forks a child in its group ("forked
 *                 KID PID NODE"; the child prints "kid KID NODE", then
 *                 "kid sigint N KID NODE" per SIGINT until SIGTERM),
 *                 "quit" ends it ("bye I PID NODE"); SIGINT prints
 *                 "sigint N PID NODE"
 *   soak threads MIB MS   4 threads checksum their quarter of MIB MiB every
 *                 MS ms, each printing "t K R PID TID NODE ok|BAD"; at
 *                 SIGUSR1 "threads done PID NODE R0 R1 R2 R3 bad B"
 *   soak produce MS       "I PID NODE" every MS ms until SIGUSR1,
 *                 then "produced N PID NODE" on stderr
 *   soak consume  "consumer PID NODE" on stderr, copy stdin to stdout,
 *                 then "consumed PID NODE" on stderr at EOF
 *   soak tcpsrv PORT      accept one connection, copy it to stdout; at its
 *                 end "eof BYTES" or "error ERRNO BYTES" on stderr
 *   soak tcp ADDR PORT MS "I PID NODE" to ADDR:PORT every MS ms until
 *                 SIGUSR1, close, "tcp sent N PID NODE" on stdout
 *   soak held PATH [FIRST:]NODE [TEXT]   migrate() to FIRST if given,
 *                 open PATH, migrate() to NODE with it
 *                 open, write TEXT to it if given, read it from offset 0:
 *                 "held migrate R wrote W errno E read N errno E size S
 *                 data DATA node NODE" (DATA's blanks and newlines as _)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../../abi/ssi_abi.h"

static volatile sig_atomic_t stop, sigints;

static void on_usr1(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_int(int sig)
{
	(void)sig;
	sigints++;
}

static void handle(int sig, void (*fn)(int))
{
	struct sigaction sa = { .sa_handler = fn, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

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

/* Everything or -1 (a signal may cut a blocking write short). */
static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int say(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int say(int fd, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || len >= (int)sizeof(line))
		return -1;
	return write_all(fd, line, len);
}

/* Sleep MS ms unless asked to stop (a signal ends the sleep early). */
static void nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (!stop && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* --- the terminal -------------------------------------------------------- */

static int mode_term(char **argv)
{
	struct winsize ws = { .ws_row = 37, .ws_col = 101 };
	int log, fifo, master, status = -1, done = 0;
	struct pollfd pfd[2];
	char buf[4096];
	pid_t child;

	log = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
	fifo = open(argv[3], O_RDWR | O_NONBLOCK);	/* never sees EOF */
	master = posix_openpt(O_RDWR | O_NOCTTY);
	if (log < 0 || fifo < 0 || master < 0 || grantpt(master) ||
	    unlockpt(master) || ioctl(master, TIOCSWINSZ, &ws))
		return 2;
	child = fork();
	if (child < 0)
		return 2;
	if (child == 0) {
		struct termios t;
		int slave;

		if (setsid() < 0)
			_exit(120);
		slave = open(ptsname(master), O_RDWR);
		if (slave < 0 || ioctl(slave, TIOCSCTTY, 0) ||
		    tcgetattr(slave, &t))
			_exit(121);
		t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL);
		t.c_lflag |= ISIG | ICANON | NOFLSH;
		if (tcsetattr(slave, TCSANOW, &t))
			_exit(122);
		dup2(slave, 0);
		dup2(slave, 1);
		dup2(slave, 2);
		if (slave > 2)
			close(slave);
		close(master);
		close(fifo);
		close(log);
		execv(argv[4], argv + 4);
		_exit(127);
	}
	say(log, "term child %d\n", child);
	pfd[0] = (struct pollfd){ .fd = master, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = fifo, .events = POLLIN };
	while (!done) {
		ssize_t n;

		if (poll(pfd, 2, 100) < 0 && errno != EINTR)
			return 3;
		if (pfd[0].revents & POLLIN) {
			n = read(master, buf, sizeof(buf));
			if (n > 0)
				write_all(log, buf, n);
			else if (n < 0 && errno == EIO)
				pfd[0].fd = -1;	/* every slave fd closed */
		} else if (pfd[0].revents & (POLLHUP | POLLERR)) {
			pfd[0].fd = -1;
		}
		if (pfd[1].revents & POLLIN) {
			n = read(fifo, buf, sizeof(buf));
			if (n > 0 && write_all(master, buf, n))
				say(log, "\nterm write errno %d\n", errno);
		}
		if (waitpid(child, &status, WNOHANG) == child)
			done = 1;
	}
	/* what the child wrote before it ended is still in the master */
	fcntl(master, F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t n = read(master, buf, sizeof(buf));

		if (n <= 0)
			break;
		write_all(log, buf, n);
	}
	say(log, "\nterm exit %d\n", status);
	return 0;
}

/* --- the pty session ------------------------------------------------------ */

/*
 * A child of the tty session, in its process group: "kid PID NODE", then
 * "kid sigint N PID NODE" for each SIGINT until SIGTERM, "kid end PID".
 */
static int kid_loop(void)
{
	int seen = 0;

	sigints = 0;
	handle(SIGTERM, on_usr1);
	say(1, "kid %d %d\n", getpid(), node_of_self());
	while (!stop) {
		nap(20);
		while (seen < sigints)
			say(1, "kid sigint %d %d %d\n", ++seen, getpid(),
			    node_of_self());
	}
	say(1, "kid end %d\n", getpid());
	return 0;
}

static void tty_line(const char *line, int *quit)
{
	pid_t pid = getpid();
	int k, node = node_of_self();

	if (sscanf(line, "line %d", &k) == 1) {
		say(1, "ans %d %d %d\n", k, pid, node);
	} else if (sscanf(line, "probe %d", &k) == 1) {
		struct winsize ws = { 0 };
		struct termios t = { 0 };
		int a = isatty(0), g = tcgetattr(0, &t), w, s;
		/* the lflag the terminal set, read back through the tty */
		int l = !g && !(t.c_lflag & ECHO) && (t.c_lflag & ISIG) &&
			(t.c_lflag & NOFLSH) && (t.c_lflag & ICANON);

		w = ioctl(0, TIOCGWINSZ, &ws);
		s = g ? -1 : tcsetattr(0, TCSANOW, &t);
		say(1, "probe %d isatty %d lflag %d ws %dx%d set %d %d %d\n", k,
		    a, l, w ? -1 : ws.ws_row, w ? -1 : ws.ws_col, s, pid, node);
	} else if (!strcmp(line, "kid")) {
		pid_t kid = fork();

		if (!kid)
			_exit(kid_loop());
		say(1, "forked %d %d %d\n", kid, pid, node);
	} else if (!strcmp(line, "quit")) {
		*quit = 1;
	} else {
		say(1, "what %s\n", line);
	}
}

static int mode_tty(char **argv)
{
	long ms = atol(argv[2]), last = now_ms();
	int i = 0, quit = 0, seen = 0;
	char in[1024];
	size_t have = 0;

	handle(SIGINT, on_int);
	say(1, "tty %d %d\n", getpid(), node_of_self());
	while (!quit) {
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		long t;
		int r = poll(&pfd, 1, (int)ms);

		if (r < 0 && errno != EINTR) {
			say(1, "poll errno %d\n", errno);
			return 3;
		}
		while (seen < sigints)
			say(1, "sigint %d %d %d\n", ++seen, getpid(),
			    node_of_self());
		if (r > 0 && (pfd.revents & POLLIN)) {
			ssize_t n = read(0, in + have, sizeof(in) - 1 - have);
			char *nl;

			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				say(1, "read errno %d\n", errno);
				return 4;
			}
			if (n == 0)
				return 5;	/* hangup */
			have += n > 0 ? n : 0;
			in[have] = 0;
			while ((nl = strchr(in, '\n'))) {
				*nl = 0;
				tty_line(in, &quit);
				have -= nl + 1 - in;
				memmove(in, nl + 1, have + 1);
			}
			if (have == sizeof(in) - 1)
				have = 0;	/* no line that long is typed */
		} else if (r > 0) {
			say(1, "poll revents %x\n", pfd.revents);
			return 6;
		}
		/* another node's clock may be behind: a jump back is "due" */
		t = now_ms();
		if (t - last >= ms || t < last) {
			say(1, "c %d %d %d\n", i++, getpid(), node_of_self());
			last = t;
		}
	}
	say(1, "bye %d %d %d\n", i, getpid(), node_of_self());
	return 0;
}

/* --- threads ---------------------------------------------------------- */

struct part {
	const uint64_t *p;
	size_t n;
	uint64_t want;
	long ms;
	int k, rounds, bad;
	pthread_t t;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void *thread_work(void *arg)
{
	struct part *pt = arg;
	pid_t tid = gettid();

	while (!stop) {
		uint64_t s = 0;
		int ok;

		for (size_t i = 0; i < pt->n; i++)
			s += pt->p[i];
		ok = s == pt->want && gettid() == tid;
		pt->bad += !ok;
		pthread_mutex_lock(&out_lock);
		say(1, "t %d %d %d %d %d %s\n", pt->k, pt->rounds++, getpid(),
		    tid, node_of_self(), ok ? "ok" : "BAD");
		pthread_mutex_unlock(&out_lock);
		nap(pt->ms);
	}
	return NULL;
}

static int mode_threads(char **argv)
{
	size_t len = (size_t)atoi(argv[2]) << 20, q = len / 4 / 8;
	uint64_t *p = malloc(len), x = 42;
	struct part pt[4];
	sigset_t usr1;
	int bad = 0;

	if (!p)
		return 2;
	for (size_t i = 0; i < len / 8; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = x;
	}
	handle(SIGUSR1, on_usr1);
	/* the main thread takes SIGUSR1; workers only watch the flag */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int k = 0; k < 4; k++) {
		pt[k] = (struct part){ .p = p + k * q, .n = q,
				       .ms = atol(argv[3]), .k = k };
		for (size_t i = 0; i < q; i++)
			pt[k].want += pt[k].p[i];
		if (pthread_create(&pt[k].t, NULL, thread_work, &pt[k]))
			return 2;
	}
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	while (!stop)
		pause();
	for (int k = 0; k < 4; k++) {
		pthread_join(pt[k].t, NULL);
		bad += pt[k].bad;
	}
	say(1, "threads done %d %d %d %d %d %d bad %d\n", getpid(),
	    node_of_self(), pt[0].rounds, pt[1].rounds, pt[2].rounds,
	    pt[3].rounds, bad);
	return bad ? 1 : 0;
}

/* --- pipeline and TCP ------------------------------------------------ */

static int mode_produce(char **argv)
{
	long ms = atol(argv[2]);
	int i;

	handle(SIGUSR1, on_usr1);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; !stop; i++) {
		if (say(1, "%d %d %d\n", i, getpid(), node_of_self())) {
			say(2, "produce write %d errno %d\n", i, errno);
			return 4;
		}
		nap(ms);
	}
	say(2, "produced %d %d %d\n", i, getpid(), node_of_self());
	return 0;
}

static int mode_consume(void)
{
	char buf[4096];
	ssize_t n;

	say(2, "consumer %d %d\n", getpid(), node_of_self());
	while ((n = read(0, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			say(2, "consume read errno %d\n", errno);
			return 4;
		}
		if (write_all(1, buf, n)) {
			say(2, "consume write errno %d\n", errno);
			return 5;
		}
	}
	say(2, "consumed %d %d\n", getpid(), node_of_self());
	return 0;
}

static int mode_tcpsrv(char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(atoi(argv[2])) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0), c;
	long long bytes = 0;
	char buf[65536];

	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 1))
		return 2;
	say(2, "listening\n");
	c = accept(s, NULL, NULL);
	if (c < 0)
		return 3;
	for (;;) {
		ssize_t n = read(c, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			say(2, "error %d %lld\n", errno, bytes);
			return 4;
		}
		if (n == 0)
			break;
		if (write_all(1, buf, n))
			return 5;
		bytes += n;
	}
	say(2, "eof %lld\n", bytes);
	return close(c) ? 6 : 0;
}

static int mode_tcp(char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(atoi(argv[3])) };
	long ms = atol(argv[4]);
	int fd, i;

	handle(SIGUSR1, on_usr1);
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return 3;
	say(1, "tcp %d %d\n", getpid(), node_of_self());
	for (i = 0; !stop; i++) {
		if (say(fd, "%d %d %d\n", i, getpid(), node_of_self())) {
			say(1, "tcp write %d errno %d\n", i, errno);
			return 4;
		}
		nap(ms);
	}
	/* close, not shutdown(): socket calls do not reach a moved socket yet */
	if (close(fd)) {
		say(1, "tcp close errno %d\n", errno);
		return 5;
	}
	say(1, "tcp sent %d %d %d\n", i, getpid(), node_of_self());
	return 0;
}

static int mode_held(int argc, char **argv)
{
	const char *text = argc == 5 ? argv[4] : NULL;
	const char *to = strchr(argv[3], ':');
	int fd, we = 0, re = 0;
	ssize_t n, w = 0;
	char buf[256] = "";
	struct stat st = { 0 };
	long r;

	if (to && syscall(__NR_ssi_migrate, atoi(argv[3])))
		return 3;
	fd = open(argv[2], text ? O_RDWR : O_RDONLY);
	if (fd < 0)
		return 2;
	r = syscall(__NR_ssi_migrate, atoi(to ? to + 1 : argv[3]));
	if (text) {
		w = write(fd, text, strlen(text));
		we = w < 0 ? errno : 0;
		lseek(fd, 0, SEEK_SET);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	re = n < 0 ? errno : 0;
	fstat(fd, &st);
	buf[n > 0 ? n : 0] = 0;
	for (char *c = buf; *c; c++)
		if (*c == '\n' || *c == ' ')
			*c = '_';
	printf("held migrate %ld wrote %zd errno %d read %zd errno %d size %lld data %s node %d\n",
	       r, w, we, n, re, (long long)st.st_size, buf, node_of_self());
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "term"))
		return mode_term(argv);
	if (argc == 3 && !strcmp(argv[1], "tty"))
		return mode_tty(argv);
	if (argc == 4 && !strcmp(argv[1], "threads"))
		return mode_threads(argv);
	if (argc == 3 && !strcmp(argv[1], "produce"))
		return mode_produce(argv);
	if (argc == 2 && !strcmp(argv[1], "consume"))
		return mode_consume();
	if (argc == 3 && !strcmp(argv[1], "tcpsrv"))
		return mode_tcpsrv(argv);
	if (argc == 5 && !strcmp(argv[1], "tcp"))
		return mode_tcp(argv);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "held"))
		return mode_held(argc, argv);
	fprintf(stderr, "usage: see the comment at the top of soak.c\n");
	return 64;
}
