"""Each genmod failure raises its own GenmodError subclass (so callers can tell them apart)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_genmod_modules import make_repo as make_module_repo
from test_genmod_source import BAD_PATCH, GOOD_PATCH, make_repo, make_tarball

from genmod import cli, kbuild, kconfig, kernel, kocheck, modules, paths, source
from genmod.errors import (
    BuildError,
    CheckoutNotFound,
    CheckpatchFailed,
    ConfigError,
    ConfigMismatch,
    GenmodError,
    ModuleCheckError,
    NotBuilt,
    SeriesError,
    SourceMissing,
    TreeConflict,
)
from genmod.manifest import ManifestError, load_manifest

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="needs GNU patch")


@pytest.mark.parametrize("cls", [CheckoutNotFound, SourceMissing, SeriesError, TreeConflict,
                                 NotBuilt, ConfigError, CheckpatchFailed, ConfigMismatch,
                                 BuildError, ModuleCheckError, ManifestError,
                                 source.PatchRefused, kbuild.KbuildError])
def test_every_class_is_a_genmod_error(cls: type[Exception]) -> None:
    assert issubclass(cls, GenmodError)


def test_checkout_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENMOD_ROOT", raising=False)
    monkeypatch.setattr(paths, "__file__", str(tmp_path / "genmod" / "paths.py"))
    with pytest.raises(CheckoutNotFound, match="cannot find the ssikit checkout"):
        paths.find_root(tmp_path)


def test_missing_tarball_is_source_missing(tmp_path: Path) -> None:
    with pytest.raises(SourceMissing, match=r"kernel source tarball .*none\.tar\.xz"):
        source.tarball_info(tmp_path / "none.tar.xz", tmp_path / "cache")


def test_series_naming_a_missing_patch_is_series_error(tmp_path: Path) -> None:
    (tmp_path / "series").write_text("missing.patch\n")
    with pytest.raises(SeriesError, match=r"series:1: patch missing\.patch does not exist"):
        source.read_series(tmp_path)
    (tmp_path / "series").write_text("a.patch -R\n")
    with pytest.raises(SeriesError, match="unsupported patch option '-R'"):
        source.read_series(tmp_path)


def test_patch_that_does_not_apply_is_patch_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"0001-bad.patch": BAD_PATCH})
    with pytest.raises(source.PatchRefused, match=r"0001-bad\.patch"):
        source.prepare_source(repo)


def test_foreign_tree_of_other_version_is_tree_conflict(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    other = make_tarball(tmp_path / "other.tar.xz", sublevel=150)
    repo.build.mkdir(exist_ok=True)
    source.unpack(source.tarball_info(other, tmp_path / "cache"), repo.linux)
    with pytest.raises(TreeConflict, match=r"holds Linux 6\.1\.150"):
        source.prepare_source(repo)


def test_missing_abi_header_is_source_missing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    repo.abi_header.unlink()
    with pytest.raises(SourceMissing, match=r"ssi_abi\.h is missing"):
        source.prepare_source(repo)


def test_failed_unpack_is_build_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.xz"
    broken.write_bytes(b"not a tarball")
    info = source.TarballInfo(str(broken), 13, 0, "linux-source-6.1", "6.1.192")
    with pytest.raises(BuildError, match=r"unpacking .*broken\.tar\.xz failed"):
        source.unpack(info, tmp_path / "linux")


def test_failed_make_is_a_build_error(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n\t@echo 'x.c:1: error: broken'; false\n")
    with pytest.raises(BuildError, match=r"error: broken"):
        kbuild.run_make(tmp_path, ["all"], settings=kbuild.MakeSettings(cc="gcc", jobs=1),
                        ccache_basedir=tmp_path, log=tmp_path / "make.log", label="test")


def test_missing_fragment_is_source_missing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    with pytest.raises(SourceMissing, match=r"config fragment\(s\) missing: .*ssi-base\.config"):
        kernel._fragments(repo)


def test_verify_without_config_is_not_built(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {})
    with pytest.raises(NotBuilt, match=r"\.config does not exist; run 'genmod kernel' first"):
        kernel.verify_config(repo, kbuild.MakeSettings(cc="gcc", jobs=1))


def test_bad_fragment_line_and_unparsable_kconfig_are_config_errors(tmp_path: Path) -> None:
    frag = tmp_path / "bad.config"
    frag.write_text("CONFIG_A=y\nnonsense\n")
    with pytest.raises(ConfigError, match=r"bad\.config:2"):
        kconfig.parse_fragment(frag)
    (tmp_path / "Kconfig").write_text("config FOO\n\tbool \"foo\n")
    with pytest.raises(ConfigError, match="kconfiglib could not parse"):
        kconfig.load_kconfig(tmp_path / "Kconfig", tmp_path, {})


def test_unmet_request_is_config_mismatch(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``genmod config-verify`` on a tiny tree whose .config lacks a requested symbol."""
    repo = make_repo(tmp_path, {})
    repo.linux.mkdir(parents=True)
    (repo.linux / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n")
    (repo.linux / "Kconfig").write_text('config BAR\n\tbool "bar"\n\nconfig FOO\n'
                                        '\tbool "foo"\n\tdepends on BAR\n')
    (repo.linux / ".config").write_text("# CONFIG_BAR is not set\n")
    (repo.kernel_src / "configs").mkdir(parents=True)
    for frag in repo.fragments:
        frag.write_text("CONFIG_FOO=y\n")
    monkeypatch.setenv("GENMOD_ROOT", str(repo.root))
    with pytest.raises(ConfigMismatch, match="CONFIG_FOO: wanted y, got n") as info:
        cli.app(["--build-dir", str(repo.build), "config-verify"], standalone_mode=False)
    assert [m.name for m in info.value.mismatches] == ["FOO"]


def test_module_errors(tmp_path: Path) -> None:
    repo = make_module_repo(tmp_path)
    settings = kbuild.MakeSettings(cc="gcc", jobs=1)
    with pytest.raises(NotBuilt, match=r"Module\.symvers does not exist"):
        modules.build_modules(repo, settings)
    with pytest.raises(SourceMissing, match=r"override .*none\.config does not exist"):
        modules.build_modules(repo, settings, build=False, overrides=[tmp_path / "none.config"])
    (repo.kernel_src / "extra/util.c").unlink()
    with pytest.raises(SourceMissing, match=r"source .*extra/util\.c does not exist"):
        modules.build_modules(repo, settings, build=False)
    (repo.linux / ".config").unlink()
    with pytest.raises(NotBuilt, match=r"\.config does not exist"):
        modules.build_modules(repo, settings, build=False)


def test_module_without_kconfig_option_is_config_error(tmp_path: Path) -> None:
    manifest = ('[[module]]\nname = "ssi_other"\ndescription = "d"\nauthor = "a"\n'
                'sources = ["core/ssi_core.c"]\n')
    repo = make_module_repo(tmp_path, manifest=manifest)
    with pytest.raises(ConfigError, match="CONFIG_SSI_OTHER is not defined in kernel/Kconfig"):
        modules.build_modules(repo, kbuild.MakeSettings(cc="gcc", jobs=1), build=False)


def test_bad_manifest_is_manifest_error_and_config_error(tmp_path: Path) -> None:
    path = tmp_path / "modules.toml"
    path.write_text("[[module]]\nname = 3\n")
    with pytest.raises(ConfigError) as info:
        load_manifest(path, tmp_path)
    assert isinstance(info.value, ManifestError)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_ko_check_failures_are_module_check_errors(tmp_path: Path) -> None:
    not_elf = tmp_path / "junk.ko"
    not_elf.write_text("junk")
    with pytest.raises(ModuleCheckError, match="not a readable ELF object"):
        kocheck.read_ko(not_elf)
    src = tmp_path / "m.c"
    src.write_text('static const char li[] __attribute__((section(".modinfo"), used)) = '
                   '"license=Proprietary";\nint init_module(void) { return 0; }\n')
    ko = tmp_path / "m.ko"
    subprocess.run(["gcc", "-c", "-o", str(ko), str(src)], check=True)
    repo = make_module_repo(tmp_path)
    with pytest.raises(NotBuilt, match=r"Module\.symvers does not exist"):
        kocheck.check_or_raise(repo, [ko])
    (repo.linux / "Module.symvers").write_text("")
    with pytest.raises(NotBuilt, match=r"utsrelease\.h missing"):
        kocheck.check_or_raise(repo, [ko])
    (repo.linux / "include/generated").mkdir(parents=True)
    (repo.linux / "include/generated/utsrelease.h").write_text('#define UTS_RELEASE "6.1.192"\n')
    with pytest.raises(ModuleCheckError) as info:
        kocheck.check_or_raise(repo, [ko])
    fields = {p.field for p in info.value.problems}
    assert fields == {"vermagic", "license"}


@pytest.mark.skipif(shutil.which("perl") is None, reason="needs perl")
def test_checkpatch_findings_are_checkpatch_failed(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_module_repo(tmp_path)
    monkeypatch.setenv("GENMOD_ROOT", str(repo.root))
    c_file = repo.kernel_src / "core/ssi_core.c"
    args = ["--build-dir", str(repo.build), "checkpatch", str(c_file)]
    with pytest.raises(NotBuilt, match=r"checkpatch\.pl does not exist"):
        cli.app(args, standalone_mode=False)
    script = repo.linux / "scripts/checkpatch.pl"
    script.parent.mkdir(parents=True)
    script.write_text('print "WARNING: stand-in complaint\\n"; exit 1;\n')
    with pytest.raises(CheckpatchFailed, match=r"1 of 1 file\(s\) have problems: .*ssi_core\.c"):
        cli.app(args, standalone_mode=False)


def test_ctrl_c_during_make_stops_make(tmp_path: Path) -> None:
    """SIGINT reaching genmod alone (not make) must not leave make running."""
    pid_file = tmp_path / "make.pid"
    (tmp_path / "Makefile").write_text(
        f"all:\n\t@echo $$PPID > {pid_file}; echo started; kill -INT {os.getpid()}; sleep 60\n")
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        kbuild.run_make(tmp_path, ["all"], settings=kbuild.MakeSettings(cc="gcc", jobs=1),
                        ccache_basedir=tmp_path, log=tmp_path / "make.log", label="test")
    assert time.monotonic() - start < 30
    assert not Path(f"/proc/{pid_file.read_text().strip()}").exists()  # make ended, reaped
    assert (tmp_path / "make.log").read_text().endswith("# interrupted: make stopped\n")


def test_checkpatch_exemptions_apply_to_their_file_only() -> None:
    from genmod import checkpatch
    assert checkpatch.ignored_types(Path("/r/kernel/core/ssi_core.c")) == ["ENOSYS"]
    assert checkpatch.ignored_types(Path("/r/kernel/vproc/mig_main.c")) == []
