"""Where a harness run keeps its logs, and the per-node command log.

Every process that boots clusters gets one run directory,
``build/logs/<YYYYmmdd-HHMMSS>-<pid>/`` (``$SSI_LOG_ROOT`` instead of
``build/logs``), with one subdirectory per cluster; ``build/logs/latest``
points at the newest run. Two runs in one checkout (two ``make cluster``, two
pytest sessions) therefore never touch each other's files.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from .paths import LOG_ROOT, safe_name

LATEST = "latest"

_run_dir: Path | None = None
_run_dir_lock = threading.Lock()


def log_root() -> Path:
    """``$SSI_LOG_ROOT`` if set, else ``build/logs`` of the checkout."""
    env = os.environ.get("SSI_LOG_ROOT")
    return Path(env) if env else LOG_ROOT


def make_unique_dir(base: Path) -> Path:
    """Create and return ``base``, or ``base-2``, ``base-3``... if it exists."""
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def point_latest(root: Path, target: Path) -> None:
    """Make ``root/latest`` a relative symlink to ``target``, atomically (rename)."""
    tmp = root / f".{LATEST}.{os.getpid()}.{threading.get_ident()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(target, root), tmp)
    try:
        os.replace(tmp, root / LATEST)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def new_run_dir(root: Path | None = None) -> Path:
    """A fresh run directory under ``root`` (default :func:`log_root`); moves ``latest``."""
    root = root or log_root()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    run = make_unique_dir(root / f"{stamp}-{os.getpid()}")
    point_latest(root, run)
    return run


def run_dir() -> Path:
    """This process's run directory, created on first use."""
    global _run_dir
    with _run_dir_lock:
        if _run_dir is None or not _run_dir.is_dir():
            _run_dir = new_run_dir()
        return _run_dir


def cluster_log_dir(name: str) -> Path:
    """A new directory for one cluster's logs in this run: ``<run>/<name>[-N]``."""
    return make_unique_dir(run_dir() / safe_name(name))


def _indent(text: str, prefix: str = "    ") -> str:
    return "".join(prefix + line + "\n" for line in text.splitlines())


class CommandLog:
    """Appends every command a node ran (and its outcome) to ``nodeN.commands.log``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def _write(self, text: str) -> None:
        stamp = f"[{time.strftime('%H:%M:%S')} +{time.monotonic() - self._t0:8.3f}s] "
        with self._lock, contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(stamp + text)

    def note(self, message: str) -> None:
        self._write(message.rstrip("\n") + "\n")

    def command(
        self, cmd: str, rc: int | None, out: str, err: str, seconds: float, error: str = ""
    ) -> None:
        """One finished command; ``rc`` None when it never returned (``error`` says why)."""
        status = f"exit {rc}" if rc is not None else f"no result: {error}"
        parts = [f"$ {cmd}\n" if "\n" not in cmd else "$ <<\n" + _indent(cmd)]
        parts.append(f"    -> {status} in {seconds:.3f} s\n")
        if out:
            parts.append("    --- stdout ---\n" + _indent(out, "    | "))
        if err:
            parts.append("    --- stderr ---\n" + _indent(err, "    | "))
        self._write("".join(parts))
