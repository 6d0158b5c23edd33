"""``gdbm relax``: relax AA frames with their CG beads held, by minimisation and optionally by a thermal run.

Steepest descent (:mod:`gdbm.physics.relax`, the step ``gdbm backmap --relax`` ends with) removes
close contacts with every bead's centre held exactly on its CG position; ``--thermal`` then runs
a short restrained Langevin simulation at the reference temperature (:mod:`gdbm.physics.thermal`),
which gives bonds, angles and rings their thermal widths back. For any AA trajectory with its CG
frames: another method's output, or a backmapped file to try several settings on. Finished frames
go to ``OUTPUT.parts/`` as they end, so a rerun with the same settings continues an interrupted job.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gdbm.utils.errors import InputError

RETRY_STEPS = (100, 300)  # steepest-descent steps before each new try of a frame whose thermal run diverged


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
    p.add_argument("--map", required=True, help="the mapping that made the CG frames (may be partial)")
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
    thermal.add_argument("--seed", type=int, default=0)
    thermal.add_argument("--platform", default="CPU", help="OpenMM platform (default CPU; CUDA, OpenCL, Reference)")
    p.add_argument("-o", "--output", required=True, help="relaxed AA trajectory to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=run)


def _thermal_settings(args: argparse.Namespace):
    """The thermal run the arguments ask for, or None."""
    import torch

    from gdbm.physics.thermal import ThermalSettings, ThermalStage

    if not (args.thermal or args.stage):
        return None
    if args.thermal and args.stage:
        raise InputError("give either --thermal STEPS or --stage ..., not both")
    if args.temperature is None:
        raise InputError("a thermal run needs --temperature (K), the reference simulation's")
    default = ThermalStage(max(args.thermal, 1), args.temperature, args.restraint, args.timestep)
    stages = tuple(ThermalStage.parse(s, default) for s in args.stage) if args.stage else (default,)
    return ThermalSettings(stages, friction=args.friction, minimize_iterations=args.minimize,
                           all_bonds=args.constrain_bonds, seed=args.seed, platform=args.platform,
                           threads=torch.get_num_threads())


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gdbm.sampling.jobs import PartStore
    from gdbm.data.stereo import stereo_template_from_file
    from gdbm.data.trajectory import FrameWriter, check_particle_count, frame_range, read_frames
    from gdbm.physics.energy import EnergyModel
    from gdbm.physics.relax import CentreConstraint, relax
    from gdbm.physics.thermal import ThermalRelaxer
    from gdbm.topology.stereo import StereoFix
    from gdbm.topology.system import load_mapped_system

    output = Path(args.output)
    thermal = _thermal_settings(args)
    if args.steps < 0 or (args.steps == 0 and thermal is None):
        raise InputError("--steps must be >= 1 (or 0 with --thermal)")
    system = load_mapped_system(args.top, args.map, args.cg_itp, parameters=args.parameters, partial=True)
    aa, cg = read_frames(args.aa, args.aa_struct), read_frames(args.cg, args.cg_struct)
    check_particle_count(aa, system.aa.n_atoms, f"the topology {args.top}", args.aa)
    check_particle_count(cg, system.mapping.n_beads, f"the mapping {args.map}", args.cg)
    first = 0
    if args.frames:
        window = frame_range(args.frames, len(aa))
        first = range(len(aa))[window][0]
        aa, cg = aa.subset(window), cg.subset(frame_range(args.frames, len(cg)))
    if len(aa) != len(cg):
        raise InputError(f"{len(aa)} AA frames but {len(cg)} CG frames; one CG frame per AA frame", args.cg)
    job = {key: value for key, value in vars(args).items() if key not in ("run", "force", "command", "threads")}
    store = PartStore(output)
    if output.exists() and not args.force and not store.matches(job):
        raise InputError("exists; pass --force to overwrite", output)
    store.prepare(job, args.force, None)
    model = EnergyModel(system.aa) if args.steps or thermal else None
    relaxer = ThermalRelaxer(system.aa, system.mapping, thermal) if thermal else None
    stereo = StereoFix(stereo_template_from_file(system.aa, args.stereo_from), system.aa) if args.stereo_from else None
    with tqdm(total=len(aa), initial=sum(store.done(f) for f in range(len(aa))), desc="relax", unit="frame") as bar:
        for f in range(len(aa)):
            if store.done(f):
                continue
            store.retry(f)
            start, box = time.perf_counter(), aa.boxes[f].double()
            try:
                x, said = aa.positions[f].double(), f"frame {first + f}:"
                if stereo is not None:
                    fixed, inverted = stereo(x.unsqueeze(0), box.unsqueeze(0))
                    x, said = fixed[0], said + f" {int(inverted[0])} of {len(stereo)} stereocentres inverted,"
                held = CentreConstraint(system.mapping, cg.positions[f:f + 1].double(), system.aa.masses)
                if args.steps:
                    result = relax(x.unsqueeze(0), box.unsqueeze(0), model, args.steps, centres=held,
                                   bonds=args.constrain_bonds)
                    x = result.positions[0]
                    said += f" {float(result.energy_before[0]):.1f} -> {float(result.energy_after[0]):.1f} kJ/mol"
                if relaxer is not None:
                    for extra in (*RETRY_STEPS, None):
                        try:
                            x = relaxer(x, box, cg.positions[f], frame=first + f)
                            break
                        except FloatingPointError:  # contacts OpenMM could not open: descend further, try again
                            if extra is None:
                                raise
                            x = relax(x.unsqueeze(0), box.unsqueeze(0), model, extra, centres=held,
                                      bonds=args.constrain_bonds).positions[0]
                            said += f" diverged, {extra} more steepest-descent steps,"
                    said += " + thermal run"
                store.save(f, x.float())
                bar.write(f"{said} ({time.perf_counter() - start:.1f} s)")
            except Exception as err:  # noqa: BLE001 - a failed frame is reported, the others go on
                store.fail(f, f"{type(err).__name__}: {err}")
                bar.write(f"frame {first + f}: failed: {type(err).__name__}: {err}")
            bar.update(1)
    failed = {first + f: store.error(f) for f in range(len(aa)) if not store.done(f)}
    if failed:
        print(f"{len(failed)} of {len(aa)} frames failed, kept in {store.folder} (a rerun retries them): "
              + "; ".join(f"frame {f}: {why}" for f, why in sorted(failed.items())[:5]))
        return 1
    with FrameWriter(output, list(aa.names), list(aa.resnames), list(aa.resids), True,
                     n_frames=len(aa)) as writer:
        for f in range(len(aa)):
            writer.write(store.load(f).unsqueeze(0), aa.boxes[f:f + 1].float())
    store.remove()
    print(f"wrote {len(aa)} frames to {output}")
    return 0
