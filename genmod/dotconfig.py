"""Kernel ``.config`` files and fragments: the one reader genmod has for them.

Lines are ``CONFIG_FOO=value`` (strings double-quoted with ``\\"`` and ``\\\\``
escapes) and ``# CONFIG_FOO is not set`` (read as ``n``); any other line is
a comment or blank.  Fragments are read strictly: a line that is neither is
an error naming the file and line, since it is most likely a typo that would
otherwise be ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from genmod.errors import ConfigError

_SET_RE = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET_RE = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Assignment:
    """One symbol's line: ``name`` without CONFIG_, ``value`` n/m/y or the unquoted value."""

    name: str
    value: str
    lineno: int


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse(text: str, *, source: str = "<text>", strict: bool = False) -> list[Assignment]:
    """Every assignment in ``text`` in order; ``strict`` refuses lines that are neither."""
    found: list[Assignment] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = _SET_RE.match(line)
        if m:
            found.append(Assignment(m.group(1), _unquote(m.group(2).strip()), lineno))
            continue
        m = _UNSET_RE.match(line)
        if m:
            found.append(Assignment(m.group(1), "n", lineno))
            continue
        if strict and line and not line.startswith("#"):
            raise ConfigError(f"{source}:{lineno}: not a config fragment line: {raw!r}")
    return found


def read(path: Path, *, strict: bool = False) -> list[Assignment]:
    return parse(path.read_text(encoding="utf-8"), source=str(path), strict=strict)


def values(path: Path) -> dict[str, str]:
    """``NAME -> value`` of a .config (or include/config/auto.conf); the last line wins."""
    return {a.name: a.value for a in read(path)}
