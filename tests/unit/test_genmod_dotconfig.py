"""genmod.dotconfig: the one reader of kernel .config files and fragments."""

from __future__ import annotations

from pathlib import Path

import pytest

from genmod import dotconfig, kocheck, modules
from genmod.errors import ConfigError

CONFIG = """\
#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_SMP=y
CONFIG_DRV=m
# CONFIG_DEBUG is not set
CONFIG_PORT=4600
CONFIG_MASK=0xff
CONFIG_NAME="ssi \\"one\\" \\\\ two"
CONFIG_EMPTY=""
  CONFIG_INDENTED=y
CONFIG_SMP=n
"""


def test_values_of_a_config(tmp_path: Path) -> None:
    path = tmp_path / ".config"
    path.write_text(CONFIG)
    assert dotconfig.values(path) == {
        "SMP": "n",  # the last line wins, as in kconfig
        "DRV": "m", "DEBUG": "n", "PORT": "4600", "MASK": "0xff",
        "NAME": 'ssi "one" \\ two', "EMPTY": "", "INDENTED": "y"}


def test_assignments_keep_their_line_numbers() -> None:
    found = dotconfig.parse("# c\nCONFIG_A=y\n\n# CONFIG_B is not set\n")
    assert found == [dotconfig.Assignment("A", "y", 2), dotconfig.Assignment("B", "n", 4)]


def test_strict_refuses_a_stray_line() -> None:
    assert dotconfig.parse("CONFIG_A=y\nCONFIG A=y\n", strict=False) == [
        dotconfig.Assignment("A", "y", 1)]
    with pytest.raises(ConfigError, match=r"frag:2: not a config fragment line: 'CONFIG A=y'"):
        dotconfig.parse("CONFIG_A=y\nCONFIG A=y\n", source="frag", strict=True)


def test_module_config_and_vermagic_read_the_same_values(tmp_path: Path) -> None:
    """kernel/Kconfig's $(KERNEL_*) and the vermagic check see one reading of .config."""
    (tmp_path / "include/generated").mkdir(parents=True)
    (tmp_path / "include/generated/utsrelease.h").write_text('#define UTS_RELEASE "6.1.1"\n')
    (tmp_path / ".config").write_text("CONFIG_SMP=y\n# CONFIG_MODULE_UNLOAD is not set\n"
                                      'CONFIG_NAME="x y"\n')
    assert kocheck.computed_vermagic(tmp_path) == "6.1.1 SMP "
    (tmp_path / "Kconfig").write_text('config MINE\n\tstring "mine"\n\tdefault "$(KERNEL_NAME)"\n'
                                      'config UNLOAD\n\tbool "u"\n'
                                      '\tdefault $(KERNEL_MODULE_UNLOAD)\n')
    cfg = modules.evaluate_module_config(tmp_path / "Kconfig", tmp_path / ".config")
    assert cfg.values == {"MINE": "x y", "UNLOAD": "n"}
