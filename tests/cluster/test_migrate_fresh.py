"""Migration on a cluster that has just formed (issue 10): what must work
before the nodes have talked to each other over every ICS channel.  Its own
file, so its own freshly booted cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from qemu import Cluster
from qemu.cbuild import build_c_program
from qemu.paths import flavor

pytestmark = pytest.mark.cluster
CLUSTER_NODES = 3
MODULES = ("ssi_core", "ics", "clms", "vproc", "rfile", "migration")
REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "migration" / "migprog.c"
PROG = REPO / "build" / "bin" / "migprog"


@pytest.fixture(scope="module")
def prog() -> Path:
    return build_c_program(SOURCE, PROG, ("-static", "-Werror", "-pthread"),
                           (REPO / "abi" / "ssi_abi.h",))


@pytest.mark.timeout(300)
def test_kill_at_home_reaches_a_process_two_moves_away(cluster: Cluster, prog: Path) -> None:
    """A process moves 1->2, then 2->3 (goto written on node 2): node 1 has
    never sent node 3 anything on the bulk channel.  kill -9 on node 1 hits
    its deputy, which must forward the SIGKILL with that signal pending on
    itself: it did so from its own context and every connect to node 3 was
    cut short (-EINTR) for 120 s, the process running on all along."""
    cluster.bring_up(modules=MODULES)
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    out = "/tmp/hog.out"
    n1.succeed(f"rm -f {out}; ({PROG} hog 1 600 </dev/null 2>&1 | cat >{out}) >/dev/null 2>&1 &")
    pid = int(n1.wait_until_succeeds(f"grep '^hog pid' {out}", timeout=60).split()[2])
    n1.succeed(f"/bin/echo 2 > /proc/{pid}/goto")
    n1.wait_until_succeeds(f'test "$(cat /proc/{pid}/node)" = 2', timeout=flavor().timeout(60))
    n2.succeed(f"/bin/echo 3 > /proc/{pid}/goto")
    n1.wait_until_succeeds(f'test "$(cat /proc/{pid}/node)" = 3', timeout=flavor().timeout(60))
    assert n3.succeed(f"cat /proc/{pid}/node").strip() == "3"
    n1.succeed(f"kill -KILL {pid}")
    n3.wait_until_succeeds(f"! test -e /proc/{pid}/stat", timeout=flavor().timeout(20))
    n1.wait_until_succeeds(f"! kill -0 {pid} 2>/dev/null", timeout=flavor().timeout(20))
