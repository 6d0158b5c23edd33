"""The ``gdbm`` command line: argument parsing only; the work is done by library functions.

Each subcommand is registered by one ``_add_<name>`` function on the shared subparsers
object and runs through one ``_run_<name>`` function. Every error ends the program with a one-line
message on stderr and a non-zero exit code, without a traceback: bad input (an
:class:`~gdbm.utils.errors.InputError`, an unusable file or folder, undecodable text, a config that
does not validate) exit 2, out of memory 1, Ctrl-C 130 and SIGTERM 143 (finished frames kept, the same
one line), anything else 1 as an internal error (:func:`gdbm.utils.errors.describe_error`).
``GDBM_TRACEBACK=1`` re-raises instead.

The global options (``--threads``, ``--quiet``, ``--verbose``) may come before or after the
subcommand; renamed options keep their old spellings as hidden aliases with a one-line note
(:class:`gdbm.cli.common.GdbmParser`; the vocabulary is in ``docs/commands.md``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Sequence

from gdbm.utils.version import __version__
from gdbm.cli.common import (GdbmParser, Terminated, add_global_options, all_parsers, interrupt_exit_code,
                             with_hints)
from gdbm.cli.eval import add_parser as _add_eval
from gdbm.cli.backmap import add_parser as _add_backmap
from gdbm.cli.baseline import add_parser as _add_baseline
from gdbm.cli.cgsim import add_parser as _add_cgsim
from gdbm.cli.datagen import add_parser as _add_datagen
from gdbm.cli.energy import add_parser as _add_energy
from gdbm.cli.demo import add_parser as _add_demo
from gdbm.utils.errors import TRACEBACK_VARIABLE, describe_error
from gdbm.utils.threads import choose_threads
from gdbm.cli.models import add_parser as _add_models
from gdbm.cli.morph import add_parser as _add_morph
from gdbm.cli.order import add_parser as _add_order
from gdbm.cli.relax import add_parser as _add_relax
from gdbm.cli.study import add_parser as _add_study
from gdbm.cli.temporal import add_fit_parser as _add_fit_temporal
from gdbm.cli.fit import add_parser as _add_fit


def _print_line(line: str) -> None:
    """``line`` on stderr, even when stderr is a closed pipe."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


@contextmanager
def _quiet_unraisable() -> Iterator[None]:
    """Errors in finalizers (``Exception ignored in ...``, e.g. a reader closing a garbage file) are not
    printed as tracebacks after the one-line error; ``GDBM_TRACEBACK=1`` shows them."""
    if os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
        yield
        return
    previous, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None
    try:
        yield
    finally:
        sys.unraisablehook = previous


# --- entry point -----------------------------------------------------------------------

_SUBCOMMANDS = (_add_energy, _add_fit, _add_order, _add_backmap, _add_morph, _add_relax, _add_eval, _add_baseline,
                _add_datagen, _add_demo, _add_fit_temporal, _add_study, _add_cgsim, _add_models)


def build_parser() -> argparse.ArgumentParser:
    """The ``gdbm`` parser with every subcommand registered."""
    parser = GdbmParser(prog="gdbm", description="Machine-learned backmapping of coarse-grained molecular "
                        "structures. The options and file flags every command shares: docs/commands.md.")
    parser.add_argument("--version", action="version", version=f"gdbm {__version__}")
    add_global_options(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    for sub in all_parsers(parser):
        if sub is not parser:
            add_global_options(sub, top=False)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a batch system's time limit) ends the command the way Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _warnings_as_lines(command: str) -> Iterator[None]:
    """Python warnings as one line each, ``gdbm COMMAND: warning: ...`` (not file, line and source)."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        print(f"gdbm {command}: warning: {text}", file=file or sys.stderr, flush=True)

    previous, warnings.showwarning = warnings.showwarning, show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _set_verbosity(args: argparse.Namespace) -> None:
    from gdbm.utils.progress import NORMAL, QUIET, VERBOSE, set_verbosity

    level = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL
    set_verbosity(level)
    if level == VERBOSE:
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("gdbm").setLevel(logging.INFO)
    elif level == QUIET:
        logging.getLogger("gdbm").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gdbm`` with ``argv`` (default: the process arguments); returns the exit code.

    Every error ends in one line on stderr and a non-zero exit, without a traceback
    (:func:`describe_error`); ``GDBM_TRACEBACK=1`` re-raises instead, for developers.
    """
    args = build_parser().parse_args(argv)
    if args.quiet and args.verbose:
        print(f"gdbm {args.command}: error: --quiet and --verbose exclude each other", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print(f"gdbm {args.command}: error: --threads must be >= 1", file=sys.stderr)
        return 2
    threads = choose_threads(args.threads)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    _set_verbosity(args)
    with _quiet_unraisable(), _sigterm_as_interrupt(), _warnings_as_lines(args.command):
        try:
            return args.run(args)
        except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - every error becomes one line
            if os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0"):
                raise
            message, code = describe_error(err, getattr(args, "output", None))
            if isinstance(err, KeyboardInterrupt):
                code = interrupt_exit_code(err)
            _print_line(f"gdbm {args.command}: {with_hints(message, args)}")
            return code
