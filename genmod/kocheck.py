"""Checks on built ``.ko`` files with pyelftools: vermagic, license, unresolved symbols.

The kernel refuses a module whose vermagic differs from its own, taints on a
non-GPL-compatible license and will not link EXPORT_SYMBOL_GPL symbols for
it, and fails the load on a symbol nothing exports.  These checks catch all
three on the host, naming the module and the field or symbol.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from genmod import dotconfig, ui
from genmod.errors import ModuleCheckError, NotBuilt
from genmod.paths import Paths

# include/linux/license.h: license_is_gpl_compatible()
GPL_COMPATIBLE = ("GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL",
                  "Dual MIT/GPL", "Dual MPL/GPL")

# Undefined symbols modpost does not resolve against exports (scripts/mod/modpost.c).
IGNORED_UNDEFINED = frozenset({"_GLOBAL_OFFSET_TABLE_", "__tls_get_addr", ".TOC."})

# arch/x86/include/asm/vermagic.h, for 32-bit kernels (x86_64 adds nothing).
_X86_32_FAMILY = {
    "M486SX": "486SX ", "M486": "486 ", "M586": "586 ", "M586TSC": "586TSC ",
    "M586MMX": "586MMX ", "MCORE2": "CORE2 ", "MATOM": "ATOM ", "M686": "686 ",
    "MPENTIUMII": "PENTIUMII ", "MPENTIUMIII": "PENTIUMIII ", "MPENTIUMM": "PENTIUMM ",
    "MPENTIUM4": "PENTIUM4 ", "MK6": "K6 ", "MK7": "K7 ", "MK8": "K8 ", "MELAN": "ELAN ",
    "MCRUSOE": "CRUSOE ", "MEFFICEON": "EFFICEON ", "MWINCHIPC6": "WINCHIPC6 ",
    "MWINCHIP3D": "WINCHIP3D ", "MCYRIXIII": "CYRIXIII ", "MVIAC3_2": "VIAC3-2 ",
    "MVIAC7": "VIAC7 ", "MGEODEGX1": "GEODEGX1 ", "MGEODE_LX": "GEODE ",
}


@dataclass(frozen=True)
class Export:
    symbol: str
    module: str
    gpl_only: bool
    namespace: str = ""


def read_symvers(path: Path) -> dict[str, Export]:
    """Module.symvers: ``crc<TAB>symbol<TAB>module<TAB>EXPORT_SYMBOL[_GPL]<TAB>namespace``."""
    exports: dict[str, Export] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cols = line.split("\t")
        if len(cols) < 4:
            continue
        exports[cols[1]] = Export(cols[1], cols[2], cols[3].endswith("_GPL"),
                                  cols[4] if len(cols) > 4 else "")
    return exports


@dataclass
class KoInfo:
    path: Path
    modinfo: dict[str, list[str]]
    undefined: list[str]
    weak_undefined: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        names = self.modinfo.get("name")
        return names[0] if names else self.path.name.removesuffix(".ko")

    def first(self, key: str) -> str | None:
        vals = self.modinfo.get(key)
        return vals[0] if vals else None


def read_ko(path: Path) -> KoInfo:
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            modinfo: dict[str, list[str]] = {}
            sec = elf.get_section_by_name(".modinfo")
            if sec is not None:
                for entry in sec.data().split(b"\0"):
                    text = entry.decode("utf-8", "replace")
                    if "=" in text:
                        key, value = text.split("=", 1)
                        modinfo.setdefault(key, []).append(value)
            symtab = elf.get_section_by_name(".symtab")
            defined: set[str] = set()
            undef: dict[str, bool] = {}  # name -> weak
            if isinstance(symtab, SymbolTableSection):
                for sym in symtab.iter_symbols():
                    if not sym.name or sym["st_info"]["type"] in ("STT_SECTION", "STT_FILE"):
                        continue
                    if sym["st_shndx"] == "SHN_UNDEF":
                        undef[sym.name] = sym["st_info"]["bind"] == "STB_WEAK"
                    else:
                        defined.add(sym.name)
    except (OSError, ELFError) as exc:
        raise ModuleCheckError(f"{path}: not a readable ELF object: {exc}") from None
    missing = [n for n in undef if n not in defined]
    return KoInfo(path, modinfo, [n for n in missing if not undef[n]],
                  [n for n in missing if undef[n]])


@dataclass(frozen=True)
class Problem:
    module: str
    field: str  # "vermagic", "license", "symbol <name>", ...
    detail: str

    def __str__(self) -> str:
        return f"{self.module}: {self.field}: {self.detail}"


def check_ko(info: KoInfo, vermagic: str, exports: Mapping[str, Export]) -> list[Problem]:
    mod = info.name
    problems: list[Problem] = []
    got = info.first("vermagic")
    if got is None:
        problems.append(Problem(mod, "vermagic", "missing from .modinfo"))
    elif got != vermagic:
        problems.append(Problem(mod, "vermagic", f"{got!r} but the kernel's is {vermagic!r}"))
    lic = info.first("license")
    gpl = lic in GPL_COMPATIBLE
    if lic is None:
        problems.append(Problem(mod, "license", "no MODULE_LICENSE in .modinfo"))
    elif not gpl:
        problems.append(Problem(mod, "license", f"{lic!r} is not GPL-compatible "
                                f"(kernel accepts: {', '.join(GPL_COMPATIBLE)})"))
    imported = set(info.modinfo.get("import_ns", []))
    for name in info.undefined:
        if name in IGNORED_UNDEFINED:
            continue
        exp = exports.get(name)
        if exp is None:
            problems.append(Problem(mod, f"symbol {name}",
                                    "undefined, and neither the kernel's Module.symvers nor a "
                                    "sibling module's exports it"))
        elif exp.gpl_only and lic is not None and not gpl:
            problems.append(Problem(mod, f"symbol {name}",
                                    f"EXPORT_SYMBOL_GPL in {exp.module}, license is {lic!r}"))
        elif exp.namespace and exp.namespace not in imported:
            problems.append(Problem(mod, f"symbol {name}",
                                    f"in namespace {exp.namespace}: needs "
                                    f"MODULE_IMPORT_NS({exp.namespace})"))
    return problems


# --- the kernel's side -------------------------------------------------------------------------

def _config(tree: Path) -> dict[str, str]:
    auto_conf = tree / "include" / "config" / "auto.conf"
    return dotconfig.values(auto_conf if auto_conf.is_file() else tree / ".config")


def computed_vermagic(tree: Path) -> str:
    """VERMAGIC_STRING (include/linux/vermagic.h) from the built tree's release and config."""
    rel_h = tree / "include" / "generated" / "utsrelease.h"
    try:
        m = re.search(r'#define UTS_RELEASE "([^"]*)"', rel_h.read_text(encoding="utf-8"))
    except OSError:
        m = None
    if not m:
        raise NotBuilt(f"{rel_h} missing or unreadable: build the kernel first")
    cfg = _config(tree)

    def on(sym: str) -> bool:
        return cfg.get(sym) == "y"

    magic = m.group(1) + " "
    magic += "SMP " if on("SMP") else ""
    magic += "preempt " if on("PREEMPT_BUILD") else "preempt_rt " if on("PREEMPT_RT") else ""
    magic += "mod_unload " if on("MODULE_UNLOAD") else ""
    magic += "modversions " if on("MODVERSIONS") else ""
    if on("X86_32"):
        family = [v for k, v in _X86_32_FAMILY.items() if on(k)]
        magic += family[0] if family else ""
    if on("RANDSTRUCT_FULL") or on("RANDSTRUCT_PERFORMANCE"):
        seed_h = tree / "include" / "generated" / "randstruct_hash.h"
        s = re.search(r'RANDSTRUCT_HASHED_SEED\s+"([^"]*)"', seed_h.read_text(encoding="utf-8"))
        if not s:
            raise NotBuilt(f"{seed_h}: no RANDSTRUCT_HASHED_SEED")
        magic += "RANDSTRUCT_" + s.group(1)
    return magic


VERMAGIC_CACHE = ".genmod-vermagic"


def vmlinux_vermagic(tree: Path) -> str | None:
    """The ``vermagic`` string kernel/module/ compares against, read out of vmlinux.

    Walking vmlinux's 58k symbols with pyelftools takes ~3 s, on every `make
    modules`: the answer is kept beside vmlinux, keyed by its size and mtime.
    """
    vmlinux = tree / "vmlinux"
    if not vmlinux.is_file():
        return None
    st = vmlinux.stat()
    key = f"{st.st_size} {st.st_mtime_ns}"
    cache = tree / VERMAGIC_CACHE
    try:
        cached_key, _, cached = cache.read_text(encoding="utf-8").partition("\n")
        if cached_key == key:
            return cached
    except FileNotFoundError:
        pass
    magic = _read_vmlinux_vermagic(vmlinux)
    if magic is not None:
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}")
        tmp.write_text(f"{key}\n{magic}", encoding="utf-8")
        tmp.replace(cache)
    return magic


def _read_vmlinux_vermagic(vmlinux: Path) -> str | None:
    with vmlinux.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return None
        syms = symtab.get_symbol_by_name("vermagic") or []
        for sym in syms:
            if sym["st_info"]["type"] != "STT_OBJECT" or not isinstance(sym["st_shndx"], int):
                continue
            sec = elf.get_section(sym["st_shndx"])
            off = sym["st_value"] - sec["sh_addr"]
            data = sec.data()[off:off + sym["st_size"]]
            return data.split(b"\0", 1)[0].decode("utf-8", "replace")
    return None


def kernel_vermagic(tree: Path) -> str:
    """The built kernel's vermagic: vmlinux's own string, else computed from config."""
    computed = computed_vermagic(tree)
    from_vmlinux = vmlinux_vermagic(tree)
    if from_vmlinux is not None and from_vmlinux != computed:
        ui.warn(f"vermagic computed from the config ({computed!r}) differs from vmlinux's "
                f"({from_vmlinux!r}); using vmlinux's")
        return from_vmlinux
    return computed


def load_exports(symvers: Iterable[Path]) -> dict[str, Export]:
    exports: dict[str, Export] = {}
    for path in symvers:
        if path.is_file():
            exports.update(read_symvers(path))
    return exports


def sibling_symvers(paths: Paths) -> list[Path]:
    return sorted(paths.modules.glob("*/Module.symvers"))


def check_modules(paths: Paths, kos: Sequence[Path]) -> list[Problem]:
    tree_symvers = paths.linux / "Module.symvers"
    if not tree_symvers.is_file():
        raise NotBuilt(f"{tree_symvers} does not exist: build the kernel first")
    vermagic = kernel_vermagic(paths.linux)
    exports = load_exports([tree_symvers, *sibling_symvers(paths)])
    problems: list[Problem] = []
    for ko in kos:
        problems += check_ko(read_ko(ko), vermagic, exports)
    return problems


def check_or_raise(paths: Paths, kos: Sequence[Path]) -> None:
    problems = check_modules(paths, kos)
    if problems:
        raise ModuleCheckError(f"{len(problems)} module check(s) failed:\n"
                               + "\n".join(f"  {p}" for p in problems), problems)
    ui.step(f"checked {len(kos)} module(s): vermagic, license and symbols OK")
