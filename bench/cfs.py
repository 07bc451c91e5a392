"""CFS between two guests, each figure against its baseline in the same run.

Node 1 serves /srv/data (its own ext4 disk); node 2 mounts it at /run/cfs.

* sequential write and read of 64 MiB with dd (1 MiB blocks; write with fsync, read
  with both page caches dropped first): from the client through CFS, and on
  the server to its own disk; and ICS bulk between the same two guests
  (``ics_test echo_pages``, 64 KiB, both directions counted, as ``make bench ics``);
* ``ls -l`` of a 2,000-file directory, warm (the second of two runs): client vs
  the server's local ext4;
* creating 2,000 files in one directory: from one client, and from two nodes at
  once (the client and the server itself, 1,000 each).

Once with frames under the default ``protect=tls``, once under ``protect=auth``
(Poly1305 tags, no secrecy), once under ``protect=none`` (a trusted interconnect:
what NFS with ``sec=sys`` over plain TCP is).

* fio (psync, one job, 64 MiB file): sequential and random read and write, each in
  1 MiB and in 4 KiB blocks (random ones time-bound), from the client
  through CFS and on the server to its own disk, the page caches dropped before each
  read; sequential figures against ICS bulk too.

* NFS v4.2 between the same two guests (bench/nfs.py: the kernel's nfsd on the
  server exporting the same disk, the kernel client on the other): the same dd and
  fio jobs and the warm ``ls -l``, caches dropped on both sides before each read
  (both clients keep pages), and CFS over NFS for each.
"""

from __future__ import annotations

import json
from typing import Any

from qemu import Cluster, Node
from qemu.paths import flavor

from . import nfs
from .common import REPO, bring_up_protected

PY = REPO / ".venv" / "bin" / "python"
MODULES = ("ssi_core", "ics", "clms", "vproc", "rfile", "cfs", "ics_test")
MNT = "/run/cfs"
NFS_MNT = "/run/nfs"
SRV = "/srv/data"
SEQ_MIB = 64
FILES = 2000
ICS_ECHO = """
import json
from abi import cluster
r = cluster.ics_test(1, "echo_pages", 200, size=65536, timeout_ms=5000)
print(json.dumps({"errors": r.errors, "elapsed_ns": r.elapsed_ns}))
"""


def _ns(nd: Node, cmd: str, timeout: float = 600) -> int:
    """Wall nanoseconds of *cmd* in the guest (its own clock, no command-channel cost)."""
    out = nd.succeed(f"s=$(date +%s%N); {cmd} >/dev/null 2>&1; e=$(date +%s%N); "
                     "echo $((e - s))", timeout=timeout)
    return int(out.strip().splitlines()[-1])


def _mib_s(nbytes: int, ns: float) -> float:
    return nbytes / 2**20 / (ns / 1e9)


def _drop_caches(nd: Node) -> None:
    nd.succeed("sync; echo 3 > /proc/sys/vm/drop_caches")


def _creates(nd: Node, where: str, prefix: str, count: int) -> str:
    return (f"cd {where} && i=0; while [ $i -lt {count} ]; do : > {prefix}$i; "
            "i=$((i+1)); done")


FIO_JOBS = (  # name, fio --rw, block size
    ("seq_write_1m", "write", "1M"),
    ("seq_read_1m", "read", "1M"),
    ("seq_write_4k", "write", "4k"),
    ("seq_read_4k", "read", "4k"),
    ("rand_write_4k", "randwrite", "4k"),
    ("rand_read_4k", "randread", "4k"),
    ("rand_write_1m", "randwrite", "1M"),
    ("rand_read_1m", "randread", "1M"),
)
FIO_RANDOM_SECONDS = 15


def _fio(nd: Node, path: str, rw: str, bs: str, drop: tuple[Node, ...]) -> dict[str, float]:
    """One fio job on *nd* against *path*: MiB/s and IOPS (the caches of the *drop*
    nodes dropped before a read)."""
    if "read" in rw:
        for d in drop:
            _drop_caches(d)
    args = [f"--name={rw}", f"--filename={path}", f"--rw={rw}", f"--bs={bs}", "--size=64M",
            "--ioengine=psync", "--output-format=json"]
    if "write" in rw:
        args.append("--end_fsync=1")
    if rw.startswith("rand"):
        args += [f"--runtime={FIO_RANDOM_SECONDS}", "--time_based"]
    out = nd.succeed("fio " + " ".join(args), timeout=900)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    side = job["read" if "read" in rw else "write"]
    return {"mib_s": side["bw_bytes"] / 2**20, "iops": side["iops"]}


def _fio_all(n1: Node, n2: Node, ics_mib_s: float) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for name, rw, bs in FIO_JOBS:
        client = _fio(n2, f"{MNT}/fio", rw, bs, (n1, n2))
        local = _fio(n1, f"{SRV}/fio-local", rw, bs, (n1,))
        r: dict[str, Any] = {"client": client, "server_local": local,
                             "client_over_server_local": client["mib_s"] / local["mib_s"]}
        if name.startswith("seq"):
            r["client_over_ics_bulk"] = client["mib_s"] / ics_mib_s
        res[name] = r
    return res


def _nfs_baseline(n1: Node, n2: Node, cfs_seq: dict[str, float],
                  cfs_fio: dict[str, Any], cfs_ls_ns: float) -> dict[str, Any]:
    """The same dd, fio and warm listing through NFS v4.2, and CFS over NFS for each
    (above 1: CFS is faster; for the listing, below 1 is faster)."""
    nfs.serve(n1, SRV, "169.254.77.0/24")
    nfs.mount(n2, "169.254.77.1", "169.254.77.2", NFS_MNT)
    nbytes = SEQ_MIB * 2**20
    dd_w = f"dd if=/dev/zero bs=1M count={SEQ_MIB} conv=fsync of="
    seq = {"write_mib_s": _mib_s(nbytes, _ns(n2, f"{dd_w}{NFS_MNT}/nfs-seq"))}
    _drop_caches(n1)
    _drop_caches(n2)
    seq["read_mib_s"] = _mib_s(nbytes, _ns(n2, f"dd if={NFS_MNT}/nfs-seq of=/dev/null bs=1M"))
    res: dict[str, Any] = {"sequential_64mib": seq, "fio": {}, "cfs_over_nfs": {}}
    for k in ("write", "read"):
        res["cfs_over_nfs"][f"dd_{k}"] = cfs_seq[f"client_{k}_mib_s"] / seq[f"{k}_mib_s"]
    for name, rw, bs in FIO_JOBS:
        r = _fio(n2, f"{NFS_MNT}/fio-nfs", rw, bs, (n1, n2))
        res["fio"][name] = r
        res["cfs_over_nfs"][f"fio_{name}"] = cfs_fio[name]["client"]["mib_s"] / r["mib_s"]
    _ns(n2, f"ls -l {NFS_MNT}/many", timeout=900)
    res["ls_l_2000_ns"] = _ns(n2, f"ls -l {NFS_MNT}/many", timeout=900)
    res["cfs_over_nfs"]["ls_l_2000_time"] = cfs_ls_ns / res["ls_l_2000_ns"]
    n2.succeed(f"umount {NFS_MNT}", timeout=120)
    return res


def measure(protect: str) -> dict[str, Any]:
    with Cluster(nodes=2, name=f"bench-cfs-{protect}", disk_mib=512) as c:
        bring_up_protected(c, protect, MODULES)
        n1, n2 = c.node(1), c.node(2)
        n1.succeed(f"mkdir -p {SRV}/many {SRV}/c1 {SRV}/c2")
        n2.succeed(f"mkdir -p {MNT} && mount -t cfs 1:{SRV} {MNT}")
        nbytes = SEQ_MIB * 2**20
        dd_w = f"dd if=/dev/zero bs=1M count={SEQ_MIB} conv=fsync of="
        seq: dict[str, float] = {
            "client_write_ns": _ns(n2, f"{dd_w}{MNT}/seq"),
            "server_write_ns": _ns(n1, f"{dd_w}{SRV}/local-seq"),
        }
        # the client kept the pages it wrote: a read of its own writes would
        # not cross the link
        _drop_caches(n1)
        _drop_caches(n2)
        seq["client_read_ns"] = _ns(n2, f"dd if={MNT}/seq of=/dev/null bs=1M")
        _drop_caches(n1)
        seq["server_read_ns"] = _ns(n1, f"dd if={SRV}/local-seq of=/dev/null bs=1M")
        out = n2.succeed(f"{PY} -c '{ICS_ECHO}'", timeout=600)
        echo = json.loads(out.strip().splitlines()[-1])
        if echo["errors"]:
            raise RuntimeError(f"ics_test echo_pages: {echo['errors']} failed calls")
        ics_mib_s = _mib_s(2 * 200 * 65536, int(echo["elapsed_ns"]))
        for k in ("client_write", "server_write", "client_read", "server_read"):
            seq[f"{k}_mib_s"] = _mib_s(nbytes, seq[f"{k}_ns"])
        seq["ics_echo_pages_mib_s"] = ics_mib_s
        for k in ("write", "read"):
            seq[f"{k}_client_over_server_local"] = (seq[f"client_{k}_mib_s"]
                                                    / seq[f"server_{k}_mib_s"])
            seq[f"{k}_client_over_ics_bulk"] = seq[f"client_{k}_mib_s"] / ics_mib_s
        fio = _fio_all(n1, n2, ics_mib_s)

        n1.succeed(_creates(n1, f"{SRV}/many", "file-", FILES), timeout=600)
        ls: dict[str, float] = {}
        for who, nd, path in (("client", n2, MNT), ("server", n1, SRV)):
            _ns(nd, f"ls -l {path}/many", timeout=900)
            ls[f"{who}_ns"] = _ns(nd, f"ls -l {path}/many", timeout=900)
        ls["client_over_server"] = ls["client_ns"] / ls["server_ns"]
        vs_nfs = _nfs_baseline(n1, n2, seq, fio, ls["client_ns"])

        creates: dict[str, float] = {"one_client_ns": _ns(n2, _creates(n2, f"{MNT}/c1", "f", FILES),
                                        timeout=1800)}
        half = FILES // 2
        n1.succeed(f"({_creates(n1, f'{SRV}/c2', 'a', half)}; echo done > /tmp/c.done) "
                   ">/dev/null 2>&1 &")
        t_client = _ns(n2, _creates(n2, f"{MNT}/c2", "b", half), timeout=1800)
        n1.wait_until_succeeds("test -e /tmp/c.done", timeout=flavor().timeout(1800))
        creates["two_nodes_client_half_ns"] = t_client
        creates["two_nodes_over_one"] = t_client / creates["one_client_ns"]
        assert int(n1.succeed(f"ls {SRV}/c2 | wc -l")) == FILES

    res: dict[str, Any] = {"sequential_64mib": seq, "fio": fio, "ls_l_2000": ls,
                           "create_2000": creates, "nfs_v4_2": vs_nfs, "protect": protect}
    res["goals"] = {
        "seq_ge_0.8x_ics_bulk": {k: seq[f"{k}_client_over_ics_bulk"] >= 0.8
                                 for k in ("write", "read")},
        "ls_l_within_2x_local": ls["client_over_server"] <= 2.0,
        "two_node_creates_not_slower": creates["two_nodes_over_one"] <= 1.0,
        "fio_seq_ge_0.8x_ics_bulk": {k: r["client_over_ics_bulk"] >= 0.8
                                     for k, r in fio.items() if "client_over_ics_bulk" in r},
        "ge_nfs": {k: v >= 1.0 for k, v in vs_nfs["cfs_over_nfs"].items()
                   if not k.startswith("ls_")},
    }
    print(f"CFS protect={protect}: seq write {seq['client_write_mib_s']:.1f} MiB/s (server local "
          f"{seq['server_write_mib_s']:.1f}), read {seq['client_read_mib_s']:.1f} "
          f"(local {seq['server_read_mib_s']:.1f}), ICS bulk {ics_mib_s:.1f}; ls -l 2000 "
          f"x{ls['client_over_server']:.1f} of local; 2000 creates from two nodes "
          f"x{creates['two_nodes_over_one']:.2f} of one")
    for name, r in fio.items():
        print(f"  fio {name}: client {r['client']['mib_s']:.2f} MiB/s "
              f"({r['client']['iops']:.0f} IOPS), server local "
              f"{r['server_local']['mib_s']:.2f} MiB/s: x{r['client_over_server_local']:.2f}"
              + (f", x{r['client_over_ics_bulk']:.2f} of ICS bulk"
                 if "client_over_ics_bulk" in r else ""))
    ratios = ", ".join(f"{k} x{v:.2f}" for k, v in vs_nfs["cfs_over_nfs"].items())
    print(f"  CFS over NFS v4.2: {ratios}")
    return res


def run() -> dict[str, Any]:
    # none: frames as plain as NFS's sec=sys over TCP, the like-for-like figure
    return {protect: measure(protect) for protect in ("tls", "auth", "none")}
