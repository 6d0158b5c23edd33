"""Turn each pendant bead about the bond that holds it, so that its centre points at its CG position.

A pendant bead (a phenyl ring on a backbone, a methyl group) owns every atom on one side of a single
bond: its members share no atom with another bead, and exactly one bond leaves them. The smooth centre
projection (:mod:`gdbm.physics.centre_shift`) corrects such a bead's centre by moving its atoms, the
attachment atom with them, which swings that atom off the angles it makes with the rest of the molecule
(on sPS the junction CH2-CH-ipso follows every error of the ring's centre). In the reference the ring
does the opposite: it tilts about its ipso and the junction stays put (docs/generator-diagnosis.md,
section 22). This step turns the bead's atoms rigidly about the attachment atom by the smallest rotation
that points the centre at its target; what is left (the centre's distance from the attachment atom) is
for the smooth projection. Only the angles and dihedrals across the holding bond change. It uses only
the topology, the mapping and the CG input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from gdbm.physics.centre_shift import SmoothCentreShift
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.topology import Topology
from gdbm.utils.pbc import minimum_image


@dataclass
class PendantBeads:
    """The pendant beads of a system and the bond that holds each."""

    beads: Tensor  # [P]
    inner: Tensor  # [P] the bead's atom of the holding bond (sPS: the ipso)
    outer: Tensor  # [P] the atom outside the bead (sPS: the backbone CH)
    members: Tensor  # [P, K] the bead's atoms, -1 padded


def pendant_beads(mapping: SystemMapping, top: Topology) -> PendantBeads:
    """Every bead whose atoms are its own (shared with no other bead) and leave the molecule by one bond."""
    member_atom, member_bead = mapping.membership.T
    owners = torch.bincount(member_atom, minlength=top.n_atoms)  # beads per atom
    members: dict[int, list[int]] = {}
    for atom, bead in zip(member_atom.tolist(), member_bead.tolist()):
        members.setdefault(bead, []).append(atom)
    inside = torch.full((top.n_atoms,), -1, dtype=torch.long)
    for bead, atoms in members.items():
        if len(atoms) > 1 and all(owners[a] == 1 for a in atoms):
            inside[atoms] = bead
    i, j = top.connectivity.T
    crossing = inside[i] != inside[j]
    leaving: dict[int, list[tuple[int, int]]] = {}  # bead -> (its atom, the outside atom) of each crossing bond
    for a, b in zip(i[crossing].tolist(), j[crossing].tolist()):
        for atom, other in ((a, b), (b, a)):
            if inside[atom] >= 0:
                leaving.setdefault(int(inside[atom]), []).append((atom, other))
    beads = sorted(bead for bead, bonds in leaving.items() if len(bonds) == 1)
    width = max((len(members[b]) for b in beads), default=1)
    padded = torch.full((len(beads), width), -1, dtype=torch.long)
    for row, bead in enumerate(beads):
        padded[row, :len(members[bead])] = torch.tensor(members[bead])
    ends = torch.tensor([leaving[b][0] for b in beads], dtype=torch.long).view(-1, 2)  # [P, 2]
    return PendantBeads(torch.tensor(beads, dtype=torch.long), ends[:, 0], ends[:, 1], padded)


def rotate_onto(vectors: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """``vectors [..., K, 3]`` turned by the smallest rotation taking direction ``u [..., 3]`` to ``v [..., 3]``."""
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    axis = torch.linalg.cross(u, v)  # [..., 3], |axis| = sin
    sin = axis.norm(dim=-1)
    return _rodrigues(vectors, axis / sin.unsqueeze(-1).clamp_min(1e-12), (u * v).sum(-1), sin)


def rotate_about(vectors: Tensor, axis: Tensor, angle: Tensor) -> Tensor:
    """``vectors [..., K, 3]`` turned by ``angle [...]`` (radians) about the unit ``axis [..., 3]``."""
    return _rodrigues(vectors, axis, torch.cos(angle), torch.sin(angle))


def _rodrigues(vectors: Tensor, axis: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rodrigues: w cos + (k x w) sin + k (k . w)(1 - cos), for ``vectors [..., K, 3]``, unit ``axis [..., 3]``,
    ``cos``, ``sin`` ``[...]``."""
    k = axis.unsqueeze(-2)  # [..., 1, 3]
    cos, sin = cos[..., None, None], sin[..., None, None]
    return (vectors * cos + torch.linalg.cross(k.expand_as(vectors), vectors) * sin
            + k * (k * vectors).sum(-1, keepdim=True) * (1 - cos))


@dataclass
class PendantPivot:
    """The pendant beads of a system and how to turn them; build once, apply to any frames with ``turn``."""

    beads: Tensor  # [P]
    pivots: Tensor  # [P] the atoms turned about
    members: Tensor  # [P, K] -1 padded
    mapping: SystemMapping

    @classmethod
    def of(cls, mapping: SystemMapping, top: Topology, about: Literal["inner", "outer"] = "inner") -> "PendantPivot":
        """Turning about the bead's own atom of the holding bond (the hold's choice) or the one outside it."""
        found = pendant_beads(mapping, top)
        return cls(found.beads, found.inner if about == "inner" else found.outer, found.members, mapping)

    def turn(self, positions: Tensor, boxes: Tensor, targets: Tensor) -> Tensor:
        """Positions ``[F, n, 3]`` with every pendant bead turned about its pivot towards ``targets [F, n_beads, 3]``."""
        if not len(self.beads):
            return positions
        boxes = boxes.to(positions).expand(positions.shape[0], 3, 3)
        pivot = positions[:, self.pivots]  # [F, P, 3]
        centres = self.mapping.map_positions(positions, boxes)[:, self.beads]  # [F, P, 3]
        u = minimum_image(centres - pivot, boxes)
        v = minimum_image(targets.to(positions)[:, self.beads] - pivot, boxes)
        return turn_rigidly(positions, boxes, self.members, self.pivots, lambda arms: rotate_onto(arms, u, v))


def turn_rigidly(positions: Tensor, boxes: Tensor, members: Tensor, about: Tensor,
                 turn: Callable[[Tensor], Tensor]) -> Tensor:
    """Positions ``[F, n, 3]`` with each group of atoms ``members [P, K]`` (-1 padded) turned as one body about
    its atom ``about [P]``: ``turn`` maps the arms from that atom ``[F, P, K, 3]`` (minimum images) to new ones."""
    f, (p, k) = positions.shape[0], members.shape
    valid, atoms = members >= 0, members.clamp_min(0)  # [P, K]
    origin = positions[:, about].unsqueeze(2)  # [F, P, 1, 3]
    arms = minimum_image((positions[:, atoms] - origin).reshape(f, p * k, 3), boxes).reshape(f, p, k, 3)
    out = positions.clone()
    out[:, atoms[valid]] = (origin + turn(arms))[:, valid]
    return out


@dataclass
class TurnThenSmooth:
    """``hold_centres: pivot`` or ``seat``: the pendant beads turned by ``turn(positions, boxes, targets)``
    (``PendantPivot.turn``, ``PendantSeat.turn``), then the smooth projection for what is left (the interface of
    ``relax.CentreConstraint``)."""

    turn: Callable[[Tensor, Tensor, Tensor], Tensor]
    smooth: SmoothCentreShift
    targets: Tensor  # [F, n_beads, 3]

    def project(self, positions: Tensor, boxes: Tensor) -> Tensor:
        turned = self.turn(positions, boxes, self.targets)
        return self.smooth.project(turned, boxes, self.targets)
