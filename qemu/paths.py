"""Where the harness finds the repository, the kernel and its build outputs,
and what the kernel flavor ($SSI_FLAVOR: normal or debug) asks of the guests."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from genmod import flavor as build_flavor  # the one definition of the build layout

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
KERNEL = BUILD_DIR / "linux" / "arch" / "x86" / "boot" / "bzImage"
LOG_ROOT = BUILD_DIR / "logs"
BIN_DIR = BUILD_DIR / "bin"
GUEST_DIR = Path(__file__).resolve().parent / "guest"
INIT_SCRIPT = GUEST_DIR / "init.sh"
AGENT_SCRIPT = GUEST_DIR / "agent.sh"


FLAVOR_ENV = "SSI_FLAVOR"


class KernelMissing(RuntimeError):
    """The node kernel has not been built."""


class UnknownFlavor(KernelMissing):
    """$SSI_FLAVOR names no kernel flavor, so there is no kernel to boot."""


@dataclass(frozen=True)
class GuestFlavor:
    """What a kernel flavor needs from the harness."""

    name: str
    # Guest memory is the test's (or the default 256 MiB) times this: KASAN's
    # shadow takes 1/8 of memory, SLUB debugging, lockdep, kmemleak and KASAN's
    # quarantine more.  Measured: a 256 MiB debug guest boots with 152 MiB
    # available (a normal one 241), 512 MiB gives 372.
    memory_factor: int
    # Boot and command deadlines are multiplied by this: sanitizers and
    # lockdep slow every allocation and lock under TCG.  Measured (debug vs
    # normal, 2-core host): 3-node boot 26.6 s vs 3.3 s; tests/cluster/
    # test_guest.py's tests 3.3x to 7.6x slower, the module 94 s vs 21 s.
    # Boot deadlines have a wide margin (120 s), so 4 covers both.  Only
    # deadlines scale; what a test asserts does not change.
    timeout_factor: float
    # Kernel command-line words for this flavor's guests.
    kernel_args: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        return build_flavor.FLAVORS[self.name].suffix

    @property
    def kernel(self) -> Path:
        return BUILD_DIR / f"linux{self.suffix}" / "arch" / "x86" / "boot" / "bzImage"

    @property
    def modules_out(self) -> Path:
        """Where `make modules` puts this flavor's .ko files."""
        return BUILD_DIR / f"modules{self.suffix}" / "out"

    def module_config(self, symbol: str) -> str:
        """The value `make modules` gave CONFIG_`symbol` (an SSI option of
        kernel/Kconfig) for this flavor: what its modules were built with."""
        header = self.modules_out.parent / "ssi_config.h"
        try:
            text = header.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise KernelMissing(f"{header} is missing: run `make modules`") from None
        m = re.search(rf"^#define CONFIG_{re.escape(symbol)} (\S+)$", text, re.M)
        if m is None:
            raise KeyError(f"CONFIG_{symbol} is not in {header}")
        return m.group(1).strip('"')

    def memory(self, base: int = 256) -> int:
        """MiB for a guest that needs `base` MiB under the normal kernel."""
        return base * self.memory_factor

    def timeout(self, seconds: float) -> float:
        return seconds * self.timeout_factor


# The debug kernel's watchdogs measure guest time, and a TCG guest's clock
# follows the host's: a guest starved by the host (two cores shared by several
# clusters) loses whole seconds at once.  With the stock thresholds, 3-node
# debug clusters reported soft lockups of 21-74 s at boot (tracefs creation and
# slab sysfs with SLUB debugging, 2026-12-02) with nothing stuck.  Their
# thresholds grow by the flavor's timeout factor (4) like the harness's own
# deadlines: soft lockup 20 s -> 80 s (watchdog_thresh 10 -> 40), RCU stall
# 21 s -> 84 s, workqueue stall 30 s -> 120 s, hung task 120 s -> 480 s.  A
# real lockup or stall still reports, later.  slub_debug=- switches off the
# SLUB debugging SLUB_DEBUG_ON enables from boot (red zones, poisoning and a
# stack trace saved on every allocation and free, the soft lockups' own
# backtraces): generic KASAN already finds out-of-bounds and use-after-free on
# every slab object, and more precisely.
DEBUG_KERNEL_ARGS = (
    "watchdog_thresh=40",
    "rcupdate.rcu_cpu_stall_timeout=84",
    "workqueue.watchdog_thresh=120",
    "sysctl.kernel.hung_task_timeout_secs=480",
    "slub_debug=-",
)

GUEST_FLAVORS = {
    "normal": GuestFlavor("normal", memory_factor=1, timeout_factor=1.0),
    "debug": GuestFlavor("debug", memory_factor=2, timeout_factor=4.0,
                         kernel_args=DEBUG_KERNEL_ARGS),
}


def flavor(name: str | None = None) -> GuestFlavor:
    """The flavor `name`, else $SSI_FLAVOR, else normal."""
    chosen = name if name is not None else (os.environ.get(FLAVOR_ENV) or "normal")
    try:
        return GUEST_FLAVORS[chosen]
    except KeyError:
        raise UnknownFlavor(
            f"unknown kernel flavor {chosen!r} in ${FLAVOR_ENV} (one of: "
            + ", ".join(GUEST_FLAVORS) + ")"
        ) from None


def kernel_path(kernel: Path | str | None = None) -> Path:
    """The bzImage to boot: the argument, $SSI_KERNEL, or the in-tree build of
    the flavor ($SSI_FLAVOR: build/linux, or build/linux-debug for debug)."""
    if kernel or os.environ.get("SSI_KERNEL"):
        path = Path(kernel or os.environ["SSI_KERNEL"])
        hint = "run `make kernel` first (or point SSI_KERNEL at a bzImage)"
    else:
        chosen = flavor()
        path = chosen.kernel
        make = "make kernel" if chosen.name == "normal" else f"make kernel FLAVOR={chosen.name}"
        hint = f"run `{make}` first (or point SSI_KERNEL at a bzImage)"
    if not path.is_file():
        raise KernelMissing(f"kernel image {path} is missing: {hint}")
    return path


def safe_name(name: str) -> str:
    """A file-system friendly version of a test or cluster name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120] or "cluster"


SPEEDUPS_ENV = "SSI_GUEST_SPEEDUPS"


def guest_speedups() -> bool:
    """False when $SSI_GUEST_SPEEDUPS=0: guests run the way they did before the
    guest-speed work (no Python image, no ssictl daemon, clusters formed by the
    Python `ssictl cluster up`), for measuring what that work changed."""
    return os.environ.get(SPEEDUPS_ENV, "1") != "0"
