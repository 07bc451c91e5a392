"""ICS frame protection (issue 9, finding 1): frames after the handshake travel as
kernel TLS records keyed from the handshake (``protect=tls``), or each with a
Poly1305 tag keyed the same way (``protect=auth``), so a frame changed on the wire
never reaches a service: it fails to authenticate, the connection is reset and
counted, and the call fails; it never returns wrong data.

The hub flips one bit in chosen TCP payloads and fixes the IP and TCP checksums, so
the receiving kernel's TCP accepts the segment and only ICS can notice. Under
``protect=none`` (the documented trusted-interconnect mode, which is what every
frame got before the fix) the same corruption reaches the echo service and comes
back as wrong data: that is the failure this test exists to catch.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from qemu import Cluster, Node
from qemu.bringup import CLUSTER_UP, DEFAULT_KEY, peer_table
from qemu.hubctl import Impairment
from qemu.paths import flavor

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
PY = REPO / ".venv" / "bin" / "python"
PEER = Path(__file__).with_name("ics_auth_peer.py")
CALLS = 150
EIO = 5
# Each call's deadline (connect and handshake included), scaled with the flavor
# like every harness deadline: what the test asserts does not change.
CALL_TIMEOUT_MS = int(10000 * flavor().timeout_factor)  # bounds a broken call only

# One echo call per ssisys, so each call's own outcome is known: 0, or its errno.
ECHO_CALLS = """
import json, sys
from abi import cluster
errs = {}
for i in range(int(sys.argv[2])):
    r = cluster.ics_test(int(sys.argv[1]), "echo", 1, size=2048, timeout_ms=int(sys.argv[3]))
    key = str(-r.last_error) if r.errors else "0"
    errs[key] = errs.get(key, 0) + 1
print(json.dumps(errs))
"""


def echo_outcomes(nd: Node, target: int, calls: int) -> dict[int, int]:
    out = nd.succeed(f"{PY} -c '{ECHO_CALLS}' {target} {calls} {CALL_TIMEOUT_MS}", timeout=240)
    return {int(k): v for k, v in json.loads(out.strip().splitlines()[-1]).items()}


@pytest.fixture(autouse=True)
def unload_after(cluster: Cluster) -> Iterator[None]:
    """Each test loads ics with its own protect=: unload everything after it."""
    yield
    for nd in cluster.nodes:
        nd.execute("rmmod ics_test; rmmod ics; rmmod ssi_core", timeout=60)


def counters(nd: Node) -> dict[str, int]:
    out = nd.succeed("cd /sys/kernel/ssi/ics && grep -H . * | grep -v '^peers:'")
    return {name: int(value) for name, _, value in
            (line.partition(":") for line in out.splitlines())}


def load_ics(cluster: Cluster, protect: str) -> None:
    """ssi_core, ics (with protect=...), ics_test on every node, then key and table."""
    mods = flavor().modules_out
    peers = peer_table([nd.number for nd in cluster.nodes])
    table = " ".join(f"--peer {n}={a}" for n, a in sorted(peers.items()))
    for nd in cluster.nodes:
        nd.succeed(f"insmod {mods}/ssi_core.ko && insmod {mods}/ics.ko protect={protect} && "
                   f"insmod {mods}/ics_test.ko && printf '%s\\n' {DEFAULT_KEY.hex()} | "
                   f"{CLUSTER_UP} {table} --key-file - --modules ssi_core,ics,ics_test",
                   timeout=120)


def corrupted_run(cluster: Cluster, protect: str) -> tuple[dict[int, int], dict[str, Any]]:
    load_ics(cluster, protect)
    nd1 = cluster.node(1)
    assert echo_outcomes(nd1, 2, 5) == {0: 5}  # connected, clean, before any damage
    cluster.net_seed(9)
    with cluster.impaired(1, 2, Impairment(corrupt=4), both=True):
        outcomes = echo_outcomes(nd1, 2, CALLS)
    stats: dict[str, Any] = {f"node{n}": counters(cluster.node(n)) for n in (1, 2)}
    stats["hub"] = {f"{a}>{b}": asdict(s) for (a, b), s in cluster.link_stats().items()}
    return outcomes, stats


@pytest.mark.parametrize("protect", ["tls", "auth"])
def test_tampered_records_reset_the_connection_and_never_reach_a_service(
        cluster: Cluster, protect: str) -> None:
    outcomes, stats = corrupted_run(cluster, protect)
    print(json.dumps({"outcomes": outcomes, **stats}, sort_keys=True))
    corrupted = sum(s["corrupted"] for s in stats["hub"].values())
    assert corrupted > 0, stats
    assert EIO not in outcomes, outcomes  # no call came back with data other than sent
    bad = stats["node1"]["dropped_bad_record"] + stats["node2"]["dropped_bad_record"]
    assert bad > 0, stats  # caught by the record's or frame's tag, not by luck elsewhere
    # Nothing malformed got through to the frame parser or a service.
    for n in ("node1", "node2"):
        assert stats[n]["dropped_malformed_body"] == 0, stats
    # Calls on a reset connection fail (ENOTCONN, and for 0.5 s after a reset
    # while the connection backs off; EACCES when the damage hit the handshake);
    # the others succeed, with the right data.
    assert outcomes.get(0, 0) > 0, outcomes
    assert set(outcomes) <= {0, errno.ENOTCONN, errno.EACCES, errno.ETIMEDOUT}, outcomes
    # Once the damage stops, calls are clean again.
    assert echo_outcomes(cluster.node(1), 2, 5) == {0: 5}


def test_unprotected_frames_deliver_the_damage(cluster: Cluster) -> None:
    """protect=none: the same corruption reaches the service: the test above can fail."""
    outcomes, stats = corrupted_run(cluster, "none")
    print(json.dumps({"outcomes": outcomes, **stats}, sort_keys=True))
    assert stats["node1"]["dropped_bad_record"] + stats["node2"]["dropped_bad_record"] == 0
    assert outcomes.get(EIO, 0) > 0, outcomes


def test_nodes_with_different_protect_modes_refuse_each_other(cluster: Cluster) -> None:
    mods = flavor().modules_out
    peers = " ".join(f"--peer {n}={a}" for n, a in
                     sorted(peer_table([nd.number for nd in cluster.nodes]).items()))
    for nd, protect in ((cluster.node(1), "tls"), (cluster.node(2), "auth")):
        nd.succeed(f"insmod {mods}/ssi_core.ko && insmod {mods}/ics.ko protect={protect} && "
                   f"insmod {mods}/ics_test.ko && printf '%s\\n' {DEFAULT_KEY.hex()} | "
                   f"{CLUSTER_UP} {peers} --key-file - --modules ssi_core,ics,ics_test",
                   timeout=120)
    outcomes = echo_outcomes(cluster.node(1), 2, 3)
    assert 0 not in outcomes, outcomes
    assert counters(cluster.node(2))["auth_refused"] > 0
    cluster.node(2).wait_for_console_text("protect= mode differs",
                                          timeout=flavor().timeout(10))
    # A bad value refuses to load, with a message saying what to use.
    rc, _, _ = cluster.node(3).execute(f"insmod {mods}/ssi_core.ko && "
                                       f"insmod {mods}/ics.ko protect=maybe")
    assert rc != 0
    cluster.node(3).wait_for_console_text("protect=maybe: use tls, auth",
                                          timeout=flavor().timeout(10))


def test_a_peer_written_from_the_auth_wire_format_talks_to_a_node(cluster: Cluster) -> None:
    """protect=auth as documented (ics_mac.c), implemented independently in Python
    (genmod.ics.frame_tag): the node accepts its tags, its replies carry the tags the
    description gives, and a frame with one tag bit flipped is never answered: the node
    resets the connection and counts it."""
    load_ics(cluster, "auth")
    before = counters(cluster.node(1))["dropped_bad_record"]
    out = cluster.node(2).succeed(
        f"cd {REPO} && PYTHONPATH={REPO}:{PEER.parent} {PY} {PEER} 169.254.77.1 4600 2 1 "
        f"{DEFAULT_KEY.hex()} 40", timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"echoed": 40, "replies_tagged_right": 40, "bad_tag_answered": False,
                      "closed_after_bad_tag": True}, result
    assert counters(cluster.node(1))["dropped_bad_record"] == before + 1
    # The node's own connections were not disturbed by the peer's reset.
    assert echo_outcomes(cluster.node(2), 1, 5) == {0: 5}
