"""A cluster of QEMU nodes on a private hub."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from types import TracebackType
from typing import Any

from . import bringup
from .channel import AgentError
from .console_scan import Splat, scan_file
from .disks import keep_disks_default, make_node_disk, remove_node_disks
from .hub import Hub
from .hubctl import Impairment, LinkStats, PortStats
from .logs import CommandLog, cluster_log_dir
from .node import Node, NodeError
from .paths import flavor, kernel_path
from .qemu_cmd import MAX_NODES, NodeConfig, NodeSockets
from .txwatch import TxWatch


class Cluster:
    """`nodes` QEMU guests numbered 1..nodes, booted in parallel.

    with Cluster(nodes=3) as c:
        c.node(1).succeed("ping -c1 node2")
    """

    def __init__(
        self,
        nodes: int = 3,
        memory: int | None = None,
        kernel: Path | str | None = None,
        extra_append: str = "",
        log_dir: Path | str | None = None,
        name: str = "cluster",
        smp: int = 1,
        boot_timeout: float | None = None,
        direct: bool = False,
        mem_prealloc: bool = False,
        disk_mib: int = 0,
        keep_disks: bool | None = None,
    ) -> None:
        """`direct=True` (2 nodes only) wires the nodes to each other, no hub: a
        baseline for measuring what the hub costs; `mem_prealloc=True` backs
        every guest's RAM with host memory before it boots (benches); `disk_mib` gives
        every node a local ext4 disk of that size, mounted at /srv (qemu/disks.py),
        removed at `stop()` unless `keep_disks` (default $SSI_KEEP_DISKS=1). Logs go to
        `log_dir`, by default a new `<run>/<name>` directory (see `qemu.logs`)."""
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"nodes must be 1..{MAX_NODES}")
        if direct and nodes != 2:
            raise ValueError("direct=True needs exactly 2 nodes")
        self.direct = direct
        self.kernel = kernel_path(kernel)  # fails early with "run make kernel"
        self.size = nodes
        # The kernel flavor's defaults: the debug kernel needs more of both.
        self.memory = memory if memory is not None else flavor().memory()
        self.smp = smp
        self.mem_prealloc = mem_prealloc
        self.disk_mib = disk_mib
        self.keep_disks = keep_disks_default() if keep_disks is None else keep_disks
        self.disks: list[Path] = []
        self.extra_append = extra_append
        self.boot_timeout = (boot_timeout if boot_timeout is not None
                             else flavor().timeout(120.0))
        self.log_dir = Path(log_dir) if log_dir else cluster_log_dir(name)
        self.sock_dir: Path | None = None
        self.hub: Hub | None = None
        self.nodes: list[Node] = []
        self.txwatch: TxWatch | None = None
        self.boot_seconds = 0.0

    # ---- lifecycle ----

    def start(self) -> float:
        """Start the hub and every node; returns wall seconds until all agents answered."""
        t0 = time.monotonic()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to 108 bytes: keep them short, under /tmp.
        self.sock_dir = Path(tempfile.mkdtemp(prefix="ssi", dir="/tmp"))
        try:
            if not self.direct:
                self.hub = Hub(self.sock_dir, self.size, log=self.log_dir / "hub.log")
                self.hub.start()
            self.nodes = [self._make_node(n) for n in range(1, self.size + 1)]
            for node in self.nodes:
                node.cfg.console_log.unlink(missing_ok=True)
                node.spawn()  # from this thread: see Node's docstring
            self._wait_all_ready(self.nodes)
            self.txwatch = TxWatch([(nd.number, nd.cfg.console_log, nd.cfg.sockets.monitor,
                                     nd.qemu_log or self.log_dir / f"node{nd.number}.txwatch")
                                    for nd in self.nodes])
            self.txwatch.start()
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - t0
        return self.boot_seconds

    def _wait_all_ready(self, nodes: Sequence[Node]) -> None:
        pool = ThreadPoolExecutor(max_workers=max(1, len(nodes)))
        try:
            futures = [pool.submit(nd.wait_ready, self.boot_timeout) for nd in nodes]
            wait(futures)
            for f in futures:
                f.result()
        except BaseException:
            # Ctrl-C lands here while the waiters still poll: kill the nodes
            # first so they give up at once instead of at boot_timeout.
            for nd in nodes:
                nd.crash()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def disk_path(self, n: int) -> Path:
        """Node `n`'s disk image on the host."""
        return self.log_dir / f"node{n}.disk.img"

    def _make_node(self, n: int) -> Node:
        assert self.sock_dir is not None
        disk = None
        if self.disk_mib:
            disk = make_node_disk(self.disk_path(n), self.disk_mib, n)
            self.disks.append(disk)
        cfg = NodeConfig(
            node=n,
            nodes=self.size,
            kernel=self.kernel,
            sockets=NodeSockets(self.sock_dir, n),
            console_log=self.log_dir / f"node{n}.console.log",
            memory=self.memory,
            smp=self.smp,
            mem_prealloc=self.mem_prealloc,
            extra_append=self.extra_append,
            net_peer=NodeSockets(self.sock_dir, 3 - n).net if self.direct else None,
            data_disk=disk,
        )
        return Node(
            cfg,
            qemu_log=self.log_dir / f"node{n}.qemu.log",
            command_log=CommandLog(self.log_dir / f"node{n}.commands.log"),
        )

    def stop(self) -> None:
        """Kill every node and the hub, remove the socket directory."""
        if self.txwatch is not None:
            self.txwatch.stop()
            self.txwatch = None
        for node in self.nodes:
            node.crash()
        if self.hub is not None:
            self.hub.stop()
            self.hub = None
        if self.sock_dir is not None:
            shutil.rmtree(self.sock_dir, ignore_errors=True)
            self.sock_dir = None
        if not self.keep_disks:
            remove_node_disks(self.disks)
        self.disks = []

    def __enter__(self) -> Cluster:
        if not self.nodes:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- nodes ----

    def node(self, n: int) -> Node:
        if not 1 <= n <= len(self.nodes):
            raise NodeError(f"no node {n} in a {len(self.nodes)}-node cluster")
        return self.nodes[n - 1]

    def __getitem__(self, n: int) -> Node:
        return self.node(n)

    def restore(self) -> list[int]:
        """Heal the network (cuts and impairments) and reboot every node that is
        down; returns those rebooted."""
        if self.hub is not None:
            self.heal()
            self.clear_impairments()
        down = [nd for nd in self.nodes if not nd.is_running or not nd.channel.connected]
        for nd in down:
            nd.crash()
            nd.spawn()
        self._wait_all_ready(down)
        return [nd.number for nd in down]

    # ---- SSI bring-up and steps ----

    def bring_up(
        self,
        key: bytes | None = None,
        modules: Sequence[str] | None = None,
        *,
        wait_up: float | None = None,
        name: str | None = None,
        timeout: float = 240.0,
        python_cli: bool | None = None,
    ) -> dict[int, dict[str, Any]]:
        """Load `modules` on every node and form one SSI cluster; see `qemu.bringup`
        (`python_cli`: through `ssictl cluster up` instead of `ssi-cluster-up`)."""
        return bringup.bring_up(
            self,
            key=bringup.DEFAULT_KEY if key is None else key,
            modules=bringup.DEFAULT_MODULES if modules is None else modules,
            wait_up=wait_up,
            name=name,
            timeout=timeout,
            python_cli=python_cli,
        )

    def _note(self, message: str) -> None:
        for nd in self.nodes:
            if nd.command_log:
                nd.command_log.note(message)

    @contextlib.contextmanager
    def subtest(self, name: str) -> Iterator[None]:
        """A named step: its start, end and duration go to every node's command
        log; an exception inside is re-raised with the step's name added."""
        self._note(f"=== subtest {name!r}: start")
        t0 = time.monotonic()
        try:
            yield
        except BaseException as e:
            secs = time.monotonic() - t0
            self._note(f"=== subtest {name!r}: FAILED after {secs:.3f} s: {type(e).__name__}")
            e.add_note(f"in subtest {name!r} (after {secs:.3f} s)")
            raise
        self._note(f"=== subtest {name!r}: ok in {time.monotonic() - t0:.3f} s")

    # ---- network ----

    def _ctl(self) -> Hub:
        if self.hub is None:
            raise NodeError("cluster is not running")
        return self.hub

    def cut(self, a: int, b: int) -> None:
        self._ctl().ctl.cut(a, b)

    def uncut(self, a: int, b: int) -> None:
        self._ctl().ctl.uncut(a, b)

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between nodes of different groups (after healing)."""
        self._ctl().ctl.partition(*groups)

    def heal(self) -> None:
        self._ctl().ctl.heal()

    def net_stats(self) -> dict[int, PortStats]:
        return self._ctl().ctl.stats()

    def impair(
        self, a: int | None, b: int | None, imp: Impairment, *, both: bool = False
    ) -> None:
        """Impair frames from node a to node b (None: every node; `both`: b to a
        too) as `imp` says (drop/corrupt/rawcorrupt/dup/reorder %, delay/jitter
        ms); replaces the link's previous setting. `heal` leaves it in place."""
        self._ctl().ctl.set_impairment(a, b, imp, both=both)

    def clear_impairments(
        self, a: int | None = None, b: int | None = None, *, both: bool = False
    ) -> None:
        """Remove the impairments of a>b (b>a too with `both`), or of every link."""
        self._ctl().ctl.clear(a, b, both=both)

    @contextlib.contextmanager
    def impaired(
        self, a: int | None, b: int | None, imp: Impairment, *, both: bool = False
    ) -> Iterator[None]:
        """`impair` for the duration of a with-block, cleared after it however it ends."""
        self.impair(a, b, imp, both=both)
        try:
            yield
        finally:
            self.clear_impairments(a, b, both=both)

    def link_stats(self) -> dict[tuple[int, int], LinkStats]:
        """Impairment counters of every link that is impaired or counted something."""
        return self._ctl().ctl.link_stats()

    def net_seed(self, seed: int) -> None:
        """Make the hub's random impairment choices reproducible from `seed`."""
        self._ctl().ctl.seed(seed)

    # ---- consoles ----

    def sync_consoles(self, timeout: float = 15.0) -> list[int]:
        """Make sure every running node's console log holds all it printed so far.

        Writes a unique line to each running node's /dev/kmsg and waits until it
        shows up in that node's console log (printk keeps the order, so all
        earlier output is then there too). Nodes that are down need no sync.
        Returns the running nodes that did not answer in time.
        """
        token = secrets.token_hex(8)
        line = f"ssi-sync {token}"

        def sync(nd: Node) -> bool:
            if not nd.is_running or not nd.channel.connected:
                return True
            since = nd.console_size()
            try:
                rc, _, _ = nd.execute(f"echo '<3>{line}' >/dev/kmsg", timeout=timeout)
                if rc != 0:
                    return False
                nd.wait_for_console_text(re.escape(line), timeout=timeout, since=since)
            except (NodeError, AgentError):
                return False
            return True

        live = list(self.nodes)
        if not live:
            return []
        with ThreadPoolExecutor(max_workers=len(live)) as pool:
            synced = list(pool.map(sync, live))
        return [nd.number for nd, ok in zip(live, synced, strict=True) if not ok]

    def console_offsets(self) -> dict[int, int]:
        return {nd.number: nd.console_size() for nd in self.nodes}

    def scan_consoles(
        self, since: dict[int, int] | None = None, allow: Iterable[str] = ()
    ) -> tuple[list[Splat], dict[int, int]]:
        """Splats in every node's console after `since` offsets; and the new offsets."""
        hits: list[Splat] = []
        ends: dict[int, int] = {}
        allow = list(allow)
        for nd in self.nodes:
            start = (since or {}).get(nd.number, 0)
            found, ends[nd.number] = scan_file(nd.cfg.console_log, nd.number, start, allow)
            hits.extend(found)
        return hits, ends
