"""``genmod kernel``: source -> configuration -> bzImage + Module.symvers, with stamps.

Two stamps in ``<build>/linux/.genmod/`` make repeated runs cheap:

* ``config.json``: digest of what the configuration depends on (kernel
  version, patch series, kvm_guest.config, our fragments, the compiler).  When
  it matches, the existing ``.config`` is kept.
* ``kernel.json``: the config digest plus the ABI header and build identity.
  When it matches and bzImage and Module.symvers exist, nothing runs at all.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genmod import kbuild, source, ui
from genmod.errors import BuildError, ConfigMismatch, NotBuilt, SourceMissing
from genmod.paths import Paths

if TYPE_CHECKING:
    from genmod import kconfig

# Bump when genmod changes how it configures or builds, to invalidate stamps.
STAMP_VERSION = 1

BUILD_TARGETS = ("bzImage", "modules")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def _read_stamp(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["inputs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_stamp(path: Path, inputs: str, **extra: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"inputs": inputs, **extra}, indent=1, sort_keys=True) + "\n",
                    encoding="utf-8")


def _fragments(paths: Paths) -> list[Path]:
    missing = [f for f in paths.fragments if not f.is_file()]
    if missing:
        raise SourceMissing("config fragment(s) missing: " + ", ".join(map(str, missing)))
    return paths.fragments


def config_digest(paths: Paths, src: source.SourceReport, settings: kbuild.MakeSettings) -> str:
    frags = [paths.kvm_guest_fragment, *_fragments(paths)]
    return _digest({"stamp": STAMP_VERSION, "version": src.version,
                    "patches": src.patches_digest, "cc": settings.cc,
                    "fragments": {f.name: _file_digest(f) for f in frags}})


def kernel_digest(config_inputs: str, src: source.SourceReport,
                  settings: kbuild.MakeSettings) -> str:
    return _digest({"config": config_inputs, "abi": src.abi_digest,
                    "build": settings.fingerprint(), "targets": BUILD_TARGETS})


def _make_quiet(paths: Paths, settings: kbuild.MakeSettings, target: str, log: Path) -> None:
    kbuild.run_quiet(kbuild.make_command(paths.linux, [target], settings), cwd=paths.root,
                     log=log, env=settings.env(paths.build), what=f"make {target}")


def configure(paths: Paths, settings: kbuild.MakeSettings, version: str) -> list[str]:
    """tinyconfig + kvm_guest.config + our fragments (kconfiglib), olddefconfig, verify."""
    from genmod import kconfig  # kconfiglib is slow to import; a no-op run does not need it

    tree = paths.linux
    log = paths.log("kernel-config")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("", encoding="utf-8")
    fragments = _fragments(paths)
    if not paths.kvm_guest_fragment.is_file():
        raise SourceMissing(f"{paths.kvm_guest_fragment} is missing from the tree")
    ui.step("configuring: make tinyconfig")
    _make_quiet(paths, settings, "tinyconfig", log)
    ui.step("configuring: merging kvm_guest.config, "
            + ", ".join(f.name for f in fragments) + " (kconfiglib)")
    kconf = kconfig.load_tree_kconfig(tree, version, settings.cc)
    notes = kconfig.merge(kconf, tree / ".config", [paths.kvm_guest_fragment, *fragments],
                          tree / ".config")
    with log.open("a", encoding="utf-8") as f:
        f.write("# kconfiglib merge notes\n" + "".join(n + "\n" for n in notes))
    ui.step("configuring: make olddefconfig")
    _make_quiet(paths, settings, "olddefconfig", log)
    kconfig.load_values(kconf, tree / ".config")
    bad = kconfig.verify(kconf, kconfig.requested(fragments))
    if bad:
        raise ConfigMismatch(kconfig.format_mismatches(bad)
                             + f"\n(.config left in {tree}; log: {log})", bad)
    return notes


def verify_config(paths: Paths, settings: kbuild.MakeSettings) -> list[kconfig.Mismatch]:
    """Check the tree's current .config against our fragments (no changes)."""
    from genmod import kconfig

    tree = paths.linux
    if not (tree / ".config").is_file():
        raise NotBuilt(f"{tree}/.config does not exist; run 'genmod kernel' first")
    kconf = kconfig.load_tree_kconfig(tree, source.tree_version(tree), settings.cc)
    kconfig.load_values(kconf, tree / ".config")
    return kconfig.verify(kconf, kconfig.requested(_fragments(paths)))


@dataclass
class KernelReport:
    version: str
    up_to_date: bool
    actions: list[str]
    seconds: float
    compiled: int = 0


def build_kernel(paths: Paths, settings: kbuild.MakeSettings, *, verbose: bool = False,
                 force: bool = False, reunpack: bool = False) -> KernelReport:
    start = time.monotonic()
    src = source.prepare_source(paths, reunpack=reunpack)
    tree = paths.linux
    actions = list(src.actions)
    cfg_inputs = config_digest(paths, src, settings)
    k_inputs = kernel_digest(cfg_inputs, src, settings)
    stamps = paths.state
    # What module builds need besides bzImage: a half-failed make deletes autoconf.h.
    outputs = [tree / "arch" / "x86" / "boot" / "bzImage", tree / "Module.symvers",
               tree / "include" / "generated" / "autoconf.h",
               tree / "include" / "config" / "auto.conf"]
    if (not force and _read_stamp(stamps / "kernel.json") == k_inputs
            and all(p.is_file() for p in outputs)):
        return KernelReport(src.version, True, actions, time.monotonic() - start)

    if force or _read_stamp(stamps / "config.json") != cfg_inputs \
            or not (tree / ".config").is_file():
        (stamps / "kernel.json").unlink(missing_ok=True)
        t0 = time.monotonic()
        configure(paths, settings, src.version)
        _write_stamp(stamps / "config.json", cfg_inputs)
        actions.append(f"configured and verified .config in {time.monotonic() - t0:.0f} s")
    else:
        actions.append("configuration unchanged")

    ui.step(f"building {' '.join(BUILD_TARGETS)} with {settings.cc}, -j{settings.jobs} "
            f"(log: {paths.log('kernel-build')})")
    result = kbuild.run_make(tree, BUILD_TARGETS, settings=settings, ccache_basedir=paths.build,
                             log=paths.log("kernel-build"), label="kernel build",
                             verbose=verbose, stats_key=f"kernel-build{paths.flavor.suffix}",
                             expect_full=not (tree / "vmlinux").is_file())
    result.report_warnings("kernel build")
    for out in outputs:
        if not out.is_file():
            raise BuildError(f"the build finished but {out} does not exist")
    _write_stamp(stamps / "kernel.json", k_inputs, compiled=result.compiled,
                 seconds=round(result.seconds, 1))
    actions.append(f"built in {result.seconds:.0f} s ({result.compiled} C files compiled)")
    return KernelReport(src.version, False, actions, time.monotonic() - start, result.compiled)
