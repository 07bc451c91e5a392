/*
 * ssi-hub: the private L2 "switch" of an ssikit QEMU cluster.
 *
 * usage: ssi-hub DIR NODES
 *
 * Every node's QEMU runs `-netdev dgram` with its local end bound at
 * DIR/nodeN.sock and its remote end at DIR/hub.sock.  The hub receives frames
 * on hub.sock (recvmmsg batches), learns the sender from the source path,
 * and forwards:
 *   - unicast to 52:54:00:00:00:NN goes to node NN only,
 *   - broadcast, multicast and unknown unicast go to every other node,
 *   - nothing crosses a cut link.
 * Frames for one node leave through a socket connected to that node's path
 * (sendmmsg), so poll(POLLOUT) gives real back-pressure; a short per-node
 * queue absorbs bursts and overflow is dropped like a switch would.
 *
 * Control: text datagrams on DIR/hubctl.sock, one command per datagram, the
 * reply goes back to the sender's address:
 *   cut A B | uncut A B | partition 1,2 3[,4...] | heal | stats | ping
 * Replies start with "ok" or "err".  `partition` first heals, then cuts every
 * pair of nodes that sit in different groups; unlisted nodes keep their links.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXN 63
#define BATCH 64
#define FRAME_MAX 65536
#define QLEN 512

struct frame {
	uint32_t len;
	unsigned char *data;
};

struct port {
	int fd;                 /* connected to DIR/nodeN.sock, -1 if not */
	struct frame q[QLEN];   /* frames waiting for POLLOUT */
	unsigned head, count;
	uint64_t rx, tx, drop;  /* rx: frames from node, tx: to node, drop: for node, lost */
};

static struct port ports[MAXN + 1];
static unsigned char cut[MAXN + 1][MAXN + 1];
static int nnodes;
static const char *dir;
static char hub_path[108], ctl_path[108];
static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int make_path(char *out, const char *name)
{
	int n = snprintf(out, 108, "%s/%s", dir, name);
	return (n < 0 || n >= 108) ? -1 : 0;
}

static int bind_dgram(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void port_disconnect(struct port *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	while (p->count) {
		free(p->q[p->head].data);
		p->head = (p->head + 1) % QLEN;
		p->count--;
		p->drop++;
	}
	p->head = 0;
}

static int port_connect(int n)
{
	struct port *p = &ports[n];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[32];
	int sz = 4 << 20;

	if (p->fd >= 0)
		return 0;
	snprintf(name, sizeof(name), "node%d.sock", n);
	if (make_path(sa.sun_path, name) < 0)
		return -1;
	p->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		return -1;
	setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(p->fd);
		p->fd = -1;
		return -1;
	}
	return 0;
}

static int is_gone(int err)
{
	return err == ECONNREFUSED || err == ENOENT || err == ENOTCONN || err == EPIPE;
}

static void enqueue(struct port *p, const unsigned char *buf, uint32_t len)
{
	struct frame *f;

	if (p->count == QLEN) {
		p->drop++;
		return;
	}
	f = &p->q[(p->head + p->count) % QLEN];
	f->data = malloc(len);
	if (!f->data) {
		p->drop++;
		return;
	}
	memcpy(f->data, buf, len);
	f->len = len;
	p->count++;
}

/* Send what is queued for node n; returns with the queue empty or EAGAIN. */
static void flush_queue(int n)
{
	struct port *p = &ports[n];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	unsigned i, k;
	int r;

	while (p->count && p->fd >= 0) {
		k = p->count < BATCH ? p->count : BATCH;
		for (i = 0; i < k; i++) {
			struct frame *f = &p->q[(p->head + i) % QLEN];
			iov[i].iov_base = f->data;
			iov[i].iov_len = f->len;
			memset(&m[i], 0, sizeof(m[i]));
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(p->fd, m, k, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			port_disconnect(p); /* drops the queue */
			return;
		}
		for (i = 0; i < (unsigned)r; i++) {
			free(p->q[p->head].data);
			p->head = (p->head + 1) % QLEN;
			p->count--;
			p->tx++;
		}
	}
}

/* Per-batch outgoing lists: for each node, indexes into the receive batch. */
static struct mmsghdr out_m[MAXN + 1][BATCH];
static struct iovec out_iov[MAXN + 1][BATCH];
static unsigned out_n[MAXN + 1];

static void out_add(int t, unsigned char *buf, uint32_t len)
{
	unsigned i = out_n[t]++;
	out_iov[t][i].iov_base = buf;
	out_iov[t][i].iov_len = len;
	memset(&out_m[t][i], 0, sizeof(out_m[t][i]));
	out_m[t][i].msg_hdr.msg_iov = &out_iov[t][i];
	out_m[t][i].msg_hdr.msg_iovlen = 1;
}

static void out_flush(int t)
{
	struct port *p = &ports[t];
	unsigned done = 0, i;
	int r;

	if (!out_n[t])
		return;
	if (p->fd < 0 && port_connect(t) < 0) {
		p->drop += out_n[t];
		out_n[t] = 0;
		return;
	}
	if (p->count)
		flush_queue(t);
	while (p->count == 0 && done < out_n[t] && p->fd >= 0) {
		r = sendmmsg(p->fd, &out_m[t][done], out_n[t] - done, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (is_gone(errno)) {
				/* node restarted (new socket) or gone: try once more */
				port_disconnect(p);
				if (port_connect(t) == 0)
					continue;
			}
			break;
		}
		p->tx += (unsigned)r;
		done += (unsigned)r;
	}
	for (i = done; i < out_n[t]; i++) {
		if (p->fd >= 0)
			enqueue(p, out_iov[t][i].iov_base, (uint32_t)out_iov[t][i].iov_len);
		else
			p->drop++;
	}
	out_n[t] = 0;
}

static int node_of_path(const struct sockaddr_un *sa, socklen_t len)
{
	const char *base;
	char *end;
	long n;

	if (len <= sizeof(sa_family_t) || sa->sun_path[0] == '\0')
		return -1;
	base = strrchr(sa->sun_path, '/');
	base = base ? base + 1 : sa->sun_path;
	if (strncmp(base, "node", 4) != 0)
		return -1;
	n = strtol(base + 4, &end, 10);
	if (strcmp(end, ".sock") != 0 || n < 1 || n > nnodes)
		return -1;
	return (int)n;
}

static void forward(int src, unsigned char *buf, uint32_t len)
{
	static const unsigned char prefix[5] = { 0x52, 0x54, 0x00, 0x00, 0x00 };
	int t;

	ports[src].rx++;
	if (len < 14)
		return;
	if (!(buf[0] & 1) && memcmp(buf, prefix, 5) == 0 && buf[5] >= 1 && buf[5] <= nnodes) {
		t = buf[5];
		if (t == src)
			return;
		if (cut[src][t])
			ports[t].drop++;
		else
			out_add(t, buf, len);
		return;
	}
	for (t = 1; t <= nnodes; t++) {
		if (t == src)
			continue;
		if (cut[src][t])
			ports[t].drop++;
		else
			out_add(t, buf, len);
	}
}

static void pump(int hubfd)
{
	static unsigned char bufs[BATCH][FRAME_MAX];
	static struct sockaddr_un names[BATCH];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	int r, i, t;

	for (;;) {
		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = FRAME_MAX;
			memset(&m[i], 0, sizeof(m[i]));
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
			m[i].msg_hdr.msg_name = &names[i];
			m[i].msg_hdr.msg_namelen = sizeof(names[i]);
		}
		r = recvmmsg(hubfd, m, BATCH, MSG_DONTWAIT, NULL);
		if (r <= 0)
			return;
		for (i = 0; i < r; i++) {
			int src = node_of_path(&names[i], m[i].msg_hdr.msg_namelen);
			if (src > 0)
				forward(src, bufs[i], m[i].msg_len);
		}
		for (t = 1; t <= nnodes; t++)
			out_flush(t);
		if (r < BATCH)
			return;
	}
}

/* ---- control ---- */

static int parse_node(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || n < 1 || n > nnodes)
		return -1;
	return (int)n;
}

static void set_cut(int a, int b, unsigned char v)
{
	cut[a][b] = v;
	cut[b][a] = v;
}

static int do_partition(char *args, char *err, size_t errlen)
{
	int group[MAXN + 1] = { 0 };
	int g = 0, a, b;
	char *save = NULL, *tok;

	for (tok = strtok_r(args, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *s2 = NULL, *item;
		g++;
		for (item = strtok_r(tok, ",", &s2); item; item = strtok_r(NULL, ",", &s2)) {
			int n = parse_node(item);
			if (n < 0) {
				snprintf(err, errlen, "err bad node '%s'", item);
				return -1;
			}
			if (group[n]) {
				snprintf(err, errlen, "err node %d in two groups", n);
				return -1;
			}
			group[n] = g;
		}
	}
	if (g < 2) {
		snprintf(err, errlen, "err partition needs at least two groups");
		return -1;
	}
	memset(cut, 0, sizeof(cut));
	for (a = 1; a <= nnodes; a++)
		for (b = 1; b <= nnodes; b++)
			if (group[a] && group[b] && group[a] != group[b])
				cut[a][b] = 1;
	return 0;
}

static void handle_ctl(int ctlfd)
{
	char req[1024], rep[8192];
	struct sockaddr_un from;
	socklen_t fromlen = sizeof(from);
	ssize_t r;

	for (;;) {
		char *cmd, *save = NULL, *a1, *a2;
		fromlen = sizeof(from);
		r = recvfrom(ctlfd, req, sizeof(req) - 1, MSG_DONTWAIT, (struct sockaddr *)&from,
			     &fromlen);
		if (r < 0)
			return;
		req[r] = '\0';
		while (r > 0 && (req[r - 1] == '\n' || req[r - 1] == '\r'))
			req[--r] = '\0';
		cmd = strtok_r(req, " \t", &save);
		if (!cmd) {
			snprintf(rep, sizeof(rep), "err empty command");
		} else if (!strcmp(cmd, "cut") || !strcmp(cmd, "uncut")) {
			int a, b;
			a1 = strtok_r(NULL, " \t", &save);
			a2 = strtok_r(NULL, " \t", &save);
			a = a1 ? parse_node(a1) : -1;
			b = a2 ? parse_node(a2) : -1;
			if (a < 0 || b < 0 || a == b || strtok_r(NULL, " \t", &save)) {
				snprintf(rep, sizeof(rep), "err usage: %s A B (1..%d, A != B)", cmd, nnodes);
			} else {
				set_cut(a, b, cmd[0] == 'c');
				snprintf(rep, sizeof(rep), "ok %s %d %d", cmd, a, b);
			}
		} else if (!strcmp(cmd, "partition")) {
			if (do_partition(save ? save : (char *)"", rep, sizeof(rep)) == 0)
				snprintf(rep, sizeof(rep), "ok partition");
		} else if (!strcmp(cmd, "heal")) {
			memset(cut, 0, sizeof(cut));
			snprintf(rep, sizeof(rep), "ok heal");
		} else if (!strcmp(cmd, "ping")) {
			snprintf(rep, sizeof(rep), "ok pong %d", nnodes);
		} else if (!strcmp(cmd, "stats")) {
			size_t off = (size_t)snprintf(rep, sizeof(rep), "ok");
			for (int n = 1; n <= nnodes && off < sizeof(rep); n++)
				off += (size_t)snprintf(rep + off, sizeof(rep) - off,
					" %d:rx=%llu,tx=%llu,drop=%llu,queued=%u", n,
					(unsigned long long)ports[n].rx,
					(unsigned long long)ports[n].tx,
					(unsigned long long)ports[n].drop, ports[n].count);
		} else if (!strcmp(cmd, "cuts")) {
			size_t off = (size_t)snprintf(rep, sizeof(rep), "ok");
			for (int a = 1; a <= nnodes; a++)
				for (int b = a + 1; b <= nnodes; b++)
					if (cut[a][b] && off < sizeof(rep))
						off += (size_t)snprintf(rep + off, sizeof(rep) - off,
									" %d-%d", a, b);
		} else {
			snprintf(rep, sizeof(rep), "err unknown command '%s'", cmd);
		}
		if (fromlen > sizeof(sa_family_t))
			sendto(ctlfd, rep, strlen(rep), MSG_DONTWAIT, (struct sockaddr *)&from, fromlen);
	}
}

/*
 * The receive queue of a unix datagram socket holds net.unix.max_dgram_qlen
 * frames (10 by default), a tight limit for a switch.  The limit is taken from
 * the creating task's network namespace, and filesystem sockets work across
 * namespaces, so when we may, make hub.sock in a private netns with a deeper
 * queue.  Best effort: without privilege the default stays.
 */
static void deepen_queue(void)
{
	int fd;

	if (getenv("SSI_HUB_NO_NETNS"))
		return;
	if (unshare(CLONE_NEWNET) < 0)
		return;
	fd = open("/proc/sys/net/unix/max_dgram_qlen", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "512", 3) < 0) {
			/* keep the default */
		}
		close(fd);
	}
}

int main(int argc, char **argv)
{
	struct pollfd pfd[MAXN + 3];
	int hubfd, ctlfd, n, np;
	int idx[MAXN + 3];

	if (argc != 3) {
		fprintf(stderr, "usage: %s DIR NODES\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	nnodes = atoi(argv[2]);
	if (nnodes < 1 || nnodes > MAXN) {
		fprintf(stderr, "ssi-hub: NODES must be 1..%d\n", MAXN);
		return 2;
	}
	if (make_path(hub_path, "hub.sock") < 0 || make_path(ctl_path, "hubctl.sock") < 0) {
		fprintf(stderr, "ssi-hub: socket directory path too long: %s\n", dir);
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	for (n = 0; n <= MAXN; n++)
		ports[n].fd = -1;

	/* ctl first: replies go to clients' abstract addresses, which are per netns */
	ctlfd = bind_dgram(ctl_path);
	deepen_queue();
	hubfd = bind_dgram(hub_path);
	if (hubfd < 0 || ctlfd < 0) {
		perror("ssi-hub: bind");
		return 1;
	}
	printf("ssi-hub: ready %d nodes in %s\n", nnodes, dir);
	fflush(stdout);

	while (!stop) {
		np = 0;
		pfd[np].fd = hubfd;
		pfd[np].events = POLLIN;
		idx[np++] = 0;
		pfd[np].fd = ctlfd;
		pfd[np].events = POLLIN;
		idx[np++] = -1;
		for (n = 1; n <= nnodes; n++) {
			if (ports[n].count && ports[n].fd >= 0) {
				pfd[np].fd = ports[n].fd;
				pfd[np].events = POLLOUT;
				idx[np++] = n;
			}
		}
		if (poll(pfd, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("ssi-hub: poll");
			break;
		}
		for (int i = 2; i < np; i++)
			if (pfd[i].revents)
				flush_queue(idx[i]);
		if (pfd[1].revents & POLLIN)
			handle_ctl(ctlfd);
		if (pfd[0].revents & POLLIN)
			pump(hubfd);
	}
	unlink(hub_path);
	unlink(ctl_path);
	return 0;
}
