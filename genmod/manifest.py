"""``kernel/modules.toml``: which SSI modules exist, their sources, deps and parameters.

The file format is documented at the top of ``kernel/modules.toml`` itself.
:func:`load_manifest` validates everything the templates and the build rely
on, so that a mistake is reported against the manifest rather than as a
compiler error in generated code.
"""

from __future__ import annotations

import graphlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from genmod.errors import ConfigError

_IDENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SYM_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PERM_RE = re.compile(r"^0[0-7]{3}$")

# module_param type -> (C type, TOML value type)
PARAM_TYPES: dict[str, tuple[str, type]] = {
    "bool": ("bool", bool),
    "invbool": ("bool", bool),
    "byte": ("unsigned char", int),
    "short": ("short", int),
    "ushort": ("unsigned short", int),
    "int": ("int", int),
    "uint": ("unsigned int", int),
    "hexint": ("unsigned int", int),
    "long": ("long", int),
    "ulong": ("unsigned long", int),
    "charp": ("char *", str),
}

ENTRY_KINDS = ("generated", "handwritten")

# Keeps MODULE_DESCRIPTION("...") / MODULE_PARM_DESC(x, "...") within 100 columns.
MAX_DESCRIPTION = 76

_MODULE_KEYS = {"name", "description", "sources", "config", "depends", "entry", "author",
                "license", "param", "ics"}
_PARAM_KEYS = {"name", "type", "default", "default_config", "perm", "description"}
_DEFAULT_KEYS = {"author", "license"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str
    perm: str = "0444"
    default: bool | int | str | None = None
    default_config: str | None = None

    @property
    def c_type(self) -> str:
        return PARAM_TYPES[self.type][0]


@dataclass(frozen=True)
class Module:
    name: str
    description: str
    sources: tuple[str, ...]
    config: str
    author: str
    license: str
    depends: tuple[str, ...] = ()
    entry: str = "generated"
    params: tuple[Param, ...] = field(default_factory=tuple)
    ics: tuple[str, ...] = ()  # ICS specs compiled into this module, relative to kernel/

    def c_var(self, param: Param) -> str:
        """The C variable behind a parameter: ``<module>_<param>``."""
        return f"{self.name}_{param.name}"


@dataclass(frozen=True)
class Manifest:
    path: Path
    src_root: Path  # kernel/: sources are relative to it
    modules: tuple[Module, ...]

    def by_name(self) -> dict[str, Module]:
        return {m.name: m for m in self.modules}

    def build_order(self) -> list[Module]:
        """Dependencies before dependents (the manifest is known to be acyclic)."""
        mods = self.by_name()
        return [mods[name] for name in _sorter(self.modules).static_order()]

    def closure(self, module: Module) -> list[Module]:
        """All modules ``module`` depends on, directly or not, in build order."""
        mods = self.by_name()
        needed: set[str] = set()
        todo = list(module.depends)
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                todo.extend(mods[name].depends)
        return [m for m in self.build_order() if m.name in needed]


def _sorter(modules: Sequence[Module]) -> graphlib.TopologicalSorter[str]:
    return graphlib.TopologicalSorter({m.name: m.depends for m in modules})


class ManifestError(ConfigError):
    """kernel/modules.toml is invalid; the message names the file and the entry."""


def _err(path: Path, where: str, msg: str) -> ManifestError:
    return ManifestError(f"{path}: {where}: {msg}")


def _check_keys(path: Path, where: str, table: dict[str, object], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _err(path, where, f"unknown key(s) {', '.join(unknown)} "
                   f"(allowed: {', '.join(sorted(allowed))})")


def _str(path: Path, where: str, table: dict[str, object], key: str,
         default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise _err(path, where, f"'{key}' must be a non-empty string")
    if '"' in value or "\\" in value or "\n" in value:
        raise _err(path, where, f"'{key}' must not contain quotes, backslashes or newlines")
    return value


def _strings(path: Path, where: str, table: dict[str, object], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _err(path, where, f"'{key}' must be a list of strings")
    return tuple(str(v) for v in value)


def _param(path: Path, where: str, raw: object) -> Param:
    if not isinstance(raw, dict):
        raise _err(path, where, "each [[module.param]] must be a table")
    _check_keys(path, where, raw, _PARAM_KEYS)
    name = _str(path, where, raw, "name")
    where = f"{where} param {name}"
    if not _IDENT_RE.match(name):
        raise _err(path, where, "name must be a lower-case C identifier")
    ptype = _str(path, where, raw, "type")
    if ptype not in PARAM_TYPES:
        raise _err(path, where, f"type {ptype!r} is not one of {', '.join(PARAM_TYPES)}")
    desc = _str(path, where, raw, "description")
    if len(desc) > MAX_DESCRIPTION - len(name):
        raise _err(path, where, f"description longer than {MAX_DESCRIPTION - len(name)} chars")
    perm = raw.get("perm", "0444")
    if not isinstance(perm, str) or not _PERM_RE.match(perm):
        raise _err(path, where, "perm must be an octal string like \"0444\" or \"0644\"")
    if int(perm, 8) & 0o002:
        raise _err(path, where, "perm must not be world-writable")
    default = raw.get("default")
    default_config = raw.get("default_config")
    if default is not None and default_config is not None:
        raise _err(path, where, "give 'default' or 'default_config', not both")
    if default is not None:
        want = PARAM_TYPES[ptype][1]
        if type(default) is not want:
            raise _err(path, where, f"default must be a TOML {want.__name__} for type {ptype}")
        if isinstance(default, str) and ('"' in default or "\\" in default):
            raise _err(path, where, "default must not contain quotes or backslashes")
    if default_config is not None and (not isinstance(default_config, str)
                                       or not _SYM_RE.match(default_config)):
        raise _err(path, where, "default_config must name a kernel/Kconfig symbol (no CONFIG_)")
    assert default is None or isinstance(default, bool | int | str)
    return Param(name, ptype, desc, perm, default, default_config)


def _module(path: Path, raw: object, defaults: dict[str, object], index: int) -> Module:
    where = f"module #{index + 1}"
    if not isinstance(raw, dict):
        raise _err(path, where, "each [[module]] must be a table")
    _check_keys(path, where, raw, _MODULE_KEYS)
    name = _str(path, where, raw, "name")
    where = f"module {name}"
    if not _IDENT_RE.match(name):
        raise _err(path, where, "name must be a lower-case C identifier (it is the .ko name)")
    desc = _str(path, where, raw, "description")
    if len(desc) > MAX_DESCRIPTION:
        raise _err(path, where, f"description longer than {MAX_DESCRIPTION} chars")
    sources = _strings(path, where, raw, "sources")
    if not sources:
        raise _err(path, where, "'sources' must list at least one .c file under kernel/")
    for src in sources:
        parts = Path(src).parts
        if (not src.endswith(".c") or len(parts) < 2 or ".." in parts
                or Path(src).is_absolute()):
            raise _err(path, where, f"source {src!r} must be <subsystem>/<file>.c under kernel/")
        if Path(src).stem == f"{name}_gen":
            raise _err(path, where, f"source {src!r} clashes with the generated {name}_gen.c")
    ics_specs = _strings(path, where, raw, "ics")
    for spec in ics_specs:
        parts = Path(spec).parts
        if (not spec.endswith(".ics") or len(parts) < 2 or ".." in parts
                or Path(spec).is_absolute()):
            raise _err(path, where,
                       f"ics spec {spec!r} must be <subsystem>/<file>.ics under kernel/")
    config = _str(path, where, raw, "config", name.upper())
    if not _SYM_RE.match(config):
        raise _err(path, where, "config must be a Kconfig symbol name without CONFIG_")
    entry = _str(path, where, raw, "entry", "generated")
    if entry not in ENTRY_KINDS:
        raise _err(path, where, f"entry must be one of {', '.join(ENTRY_KINDS)}")
    author = _str(path, where, raw, "author", _default_str(defaults, "author"))
    license_ = _str(path, where, raw, "license", _default_str(defaults, "license", "GPL"))
    params_raw = raw.get("param", [])
    if not isinstance(params_raw, list):
        raise _err(path, where, "param must be an array of tables ([[module.param]])")
    params = tuple(_param(path, where, p) for p in params_raw)
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise _err(path, where, "duplicate parameter names")
    return Module(name, desc, sources, config, author, license_,
                  _strings(path, where, raw, "depends"), entry, params, ics_specs)


def _default_str(defaults: dict[str, object], key: str, fallback: str | None = None) -> str | None:
    value = defaults.get(key, fallback)
    return value if isinstance(value, str) else fallback


def _check_graph(path: Path, modules: Sequence[Module]) -> None:
    names = [m.name for m in modules]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _err(path, "modules", f"duplicate module name(s): {', '.join(dup)}")
    known = set(names)
    for m in modules:
        for dep in m.depends:
            if dep not in known:
                raise _err(path, f"module {m.name}", f"depends on unknown module {dep!r}")
    try:
        _sorter(modules).prepare()
    except graphlib.CycleError as exc:
        # graphlib lists the cycle dependency-first; show it as "a depends on b depends on a",
        # starting from the module listed first in the manifest.
        cycle: list[str] = list(reversed(exc.args[1][:-1]))
        start = min(range(len(cycle)), key=lambda i: names.index(cycle[i]))
        ring = cycle[start:] + cycle[:start]
        raise _err(path, "modules",
                   f"dependency cycle: {' -> '.join([*ring, ring[0]])}") from None


def load_manifest(path: Path, src_root: Path) -> Manifest:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ManifestError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - {"defaults", "module"})
    if unknown:
        raise _err(path, "top level", f"unknown table(s) {', '.join(unknown)}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise _err(path, "defaults", "must be a table")
    _check_keys(path, "[defaults]", defaults, _DEFAULT_KEYS)
    raw_modules = data.get("module", [])
    if not isinstance(raw_modules, list):
        raise _err(path, "module", "must be an array of tables ([[module]])")
    modules = tuple(_module(path, raw, defaults, i) for i, raw in enumerate(raw_modules))
    _check_graph(path, modules)
    return Manifest(path, src_root, modules)
