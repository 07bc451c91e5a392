"""The resident per-node ssictl daemon: the CLI, imported once, one fork per command.

A fresh Python needs seconds to import typer, rich and the cffi ABI in a TCG
guest; this process imports them once at boot and then serves the thin client
(``ssictl/client.c``, installed as ``ssictl`` on the guests' PATH) on a unix
socket. Each request is run by a forked worker that takes the client's
credentials (SO_PEERCRED, SO_PEERGROUPS), stdin/stdout/stderr, working
directory, umask and environment, runs ``ssictl.cli.run(argv)`` and exits with
its code, which goes back to the client. A command therefore can do exactly
what it could as a process of the client's user, and nothing more. Signals the
client gets (INT, TERM, HUP, QUIT) are passed to the worker; a client that goes
away gets its worker a SIGHUP. Requests are read without blocking, at most
MAX_INCOMING at a time and each within REQUEST_DEADLINE, so a client that
connects and stalls holds up no one; a connection closed before the daemon
says 'S' (started) ran nothing, and the client runs the Python CLI itself.
A caller in other namespaces, under another root directory, under seccomp or
no_new_privs, or root with fewer capabilities than the daemon is refused
(exit 126, with how to run the command without the daemon).

Protocol: see the comment at the top of client.c. Later this daemon is also the
home of keepalive and load-leveling policy.

``python -m ssictl.daemon [--dir DIR]`` runs it in the foreground (socket DIR/ssictl.sock).
"""

from __future__ import annotations

import argparse
import array
import contextlib
import io
import os
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMON_DIR = Path("/run/ssictl")  # the client reads $SSICTL_DAEMON_DIR too
SOCKET_NAME = "ssictl.sock"
PROTOCOL = b"ssictl/1"
MAX_REQUEST = 1 << 20
FORWARDED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
_FDS_PER_REQUEST = 4  # stdin, stdout, stderr, cwd
REFUSED = 126  # exit code of a command the daemon will not run for this caller
REPLY_STARTED = b"S"  # the worker runs; its __le32 exit code follows when it exits
REPLY_REFUSED = b"X"  # not run; the __le32 exit code follows at once
MAX_INCOMING = 64  # connections whose request is not whole yet
REQUEST_DEADLINE = 5.0  # seconds a client has to send its whole request


class BadRequest(ValueError):
    """A request the daemon refuses (wrong protocol, too long, missing fds)."""


@dataclass
class Request:
    argv: list[str]
    env: dict[str, str]
    umask: int
    fds: list[int]  # stdin, stdout, stderr, cwd (owned: closed after the fork)


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = field(default=())


def parse_request(payload: bytes, fds: list[int]) -> Request:
    """Decode a request body (after the length); raises BadRequest."""
    if len(fds) != _FDS_PER_REQUEST:
        raise BadRequest(f"expected {_FDS_PER_REQUEST} descriptors, got {len(fds)}")
    if not payload.endswith(b"\0"):
        raise BadRequest("request not NUL-terminated")
    fields = payload[:-1].split(b"\0")
    if len(fields) < 3 or fields[0] != PROTOCOL:
        raise BadRequest(f"not an {PROTOCOL.decode()} request")
    if not fields[1].startswith(b"umask="):
        raise BadRequest("no umask field")
    try:
        umask = int(fields[1][6:], 8) & 0o777
    except ValueError:
        raise BadRequest("bad umask field") from None
    try:
        end_env = fields.index(b"", 2)
    except ValueError:
        raise BadRequest("no end of environment") from None
    env: dict[str, str] = {}
    for entry in fields[2:end_env]:
        key, sep, value = os.fsdecode(entry).partition("=")
        if sep and key:
            env[key] = value
    argv = [os.fsdecode(a) for a in fields[end_env + 1:]]
    return Request(argv=argv, env=env, umask=umask, fds=fds)


def peer_of(conn: socket.socket) -> Peer:
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET,
                                                         socket.SO_PEERCRED, 12))
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 4 * 256)
        groups = tuple(struct.unpack(f"{len(raw) // 4}I", raw))
    except OSError:
        groups = (gid,)
    return Peer(pid, uid, gid, groups)


_NAMESPACES = ("mnt", "pid", "user", "net", "ipc", "uts", "cgroup")
_CAP_FIELDS = ("CapEff", "CapPrm", "CapBnd")
_SANDBOX_FIELDS = ("Seccomp", "NoNewPrivs")


def _status(pid: int | str, fields: tuple[str, ...]) -> dict[str, str]:
    """These fields of /proc/PID/status."""
    found: dict[str, str] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in fields:
                found[key] = value.strip()
    return found


def context_mismatch(peer: Peer) -> str | None:
    """Why the worker could do more than the caller itself, or None.

    The worker takes the caller's uid, gids and working directory, but runs in
    the daemon's namespaces, root directory and (lack of) sandbox and, for uid 0,
    with the daemon's capabilities: a caller in another container, chroot,
    seccomp sandbox or with capabilities dropped is refused rather than served
    with more than it has.
    """
    try:
        for ns in _NAMESPACES:
            try:
                ours_ns = os.stat(f"/proc/self/ns/{ns}").st_ino
            except FileNotFoundError:
                continue  # a kernel without that namespace type
            if os.stat(f"/proc/{peer.pid}/ns/{ns}").st_ino != ours_ns:
                return f"it runs in another {ns} namespace"
        theirs, ours = os.stat(f"/proc/{peer.pid}/root"), os.stat("/")
        if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
            return "it runs under another root directory (chroot)"
        if _status(peer.pid, _SANDBOX_FIELDS) != _status("self", _SANDBOX_FIELDS):
            return "it runs under a seccomp filter or no_new_privs (a sandbox)"
        if peer.uid == 0 and _status(peer.pid, _CAP_FIELDS) != _status("self", _CAP_FIELDS):
            return "it runs as root with fewer capabilities than the daemon"
    except OSError as e:
        return f"its context cannot be checked ({e.strerror})"
    return None


def _become(peer: Peer) -> None:
    """Take the client's identity (the worker then runs as that user would)."""
    if os.geteuid() == 0:
        os.setgroups(list(peer.groups))
        os.setgid(peer.gid)
        os.setuid(peer.uid)
    elif (peer.uid, peer.gid) != (os.getuid(), os.getgid()):
        raise PermissionError("a daemon not running as root serves only its own user")


def _reopen_stdio() -> None:
    """sys.std* over the client's descriptors, line-buffered on a terminal."""
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)),
                                 encoding="utf-8", errors="surrogateescape")
    for fd, name in ((1, "stdout"), (2, "stderr")):
        tty = os.isatty(fd)
        stream = io.TextIOWrapper(io.BufferedWriter(io.FileIO(fd, "w", closefd=False)),
                                  encoding="utf-8", errors="backslashreplace",
                                  line_buffering=tty or fd == 2, write_through=fd == 2)
        setattr(sys, name, stream)


def _worker(req: Request, peer: Peer) -> int:
    """In the forked child: become the client, run the command, return its code."""
    for sig in FORWARDED_SIGNALS | {signal.SIGCHLD}:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        os.fchdir(req.fds[3])
        _become(peer)
    except OSError as e:
        os.write(req.fds[2], f"ssictl: daemon cannot act as uid {peer.uid}: {e}\n".encode())
        return 1
    for target, fd in enumerate(req.fds[:3]):
        os.dup2(fd, target)
    for fd in req.fds:
        if fd > 2:
            os.close(fd)
    os.umask(req.umask)
    os.environ.clear()
    os.environ.update(req.env)
    _reopen_stdio()
    from ssictl import cli

    try:
        return cli.run(req.argv)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()


@dataclass
class _Incoming:
    conn: socket.socket
    peer: Peer
    data: bytearray
    fds: list[int]
    deadline: float


@dataclass
class _Job:
    conn: socket.socket
    pid: int
    pidfd: int


class Daemon:
    """Accepts clients on `path`; one forked worker per request."""

    def __init__(self, directory: Path = DAEMON_DIR) -> None:
        self.path = directory / SOCKET_NAME
        self.sel = selectors.DefaultSelector()
        self.listener: socket.socket | None = None
        self.jobs: dict[int, _Job] = {}  # by pid
        self.incoming: list[_Incoming] = []  # connected, request not whole yet

    def listen(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(tmp))
        # Anyone may connect: the worker gets the caller's own credentials.
        os.chmod(tmp, 0o666)
        sock.listen(64)
        os.replace(tmp, self.path)  # clients never see a socket that is not listening
        sock.setblocking(False)
        self.listener = sock
        self.sel.register(sock, selectors.EVENT_READ, self._accept)

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.sel.select(timeout=1.0):
                key.data(key.fileobj)
            now = time.monotonic()
            for inc in [i for i in self.incoming if i.deadline < now]:
                self._drop(inc, "no whole request in time")

    def _accept(self, sock: socket.socket) -> None:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return
        # Requests are read without blocking, a bounded number at a time: a
        # client that connects and sends nothing delays no one else. A client
        # closed before its command started runs the Python CLI itself.
        if len(self.incoming) >= MAX_INCOMING:
            conn.close()
            return
        conn.setblocking(False)
        try:
            peer = peer_of(conn)
        except OSError:
            conn.close()
            return
        inc = _Incoming(conn, peer, bytearray(), [], time.monotonic() + REQUEST_DEADLINE)
        self.incoming.append(inc)
        self.sel.register(conn, selectors.EVENT_READ, lambda c, i=inc: self._receive(i))

    def _drop(self, inc: _Incoming, why: str) -> None:
        print(f"ssictl daemon: refused a request from pid {inc.peer.pid}: {why}",
              file=sys.stderr, flush=True)
        self._forget(inc)
        for fd in inc.fds:
            os.close(fd)
        inc.conn.close()

    def _forget(self, inc: _Incoming) -> None:
        self.incoming.remove(inc)
        self.sel.unregister(inc.conn)

    def _receive(self, inc: _Incoming) -> None:
        fds = array.array("i")
        try:
            data, ancdata, _flags, _addr = inc.conn.recvmsg(
                65536, socket.CMSG_SPACE(_FDS_PER_REQUEST * fds.itemsize))
        except BlockingIOError:
            return
        except OSError as e:
            self._drop(inc, e.strerror or str(e))
            return
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
        inc.fds += fds
        if not data:
            self._drop(inc, "closed mid-request")
            return
        inc.data += data
        if len(inc.data) < 4:
            return
        (length,) = struct.unpack_from("<I", inc.data)
        if length > MAX_REQUEST:
            self._drop(inc, f"a request of {length} bytes is over {MAX_REQUEST}")
            return
        if len(inc.data) < 4 + length:
            return
        try:
            req = parse_request(bytes(inc.data[4:4 + length]), inc.fds)
        except BadRequest as e:
            self._drop(inc, str(e))
            return
        self._forget(inc)
        inc.conn.setblocking(True)
        why = context_mismatch(inc.peer)
        if why is not None:
            self._refuse(inc.conn, req, f"ssictl: the ssictl daemon does not serve this "
                         f"process: {why}; run it with SSICTL_NO_DAEMON=1\n")
            return
        self._start(inc.conn, req, inc.peer)

    @staticmethod
    def _refuse(conn: socket.socket, req: Request, message: str) -> None:
        with contextlib.suppress(OSError):
            os.write(req.fds[2], message.encode())
            conn.sendall(REPLY_REFUSED + struct.pack("<i", REFUSED))
        for fd in req.fds:
            os.close(fd)
        conn.close()

    def _start(self, conn: socket.socket, req: Request, peer: Peer) -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if self.listener is not None:
                    self.listener.close()
                conn.close()
                for job in self.jobs.values():
                    job.conn.close()
                    os.close(job.pidfd)
                for inc in self.incoming:
                    inc.conn.close()
                    for fd in inc.fds:
                        os.close(fd)
                code = _worker(req, peer)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except KeyboardInterrupt:  # a forwarded SIGINT before the CLI took over
                code = 130
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code & 0xFF)
        for fd in req.fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(REPLY_STARTED)
        pidfd = os.pidfd_open(pid)
        job = _Job(conn, pid, pidfd)
        self.jobs[pid] = job
        self.sel.register(conn, selectors.EVENT_READ, lambda c, j=job: self._client_said(j))
        self.sel.register(pidfd, selectors.EVENT_READ, lambda f, j=job: self._finished(j))

    def _client_said(self, job: _Job) -> None:
        try:
            data = job.conn.recv(64)
        except OSError:
            data = b""
        if not data:  # the client went away: its worker gets a hangup
            self.sel.unregister(job.conn)
            with contextlib.suppress(ProcessLookupError):
                os.kill(job.pid, signal.SIGHUP)
            return
        for sig in data:
            if sig in FORWARDED_SIGNALS:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(job.pid, sig)

    def _finished(self, job: _Job) -> None:
        _, status = os.waitpid(job.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            code = 128 - code  # killed by a signal: the shell's convention
        self.sel.unregister(job.pidfd)
        os.close(job.pidfd)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(job.conn)
        with contextlib.suppress(OSError):
            job.conn.sendall(struct.pack("<i", code))
        job.conn.close()
        del self.jobs[job.pid]


def warm_up() -> None:
    """Import what commands use, so that workers start with it loaded: the CLI and
    its click tree, typer's pydantic adapters (it coerces every value through
    them), cffi with ssi_abi.h parsed. Nothing is run: that would cost CPU at boot."""
    from typer import _adapters  # noqa: F401

    import abi
    from abi import binding, cluster  # noqa: F401
    from ssictl import cli

    cli.click_command()
    _ = abi.ffi  # parses ssi_abi.h once, here


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ssictl-daemon", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", type=Path, default=DAEMON_DIR,
                    help=f"directory of the socket {SOCKET_NAME} (default {DAEMON_DIR})")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    started = time.monotonic()
    warm_up()
    d = Daemon(args.dir)
    d.listen()
    # Clients connect now; "starting" only told them to wait for this moment.
    (args.dir / "starting").unlink(missing_ok=True)
    print(f"ssictl daemon: serving {d.path} (pid {os.getpid()}; warm-up "
          f"{time.monotonic() - started:.2f} s, {time.process_time():.2f} s CPU since start)",
          file=sys.stderr, flush=True)
    try:
        d.serve_forever()
    except KeyboardInterrupt:
        return 130
    finally:
        d.path.unlink(missing_ok=True)
        (args.dir / "starting").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
