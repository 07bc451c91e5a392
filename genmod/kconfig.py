"""Kconfig through kconfiglib: the 6.1 ``modules`` shim, fragment merging and verification.

kconfiglib 14.1 predates the bare ``modules`` attribute 6.1 uses
(``kernel/module/Kconfig``: ``config MODULES ... modules``); :class:`ShimKconfig`
rewrites such lines to the old ``option modules`` spelling as files are read,
one line for one line, so error line numbers stay right.

Configuration is ``make tinyconfig``, then kvm_guest.config and our fragments
merged with kconfiglib, then ``make olddefconfig``, then every symbol our
fragments request is checked against the result.  A symbol that did not get
its value is reported with its unmet ``depends on`` (or the ``select`` forcing
it), instead of being silently dropped.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import kconfiglib

from genmod import dotconfig
from genmod.errors import ConfigError

_BARE_MODULES_RE = re.compile(r"^(\t+)modules([ \t\r]*)$", re.M)
_TRI = ("n", "m", "y")


def rewrite_modules_keyword(text: str) -> str:
    """Turn 6.1's bare ``modules`` attribute lines into ``option modules``."""
    return _BARE_MODULES_RE.sub(r"\1option modules\2", text)


class ShimKconfig(kconfiglib.Kconfig):  # type: ignore[misc]
    """kconfiglib.Kconfig that understands 6.1's bare ``modules`` keyword."""

    def _open(self, filename: str, mode: str) -> IO[str]:
        if mode != "r":
            return super()._open(filename, mode)  # type: ignore[no-any-return]
        with open(filename, encoding=self._encoding) as f:
            return io.StringIO(rewrite_modules_keyword(f.read()))


# --- environment -------------------------------------------------------------------------------

def cc_version_text(cc: str) -> str:
    """What the kernel Makefile exports as CC_VERSION_TEXT."""
    try:
        out = subprocess.run(f"LC_ALL=C {cc} --version", shell=True, capture_output=True,
                             text=True, check=False).stdout
    except OSError:
        return ""
    return out.splitlines()[0].replace("#", "") if out else ""


def kconfig_env(tree: Path, version: str, cc: str) -> dict[str, str]:
    """The environment the kernel Makefile gives scripts/kconfig for an x86 build.

    Must agree with what kbuild records in include/config/auto.conf.cmd, or
    toolchain-dependent symbols would evaluate differently here than in make
    (srctree is absolute here, "." there: the same directory, as the
    macros run in the tree).
    """
    return {
        "srctree": str(tree),
        "ARCH": "x86",
        "SRCARCH": "x86",
        "KERNELVERSION": version,
        "CC": cc,
        "LD": "ld",
        "AR": "ar",
        "NM": "nm",
        "HOSTCC": "gcc",
        "HOSTCXX": "g++",
        "OBJCOPY": "objcopy",
        "PAHOLE": "pahole",
        "RUSTC": "rustc",
        "BINDGEN": "bindgen",
        "CC_VERSION_TEXT": cc_version_text(cc),
        "CLANG_FLAGS": "",
        "KCONFIG_CONFIG": ".config",
        "CONFIG_": "CONFIG_",
    }


def kbuild_recorded_env(tree: Path) -> dict[str, str]:
    """Environment values kbuild's conf saw, from include/config/auto.conf.cmd."""
    path = tree / "include" / "config" / "auto.conf.cmd"
    found: dict[str, str] = {}
    if path.is_file():
        for m in re.finditer(r'^ifneq "\$\((\w+)\)" "(.*)"$', path.read_text(), re.M):
            found[m.group(1)] = m.group(2)
    return found


@contextlib.contextmanager
def _environment(env: Mapping[str, str], cwd: Path) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with contextlib.chdir(cwd):
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_kconfig(top: Path, srctree: Path, env: Mapping[str, str]) -> Any:
    """Parse ``top`` (relative paths resolve against ``srctree``) with ``env`` set.

    ``$(shell,...)`` macros run in ``srctree``, as they do under make.
    """
    full_env = {"srctree": str(srctree), **env}
    with _environment(full_env, srctree):
        try:
            return ShimKconfig(str(top), warn_to_stderr=False, suppress_traceback=False)
        except kconfiglib.KconfigError as exc:
            raise ConfigError(f"kconfiglib could not parse {top}:\n{exc}") from None


def load_tree_kconfig(tree: Path, version: str, cc: str) -> Any:
    return load_kconfig(tree / "Kconfig", tree, kconfig_env(tree, version, cc))


def load_values(kconf: Any, config: Path, *, replace: bool = True) -> None:
    kconf.load_config(str(config), replace=replace)


# --- fragments ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    """One ``CONFIG_FOO=value`` (or ``# CONFIG_FOO is not set``) line of a fragment."""

    name: str  # without CONFIG_
    value: str  # n/m/y, or the unquoted string / int / hex value
    source: str  # "file:line"


def parse_fragment(path: Path) -> list[Request]:
    return [Request(a.name, a.value, f"{path.name}:{a.lineno}")
            for a in dotconfig.read(path, strict=True)]


def requested(fragments: Sequence[Path]) -> dict[str, Request]:
    """Symbol -> request over fragments in merge order (later fragments win)."""
    out: dict[str, Request] = {}
    for frag in fragments:
        for req in parse_fragment(frag):
            out[req.name] = req
    return out


def merge(kconf: Any, base: Path, fragments: Sequence[Path], out: Path) -> list[str]:
    """Load ``base``, merge ``fragments`` over it in order, write ``out``.

    Returns notes like merge_config.sh's: a later fragment redefining a value
    an earlier fragment set, and assignments to symbols this tree lacks.
    """
    kconf.warnings.clear()
    load_values(kconf, base)
    notes: list[str] = []
    seen: dict[str, Request] = {}
    for frag in fragments:
        for req in parse_fragment(frag):
            prev = seen.get(req.name)
            if prev is not None and prev.value != req.value:
                notes.append(f"CONFIG_{req.name}: {prev.value} ({prev.source}) redefined "
                             f"as {req.value} ({req.source})")
            seen[req.name] = req
        kconf.load_config(str(frag), replace=False)
    kconf.write_config(str(out), save_old=False)
    notes += [w for w in kconf.warnings if "undefined symbol" in w]
    return notes


# --- verification ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    name: str
    wanted: str
    got: str
    source: str
    why: str  # human explanation: unmet dependency, select, undefined...


def _tri(value: int) -> str:
    return _TRI[value]


def _unmet_terms(expr: Any, need: int) -> list[str]:
    """The &&-operands of ``expr`` whose value is below ``need``, as 'EXPR (=v)'."""
    terms = kconfiglib.split_expr(expr, kconfiglib.AND)
    return [f"{kconfiglib.expr_str(t)} (={_tri(kconfiglib.expr_value(t))})"
            for t in terms if kconfiglib.expr_value(t) < need]


def _same(sym: Any, wanted: str, got: str) -> bool:
    if sym.orig_type in (kconfiglib.INT, kconfiglib.HEX):
        try:
            return int(wanted, 0) == int(got, 0)
        except ValueError:
            return wanted == got
    return wanted == got


def explain(sym: Any, wanted: str) -> str:
    """Why ``sym`` did not get ``wanted``: unmet depends on, selects, choice, range."""
    parts: list[str] = []
    if sym.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE) and wanted in _TRI:
        need = _TRI.index(wanted)
        if need > sym.tri_value:
            dep = sym.direct_dep
            if kconfiglib.expr_value(dep) < need:
                parts.append(f"depends on {kconfiglib.expr_str(dep)} "
                             f"(={_tri(kconfiglib.expr_value(dep))}); unmet: "
                             + ", ".join(_unmet_terms(dep, need)))
            elif not sym.nodes or all(node.prompt is None for node in sym.nodes):
                parts.append("has no prompt: only 'select' or a default can set it")
            else:
                for node in sym.nodes:
                    if node.prompt and kconfiglib.expr_value(node.prompt[1]) < need:
                        cond = kconfiglib.expr_str(node.prompt[1])
                        parts.append(f"prompt visible only if {cond}")
            if sym.choice is not None and sym.choice.selection is not sym:
                sel = sym.choice.selection
                parts.append(f"choice {sym.choice.name or '(unnamed)'} selected "
                             f"{sel.name if sel is not None else 'nothing'}")
            if need == 2 and sym.tri_value == 1:
                parts.append("limited to m by its dependencies")
        else:
            rev = sym.rev_dep
            if kconfiglib.expr_value(rev) > need:
                active = [kconfiglib.expr_str(t) for t in kconfiglib.split_expr(rev, kconfiglib.OR)
                          if kconfiglib.expr_value(t) > need]
                parts.append("selected by " + ", ".join(active))
            weak = sym.weak_rev_dep
            if kconfiglib.expr_value(weak) > need:
                active = [kconfiglib.expr_str(t) for t in
                          kconfiglib.split_expr(weak, kconfiglib.OR)
                          if kconfiglib.expr_value(t) > need]
                parts.append("implied by " + ", ".join(active))
    else:
        dep = sym.direct_dep
        if kconfiglib.expr_value(dep) == 0:
            parts.append(f"depends on {kconfiglib.expr_str(dep)} (=n); unmet: "
                         + ", ".join(_unmet_terms(dep, 1)))
        for lo, hi, cond in sym.ranges:
            if kconfiglib.expr_value(cond):  # the first active range applies
                parts.append(f"range {lo.str_value}..{hi.str_value}")
                break
    return "; ".join(parts) or "value overridden by olddefconfig (no unmet dependency found)"


def verify(kconf: Any, requests: Mapping[str, Request]) -> list[Mismatch]:
    """Every requested symbol whose value in ``kconf`` differs from the request."""
    bad: list[Mismatch] = []
    for name, req in requests.items():
        sym = kconf.syms.get(name)
        if sym is None or not sym.nodes:
            bad.append(Mismatch(name, req.value, "undefined", req.source,
                                "no such symbol in this tree's Kconfig"))
            continue
        got = sym.str_value
        if sym.orig_type in (kconfiglib.BOOL, kconfiglib.TRISTATE) and got == "":
            got = "n"
        if not _same(sym, req.value, got):
            bad.append(Mismatch(name, req.value, got, req.source, explain(sym, req.value)))
    return bad


def format_mismatches(bad: Sequence[Mismatch]) -> str:
    lines = [f"{len(bad)} requested symbol(s) did not get their value:"]
    for m in bad:
        lines.append(f"  CONFIG_{m.name}: wanted {m.wanted}, got {m.got}  [{m.source}]")
        lines.append(f"      {m.why}")
    return "\n".join(lines)
