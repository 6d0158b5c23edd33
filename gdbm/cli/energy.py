"""``gdbm energy``: force-field energies per frame and term (argument glue over
:func:`gdbm.analysis.energy_table.frame_energies`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gdbm.cli.common import add_no_pbc, deprecate
from gdbm.utils.atomic_files import write_text
from gdbm.utils.errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``energy`` on the ``gdbm`` subparsers."""
    p = subparsers.add_parser("energy", help="force-field energies per frame and term (kJ/mol)",
                              description="Per-frame, per-term force-field energies of AA frames (kJ/mol).")
    p.add_argument("--top", required=True, help="GROMACS topology (.top, or .itp with --parameters)")
    p.add_argument("--aa", required=True, help="AA frames: .gro/.pdb/.xtc/.trr/.dcd or a folder of .gro files")
    p.add_argument("--aa-struct", help="structure file (.gro/.pdb) naming the atoms of a .xtc/.trr/.dcd")
    p.add_argument("--cutoff", type=float, default=1.0, help="non-bonded cutoff in nm (default 1.0)")
    p.add_argument("--coulomb", choices=("none", "cutoff", "reaction_field"), default="none",
                   help="electrostatics (default none: coulomb reported as 0)")
    p.add_argument("--epsilon-rf", type=float, default=float("inf"),
                   help="reaction-field dielectric (default inf; 0 also means inf, as in GROMACS)")
    p.add_argument("--parameters", help="supplementary parameter file in GROMACS syntax ([atomtypes], ...)")
    p.add_argument("-o", "--output", help="write JSON here instead of printing a table")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    add_no_pbc(p, "frames")
    deprecate(p, "--traj", "--aa")
    deprecate(p, "--struct", "--aa-struct")
    p.set_defaults(run=run)


def _print_table(labels: list[str], rows: list[dict[str, float]]) -> None:
    names = list(rows[0]) if rows else []
    width = max([5, *map(len, labels)])
    print(f"{'frame':<{width}}" + "".join(f"{n:>14}" for n in names) + "   (kJ/mol)")
    for label, row in zip(labels, rows):
        print(f"{label:<{width}}" + "".join(f"{row[n]:14.4f}" for n in names))


def run(args: argparse.Namespace) -> int:
    from gdbm.analysis.energy_table import frame_energies
    from gdbm.data.trajectory import check_particle_count, read_frames
    from gdbm.topology import read_topology

    output = Path(args.output) if args.output else None
    if output is not None and output.exists() and not args.force:
        raise InputError("exists; pass --force to overwrite", output)
    topology = read_topology(args.top, parameters=args.parameters)
    frames = read_frames(args.aa, args.aa_struct, allow_no_box=args.no_pbc)
    check_particle_count(frames, topology.n_atoms, f"the topology {args.top}", args.aa,
                         names=topology.names)
    rows = frame_energies(topology, frames, args.cutoff, args.coulomb, args.epsilon_rf)
    if output is None:
        _print_table(frames.labels, rows)
    else:
        write_text(output, json.dumps({"cutoff_nm": args.cutoff, "frames": rows}, indent=1) + "\n", args.force)
    return 0
