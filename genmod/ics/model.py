"""The parsed form of an ICS interface spec (see genmod/ICS-SPEC.md).

A :class:`Service` has :class:`Op` s; every op has a request
:class:`Message` and, for calls, a reply message; a message is a tuple of
:class:`Field` s, each of an integer, ``bytes<N>``, ``string<N>``,
``array<T, N>`` or ``pages<N>`` type.  Sizes here are wire sizes: little
endian integers, a u32 length or count before variable data, no padding;
the pages of a ``pages<N>`` field travel after the packed message and are
not counted in it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from genmod.errors import GenmodError

LEN_SIZE = 4
"""Bytes of the u32 length/count before bytes, string and array data."""


@dataclass(frozen=True)
class Loc:
    """A position in a spec file; line and col count from 1."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SpecError(GenmodError):
    """A spec is malformed; ``str(err)`` is ``file:line:col: what is wrong``."""

    def __init__(self, loc: Loc, msg: str) -> None:
        super().__init__(f"{loc}: {msg}")
        self.loc = loc
        self.msg = msg


class Chan(enum.IntEnum):
    """enum ics_chan."""

    PRIO = 0
    BULK = 1

    @property
    def c_name(self) -> str:
        return f"ICS_CHAN_{self.name}"


class Kind(enum.IntEnum):
    """enum ics_kind values of the frames carrying service messages."""

    CALL = 1
    REPLY = 2
    ONEWAY = 3


@dataclass(frozen=True)
class IntType:
    """One of u8..u64, s8..s64."""

    name: str
    size: int
    signed: bool

    @property
    def bits(self) -> int:
        return self.size * 8

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def struct_code(self) -> str:
        """The :mod:`struct` format letter (use with ``<``)."""
        code = {1: "b", 2: "h", 4: "i", 8: "q"}[self.size]
        return code if self.signed else code.upper()


INT_TYPES: dict[str, IntType] = {
    f"{'s' if signed else 'u'}{size * 8}": IntType(
        f"{'s' if signed else 'u'}{size * 8}", size, signed
    )
    for signed in (False, True)
    for size in (1, 2, 4, 8)
}


@dataclass(frozen=True)
class ScalarType:
    """An integer field: ``size`` bytes little endian."""

    int_type: IntType

    @property
    def spec(self) -> str:
        return self.int_type.name

    @property
    def fixed_size(self) -> int:
        return self.int_type.size

    @property
    def max_size(self) -> int:
        return self.int_type.size


@dataclass(frozen=True)
class BytesType:
    """``bytes<N>``: u32 length (<= N), then the bytes."""

    bound: int

    @property
    def spec(self) -> str:
        return f"bytes<{self.bound}>"

    @property
    def fixed_size(self) -> int:
        return LEN_SIZE

    @property
    def max_size(self) -> int:
        return LEN_SIZE + self.bound


@dataclass(frozen=True)
class StringType:
    """``string<N>``: like bytes, without NUL bytes."""

    bound: int

    @property
    def spec(self) -> str:
        return f"string<{self.bound}>"

    @property
    def fixed_size(self) -> int:
        return LEN_SIZE

    @property
    def max_size(self) -> int:
        return LEN_SIZE + self.bound


@dataclass(frozen=True)
class ArrayType:
    """``array<T, N>``: u32 count (<= N), then the elements."""

    elem: IntType
    bound: int

    @property
    def spec(self) -> str:
        return f"array<{self.elem.name}, {self.bound}>"

    @property
    def fixed_size(self) -> int:
        return LEN_SIZE

    @property
    def max_size(self) -> int:
        return LEN_SIZE + self.bound * self.elem.size


@dataclass(frozen=True)
class PagesType:
    """``pages<N>``: up to N whole pages.  Its u32 count comes first in the
    packed message and the pages after it (ICS_KIND_PAGES frames)."""

    bound: int

    @property
    def spec(self) -> str:
        return f"pages<{self.bound}>"

    @property
    def fixed_size(self) -> int:
        return LEN_SIZE

    @property
    def max_size(self) -> int:
        return LEN_SIZE


FieldType = ScalarType | BytesType | StringType | ArrayType | PagesType
VarType = BytesType | StringType | ArrayType | PagesType


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    loc: Loc

    @property
    def is_var(self) -> bool:
        return not isinstance(self.type, ScalarType)


@dataclass(frozen=True)
class Message:
    """The fields of one request, reply or one-way message."""

    fields: tuple[Field, ...]
    loc: Loc

    @property
    def max_size(self) -> int:
        """Largest packed size (every length/count at its bound)."""
        return sum(f.type.max_size for f in self.fields)

    @property
    def min_size(self) -> int:
        """Smallest packed size (every length/count 0)."""
        return sum(f.type.fixed_size for f in self.fields)

    @property
    def empty(self) -> bool:
        return not self.fields

    @property
    def pages(self) -> Field | None:
        """Its ``pages<N>`` field (the last one), if it has one."""
        last = self.fields[-1] if self.fields else None
        return last if last is not None and isinstance(last.type, PagesType) else None

    @property
    def head(self) -> Message:
        """The message without its ``pages<N>`` field."""
        return Message(tuple(f for f in self.fields if not isinstance(f.type, PagesType)),
                       self.loc)


@dataclass(frozen=True)
class Op:
    name: str
    id: int
    version: int
    req: Message
    rep: Message | None
    """None for one-way ops."""
    loc: Loc

    @property
    def oneway(self) -> bool:
        return self.rep is None

    @property
    def req_kind(self) -> Kind:
        return Kind.ONEWAY if self.oneway else Kind.CALL

    @property
    def paged(self) -> bool:
        """Its request or reply has a ``pages<N>`` field."""
        return self.req.pages is not None or (self.rep is not None and
                                               self.rep.pages is not None)


@dataclass(frozen=True)
class Service:
    name: str
    id: int
    chan: Chan
    ops: tuple[Op, ...]
    loc: Loc
    source: str
    """The spec's file name, for "generated from" comments."""
