"""Writing the generated files: only those whose content changed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from genmod.ics import cgen, names, pygen
from genmod.ics.model import Service
from genmod.ics.parser import parse_file


def shim_dir() -> Path:
    """Userspace stand-ins for the kernel headers ``<svc>_ics_wire.c`` (and, for
    tests, ``<svc>_ics.c``) include: put it first on the include path."""
    return Path(__file__).resolve().parent / "shim"


def render(svc: Service) -> dict[str, str]:
    """File name -> content of every file generated for ``svc``."""
    return {**cgen.render(svc), **pygen.render(svc)}


def write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless it already holds exactly
    that, so that make does not rebuild what did not change."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _write(svc: Service, out_dir: Path) -> tuple[list[Path], list[Path]]:
    outputs: list[Path] = []
    written: list[Path] = []
    for name, text in render(svc).items():
        path = out_dir / name
        outputs.append(path)
        if write_if_changed(path, text):
            written.append(path)
    return outputs, written


def generate(spec_path: Path, out_dir: Path) -> list[Path]:
    """Compile one spec into ``out_dir``; return the paths of all its generated
    files (``<svc>_ics.h``, ``<svc>_ics_wire.c``, ``<svc>_ics.c``,
    ``<svc>_ics.py``), of which only those whose content changed are
    rewritten.  Raises :class:`~genmod.ics.model.SpecError` (a GenmodError)
    for a bad spec, before writing anything."""
    return _write(parse_file(spec_path), out_dir)[0]


def generate_all(spec_paths: Iterable[Path], out_dir: Path) -> tuple[list[Path], list[Path]]:
    """Compile several specs together, also checking that their service ids
    and generated C names do not collide.  Returns (all outputs, rewritten)."""
    services = [parse_file(p) for p in spec_paths]
    names.check_services(services)
    outputs: list[Path] = []
    written: list[Path] = []
    for svc in services:
        o, w = _write(svc, out_dir)
        outputs += o
        written += w
    return outputs, written
