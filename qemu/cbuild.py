"""Compile the harness's small C programs (the hub, the guests' ssictl client)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .paths import BUILD_DIR, REPO_ROOT

GUEST_BIN_DIR = BUILD_DIR / "guest-bin"  # first on the guests' PATH (guest/init.sh)
SSICTL_CLIENT_SOURCE = REPO_ROOT / "ssictl" / "client.c"
CLUSTER_UP_SOURCE = REPO_ROOT / "ssictl" / "cluster_up.c"
RESTORE_HELPER_SOURCE = REPO_ROOT / "kernel" / "vproc" / "tools" / "ssi-restore.c"


class CBuildError(RuntimeError):
    """A C program of the harness did not compile."""


def build_c_program(
    source: Path, binary: Path, flags: tuple[str, ...] = (), headers: tuple[Path, ...] = ()
) -> Path:
    """Compile `source` into `binary` when it is missing or older than the source
    or one of the *headers* it includes."""
    if binary.is_file():
        built = binary.stat().st_mtime
        if all(built >= p.stat().st_mtime for p in (source, *headers)):
            return binary
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise CBuildError(f"no C compiler (gcc/cc) to build {source.name}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    cmd = [cc, "-O2", "-Wall", "-Wextra", *flags, "-o", str(tmp), str(source)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise CBuildError(f"building {source.name} failed: {' '.join(cmd)}\n{res.stderr}")
    tmp.replace(binary)  # atomic: parallel builders never see a half-written file
    return binary


def build_ssictl_client() -> Path:
    """build/guest-bin/ssictl: the thin client of the guests' resident ssictl daemon."""
    return build_c_program(SSICTL_CLIENT_SOURCE, GUEST_BIN_DIR / "ssictl", ("-Werror",))


def build_cluster_up() -> Path:
    """build/guest-bin/ssi-cluster-up: `ssictl cluster up` compiled (no Python start)."""
    return build_c_program(
        CLUSTER_UP_SOURCE,
        GUEST_BIN_DIR / "ssi-cluster-up",
        ("-Werror",),
        (REPO_ROOT / "abi" / "ssi_abi.h",),
    )


def build_restore_helper() -> Path:
    """build/guest-bin/ssi-restore: migration.ko's restore helper (static: it
    starts on every arrival, and a static binary loads no libraries)."""
    return build_c_program(
        RESTORE_HELPER_SOURCE,
        GUEST_BIN_DIR / "ssi-restore",
        ("-Werror", "-static"),
        (REPO_ROOT / "abi" / "ssi_abi.h",),
    )
