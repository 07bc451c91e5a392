"""``ssictl cluster|ics|clusternode-*`` and ``Cluster.bring_up`` on a 3-node cluster.

The ICS part needs ssi_core.ko and ics.ko; the membership part needs clms.ko and
FAILS (does not skip) while build/modules/out/clms.ko is missing. Python costs
seconds per start in a TCG guest: nodes are driven in parallel and each check
batches its calls.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from qemu import Cluster, Node
from qemu.bringup import DEFAULT_KEY, SSICTL, BringUpError, peer_table
from qemu.paths import flavor

CLUSTER_NODES = 3
NODES = (1, 2, 3)
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
PY = REPO / ".venv" / "bin" / "python"
MODULES_OUT = flavor().modules_out  # this kernel flavor's .ko files
GUEST_TIMEOUT = 240.0
ICS_MODULES = ("ssi_core", "ics")
PEERS = " ".join(f"--peer {n}={ip}" for n, ip in peer_table(NODES).items())

T = TypeVar("T")


def on_all(cluster: Cluster, fn: Callable[[Node], T]) -> dict[int, T]:
    with ThreadPoolExecutor(len(NODES)) as pool:
        futs = {n: pool.submit(fn, cluster.node(n)) for n in NODES}
        return {n: f.result() for n, f in futs.items()}


def ssictl(node: Node, args: str, stdin: str | None = None) -> tuple[int, str, str]:
    cmd = f"{SSICTL} {args}"
    if stdin is not None:
        cmd = f"printf '%s' {shlex.quote(stdin)} | {cmd}"
    return node.execute(cmd, timeout=GUEST_TIMEOUT)


def ssictl_json(node: Node, args: str) -> dict[str, Any]:
    rc, out, err = ssictl(node, args + " --json")
    assert rc == 0, (node, args, out, err)
    data: dict[str, Any] = json.loads(out)
    return data


def py_json(node: Node, script: str) -> Any:
    out = node.succeed(f"{PY} -c {shlex.quote(script)}", timeout=GUEST_TIMEOUT)
    return json.loads(out.strip().splitlines()[-1])


def need_modules(*names: str) -> None:
    missing = [n for n in names if not (MODULES_OUT / f"{n}.ko").is_file()]
    if missing:
        pytest.fail(
            f"{', '.join(f'{MODULES_OUT}/{n}.ko' for n in missing)} missing: this test needs "
            f"{', '.join(missing)} (build with `.venv/bin/genmod modules`)",
            pytrace=False,
        )


# --------------------------------------------------------------------------- ICS


def test_setup_on_every_node(cluster: Cluster) -> None:
    need_modules(*ICS_MODULES)
    t0 = time.monotonic()
    results = cluster.bring_up(modules=ICS_MODULES)
    print(f"[bring_up] ssi_core+ics on 3 nodes in {time.monotonic() - t0:.1f} s")
    for n, r in results.items():
        assert r["ok"] is True and r["node"] == n, r
        assert r["key_bytes"] == len(DEFAULT_KEY)
        assert r["table"] == {str(i): f"169.254.77.{i}" for i in NODES}
        assert {m["name"] for m in r["modules"]} == set(ICS_MODULES)
        assert DEFAULT_KEY.hex() not in json.dumps(r)
    for n in NODES:
        nd = cluster.node(n)
        assert nd.succeed("cat /sys/kernel/ssi/ics/key_set").strip() == "1"
        peers = nd.succeed("cat /sys/kernel/ssi/ics/peers").splitlines()
        assert [p.split()[:2] for p in peers] == [[str(i), f"169.254.77.{i}"] for i in NODES]

    # The human form, run again on one node: modules already loaded, key and table re-set.
    rc, out, err = ssictl(
        cluster.node(2),
        f"cluster up {PEERS} --key-file - --modules ssi_core,ics",
        stdin=DEFAULT_KEY.hex(),
    )
    assert rc == 0, (out, err)
    # What it did is progress, on stderr (stdout is for results).
    assert "node 2: cluster key set (32 bytes)" in err
    assert "node 2: cluster table set (3 nodes: 1=169.254.77.1, 2=169.254.77.2, " in err
    assert DEFAULT_KEY.hex() not in out + err


KERNEL_CHECKS = r"""
import json, abi
from abi import cluster as C
res = {}
def probe(name, fn):
    try:
        fn()
        res[name] = {"ok": True}
    except Exception as e:
        res[name] = {"type": type(e).__name__, "errno": getattr(e, "errno", None), "msg": str(e)}
probe("short_raw", lambda: abi.ssisys(C.SSISYS_ICS_SET_KEY, b"k" * (C.SSI_KEY_MIN - 1)))
probe("long_raw", lambda: abi.ssisys(C.SSISYS_ICS_SET_KEY, b"k" * (C.SSI_KEY_MAX + 1)))
probe("short_binding", lambda: abi.cluster_set_key(b"k" * 8))
probe("table_without_me", lambda: abi.cluster_set_table({1: "169.254.77.1", 2: "169.254.77.2"}))
raw = bytearray(C.encode_table({3: "169.254.77.3"}))
raw[4] = 1  # reserved must be 0
probe("table_reserved", lambda: abi.ssisys(C.SSISYS_CLUSTER_SET_TABLE, bytes(raw)))
probe("table_short", lambda: abi.ssisys(C.SSISYS_CLUSTER_SET_TABLE, bytes(raw[:8])))
print(json.dumps(res))
"""


def test_wrong_size_key_is_rejected(cluster: Cluster) -> None:
    need_modules(*ICS_MODULES)
    cluster.bring_up(modules=ICS_MODULES)
    nd = cluster.node(3)
    # The CLI refuses before the kernel sees it, with EINVAL and how to fix it.
    rc, out, err = ssictl(nd, f"cluster setup {PEERS} --key-file -", stdin="0123456789abcdef")
    assert rc == 1, (out, err)
    assert "Traceback" not in err
    assert err.startswith(
        "ssictl: error: the key in <stdin> is too short (16 hex digits = 8 bytes)"
    )
    assert "fix: the cluster key must be 16..64 bytes" in err
    assert "0123456789abcdef" not in out + err
    rc, out, err = ssictl(nd, f"cluster setup {PEERS} --key-file - --json", stdin="x" * 65)
    data = json.loads(out)
    assert rc == 1 and data["ok"] is False, (out, err)
    assert data["error"]["errno_name"] == "EINVAL"
    assert "too long (65 raw bytes)" in data["error"]["message"]

    # The kernel refuses the same on its own (raw ssisys, no Python checks).
    rep = py_json(nd, KERNEL_CHECKS)
    for name in ("short_raw", "long_raw", "table_without_me", "table_reserved", "table_short"):
        assert rep[name]["type"] == "SSIInvalidArgument" and rep[name]["errno"] == 22, (name, rep)
    assert "(EINVAL)" in rep["short_raw"]["msg"]
    assert rep["short_raw"]["msg"].startswith(
        "ssisys(SSISYS_ICS_SET_KEY): the kernel refused the cluster key (EINVAL): "
    )
    assert "this node's own number must be in it" in rep["table_without_me"]["msg"]
    assert "reserved 0" in rep["table_reserved"]["msg"]
    assert rep["short_binding"]["type"] == "ValueError"
    assert "16..64 bytes, got 8" in rep["short_binding"]["msg"]
    # The refusals changed nothing.
    assert nd.succeed("cat /sys/kernel/ssi/ics/key_set").strip() == "1"
    assert len(nd.succeed("cat /sys/kernel/ssi/ics/peers").splitlines()) == 3


def test_table_file_and_errors(cluster: Cluster) -> None:
    need_modules(*ICS_MODULES)
    cluster.bring_up(modules=ICS_MODULES)
    nd = cluster.node(1)
    # Table files come through a shell here-doc into the guest's tmpfs.
    table = "# test\n1 169.254.77.1\n2 169.254.77.2 # two\n\n3 169.254.77.3\n"
    rc, out, err = nd.execute(
        f"printf '%s' {shlex.quote(table)} > /run/t.txt && "
        f"printf '%s' {DEFAULT_KEY.hex()} > /run/k && chmod 600 /run/k && "
        f"{SSICTL} cluster setup --table /run/t.txt --key-file /run/k --json",
        timeout=GUEST_TIMEOUT,
    )
    assert rc == 0, (out, err)
    data = json.loads(out)
    assert data["table"] == {"1": "169.254.77.1", "2": "169.254.77.2", "3": "169.254.77.3"}
    assert data["warnings"] == [] and data["table_source"] == "/run/t.txt"
    # A table without this node: refused with the fix.
    rc, out, err = nd.execute(
        "printf '2 169.254.77.2\\n' > /run/t2.txt && "
        f"{SSICTL} cluster setup --table /run/t2.txt --key-file /run/k",
        timeout=GUEST_TIMEOUT,
    )
    assert rc == 1 and "this node (node 1) is not in the cluster table" in err, (out, err)
    assert len(nd.succeed("cat /sys/kernel/ssi/ics/peers").splitlines()) == 3


def test_ics_stats_shows_the_peers(cluster: Cluster) -> None:
    need_modules(*ICS_MODULES)
    cluster.bring_up(modules=ICS_MODULES)
    stats = on_all(cluster, lambda nd: ssictl_json(nd, "ics stats"))
    for n, st in stats.items():
        assert st["node"] == n and st["key_set"] is True, st
        assert [(p["node"], p["addr"]) for p in st["peers"]] == [
            (i, f"169.254.77.{i}") for i in NODES
        ]
        assert all(isinstance(p["prio"], bool) and isinstance(p["bulk"], bool) for p in st["peers"])
        for c in ("frames_rx", "frames_tx", "auth_ok", "auth_refused", "connects"):
            assert isinstance(st["counters"][c], int), (c, st)
    rc, out, err = ssictl(cluster.node(2), "ics stats")
    assert rc == 0, err
    assert out.startswith("ics on node 2: key set, 3 peer(s)")
    assert "169.254.77.3" in out and "frames_rx" in out


def test_ics_test_between_nodes(cluster: Cluster) -> None:
    need_modules(*ICS_MODULES, "ics_test")
    cluster.bring_up(modules=(*ICS_MODULES, "ics_test"))
    nd1 = cluster.node(1)
    # A call's deadline covers connecting and the handshake too (ICS v2): give the
    # first calls, which make the connections, more than the default 1 s.
    r = ssictl_json(nd1, "ics test 2 --count 100 --timeout-ms 10000")
    assert (r["node"], r["op"], r["count"], r["errors"]) == (2, "null", 100, 0), r
    assert r["elapsed_ns"] > 0
    r = ssictl_json(nd1, "ics test 3 --op echo --size 1000 --count 20 --timeout-ms 10000")
    assert (r["op"], r["size"], r["errors"]) == ("echo", 1000, 0), r
    rc, out, err = ssictl(nd1, "ics test 2 --op ping --count 10")
    assert rc == 0 and out.startswith("10 ping call(s) to node 2: "), (out, err)
    rc, out, err = ssictl(nd1, "ics test 1")
    assert rc == 1 and "node 1 is this node: test against another node" in err, (out, err)
    st = ssictl_json(nd1, "ics stats")
    peers = {p["node"]: p for p in st["peers"]}
    assert peers[2]["bulk"] and peers[3]["bulk"], st  # ics_test runs on the bulk channel


# --------------------------------------------------------------------------- CLMS


def _status_everywhere(cluster: Cluster, nodes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    with ThreadPoolExecutor(len(nodes)) as pool:
        futs = {n: pool.submit(ssictl_json, cluster.node(n), "cluster status") for n in nodes}
        return {n: f.result() for n, f in futs.items()}


def test_membership_all_up(cluster: Cluster) -> None:
    need_modules("ssi_core", "ics", "clms")
    try:
        cluster.bring_up(name="ssitest")
    except BringUpError as e:
        pytest.fail(str(e), pytrace=False)
    # Every node sees 3 UP, and (once settled) the same transition and master.
    deadline = time.monotonic() + 60
    while True:
        st = _status_everywhere(cluster, NODES)
        views = {(s["membership"]["transition"], s["membership"]["master"]) for s in st.values()}
        all_up = all(
            s["membership"]["states"] == {"1": "UP", "2": "UP", "3": "UP"}
            and s["membership"]["quorum"]
            for s in st.values()
        )
        if all_up and len(views) == 1:
            break
        assert time.monotonic() < deadline, f"views did not converge: {st}"
        time.sleep(1)
    for n, s in st.items():
        assert s["membership"]["self"] == n
        assert s["name"] == "ssitest"
        assert [nd["node"] for nd in s["nodes"]] == list(NODES)
        for nd in s["nodes"]:
            assert nd["state"] == "UP" and nd["addr"] == f"169.254.77.{nd['node']}", nd
            assert nd["cpus"] >= 1 and nd["mem_total_kb"] > 0 and nd["since_epoch"], nd

    nd1 = cluster.node(1)
    rc, out, err = ssictl(nd1, "clusternode-avail 3")
    assert (rc, out) == (0, "node 3: UP\n"), err
    rc, out, err = ssictl(nd1, "cluster-membership")
    assert (rc, out) == (0, "1: UP\n2: UP\n3: UP\n"), err
    rc, out, err = ssictl(nd1, "cluster status")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("cluster ssitest: node 1's view, transition ")
    assert lines[1].split()[:3] == ["NODE", "STATE", "ADDRESS"]
    assert [ln.split()[:3] for ln in lines[2:5]] == [
        ["1*", "UP", "169.254.77.1"],
        ["2", "UP", "169.254.77.2"],
        ["3", "UP", "169.254.77.3"],
    ]
    info = ssictl_json(cluster.node(2), "clusternode-info 3")
    assert info["node"] == 3 and info["state"] == "UP" and info["addr"] == "169.254.77.3"
    assert ssictl_json(nd1, "clusternode-num")["node"] == 1
    # Heartbeats connected the peers.
    ics = ssictl_json(nd1, "ics stats")
    assert all(p["prio"] for p in ics["peers"] if p["node"] != 1), ics


UNTIL_DOWN = r"""
import json, time, abi
deadline = time.monotonic() + 60
while abi.clusternode_avail(3) and time.monotonic() < deadline:
    time.sleep(0.05)
info = abi.clusternode_info(3)
up = float(open("/proc/uptime").read().split()[0])
since_uptime = info.since.timestamp() - (time.time() - up) if info.since else None
print(json.dumps({"state": info.state, "since_uptime": since_uptime,
                  "transition": info.transition}))
"""


def test_crash_makes_node_unavailable(cluster: Cluster) -> None:
    need_modules("ssi_core", "ics", "clms")
    try:
        cluster.bring_up()
    except BringUpError as e:
        pytest.fail(str(e), pytrace=False)
    nd1, nd2 = cluster.node(1), cluster.node(2)
    t = time.monotonic()
    assert ssictl(nd1, "clusternode-avail 3")[0] == 0
    py_start = time.monotonic() - t

    # A watcher on node 2, started well before the crash.
    watch: dict[str, Any] = {}

    def run_watch() -> None:
        watch["res"] = ssictl(nd2, "cluster status --watch --count 1 --timeout 120 --json")

    th = threading.Thread(target=run_watch)
    th.start()
    time.sleep(2 * py_start + 3)

    u0 = float(nd1.succeed("cat /proc/uptime").split()[0])
    t_crash = time.monotonic()
    cluster.node(3).crash()
    rep = py_json(nd1, UNTIL_DOWN)
    assert rep["state"] != "UP", rep
    rc, out, err = ssictl(nd1, "clusternode-avail 3")
    host_s = time.monotonic() - t_crash
    assert rc == 1 and out.startswith("node 3: ") and "(not available)" in out, (rc, out, err)
    detect_s = rep["since_uptime"] - u0 if rep["since_uptime"] is not None else None
    print(
        f"[clms] node 3 {rep['state']} {detect_s} s after the crash (guest clock); "
        f"clusternode-avail exit 1 {host_s:.1f} s after it (host, incl. 2 Python starts)"
    )
    assert detect_s is not None and detect_s < 10, rep

    th.join(timeout=180)
    rc, out, err = watch["res"]
    assert rc == 0, (out, err)
    events = [json.loads(ln) for ln in out.splitlines()]
    assert [e["event"] for e in events] == ["initial", "change", "end"], events
    assert events[0]["states"]["3"] == "UP"
    assert events[1]["states"]["3"] != "UP" and any(
        c.startswith("node 3 UP->") for c in events[1]["changes"]
    ), events
    assert events[1]["transition"] > events[0]["transition"]
