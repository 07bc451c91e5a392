"""A protect=auth ICS peer written from the wire format's description, run in a guest.

Usage: ics_auth_peer.py HOST PORT SELF_NODE TARGET_NODE KEYHEX CALLS

Authenticates as SELF_NODE with protect=auth, makes CALLS ics_test echo calls
(service 1, op 2 v1), each frame followed by its tag (genmod.ics.frame_tag), and
checks every reply's tag, xid and data.  Then sends one more call whose tag has a
bit flipped: the node must close the connection without answering it.  Prints one
JSON line: echoed, replies_tagged_right, bad_tag_answered, closed_after_bad_tag.
"""

from __future__ import annotations

import json
import os
import struct
import sys

from ics_fuzz_client import handshake, recv_exact, session_keys

from genmod.ics import frame
from genmod.ics.frame_tag import KEY_SIZE, TAG_SIZE, frame_tag

PROTECT_AUTH = 3
ECHO = (1, 2, 1)  # ics_test service, echo op, version


def echo_frame(seq: int, data: bytes) -> bytes:
    body = struct.pack("<II", seq, len(data)) + data
    svc, op, ver = ECHO
    return frame.IcsHdr.new(frame.ICS_KIND_CALL, svc, op, ver, len(body), seq + 1).pack() + body


def main() -> int:
    host, port, me, target, keyhex, calls = sys.argv[1:7]
    key = bytes.fromhex(keyhex)
    s, idb, nonce_c, nonce_s = handshake(host, int(port), int(me), int(target), key,
                                         PROTECT_AUTH)
    tx_key, rx_key = session_keys(key, idb, nonce_c, nonce_s, KEY_SIZE)
    s.settimeout(10)
    result: dict[str, int | bool] = {"echoed": 0, "replies_tagged_right": 0}
    for seq in range(int(calls)):
        data = os.urandom(1 + seq % 700)
        call = echo_frame(seq, data)
        s.sendall(call + frame_tag(tx_key, seq, call))
        head = recv_exact(s, frame.HDR_SIZE)
        hdr = frame.IcsHdr.unpack(head)
        body = recv_exact(s, hdr.len)
        tag = recv_exact(s, TAG_SIZE)
        if tag == frame_tag(rx_key, seq, head + body):
            result["replies_tagged_right"] += 1
        if hdr.kind == frame.ICS_KIND_REPLY and hdr.xid == seq + 1 and hdr.status == 0 \
                and body == struct.pack("<II", seq, len(data)) + data:
            result["echoed"] += 1
    seq = int(calls)
    call = echo_frame(seq, b"never echoed")
    forged = bytearray(frame_tag(tx_key, seq, call))
    forged[3] ^= 0x10
    s.sendall(call + bytes(forged))
    try:
        answer = s.recv(65536)
    except ConnectionResetError:
        answer = b""
    result["bad_tag_answered"] = len(answer) > 0
    result["closed_after_bad_tag"] = answer == b""
    s.close()
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
