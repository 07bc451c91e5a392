"""Cluster-test fixtures beyond tests/conftest.py: under the debug kernel flavor,
a kmemleak scan of every running node after each test module.

A module whose tests use the `cluster` fixture gets, at its end (before its
cluster stops), two kmemleak scans on each node that is still running
(qemu.kmemleak); an unreferenced object allocated by an ssikit module fails
the module's last test (teardown) with kmemleak's report. Under the normal
flavor (no kmemleak) nothing runs. SSI_KMEMLEAK_SCAN=0 turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from qemu import Cluster
from qemu.kmemleak import format_leaks, ssikit_leaks
from qemu.paths import flavor

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
