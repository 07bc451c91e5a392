"""Cluster table and key files for ``ssictl cluster setup|up`` (stdlib only).

Table file
    One node per line: ``NODE ADDRESS`` (node number 1..63, IPv4 dotted quad),
    separated by spaces or tabs. ``#`` starts a comment (whole line or trailing);
    blank lines are ignored. Every node at most once, every address at most once::

        # ssikit cluster "lab"
        1 10.0.0.1
        2 10.0.0.2   # rack 2

    ``--peer N=ADDRESS`` (repeated, once per node) gives the same table inline.

Key file
    The cluster key, 16..64 bytes, the same file on every node. Two forms:

    * hex: the file holds only hex digits and whitespace (``openssl rand -hex 32``,
      ``ssictl cluster keygen``): the digits, 32..128 of them, are the key;
    * raw: anything else is the key byte for byte, newline included
      (``head -c 32 /dev/urandom``).

    ``-`` reads the key from standard input (same two forms). The key is never
    printed or logged; messages give its length only.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from pathlib import Path

from abi.address import parse_node_address
from ssictl.output import CLIError

MAX_NODES = 63  # SSI_MAX_NODES; checked against the header in the unit tests
KEY_MIN = 16  # SSI_KEY_MIN
KEY_MAX = 64  # SSI_KEY_MAX
KEY_FILE_LIMIT = 4096  # bytes read from a key file at most

_HEX_RE = re.compile(rb"[0-9a-fA-F\s]+")

KEYGEN_HINT = "make one with `ssictl cluster keygen FILE` and copy it to every node"


def _bad(message: str, hint: str) -> CLIError:
    return CLIError(message, hint, errno=errno.EINVAL)


# --------------------------------------------------------------------------- table


TABLE_FORMAT = "each line is `NODE ADDRESS`, e.g. `2 10.0.0.2` (# starts a comment)"
PEER_FORMAT = "give --peer NODE=ADDRESS once per node, e.g. --peer 2=10.0.0.2"


class _TableBuilder:
    """Checks entries as they come: node 1..63, a usable IPv4 address, each node and
    each address once. *at* leads the entry's messages (``file:3``), *ref* is how a
    later entry refers to it (``on line 3``, ``in --peer 2=10.0.0.2``)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.table: dict[int, str] = {}
        self._node_at: dict[int, str] = {}
        self._addr_of: dict[str, tuple[int, str]] = {}

    def add(self, node_s: str, addr_s: str, at: str, ref: str) -> None:
        if not node_s.isascii() or not node_s.isdigit():
            raise _bad(f"{at}: node {node_s!r} is not a number", self.fmt)
        node = int(node_s)
        if not 1 <= node <= MAX_NODES:
            raise _bad(f"{at}: node {node} is out of range", f"node numbers are 1..{MAX_NODES}")
        try:
            addr = str(parse_node_address(addr_s))
        except ValueError as e:
            raise _bad(
                f"{at}: {e}", "give the node's address on the cluster network as a.b.c.d"
            ) from None
        if node in self.table:
            raise _bad(
                f"{at}: node {node} is listed twice (first {self._node_at[node]})",
                "each node appears once",
            )
        if addr in self._addr_of:
            other, other_at = self._addr_of[addr]
            raise _bad(
                f"{at}: nodes {other} and {node} have the same address {addr} ({other_at})",
                "each node needs its own address",
            )
        self.table[node] = addr
        self._node_at[node] = ref
        self._addr_of[addr] = (node, ref)


def parse_table(text: str, source: str = "<table>") -> dict[int, str]:
    """Parse a table file's *text* (see the module docstring); errors name *source*:line."""
    builder = _TableBuilder(TABLE_FORMAT)
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        at = f"{source}:{no}"
        fields = line.split()
        if len(fields) != 2:
            raise _bad(f"{at}: expected `NODE ADDRESS`, got {line!r}", TABLE_FORMAT)
        builder.add(fields[0], fields[1], at, f"on line {no}")
    if not builder.table:
        raise _bad(f"{source}: the cluster table is empty", TABLE_FORMAT)
    return builder.table


def parse_peers(peers: list[str]) -> dict[int, str]:
    """The table given as ``--peer NODE=ADDRESS`` options (at least one)."""
    builder = _TableBuilder(PEER_FORMAT)
    for peer in peers:
        node_s, sep, addr_s = peer.partition("=")
        at = f"--peer {peer}"
        if not sep:
            raise _bad(f"{at}: expected NODE=ADDRESS", PEER_FORMAT)
        builder.add(node_s.strip(), addr_s.strip(), at, f"in {at}")
    if not builder.table:
        raise _bad("--peer: the cluster table is empty", PEER_FORMAT)
    return builder.table


def read_table(path: str) -> dict[int, str]:
    """Read and parse the table file *path*."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CLIError(
            f"cannot read the table file {path}: {e.strerror}",
            "give --table an existing file (lines `NODE ADDRESS`), or --peer NODE=ADDRESS",
            errno=e.errno,
        ) from None
    except UnicodeDecodeError:
        raise _bad(
            f"{path} is not a text file", "the table file holds lines `NODE ADDRESS`"
        ) from None
    return parse_table(text, path)


def choose_table(table_file: str | None, peers: list[str] | None) -> tuple[dict[int, str], str]:
    """The table from ``--table FILE`` or ``--peer`` options (exactly one), and its source."""
    if (table_file is None) == (not peers):
        raise CLIError(
            "give exactly one of --table FILE and --peer NODE=ADDRESS (repeated)",
            "--table reads lines `NODE ADDRESS`; --peer NODE=ADDRESS, once per node, "
            "gives the same table on the command line",
            errno=errno.EINVAL,
        )
    if peers:
        return parse_peers(peers), "--peer"
    assert table_file is not None
    return read_table(table_file), table_file


def format_table(table: dict[int, str]) -> str:
    return ", ".join(f"{n}={a}" for n, a in sorted(table.items()))


# --------------------------------------------------------------------------- key


def parse_key(data: bytes, source: str = "<key>") -> bytes:
    """The key held by a key file's bytes (hex or raw, see the module docstring)."""
    if not data:
        raise _bad(f"the key file {source} is empty", KEYGEN_HINT)
    if _HEX_RE.fullmatch(data):
        digits = b"".join(data.split())
        if not digits:
            raise _bad(f"the key file {source} holds only whitespace", KEYGEN_HINT)
        if len(digits) % 2:
            raise _bad(
                f"the key file {source} holds an odd number of hex digits ({len(digits)})",
                f"a hex key is {2 * KEY_MIN}..{2 * KEY_MAX} hex digits (16..64 bytes); "
                + KEYGEN_HINT,
            )
        key = bytes.fromhex(digits.decode("ascii"))
        form = f"{len(digits)} hex digits = {len(key)} bytes"
    else:
        key = data
        form = f"{len(key)} raw bytes"
    if not KEY_MIN <= len(key) <= KEY_MAX:
        raise _bad(
            f"the key in {source} is {'too short' if len(key) < KEY_MIN else 'too long'} ({form})",
            f"the cluster key must be {KEY_MIN}..{KEY_MAX} bytes: {2 * KEY_MIN}..{2 * KEY_MAX} "
            f"hex digits, or {KEY_MIN}..{KEY_MAX} raw bytes; " + KEYGEN_HINT,
        )
    return key


def read_key(path: str) -> tuple[bytes, list[str]]:
    """The key of key file *path* (``-``: stdin) and warnings (e.g. loose permissions)."""
    warnings: list[str] = []
    if path == "-":
        data = sys.stdin.buffer.read(KEY_FILE_LIMIT + 1)
        source = "<stdin>"
    else:
        source = path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CLIError(
                f"cannot read the key file {path}: {e.strerror}",
                "give --key-file the cluster key file (the same on every node); " + KEYGEN_HINT,
                errno=e.errno,
            ) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) and not stat.S_ISFIFO(st.st_mode):
                raise _bad(f"the key file {path} is not a regular file", KEYGEN_HINT)
            if st.st_mode & 0o077:
                warnings.append(
                    f"the key file {path} is readable by other users "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 {path}"
                )
            data = os.read(fd, KEY_FILE_LIMIT + 1)
        finally:
            os.close(fd)
    if len(data) > KEY_FILE_LIMIT:
        raise _bad(
            f"the key file {source} is larger than {KEY_FILE_LIMIT} bytes: not a key file",
            KEYGEN_HINT,
        )
    return parse_key(data, source), warnings


def write_key(path: str, nbytes: int = 32, force: bool = False) -> None:
    """Write a new random key of *nbytes* as hex to *path* (mode 0600)."""
    if not KEY_MIN <= nbytes <= KEY_MAX:
        raise _bad(f"--bytes {nbytes} is out of range", f"a key is {KEY_MIN}..{KEY_MAX} bytes")
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CLIError(
            f"{path} exists already",
            "pass --force to replace it (every node must then get the new key)",
            errno=errno.EEXIST,
        ) from None
    except OSError as e:
        raise CLIError(
            f"cannot create {path}: {e.strerror}", "pick a writable path", errno=e.errno
        ) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, os.urandom(nbytes).hex().encode() + b"\n")
    finally:
        os.close(fd)
