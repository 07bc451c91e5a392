"""abi.binding on the host: validation, and the real syscall error path.

The host kernel has no SSI syscalls, so calling their numbers returns ENOSYS: that
exercises the whole cffi -> syscall(2) -> errno -> exception path for real.
"""

from __future__ import annotations

import errno
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import abi
from abi import binding, errors

X86_64 = platform.machine() == "x86_64"


@pytest.fixture(autouse=True)
def _no_ssi_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Messages depend on /sys/kernel/ssi; the host has none, pin that.
    monkeypatch.setattr(errors, "SSI_SYSFS", tmp_path / "absent")


def _host_lacks_ssi() -> bool:
    try:
        abi.raw_syscall(abi.NR_SSISYS, abi.SSISYS_ABI_VERSION, 0, 0)
    except abi.SSINotAvailable:
        return True
    return False


needs_enosys = pytest.mark.skipif(not _host_lacks_ssi(), reason="this kernel serves ssisys")


# --------------------------------------------------------------------------- ENOSYS path


@needs_enosys
@pytest.mark.parametrize(
    ("call", "args", "label"),
    [
        (abi.clusternode_num, (), "ssisys(SSISYS_NODE_NUM)"),
        (abi.cluster_maxnodes, (), "ssisys(SSISYS_MAX_NODES)"),
        (abi.abi_version, (), "ssisys(SSISYS_ABI_VERSION)"),
        (abi.ssisys, (abi.SSISYS_NODE_NUM,), "ssisys(SSISYS_NODE_NUM)"),
        (abi.ssisys, (5, bytearray(16)), "ssisys(5)"),
        (abi.ssisys, (5, b"input"), "ssisys(5)"),
        (abi.ssisys, (5, memoryview(b"ro")), "ssisys(5)"),
        (abi.rfork, (2,), "ssi_rfork(node=2)"),
        (abi.migrate, (3,), "ssi_migrate(node=3)"),
        (abi.rexec, (2, "/bin/true", ["true"], {"A": "1"}), "ssi_rexec(node=2, '/bin/true')"),
        (abi.rexec, (2, b"/bin/true", [b"true"], None), "ssi_rexec(node=2, '/bin/true')"),
    ],
)
def test_enosys_raises_ssinotavailable_with_fix(
    call: Any, args: tuple[Any, ...], label: str
) -> None:
    with pytest.raises(abi.SSINotAvailable) as ei:
        call(*args)
    e = ei.value
    assert isinstance(e, OSError)
    assert e.errno == errno.ENOSYS
    assert e.call == label
    assert str(e) == (
        f"{label}: no SSI module serves this call (ENOSYS): load the modules with "
        "`ssictl modules load` (on a kernel built with the ssikit patches)"
    )
    assert e.strerror == str(e)


@needs_enosys
def test_enosys_when_some_module_is_loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sysfs = tmp_path / "ssi"
    sysfs.mkdir()
    monkeypatch.setattr(errors, "SSI_SYSFS", sysfs)
    with pytest.raises(abi.SSINotAvailable, match=r"no loaded SSI module serves this call") as ei:
        abi.migrate(2)
    assert "do not provide ssi_migrate" in ei.value.hint


@needs_enosys
def test_raw_syscall_skips_validation() -> None:
    # Out-of-range arguments reach the kernel (which, on the host, has no such call).
    for number, args in [
        (abi.NR_SSI_MIGRATE, (0,)),
        (abi.NR_SSI_RFORK, (abi.SSI_MAX_NODES + 1,)),
        (abi.NR_SSI_REXEC, (-1, 0, 0, 0)),
        (abi.NR_SSISYS, (abi.SSISYS_NR_CMDS, 0, 0)),
    ]:
        with pytest.raises(abi.SSINotAvailable) as ei:
            abi.raw_syscall(number, *args)
        assert ei.value.errno == errno.ENOSYS
    with pytest.raises(abi.SSINotAvailable, match=r"^ssisys\(999\)"):
        abi.raw_syscall(abi.NR_SSISYS, 999, 0, 0)
    with pytest.raises(abi.SSINotAvailable, match=r"^ssi_migrate\(0\)"):
        abi.raw_syscall(abi.NR_SSI_MIGRATE, 0)


@pytest.mark.skipif(not X86_64, reason="x86_64 syscall numbers")
def test_real_errnos_come_through_cffi() -> None:
    # close(-1) -> EBADF (generic SSIError); uname(1) -> EFAULT (SSIBadAddress).
    with pytest.raises(
        abi.SSIError, match=r"^syscall 3\(-1\): Bad file descriptor \(EBADF\)"
    ) as e1:
        abi.raw_syscall(3, -1)
    assert e1.value.errno == errno.EBADF
    with pytest.raises(abi.SSIBadAddress) as e2:
        abi.raw_syscall(63, 1)
    assert e2.value.errno == errno.EFAULT
    # getpid() succeeds and its result is returned.
    assert abi.raw_syscall(39) == os.getpid()


def test_raw_syscall_accepts_cffi_pointers() -> None:
    f = abi.ffi()
    buf = f.new("char[]", 65 * 6 + 64)
    if X86_64:
        assert abi.raw_syscall(63, buf) == 0  # uname(buf)
        assert f.string(buf) == os.uname().sysname.encode()


# --------------------------------------------------------------------------- validation


@pytest.fixture
def no_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if validation let a call through to the kernel."""

    def boom(*a: object, **k: object) -> int:
        raise AssertionError("reached the kernel")

    monkeypatch.setattr(binding, "_call", boom)
    monkeypatch.setattr(binding, "_fork_like", boom)


@pytest.mark.usefixtures("no_kernel")
@pytest.mark.parametrize("node", [0, -1, abi.SSI_MAX_NODES + 1, 1 << 40])
@pytest.mark.parametrize("fn", ["rfork", "migrate", "rexec"])
def test_node_out_of_range_is_valueerror(fn: str, node: int) -> None:
    args: tuple[Any, ...] = (node, "/bin/true", ["true"], {}) if fn == "rexec" else (node,)
    with pytest.raises(ValueError, match=rf"node must be in 1\.\.{abi.SSI_MAX_NODES}, got {node}"):
        getattr(abi, fn)(*args)


@pytest.mark.usefixtures("no_kernel")
@pytest.mark.parametrize("node", [True, 1.0, "1", None])
def test_node_of_wrong_type_is_typeerror(node: Any) -> None:
    with pytest.raises(TypeError, match="node must be an int"):
        abi.migrate(node)


@pytest.mark.usefixtures("no_kernel")
def test_ssisys_validation() -> None:
    with pytest.raises(ValueError, match=r"cmd must be in 0\.\.63, got 64"):
        abi.ssisys(abi.SSISYS_NR_CMDS)
    with pytest.raises(ValueError):
        abi.ssisys(-1)
    with pytest.raises(TypeError):
        abi.ssisys("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="buf must be"):
        abi.ssisys(1, "text")


@pytest.mark.usefixtures("no_kernel")
def test_rexec_validation() -> None:
    with pytest.raises(ValueError, match="argv must not be empty"):
        abi.rexec(1, "/bin/true", [], {})
    with pytest.raises(TypeError, match="argv must be a sequence"):
        abi.rexec(1, "/bin/true", "true", {})
    with pytest.raises(ValueError, match="NUL"):
        abi.rexec(1, "/bin/t\0rue", ["true"], {})
    with pytest.raises(ValueError, match="NUL"):
        abi.rexec(1, "/bin/true", ["tr\0ue"], {})
    with pytest.raises(ValueError, match="path must not be empty"):
        abi.rexec(1, "", ["true"], {})
    with pytest.raises(ValueError, match="illegal environment variable name"):
        abi.rexec(1, "/bin/true", ["true"], {"A=B": "x"})


def test_rexec_marshals_argv_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_call(number: int, args: tuple[Any, ...], **kw: Any) -> int:
        f = abi.ffi()
        node, path, argv, envp = args

        def strings(arr: Any) -> list[bytes]:
            out = []
            i = 0
            while arr[i] != f.NULL:
                out.append(f.string(arr[i]))
                i += 1
            return out

        seen.update(
            number=number,
            node=node,
            path=f.string(path),
            argv=strings(argv),
            envp=strings(envp),
            kw=kw,
        )
        return 0

    monkeypatch.setattr(binding, "_call", fake_call)
    abi.rexec(5, "/usr/bin/env", ["env", "-i", b"x"], {"K": "v", "E": ""})
    assert seen["number"] == abi.NR_SSI_REXEC
    assert seen["node"] == 5
    assert seen["path"] == b"/usr/bin/env"
    assert seen["argv"] == [b"env", b"-i", b"x"]
    assert seen["envp"] == [b"K=v", b"E="]
    assert seen["kw"]["node"] == 5 and seen["kw"]["path"] == "/usr/bin/env"
    monkeypatch.setenv("SSIKIT_TEST_VAR", "yes")
    abi.rexec(5, "/bin/true", ["true"])
    assert b"SSIKIT_TEST_VAR=yes" in seen["envp"]


def test_ssisys_passes_writable_buffers_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    def fake_call(number: int, args: tuple[Any, ...], **kw: Any) -> int:
        f = abi.ffi()
        cmd, ptr, length = args
        seen.append((cmd, length))
        if length:
            f.memmove(ptr, b"\x07" * length, length)  # the "kernel" writes its result
        return 11

    monkeypatch.setattr(binding, "_call", fake_call)
    out = bytearray(4)
    assert abi.ssisys(9, out) == 11
    assert out == b"\x07" * 4
    ro = b"abc"
    abi.ssisys(9, ro)
    assert ro == b"abc"  # copied: the immutable object is untouched
    abi.ssisys(9)
    f = abi.ffi()
    value = f.new("uint64_t *")
    abi.ssisys(9, value)
    assert value[0] == 0x0707070707070707  # filled in place
    abi.ssisys(9, f.new("__u32[10]"))
    assert seen == [(9, 4), (9, 3), (9, 0), (9, 8), (9, 40)]
    with pytest.raises(TypeError, match="must point to a struct or array"):
        abi.ssisys(9, f.cast("void *", 0))


# --------------------------------------------------------------------------- fork path


@pytest.mark.skipif(not X86_64, reason="uses x86_64 fork(2) = 57")
def test_fork_like_runs_at_fork_hooks_and_returns_like_fork(tmp_path: Path) -> None:
    """The rfork machinery, driven by the real fork(2) in a throwaway interpreter."""
    script = tmp_path / "f.py"
    script.write_text(
        "import os, sys\n"
        "from abi import binding\n"
        "marks = []\n"
        "os.register_at_fork(before=lambda: marks.append('b'),\n"
        "    after_in_child=lambda: marks.append('c'),\n"
        "    after_in_parent=lambda: marks.append('p'))\n"
        "pid = binding._fork_like(57, (), call='fork()', syscall='fork', node=1)\n"
        "if pid == 0:\n"
        "    os._exit(0 if marks == ['b', 'c'] else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "assert marks == ['b', 'p'], marks\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "0"


@needs_enosys
def test_rfork_failure_leaves_interpreter_usable() -> None:
    with pytest.raises(abi.SSINotAvailable):
        abi.rfork(1)
    # PyOS_AfterFork_Parent released the import lock: imports still work.
    import json  # noqa: F401

    with pytest.raises(abi.SSINotAvailable):
        abi.rfork(1)


# --------------------------------------------------------------------------- import cost


def test_import_is_lean() -> None:
    code = (
        "import sys, abi\n"
        "heavy = [m for m in ('cffi', 'pycparser', 'ctypes') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
