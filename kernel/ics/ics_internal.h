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
#include <linux/timer.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <uapi/linux/ssi.h>
#include "ics.h"
#include "ssi_config.h"

#define ICS_PORT		CONFIG_SSI_ICS_PORT

#define ICS_NONCE_LEN		32
#define ICS_MAC_LEN		32
/*
 * One deadline for a whole handshake, TCP connect excluded.  A handshake
 * is four small frames and two HMACs, but 8 TCG guests booting on two host
 * cores took over 2 s for some (tests/cluster/test_vproc_security.py).
 */
#define ICS_HANDSHAKE_TIMEOUT	(5 * HZ * ICS_SLOW_KERNEL_FACTOR)
#define ICS_CONNECT_TIMEOUT	HZ
/*
 * A send longer than this resets the connection.  Scaled: a debug guest
 * whose CPU a moving process kept busy took over 5 s to send one 240 KiB
 * page reply, and the pre-copy's calls failed ENOTCONN.
 */
#define ICS_SEND_TIMEOUT	(5 * HZ * ICS_SLOW_KERNEL_FACTOR)
/* After a failed connect, fail fast for this long instead of retrying. */
#define ICS_RECONNECT_BACKOFF	(HZ / 2)
/*
 * Handshakes in progress on the accepting side: per source address and in
 * all.  A node opens two connections to us (prio, bulk) and may overlap a
 * reconnect with a dying pair: 4 per address never refuses a real node,
 * and 4 per table address bounds the whole pre-authentication state.
 */
#define ICS_HS_PER_SOURCE	4
#define ICS_HS_MAX		(ICS_HS_PER_SOURCE * SSI_MAX_NODES)
/* Frames one receive run handles before it yields its worker. */
#define ICS_RX_BUDGET		64

/* How frames after the handshake are protected (module parameter "protect"). */
enum ics_protect {
	ICS_PROTECT_TLS = 1,	/* kernel TLS 1.3, AES-128-GCM, keys from the handshake */
	ICS_PROTECT_NONE = 2,	/* trusted interconnect: the admin vouches for the wire */
	ICS_PROTECT_AUTH = 3,	/* a Poly1305 tag per frame: integrity, no secrecy */
};

#define ICS_MAC_KEY_LEN		32
#define ICS_FRAME_TAG_LEN	16

/* protect=auth: one direction of a connection (ics_mac.c) */
struct ics_mac {
	u8 key[ICS_MAC_KEY_LEN];
	u64 seq;		/* frames tagged or checked so far */
};

extern enum ics_protect ics_protect_mode;

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
	ICS_CNT_BAD_RECORD,
	ICS_CNT_REFUSED_ADDRESS,
	ICS_CNT_REFUSED_BUSY,
	ICS_CNT_HS_TIMEOUTS,
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

struct ics_handshake;

/*
 * One TCP connection, authenticated once @authed is set.  Outgoing
 * connections carry this node's calls and one-way messages to @node and
 * the replies back; incoming ones carry @node's calls to us and our
 * replies.  Nothing waits in a blocking receive: the socket's callbacks
 * queue @rx_work, which reads what has arrived without blocking, frame
 * by frame (@rx_hdr, @rx_got, @rx_body), and returns.
 *
 * References: one for the connection's life (dropped when it closes),
 * one while the socket callbacks may see it, one per queued @rx_work,
 * one in its peer's out[] slot, and one per user.
 */
struct ics_conn {
	struct kref ref;
	struct socket *sock;
	__be32 addr;		/* the peer's address */
	unsigned int node;	/* 0 until an incoming connection says who it is */
	enum ics_chan chan;
	bool outgoing;
	bool authed;		/* smp_store_release / smp_load_acquire */
	unsigned long flags;	/* ICS_CONN_* bits */
	struct mutex send_lock;
	struct work_struct rx_work;
	struct list_head all;	/* ics_conns */
	/* outgoing: calls waiting for a reply, by xid */
	struct xarray pending;
	u32 next_xid;
	/* the frame being received */
	struct ics_hdr rx_hdr;
	size_t rx_got;		/* bytes of header and body read so far */
	void *rx_body;
	size_t rx_head;		/* ICS_KIND_PAGES: bytes of body before the pages */
	__le32 rx_nr_pages;	/* ICS_KIND_PAGES: the count, as it came */
	struct page **rx_pages;
	struct bio_vec *rx_bvec;	/* over rx_pages, for recvmsg */
	u8 rx_tag[ICS_FRAME_TAG_LEN];	/* protect=auth: the frame's tag as it came */
	/* protect=auth: on once the handshake has set them (send_lock / rx_work) */
	bool tx_tagged;
	bool rx_tagged;
	struct ics_mac tx_mac;
	struct ics_mac rx_mac;
	/* until authenticated */
	struct ics_handshake *hs;
	unsigned long hs_deadline;
	struct timer_list hs_timer;
	struct completion ready;	/* outgoing: the handshake is over */
	int ready_status;		/* 0: authenticated, else why not */
};

static inline bool ics_conn_authed(const struct ics_conn *conn)
{
	/* Pairs with smp_store_release() when the handshake completes (ics_conn.c). */
	return smp_load_acquire(&conn->authed);
}

#define ICS_CONN_DEAD		0	/* shut down, fails every send */
#define ICS_CONN_NODE_DOWN	1	/* killed because the node died */
#define ICS_CONN_CLOSED		2	/* torn down (once) */
#define ICS_CONN_ATTACHED	3	/* the socket callbacks hold a reference */
#define ICS_CONN_HS_COUNTED	4	/* counted in the pending handshakes */

/* A call waiting for its reply; lives on the caller's stack. */
struct ics_pending {
	struct completion done;
	void *rep;		/* the caller's buffer, or the one taken */
	size_t rep_cap;
	size_t rep_len;
	int status;
	bool take;		/* take the received buffer, do not copy */
	unsigned int max_pages;	/* pages the reply may carry (takes them) */
	struct page **pages;
	unsigned int nr_pages;
};

struct ics_peer {
	struct mutex lock;	/* out[], retry_after; never held across I/O */
	__be32 addr;
	bool configured;
	unsigned int down_gen;	/* bumped each time the node is declared down */
	unsigned long retry_after;	/* jiffies; connect backoff */
	struct ics_conn *out[ICS_NR_CHANS];
};

extern struct ics_peer ics_peers[SSI_MAX_NODES + 1];
extern struct workqueue_struct *ics_rx_wq;
extern struct workqueue_struct *ics_dispatch_wq;
extern struct workqueue_struct *ics_prio_wq;

/* ics_auth.c: the handshake, driven by the frames ics_conn.c receives */
int ics_auth_init(void);
void ics_auth_exit(void);
int ics_auth_set_key(const u8 *key, size_t len);
bool ics_auth_have_key(void);
struct ics_handshake *ics_auth_alloc(void);
void ics_auth_free(struct ics_handshake *hs);
int ics_auth_start(struct ics_conn *conn);
size_t ics_auth_expected_len(const struct ics_conn *conn);
void *ics_auth_rx_buf(struct ics_conn *conn);
int ics_auth_rx(struct ics_conn *conn);
u16 ics_auth_expected_step(const struct ics_conn *conn);
void ics_auth_refuse(struct ics_conn *conn);
int ics_auth_send(struct ics_conn *conn, u16 step, const void *body,
		  size_t len, int status);

/* ics_tls.c */
int ics_tls_rx(struct socket *sock, const u8 *rx);
int ics_tls_tx(struct socket *sock, const u8 *tx);
#define ICS_TLS_KEY_MATERIAL	28	/* key 16, salt 4, iv 8 */
/* the longest session key of any mode: one HKDF-SHA256 block */
#define ICS_SESSION_KEY_MAX	32

/* ics_mac.c */
void ics_mac_set(struct ics_mac *mac, const u8 *key);
void ics_mac_tag(struct ics_mac *mac, const struct kvec *vec, size_t nr,
		 struct page *const *pages, unsigned int nr_pages, u8 *tag);
bool ics_mac_verify(struct ics_mac *mac, const struct kvec *vec, size_t nr,
		    struct page *const *pages, unsigned int nr_pages,
		    const u8 *tag);

/* ics_conn.c */
#define ICS_SEND_MAX_VEC	2	/* kvecs of a frame's head: header, body */
int ics_conn_send(struct ics_conn *conn, const struct ics_hdr *hdr,
		  const void *body, size_t len, struct page *const *pages,
		  unsigned int nr_pages, unsigned long deadline);
int ics_conn_send_raw(struct ics_conn *conn, const struct kvec *vec,
		      size_t nr, size_t total, struct page *const *pages,
		      unsigned int nr_pages, unsigned long deadline);
void ics_free_pages(struct page **pages, unsigned int nr);
struct ics_conn *ics_conn_get_out(unsigned int node, enum ics_chan chan,
				  unsigned long deadline, unsigned int down_gen);
struct ics_conn *ics_conn_accepted(struct socket *sock, __be32 addr);
void ics_conn_put(struct ics_conn *conn);
void ics_conn_kill(struct ics_conn *conn);
void ics_conns_kill_node(unsigned int node, bool node_down);
void ics_conns_shutdown_all(void);
unsigned int ics_conns_handshaking_from(__be32 addr);
bool ics_hdr_valid(const struct ics_hdr *hdr);
void ics_hdr_fill(struct ics_hdr *hdr, u8 kind, u16 service,
		  u16 op, u16 op_version, size_t len, int status, u64 xid);

/* ics_listen.c */
int ics_listen_start(void);
void ics_listen_stop(void);
bool ics_listen_stopping(void);
extern atomic_t ics_handshakes;

/* ics_rpc.c */
/* A call or one-way message: takes @body and @pages. */
void ics_rx_call(struct ics_conn *conn, const struct ics_hdr *hdr,
		 void *body, size_t len, struct page **pages,
		 unsigned int nr_pages);
/*
 * A reply: *@body and *@pages are taken (set NULL) by a call that takes
 * them.
 */
void ics_rx_reply(struct ics_conn *conn, const struct ics_hdr *hdr,
		  void **body, size_t len, struct page ***pages,
		  unsigned int nr_pages);
void ics_fail_pending(struct ics_conn *conn, int status);
void ics_rpc_exit(void);

#endif /* _SSI_ICS_INTERNAL_H */
