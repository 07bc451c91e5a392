"""genmod: the ssikit build driver.

Unpacks and patches the Linux 6.1 tree, configures it through kconfiglib,
builds the kernel with ccache, generates and builds the SSI modules from
``kernel/modules.toml`` and checks the resulting ``.ko`` files.
"""

__all__ = [
    "BuildError",
    "CheckoutNotFound",
    "CheckpatchFailed",
    "ConfigError",
    "ConfigMismatch",
    "GenmodError",
    "ModuleCheckError",
    "NotBuilt",
    "SeriesError",
    "SourceMissing",
    "TreeConflict",
]

from genmod.errors import (
    BuildError,
    CheckoutNotFound,
    CheckpatchFailed,
    ConfigError,
    ConfigMismatch,
    GenmodError,
    ModuleCheckError,
    NotBuilt,
    SeriesError,
    SourceMissing,
    TreeConflict,
)
