"""``gdbm fit``: train a backmapping model from an experiment config (argument glue over
:func:`gdbm.training.run_folder.fit`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from gdbm.cli.common import deprecate


class _ConditionerNames:
    """The names in :data:`gdbm.conditioners.registry.CONDITIONERS` as argparse ``choices``, read on
    first use: the registry imports torch, which other subcommands need not wait for."""

    def _names(self) -> list[str]:
        from gdbm.conditioners.registry import CONDITIONERS

        return list(CONDITIONERS)

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fit`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("fit", help="train a generator/critic pair (conditional WGAN-GP, energy prior)",
                              description="Train a backmapping model on AA/CG frames as the YAML config says; "
                                          "checkpoints and a CSV log go to the output folder, and an "
                                          "interrupted run continues with --resume. Under torchrun "
                                          "(torchrun --nproc-per-node N -m gdbm fit ...) the N processes "
                                          "train one model with DistributedDataParallel.")
    names = _ConditionerNames()
    p.add_argument("--config", required=True, help="experiment config (YAML), e.g. configs/sps.yaml")
    p.add_argument("--conditioner", choices=names, metavar="NAME",
                   help="conditioner, one of %(choices)s (overrides the config's model.conditioner)")
    p.add_argument("-o", "--output", help="run folder (default runs/<config name>)")
    p.add_argument("--steps", type=int, help="generator updates in total (overrides training.steps)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (overrides training.device)")
    p.add_argument("--init-from", metavar="MODEL",
                   help="fine-tune: start from a shipped model (a name from gdbm models) or a checkpoint file; "
                        "the network and type vocabulary stay the model's, the run starts at step 0 "
                        "(overrides training.init_from; a resumed run continues from its own checkpoint)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    start.add_argument("--force", action="store_true",
                       help="start over, deleting the run folder's checkpoint, log and kept checkpoints")
    deprecate(p, "--encoder", "--conditioner")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.utils.devices import check_device
    from gdbm.training.run_folder import fit

    check_device(args.device)
    mode = "resume" if args.resume else "force" if args.force else "new"
    fit(args.config, args.output, mode, conditioner=args.conditioner, steps=args.steps,
        device=args.device, init_from=args.init_from)
    return 0
