// SPDX-License-Identifier: GPL-2.0-only
/*
 * ssictl thin client: runs an ssictl command in the node's resident ssictl
 * daemon (ssictl/daemon.py), which has Python, typer and the ABI loaded
 * already and forks a worker per command. A fresh Python takes seconds to
 * import the CLI in a TCG guest; this answers at the cost of one fork there.
 *
 * Protocol on the daemon's unix stream socket (see daemon.py):
 *   client -> daemon  one message: __le32 length, then NUL-terminated strings
 *                     "ssictl/1", "umask=<octal>", environment entries, "",
 *                     arguments; with SCM_RIGHTS: stdin, stdout, stderr, cwd
 *   client -> daemon  later, one byte per signal the client received
 *                     (INT, TERM, HUP, QUIT), which the worker then gets
 *   daemon -> client  'S' when the worker is started, then its __le32 exit
 *                     code when it has exited; or 'X' and an __le32 exit code
 *                     when the daemon refuses to run it (message on stderr)
 * A connection the daemon closes before 'S' ran nothing (overloaded, a bad
 * request, the daemon stopping): the client then runs the Python CLI itself.
 * The daemon runs the worker with this process's credentials (SO_PEERCRED,
 * SO_PEERGROUPS), so the command can do no more than if it ran here.
 *
 * The daemon listens on DAEMON_DIR/ssictl.sock; while it starts, its pid is
 * in DAEMON_DIR/starting (written by whoever launched it) and clients wait.
 *
 * With no daemon (none started, SSICTL_NO_DAEMON set, or it died) the client
 * execs the full Python CLI: $SSICTL_PYTHON_CLI, else ../../.venv/bin/ssictl
 * relative to this binary (build/guest-bin/ssictl in a checkout).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DAEMON_DIR "/run/ssictl"	/* $SSICTL_DAEMON_DIR overrides */
#define PROTOCOL "ssictl/1"
#define MAX_REQUEST (1u << 20)
#define START_WAIT_MS 60000
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int daemon_fd = -1;
static char daemon_socket[108], daemon_starting_file[PATH_MAX];

static void exec_python_cli(char **argv)
{
	char self[PATH_MAX], cli[PATH_MAX + 32];
	const char *override = getenv("SSICTL_PYTHON_CLI");
	ssize_t n;
	char *slash;

	if (override && *override) {
		snprintf(cli, sizeof(cli), "%s", override);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0) {
			perror("ssictl: /proc/self/exe");
			exit(1);
		}
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash)
			*slash = '\0';
		snprintf(cli, sizeof(cli), "%s/../../.venv/bin/ssictl", self);
	}
	argv[0] = cli;
	execv(cli, argv);
	fprintf(stderr, "ssictl: no daemon, and cannot run %s: %s\n", cli,
		strerror(errno));
	exit(127);
}

static int try_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memcpy(sa.sun_path, daemon_socket, sizeof(sa.sun_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	close(fd);
	return -1;
}

/* The daemon is starting when its launcher left its pid in "starting" and it lives. */
static int daemon_starting(void)
{
	char buf[32] = "";
	int fd = open(daemon_starting_file, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	long pid;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int connect_daemon(void)
{
	struct timespec step = { 0, 20 * 1000 * 1000 };
	int waited = 0, fd;

	const char *dir = getenv("SSICTL_DAEMON_DIR");

	if (getenv("SSICTL_NO_DAEMON"))
		return -1;
	if (!dir || !*dir)
		dir = DAEMON_DIR;
	if ((size_t)snprintf(daemon_socket, sizeof(daemon_socket), "%s/ssictl.sock", dir) >=
	    sizeof(daemon_socket)) {
		fprintf(stderr, "ssictl: daemon directory %s: path too long\n", dir);
		return -1;
	}
	snprintf(daemon_starting_file, sizeof(daemon_starting_file), "%s/starting", dir);
	for (;;) {
		fd = try_connect();
		if (fd >= 0 || !daemon_starting() || waited >= START_WAIT_MS)
			return fd;
		nanosleep(&step, NULL);
		waited += 20;
	}
}

static int append(char *buf, size_t *len, const char *s)
{
	size_t n = strlen(s) + 1;

	if (*len + n > MAX_REQUEST)
		return -1;
	memcpy(buf + *len, s, n);
	*len += n;
	return 0;
}

static int send_request(int fd, char **argv)
{
	char *buf = malloc(MAX_REQUEST);
	char umask_field[32];
	size_t len = 4;
	uint32_t le;
	mode_t mask = umask(0);
	int fds[4] = { 0, 1, 2, -1 }, i, rc = -1;
	char cmsgbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov;
	struct msghdr msg = { 0 };
	struct cmsghdr *cmsg;
	ssize_t sent;
	size_t off;

	umask(mask);
	if (!buf)
		return -1;
	snprintf(umask_field, sizeof(umask_field), "umask=%o", (unsigned int)mask);
	if (append(buf, &len, PROTOCOL) || append(buf, &len, umask_field))
		goto out;
	for (i = 0; environ[i]; i++)
		if (append(buf, &len, environ[i]))
			goto out;
	if (append(buf, &len, ""))
		goto out;
	for (i = 1; argv[i]; i++)
		if (append(buf, &len, argv[i]))
			goto out;
	le = htole32((uint32_t)(len - 4));
	memcpy(buf, &le, 4);

	fds[3] = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fds[3] < 0)
		fds[3] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	iov.iov_base = buf;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cmsgbuf;
	msg.msg_controllen = sizeof(cmsgbuf);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
	sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (sent < 0)
		goto out;
	for (off = (size_t)sent; off < len; off += (size_t)sent) {
		sent = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (sent < 0)
			goto out;
	}
	rc = 0;
out:
	if (fds[3] >= 0)
		close(fds[3]);
	free(buf);
	return rc;
}

/* Reads exactly @len bytes unless EOF or an error comes first; bytes read. */
static size_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void forward_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	/* If the daemon is gone, the read in main() sees it. */
	(void)!write(daemon_fd, &b, 1);
	errno = saved;
}

int main(int argc, char **argv)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa = { .sa_handler = forward_signal };
	unsigned char status[4];
	char reply = 0;
	unsigned int i;

	(void)argc;
	daemon_fd = connect_daemon();
	if (daemon_fd < 0)
		exec_python_cli(argv);
	if (send_request(daemon_fd, argv) < 0 || read_full(daemon_fd, &reply, 1) != 1) {
		close(daemon_fd);	/* nothing ran */
		exec_python_cli(argv);
	}
	if (reply == 'S')
		for (i = 0; i < ARRAY_SIZE(forwarded); i++)
			sigaction(forwarded[i], &sa, NULL);
	else if (reply != 'X') {
		fprintf(stderr, "ssictl: unexpected reply from the daemon (%s)\n", daemon_socket);
		return 1;
	}
	if (read_full(daemon_fd, status, sizeof(status)) != sizeof(status)) {
		fprintf(stderr, "ssictl: the daemon (%s) went away during the command\n",
			daemon_socket);
		return 1;
	}
	return (int)(status[0] | status[1] << 8 | status[2] << 16 | (uint32_t)status[3] << 24);
}
