/* SPDX-License-Identifier: GPL-2.0-only */
/* ICS module internals shared by its source files. */
#ifndef _SSI_ICS_INTERNAL_H
#define _SSI_ICS_INTERNAL_H

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/net.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <uapi/linux/ssi.h>
#include "ics.h"
#include "ssi_config.h"

#define ICS_PORT		CONFIG_SSI_ICS_PORT

#define ICS_NONCE_LEN		32
#define ICS_MAC_LEN		32
#define ICS_AUTH_TIMEOUT	(2 * HZ)
#define ICS_CONNECT_TIMEOUT	1	/* seconds */
#define ICS_SEND_TIMEOUT	5	/* seconds */
/* After a failed connect, fail fast for this long instead of retrying. */
#define ICS_RECONNECT_BACKOFF	(HZ / 2)

enum ics_counter {
	ICS_CNT_FRAMES_RX,
	ICS_CNT_FRAMES_TX,
	ICS_CNT_BYTES_RX,
	ICS_CNT_BYTES_TX,
	ICS_CNT_CALLS,
	ICS_CNT_CALL_ERRORS,
	ICS_CNT_CALL_TIMEOUTS,
	ICS_CNT_ONEWAY_SENT,
	ICS_CNT_DISPATCHED,
	ICS_CNT_BAD_HEADER,
	ICS_CNT_OVERSIZED,
	ICS_CNT_TRUNCATED,
	ICS_CNT_UNKNOWN_OP,
	ICS_CNT_MALFORMED_BODY,
	ICS_CNT_STALE_REPLIES,
	ICS_CNT_AUTH_OK,
	ICS_CNT_AUTH_REFUSED,
	ICS_CNT_CONNECTS,
	ICS_CNT_CONNECT_FAILURES,
	ICS_CNT_DISCONNECTS,
	ICS_NR_COUNTERS
};

extern atomic64_t ics_counters[ICS_NR_COUNTERS];
extern const char *const ics_counter_names[ICS_NR_COUNTERS];

static inline void ics_count(enum ics_counter c)
{
	atomic64_inc(&ics_counters[c]);
}

static inline void ics_count_add(enum ics_counter c, s64 n)
{
	atomic64_add(n, &ics_counters[c]);
}

/*
 * One authenticated TCP connection.  Outgoing connections carry this
 * node's calls and one-way messages to @node and the replies back;
 * incoming ones carry @node's calls to us and our replies.
 */
struct ics_conn {
	struct kref ref;
	struct socket *sock;
	unsigned int node;
	enum ics_chan chan;
	bool outgoing;
	bool authed;
	unsigned long flags;	/* ICS_CONN_* bits */
	struct mutex send_lock;
	struct work_struct rx_work;
	struct list_head all;	/* ics_conns */
	/* outgoing: calls waiting for a reply, by xid */
	struct xarray pending;
	u32 next_xid;
};

#define ICS_CONN_DEAD		0	/* shut down, fails every send */
#define ICS_CONN_NODE_DOWN	1	/* killed because the node died */

/* A call waiting for its reply; lives on the caller's stack. */
struct ics_pending {
	struct completion done;
	void *rep;
	size_t rep_cap;
	size_t rep_len;
	int status;
};

struct ics_peer {
	struct mutex lock;	/* connect, out[] */
	__be32 addr;
	bool configured;
	unsigned long retry_after;	/* jiffies; connect backoff */
	struct ics_conn *out[ICS_NR_CHANS];
};

extern struct ics_peer ics_peers[SSI_MAX_NODES + 1];
extern struct workqueue_struct *ics_rx_wq;
extern struct workqueue_struct *ics_dispatch_wq;
extern struct workqueue_struct *ics_prio_wq;

/* ics_auth.c */
int ics_auth_init(void);
void ics_auth_exit(void);
int ics_auth_set_key(const u8 *key, size_t len);
bool ics_auth_have_key(void);
int ics_auth_client(struct socket *sock, unsigned int node,
		    enum ics_chan chan);
int ics_auth_server(struct socket *sock, __be32 peer_addr,
		    unsigned int *node, enum ics_chan *chan);

/* ics_conn.c */
int ics_sock_recv(struct socket *sock, void *buf, size_t len);
int ics_conn_send(struct ics_conn *conn, const struct ics_hdr *hdr,
		  const void *body, size_t len);
struct ics_conn *ics_conn_get_out(unsigned int node, enum ics_chan chan);
void ics_conn_put(struct ics_conn *conn);
void ics_conn_kill(struct ics_conn *conn);
void ics_conns_kill_node(unsigned int node, bool node_down);
int ics_listen_start(void);
void ics_listen_stop(void);
void ics_conns_shutdown_all(void);
bool ics_hdr_valid(const struct ics_hdr *hdr);
void ics_hdr_fill(struct ics_hdr *hdr, enum ics_kind kind, u16 service,
		  u16 op, u16 op_version, size_t len, int status, u64 xid);

/* ics_rpc.c */
void ics_rx_call(struct ics_conn *conn, const struct ics_hdr *hdr,
		 void *body);
void ics_rx_reply(struct ics_conn *conn, const struct ics_hdr *hdr,
		  const void *body);
void ics_fail_pending(struct ics_conn *conn, int status);
void ics_rpc_exit(void);

#endif /* _SSI_ICS_INTERNAL_H */
