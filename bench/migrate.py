"""Process migration (issue 10) against CRIU and against the link, in the same 2 guests.

For each resident size (1, 16, 64, 256 MiB) a static program (bench/migbench.c
``hold``) fills that much anonymous memory and sleeps; then, in one 2-node
cluster:

* migrate: ``migbench goto PID 2`` on node 1 writes 2 to /proc/PID/goto and
  polls /proc/PID/node until it says 2 (wall time, node 1's clock), then
  ``goto PID 1`` brings it home (same clock: node 1 is its home, where
  /proc/PID/node follows it).  The freeze time of each move is the source's
  dmesg line ``migration: pid P moved to node N: frozen F us``.  The program
  checks its pattern afterwards (SIGUSR1).  A goto pre-copies (the memory
  travels while the process runs; the freeze covers what it wrote since);
  the same moves are measured again with ``migration.precopy`` off
  (stop-and-copy: frozen while everything travels), goals for each.
* CRIU: a fresh copy of the program, ``criu dump -t PID -D DIR --shell-job``
  then ``criu restore -D DIR --shell-job -d`` on node 1 (tmpfs images), wall
  times by the guest's clock, and CRIU's own stats files (stats-dump
  frozen_time, stats-restore restore_time; decoded on the host with crit).
  The transfer CRIU would need to move the process is measured too: the
  image files sent over TCP to node 2 (``migbench send``/``sink``), so
  dump + transfer + restore is CRIU "with transfer included".
* link: iperf3 between the two guests, both directions; link time of a
  size = resident bytes / link bytes per second (the steady rate of a
  multi-second run).  Also, per size, iperf3 carrying exactly the resident
  bytes (``-n``), node 1 to node 2: its own duration of that transfer
  (TCP's start included, as a move has it; iperf3's start and control
  connection not), the link time "for the same bytes".

Each is done with ICS frames under kernel TLS (``protect=tls``, the
default), with a Poly1305 tag per frame (``protect=auth``: integrity, no
secrecy) and in the clear (``protect=none``), one cluster each.  Guests get
1 GiB: 256 MiB resident plus CRIU's 256 MiB image on tmpfs do not fit in the
default 256 MiB.  Their RAM is preallocated on the host (QEMU
``-mem-prealloc``), as a physical machine's is: without it the first move
to a node paid a host page fault for each guest page it was the first to
touch (64 MiB: 1.73-2.01 s against 1.37-1.54 s for the moves after it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qemu import Cluster, Node
from qemu.channel import AgentTimeout
from qemu.node import CommandFailed

from .common import REPO, bring_up_protected, static_binary

MODULES = ("ssi_core", "ics", "clms", "vproc", "rfile", "migration")
SIZES_MIB = (1, 16, 64, 256)
MEMORY_MIB = 1024
NODE2_IP = "169.254.77.2"
SINK_PORT = 5998
OUT = "/tmp/migbench.out"
IMG = "/tmp/criu-img"
FROZEN_RE = re.compile(r"migration: pid (\d+) moved to node (\d+): frozen (\d+) us, "
                       r"image (\d+) bytes, (\d+) pages")


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _start_hold(nd: Node, tool: Path, mib: int) -> tuple[int, int]:
    """Start ``migbench hold MIB`` detached on *nd*; returns (pid, VmRSS in KiB)."""
    nd.succeed(f"rm -f {OUT}; (setsid {tool} hold {mib} </dev/null >{OUT} 2>&1 &)")
    line = nd.wait_until_succeeds(f"head -n1 {OUT} | grep '^pid '", timeout=300)
    pid = int(line.split()[1])
    rss = int(nd.succeed(f"awk '/^VmRSS/ {{print $2}}' /proc/{pid}/status").strip())
    return pid, rss


def _check(nd: Node, pid: int, n: int) -> str:
    """Ask the program to check its pattern (its *n*-th check); returns the answer line."""
    nd.succeed(f"kill -USR1 {pid}")
    return nd.wait_until_succeeds(f"grep '^check' {OUT} | sed -n {n}p | grep .",
                                  timeout=300).strip()


def _kill(nd: Node, pid: int) -> None:
    nd.succeed(f"kill -KILL {pid}")
    nd.wait_until_fails(f"test -e /proc/{pid}/stat", timeout=60)


def _goto(c: Cluster, tool: Path, pid: int, node: int) -> float:
    """Seconds from the write to /proc/PID/goto (on node 1, the process's home)
    until /proc/PID/node there says *node*.  A move that does not finish fails
    with both nodes' last kernel messages."""
    try:
        return int(c.node(1).succeed(f"{tool} goto {pid} {node}", timeout=400).strip()) / 1e9
    except (CommandFailed, AgentTimeout) as e:
        logs = []
        for nd in c.nodes:
            try:
                logs.append(f"node {nd.number}: " + nd.execute("dmesg | tail -n 15", 60)[1])
            except AgentTimeout:  # its command channel is still busy with the goto
                logs.append(f"node {nd.number}: no answer")
        raise RuntimeError(f"goto {pid} {node} did not finish: {e}\n" + "\n".join(logs)) from e


def _frozen(nd: Node, pid: int, node: int) -> list[dict[str, int]]:
    """The source's dmesg lines for *pid*'s moves to *node*, oldest first."""
    out = nd.succeed(f"dmesg | grep 'migration: pid {pid} moved to node {node}:' || true")
    moves = []
    for m in FROZEN_RE.finditer(out):
        moves.append({"frozen_us": int(m[3]), "image_bytes": int(m[4]), "pages": int(m[5])})
    return moves


def _set_precopy(c: Cluster, on: bool) -> None:
    for nd in c.nodes:
        nd.succeed(f"echo {'Y' if on else 'N'} > /sys/module/migration/parameters/precopy")


def _migrate_stop_and_copy(c: Cluster, tool: Path, mib: int, reps: int) -> dict[str, Any]:
    """The same moves with pre-copy off: the process is frozen while all of
    its memory travels."""
    _set_precopy(c, False)
    try:
        return _migrate(c, tool, mib, reps)
    finally:
        _set_precopy(c, True)


def _migrate(c: Cluster, tool: Path, mib: int, reps: int) -> dict[str, Any]:
    n1, n2 = c.node(1), c.node(2)
    pid, rss = _start_hold(n1, tool, mib)
    away, home = [], []
    for _ in range(reps):
        away.append(_goto(c, tool, pid, 2))
        home.append(_goto(c, tool, pid, 1))
    check = _check(n1, pid, 1)
    f_away, f_home = _frozen(n1, pid, 2), _frozen(n2, pid, 1)
    _kill(n1, pid)
    if len(f_away) != reps or len(f_home) != reps:
        raise RuntimeError(f"{mib} MiB: {len(f_away)}/{len(f_home)} dmesg lines for {reps} moves")
    fr_away = [m["frozen_us"] / 1e6 for m in f_away]
    fr_home = [m["frozen_us"] / 1e6 for m in f_home]
    res = {
        "rss_kib": rss,
        "check": check,
        "away_s": away,  # 1 -> 2 (restore helper on node 2)
        "home_s": home,  # 2 -> 1 (the deputy restores itself)
        "frozen_away_s": fr_away,
        "frozen_home_s": fr_home,
        "image_bytes": f_away[0]["image_bytes"],
        "pages": f_away[0]["pages"],
        "wall_s": _median(away),
        "frozen_s": _median(fr_away),
        "wall_home_s": _median(home),
        "frozen_home_median_s": _median(fr_home),
    }
    if not check.startswith("check ok"):
        raise RuntimeError(f"{mib} MiB: memory pattern after the moves: {check}")
    return res


def _crit(data: bytes) -> dict[str, Any]:
    """One CRIU stats image decoded by the host's crit: the entry's dict."""
    with tempfile.NamedTemporaryFile(suffix=".img") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["crit", "decode", "-i", f.name], check=True,
                             capture_output=True, text=True).stdout
    entry: dict[str, Any] = json.loads(out)["entries"][0]
    return next(iter(entry.values()))  # {"dump": {...}} or {"restore": {...}}


def _criu(c: Cluster, tool: Path, mib: int, reps: int) -> dict[str, Any]:
    n1, n2 = c.node(1), c.node(2)
    pid, rss = _start_hold(n1, tool, mib)
    dump, restore, frozen, rtime, xfer, img_bytes = [], [], [], [], [], 0
    for _ in range(reps):
        out = n1.succeed(
            f"rm -rf {IMG} && mkdir {IMG} && t0=$(date +%s%N) && "
            f"criu dump -t {pid} -D {IMG} --shell-job -o dump.log && t1=$(date +%s%N) && "
            f"criu restore -D {IMG} --shell-job -d -o restore.log && t2=$(date +%s%N) && "
            "echo $((t1 - t0)) $((t2 - t1))", timeout=900)
        d_ns, r_ns = (int(x) for x in out.split()[-2:])
        dump.append(d_ns / 1e9)
        restore.append(r_ns / 1e9)
        st_d = _crit(base64.b64decode(n1.succeed(f"base64 {IMG}/stats-dump")))
        st_r = _crit(base64.b64decode(n1.succeed(f"base64 {IMG}/stats-restore")))
        frozen.append(int(st_d["frozen_time"]) / 1e6)
        rtime.append(int(st_r["restore_time"]) / 1e6)
        # What moving the image to node 2 costs: its files over TCP.
        n2.succeed(f"(setsid {tool} sink {SINK_PORT} </dev/null >/dev/null 2>&1 &)")
        out = n1.wait_until_succeeds(f"{tool} send {NODE2_IP} {SINK_PORT} "
                                     f"$(find {IMG} -type f -name '*.img')", timeout=900)
        ns, nbytes = (int(x) for x in out.split()[-2:])
        xfer.append(ns / 1e9)
        img_bytes = nbytes
        n1.succeed(f"rm -rf {IMG}")
    check = _check(n1, pid, 1)
    _kill(n1, pid)
    if not check.startswith("check ok"):
        raise RuntimeError(f"CRIU {mib} MiB: memory pattern after restore: {check}")
    total = [d + r for d, r in zip(dump, restore, strict=True)]
    with_xfer = [t + x for t, x in zip(total, xfer, strict=True)]
    return {
        "rss_kib": rss,
        "check": check,
        "dump_s": dump,
        "restore_s": restore,
        "transfer_s": xfer,
        "image_bytes": img_bytes,
        "frozen_time_s": frozen,
        "restore_time_s": rtime,
        "total_s": _median(total),
        "total_with_transfer_s": _median(with_xfer),
        "frozen_plus_restore_s": _median([f + r for f, r in zip(frozen, rtime, strict=True)]),
    }


def _iperf(c: Cluster, reverse: bool, seconds: int) -> float:
    """TCP bytes per second node 1 -> node 2 (node 2 -> node 1 if *reverse*)."""
    c.node(2).succeed("(setsid iperf3 -s -1 </dev/null >/dev/null 2>&1 &)")
    deadline = time.monotonic() + 60
    while True:
        # iperf3 -J exits 0 even when it could not connect: read its "error"
        res = json.loads(c.node(1).succeed(
            f"iperf3 -c {NODE2_IP} -t {seconds} -J {'-R' if reverse else ''}", timeout=120))
        if "error" not in res:
            return float(res["end"]["sum_received"]["bits_per_second"]) / 8
        if time.monotonic() > deadline:
            raise RuntimeError(f"iperf3: {res['error']}")
        time.sleep(0.5)


def _iperf_bytes(c: Cluster, nbytes: int, reps: int) -> dict[str, Any]:
    """iperf3 sending exactly *nbytes* node 1 -> node 2, *reps* times: the
    median of its own transfer durations (the later of sender's and
    receiver's end, so bytes still in flight count)."""
    c.node(2).succeed("(setsid iperf3 -s </dev/null >/dev/null 2>&1 &)")
    secs: list[float] = []
    deadline = time.monotonic() + 60
    while len(secs) < reps:
        res = json.loads(c.node(1).succeed(f"iperf3 -c {NODE2_IP} -n {nbytes} -J", timeout=300))
        if "error" in res:
            if time.monotonic() > deadline:
                raise RuntimeError(f"iperf3: {res['error']}")
            time.sleep(0.5)  # the server is not listening yet
            continue
        end = res["end"]
        secs.append(max(float(end["sum_sent"]["seconds"]),
                        float(end["sum_received"]["seconds"])))
    c.node(2).execute("pkill -x iperf3", 60)
    return {"bytes": nbytes, "seconds": secs, "median_s": _median(secs)}


def _goals(mig: dict[str, Any], criu: dict[str, Any], link_bps: float,
           sizes: tuple[int, ...], same: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-size ratios and the issue's three goals (64 MiB against the link
    both ways: its steady rate, and iperf3 carrying the same bytes)."""
    per: dict[str, Any] = {}
    for mib in sizes:
        m, k = mig[str(mib)], criu[str(mib)]
        link_s = m["rss_kib"] * 1024 / link_bps
        same_s = (same or {}).get(str(mib), {}).get("median_s")
        per[str(mib)] = {
            "migrate_over_criu": m["wall_s"] / k["total_s"],
            "migrate_over_criu_with_transfer": m["wall_s"] / k["total_with_transfer_s"],
            "criu_with_transfer_over_migrate": k["total_with_transfer_s"] / m["wall_s"],
            "freeze_over_criu_frozen_plus_restore": m["frozen_s"] / k["frozen_plus_restore_s"],
            "link_s": link_s,
            "migrate_over_link": m["wall_s"] / link_s,
        }
        if same_s:
            per[str(mib)]["link_same_bytes_s"] = same_s
            per[str(mib)]["migrate_over_link_same_bytes"] = m["wall_s"] / same_s
    goals: dict[str, Any] = {}
    if "1" in per:
        r = per["1"]["criu_with_transfer_over_migrate"]
        goals["1MiB_10x_faster_than_criu_with_transfer"] = {"value": r, "met": r >= 10}
    if "64" in per:
        r = per["64"]["migrate_over_link"]
        goals["64MiB_within_1.2x_link"] = {"value": r, "met": r <= 1.2}
        if "migrate_over_link_same_bytes" in per["64"]:
            r = per["64"]["migrate_over_link_same_bytes"]
            goals["64MiB_within_1.2x_link_same_bytes"] = {"value": r, "met": r <= 1.2}
    if not per:
        return {"per_size": per, "goals": goals}
    worst = max(p["freeze_over_criu_frozen_plus_restore"] for p in per.values())
    goals["freeze_at_most_0.25x_criu_frozen_plus_restore"] = {
        "value_worst_size": worst, "met": worst <= 0.25,
        "met_per_size": {s: p["freeze_over_criu_frozen_plus_restore"] <= 0.25
                         for s, p in per.items()}}
    return {"per_size": per, "goals": goals}


def _guarded(c: Cluster, fn: Callable[[Cluster, Path, int, int], dict[str, Any]], tool: Path,
             mib: int, reps: int) -> dict[str, Any]:
    """*fn*'s result, or {"error": why} if it failed (the other sizes still run;
    a failure is reported, never retried into a number)."""
    try:
        return fn(c, tool, mib, reps)
    except (CommandFailed, RuntimeError) as e:
        print(f"migrate: {fn.__name__} {mib} MiB failed: {e}")
        for nd in c.nodes:
            nd.execute(f"pkill -KILL -x migbench; rm -rf {IMG}", 60)
        return {"error": str(e)[-2000:]}


def measure(protect: str, sizes: tuple[int, ...], reps: int, iperf_s: int) -> dict[str, Any]:
    tool = static_binary(REPO / "bench" / "migbench.c", "migbench")
    with Cluster(nodes=2, memory=MEMORY_MIB, name=f"bench-migrate-{protect}",
                 mem_prealloc=True) as c:
        bring_up_protected(c, protect, MODULES)
        n1 = c.node(1)
        criu_check = n1.execute("criu check 2>&1", 120)
        link = {"bytes_per_s_1to2": _iperf(c, False, iperf_s),
                "bytes_per_s_2to1": _iperf(c, True, iperf_s), "seconds": iperf_s}
        # Warm-up, not counted: the first move opens the migration channel
        # and brings the restore helper into node 2's page cache.
        warm = _migrate(c, tool, 1, 1)
        mig = {str(mib): _guarded(c, _migrate, tool, mib, reps) for mib in sizes}
        stop = {str(mib): _guarded(c, _migrate_stop_and_copy, tool, mib, reps) for mib in sizes}
        criu = {str(mib): _guarded(c, _criu, tool, mib, reps) for mib in sizes}
        same = {str(mib): _iperf_bytes(c, mig[str(mib)]["rss_kib"] * 1024, reps)
                for mib in sizes if "error" not in mig[str(mib)]}
    done = tuple(m for m in sizes if "error" not in mig[str(m)] and "error" not in criu[str(m)])
    res = _goals(mig, criu, link["bytes_per_s_1to2"], done, same)
    done_stop = tuple(m for m in sizes
                      if "error" not in stop[str(m)] and "error" not in criu[str(m)])
    res_stop = _goals(stop, criu, link["bytes_per_s_1to2"], done_stop, same)
    for mib in done:
        m, k, p = mig[str(mib)], criu[str(mib)], res["per_size"][str(mib)]
        print(f"migrate protect={protect} {mib:>3} MiB: migrate {m['wall_s']:.3f} s "
              f"(frozen {m['frozen_s']:.3f} s), CRIU dump+restore {k['total_s']:.3f} s "
              f"(+transfer {k['total_with_transfer_s']:.3f} s, frozen+restore "
              f"{k['frozen_plus_restore_s']:.3f} s), link {p['link_s']:.3f} s; "
              f"migrate/criu x{p['migrate_over_criu']:.2f}, freeze/criu "
              f"x{p['freeze_over_criu_frozen_plus_restore']:.2f}, "
              f"migrate/link x{p['migrate_over_link']:.2f} (same bytes "
              f"x{p.get('migrate_over_link_same_bytes', float('nan')):.2f})")
    for mib in done_stop:
        m, p = stop[str(mib)], res_stop["per_size"][str(mib)]
        print(f"migrate protect={protect} {mib:>3} MiB stop-and-copy: migrate "
              f"{m['wall_s']:.3f} s (frozen {m['frozen_s']:.3f} s); freeze/criu "
              f"x{p['freeze_over_criu_frozen_plus_restore']:.2f}, "
              f"migrate/link x{p['migrate_over_link']:.2f} (same bytes "
              f"x{p.get('migrate_over_link_same_bytes', float('nan')):.2f})")
    print(f"migrate protect={protect} goals (pre-copy): {json.dumps(res['goals'])}")
    print(f"migrate protect={protect} goals (stop-and-copy): {json.dumps(res_stop['goals'])}")
    return {"criu_check": {"rc": criu_check[0], "out": criu_check[1][-400:]},
            "link": link, "link_same_bytes": same,
            "warmup_move": {k: warm[k] for k in ("away_s", "home_s")},
            "migrate": mig, "criu": criu, "reps": reps, "guest_memory_mib": MEMORY_MIB,
            "guest_mem_prealloc": True,
            **res,
            "migrate_stop_and_copy": stop,
            "per_size_stop_and_copy": res_stop["per_size"],
            "goals_stop_and_copy": res_stop["goals"]}


def run(sizes: tuple[int, ...] = SIZES_MIB, reps: int = 3, iperf_s: int = 5) -> dict[str, Any]:
    head = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False).stdout.strip()
    res: dict[str, Any] = {"commit": head, "host_loadavg": {"start": os.getloadavg()}}
    for protect in ("tls", "auth", "none"):
        res[protect] = measure(protect, sizes, reps, iperf_s)
        res["host_loadavg"][f"after_{protect}"] = os.getloadavg()
    return res
