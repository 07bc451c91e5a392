"""The C hub forwards, cuts and partitions frames between plain unix sockets."""

from __future__ import annotations

import itertools
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu.hub import Hub
from qemu.hubctl import HubCommandError, Impairment

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


# ---- impairments ----


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`: 0 when a filled-in one verifies."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


SRC_IP, DST_IP = bytes([169, 254, 77, 1]), bytes([169, 254, 77, 2])
TCP, UDP, ICMP = 6, 17, 1


def ip_frame(
    proto: int, payload: bytes, dst: int = 2, src: int = 1, udp_csum: bool = True
) -> bytes:
    """An Ethernet + IPv4 + TCP/UDP/ICMP frame with valid checksums, padded to 60 bytes."""
    if proto == TCP:
        l4 = bytearray(struct.pack("!HHIIBBHHH", 4600, 40000, 1, 2, 5 << 4, 0x18, 512, 0, 0))
        at = 16
    elif proto == UDP:
        l4 = bytearray(struct.pack("!HHHH", 4600, 40000, 8 + len(payload), 0))
        at = 6
    else:
        l4 = bytearray(struct.pack("!BBHHH", 8, 0, 0, 1, 1))
        at = 2
    l4 += payload
    if proto != ICMP:
        pseudo = SRC_IP + DST_IP + struct.pack("!BBH", 0, proto, len(l4))
        c = checksum(pseudo + bytes(l4))
    else:
        c = checksum(bytes(l4))
    if proto == UDP and not udp_csum:
        c = 0
    struct.pack_into("!H", l4, at, c)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 7, 0x4000, 64, proto, 0,
                               SRC_IP, DST_IP))
    struct.pack_into("!H", ip, 10, checksum(bytes(ip)))
    f = mac(dst) + mac(src) + b"\x08\x00" + bytes(ip) + bytes(l4)
    return f + b"\0" * max(0, 60 - len(f))


def l4_checksum_ok(f: bytes) -> bool:
    ip = f[14:34]
    if checksum(ip) != 0:
        return False
    tot, proto = struct.unpack("!H", ip[2:4])[0], ip[9]
    l4 = f[34 : 14 + tot]
    if proto == ICMP:
        return checksum(l4) == 0
    if proto == UDP and l4[6:8] == b"\0\0":
        return True
    return checksum(ip[12:20] + struct.pack("!BBH", 0, proto, len(l4)) + l4) == 0


def bit_diff(a: bytes, b: bytes) -> list[int]:
    """Bit positions (byte * 8 + bit) where a and b differ (same length)."""
    assert len(a) == len(b)
    return [i * 8 + k for i, (x, y) in enumerate(zip(a, b, strict=True)) for k in range(8)
            if (x ^ y) >> k & 1]


def transfer(
    hub: Hub, nodes: FakeNodes, src: int, dst: int, frames: list[bytes], chunk: int = 100
) -> list[bytes]:
    """Send `frames` from src to dst and collect all that arrive at dst, using
    the link counters to know how many to wait for (link stats zeroed first)."""
    got: list[bytes] = []

    def collect(count: int) -> None:
        while len(got) < count:
            data = nodes.recv(dst)
            assert data is not None, f"got {len(got)} of {count} ({st})"
            got.append(data)

    for i in range(0, len(frames), chunk):
        part = frames[i : i + chunk]
        for f in part:
            nodes.send(src, f)
        deadline = time.monotonic() + 10
        while True:
            st = hub.ctl.link_stats()[(src, dst)]
            if st.frames == i + len(part):
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.005)
        collect(st.frames - st.dropped + st.duplicated - st.overflow - st.pending)
    nodes.socks[dst].settimeout(2)  # what is still delayed or held
    try:
        collect(st.frames - st.dropped + st.duplicated - st.overflow)
    finally:
        nodes.socks[dst].settimeout(0.3)
    assert nodes.recv(dst) is None
    return got


def numbered(count: int, src: int = 1, dst: int = 2) -> list[bytes]:
    return [frame(mac(dst), src, i.to_bytes(4, "big") + b"pad" * 5) for i in range(count)]


def number(f: bytes) -> int:
    return int.from_bytes(f[14:18], "big")


def test_impairments_are_set_listed_and_cleared(net: tuple[Hub, FakeNodes]) -> None:
    hub, _ = net
    hub.ctl.impair(1, 2, drop=5, dup=0.25, delay=20, jitter=3)
    hub.ctl.impair(3, 4, reorder=10, hold=50, both=True)
    want = Impairment(drop=5, dup=0.25, delay=20, jitter=3)
    assert hub.ctl.impairments() == {
        (1, 2): want,
        (3, 4): Impairment(reorder=10, hold=50),
        (4, 3): Impairment(reorder=10, hold=50),
    }
    hub.ctl.impair(1, 2, corrupt=1)  # replaces the whole setting
    assert hub.ctl.impairments()[(1, 2)] == Impairment(corrupt=1)
    hub.ctl.clear(3, 4, both=True)
    assert set(hub.ctl.impairments()) == {(1, 2)}
    hub.ctl.impair(None, 2, drop=1)  # every node to 2
    assert set(hub.ctl.impairments()) == {(1, 2), (3, 2), (4, 2)}
    hub.ctl.impair(1, 2, drop=0)  # nothing left: the link is not impaired
    assert set(hub.ctl.impairments()) == {(3, 2), (4, 2)}
    hub.ctl.clear()
    assert hub.ctl.impairments() == {}


def test_bad_impair_commands_are_refused(net: tuple[Hub, FakeNodes]) -> None:
    hub, _ = net
    for bad in ("impair", "impair 1", "impair 1 2", "impair 1 1 drop=1", "impair 0 2 drop=1",
                f"impair 1 {NODES + 1} drop=1", "impair 1 2 drop=101", "impair 1 2 drop=-1",
                "impair 1 2 drop=nan", "impair 1 2 drop=x", "impair 1 2 drop=", "impair 1 2 drop",
                "impair 1 2 bogus=1", "impair 1 2 delay=1.5", "impair 1 2 delay=60001",
                "impair 1 2 delay=-1", "impair 1 2 hold=0", "impair 1 2 drop=1 sideways",
                "clear 1", "clear 1 1", "clear 1 2 3", "clear 1 2 both x", "seed", "seed x",
                "seed -1", "seed 1 2", "seed 0x10", "seed 18446744073709551616",
                "linkstats x", "impair 1 2 " + "drop=1 " * 200):
        with pytest.raises(HubCommandError):
            hub.ctl.command(bad)
    assert hub.ctl.impairments() == {}
    with pytest.raises(HubCommandError, match="longer than"):  # not cut short and obeyed
        hub.ctl.command("impair 1 2 drop=100" + " " * 1100 + "dup=1")
    assert hub.ctl.impairments() == {}
    assert hub.ctl.command("seed 010") == "ok seed 10"  # decimal, not octal
    assert hub.ctl.command("ping").startswith("ok")


def test_drop_is_seeded_and_counted(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    frames = numbered(1000)
    hub.ctl.seed(42)
    hub.ctl.impair(1, 2, drop=50)
    got = transfer(hub, nodes, 1, 2, frames)
    st = hub.ctl.link_stats()[(1, 2)]
    assert 400 <= st.dropped <= 600
    assert (st.frames, len(got)) == (1000, 1000 - st.dropped)
    assert st.duplicated == st.corrupted == st.delayed == st.reordered == st.overflow == 0
    kept = [number(f) for f in got]
    assert kept == sorted(kept)  # drop alone keeps the order
    # same seed, same frames: the same frames are lost; another seed loses others
    hub.ctl.zero_link_stats()
    hub.ctl.seed(42)
    assert [number(f) for f in transfer(hub, nodes, 1, 2, frames)] == kept
    hub.ctl.zero_link_stats()
    hub.ctl.seed(43)
    assert [number(f) for f in transfer(hub, nodes, 1, 2, frames)] != kept
    # the other direction and other links are untouched
    nodes.send(2, frame(mac(1), 2, b"back"))
    assert nodes.recv(1) is not None
    for _ in range(20):
        nodes.send(1, frame(mac(3), 1, b"side"))
        assert nodes.recv(3) is not None
    assert set(hub.ctl.link_stats()) == {(1, 2)}


def test_drop_applies_to_broadcast_per_link(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.impair(1, 2, drop=100, both=True)
    nodes.send(1, frame(BCAST, 1, b"all"))
    assert nodes.recv(2) is None
    assert nodes.recv(3) is not None and nodes.recv(4) is not None
    nodes.send(2, frame(BCAST, 2, b"all"))
    assert nodes.recv(1) is None
    assert nodes.recv(3) is not None and nodes.recv(4) is not None
    hub.ctl.clear()
    hub.ctl.impair(None, 4, drop=100)
    for src in (1, 2, 3):
        nodes.send(src, frame(mac(4), src, b"to4"))
    nodes.send(4, frame(mac(1), 4, b"from4"))
    assert nodes.recv(4) is None
    assert nodes.recv(1) is not None
    stats = hub.ctl.link_stats()
    assert all(stats[(s, 4)].dropped == 1 for s in (1, 2, 3))


def test_dup_sends_twice(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.impair(1, 2, dup=100)
    got = transfer(hub, nodes, 1, 2, numbered(50))
    assert [number(f) for f in got] == [i // 2 for i in range(100)]
    hub.ctl.zero_link_stats()
    hub.ctl.seed(5)
    hub.ctl.impair(1, 2, dup=50)
    got = transfer(hub, nodes, 1, 2, numbered(1000))
    st = hub.ctl.link_stats()[(1, 2)]
    assert 400 <= st.duplicated <= 600 and len(got) == 1000 + st.duplicated
    nums = [number(f) for f in got]
    assert sorted(set(nums)) == list(range(1000)) and nums == sorted(nums)


@pytest.mark.parametrize("proto", [TCP, UDP, ICMP])
def test_corrupt_flips_one_payload_bit_and_fixes_the_checksum(
    net: tuple[Hub, FakeNodes], proto: int
) -> None:
    hub, nodes = net
    hub.ctl.seed(1)
    hub.ctl.impair(1, 2, corrupt=100)
    frames = [ip_frame(proto, bytes((i * 7 + k) & 0xFF for k in range(n)))
              for i, n in enumerate([1, 2, 3, 5, 64, 333, 1400] * 20)]
    assert all(l4_checksum_ok(f) for f in frames)
    got = transfer(hub, nodes, 1, 2, frames)
    hl = {TCP: 20, UDP: 8, ICMP: 8}[proto]
    at = 34 + {TCP: 16, UDP: 6, ICMP: 2}[proto]  # the L4 checksum

    def masked(f: bytes) -> bytes:
        return f[:at] + b"\0\0" + f[at + 2 :]

    bits_hit = set()
    for sent, recv in zip(frames, got, strict=True):
        assert sent[at : at + 2] != recv[at : at + 2]
        diff = bit_diff(masked(sent), masked(recv))
        assert len(diff) == 1
        tot = struct.unpack("!H", sent[16:18])[0]
        assert (14 + 20 + hl) * 8 <= diff[0] < (14 + tot) * 8  # in the payload, not padding
        assert l4_checksum_ok(recv), "the receiving kernel would drop it"
        bits_hit.add(diff[0] % 8)
    assert bits_hit == set(range(8))
    assert hub.ctl.link_stats()[(1, 2)].corrupted == len(frames)


def test_corrupt_skips_frames_without_l4_payload(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.impair(1, 2, corrupt=100)
    plain = [frame(mac(2), 1, b"not ip at all"), ip_frame(TCP, b""), ip_frame(UDP, b"")]
    frag = bytearray(ip_frame(UDP, b"fragment"))
    struct.pack_into("!H", frag, 20, 0x2000)  # more fragments: checksum covers other frames
    assert transfer(hub, nodes, 1, 2, [*plain, bytes(frag)]) == [*plain, bytes(frag)]
    assert hub.ctl.link_stats()[(1, 2)].corrupted == 0
    # a UDP frame without checksum keeps it at 0
    hub.ctl.zero_link_stats()
    f = ip_frame(UDP, b"abcdef", udp_csum=False)
    [got] = transfer(hub, nodes, 1, 2, [f])
    assert len(bit_diff(f, got)) == 1 and got[40:42] == b"\0\0"


def test_rawcorrupt_flips_one_bit_the_checksums_catch(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.seed(3)
    hub.ctl.impair(1, 2, rawcorrupt=100)
    frames = [ip_frame(TCP, bytes(range(n % 256)) * 2) for n in range(1, 200)]
    got = transfer(hub, nodes, 1, 2, frames)
    for sent, recv in zip(frames, got, strict=True):
        diff = bit_diff(sent, recv)
        tot = struct.unpack("!H", sent[16:18])[0]
        assert len(diff) == 1 and 14 * 8 <= diff[0] < (14 + tot) * 8
        assert not l4_checksum_ok(recv)
    assert hub.ctl.link_stats()[(1, 2)].corrupted == len(frames)
    hub.ctl.zero_link_stats()
    hub.ctl.impair(1, 2, rawcorrupt=30)
    got = transfer(hub, nodes, 1, 2, frames * 3)
    bad = sum(1 for f in got if not l4_checksum_ok(f))
    assert bad == hub.ctl.link_stats()[(1, 2)].corrupted and 120 <= bad <= 240


def test_delay_holds_frames_in_order(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.impair(1, 2, delay=150, jitter=100)
    for s in nodes.socks.values():
        s.settimeout(2)
    sent_at = []
    for f in numbered(30):
        sent_at.append(time.monotonic())
        nodes.send(1, f)
    nodes.send(1, frame(mac(3), 1, b"fast"))  # other links are not held up
    assert nodes.recv(3) is not None
    assert time.monotonic() - sent_at[0] < 0.05 + 0.1
    assert hub.ctl.link_stats()[(1, 2)].pending > 0
    got = []
    for _ in range(30):
        data = nodes.recv(2)
        assert data is not None
        got.append((number(data), time.monotonic()))
    assert [n for n, _ in got] == list(range(30))  # jitter never reorders
    lat = [t - sent_at[n] for n, t in got]
    assert min(lat) >= 0.05 - 0.002  # delay - jitter
    assert max(lat) < 0.25 + 1.0
    st = hub.ctl.link_stats()[(1, 2)]
    assert st.delayed == 30 and st.pending == 0
    # plain delay: every frame at least `delay` late
    hub.ctl.impair(1, 2, delay=100)
    for i in range(5):
        t0 = time.monotonic()
        nodes.send(1, frame(mac(2), 1, bytes([i])))
        assert nodes.recv(2) is not None
        assert time.monotonic() - t0 >= 0.1 - 0.002


def test_clear_releases_held_frames_at_once(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.impair(1, 2, delay=30000)
    for f in numbered(5):
        nodes.send(1, f)
    deadline = time.monotonic() + 5
    while hub.ctl.link_stats()[(1, 2)].pending < 5:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert nodes.recv(2) is None
    hub.ctl.clear(1, 2)
    assert [number(f) for f in (nodes.recv(2), nodes.recv(2), nodes.recv(2), nodes.recv(2),
                                 nodes.recv(2)) if f] == list(range(5))
    assert hub.ctl.link_stats()[(1, 2)].pending == 0


def test_delay_line_is_bounded(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.impair(1, 2, delay=30000)
    cap = 4096
    for f in numbered(cap + 100):
        nodes.send(1, f)
    deadline = time.monotonic() + 10
    while hub.ctl.link_stats()[(1, 2)].frames < cap + 100:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    st = hub.ctl.link_stats()[(1, 2)]
    assert (st.pending, st.overflow, st.delayed) == (cap, 100, cap)
    hub.ctl.clear()
    assert hub.ctl.link_stats()[(1, 2)].pending == 0
    assert number(nodes.recv(2) or b"") == 0


def test_reorder_swaps_with_the_next_frame(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.impair(1, 2, reorder=100, hold=5000)
    got = transfer(hub, nodes, 1, 2, numbered(100))
    assert [number(f) for f in got] == [i ^ 1 for i in range(100)]
    assert hub.ctl.link_stats()[(1, 2)].reordered == 50
    # a held frame with no successor leaves after `hold`
    hub.ctl.impair(1, 2, reorder=100, hold=150)
    nodes.socks[2].settimeout(2)
    t0 = time.monotonic()
    nodes.send(1, frame(mac(2), 1, b"alone"))
    assert nodes.recv(2) is not None
    assert 0.15 - 0.002 <= time.monotonic() - t0 < 1.5
    # with a percentage: nothing lost, some out of order, counts agree
    hub.ctl.zero_link_stats()
    hub.ctl.seed(9)
    hub.ctl.impair(1, 2, reorder=50, hold=300)
    got = transfer(hub, nodes, 1, 2, numbered(1000))
    nums = [number(f) for f in got]
    swaps = sum(1 for a, b in itertools.pairwise(nums) if a > b)
    assert sorted(nums) == list(range(1000))
    assert swaps == hub.ctl.link_stats()[(1, 2)].reordered
    assert 250 <= swaps <= 420  # held with p=1/2 when the slot is free: ~1/3 of frames


def test_stages_combine(net: tuple[Hub, FakeNodes]) -> None:
    hub, nodes = net
    hub.ctl.seed(11)
    hub.ctl.impair(1, 2, drop=10, dup=10, corrupt=10, reorder=10, delay=2, jitter=2)
    frames = [ip_frame(TCP, i.to_bytes(4, "big") * 10) for i in range(1000)]
    got = transfer(hub, nodes, 1, 2, frames)
    st = hub.ctl.link_stats()[(1, 2)]
    assert len(got) == 1000 - st.dropped + st.duplicated
    assert all(l4_checksum_ok(f) for f in got)
    changed = sum(1 for f in got if f not in set(frames))
    assert changed >= st.corrupted > 50  # a corrupted frame may also be duplicated
    for name in ("dropped", "duplicated", "reordered"):
        assert 50 <= getattr(st, name) <= 160, (name, st)
    assert st.delayed == 1000 - st.dropped + st.duplicated


def test_waiting_frames_for_a_vanished_node_are_dropped_safely(
    net: tuple[Hub, FakeNodes],
) -> None:
    hub, nodes = net
    hub.ctl.impair(None, None, delay=150, reorder=50, hold=100)  # every link, both ways
    assert len(hub.ctl.impairments()) == NODES * (NODES - 1)
    for src in range(1, NODES + 1):
        for i in range(10):
            nodes.send(src, frame(BCAST, src, bytes([src, i])))
    # The hub answers its control socket and reads frames in the same loop, so
    # wait until it has taken all 40 in: until then nothing is pending yet.
    deadline = time.monotonic() + 5
    while sum(p.rx for p in hub.ctl.stats().values()) < NODES * 10:
        assert time.monotonic() < deadline, hub.ctl.stats()
        time.sleep(0.01)
    nodes.socks[2].close()
    (nodes.dir / "node2.sock").unlink()
    deadline = time.monotonic() + 5
    while any(s.pending for s in hub.ctl.link_stats().values()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert hub.ctl.stats()[2].drop >= 30  # from nodes 1, 3, 4: released into the void
    for n in (1, 3, 4):  # everyone else got all 30 broadcasts of the others
        got = set()
        while (data := nodes.recv(n)) is not None:
            got.add(data[14:16])
        assert got == {bytes([s, i]) for s in range(1, NODES + 1) if s != n for i in range(10)}
    hub.ctl.clear()
    assert hub.ctl.command("ping").startswith("ok")
