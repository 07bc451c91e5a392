"""Console output shared by every genmod step (rich, to stderr)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

# soft_wrap: a message stays on its lines whatever the terminal's width (logs, grep, tests).
console = Console(stderr=True, highlight=False, soft_wrap=True)


def step(msg: str) -> None:
    """Announce a build step."""
    console.print(f"[bold cyan]genmod[/]: {escape(msg)}")


def note(msg: str) -> None:
    """Secondary information about a step."""
    console.print(f"  {escape(msg)}")


def warn(msg: str) -> None:
    console.print(f"[bold yellow]warning[/]: {escape(msg)}")


def error(msg: str) -> None:
    console.print(f"[bold red]error[/]: {escape(msg)}")
