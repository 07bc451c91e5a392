"""genmod.manifest / genmod.modules: validation, kernel/Kconfig evaluation, rendering."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from fixtures.genmod.kernel_source import built_tree, kernel_subset

from genmod import kbuild, modules
from genmod.errors import GenmodError
from genmod.manifest import ManifestError, load_manifest
from genmod.paths import Paths

REPO = Path(__file__).resolve().parents[2]
TREE = built_tree()

KCONFIG = """\
config MODULES
\tdef_bool $(KERNEL_MODULES)
\tmodules

config SSI
\tdef_bool $(KERNEL_SSI)

config SSI_CORE
\ttristate "core"
\tdepends on SSI && MODULES
\tdefault m

config SSI_EXTRA
\ttristate "extra"
\tdepends on SSI_CORE
\tdefault m

config SSI_ICS_PORT
\tint "port"
\tdefault 4600

config SSI_TRACE
\tbool "trace"
\tdefault y

config SSI_CLUSTER_NAME
\tstring "name"
\tdefault "ssi \\"one\\""
"""

MANIFEST = """\
[defaults]
author = "ssikit developers <dev@ssikit.invalid>"

[[module]]
name = "ssi_core"
description = "SSI core for tests"
sources = ["core/ssi_core.c"]

[[module]]
name = "ssi_extra"
description = "Depends on the core, has parameters"
sources = ["extra/main.c", "extra/util.c"]
depends = ["ssi_core"]

  [[module.param]]
  name = "port"
  type = "int"
  default_config = "SSI_ICS_PORT"
  description = "TCP port"

  [[module.param]]
  name = "verbose"
  type = "bool"
  default_config = "SSI_TRACE"
  perm = "0644"
  description = "Log more"

  [[module.param]]
  name = "peer"
  type = "charp"
  default = "node1"
  description = "Peer name"

  [[module.param]]
  name = "mask"
  type = "hexint"
  default = 255
  description = "Mask"

  [[module.param]]
  name = "count"
  type = "uint"
  default = 0
  description = "Zero stays uninitialised"
"""

CORE_C = """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/init.h>
#include <linux/module.h>

#include "ssi_core_gen.h"

int ssi_core_shared(void)
{
\treturn 42;
}
EXPORT_SYMBOL_GPL(ssi_core_shared);

int __init ssi_core_init(void)
{
\treturn 0;
}

void __exit ssi_core_exit(void)
{
}
"""

EXTRA_MAIN_C = """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/init.h>
#include <linux/printk.h>

#include "ssi_extra_gen.h"
#include "util.h"

int ssi_core_shared(void);

int __init ssi_extra_init(void)
{
\tpr_info("port %d verbose %d peer %s mask %x count %u: %d\\n", ssi_extra_port,
\t\tssi_extra_verbose, ssi_extra_peer, ssi_extra_mask, ssi_extra_count,
\t\tssi_core_shared() + extra_util());
\treturn 0;
}

void __exit ssi_extra_exit(void)
{
}
"""


def make_repo(tmp_path: Path, kernel_config: str = "CONFIG_MODULES=y\nCONFIG_SSI=y\n",
              manifest: str = MANIFEST, build: Path | None = None) -> Paths:
    root = tmp_path / "repo"
    k = root / "kernel"
    (k / "core").mkdir(parents=True)
    (k / "extra").mkdir()
    (k / "Kconfig").write_text(KCONFIG)
    (k / "modules.toml").write_text(manifest)
    (k / "core/ssi_core.c").write_text(CORE_C)
    (k / "extra/main.c").write_text(EXTRA_MAIN_C)
    (k / "extra/util.h").write_text("/* SPDX-License-Identifier: GPL-2.0-only */\n"
                                    "int extra_util(void);\n")
    (k / "extra/util.c").write_text('// SPDX-License-Identifier: GPL-2.0-only\n#include "util.h"'
                                    "\n\nint extra_util(void)\n{\n\treturn 1;\n}\n")
    (root / "pyproject.toml").write_text('[project]\nname = "ssikit"\n')
    paths = Paths(root=root, build=build or root / "build", tarball=tmp_path / "none.tar.xz")
    if build is None:
        paths.linux.mkdir(parents=True)
        (paths.linux / ".config").write_text(kernel_config)
    return paths


def _manifest_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "modules.toml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ManifestError) as info:
        load_manifest(path, tmp_path)
    return str(info.value)


def test_manifest_validation(tmp_path: Path) -> None:
    base = ('[defaults]\nauthor = "me"\n'
            '[[module]]\nname = "a"\ndescription = "d"\nsources = ["x/a.c"]\n')
    assert "unknown key(s) sauce" in _manifest_error(tmp_path, base + 'sauce = "x"\n')
    assert "depends on unknown module 'zz'" in _manifest_error(
        tmp_path, base + 'depends = ["zz"]\n')
    cycle = (base + 'depends = ["b"]\n[[module]]\nname = "b"\ndescription = "d"\n'
             'sources = ["x/b.c"]\ndepends = ["a"]\n')
    assert "dependency cycle: a -> b -> a" in _manifest_error(tmp_path, cycle)
    assert "<subsystem>/<file>.c" in _manifest_error(
        tmp_path, base.replace('"x/a.c"', '"a.c"'))
    assert "type 'float'" in _manifest_error(
        tmp_path, base + '[[module.param]]\nname = "p"\ntype = "float"\ndescription = "d"\n')
    assert "world-writable" in _manifest_error(
        tmp_path, base + '[[module.param]]\nname = "p"\ntype = "int"\ndescription = "d"\n'
        'perm = "0666"\n')
    assert "default must be a TOML int" in _manifest_error(
        tmp_path, base + '[[module.param]]\nname = "p"\ntype = "int"\ndescription = "d"\n'
        'default = "3"\n')
    assert "lower-case C identifier" in _manifest_error(
        tmp_path, base.replace('"a"', '"Bad-Name"'))
    assert "'author' must be a non-empty string" in _manifest_error(
        tmp_path, base.replace('author = "me"', ""))


def _modules_toml(deps: dict[str, list[str]]) -> str:
    return '[defaults]\nauthor = "me"\n' + "".join(
        f'[[module]]\nname = "{name}"\ndescription = "d"\nsources = ["x/{name}.c"]\n'
        f"depends = {needs!r}\n".replace("'", '"') for name, needs in deps.items())


def test_cycles_are_named_from_the_first_listed_module(tmp_path: Path) -> None:
    three = _modules_toml({"z": [], "c": ["a"], "a": ["b"], "b": ["c"]})
    assert "dependency cycle: c -> a -> b -> c" in _manifest_error(tmp_path, three)
    assert "dependency cycle: s -> s" in _manifest_error(tmp_path, _modules_toml({"s": ["s"]}))


def test_build_order_puts_every_dependency_first(tmp_path: Path) -> None:
    deps = {"top": ["left", "right"], "left": ["base"], "right": ["base"], "base": [],
            "alone": []}
    path = tmp_path / "modules.toml"
    path.write_text(_modules_toml(deps))
    manifest = load_manifest(path, tmp_path)
    order = [m.name for m in manifest.build_order()]
    assert sorted(order) == sorted(deps)
    for name, needs in deps.items():
        assert all(order.index(d) < order.index(name) for d in needs)
    top = manifest.by_name()["top"]
    closure = [m.name for m in manifest.closure(top)]
    assert sorted(closure) == ["base", "left", "right"] and closure[0] == "base"


def test_build_order_and_closure(tmp_path: Path) -> None:
    paths = make_repo(tmp_path)
    manifest = load_manifest(paths.manifest, paths.kernel_src)
    assert [m.name for m in manifest.build_order()] == ["ssi_core", "ssi_extra"]
    extra = manifest.by_name()["ssi_extra"]
    assert [m.name for m in manifest.closure(extra)] == ["ssi_core"]


def test_module_config_follows_kernel_config(tmp_path: Path) -> None:
    paths = make_repo(tmp_path)
    cfg = modules.evaluate_module_config(paths.module_kconfig, paths.linux / ".config")
    assert cfg.values["SSI_CORE"] == "m"
    assert "SSI" not in cfg.values and "MODULES" not in cfg.values  # mirrors
    assert ("CONFIG_SSI_CORE_MODULE", "1") in cfg.defines
    assert ("CONFIG_SSI_ICS_PORT", "4600") in cfg.defines
    assert ("CONFIG_SSI_TRACE", "1") in cfg.defines
    assert ("CONFIG_SSI_CLUSTER_NAME", '"ssi \\"one\\""') in cfg.defines
    assert not any(name.startswith("CONFIG_SSI ") or name == "CONFIG_MODULES"
                   for name, _ in cfg.defines)

    (paths.linux / ".config").write_text("CONFIG_MODULES=y\n# CONFIG_SSI is not set\n")
    cfg = modules.evaluate_module_config(paths.module_kconfig, paths.linux / ".config")
    assert cfg.values["SSI_CORE"] == "n"
    manifest = load_manifest(paths.manifest, paths.kernel_src)
    enabled, skipped = modules.enabled_modules(manifest, cfg)
    assert enabled == [] and skipped == ["ssi_core", "ssi_extra"]


def test_override_fragment_disables_a_module(tmp_path: Path) -> None:
    paths = make_repo(tmp_path)
    off = tmp_path / "off.config"
    off.write_text("# CONFIG_SSI_EXTRA is not set\n")
    cfg = modules.evaluate_module_config(paths.module_kconfig, paths.linux / ".config", [off])
    manifest = load_manifest(paths.manifest, paths.kernel_src)
    enabled, skipped = modules.enabled_modules(manifest, cfg)
    assert [m.name for m in enabled] == ["ssi_core"] and skipped == ["ssi_extra"]


def test_render_generates_interface_and_params(tmp_path: Path) -> None:
    paths = make_repo(tmp_path)
    report = modules.build_modules(paths, kbuild.MakeSettings(), build=False)
    assert report.built == ["ssi_core", "ssi_extra"]
    d = paths.modules / "ssi_extra"
    kbuild_text = (d / "Kbuild").read_text()
    assert "obj-m := ssi_extra.o\n" in kbuild_text
    assert "ssi_extra-y := ssi_extra_gen.o extra/main.o extra/util.o\n" in kbuild_text
    assert f"ccflags-y += -I{paths.kernel_src / 'extra'}\n" in kbuild_text
    h = (d / "ssi_extra_gen.h").read_text()
    assert "int ssi_extra_init(void);\nvoid ssi_extra_exit(void);\n" in h
    assert "extern int ssi_extra_port;\n" in h and "extern char *ssi_extra_peer;\n" in h
    assert '#include "ssi_config.h"' in h
    c = (d / "ssi_extra_gen.c").read_text()
    assert "int ssi_extra_port = CONFIG_SSI_ICS_PORT;\n" in c
    assert "module_param_named(port, ssi_extra_port, int, 0444);\n" in c
    assert "bool ssi_extra_verbose = IS_ENABLED(CONFIG_SSI_TRACE);\n" in c
    assert "module_param_named(verbose, ssi_extra_verbose, bool, 0644);\n" in c
    assert 'char *ssi_extra_peer = "node1";\n' in c
    assert "unsigned int ssi_extra_mask = 0xff;\n" in c
    assert "unsigned int ssi_extra_count;\n" in c
    assert 'MODULE_SOFTDEP("pre: ssi_core");\n' in c
    assert 'MODULE_LICENSE("GPL");\n' in c
    assert "return ssi_extra_init();" in c and "ssi_extra_exit();" in c
    link = d / "extra/main.c"
    assert link.is_symlink() and link.resolve() == (paths.kernel_src / "extra/main.c").resolve()
    assert "CONFIG_SSI_ICS_PORT 4600" in paths.ssi_config_h.read_text()
    # Unchanged inputs: files are not rewritten (make sees nothing new).
    before = (d / "ssi_extra_gen.c").stat().st_mtime_ns
    modules.build_modules(paths, kbuild.MakeSettings(), build=False)
    assert (d / "ssi_extra_gen.c").stat().st_mtime_ns == before


def test_handwritten_entry_has_no_wrappers(tmp_path: Path) -> None:
    manifest = ('[[module]]\nname = "ssi_core"\ndescription = "d"\nauthor = "a"\n'
                'sources = ["core/ssi_core.c"]\nentry = "handwritten"\n')
    paths = make_repo(tmp_path, manifest=manifest)
    modules.build_modules(paths, kbuild.MakeSettings(), build=False)
    c = (paths.modules / "ssi_core/ssi_core_gen.c").read_text()
    assert "module_init" not in c and "MODULE_LICENSE" in c
    assert "ssi_core_init" not in (paths.modules / "ssi_core/ssi_core_gen.h").read_text()


def test_missing_source_is_reported(tmp_path: Path) -> None:
    paths = make_repo(tmp_path)
    (paths.kernel_src / "extra/util.c").unlink()
    with pytest.raises(GenmodError, match=r"module ssi_extra: source .*extra/util.c does not"):
        modules.build_modules(paths, kbuild.MakeSettings(), build=False)


@pytest.fixture(scope="session")
def kernel_tree(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kernel_subset(request, tmp_path_factory)


def test_generated_code_is_checkpatch_strict_clean(tmp_path: Path, kernel_tree: Path) -> None:
    """checkpatch.pl from the kernel tarball (no unpacked build/linux needed)."""
    from genmod import checkpatch

    checkpatch_pl = kernel_tree / "scripts" / "checkpatch.pl"
    paths = make_repo(tmp_path)
    modules.build_modules(paths, kbuild.MakeSettings(), build=False)
    files = [paths.ssi_config_h, *sorted(paths.modules.glob("*/*_gen.[ch]"))]
    assert len(files) == 5
    problems = {f: checkpatch.run_checkpatch(checkpatch_pl, f) for f in files}
    assert {f: p for f, p in problems.items() if p} == {}


@pytest.mark.skipif(not (TREE / "Module.symvers").is_file() or shutil.which("make") is None,
                    reason="M= module builds need a configured and built kernel tree in "
                           "build/linux (make modules); make test runs this")
def test_modules_build_against_the_real_tree_and_pass_checks(tmp_path: Path) -> None:
    """Not a kernel build: two small M= module builds against build/linux."""
    from genmod import kocheck

    build = tmp_path / "build"
    build.mkdir()
    (build / "linux").symlink_to(TREE)
    paths = make_repo(tmp_path, build=build)
    report = modules.build_modules(paths, kbuild.MakeSettings())
    assert [p.name for p in report.kos] == ["ssi_core.ko", "ssi_extra.ko"]
    extra = kocheck.read_ko(paths.modules_out / "ssi_extra.ko")
    assert extra.first("depends") == "ssi_core"
    assert set(extra.modinfo["parm"]) >= {"port:TCP port", "verbose:Log more"}
    assert extra.first("softdep") == "pre: ssi_core"
    assert "ssi_core_shared" in extra.undefined
