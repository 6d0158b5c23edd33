"""``gdbm cgsim``: fit a CG force field by Boltzmann inversion and run it in OpenMM (argument glue).

The work and the files written: :func:`gdbm.cgsim.workflow.fit_and_run`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from gdbm.cli.common import deprecate
from gdbm.utils.errors import InputError

if TYPE_CHECKING:  # OpenMM is imported when the command runs, not when the parser is built
    from gdbm.cgsim.simulate import RunSettings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``cgsim`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser(
        "cgsim", help="a CG simulation (OpenMM) of a Boltzmann-inverted CG force field",
        description="Fit tabulated CG potentials (bonds, angles, dihedrals per bead-type tuple; pair potentials "
                    "-kT ln g(r) per bead-type pair) to mapped reference CG frames, run Langevin NVT in OpenMM "
                    "from one CG frame in its box, and check the run's distributions against the reference.")
    p.add_argument("--cg-itp", required=True, help="CG topology (.itp): bead names, types and CG bonds")
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
    p.add_argument("--seed", type=int, default=0, help="seed of the starting velocities and the dynamics (default 0)")
    p.add_argument("--device", metavar="cpu|cuda",
                   help="where the simulation runs: cpu (OpenMM platform CPU, the default) or cuda (CUDA)")
    p.add_argument("--platform", help="OpenMM platform by name, instead of --device (CPU, CUDA, OpenCL, Reference)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite the outputs of an earlier run in the folder")
    deprecate(p, "--cg-top", "--cg-itp")
    p.set_defaults(run=run)


def _settings(args: argparse.Namespace) -> RunSettings:
    """The run protocol of the flags; invalid values are one input error naming them."""
    from pydantic import ValidationError

    from gdbm.cgsim.simulate import RunSettings
    from gdbm.utils.devices import openmm_platform

    try:
        return RunSettings(temperature=args.temperature, timestep=args.timestep, friction=args.friction,
                           equilibration=args.equilibration, spacing=args.spacing, n_frames=args.n_frames,
                           bead_mass=args.bead_mass, seed=args.seed,
                           platform=openmm_platform(args.device, args.platform, default="CPU"),
                           threads=max(1, args.threads or 1))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise InputError(f"invalid run settings: {problems}") from None


def run(args: argparse.Namespace) -> int:
    """Run ``gdbm cgsim``."""
    from gdbm.cgsim.workflow import fit_and_run

    terms = tuple(t.strip() for t in args.terms.split(",") if t.strip())
    result = fit_and_run(args.cg_itp, args.ref, args.start, args.output, _settings(args), ref_struct=args.ref_struct,
                         start_struct=args.start_struct, start_frame=args.start_frame, terms=terms,
                         cutoff=args.cutoff, force=args.force)
    metrics, xtc = result.check, Path(args.output) / "cg.xtc"
    worst = max((k for k in metrics if k.startswith("jsd/")), key=lambda k: metrics[k], default=None)
    print(f"{len(result.frames)} CG frames -> {xtc}; largest bonded JSD {worst} = "
          f"{metrics[worst]:.4f}" if worst else f"{len(result.frames)} CG frames -> {xtc}")
    return 0
