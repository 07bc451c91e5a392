"""Kernel module plumbing for ``ssictl modules``: no typer, no rich, stdlib only.

* ``.modinfo`` parsing straight from the ELF section bytes (no pyelftools import),
* dependency ordering with cycle detection (graphlib),
* ``/proc/modules``, ``/dev/kmsg`` and ``/sys/kernel/ssi`` readers,
* ``finit_module(2)`` / ``delete_module(2)`` through ctypes, so the kernel's errno
  comes back as is (``insmod``/``rmmod`` only where the syscall numbers are unknown).
"""

from __future__ import annotations

import errno
import graphlib
import os
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC_MODULES = Path("/proc/modules")
SYS_MODULE = Path("/sys/module")
SSI_SYSFS = Path("/sys/kernel/ssi")
DEV_KMSG = Path("/dev/kmsg")

# (finit_module, delete_module) per machine; elsewhere insmod/rmmod are used.
_SYSCALLS = {"x86_64": (313, 176), "aarch64": (273, 106)}


class ModinfoError(ValueError):
    """A .ko file could not be read or has no usable .modinfo section."""


class CycleError(ValueError):
    """The modules' ``depends=`` form a cycle; ``cycle`` is e.g. ``["a", "b", "a"]``."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("dependency cycle: " + " -> ".join(cycle))
        self.cycle = cycle


def modname(name: str) -> str:
    """Kernel spelling of a module name (``ssi-core`` and ``ssi_core`` are one module)."""
    return name.replace("-", "_")


# --------------------------------------------------------------------------- ELF


def elf_section(data: bytes, wanted: str) -> bytes | None:
    """Contents of section *wanted* of the ELF image *data* (32/64-bit, either
    endianness), or ``None`` if it has no such section. Raises ``ValueError`` if
    *data* is not a well-formed ELF file."""
    if len(data) < 0x34 or data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file (bad magic)")
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise ValueError(f"unsupported ELF class {cls} / data encoding {enc}")
    e = "<" if enc == 1 else ">"
    if cls == 2:
        if len(data) < 0x40:
            raise ValueError("truncated ELF header")
        (shoff,) = struct.unpack_from(e + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A)
        sh_fmt, min_ent = e + "IIQQQQIIQQ", 0x40
    else:
        (shoff,) = struct.unpack_from(e + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x2E)
        sh_fmt, min_ent = e + "IIIIIIIIII", 0x28
    if shoff == 0:
        return None
    if shentsize < min_ent:
        raise ValueError(f"bad section header size {shentsize}")

    def header(i: int) -> tuple[int, ...]:
        off = shoff + i * shentsize
        if off + min_ent > len(data):
            raise ValueError(f"section header {i} lies past the end of the file")
        return struct.unpack_from(sh_fmt, data, off)

    first = header(0)
    if shnum == 0:  # extended numbering: the count is in section 0's sh_size
        shnum = first[5]
    if shstrndx == 0xFFFF:  # SHN_XINDEX: the index is in section 0's sh_link
        shstrndx = first[6]
    if shstrndx >= shnum:
        raise ValueError("section name table index out of range")

    def contents(h: tuple[int, ...]) -> bytes:
        sh_type, off, size = h[1], h[4], h[5]
        if sh_type == 8:  # SHT_NOBITS
            return b""
        if off + size > len(data):
            raise ValueError("section lies past the end of the file")
        return data[off : off + size]

    names = contents(header(shstrndx))
    target = wanted.encode()
    for i in range(shnum):
        h = header(i)
        start = h[0]
        end = names.find(b"\0", start)
        if start < len(names) and names[start : end if end >= 0 else None] == target:
            return contents(h)
    return None


def parse_modinfo(section: bytes) -> dict[str, list[str]]:
    """``b"name=x\\0depends=a,b\\0..."`` -> ``{"name": ["x"], "depends": ["a,b"]}``.

    Keys may repeat (``alias``, ``parm``), so every value is a list."""
    info: dict[str, list[str]] = {}
    for raw in section.split(b"\0"):
        if not raw:
            continue  # alignment padding between strings
        key, sep, value = raw.decode("utf-8", "replace").partition("=")
        if sep:
            info.setdefault(key, []).append(value)
    return info


def read_modinfo(path: Path) -> dict[str, list[str]]:
    """The ``.modinfo`` key/values of the module file *path*."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModinfoError(f"cannot read {path}: {e.strerror}") from e
    try:
        section = elf_section(data, ".modinfo")
    except (ValueError, struct.error) as e:
        raise ModinfoError(f"{path} is not a kernel module: {e}") from e
    if section is None:
        raise ModinfoError(f"{path} has no .modinfo section: it is not a kernel module")
    return parse_modinfo(section)


@dataclass(frozen=True)
class ModuleFile:
    """One ``.ko`` file and what its ``.modinfo`` says."""

    name: str
    path: Path
    depends: tuple[str, ...]
    vermagic: str = ""

    @classmethod
    def from_path(cls, path: Path) -> ModuleFile:
        info = read_modinfo(path)
        name = modname((info.get("name") or [path.name.removesuffix(".ko")])[0])
        deps = [modname(d) for v in info.get("depends", []) for d in v.split(",") if d.strip()]
        vermagic = (info.get("vermagic") or [""])[0]
        return cls(name, path, tuple(dict.fromkeys(d.strip() for d in deps)), vermagic)


def discover(directory: Path) -> dict[str, ModuleFile]:
    """Every ``*.ko`` in *directory*, by module name. Raises ``ModinfoError`` on a bad
    file or two files for one module."""
    mods: dict[str, ModuleFile] = {}
    for path in sorted(directory.glob("*.ko")):
        mod = ModuleFile.from_path(path)
        if mod.name in mods:
            raise ModinfoError(
                f"two files are module {mod.name}: {mods[mod.name].path.name} and {path.name}"
            )
        mods[mod.name] = mod
    return mods


# --------------------------------------------------------------------------- ordering


def toposort(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Order the keys of *deps* so that each comes after the names it depends on.

    Dependencies that are not keys are ignored (the caller checks them). Names that
    become ready together come in name order, so the order is stable. Raises
    :class:`CycleError`."""
    sorter = graphlib.TopologicalSorter({k: {d for d in v if d in deps} for k, v in deps.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        raise CycleError(_dependency_cycle(e.args[1])) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order


def _dependency_cycle(found: list[str]) -> list[str]:
    """graphlib's cycle (each name is needed by the next) as ``a -> b -> a`` read
    "a depends on b", starting at its smallest name so the message is stable."""
    ring = list(reversed(found[:-1]))
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return [*ring, ring[0]]


def closure(names: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """*names* plus everything reachable from them through *edges*."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(edges.get(n, ()))
    return seen


# --------------------------------------------------------------------------- /proc, /sys


@dataclass(frozen=True)
class LoadedModule:
    """One line of ``/proc/modules``."""

    name: str
    size: int
    refcount: int
    used_by: tuple[str, ...] = ()
    state: str = "Live"


def parse_proc_modules(text: str) -> dict[str, LoadedModule]:
    """Parse ``/proc/modules`` (``name size refcnt used_by state addr [taint]``)."""
    mods: dict[str, LoadedModule] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        used = parts[3] if len(parts) > 3 else "-"
        users = tuple(u for u in used.split(",") if u and u != "-")
        state = parts[4] if len(parts) > 4 else "Live"
        try:
            size, ref = int(parts[1]), int(parts[2]) if parts[2] != "-" else 0
        except ValueError:
            continue
        mods[parts[0]] = LoadedModule(parts[0], size, ref, users, state)
    return mods


def loaded_modules() -> dict[str, LoadedModule]:
    """The modules loaded now (empty if ``/proc/modules`` is missing: no module support)."""
    try:
        return parse_proc_modules(PROC_MODULES.read_text())
    except FileNotFoundError:
        return {}


def read_attrs(root: Path, depth: int = 2) -> dict[str, str]:
    """Readable files under *root* (sysfs attributes) as ``{relative path: text}``."""
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for p in sorted(root.iterdir()):
        rel = p.name
        if p.is_dir() and not p.is_symlink():
            if depth > 1:
                out.update({f"{rel}/{k}": v for k, v in read_attrs(p, depth - 1).items()})
            continue
        try:
            out[rel] = p.read_text(errors="replace").strip()
        except OSError:
            continue  # write-only or failing attribute
    return out


def module_parameters(name: str) -> dict[str, str]:
    """``/sys/module/<name>/parameters/*`` of a loaded module."""
    return read_attrs(SYS_MODULE / name / "parameters", depth=1)


# --------------------------------------------------------------------------- kernel log


_KMSG_ESC = re.compile(rb"\\x([0-9a-fA-F]{2})")


def _parse_kmsg_record(record: bytes) -> str:
    head, _, rest = record.partition(b";")
    msg = rest.split(b"\n", 1)[0] if rest else head
    msg = _KMSG_ESC.sub(lambda m: bytes([int(m.group(1), 16)]), msg)
    return msg.decode("utf-8", "replace")


class KernelLog:
    """Collects what the kernel logs from now on (``/dev/kmsg`` read from its end).

    Use as a context manager around an operation, then :meth:`new_lines`. Where
    ``/dev/kmsg`` cannot be read, falls back to the tail of ``dmesg`` output."""

    def __init__(self) -> None:
        self._fd: int | None = None

    def __enter__(self) -> KernelLog:
        try:
            fd = os.open(DEV_KMSG, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return self
        try:
            os.lseek(fd, 0, os.SEEK_END)
        except OSError:
            os.close(fd)
            return self
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def new_lines(self) -> list[str]:
        """Messages logged since :meth:`__enter__`."""
        if self._fd is None:
            return _dmesg_tail()
        lines: list[str] = []
        while True:
            try:
                record = os.read(self._fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:  # records were overwritten; go on with the next
                continue
            except OSError:
                break
            if not record:
                break
            lines.append(_parse_kmsg_record(record))
        return lines


def _dmesg_tail(n: int = 50) -> list[str]:
    import subprocess

    try:
        out = subprocess.run(
            ["dmesg"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [re.sub(r"^\[\s*[0-9.]+\]\s*", "", ln) for ln in out.splitlines()]
    return lines[-n:]


def lines_naming(lines: list[str], name: str, limit: int = 10) -> list[str]:
    """The last *limit* lines that name module *name* (either spelling)."""
    pat = re.compile(r"\b(" + re.escape(name) + "|" + re.escape(name.replace("_", "-")) + r")\b")
    return [ln for ln in lines if pat.search(ln)][-limit:]


# --------------------------------------------------------------------------- load/unload


@dataclass
class KernelError(Exception):
    """A module syscall failed: *err* is the kernel's errno, *output* any tool output."""

    err: int
    output: str = ""
    log: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{os.strerror(self.err)} ({errno.errorcode.get(self.err, self.err)})"


def _libc_syscall(number: int, *args: int | bytes) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.syscall
    fn.restype = ctypes.c_long
    c_args: list[object] = [ctypes.c_long(number)]
    for a in args:
        c_args.append(ctypes.c_char_p(a) if isinstance(a, bytes) else ctypes.c_long(a))
    if fn(*c_args) == -1:
        raise KernelError(ctypes.get_errno())


_TOOL_ERRNO = {
    "Invalid module format": errno.ENOEXEC,
    "Unknown symbol": errno.ENOENT,
    "File exists": errno.EEXIST,
    "Operation not permitted": errno.EPERM,
    "is in use": errno.EBUSY,
    "Resource temporarily unavailable": errno.EAGAIN,
    "Invalid parameters": errno.EINVAL,
    "is not currently loaded": errno.ENOENT,
}


def _run_tool(argv: list[str]) -> None:
    import subprocess

    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError as e:
        raise KernelError(errno.ENOENT, f"{argv[0]} not found") from e
    if r.returncode != 0:
        text = (r.stderr or r.stdout).strip()
        err = next((v for k, v in _TOOL_ERRNO.items() if k in text), errno.EIO)
        raise KernelError(err, text)


def finit_module(path: Path, params: str = "") -> None:
    """Load the module file *path*; raises :class:`KernelError` with the kernel's errno."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        _run_tool(["insmod", str(path), *params.split()])
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno or errno.EIO, f"cannot open {path}") from e
    try:
        _libc_syscall(numbers[0], fd, params.encode(), 0)
    finally:
        os.close(fd)


def delete_module(name: str) -> None:
    """Unload module *name* (non-blocking, like ``rmmod``); raises :class:`KernelError`."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        _run_tool(["rmmod", name])
        return
    _libc_syscall(numbers[1], name.encode(), os.O_NONBLOCK)
