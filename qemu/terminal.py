"""Attach the user's terminal to a node's interactive shell socket (`nodeN.tty`)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import termios
import tty
from pathlib import Path

DETACH_KEY = b"\x1d"  # Ctrl-]


def attach(path: Path, banner: str = "") -> None:
    """Copy bytes both ways until Ctrl-] is typed (or stdin/the socket closes)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    fd = sys.stdin.fileno()
    is_tty = os.isatty(fd)
    old = termios.tcgetattr(fd) if is_tty else None
    if banner:
        sys.stderr.write(banner + "\r\n")
        sys.stderr.flush()
    try:
        if is_tty:
            tty.setraw(fd)
        sock.sendall(b"\n")  # the first prompt was printed before anyone listened
        while True:
            ready, _, _ = select.select([fd, sock], [], [])
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if fd in ready:
                data = os.read(fd, 4096)
                if not data:
                    break
                if is_tty and DETACH_KEY in data:
                    head = data.split(DETACH_KEY, 1)[0]
                    if head:
                        sock.sendall(head)
                    break
                sock.sendall(data)
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        with contextlib.suppress(OSError):
            sock.close()
        sys.stderr.write("\r\n[detached]\r\n")
