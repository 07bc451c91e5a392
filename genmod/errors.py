"""What genmod raises for failures the user must act on: one class per kind of failure.

Every class derives from :class:`GenmodError`, so ``except GenmodError`` still
catches them all; ``str(err)`` is the complete message for the user.  Classes
tied to one module's data live beside it and derive from these:
``manifest.ManifestError`` (a ConfigError), ``source.PatchRefused``,
``kbuild.KbuildError`` (a BuildError) and ``ics.model.SpecError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kconfig imports kconfiglib, slow; the errors must stay cheap to import
    from genmod.kconfig import Mismatch
    from genmod.kocheck import Problem


class GenmodError(Exception):
    """A build step failed; ``str(err)`` is the complete message for the user."""


class CheckoutNotFound(GenmodError):
    """No ssikit checkout above the current directory (and no GENMOD_ROOT)."""


class SourceMissing(GenmodError):
    """An input genmod reads is absent or is not what it should be: the kernel
    tarball, a config fragment, the ABI header, kernel/Kconfig, a module source."""


class SeriesError(GenmodError):
    """``patches/series`` is malformed or names a patch that does not exist."""


class TreeConflict(GenmodError):
    """``<build>/linux`` holds a tree genmod did not unpack and will not replace."""


class NotBuilt(GenmodError):
    """A build output a step needs does not exist yet (.config, Module.symvers, .ko...)."""


class ConfigError(GenmodError):
    """Kconfig or a .config fragment cannot be parsed, or kernel/Kconfig and
    kernel/modules.toml disagree."""


class ConfigMismatch(ConfigError):
    """Requested symbols did not get their values in the configured tree."""

    def __init__(self, message: str, mismatches: Sequence[Mismatch]) -> None:
        super().__init__(message)
        self.mismatches = list(mismatches)


class BuildError(GenmodError):
    """make, tar or another build tool failed, or did not produce its output."""


class ModuleCheckError(GenmodError):
    """A built .ko is unreadable or fails the vermagic, license or symbol checks."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class CheckpatchFailed(GenmodError):
    """checkpatch.pl --strict complained about some of our C files."""
