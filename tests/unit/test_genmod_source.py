"""genmod.source on a synthetic kernel tarball: unpack, patch, refuse, adopt, re-unpack."""

from __future__ import annotations

import shutil
import tarfile
import textwrap
from pathlib import Path

import pytest

from genmod import source
from genmod.errors import GenmodError
from genmod.paths import Paths

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="needs GNU patch")

PID_C = "".join(f"line {i}\n" for i in range(1, 21))

GOOD_PATCH = textwrap.dedent("""\
    From: dev
    Subject: [PATCH] change line 10 and add a file

    ---
    --- a/kernel/pid.c
    +++ b/kernel/pid.c
    @@ -9,3 +9,3 @@
     line 9
    -line 10
    +line ten
     line 11
    --- /dev/null
    +++ b/kernel/ssi/core.c
    @@ -0,0 +1 @@
    +new file
    """)

BAD_PATCH = textwrap.dedent("""\
    --- a/kernel/pid.c
    +++ b/kernel/pid.c
    @@ -2,3 +2,3 @@
     line 2
    -line 3
    +line three
     line 4
    @@ -15,3 +15,3 @@
     line 15
    -no such line
    +whatever
     line 17
    """)


def make_tarball(path: Path, sublevel: int = 192) -> Path:
    staging = path.parent / f"staging-{sublevel}"
    top = staging / "linux-source-6.1"
    (top / "kernel").mkdir(parents=True)
    (top / "include/uapi/linux").mkdir(parents=True)
    (top / "Makefile").write_text(f"# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = {sublevel}\n"
                                  "EXTRAVERSION =\nNAME = Test\n")
    (top / "kernel/pid.c").write_text(PID_C)
    with tarfile.open(path, "w:xz") as tf:
        tf.add(top, arcname="linux-source-6.1")
    shutil.rmtree(staging)
    return path


def make_repo(tmp_path: Path, patches: dict[str, str], tested_on: str = "6.1.192") -> Paths:
    root = tmp_path / "repo"
    (root / "patches").mkdir(parents=True)
    (root / "abi").mkdir()
    (root / "abi/ssi_abi.h").write_text("#define SSI_ABI_VERSION 1\n")
    (root / "pyproject.toml").write_text('[project]\nname = "ssikit"\n')
    series = [f"# tested-on: {tested_on}"]
    for name, text in patches.items():
        (root / "patches" / name).write_text(text)
        series.append(name)
    (root / "patches/series").write_text("\n".join(series) + "\n")
    tarball = make_tarball(tmp_path / "linux-source-6.1.tar.xz")
    return Paths(root=root, build=root / "build", tarball=tarball)


def test_read_series(tmp_path: Path) -> None:
    (tmp_path / "a.patch").write_text("")
    (tmp_path / "b.patch").write_text("")
    (tmp_path / "series").write_text("# comment\n# tested-on: 6.1.192\n\na.patch\n"
                                     "b.patch -p0  # trailing comment\n")
    series = source.read_series(tmp_path)
    assert series.tested_on == "6.1.192"
    assert [(p.name, p.strip) for p in series.patches] == [("a.patch", 1), ("b.patch", 0)]
    (tmp_path / "series").write_text("missing.patch\n")
    with pytest.raises(GenmodError, match=r"series:1: patch missing\.patch does not exist"):
        source.read_series(tmp_path)


def test_kernel_version_from_makefile() -> None:
    assert source.kernel_version_from_makefile(
        "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION = -rc1\n") == "6.1.192-rc1"


def test_fresh_unpack_patch_and_abi(tmp_path: Path) -> None:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    report = source.prepare_source(paths)
    tree = paths.linux
    assert report.version == "6.1.192"
    assert "line ten\n" in (tree / "kernel/pid.c").read_text()
    assert (tree / "kernel/ssi/core.c").read_text() == "new file\n"
    assert (tree / "include/uapi/linux/ssi.h").read_text() == "#define SSI_ABI_VERSION 1\n"
    assert not list(tree.rglob("*.orig")) and not list(tree.rglob("*.rej"))
    state = source.SourceState.load(tree)
    assert state is not None and state.status == "ready"
    assert state.applied == ["0001-good.patch"]
    # Second run: nothing to do.
    assert source.prepare_source(paths).actions == []
    # ABI header change: copied again, no re-unpack.
    paths.abi_header.write_text("#define SSI_ABI_VERSION 2\n")
    marker = tree / "marker"
    marker.write_text("kept")
    actions = source.prepare_source(paths).actions
    assert marker.exists() and len(actions) == 1 and "ssi.h" in actions[0]


def test_refuses_bad_patch_naming_patch_file_hunk_and_sublevel(tmp_path: Path) -> None:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH, "0002-bad.patch": BAD_PATCH},
                      tested_on="6.1.191")
    with pytest.raises(source.PatchRefused) as info:
        source.prepare_source(paths)
    msg = str(info.value)
    assert "patch 0002-bad.patch does not apply" in msg
    assert "kernel/pid.c: hunk #2 FAILED at line 15" in msg
    assert "Linux 6.1.192" in msg and "SUBLEVEL 192 here vs 191 tested" in msg
    assert info.value.patch.name == "0002-bad.patch"
    # Nothing half-patched is left behind.
    assert not paths.linux.exists()
    assert not (paths.build / ".linux.new").exists()


def test_patch_change_reunpacks_but_keeps_old_tree_if_new_series_fails(tmp_path: Path) -> None:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    source.prepare_source(paths)
    marker = paths.linux / "built.o"
    marker.write_text("old build output")
    # A series that does not apply: refused, the working tree is untouched.
    (paths.patches / "0002-bad.patch").write_text(BAD_PATCH)
    (paths.patches / "series").write_text("0001-good.patch\n0002-bad.patch\n")
    with pytest.raises(source.PatchRefused, match=r"0002-bad\.patch"):
        source.prepare_source(paths)
    assert marker.exists()
    # A series that applies: fresh tree.
    (paths.patches / "series").write_text("0001-good.patch\n")
    (paths.patches / "0001-good.patch").write_text(GOOD_PATCH.replace("line ten", "line TEN"))
    actions = source.prepare_source(paths).actions
    assert any("patches/series changed" in a for a in actions)
    assert not marker.exists()
    assert (source.previous_tree(paths) / "built.o").exists()  # old tree kept aside
    assert "line TEN\n" in (paths.linux / "kernel/pid.c").read_text()


def test_adopts_foreign_tree_with_series_applied(tmp_path: Path) -> None:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    info = source.tarball_info(paths.tarball, paths.cache)
    paths.build.mkdir(exist_ok=True)
    source.unpack(info, paths.linux)
    patch = source.read_series(paths.patches).patches[0]
    assert source.applied_prefix(paths.linux, [patch]) == 0
    assert source.run_patch(patch, paths.linux).returncode == 0
    assert source.applied_prefix(paths.linux, [patch]) == 1
    marker = paths.linux / "lead-build-output.o"
    marker.write_text("x")
    actions = source.prepare_source(paths).actions
    assert actions[0].startswith("adopted")
    assert marker.exists()
    state = source.SourceState.load(paths.linux)
    assert state is not None and state.adopted


def test_adopting_unpatched_tree_applies_the_series(tmp_path: Path) -> None:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    paths.build.mkdir(exist_ok=True)
    source.unpack(source.tarball_info(paths.tarball, paths.cache), paths.linux)
    actions = source.prepare_source(paths).actions
    assert "applied 1 patch(es)" in actions
    assert "line ten\n" in (paths.linux / "kernel/pid.c").read_text()


def test_refuses_to_replace_foreign_tree_of_other_version(tmp_path: Path) -> None:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    other = make_tarball(tmp_path / "other.tar.xz", sublevel=150)
    paths.build.mkdir(exist_ok=True)
    source.unpack(source.tarball_info(other, tmp_path / "cache"), paths.linux)
    with pytest.raises(GenmodError, match=r"holds Linux 6\.1\.150 .* will not replace it"):
        source.prepare_source(paths)
    assert (paths.linux / "Makefile").exists()


def test_tarball_version_change_reunpacks(tmp_path: Path) -> None:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    source.prepare_source(paths)
    make_tarball(paths.tarball, sublevel=193)
    actions = source.prepare_source(paths).actions
    assert any("6.1.192 -> 6.1.193" in a for a in actions)
    assert source.tree_version(paths.linux) == "6.1.193"


def test_parse_patch_output_missing_file() -> None:
    out = ("can't find file to patch at input line 3\n"
           "Perhaps you used the wrong -p or --strip option?\n"
           "The text leading up to this was:\n--------------------------\n"
           "|--- a/kernel/gone.c\n|+++ b/kernel/gone.c\n--------------------------\n"
           "No file to patch.  Skipping patch.\n")
    (prob,) = source.parse_patch_output(out)
    assert (prob.file, prob.what) == ("kernel/gone.c", "file to patch does not exist")
