"""The debug flavor's guest kernel command line: watchdog thresholds for slow
TCG guests (qemu.paths.DEBUG_KERNEL_ARGS); normal guests do without (host only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qemu import bringup, paths
from qemu.qemu_cmd import NodeConfig, NodeSockets, kernel_append

REPO = Path(__file__).resolve().parents[2]


def _config() -> NodeConfig:
    return NodeConfig(node=1, nodes=3, kernel=Path("/k"), sockets=NodeSockets(Path("/s"), 1),
                      console_log=Path("/c"), python_image=None, busybox=None)


def test_debug_guests_get_scaled_watchdogs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSI_FLAVOR", "debug")
    words = kernel_append(_config()).split()
    factor = paths.flavor("debug").timeout_factor
    # Each threshold is the kernel's default times the flavor's timeout factor.
    assert f"watchdog_thresh={int(10 * factor)}" in words
    assert f"rcupdate.rcu_cpu_stall_timeout={int(21 * factor)}" in words
    assert f"workqueue.watchdog_thresh={int(30 * factor)}" in words
    assert f"sysctl.kernel.hung_task_timeout_secs={int(120 * factor)}" in words
    assert "slub_debug=-" in words
    # Kernel parameters, not init's arguments: before init=.
    init = words.index(f"init={REPO}/qemu/guest/init.sh")
    assert all(words.index(w) < init for w in paths.DEBUG_KERNEL_ARGS)


def test_normal_guests_keep_the_kernels_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSI_FLAVOR", raising=False)
    line = kernel_append(_config())
    for w in paths.DEBUG_KERNEL_ARGS:
        assert w not in line.split()
    assert "watchdog_thresh" not in line and "slub_debug" not in line


class _FakeNode:
    def __init__(self, number: int) -> None:
        self.number = number
        self.cmds: list[tuple[str, float]] = []

    def execute(self, cmd: str, timeout: float = 60.0, *,
                log_as: str | None = None) -> tuple[int, str, str]:
        self.cmds.append((cmd, timeout))
        return 0, json.dumps({"ok": True, "node": self.number}), ""


class _FakeCluster:
    def __init__(self, nodes: list[_FakeNode]) -> None:
        self.nodes = nodes


@pytest.mark.parametrize("name", ["normal", "debug"])
def test_bring_up_waits_for_membership_by_the_flavors_factor(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("SSI_FLAVOR", name)
    nd = _FakeNode(1)
    bringup.bring_up(_FakeCluster([nd]))  # type: ignore[arg-type]
    wait = bringup.DEFAULT_WAIT_UP * paths.flavor(name).timeout_factor
    ((cmd, timeout),) = nd.cmds
    assert f"--wait {wait:g}" in cmd
    assert timeout == 240.0 + wait
