"""Ring modifier of the geometric first guess: rings inside one bead start as regular polygons.

Atoms that sit on the same bead start on one point; minimising from a random cloud closes a
ring like a phenyl in random atom order, and about half of the sPS rings then stay crossed
(non-planar, ring angles 40+ degrees off) through any number of minimisation steps. So a
ring (chordless, up to 8 atoms) whose atoms all belong to one bead alone is laid out as a
regular polygon (0.14 nm edges) in a random plane around the bead, and each other atom of
that bead bonded to one of its atoms is put 0.1 nm radially outside it (the "out" modifier
of Wassenaar et al.). Only the ring's size, order and planarity are set; its orientation is
random and left to the minimisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch
from torch import Tensor

MAX_RING = 8
EDGE = 0.14  # nm, a typical ring bond
OUT = 0.10  # nm, a typical bond to a ring substituent


@dataclass
class RingTemplate:
    """Offsets of ring atoms and their substituents in each ring's own plane.

    Atom ``atom[r]`` is moved by ``radius[r] * (cos(angle[r]) u + sin(angle[r]) v)`` where
    (u, v) is the random plane of ring ``ring[r]``.
    """

    atom: Tensor  # [R] long
    ring: Tensor  # [R] long
    angle: Tensor  # [R] float64, rad
    radius: Tensor  # [R] float64, nm
    n_rings: int

    def offsets(self, rng: np.random.Generator) -> np.ndarray:
        """Per moved atom its offset ``[R, 3]`` (nm), in one random plane per ring."""
        q = rng.normal(size=(self.n_rings, 2, 3))
        u = q[:, 0] / np.linalg.norm(q[:, 0], axis=1, keepdims=True)  # [n_rings, 3]
        v = q[:, 1] - (q[:, 1] * u).sum(1, keepdims=True) * u
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        ring, angle, radius = self.ring.numpy(), self.angle.numpy()[:, None], self.radius.numpy()[:, None]
        return radius * (np.cos(angle) * u[ring] + np.sin(angle) * v[ring])


def ring_template(single_bead: Tensor, connectivity: Tensor) -> RingTemplate:
    """The rings whose atoms belong to one bead alone, with their substituents on the same bead.

    ``single_bead [n_atoms]``: the one bead an atom is placed on, or -1 if it is placed
    between several beads; ``connectivity [b, 2]``: the chemical bonds.
    """
    i, j = connectivity.T
    inside = (single_bead[i] >= 0) & (single_bead[i] == single_bead[j])  # [b] bonds within one bead
    graph = nx.Graph(connectivity[inside].tolist())
    rings = list(nx.chordless_cycles(graph, length_bound=MAX_RING))
    rows: dict[int, tuple[int, float, float]] = {}  # atom -> (ring, angle, radius); first ring wins
    for r, cycle in enumerate(rings):
        k = len(cycle)
        radius = EDGE / (2 * math.sin(math.pi / k))
        for step, a in enumerate(cycle):
            angle = 2 * math.pi * step / k
            rows.setdefault(a, (r, angle, radius))
            for n in graph.neighbors(a):
                if n not in cycle:
                    rows.setdefault(n, (r, angle, radius + OUT))
    ring, angle, radius = zip(*rows.values()) if rows else ((), (), ())
    return RingTemplate(torch.tensor(list(rows), dtype=torch.long), torch.tensor(ring, dtype=torch.long),
                        torch.tensor(angle, dtype=torch.float64), torch.tensor(radius, dtype=torch.float64),
                        len(rings))
