"""genmod.ics.frame_tag against published vectors (RFC 8439, BLAKE2s keyed)."""

from __future__ import annotations

import hashlib
import struct

import pytest

from genmod.ics.frame_tag import frame_tag, poly1305


def test_poly1305_matches_rfc8439_section_2_5_2() -> None:
    key = bytes.fromhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    tag = poly1305(key, b"Cryptographic Forum Research Group")
    assert tag.hex() == "a8061dc1305136c6c22b8baf0c0127a9"


def test_poly1305_of_an_empty_message_is_s() -> None:
    key = bytes(16) + bytes(range(16))
    assert poly1305(key, b"") == bytes(range(16))


def test_frame_tags_differ_by_frame_number_and_key() -> None:
    key = bytes(range(32))
    frame = b"x" * 100
    assert frame_tag(key, 0, frame) != frame_tag(key, 1, frame)
    assert frame_tag(key, 0, frame) != frame_tag(bytes(32), 0, frame)
    otk = hashlib.blake2s(struct.pack("<Q", 7), key=key, digest_size=32).digest()
    assert frame_tag(key, 7, frame) == poly1305(otk, frame)


def test_bad_key_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        frame_tag(b"short", 0, b"")
    with pytest.raises(ValueError):
        poly1305(b"short", b"")
