// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS connections: kernel TCP sockets, the listener, per-connection
 * receive loops and framed sends.  Receive loops run as work items on an
 * unbound workqueue, so module unload can flush them like any work.
 */
#define pr_fmt(fmt) "ics: " fmt

#include <linux/in.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/tcp.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "ics_internal.h"

static LIST_HEAD(ics_conns);
static DEFINE_MUTEX(ics_conns_lock);	/* ics_conns; after peer->lock */

static struct socket *ics_listen_sock;
static struct work_struct ics_accept_work;
static bool ics_stopping;

bool ics_hdr_valid(const struct ics_hdr *hdr)
{
	return le32_to_cpu(hdr->magic) == ICS_MAGIC &&
	       hdr->version == ICS_PROTO_VERSION &&
	       hdr->kind >= ICS_KIND_CALL && hdr->kind <= ICS_KIND_AUTH &&
	       le32_to_cpu(hdr->len) <= ICS_MAX_BODY;
}

/* A well-formed header whose only fault is a body over ICS_MAX_BODY. */
static bool ics_hdr_oversized(const struct ics_hdr *hdr)
{
	return le32_to_cpu(hdr->magic) == ICS_MAGIC &&
	       hdr->version == ICS_PROTO_VERSION &&
	       le32_to_cpu(hdr->len) > ICS_MAX_BODY;
}

void ics_hdr_fill(struct ics_hdr *hdr, enum ics_kind kind, u16 service,
		  u16 op, u16 op_version, size_t len, int status, u64 xid)
{
	hdr->magic = cpu_to_le32(ICS_MAGIC);
	hdr->version = ICS_PROTO_VERSION;
	hdr->kind = kind;
	hdr->service = cpu_to_le16(service);
	hdr->op = cpu_to_le16(op);
	hdr->op_version = cpu_to_le16(op_version);
	hdr->len = cpu_to_le32(len);
	hdr->status = cpu_to_le32(status);
	hdr->xid = cpu_to_le64(xid);
}

/* Reads exactly @len bytes; -ECONNRESET on end of stream. */
int ics_sock_recv(struct socket *sock, void *buf, size_t len)
{
	while (len) {
		struct kvec vec = { .iov_base = buf, .iov_len = len };
		struct msghdr msg = { };
		int ret;

		ret = kernel_recvmsg(sock, &msg, &vec, 1, len, MSG_WAITALL);
		if (ret == 0)
			return -ECONNRESET;
		if (ret < 0)
			return ret;
		buf += ret;
		len -= ret;
	}
	return 0;
}

int ics_conn_send(struct ics_conn *conn, const struct ics_hdr *hdr,
		  const void *body, size_t len)
{
	struct kvec vec[2] = {
		{ .iov_base = (void *)hdr, .iov_len = sizeof(*hdr) },
		{ .iov_base = (void *)body, .iov_len = len },
	};
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	size_t total = sizeof(*hdr) + len;
	int ret;

	mutex_lock(&conn->send_lock);
	if (test_bit(ICS_CONN_DEAD, &conn->flags)) {
		ret = -ENOTCONN;
		goto out;
	}
	ret = kernel_sendmsg(conn->sock, &msg, vec, len ? 2 : 1, total);
	if (ret == total) {
		ics_count(ICS_CNT_FRAMES_TX);
		ics_count_add(ICS_CNT_BYTES_TX, total);
		ret = 0;
		goto out;
	}
	/* A partial frame leaves the stream unparseable: drop it. */
	ics_conn_kill(conn);
	ret = ret < 0 ? ret : -EPIPE;
out:
	mutex_unlock(&conn->send_lock);
	return ret;
}

static void ics_rx_work_fn(struct work_struct *work);

static struct ics_conn *ics_conn_alloc(struct socket *sock, unsigned int node,
				       enum ics_chan chan, bool outgoing)
{
	struct ics_conn *conn = kzalloc(sizeof(*conn), GFP_KERNEL);

	if (!conn)
		return NULL;
	kref_init(&conn->ref);
	conn->sock = sock;
	conn->node = node;
	conn->chan = chan;
	conn->outgoing = outgoing;
	conn->authed = outgoing;
	mutex_init(&conn->send_lock);
	INIT_WORK(&conn->rx_work, ics_rx_work_fn);
	xa_init_flags(&conn->pending, XA_FLAGS_ALLOC1);
	mutex_lock(&ics_conns_lock);
	list_add(&conn->all, &ics_conns);
	mutex_unlock(&ics_conns_lock);
	return conn;
}

static void ics_conn_release(struct kref *ref)
{
	struct ics_conn *conn = container_of(ref, struct ics_conn, ref);

	mutex_lock(&ics_conns_lock);
	list_del(&conn->all);
	mutex_unlock(&ics_conns_lock);
	WARN_ON(!xa_empty(&conn->pending));
	xa_destroy(&conn->pending);
	sock_release(conn->sock);
	kfree(conn);
}

void ics_conn_put(struct ics_conn *conn)
{
	kref_put(&conn->ref, ics_conn_release);
}

/* Wakes the receive loop, which then fails what is pending and exits. */
void ics_conn_kill(struct ics_conn *conn)
{
	if (test_and_set_bit(ICS_CONN_DEAD, &conn->flags))
		return;
	kernel_sock_shutdown(conn->sock, SHUT_RDWR);
	if (conn->authed)
		ics_count(ICS_CNT_DISCONNECTS);
}

void ics_conns_kill_node(unsigned int node, bool node_down)
{
	struct ics_conn *conn;

again:
	mutex_lock(&ics_conns_lock);
	list_for_each_entry(conn, &ics_conns, all) {
		if (conn->node != node || !conn->authed ||
		    test_bit(ICS_CONN_DEAD, &conn->flags) ||
		    !kref_get_unless_zero(&conn->ref))
			continue;
		mutex_unlock(&ics_conns_lock);
		if (node_down)
			set_bit(ICS_CONN_NODE_DOWN, &conn->flags);
		ics_conn_kill(conn);
		if (node_down)
			ics_fail_pending(conn, -EHOSTDOWN);
		ics_conn_put(conn);
		goto again;
	}
	mutex_unlock(&ics_conns_lock);
}

static void ics_sock_tune(struct socket *sock, long rcvtimeo)
{
	struct sock *sk = sock->sk;

	tcp_sock_set_nodelay(sk);
	WRITE_ONCE(sk->sk_rcvtimeo, rcvtimeo);
	WRITE_ONCE(sk->sk_sndtimeo, ICS_SEND_TIMEOUT * HZ);
	/* ICS may run in memory reclaim paths of CFS later on. */
	sk->sk_allocation = GFP_NOFS;
}

struct ics_conn *ics_conn_get_out(unsigned int node, enum ics_chan chan)
{
	struct ics_peer *peer = &ics_peers[node];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct ics_conn *conn;
	struct socket *sock;
	int ret;

	mutex_lock(&peer->lock);
	conn = peer->out[chan];
	if (conn && !test_bit(ICS_CONN_DEAD, &conn->flags)) {
		kref_get(&conn->ref);
		goto out;
	}
	if (conn) {
		peer->out[chan] = NULL;
		ics_conn_put(conn);
	}
	conn = ERR_PTR(-ENOTCONN);
	if (!peer->configured || READ_ONCE(ics_stopping) ||
	    time_before(jiffies, peer->retry_after))
		goto out;

	ret = sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &sock);
	if (ret) {
		conn = ERR_PTR(ret);
		goto out;
	}
	sock->sk->sk_allocation = GFP_NOFS;
	sock_set_sndtimeo(sock->sk, ICS_CONNECT_TIMEOUT);
	sin.sin_addr.s_addr = peer->addr;
	sin.sin_port = htons(ICS_PORT);
	ret = kernel_connect(sock, (struct sockaddr *)&sin, sizeof(sin), 0);
	if (!ret) {
		ics_sock_tune(sock, ICS_AUTH_TIMEOUT);
		ret = ics_auth_client(sock, node, chan);
	}
	if (ret) {
		ics_count(ICS_CNT_CONNECT_FAILURES);
		peer->retry_after = jiffies + ICS_RECONNECT_BACKOFF;
		sock_release(sock);
		conn = ERR_PTR(ret == -EACCES ? -EACCES : -ENOTCONN);
		goto out;
	}
	WRITE_ONCE(sock->sk->sk_rcvtimeo, MAX_SCHEDULE_TIMEOUT);

	conn = ics_conn_alloc(sock, node, chan, true);
	if (!conn) {
		sock_release(sock);
		conn = ERR_PTR(-ENOMEM);
		goto out;
	}
	ics_count(ICS_CNT_CONNECTS);
	peer->out[chan] = conn;		/* the slot's reference */
	kref_get(&conn->ref);		/* the receive loop's */
	kref_get(&conn->ref);		/* the caller's */
	queue_work(ics_rx_wq, &conn->rx_work);
out:
	mutex_unlock(&peer->lock);
	return conn;
}

static int ics_rx_server_auth(struct ics_conn *conn)
{
	struct sockaddr_in sin;
	unsigned int node;
	enum ics_chan chan;
	int ret;

	ret = kernel_getpeername(conn->sock, (struct sockaddr *)&sin);
	if (ret < 0)
		return ret;
	ret = ics_auth_server(conn->sock, sin.sin_addr.s_addr, &node, &chan);
	if (ret)
		return ret;
	conn->node = node;
	conn->chan = chan;
	WRITE_ONCE(conn->sock->sk->sk_rcvtimeo, MAX_SCHEDULE_TIMEOUT);
	/* ics_conns_kill_node() looks at authed connections only. */
	smp_store_release(&conn->authed, true);
	ics_count(ICS_CNT_CONNECTS);
	return 0;
}

static bool ics_rx_kind_ok(const struct ics_conn *conn, u8 kind)
{
	if (conn->outgoing)
		return kind == ICS_KIND_REPLY;
	return kind == ICS_KIND_CALL || kind == ICS_KIND_ONEWAY;
}

/* Receives frames until the connection fails or is killed. */
static void ics_rx_loop(struct ics_conn *conn)
{
	struct ics_hdr hdr;
	void *body;
	size_t len;

	while (!test_bit(ICS_CONN_DEAD, &conn->flags)) {
		if (ics_sock_recv(conn->sock, &hdr, sizeof(hdr)))
			return;
		len = le32_to_cpu(hdr.len);
		if (!ics_hdr_valid(&hdr) || !ics_rx_kind_ok(conn, hdr.kind)) {
			/* The stream cannot be resynchronised after this. */
			ics_count(ics_hdr_oversized(&hdr) ? ICS_CNT_OVERSIZED :
				  ICS_CNT_BAD_HEADER);
			return;
		}
		body = NULL;
		if (len) {
			body = kvmalloc(len, GFP_KERNEL);
			if (!body)
				return;
			if (ics_sock_recv(conn->sock, body, len)) {
				ics_count(ICS_CNT_TRUNCATED);
				kvfree(body);
				return;
			}
		}
		ics_count(ICS_CNT_FRAMES_RX);
		ics_count_add(ICS_CNT_BYTES_RX, sizeof(hdr) + len);
		if (conn->outgoing) {
			ics_rx_reply(conn, &hdr, body);
			kvfree(body);
		} else {
			ics_rx_call(conn, &hdr, body);	/* takes @body */
		}
	}
}

static void ics_rx_work_fn(struct work_struct *work)
{
	struct ics_conn *conn = container_of(work, struct ics_conn, rx_work);

	if (conn->outgoing || !ics_rx_server_auth(conn))
		ics_rx_loop(conn);
	ics_conn_kill(conn);
	ics_fail_pending(conn, test_bit(ICS_CONN_NODE_DOWN, &conn->flags) ?
			 -EHOSTDOWN : -ENOTCONN);
	ics_conn_put(conn);
}

static void ics_accept_work_fn(struct work_struct *work)
{
	struct ics_conn *conn;
	struct socket *sock;
	int ret;

	while (!READ_ONCE(ics_stopping)) {
		ret = kernel_accept(ics_listen_sock, &sock, 0);
		if (ret) {
			if (READ_ONCE(ics_stopping))
				break;
			schedule_timeout_interruptible(HZ / 10);
			continue;
		}
		ics_sock_tune(sock, ICS_AUTH_TIMEOUT);
		conn = ics_conn_alloc(sock, 0, ICS_CHAN_PRIO, false);
		if (!conn) {
			sock_release(sock);
			continue;
		}
		/* The initial reference belongs to the receive loop. */
		queue_work(ics_rx_wq, &conn->rx_work);
	}
}

int ics_listen_start(void)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_ANY),
		.sin_port = htons(ICS_PORT),
	};
	int ret;

	ret = sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &ics_listen_sock);
	if (ret)
		return ret;
	sock_set_reuseaddr(ics_listen_sock->sk);
	ret = kernel_bind(ics_listen_sock, (struct sockaddr *)&sin,
			  sizeof(sin));
	if (!ret)
		ret = kernel_listen(ics_listen_sock, 64);
	if (ret) {
		pr_err("cannot listen on port %d: %d\n", ICS_PORT, ret);
		sock_release(ics_listen_sock);
		return ret;
	}
	INIT_WORK(&ics_accept_work, ics_accept_work_fn);
	queue_work(ics_rx_wq, &ics_accept_work);
	return 0;
}

void ics_listen_stop(void)
{
	WRITE_ONCE(ics_stopping, true);
	kernel_sock_shutdown(ics_listen_sock, SHUT_RDWR);
	flush_work(&ics_accept_work);
	sock_release(ics_listen_sock);
}

void ics_conns_shutdown_all(void)
{
	struct ics_conn *conn;
	unsigned int node;
	int chan;

	for (node = 1; node <= SSI_MAX_NODES; node++) {
		struct ics_peer *peer = &ics_peers[node];

		mutex_lock(&peer->lock);
		for (chan = 0; chan < ICS_NR_CHANS; chan++) {
			conn = peer->out[chan];
			peer->out[chan] = NULL;
			if (conn) {
				ics_conn_kill(conn);
				ics_conn_put(conn);
			}
		}
		mutex_unlock(&peer->lock);
	}

again:
	mutex_lock(&ics_conns_lock);
	list_for_each_entry(conn, &ics_conns, all) {
		if (test_bit(ICS_CONN_DEAD, &conn->flags) ||
		    !kref_get_unless_zero(&conn->ref))
			continue;
		mutex_unlock(&ics_conns_lock);
		ics_conn_kill(conn);
		ics_conn_put(conn);
		goto again;
	}
	mutex_unlock(&ics_conns_lock);
}

bool ics_peer_connected(unsigned int node, enum ics_chan chan)
{
	struct ics_conn *conn;
	bool up = false;

	if (node < 1 || node > SSI_MAX_NODES || chan >= ICS_NR_CHANS)
		return false;
	mutex_lock(&ics_peers[node].lock);
	conn = ics_peers[node].out[chan];
	if (conn)
		up = !test_bit(ICS_CONN_DEAD, &conn->flags);
	mutex_unlock(&ics_peers[node].lock);
	return up;
}
EXPORT_SYMBOL_GPL(ics_peer_connected);
