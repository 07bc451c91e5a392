"""Each node's own local disk: a sparse raw image with an ext4 file system, made on
the host without root (``mkfs.ext4`` on a file), attached as a virtio-blk disk with
the serial DATA_DISK_SERIAL; the guest's init.sh mounts it read-write at /srv.

The image lives beside the cluster's logs and survives the node's crashes and
restarts, as a physical disk does (what the guest synced is on it); the cluster
removes it when it stops unless asked to keep it (``keep_disks``, $SSI_KEEP_DISKS=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

DATA_DISK_SERIAL = "ssi-disk"  # init.sh mounts the disk with this virtio-blk serial
MIN_MIB = 16  # ext4 with a journal needs a few MiB of its own


class DiskError(RuntimeError):
    """A node disk could not be made."""


def _mkfs() -> str:
    for cand in (shutil.which("mkfs.ext4"), "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise DiskError("mkfs.ext4 not found: install e2fsprogs (apt-get install e2fsprogs)")


def keep_disks_default() -> bool:
    return os.environ.get("SSI_KEEP_DISKS", "0") == "1"


def make_node_disk(path: Path, mib: int, node: int) -> Path:
    """A fresh `mib` MiB sparse image at `path`, ext4 labelled ssi-node<N>."""
    if mib < MIN_MIB:
        raise ValueError(f"a node disk needs at least {MIN_MIB} MiB, not {mib}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with open(path, "wb") as f:
        f.truncate(mib * 2**20)
    # lazy init: mkfs writes only the metadata it needs; the guest's kernel
    # finishes the inode tables in the background.
    cmd = [_mkfs(), "-q", "-F", "-L", f"ssi-node{node}", "-E",
           "lazy_itable_init=1,lazy_journal_init=1", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        path.unlink(missing_ok=True)
        raise DiskError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return path


def remove_node_disks(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
