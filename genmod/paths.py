"""Where genmod finds its inputs and puts its outputs.

Everything hangs off the checkout root (found from the current directory, or
``GENMOD_ROOT``) and the build directory (``<root>/build``, or
``GENMOD_BUILD_DIR`` / ``--build-dir`` for scratch experiments).  The kernel
tree of the normal flavor lives at ``<build>/linux`` and its modules at
``<build>/modules``; another flavor (``--flavor``, ``GENMOD_FLAVOR``) has its
own ``<build>/linux-<flavor>`` and ``<build>/modules-<flavor>`` (and lock and
log names), so switching flavors never rebuilds the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from genmod import flavor as flavors
from genmod.errors import CheckoutNotFound

DEFAULT_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")

# Our own fragments, merged in this order over tinyconfig + kvm_guest.config
# (then the flavor's own, see genmod.flavor).  Every symbol they set is
# verified after configuration.
OUR_FRAGMENTS = ("ssi-base.config", "ssi.config")


def _is_root(path: Path) -> bool:
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        return False
    return 'name = "ssikit"' in pyproject.read_text(encoding="utf-8", errors="replace")


def find_root(start: Path | None = None) -> Path:
    """The ssikit checkout containing ``start`` (default: cwd, then this package)."""
    env = os.environ.get("GENMOD_ROOT")
    if env:
        return Path(env).resolve()
    candidates = [(start or Path.cwd()).resolve(), Path(__file__).resolve().parent]
    for base in candidates:
        for path in (base, *base.parents):
            if _is_root(path):
                return path
    raise CheckoutNotFound("cannot find the ssikit checkout (no pyproject.toml naming ssikit above "
                      f"{candidates[0]}); run genmod inside the checkout or set GENMOD_ROOT")


@dataclass(frozen=True)
class Paths:
    root: Path
    build: Path
    tarball: Path
    flavor: flavors.Flavor = field(default=flavors.NORMAL)

    @classmethod
    def discover(cls, build: Path | None = None, tarball: Path | None = None,
                 flavor: str | None = None) -> Paths:
        """Paths of the checkout around the cwd; ``flavor`` None means $GENMOD_FLAVOR."""
        chosen = flavors.get(flavor)
        root = find_root()
        env_build = os.environ.get("GENMOD_BUILD_DIR")
        if build is None and env_build:
            build = Path(env_build)
        env_tarball = os.environ.get("GENMOD_TARBALL")
        if tarball is None and env_tarball:
            tarball = Path(env_tarball)
        build = (build if build is not None else root / "build").resolve()
        return cls(root=root, build=build, tarball=(tarball or DEFAULT_TARBALL).resolve(),
                   flavor=chosen)

    # Kernel tree and its genmod state.
    @property
    def linux(self) -> Path:
        return self.build / f"linux{self.flavor.suffix}"

    @property
    def state(self) -> Path:
        """genmod's stamps for the tree; they live (and die) with the tree."""
        return self.linux / ".genmod"

    @property
    def logs(self) -> Path:
        return self.build / "logs"

    def log(self, name: str) -> Path:
        """This flavor's log ``name`` in :attr:`logs` (``kernel-build`` -> ``kernel-build.log``,
        ``kernel-build-debug.log`` for the debug flavor)."""
        return self.logs / f"{name}{self.flavor.suffix}.log"

    @property
    def cache(self) -> Path:
        """Build-directory-wide genmod cache (tarball version etc.)."""
        return self.build / ".genmod"

    @property
    def lock(self) -> Path:
        """One lock per flavor: building one flavor does not wait for the other."""
        return self.build / f".genmod{self.flavor.suffix}.lock"

    # Inputs in the checkout.
    @property
    def patches(self) -> Path:
        return self.root / "patches"

    @property
    def series(self) -> Path:
        return self.patches / "series"

    @property
    def abi_header(self) -> Path:
        return self.root / "abi" / "ssi_abi.h"

    @property
    def abi_in_tree(self) -> Path:
        return self.linux / "include" / "uapi" / "linux" / "ssi.h"

    @property
    def kernel_src(self) -> Path:
        """Hand-written module sources and SSI Kconfig/manifest (``kernel/``)."""
        return self.root / "kernel"

    @property
    def fragments(self) -> list[Path]:
        names = (*OUR_FRAGMENTS, *self.flavor.extra_fragments)
        return [self.kernel_src / "configs" / name for name in names]

    @property
    def kvm_guest_fragment(self) -> Path:
        return self.linux / "kernel" / "configs" / "kvm_guest.config"

    @property
    def module_kconfig(self) -> Path:
        return self.kernel_src / "Kconfig"

    @property
    def manifest(self) -> Path:
        return self.kernel_src / "modules.toml"

    # Module outputs.
    @property
    def modules(self) -> Path:
        return self.build / f"modules{self.flavor.suffix}"

    @property
    def modules_out(self) -> Path:
        return self.modules / "out"

    @property
    def ssi_config_h(self) -> Path:
        return self.modules / "ssi_config.h"
