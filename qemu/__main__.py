"""`python -m qemu up --nodes 3 [--exec CMD | --exec-env VAR] [--memory M] [--load-modules]`.

Boots a cluster, optionally loads the ssikit modules on every node and forms one
SSI cluster, then either runs a command on node 1 (exit code passed through) or
attaches this terminal to node 1's shell (Ctrl-] detaches and tears the cluster
down). `--exec-env VAR` takes the command from the environment variable VAR,
untouched: that is how `make cluster EXEC='echo $HOME'` passes it (make would
expand `$H` on a command line). Progress goes to stderr; a bad option exits 2,
Ctrl-C tears the cluster down and exits 130.
`python -m qemu bench --nodes 3 --runs 3` prints boot times.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
from collections.abc import Sequence
from typing import NoReturn

from .bringup import DEFAULT_MODULES, BringUpError
from .cluster import Cluster
from .node import NodeError
from .paths import KernelMissing, flavor
from .qemu_cmd import MAX_NODES
from .terminal import attach

PROG = "python -m qemu"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help shows each meaningful default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, "", argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def _err(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _int_range(low: int, high: int) -> argparse._ActionType:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}, not {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="ssikit QEMU cluster harness")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = _DefaultsFormatter

    up = sub.add_parser("up", help="boot a cluster; run a command on node 1 or attach to it",
                        formatter_class=fmt)
    up.add_argument("--nodes", "-n", type=_int_range(1, MAX_NODES), default=3,
                    help=f"number of nodes (1..{MAX_NODES})")
    up.add_argument("--memory", "-m", type=_int_range(64, 65536), default=None,
                    help="MiB of RAM per node (default: 256; 512 for FLAVOR=debug)")
    run = up.add_mutually_exclusive_group()
    run.add_argument("--exec", dest="exec_cmd", metavar="CMD",
                     help="run CMD on node 1, print its output, exit with its code")
    run.add_argument("--exec-env", metavar="VAR",
                     help="like --exec, the command taken verbatim from environment "
                     "variable VAR (unset or empty: attach to the shell)")
    up.add_argument("--load-modules", action="store_true",
                    help="load the SSI modules and form the SSI cluster")
    up.add_argument("--append", default="", help="extra kernel command line")
    up.add_argument("--name", default="up", help="log directory name in this run's logs")
    up.add_argument("--timeout", type=_positive_float, default=600.0,
                    help="seconds for the command")

    bench = sub.add_parser("bench", help="boot times", formatter_class=fmt)
    bench.add_argument("--nodes", "-n", type=_int_range(1, MAX_NODES), default=3)
    bench.add_argument("--runs", type=_int_range(1, 1000), default=3)
    bench.add_argument("--memory", "-m", type=_int_range(64, 65536), default=None,
                       help="MiB of RAM per node (default: 256; 512 for FLAVOR=debug)")

    net = sub.add_parser("netbench", help="iperf3 through the hub vs a direct link",
                         formatter_class=fmt)
    net.add_argument("--seconds", "-t", type=_int_range(1, 3600), default=5)
    net.add_argument("--runs", type=_int_range(1, 1000), default=1)
    return parser


def _load_modules(c: Cluster) -> None:
    """Load the SSI modules on every node and form one cluster (fresh random key)."""
    out_dir = flavor().modules_out
    modules = [m for m in DEFAULT_MODULES if (out_dir / f"{m}.ko").exists()]
    missing = sorted(set(DEFAULT_MODULES) - set(modules))
    if missing:
        _err(f"warning: {', '.join(missing)} not built (run make modules): loading "
             f"{', '.join(modules)} only")
    results = c.bring_up(key=secrets.token_bytes(32), modules=modules)
    _err(f"SSI modules loaded on {len(results)} node(s): {', '.join(modules)}")


def _command_to_run(args: argparse.Namespace) -> str | None:
    if args.exec_env is not None:
        return os.environ.get(args.exec_env) or None
    cmd: str | None = args.exec_cmd
    return cmd


def cmd_up(args: argparse.Namespace) -> int:
    exec_cmd = _command_to_run(args)
    c = Cluster(nodes=args.nodes, memory=args.memory, extra_append=args.append, name=args.name)
    _err(f"booting {args.nodes} node(s), logs in {c.log_dir} ...")
    with c:
        _err(f"cluster up: {args.nodes} node(s) in {c.boot_seconds:.2f} s wall "
             f"(sockets in {c.sock_dir})")
        if args.load_modules:
            _load_modules(c)
        if exec_cmd is not None:
            rc, out, err = c.node(1).execute(exec_cmd, timeout=args.timeout)
            sys.stdout.write(out)
            sys.stdout.flush()
            sys.stderr.write(err)
            sys.stderr.flush()
            return rc
        tty = c.node(1).cfg.sockets.tty
        attach(
            tty,
            banner=f"node1 shell; Ctrl-] detaches and stops the cluster "
            f"(other nodes: {c.sock_dir}/nodeN.tty)",
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Boot `nodes` nodes `runs` times; print each wall time and the median."""
    times: list[float] = []
    for i in range(args.runs):
        with Cluster(nodes=args.nodes, memory=args.memory, name=f"bench{args.nodes}") as c:
            times.append(c.boot_seconds)
            per_node = " ".join(f"{nd.boot_seconds:.2f}" for nd in c.nodes)
            print(f"run {i + 1}: {c.boot_seconds:.2f} s wall (per node: {per_node})")
    print(f"{args.nodes} nodes: median {statistics.median(times):.2f} s over {args.runs} runs")
    return 0


def cmd_netbench(args: argparse.Namespace) -> int:
    """iperf3 node1 -> node2 through the hub and over a direct link (needs iperf3)."""
    seconds = args.seconds
    for label, direct in (("hub", False), ("direct", True)):
        for i in range(args.runs):
            with Cluster(nodes=2, name=f"netbench-{label}", direct=direct) as c:
                c.node(2).succeed("iperf3 -s -D -1 >/dev/null 2>&1")
                c.node(2).wait_until_succeeds("busybox netstat -ltn | grep -q :5201", timeout=30)
                out = c.node(1).succeed(f"iperf3 -c node2 -t {seconds} -f m", timeout=seconds + 60)
                rates = [ln for ln in out.splitlines() if "receiver" in ln]
                print(f"{label} run {i + 1}: {rates[-1].strip() if rates else out}")
    return 0


COMMANDS = {"up": cmd_up, "bench": cmd_bench, "netbench": cmd_netbench}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _err(f"{PROG}: interrupted; cluster stopped")
        return 130
    except (KernelMissing, BringUpError, NodeError, AssertionError) as e:
        _err(f"{PROG} {args.command}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
