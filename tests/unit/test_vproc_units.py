"""abi.vproc and ``ssictl ps|where|localview`` on the host, against a fake ssisys."""

from __future__ import annotations

import errno
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from abi import binding, vproc
from abi.errors import SSIError, from_errno
from ssictl.cli import app
from ssictl.ps import format_table

runner = CliRunner()


def entry(pid: int, node: int, comm: str = "sleep", uid: int = 0, state: str = "S") -> Any:
    f = binding.ffi()
    e = f.new("struct ssi_vproc_proc *")
    e.pid, e.ppid, e.pgid, e.sid = pid, pid - 1, pid, pid
    e.uid = e.euid = uid
    e.node = node
    e.state = ord(state)
    e.start_ns = 123
    comm_b = comm.encode()
    f.memmove(e.comm, comm_b, len(comm_b))
    return e


def entries_bytes(*es: Any) -> bytes:
    f = binding.ffi()
    return b"".join(bytes(f.buffer(e)) for e in es)


class FakeKernel:
    """Serves SSISYS_VPROC_* from a list of entries; counts the calls."""

    def __init__(self, procs: list[Any], failed: int = 0) -> None:
        self.procs = procs
        self.failed = failed
        self.calls: list[int] = []
        self.localview = 0

    def ssisys(self, cmd: int, buf: Any = None, **kw: Any) -> int:
        f = binding.ffi()
        self.calls.append(cmd)
        if cmd == vproc.SSISYS_VPROC_LIST:
            req = buf
            arr = f.cast("struct ssi_vproc_proc *", req.procs)
            n = min(req.capacity, len(self.procs))
            for i in range(n):
                f.memmove(arr + i, self.procs[i], f.sizeof("struct ssi_vproc_proc"))
            req.count, req.total, req.failed_nodes = n, len(self.procs), self.failed
            return 0
        if cmd == vproc.SSISYS_VPROC_WHERE:
            for p in self.procs:
                if p.pid == buf.pid:
                    buf.node = p.node
                    return 0
            raise from_errno(errno.ESRCH, "ssisys(SSISYS_VPROC_WHERE)", hints=kw.get("hints"))
        if cmd == vproc.SSISYS_VPROC_LOCALVIEW:
            was = self.localview
            if buf.set != vproc.SSI_VPROC_LOCALVIEW_QUERY:
                self.localview = buf.set
            return was
        raise AssertionError(cmd)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    k = FakeKernel([entry(0x30010, 3, "sleep", 65534), entry(0x10005, 1, "sh")], failed=1 << 2)
    monkeypatch.setattr(binding, "ssisys", k.ssisys)
    return k


def test_origin_and_pid_checks() -> None:
    assert vproc.origin(196634) == 3
    assert vproc.origin(42) == 0
    with pytest.raises(ValueError):
        vproc.check_pid(0)
    with pytest.raises(ValueError):
        vproc.check_pid(64 << 16)
    with pytest.raises(TypeError):
        vproc.check_pid("12")
    assert vproc.nodes_of((1 << 2) | (1 << 63)) == [2, 63]


def test_decode_procs() -> None:
    raw = entries_bytes(entry(0x30010, 3, "sleep"), entry(0x10001, 1, "a-very-long-comm-name"[:15]))
    procs = vproc.decode_procs(raw)
    assert [(p.pid, p.node, p.comm, p.state) for p in procs] == [
        (0x30010, 3, "sleep", "S"),
        (0x10001, 1, "a-very-long-com", "S"),
    ]
    assert procs[0].to_json()["ppid"] == 0x3000F
    with pytest.raises(ValueError, match="whole number"):
        vproc.decode_procs(raw[:-1])


def test_process_list_sorted_and_failed_nodes(kernel: FakeKernel) -> None:
    procs, failed = vproc.process_list()
    assert [p.pid for p in procs] == [0x10005, 0x30010]
    assert failed == [2]


def test_process_list_grows_its_buffer(kernel: FakeKernel) -> None:
    kernel.procs = [entry(0x10000 + i, 1) for i in range(1, 1500)]
    procs, _ = vproc.process_list()
    assert len(procs) == 1499
    assert kernel.calls == [vproc.SSISYS_VPROC_LIST] * 2


def test_where(kernel: FakeKernel) -> None:
    assert vproc.where(0x30010) == 3
    with pytest.raises(SSIError) as e:
        vproc.where(0x30011)
    assert e.value.errno == errno.ESRCH


def test_localview_flag(kernel: FakeKernel) -> None:
    assert vproc.localview() is False
    assert vproc.set_localview(True) is False
    assert vproc.localview() is True


def test_cli_ps_json_and_table(kernel: FakeKernel) -> None:
    r = runner.invoke(app, ["ps", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["failed_nodes"] == [2]
    assert [(p["pid"], p["node"]) for p in doc["processes"]] == [(0x10005, 1), (0x30010, 3)]
    r = runner.invoke(app, ["ps"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NODE", "PID", "PPID"]
    assert lines[2].split()[:2] == ["3", str(0x30010)] and "nobody" in lines[2]
    assert "no answer from node(s) 2" in r.stdout


def test_format_table_unknown_uid() -> None:
    text = format_table(
        [
            {
                "node": 1,
                "pid": 65537,
                "ppid": 1,
                "pgid": 65537,
                "sid": 65537,
                "euid": 4242424,
                "state": "R",
                "comm": "x",
            }
        ]
    )
    assert "4242424" in text.splitlines()[1]


def test_cli_where(kernel: FakeKernel) -> None:
    r = runner.invoke(app, ["where", str(0x30010)])
    assert r.exit_code == 0 and r.stdout.strip() == "3"
    r = runner.invoke(app, ["where", str(0x30011), "--json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["ok"] is False
    r = runner.invoke(app, ["where", "0"])
    assert r.exit_code != 0


def test_cli_localview_sets_flag_then_execs(
    kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, list[str]]] = []
    monkeypatch.setattr("ssictl.ps.os.execvp", lambda f, a: ran.append((f, list(a))))
    r = runner.invoke(app, ["localview", "--", "ps", "aux"])
    assert r.exit_code == 0, r.output
    assert kernel.localview == 1 and ran == [("ps", ["ps", "aux"])]


def test_cli_localview_missing_command(kernel: FakeKernel) -> None:
    r = runner.invoke(app, ["localview"])
    assert r.exit_code != 0
