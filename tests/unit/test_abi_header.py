"""abi.header: the ABI header is parsed, not duplicated; checked against gcc."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import abi
from abi import header

REPO = Path(__file__).resolve().parents[2]


def test_shipped_header_is_the_repo_header() -> None:
    assert header.header_path().resolve() == (REPO / "abi" / "ssi_abi.h").resolve()


def test_constants_from_shipped_header() -> None:
    c = header.constants()
    for name in (
        "SSI_ABI_VERSION",
        "__NR_ssi_rexec",
        "__NR_ssi_rfork",
        "__NR_ssi_migrate",
        "__NR_ssisys",
        "SSI_MAX_NODES",
        "SSISYS_ABI_VERSION",
        "SSISYS_NODE_NUM",
        "SSISYS_MAX_NODES",
        "SSISYS_NR_CMDS",
    ):
        assert isinstance(c[name], int), name
    # The include guard has no value and is not a constant.
    assert "_UAPI_LINUX_SSI_H" not in c


def test_binding_exports_match_header() -> None:
    c = header.constants()
    assert c["__NR_ssi_rexec"] == abi.NR_SSI_REXEC
    assert c["__NR_ssi_rfork"] == abi.NR_SSI_RFORK
    assert c["__NR_ssi_migrate"] == abi.NR_SSI_MIGRATE
    assert c["__NR_ssisys"] == abi.NR_SSISYS
    assert c["SSI_MAX_NODES"] == abi.SSI_MAX_NODES
    assert c["SSISYS_NODE_NUM"] == abi.SSISYS_NODE_NUM
    assert c["SSI_ABI_VERSION"] == abi.SSI_ABI_VERSION


def test_no_number_is_duplicated_in_python_sources() -> None:
    """The binding must read the numbers from the header, never spell them."""
    c = header.constants()
    nrs = {str(c[k]) for k in c if k.startswith("__NR_")}
    for src in (REPO / "abi").glob("*.py"):
        text = src.read_text()
        for nr in nrs:
            assert not re.search(rf"\b{nr}\b", text), f"{src.name} spells syscall number {nr}"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_constants_agree_with_the_c_preprocessor(tmp_path: Path) -> None:
    c = header.constants()
    prog = tmp_path / "p.c"
    prog.write_text(
        f'#include <stdio.h>\n#include "{header.header_path()}"\nint main(void) {{\n'
        + "".join(f'printf("{k} %lld\\n", (long long)({k}));\n' for k in c)
        + "return 0; }\n"
    )
    exe = tmp_path / "p"
    subprocess.run(["gcc", "-o", str(exe), str(prog)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    got = {k: int(v) for k, v in (ln.split() for ln in out.splitlines())}
    assert got == dict(c)


def test_parse_literal_forms() -> None:
    text = """
    #ifndef GUARD
    #define GUARD
    #define A 10 /* comment */
    #define B 0x1F // comment
    #define C 017
    #define D 0
    #define E 42UL
    #define F (7)
    #  define G\t3
    #define H \\
        5
    #define MAC(x) ((x) + 1)
    /* #define NOT_ME 99 */
    #endif
    """
    assert header.parse_defines(text) == {
        "A": 10,
        "B": 31,
        "C": 15,
        "D": 0,
        "E": 42,
        "F": 7,
        "G": 3,
        "H": 5,
    }


def test_non_literal_define_is_an_error_with_line_number() -> None:
    with pytest.raises(header.HeaderError, match=r"ssi_abi.h:3: #define X .*not an integer"):
        header.parse_defines("#define A 1\n\n#define X (A + 1)\n")


def test_conflicting_redefinition_is_an_error() -> None:
    assert header.parse_defines("#define A 1\n#define A 1\n") == {"A": 1}
    with pytest.raises(header.HeaderError, match="redefined"):
        header.parse_defines("#define A 1\n#define A 2\n")


def test_require_missing_constant_says_what_to_do() -> None:
    with pytest.raises(header.HeaderError, match="does not define SSI_NOPE"):
        header.require("SSI_NOPE")


def test_name_maps() -> None:
    assert header.syscall_names()[abi.NR_SSISYS] == "ssisys"
    assert header.syscall_names()[abi.NR_SSI_RFORK] == "ssi_rfork"
    cmds = header.ssisys_commands()
    assert cmds[abi.SSISYS_NODE_NUM] == "SSISYS_NODE_NUM"
    assert "SSISYS_NR_CMDS" not in cmds.values()


STRUCT_HEADER = """
/* a future header with a struct */
#ifndef X_H
#define X_H
#include <linux/types.h>
#define SSI_FOO 3
struct ssi_node_info {
    __u32 node;        /* node number */
    __u32 state;
    __aligned_u64 addr;
    __s16 port;
    __u8 flags[6];
};
#endif
"""


def test_cdef_source_keeps_declarations_only() -> None:
    src = header.cdef_source(STRUCT_HEADER)
    assert "#" not in src and "/*" not in src
    assert "struct ssi_node_info" in src


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_struct_layout_matches_gcc(tmp_path: Path) -> None:
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(header.UAPI_TYPEDEFS)
    ffi.cdef(header.cdef_source(STRUCT_HEADER))
    h = tmp_path / "x.h"
    h.write_text(STRUCT_HEADER)
    prog = tmp_path / "p.c"
    fields = ("node", "state", "addr", "port", "flags")
    prog.write_text(
        f'#include <stdio.h>\n#include <stddef.h>\n#include "{h}"\nint main(void) {{\n'
        'printf("%zu", sizeof(struct ssi_node_info));\n'
        + "".join(f'printf(" %zu", offsetof(struct ssi_node_info, {f}));\n' for f in fields)
        + "return 0; }\n"
    )
    exe = tmp_path / "p"
    subprocess.run(["gcc", "-o", str(exe), str(prog)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    expect = [ffi.sizeof("struct ssi_node_info")]
    expect += [ffi.offsetof("struct ssi_node_info", f) for f in fields]
    assert [int(x) for x in out] == expect


def _gcc_layout(tmp_path: Path, include: Path, structs: dict[str, list[str]]) -> list[int]:
    prog = tmp_path / "layout.c"
    body = ""
    for name, fields in structs.items():
        body += f'printf("%zu\\n", sizeof(struct {name}));\n'
        body += "".join(f'printf("%zu\\n", offsetof(struct {name}, {f}));\n' for f in fields)
    prog.write_text(
        f'#include <stdio.h>\n#include <stddef.h>\n#include "{include}"\n'
        f"int main(void) {{\n{body}return 0; }}\n"
    )
    exe = tmp_path / "layout"
    subprocess.run(["gcc", "-o", str(exe), str(prog)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_shipped_structs_match_gcc(tmp_path: Path) -> None:
    """Every struct of the shipped header has the same layout in cffi and in C."""
    ffi = abi.ffi()
    names = re.findall(r"^struct\s+(\w+)\s*\{", header.header_text(), re.MULTILINE)
    structs = {n: [f for f, _ in ffi.typeof(f"struct {n}").fields] for n in names}
    if not structs:
        pytest.skip("the header declares no structs")
    expect: list[int] = []
    for n, fields in structs.items():
        expect.append(ffi.sizeof(f"struct {n}"))
        expect += [ffi.offsetof(f"struct {n}", f) for f in fields]
    assert _gcc_layout(tmp_path, header.header_path(), structs) == expect
