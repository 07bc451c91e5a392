"""ssictl migrate's reading of /sys/kernel/ssi/migration/outcomes (host unit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssictl import migrate

SAMPLE = """\
7 65600 2 0 moved
8 65601 3 95 under seccomp
9 65601 2 16 ptraced or ptracing
garbage line
10 x 2 0 moved
11 65602 2 110
"""


def test_parse_outcomes_skips_malformed_lines() -> None:
    got = migrate.parse_outcomes(SAMPLE)
    assert [o.seq for o in got] == [7, 8, 9, 11]
    assert got[1] == migrate.Outcome(8, 65601, 3, 95, "under seccomp")
    assert got[3].why == ""


def test_refusal_is_the_first_after_the_request() -> None:
    got = migrate.parse_outcomes(SAMPLE)
    assert migrate.refusal(got, 65601, since=7) == got[1]
    assert migrate.refusal(got, 65601, since=8) == got[2]
    assert migrate.refusal(got, 65601, since=9) is None
    assert migrate.refusal(got, 65600, since=0) is None  # it moved: no refusal


def test_missing_file_is_no_outcomes(tmp_path: Path) -> None:
    assert migrate.read_outcomes(tmp_path / "absent") == []


def test_wait_outcome_stops_at_a_refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "outcomes"
    f.write_text("3 65601 2 95 under seccomp\n")
    monkeypatch.setattr(migrate, "OUTCOMES", f)
    monkeypatch.setattr(migrate, "proc_node", lambda pid: 1)
    now, why = migrate.wait_outcome(65601, 2, timeout=5.0, since=2)
    assert now == 1 and why is not None and why.err == 95
    now, why = migrate.wait_outcome(65601, 2, timeout=0.0, since=3)
    assert now == 1 and why is None
