"""Output and error reporting shared by every ``ssictl`` command.

Commands print a human form or, with ``--json``, one JSON document on stdout;
progress lines go to stderr. An
expected failure is a :class:`CLIError` (or an :class:`abi.errors.SSIError`): it is
reported as "what is wrong" plus "how to fix it" (on stderr, or as
``{"ok": false, "error": {...}}`` on stdout with ``--json``) and the exit status is
non-zero; no traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from abi.errors import SSIError, errno_name
from abi.header import HeaderError

INTERRUPTED_EXIT = 130  # 128 + SIGINT: what a shell reports for a command killed by Ctrl-C

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


class CLIError(Exception):
    """An expected failure: *message* says what is wrong, *hint* how to fix it.

    *details* are extra lines (e.g. kernel log), *data* extra JSON fields (e.g. the
    per-module results gathered before the failure)."""

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        errno: int | None = None,
        details: list[str] | None = None,
        data: dict[str, Any] | None = None,
        exit_code: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.errno = errno
        self.details = details or []
        self.data = data or {}
        self.exit_code = exit_code

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "hint": self.hint}
        if self.errno is not None:
            err["errno"] = self.errno
            err["errno_name"] = errno_name(self.errno)
        if self.details:
            err["details"] = self.details
        return {"ok": False, **self.data, "error": err}


def from_ssi_error(e: SSIError) -> CLIError:
    message = str(e)
    if e.hint and message.endswith(": " + e.hint):
        message = message[: -len(e.hint) - 2]
    return CLIError(message, e.hint, errno=e.errno)


def print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


def emit(data: dict[str, Any], human: str | Callable[[], str], as_json: bool) -> None:
    """Print the result: *data* as JSON (``ok: true`` added) or the *human* text."""
    if as_json:
        print_json({"ok": True, **data})
        return
    text = human() if callable(human) else human
    if text:
        sys.stdout.write(text.rstrip("\n") + "\n")
        sys.stdout.flush()


def report(err: CLIError, as_json: bool) -> None:
    """Print *err* in the form the command was asked for."""
    if as_json:
        print_json(err.to_json())
        return
    lines = [f"ssictl: error: {err.message}"]
    lines += [f"  {d}" for d in err.details]
    if err.hint:
        lines.append(f"  fix: {err.hint}")
    sys.stdout.flush()
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def report_interrupt() -> None:
    """The one line Ctrl-C leaves on stderr (the exit status is INTERRUPTED_EXIT)."""
    sys.stdout.flush()
    sys.stderr.write("ssictl: interrupted\n")
    sys.stderr.flush()


def note(text: str, as_json: bool) -> None:
    """A progress line on stderr, printed as the step happens (not in JSON mode, whose
    consumers get the same facts in the document). Never on stdout: that is the result."""
    if not as_json:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


@contextmanager
def handle_errors(as_json: bool) -> Iterator[None]:
    """Turn expected failures in the body into a report and a non-zero exit."""
    try:
        yield
    except CLIError as e:
        report(e, as_json)
        raise typer.Exit(e.exit_code) from None
    except SSIError as e:
        report(from_ssi_error(e), as_json)
        raise typer.Exit(1) from None
    except HeaderError as e:
        report(CLIError(str(e), "reinstall ssikit from a checkout with abi/ssi_abi.h"), as_json)
        raise typer.Exit(1) from None
