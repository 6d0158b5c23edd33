"""Put every CG bead's centre on its input position by the smoothest shift of the atoms.

The rigid projection (``relax.CentreConstraint``) moves each bead's atoms as one body. Where two
beads need different shifts, the bond between them takes the whole difference, which bends the
angles across it (on sPS, the backbone-phenyl junction). This projection instead solves, per
molecule, for the displacement ``dx`` that changes the bonded and 1-3 vectors least:

    minimise  sum over bonds and angles' 1-3 pairs (i, j) of  w_ij |dx_i - dx_j|^2
    subject to  sum over a bead's members of  coef_k dx_k = target - centre   (every bead)

so a bead's correction spreads smoothly along the chain, each bond and angle taking a small part.
It is a linear projection: the same ``[n_atoms_m, n_beads_m]`` operator per molecule type for
every frame (its KKT system solved once), using only the topology, the mapping and the CG input.
On sPS it bends less than the rigid shift but still widens the junction angle, less so when it
runs after every pass of the sampler (docs/generator-diagnosis.md sections 10 and 16).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.topology.mapping import SystemMapping
from gdbm.topology.topology import TERM_KINDS, Topology
from gdbm.utils.pbc import minimum_image

ANGLE_WEIGHT = 1.0  # weight of a 1-3 vector against a bond's; 1: angles as stiff as bonds
REGULARISER = 1e-9  # on the diagonal, so that an atom with no bond and no bead stays put


@dataclass
class _MoleculeType:
    """One operator shared by the molecules whose local structure is the same."""

    operator: Tensor  # [n_m, b_m] float64: atom shifts per unit bead residual
    atoms: Tensor  # [I, n_m] long, global atom indices of each instance
    beads: Tensor  # [I, b_m] long, global bead indices of each instance


class SmoothCentreShift:
    """The smooth centre projection of a system: build once, apply to any frames with ``project``.

    ``mapping``: the mapping whose centres are held (possibly partial: atoms of no bead move with
    their bonded neighbours). ``angle_weight``: stiffness of the 1-3 vectors relative to bonds.
    """

    def __init__(self, mapping: SystemMapping, top: Topology, angle_weight: float = ANGLE_WEIGHT):
        if mapping.n_atoms != top.n_atoms:
            raise ValueError(f"the mapping has {mapping.n_atoms} atoms, the topology {top.n_atoms}")
        self.mapping = mapping
        self.types = _molecule_types(mapping, top, _pairs(top, angle_weight))

    def project(self, positions: Tensor, boxes: Tensor, targets: Tensor, iterations: int = 3,
                tolerance: float = 1e-5) -> Tensor:
        """Positions ``[F, n, 3]`` shifted so that every bead centre sits on ``targets`` ``[F, n_beads, 3]``.

        One step is exact (the mapping is linear); more only where a shift crosses a periodic image.
        """
        x = positions.clone()
        for _ in range(iterations):
            residual = minimum_image(targets.to(x) - self.mapping.map_positions(x, boxes), boxes.to(x))  # [F, nb, 3]
            if float(residual.norm(dim=-1).max()) < tolerance:
                break
            for kind in self.types:
                shift = torch.einsum("nb,fibc->finc", kind.operator.to(x), residual[:, kind.beads])  # [F, I, n_m, 3]
                x[:, kind.atoms] += shift
        return x

    def holding(self, targets: Tensor) -> "HeldCentres":
        """This projection bound to one chunk's CG positions ``[F, n_beads, 3]`` (for ``project_constraints``)."""
        return HeldCentres(self, targets)


@dataclass
class HeldCentres:
    """A smooth centre projection with its targets: the interface of ``relax.CentreConstraint``."""

    shift: SmoothCentreShift
    targets: Tensor  # [F, n_beads, 3]

    def project(self, positions: Tensor, boxes: Tensor) -> Tensor:
        return self.shift.project(positions, boxes, self.targets)


def _pairs(top: Topology, angle_weight: float) -> tuple[Tensor, Tensor]:
    """Bonded pairs ``[p, 2]`` (chemical bonds, then the outer atoms of every angle term) and weights ``[p]``."""
    pairs, weights = [top.connectivity], [torch.ones(len(top.connectivity), dtype=torch.float64)]
    for name, term in top.terms.items():
        if TERM_KINDS[name].category == "angle" and len(term.index):
            pairs.append(term.index[:, [0, 2]])
            weights.append(torch.full((len(term.index),), angle_weight, dtype=torch.float64))
    return torch.cat(pairs), torch.cat(weights)


def _molecule_types(mapping: SystemMapping, top: Topology, pairs: tuple[Tensor, Tensor]) -> list[_MoleculeType]:
    """Group the molecules that hold beads by their local structure and solve each group's operator once."""
    index, weight = pairs
    atoms_of = _slices(top.molecule, top.n_molecules)  # per molecule: its atoms, ascending
    beads_of = _slices(mapping.bead_molecule, top.n_molecules)
    pair_molecule = top.molecule[index[:, 0]]
    member_atom, member_bead = mapping.membership.T
    groups: dict[tuple, tuple[Tensor, list[Tensor], list[Tensor]]] = {}
    for m, pair_rows, member_rows in zip(range(top.n_molecules), _slices(pair_molecule, top.n_molecules),
                                         _slices(mapping.bead_molecule[member_bead], top.n_molecules)):
        atoms, beads = atoms_of[m], beads_of[m]
        if not len(beads):
            continue
        local_pairs = torch.searchsorted(atoms, index[pair_rows])  # [p_m, 2]
        local_members = torch.stack([torch.searchsorted(atoms, member_atom[member_rows]),
                                     torch.searchsorted(beads, member_bead[member_rows])], 1)  # [M_m, 2]
        coef, w = mapping.coef[member_rows], weight[pair_rows]
        key = (len(atoms), len(beads), _bytes(local_pairs), _bytes(w), _bytes(local_members), _bytes(coef))
        if key not in groups:
            groups[key] = (_solve(len(atoms), len(beads), local_pairs, w, local_members, coef), [], [])
        groups[key][1].append(atoms)
        groups[key][2].append(beads)
    return [_MoleculeType(op, torch.stack(a), torch.stack(b)) for op, a, b in groups.values()]


def _solve(n: int, b: int, pairs: Tensor, weight: Tensor, members: Tensor, coef: Tensor) -> Tensor:
    """The KKT solution ``[n, b]``: the least-bending atom shifts for a unit residual of each bead."""
    i, j = pairs.T
    laplacian = torch.zeros(n, n, dtype=torch.float64)
    laplacian.index_put_((i, i), weight, accumulate=True)
    laplacian.index_put_((j, j), weight, accumulate=True)
    laplacian.index_put_((i, j), -weight, accumulate=True)
    laplacian.index_put_((j, i), -weight, accumulate=True)
    laplacian += REGULARISER * torch.eye(n, dtype=torch.float64)
    centres = torch.zeros(b, n, dtype=torch.float64)  # [b, n]: bead centre = centres @ positions
    centres.index_put_((members[:, 1], members[:, 0]), coef.to(torch.float64), accumulate=True)
    kkt = torch.zeros(n + b, n + b, dtype=torch.float64)
    kkt[:n, :n], kkt[:n, n:], kkt[n:, :n] = laplacian, centres.T, centres
    rhs = torch.zeros(n + b, b, dtype=torch.float64)
    rhs[n:] = torch.eye(b, dtype=torch.float64)
    return torch.linalg.solve(kkt, rhs)[:n]


def _slices(owner: Tensor, n: int) -> list[Tensor]:
    """For each owner 0..n-1, the ascending positions of ``owner`` equal to it (a stable counting sort)."""
    order = torch.argsort(owner, stable=True)
    return list(torch.split(order, torch.bincount(owner, minlength=n).tolist()))


def _bytes(t: Tensor) -> bytes:
    return t.contiguous().numpy().tobytes()
