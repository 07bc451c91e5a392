"""Host end of the command channel to a node's guest agent (see guest/agent.sh)."""

from __future__ import annotations

import base64
import itertools
import socket
import threading
import time
from pathlib import Path


class AgentError(RuntimeError):
    """The channel broke: the node went away or the agent restarted."""


class AgentTimeout(AgentError, TimeoutError):
    """No answer in time."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode() if data else "-"


def _unb64(field: str) -> bytes:
    return b"" if field == "-" else base64.b64decode(field)


class AgentChannel:
    """One stream connection to QEMU's `nodeN.cmd` socket; one request at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._buf = b""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self, deadline: float) -> None:
        """Connect to the QEMU chardev socket (it appears shortly after QEMU starts)."""
        self.close()
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.path))
                self._sock = sock
                self._buf = b""
                return
            except OSError as e:
                sock.close()
                if time.monotonic() >= deadline:
                    raise AgentTimeout(f"cannot connect to {self.path}: {e}") from e
                time.sleep(0.02)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buf = b""

    def _readline(self, deadline: float) -> str:
        sock = self._sock
        if sock is None:
            raise AgentError("channel not connected")
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentTimeout(f"no answer from agent on {self.path}")
            sock.settimeout(left)
            try:
                chunk = sock.recv(1 << 20)
            except TimeoutError as e:
                raise AgentTimeout(f"no answer from agent on {self.path}") from e
            except OSError as e:
                self.close()
                raise AgentError(f"channel {self.path} broke: {e}") from e
            if not chunk:
                self.close()
                raise AgentError(f"node closed the channel {self.path} (QEMU gone?)")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("ascii", "replace").strip()

    def wait_ready(self, deadline: float) -> int:
        """Wait for the agent's `READY <node>`; returns the node number it reports."""
        with self._lock:
            while True:
                words = self._readline(deadline).split()
                if len(words) == 2 and words[0] == "READY":
                    return int(words[1])

    def send_only(self, cmd: str) -> None:
        """Send a request and do not wait (for `reboot -f` and the like)."""
        with self._lock:
            if self._sock is None:
                raise AgentError("channel not connected")
            rid = next(self._ids)
            self._sock.sendall(f"REQ {rid} 0 {_b64(cmd.encode())}\n".encode())

    def run(self, cmd: str, timeout: float) -> tuple[int, bytes, bytes]:
        """Run `cmd` with /bin/sh in the guest; (exit code, stdout, stderr).

        The guest kills the command after `timeout` seconds (exit code 137); the
        host gives up a little later than that.
        """
        with self._lock:
            if self._sock is None:
                raise AgentError("channel not connected")
            rid = next(self._ids)
            guest_timeout = max(1, int(timeout + 0.999))
            req = f"REQ {rid} {guest_timeout} {_b64(cmd.encode())}\n"
            try:
                self._sock.sendall(req.encode())
            except OSError as e:
                self.close()
                raise AgentError(f"channel {self.path} broke: {e}") from e
            deadline = time.monotonic() + guest_timeout + 10.0
            while True:
                words = self._readline(deadline).split(" ")
                if words[0] == "READY":
                    raise AgentError("the agent restarted while running a command")
                if words[0] != "RES" or len(words) != 5 or words[1] != str(rid):
                    continue  # a late answer to a request we gave up on
                return int(words[2]), _unb64(words[3]), _unb64(words[4])
