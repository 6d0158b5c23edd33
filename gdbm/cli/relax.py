"""``gdbm relax``: relax AA frames with their CG beads held, by minimisation and optionally by a thermal run.

Argument glue for :func:`gdbm.sampling.refine.relax_trajectory`, which says what the steps do.
Finished frames go to ``OUTPUT.parts/`` as they end, so a rerun with the same settings continues
an interrupted job.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gdbm.cli.common import SEVERAL_MAPS, MappingFiles, deprecate
from gdbm.utils.errors import InputError

if TYPE_CHECKING:
    from gdbm.physics.thermal import ThermalSettings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``relax`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("relax", help="relax AA frames with their CG beads held (minimisation, thermal run)",
                              description="Steepest descent on the force field, every CG bead's centre held on "
                                          "its CG position (and optionally every bond at b0); with --thermal, "
                                          "then a short Langevin run in OpenMM with each bead centre restrained.")
    p.add_argument("--top", required=True, help="AA topology with force-field parameters")
    p.add_argument("--parameters", help="supplementary parameter file in GROMACS syntax")
    p.add_argument("--aa", required=True, help="AA frames to relax")
    p.add_argument("--aa-struct", help="structure file naming the atoms of an .xtc")
    p.add_argument("--cg-map", action=MappingFiles, required=True,
                   help="the mapping that made the CG frames (may be partial), whose bead centres are held"
                        + SEVERAL_MAPS)
    p.add_argument("--cg-itp", help="CG topology (default: found beside the mapping)")
    p.add_argument("--cg", required=True, help="CG frames, one per AA frame")
    p.add_argument("--cg-struct", help="structure file naming the beads of a CG .xtc")
    p.add_argument("--frames", help="relax frames START:STOP only (of both files)")
    p.add_argument("--steps", type=int, default=50,
                   help="steepest-descent steps, beads held exactly (default 50; 0 = none, with --thermal)")
    p.add_argument("--constrain-bonds", action="store_true",
                   help="keep every bond at b0 (with --thermal: every bond constrained, else bonds to hydrogen)")
    p.add_argument("--stereo-from", metavar="AA_STRUCTURE",
                   help="first invert every stereocentre handed unlike in this AA structure of the system "
                        "(e.g. a training frame: the tacticity of a polymer, the L form of amino acids)")
    thermal = p.add_argument_group("thermal run (after the steepest descent)")
    thermal.add_argument("--thermal", type=int, default=0, metavar="STEPS",
                         help="Langevin steps, each bead centre restrained on its CG position (default 0 = off)")
    thermal.add_argument("--temperature", type=float, help="K, the reference simulation's (required with --thermal)")
    thermal.add_argument("--restraint", type=float, default=5.0e4,
                         help="kJ/mol/nm^2 on each bead centre's distance from its CG position (default 5e4)")
    thermal.add_argument("--timestep", type=float, default=0.002, help="ps (default 0.002)")
    thermal.add_argument("--friction", type=float, default=10.0, help="1/ps (default 10)")
    thermal.add_argument("--stage", action="append", metavar="STEPS[,T[,K[,DT]]]",
                         help="run stages in order instead of one --thermal run, each with its own steps, "
                              "temperature, restraint and time step (the ones left out as above); repeatable")
    thermal.add_argument("--minimize", type=int, default=50, metavar="ITERATIONS",
                         help="L-BFGS iterations in OpenMM before the run (default 50)")
    thermal.add_argument("--seed", type=int, default=0, help="seed of the Langevin integrator (default 0)")
    thermal.add_argument("--device", metavar="cpu|cuda",
                         help="where the thermal run goes: cpu (OpenMM platform CPU, the default) or cuda (CUDA); "
                              "the steepest descent runs on the CPU")
    thermal.add_argument("--platform", help="OpenMM platform by name, instead of --device (CPU, CUDA, OpenCL, "
                                            "Reference)")
    p.add_argument("-o", "--output", required=True,
                   help="relaxed AA trajectory to write (.xtc, .dcd, .trr, .pdb, .gro for one frame)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    deprecate(p, "--map", "--cg-map")
    p.set_defaults(run=run)


def _thermal_settings(args: argparse.Namespace) -> ThermalSettings | None:
    """The thermal run the arguments ask for, or None."""
    if not (args.thermal or args.stage):
        return None
    import torch

    from gdbm.physics.thermal import ThermalSettings, ThermalStage
    from gdbm.utils.devices import openmm_platform

    if args.thermal and args.stage:
        raise InputError("give either --thermal STEPS or --stage ..., not both")
    if args.temperature is None:
        raise InputError("a thermal run needs --temperature (K), the reference simulation's")
    default = ThermalStage(max(args.thermal, 1), args.temperature, args.restraint, args.timestep)
    stages = tuple(ThermalStage.parse(s, default) for s in args.stage) if args.stage else (default,)
    return ThermalSettings(stages, friction=args.friction, minimize_iterations=args.minimize,
                           all_bonds=args.constrain_bonds, seed=args.seed,
                           platform=openmm_platform(args.device, args.platform, default="CPU"),
                           threads=torch.get_num_threads())


def run(args: argparse.Namespace) -> int:
    from gdbm.sampling.refine import relax_trajectory

    report = relax_trajectory(args.aa, args.cg, args.top, args.cg_map, args.output, aa_struct=args.aa_struct,
                              cg_struct=args.cg_struct, cg_itp=args.cg_itp, parameters=args.parameters,
                              frames=args.frames, steps=args.steps, constrain_bonds=args.constrain_bonds,
                              stereo_from=args.stereo_from, thermal=_thermal_settings(args), force=args.force)
    if report.failed:
        print(f"{len(report.failed)} of {report.frames} frames failed, kept in {report.parts} (a rerun retries "
              f"them): " + "; ".join(f"frame {f}: {why}" for f, why in sorted(report.failed.items())[:5]))
        return 1
    print(f"wrote {report.frames} frames to {report.output}")
    return 0
