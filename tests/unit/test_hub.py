"""The C hub forwards, cuts and partitions frames between plain unix sockets."""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu.hub import Hub
from qemu.hubctl import HubCommandError

NODES = 4
BCAST = b"\xff" * 6


def mac(n: int) -> bytes:
    return bytes([0x52, 0x54, 0x00, 0x00, 0x00, n])


def frame(dst: bytes, src: int, payload: bytes) -> bytes:
    return dst + mac(src) + b"\x88\xb5" + payload


class FakeNodes:
    def __init__(self, sock_dir: Path, count: int) -> None:
        self.dir = sock_dir
        self.socks: dict[int, socket.socket] = {}
        for n in range(1, count + 1):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(str(sock_dir / f"node{n}.sock"))
            s.settimeout(0.3)
            self.socks[n] = s

    def send(self, src: int, data: bytes) -> None:
        self.socks[src].sendto(data, str(self.dir / "hub.sock"))

    def recv(self, n: int) -> bytes | None:
        try:
            return self.socks[n].recv(70000)
        except TimeoutError:
            return None

    def drain(self) -> None:
        for s in self.socks.values():
            s.setblocking(False)
            try:
                while True:
                    s.recv(70000)
            except BlockingIOError:
                pass
            s.settimeout(0.3)

    def close(self) -> None:
        for s in self.socks.values():
            s.close()


@pytest.fixture
def net() -> Iterator[tuple[Hub, FakeNodes]]:
    with tempfile.TemporaryDirectory(prefix="ssihub", dir="/tmp") as d:
        nodes = FakeNodes(Path(d), NODES)
        hub = Hub(Path(d), NODES)
        hub.start()
        try:
            yield hub, nodes
        finally:
            hub.stop()
            nodes.close()


def test_unicast_goes_to_one_node(net: tuple[Hub, FakeNodes]) -> None:
    _, nodes = net
    data = frame(mac(3), 1, b"hello")
    nodes.send(1, data)
    assert nodes.recv(3) == data
    assert nodes.recv(2) is None
    assert nodes.recv(4) is None
    assert nodes.recv(1) is None


def test_broadcast_and_multicast_go_to_all_others(net: tuple[Hub, FakeNodes]) -> None:
    _, nodes = net
    for dst in (BCAST, b"\x33\x33\x00\x00\x00\x01"):
        data = frame(dst, 2, b"all")
        nodes.send(2, data)
        for n in (1, 3, 4):
            assert nodes.recv(n) == data
        assert nodes.recv(2) is None


def test_large_frame_is_forwarded_whole(net: tuple[Hub, FakeNodes]) -> None:
    _, nodes = net
    data = frame(mac(2), 1, bytes(range(256)) * 200)
    nodes.send(1, data)
    assert nodes.recv(2) == data


def test_cut_and_uncut(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.cut(1, 2)
    assert hub.ctl.cuts() == {(1, 2)}
    nodes.send(1, frame(mac(2), 1, b"x"))
    nodes.send(2, frame(mac(1), 2, b"y"))
    assert nodes.recv(2) is None
    assert nodes.recv(1) is None
    nodes.send(1, frame(BCAST, 1, b"b"))
    assert nodes.recv(2) is None
    assert nodes.recv(3) is not None
    assert nodes.recv(4) is not None
    nodes.send(1, frame(mac(3), 1, b"z"))
    assert nodes.recv(3) is not None
    hub.ctl.uncut(2, 1)
    nodes.send(1, frame(mac(2), 1, b"x"))
    assert nodes.recv(2) is not None
    assert hub.ctl.stats()[2].drop >= 2


def test_partition_and_heal(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.partition({1}, {2, 3})
    assert hub.ctl.cuts() == {(1, 2), (1, 3)}
    nodes.send(1, frame(BCAST, 1, b"p"))
    for n in (2, 3):
        assert nodes.recv(n) is None
    assert nodes.recv(4) is not None  # unlisted nodes keep their links
    nodes.send(2, frame(mac(3), 2, b"q"))
    assert nodes.recv(3) is not None
    hub.ctl.partition({1, 2}, {3}, {4})  # replaces the previous partition
    assert hub.ctl.cuts() == {(1, 3), (1, 4), (2, 3), (2, 4), (3, 4)}
    hub.ctl.heal()
    assert hub.ctl.cuts() == set()
    nodes.send(1, frame(mac(2), 1, b"h"))
    assert nodes.recv(2) is not None


def test_bad_commands_are_refused(net: tuple[Hub, FakeNodes]) -> None:
    hub, _ = net
    for bad in ("cut 1", "cut 1 1", f"cut 1 {NODES + 1}", "partition 1,2", "partition 1 1",
                "frobnicate", "cut a b"):
        with pytest.raises(HubCommandError):
            hub.ctl.command(bad)


def test_stats_count_frames(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    for _ in range(5):
        nodes.send(1, frame(mac(2), 1, b"s"))
    for _ in range(5):
        assert nodes.recv(2) is not None
    stats = hub.ctl.stats()
    assert stats[1].rx == 5
    assert stats[2].tx == 5
    assert set(stats) == set(range(1, NODES + 1))


def test_restarted_node_is_reached_again(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    nodes.socks[2].close()
    path = nodes.dir / "node2.sock"
    path.unlink()
    nodes.send(1, frame(mac(2), 1, b"lost"))  # node 2 is down: dropped, no crash
    deadline = time.monotonic() + 5
    while hub.ctl.stats()[2].drop < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.3)
    nodes.socks[2] = s
    data = frame(mac(2), 1, b"back")
    nodes.send(1, data)
    assert nodes.recv(2) == data


def test_burst_is_not_lost(net: tuple[Hub, FakeNodes]) -> None:
    """More frames than a unix socket queue holds arrive in order (hub queues them)."""
    _, nodes = net
    count = 200
    for i in range(count):
        nodes.send(1, frame(mac(2), 1, i.to_bytes(4, "big")))
    got = []
    for _ in range(count):
        data = nodes.recv(2)
        if data is None:
            break
        got.append(int.from_bytes(data[14:18], "big"))
    assert got == list(range(count))


def test_frames_from_unknown_sockets_are_ignored(net: tuple[Hub, FakeNodes]) -> None:
    _, nodes = net
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stranger:
        stranger.bind(str(nodes.dir / "other.sock"))
        stranger.sendto(frame(BCAST, 1, b"?"), str(nodes.dir / "hub.sock"))
    for n in range(1, NODES + 1):
        assert nodes.recv(n) is None
