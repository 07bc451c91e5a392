"""Line wrapping in Linux coding style (80 columns, tabs of 8, continuation
lines aligned with the open parenthesis, as checkpatch --strict wants)."""

from __future__ import annotations

from collections.abc import Sequence

WIDTH = 80
TAB = 8


def width(line: str) -> int:
    """Display width of a line with tabs expanded."""
    return len(line.expandtabs(TAB))


def indent_to(col: int) -> str:
    """Whitespace reaching display column ``col`` (tabs, then spaces)."""
    return "\t" * (col // TAB) + " " * (col % TAB)


def call(head: str, args: Sequence[str], tail: str = "", *, sep: str = ",") -> list[str]:
    """``head(arg, arg, ...)tail`` wrapped after separators, continuation lines
    aligned just after the ``(``.  ``head`` may start with tabs."""
    if not args:
        return [f"{head}(){tail}"]
    first = f"{head}("
    col = width(first)
    lines: list[str] = []
    cur = first
    for i, arg in enumerate(args):
        piece = arg + (sep if i < len(args) - 1 else ")" + tail)
        if cur == first:
            cur += piece
        elif width(cur) + 1 + len(piece) <= WIDTH:
            cur += " " + piece
        else:
            lines.append(cur)
            cur = indent_to(col) + piece
    lines.append(cur)
    return lines


def func(head: str, params: Sequence[str], tail: str = "") -> list[str]:
    """A function declarator; no parameters gives ``(void)``."""
    return call(head, params or ["void"], tail)


def cond(keyword_: str, terms: Sequence[str], op: str, indent: int) -> list[str]:
    """``if (a op b op c)`` with line breaks after ``op``, aligned inside the
    parenthesis."""
    lead = "\t" * indent
    return call(f"{lead}{keyword_} ", terms, sep=f" {op}")


def expr(head: str, terms: Sequence[str], op: str, tail: str = ";") -> list[str]:
    """``head t1 op t2 op t3;`` wrapped after ``op``, continuation lines aligned
    with the first term."""
    col = width(head)
    lines: list[str] = []
    cur = head
    for i, t in enumerate(terms):
        piece = t + (f" {op}" if i < len(terms) - 1 else tail)
        if cur == head:
            cur += piece
        elif width(cur) + 1 + len(piece) <= WIDTH:
            cur += " " + piece
        else:
            lines.append(cur)
            cur = indent_to(col) + piece
    lines.append(cur)
    return lines


def defines(pairs: Sequence[tuple[str, str]]) -> list[str]:
    """``#define NAME<tabs>VALUE`` lines with the values aligned on a tab stop."""
    if not pairs:
        return []
    col = max(width(f"#define {n}") for n, _ in pairs) // TAB * TAB + TAB
    out = []
    for n, v in pairs:
        head = f"#define {n}"
        tabs = -(-(col - width(head)) // TAB)
        out.append(head + "\t" * tabs + v)
    return out
