"""``ssictl cluster status [--watch]``: the membership as this node sees it (needs clms).

``--watch`` polls the membership (every ``--interval`` s, 0.15 by default) and prints
one timestamped line per change until Ctrl-C, ``--count K`` changes or
``--timeout S`` seconds. With ``--json`` it prints JSON Lines: one document per
event (``"event": "initial" | "change" | "end"``). Ctrl-C still writes the end
event, then exits 130 like any interrupted command.
"""

from __future__ import annotations

import errno
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ssictl.output import INTERRUPTED_EXIT, CLIError, emit, handle_errors, report_interrupt
from ssictl.table import format_table

if TYPE_CHECKING:
    from abi.cluster import Membership, NodeInfo

JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (--watch: one per event)."),
]  # not output.JsonOpt: --watch prints JSON Lines


def format_ago(seconds: float) -> str:
    """``75`` -> ``"1m15s"``; ``7300`` -> ``"2h01m"``; ``200000`` -> ``"2d07h"``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def format_since(since: datetime | None, now: float) -> str:
    if since is None:
        return "-"
    local = since.astimezone()
    ago = now - since.timestamp()
    when = local.strftime("%H:%M:%S") if ago < 86400 else local.strftime("%Y-%m-%d %H:%M")
    return f"{when} ({format_ago(ago)} ago)"


def _mib(kb: int) -> str:
    return f"{kb // 1024}"


# --------------------------------------------------------------------------- snapshot


def snapshot() -> dict[str, Any]:
    """Membership, cluster name and every listed node's info, as JSON-ready data."""
    import abi

    m = abi.cluster_membership()
    try:
        name: str | None = abi.cluster_name()
    except abi.SSIError:
        name = None
    nodes: list[dict[str, Any]] = []
    for n, state in sorted(m.states.items()):
        try:
            info: NodeInfo | None = abi.clusternode_info(n)
        except abi.SSIError as e:
            nodes.append({"node": n, "state": state, "error": str(e)})
            continue
        assert info is not None
        nodes.append(info.to_json())
    return {"membership": m.to_json(), "name": name, "nodes": nodes}


def _figures(nd: dict[str, Any]) -> tuple[str, str]:
    """RUNQ and AVAIL MiB cells: the load-leveling figures, ``-`` when absent."""
    if not nd.get("has_load"):
        return "-", "-"
    return str(nd["nr_running"]), _mib(nd["mem_available_kb"])


def format_status(data: dict[str, Any], now: float | None = None, load: bool = False) -> str:
    """The human table; *load* adds the load-leveling figures (RUNQ: runnable tasks
    over all the node's CPUs, AVAIL: MemAvailable in MiB)."""
    now = time.time() if now is None else now
    m = data["membership"]
    states: dict[str, str] = m["states"]
    n_up = sum(1 for s in states.values() if s == "UP")
    name = data.get("name") or "(unnamed)"
    head = (
        f"cluster {name}: node {m['self']}'s view, transition {m['transition']}, "
        f"master {m['master'] or 'none'}, quorum {'yes' if m['quorum'] else 'NO'}, "
        f"{n_up}/{m['nr_configured'] or len(states)} nodes UP"
    )
    cols: tuple[str, ...] = ("NODE", "STATE", "ADDRESS", "CPUS", "LOAD", "MEM MiB FREE/TOTAL")
    if load:
        cols += ("RUNQ", "AVAIL MiB")
    cols += ("SINCE",)
    rows: list[tuple[str, ...]] = []
    for nd in data["nodes"]:
        mark = "*" if nd["node"] == m["self"] else ""
        label = f"{nd['node']}{mark}"
        if "error" in nd:
            rows.append((label, nd["state"], *("-",) * (len(cols) - 2)))
            continue
        since = (
            datetime.fromtimestamp(nd["since_epoch"]).astimezone()
            if nd.get("since_epoch")
            else None
        )
        up = nd["state"] == "UP"
        extra = (_figures(nd) if up else ("-", "-")) if load else ()
        rows.append(
            (
                label,
                nd["state"],
                nd["addr"] or "-",
                str(nd["cpus"]) if up else "-",
                " ".join(f"{x:.2f}" for x in nd["load"]) if up else "-",
                f"{_mib(nd['mem_free_kb'])}/{_mib(nd['mem_total_kb'])}" if up else "-",
                *extra,
                format_since(since, now),
            )
        )
    lines = [head, *format_table([cols, *rows])]
    errs = [f"node {nd['node']}: {nd['error']}" for nd in data["nodes"] if "error" in nd]
    lines += [f"warning: {e}" for e in errs]
    lines.append("(* = this node)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- watch


def describe_change(old: Membership, new: Membership) -> list[str]:
    """What differs between two views, e.g. ``["node 3 UP->DOWN", "master 1->2"]``."""
    out: list[str] = []
    for n in sorted(set(old.states) | set(new.states)):
        a, b = old.states.get(n, "NEVERUP"), new.states.get(n, "NEVERUP")
        if a != b:
            out.append(f"node {n} {a}->{b}")
    if old.master != new.master:
        out.append(f"master {old.master or 'none'}->{new.master or 'none'}")
    if old.quorum != new.quorum:
        out.append("quorum regained" if new.quorum else "quorum LOST")
    return out


def _summary(m: Membership) -> str:
    states = " ".join(f"{n}={s}" for n, s in sorted(m.states.items()))
    return (
        f"transition {m.transition}, master {m.master or 'none'}, "
        f"quorum {'yes' if m.quorum else 'NO'}: {states}"
    )


def _stamp() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _line(text: str) -> None:
    import sys

    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def watch(count: int | None, timeout: float | None, interval: float, as_json: bool) -> int:
    """Print membership changes; returns how many were seen."""
    import abi

    start = time.monotonic()
    prev = abi.cluster_membership()
    if as_json:
        print_json_line({"event": "initial", "time": _stamp(), **prev.to_json()})
    else:
        _line(f"{_stamp()} node {prev.self} watching: {_summary(prev)}")
    seen = 0
    reason = "interrupt"
    try:
        while True:
            if count is not None and seen >= count:
                reason = "count"
                break
            if timeout is not None and time.monotonic() - start >= timeout:
                reason = "timeout"
                break
            time.sleep(interval)
            cur = abi.cluster_membership()
            if cur == prev:
                continue
            seen += 1
            changes = describe_change(prev, cur)
            if as_json:
                print_json_line(
                    {
                        "event": "change",
                        "time": _stamp(),
                        "from_transition": prev.transition,
                        "changes": changes,
                        **cur.to_json(),
                    }
                )
            else:
                what = "; ".join(changes) or "no state change seen"
                tr = (
                    f"transition {prev.transition}->{cur.transition}"
                    if cur.transition != prev.transition
                    else f"transition {cur.transition}"
                )
                _line(f"{_stamp()} {tr}: {what} | {_summary(cur)}")
            prev = cur
    except KeyboardInterrupt:
        reason = "interrupt"
    if as_json:
        print_json_line({"event": "end", "time": _stamp(), "changes": seen, "reason": reason})
    if reason == "interrupt":  # the usual end of a watch, but still Ctrl-C: 130
        report_interrupt()
        raise typer.Exit(INTERRUPTED_EXIT)
    if reason == "timeout" and count is not None:
        raise CLIError(
            f"saw {seen} of {count} membership change(s) in {timeout:g} s",
            "raise --timeout, or check with `ssictl cluster status` what the nodes do",
            errno=errno.ETIMEDOUT,
            exit_code=1,
        )
    return seen


def print_json_line(data: dict[str, Any]) -> None:
    import json
    import sys

    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- command

WatchOpt = Annotated[
    bool, typer.Option("--watch", help="Print membership changes live until Ctrl-C.")
]
CountOpt = Annotated[
    int | None,
    typer.Option("--count", metavar="K", help="--watch: stop after K changes.", show_default=False),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        metavar="S",
        help="--watch: stop after S seconds (an error if --count K was not reached).",
        show_default=False,
    ),
]
IntervalOpt = Annotated[
    float, typer.Option("--interval", metavar="S", help="--watch: poll period in seconds.")
]
LoadOpt = Annotated[
    bool,
    typer.Option(
        "--load",
        help="Add the load-leveling figures: RUNQ (runnable tasks) and AVAIL (MemAvailable).",
    ),
]


def status(
    as_json: JsonOpt = False,
    watch_: WatchOpt = False,
    count: CountOpt = None,
    timeout: TimeoutOpt = None,
    interval: IntervalOpt = 0.15,
    load: LoadOpt = False,
) -> None:
    """Show the nodes, their state, address, CPUs, load and since when (needs clms);
    --json always carries the load-leveling figures (nr_running, mem_available_kb)."""
    with handle_errors(as_json):
        if not watch_ and (count is not None or timeout is not None):
            raise CLIError(
                "--count and --timeout go with --watch", "add --watch", errno=errno.EINVAL
            )
        if count is not None and count < 1:
            raise CLIError(f"--count {count} is out of range", "give K >= 1", errno=errno.EINVAL)
        if timeout is not None and timeout <= 0:
            raise CLIError(
                f"--timeout {timeout:g} is out of range", "give S > 0", errno=errno.EINVAL
            )
        if not 0.01 <= interval <= 60:
            raise CLIError(
                f"--interval {interval:g} is out of range",
                "give 0.01..60 seconds",
                errno=errno.EINVAL,
            )
        if watch_:
            watch(count, timeout, interval, as_json)
            return
        data = snapshot()
        emit(data, lambda: format_status(data, load=load), as_json)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
