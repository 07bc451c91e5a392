"""ssictl: the ssikit admin CLI (``ssictl = ssictl.cli:main``)."""
