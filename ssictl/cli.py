"""``ssictl``: the ssikit admin tool. One module per command group.

:func:`run` runs one command line and returns its exit status without ever raising
``SystemExit``: the console script calls it, and so does the per-node daemon in the
child it forks for each request. Heavy modules (cffi, ctypes, the header parser)
load inside the commands that need them.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import typer

from ssictl import (
    cfs,
    cluster_setup,
    cluster_status,
    clusternode,
    ics,
    loadlevel,
    migrate,
    modules,
    ps,
)
from ssictl.output import INTERRUPTED_EXIT, CLIError, report, report_interrupt

# typer's plain help formatter: square brackets in help texts stay literal (rich
# markup would eat "[default: ...]"), and help does not import rich.
app = typer.Typer(
    name="ssictl",
    help="Administer an ssikit single-system-image cluster node.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(modules.app, name="modules")
cluster_app = typer.Typer(
    help="Set up this node's cluster membership and show the cluster.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
cluster_setup.register(cluster_app)
cluster_status.register(cluster_app)
app.add_typer(cluster_app, name="cluster")
app.add_typer(ics.app, name="ics")
app.add_typer(cfs.app, name="cfs")
clusternode.register(app)
ps.register(app)
migrate.register(app)
loadlevel.register(app)

PROG = "ssictl"
USAGE_EXIT = 2


def wants_json(argv: list[str]) -> bool:
    """Did the command line ask for JSON output (``--json`` before any ``--``)?"""
    words = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in words


def _usage_error(e: typer.TyperException, as_json: bool) -> int:
    """Report a bad option or value as one line (or a JSON error document)."""
    message = e.format_message()
    code = int(getattr(e, "exit_code", USAGE_EXIT))
    if "\n" in message:  # no arguments given: the "error" is the group's help text
        sys.stderr.write(message.rstrip("\n") + "\n")
        return code
    ctx = getattr(e, "ctx", None)
    command = getattr(ctx, "command_path", "") or PROG
    message = message[:1].lower() + message[1:].rstrip(".")
    err = CLIError(message, f"see `{command} --help`")
    if as_json:
        report(err, as_json)
    else:
        sys.stderr.write(f"{PROG}: error: {err.message} ({err.hint})\n")
    return code


@functools.cache
def click_command() -> Any:
    """The click command tree typer builds from ``app`` (~0.1 s in a TCG guest):
    built once per process, so the daemon's forked workers start with it."""
    return typer.main.get_command(app)


def run(argv: list[str]) -> int:
    """Run the ``ssictl`` command line *argv* (without the program name); its exit status.

    Never raises ``SystemExit``. A bad option or value returns 2 with a one-line
    message, an expected failure its :class:`CLIError` exit code, Ctrl-C 130; with
    ``--json`` every such error is one JSON document on stdout."""
    as_json = wants_json(argv)
    try:
        command = click_command()
        with command.make_context(PROG, list(argv)) as ctx:
            command.invoke(ctx)
        return 0
    except typer.Exit as e:
        return int(e.exit_code)
    except KeyboardInterrupt:
        report_interrupt()
        if as_json:
            report(CLIError("interrupted", exit_code=INTERRUPTED_EXIT), as_json)
        return INTERRUPTED_EXIT
    except CLIError as e:  # a command that escaped handle_errors: still no traceback
        report(e, as_json)
        return e.exit_code
    except typer.Abort:
        report(CLIError("aborted"), as_json)
        return 1
    except typer.TyperException as e:  # click's usage errors derive from it
        return _usage_error(e, as_json)
    except BrokenPipeError:  # the reader went away (`ssictl ps | head`)
        return 1
    except SystemExit as e:  # a library that calls sys.exit()
        if isinstance(e.code, int) or e.code is None:
            return e.code or 0
        sys.stderr.write(f"{PROG}: {e.code}\n")
        return 1


def main() -> None:
    """Console-script entry point."""
    code = run(sys.argv[1:])
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Keep the interpreter's own flush at exit from printing a traceback.
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115
    sys.exit(code)


if __name__ == "__main__":
    main()
