"""vproc on 3 nodes: remote vs local kill latency, and ``ps aux`` clusterwide vs local.

* kill latency, measured on node 1 by perl (the kill system call in a loop, timed
  with Time::HiRes): signal-0 probes of a process on node 1 and of one on node 3,
  and SIGTERM to N ``sleep`` processes on node 3 vs N on node 1;
* ``ps aux`` wall time on node 1, clusterwide vs in localview (``ssictl localview``
  runs the timing loop), in the same cluster and run, with the number of processes
  each listed.
"""

from __future__ import annotations

from typing import Any

from qemu import Cluster, Node
from qemu.bringup import SSICTL

PERL_KILL = (
    "perl -MTime::HiRes=time -e '$s = shift; $t = time; "
    'for $p (@ARGV) { kill($s, $p) or die "kill $p: $!\\n" } '
    "printf qq(%.0f\\n), (time - $t) * 1e9' --"
)
PS_LOOP = (
    "s=$(date +%s%N); i=0; while [ $i -lt {n} ]; do ps aux >/dev/null; i=$((i+1)); done; "
    "e=$(date +%s%N); echo $(( (e - s) / {n} )) $(ps aux | wc -l)"
)


def _start_sleeps(nd: Node, count: int) -> list[int]:
    out = nd.succeed(
        f"i=0; while [ $i -lt {count} ]; do sleep 3600 >/dev/null 2>&1 </dev/null & "
        "echo $!; i=$((i+1)); done",
        timeout=300,
    )
    return [int(x) for x in out.split()]


def _kill_ns(nd: Node, sig: int, pids: list[int]) -> int:
    out = nd.succeed(f"{PERL_KILL} {sig} {' '.join(map(str, pids))}", timeout=600)
    return int(out.strip().splitlines()[-1])


def _ps(nd: Node, runs: int, localview: bool) -> tuple[float, int]:
    loop = PS_LOOP.replace("{n}", str(runs))
    cmd = f"{SSICTL} localview -- sh -c '{loop}'" if localview else loop
    ns, lines = nd.succeed(cmd, timeout=600).split()[-2:]
    return int(ns) / 1e6, int(lines) - 1


def run(probes: int = 200, kills: int = 50, ps_runs: int = 10) -> dict[str, Any]:
    with Cluster(nodes=3, name="bench-vproc") as c:
        c.bring_up(modules=("ssi_core", "ics", "clms", "vproc"))
        n1, n3 = c.node(1), c.node(3)
        local, remote = _start_sleeps(n1, kills), _start_sleeps(n3, kills)
        n1.wait_until_succeeds(f"test -d /proc/{remote[-1]}", timeout=30)
        _kill_ns(n1, 0, [remote[0]] * 20)  # warm the connections
        probe_local = _kill_ns(n1, 0, [local[0]] * probes) / probes / 1e3
        probe_remote = _kill_ns(n1, 0, [remote[0]] * probes) / probes / 1e3
        term_local = _kill_ns(n1, 15, local) / kills / 1e3
        term_remote = _kill_ns(n1, 15, remote) / kills / 1e3
        n1.wait_until_fails(f"test -d /proc/{remote[-1]}", timeout=60)
        # Some load for ps: 30 sleeps on each node.
        for n in (1, 2, 3):
            _start_sleeps(c.node(n), 30)
        _ps(n1, 1, False)
        ps_cluster_ms, seen_cluster = _ps(n1, ps_runs, False)
        ps_local_ms, seen_local = _ps(n1, ps_runs, True)

    kill = {
        "probe_local_us": probe_local,
        "probe_remote_us": probe_remote,
        "term_local_us": term_local,
        "term_remote_us": term_remote,
        "probes": probes,
        "terms": kills,
    }
    ps = {
        "cluster_ms": ps_cluster_ms,
        "cluster_processes": seen_cluster,
        "localview_ms": ps_local_ms,
        "localview_processes": seen_local,
        "ratio_cluster_over_local": ps_cluster_ms / ps_local_ms,
        "runs": ps_runs,
    }
    print(
        f"kill -0: local {probe_local:.1f} us, remote {probe_remote:.1f} us; "
        f"kill -TERM: local {term_local:.1f} us, remote {term_remote:.1f} us; "
        f"ps aux: {ps_cluster_ms:.0f} ms for {seen_cluster} processes on 3 nodes vs "
        f"{ps_local_ms:.0f} ms for {seen_local} in localview"
    )
    return {"kill": kill, "ps_aux": ps, "nodes": 3}
