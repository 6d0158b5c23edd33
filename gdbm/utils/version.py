"""The package version, in one place (``gdbm --version``, provenance in written files)."""

__version__ = "0.1.0"
