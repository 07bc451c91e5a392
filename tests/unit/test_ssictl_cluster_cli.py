"""``ssictl cluster|ics|clusternode-*`` and the table/key files,
on the host against a fake binding (the ``abi`` functions are replaced)."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import abi
from abi import errors as abi_errors
from abi.cluster import Membership, NodeInfo
from ssictl import cluster_status, clusterconf
from ssictl import ics as ics_cmd
from ssictl import modules as modules_cmd
from ssictl.cli import app
from ssictl.output import CLIError

runner = CliRunner()
KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
KEY = bytes.fromhex(KEY_HEX)
PEERS3 = ("--peer", "1=169.254.77.1", "--peer", "2=169.254.77.2", "--peer", "3=169.254.77.3")


def run(*args: str, input: str | bytes | None = None) -> Any:
    return runner.invoke(app, list(args), input=input)


def as_json(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(autouse=True)
def _no_ssi_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(abi_errors, "SSI_SYSFS", tmp_path / "no_ssi")


# --------------------------------------------------------------------------- table files


def test_parse_table() -> None:
    text = "# lab\n\n1 10.0.0.1\n2\t10.0.0.2   # rack 2\n  3   10.0.0.3  \n"
    assert clusterconf.parse_table(text, "t") == {1: "10.0.0.1", 2: "10.0.0.2", 3: "10.0.0.3"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 10.0.0.1\n2\n", "t:2: expected `NODE ADDRESS`, got '2'"),
        ("1 10.0.0.1 extra\n", "t:1: expected `NODE ADDRESS`, got '1 10.0.0.1 extra'"),
        ("one 10.0.0.1\n", "t:1: node 'one' is not a number"),
        ("0 10.0.0.1\n", "t:1: node 0 is out of range"),
        ("64 10.0.0.1\n", "t:1: node 64 is out of range"),
        ("1 10.0.0\n", "t:1: '10.0.0' is not an IPv4 address (expected a.b.c.d, each 0..255)"),
        (
            "1 10.0.0.256\n",
            "t:1: '10.0.0.256' is not an IPv4 address (expected a.b.c.d, each 0..255)",
        ),
        ("1 0.0.0.0\n", "t:1: 0.0.0.0 is not a usable node address"),
        ("1 224.0.0.1\n", "t:1: 224.0.0.1 is not a usable node address (multicast or broadcast)"),
        (
            "1 010.0.0.1\n",
            "t:1: '010.0.0.1' is not an IPv4 address (expected a.b.c.d, each 0..255)",
        ),
        ("1 10.0.0.1\n# x\n1 10.0.0.2\n", "t:3: node 1 is listed twice (first on line 1)"),
        (
            "1 10.0.0.1\n2 10.0.0.1\n",
            "t:2: nodes 1 and 2 have the same address 10.0.0.1 (on line 1)",
        ),
        ("# nothing\n\n", "t: the cluster table is empty"),
    ],
)
def test_parse_table_errors(text: str, message: str) -> None:
    with pytest.raises(CLIError) as ei:
        clusterconf.parse_table(text, "t")
    assert ei.value.message == message
    assert ei.value.errno == errno.EINVAL and ei.value.hint


def test_parse_peers() -> None:
    assert clusterconf.parse_peers(["2=10.0.0.2", "1 = 10.0.0.1"]) == {
        2: "10.0.0.2",
        1: "10.0.0.1",
    }


@pytest.mark.parametrize(
    ("peers", "message"),
    [
        (["1:10.0.0.1"], "--peer 1:10.0.0.1: expected NODE=ADDRESS"),
        (["x=10.0.0.1"], "--peer x=10.0.0.1: node 'x' is not a number"),
        (["0=10.0.0.1"], "--peer 0=10.0.0.1: node 0 is out of range"),
        (["64=10.0.0.1"], "--peer 64=10.0.0.1: node 64 is out of range"),
        (["-1=10.0.0.1"], "--peer -1=10.0.0.1: node '-1' is not a number"),
        (
            ["1=10.0.0"],
            "--peer 1=10.0.0: '10.0.0' is not an IPv4 address (expected a.b.c.d, each 0..255)",
        ),
        (["1=::1"], "--peer 1=::1: '::1' is not an IPv4 address (expected a.b.c.d, each 0..255)"),
        (
            ["1=10.0.0.1", "1=10.0.0.2"],
            "--peer 1=10.0.0.2: node 1 is listed twice (first in --peer 1=10.0.0.1)",
        ),
        (
            ["1=10.0.0.1", "2=10.0.0.1"],
            "--peer 2=10.0.0.1: nodes 1 and 2 have the same address 10.0.0.1 "
            "(in --peer 1=10.0.0.1)",
        ),
    ],
)
def test_parse_peers_errors(peers: list[str], message: str) -> None:
    with pytest.raises(CLIError) as ei:
        clusterconf.parse_peers(peers)
    assert ei.value.message == message
    assert ei.value.errno == errno.EINVAL and ei.value.hint


def test_choose_table(tmp_path: Path) -> None:
    exactly_one = "exactly one of --table FILE and --peer NODE=ADDRESS"
    with pytest.raises(CLIError, match=exactly_one):
        clusterconf.choose_table(None, None)
    with pytest.raises(CLIError, match=exactly_one):
        clusterconf.choose_table(None, [])
    with pytest.raises(CLIError, match=exactly_one):
        clusterconf.choose_table("x", ["1=10.0.0.1"])
    f = tmp_path / "t"
    f.write_text("2 10.0.0.2\n")
    assert clusterconf.choose_table(str(f), None) == ({2: "10.0.0.2"}, str(f))
    assert clusterconf.choose_table(None, ["1=10.0.0.1"]) == ({1: "10.0.0.1"}, "--peer")
    with pytest.raises(CLIError, match=r"cannot read the table file .*No such file"):
        clusterconf.read_table(str(tmp_path / "missing"))


def test_nodes_option_is_gone(fake: FakeCluster, keyfile: Path) -> None:
    """ssictl does not know the QEMU harness's address plan: no --nodes N."""
    for cmd in ("setup", "up"):
        r = run("cluster", cmd, "--nodes", "3", "--key-file", str(keyfile))
        assert r.exit_code == 2 and "No such option: --nodes" in r.output
    assert "169.254.77" not in Path(clusterconf.__file__).read_text()


# --------------------------------------------------------------------------- key files


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (KEY_HEX.encode(), KEY),
        (KEY_HEX.upper().encode() + b"\n", KEY),
        (b"  " + KEY_HEX[:32].encode() + b"\n" + KEY_HEX[32:].encode() + b"\n", KEY),
        (b"0123456789abcdef" * 2, bytes.fromhex("0123456789abcdef" * 2)),
        (bytes(range(16)), bytes(range(16))),
        (b"a passphrase that is not hex!\n", b"a passphrase that is not hex!\n"),
        (b"g" * 64, b"g" * 64),
    ],
)
def test_parse_key(data: bytes, key: bytes) -> None:
    assert clusterconf.parse_key(data, "k") == key


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the key file k is empty"),
        (b" \n\t", "the key file k holds only whitespace"),
        (b"abc", "the key file k holds an odd number of hex digits (3)"),
        (b"00" * 15, "the key in k is too short (30 hex digits = 15 bytes)"),
        (b"00" * 65, "the key in k is too long (130 hex digits = 65 bytes)"),
        (b"short key!", "the key in k is too short (10 raw bytes)"),
        (b"x" * 65, "the key in k is too long (65 raw bytes)"),
    ],
)
def test_parse_key_errors(data: bytes, message: str) -> None:
    with pytest.raises(CLIError) as ei:
        clusterconf.parse_key(data, "k")
    assert ei.value.message == message
    assert ei.value.errno == errno.EINVAL
    assert "ssictl cluster keygen" in ei.value.hint


def test_read_key_file_and_permissions(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text(KEY_HEX + "\n")
    f.chmod(0o600)
    assert clusterconf.read_key(str(f)) == (KEY, [])
    f.chmod(0o644)
    key, warnings = clusterconf.read_key(str(f))
    assert key == KEY
    assert warnings == [f"the key file {f} is readable by other users (mode 0644): chmod 600 {f}"]
    big = tmp_path / "big"
    big.write_bytes(b"0" * 5000)
    with pytest.raises(CLIError, match="larger than 4096 bytes"):
        clusterconf.read_key(str(big))
    with pytest.raises(CLIError, match=r"cannot read the key file .*No such file"):
        clusterconf.read_key(str(tmp_path / "missing"))
    with pytest.raises(CLIError, match="is not a regular file"):
        clusterconf.read_key(str(tmp_path))


def test_keygen(tmp_path: Path) -> None:
    f = tmp_path / "k"
    r = run("cluster", "keygen", str(f), "--json")
    assert r.exit_code == 0, r.output
    assert as_json(r) == {"ok": True, "path": str(f), "key_bytes": 32}
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    key, warnings = clusterconf.read_key(str(f))
    assert len(key) == 32 and warnings == []
    assert key.hex() not in r.stdout
    r = run("cluster", "keygen", str(f))
    assert r.exit_code == 1 and "exists already" in r.stderr and "--force" in r.stderr
    r = run("cluster", "keygen", str(f), "--force", "--bytes", "64")
    assert r.exit_code == 0 and r.stdout.startswith("wrote a 64-byte cluster key")
    assert len(clusterconf.read_key(str(f))[0]) == 64
    r = run("cluster", "keygen", str(f), "--force", "--bytes", "8")
    assert r.exit_code == 1 and "--bytes 8 is out of range" in r.stderr


# --------------------------------------------------------------------------- fake binding


def info_for(node: int, state: str = "UP") -> NodeInfo:
    return NodeInfo(
        node=node,
        state=state,
        addr=f"169.254.77.{node}",
        cpus=1,
        mem_total_kb=250_000,
        mem_free_kb=200_000,
        load=(0.5, 0.25, 0.0),
        incarnation=node,
        since=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        transition=4,
    )


class FakeCluster:
    """The abi functions ssictl calls, with a scripted membership."""

    def __init__(self, me: int = 2) -> None:
        self.me = me
        self.calls: list[tuple[str, Any]] = []
        self.views: list[Membership] = [self.view({1: "UP", 2: "UP", 3: "UP"}, 4)]
        self.polls = 0
        self.name = "lab"
        self.fail: dict[str, Exception] = {}

    def view(self, states: dict[int, str], transition: int, master: int = 1) -> Membership:
        up = sum(1 for s in states.values() if s == "UP")
        return Membership(transition, master, self.me, up * 2 > len(states), len(states), states)

    def _check(self, name: str) -> None:
        if name in self.fail:
            raise self.fail[name]

    def clusternode_num(self) -> int:
        self._check("clusternode_num")
        return self.me

    def cluster_set_key(self, key: bytes) -> None:
        self._check("cluster_set_key")
        self.calls.append(("key", bytes(key)))

    def cluster_set_table(self, table: dict[int, str]) -> None:
        self._check("cluster_set_table")
        self.calls.append(("table", dict(table)))

    def cluster_set_name(self, name: str) -> None:
        self._check("cluster_set_name")
        self.calls.append(("name", name))

    def cluster_name(self) -> str:
        self._check("cluster_name")
        return self.name

    def cluster_membership(self) -> Membership:
        self._check("cluster_membership")
        view = self.views[min(self.polls, len(self.views) - 1)]
        self.polls += 1
        return view

    def clusternode_info(self, node: int) -> NodeInfo:
        self._check("clusternode_info")
        states = self.views[-1].states
        if node == 3 and states.get(3) != "UP":
            raise abi_errors.from_errno(errno.EHOSTDOWN, "ssisys(SSISYS_CLUSTERNODE_INFO)", node=3)
        return info_for(node, states.get(node, "NEVERUP"))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fc = FakeCluster()
    for name in (
        "clusternode_num",
        "cluster_set_key",
        "cluster_set_table",
        "cluster_set_name",
        "cluster_name",
        "cluster_membership",
        "clusternode_info",
    ):
        monkeypatch.setattr(abi, name, getattr(fc, name))
    monkeypatch.setattr("ssictl.cluster_status.time.sleep", lambda s: None)
    return fc


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    f = tmp_path / "key"
    f.write_text(KEY_HEX + "\n")
    f.chmod(0o600)
    return f


# --------------------------------------------------------------------------- setup / up


def test_setup_sets_key_then_table(fake: FakeCluster, keyfile: Path) -> None:
    r = run("cluster", "setup", *PEERS3, "--key-file", str(keyfile))
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "node 2: cluster key set (32 bytes)",
        "node 2: cluster table set (3 nodes: 1=169.254.77.1, 2=169.254.77.2, 3=169.254.77.3)",
    ]
    assert fake.calls == [
        ("key", KEY),
        ("table", {1: "169.254.77.1", 2: "169.254.77.2", 3: "169.254.77.3"}),
    ]
    assert KEY_HEX not in r.output


def test_setup_json_from_stdin_with_table_and_name(fake: FakeCluster, tmp_path: Path) -> None:
    t = tmp_path / "table"
    t.write_text("2 10.0.0.2\n5 10.0.0.5\n")
    r = run(
        "cluster", "setup", "--table", str(t), "--key-file", "-", "--name", "lab", "--json",
        input=KEY_HEX,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert as_json(r) == {
        "ok": True,
        "node": 2,
        "key_bytes": 32,
        "table": {"2": "10.0.0.2", "5": "10.0.0.5"},
        "table_source": str(t),
        "name": "lab",
        "warnings": [],
    }
    assert fake.calls[-1] == ("name", "lab")
    assert KEY_HEX not in r.stdout


def test_setup_refuses_a_table_without_this_node(fake: FakeCluster, tmp_path: Path) -> None:
    t = tmp_path / "table"
    t.write_text("1 10.0.0.1\n3 10.0.0.3\n")
    r = run("cluster", "setup", "--table", str(t), "--key-file", "-", input=KEY_HEX)
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        f"ssictl: error: this node (node 2) is not in the cluster table ({t}: nodes 1, 3)",
        "  fix: add a line `2 ADDRESS` for this node, or run setup on a node of the table",
    ]
    assert fake.calls == []


def test_setup_short_key_changes_nothing(fake: FakeCluster) -> None:
    r = run("cluster", "setup", *PEERS3, "--key-file", "-", "--json", input="abcd")
    assert r.exit_code == 1
    err = as_json(r)["error"]
    assert err["errno_name"] == "EINVAL"
    assert err["message"] == "the key in <stdin> is too short (4 hex digits = 2 bytes)"
    assert fake.calls == []


def test_setup_without_ics_says_load_it(
    fake: FakeCluster, keyfile: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sysfs = tmp_path / "ssi"
    sysfs.mkdir()
    proc = tmp_path / "modules"
    proc.write_text("ssi_core 16384 0 - Live 0x0\n")
    monkeypatch.setattr(abi_errors, "SSI_SYSFS", sysfs)
    monkeypatch.setattr(abi_errors, "PROC_MODULES", proc)
    fake.fail["cluster_set_key"] = abi_errors.from_errno(
        errno.ENOSYS, "ssisys(SSISYS_ICS_SET_KEY)", syscall="ssisys", module="ics"
    )
    r = run("cluster", "setup", *PEERS3, "--key-file", str(keyfile))
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        "ssictl: error: ssisys(SSISYS_ICS_SET_KEY): the ics module is not loaded (ENOSYS)",
        "  fix: load it with `ssictl modules load ics` "
        "(`ssictl modules status` shows what is loaded)",
    ]


def test_setup_argument_errors(fake: FakeCluster, keyfile: Path) -> None:
    r = run("cluster", "setup", "--key-file", str(keyfile))
    assert r.exit_code == 1 and "give exactly one of --table FILE and --peer" in r.stderr
    r = run("cluster", "setup", *PEERS3)
    assert r.exit_code != 0 and "--key-file" in r.output
    r = run("cluster", "setup", *PEERS3, "--key-file", str(keyfile), "--name", "a\tb")
    assert r.exit_code == 1 and "other than printable ASCII" in r.stderr
    assert fake.calls == []  # a bad name is caught before the key or table is set


@pytest.fixture
def fake_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    loads: list[Any] = []

    def find(directory: str | None) -> tuple[Path, dict[str, Any]]:
        return tmp_path, {"ssi_core": None, "ics": None, "clms": None}

    def load(d: Path, mods: dict[str, Any], names: list[str] | None, as_json: bool) -> Any:
        loads.append(names)
        return [{"name": n, "action": "loaded"} for n in names or sorted(mods)]

    monkeypatch.setattr(modules_cmd, "find_modules", find)
    monkeypatch.setattr(modules_cmd, "load_modules", load)
    return loads


def test_up_loads_then_sets_up_then_waits(
    fake: FakeCluster, fake_modules: list[Any], keyfile: Path
) -> None:
    fake.views = [
        fake.view({1: "UP", 2: "UP", 3: "NEVERUP"}, 2),
        fake.view({1: "UP", 2: "UP", 3: "COMINGUP"}, 3),
        fake.view({1: "UP", 2: "UP", 3: "UP"}, 4),
    ]
    r = run(
        "cluster", "up", *PEERS3, "--key-file", str(keyfile),
        "--modules", "ssi_core, ics,clms", "--wait", "30", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    data = as_json(r)
    assert fake_modules == [["ssi_core", "ics", "clms"]]
    assert [m["name"] for m in data["modules"]] == ["ssi_core", "ics", "clms"]
    assert data["node"] == 2 and data["key_bytes"] == 32
    assert data["membership"]["transition"] == 4
    assert data["membership"]["states"] == {"1": "UP", "2": "UP", "3": "UP"}
    assert fake.polls == 3


def test_up_wait_times_out_with_what_it_saw(
    fake: FakeCluster, fake_modules: list[Any], keyfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.views = [fake.view({1: "UP", 2: "UP", 3: "DOWN"}, 6)]
    clock = iter(range(0, 1000, 1))
    monkeypatch.setattr("ssictl.cluster_setup.time.monotonic", lambda: float(next(clock)))
    monkeypatch.setattr("ssictl.cluster_setup.time.sleep", lambda s: None)
    r = run("cluster", "up", *PEERS3, "--key-file", str(keyfile), "--wait", "5")
    assert r.exit_code == 1
    assert (
        "ssictl: error: after 5 s, node(s) 3 not UP (node 2 sees: 1=UP, 2=UP, 3=DOWN; "
        "transition 6, master 1)"
    ) in r.stderr
    assert "ssictl ics stats" in r.stderr
    # A bad key file stops `up` before any module is loaded.
    r = run("cluster", "up", *PEERS3, "--key-file", "-", input="00")
    assert r.exit_code == 1 and len(fake_modules) == 1


# --------------------------------------------------------------------------- status


def test_status_human(fake: FakeCluster) -> None:
    fake.views = [fake.view({1: "UP", 2: "UP", 3: "DOWN"}, 9)]
    r = run("cluster", "status")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == (
        "cluster lab: node 2's view, transition 9, master 1, quorum yes, 2/3 nodes UP"
    )
    assert lines[1].split() == ["NODE", "STATE", "ADDRESS", "CPUS", "LOAD", "MEM", "MiB",
                                "FREE/TOTAL", "SINCE"]  # fmt: skip
    assert lines[2].split()[:7] == ["1", "UP", "169.254.77.1", "1", "0.50", "0.25", "0.00"]
    assert lines[2].split()[7] == "195/244"
    assert "ago)" in lines[2]
    assert lines[3].split()[:3] == ["2*", "UP", "169.254.77.2"]
    assert lines[4].split() == ["3", "DOWN", "-", "-", "-", "-", "-"]
    assert lines[5].startswith("warning: node 3: ssisys(SSISYS_CLUSTERNODE_INFO): node 3 is not")
    assert lines[-1] == "(* = this node)"


def test_status_json(fake: FakeCluster) -> None:
    data = as_json(run("cluster", "status", "--json"))
    assert data["ok"] is True and data["name"] == "lab"
    assert data["membership"] == {
        "transition": 4,
        "master": 1,
        "self": 2,
        "quorum": True,
        "nr_configured": 3,
        "states": {"1": "UP", "2": "UP", "3": "UP"},
    }
    assert [n["node"] for n in data["nodes"]] == [1, 2, 3]
    assert data["nodes"][0]["since"] == "2026-01-02T03:04:05+00:00"


def test_status_without_clms(fake: FakeCluster) -> None:
    fake.fail["cluster_membership"] = abi_errors.from_errno(
        errno.ENOSYS, "ssisys(SSISYS_CLUSTER_MEMBERSHIP)", syscall="ssisys", module="clms"
    )
    r = run("cluster", "status")
    assert r.exit_code == 1
    assert "(it needs the clms module) (ENOSYS)" in r.stderr
    assert "fix: load the modules with `ssictl modules load`" in r.stderr


def test_format_ago() -> None:
    assert [cluster_status.format_ago(s) for s in (-3, 5, 75, 3600, 7300, 200000)] == [
        "0s", "5s", "1m15s", "1h00m", "2h01m", "2d07h",
    ]  # fmt: skip


def test_describe_change() -> None:
    fc = FakeCluster()
    a = fc.view({1: "UP", 2: "UP", 3: "UP"}, 4)
    b = fc.view({1: "DOWN", 2: "UP", 3: "DOWN", 4: "COMINGUP"}, 6, master=2)
    assert cluster_status.describe_change(a, b) == [
        "node 1 UP->DOWN",
        "node 3 UP->DOWN",
        "node 4 NEVERUP->COMINGUP",
        "master 1->2",
        "quorum LOST",
    ]


def test_watch_json_lines(fake: FakeCluster) -> None:
    fake.views = [
        fake.view({1: "UP", 2: "UP", 3: "UP"}, 4),
        fake.view({1: "UP", 2: "UP", 3: "UP"}, 4),
        fake.view({1: "UP", 2: "UP", 3: "GOINGDOWN"}, 5),
        fake.view({1: "UP", 2: "UP", 3: "DOWN"}, 6),
    ]
    r = run("cluster", "status", "--watch", "--count", "2", "--json")
    assert r.exit_code == 0, r.output
    events = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [e["event"] for e in events] == ["initial", "change", "change", "end"]
    assert events[1]["changes"] == ["node 3 UP->GOINGDOWN"]
    assert (events[1]["from_transition"], events[1]["transition"]) == (4, 5)
    assert events[2]["changes"] == ["node 3 GOINGDOWN->DOWN"]
    assert events[3]["changes"] == 2 and events[3]["reason"] == "count"
    assert all("time" in e for e in events)


def test_watch_human_and_timeout(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.views = [
        fake.view({1: "UP", 2: "UP", 3: "UP"}, 4),
        fake.view({1: "UP", 2: "UP", 3: "DOWN"}, 5, master=1),
    ]
    clock = iter(range(0, 1000))
    monkeypatch.setattr("ssictl.cluster_status.time.monotonic", lambda: float(next(clock)))
    r = run("cluster", "status", "--watch", "--timeout", "3")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(" node 2 watching: transition 4, master 1, quorum yes: 1=UP 2=UP 3=UP")
    assert lines[1].endswith(
        " transition 4->5: node 3 UP->DOWN | transition 5, master 1, quorum yes: 1=UP 2=UP 3=DOWN"
    )
    datetime.fromisoformat(lines[1].split()[0])  # a timestamp leads every line
    # --count not reached before --timeout: an error.
    fake.polls = 1
    clock2 = iter(range(0, 1000))
    monkeypatch.setattr("ssictl.cluster_status.time.monotonic", lambda: float(next(clock2)))
    r = run("cluster", "status", "--watch", "--count", "3", "--timeout", "4")
    assert r.exit_code == 1
    assert "ssictl: error: saw 0 of 3 membership change(s) in 4 s" in r.stderr


def test_watch_stops_on_ctrl_c(fake: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(s: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ssictl.cluster_status.time.sleep", interrupt)
    r = run("cluster", "status", "--watch", "--json")
    assert r.exit_code == 130, r.output  # the end event is written, then Ctrl-C's status
    events = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert events[-1]["reason"] == "interrupt"
    assert r.stderr == "ssictl: interrupted\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "2"], "--count and --timeout go with --watch"),
        (["--watch", "--count", "0"], "--count 0 is out of range"),
        (["--watch", "--timeout", "0"], "--timeout 0 is out of range"),
        (["--watch", "--interval", "0.001"], "--interval 0.001 is out of range"),
    ],
)
def test_status_option_errors(fake: FakeCluster, args: list[str], message: str) -> None:
    r = run("cluster", "status", *args)
    assert r.exit_code == 1 and message in r.stderr


# --------------------------------------------------------------------------- short forms


def test_clusternode_num(fake: FakeCluster) -> None:
    assert run("clusternode-num").stdout == "2\n"
    assert as_json(run("clusternode-num", "--json")) == {"ok": True, "node": 2}


def test_cluster_membership(fake: FakeCluster) -> None:
    fake.views = [fake.view({1: "UP", 2: "UP", 3: "KCLEANUP"}, 7)]
    r = run("cluster-membership")
    assert (r.exit_code, r.stdout) == (0, "1: UP\n2: UP\n3: KCLEANUP\n")
    data = as_json(run("cluster-membership", "--json"))
    assert data["states"] == {"1": "UP", "2": "UP", "3": "KCLEANUP"} and data["transition"] == 7


def test_clusternode_avail_exit_codes(fake: FakeCluster) -> None:
    fake.views = [fake.view({1: "UP", 2: "UP", 3: "DOWN"}, 7)]
    r = run("clusternode-avail", "1")
    assert (r.exit_code, r.stdout) == (0, "node 1: UP\n")
    r = run("clusternode-avail", "3")
    assert (r.exit_code, r.stdout) == (1, "node 3: DOWN (not available)\n")
    r = run("clusternode-avail", "9", "--json")
    assert r.exit_code == 1
    assert as_json(r) == {"ok": True, "node": 9, "avail": False, "state": "NEVERUP",
                          "transition": 7}  # fmt: skip
    r = run("clusternode-avail", "64")
    assert r.exit_code == 2 and "node 64 is out of range" in r.stderr
    fake.fail["cluster_membership"] = abi_errors.from_errno(
        errno.ENOSYS, "ssisys(SSISYS_CLUSTER_MEMBERSHIP)", syscall="ssisys", module="clms"
    )
    r = run("clusternode-avail", "1")
    assert r.exit_code == 2 and "ENOSYS" in r.stderr
    r = run("clusternode-avail", "1", "--json")
    assert r.exit_code == 2 and as_json(r)["ok"] is False


def test_clusternode_info(fake: FakeCluster) -> None:
    r = run("clusternode-info", "1")
    assert r.exit_code == 0, r.output
    rows = dict(ln.split(None, 1) for ln in r.stdout.splitlines())
    assert rows["node"] == "1" and rows["state"] == "UP" and rows["address"] == "169.254.77.1"
    assert rows["memory"] == "200000 kB free of 250000 kB"
    assert rows["load"] == "0.50 0.25 0.00"
    assert rows["since"].endswith("ago)")
    data = as_json(run("clusternode-info", "2", "--json"))
    assert (
        data["node"] == 2
        and data["since_epoch"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    )
    r = run("clusternode-info", "0")
    assert r.exit_code == 1 and "node 0 is out of range" in r.stderr


# --------------------------------------------------------------------------- ics


@pytest.fixture
def ics_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    ssi = tmp_path / "ssi"
    ics = ssi / "ics"
    ics.mkdir(parents=True)
    (ssi / "node").write_text("2\n")
    (ics / "peers").write_text(
        "1 169.254.77.1 prio=1 bulk=0\n2 169.254.77.2 prio=0 bulk=0\n3 169.254.77.3 prio=1 bulk=1\n"
    )
    (ics / "key_set").write_text("1\n")
    for i, c in enumerate(("frames_rx", "frames_tx", "auth_ok", "dropped_bad_header")):
        (ics / c).write_text(f"{i * 10}\n")
    monkeypatch.setattr(ics_cmd, "SSI_SYSFS", ssi)
    monkeypatch.setattr(ics_cmd, "ICS_SYSFS", ics)
    monkeypatch.setattr(ics_cmd, "ICS_TEST_SYSFS", ssi / "ics_test")
    return ssi


def test_ics_stats(ics_sysfs: Path) -> None:
    data = as_json(run("ics", "stats", "--json"))
    assert data == {
        "ok": True,
        "node": 2,
        "key_set": True,
        "peers": [
            {"node": 1, "addr": "169.254.77.1", "prio": True, "bulk": False},
            {"node": 2, "addr": "169.254.77.2", "prio": False, "bulk": False},
            {"node": 3, "addr": "169.254.77.3", "prio": True, "bulk": True},
        ],
        "counters": {"auth_ok": 20, "dropped_bad_header": 30, "frames_rx": 0, "frames_tx": 10},
    }
    (ics_sysfs / "ics_test").mkdir()
    (ics_sysfs / "ics_test" / "pings").write_text("7\n")
    r = run("ics", "stats")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "ics on node 2: key set, 3 peer(s)"
    assert lines[1].split() == ["PEER", "ADDRESS", "PRIO", "BULK"]
    assert lines[2].split() == ["1", "169.254.77.1", "connected", "-"]
    assert lines[3].split() == ["2*", "169.254.77.2", "(this", "node)"]
    assert "  frames_tx           10" in lines
    assert lines[-1] == "ics_test pings: 7"


def test_ics_stats_errors(ics_sysfs: Path) -> None:
    (ics_sysfs / "ics" / "peers").write_text("")
    (ics_sysfs / "ics" / "key_set").write_text("0\n")
    r = run("ics", "stats")
    assert "NO KEY (run `ssictl cluster setup`), 0 peer(s)" in r.stdout
    assert "no peers: the cluster table is not set" in r.stdout
    for p in (ics_sysfs / "ics").iterdir():
        p.unlink()
    (ics_sysfs / "ics").rmdir()
    r = run("ics", "stats")
    assert r.exit_code == 1
    assert r.stderr.splitlines() == [
        f"ssictl: error: the ics module is not loaded ({ics_sysfs / 'ics'} is absent)",
        "  fix: load it with `ssictl modules load ics`",
    ]
    (ics_sysfs / "node").unlink()
    ics_sysfs.rmdir()
    r = run("ics", "stats", "--json")
    assert r.exit_code == 1 and "no SSI module is loaded" in as_json(r)["error"]["message"]


def test_ics_test(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    def fake_test(node: int, op: str, count: int, size: int, timeout_ms: int) -> Any:
        seen.append((node, op, count, size, timeout_ms))
        from abi.cluster import IcsTestResult

        errs = 1 if count == 7 else 0
        return IcsTestResult(node, op, count, size, 5_000_000, errs, -110 if errs else 0)

    monkeypatch.setattr(abi, "ics_test", fake_test)
    r = run("ics", "test", "3", "--op", "echo", "--size", "128", "--count", "50")
    assert r.exit_code == 0, r.output
    assert r.stdout == (
        "50 echo call(s) to node 3 (128 bytes): 5.0 ms, 100.0 us/call, 0 error(s)\n"
    )
    assert seen == [(3, "echo", 50, 128, 1000)]
    r = run("ics", "test", "3", "--count", "7", "--json")
    assert r.exit_code == 1
    assert as_json(r)["last_error_name"] == "ETIMEDOUT"

    def bad(*a: Any) -> Any:
        raise ValueError("unknown ICS test op 'x': pick null, echo, ping")

    monkeypatch.setattr(abi, "ics_test", bad)
    r = run("ics", "test", "3", "--op", "x")
    assert r.exit_code == 1 and "unknown ICS test op 'x'" in r.stderr


# --------------------------------------------------------------------------- CLI plumbing


@pytest.mark.parametrize(
    "cmd",
    [
        ["cluster", "setup"],
        ["cluster", "up"],
        ["cluster", "status"],
        ["cluster", "keygen"],
        ["clusternode-num"],
        ["cluster-membership"],
        ["clusternode-info"],
        ["clusternode-avail"],
        ["ics", "stats"],
        ["ics", "test"],
    ],
)
def test_every_cluster_command_has_json(cmd: list[str]) -> None:
    r = run(*cmd, "--help")
    assert r.exit_code == 0 and "--json" in r.stdout, cmd


def test_a_non_number_is_a_usage_error() -> None:
    r = run("clusternode-info", "x")
    assert r.exit_code == 2  # typer itself reports a non-number


def test_import_leaves_the_cluster_binding_unloaded() -> None:
    code = (
        "import sys, ssictl.cli\n"
        "assert 'abi.cluster' not in sys.modules\n"
        "import abi\n"
        "assert abi.clusternode_avail.__module__ == 'abi.cluster'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_console_script_avail_on_a_kernel_without_ssi() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ssictl", "clusternode-avail", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    if "ENOSYS" not in r.stderr:
        pytest.skip("this kernel serves ssisys")
    assert r.returncode == 2 and "Traceback" not in r.stderr
