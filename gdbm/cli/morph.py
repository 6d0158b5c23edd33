"""``gdbm morph``: AA frames of another distribution through the CG resolution and back (argument glue only)."""

from __future__ import annotations

import argparse

from gdbm.cli.backmap import add_sampling_arguments, job_options, report_outcome
from gdbm.cli.common import SEVERAL_MAPS, MappingFiles, deprecate


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``morph`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("morph", help="reinsert a model's local structure into AA frames of another origin",
                              description="Morphing (thesis Ch. 7): map AA frames X (the target's topology, another "
                                          "distribution: another force field, a minimised build, another model's "
                                          "output) to the model's CG resolution with --cg-map, then backmap "
                                          "them with a model trained on the target distribution. Scheme A: forward "
                                          "pass + Gibbs sweeps on the CG of X. Scheme B: Gibbs sweeps starting "
                                          "from X itself. Prints how far the output moved from X.")
    p.add_argument("--aa", required=True, help="AA frames X to morph (.xtc/.gro/... or a folder of .gro)")
    p.add_argument("--aa-struct", help="structure file naming the atoms of an X .xtc")
    p.add_argument("--scheme", required=True, choices=("A", "B"),
                   help="A: forward pass + Gibbs sweeps from X's CG mapping; B: Gibbs sweeps starting from X")
    p.add_argument("--top", required=True, help="AA topology with force-field parameters")
    p.add_argument("--map", action=MappingFiles, required=True,
                   help="reconstruction mapping (home beads, [align]), as in training" + SEVERAL_MAPS)
    p.add_argument("--cg-map", action=MappingFiles, required=True,
                   help="the mapping that made the model's CG input, applied to X (sPS: PS1_cg_fritz.map); --relax "
                        "and --hold-centres hold its bead centres" + SEVERAL_MAPS)
    p.add_argument("--cg-out", help="also write the CG frames of X here (the backmapping's input)")
    add_sampling_arguments(p, frames="X")
    deprecate(p, "--coarse-map", "--cg-map")
    deprecate(p, "--hold-map", "--cg-map")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.utils.distributed import from_environment
    from gdbm.sampling.morph import morph, morph_job

    job = morph_job(args.aa, args.cg_map, args.scheme, source_struct=args.aa_struct, **job_options(args))
    report = morph(job, args.output, cg_output=args.cg_out, workers=args.workers,
                   distributed=from_environment(join=False), force=args.force)
    if report is None:  # not the main process of a torchrun job
        return 0
    code = report_outcome(report.backmap, "morph")
    if report.displacement is not None:
        print(report.displacement.summary())
    return code
