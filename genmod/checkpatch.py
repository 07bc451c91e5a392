"""``genmod checkpatch``: the kernel's checkpatch.pl --strict over our C.

Covers the generated files (rendered first, as ``genmod modules --no-build``
does) and the hand-written sources under kernel/.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from genmod.errors import NotBuilt
from genmod.paths import Paths


@dataclass(frozen=True)
class Finding:
    path: Path
    output: str


def script(paths: Paths) -> Path:
    path = paths.linux / "scripts" / "checkpatch.pl"
    if not path.is_file():
        raise NotBuilt(f"{path} does not exist: unpack the kernel first ('genmod kernel')")
    return path


# Checks that are wrong for one file, each with why.  Keep this short.
EXEMPT: dict[str, dict[str, str]] = {
    "kernel/core/ssi_core.c": {
        "ENOSYS": "migrate, rfork and rexec are system calls that answer ENOSYS "
                  "while no module serves them: exactly what ENOSYS means",
    },
}


def ignored_types(path: Path) -> list[str]:
    """The checkpatch types EXEMPT turns off for *path* (matched by its tail)."""
    posix = path.as_posix()
    return sorted(t for tail, types in EXEMPT.items() if posix.endswith(tail) for t in types)


def run_checkpatch(checkpatch: Path, path: Path) -> str | None:
    """checkpatch's complaints about one file, or None when it is clean."""
    ignore = [f"--ignore={t}" for t in ignored_types(path)]
    res = subprocess.run(["perl", str(checkpatch), "--strict", "--no-tree", "--quiet",
                          "--no-summary", "--show-types", *ignore, "-f", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace", check=False)
    out = res.stdout.strip()
    return out if res.returncode != 0 or out else None


def default_files(paths: Paths) -> list[Path]:
    generated = [paths.ssi_config_h, *sorted(paths.modules.glob("*/*_gen.[ch]"))]
    handwritten = sorted(p for p in paths.kernel_src.rglob("*.[ch]") if p.is_file())
    return [p for p in generated if p.is_file()] + handwritten


def check(paths: Paths, files: Sequence[Path]) -> list[Finding]:
    checkpatch = script(paths)
    findings: list[Finding] = []
    for f in files:
        out = run_checkpatch(checkpatch, f)
        if out is not None:
            findings.append(Finding(f, out))
    return findings
