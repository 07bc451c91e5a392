"""Node addresses on the cluster network: IPv4 only (stdlib ``ipaddress``, no cffi).

Strict dotted quad (``ipaddress`` refuses ``inet_aton`` shorthands such as ``10.1``
and leading zeros); an address that cannot be one host's is refused too.
"""

from __future__ import annotations

import ipaddress
import sys


def parse_node_address(text: object) -> ipaddress.IPv4Address:
    """*text* as a node's address; ``ValueError`` saying why it cannot be one."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not an IPv4 address (expected a.b.c.d, each 0..255)")
    try:
        addr = ipaddress.IPv4Address(text)
    except ipaddress.AddressValueError:
        raise ValueError(
            f"{text!r} is not an IPv4 address (expected a.b.c.d, each 0..255)"
        ) from None
    if addr.is_unspecified:
        raise ValueError(f"{text} is not a usable node address")
    if addr.is_multicast or addr == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"{text} is not a usable node address (multicast or broadcast)")
    return addr


def parse_ipv4(text: str) -> bytes:
    """``"169.254.77.1"`` -> its 4 bytes in network order (see :func:`parse_node_address`)."""
    return parse_node_address(text).packed


def ipv4_to_u32(text: str) -> int:
    """The ``__u32`` that holds *text* in network byte order (as the kernel reads it)."""
    return int.from_bytes(parse_ipv4(text), sys.byteorder)


def u32_to_ipv4(value: int) -> str:
    """Inverse of :func:`ipv4_to_u32` (``0`` -> ``""``: no address)."""
    if not value:
        return ""
    return str(ipaddress.IPv4Address(value.to_bytes(4, sys.byteorder)))
