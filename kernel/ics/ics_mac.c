// SPDX-License-Identifier: GPL-2.0-only
/*
 * ICS frame authentication without encryption (protect=auth).  After the
 * handshake every frame is followed on the wire by a Poly1305 tag over
 * all of its bytes (header, body, pages):
 *
 *   frame n of a direction:  hdr | body | pages | tag[16]
 *   tag = Poly1305(otk_n, hdr | body | pages)
 *   otk_n = BLAKE2s-256(key = the direction's session key, n as __le64)
 *
 * Poly1305 is a one-time authenticator, hence a key per frame, derived
 * from a keyed PRF of the frame's number.  n is never sent: each end
 * counts the frames of each direction from 0 at the handshake, so a frame
 * that is changed, injected, replayed, reordered or dropped fails its tag
 * (or makes the next one fail), and the connection is reset as kernel TLS
 * resets it.  The session keys come from the handshake as TLS's do
 * (ics_auth.c): fresh for every connection.
 *
 * No byte of a frame reaches the frame parser's consumers, a service or a
 * caller before its tag is checked (ics_conn.c).  Before that only the
 * header's length and kind are used, within the bounds every header gets,
 * to know how many bytes to read: a forged length makes a tag fail or a
 * call time out, nothing more.
 *
 * Why this mode: it gives integrity and replay protection, not secrecy.
 * Under TCG, Poly1305 in generic C runs at ~10x AES-GCM with AES-NI and
 * PCLMULQDQ (717 against 74 MB/s, 64 KiB, in a guest on 2026-12-05), and
 * bulk RPC under kernel TLS stays near 0.4x of plain TCP.  protect=tls is
 * the mode for a wire others can read.
 */
#define pr_fmt(fmt) "ics: " fmt

#include <crypto/algapi.h>
#include <crypto/blake2s.h>
#include <crypto/poly1305.h>
#include <linux/highmem.h>
#include <linux/string.h>

#include "ics_internal.h"

static_assert(ICS_MAC_KEY_LEN == BLAKE2S_KEY_SIZE);
static_assert(ICS_FRAME_TAG_LEN == POLY1305_DIGEST_SIZE);

void ics_mac_set(struct ics_mac *mac, const u8 *key)
{
	memcpy(mac->key, key, sizeof(mac->key));
	mac->seq = 0;
}

/* The tag of the next frame of @mac's direction: its parts, in wire order. */
void ics_mac_tag(struct ics_mac *mac, const struct kvec *vec, size_t nr,
		 struct page *const *pages, unsigned int nr_pages, u8 *tag)
{
	struct poly1305_desc_ctx desc;
	__le64 seq = cpu_to_le64(mac->seq++);
	u8 otk[POLY1305_KEY_SIZE];
	unsigned int i;
	void *p;

	blake2s(otk, (const u8 *)&seq, mac->key, sizeof(otk), sizeof(seq),
		sizeof(mac->key));
	poly1305_init(&desc, otk);
	memzero_explicit(otk, sizeof(otk));
	for (i = 0; i < nr; i++)
		poly1305_update(&desc, vec[i].iov_base, vec[i].iov_len);
	for (i = 0; i < nr_pages; i++) {
		p = kmap_local_page(pages[i]);
		poly1305_update(&desc, p, ICS_PAGE_SIZE);
		kunmap_local(p);
	}
	poly1305_final(&desc, tag);	/* also wipes desc */
}

/* Whether @tag is the next frame's tag; the frame counts either way. */
bool ics_mac_verify(struct ics_mac *mac, const struct kvec *vec, size_t nr,
		    struct page *const *pages, unsigned int nr_pages,
		    const u8 *tag)
{
	u8 want[ICS_FRAME_TAG_LEN];
	bool ok;

	ics_mac_tag(mac, vec, nr, pages, nr_pages, want);
	ok = !crypto_memneq(want, tag, sizeof(want));
	memzero_explicit(want, sizeof(want));
	return ok;
}
