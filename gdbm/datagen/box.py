"""A periodic box packed with molecules by packmol, at a chosen starting density.

packmol places whole molecules at random positions and orientations (seeded) so that atoms
of different molecules are at least ``tolerance`` apart, with periodic images taken into
account (its ``pbc`` keyword). The box starts below liquid density; NPT equilibration
brings it to the density of the force field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gdbm.datagen.tools import run_program
from gdbm.utils.errors import InputError

AMU_NM3_TO_G_CM3 = 1.66053906660e-3  # 1 amu / nm^3 in g/cm^3


def box_length(total_mass: float, density: float) -> float:
    """Edge (nm) of a cubic box holding ``total_mass`` (amu) at ``density`` (g/cm^3)."""
    if not density > 0:
        raise InputError(f"the starting density must be > 0 g/cm^3, got {density}")
    return float((total_mass * AMU_NM3_TO_G_CM3 / density) ** (1.0 / 3.0))


def _xyz(elements: list[str], positions: np.ndarray) -> str:
    lines = [str(len(elements)), "molecule"]
    lines += [f"{e} {x:.6f} {y:.6f} {z:.6f}" for e, (x, y, z) in zip(elements, positions)]
    return "\n".join(lines) + "\n"


def pack(molecules: list[tuple[list[str], np.ndarray, int]], length: float, seed: int, work: Path,
         tolerance: float = 0.2) -> np.ndarray:
    """Positions (nm, ``[n, 3]``) of a cubic periodic box of edge ``length`` nm.

    ``molecules``: per species its elements, positions (nm) and count; the result lists
    all copies of the first species, then of the second, ... each in its atom order.
    packmol's input, output and log stay in the folder ``work``.
    """
    if not length > 2 * tolerance:
        raise InputError(f"box edge {length:.3f} nm is too small to pack molecules {tolerance} nm apart")
    work.mkdir(parents=True, exist_ok=True)
    edge = length * 10.0  # packmol works in Angstrom
    lines = [f"tolerance {tolerance * 10.0:.3f}", "filetype xyz", "output packed.xyz", f"seed {seed}",
             f"pbc 0. 0. 0. {edge:.4f} {edge:.4f} {edge:.4f}"]
    for k, (elements, positions, count) in enumerate(molecules):
        (work / f"species{k}.xyz").write_text(_xyz(elements, positions * 10.0))
        lines += [f"structure species{k}.xyz", f"  number {count}", "end structure"]
    (work / "packmol.inp").write_text("\n".join(lines) + "\n")
    run_program("packmol", [], work, stdin=work / "packmol.inp", expect=("packed.xyz",))
    text = (work / "packed.xyz").read_text().splitlines()
    expected = sum(len(e) * c for e, _, c in molecules)
    coords = np.array([[float(v) for v in line.split()[1:4]] for line in text[2:2 + expected]])
    if coords.shape != (expected, 3):
        raise InputError(f"packmol wrote {len(coords)} atoms, expected {expected}")
    return coords / 10.0
