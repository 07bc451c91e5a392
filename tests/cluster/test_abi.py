"""The cffi binding and `ssictl modules|node` inside a booted 3-node cluster.

Python costs ~3 s per interpreter start in a TCG guest, so each check batches its
calls into one `python -c` script per node that prints a JSON report, and nodes are
driven in parallel.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from qemu import Cluster, Node
from qemu.bringup import SSICTL
from qemu.paths import flavor

CLUSTER_NODES = 3
NODES = (1, 2, 3)
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
PY = REPO / ".venv" / "bin" / "python"
MODULES_OUT = flavor().modules_out  # this kernel flavor's .ko files
GUEST_TIMEOUT = 180.0

T = TypeVar("T")


def on_all(cluster: Cluster, fn: Callable[[Node], T]) -> dict[int, T]:
    """Run fn(node) on every node at once (each node has its own channel)."""
    with ThreadPoolExecutor(len(NODES)) as pool:
        futs = {n: pool.submit(fn, cluster.node(n)) for n in NODES}
        return {n: f.result() for n, f in futs.items()}


def py_json(node: Node, script: str) -> Any:
    """Run a Python script with the repo's venv in the guest; it prints one JSON line."""
    out = node.succeed(f"{PY} -c {shlex.quote(script)}", timeout=GUEST_TIMEOUT)
    return json.loads(out.strip().splitlines()[-1])


def ssictl(node: Node, args: str) -> tuple[int, str, str]:
    return node.execute(f"{SSICTL} {args}", timeout=GUEST_TIMEOUT)


def module_names() -> list[str]:
    """Names of the modules `ssictl modules load` would load (read on the host)."""
    from ssictl import kmod

    return sorted(kmod.discover(MODULES_OUT)) if MODULES_OUT.is_dir() else ["ssi_core"]


def ssi_loaded(node: Node) -> bool:
    """Is any module of build/modules/out loaded on *node*?"""
    pattern = "|".join(module_names())
    rc, _, _ = node.execute(f"grep -Eq '^({pattern}) ' /proc/modules", timeout=30)
    return rc == 0


def ensure_unloaded(node: Node) -> None:
    if ssi_loaded(node):
        node.succeed(f"{SSICTL} modules unload", timeout=GUEST_TIMEOUT)
    assert not ssi_loaded(node)


def ensure_loaded(node: Node) -> None:
    if not ssi_loaded(node):
        node.succeed(f"{SSICTL} modules load", timeout=GUEST_TIMEOUT)


@pytest.fixture
def modules_built() -> None:
    if not (MODULES_OUT / "ssi_core.ko").is_file():
        pytest.fail(
            f"{MODULES_OUT}/ssi_core.ko is missing: build the SSI modules first",
            pytrace=False,
        )


# Calls every SSI syscall through the binding, records what each raised.
CALLS_SCRIPT = r"""
import json, os, sys
import abi
res = {}
def probe(name, fn):
    try:
        value = fn()
    except Exception as e:
        res[name] = {"type": type(e).__name__, "errno": getattr(e, "errno", None),
                     "msg": str(e), "oserror": isinstance(e, OSError)}
        return
    if name == "rfork" and value == 0:
        os._exit(0)  # a child must never get here; keep it from printing
    res[name] = {"value": value}
probe("ssisys", lambda: abi.ssisys(abi.SSISYS_NODE_NUM))
probe("node", abi.clusternode_num)
probe("maxnodes", abi.cluster_maxnodes)
probe("abi_version", abi.abi_version)
probe("rexec", lambda: abi.rexec(1, "/bin/true", ["true"], {}))
probe("rfork", lambda: abi.rfork(1))
probe("migrate", lambda: abi.migrate(1))
probe("raw_ssisys_bad_cmd", lambda: abi.raw_syscall(abi.NR_SSISYS, abi.SSISYS_NR_CMDS, 0, 0))
probe("raw_migrate_node0", lambda: abi.raw_syscall(abi.NR_SSI_MIGRATE, 0))
probe("raw_rfork_node64", lambda: abi.raw_syscall(abi.NR_SSI_RFORK, abi.SSI_MAX_NODES + 1))
probe("raw_rexec_null", lambda: abi.raw_syscall(abi.NR_SSI_REXEC, 1, 0, 0, 0))
res["header"] = {"abi": abi.SSI_ABI_VERSION, "max": abi.SSI_MAX_NODES}
print(json.dumps(res))
"""

SYSCALL_PROBES = ("ssisys", "rexec", "rfork", "migrate")


def assert_enosys(r: dict[str, Any], label: str, *, loaded: bool) -> None:
    assert r.get("type") == "SSINotAvailable", (label, r)
    assert r["errno"] == 38 and r["oserror"], (label, r)
    assert "(ENOSYS)" in r["msg"], r
    assert "ssictl modules load" in r["msg"], r
    if loaded:
        assert "no loaded SSI module serves this call" in r["msg"], r
    else:
        assert "no SSI module serves this call" in r["msg"], r


def test_without_modules_every_call_is_enosys(cluster: Cluster) -> None:
    on_all(cluster, ensure_unloaded)
    reports = on_all(cluster, lambda nd: py_json(nd, CALLS_SCRIPT))
    for n, rep in reports.items():
        for name, r in rep.items():
            if name == "header":
                continue
            assert_enosys(r, f"node{n} {name}", loaded=False)
        assert rep["ssisys"]["msg"].startswith("ssisys(SSISYS_NODE_NUM): no SSI module")
        assert rep["rfork"]["msg"].startswith("ssi_rfork(node=1): ")
    # The CLI reports the same, without a traceback, and exits non-zero.
    rc, out, err = ssictl(cluster.node(2), "clusternode-num")
    assert rc == 1, (out, err)
    assert "Traceback" not in err
    assert err.startswith("ssictl: error: ssisys(SSISYS_NODE_NUM): no SSI module serves this call")
    assert "fix: load the modules with `ssictl modules load`" in err


@pytest.mark.usefixtures("modules_built")
def test_load_serves_node_number(cluster: Cluster) -> None:
    on_all(cluster, ensure_unloaded)

    def load(nd: Node) -> dict[str, Any]:
        rc, out, err = ssictl(nd, "modules load --json")
        assert rc == 0, (nd, out, err)
        data: dict[str, Any] = json.loads(out)
        return data

    loads = on_all(cluster, load)
    for n, data in loads.items():
        assert data["ok"] is True
        core = [m for m in data["modules"] if m["name"] == "ssi_core"]
        assert core and core[0]["action"] == "loaded", (n, data)
        node = cluster.node(n)
        assert node.succeed("cat /sys/kernel/ssi/node").strip() == str(n)
        assert node.succeed("grep '^ssi_core ' /proc/modules").split()[4] == "Live"

    reports = on_all(cluster, lambda nd: py_json(nd, CALLS_SCRIPT))
    for n, rep in reports.items():
        assert rep["node"] == {"value": n}, (n, rep)
        assert rep["ssisys"] == {"value": n}
        assert rep["maxnodes"] == {"value": rep["header"]["max"]}
        assert rep["abi_version"] == {"value": rep["header"]["abi"]}
        # Every module is loaded, migration.ko too, but no cluster is formed:
        # the three process calls are served and refuse with their errnos
        # (abi/ERRNOS.md): a bad node is EINVAL; node 1 is this node on node
        # 1 (migrate: nothing to do, rfork: a plain fork, rexec: execve's job,
        # EINVAL) and a node that is not UP everywhere else (EHOSTDOWN).
        einval, ehostdown = 22, 112
        for name in ("raw_migrate_node0", "raw_rfork_node64"):
            assert rep[name].get("errno") == einval, (n, name, rep[name])
        if n == 1:
            assert rep["migrate"] == {"value": None}, rep["migrate"]
            assert rep["rfork"].get("value", 0) > 0, rep["rfork"]
            for name in ("rexec", "raw_rexec_null"):
                assert rep[name].get("errno") == einval, (n, name, rep[name])
        else:
            for name in ("rexec", "rfork", "migrate", "raw_rexec_null"):
                assert rep[name].get("errno") == ehostdown, (n, name, rep[name])
        # The kernel itself bounds ssisys commands once a module serves ssisys.
        bad = rep["raw_ssisys_bad_cmd"]
        assert bad["type"] == "SSIInvalidArgument" and bad["errno"] == 22, bad

    nd = cluster.node(3)
    rc, out, err = ssictl(nd, "clusternode-num --json")
    assert rc == 0 and json.loads(out) == {"ok": True, "node": 3}, (out, err)
    rc, out, err = ssictl(nd, "clusternode-num")
    assert (rc, out) == (0, "3\n"), err
    # A second load is a no-op.
    rc, out, err = ssictl(nd, "modules load")
    assert rc == 0, err
    # Progress on stderr, the summary on stdout.
    assert "ssi_core: already loaded" in err
    assert out.startswith("nothing to do: the modules are loaded already"), out


@pytest.mark.usefixtures("modules_built")
def test_status_and_unload(cluster: Cluster) -> None:
    on_all(cluster, ensure_loaded)
    nd = cluster.node(2)
    rc, out, err = ssictl(nd, "modules status --json")
    assert rc == 0, err
    st = json.loads(out)
    core = next(m for m in st["modules"] if m["name"] == "ssi_core")
    assert core["loaded"] is True and core["state"] == "Live"
    assert isinstance(core["refcount"], int)
    assert st["ssi_sysfs"]["node"] == "2"
    rc, out, err = ssictl(nd, "modules status")
    assert rc == 0 and "ssi_core" in out and "node = 2" in out, (out, err)

    def unload(n: Node) -> dict[str, Any]:
        rc, out, err = ssictl(n, "modules unload --json")
        assert rc == 0, (n, out, err)
        data: dict[str, Any] = json.loads(out)
        return data

    for n, data in on_all(cluster, unload).items():
        core = next(m for m in data["modules"] if m["name"] == "ssi_core")
        assert core["action"] == "unloaded", (n, data)
        assert cluster.node(n).fail("test -e /sys/kernel/ssi/node") == ""
        assert not ssi_loaded(cluster.node(n))

    rc, out, err = ssictl(nd, "modules status --json")
    st = json.loads(out)
    assert all(not m["loaded"] for m in st["modules"]) and st["ssi_sysfs"] == {}
    rc, out, err = ssictl(nd, "modules unload")
    assert rc == 0 and out.startswith("nothing to do"), (out, err)
    rc, out, err = ssictl(nd, "clusternode-num --json")
    assert rc == 1 and json.loads(out)["error"]["errno_name"] == "ENOSYS"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc on the host")
def test_load_failure_shows_the_kernel_message(cluster: Cluster) -> None:
    """A .ko the kernel rejects: errno string plus the kernel's own log line."""
    d = REPO / "build" / "test-ssictl" / "bogus"
    d.mkdir(parents=True, exist_ok=True)
    src = d / "bogus.c"
    src.write_text(
        'static const char n[] __attribute__((used, section(".modinfo"))) = "name=ssi_bogus";\n'
        'static const char p[] __attribute__((used, section(".modinfo"))) = "depends=";\n'
        "int bogus_fn(void) { return 0; }\n"
    )
    subprocess.run(["gcc", "-c", "-o", str(d / "ssi_bogus.ko"), str(src)], check=True)
    src.unlink()
    nd = cluster.node(1)
    rc, out, err = ssictl(nd, f"modules load --dir {d}")
    assert rc == 1, (out, err)
    assert "Traceback" not in err
    assert "ssictl: error: could not load ssi_bogus" in err
    assert "Exec format error (ENOEXEC)" in err
    assert "kernel: ssi_bogus: No module found in object" in err, err
    rc, out, err = ssictl(nd, f"modules load --dir {d} --json")
    data = json.loads(out)
    assert rc == 1 and data["ok"] is False and data["error"]["errno_name"] == "ENOEXEC"
    assert any("No module found in object" in x for x in data["error"]["details"])
