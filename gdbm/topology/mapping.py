"""AA -> CG mappings: which atoms make each bead, with what weight, and which bead rebuilds each atom.

Two notions are kept apart because the published data needs both:

- ``membership`` (atom, bead) with ``weights``: how bead positions are computed from atoms,
  by centre of mass (``com``: weight x mass) or centre of geometry (``cog``: weight only).
  An atom may belong to several beads (the sPS backbone CH shared half/half) or to none
  (a mapping used only to compute bead positions may leave atoms out).
- ``home_bead``: the one bead each atom is reconstructed with (DBM's ``.map``), plus the
  per-atom ``prior_types`` (the force-field type of DBM's energy prior) and per-bead
  ``align`` (fixpoint bead giving the local z axis) and ``mult`` (oversampling multiplicity).

A :class:`MoleculeMapping` describes one molecule type (local, 0-based indices); the
:func:`expand_mapping` of it over a system gives a :class:`SystemMapping` with global indices
that maps AA frames to CG frames (:meth:`SystemMapping.map_positions`), periodic boundaries
included. File formats are in :mod:`gdbm.topology.mapfiles`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.utils.errors import InputError
from gdbm.utils.pbc import minimum_image
from gdbm.topology.topology import MoleculeBlock, Topology

CENTERS = ("com", "cog")
# the 27 integer image shifts {-1, 0, 1}^3, searched around the rounded fractional image


@dataclass(eq=False)
class MoleculeMapping:
    """The AA -> CG mapping of one molecule type; all indices local and 0-based.

    ``membership`` is kept sorted by (bead, atom) so that equal mappings have equal tensors.
    ``home_bead`` is -1 and ``prior_types`` is ``""`` for atoms a partial mapping leaves out;
    ``align`` is -1 for beads without a fixpoint.
    """

    molecule: str
    n_atoms: int
    bead_names: list[str]  # per bead, from the CG topology
    bead_types: list[str]  # per bead, from the CG topology
    bead_labels: list[str]  # per bead, the mapping file's own bead name (DBM: BB, SC, B, A)
    cg_bonds: Tensor  # [c, 2] long, bead pairs, i < j
    membership: Tensor  # [m, 2] long, (atom, bead)
    weights: Tensor  # [m] float64, >= 0
    home_bead: Tensor  # [n_atoms] long
    prior_types: list[str]  # [n_atoms]
    align: Tensor  # [n_beads] long
    mult: Tensor  # [n_beads] long, >= 1
    center: str = "com"
    source: str = ""

    def __post_init__(self) -> None:
        n_beads = len(self.bead_names)
        if self.center not in CENTERS:
            raise ValueError(f"center must be one of {CENTERS}, got {self.center!r}")
        if not (len(self.bead_types) == len(self.bead_labels) == n_beads == len(self.align) == len(self.mult)):
            raise ValueError("bead names, types, labels, align and mult must have one entry per bead")
        if len(self.home_bead) != self.n_atoms or len(self.prior_types) != self.n_atoms:
            raise ValueError("home_bead and prior_types must have one entry per atom")
        atom, bead = self.membership.T
        if len(atom) and (atom.min() < 0 or atom.max() >= self.n_atoms or bead.min() < 0 or bead.max() >= n_beads):
            raise ValueError("membership indices out of range")
        if not bool(((self.weights >= 0) & torch.isfinite(self.weights)).all()):
            raise ValueError("weights must be finite numbers >= 0")
        total = torch.zeros(n_beads, dtype=torch.float64).index_add_(0, bead, self.weights)  # [n_beads]
        if bool((total <= 0).any()):
            empty = (torch.nonzero(total <= 0).flatten() + 1).tolist()
            raise ValueError(f"beads {empty} have no atom with a positive weight")
        order = torch.argsort(bead * max(self.n_atoms, 1) + atom)  # canonical (bead, atom) order
        self.membership, self.weights = self.membership[order], self.weights[order]

    @property
    def n_beads(self) -> int:
        return len(self.bead_names)

    @property
    def is_complete(self) -> bool:
        """Whether every atom has a home bead (needed to reconstruct; not to map positions)."""
        return bool((self.home_bead >= 0).all())


def molecule_block(top: Topology, name: str | None = None) -> MoleculeBlock:
    """The first instance of molecule type ``name`` (default: the first molecule) in ``top``."""
    for block in top.molecules:
        if name is None or block.name == name:
            return block
    raise InputError(f"no molecule {name!r}; the topology has {sorted({b.name for b in top.molecules})}",
                     top.source or None)


def block_bonds(top: Topology, block: MoleculeBlock) -> Tensor:
    """Bonds of one molecule instance with local indices, ``[b, 2]`` long."""
    bonds = top.connectivity  # [B, 2]
    inside = (bonds >= block.start).all(1) & (bonds < block.stop).all(1)  # [B]
    return bonds[inside] - block.start


@dataclass(eq=False)
class SystemMapping:
    """A mapping expanded over a whole system: global atom and bead indices.

    ``coef`` are the normalised per-member coefficients (weight x mass for ``com``, weight
    for ``cog``, summing to 1 per bead); ``reference`` is the atom each bead's members are
    unwrapped against (its member with the largest coefficient).
    """

    membership: Tensor  # [M, 2] long, (atom, bead)
    weights: Tensor  # [M] float64
    coef: Tensor  # [M] float64
    reference: Tensor  # [n_beads] long, atom index
    home_bead: Tensor  # [n_atoms] long, -1 where a partial mapping has none
    prior_types: list[str]  # [n_atoms]
    bead_names: list[str]
    bead_types: list[str]
    bead_labels: list[str]
    bead_molecule: Tensor  # [n_beads] long, molecule instance
    cg_bonds: Tensor  # [c, 2] long
    align: Tensor  # [n_beads] long, -1 = none
    mult: Tensor  # [n_beads] long

    @property
    def n_atoms(self) -> int:
        return len(self.home_bead)

    @property
    def n_beads(self) -> int:
        return len(self.bead_names)

    def map_positions(self, positions: Tensor, boxes: Tensor | None = None) -> Tensor:
        """Bead positions ``[F, n_beads, 3]`` from atom positions ``[F, n_atoms, 3]`` (or ``[n, 3]``).

        With ``boxes [F, 3, 3]`` (or one ``[3, 3]`` box for all frames) each bead's atoms are
        unwrapped against its reference atom by minimum image first (frames hold atoms wrapped
        one by one). Differentiable in the positions. Beads are not wrapped back into the box.
        """
        single = positions.dim() == 2
        if single:
            positions = positions.unsqueeze(0)
        if positions.shape[1] != self.n_atoms:
            raise ValueError(f"positions hold {positions.shape[1]} atoms, the mapping {self.n_atoms}")
        atom, bead = self.membership.T  # [M], [M]
        ref = positions[:, self.reference]  # [F, n_beads, 3]
        d = positions[:, atom] - ref[:, bead]  # [F, M, 3]
        if boxes is not None:
            d = minimum_image(d, boxes.to(positions).expand(positions.shape[0], 3, 3))
        coef = self.coef.to(positions).unsqueeze(-1)  # [M, 1]
        offset = torch.zeros_like(ref).index_add(1, bead, coef * d)  # [F, n_beads, 3]
        beads = ref + offset
        return beads[0] if single else beads


def expand_mapping(mappings: MoleculeMapping | list[MoleculeMapping], aa: Topology, cg: Topology) -> SystemMapping:
    """Expand per-type mappings over the molecule instances of an AA and a CG topology.

    Instances are matched in order: the i-th AA molecule with the i-th CG molecule, both of
    the same type name, mapped by the mapping of that name. Raises :class:`InputError`
    naming the files when counts, names or bead types disagree.
    """
    by_name = {m.molecule: m for m in ([mappings] if isinstance(mappings, MoleculeMapping) else mappings)}
    if len(aa.molecules) != len(cg.molecules):
        raise InputError(f"{len(aa.molecules)} molecules in the AA topology but {len(cg.molecules)} in the CG "
                         f"topology {_source(cg)}", _source(aa))
    per_instance = [_matched(k, a, c, by_name, aa, cg) for k, (a, c) in enumerate(zip(aa.molecules, cg.molecules))]
    # molecules are contiguous and in order, so per-instance pieces concatenate in global order
    starts = [(a.start, c.start) for a, c in zip(aa.molecules, cg.molecules)]
    membership = torch.cat([m.membership + torch.tensor(s) for m, s in zip(per_instance, starts)])  # [M, 2]
    weights = torch.cat([m.weights for m in per_instance])  # [M]
    atom, bead = membership.T
    scale = torch.cat([aa.masses[a.start:a.stop] if m.center == "com" else torch.ones(a.n_atoms, dtype=torch.float64)
                       for m, a in zip(per_instance, aa.molecules)])  # [n_atoms]
    coef = weights * scale[atom]  # [M]
    coef = coef / torch.zeros(cg.n_atoms, dtype=torch.float64).index_add_(0, bead, coef)[bead]

    def shifted(local: list[Tensor], offsets: list[int]) -> Tensor:
        return torch.cat([torch.where(t >= 0, t + o, -1) for t, o in zip(local, offsets)])

    bead0 = [c.start for c in cg.molecules]
    return SystemMapping(
        membership=membership, weights=weights, coef=coef, reference=_reference_atoms(membership, coef, cg.n_atoms),
        home_bead=shifted([m.home_bead for m in per_instance], bead0),
        prior_types=_per_instance(per_instance, "prior_types"),
        bead_names=_per_instance(per_instance, "bead_names"), bead_types=_per_instance(per_instance, "bead_types"),
        bead_labels=_per_instance(per_instance, "bead_labels"), bead_molecule=cg.molecule.clone(),
        cg_bonds=torch.cat([m.cg_bonds + o for m, o in zip(per_instance, bead0)]),
        align=shifted([m.align for m in per_instance], bead0),
        mult=torch.cat([m.mult for m in per_instance]),
    )


def _source(top: Topology) -> str:
    return top.source or "<topology>"


def _matched(k: int, a: MoleculeBlock, c: MoleculeBlock, by_name: dict[str, MoleculeMapping],
             aa: Topology, cg: Topology) -> MoleculeMapping:
    """The mapping of the k-th molecule instance, after checking that AA, CG and mapping agree."""
    if a.name != c.name:
        raise InputError(f"molecule {k + 1} is {a.name!r} here but {c.name!r} in the CG topology {_source(cg)}",
                         _source(aa))
    m = by_name.get(a.name)
    if m is None:
        raise InputError(f"no mapping for molecule {a.name!r} (mappings given: {sorted(by_name)})", _source(aa))
    where = m.source or "<mapping>"
    if m.n_atoms != a.n_atoms:
        raise InputError(f"molecule {a.name!r} has {a.n_atoms} atoms in {_source(aa)} but {m.n_atoms} in the "
                         "mapping", where)
    if cg.types[c.start:c.stop] != m.bead_types:
        raise InputError(f"molecule {a.name!r} has bead types {cg.types[c.start:c.stop]} in {_source(cg)} but "
                         f"{m.bead_types} in the mapping", where)
    return m


def _per_instance(per_instance: list[MoleculeMapping], attr: str) -> list[str]:
    return [v for m in per_instance for v in getattr(m, attr)]


def _reference_atoms(membership: Tensor, coef: Tensor, n_beads: int) -> Tensor:
    """Per bead, its member atom with the largest coefficient (first in order among ties)."""
    atom, bead = membership.T
    best = torch.full((n_beads,), -1.0, dtype=coef.dtype).scatter_reduce(0, bead, coef, "amax")  # [n_beads]
    slot = torch.arange(len(atom))  # [M]
    candidate = torch.where(coef == best[bead], slot, len(atom))  # [M]
    first = torch.full((n_beads,), len(atom)).scatter_reduce(0, bead, candidate, "amin")  # [n_beads]
    return atom[first]
