"""``ssictl migrate PID NODE``, ``ssictl rfork NODE``, ``ssictl onnode NODE -- CMD``:
moving processes between nodes (migration.ko).

``migrate`` writes NODE to ``/proc/PID/goto`` (with ``--pgrp``, for every process
of process group PID), which this node serves for the processes it runs and for
those whose home it is; it then waits until ``/proc/PID/node`` says NODE.  A
refusal is logged by the node that ran the process (dmesg: ``migration: pid P:
not moved: <why>``, and ``/sys/kernel/ssi/migration/outcomes``, which ``migrate``
run by root reads to say why at once when the process ran here) and the process
goes on where it was.  ``rfork`` is a demo of
rfork(2): the child reports where it runs and exits.  ``onnode`` execs CMD on NODE
with rexec(2), keeping this process's PID.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ssictl.output import CLIError, JsonOpt, emit, handle_errors

PidArg = Annotated[int, typer.Argument(help="A process ID (or, with --pgrp, a process group).")]
NodeArg = Annotated[int, typer.Argument(help="The node to move to.")]
PgrpOpt = Annotated[bool, typer.Option("--pgrp", help="Move every process of group PID.")]
WaitOpt = Annotated[
    float, typer.Option("--wait", help="Seconds to wait for each move (0: do not wait).")
]


def proc_node(pid: int) -> int | None:
    """The node ``/proc/PID/node`` names, or None once the process is gone."""
    try:
        return int(Path(f"/proc/{pid}/node").read_text().strip())
    except (OSError, ValueError):
        return None


def request_move(pid: int, node: int) -> None:
    """Write *node* to ``/proc/PID/goto``; a CLIError says what went wrong."""
    goto = Path(f"/proc/{pid}/goto")
    try:
        goto.write_text(f"{node}\n")
        return
    except FileNotFoundError:
        where = proc_node(pid)
        if where is None:
            raise CLIError(f"no process {pid}", "check the PID with `ssictl ps`") from None
        home = pid >> 16
        raise CLIError(
            f"process {pid} runs on node {where} and its home is node {home}; "
            "this node cannot move it",
            f"run `ssictl migrate {pid} {node}` on node {where} or node {home}",
        ) from None
    except OSError as e:
        raise CLIError(f"moving {pid} to node {node}: {os.strerror(e.errno or 0)}",
                       _hint(e.errno or 0, node)) from None


def _hint(err: int, node: int) -> str:
    import errno

    return {
        errno.EPERM: "you may move only processes you may kill (same user, or root)",
        errno.EHOSTDOWN: f"node {node} is not UP: see `ssictl cluster status`",
        errno.EINVAL: "nodes are 1..63",
        errno.ENOSYS: "load migration.ko: `ssictl modules load migration`",
    }.get(err, "see dmesg on the node the process runs on")


OUTCOMES = Path("/sys/kernel/ssi/migration/outcomes")


@dataclass(frozen=True)
class Outcome:
    """One line of the outcomes file: how a move of *pid* ended on this node."""

    seq: int
    pid: int
    node: int
    err: int  # 0: moved
    why: str


def parse_outcomes(text: str) -> list[Outcome]:
    """``SEQ PID NODE ERRNO WHY`` lines; malformed ones are skipped."""
    out = []
    for line in text.splitlines():
        f = line.split(maxsplit=4)
        try:
            out.append(Outcome(int(f[0]), int(f[1]), int(f[2]), int(f[3]),
                               f[4] if len(f) > 4 else ""))
        except (IndexError, ValueError):
            continue
    return out


def read_outcomes(path: Path | None = None) -> list[Outcome]:
    try:
        return parse_outcomes((path or OUTCOMES).read_text())
    except OSError:
        return []  # migration.ko not loaded here, or an older one


def refusal(outcomes: list[Outcome], pid: int, since: int) -> Outcome | None:
    """The first refusal of *pid* recorded after sequence number *since*."""
    return next((o for o in outcomes if o.pid == pid and o.seq > since and o.err), None)


def wait_moved(pid: int, node: int, timeout: float) -> int | None:
    """Poll ``/proc/PID/node`` until it says *node* (or the process is gone)."""
    return wait_outcome(pid, node, timeout, None)[0]


def wait_outcome(pid: int, node: int, timeout: float,
                 since: int | None) -> tuple[int | None, Outcome | None]:
    """Poll ``/proc/PID/node`` until it says *node*, the process is gone, or
    (with *since*, the outcomes' last sequence number before the request) this
    node recorded that it refused to move; returns (node now, the refusal)."""
    deadline = time.monotonic() + timeout
    while True:
        now = proc_node(pid)
        if now == node or now is None:
            return now, None
        why = refusal(read_outcomes(), pid, since) if since is not None else None
        if why or time.monotonic() >= deadline:
            return now, why
        time.sleep(0.1)


def _refusal_hint(err: int) -> str:
    import errno

    return {
        errno.EOPNOTSUPP: "this kind of process cannot move yet (abi/ERRNOS.md, Migration)",
        errno.EBUSY: "it is tied to another task (ptrace, vfork, a thread starting): "
                     "try again once that ends",
        errno.EHOSTDOWN: "the target left the cluster: see `ssictl cluster status`",
    }.get(err, "see `dmesg | grep migration` on this node")


def group_members(pgid: int) -> list[int]:
    from abi import vproc

    procs, _ = vproc.process_list()
    return sorted(p.pid for p in procs if p.pgid == pgid)


def migrate(
    pid: PidArg, node: NodeArg, pgrp: PgrpOpt = False, wait: WaitOpt = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Move process PID (or process group PID) to NODE; it keeps its PID."""
    with handle_errors(as_json):
        pids = group_members(pid) if pgrp else [pid]
        if not pids:
            raise CLIError(f"no process in group {pid}", "check it with `ssictl ps`")
        results = []
        outcomes = read_outcomes()
        since = max((o.seq for o in outcomes), default=0)
        for p in pids:
            request_move(p, node)
        for p in pids:
            why = None
            if wait > 0:
                now, why = wait_outcome(p, node, wait, since)
            else:
                now = proc_node(p)
            if why:
                raise CLIError(f"process {p} was not moved: {why.why} "
                               f"({os.strerror(why.err)})", _refusal_hint(why.err))
            results.append({"pid": p, "node": now, "moved": now == node})
        stuck = [r for r in results if not r["moved"] and r["node"] is not None]
        if stuck and wait > 0:
            r = stuck[0]
            raise CLIError(
                f"process {r['pid']} is still on node {r['node']} after {wait:g} s",
                f"`dmesg | grep migration` on node {r['node']} says why",
            )

        def human() -> str:
            return "\n".join(
                f"{r['pid']}: node {r['node']}" if r["node"] else f"{r['pid']}: exited"
                for r in results
            )

        emit({"processes": results}, human, as_json)


def rfork(node: NodeArg, as_json: JsonOpt = False) -> None:
    """Demo of rfork(2): fork a child on NODE; it reports where it runs and exits."""
    with handle_errors(as_json):
        from abi import binding

        sys.stdout.flush()
        child = binding.rfork(node)
        if child == 0:
            here = proc_node(os.getpid())
            os.write(1, f"child {os.getpid()} on node {here}, parent {os.getppid()}\n".encode())
            os._exit(0 if here == node else 1)
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        emit({"child": child, "node": node, "exit": code},
             f"parent {os.getpid()}: child {child} exited with {code}", as_json)
        if code:
            raise typer.Exit(1)


def onnode(
    node: NodeArg,
    cmd: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
) -> None:
    """Run CMD on NODE in place of this process (rexec(2)); it keeps this PID."""
    with handle_errors(False):
        from abi import binding

        if not cmd:
            raise CLIError("no command given", f"ssictl onnode {node} -- CMD [ARGS...]")
        sys.stdout.flush()
        sys.stderr.flush()
        binding.rexec(node, cmd[0], cmd)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("rfork")(rfork)
    app.command(
        "onnode",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(onnode)
