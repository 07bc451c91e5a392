"""``qemu.bringup``: the one command each node runs, and how failures are reported
(host only: the nodes are stand-ins that answer like ``ssictl cluster up --json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qemu import bringup
from qemu.paths import flavor
from qemu.qemu_cmd import node_ip

KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
KEY = bytes.fromhex(KEY_HEX)


class FakeNode:
    def __init__(self, number: int, rc: int = 0, payload: dict[str, Any] | None = None) -> None:
        self.number = number
        self.rc = rc
        self.payload = payload
        self.cmds: list[tuple[str, float, str | None]] = []

    def execute(
        self, cmd: str, timeout: float = 60.0, *, log_as: str | None = None
    ) -> tuple[int, str, str]:
        self.cmds.append((cmd, timeout, log_as))
        data = self.payload if self.payload is not None else {"ok": True, "node": self.number}
        return self.rc, json.dumps(data), "" if self.rc == 0 else "some stderr\n"


class FakeCluster:
    def __init__(self, nodes: list[FakeNode]) -> None:
        self.nodes = nodes


def run_bring_up(nodes: list[FakeNode], **kw: Any) -> dict[int, dict[str, Any]]:
    return bringup.bring_up(FakeCluster(nodes), **kw)  # type: ignore[arg-type]


def test_peer_table_is_the_qemu_address_plan() -> None:
    assert bringup.peer_table([1, 2, 5]) == {1: node_ip(1), 2: node_ip(2), 5: node_ip(5)}
    assert bringup.peer_table([2]) == {2: "169.254.77.2"}


def test_up_command_passes_an_explicit_table() -> None:
    peers = {2: "169.254.77.2", 1: "169.254.77.1", 3: "169.254.77.3"}
    cmd = bringup.up_command(peers, KEY, ("ssi_core", "ics"), name="t", wait_up=30)
    assert cmd == (
        f"printf '%s\\n' {KEY_HEX} | {bringup.CLUSTER_UP} "
        "--peer 1=169.254.77.1 --peer 2=169.254.77.2 --peer 3=169.254.77.3 --key-file - "
        "--json --modules ssi_core,ics --name t --wait 30"
    )
    assert "--wait" not in bringup.up_command(peers, KEY, ("ssi_core",))
    assert "--nodes" not in cmd


def test_bring_up_runs_one_command_per_node_and_logs_no_key() -> None:
    nodes = [FakeNode(n) for n in (1, 2, 3)]
    res = run_bring_up(nodes, modules=("ssi_core", "ics"))
    assert sorted(res) == [1, 2, 3] and all(r["ok"] and r["rc"] == 0 for r in res.values())
    for nd in nodes:
        ((cmd, timeout, log_as),) = nd.cmds
        assert "--modules ssi_core,ics" in cmd and "--wait" not in cmd
        assert "--peer 1=169.254.77.1 --peer 2=169.254.77.2 --peer 3=169.254.77.3" in cmd
        assert timeout == 240.0
        assert log_as is not None and bringup.DEFAULT_KEY.hex() not in log_as
        assert log_as == cmd.replace(bringup.DEFAULT_KEY.hex(), bringup.KEY_MASK)
    run_bring_up(nodes)  # clms: waits for all UP by default, as long as the flavor says
    cmd, timeout, _ = nodes[0].cmds[-1]
    wait = flavor().timeout(bringup.DEFAULT_WAIT_UP)
    assert "--modules ssi_core,ics,clms,vproc" in cmd and f"--wait {wait:g}" in cmd
    assert timeout == 240.0 + wait
    assert bringup.DEFAULT_KEY.hex() in cmd and len(bringup.DEFAULT_KEY) == 32


def test_bring_up_reports_every_failed_node() -> None:
    err = {"ok": False, "error": {"message": "no module clms in /x", "hint": "pick from: a"}}
    nodes = [FakeNode(1), FakeNode(2, 1, err), FakeNode(3, 1, err)]
    with pytest.raises(bringup.BringUpError) as ei:
        run_bring_up(nodes)
    msg = str(ei.value)
    assert msg.splitlines()[:4] == [
        "bring_up(ssi_core, ics, clms, vproc) failed on node(s) 2, 3:",
        "  node2 (exit 1): no module clms in /x",
        "    fix: pick from: a",
        "    stderr: some stderr",
    ]
    assert ei.value.results[1]["ok"] is True


def test_bring_up_without_json_output() -> None:
    class Broken(FakeNode):
        def execute(
            self, cmd: str, timeout: float = 60.0, *, log_as: str | None = None
        ) -> tuple[int, str, str]:
            return 127, "", "sh: ssictl: not found\n"

    with pytest.raises(bringup.BringUpError, match="node1 \\(exit 127\\): no JSON from ssictl"):
        run_bring_up([Broken(1)], modules=("ssi_core",))


@pytest.mark.parametrize("out", ["[1, 2]", "null", "not json"])
def test_parse_result_needs_a_json_object(out: str) -> None:
    res = bringup.parse_result(0, out, "")
    assert res["ok"] is False and res["error"]["message"] == "no JSON from ssictl"


def test_load_order_adds_dependencies_first(tmp_path: Path) -> None:
    # .ko stand-ins whose .modinfo declares the real modules' dependencies.
    from test_ssictl_kmod import HAVE_GCC, build_ko

    if not HAVE_GCC:
        pytest.skip("needs gcc")
    deps = {"ssi_core": "", "ics": "ssi_core", "clms": "ssi_core,ics", "vproc": "clms,ics"}
    for name, dep in deps.items():
        build_ko(tmp_path, f"{name}.ko", [f"name={name}", f"depends={dep}"])
    assert bringup.load_order(["vproc"], tmp_path) == ["ssi_core", "ics", "clms", "vproc"]
    assert bringup.load_order(["ics", "ssi_core"], tmp_path) == ["ssi_core", "ics"]
    # A module the directory lacks: the order given, and the node names the missing file.
    assert bringup.load_order(["ics", "nosuch"], tmp_path) == ["ics", "nosuch"]
    assert bringup.load_order(["b", "a"], tmp_path / "absent") == ["b", "a"]


def test_speedups_off_brings_up_with_the_python_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [FakeNode(1)]
    run_bring_up(nodes, modules=("ssi_core",))
    assert str(bringup.CLUSTER_UP) in nodes[0].cmds[0][0]
    monkeypatch.setenv("SSI_GUEST_SPEEDUPS", "0")
    nodes = [FakeNode(1)]
    run_bring_up(nodes, modules=("ssi_core",))
    assert f"{bringup.SSICTL} cluster up" in nodes[0].cmds[0][0]


def test_speedups_off_boots_without_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    from qemu.qemu_cmd import NodeConfig, NodeSockets, kernel_append

    def cfg() -> NodeConfig:
        return NodeConfig(node=1, nodes=1, kernel=Path("/k"), sockets=NodeSockets(Path("/s"), 1),
                          console_log=Path("/c"), python_image=None)

    monkeypatch.setenv("SSI_GUEST_SPEEDUPS", "0")
    assert "ssi.nodaemon" in kernel_append(cfg()).split()
    monkeypatch.delenv("SSI_GUEST_SPEEDUPS")
    assert "ssi.nodaemon" not in kernel_append(cfg()).split()
