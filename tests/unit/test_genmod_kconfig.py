"""genmod.kconfig: the 6.1 ``modules`` shim, fragment merging, verification."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fixtures.genmod.kernel_source import built_tree, kernel_subset

from genmod import kconfig
from genmod.errors import GenmodError

TREE = built_tree()
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "genmod"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_rewrite_keeps_line_count_and_only_touches_bare_modules() -> None:
    text = ("config MODULES\n\tbool \"Modules\"\n\tmodules\n\nconfig X\n"
            "\tbool\n\thelp\n\t  modules are fine in help\n\tmodules  \n")
    out = kconfig.rewrite_modules_keyword(text)
    assert out.count("\n") == text.count("\n")
    assert out.splitlines()[2] == "\toption modules"
    assert out.splitlines()[7] == "\t  modules are fine in help"
    assert out.splitlines()[8] == "\toption modules  "
    # A blank line after the keyword survives (no newline swallowed).
    assert kconfig.rewrite_modules_keyword("\tmodules\n\nconfig Y\n") == \
        "\toption modules\n\nconfig Y\n"


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    _write(tmp_path / "Kconfig", """
        mainmenu "tiny"
        source "kernel/module/Kconfig"

        config DRV
        \ttristate "a driver"
        \tdefault m
    """)
    _write(tmp_path / "kernel/module/Kconfig", """
        menuconfig MODULES
        \tbool "Enable loadable module support"
        \tdefault y
        \tmodules

        config AFTER
        \tbool "after"
    """)
    return tmp_path


def test_shim_parses_bare_modules_keyword(tiny_tree: Path) -> None:
    kconf = kconfig.load_kconfig(tiny_tree / "Kconfig", tiny_tree, {})
    assert kconf.modules.name == "MODULES"
    # tristate m is only possible when MODULES is the modules symbol.
    assert kconf.syms["DRV"].str_value == "m"
    after = kconf.syms["AFTER"].nodes[0]
    assert (Path(after.filename).name, after.linenr) == ("Kconfig", 6)


def test_unshimmed_kconfiglib_rejects_it(tiny_tree: Path) -> None:
    import kconfiglib

    with pytest.raises(kconfiglib.KconfigError):
        kconfiglib.Kconfig(str(tiny_tree / "Kconfig"), warn_to_stderr=False)


@pytest.fixture
def dep_tree(tmp_path: Path) -> Path:
    _write(tmp_path / "Kconfig", """
        config MODULES
        \tbool "modules"
        \tdefault y
        \tmodules

        config BAR
        \tbool "bar"

        config BAZ
        \tbool "baz"

        config FOO
        \tbool "foo"
        \tdepends on BAR && BAZ

        config SEL
        \tbool "selector"
        \tselect FORCED

        config FORCED
        \tbool "forced"

        config PORT
        \tint "port"
        \trange 1024 65535
        \tdefault 4600

        config NAME
        \tstring "name"
        \tdefault "x"
    """)
    return tmp_path


def test_verify_reports_wanted_got_and_unmet_dependency(dep_tree: Path, tmp_path: Path) -> None:
    kconf = kconfig.load_kconfig(dep_tree / "Kconfig", dep_tree, {})
    base = _write(tmp_path / "base.config", "CONFIG_BAR=y\n")
    frag = _write(tmp_path / "ours.config", """
        CONFIG_FOO=y
        CONFIG_SEL=y
        # CONFIG_FORCED is not set
        CONFIG_PORT=80
        CONFIG_NAME="hello world"
        CONFIG_NOPE=y
        CONFIG_BAR=y
    """)
    out = tmp_path / ".config"
    kconfig.merge(kconf, base, [frag], out)
    kconfig.load_values(kconf, out)
    bad = {m.name: m for m in kconfig.verify(kconf, kconfig.requested([frag]))}
    assert set(bad) == {"FOO", "FORCED", "PORT", "NOPE"}
    assert (bad["FOO"].wanted, bad["FOO"].got) == ("y", "n")
    assert "depends on BAR && BAZ" in bad["FOO"].why
    assert "unmet: BAZ (=n)" in bad["FOO"].why
    assert "BAR (=y)" not in bad["FOO"].why.split("unmet:")[1]
    assert (bad["FORCED"].wanted, bad["FORCED"].got) == ("n", "y")
    assert "selected by SEL" in bad["FORCED"].why
    assert bad["PORT"].got == "4600" and "range 1024..65535" in bad["PORT"].why
    assert bad["NOPE"].got == "undefined"
    assert bad["FOO"].source == "ours.config:1"
    text = kconfig.format_mismatches(list(bad.values()))
    assert "CONFIG_FOO: wanted y, got n  [ours.config:1]" in text


def test_merge_reports_redefinition_between_fragments(dep_tree: Path, tmp_path: Path) -> None:
    kconf = kconfig.load_kconfig(dep_tree / "Kconfig", dep_tree, {})
    base = _write(tmp_path / "base.config", "")
    a = _write(tmp_path / "a.config", "CONFIG_BAR=y\nCONFIG_BAZ=y\n")
    b = _write(tmp_path / "b.config", "# CONFIG_BAR is not set\nCONFIG_BAZ=y\n")
    notes = kconfig.merge(kconf, base, [a, b], tmp_path / ".config")
    assert notes == ["CONFIG_BAR: y (a.config:1) redefined as n (b.config:1)"]
    kconfig.load_values(kconf, tmp_path / ".config")
    assert kconf.syms["BAR"].str_value == "n"
    assert kconf.syms["BAZ"].str_value == "y"


def test_fragment_parse_errors_name_the_line(tmp_path: Path) -> None:
    frag = _write(tmp_path / "bad.config", "CONFIG_A=y\nthis is not config\n")
    with pytest.raises(GenmodError, match=r"bad\.config:2"):
        kconfig.parse_fragment(frag)


@pytest.fixture(scope="session")
def kernel_tree(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kernel_subset(request, tmp_path_factory)


def test_real_6_1_tree_loads_about_17k_symbols(kernel_tree: Path) -> None:
    """The tarball's Kconfig files (no unpacked or built tree needed)."""
    from genmod import source

    kconf = kconfig.load_tree_kconfig(kernel_tree, source.tree_version(kernel_tree), "gcc")
    assert 16_500 < len(kconf.syms) < 18_500
    assert kconf.modules.name == "MODULES"
    assert kconf.syms["64BIT"].nodes


def _check_env_agrees(tree: Path, recorded: dict[str, str], cc: str) -> None:
    from genmod import source

    ours = kconfig.kconfig_env(tree, source.tree_version(tree), cc)
    assert recorded, "auto.conf.cmd lists no environment dependencies"
    assert Path(ours.pop("srctree")) == tree.resolve() and recorded.pop("srctree") == "."
    assert set(recorded) <= set(ours), "kbuild gives Kconfig variables genmod does not set"
    differ = {k: (v, ours[k]) for k, v in recorded.items() if ours[k] != v}
    assert not differ


def test_kconfig_env_agrees_with_a_recorded_auto_conf_cmd(tmp_path: Path) -> None:
    """What kbuild recorded in a 6.1.192 build (fixture), with this host's compiler."""
    from genmod import kbuild

    cc = kbuild.default_cc()
    cc_text = kconfig.cc_version_text(cc)
    assert cc_text.startswith("gcc ")
    recorded_text = (FIXTURES / "auto.conf.cmd").read_text()
    _write(tmp_path / "include/config/auto.conf.cmd", recorded_text.replace(
        "@CC_VERSION_TEXT@", cc_text).replace("@CC@", cc))
    _write(tmp_path / "Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n")
    recorded = kconfig.kbuild_recorded_env(tmp_path)
    assert (recorded["CC"], recorded["KERNELVERSION"]) == (cc, "6.1.192")
    assert len(recorded) == 13
    _check_env_agrees(tmp_path, recorded, cc)


@pytest.mark.skipif(not (TREE / "include/config/auto.conf.cmd").is_file(),
                    reason="compares with what kbuild recorded in a real build of build/linux "
                           "(make modules); the fixture test above covers it without one")
def test_kconfig_env_agrees_with_what_kbuild_recorded() -> None:
    from genmod import kbuild

    _check_env_agrees(TREE, kconfig.kbuild_recorded_env(TREE), kbuild.default_cc())
