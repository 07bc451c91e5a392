// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS peer authentication: before a connection carries any service frame,
 * both ends prove they hold the cluster key with an HMAC-SHA256
 * challenge-response over fresh nonces from each side.
 *
 *   connector -> acceptor  HELLO      node_c, chan, node_s, nonce_c
 *   acceptor -> connector  CHALLENGE  node_s, nonce_s, MAC("ics-s")
 *   connector -> acceptor  RESPONSE   MAC("ics-c")
 *   acceptor -> connector  OK
 *
 * MAC(label) = HMAC(key, label | node_c | node_s | chan | nonce_c | nonce_s)
 */
#define pr_fmt(fmt) "ics: " fmt

#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <linux/inet.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/ssi.h>
#include <net/sock.h>
#include <asm/unaligned.h>

#include "ics_internal.h"

enum ics_auth_step {
	ICS_AUTH_HELLO = 1,
	ICS_AUTH_CHALLENGE = 2,
	ICS_AUTH_RESPONSE = 3,
	ICS_AUTH_OK = 4,
};

#define ICS_HELLO_LEN		(3 * 4 + ICS_NONCE_LEN)
#define ICS_CHALLENGE_LEN	(4 + ICS_NONCE_LEN + ICS_MAC_LEN)
#define ICS_RESPONSE_LEN	ICS_MAC_LEN

static struct crypto_shash *ics_hmac;
static bool ics_key_set;
static DEFINE_MUTEX(ics_key_lock);	/* ics_hmac's key and digests */

int ics_auth_init(void)
{
	ics_hmac = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(ics_hmac)) {
		pr_err("no hmac(sha256): %ld\n", PTR_ERR(ics_hmac));
		return PTR_ERR(ics_hmac);
	}
	return 0;
}

void ics_auth_exit(void)
{
	crypto_free_shash(ics_hmac);
}

int ics_auth_set_key(const u8 *key, size_t len)
{
	int ret;

	mutex_lock(&ics_key_lock);
	ret = crypto_shash_setkey(ics_hmac, key, len);
	ics_key_set = !ret;
	mutex_unlock(&ics_key_lock);
	return ret;
}

bool ics_auth_have_key(void)
{
	return READ_ONCE(ics_key_set);
}

static int ics_auth_mac(const char *label, unsigned int node_c,
			unsigned int node_s, enum ics_chan chan,
			const u8 *nonce_c, const u8 *nonce_s, u8 *mac)
{
	SHASH_DESC_ON_STACK(desc, ics_hmac);
	__le32 ids[3] = {
		cpu_to_le32(node_c), cpu_to_le32(node_s), cpu_to_le32(chan),
	};
	int ret;

	mutex_lock(&ics_key_lock);
	if (!ics_key_set) {
		ret = -ENOKEY;
		goto out;
	}
	desc->tfm = ics_hmac;
	ret = crypto_shash_init(desc) ?:
	      crypto_shash_update(desc, label, strlen(label)) ?:
	      crypto_shash_update(desc, (const u8 *)ids, sizeof(ids)) ?:
	      crypto_shash_update(desc, nonce_c, ICS_NONCE_LEN) ?:
	      crypto_shash_update(desc, nonce_s, ICS_NONCE_LEN) ?:
	      crypto_shash_final(desc, mac);
	shash_desc_zero(desc);
out:
	mutex_unlock(&ics_key_lock);
	return ret;
}

static int ics_auth_send(struct socket *sock, enum ics_auth_step step,
			 const void *body, size_t len, int status)
{
	struct ics_hdr hdr;
	struct kvec vec[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)body, .iov_len = len },
	};
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
	int ret;

	ics_hdr_fill(&hdr, ICS_KIND_AUTH, 0, step, 1, len, status, 0);
	ret = kernel_sendmsg(sock, &msg, vec, len ? 2 : 1, sizeof(hdr) + len);
	if (ret < 0)
		return ret;
	return ret == sizeof(hdr) + len ? 0 : -EPIPE;
}

/* Receives exactly one AUTH frame of @step whose body is @len bytes. */
static int ics_auth_recv(struct socket *sock, enum ics_auth_step step,
			 void *body, size_t len)
{
	struct ics_hdr hdr;
	int ret;

	ret = ics_sock_recv(sock, &hdr, sizeof(hdr));
	if (ret)
		return ret;
	if (!ics_hdr_valid(&hdr) || hdr.kind != ICS_KIND_AUTH) {
		ics_count(ICS_CNT_BAD_HEADER);
		return -EPROTO;
	}
	if (le32_to_cpu(hdr.status))
		return -ECONNREFUSED;
	if (le16_to_cpu(hdr.op) != step || le32_to_cpu(hdr.len) != len) {
		ics_count(ICS_CNT_BAD_HEADER);
		return -EPROTO;
	}
	return len ? ics_sock_recv(sock, body, len) : 0;
}

static void ics_auth_refused(const char *why, unsigned int node)
{
	ics_count(ICS_CNT_AUTH_REFUSED);
	pr_warn_ratelimited("refused peer %u: %s\n", node, why);
}

int ics_auth_client(struct socket *sock, unsigned int node,
		    enum ics_chan chan)
{
	u8 hello[ICS_HELLO_LEN], chal[ICS_CHALLENGE_LEN], mac[ICS_MAC_LEN];
	unsigned int self = ssi_node_num();
	u8 *nonce_c = hello + 12;
	int ret;

	put_unaligned_le32(self, hello);
	put_unaligned_le32(chan, hello + 4);
	put_unaligned_le32(node, hello + 8);
	get_random_bytes(nonce_c, ICS_NONCE_LEN);

	ret = ics_auth_send(sock, ICS_AUTH_HELLO, hello, sizeof(hello), 0);
	if (ret)
		return ret;
	ret = ics_auth_recv(sock, ICS_AUTH_CHALLENGE, chal, sizeof(chal));
	if (ret) {
		if (ret == -ECONNREFUSED)
			ics_auth_refused("it refused our key or identity", node);
		return ret;
	}
	if (get_unaligned_le32(chal) != node) {
		ics_auth_refused("it answered as another node", node);
		return -EACCES;
	}
	ret = ics_auth_mac("ics-s", self, node, chan, nonce_c, chal + 4, mac);
	if (ret)
		return ret;
	if (crypto_memneq(mac, chal + 4 + ICS_NONCE_LEN, ICS_MAC_LEN)) {
		ics_auth_refused("its key differs", node);
		/* Tell it, so that both ends count the refusal. */
		ics_auth_send(sock, ICS_AUTH_RESPONSE, NULL, 0, EACCES);
		return -EACCES;
	}
	ret = ics_auth_mac("ics-c", self, node, chan, nonce_c, chal + 4, mac);
	if (ret)
		return ret;
	ret = ics_auth_send(sock, ICS_AUTH_RESPONSE, mac, sizeof(mac), 0);
	if (ret)
		return ret;
	ret = ics_auth_recv(sock, ICS_AUTH_OK, NULL, 0);
	if (ret == -ECONNREFUSED)
		ics_auth_refused("it did not accept our key", node);
	if (!ret)
		ics_count(ICS_CNT_AUTH_OK);
	return ret;
}

int ics_auth_server(struct socket *sock, __be32 peer_addr,
		    unsigned int *node, enum ics_chan *chan)
{
	u8 hello[ICS_HELLO_LEN], chal[ICS_CHALLENGE_LEN], mac[ICS_MAC_LEN];
	u8 resp[ICS_RESPONSE_LEN];
	unsigned int self = ssi_node_num(), peer, want, ch;
	u8 *nonce_c = hello + 12, *nonce_s = chal + 4;
	int ret;

	ret = ics_auth_recv(sock, ICS_AUTH_HELLO, hello, sizeof(hello));
	if (ret)
		return ret;
	peer = get_unaligned_le32(hello);
	ch = get_unaligned_le32(hello + 4);
	want = get_unaligned_le32(hello + 8);
	if (peer < 1 || peer > SSI_MAX_NODES || ch >= ICS_NR_CHANS ||
	    want != self) {
		ics_auth_refused("bad hello", peer);
		ret = -EPROTO;
		goto refuse;
	}
	if (!READ_ONCE(ics_peers[peer].configured) ||
	    READ_ONCE(ics_peers[peer].addr) != peer_addr) {
		ics_auth_refused("not in the cluster table at that address",
				 peer);
		ret = -EACCES;
		goto refuse;
	}

	put_unaligned_le32(self, chal);
	get_random_bytes(nonce_s, ICS_NONCE_LEN);
	ret = ics_auth_mac("ics-s", peer, self, ch, nonce_c, nonce_s,
			   chal + 4 + ICS_NONCE_LEN);
	if (ret) {
		ics_auth_refused("no cluster key set here", peer);
		goto refuse;
	}
	ret = ics_auth_send(sock, ICS_AUTH_CHALLENGE, chal, sizeof(chal), 0);
	if (ret)
		return ret;
	ret = ics_auth_recv(sock, ICS_AUTH_RESPONSE, resp, sizeof(resp));
	if (ret == -ECONNREFUSED)
		ics_auth_refused("it found our key differs", peer);
	if (ret)
		return ret;
	ret = ics_auth_mac("ics-c", peer, self, ch, nonce_c, nonce_s, mac);
	if (ret)
		goto refuse;
	if (crypto_memneq(mac, resp, ICS_MAC_LEN)) {
		ics_auth_refused("wrong key", peer);
		ret = -EACCES;
		goto refuse;
	}
	ret = ics_auth_send(sock, ICS_AUTH_OK, NULL, 0, 0);
	if (ret)
		return ret;
	ics_count(ICS_CNT_AUTH_OK);
	*node = peer;
	*chan = ch;
	return 0;

refuse:
	ics_auth_send(sock, ICS_AUTH_CHALLENGE, NULL, 0, EACCES);
	return ret;
}
