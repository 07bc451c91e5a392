"""genmod's CLI and the kernel pipeline's stamps (no make run)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from test_genmod_source import GOOD_PATCH, make_repo

from genmod import cli, kbuild, kernel, source
from genmod.paths import Paths

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="needs GNU patch")


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["genmod", *args])
    return cli.main()


def test_help(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    for cmd in ("kernel", "modules", "check", "config-verify", "all", "checkpatch"):
        assert cmd in out


def test_check_without_modules_fails_cleanly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(monkeypatch, "--build-dir", str(tmp_path), "check") == 1
    assert "no .ko files" in capsys.readouterr().err


def _ready_repo(tmp_path: Path) -> Paths:
    paths = make_repo(tmp_path, {"0001-good.patch": GOOD_PATCH})
    (paths.root / "kernel/configs").mkdir(parents=True)
    for frag in paths.fragments:
        frag.write_text("CONFIG_SMP=y\n")
    return paths


def test_noop_when_stamp_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _ready_repo(tmp_path)
    settings = kbuild.MakeSettings(cc="gcc", jobs=1)
    src = source.prepare_source(paths)
    paths.kvm_guest_fragment.parent.mkdir(parents=True, exist_ok=True)
    paths.kvm_guest_fragment.write_text("CONFIG_PCI=y\n")
    cfg = kernel.config_digest(paths, src, settings)
    kernel._write_stamp(paths.state / "config.json", cfg)
    kernel._write_stamp(paths.state / "kernel.json", kernel.kernel_digest(cfg, src, settings))
    (paths.linux / "arch/x86/boot").mkdir(parents=True)
    (paths.linux / "arch/x86/boot/bzImage").write_text("")
    (paths.linux / "Module.symvers").write_text("")
    for generated in ("include/generated/autoconf.h", "include/config/auto.conf"):
        (paths.linux / generated).parent.mkdir(parents=True, exist_ok=True)
        (paths.linux / generated).write_text("")

    def no_make(*_a: object, **_k: object) -> None:
        raise AssertionError("make must not run")

    monkeypatch.setattr(kbuild, "run_make", no_make)
    monkeypatch.setattr(kernel, "configure", no_make)
    report = kernel.build_kernel(paths, settings)
    assert report.up_to_date and report.seconds < 5

    # A fragment change invalidates both stamps: configure would run.
    paths.fragments[1].write_text("CONFIG_SMP=y\nCONFIG_SSI=y\n")
    with pytest.raises(AssertionError, match="make must not run"):
        kernel.build_kernel(paths, settings)


def test_missing_fragment_is_named(tmp_path: Path) -> None:
    paths = _ready_repo(tmp_path)
    paths.fragments[0].unlink()
    src = source.prepare_source(paths)
    from genmod.errors import GenmodError

    with pytest.raises(GenmodError, match=r"ssi-base\.config"):
        kernel.config_digest(paths, src, kbuild.MakeSettings())
