"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from gdbm.utils.errors import InputError


class MappingFiles(argparse.Action):
    """A mapping option given once per molecule type of a mixture: ``--map A.yaml --map B.map`` (or
    ``--map A.yaml,B.map``) is ``"A.yaml,B.map"``, which the library splits
    (:func:`gdbm.topology.system.split_paths`); one file stays one path."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, f"{given},{values}" if given else values)


#: Help text the mapping options end with.
SEVERAL_MAPS = "; for a mixture, one file per molecule type: repeat the option or join the files by commas"


def parse_named_sets(specs: list[str]) -> dict[str, str]:
    """``["NAME=TRAJ", ...]`` (``--gen``) -> ``{NAME: TRAJ}``; a clear error for a bad or repeated name."""
    sets: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--gen expects NAME=TRAJ, got {spec!r}")
        if name in sets:
            raise InputError(f"--gen name {name!r} given twice")
        sets[name] = path
    return sets


# --- one vocabulary: deprecated spellings, global options, interruption ---------------------

#: Exit code of a command ended by SIGTERM (128 + 15), as a shell reports a process it killed.
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C's KeyboardInterrupt: the same cleanup runs
    (finished frames kept, worker processes ended), and the program exits with :data:`EXIT_TERMINATED`."""


def interrupt_exit_code(err: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (:class:`Terminated`)."""
    return EXIT_TERMINATED if isinstance(err, Terminated) else 130


class GdbmParser(argparse.ArgumentParser):
    """An ArgumentParser that still takes the old spellings of renamed options (:func:`deprecate`):
    each is rewritten to its new name before parsing, with one note on stderr
    (``gdbm energy: note: --traj is deprecated; use --aa``). Hidden from ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deprecated_options: dict[str, str] = {}

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        if args is not None and self.deprecated_options:
            args = self._new_spellings(list(args))
        return super().parse_known_args(args, namespace)

    def _new_spellings(self, args: list[str]) -> list[str]:
        out, noted = [], set()
        spellings: dict[str, set[str]] = {}  # new name -> the spellings it was given by
        renamed = set(self.deprecated_options.values())
        for i, word in enumerate(args):
            if word == "--":
                out += args[i:]
                break
            name, eq, value = word.partition("=")
            new = self.deprecated_options.get(name)
            if new is not None:
                if name not in noted:
                    noted.add(name)
                    print(f"{self.prog}: note: {name} is deprecated; use {new}", file=sys.stderr)
                word = new + eq + value
            if name in renamed or new is not None:
                spellings.setdefault(new or name, set()).add(name)
            out.append(word)
        for new, names in spellings.items():
            if len(names) > 1:
                self.error(f"{' and '.join(sorted(names))} are spellings of one option, {new}; give it once")
        return out


def deprecate(p: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old``, a former spelling of the option ``new`` of ``p``, with a one-line note."""
    if not any(new in action.option_strings for action in p._actions):
        raise ValueError(f"{p.prog} has no option {new}")  # a programming error, caught by the tests
    p.__dict__.setdefault("deprecated_options", {})[old] = new


def deprecated_spellings(p: argparse.ArgumentParser) -> dict[str, str]:
    """``{old: new}`` of the parser ``p``."""
    return dict(getattr(p, "deprecated_options", {}))


#: Options of the top-level parser that every subcommand accepts too (``gdbm backmap --threads 1``).
GLOBAL_DESTS = ("threads", "quiet", "verbose")


def add_global_options(p: argparse.ArgumentParser, top: bool) -> None:
    """``--threads``, ``--quiet``, ``--verbose``: on the top-level parser (``top``) with their defaults,
    on each subcommand without defaults (argparse.SUPPRESS), so that a subcommand's parse keeps what
    was given before the subcommand unless the option is given again after it."""
    default = {} if top else {"default": argparse.SUPPRESS}
    g = p.add_argument_group("global options (before or after the command)")
    g.add_argument("--threads", type=int, metavar="N", **default,
                   help="torch CPU threads, and OpenMM CPU threads where a command runs OpenMM (default: "
                        "the usable CPUs less those other jobs keep busy by the 1-minute load average, at least "
                        "1; OMP_NUM_THREADS, if set, instead)")
    g.add_argument("-q", "--quiet", action="store_true", **default,
                   help="no progress output (bars or progress lines); errors and results are still printed")
    g.add_argument("-v", "--verbose", action="store_true", **default,
                   help="progress lines every 2 s instead of every 10 s when stderr is not a terminal, and the "
                        "library's informational log messages")


def all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand parser below it (``datagen liquid`` included), each once."""
    seen: set[int] = set()
    stack = [parser]
    while stack:
        p = stack.pop(0)
        if id(p) in seen:
            continue
        seen.add(id(p))
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())


def add_no_pbc(p: argparse.ArgumentParser, what: str) -> None:
    """``--no-pbc``: frames without a box are refused unless the user says the system is not periodic."""
    p.add_argument("--no-pbc", action="store_true",
                   help=f"the system is not periodic: accept {what} without a box (an all-zero .gro box line, a PDB "
                        "without CRYST1), which are refused otherwise")


#: Words of the reader's message for a frame without a box (gdbm.data.trajectory.read_frames).
_NO_BOX = "has no box (all zero)"


def with_hints(message: str, args: argparse.Namespace) -> str:
    """``message`` (a one-line error) with the option that would have avoided it, where the command has one."""
    if _NO_BOX in message and hasattr(args, "no_pbc") and not args.no_pbc:
        return f"{message}; pass --no-pbc if the system is not periodic"
    return message
