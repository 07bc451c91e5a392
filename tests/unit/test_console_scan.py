"""The console scanner finds kernel splats and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from qemu.console_scan import format_splats, scan_file, scan_text

SPLATS = {
    "oops": "Oops: 0002 [#1] PREEMPT SMP",
    "bug": "BUG: kernel NULL pointer dereference, address: 0000000000000008",
    "warning": "WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 foo+0x1/0x2",
    "kasan": "BUG: KASAN: use-after-free in bar+0x10/0x20",
    "lockdep": "WARNING: possible circular locking dependency detected",
    "hung-task": "INFO: task kworker/0:1:42 blocked for more than 120 seconds.",
    "soft-lockup": "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:77]",
    "panic": "Kernel panic - not syncing: Attempted to kill init!",
    "gpf": "general protection fault, probably for non-canonical address 0xdead",
    "rcu-stall": "rcu: INFO: rcu_sched self-detected stall on CPU",
}


@pytest.mark.parametrize("line", list(SPLATS.values()), ids=list(SPLATS))
def test_each_splat_kind_is_found(line: str) -> None:
    text = f"booting\n[    1.000] {line}\nnode up\n"
    hits = scan_text(text, node=2)
    assert len(hits) == 1
    assert hits[0].node == 2
    assert hits[0].line_no == 2
    assert line in hits[0].line


def test_other_specific_kinds() -> None:
    assert scan_text("INFO: possible recursive locking detected")[0].kind == "lockdep"
    assert scan_text("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:")[0].kind == (
        "rcu-stall"
    )
    assert scan_text("RCU stall on cpu 0")[0].kind == "rcu-stall"


def test_clean_boot_has_no_hits() -> None:
    clean = (
        "Linux version 6.1.0 (gcc 12)\n"
        "Run /work/main/qemu/guest/init.sh as init process\n"
        "ssi: node 3\n"
        "virtio_net virtio1 eth0: renamed\n"
        "a warning: lowercase is not a splat\n"
    )
    assert scan_text(clean) == []


def test_allow_list_suppresses_matching_lines() -> None:
    text = "WARNING: planted by test\nWARNING: CPU: 0 PID: 1 at x.c:1\n"
    hits = scan_text(text, allow=[r"planted"])
    assert [h.line_no for h in hits] == [2]


def test_scan_file_from_offset(tmp_path: Path) -> None:
    log = tmp_path / "node1.console.log"
    log.write_text("Oops: old\nfine\n")
    hits, end = scan_file(log, node=1)
    assert [h.kind for h in hits] == ["oops"]
    with open(log, "a") as f:
        f.write("fine again\nKernel panic - not syncing: x\npartial BUG:")
    hits, end2 = scan_file(log, node=1, offset=end)
    assert [(h.kind, h.line_no) for h in hits] == [("panic", 4)]
    assert end2 == end + len("fine again\nKernel panic - not syncing: x\n")
    with open(log, "a") as f:
        f.write(" here\n")
    hits, _ = scan_file(log, node=1, offset=end2)
    assert [(h.kind, h.line_no) for h in hits] == [("bug", 5)]
    assert "node1:5: [bug] partial BUG: here" in format_splats(hits)


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert scan_file(tmp_path / "nope.log") == ([], 0)
