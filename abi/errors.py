"""Exceptions for failed SSI calls: every errno becomes an :class:`SSIError` subclass.

Each exception is an :class:`OSError` carrying ``errno`` and a message that says what
went wrong and how to fix it; ``str(exc)`` is that message. The message is also in
``exc.strerror``; ``exc.call`` names the call (``"ssisys(SSISYS_NODE_NUM)"``) and
``exc.hint`` is the "how to fix it" part alone.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Mapping
from pathlib import Path

# Created by ssi_core when it loads; its presence tells "no module at all" from
# "modules loaded, but none serves this call".
SSI_SYSFS = Path("/sys/kernel/ssi")
PROC_MODULES = Path("/proc/modules")


class SSIError(OSError):
    """An SSI system call failed. ``errno`` is the kernel's errno."""

    call: str
    hint: str

    def __init__(self, err: int, message: str, *, call: str = "", hint: str = "") -> None:
        super().__init__(err, message)
        self.call = call
        self.hint = hint

    def __str__(self) -> str:
        return str(self.strerror)


class SSINotAvailable(SSIError):
    """ENOSYS: the kernel has no SSI module (or no loaded module) that serves the call."""


class SSIPermissionError(SSIError, PermissionError):
    """EPERM / EACCES."""


class SSIFileNotFound(SSIError, FileNotFoundError):
    """ENOENT (e.g. the program given to rexec does not exist on the target node)."""


class SSIInvalidArgument(SSIError):
    """EINVAL: the kernel rejected an argument."""


class SSINodeUnavailable(SSIError, ConnectionError):
    """The target node is not up (EHOSTDOWN, EHOSTUNREACH, ENONET, ECONNREFUSED...)."""


class SSITimeout(SSIError, TimeoutError):
    """ETIMEDOUT: the target node did not answer in time."""


class SSIBadAddress(SSIError):
    """EFAULT: the kernel could not read or write a buffer it was given."""


_NODE_DOWN = {
    _errno.EHOSTDOWN,
    _errno.EHOSTUNREACH,
    _errno.ENONET,
    _errno.ECONNREFUSED,
    _errno.ECONNRESET,
}


def errno_name(err: int) -> str:
    """``38`` -> ``"ENOSYS"`` (or ``"errno 1234"`` if unknown)."""
    return _errno.errorcode.get(err, f"errno {err}")


def _module_loaded(module: str) -> bool:
    try:
        text = PROC_MODULES.read_text()
    except OSError:
        return False
    return any(line.split(" ", 1)[0] == module for line in text.splitlines())


def _enosys(call: str, syscall: str, module: str | None = None) -> tuple[str, str]:
    if SSI_SYSFS.is_dir():
        if module and not _module_loaded(module):
            return (
                f"the {module} module is not loaded",
                f"load it with `ssictl modules load {module}` "
                "(`ssictl modules status` shows what is loaded)",
            )
        what = call if syscall == "ssisys" else syscall  # name the ssisys command
        if module:
            return (
                f"the {module} module is loaded but does not serve this call",
                f"the running {module} and this binding disagree on the ABI: rebuild and "
                f"reload it (`ssictl modules unload {module}`, then `ssictl modules load`)",
            )
        return (
            "no loaded SSI module serves this call",
            f"the modules loaded now do not provide {what}: load the module that does "
            "with `ssictl modules load` (`ssictl modules status` shows what is loaded)",
        )
    needs = f" (it needs the {module} module)" if module and module != "ssi_core" else ""
    return (
        "no SSI module serves this call" + needs,
        "load the modules with `ssictl modules load` (on a kernel built with the ssikit patches)",
    )


def from_errno(
    err: int,
    call: str,
    *,
    syscall: str = "",
    node: int | None = None,
    path: str | None = None,
    module: str | None = None,
    hints: Mapping[int, tuple[str, str]] | None = None,
) -> SSIError:
    """Build the exception for *err* returned by *call* (e.g. ``"ssi_rfork(node=2)"``).

    *syscall* is the bare syscall name (``"ssi_rfork"``), *node* the target node and
    *path* the program (rexec) when they apply; they make the message precise.
    *module* names the SSI module that serves the call (ENOSYS then says whether it
    is loaded). *hints* maps an errno to the ``(what, hint)`` the caller knows better
    (e.g. what EINVAL means for one ssisys command); the exception class stays the
    errno's.
    """
    syscall = syscall or call.split("(", 1)[0]
    name = errno_name(err)
    where = f"node {node}" if node is not None else "the target node"
    cls: type[SSIError] = SSIError
    if err == _errno.ENOSYS:
        cls = SSINotAvailable
        what, hint = _enosys(call, syscall, module)
    elif err == _errno.EPERM:
        cls = SSIPermissionError
        what, hint = "operation not permitted", "this call needs privileges: run it as root"
    elif err == _errno.EACCES:
        cls = SSIPermissionError
        what = "permission denied"
        hint = (
            f"check that {path} is executable by this user on {where}"
            if path
            else "run it as root, or as a user allowed to make this call"
        )
    elif err == _errno.ENOENT:
        cls = SSIFileNotFound
        what = "no such file or directory"
        hint = (
            f"{path} must exist on {where} (paths are resolved there)"
            if path
            else "a path given to the call does not exist"
        )
    elif err == _errno.EINVAL:
        cls = SSIInvalidArgument
        what = "the kernel rejected the arguments"
        hint = (
            "check the node number (1..SSI_MAX_NODES, and a node of this cluster) "
            "and the command; the binding and the running modules may disagree on the ABI "
            "(compare `ssictl node --json` with abi/ssi_abi.h)"
        )
    elif err in _NODE_DOWN:
        cls = SSINodeUnavailable
        what = f"{where} is not reachable"
        hint = f"check that {where} is booted and has joined the cluster"
    elif err == _errno.ETIMEDOUT:
        cls = SSITimeout
        what = f"{where} did not answer in time"
        hint = f"check that {where} is up and the cluster network works"
    elif err == _errno.EFAULT:
        cls = SSIBadAddress
        what = "the kernel could not access a buffer passed to the call"
        hint = "the caller passed a bad pointer or length (a bug in the caller)"
    else:
        what = os.strerror(err)
        hint = "see the kernel log (`dmesg`) for details"
    if hints and err in hints:
        what, hint = hints[err]
    message = f"{call}: {what} ({name}): {hint}"
    return cls(err, message, call=call, hint=hint)
