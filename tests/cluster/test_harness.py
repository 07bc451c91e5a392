"""The QEMU harness itself: boot, identity, commands, network faults, splat scan,
console waits, subtests, command logs, SSI bring-up."""

from __future__ import annotations

import re
import secrets
import time

import pytest

from qemu import Cluster, CommandFailed, NodeError
from qemu.bringup import SSICTL
from qemu.console_scan import scan_text
from qemu.node import ConsoleTimeout
from qemu.paths import flavor

CLUSTER_NODES = 3
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]

PING = "busybox ping -c 1 -W 2"


def can_ping(c: Cluster, src: int, dst: int) -> bool:
    rc, _, _ = c.node(src).execute(f"{PING} node{dst}", timeout=10)
    return rc == 0


def test_nodes_boot_with_their_identity(cluster: Cluster) -> None:
    assert len(cluster.nodes) == 3
    for n in (1, 2, 3):
        nd = cluster.node(n)
        assert nd.succeed("hostname").strip() == f"node{n}"
        assert f"ssi.node={n}" in nd.succeed("cat /proc/cmdline").split()
        hosts = nd.succeed("cat /etc/hosts")
        assert "169.254.77.3 node3" in hosts
        assert f"169.254.77.{n}/24" in nd.succeed("busybox ip -4 addr show eth0")


def test_user_pids_are_node_partitioned(cluster: Cluster) -> None:
    for n in (1, 2, 3):
        pid = int(cluster.node(n).succeed("echo $$"))
        assert n << 16 <= pid < (n + 1) << 16, f"node{n}: pid {pid} outside its range"


def test_ping_across_the_hub(cluster: Cluster) -> None:
    cluster.node(1).succeed(f"{PING} node2")
    cluster.node(1).succeed(f"{PING} node3")
    cluster.node(3).succeed(f"{PING} node2")


def test_commands_and_exit_codes(cluster: Cluster) -> None:
    nd = cluster.node(2)
    assert nd.succeed("echo hello; echo oops >&2") == "hello\n"
    rc, out, err = nd.execute("echo out; echo err >&2; exit 7")
    assert (rc, out, err) == (7, "out\n", "err\n")
    nd.fail("false")
    with pytest.raises(CommandFailed) as info:
        nd.succeed("echo bad >&2; exit 3")
    assert info.value.rc == 3 and info.value.err == "bad\n"
    with pytest.raises(CommandFailed):
        nd.fail("true")
    assert nd.succeed("pwd").strip() == "/"
    assert nd.succeed("cat") == ""  # stdin is /dev/null
    assert nd.succeed("printf '%s' \"a'b\\\"c\" && echo") == "a'b\"c\n"
    big = nd.succeed("busybox seq 1 20000")
    assert big.splitlines()[-1] == "20000" and len(big.splitlines()) == 20000
    for n in (1, 3):
        assert cluster.node(n).succeed("echo $((6 * 7))") == "42\n"


def test_guest_side_timeout(cluster: Cluster) -> None:
    t0 = time.monotonic()
    rc, _, _ = cluster.node(1).execute("sleep 30", timeout=1)
    assert rc == 137  # killed by the agent's timeout
    assert time.monotonic() - t0 < 10
    assert cluster.node(1).succeed("echo still here") == "still here\n"


def test_wait_until(cluster: Cluster) -> None:
    nd = cluster.node(1)
    nd.succeed("rm -f /tmp/flag; (sleep 1; touch /tmp/flag) >/dev/null 2>&1 &")
    nd.wait_until_succeeds("test -e /tmp/flag", timeout=20)
    nd.succeed("(sleep 1; rm -f /tmp/flag) >/dev/null 2>&1 &")
    nd.wait_until_fails("test -e /tmp/flag", timeout=20)
    with pytest.raises(CommandFailed):
        nd.wait_until_succeeds("false", timeout=1)


def test_crash_and_restart(cluster: Cluster) -> None:
    assert can_ping(cluster, 1, 3)
    cluster.node(3).crash()
    assert not cluster.node(3).is_running
    assert cluster.node(1).succeed("echo alive") == "alive\n"
    assert cluster.node(2).succeed("echo alive") == "alive\n"
    assert not can_ping(cluster, 1, 3)
    with pytest.raises(NodeError) as info:
        cluster.node(3).execute("true")
    first = str(info.value).splitlines()[0]
    assert "node3: QEMU is not running" in first
    assert f"qemu log: {cluster.log_dir / 'node3.qemu.log'}" in first
    assert f"console log: {cluster.log_dir / 'node3.console.log'}" in first
    secs = cluster.node(3).start()
    print(f"node3 rebooted in {secs:.2f} s")
    assert cluster.node(3).succeed("hostname").strip() == "node3"
    cluster.node(1).wait_until_succeeds(f"{PING} node3", timeout=30)


def test_cut_and_heal(cluster: Cluster) -> None:
    assert can_ping(cluster, 1, 2)
    cluster.cut(1, 2)
    assert not can_ping(cluster, 1, 2)
    assert not can_ping(cluster, 2, 1)
    assert can_ping(cluster, 1, 3)
    assert can_ping(cluster, 3, 2)
    cluster.heal()
    assert can_ping(cluster, 1, 2)


def test_partition_and_heal(cluster: Cluster) -> None:
    cluster.partition({1}, {2, 3})
    assert not can_ping(cluster, 1, 2)
    assert not can_ping(cluster, 1, 3)
    assert not can_ping(cluster, 3, 1)
    assert can_ping(cluster, 2, 3)
    cluster.heal()
    assert can_ping(cluster, 1, 2)
    assert can_ping(cluster, 3, 1)
    stats = cluster.net_stats()
    assert stats[1].drop > 0 and stats[2].rx > 0


@pytest.mark.allow_splat(r"ssi-harness planted splat")
def test_planted_splat_is_detected(cluster: Cluster) -> None:
    nd = cluster.node(2)
    since = nd.console_size()
    nd.succeed("echo '<4>WARNING: ssi-harness planted splat' > /dev/kmsg")
    nd.wait_for_console_text("planted splat", timeout=10, since=since)
    hits = scan_text(nd.console_text(since), node=2)
    assert [h.kind for h in hits] == ["warning"]
    assert hits[0].node == 2 and "planted splat" in hits[0].line
    # The fixture's scan honours the allow_splat marker, so this test passes.


def test_shutdown_and_start(cluster: Cluster) -> None:
    nd = cluster.node(2)
    nd.shutdown(timeout=30)
    assert not nd.is_running
    assert nd.proc is not None and nd.proc.returncode == 0
    nd.start()
    assert nd.succeed("hostname").strip() == "node2"


def test_wait_for_console_text(cluster: Cluster) -> None:
    nd = cluster.node(1)
    token = secrets.token_hex(4)
    since = nd.console_size()
    nd.succeed(f"(sleep 1; echo '<3>ssi-probe {token} value=42' > /dev/kmsg) >/dev/null 2>&1 &")
    t0 = time.monotonic()
    m = nd.wait_for_console_text(rf"ssi-probe {token} value=(\d+)", timeout=30, since=since)
    assert m.group(1) == "42" and time.monotonic() - t0 >= 0.5
    # since=None: from the start of this boot.
    assert nd.wait_for_console_text(rf"ssi-probe {token} value=(\d+)", timeout=1).group(1) == "42"
    with pytest.raises(ConsoleTimeout) as info:
        nd.wait_for_console_text(f"ssi-probe {token} never", timeout=1, since=since)
    msg = str(info.value)
    assert f"no console text matching 'ssi-probe {token} never' in 1 s" in msg
    assert f"ssi-probe {token} value=42" in msg  # the console tail


def test_command_log(cluster: Cluster) -> None:
    nd = cluster.node(2)
    token = secrets.token_hex(4)
    assert nd.execute(f"echo out-{token}; echo err-{token} >&2; exit 3")[0] == 3
    log = (cluster.log_dir / "node2.commands.log").read_text()
    entry = log[log.index(f"$ echo out-{token}; echo err-{token} >&2; exit 3\n"):]
    assert re.match(
        rf".*\n    -> exit 3 in \d+\.\d{{3}} s\n    --- stdout ---\n    \| out-{token}\n"
        rf"    --- stderr ---\n    \| err-{token}\n",
        entry,
    ), entry[:400]
    assert f"out-{token}" not in (cluster.log_dir / "node1.commands.log").read_text()


def test_subtest(cluster: Cluster) -> None:
    token = secrets.token_hex(4)
    with cluster.subtest(f"greet {token}"):
        cluster.node(1).succeed(f"echo hello-{token}")
    with pytest.raises(CommandFailed) as info, cluster.subtest(f"fails {token}"):
        cluster.node(3).succeed("exit 4")
    assert info.value.rc == 4
    assert any(f"in subtest 'fails {token}'" in n for n in info.value.__notes__)
    log1 = (cluster.log_dir / "node1.commands.log").read_text()
    assert re.search(
        rf"=== subtest 'greet {token}': start\n.*\$ echo hello-{token}\n.*"
        rf"=== subtest 'greet {token}': ok in \d+\.\d{{3}} s\n",
        log1, re.DOTALL,
    ), log1[-1000:]
    log3 = (cluster.log_dir / "node3.commands.log").read_text()
    assert re.search(
        rf"=== subtest 'fails {token}': start\n.*\$ exit 4\n.*-> exit 4 .*"
        rf"=== subtest 'fails {token}': FAILED after \d+\.\d{{3}} s: CommandFailed",
        log3, re.DOTALL,
    ), log3[-1000:]


def test_bring_up_forms_the_ssi_cluster(cluster: Cluster) -> None:
    out_dir = flavor().modules_out
    if not (out_dir / "clms.ko").is_file():
        pytest.fail(f"{out_dir}/clms.ko missing: run `make modules`", pytrace=False)
    key = secrets.token_bytes(32)
    results = cluster.bring_up(key=key, modules=("ssi_core", "ics", "clms"), wait_up=120)
    assert sorted(results) == [1, 2, 3] and all(r["ok"] for r in results.values()), results
    for n in (1, 2, 3):
        nd = cluster.node(n)
        assert nd.succeed("cat /sys/kernel/ssi/ics/key_set").strip() == "1"
        out = nd.succeed(f"{SSICTL} clusternode-avail 3", timeout=120)
        assert out == "node 3: UP\n"
        log = (cluster.log_dir / f"node{n}.commands.log").read_text()
        assert "--peer 1=169.254.77.1 --peer 2=169.254.77.2 --peer 3=169.254.77.3" in log
        assert key.hex() not in log  # the key is masked in the command log
