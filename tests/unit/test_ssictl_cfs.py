"""ssictl cfs status: parsing /proc/mounts and the CFS counters (host-side)."""

from __future__ import annotations

import pytest

from ssictl.cfs import (
    format_status,
    normalize_source,
    parse_cluster_mounts,
    parse_counters,
    parse_exports,
    parse_mounts,
)
from ssictl.output import CLIError

MOUNTS = """\
hostroot / 9p ro,relatime 0 0
1:/srv/data /run/cfs cfs rw,relatime 0 0
/srv/data /run/own\\040dir cfs rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
"""


def test_cfs_mounts_are_parsed_with_their_server() -> None:
    mounts = parse_mounts(MOUNTS, this_node=2)
    assert [m["mountpoint"] for m in mounts] == ["/run/cfs", "/run/own dir"]
    assert mounts[0]["server"] == 1 and mounts[0]["path"] == "/srv/data"
    assert not mounts[0]["own_export"]
    # a "/path" source is this node's own export
    assert mounts[1]["server"] == 2 and mounts[1]["own_export"]


def test_counters_skip_what_is_not_a_counter() -> None:
    text = "calls 12\nrevokes_sent 3\ngarbage\nrevokes_taken x\ntokens 5\n"
    assert parse_counters(text) == {"calls": 12, "revokes_sent": 3, "tokens": 5}


def test_status_text_names_every_mount() -> None:
    st = {"node": 2, "cache": True, "mounts": parse_mounts(MOUNTS, 2),
          "cluster_mounts": parse_cluster_mounts(CLUSTER_MOUNTS), "counters": {"calls": 1},
          "exports": parse_exports("0 /srv/data 1,3\n1 /srv/x -\n")}
    out = format_status(st)
    assert "under tokens" in out and "/run/cfs" in out and "2 (this node)" in out
    assert "failed (512)" in out and "1:/srv/data" in out
    assert "1,3" in out


def test_exports_list_their_clients() -> None:
    assert parse_exports("0 /srv/data 1,3\n1 /srv/x -\nbad\n") == [
        {"export": 0, "path": "/srv/data", "clients": [1, 3]},
        {"export": 1, "path": "/srv/x", "clients": []},
    ]


CLUSTER_MOUNTS = """1:/srv/data /run/cfs mounted
3:/srv/x /run/x failed 512
short line
"""


def test_the_kernels_table_of_clusterwide_mounts_is_parsed() -> None:
    got = parse_cluster_mounts(CLUSTER_MOUNTS)
    assert got == [
        {"server": 1, "path": "/srv/data", "mountpoint": "/run/cfs", "state": "mounted"},
        {"server": 3, "path": "/srv/x", "mountpoint": "/run/x", "state": "failed",
         "status": 512},
    ]


def test_a_source_is_normalized_to_its_server() -> None:
    assert normalize_source("/srv/data", 2) == "2:/srv/data"
    assert normalize_source("1:/srv/data", 2) == "1:/srv/data"
    for bad in ("relative", "x:/srv", "0:/srv", "1:relative"):
        with pytest.raises(CLIError):
            normalize_source(bad, 2)
