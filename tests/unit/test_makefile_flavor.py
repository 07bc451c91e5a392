"""The Makefile hands FLAVOR to genmod (--flavor) and to the harness ($SSI_FLAVOR)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _dry_run(*args: str) -> list[str]:
    """The commands ``make -n ARGS`` would run (nothing is run)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLAVOR", "SSI_FLAVOR", "GENMOD_FLAVOR", "MAKEFLAGS", "MFLAGS")}
    r = subprocess.run(["make", "-n", "-s", *args], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60, check=True)
    return r.stdout.splitlines()


@pytest.mark.parametrize("flavor", ["debug", "normal"])
def test_kernel_and_modules_build_the_flavor(flavor: str) -> None:
    lines = _dry_run("modules", f"FLAVOR={flavor}")
    assert f".venv/bin/genmod --flavor {flavor} kernel" in lines
    assert f".venv/bin/genmod --flavor {flavor} modules" in lines


def test_the_default_flavor_is_normal() -> None:
    lines = _dry_run("modules")
    assert ".venv/bin/genmod --flavor normal kernel" in lines


@pytest.mark.parametrize(("target", "command"), [
    ("test", "SSI_FLAVOR=debug .venv/bin/pytest"),
    ("cluster", "SSI_FLAVOR=debug .venv/bin/python -m qemu up"),
    ("bench", "SSI_FLAVOR=debug .venv/bin/python -m bench"),
])
def test_harness_targets_get_ssi_flavor(target: str, command: str) -> None:
    lines = _dry_run(target, "FLAVOR=debug")
    assert any(line.startswith(command) for line in lines), lines
    # ...after building that flavor's kernel and modules.
    assert ".venv/bin/genmod --flavor debug modules" in lines


def test_flavor_from_the_environment() -> None:
    env = {**os.environ, "FLAVOR": "debug"}
    r = subprocess.run(["make", "-n", "-s", "test"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60, check=True)
    assert any(line.startswith("SSI_FLAVOR=debug ") for line in r.stdout.splitlines())
