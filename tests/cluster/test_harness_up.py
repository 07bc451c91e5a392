"""`python -m qemu up` end to end (1-node clusters): the command reaches the guest
verbatim, two runs at once keep their own logs, Ctrl-C tears the cluster down
and exits 130."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qemu.paths import REPO_ROOT, kernel_path

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _need_kernel() -> None:
    kernel_path()  # KernelMissing names the fix


def up_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "qemu", "up", "--nodes", "1", *args]


def env_with(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SSI_LOG_ROOT": str(tmp_path / "logs"), **extra}


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            pids.append(int(proc.name))
    return pids


def test_exec_reaches_the_guest_verbatim(tmp_path: Path) -> None:
    command = "echo '$HOME' '$(echo hi)'; echo \"$(echo hi)\" `echo tick`; echo \"h=$HOME\"; exit 7"
    r = subprocess.run(
        up_cmd("--exec-env", "SSI_TEST_EXEC"), cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=240, check=False, env=env_with(tmp_path, SSI_TEST_EXEC=command),
    )
    assert r.returncode == 7, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["$HOME $(echo hi)", "hi tick"], r.stdout
    assert re.fullmatch(r"h=/\S*", lines[2]), lines  # expanded by the guest's shell
    assert r.stderr.startswith("booting 1 node(s), logs in ")  # progress on stderr


def test_two_runs_at_once_keep_their_own_logs(tmp_path: Path) -> None:
    runs = [
        subprocess.Popen(
            # The marker goes to stdout and, at KERN_ERR, to the kernel console.
            up_cmd("--exec", f"echo marker-{tag}; echo '<3>console-{tag}' >/dev/kmsg"),
            cwd=REPO_ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_with(tmp_path),
        )
        for tag in ("A", "B")
    ]
    results = [(p.communicate(timeout=240), p.returncode) for p in runs]
    dirs = []
    for tag, ((out, err), rc) in zip(("A", "B"), results, strict=True):
        assert rc == 0 and out == f"marker-{tag}\n", err
        m = re.search(r"logs in (\S+) \.\.\.", err)
        assert m, err
        dirs.append(Path(m.group(1)))
    assert dirs[0].parent != dirs[1].parent  # one run directory each
    for tag, other, d in (("A", "B", dirs[0]), ("B", "A", dirs[1])):
        commands = (d / "node1.commands.log").read_text()
        assert f"$ echo marker-{tag};" in commands and f"marker-{other}" not in commands
        console = (d / "node1.console.log").read_text(errors="replace")
        assert f"console-{tag}" in console and f"console-{other}" not in console
        assert (d / "node1.qemu.log").exists() and (d / "hub.log").exists()
    latest = (tmp_path / "logs" / "latest").resolve()
    assert latest in {d.parent.resolve() for d in dirs}


def read_until(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    assert proc.stderr is not None
    seen = ""
    while True:
        line = proc.stderr.readline()
        assert line, f"exited ({proc.poll()}) before printing {pattern!r}:\n{seen}"
        seen += line
        m = re.search(pattern, line)
        if m:
            return m


def interrupt_and_check(proc: subprocess.Popen[str], log_dir: Path, sock_dir: Path | None) -> None:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 20, "teardown took too long"
    assert "interrupted" in err and "Traceback" not in err, err
    assert processes_mentioning(str(log_dir / "node1.console.log")) == [], "QEMU left running"
    if sock_dir is not None:
        assert not sock_dir.exists()


def test_ctrl_c_while_the_command_runs(tmp_path: Path) -> None:
    command = "echo '<3>ssi-ctrl-c-test ready' > /dev/kmsg; sleep 300"
    proc = subprocess.Popen(
        up_cmd("--exec", command), cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env_with(tmp_path),
    )
    try:
        log_dir = Path(read_until(proc, r"logs in (\S+) \.\.\.").group(1))
        sock_dir = Path(read_until(proc, r"sockets in (\S+)\)").group(1))
        console = log_dir / "node1.console.log"
        deadline = time.monotonic() + 120
        while "ssi-ctrl-c-test ready" not in console.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.1)
        interrupt_and_check(proc, log_dir, sock_dir)
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_while_booting(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        up_cmd("--exec", "true"), cwd=REPO_ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env_with(tmp_path),
    )
    try:
        log_dir = Path(read_until(proc, r"logs in (\S+) \.\.\.").group(1))
        console = log_dir / "node1.console.log"
        deadline = time.monotonic() + 60
        while not console.exists():  # QEMU is up; its agent not yet
            assert time.monotonic() < deadline and proc.poll() is None, "QEMU never started"
            time.sleep(0.01)
        interrupt_and_check(proc, log_dir, None)
    finally:
        proc.kill()
        proc.wait()
