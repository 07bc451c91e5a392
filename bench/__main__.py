"""Run the benchmarks: ``python -m bench [NAME...]`` (default: all)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from . import boot, cfs, clms, guest, ics, migrate, vproc
from .common import write_result

BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "boot": boot.run,
    "guest": guest.run,
    "ics": ics.run,
    "clms": clms.run,
    "vproc": vproc.run,
    "migrate": migrate.run,
    "cfs": cfs.run,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    for name in names:
        path = write_result(name, BENCHMARKS[name]())
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
