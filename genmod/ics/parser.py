"""Tokenizer and parser for ICS interface specs (genmod/ICS-SPEC.md).

Grammar (``#`` starts a comment to the end of the line)::

    spec    := service op+
    service := "service" NAME ID "chan" ("prio" | "bulk") ";"
    op      := "call" NAME ID VERSION "(" fields ")" "->" "(" fields ")" ";"
             | "oneway" NAME ID VERSION "(" fields ")" ";"
    fields  := [ field ("," field)* ]
    field   := type NAME
    type    := INT | "bytes" "<" N ">" | "string" "<" N ">" | "array" "<" INT "," N ">"
             | "pages" "<" N ">"      (calls only; the last field; N <= ICS_MAX_PAGES)
    INT     := u8 | u16 | u32 | u64 | s8 | s16 | s32 | s64
    VERSION := "v" digits

Every error is a :class:`~genmod.ics.model.SpecError` whose message starts
with ``file:line:col:``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from genmod.ics import frame, names
from genmod.ics.model import (
    INT_TYPES,
    ArrayType,
    BytesType,
    Chan,
    Field,
    FieldType,
    Loc,
    Message,
    Op,
    PagesType,
    ScalarType,
    Service,
    SpecError,
    StringType,
)

MAX_ID = 65535
MAX_VERSION = 65535
MAX_ARRAY = 65536
MAX_BLOB = frame.ICS_MAX_BODY

_TOKEN_RE = re.compile(
    r"(?P<ws>[ \t\r\f\v]+)|(?P<nl>\n)|(?P<comment>#[^\n]*)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<num>[0-9][A-Za-z0-9_]*)"
    r"|(?P<punct>->|[;(),<>])"
)


@dataclass(frozen=True)
class Token:
    kind: str
    """"word", "num", "punct" or "eof"."""
    text: str
    loc: Loc
    end: Loc
    """Just after the token (where a missing ';' belongs)."""

    def describe(self) -> str:
        return "end of file" if self.kind == "eof" else f"'{self.text}'"


def tokenize(text: str, file: str) -> list[Token]:
    toks: list[Token] = []
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise SpecError(Loc(file, line, pos - line_start + 1),
                            f"unexpected character {text[pos]!r}")
        kind = m.lastgroup
        assert kind is not None
        if kind == "nl":
            line, line_start = line + 1, m.end()
        elif kind in ("word", "num", "punct"):
            loc = Loc(file, line, pos - line_start + 1)
            end = Loc(file, line, m.end() - line_start + 1)
            if kind == "num" and not m.group().isdigit():
                raise SpecError(loc, f"bad number '{m.group()}'")
            toks.append(Token(kind, m.group(), loc, end))
        pos = m.end()
    eof = Loc(file, line, pos - line_start + 1)
    toks.append(Token("eof", "", eof, eof))
    return toks


class _Parser:
    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def fail(self, what: str) -> SpecError:
        return SpecError(self.tok.loc, f"expected {what}, found {self.tok.describe()}")

    def expect(self, text: str, after: str | None = None) -> Token:
        if self.tok.text == text and self.tok.kind != "eof":
            return self.next()
        if after is not None and self.i > 0:
            prev = self.toks[self.i - 1]
            raise SpecError(prev.end, f"expected '{text}' after {after}, "
                                      f"found {self.tok.describe()}")
        raise self.fail(f"'{text}'")

    def name(self, what: str) -> Token:
        t = self.tok
        if t.kind != "word":
            raise self.fail(what)
        if not names.IDENT_RE.match(t.text):
            raise SpecError(t.loc, f"{what} '{t.text}' must be a lower-case C identifier "
                                   "([a-z][a-z0-9_]*)")
        if t.text in names.C_RESERVED:
            raise SpecError(t.loc, f"{what} '{t.text}' is a C keyword or a reserved kernel name")
        return self.next()

    def number(self, what: str, lo: int, hi: int) -> tuple[int, Token]:
        t = self.tok
        if t.kind != "num":
            raise self.fail(what)
        value = int(t.text)
        if not lo <= value <= hi:
            raise SpecError(t.loc, f"{what} {t.text} out of range {lo}..{hi}")
        self.next()
        return value, t

    def version(self) -> int:
        t = self.tok
        m = re.fullmatch(r"v([0-9]+)", t.text) if t.kind == "word" else None
        if m is None:
            raise self.fail("a version 'v<N>'")
        value = int(m.group(1))
        if not 1 <= value <= MAX_VERSION:
            raise SpecError(t.loc, f"version {t.text} out of range v1..v{MAX_VERSION}")
        self.next()
        return value

    # --- grammar ---------------------------------------------------------

    def service(self, source: str) -> Service:
        if self.tok.text != "service" or self.tok.kind != "word":
            raise self.fail("'service <name> <id> chan <prio|bulk>;' first")
        start = self.next()
        name = self.name("service name")
        sid, _ = self.number("service id", 1, MAX_ID)
        self.expect("chan")
        chan_tok = self.tok
        if chan_tok.text not in ("prio", "bulk") or chan_tok.kind != "word":
            raise self.fail("channel 'prio' or 'bulk'")
        self.next()
        self.expect(";", after="the service declaration")
        ops: list[Op] = []
        op_ids: dict[int, Op] = {}
        op_names: dict[str, Op] = {}
        while self.tok.kind != "eof":
            op = self.op()
            if op.id in op_ids:
                raise SpecError(op.loc, f"op id {op.id} of '{op.name}' is already used by "
                                        f"'{op_ids[op.id].name}' ({op_ids[op.id].loc})")
            if op.name in op_names:
                raise SpecError(op.loc, f"op '{op.name}' is already defined at "
                                        f"{op_names[op.name].loc}")
            op_ids[op.id] = op_names[op.name] = op
            ops.append(op)
        if not ops:
            raise SpecError(start.loc, f"service '{name.text}' has no ops")
        return Service(name.text, sid, Chan[chan_tok.text.upper()], tuple(ops),
                       start.loc, source)

    def op(self) -> Op:
        t = self.tok
        if t.kind != "word" or t.text not in ("call", "oneway"):
            if t.text == "service":
                raise SpecError(t.loc, "only one 'service' declaration per spec")
            raise self.fail("'call' or 'oneway'")
        self.next()
        name = self.name("op name")
        oid, _ = self.number("op id", 1, MAX_ID)
        version = self.version()
        call = t.text == "call"
        req = self.message(f"'{name.text}' request" if call else f"'{name.text}' message",
                           pages_ok=call)
        rep = None
        if call:
            self.expect("->", after="the request fields")
            rep = self.message(f"'{name.text}' reply", pages_ok=True)
        self.expect(";", after=f"op '{name.text}'")
        return Op(name.text, oid, version, req, rep, t.loc)

    def message(self, what: str, pages_ok: bool) -> Message:
        start = self.expect("(")
        fields: list[Field] = []
        seen: dict[str, Field] = {}
        if self.tok.text != ")":
            while True:
                f = self.field()
                if f.name in seen:
                    raise SpecError(f.loc, f"field '{f.name}' is already in the {what} "
                                           f"({seen[f.name].loc})")
                seen[f.name] = f
                fields.append(f)
                if self.tok.text != ",":
                    break
                self.next()
        if self.tok.text != ")":
            raise self.fail("',' or ')'")
        self.next()
        for i, f in enumerate(fields):
            if not isinstance(f.type, PagesType):
                continue
            if not pages_ok:
                raise SpecError(f.loc, f"pages<N> field '{f.name}' in the {what}: only calls "
                                       "carry pages")
            if i != len(fields) - 1:
                raise SpecError(f.loc, f"pages<N> field '{f.name}' must be the last field of "
                                       f"the {what}")
        msg = Message(tuple(fields), start.loc)
        if msg.max_size > frame.ICS_MAX_BODY:
            raise SpecError(start.loc, f"the {what} can be {msg.max_size} bytes packed, more "
                                       f"than ICS_MAX_BODY ({frame.ICS_MAX_BODY})")
        names.check_message(msg)
        return msg

    def field(self) -> Field:
        t = self.tok
        ftype = self.type()
        name = self.name("field name")
        return Field(name.text, ftype, t.loc)

    def int_type(self) -> ScalarType:
        t = self.tok
        if t.kind != "word" or t.text not in INT_TYPES:
            raise self.fail("an integer type (u8 u16 u32 u64 s8 s16 s32 s64)")
        self.next()
        return ScalarType(INT_TYPES[t.text])

    def type(self) -> FieldType:
        t = self.tok
        if t.kind == "word" and t.text in INT_TYPES:
            return self.int_type()
        if t.kind == "word" and t.text in ("bytes", "string"):
            self.next()
            self.expect("<")
            bound, _ = self.number(f"{t.text} bound", 1, MAX_BLOB)
            self.expect(">")
            return BytesType(bound) if t.text == "bytes" else StringType(bound)
        if t.kind == "word" and t.text == "pages":
            self.next()
            self.expect("<")
            bound, _ = self.number("pages bound", 1, frame.ICS_MAX_PAGES)
            self.expect(">")
            return PagesType(bound)
        if t.kind == "word" and t.text == "array":
            self.next()
            self.expect("<")
            elem = self.int_type().int_type
            self.expect(",")
            bound, _ = self.number("array bound", 1, MAX_ARRAY)
            self.expect(">")
            return ArrayType(elem, bound)
        after = self.toks[self.i + 1]
        if t.kind == "word" and (after.kind == "word" or after.text == "<"):
            raise SpecError(t.loc, f"unknown type '{t.text}' (types: u8 u16 u32 u64 s8 s16 "
                                   "s32 s64 bytes<N> string<N> array<T, N> pages<N>)")
        raise self.fail("a field type")


def parse(text: str, file: str) -> Service:
    """Parse and check one spec; ``file`` names it in messages and comments."""
    p = _Parser(tokenize(text, file))
    svc = p.service(Path(file).name)
    names.check_service(svc)
    return svc


def parse_file(path: Path) -> Service:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(Loc(str(path), 0, 0), f"cannot read spec: {e}") from e
    return parse(text, str(path))
