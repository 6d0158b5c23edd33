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
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from the folder's checkpoint")
    p.add_argument("--force", action="store_true", help="start over in a folder holding a checkpoint")
    p.set_defaults(run=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    from gdbm.temporal.config import load_temporal_config
    from gdbm.temporal.train import fit_temporal

    if args.resume and args.force:
        raise InputError("--resume and --force exclude each other")
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
    import torch

    from gdbm.data.trajectory import Frames, check_particle_count, frame_range, read_frames, write_frames
    from gdbm.temporal.sample import TemporalBackmapper, frame_based

    output = Path(args.output)
    if output.exists() and not args.force:
        raise InputError("exists; pass --force to overwrite", output)
    backmapper = TemporalBackmapper.from_checkpoint(args.checkpoint, args.device)
    system = backmapper.system
    cg = read_frames(args.cg, args.cg_struct)
    check_particle_count(cg, system.n_beads, f"the checkpoint {args.checkpoint}", args.cg)
    if args.frames:
        cg = cg.subset(frame_range(args.frames, len(cg)))
    refine = None
    if args.thermalize:
        from gdbm.temporal.thermalize import Thermalizer, ThermalizeSettings

        refine = Thermalizer(system, ThermalizeSettings(args.thermalize, args.thermalize_temperature,
                                                        args.thermalize_friction, seed=args.seed))
    if args.frame_based:
        aa = frame_based(backmapper.library, cg.positions, args.constrain_bonds, refine)
    else:
        aa = backmapper.backmap(cg.positions, args.segments, args.seed, args.constrain_bonds, refine=refine)
    frames = Frames(aa, torch.zeros(len(aa), 3, 3), list(cg.labels), system.names, system.resnames, system.resids)
    write_frames(output, frames, force=args.force)
    print(f"wrote {len(frames)} frames to {output}")
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
    from gdbm.data.trajectory import check_particle_count, frame_range, read_frames
    from gdbm.temporal.energy import OpenMMEnergy
    from gdbm.temporal.metrics import compare, torsion_atoms
    from gdbm.temporal.report import markdown, write_report

    out = Path(args.output)
    if (out / "metrics.json").exists() and not args.force:
        raise InputError("holds an evaluation; pass --force to overwrite", out)
    xml = Path(args.top).read_text() if Path(args.top).is_file() else None
    if xml is None or "<System" not in xml[:2000]:
        raise InputError("with --temporal, --top must be an OpenMM System XML (system.xml of gdbm datagen dipeptide)",
                         args.top)
    ref = read_frames(args.ref, args.ref_struct)
    if args.frames:
        ref = ref.subset(frame_range(args.frames, len(ref)))
    generated = {}
    for name, path in parse_named_sets(args.gen).items():
        frames = read_frames(path, args.ref_struct)
        check_particle_count(frames, ref.n_particles, f"the reference {args.ref}", path)
        if len(frames) != len(ref):
            raise InputError(f"holds {len(frames)} frames, the reference {len(ref)}; backmap the same CG frames", path)
        generated[name] = frames.positions
    energy = OpenMMEnergy(xml)
    sets = {"reference": ref.positions, **generated}
    energies = {k: energy(v)[0] for k, v in sets.items()}
    msm = {"lag": args.msm_lag, "n_clusters": args.clusters, "n_timescales": args.timescales} if args.msm_lag else None
    metrics, observations = compare(ref.positions, generated, ref.names, ref.resids, energies, torsion_atoms(xml),
                                    args.lag_ps, args.segments, msm)
    header = (f"Reference {args.ref} ({len(ref)} frames, {args.lag_ps} ps apart); energies from {args.top}; "
              f"MSM: k-means with {args.clusters} states on (cos, sin) of phi/psi, lag {args.msm_lag} frames "
              f"(deeptime).\n\n")
    write_report(metrics, observations, out, args.temperature, header, args.force)
    print(markdown(metrics))
    return 0
