"""Client for the hub's control socket (`hubctl.sock`, text datagrams)."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class HubCommandError(RuntimeError):
    """The hub answered `err ...`."""


@dataclass(frozen=True)
class PortStats:
    rx: int
    tx: int
    drop: int
    queued: int


class HubControl:
    """Send one text command per datagram and wait for the `ok`/`err` reply."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def command(self, line: str, timeout: float = 5.0) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind("")  # autobind to an abstract address so the hub can reply
            sock.settimeout(timeout)
            sock.sendto(line.encode(), str(self.path))
            reply = sock.recv(65536).decode()
        if reply.startswith("err"):
            raise HubCommandError(f"hub: {line!r}: {reply}")
        return reply

    def cut(self, a: int, b: int) -> None:
        self.command(f"cut {a} {b}")

    def uncut(self, a: int, b: int) -> None:
        self.command(f"uncut {a} {b}")

    def partition(self, *groups: Iterable[int]) -> None:
        spec = " ".join(",".join(str(n) for n in sorted(g)) for g in groups)
        self.command(f"partition {spec}")

    def heal(self) -> None:
        self.command("heal")

    def cuts(self) -> set[tuple[int, int]]:
        words = self.command("cuts").split()[1:]
        return {(int(a), int(b)) for a, b in (w.split("-") for w in words)}

    def stats(self) -> dict[int, PortStats]:
        out: dict[int, PortStats] = {}
        for word in self.command("stats").split()[1:]:
            node, _, fields = word.partition(":")
            kv = dict(f.split("=") for f in fields.split(","))
            out[int(node)] = PortStats(
                int(kv["rx"]), int(kv["tx"]), int(kv["drop"]), int(kv["queued"])
            )
        return out
