"""ssictl CLI on the host, against a fake kernel (no module is ever really loaded here)."""

from __future__ import annotations

import errno
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abi import errors as abi_errors
from ssictl import kmod
from ssictl.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def make_ko(path: Path, modinfo: dict[str, str]) -> Path:
    """A minimal 64-bit ELF whose only content is a .modinfo section."""
    section = b"".join(f"{k}={v}".encode() + b"\0" for k, v in modinfo.items())
    names = b"\0.modinfo\0.shstrtab\0"
    data = bytearray(64) + section + names
    while len(data) % 8:
        data += b"\0"
    shoff = len(data)
    sh = bytearray(64)
    sh += struct.pack("<IIQQQQIIQQ", 1, 1, 0, 0, 64, len(section), 0, 0, 1, 0)
    sh += struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, 64 + len(section), len(names), 0, 0, 1, 0)
    data += sh
    hdr = b"\x7fELF\x02\x01\x01" + bytes(9)
    hdr += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)
    data[:64] = hdr
    path.write_bytes(bytes(data))
    return path


class FakeKernel:
    """/proc/modules, /sys/module, /sys/kernel/ssi and the module syscalls, faked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc = root / "proc_modules"
        self.sys_module = root / "sys_module"
        self.ssi = root / "sys_kernel_ssi"
        self.sys_module.mkdir(parents=True)
        self.loaded: dict[str, list[str]] = {}  # name -> deps
        self.calls: list[tuple[str, str]] = []
        self.fail_load: dict[str, tuple[int, list[str]]] = {}
        self.fail_unload: dict[str, int] = {}
        self.log: list[str] = []
        self.sync()

    def sync(self) -> None:
        lines = []
        for name in self.loaded:
            users = [u for u, ds in self.loaded.items() if name in ds]
            used = ",".join(users) + "," if users else "-"
            lines.append(f"{name} 16384 {len(users)} {used} Live 0x0000000000000000 (O)")
        lines.append("unrelated 4096 0 - Live 0x0")
        self.proc.write_text("\n".join(lines) + "\n")
        if "ssi_core" in self.loaded:
            self.ssi.mkdir(exist_ok=True)
            (self.ssi / "node").write_text("2\n")
        elif self.ssi.exists():
            (self.ssi / "node").unlink()
            self.ssi.rmdir()

    def finit_module(self, path: Path, params: str = "") -> None:
        mod = kmod.ModuleFile.from_path(path)
        self.calls.append(("load", mod.name))
        if mod.name in self.fail_load:
            err, log = self.fail_load[mod.name]
            self.log += log
            raise kmod.KernelError(err)
        missing = [d for d in mod.depends if d not in self.loaded]
        if missing:
            self.log.append(f"{mod.name}: Unknown symbol {missing[0]}_fn (err -2)")
            raise kmod.KernelError(errno.ENOENT)
        if mod.name in self.loaded:
            raise kmod.KernelError(errno.EEXIST)
        self.loaded[mod.name] = list(mod.depends)
        params_dir = self.sys_module / mod.name / "parameters"
        params_dir.mkdir(parents=True)
        (params_dir / "debug").write_text("0\n")
        self.sync()

    def delete_module(self, name: str) -> None:
        self.calls.append(("unload", name))
        if name in self.fail_unload:
            raise kmod.KernelError(self.fail_unload[name])
        if name not in self.loaded:
            raise kmod.KernelError(errno.ENOENT)
        if any(name in ds for ds in self.loaded.values()):
            raise kmod.KernelError(errno.EAGAIN)
        del self.loaded[name]
        self.sync()


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeKernel:
    k = FakeKernel(tmp_path / "kernel")
    monkeypatch.setattr(kmod, "PROC_MODULES", k.proc)
    monkeypatch.setattr(kmod, "SYS_MODULE", k.sys_module)
    monkeypatch.setattr(kmod, "SSI_SYSFS", k.ssi)
    monkeypatch.setattr(kmod, "finit_module", k.finit_module)
    monkeypatch.setattr(kmod, "delete_module", k.delete_module)

    class Log:
        def __enter__(self) -> Log:
            self.start = len(k.log)
            return self

        def __exit__(self, *a: object) -> None:
            pass

        def new_lines(self) -> list[str]:
            return k.log[self.start :]

    monkeypatch.setattr(kmod, "KernelLog", Log)
    monkeypatch.setattr(abi_errors, "SSI_SYSFS", tmp_path / "no_ssi")
    return k


@pytest.fixture(autouse=True)
def _never_touch_the_host_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("a unit test tried to (un)load a module on the host")

    monkeypatch.setattr(kmod, "_libc_syscall", refuse)
    monkeypatch.setattr(kmod, "_run_tool", refuse)


@pytest.fixture
def modules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    vm = "6.1.0-ssi SMP mod_unload "
    make_ko(d / "ssi_core.ko", {"name": "ssi_core", "depends": "", "vermagic": vm})
    make_ko(d / "ssi_ics.ko", {"name": "ssi_ics", "depends": "ssi_core", "vermagic": vm})
    make_ko(d / "ssi_clms.ko", {"name": "ssi_clms", "depends": "ssi_ics,ssi_core", "vermagic": vm})
    make_ko(d / "ssi_vproc.ko", {"name": "ssi_vproc", "depends": "ssi_clms", "vermagic": vm})
    return d


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def as_json(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# --------------------------------------------------------------------------- load


def test_load_all_in_dependency_order(kernel: FakeKernel, modules_dir: Path) -> None:
    r = run("modules", "load", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 0, r.output
    data = as_json(r)
    assert data["ok"] is True
    assert [m["name"] for m in data["modules"]] == ["ssi_core", "ssi_ics", "ssi_clms", "ssi_vproc"]
    assert {m["action"] for m in data["modules"]} == {"loaded"}
    assert [c for _, c in kernel.calls] == ["ssi_core", "ssi_ics", "ssi_clms", "ssi_vproc"]


def test_load_skips_loaded_and_is_idempotent(kernel: FakeKernel, modules_dir: Path) -> None:
    kernel.loaded["ssi_core"] = []
    kernel.sync()
    r = run("modules", "load", "--dir", str(modules_dir))
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == [  # progress: stderr, never stdout
        "ssi_core: already loaded",
        *(f"loaded {m} ({modules_dir / m}.ko)" for m in ("ssi_ics", "ssi_clms", "ssi_vproc")),
    ]
    assert r.stdout == ""
    assert ("load", "ssi_core") not in kernel.calls
    r = run("modules", "load", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 0
    assert {m["action"] for m in as_json(r)["modules"]} == {"already-loaded"}


def test_load_named_module_brings_its_dependencies(kernel: FakeKernel, modules_dir: Path) -> None:
    r = run("modules", "load", "ssi_clms", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 0, r.output
    assert [m["name"] for m in as_json(r)["modules"]] == ["ssi_core", "ssi_ics", "ssi_clms"]
    assert "ssi_vproc" not in kernel.loaded


def test_load_failure_reports_kernel_message(kernel: FakeKernel, modules_dir: Path) -> None:
    kernel.fail_load["ssi_ics"] = (
        errno.ENOENT,
        ["random: crng init done", "ssi_ics: Unknown symbol ssi_core_register (err -2)"],
    )
    r = run("modules", "load", "--dir", str(modules_dir))
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    err = r.stderr
    assert "ssictl: error: could not load ssi_ics" in err
    assert "No such file or directory (ENOENT)" in err
    assert "kernel: ssi_ics: Unknown symbol ssi_core_register (err -2)" in err
    assert "crng" not in err
    assert "fix: the module needs a symbol this kernel does not provide" in err
    assert kernel.loaded.keys() == {"ssi_core"}  # stopped at the failure


def test_load_failure_json(kernel: FakeKernel, modules_dir: Path) -> None:
    kernel.fail_load["ssi_core"] = (errno.EPERM, [])
    r = run("modules", "load", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 1
    data = as_json(r)
    assert data["ok"] is False
    assert data["error"]["errno"] == errno.EPERM
    assert data["error"]["errno_name"] == "EPERM"
    assert "needs root" in data["error"]["hint"]
    assert data["modules"] == [
        {"name": "ssi_core", "path": str(modules_dir / "ssi_core.ko"), "action": "failed"}
    ]
    assert r.stderr == ""


def test_load_vermagic_mismatch_hint(kernel: FakeKernel, modules_dir: Path) -> None:
    kernel.fail_load["ssi_core"] = (errno.ENOEXEC, ["ssi_core: version magic '6.1.0-ssi' ..."])
    r = run("modules", "load", "--dir", str(modules_dir), "--json")
    hint = as_json(r)["error"]["hint"]
    assert f"built for kernel 6.1.0-ssi but {os.uname().release} is running" in hint
    assert as_json(r)["error"]["details"] == ["kernel: ssi_core: version magic '6.1.0-ssi' ..."]


def test_cycle_is_reported(kernel: FakeKernel, tmp_path: Path) -> None:
    d = tmp_path / "cyc"
    d.mkdir()
    make_ko(d / "a.ko", {"name": "a", "depends": "b"})
    make_ko(d / "b.ko", {"name": "b", "depends": "a"})
    r = run("modules", "load", "--dir", str(d))
    assert r.exit_code == 1
    assert "dependencies form a cycle: a -> b -> a" in r.stderr
    assert kernel.calls == []
    st = run("modules", "status", "--dir", str(d), "--json")
    assert st.exit_code == 0
    assert any("cycle" in w for w in as_json(st)["warnings"])


def test_missing_external_dependency(kernel: FakeKernel, tmp_path: Path) -> None:
    d = tmp_path / "ext"
    d.mkdir()
    make_ko(d / "a.ko", {"name": "a", "depends": "crc32c_generic"})
    r = run("modules", "load", "--dir", str(d))
    assert r.exit_code == 1
    assert "a depends on crc32c_generic, which is neither in" in r.stderr
    assert "modprobe crc32c_generic" in r.stderr
    # ... but an already-loaded external dependency is fine.
    kernel.loaded["crc32c_generic"] = []
    kernel.sync()
    assert run("modules", "load", "--dir", str(d)).exit_code == 0


def test_unknown_module_name(kernel: FakeKernel, modules_dir: Path) -> None:
    r = run("modules", "load", "nope", "--dir", str(modules_dir))
    assert r.exit_code == 1
    assert "no module nope in" in r.stderr
    assert "pick from: ssi_clms, ssi_core, ssi_ics, ssi_vproc" in r.stderr


def test_missing_and_empty_dirs(kernel: FakeKernel, tmp_path: Path) -> None:
    for cmd in ("load", "unload", "status"):
        r = run("modules", cmd, "--dir", str(tmp_path / "nowhere"))
        assert r.exit_code == 1
        assert "does not exist" in r.stderr and "fix: build the SSI modules" in r.stderr
    (tmp_path / "empty").mkdir()
    r = run("modules", "status", "--dir", str(tmp_path / "empty"), "--json")
    assert r.exit_code == 1
    assert as_json(r)["error"]["message"].startswith("no .ko files in")


def test_bad_ko_file(kernel: FakeKernel, tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "x.ko").write_text("not elf")
    r = run("modules", "status", "--dir", str(d))
    assert r.exit_code == 1
    assert "is not a kernel module" in r.stderr


# --------------------------------------------------------------------------- unload


def test_unload_in_reverse_order(kernel: FakeKernel, modules_dir: Path) -> None:
    assert run("modules", "load", "--dir", str(modules_dir)).exit_code == 0
    kernel.calls.clear()
    r = run("modules", "unload", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 0, r.output
    assert [c for _, c in kernel.calls] == ["ssi_vproc", "ssi_clms", "ssi_ics", "ssi_core"]
    assert kernel.loaded == {}
    r = run("modules", "unload", "--dir", str(modules_dir))
    assert r.exit_code == 0
    assert r.stdout == "nothing to do: none of the modules is loaded\n"


def test_unload_named_takes_its_users_first(kernel: FakeKernel, modules_dir: Path) -> None:
    assert run("modules", "load", "--dir", str(modules_dir)).exit_code == 0
    r = run("modules", "unload", "ssi_ics", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 0, r.output
    assert [m["name"] for m in as_json(r)["modules"]] == ["ssi_vproc", "ssi_clms", "ssi_ics"]
    assert kernel.loaded.keys() == {"ssi_core"}


def test_unload_in_use(kernel: FakeKernel, modules_dir: Path) -> None:
    assert run("modules", "load", "ssi_core", "--dir", str(modules_dir)).exit_code == 0
    kernel.loaded["foreign"] = ["ssi_core"]  # a module from elsewhere uses ssi_core
    kernel.sync()
    r = run("modules", "unload", "--dir", str(modules_dir))
    assert r.exit_code == 1
    assert "ssi_core is in use (refcount 1, used by foreign)" in r.stderr
    assert "fix: unload the modules that use it first (foreign)" in r.stderr


def test_unload_not_permitted(kernel: FakeKernel, modules_dir: Path) -> None:
    assert run("modules", "load", "ssi_core", "--dir", str(modules_dir)).exit_code == 0
    kernel.fail_unload["ssi_core"] = errno.EPERM
    r = run("modules", "unload", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 1
    assert as_json(r)["error"]["hint"] == "unloading modules needs root (CAP_SYS_MODULE)"


# --------------------------------------------------------------------------- status


def test_status(kernel: FakeKernel, modules_dir: Path) -> None:
    r = run("modules", "status", "--dir", str(modules_dir), "--json")
    assert r.exit_code == 0
    data = as_json(r)
    assert [m["loaded"] for m in data["modules"]] == [False] * 4
    assert data["ssi_sysfs"] == {}
    assert run("modules", "load", "ssi_ics", "--dir", str(modules_dir)).exit_code == 0
    data = as_json(run("modules", "status", "--dir", str(modules_dir), "--json"))
    core = data["modules"][0]
    assert core["name"] == "ssi_core" and core["loaded"] and core["refcount"] == 1
    assert core["used_by"] == ["ssi_ics"] and core["state"] == "Live"
    assert core["parameters"] == {"debug": "0"}
    assert data["ssi_sysfs"] == {"node": "2"}
    human = run("modules", "status", "--dir", str(modules_dir))
    assert human.exit_code == 0
    lines = human.stdout.splitlines()
    assert lines[1].split() == ["MODULE", "STATE", "REFS", "USED", "BY", "DEPENDS"]
    assert lines[2].split() == ["ssi_core", "live", "1", "ssi_ics", "-"]
    assert lines[4].split()[:3] == ["ssi_clms", "not", "loaded"]
    assert "  node = 2" in lines


# --------------------------------------------------------------------------- clusternode-num


def test_clusternode_num_without_module(kernel: FakeKernel) -> None:
    r = run("clusternode-num")
    assert r.exit_code == 1
    assert "Traceback" not in r.output
    assert r.stderr.splitlines() == [
        "ssictl: error: ssisys(SSISYS_NODE_NUM): no SSI module serves this call (ENOSYS)",
        "  fix: load the modules with `ssictl modules load` "
        "(on a kernel built with the ssikit patches)",
    ]
    data = as_json(run("clusternode-num", "--json"))
    assert data["ok"] is False and data["error"]["errno_name"] == "ENOSYS"


def test_node_is_not_a_command() -> None:
    """`ssictl node` duplicated `ssictl clusternode-num` (the libcluster name) and is gone."""
    r = run("node")
    assert r.exit_code == 2 and "No such command 'node'" in r.output


# --------------------------------------------------------------------------- the real binary


def _ssictl() -> list[str]:
    return [sys.executable, "-m", "ssictl"]


def test_console_script_errors_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "100"}
    r = subprocess.run(
        [*_ssictl(), "modules", "status", "--dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("ssictl: error: module directory")
    r = subprocess.run(
        [*_ssictl(), "clusternode-num", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr


def test_every_command_has_json() -> None:
    for cmd in (
        ["clusternode-num"],
        ["modules", "load"],
        ["modules", "unload"],
        ["modules", "status"],
    ):
        r = run(*cmd, "--help")
        assert r.exit_code == 0 and "--json" in r.stdout, cmd


def test_startup_is_lean() -> None:
    code = (
        "import sys\n"
        "import ssictl.cli\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}\n"
        "    & {'rich', 'cffi', 'pycparser', 'elftools', 'ctypes', 'pyudev', 'jinja2'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_search_dirs_start_in_the_checkout() -> None:
    from ssictl import modules

    release = os.uname().release
    assert modules.search_dirs() == [
        REPO / "build" / "modules" / "out",
        Path("/lib/modules") / release / "updates" / "ssikit",
        Path("/lib/modules") / release / "extra" / "ssikit",
    ]


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An installed ssictl (no checkout) with /lib/modules under tmp_path."""
    from ssictl import modules

    monkeypatch.setattr(modules, "checkout_root", lambda: None)
    monkeypatch.setattr(modules, "LIB_MODULES", tmp_path / "lib_modules")
    monkeypatch.delenv(modules.MODULES_DIR_ENV, raising=False)
    return tmp_path / "lib_modules" / os.uname().release


@pytest.mark.parametrize("sub", ["updates/ssikit", "extra/ssikit"])
def test_modules_found_in_an_installed_layout(
    kernel: FakeKernel, installed: Path, sub: str
) -> None:
    d = installed / sub
    d.mkdir(parents=True)
    make_ko(d / "ssi_core.ko", {"name": "ssi_core", "depends": ""})
    r = run("modules", "status", "--json")
    assert r.exit_code == 0, r.output
    assert as_json(r)["dir"] == str(d)


def test_updates_wins_over_extra_and_env_over_both(
    kernel: FakeKernel, installed: Path, modules_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for sub in ("updates/ssikit", "extra/ssikit"):
        (installed / sub).mkdir(parents=True)
        make_ko(installed / sub / "ssi_core.ko", {"name": "ssi_core", "depends": ""})
    assert as_json(run("modules", "status", "--json"))["dir"] == str(installed / "updates/ssikit")
    monkeypatch.setenv("SSIKIT_MODULES_DIR", str(modules_dir))
    assert as_json(run("modules", "status", "--json"))["dir"] == str(modules_dir)
    d = installed / "extra/ssikit"
    assert as_json(run("modules", "status", "--dir", str(d), "--json"))["dir"] == str(d)


def test_no_modules_anywhere_says_where_it_looked(kernel: FakeKernel, installed: Path) -> None:
    (installed / "updates" / "ssikit").mkdir(parents=True)  # present but empty
    r = run("modules", "load")
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        "ssictl: error: no SSI kernel modules found",
        f"  looked in {installed / 'updates' / 'ssikit'} (no .ko files)",
        f"  looked in {installed / 'extra' / 'ssikit'} (absent)",
        "  fix: build them (`make modules` in the checkout), install them to "
        f"{installed / 'updates' / 'ssikit'}, or point --dir or $SSIKIT_MODULES_DIR at the "
        "directory holding the .ko files",
    ]
    assert kernel.calls == []


def test_checkout_root() -> None:
    from ssictl.checkout import checkout_root

    assert checkout_root() == REPO
