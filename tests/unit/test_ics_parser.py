"""genmod.ics parser: the shipped ics_test spec, and bad specs with file:line:col errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genmod.errors import GenmodError
from genmod.ics import names, parse, parse_file
from genmod.ics.model import (
    ArrayType,
    BytesType,
    Chan,
    PagesType,
    ScalarType,
    SpecError,
    StringType,
)

REPO = Path(__file__).resolve().parents[2]
ICS_TEST = REPO / "kernel" / "ics" / "ics_test.ics"
HEAD = "service t 7 chan prio;\n"


def test_ics_test_spec() -> None:
    svc = parse_file(ICS_TEST)
    assert (svc.name, svc.id, svc.chan, svc.source) == ("ics_test", 1, Chan.BULK, "ics_test.ics")
    assert [(op.name, op.id, op.version, op.oneway) for op in svc.ops] == [
        ("null", 1, 1, False), ("echo", 2, 1, False), ("ping", 3, 1, True), ("info", 4, 1, False),
        ("echo_pages", 5, 1, False),
    ]
    null, echo, ping, info, echo_pages = svc.ops
    assert null.req.empty and null.rep is not None and null.rep.empty
    assert [f.name for f in echo.req.fields] == ["seq", "data"]
    assert echo.req.fields[1].type == BytesType(65536)
    assert echo.req.max_size == 4 + 4 + 65536 and echo.req.min_size == 8
    assert ping.rep is None and ping.req.max_size == 12
    # pages travel after the packed message: only their count is in it
    assert echo_pages.paged and not echo.paged
    assert echo_pages.req.pages is not None and echo_pages.req.pages.type == PagesType(16)
    assert echo_pages.req.max_size == 4 + 4 and [f.name for f in echo_pages.req.head.fields] == [
        "seq"]
    assert info.rep is not None
    node, release, peers = info.rep.fields
    assert isinstance(node.type, ScalarType) and node.type.int_type.name == "u32"
    assert release.type == StringType(64)
    assert isinstance(peers.type, ArrayType) and peers.type.bound == 63
    assert info.rep.max_size == 4 + (4 + 64) + (4 + 63 * 4)


def test_all_types_comments_and_layout() -> None:
    svc = parse(
        "# leading comment\n"
        "service  zoo\t65535 chan prio ; # trailing\n"
        "call a 65535 v65535 (u8 a, u16 b, u32 c, u64 d, s8 e, s16 f, s32 g, s64 h)\n"
        "    -> (array<s16, 65536> x, bytes<1> y, string<2> z);\n"
        "oneway b 1 v1();\n",
        "zoo.ics",
    )
    a, b = svc.ops
    assert a.req.max_size == 1 + 2 + 4 + 8 + 1 + 2 + 4 + 8
    assert a.rep is not None and a.rep.max_size == 4 + 2 * 65536 + 5 + 6
    assert b.oneway and b.req.empty


def _err(text: str) -> str:
    with pytest.raises(SpecError) as ei:
        parse(text, "bad.ics")
    msg = str(ei.value)
    assert re.match(r"bad\.ics:\d+:\d+: \S", msg), msg
    assert isinstance(ei.value, GenmodError)
    return msg


BAD = [
    # (spec, expected message prefix "bad.ics:LINE:COL: ..." as a regex)
    (HEAD + "call a 1 v1 () -> ();\ncall b 1 v1 () -> ();\n",
     r"bad.ics:3:1: op id 1 of 'b' is already used by 'a' \(bad.ics:2:1\)"),
    (HEAD + "call a 1 v1 () -> ();\noneway a 2 v1 ();\n",
     r"bad.ics:3:1: op 'a' is already defined at bad.ics:2:1"),
    (HEAD + "call a 1 v1 (u32 x, u8 x) -> ();\n",
     r"bad.ics:2:21: field 'x' is already in the 'a' request \(bad.ics:2:14\)"),
    (HEAD + "call a 1 v1 (u128 x) -> ();\n", r"bad.ics:2:14: unknown type 'u128'"),
    (HEAD + "call a 1 v1 (blob<3> x) -> ();\n", r"bad.ics:2:14: unknown type 'blob'"),
    (HEAD + "call a 1 v1 () -> ()\ncall b 2 v1 () -> ();\n",
     r"bad.ics:2:21: expected ';' after op 'a', found 'call'"),
    ("service t 7 chan prio\ncall a 1 v1 () -> ();\n",
     r"bad.ics:1:22: expected ';' after the service declaration, found 'call'"),
    (HEAD + "oneway a 1 v1 (u8 x)", r"bad.ics:2:21: expected ';' after op 'a', found end of file"),
    (HEAD + "call a 1 v1 (bytes<0> x) -> ();\n", r"bad.ics:2:20: bytes bound 0 out of range"),
    (HEAD + "call a 1 v1 (string<0> x) -> ();\n", r"bad.ics:2:21: string bound 0 out of range"),
    (HEAD + "call a 1 v1 (array<u8, 0> x) -> ();\n", r"bad.ics:2:24: array bound 0 out of range"),
    (HEAD + "call a 1 v1 (array<u8, 65537> x) -> ();\n",
     r"bad.ics:2:24: array bound 65537 out of range 1\.\.65536"),
    (HEAD + "call a 1 v1 (bytes<262145> x) -> ();\n",
     r"bad.ics:2:20: bytes bound 262145 out of range 1\.\.262144"),
    (HEAD + "call a 1 v1 (bytes<262144> x) -> ();\n",
     r"bad.ics:2:13: the 'a' request can be 262148 bytes packed, more than ICS_MAX_BODY "
     r"\(262144\)"),
    (HEAD + "call a 1 v1 () -> (bytes<200000> x, array<u64, 8000> y);\n",
     r"bad.ics:2:19: the 'a' reply can be 264008 bytes packed, more than ICS_MAX_BODY"),
    (HEAD + "call a 1 v1 (array<s8, 3> x, u8) -> ();\n",
     r"bad.ics:2:32: expected field name, found '\)'"),
    (HEAD + "call a 1 v1 (array<bytes, 3> x) -> ();\n", r"bad.ics:2:20: expected an integer type"),
    (HEAD + "call a 1 v1 (u8 x,) -> ();\n", r"bad.ics:2:19: expected a field type, found '\)'"),
    (HEAD + "call a 1 v1 (u8 x u8 y) -> ();\n", r"bad.ics:2:19: expected ',' or '\)', found 'u8'"),
    (HEAD + "call a 0 v1 () -> ();\n", r"bad.ics:2:8: op id 0 out of range 1\.\.65535"),
    (HEAD + "call a 65536 v1 () -> ();\n", r"bad.ics:2:8: op id 65536 out of range"),
    (HEAD + "call a 1 v0 () -> ();\n", r"bad.ics:2:10: version v0 out of range v1\.\.v65535"),
    (HEAD + "call a 1 1 () -> ();\n", r"bad.ics:2:10: expected a version 'v<N>', found '1'"),
    (HEAD + "call a 1 v1 ();\n", r"bad.ics:2:15: expected '->' after the request fields"),
    (HEAD + "oneway a 1 v1 () -> ();\n", r"bad.ics:2:17: expected ';' after op 'a', found '->'"),
    ("service t 0 chan prio;\ncall a 1 v1 () -> ();\n", r"bad.ics:1:11: service id 0 out of"),
    ("service t 70000 chan prio;\n", r"bad.ics:1:11: service id 70000 out of range 1\.\.65535"),
    ("service t 1 chan fast;\n", r"bad.ics:1:18: expected channel 'prio' or 'bulk', found 'fast'"),
    ("service t 1 chan bulk;\n", r"bad.ics:1:1: service 't' has no ops"),
    ("", r"bad.ics:1:1: expected 'service <name> <id> chan <prio\|bulk>;' first, found end of"),
    ("call a 1 v1 () -> ();\n", r"bad.ics:1:1: expected 'service"),
    (HEAD + "call a 1 v1 () -> ();\nservice u 8 chan prio;\n",
     r"bad.ics:3:1: only one 'service' declaration per spec"),
    (HEAD + "call a 1 v1 () -> ();\nrpc b 2 v1 () -> ();\n",
     r"bad.ics:3:1: expected 'call' or 'oneway', found 'rpc'"),
    ("service Tst 1 chan prio;\n", r"bad.ics:1:9: service name 'Tst' must be a lower-case C"),
    ("service _t 1 chan prio;\n", r"bad.ics:1:9: service name '_t' must be a lower-case C"),
    (HEAD + "call int 1 v1 () -> ();\n", r"bad.ics:2:6: op name 'int' is a C keyword"),
    (HEAD + "call a 1 v1 (u8 struct) -> ();\n",
     r"bad.ics:2:17: field name 'struct' is a C keyword"),
    (HEAD + "call a 1 v1 (u8 current) -> ();\n", r"bad.ics:2:17: field name 'current' is a C "
                                                 r"keyword or a reserved kernel name"),
    (HEAD + "call a 1 v1 (u8 u32) -> ();\n", r"bad.ics:2:17: field name 'u32' is a C keyword"),
    (HEAD + "call a 1 v1 (u8 x) -> ();\n@\n", r"bad.ics:3:1: unexpected character '@'"),
    (HEAD + "call a 12ab v1 () -> ();\n", r"bad.ics:2:8: bad number '12ab'"),
    # generated names that would collide
    (HEAD + "call a 1 v1 (bytes<4> data, u32 data_len) -> ();\n",
     r"bad.ics:2:29: C struct member 'data_len' collides with the one from bad.ics:2:14"),
    (HEAD + "call a 1 v1 (array<u8, 4> x, u8 x_count) -> ();\n",
     r"bad.ics:2:30: C struct member 'x_count' collides"),
    (HEAD + "oneway a 1 v1 (u8 from, u8 from_);\n",
     r"bad.ics:2:25: Python field name 'from_' collides with the one from bad.ics:2:16"),
    (HEAD + "call srv 1 v1 () -> ();\ncall dispatch 2 v1 () -> ();\n",
     r"bad.ics:3:1: generated C name 't_srv_dispatch' collides with the one from bad.ics:2:1"),
    (HEAD + "call x 1 v1 () -> ();\ncall x_version 2 v1 () -> ();\n",
     r"bad.ics:3:1: generated C name 'T_ICS_OP_X_VERSION' collides"),
    ("service set 1 chan prio;\noneway peer 1 v1 ();\n",
     r"bad.ics:2:1: generated C name 'ics_set_peer' collides with the one from ics.h"),
    (HEAD + "call a_b 1 v1 () -> ();\ncall a__b 2 v1 () -> ();\n",
     r"bad.ics:3:1: generated Python class 'ABReq' collides"),
    # pages<N>: calls only, the last field, at most ICS_MAX_PAGES
    (HEAD + "oneway a 1 v1 (pages<4> p);\n",
     r"bad.ics:2:16: pages<N> field 'p' in the 'a' message: only calls carry pages"),
    (HEAD + "call a 1 v1 (pages<4> p, u8 x) -> ();\n",
     r"bad.ics:2:14: pages<N> field 'p' must be the last field of the 'a' request"),
    (HEAD + "call a 1 v1 () -> (pages<4> p, pages<4> q);\n",
     r"bad.ics:2:20: pages<N> field 'p' must be the last field of the 'a' reply"),
    (HEAD + "call a 1 v1 (pages<257> p) -> ();\n",
     r"bad.ics:2:20: pages bound 257 out of range 1\.\.256"),
    (HEAD + "call a 1 v1 (u32 p_count, pages<4> p) -> ();\n",
     r"bad.ics:2:27: C struct member 'p_count' collides with the one from bad.ics:2:14"),
]


@pytest.mark.parametrize(("text", "pattern"), BAD, ids=[p[:60] for _, p in BAD])
def test_bad_spec(text: str, pattern: str) -> None:
    msg = _err(text)
    assert re.match(pattern, msg), msg


def test_python_keyword_fields_are_renamed_not_rejected() -> None:
    svc = parse(HEAD + "call a 1 v1 (u32 from, bytes<3> pack, string<2> class) -> (u8 self);\n",
                "k.ics")
    op = svc.ops[0]
    assert [names.py_field(f) for f in op.req.fields] == ["from_", "pack_", "class_"]
    assert op.rep is not None and names.py_field(op.rep.fields[0]) == "self_"


def test_unreadable_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.ics:0:0: cannot read spec"):
        parse_file(tmp_path / "nope.ics")


def test_cross_service_checks() -> None:
    a = parse("service a 5 chan prio;\noneway x 1 v1 ();\n", "a.ics")
    b = parse("service b 5 chan prio;\noneway x 1 v1 ();\n", "b.ics")
    c = parse("service a_b 6 chan prio;\noneway x 1 v1 ();\n", "c.ics")
    d = parse("service a 7 chan prio;\noneway b_x 1 v1 ();\n", "d.ics")
    names.check_services([a, c])
    with pytest.raises(SpecError, match=r"b.ics:1:1: service id 5 is also used by service 'a'"):
        names.check_services([a, b])
    # a_b.x and a.b_x both make A_B_X_REQ_MAX and ics_a_b_x.
    with pytest.raises(SpecError, match=r"d.ics:2:1: generated C name .* collides .* c.ics:2:1"):
        names.check_services([c, d])


def test_ics_h_names_cover_ics_h() -> None:
    """Every function and struct ics.h declares is in names.ICS_H_NAMES."""
    header = REPO / "kernel" / "include" / "ics.h"
    if not header.is_file():
        header = REPO / "kernel" / "ics" / "ics.h"
    text = header.read_text()
    declared = set(re.findall(r"^\w[\w ]*?\**\b(ics_\w+)\(", text, re.M))
    declared |= set(re.findall(r"^(?:struct|enum) (ics_\w+) \{", text, re.M))
    assert declared and declared <= names.ICS_H_NAMES, declared - names.ICS_H_NAMES
