"""CLMS (clms.ko) in a booted 3-node cluster: membership, failure detection, failover,
partitions, rejoin, the ssisys calls and /sys/kernel/ssi/clms.

Python costs seconds per start in a TCG guest, so the guests are driven with busybox
and build/bin/clms-tool, a static helper built here from kernel/clms/tools/clms-tool.c.
Modules are loaded with insmod (clms with test_knobs=1 for the test_ping aid) and the
key and table set with `clms-tool setup` (nodes 1..3 at 169.254.77.<n>).

Detection times are measured on the host, from just before the crash to the moment a
survivor's `clms-tool wait-down` (woken by poll() on sysfs members) logs on its
console that the node is no longer UP: the console path adds a few ms, never subtracts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clms_helpers import (
    EHOSTDOWN,
    KEY,
    SYS,
    TOOL,
    WRONG_KEY,
    ConsoleWatch,
    bring_up,
    build_tool,
    check_detection,
    detect_limit,
    detection_times,
    fmt,
    heartbeat_ms,
    info,
    members,
    on,
    restart,
    save_dmesg,
    start_watchers,
    sysread,
    timeout_ms,
    view,
    wait_agree,
    write_sys,
)

from qemu import Cluster, Node
from qemu.paths import flavor

CLUSTER_NODES = 3
ALL = (1, 2, 3)
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module", autouse=True)
def tool() -> Path:
    return build_tool()


@pytest.fixture(autouse=True)
def _save_dmesg(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    save_dmesg(request.node.funcargs.get("cluster"), f"test_clms.{request.node.name}")


UP3 = {1: "UP", 2: "UP", 3: "UP"}


# --------------------------------------------------------------------------- tests


def test_all_up_and_agree(cluster: Cluster) -> None:
    t0 = time.monotonic()
    bring_up(cluster)
    v = wait_agree(cluster, ALL, UP3, master=1, timeout=20)
    print(f"\n[clms] 3 nodes UP and agreeing {time.monotonic() - t0:.2f} s after loading")
    assert v.transition > 0
    incs = {}
    for n in ALL:
        nd = cluster.node(n)
        assert sysread(nd, "mode") == "member"
        assert sysread(nd, "quorum") == "1"
        assert sysread(nd, "master") == "1"
        assert sysread(nd, "transition") == str(v.transition)
        assert sysread(nd, "heartbeat_ms") == str(heartbeat_ms())
        assert sysread(nd, "timeout_ms") == str(timeout_ms())
        assert sysread(nd, "up_nodes") == "0xe"
        incs[n] = int(sysread(nd, "incarnation"))
        assert incs[n] != 0
    # Every node's members file agrees on states and incarnations.
    for n in ALL:
        m = members(cluster.node(n))
        assert {k: (s, i) for k, (s, i, _) in m.items()} == {k: ("UP", incs[k]) for k in ALL}
    # Heartbeats flow both ways; nothing was dropped as unknown.
    nd = cluster.node(2)
    a = int(sysread(nd, "heartbeats_received"))
    time.sleep(1)
    b = int(sysread(nd, "heartbeats_received"))
    # 2 peers x 1000/heartbeat_ms a second (10 each at 100 ms, 2.5 at the debug
    # flavor's 400 ms), half of it as slack for TCG
    assert b - a >= 1000 // heartbeat_ms(), (a, b, heartbeat_ms())
    assert int(sysread(nd, "heartbeats_sent")) > 0
    assert sysread(nd, "dropped_unknown") == "0"
    # clusternode_info: the peers' load and memory come from their heartbeats.
    for n in ALL:
        i = info(cluster.node(1), n)
        assert i["state"] == "UP" and int(i["incarnation"]) == incs[n], i
        assert int(i["cpus"]) >= 1 and int(i["mem_total_kb"]) > 100_000, i
        assert 0 < int(i["mem_free_kb"]) <= int(i["mem_total_kb"]), i
        assert 0 < int(i["transition"]) <= v.transition, i


def test_membership_is_stable_when_nothing_happens(cluster: Cluster) -> None:
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    before = on(cluster, ALL, lambda nd: (sysread(nd, "quorum_lost"), sysread(nd, "rejoins")))
    time.sleep(5)
    v1 = wait_agree(cluster, ALL, UP3, master=1)
    assert v1.transition == v0.transition
    after = on(cluster, ALL, lambda nd: (sysread(nd, "quorum_lost"), sysread(nd, "rejoins")))
    assert after == before


def test_ssisys_arguments_are_validated(cluster: Cluster) -> None:
    bring_up(cluster, [1])
    nd = cluster.node(1)

    def raw(cmd: int, length: int, first: int = 0, null: bool = False) -> str:
        return nd.succeed(f"{TOOL} raw {cmd} {length} {first}{' null' if null else ''}").strip()

    MEMBERSHIP, INFO, NAME, SET_NAME = 16, 17, 18, 19
    assert raw(MEMBERSHIP, 88) == "ret=0 errno=0"  # sizeof(struct ssi_membership)
    assert raw(MEMBERSHIP, 4096) == "ret=0 errno=0"
    assert raw(MEMBERSHIP, 87) == "ret=-1 errno=EINVAL"
    assert raw(MEMBERSHIP, 0) == "ret=-1 errno=EINVAL"
    assert raw(MEMBERSHIP, 88, null=True) == "ret=-1 errno=EFAULT"
    assert raw(INFO, 64, 2) == "ret=0 errno=0"  # sizeof(struct ssi_node_info)
    assert raw(INFO, 63, 2) == "ret=-1 errno=EINVAL"
    assert raw(INFO, 64, 0) == "ret=-1 errno=EINVAL"
    assert raw(INFO, 64, 64) == "ret=-1 errno=EINVAL"
    assert raw(INFO, 64, 0xFFFFFFFF) == "ret=-1 errno=EINVAL"
    assert raw(INFO, 64, 5) == "ret=-1 errno=ESRCH"  # valid number, not in the table
    assert raw(INFO, 64, null=True) == "ret=-1 errno=EFAULT"
    assert raw(NAME, 32) == "ret=0 errno=0"
    assert raw(NAME, 31) == "ret=-1 errno=EINVAL"
    assert raw(NAME, 32, null=True) == "ret=-1 errno=EFAULT"

    def setname_raw(data: bytes) -> str:
        return nd.succeed(f"{TOOL} setname-raw '{data.hex()}'").strip()

    assert setname_raw(b"") == "ret=-1 errno=EINVAL"
    assert setname_raw(b"x" * 32) == "ret=-1 errno=EINVAL"
    assert setname_raw(b"ab\0cd") == "ret=-1 errno=EINVAL"
    assert setname_raw(b"abc\0") == "ret=-1 errno=EINVAL"
    assert setname_raw(b"bad\nname") == "ret=-1 errno=EINVAL"
    assert setname_raw(b"\xffname") == "ret=-1 errno=EINVAL"
    assert raw(SET_NAME, 5, null=True) == "ret=-1 errno=EFAULT"
    assert raw(SET_NAME, 32) == "ret=-1 errno=EINVAL"
    rc, out, err = nd.execute(
        f"setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "
        f"{TOOL} setname intruder"
    )
    assert rc == 1 and "Operation not permitted" in err, (rc, out, err)
    # Reading needs no privilege.
    rc, out, err = nd.execute(
        f"setpriv --reuid=65534 --regid=65534 --clear-groups {TOOL} membership"
    )
    assert rc == 0 and "self=1" in out, (rc, out, err)


def test_cluster_name_is_clusterwide(cluster: Cluster) -> None:
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    # Set on a follower: forwarded to the master, pushed to everyone.
    cluster.node(3).succeed(f"{TOOL} setname 'test cluster-{v0.transition}'")
    want = f"test cluster-{v0.transition}"
    for n in ALL:
        cluster.node(n).wait_until_succeeds(f"test \"$({TOOL} name)\" = '{want}'", timeout=10)
        assert sysread(cluster.node(n), "name") == want
    v1 = wait_agree(cluster, ALL, UP3, master=1)
    assert v1.transition > v0.transition
    cluster.node(1).succeed(f"{TOOL} setname ssikit")
    for n in ALL:
        cluster.node(n).wait_until_succeeds(f'test "$({TOOL} name)" = ssikit', timeout=10)


def test_sysfs_tunables_are_validated(cluster: Cluster) -> None:
    bring_up(cluster, [2])
    nd = cluster.node(2)
    for name, bad in (
        ("heartbeat_ms", "0"),
        ("heartbeat_ms", "9"),
        ("heartbeat_ms", "5001"),
        ("heartbeat_ms", str(timeout_ms() // 3 + 100)),  # timeout_ms < 3 x heartbeat_ms
        ("heartbeat_ms", "abc"),
        ("heartbeat_ms", "-1"),
        ("timeout_ms", "299"),
        ("timeout_ms", "60001"),
        ("timeout_ms", "x"),
    ):
        rc, err = write_sys(nd, name, bad)
        assert rc != 0 and "Invalid argument" in err, (name, bad, err)
    assert sysread(nd, "heartbeat_ms") == str(heartbeat_ms())
    assert sysread(nd, "timeout_ms") == str(timeout_ms())
    nd.succeed(f"echo 1500 > {SYS}/timeout_ms && echo 200 > {SYS}/heartbeat_ms")
    assert (sysread(nd, "heartbeat_ms"), sysread(nd, "timeout_ms")) == ("200", "1500")
    nd.succeed(f"echo {heartbeat_ms()} > {SYS}/heartbeat_ms && "
               f"echo {timeout_ms()} > {SYS}/timeout_ms")
    # test_ping is refused unless test_knobs is set.
    nd.succeed("echo 0 > /sys/module/clms/parameters/test_knobs")
    rc, err = write_sys(nd, "test_ping", "1")
    assert rc != 0 and "Operation not permitted" in err, err
    nd.succeed("echo 1 > /sys/module/clms/parameters/test_knobs")
    for bad in ("2", "0", "64", "1 10001", "x"):  # 2: ourselves
        rc, err = write_sys(nd, "test_ping", bad)
        assert rc != 0 and "Invalid argument" in err, (bad, err)


def test_heartbeat_and_timeout_are_the_masters(cluster: Cluster) -> None:
    """heartbeat_ms and timeout_ms are the cluster's, the master's: written on
    followers they reach every member through the master, as a new transition;
    a pair the master would refuse is refused where it is written; a node that
    joins with its module's defaults takes the cluster's values."""
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    hb, tmo = heartbeat_ms(), timeout_ms()
    new_hb, new_tmo = 2 * hb, 2 * tmo
    cluster.node(3).succeed(f"echo {new_tmo} > {SYS}/timeout_ms")
    cluster.node(2).succeed(f"echo {new_hb} > {SYS}/heartbeat_ms")
    both = f"test $(cat {SYS}/heartbeat_ms) = {new_hb} -a $(cat {SYS}/timeout_ms) = {new_tmo}"
    for n in ALL:
        cluster.node(n).wait_until_succeeds(both, timeout=flavor().timeout(10))
    v1 = wait_agree(cluster, ALL, UP3, master=1)
    assert v1.transition > v0.transition
    rc, err = write_sys(cluster.node(3), "heartbeat_ms", str(new_tmo // 3 + 10))
    assert rc != 0 and "Invalid argument" in err, err
    n3 = cluster.node(3)
    n3.succeed("busybox rmmod clms")
    wait_agree(cluster, (1, 2), {1: "UP", 2: "UP", 3: "DOWN"}, master=1)
    n3.succeed("dmesg -C")
    bring_up(cluster, [3])  # clms.ko with its defaults
    wait_agree(cluster, ALL, UP3, master=1)
    n3.wait_until_succeeds(both, timeout=flavor().timeout(10))
    assert f"heartbeat {new_hb} ms, timeout {new_tmo} ms: node 1's" in n3.succeed("dmesg")
    cluster.node(1).succeed(f"echo {hb} > {SYS}/heartbeat_ms && echo {tmo} > {SYS}/timeout_ms")
    for n in ALL:
        cluster.node(n).wait_until_succeeds(
            f"test $(cat {SYS}/heartbeat_ms) = {hb} -a $(cat {SYS}/timeout_ms) = {tmo}",
            timeout=flavor().timeout(10))


def test_crash_is_detected_and_pending_calls_fail(cluster: Cluster) -> None:
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    n2 = cluster.node(2)
    # The ping answers at once when the node is alive ...
    n2.succeed(f"echo 3 > {SYS}/test_ping")
    assert sysread(n2, "test_ping").startswith("node 3 incarnation ")
    # ... and is left pending (the server sleeps 10 s) when it crashes.
    ping = ConsoleWatch(n2, r"clms-test: ping returned (\d+)\r?\n")
    n2.succeed(
        f"( (echo '3 10000' > {SYS}/test_ping) 2>/dev/null; "
        'echo "<3>clms-test: ping returned $?" >/dev/kmsg ) >/dev/null 2>&1 </dev/null &'
    )
    watches = start_watchers(cluster, (1, 2), 3)
    time.sleep(0.3)
    assert ping.seen is None, "the ping finished before the crash"

    t_crash = time.time_ns()
    cluster.node(3).crash()
    det = detection_times(watches, t_crash)
    print(f"\n[clms] node 3 crash seen as not UP after: {fmt(det)}")
    check_detection(det)

    t_fail, m = ping.wait()
    assert m.group(1) != "0"
    assert sysread(n2, "test_ping") == f"node 3 error -{EHOSTDOWN}"
    fail_after = (t_fail - t_crash) / 1e9
    print(
        f"[clms] the pending call to node 3 failed with EHOSTDOWN {fail_after:.3f} s "
        "after the crash"
    )
    assert 0 < fail_after <= detect_limit()

    v1 = wait_agree(cluster, (1, 2), {1: "UP", 2: "UP", 3: "DOWN"}, master=1)
    assert v1.transition > v0.transition
    for n in (1, 2):
        assert sysread(cluster.node(n), "up_nodes") == "0x6"
    assert int(sysread(cluster.node(1), "nodedowns")) >= 1


def test_a_sleeping_ping_holds_one_prio_worker_at_most(cluster: Cluster) -> None:
    """The test aid's ping sleeps on the queue that carries heartbeats: a node serves
    one sleeping ping at a time (EBUSY for another), and none without test_knobs."""
    bring_up(cluster)
    wait_agree(cluster, ALL, UP3, master=1)
    n1, n2 = cluster.node(1), cluster.node(2)
    n2.succeed(f"( echo '3 3000' > {SYS}/test_ping ) >/dev/null 2>&1 </dev/null &")
    time.sleep(0.5)
    n1.fail(f"echo '3 1000' > {SYS}/test_ping")
    assert sysread(n1, "test_ping") == "node 3 error -16"  # EBUSY
    n2.wait_until_succeeds(f"grep -q '^node 3 incarnation' {SYS}/test_ping", timeout=15)
    n1.succeed(f"echo '3 100' > {SYS}/test_ping")  # free again
    assert sysread(n1, "test_ping").startswith("node 3 incarnation ")


def notifier_log(nd: Node) -> list[tuple[str, int, int]]:
    """The test notifier's callbacks: (up|down, node, transition)."""
    out = []
    for line in nd.succeed(f"cat {SYS}/test_notifier").splitlines():
        kind, node, trans = line.split()
        out.append((kind, int(node), int(trans)))
    return out


def test_restart_rejoins_with_new_incarnation(cluster: Cluster) -> None:
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    n2 = cluster.node(2)
    # A notifier registered now is first told about the nodes already up.
    n2.succeed(f"echo 0 > {SYS}/test_notifier && echo 1 > {SYS}/test_notifier")
    log = notifier_log(n2)
    assert [(k, n) for k, n, _ in log] == [("up", 1), ("up", 3)], log
    assert all(0 < t <= v0.transition for _, _, t in log), log
    old_inc = members(cluster.node(1))[3][1]
    downs = int(sysread(n2, "nodedowns"))

    cluster.node(3).crash()
    v1 = wait_agree(cluster, (1, 2), {1: "UP", 2: "UP", 3: "DOWN"}, master=1)
    restart(cluster, 3)
    v2 = wait_agree(cluster, ALL, UP3, master=1)
    assert v2.transition > v1.transition
    new_inc = int(sysread(cluster.node(3), "incarnation"))
    assert new_inc != old_inc
    for n in ALL:
        assert members(cluster.node(n))[3][:2] == ("UP", new_inc)
        i = info(cluster.node(n), 3)
        assert int(i["transition"]) > v1.transition, i
    # Node 2's callbacks: node 3 down once, then up again, in transition order.
    log = notifier_log(n2)
    assert [(k, n) for k, n, _ in log] == [("up", 1), ("up", 3), ("down", 3), ("up", 3)], log
    assert v0.transition < log[2][2] <= v1.transition < log[3][2] <= v2.transition, log
    assert int(sysread(n2, "nodedowns")) == downs + 1
    n2.succeed(f"echo 0 > {SYS}/test_notifier")


def test_master_crash_fails_over(cluster: Cluster) -> None:
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    watches = start_watchers(cluster, (2, 3), 1)
    time.sleep(0.3)
    t_crash = time.time_ns()
    cluster.node(1).crash()
    det = detection_times(watches, t_crash)
    print(f"\n[clms] master (node 1) crash seen as not UP after: {fmt(det)}")
    check_detection(det)
    v1 = wait_agree(cluster, (2, 3), {1: "DOWN", 2: "UP", 3: "UP"}, master=2)
    assert v1.transition > v0.transition
    assert sysread(cluster.node(2), "mode") == "member"
    # Node 1 comes back: it rejoins, and being the lowest node it is master again.
    restart(cluster, 1)
    v2 = wait_agree(cluster, ALL, UP3, master=1)
    assert v2.transition > v1.transition


def test_partition_minority_stops_acting_then_rejoins(cluster: Cluster) -> None:
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    n1 = cluster.node(1)
    inc1 = int(sysread(n1, "incarnation"))
    made = int(sysread(n1, "transitions"))
    # A call pending from node 1 into the majority side.
    n1.succeed(
        f"rm -f /tmp/ping; ( (echo '2 10000' > {SYS}/test_ping) 2>/dev/null; echo $? ) "
        ">/tmp/ping 2>&1 </dev/null &"
    )
    time.sleep(0.3)

    cluster.partition({1}, {2, 3})
    # The majority carries on with node 2 as master and node 1 DOWN.
    v1 = wait_agree(cluster, (2, 3), {1: "DOWN", 2: "UP", 3: "UP"}, master=2)
    assert v1.transition > v0.transition
    # Node 1 has no quorum: no master, itself UP, the others DOWN, no transitions.
    n1.wait_until_succeeds(f"grep -qx noquorum {SYS}/mode", timeout=10)
    v = view(n1)
    assert (v.quorum, v.master, v.states) == (0, 0, {1: "UP", 2: "DOWN", 3: "DOWN"}), v
    assert sysread(n1, "quorum") == "0" and sysread(n1, "master") == "0"
    assert sysread(n1, "up_nodes") == "0x2"
    assert int(sysread(n1, "incarnation")) != inc1
    # Its call into the other side failed instead of hanging.
    assert n1.wait_until_succeeds("cat /tmp/ping", timeout=10).strip() != "0"
    assert sysread(n1, "test_ping") == f"node 2 error -{EHOSTDOWN}"
    time.sleep(2)
    v_later = view(n1)
    assert (v_later.transition, v_later.quorum, v_later.master) == (v.transition, 0, 0)
    assert int(sysread(n1, "transitions")) == made, "a minority node made transitions"
    assert sysread(n1, "mode") == "noquorum"
    # The majority is still one stable cluster.
    v2 = wait_agree(cluster, (2, 3), {1: "DOWN", 2: "UP", 3: "UP"}, master=2)

    cluster.heal()
    v3 = wait_agree(cluster, ALL, UP3, master=1, timeout=30)
    assert v3.transition > v2.transition
    inc1_new = int(sysread(n1, "incarnation"))
    assert inc1_new != inc1
    for n in ALL:
        assert members(cluster.node(n))[1][:2] == ("UP", inc1_new)


def test_partition_of_a_follower(cluster: Cluster) -> None:
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP3, master=1)
    cluster.partition({1, 2}, {3})
    v1 = wait_agree(cluster, (1, 2), {1: "UP", 2: "UP", 3: "DOWN"}, master=1)
    assert v1.transition > v0.transition
    n3 = cluster.node(3)
    n3.wait_until_succeeds(f"grep -qx noquorum {SYS}/mode", timeout=10)
    v = view(n3)
    assert (v.quorum, v.master, v.states) == (0, 0, {1: "DOWN", 2: "DOWN", 3: "UP"}), v
    cluster.heal()
    v2 = wait_agree(cluster, ALL, UP3, master=1)
    assert v2.transition > v1.transition


def test_one_sided_cut_member_rejoins(cluster: Cluster) -> None:
    """Node 3 loses only its link to the master: node 1 declares it down through
    node 2, and node 3, hearing node 2 follow a master it cannot hear, rejoins."""
    bring_up(cluster)
    wait_agree(cluster, ALL, UP3, master=1)
    n3 = cluster.node(3)
    inc3 = int(sysread(n3, "incarnation"))
    cluster.cut(1, 3)
    v1 = wait_agree(cluster, (1, 2), {1: "UP", 2: "UP", 3: "DOWN"}, master=1)
    n3.wait_until_succeeds(f"grep -qx joining {SYS}/mode", timeout=10)
    v = view(n3)
    assert v.quorum == 1 and v.states[3] == "COMINGUP", v
    assert sysread(n3, "up_nodes") == "0x8"
    assert int(sysread(n3, "incarnation")) != inc3
    assert int(sysread(n3, "rejoins")) >= 1
    cluster.uncut(1, 3)
    v2 = wait_agree(cluster, ALL, UP3, master=1)
    assert v2.transition > v1.transition


def test_unload_leaves_at_once_and_reload_rejoins(cluster: Cluster) -> None:
    bring_up(cluster)
    wait_agree(cluster, ALL, UP3, master=1)
    watches = start_watchers(cluster, (1, 2), 3)
    time.sleep(0.3)
    t0 = time.time_ns()
    cluster.node(3).succeed("busybox rmmod clms")
    det = detection_times(watches, t0)
    print(f"\n[clms] node 3 unloading clms seen after: {fmt(det)}")
    # It said leave: no need to wait for timeout_ms.
    check_detection(det, limit=0.9)
    wait_agree(cluster, (1, 2), {1: "UP", 2: "UP", 3: "DOWN"}, master=1)
    log = cluster.node(1).succeed("dmesg | grep 'clms: node 3'")
    assert "node 3 is leaving" in log, log
    bring_up(cluster, [3])
    wait_agree(cluster, ALL, UP3, master=1)


def test_wrong_key_never_joins(cluster: Cluster) -> None:
    bring_up(cluster)
    wait_agree(cluster, ALL, UP3, master=1)
    ics = "/sys/kernel/ssi/ics/auth_refused"
    refused0 = {n: int(cluster.node(n).succeed(f"cat {ics}")) for n in (1, 2)}
    cluster.node(3).crash()
    wait_agree(cluster, (1, 2), {1: "UP", 2: "UP", 3: "DOWN"}, master=1)
    restart(cluster, 3, key=WRONG_KEY)
    n3 = cluster.node(3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for n in (1, 2):
            assert view(cluster.node(n)).states[3] == "DOWN"
        time.sleep(0.5)
    assert sysread(n3, "mode") == "noquorum"
    assert view(n3).quorum == 0
    assert int(sysread(n3, "heartbeats_received")) == 0
    for n in (1, 2):
        refused = int(cluster.node(n).succeed(f"cat {ics}"))
        assert refused > refused0[n], (n, refused0[n], refused)
    # With the right key it joins.
    n3.succeed(f"{TOOL} setup '{KEY}' {CLUSTER_NODES}")
    wait_agree(cluster, ALL, UP3, master=1)


def test_no_stray_messages(cluster: Cluster) -> None:
    """After all of the above, no node dropped a heartbeat as unknown or invalid."""
    bring_up(cluster)
    wait_agree(cluster, ALL, UP3, master=1)
    for n in ALL:
        nd = cluster.node(n)
        assert sysread(nd, "dropped_unknown") == "0"
        assert sysread(nd, "dropped_invalid") == "0"
        dmesg = nd.succeed("dmesg")
        assert not re.search(r"clms: .*(error|fail)", dmesg), dmesg
