"""One HMP command to a node's QEMU monitor (``-monitor unix:nodeN.mon``).

The monitor answers on a unix stream socket: a banner and ``(qemu) `` prompt,
then for each command line its output and the prompt again.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

PROMPT = b"(qemu) "


def _read_to_prompt(sock: socket.socket, deadline: float) -> bytes:
    buf = b""
    while not buf.endswith(PROMPT):
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("QEMU closed its monitor")
        buf += chunk
    return buf[: -len(PROMPT)]


def hmp(path: Path, command: str, timeout: float = 5.0) -> str:
    """Run `command` on the monitor at `path`; its output, without echo or prompt."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        _read_to_prompt(sock, deadline)
        sock.sendall(command.encode() + b"\n")
        out = _read_to_prompt(sock, deadline).decode(errors="replace")
    # the monitor echoes the line (with terminal escapes) before its output
    lines = out.replace("\r", "").split("\n")
    return "\n".join(line for line in lines[1:] if line.strip())
