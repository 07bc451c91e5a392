"""rfile, remote file access (issue 10 item 3), in a booted 3-node cluster.

A holder process on node 1 (``rfile-probe hold``) keeps a pipe (fds 3 and 4),
a pty master and slave (5, 6) and a tmpfs file (7, and 8 opened O_APPEND).
Another node takes one of them with SSISYS_RFILE_GETFD (a clusterwide
pidfd_getfd) and uses the proxy: writes reach the pipe's reader on node 1 in
order and EOF follows the last close on either node; a blocking read waits on
the client, is woken by data written on node 1 and interrupted by a signal
(EINTR, or restarted under SA_RESTART); poll and select see data arrive; the
pty slave answers TCGETS, TIOCGWINSZ, FIONREAD and its writes reach the
master; positioned I/O and O_APPEND on the tmpfs file; a proxy and the holder
share the open file description's one position (alternate writes interleave,
lseek and reads continue where the other side stopped); fstat mirrors the held
file; GETFD needs ptrace-attach rights on the holding node; requests for an
export the sender holds no reference of are refused and counted; and when the
holding node crashes a blocked read fails with EIO within seconds.

The programs are tests/rfile/rfile_probe.c, built static on the host into
build/bin/rfile-probe (the guests see the host's root read-only).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qemu import Cluster, Node
from qemu.cbuild import build_c_program
from qemu.paths import flavor

pytestmark = pytest.mark.cluster
CLUSTER_NODES = 3
MODULES = ("ssi_core", "ics", "clms", "vproc", "rfile")
REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "rfile" / "rfile_probe.c"
PROBE = REPO / "build" / "bin" / "rfile-probe"
NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups"
RFILE = "/sys/kernel/ssi/rfile"
EPERM, ESRCH, EINTR, EIO, EBADF, EAGAIN = 1, 3, 4, 5, 9, 11
# fds of `rfile-probe hold`
PIPE_R, PIPE_W, PTY_MASTER, PTY_SLAVE, FILE_RW, FILE_APPEND = 3, 4, 5, 6, 7, 8


@pytest.fixture(scope="module")
def probe() -> Path:
    return build_c_program(SOURCE, PROBE, ("-static", "-Werror"))


def t(seconds: float) -> float:
    """A host-side wait of *seconds* on the normal kernel, scaled for the flavor
    (a debug guest starved by the host runs several times slower)."""
    return flavor().timeout(seconds)


def up(cluster: Cluster) -> None:
    cluster.bring_up(modules=MODULES)


def start(nd: Node, cmd: str, out: str = "/dev/null") -> int:
    """Run *cmd* in the background on *nd*, detached, stdout to *out*; its PID."""
    res = nd.succeed(f"{cmd} >{out} 2>&1 </dev/null & echo $!")
    return int(res.strip().splitlines()[-1])


def hold(nd: Node, d: str, who: str = "") -> int:
    """A holder process on *nd* with its files in directory *d*; its PID."""
    nd.succeed(f"rm -rf {d} && mkdir -m 777 {d}")
    pid = start(nd, f"{who} {PROBE} hold {d}")
    nd.wait_until_succeeds(f"test -e {d}/ready", timeout=t(20))
    return pid


def probe_run(nd: Node, args: str, who: str = "", timeout: float = 30.0) -> list[str]:
    """rfile-probe ARGS on *nd*: its one output line, split."""
    return nd.succeed(f"{who} {PROBE} {args}", timeout=timeout).split()


def stop(nd: Node, pid: int) -> None:
    nd.execute(f"pkill -P {pid}; kill {pid}")


def counter(nd: Node, name: str) -> int:
    return int(nd.succeed(f"cat {RFILE}/{name}"))


@pytest.mark.timeout(300)
def test_pipe_writes_in_order_and_eof_after_both_close(cluster: Cluster, probe: Path) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    d = "/tmp/rf-pipe"
    pid = hold(n1, d)
    cat = start(n1, f"cat /proc/{pid}/fd/{PIPE_R}", f"{d}/pipe.out")
    for i in range(1, 4):
        assert probe_run(n2, f"w 1 {pid} {PIPE_W} chunk{i}.") == ["ok", "7"]
    n1.wait_until_succeeds(f"grep -qx 'chunk1.chunk2.chunk3.' {d}/pipe.out", timeout=t(10))
    # Each probe closed its proxy: node 1 released every export.
    n1.wait_until_succeeds(f"test $(cat {RFILE}/exported) = 0", timeout=t(10))
    # Node 2 keeps a writer open 4 s; node 1 closes its own write end at once:
    # the reader sees EOF only after node 2's close.
    writer = start(n2, f"{PROBE} w 1 {pid} {PIPE_W} last. 4")
    n1.wait_until_succeeds(f"grep -q 'last.' {d}/pipe.out", timeout=t(10))
    n1.succeed(f"kill -USR1 {pid}")
    time.sleep(1)
    n1.succeed(f"kill -0 {cat}")  # still reading: node 2 holds a writer
    n1.wait_until_fails(f"kill -0 {cat}", timeout=t(15))
    n2.wait_until_fails(f"kill -0 {writer}", timeout=t(10))
    assert n1.succeed(f"cat {d}/pipe.out") == "chunk1.chunk2.chunk3.last."
    n1.wait_until_succeeds(f"test $(cat {RFILE}/exported) = 0", timeout=t(10))
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_blocking_read_waits_wakes_and_is_interrupted(cluster: Cluster, probe: Path) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    d = "/tmp/rf-block"
    pid = hold(n1, d)
    n2.succeed("rm -f /root/r.out")
    start(n2, f"{PROBE} r 1 {pid} {PIPE_R} 100", "/root/r.out")
    time.sleep(2)
    assert n2.succeed("cat /root/r.out") == "", "the read did not wait for data"
    n1.succeed(f"printf wake > /proc/{pid}/fd/{PIPE_W}")
    out = n2.wait_until_succeeds("grep '^ok' /root/r.out", timeout=t(10)).split()
    assert out[1] == "4" and out[3] == "wake" and float(out[2]) >= 1500, out
    # SIGALRM without SA_RESTART: EINTR after about 2 s, as a local pipe read.
    out = probe_run(n2, f"r 1 {pid} {PIPE_R} 100 2")
    assert out[:2] == ["err", str(EINTR)] and float(out[2]) >= 1500, out
    # With SA_RESTART the read goes on after the handler and gets later data.
    n2.succeed("rm -f /root/r2.out")
    start(n2, f"{PROBE} r 1 {pid} {PIPE_R} 100 1 1", "/root/r2.out")
    time.sleep(3)
    assert n2.succeed("cat /root/r2.out") == "", "SA_RESTART read returned early"
    n1.succeed(f"printf again > /proc/{pid}/fd/{PIPE_W}")
    out = n2.wait_until_succeeds("grep '^ok' /root/r2.out", timeout=t(10)).split()
    # The handler ran once during the read (1 s in), and the read went on: the
    # probe's own clock starts after its exec, so only that much is certain.
    assert out[1] == "5" and out[3] == "again" and out[4] == "1", out
    assert float(out[2]) >= 1000, out
    # O_NONBLOCK set on the proxy with F_SETFL reaches the held file: EAGAIN.
    assert probe_run(n2, f"setfl 1 {pid} {PIPE_R}") == ["ok", str(EAGAIN)]
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_poll_and_select_see_data_arrive(cluster: Cluster, probe: Path) -> None:
    up(cluster)
    n1, n3 = cluster.node(1), cluster.node(3)
    d = "/tmp/rf-poll"
    pid = hold(n1, d)
    out = probe_run(n3, f"poll 1 {pid} {PIPE_R} 300")
    assert out[1:3] == ["poll=0", "revents=0"] and out[4] == "select=0", out
    n3.succeed("rm -f /root/p.out")
    start(n3, f"{PROBE} poll 1 {pid} {PIPE_R} -1", "/root/p.out")
    time.sleep(1.5)
    assert n3.succeed("cat /root/p.out") == "", "poll returned before the data came"
    n1.succeed(f"printf p > /proc/{pid}/fd/{PIPE_W}")
    out = n3.wait_until_succeeds("grep '^ok' /root/p.out", timeout=t(15)).split()
    assert out[1:3] == ["poll=1", "revents=0x1"] and out[4] == "select=1", out
    assert float(out[3].split("=")[1]) >= 1000, out
    # epoll: take the byte off, wait, and be woken by the next one.
    assert n1.succeed(f"head -c 1 /proc/{pid}/fd/{PIPE_R}") == "p"
    n3.succeed("rm -f /root/e.out")
    start(n3, f"{PROBE} epoll 1 {pid} {PIPE_R}", "/root/e.out")
    time.sleep(1.5)
    assert n3.succeed("cat /root/e.out") == "", "epoll returned before the data came"
    n1.succeed(f"printf e > /proc/{pid}/fd/{PIPE_W}")
    out = n3.wait_until_succeeds("grep '^ok' /root/e.out", timeout=t(15)).split()
    assert out[1:3] == ["n=1", "events=0x1"], out
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_blocking_write_to_a_full_pipe_waits_for_the_reader(
    cluster: Cluster, probe: Path
) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    pid = hold(n1, "/tmp/rf-full")
    size = 300000  # several times a pipe's 64 KiB
    n2.succeed("rm -f /root/w.out")
    writer = start(n2, f"{PROBE} wbig 1 {pid} {PIPE_W} {size}", "/root/w.out")
    time.sleep(2)
    assert n2.succeed("cat /root/w.out") == "", "the write did not wait for the reader"
    n2.succeed(f"kill -0 {writer}")
    assert n1.succeed(f"{PROBE} check /proc/{pid}/fd/{PIPE_R} {size}") == f"ok {size}\n"
    out = n2.wait_until_succeeds("grep '^ok' /root/w.out", timeout=t(15)).split()
    assert out[1] == str(size), out
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_pty_slave_proxy(cluster: Cluster, probe: Path) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    d = "/tmp/rf-tty"
    pid = hold(n1, d)
    out = probe_run(n2, f"tty 1 {pid} {PTY_SLAVE}")
    assert out == ["ok", "lflag_icanon=1", "rows=33", "cols=77", "fionread=0"], out
    n1.wait_until_succeeds(f"grep -q tty-hello {d}/pty.out", timeout=t(10))
    mode, _, rdev = probe_run(n2, f"fstat 1 {pid} {PTY_SLAVE}")[1:]
    assert mode == "20620" and rdev.startswith("136:"), (mode, rdev)  # S_IFCHR, pts
    assert probe_run(n2, f"fstat 1 {pid} {PIPE_R}")[1] == "10600"  # S_IFIFO
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_pty_master_read_does_not_wait_in_the_holder(cluster: Cluster, probe: Path) -> None:
    """A pty master has no O_NONBLOCK twin: the holder checks readiness, then
    reads.  When a reader on node 1 takes the data in between and waits in
    read(2) again, holding the tty's read lock, the holder's read gives up
    (EAGAIN) instead of waiting in its ICS worker: the proxy's read waits on
    node 2 and a signal ends it, EINTR (a worker stuck in the tty would make
    the call time out: EIO).  A test knob pauses the holder after its check."""
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    d = "/tmp/rf-ptm"
    pid = hold(n1, d)
    reader = int(n1.succeed(f"pgrep -P {pid}").split()[0])  # copies the master to pty.out
    n1.succeed("echo 1 > /sys/module/rfile/parameters/test_knobs")
    n1.succeed(f"kill -STOP {reader}")
    n1.wait_until_succeeds(f"grep -q '^State:.*T' /proc/{reader}/status", timeout=t(10))
    assert probe_run(n1, f"w 1 {pid} {PTY_SLAVE} abc") == ["ok", "3"]
    # The pause leaves 2 s of the holder's 5 s call deadline (RFILE_TIMEOUT)
    # to its read and the reply: 4 s left too little on a loaded host (EIO).
    n1.succeed(f"echo 3000 > {RFILE}/test_io_delay_ms")
    pauses = int(n1.succeed(f"cat {RFILE}/test_io_delay_ms").split()[1])
    n2.succeed("rm -f /root/ptm.out")
    start(n2, f"{PROBE} r 1 {pid} {PTY_MASTER} 100 14", "/root/ptm.out")
    # The holder found the master readable and pauses: node 1's reader takes
    # the data and waits for more.  It is let go from the guest as soon as the
    # pause starts, not a host round trip later.
    n1.succeed(
        f"while [ $(cut -d' ' -f2 {RFILE}/test_io_delay_ms) -le {pauses} ]; do sleep 0.05; done;"
        f" kill -CONT {reader}",
        timeout=t(20),
    )
    n1.wait_until_succeeds(f"grep -q abc {d}/pty.out", timeout=t(10))
    out = n2.wait_until_succeeds("grep . /root/ptm.out", timeout=t(40)).split()
    assert out[:2] == ["err", str(EINTR)], out
    n1.succeed(f"echo 0 > {RFILE}/test_io_delay_ms")
    n1.succeed("echo 0 > /sys/module/rfile/parameters/test_knobs")
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_tmpfs_file_positioned_io_and_append(cluster: Cluster, probe: Path) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    d = "/tmp/rf-file"
    pid = hold(n1, d)
    out = probe_run(n2, f"seek 1 {pid} {FILE_RW}")
    assert out == ["ok", "end=10", "pread=234", "read=123", "cur=5", "all=0123ZB6789"], out
    assert n1.succeed(f"cat {d}/file") == "0123ZB6789"
    assert probe_run(n2, f"append 1 {pid} {FILE_APPEND} XY") == ["ok", "2", "12"]
    assert n1.succeed(f"cat {d}/file") == "0123ZB6789XY"
    assert probe_run(n2, f"fstat 1 {pid} {FILE_RW}")[1:3] == ["100640", "12"]
    # The proxy's lseek/read/write moved the open file description's one
    # position, the holder's (cur=5 above); pread/pwrite did not.
    assert n1.succeed(f"grep '^pos:' /proc/{pid}/fdinfo/{FILE_RW}").split() == ["pos:", "5"]
    # O_APPEND appended at the holder's end, and its fd's position followed.
    assert n1.succeed(f"grep '^pos:' /proc/{pid}/fdinfo/{FILE_APPEND}").split() == ["pos:", "12"]
    # A proxy that did not change its flags does not undo a change the holder
    # made to the shared open file (O_NONBLOCK set on node 1 after the import).
    n2.succeed("rm -f /root/later.out")
    later = start(n2, f"{PROBE} later 1 {pid} {FILE_RW} 3", "/root/later.out")
    n1.wait_until_succeeds(f"grep -q ' 2:1$' {RFILE}/table", timeout=t(10))
    assert probe_run(n1, f"nb 1 {pid} {FILE_RW}") == ["ok"]  # local GETFD: the file itself
    n2.wait_until_fails(f"kill -0 {later}", timeout=t(20))
    assert n2.succeed("cat /root/later.out") == "ok 0\n"
    flags = n1.succeed(f"grep '^flags:' /proc/{pid}/fdinfo/{FILE_RW}").split()[1]
    assert int(flags, 8) & 0o4000, flags  # O_NONBLOCK is still set
    stop(n1, pid)


class Seq:
    """A long-lived ``rfile-probe seq`` on *nd* using fd *fd* of holder *pid* (on
    node 1: the holder's open file itself, elsewhere a proxy), fed one command
    at a time through a FIFO; calling it sends one and returns its answer."""

    def __init__(self, nd: Node, name: str, pid: int, fd: int) -> None:
        self.nd, self.n = nd, 0
        self.fifo, self.out = f"/root/{name}.in", f"/root/{name}.out"
        nd.succeed(f"rm -f {self.fifo} {self.out} && mkfifo {self.fifo}")
        res = nd.succeed(
            f"sleep 600 >{self.fifo} 2>/dev/null </dev/null & echo $!; "
            f"{PROBE} seq 1 {pid} {fd} <{self.fifo} >{self.out} 2>&1 & echo $!"
        )
        self.pids = [int(x) for x in res.split()[-2:]]

    def send(self, cmd: str) -> None:
        self.nd.succeed(f"echo '{cmd}' >{self.fifo}")
        self.n += 1

    def answered(self) -> bool:
        """Whether the last command sent has answered."""
        return self.nd.execute(f"sed -n {self.n}p {self.out} | grep -q .")[0] == 0

    def answer(self, timeout: float = 20.0) -> str:
        cmd = f"sed -n {self.n}p {self.out} | grep ."
        return self.nd.wait_until_succeeds(cmd, timeout=t(timeout)).strip()

    def __call__(self, cmd: str) -> str:
        self.send(cmd)
        return self.answer()

    def close(self) -> None:
        self.nd.execute(f"kill {self.pids[0]} {self.pids[1]}")


@pytest.mark.timeout(300)
def test_tmpfs_file_offset_is_shared_with_the_holder(cluster: Cluster, probe: Path) -> None:
    """A migrated process's stdout file is shared with the shell that stayed:
    writes through a proxy and through the holder's own open file description
    interleave at ONE position (the holder's), nothing is overwritten, and
    lseek and read on either side continue where the other stopped."""
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    d = "/tmp/rf-shared"
    pid = hold(n1, d)  # fd 7 holds "0123456789", its position at 10
    here, there = Seq(n1, "here", pid, FILE_RW), Seq(n2, "there", pid, FILE_RW)
    # The proxy exists (node 2 holds a reference) before the holder writes.
    assert there("cur") == "ok 10"
    n1.wait_until_succeeds(f"grep -q ' 2:1$' {RFILE}/table", timeout=t(10))
    for i in range(3):
        assert here(f"w a{i}.") == "ok 3"
        assert there(f"w b{i}.") == "ok 3"
    assert n1.succeed(f"cat {d}/file") == "0123456789a0.b0.a1.b1.a2.b2."
    assert here("cur") == "ok 28" and there("cur") == "ok 28"
    # A seek on either side moves the one position; reads go on from it.
    assert there("set 2") == "ok 2"
    assert here("cur") == "ok 2"
    assert here("r 3") == "ok 3 234"
    assert there("r 4") == "ok 4 5678"
    assert here("r 3") == "ok 3 9a0"
    assert there("cur") == "ok 12"
    # SEEK_END from the holder's end; a read at the end is short.
    assert here("end -3") == "ok 25"
    assert there("r 10") == "ok 3 b2."
    assert here("r 10") == "ok 0"
    # pread through the proxy leaves the shared position alone.
    assert there("pread 4 13") == "ok 4 b0.a"
    assert here("cur") == "ok 28"
    # The holder's fdinfo agrees.
    assert n1.succeed(f"grep '^pos:' /proc/{pid}/fdinfo/{FILE_RW}").split() == ["pos:", "28"]
    here.close()
    there.close()
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_record_locks_and_flock_are_the_held_files(cluster: Cluster, probe: Path) -> None:
    """fcntl locks and flock through a proxy are taken on the held file: they
    conflict with node 1's lockers and F_GETLK reports them (with the owner's
    PID) both ways; F_SETLKW waits on the client until node 1 unlocks;
    close(2) on node 2 drops that process's POSIX locks; flock belongs to the
    open file description, which the holder's side shares."""
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    d = "/tmp/rf-lock"
    pid = hold(n1, d)
    here, there = Seq(n1, "lkhere", pid, FILE_RW), Seq(n2, "lkthere", pid, FILE_RW)
    assert there("lk w 0 5") == "ok"
    assert here("lk w 0 5") == f"err {EAGAIN} lk w 0 5"
    assert here("getlk w 2 1") == f"ok w 0 5 {there.pids[1]}"
    assert here("lk r 5 5") == "ok"
    assert there("getlk w 0 10") == f"ok r 5 5 {here.pids[1]}"
    assert there("lk w 5 1") == f"err {EAGAIN} lk w 5 1"
    # F_SETLKW waits (on node 2) until node 1's lock goes.
    there.send("lkw w 5 5")
    time.sleep(2)
    assert not there.answered(), "F_SETLKW did not wait for the conflicting lock"
    assert here("lk u 5 5") == "ok"
    assert there.answer() == "ok"
    assert here("lk w 0 20") == f"err {EAGAIN} lk w 0 20"
    # flock: the open file description's lock, shared with node 1's fd 7.
    lock_cmd = f"flock -n -E 42 {d}/file true"  # another open file description
    assert n1.execute(lock_cmd)[0] == 0
    assert there("flock ex nb") == "ok"
    assert n1.execute(lock_cmd)[0] == 42
    assert here("flock sh nb") == "ok"  # the same lock, converted to shared
    assert n1.execute(f"flock -s -n -E 42 {d}/file true")[0] == 0
    assert n1.execute(lock_cmd)[0] == 42
    assert there("flock un") == "ok"
    assert n1.execute(lock_cmd)[0] == 0
    # close(2) on node 2 drops node 2's process's POSIX locks.
    assert there("close") == "ok"
    assert here("lk w 0 20") == "ok"
    here.close()
    there.close()
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_getfd_needs_ptrace_rights_on_the_holder(cluster: Cluster, probe: Path) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    root_pid = hold(n1, "/tmp/rf-perm-root")
    nobody_pid = hold(n1, "/tmp/rf-perm-nobody", NOBODY)
    for nd in (n1, n2):  # locally and from another node
        assert probe_run(nd, f"getfd 1 {root_pid} {PIPE_R}", NOBODY)[:2] == ["err", str(EPERM)]
        assert probe_run(nd, f"getfd 1 {nobody_pid} {PIPE_R}", NOBODY)[0] == "ok"
        assert probe_run(nd, f"getfd 1 {root_pid} {PIPE_R}")[0] == "ok"
        assert probe_run(nd, f"getfd 1 {root_pid} 99")[:2] == ["err", str(EBADF)]
        gone = (1 << 16) | 65000
        assert probe_run(nd, f"getfd 1 {gone} 0")[:2] == ["err", str(ESRCH)]
    # A refused caller got nothing exported.
    n1.wait_until_succeeds(f"test $(cat {RFILE}/exported) = 0", timeout=t(10))
    stop(n1, root_pid)
    stop(n1, nobody_pid)


@pytest.mark.timeout(300)
def test_requests_without_a_reference_are_refused_and_counted(
    cluster: Cluster, probe: Path
) -> None:
    up(cluster)
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    pid = hold(n1, "/tmp/rf-bad")
    n3.succeed("echo 1 > /sys/module/rfile/parameters/test_knobs")
    # Node 2 holds a proxy of the pipe's read end (a blocked read).
    n2.succeed("rm -f /root/bad.out")
    start(n2, f"{PROBE} r 1 {pid} {PIPE_R} 100", "/root/bad.out")
    table = n1.wait_until_succeeds(f"grep ' 2:1$' {RFILE}/table", timeout=t(10))
    handle = int(table.split()[0])
    before = counter(n1, "bad_handle")
    for req in (f"{handle} stat", f"{handle} read", f"{handle} put", "987654321"):
        rc, _, err = n3.execute(f"/bin/echo '1 {req}' > {RFILE}/test_call")
        assert rc != 0 and "Bad file descriptor" in err, (req, rc, err)
    assert counter(n1, "bad_handle") == before + 4
    # Out-of-range fields and malformed bodies are refused and counted too.
    bad_request = counter(n1, "bad_request")
    malformed = int(n1.succeed("cat /sys/kernel/ssi/ics/dropped_malformed_body"))
    rc, _, err = n3.execute(f"/bin/echo '1 {handle} big' > {RFILE}/test_call")
    assert rc != 0 and "Invalid argument" in err, (rc, err)
    assert counter(n1, "bad_request") == bad_request + 1
    rc, _, err = n3.execute(f"/bin/echo '1 {handle} short' > {RFILE}/test_call")
    assert rc != 0 and "Bad message" in err, (rc, err)
    assert int(n1.succeed("cat /sys/kernel/ssi/ics/dropped_malformed_body")) == malformed + 1
    assert counter(n1, "bad_handle") == before + 4
    # Node 2's reference is intact: its reader still gets the data.
    assert n1.succeed(f"cat {RFILE}/table").split()[:2] == [str(handle), "2:1"]
    n1.succeed(f"printf ok > /proc/{pid}/fd/{PIPE_W}")
    n2.wait_until_succeeds("grep -q '^ok 2 [0-9]* ok 0$' /root/bad.out", timeout=t(10))
    # Without test_knobs the hook is closed.
    n3.succeed("echo 0 > /sys/module/rfile/parameters/test_knobs")
    n3.fail(f"echo '1 {handle}' > {RFILE}/test_call")
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_posix_locks_of_a_crashed_node_are_dropped(cluster: Cluster, probe: Path) -> None:
    """A node that goes down holding POSIX locks through a proxy loses them on
    the holder (while another node keeps the export alive)."""
    up(cluster)
    n1, n2, n3 = cluster.node(1), cluster.node(2), cluster.node(3)
    pid = hold(n1, "/tmp/rf-lkcrash")
    here = Seq(n1, "lkchere", pid, FILE_RW)
    other, there = Seq(n2, "lkcother", pid, FILE_RW), Seq(n3, "lkcthere", pid, FILE_RW)
    assert other("cur") == "ok 10" and there("lk w 0 5") == "ok"
    assert here("lk w 0 5") == f"err {EAGAIN} lk w 0 5"
    n3.crash()
    n1.wait_until_succeeds(f"! grep -q ' 3:' {RFILE}/table", timeout=t(30))
    assert n1.succeed(f"grep -c ' 2:1' {RFILE}/table").strip() == "1"  # still exported
    assert here("lk w 0 5") == "ok"
    here.close()
    other.close()
    stop(n1, pid)


@pytest.mark.timeout(300)
def test_holder_crash_fails_blocked_read_with_eio(cluster: Cluster, probe: Path) -> None:
    up(cluster)
    n1, n2 = cluster.node(1), cluster.node(2)
    pid = hold(n1, "/tmp/rf-crash")
    n2.succeed("rm -f /root/crash.out")
    reader = start(n2, f"{PROBE} r 1 {pid} {PIPE_R} 100", "/root/crash.out")
    n1.wait_until_succeeds(f"grep -q ' 2:1$' {RFILE}/table", timeout=t(10))
    t0 = time.monotonic()
    n1.crash()
    out = n2.wait_until_succeeds("grep '^err' /root/crash.out", timeout=t(20)).split()
    took = time.monotonic() - t0
    assert out[1] == str(EIO), out
    assert took < 8.0, f"EIO came {took:.1f} s after the crash"
    n2.wait_until_fails(f"kill -0 {reader}", timeout=t(5))
