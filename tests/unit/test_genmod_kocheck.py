"""genmod.kocheck on small ELF objects compiled here (fake .ko files)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures.genmod.kernel_source import built_tree

from genmod import kocheck

TREE = built_tree()
VERMAGIC = "6.1.192 SMP mod_unload "

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def fake_ko(tmp_path: Path, name: str, *, vermagic: str | None = VERMAGIC,
            license_: str | None = "GPL", calls: tuple[str, ...] = ("printk",),
            weak: tuple[str, ...] = (), import_ns: str | None = None) -> Path:
    info = [f"name={name}"]
    if vermagic is not None:
        info.append(f"vermagic={vermagic}")
    if license_ is not None:
        info.append(f"license={license_}")
    if import_ns is not None:
        info.append(f"import_ns={import_ns}")
    lines = [f'static const char __modinfo_{i}[] __attribute__((section(".modinfo"), used, '
             f'aligned(1))) = "{entry}";' for i, entry in enumerate(info)]
    lines += [f"extern int {c}(void);" for c in calls]
    lines += [f"extern int {w}(void) __attribute__((weak));" for w in weak]
    body = " + ".join([f"{c}()" for c in calls] + [f"({w} ? {w}() : 0)" for w in weak]) or "0"
    lines += ["int local_helper(void) { return 1; }",
              f"int init_module(void) {{ return local_helper() + {body}; }}"]
    src = tmp_path / f"{name}.c"
    src.write_text("\n".join(lines) + "\n")
    ko = tmp_path / f"{name}.ko"
    subprocess.run(["gcc", "-c", "-O0", "-fno-pic", "-o", str(ko), str(src)], check=True)
    return ko


@pytest.fixture
def exports(tmp_path: Path) -> dict[str, kocheck.Export]:
    symvers = tmp_path / "Module.symvers"
    symvers.write_text("0x00000000\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n"
                       "0x00000000\tgpl_only\tvmlinux\tEXPORT_SYMBOL_GPL\t\n"
                       "0x00000000\tns_sym\tvmlinux\tEXPORT_SYMBOL_GPL\tSSI_NS\n")
    sibling = tmp_path / "sibling.symvers"
    sibling.write_text("0x00000000\tssi_sibling_fn\tbuild/modules/ssi_a/ssi_a\t"
                       "EXPORT_SYMBOL_GPL\t\n")
    return kocheck.load_exports([symvers, sibling])


def test_read_ko_modinfo_and_undefined(tmp_path: Path) -> None:
    info = kocheck.read_ko(fake_ko(tmp_path, "good", calls=("printk", "gpl_only")))
    assert info.name == "good"
    assert info.first("vermagic") == VERMAGIC
    assert info.first("license") == "GPL"
    assert sorted(info.undefined) == ["gpl_only", "printk"]
    assert "local_helper" not in info.undefined


def test_good_module_passes(tmp_path: Path, exports: dict[str, kocheck.Export]) -> None:
    ko = fake_ko(tmp_path, "good", calls=("printk", "gpl_only", "ssi_sibling_fn"),
                 weak=("maybe_missing",))
    assert kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports) == []


@pytest.mark.parametrize("lic", kocheck.GPL_COMPATIBLE)
def test_every_gpl_compatible_license_passes(tmp_path: Path, lic: str,
                                             exports: dict[str, kocheck.Export]) -> None:
    ko = fake_ko(tmp_path, "lic", license_=lic)
    assert kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports) == []


def test_bad_license_fails_with_name(tmp_path: Path, exports: dict[str, kocheck.Export]) -> None:
    ko = fake_ko(tmp_path, "proprietary_mod", license_="Proprietary", calls=("gpl_only",))
    problems = kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports)
    fields = {(p.module, p.field) for p in problems}
    assert ("proprietary_mod", "license") in fields
    assert ("proprietary_mod", "symbol gpl_only") in fields  # GPL-only export refused
    assert any("'Proprietary' is not GPL-compatible" in str(p) for p in problems)


def test_missing_license_fails(tmp_path: Path, exports: dict[str, kocheck.Export]) -> None:
    ko = fake_ko(tmp_path, "nolic", license_=None)
    (problem,) = kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports)
    assert (problem.module, problem.field) == ("nolic", "license")


def test_wrong_vermagic_fails_with_name(tmp_path: Path,
                                        exports: dict[str, kocheck.Export]) -> None:
    ko = fake_ko(tmp_path, "old_mod", vermagic="6.1.191 SMP mod_unload ")
    (problem,) = kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports)
    assert (problem.module, problem.field) == ("old_mod", "vermagic")
    assert "6.1.191" in problem.detail and VERMAGIC in problem.detail
    ko = fake_ko(tmp_path, "no_magic", vermagic=None)
    (problem,) = kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports)
    assert problem.field == "vermagic" and "missing" in problem.detail


def test_unknown_symbol_fails_with_name(tmp_path: Path,
                                        exports: dict[str, kocheck.Export]) -> None:
    ko = fake_ko(tmp_path, "needy", calls=("printk", "no_such_export"))
    (problem,) = kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports)
    assert (problem.module, problem.field) == ("needy", "symbol no_such_export")
    assert str(problem).startswith("needy: symbol no_such_export: undefined")


def test_namespaced_symbol_needs_import(tmp_path: Path,
                                        exports: dict[str, kocheck.Export]) -> None:
    ko = fake_ko(tmp_path, "ns_user", calls=("ns_sym",))
    (problem,) = kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports)
    assert "MODULE_IMPORT_NS(SSI_NS)" in problem.detail
    ko = fake_ko(tmp_path, "ns_user2", calls=("ns_sym",), import_ns="SSI_NS")
    assert kocheck.check_ko(kocheck.read_ko(ko), VERMAGIC, exports) == []


def test_check_or_raise_exits_with_module_and_symbol(tmp_path: Path) -> None:
    from genmod.errors import GenmodError
    from genmod.paths import Paths

    paths = Paths(root=tmp_path, build=tmp_path / "build", tarball=tmp_path / "none.tar.xz")
    tree = paths.linux
    (tree / "include/generated").mkdir(parents=True)
    (tree / "include/generated/utsrelease.h").write_text('#define UTS_RELEASE "6.1.192"\n')
    (tree / ".config").write_text("CONFIG_SMP=y\nCONFIG_MODULE_UNLOAD=y\nCONFIG_X86_64=y\n")
    (tree / "Module.symvers").write_text("0x0\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n")
    assert kocheck.computed_vermagic(tree) == VERMAGIC
    ok = fake_ko(tmp_path, "ok_mod")
    kocheck.check_or_raise(paths, [ok])
    bad = fake_ko(tmp_path, "bad_mod", calls=("printk", "ghost"))
    with pytest.raises(GenmodError, match="bad_mod: symbol ghost"):
        kocheck.check_or_raise(paths, [ok, bad])


def test_vermagic_flags(tmp_path: Path) -> None:
    (tmp_path / "include/generated").mkdir(parents=True)
    (tmp_path / "include/generated/utsrelease.h").write_text('#define UTS_RELEASE "6.1.192"\n')
    (tmp_path / ".config").write_text("CONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\n"
                                      "CONFIG_MODULE_UNLOAD=y\nCONFIG_MODVERSIONS=y\n"
                                      "CONFIG_X86_32=y\nCONFIG_M686=y\n")
    assert kocheck.computed_vermagic(tmp_path) == \
        "6.1.192 SMP preempt mod_unload modversions 686 "


def test_vermagic_read_from_a_vmlinux_matches_the_computed_one(tmp_path: Path) -> None:
    """A small ELF standing in for vmlinux: its ``vermagic`` object is what the kernel checks."""
    (tmp_path / "include/generated").mkdir(parents=True)
    (tmp_path / "include/generated/utsrelease.h").write_text('#define UTS_RELEASE "6.1.192"\n')
    (tmp_path / ".config").write_text("CONFIG_SMP=y\nCONFIG_MODULE_UNLOAD=y\n")
    assert kocheck.vmlinux_vermagic(tmp_path) is None  # no vmlinux yet
    src = tmp_path / "vmlinux.c"
    src.write_text('const char before[] = "padding";\n'
                   f'const char vermagic[] = "{VERMAGIC}";\n'
                   "int start_kernel(void) { return vermagic[0]; }\n")
    subprocess.run(["gcc", "-c", "-O0", "-fno-pic", "-o", str(tmp_path / "vmlinux"), str(src)],
                   check=True)
    assert kocheck.vmlinux_vermagic(tmp_path) == kocheck.computed_vermagic(tmp_path) == VERMAGIC
    assert kocheck.kernel_vermagic(tmp_path) == VERMAGIC
    (tmp_path / ".config").write_text("CONFIG_SMP=y\n")  # vmlinux's own string wins
    assert kocheck.kernel_vermagic(tmp_path) == VERMAGIC


@pytest.mark.skipif(not (TREE / "vmlinux").is_file(),
                    reason="compares with the real vmlinux of build/linux (make kernel); the "
                           "fixture test above covers the same code without it")
def test_computed_vermagic_matches_vmlinux() -> None:
    assert kocheck.vmlinux_vermagic(TREE) == kocheck.computed_vermagic(TREE)
