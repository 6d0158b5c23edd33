"""The system topology: per-atom properties and force-field terms as index tensors.

A :class:`Topology` describes a whole simulation box (every molecule instance expanded),
so that energies and graphs index atoms globally, in the order of the coordinate files.
Bonded terms are stored per functional form in :class:`Term` objects whose parameters are
already converted to the units used inside gdbm: nm, kJ/mol, radians.

Functional forms (GROMACS manual conventions; r in nm, angles in rad)::

    bond_harmonic      (func 1)  E = 1/2 k (r - b0)^2
    bond_g96           (func 2)  E = 1/4 k (r^2 - b0^2)^2
    angle_harmonic     (func 1)  E = 1/2 k (theta - theta0)^2
    angle_g96          (func 2)  E = 1/2 k (cos theta - cos theta0)^2
    proper_periodic    (func 1, 9; one row per multiple term)
                                 E = k (1 + cos(n phi - phi0))
    proper_rb          (func 3)  E = sum_n c_n cos^n(phi - 180 deg), n = 0..5
    improper_harmonic  (func 2)  E = 1/2 k (xi - xi0)^2, xi - xi0 wrapped to (-pi, pi]
    improper_periodic  (func 4)  E = k (1 + cos(n phi - phi0))
    pair_lj            ([pairs]) E = c12/r^12 - c6/r^6 + f qq / r  (qq already scaled)

Lennard-Jones between non-excluded pairs uses the per-type-pair tables ``lj_c6`` and
``lj_c12`` (combination rule and ``[nonbond_params]`` already applied):
E = c12/r^12 - c6/r^6.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class TermKind:
    """One functional form: its energy category, number of atoms and parameter names."""

    name: str
    category: str  # "bond" | "angle" | "proper" | "improper" | "pair"
    arity: int
    params: tuple[str, ...]


TERM_KINDS: dict[str, TermKind] = {
    k.name: k
    for k in (
        TermKind("bond_harmonic", "bond", 2, ("b0", "k")),
        TermKind("bond_g96", "bond", 2, ("b0", "k")),
        TermKind("angle_harmonic", "angle", 3, ("theta0", "k")),
        TermKind("angle_g96", "angle", 3, ("theta0", "k")),
        TermKind("proper_periodic", "proper", 4, ("phi0", "k", "n")),
        TermKind("proper_rb", "proper", 4, ("c0", "c1", "c2", "c3", "c4", "c5")),
        TermKind("improper_harmonic", "improper", 4, ("xi0", "k")),
        TermKind("improper_periodic", "improper", 4, ("phi0", "k", "n")),
        TermKind("pair_lj", "pair", 2, ("c6", "c12", "qq")),
    )
}


@dataclass
class Term:
    """All instances of one functional form: atom indices ``[m, arity]`` and parameters ``[m]``."""

    kind: str
    index: Tensor  # [m, arity] long, global atom indices
    params: dict[str, Tensor]  # name -> [m] float64

    def __post_init__(self) -> None:
        spec = TERM_KINDS[self.kind]
        if self.index.ndim != 2 or self.index.shape[1] != spec.arity:
            raise ValueError(f"{self.kind}: index must be [m, {spec.arity}], got {tuple(self.index.shape)}")
        missing = set(spec.params) - set(self.params)
        if missing:
            raise ValueError(f"{self.kind}: missing parameters {sorted(missing)}")
        for name, value in self.params.items():
            if value.shape != (self.index.shape[0],):
                raise ValueError(f"{self.kind}.{name}: expected shape [{self.index.shape[0]}]")

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def to(self, device: torch.device | str) -> "Term":
        return Term(self.kind, self.index.to(device), {k: v.to(device) for k, v in self.params.items()})


@dataclass
class LennardJones:
    """Per-atom LJ type indices and the per-type-pair coefficient tables (kJ/mol nm^6, nm^12)."""

    atom_type: Tensor  # [n_atoms] long, index into the tables
    type_names: list[str]
    c6: Tensor  # [T, T] float64
    c12: Tensor  # [T, T] float64


@dataclass(frozen=True)
class MoleculeBlock:
    """One molecule instance of the system: its type name and its atom range."""

    name: str
    start: int
    n_atoms: int

    @property
    def stop(self) -> int:
        return self.start + self.n_atoms


@dataclass
class Topology:
    """A whole system: atoms, connectivity, bonded terms, exclusions and non-bonded parameters.

    ``lj`` is ``None`` for structure-only topologies (e.g. CG ``.itp`` files whose bead types
    carry no parameters); energies then refuse to run rather than silently use zeros.
    """

    names: list[str]
    types: list[str]
    elements: list[str]
    masses: Tensor  # [n] float64, amu
    charges: Tensor  # [n] float64, e
    resids: Tensor  # [n] long, residue number as in the file (per molecule)
    resnames: list[str]
    molecule: Tensor  # [n] long, molecule instance of each atom
    molecules: list[MoleculeBlock]
    connectivity: Tensor  # [b, 2] long, chemical bonds (every [bonds]/[constraints] entry), i < j
    terms: dict[str, Term] = field(default_factory=dict)
    exclusions: Tensor = field(default_factory=lambda: torch.zeros(0, 2, dtype=torch.long))  # [e, 2], i < j
    lj: LennardJones | None = None
    fudge_lj: float = 1.0
    fudge_qq: float = 1.0
    source: str = ""

    @property
    def n_atoms(self) -> int:
        return len(self.names)

    @property
    def n_molecules(self) -> int:
        return len(self.molecules)

    @property
    def has_parameters(self) -> bool:
        return self.lj is not None

    def bonded_neighbours(self) -> list[list[int]]:
        """Per atom, the atoms it is bonded to (``connectivity``), in bond order."""
        neighbours: list[list[int]] = [[] for _ in range(self.n_atoms)]
        for i, j in self.connectivity.tolist():
            neighbours[i].append(j)
            neighbours[j].append(i)
        return neighbours

    def term(self, kind: str) -> Term:
        """The term of ``kind`` (empty if the topology has none)."""
        if kind in self.terms:
            return self.terms[kind]
        spec = TERM_KINDS[kind]
        empty = torch.zeros(0, dtype=torch.float64)
        return Term(kind, torch.zeros(0, spec.arity, dtype=torch.long), {p: empty for p in spec.params})
