"""qemu.kmemleak: which kmemleak reports are ssikit's (host only)."""

from __future__ import annotations

from qemu.kmemleak import SSIKIT_MODULES, format_leaks, split_report, ssikit_objects

# The format of 6.1's mm/kmemleak.c print_unreferenced(): "[<%pK>] %pS" frames.
KERNEL_OBJ = """unreferenced object 0xffff888003a1c000 (size 64):
  comm "swapper/0", pid 1, jiffies 4294667296 (age 80.120s)
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<00000000d5e6e3a1>] __kmem_cache_alloc_node+0x1a1/0x300
    [<000000009c8b2d11>] kmalloc_trace+0x26/0x60
    [<00000000aa3f1b22>] acpi_os_map_iomem+0x12a/0x1c0
"""
ICS_OBJ = """unreferenced object 0xffff888004b2e800 (size 512):
  comm "kworker/u2:1", pid 42, jiffies 4294700000 (age 12.004s)
  hex dump (first 32 bytes):
    de ad be ef 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace:
    [<00000000d5e6e3a1>] __kmem_cache_alloc_node+0x1a1/0x300
    [<000000009c8b2d11>] kmalloc_trace+0x26/0x60
    [<0000000071c1d0e2>] ics_conn_alloc+0x3c/0x2a0 [ics]
    [<0000000012ab34cd>] ics_conn_get_out+0x1f2/0x5a0 [ics]
"""
GONE_OBJ = """unreferenced object 0xffff888004c00000 (size 128):
  comm "insmod", pid 300, jiffies 4294710000 (age 9.500s)
  backtrace:
    [<00000000d5e6e3a1>] __kmem_cache_alloc_node+0x1a1/0x300
    [<000000005e5e5e5e>] 0xffffffffc0a01234
    [<00000000aaaa0000>] do_one_initcall+0x8c/0x2c0
"""
# A module whose name only contains one of ours is not ours.
OTHER_MODULE_OBJ = """unreferenced object 0xffff888004d00000 (size 32):
  comm "modprobe", pid 301, jiffies 4294720000 (age 7.000s)
  backtrace:
    [<00000000d5e6e3a1>] __kmem_cache_alloc_node+0x1a1/0x300
    [<0000000033334444>] foo_probe+0x10/0x40 [physics]
"""


def test_manifest_modules_are_ours() -> None:
    assert {"ssi_core", "ics", "clms", "vproc", "ics_test"} <= set(SSIKIT_MODULES)


def test_split_report() -> None:
    objs = split_report(KERNEL_OBJ + ICS_OBJ + GONE_OBJ)
    assert len(objs) == 3
    assert objs[1] == ICS_OBJ
    assert split_report("") == []


def test_only_objects_of_ssikit_modules_count() -> None:
    report = KERNEL_OBJ + ICS_OBJ + OTHER_MODULE_OBJ + GONE_OBJ
    assert ssikit_objects(report) == [ICS_OBJ, GONE_OBJ]
    assert ssikit_objects(KERNEL_OBJ + OTHER_MODULE_OBJ) == []


def test_modules_argument_narrows() -> None:
    assert ssikit_objects(ICS_OBJ, modules=("clms",)) == []
    assert ssikit_objects(ICS_OBJ, modules=("ics",)) == [ICS_OBJ]


def test_format_names_nodes() -> None:
    text = format_leaks({2: [ICS_OBJ], 1: []})
    assert text.startswith("node2:\nunreferenced object 0xffff888004b2e800")
