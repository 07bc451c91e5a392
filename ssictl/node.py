"""``ssictl node``: this node's number, from the kernel (ssisys SSISYS_NODE_NUM)."""

from __future__ import annotations

from typing import Annotated

import typer

from ssictl.output import emit, handle_errors

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def node(as_json: JsonOpt = False) -> None:
    """Print this node's number (needs the ssi_core module)."""
    with handle_errors(as_json):
        from abi import clusternode_num

        num = clusternode_num()
        emit({"node": num}, str(num), as_json)


def register(app: typer.Typer) -> None:
    app.command("node")(node)
