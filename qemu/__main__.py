"""`python -m qemu up --nodes 3 [--exec CMD] [--memory M] [--load-modules]`.

Boots a cluster, optionally loads the ssikit modules on every node, then either
runs CMD on node 1 (exit code passed through) or attaches this terminal to node
1's shell (Ctrl-] detaches and tears the cluster down).
`python -m qemu bench --nodes 3 --runs 3` prints boot times.
"""

from __future__ import annotations

import secrets
import statistics
import sys

import typer

from .cluster import Cluster
from .paths import REPO_ROOT, KernelMissing
from .terminal import attach

app = typer.Typer(add_completion=False, help="ssikit QEMU cluster harness")


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _load_modules(c: Cluster) -> None:
    """Load the SSI modules on every node and form one cluster (fresh random key)."""
    from ssictl.harness import DEFAULT_MODULES, BringUpError, bring_up

    out_dir = REPO_ROOT / "build" / "modules" / "out"
    modules = [m for m in DEFAULT_MODULES if (out_dir / f"{m}.ko").exists()]
    missing = sorted(set(DEFAULT_MODULES) - set(modules))
    if missing:
        _err(f"warning: {', '.join(missing)} not built (run make modules): loading "
             f"{', '.join(modules)} only")
    try:
        results = bring_up(c, key=secrets.token_bytes(32), modules=modules)
    except BringUpError as e:
        _err(str(e))
        raise typer.Exit(1) from e
    print(f"SSI modules loaded on {len(results)} node(s): {', '.join(modules)}")


@app.callback()
def main() -> None:
    """ssikit QEMU cluster harness."""


@app.command()
def up(
    nodes: int = typer.Option(3, "--nodes", "-n", help="number of nodes (1..63)"),
    memory: int = typer.Option(256, "--memory", "-m", help="MiB of RAM per node"),
    exec_cmd: str | None = typer.Option(None, "--exec", help="run CMD on node 1 and exit"),
    load_modules: bool = typer.Option(False, "--load-modules", help="ssictl modules load"),
    append: str = typer.Option("", "--append", help="extra kernel command line"),
    name: str = typer.Option("up", "--name", help="log directory name under build/logs"),
    timeout: float = typer.Option(600.0, "--timeout", help="seconds for --exec CMD"),
) -> None:
    """Boot a cluster; run a command on node 1 or attach to its shell."""
    try:
        c = Cluster(nodes=nodes, memory=memory, extra_append=append, name=name)
    except KernelMissing as e:
        _err(str(e))
        raise typer.Exit(2) from e
    _err(f"booting {nodes} node(s), logs in {c.log_dir} ...")
    with c:
        _err(f"cluster up: {nodes} node(s) in {c.boot_seconds:.2f} s wall")
        if load_modules:
            _load_modules(c)
        if exec_cmd is not None:
            rc, out, err = c.node(1).execute(exec_cmd, timeout=timeout)
            sys.stdout.write(out)
            sys.stderr.write(err)
            sys.stdout.flush()
            raise typer.Exit(rc)
        assert c.node(1).cfg.sockets.tty is not None
        attach(
            c.node(1).cfg.sockets.tty,
            banner=f"node1 shell; Ctrl-] detaches and stops the cluster "
            f"(other nodes: {c.sock_dir}/nodeN.tty)",
        )


@app.command()
def bench(
    nodes: int = typer.Option(3, "--nodes", "-n"),
    runs: int = typer.Option(3, "--runs"),
    memory: int = typer.Option(256, "--memory", "-m"),
) -> None:
    """Boot `nodes` nodes `runs` times; print each wall time and the median."""
    times: list[float] = []
    for i in range(runs):
        with Cluster(nodes=nodes, memory=memory, name=f"bench{nodes}") as c:
            times.append(c.boot_seconds)
            per_node = " ".join(f"{nd.boot_seconds:.2f}" for nd in c.nodes)
            print(f"run {i + 1}: {c.boot_seconds:.2f} s wall (per node: {per_node})")
    print(f"{nodes} nodes: median {statistics.median(times):.2f} s over {runs} runs")


@app.command()
def netbench(
    seconds: int = typer.Option(5, "--seconds", "-t"),
    runs: int = typer.Option(1, "--runs"),
) -> None:
    """iperf3 node1 -> node2 through the hub and over a direct link (needs iperf3)."""
    for label, direct in (("hub", False), ("direct", True)):
        for i in range(runs):
            with Cluster(nodes=2, name=f"netbench-{label}", direct=direct) as c:
                c.node(2).succeed("iperf3 -s -D -1 >/dev/null 2>&1")
                c.node(2).wait_until_succeeds("busybox netstat -ltn | grep -q :5201", timeout=30)
                out = c.node(1).succeed(f"iperf3 -c node2 -t {seconds} -f m", timeout=seconds + 60)
                rates = [ln for ln in out.splitlines() if "receiver" in ln]
                print(f"{label} run {i + 1}: {rates[-1].strip() if rates else out}")


if __name__ == "__main__":
    app()
