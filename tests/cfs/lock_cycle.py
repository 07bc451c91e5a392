"""One side of a two-process lock cycle (tests/cluster/test_cfs.py).

Takes a write lock on byte FIRST of PATH, creates READY, waits for GO to exist,
then asks (F_SETLKW) for byte SECOND and prints "got" or the errno's name
(EDEADLK where the kernel sees the cycle), then holds what it has for HOLD s.

usage: lock_cycle.py PATH FIRST SECOND READY GO HOLD
"""

import errno
import fcntl
import os
import sys
import time


def main() -> None:
    path, first, second, ready, go, hold = sys.argv[1:7]
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(first))
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, int(second))
        print("got", flush=True)
    except OSError as e:
        # errorcode names 35 EDEADLOCK, its alias
        name = "EDEADLK" if e.errno == errno.EDEADLK else errno.errorcode.get(e.errno or 0)
        print(name or e.errno, flush=True)
    time.sleep(float(hold))


if __name__ == "__main__":
    main()
