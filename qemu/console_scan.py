"""Find kernel splats (oopses, warnings, lockdep, hangs, panics) in console logs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# (kind, pattern); matched against each console line.
SPLAT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("oops", r"\bOops\b"),
    ("bug", r"\bBUG:"),
    ("warning", r"\bWARNING:"),
    ("kasan", r"\bKASAN\b"),
    ("lockdep", r"possible circular locking|possible recursive locking|\block ?dep\b"
                r"|inconsistent lock state|suspicious RCU usage"),
    ("hung-task", r"INFO: task .* blocked for more than"),
    ("soft-lockup", r"soft lockup"),
    ("hard-lockup", r"hard LOCKUP"),
    ("panic", r"Kernel panic"),
    ("gpf", r"general protection fault"),
    ("rcu-stall", r"RCU stall|rcu_sched self-detected stall|rcu: INFO: .* detected stalls?"),
    ("ubsan", r"UBSAN:"),
)
_COMPILED = tuple((kind, re.compile(pat)) for kind, pat in SPLAT_PATTERNS)


@dataclass(frozen=True)
class Splat:
    node: int
    line_no: int  # 1-based, counted from the start of the scanned text
    kind: str
    line: str

    def __str__(self) -> str:
        return f"node{self.node}:{self.line_no}: [{self.kind}] {self.line}"


def scan_text(
    text: str, node: int = 0, allow: Iterable[str] = (), first_line: int = 1
) -> list[Splat]:
    """Every line of `text` that looks like a kernel splat and matches no `allow` regex."""
    allowed = [re.compile(a) for a in allow]
    hits: list[Splat] = []
    for i, raw in enumerate(text.splitlines()):
        line = raw.rstrip("\r")
        for kind, rx in _COMPILED:
            if rx.search(line):
                if not any(a.search(line) for a in allowed):
                    hits.append(Splat(node, first_line + i, kind, line.strip()))
                break
    return hits


def read_from(path: Path, offset: int = 0) -> tuple[str, int, int]:
    """(text from byte `offset`, new end offset, 1-based number of its first line)."""
    try:
        with open(path, "rb") as f:
            head = f.read(offset)
            data = f.read()
    except FileNotFoundError:
        return "", offset, 1
    first_line = head.count(b"\n") + 1
    return data.decode("utf-8", "replace"), offset + len(data), first_line


def scan_file(
    path: Path, node: int = 0, offset: int = 0, allow: Iterable[str] = ()
) -> tuple[list[Splat], int]:
    """Splats in `path` after byte `offset`, and the offset scanned up to."""
    text, end, first = read_from(path, offset)
    # Only whole lines: a line still being written is scanned next time.
    cut = text.rfind("\n") + 1
    whole = text[:cut]
    end = offset + len(whole.encode("utf-8", "replace")) if cut < len(text) else end
    return scan_text(whole, node, allow, first), end


def format_splats(splats: Iterable[Splat]) -> str:
    return "\n".join(str(s) for s in splats)
