"""The ``gdbm`` command line: one module per subcommand over a library function; no work is done here."""

from gdbm.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
