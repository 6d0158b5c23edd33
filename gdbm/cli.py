"""The ``gdbm`` command line: argument parsing only; the work is done by library functions.

Each subcommand is registered by one ``_add_<name>`` function on the shared subparsers
object and runs through one ``_run_<name>`` function. Bad input (an
:class:`~gdbm.errors.InputError`) ends the program with a one-line message on stderr and
exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from gdbm import __version__
from gdbm.analysis.cli import add_parser as _add_eval
from gdbm.backmap_cli import add_parser as _add_backmap
from gdbm.baselines.cli import add_parser as _add_baseline
from gdbm.cgsim.cli import add_parser as _add_cgsim
from gdbm.datagen.cli import add_parser as _add_datagen
from gdbm.demo import add_parser as _add_demo
from gdbm.atomic import write_text
from gdbm.errors import InputError
from gdbm.morph_cli import add_parser as _add_morph
from gdbm.order_cli import add_parser as _add_order
from gdbm.relax_cli import add_parser as _add_relax
from gdbm.study.cli import add_parser as _add_study
from gdbm.temporal.cli import add_fit_parser as _add_fit_temporal
from gdbm.training.cli import add_parser as _add_fit


def write_json(path: Path, data: Any, force: bool) -> None:
    """Write ``data`` as JSON atomically (temp file + rename); keep an existing file unless ``force``."""
    write_text(path, json.dumps(data, indent=1) + "\n", force)


# --- gdbm energy -----------------------------------------------------------------------


def _add_energy(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("energy", help="force-field energies per frame and term (kJ/mol)",
                              description="Per-frame, per-term force-field energies of AA frames (kJ/mol).")
    p.add_argument("--top", required=True, help="GROMACS topology (.top, or .itp with --parameters)")
    p.add_argument("--traj", required=True, help="frames: .gro/.pdb/.xtc/.trr/.dcd or a folder of .gro files")
    p.add_argument("--struct", help="structure file (.gro/.pdb) naming the atoms of a .xtc/.trr/.dcd")
    p.add_argument("--cutoff", type=float, default=1.0, help="non-bonded cutoff in nm (default 1.0)")
    p.add_argument("--coulomb", choices=("none", "cutoff", "reaction_field"), default="none",
                   help="electrostatics (default none: coulomb reported as 0)")
    p.add_argument("--epsilon-rf", type=float, default=float("inf"),
                   help="reaction-field dielectric (default inf; 0 also means inf, as in GROMACS)")
    p.add_argument("--parameters", help="supplementary parameter file in GROMACS syntax ([atomtypes], ...)")
    p.add_argument("-o", "--output", help="write JSON here instead of printing a table")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=_run_energy)


def _print_energy_table(labels: list[str], rows: list[dict[str, float]]) -> None:
    names = list(rows[0]) if rows else []
    width = max([5, *map(len, labels)])
    print(f"{'frame':<{width}}" + "".join(f"{n:>14}" for n in names) + "   (kJ/mol)")
    for label, row in zip(labels, rows):
        print(f"{label:<{width}}" + "".join(f"{row[n]:14.4f}" for n in names))


def _run_energy(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from gdbm.data.trajectory import check_particle_count, read_frames
    from gdbm.physics import EnergyModel
    from gdbm.topology import read_topology

    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not args.force:
        raise InputError("exists; pass --force to overwrite", output)
    topology = read_topology(args.top, parameters=args.parameters)
    frames = read_frames(args.traj, args.struct)
    check_particle_count(frames, topology.n_atoms, f"the topology {args.top}", args.traj)
    model = EnergyModel(topology, cutoff=args.cutoff, coulomb=args.coulomb, epsilon_rf=args.epsilon_rf)
    rows = []
    with torch.no_grad():
        for f in tqdm(range(len(frames)), desc="energy", unit="frame", disable=None):
            box = frames.boxes[f].double()
            # float64 from the float32 file coordinates: constrained bonds sit within 1e-4 nm of b0
            energies = model(frames.positions[f].double(), box if bool(box.any()) else None)
            rows.append({name: float(value) for name, value in energies.as_dict().items()})
    if output is None:
        _print_energy_table(frames.labels, rows)
    else:
        write_json(output, {"cutoff_nm": args.cutoff, "frames": rows}, args.force)
    return 0


# --- entry point -----------------------------------------------------------------------

_SUBCOMMANDS = (_add_energy, _add_fit, _add_order, _add_backmap, _add_morph, _add_relax, _add_eval, _add_baseline,
                _add_datagen, _add_demo, _add_fit_temporal, _add_study, _add_cgsim)


def build_parser() -> argparse.ArgumentParser:
    """The ``gdbm`` parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="gdbm", description="Machine-learned backmapping of coarse-grained "
                                     "molecular structures.")
    parser.add_argument("--version", action="version", version=f"gdbm {__version__}")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's choice; use 1 when other jobs share the cores)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``gdbm`` with ``argv`` (default: the process arguments); returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        import torch

        if args.threads < 1:
            print("gdbm: error: --threads must be >= 1", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    try:
        return args.run(args)
    except InputError as err:
        message = " ".join(str(err).split())
        print(f"gdbm {args.command}: error: {message}", file=sys.stderr)
        return 2
