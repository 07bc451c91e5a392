"""CLMS: failure-detection time and heartbeat traffic on a 3-node cluster.

Detection: nodes 1 and 2 each run a tight shell loop that notes their own uptime the
moment node 3 leaves `up_nodes`. The host reads node 1's uptime, crashes node 3 and
knows how long after that read the crash happened, so the detection time is taken on
one clock per survivor (error: half an agent round trip, ~50 ms). Repeated `runs`
times, node 3 rebooted and rejoined in between.
Heartbeats: heartbeats_sent over a 10 s window on every node, per second.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from qemu import Cluster

CLMS = "/sys/kernel/ssi/clms"
WATCH = (
    f"(while [ $(( $(cat {CLMS}/up_nodes) & 8 )) -ne 0 ]; do :; done; "
    "cut -d' ' -f1 /proc/uptime > /tmp/down3) >/dev/null 2>&1 &"
)


def _uptime(c: Cluster, n: int) -> tuple[float, float]:
    """(guest uptime, host monotonic time at the middle of the round trip)."""
    t0 = time.monotonic()
    up = float(c.node(n).succeed("cut -d' ' -f1 /proc/uptime"))
    return up, (t0 + time.monotonic()) / 2


def _detect_once(c: Cluster) -> dict[int, float]:
    for n in (1, 2):
        c.node(n).succeed(f"rm -f /tmp/down3; {WATCH}")
    marks = {n: _uptime(c, n) for n in (1, 2)}
    crash_at = time.monotonic()
    c.node(3).crash()
    result = {}
    for n in (1, 2):
        c.node(n).wait_until_succeeds("test -s /tmp/down3", timeout=30)
        seen = float(c.node(n).succeed("cat /tmp/down3"))
        up0, host0 = marks[n]
        result[n] = round(seen - (up0 + (crash_at - host0)), 3)
    return result


def _heartbeats(c: Cluster, seconds: float = 10.0) -> dict[int, float]:
    def sent(n: int) -> int:
        return int(c.node(n).succeed(f"cat {CLMS}/heartbeats_sent"))

    before = {nd.number: (sent(nd.number), time.monotonic()) for nd in c.nodes}
    time.sleep(seconds)
    rates = {}
    for nd in c.nodes:
        count, t = before[nd.number]
        rates[nd.number] = round((sent(nd.number) - count) / (time.monotonic() - t), 1)
    return rates


def run(runs: int = 3) -> dict[str, Any]:
    with Cluster(nodes=3, name="bench-clms") as c:
        c.bring_up()
        hb_rates = _heartbeats(c)
        heartbeat_ms = int(c.node(1).succeed(f"cat {CLMS}/heartbeat_ms"))
        timeout_ms = int(c.node(1).succeed(f"cat {CLMS}/timeout_ms"))
        detections: list[dict[int, float]] = []
        for i in range(runs):
            if i:
                c.node(3).start()
                c.bring_up()
            detections.append(_detect_once(c))
    worst = [max(d.values()) for d in detections]
    print(f"CLMS: nodedown seen by every survivor after median {statistics.median(worst):.3f} s "
          f"(runs {worst}; timeout {timeout_ms} ms, heartbeat {heartbeat_ms} ms); "
          f"heartbeats/s per node {hb_rates}")
    return {
        "detection_s": {"per_run_per_survivor": [{str(k): v for k, v in d.items()}
                                                 for d in detections],
                        "worst_survivor_per_run": worst,
                        "median_worst_s": statistics.median(worst),
                        "goal_s": 1.5},
        "heartbeat_ms": heartbeat_ms,
        "timeout_ms": timeout_ms,
        "heartbeats_sent_per_s": {str(k): v for k, v in hb_rates.items()},
    }
