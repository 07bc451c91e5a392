"""``ssictl modules load|unload|status``: the SSI kernel modules of this node.

Where the .ko files are (the first that applies): ``--dir DIR``; else
``$SSIKIT_MODULES_DIR``; else the first of these that holds .ko files:
``<checkout>/build/modules/out`` (when ssictl runs from an ssikit checkout),
``/lib/modules/$(uname -r)/updates/ssikit``, ``/lib/modules/$(uname -r)/extra/ssikit``
(where ``make -C <kernel> M=<dir> modules_install INSTALL_MOD_DIR=updates/ssikit``
or a distribution package puts them).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ssictl import kmod
from ssictl.checkout import checkout_root
from ssictl.output import CLIError, JsonOpt, emit, handle_errors, note
from ssictl.table import format_table

MODULES_DIR_ENV = "SSIKIT_MODULES_DIR"
LIB_MODULES = Path("/lib/modules")
INSTALL_SUBDIRS = ("updates/ssikit", "extra/ssikit")

app = typer.Typer(
    help="Load, unload and inspect the SSI kernel modules (.ko files).\n\n"
    f"The .ko files are taken from --dir DIR, else ${MODULES_DIR_ENV}, else the first of "
    "<checkout>/build/modules/out (ssictl run from an ssikit checkout), "
    "/lib/modules/$(uname -r)/updates/ssikit and /lib/modules/$(uname -r)/extra/ssikit "
    "that holds .ko files.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def search_dirs() -> list[Path]:
    """Where modules are looked for without --dir or $SSIKIT_MODULES_DIR, in order."""
    root = checkout_root()
    dirs = [root / "build" / "modules" / "out"] if root else []
    release = LIB_MODULES / os.uname().release
    return dirs + [release / sub for sub in INSTALL_SUBDIRS]


DirOpt = Annotated[
    str | None,
    typer.Option(
        "--dir",
        metavar="DIR",
        help=f"Directory holding the .ko files [default: ${MODULES_DIR_ENV}, else searched: "
        "see `ssictl modules --help`].",
        show_default=False,
    ),
]
NamesArg = Annotated[
    list[str] | None,
    typer.Argument(help="Modules to act on (default: every module in DIR).", show_default=False),
]


# --------------------------------------------------------------------------- planning


def _has_modules(d: Path) -> bool:
    return d.is_dir() and any(d.glob("*.ko"))


def locate_dir(directory: str | Path | None) -> Path:
    """The module directory: *directory* (--dir), $SSIKIT_MODULES_DIR, or the first
    of :func:`search_dirs` holding .ko files; CLIError listing where it looked."""
    given = directory or os.environ.get(MODULES_DIR_ENV) or None
    if given:
        d = Path(given)
        if not d.is_dir():
            source = "--dir" if directory else f"${MODULES_DIR_ENV}"
            raise CLIError(
                f"module directory {d} ({source}) does not exist",
                "build the SSI modules first (they go to build/modules/out/), "
                f"or point --dir or ${MODULES_DIR_ENV} at the directory holding the .ko files",
            )
        return d
    looked = search_dirs()
    for d in looked:
        if _has_modules(d):
            return d
    raise CLIError(
        "no SSI kernel modules found",
        "build them (`make modules` in the checkout), install them to "
        f"{LIB_MODULES / os.uname().release / INSTALL_SUBDIRS[0]}, or point --dir or "
        f"${MODULES_DIR_ENV} at the directory holding the .ko files",
        details=[f"looked in {d} ({'no .ko files' if d.is_dir() else 'absent'})" for d in looked],
    )


def find_modules(directory: str | Path | None) -> tuple[Path, dict[str, kmod.ModuleFile]]:
    """The module directory and its modules; CLIError if there is nothing usable."""
    d = locate_dir(directory)
    try:
        mods = kmod.discover(d)
    except kmod.ModinfoError as e:
        raise CLIError(str(e), f"rebuild the modules, or remove the stray file from {d}") from e
    if not mods:
        raise CLIError(
            f"no .ko files in {d}",
            "build the SSI modules first, or point --dir at the directory holding them",
        )
    return d, mods


def order(mods: dict[str, kmod.ModuleFile], subset: set[str] | None = None) -> list[str]:
    """Load order (dependencies first) of *subset* (default all) of *mods*."""
    names = set(mods) if subset is None else subset
    try:
        return kmod.toposort({n: mods[n].depends for n in names})
    except kmod.CycleError as e:
        raise CLIError(
            "the modules' dependencies form a cycle: " + " -> ".join(e.cycle),
            "no load order exists; the depends= of these modules come from the symbols "
            "they use from each other: break the cycle in their sources and rebuild",
        ) from e


def _check_names(names: list[str], mods: dict[str, kmod.ModuleFile], d: Path) -> set[str]:
    wanted = {kmod.modname(n.removesuffix(".ko")) for n in names}
    unknown = sorted(wanted - set(mods))
    if unknown:
        raise CLIError(
            f"no module {', '.join(unknown)} in {d}",
            f"pick from: {', '.join(sorted(mods))} (or pass --dir)",
        )
    return wanted


def plan_load(
    names: list[str] | None,
    mods: dict[str, kmod.ModuleFile],
    loaded: dict[str, kmod.LoadedModule],
    d: Path,
) -> list[str]:
    """Modules to load for *names* (with their dependencies), in load order."""
    targets = _check_names(names, mods, d) if names else set(mods)
    needed = kmod.closure(targets, {n: m.depends for n, m in mods.items()})
    for n in sorted(needed & set(mods)):
        for dep in mods[n].depends:
            if dep not in mods and dep not in loaded:
                raise CLIError(
                    f"{n} depends on {dep}, which is neither in {d} nor loaded",
                    f"load {dep} first (`modprobe {dep}`), or put its .ko in {d}",
                )
    return order(mods, needed & set(mods))


def plan_unload(names: list[str] | None, mods: dict[str, kmod.ModuleFile], d: Path) -> list[str]:
    """Modules to unload for *names* (and the modules of DIR that use them), in unload order."""
    targets = _check_names(names, mods, d) if names else set(mods)
    users: dict[str, list[str]] = {}
    for n, m in mods.items():
        for dep in m.depends:
            users.setdefault(dep, []).append(n)
    needed = kmod.closure(targets, users) & set(mods)
    return list(reversed(order(mods, needed)))


# --------------------------------------------------------------------------- load


def _load_hint(err: int, mod: kmod.ModuleFile) -> str:
    if err == errno.ENOEXEC:
        running = os.uname().release
        built = mod.vermagic.split()[0] if mod.vermagic else ""
        if built and built != running:
            return (
                f"{mod.name} was built for kernel {built} but {running} is running: "
                "rebuild the modules against the kernel you boot (or boot that kernel)"
            )
        return "the file is not a valid module for this kernel: rebuild it against this kernel"
    if err == errno.ENOENT:
        return (
            "the module needs a symbol this kernel does not provide (is the ssikit-patched "
            "kernel running, and are the modules it depends on loaded?) or got an unknown "
            "parameter; the kernel log lines name it"
        )
    if err == errno.EPERM:
        return (
            "loading modules needs root (CAP_SYS_MODULE); as root this means module loading "
            "is disabled (kernel.modules_disabled) or the module's signature was refused"
        )
    if err == errno.ENOSYS:
        return "this kernel has no loadable module support (CONFIG_MODULES=n)"
    if err == errno.EINVAL:
        return "the kernel refused the module or its parameters; see the kernel log lines"
    return "the module's init failed with this error; the kernel log lines say why"


def load_modules(
    d: Path, mods: dict[str, kmod.ModuleFile], names: list[str] | None, as_json: bool
) -> list[dict[str, Any]]:
    """Load *names* (default all) with their dependencies; returns per-module results."""
    loaded = kmod.loaded_modules()
    results: list[dict[str, Any]] = []
    for name in plan_load(names, mods, loaded, d):
        mod = mods[name]
        entry: dict[str, Any] = {"name": name, "path": str(mod.path)}
        if name in loaded:
            entry["action"] = "already-loaded"
            results.append(entry)
            note(f"{name}: already loaded", as_json)
            continue
        with kmod.KernelLog() as klog:
            try:
                kmod.finit_module(mod.path, module_params(name))
            except kmod.KernelError as e:
                if e.err == errno.EEXIST:
                    entry["action"] = "already-loaded"
                    results.append(entry)
                    continue
                log = kmod.lines_naming(klog.new_lines(), name) or e.log
                entry["action"] = "failed"
                results.append(entry)
                details = [f"kernel: {ln}" for ln in log]
                if e.output:
                    details.insert(0, e.output)
                raise CLIError(
                    f"could not load {name} ({mod.path}): {e}",
                    _load_hint(e.err, mod),
                    errno=e.err,
                    details=details,
                    data={"dir": str(d), "modules": results},
                ) from None
        entry["action"] = "loaded"
        results.append(entry)
        note(f"loaded {name} ({mod.path})", as_json)
    return results


def unload_modules(
    d: Path, mods: dict[str, kmod.ModuleFile], names: list[str] | None, as_json: bool
) -> list[dict[str, Any]]:
    """Unload *names* (default all of DIR) after the modules that use them."""
    loaded = kmod.loaded_modules()
    results: list[dict[str, Any]] = []
    for name in plan_unload(names, mods, d):
        entry: dict[str, Any] = {"name": name, "path": str(mods[name].path)}
        if name not in loaded:
            entry["action"] = "not-loaded"
            results.append(entry)
            continue
        try:
            kmod.delete_module(name)
        except kmod.KernelError as e:
            if e.err == errno.ENOENT:
                entry["action"] = "not-loaded"
                results.append(entry)
                continue
            entry["action"] = "failed"
            results.append(entry)
            now = kmod.loaded_modules().get(name, loaded[name])
            if e.err in (errno.EAGAIN, errno.EBUSY):
                what = f"{name} is in use (refcount {now.refcount}"
                what += f", used by {', '.join(now.used_by)})" if now.used_by else ")"
                hint = (
                    f"unload the modules that use it first ({', '.join(now.used_by)})"
                    if now.used_by
                    else "stop the processes or mounts that use it, then retry"
                )
            elif e.err == errno.EPERM:
                what = f"not permitted to unload {name}"
                hint = "unloading modules needs root (CAP_SYS_MODULE)"
            else:
                what = f"could not unload {name}"
                hint = "see the kernel log (`dmesg`)"
            raise CLIError(
                f"{what}: {e}",
                hint,
                errno=e.err,
                details=[e.output] if e.output else [],
                data={"dir": str(d), "modules": results},
            ) from None
        entry["action"] = "unloaded"
        results.append(entry)
        note(f"unloaded {name}", as_json)
    return results


# --------------------------------------------------------------------------- status


def module_status(d: Path, mods: dict[str, kmod.ModuleFile]) -> dict[str, Any]:
    """Everything ``status`` shows, as JSON-ready data."""
    loaded = kmod.loaded_modules()
    warnings: list[str] = []
    try:
        names = order(mods)
    except CLIError as e:
        warnings.append(e.message)
        names = sorted(mods)
    rows: list[dict[str, Any]] = []
    for name in names:
        mod = mods[name]
        lm = loaded.get(name)
        missing = [x for x in mod.depends if x not in mods and x not in loaded]
        if missing:
            warnings.append(f"{name} depends on {', '.join(missing)}: not in {d}, not loaded")
        rows.append(
            {
                "name": name,
                "path": str(mod.path),
                "depends": list(mod.depends),
                "loaded": lm is not None,
                "state": lm.state if lm else None,
                "refcount": lm.refcount if lm else None,
                "used_by": list(lm.used_by) if lm else [],
                "parameters": kmod.module_parameters(name) if lm else {},
            }
        )
    return {
        "dir": str(d),
        "modules": rows,
        "ssi_sysfs": kmod.read_attrs(kmod.SSI_SYSFS),
        "warnings": warnings,
    }


def format_status(st: dict[str, Any]) -> str:
    head = ("MODULE", "STATE", "REFS", "USED BY", "DEPENDS")
    rows = [
        (
            m["name"],
            (m["state"] or "loaded").lower() if m["loaded"] else "not loaded",
            str(m["refcount"]) if m["loaded"] else "-",
            ",".join(m["used_by"]) or "-",
            ",".join(m["depends"]) or "-",
        )
        for m in st["modules"]
    ]
    out = [f"modules in {st['dir']}:"]
    out += format_table([head, *rows], indent="  ")
    for m in st["modules"]:
        for k, v in m["parameters"].items():
            out.append(f"  {m['name']}.{k} = {v}")
    if st["ssi_sysfs"]:
        out.append(f"{kmod.SSI_SYSFS}:")
        out += [f"  {k} = {v}" for k, v in st["ssi_sysfs"].items()]
    else:
        out.append(f"{kmod.SSI_SYSFS}: absent (ssi_core not loaded)")
    out += [f"warning: {w}" for w in st["warnings"]]
    return "\n".join(out)


# --------------------------------------------------------------------------- commands


def _summary(results: list[dict[str, Any]], verb: str, idle: str) -> str:
    """Progress lines were printed as each step ran; say so when nothing had to be done."""
    if any(r["action"] == verb for r in results):
        return ""
    return f"nothing to do: {idle}"


def module_params(name: str) -> str:
    """The parameters *name* is loaded with: migration.ko gets its restore
    helper, which a checkout builds into build/guest-bin (as ssi-cluster-up
    does, which finds it beside itself)."""
    root = checkout_root()
    if name != "migration" or root is None:
        return ""
    helper = root / "build" / "guest-bin" / "ssi-restore"
    return f"helper={helper}" if helper.is_file() else ""


@app.command()
def load(names: NamesArg = None, directory: DirOpt = None, as_json: JsonOpt = False) -> None:
    """Load the modules (dependencies first), skipping those already loaded."""
    with handle_errors(as_json):
        d, mods = find_modules(directory)
        results = load_modules(d, mods, names, as_json)
        emit(
            {"dir": str(d), "modules": results},
            _summary(results, "loaded", "the modules are loaded already"),
            as_json,
        )


@app.command()
def unload(names: NamesArg = None, directory: DirOpt = None, as_json: JsonOpt = False) -> None:
    """Unload the modules (users first); modules not loaded are skipped."""
    with handle_errors(as_json):
        d, mods = find_modules(directory)
        results = unload_modules(d, mods, names, as_json)
        emit(
            {"dir": str(d), "modules": results},
            _summary(results, "unloaded", "none of the modules is loaded"),
            as_json,
        )


@app.command()
def status(directory: DirOpt = None, as_json: JsonOpt = False) -> None:
    """Show each module: loaded or not, refcount, users, and /sys/kernel/ssi attributes."""
    with handle_errors(as_json):
        d, mods = find_modules(directory)
        st = module_status(d, mods)
        emit(st, lambda: format_status(st), as_json)
