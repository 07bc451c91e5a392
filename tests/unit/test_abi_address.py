"""abi.address (node addresses through ipaddress) and abi.ics_peers (the peers file)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from abi import address, ics_peers


def test_wire_encoding_is_network_order_in_a_native_u32() -> None:
    v = address.ipv4_to_u32("10.0.0.1")
    assert v.to_bytes(4, sys.byteorder) == bytes([10, 0, 0, 1])
    assert address.u32_to_ipv4(v) == "10.0.0.1"
    assert address.u32_to_ipv4(0) == ""


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0.0.0.0", "not a usable node address"),
        ("224.0.0.1", "multicast or broadcast"),
        ("255.255.255.255", "multicast or broadcast"),
        ("1.2.3.04", "is not an IPv4 address"),
        ("1.2.3", "is not an IPv4 address"),
        ("::1", "is not an IPv4 address"),
    ],
)
def test_unusable_addresses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        address.parse_node_address(text)


def test_non_string_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not an IPv4 address"):
        address.parse_node_address(0x0A000001)


def test_parse_peers_keeps_unknown_fields_and_skips_junk() -> None:
    text = "1 169.254.77.1 prio=1 bulk=0\n\nnot a peer\n2 169.254.77.2 prio=0 state=up\n"
    assert ics_peers.parse_peers(text) == [
        {"node": 1, "addr": "169.254.77.1", "prio": True, "bulk": False},
        {"node": 2, "addr": "169.254.77.2", "prio": False, "state": "up"},
    ]


def test_peer_table_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "peers"
    f.write_text("3 10.0.0.3 prio=1\n1 10.0.0.1\n")
    assert ics_peers.peer_table(f) == {3: "10.0.0.3", 1: "10.0.0.1"}
    assert ics_peers.read_peers(tmp_path / "absent") is None
    assert ics_peers.peer_table(tmp_path / "absent") is None
