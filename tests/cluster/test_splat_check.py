"""The console splat check of tests/conftest.py, tested from the outside: inner
pytest sessions (pytester, in a subprocess) boot a 1-node cluster with the real
conftest and plant kernel warnings through /dev/kmsg in each test phase."""

from __future__ import annotations

from pathlib import Path

import pytest

from qemu.logs import run_dir
from qemu.paths import REPO_ROOT

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

CONFTEST = REPO_ROOT / "tests" / "conftest.py"

INNER_TESTS = '''
import pytest

CLUSTER_NODES = 1
CLUSTER_MEMORY = 192


def plant(cluster, where):
    # No wait for the console here: the splat check must catch it on its own.
    cluster.node(1).succeed(f"echo '<4>WARNING: planted by test in {where}' > /dev/kmsg")


def test_clean(cluster):
    cluster.node(1).succeed("true")


def test_planted(cluster):
    plant(cluster, "call")


@pytest.mark.allow_splat(r"planted by test")
def test_planted_allowed(cluster):
    plant(cluster, "call")


@pytest.fixture
def plants_in_setup(cluster):
    plant(cluster, "setup")
    yield


def test_setup_splat(plants_in_setup):
    pass


@pytest.fixture
def plants_in_teardown(cluster):
    yield
    plant(cluster, "teardown")


def test_teardown_splat(plants_in_teardown):
    pass


@pytest.mark.allow_splat(r"planted by test")
def test_teardown_splat_allowed(plants_in_teardown):
    pass
'''


def run_inner(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, select: str
) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_inner=INNER_TESTS)
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    # The inner session's logs go inside this run's, so `latest` stays ours.
    monkeypatch.setenv("SSI_LOG_ROOT", str(run_dir() / "pytester"))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-k", select)


def test_unallowed_splat_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_inner(pytester, monkeypatch, "test_clean or test_planted")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*kernel splat(s) on the console during test call*",
        "node1:*: [[]warning[]] *WARNING: planted by test in call",
        "PASSED test_inner.py::test_clean",
        "PASSED test_inner.py::test_planted_allowed",
        "FAILED test_inner.py::test_planted*",
    ], consecutive=False)


def test_allowed_splat_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_inner(pytester, monkeypatch, "test_planted_allowed")
    result.assert_outcomes(passed=1)
    assert "kernel splat" not in result.stdout.str()


def test_splat_in_fixture_setup_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_inner(pytester, monkeypatch, "test_setup_splat")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*kernel splat(s) on the console during test setup*",
        "node1:*: [[]warning[]] *WARNING: planted by test in setup",
        "ERROR test_inner.py::test_setup_splat*",
    ], consecutive=False)


def test_splat_in_fixture_teardown_fails_the_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_inner(pytester, monkeypatch, "test_teardown_splat")
    # The unallowed one: passed in call, error in teardown; the allowed one passes.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*kernel splat(s) on the console during test teardown*",
        "node1:*: [[]warning[]] *WARNING: planted by test in teardown",
        "ERROR test_inner.py::test_teardown_splat - *",
    ], consecutive=False)
    assert "ERROR test_inner.py::test_teardown_splat_allowed" not in result.stdout.str()


def test_inner_logs_stay_in_this_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_inner(pytester, monkeypatch, "test_clean")
    result.assert_outcomes(passed=1)
    root = run_dir() / "pytester"
    latest = (root / "latest").resolve()
    assert latest.parent == root.resolve()
    consoles = list(Path(latest).glob("test_inner*/node1.console.log"))
    assert consoles and "ssi-sync" in consoles[0].read_text()
    slices = list(Path(latest).glob("test_inner*/tests/test_clean/node1.console.log"))
    assert slices, sorted(str(p) for p in latest.rglob("*"))
