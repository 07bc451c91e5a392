"""The resident ssictl daemon and its C thin client, on the host (no SSI kernel needed).

The client is compiled from ssictl/client.c, the daemon runs as a subprocess on
a socket in a temporary directory; every command is also run through the plain
Python CLI (the client's fallback) and must give the same answer.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu.cbuild import SSICTL_CLIENT_SOURCE, build_c_program
from ssictl.daemon import BadRequest, parse_request

REPO = Path(__file__).resolve().parents[2]
PYTHON_CLI = REPO / ".venv" / "bin" / "ssictl"


def _req(*fields: bytes) -> bytes:
    return b"\0".join(fields) + b"\0"


def test_parse_request_splits_environment_and_argv() -> None:
    body = _req(b"ssictl/1", b"umask=027", b"A=1", b"B=x=y", b"", b"cluster", b"status")
    req = parse_request(body, [10, 11, 12, 13])
    assert req.argv == ["cluster", "status"]
    assert req.env == {"A": "1", "B": "x=y"}
    assert req.umask == 0o027
    assert req.fds == [10, 11, 12, 13]


def test_parse_request_with_no_arguments() -> None:
    req = parse_request(_req(b"ssictl/1", b"umask=22", b""), [0, 1, 2, 3])
    assert req.argv == [] and req.env == {}


@pytest.mark.parametrize(
    ("body", "fds", "why"),
    [
        (_req(b"ssictl/2", b"umask=22", b""), [0, 1, 2, 3], "not an ssictl/1"),
        (_req(b"ssictl/1", b"mask=22", b""), [0, 1, 2, 3], "no umask"),
        (_req(b"ssictl/1", b"umask=9x", b""), [0, 1, 2, 3], "bad umask"),
        (_req(b"ssictl/1", b"umask=22", b"A=1"), [0, 1, 2, 3], "no end of environment"),
        (b"ssictl/1\0umask=22\0\0x", [0, 1, 2, 3], "NUL-terminated"),
        (_req(b"ssictl/1", b"umask=22", b""), [0, 1, 2], "expected 4 descriptors"),
    ],
)
def test_parse_request_refuses(body: bytes, fds: list[int], why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        parse_request(body, fds)


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """World-traversable (another user runs the client in one test), removed after."""
    d = Path(tempfile.mkdtemp(prefix="ssictl-daemon-test-", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def client(shared_dir: Path) -> Path:
    return build_c_program(SSICTL_CLIENT_SOURCE, shared_dir / "ssictl", ("-Werror",))


@pytest.fixture(scope="module")
def daemon_dir(shared_dir: Path) -> Iterator[Path]:
    d = shared_dir / "run"
    d.mkdir(mode=0o755)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssictl.daemon", "--dir", str(d)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    (d / "starting").write_text(f"{proc.pid}\n")
    try:
        yield d
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def _env(daemon_dir: Path | None) -> dict[str, str]:
    """Through the daemon only (no fallback to hide a daemon that did not answer),
    or straight to the Python CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSICTL_")}
    if daemon_dir is None:
        env["SSICTL_NO_DAEMON"] = "1"
        env["SSICTL_PYTHON_CLI"] = str(PYTHON_CLI)
    else:
        env["SSICTL_DAEMON_DIR"] = str(daemon_dir)
        env["SSICTL_PYTHON_CLI"] = "/nonexistent/ssictl"
    return env


def _run(client: Path, daemon_dir: Path | None, *args: str, **kw: object
         ) -> subprocess.CompletedProcess[str]:
    proc: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        [str(client), *args], capture_output=True, text=True,
        env=_env(daemon_dir), timeout=60, check=False, **kw)
    return proc


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--bogus",),
        ("cluster", "status", "--help"),
        ("cluster", "setup", "--key-file", "/nonexistent/key", "--peer", "1=10.0.0.1"),
        ("clusternode-num", "--json"),
    ],
)
def test_daemon_answers_like_the_python_cli(client: Path, daemon_dir: Path,
                                            args: tuple[str, ...]) -> None:
    via_daemon = _run(client, daemon_dir, *args)
    direct = _run(client, None, *args)
    assert (via_daemon.returncode, via_daemon.stdout, via_daemon.stderr) == (
        direct.returncode, direct.stdout, direct.stderr)


def test_client_waits_for_a_starting_daemon(client: Path, daemon_dir: Path) -> None:
    """The fixture wrote "starting" before the daemon listened: the first call waits."""
    r = _run(client, daemon_dir, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout
    assert (daemon_dir / "ssictl.sock").exists()


def test_worker_uses_the_clients_working_directory(
        client: Path, daemon_dir: Path, tmp_path: Path) -> None:
    """A relative path is the client's: found through the daemon as it is directly."""
    (tmp_path / "key").write_text("00" * 31 + "\n")  # 31 bytes: refused as too short
    args = ("cluster", "setup", "--key-file", "key", "--peer", "1=10.0.0.1")
    via_daemon = _run(client, daemon_dir, *args, cwd=tmp_path)
    direct = _run(client, None, *args, cwd=tmp_path)
    assert via_daemon.returncode != 0 and "No such file" not in via_daemon.stderr
    assert (via_daemon.returncode, via_daemon.stderr) == (direct.returncode, direct.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the client as another user")
def test_worker_runs_with_the_clients_credentials(client: Path, daemon_dir: Path) -> None:
    """A root-only key file is readable by a root client, not by nobody's."""
    key = client.parent / "key"
    key.write_text("00" * 32 + "\n")
    os.chmod(key, 0o600)
    nobody = pwd.getpwnam("nobody")

    def as_nobody() -> None:
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    args = ("cluster", "setup", "--key-file", str(key), "--peer", "1=10.0.0.1")
    as_root = _run(client, daemon_dir, *args)
    denied = _run(client, daemon_dir, *args, preexec_fn=as_nobody)
    denied_direct = _run(client, None, *args, preexec_fn=as_nobody)
    assert "ermission denied" not in as_root.stderr
    assert denied.returncode != 0 and "ermission denied" in denied.stderr
    assert (denied.returncode, denied.stderr) == (denied_direct.returncode, denied_direct.stderr)


def test_ctrl_c_reaches_the_worker(client: Path, daemon_dir: Path) -> None:
    """SIGINT to the client interrupts the command (it blocks reading the key)."""
    proc = subprocess.Popen(
        [str(client), "cluster", "setup", "--key-file", "-", "--peer", "1=10.0.0.1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_env(daemon_dir),
    )
    time.sleep(1.0)  # the worker is parked in read(0) by now, or soon
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    # stdin stays open (communicate() would close it: an EOF racing the signal).
    proc.wait(timeout=30)
    assert proc.stderr is not None and proc.stdin is not None
    err = proc.stderr.read()
    proc.stdin.close()
    assert proc.returncode == 130, err


def test_daemon_drops_a_malformed_request_and_keeps_serving(client: Path,
                                                            daemon_dir: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(daemon_dir / "ssictl.sock"))
        s.sendall(struct.pack("<I", 5) + b"junk\0")
        assert s.recv(4) == b""  # refused: closed without an exit code
    r = _run(client, daemon_dir, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop a capability")
def test_root_with_fewer_capabilities_is_refused(client: Path, daemon_dir: Path) -> None:
    """The worker would have the daemon's full capability set: refused, not served."""
    drop = ["setpriv", "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin", "--"]
    r = subprocess.run([*drop, str(client), "--help"], capture_output=True, text=True,
                       env=_env(daemon_dir), timeout=60, check=False)
    assert r.returncode == 126, r
    assert "fewer capabilities" in r.stderr and "SSICTL_NO_DAEMON=1" in r.stderr
    assert r.stdout == ""
    direct = subprocess.run([*drop, str(client), "--help"], capture_output=True, text=True,
                            env=_env(None), timeout=60, check=False)
    assert direct.returncode == 0 and "Usage" in direct.stdout


def test_same_context_is_served(client: Path, daemon_dir: Path) -> None:
    from ssictl.daemon import Peer, context_mismatch

    me = Peer(os.getpid(), os.getuid(), os.getgid())
    assert context_mismatch(me) is None


def test_a_stalled_client_holds_up_no_one(client: Path, daemon_dir: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.connect(str(daemon_dir / "ssictl.sock"))
        stalled.sendall(struct.pack("<I", 100) + b"ssictl/1\0")  # and then nothing
        t0 = time.monotonic()
        r = _run(client, daemon_dir, "--help")
        assert r.returncode == 0 and "Usage" in r.stdout
        assert time.monotonic() - t0 < 4.0  # not after the stalled one's deadline


def test_client_runs_the_python_cli_when_the_daemon_closes_before_starting(
        client: Path, shared_dir: Path) -> None:
    """A daemon that accepts and hangs up ran nothing: the client falls back."""
    d = shared_dir / "closing"
    d.mkdir(mode=0o755, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(d / "ssictl.sock"))
        listener.listen(4)

        def hang_up() -> None:
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.close()

        t = threading.Thread(target=hang_up)
        t.start()
        env = _env(d)
        env["SSICTL_PYTHON_CLI"] = str(PYTHON_CLI)
        r = subprocess.run([str(client), "--help"], capture_output=True, text=True,
                           env=env, timeout=60, check=False)
        t.join(timeout=10)
    assert r.returncode == 0 and "Usage" in r.stdout, r


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_a_sandboxed_caller_is_refused(client: Path, daemon_dir: Path) -> None:
    """no_new_privs (as seccomp sandboxes set) must not be shed by asking the daemon."""
    r = subprocess.run(["setpriv", "--no-new-privs", "--", str(client), "--help"],
                       capture_output=True, text=True, env=_env(daemon_dir), timeout=60,
                       check=False)
    assert r.returncode == 126, r
    assert "sandbox" in r.stderr and r.stdout == ""


# --------------------------------------------------------------------------- autostart


@pytest.fixture()
def autostart_layout() -> Iterator[tuple[Path, Path]]:
    """A checkout-like tree (build/guest-bin/ssictl, .venv -> the real venv) and a
    daemon directory; every daemon started in it is stopped afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ssictl-autostart-", dir="/tmp"))
    os.chmod(root, 0o755)
    (root / ".venv").symlink_to(REPO / ".venv")
    client = build_c_program(SSICTL_CLIENT_SOURCE, root / "build" / "guest-bin" / "ssictl",
                             ("-Werror",))
    run = root / "run"
    run.mkdir(mode=0o755)
    try:
        yield client, run
    finally:
        pid = _daemon_pid(run)
        if pid:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)
        shutil.rmtree(root, ignore_errors=True)


def _daemon_pid(run: Path) -> int:
    """The pid of the daemon listening in *run* (SO_PEERCRED), 0 if none listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(run / "ssictl.sock"))
        except OSError:
            return 0
        cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid: int = struct.unpack("3i", cred)[0]
    return pid


def _write_autostart(run: Path, lines: list[str], mode: int = 0o644) -> None:
    f = run / "autostart"
    f.write_text("".join(line + "\n" for line in lines))
    os.chmod(f, mode)


def _client_env(run: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "SSICTL_DAEMON_DIR": str(run),
            "SSICTL_PYTHON_CLI": "/nonexistent/ssictl", "CALLERS_OWN": "1"}


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the daemon autostarts for root only")


@needs_root
def test_first_root_call_starts_one_daemon_with_the_listed_environment(
    autostart_layout: tuple[Path, Path],
) -> None:
    client, run = autostart_layout
    _write_autostart(run, ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "MARK=from-autostart"])
    # Four clients at once: one daemon starts, all four are answered through it (the
    # Python CLI fallback does not exist here).
    procs = [subprocess.Popen([str(client), "--help"], env=_client_env(run),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "Usage" in out, err
    pid = _daemon_pid(run)
    assert pid > 0
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1:5] == [b"-m", b"ssictl.daemon", b"--dir", str(run).encode()]
    env = dict(e.split(b"=", 1) for e in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
               if e)
    assert env == {b"PATH": b"/usr/bin:/bin", b"LANG": b"C.UTF-8", b"MARK": b"from-autostart"}
    daemons = [p for p in Path("/proc").iterdir() if p.name.isdigit()
               and _cmdline_has(p, str(run).encode())]
    assert len(daemons) == 1, daemons
    assert not (run / "starting").exists()  # removed by the daemon once it listened


def _cmdline_has(proc: Path, word: bytes) -> bool:
    try:
        return b"ssictl.daemon" in (c := (proc / "cmdline").read_bytes()) and word in c
    except OSError:
        return False


@needs_root
def test_no_autostart_from_a_file_others_can_write(autostart_layout: tuple[Path, Path]) -> None:
    client, run = autostart_layout
    _write_autostart(run, ["PATH=/usr/bin:/bin"], mode=0o666)
    r = subprocess.run([str(client), "--help"], env=_client_env(run), capture_output=True,
                       text=True, timeout=60, check=False)
    assert "ignoring" in r.stderr and "autostart" in r.stderr
    assert r.returncode == 127  # fell back to the (absent) Python CLI
    assert _daemon_pid(run) == 0


@needs_root
def test_no_autostart_for_an_unprivileged_caller(autostart_layout: tuple[Path, Path]) -> None:
    client, run = autostart_layout
    _write_autostart(run, ["PATH=/usr/bin:/bin"])
    nobody = pwd.getpwnam("nobody")
    env = {**_client_env(run), "SSICTL_PYTHON_CLI": str(PYTHON_CLI)}
    r = subprocess.run([str(client), "--help"], env=env, capture_output=True, text=True,
                       timeout=120, check=False, user=nobody.pw_uid, group=nobody.pw_gid,
                       extra_groups=[])
    assert r.returncode == 0 and "Usage" in r.stdout, r.stderr
    assert _daemon_pid(run) == 0 and not (run / "starting").exists()
