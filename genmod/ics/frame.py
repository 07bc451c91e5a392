"""struct ics_hdr and the ICS constants of kernel/ics/ics.h, in Python.

Every frame is this 28-byte little-endian header, then ``len`` body bytes.
The values are copied from ics.h; tests/unit/test_ics_frame.py parses ics.h
and fails when they drift apart.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Self

ICS_MAGIC = 0x31495353
""""SSI1" little endian."""
ICS_PROTO_VERSION = 3
ICS_MAX_BODY = 256 * 1024
ICS_MAX_PAGES = 256
ICS_PAGE_SIZE = 4096

ICS_CHAN_PRIO = 0
ICS_CHAN_BULK = 1
ICS_NR_CHANS = 2

ICS_KIND_CALL = 1
ICS_KIND_REPLY = 2
ICS_KIND_ONEWAY = 3
ICS_KIND_AUTH = 4
ICS_KIND_PAGES = 0x80
"""Or'ed into the kind of a call or reply whose message has a pages<N> field:
the body is the packed message (its page count first), then the pages."""

HDR_FORMAT = "<IBBHHHIIQ"
"""magic, version, kind, service, op, op_version, len, status, xid."""
HDR_SIZE = 28

_HDR = struct.Struct(HDR_FORMAT)
assert _HDR.size == HDR_SIZE


@dataclass(frozen=True)
class IcsHdr:
    """One frame header; field names and order as in ``struct ics_hdr``."""

    magic: int
    version: int
    kind: int
    service: int
    op: int
    op_version: int
    len: int
    status: int
    xid: int

    @classmethod
    def new(cls, kind: int, service: int, op: int, op_version: int, length: int,
            xid: int, status: int = 0) -> Self:
        """A header with this build's magic and protocol version."""
        return cls(ICS_MAGIC, ICS_PROTO_VERSION, kind, service, op, op_version, length,
                   status, xid)

    def pack(self) -> bytes:
        try:
            return _HDR.pack(self.magic, self.version, self.kind, self.service, self.op,
                             self.op_version, self.len, self.status, self.xid)
        except struct.error as e:
            raise ValueError(f"ics_hdr: {e}") from e

    @classmethod
    def unpack(cls, data: bytes) -> Self:
        """Decode the first HDR_SIZE bytes of ``data`` (the body may follow)."""
        if len(data) < HDR_SIZE:
            raise ValueError(f"ics_hdr: short header: {len(data)} of {HDR_SIZE} bytes")
        return cls(*_HDR.unpack_from(data))

    def check(self) -> None:
        """Raise ValueError if a receiver would drop this frame as malformed."""
        if self.magic != ICS_MAGIC:
            raise ValueError(f"ics_hdr: bad magic {self.magic:#010x}")
        if self.version != ICS_PROTO_VERSION:
            raise ValueError(f"ics_hdr: unknown protocol version {self.version}")
        kind = self.kind & ~ICS_KIND_PAGES
        if kind not in (ICS_KIND_CALL, ICS_KIND_REPLY, ICS_KIND_ONEWAY, ICS_KIND_AUTH) or (
                self.kind & ICS_KIND_PAGES and kind not in (ICS_KIND_CALL, ICS_KIND_REPLY)):
            raise ValueError(f"ics_hdr: unknown kind {self.kind}")
        limit = ICS_MAX_BODY + (ICS_MAX_PAGES * ICS_PAGE_SIZE if self.kind & ICS_KIND_PAGES
                                else 0)
        if self.len > limit:
            raise ValueError(f"ics_hdr: body of {self.len} bytes is over ICS_MAX_BODY"
                             + (" and its pages" if self.kind & ICS_KIND_PAGES else ""))


def split_frame(data: bytes) -> tuple[IcsHdr, bytes, bytes] | None:
    """Split one frame off a byte stream: (header, body, rest), or None if
    ``data`` does not hold a whole frame yet.  The header is not checked."""
    if len(data) < HDR_SIZE:
        return None
    hdr = IcsHdr.unpack(data)
    end = HDR_SIZE + hdr.len
    if len(data) < end:
        return None
    return hdr, bytes(data[HDR_SIZE:end]), bytes(data[end:])
