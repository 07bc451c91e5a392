"""qemu/disks.py and the data disk on the QEMU command line (host side, no guest)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qemu.disks import DATA_DISK_SERIAL, MIN_MIB, make_node_disk, remove_node_disks
from qemu.qemu_cmd import NodeConfig, NodeSockets, qemu_command


def test_a_node_disk_is_a_sparse_ext4_image_labelled_for_its_node(tmp_path: Path) -> None:
    img = make_node_disk(tmp_path / "d" / "node3.img", 64, 3)
    assert img.stat().st_size == 64 * 2**20
    assert img.stat().st_blocks * 512 < 16 * 2**20  # sparse: mkfs wrote metadata only
    out = subprocess.run(["/sbin/dumpe2fs", "-h", str(img)], capture_output=True, text=True,
                         check=True).stdout
    assert "Filesystem volume name:   ssi-node3" in out
    remove_node_disks([img])
    assert not img.exists()


def test_a_disk_too_small_for_ext4_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_MIB} MiB"):
        make_node_disk(tmp_path / "x.img", MIN_MIB - 1, 1)


def _cfg(tmp_path: Path, disk: Path | None) -> NodeConfig:
    return NodeConfig(node=1, nodes=2, kernel=tmp_path / "bzImage",
                      sockets=NodeSockets(tmp_path, 1), console_log=tmp_path / "c.log",
                      python_image=None, busybox=None, data_disk=disk)


def test_the_data_disk_is_on_the_command_line_only_when_given(tmp_path: Path) -> None:
    assert not any(DATA_DISK_SERIAL in a for a in qemu_command(_cfg(tmp_path, None)))
    cmd = qemu_command(_cfg(tmp_path, tmp_path / "n1.img"))
    drive = cmd[cmd.index("-drive") + 1]
    assert drive.startswith(f"file={tmp_path / 'n1.img'},") and "format=raw" in drive
    assert "cache=writeback" in drive and "readonly" not in drive
    assert f"virtio-blk-pci,drive=data,serial={DATA_DISK_SERIAL}" in cmd
