"""``gdbm fit-temporal`` and the temporal modes of ``gdbm backmap`` and ``gdbm eval`` (argument glue only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gdbm.cli.common import parse_named_sets
from gdbm.utils.errors import InputError


def add_fit_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``fit-temporal`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser(
        "fit-temporal", help="train a temporally coherent backmapping model (thesis Chapter 8)",
        description="Train the conditional VAE that builds each AA frame from the current CG frame and the "
                    "previous AA frame, then fit the latent Gaussian mixture and keep a library of AA/CG pairs. "
                    "Writes checkpoint.pt (atomically, every checkpoint_every steps) and log.csv.")
    p.add_argument("--config", required=True, help="YAML config (see configs/adp_temporal.yaml)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--steps", type=int, help="override training.steps (e.g. to stop a run early with --resume)")
    p.add_argument("--device", default="cpu", help="torch device: cpu (default), cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue from the folder's checkpoint")
    p.add_argument("--force", action="store_true", help="start over in a folder holding a checkpoint")
    p.set_defaults(run=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    """Run ``gdbm fit-temporal``."""
    from gdbm.temporal.config import load_temporal_config
    from gdbm.temporal.train import fit_temporal

    from gdbm.utils.devices import check_device

    if args.resume and args.force:
        raise InputError("--resume and --force exclude each other")
    check_device(args.device)
    overrides = {"training": {"steps": args.steps}} if args.steps is not None else None
    config = load_temporal_config(args.config, overrides)
    path = fit_temporal(config, args.output, resume=args.resume, force=args.force, device=args.device)
    print(f"wrote {path}")
    return 0


# --- gdbm backmap --temporal -------------------------------------------------------------


def add_backmap_arguments(p: argparse.ArgumentParser) -> None:
    """The temporal options of ``gdbm backmap``."""
    g = p.add_argument_group("temporal backmapping (thesis Chapter 8; --checkpoint from gdbm fit-temporal)")
    g.add_argument("--temporal", action="store_true",
                   help="backmap the CG trajectory frame after frame, each AA frame conditioned on the previous "
                        "one (--top and --map are then not needed: the checkpoint holds the molecule)")
    g.add_argument("--segments", type=int, default=1,
                   help="cut the trajectory into this many segments, each started from the library (default 1)")
    g.add_argument("--frame-based", action="store_true",
                   help="the frame-based baseline instead: each frame the library AA frame of the nearest CG "
                        "structure, placed onto the CG frame")
    g.add_argument("--thermalize", type=int, default=0, metavar="STEPS",
                   help="after each frame is generated: a few minimisation steps, then this many Langevin steps "
                        "with the beads restrained to the CG frame and H bonds constrained (gdbm/temporal/"
                        "thermalize.py; 50 = 0.1 ps brings bonds and angles to temperature); default 0: off")
    g.add_argument("--thermalize-temperature", type=float, default=300.0, help="K (default 300, the datagen MD's)")
    g.add_argument("--thermalize-friction", type=float, default=50.0, help="1/ps (default 50, the datagen MD's)")


def run_backmap(args: argparse.Namespace) -> int:
    """Run ``gdbm backmap --temporal`` (or ``--frame-based``)."""
    from gdbm.temporal.drivers import backmap_trajectory

    thermalize = None
    if args.thermalize:
        from gdbm.temporal.thermalize import ThermalizeSettings

        thermalize = ThermalizeSettings(args.thermalize, args.thermalize_temperature, args.thermalize_friction,
                                        seed=args.seed)
    frames = backmap_trajectory(args.checkpoint, args.cg, args.output, cg_struct=args.cg_struct, frames=args.frames,
                                segments=args.segments, frame_based=args.frame_based,
                                constrain_hydrogens=bool(args.constrain_bonds), thermalize=thermalize, seed=args.seed,
                                device=args.device, force=args.force)
    print(f"wrote {len(frames)} frames to {Path(args.output)}")
    return 0


# --- gdbm eval --temporal ----------------------------------------------------------------


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The temporal options of ``gdbm eval``."""
    g = p.add_argument_group("temporal evaluation (thesis Sec. 8.3); --top is then an OpenMM System XML")
    g.add_argument("--temporal", action="store_true",
                   help="energies (OpenMM System of --top), phi/psi free-energy surface, intra-frame velocities, "
                        "MSM implied timescales of whole trajectories")
    g.add_argument("--lag-ps", type=float, default=1.0, help="ps between frames (default 1)")
    g.add_argument("--segments", type=int, default=1,
                   help="generated trajectories were backmapped in this many segments: velocities across their "
                        "starts are left out (default 1)")
    g.add_argument("--temperature", type=float, default=300.0, help="K, for free energies (default 300)")
    g.add_argument("--msm-lag", type=int, default=5, help="MSM lag in frames (default 5); 0: no MSM")
    g.add_argument("--clusters", type=int, default=100, help="k-means states of the MSM (default 100)")
    g.add_argument("--timescales", type=int, default=3, help="implied timescales reported (default 3)")


def run_eval(args: argparse.Namespace) -> int:
    """Run ``gdbm eval --temporal`` and print the summary table."""
    from gdbm.temporal.drivers import evaluate_trajectories
    from gdbm.temporal.report import markdown

    metrics = evaluate_trajectories(args.top, args.ref, parse_named_sets(args.gen), args.output,
                                    ref_struct=args.ref_struct, frames=args.frames, lag_ps=args.lag_ps,
                                    segments=args.segments, temperature=args.temperature, msm_lag=args.msm_lag,
                                    clusters=args.clusters, timescales=args.timescales, force=args.force)
    print(markdown(metrics))
    return 0
