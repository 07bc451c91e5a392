"""ssi-fuzz (tests/fuzz/ssi_fuzz.c) on the host, and its errno table against its doc.

The host kernel has no SSI system calls (548..551 are unassigned upstream), so
every call the fuzzer makes here must fail with ENOSYS: that runs the whole
machinery (both halves, the sandboxes for rexec/rfork/migrate, the summary)
without a cluster. ``--assume-loaded`` makes the checker expect served calls,
which the host then "fails" with ENOSYS: the checker must catch that.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tests" / "fuzz" / "ssi_fuzz.c"
ERRNO_HEADER = REPO / "abi" / "ssi_errnos.h"
ERRNO_DOC = REPO / "abi" / "ERRNOS.md"
SLOTS = 64 + 4  # ssisys 0..63, out of range, rexec, rfork, migrate


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("needs gcc on the host", pytrace=False)
    out = tmp_path_factory.mktemp("fuzz") / "ssi-fuzz"
    res = subprocess.run(
        [
            "gcc",
            "-static",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(REPO / "abi"),
            "-o",
            str(out),
            str(SOURCE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    return out


def run(fuzzer: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(fuzzer), *args], capture_output=True, text=True, timeout=120, check=False
    )


def stats(out: str) -> dict[str, dict[str, str]]:
    """The "stat" lines: name -> {field: value}."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("stat "):
            fields = dict(w.split("=", 1) for w in line.split()[2:])
            rows[fields["name"]] = fields
    return rows


def test_compiles_warning_free(fuzzer: Path) -> None:
    assert fuzzer.is_file()


def test_help_exits_zero_with_usage(fuzzer: Path) -> None:
    res = run(fuzzer, "--help")
    assert res.returncode == 0
    assert res.stdout.startswith("usage: ssi-fuzz") and "--seed" in res.stdout
    assert res.stderr == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--bogus",),
        ("extra",),
        ("--count",),
        ("--count", "x"),
        ("--count", "-5"),
        ("--count", "99999999999"),
        ("--seed", "1x"),
        ("--timeout", "0"),
        ("--uid", "0"),
        ("--key-hex", "abc"),
        ("--key-hex", "zz" * 32),
        ("--key-hex", "00" * 8),
        ("--no-root", "--no-unpriv"),
    ],
)
def test_bad_arguments_fail_with_one_line(fuzzer: Path, args: tuple[str, ...]) -> None:
    res = run(fuzzer, *args)
    assert res.returncode == 2, res
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ssi-fuzz: error: "), res.stderr


def test_host_run_is_all_enosys_and_covers_every_call(fuzzer: Path) -> None:
    res = run(fuzzer, "--count", "4000", "--seed", "42")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    assert "VIOLATION" not in res.stdout
    rows = stats(res.stdout)
    assert len(rows) == SLOTS
    for name, row in rows.items():
        calls = int(row["root"]) + int(row["unpriv"])
        assert calls > 0, name
        assert row["served"] == "0" and int(row.get("ENOSYS", 0)) == calls, row
    result = res.stdout.splitlines()[-1]
    assert re.match(r"result: calls=4000 violations=0 seed=42 ", result), result


def test_same_seed_same_calls(fuzzer: Path) -> None:
    a = stats(run(fuzzer, "--count", "3000", "--seed", "7").stdout)
    b = stats(run(fuzzer, "--count", "3000", "--seed", "7").stdout)
    c = stats(run(fuzzer, "--count", "3000", "--seed", "8").stdout)
    assert a == b
    assert a != c


def test_checker_flags_errnos_outside_the_set(fuzzer: Path) -> None:
    # ics "loaded": its commands must not fail with ENOSYS; as unprivileged,
    # its admin commands must fail with EPERM only.
    res = run(
        fuzzer, "--count", "2000", "--seed", "3", "--assume-loaded", "ics", "--max-print", "100000"
    )
    assert res.returncode == 1, res.stdout[-2000:]
    assert re.search(
        r"VIOLATION .*root ssisys\(ics_set_key\).*ENOSYS: not in its set "
        r"\{EINVAL,EFAULT,ENOMEM\}",
        res.stdout,
    )
    assert re.search(r"VIOLATION .*unpriv ssisys\(cluster_set_table\).*want EPERM", res.stdout)
    # only ics's commands are wrong: the rest still fail with ENOSYS, as they must
    assert not re.search(r"VIOLATION .*\((?!ics_set_key|cluster_set_table)\w+\)", res.stdout)
    result = res.stdout.splitlines()[-1]
    assert int(re.search(r"violations=(\d+)", result).group(1)) > 0  # type: ignore[union-attr]


# ---- the errno table and its doc ----


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    parts.append(cur.strip())
    return parts


def _errnos(text: str, groups: dict[str, set[str]]) -> set[str]:
    found = set(re.findall(r"SSI_ERRNO\((E\w+)\)", text))
    for name in re.findall(r"\bSSI_ERRNOS_(\w+)", text):
        found |= groups[name]
    return found


def header_table() -> tuple[dict[str, set[str]], dict[tuple[str, str], tuple[str, bool, set[str]]]]:
    """(groups, {(syscall, cmd): (module, admin, errnos)}) from abi/ssi_errnos.h."""
    text = ERRNO_HEADER.read_text().replace("\\\n", " ")
    groups = {
        m.group(1): set(re.findall(r"SSI_ERRNO\((E\w+)\)", m.group(2)))
        for m in re.finditer(r"#define SSI_ERRNOS_(\w+)\s+(.*)", text)
    }
    table_text = re.search(r"#define SSI_ERRNO_TABLE\s+(.*)", text).group(1)  # type: ignore[union-attr]
    entries = {}
    for chunk in table_text.split("SSI_ERRNO_CALL(")[1:]:
        body = chunk.rsplit(")", 1)[0]
        _id, nr, cmd, module, flags, errs = _split_top(body)
        entries[(nr, cmd)] = (module.strip('"'), "SSI_ERRNO_ADMIN" in flags, _errnos(errs, groups))
    return groups, entries


def doc_table() -> tuple[dict[str, set[str]], dict[tuple[str, str], tuple[str, bool, set[str]]]]:
    """The same from abi/ERRNOS.md (the table between the errno-table markers)."""
    text = ERRNO_DOC.read_text()
    groups = {
        m.group(1): set(re.findall(r"\bE[A-Z0-9]+\b", m.group(2)))
        for m in re.finditer(r"^- \*\*(\w+)\*\*: (.*?) — ", text, re.M | re.S)
    }
    body = text.split("<!-- errno-table")[1].split("<!-- end errno-table")[0]
    entries = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("call", "---"):
            continue
        call, command, module, admin, errs, _success = cells
        nr = "__NR_ssisys" if call == "ssisys" else f"__NR_{call}"
        if call != "ssisys":
            cmd = "SSI_ERRNO_CMD_NONE"
        elif command.startswith(">="):
            cmd = "SSI_ERRNO_CMD_OUT_OF_RANGE"
        else:
            cmd = "SSISYS_" + command.split()[0]
        names = {e.strip() for e in errs.split(",") if e.strip() not in ("", "-")}
        expanded: set[str] = set()
        for n in names:
            expanded |= groups.get(n, {n})
        entries[(nr, cmd)] = ("" if module == "(none yet)" else module, admin == "yes", expanded)
    return groups, entries


def test_errno_doc_matches_the_table() -> None:
    h_groups, h_entries = header_table()
    d_groups, d_entries = doc_table()
    assert h_groups == d_groups
    assert len(h_entries) == 18
    assert h_entries == d_entries


def test_errno_table_names_real_commands() -> None:
    from abi.header import header_text, parse_defines

    defines = parse_defines(header_text())
    _, entries = header_table()
    for nr, cmd in entries:
        assert nr in defines, nr
        assert cmd in defines or cmd.startswith("SSI_ERRNO_CMD_"), cmd
