"""cffi (ABI mode) binding of the four SSI system calls.

No compiler is needed at run time: ``syscall(2)`` is called through libc, with the
syscall numbers, ``SSISYS_*`` commands and structs read from ``abi/ssi_abi.h``.
cffi itself is imported on the first call, not at import time.

The public functions validate their arguments (``ValueError``/``TypeError``) before
entering the kernel; :func:`raw_syscall` does not, so tests can hand the kernel bad
arguments on purpose. A failed call raises an :class:`abi.errors.SSIError` subclass
(``SSINotAvailable`` for ``ENOSYS``...).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from abi import header
from abi.errors import from_errno

if TYPE_CHECKING:
    import cffi

# Everything below comes from the header; none of the values is repeated here.
SSI_ABI_VERSION = header.require("SSI_ABI_VERSION")
SSI_MAX_NODES = header.require("SSI_MAX_NODES")
SSI_PID_NODE_SHIFT = header.require("SSI_PID_NODE_SHIFT")
SSI_PID_LOCAL_MASK = header.require("SSI_PID_LOCAL_MASK")
NR_SSI_REXEC = header.require("__NR_ssi_rexec")
NR_SSI_RFORK = header.require("__NR_ssi_rfork")
NR_SSI_MIGRATE = header.require("__NR_ssi_migrate")
NR_SSISYS = header.require("__NR_ssisys")
SSISYS_ABI_VERSION = header.require("SSISYS_ABI_VERSION")
SSISYS_NODE_NUM = header.require("SSISYS_NODE_NUM")
SSISYS_MAX_NODES = header.require("SSISYS_MAX_NODES")
SSISYS_NR_CMDS = header.require("SSISYS_NR_CMDS")

# The module that serves each ssisys command (named in "not loaded" messages).
SSISYS_MODULES: dict[str, str] = {
    "SSISYS_ABI_VERSION": "ssi_core",
    "SSISYS_NODE_NUM": "ssi_core",
    "SSISYS_MAX_NODES": "ssi_core",
    "SSISYS_ICS_SET_KEY": "ics",
    "SSISYS_CLUSTER_SET_TABLE": "ics",
    "SSISYS_CLUSTER_MEMBERSHIP": "clms",
    "SSISYS_CLUSTERNODE_INFO": "clms",
    "SSISYS_CLUSTER_NAME": "clms",
    "SSISYS_CLUSTER_SET_NAME": "clms",
    "SSISYS_ICS_TEST": "ics_test",
    "SSISYS_VPROC_WHERE": "vproc",
    "SSISYS_VPROC_LIST": "vproc",
    "SSISYS_VPROC_LOCALVIEW": "vproc",
}

# What EINVAL means for each command, for callers of the bare ssisys() (the typed
# wrappers in abi.cluster pass more precise hints).
SSISYS_EINVAL: dict[str, tuple[str, str]] = {
    "SSISYS_ICS_SET_KEY": (
        "the kernel refused the cluster key",
        f"the key must be {header.require('SSI_KEY_MIN')}..{header.require('SSI_KEY_MAX')} bytes",
    ),
    "SSISYS_CLUSTER_SET_TABLE": (
        "the kernel refused the cluster table",
        "pass a whole struct ssi_cluster_table with reserved 0, every node "
        f"1..{SSI_MAX_NODES} at most "
        "once with a non-zero address, and this node's own number in it",
    ),
    "SSISYS_CLUSTERNODE_INFO": (
        "the kernel refused the node info request",
        "pass a whole struct ssi_node_info whose node is a node of the cluster table",
    ),
    "SSISYS_CLUSTER_SET_NAME": (
        "the kernel refused the cluster name",
        f"the name is 1..{header.require('SSI_NAME_MAX') - 1} bytes",
    ),
    "SSISYS_ICS_TEST": (
        "the kernel refused the ICS test",
        "pass a whole struct ssi_ics_test: another node, a known op, count 1..1000000, "
        "size 0..65536, timeout_ms 1..60000, reserved 0",
    ),
}

Buffer = bytes | bytearray | memoryview
StrOrBytes = str | bytes | os.PathLike[str] | os.PathLike[bytes]

_lock = threading.Lock()
_loaded: tuple[cffi.FFI, Any] | None = None


def _load() -> tuple[cffi.FFI, Any]:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                import cffi

                f = cffi.FFI()
                f.cdef(header.UAPI_TYPEDEFS)
                f.cdef("long syscall(long number, ...);")
                decls = header.cdef_source(header.header_text())
                if decls.strip():
                    f.cdef(decls)
                _loaded = (f, f.dlopen(None))
    return _loaded


def ffi() -> cffi.FFI:
    """The FFI object: ``ffi().new("struct ssi_...*")`` for the header's structs."""
    return _load()[0]


def _check_int(what: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{what} must be in {lo}..{hi}, got {value}")
    return value


def _check_node(node: object) -> int:
    return _check_int("node", node, 1, SSI_MAX_NODES)


def _describe(number: int, args: Sequence[object]) -> tuple[str, str]:
    """(call, syscall) names for messages, e.g. ("ssisys(SSISYS_NODE_NUM)", "ssisys")."""
    name = header.syscall_names().get(number, f"syscall {number}")
    if number == NR_SSISYS and args and isinstance(args[0], int):
        return f"ssisys({header.ssisys_commands().get(args[0], str(args[0]))})", name
    shown = ", ".join(str(a) if isinstance(a, int) else "<ptr>" for a in args)
    return f"{name}({shown})", name


def _call(
    number: int,
    args: Sequence[object],
    *,
    call: str,
    syscall: str,
    node: int | None = None,
    path: str | None = None,
    module: str | None = None,
    hints: Mapping[int, tuple[str, str]] | None = None,
) -> int:
    f, lib = _load()
    ret = int(lib.syscall(f.cast("long", number), *(f.cast("long", a) for a in args)))
    if ret == -1:
        raise from_errno(
            f.errno, call, syscall=syscall, node=node, path=path, module=module, hints=hints
        )
    return ret


def raw_syscall(number: int, *args: object) -> int:
    """``syscall(number, *args)`` with no argument checking (for tests of the kernel side).

    Each argument is an int or a cffi pointer, passed as a C ``long``. Returns the
    result; a failure raises the :class:`~abi.errors.SSIError` subclass for its errno.
    """
    call, name = _describe(number, args)
    return _call(number, args, call=call, syscall=name)


def ssisys(
    cmd: int,
    buf: Buffer | cffi.FFI.CData | None = None,
    *,
    node: int | None = None,
    hints: Mapping[int, tuple[str, str]] | None = None,
) -> int:
    """The libcluster multiplexer: ``ssisys(cmd, buf, len(buf))``; returns its result.

    *buf* carries the command's argument/result struct: a cffi pointer to a struct
    or array (``ffi().new("struct ssi_cluster_table *")``) or a ``bytearray`` or
    writable ``memoryview`` is passed in place (the kernel may fill it); ``bytes`` or
    a read-only view is copied first (input only). ``None`` passes ``NULL, 0``.
    *node* (the node the command is about) and *hints* (errno -> ``(what, hint)``)
    only make error messages precise.
    """
    _check_int("cmd", cmd, 0, SSISYS_NR_CMDS - 1)
    f, _ = _load()
    ptr: Any
    if buf is None:
        ptr, length = f.NULL, 0
    elif isinstance(buf, f.CData):
        t = f.typeof(buf)
        if t.kind == "array":
            ptr, length = buf, f.sizeof(buf)
        elif t.kind == "pointer" and t.item.kind in ("struct", "union", "primitive", "array"):
            ptr, length = buf, f.sizeof(t.item)
        else:
            raise TypeError(f"buf must point to a struct or array, not {t.cname}")
    elif isinstance(buf, bytes) or (isinstance(buf, memoryview) and buf.readonly):
        data = bytes(buf)
        length = len(data)
        ptr = f.new("char[]", max(length, 1))
        f.memmove(ptr, data, length)
    elif isinstance(buf, bytearray | memoryview):
        ptr = f.from_buffer(buf, require_writable=True)
        length = f.sizeof(ptr)
    else:
        raise TypeError(
            f"buf must be a cffi pointer, bytes, bytearray, memoryview or None, not {type(buf)}"
        )
    name = header.ssisys_commands().get(cmd, str(cmd))
    if name in SSISYS_EINVAL and (hints is None or errno.EINVAL not in hints):
        hints = {**(hints or {}), errno.EINVAL: SSISYS_EINVAL[name]}
    return _call(
        NR_SSISYS,
        (cmd, ptr, length),
        call=f"ssisys({name})",
        syscall="ssisys",
        node=node,
        module=SSISYS_MODULES.get(name),
        hints=hints,
    )


def abi_version() -> int:
    """The ABI version the running SSI modules speak (compare with ``SSI_ABI_VERSION``)."""
    return ssisys(SSISYS_ABI_VERSION)


def clusternode_num() -> int:
    """This node's number (1..SSI_MAX_NODES)."""
    return ssisys(SSISYS_NODE_NUM)


def cluster_maxnodes() -> int:
    """The largest node number the running kernel supports."""
    return ssisys(SSISYS_MAX_NODES)


def _cstr(value: StrOrBytes, what: str) -> bytes:
    data = os.fsencode(value)
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL byte: {value!r}")
    return data


def _env_strings(env: Mapping[str, str] | Mapping[bytes, bytes] | None) -> list[bytes]:
    items = os.environb.items() if env is None else env.items()
    out = []
    for k, v in items:
        key = _cstr(k, "env key")
        if not key or b"=" in key:
            raise ValueError(f"illegal environment variable name {k!r}")
        out.append(key + b"=" + _cstr(v, f"env[{k!r}]"))
    return out


def rexec(
    node: int,
    path: StrOrBytes,
    argv: Sequence[str | bytes],
    env: Mapping[str, str] | Mapping[bytes, bytes] | None = None,
) -> int:
    """Execute *path* with *argv*/*env* on *node*, replacing this process (like execve).

    On success it does not return: the process goes on as the new program on *node*.
    (Should the kernel ever report success and come back, its value is returned.)
    *path* is resolved on *node*. *env* ``None`` means ``os.environ``. Like
    :func:`os.execve`, Python's buffers are not flushed: flush stdout/stderr first.
    """
    _check_node(node)
    if isinstance(argv, str | bytes) or not isinstance(argv, Sequence):
        raise TypeError("argv must be a sequence of str or bytes")
    if not argv:
        raise ValueError("argv must not be empty (argv[0] is the program name)")
    c_path = _cstr(path, "path")
    if not c_path:
        raise ValueError("path must not be empty")
    f, _ = _load()
    keep = [f.new("char[]", a) for a in [_cstr(a, "argv item") for a in argv]]
    c_argv = f.new("char *[]", [*keep, f.NULL])
    env_keep = [f.new("char[]", e) for e in _env_strings(env)]
    c_envp = f.new("char *[]", [*env_keep, f.NULL])
    c_pathbuf = f.new("char[]", c_path)
    shown = os.fsdecode(c_path)
    return _call(
        NR_SSI_REXEC,
        (node, c_pathbuf, c_argv, c_envp),
        call=f"ssi_rexec(node={node}, {shown!r})",
        syscall="ssi_rexec",
        node=node,
        path=shown,
    )


def _fork_like(number: int, args: Sequence[int], *, call: str, syscall: str, node: int) -> int:
    """Run a fork-like syscall the way :func:`os.fork` runs fork().

    The GIL stays held across the syscall (ctypes ``PyDLL``; cffi would release it,
    and a child forked while another thread holds the GIL deadlocks), and CPython's
    at-fork machinery (``os.register_at_fork`` hooks, import lock, thread state)
    runs through ``PyOS_BeforeFork``/``PyOS_AfterFork_*``.
    """
    import ctypes

    api = ctypes.pythonapi
    for fn in ("PyOS_BeforeFork", "PyOS_AfterFork_Parent", "PyOS_AfterFork_Child"):
        getattr(api, fn).restype = None
    libc = ctypes.PyDLL(None, use_errno=True)
    sys_call = libc.syscall
    sys_call.restype = ctypes.c_long
    c_args = [ctypes.c_long(number), *(ctypes.c_long(a) for a in args)]
    api.PyOS_BeforeFork()
    ctypes.set_errno(0)
    ret = int(sys_call(*c_args))
    err = ctypes.get_errno()
    if ret == 0:
        api.PyOS_AfterFork_Child()
    else:
        api.PyOS_AfterFork_Parent()
    if ret == -1:
        raise from_errno(err, call, syscall=syscall, node=node)
    return ret


def rfork(node: int) -> int:
    """Fork a child that runs on *node*. Returns like :func:`os.fork`: 0 in the child,
    the child's (clusterwide) PID in the parent."""
    _check_node(node)
    return _fork_like(
        NR_SSI_RFORK, (node,), call=f"ssi_rfork(node={node})", syscall="ssi_rfork", node=node
    )


def migrate(node: int) -> None:
    """Move the calling process to *node*; returns there once it has moved."""
    _check_node(node)
    _call(
        NR_SSI_MIGRATE,
        (node,),
        call=f"ssi_migrate(node={node})",
        syscall="ssi_migrate",
        node=node,
    )
