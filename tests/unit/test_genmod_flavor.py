"""Kernel flavors in genmod: per-flavor paths and fragments, --flavor / $GENMOD_FLAVOR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genmod import cli, dotconfig, flavor
from genmod.paths import Paths

REPO = Path(__file__).resolve().parents[2]


def _paths(tmp_path: Path, name: str) -> Paths:
    return Paths(root=REPO, build=tmp_path / "build", tarball=tmp_path / "none.tar.xz",
                 flavor=flavor.get(name))


def test_normal_flavor_keeps_the_historical_layout(tmp_path: Path) -> None:
    p = _paths(tmp_path, "normal")
    b = tmp_path / "build"
    assert (p.linux, p.state, p.modules, p.modules_out, p.ssi_config_h, p.lock) == (
        b / "linux", b / "linux/.genmod", b / "modules", b / "modules/out",
        b / "modules/ssi_config.h", b / ".genmod.lock")
    assert p.log("kernel-build") == b / "logs/kernel-build.log"
    assert [f.name for f in p.fragments] == ["ssi-base.config", "ssi.config"]


def test_debug_flavor_has_its_own_tree_modules_lock_and_logs(tmp_path: Path) -> None:
    p = _paths(tmp_path, "debug")
    b = tmp_path / "build"
    assert (p.linux, p.state, p.modules, p.modules_out, p.lock) == (
        b / "linux-debug", b / "linux-debug/.genmod", b / "modules-debug",
        b / "modules-debug/out", b / ".genmod-debug.lock")
    assert p.log("kernel-build") == b / "logs/kernel-build-debug.log"
    assert p.log("module-ics") == b / "logs/module-ics-debug.log"
    # The kernel-wide inputs are shared.
    normal = _paths(tmp_path, "normal")
    assert (p.cache, p.patches, p.abi_header) == (normal.cache, normal.patches,
                                                  normal.abi_header)


def test_debug_fragments_are_the_normal_ones_then_ssi_debug(tmp_path: Path) -> None:
    normal, debug = _paths(tmp_path, "normal").fragments, _paths(tmp_path, "debug").fragments
    assert debug[:-1] == normal
    assert debug[-1] == REPO / "kernel/configs/ssi-debug.config"
    assert all(f.is_file() for f in debug)


def test_ssi_debug_fragment_requests_what_the_issue_asks() -> None:
    wanted = {a.name: a.value for a in dotconfig.read(
        REPO / "kernel/configs/ssi-debug.config", strict=True)}
    for sym in ("KASAN", "KASAN_GENERIC", "PROVE_LOCKING", "PROVE_RCU", "DEBUG_ATOMIC_SLEEP",
                "DEBUG_LIST", "DEBUG_OBJECTS", "DEBUG_OBJECTS_WORK", "DEBUG_OBJECTS_TIMERS",
                "DEBUG_OBJECTS_RCU_HEAD", "DEBUG_KMEMLEAK", "UBSAN", "UBSAN_BOUNDS",
                "SLUB_DEBUG", "DETECT_HUNG_TASK", "SOFTLOCKUP_DETECTOR", "WQ_WATCHDOG",
                "FAULT_INJECTION", "FAILSLAB", "FAIL_PAGE_ALLOC", "FAULT_INJECTION_DEBUG_FS",
                "FAULT_INJECTION_STACKTRACE_FILTER",
                "DEBUG_FS", "KALLSYMS_ALL"):
        assert wanted.get(sym) == "y", sym
    assert wanted["DEBUG_INFO"] == "n" and wanted["DEBUG_KMEMLEAK_AUTO_SCAN"] == "n"
    assert int(wanted["DEBUG_KMEMLEAK_MEM_POOL_SIZE"]) > 16000  # above 6.1's default
    # Exactly one KASAN instrumentation mode is chosen.
    assert (wanted.get("KASAN_INLINE"), wanted.get("KASAN_OUTLINE")) in (("y", None),
                                                                         (None, "y"))
    # Nothing of the normal node kernel is switched off (LZ4 stays, among others).
    common = {a.name: a.value for name in ("ssi-base.config", "ssi.config")
              for a in dotconfig.read(REPO / "kernel/configs" / name, strict=True)}
    assert {k: v for k, v in wanted.items() if k in common and common[k] != v} == {}
    assert common["KERNEL_LZ4"] == "y"


def test_discover_takes_the_argument_then_genmod_flavor(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("GENMOD_BUILD_DIR", str(tmp_path))
    monkeypatch.delenv("GENMOD_FLAVOR", raising=False)
    assert Paths.discover().linux == tmp_path / "linux"
    monkeypatch.setenv("GENMOD_FLAVOR", "debug")
    assert Paths.discover().linux == tmp_path / "linux-debug"
    assert Paths.discover(flavor="normal").linux == tmp_path / "linux"
    with pytest.raises(flavor.UnknownFlavor, match=r"'bogus'.*normal, debug"):
        Paths.discover(flavor="bogus")


def test_cli_choices_are_the_flavors() -> None:
    assert [f.value for f in cli.FlavorName] == list(flavor.FLAVORS)


def _genmod(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENMOD_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "genmod.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "env"), [
    (["--flavor", "bogus", "kernel"], {}),
    (["kernel"], {"GENMOD_FLAVOR": "bogus"}),
])
def test_a_bogus_flavor_is_one_line_and_status_2(args: list[str], env: dict[str, str]) -> None:
    r = _genmod(args, env)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Invalid value for '--flavor'")
    assert "'bogus'" in lines[0] and r.stdout == ""


@pytest.mark.parametrize(("args", "env", "tree"), [
    (["--flavor", "debug", "config-verify"], {}, "linux-debug"),
    (["config-verify"], {"GENMOD_FLAVOR": "debug"}, "linux-debug"),
    (["--flavor", "normal", "config-verify"], {"GENMOD_FLAVOR": "debug"}, "linux"),
])
def test_the_flavor_chooses_the_tree(tmp_path: Path, args: list[str], env: dict[str, str],
                                     tree: str) -> None:
    r = _genmod(args, {"GENMOD_BUILD_DIR": str(tmp_path), **env})
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"error: {tmp_path / tree}/.config does not exist; run 'genmod kernel' first"]
