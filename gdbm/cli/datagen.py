"""``gdbm datagen liquid | polymer``: reference AA + CG data from SMILES (argument glue only)."""

from __future__ import annotations

import argparse
import shlex
import sys

from gdbm.cli.common import GLOBAL_DESTS, deprecate, interrupt_exit_code
from gdbm.cli.datagen_dipeptide import add_parser as add_dipeptide
from gdbm.utils.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``datagen`` (with ``liquid`` and ``polymer``) on the ``gdbm`` subparsers."""
    p = subparsers.add_parser(
        "datagen", help="generate AA + CG reference data from SMILES (GAFF2, OpenMM)",
        description="Build a box of molecules from SMILES, parameterise it with GAFF2 + AM1-BCC (AmberTools), "
                    "equilibrate it in NPT with OpenMM until density and energy are stationary, and write "
                    "decorrelated frames with their GROMACS topology, a CG mapping and the CG frames. Rerun the "
                    "same command to continue an interrupted run.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    liquid = kinds.add_parser("liquid", help="a liquid (or mixture) of small molecules",
                              description="A liquid of one or more molecule types, each given by --smiles and "
                                          "--count (in the same order).")
    liquid.add_argument("--smiles", action="append", required=True, help="a molecule (repeat for a mixture)")
    liquid.add_argument("--count", type=int, action="append", required=True, help="molecules of each --smiles")
    liquid.add_argument("--name", action="append",
                        help="molecule type / residue name of each --smiles (1-5 characters; default MOL, MOL1...)")
    _add_common(liquid)
    liquid.set_defaults(run=run_liquid, subparser=liquid)
    polymer = kinds.add_parser("polymer", help="a melt of linear polymer chains",
                               description="A melt of linear chains built from a monomer: a vinyl monomer "
                                           "(C=Cc1ccccc1, styrene) or a repeat unit with two attachment points "
                                           "([*]CC([*])c1ccccc1).")
    polymer.add_argument("--monomer", required=True, help="monomer SMILES")
    polymer.add_argument("--length", type=int, required=True, help="repeat units per chain")
    polymer.add_argument("--chains", type=int, required=True, help="number of chains")
    polymer.add_argument("--tacticity", default="atactic", help="syndiotactic, isotactic or atactic (default)")
    polymer.add_argument("--name", default="POL", help="molecule type / residue name (default POL)")
    _add_common(polymer)
    polymer.set_defaults(run=run_polymer, subparser=polymer)
    add_dipeptide(kinds)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--temperature", type=float, required=True, help="temperature in K")
    p.add_argument("--pressure", type=float, default=1.0, help="pressure in bar (default 1)")
    p.add_argument("--n-frames", type=int, required=True, help="decorrelated production frames to write")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of conformers, packing, velocities and dynamics "
                                                       "(default 0)")
    p.add_argument("--cutoff", type=float, default=1.0, help="non-bonded cutoff in nm (default 1.0)")
    p.add_argument("--timestep", type=float, default=2.0, help="time step in fs (default 2; H bonds constrained)")
    p.add_argument("--sample-interval", type=float, default=1.0,
                   help="ps between density/energy samples of the equilibration (default 1)")
    p.add_argument("--compression-pressure", type=float, default=1000.0,
                   help="bar of a first NPT stage that closes the voids of the packed box, run until its density "
                        "is stationary (default 1000; 0: none)")
    p.add_argument("--max-equilibration", type=float, default=2000.0,
                   help="ps per NPT stage after which an unstationary run stops (default 2000; may be raised on "
                        "a rerun)")
    p.add_argument("--min-uncorrelated", type=int, default=25,
                   help="independent samples the stationary part must hold (default 25)")
    p.add_argument("--min-spacing", type=float, default=0.0,
                   help="lower bound in ps on the spacing of frames (default 0: the statistical inefficiency)")
    p.add_argument("--initial-density", type=float, default=0.5, help="packing density in g/cm^3 (default 0.5)")
    p.add_argument("--charges", choices=("bcc", "gas"), default="bcc",
                   help="atomic charges: bcc (AM1-BCC, default) or gas (Gasteiger, fast and crude)")
    p.add_argument("--rules", help="fragment rules for the CG mapping (YAML; default: the built-in rules)")
    p.add_argument("--mapping", action="append", default=[],
                   help="your own mapping (gdbm YAML) for the molecule it names, instead of the rules")
    p.add_argument("--cache", help="parameter cache folder (default ~/.cache/gdbm/datagen)")
    p.add_argument("--device", metavar="cpu|cuda",
                   help="where the MD runs: cpu (OpenMM platform CPU) or cuda (CUDA); default: OpenMM's fastest")
    p.add_argument("--platform", help="OpenMM platform by name, instead of --device (CPU, CUDA, OpenCL, Reference)")
    p.add_argument("--force", action="store_true", help="start over in an output folder holding another run")
    deprecate(p, "--frames", "--n-frames")


def command_line(args: argparse.Namespace) -> str:
    """The full command, every option spelled out (defaults included), to rerun exactly this run."""
    words = ["gdbm"] + (["--threads", str(args.threads)] if args.threads is not None else [])
    words += ["datagen", args.kind]
    for action in args.subparser._actions:
        if not action.option_strings or action.dest in ("help", *GLOBAL_DESTS):
            continue
        value, flag = getattr(args, action.dest), action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            words += [flag] if value else []
        elif isinstance(value, list):
            for item in value:
                words += [flag, str(item)]
        elif value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def _settings(args: argparse.Namespace):
    from gdbm.datagen.simulate import MDSettings
    from gdbm.utils.devices import openmm_platform

    return MDSettings(temperature=args.temperature, pressure=args.pressure, cutoff=args.cutoff,
                      timestep=args.timestep / 1000.0, sample_interval=args.sample_interval,
                      max_equilibration=args.max_equilibration, compression_pressure=args.compression_pressure,
                      min_uncorrelated=args.min_uncorrelated, min_spacing=args.min_spacing, seed=args.seed,
                      platform=openmm_platform(args.device, args.platform, default=None), threads=args.threads)


def _generate(args: argparse.Namespace, species: list, description: dict) -> int:
    from gdbm.datagen.mapping import DEFAULT_RULES, load_rules, own_mappings
    from gdbm.datagen.pipeline import Job, generate

    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    job = Job(species, _settings(args), args.n_frames, charges=args.charges, initial_density=args.initial_density,
              rules=load_rules(args.rules) if args.rules else DEFAULT_RULES, mappings=own_mappings(args.mapping),
              description=description)
    try:
        record = generate(job, args.output, command=command_line(args), cache=args.cache, force=args.force)
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM
        print(f"gdbm datagen: interrupted; run the same command again to continue {args.output}", file=sys.stderr)
        return interrupt_exit_code(err)
    r = record["results"]
    print(f"wrote {r['frames']} frames to {args.output}: density {r['density_g_cm3']:.4f} g/cm^3, stationary from "
          f"{r['stationary_from_ps']:.1f} ps, frames {r['frame_spacing_ps']:.3g} ps apart")
    return 0


def run_liquid(args: argparse.Namespace) -> int:
    """Run ``gdbm datagen liquid``."""
    from gdbm.datagen.molecules import liquid_species

    return _generate(args, liquid_species(args.smiles, args.count, args.name, args.seed), {"kind": "liquid"})


def run_polymer(args: argparse.Namespace) -> int:
    """Run ``gdbm datagen polymer``."""
    from gdbm.datagen.polymer import melt_species

    species, description = melt_species(args.monomer, args.length, args.chains, args.tacticity, args.name, args.seed)
    return _generate(args, species, description)
