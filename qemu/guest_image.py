"""The guests' Python runtime as a read-only EROFS image (virtio-blk).

Over 9p every open, stat and page of a shared library or ``.pyc`` is a round
trip through QEMU, and under TCG that made ``python3 -S -c pass`` take 1-2 s
(0.3-0.6 s from tmpfs). A block device is page-cached by the guest kernel like
any disk, so this module packs what Python programs in the guests load (the
venv's interpreter, its standard library, the venv, the shared libraries their
ELF files need) into one EROFS image, with the host paths kept, plus an fstab
that ``guest/init.sh`` uses to bind each packed tree over the same path of the
9p root. Programs see the same paths as on the host, only faster.

The image is rebuilt when any packed file changes (path, size or mtime), under
a lock, and written atomically; one image is kept per content fingerprint, so
concurrent clusters of one checkout share it.
"""

from __future__ import annotations

import compileall
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .paths import BUILD_DIR, REPO_ROOT

IMAGE_DIR = BUILD_DIR / "guest"
DISK_SERIAL = "ssi-pyimage"  # init.sh finds the image by this virtio-blk serial
FSTAB_NAME = "ssi-fstab"
VENV = REPO_ROOT / ".venv"
# The checkout's packages that guests import (ssictl and what it imports).
GUEST_PACKAGES = ("ssictl", "abi")


class GuestImageError(RuntimeError):
    """The guest image cannot be built (no mkfs.erofs, a broken venv, ...)."""


@dataclass(frozen=True)
class Contents:
    """What the image packs: whole trees and single files, as host paths."""

    trees: tuple[Path, ...]
    files: tuple[Path, ...]


def _venv_interpreter(venv: Path) -> tuple[Path, Path]:
    """(the venv's real interpreter binary, its standard library directory)."""
    python = venv / "bin" / "python"
    if not python.exists():
        raise GuestImageError(f"{python} is missing: run `make deps` first")
    out = subprocess.run(
        [str(python), "-S", "-c",
         "import sys, sysconfig; print(sys._base_executable); "
         "print(sysconfig.get_paths(vars={'base': sys.base_prefix, "
         "'platbase': sys.base_prefix})['stdlib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    return Path(os.path.realpath(out[0])), Path(os.path.realpath(out[1]))


_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def _needed_libraries(elves: Iterable[Path]) -> set[Path]:
    """Real paths of the shared libraries (and the loader) the ELF files load."""
    libs: set[Path] = set()
    batch = [str(p) for p in elves]
    for i in range(0, len(batch), 200):
        proc = subprocess.run(["ldd", *batch[i:i + 200]], capture_output=True, text=True)
        for m in _LDD_LINE.finditer(proc.stdout):
            libs.add(Path(os.path.realpath(m.group(1))))
    return libs


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _walk_files(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            yield Path(dirpath) / name


def _trees(venv: Path) -> tuple[Path, tuple[Path, Path]]:
    """(the venv's interpreter, (its standard library, the venv)), checked."""
    interpreter, stdlib = _venv_interpreter(venv)
    venv = Path(os.path.realpath(venv))
    for tree in (stdlib, venv):
        if not tree.is_dir():
            raise GuestImageError(f"{tree} is not a directory")
    if stdlib.is_relative_to(REPO_ROOT):
        raise GuestImageError(f"{stdlib} lies inside the checkout")
    return interpreter, (stdlib, venv)


def contents(venv: Path = VENV) -> Contents:
    """The trees and files to pack for the venv's Python (resolved on the host; runs
    ldd over every ELF file in them, about 1.5 s: only done to build an image)."""
    interpreter, trees = _trees(venv)
    elves = [interpreter] + [
        p for tree in trees for p in _walk_files(tree)
        if p.suffix == ".so" or ".so." in p.name or (p.parent.name == "bin" and _is_elf(p))
    ]
    libs = _needed_libraries(elves)
    files = sorted({interpreter, *libs} - {p for p in libs if _inside(p, trees)})
    return Contents(trees=trees, files=tuple(files))


def _inside(path: Path, trees: Iterable[Path]) -> bool:
    return any(path.is_relative_to(t) for t in trees)


# Changes whenever apt installs or upgrades a package, and so whenever a shared
# library the image packs may have changed.
DPKG_STATUS = Path("/var/lib/dpkg/status")


def fingerprint(interpreter: Path, trees: Iterable[Path]) -> str:
    """A digest of the packed trees' every path, size and mtime, the interpreter and
    the package database (cheap: stat only, so it can run at every boot)."""
    h = hashlib.sha256()
    for path in (interpreter, DPKG_STATUS):
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for tree in trees:
        h.update(f"{tree}\0".encode())
        for dirpath, dirs, names in os.walk(tree):
            dirs.sort()
            for name in sorted(names):
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def fstab(c: Contents, mountpoint: str) -> str:
    """Bind each packed tree and file from the image's mount over its own path."""
    lines = ["# Generated by qemu/guest_image.py: binds of the packed paths (init.sh)."]
    for path in (*c.trees, *c.files):
        lines.append(f"{mountpoint}{path} {path} none bind,ro 0 0")
    return "\n".join(lines) + "\n"


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)  # same file system: no copy, mtime kept
    except OSError:
        shutil.copy2(src, dst)


def _stage(c: Contents, stage: Path, mountpoint: str) -> None:
    for tree in c.trees:
        shutil.copytree(tree, stage / tree.relative_to("/"), symlinks=True,
                        copy_function=lambda s, d: _link_or_copy(Path(s), Path(d)))
    for path in c.files:
        _link_or_copy(path, stage / path.relative_to("/"))
    (stage / FSTAB_NAME).write_text(fstab(c, mountpoint))


def compile_checkout_packages() -> None:
    """Byte-compile the checkout's guest packages: guests see the checkout read-only,
    so without a ``__pycache__`` every guest process would compile them again."""
    for pkg in GUEST_PACKAGES:
        compileall.compile_dir(str(REPO_ROOT / pkg), quiet=1, workers=1)


MOUNTPOINT = "/run/ssi-pyimage"


def ensure(venv: Path = VENV, image_dir: Path = IMAGE_DIR) -> Path:
    """The image for the current venv, built if missing; returns its path."""
    if shutil.which("mkfs.erofs") is None:
        raise GuestImageError("mkfs.erofs is missing: run `make deps` (erofs-utils)")
    compile_checkout_packages()
    interpreter, trees = _trees(venv)
    image = image_dir / f"python-{fingerprint(interpreter, trees)}.erofs"
    if image.exists():
        return image
    image_dir.mkdir(parents=True, exist_ok=True)
    with open(image_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image.exists():  # built by a concurrent run while we waited
            return image
        with tempfile.TemporaryDirectory(dir=image_dir, prefix=".stage-") as tmp:
            stage = Path(tmp) / "root"
            _stage(contents(venv), stage, MOUNTPOINT)
            part = Path(tmp) / "image.part"
            proc = subprocess.run(
                ["mkfs.erofs", "--quiet", "--preserve-mtime", "--all-root",
                 str(part), str(stage)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise GuestImageError(f"mkfs.erofs failed: {proc.stderr.strip()}")
            os.replace(part, image)
        for old in image_dir.glob("python-*.erofs"):
            if old != image:
                old.unlink(missing_ok=True)
    return image


if __name__ == "__main__":  # python -m qemu.guest_image: build it now, print its path
    print(ensure())
