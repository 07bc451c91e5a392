"""The one plain-text table formatter of ``ssictl`` (status, ics stats, ps...)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(
    rows: Sequence[Sequence[str]], *, indent: str = "", align: str = "", gap: str = "  "
) -> list[str]:
    """*rows* (the header first, if any) as lines of aligned columns.

    *align* holds one ``<`` (left, the default) or ``>`` (right) per column; columns
    are separated by *gap*; trailing blanks are dropped. Every row has as many
    cells as the first."""
    if not rows:
        return []
    ncols = len(rows[0])
    widths = [max(len(r[i]) for r in rows) for i in range(ncols)]
    sides = align.ljust(ncols, "<")
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if side == ">" else c.ljust(w)
            for c, w, side in zip(r, widths, sides, strict=True)
        ]
        lines.append((indent + gap.join(cells)).rstrip())
    return lines
