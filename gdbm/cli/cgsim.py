"""``gdbm cgsim``: fit a CG force field by Boltzmann inversion and run it in OpenMM (argument glue).

Writes ``cg.xtc`` (the kept frames) and ``cg.gro`` (the first of them, naming the beads as the
starting frame does, so ``gdbm backmap --cg cg.xtc --cg-struct cg.gro`` reads them), the
CG-level check against the reference (``cg_check.json``, ``cg_check.png``) and ``run.json``
(settings, force-field summary, wall time).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gdbm.utils.errors import InputError

OUTPUTS = ("cg.xtc", "cg.gro", "cg_check.json", "cg_check.png", "run.json")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``cgsim`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser(
        "cgsim", help="a CG simulation (OpenMM) of a Boltzmann-inverted CG force field",
        description="Fit tabulated CG potentials (bonds, angles, dihedrals per bead-type tuple; pair potentials "
                    "-kT ln g(r) per bead-type pair) to mapped reference CG frames, run Langevin NVT in OpenMM "
                    "from one CG frame in its box, and check the run's distributions against the reference.")
    p.add_argument("--cg-top", required=True, help="CG topology (.itp): bead names, types and CG bonds")
    p.add_argument("--ref", required=True, action="append",
                   help="mapped reference CG frames (repeatable; .xtc/.gro/... or a folder of .gro)")
    p.add_argument("--ref-struct", help="structure file naming the beads of a reference .xtc")
    p.add_argument("--start", required=True, help="CG frames holding the starting frame")
    p.add_argument("--start-struct", help="structure file naming the beads of a --start .xtc (also names the output)")
    p.add_argument("--start-frame", type=int, default=0, help="index of the starting frame (default 0)")
    p.add_argument("--temperature", type=float, required=True, help="K, of the reference and of the run")
    p.add_argument("--terms", default="bonds,angles,dihedrals",
                   help="bonded potentials to include, comma-separated subset of bonds,angles,dihedrals "
                        "(the thesis' models B and C: all, bonds,angles); pair potentials are always on")
    p.add_argument("--cutoff", type=float, default=1.0, help="pair cutoff in nm (default 1.0)")
    p.add_argument("--timestep", type=float, default=0.004, help="ps (default 0.004)")
    p.add_argument("--friction", type=float, default=1.0, help="Langevin friction, 1/ps (default 1)")
    p.add_argument("--equilibration", type=float, default=50.0, help="ps before the first kept frame (default 50)")
    p.add_argument("--spacing", type=float, default=10.0, help="ps between kept frames (default 10)")
    p.add_argument("--n-frames", type=int, default=20, help="frames to keep (default 20)")
    p.add_argument("--bead-mass", type=float, default=50.0, help="amu, every bead (sets dynamics only; default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--platform", default="CPU", help="OpenMM platform (default CPU)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite the outputs of an earlier run in the folder")
    p.set_defaults(run=run)


def _reference(paths: list[str], structure: str | None):
    import torch

    from gdbm.data.trajectory import Frames, read_frames

    parts = [read_frames(p, structure if Path(p).suffix in (".xtc", ".trr", ".dcd") else None) for p in paths]
    sizes = {f.n_particles for f in parts}
    if len(sizes) != 1:
        raise InputError(f"the reference CG frames disagree on the bead count: {sorted(sizes)}", paths[0])
    return Frames(torch.cat([f.positions for f in parts]), torch.cat([f.boxes for f in parts]),
                  [label for f in parts for label in f.labels], parts[0].names, parts[0].resnames, parts[0].resids)


def _cg_topology(path: str, n_beads: int):
    from gdbm.topology import read_topology

    one = read_topology(path, require_parameters=False)
    if n_beads % one.n_atoms:
        raise InputError(f"{n_beads} beads per frame are not a whole number of molecules of {one.n_atoms} beads",
                         path)
    return read_topology(path, require_parameters=False, n_molecules=n_beads // one.n_atoms)


def run(args: argparse.Namespace) -> int:
    """Run ``gdbm cgsim``."""
    from pydantic import ValidationError

    from gdbm.utils.atomic_files import write_text
    from gdbm.cgsim.check import compare_cg, plot_cg_check
    from gdbm.cgsim.forcefield import build_forcefield
    from gdbm.cgsim.simulate import RunSettings, run_cg
    from gdbm.data.trajectory import read_frames, write_frames

    out = Path(args.output)
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not args.force:
        raise InputError(f"already holds {', '.join(existing)}; pass --force to overwrite", out)
    terms = tuple(t.strip() for t in args.terms.split(",") if t.strip())
    began = time.perf_counter()
    reference = _reference(args.ref, args.ref_struct)
    top = _cg_topology(args.cg_top, reference.n_particles)
    start = read_frames(args.start, args.start_struct)
    if not 0 <= args.start_frame < len(start):
        raise InputError(f"--start-frame {args.start_frame} is not one of the {len(start)} frames", args.start)
    try:
        settings = RunSettings(temperature=args.temperature, timestep=args.timestep, friction=args.friction,
                               equilibration=args.equilibration, spacing=args.spacing, n_frames=args.n_frames,
                               bead_mass=args.bead_mass, seed=args.seed, platform=args.platform,
                               threads=max(1, args.threads or 1))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise InputError(f"invalid run settings: {problems}") from None
    ff = build_forcefield(top, reference, args.temperature, args.cutoff, terms)
    fitted = time.perf_counter()
    frames = run_cg(ff, start.subset([args.start_frame]), settings)
    simulated = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    write_frames(out / "cg.xtc", frames, force=args.force)
    write_frames(out / "cg.gro", frames.subset([0]), force=args.force)
    metrics, curves = compare_cg(top, ff, reference, frames)
    plot_cg_check(curves, ff.type_names, out / "cg_check.png", force=args.force)
    write_text(out / "cg_check.json", json.dumps(metrics, indent=1) + "\n", args.force)
    summary = {"settings": settings.model_dump(), "terms": list(terms), "cutoff_nm": args.cutoff,
               "reference_frames": len(reference), "start": f"{args.start}#{args.start_frame}",
               "bonded_potentials": [f"{g.kind}/{g.key} ({len(g.index)} per frame)" for g in ff.bonded],
               "pair_types": ff.type_names, "excluded_pairs": int(ff.exclusions.shape[0]),
               "wall_s": {"fit": round(fitted - began, 1), "simulate": round(simulated - fitted, 1),
                          "total": round(time.perf_counter() - began, 1)}}
    write_text(out / "run.json", json.dumps(summary, indent=1) + "\n", args.force)
    worst = max((k for k in metrics if k.startswith("jsd/")), key=lambda k: metrics[k], default=None)
    print(f"{len(frames)} CG frames -> {out / 'cg.xtc'}; largest bonded JSD {worst} = "
          f"{metrics[worst]:.4f}" if worst else f"{len(frames)} CG frames -> {out / 'cg.xtc'}")
    return 0
