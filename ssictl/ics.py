"""``ssictl ics stats|test``: the internode communication service of this node.

``stats`` reads ``/sys/kernel/ssi/ics/`` (counters, ``peers``, ``key_set``); ``test``
drives ics_test.ko's back-to-back calls (``ssisys(SSISYS_ICS_TEST)``).
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Annotated, Any

import typer

from abi.ics_peers import parse_peers
from ssictl.output import CLIError, JsonOpt, emit, handle_errors
from ssictl.table import format_table

SSI_SYSFS = Path("/sys/kernel/ssi")
ICS_SYSFS = SSI_SYSFS / "ics"
ICS_TEST_SYSFS = SSI_SYSFS / "ics_test"

app = typer.Typer(
    help="Inspect and exercise ICS, the internode communication service.", no_args_is_help=True
)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def read_stats() -> dict[str, Any]:
    """Everything ``ics stats`` shows, as JSON-ready data."""
    if not ICS_SYSFS.is_dir():
        if not SSI_SYSFS.is_dir():
            raise CLIError(
                f"no SSI module is loaded ({SSI_SYSFS} is absent)",
                "load the modules with `ssictl modules load`",
                errno=errno.ENOENT,
            )
        raise CLIError(
            f"the ics module is not loaded ({ICS_SYSFS} is absent)",
            "load it with `ssictl modules load ics`",
            errno=errno.ENOENT,
        )
    node_text = _read(SSI_SYSFS / "node")
    counters: dict[str, int] = {}
    other: dict[str, str] = {}
    for p in sorted(ICS_SYSFS.iterdir()):
        if p.name in ("peers", "key_set") or not p.is_file():
            continue
        text = _read(p)
        if text is None:
            continue
        text = text.strip()
        try:
            counters[p.name] = int(text)
        except ValueError:
            other[p.name] = text
    key_text = (_read(ICS_SYSFS / "key_set") or "").strip()
    data: dict[str, Any] = {
        "node": int(node_text) if node_text and node_text.strip().isdigit() else None,
        "key_set": key_text == "1" if key_text else None,
        "peers": parse_peers(_read(ICS_SYSFS / "peers") or ""),
        "counters": counters,
    }
    if other:
        data["other"] = other
    if ICS_TEST_SYSFS.is_dir():
        data["ics_test"] = {
            p.name: int(t.strip()) if (t := _read(p)) and t.strip().isdigit() else (t or "").strip()
            for p in sorted(ICS_TEST_SYSFS.iterdir())
            if p.is_file()
        }
    return data


def format_stats(st: dict[str, Any]) -> str:
    key = {True: "key set", False: "NO KEY (run `ssictl cluster setup`)", None: "key state unknown"}
    peers = st["peers"]
    lines = [f"ics on node {st['node'] or '?'}: {key[st['key_set']]}, {len(peers)} peer(s)"]
    if peers:
        rows = [("PEER", "ADDRESS", "PRIO", "BULK")]
        for p in peers:
            if p["node"] == st["node"]:
                rows.append((f"{p['node']}*", p["addr"], "(this node)", ""))
                continue
            rows.append(
                (
                    str(p["node"]),
                    p["addr"],
                    "connected" if p.get("prio") else "-",
                    "connected" if p.get("bulk") else "-",
                )
            )
        lines += format_table(rows, indent="  ")
    else:
        lines.append("  no peers: the cluster table is not set (run `ssictl cluster setup`)")
    if st["counters"]:
        lines.append("counters:")
        lines += format_table([(k, str(v)) for k, v in st["counters"].items()], indent="  ")
    for k, v in st.get("other", {}).items():
        lines.append(f"  {k} = {v}")
    for k, v in st.get("ics_test", {}).items():
        lines.append(f"ics_test {k}: {v}")
    return "\n".join(lines)


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """Show the peers (configured nodes, which channels are connected) and the counters."""
    with handle_errors(as_json):
        st = read_stats()
        emit(st, lambda: format_stats(st), as_json)


NodeArg = Annotated[int, typer.Argument(metavar="NODE", help="Another node of the cluster.")]
OpOpt = Annotated[str, typer.Option("--op", help="null, echo or ping (one-way).")]
CountOpt = Annotated[int, typer.Option("--count", help="Calls, back to back (1..1000000).")]
SizeOpt = Annotated[int, typer.Option("--size", help="echo: payload bytes each way.")]
TimeoutOpt = Annotated[int, typer.Option("--timeout-ms", help="Per call, 1..60000 ms.")]


@app.command("test")
def test_cmd(
    node: NodeArg,
    op: OpOpt = "null",
    count: CountOpt = 1000,
    size: SizeOpt = 0,
    timeout_ms: TimeoutOpt = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Time COUNT ICS calls to NODE (needs ics_test on both nodes)."""
    with handle_errors(as_json):
        import abi

        try:
            r = abi.ics_test(node, op, count, size, timeout_ms)
        except (ValueError, TypeError) as e:
            raise CLIError(str(e), "see `ssictl ics test --help`", errno=errno.EINVAL) from None
        data = r.to_json()
        err = f", last error {r.last_errno_name}" if r.last_error else ""
        human = (
            f"{r.count} {r.op} call(s) to node {r.node}"
            + (f" ({r.size} bytes)" if r.size else "")
            + f": {r.elapsed_ns / 1e6:.1f} ms, {r.per_call_us:.1f} us/call, "
            f"{r.errors} error(s){err}"
        )
        emit(data, human, as_json)
        if r.errors:
            raise typer.Exit(1)
