// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS peer authentication and session keys.  Before a connection carries
 * any service frame, both ends prove they hold the cluster key with an
 * HMAC-SHA256 challenge-response over fresh nonces from each side, and
 * agree on how the frames after it are protected:
 *
 *   connector -> acceptor  HELLO      node_c, chan, node_s, protect, nonce_c
 *   acceptor -> connector  CHALLENGE  node_s, protect, nonce_s, MAC("ics2-s")
 *   connector -> acceptor  RESPONSE   MAC("ics2-c")
 *   acceptor -> connector  OK
 *
 *   MAC(label) = HMAC(key, label | node_c | node_s | chan | protect |
 *                     nonce_c | nonce_s)
 *
 * Either side refuses with an AUTH frame of the step it expected to send,
 * a non-zero status and no body.  The whole exchange has one deadline
 * (ICS_HANDSHAKE_TIMEOUT), enforced by ics_conn.c, which also feeds these
 * steps the frames as they arrive: no step blocks on the network.
 *
 * With protect=tls, each direction's TLS key, salt and IV (28 bytes), and
 * with protect=auth its Poly1305 session key (32 bytes, ics_mac.c), come
 * from HKDF-SHA256 (RFC 5869), the cluster key as salt:
 *
 *   PRK = HMAC(key, "ics2-prk" | node_c | node_s | chan | protect |
 *              nonce_c | nonce_s)
 *   connector -> acceptor: HMAC(PRK, "ics2 c2s" | 0x01)[0..len-1]
 *   acceptor -> connector: HMAC(PRK, "ics2 s2c" | 0x01)[0..len-1]
 *
 * The mode is in the PRK's input, so the two modes never share a key.
 *
 * Fresh nonces on both sides make every connection's keys new, so records
 * of one connection cannot be replayed into another.
 */
#define pr_fmt(fmt) "ics: " fmt

#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/ssi.h>

#include "ics_internal.h"

enum ics_auth_step {
	ICS_AUTH_HELLO = 1,
	ICS_AUTH_CHALLENGE = 2,
	ICS_AUTH_RESPONSE = 3,
	ICS_AUTH_OK = 4,
};

struct ics_auth_hello {
	__le32 node_c;
	__le32 chan;
	__le32 node_s;
	__le32 protect;
	u8 nonce_c[ICS_NONCE_LEN];
} __packed;

struct ics_auth_challenge {
	__le32 node_s;
	__le32 protect;
	u8 nonce_s[ICS_NONCE_LEN];
	u8 mac[ICS_MAC_LEN];
} __packed;

struct ics_auth_response {
	u8 mac[ICS_MAC_LEN];
} __packed;

/* What the MACs and the key derivation cover besides the label and nonces. */
struct ics_auth_ids {
	__le32 node_c;
	__le32 node_s;
	__le32 chan;
	__le32 protect;
} __packed;

struct ics_handshake {
	enum ics_auth_step expect;	/* the step of the next frame we take */
	struct ics_auth_ids ids;
	u8 nonce_c[ICS_NONCE_LEN];
	u8 nonce_s[ICS_NONCE_LEN];
	union {
		struct ics_auth_hello hello;
		struct ics_auth_challenge challenge;
		struct ics_auth_response response;
	} rx;
};

static struct crypto_shash *ics_hmac;	/* keyed with the cluster key */
static struct crypto_shash *ics_hkdf;	/* keyed with each connection's PRK */
static bool ics_key_set;
/* the key as set, to tell a new key from the same one set again */
static u8 ics_key[SSI_KEY_MAX];
static size_t ics_key_len;
static DEFINE_MUTEX(ics_key_lock);	/* both tfms' keys and digests */

int ics_auth_init(void)
{
	ics_hmac = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(ics_hmac)) {
		pr_err("no hmac(sha256): %ld\n", PTR_ERR(ics_hmac));
		return PTR_ERR(ics_hmac);
	}
	ics_hkdf = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(ics_hkdf)) {
		crypto_free_shash(ics_hmac);
		return PTR_ERR(ics_hkdf);
	}
	return 0;
}

void ics_auth_exit(void)
{
	crypto_free_shash(ics_hkdf);
	crypto_free_shash(ics_hmac);
	memzero_explicit(ics_key, sizeof(ics_key));
}

/* 1: a new key is set; 0: this key was set already; or an errno. */
int ics_auth_set_key(const u8 *key, size_t len)
{
	int ret;

	if (len > sizeof(ics_key))
		return -EINVAL;
	mutex_lock(&ics_key_lock);
	if (ics_key_set && len == ics_key_len &&
	    !crypto_memneq(key, ics_key, len)) {
		mutex_unlock(&ics_key_lock);
		return 0;
	}
	ret = crypto_shash_setkey(ics_hmac, key, len);
	ics_key_set = !ret;
	memzero_explicit(ics_key, sizeof(ics_key));
	ics_key_len = 0;
	if (!ret) {
		memcpy(ics_key, key, len);
		ics_key_len = len;
	}
	mutex_unlock(&ics_key_lock);
	return ret ?: 1;
}

bool ics_auth_have_key(void)
{
	return READ_ONCE(ics_key_set);
}

struct ics_handshake *ics_auth_alloc(void)
{
	return kzalloc(sizeof(struct ics_handshake), GFP_KERNEL);
}

void ics_auth_free(struct ics_handshake *hs)
{
	kfree_sensitive(hs);
}

/* HMAC(tfm's key, label | ids | nonce_c | nonce_s); ics_key_lock held. */
static int ics_auth_digest(struct crypto_shash *tfm, const char *label,
			   const struct ics_handshake *hs, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, tfm);
	int ret;

	desc->tfm = tfm;
	ret = crypto_shash_init(desc) ?:
	      crypto_shash_update(desc, label, strlen(label)) ?:
	      crypto_shash_update(desc, (const u8 *)&hs->ids, sizeof(hs->ids)) ?:
	      crypto_shash_update(desc, hs->nonce_c, ICS_NONCE_LEN) ?:
	      crypto_shash_update(desc, hs->nonce_s, ICS_NONCE_LEN) ?:
	      crypto_shash_final(desc, out);
	shash_desc_zero(desc);
	return ret;
}

static int ics_auth_mac(const char *label, const struct ics_handshake *hs,
			u8 *mac)
{
	int ret = -ENOKEY;

	mutex_lock(&ics_key_lock);
	if (ics_key_set)
		ret = ics_auth_digest(ics_hmac, label, hs, mac);
	mutex_unlock(&ics_key_lock);
	return ret;
}

/* HKDF-Expand, one block: HMAC(PRK, info | 0x01), first @len bytes. */
static int ics_auth_expand(const char *info, u8 *out, size_t len)
{
	SHASH_DESC_ON_STACK(desc, ics_hkdf);
	static const u8 one = 1;
	u8 block[32];
	int ret;

	desc->tfm = ics_hkdf;
	ret = crypto_shash_init(desc) ?:
	      crypto_shash_update(desc, info, strlen(info)) ?:
	      crypto_shash_update(desc, &one, 1) ?:
	      crypto_shash_final(desc, block);
	shash_desc_zero(desc);
	if (!ret)
		memcpy(out, block, len);
	memzero_explicit(block, sizeof(block));
	return ret;
}

/*
 * Derives this end's session keys, @len bytes each: @tx for what it
 * sends, @rx for what it receives.
 */
static int ics_auth_keys(struct ics_conn *conn, u8 *tx, u8 *rx, size_t len)
{
	u8 prk[32];
	int ret = -ENOKEY;

	mutex_lock(&ics_key_lock);
	if (ics_key_set)
		ret = ics_auth_digest(ics_hmac, "ics2-prk", conn->hs, prk) ?:
		      crypto_shash_setkey(ics_hkdf, prk, sizeof(prk)) ?:
		      ics_auth_expand(conn->outgoing ? "ics2 c2s" : "ics2 s2c", tx,
				      len) ?:
		      ics_auth_expand(conn->outgoing ? "ics2 s2c" : "ics2 c2s", rx,
				      len);
	mutex_unlock(&ics_key_lock);
	memzero_explicit(prk, sizeof(prk));
	return ret;
}

/* Receive protection on: every later frame that arrives is checked. */
static int ics_auth_protect_rx(struct ics_conn *conn, const u8 *rx)
{
	switch (ics_protect_mode) {
	case ICS_PROTECT_TLS:
		return ics_tls_rx(conn->sock, rx);
	case ICS_PROTECT_AUTH:
		ics_mac_set(&conn->rx_mac, rx);
		conn->rx_tagged = true;	/* read by this rx_work only */
		return 0;
	case ICS_PROTECT_NONE:
		break;
	}
	return 0;
}

/* Send protection on: every later frame that goes is protected. */
static int ics_auth_protect_tx(struct ics_conn *conn, const u8 *tx)
{
	switch (ics_protect_mode) {
	case ICS_PROTECT_TLS:
		return ics_tls_tx(conn->sock, tx);
	case ICS_PROTECT_AUTH:
		mutex_lock(&conn->send_lock);
		ics_mac_set(&conn->tx_mac, tx);
		conn->tx_tagged = true;
		mutex_unlock(&conn->send_lock);
		return 0;
	case ICS_PROTECT_NONE:
		break;
	}
	return 0;
}

/*
 * The last step on either side: protection on (unless protect=none), and
 * for the acceptor (@send_ok) the OK between receive and send protection,
 * since the connector may send protected frames as soon as it has read OK.
 * Returns 1: this end is authenticated and protected.
 */
static int ics_auth_finish(struct ics_conn *conn, bool send_ok)
{
	u8 tx[ICS_SESSION_KEY_MAX], rx[ICS_SESSION_KEY_MAX];
	size_t len = ics_protect_mode == ICS_PROTECT_TLS ? ICS_TLS_KEY_MATERIAL :
		     ICS_MAC_KEY_LEN;
	int ret = 0;

	if (ics_protect_mode != ICS_PROTECT_NONE)
		ret = ics_auth_keys(conn, tx, rx, len);
	ret = ret ?: ics_auth_protect_rx(conn, rx);
	if (!ret && send_ok)
		ret = ics_auth_send(conn, ICS_AUTH_OK, NULL, 0, 0);
	ret = ret ?: ics_auth_protect_tx(conn, tx);
	memzero_explicit(tx, sizeof(tx));
	memzero_explicit(rx, sizeof(rx));
	if (ret) {
		pr_warn_ratelimited("node %u: cannot protect the connection: %d\n",
				    conn->node, ret);
		return ret;
	}
	ics_count(ICS_CNT_AUTH_OK);
	return 1;
}

int ics_auth_send(struct ics_conn *conn, u16 step, const void *body,
		  size_t len, int status)
{
	struct ics_hdr hdr;
	struct kvec vec[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)body, .iov_len = len },
	};

	ics_hdr_fill(&hdr, ICS_KIND_AUTH, 0, step, 1, len, status, 0);
	return ics_conn_send_raw(conn, vec, len ? 2 : 1, sizeof(hdr) + len,
				 NULL, 0, conn->hs_deadline);
}

static void ics_auth_refused(const char *why, unsigned int node)
{
	ics_count(ICS_CNT_AUTH_REFUSED);
	pr_warn_ratelimited("refused peer %u: %s\n", node, why);
}

/* The connector's first step: send HELLO. */
static int ics_auth_hello(struct ics_conn *conn)
{
	struct ics_handshake *hs = conn->hs;
	struct ics_auth_hello hello;

	hs->ids.node_c = cpu_to_le32(ssi_node_num());
	hs->ids.node_s = cpu_to_le32(conn->node);
	hs->ids.chan = cpu_to_le32(conn->chan);
	hs->ids.protect = cpu_to_le32(ics_protect_mode);
	get_random_bytes(hs->nonce_c, ICS_NONCE_LEN);
	hello.node_c = hs->ids.node_c;
	hello.chan = hs->ids.chan;
	hello.node_s = hs->ids.node_s;
	hello.protect = hs->ids.protect;
	memcpy(hello.nonce_c, hs->nonce_c, ICS_NONCE_LEN);
	hs->expect = ICS_AUTH_CHALLENGE;
	return ics_auth_send(conn, ICS_AUTH_HELLO, &hello, sizeof(hello), 0);
}

int ics_auth_start(struct ics_conn *conn)
{
	if (conn->outgoing)
		return ics_auth_hello(conn);
	conn->hs->expect = ICS_AUTH_HELLO;
	return 0;
}

size_t ics_auth_expected_len(const struct ics_conn *conn)
{
	switch (conn->hs->expect) {
	case ICS_AUTH_HELLO:
		return sizeof(struct ics_auth_hello);
	case ICS_AUTH_CHALLENGE:
		return sizeof(struct ics_auth_challenge);
	case ICS_AUTH_RESPONSE:
		return sizeof(struct ics_auth_response);
	default:
		return 0;
	}
}

void *ics_auth_rx_buf(struct ics_conn *conn)
{
	return &conn->hs->rx;
}

/* Acceptor: HELLO in, CHALLENGE out. */
static int ics_auth_rx_hello(struct ics_conn *conn)
{
	struct ics_handshake *hs = conn->hs;
	const struct ics_auth_hello *hello = &hs->rx.hello;
	struct ics_auth_challenge chal;
	unsigned int peer = le32_to_cpu(hello->node_c);
	unsigned int self = ssi_node_num();
	int ret;

	if (peer < 1 || peer > SSI_MAX_NODES || peer == self ||
	    le32_to_cpu(hello->chan) >= ICS_NR_CHANS ||
	    le32_to_cpu(hello->node_s) != self) {
		ics_auth_refused("bad hello", peer);
		return -EPROTO;
	}
	if (!READ_ONCE(ics_peers[peer].configured) ||
	    READ_ONCE(ics_peers[peer].addr) != conn->addr) {
		ics_auth_refused("not in the cluster table at that address", peer);
		return -EACCES;
	}
	if (le32_to_cpu(hello->protect) != ics_protect_mode) {
		ics_auth_refused("its protect= mode differs from ours", peer);
		return -EACCES;
	}
	hs->ids.node_c = hello->node_c;
	hs->ids.node_s = hello->node_s;
	hs->ids.chan = hello->chan;
	hs->ids.protect = hello->protect;
	memcpy(hs->nonce_c, hello->nonce_c, ICS_NONCE_LEN);
	get_random_bytes(hs->nonce_s, ICS_NONCE_LEN);
	conn->node = peer;
	conn->chan = le32_to_cpu(hello->chan);

	chal.node_s = cpu_to_le32(self);
	chal.protect = hs->ids.protect;
	memcpy(chal.nonce_s, hs->nonce_s, ICS_NONCE_LEN);
	ret = ics_auth_mac("ics2-s", hs, chal.mac);
	if (ret) {
		ics_auth_refused("no cluster key set here", peer);
		return ret;
	}
	hs->expect = ICS_AUTH_RESPONSE;
	return ics_auth_send(conn, ICS_AUTH_CHALLENGE, &chal, sizeof(chal), 0);
}

/* Connector: CHALLENGE in, RESPONSE out. */
static int ics_auth_rx_challenge(struct ics_conn *conn)
{
	struct ics_handshake *hs = conn->hs;
	const struct ics_auth_challenge *chal = &hs->rx.challenge;
	struct ics_auth_response resp;
	u8 mac[ICS_MAC_LEN];
	int ret;

	if (le32_to_cpu(chal->node_s) != conn->node) {
		ics_auth_refused("it answered as another node", conn->node);
		return -EACCES;
	}
	if (chal->protect != hs->ids.protect) {
		ics_auth_refused("its protect= mode differs from ours", conn->node);
		return -EACCES;
	}
	memcpy(hs->nonce_s, chal->nonce_s, ICS_NONCE_LEN);
	ret = ics_auth_mac("ics2-s", hs, mac);
	if (ret)
		return ret;
	if (crypto_memneq(mac, chal->mac, ICS_MAC_LEN)) {
		ics_auth_refused("its key differs", conn->node);
		/* Tell it, so that both ends count the refusal. */
		ics_auth_send(conn, ICS_AUTH_RESPONSE, NULL, 0, EACCES);
		return -EACCES;
	}
	ret = ics_auth_mac("ics2-c", hs, resp.mac);
	if (ret)
		return ret;
	hs->expect = ICS_AUTH_OK;
	return ics_auth_send(conn, ICS_AUTH_RESPONSE, &resp, sizeof(resp), 0);
}

/* Acceptor: RESPONSE in; receive protection on, OK out, send protection on. */
static int ics_auth_rx_response(struct ics_conn *conn)
{
	struct ics_handshake *hs = conn->hs;
	u8 mac[ICS_MAC_LEN];
	int ret;

	ret = ics_auth_mac("ics2-c", hs, mac);
	if (ret)
		return ret;
	if (crypto_memneq(mac, hs->rx.response.mac, ICS_MAC_LEN)) {
		ics_auth_refused("wrong key", conn->node);
		return -EACCES;
	}
	return ics_auth_finish(conn, true);
}

/*
 * Takes the AUTH frame in conn->rx_hdr (its body, of the length
 * ics_auth_expected_len() asked for, in ics_auth_rx_buf()).  Returns 0
 * when the handshake goes on, 1 once this end is authenticated and
 * protected, or a negative errno: the connection must then be closed.
 */
int ics_auth_rx(struct ics_conn *conn)
{
	const struct ics_hdr *hdr = &conn->rx_hdr;
	struct ics_handshake *hs = conn->hs;

	if (le32_to_cpu(hdr->status)) {
		switch (hs->expect) {
		case ICS_AUTH_CHALLENGE:
			ics_auth_refused("it refused our key or identity", conn->node);
			break;
		case ICS_AUTH_RESPONSE:
			ics_auth_refused("it found our key differs", conn->node);
			break;
		default:
			ics_auth_refused("it did not accept our key", conn->node);
		}
		return -ECONNREFUSED;
	}
	switch (hs->expect) {
	case ICS_AUTH_HELLO:
		return ics_auth_rx_hello(conn);
	case ICS_AUTH_CHALLENGE:
		return ics_auth_rx_challenge(conn);
	case ICS_AUTH_RESPONSE:
		return ics_auth_rx_response(conn);
	case ICS_AUTH_OK:
		return ics_auth_finish(conn, false);	/* connector: OK in */
	}
	return -EPROTO;
}

/* The step @conn expects next, for checking a received AUTH header. */
u16 ics_auth_expected_step(const struct ics_conn *conn)
{
	return conn->hs->expect;
}

/* The acceptor tells a connector it refused, so that both ends count it. */
void ics_auth_refuse(struct ics_conn *conn)
{
	if (!conn->outgoing && conn->hs)
		ics_auth_send(conn, conn->hs->expect == ICS_AUTH_HELLO ?
			      ICS_AUTH_CHALLENGE : ICS_AUTH_OK, NULL, 0, EACCES);
}
