"""``python -m gdbm``: the same as the ``gdbm`` command."""

from gdbm.cli import main

raise SystemExit(main())
