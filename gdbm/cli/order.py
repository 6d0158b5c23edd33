"""``gdbm order``: learn the reconstruction order for a trained model (argument glue for
:func:`gdbm.training.order_policy.learn_order`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``order`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("order", help="learn the order of atoms inside each reconstruction step",
                              description="Train an order policy (gdbm.ordering.learned) by REINFORCE: a trained "
                                          "generator places each step's atoms in orders the policy draws, on "
                                          "the config's training frames; orders whose atoms match the "
                                          "reference's energies better become more likely. Use it with "
                                          "'gdbm backmap --ordering POLICY'.")
    p.add_argument("--checkpoint", required=True, help="a gdbm fit checkpoint (its generator is kept fixed)")
    p.add_argument("--config", help="experiment config naming the training frames (default: the checkpoint's)")
    p.add_argument("-o", "--output", required=True, help="order policy file to write (.pt)")
    p.add_argument("--iterations", type=int, default=100, help="REINFORCE updates of the policy (default 100)")
    p.add_argument("--batch", type=int, default=16, help="training items per iteration (default 16)")
    p.add_argument("--orders", type=int, default=4, help="orders drawn per item (>= 2; default 4)")
    p.add_argument("--lr", type=float, default=1e-2, help="learning rate of the policy (default 0.01)")
    p.add_argument("--seed", type=int, default=0, help="seed of the items and orders drawn (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.training.order_policy import learn_order

    output = learn_order(args.checkpoint, args.output, config=args.config, iterations=args.iterations,
                         batch_size=args.batch, orders=args.orders, lr=args.lr, seed=args.seed, force=args.force,
                         log=lambda row: print(" ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True))
    print(f"wrote the order policy to {output}")
    return 0
