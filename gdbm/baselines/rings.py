"""Ring modifier of the geometric first guess: rings inside one bead start as regular polygons.

Atoms that sit on the same bead start on one point; minimising from a random cloud closes a
ring like a phenyl in random atom order, and about half of the sPS rings then stay crossed
(non-planar, ring angles 40+ degrees off) through any number of minimisation steps. So a
ring (chordless, up to 8 atoms) whose atoms all belong to one bead alone is laid out as a
regular polygon (0.14 nm edges) around the bead, and each other atom of that bead bonded to
one of its atoms is put 0.1 nm radially outside it (the "out" modifier of Wassenaar et al.).
A ring atom bonded out of the bead (the sPS ipso carbon) points at its partner's first
guess, else the bond would start through the ring and pull the ring inside out (3-10 rings
per sPS frame stayed broken that way); the plane around that axis is random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from gdbm.topology.mapping import minimum_image

MAX_RING = 8
EDGE = 0.14  # nm, a typical ring bond
OUT = 0.10  # nm, a typical bond to a ring substituent


@dataclass
class RingTemplate:
    """Offsets of ring atoms and their substituents in each ring's own plane.

    Atom ``atom[r]`` is moved by ``radius[r] * (cos(angle[r]) u + sin(angle[r]) v)`` where
    (u, v) is the plane of ring ``ring[r]``: u points from the ring's bead (where ``centre``
    is placed) to ``toward`` (-1: a random u), v is random.
    """

    atom: Tensor  # [R] long
    ring: Tensor  # [R] long
    angle: Tensor  # [R] float64, rad
    radius: Tensor  # [R] float64, nm
    centre: Tensor  # [n_rings] long, a ring atom
    toward: Tensor  # [n_rings] long, the atom its first ring atom is bonded to outside the bead, or -1

    def offsets(self, positions: Tensor, box: Tensor, rng: np.random.Generator) -> Tensor:
        """Per moved atom its offset ``[R, 3]`` (nm) from placed ``positions [n, 3]`` in ``box [3, 3]``."""
        q = torch.from_numpy(rng.normal(size=(len(self.centre), 2, 3)))  # [n_rings, 2, 3]
        axis = minimum_image((positions[self.toward] - positions[self.centre]).unsqueeze(0), box.unsqueeze(0))[0]
        u = torch.where((self.toward >= 0).unsqueeze(-1), axis, q[:, 0])
        u = u / u.norm(dim=1, keepdim=True)  # [n_rings, 3]
        v = q[:, 1] - (q[:, 1] * u).sum(1, keepdim=True) * u
        v = v / v.norm(dim=1, keepdim=True)  # [n_rings, 3]
        angle, radius = self.angle.unsqueeze(-1), self.radius.unsqueeze(-1)
        return radius * (torch.cos(angle) * u[self.ring] + torch.sin(angle) * v[self.ring])


def ring_template(single_bead: Tensor, connectivity: Tensor) -> RingTemplate:
    """The rings whose atoms belong to one bead alone, with their substituents on the same bead.

    ``single_bead [n_atoms]``: the one bead an atom is placed on, or -1 if it is placed
    between several beads; ``connectivity [b, 2]``: the chemical bonds.
    """
    i, j = connectivity.T
    inside = (single_bead[i] >= 0) & (single_bead[i] == single_bead[j])  # [b] bonds within one bead
    bonds, graph = nx.Graph(connectivity.tolist()), nx.Graph(connectivity[inside].tolist())
    rows: dict[int, tuple[int, float, float]] = {}  # atom -> (ring, angle, radius); first ring wins
    centre, toward = [], []
    for r, cycle in enumerate(nx.chordless_cycles(graph, length_bound=MAX_RING)):
        out = [(a, n) for a in cycle for n in bonds.neighbors(a) if not graph.has_edge(a, n)]  # bonds leaving the bead
        if out:  # start the cycle at the attached atom: angle 0 points at its partner
            start = cycle.index(out[0][0])
            cycle = cycle[start:] + cycle[:start]
        centre.append(cycle[0])
        toward.append(out[0][1] if out else -1)
        radius = EDGE / (2 * math.sin(math.pi / len(cycle)))
        for step, a in enumerate(cycle):
            angle = 2 * math.pi * step / len(cycle)
            rows.setdefault(a, (r, angle, radius))
            for n in graph.neighbors(a):
                if n not in cycle:
                    rows.setdefault(n, (r, angle, radius + OUT))
    ring, angle, radius = zip(*rows.values()) if rows else ((), (), ())
    return RingTemplate(torch.tensor(list(rows), dtype=torch.long), torch.tensor(ring, dtype=torch.long),
                        torch.tensor(angle, dtype=torch.float64), torch.tensor(radius, dtype=torch.float64),
                        torch.tensor(centre, dtype=torch.long), torch.tensor(toward, dtype=torch.long))
