"""The ``gdbm`` command line: argument parsing only; the work is done by library functions.

Each subcommand is registered by one ``_add_<name>`` function on the shared subparsers
object and runs through one ``_run_<name>`` function. Bad input (an
:class:`~gdbm.utils.errors.InputError`) ends the program with a one-line message on stderr and
exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from gdbm.utils.version import __version__
from gdbm.cli.eval import add_parser as _add_eval
from gdbm.cli.backmap import add_parser as _add_backmap
from gdbm.cli.baseline import add_parser as _add_baseline
from gdbm.cli.cgsim import add_parser as _add_cgsim
from gdbm.cli.datagen import add_parser as _add_datagen
from gdbm.cli.energy import add_parser as _add_energy
from gdbm.cli.demo import add_parser as _add_demo
from gdbm.utils.errors import InputError
from gdbm.cli.morph import add_parser as _add_morph
from gdbm.cli.order import add_parser as _add_order
from gdbm.cli.relax import add_parser as _add_relax
from gdbm.cli.study import add_parser as _add_study
from gdbm.cli.temporal import add_fit_parser as _add_fit_temporal
from gdbm.cli.fit import add_parser as _add_fit


# --- entry point -----------------------------------------------------------------------

_SUBCOMMANDS = (_add_energy, _add_fit, _add_order, _add_backmap, _add_morph, _add_relax, _add_eval, _add_baseline,
                _add_datagen, _add_demo, _add_fit_temporal, _add_study, _add_cgsim)


def build_parser() -> argparse.ArgumentParser:
    """The ``gdbm`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="gdbm", description="Machine-learned backmapping of coarse-grained "
                                     "molecular structures.")
    parser.add_argument("--version", action="version", version=f"gdbm {__version__}")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's choice; use 1 when other jobs share the cores)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gdbm`` with ``argv`` (default: the process arguments); returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        import torch

        if args.threads < 1:
            print("gdbm: error: --threads must be >= 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        return args.run(args)
    except InputError as err:
        message = " ".join(str(err).split())
        print(f"gdbm {args.command}: error: {message}", file=sys.stderr)
        return 2
