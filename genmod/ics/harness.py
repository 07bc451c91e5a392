"""A C test harness for the generated pack/unpack code, and its Python twin.

:func:`c_source` writes a userspace program (built with ``<svc>_ics_wire.c``
against ``shim/``) that reads commands on stdin, one per line:

``U <index> <hex or ->``
    Unpack the bytes as message ``index`` (see :func:`messages`) from an
    exactly-sized heap buffer into a 0xa5-filled struct.  Prints ``ERR`` for
    -EBADMSG; otherwise repacks into an exactly-sized buffer (it must give
    the same bytes, and -EMSGSIZE with one byte less) and prints
    ``OK <hex of the repacked bytes> <dump>``.  Anything else prints a line
    starting with ``FAIL``.
``X``
    Pack-side bound checks for every length, count and string: at the
    bound packing succeeds with the expected size, one over gives
    -EMSGSIZE.  Prints ``XOK`` or ``FAIL ...`` lines.

:func:`py_dump` renders a decoded Python message like the C ``<dump>``, so
a test can check that C and Python agree on every input.
"""

from __future__ import annotations

import random
from typing import Any

from genmod.ics import cwrap
from genmod.ics import names as N
from genmod.ics.model import (
    ArrayType,
    BytesType,
    Kind,
    Message,
    ScalarType,
    Service,
    StringType,
)

ZOO_SPEC = """\
# genmod.ics test spec: every field type, bounds at the edges, empty
# messages, Python keywords as field names.
service zoo 4242 chan prio;
call ints 1 v3 (u8 a, u16 b, u32 c, u64 d, s8 e, s16 f, s32 g, s64 h) -> (s64 h, u8 a);
call blobs 2 v1 (bytes<7> b, string<5> s, u8 tail) -> (string<3> s1, string<1> s2);
oneway arrays 3 v1 (array<u8, 4> a8, array<s16, 3> a16, array<u32, 2> a32,
                    array<s64, 2> a64, array<s8, 2> b8, array<u16, 1> c16);
call empty 4 v1 () -> ();
oneway nothing 5 v2 ();
call from 6 v1 (u32 from, bytes<3> pack, string<2> class) -> (array<u16, 5> self);
call mixed 7 v1 (u16 x, bytes<1> one, u64 y, string<4> s, array<s32, 3> v, u8 z)
    -> (bytes<300> big, array<u64, 40> many, string<200> text);
call set 8 v1 (u32 v) -> ();
call get 9 v1 () -> (u32 v);
"""
"""A spec using every field type and edge case, for tests."""


def messages(svc: Service) -> list[tuple[str, str, Message, Kind]]:
    """(C struct tag, Python class, message, kind) in harness index order.  Not
    the messages of ops with a pages<N> field, whose pages are struct pages (the
    stub/dispatch loopback test in tests/unit/test_ics_fuzz.py covers them)."""
    out: list[tuple[str, str, Message, Kind]] = []
    for op in svc.ops:
        if op.paged:
            continue
        for which, msg in N.messages(op):
            kind = op.req_kind if which == "req" else Kind.REPLY
            out.append((N.struct_tag(svc, op, which), N.py_class(op, which), msg, kind))
    return out


def _dump_fn(tag: str, msg: Message) -> list[str]:
    unused = "" if msg.fields else " __always_unused"
    out = [f"static void dump_{tag}(const struct {tag} *m{unused})", "{"]
    if any(isinstance(f.type, ArrayType) for f in msg.fields):
        out.append("\tu32 i;")
        out.append("")
    for f in msg.fields:
        t = f.type
        if isinstance(t, ScalarType):
            fmt, cast = ("%lld", "long long") if t.int_type.signed else ("%llu",
                                                                        "unsigned long long")
            out.append(f'\tprintf(" {fmt}", ({cast})m->{f.name});')
        elif isinstance(t, BytesType):
            out += ["\tputchar(' ');", f"\thex(m->{f.name}, m->{f.name}_len);"]
        elif isinstance(t, StringType):
            out += [f"\tif (!memchr(m->{f.name}, 0, sizeof(m->{f.name}))) {{",
                    '\t\tprintf(" UNTERMINATED");', "\t} else {", "\t\tputchar(' ');",
                    f"\t\thex((const u8 *)m->{f.name}, strlen(m->{f.name}));", "\t}"]
        else:
            assert isinstance(t, ArrayType)
            fmt, cast = ("%lld", "long long") if t.elem.signed else ("%llu",
                                                                    "unsigned long long")
            out += ["\tputchar(' ');", f"\tif (!m->{f.name}_count)", "\t\tputchar('-');",
                    f"\tfor (i = 0; i < m->{f.name}_count; i++)",
                    f'\t\tprintf("%s{fmt}", i ? "," : "", ({cast})m->{f.name}[i]);']
    return [*out, "}", ""]


def _run_fn(tag: str) -> list[str]:
    return [
        f"static int run_{tag}(const u8 *in, size_t len)",
        "{",
        f"\tstruct {tag} *m = malloc(sizeof(*m) + 1);",
        "\tu8 *out = malloc(len + 1);",
        "\tint rc, n;",
        "",
        "\tmemset(m, 0xa5, sizeof(*m));",
        f"\trc = {tag}_unpack(m, in, len);",
        "\tif (rc == -EBADMSG) {",
        '\t\tprintf("ERR\\n");',
        "\t\trc = 0;",
        "\t\tgoto out;",
        "\t}",
        "\tif (rc) {",
        f'\t\tprintf("FAIL {tag}_unpack returned %d\\n", rc);',
        "\t\tgoto out;",
        "\t}",
        "\tfree(out);",
        "\tout = malloc(len ? len : 1);",
        f"\tn = {tag}_pack(m, out, len);",
        "\tif (n != (int)len || memcmp(out, in, len)) {",
        f'\t\tprintf("FAIL {tag}_pack gave %d, not the %zu input bytes\\n", n, len);',
        "\t\trc = 1;",
        "\t\tgoto out;",
        "\t}",
        "\tif (len) {",
        "\t\tfree(out);",
        "\t\tout = malloc(len - 1 ? len - 1 : 1);",
        f"\t\tn = {tag}_pack(m, out, len - 1);",
        "\t\tif (n != -EMSGSIZE) {",
        f'\t\t\tprintf("FAIL {tag}_pack into %zu bytes gave %d\\n", len - 1, n);',
        "\t\t\trc = 1;",
        "\t\t\tgoto out;",
        "\t\t}",
        f"\t\tn = {tag}_pack(m, out, 0);",
        "\t\tif (n != -EMSGSIZE) {",
        f'\t\t\tprintf("FAIL {tag}_pack into 0 bytes gave %d\\n", n);',
        "\t\t\trc = 1;",
        "\t\t\tgoto out;",
        "\t\t}",
        "\t}",
        '\tprintf("OK ");',
        "\thex(in, len);",
        f"\tdump_{tag}(m);",
        "\tputchar('\\n');",
        "out:",
        "\tfree(out);",
        "\tfree(m);",
        "\treturn rc;",
        "}",
        "",
    ]


def _bound_checks(tag: str, msg: Message) -> list[str]:
    """A block of check_bounds(): each variable field at and over its bound."""
    if all(isinstance(f.type, ScalarType) for f in msg.fields):
        return []
    out = ["\t{", f"\t\tstruct {tag} *m = malloc(sizeof(*m));", ""]
    for f in msg.fields:
        t = f.type
        if isinstance(t, ScalarType):
            continue
        assert isinstance(t, BytesType | StringType | ArrayType)
        at = msg.min_size + t.max_size - 4
        if isinstance(t, StringType):
            at_set = [f"memset(m->{f.name}, 'a', {t.bound});", f"m->{f.name}[{t.bound}] = 0;"]
            over_set = [f"m->{f.name}[{t.bound}] = 'a';"]
        else:
            lm = N.len_member(f)
            at_set = [f"m->{lm} = {t.bound};"]
            over_set = [f"m->{lm} = {t.bound + 1};"]
        label = f"{tag}.{f.name}"
        out += ["\t\tmemset(m, 0, sizeof(*m));",
                *("\t\t" + s for s in at_set),
                *cwrap.call(f"\t\tcheck(\"{label} at bound\", {tag}_pack",
                            ["m", "buf", f"{msg.max_size}"], f", {at});"),
                *("\t\t" + s for s in over_set),
                *cwrap.call(f"\t\tcheck(\"{label} over bound\", {tag}_pack",
                            ["m", "buf", f"{msg.max_size}"], ", -EMSGSIZE);")]
    return [*out, "\t\tfree(m);", "\t}"]


def c_source(svc: Service) -> str:
    msgs = messages(svc)
    lines = [
        "// SPDX-License-Identifier: GPL-2.0-only",
        f"/* genmod.ics test harness for service {svc.name}; generated. */",
        "#define _GNU_SOURCE",
        "#include <stdio.h>",
        "#include <stdlib.h>",
        "#include <linux/types.h>",
        "#include <linux/errno.h>",
        "#include <linux/string.h>",
        "",
        f'#include "{svc.name}_ics.h"',
        "",
        "static int failed;",
        "",
        "static void hex(const u8 *b, size_t n)",
        "{",
        "\tsize_t i;",
        "",
        "\tif (!n)",
        "\t\tputchar('-');",
        "\tfor (i = 0; i < n; i++)",
        '\t\tprintf("%02x", b[i]);',
        "}",
        "",
        "static void check(const char *what, int got, int want)",
        "{",
        "\tif (got != want) {",
        '\t\tprintf("FAIL %s: got %d, want %d\\n", what, got, want);',
        "\t\tfailed = 1;",
        "\t}",
        "}",
        "",
        "static int nibble(char c)",
        "{",
        "\tif (c >= '0' && c <= '9')",
        "\t\treturn c - '0';",
        "\tif (c >= 'a' && c <= 'f')",
        "\t\treturn c - 'a' + 10;",
        "\treturn -1;",
        "}",
        "",
        "static int unhex(const char *s, u8 *out, size_t *len)",
        "{",
        "\tsize_t n = 0;",
        "\tint hi, lo;",
        "",
        "\tif (s[0] == '-' && (s[1] == '\\0' || s[1] == '\\n')) {",
        "\t\t*len = 0;",
        "\t\treturn 0;",
        "\t}",
        "\twhile (s[0] && s[0] != '\\n') {",
        "\t\thi = nibble(s[0]);",
        "\t\tlo = hi < 0 ? -1 : nibble(s[1]);",
        "\t\tif (lo < 0)",
        "\t\t\treturn -1;",
        "\t\tout[n++] = (u8)(hi << 4 | lo);",
        "\t\ts += 2;",
        "\t}",
        "\t*len = n;",
        "\treturn 0;",
        "}",
        "",
    ]
    max_size = max(m.max_size for _, _, m, _ in msgs)
    for tag, _, msg, _ in msgs:
        lines += _dump_fn(tag, msg)
        lines += _run_fn(tag)
    lines += ["static void check_bounds(void)", "{",
              f"\tstatic u8 buf[{max_size} + 16];", ""]
    for tag, _, msg, _ in msgs:
        lines += _bound_checks(tag, msg)
    lines += ["\tif (!failed)", '\t\tprintf("XOK\\n");', "}", ""]
    lines += [
        "int main(void)",
        "{",
        "\tchar *line = NULL;",
        "\tsize_t cap = 0;",
        "\tu8 *in;",
        "\tsize_t len;",
        "\tint idx, off, rc = 0;",
        "",
        "\twhile (getline(&line, &cap, stdin) > 0) {",
        "\t\tif (line[0] == 'X') {",
        "\t\t\tcheck_bounds();",
        "\t\t\tfflush(stdout);",
        "\t\t\tcontinue;",
        "\t\t}",
        '\t\tif (sscanf(line, "U %d %n", &idx, &off) != 1) {',
        '\t\t\tprintf("FAIL bad command\\n");',
        "\t\t\texit(2);",
        "\t\t}",
        "\t\tin = malloc(cap / 2 + 1);",
        "\t\tif (unhex(line + off, in, &len)) {",
        '\t\t\tprintf("FAIL bad hex\\n");',
        "\t\t\texit(2);",
        "\t\t}",
        "\t\t{",
        "\t\t\tu8 *exact = malloc(len ? len : 1);",
        "",
        "\t\t\tmemcpy(exact, in, len);",
        "\t\t\tswitch (idx) {",
    ]
    for i, (tag, *_rest) in enumerate(msgs):
        lines += [f"\t\t\tcase {i}:", f"\t\t\t\trc |= run_{tag}(exact, len);", "\t\t\t\tbreak;"]
    lines += [
        "\t\t\tdefault:",
        '\t\t\t\tprintf("FAIL bad index %d\\n", idx);',
        "\t\t\t\texit(2);",
        "\t\t\t}",
        "\t\t\tfree(exact);",
        "\t\t}",
        "\t\tfree(in);",
        "\t\tfflush(stdout);",
        "\t}",
        "\tfree(line);",
        "\treturn rc | failed;",
        "}",
        "",
    ]
    return "\n".join(lines)


def py_dump(msg: Message, obj: object) -> str:
    """The C harness's ``<dump>`` of a decoded Python message ``obj``."""
    parts: list[str] = []
    for f in msg.fields:
        v = getattr(obj, N.py_field(f))
        t = f.type
        if isinstance(t, ScalarType):
            parts.append(str(v))
        elif isinstance(t, BytesType):
            parts.append(v.hex() or "-")
        elif isinstance(t, StringType):
            parts.append(v.encode("utf-8", "surrogateescape").hex() or "-")
        else:
            parts.append(",".join(str(x) for x in v) or "-")
    return "".join(" " + p for p in parts)


def _rand_int(rng: random.Random, lo: int, hi: int) -> int:
    r = rng.random()
    if r < 0.3:
        return rng.choice([lo, hi, 0 if lo < 0 else lo + 1, hi - 1, -1 if lo < 0 else 1])
    return rng.randint(lo, hi)


def _rand_len(rng: random.Random, bound: int) -> int:
    r = rng.random()
    if r < 0.25:
        return bound
    if r < 0.4:
        return 0
    return rng.randint(0, min(bound, 64) if rng.random() < 0.8 else bound)


def random_values(msg: Message, rng: random.Random) -> dict[str, Any]:
    """Random valid field values for the Python class of ``msg`` (keyword
    arguments, by Python attribute name); lengths and counts often at 0 or
    at the bound, integers often at the edges of their range."""
    out: dict[str, Any] = {}
    for f in msg.fields:
        t = f.type
        if isinstance(t, ScalarType):
            v: Any = _rand_int(rng, t.int_type.min, t.int_type.max)
        elif isinstance(t, BytesType):
            v = rng.randbytes(_rand_len(rng, t.bound))
        elif isinstance(t, StringType):
            raw = bytes(rng.randint(1, 255) for _ in range(_rand_len(rng, t.bound)))
            v = raw.decode("utf-8", "surrogateescape")
        else:
            assert isinstance(t, ArrayType)
            v = tuple(_rand_int(rng, t.elem.min, t.elem.max)
                      for _ in range(_rand_len(rng, t.bound)))
        out[N.py_field(f)] = v
    return out


def prefix_offsets(msg: Message, data: bytes) -> list[tuple[int, int]]:
    """(offset, bound) of every length/count prefix in a valid encoding."""
    out: list[tuple[int, int]] = []
    off = 0
    for f in msg.fields:
        t = f.type
        if isinstance(t, ScalarType):
            off += t.int_type.size
            continue
        assert isinstance(t, BytesType | StringType | ArrayType)
        n = int.from_bytes(data[off:off + 4], "little")
        out.append((off, t.bound))
        off += 4 + n * (t.elem.size if isinstance(t, ArrayType) else 1)
    return out


def string_spans(msg: Message, data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of the data of every string field in a valid encoding."""
    out: list[tuple[int, int]] = []
    off = 0
    for f in msg.fields:
        t = f.type
        if isinstance(t, ScalarType):
            off += t.int_type.size
            continue
        n = int.from_bytes(data[off:off + 4], "little")
        if isinstance(t, StringType):
            out.append((off + 4, n))
        off += 4 + n * (t.elem.size if isinstance(t, ArrayType) else 1)
    return out
