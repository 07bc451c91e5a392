"""Where the harness finds the repository, the kernel and its build outputs."""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
KERNEL = BUILD_DIR / "linux" / "arch" / "x86" / "boot" / "bzImage"
LOG_ROOT = BUILD_DIR / "logs"
BIN_DIR = BUILD_DIR / "bin"
GUEST_DIR = Path(__file__).resolve().parent / "guest"
INIT_SCRIPT = GUEST_DIR / "init.sh"
AGENT_SCRIPT = GUEST_DIR / "agent.sh"


class KernelMissing(RuntimeError):
    """The node kernel has not been built."""


def kernel_path(kernel: Path | str | None = None) -> Path:
    """The bzImage to boot: the argument, $SSI_KERNEL, or the in-tree build."""
    path = Path(kernel or os.environ.get("SSI_KERNEL") or KERNEL)
    if not path.is_file():
        raise KernelMissing(
            f"kernel image {path} is missing: run `make kernel` first "
            "(or point SSI_KERNEL at a bzImage)"
        )
    return path


def safe_name(name: str) -> str:
    """A file-system friendly version of a test or cluster name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120] or "cluster"
