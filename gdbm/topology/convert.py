"""Conversions of a topology (one molecule or the whole system) to RDKit and ASE objects.

RDKit and ASE work in Angstrom: positions and cells (nm inside gdbm) are multiplied by 10.
"""

from __future__ import annotations

import ase
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds
from torch import Tensor

from gdbm.utils.errors import InputError
from gdbm.topology.elements import UNKNOWN, guess_element
from gdbm.topology.topology import Topology

NM_TO_ANGSTROM = 10.0


def _atom_range(top: Topology, molecule: int | None) -> tuple[int, int]:
    if molecule is None:
        return 0, top.n_atoms
    block = top.molecules[molecule]
    return block.start, block.stop


def elements_of(top: Topology, molecule: int | None = None) -> list[str]:
    """Element symbols from the topology, or guessed from type and mass where it has none."""
    start, stop = _atom_range(top, molecule)
    out = []
    for i in range(start, stop):
        element = top.elements[i] if top.elements[i] not in ("", UNKNOWN) else \
            guess_element(top.types[i], float(top.masses[i]))
        if element == UNKNOWN:
            raise InputError(f"atom {i + 1} ({top.names[i]}, type {top.types[i]}, mass {float(top.masses[i])}) is "
                             "not a chemical element; expected an all-atom topology", top.source or None)
        out.append(element)
    return out


def to_rdkit(top: Topology, positions: Tensor | None = None, *, molecule: int | None = None,
             perceive: bool = True) -> Chem.Mol:
    """An RDKit molecule of molecule instance ``molecule`` (default: the whole system).

    Bonds come from the connectivity; with ``perceive`` their orders and aromaticity are
    determined from the valences (``DetermineBondOrders``, total charge from the partial
    charges) and the molecule is sanitised. ``positions [n_atoms, 3]`` (nm, whole system)
    become a conformer.
    """
    start, stop = _atom_range(top, molecule)
    mol = Chem.RWMol()
    for element in elements_of(top, molecule):
        atom = Chem.Atom(element)
        atom.SetNoImplicit(True)  # all-atom: hydrogens are explicit
        mol.AddAtom(atom)
    inside = ((top.connectivity >= start) & (top.connectivity < stop)).all(1)  # [b]
    for i, j in (top.connectivity[inside] - start).tolist():
        mol.AddBond(i, j, Chem.BondType.SINGLE)
    mol = mol.GetMol()
    conformer = Chem.Conformer(stop - start)
    if positions is not None:
        for k, xyz in enumerate((positions[start:stop].detach().double().cpu() * NM_TO_ANGSTROM).tolist()):
            conformer.SetAtomPosition(k, xyz)
    mol.AddConformer(conformer, assignId=True)  # DetermineBondOrders needs one, even unused
    if perceive:
        charge = round(float(top.charges[start:stop].sum()))
        rdDetermineBonds.DetermineBondOrders(mol, charge=charge)
        Chem.SanitizeMol(mol)
    if positions is None:
        mol.RemoveAllConformers()
    return mol


def to_ase(top: Topology, positions: Tensor, box: Tensor | None = None, *, molecule: int | None = None) -> ase.Atoms:
    """ASE ``Atoms`` of molecule ``molecule`` (default: the whole system) at ``positions [n_atoms, 3]``
    (nm, whole system); with ``box [3, 3]`` (rows = box vectors, nm) the cell and ``pbc=True``."""
    start, stop = _atom_range(top, molecule)
    xyz = positions[start:stop].detach().double().cpu() * NM_TO_ANGSTROM
    atoms = ase.Atoms(symbols=elements_of(top, molecule), positions=xyz.numpy(),
                      masses=top.masses[start:stop].numpy(), charges=top.charges[start:stop].numpy())
    if box is not None:
        atoms.set_cell((box.detach().double().cpu() * NM_TO_ANGSTROM).numpy())
        atoms.set_pbc(True)
    return atoms
