"""``ssictl``: the ssikit admin tool. One module per command group.

Startup is kept lean (Python in a TCG guest is slow): only typer and the command
modules are imported here; cffi, ctypes and friends load when a command needs them.
"""

from __future__ import annotations

import sys

import typer

from ssictl import modules, node
from ssictl.output import CLIError, report

app = typer.Typer(
    name="ssictl",
    help="Administer an ssikit single-system-image cluster node.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(modules.app, name="modules")
node.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="ssictl")
    except CLIError as e:  # a command that escaped handle_errors: still no traceback
        report(e, as_json=False)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
