"""``ssictl cfs status``: this node's CFS mounts and its CFS counters.

Mounts come from ``/proc/self/mounts`` (type ``cfs``; the source is
``NODE:/path``, or ``/path`` for a mount of this node's own export), the counters
from ``/sys/kernel/ssi/cfs/counters`` (calls made as a client, revokes sent as a
server and taken as a client, tokens kept as a server) and whether clients keep
attributes under tokens from the module parameter ``cfs.cache``.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import typer

from ssictl.output import CLIError, JsonOpt, emit, handle_errors
from ssictl.table import format_table

SSI_SYSFS = Path("/sys/kernel/ssi")
CFS_COUNTERS = SSI_SYSFS / "cfs" / "counters"
CFS_CACHE_PARAM = Path("/sys/module/cfs/parameters/cache")
MOUNTS = Path("/proc/self/mounts")

app = typer.Typer(help="The cluster file system on this node.", no_args_is_help=True)


def _unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as octal."""
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, ch)
    return field


def parse_mounts(text: str, this_node: int | None) -> list[dict[str, Any]]:
    """The cfs lines of a mounts table: source, server node, path there, mount point."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "cfs":
            continue
        source = _unescape(fields[0])
        node_text, sep, path = source.partition(":")
        server = int(node_text) if sep and node_text.isdigit() else this_node
        out.append({
            "source": source,
            "server": server,
            "path": path if sep else source,
            "mountpoint": _unescape(fields[1]),
            "own_export": server is not None and server == this_node,
            "options": fields[3],
        })
    return out


def parse_counters(text: str) -> dict[str, int]:
    """``name value`` lines into a dict; lines that are not that are skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def read_status() -> dict[str, Any]:
    if not CFS_COUNTERS.is_file():
        raise CLIError(
            f"the cfs module is not loaded ({CFS_COUNTERS} is absent)",
            "load it with `ssictl modules load cfs`",
            errno=errno.ENOENT,
        )
    node_text = (SSI_SYSFS / "node").read_text().strip()
    node = int(node_text) if node_text.isdigit() else None
    cache = CFS_CACHE_PARAM.read_text().strip() if CFS_CACHE_PARAM.is_file() else ""
    return {
        "node": node,
        "cache": cache == "Y",
        "mounts": parse_mounts(MOUNTS.read_text(), node),
        "counters": parse_counters(CFS_COUNTERS.read_text()),
    }


def format_status(st: dict[str, Any]) -> str:
    cache = "attributes and entries under tokens" if st["cache"] else "no cache (cfs.cache=0)"
    lines = [f"cfs on node {st['node'] or '?'}: {cache}, {len(st['mounts'])} mount(s)"]
    if st["mounts"]:
        rows = [("MOUNTPOINT", "SERVER", "PATH")]
        for m in st["mounts"]:
            server = f"{m['server']} (this node)" if m["own_export"] else str(m["server"])
            rows.append((m["mountpoint"], server, m["path"]))
        lines += format_table(rows, indent="  ")
    lines.append("counters:")
    lines += format_table([(k, str(v)) for k, v in st["counters"].items()], indent="  ")
    return "\n".join(lines)


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Show this node's CFS mounts (server, path there) and CFS counters."""
    with handle_errors(as_json):
        st = read_status()
        emit(st, lambda: format_status(st), as_json)
