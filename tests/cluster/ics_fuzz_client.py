"""Hostile ICS client, run inside a guest: sends malformed frames to a node's ICS port.

Usage: ics_fuzz_client.py HOST PORT SELF_NODE TARGET_NODE KEYHEX FRAMES SEED [CODECS]

CODECS is the directory of a module build (build/modules or build/modules-debug)
whose generated Python codecs (*/<service>_ics.py, genmod.ics) give every service's
requests: one class of frames sends each of them mutated (truncated, extended,
bytes flipped, random), and the codec's own unpack, which rejects exactly what the
kernel's generated unpack rejects, predicts which ones the node must drop as
malformed ("service_malformed") and which it must dispatch ("service_valid").

Half the classes run before authentication (garbage the acceptor must refuse), the
rest after authenticating as SELF_NODE with the cluster key (frames the receive loop
and dispatcher must drop and count).  After the handshake (v2, kernel/ics/ics_auth.c)
ICS frames travel as kernel TLS 1.3 records: this client derives the same keys and
puts its socket under the guest kernel's TLS, so its hostile frames are valid records
that reach the acceptor's frame parser.  Prints one JSON line with what was sent.
"""

from __future__ import annotations

import glob
import hashlib
import hmac
import importlib.util
import json
import os
import random
import socket
import struct
import sys
from typing import Any

from genmod.ics import frame

NONCE = 32


PROTECT_TLS = 1
SOL_TLS = 282
TCP_ULP = 31
TLS_TX, TLS_RX = 1, 2
TLS_1_3_VERSION = 0x0304
TLS_CIPHER_AES_GCM_128 = 51


def ids(node_c: int, node_s: int, chan: int, protect: int) -> bytes:
    return struct.pack("<IIII", node_c, node_s, chan, protect)


def mac(key: bytes, label: bytes, idb: bytes, nonce_c: bytes, nonce_s: bytes) -> bytes:
    return hmac.new(key, label + idb + nonce_c + nonce_s, hashlib.sha256).digest()


def tls_info(material: bytes) -> bytes:
    """struct tls12_crypto_info_aes_gcm_128: version, cipher, iv 8, key 16, salt 4, rec_seq 8."""
    key, salt, iv = material[:16], material[16:20], material[20:28]
    return struct.pack("<HH", TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_128) + iv + key + salt + bytes(8)


def protect(s: socket.socket, key: bytes, idb: bytes, nonce_c: bytes, nonce_s: bytes) -> None:
    """The session keys, then kernel TLS on this socket."""
    c2s, s2c = session_keys(key, idb, nonce_c, nonce_s, 28)
    s.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
    s.setsockopt(SOL_TLS, TLS_TX, tls_info(c2s))
    s.setsockopt(SOL_TLS, TLS_RX, tls_info(s2c))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def auth_frame(step: int, body: bytes, status: int = 0) -> bytes:
    hdr = frame.IcsHdr.new(frame.ICS_KIND_AUTH, 0, step, 1, len(body), status, 0)
    return hdr.pack() + body


def connect(host: str, port: int) -> socket.socket:
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def handshake(host: str, port: int, me: int, target: int, key: bytes, protect_mode: int,
              verify: bool = True) -> tuple[socket.socket, bytes, bytes, bytes]:
    """HELLO .. OK as SELF_NODE; (socket, ids, nonce_c, nonce_s), nothing protected yet."""
    s = connect(host, port)
    nonce_c = os.urandom(NONCE)
    chan = frame.ICS_CHAN_BULK
    idb = ids(me, target, chan, protect_mode)
    s.sendall(auth_frame(1, struct.pack("<IIII", me, chan, target, protect_mode) + nonce_c))
    hdr = frame.IcsHdr.unpack(recv_exact(s, frame.HDR_SIZE))
    body = recv_exact(s, hdr.len)
    if hdr.status or len(body) != 8 + 2 * NONCE:
        raise ConnectionError(f"refused: status {hdr.status}")
    nonce_s = body[8:8 + NONCE]
    if verify and body[8 + NONCE:] != mac(key, b"ics2-s", idb, nonce_c, nonce_s):
        raise ConnectionError("server MAC wrong")
    s.sendall(auth_frame(3, mac(key, b"ics2-c", idb, nonce_c, nonce_s)))
    ok = frame.IcsHdr.unpack(recv_exact(s, frame.HDR_SIZE))
    s.settimeout(5)
    if ok.status or ok.op != 4:
        raise ConnectionError("not accepted")
    return s, idb, nonce_c, nonce_s


def session_keys(key: bytes, idb: bytes, nonce_c: bytes, nonce_s: bytes,
                 length: int) -> tuple[bytes, bytes]:
    """HKDF-SHA256 as ics_auth.c does it: (connector to acceptor, acceptor to connector)."""
    prk = mac(key, b"ics2-prk", idb, nonce_c, nonce_s)
    return (hmac.new(prk, b"ics2 c2s\x01", hashlib.sha256).digest()[:length],
            hmac.new(prk, b"ics2 s2c\x01", hashlib.sha256).digest()[:length])


def authenticate(host: str, port: int, me: int, target: int, key: bytes,
                 verify: bool = True) -> socket.socket:
    s, idb, nonce_c, nonce_s = handshake(host, port, me, target, key, PROTECT_TLS, verify)
    protect(s, key, idb, nonce_c, nonce_s)
    # Blocking sends: Python's timeouts make the socket non-blocking, and then kernel
    # TLS may keep part of a record for later, which a shutdown() would cut off.
    s.settimeout(None)
    return s


def service_requests(codecs: str) -> list[Any]:
    """Every request class (call or one-way, no pages) of every generated codec."""
    out: list[Any] = []
    for path in sorted(glob.glob(os.path.join(codecs, "*", "*_ics.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        if spec is None or spec.loader is None:
            continue
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses looks its module up there
        spec.loader.exec_module(mod)
        for (_, _, _, kind), cls in mod.DECODERS.items():
            # pages<N> messages travel in ICS_KIND_PAGES frames: the paged class's
            if kind != mod.KIND_REPLY and "pages_count" not in cls.pack.__code__.co_names:
                out.append(cls)
    return out


def mutated_body(rnd: random.Random, cls: Any) -> bytes:
    """A body for *cls*'s op: its all-zero message, then maybe cut, extended, flipped
    or replaced by random bytes."""
    body = bytearray(cls().pack())
    what = rnd.random()
    if what < 0.2 and body:
        del body[rnd.randrange(len(body)):]
    elif what < 0.35:
        body += os.urandom(rnd.randint(1, 8))
    elif what < 0.65 and body:
        for _ in range(rnd.randint(1, 4)):
            body[rnd.randrange(len(body))] = rnd.randrange(256)
    elif what < 0.85:
        body = bytearray(os.urandom(rnd.randint(0, cls.MAX_SIZE + 8)))
    return bytes(body)


def unpacks(cls: Any, body: bytes) -> bool:
    try:
        cls.unpack(body)
    except ValueError:
        return False
    return True


def header(kind: int, service: int, op: int, ver: int, length: int, xid: int = 0) -> bytes:
    return frame.IcsHdr.new(kind, service, op, ver, length, 0, xid).pack()


def main() -> int:
    host, port, me, target, keyhex, frames, seed = sys.argv[1:8]
    requests = service_requests(sys.argv[8]) if len(sys.argv) > 8 else []
    rnd = random.Random(int(seed))
    key = bytes.fromhex(keyhex)
    total = int(frames)
    sent: dict[str, int] = {}
    sock: socket.socket | None = None

    def count(what: str) -> None:
        sent[what] = sent.get(what, 0) + 1

    def authed() -> socket.socket:
        nonlocal sock
        if sock is None:
            sock = authenticate(host, int(port), int(me), int(target), key)
            # Nagle from here on: the frames are a byte stream to the acceptor
            # either way, and one segment per frame (100,000 of them) twice
            # left node 2's virtio-net TX queue stalled under the -O2 kernel
            # (README, "Known problems").
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        return sock

    def drain() -> None:
        # The acceptor answers every bad call; keep its replies from backing up.
        if sock is None:
            return
        sock.setblocking(False)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            sock.setblocking(True)

    def drop() -> None:
        # Half-close and read to the end: closing with unread replies would send a
        # RST, and the acceptor would discard the frame that made it drop us.
        nonlocal sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(10)
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            sock.close()
        sock = None

    for i in range(total):
        r = rnd.random()
        try:
            if r < 0.02:
                # Pre-auth garbage: random bytes where the HELLO should be.
                with connect(host, int(port)) as s:
                    s.sendall(os.urandom(rnd.randint(1, 200)))
                count("preauth_garbage")
            elif r < 0.04:
                # Pre-auth HELLO with a wrong key (or from an unknown node).
                try:
                    # Answer the challenge with a MAC from the wrong key.
                    s = authenticate(host, int(port), rnd.choice([int(me), 60]), int(target),
                                     os.urandom(32), verify=False)
                    s.close()
                    count("preauth_wrong_key_accepted")
                except (ConnectionError, OSError):
                    count("preauth_wrong_key")
            elif r < 0.06:
                authed().sendall(os.urandom(frame.HDR_SIZE))  # garbage header: drops conn
                count("bad_header")
                drop()
            elif r < 0.07:
                authed().sendall(header(frame.ICS_KIND_CALL, 1, 2, 1, frame.ICS_MAX_BODY + 1))
                count("oversized")
                drop()
            elif r < 0.08:
                authed().sendall(header(frame.ICS_KIND_CALL, 1, 2, 1, 1000) + b"x" * 10)
                count("truncated")
                drop()
            elif r < 0.09:
                authed().sendall(header(frame.ICS_KIND_REPLY, 1, 1, 1, 0, 7))
                count("reply_on_incoming")
                drop()
            elif r < 0.15:
                # Frames with pages (ICS_KIND_PAGES): the body is the packed message, its
                # page count first, then the pages.  ics_test echo_pages is op 5 v1.
                paged = frame.ICS_KIND_CALL | frame.ICS_KIND_PAGES
                k = rnd.randint(0, 3)
                pages = os.urandom(k * frame.ICS_PAGE_SIZE)
                what = rnd.random()
                if what < 0.25:
                    # more pages counted than the frame holds: the stream is lost
                    body = struct.pack("<II", k + rnd.randint(1, 300), i) + pages
                    authed().sendall(header(paged, 1, 5, 1, len(body), i) + body)
                    count("paged_bad_count")
                    drop()
                    continue
                if what < 0.5:
                    # fewer counted than sent: the rest is trailing bytes of the message
                    body = struct.pack("<II", max(k - 1, 0), i) + pages + b"x" * (k == 0)
                    count("paged_malformed")
                elif what < 0.75:
                    # pages for an op whose messages have none (echo, op 2)
                    body = struct.pack("<I", k) + struct.pack("<II", i, 0) + pages
                    authed().sendall(header(paged, 1, 2, 1, len(body), i) + body)
                    count("paged_malformed")
                    drain()
                    continue
                else:
                    body = struct.pack("<II", k, i) + pages
                    count("paged_ok")
                authed().sendall(header(paged, 1, 5, 1, len(body), i) + body)
                drain()
            elif r < 0.35 and requests:
                # A request of some service, mutated; the codec says if it is malformed.
                cls = rnd.choice(requests)
                body = mutated_body(rnd, cls)
                authed().sendall(header(cls.KIND, cls.SERVICE, cls.OP, cls.VERSION, len(body),
                                        i) + body)
                count("service_valid" if unpacks(cls, body) else "service_malformed")
                drain()
            elif r < 0.45:
                # Well-framed, unknown service/op/version: dropped, counted, conn kept.
                body = os.urandom(rnd.randint(0, 64))
                svc, op, ver = rnd.choice([(999, 1, 1), (1, 99, 1), (1, 1, 9)])
                authed().sendall(header(frame.ICS_KIND_CALL, svc, op, ver, len(body), i)
                                 + body)
                count("unknown_op")
                drain()
            else:
                # ics_test echo with a hostile body: bad lengths, truncation, trailing bytes.
                n = rnd.randint(0, 300)
                echo = bytearray(os.urandom(n))
                if n >= 8 and rnd.random() < 0.5:
                    struct.pack_into("<II", echo, 0, i, rnd.choice([70000, n, 0xFFFFFFFF]))
                kind = rnd.choice([frame.ICS_KIND_CALL, frame.ICS_KIND_ONEWAY])
                authed().sendall(header(kind, 1, 2, 1, len(echo), i) + bytes(echo))
                count("hostile_body")
                drain()
        except (ConnectionError, OSError):
            count("send_failed")
            drop()
    # Replies to the calls above come back on the same connection; read what is there.
    if sock is not None:
        sock.settimeout(2)
        got = 0
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                got += len(data)
        except OSError:
            pass
        sent["reply_bytes"] = got
        drop()
    print(json.dumps(sent, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
