"""One QEMU node: its process, console log and command channel."""

from __future__ import annotations

import contextlib
import ctypes
import re
import signal
import subprocess
import time
from pathlib import Path

from .channel import AgentChannel, AgentError, AgentTimeout
from .console_scan import read_from
from .logs import CommandLog
from .qemu_cmd import NodeConfig, qemu_command

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: QEMU gets SIGKILL when the
    # thread that started it goes away, so no node outlives a crashed harness.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class NodeError(RuntimeError):
    """The node is not running or did not come up."""


class ConsoleTimeout(NodeError):
    """Text awaited on the console did not appear in time."""


class CommandFailed(AssertionError):
    """A command's exit code was not what the caller asserted."""

    def __init__(self, node: str, cmd: str, rc: int, out: str, err: str, why: str) -> None:
        self.node, self.cmd, self.rc, self.out, self.err = node, cmd, rc, out, err
        super().__init__(
            f"{node}: {why}: {cmd!r} exited {rc}\n--- stdout ---\n{out}--- stderr ---\n{err}"
        )


class Node:
    """A cluster node. Start it from a thread that outlives it (see `_die_with_parent`)."""

    def __init__(
        self,
        cfg: NodeConfig,
        qemu_log: Path | None = None,
        command_log: CommandLog | None = None,
    ) -> None:
        self.cfg = cfg
        self.number = cfg.node
        self.name = f"node{cfg.node}"
        self.qemu_log = qemu_log
        self.command_log = command_log
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel = AgentChannel(cfg.sockets.cmd)
        self.started_at = 0.0
        self.boot_seconds = 0.0
        self.boot_console_offset = 0  # console bytes written before this boot

    def __repr__(self) -> str:
        return f"<Node {self.name} {'running' if self.is_running else 'stopped'}>"

    # ---- lifecycle ----

    @property
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        """Start QEMU and return at once; `wait_ready` waits for the agent."""
        if self.is_running:
            raise NodeError(f"{self.name} is already running")
        self.channel.close()
        for path in self.cfg.sockets.all():
            path.unlink(missing_ok=True)
        self.cfg.console_log.parent.mkdir(parents=True, exist_ok=True)
        self.boot_console_offset = self.console_size()
        if self.command_log:
            self.command_log.note(f"=== {self.name}: QEMU starts")
        log = open(self.qemu_log, "ab") if self.qemu_log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                qemu_command(self.cfg),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
            )
        finally:
            if self.qemu_log:
                log.close()  # type: ignore[union-attr]

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until the agent announces READY; returns seconds since spawn."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            step = min(deadline, time.monotonic() + 0.5)
            try:
                if not self.channel.connected:
                    self.channel.connect(step)
                got = self.channel.wait_ready(step)
            except AgentTimeout:
                if time.monotonic() >= deadline:
                    raise NodeError(
                        f"{self.name}: agent not ready after {timeout:.0f} s\n"
                        f"{self.console_tail()}"
                    ) from None
                continue
            except AgentError:
                self.channel.close()
                continue
            if got != self.number:
                raise NodeError(f"{self.name}: agent says it is node {got}")
            self.boot_seconds = time.monotonic() - self.started_at
            return self.boot_seconds

    def start(self, timeout: float = 60.0) -> float:
        """Boot (again, with the same node number) and wait for the agent."""
        self.spawn()
        return self.wait_ready(timeout)

    def crash(self) -> None:
        """Kill QEMU at once (SIGKILL), like pulling the plug."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.channel.close()

    def shutdown(self, timeout: float = 30.0) -> None:
        """`reboot -f` in the guest; QEMU exits (-no-reboot). Kills it after `timeout`."""
        if not self.is_running:
            return
        with contextlib.suppress(AgentError, OSError):
            self.channel.send_only("busybox reboot -f || reboot -f")
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.crash()
        self.channel.close()

    def _check_alive(self) -> None:
        if not self.is_running:
            rc = self.proc.returncode if self.proc else None
            raise NodeError(
                f"{self.name}: QEMU is not running (exit {rc}); "
                f"qemu log: {self.qemu_log or '(none)'}, console log: {self.cfg.console_log}\n"
                f"{self._qemu_log_tail()}{self.console_tail()}"
            )

    def _qemu_log_tail(self, lines: int = 10) -> str:
        if self.qemu_log is None:
            return ""
        try:
            tail = self.qemu_log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        if not tail:
            return ""
        return f"--- {self.qemu_log} (last {len(tail)} lines) ---\n" + "\n".join(tail) + "\n"

    # ---- commands ----

    def execute(
        self, cmd: str, timeout: float = 60.0, *, log_as: str | None = None
    ) -> tuple[int, str, str]:
        """Run `cmd` with sh in the guest (stdin /dev/null, cwd /): (rc, stdout, stderr).

        Every command goes to the node's command log, as `log_as` if given (to
        keep a secret out of the log). `timeout` is for the normal kernel: the
        guest's deadline is scaled by the flavor's factor (a debug kernel runs
        everything several times slower); timing assertions are the caller's.
        """
        t0 = time.monotonic()
        timeout *= self.cfg.timeout_factor
        try:
            self._check_alive()
            if not self.channel.connected:
                self.wait_ready(timeout)
            rc, raw_out, raw_err = self.channel.run(cmd, timeout)
        except BaseException as e:
            if self.command_log:
                first = (str(e).splitlines() or [""])[0]
                self.command_log.command(
                    log_as or cmd, None, "", "", time.monotonic() - t0,
                    f"{type(e).__name__}: {first}",
                )
            raise
        out, err = raw_out.decode(errors="replace"), raw_err.decode(errors="replace")
        if self.command_log:
            self.command_log.command(log_as or cmd, rc, out, err, time.monotonic() - t0)
        return rc, out, err

    def succeed(self, cmd: str, timeout: float = 60.0) -> str:
        """Run `cmd`, raise `CommandFailed` unless it exits 0; returns stdout."""
        rc, out, err = self.execute(cmd, timeout)
        if rc != 0:
            raise CommandFailed(self.name, cmd, rc, out, err, "command failed")
        return out

    def fail(self, cmd: str, timeout: float = 60.0) -> str:
        """Run `cmd`, raise `CommandFailed` if it exits 0; returns stdout."""
        rc, out, err = self.execute(cmd, timeout)
        if rc == 0:
            raise CommandFailed(self.name, cmd, rc, out, err, "command unexpectedly succeeded")
        return out

    def wait_until_succeeds(self, cmd: str, timeout: float = 60.0, interval: float = 0.2) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = max(1.0, deadline - time.monotonic())
            rc, out, err = self.execute(cmd, left)
            if rc == 0:
                return out
            if time.monotonic() >= deadline:
                raise CommandFailed(self.name, cmd, rc, out, err, f"not true in {timeout} s")
            time.sleep(interval)

    def wait_until_fails(self, cmd: str, timeout: float = 60.0, interval: float = 0.2) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = max(1.0, deadline - time.monotonic())
            rc, out, err = self.execute(cmd, left)
            if rc != 0:
                return out
            if time.monotonic() >= deadline:
                raise CommandFailed(self.name, cmd, rc, out, err, f"still true after {timeout} s")
            time.sleep(interval)

    # ---- console ----

    def console_size(self) -> int:
        try:
            return self.cfg.console_log.stat().st_size
        except FileNotFoundError:
            return 0

    def console_text(self, since: int = 0) -> str:
        """The kernel console (ttyS0) from byte `since`, across restarts."""
        return read_from(self.cfg.console_log, since)[0]

    def wait_for_console_text(
        self, regex: str | re.Pattern[str], timeout: float = 60.0, since: int | None = None
    ) -> re.Match[str]:
        """Wait until `regex` matches the console text after byte `since`; the match.

        `since` None means from the start of the node's current boot; pass
        `node.console_size()` taken earlier to see only newer output. Raises
        `ConsoleTimeout` with the console tail when nothing matches in time.
        """
        rx = re.compile(regex, re.MULTILINE) if isinstance(regex, str) else regex
        start = self.boot_console_offset if since is None else since
        deadline = time.monotonic() + timeout
        text, offset = "", start
        while True:
            chunk, offset, _ = read_from(self.cfg.console_log, offset)
            text += chunk
            found = rx.search(text)
            if found:
                return found
            if time.monotonic() >= deadline:
                raise ConsoleTimeout(
                    f"{self.name}: no console text matching {rx.pattern!r} in {timeout:g} s\n"
                    f"{self.console_tail()}"
                )
            time.sleep(0.05)

    def console_tail(self, lines: int = 30) -> str:
        tail = self.console_text().splitlines()[-lines:]
        return f"--- {self.cfg.console_log} (last {len(tail)} lines) ---\n" + "\n".join(tail)
