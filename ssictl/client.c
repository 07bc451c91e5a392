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
 * It starts on first use, like gpg-agent: when no daemon answers, a root
 * client finding DAEMON_DIR/autostart (root's, not writable by others; the
 * node's init writes it) launches one under DAEMON_DIR/autostart.lock, with
 * the environment that file lists (one NAME=VALUE per line), never the
 * caller's, and then waits for it like any client. Starting it at boot
 * instead cost every node seconds of CPU while the cluster formed, even on
 * nodes where nobody runs ssictl.
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
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DAEMON_DIR "/run/ssictl"	/* $SSICTL_DAEMON_DIR overrides */
#define PROTOCOL "ssictl/1"
#define MAX_REQUEST (1u << 20)
#define START_WAIT_MS 60000
#define AUTOSTART_ENV_MAX 4096
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int daemon_fd = -1;
static char daemon_dir[PATH_MAX], daemon_socket[108], daemon_starting_file[PATH_MAX];

/* This binary's directory (build/guest-bin in a checkout), or exit. */
static void self_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	char *slash;

	if (n < 0) {
		perror("ssictl: /proc/self/exe");
		exit(1);
	}
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash)
		*slash = '\0';
}

static void exec_python_cli(char **argv)
{
	char self[PATH_MAX], cli[PATH_MAX + 32];
	const char *override = getenv("SSICTL_PYTHON_CLI");

	if (override && *override) {
		snprintf(cli, sizeof(cli), "%s", override);
	} else {
		self_dir(self, sizeof(self));
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

/* The environment lines of an autostart file, as an envp in @buf; NULL if unusable. */
static char **autostart_env(int fd, char *buf, size_t size, char **envp, size_t max)
{
	struct stat st;
	size_t len = 0, n = 0;
	ssize_t got;
	char *line;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022))
		return NULL;
	while (len < size - 1 && (got = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)got;
	buf[len] = '\0';
	for (line = strtok(buf, "\n"); line && n < max - 1; line = strtok(NULL, "\n"))
		if (strchr(line, '=') && line[0] != '=')
			envp[n++] = line;
	envp[n] = NULL;
	return envp;
}

/*
 * Launch the daemon (root only, when DAEMON_DIR/autostart allows it) unless
 * another client just did; on return its pid is in the "starting" file or it
 * listens already. Double fork: the daemon is init's child, not ours.
 */
static void autostart_daemon(void)
{
	char path[PATH_MAX + 32], python[PATH_MAX + 32], self[PATH_MAX], tmp[PATH_MAX + 32];
	char env_buf[AUTOSTART_ENV_MAX], *envp[64], **env, pid_text[32];
	int conf, lock, pipefd[2], fd, status;
	pid_t child, daemon_pid = 0;

	if (geteuid() != 0)
		return;
	snprintf(path, sizeof(path), "%s/autostart", daemon_dir);
	conf = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (conf < 0)
		return;
	env = autostart_env(conf, env_buf, sizeof(env_buf), envp, ARRAY_SIZE(envp));
	close(conf);
	if (!env) {
		fprintf(stderr, "ssictl: ignoring %s: not a root-owned file others cannot write\n",
			path);
		return;
	}
	snprintf(path, sizeof(path), "%s/autostart.lock", daemon_dir);
	lock = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0 || flock(lock, LOCK_EX)) {
		if (lock >= 0)
			close(lock);
		return;
	}
	fd = try_connect();
	if (fd >= 0 || daemon_starting()) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	self_dir(self, sizeof(self));
	snprintf(python, sizeof(python), "%s/../../.venv/bin/python", self);
	if (pipe2(pipefd, O_CLOEXEC))
		goto out;
	child = fork();
	if (child == 0) {
		char *args[] = { python, "-m", "ssictl.daemon", "--dir", daemon_dir, NULL };

		setsid();
		daemon_pid = fork();
		if (daemon_pid != 0) {
			if (write(pipefd[1], &daemon_pid, sizeof(daemon_pid)) < 0)
				_exit(1);
			_exit(0);
		}
		snprintf(path, sizeof(path), "%s/daemon.log", daemon_dir);
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
		if (fd < 0 || chdir("/") || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(1);
		fd = open("/dev/null", O_RDONLY);
		if (fd < 0 || dup2(fd, 0) < 0)
			_exit(1);
		umask(022);
		execve(python, args, env);
		fprintf(stderr, "ssictl: cannot run %s: %s\n", python, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	if (child > 0) {
		if (read(pipefd[0], &daemon_pid, sizeof(daemon_pid)) != sizeof(daemon_pid))
			daemon_pid = 0;
		waitpid(child, &status, 0);
	}
	close(pipefd[0]);
	if (daemon_pid > 0) {
		snprintf(tmp, sizeof(tmp), "%s/starting.%d", daemon_dir, (int)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd >= 0) {
			int len = snprintf(pid_text, sizeof(pid_text), "%d\n", (int)daemon_pid);

			if (write(fd, pid_text, (size_t)len) != len || close(fd) ||
			    rename(tmp, daemon_starting_file))
				unlink(tmp);
		}
	}
out:
	close(lock);	/* releases the lock */
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
	snprintf(daemon_dir, sizeof(daemon_dir), "%s", dir);
	snprintf(daemon_starting_file, sizeof(daemon_starting_file), "%s/starting", dir);
	fd = try_connect();
	if (fd >= 0)
		return fd;
	if (!daemon_starting())
		autostart_daemon();
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
