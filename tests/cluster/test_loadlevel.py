"""Load-leveling figures (CLMS heartbeats) and ``ssictl loadlevel --once`` in a
booted 3-node cluster.

Node 1's run queue and available memory, as node 2 sees them through
clusternode_info (``ssictl cluster status --json``), follow CPU-bound and
memory-hungry programs started on node 1 (tests/migration/migprog.c, built
static on the host into build/bin/migprog); ``ssictl loadlevel --once`` on node 1
moves one of its busy processes to a less loaded node.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from qemu import Cluster, Node
from qemu.cbuild import build_c_program
from qemu.paths import flavor

pytestmark = pytest.mark.cluster
CLUSTER_NODES = 3
CLUSTER_MEMORY = 320
MODULES = ("ssi_core", "ics", "clms", "vproc", "rfile", "migration")
REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "migration" / "migprog.c"
PROG = REPO / "build" / "bin" / "migprog"
SPINNERS = 4
HOG_MIB = 128


TOOL_SRC = REPO / "kernel" / "clms" / "tools" / "clms-tool.c"
TOOL = REPO / "build" / "bin" / "clms-tool-load"


@pytest.fixture(scope="module")
def prog() -> Path:
    return build_c_program(SOURCE, PROG, ("-static", "-Werror", "-pthread"),
                           (REPO / "abi" / "ssi_abi.h",))


@pytest.fixture(scope="module")
def tool() -> Path:
    return build_c_program(TOOL_SRC, TOOL, ("-static", "-O2", "-Wall", "-Werror",
                                            "-I", str(REPO / "abi")),
                           (REPO / "abi" / "ssi_abi.h",))


def figures(nd: Node, node: int) -> dict[str, Any]:
    """*node*'s entry of ``ssictl cluster status --json`` run on *nd*."""
    data = json.loads(nd.succeed("ssictl cluster status --json", timeout=120))
    entries: list[dict[str, Any]] = [e for e in data["nodes"] if e["node"] == node]
    assert len(entries) == 1 and "error" not in entries[0], data
    return entries[0]


def runq_samples(nd: Node, node: int, count: int) -> list[int]:
    out = []
    for _ in range(count):
        f = figures(nd, node)
        assert f["has_load"] and f["cpus"] >= 1, f
        # from one of the last ten heartbeats (clms.ko's period as built for
        # this flavor: 100 ms, 400 under lockdep)
        heartbeat_ms = int(flavor().module_config("SSI_CLMS_HEARTBEAT_MS"))
        assert f["figures_age_ms"] < 10 * heartbeat_ms, f
        out.append(int(f["nr_running"]))
        time.sleep(0.3)
    return out


def start_spinners(nd: Node, count: int, seconds: int) -> list[int]:
    """*count* CPU-bound programs on *nd*, at nice 10: always runnable (counted in
    the run queue) but leaving the node's commands (ssictl) CPU under TCG."""
    pids = []
    for i in range(count):
        out = f"/tmp/spin{i}.out"
        nd.succeed(f"rm -f {out}; nice -n 10 {PROG} spin {seconds} </dev/null >{out} 2>&1 &")
        line = nd.wait_until_succeeds(f"head -n1 {out} | grep '^spin pid'", timeout=60)
        pids.append(int(line.split()[2]))
    return pids


def kill_all(nd: Node, pids: list[int]) -> None:
    nd.execute("kill -KILL " + " ".join(map(str, pids)) + " 2>/dev/null")
    for pid in pids:
        nd.wait_until_succeeds(f"! test -e /proc/{pid}", timeout=60)


@pytest.mark.timeout(400)
def test_run_queue_and_memory_of_node1_seen_from_node2(cluster: Cluster, prog: Path) -> None:
    """4 CPU-bound programs on node 1 show in node 1's run queue as node 2 sees
    it within a few heartbeats, and leave it when they end; a program holding
    128 MiB lowers node 1's available memory as node 2 sees it."""
    cluster.bring_up(modules=MODULES)
    n1, n2 = cluster.node(1), cluster.node(2)
    figures(n2, 1)  # starts node 2's ssictl daemon
    idle = runq_samples(n2, 1, 5)
    assert min(idle) <= 2, idle  # not busy before

    pids = start_spinners(n1, SPINNERS, 200)
    try:
        deadline = time.monotonic() + 30
        while max(runq_samples(n2, 1, 1)) < SPINNERS:
            assert time.monotonic() < deadline, "node 1's run queue never showed the spinners"
        busy = runq_samples(n2, 1, 4)
        assert min(busy) >= SPINNERS, busy  # every beat counts them: they never sleep
        # node 2's own figure (sampled at the call) does not see node 1's programs
        assert min(runq_samples(n2, 2, 3)) <= 2
    finally:
        kill_all(n1, pids)
    deadline = time.monotonic() + 30
    while min(runq_samples(n2, 1, 3)) > 2:
        assert time.monotonic() < deadline, "node 1's run queue stayed high"

    before = figures(n2, 1)["mem_available_kb"]
    n1.succeed(f"rm -f /tmp/hog.out; {PROG} hog {HOG_MIB} 120 </dev/null >/tmp/hog.out 2>&1 &")
    line = n1.wait_until_succeeds("head -n1 /tmp/hog.out | grep '^hog pid'", timeout=60)
    hog = int(line.split()[2])
    try:
        deadline = time.monotonic() + 30
        while True:
            after = figures(n2, 1)["mem_available_kb"]
            if before - after >= (HOG_MIB - 32) << 10:
                break
            assert time.monotonic() < deadline, (before, after)
            time.sleep(0.3)
    finally:
        kill_all(n1, [hog])
    deadline = time.monotonic() + 30
    while figures(n2, 1)["mem_available_kb"] < before - (32 << 10):
        assert time.monotonic() < deadline, "node 1's memory did not come back"
        time.sleep(0.3)


@pytest.mark.timeout(400)
def test_loadlevel_once_moves_a_busy_process_off_the_busiest_node(
    cluster: Cluster, prog: Path
) -> None:
    """With 4 CPU-bound programs on node 1 and nodes 2 and 3 idle, ``ssictl
    loadlevel --once`` on node 1 moves one of them to node 2 or 3 and says so;
    the process keeps running there."""
    cluster.bring_up(modules=MODULES)
    n1 = cluster.node(1)
    # start node 1's ssictl daemon (seconds of Python imports under TCG) first
    idle = json.loads(n1.succeed("ssictl loadlevel --once --json --samples 2", timeout=180))
    assert idle["action"]["moved"] is None, idle  # nothing busy yet: nothing moves
    pids = start_spinners(n1, SPINNERS, 200)
    try:
        deadline = time.monotonic() + 30
        while True:  # node 1's figures show the spinners (they are sampled at the call)
            shown = json.loads(n1.succeed("ssictl loadlevel --json --samples 3", timeout=120))
            (me,) = [x for x in shown["nodes"] if x["node"] == 1]
            if me["runq"] >= SPINNERS - 0.5:
                break
            assert time.monotonic() < deadline, shown
        rc, out, err = n1.execute("ssictl loadlevel --once --json", timeout=180)
        assert rc == 0, (out, err)
        data = json.loads(out)
        act = data["action"]
        assert act["from"] == 1 and act["to"] in (2, 3), data
        assert act["moved"] is not None and act["moved"]["pid"] in pids, data
        pid, to = act["moved"]["pid"], act["to"]
        assert int(n1.succeed(f"cat /proc/{pid}/node")) == to
        assert int(cluster.node(to).succeed(f"cat /proc/{pid}/node")) == to
        stat = cluster.node(to).succeed(f"cat /proc/{pid}/stat")
        assert stat.rsplit(")", 1)[1].split()[0] == "R", stat  # still spinning there
        # the human form says what it did (another step: node 1 is still the busiest)
        rc, out, err = n1.execute("ssictl loadlevel --once", timeout=180)
        assert rc == 0, (out, err)
        assert "node 1 is the busiest" in out and "moved " in out, out
    finally:
        kill_all(n1, pids)


@pytest.mark.timeout(300)
def test_node_info_sizes_old_and_new(cluster: Cluster, tool: Path) -> None:
    """SSISYS_CLUSTERNODE_INFO with the struct's size before the load figures (64
    bytes) works and writes nothing past them; with the whole struct (88) it writes
    the figures with SSI_NODEINFO_LOAD set; with more it writes no more than the
    struct; with less than 64 it is EINVAL. ``ssictl cluster status --load`` shows
    the figures."""
    cluster.bring_up(modules=MODULES)
    nd = cluster.node(1)
    for node in (1, 2):
        assert nd.succeed(f"{tool} info-len {node} 64").split() == [
            "ret=0", "errno=0", "written=64"]  # fmt: skip
        assert nd.succeed(f"{tool} info-len {node} 88").split() == [
            "ret=0", "errno=0", "written=88"]  # fmt: skip
        assert nd.succeed(f"{tool} info-len {node} 4096").split() == [
            "ret=0", "errno=0", "written=88"]  # fmt: skip
        assert nd.succeed(f"{tool} info-len {node} 63").split()[:2] == ["ret=-1", "errno=EINVAL"]
        info = dict(w.split("=", 1) for w in nd.succeed(f"{tool} info {node}").split())
        assert info["flags"] == "1" and int(info["mem_available_kb"]) > 0, info
        assert int(info["mem_available_kb"]) <= int(info["mem_total_kb"]), info
        assert int(info["figures_age_ms"]) < 1000, info
        if node == 1:  # sampled at the call
            assert info["figures_age_ms"] == "0", info
    # ssictl cluster status --load shows them
    lines = nd.succeed("ssictl cluster status --load", timeout=180).splitlines()
    head = lines[1].split()
    at = head.index("RUNQ")  # LOAD is 3 words in a row, "MEM MiB FREE/TOTAL" 3 in the header
    assert head[at : at + 3] == ["RUNQ", "AVAIL", "MiB"], lines
    for row in lines[2:5]:
        assert row.split()[at].isdigit() and row.split()[at + 1].isdigit(), lines
