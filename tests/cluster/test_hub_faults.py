"""The hub's link impairments seen from the guests: loss and latency of ping
follow what the hub is told, and `clear` gives the plain link back."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from qemu import Cluster
from qemu.hubctl import Impairment

CLUSTER_NODES = 2
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]

COUNT = 60
DELAY_MS = 100
# The guests' clocksource is refined-jiffies (TSC calibration fails under TCG):
# on a loaded host a guest loses ticks and measures short round trips, so
# latency is checked on the average with a margin of half the added delay.


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    rtt_min_ms: float | None
    rtt_avg_ms: float | None


def ping(c: Cluster, src: int, dst: int, count: int) -> PingResult:
    """`count` busybox pings 50 ms apart from node src to node dst."""
    cmd = f"busybox ping -q -c {count} -i 0.05 -W 2 node{dst}"
    _, out, _ = c.node(src).execute(cmd, timeout=count * 0.05 + 30)
    m = re.search(r"(\d+) packets transmitted, (\d+) packets received", out)
    assert m, f"no ping summary in {out!r}"
    rtt = re.search(r"min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+)", out)
    return PingResult(
        int(m.group(1)),
        int(m.group(2)),
        float(rtt.group(1)) if rtt else None,
        float(rtt.group(2)) if rtt else None,
    )


def test_drop_and_delay_show_in_ping_and_clear_restores(cluster: Cluster) -> None:
    hub = cluster.hub
    assert hub is not None
    with cluster.subtest("plain link"):
        ping(cluster, 1, 2, 3)  # ARP settled
        before = ping(cluster, 1, 2, COUNT)
        assert before.received == before.sent == COUNT
        assert before.rtt_avg_ms is not None and before.rtt_avg_ms < DELAY_MS, before
    with cluster.subtest("drop=20 delay=100 both ways"):
        cluster.net_seed(20)
        imp = Impairment(drop=20, delay=DELAY_MS, jitter=5)
        with cluster.impaired(1, 2, imp, both=True):
            assert set(hub.ctl.impairments()) == {(1, 2), (2, 1)}
            hurt = ping(cluster, 1, 2, COUNT)
            stats = cluster.link_stats()
        assert hub.ctl.impairments() == {}
        lost = hurt.sent - hurt.received
        # a round trip survives both directions with p = 0.8 * 0.8: 36 % lost
        assert 0.12 * COUNT <= lost <= 0.6 * COUNT, hurt
        assert lost <= stats[(1, 2)].dropped + stats[(2, 1)].dropped  # every loss was a drop
        assert stats[(1, 2)].delayed >= hurt.sent - stats[(1, 2)].dropped
        assert hurt.rtt_avg_ms is not None and before.rtt_avg_ms is not None
        assert hurt.rtt_avg_ms >= before.rtt_avg_ms + DELAY_MS, (before, hurt)
    with cluster.subtest("cleared"):
        after = ping(cluster, 1, 2, COUNT)
        assert after.received == after.sent == COUNT
        assert after.rtt_avg_ms is not None and after.rtt_avg_ms < DELAY_MS, after
