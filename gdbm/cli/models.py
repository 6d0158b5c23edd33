"""``gdbm models``: the shipped models, what they were trained on and how well they scored
(argument glue for :func:`gdbm.training.pretrained.model_notes`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``models`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("models", help="list the shipped models (use one with --checkpoint NAME)",
                              description="The trained models shipped with gdbm: the molecules and data each was "
                                          "trained on, its conditioner, its generator updates and its score. "
                                          "Any of them is used by name: 'gdbm backmap --checkpoint NAME'.")
    p.add_argument("name", nargs="?", help="print this model's whole training note instead of the list")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.training.pretrained import model_notes
    from gdbm.utils.errors import InputError

    notes = model_notes()
    if args.name is not None:
        chosen = [n for n in notes if n.name == args.name]
        if not chosen:
            raise InputError(f"no shipped model {args.name!r} (shipped: {', '.join(n.name for n in notes) or 'none'})")
        print(chosen[0].note.read_text(encoding="utf-8"), end="")
        return 0
    for n in notes:
        updates = "?" if n.updates is None else str(n.updates)
        print(f"{n.name}\n  molecules:   {n.molecules}\n  trained on:  {n.trained_on}\n"
              f"  model:       {n.conditioner}, {updates} generator updates\n  score:       {n.score}\n"
              f"  note:        gdbm models {n.name}\n")
    return 0
