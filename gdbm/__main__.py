"""``python -m gdbm``: the same as the ``gdbm`` command."""

from gdbm.cli.main import main

raise SystemExit(main())
