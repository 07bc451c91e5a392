"""`python -m qemu` and `make cluster` on the host: bad options and values give one
line and exit 2 before anything boots; EXEC reaches the harness verbatim."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def qemu_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qemu", *args], cwd=REPO, capture_output=True, text=True,
        timeout=60, check=False, env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--nodes", "0"], "up: error: argument --nodes/-n: must be 1..63, not 0"),
        (["up", "--nodes", "64"], "up: error: argument --nodes/-n: must be 1..63, not 64"),
        (["up", "-n", "x"], "up: error: argument --nodes/-n: not a number: 'x'"),
        (["up", "--memory", "1"], "up: error: argument --memory/-m: must be 64..65536, not 1"),
        (["up", "--timeout", "0"], "up: error: argument --timeout: must be > 0, not 0"),
        (["up", "--bogus"], ": error: unrecognized arguments: --bogus"),
        (["up", "--exec", "a", "--exec-env", "B"],
         "up: error: argument --exec-env: not allowed with argument --exec"),
        (["frobnicate"], ": error: argument COMMAND: invalid choice: 'frobnicate' "
                         "(choose from 'up', 'bench', 'netbench')"),
        ([], ": error: the following arguments are required: COMMAND"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str], message: str) -> None:
    # SSI_KERNEL points nowhere: a usage error must come before any kernel check.
    r = qemu_cli(*args, env={"SSI_KERNEL": "/nonexistent/bzImage"})
    assert r.returncode == 2, r
    prefix = "python -m qemu " if message.startswith("up") else "python -m qemu"
    assert r.stderr == prefix + message + "\n"
    assert r.stdout == ""


def test_missing_kernel_is_one_line(tmp_path: Path) -> None:
    r = qemu_cli("up", "--nodes", "1", "--exec", "true",
                 env={"SSI_KERNEL": str(tmp_path / "bzImage"), "SSI_LOG_ROOT": str(tmp_path)})
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"kernel image {tmp_path / 'bzImage'} is missing" in r.stderr
    assert list(tmp_path.iterdir()) == [], "no log dir for a cluster that never booted"


def test_help_shows_defaults() -> None:
    r = qemu_cli("up", "--help")
    assert r.returncode == 0
    assert "number of nodes (1..63) (default: 3)" in " ".join(r.stdout.split())
    assert "(default: 256; 512 for FLAVOR=debug)" in " ".join(r.stdout.split())


FAKE_PY = """#!{python}
import json, os, sys
with open({out!r}, "w") as f:
    json.dump({{"argv": sys.argv[1:], "SSI_EXEC": os.environ.get("SSI_EXEC"),
               "EXEC": os.environ.get("EXEC")}}, f)
"""


def make_cluster(
    tmp_path: Path, *make_args: str, env: dict[str, str] | None = None
) -> dict[str, object]:
    """`make cluster` with the build steps skipped and PY a stand-in that records
    what it was given (EXEC only from `make_args` or `env`)."""
    if shutil.which("make") is None:
        pytest.skip("no make")
    out = tmp_path / "called.json"
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PY.format(python=sys.executable, out=str(out)))
    fake.chmod(0o755)
    r = subprocess.run(
        ["make", "-s", "-o", "modules", "cluster", f"PY={fake}", *make_args],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        env={**{k: v for k, v in os.environ.items() if k not in ("EXEC", "SSI_EXEC")},
             **(env or {})},
    )
    assert r.returncode == 0, r
    data: dict[str, object] = json.loads(out.read_text())
    return data


TRICKY = "echo '$HOME' \"$HOME\" $(echo hi) `echo tick` 'a''b' \\$x; echo $$"


def test_make_cluster_passes_exec_verbatim(tmp_path: Path) -> None:
    called = make_cluster(tmp_path, f"EXEC={TRICKY}", "NODES=2")
    assert called["SSI_EXEC"] == TRICKY
    assert called["EXEC"] is None  # only the verbatim copy reaches the harness
    assert called["argv"] == ["-m", "qemu", "up", "--nodes", "2", "--load-modules",
                              "--exec-env", "SSI_EXEC"]


def test_make_cluster_exec_from_the_environment(tmp_path: Path) -> None:
    called = make_cluster(tmp_path, env={"EXEC": TRICKY})
    assert called["SSI_EXEC"] == TRICKY


def test_make_cluster_without_exec_attaches(tmp_path: Path) -> None:
    called = make_cluster(tmp_path)
    assert called["SSI_EXEC"] == ""  # --exec-env of an empty variable: the shell


def test_make_cluster_nodes_0_is_one_line_exit_2() -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    r = subprocess.run(
        ["make", "-s", "-o", "modules", "cluster", "NODES=0", f"PY={sys.executable}"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "SSI_KERNEL": "/nonexistent/bzImage"},
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "python -m qemu up: error: argument --nodes/-n: must be 1..63, not 0"
    assert all(ln.startswith("make") for ln in lines[1:]), lines  # make's own "Error 2"
