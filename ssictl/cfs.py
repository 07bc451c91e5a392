"""``ssictl cfs status|mount|umount``: CFS mounts and counters.

``status`` shows this node's CFS mounts, what it serves (its exports and the
nodes mounting each: its clients), the cluster's table of mounts and the counters
(tokens kept as a server among them).  ``mount SOURCE DIR``
mounts SOURCE at DIR on every node that is UP, the server included (an rfork(2)
child per node runs ``mount -t cfs`` there), then adds it to the cluster's
table of mounts (``/sys/kernel/ssi/cfs/cluster_mounts``, kept by the kernel on
every node): a node that joins later, or comes back, mounts every entry of it.
``umount DIR`` takes the entry out of the table, then unmounts DIR on every UP
node: the same path on every node.

Mounts come from ``/proc/self/mounts`` (type ``cfs``; the source is
``NODE:/path``, or ``/path`` for a mount of this node's own export), the counters
from ``/sys/kernel/ssi/cfs/counters`` (calls made as a client, revokes sent as a
server and taken as a client, tokens kept as a server, recalls of kept pages sent
and taken, write(2)s kept in the page cache) and whether clients keep attributes
under tokens from the module parameter ``cfs.cache``.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ssictl.output import CLIError, JsonOpt, emit, handle_errors
from ssictl.table import format_table

SSI_SYSFS = Path("/sys/kernel/ssi")
CFS_COUNTERS = SSI_SYSFS / "cfs" / "counters"
CFS_CLUSTER_MOUNTS = SSI_SYSFS / "cfs" / "cluster_mounts"
CFS_EXPORTS = SSI_SYSFS / "cfs" / "exports"
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


def parse_cluster_mounts(text: str) -> list[dict[str, Any]]:
    """``SERVER:PATH DIR STATE [STATUS]`` lines of the kernel's table."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        node_text, _, path = fields[0].partition(":")
        entry: dict[str, Any] = {
            "server": int(node_text) if node_text.isdigit() else None,
            "path": path,
            "mountpoint": fields[1],
            "state": fields[2],
        }
        if len(fields) > 3 and fields[3].lstrip("-").isdigit():
            entry["status"] = int(fields[3])
        out.append(entry)
    return out


def parse_exports(text: str) -> list[dict[str, Any]]:
    """``ID PATH NODES`` lines: what this node serves, and the nodes mounting it."""
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3 or not fields[0].isdigit():
            continue
        clients = [int(n) for n in fields[2].split(",") if n.isdigit()]
        out.append({"export": int(fields[0]), "path": fields[1], "clients": clients})
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
        "cluster_mounts": parse_cluster_mounts(CFS_CLUSTER_MOUNTS.read_text())
        if CFS_CLUSTER_MOUNTS.is_file() else [],
        "exports": parse_exports(CFS_EXPORTS.read_text()) if CFS_EXPORTS.is_file() else [],
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
    if st.get("exports"):
        lines.append("served here (tokens: see counters):")
        served = [("PATH", "CLIENTS")]
        for e in st["exports"]:
            served.append((e["path"], ",".join(map(str, e["clients"])) or "-"))
        lines += format_table(served, indent="  ")
    if st["cluster_mounts"]:
        lines.append("clusterwide (mounted by every node, joiners too):")
        rows = [("MOUNTPOINT", "SOURCE", "HERE")]
        for c in st["cluster_mounts"]:
            here = c["state"] + (f" ({c['status']})" if "status" in c else "")
            rows.append((c["mountpoint"], f"{c['server']}:{c['path']}", here))
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


# Run in an rfork(2) child on each node: "$1" the directory, "$2" the source.
MOUNT_SCRIPT = (
    'awk -v d="$1" \'$2 == d && $3 == "cfs" { f = 1 } END { exit !f }\' /proc/mounts '
    '&& exit 3; mkdir -p "$1" && exec mount -t cfs "$2" "$1"'
)
UMOUNT_SCRIPT = (
    'awk -v d="$1" \'$2 == d && $3 == "cfs" { f = 1 } END { exit !f }\' /proc/mounts '
    '|| exit 3; exec umount "$1"'
)
ALREADY = 3  # the script's exit code when there is nothing to do on that node


def normalize_source(source: str, this_node: int) -> str:
    """SOURCE as NODE:/path (``/path`` is this node's), or a CLIError saying why not."""
    node_text, sep, path = source.partition(":")
    if not sep:
        node_text, path = str(this_node), source
    if not node_text.isdigit() or int(node_text) < 1 or not path.startswith("/"):
        raise CLIError(f"{source!r} is not a CFS source",
                       "give NODE:/path (a directory of node NODE) or /path (of this node)",
                       errno=errno.EINVAL)
    return f"{int(node_text)}:{path}"


def _on_every_node(script: str, args: list[str]) -> dict[int, int]:
    """Run ``sh -c SCRIPT sh ARGS...`` on every UP node; its exit code per node."""
    import abi
    from abi import binding

    codes: dict[int, int] = {}
    for node in abi.cluster_membership().up():
        sys.stdout.flush()
        sys.stderr.flush()
        child = binding.rfork(node)
        if child == 0:
            try:
                os.execv("/bin/sh", ["sh", "-c", script, "sh", *args])
            finally:
                os._exit(127)
        _, status = os.waitpid(child, 0)
        codes[node] = os.waitstatus_to_exitcode(status)
    return codes


def _report(codes: dict[int, int], done: str, already: str, as_json: bool,
            what: str) -> None:
    results = {str(n): ("ok" if c == 0 else already if c == ALREADY else f"failed ({c})")
               for n, c in codes.items()}
    lines = [f"node {n}: {done if r == 'ok' else r}" for n, r in results.items()]
    if any(c not in (0, ALREADY) for c in codes.values()):
        raise CLIError(f"{what} failed on some node",
                       "the node's own message is above; fix it there and run this again",
                       errno=errno.EIO, details=lines, data={"nodes": results})
    emit({"nodes": results}, "\n".join(lines), as_json)


SourceArg = Annotated[
    str, typer.Argument(metavar="SOURCE", help="NODE:/path, or /path of this node.")]
DirArg = Annotated[
    str, typer.Argument(metavar="DIR", help="The mount point, the same on every node.")]


def _table_change(line: str, what: str) -> None:
    """Write *line* to the kernel's table of clusterwide mounts (any node's)."""
    try:
        with CFS_CLUSTER_MOUNTS.open("w") as f:
            f.write(line + "\n")
    except FileNotFoundError:
        raise CLIError(f"the cfs module is not loaded ({CFS_CLUSTER_MOUNTS} is absent)",
                       "load it with `ssictl modules load cfs`", errno=errno.ENOENT) from None
    except OSError as e:
        if e.errno == errno.ENOENT and line.startswith("del "):
            return  # not in the table: only unmounting to do
        hint = {errno.ENOSPC: "the table is full (16 entries, one page): "
                              "unmount one with `ssictl cfs umount DIR`",
                errno.EPERM: "run it as root"}.get(e.errno or 0, "see the kernel log (dmesg)")
        raise CLIError(f"{what}: the cluster's table of mounts refused it: {e.strerror}",
                       hint, errno=e.errno or errno.EIO) from None


@app.command()
def mount(source: SourceArg, directory: DirArg, as_json: JsonOpt = False) -> None:
    """Mount SOURCE at DIR on every node that is UP (made where missing); nodes
    that join later mount it too."""
    with handle_errors(as_json):
        if not directory.startswith("/"):
            raise CLIError(f"{directory!r} is not an absolute path", "give /mount/point",
                           errno=errno.EINVAL)
        node = int((SSI_SYSFS / "node").read_text().strip())
        src = normalize_source(source, node)
        if any(not c.isprintable() or c.isspace() for c in src + directory):
            raise CLIError(f"{src} {directory}: the cluster's table of mounts takes paths "
                           "without white space or control characters",
                           "pick such paths (or mount -t cfs on each node by hand)",
                           errno=errno.EINVAL)
        codes = _on_every_node(MOUNT_SCRIPT, [directory, src])
        if all(c in (0, ALREADY) for c in codes.values()):
            _table_change(f"add {src} {directory}", "mount")
        _report(codes, f"{src} mounted at {directory}", "already mounted", as_json, "mount")


@app.command()
def umount(directory: DirArg, as_json: JsonOpt = False) -> None:
    """Unmount the CFS mount at DIR on every node that is UP (and take it out of the
    table nodes that join later mount)."""
    with handle_errors(as_json):
        if not directory.startswith("/"):
            raise CLIError(f"{directory!r} is not an absolute path", "give /mount/point",
                           errno=errno.EINVAL)
        if not any(c.isspace() or not c.isprintable() for c in directory):
            _table_change(f"del {directory}", "umount")
        codes = _on_every_node(UMOUNT_SCRIPT, [directory])
        _report(codes, f"{directory} unmounted", "not mounted there", as_json, "umount")
