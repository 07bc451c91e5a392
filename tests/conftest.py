"""Shared pytest fixtures: a booted QEMU cluster, and a console splat scan per test.

Cluster tests take the `cluster` fixture. One cluster boots per test module
(module constants CLUSTER_NODES / CLUSTER_MEMORY / CLUSTER_DISK_MIB choose its size); before each
test it is healed and any node that is down is rebooted, and again after it (so
a test's teardown pays for, and is blamed for, the reboots it caused).

After each phase of a test (setup, call, teardown) every node's console output
since the last scan is checked for kernel splats; a hit fails that phase. The
scan first syncs with every running node (a unique line written to its
/dev/kmsg must reach its console log), so nothing the guest printed is missed.
Mark a test `@pytest.mark.allow_splat(r"regex")` when it provokes a splat on
purpose.

Under the debug kernel flavor ($SSI_FLAVOR=debug, `make test FLAVOR=debug`)
guests get the flavor's memory (CLUSTER_MEMORY times its factor) and the boot
timeout and every cluster test's pytest timeout are multiplied by its timeout
factor (qemu.paths.GuestFlavor); what tests assert does not change.

Logs live in this run's directory (`build/logs/<run-id>/`, `build/logs/latest`
points at the newest run; see qemu.logs): `<run>/<module>/` for the module's
cluster (consoles, QEMU logs, command logs) and `<run>/<module>/tests/<test>/`
for each test's console slices.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qemu import Cluster, KernelMissing
from qemu.console_scan import format_splats
from qemu.kmemleak import format_leaks, ssikit_leaks
from qemu.paths import UnknownFlavor, flavor, kernel_path, safe_name

BOOT_TIMEOUT = 120.0  # seconds, under the normal flavor


@dataclass
class _Booted:
    """A module's cluster and how far its consoles have been scanned."""

    cluster: Cluster
    offsets: dict[int, int] = field(default_factory=dict)


@dataclass
class _TestConsole:
    booted: _Booted
    since: dict[int, int]  # where this test's console slices start


_CONSOLE_KEY = pytest.StashKey[_TestConsole]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_splat(*regexes): console lines matching these are not failures"
    )


def _is_cluster_test(item: pytest.Item) -> bool:
    return item.get_closest_marker("cluster") is not None or "cluster" in getattr(
        item, "fixturenames", ()
    )


def _timeout_of(item: pytest.Item, config: pytest.Config) -> tuple[float, dict[str, object]]:
    """pytest-timeout's timeout for `item` (marker, else --timeout, else the ini
    value; 0 is none) and the marker's other keywords."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        kwargs = {k: v for k, v in marker.kwargs.items() if k != "timeout"}
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout", 0)
        return float(value or 0), kwargs
    option = config.getoption("timeout", None)
    if option is None:
        try:
            option = config.getini("timeout")
        except ValueError:  # pytest-timeout is not installed
            option = 0
    return float(option or 0), {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scale the pytest timeout of every cluster test by the flavor's factor."""
    try:
        factor = flavor().timeout_factor
    except UnknownFlavor as e:
        raise pytest.UsageError(str(e)) from None
    if factor == 1:
        return
    for item in items:
        if not _is_cluster_test(item):
            continue
        seconds, kwargs = _timeout_of(item, config)
        if seconds > 0:
            item.add_marker(pytest.mark.timeout(seconds * factor, **kwargs), append=False)


@pytest.fixture(scope="module")
def _booted_cluster(request: pytest.FixtureRequest) -> Iterator[_Booted]:
    try:
        kernel_path()
    except KernelMissing as e:
        pytest.fail(f"cluster tests need the node kernel: {e}", pytrace=False)
    mod = request.module.__name__.rsplit(".", 1)[-1]
    nodes = int(getattr(request.module, "CLUSTER_NODES", 3))
    kind = flavor()
    memory = kind.memory(int(getattr(request.module, "CLUSTER_MEMORY", 256)))
    disk_mib = int(getattr(request.module, "CLUSTER_DISK_MIB", 0))
    c = Cluster(nodes=nodes, memory=memory, name=mod, boot_timeout=kind.timeout(BOOT_TIMEOUT),
                disk_mib=disk_mib)
    c.start()
    print(
        f"\n[qemu] {nodes} nodes ({kind.name} kernel, {memory} MiB) booted in "
        f"{c.boot_seconds:.2f} s wall ({c.log_dir})"
    )
    try:
        yield _Booted(c)
    finally:
        c.stop()


@pytest.fixture
def cluster(_booted_cluster: _Booted, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    c = _booted_cluster.cluster
    since = {nd.number: _booted_cluster.offsets.get(nd.number, 0) for nd in c.nodes}
    request.node.stash[_CONSOLE_KEY] = _TestConsole(_booted_cluster, since)
    rebooted = c.restore()
    if rebooted:
        print(f"[qemu] rebooted node(s) {rebooted} left down by an earlier test")
    yield c
    rebooted = c.restore()
    if rebooted:
        print(f"[qemu] rebooted node(s) {rebooted} this test left down")


def _save_slices(item: pytest.Item, tc: _TestConsole, ends: dict[int, int]) -> Path:
    c = tc.booted.cluster
    out = c.log_dir / "tests" / safe_name(item.name)
    out.mkdir(parents=True, exist_ok=True)
    for nd in c.nodes:
        start, end = tc.since.get(nd.number, 0), ends.get(nd.number, 0)
        try:
            with open(nd.cfg.console_log, "rb") as f:
                f.seek(start)
                data = f.read(max(0, end - start))
        except FileNotFoundError:
            data = b""
        (out / f"node{nd.number}.console.log").write_bytes(data)
    return out


def _save_dmesg(c: Cluster, out: Path) -> None:
    """Every node's kernel log beside its console slice: the console shows
    warnings and worse (loglevel=5), a failure's story is often in pr_info."""
    for nd in c.nodes:
        try:
            rc, text, _ = nd.execute("dmesg", 30)
        except Exception as e:  # a node down or busy: say so, go on
            text, rc = f"(no dmesg: {e})\n", 0
        (out / f"node{nd.number}.dmesg").write_text(text if rc == 0 else f"(dmesg rc {rc})\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    tc = item.stash.get(_CONSOLE_KEY, None)
    if tc is None:
        return rep
    c = tc.booted.cluster
    unsynced = c.sync_consoles()
    allow = [str(rx) for m in item.iter_markers("allow_splat") for rx in m.args]
    hits, ends = c.scan_consoles(tc.booted.offsets, allow)
    tc.booted.offsets.update(ends)
    logs = _save_slices(item, tc, ends)
    if rep.failed and call.when == "call":
        _save_dmesg(c, logs)
    if hits:
        msg = (
            f"kernel splat(s) on the console during test {call.when} (logs: {logs}):\n"
            + format_splats(hits)
        )
        if unsynced:
            msg += (
                f"\n(node(s) {', '.join(map(str, unsynced))} did not answer the console "
                "sync: their last lines may be missing)"
            )
        if rep.failed:
            msg = f"{rep.longreprtext}\n\n{msg}"
        rep.outcome = "failed"
        rep.longrepr = msg
    return rep


# --- kmemleak after each cluster test module (debug flavor) ---------------
#
# A module whose tests use the `cluster` fixture gets, at its end (before its
# cluster stops), two kmemleak scans on each node still running
# (qemu.kmemleak); an unreferenced object allocated by an ssikit module fails
# the module's last test (teardown). Normal flavor (no kmemleak): nothing runs.
# SSI_KMEMLEAK_SCAN=0 turns it off.

SCAN_ENV = "SSI_KMEMLEAK_SCAN"


def _scan_wanted(request: pytest.FixtureRequest) -> bool:
    if flavor().name != "debug" or os.environ.get(SCAN_ENV, "1") == "0":
        return False
    if getattr(request.module, "KMEMLEAK_SCAN", True) is False:
        return False
    items = [i for i in request.session.items if getattr(i, "module", None) is request.module]
    return any("cluster" in getattr(i, "fixturenames", ()) for i in items)


@pytest.fixture(scope="module", autouse=True)
def _kmemleak_after_module(request: pytest.FixtureRequest) -> Iterator[None]:
    if not _scan_wanted(request):
        yield
        return
    # Depend on the module's cluster so it is still up at our teardown.
    cluster: Cluster = request.getfixturevalue("_booted_cluster").cluster
    yield
    running = [nd for nd in cluster.nodes if nd.is_running]
    leaks = ssikit_leaks(running, timeout=150.0)  # Node scales it by the flavor
    found = {n: objs for n, objs in leaks.items() if objs}
    print(f"\n[kmemleak] nodes {sorted(leaks)} scanned: "
          f"{sum(map(len, found.values()))} object(s) of ssikit modules")
    if found:
        pytest.fail("kmemleak: unreferenced objects allocated by ssikit modules:\n"
                    + format_leaks(found), pytrace=False)
