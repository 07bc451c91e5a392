// SPDX-License-Identifier: GPL-2.0-only
/*
 * rfile-probe: the programs of tests/cluster/test_rfile.py, built static on
 * the host into build/bin/rfile-probe.
 *
 *   hold DIR        (on the holding node) fds 3/4: a pipe's read/write end,
 *                   5: a pty master (a child copies what it reads to
 *                   DIR/pty.out), 6: its slave, 7: DIR/file O_RDWR, 8:
 *                   DIR/file O_WRONLY|O_APPEND; SIGUSR1 closes 4, SIGUSR2 3.
 *                   Writes DIR/ready, then waits for signals.
 *   The others get fd FD of process PID on node NODE with
 *   SSISYS_RFILE_GETFD first and print "ok ..." or "err ERRNO ...":
 *   getfd NODE PID FD         only that
 *   w NODE PID FD TEXT [S]    write TEXT, then keep the fd S seconds
 *   r NODE PID FD N [ALARM_S [RESTART]]
 *                             one read of up to N bytes; with ALARM_S a
 *                             SIGALRM after that long (SA_RESTART if
 *                             RESTART is 1); prints the time taken (ms),
 *                             then on success the bytes read and how
 *                             many SIGALRMs were handled meanwhile
 *   poll NODE PID FD MS       poll and select for reading, MS ms each
 *                             (-1: no timeout)
 *   epoll NODE PID FD         epoll_wait for reading, no timeout
 *   wbig NODE PID FD SIZE     one write(2) of SIZE pattern bytes (byte i is
 *                             i % 251)
 *   check PATH SIZE           (locally) read SIZE bytes of PATH, checking
 *                             the pattern
 *   tty NODE PID FD           isatty, TCGETS, TIOCSWINSZ/TIOCGWINSZ,
 *                             FIONREAD, TIOCGPTN refused, write "tty-hello\n"
 *   seek NODE PID FD          positioned I/O on a file holding "0123456789"
 *   append NODE PID FD TEXT   write TEXT; the position after it
 *   fstat NODE PID FD         st_mode (octal), st_size, major:minor of st_rdev
 *   setfl NODE PID FD         F_SETFL O_NONBLOCK then a read: EAGAIN
 *   nb NODE PID FD            F_SETFL O_NONBLOCK only
 *   later NODE PID FD S       sleep S seconds, then pread one byte at 0
 *   seq NODE PID FD           commands from stdin, one a line, one answer
 *                             line each: "w TEXT" write, "r N" read,
 *                             "pread N OFF", "cur" lseek(0, SEEK_CUR),
 *                             "set OFF" SEEK_SET, "end OFF" SEEK_END,
 *                             "lk T START LEN" fcntl F_SETLK (T: r, w,
 *                             u), "lkw T START LEN" F_SETLKW, "getlk T
 *                             START LEN" F_GETLK ("ok T START LEN PID"),
 *                             "flock sh|ex|un [nb]", "close"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define NR_SSISYS		551
#define SSISYS_RFILE_GETFD	32

struct ssi_rfile_getfd {
	uint32_t node;
	int32_t pid;
	int32_t fd;
	uint32_t flags;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int getfd(char **argv)
{
	struct ssi_rfile_getfd g = {
		.node = strtoul(argv[0], NULL, 0),
		.pid = strtol(argv[1], NULL, 0),
		.fd = strtol(argv[2], NULL, 0),
	};
	long fd = syscall(NR_SSISYS, SSISYS_RFILE_GETFD, &g, sizeof(g));

	if (fd < 0) {
		printf("err %d getfd\n", errno);
		exit(0);
	}
	return fd;
}

static void on_usr(int sig)
{
	close(sig == SIGUSR1 ? 4 : 3);
}

static volatile sig_atomic_t alarms_handled;

static void on_alarm(int sig)
{
	(void)sig;
	alarms_handled++;
}

/* Put @fd at @target (closing @fd if it was elsewhere). */
static int move_fd(int fd, int target)
{
	if (fd < 0)
		return -1;
	if (fd == target)
		return 0;
	if (dup2(fd, target) < 0)
		return -1;
	close(fd);
	return 0;
}

static int hold(const char *dir)
{
	char path[4096];
	int p[2], m, fd;
	char buf[256];
	ssize_t n;

	/* 0-2 are open: new fds come at 3 and up, below the targets used. */
	if (pipe(p) || p[0] != 3 || p[1] != 4)
		return 1;
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || move_fd(m, 5))
		return 1;
	if (move_fd(open(ptsname(5), O_RDWR | O_NOCTTY), 6))
		return 1;
	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || write(fd, "0123456789", 10) != 10 || move_fd(fd, 7))
		return 1;
	if (move_fd(open(path, O_WRONLY | O_APPEND), 8))
		return 1;
	if (fork() == 0) {
		/* The pty reader: what the slave gets written, to pty.out. */
		close(3);
		close(4);
		close(6);
		close(7);
		close(8);
		snprintf(path, sizeof(path), "%s/pty.out", dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		while ((n = read(5, buf, sizeof(buf))) > 0)
			if (write(fd, buf, n) != n)
				break;
		_exit(0);
	}
	signal(SIGUSR1, on_usr);
	signal(SIGUSR2, on_usr);
	snprintf(path, sizeof(path), "%s/ready", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	close(fd);
	for (;;)
		pause();
}

static int do_read(int fd, int argc, char **argv)
{
	size_t count = strtoul(argv[0], NULL, 0);
	char *buf = calloc(1, count + 1);
	struct sigaction sa = { .sa_handler = on_alarm };
	double t0;
	ssize_t n;

	if (argc > 1) {
		sa.sa_flags = (argc > 2 && atoi(argv[2])) ? SA_RESTART : 0;
		sigaction(SIGALRM, &sa, NULL);
		alarm(atoi(argv[1]));
	}
	t0 = now_ms();
	n = read(fd, buf, count);
	if (n < 0)
		printf("err %d %.0f\n", errno, now_ms() - t0);
	else
		printf("ok %zd %.0f %s %d\n", n, now_ms() - t0, buf,
		       (int)alarms_handled);
	return 0;
}

static int do_poll(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = ms % 1000 * 1000 };
	double t0 = now_ms(), t1;
	fd_set rd;
	int r, s;

	r = poll(&pfd, 1, ms);
	t1 = now_ms();
	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	s = select(fd + 1, &rd, NULL, NULL, ms < 0 ? NULL : &tv);
	printf("ok poll=%d revents=%#x ms=%.0f select=%d\n", r, pfd.revents,
	       t1 - t0, s > 0 && FD_ISSET(fd, &rd));
	return 0;
}

static int do_epoll(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN }, got = { 0 };
	int ep = epoll_create1(0), n;
	double t0 = now_ms();

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		printf("err %d epoll\n", errno);
		return 0;
	}
	n = epoll_wait(ep, &got, 1, -1);
	printf("ok n=%d events=%#x ms=%.0f\n", n, got.events, now_ms() - t0);
	return 0;
}

static int do_wbig(int fd, size_t size)
{
	char *buf = malloc(size);
	double t0 = now_ms();
	ssize_t n;
	size_t i;

	for (i = 0; i < size; i++)
		buf[i] = i % 251;
	n = write(fd, buf, size);
	if (n < 0)
		printf("err %d\n", errno);
	else
		printf("ok %zd %.0f\n", n, now_ms() - t0);
	return 0;
}

static int do_check(const char *path, size_t size)
{
	int fd = open(path, O_RDONLY);
	unsigned char buf[4096];
	size_t at = 0;
	ssize_t n, i;

	if (fd < 0) {
		printf("err %d open\n", errno);
		return 0;
	}
	while (at < size) {
		n = read(fd, buf, size - at < sizeof(buf) ? size - at : sizeof(buf));
		if (n <= 0) {
			printf("err %d short %zu\n", n ? errno : 0, at);
			return 0;
		}
		for (i = 0; i < n; i++, at++) {
			if (buf[i] != at % 251) {
				printf("bad %zu\n", at);
				return 0;
			}
		}
	}
	printf("ok %zu\n", at);
	return 0;
}

static int do_tty(int fd)
{
	struct winsize ws = { .ws_row = 33, .ws_col = 77 }, got = { 0 };
	struct termios t;
	unsigned int ptn;
	int nread = -1;

	if (!isatty(fd)) {
		printf("err %d isatty\n", errno);
		return 0;
	}
	if (tcgetattr(fd, &t)) {
		printf("err %d tcgetattr\n", errno);
		return 0;
	}
	t.c_cc[VMIN] = 1;
	if (tcsetattr(fd, TCSANOW, &t)) {
		printf("err %d tcsetattr\n", errno);
		return 0;
	}
	if (ioctl(fd, TIOCSWINSZ, &ws) || ioctl(fd, TIOCGWINSZ, &got)) {
		printf("err %d winsz\n", errno);
		return 0;
	}
	if (ioctl(fd, FIONREAD, &nread)) {
		printf("err %d fionread\n", errno);
		return 0;
	}
	if (ioctl(fd, TIOCSTI, "x") == 0 || errno != ENOTTY) {
		printf("err %d tiocsti-not-refused\n", errno);
		return 0;
	}
	if (ioctl(fd, TIOCGPTN, &ptn) == 0 || errno != ENOTTY) {
		printf("err %d tiocgptn-on-slave\n", errno);
		return 0;
	}
	if (write(fd, "tty-hello\n", 10) != 10) {
		printf("err %d write\n", errno);
		return 0;
	}
	printf("ok lflag_icanon=%d rows=%d cols=%d fionread=%d\n",
	       !!(t.c_lflag & ICANON), got.ws_row, got.ws_col, nread);
	return 0;
}

static int do_seek(int fd)
{
	char buf[16] = { 0 }, all[16] = { 0 };
	off_t end, cur;
	ssize_t n;

	end = lseek(fd, 0, SEEK_END);
	if (pread(fd, buf, 3, 2) != 3 || pwrite(fd, "AB", 2, 4) != 2) {
		printf("err %d pio\n", errno);
		return 0;
	}
	cur = lseek(fd, 1, SEEK_SET);
	n = read(fd, buf + 4, 3);
	if (n != 3 || write(fd, "Z", 1) != 1) {
		printf("err %d rw\n", errno);
		return 0;
	}
	cur = lseek(fd, 0, SEEK_CUR);
	if (pread(fd, all, 10, 0) != 10) {
		printf("err %d pread-all\n", errno);
		return 0;
	}
	/* The pipe-like cases: a seek beyond what is allowed fails as locally. */
	if (lseek(fd, -100, SEEK_SET) != -1 || errno != EINVAL) {
		printf("err %d negative-seek\n", errno);
		return 0;
	}
	printf("ok end=%lld pread=%.3s read=%.3s cur=%lld all=%s\n",
	       (long long)end, buf, buf + 4, (long long)cur, all);
	return 0;
}

static short lock_type(char t)
{
	return t == 'r' ? F_RDLCK : t == 'w' ? F_WRLCK : F_UNLCK;
}

/* "lk", "lkw", "getlk" of "seq": -1 (errno) on failure. */
static int seq_lock(int fd, const char *line)
{
	struct flock fl = { .l_whence = SEEK_SET };
	char cmd[8], t;
	long long a, b;

	if (sscanf(line, "%7s %c %lld %lld", cmd, &t, &a, &b) != 4) {
		errno = EINVAL;
		return -1;
	}
	fl.l_type = lock_type(t);
	fl.l_start = a;
	fl.l_len = b;
	if (!strcmp(cmd, "getlk")) {
		if (fcntl(fd, F_GETLK, &fl))
			return -1;
		printf("ok %c %lld %lld %d\n", fl.l_type == F_RDLCK ? 'r' :
		       fl.l_type == F_WRLCK ? 'w' : 'u', (long long)fl.l_start,
		       (long long)fl.l_len, fl.l_pid);
		return 0;
	}
	if (fcntl(fd, strcmp(cmd, "lkw") ? F_SETLK : F_SETLKW, &fl))
		return -1;
	printf("ok\n");
	return 0;
}

/* "flock" of "seq". */
static int seq_flock(int fd, const char *line)
{
	int op = strstr(line, " sh") ? LOCK_SH : strstr(line, " ex") ?
		 LOCK_EX : LOCK_UN;

	if (strstr(line, " nb"))
		op |= LOCK_NB;
	if (flock(fd, op))
		return -1;
	printf("ok\n");
	return 0;
}

/* "seq": the commands of stdin on @fd until EOF (see the top). */
static int do_seq(int fd)
{
	char line[256], buf[256];
	long long a, b;
	off_t off;
	ssize_t n;

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		errno = 0;
		if (!strncmp(line, "lk", 2) || !strncmp(line, "getlk ", 6)) {
			n = seq_lock(fd, line);
		} else if (!strncmp(line, "flock", 5)) {
			n = seq_flock(fd, line);
		} else if (!strcmp(line, "close")) {
			n = close(fd);
			if (!n)
				printf("ok\n");
		} else if (!strncmp(line, "w ", 2)) {
			n = write(fd, line + 2, strlen(line + 2));
			if (n >= 0)
				printf("ok %zd\n", n);
		} else if (sscanf(line, "r %lld", &a) == 1) {
			n = read(fd, buf, a < 255 ? a : 255);
			if (n >= 0)
				printf("ok %zd %.*s\n", n, (int)n, buf);
		} else if (sscanf(line, "pread %lld %lld", &a, &b) == 2) {
			n = pread(fd, buf, a < 255 ? a : 255, b);
			if (n >= 0)
				printf("ok %zd %.*s\n", n, (int)n, buf);
		} else {
			n = 0;
			if (!strcmp(line, "cur"))
				off = lseek(fd, 0, SEEK_CUR);
			else if (sscanf(line, "set %lld", &a) == 1)
				off = lseek(fd, a, SEEK_SET);
			else if (sscanf(line, "end %lld", &a) == 1)
				off = lseek(fd, a, SEEK_END);
			else
				off = -1;
			if (off >= 0)
				printf("ok %lld\n", (long long)off);
			else
				n = -1;
		}
		if (n < 0)
			printf("err %d %s\n", errno, line);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int fd;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc < 2)
		return 2;
	cmd = argv[1];
	if (!strcmp(cmd, "hold") && argc == 3)
		return hold(argv[2]);
	if (!strcmp(cmd, "check") && argc == 4)
		return do_check(argv[2], strtoul(argv[3], NULL, 0));
	if (argc < 5)
		return 2;
	fd = getfd(argv + 2);
	if (!strcmp(cmd, "getfd")) {
		printf("ok %d\n", fd);
	} else if (!strcmp(cmd, "w") && argc >= 6) {
		ssize_t n = write(fd, argv[5], strlen(argv[5]));

		if (n < 0)
			printf("err %d\n", errno);
		else
			printf("ok %zd\n", n);
		if (argc > 6)
			sleep(atoi(argv[6]));
	} else if (!strcmp(cmd, "r") && argc >= 6) {
		return do_read(fd, argc - 5, argv + 5);
	} else if (!strcmp(cmd, "poll") && argc == 6) {
		return do_poll(fd, atoi(argv[5]));
	} else if (!strcmp(cmd, "epoll")) {
		return do_epoll(fd);
	} else if (!strcmp(cmd, "wbig") && argc == 6) {
		return do_wbig(fd, strtoul(argv[5], NULL, 0));
	} else if (!strcmp(cmd, "tty")) {
		return do_tty(fd);
	} else if (!strcmp(cmd, "seek")) {
		return do_seek(fd);
	} else if (!strcmp(cmd, "append") && argc == 6) {
		ssize_t n = write(fd, argv[5], strlen(argv[5]));

		printf("ok %zd %lld\n", n, (long long)lseek(fd, 0, SEEK_CUR));
	} else if (!strcmp(cmd, "fstat")) {
		struct stat st;

		if (fstat(fd, &st))
			printf("err %d\n", errno);
		else
			printf("ok %o %lld %u:%u\n", st.st_mode,
			       (long long)st.st_size, major(st.st_rdev),
			       minor(st.st_rdev));
	} else if (!strcmp(cmd, "nb")) {
		if (fcntl(fd, F_SETFL, O_NONBLOCK))
			printf("err %d\n", errno);
		else
			printf("ok\n");
	} else if (!strcmp(cmd, "later") && argc == 6) {
		char c;

		sleep(atoi(argv[5]));
		if (pread(fd, &c, 1, 0) != 1)
			printf("err %d\n", errno);
		else
			printf("ok %c\n", c);
	} else if (!strcmp(cmd, "seq")) {
		return do_seq(fd);
	} else if (!strcmp(cmd, "setfl")) {
		char c;

		if (fcntl(fd, F_SETFL, O_NONBLOCK) || read(fd, &c, 1) >= 0)
			printf("err %d\n", errno);
		else
			printf("ok %d\n", errno);
	} else {
		return 2;
	}
	return 0;
}
