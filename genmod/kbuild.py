"""Running kbuild's make: ccache, reproducible build stamps, progress, logs.

kbuild prints one ``  CC      kernel/fork.o`` line per step.  Instead of
streaming thousands of those, :func:`run_make` shows a rich progress line (C
files compiled against the count of the previous comparable build, and the
current file), writes everything to a log file, and on failure raises a
:class:`KbuildError` carrying the error lines and the tail of the log.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from genmod import ui
from genmod.errors import BuildError

# Fixed build identity so that two builds of the same inputs give the same
# bytes (uts version string, /proc/version).
BUILD_TIMESTAMP = "Thu Jan  1 00:00:00 UTC 2026"
BUILD_USER = "ssikit"
BUILD_HOST = "ssikit"
BUILD_VERSION = "1"

TAIL_LINES = 40

# "  CC      kernel/fork.o", "  CC [M]  /x/y.o", "  LD [M]  /x/y.ko"
_STEP_RE = re.compile(r"^  ([A-Z][A-Z0-9_-]*(?: \[M\])?)\s+(\S.*)$")
_WARNING_RE = re.compile(r"\bwarning:|^WARNING:")
_ERROR_RE = re.compile(r"(\berror:|\bError \d+|^ERROR:|\*\*\*|undefined reference|"
                       r"No rule to make target)")


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_cc() -> str:
    return "ccache gcc" if shutil.which("ccache") else "gcc"


@dataclass(frozen=True)
class MakeSettings:
    """How every make invocation of one genmod run is done (kernel and modules alike)."""

    cc: str = field(default_factory=default_cc)
    jobs: int = field(default_factory=default_jobs)
    timestamp: str = BUILD_TIMESTAMP
    user: str = BUILD_USER
    host: str = BUILD_HOST

    def make_vars(self) -> list[str]:
        # LOCALVERSION set (empty) keeps setlocalversion from appending "+".
        return [f"CC={self.cc}", "LOCALVERSION="]

    def env(self, ccache_basedir: Path) -> dict[str, str]:
        env = dict(os.environ)
        # CCACHE_DIR stays ccache's default (outside the checkout) so fresh
        # clones and re-unpacked trees hit the same cache.
        env.update({
            "CCACHE_BASEDIR": str(ccache_basedir.resolve()),  # ccache ignores a relative one
            "CCACHE_NOHASHDIR": "1",
            "KBUILD_BUILD_TIMESTAMP": self.timestamp,
            "KBUILD_BUILD_USER": self.user,
            "KBUILD_BUILD_HOST": self.host,
            "KBUILD_BUILD_VERSION": BUILD_VERSION,
            "LC_ALL": "C",
        })
        # Variables from the caller's shell that would change what kbuild does.
        for var in ("ARCH", "CROSS_COMPILE", "KBUILD_OUTPUT", "O", "M", "KCONFIG_CONFIG",
                    "LOCALVERSION", "KBUILD_EXTRA_SYMBOLS"):
            env.pop(var, None)
        return env

    def fingerprint(self) -> dict[str, str]:
        """What, besides the sources, determines the build output (for stamps)."""
        return {"cc": self.cc, "timestamp": self.timestamp, "user": self.user,
                "host": self.host, "version": BUILD_VERSION}


class KbuildError(BuildError):
    """make failed; the message has the error lines and the log's tail."""


@dataclass
class MakeResult:
    compiled: int
    steps: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def report_warnings(self, label: str, limit: int = 10) -> None:
        if not self.warnings:
            return
        ui.warn(f"{label}: {len(self.warnings)} warning(s) from the build:")
        for w in self.warnings[:limit]:
            ui.note(w)


@dataclass
class _Stats:
    path: Path
    compiled: int | None = None

    @classmethod
    def load(cls, path: Path) -> _Stats:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(path, int(data["compiled"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls(path)

    def save(self, result: MakeResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"compiled": result.compiled, "steps": result.steps,
                                         "seconds": round(result.seconds, 1)}) + "\n",
                             encoding="utf-8")


def make_command(tree: Path, targets: Sequence[str], settings: MakeSettings,
                 extra_vars: Sequence[str] = ()) -> list[str]:
    return ["make", "-C", str(tree), f"-j{settings.jobs}", *settings.make_vars(),
            *extra_vars, *targets]


def error_summary(lines: Sequence[str], limit: int = 15) -> list[str]:
    """The lines of a failed build that name the error (compiler/make/modpost)."""
    return [line for line in lines if _ERROR_RE.search(line)][:limit]


def run_make(tree: Path, targets: Sequence[str], *, settings: MakeSettings,
             ccache_basedir: Path, log: Path, label: str, verbose: bool = False,
             extra_vars: Sequence[str] = (), stats_key: str | None = None,
             env_extra: Mapping[str, str] | None = None, append_log: bool = False,
             expect_full: bool = True) -> MakeResult:
    """Run make in ``tree`` with progress; raise :class:`KbuildError` on failure.

    ``stats_key`` names a stats file next to the log holding the number of C
    files the previous build with that key compiled; it becomes the progress
    bar's total when ``expect_full`` (a fresh tree compiles as many as last
    time); an incremental build just counts.
    """
    cmd = make_command(tree, targets, settings, extra_vars)
    env = settings.env(ccache_basedir)
    if env_extra:
        env.update(env_extra)
    log.parent.mkdir(parents=True, exist_ok=True)
    stats = _Stats.load(log.parent / f"{stats_key}.stats.json") if stats_key else None
    total = stats.compiled if stats and expect_full else None

    start = time.monotonic()
    compiled = steps = 0
    # Everything kbuild printed that is not a step line: warnings and errors.
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    noise: list[str] = []
    interactive = ui.console.is_terminal and not verbose
    progress = Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TextColumn("{task.fields[current]}"), TimeElapsedColumn(),
        console=ui.console, transient=True, disable=not interactive)
    with log.open("a" if append_log else "w", encoding="utf-8") as logf, progress:
        logf.write(f"# genmod {label}: {' '.join(cmd)}\n# started {time.ctime()}\n")
        logf.flush()
        task = progress.add_task(label, total=total, current="")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, text=True, errors="replace", bufsize=1)
        assert proc.stdout is not None
        try:
            last_report = start
            for line in proc.stdout:
                logf.write(line)
                line = line.rstrip("\n")
                tail.append(line)
                if verbose:
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                m = _STEP_RE.match(line)
                if m:
                    steps += 1
                    if m.group(1).startswith("CC"):
                        compiled += 1
                        if total is not None and compiled > total:
                            total = None
                            progress.update(task, total=None)
                        progress.update(task, completed=compiled,
                                        current=escape(_short(m.group(2))))
                elif line.strip():
                    noise.append(line)
                if not interactive and not verbose and time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    ui.note(f"{label}: {compiled} C files compiled"
                            + (f" of ~{total}" if total else ""))
        except BaseException:  # Ctrl-C (KeyboardInterrupt) included
            _stop(proc)
            logf.write("# interrupted: make stopped\n")
            raise
        rc = proc.wait()
        seconds = time.monotonic() - start
        logf.write(f"# exit status {rc} after {seconds:.1f} s\n")
    result = MakeResult(compiled=compiled, steps=steps, seconds=seconds,
                        warnings=[n for n in noise if _WARNING_RE.search(n)])
    if rc != 0:
        errors = error_summary(noise)
        msg = [f"{label} failed (make exit status {rc}); full log: {log}"]
        if errors:
            msg += ["errors:", *(f"  {e}" for e in errors)]
        msg += [f"last {len(tail)} lines of the log:", *(f"  {t}" for t in tail)]
        raise KbuildError("\n".join(msg))
    if stats is not None and compiled and expect_full:
        # Only builds of a fresh tree are a useful estimate for the next one.
        stats.save(result)
    return result


def _stop(proc: subprocess.Popen[str]) -> None:
    """Leave no make running behind us: a terminal's Ctrl-C reaches make too, but a
    SIGINT or error in genmod alone does not."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _short(target: str, width: int = 50) -> str:
    return target if len(target) <= width else "…" + target[-(width - 1):]


def run_quiet(cmd: Sequence[str], *, cwd: Path, log: Path, env: Mapping[str, str] | None = None,
              what: str) -> str:
    """Run a short command, append its output to ``log``, fail with its output."""
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(list(cmd), cwd=cwd, env=None if env is None else dict(env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", check=False)
    with log.open("a", encoding="utf-8") as logf:
        logf.write(f"# genmod {what}: {' '.join(cmd)} (in {cwd})\n{proc.stdout}"
                   f"# exit status {proc.returncode}\n")
    if proc.returncode != 0:
        lines = proc.stdout.splitlines()[-TAIL_LINES:]
        raise KbuildError(f"{what} failed (exit status {proc.returncode}); log: {log}\n"
                          + "\n".join(f"  {line}" for line in lines))
    return proc.stdout
