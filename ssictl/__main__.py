"""``python -m ssictl``."""

from ssictl.cli import main

main()
