"""The GROMACS side of a generated box: the AA topology (ParmEd from the tleap prmtops), the CG
topology made from the mappings, and coordinate frames through gdbm's own writers.

``topol.top`` is self-contained (``[defaults]``, ``[atomtypes]``, one ``[moleculetype]`` per
species with parameters on each line), as ParmEd writes it; each species is one residue
named after it. The CG side is one ``<name>_cg.itp`` per species (beads and CG bonds,
no parameters) and a ``cg.top`` listing the molecules, which gdbm reads structure-only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gdbm.utils.atomic_files import atomic_path, write_text
from gdbm.data.frame_writer import write_frames
from gdbm.data.trajectory import Frames
from gdbm.topology.mapping import MoleculeMapping
from gdbm.topology.topology import Topology


def system_structure(prmtops: list[Path], names: list[str], counts: list[int]):
    """The whole box as one ParmEd structure: ``counts[k]`` copies of species ``k``, residues renamed."""
    import parmed

    total = None
    for prmtop, name, count in zip(prmtops, names, counts):
        one = parmed.load_file(str(prmtop)).copy(parmed.Structure)  # an AmberParm would copy its old names
        for residue in one.residues:
            residue.name = name
        block = one * count
        total = block if total is None else total + block
    return total


def write_aa_topology(structure, path: Path, system_name: str) -> Path:
    """``topol.top`` of a ParmEd structure (all molecule types written once, with counts)."""
    import parmed

    gromacs = parmed.gromacs.GromacsTopologyFile.from_structure(structure)
    gromacs.title = system_name
    with atomic_path(path) as tmp:
        gromacs.write(str(tmp))
    return path


def write_cg_itp(mapping: MoleculeMapping, masses: torch.Tensor, path: Path) -> Path:
    """``<name>_cg.itp``: the beads (mass = weighted mass of their atoms) and CG bonds of one molecule type."""
    atom, bead = mapping.membership.T
    bead_mass = torch.zeros(mapping.n_beads, dtype=torch.float64).index_add_(0, bead, mapping.weights * masses[atom])
    lines = [f"; CG topology of {mapping.molecule} (beads from {mapping.source or 'a mapping'}), by gdbm datagen",
             "[ moleculetype ]", "; name  nrexcl", f"{mapping.molecule}  1", "", "[ atoms ]",
             "; nr  type  resnr  residue  atom  cgnr  charge  mass"]
    for b in range(mapping.n_beads):
        lines.append(f"{b + 1:5d} {mapping.bead_types[b]:>5s} 1 {mapping.molecule:>5s} {mapping.bead_names[b]:>5s} "
                     f"{b + 1:5d} 0.0 {float(bead_mass[b]):.4f}")
    lines += ["", "[ bonds ]", "; ai  aj  funct"]
    lines += [f"{i + 1:5d} {j + 1:5d} 1" for i, j in mapping.cg_bonds.tolist()]
    return write_text(path, "\n".join(lines) + "\n")


def write_cg_top(names: list[str], counts: list[int], path: Path, system_name: str) -> Path:
    """``cg.top``: includes each ``<name>_cg.itp`` and lists the molecules."""
    lines = [f'#include "{name}_cg.itp"' for name in names]
    lines += ["", "[ system ]", system_name, "", "[ molecules ]"]
    lines += [f"{name}  {count}" for name, count in zip(names, counts)]
    return write_text(path, "\n".join(lines) + "\n")


def frames_of(topology: Topology, positions: np.ndarray, boxes: np.ndarray, labels: list[str]) -> Frames:
    """:class:`Frames` named after a topology; residues numbered per molecule (1, 2, ...) as in .gro files."""
    return Frames(torch.as_tensor(positions, dtype=torch.float32), torch.as_tensor(boxes, dtype=torch.float32),
                  labels, list(topology.names), list(topology.resnames), (topology.molecule + 1).tolist())


def write_structure_and_trajectory(frames: Frames, gro: Path, xtc: Path) -> None:
    """The first frame as ``.gro`` (the structure file of the ``.xtc``) and all frames as ``.xtc``."""
    write_frames(gro, frames.subset([0]), force=True)
    write_frames(xtc, frames, force=True)
