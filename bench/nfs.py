"""NFS v4.2 between two guests: the kernel's nfsd on one, its client on the other.

The baseline CFS is measured against (bench/cfs.py). The node kernel has nfsd and
the NFS client built in (kernel/configs/ssi-base.config); nfsd's userspace
(``rpc.nfsd``, ``rpc.mountd``, ``exportfs``) comes from Debian's packages, unpacked
under ``build/nfs-utils`` with ``apt-get download`` and ``dpkg -x``.  Nothing is
installed on the host: installing ``nfs-kernel-server`` would start rpcbind and
nfsd's services there.  Guests see the host's root, so they run the unpacked
programs from that path.

The server runs NFSv4 only (no rpcbind, no lockd, no statd): ``rpc.mountd``
answers the kernel's export cache upcalls, and the export is the v4 root
(``fsid=0``), so the client mounts ``node1:/``.  The grace period after nfsd
starts is cut to its minimum (10 s) and waited out before anything is timed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from qemu import Node

from .common import REPO

USERSPACE = REPO / "build" / "nfs-utils"
PACKAGES = ("nfs-kernel-server", "nfs-common", "libwrap0")
_STAMP = USERSPACE / ".unpacked"
GRACE_S = 10


class NfsUnavailable(RuntimeError):
    """nfsd's userspace could not be fetched or started."""


def _download(where: Path) -> None:
    cmd = ["apt-get", "download", *PACKAGES]
    done = subprocess.run(cmd, cwd=where, capture_output=True, text=True)
    if done.returncode != 0 and os.geteuid() == 0:
        # A fresh machine may have no package lists yet.
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
        done = subprocess.run(cmd, cwd=where, capture_output=True, text=True)
    if done.returncode != 0:
        raise NfsUnavailable(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-400:]}\n"
                             "the NFS baseline needs Debian's nfs packages; run "
                             "`apt-get update` as root and retry")


def userspace() -> Path:
    """build/nfs-utils, unpacked from Debian's packages on first use."""
    if _STAMP.exists():
        return USERSPACE
    USERSPACE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ssikit-nfs-") as tmp:
        # apt warns that it downloads as root (its _apt user cannot write a
        # private temporary directory): harmless, the packages are only unpacked
        _download(Path(tmp))
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(USERSPACE)], check=True)
    for prog in ("usr/sbin/rpc.nfsd", "usr/sbin/rpc.mountd", "usr/sbin/exportfs"):
        if not (USERSPACE / prog).is_file():
            raise NfsUnavailable(f"{prog} is not in the unpacked packages ({USERSPACE})")
    _STAMP.write_text(" ".join(PACKAGES) + "\n", encoding="utf-8")
    return USERSPACE


def _env(root: Path) -> str:
    libs = ":".join(str(root / d) for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"))
    return f"export LD_LIBRARY_PATH={libs}; U={root}"


def serve(server: Node, path: str, clients: str) -> None:
    """Start nfsd on *server*, exporting *path* to *clients* (an address/prefix) as
    the NFSv4 root, and wait out the grace period."""
    root = userspace()
    server.succeed(
        f"{_env(root)}; set -e; mkdir -p /proc/fs/nfsd /var/lib/nfs/v4recovery; "
        "grep -q ' /proc/fs/nfsd ' /proc/mounts || mount -t nfsd nfsd /proc/fs/nfsd; "
        f"echo {GRACE_S} > /proc/fs/nfsd/nfsv4leasetime; "
        f"echo {GRACE_S} > /proc/fs/nfsd/nfsv4gracetime; "
        ": > /var/lib/nfs/etab; : > /var/lib/nfs/rmtab; "
        f"echo '{path} {clients}(rw,fsid=0,no_root_squash,no_subtree_check,sync)' "
        "> /etc/exports; $U/usr/sbin/exportfs -r; "
        "$U/usr/sbin/rpc.mountd -N 2 -N 3 --no-udp; "
        "$U/usr/sbin/rpc.nfsd -N 3 -V 4.2 --no-udp 4", timeout=120)
    started = time.monotonic()
    if server.succeed("cat /proc/fs/nfsd/threads").strip() == "0":
        raise NfsUnavailable("rpc.nfsd started no nfsd thread")
    time.sleep(max(0.0, GRACE_S + 1 - (time.monotonic() - started)))


def mount(client: Node, server_addr: str, client_addr: str, where: str) -> None:
    """Mount the server's NFSv4 root at *where* on *client*, v4.2 over TCP.  ``-i``:
    the kernel parses the options itself, no mount.nfs helper."""
    client.succeed(f"mkdir -p {where} && mount -i -t nfs4 -o vers=4.2,proto=tcp,"
                   f"addr={server_addr},clientaddr={client_addr} {server_addr}:/ {where}",
                   timeout=120)
