"""``gdbm fit``: train a backmapping model from an experiment config (argument glue only)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from gdbm.utils.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fit`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("fit", help="train a generator/critic pair (conditional WGAN-GP, energy prior)",
                              description="Train a backmapping model on AA/CG frames as the YAML config says; "
                                          "checkpoints and a CSV log go to the output folder, and an "
                                          "interrupted run continues with --resume. Under torchrun "
                                          "(torchrun --nproc-per-node N -m gdbm fit ...) the N processes "
                                          "train one model with DistributedDataParallel.")
    p.add_argument("--config", required=True, help="experiment config (YAML), e.g. configs/sps.yaml")
    p.add_argument("--encoder", choices=("voxel", "e3nn"), help="conditioner (overrides the config's model.encoder)")
    p.add_argument("-o", "--output", help="run folder (default runs/<config name>)")
    p.add_argument("--steps", type=int, help="generator updates in total (overrides training.steps)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda (overrides training.device)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--force", action="store_true", help="start over, deleting the run folder's checkpoint and log")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.utils.distributed import from_environment
    from gdbm.training.trainer import CHECKPOINT, build_trainer
    from gdbm.training.config import load_config

    overrides: dict[str, dict] = {}
    if args.encoder:
        overrides["model"] = {"encoder": args.encoder}
    training = {k: v for k, v in (("steps", args.steps), ("device", args.device)) if v is not None}
    if training:
        overrides["training"] = training
    config = load_config(args.config, overrides)
    out = Path(args.output or Path("runs") / Path(args.config).stem)
    if (out / CHECKPOINT).exists() and not (args.resume or args.force):
        raise InputError("holds a checkpoint; pass --resume to continue it or --force to start over", out)
    distributed = from_environment(config.training.device)
    try:
        if distributed.is_main:
            if args.force and out.exists():
                for name in (CHECKPOINT, "log.csv"):
                    (out / name).unlink(missing_ok=True)
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.config, out / "config.yaml")
        distributed.barrier()  # the folder is ready before any rank reads or resumes from it
        trainer = build_trainer(config, out, distributed)
        try:
            if args.resume and trainer.resume() and distributed.is_main:
                print(f"resuming {out} at step {trainer.state.step}")
            state = trainer.fit()
        finally:
            trainer.release()
    finally:
        distributed.close()
    if distributed.is_main:
        processes = f" on {distributed.world_size} processes" if distributed.enabled else ""
        print(f"trained {state.step} steps in {state.seconds:.0f} s{processes}; checkpoint {out / CHECKPOINT}")
    return 0
