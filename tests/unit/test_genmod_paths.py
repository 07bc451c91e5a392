"""genmod.paths.find_root: the one way genmod finds the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from genmod import paths


def _checkout(tmp_path: Path, name: str = "ssikit") -> Path:
    root = tmp_path / "co"
    (root / "kernel/ics").mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n')
    return root


def test_found_from_a_directory_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENMOD_ROOT", raising=False)
    root = _checkout(tmp_path)
    assert paths.find_root(root / "kernel/ics") == root
    monkeypatch.chdir(root / "kernel")
    assert paths.find_root() == root


def test_another_project_is_not_a_checkout(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a checkout above ``start``, the one holding genmod itself is used."""
    monkeypatch.delenv("GENMOD_ROOT", raising=False)
    other = _checkout(tmp_path, name="other")
    assert paths.find_root(other / "kernel") == Path(paths.__file__).resolve().parents[1]


def test_genmod_root_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _checkout(tmp_path)
    monkeypatch.setenv("GENMOD_ROOT", str(root))
    assert paths.find_root(Path("/")) == root
    monkeypatch.setenv("GENMOD_BUILD_DIR", str(tmp_path / "scratch"))
    found = paths.Paths.discover()
    assert (found.root, found.linux) == (root, tmp_path / "scratch/linux")
