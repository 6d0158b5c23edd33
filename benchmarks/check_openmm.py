"""gdbm's energies against OpenMM's, per term, on every written frame of ``gdbm datagen`` outputs.

For each folder (a datagen output: ``topol.top``, ``aa.gro``, ``aa.xtc``), every frame's
bond, angle, dihedral, LJ and reaction-field Coulomb energies from gdbm and from OpenMM
reading the same ``topol.top`` (:func:`gdbm.physics.openmm_reference.per_term_energies`);
prints a Markdown table of the largest relative deviation per term and of the forces.

    python benchmarks/check_openmm.py gdbm/resources/examples/cumene runs/datagen/octane ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gdbm.data import read_frames
from gdbm.physics.openmm_reference import TERMS, per_term_energies


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path)
    args = p.parse_args()
    print("| system | frames | atoms | " + " | ".join(TERMS) + " | forces |")
    print("| --- " * (len(TERMS) + 4) + "|")
    for folder in args.folders:
        frames = read_frames(folder / "aa.xtc", folder / "aa.gro")
        worst = dict.fromkeys(TERMS, 0.0)
        worst_force = 0.0
        for f in range(len(frames)):
            ours, theirs, force = per_term_energies(folder / "topol.top", frames.positions[f].double().numpy(),
                                                    frames.boxes[f].double().numpy())
            for k in TERMS:
                worst[k] = max(worst[k], abs(ours[k] - theirs[k]) / max(abs(theirs[k]), 1e-12))
            worst_force = max(worst_force, force)
        print(f"| {folder.name} | {len(frames)} | {frames.n_particles} | "
              + " | ".join(f"{worst[k]:.1e}" for k in TERMS) + f" | {worst_force:.1e} |")


if __name__ == "__main__":
    main()
