"""qemu_command(): the QEMU arguments a node's configuration turns into."""

from __future__ import annotations

from pathlib import Path

from qemu.qemu_cmd import NodeConfig, NodeSockets, qemu_command


def _config(mem_prealloc: bool = False) -> NodeConfig:
    return NodeConfig(node=2, nodes=3, kernel=Path("/k"), sockets=NodeSockets(Path("/s"), 2),
                      console_log=Path("/c.log"), python_image=None, memory=1024,
                      mem_prealloc=mem_prealloc)


def test_guest_ram_is_allocated_lazily_unless_asked() -> None:
    argv = qemu_command(_config())
    assert "-mem-prealloc" not in argv
    assert argv[argv.index("-m") + 1] == "1024"


def test_mem_prealloc_backs_the_guest_ram_before_boot() -> None:
    argv = qemu_command(_config(mem_prealloc=True))
    assert argv.count("-mem-prealloc") == 1
    # an option of the machine, not of the kernel command line
    assert "-mem-prealloc" not in argv[argv.index("-append") + 1]
