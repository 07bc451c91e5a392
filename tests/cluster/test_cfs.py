"""CFS version 1 (kernel/cfs/, no cache): node 1's /srv/data (its own ext4 disk)
mounted on nodes 2 and 3.  What one node does is seen by the others at once, byte
for byte; the server checks permissions as the caller; a dead server is EIO within
seconds, and the mount works again when it is back."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

import pytest

from qemu import Cluster, Node
from qemu.bringup import DEFAULT_KEY, peer_table, up_command
from qemu.paths import flavor

CLUSTER_NODES = 3
CLUSTER_DISK_MIB = 64
MODULES = ("ssi_core", "ics", "clms", "vproc", "rfile", "cfs")
MNT = "/run/cfs"
SRV = "/srv/data"
NOBODY = "setpriv --reuid=65534 --regid=65534 --clear-groups"
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]


def mount(nd: Node) -> None:
    nd.succeed(f"mkdir -p {MNT} && (grep -q ' {MNT} cfs ' /proc/mounts || "
               f"mount -t cfs 1:{SRV} {MNT})")


@pytest.fixture
def cfs(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster up with cfs, node 1 serving /srv/data, nodes 2 and 3 mounting it."""
    cluster.bring_up(modules=MODULES)
    cluster.node(1).succeed(f"rm -rf {SRV} && mkdir -p {SRV} && chmod 0755 {SRV}")
    for n in (2, 3):
        mount(cluster.node(n))
    yield cluster
    for n in (2, 3):
        cluster.node(n).execute(f"umount {MNT}", timeout=60)


def test_a_mount_shows_the_servers_directory_and_refuses_bad_sources(cfs: Cluster) -> None:
    n1, n2 = cfs.node(1), cfs.node(2)
    n1.succeed(f"echo hello > {SRV}/a && mkdir {SRV}/d && echo in > {SRV}/d/f")
    assert n2.succeed(f"cat {MNT}/a") == "hello\n"
    assert n2.succeed(f"ls {MNT}").split() == ["a", "d"]
    assert n2.succeed(f"cat {MNT}/d/f") == "in\n"
    line = n2.succeed(f"grep ' {MNT} ' /proc/mounts").split()
    assert line[:3] == [f"1:{SRV}", MNT, "cfs"], line
    n2.succeed("mkdir -p /run/x")
    for src in ("nonode", "1:relative", "99:/srv", f"1:{SRV}/a", "1:/no/such/dir"):
        rc, _, _ = n2.execute(f"mount -t cfs {src} /run/x")
        assert rc != 0, src
    # only an administrator mounts
    rc, _, _ = n2.execute(f"{NOBODY} sh -c 'mount -t cfs 1:{SRV} /run/x'")
    assert rc != 0


def test_what_one_node_writes_another_reads_at_once(cfs: Cluster) -> None:
    n1, n2, n3 = cfs.node(1), cfs.node(2), cfs.node(3)
    n2.succeed(f"echo from-two > {MNT}/b")
    assert n3.succeed(f"cat {MNT}/b") == "from-two\n"
    assert n1.succeed(f"cat {SRV}/b") == "from-two\n"
    # an overwrite in the middle, seen right after it returns
    n3.succeed(f"printf XY | dd of={MNT}/b bs=1 seek=2 conv=notrunc 2>/dev/null")
    assert n2.succeed(f"cat {MNT}/b") == "frXY-two\n"
    # 1 MiB of random bytes, compared everywhere
    n2.succeed(f"dd if=/dev/urandom of={MNT}/big bs=64k count=16 2>/dev/null")
    sums = {n: cfs.node(n).succeed(f"md5sum < {p}").split()[0]
            for n, p in ((1, f"{SRV}/big"), (2, f"{MNT}/big"), (3, f"{MNT}/big"))}
    assert len(set(sums.values())) == 1, sums
    # sizes and times agree with the server's
    stat = "stat -c '%s %Y %a %u %g %h'"
    want = n1.succeed(f"{stat} {SRV}/big")
    assert n2.succeed(f"{stat} {MNT}/big") == want
    assert n3.succeed(f"{stat} {MNT}/big") == want


def test_names_appear_and_vanish_everywhere_at_once(cfs: Cluster) -> None:
    n1, n2, n3 = cfs.node(1), cfs.node(2), cfs.node(3)
    n2.succeed(f"ls {MNT}")  # cache whatever there is to cache
    n1.succeed(f"touch {SRV}/made-on-server")
    assert "made-on-server" in n2.succeed(f"ls {MNT}").split()
    n2.succeed(f"mkdir {MNT}/dir && touch {MNT}/dir/x")
    n3.succeed(f"test -f {MNT}/dir/x")
    n3.succeed(f"mv {MNT}/dir/x {MNT}/moved")
    n2.fail(f"test -e {MNT}/dir/x")
    n2.succeed(f"test -f {MNT}/moved")
    n3.succeed(f"rm {MNT}/moved && rmdir {MNT}/dir && rm {MNT}/made-on-server")
    assert n2.succeed(f"ls -A {MNT}").split() == []
    assert n1.succeed(f"ls -A {SRV}").split() == []
    # a name replaced by another file is the new file
    n2.succeed(f"echo one > {MNT}/r && cat {MNT}/r")
    n1.succeed(f"rm {SRV}/r && echo two > {SRV}/r")
    assert n2.succeed(f"cat {MNT}/r") == "two\n"
    # a directory of 300 entries lists whole (several readdir replies' worth)
    n1.succeed(f"mkdir {SRV}/many && cd {SRV}/many && "
               "i=0; while [ $i -lt 300 ]; do touch file-with-a-long-name-$i; i=$((i+1)); done")
    names = n3.succeed(f"ls {MNT}/many").split()
    assert len(names) == 300 and len(set(names)) == 300


def test_exclusive_create_append_and_unlink_of_an_open_file(cfs: Cluster) -> None:
    n2, n3 = cfs.node(2), cfs.node(3)
    # O_EXCL is the server's: one of two creators wins
    n2.succeed(f"set -C; echo two > {MNT}/excl")
    rc, _, _ = n3.execute(f"set -C; echo three > {MNT}/excl")
    assert rc != 0
    assert n3.succeed(f"cat {MNT}/excl") == "two\n"
    # O_APPEND from two nodes at once: every line whole, none lost
    loop = ("i=0; while [ $i -lt 100 ]; do echo {tag}-line-$i >> {f}; i=$((i+1)); done")
    n2.succeed(f"({loop.format(tag='two', f=MNT + '/log')}) > /dev/null 2>&1 &")
    n3.succeed(loop.format(tag="three", f=MNT + "/log"), timeout=180)
    n2.wait_until_succeeds(f"test $(wc -l < {MNT}/log) -eq 200", timeout=120)
    lines = n3.succeed(f"cat {MNT}/log").splitlines()
    assert sorted(lines) == sorted([f"two-line-{i}" for i in range(100)]
                                   + [f"three-line-{i}" for i in range(100)])
    # an unlinked file stays readable by who holds it open
    n2.succeed(f"echo kept > {MNT}/held")
    out = n2.succeed(f"exec 3< {MNT}/held; rm {MNT}/held; cat <&3")
    assert out == "kept\n"
    n3.fail(f"test -e {MNT}/held")
    # O_TRUNC and truncate
    n3.succeed(f"echo longer-text > {MNT}/t && echo x > {MNT}/t")
    assert n2.succeed(f"cat {MNT}/t") == "x\n"
    n2.succeed(f"truncate -s 0 {MNT}/t")
    assert cfs.node(1).succeed(f"stat -c %s {SRV}/t").strip() == "0"


def test_the_server_checks_permissions_as_the_caller(cfs: Cluster) -> None:
    n1, n2 = cfs.node(1), cfs.node(2)
    n1.succeed(f"echo secret > {SRV}/root-only && chmod 0600 {SRV}/root-only && "
               f"echo public > {SRV}/ro && chmod 0644 {SRV}/ro && "
               f"mkdir {SRV}/open && chmod 0777 {SRV}/open")
    as_nobody = f"{NOBODY} sh -c"
    _, _, err = n2.execute(f"{as_nobody} 'cat {MNT}/root-only'")
    assert "Permission denied" in err
    assert n2.succeed(f"{as_nobody} 'cat {MNT}/ro'") == "public\n"
    _, _, err = n2.execute(f"{as_nobody} 'echo x >> {MNT}/ro'")
    assert "Permission denied" in err
    _, _, err = n2.execute(f"{as_nobody} 'touch {MNT}/new'")
    assert "Permission denied" in err
    # what nobody makes belongs to nobody, on the server
    n2.succeed(f"{as_nobody} 'echo mine > {MNT}/open/n'")
    assert n1.succeed(f"stat -c %U {SRV}/open/n").strip() == "nobody"
    _, _, err = n2.execute(f"{as_nobody} 'chmod 0777 {MNT}/ro'")
    assert "Operation not permitted" in err
    # root may
    n2.succeed(f"chmod 0640 {MNT}/ro && chown nobody {MNT}/ro")
    assert n1.succeed(f"stat -c '%a %U' {SRV}/ro").strip() == "640 nobody"


def test_locks_fail_loudly_until_they_are_clusterwide(cfs: Cluster) -> None:
    """Never a node-local lock on a clusterwide file: ENOLCK (cfs_main.c, "Not yet")."""
    n2 = cfs.node(2)
    n2.succeed(f"echo data > {MNT}/f")
    rc, _, err = n2.execute(f"flock {MNT}/f true")
    assert rc != 0 and os.strerror(errno.ENOLCK) in err, err


def test_a_dead_server_is_eio_and_the_mount_works_when_it_is_back(cfs: Cluster) -> None:
    n1, n2 = cfs.node(1), cfs.node(2)
    n2.succeed(f"echo survives > {MNT}/s && sync")
    n1.succeed("sync")
    n1.crash()
    rc, _, err = n2.execute(f"cat {MNT}/s", timeout=flavor().timeout(60))
    assert rc != 0 and os.strerror(errno.EIO) in err, err
    n1.start(timeout=cfs.boot_timeout)
    n1.succeed(up_command(peer_table(range(1, CLUSTER_NODES + 1)), DEFAULT_KEY, MODULES,
                          wait_up=120), timeout=240)
    n2.wait_until_succeeds(f"cat {MNT}/s | grep -qx survives", timeout=flavor().timeout(60))
    n2.succeed(f"echo after > {MNT}/s2")
    assert n1.succeed(f"cat {SRV}/s2") == "after\n"
