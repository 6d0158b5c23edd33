"""``gdbm eval``: compare generated AA frames with reference frames (argument glue only)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gdbm.cli.common import SEVERAL_MAPS, MappingFiles, deprecate, parse_named_sets
from gdbm.cli.temporal import add_eval_arguments as add_temporal_arguments
from gdbm.cli.temporal import run_eval as run_temporal


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``eval`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser(
        "eval", help="distributions, divergences, RDFs, energies, clashes and CG consistency vs a reference",
        description="Evaluate generated AA frames against reference AA frames of the same CG frames: "
                    "Jensen-Shannon divergences of bonded and energy distributions per type, RDF errors, "
                    "clashes, energies and CG consistency; writes metrics.json, summary.md and plots.")
    p.add_argument("--top", required=True, help="AA GROMACS topology with force-field parameters")
    p.add_argument("--parameters", help="supplementary parameter file in GROMACS syntax ([atomtypes], ...)")
    p.add_argument("--frames", help="evaluate CG frames START:STOP only: slices the reference and --cg, and every "
                                    "generated set that covers all reference frames (k samples each)")
    p.add_argument("--cg-map", action=MappingFiles,
                   help="the mapping that made the CG frames (.map or .yaml; partial mappings are fine), for CG "
                        "consistency and --forces" + SEVERAL_MAPS)
    p.add_argument("--cg-itp", help="CG topology of the mapped molecule (default: found beside the mapping)")
    p.add_argument("--ref", required=True, help="reference AA frames (.xtc/.trr/.dcd/.gro/.pdb or a folder of .gro)")
    p.add_argument("--ref-struct", help="structure file naming the atoms of the reference and of generated .xtc")
    p.add_argument("--gen", action="append", required=True, metavar="NAME=TRAJ",
                   help="a generated set (repeatable); k samples per CG frame are stored frame by frame")
    p.add_argument("--cg", help="the CG input frames (for CG consistency; needs --cg-map)")
    p.add_argument("--cg-struct", help="structure file naming the beads of a CG .xtc")
    p.add_argument("--forces", action="store_true",
                   help="AA forces projected onto the beads (thesis Eq. 6.3): |F| distributions per bead type, "
                        "their JSD to the reference and bead_forces.png (needs --cg-map)")
    p.add_argument("--cutoff", type=float, default=1.0, help="LJ cutoff in nm (default 1.0)")
    p.add_argument("--no-per-type-rdf", action="store_true", help="RDFs of all atoms and carbons only")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite an existing evaluation in the folder")
    add_temporal_arguments(p)
    deprecate(p, "--map", "--cg-map")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``gdbm eval`` and print the summary table."""
    from gdbm.analysis.report import evaluate_files

    if args.temporal:
        return run_temporal(args)
    settings = {k: v for k, v in vars(args).items() if k != "run"}
    evaluate_files(args.top, args.ref, parse_named_sets(args.gen), args.output, parameters=args.parameters,
                   mapping_file=args.cg_map, cg_itp=args.cg_itp, ref_struct=args.ref_struct, cg=args.cg,
                   cg_struct=args.cg_struct, frames=args.frames, forces=args.forces, cutoff=args.cutoff,
                   per_type_rdf=not args.no_per_type_rdf, force=args.force, settings=settings)
    print((Path(args.output) / "summary.md").read_text())
    return 0
