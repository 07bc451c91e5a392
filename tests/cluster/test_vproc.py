"""vproc (vproc.ko) in a booted 3-node cluster: one process space.

ps, pgrep, top and kill are the guests' own unmodified procps tools; the few
syscall-level checks (errno of kill, getpgid/getsid/getpriority of a remote PID) run
in perl or `python3 -S`, which start fast enough under TCG.  Processes are started
in the background on one node and looked at or signalled from another.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from qemu import Cluster, Node

pytestmark = pytest.mark.cluster
CLUSTER_NODES = 3
MODULES = ("ssi_core", "ics", "clms", "vproc")
REPO = Path(__file__).resolve().parents[2]
SSICTL = REPO / ".venv" / "bin" / "ssictl"
NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups"
EPERM, ESRCH = 1, 3
NODEDOWN_WINDOW = 15.0  # seconds from the crash until no node shows node 3's processes


def up(cluster: Cluster) -> None:
    cluster.bring_up(modules=MODULES)


def start(nd: Node, cmd: str) -> int:
    """Run *cmd* in the background on *nd*, detached; its PID."""
    out = nd.succeed(f"{cmd} >/dev/null 2>&1 </dev/null & echo $!")
    return int(out.strip().splitlines()[-1])


def origin(pid: int) -> int:
    return pid >> 16


def ps_pids(out: str, col: int = 1) -> set[int]:
    pids: set[int] = set()
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit():
            pids.add(int(f[col]))
    return pids


def kill_errno(nd: Node, sig: int, pid: int, who: str = "") -> int:
    """kill(pid, sig) through perl (the kill system call itself): 0 or the errno."""
    out = nd.succeed(f"{who} perl -e 'print kill({sig}, $ARGV[0]) ? 0 : 0 + $!' -- {pid}")
    return int(out.strip())


@pytest.mark.timeout(300)
def test_remote_process_shows_in_ps_and_pgrep(cluster: Cluster) -> None:
    up(cluster)
    n1, n3 = cluster.node(1), cluster.node(3)
    pid = start(n3, f"{NOBODY} sleep 1234")
    assert origin(pid) == 3, pid
    n3.wait_until_succeeds(f"grep -q '^Name:.*sleep' /proc/{pid}/status", timeout=20)

    lines = [ln for ln in n1.succeed("ps aux").splitlines() if ln.split()[1:2] == [str(pid)]]
    assert len(lines) == 1, lines
    fields = lines[0].split(None, 10)
    assert fields[0] == "nobody" and fields[10] == "sleep 1234", lines[0]
    assert n1.succeed("pgrep -f 'sleep 1234'").split() == [str(pid)]
    assert pid in ps_pids(n1.succeed("ps -ef"))
    assert n1.succeed(f"cat /proc/{pid}/node").strip() == "3"
    assert n1.succeed("cat /proc/self/node").strip() == "1"
    assert n1.succeed(f"cat /proc/{pid}/comm").strip() == "sleep"
    assert re.match(rf"^{pid} \(sleep\) S ", n1.succeed(f"cat /proc/{pid}/stat"))
    assert "Uid:\t65534\t65534" in n1.succeed(f"cat /proc/{pid}/status")
    # environ is permission-checked: nobody may not read root's, root may read anyone's.
    root_pid = start(n3, "sleep 1235")
    n1.wait_until_succeeds(f"test -d /proc/{root_pid}", timeout=20)
    n1.fail(f"{NOBODY} cat /proc/{root_pid}/environ")
    assert "PATH=" in n1.succeed(f"tr '\\0' '\\n' < /proc/{root_pid}/environ")
    # ssictl: where and the clusterwide list with a NODE column.
    assert n1.succeed(f"{SSICTL} where {pid}").strip() == "3"
    doc = json.loads(n1.succeed(f"{SSICTL} ps --json"))
    mine = [p for p in doc["processes"] if p["pid"] == pid]
    assert mine and mine[0]["node"] == 3 and mine[0]["comm"] == "sleep", mine
    assert mine[0]["uid"] == 65534
    assert {p["node"] for p in doc["processes"]} == {1, 2, 3}
    n1.succeed(f"kill {pid} {root_pid}")


@pytest.mark.timeout(300)
def test_kill_term_from_node1_parent_on_node3_reaps(cluster: Cluster) -> None:
    up(cluster)
    n1, n3 = cluster.node(1), cluster.node(3)
    n3.succeed("rm -f /tmp/child /tmp/status")
    start(n3, "sh -c 'sleep 2345 & echo $! > /tmp/child; wait $!; echo $? > /tmp/status'")
    child = int(n3.wait_until_succeeds("cat /tmp/child", timeout=20).strip())
    assert origin(child) == 3
    n1.wait_until_succeeds(f"test -d /proc/{child}", timeout=20)
    n1.succeed(f"kill -TERM {child}")
    status = n3.wait_until_succeeds("cat /tmp/status", timeout=20).strip()
    assert status == "143", status  # 128 + SIGTERM, as the parent's wait saw it
    n1.wait_until_fails(f"test -d /proc/{child}", timeout=20)


@pytest.mark.timeout(300)
def test_kill_process_group_from_node2(cluster: Cluster) -> None:
    up(cluster)
    n2, n3 = cluster.node(2), cluster.node(3)
    pgid = start(n3, "setsid sh -c 'sleep 3456 & sleep 3457 & wait'")
    n3.wait_until_succeeds("test $(pgrep -f '^sleep 345[67]' | wc -l) -eq 2", timeout=20)
    assert n3.succeed(f"ps -o pgid= -p {pgid}").strip() == str(pgid)
    n2.succeed(f"/usr/bin/kill -TERM -- -{pgid}")
    n3.wait_until_fails("pgrep -f '^sleep 345[67]'", timeout=20)
    # A group that exists nowhere.
    assert kill_errno(n2, 15, -((3 << 16) | 65001)) == ESRCH


@pytest.mark.timeout(300)
def test_credentials_are_checked_on_the_target(cluster: Cluster) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    pid = start(n2, "sleep 4567")
    n1.wait_until_succeeds(f"test -d /proc/{pid}", timeout=20)
    assert kill_errno(n1, 15, pid, NOBODY) == EPERM
    assert kill_errno(n1, 0, pid, NOBODY) == EPERM
    assert kill_errno(n1, 15, (2 << 16) | 65002, NOBODY) == ESRCH
    assert kill_errno(n1, 0, (2 << 16) | 65002) == ESRCH
    assert kill_errno(n1, 0, pid) == 0
    n2.succeed(f"kill -0 {pid}")  # still alive
    # nobody may signal nobody's process on another node.
    mine = start(n2, f"{NOBODY} sleep 4568")
    n1.wait_until_succeeds(f"test -d /proc/{mine}", timeout=20)
    assert kill_errno(n1, 15, mine, NOBODY) == 0
    n2.wait_until_fails(f"kill -0 {mine}", timeout=20)
    # getpgid, getsid, get/setpriority of a remote PID, as the kernel sees them.
    py = (
        "import os,sys; p=int(sys.argv[1]); os.setpriority(os.PRIO_PROCESS, p, 7); "
        "print(os.getpgid(p), os.getsid(p), os.getpriority(os.PRIO_PROCESS, p))"
    )
    local = n2.succeed(f"ps -o pgid=,sid= -p {pid}").split()
    got = n1.succeed(f"python3 -S -c '{py}' {pid}").split()
    assert got == [local[0], local[1], "7"], (got, local)
    assert n2.succeed(f"ps -o ni= -p {pid}").strip() == "7"
    # Unprivileged renice of root's process: EPERM, as locally.
    n1.fail(f"{NOBODY} renice -n 10 -p {pid}")
    n1.succeed(f"kill {pid}")


@pytest.mark.timeout(300)
def test_top_on_node2_lists_all_nodes(cluster: Cluster) -> None:
    up(cluster)
    pids = {n: start(cluster.node(n), f"sleep {5670 + n}") for n in (1, 2, 3)}
    n2 = cluster.node(2)
    n2.wait_until_succeeds(f"test -d /proc/{pids[1]} && test -d /proc/{pids[3]}", timeout=20)
    out = n2.succeed("COLUMNS=200 top -b -n1 -w 200")
    listed = ps_pids(out[out.index("PID") :], col=0)
    assert set(pids.values()) <= listed, (pids, sorted(listed))
    assert {origin(p) for p in listed if p > 0xFFFF} == {1, 2, 3}
    for n, p in pids.items():
        cluster.node(n).succeed(f"kill {p}")


@pytest.mark.timeout(300)
def test_localview_narrows_to_this_node(cluster: Cluster) -> None:
    up(cluster)
    n1 = cluster.node(1)
    remote = start(cluster.node(2), "sleep 6789")
    n1.wait_until_succeeds(f"test -d /proc/{remote}", timeout=20)
    everything = ps_pids(n1.succeed("ps aux"))
    assert {origin(p) for p in everything if p > 0xFFFF} == {1, 2, 3}
    local = ps_pids(n1.succeed(f"{SSICTL} localview -- ps aux"))
    assert local and {origin(p) for p in local if p > 0xFFFF} == {1}, sorted(local)
    # Inherited by children: a shell's kill and /proc stop at this node too.
    out = n1.execute(
        f"{SSICTL} localview -- sh -c 'test -d /proc/{remote}; echo $?; "
        f"/usr/bin/kill -0 {remote}; echo $?'"
    )[1].split()
    assert out == ["1", "1"], out
    n1.succeed(f"kill {remote}")


@pytest.mark.timeout(400)
def test_crash_removes_node3_processes_everywhere(cluster: Cluster) -> None:
    up(cluster)
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    victim = start(n3, "sleep 7890")
    for nd in (n1, n2):
        nd.wait_until_succeeds(f"test -d /proc/{victim}", timeout=20)
    # A reader keeps opening the doomed process's files through the crash.
    n1.succeed(
        f"(while cat /proc/{victim}/status >/dev/null 2>&1; do :; done; "
        "echo done > /tmp/reader) >/dev/null 2>&1 </dev/null &"
    )
    t0 = time.monotonic()
    n3.crash()
    for nd in (n1, n2):
        nd.wait_until_succeeds(
            "! ps aux | awk 'NR > 1 && int($2 / 65536) == 3 { found = 1 } END { exit !found }'",
            timeout=NODEDOWN_WINDOW,
        )
    gone = time.monotonic() - t0
    print(f"\n[vproc] node 3's processes gone from nodes 1 and 2 after {gone:.2f} s")
    assert gone < NODEDOWN_WINDOW
    n1.wait_until_succeeds("cat /tmp/reader", timeout=10)
    t1 = time.monotonic()
    rc, _, _ = n1.execute(f"timeout 20 cat /proc/{victim}/stat", timeout=30)
    assert rc not in (0, 124) and time.monotonic() - t1 < 10
    assert kill_errno(n2, 0, victim) == ESRCH
    # The survivors still see each other.
    p2 = start(n2, "sleep 7891")
    n1.wait_until_succeeds(f"pgrep -f 'sleep 7891' | grep -qx {p2}", timeout=20)
    n2.succeed(f"kill {p2}")
