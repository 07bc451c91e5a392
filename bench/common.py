"""Shared bits of the benchmarks: output location, JSON records, helper binaries."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from qemu import Cluster
from qemu.paths import flavor

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "build" / "bench"
BIN_DIR = REPO / "build" / "bin"


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write one benchmark's JSON (with when and where it ran) and return its path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        **result,
    }
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def static_binary(source: Path, name: str) -> Path:
    """Compile a small C helper statically (guests run the host's root, but static
    keeps it independent of the guest's loader); rebuilt when the source is newer."""
    out = BIN_DIR / name
    if not out.exists() or out.stat().st_mtime < source.stat().st_mtime:
        BIN_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(out),
                        str(source)], check=True)
    return out


def bring_up_protected(c: Cluster, protect: str, modules: tuple[str, ...]) -> None:
    """*modules* and one cluster, ICS with protect=*protect*: ics is loaded with the
    parameter first (tls is its default), and the bring-up keeps loaded modules."""
    if protect != "tls":
        mods = flavor().modules_out
        for nd in c.nodes:
            nd.succeed(f"insmod {mods}/ssi_core.ko && insmod {mods}/ics.ko protect={protect}",
                       timeout=120)
    c.bring_up(modules=modules)
