"""Linear polymer chains from a monomer, with a chosen tacticity.

The monomer is either a vinyl monomer with one open-chain C=C bond (``C=Cc1ccccc1``,
styrene: the bond opens, the CH2 end is the head) or a repeat unit with two attachment
points (``[*]CC([*])c1ccccc1``: head first). Units are joined head to tail and the chain
ends are capped with hydrogen.

Tacticity is set on the backbone stereocentres, each described in the frame of the chain
(neighbours in the order: backbone towards the head, backbone towards the tail, side
atoms, hydrogens): isotactic = the same configuration on every centre, syndiotactic =
alternating, atactic = random (seeded). :func:`stereo_sequence` reads it back from 3D
coordinates, which is what the force field and the simulation see.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

from gdbm.datagen.molecules import Species, canonical_smiles, check_name, embed, parse_smiles
from gdbm.utils.errors import InputError

TACTICITIES = ("syndiotactic", "isotactic", "atactic")


@dataclass(frozen=True)
class StereoCentre:
    """A backbone stereocentre: the atom and its neighbours in the chain's frame."""

    atom: int
    previous: int  # backbone neighbour towards the head of the chain
    next: int  # backbone neighbour towards the tail
    side: int  # first side atom


@dataclass
class Chain:
    """A built chain (explicit hydrogens, one 3D conformer) and its backbone stereocentres in order."""

    mol: Chem.Mol
    centres: list[StereoCentre]
    configurations: list[int]  # the intended +1 / -1 per centre


def repeat_unit(monomer: str) -> tuple[Chem.Mol, int, int]:
    """``(unit, head, tail)``: the monomer as a repeat unit without attachment atoms, and its two ends."""
    if monomer.count("*") == 2:
        mol = Chem.MolFromSmiles(monomer)
        if mol is None:
            raise InputError(f"invalid monomer SMILES {monomer!r}: RDKit cannot parse it")
        dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
        ends = []
        for d in dummies:
            neighbours = mol.GetAtomWithIdx(d).GetNeighbors()
            if len(neighbours) != 1:
                raise InputError(f"monomer {monomer!r}: each * must be bonded to exactly one atom")
            ends.append(neighbours[0].GetIdx())
        unit = Chem.RWMol(mol)
        for d in sorted(dummies, reverse=True):
            unit.RemoveAtom(d)
        shift = [sum(d < e for d in dummies) for e in ends]
        head, tail = ends[0] - shift[0], ends[1] - shift[1]
        unit = unit.GetMol()
        Chem.SanitizeMol(unit)
        parse_smiles(Chem.MolToSmiles(unit))  # closed shell, one fragment
        return unit, head, tail
    if "*" in monomer:
        raise InputError(f"monomer {monomer!r} has {monomer.count('*')} attachment points (*); a repeat unit "
                         "needs exactly two (head and tail), a vinyl monomer none")
    mol = parse_smiles(monomer)
    vinyl = [b for b in mol.GetBonds() if b.GetBondType() == Chem.BondType.DOUBLE and not b.IsInRing()
             and b.GetBeginAtom().GetAtomicNum() == 6 and b.GetEndAtom().GetAtomicNum() == 6]
    if len(vinyl) != 1:
        raise InputError(f"monomer {monomer!r} has {len(vinyl)} open-chain C=C bonds; a vinyl monomer needs "
                         "exactly one (or give a repeat unit with two attachment points, e.g. [*]CC([*])c1ccccc1)")
    bond = vinyl[0]
    a, b = bond.GetBeginAtom(), bond.GetEndAtom()
    head, tail = (a, b) if a.GetTotalNumHs() >= b.GetTotalNumHs() else (b, a)
    unit = Chem.RWMol(mol)
    unit.GetBondWithIdx(bond.GetIdx()).SetBondType(Chem.BondType.SINGLE)
    unit = unit.GetMol()
    Chem.SanitizeMol(unit)  # implicit hydrogens recounted; the ends get theirs back when the chain is capped
    return unit, head.GetIdx(), tail.GetIdx()


def _backbone_centres(mol: Chem.Mol, paths: list[list[int]]) -> list[StereoCentre]:
    """Tetrahedral stereocentres on the backbone, each with its neighbours in the chain's frame."""
    backbone = [atom for path in paths for atom in path]
    position = {atom: k for k, atom in enumerate(backbone)}
    stereo = {info.centeredOn for info in Chem.FindPotentialStereo(mol)
              if info.type == Chem.StereoType.Atom_Tetrahedral}
    centres = []
    for k, atom in enumerate(backbone):
        if atom not in stereo or k == 0 or k == len(backbone) - 1:
            continue
        prev, nxt = backbone[k - 1], backbone[k + 1]
        others = sorted(n.GetIdx() for n in mol.GetAtomWithIdx(atom).GetNeighbors() if n.GetIdx() not in (prev, nxt))
        if len(others) == 2 and all(o not in position for o in others):
            centres.append(StereoCentre(atom, prev, nxt, others[0]))
    return centres


def _set_configuration(mol: Chem.RWMol, centre: StereoCentre, configuration: int) -> None:
    """Chiral tag so that, in the chain's neighbour order, the centre has ``configuration`` (+1: CCW)."""
    atom = mol.GetAtomWithIdx(centre.atom)
    actual = [n.GetIdx() for n in atom.GetNeighbors()]
    wanted = [centre.previous, centre.next] + sorted(i for i in actual if i not in (centre.previous, centre.next))
    perm = [actual.index(i) for i in wanted]
    odd = sum(perm[i] > perm[j] for i in range(4) for j in range(i + 1, 4)) % 2
    ccw = (configuration > 0) != bool(odd)
    atom.SetChiralTag(Chem.ChiralType.CHI_TETRAHEDRAL_CCW if ccw else Chem.ChiralType.CHI_TETRAHEDRAL_CW)


def configurations(tacticity: str, n: int, seed: int) -> list[int]:
    """+1 / -1 per stereocentre for a tacticity."""
    if tacticity == "isotactic":
        return [1] * n
    if tacticity == "syndiotactic":
        return [1 if k % 2 == 0 else -1 for k in range(n)]
    if tacticity == "atactic":
        return [int(c) for c in np.random.default_rng(seed).choice([-1, 1], size=n)]
    raise InputError(f"unknown tacticity {tacticity!r}; expected one of {', '.join(TACTICITIES)}")


def build_chain(monomer: str, length: int, tacticity: str = "atactic", seed: int = 0) -> Chain:
    """A linear ``length``-mer of ``monomer``, hydrogen-capped, with ``tacticity``, embedded in 3D."""
    if length < 1:
        raise InputError(f"chain length must be >= 1, got {length}")
    if tacticity not in TACTICITIES:
        raise InputError(f"unknown tacticity {tacticity!r}; expected one of {', '.join(TACTICITIES)}")
    unit, head, tail = repeat_unit(monomer)
    n = unit.GetNumAtoms()
    path = list(Chem.GetShortestPath(unit, head, tail)) if head != tail else [head]
    chain = Chem.RWMol()
    for k in range(length):
        chain.InsertMol(unit)
        if k:
            chain.AddBond((k - 1) * n + tail, k * n + head, Chem.BondType.SINGLE)
    Chem.SanitizeMol(chain)
    chain = Chem.RWMol(Chem.AddHs(chain))
    centres = _backbone_centres(chain, [[k * n + a for a in path] for k in range(length)])
    wanted = configurations(tacticity, len(centres), seed)
    for centre, configuration in zip(centres, wanted):
        _set_configuration(chain, centre, configuration)
    mol = chain.GetMol()
    Chem.AssignStereochemistry(mol, cleanIt=True, force=True)
    mol = embed(mol, seed)
    built = stereo_sequence(mol, centres)
    if built != wanted:
        raise InputError(f"RDKit's 3D structure of the {length}-mer of {monomer!r} lost the requested "
                         f"{tacticity} configuration ({built} vs {wanted}); try another --seed")
    return Chain(mol, centres, wanted)


def stereo_sequence(mol: Chem.Mol, centres: list[StereoCentre]) -> list[int]:
    """Configuration (+1 / -1) of each centre read from ``mol``'s 3D conformer.

    The sign of the triple product of (previous, next, side) seen from the centre: the same
    for every centre of an isotactic chain, alternating in a syndiotactic one.
    """
    x = mol.GetConformer().GetPositions()  # [n, 3]
    signs = []
    for c in centres:
        volume = np.linalg.det(np.stack([x[c.previous], x[c.next], x[c.side]]) - x[c.atom])
        signs.append(1 if volume > 0 else -1)
    return signs


def melt_species(monomer: str, length: int, chains: int, tacticity: str, name: str, seed: int
                 ) -> tuple[list[Species], dict]:
    """The one species of a melt of ``chains`` equal chains, and the run record's description of it."""
    if chains < 1:
        raise InputError(f"--chains must be >= 1, got {chains}")
    chain = build_chain(monomer, length, tacticity, seed)
    species = [Species(check_name(name), canonical_smiles(chain.mol), chain.mol, chains)]
    description = {"kind": "polymer", "monomer": monomer, "length": length, "tacticity": tacticity,
                   "configurations": chain.configurations}
    return species, description
