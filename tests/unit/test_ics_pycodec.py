"""genmod.ics Python codec: generated module, round trips, errors, DECODERS, lint."""

from __future__ import annotations

import importlib.util
import random
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from genmod.ics import generate, harness, parse, parse_file

REPO = Path(__file__).resolve().parents[2]
ICS_TEST = REPO / "kernel" / "ics" / "ics_test.ics"
VENV_BIN = Path(sys.executable).parent


def load(path: Path) -> ModuleType:
    name = f"_icsgen_{path.stem}_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look the module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("icspy")
    (out / "zoo.ics").write_text(harness.ZOO_SPEC)
    generate(out / "zoo.ics", out)
    generate(ICS_TEST, out)
    return out


@pytest.fixture(scope="module")
def zoo(gen: Path) -> ModuleType:
    return load(gen / "zoo_ics.py")


@pytest.fixture(scope="module")
def ics_test(gen: Path) -> ModuleType:
    return load(gen / "ics_test_ics.py")


def test_constants_and_decoders(zoo: ModuleType, ics_test: ModuleType) -> None:
    assert (ics_test.SERVICE, ics_test.SERVICE_NAME, ics_test.CHAN) == (1, "ics_test", 1)
    assert (ics_test.OP_ECHO, ics_test.OP_ECHO_VERSION, ics_test.OP_PING) == (2, 1, 3)
    assert ics_test.OP_NAMES == {1: "null", 2: "echo", 3: "ping", 4: "info", 5: "echo_pages"}
    assert (ics_test.KIND_CALL, ics_test.KIND_REPLY, ics_test.KIND_ONEWAY) == (1, 2, 3)
    d = ics_test.DECODERS
    assert d[(1, 2, 1, 1)] is ics_test.EchoReq and d[(1, 2, 1, 2)] is ics_test.EchoRep
    assert d[(1, 3, 1, 3)] is ics_test.PingReq and (1, 3, 1, 1) not in d
    assert len(d) == 9
    assert ics_test.EchoReq.MAX_SIZE == 65544 and ics_test.InfoRep.MAX_SIZE == 328
    assert zoo.IntsReq.VERSION == 3 and zoo.NothingReq.KIND == 3 and zoo.SERVICE == 4242
    for (svc, op, ver, kind), cls in {**d, **zoo.DECODERS}.items():
        assert (svc, op, ver, kind) == (cls.SERVICE, cls.OP, cls.VERSION, cls.KIND)


def test_wire_format_pinned(zoo: ModuleType, ics_test: ModuleType) -> None:
    """Independent of both generators: the bytes ICS-SPEC.md describes."""
    ints = zoo.IntsReq(1, 2, 3, 4, -5, -6, -7, -8)
    assert ints.pack() == struct.pack("<BHIQbhiq", 1, 2, 3, 4, -5, -6, -7, -8)
    echo = ics_test.EchoReq(seq=7, data=b"hi")
    assert echo.pack() == b"\x07\0\0\0\x02\0\0\0hi"
    info = ics_test.InfoRep(node=3, release="6.1", peers=(1, 2))
    assert info.pack() == (b"\x03\0\0\0" b"\x03\0\0\x006.1" b"\x02\0\0\0\x01\0\0\0\x02\0\0\0")
    arrays = zoo.ArraysReq(a8=(1, 255), a16=(-1,), b8=(-128,))
    assert arrays.pack() == (b"\x02\0\0\0\x01\xff" b"\x01\0\0\0\xff\xff" + b"\0" * 8
                             + b"\x01\0\0\0\x80" + b"\0" * 4)
    assert ics_test.NullReq().pack() == b"" and ics_test.PingReq(1, 2).pack() == (
        b"\x01" + b"\0" * 7 + b"\x02\0\0\0")


def test_random_round_trips(zoo: ModuleType, ics_test: ModuleType) -> None:
    rng = random.Random(1234)
    for mod, svc in ((zoo, parse(harness.ZOO_SPEC, "zoo.ics")), (ics_test, parse_file(ICS_TEST))):
        for _, cls_name, msg, _ in harness.messages(svc):
            cls = getattr(mod, cls_name)
            for _ in range(50):
                obj = cls(**harness.random_values(msg, rng))
                data = obj.pack()
                assert msg.min_size <= len(data) <= msg.max_size == cls.MAX_SIZE
                assert cls.unpack(data) == obj
                assert cls.unpack(bytearray(data)) == obj


def test_strings_carry_any_non_nul_bytes(zoo: ModuleType) -> None:
    raw = bytes(range(1, 256))
    m = zoo.MixedRep(text=raw[:200].decode("utf-8", "surrogateescape"))
    back = zoo.MixedRep.unpack(m.pack())
    assert back.text.encode("utf-8", "surrogateescape") == raw[:200]
    assert zoo.BlobsReq(s="\u00e9\u00e9").pack()[4 + 4:][:4] == "\u00e9\u00e9".encode()


@pytest.mark.parametrize(("data", "reason"), [
    (b"", r"short body: length of b needs 4 bytes at offset 0, 0 left"),
    (b"\x08\0\0\0" + b"x" * 8, r"length 8 of b over its bound 7"),
    (b"\x03\0\0\0ab", r"short body: data of b needs 3 bytes at offset 4, 2 left"),
    (b"\0\0\0\0\x02\0\0\0a\0\x01", r"NUL inside string s at offset 9"),
    (b"\0\0\0\0\x06\0\0\0abcdef\x01", r"length 6 of s over its bound 5"),
    (b"\0\0\0\0\0\0\0\0", r"short body: value of tail needs 1 bytes at offset 8, 0 left"),
    (b"\0\0\0\0\0\0\0\0\x01\x02", r"1 trailing bytes at offset 9"),
])
def test_unpack_rejects(zoo: ModuleType, data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=r"^BlobsReq: " + reason):
        zoo.BlobsReq.unpack(data)


def test_unpack_rejects_arrays_and_empty(zoo: ModuleType) -> None:
    with pytest.raises(ValueError, match="count 5 of a8 over its bound 4"):
        zoo.ArraysReq.unpack(b"\x05\0\0\0" + b"\0" * 40)
    with pytest.raises(ValueError, match="elements of a16 needs 6 bytes at offset 8, 5 left"):
        zoo.ArraysReq.unpack(b"\0\0\0\0" b"\x03\0\0\0" + b"\0" * 5)
    with pytest.raises(ValueError, match=r"^EmptyRep: 1 trailing bytes at offset 0"):
        zoo.EmptyRep.unpack(b"\0")
    assert zoo.EmptyRep.unpack(b"") == zoo.EmptyRep()


@pytest.mark.parametrize(("cls", "kwargs", "reason"), [
    ("BlobsReq", {"b": b"x" * 8}, r"BlobsReq.b: length 8 over its bound 7"),
    ("BlobsReq", {"b": "str"}, r"BlobsReq.b: str is not bytes"),
    ("BlobsReq", {"s": "abcdef"}, r"BlobsReq.s: length 6 over its bound 5"),
    ("BlobsReq", {"s": "\u00e9\u00e9\u00e9"}, r"BlobsReq.s: length 6 over its bound 5"),
    ("BlobsReq", {"s": "a\0"}, r"BlobsReq.s: NUL inside string"),
    ("BlobsReq", {"s": b"ab"}, r"BlobsReq.s: bytes is not str"),
    ("BlobsReq", {"tail": 256}, r"BlobsReq.tail: 256 is not an integer in 0..255"),
    ("IntsReq", {"e": -129}, r"IntsReq.e: -129 is not an integer in -128..127"),
    ("IntsReq", {"d": 1 << 64}, r"IntsReq.d: .* is not an integer in 0..18446744073709551615"),
    ("IntsReq", {"h": 1.5}, r"IntsReq.h: 1.5 is not an integer"),
    ("ArraysReq", {"a32": (1, 2, 3)}, r"ArraysReq.a32: count 3 over its bound 2"),
    ("ArraysReq", {"a16": (0, 1 << 15)}, r"ArraysReq.a16\[1\]: 32768 is not an integer"),
])
def test_pack_rejects(zoo: ModuleType, cls: str, kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        getattr(zoo, cls)(**kwargs).pack()


def test_python_keyword_fields(zoo: ModuleType) -> None:
    m = zoo.FromReq(from_=1, pack_=b"ab", class_="c")
    assert zoo.FromReq.unpack(m.pack()) == m
    assert zoo.FromRep(self_=(1, 2)).pack() == b"\x02\0\0\0\x01\0\x02\0"


@pytest.mark.skipif(not (VENV_BIN / "ruff").exists() or not (VENV_BIN / "mypy").exists(),
                    reason="ruff/mypy not installed")
def test_generated_python_is_lint_and_mypy_strict_clean(gen: Path) -> None:
    files = [str(gen / "zoo_ics.py"), str(gen / "ics_test_ics.py")]
    ruff = subprocess.run([str(VENV_BIN / "ruff"), "check", "--config",
                           str(REPO / "pyproject.toml"), "--no-cache", *files],
                          capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    mypy = subprocess.run([str(VENV_BIN / "mypy"), "--strict", "--no-incremental",
                           "--cache-dir", str(gen / ".mypy_cache"), *files],
                          capture_output=True, text=True, cwd=gen)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_generated_python_needs_only_the_stdlib(gen: Path) -> None:
    text = (gen / "zoo_ics.py").read_text()
    imports = {ln.split()[1] for ln in text.splitlines() if ln.startswith(("import ", "from "))}
    assert imports <= {"__future__", "dataclasses", "struct", "collections.abc", "typing"}


def test_pages_travel_after_the_message_with_their_count_first(ics_test: ModuleType) -> None:
    """echo_pages: the count of its pages<16> field first, then seq, then the pages."""
    pages = (b"\x01" * 4096, bytes(range(256)) * 16)
    req = ics_test.EchoPagesReq(seq=7, data=pages)
    body = req.pack()
    assert body == b"\x02\0\0\0" + b"\x07\0\0\0" + pages[0] + pages[1]
    assert ics_test.EchoPagesReq.unpack(body) == req
    assert ics_test.EchoPagesReq.MAX_SIZE == 8  # the pages are not in the packed message
    assert ics_test.EchoPagesRep.unpack(b"\0\0\0\0\x05\0\0\0").data == ()
    for bad, why in [(body[:-1], "bytes after the other fields for 2 pages"),
                     (body + b"x", "bytes after the other fields"),
                     (b"\x11\0\0\0" + body[4:], "count 17 of data over its bound 16"),
                     (b"\x01\0", "short body")]:
        with pytest.raises(ValueError, match=why):
            ics_test.EchoPagesReq.unpack(bad)
    with pytest.raises(ValueError, match=r"data\[0\]: not 4096 bytes"):
        ics_test.EchoPagesReq(seq=1, data=(b"short",)).pack()
    with pytest.raises(ValueError, match="count 17 over its bound 16"):
        ics_test.EchoPagesReq(seq=1, data=(b"\0" * 4096,) * 17).pack()
