"""Clusterwide processes (vproc.ko): where a PID runs, the clusterwide process list,
and localview (a per-process flag, inherited by children, that confines /proc, kill
and the other process calls to this node).

::

    from abi import vproc
    vproc.where(196634)            # -> 3, the node the process runs on
    procs, failed = vproc.process_list()
    vproc.set_localview(True)      # this process and its later children: this node only

cffi is loaded on the first call (through :mod:`abi.binding`).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from abi import binding, header

SSISYS_VPROC_WHERE = header.require("SSISYS_VPROC_WHERE")
SSISYS_VPROC_LIST = header.require("SSISYS_VPROC_LIST")
SSISYS_VPROC_LOCALVIEW = header.require("SSISYS_VPROC_LOCALVIEW")
SSI_VPROC_LIST_LOCAL = header.require("SSI_VPROC_LIST_LOCAL")
SSI_VPROC_LOCALVIEW_QUERY = header.require("SSI_VPROC_LOCALVIEW_QUERY")
PID_MAX = (binding.SSI_MAX_NODES + 1) << binding.SSI_PID_NODE_SHIFT

_NOT_LOADED_HINT = "load the vproc module (`ssictl modules load vproc`)"


@dataclass(frozen=True)
class Proc:
    """One process of the clusterwide list (``struct ssi_vproc_proc``)."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    uid: int
    euid: int
    node: int
    state: str
    start_ns: int
    comm: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "pgid": self.pgid,
            "sid": self.sid,
            "uid": self.uid,
            "euid": self.euid,
            "node": self.node,
            "state": self.state,
            "start_ns": self.start_ns,
            "comm": self.comm,
        }


def check_pid(pid: object) -> int:
    """A PID the kernel could know: 1..PID_MAX-1 (``TypeError``/``ValueError``)."""
    return binding._check_int("pid", pid, 1, PID_MAX - 1)


def origin(pid: int) -> int:
    """The origin node encoded in a clusterwide PID (0 for a node-local one)."""
    return check_pid(pid) >> binding.SSI_PID_NODE_SHIFT


def where(pid: int) -> int:
    """The node *pid* runs on; :class:`abi.errors.SSIError` (ESRCH) if none."""
    check_pid(pid)
    f = binding.ffi()
    p = f.new("struct ssi_vproc_where *")
    p.pid = pid
    binding.ssisys(
        SSISYS_VPROC_WHERE,
        p,
        hints={
            errno.ESRCH: (f"no process {pid} in the cluster", "check the PID (`ssictl ps`)"),
            errno.ENOSYS: ("vproc.ko is not loaded", _NOT_LOADED_HINT),
        },
    )
    return int(p.node)


def _decode(entries: Iterable[Any]) -> list[Proc]:
    f = binding.ffi()
    out: list[Proc] = []
    for e in entries:
        state = chr(e.state) if 32 < e.state < 127 else "?"
        comm = f.string(e.comm, 16).decode("utf-8", "replace")
        out.append(
            Proc(
                pid=int(e.pid),
                ppid=int(e.ppid),
                pgid=int(e.pgid),
                sid=int(e.sid),
                uid=int(e.uid),
                euid=int(e.euid),
                node=int(e.node),
                state=state,
                start_ns=int(e.start_ns),
                comm=comm,
            )
        )
    return out


def decode_procs(raw: bytes | bytearray | memoryview) -> list[Proc]:
    """``struct ssi_vproc_proc[]`` bytes -> :class:`Proc` list (length must be whole)."""
    f = binding.ffi()
    size = f.sizeof("struct ssi_vproc_proc")
    data = bytes(raw)
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {size}-byte entries")
    n = len(data) // size
    arr = f.new("struct ssi_vproc_proc[]", max(n, 1))
    f.memmove(arr, data, len(data))
    return _decode(arr[i] for i in range(n))


def nodes_of(mask: int) -> list[int]:
    """Bit n set -> node n, ascending."""
    return [n for n in range(1, binding.SSI_MAX_NODES + 1) if mask >> n & 1]


def process_list(local_only: bool = False) -> tuple[list[Proc], list[int]]:
    """User processes (PID >= 65536) of every UP node (or this node only), sorted by
    PID, and the nodes that did not answer."""
    f = binding.ffi()
    capacity = 1024
    while True:
        arr = f.new("struct ssi_vproc_proc[]", capacity)
        req = f.new("struct ssi_vproc_list *")
        req.procs = int(f.cast("uintptr_t", arr))
        req.capacity = capacity
        req.flags = SSI_VPROC_LIST_LOCAL if local_only else 0
        binding.ssisys(
            SSISYS_VPROC_LIST,
            req,
            hints={errno.ENOSYS: ("vproc.ko is not loaded", _NOT_LOADED_HINT)},
        )
        if req.total <= capacity:
            break
        capacity = int(req.total) + 256  # more appeared meanwhile: ask again
    procs = _decode(arr[i] for i in range(int(req.count)))
    procs.sort(key=lambda p: p.pid)
    return procs, nodes_of(int(req.failed_nodes))


def _localview(value: int) -> bool:
    f = binding.ffi()
    p = f.new("struct ssi_vproc_localview *")
    p.set = value
    was = binding.ssisys(
        SSISYS_VPROC_LOCALVIEW,
        p,
        hints={errno.ENOSYS: ("vproc.ko is not loaded", _NOT_LOADED_HINT)},
    )
    return bool(was)


def set_localview(on: bool) -> bool:
    """Confine this process (and children it forks from now on) to this node's
    processes, or lift it; returns the previous state."""
    return _localview(1 if on else 0)


def localview() -> bool:
    """Is this process in localview?"""
    return _localview(SSI_VPROC_LOCALVIEW_QUERY)
