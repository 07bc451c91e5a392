"""Build and run the C hub (`hub.c`) that is the cluster's private L2."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .cbuild import CBuildError, build_c_program
from .hubctl import HubControl
from .paths import BIN_DIR

HUB_SOURCE = Path(__file__).resolve().parent / "hub.c"
HUB_BINARY = BIN_DIR / "ssi-hub"


class HubError(RuntimeError):
    """The hub could not be built or started."""


def build_hub(binary: Path = HUB_BINARY, source: Path = HUB_SOURCE) -> Path:
    """Compile hub.c into `binary` when it is missing or older than the source."""
    try:
        return build_c_program(source, binary)
    except CBuildError as e:
        raise HubError(str(e)) from e


class Hub:
    """One `ssi-hub` process serving `nodes` nodes in socket directory `sock_dir`."""

    def __init__(self, sock_dir: Path, nodes: int, log: Path | None = None) -> None:
        self.sock_dir = sock_dir
        self.nodes = nodes
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl = HubControl(sock_dir / "hubctl.sock")

    @property
    def hub_sock(self) -> Path:
        return self.sock_dir / "hub.sock"

    def start(self, timeout: float = 10.0) -> None:
        binary = build_hub()
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [str(binary), str(self.sock_dir), str(self.nodes)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError(f"ssi-hub exited with {self.proc.returncode} (log: {self.log})")
            if self.hub_sock.exists() and self.ctl.path.exists():
                try:
                    self.ctl.command("ping", timeout=1.0)
                    return
                except OSError:
                    pass
            time.sleep(0.01)
        raise HubError("ssi-hub did not come up")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
