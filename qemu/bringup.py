"""Turn a booted test cluster into one SSI cluster, fast: ``Cluster.bring_up()``.

::

    cluster.bring_up()                             # ssi_core, ics, clms, vproc; all UP
    cluster.bring_up(modules=("ssi_core", "ics"))  # ICS only, no membership wait
    cluster.bring_up(modules=(..., "ics_test"), key=b"k" * 32)

Every node runs ONE shell command through its command channel, all nodes at once
(one thread each)::

    ssi-cluster-up --peer 1=169.254.77.1 --peer 2=169.254.77.2 ... \\
        --key-file - --json --modules ssi_core,ics,... [--wait S]

with the key piped on stdin as hex. ``ssi-cluster-up`` (ssictl/cluster_up.c) is
``ssictl cluster up`` compiled: same checks, same JSON, no Python start (which
costs seconds of CPU per node under TCG, with three guests on two host cores).
It loads the modules in the order given, so the harness works the order out
here, dependencies included, from the .ko files' depends. The table is the
harness's one address plan, ``qemu_cmd.node_ip``, passed explicitly. Modules
already loaded are left as they are, so calling it again re-applies key and
table only. ``ssictl cluster up`` itself is tested in
tests/cluster/test_ssictl_cluster.py.

The key passes through the guest agent's command file (tmpfs, removed after the
command) and is masked in the command log: fine for test clusters, not a
pattern for real ones.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cbuild import GUEST_BIN_DIR
from .paths import flavor, guest_speedups
from .qemu_cmd import node_ip

if TYPE_CHECKING:
    from .cluster import Cluster
    from .node import Node

# The guests' ssictl: the thin client of each node's resident daemon (it runs
# the Python CLI itself when no daemon is up).
SSICTL = GUEST_BIN_DIR / "ssictl"
CLUSTER_UP = GUEST_BIN_DIR / "ssi-cluster-up"

# A fixed test key (32 bytes): test clusters only.
DEFAULT_KEY = b"ssikit test cluster key, 32 byte"
DEFAULT_MODULES = ("ssi_core", "ics", "clms", "vproc")
DEFAULT_WAIT_UP = 120.0  # seconds; used when "clms" is among the modules
KEY_MASK = "<key>"


class BringUpError(RuntimeError):
    """``cluster up`` failed on some node(s); *results* holds every node's outcome."""

    def __init__(self, message: str, results: dict[int, dict[str, Any]]) -> None:
        super().__init__(message)
        self.results = results


def peer_table(numbers: Sequence[int]) -> dict[int, str]:
    """Node number -> address for these nodes, from the harness's address plan."""
    return {n: node_ip(n) for n in numbers}


def load_order(modules: Sequence[str], module_dir: Path | None = None) -> list[str]:
    """*modules* and their dependencies, dependencies first, as the .ko files in
    *module_dir* (default: this flavor's build) declare them. Without those files
    the order given is kept: the node then says which file it misses."""
    from ssictl import kmod

    d = module_dir if module_dir is not None else flavor().modules_out
    try:
        found = kmod.discover(d) if d.is_dir() else {}
    except kmod.ModinfoError:
        found = {}
    if not set(modules) <= set(found):
        return list(modules)
    edges = {n: m.depends for n, m in found.items()}
    needed = kmod.closure(modules, edges) & set(found)
    return kmod.toposort({n: edges[n] for n in needed})


def up_command(
    peers: Mapping[int, str],
    key: bytes | None,
    modules: Sequence[str],
    *,
    name: str | None = None,
    wait_up: float = 0.0,
    python_cli: bool = False,
) -> str:
    """The shell command one node runs; the key (hex) goes to stdin, or
    ``KEY_MASK`` in its place when ``key`` is None (for the log). *python_cli*:
    ``ssictl cluster up`` (the Python CLI, or its daemon) instead of ``ssi-cluster-up``."""
    args = [str(SSICTL), "cluster", "up"] if python_cli else [str(CLUSTER_UP)]
    for n in sorted(peers):
        args += ["--peer", f"{n}={peers[n]}"]
    args += ["--key-file", "-", "--json"]
    if modules:
        args += ["--modules", ",".join(modules)]
    if name is not None:
        args += ["--name", name]
    if wait_up > 0:
        args += ["--wait", f"{wait_up:g}"]
    key_text = key.hex() if key is not None else KEY_MASK
    return f"printf '%s\\n' {key_text} | " + " ".join(shlex.quote(a) for a in args)


def parse_result(rc: int, out: str, err: str) -> dict[str, Any]:
    """One node's ``ssictl cluster up --json`` outcome, with ``rc`` (and stderr)."""
    try:
        data: dict[str, Any] = json.loads(out)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        data = {"ok": False, "error": {"message": "no JSON from ssictl", "hint": ""}}
    data["rc"] = rc
    if err.strip():
        data["stderr"] = err
    if rc != 0:
        data["ok"] = False
    return data


def failure_report(modules: Sequence[str], failed: Mapping[int, Mapping[str, Any]]) -> str:
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
    return "\n".join(lines)


def bring_up(
    cluster: Cluster,
    key: bytes = DEFAULT_KEY,
    modules: Sequence[str] = DEFAULT_MODULES,
    *,
    name: str | None = None,
    wait_up: float | None = None,
    timeout: float = 240.0,
    python_cli: bool | None = None,
) -> dict[int, dict[str, Any]]:
    """Load *modules* and set *key* and the harness table on every node, in parallel.

    *wait_up*: seconds each node waits until it sees every node UP (needs clms);
    ``None`` means DEFAULT_WAIT_UP (times the flavor's timeout factor) if "clms"
    is in *modules*, else no wait.
    *python_cli* runs ``ssictl cluster up`` instead (same JSON); None: only when
    $SSI_GUEST_SPEEDUPS=0.
    Returns each node's ``ssi-cluster-up --json`` document; raises
    :class:`BringUpError` naming every node that failed and why.
    """
    if wait_up is None:
        # A deadline like the harness's others: the flavor scales it (a starved
        # 3-node debug cluster was not all UP after 120 s, 2026-12-02).
        wait_up = flavor().timeout(DEFAULT_WAIT_UP) if "clms" in modules else 0.0
    if python_cli is None:
        python_cli = not guest_speedups()
    nodes = list(cluster.nodes)
    peers = peer_table([nd.number for nd in nodes])
    ordered = load_order(modules)
    cmd = up_command(peers, key, ordered, name=name, wait_up=wait_up, python_cli=python_cli)
    shown = up_command(peers, None, ordered, name=name, wait_up=wait_up, python_cli=python_cli)

    def run(nd: Node) -> dict[str, Any]:
        rc, out, err = nd.execute(cmd, timeout=timeout + wait_up, log_as=shown)
        return parse_result(rc, out, err)

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        futures = {nd.number: pool.submit(run, nd) for nd in nodes}
        results = {n: f.result() for n, f in futures.items()}
    failed = {n: r for n, r in results.items() if not r.get("ok")}
    if failed:
        raise BringUpError(failure_report(modules, failed), results)
    return results
