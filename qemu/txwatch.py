"""Unsticks a guest whose virtio-net transmit queue stalled (README, Known problems).

QEMU 7.2's virtio-net over a unix dgram netdev has twice left a guest's TX
queue parked for good under floods of small frames: the guest logs
``NETDEV WATCHDOG ... transmit queue 0 timed out`` every 5 s and sends nothing
more, while its QEMU sits idle.  The watcher reads every node's console once a
second; on that line it records the device's queue state from the monitor
(``info virtio-queue-status``) in the node's QEMU log, then stops and
continues the VM, which makes QEMU flush or purge what it parked and process
the TX ring again.  Each time is printed and counted (`unstuck`), so a test's
output says when it ran through one.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .monitor import hmp

MARK = "NETDEV WATCHDOG"


def _virtio_net_path(mon: Path) -> str | None:
    for line in hmp(mon, "info virtio").splitlines():
        if "virtio-net" in line:
            return line.split()[0]
    return None


def unstick(mon: Path, log: Path) -> None:
    """Record the virtio-net queues' state in `log`, then stop and continue the VM."""
    report = []
    try:
        dev = _virtio_net_path(mon)
        if dev:
            for queue in (0, 1):
                report.append(hmp(mon, f"info virtio-queue-status {dev} {queue}"))
        report.append(hmp(mon, "info network"))
    finally:
        hmp(mon, "stop")
        hmp(mon, "cont")
    with log.open("a") as f:
        f.write("txwatch: virtio-net TX stalled; queue state before stop/cont:\n")
        f.write("\n".join(report) + "\n")


class TxWatch:
    """A thread that reads the consoles and unsticks stalled TX queues."""

    def __init__(self, nodes: Sequence[tuple[int, Path, Path, Path]]) -> None:
        # (node number, console log, monitor socket, QEMU log)
        self.nodes = list(nodes)
        self.offsets = {n: 0 for n, *_ in self.nodes}
        self.unstuck: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="txwatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _new_text(self, n: int, console: Path) -> str:
        try:
            with console.open("rb") as f:
                size = f.seek(0, 2)
                if size < self.offsets[n]:
                    self.offsets[n] = 0  # a restarted node's log began again
                f.seek(self.offsets[n])
                data = f.read()
        except OSError:
            return ""
        self.offsets[n] += len(data)
        return data.decode(errors="replace")

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for n, console, mon, qemu_log in self.nodes:
                if MARK not in self._new_text(n, console):
                    continue
                try:
                    unstick(mon, qemu_log)
                except OSError as e:
                    print(f"[txwatch] node {n}: could not unstick: {e}", file=sys.stderr)
                    continue
                self.unstuck[n] = self.unstuck.get(n, 0) + 1
                print(f"[txwatch] node {n}: virtio-net TX stalled; stopped and continued "
                      f"its VM (queue state in {qemu_log})", file=sys.stderr)
