"""The kernel flavor in the harness: which bzImage and modules, guest memory,
the kernel command line, and the scaled pytest timeouts of cluster tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genmod import flavor as build_flavor
from qemu import paths
from qemu.qemu_cmd import NodeConfig, NodeSockets, kernel_append

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def build_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "BUILD_DIR", tmp_path)
    monkeypatch.delenv("SSI_KERNEL", raising=False)
    monkeypatch.delenv("SSI_FLAVOR", raising=False)
    return tmp_path


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"bz")
    return path


def test_every_build_flavor_has_guest_settings() -> None:
    assert list(paths.GUEST_FLAVORS) == list(build_flavor.FLAVORS)


def test_flavor_comes_from_ssi_flavor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSI_FLAVOR", raising=False)
    assert paths.flavor().name == "normal"
    monkeypatch.setenv("SSI_FLAVOR", "debug")
    assert paths.flavor().name == "debug"
    assert paths.flavor("normal").name == "normal"
    monkeypatch.setenv("SSI_FLAVOR", "bogus")
    with pytest.raises(paths.KernelMissing, match="unknown kernel flavor 'bogus'"):
        paths.flavor()


def test_kernel_path_follows_the_flavor(build_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    normal = _image(build_dir / "linux/arch/x86/boot/bzImage")
    debug = _image(build_dir / "linux-debug/arch/x86/boot/bzImage")
    assert paths.kernel_path() == normal
    monkeypatch.setenv("SSI_FLAVOR", "debug")
    assert paths.kernel_path() == debug
    # An explicit kernel, or $SSI_KERNEL, still wins over the flavor.
    assert paths.kernel_path(normal) == normal
    monkeypatch.setenv("SSI_KERNEL", str(normal))
    assert paths.kernel_path() == normal


def test_a_missing_debug_kernel_says_how_to_build_it(build_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSI_FLAVOR", "debug")
    with pytest.raises(paths.KernelMissing) as exc:
        paths.kernel_path()
    assert str(exc.value) == (
        f"kernel image {build_dir}/linux-debug/arch/x86/boot/bzImage is missing: run "
        "`make kernel FLAVOR=debug` first (or point SSI_KERNEL at a bzImage)")
    monkeypatch.setenv("SSI_FLAVOR", "normal")
    with pytest.raises(paths.KernelMissing, match="run `make kernel` first"):
        paths.kernel_path()


def test_modules_memory_and_timeouts_per_flavor(build_dir: Path) -> None:
    normal, debug = paths.flavor("normal"), paths.flavor("debug")
    assert normal.modules_out == build_dir / "modules/out"
    assert debug.modules_out == build_dir / "modules-debug/out"
    assert (normal.memory(), normal.memory(384), normal.timeout(60)) == (256, 384, 60)
    assert debug.memory() >= 512 and debug.memory(384) > 384
    assert debug.timeout(60) > 60


def _config(**kw: object) -> NodeConfig:
    return NodeConfig(node=2, nodes=3, kernel=Path("/k"), sockets=NodeSockets(Path("/s"), 2),
                      console_log=Path("/c"), python_image=None, busybox=None, **kw)  # type: ignore[arg-type]


def test_debug_guests_get_the_flavor_on_the_command_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSI_FLAVOR", "debug")
    cfg = _config()
    assert (cfg.flavor, cfg.memory, cfg.timeout_factor) == (
        "debug", paths.flavor("debug").memory(), paths.flavor("debug").timeout_factor)
    words = kernel_append(cfg).split()
    assert "ssi.flavor=debug" in words
    assert words.index("ssi.flavor=debug") < words.index(f"init={REPO}/qemu/guest/init.sh")


def test_normal_guests_are_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSI_FLAVOR", raising=False)
    cfg = _config()
    assert (cfg.flavor, cfg.memory, cfg.timeout_factor) == ("normal", 256, 1.0)
    assert "ssi.flavor" not in kernel_append(cfg)


def test_init_exports_the_flavors_module_dir() -> None:
    """init.sh's command-line parsing, run on the host with a fake /proc/cmdline."""
    script = (REPO / "qemu/guest/init.sh").read_text()
    start = script.index("N=1 M=1")
    end = script.index("# With ssi.debug=1")
    snippet = script[start:end].replace("</proc/cmdline", '<"$CMDLINE_FILE"')
    for cmdline, expected in (("ssi.node=1 ssi.flavor=debug", "/repo/build/modules-debug/out"),
                              ("ssi.node=1", ""), ("ssi.flavor=normal", "")):
        env = {"PATH": os.environ["PATH"], "REPO": "/repo", "CMDLINE_FILE": "/dev/stdin"}
        r = subprocess.run(["sh", "-c", snippet + 'sh -c \'printf %s "$SSIKIT_MODULES_DIR"\''],
                           input=cmdline + "\n", env=env, capture_output=True, text=True,
                           timeout=30, check=True)
        assert r.stdout == expected, cmdline


TIMEOUT_PROBE = '''
import pytest

def _seen(request):
    m = request.node.get_closest_marker("timeout")
    return m.args[0] if m else None

@pytest.mark.cluster
@pytest.mark.timeout(180)
def test_marked(request):
    print("marked", _seen(request))

@pytest.mark.cluster
def test_ini(request):
    print("ini", _seen(request))

def test_unit(request):
    print("unit", _seen(request))
'''


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs sh")
@pytest.mark.parametrize(("flavor", "expected"), [
    ("normal", ["marked 180", "ini None", "unit None"]),
    ("debug", ["marked 720.0", "ini 1200.0", "unit None"]),
])
def test_cluster_test_timeouts_scale_with_the_flavor(tmp_path: Path, flavor: str,
                                                     expected: list[str]) -> None:
    assert paths.flavor("debug").timeout_factor == 4.0  # the numbers below
    shutil.copy(REPO / "tests/conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(TIMEOUT_PROBE)
    env = {**os.environ, "SSI_FLAVOR": flavor, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                        "-o", "timeout=300", "-o", "markers=cluster", str(tmp_path)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = [ln.strip(".") for ln in r.stdout.splitlines()
            if ln.strip(".").startswith(("marked", "ini", "unit"))]
    assert seen == expected


def test_a_bogus_flavor_is_a_usage_error(tmp_path: Path) -> None:
    shutil.copy(REPO / "tests/conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(TIMEOUT_PROBE)
    env = {**os.environ, "SSI_FLAVOR": "bogus", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 4
    assert "unknown kernel flavor 'bogus' in $SSI_FLAVOR" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr


def test_kernel_deadline_factor_is_the_debug_flavors_timeout_factor() -> None:
    """Tests derive the modules' ICS deadlines under the debug flavor from its
    timeout factor (test_vproc_security's VPROC_TIMEOUT): it must stay the
    kernel's ICS_SLOW_KERNEL_FACTOR, and 1 for the normal flavor."""
    text = (REPO / "kernel" / "include" / "ics.h").read_text()
    factors = re.findall(r"#define ICS_SLOW_KERNEL_FACTOR\s+(\d+)", text)
    assert [int(f) for f in factors] == [paths.GUEST_FLAVORS["debug"].timeout_factor,
                                         paths.GUEST_FLAVORS["normal"].timeout_factor], factors
