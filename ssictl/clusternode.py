"""OpenSSI-style short commands (the Cluster Tools of libcluster).

* ``ssictl clusternode-num``: this node's number.
* ``ssictl cluster-membership``: one line per node, ``NODE: STATE`` (as ``cluster -v``).
* ``ssictl clusternode-info NODE``: what CLMS knows about NODE.
* ``ssictl clusternode-avail NODE``: exit 0 if NODE is UP, 1 if not, 2 on error.
"""

from __future__ import annotations

import errno
import time
from typing import Annotated, Any

import typer

from ssictl import table
from ssictl.cluster_status import format_since
from ssictl.output import CLIError, JsonOpt, emit, handle_errors

NodeArg = Annotated[int, typer.Argument(metavar="NODE", help="Node number (1..63).")]

AVAIL_ERROR_EXIT = 2  # clusternode-avail: 0 = UP, 1 = not UP, 2 = could not tell


def _check_node(node: int) -> int:
    from abi import SSI_MAX_NODES

    if not 1 <= node <= SSI_MAX_NODES:
        raise CLIError(
            f"node {node} is out of range",
            f"node numbers are 1..{SSI_MAX_NODES} (`ssictl cluster-membership` lists the nodes)",
            errno=errno.EINVAL,
        )
    return node


def clusternode_num(as_json: JsonOpt = False) -> None:
    """Print this node's number (needs ssi_core)."""
    with handle_errors(as_json):
        import abi

        num = abi.clusternode_num()
        emit({"node": num}, str(num), as_json)


def cluster_membership(as_json: JsonOpt = False) -> None:
    """One line per node of the cluster with its state, like OpenSSI's `cluster -v`."""
    with handle_errors(as_json):
        import abi

        m = abi.cluster_membership()
        emit(
            m.to_json(),
            lambda: "\n".join(f"{n}: {s}" for n, s in sorted(m.states.items())),
            as_json,
        )


def format_info(info: dict[str, Any], now: float | None = None) -> str:
    from datetime import datetime

    now = time.time() if now is None else now
    since = (
        datetime.fromtimestamp(info["since_epoch"]).astimezone()
        if info.get("since_epoch")
        else None
    )
    rows = [
        ("node", str(info["node"])),
        ("state", info["state"]),
        ("address", info["addr"] or "-"),
        ("cpus", str(info["cpus"])),
        ("memory", f"{info['mem_free_kb']} kB free of {info['mem_total_kb']} kB"),
        ("load", " ".join(f"{x:.2f}" for x in info["load"])),
        ("incarnation", str(info["incarnation"])),
        ("since", format_since(since, now)),
        ("transition", str(info["transition"])),
    ]
    return "\n".join(table.format_table(rows))


def clusternode_info(node: NodeArg, as_json: JsonOpt = False) -> None:
    """Show NODE's state, address, CPUs, memory, load and since when (needs clms)."""
    with handle_errors(as_json):
        import abi

        info = abi.clusternode_info(_check_node(node)).to_json()
        emit(info, lambda: format_info(info), as_json)


def clusternode_avail(node: NodeArg, as_json: JsonOpt = False) -> None:
    """Exit 0 if NODE is UP, 1 if it is not, 2 if that cannot be told (needs clms)."""
    up = False
    try:
        with handle_errors(as_json):
            import abi

            m = abi.cluster_membership()
            state = m.states.get(_check_node(node), "NEVERUP")
            up = state == "UP"
            emit(
                {"node": node, "avail": up, "state": state, "transition": m.transition},
                f"node {node}: {state}" + ("" if up else " (not available)"),
                as_json,
            )
    except typer.Exit as e:
        raise typer.Exit(AVAIL_ERROR_EXIT if e.exit_code else 0) from None
    if not up:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("clusternode-num")(clusternode_num)
    app.command("cluster-membership")(cluster_membership)
    app.command("clusternode-info")(clusternode_info)
    app.command("clusternode-avail")(clusternode_avail)
