"""ssikit user/kernel ABI for Python: constants from ``ssi_abi.h`` and the SSI syscalls.

libcluster-style API::

    import abi
    abi.clusternode_num()      # this node's number
    abi.cluster_maxnodes()     # SSI_MAX_NODES as the kernel sees it
    abi.abi_version()          # ABI version the running modules speak
    abi.ssisys(cmd, buf=None)  # the multiplexer
    abi.rexec(node, path, argv, env)   # execve on another node (no return on success)
    abi.rfork(node)            # fork, child on another node: 0 in child, pid in parent
    abi.migrate(node)          # move the caller

Membership and ICS (``abi.cluster``; each needs its module: ics, clms, ics_test)::

    abi.cluster_set_key(key)               # ics: this node's cluster key
    abi.cluster_set_table({1: "169.254.77.1", 2: "169.254.77.2"})
    abi.cluster_membership()               # clms: Membership (transition, master, states...)
    abi.clusternode_info(node)             # clms: NodeInfo (state, addr, cpus, load, since...)
    abi.clusternode_avail(node)            # clms: True if node is UP
    abi.cluster_name(); abi.cluster_set_name(name)
    abi.ics_test(node, "null", count)      # ics_test: IcsTestResult

Failures raise :class:`SSIError` subclasses (``SSINotAvailable`` when no SSI module
serves the call). Importing this package does not import cffi.
"""

from typing import TYPE_CHECKING, Any

from abi.binding import (
    NR_SSI_MIGRATE,
    NR_SSI_REXEC,
    NR_SSI_RFORK,
    NR_SSISYS,
    SSI_ABI_VERSION,
    SSI_MAX_NODES,
    SSI_PID_LOCAL_MASK,
    SSI_PID_NODE_SHIFT,
    SSISYS_ABI_VERSION,
    SSISYS_MAX_NODES,
    SSISYS_NODE_NUM,
    SSISYS_NR_CMDS,
    abi_version,
    cluster_maxnodes,
    clusternode_num,
    ffi,
    migrate,
    raw_syscall,
    rexec,
    rfork,
    ssisys,
)
from abi.errors import (
    SSIBadAddress,
    SSIError,
    SSIFileNotFound,
    SSIInvalidArgument,
    SSINodeUnavailable,
    SSINotAvailable,
    SSIPermissionError,
    SSITimeout,
)
from abi.header import HeaderError, constants

if TYPE_CHECKING:
    from abi.cluster import (
        IcsTestResult,
        Membership,
        NodeInfo,
        cluster_membership,
        cluster_name,
        cluster_set_key,
        cluster_set_name,
        cluster_set_table,
        clusternode_avail,
        clusternode_info,
        ics_test,
    )

# abi.cluster (dataclasses, datetime, struct tables) loads on first use: `ssictl`
# commands that never touch the membership do not pay for it.
_CLUSTER_NAMES = frozenset(
    {
        "IcsTestResult",
        "Membership",
        "NodeInfo",
        "cluster_membership",
        "cluster_name",
        "cluster_set_key",
        "cluster_set_name",
        "cluster_set_table",
        "clusternode_avail",
        "clusternode_info",
        "ics_test",
    }
)


def __getattr__(name: str) -> Any:
    if name in _CLUSTER_NAMES:
        from abi import cluster

        value = getattr(cluster, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'abi' has no attribute {name!r}")


__all__ = [
    "NR_SSISYS",
    "NR_SSI_MIGRATE",
    "NR_SSI_REXEC",
    "NR_SSI_RFORK",
    "SSISYS_ABI_VERSION",
    "SSISYS_MAX_NODES",
    "SSISYS_NODE_NUM",
    "SSISYS_NR_CMDS",
    "SSI_ABI_VERSION",
    "SSI_MAX_NODES",
    "SSI_PID_LOCAL_MASK",
    "SSI_PID_NODE_SHIFT",
    "HeaderError",
    "IcsTestResult",
    "Membership",
    "NodeInfo",
    "SSIBadAddress",
    "SSIError",
    "SSIFileNotFound",
    "SSIInvalidArgument",
    "SSINodeUnavailable",
    "SSINotAvailable",
    "SSIPermissionError",
    "SSITimeout",
    "abi_version",
    "cluster_maxnodes",
    "cluster_membership",
    "cluster_name",
    "cluster_set_key",
    "cluster_set_name",
    "cluster_set_table",
    "clusternode_avail",
    "clusternode_info",
    "clusternode_num",
    "constants",
    "ffi",
    "ics_test",
    "migrate",
    "raw_syscall",
    "rexec",
    "rfork",
    "ssisys",
]
