"""ICS between two guests, against a plain userspace TCP ping-pong between the same two.

* latency: null RPC round trip (ics_test null) vs a 1-byte TCP ping-pong;
* bulk: 64 KiB echo RPCs vs 64 KiB TCP echo messages, as MiB/s moved in both
  directions together: ``ics_test echo`` (a bytes<65536> field: packed into and
  unpacked from buffers) and ``ics_test echo_pages`` (a pages<16> field: sent from
  and received into pages, as migration's page replies are);
each with ICS frames under kernel TLS (``protect=tls``, the default), with a Poly1305
tag per frame (``protect=auth``: integrity without secrecy) and in the clear
(``protect=none``, the trusted-interconnect mode), the TCP baseline measured again
in each cluster.  Issue 9's goals: bulk >= 0.9x TCP in the clear, >= 0.7x with
frames protected; null RPC <= 1.0x TCP.
The userspace side is a static C program (bench/tcp_pingpong.c), so the baseline is
not slowed by Python in the TCG guest.
"""

from __future__ import annotations

import json
from typing import Any

from qemu import Cluster
from qemu.bringup import CLUSTER_UP, DEFAULT_KEY, peer_table
from qemu.paths import flavor

from .common import REPO, static_binary

PY = REPO / ".venv" / "bin" / "python"
PORT = 5999
ICS_TEST = """
import json, sys
from abi import cluster
op, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = cluster.ics_test(2, op, count, size=size, timeout_ms=5000)
print(json.dumps({"errors": r.errors, "elapsed_ns": r.elapsed_ns}))
"""


def _ics(c: Cluster, op: str, count: int, size: int) -> int:
    out = c.node(1).succeed(f"{PY} -c '{ICS_TEST}' {op} {count} {size}", timeout=600)
    res = json.loads(out.strip().splitlines()[-1])
    if res["errors"]:
        raise RuntimeError(f"ics_test {op}: {res['errors']} failed calls")
    return int(res["elapsed_ns"])


def _tcp(c: Cluster, tool: str, size: int, count: int) -> int:
    out = c.node(1).succeed(f"{tool} client 169.254.77.2 {PORT} {size} {count}", timeout=600)
    return int(out.strip().splitlines()[-1])


def _load(c: Cluster, protect: str) -> None:
    """ssi_core, ics with protect=*protect*, ics_test; key and table (ssi-cluster-up)."""
    mods = flavor().modules_out
    table = " ".join(f"--peer {n}={a}" for n, a in sorted(peer_table([1, 2]).items()))
    for nd in c.nodes:
        nd.succeed(f"insmod {mods}/ssi_core.ko && insmod {mods}/ics.ko protect={protect} && "
                   f"insmod {mods}/ics_test.ko && printf '%s\\n' {DEFAULT_KEY.hex()} | "
                   f"{CLUSTER_UP} {table} --key-file - --modules ssi_core,ics,ics_test",
                   timeout=120)


def measure(protect: str, calls: int, bulk_msgs: int, bulk_size: int) -> dict[str, Any]:
    tool = static_binary(REPO / "bench" / "tcp_pingpong.c", "tcp_pingpong")
    with Cluster(nodes=2, name=f"bench-ics-{protect}") as c:
        _load(c, protect)
        c.node(2).succeed(f"(setsid {tool} server {PORT} >/dev/null 2>&1 &)")
        c.node(1).wait_until_succeeds(f"{tool} client 169.254.77.2 {PORT} 0 1", timeout=30)
        # Warm both paths (connections, caches) before measuring.
        _ics(c, "null", 50, 0)
        _tcp(c, str(tool), 0, 50)
        ics_null = _ics(c, "null", calls, 0)
        tcp_null = _tcp(c, str(tool), 0, calls)
        ics_bulk = _ics(c, "echo", bulk_msgs, bulk_size)
        tcp_bulk = _tcp(c, str(tool), bulk_size, bulk_msgs)
        ics_pages = _ics(c, "echo_pages", bulk_msgs, bulk_size)

    mib = 2 * bulk_msgs * bulk_size / 2**20
    lat = {"ics_null_rpc_us": ics_null / calls / 1e3, "tcp_pingpong_us": tcp_null / calls / 1e3}
    lat["ratio_ics_over_tcp"] = lat["ics_null_rpc_us"] / lat["tcp_pingpong_us"]
    bulk = {"ics_echo_mib_s": mib / (ics_bulk / 1e9), "tcp_echo_mib_s": mib / (tcp_bulk / 1e9),
            "message_bytes": bulk_size, "messages": bulk_msgs}
    bulk["ratio_ics_over_tcp"] = bulk["ics_echo_mib_s"] / bulk["tcp_echo_mib_s"]
    bulk["ics_echo_pages_mib_s"] = mib / (ics_pages / 1e9)
    bulk["ratio_ics_pages_over_tcp"] = bulk["ics_echo_pages_mib_s"] / bulk["tcp_echo_mib_s"]
    print(f"ICS protect={protect}: null RPC {lat['ics_null_rpc_us']:.1f} us vs TCP ping-pong "
          f"{lat['tcp_pingpong_us']:.1f} us (x{lat['ratio_ics_over_tcp']:.2f}); "
          f"bulk {bulk['ics_echo_mib_s']:.1f} vs {bulk['tcp_echo_mib_s']:.1f} MiB/s "
          f"(x{bulk['ratio_ics_over_tcp']:.2f}), as pages {bulk['ics_echo_pages_mib_s']:.1f} "
          f"MiB/s (x{bulk['ratio_ics_pages_over_tcp']:.2f})")
    return {"latency": lat, "bulk": bulk, "calls": calls}


PROTECT_MODES = ("tls", "auth", "none")


def goals(res: dict[str, Any]) -> dict[str, Any]:
    """Issue 9's goals against this run's numbers, bulk as pages (migration's way)."""
    def bulk(mode: str) -> float:
        return float(res[mode]["bulk"]["ratio_ics_pages_over_tcp"])
    return {
        "bulk_clear_ge_0.9": {"ratio": bulk("none"), "met": bulk("none") >= 0.9},
        "bulk_protected_ge_0.7": {mode: {"ratio": bulk(mode), "met": bulk(mode) >= 0.7}
                                  for mode in ("tls", "auth")},
        "null_rpc_le_1.0": {mode: {"ratio": res[mode]["latency"]["ratio_ics_over_tcp"],
                                   "met": res[mode]["latency"]["ratio_ics_over_tcp"] <= 1.0}
                            for mode in PROTECT_MODES},
    }


def run(calls: int = 2000, bulk_msgs: int = 200, bulk_size: int = 65536) -> dict[str, Any]:
    res: dict[str, Any] = {protect: measure(protect, calls, bulk_msgs, bulk_size)
                           for protect in PROTECT_MODES}
    res["goals"] = goals(res)
    print(f"ICS goals: {json.dumps(res['goals'])}")
    return res
