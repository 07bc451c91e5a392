"""Kernel flavors: the normal node kernel and the debug one (sanitizers, lockdep).

Each flavor has its own kernel tree and module directory under the build
directory, so building one never invalidates the other's objects or stamps.
The normal flavor keeps the historical names (``linux``, ``modules``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from genmod.errors import GenmodError

FLAVOR_ENV = "GENMOD_FLAVOR"


class UnknownFlavor(GenmodError):
    """A flavor name that is not one of :data:`FLAVORS`."""


@dataclass(frozen=True)
class Flavor:
    name: str
    # Fragments of kernel/configs/ merged after the common ones, in order.
    extra_fragments: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        """Appended to per-flavor names: ``linux`` + suffix is the tree."""
        return "" if self.name == NORMAL.name else f"-{self.name}"


NORMAL = Flavor("normal")
DEBUG = Flavor("debug", ("ssi-debug.config",))
FLAVORS = {f.name: f for f in (NORMAL, DEBUG)}


def get(name: str | None = None) -> Flavor:
    """The flavor called ``name``, else ``$GENMOD_FLAVOR``, else normal."""
    chosen = name if name is not None else (os.environ.get(FLAVOR_ENV) or NORMAL.name)
    try:
        return FLAVORS[chosen]
    except KeyError:
        raise UnknownFlavor(f"unknown kernel flavor {chosen!r} (one of: "
                            + ", ".join(FLAVORS) + ")") from None
