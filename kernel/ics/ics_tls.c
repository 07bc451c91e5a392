// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS frame protection: kernel TLS 1.3 records (AES-128-GCM) on an
 * authenticated connection.  There is no TLS handshake: the ICS handshake
 * (ics_auth.c) has proved both ends hold the cluster key and derived one
 * key, salt and IV per direction from it and both nonces.  From then on
 * every byte is a record whose tag covers the data and its implicit
 * sequence number, so a flipped bit, an injected, replayed, reordered or
 * dropped record fails to decrypt: recvmsg returns -EBADMSG and the
 * connection is reset.
 */
#define pr_fmt(fmt) "ics: " fmt

#include <linux/net.h>
#include <linux/sockptr.h>
#include <linux/string.h>
#include <linux/tcp.h>
#include <linux/tls.h>
#include <net/sock.h>

#include "ics_internal.h"

static void ics_tls_info(struct tls12_crypto_info_aes_gcm_128 *ci, const u8 *m)
{
	memset(ci, 0, sizeof(*ci));
	ci->info.version = TLS_1_3_VERSION;
	ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memcpy(ci->key, m, TLS_CIPHER_AES_GCM_128_KEY_SIZE);
	memcpy(ci->salt, m + 16, TLS_CIPHER_AES_GCM_128_SALT_SIZE);
	memcpy(ci->iv, m + 20, TLS_CIPHER_AES_GCM_128_IV_SIZE);
	/* rec_seq 0: both directions start counting at the handshake. */
}

static int ics_tls_set(struct socket *sock, int optname, const u8 *material)
{
	struct tls12_crypto_info_aes_gcm_128 ci;
	int ret;

	ics_tls_info(&ci, material);
	ret = sock->ops->setsockopt(sock, SOL_TLS, optname,
				    KERNEL_SOCKPTR(&ci), sizeof(ci));
	memzero_explicit(&ci, sizeof(ci));
	return ret;
}

/*
 * Puts @sock under the TLS ULP and decrypts what it receives from now on
 * (records queued already included) with @rx, ICS_TLS_KEY_MATERIAL bytes.
 * The acceptor does this before it sends OK: once OK is out the connector
 * may send records and close at once, and the ULP needs a socket still
 * established.  Sending stays plain until ics_tls_tx().
 */
int ics_tls_rx(struct socket *sock, const u8 *rx)
{
	static const char ulp[] = "tls";
	int ret;

	/* KERNEL_SOCKPTR takes a non-const pointer; setsockopt only reads it. */
	ret = sock->ops->setsockopt(sock, SOL_TCP, TCP_ULP,
				    KERNEL_SOCKPTR((void *)ulp), sizeof(ulp));
	if (ret)
		return ret;
	return ics_tls_set(sock, TLS_RX, rx);
}

/* Encrypts everything @sock sends from now on with @tx; after ics_tls_rx(). */
int ics_tls_tx(struct socket *sock, const u8 *tx)
{
	return ics_tls_set(sock, TLS_TX, tx);
}
