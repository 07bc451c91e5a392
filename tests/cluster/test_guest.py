"""What a guest gives programs: a defined environment, the Python image, the ssictl daemon.

* The interactive shell (hvc0, what `make cluster` attaches to) and the command
  channel run with an environment the harness defines: nothing of the host
  user's (PATH, dotfiles under /root, pyenv shims).
* Python's interpreter, standard library, venv and shared libraries come from
  the EROFS image, bound over their own paths.
* ``ssictl`` is the thin client of the resident daemon, which the first root
  call starts (not the boot) and which runs each command with the caller's
  credentials: an unprivileged caller gets exactly the errors it gets without
  the daemon.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from qemu import Cluster, Node

CLUSTER_NODES = 1
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
EXPECTED_PATH = (f"{REPO}/build/guest-bin:{VENV}/bin:/usr/local/sbin:/usr/local/bin:"
                 "/usr/sbin:/usr/bin:/sbin:/bin")
NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups"


def _shell_output(node: Node, cluster: Cluster, script: str, timeout: float = 60.0) -> str:
    """Run `script` in the interactive shell on hvc0; the text between two markers."""
    assert cluster.sock_dir is not None
    path = cluster.sock_dir / f"node{node.number}.tty"
    begin, end = "SSI-BEGIN-MARK", "SSI-END-MARK"
    deadline = time.monotonic() + timeout

    def read_until(s: socket.socket, buf: bytes, want: bytes) -> bytes:
        while want not in buf:
            left = deadline - time.monotonic()
            assert left > 0, f"no {want!r} from the shell on {path}: {buf[-500:]!r}"
            s.settimeout(left)
            chunk = s.recv(65536)
            assert chunk, "the shell console closed"
            buf += chunk
        return buf

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.sendall(b"\n")  # starts the shell (init waits for a line)
        # bash drops what was typed before its first prompt: wait for that.
        read_until(s, b"", b"# ")
        # Markers built at run time, so the echoed command line never matches.
        s.sendall(f"echo SSI-BEGIN-''MARK; {script}; echo SSI-END-''MARK\n".encode())
        buf = read_until(s, b"", end.encode() + b"\r\n")
        s.sendall(b"exit\n")
    text = buf.decode(errors="replace").replace("\r", "")
    return text.split(begin + "\n", 1)[1].split(end + "\n", 1)[0]


def _env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^\w+=", line))


def test_interactive_shell_has_nothing_of_the_host_user(cluster: Cluster) -> None:
    env = _env(_shell_output(cluster.node(1), cluster, "env"))
    assert env["PATH"] == EXPECTED_PATH
    assert env["HOME"] == "/root"
    leaked = {k: v for k, v in env.items() if ".pyenv" in v or ".cargo" in v}
    assert not leaked, f"host user's settings in the guest shell: {leaked}"
    assert "PYENV_ROOT" not in env


def test_command_channel_environment_and_root_home(cluster: Cluster) -> None:
    nd = cluster.node(1)
    assert nd.succeed("echo $PATH").strip() == EXPECTED_PATH
    # /root is a fresh tmpfs: none of the host's dotfiles or credentials.
    guest_home = set(nd.succeed("ls -A /root").split())
    host_home = {p.name for p in Path("/root").iterdir()} if Path("/root").is_dir() else set()
    assert not guest_home & host_home, "the host's /root shows through"
    assert nd.succeed("awk '$2 == \"/root\" {print $3}' /proc/mounts").strip() == "tmpfs"
    assert nd.succeed("command -v python3").strip() == f"{VENV}/bin/python3"
    assert nd.succeed("command -v ssictl").strip() == f"{REPO}/build/guest-bin/ssictl"


def test_python_runtime_comes_from_the_image(cluster: Cluster) -> None:
    nd = cluster.node(1)
    mounts = nd.succeed("cat /proc/mounts")
    stdlib = nd.succeed(f"{VENV}/bin/python3 -S -c 'import os; print(os.__file__)'").strip()
    on_erofs = {line.split()[1] for line in mounts.splitlines() if " erofs " in line}
    assert str(Path(stdlib).parent) in on_erofs
    assert str(VENV) in on_erofs
    assert "/usr/lib/x86_64-linux-gnu/libc.so.6" in on_erofs
    # Still read-only: the image and the host root alike.
    nd.fail(f"touch {VENV}/bin/probe")
    nd.fail("touch /usr/lib/python3*/probe.py")


def test_ssictl_goes_through_the_daemon_and_matches_the_python_cli(cluster: Cluster) -> None:
    nd = cluster.node(1)
    # The boot started no daemon; the first root call starts it and is served by it.
    nd.fail("test -e /run/ssictl/ssictl.sock")
    nd.succeed("SSICTL_PYTHON_CLI=/nonexistent ssictl --help", timeout=120)
    nd.succeed("test -S /run/ssictl/ssictl.sock")
    for args in ("--help", "--bogus", "cluster status --help", "clusternode-num"):
        via_daemon = nd.execute(f"SSICTL_PYTHON_CLI=/nonexistent ssictl {args}")
        direct = nd.execute(f"SSICTL_NO_DAEMON=1 ssictl {args}")
        assert via_daemon == direct, args


def test_daemon_gives_an_unprivileged_caller_no_more_than_it_has(cluster: Cluster) -> None:
    """Setting the cluster key needs CAP_SYS_ADMIN: nobody gets EPERM, with or without
    the daemon, and the key stays as it was."""
    nd = cluster.node(1)
    nd.succeed("ssictl modules load ssi_core ics", timeout=120)
    nd.succeed("test -S /run/ssictl/ssictl.sock")
    try:
        cmd = "printf '%s\\n' {key} | {who} ssictl cluster setup --key-file - --peer 1=169.254.77.1"
        key = "ab" * 32
        via_daemon = nd.execute(cmd.format(key=key, who=f"SSICTL_PYTHON_CLI=/nonexistent {NOBODY}"))
        direct = nd.execute(cmd.format(key=key, who=f"SSICTL_NO_DAEMON=1 {NOBODY}"))
        assert via_daemon[0] != 0 and "EPERM" in via_daemon[2], via_daemon
        assert via_daemon == direct
        # As root through the daemon it works (so the refusal above was the caller's).
        nd.succeed(cmd.format(key=key, who=""), timeout=120)
    finally:
        nd.execute("ssictl modules unload", timeout=120)
