"""Seat each pendant bead near its attachment's ideal site and bend it out of plane onto its CG centre.

The voxel generator places sPS's ipso carbon along the line from its CH to the ring's CG bead: seen from the
CH, the ipso leaves the CH's ideal site by 12.2 degrees rms where the reference's leaves it by 8.9, so the
junction angle CH2-CH-ipso spreads (5.4 degrees against 4.3), and the ring bends out of its plane at the ipso
less than the reference's (docs/generator-diagnosis.md, sections 22-24). This
step, for every pendant bead (:func:`gdbm.physics.pendant_pivot.pendant_beads`) whose outer atom has two or
three other heavy neighbours and whose inner atom two heavy neighbours in the bead:

1. *seat*: turns the bead rigidly about its outer atom so that the inner atom keeps the fraction ``keep`` of
   its angular deviation from the outer atom's ideal site: the direction at the topology's ``theta0`` from
   both other heavy neighbours, on the inner atom's side of their plane (two neighbours), or opposite the
   sum of their unit vectors (three);
2. *bend*: turns the bead about its inner atom, around the axis in the plane of the inner atom and its two
   in-bead neighbours perpendicular to the bead's centre, by the angle that brings the centre nearest its
   CG target: an out-of-plane bend, which leaves the in-plane angles at the inner atom (C-C_AR-C_AR) as they
   were, where the smallest rotation (``pivot``) bends them in plane.

Other pendant beads are pivoted as ``hold_centres: pivot`` does; the smooth projection
(:mod:`gdbm.physics.centre_shift`, through ``pendant_pivot.TurnThenSmooth``) then puts every centre exactly on its
target. Both turns are rigid: every bond length is kept. It uses only the topology, the mapping and the CG input;
``keep`` is a constant (0.7: the training frames' ratio of the reference's deviation to the generator's, 8.9 / 12.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.physics.pendant_pivot import (PendantBeads, PendantPivot, pendant_beads, rotate_about, rotate_onto,
                                        turn_rigidly)
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.topology import TERM_KINDS, Topology
from gdbm.utils.pbc import minimum_image

def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass
class PendantSeat(PendantBeads):
    """The pendant beads the seat-and-bend applies to, with their neighbours; build once with ``of``."""

    others: Tensor  # [P, 3] the outer atom's other heavy neighbours, -1 padded (two or three)
    cos_theta0: Tensor  # [P] float64: cos of the mean theta0 of the angles (other, outer, inner)
    plane: Tensor  # [P, 2] the inner atom's two heavy neighbours in the bead
    rest: PendantPivot  # the pendant beads that do not qualify, pivoted instead
    mapping: SystemMapping
    keep: float = 0.7  # the fraction of each inner atom's angle from its ideal site that ``turn`` keeps

    @classmethod
    def of(cls, mapping: SystemMapping, top: Topology, keep: float = 0.7) -> "PendantSeat":
        found = pendant_beads(mapping, top)
        heavy = [element != "H" for element in top.elements]
        neighbours = top.bonded_neighbours()
        theta0 = _angle_theta0(top)
        seated, others, cos0, plane = [], [], [], []
        for row, (inner, outer) in enumerate(zip(found.inner.tolist(), found.outer.tolist())):
            members = set(found.members[row].tolist())
            around = [n for n in neighbours[outer] if n != inner and heavy[n]]
            in_plane = [n for n in neighbours[inner] if n in members and heavy[n]]
            angles = [theta0.get((min(n, inner), outer, max(n, inner))) for n in around]
            if len(around) not in (2, 3) or len(in_plane) != 2 or None in angles:
                continue
            seated.append(row)
            others.append(around + [-1] * (3 - len(around)))
            cos0.append(float(torch.cos(torch.tensor(sum(angles) / len(angles), dtype=torch.float64))))
            plane.append(in_plane)
        rows = torch.tensor(seated, dtype=torch.long)
        left = torch.ones(len(found.beads), dtype=torch.bool)
        left[rows] = False
        rest = PendantPivot(found.beads[left], found.inner[left], found.members[left], mapping)
        return cls(found.beads[rows], found.inner[rows], found.outer[rows], found.members[rows],
                   torch.tensor(others, dtype=torch.long).view(-1, 3), torch.tensor(cos0, dtype=torch.float64),
                   torch.tensor(plane, dtype=torch.long).view(-1, 2), rest, mapping, keep)

    def turn(self, positions: Tensor, boxes: Tensor, targets: Tensor) -> Tensor:
        """``hold_centres: seat`` before the smooth projection: seat (keeping ``keep``), bend, the rest pivoted."""
        bent = self.bend(self.seat(positions, boxes, self.keep), boxes, targets)
        return self.rest.turn(bent, boxes, targets)

    def ideal(self, positions: Tensor, boxes: Tensor) -> Tensor:
        """The outer atoms' ideal directions for their inner atoms ``[F, P, 3]`` (unit)."""
        f, p = positions.shape[0], len(self.beads)
        centre = positions[:, self.outer]  # [F, P, 3]
        present = self.others >= 0  # [P, 3]
        arms = minimum_image((positions[:, self.others.clamp_min(0)] - centre.unsqueeze(2)).reshape(f, 3 * p, 3),
                             boxes).reshape(f, p, 3, 3)
        u = _unit(arms) * present[None, :, :, None]  # [F, P, 3, 3], absent neighbours zero
        three = _unit(-u.sum(2))  # opposite the three neighbours
        away = _unit(-(u[:, :, 0] + u[:, :, 1]))  # the two neighbours' outer bisector
        normal = _unit(torch.linalg.cross(u[:, :, 0], u[:, :, 1]))
        inner = minimum_image(positions[:, self.inner] - centre, boxes)
        side = torch.where((normal * inner).sum(-1, keepdim=True) >= 0, 1.0, -1.0).to(positions)
        half = 0.5 * torch.arccos((u[:, :, 0] * u[:, :, 1]).sum(-1).clamp(-1, 1))  # [F, P]
        # u_i . d = cos(theta0) for d = -cos(a) e + sin(a) n, e the inner bisector: cos(a) = -cos(theta0) / cos(half)
        cos_a = (-self.cos_theta0.to(positions) / torch.cos(half).clamp_min(1e-6)).clamp(-1, 1).unsqueeze(-1)
        two = cos_a * away + torch.sqrt(1 - cos_a ** 2) * side * normal
        return torch.where(present[None, :, 2:3], three, two)

    def seat(self, positions: Tensor, boxes: Tensor, keep: float) -> Tensor:
        """Positions ``[F, n, 3]`` with each bead turned about its outer atom, its inner atom keeping the fraction
        ``keep`` of its angle from the ideal site."""
        if not len(self.beads):
            return positions
        centre = positions[:, self.outer]
        now = _unit(minimum_image(positions[:, self.inner] - centre, boxes))  # [F, P, 3]
        ideal = self.ideal(positions, boxes)
        off = torch.arccos((ideal * now).sum(-1, keepdim=True).clamp(-1, 1)).clamp_min(1e-9)  # [F, P, 1]
        goal = _unit(torch.sin((1 - keep) * off) * ideal + torch.sin(keep * off) * now)  # slerp from the site
        return turn_rigidly(positions, boxes, self.members, self.outer, lambda arms: rotate_onto(arms, now, goal))

    def bend(self, positions: Tensor, boxes: Tensor, targets: Tensor) -> Tensor:
        """Positions with each bead turned out of its inner atom's plane, its centre nearest ``targets``."""
        if not len(self.beads):
            return positions
        f = positions.shape[0]
        pivot = positions[:, self.inner]  # [F, P, 3]
        centre = self.mapping.map_positions(positions, boxes)[:, self.beads]
        along = _unit(minimum_image(centre - pivot, boxes))
        spokes = minimum_image((positions[:, self.plane] - pivot.unsqueeze(2)).reshape(f, -1, 3),
                               boxes).reshape(f, -1, 2, 3)
        normal = _unit(torch.linalg.cross(spokes[:, :, 0], spokes[:, :, 1]))
        axis = _unit(torch.linalg.cross(normal, along))  # in the plane, perpendicular to the centre's direction
        goal = minimum_image(targets.to(positions)[:, self.beads] - pivot, boxes)
        flat = lambda v: _unit(v - (v * axis).sum(-1, keepdim=True) * axis)  # noqa: E731
        a, b = flat(along), flat(goal)
        angle = torch.atan2((torch.linalg.cross(a, b) * axis).sum(-1), (a * b).sum(-1))  # [F, P]
        return turn_rigidly(positions, boxes, self.members, self.inner, lambda arms: rotate_about(arms, axis, angle))


def _angle_theta0(top: Topology) -> dict[tuple[int, int, int], float]:
    """theta0 (radians) of every harmonic angle term, keyed (smaller end, centre, larger end)."""
    out: dict[tuple[int, int, int], float] = {}
    for term in top.terms.values():
        if TERM_KINDS[term.kind].category == "angle" and "theta0" in term.params:
            for (i, j, k), theta in zip(term.index.tolist(), term.params["theta0"].tolist()):
                out[(min(i, k), j, max(i, k))] = theta
    return out
