"""genmod.ics.frame: constants and struct ics_hdr, checked against ics.h by parsing it."""

from __future__ import annotations

import ast
import dataclasses
import operator
import re
import struct
from pathlib import Path

import pytest

from genmod.ics import frame

REPO = Path(__file__).resolve().parents[2]


def ics_h() -> str:
    for p in (REPO / "kernel" / "include" / "ics.h", REPO / "kernel" / "ics" / "ics.h"):
        if p.is_file():
            return re.sub(r"/\*.*?\*/", " ", p.read_text(), flags=re.S)
    pytest.fail("ics.h not found under kernel/")


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.LShift: operator.lshift}


def _eval(expr: str) -> int:
    """Integer constant expressions of ics.h: literals, + - * <<, parentheses."""
    def ev(n: ast.expr) -> int:
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return int(_OPS[type(n.op)](ev(n.left), ev(n.right)))
        raise ValueError(f"not a constant: {expr}")
    return ev(ast.parse(expr.strip(), mode="eval").body)


def header_constants() -> dict[str, int]:
    text = ics_h()
    out: dict[str, int] = {}
    for name, value in re.findall(r"^#define\s+(ICS_\w+)\s+(.+)$", text, re.M):
        out[name] = _eval(value)
    for body in re.findall(r"enum\s+ics_\w+\s*\{(.*?)\}", text, re.S):
        nxt = 0
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, value = item.partition("=")
            nxt = _eval(value) if value else nxt
            out[name.strip()] = nxt
            nxt += 1
    return out


def test_constants_match_ics_h() -> None:
    hdr = header_constants()
    hdr.pop("ICS_SLOW_KERNEL_FACTOR")  # a deadline scale, not part of the wire format
    assert {"ICS_MAGIC", "ICS_MAX_BODY", "ICS_KIND_CALL", "ICS_CHAN_BULK"} <= hdr.keys()
    ours = {k: v for k, v in vars(frame).items() if k.startswith("ICS_") and isinstance(v, int)}
    assert ours == hdr


def test_header_layout_matches_struct_ics_hdr() -> None:
    m = re.search(r"struct ics_hdr \{(.*?)\}\s*__packed;", ics_h(), re.S)
    assert m, "struct ics_hdr ... __packed not found"
    members = re.findall(r"(__le16|__le32|__le64|__u8)\s+(\w+);", m.group(1))
    codes = {"__u8": "B", "__le16": "H", "__le32": "I", "__le64": "Q"}
    assert "<" + "".join(codes[t] for t, _ in members) == frame.HDR_FORMAT
    assert [f.name for f in dataclasses.fields(frame.IcsHdr)] == [n for _, n in members]
    assert struct.calcsize(frame.HDR_FORMAT) == frame.HDR_SIZE == 28


def test_header_round_trip_and_checks() -> None:
    h = frame.IcsHdr.new(frame.ICS_KIND_CALL, 1, 2, 3, 5, xid=0x1122334455667788)
    raw = h.pack()
    assert raw[:4] == b"SSI1" and len(raw) == 28
    assert raw == struct.pack("<IBBHHHIIQ", frame.ICS_MAGIC, 3, 1, 1, 2, 3, 5, 0,
                              0x1122334455667788)
    assert frame.IcsHdr.unpack(raw + b"body!") == h
    h.check()
    split = frame.split_frame(raw + b"body!" + b"next")
    assert split == (h, b"body!", b"next")
    assert frame.split_frame(raw + b"bod") is None
    assert frame.split_frame(raw[:27]) is None
    with pytest.raises(ValueError, match="short header: 27 of 28"):
        frame.IcsHdr.unpack(raw[:27])
    for bad, why in [(dataclasses.replace(h, magic=0), "bad magic"),
                     (dataclasses.replace(h, version=1), "protocol version 1"),
                     (dataclasses.replace(h, kind=9), "unknown kind 9"),
                     (dataclasses.replace(h, len=frame.ICS_MAX_BODY + 1), "over ICS_MAX_BODY"),
                     (dataclasses.replace(h, kind=frame.ICS_KIND_ONEWAY | frame.ICS_KIND_PAGES),
                      "unknown kind 131"),
                     (dataclasses.replace(h, kind=frame.ICS_KIND_CALL | frame.ICS_KIND_PAGES,
                                          len=frame.ICS_MAX_BODY + 256 * 4096 + 1),
                      "over ICS_MAX_BODY and its pages")]:
        with pytest.raises(ValueError, match=why):
            bad.check()
    # a frame with pages may be longer by its pages
    dataclasses.replace(h, kind=frame.ICS_KIND_REPLY | frame.ICS_KIND_PAGES,
                        len=frame.ICS_MAX_BODY + 256 * 4096).check()
    with pytest.raises(ValueError, match="ics_hdr"):
        dataclasses.replace(h, op=1 << 16).pack()
