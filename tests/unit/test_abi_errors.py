"""abi.errors: errno -> exception class and message."""

from __future__ import annotations

import errno
import pickle
from pathlib import Path

import pytest

from abi import errors
from abi.errors import (
    SSIBadAddress,
    SSIError,
    SSIFileNotFound,
    SSIInvalidArgument,
    SSINodeUnavailable,
    SSINotAvailable,
    SSIPermissionError,
    SSITimeout,
    from_errno,
)


@pytest.fixture(autouse=True)
def _no_ssi_sysfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(errors, "SSI_SYSFS", tmp_path / "absent")


@pytest.mark.parametrize(
    ("err", "cls", "builtin"),
    [
        (errno.ENOSYS, SSINotAvailable, OSError),
        (errno.EPERM, SSIPermissionError, PermissionError),
        (errno.EACCES, SSIPermissionError, PermissionError),
        (errno.ENOENT, SSIFileNotFound, FileNotFoundError),
        (errno.EINVAL, SSIInvalidArgument, OSError),
        (errno.EHOSTDOWN, SSINodeUnavailable, ConnectionError),
        (errno.EHOSTUNREACH, SSINodeUnavailable, ConnectionError),
        (errno.ECONNREFUSED, SSINodeUnavailable, ConnectionError),
        (errno.ETIMEDOUT, SSITimeout, TimeoutError),
        (errno.EFAULT, SSIBadAddress, OSError),
        (errno.ENOMEM, SSIError, OSError),
        (errno.EBUSY, SSIError, OSError),
        (4095, SSIError, OSError),
    ],
)
def test_mapping(err: int, cls: type[SSIError], builtin: type[OSError]) -> None:
    e = from_errno(err, "ssi_migrate(node=2)", node=2)
    assert type(e) is cls
    assert isinstance(e, SSIError) and isinstance(e, builtin) and isinstance(e, OSError)
    assert e.errno == err
    assert e.call == "ssi_migrate(node=2)"
    msg = str(e)
    assert msg.startswith("ssi_migrate(node=2): ")
    assert f"({errors.errno_name(err)}): " in msg
    assert e.hint and msg.endswith(e.hint)


def test_enosys_message_is_the_documented_one() -> None:
    e = from_errno(errno.ENOSYS, "ssisys(SSISYS_NODE_NUM)")
    assert str(e).startswith(
        "ssisys(SSISYS_NODE_NUM): no SSI module serves this call (ENOSYS): "
        "load the modules with `ssictl modules load`"
    )


def test_context_makes_messages_precise() -> None:
    e = from_errno(errno.ENOENT, "ssi_rexec(node=3, '/bin/x')", node=3, path="/bin/x")
    assert "/bin/x must exist on node 3" in str(e)
    e = from_errno(errno.EHOSTDOWN, "ssi_rfork(node=4)", node=4)
    assert "node 4 is not reachable" in str(e)
    e = from_errno(errno.EACCES, "ssi_rexec(node=3, '/x')", node=3, path="/x")
    assert "check that /x is executable" in str(e)


def test_unknown_errno_name() -> None:
    assert errors.errno_name(4095) == "errno 4095"
    assert errors.errno_name(errno.ENOSYS) == "ENOSYS"


def test_exceptions_can_be_raised_and_caught_as_oserror() -> None:
    with pytest.raises(OSError) as ei:
        raise from_errno(errno.EPERM, "ssisys(SSISYS_NODE_NUM)")
    assert ei.value.errno == errno.EPERM
    # Round-trips through pickle (e.g. multiprocessing) keeping errno and text.
    e2 = pickle.loads(pickle.dumps(ei.value))
    assert type(e2) is SSIPermissionError and e2.errno == errno.EPERM
    assert str(e2) == str(ei.value)
