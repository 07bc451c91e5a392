"""The kernel source tree: unpack the tarball, apply ``patches/series``, install the ABI header.

The tree at ``<build>/linux`` carries a stamp (``.genmod/source.json``) naming
the tarball version and a digest of the patch series it was patched with.
When the series changes, a fresh tree is unpacked beside the old one and
patched there; only if the whole series applies does it replace the old tree
(ccache, outside the checkout, keeps the rebuild cheap).  A tree genmod did not
unpack (no stamp) is adopted when it is the tarball's version and holds a
prefix of the series; it is never deleted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genmod import ui
from genmod.errors import BuildError, GenmodError, SeriesError, SourceMissing, TreeConflict
from genmod.paths import Paths

_TESTED_ON_RE = re.compile(r"^#\s*tested-on:\s*(\S+)")
_MAKEVAR_RE = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=[ \t]*(\S*)", re.M)


# --- kernel versions ---------------------------------------------------------------------------

def kernel_version_from_makefile(text: str) -> str:
    """``VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION]`` from the top-level Makefile's text."""
    found: dict[str, str] = {}
    for m in _MAKEVAR_RE.finditer(text):
        found.setdefault(m.group(1), m.group(2))
    try:
        return f"{found['VERSION']}.{found['PATCHLEVEL']}.{found['SUBLEVEL']}" \
               f"{found.get('EXTRAVERSION', '')}"
    except KeyError as exc:
        raise SourceMissing(f"not a kernel Makefile (no {exc.args[0]} =)") from None


def tree_version(tree: Path) -> str:
    makefile = tree / "Makefile"
    try:
        return kernel_version_from_makefile(makefile.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise SourceMissing(f"cannot read {makefile}: {exc.strerror}") from None


@dataclass(frozen=True)
class TarballInfo:
    path: str
    size: int
    mtime_ns: int
    top: str
    version: str


def tarball_info(tarball: Path, cache_dir: Path) -> TarballInfo:
    """The tarball's top directory and kernel version (cached by path, size and mtime)."""
    try:
        st = tarball.stat()
    except OSError as exc:
        raise SourceMissing(f"kernel source tarball {tarball}: {exc.strerror} "
                          "(install Debian's linux-source-6.1, or set GENMOD_TARBALL)") from None
    cache = cache_dir / "tarball.json"
    try:
        cached = TarballInfo(**json.loads(cache.read_text(encoding="utf-8")))
        if (cached.path, cached.size, cached.mtime_ns) == (str(tarball), st.st_size,
                                                             st.st_mtime_ns):
            return cached
    except (OSError, ValueError, TypeError):
        pass
    top = version = None
    with tarfile.open(tarball, "r|*") as tf:
        for member in tf:
            if top is None:
                top = member.name.split("/", 1)[0]
            if member.name == f"{top}/Makefile" and member.isfile():
                data = tf.extractfile(member)
                assert data is not None
                version = kernel_version_from_makefile(data.read().decode("utf-8", "replace"))
                break
    if top is None or version is None:
        raise SourceMissing(f"{tarball}: no top-level Makefile found; not a kernel source tarball")
    info = TarballInfo(str(tarball), st.st_size, st.st_mtime_ns, top, version)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(asdict(info)) + "\n", encoding="utf-8")
    return info


# --- the patch series --------------------------------------------------------------------------

@dataclass(frozen=True)
class Patch:
    name: str
    path: Path
    strip: int = 1


@dataclass(frozen=True)
class Series:
    path: Path
    patches: tuple[Patch, ...]
    tested_on: str | None

    def digest(self) -> str:
        """Changes whenever the series file or any patch in it changes."""
        h = hashlib.sha256()
        if self.path.is_file():
            h.update(self.path.read_bytes())
        for p in self.patches:
            h.update(f"\0{p.name}\0{p.strip}\0".encode())
            h.update(p.path.read_bytes())
        return h.hexdigest()


def read_series(patches_dir: Path) -> Series:
    """Parse a quilt ``series`` file: one patch per line, optional ``-pN``, ``#`` comments.

    A comment ``# tested-on: 6.1.192`` records the kernel version the series
    was last tested on.  A missing series file is an empty series.
    """
    path = patches_dir / "series"
    if not path.is_file():
        return Series(path, (), None)
    tested_on = None
    patches: list[Patch] = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        m = _TESTED_ON_RE.match(line)
        if m:
            tested_on = m.group(1)
            continue
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        name, opts = words[0], words[1:]
        strip = 1
        i = 0
        while i < len(opts):
            opt = opts[i]
            if opt == "-p" and i + 1 < len(opts) and opts[i + 1].isdigit():
                strip, i = int(opts[i + 1]), i + 2
            elif re.fullmatch(r"-p\d+", opt):
                strip, i = int(opt[2:]), i + 1
            else:
                raise SeriesError(f"{path}:{lineno}: unsupported patch option {opt!r} "
                                  "(only -pN is supported)")
        patch_path = patches_dir / name
        if not patch_path.is_file():
            raise SeriesError(f"{path}:{lineno}: patch {name} does not exist")
        patches.append(Patch(name, patch_path, strip))
    return Series(path, tuple(patches), tested_on)


def touched_files(patch: Patch) -> list[str]:
    """Tree-relative paths a patch reads or writes (from its ---/+++ header pairs)."""
    files: list[str] = []
    lines = patch.path.read_text(encoding="utf-8", errors="replace").splitlines()
    for old, new in itertools.pairwise(lines):
        if not (old.startswith("--- ") and new.startswith("+++ ")):
            continue
        for header in (old, new):
            name = header[4:].split("\t", 1)[0].strip()
            if name == "/dev/null":
                continue
            parts = name.split("/")[patch.strip:]
            if parts:
                rel = "/".join(parts)
                if rel not in files:
                    files.append(rel)
    return files


@dataclass
class PatchProblem:
    file: str | None
    what: str


class PatchRefused(GenmodError):
    """The series does not apply to the tree."""

    def __init__(self, patch: Patch, problems: Sequence[PatchProblem], tree_version: str,
                 tested_on: str | None, tree: Path, output: str) -> None:
        self.patch = patch
        self.problems = list(problems)
        lines = [f"patch {patch.name} does not apply to {tree} "
                 f"(Linux {tree_version}; {_tested_on_note(tree_version, tested_on)})"]
        for prob in self.problems:
            lines.append(f"  {prob.file}: {prob.what}" if prob.file else f"  {prob.what}")
        if not self.problems:
            lines += ["  patch said:", *(f"    {x}" for x in output.strip().splitlines()[-15:])]
        lines.append(f"Refresh {patch.path} against {tree_version}, or build the version the "
                     "series was tested on; the tree was left as it was.")
        super().__init__("\n".join(lines))


def _tested_on_note(tree_version: str, tested_on: str | None) -> str:
    if tested_on is None:
        return "patches/series has no '# tested-on: X.Y.Z' line"
    if tested_on == tree_version:
        return f"the series was last tested on {tested_on}, the same version"
    sub_tree = tree_version.split(".")[2:3]
    sub_tested = tested_on.split(".")[2:3]
    return (f"the series was last tested on {tested_on}: SUBLEVEL "
            f"{''.join(sub_tree) or '?'} here vs {''.join(sub_tested) or '?'} tested")


def parse_patch_output(output: str) -> list[PatchProblem]:
    """Failing files and hunks from GNU patch's output."""
    problems: list[PatchProblem] = []
    current: str | None = None
    missing = False
    for line in output.splitlines():
        m = re.match(r"^(?:checking|patching) file '?([^']+?)'?$", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^Hunk #(\d+) FAILED at (\d+)", line)
        if m:
            problems.append(PatchProblem(current,
                                         f"hunk #{m.group(1)} FAILED at line {m.group(2)}"))
            continue
        if line.startswith("Reversed (or previously applied) patch detected"):
            problems.append(PatchProblem(current, "already applied (or reversed)"))
            continue
        if line.startswith("can't find file to patch"):
            missing = True
            continue
        if missing:
            m = re.match(r"^\|(?:\+\+\+|---) (\S+)", line)
            if m and m.group(1) != "/dev/null":
                name = m.group(1).split("/", 1)[-1]
                problems.append(PatchProblem(name, "file to patch does not exist"))
                missing = False
            continue
        m = re.match(r"^patch: \*\*\*\* (.*)", line)
        if m:
            problems.append(PatchProblem(None, m.group(1)))
    return problems


def run_patch(patch: Patch, tree: Path, *, dry_run: bool = False,
              reverse: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = ["patch", f"-p{patch.strip}", "--batch", "--no-backup-if-mismatch",
           "--reject-file=-", "-i", str(patch.path)]
    cmd.append("--reverse" if reverse else "--forward")
    if reverse:
        cmd.append("--force")
    if dry_run:
        cmd.append("--dry-run")
    return subprocess.run(cmd, cwd=tree, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace", check=False)


def _copy_files(src: Path, dst: Path, files: Sequence[str]) -> None:
    for rel in files:
        s = src / rel
        if s.is_file():
            d = dst / rel
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)


def _all_touched(patches: Sequence[Patch]) -> list[str]:
    seen: dict[str, None] = {}
    for p in patches:
        seen.update(dict.fromkeys(touched_files(p)))
    return list(seen)


def check_series(tree: Path, patches: Sequence[Patch], tested_on: str | None) -> None:
    """Dry-run the patches in order on a scratch copy of the files they touch.

    Raises :class:`PatchRefused` naming the first patch that does not apply;
    the tree itself is not modified.
    """
    if not patches:
        return
    version = tree_version(tree)
    with tempfile.TemporaryDirectory(prefix="genmod-patch-") as tmp:
        scratch = Path(tmp)
        _copy_files(tree, scratch, _all_touched(patches))
        for p in patches:
            res = run_patch(p, scratch, dry_run=True)
            if res.returncode == 0:
                res = run_patch(p, scratch)
            if res.returncode != 0:
                raise PatchRefused(p, parse_patch_output(res.stdout), version, tested_on, tree,
                                   res.stdout)


def apply_series(tree: Path, patches: Sequence[Patch], tested_on: str | None) -> None:
    """Apply patches (each after a ``--dry-run``), having checked the whole series first."""
    check_series(tree, patches, tested_on)
    for p in patches:
        for dry in (True, False):
            res = run_patch(p, tree, dry_run=dry)
            if res.returncode != 0:
                raise PatchRefused(p, parse_patch_output(res.stdout), tree_version(tree),
                                   tested_on, tree, res.stdout)
        ui.note(f"applied {p.name}")


def applied_prefix(tree: Path, patches: Sequence[Patch]) -> int:
    """How many leading patches of the series are already applied to ``tree``.

    Found by reverse-applying patches k..1 to a scratch copy of the touched
    files, for the largest k that reverses cleanly.
    """
    files = _all_touched(patches)
    for k in range(len(patches), 0, -1):
        with tempfile.TemporaryDirectory(prefix="genmod-adopt-") as tmp:
            scratch = Path(tmp)
            _copy_files(tree, scratch, files)
            if all(run_patch(p, scratch, reverse=True).returncode == 0
                   for p in reversed(patches[:k])):
                return k
    return 0


# --- the tree's stamp --------------------------------------------------------------------------

@dataclass
class SourceState:
    version: str
    tarball: str
    patches: str
    applied: list[str] = field(default_factory=list)
    status: str = "ready"  # "patching" while patches are being applied
    adopted: bool = False

    @staticmethod
    def path(tree: Path) -> Path:
        return tree / ".genmod" / "source.json"

    @classmethod
    def load(cls, tree: Path) -> SourceState | None:
        try:
            return cls(**json.loads(cls.path(tree).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, tree: Path) -> None:
        path = self.path(tree)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)


# --- putting it together -----------------------------------------------------------------------

@dataclass
class SourceReport:
    version: str
    patches_digest: str
    abi_digest: str
    actions: list[str]


def _rm_tree(path: Path) -> None:
    if path.exists() or path.is_symlink():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def unpack(info: TarballInfo, dest: Path) -> None:
    """Extract the tarball's top directory as ``dest`` (which must not exist)."""
    tmp = dest.parent / f".{dest.name}.unpack"
    _rm_tree(tmp)
    tmp.mkdir(parents=True)
    res = subprocess.run(["tar", "-xf", info.path, "-C", str(tmp), "--no-same-owner"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=False)
    if res.returncode != 0:
        _rm_tree(tmp)
        raise BuildError(f"unpacking {info.path} failed:\n{res.stdout[-2000:]}")
    os.rename(tmp / info.top, dest)
    _rm_tree(tmp)


def sync_abi(paths: Paths) -> bool:
    """Install abi/ssi_abi.h as include/uapi/linux/ssi.h; True if it changed."""
    src, dst = paths.abi_header, paths.abi_in_tree
    if not src.is_file():
        raise SourceMissing(f"{src} is missing")
    data = src.read_bytes()
    if dst.is_file() and dst.read_bytes() == data:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)  # a new mtime only when the content changed
    return True


def abi_digest(paths: Paths) -> str:
    return hashlib.sha256(paths.abi_header.read_bytes()).hexdigest()


def previous_tree(paths: Paths) -> Path:
    return paths.linux.parent / f"{paths.linux.name}.prev"


def _fresh_tree(paths: Paths, info: TarballInfo, series: Series, digest: str,
                reason: str) -> None:
    """Unpack and patch a new tree beside the old one; swap it in only on success.

    The replaced tree is kept as ``<build>/linux.prev`` (until the next
    re-unpack), so edits made in place in the old tree are not lost.
    """
    tree = paths.linux
    new = tree.parent / f".{tree.name}.new"
    _rm_tree(new)
    ui.step(f"unpacking {info.path} (Linux {info.version}) {reason}")
    start = time.monotonic()
    unpack(info, new)
    SourceState(info.version, info.path, digest, status="patching").save(new)
    try:
        apply_series(new, series.patches, series.tested_on)
    except GenmodError:
        _rm_tree(new)
        raise
    SourceState(info.version, info.path, digest, [p.name for p in series.patches]).save(new)
    if tree.exists():
        prev = previous_tree(paths)
        _rm_tree(prev)
        os.rename(tree, prev)
        ui.note(f"previous tree kept as {prev} (removed at the next re-unpack)")
    os.rename(new, tree)
    ui.note(f"unpacked and patched in {time.monotonic() - start:.0f} s")


def _adopt(paths: Paths, info: TarballInfo, series: Series, digest: str) -> list[str]:
    tree = paths.linux
    version = tree_version(tree)
    if version != info.version:
        raise TreeConflict(
            f"{tree} holds Linux {version} but {info.path} is {info.version}, and genmod did "
            "not unpack that tree (no .genmod/source.json), so it will not replace it. "
            "Move it away, or run 'genmod kernel --reunpack' to discard it.")
    ui.step(f"adopting the existing tree {tree} (Linux {version})")
    done = applied_prefix(tree, series.patches)
    actions = [f"adopted {tree}"]
    if done:
        ui.note(f"already applied: {', '.join(p.name for p in series.patches[:done])}")
    rest = series.patches[done:]
    if rest:
        SourceState(info.version, info.path, digest, status="patching", adopted=True).save(tree)
        apply_series(tree, rest, series.tested_on)
        actions.append(f"applied {len(rest)} patch(es)")
    SourceState(info.version, info.path, digest, [p.name for p in series.patches],
                adopted=True).save(tree)
    return actions


def prepare_source(paths: Paths, *, reunpack: bool = False) -> SourceReport:
    """Make ``<build>/linux`` the tarball's version with the current series applied."""
    info = tarball_info(paths.tarball, paths.cache)
    series = read_series(paths.patches)
    digest = series.digest()
    tree = paths.linux
    actions: list[str] = []
    state = SourceState.load(tree) if tree.exists() else None
    if not tree.exists():
        _fresh_tree(paths, info, series, digest, "(no tree yet)")
        actions.append("unpacked and patched a fresh tree")
    elif reunpack:
        _fresh_tree(paths, info, series, digest, "(--reunpack)")
        actions.append("re-unpacked (requested)")
    elif state is None:
        actions += _adopt(paths, info, series, digest)
    else:
        reason = None
        if state.status != "ready":
            reason = "(an earlier patch run did not finish)"
        elif state.version != info.version:
            reason = f"(tarball changed: {state.version} -> {info.version})"
        elif state.patches != digest:
            reason = "(patches/series changed since the tree was patched)"
        if reason:
            _fresh_tree(paths, info, series, digest, reason)
            actions.append(f"re-unpacked {reason}")
    if sync_abi(paths):
        actions.append(f"installed {paths.abi_header.name} as include/uapi/linux/ssi.h")
    return SourceReport(version=info.version, patches_digest=digest,
                        abi_digest=abi_digest(paths), actions=actions)
