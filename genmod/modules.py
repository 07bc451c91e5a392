"""``genmod modules``: evaluate kernel/Kconfig, render each module from templates, build it.

For every module of ``kernel/modules.toml`` whose Kconfig option is ``m`` (or
``y``: out-of-tree code can only be a module), genmod writes
``<build>/modules/<name>/``:

* ``Kbuild``: ``obj-m := <name>.o``, ``<name>-y := <name>_gen.o <subsys>/<file>.o ...``
* ``<name>_gen.h``: prototypes of ``int <name>_init(void)`` and
  ``void <name>_exit(void)`` that the hand-written sources implement, and
  ``extern`` declarations of the parameters (``<name>_<param>``)
* ``<name>_gen.c``: MODULE_LICENSE/AUTHOR/DESCRIPTION/SOFTDEP, the
  ``module_param_named`` definitions and the module_init/module_exit wrappers
* ``<subsys>/<file>.c``: symlinks to the hand-written sources in kernel/

and builds it with ``make -C <build>/linux M=<dir> modules``, passing the
Module.symvers of the SSI modules it depends on as KBUILD_EXTRA_SYMBOLS.  The
``.ko`` files are collected in ``<build>/modules/out/`` and checked.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import kconfiglib

from genmod import dotconfig, kbuild, kconfig, kocheck, ui
from genmod.errors import BuildError, ConfigError, NotBuilt, SourceMissing
from genmod.ics.generate import render as render_ics
from genmod.ics.model import Service
from genmod.ics.names import check_services
from genmod.ics.parser import parse_file
from genmod.manifest import Manifest, Module, Param, load_manifest
from genmod.paths import Paths

TEMPLATES = Path(__file__).parent / "templates"
_KERNEL_REF_RE = re.compile(r"\$\(KERNEL_([A-Za-z0-9_]+)\)")


# --- kernel/Kconfig ----------------------------------------------------------------------------

def _c_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class ModuleConfig:
    kconf: Any
    defines: list[tuple[str, str]]  # for ssi_config.h
    values: dict[str, str]  # our symbols only
    warnings: list[str] = field(default_factory=list)

    def enabled(self, mod: Module) -> bool:
        return self.values.get(mod.config, "n") in ("m", "y")


def evaluate_module_config(kconfig_path: Path, kernel_config: Path,
                           overrides: Sequence[Path] = ()) -> ModuleConfig:
    """Evaluate kernel/Kconfig with ``$(KERNEL_FOO)`` bound to the kernel's CONFIG_FOO.

    Symbols the kernel's .config also has (the mirrors like MODULES and SSI)
    are not ours and are left out of the result.
    """
    if not kconfig_path.is_file():
        raise SourceMissing(f"{kconfig_path} does not exist")
    if not kernel_config.is_file():
        raise NotBuilt(f"{kernel_config} does not exist; run 'genmod kernel' first")
    kernel_vals = dotconfig.values(kernel_config)
    refs: set[str] = set()
    for f in [kconfig_path, *kconfig_path.parent.rglob("Kconfig*")]:
        if f.is_file():
            code = [ln for ln in f.read_text(encoding="utf-8").splitlines()
                    if not ln.lstrip().startswith("#")]
            refs.update(_KERNEL_REF_RE.findall("\n".join(code)))
    warnings = [f"{kconfig_path.name} uses $(KERNEL_{r}) but the kernel's .config has no "
                f"CONFIG_{r}; taken as n" for r in sorted(refs) if r not in kernel_vals]
    env = {f"KERNEL_{r}": kernel_vals.get(r, "n") for r in refs}
    kconf = kconfig.load_kconfig(kconfig_path, kconfig_path.parent, env)
    for o in overrides:
        if not o.is_file():
            raise SourceMissing(f"module config override {o} does not exist")
        kconf.load_config(str(o), replace=False)
        warnings += [w for w in kconf.warnings if "undefined symbol" in w]
    values: dict[str, str] = {}
    defines: list[tuple[str, str]] = []
    for sym in kconf.unique_defined_syms:
        if sym.name in kernel_vals:
            continue
        value = sym.str_value
        values[sym.name] = value or "n"
        cname = f"CONFIG_{sym.name}"
        if sym.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE):
            if value == "y":
                defines.append((cname, "1"))
            elif value == "m":
                defines.append((f"{cname}_MODULE", "1"))
        elif sym.orig_type == kconfiglib.STRING:
            defines.append((cname, _c_string(value)))
        elif sym.orig_type == kconfiglib.HEX and value:
            defines.append((cname, value if value.lower().startswith("0x") else f"0x{value}"))
        elif sym.orig_type == kconfiglib.INT and value:
            defines.append((cname, value))
    return ModuleConfig(kconf, defines, values, warnings)


# --- rendering ---------------------------------------------------------------------------------

def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined, autoescape=False)


def _param_value(p: Param, cfg: ModuleConfig | None) -> str | None:
    """C initializer for a parameter, or None (zero-initialised, as checkpatch wants)."""
    if p.default_config is not None:
        if cfg is None or p.default_config not in cfg.values:
            raise ConfigError(f"parameter {p.name}: default_config {p.default_config} is not "
                              "a kernel/Kconfig symbol")
        if p.type in ("bool", "invbool"):
            return f"IS_ENABLED(CONFIG_{p.default_config})"
        if cfg.values[p.default_config] in ("", "n"):
            raise ConfigError(f"parameter {p.name}: CONFIG_{p.default_config} has no value")
        return f"CONFIG_{p.default_config}"
    d = p.default
    if d is None or d is False or (d == 0 and not isinstance(d, str)):
        return None
    if isinstance(d, bool):
        return "true"
    if isinstance(d, str):
        return _c_string(d)
    if p.type == "hexint":
        return hex(d)
    suffix = {"ulong": "UL", "long": "L", "uint": "U"}.get(p.type, "") \
        if abs(d) > 0x7fffffff else ""
    return f"{d}{suffix}"


def _c_decl(mod: Module, p: Param) -> str:
    ctype = p.c_type
    var = mod.c_var(p)
    return f"{ctype}{var}" if ctype.endswith("*") else f"{ctype} {var}"


def _ics_services(paths: Paths, mod: Module) -> list[Service]:
    return [parse_file(paths.kernel_src / spec) for spec in mod.ics]


def _objects(mod: Module, services: Sequence[Service]) -> list[str]:
    ics_objs = [o for svc in services
                for o in (f"{svc.name}_ics_wire.o", f"{svc.name}_ics.o")]
    return [f"{mod.name}_gen.o", *ics_objs,
            *(str(Path(s).with_suffix(".o")) for s in mod.sources)]


def include_dirs(paths: Paths, mod: Module, mod_dir: Path) -> list[Path]:
    dirs = [mod_dir, paths.modules]
    shared = paths.kernel_src / "include"
    if shared.is_dir():
        dirs.append(shared)
    for src in mod.sources:
        d = paths.kernel_src / Path(src).parent
        if d not in dirs:
            dirs.append(d)
    return dirs


def render_module(paths: Paths, manifest: Manifest, mod: Module,
                  cfg: ModuleConfig | None) -> dict[str, str]:
    """File name (relative to the module's build dir) -> generated text."""
    env = _env()
    mod_dir = paths.modules / mod.name
    manifest_rel = os.path.relpath(manifest.path, paths.root)
    params = {p.name: _param_value(p, cfg) for p in mod.params}
    services = _ics_services(paths, mod)

    def c_def(p: Param) -> str:
        value = params[p.name]
        return _c_decl(mod, p) + ("" if value is None else f" = {value}")

    ctx = {
        "mod": mod,
        "manifest_rel": manifest_rel,
        "guard": f"_{mod.name.upper()}_GEN_H",
        "objects": _objects(mod, services),
        "include_dirs": [str(d) for d in include_dirs(paths, mod, mod_dir)],
        "description_lines": textwrap.wrap(f"{mod.name}: {mod.description}", 74),
        "c_decl": lambda p: _c_decl(mod, p),
        "c_def": c_def,
    }
    files = {
        "Kbuild": env.get_template("Kbuild.j2").render(ctx),
        f"{mod.name}_gen.h": env.get_template("module_gen.h.j2").render(ctx),
        f"{mod.name}_gen.c": env.get_template("module_gen.c.j2").render(ctx),
    }
    check_services(services)
    for svc in services:
        files.update(render_ics(svc))
    return files


def render_ssi_config(paths: Paths, cfg: ModuleConfig) -> str:
    return _env().get_template("ssi_config.h.j2").render(
        kconfig_rel=os.path.relpath(paths.module_kconfig, paths.root), defines=cfg.defines)


def write_if_changed(path: Path, text: str) -> bool:
    """Write only on change, so make does not rebuild what did not change."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


def link_sources(paths: Paths, mod: Module, mod_dir: Path) -> None:
    """Symlink the hand-written sources into the build dir; drop stale links."""
    wanted: set[Path] = set()
    for src in mod.sources:
        target = paths.kernel_src / src
        if not target.is_file():
            raise SourceMissing(f"module {mod.name}: source {target} does not exist "
                              f"(listed in {paths.manifest.name})")
        link = mod_dir / src
        wanted.add(link)
        rel = os.path.relpath(target, link.parent)
        if link.is_symlink() and os.readlink(link) == rel:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(rel)
    for dirpath, _dirs, files in os.walk(mod_dir):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink() and p not in wanted:
                p.unlink()


def generate(paths: Paths, manifest: Manifest, cfg: ModuleConfig,
             mods: Sequence[Module]) -> None:
    write_if_changed(paths.ssi_config_h, render_ssi_config(paths, cfg))
    cfg.kconf.write_config(str(paths.modules / ".config"), save_old=False)
    for mod in mods:
        mod_dir = paths.modules / mod.name
        for name, text in render_module(paths, manifest, mod, cfg).items():
            write_if_changed(mod_dir / name, text)
        link_sources(paths, mod, mod_dir)


# --- building ----------------------------------------------------------------------------------

@dataclass
class ModulesReport:
    built: list[str]
    skipped: list[str]
    kos: list[Path]
    seconds: float = 0.0


def enabled_modules(manifest: Manifest, cfg: ModuleConfig) -> tuple[list[Module], list[str]]:
    enabled: list[Module] = []
    skipped: list[str] = []
    for mod in manifest.build_order():
        if mod.config not in cfg.values:
            raise ConfigError(f"module {mod.name}: its option CONFIG_{mod.config} is not "
                              "defined in kernel/Kconfig")
        if not cfg.enabled(mod):
            skipped.append(mod.name)
            continue
        off = [d for d in mod.depends if d in skipped]
        if off:
            raise ConfigError(f"module {mod.name} is enabled but depends on disabled "
                              f"module(s) {', '.join(off)}; add 'depends on' in kernel/Kconfig")
        if cfg.values[mod.config] == "y":
            ui.note(f"CONFIG_{mod.config}=y: {mod.name} is still built as a module")
        enabled.append(mod)
    return enabled, skipped


def build_modules(paths: Paths, settings: kbuild.MakeSettings, *, verbose: bool = False,
                  overrides: Sequence[Path] = (), build: bool = True) -> ModulesReport:
    tree = paths.linux
    if build and not (tree / "Module.symvers").is_file():
        raise NotBuilt(f"{tree}/Module.symvers does not exist: build the kernel first "
                          "('genmod kernel')")
    manifest = load_manifest(paths.manifest, paths.kernel_src)
    cfg = evaluate_module_config(paths.module_kconfig, tree / ".config", overrides)
    for w in cfg.warnings:
        ui.warn(w)
    enabled, skipped = enabled_modules(manifest, cfg)
    generate(paths, manifest, cfg, enabled)
    report = ModulesReport([m.name for m in enabled], skipped, [])
    if not build:
        return report
    out = paths.modules_out
    out.mkdir(parents=True, exist_ok=True)
    for mod in enabled:
        mod_dir = paths.modules / mod.name
        extra = [str(paths.modules / d.name / "Module.symvers") for d in manifest.closure(mod)]
        make_vars = [f"M={mod_dir}"]
        if extra:
            make_vars.append(f"KBUILD_EXTRA_SYMBOLS={' '.join(extra)}")
        ui.step(f"building module {mod.name}")
        res = kbuild.run_make(tree, ["modules"], settings=settings, ccache_basedir=paths.build,
                              log=paths.log(f"module-{mod.name}"),
                              label=f"module {mod.name}", verbose=verbose, extra_vars=make_vars,
                              expect_full=False)
        report.seconds += res.seconds
        res.report_warnings(f"module {mod.name}")
        ko = mod_dir / f"{mod.name}.ko"
        if not ko.is_file():
            raise BuildError(f"module {mod.name}: make succeeded but {ko} does not exist")
        shutil.copy2(ko, out / ko.name)
        report.kos.append(out / ko.name)
    keep = {f"{m.name}.ko" for m in enabled}
    for stale in out.glob("*.ko"):
        if stale.name not in keep:
            stale.unlink()
            ui.note(f"removed {stale} (module disabled or gone)")
    kocheck.check_or_raise(paths, report.kos)
    return report
