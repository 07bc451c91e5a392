"""A child that moved to node 3 and dies of a signal there: its parent on node 1
reaps it with the right wait status, core-dump bit included (issue 10, item 4),
and the core file is written on node 3.

The program is tests/migration/migprog.c (``coredump`` mode), built static on the
host into build/bin/migprog. Every node's core_pattern points to /tmp (each
guest's own tmpfs; the root is the host's, read-only).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qemu import Cluster, Node
from qemu.cbuild import build_c_program

pytestmark = pytest.mark.cluster
CLUSTER_NODES = 3
MODULES = ("ssi_core", "ics", "clms", "vproc", "rfile", "migration")
REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "migration" / "migprog.c"
PROG = REPO / "build" / "bin" / "migprog"
SIGNALS = {"segv": 11, "abrt": 6}


@pytest.fixture(scope="module")
def prog() -> Path:
    return build_c_program(SOURCE, PROG, ("-static", "-Werror", "-pthread"),
                           (REPO / "abi" / "ssi_abi.h",))


def core_files(nd: Node) -> list[str]:
    return nd.succeed("ls /tmp | grep '^core\\.' || true").split()


def setup_cores(cluster: Cluster) -> None:
    for n in (1, 2, 3):
        nd = cluster.node(n)
        nd.succeed("echo '/tmp/core.%p' > /proc/sys/kernel/core_pattern; rm -f /tmp/core.*")
        assert nd.succeed("cat /proc/sys/kernel/core_pattern").strip() == "/tmp/core.%p"


def run_coredump(nd: Node, sig: str, limit: str) -> tuple[int, dict[str, int]]:
    """Run ``migprog coredump 3 SIG`` under ``ulimit -c LIMIT`` (soft and hard);
    the child's PID and the parent's report."""
    out = nd.succeed(f"sh -c 'ulimit -c {limit}; exec {PROG} coredump 3 {sig}' </dev/null",
                     timeout=180)
    lines = out.strip().splitlines()
    child = [ln.split() for ln in lines if ln.startswith("child ")]
    parent = [ln.split() for ln in lines if ln.startswith("parent ")]
    assert len(child) == 1 and len(parent) == 1, out
    assert child[0][4] == "3", out  # the child ran on node 3 before dying
    f = parent[0]
    report = {f[i]: int(f[i + 1]) for i in range(1, len(f) - 1, 2)}
    assert report["child"] == int(child[0][2]), out
    return report["child"], report


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", ["segv", "abrt"])
def test_parent_reaps_a_child_that_dumped_core_on_node3(
    cluster: Cluster, prog: Path, sig: str
) -> None:
    """The child forks on node 1, moves to node 3, dies of SIG with cores allowed:
    the parent on node 1 sees WIFSIGNALED, WTERMSIG = SIG and WCOREDUMP; the core
    file is on node 3 (an ELF core), on no other node."""
    cluster.bring_up(modules=MODULES)
    setup_cores(cluster)
    pid, rep = run_coredump(cluster.node(1), sig, "unlimited")
    assert (rep["signaled"], rep["sig"]) == (1, SIGNALS[sig]), rep
    assert rep["core"] == 1, f"WCOREDUMP lost across the deputy: {rep}"
    assert rep["status"] == SIGNALS[sig] | 0x80, rep
    n3 = cluster.node(3)
    n3.wait_until_succeeds(f"test -s /tmp/core.{pid}", timeout=30)
    # ELF magic, then e_type (offset 16) ET_CORE = 4
    head = n3.succeed(f"od -An -tx1 -N18 /tmp/core.{pid}").split()
    assert head[:4] == ["7f", "45", "4c", "46"] and head[16:18] == ["04", "00"], head
    assert core_files(cluster.node(1)) == [] and core_files(cluster.node(2)) == []


@pytest.mark.timeout(300)
def test_no_core_bit_when_no_core_is_written(cluster: Cluster, prog: Path) -> None:
    """With RLIMIT_CORE 0 (soft and hard: the child cannot raise it) the same
    death reaches the parent as SIGSEGV without the core-dump bit, and node 3
    has no core file: the bit is the dump's, not a constant."""
    cluster.bring_up(modules=MODULES)
    setup_cores(cluster)
    pid, rep = run_coredump(cluster.node(1), "segv", "0")
    assert (rep["signaled"], rep["sig"], rep["core"]) == (1, 11, 0), rep
    assert rep["status"] == 11, rep
    assert core_files(cluster.node(3)) == [], pid
