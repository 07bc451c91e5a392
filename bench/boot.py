"""Boot time: wall seconds from starting QEMU to every node's command channel answering."""

from __future__ import annotations

import statistics
from typing import Any

from qemu import Cluster


def run(sizes: tuple[int, ...] = (3, 8), runs: int = 3) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for nodes in sizes:
        times = []
        for _ in range(runs):
            with Cluster(nodes=nodes, name=f"bench-boot{nodes}") as c:
                times.append(round(c.boot_seconds, 3))
        results[f"{nodes}_nodes"] = {"runs_s": times, "median_s": statistics.median(times)}
        print(f"boot {nodes} nodes: median {statistics.median(times):.2f} s of {times}")
    return {"boot": results}
