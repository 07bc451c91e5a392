"""Where this ``ssictl`` runs from: an ssikit checkout, or an installed copy."""

from __future__ import annotations

from pathlib import Path


def checkout_root() -> Path | None:
    """The root of the ssikit checkout this code lives in, or ``None`` when it is
    installed elsewhere (site-packages has no ``kernel/`` next to ``ssictl/``)."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "kernel").is_dir():
        return root
    return None
