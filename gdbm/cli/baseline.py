"""``gdbm baseline``: the thesis' baseline backmapping from the command line (argument glue only)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gdbm.cli.common import SEVERAL_MAPS, MappingFiles, deprecate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``baseline`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser(
        "baseline", help="geometric placement + energy minimisation (the thesis' baseline)",
        description="Backmap CG frames the generic way (thesis Sec. 5.1.3): each atom at the weighted average "
                    "of its beads plus a random displacement, then OpenMM minimisation with bonded terms only, "
                    "then with all terms; no MD.")
    p.add_argument("--top", required=True, help="AA GROMACS topology with force-field parameters (.top)")
    p.add_argument("--cg-map", action=MappingFiles, required=True,
                   help="the mapping that made the CG frames (.map or .yaml; partial mappings are fine): each atom "
                        "starts at its beads' average" + SEVERAL_MAPS)
    p.add_argument("--cg-itp", help="CG topology of the mapped molecule (default: <molecule>_cg.itp or "
                                    "<mapping stem>_cg.itp beside the mapping or the topology)")
    p.add_argument("--cg", required=True, help="CG frames: .gro/.pdb/.xtc/.trr/.dcd or a folder of .gro files")
    p.add_argument("--cg-struct", help="structure file (.gro/.pdb) naming the beads of a CG .xtc/.trr/.dcd")
    p.add_argument("-o", "--output", required=True,
                   help="AA trajectory to write (.xtc, .dcd, .trr, .pdb, or .gro for one frame)")
    p.add_argument("--workers", type=int, default=1,
                   help="frames in parallel, one process and one OpenMM thread each (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random displacement (default 0)")
    p.add_argument("--displacement", type=float, default=0.05,
                   help="random displacement, std per coordinate in nm (default 0.05)")
    p.add_argument("--bonded-steps", type=int, default=200, help="minimisation steps, bonded terms only (default 200)")
    p.add_argument("--steps", type=int, default=5000, help="minimisation steps, all terms (default 5000)")
    p.add_argument("--tolerance", type=float, default=0.01,
                   help="RMS force in kJ/mol/nm at which a minimisation stage may stop early (default 0.01)")
    p.add_argument("--cutoff", type=float, default=1.0, help="non-bonded cutoff in nm (default 1.0)")
    p.add_argument("--epsilon-rf", type=float, default=2.5, help="reaction-field dielectric (default 2.5, as sPS)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    deprecate(p, "--map", "--cg-map")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``gdbm baseline``; exit code 1 if any frame failed (the others are written)."""
    from gdbm.baselines.backmap import baseline_backmap_files
    from gdbm.baselines.minimize import Protocol

    protocol = Protocol(args.bonded_steps, args.steps, args.tolerance, args.cutoff, args.epsilon_rf)
    result = baseline_backmap_files(args.top, args.cg_map, args.cg, args.output, cg_itp=args.cg_itp,
                                    cg_struct=args.cg_struct, protocol=protocol, displacement=args.displacement,
                                    seed=args.seed, workers=args.workers, force=args.force)
    output, n_frames = Path(args.output), len(result.results) + len(result.failures)
    if result.results:
        final = [r.energy_final for r in result.results]
        print(f"wrote {len(result.results)} of {n_frames} frames to {output}; mean final potential energy "
              f"{sum(final) / len(final):.6g} kJ/mol")
    for failure in result.failures:
        print(f"frame {failure.index} ({failure.label}) failed: {failure.reason}", file=sys.stderr)
    if result.failures:
        left = ", ".join(str(f.index) for f in result.failures)
        print(f"left out {len(result.failures)} of {n_frames} frames (indices {left})"
              + ("" if result.results else f"; nothing written to {output}"), file=sys.stderr)
        return 1
    return 0
