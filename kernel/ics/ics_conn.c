// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS connections: kernel TCP sockets, framed sends, and receive driven by
 * the socket callbacks (as TIPC and sunrpc do it).  data_ready and
 * state_change queue the connection's rx_work on ics_rx_wq; rx_work reads
 * whatever has arrived without blocking, frame by frame, hands complete
 * frames to the handshake (ics_auth.c) or to RPC (ics_rpc.c), and returns
 * when the socket has nothing more: no worker ever waits on a peer, so
 * idle or slow connections cost memory, never threads.
 *
 * Outgoing connections are made by the first caller that needs one,
 * outside the peer's lock; later callers wait for the same handshake.
 * Every wait is bounded by the caller's deadline, and every handshake by
 * ICS_HANDSHAKE_TIMEOUT.
 */
#define pr_fmt(fmt) "ics: " fmt

#include <linux/highmem.h>
#include <linux/in.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/tcp.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "ics_internal.h"

static LIST_HEAD(ics_conns);
static DEFINE_MUTEX(ics_conns_lock);	/* ics_conns; after peer->lock */

/* The largest body a frame of @hdr's kind may have. */
static size_t ics_hdr_max_len(const struct ics_hdr *hdr)
{
	if (hdr->kind & ICS_KIND_PAGES)
		return ICS_MAX_BODY + (size_t)ICS_MAX_PAGES * ICS_PAGE_SIZE;
	return ICS_MAX_BODY;
}

bool ics_hdr_valid(const struct ics_hdr *hdr)
{
	u8 kind = hdr->kind & ~ICS_KIND_PAGES;

	if ((hdr->kind & ICS_KIND_PAGES) && kind != ICS_KIND_CALL &&
	    kind != ICS_KIND_REPLY)
		return false;
	return le32_to_cpu(hdr->magic) == ICS_MAGIC &&
	       hdr->version == ICS_PROTO_VERSION &&
	       kind >= ICS_KIND_CALL && kind <= ICS_KIND_AUTH &&
	       le32_to_cpu(hdr->len) <= ics_hdr_max_len(hdr);
}

/* A well-formed header whose only fault is a body over its bound. */
static bool ics_hdr_oversized(const struct ics_hdr *hdr)
{
	return le32_to_cpu(hdr->magic) == ICS_MAGIC &&
	       hdr->version == ICS_PROTO_VERSION &&
	       le32_to_cpu(hdr->len) > ics_hdr_max_len(hdr);
}

void ics_hdr_fill(struct ics_hdr *hdr, u8 kind, u16 service,
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

/* Jiffies left until @deadline, at least 1 (0 would mean "forever"). */
static long ics_left(unsigned long deadline)
{
	long left = (long)(deadline - jiffies);

	return left > 0 ? left : 1;
}

/*
 * A socket wait (connect, a full send buffer) ends at any pending signal,
 * and callers are often processes with signals queued: a deputy forwarding
 * the very signals it holds, a task being moved.  A connect cut short
 * failed the call and backed the peer off for every caller (a goto failed
 * with EAGAIN after 10 s of that); a send cut short leaves a partial frame
 * and kills the connection.  So every signal but SIGKILL is held back while
 * on the socket, as sunrpc's rpc_clnt_sigmask() once did: a killed caller
 * still stops, and what was held is delivered when the mask is restored.
 */
static void ics_signals_hold(sigset_t *saved)
{
	sigset_t all_but_kill;

	siginitsetinv(&all_but_kill, sigmask(SIGKILL));
	sigprocmask(SIG_BLOCK, &all_but_kill, saved);
}

static void ics_signals_release(sigset_t *saved)
{
	sigprocmask(SIG_SETMASK, saved, NULL);
}

/* A local allocation failed (socket, buffer): nothing about the peer. */
static bool ics_no_local_memory(int err)
{
	return err == -ENOMEM || err == -ENOBUFS;
}

/* ---------------------------------------------------------------- sending */

/*
 * One bio_vec per whole page of @pages, so that one sendmsg or recvmsg
 * moves them straight from or into the pages, never through a buffer of
 * ours (TCP copies them, kernel TLS encrypts or decrypts them in place).
 */
static struct bio_vec *ics_pages_bvec(struct page *const *pages,
				      unsigned int nr)
{
	struct bio_vec *bvec = kmalloc_array(nr, sizeof(*bvec), GFP_KERNEL);
	unsigned int i;

	for (i = 0; bvec && i < nr; i++) {
		bvec[i].bv_page = pages[i];
		bvec[i].bv_offset = 0;
		bvec[i].bv_len = ICS_PAGE_SIZE;
	}
	return bvec;
}

/*
 * protect=auth: the frame's tag goes after its pages, or with its head
 * when it has none (one sendmsg, as before).  @head has room for it.
 */
static size_t ics_tag_frame(struct ics_conn *conn, struct kvec *head, size_t nr,
			    struct page *const *pages, unsigned int nr_pages,
			    u8 *tag, struct kvec *tag_vec)
{
	ics_mac_tag(&conn->tx_mac, head, nr, pages, nr_pages, tag);
	tag_vec->iov_base = tag;
	tag_vec->iov_len = ICS_FRAME_TAG_LEN;
	if (nr_pages)
		return nr;
	head[nr] = *tag_vec;
	tag_vec->iov_len = 0;
	return nr + 1;
}

int ics_conn_send_raw(struct ics_conn *conn, const struct kvec *vec,
		      size_t nr, size_t total, struct page *const *pages,
		      unsigned int nr_pages, unsigned long deadline)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	struct msghdr page_msg = { .msg_flags = MSG_NOSIGNAL };
	size_t page_bytes = (size_t)nr_pages * ICS_PAGE_SIZE;
	struct kvec head[ICS_SEND_MAX_VEC + 1], tag_vec = { };
	size_t head_bytes = total, nr_head = nr;
	u8 tag[ICS_FRAME_TAG_LEN];
	struct bio_vec *bvec = NULL;
	bool tagged = false;
	sigset_t saved;
	int ret;

	if (WARN_ON_ONCE(nr > ICS_SEND_MAX_VEC))
		return -EINVAL;
	memcpy(head, vec, nr * sizeof(*vec));
	/* before anything goes: no memory for it must not cut a frame */
	if (nr_pages) {
		bvec = ics_pages_bvec(pages, nr_pages);
		if (!bvec)
			return -ENOMEM;
		iov_iter_bvec(&page_msg.msg_iter, ITER_SOURCE, bvec, nr_pages,
			      page_bytes);
	}
	mutex_lock(&conn->send_lock);
	if (test_bit(ICS_CONN_DEAD, &conn->flags) || !conn->sock) {
		ret = -ENOTCONN;
		goto out;
	}
	if (conn->tx_tagged) {
		tagged = true;
		nr_head = ics_tag_frame(conn, head, nr, pages, nr_pages, tag,
					&tag_vec);
		head_bytes += nr_pages ? 0 : ICS_FRAME_TAG_LEN;
	}
	if (nr_pages)
		msg.msg_flags |= MSG_MORE;
	if (tag_vec.iov_len)
		page_msg.msg_flags |= MSG_MORE;
	WRITE_ONCE(conn->sock->sk->sk_sndtimeo, ics_left(deadline));
	ics_signals_hold(&saved);
	ret = kernel_sendmsg(conn->sock, &msg, head, nr_head, head_bytes);
	if (ret == head_bytes && nr_pages) {
		ret = sock_sendmsg(conn->sock, &page_msg);
		if (ret == page_bytes && tag_vec.iov_len) {
			struct msghdr tag_msg = { .msg_flags = MSG_NOSIGNAL };

			ret = kernel_sendmsg(conn->sock, &tag_msg, &tag_vec, 1,
					     tag_vec.iov_len);
			ret = ret == tag_vec.iov_len ? page_bytes : ret;
		}
		/* the head went: anything short of the rest is a cut frame */
		ret = ret == page_bytes ? head_bytes : ret < 0 ? ret : -EPIPE;
		if (ret == -ENOMEM || ret == -ENOBUFS)
			ret = -EPIPE;
	}
	ics_signals_release(&saved);
	if (ret == head_bytes) {
		ics_count(ICS_CNT_FRAMES_TX);
		ics_count_add(ICS_CNT_BYTES_TX, total + page_bytes);
		ret = 0;
		goto out;
	}
	/*
	 * No memory here for the frame: TCP and kernel TLS queue nothing when
	 * they return an error, so the stream is whole and the connection,
	 * which other callers share, stays.  The caller hears ENOMEM.  The
	 * frame was never sent, so neither was its number.
	 */
	if (ics_no_local_memory(ret)) {
		if (tagged)
			conn->tx_mac.seq--;
		ret = -ENOMEM;
		goto out;
	}
	/* A partial frame leaves the stream unparseable: drop it. */
	ics_conn_kill(conn);
	ret = ret < 0 && ret != -EAGAIN ? ret : -ETIMEDOUT;
	/* the calls on it fail ENOTCONN: say why once */
	pr_info_ratelimited("node %u: a send of %zu bytes failed (%d): connection reset\n",
			    conn->node, total, ret);
out:
	mutex_unlock(&conn->send_lock);
	memzero_explicit(tag, sizeof(tag));
	kfree(bvec);
	return ret;
}

int ics_conn_send(struct ics_conn *conn, const struct ics_hdr *hdr,
		  const void *body, size_t len, struct page *const *pages,
		  unsigned int nr_pages, unsigned long deadline)
{
	struct kvec vec[2] = {
		{ .iov_base = (void *)hdr, .iov_len = sizeof(*hdr) },
		{ .iov_base = (void *)body, .iov_len = len },
	};

	return ics_conn_send_raw(conn, vec, len ? 2 : 1, sizeof(*hdr) + len,
				 pages, nr_pages, deadline);
}

void ics_put_pages(struct page *const *pages, unsigned int nr)
{
	unsigned int i;

	for (i = 0; pages && i < nr; i++)
		if (pages[i])
			put_page(pages[i]);
}
EXPORT_SYMBOL_GPL(ics_put_pages);

/* ics_put_pages() and the array itself. */
void ics_free_pages(struct page **pages, unsigned int nr)
{
	ics_put_pages(pages, nr);
	kfree(pages);
}

/* ------------------------------------------------------- life and death */

static void ics_rx_work_fn(struct work_struct *work);

static void ics_conn_queue_rx(struct ics_conn *conn)
{
	kref_get(&conn->ref);
	if (!queue_work(ics_rx_wq, &conn->rx_work))
		ics_conn_put(conn);	/* already queued: not the last reference */
}

static void ics_hs_timer_fn(struct timer_list *t)
{
	struct ics_conn *conn = from_timer(conn, t, hs_timer);

	/* rx_work sees the deadline has passed; a dead one is queued already */
	if (!test_bit(ICS_CONN_DEAD, &conn->flags))
		ics_conn_queue_rx(conn);
}

static struct ics_conn *ics_conn_alloc(unsigned int node, enum ics_chan chan,
				       bool outgoing)
{
	struct ics_conn *conn = kzalloc(sizeof(*conn), GFP_KERNEL);

	if (!conn)
		return NULL;
	conn->hs = ics_auth_alloc();
	if (!conn->hs) {
		kfree(conn);
		return NULL;
	}
	kref_init(&conn->ref);		/* the connection's life */
	conn->node = node;
	conn->chan = chan;
	conn->outgoing = outgoing;
	mutex_init(&conn->send_lock);
	INIT_WORK(&conn->rx_work, ics_rx_work_fn);
	xa_init_flags(&conn->pending, XA_FLAGS_ALLOC1);
	timer_setup(&conn->hs_timer, ics_hs_timer_fn, 0);
	init_completion(&conn->ready);
	conn->ready_status = -ENOTCONN;
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
	if (conn->sock)
		sock_release(conn->sock);
	kvfree(conn->rx_body);
	ics_free_pages(conn->rx_pages, le32_to_cpu(conn->rx_nr_pages));
	kfree(conn->rx_bvec);
	ics_auth_free(conn->hs);
	kfree_sensitive(conn);	/* the session keys of protect=auth */
}

void ics_conn_put(struct ics_conn *conn)
{
	kref_put(&conn->ref, ics_conn_release);
}

/* Marks @conn dead and has rx_work tear it down. */
void ics_conn_kill(struct ics_conn *conn)
{
	if (test_and_set_bit(ICS_CONN_DEAD, &conn->flags))
		return;
	if (conn->sock)
		kernel_sock_shutdown(conn->sock, SHUT_RDWR);
	if (ics_conn_authed(conn))
		ics_count(ICS_CNT_DISCONNECTS);
	if (test_bit(ICS_CONN_ATTACHED, &conn->flags))
		ics_conn_queue_rx(conn);
}

static void ics_sk_data_ready(struct sock *sk)
{
	struct ics_conn *conn;

	read_lock_bh(&sk->sk_callback_lock);
	conn = sk->sk_user_data;
	/*
	 * ics_conn_kill() queued a dead one's teardown; queueing again from
	 * softirq while ics_exit() drains the workqueue would be refused.
	 */
	if (conn && !test_bit(ICS_CONN_DEAD, &conn->flags))
		ics_conn_queue_rx(conn);
	read_unlock_bh(&sk->sk_callback_lock);
}

/* Peer closed or reset: rx_work then reads the end of the stream. */
static void ics_sk_state_change(struct sock *sk)
{
	ics_sk_data_ready(sk);
}

static void ics_conn_attach(struct ics_conn *conn)
{
	struct sock *sk = conn->sock->sk;

	kref_get(&conn->ref);		/* the callbacks' */
	set_bit(ICS_CONN_ATTACHED, &conn->flags);
	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = conn;
	sk->sk_data_ready = ics_sk_data_ready;
	sk->sk_state_change = ics_sk_state_change;
	write_unlock_bh(&sk->sk_callback_lock);
}

/*
 * After this no callback can reach @conn.  Our callbacks stay installed
 * (kernel TLS keeps a copy of data_ready) and do nothing without
 * sk_user_data; the socket is released with the connection.
 */
static void ics_conn_detach(struct ics_conn *conn)
{
	struct sock *sk = conn->sock->sk;

	if (!test_and_clear_bit(ICS_CONN_ATTACHED, &conn->flags))
		return;
	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = NULL;
	write_unlock_bh(&sk->sk_callback_lock);
	ics_conn_put(conn);
}

/* Tears @conn down once: fails its calls, frees its slot, drops its life. */
static void ics_conn_close(struct ics_conn *conn)
{
	struct ics_peer *peer;

	ics_conn_kill(conn);
	if (test_and_set_bit(ICS_CONN_CLOSED, &conn->flags))
		return;
	if (conn->sock)
		ics_conn_detach(conn);
	/* rx_work is done with the connection: a frame it holds part of is cut short. */
	if (conn->rx_got >= sizeof(conn->rx_hdr))
		ics_count(ICS_CNT_TRUNCATED);
	del_timer_sync(&conn->hs_timer);
	if (test_and_clear_bit(ICS_CONN_HS_COUNTED, &conn->flags))
		atomic_dec(&ics_handshakes);
	ics_fail_pending(conn, test_bit(ICS_CONN_NODE_DOWN, &conn->flags) ?
			 -EHOSTDOWN : -ENOTCONN);
	complete_all(&conn->ready);	/* ready_status says why, if not authed */
	if (conn->outgoing) {
		peer = &ics_peers[conn->node];
		mutex_lock(&peer->lock);
		if (peer->out[conn->chan] == conn) {
			peer->out[conn->chan] = NULL;
			ics_conn_put(conn);
		}
		mutex_unlock(&peer->lock);
	}
	ics_conn_put(conn);		/* its life */
}

/* ---------------------------------------------------------------- receive */

/* Reads what has arrived, up to @len bytes: their count, -EAGAIN or an error. */
static int ics_recv_msg(struct ics_conn *conn, struct msghdr *msg)
{
	int ret = sock_recvmsg(conn->sock, msg, MSG_DONTWAIT);

	if (ret == 0)
		return -ECONNRESET;
	if (ret == -EBADMSG) {
		/* A TLS record that failed authentication: tampered or injected. */
		ics_count(ICS_CNT_BAD_RECORD);
		pr_warn_ratelimited("node %u: a record failed authentication: resetting\n",
				    conn->node);
	}
	return ret;
}

static int ics_recv_some(struct ics_conn *conn, void *buf, size_t len)
{
	struct kvec vec = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { };

	iov_iter_kvec(&msg.msg_iter, ITER_DEST, &vec, 1, len);
	return ics_recv_msg(conn, &msg);
}

/*
 * protect=auth: reads the tag that follows the frame's @end bytes and
 * checks it over everything the frame brought (@body: what of its body is
 * not in pages).  0 when the frame may be delivered.
 */
static int ics_rx_tag(struct ics_conn *conn, size_t end, void *body,
		      size_t body_len)
{
	struct kvec vec[2] = {
		{ .iov_base = &conn->rx_hdr, .iov_len = sizeof(conn->rx_hdr) },
		{ .iov_base = body, .iov_len = body_len },
	};
	bool paged = conn->rx_hdr.kind & ICS_KIND_PAGES;
	int ret;

	if (!conn->rx_tagged)
		return 0;
	while (conn->rx_got < end + ICS_FRAME_TAG_LEN) {
		ret = ics_recv_some(conn, conn->rx_tag + (conn->rx_got - end),
				    end + ICS_FRAME_TAG_LEN - conn->rx_got);
		if (ret < 0)
			return ret;
		conn->rx_got += ret;
	}
	if (ics_mac_verify(&conn->rx_mac, vec, body_len ? 2 : 1,
			   paged ? conn->rx_pages : NULL,
			   paged ? le32_to_cpu(conn->rx_nr_pages) : 0,
			   conn->rx_tag))
		return 0;
	ics_count(ICS_CNT_BAD_RECORD);
	pr_warn_ratelimited("node %u: a frame failed authentication: resetting\n",
			    conn->node);
	return -EBADMSG;
}

static bool ics_rx_kind_ok(const struct ics_conn *conn, u8 kind)
{
	kind &= ~ICS_KIND_PAGES;
	if (conn->outgoing)
		return kind == ICS_KIND_REPLY;
	return kind == ICS_KIND_CALL || kind == ICS_KIND_ONEWAY;
}

/* Checks a complete header and gets a buffer for its body. */
static int ics_rx_header(struct ics_conn *conn)
{
	const struct ics_hdr *hdr = &conn->rx_hdr;
	size_t len = le32_to_cpu(hdr->len);
	bool authed = ics_conn_authed(conn);

	if (!ics_hdr_valid(hdr)) {
		/* The stream cannot be resynchronised after this. */
		ics_count(ics_hdr_oversized(hdr) ? ICS_CNT_OVERSIZED :
			  ICS_CNT_BAD_HEADER);
		return -EPROTO;
	}
	if (!authed) {
		/* Before authentication: one fixed-size AUTH frame at a time. */
		if (hdr->kind != ICS_KIND_AUTH ||
		    (le32_to_cpu(hdr->status) ? len != 0 :
		     le16_to_cpu(hdr->op) != ics_auth_expected_step(conn) ||
		     len != ics_auth_expected_len(conn))) {
			ics_count(ICS_CNT_BAD_HEADER);
			return -EPROTO;
		}
		return 0;
	}
	if (!ics_rx_kind_ok(conn, hdr->kind)) {
		ics_count(ICS_CNT_BAD_HEADER);
		return -EPROTO;
	}
	if (hdr->kind & ICS_KIND_PAGES) {
		/* its buffers come once its page count is in (ics_rx_paged) */
		if (len < sizeof(conn->rx_nr_pages)) {
			ics_count(ICS_CNT_BAD_HEADER);
			return -EPROTO;
		}
		return 0;
	}
	if (len) {
		conn->rx_body = kvmalloc(len, GFP_KERNEL);
		if (!conn->rx_body)
			return -ENOMEM;
	}
	return 0;
}

static int ics_rx_authed(struct ics_conn *conn)
{
	del_timer(&conn->hs_timer);
	if (test_and_clear_bit(ICS_CONN_HS_COUNTED, &conn->flags))
		atomic_dec(&ics_handshakes);
	conn->ready_status = 0;
	/*
	 * Publishes the handshake's results (protection, node, ready_status)
	 * before the flag; pairs with smp_load_acquire() in ics_conn_authed().
	 */
	smp_store_release(&conn->authed, true);
	if (!conn->outgoing)
		ics_count(ICS_CNT_CONNECTS);
	complete_all(&conn->ready);
	return 0;
}

/* A whole frame has arrived: hand it on. */
static int ics_rx_deliver(struct ics_conn *conn)
{
	bool paged = conn->rx_hdr.kind & ICS_KIND_PAGES;
	void *body = conn->rx_body;
	size_t len = le32_to_cpu(conn->rx_hdr.len);
	struct page **pages = conn->rx_pages;
	unsigned int nr = paged ? le32_to_cpu(conn->rx_nr_pages) : 0;
	int ret;

	conn->rx_body = NULL;
	conn->rx_pages = NULL;
	conn->rx_nr_pages = 0;
	kfree(conn->rx_bvec);
	conn->rx_bvec = NULL;
	conn->rx_got = 0;
	ics_count(ICS_CNT_FRAMES_RX);
	ics_count_add(ICS_CNT_BYTES_RX, sizeof(conn->rx_hdr) + len);
	if (paged)
		len = conn->rx_head;
	if (!ics_conn_authed(conn)) {
		ret = ics_auth_rx(conn);
		if (ret == -EACCES || ret == -EPROTO)
			ics_auth_refuse(conn);
		if (ret < 0)
			conn->ready_status = ret == -EACCES || ret == -ECONNREFUSED ?
					     -EACCES : -ENOTCONN;
		return ret > 0 ? ics_rx_authed(conn) : ret;
	}
	if (conn->outgoing) {
		ics_rx_reply(conn, &conn->rx_hdr, &body, len, &pages, nr);
		kvfree(body);
		ics_free_pages(pages, nr);
	} else {
		/* takes @body and @pages */
		ics_rx_call(conn, &conn->rx_hdr, body, len, pages, nr);
	}
	return 0;
}

/*
 * An ICS_KIND_PAGES frame's page count is in: check it against the frame
 * length and get the buffer for the rest of the packed message (which
 * starts with the count) and the array for the pages.
 */
static int ics_rx_paged_start(struct ics_conn *conn, size_t len)
{
	u32 n = le32_to_cpu(conn->rx_nr_pages);
	size_t page_bytes = (size_t)n * ICS_PAGE_SIZE;

	if (n > ICS_MAX_PAGES || page_bytes + sizeof(n) > len ||
	    len - page_bytes > ICS_MAX_BODY) {
		conn->rx_nr_pages = 0;
		ics_count(ICS_CNT_BAD_HEADER);
		return -EPROTO;
	}
	conn->rx_head = len - page_bytes;
	conn->rx_body = kvmalloc(conn->rx_head, GFP_KERNEL);
	if (n)
		conn->rx_pages = kcalloc(n, sizeof(*conn->rx_pages), GFP_KERNEL);
	if (!conn->rx_body || (n && !conn->rx_pages))
		goto nomem;
	while (n--) {
		conn->rx_pages[n] = alloc_page(GFP_HIGHUSER_MOVABLE);
		if (!conn->rx_pages[n])
			goto nomem;
	}
	n = le32_to_cpu(conn->rx_nr_pages);
	if (n) {
		conn->rx_bvec = ics_pages_bvec(conn->rx_pages, n);
		if (!conn->rx_bvec)
			goto nomem;
	}
	memcpy(conn->rx_body, &conn->rx_nr_pages, sizeof(conn->rx_nr_pages));
	return 0;
nomem:
	kvfree(conn->rx_body);
	conn->rx_body = NULL;
	ics_free_pages(conn->rx_pages, le32_to_cpu(conn->rx_nr_pages));
	conn->rx_pages = NULL;
	conn->rx_nr_pages = 0;
	return -ENOMEM;
}

/* Reads what has arrived of the pages, @done bytes of which are in. */
static int ics_recv_pages(struct ics_conn *conn, size_t done)
{
	unsigned int nr = le32_to_cpu(conn->rx_nr_pages);
	struct msghdr msg = { };

	iov_iter_bvec(&msg.msg_iter, ITER_DEST, conn->rx_bvec, nr,
		      (size_t)nr * ICS_PAGE_SIZE);
	iov_iter_advance(&msg.msg_iter, done);
	return ics_recv_msg(conn, &msg);
}

/*
 * The body of an ICS_KIND_PAGES frame: its page count, the rest of the
 * packed message, then the pages, read straight into pages of their own.
 */
static int ics_rx_paged(struct ics_conn *conn)
{
	const size_t hlen = sizeof(conn->rx_hdr);
	const size_t clen = sizeof(conn->rx_nr_pages);
	size_t len = le32_to_cpu(conn->rx_hdr.len), off;
	int ret;

	while (conn->rx_got < hlen + clen) {
		ret = ics_recv_some(conn, (u8 *)&conn->rx_nr_pages +
				    (conn->rx_got - hlen),
				    hlen + clen - conn->rx_got);
		if (ret < 0)
			return ret;
		conn->rx_got += ret;
	}
	if (!conn->rx_body) {
		ret = ics_rx_paged_start(conn, len);
		if (ret)
			return ret;
	}
	while (conn->rx_got < hlen + conn->rx_head) {
		off = conn->rx_got - hlen;
		ret = ics_recv_some(conn, conn->rx_body + off,
				    conn->rx_head - off);
		if (ret < 0)
			return ret;
		conn->rx_got += ret;
	}
	while (conn->rx_got < hlen + len) {
		ret = ics_recv_pages(conn, conn->rx_got - hlen - conn->rx_head);
		if (ret < 0)
			return ret;
		conn->rx_got += ret;
	}
	ret = ics_rx_tag(conn, hlen + len, conn->rx_body, conn->rx_head);
	return ret ?: ics_rx_deliver(conn);
}

/*
 * Reads towards the next frame: 0 when one was handled, -EAGAIN when the
 * socket has nothing more for now, or an error.  A short read is not
 * "nothing more": only recvmsg's own -EAGAIN is, since the callback that
 * would bring us back (data, or the peer's FIN) may already have fired.
 */
static int ics_rx_frame(struct ics_conn *conn)
{
	const size_t hlen = sizeof(conn->rx_hdr);
	size_t len;
	void *buf;
	int ret;

	while (conn->rx_got < hlen) {
		ret = ics_recv_some(conn, (u8 *)&conn->rx_hdr + conn->rx_got,
				    hlen - conn->rx_got);
		if (ret < 0)
			return ret;
		conn->rx_got += ret;
		if (conn->rx_got < hlen)
			continue;
		ret = ics_rx_header(conn);
		if (ret) {
			conn->rx_got = 0;	/* counted as a bad header, not a cut one */
			return ret;
		}
	}
	if (conn->rx_hdr.kind & ICS_KIND_PAGES)
		return ics_rx_paged(conn);	/* authenticated: ics_rx_header() */
	len = le32_to_cpu(conn->rx_hdr.len);
	buf = ics_conn_authed(conn) ? conn->rx_body : ics_auth_rx_buf(conn);
	while (conn->rx_got < hlen + len) {
		ret = ics_recv_some(conn, buf + (conn->rx_got - hlen),
				    hlen + len - conn->rx_got);
		if (ret < 0)
			return ret;	/* a frame cut short is counted at close */
		conn->rx_got += ret;
	}
	ret = ics_rx_tag(conn, hlen + len, buf, len);
	return ret ?: ics_rx_deliver(conn);
}

static const char *ics_chan_name(enum ics_chan chan)
{
	return chan == ICS_CHAN_PRIO ? "prio" : "bulk";
}

/*
 * An authenticated connection ended by its peer or by what came on it
 * (not by us): say so, since every call on it fails ENOTCONN and the
 * reconnect that follows may fail too.
 */
static void ics_conn_lost(struct ics_conn *conn, int why)
{
	if (!ics_conn_authed(conn) || test_bit(ICS_CONN_DEAD, &conn->flags))
		return;
	pr_info_ratelimited("node %u: %s %s connection lost: %d\n", conn->node,
			    conn->outgoing ? "outgoing" : "incoming",
			    ics_chan_name(conn->chan), why);
}

static void ics_rx_work_fn(struct work_struct *work)
{
	struct ics_conn *conn = container_of(work, struct ics_conn, rx_work);
	int budget = ICS_RX_BUDGET, ret = 0;

	while (!test_bit(ICS_CONN_DEAD, &conn->flags)) {
		ret = ics_rx_frame(conn);
		if (ret == -EAGAIN) {
			if (ics_conn_authed(conn) ||
			    time_before(jiffies, conn->hs_deadline))
				goto out;
			ics_count(ICS_CNT_HS_TIMEOUTS);
			conn->ready_status = -ETIMEDOUT;
			break;
		}
		if (ret) {
			ics_conn_lost(conn, ret);
			break;
		}
		if (!--budget) {
			/* Let other connections' work run; come back at once. */
			ics_conn_queue_rx(conn);
			goto out;
		}
	}
	ics_conn_close(conn);
out:
	ics_conn_put(conn);	/* the queuer's */
}

/* ------------------------------------------------------------ connecting */

static void ics_sock_tune(struct socket *sock)
{
	struct sock *sk = sock->sk;

	tcp_sock_set_nodelay(sk);
	WRITE_ONCE(sk->sk_sndtimeo, ICS_SEND_TIMEOUT);
	/* ICS may run in memory reclaim paths of CFS later on. */
	sk->sk_allocation = GFP_NOFS;
}

/* Starts the handshake of @conn, whose socket is connected: its deadline starts now. */
static int ics_conn_start(struct ics_conn *conn)
{
	conn->hs_deadline = jiffies + ICS_HANDSHAKE_TIMEOUT;
	mod_timer(&conn->hs_timer, conn->hs_deadline);
	ics_conn_attach(conn);
	/* Killed before the callbacks were set: nobody else queues the teardown. */
	if (test_bit(ICS_CONN_DEAD, &conn->flags))
		ics_conn_queue_rx(conn);
	return ics_auth_start(conn);
}

/* A connection accepted by the listener (which has vetted @addr). */
struct ics_conn *ics_conn_accepted(struct socket *sock, __be32 addr)
{
	struct ics_conn *conn = ics_conn_alloc(0, ICS_CHAN_PRIO, false);

	if (!conn)
		return NULL;
	conn->sock = sock;
	conn->addr = addr;
	ics_sock_tune(sock);
	set_bit(ICS_CONN_HS_COUNTED, &conn->flags);	/* the listener counted it */
	ics_conn_start(conn);
	/* The HELLO may be queued already, before the callbacks were set. */
	ics_conn_queue_rx(conn);
	return conn;
}

/* Handshakes in progress on connections accepted from @addr. */
unsigned int ics_conns_handshaking_from(__be32 addr)
{
	struct ics_conn *conn;
	unsigned int n = 0;

	mutex_lock(&ics_conns_lock);
	list_for_each_entry(conn, &ics_conns, all)
		if (!conn->outgoing && conn->addr == addr &&
		    test_bit(ICS_CONN_HS_COUNTED, &conn->flags))
			n++;
	mutex_unlock(&ics_conns_lock);
	return n;
}

/* Connects @conn's socket to @addr and sends HELLO within the caller's deadline. */
static int ics_conn_connect(struct ics_conn *conn, __be32 addr,
			    unsigned long deadline)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = addr,
		.sin_port = htons(ICS_PORT),
	};
	struct socket *sock;
	sigset_t saved;
	int ret;

	ret = sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &sock);
	if (ret)
		return ret;
	sock->sk->sk_allocation = GFP_NOFS;
	WRITE_ONCE(sock->sk->sk_sndtimeo,
		   min_t(long, ics_left(deadline), ICS_CONNECT_TIMEOUT));
	ics_signals_hold(&saved);
	ret = kernel_connect(sock, (struct sockaddr *)&sin, sizeof(sin), 0);
	ics_signals_release(&saved);
	if (ret) {
		sock_release(sock);
		return ret;
	}
	ics_sock_tune(sock);
	mutex_lock(&conn->send_lock);
	conn->sock = sock;
	conn->addr = addr;
	mutex_unlock(&conn->send_lock);
	return ics_conn_start(conn);
}

/*
 * An authenticated outgoing connection to @node on @chan, made if needed,
 * or an ERR_PTR: -EHOSTDOWN once the node has been declared down since the
 * caller read @down_gen, -ETIMEDOUT at @deadline, -EACCES if the peer
 * refused our key, -ENOTCONN otherwise, -EINTR on a fatal signal; on
 * the @first try, -EAGAIN when our own connect reached the peer and it
 * closed the connection mid-handshake (no backoff then).
 */
static struct ics_conn *ics_conn_try_out(unsigned int node,
					 enum ics_chan chan,
					 unsigned long deadline,
					 unsigned int down_gen, bool first)
{
	struct ics_peer *peer = &ics_peers[node];
	struct ics_conn *conn;
	bool connect = false, reached = false, again = false;
	__be32 addr = 0;
	long left;
	int ret;

	mutex_lock(&peer->lock);
	if (peer->down_gen != down_gen) {
		mutex_unlock(&peer->lock);
		return ERR_PTR(-EHOSTDOWN);
	}
	conn = peer->out[chan];
	if (conn && test_bit(ICS_CONN_DEAD, &conn->flags)) {
		peer->out[chan] = NULL;
		ics_conn_put(conn);
		conn = NULL;
	}
	if (!conn) {
		if (!peer->configured || ics_listen_stopping() ||
		    time_before(jiffies, peer->retry_after)) {
			mutex_unlock(&peer->lock);
			return ERR_PTR(-ENOTCONN);
		}
		conn = ics_conn_alloc(node, chan, true);
		if (!conn) {
			mutex_unlock(&peer->lock);
			return ERR_PTR(-ENOMEM);
		}
		kref_get(&conn->ref);		/* the slot's */
		peer->out[chan] = conn;
		addr = peer->addr;
		connect = true;
	}
	kref_get(&conn->ref);			/* the caller's */
	mutex_unlock(&peer->lock);

	if (connect) {
		ret = ics_conn_connect(conn, addr, deadline);
		if (ret) {
			conn->ready_status = ret;
			ics_conn_close(conn);	/* counted and backed off below */
		}
		reached = !ret;
	}
	if (!ics_conn_authed(conn)) {
		left = wait_for_completion_killable_timeout(&conn->ready,
							    ics_left(deadline));
		if (left <= 0) {
			ics_conn_put(conn);
			return ERR_PTR(left < 0 ? -EINTR : -ETIMEDOUT);
		}
	}
	if (!ics_conn_authed(conn) ||
	    test_bit(ICS_CONN_DEAD, &conn->flags)) {
		ret = conn->ready_status == -EACCES ? -EACCES :
		      test_bit(ICS_CONN_NODE_DOWN, &conn->flags) ? -EHOSTDOWN :
		      -ENOTCONN;
		/*
		 * Our own connect found no memory (socket, buffers): that says
		 * nothing of the peer, so no backoff for the other callers.
		 */
		if (connect && ics_no_local_memory(conn->ready_status)) {
			ics_count(ICS_CNT_CONNECT_FAILURES);
			ics_conn_put(conn);
			return ERR_PTR(-ENOMEM);
		}
		if (connect && ret != -EHOSTDOWN) {
			ics_count(ICS_CNT_CONNECT_FAILURES);
			pr_info_ratelimited("connecting to node %u (%s): %d\n",
					    node, ics_chan_name(chan),
					    conn->ready_status);
			again = first && reached && ret == -ENOTCONN &&
				conn->ready_status == -ENOTCONN &&
				time_before(jiffies, deadline);
			if (!again) {
				mutex_lock(&peer->lock);
				peer->retry_after = jiffies +
						    ICS_RECONNECT_BACKOFF;
				mutex_unlock(&peer->lock);
			}
		}
		ics_conn_put(conn);
		return ERR_PTR(again ? -EAGAIN : ret);
	}
	if (connect)
		ics_count(ICS_CNT_CONNECTS);
	return conn;
}

/*
 * ics_conn_try_out(), and once more at once when the peer accepted the
 * TCP connection but closed it mid-handshake: it is alive, so a caller
 * should not hear ENOTCONN (a migrate() saw EHOSTDOWN for a member node
 * that way) and every other caller should not be backed off for it.
 */
struct ics_conn *ics_conn_get_out(unsigned int node, enum ics_chan chan,
				  unsigned long deadline, unsigned int down_gen)
{
	struct ics_conn *conn;

	conn = ics_conn_try_out(node, chan, deadline, down_gen, true);
	if (conn == ERR_PTR(-EAGAIN))
		conn = ics_conn_try_out(node, chan, deadline, down_gen, false);
	return conn;
}

/* ------------------------------------------------------------ teardown */

void ics_conns_kill_node(unsigned int node, bool node_down)
{
	struct ics_conn *conn;

	if (node_down) {
		mutex_lock(&ics_peers[node].lock);
		ics_peers[node].down_gen++;
		mutex_unlock(&ics_peers[node].lock);
	}
again:
	mutex_lock(&ics_conns_lock);
	list_for_each_entry(conn, &ics_conns, all) {
		/*
		 * Handshakes in progress are left alone: under load nodes declare
		 * each other down while reconnecting, and killing those would keep
		 * them apart.  A call that started before the nodedown fails by
		 * down_gen instead.
		 */
		if (conn->node != node || !ics_conn_authed(conn) ||
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

void ics_conns_shutdown_all(void)
{
	struct ics_conn *conn;

again:
	mutex_lock(&ics_conns_lock);
	list_for_each_entry(conn, &ics_conns, all) {
		if (test_bit(ICS_CONN_DEAD, &conn->flags) ||
		    !kref_get_unless_zero(&conn->ref))
			continue;
		mutex_unlock(&ics_conns_lock);
		ics_conn_kill(conn);
		/*
		 * Its teardown is queued: from now on no socket callback may
		 * queue work, since the caller drains and destroys the queue.
		 */
		if (conn->sock)
			ics_conn_detach(conn);
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
		up = ics_conn_authed(conn) &&
		     !test_bit(ICS_CONN_DEAD, &conn->flags);
	mutex_unlock(&ics_peers[node].lock);
	return up;
}
EXPORT_SYMBOL_GPL(ics_peer_connected);
