"""genmod command line: ``kernel``, ``modules``, ``check``, ``config-verify``, ``all``."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from genmod import flavor, kbuild, kernel, ui
from genmod.errors import CheckpatchFailed, ConfigMismatch, GenmodError, NotBuilt
from genmod.lock import build_lock
from genmod.paths import DEFAULT_TARBALL, Paths

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="ssikit build driver: patched 6.1 kernel and generated SSI modules.")

VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Stream kbuild's output instead of a progress line.",
    show_default=True)]


class FlavorName(StrEnum):
    """The choices of --flavor (genmod.flavor.FLAVORS)."""

    normal = "normal"
    debug = "debug"


@dataclass
class Options:
    build_dir: Path | None
    tarball: Path | None
    jobs: int | None
    verbose: bool
    flavor: FlavorName = FlavorName.normal

    def paths(self) -> Paths:
        return Paths.discover(self.build_dir, self.tarball, self.flavor.value)

    def settings(self) -> kbuild.MakeSettings:
        return kbuild.MakeSettings(jobs=self.jobs) if self.jobs else kbuild.MakeSettings()


@app.callback()
def _options(
    ctx: typer.Context,
    build_dir: Annotated[Path | None, typer.Option(
        help="Build directory; the kernel tree is <build-dir>/linux.",
        show_default="$GENMOD_BUILD_DIR, else <checkout>/build")] = None,
    tarball: Annotated[Path | None, typer.Option(
        help="Kernel source tarball.",
        show_default=f"$GENMOD_TARBALL, else {DEFAULT_TARBALL}")] = None,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1, help="make -j.", show_default="nproc")] = None,
    flavor_name: Annotated[FlavorName, typer.Option(
        "--flavor", envvar=flavor.FLAVOR_ENV, show_envvar=True,
        help="Kernel flavor: normal (<build-dir>/linux, modules) or debug (KASAN, lockdep, "
             "kmemleak...: <build-dir>/linux-debug, modules-debug).")] = FlavorName.normal,
    verbose: VerboseOpt = False,
) -> None:
    ctx.obj = Options(build_dir, tarball, jobs, verbose, flavor_name)


def _opts(ctx: typer.Context, verbose: bool) -> Options:
    opts: Options = ctx.obj
    opts.verbose = opts.verbose or verbose
    return opts


def _do_kernel(opts: Options, force: bool, reunpack: bool) -> None:
    paths = opts.paths()
    with build_lock(paths.lock):
        report = kernel.build_kernel(paths, opts.settings(), verbose=opts.verbose, force=force,
                                     reunpack=reunpack)
    for action in report.actions:
        ui.note(action)
    state = "up to date" if report.up_to_date else "built"
    ui.step(f"kernel {report.version} {state} in {report.seconds:.1f} s: "
            f"{paths.linux / 'arch/x86/boot/bzImage'}")


def _do_modules(opts: Options, config: list[Path], no_build: bool) -> None:
    from genmod import modules

    paths = opts.paths()
    start = time.monotonic()
    with build_lock(paths.lock):
        report = modules.build_modules(paths, opts.settings(), verbose=opts.verbose,
                                       overrides=config, build=not no_build)
    if report.skipped:
        ui.note(f"disabled in kernel/Kconfig: {', '.join(report.skipped)}")
    if no_build:
        ui.step(f"generated {len(report.built)} module(s) in {paths.modules}")
        return
    ui.step(f"{len(report.kos)} module(s) in {paths.modules_out} "
            f"({time.monotonic() - start:.1f} s): {', '.join(p.name for p in report.kos)}")


@app.command("kernel")
def kernel_cmd(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(
        help="Reconfigure and run make even if the stamp says nothing changed.")] = False,
    reunpack: Annotated[bool, typer.Option(
        help="Discard build/linux and unpack a fresh tree.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Unpack, patch, configure (verified) and build bzImage + Module.symvers."""
    _do_kernel(_opts(ctx, verbose), force, reunpack)


@app.command("modules")
def modules_cmd(
    ctx: typer.Context,
    config: Annotated[list[Path] | None, typer.Option(
        help="Extra .config fragment for kernel/Kconfig (e.g. CONFIG_SSI_CORE=n); "
             "repeatable.")] = None,
    no_build: Annotated[bool, typer.Option(
        "--no-build", help="Only generate build/modules/ (Kbuild, *_gen.c/.h, ssi_config.h).",
        show_default=True)] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Generate the SSI modules from kernel/modules.toml, build and check them."""
    _do_modules(_opts(ctx, verbose), config or [], no_build)


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    kos: Annotated[list[Path] | None, typer.Argument(
        help=".ko files (default: build/modules/out/*.ko).")] = None,
) -> None:
    """Check .ko files: vermagic, GPL-compatible license, every undefined symbol exported."""
    from genmod import kocheck

    paths = _opts(ctx, False).paths()
    files = kos or sorted(paths.modules_out.glob("*.ko"))
    if not files:
        raise NotBuilt(f"no .ko files in {paths.modules_out}; run 'genmod modules' first")
    kocheck.check_or_raise(paths, files)


@app.command("config-verify")
def config_verify_cmd(ctx: typer.Context) -> None:
    """Check build/linux/.config gives every symbol our fragments request."""
    opts = _opts(ctx, False)
    paths = opts.paths()
    bad = kernel.verify_config(paths, opts.settings())
    if bad:
        from genmod.kconfig import format_mismatches

        raise ConfigMismatch(format_mismatches(bad), bad)
    ui.step(f"{paths.linux}/.config has every value requested by "
            + ", ".join(f.name for f in paths.fragments))


@app.command("checkpatch")
def checkpatch_cmd(
    ctx: typer.Context,
    files: Annotated[list[Path] | None, typer.Argument(
        help="C files (default: generated module files and kernel/**/*.[ch]).")] = None,
) -> None:
    """Run checkpatch.pl --strict on generated and hand-written module C."""
    from genmod import checkpatch, modules

    opts = _opts(ctx, False)
    paths = opts.paths()
    if not files:
        with build_lock(paths.lock):
            modules.build_modules(paths, opts.settings(), build=False)
    targets = files or checkpatch.default_files(paths)
    findings = checkpatch.check(paths, targets)
    for f in findings:
        ui.console.print(f.output, markup=False, highlight=False)
    if findings:
        raise CheckpatchFailed(f"checkpatch --strict: {len(findings)} of {len(targets)} file(s) "
                          "have problems: " + ", ".join(str(f.path) for f in findings))
    ui.step(f"checkpatch --strict: {len(targets)} file(s) clean")


@app.command("all")
def all_cmd(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(help="As for 'kernel'.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """kernel, then modules (which checks them)."""
    opts = _opts(ctx, verbose)
    _do_kernel(opts, force, False)
    _do_modules(opts, [], False)


# typer turns Ctrl-C inside a command into this exit status (and older typers into Abort).
INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run genmod; every failure is a message on stderr and a non-zero status, no traceback.

    Status 1: a build step failed (GenmodError), 2: bad usage (unknown option,
    bad value), 130: interrupted (Ctrl-C).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        app(["--help"], prog_name="genmod", standalone_mode=False)
        return 2
    try:
        status = app(args, prog_name="genmod", standalone_mode=False)
    except GenmodError as exc:
        ui.error(str(exc))
        return 1
    except (KeyboardInterrupt, typer.Abort):
        status = INTERRUPTED
    except typer.Exit as exc:
        status = exc.exit_code
    except typer.TyperException as exc:  # typer's usage errors: unknown option, bad value
        ui.error(f"{exc.format_message()} (see 'genmod --help')")
        return exc.exit_code or 2
    if status == INTERRUPTED:
        ui.error("interrupted")
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
