"""genmod's CLI and the kernel pipeline's stamps (no make run)."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_genmod_source import GOOD_PATCH, make_repo

from genmod import cli, kbuild, kernel, source
from genmod.paths import Paths

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="needs GNU patch")

REPO = Path(__file__).resolve().parents[2]


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["genmod", *args])
    return cli.main()


def test_help(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    for cmd in ("kernel", "modules", "check", "config-verify", "all", "checkpatch"):
        assert cmd in out


def test_help_shows_defaults(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert run_cli(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    assert "[default: (nproc)]" in out
    assert "<checkout>/build" in out and "/usr/src/linux-source-6.1.tar.xz" in out
    assert run_cli(monkeypatch, "kernel", "--help") == 0
    assert "[default: no-force]" in capsys.readouterr().out


def test_no_arguments_prints_help_and_fails(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(monkeypatch) == 2
    assert "config-verify" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus"], "No such option: --bogus"),
    (["kernel", "--bogus"], "No such option: --bogus"),
    (["bogus"], "No such command 'bogus'"),
    (["--jobs", "x", "kernel"], "Invalid value for '--jobs'"),
    (["--jobs", "0", "kernel"], "Invalid value for '--jobs'"),
    (["check", "--build-dir"], "No such option: --build-dir"),
])
def test_bad_usage_is_one_line_and_status_2(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str],
                                            args: list[str], message: str) -> None:
    monkeypatch.setenv("COLUMNS", "40")  # a long message must not be wrapped
    assert run_cli(monkeypatch, *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_bad_option_in_a_real_process_has_no_traceback() -> None:
    r = subprocess.run([sys.executable, "-m", "genmod.cli", "--bogus"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "error: No such option: --bogus (Possible options: --jobs, --verbose) "
        "(see 'genmod --help')"]


def test_interrupt_inside_a_command_is_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(kernel, "build_kernel", interrupted)
    assert run_cli(monkeypatch, "--build-dir", str(tmp_path), "kernel") == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def _blocked_on_flock(pid: int, deadline: float) -> bool:
    """True once ``pid`` waits for a flock (a ``->`` line of /proc/locks names it)."""
    while time.monotonic() < deadline:
        for line in Path("/proc/locks").read_text().splitlines():
            fields = line.split()
            if "->" in fields and "FLOCK" in fields and str(pid) in fields:
                return True
        time.sleep(0.05)
    return False


def test_ctrl_c_while_genmod_kernel_waits_exits_130(tmp_path: Path) -> None:
    """A real SIGINT to a real ``genmod kernel``, blocked on the build lock we hold."""
    lock = tmp_path / ".genmod.lock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENMOD_")}
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-m", "genmod.cli", "--build-dir",
                                 str(tmp_path), "kernel"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert _blocked_on_flock(proc.pid, time.monotonic() + 60)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 130
        finally:
            proc.kill()
        assert proc.stderr is not None
        assert proc.stderr.read().splitlines() == [
            f"warning: another genmod holds {lock}; waiting for it to finish",
            "error: interrupted"]


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
