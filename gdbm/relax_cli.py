"""``gdbm relax``: the constrained relaxation of :mod:`gdbm.physics.relax` on any AA trajectory.

The same step ``gdbm backmap --relax`` ends with, for frames made elsewhere (another
backmapping method's output, or a backmapped file to try several step counts on).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gdbm.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``relax`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("relax", help="remove close contacts of AA frames, CG beads held",
                              description="Steepest descent on the force field, every CG bead's centre held on "
                                          "its CG position (and optionally every bond at b0).")
    p.add_argument("--top", required=True, help="AA topology with force-field parameters")
    p.add_argument("--parameters", help="supplementary parameter file in GROMACS syntax")
    p.add_argument("--aa", required=True, help="AA frames to relax")
    p.add_argument("--aa-struct", help="structure file naming the atoms of an .xtc")
    p.add_argument("--map", required=True, help="the mapping that made the CG frames (may be partial)")
    p.add_argument("--cg-itp", help="CG topology (default: found beside the mapping)")
    p.add_argument("--cg", required=True, help="CG frames, one per AA frame")
    p.add_argument("--cg-struct", help="structure file naming the beads of a CG .xtc")
    p.add_argument("--frames", help="relax frames START:STOP only (of both files)")
    p.add_argument("--steps", type=int, default=50, help="steepest-descent steps (default 50)")
    p.add_argument("--constrain-bonds", action="store_true", help="keep every bond at b0")
    p.add_argument("-o", "--output", required=True, help="relaxed AA trajectory to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from gdbm.data.trajectory import Frames, check_particle_count, frame_range, read_frames, write_frames
    from gdbm.physics.energy import EnergyModel
    from gdbm.physics.relax import CentreConstraint, relax
    from gdbm.topology.system import load_mapped_system

    output = Path(args.output)
    if output.exists() and not args.force:
        raise InputError("exists; pass --force to overwrite", output)
    if args.steps < 1:
        raise InputError("--steps must be >= 1")
    system = load_mapped_system(args.top, args.map, args.cg_itp, parameters=args.parameters, partial=True)
    aa, cg = read_frames(args.aa, args.aa_struct), read_frames(args.cg, args.cg_struct)
    check_particle_count(aa, system.aa.n_atoms, f"the topology {args.top}", args.aa)
    check_particle_count(cg, system.mapping.n_beads, f"the mapping {args.map}", args.cg)
    if args.frames:
        aa, cg = aa.subset(frame_range(args.frames, len(aa))), cg.subset(frame_range(args.frames, len(cg)))
    if len(aa) != len(cg):
        raise InputError(f"{len(aa)} AA frames but {len(cg)} CG frames; one CG frame per AA frame", args.cg)
    model = EnergyModel(system.aa)
    out = torch.empty_like(aa.positions)
    with tqdm(total=len(aa) * args.steps, desc="relax", unit="step") as bar:
        for f in range(len(aa)):
            held = CentreConstraint(system.mapping, cg.positions[f:f + 1].double(), system.aa.masses)
            result = relax(aa.positions[f:f + 1].double(), aa.boxes[f:f + 1].double(), model, args.steps,
                           centres=held, bonds=args.constrain_bonds, on_step=bar.update)
            out[f] = result.positions[0].float()
            bar.write(f"frame {f}: {float(result.energy_before[0]):.1f} -> {float(result.energy_after[0]):.1f} kJ/mol")
    write_frames(output, Frames(out, aa.boxes, aa.labels, aa.names, aa.resnames, aa.resids), force=args.force)
    print(f"wrote {len(aa)} frames to {output}")
    return 0
