"""qemu/monitor.py and qemu/txwatch.py against a fake HMP monitor."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from qemu.monitor import hmp
from qemu.txwatch import TxWatch

ANSWERS = {
    "info virtio": "/machine/peripheral-anon/device[3]/virtio-backend [virtio-net]\n"
                   "/machine/peripheral-anon/device[5]/virtio-backend [virtio-serial]",
    "info network": "virtio-net-pci.0: index=0,type=nic",
}


def fake_monitor(path: Path, seen: list[str]) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"QEMU 7.2 monitor - type 'help'\r\n(qemu) ")
                line = b""
                while not line.endswith(b"\n"):
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    line += chunk
                cmd = line.decode().strip()
                seen.append(cmd)
                answer = ANSWERS.get(cmd.rsplit(" ", 2)[0] if "queue" in cmd else cmd, "")
                if "queue-status" in cmd:
                    answer = f"index: {cmd.split()[-1]}\ninuse: 1"
                out = f"\x1b[K{cmd}\r\n{answer}\r\n(qemu) " if answer else f"{cmd}\r\n(qemu) "
                conn.sendall(out.encode())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_hmp_returns_the_output_without_echo_or_prompt(tmp_path: Path) -> None:
    seen: list[str] = []
    fake_monitor(tmp_path / "m.sock", seen)
    assert hmp(tmp_path / "m.sock", "info network") == ANSWERS["info network"]
    assert seen == ["info network"]


def test_a_watchdog_line_gets_the_queues_recorded_then_stop_and_cont(tmp_path: Path) -> None:
    seen: list[str] = []
    fake_monitor(tmp_path / "m.sock", seen)
    console, log = tmp_path / "node1.console.log", tmp_path / "node1.qemu.log"
    console.write_text("boot\n")
    watch = TxWatch([(1, console, tmp_path / "m.sock", log)])
    watch.start()
    try:
        time.sleep(1.5)
        assert seen == [] and watch.unstuck == {}
        with console.open("a") as f:
            f.write("virtio_net virtio4 eth0: NETDEV WATCHDOG: CPU: 0: "
                    "transmit queue 0 timed out\n")
        deadline = time.monotonic() + 10
        while not watch.unstuck and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watch.stop()
    dev = "/machine/peripheral-anon/device[3]/virtio-backend"
    assert seen == ["info virtio", f"info virtio-queue-status {dev} 0",
                    f"info virtio-queue-status {dev} 1", "info network", "stop", "cont"]
    assert watch.unstuck == {1: 1}
    text = log.read_text()
    assert "TX stalled" in text and "index: 1" in text and "inuse: 1" in text
