"""``ssictl cluster setup|up|keygen``: give this node its cluster key and table.

The admin runs ``cluster setup`` on every node (same key, same table); ics.ko then
connects the nodes and clms.ko forms the membership. ``cluster up`` is
``modules load`` + ``cluster setup`` (+ optionally waiting until every node of
the table is UP) in one process: one Python start per node, which is what the
test harness uses. The table comes from ``--table FILE`` or, inline, from
``--peer NODE=ADDRESS`` options. File formats: ssictl.clusterconf.
"""

from __future__ import annotations

import errno
import time
from typing import Annotated, Any

import typer

from ssictl import clusterconf
from ssictl.modules import DirOpt
from ssictl.output import CLIError, JsonOpt, emit, handle_errors, note

TableOpt = Annotated[
    str | None,
    typer.Option(
        "--table",
        metavar="FILE",
        help="Cluster table: lines `NODE ADDRESS` (# comments).",
        show_default=False,
    ),
]
PeerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--peer",
        metavar="NODE=ADDRESS",
        help="Instead of --table: one node of the table (repeat for every node), "
        "e.g. --peer 1=10.0.0.1 --peer 2=10.0.0.2.",
        show_default=False,
    ),
]
KeyOpt = Annotated[
    str,
    typer.Option(
        "--key-file",
        metavar="FILE",
        help="Cluster key, 16..64 bytes: hex digits, or raw bytes; `-` reads stdin. Never printed.",
        show_default=False,
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="Also name the cluster (needs clms).", show_default=False),
]


def _apply(
    table: dict[int, str],
    source: str,
    key: bytes,
    name: str | None,
    as_json: bool,
) -> dict[str, Any]:
    """Hand key, table and name to the kernel; returns what was done (never the key)."""
    import abi
    from abi.cluster import check_name

    if name is not None:
        try:
            check_name(name)
        except ValueError as e:
            raise CLIError(str(e), "pick another --name", errno=errno.EINVAL) from None
    me = abi.clusternode_num()
    if me not in table:
        raise CLIError(
            f"this node (node {me}) is not in the cluster table ({source}: "
            f"nodes {', '.join(map(str, sorted(table)))})",
            f"add a line `{me} ADDRESS` for this node, or run setup on a node of the table",
            errno=errno.EINVAL,
        )
    try:
        abi.cluster_set_key(key)
    except ValueError as e:  # checked in clusterconf already; keep the CLI traceback-free
        raise CLIError(str(e), clusterconf.KEYGEN_HINT, errno=errno.EINVAL) from None
    note(f"node {me}: cluster key set ({len(key)} bytes)", as_json)
    abi.cluster_set_table(table)
    note(
        f"node {me}: cluster table set ({len(table)} nodes: {clusterconf.format_table(table)})",
        as_json,
    )
    if name is not None:
        abi.cluster_set_name(name)
        note(f"node {me}: cluster name set to {name}", as_json)
    return {
        "node": me,
        "key_bytes": len(key),
        "table": {str(n): a for n, a in sorted(table.items())},
        "table_source": source,
        "name": name,
    }


def _inputs(
    table_file: str | None, peers: list[str] | None, key_file: str, as_json: bool
) -> tuple[dict[int, str], str, bytes, list[str]]:
    table, source = clusterconf.choose_table(table_file, peers)
    key, warnings = clusterconf.read_key(key_file)
    for w in warnings:
        note(f"warning: {w}", as_json)
    return table, source, key, warnings


def wait_all_up(table: dict[int, str], timeout: float, as_json: bool) -> dict[str, Any]:
    """Poll the membership until every node of *table* is UP with quorum."""
    import abi

    deadline = time.monotonic() + timeout
    while True:
        m = abi.cluster_membership()
        missing = [n for n in sorted(table) if m.states.get(n) != "UP"]
        if not missing and m.quorum:
            note(
                f"node {m.self}: all {len(table)} nodes UP (transition {m.transition}, "
                f"master {m.master})",
                as_json,
            )
            return m.to_json()
        if time.monotonic() >= deadline:
            states = ", ".join(f"{n}={m.states.get(n, '?')}" for n in sorted(table))
            raise CLIError(
                f"after {timeout:g} s, node(s) {', '.join(map(str, missing)) or '-'} not UP"
                f"{'' if m.quorum else ', no quorum'} (node {m.self} sees: {states}; "
                f"transition {m.transition}, master {m.master or 'none'})",
                "run `ssictl cluster setup` with the same key and table on every node; "
                "`ssictl ics stats` shows which peers are connected, dmesg why not",
                data={"membership": m.to_json()},
            )
        time.sleep(0.1)


def setup(
    key_file: KeyOpt,
    table_file: TableOpt = None,
    peers: PeerOpt = None,
    name: NameOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set this node's cluster key and table (needs ics; --name needs clms).

    Run it on every node with the same key and table (--table FILE or --peer options)."""
    with handle_errors(as_json):
        table, source, key, warnings = _inputs(table_file, peers, key_file, as_json)
        done = _apply(table, source, key, name, as_json)
        emit({**done, "warnings": warnings}, "", as_json)


ModulesOpt = Annotated[
    str | None,
    typer.Option(
        "--modules",
        metavar="A,B,...",
        help="Modules to load (with their dependencies) [default: every module in DIR].",
        show_default=False,
    ),
]
WaitOpt = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        help="Then wait until every node of the table is UP (needs clms).",
        show_default=False,
    ),
]


def up(
    key_file: KeyOpt,
    table_file: TableOpt = None,
    peers: PeerOpt = None,
    name: NameOpt = None,
    module_names: ModulesOpt = None,
    directory: DirOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load the modules, then `cluster setup` (and with --wait, wait for all UP)."""
    with handle_errors(as_json):
        from ssictl import modules

        if wait is not None and not 0 <= wait <= 3600:
            raise CLIError(
                f"--wait {wait:g} is out of range", "give 0..3600 seconds", errno=errno.EINVAL
            )
        # Read the inputs before touching the kernel: a bad file changes nothing.
        table, source, key, warnings = _inputs(table_file, peers, key_file, as_json)
        names = [n.strip() for n in module_names.split(",") if n.strip()] if module_names else None
        d, mods = modules.find_modules(directory)
        loaded = modules.load_modules(d, mods, names, as_json)
        done = _apply(table, source, key, name, as_json)
        data: dict[str, Any] = {"modules": loaded, **done, "warnings": warnings}
        if wait:
            data["membership"] = wait_all_up(table, wait, as_json)
        emit(data, "", as_json)


PathArg = Annotated[str, typer.Argument(metavar="FILE", help="Where to write the key.")]
BytesOpt = Annotated[int, typer.Option("--bytes", help="Key length in bytes (16..64).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing file.")]


def keygen(
    path: PathArg, nbytes: BytesOpt = 32, force: ForceOpt = False, as_json: JsonOpt = False
) -> None:
    """Write a new random cluster key (hex, mode 0600); copy it to every node."""
    with handle_errors(as_json):
        clusterconf.write_key(path, nbytes, force)
        emit(
            {"path": path, "key_bytes": nbytes},
            f"wrote a {nbytes}-byte cluster key to {path} (hex, mode 0600)",
            as_json,
        )


def register(app: typer.Typer) -> None:
    app.command("setup")(setup)
    app.command("up")(up)
    app.command("keygen")(keygen)
