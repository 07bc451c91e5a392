"""ssictl.kmod: .modinfo parsing, dependency order, /proc and kmsg parsing."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from ssictl import kmod

HAVE_GCC = shutil.which("gcc") is not None


def build_ko(
    tmp: Path,
    fname: str,
    modinfo: list[str],
    *,
    extra_cflags: tuple[str, ...] = (),
) -> Path:
    """A relocatable ELF with a .modinfo section laid out as the kernel build does."""
    src = tmp / (fname + ".c")
    body = "".join(
        f'static const char mi{i}[] __attribute__((used, section(".modinfo"), aligned(1)))'
        f" = {json_c(s)};\n"
        for i, s in enumerate(modinfo)
    )
    src.write_text(body + "int init_module(void) { return 0; }\n")
    out = tmp / fname
    subprocess.run(["gcc", "-c", "-o", str(out), str(src), *extra_cflags], check=True)
    return out


def json_c(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_elf(sections: dict[str, bytes], *, bits: int = 64, big: bool = False) -> bytes:
    """A minimal ELF (no program headers) with the given sections, built by hand."""
    e = ">" if big else "<"
    order = [*sections, ".shstrtab"]
    names = b"\0"
    name_off = {}
    for n in order:
        name_off[n] = len(names)
        names += n.encode() + b"\0"
    blobs = {**sections, ".shstrtab": names}
    ehsize, shentsize = (64, 64) if bits == 64 else (52, 40)
    data = bytearray(ehsize)
    offsets = {}
    for n in order:
        offsets[n] = len(data)
        data += blobs[n]
    while len(data) % 8:
        data += b"\0"
    shoff = len(data)
    shnum = len(order) + 1
    shdrs = bytearray(shentsize)  # section 0: SHN_UNDEF
    for n in order:
        typ = 3 if n == ".shstrtab" else 1
        if bits == 64:
            shdrs += struct.pack(
                e + "IIQQQQIIQQ", name_off[n], typ, 0, 0, offsets[n], len(blobs[n]), 0, 0, 1, 0
            )
        else:
            shdrs += struct.pack(
                e + "IIIIIIIIII", name_off[n], typ, 0, 0, offsets[n], len(blobs[n]), 0, 0, 1, 0
            )
    data += shdrs
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 2 if big else 1, 1]) + bytes(9)
    if bits == 64:
        hdr = struct.pack(
            e + "HHIQQQIHHHHHH",
            1,
            62,
            1,
            0,
            0,
            shoff,
            0,
            ehsize,
            0,
            0,
            shentsize,
            shnum,
            shnum - 1,
        )
    else:
        hdr = struct.pack(
            e + "HHIIIIIHHHHHH",
            1,
            3,
            1,
            0,
            0,
            shoff,
            0,
            ehsize,
            0,
            0,
            shentsize,
            shnum,
            shnum - 1,
        )
    data[: len(ident) + len(hdr)] = ident + hdr
    return bytes(data)


MODINFO = [
    "license=GPL",
    "alias=ssi-clms",
    "alias=clms",
    "depends=ssi_core,ssi-ics",
    "retpoline=Y",
    "name=ssi_clms",
    "vermagic=6.1.0-ssi SMP mod_unload ",
]


# --------------------------------------------------------------------------- modinfo


@pytest.mark.skipif(not HAVE_GCC, reason="needs gcc")
def test_modinfo_of_gcc_built_module(tmp_path: Path) -> None:
    ko = build_ko(tmp_path, "ssi-clms.ko", MODINFO)
    info = kmod.read_modinfo(ko)
    assert info["name"] == ["ssi_clms"]
    assert info["alias"] == ["ssi-clms", "clms"]
    assert info["depends"] == ["ssi_core,ssi-ics"]
    mod = kmod.ModuleFile.from_path(ko)
    assert mod.name == "ssi_clms"
    assert mod.depends == ("ssi_core", "ssi_ics")
    assert mod.vermagic.startswith("6.1.0-ssi ")


@pytest.mark.skipif(not HAVE_GCC or shutil.which("modinfo") is None, reason="needs gcc, modinfo")
def test_modinfo_agrees_with_kmod(tmp_path: Path) -> None:
    ko = build_ko(tmp_path, "x.ko", MODINFO)
    info = kmod.read_modinfo(ko)
    for key in ("depends", "name", "license", "alias"):
        r = subprocess.run(
            ["modinfo", "-F", key, str(ko)], capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            pytest.skip(f"modinfo cannot read a plain .o here: {r.stderr.strip()}")
        assert r.stdout.splitlines() == info[key], key


@pytest.mark.skipif(not HAVE_GCC, reason="needs gcc")
def test_modinfo_of_32bit_gcc_object(tmp_path: Path) -> None:
    try:
        ko = build_ko(tmp_path, "m32.ko", MODINFO, extra_cflags=("-m32",))
    except subprocess.CalledProcessError:
        pytest.skip("gcc -m32 not available")
    assert kmod.read_modinfo(ko)["name"] == ["ssi_clms"]


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("big", [False, True])
def test_modinfo_of_hand_built_elf(tmp_path: Path, bits: int, big: bool) -> None:
    section = b"name=a\0\0\0depends=\0vermagic=6.1 SMP\0"
    path = tmp_path / "a.ko"
    path.write_bytes(make_elf({".text": b"\x90" * 5, ".modinfo": section}, bits=bits, big=big))
    mod = kmod.ModuleFile.from_path(path)
    assert (mod.name, mod.depends, mod.vermagic) == ("a", (), "6.1 SMP")


def test_name_falls_back_to_file_name(tmp_path: Path) -> None:
    path = tmp_path / "ssi-vproc.ko"
    path.write_bytes(make_elf({".modinfo": b"depends=ssi_core\0"}))
    mod = kmod.ModuleFile.from_path(path)
    assert mod.name == "ssi_vproc" and mod.depends == ("ssi_core",)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not an elf at all, just text" * 3, "bad magic"),
        (b"\x7fELF" + bytes(60), "unsupported ELF class"),
        (make_elf({".modinfo": b"name=x\0"})[:80], "past the end"),
        (make_elf({".text": b"\xc3"}), "no .modinfo section"),
    ],
)
def test_bad_files_raise_modinfoerror(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.ko"
    path.write_bytes(content)
    with pytest.raises(kmod.ModinfoError, match=match):
        kmod.read_modinfo(path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(kmod.ModinfoError, match="cannot read"):
        kmod.read_modinfo(tmp_path / "missing.ko")


def test_parse_modinfo_handles_padding_and_repeats() -> None:
    assert kmod.parse_modinfo(b"\0\0a=1\0\0b=x=y\0a=2\0junk\0") == {"a": ["1", "2"], "b": ["x=y"]}


def test_discover_rejects_two_files_for_one_module(tmp_path: Path) -> None:
    (tmp_path / "a.ko").write_bytes(make_elf({".modinfo": b"name=same\0"}))
    (tmp_path / "b.ko").write_bytes(make_elf({".modinfo": b"name=same\0"}))
    with pytest.raises(kmod.ModinfoError, match="two files are module same"):
        kmod.discover(tmp_path)


# --------------------------------------------------------------------------- ordering


def test_toposort_chain_and_diamond() -> None:
    deps = {
        "ssi_vproc": ["ssi_clms", "ssi_ics"],
        "ssi_clms": ["ssi_ics"],
        "ssi_ics": ["ssi_core"],
        "ssi_core": [],
        "ssi_cfs": ["ssi_core", "ssi_ics"],
    }
    order = kmod.toposort(deps)
    assert sorted(order) == sorted(deps)
    for mod, ds in deps.items():
        for d in ds:
            assert order.index(d) < order.index(mod), (d, mod)
    assert order == kmod.toposort(dict(reversed(list(deps.items()))))  # stable
    assert order == ["ssi_core", "ssi_ics", "ssi_cfs", "ssi_clms", "ssi_vproc"]


def test_toposort_ignores_external_deps() -> None:
    assert kmod.toposort({"a": ["crc32c", "b"], "b": ["libcrc"]}) == ["b", "a"]


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": ["a"]}, ["a", "a"]),
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"c": ["a"], "b": ["c"], "a": ["b"]}, ["a", "b", "c", "a"]),  # any insertion order
        ({"b": ["a"], "a": ["b"], "z": []}, ["a", "b", "a"]),
    ],
)
def test_toposort_detects_cycles(deps: dict[str, list[str]], cycle: list[str]) -> None:
    with pytest.raises(kmod.CycleError) as ei:
        kmod.toposort(deps)
    assert ei.value.cycle == cycle
    assert str(ei.value) == "dependency cycle: " + " -> ".join(cycle)


def test_toposort_deep_chain_has_no_recursion_limit() -> None:
    n = 5000
    deps = {f"m{i}": [f"m{i - 1}"] if i else [] for i in range(n)}
    order = kmod.toposort(deps)
    assert order == [f"m{i}" for i in range(n)]


def test_closure() -> None:
    assert kmod.closure(["a"], {"a": ["b"], "b": ["c"], "d": ["a"]}) == {"a", "b", "c"}


# --------------------------------------------------------------------------- /proc, /sys, kmsg

PROC_MODULES = """\
ssi_clms 16384 0 - Live 0x0000000000000000
ssi_ics 20480 1 ssi_clms, Live 0x0000000000000000 (O)
ssi_core 12288 2 ssi_ics,ssi_clms, Live 0x0000000000000000 (O)
going 4096 0 - Unloading 0x0000000000000000
nounload 4096 - - Live 0x0
"""


def test_parse_proc_modules() -> None:
    mods = kmod.parse_proc_modules(PROC_MODULES)
    assert mods["ssi_core"] == kmod.LoadedModule(
        "ssi_core", 12288, 2, ("ssi_ics", "ssi_clms"), "Live"
    )
    assert mods["ssi_clms"].used_by == ()
    assert mods["going"].state == "Unloading"
    assert mods["nounload"].refcount == 0


def test_loaded_modules_without_proc_modules(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kmod, "PROC_MODULES", tmp_path / "none")
    assert kmod.loaded_modules() == {}


def test_read_attrs(tmp_path: Path) -> None:
    (tmp_path / "node").write_text("3\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x").write_text("y")
    (tmp_path / "sub" / "deeper").mkdir()
    (tmp_path / "sub" / "deeper" / "z").write_text("no")
    wo = tmp_path / "writeonly"
    wo.write_text("")
    wo.chmod(0o200)
    attrs = kmod.read_attrs(tmp_path)
    assert attrs["node"] == "3" and attrs["sub/x"] == "y"
    assert "sub/deeper/z" not in attrs
    if os.geteuid() != 0:
        assert "writeonly" not in attrs
    assert kmod.read_attrs(tmp_path / "missing") == {}


def test_kmsg_record_parsing_and_filter() -> None:
    rec = b"3,812,23456789,-;ssi_core: Unknown symbol ics_send (err -2)\n SUBSYSTEM=x\n"
    assert kmod._parse_kmsg_record(rec) == "ssi_core: Unknown symbol ics_send (err -2)"
    assert kmod._parse_kmsg_record(b"6,1,2,-;tab\\x09here\n") == "tab\there"
    lines = [
        "ssi_core: Unknown symbol a (err -2)",
        "other: noise",
        "module ssi-core: .gnu.linkonce.this_module section size must match",
        "ssi_core_extra: not me",
    ]
    assert kmod.lines_naming(lines, "ssi_core") == [lines[0], lines[2]]
    assert kmod.lines_naming(lines * 10, "ssi_core", limit=3) == [lines[2], lines[0], lines[2]]


def test_kernel_log_without_kmsg_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(kmod, "DEV_KMSG", tmp_path / "nokmsg")
    monkeypatch.setattr(kmod, "_dmesg_tail", lambda n=50: ["from dmesg"])
    with kmod.KernelLog() as log:
        assert log.new_lines() == ["from dmesg"]


def test_kernel_log_reads_only_new_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A FIFO stands in for /dev/kmsg: one record per read(), EAGAIN when drained.
    fifo = tmp_path / "kmsg"
    os.mkfifo(fifo)
    monkeypatch.setattr(kmod, "DEV_KMSG", fifo)
    monkeypatch.setattr(os, "lseek", lambda fd, pos, how: 0)
    w = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        with kmod.KernelLog() as log:
            os.write(w, b"3,1,1,-;ssi_core: boom\n")
            assert log.new_lines() == ["ssi_core: boom"]
            assert log.new_lines() == []
    finally:
        os.close(w)


def test_kernel_error_text() -> None:
    import errno

    assert str(kmod.KernelError(errno.ENOEXEC)) == "Exec format error (ENOEXEC)"
