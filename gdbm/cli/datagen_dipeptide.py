"""``gdbm datagen dipeptide``: the alanine-dipeptide reference trajectory of thesis Sec. 8.2.1 (glue only)."""

from __future__ import annotations

import argparse
import shlex
import sys

from gdbm.cli.common import interrupt_exit_code


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register ``dipeptide`` on the ``gdbm datagen`` kinds."""
    p = kinds.add_parser(
        "dipeptide", help="an alanine-dipeptide trajectory in implicit solvent (temporal backmapping data)",
        description="Build alanine dipeptide (ff99SB-ILDN, OBC implicit solvent) with OpenMM, run Langevin MD "
                    "and write AA and 6-bead CG trajectories at fixed spacing (aa.xtc, cg.xtc with .pdb "
                    "structures), the mapping (mapping.yaml) and the OpenMM energy system (system.xml). Rerun "
                    "the same command to continue an interrupted run.")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--ns", type=float, default=50.0, help="production length in ns (default 50)")
    p.add_argument("--frame-interval", type=float, default=1.0, help="ps between frames (default 1)")
    p.add_argument("--equilibration", type=float, default=100.0, help="ps of discarded equilibration (default 100)")
    p.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--friction", type=float, default=1.0, help="Langevin friction in 1/ps (default 1)")
    p.add_argument("--timestep", type=float, default=2.0, help="fs (default 2; bonds to H constrained)")
    p.add_argument("--chunk", type=float, default=1000.0, help="ps per resumable chunk (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the conformer, velocities and dynamics (default 0)")
    p.add_argument("--device", metavar="cpu|cuda", help="OpenMM platform CPU or CUDA instead of the default Reference")
    p.add_argument("--platform", help="OpenMM platform by name, instead of --device (default Reference: the fastest "
                                      "for 22 atoms on a CPU core)")
    p.add_argument("--force", action="store_true", help="start over in a folder holding another run")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gdbm.datagen.dipeptide import DipeptideRun, generate
    from gdbm.utils.devices import openmm_platform

    settings = DipeptideRun(length_ns=args.ns, frame_interval_ps=args.frame_interval,
                            equilibration_ps=args.equilibration, temperature=args.temperature,
                            friction=args.friction, timestep_ps=args.timestep / 1000.0, chunk_ps=args.chunk,
                            seed=args.seed, platform=openmm_platform(args.device, args.platform, default="Reference"))
    try:
        record = generate(args.output, settings, command=shlex.join(["gdbm", *sys.argv[1:]]), force=args.force)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM
        print(f"gdbm datagen: interrupted; run the same command again to continue {args.output}", file=sys.stderr)
        return interrupt_exit_code(err)
    print(f"wrote {record['frames']} frames to {args.output} ({record['wall_s_this_call']} s)")
    return 0
