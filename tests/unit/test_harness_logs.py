"""qemu.logs and the host side of Node/Cluster logging: run directories, the
`latest` link, command logs, wait_for_console_text, subtest, dead-QEMU errors.
No QEMU: a stand-in `qemu` script plays a QEMU that dies at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qemu import logs
from qemu.cluster import Cluster
from qemu.logs import CommandLog
from qemu.node import ConsoleTimeout, Node, NodeError
from qemu.paths import LOG_ROOT
from qemu.qemu_cmd import NodeConfig, NodeSockets


def test_run_dir_layout_and_latest_link(tmp_path: Path) -> None:
    first = logs.new_run_dir(tmp_path)
    assert first.parent == tmp_path and first.is_dir()
    assert re.fullmatch(rf"\d{{8}}-\d{{6}}-{os.getpid()}", first.name), first.name
    latest = tmp_path / logs.LATEST
    assert latest.is_symlink() and not os.path.isabs(os.readlink(latest))
    assert latest.resolve() == first.resolve()
    second = logs.new_run_dir(tmp_path)  # same second, same pid: still its own dir
    assert second != first and first.is_dir() and second.is_dir()
    assert latest.resolve() == second.resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp link left"


def test_unique_dirs_never_reuse(tmp_path: Path) -> None:
    made = [logs.make_unique_dir(tmp_path / "c") for _ in range(3)]
    assert [p.name for p in made] == ["c", "c-2", "c-3"]


def test_log_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSI_LOG_ROOT", str(tmp_path / "root"))
    assert logs.log_root() == tmp_path / "root"
    monkeypatch.delenv("SSI_LOG_ROOT")
    assert logs.log_root() == LOG_ROOT


RUN_ONE = """
import sys
from qemu import logs
d = logs.cluster_log_dir("same-name")
(d / "node1.console.log").write_text("console of " + sys.argv[1])
print(d)
"""


def test_concurrent_processes_get_their_own_dirs(tmp_path: Path) -> None:
    env = {**os.environ, "SSI_LOG_ROOT": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", RUN_ONE, str(i)], cwd=root, env=env,
                         stdout=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    dirs = [Path(p.communicate(timeout=60)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({d.parent for d in dirs}) == 4, dirs  # one run dir per process
    for i, d in enumerate(dirs):
        assert d.name == "same-name"
        assert (d / "node1.console.log").read_text() == f"console of {i}"
    assert (tmp_path / "latest").resolve() in {d.parent.resolve() for d in dirs}


def test_command_log_records_everything(tmp_path: Path) -> None:
    log = CommandLog(tmp_path / "node1.commands.log")
    log.command("echo hi; echo err >&2", 0, "hi\n", "err\n", 0.25)
    log.command("printf 'a\\nb'\nexit 3", 3, "", "", 1.5)
    log.command("sleep 99", None, "", "", 2.0, "AgentTimeout: no answer")
    log.note("=== subtest 'x': start")
    text = log.path.read_text()
    assert "$ echo hi; echo err >&2\n" in text
    assert "-> exit 0 in 0.250 s" in text
    assert "    | hi\n" in text and "--- stderr ---\n    | err\n" in text
    assert "$ <<\n    printf 'a\\nb'\n    exit 3\n" in text and "-> exit 3 in 1.500 s" in text
    assert "-> no result: AgentTimeout: no answer in 2.000 s" in text
    assert text.rstrip().endswith("=== subtest 'x': start")
    assert re.match(r"\[\d\d:\d\d:\d\d \+ *\d+\.\d{3}s\] \$ echo hi", text)


def make_node(tmp_path: Path, qemu: str = "qemu-system-x86_64") -> Node:
    extra: dict[str, Any] = {}
    if "python_image" in NodeConfig.__dataclass_fields__:
        extra["python_image"] = None  # no guest image build: nothing boots here
    cfg = NodeConfig(
        node=1, nodes=1, kernel=tmp_path / "bzImage", sockets=NodeSockets(tmp_path, 1),
        console_log=tmp_path / "node1.console.log", qemu=qemu, **extra,
    )
    return Node(cfg, qemu_log=tmp_path / "node1.qemu.log",
                command_log=CommandLog(tmp_path / "node1.commands.log"))


def test_wait_for_console_text(tmp_path: Path) -> None:
    nd = make_node(tmp_path)
    console = nd.cfg.console_log
    console.write_text("old boot: READY-MARK 1\n")
    nd.boot_console_offset = console.stat().st_size

    def later() -> None:
        time.sleep(0.3)
        with open(console, "a") as f:
            f.write("[    1.0] ssi: READY-MARK 2 here\n")

    th = threading.Thread(target=later)
    th.start()
    m = nd.wait_for_console_text(r"READY-MARK (\d)", timeout=10)
    th.join()
    assert m.group(1) == "2"  # the text of an earlier boot does not count
    assert nd.wait_for_console_text(r"READY-MARK (\d)", timeout=1, since=0).group(1) == "1"
    with pytest.raises(ConsoleTimeout) as ei:
        nd.wait_for_console_text("never printed", timeout=0.3)
    msg = str(ei.value)
    assert "node1: no console text matching 'never printed' in 0.3 s" in msg
    assert str(console) in msg and "READY-MARK 2 here" in msg  # the tail


def test_dead_qemu_names_its_logs(tmp_path: Path) -> None:
    fake = tmp_path / "fake-qemu"
    fake.write_text("#!/bin/sh\necho 'qemu: could not open kernel file' >&2\nexit 1\n")
    fake.chmod(0o755)
    nd = make_node(tmp_path, qemu=str(fake))
    nd.spawn()
    with pytest.raises(NodeError) as ei:
        nd.wait_ready(timeout=10)
    msg = str(ei.value)
    first = msg.splitlines()[0]
    assert "node1: QEMU is not running (exit 1)" in first
    assert f"qemu log: {tmp_path / 'node1.qemu.log'}" in first
    assert f"console log: {tmp_path / 'node1.console.log'}" in first
    assert "qemu: could not open kernel file" in msg
    with pytest.raises(NodeError, match="QEMU is not running"):
        nd.execute("true")
    assert "$ true\n" in (tmp_path / "node1.commands.log").read_text()
    assert "no result: NodeError: node1: QEMU is not running" in (
        tmp_path / "node1.commands.log").read_text()


def test_subtest_logs_and_names_the_failure(tmp_path: Path) -> None:
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"")
    c = Cluster(nodes=1, kernel=kernel, log_dir=tmp_path)
    c.nodes = [make_node(tmp_path)]
    with c.subtest("first step"):
        pass
    with pytest.raises(KeyError) as ei, c.subtest("second step"):
        raise KeyError("boom")
    assert any("in subtest 'second step'" in n for n in ei.value.__notes__)
    text = (tmp_path / "node1.commands.log").read_text()
    assert re.search(r"=== subtest 'first step': start\n.*"
                     r"=== subtest 'first step': ok in \d+\.\d{3} s\n", text)
    assert re.search(r"=== subtest 'second step': FAILED after \d+\.\d{3} s: KeyError", text)
