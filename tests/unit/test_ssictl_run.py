"""``ssictl.cli.run``: every command's exit status and error form on bad input and Ctrl-C.

run() is what the console script and the per-node daemon's forked child call: it
must return an exit status (never raise SystemExit), keep errors to one line (or one
JSON document with --json) and leave stdout to results.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

import abi
from abi import errors as abi_errors
from ssictl import cli
from ssictl.output import CLIError


def _leaf_commands() -> list[tuple[list[str], Any]]:
    """(words, click command) of every ssictl command, walked from the app itself."""
    out: list[tuple[list[str], Any]] = []

    def walk(words: list[str], cmd: Any) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk([*words, name], sub)
        else:
            out.append((words, cmd))

    walk([], typer.main.get_command(cli.app))
    return out


COMMANDS = _leaf_commands()
COMMAND_IDS = [" ".join(w) for w, _ in COMMANDS]


def _json_capable(cmd: Any) -> bool:
    return any("--json" in p.opts for p in cmd.params)


@pytest.fixture(autouse=True)
def _no_ssi_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(abi_errors, "SSI_SYSFS", tmp_path / "no_ssi")


def test_the_command_list_is_complete() -> None:
    assert {"clusternode-num", "modules load", "cluster up", "ics test", "ps"} <= set(COMMAND_IDS)
    assert "node" not in COMMAND_IDS


@pytest.mark.parametrize(("words", "cmd"), COMMANDS, ids=COMMAND_IDS)
def test_bad_option_is_one_line_and_exit_2(
    words: list[str], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    if words in (["localview"], ["onnode"]):  # pass options on to the command they run
        pytest.skip(f"{words[0]} forwards options")
    assert cli.run([*words, "--xyzzy"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    usage = f"see `ssictl {' '.join(words)} --help`"
    assert err == f"ssictl: error: no such option: --xyzzy ({usage})\n"


@pytest.mark.parametrize(("words", "cmd"), COMMANDS, ids=COMMAND_IDS)
def test_bad_option_with_json_is_a_json_document(
    words: list[str], cmd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    if not _json_capable(cmd):
        pytest.skip("no --json")
    assert cli.run([*words, "--json", "--xyzzy"]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == {
        "ok": False,
        "error": {
            "message": "no such option: --xyzzy",
            "hint": f"see `ssictl {' '.join(words)} --help`",
        },
    }


def _numeric_params(cmd: Any) -> list[str]:
    """The int/float parameters of *cmd*: first option string, or "" for an argument."""
    out = []
    for p in cmd.params:
        ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
        if ann in (int, float, int | None, float | None):
            out.append(p.opts[0] if p.param_type_name == "option" else "")
    return out


BAD_VALUE_CASES = [(words, opt) for words, cmd in COMMANDS for opt in _numeric_params(cmd)]


def test_there_are_numeric_parameters_to_check() -> None:
    ids = {(" ".join(w), o) for w, o in BAD_VALUE_CASES}
    assert ("ics test", "--count") in ids and ("clusternode-info", "") in ids
    assert ("cluster status", "--interval") in ids and ("where", "") in ids


@pytest.mark.parametrize(("words", "opt"), BAD_VALUE_CASES)
def test_bad_value_is_one_line_and_exit_2(
    words: list[str], opt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arguments (NODE, PID) come first; every command here takes at most one.
    argv = [*words, opt, "x"] if opt else [*words, "x"]
    if opt and words == ["ics", "test"]:
        argv = [*words, "2", opt, "x"]
    assert cli.run(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("ssictl: error: invalid value for ") and "Traceback" not in err


def test_out_of_range_values_are_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["cluster", "status", "--watch", "--interval", "0"]) == 1
    assert "--interval 0 is out of range" in capsys.readouterr().err
    assert cli.run(["clusternode-info", "64", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["error"]["message"] == "node 64 is out of range"
    assert cli.run(["cluster", "keygen", "/nonexistent/k", "--bytes", "8"]) == 1
    assert "--bytes 8 is out of range" in capsys.readouterr().err


def test_missing_argument_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["clusternode-info"]) == 2
    assert capsys.readouterr().err == (
        "ssictl: error: missing argument 'NODE' (see `ssictl clusternode-info --help`)\n"
    )
    assert cli.run(["nosuch"]) == 2
    assert "no such command 'nosuch'" in capsys.readouterr().err


def test_no_arguments_prints_help_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run([]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Usage: ssictl [OPTIONS] COMMAND" in err and "clusternode-num" in err


def test_help_is_exit_0_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["cluster", "up", "--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Usage: ssictl cluster up [OPTIONS]") and err == ""


@pytest.mark.parametrize(("words", "cmd"), COMMANDS, ids=COMMAND_IDS)
def test_help_shows_every_default(words: list[str], cmd: Any) -> None:
    ctx = typer.Context(cmd, info_name=" ".join(words))
    checked = 0
    for p in cmd.params:
        if p.param_type_name != "option" or p.is_flag or p.default is None:
            continue
        record = p.get_help_record(ctx)
        assert record is not None and "[default: " in record[1], (words, p.opts, record)
        checked += 1
    if words in (["ics", "test"], ["cluster", "status"], ["cluster", "keygen"]):
        assert checked >= 1


def test_help_keeps_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Defaults written into help texts must not be eaten as rich markup."""
    assert cli.run(["cluster", "up", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "[default: every module in DIR]" in out


# --------------------------------------------------------------------------- Ctrl-C


@pytest.fixture
def interrupted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def interrupt() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(abi, "clusternode_num", interrupt)
    yield


@pytest.mark.usefixtures("interrupted")
def test_ctrl_c_is_130_and_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["clusternode-num"]) == 130
    assert capsys.readouterr() == ("", "ssictl: interrupted\n")
    assert cli.run(["clusternode-num", "--json"]) == 130
    out, err = capsys.readouterr()
    assert err == "ssictl: interrupted\n"
    assert json.loads(out) == {"ok": False, "error": {"message": "interrupted", "hint": ""}}


def test_escaped_cli_error_and_sys_exit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail() -> int:
        raise CLIError("no luck", "try again", exit_code=3)

    monkeypatch.setattr(abi, "clusternode_num", fail)
    assert cli.run(["clusternode-num"]) == 3  # handle_errors reports it
    assert capsys.readouterr().err == "ssictl: error: no luck\n  fix: try again\n"

    def bail() -> int:
        sys.exit(4)

    monkeypatch.setattr(abi, "clusternode_num", bail)
    assert cli.run(["clusternode-num"]) == 4

    def bail_text() -> int:
        sys.exit("gave up")

    monkeypatch.setattr(abi, "clusternode_num", bail_text)
    assert cli.run(["clusternode-num"]) == 1
    assert capsys.readouterr().err == "ssictl: gave up\n"


def test_wants_json() -> None:
    assert cli.wants_json(["cluster", "status", "--json"])
    assert not cli.wants_json(["localview", "--", "tool", "--json"])
    assert not cli.wants_json(["ps"])


# --------------------------------------------------------------------------- the real process


def _ssictl(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ssictl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **kw,
    )


def test_console_script_bad_option_and_value() -> None:
    r = _ssictl("cluster", "status", "--xyzzy")
    assert (r.returncode, r.stdout) == (2, "")
    usage = "see `ssictl cluster status --help`"
    assert r.stderr == f"ssictl: error: no such option: --xyzzy ({usage})\n"
    r = _ssictl("ics", "test", "two", "--json")
    assert r.returncode == 2 and r.stderr == ""
    assert json.loads(r.stdout)["error"]["message"].startswith("invalid value for 'NODE'")


@pytest.mark.parametrize("as_json", [False, True])
def test_console_script_sigint_is_130(tmp_path: Path, as_json: bool) -> None:
    """A real SIGINT while ssictl blocks reading its key file (a FIFO)."""
    fifo = tmp_path / "key"
    os.mkfifo(fifo)
    argv = [sys.executable, "-m", "ssictl", "cluster", "setup", "--peer", "1=10.0.0.1"]
    argv += ["--key-file", str(fifo), *(["--json"] if as_json else [])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = -1
    try:
        # Opening the FIFO for writing succeeds once ssictl has opened it for reading:
        # by then it is past its imports and about to block in the read.
        deadline = time.monotonic() + 60
        while writer < 0:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "ssictl never opened its key file"
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:  # ENXIO: no reader yet
                assert e.errno == errno.ENXIO, e
                time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if writer >= 0:
            os.close(writer)
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert err == "ssictl: interrupted\n"
    if as_json:
        assert json.loads(out)["error"]["message"] == "interrupted"
    else:
        assert out == ""
