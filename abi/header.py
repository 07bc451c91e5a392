"""Read the ssikit ABI header (``abi/ssi_abi.h``), the single source of truth.

The header ships inside this package as data. Nothing here imports cffi, so the
constants are cheap to get (``ssictl`` startup inside a TCG guest is slow enough).

Two views of the header:

* :func:`parse_defines` - every object-like ``#define NAME <integer literal>`` as a
  ``dict[str, int]`` (syscall numbers, ``SSISYS_*`` commands, limits).
* :func:`cdef_source` - the C declarations (structs, enums, typedefs) with comments
  and preprocessor lines removed, ready for ``cffi.FFI.cdef``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

HEADER_NAME = "ssi_abi.h"

# Kernel uapi integer typedefs the header may use in its structs (from <linux/types.h>).
UAPI_TYPEDEFS = """
typedef uint8_t __u8;
typedef int8_t __s8;
typedef uint16_t __u16;
typedef int16_t __s16;
typedef uint32_t __u32;
typedef int32_t __s32;
typedef uint64_t __u64;
typedef int64_t __s64;
typedef uint64_t __aligned_u64;
typedef int __kernel_pid_t;
"""

_COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_DEFINE_RE = re.compile(r"^\s*#\s*define\s+(?P<name>[A-Za-z_]\w*)(?P<fn>\()?(?P<value>.*)$")
_INT_RE = re.compile(
    r"^\(?\s*(?P<num>0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(?:[uU]?[lL]{0,2}|[lL]{1,2}[uU])\s*\)?$"
)


class HeaderError(ValueError):
    """The ABI header is malformed (not parseable as the plain form it promises)."""


def header_path() -> Path:
    """Path of the ABI header shipped with this package."""
    return Path(__file__).with_name(HEADER_NAME)


@cache
def header_text() -> str:
    """Contents of the shipped ABI header."""
    try:
        return header_path().read_text(encoding="utf-8")
    except OSError as e:
        raise HeaderError(
            f"cannot read the ABI header {header_path()}: {e.strerror}; "
            "reinstall ssikit (`pip install -e .` in the checkout)"
        ) from e


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Split into lines with backslash continuations joined; keep 1-based line numbers."""
    out: list[tuple[int, str]] = []
    buf = ""
    start = 0
    for no, line in enumerate(text.splitlines(), 1):
        if not buf:
            start = no
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def _strip_comments(text: str) -> str:
    # Keep line numbers stable: replace each comment by as many newlines as it spans.
    return _COMMENT_RE.sub(lambda m: "\n" * m.group(0).count("\n") + " ", text)


def parse_defines(text: str) -> dict[str, int]:
    """All object-like ``#define NAME <integer literal>`` of *text*.

    A define with no value (an include guard) is skipped, as are function-like
    macros. A define whose value is anything but an integer literal raises
    :class:`HeaderError`: the header promises plain literals so that every
    consumer (kernel, modules, cffi) reads the same numbers.
    """
    defines: dict[str, int] = {}
    for no, line in _logical_lines(_strip_comments(text)):
        m = _DEFINE_RE.match(line)
        if m is None or m.group("fn"):
            continue
        name, value = m.group("name"), m.group("value").strip()
        if not value:
            continue
        v = _INT_RE.match(value)
        if v is None:
            raise HeaderError(
                f"{HEADER_NAME}:{no}: #define {name} {value!r} is not an integer literal; "
                "the ABI header must use plain integer literals (see its top comment)"
            )
        num = v.group("num")
        if num.lower().startswith("0x"):
            number = int(num, 16)
        elif num.startswith("0") and len(num) > 1:
            number = int(num, 8)
        else:
            number = int(num)
        if defines.get(name, number) != number:
            raise HeaderError(
                f"{HEADER_NAME}:{no}: {name} redefined as {number} (was {defines[name]})"
            )
        defines[name] = number
    return defines


def cdef_source(text: str) -> str:
    """The header's C declarations for ``cffi.FFI.cdef`` (no comments, no ``#`` lines)."""
    kept = [
        line
        for _, line in _logical_lines(_strip_comments(text))
        if not line.lstrip().startswith("#")
    ]
    return "\n".join(kept).strip() + "\n"


@cache
def constants() -> Mapping[str, int]:
    """The integer constants of the shipped header (parsed once)."""
    return parse_defines(header_text())


def require(name: str) -> int:
    """One constant of the shipped header, with a clear error if it is missing."""
    try:
        return constants()[name]
    except KeyError:
        raise HeaderError(
            f"{header_path()} does not define {name}; the binding and the header "
            "disagree: update abi/ (the header is the source of truth)"
        ) from None


def ssisys_commands() -> dict[int, str]:
    """``SSISYS_*`` command numbers to names (``SSISYS_NR_CMDS`` is a bound, not a command)."""
    return {
        v: k for k, v in constants().items() if k.startswith("SSISYS_") and k != "SSISYS_NR_CMDS"
    }


def syscall_names() -> dict[int, str]:
    """SSI syscall numbers to names (``__NR_ssisys`` -> ``ssisys``)."""
    return {v: k[len("__NR_") :] for k, v in constants().items() if k.startswith("__NR_")}
