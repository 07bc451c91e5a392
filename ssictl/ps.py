"""``ssictl ps``, ``ssictl where PID``, ``ssictl localview -- CMD``: clusterwide
processes (vproc.ko).

``ps`` lists the user processes of every UP node (PID >= 65536) with the node each
runs on, from one ssisys(SSISYS_VPROC_LIST) call; ``where`` asks the PID's origin
node where it runs; ``localview`` runs CMD confined to this node's processes (the
flag is inherited by everything CMD starts).
"""

from __future__ import annotations

import os
import pwd
from typing import Annotated, Any

import typer

from ssictl import table
from ssictl.output import CLIError, JsonOpt, emit, handle_errors

LocalOpt = Annotated[bool, typer.Option("--local", help="This node's processes only.")]


def user_name(uid: int, cache: dict[int, str]) -> str:
    if uid not in cache:
        try:
            cache[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            cache[uid] = str(uid)
    return cache[uid]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The human ``ps`` table: NODE PID PPID PGID SID USER S COMMAND."""
    names: dict[int, str] = {}
    cells = [("NODE", "PID", "PPID", "PGID", "SID", "USER", "S", "COMMAND")]
    for r in rows:
        cells.append(
            (
                *(str(r[k]) for k in ("node", "pid", "ppid", "pgid", "sid")),
                user_name(r["euid"], names)[:10],
                r["state"],
                r["comm"],
            )
        )
    return "\n".join(table.format_table(cells, align=">>>>>", gap=" "))


def ps(as_json: JsonOpt = False, local: LocalOpt = False) -> None:
    """List the processes of every node (or only this node's) with a NODE column."""
    with handle_errors(as_json):
        from abi import vproc

        procs, failed = vproc.process_list(local_only=local)
        rows = [p.to_json() for p in procs]

        def human() -> str:
            text = format_table(rows)
            if failed:
                text += f"\n(no answer from node(s) {', '.join(map(str, failed))})"
            return text

        emit({"processes": rows, "failed_nodes": failed}, human, as_json)


def where(
    pid: Annotated[int, typer.Argument(help="A process ID.")], as_json: JsonOpt = False
) -> None:
    """Print the node PID runs on."""
    with handle_errors(as_json):
        from abi import vproc

        try:
            vproc.check_pid(pid)
        except ValueError as e:
            raise CLIError(str(e), "pass a positive PID") from None
        node = vproc.where(pid)
        emit({"pid": pid, "node": node}, str(node), as_json)


def localview(
    cmd: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
) -> None:
    """Run CMD seeing only this node's processes (/proc, ps, kill); inherited by its
    children."""
    with handle_errors(False):
        from abi import vproc

        if not cmd:
            raise CLIError("no command given", "ssictl localview -- CMD [ARGS...]")
        vproc.set_localview(True)
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            raise CLIError(f"cannot run {cmd[0]}: {e.strerror}", "check the command name") from None


def register(app: typer.Typer) -> None:
    app.command("ps")(ps)
    app.command("where")(where)
    app.command(
        "localview",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(localview)
