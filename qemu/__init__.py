"""ssikit's QEMU cluster harness: boot N nodes on a private hub and drive them.

    from qemu import Cluster
    with Cluster(nodes=3) as c:
        c.node(1).succeed("ping -c1 node2")
"""

from .cluster import Cluster
from .node import CommandFailed, Node, NodeError
from .paths import KernelMissing

__all__ = ["Cluster", "CommandFailed", "KernelMissing", "Node", "NodeError"]
