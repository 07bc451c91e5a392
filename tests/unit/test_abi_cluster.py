"""abi.cluster on the host: struct encoding/decoding, validation, and a fake kernel.

The fake kernel replaces ``binding._call`` (the one place that enters the kernel): it
sees exactly the ``ssisys(cmd, buf, len)`` arguments the real one would, and fills
the buffers the way clms.ko / ics_test.ko document in ssi_abi.h.
"""

from __future__ import annotations

import errno
import struct
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import abi
from abi import binding, errors, header
from abi import cluster as C

MEMBERSHIP_FMT = "<QIIII64B"  # struct ssi_membership
NODE_INFO_FMT = "<IIIIQQIIIIQQIIQII"  # struct ssi_node_info
ICS_TEST_FMT = "<IIIIIIiIQ"  # struct ssi_ics_test
TABLE_HEAD_FMT = "<II"  # struct ssi_cluster_table, then 63 x (node, addr)


def membership_bytes(
    states: dict[int, int], *, transition: int = 7, master: int = 1, me: int = 2, quorum: int = 1
) -> bytes:
    st = [0] * 64
    for n, v in states.items():
        st[n] = v
    return struct.pack(MEMBERSHIP_FMT, transition, master, me, quorum, len(states), *st)


def ip_u32(text: str) -> int:
    return int.from_bytes(bytes(int(x) for x in text.split(".")), sys.byteorder)


def node_info_bytes(node: int, state: int, addr: str, since_ns: int = 0) -> bytes:
    return struct.pack(
        NODE_INFO_FMT,
        node,
        state,
        ip_u32(addr),
        2,
        262144,
        131072,
        12,
        150,
        5,
        3,
        since_ns,
        9,
        0,  # nr_running
        0,  # flags: no load figures (an older clms)
        0,  # mem_available_kb
        0,  # figures_age_ms
        0,  # reserved
    )


@pytest.fixture(autouse=True)
def _no_ssi_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(errors, "SSI_SYSFS", tmp_path / "absent")
    monkeypatch.setattr(C, "ICS_PEERS", tmp_path / "absent_peers")


# --------------------------------------------------------------------------- layouts


def test_struct_formats_match_cffi() -> None:
    f = abi.ffi()
    assert f.sizeof("struct ssi_membership") == struct.calcsize(MEMBERSHIP_FMT)
    assert f.sizeof("struct ssi_node_info") == struct.calcsize(NODE_INFO_FMT)
    assert f.sizeof("struct ssi_ics_test") == struct.calcsize(ICS_TEST_FMT)
    assert f.sizeof("struct ssi_cluster_table") == 8 + 63 * 8


def test_constants_come_from_the_header() -> None:
    c = header.constants()
    assert c["SSI_NODE_UP"] == C.SSI_NODE_UP
    assert C.NODE_STATES[c["SSI_NODE_DOWN"]] == "DOWN"
    assert set(C.NODE_STATES.values()) == {
        "NEVERUP", "COMINGUP", "UP", "SHUTDOWN", "GOINGDOWN", "KCLEANUP", "UCLEANUP", "DOWN",
    }  # fmt: skip
    assert {
        "null": c["SSI_ICS_TEST_NULL"],
        "echo": c["SSI_ICS_TEST_ECHO"],
        "ping": c["SSI_ICS_TEST_PING"],
        "echo_pages": c["SSI_ICS_TEST_ECHO_PAGES"],
    } == C.ICS_TEST_OPS
    assert (c["SSI_KEY_MIN"], c["SSI_KEY_MAX"]) == (C.SSI_KEY_MIN, C.SSI_KEY_MAX)


def test_ssictl_mirrors_of_header_limits() -> None:
    from ssictl import clusterconf

    c = header.constants()
    assert c["SSI_MAX_NODES"] == clusterconf.MAX_NODES
    assert (c["SSI_KEY_MIN"], c["SSI_KEY_MAX"]) == (clusterconf.KEY_MIN, clusterconf.KEY_MAX)


# --------------------------------------------------------------------------- addresses/table


def test_ipv4_round_trip() -> None:
    assert C.parse_ipv4("169.254.77.3") == bytes([169, 254, 77, 3])
    v = C.ipv4_to_u32("10.0.0.1")
    assert v.to_bytes(4, sys.byteorder) == b"\x0a\x00\x00\x01"  # network order in memory
    assert C.u32_to_ipv4(v) == "10.0.0.1"
    assert C.u32_to_ipv4(0) == ""


@pytest.mark.parametrize(
    "bad", ["10.1", "256.1.1.1", "01.2.3.4", "1.2.3.4.5", " 1.2.3.4", "a.b.c.d", "", "1..2.3"]
)
def test_ipv4_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an IPv4 address"):
        C.parse_ipv4(bad)


def test_encode_table_layout() -> None:
    raw = C.encode_table({3: "169.254.77.3", 1: "10.0.0.1"})
    assert len(raw) == 8 + 63 * 8
    nr, reserved = struct.unpack_from(TABLE_HEAD_FMT, raw)
    assert (nr, reserved) == (2, 0)
    entries = [struct.unpack_from("<II", raw, 8 + 8 * i) for i in range(3)]
    assert entries[0] == (1, ip_u32("10.0.0.1"))
    assert entries[1] == (3, ip_u32("169.254.77.3"))
    assert entries[2] == (0, 0)
    assert raw[8 + 4 : 8 + 8] == bytes([10, 0, 0, 1])


@pytest.mark.parametrize(
    ("nodes", "exc", "match"),
    [
        ({}, ValueError, "empty"),
        ({0: "1.2.3.4"}, ValueError, r"node must be in 1\.\.63, got 0"),
        ({64: "1.2.3.4"}, ValueError, r"node must be in 1\.\.63, got 64"),
        ({1: "1.2.3"}, ValueError, "node 1: '1.2.3' is not an IPv4 address"),
        ({1: "0.0.0.0"}, ValueError, "not a usable node address"),
        ({1: "1.2.3.4", 2: "1.2.3.4"}, ValueError, "nodes 1 and 2 have the same address"),
        ({1: 0x01020304}, TypeError, "address of node 1 must be a str"),
        ([(1, "1.2.3.4")], TypeError, "mapping"),
    ],
)
def test_encode_table_rejects(nodes: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        C.encode_table(nodes)


# --------------------------------------------------------------------------- decoding


def test_decode_membership() -> None:
    raw = membership_bytes({1: C.SSI_NODE_UP, 2: C.SSI_NODE_UP, 3: 7, 5: 9}, me=2)
    m = C.decode_membership(raw, configured={1, 2, 3, 4})
    assert m == abi.Membership(
        transition=7,
        master=1,
        self=2,
        quorum=True,
        nr_configured=4,
        states={1: "UP", 2: "UP", 3: "DOWN", 4: "NEVERUP", 5: "UNKNOWN(9)"},
    )
    assert m.up() == [1, 2]
    assert m.to_json()["states"] == {
        "1": "UP",
        "2": "UP",
        "3": "DOWN",
        "4": "NEVERUP",
        "5": "UNKNOWN(9)",
    }
    # Without the table, nodes never up are unknown, except this node itself.
    m = C.decode_membership(membership_bytes({1: 2}, me=4, quorum=0))
    assert m.states == {1: "UP", 4: "NEVERUP"} and m.quorum is False


def test_decode_node_info() -> None:
    since = datetime(2026, 11, 25, 19, 0, 1, 500000, tzinfo=UTC)
    raw = node_info_bytes(3, C.SSI_NODE_UP, "169.254.77.3", int(since.timestamp() * 1e9))
    info = C.decode_node_info(raw)
    assert info == abi.NodeInfo(
        node=3,
        state="UP",
        addr="169.254.77.3",
        cpus=2,
        mem_total_kb=262144,
        mem_free_kb=131072,
        load=(0.12, 1.5, 0.05),
        incarnation=3,
        since=since,
        transition=9,
    )
    j = info.to_json()
    assert j["since"] == "2026-11-25T19:00:01.500000+00:00"
    assert j["since_epoch"] == since.timestamp() and j["load"] == [0.12, 1.5, 0.05]
    assert C.decode_node_info(node_info_bytes(4, 0, "1.2.3.4")).since is None


def test_decode_ics_test() -> None:
    raw = struct.pack(ICS_TEST_FMT, 2, 2, 1000, 64, 500, 3, -errno.ETIMEDOUT, 0, 2_500_000)
    r = C.decode_ics_test(raw)
    assert (r.node, r.op, r.count, r.size, r.errors) == (2, "echo", 1000, 64, 3)
    assert r.last_error == -errno.ETIMEDOUT and r.last_errno_name == "ETIMEDOUT"
    assert r.per_call_us == 2.5
    assert r.to_json()["last_error_name"] == "ETIMEDOUT"


@pytest.mark.parametrize("fn", [C.decode_membership, C.decode_node_info, C.decode_ics_test])
def test_decode_wrong_size(fn: Any) -> None:
    with pytest.raises(ValueError, match="bytes, got 5"):
        fn(b"12345")


# --------------------------------------------------------------------------- fake kernel


class FakeKernel:
    """ssisys as clms.ko/ics.ko/ics_test.ko would serve it; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, dict[str, Any]]] = []
        self.membership = membership_bytes({1: 2, 2: 2, 3: 7}, me=2)
        self.name = b"lab"
        self.fail: dict[str, int] = {}

    def __call__(self, number: int, args: tuple[Any, ...], **kw: Any) -> int:
        f = abi.ffi()
        assert number == abi.NR_SSISYS
        cmd, ptr, length = args
        name = header.ssisys_commands()[cmd]
        data = bytes(f.buffer(f.cast("char *", ptr), length)) if length else b""
        self.calls.append((name, data, kw))
        if name in self.fail:
            raise errors.from_errno(
                self.fail[name], kw["call"], syscall="ssisys", module=kw.get("module"),
                hints=kw.get("hints"),
            )  # fmt: skip

        def put(out: bytes) -> None:
            assert len(out) <= length
            f.memmove(ptr, out, len(out))

        if name == "SSISYS_NODE_NUM":
            return 5
        if name == "SSISYS_CLUSTER_MEMBERSHIP":
            put(self.membership)
        elif name == "SSISYS_CLUSTERNODE_INFO":
            (node,) = struct.unpack_from("<I", data)
            put(node_info_bytes(node, 2, f"169.254.77.{node}", 1_700_000_000 * 10**9))
        elif name == "SSISYS_CLUSTER_NAME":
            put(self.name + b"\0")
        elif name == "SSISYS_ICS_TEST":
            fields = list(struct.unpack(ICS_TEST_FMT, data))
            fields[5], fields[6], fields[8] = 0, 0, 1_000_000
            put(struct.pack(ICS_TEST_FMT, *fields))
        return 0


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    k = FakeKernel()
    monkeypatch.setattr(binding, "_call", k)
    return k


def test_set_key_passes_the_bytes(kernel: FakeKernel) -> None:
    key = bytes(range(32))
    abi.cluster_set_key(key)
    abi.cluster_set_key(bytearray(key[:16]))
    assert [(n, d) for n, d, _ in kernel.calls] == [
        ("SSISYS_ICS_SET_KEY", key),
        ("SSISYS_ICS_SET_KEY", key[:16]),
    ]
    assert kernel.calls[0][2]["module"] == "ics"


@pytest.mark.parametrize("n", [0, 15, 65])
def test_set_key_length_checked_and_never_shown(kernel: FakeKernel, n: int) -> None:
    key = b"S" * n
    with pytest.raises(ValueError, match=rf"16\.\.64 bytes, got {n}$") as ei:
        abi.cluster_set_key(key)
    assert "SSS" not in str(ei.value)
    assert kernel.calls == []
    with pytest.raises(TypeError, match="key must be bytes"):
        abi.cluster_set_key("x" * 32)  # type: ignore[arg-type]


def test_set_table_sends_the_struct(kernel: FakeKernel) -> None:
    table = {1: "169.254.77.1", 2: "169.254.77.2", 3: "169.254.77.3"}
    abi.cluster_set_table(table)
    ((name, data, kw),) = kernel.calls
    assert name == "SSISYS_CLUSTER_SET_TABLE" and data == C.encode_table(table)
    assert "this node's own number must be in it" in kw["hints"][errno.EINVAL][1]


def test_set_table_einval_message(kernel: FakeKernel) -> None:
    kernel.fail["SSISYS_CLUSTER_SET_TABLE"] = errno.EINVAL
    with pytest.raises(abi.SSIInvalidArgument) as ei:
        abi.cluster_set_table({1: "10.0.0.1"})
    assert str(ei.value).startswith(
        "ssisys(SSISYS_CLUSTER_SET_TABLE): the kernel refused the cluster table (EINVAL): "
    )
    assert ei.value.errno == errno.EINVAL


def test_membership_uses_the_ics_table(
    kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kernel.membership = membership_bytes({1: 2, 2: 2}, me=2)
    m = abi.cluster_membership()
    assert m.states == {1: "UP", 2: "UP"}
    peers = tmp_path / "peers"
    peers.write_text(
        "1 169.254.77.1 prio=1 bulk=0\n2 169.254.77.2 prio=0 bulk=0\n3 169.254.77.3 prio=0 bulk=0\n"
    )
    monkeypatch.setattr(C, "ICS_PEERS", peers)
    m = abi.cluster_membership()
    assert m.states == {1: "UP", 2: "UP", 3: "NEVERUP"}
    assert (m.transition, m.master, m.self, m.quorum) == (7, 1, 2, True)


def test_node_info_and_avail(kernel: FakeKernel) -> None:
    info = abi.clusternode_info(3)
    assert (info.node, info.state, info.addr) == (3, "UP", "169.254.77.3")
    assert info.since == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    name, data, kw = kernel.calls[0]
    assert name == "SSISYS_CLUSTERNODE_INFO" and struct.unpack_from("<I", data) == (3,)
    assert kw["node"] == 3
    assert abi.clusternode_avail(1) is True
    assert abi.clusternode_avail(3) is False  # DOWN
    assert abi.clusternode_avail(9) is False  # not in the cluster
    with pytest.raises(ValueError, match="node must be in"):
        abi.clusternode_avail(0)
    with pytest.raises(ValueError, match="node must be in"):
        abi.clusternode_info(64)


def test_cluster_name(kernel: FakeKernel) -> None:
    assert abi.cluster_name() == "lab"
    kernel.name = b"x" * 31
    assert abi.cluster_name() == "x" * 31
    abi.cluster_set_name("prod-1")
    assert kernel.calls[-1][:2] == ("SSISYS_CLUSTER_SET_NAME", b"prod-1")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("", r"1\.\.31 bytes, got 0"),
        ("x" * 32, "got 32"),
        ("a\tb", "other than printable ASCII"),
        ("caf\u00e9", "other than printable ASCII"),
    ],
)
def test_cluster_set_name_rejects(kernel: FakeKernel, name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        abi.cluster_set_name(name)
    assert kernel.calls == []


def test_ics_test(kernel: FakeKernel) -> None:
    r = abi.ics_test(3, "echo", 100, size=512, timeout_ms=200)
    assert (r.node, r.op, r.count, r.size, r.errors, r.elapsed_ns) == (
        3,
        "echo",
        100,
        512,
        0,
        10**6,
    )
    assert [c[0] for c in kernel.calls] == ["SSISYS_NODE_NUM", "SSISYS_ICS_TEST"]
    _, data, _ = kernel.calls[1]
    assert struct.unpack(ICS_TEST_FMT, data)[:8] == (
        3,
        C.ICS_TEST_OPS["echo"],
        100,
        512,
        200,
        0,
        0,
        0,
    )
    assert abi.ics_test(2, C.ICS_TEST_OPS["ping"], 1).op == "ping"


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((2, "bogus", 1), ValueError, "unknown ICS test op 'bogus'"),
        ((2, 99, 1), ValueError, "unknown ICS test op 99"),
        ((2, None, 1), TypeError, "op must be"),
        ((2, "null", 0), ValueError, r"count must be in 1\.\.1000000"),
        ((2, "null", 1, 8), ValueError, "size applies to echo and echo_pages only"),
        ((2, "echo", 1, 65537), ValueError, r"size must be in 0\.\.65536"),
        ((2, "null", 1, 0, 0), ValueError, r"timeout_ms must be in 1\.\.60000"),
        ((0, "null", 1), ValueError, "node must be in"),
        ((5, "null", 1), ValueError, "node 5 is this node: test against another node"),
    ],
)
def test_ics_test_rejects(
    kernel: FakeKernel, args: tuple[Any, ...], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        abi.ics_test(*args)
    assert "SSISYS_ICS_TEST" not in [c[0] for c in kernel.calls]


# --------------------------------------------------------------------------- ENOSYS wording


def _host_lacks_ssi() -> bool:
    try:
        abi.raw_syscall(abi.NR_SSISYS, abi.SSISYS_ABI_VERSION, 0, 0)
    except abi.SSINotAvailable:
        return True
    return False


needs_enosys = pytest.mark.skipif(not _host_lacks_ssi(), reason="this kernel serves ssisys")


@needs_enosys
def test_enosys_names_the_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No SSI module at all.
    with pytest.raises(abi.SSINotAvailable) as ei:
        abi.cluster_membership()
    assert str(ei.value).startswith(
        "ssisys(SSISYS_CLUSTER_MEMBERSHIP): no SSI module serves this call "
        "(it needs the clms module) (ENOSYS): load the modules with `ssictl modules load`"
    )
    # ssi_core and ics loaded, clms not.
    sysfs = tmp_path / "ssi"
    sysfs.mkdir()
    proc = tmp_path / "modules"
    proc.write_text("ics 16384 0 - Live 0x0\nssi_core 16384 1 ics, Live 0x0\n")
    monkeypatch.setattr(errors, "SSI_SYSFS", sysfs)
    monkeypatch.setattr(errors, "PROC_MODULES", proc)
    with pytest.raises(abi.SSINotAvailable) as ei:
        abi.clusternode_avail(2)
    assert str(ei.value) == (
        "ssisys(SSISYS_CLUSTER_MEMBERSHIP): the clms module is not loaded (ENOSYS): "
        "load it with `ssictl modules load clms` (`ssictl modules status` shows what is loaded)"
    )
    with pytest.raises(abi.SSINotAvailable, match="the ics_test module is not loaded"):
        abi.ics_test(2, "null", 1)
    # Loaded, yet the call is not served: the ABI of the running module differs.
    proc.write_text("clms 16384 0 - Live 0x0\n")
    with pytest.raises(abi.SSINotAvailable, match="the clms module is loaded but does not serve"):
        abi.cluster_name()
    with pytest.raises(abi.SSINotAvailable, match="the ics module is not loaded"):
        abi.cluster_set_key(b"k" * 16)


def test_node_info_address_from_the_ics_table(
    kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """clms.ko may leave addr 0 (it has no export of ICS's table): ics.ko's peers fill it."""
    real = kernel.__call__

    def no_addr(number: int, args: tuple[Any, ...], **kw: Any) -> int:
        ret = real(number, args, **kw)
        f = abi.ffi()
        f.cast("struct ssi_node_info *", args[1]).addr = 0
        return ret

    monkeypatch.setattr(binding, "_call", no_addr)
    assert abi.clusternode_info(2).addr == ""
    peers = tmp_path / "peers"
    peers.write_text("1 10.0.0.1 prio=0 bulk=0\n2 10.0.0.2 prio=1 bulk=1\n")
    monkeypatch.setattr(C, "ICS_PEERS", peers)
    assert abi.clusternode_info(2).addr == "10.0.0.2"


def test_node_info_esrch_says_not_in_the_cluster(kernel: FakeKernel) -> None:
    kernel.fail["SSISYS_CLUSTERNODE_INFO"] = errno.ESRCH
    with pytest.raises(abi.SSIError) as ei:
        abi.clusternode_info(9)
    assert str(ei.value).startswith(
        "ssisys(SSISYS_CLUSTERNODE_INFO): node 9 is not a node of this cluster (ESRCH): "
    )
