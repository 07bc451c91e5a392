"""protect=auth's frame tag (kernel/ics/ics_mac.c), in Python.

Frame n of a direction is followed on the wire by
``Poly1305(BLAKE2s-256(key=session key, n as le64), header | body | pages)``.
Written from that description alone, so that a test peer speaking it checks the
kernel's format, not a copy of the kernel's code.
"""

from __future__ import annotations

import hashlib
import struct

TAG_SIZE = 16
KEY_SIZE = 32
_P1305 = (1 << 130) - 5
_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF


def poly1305(one_time_key: bytes, msg: bytes) -> bytes:
    """RFC 8439 section 2.5."""
    if len(one_time_key) != 32:
        raise ValueError("a Poly1305 key is 32 bytes")
    r = int.from_bytes(one_time_key[:16], "little") & _CLAMP
    s = int.from_bytes(one_time_key[16:], "little")
    acc = 0
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % _P1305
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def frame_tag(session_key: bytes, seq: int, frame: bytes) -> bytes:
    """The tag of frame number *seq* (from 0 at the handshake) of one direction."""
    if len(session_key) != KEY_SIZE:
        raise ValueError(f"a session key is {KEY_SIZE} bytes")
    otk = hashlib.blake2s(struct.pack("<Q", seq), key=session_key, digest_size=32).digest()
    return poly1305(otk, frame)
