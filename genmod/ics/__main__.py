"""``python -m genmod.ics SPEC... --out DIR``: compile ICS specs.

Prints nothing on success unless ``-v`` (then the rewritten files); a bad
spec prints ``file:line:col: what is wrong`` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from genmod.errors import GenmodError
from genmod.ics.generate import generate_all

INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error is one line (argparse prints the usage first) and status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = _Parser(prog="python -m genmod.ics",
                 description="Compile ICS interface specs into C and Python.")
    ap.add_argument("specs", nargs="+", type=Path, metavar="SPEC", help=".ics spec files")
    ap.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the rewritten files")
    ap.add_argument("--list", action="store_true",
                    help="print every output file (written or unchanged)")
    args = ap.parse_intermixed_args(argv)
    try:
        outputs, written = generate_all(args.specs, args.out)
    except GenmodError as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    for p in outputs if args.list else written if args.verbose else []:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
