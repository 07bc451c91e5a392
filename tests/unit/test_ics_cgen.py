"""genmod.ics C generation: generate()/CLI, the API, checkpatch --strict, gcc, a real M= build."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.genmod.kernel_source import built_tree, kernel_subset

from genmod.ics import SpecError, generate, harness, shim_dir

REPO = Path(__file__).resolve().parents[2]
ICS_TEST = REPO / "kernel" / "ics" / "ics_test.ics"
TREE = built_tree()
GCC = shutil.which("gcc")


def ics_h_dir() -> Path:
    for d in (REPO / "kernel" / "include", REPO / "kernel" / "ics"):
        if (d / "ics.h").is_file():
            return d
    pytest.fail("ics.h not found under kernel/")


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("icsc")
    (out / "zoo.ics").write_text(harness.ZOO_SPEC)
    generate(out / "zoo.ics", out)
    generate(ICS_TEST, out)
    return out


def _stamp(paths: list[Path]) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


def test_generate_writes_only_changed_files(tmp_path: Path) -> None:
    spec = tmp_path / "ics_test.ics"
    spec.write_text(ICS_TEST.read_text())
    out = tmp_path / "out"
    paths = generate(spec, out)
    assert [p.name for p in paths] == ["ics_test_ics.h", "ics_test_ics_wire.c",
                                       "ics_test_ics.c", "ics_test_ics.py"]
    before = _stamp(paths)
    assert generate(spec, out) == paths
    assert _stamp(paths) == before
    # A version bump changes the constants, not the code using them.
    spec.write_text(ICS_TEST.read_text().replace("call echo 2 v1", "call echo 2 v2"))
    generate(spec, out)
    after = _stamp(paths)
    changed = {n for n in before if after[n] != before[n]}
    assert changed == {"ics_test_ics.h", "ics_test_ics.py"}
    assert "#define ICS_TEST_ICS_OP_ECHO_VERSION\t2" in (out / "ics_test_ics.h").read_text()
    assert not list(out.glob(".*.tmp"))


def test_bad_spec_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "bad.ics"
    spec.write_text("service bad 1 chan prio;\ncall a 1 v1 (u8 x) -> ()\n")
    with pytest.raises(SpecError, match=r"bad\.ics:2:25: expected ';'"):
        generate(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "genmod.ics", str(ICS_TEST), "--out", str(out)]
    r = subprocess.run([*cmd, "--list"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert [Path(line).name for line in r.stdout.split()] == [
        "ics_test_ics.h", "ics_test_ics_wire.c", "ics_test_ics.c", "ics_test_ics.py"]
    r = subprocess.run([*cmd, "-v"], capture_output=True, text=True, cwd=REPO)
    assert (r.returncode, r.stdout) == (0, "")  # nothing rewritten
    bad = tmp_path / "dup.ics"
    bad.write_text("service dup 1 chan prio;\noneway x 1 v1 ();\n")
    r = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1
    assert re.fullmatch(r".*dup\.ics:1:1: service id 1 is also used by service 'ics_test' "
                        r"\(.*ics_test\.ics:2:1\)\n", r.stderr), r.stderr


def test_cli_usage_error_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "genmod.ics", str(ICS_TEST), "--out",
                        str(tmp_path), "--bogus"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "python -m genmod.ics: error: unrecognized arguments: --bogus (see --help)"]


def test_cli_interrupted_is_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from genmod.ics import __main__ as ics_main

    def interrupted(*_a: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ics_main, "generate_all", interrupted)
    assert ics_main.main([str(ICS_TEST), "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_generated_api(gen: Path) -> None:
    h = (gen / "ics_test_ics.h").read_text()
    for text in [
        "#define ICS_TEST_ICS_SERVICE\t1\n",
        "#define ICS_TEST_ICS_OP_ECHO\t\t2\n",
        "#define ICS_TEST_ICS_OP_ECHO_VERSION\t1\n",
        "#define ICS_TEST_ECHO_REQ_MAX\t\t65544\n",
        "#define ICS_TEST_INFO_REP_MAX\t\t328\n",
        "#define ICS_TEST_PING_REQ_MAX\t\t12\n",
        "struct ics_test_echo_req {\n\tu32 seq;\n\tu32 data_len;\n\tu8 data[65536];\n};\n",
        "struct ics_test_info_rep {\n\tu32 node;\n\tchar release[65];\n\tu32 peers_count;\n"
        "\tu32 peers[63];\n};\n",
        "struct ics_test_null_req {\n};\n",
        "int ics_test_echo_req_pack(const struct ics_test_echo_req *m, u8 *buf,\n\t\t\t   "
        "size_t cap);\n",
        "int ics_test_echo_rep_unpack(struct ics_test_echo_rep *m, const u8 *buf,\n\t\t\t     "
        "size_t len);\n",
        "int ics_ics_test_echo(unsigned int node, const struct ics_test_echo_req *req,\n\t\t      "
        "struct ics_test_echo_rep *rep, unsigned long timeout);\n",
        "int ics_ics_test_ping(unsigned int node, const struct ics_test_ping_req *msg);\n",
        "int ics_test_srv_echo(unsigned int from, const struct ics_test_echo_req *req,\n\t\t      "
        "struct ics_test_echo_rep *rep);\n",
        "void ics_test_srv_ping(unsigned int from, const struct ics_test_ping_req *msg);\n",
        "extern const struct ics_service ics_test_ics_service;\n",
    ]:
        assert text in h, text
    c = (gen / "ics_test_ics.c").read_text()
    assert '#include "ics.h"\n#include "ics_test_ics.h"\n' in c
    assert ".nr_ops = ARRAY_SIZE(ics_test_ics_ops),\n\t.owner = THIS_MODULE,\n" in c
    wire = (gen / "ics_test_ics_wire.c").read_text()
    assert "kmalloc" not in wire and "kvmalloc" not in wire
    called = set(re.findall(r"\b([a-z_0-9]+)\(", wire)) - set(re.findall(
        r"^(?:static )?int (\w+)\(", wire, re.M))
    assert called <= {"get_unaligned_le16", "get_unaligned_le32", "get_unaligned_le64",
                      "put_unaligned_le16", "put_unaligned_le32", "put_unaligned_le64",
                      "memcpy", "memchr", "sizeof", "if", "for"}, called


def _c_files(gen: Path) -> list[Path]:
    return sorted([*gen.glob("*_ics.[ch]"), *gen.glob("*_ics_wire.c")])


@pytest.fixture(scope="session")
def kernel_tree(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kernel_subset(request, tmp_path_factory)


def test_checkpatch_strict_clean(gen: Path, kernel_tree: Path) -> None:
    """checkpatch.pl from the kernel tarball (no unpacked build/linux needed)."""
    checkpatch_pl = kernel_tree / "scripts" / "checkpatch.pl"
    files = _c_files(gen)
    assert len(files) == 6
    for f in files:
        r = subprocess.run(["perl", str(checkpatch_pl), "--strict", "--no-tree", "--no-summary",
                            "--terse", "--show-types", "-f", str(f)],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout == "", f"{f.name}:\n{r.stdout}{r.stderr}"


@pytest.mark.skipif(GCC is None, reason="gcc absent")
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_userspace_gcc_warning_free(gen: Path, tmp_path: Path, opt: str) -> None:
    flags = ["-std=gnu11", opt, "-Wall", "-Wextra", "-Werror", "-Wmissing-prototypes",
             "-Wstrict-prototypes", "-Wshadow", "-Wvla", "-Wpointer-arith", "-Wcast-qual"]
    inc = ["-I", str(shim_dir()), "-I", str(gen), "-I", str(ics_h_dir())]
    for f in _c_files(gen):
        if f.suffix != ".c":
            continue
        r = subprocess.run([str(GCC), *flags, *inc, "-c", str(f), "-o",
                            str(tmp_path / (f.stem + ".o"))], capture_output=True, text=True)
        assert r.returncode == 0 and r.stderr == "", f"{f.name}:\n{r.stderr}"


KMOD_MAIN = r"""
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/errno.h>
#include <linux/module.h>

#include "ics.h"
#include "ics_test_ics.h"
#include "zoo_ics.h"

/* Stand-ins for the ICS core: this module is only built, never loaded. */
int ics_call(unsigned int node, enum ics_chan chan, u16 service, u16 op,
         u16 op_version, const void *req, size_t req_len, void *rep,
         size_t rep_cap, size_t *rep_len, unsigned long timeout)
{
    return -ENOTCONN;
}

int ics_call_take(unsigned int node, enum ics_chan chan, u16 service, u16 op,
          u16 op_version, const void *req, size_t req_len, void **rep,
          size_t rep_cap, size_t *rep_len, unsigned long timeout)
{
    return -ENOTCONN;
}

int ics_send(unsigned int node, enum ics_chan chan, u16 service, u16 op,
         u16 op_version, const void *msg, size_t len)
{
    return -ENOTCONN;
}

int ics_call_pages(unsigned int node, enum ics_chan chan, u16 service, u16 op,
           u16 op_version, const void *req, size_t req_len,
           struct page *const *req_pages, unsigned int nr_req_pages,
           struct ics_msg *rep, size_t rep_cap, unsigned int rep_max_pages,
           unsigned long timeout)
{
    return -ENOTCONN;
}

void ics_put_pages(struct page *const *pages, unsigned int nr)
{
}

#define CALL(svc, op) \
int svc##_srv_##op(unsigned int from, const struct svc##_##op##_req *req, \
           struct svc##_##op##_rep *rep) { return 0; }
#define ONEWAY(svc, op) \
void svc##_srv_##op(unsigned int from, const struct svc##_##op##_req *msg) { }

CALL(ics_test, null) CALL(ics_test, echo) ONEWAY(ics_test, ping) CALL(ics_test, info)
CALL(ics_test, echo_pages)
CALL(zoo, ints) CALL(zoo, blobs) ONEWAY(zoo, arrays) CALL(zoo, empty)
ONEWAY(zoo, nothing) CALL(zoo, from) CALL(zoo, mixed) CALL(zoo, set) CALL(zoo, get)

static int __init icsgen_init(void)
{
    return ics_test_ics_service.nr_ops + zoo_ics_service.nr_ops == 13 ? 0 : -EINVAL;
}

static void __exit icsgen_exit(void)
{
}

module_init(icsgen_init);
module_exit(icsgen_exit);
MODULE_LICENSE("GPL");
"""


@pytest.mark.skipif(not (TREE / "Module.symvers").is_file() or shutil.which("make") is None,
                    reason="M= module builds need a configured and built kernel tree in "
                           "build/linux (make modules); make test runs this")
def test_kernel_module_build_w1(gen: Path, tmp_path: Path) -> None:
    """The generated .c files in a real M= build against build/linux, W=1, -Werror."""
    mod = tmp_path / "mod"
    mod.mkdir()
    for f in _c_files(gen):
        shutil.copy(f, mod / f.name)
    (mod / "icsgen_main.c").write_text(KMOD_MAIN)
    (mod / "Kbuild").write_text(
        "obj-m := icsgen_check.o\n"
        "icsgen_check-y := icsgen_main.o ics_test_ics.o ics_test_ics_wire.o zoo_ics.o "
        "zoo_ics_wire.o\n"
        f"ccflags-y += -I$(src) -I{ics_h_dir()} -Werror\n"
        # The stand-ins above ignore their parameters.
        "CFLAGS_icsgen_main.o += -Wno-unused-parameter\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KBUILD_", "ARCH"))}
    r = subprocess.run(["make", "-C", str(TREE), f"M={mod}", "W=1", f"-j{os.cpu_count() or 1}",
                        "modules"], capture_output=True, text=True, env=env, timeout=600)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]
    assert "warning:" not in log, log[-4000:]
    assert (mod / "icsgen_check.ko").is_file()
