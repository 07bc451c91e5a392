"""Helpers of the CLMS cluster tests (test_clms.py at 3 nodes, test_clms_scale.py at 8).

Guests are driven with busybox and build/bin/clms-tool (kernel/clms/tools/clms-tool.c,
built static on the host): Python costs seconds per start in a TCG guest.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from qemu import Cluster, Node
from qemu.paths import LOG_ROOT, flavor, safe_name

REPO = Path(__file__).resolve().parents[2]
MODULES_OUT = flavor().modules_out  # this kernel flavor's .ko files
TOOL_SRC = REPO / "kernel" / "clms" / "tools" / "clms-tool.c"
TOOL = REPO / "build" / "bin" / "clms-tool"
SYS = "/sys/kernel/ssi/clms"
KEY = "ssikit test cluster key, 32 byte"
WRONG_KEY = "this is not the cluster key!!!!!"
EHOSTDOWN = 112

T = TypeVar("T")


# clms.ko's defaults as this flavor's modules were built (heartbeat 100 ms and
# timeout 1000 ms; a lockdep kernel's 400 and 4000).  Read when a test runs, not
# at import: collecting the tests must not need the modules built.
def heartbeat_ms() -> int:
    return int(flavor().module_config("SSI_CLMS_HEARTBEAT_MS"))


def timeout_ms() -> int:
    return int(flavor().module_config("SSI_CLMS_TIMEOUT_MS"))


def detect_limit() -> float:
    """Seconds from a crash until the survivors report the node not UP: the
    timeout, then a tick and a push."""
    return timeout_ms() / 1000 + 0.5


def on(cluster: Cluster, nodes: Iterable[int], fn: Callable[[Node], T]) -> dict[int, T]:
    """fn(node) on several nodes at once (each node has its own command channel)."""
    nodes = list(nodes)
    with ThreadPoolExecutor(len(nodes)) as pool:
        futs = {n: pool.submit(fn, cluster.node(n)) for n in nodes}
        return {n: f.result() for n, f in futs.items()}


def load_cmd(table_size: int, key: str = KEY) -> str:
    """Shell: load ssi_core, ics, clms (if not loaded), then set key and table (once:
    setting the key again would drop every ICS connection)."""
    ins = []
    for mod, args in (("ssi_core", ""), ("ics", ""), ("clms", " test_knobs=1")):
        ins.append(
            f"grep -q '^{mod} ' /proc/modules || busybox insmod {MODULES_OUT}/{mod}.ko{args}"
            " || exit 1"
        )
    return "; ".join(ins) + (
        f"; grep -qx 1 /sys/kernel/ssi/ics/key_set || {TOOL} setup '{key}' {table_size}"
    )


def bring_up(cluster: Cluster, nodes: Iterable[int] | None = None, key: str = KEY) -> None:
    """Load and set up `nodes` (default: all), the table being every node of the cluster."""
    nodes = range(1, cluster.size + 1) if nodes is None else nodes
    on(cluster, nodes, lambda nd: nd.succeed(load_cmd(cluster.size, key), timeout=60))


@dataclass
class View:
    transition: int
    master: int
    self: int
    quorum: int
    states: dict[int, str]

    @staticmethod
    def parse(line: str) -> View:
        kv = dict(w.split("=", 1) for w in line.split())
        states = {int(k): v for k, v in kv.items() if k.isdigit()}
        return View(
            int(kv["transition"]), int(kv["master"]), int(kv["self"]), int(kv["quorum"]), states
        )


def view(nd: Node) -> View:
    return View.parse(nd.succeed(f"{TOOL} membership", timeout=30).strip())


def wait_agree(
    cluster: Cluster,
    nodes: Iterable[int],
    states: dict[int, str],
    master: int | None = None,
    timeout: float = 30.0,
) -> View:
    """Wait until every node of `nodes` holds the same membership, with these states."""
    nodes = list(nodes)
    # A deadline, scaled like the harness's (debug: one `clms-tool membership`
    # took 38 s in a starved guest); what must hold at the end does not change.
    deadline = time.monotonic() + flavor().timeout(timeout)
    while True:
        views = on(cluster, nodes, view)
        first = views[nodes[0]]
        ok = all(
            v.quorum == 1
            and v.states == states
            and v.transition == first.transition
            and v.master == first.master
            and (master is None or v.master == master)
            for v in views.values()
        )
        if ok:
            return first
        if time.monotonic() > deadline:
            raise AssertionError(f"no agreement on {states} (master {master}): {views}")
        time.sleep(0.2)



def members(nd: Node) -> dict[int, tuple[str, int, int]]:
    """sysfs members: node -> (state, incarnation, since_ns)."""
    out = {}
    for line in nd.succeed(f"cat {SYS}/members").splitlines():
        n, state, inc, since = line.split()
        out[int(n)] = (state, int(inc), int(since))
    return out


def sysread(nd: Node, name: str) -> str:
    return nd.succeed(f"cat {SYS}/{name}").strip()


def write_sys(nd: Node, name: str, value: str) -> tuple[int, str]:
    """Write to a clms sysfs file; (exit code, error message) of busybox sh's echo."""
    rc, _, err = nd.execute(f"busybox sh -c \"echo '{value}' > {SYS}/{name}\"")
    return rc, err


def info(nd: Node, node: int) -> dict[str, str]:
    return dict(w.split("=", 1) for w in nd.succeed(f"{TOOL} info {node}").split())


def qemu_console_file(nd: Node) -> str:
    """The console log file QEMU writes, even if another test session that shares
    build/logs/ has unlinked and recreated the path meanwhile."""
    path = str(nd.cfg.console_log)
    if nd.proc is not None:
        fds = f"/proc/{nd.proc.pid}/fd"
        with contextlib.suppress(OSError):
            for fd in os.listdir(fds):
                with contextlib.suppress(OSError):
                    if os.readlink(f"{fds}/{fd}") in (path, f"{path} (deleted)"):
                        return f"{fds}/{fd}"
    return path


class ConsoleWatch:
    """The host time at which a regex first shows up on a node's console, from now on.

    Guests log their observations to /dev/kmsg (clms-tool wait-down does), which
    reaches the console log file at once; timing them on the host needs no guest
    clock. A daemon thread polls the file every 2 ms.
    """

    def __init__(self, nd: Node, pattern: str) -> None:
        self.node = nd.name
        self.path = qemu_console_file(nd)
        self.offset = os.stat(self.path).st_size
        self.rx = re.compile(pattern)
        self.seen: int | None = None
        self.match: re.Match[str] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        text = ""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            while not self._stop.is_set():
                chunk = f.read()
                if not chunk:
                    time.sleep(0.002)
                    continue
                now = time.time_ns()
                text += chunk.decode(errors="replace")
                m = self.rx.search(text)
                if m:
                    self.seen, self.match = now, m
                    return

    def wait(self, timeout: float = 20.0) -> tuple[int, re.Match[str]]:
        self._thread.join(timeout)
        self._stop.set()
        assert self.seen is not None and self.match is not None, (
            f"{self.node}: {self.rx.pattern!r} not on the console within {timeout} s"
        )
        return self.seen, self.match


def start_watchers(cluster: Cluster, nodes: Iterable[int], target: int) -> dict[int, ConsoleWatch]:
    """On `nodes`, log the moment `target` stops being UP (clms-tool wait-down)."""
    watches = {
        n: ConsoleWatch(cluster.node(n), rf"clms-tool: node {target} (\w+)\r?\n") for n in nodes
    }
    on(
        cluster,
        nodes,
        lambda nd: nd.succeed(f"{TOOL} wait-down {target} 30000 >/tmp/wd 2>&1 </dev/null &"),
    )
    return watches


def detection_times(watches: dict[int, ConsoleWatch], t0: int) -> dict[int, tuple[float, str]]:
    """node -> (seconds from t0 until it reported the node not UP, the state it had)."""
    out = {}
    for n, w in watches.items():
        seen, m = w.wait()
        out[n] = ((seen - t0) / 1e9, m.group(1))
    return out


def fmt(det: dict[int, tuple[float, str]]) -> str:
    return ", ".join(f"node{n} {secs:.3f} s ({st})" for n, (secs, st) in det.items())


def check_detection(det: dict[int, tuple[float, str]], limit: float | None = None) -> None:
    limit = detect_limit() if limit is None else limit
    for n, (secs, _) in det.items():
        assert secs <= limit, f"node{n} took {secs:.3f} s"
        assert secs >= 0, f"node{n} saw it down {-secs:.3f} s before the event: a flap"


def restart(cluster: Cluster, n: int, key: str = KEY) -> None:
    cluster.node(n).start()
    bring_up(cluster, [n], key)


def build_tool() -> Path:
    """build/bin/clms-tool (static), rebuilt when its source is newer."""
    if not (MODULES_OUT / "clms.ko").is_file():
        pytest.fail(f"{MODULES_OUT}/clms.ko is missing: build the modules", pytrace=False)
    if shutil.which("gcc") is None:
        pytest.fail("needs gcc on the host to build clms-tool", pytrace=False)
    if not TOOL.is_file() or TOOL.stat().st_mtime < TOOL_SRC.stat().st_mtime:
        TOOL.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "gcc",
                "-static",
                "-O2",
                "-Wall",
                "-I",
                str(REPO / "abi"),
                "-o",
                str(TOOL),
                str(TOOL_SRC),
            ],
            check=True,
        )
    return TOOL


def save_dmesg(cluster: Cluster | None, name: str) -> None:
    """Keep every running node's kernel log under build/logs/<name>/ (the console is quiet)."""
    if cluster is None:
        return
    out = LOG_ROOT / safe_name(name)
    out.mkdir(parents=True, exist_ok=True)
    for nd in cluster.nodes:
        if nd.is_running:
            _, text, _ = nd.execute("dmesg", timeout=30)
            (out / f"node{nd.number}.dmesg").write_text(text)
