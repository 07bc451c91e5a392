"""kmemleak scans on the guests of the debug kernel flavor.

kmemleak (CONFIG_DEBUG_KMEMLEAK, debug flavor only) reports an object once a
scan finds no reference to it and it is older than its minimum age (5 s).
The harness scans every running node at the end of each cluster test module
(tests/cluster/conftest.py) and fails the module on an unreferenced object
allocated by an ssikit module: one whose backtrace names one of
:data:`SSIKIT_MODULES`, or has a frame in module space that no longer
resolves (a module unloaded since the allocation).  Leaks of the kernel
proper are not ours to fix here and are left to the kernel's own report.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from .node import Node
from .paths import REPO_ROOT

DEBUGFS = "/sys/kernel/debug"
KMEMLEAK = f"{DEBUGFS}/kmemleak"


def _manifest_modules() -> tuple[str, ...]:
    with open(REPO_ROOT / "kernel" / "modules.toml", "rb") as f:
        return tuple(m["name"] for m in tomllib.load(f).get("module", []))


# Every module of the manifest (kernel/modules.toml).
SSIKIT_MODULES = _manifest_modules()
# A frame in x86_64 module space (0xffffffffa0000000 up) that kallsyms could
# not name, so its module is gone: kmemleak prints "[<ptr>] %pS", and %pS of an
# address without a symbol is the bare address.  Named frames read
# "[<ptr>] sym+0x../0x.. [mod]".
_UNRESOLVED_MODULE_FRAME = re.compile(r"\[<[0-9a-f]+>\] 0xffffffff[a-f][0-9a-f]{7}\b")


def split_report(report: str) -> list[str]:
    """kmemleak's report (the text of /sys/kernel/debug/kmemleak) as one string
    per unreferenced object."""
    objects = re.split(r"(?m)^(?=unreferenced object )", report)
    return [o for o in objects if o.startswith("unreferenced object")]


def ssikit_objects(report: str, modules: Iterable[str] = SSIKIT_MODULES) -> list[str]:
    """The objects of `report` allocated by an ssikit module (a backtrace frame
    in one of `modules`, or in module space that no longer resolves)."""
    ours = re.compile(r"\[(" + "|".join(map(re.escape, modules)) + r")\]")
    return [o for o in split_report(report)
            if ours.search(o) or _UNRESOLVED_MODULE_FRAME.search(o)]


# Mount debugfs if init has not, then two scans at least the minimum object
# age apart: an object allocated just before the first scan is reported by
# the second.  A kernel without kmemleak (normal flavor) prints NOKMEMLEAK.
SCAN_SCRIPT = (
    f"grep -q ' {DEBUGFS} debugfs' /proc/mounts || mount -t debugfs none {DEBUGFS}; "
    f"if [ ! -e {KMEMLEAK} ]; then echo NOKMEMLEAK; exit 0; fi; "
    f"echo scan > {KMEMLEAK} && sleep 6 && echo scan > {KMEMLEAK} && cat {KMEMLEAK}"
)


def scan_node(nd: Node, timeout: float = 150.0) -> str | None:
    """kmemleak's full report on `nd` after two scans; None without kmemleak.
    `timeout` is for the normal flavor: Node scales it by the flavor's factor."""
    out = nd.succeed(SCAN_SCRIPT, timeout=timeout)
    return None if out.strip() == "NOKMEMLEAK" else out


def clear_node(nd: Node, timeout: float = 60.0) -> None:
    """Forget what kmemleak has reported so far on `nd` (a later scan reports
    only objects still unreferenced then)."""
    nd.succeed(f"grep -q ' {DEBUGFS} debugfs' /proc/mounts || mount -t debugfs none {DEBUGFS}; "
               f"[ ! -e {KMEMLEAK} ] || echo clear > {KMEMLEAK}", timeout=timeout)


def ssikit_leaks(nodes: Iterable[Node], timeout: float = 150.0) -> dict[int, list[str]]:
    """Scan every node in `nodes` (in parallel) and return, per node number,
    the unreferenced objects allocated by ssikit modules (empty lists when
    clean; nodes without kmemleak are left out)."""
    todo = list(nodes)
    if not todo:
        return {}
    with ThreadPoolExecutor(len(todo)) as pool:
        reports = dict(zip([nd.number for nd in todo],
                           pool.map(lambda nd: scan_node(nd, timeout), todo), strict=True))
    return {n: ssikit_objects(r) for n, r in reports.items() if r is not None}


def format_leaks(leaks: dict[int, list[str]]) -> str:
    return "\n".join(f"node{n}:\n{o.rstrip()}" for n, objs in sorted(leaks.items()) for o in objs)
