"""ICS in real kernels: authenticated RPC between guests, refusal of a wrong key,
and a hostile client whose malformed frames are dropped and counted."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from qemu import Cluster
from qemu.bringup import DEFAULT_KEY, peer_table, up_command
from qemu.paths import flavor

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
PY = REPO / ".venv" / "bin" / "python"
MODULES = ("ssi_core", "ics", "ics_test")
# every module that serves ICS: the fuzzer sends each service its requests
MODULES_FUZZED = ("ssi_core", "ics", "clms", "vproc", "rfile", "migration", "ics_test")
OTHER_KEY = b"a different cluster key, 32 byte"
FUZZ_CLIENT = Path(__file__).with_name("ics_fuzz_client.py")
# Each call's deadline (connect and handshake included), scaled like every
# harness deadline under the debug flavor: its sanitizers made a first bulk
# connect plus handshake, and some null calls, take over 3 s; so did a first
# call on a CI machine that ran three TCG guests on two slow cores.  A call that
# works takes milliseconds: the deadline only bounds a broken one.
CALL_TIMEOUT_MS = int(10000 * flavor().timeout_factor)

# One interpreter per step: Python starts slowly in a TCG guest.
ICS_TEST = """
import json, sys
from abi import cluster
out = []
timeout_ms = int(sys.argv[2])
for node, op, count, size in json.loads(sys.argv[1]):
    r = cluster.ics_test(node, op, count, size=size, timeout_ms=timeout_ms)
    out.append({"node": node, "op": op, "count": count, "errors": r.errors,
                "last_error": r.last_error, "elapsed_ns": r.elapsed_ns})
print(json.dumps(out))
"""


def run_ics_test(node: object, runs: list[tuple[int, str, int, int]]) -> list[dict[str, int]]:
    cmd = f"{PY} -c '{ICS_TEST}' '{json.dumps(runs)}' {CALL_TIMEOUT_MS}"
    out = node.succeed(cmd, timeout=120)  # type: ignore[attr-defined]
    result: list[dict[str, int]] = json.loads(out.strip().splitlines()[-1])
    return result


def counters(node: object) -> dict[str, int]:
    out = node.succeed("cd /sys/kernel/ssi/ics && grep -H . * | grep -v '^peers:'")  # type: ignore[attr-defined]
    values: dict[str, int] = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        values[name] = int(value)
    return values


@pytest.mark.timeout(240)
def test_calls_between_guests(cluster: Cluster) -> None:
    cluster.bring_up(modules=MODULES)
    res = run_ics_test(cluster.node(1), [(2, "null", 100, 0), (2, "echo", 20, 65536),
                                         (3, "ping", 50, 0), (3, "echo", 20, 1),
                                         (2, "echo_pages", 20, 65536), (3, "echo_pages", 5, 0),
                                         (3, "echo_pages", 10, 4096)])
    for r in res:
        assert r["errors"] == 0, json.dumps(r)
    # One-way pings arrive (asynchronously, on the bulk channel).
    cluster.node(3).wait_until_succeeds("test $(cat /sys/kernel/ssi/ics_test/pings) -ge 50",
                                        timeout=20)
    # Calls the other way use node 2's own authenticated connection.
    assert run_ics_test(cluster.node(2), [(1, "null", 10, 0)])[0]["errors"] == 0
    c1, c2 = counters(cluster.node(1)), counters(cluster.node(2))
    assert c1["calls"] >= 175 and c1["call_errors"] == 0
    assert c2["dispatched"] >= 120
    assert c1["auth_ok"] >= 2 and c1["auth_refused"] == 0
    peers = cluster.node(1).succeed("cat /sys/kernel/ssi/ics/peers")
    assert "2 169.254.77.2 prio=0 bulk=1" in peers


@pytest.mark.timeout(240)
def test_wrong_key_is_refused_and_counted(cluster: Cluster) -> None:
    cluster.bring_up(modules=MODULES)
    assert run_ics_test(cluster.node(1), [(3, "null", 5, 0)])[0]["errors"] == 0
    before1, before3 = counters(cluster.node(1)), counters(cluster.node(3))
    # Node 3 switches to another key: its old connections are dropped and
    # nobody can authenticate with it any more, in either direction.
    rekey(cluster, 3, OTHER_KEY)
    res = run_ics_test(cluster.node(1), [(3, "null", 3, 0)])[0]
    assert res["errors"] == 3 and res["last_error"] in (-13, -107), res
    res = run_ics_test(cluster.node(3), [(2, "null", 3, 0)])[0]
    assert res["errors"] == 3, res
    after1, after3 = counters(cluster.node(1)), counters(cluster.node(3))
    assert after1["auth_refused"] > before1["auth_refused"]
    assert after3["auth_refused"] > before3["auth_refused"]
    # The rest of the cluster is unaffected.
    assert run_ics_test(cluster.node(1), [(2, "null", 5, 0)])[0]["errors"] == 0
    rekey(cluster, 3, DEFAULT_KEY)
    assert run_ics_test(cluster.node(1), [(3, "null", 5, 0)])[0]["errors"] == 0


# The number: 100,000 frames from a guest (about 100 s under TCG).
FUZZ_FRAMES = int(os.environ.get("SSI_ICS_FUZZ_FRAMES", "100000"))
FUZZ_SEED = int(os.environ.get("SSI_ICS_FUZZ_SEED", "7"))


@pytest.mark.timeout(300 + FUZZ_FRAMES * 4 // 1000)
def test_hostile_frames_are_dropped_and_counted(cluster: Cluster) -> None:
    """Every class of ics_fuzz_client.py, including every service's requests mutated
    (the modules' own generated codecs predict which must be dropped as malformed)."""
    cluster.bring_up(modules=MODULES_FUZZED)
    before = counters(cluster.node(1))
    codecs = flavor().modules_out.parent
    out = cluster.node(2).succeed(
        f"{PY} {FUZZ_CLIENT} 169.254.77.1 4600 2 1 {DEFAULT_KEY.hex()} {FUZZ_FRAMES} "
        f"{FUZZ_SEED} {codecs}", timeout=flavor().timeout(120 + FUZZ_FRAMES * 3 // 1000))
    sent = json.loads(out.strip().splitlines()[-1])
    print(f"[ics-fuzz] seed {FUZZ_SEED}: {sent}")
    frames = sum(v for k, v in sent.items() if k != "reply_bytes")
    assert frames == FUZZ_FRAMES, sent
    assert sent.get("service_valid", 0) > 0 and sent.get("service_malformed", 0) > 0, sent
    assert "preauth_wrong_key_accepted" not in sent, sent
    expected = {
        "dropped_bad_header": sent.get("bad_header", 0) + sent.get("reply_on_incoming", 0)
        + sent.get("paged_bad_count", 0),
        "dropped_oversized": sent.get("oversized", 0),
        "dropped_truncated": sent.get("truncated", 0),
        "dropped_unknown_op": sent.get("unknown_op", 0),
        "dropped_malformed_body": 1 + sent.get("paged_malformed", 0)
        + sent.get("service_malformed", 0),
        "dispatched": sent.get("service_valid", 0),
        # Refused in the handshake, or at accept when its address already had 4
        # handshakes going on (garbage connections wait out their 2 s deadline).
        "auth_refused+refused_busy": sent.get("preauth_wrong_key", 0),
    }
    # The receiving side works through the backlog asynchronously: poll.
    deadline = time.monotonic() + flavor().timeout(30)
    while True:
        after = counters(cluster.node(1))
        for c in (before, after):
            c["auth_refused+refused_busy"] = c["auth_refused"] + c["refused_busy"]
        short = {k: (after[k] - before[k], v) for k, v in expected.items()
                 if after[k] - before[k] < v}
        if not short or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not short, f"counted < sent (counted, sent): {short}; client sent {sent}"
    # Node 1 still serves real peers.
    assert run_ics_test(cluster.node(3), [(1, "null", 20, 0), (1, "echo", 5, 1000)])[0][
        "errors"] == 0


# The same calls with SIGALRM arriving every millisecond (every tick under TCG).
ICS_TEST_UNDER_SIGNALS = """
import json, signal, sys
from abi import cluster
signal.signal(signal.SIGALRM, lambda *_: None)
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
r = cluster.ics_test(3, "echo", 20, size=65536, timeout_ms=int(sys.argv[1]))
signal.setitimer(signal.ITIMER_REAL, 0)
print(json.dumps({"errors": r.errors, "last_error": r.last_error}))
"""


@pytest.mark.timeout(240)
def test_a_caller_taking_signals_connects_and_calls(cluster: Cluster) -> None:
    """Callers are often processes with signals arriving (a deputy forwards
    the signals it holds): a signal must not cut a connect or a send short.
    Before ICS held signals back on the socket, the connect failed with EINTR
    (every caller then saw ENOTCONN while the peer was backed off)."""
    cluster.bring_up(modules=MODULES)
    n1 = cluster.node(1)
    # Node 3 re-keyed (to another key and back: the same key again changes
    # nothing) drops its connections: node 1's next call to it connects
    # again, under the signals.
    rekey(cluster, 3, OTHER_KEY)
    rekey(cluster, 3, DEFAULT_KEY)
    n1.wait_until_succeeds("grep -q '^3 .* bulk=0' /sys/kernel/ssi/ics/peers", timeout=30)
    before = counters(n1)
    out = n1.succeed(f"{PY} -c '{ICS_TEST_UNDER_SIGNALS}' {CALL_TIMEOUT_MS}", timeout=120)
    res = json.loads(out.strip().splitlines()[-1])
    after = counters(n1)
    assert res["errors"] == 0, res
    assert after["connects"] > before["connects"], (before, after)
    assert after["connect_failures"] == before["connect_failures"], (before, after)


@pytest.mark.timeout(240)
def test_the_same_key_set_again_keeps_every_connection(cluster: Cluster) -> None:
    """Every `cluster up` sets the key.  Setting the key a node already has
    changes nothing: no connection of it or to it is dropped (each drop made
    the next calls race a reconnect, and a migrate() fail with EHOSTDOWN)."""
    cluster.bring_up(modules=MODULES)
    n1, n3 = cluster.node(1), cluster.node(3)
    assert run_ics_test(n1, [(3, "null", 5, 0)])[0]["errors"] == 0
    assert run_ics_test(n3, [(1, "null", 5, 0)])[0]["errors"] == 0
    before1, before3 = counters(n1), counters(n3)
    rekey(cluster, 3, DEFAULT_KEY)
    assert run_ics_test(n1, [(3, "null", 5, 0)])[0]["errors"] == 0
    assert run_ics_test(n3, [(1, "null", 5, 0)])[0]["errors"] == 0
    after1, after3 = counters(n1), counters(n3)
    for name in ("disconnects", "connects", "connect_failures"):
        assert after1[name] == before1[name], (name, before1, after1)
        assert after3[name] == before3[name], (name, before3, after3)


def rekey(cluster: Cluster, number: int, key: bytes) -> None:
    """Give one node another cluster key (same table, same modules)."""
    peers = peer_table([nd.number for nd in cluster.nodes])
    cluster.node(number).succeed(up_command(peers, key, MODULES), timeout=120)
