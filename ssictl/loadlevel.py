"""``ssictl loadlevel [--once]``: every node's load figures, and one load-leveling step.

The figures are CLMS's (``struct ssi_node_info``, ``abi.clusternode_info``): each
node's heartbeats (every 100 ms) carry its online CPUs, run queue (runnable tasks
over all its CPUs, sampled once per heartbeat), load averages and memory
(``MemAvailable``); this node's are sampled at the call. This is the hook for a
policy daemon; the policy below is deliberately simple (the real one is a later
issue):

1. **Figures.** Every UP node is sampled ``--samples`` times, ``--interval`` s apart;
   a node's run queue is the mean of its samples (the kernel does not count the task
   that samples: an idle node says 0). The load of a node is its run queue per online
   CPU.
2. **Nodes.** The busiest node has the highest load (ties: the higher 1-minute load
   average per CPU, then the lower node number); the least loaded has the lowest
   load among the nodes with at least ``--min-avail-mib`` MiB available (ties: more
   memory available, then the lower node number).
3. **Whether.** One process moves only if the two loads differ by at least
   ``--min-gap`` runnable tasks per CPU (1 by default): moving one task then cannot
   make the target busier than the source was.
4. **Which.** Candidates are the processes of the busiest node that are running or
   runnable (state R), other than this command and its ancestors, and that this
   node can move: ``/proc/PID/goto`` is served by the node a process runs on and by
   its home node (``ssictl migrate``). Oldest first (a long runner is the likeliest
   to go on running), then the lowest PID. Each is asked to move to the least loaded
   node (``/proc/PID/goto``) and waited for up to ``--wait`` s; one that refuses (it
   cannot move: dmesg on its node says why) is reported and the next is tried, at
   most ``--tries``.

Without ``--once`` the command only shows the figures. With it, the exit status is
0 when a process moved or there was nothing to do (balanced, or nothing this node
may move), 1 when every move tried failed.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ssictl.output import CLIError, JsonOpt, emit, handle_errors, note
from ssictl.table import format_table

if TYPE_CHECKING:
    from abi.cluster import NodeInfo
    from abi.vproc import Proc

PID_NODE_SHIFT = 16  # abi/ssi_abi.h SSI_PID_NODE_SHIFT (a clusterwide PID's home)


@dataclass(frozen=True)
class NodeLoad:
    """One node's figures as the policy uses them (run queue averaged over samples)."""

    node: int
    cpus: int
    runq: float
    load1: float
    mem_available_kb: int
    mem_total_kb: int
    age_ms: int

    @property
    def load(self) -> float:
        """Runnable tasks per online CPU."""
        return self.runq / self.cpus if self.cpus > 0 else 0.0

    @property
    def load1_per_cpu(self) -> float:
        return self.load1 / self.cpus if self.cpus > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "cpus": self.cpus,
            "runq": round(self.runq, 2),
            "load": round(self.load, 3),
            "load1": self.load1,
            "mem_available_kb": self.mem_available_kb,
            "mem_total_kb": self.mem_total_kb,
            "age_ms": self.age_ms,
        }


# --------------------------------------------------------------------------- policy


def aggregate(samples: Sequence[NodeInfo]) -> NodeLoad | None:
    """Samples of one node -> its :class:`NodeLoad` (``None`` if none had figures);
    the run queue is the mean of the samples' ``nr_running``."""
    good = [s for s in samples if s.has_load and s.cpus > 0]
    if not good:
        return None
    runq = sum(s.nr_running for s in good) / len(good)
    last = good[-1]
    return NodeLoad(
        node=last.node,
        cpus=last.cpus,
        runq=runq,
        load1=last.load[0],
        mem_available_kb=last.mem_available_kb,
        mem_total_kb=last.mem_total_kb,
        age_ms=max(s.figures_age_ms for s in good),
    )


def pick_nodes(
    loads: Iterable[NodeLoad], min_gap: float, min_avail_kb: int
) -> tuple[NodeLoad, NodeLoad] | None:
    """(busiest, least loaded) when one process should move between them, else None."""
    nodes = list(loads)
    if len(nodes) < 2:
        return None
    busiest = max(nodes, key=lambda n: (n.load, n.load1_per_cpu, -n.node))
    targets = [n for n in nodes if n.node != busiest.node and n.mem_available_kb >= min_avail_kb]
    if not targets:
        return None
    least = min(targets, key=lambda n: (n.load, -n.mem_available_kb, n.node))
    if busiest.load - least.load < min_gap:
        return None
    return busiest, least


def movable(pid: int, runs_on: int, self_node: int) -> bool:
    """Can this node ask *pid* to move (it runs here, or this is its home node)?"""
    return runs_on == self_node or pid >> PID_NODE_SHIFT == self_node


def pick_processes(
    procs: Iterable[Proc], node: int, self_node: int, exclude: Iterable[int]
) -> tuple[list[Proc], list[Proc]]:
    """The running processes of *node* this node can move, in the order to try them
    (oldest first, then lowest PID), and those it cannot (another node must)."""
    skip = set(exclude)
    running = [p for p in procs if p.node == node and p.state == "R" and p.pid not in skip]
    running.sort(key=lambda p: (p.start_ns, p.pid))
    ours = [p for p in running if movable(p.pid, p.node, self_node)]
    theirs = [p for p in running if not movable(p.pid, p.node, self_node)]
    return ours, theirs


def ancestors(pid: int, proc: Path = Path("/proc")) -> set[int]:
    """*pid* and its ancestors (by ``/proc/PID/stat``'s ppid), up to PID 1."""
    out: set[int] = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = (proc / str(pid) / "stat").read_text()
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


# --------------------------------------------------------------------------- figures


def sample(
    nodes: Sequence[int],
    samples: int,
    interval: float,
    info: Callable[[int], NodeInfo],
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, list[NodeInfo]]:
    """*samples* rounds of *info* for every node, *interval* s apart."""
    out: dict[int, list[NodeInfo]] = {n: [] for n in nodes}
    for i in range(samples):
        if i:
            sleep(interval)
        for n in nodes:
            out[n].append(info(n))
    return out


def format_loads(loads: Sequence[NodeLoad], missing: Sequence[int], self_node: int) -> str:
    cols = ("NODE", "CPUS", "RUNQ", "RUNQ/CPU", "LOAD1", "AVAIL MiB", "TOTAL MiB", "AGE ms")
    rows: list[tuple[str, ...]] = [cols]
    for ld in sorted(loads, key=lambda x: x.node):
        rows.append(
            (
                f"{ld.node}{'*' if ld.node == self_node else ''}",
                str(ld.cpus),
                f"{ld.runq:.1f}",
                f"{ld.load:.2f}",
                f"{ld.load1:.2f}",
                str(ld.mem_available_kb // 1024),
                str(ld.mem_total_kb // 1024),
                str(ld.age_ms),
            )
        )
    for n in missing:
        rows.append((f"{n}{'*' if n == self_node else ''}", *("-" * 7)))
    lines = format_table(rows, align="<>>>>>>>")
    if missing:
        lines.append(f"(no figures from node(s) {', '.join(map(str, missing))}: not heard)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command

OnceOpt = Annotated[
    bool, typer.Option("--once", help="Move one process off the busiest node, if one should.")
]
SamplesOpt = Annotated[int, typer.Option("--samples", help="Samples of each node's figures.")]
IntervalOpt = Annotated[
    float, typer.Option("--interval", metavar="S", help="Seconds between samples.")
]
GapOpt = Annotated[
    float,
    typer.Option("--min-gap", help="Least difference in runnable tasks per CPU that moves one."),
]
AvailOpt = Annotated[
    int, typer.Option("--min-avail-mib", help="A target needs at least this much memory available.")
]
TriesOpt = Annotated[
    int, typer.Option("--tries", help="At most this many processes asked to move.")
]
WaitOpt = Annotated[float, typer.Option("--wait", help="Seconds to wait for each move.")]


def _check(value: float, lo: float, hi: float, name: str) -> None:
    if not lo <= value <= hi:
        raise CLIError(f"{name} {value:g} is out of range", f"give {lo:g}..{hi:g}",
                       errno=errno.EINVAL)


def loadlevel(
    once: OnceOpt = False,
    samples: SamplesOpt = 5,
    interval: IntervalOpt = 0.2,
    min_gap: GapOpt = 1.0,
    min_avail_mib: AvailOpt = 32,
    tries: TriesOpt = 3,
    wait: WaitOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Show every node's load figures; with --once, move one process from the
    busiest node to the least loaded one (policy: `pydoc ssictl.loadlevel`)."""
    with handle_errors(as_json):
        _check(samples, 1, 100, "--samples")
        _check(interval, 0.01, 10, "--interval")
        _check(min_gap, 0, 1000, "--min-gap")
        _check(min_avail_mib, 0, 1 << 30, "--min-avail-mib")
        _check(tries, 1, 100, "--tries")
        _check(wait, 0.1, 3600, "--wait")
        import abi

        me = abi.clusternode_num()
        up = abi.cluster_membership().up()
        raw = sample(up, samples, interval, abi.clusternode_info)
        loads: list[NodeLoad] = []
        missing: list[int] = []
        for n in up:
            agg = aggregate(raw[n])
            if agg is None:
                missing.append(n)
            else:
                loads.append(agg)
        data: dict[str, Any] = {"self": me, "nodes": [ld.to_json() for ld in loads],
                                "no_figures": missing}
        lines = [format_loads(loads, missing, me)]
        if once:
            failed = _level(loads, me, min_gap, min_avail_mib << 10, tries, wait, data, lines,
                            as_json)
            if failed:
                if not as_json:
                    emit(data, "\n".join(lines), as_json)
                raise CLIError(
                    failed,
                    "`dmesg | grep migration` on the busiest node says why a move was refused",
                    data={"self": me, "nodes": data["nodes"], "action": data["action"]},
                )
        emit(data, "\n".join(lines), as_json)


def _level(
    loads: list[NodeLoad],
    me: int,
    min_gap: float,
    min_avail_kb: int,
    tries: int,
    wait: float,
    data: dict[str, Any],
    lines: list[str],
    as_json: bool,
) -> str | None:
    """One policy step; fills data["action"] and *lines*; an error message if every
    move tried failed."""
    from abi import vproc
    from ssictl.migrate import request_move, wait_moved

    pair = pick_nodes(loads, min_gap, min_avail_kb)
    if pair is None:
        data["action"] = {"moved": None, "reason": "balanced"}
        lines.append(f"balanced: no two nodes differ by {min_gap:g} runnable task(s) per CPU "
                     "(or no target has the memory): nothing moved")
        return None
    busiest, least = pair
    procs, _ = vproc.process_list()
    ours, theirs = pick_processes(procs, busiest.node, me, ancestors(os.getpid()))
    action: dict[str, Any] = {"from": busiest.node, "to": least.node, "moved": None,
                              "tried": []}
    data["action"] = action
    head = (f"node {busiest.node} is the busiest ({busiest.load:.2f} runnable/CPU), "
            f"node {least.node} the least loaded ({least.load:.2f})")
    lines.append(head)
    if not ours:
        if theirs:
            action["reason"] = "not movable from here"
            lines.append(f"nothing this node may move: {len(theirs)} running process(es) of "
                         f"node {busiest.node} must be moved from node {busiest.node} or "
                         "their home node")
        else:
            action["reason"] = "no running process"
            lines.append(f"no running process on node {busiest.node}: nothing moved")
        return None
    for p in ours[:tries]:
        note(f"moving {p.pid} ({p.comm}) from node {busiest.node} to node {least.node}",
             as_json)
        try:
            request_move(p.pid, least.node)
        except CLIError as e:
            action["tried"].append({"pid": p.pid, "comm": p.comm, "error": e.message})
            lines.append(f"{p.pid} ({p.comm}): {e.message}")
            continue
        now = wait_moved(p.pid, least.node, wait)
        if now == least.node:
            action["moved"] = {"pid": p.pid, "comm": p.comm}
            lines.append(f"moved {p.pid} ({p.comm}) from node {busiest.node} "
                         f"to node {least.node}")
            return None
        what = "exited" if now is None else f"still on node {now} after {wait:g} s"
        action["tried"].append({"pid": p.pid, "comm": p.comm, "error": what})
        lines.append(f"{p.pid} ({p.comm}): {what}")
    return (f"no process moved from node {busiest.node} to node {least.node}: "
            f"{len(action['tried'])} tried")


def register(app: typer.Typer) -> None:
    app.command("loadlevel")(loadlevel)
