"""Load leveling on the host: the node-info ABI's load figures (layout, old and new
sizes), ``ssictl loadlevel``'s policy (figures, nodes, processes) and the command
against a fake binding (the ``abi`` functions and the move request are replaced)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import abi
from abi import cluster as C
from abi import errors as abi_errors
from abi import header
from abi.cluster import Membership, NodeInfo
from abi.vproc import Proc
from ssictl import cluster_status
from ssictl import loadlevel as L
from ssictl import migrate as migrate_cmd
from ssictl.cli import app
from ssictl.output import CLIError

REPO = Path(__file__).resolve().parents[2]
V1_FMT = "<IIIIQQIIIIQQ"  # struct ssi_node_info before the load figures
LOAD_FMT = "<IIQII"  # nr_running, flags, mem_available_kb, figures_age_ms, reserved
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_ssi_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(abi_errors, "SSI_SYSFS", tmp_path / "absent")
    monkeypatch.setattr(C, "ICS_PEERS", tmp_path / "absent_peers")


def v1_bytes(node: int, cpus: int = 2) -> bytes:
    addr = int.from_bytes(bytes([169, 254, 77, node]), sys.byteorder)
    return struct.pack(V1_FMT, node, 2, addr, cpus, 262144, 131072, 150, 100, 50, 7, 0, 9)


# --------------------------------------------------------------------------- ABI


def test_load_figures_are_appended_after_the_v1_struct() -> None:
    f = abi.ffi()
    c = header.constants()
    assert c["SSI_NODEINFO_SIZE_V1"] == struct.calcsize(V1_FMT) == 64
    assert f.offsetof("struct ssi_node_info", "nr_running") == c["SSI_NODEINFO_SIZE_V1"]
    assert f.sizeof("struct ssi_node_info") == 64 + struct.calcsize(LOAD_FMT)
    for name, off in (("flags", 68), ("mem_available_kb", 72), ("figures_age_ms", 80)):
        assert f.offsetof("struct ssi_node_info", name) == off, name
    # the new flag is no node state: NODE_STATES is built from the SSI_NODE_ prefix
    assert set(C.NODE_STATES.values()) == {
        "NEVERUP", "COMINGUP", "UP", "SHUTDOWN", "GOINGDOWN", "KCLEANUP", "UCLEANUP", "DOWN",
    }  # fmt: skip


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_node_info_layout_matches_gcc(tmp_path: Path) -> None:
    fields = ["nr_running", "flags", "mem_available_kb", "figures_age_ms", "reserved"]
    prog = tmp_path / "p.c"
    prog.write_text(
        f'#include <stdio.h>\n#include <stddef.h>\n#include "{REPO / "abi" / "ssi_abi.h"}"\n'
        'int main(void) {\nprintf("%zu", sizeof(struct ssi_node_info));\n'
        + "".join(f'printf(" %zu", offsetof(struct ssi_node_info, {x}));\n' for x in fields)
        + "return 0; }\n"
    )
    exe = tmp_path / "p"
    subprocess.run(["gcc", "-o", str(exe), str(prog)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    f = abi.ffi()
    want = [f.sizeof("struct ssi_node_info")]
    want += [f.offsetof("struct ssi_node_info", x) for x in fields]
    assert [int(x) for x in out] == want


def test_decode_v1_bytes_has_no_load_figures() -> None:
    info = C.decode_node_info(v1_bytes(3))
    assert info.node == 3 and info.cpus == 2 and info.load == (1.5, 1.0, 0.5)
    assert not info.has_load and info.nr_running == 0 and info.runq_per_cpu() is None


def test_decode_new_bytes_reads_the_figures() -> None:
    raw = v1_bytes(2) + struct.pack(LOAD_FMT, 5, C.SSI_NODEINFO_LOAD, 180_000, 40, 0)
    info = C.decode_node_info(raw)
    assert info.has_load and info.nr_running == 5 and info.mem_available_kb == 180_000
    assert info.figures_age_ms == 40 and info.runq_per_cpu() == 2.5
    j = info.to_json()
    assert (j["nr_running"], j["mem_available_kb"], j["has_load"]) == (5, 180_000, True)
    # the flag unset (an older kernel) or cpus 0 (a node not heard): no figures
    unset = C.decode_node_info(v1_bytes(2) + struct.pack(LOAD_FMT, 5, 0, 180_000, 40, 0))
    assert not unset.has_load
    unheard = v1_bytes(2, cpus=0) + struct.pack(LOAD_FMT, 0, C.SSI_NODEINFO_LOAD, 0, 0, 0)
    assert not C.decode_node_info(unheard).has_load
    with pytest.raises(ValueError):
        C.decode_node_info(raw[:70])


# --------------------------------------------------------------------------- policy


def info(node: int, nr: int, *, cpus: int = 1, avail_mib: int = 200, age: int = 50,
         load1: float = 0.0, has: bool = True) -> NodeInfo:  # fmt: skip
    return NodeInfo(
        node=node, state="UP", addr=f"169.254.77.{node}", cpus=cpus, mem_total_kb=256 << 10,
        mem_free_kb=avail_mib << 10, load=(load1, 0.0, 0.0), incarnation=node,
        since=datetime(2026, 1, 2, tzinfo=UTC), transition=4, nr_running=nr,
        mem_available_kb=avail_mib << 10, figures_age_ms=0 if age < 0 else age, has_load=has,
    )  # fmt: skip


def nl(node: int, runq: float, *, cpus: int = 1, avail_mib: int = 200,
       load1: float = 0.0) -> L.NodeLoad:  # fmt: skip
    return L.NodeLoad(node, cpus, runq, load1, avail_mib << 10, 256 << 10, 0)


def test_aggregate_means_samples() -> None:
    a = L.aggregate([info(2, 3), info(2, 5), info(2, 4, age=90)])
    assert a is not None and a.runq == 4.0 and a.age_ms == 90 and a.load == 4.0
    low = L.aggregate([info(1, 1), info(1, 0), info(1, 0)])
    assert low is not None and low.runq == pytest.approx(1 / 3)
    two = L.aggregate([info(2, 4, cpus=2)])
    assert two is not None and two.load == 2.0
    mixed = L.aggregate([info(2, 9, has=False), info(2, 2)])
    assert mixed is not None and mixed.runq == 2.0  # samples without figures are skipped
    assert L.aggregate([info(2, 9, has=False)]) is None
    assert L.aggregate([]) is None


def test_pick_nodes_busiest_to_least_loaded() -> None:
    b, t = L.pick_nodes([nl(1, 4), nl(2, 0.5), nl(3, 1)], 1.0, 32 << 10) or (None, None)
    assert b is not None and t is not None and (b.node, t.node) == (1, 2)
    # per CPU: 4 runnable on 4 CPUs is less busy than 2 on 1
    pair = L.pick_nodes([nl(1, 4, cpus=4), nl(2, 2), nl(3, 0)], 1.0, 0)
    assert pair is not None and (pair[0].node, pair[1].node) == (2, 3)


def test_pick_nodes_balanced_or_no_room_is_none() -> None:
    assert L.pick_nodes([nl(1, 1.5), nl(2, 1)], 1.0, 0) is None  # gap 0.5 < 1
    assert L.pick_nodes([nl(1, 2), nl(2, 1)], 1.0, 0) is not None  # gap exactly 1
    assert L.pick_nodes([nl(1, 3)], 1.0, 0) is None  # one node
    assert L.pick_nodes([], 1.0, 0) is None
    # the idle node lacks memory: the next least loaded one is the target
    pair = L.pick_nodes([nl(1, 4), nl(2, 0, avail_mib=8), nl(3, 1)], 1.0, 32 << 10)
    assert pair is not None and pair[1].node == 3
    assert L.pick_nodes([nl(1, 4), nl(2, 0, avail_mib=8)], 1.0, 32 << 10) is None


def test_pick_nodes_ties() -> None:
    # same run queue: the higher load average per CPU is the busier
    pair = L.pick_nodes([nl(1, 3, load1=0.5), nl(2, 3, load1=2.0), nl(3, 0)], 1.0, 0)
    assert pair is not None and pair[0].node == 2
    # equally idle targets: more memory available wins, then the lower node
    pair = L.pick_nodes([nl(1, 3), nl(2, 0, avail_mib=100), nl(3, 0, avail_mib=150)], 1.0, 0)
    assert pair is not None and pair[1].node == 3
    pair = L.pick_nodes([nl(3, 3), nl(2, 0), nl(1, 0)], 1.0, 0)
    assert pair is not None and pair[1].node == 1


def proc(pid: int, node: int, state: str = "R", start: int = 0, comm: str = "spin") -> Proc:
    return Proc(pid, 1, pid, pid, 0, 0, node, state, start, comm)


def test_pick_processes_running_movable_oldest_first() -> None:
    n1 = 1 << 16
    procs = [
        proc(n1 + 5, 1, start=30),
        proc(n1 + 6, 1, start=10),
        proc(n1 + 7, 1, "S", start=1),  # sleeping
        proc(n1 + 8, 2, start=1),  # another node
        proc(n1 + 9, 1, start=10),  # same start as +6: the lower PID first
        proc(n1 + 10, 1, start=0),  # excluded (this command)
        proc((3 << 16) + 1, 1, start=0),  # home node 3, runs on node 1
    ]
    ours, theirs = L.pick_processes(procs, 1, 1, {n1 + 10})
    assert [p.pid for p in ours] == [(3 << 16) + 1, n1 + 6, n1 + 9, n1 + 5]
    assert theirs == []
    # from node 2: only the processes whose home is node 2 could be moved
    ours, theirs = L.pick_processes(procs, 1, 2, ())
    assert ours == [] and len(theirs) == 5
    # from node 3 (the home of one of them)
    ours, _ = L.pick_processes(procs, 1, 3, ())
    assert [p.pid for p in ours] == [(3 << 16) + 1]
    assert L.movable(n1 + 5, 1, 1) and L.movable(n1 + 5, 2, 1) and not L.movable(n1 + 5, 2, 3)


def test_ancestors_walks_ppid(tmp_path: Path) -> None:
    for pid, ppid in ((300, 200), (200, 100), (100, 1)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (a b) c) S {ppid} 1 1 0\n")
    assert L.ancestors(300, tmp_path) == {300, 200, 100}
    assert L.ancestors(999, tmp_path) == {999}  # gone: itself only


def test_sample_rounds() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def fake_info(n: int) -> NodeInfo:
        calls.append(n)
        return info(n, len(calls))

    out = L.sample([1, 3], 3, 0.5, fake_info, slept.append)
    assert calls == [1, 3, 1, 3, 1, 3] and slept == [0.5, 0.5]
    assert [i.nr_running for i in out[3]] == [2, 4, 6]


# --------------------------------------------------------------------------- command


class Fake:
    """The abi calls loadlevel makes, and the move request, scripted."""

    def __init__(self, me: int, runq: dict[int, int], procs: list[Proc]) -> None:
        self.me = me
        self.runq = runq
        self.procs = procs
        self.moves: list[tuple[int, int]] = []
        self.refuse: dict[int, str] = {}
        self.where: dict[int, int] = {p.pid: p.node for p in procs}

    def clusternode_num(self) -> int:
        return self.me

    def cluster_membership(self) -> Membership:
        states = dict.fromkeys(sorted(self.runq), "UP")
        return Membership(4, 1, self.me, True, len(states), states)

    def clusternode_info(self, node: int) -> NodeInfo:
        return info(node, self.runq[node])

    def process_list(self, local_only: bool = False) -> tuple[list[Proc], list[int]]:
        return [replace(p, node=self.where[p.pid]) for p in self.procs], []

    def request_move(self, pid: int, node: int) -> None:
        if pid in self.refuse:
            raise CLIError(self.refuse[pid], "hint")
        self.moves.append((pid, node))
        self.where[pid] = node

    def wait_moved(self, pid: int, node: int, timeout: float) -> int | None:
        return self.where.get(pid)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[[Fake], Fake]:
    def go(fk: Fake) -> Fake:
        for name in ("clusternode_num", "cluster_membership", "clusternode_info"):
            monkeypatch.setattr(abi, name, getattr(fk, name))
        monkeypatch.setattr("abi.vproc.process_list", fk.process_list)
        monkeypatch.setattr(migrate_cmd, "request_move", fk.request_move)
        monkeypatch.setattr(migrate_cmd, "wait_moved", fk.wait_moved)
        return fk

    return go


def run(*args: str) -> Any:
    return runner.invoke(app, ["loadlevel", "--interval", "0.01", "--samples", "2", *args])


def test_loadlevel_shows_figures_and_moves_nothing_without_once(
    install: Callable[[Fake], Fake],
) -> None:
    fk = install(Fake(1, {1: 4, 2: 0, 3: 1}, [proc((1 << 16) + 5, 1)]))
    r = run()
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NODE", "CPUS", "RUNQ", "RUNQ/CPU", "LOAD1", "AVAIL", "MiB",
                                "TOTAL", "MiB", "AGE", "ms"]  # fmt: skip
    assert lines[1].split()[:3] == ["1*", "1", "4.0"]
    assert lines[2].split()[:3] == ["2", "1", "0.0"]
    assert fk.moves == []


def test_loadlevel_once_moves_the_oldest_running_process(
    install: Callable[[Fake], Fake],
) -> None:
    n1 = 1 << 16
    fk = install(Fake(1, {1: 4, 2: 1, 3: 0},
                      [proc(n1 + 5, 1, start=9), proc(n1 + 6, 1, start=2, comm="old"),
                       proc(n1 + 7, 1, "S", start=1)]))  # fmt: skip
    r = run("--once")
    assert r.exit_code == 0, r.output
    assert fk.moves == [(n1 + 6, 3)]
    assert f"moved {n1 + 6} (old) from node 1 to node 3" in r.stdout
    data = json.loads(run("--once", "--json").stdout)
    assert data["ok"] and data["action"]["moved"]["pid"] == n1 + 5  # n1+6 is on node 3 now
    assert (data["action"]["from"], data["action"]["to"]) == (1, 3)


def test_loadlevel_once_tries_the_next_when_one_is_refused(
    install: Callable[[Fake], Fake],
) -> None:
    n1 = 1 << 16
    fk = install(Fake(1, {1: 4, 2: 0}, [proc(n1 + 5, 1, start=1), proc(n1 + 6, 1, start=2)]))
    fk.refuse[n1 + 5] = "moving 65541 to node 2: Operation not supported"
    r = run("--once")
    assert r.exit_code == 0, r.output
    assert fk.moves == [(n1 + 6, 2)]
    assert "Operation not supported" in r.stdout


def test_loadlevel_once_fails_loudly_when_every_move_fails(
    install: Callable[[Fake], Fake],
) -> None:
    n1 = 1 << 16
    fk = install(Fake(1, {1: 4, 2: 0}, [proc(n1 + 5, 1), proc(n1 + 6, 1), proc(n1 + 7, 1)]))
    for p in fk.procs:
        fk.refuse[p.pid] = "no"
    r = run("--once", "--tries", "2")
    assert r.exit_code == 1
    assert "no process moved from node 1 to node 2: 2 tried" in r.stderr
    data = json.loads(run("--once", "--tries", "2", "--json").stdout)
    assert data["ok"] is False and len(data["action"]["tried"]) == 2


def test_loadlevel_once_balanced_or_nothing_movable(install: Callable[[Fake], Fake]) -> None:
    n2 = 2 << 16
    fk = install(Fake(1, {1: 1, 2: 1, 3: 1}, [proc(n2 + 1, 2)]))
    r = run("--once")
    assert r.exit_code == 0 and "balanced" in r.stdout and fk.moves == []
    # node 2 is busy, but its process is node 2's: node 1 may not move it
    fk.runq = {1: 0, 2: 5, 3: 1}
    r = run("--once", "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["action"]["reason"] == "not movable from here"
    assert fk.moves == []


def test_loadlevel_bad_options(install: Callable[[Fake], Fake]) -> None:
    install(Fake(1, {1: 0, 2: 0}, []))
    r = runner.invoke(app, ["loadlevel", "--samples", "0"])
    assert r.exit_code == 1 and "--samples 0 is out of range" in r.stderr
    r = runner.invoke(app, ["loadlevel", "--interval", "0"])
    assert r.exit_code == 1 and "--interval 0 is out of range" in r.stderr


# --------------------------------------------------------------------------- status


def test_cluster_status_load_columns() -> None:
    with_fig = info(1, 3, avail_mib=150).to_json()
    without = info(2, 0, has=False).to_json()
    data = {
        "membership": {"self": 1, "transition": 4, "master": 1, "quorum": True,
                       "nr_configured": 2, "states": {"1": "UP", "2": "UP"}},
        "name": "lab",
        "nodes": [with_fig, without],
    }  # fmt: skip
    lines = cluster_status.format_status(data, load=True).splitlines()
    head = lines[1].split()
    assert head[head.index("RUNQ") :][:3] == ["RUNQ", "AVAIL", "MiB"]
    # LOAD is three words in a row, "MEM MiB FREE/TOTAL" three in the header
    at = head.index("RUNQ")
    assert lines[2].split()[at : at + 2] == ["3", "150"]
    assert lines[3].split()[at : at + 2] == ["-", "-"]
    assert "RUNQ" not in cluster_status.format_status(data).splitlines()[1]
