"""Build the QEMU command line of one node (pure: no processes, no I/O)."""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import cbuild, guest_image, paths
from .disks import DATA_DISK_SERIAL
from .guest_image import DISK_SERIAL
from .paths import INIT_SCRIPT, REPO_ROOT
from .paths import flavor as kernel_flavor

MAX_NODES = 63
# -cpu unless $SSI_QEMU_CPU says otherwise (why: QemuConfig.cpu).
GUEST_CPU = "qemu64,+aes,+pclmulqdq,+ssse3,+sse4.1,+sse4.2"


def node_mac(node: int) -> str:
    """52:54:00:00:00:NN; the hub routes unicast by the last byte."""
    if not 1 <= node <= MAX_NODES:
        raise ValueError(f"node number {node} is outside 1..{MAX_NODES}")
    return f"52:54:00:00:00:{node:02x}"


def node_ip(node: int) -> str:
    return f"169.254.77.{node}"


@dataclass(frozen=True)
class NodeSockets:
    """The unix sockets of one node, all in the cluster's short socket dir."""

    sock_dir: Path
    node: int

    @property
    def net(self) -> Path:
        return self.sock_dir / f"node{self.node}.sock"

    @property
    def hub(self) -> Path:
        return self.sock_dir / "hub.sock"

    @property
    def cmd(self) -> Path:
        return self.sock_dir / f"node{self.node}.cmd"

    @property
    def tty(self) -> Path:
        return self.sock_dir / f"node{self.node}.tty"

    @property
    def monitor(self) -> Path:
        return self.sock_dir / f"node{self.node}.mon"

    def all(self) -> list[Path]:
        return [self.net, self.cmd, self.tty, self.monitor]


def _find_busybox() -> str | None:
    """A static busybox on the host (the guest sees the host's /), or None."""
    env = os.environ.get("SSI_BUSYBOX")
    if env is not None:
        return env or None
    path = shutil.which("busybox")
    return os.path.realpath(path) if path else None


@functools.cache
def _prepare_guest_files() -> Path:
    """Build (once per process) the guests' thin `ssictl` client and
    `ssi-cluster-up`, first on their PATH, and the Python image; returns the image."""
    cbuild.build_ssictl_client()
    cbuild.build_cluster_up()
    cbuild.build_restore_helper()
    return guest_image.ensure()


def _default_python_image() -> Path | None:
    """The current guest image; $SSI_GUEST_IMAGE=0 boots without it."""
    image = _prepare_guest_files()
    off = os.environ.get("SSI_GUEST_IMAGE", "1") == "0" or not paths.guest_speedups()
    return None if off else image


def _default_bios() -> str | None:
    """$SSI_QEMU_BIOS, e.g. /usr/share/qemu/qboot.rom (measured no faster than SeaBIOS)."""
    return os.environ.get("SSI_QEMU_BIOS") or None


@dataclass(frozen=True)
class NodeConfig:
    node: int
    nodes: int  # cluster size, for /etc/hosts in the guest
    kernel: Path
    sockets: NodeSockets
    console_log: Path
    # The kernel flavor's (see qemu.paths.flavor): 256 MiB, 512 for debug.
    memory: int = field(default_factory=lambda: kernel_flavor().memory())
    smp: int = 1
    # Back all guest RAM with host memory at start (QEMU -mem-prealloc), as
    # a physical node's RAM is: otherwise the first guest touch of each page
    # costs a host page fault, charged to whatever first uses that memory
    # (a 64 MiB migration's first arrival: ~0.3 s of 1.5 s).  For benches.
    mem_prealloc: bool = False
    net_peer: Path | None = None  # send frames here instead of the hub (direct pair)
    # The node's own writable disk (qemu/disks.py), mounted at /srv; None: none.
    data_disk: Path | None = None
    extra_append: str = ""
    init: Path = INIT_SCRIPT
    # The guests' Python runtime (qemu/guest_image.py), built on first use;
    # None boots without it (everything then loads over 9p, 3-4x slower).
    python_image: Path | None = field(default_factory=lambda: _default_python_image())
    # 9p cache mode of the root: "none" is the one measured safe (with "loose"
    # mounting proc over the 9p /proc once failed); others are for `make bench`.
    root_cache: str = field(default_factory=lambda: os.environ.get("SSI_9P_CACHE", "none"))
    accel: str = field(default_factory=lambda: os.environ.get("SSI_QEMU_ACCEL", "tcg"))
    # QEMU's default model plus the instructions the kernel's AES-GCM and
    # CRC32C use (aesni_intel, ghash-clmulni, crc32c-intel), which TCG runs as
    # helpers instead of generic C: ICS bulk under TLS went from x0.23 to x0.42
    # of TCP (2 guests, 64 KiB echo, same run, 2026-12-03).  Not `max`: its
    # AVX paths and larger xsave state made 8-node clusters form slower under
    # TCG (15-60 s against 13-14 s, 2026-12-02); with this model an 8-node
    # cluster formed as fast as with qemu64 (157 s against 152-157 s, both on
    # a host busy with a debug-flavor suite).
    cpu: str = field(default_factory=lambda: os.environ.get("SSI_QEMU_CPU", GUEST_CPU))
    bios: str | None = field(default_factory=lambda: _default_bios())
    # $SSI_FLAVOR: the guest's init.sh loads this flavor's modules.
    flavor: str = field(default_factory=lambda: kernel_flavor().name)
    busybox: str | None = field(default_factory=lambda: _find_busybox())
    qemu: str = field(
        default_factory=lambda: os.environ.get("SSI_QEMU")
        or shutil.which("qemu-system-x86_64")
        or "qemu-system-x86_64"
    )

    @property
    def timeout_factor(self) -> float:
        """Multiply this node's boot and command deadlines by this (its flavor's)."""
        return kernel_flavor(self.flavor).timeout_factor


def kernel_append(cfg: NodeConfig) -> str:
    # loglevel=5 rather than `quiet`: quiet hides KERN_WARNING, where WARN()
    # and lockdep splats are printed, and the console scan must see them.
    parts = [
        "console=ttyS0",
        "loglevel=5",
        "panic=-1",
        # Boot-time savers under TCG: no delay-loop calibration, no PS/2 probing.
        "lpj=1000000",
        "i8042.noaux=1",
        "i8042.nokbd=1",
        # An overloaded host makes TCG miss the IO-APIC timer check, and the
        # kernel then panics ("IO-APIC + timer doesn't work"): skip the check.
        "no_timer_check",
        # ACPI is there for its timers (PM timer, HPET: the TSC and APIC timer
        # calibrate against them instead of failing against the PIT).  Its IRQ
        # routing and PnP probing added 2 s to a boot under TCG: off.
        "acpi=noirq",
        "pnpacpi=off",
        f"ssi.node={cfg.node}",
        f"ssi.nodes={cfg.nodes}",
        "root=hostroot",
        "rootfstype=9p",
        f"rootflags=trans=virtio,version=9p2000.L,msize=524288,cache={cfg.root_cache}",
        "ro",
    ]
    if not paths.guest_speedups():
        parts.append("ssi.nodaemon")
    if cfg.flavor != "normal":
        # init.sh points ssictl at build/modules-<flavor>/out: a module built
        # for the other kernel would not match this one.
        parts.append(f"ssi.flavor={cfg.flavor}")
    # The flavor's own (debug: watchdog thresholds for a slow guest).
    parts += kernel_flavor(cfg.flavor).kernel_args
    if cfg.extra_append:
        parts.append(cfg.extra_append)
    if cfg.busybox:
        # init.sh under busybox sh: its applets run without exec (no 9p
        # lookups, no dynamic loading), ~0.4 s less CPU per boot than dash.
        # Words after "--" are init's arguments; keep this last.
        parts += [f"init={cfg.busybox}", "--", "sh", str(cfg.init)]
    else:
        parts.append(f"init={cfg.init}")
    return " ".join(parts)


def qemu_command(cfg: NodeConfig) -> list[str]:
    s = cfg.sockets
    bios = ["-bios", cfg.bios] if cfg.bios else []
    image = []
    if cfg.python_image is not None:
        image = [
            "-drive",
            f"file={cfg.python_image},if=none,id=pyimg,format=raw,readonly=on",
            "-device", f"virtio-blk-pci,drive=pyimg,serial={DISK_SERIAL}",
        ]
    if cfg.data_disk is not None:
        # cache=writeback: the guest's flushes (fsync) reach the host file, so
        # what it synced survives a crash of QEMU, as on a disk.
        image += [
            "-drive",
            f"file={cfg.data_disk},if=none,id=data,format=raw,cache=writeback,discard=unmap",
            "-device", f"virtio-blk-pci,drive=data,serial={DATA_DISK_SERIAL}",
        ]
    return [
        cfg.qemu,
        "-name", f"ssi-node{cfg.node}",
        "-accel", cfg.accel,
        "-cpu", cfg.cpu,
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-vga", "none",
        "-no-reboot",
        "-m", str(cfg.memory),
        "-smp", str(cfg.smp),
        *(["-mem-prealloc"] if cfg.mem_prealloc else []),
        *bios,
        "-kernel", str(cfg.kernel),
        "-append", kernel_append(cfg),
        # Kernel console: appended to the per-node log, kept across restarts.
        "-chardev", f"file,id=con0,path={cfg.console_log},append=on",
        "-serial", "chardev:con0",
        # Root file system: the host's / read-only over 9p.
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        # The checkout again on its own, for when it lives under a directory the
        # guest mounts tmpfs over (/tmp, /run): init.sh puts it back in place.
        "-virtfs",
        f"local,path={REPO_ROOT},mount_tag=ssirepo,security_model=none,readonly=on,"
        "multidevs=remap",
        *image,
        # Private L2 through the hub.
        "-netdev",
        f"dgram,id=n0,local.type=unix,local.path={s.net},"
        f"remote.type=unix,remote.path={cfg.net_peer or s.hub}",
        "-device", f"virtio-net-pci,netdev=n0,mac={node_mac(cfg.node)}",
        # Command channel (agent.sh) and interactive console (hvc0).
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", f"socket,id=tty0,path={s.tty},server=on,wait=off",
        "-device", "virtconsole,chardev=tty0,name=ssi.tty,bus=vser0.0,nr=0",
        "-chardev", f"socket,id=cmd0,path={s.cmd},server=on,wait=off",
        "-device", "virtserialport,chardev=cmd0,name=ssi.cmd,bus=vser0.0,nr=1",
        # The human monitor, for the harness (qemu/txwatch.py).
        "-monitor", f"unix:{s.monitor},server=on,wait=off",
    ]
