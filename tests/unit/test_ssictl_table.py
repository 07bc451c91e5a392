"""ssictl.table: the one table formatter (status, ics stats, ps, clusternode-info)."""

from __future__ import annotations

from ssictl.table import format_table


def test_left_aligned_with_indent_and_no_trailing_blanks() -> None:
    rows = [("MODULE", "STATE", "USED BY"), ("ssi_core", "live", "ics,clms"), ("ics", "-", "")]
    assert format_table(rows, indent="  ") == [
        "  MODULE    STATE  USED BY",
        "  ssi_core  live   ics,clms",
        "  ics       -",
    ]


def test_right_aligned_columns_and_gap() -> None:
    rows = [("NODE", "PID", "COMMAND"), ("1", "65537", "sleep"), ("12", "7", "sh")]
    assert format_table(rows, align=">>", gap=" ") == [
        "NODE   PID COMMAND",
        "   1 65537 sleep",
        "  12     7 sh",
    ]


def test_empty() -> None:
    assert format_table([]) == []
