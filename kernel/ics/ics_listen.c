// SPDX-License-Identifier: GPL-2.0-only
/*
 * The ICS listener.  Its socket's data_ready queues the accept work, which
 * takes every waiting connection without blocking and admits it only if
 *   - it comes from an address in the cluster table,
 *   - that address has fewer than ICS_HS_PER_SOURCE handshakes going on,
 *   - fewer than ICS_HS_MAX handshakes are going on in all;
 * anything else is closed at once and counted (refused_address,
 * refused_busy).  An admitted connection has ICS_HANDSHAKE_TIMEOUT to
 * authenticate.  So what a stranger can hold here is nothing, and what a
 * table address (or someone spoofing one on the path) can hold before
 * authenticating is ICS_HS_PER_SOURCE sockets for 5 s at a time, never a
 * worker: receive runs from socket callbacks (ics_conn.c).
 */
#define pr_fmt(fmt) "ics: " fmt

#include <linux/in.h>
#include <linux/net.h>
#include <net/sock.h>

#include "ics_internal.h"

static struct socket *ics_listen_sock;
static struct work_struct ics_accept_work;
static bool ics_stopping;

/* Handshakes admitted and not yet over, on every accepted connection. */
atomic_t ics_handshakes = ATOMIC_INIT(0);

bool ics_listen_stopping(void)
{
	return READ_ONCE(ics_stopping);
}

static bool ics_addr_in_table(__be32 addr)
{
	unsigned int node;

	for (node = 1; node <= SSI_MAX_NODES; node++)
		if (READ_ONCE(ics_peers[node].configured) &&
		    READ_ONCE(ics_peers[node].addr) == addr)
			return true;
	return false;
}

static bool ics_admit(__be32 addr)
{
	if (!ics_addr_in_table(addr)) {
		ics_count(ICS_CNT_REFUSED_ADDRESS);
		return false;
	}
	if (ics_conns_handshaking_from(addr) >= ICS_HS_PER_SOURCE ||
	    !atomic_add_unless(&ics_handshakes, 1, ICS_HS_MAX)) {
		ics_count(ICS_CNT_REFUSED_BUSY);
		return false;
	}
	return true;
}

static void ics_accept_work_fn(struct work_struct *work)
{
	struct sockaddr_in sin;
	struct socket *sock;
	int ret;

	while (!READ_ONCE(ics_stopping)) {
		ret = kernel_accept(ics_listen_sock, &sock, O_NONBLOCK);
		if (ret)
			return;	/* -EAGAIN: data_ready brings us back */
		ret = kernel_getpeername(sock, (struct sockaddr *)&sin);
		if (ret < 0 || !ics_admit(sin.sin_addr.s_addr)) {
			sock_release(sock);
			continue;
		}
		if (!ics_conn_accepted(sock, sin.sin_addr.s_addr)) {
			atomic_dec(&ics_handshakes);
			sock_release(sock);
		}
		cond_resched();
	}
}

/* sk_user_data is set while the accept work may be queued. */
static void ics_listen_data_ready(struct sock *sk)
{
	read_lock_bh(&sk->sk_callback_lock);
	if (sk->sk_user_data)
		queue_work(ics_rx_wq, &ics_accept_work);
	read_unlock_bh(&sk->sk_callback_lock);
}

int ics_listen_start(void)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_ANY),
		.sin_port = htons(ICS_PORT),
	};
	struct sock *sk;
	int ret;

	ret = sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &ics_listen_sock);
	if (ret)
		return ret;
	sk = ics_listen_sock->sk;
	sock_set_reuseaddr(sk);
	INIT_WORK(&ics_accept_work, ics_accept_work_fn);
	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = &ics_accept_work;
	sk->sk_data_ready = ics_listen_data_ready;
	write_unlock_bh(&sk->sk_callback_lock);
	ret = kernel_bind(ics_listen_sock, (struct sockaddr *)&sin,
			  sizeof(sin));
	if (!ret)
		ret = kernel_listen(ics_listen_sock, 64);
	if (ret) {
		pr_err("cannot listen on port %d: %d\n", ICS_PORT, ret);
		sock_release(ics_listen_sock);
		return ret;
	}
	return 0;
}

void ics_listen_stop(void)
{
	struct sock *sk = ics_listen_sock->sk;

	WRITE_ONCE(ics_stopping, true);
	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = NULL;
	write_unlock_bh(&sk->sk_callback_lock);
	kernel_sock_shutdown(ics_listen_sock, SHUT_RDWR);
	cancel_work_sync(&ics_accept_work);
	sock_release(ics_listen_sock);
}
