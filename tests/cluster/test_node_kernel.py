"""The node kernel gives ordinary programs what servers give: core dumps, /proc/config.gz."""

from __future__ import annotations

import pytest

from qemu import Cluster

CLUSTER_NODES = 1
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

CRASH = r"""
import os, resource, signal, struct
resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
pid = os.fork()
if pid == 0:
    os.kill(os.getpid(), signal.SIGSEGV)
    os._exit(0)
_, status = os.waitpid(pid, 0)
core = f"/tmp/cores/core.{pid}"
with open(core, "rb") as f:
    head = f.read(18)
e_type = struct.unpack_from("<H", head, 16)[0]
print(os.WIFSIGNALED(status), os.WTERMSIG(status), os.WCOREDUMP(status),
      head[:4] == b"\x7fELF", e_type)
"""


def test_segfault_dumps_an_elf_core_and_the_parent_sees_wcoredump(cluster: Cluster) -> None:
    nd = cluster.node(1)
    old = nd.succeed("cat /proc/sys/kernel/core_pattern").strip()
    nd.succeed("mkdir -p /tmp/cores && echo '/tmp/cores/core.%p' >/proc/sys/kernel/core_pattern")
    try:
        out = nd.succeed(f"python3 -c '{CRASH}'").split()
    finally:
        nd.succeed(f"echo '{old}' >/proc/sys/kernel/core_pattern; rm -rf /tmp/cores")
    # Signalled by SIGSEGV (11), core dumped, an ELF file of type ET_CORE (4).
    assert out == ["True", "11", "True", "True", "4"]


def test_proc_config_gz_is_the_running_config(cluster: Cluster) -> None:
    nd = cluster.node(1)
    config = nd.succeed("zcat /proc/config.gz")
    assert "CONFIG_SSI=y" in config.splitlines()
    assert "CONFIG_COREDUMP=y" in config.splitlines()
