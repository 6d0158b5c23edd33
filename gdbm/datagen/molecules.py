"""Molecules from SMILES: validated, with explicit hydrogens and an RDKit 3D conformer, and named.

A :class:`Species` is one molecule type of a box: its name (GROMACS molecule type and
residue name), its canonical SMILES (the parameter cache key) and how many copies go in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem, Descriptors

from gdbm.utils.errors import InputError

# residue names of .gro files have 5 columns; a letter first keeps them apart from numbers
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,4}")


@dataclass
class Species:
    """One molecule type of a box: ``mol`` has explicit hydrogens and one 3D conformer."""

    name: str
    smiles: str  # canonical isomeric SMILES, hydrogens implicit
    mol: Chem.Mol
    count: int


def parse_smiles(smiles: str) -> Chem.Mol:
    """An RDKit molecule (hydrogens implicit) from ``smiles``; an :class:`InputError` says why not."""
    if not smiles or not smiles.strip():
        raise InputError("empty SMILES; expected a molecule such as CCCCCCCC (octane)")
    RDLogger.DisableLog("rdApp.*")
    try:
        mol = Chem.MolFromSmiles(smiles.strip())
    finally:
        RDLogger.EnableLog("rdApp.*")
    if mol is None:
        raise InputError(f"invalid SMILES {smiles!r}: RDKit cannot parse or sanitise it (check brackets, ring "
                         "closures and valences)")
    if len(Chem.GetMolFrags(mol)) != 1:
        raise InputError(f"SMILES {smiles!r} holds {len(Chem.GetMolFrags(mol))} molecules; give each molecule "
                         "type its own --smiles")
    if Descriptors.NumRadicalElectrons(mol):
        raise InputError(f"SMILES {smiles!r} has unpaired electrons; GAFF2 with AM1-BCC charges needs a "
                         "closed-shell molecule")
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        raise InputError(f"SMILES {smiles!r} has dummy atoms (*); only polymer repeat units may have them")
    return mol


def canonical_smiles(mol: Chem.Mol) -> str:
    """Canonical isomeric SMILES with implicit hydrogens: the same molecule gives the same string."""
    return Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=True)


def check_name(name: str) -> str:
    """``name`` if it can be a GROMACS molecule type and .gro residue name (1-5 characters, letter first)."""
    if not _NAME.fullmatch(name):
        raise InputError(f"molecule name {name!r} must be 1-5 letters, digits or '_', starting with a letter "
                         "(it is the .gro residue name)")
    return name


def embed(mol: Chem.Mol, seed: int) -> Chem.Mol:
    """``mol`` with explicit hydrogens and one 3D conformer (ETKDGv3, then MMFF94 when it has parameters).

    Tetrahedral chirality set on ``mol`` is kept (ETKDG enforces it).
    """
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    params.numThreads = 1
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True  # the usual remedy for large or strained molecules
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise InputError(f"RDKit could not build 3D coordinates for {canonical_smiles(mol)!r}")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    return mol


def species_from_smiles(smiles: str, name: str, count: int, seed: int) -> Species:
    """A validated :class:`Species` with a 3D conformer."""
    if count < 1:
        raise InputError(f"molecule count must be >= 1, got {count} for {smiles!r}")
    mol = parse_smiles(smiles)
    return Species(check_name(name), canonical_smiles(mol), embed(mol, seed), count)


def liquid_species(smiles: list[str], counts: list[int], names: list[str] | None, seed: int) -> list[Species]:
    """The species of a liquid: one per SMILES with its count (``names`` default: MOL, or MOL1, MOL2...)."""
    n = len(smiles)
    if len(counts) != n:
        raise InputError(f"{n} --smiles but {len(counts)} --count; give one count per molecule")
    if names is not None and len(names) != n:
        raise InputError(f"{n} --smiles but {len(names)} --name; give one name per molecule or none")
    names = names or (["MOL"] if n == 1 else [f"MOL{k + 1}" for k in range(n)])
    for s, count in zip(smiles, counts):
        if count < 1:
            raise InputError(f"--count must be >= 1, got {count} for {s!r}")
    return [species_from_smiles(s, name, c, seed) for s, name, c in zip(smiles, names, counts)]
