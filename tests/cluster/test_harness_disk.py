"""Each node's local disk (qemu/disks.py): an ext4 image per node, mounted read-write
at /srv by init.sh, its own to each node, and what a node synced survives its crash
and reboot (the ground CFS serves from)."""

from __future__ import annotations

import pytest

from qemu import Cluster

CLUSTER_NODES = 2
CLUSTER_DISK_MIB = 64
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]


def srv_mount(cluster: Cluster, n: int) -> list[str]:
    line = cluster.node(n).succeed("grep ' /srv ' /proc/mounts").split()
    return line


def test_every_node_has_its_own_writable_disk_at_srv(cluster: Cluster) -> None:
    for n in (1, 2):
        dev, mnt, fstype, opts = srv_mount(cluster, n)[:4]
        assert (mnt, fstype) == ("/srv", "ext4") and opts.split(",")[0] == "rw", (dev, opts)
        serial = cluster.node(n).succeed(f"cat /sys/block/{dev.removeprefix('/dev/')}/serial")
        assert serial.strip() == "ssi-disk"
        size_kb = int(cluster.node(n).succeed("df -k /srv | tail -1").split()[1])
        assert 40_000 < size_kb <= CLUSTER_DISK_MIB * 1024, size_kb
        assert cluster.disk_path(n).is_file()
    cluster.node(1).succeed("echo one > /srv/marker && sync")
    cluster.node(2).fail("test -e /srv/marker")


def test_what_a_node_synced_survives_its_crash(cluster: Cluster) -> None:
    n1 = cluster.node(1)
    n1.succeed("dd if=/dev/urandom of=/srv/blob bs=64k count=16 2>/dev/null && sync")
    digest = n1.succeed("md5sum /srv/blob").split()[0]
    n1.crash()
    n1.start(timeout=cluster.boot_timeout)
    assert n1.succeed("md5sum /srv/blob").split()[0] == digest
    assert srv_mount(cluster, 1)[1] == "/srv"
