"""The ICS peers file, ``/sys/kernel/ssi/ics/peers`` (stdlib only, no cffi).

ics.ko writes one configured node per line::

    1 169.254.77.1 prio=1 bulk=0

(node, address, then ``key=value`` fields: which channels to that peer are
connected). The one parser of that format; unknown fields are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ICS_PEERS = Path("/sys/kernel/ssi/ics/peers")


def parse_peers(text: str) -> list[dict[str, Any]]:
    """Peers lines -> ``{"node": 1, "addr": "169.254.77.1", "prio": True, ...}``, in order.

    ``0``/``1`` values become booleans; lines that do not start with a node number
    are skipped."""
    peers: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or not (fields[0].isascii() and fields[0].isdigit()):
            continue
        peer: dict[str, Any] = {"node": int(fields[0]), "addr": fields[1]}
        for f in fields[2:]:
            k, sep, v = f.partition("=")
            if sep:
                peer[k] = bool(int(v)) if v in ("0", "1") else v
        peers.append(peer)
    return peers


def read_peers(path: Path | None = None) -> list[dict[str, Any]] | None:
    """The peers ics.ko lists now, or ``None`` if the file cannot be read (no ics)."""
    try:
        text = (path or ICS_PEERS).read_text(errors="replace")
    except OSError:
        return None
    return parse_peers(text)


def peer_table(path: Path | None = None) -> dict[int, str] | None:
    """The cluster table as ics.ko holds it (node -> address), or ``None`` if unknown."""
    peers = read_peers(path)
    return None if peers is None else {p["node"]: p["addr"] for p in peers}
