"""``ssictl``: the ssikit admin tool. One module per command group.

Startup is kept lean (Python in a TCG guest is slow): only typer and the command
modules are imported here; cffi, ctypes and friends load when a command needs them.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import typer

from ssictl import cluster_setup, cluster_status, clusternode, ics, modules, node, ps
from ssictl.output import CLIError, report

_INT_RE = re.compile(r"[-+]?[0-9]+")
_FLOAT_RE = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _skip_trivial_coercion() -> None:
    """Keep typer from importing pydantic to coerce values that need no coercion.

    typer >= 0.2x runs every parameter value through a pydantic adapter, and the
    first use imports pydantic: 2.5-3.5 s in a TCG guest, more than the rest of
    ``ssictl node``. Its built-in ``--help`` option alone triggers that on every
    command (its unset value is ``None``). Values that are already what the command
    declares (``None``, a bool for a bool, a str for a str, strs for ``list[str]``)
    are passed through here, and plain decimal strings for an ``int``/``float``
    parameter are converted here (so such parameters must not rely on typer's
    ``min``/``max``: the commands check ranges themselves); anything else still goes
    through typer, which reports the error. If typer's internals change, this does
    nothing and only the speed-up is lost.
    """
    cls = getattr(getattr(typer, "core", None), "_TyperParameter", None)
    original = getattr(cls, "process_value", None)
    if cls is None or original is None or getattr(original, "_ssictl", False):
        return

    def process_value(self: Any, ctx: Any, value: Any) -> Any:
        ann = getattr(getattr(self, "type_descriptor", None), "annotation", object())
        if value is None:
            plain = True
        elif ann is bool or ann is str:
            plain = isinstance(value, ann)
        elif ann == list[str] and isinstance(value, tuple | list):
            plain = all(isinstance(v, str) for v in value)
            value = list(value) if plain else value
        elif ann is int and isinstance(value, int) and not isinstance(value, bool):
            plain = True  # a default
        elif ann is float and isinstance(value, int | float) and not isinstance(value, bool):
            value, plain = float(value), True  # a default
        elif ann is int and isinstance(value, str) and _INT_RE.fullmatch(value):
            value, plain = int(value), True
        elif ann is float and isinstance(value, str) and _FLOAT_RE.fullmatch(value):
            value, plain = float(value), True
        else:
            plain = False
        if not plain or (self.required and self.value_is_missing(value)):
            return original(self, ctx, value)  # typer coerces, or reports the error
        if self.callback is not None:
            value = self.callback(ctx, self, value)
        return value

    process_value._ssictl = True  # type: ignore[attr-defined]
    cls.process_value = process_value


_skip_trivial_coercion()

app = typer.Typer(
    name="ssictl",
    help="Administer an ssikit single-system-image cluster node.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(modules.app, name="modules")
cluster_app = typer.Typer(
    help="Set up this node's cluster membership and show the cluster.",
    no_args_is_help=True,
)
cluster_setup.register(cluster_app)
cluster_status.register(cluster_app)
app.add_typer(cluster_app, name="cluster")
app.add_typer(ics.app, name="ics")
node.register(app)
clusternode.register(app)
ps.register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="ssictl")
    except CLIError as e:  # a command that escaped handle_errors: still no traceback
        report(e, as_json=False)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
