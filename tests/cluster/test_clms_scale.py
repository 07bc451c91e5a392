"""CLMS at 8 nodes (issue 9, "Scale"): the whole cluster forms and agrees on the
master's timing; a crash is seen by every survivor within timeout_ms + 0.5 s
(1.5 s) while every link drops 5 % of its frames; a non-transitive cut (nodes 1
and 2 cannot hear each other, both still hear the other six) settles on one master
with one of the two left out, does not flap, and heals.

Helpers and detection timing as in test_clms.py (clms_helpers.py): a survivor's
`clms-tool wait-down` logs on its console the moment the node stops being UP, and
the host times the console line.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clms_helpers import (
    bring_up,
    build_tool,
    check_detection,
    detection_times,
    fmt,
    heartbeat_ms,
    on,
    save_dmesg,
    start_watchers,
    sysread,
    timeout_ms,
    view,
    wait_agree,
)

from qemu import Cluster
from qemu.hubctl import Impairment
from qemu.paths import flavor

CLUSTER_NODES = 8
ALL = tuple(range(1, CLUSTER_NODES + 1))
UP8 = dict.fromkeys(ALL, "UP")
LOSS_PERCENT = 5.0
# How long a settled membership must stay as it is to count as not flapping:
# many heartbeat timeouts (1 s; 4 s under lockdep).
STEADY_S = 10 * timeout_ms() / 1000
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]


@pytest.fixture(scope="module", autouse=True)
def tool() -> Path:
    return build_tool()


@pytest.fixture(autouse=True)
def _save_dmesg(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    save_dmesg(request.node.funcargs.get("cluster"), f"test_clms_scale.{request.node.name}")


def counters(cluster: Cluster, nodes: tuple[int, ...], name: str) -> dict[int, int]:
    return on(cluster, nodes, lambda nd: int(sysread(nd, name)))


def steady(cluster: Cluster, nodes: tuple[int, ...], seconds: float) -> dict[int, tuple[int, int]]:
    """Samples `nodes` for `seconds`; fails if any node's (transition, master) changes."""
    first = {n: (v.transition, v.master) for n, v in on(cluster, nodes, view).items()}
    end = time.monotonic() + flavor().timeout(seconds)
    while time.monotonic() < end:
        now = {n: (v.transition, v.master) for n, v in on(cluster, nodes, view).items()}
        assert now == first, f"the membership moved: {first} -> {now}"
        time.sleep(0.5)
    return first


def test_eight_nodes_agree_and_see_a_crash_in_time_under_frame_loss(cluster: Cluster) -> None:
    t0 = time.monotonic()
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP8, master=1, timeout=60)
    print(f"\n[clms8] 8 nodes UP and agreeing {time.monotonic() - t0:.2f} s after loading")
    for n, (hb, to) in on(cluster, ALL, lambda nd: (sysread(nd, "heartbeat_ms"),
                                                   sysread(nd, "timeout_ms"))).items():
        assert (int(hb), int(to)) == (heartbeat_ms(), timeout_ms()), (n, hb, to)

    cluster.net_seed(8)
    cluster.impair(None, None, Impairment(drop=LOSS_PERCENT))
    try:
        # Lost frames cost TCP retransmissions, never a membership change.
        before = counters(cluster, ALL, "quorum_lost")
        assert steady(cluster, ALL, STEADY_S) == dict.fromkeys(ALL, (v0.transition, 1))
        assert counters(cluster, ALL, "quorum_lost") == before

        survivors = ALL[:-1]
        watches = start_watchers(cluster, survivors, 8)
        time.sleep(0.3)
        t_crash = time.time_ns()
        cluster.node(8).crash()
        det = detection_times(watches, t_crash)
        secs = [s for s, _ in det.values()]
        print(f"[clms8] node 8 crash under {LOSS_PERCENT:g} % loss on every link, seen as "
              f"not UP after: {fmt(det)}; median {statistics.median(secs):.3f} s, "
              f"max {max(secs):.3f} s")
        check_detection(det)  # timeout_ms + 0.5 s: 1.5 s on the normal kernel
        down = {**dict.fromkeys(survivors, "UP"), 8: "DOWN"}
        v1 = wait_agree(cluster, survivors, down, master=1, timeout=30)
        assert v1.transition > v0.transition
        stats = cluster.link_stats()
        assert sum(s.dropped for s in stats.values()) > 0, stats
    finally:
        cluster.clear_impairments()


def settled_after_cut(cluster: Cluster, a: int, b: int) -> int:
    """Once the nodes other than `a` and `b` agree that exactly one of the two is DOWN
    and every other node UP: that one."""
    others = tuple(n for n in ALL if n not in (a, b))
    deadline = time.monotonic() + flavor().timeout(30)
    while True:
        views = on(cluster, others, view)
        first = views[others[0]]
        out = [n for n, st in first.states.items() if st != "UP"]
        if (len(out) == 1 and out[0] in (a, b) and first.states[out[0]] == "DOWN"
                and all(v.quorum == 1 and v.transition == first.transition
                        and v.states == first.states for v in views.values())):
            return out[0]
        assert time.monotonic() < deadline, f"no settlement after cutting {a}-{b}: {views}"
        time.sleep(0.2)


def test_a_non_transitive_cut_settles_on_one_master_and_heals(cluster: Cluster) -> None:
    """Nodes 1 and 2 lose their link to each other only; 3..8 hear both.  Each may
    count the other out (1 as master, 2 by following the lowest node it hears), so
    either may end outside; what must hold: the other seven settle on one membership
    and one master, the one left out waits as a joiner (no cluster of its own, no
    churn), nothing moves while the cut lasts, and all eight agree once it heals."""
    bring_up(cluster)
    v0 = wait_agree(cluster, ALL, UP8, master=1, timeout=60)
    cluster.cut(1, 2)
    try:
        out = settled_after_cut(cluster, 1, 2)
        rest = tuple(n for n in ALL if n != out)
        master = min(rest)
        v1 = wait_agree(cluster, rest, {**UP8, out: "DOWN"}, master=master, timeout=30)
        assert v1.transition > v0.transition
        left = cluster.node(out)
        left.wait_until_succeeds("grep -qx joining /sys/kernel/ssi/clms/mode",
                                 timeout=flavor().timeout(10))
        rejoins = int(sysread(left, "rejoins"))
        left_transition = view(left).transition
        settled = steady(cluster, rest, STEADY_S)
        print(f"\n[clms8] cut 1-2: node {out} left out, master {master}, "
              f"transition {v0.transition} -> {v1.transition}, steady for {STEADY_S:g} s")
        assert settled == dict.fromkeys(rest, (v1.transition, master))
        assert sysread(left, "mode") == "joining"
        assert view(left).master == 0
        assert view(left).transition == left_transition  # it made no transition of its own
        assert int(sysread(left, "rejoins")) == rejoins
    finally:
        cluster.uncut(1, 2)
    v2 = wait_agree(cluster, ALL, UP8, master=1, timeout=60)
    assert v2.transition > v1.transition
