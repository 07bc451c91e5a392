"""libcluster-style membership and ICS calls (``SSISYS_*`` commands of ics.ko and clms.ko).

::

    import abi
    abi.cluster_set_key(key)                       # ics: the cluster key, 16..64 bytes
    abi.cluster_set_table({1: "169.254.77.1", ...})  # ics: node number -> IPv4 address
    m = abi.cluster_membership()                   # clms: Membership
    m.states                                       # {1: "UP", 2: "UP", 3: "DOWN"}
    abi.clusternode_info(2)                        # clms: NodeInfo
    abi.clusternode_avail(2)                       # clms: True if node 2 is UP
    abi.cluster_name(); abi.cluster_set_name("c1")  # clms
    abi.ics_test(2, "null", 1000)                  # ics_test: IcsTestResult

Arguments are checked here first (``ValueError``/``TypeError`` saying what is wrong);
the kernel checks them again, and its refusals raise the :class:`~abi.errors.SSIError`
subclass for the errno, with a message naming the module to load when none serves
the call. Decoding of the kernel's structs is separate (:func:`decode_membership`,
:func:`decode_node_info`, :func:`decode_ics_test`) so it can be tested on raw bytes.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from abi import binding, header
from abi.address import ipv4_to_u32 as ipv4_to_u32
from abi.address import parse_ipv4 as parse_ipv4
from abi.address import u32_to_ipv4 as u32_to_ipv4
from abi.ics_peers import ICS_PEERS as ICS_PEERS
from abi.ics_peers import peer_table

SSI_MAX_NODES = header.require("SSI_MAX_NODES")
SSI_NAME_MAX = header.require("SSI_NAME_MAX")
SSI_KEY_MIN = header.require("SSI_KEY_MIN")
SSI_KEY_MAX = header.require("SSI_KEY_MAX")
SSISYS_ICS_SET_KEY = header.require("SSISYS_ICS_SET_KEY")
SSISYS_CLUSTER_SET_TABLE = header.require("SSISYS_CLUSTER_SET_TABLE")
SSISYS_CLUSTER_MEMBERSHIP = header.require("SSISYS_CLUSTER_MEMBERSHIP")
SSISYS_CLUSTERNODE_INFO = header.require("SSISYS_CLUSTERNODE_INFO")
SSISYS_CLUSTER_NAME = header.require("SSISYS_CLUSTER_NAME")
SSISYS_CLUSTER_SET_NAME = header.require("SSISYS_CLUSTER_SET_NAME")
SSISYS_ICS_TEST = header.require("SSISYS_ICS_TEST")

SSI_NODEINFO_SIZE_V1 = header.require("SSI_NODEINFO_SIZE_V1")
SSI_NODEINFO_LOAD = header.require("SSI_NODEINFO_LOAD")

SSI_NODE_NEVERUP = header.require("SSI_NODE_NEVERUP")
SSI_NODE_UP = header.require("SSI_NODE_UP")

# SSI_NODE_* value -> name without the prefix ("UP"), from the header.
NODE_STATES: dict[int, str] = {
    v: k[len("SSI_NODE_") :] for k, v in header.constants().items() if k.startswith("SSI_NODE_")
}
# SSI_ICS_TEST_* value -> lower-case op name ("null", "echo", "ping", "echo_pages").
ICS_TEST_OPS: dict[str, int] = {
    k[len("SSI_ICS_TEST_") :].lower(): v
    for k, v in header.constants().items()
    if k.startswith("SSI_ICS_TEST_")
}
ICS_TEST_MAX_COUNT = 1_000_000
ICS_TEST_MAX_SIZE = 65536
ICS_TEST_MAX_TIMEOUT_MS = 60_000


def state_name(value: int) -> str:
    """``SSI_NODE_UP`` -> ``"UP"``; an unknown value -> ``"UNKNOWN(9)"``."""
    return NODE_STATES.get(value, f"UNKNOWN({value})")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Membership:
    """This node's view of the cluster (``struct ssi_membership``).

    *states* maps each configured node to its state name (``"UP"``...); a node of
    the table that never came up is ``"NEVERUP"``. *quorum* is true while this node's
    side holds a majority of the cluster table."""

    transition: int
    master: int
    self: int
    quorum: bool
    nr_configured: int
    states: dict[int, str] = field(default_factory=dict)

    def up(self) -> list[int]:
        """The nodes that are UP, in order."""
        return [n for n, s in sorted(self.states.items()) if s == "UP"]

    def to_json(self) -> dict[str, Any]:
        return {
            "transition": self.transition,
            "master": self.master,
            "self": self.self,
            "quorum": self.quorum,
            "nr_configured": self.nr_configured,
            "states": {str(n): s for n, s in sorted(self.states.items())},
        }


@dataclass(frozen=True)
class NodeInfo:
    """One node as CLMS sees it (``struct ssi_node_info``).

    *load* is the 1/5/15-minute load average; *since* the (UTC) time of the last
    state change, ``None`` if the kernel gave none; *transition* the membership
    transition that set the current state.

    Load-leveling figures (``has_load``: the kernel filled them, i.e. it has them
    and heard the node recently; a node not heard has *cpus* 0): *nr_running*, the
    runnable tasks over all the node's CPUs (its run queue, sampled once per
    heartbeat), *mem_available_kb* (MemAvailable), and *figures_age_ms*, how old
    the heartbeat that carried them is (0 for this node: sampled at the call)."""

    node: int
    state: str
    addr: str
    cpus: int
    mem_total_kb: int
    mem_free_kb: int
    load: tuple[float, float, float]
    incarnation: int
    since: datetime | None
    transition: int
    nr_running: int = 0
    mem_available_kb: int = 0
    figures_age_ms: int = 0
    has_load: bool = False

    def runq_per_cpu(self) -> float | None:
        """Runnable tasks per online CPU (``None`` without figures)."""
        if not self.has_load or self.cpus <= 0:
            return None
        return self.nr_running / self.cpus

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "state": self.state,
            "addr": self.addr,
            "cpus": self.cpus,
            "mem_total_kb": self.mem_total_kb,
            "mem_free_kb": self.mem_free_kb,
            "load": list(self.load),
            "incarnation": self.incarnation,
            "since": self.since.isoformat() if self.since else None,
            "since_epoch": self.since.timestamp() if self.since else None,
            "transition": self.transition,
            "has_load": self.has_load,
            "nr_running": self.nr_running,
            "mem_available_kb": self.mem_available_kb,
            "figures_age_ms": self.figures_age_ms,
        }


@dataclass(frozen=True)
class IcsTestResult:
    """Outcome of an :func:`ics_test` run: *last_error* is a negative errno (0: none)."""

    node: int
    op: str
    count: int
    size: int
    elapsed_ns: int
    errors: int
    last_error: int

    @property
    def last_errno_name(self) -> str:
        return (
            errno.errorcode.get(-self.last_error, str(self.last_error)) if self.last_error else ""
        )

    @property
    def per_call_us(self) -> float:
        return self.elapsed_ns / self.count / 1000.0 if self.count else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "op": self.op,
            "count": self.count,
            "size": self.size,
            "elapsed_ns": self.elapsed_ns,
            "per_call_us": round(self.per_call_us, 3),
            "errors": self.errors,
            "last_error": self.last_error,
            "last_error_name": self.last_errno_name,
        }


# --------------------------------------------------------------------------- decoding


def _struct_from(ctype: str, raw: bytes | bytearray | memoryview) -> Any:
    """A fresh ``struct X *`` holding *raw*, which must be exactly sizeof(struct X)."""
    f = binding.ffi()
    p = f.new(ctype + " *")
    size = f.sizeof(ctype)
    data = bytes(raw)
    if len(data) != size:
        raise ValueError(f"{ctype} is {size} bytes, got {len(data)}")
    f.memmove(p, data, size)
    return p


def _raw(p: Any) -> bytes:
    f = binding.ffi()
    return bytes(f.buffer(p))


def ics_peers() -> dict[int, str] | None:
    """The cluster table as ics.ko holds it (node -> address), or ``None`` if unknown."""
    return peer_table(ICS_PEERS)


def configured_nodes() -> set[int] | None:
    """The nodes of the cluster table as ics.ko holds it, or ``None`` if unknown."""
    peers = ics_peers()
    return None if peers is None else set(peers)


def decode_membership(
    raw: bytes | bytearray | memoryview, configured: Iterable[int] | None = None
) -> Membership:
    """``struct ssi_membership`` bytes -> :class:`Membership`.

    *states* lists the *configured* nodes (the cluster table; see
    :func:`configured_nodes`), plus any node whose state is not NEVERUP, plus this
    node. Without *configured*, nodes still NEVERUP are not listed."""
    p = _struct_from("struct ssi_membership", raw)
    me = int(p.self)
    wanted = set(configured or ())
    states: dict[int, str] = {}
    for n in range(1, min(SSI_MAX_NODES, len(p.state) - 1) + 1):
        v = int(p.state[n])
        if v != SSI_NODE_NEVERUP or n in wanted or n == me:
            states[n] = state_name(v)
    return Membership(
        transition=int(p.transition),
        master=int(p.master),
        self=me,
        quorum=bool(p.quorum),
        nr_configured=int(p.nr_configured),
        states=states,
    )


def decode_node_info(raw: bytes | bytearray | memoryview) -> NodeInfo:
    """``struct ssi_node_info`` bytes -> :class:`NodeInfo`.

    *raw* may also be the ``SSI_NODEINFO_SIZE_V1`` bytes of the struct before the
    load-leveling figures (those are then absent: ``has_load`` false)."""
    data = bytes(raw)
    if len(data) == SSI_NODEINFO_SIZE_V1:
        data += bytes(binding.ffi().sizeof("struct ssi_node_info") - len(data))
    p = _struct_from("struct ssi_node_info", data)
    since_ns = int(p.since_ns)
    since = datetime.fromtimestamp(since_ns / 1e9, tz=UTC) if since_ns else None
    return NodeInfo(
        node=int(p.node),
        state=state_name(int(p.state)),
        addr=u32_to_ipv4(int(p.addr)),
        cpus=int(p.cpus),
        mem_total_kb=int(p.mem_total_kb),
        mem_free_kb=int(p.mem_free_kb),
        load=(p.load[0] / 100.0, p.load[1] / 100.0, p.load[2] / 100.0),
        incarnation=int(p.incarnation),
        since=since,
        transition=int(p.transition),
        nr_running=int(p.nr_running),
        mem_available_kb=int(p.mem_available_kb),
        figures_age_ms=int(p.figures_age_ms),
        has_load=bool(int(p.flags) & SSI_NODEINFO_LOAD) and int(p.cpus) > 0,
    )


def decode_ics_test(raw: bytes | bytearray | memoryview) -> IcsTestResult:
    """``struct ssi_ics_test`` bytes (after the call) -> :class:`IcsTestResult`."""
    p = _struct_from("struct ssi_ics_test", raw)
    ops = {v: k for k, v in ICS_TEST_OPS.items()}
    return IcsTestResult(
        node=int(p.node),
        op=ops.get(int(p.op), str(int(p.op))),
        count=int(p.count),
        size=int(p.size),
        elapsed_ns=int(p.elapsed_ns),
        errors=int(p.errors),
        last_error=int(p.last_error),
    )


def encode_table(nodes: Mapping[int, str]) -> bytes:
    """*nodes* (node -> IPv4) as ``struct ssi_cluster_table`` bytes, nodes in order.

    Raises ``ValueError``/``TypeError`` for a bad node number or address, an empty
    or oversized table, or two nodes with one address."""
    if not isinstance(nodes, Mapping):
        raise TypeError(f"nodes must be a mapping node -> address, not {type(nodes).__name__}")
    if not nodes:
        raise ValueError("the cluster table is empty: give at least this node")
    if len(nodes) > SSI_MAX_NODES:
        raise ValueError(f"the cluster table has {len(nodes)} nodes; at most {SSI_MAX_NODES}")
    f = binding.ffi()
    p = f.new("struct ssi_cluster_table *")
    capacity = len(p.nodes)
    if len(nodes) > capacity:
        raise ValueError(f"the cluster table has {len(nodes)} nodes; at most {capacity}")
    owner: dict[bytes, int] = {}
    for i, node in enumerate(sorted(nodes)):
        binding._check_node(node)
        addr = nodes[node]
        if not isinstance(addr, str):
            raise TypeError(f"address of node {node} must be a str, not {type(addr).__name__}")
        try:
            packed = parse_ipv4(addr)
        except ValueError as e:
            raise ValueError(f"node {node}: {e}") from None
        if packed in owner:
            raise ValueError(f"nodes {owner[packed]} and {node} have the same address {addr}")
        owner[packed] = node
        p.nodes[i].node = node
        p.nodes[i].addr = int.from_bytes(packed, sys.byteorder)
    p.nr_nodes = len(nodes)
    p.reserved = 0
    return _raw(p)


# --------------------------------------------------------------------------- calls


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes | bytearray | memoryview):
        raise TypeError(f"key must be bytes, not {type(key).__name__}")
    data = bytes(key)
    if not SSI_KEY_MIN <= len(data) <= SSI_KEY_MAX:
        # Never show the key itself, only its length.
        raise ValueError(
            f"the cluster key must be {SSI_KEY_MIN}..{SSI_KEY_MAX} bytes, got {len(data)}"
        )
    return data


def cluster_set_key(key: bytes | bytearray | memoryview) -> None:
    """Give ics.ko this node's cluster key (16..64 bytes; needs CAP_SYS_ADMIN).

    Every node needs the same key; peers prove they hold it (HMAC challenge) before
    any message of theirs is accepted."""
    data = _check_key(key)
    binding.ssisys(
        SSISYS_ICS_SET_KEY,
        data,
        hints={
            errno.EINVAL: (
                f"the kernel refused a {len(data)}-byte key",
                f"the key must be {SSI_KEY_MIN}..{SSI_KEY_MAX} bytes; check that ics.ko "
                "and abi/ssi_abi.h agree (rebuild the modules)",
            )
        },
    )


def cluster_set_table(nodes: Mapping[int, str]) -> None:
    """Give ics.ko the cluster table: node number -> IPv4 address (needs CAP_SYS_ADMIN).

    The table must include this node. Nodes left out of a new table are dropped."""
    data = encode_table(nodes)
    binding.ssisys(
        SSISYS_CLUSTER_SET_TABLE,
        data,
        hints={
            errno.EINVAL: (
                "the kernel refused the cluster table",
                "every node 1..63 at most once with a non-zero address, and this node's "
                "own number must be in it (`ssictl clusternode-num` prints it)",
            )
        },
    )


def cluster_membership() -> Membership:
    """This node's view of the membership (clms.ko)."""
    f = binding.ffi()
    p = f.new("struct ssi_membership *")
    binding.ssisys(SSISYS_CLUSTER_MEMBERSHIP, p)
    return decode_membership(_raw(p), configured_nodes())


def clusternode_info(node: int) -> NodeInfo:
    """What CLMS knows about *node* (clms.ko)."""
    binding._check_node(node)
    f = binding.ffi()
    p = f.new("struct ssi_node_info *")
    p.node = node
    not_ours = (
        f"node {node} is not a node of this cluster",
        "pick a node of the cluster table (`ssictl cluster-membership` lists them)",
    )
    binding.ssisys(
        SSISYS_CLUSTERNODE_INFO,
        p,
        node=node,
        hints={errno.EINVAL: not_ours, errno.ESRCH: not_ours},
    )
    info = decode_node_info(_raw(p))
    if not info.addr:  # clms.ko may leave the address to ics.ko's table
        addr = (ics_peers() or {}).get(node, "")
        if addr:
            info = replace(info, addr=addr)
    return info


def clusternode_avail(node: int) -> bool:
    """Is *node* UP in this node's view? (``False`` for a node not in the table.)"""
    binding._check_node(node)
    return cluster_membership().states.get(node) == "UP"


def cluster_name() -> str:
    """The cluster's name (clms.ko); ``""`` if none was set."""
    f = binding.ffi()
    buf = f.new("char[]", SSI_NAME_MAX)
    binding.ssisys(SSISYS_CLUSTER_NAME, buf)
    raw: bytes = f.string(buf, SSI_NAME_MAX)
    return raw.decode("utf-8", "replace")


def check_name(name: object) -> bytes:
    """The UTF-8 bytes of a valid cluster name; ``ValueError``/``TypeError`` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")
    data = name.encode("utf-8")
    if not 1 <= len(data) <= SSI_NAME_MAX - 1:
        raise ValueError(
            f"the cluster name must be 1..{SSI_NAME_MAX - 1} bytes, got {len(data)}: {name!r}"
        )
    if not all(0x20 <= b <= 0x7E for b in data):
        raise ValueError(f"the cluster name {name!r} has characters other than printable ASCII")
    return data


def cluster_set_name(name: str) -> None:
    """Name the cluster (clms.ko; 1..SSI_NAME_MAX-1 printable ASCII characters)."""
    data = check_name(name)
    binding.ssisys(
        SSISYS_CLUSTER_SET_NAME,
        data,
        hints={
            errno.EINVAL: (
                f"the kernel refused the cluster name {name!r}",
                f"use 1..{SSI_NAME_MAX - 1} printable ASCII characters",
            )
        },
    )


def _check_op(op: object) -> tuple[int, str]:
    names = {v: k for k, v in ICS_TEST_OPS.items()}
    if isinstance(op, str):
        if op.lower() not in ICS_TEST_OPS:
            raise ValueError(f"unknown ICS test op {op!r}: pick {', '.join(ICS_TEST_OPS)}")
        return ICS_TEST_OPS[op.lower()], op.lower()
    if isinstance(op, bool) or not isinstance(op, int):
        raise TypeError(f"op must be a str or int, not {type(op).__name__}")
    if op not in names:
        raise ValueError(f"unknown ICS test op {op}: pick {', '.join(ICS_TEST_OPS)}")
    return op, names[op]


def ics_test(
    node: int, op: str | int, count: int, size: int = 0, timeout_ms: int = 1000
) -> IcsTestResult:
    """Run *count* back-to-back ICS test calls of *op* (``"null"``, ``"echo"``,
    ``"ping"``, ``"echo_pages"``) against *node* (another node), *size* echo bytes each
    way (for echo_pages a multiple of 4096: whole pages), each call waiting up to
    *timeout_ms*. Needs ics_test.ko on both nodes and CAP_SYS_ADMIN."""
    binding._check_node(node)
    op_num, op_name = _check_op(op)
    binding._check_int("count", count, 1, ICS_TEST_MAX_COUNT)
    binding._check_int("size", size, 0, ICS_TEST_MAX_SIZE)
    binding._check_int("timeout_ms", timeout_ms, 1, ICS_TEST_MAX_TIMEOUT_MS)
    if size and op_name not in ("echo", "echo_pages"):
        raise ValueError(f"size applies to echo and echo_pages only, not {op_name}")
    if op_name == "echo_pages" and size % 4096:
        raise ValueError(f"echo_pages sends whole pages: size {size} is not a multiple of 4096")
    try:
        me = binding.clusternode_num()
    except OSError:
        me = 0  # the call below reports what is missing
    if node == me:
        raise ValueError(f"node {node} is this node: test against another node")
    f = binding.ffi()
    p = f.new("struct ssi_ics_test *")
    p.node, p.op, p.count, p.size, p.timeout_ms = node, op_num, count, size, timeout_ms
    binding.ssisys(
        SSISYS_ICS_TEST,
        p,
        node=node,
        hints={
            errno.EINVAL: (
                "the kernel refused the test",
                f"node {node} must be another node than this one; count 1..{ICS_TEST_MAX_COUNT}, "
                f"size 0..{ICS_TEST_MAX_SIZE} (the module may allow less), "
                f"timeout 1..{ICS_TEST_MAX_TIMEOUT_MS} ms",
            )
        },
    )
    return decode_ics_test(_raw(p))
