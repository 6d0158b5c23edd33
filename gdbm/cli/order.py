"""``gdbm order``: learn the reconstruction order for a trained model (argument glue only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gdbm.utils.errors import InputError


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
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--batch", type=int, default=16, help="training items per iteration")
    p.add_argument("--orders", type=int, default=4, help="orders drawn per item (>= 2)")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from gdbm.ordering.learned import save_policy
    from gdbm.training.trained_model import load_generator
    from gdbm.ordering import molecule_type_graphs
    from gdbm.training.trainer import build_dataset
    from gdbm.training.order_policy import fit_order_policy
    from gdbm.training.config import load_config

    output = Path(args.output)
    if output.exists() and not args.force:
        raise InputError("exists; pass --force to overwrite", output)
    generator, _, experiment = load_generator(args.checkpoint)
    config = load_config(args.config) if args.config else experiment
    if config.ordering.traversal == "learned":
        raise InputError("the training plan must be a traversal (dfs, bfs, random); the policy reorders its steps",
                         args.config)
    config = config.model_copy(update={"model": experiment.model})
    torch.manual_seed(args.seed)
    dataset = build_dataset(config)
    if not hasattr(dataset, "plan"):
        raise InputError("gdbm order trains on one system; the config lists several", args.config)
    from gdbm.topology.system import load_mapped_system

    d = config.sources[0]
    graphs = molecule_type_graphs(load_mapped_system(d.topology, d.mapping, d.cg_itp, parameters=d.parameters))
    policy = fit_order_policy(dataset, generator, graphs, args.iterations, args.batch, args.orders, args.lr,
                              config.prior.lj_core, args.seed,
                              log=lambda row: print(" ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True))
    save_policy(output, policy, config.ordering)
    print(f"wrote the order policy to {output}")
    return 0
