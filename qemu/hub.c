// SPDX-License-Identifier: GPL-2.0-only
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
 *   - nothing crosses a cut link,
 *   - a frame crossing an impaired link (below) may be dropped, corrupted,
 *     duplicated, delayed or reordered on the way.
 * Frames for one node leave through a socket connected to that node's path
 * (sendmmsg), so poll(POLLOUT) gives real back-pressure; a short per-node
 * queue absorbs bursts and overflow is dropped like a switch would.
 *
 * Control: text datagrams on DIR/hubctl.sock, one command per datagram, the
 * reply goes back to the sender's address:
 *   cut A B | uncut A B | partition 1,2 3[,4...] | heal | cuts | stats | ping
 *   impair A B KEY=VAL... [both] | clear [A B [both]] | impairs
 *   linkstats [zero] | seed N
 * Replies start with "ok" or "err".  `partition` first heals, then cuts every
 * pair of nodes that sit in different groups; unlisted nodes keep their links.
 * `heal` only removes cuts, never impairments (`clear` does that).
 *
 * Impairments (netem-like) are set per directed link A>B (frames sent by A to
 * B; `both` also sets B>A; A or B may be `*`, every node).  `impair` replaces
 * the link's whole setting; keys not given are 0.  Percentages may have
 * decimals (resolution 0.0001 %), times are whole ms:
 *   drop=P     the frame is lost
 *   corrupt=P  one random bit of the L4 payload (past the Ethernet, IPv4 and
 *              TCP/UDP/ICMP headers, inside the IPv4 total length) is flipped
 *              and the L4 checksum is adjusted (RFC 1624), so the receiving
 *              kernel accepts the segment and the flip reaches the
 *              application.  Only unfragmented IPv4 TCP/UDP/ICMP frames with
 *              payload are eligible; P is a percentage of those.
 *   rawcorrupt=P  one random bit flipped anywhere past the Ethernet header
 *              (inside the IPv4 total length for IPv4), no checksum touched:
 *              the receiver's checksums should catch it.
 *   dup=P      the frame is sent twice
 *   delay=MS, jitter=MS  the frame leaves after delay +/- a uniform jitter;
 *              frames on one link stay in order (a late frame holds back the
 *              ones behind it).
 *   reorder=P  the frame is held back and sent right after the next frame on
 *              the link, or after hold=MS (default 20) if none comes.
 * The stages run in that order: drop, corrupt, dup, delay, reorder.  At most
 * DELAY_CAP frames / DELAY_BYTES bytes wait (delayed or held) for one node;
 * beyond that a frame is dropped and counted as overflow.  Timers live in the
 * poll loop (ppoll timeout), no threads.  `clear` sends what a cleared link
 * still holds at once, in order.
 *
 * Random choices come from one splitmix64 stream per directed link; `seed N`
 * restarts every stream from N (link A>B from N and A, B), so the same frames
 * on a link meet the same fate whatever the traffic on other links.  Without
 * `seed` the streams start from the time and pid.
 *
 * `impairs` lists the settings (A>B:drop=,corrupt=,rawcorrupt=,dup=,reorder=,
 * delay=,jitter=,hold=); `linkstats` the counters of every link that is
 * impaired or has counted something (A>B:frames=,dropped=,corrupted=,
 * duplicated=,delayed=,reordered=,overflow=,pending=; frames are those that
 * met an impairment); `linkstats zero` resets them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAXN 63
#define BATCH 64
#define FRAME_MAX 65536
#define QLEN 512
#define DELAY_CAP 4096              /* frames waiting in delay/hold per destination */
#define DELAY_BYTES (32u << 20)     /* bytes waiting in delay/hold per destination */
#define PPM 1000000u                /* percentages are kept in millionths */
#define MS_MAX 60000u
#define HOLD_DEFAULT 20u

struct frame {
	uint32_t len;
	unsigned char *data;
};

struct port {
	int fd;                 /* connected to DIR/nodeN.sock, -1 if not */
	struct frame q[QLEN];   /* frames waiting for POLLOUT */
	unsigned head, count;
	uint64_t rx, tx, drop;  /* rx: frames from node, tx: to node, drop: for node, lost */
	unsigned waiting;       /* frames delayed or held for this node */
	size_t waiting_bytes;
};

/* A frame the hub owns: waiting in a delay line or hold slot, or a corrupted copy. */
struct pkt {
	struct pkt *next;
	uint64_t due;           /* CLOCK_MONOTONIC us */
	uint32_t len;
	unsigned char data[];
};

struct impair {
	uint32_t drop, corrupt, rawcorrupt, dup, reorder;       /* ppm */
	uint32_t delay, jitter, hold;                           /* ms */
};

struct link {
	struct impair cfg;
	int active;
	uint64_t rng;
	struct pkt *dhead, *dtail;      /* delay line, due times non-decreasing */
	uint64_t last_due;
	struct pkt *held;               /* reorder slot */
	uint64_t held_until;
	uint64_t frames, dropped, corrupted, duplicated, delayed, reordered, overflow;
};

static struct port ports[MAXN + 1];
static unsigned char cut[MAXN + 1][MAXN + 1];
static int nnodes;
static const char *dir;
static char hub_path[108], ctl_path[108];
static volatile sig_atomic_t stop;
static struct link links[MAXN + 1][MAXN + 1];
static unsigned long npending;  /* frames in all delay lines and hold slots */
static struct pkt *scratch;     /* owned frames handed to out_add, freed after flush */
static uint64_t now_us;

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

static void out_flush(int t);

static void out_add(int t, unsigned char *buf, uint32_t len)
{
	unsigned i;

	if (out_n[t] == BATCH)  /* dup and reorder can add more than one per frame */
		out_flush(t);
	i = out_n[t]++;
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

/* ---- impairments ---- */

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [0, n) for n >= 1 (n < 2^32) */
static uint32_t rand_below(struct link *l, uint32_t n)
{
	return (uint32_t)(((splitmix64(&l->rng) >> 32) * (uint64_t)n) >> 32);
}

static int chance(struct link *l, uint32_t ppm)
{
	if (ppm == 0)
		return 0;
	if (ppm >= PPM)
		return 1;
	return rand_below(l, PPM) < ppm;
}

static void seed_links(uint64_t seed)
{
	for (int a = 0; a <= MAXN; a++)
		for (int b = 0; b <= MAXN; b++) {
			uint64_t st = seed ^ ((uint64_t)a << 40) ^ ((uint64_t)b << 48);
			links[a][b].rng = splitmix64(&st);
		}
}

static struct pkt *pkt_new(const unsigned char *buf, uint32_t len)
{
	struct pkt *p = malloc(sizeof(*p) + len);

	if (!p)
		return NULL;
	p->next = NULL;
	p->due = 0;
	p->len = len;
	memcpy(p->data, buf, len);
	return p;
}

/* Send an owned frame: it stays alive until the flush that follows. */
static void out_add_owned(int t, struct pkt *p)
{
	p->next = scratch;
	scratch = p;
	out_add(t, p->data, p->len);
}

static void free_scratch(void)
{
	while (scratch) {
		struct pkt *p = scratch;

		scratch = p->next;
		free(p);
	}
}

static void wait_account(int t, const struct pkt *p, int add)
{
	if (add) {
		ports[t].waiting++;
		ports[t].waiting_bytes += p->len;
		npending++;
	} else {
		ports[t].waiting--;
		ports[t].waiting_bytes -= p->len;
		npending--;
	}
}

static int wait_full(int t, uint32_t len)
{
	return ports[t].waiting >= DELAY_CAP || ports[t].waiting_bytes + len > DELAY_BYTES;
}

static uint16_t get16(const unsigned char *b) { return (uint16_t)(b[0] << 8 | b[1]); }

static void put16(unsigned char *b, uint16_t v)
{
	b[0] = (unsigned char)(v >> 8);
	b[1] = (unsigned char)v;
}

/*
 * Where a `corrupt` flip may go: the L4 payload of an unfragmented IPv4
 * TCP/UDP/ICMP frame.  Returns 0 and the payload range [*p0, *p1) (frame
 * offsets), the L4 start and its checksum offset (0: none to fix), or -1.
 */
static int l4_payload(const unsigned char *f, uint32_t len, uint32_t *p0, uint32_t *p1,
		      uint32_t *l4, uint32_t *csum)
{
	uint32_t ihl, tot, hl;
	unsigned proto;

	if (len < 14 + 20 || get16(f + 12) != 0x0800 || (f[14] >> 4) != 4)
		return -1;
	ihl = (uint32_t)(f[14] & 15) * 4;
	tot = get16(f + 16);
	if (ihl < 20 || tot < ihl || 14 + tot > len || (get16(f + 20) & 0x3fff))
		return -1;
	proto = f[23];
	*l4 = 14 + ihl;
	if (proto == 6) {               /* TCP */
		if (tot - ihl < 20)
			return -1;
		hl = (uint32_t)(f[*l4 + 12] >> 4) * 4;
		if (hl < 20 || hl > tot - ihl)
			return -1;
		*csum = *l4 + 16;
	} else if (proto == 17) {       /* UDP: 0 means no checksum */
		hl = 8;
		if (tot - ihl < hl)
			return -1;
		*csum = get16(f + *l4 + 6) ? *l4 + 6 : 0;
	} else if (proto == 1) {        /* ICMP */
		hl = 8;
		if (tot - ihl < hl)
			return -1;
		*csum = *l4 + 2;
	} else {
		return -1;
	}
	*p0 = *l4 + hl;
	*p1 = 14 + tot;
	return *p0 < *p1 ? 0 : -1;
}

/*
 * Flip bit `bit` of byte `off` and patch the one's complement checksum at
 * `csum` (RFC 1624, eqn. 3) for the 16-bit word holding that byte; words count
 * from `l4`, the start of what the checksum covers (a pseudo header has even
 * length, so it does not shift them).
 */
static void flip_fix(unsigned char *f, uint32_t end, uint32_t off, unsigned bit, uint32_t l4,
		     uint32_t csum)
{
	uint32_t w = off - ((off - l4) & 1);
	uint16_t m_old, m_new, hc;
	uint32_t sum;

	m_old = (uint16_t)(f[w] << 8 | (w + 1 < end ? f[w + 1] : 0));
	f[off] ^= (unsigned char)(1u << bit);
	m_new = (uint16_t)(f[w] << 8 | (w + 1 < end ? f[w + 1] : 0));
	if (!csum)
		return;
	hc = get16(f + csum);
	sum = (uint16_t)~hc + (uint32_t)(uint16_t)~m_old + m_new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	hc = (uint16_t)~sum;
	if (f[23] == 17 && hc == 0)     /* UDP sends a computed 0 as all ones */
		hc = 0xffff;
	put16(f + csum, hc);
}

static int corrupt_frame(struct link *l, unsigned char *f, uint32_t len, int fix)
{
	uint32_t p0, p1, l4 = 0, csum = 0, nbits, pick;

	if (l4_payload(f, len, &p0, &p1, &l4, &csum) < 0) {
		if (fix)
			return -1;
		p0 = 14;
		p1 = len;
		if (len >= 14 + 20 && get16(f + 12) == 0x0800 && get16(f + 16) >= 20 &&
		    14u + get16(f + 16) <= len)
			p1 = 14u + get16(f + 16);
		if (p1 <= p0)
			return -1;
	} else if (!fix) {
		p0 = 14;
	}
	nbits = (p1 - p0) * 8;
	pick = rand_below(l, nbits);
	if (fix)
		flip_fix(f, p1, p0 + pick / 8, pick % 8, l4, csum);
	else
		f[p0 + pick / 8] ^= (unsigned char)(1u << (pick % 8));
	return 0;
}

static int corrupt_eligible(const unsigned char *f, uint32_t len)
{
	uint32_t p0, p1, l4, csum;

	return l4_payload(f, len, &p0, &p1, &l4, &csum) == 0;
}

static void release_held(int t, struct link *l)
{
	struct pkt *h = l->held;

	if (!h)
		return;
	l->held = NULL;
	wait_account(t, h, 0);
	out_add_owned(t, h);
}

/* Last stage: maybe hold the frame back; `own` is the frame if the hub owns it. */
static void stage_reorder(int t, struct link *l, unsigned char *buf, uint32_t len,
			  struct pkt *own)
{
	if (!l->held && chance(l, l->cfg.reorder)) {
		struct pkt *p = own;

		if (!p && !wait_full(t, len))
			p = pkt_new(buf, len);
		else if (p)
			own = NULL;
		if (p) {
			p->next = NULL;
			l->held = p;
			l->held_until = now_us + (uint64_t)(l->cfg.hold ? l->cfg.hold : HOLD_DEFAULT) * 1000;
			wait_account(t, p, 1);
			l->reordered++;
			return;
		}
		l->overflow++;  /* no room to hold it: it goes out in order */
	}
	if (own)
		out_add_owned(t, own);
	else
		out_add(t, buf, len);
	release_held(t, l);
}

static void stage_delay(int t, struct link *l, unsigned char *buf, uint32_t len)
{
	uint64_t due = now_us;
	struct pkt *p;

	if (!l->cfg.delay && !l->cfg.jitter && !l->dhead) {
		stage_reorder(t, l, buf, len, NULL);
		return;
	}
	if (wait_full(t, len) || !(p = pkt_new(buf, len))) {
		l->overflow++;
		return;
	}
	if (l->cfg.delay || l->cfg.jitter) {
		int64_t ms = (int64_t)l->cfg.delay;

		if (l->cfg.jitter)
			ms += (int64_t)rand_below(l, 2 * l->cfg.jitter + 1) - (int64_t)l->cfg.jitter;
		if (ms > 0)
			due += (uint64_t)ms * 1000;
		l->delayed++;
	}
	if (due < l->last_due)
		due = l->last_due;      /* keep the link's order */
	l->last_due = due;
	p->due = due;
	if (l->dtail)
		l->dtail->next = p;
	else
		l->dhead = p;
	l->dtail = p;
	wait_account(t, p, 1);
}

/* A frame from src crossing the link to t (not cut). */
static void link_send(int src, int t, unsigned char *buf, uint32_t len)
{
	struct link *l = &links[src][t];
	struct pkt *c = NULL;
	int copies = 1;

	if (!l->active && !l->dhead && !l->held) {
		out_add(t, buf, len);
		return;
	}
	l->frames++;
	if (chance(l, l->cfg.drop)) {
		l->dropped++;
		return;
	}
	if (l->cfg.corrupt && corrupt_eligible(buf, len) && chance(l, l->cfg.corrupt)) {
		c = pkt_new(buf, len);
		if (c && corrupt_frame(l, c->data, c->len, 1) == 0)
			l->corrupted++;
	} else if (chance(l, l->cfg.rawcorrupt)) {
		c = pkt_new(buf, len);
		if (c && corrupt_frame(l, c->data, c->len, 0) == 0)
			l->corrupted++;
	}
	if (c) {                        /* lives until the next flush */
		c->next = scratch;
		scratch = c;
		buf = c->data;
	}
	if (chance(l, l->cfg.dup)) {
		l->duplicated++;
		copies = 2;
	}
	while (copies--)
		stage_delay(t, l, buf, len);
}

/*
 * Send every delayed frame that is due and every held frame whose time is up.
 * Returns the earliest time something else falls due (0: nothing waits).
 */
static uint64_t run_timers(void)
{
	uint64_t next = 0;

	if (!npending)
		return 0;
	now_us = mono_us();
	for (int s = 1; s <= nnodes; s++) {
		for (int t = 1; t <= nnodes; t++) {
			struct link *l = &links[s][t];

			while (l->dhead && l->dhead->due <= now_us) {
				struct pkt *p = l->dhead;

				l->dhead = p->next;
				if (!l->dhead)
					l->dtail = NULL;
				wait_account(t, p, 0);
				stage_reorder(t, l, p->data, p->len, p);
			}
			if (l->held && l->held_until <= now_us)
				release_held(t, l);
			if (l->dhead && (!next || l->dhead->due < next))
				next = l->dhead->due;
			if (l->held && (!next || l->held_until < next))
				next = l->held_until;
		}
	}
	for (int t = 1; t <= nnodes; t++)
		out_flush(t);
	free_scratch();
	return next;
}

/* Send at once, in order, what link a>b still holds (the link was cleared). */
static void drain_link(int a, int b)
{
	struct link *l = &links[a][b];

	while (l->dhead) {
		struct pkt *p = l->dhead;

		l->dhead = p->next;
		wait_account(b, p, 0);
		out_add_owned(b, p);
	}
	l->dtail = NULL;
	l->last_due = 0;
	release_held(b, l);
	out_flush(b);
	free_scratch();
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
			link_send(src, t, buf, len);
		return;
	}
	for (t = 1; t <= nnodes; t++) {
		if (t == src)
			continue;
		if (cut[src][t])
			ports[t].drop++;
		else
			link_send(src, t, buf, len);
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
		now_us = mono_us();
		for (i = 0; i < r; i++) {
			int src = node_of_path(&names[i], m[i].msg_hdr.msg_namelen);
			if (src > 0)
				forward(src, bufs[i], m[i].msg_len);
		}
		for (t = 1; t <= nnodes; t++)
			out_flush(t);
		free_scratch();
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

/* "*" is every node (0); else 1..nnodes */
static int parse_node_or_all(const char *s)
{
	return strcmp(s, "*") == 0 ? 0 : parse_node(s);
}

static int parse_pct(const char *s, uint32_t *ppm)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno || !(v >= 0.0 && v <= 100.0))
		return -1;
	*ppm = (uint32_t)(v * (PPM / 100) + 0.5);
	return 0;
}

static int parse_ms(const char *s, uint32_t *ms)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || errno || v > MS_MAX)
		return -1;
	*ms = (uint32_t)v;
	return 0;
}

static int impair_active(const struct impair *c)
{
	return c->drop || c->corrupt || c->rawcorrupt || c->dup || c->reorder || c->delay ||
	       c->jitter;
}

/* Apply fn to a>b (and b>a with both), a or b 0 meaning every node. */
static void for_links(int a, int b, int both, void (*fn)(int, int, const struct impair *),
		      const struct impair *c)
{
	for (int x = 1; x <= nnodes; x++) {
		for (int y = 1; y <= nnodes; y++) {
			if (x == y)
				continue;
			if ((!a || x == a) && (!b || y == b))
				fn(x, y, c);
			else if (both && (!a || y == a) && (!b || x == b))
				fn(x, y, c);
		}
	}
}

static void set_link(int a, int b, const struct impair *c)
{
	struct link *l = &links[a][b];

	l->cfg = *c;
	l->active = impair_active(c);
	if (!l->active)
		drain_link(a, b);
}

static void clear_link(int a, int b, const struct impair *c)
{
	(void)c;
	links[a][b].active = 0;
	memset(&links[a][b].cfg, 0, sizeof(links[a][b].cfg));
	drain_link(a, b);
}

/* impair A B KEY=VAL... [both] */
static int do_impair(char *save, char *err, size_t errlen)
{
	struct impair c = { .hold = HOLD_DEFAULT };
	char *a1 = strtok_r(NULL, " \t", &save);
	char *a2 = strtok_r(NULL, " \t", &save);
	int a = a1 ? parse_node_or_all(a1) : -1;
	int b = a2 ? parse_node_or_all(a2) : -1;
	int both = 0, keys = 0;
	char *tok;

	if (a < 0 || b < 0 || (a && a == b)) {
		snprintf(err, errlen, "err usage: impair A B KEY=VAL... [both] (A, B: 1..%d or *)",
			 nnodes);
		return -1;
	}
	while ((tok = strtok_r(NULL, " \t", &save))) {
		char *val = strchr(tok, '=');
		int bad;

		if (!strcmp(tok, "both")) {
			both = 1;
			continue;
		}
		if (!val) {
			snprintf(err, errlen, "err expected KEY=VAL, got '%.64s'", tok);
			return -1;
		}
		*val++ = '\0';
		if (!strcmp(tok, "drop"))
			bad = parse_pct(val, &c.drop);
		else if (!strcmp(tok, "corrupt"))
			bad = parse_pct(val, &c.corrupt);
		else if (!strcmp(tok, "rawcorrupt"))
			bad = parse_pct(val, &c.rawcorrupt);
		else if (!strcmp(tok, "dup"))
			bad = parse_pct(val, &c.dup);
		else if (!strcmp(tok, "reorder"))
			bad = parse_pct(val, &c.reorder);
		else if (!strcmp(tok, "delay"))
			bad = parse_ms(val, &c.delay);
		else if (!strcmp(tok, "jitter"))
			bad = parse_ms(val, &c.jitter);
		else if (!strcmp(tok, "hold"))
			bad = parse_ms(val, &c.hold) || c.hold == 0;
		else {
			snprintf(err, errlen, "err unknown key '%.64s' (drop corrupt rawcorrupt dup "
				 "reorder delay jitter hold)", tok);
			return -1;
		}
		if (bad) {
			snprintf(err, errlen, "err bad value '%.64s' for %s (percent 0..100, ms 0..%u)",
				 val, tok, MS_MAX);
			return -1;
		}
		keys++;
	}
	if (!keys) {
		snprintf(err, errlen, "err impair needs at least one KEY=VAL");
		return -1;
	}
	for_links(a, b, both, set_link, &c);
	return 0;
}

/* clear [A B [both]] */
static int do_clear(char *save, char *err, size_t errlen)
{
	char *a1 = strtok_r(NULL, " \t", &save);
	char *a2 = a1 ? strtok_r(NULL, " \t", &save) : NULL;
	char *a3 = a2 ? strtok_r(NULL, " \t", &save) : NULL;
	int a = 0, b = 0, both = 0;

	if (a1) {
		a = parse_node_or_all(a1);
		b = a2 ? parse_node_or_all(a2) : -1;
		both = a3 && !strcmp(a3, "both");
		if (a < 0 || b < 0 || (a && a == b) || (a3 && !both) ||
		    strtok_r(NULL, " \t", &save)) {
			snprintf(err, errlen, "err usage: clear [A B [both]] (A, B: 1..%d or *)", nnodes);
			return -1;
		}
	}
	for_links(a, b, both, clear_link, NULL);
	return 0;
}

static size_t fmt_pct(char *out, size_t len, uint32_t ppm)
{
	unsigned whole = ppm / (PPM / 100), frac = ppm % (PPM / 100);
	int n;

	if (!frac)
		return (size_t)snprintf(out, len, "%u", whole);
	n = snprintf(out, len, "%u.%04u", whole, frac);
	while (n > 0 && (size_t)n < len && out[n - 1] == '0')
		out[--n] = '\0';
	return (size_t)n;
}

static size_t append(char *rep, size_t size, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t append(char *rep, size_t size, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (off >= size)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(rep + off, size - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

static void list_impairs(char *rep, size_t size)
{
	size_t off = append(rep, size, 0, "ok");

	for (int a = 1; a <= nnodes; a++) {
		for (int b = 1; b <= nnodes; b++) {
			const struct impair *c = &links[a][b].cfg;
			char p[5][16];

			if (!links[a][b].active)
				continue;
			fmt_pct(p[0], sizeof(p[0]), c->drop);
			fmt_pct(p[1], sizeof(p[1]), c->corrupt);
			fmt_pct(p[2], sizeof(p[2]), c->rawcorrupt);
			fmt_pct(p[3], sizeof(p[3]), c->dup);
			fmt_pct(p[4], sizeof(p[4]), c->reorder);
			off = append(rep, size, off, " %d>%d:drop=%s,corrupt=%s,rawcorrupt=%s,dup=%s,"
				     "reorder=%s,delay=%u,jitter=%u,hold=%u", a, b, p[0], p[1], p[2],
				     p[3], p[4], c->delay, c->jitter, c->hold);
		}
	}
	if (off >= size)
		snprintf(rep, size, "err reply too long");
}

static void list_linkstats(char *rep, size_t size)
{
	size_t off = append(rep, size, 0, "ok");

	for (int a = 1; a <= nnodes; a++) {
		for (int b = 1; b <= nnodes; b++) {
			const struct link *l = &links[a][b];
			unsigned pending = l->held ? 1 : 0;

			for (const struct pkt *p = l->dhead; p; p = p->next)
				pending++;
			if (!l->active && !pending && !l->frames && !l->overflow)
				continue;
			off = append(rep, size, off, " %d>%d:frames=%llu,dropped=%llu,corrupted=%llu,"
				     "duplicated=%llu,delayed=%llu,reordered=%llu,overflow=%llu,"
				     "pending=%u", a, b, (unsigned long long)l->frames,
				     (unsigned long long)l->dropped, (unsigned long long)l->corrupted,
				     (unsigned long long)l->duplicated, (unsigned long long)l->delayed,
				     (unsigned long long)l->reordered, (unsigned long long)l->overflow,
				     pending);
		}
	}
	if (off >= size)
		snprintf(rep, size, "err reply too long");
}

static void zero_linkstats(void)
{
	for (int a = 0; a <= MAXN; a++)
		for (int b = 0; b <= MAXN; b++) {
			struct link *l = &links[a][b];

			l->frames = l->dropped = l->corrupted = l->duplicated = 0;
			l->delayed = l->reordered = l->overflow = 0;
		}
}

static void handle_ctl(int ctlfd)
{
	static char rep[65536];
	char req[1024];
	struct sockaddr_un from;
	socklen_t fromlen = sizeof(from);
	ssize_t r;

	for (;;) {
		char *cmd, *save = NULL, *a1, *a2;
		fromlen = sizeof(from);
		r = recvfrom(ctlfd, req, sizeof(req) - 1, MSG_DONTWAIT | MSG_TRUNC,
			     (struct sockaddr *)&from, &fromlen);
		if (r < 0)
			return;
		if ((size_t)r >= sizeof(req)) {
			snprintf(rep, sizeof(rep), "err command longer than %zu bytes", sizeof(req) - 1);
			if (fromlen > sizeof(sa_family_t))
				sendto(ctlfd, rep, strlen(rep), MSG_DONTWAIT, (struct sockaddr *)&from,
				       fromlen);
			continue;
		}
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
		} else if (!strcmp(cmd, "impair")) {
			if (do_impair(save, rep, sizeof(rep)) == 0)
				snprintf(rep, sizeof(rep), "ok impair");
		} else if (!strcmp(cmd, "clear")) {
			if (do_clear(save, rep, sizeof(rep)) == 0)
				snprintf(rep, sizeof(rep), "ok clear");
		} else if (!strcmp(cmd, "impairs")) {
			list_impairs(rep, sizeof(rep));
		} else if (!strcmp(cmd, "linkstats")) {
			a1 = strtok_r(NULL, " \t", &save);
			if (!a1) {
				list_linkstats(rep, sizeof(rep));
			} else if (!strcmp(a1, "zero") && !strtok_r(NULL, " \t", &save)) {
				zero_linkstats();
				snprintf(rep, sizeof(rep), "ok linkstats zero");
			} else {
				snprintf(rep, sizeof(rep), "err usage: linkstats [zero]");
			}
		} else if (!strcmp(cmd, "seed")) {
			char *end = NULL;
			unsigned long long v = 0;

			a1 = strtok_r(NULL, " \t", &save);
			if (a1 && *a1 >= '0' && *a1 <= '9') {
				errno = 0;
				v = strtoull(a1, &end, 10);
			}
			if (!a1 || !end || *end || errno || strtok_r(NULL, " \t", &save)) {
				snprintf(rep, sizeof(rep), "err usage: seed N (0..2^64-1)");
			} else {
				seed_links(v);
				snprintf(rep, sizeof(rep), "ok seed %llu", v);
			}
		} else {
			snprintf(rep, sizeof(rep), "err unknown command '%.64s'", cmd);
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
	seed_links((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));

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
		uint64_t next = run_timers();
		struct timespec ts, *tmo = NULL;

		if (next) {
			uint64_t now = mono_us(), us = next > now ? next - now : 0;

			ts.tv_sec = (time_t)(us / 1000000u);
			ts.tv_nsec = (long)(us % 1000000u) * 1000;
			tmo = &ts;
		}
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
		if (ppoll(pfd, (nfds_t)np, tmo, NULL) < 0) {
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
