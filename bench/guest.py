"""Guest program start: how fast Python and ``ssictl`` start inside TCG guests.

Each variant boots its own cluster and times, inside the guest (``/proc/uptime``
around the command, median of several runs): ``/usr/bin/python3 -S -c pass``,
``python3 -c pass`` (the venv's), ``ssictl --help`` and, on a formed 3-node
cluster, ``ssictl cluster status``; and from the host the wall time of what
``make cluster EXEC=true`` does (boot 3 nodes, form the SSI cluster, run a
command on node 1). Variants, all measured in this run:

* ``9p-none``: the host root over 9p with ``cache=none``, nothing else, and
  the cluster formed by ``ssictl cluster up`` in Python (the baseline: how
  guests ran before the image, the daemon and ``ssi-cluster-up``);
* ``9p-loose``, ``9p-mmap``: other 9p cache modes, same otherwise (and whether
  mounting proc over the cached 9p ``/proc`` still works there);
* ``image``: the Python runtime from the EROFS image (qemu/guest_image.py);
* ``image+daemon``: that, plus the resident ssictl daemon and its thin client
  (the default). The daemon starts on the first root ``ssictl`` call: that
  first call is timed on its own (``ssictl_first_call``); the medians come
  after it.

Every variant but the baseline forms the cluster with ``ssi-cluster-up``
(ssictl/cluster_up.c), as the harness does.

virtio-fs is not a variant: Debian 12 ships no virtiofsd, and QEMU 7.2 no
longer has its own.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from qemu import Cluster, Node

RUNS = 5


@dataclass(frozen=True)
class Variant:
    name: str
    cache: str
    image: bool
    daemon: bool
    python_bring_up: bool = False


VARIANTS = (
    Variant("9p-none", "none", image=False, daemon=False, python_bring_up=True),
    Variant("9p-loose", "loose", image=False, daemon=False),
    Variant("9p-mmap", "mmap", image=False, daemon=False),
    Variant("image", "none", image=True, daemon=False),
    Variant("image+daemon", "none", image=True, daemon=True),
)

TIMED = (
    "read -r s _ </proc/uptime; {cmd} >/dev/null 2>&1; rc=$?; "
    "read -r e _ </proc/uptime; echo $rc $s $e"
)


@contextlib.contextmanager
def _environment(v: Variant) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("SSI_9P_CACHE", "SSI_GUEST_IMAGE")}
    os.environ["SSI_9P_CACHE"] = v.cache
    os.environ["SSI_GUEST_IMAGE"] = "1" if v.image else "0"
    try:
        yield
    finally:
        for k, val in saved.items():
            if val is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = val


def _cluster(v: Variant, nodes: int) -> Cluster:
    with _environment(v):
        # NodeConfig reads the environment when the nodes are made, in start().
        c = Cluster(nodes=nodes, name=f"bench-guest-{v.name}",
                    extra_append="" if v.daemon else "ssi.nodaemon")
        c.start()
    return c


def time_in_guest(nd: Node, cmd: str, runs: int = RUNS, warm_up: bool = True) -> dict[str, Any]:
    """Seconds `cmd` takes in the guest, by its own clock; runs after one warm-up."""
    times: list[float] = []
    rc = 0
    for i in range(runs + 1 if warm_up else runs):
        out = nd.succeed(TIMED.format(cmd=cmd), timeout=120).split()
        rc = int(out[0])
        if i or not warm_up:
            times.append(round(float(out[2]) - float(out[1]), 2))
    return {"median_s": statistics.median(times), "runs_s": times, "rc": rc}


def _proc_mounted(nd: Node) -> bool:
    rc, out, _ = nd.execute("grep -c '^proc /proc proc' /proc/mounts")
    return rc == 0 and out.strip() == "1"


def measure(v: Variant) -> dict[str, Any]:
    result: dict[str, Any] = {}
    t0 = time.monotonic()
    c = _cluster(v, 3)
    try:
        boot = time.monotonic() - t0
        c.bring_up(python_cli=v.python_bring_up)
        c.node(1).succeed("true")
        result["make_cluster_exec_true_s"] = round(time.monotonic() - t0, 2)
        result["boot_s"] = round(boot, 2)
        nd = c.node(1)
        result["proc_mounted"] = _proc_mounted(nd)
        result["ssictl_first_call"] = time_in_guest(nd, "ssictl clusternode-num", runs=1,
                                                    warm_up=False)
        result["python3_S_pass"] = time_in_guest(nd, "/usr/bin/python3 -S -c pass")
        result["venv_python3_pass"] = time_in_guest(nd, "python3 -c pass")
        result["ssictl_help"] = time_in_guest(nd, "ssictl --help")
        result["ssictl_cluster_status"] = time_in_guest(nd, "ssictl cluster status")
    finally:
        c.stop()
    return result


def run(variants: tuple[Variant, ...] = VARIANTS) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for v in variants:
        r = measure(v)
        results[v.name] = r
        print(f"guest {v.name}: python3 -S {r['python3_S_pass']['median_s']} s, "
              f"python3 {r['venv_python3_pass']['median_s']} s, "
              f"ssictl --help {r['ssictl_help']['median_s']} s, "
              f"cluster status {r['ssictl_cluster_status']['median_s']} s, "
              f"first ssictl call {r['ssictl_first_call']['median_s']} s, "
              f"boot+bring-up+true {r['make_cluster_exec_true_s']} s")
    base = results.get("9p-none")
    best = results.get("image+daemon")
    if base and best:
        results["ratios_default_vs_9p_none"] = {
            k: round(best[k]["median_s"] / base[k]["median_s"], 3)
            for k in ("python3_S_pass", "venv_python3_pass", "ssictl_help",
                      "ssictl_cluster_status")
        } | {"make_cluster_exec_true_s": round(
            best["make_cluster_exec_true_s"] / base["make_cluster_exec_true_s"], 3)}
    return {"guest": results}
