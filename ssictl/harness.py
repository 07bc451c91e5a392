"""Bring a booted QEMU test cluster (``qemu.Cluster``) into one SSI cluster, fast.

::

    from ssictl.harness import bring_up
    bring_up(cluster)                              # ssi_core, ics, clms, vproc; waits for all UP
    bring_up(cluster, modules=("ssi_core", "ics"))     # ICS only, no membership wait
    bring_up(cluster, modules=("ssi_core", "ics", "clms", "ics_test"), key=b"k" * 32)

Every node runs ONE shell command through its command channel, all nodes at once
(one thread each): ``ssictl cluster up --nodes N --key-file - --modules ... --json``
with the key piped on stdin as hex. That is one Python start per node (seconds under
TCG), doing ``modules load`` + ``cluster setup`` (+ ``--wait``) in one process.
The table is the harness's (nodes 1..N at 169.254.77.<n>). Modules already loaded
are left as they are, so calling it again re-applies key and table only.

The key passes through the guest agent's command file (tmpfs, removed after the
command): fine for test clusters, not a pattern for real ones.

Only ``cluster.nodes`` (each with ``.number`` and ``.execute(cmd, timeout)``) is used;
this module imports nothing from ``qemu``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[1]
SSICTL = REPO / ".venv" / "bin" / "ssictl"

# A fixed test key (32 bytes): test clusters only.
DEFAULT_KEY = b"ssikit test cluster key, 32 byte"
DEFAULT_MODULES = ("ssi_core", "ics", "clms", "vproc")
DEFAULT_WAIT_UP = 120.0  # seconds; used when "clms" is among the modules


class HarnessNode(Protocol):
    @property
    def number(self) -> int: ...

    def execute(self, cmd: str, timeout: float = ...) -> tuple[int, str, str]: ...


class HarnessCluster(Protocol):
    @property
    def nodes(self) -> Sequence[HarnessNode]: ...


class BringUpError(RuntimeError):
    """``cluster up`` failed on some node(s); *results* holds every node's outcome."""

    def __init__(self, message: str, results: dict[int, dict[str, Any]]) -> None:
        super().__init__(message)
        self.results = results


def up_command(
    nodes: int,
    key: bytes,
    modules: Sequence[str],
    *,
    name: str | None = None,
    wait_up: float = 0.0,
) -> str:
    """The shell command one node runs (the key goes to stdin as hex)."""
    args = [
        str(SSICTL),
        "cluster",
        "up",
        "--nodes",
        str(nodes),
        "--key-file",
        "-",
        "--json",
    ]
    if modules:
        args += ["--modules", ",".join(modules)]
    if name is not None:
        args += ["--name", name]
    if wait_up > 0:
        args += ["--wait", f"{wait_up:g}"]
    return f"printf '%s\\n' {key.hex()} | " + " ".join(shlex.quote(a) for a in args)


def _parse(rc: int, out: str, err: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(out)
    except ValueError:
        data = {"ok": False, "error": {"message": "no JSON from ssictl", "hint": ""}}
    data["rc"] = rc
    if err.strip():
        data["stderr"] = err
    if rc != 0:
        data["ok"] = False
    return data


def bring_up(
    cluster: HarnessCluster,
    key: bytes = DEFAULT_KEY,
    modules: Sequence[str] = DEFAULT_MODULES,
    *,
    name: str | None = None,
    wait_up: float | None = None,
    timeout: float = 240.0,
) -> dict[int, dict[str, Any]]:
    """Load *modules* and set *key* and the harness table on every node, in parallel.

    *wait_up*: seconds each node waits until it sees every node UP (needs clms);
    ``None`` means DEFAULT_WAIT_UP if "clms" is in *modules*, else no wait.
    Returns each node's ``ssictl cluster up --json`` document; raises
    :class:`BringUpError` naming every node that failed and why.
    """
    if wait_up is None:
        wait_up = DEFAULT_WAIT_UP if "clms" in modules else 0.0
    nodes = list(cluster.nodes)
    cmd = up_command(len(nodes), key, modules, name=name, wait_up=wait_up)

    def run(nd: HarnessNode) -> dict[str, Any]:
        rc, out, err = nd.execute(cmd, timeout=timeout + wait_up)
        return _parse(rc, out, err)

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        futures = {nd.number: pool.submit(run, nd) for nd in nodes}
        results = {n: f.result() for n, f in futures.items()}
    failed = {n: r for n, r in results.items() if not r.get("ok")}
    if failed:
        lines = [f"bring_up({', '.join(modules)}) failed on node(s) {', '.join(map(str, failed))}:"]
        for n, r in sorted(failed.items()):
            e = r.get("error", {})
            lines.append(f"  node{n} (exit {r['rc']}): {e.get('message', '?')}")
            if e.get("hint"):
                lines.append(f"    fix: {e['hint']}")
            for d in e.get("details", []):
                lines.append(f"    {d}")
            if r.get("stderr"):
                lines += [f"    stderr: {ln}" for ln in r["stderr"].splitlines()[-10:]]
        raise BringUpError("\n".join(lines), results)
    return results
