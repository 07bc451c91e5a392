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


Link = tuple[int, int]
"""A directed link (sender, receiver)."""


@dataclass(frozen=True)
class Impairment:
    """What the hub does to frames on one directed link (percentages, ms)."""

    drop: float = 0.0
    corrupt: float = 0.0
    rawcorrupt: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    delay: int = 0
    jitter: int = 0
    hold: int = 20

    def spec(self) -> str:
        """The `KEY=VAL ...` words of an `impair` command."""
        words = []
        for name in ("drop", "corrupt", "rawcorrupt", "dup", "reorder"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"{name}={value}: a percentage is 0..100")
            words.append(f"{name}={value:.4f}".rstrip("0").rstrip("."))
        for name in ("delay", "jitter", "hold"):
            words.append(f"{name}={int(getattr(self, name))}")
        return " ".join(words)


@dataclass(frozen=True)
class LinkStats:
    """Counters of one directed link: `frames` met an impairment."""

    frames: int
    dropped: int
    corrupted: int
    duplicated: int
    delayed: int
    reordered: int
    overflow: int
    pending: int


def _node_word(n: int | None) -> str:
    return "*" if n is None else str(n)


def _parse_links(reply: str) -> dict[Link, dict[str, str]]:
    out: dict[Link, dict[str, str]] = {}
    for word in reply.split()[1:]:
        link, _, fields = word.partition(":")
        a, _, b = link.partition(">")
        out[(int(a), int(b))] = dict(f.split("=", 1) for f in fields.split(","))
    return out


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

    def impair(
        self,
        a: int | None,
        b: int | None,
        *,
        drop: float = 0.0,
        corrupt: float = 0.0,
        rawcorrupt: float = 0.0,
        dup: float = 0.0,
        reorder: float = 0.0,
        delay: int = 0,
        jitter: int = 0,
        hold: int = 20,
        both: bool = False,
    ) -> None:
        """Impair frames from `a` to `b` (None: every node; `both`: also b to a):
        percentages drop/corrupt/rawcorrupt/dup/reorder, delay/jitter/hold in ms.
        The link's previous setting is replaced; fields not given are 0."""
        imp = Impairment(drop, corrupt, rawcorrupt, dup, reorder, delay, jitter, hold)
        self.set_impairment(a, b, imp, both=both)

    def set_impairment(
        self, a: int | None, b: int | None, imp: Impairment, *, both: bool = False
    ) -> None:
        tail = " both" if both else ""
        self.command(f"impair {_node_word(a)} {_node_word(b)} {imp.spec()}{tail}")

    def clear(self, a: int | None = None, b: int | None = None, *, both: bool = False) -> None:
        """Remove impairments: of a>b (and b>a with `both`), or of every link
        when called without nodes. What a cleared link holds is sent at once."""
        if a is None and b is None and not both:
            self.command("clear")
            return
        tail = " both" if both else ""
        self.command(f"clear {_node_word(a)} {_node_word(b)}{tail}")

    def impairments(self) -> dict[Link, Impairment]:
        out: dict[Link, Impairment] = {}
        for link, kv in _parse_links(self.command("impairs")).items():
            out[link] = Impairment(
                drop=float(kv["drop"]),
                corrupt=float(kv["corrupt"]),
                rawcorrupt=float(kv["rawcorrupt"]),
                dup=float(kv["dup"]),
                reorder=float(kv["reorder"]),
                delay=int(kv["delay"]),
                jitter=int(kv["jitter"]),
                hold=int(kv["hold"]),
            )
        return out

    def link_stats(self) -> dict[Link, LinkStats]:
        """Counters of every link that is impaired or has counted something."""
        return {
            link: LinkStats(**{k: int(v) for k, v in kv.items()})
            for link, kv in _parse_links(self.command("linkstats")).items()
        }

    def zero_link_stats(self) -> None:
        self.command("linkstats zero")

    def seed(self, seed: int) -> None:
        """Restart every link's random stream from `seed` (reproducible fates)."""
        self.command(f"seed {seed}")

    def stats(self) -> dict[int, PortStats]:
        out: dict[int, PortStats] = {}
        for word in self.command("stats").split()[1:]:
            node, _, fields = word.partition(":")
            kv = dict(f.split("=") for f in fields.split(","))
            out[int(node)] = PortStats(
                int(kv["rx"]), int(kv["tx"]), int(kv["drop"]), int(kv["queued"])
            )
        return out
