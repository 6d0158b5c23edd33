"""Ideal hydrogen sites on a heavy atom, from its heavy neighbours and the topology's equilibrium geometry.

A heavy atom X with ``k`` heavy neighbours and ``h`` terminal hydrogens has its hydrogens at the
X-H ``b0`` along directions fixed by the neighbours: opposite the sum of the unit vectors to them for
one hydrogen (a tetrahedral CH, ``k = 3``, or an aromatic CH, ``k = 2``); for two (a CH2, ``k = 2``)
symmetric about the neighbours' plane, at the H-X-H ``theta0``. A methyl (``k = 1``, ``h = 3``) needs a
torsion the neighbours do not fix and has no ideal sites here.

The sampler scores a heavy-atom candidate with these sites standing in for the bead's hydrogens,
which it builds only later (:class:`gdbm.sampling.backmapper.SamplerConfig` ``hydrogen_lookahead``).
Real hydrogens at 568 K lie about 12 degrees off these directions, away from their contacts, so the
sites overstate contacts a little: a look-ahead, not a reconstruction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.topology.topology import Topology

TETRAHEDRAL = math.radians(109.47)
SHAPES = {(2, 1): "planar_ch", (3, 1): "ch", (2, 2): "ch2"}
"""(heavy neighbours, hydrogens) with ideal sites, and their names: an aromatic (or other planar) CH, a
tetrahedral CH, a CH2."""
METHYL = (1, 3)
"""A CH3: tabled (its b0 and neighbours), without ideal sites."""


@dataclass
class HydrogenGroups:
    """Per heavy atom of a shape in :data:`SHAPES` or a methyl: its heavy neighbours, terminal hydrogens,
    X-H lengths and H-X-H angle (all -1 / 0 for other atoms)."""

    heavy: Tensor  # [n, 3] heavy neighbours, -1 padded (k = 1, 2 or 3)
    hydrogens: Tensor  # [n, 3] -1 padded (h = 1, 2 or 3)
    length: Tensor  # [n, 3] nm, float64
    angle: Tensor  # [n] rad, float64
    shape: list[str | None]  # [n] the atom's name in SHAPES, "ch3" for a methyl, else None

    @property
    def has_sites(self) -> Tensor:
        """``[n]`` bool: the atom has ideal sites (a shape of SHAPES)."""
        names = set(SHAPES.values())
        return torch.tensor([name in names for name in self.shape], dtype=torch.bool)

    def rows(self, n_heavy: int, n_hydrogens: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor] | None:
        """The atoms with ``n_heavy`` heavy neighbours and ``n_hydrogens`` hydrogens: ``(atoms [g], heavy [g, k],
        hydrogens [g, h], length [g, h], angle [g])``; None when there are none."""
        tabled = torch.tensor([name is not None for name in self.shape], dtype=torch.bool)
        atoms = torch.nonzero(tabled & ((self.heavy >= 0).sum(1) == n_heavy)
                              & ((self.hydrogens >= 0).sum(1) == n_hydrogens)).squeeze(1)
        if not len(atoms):
            return None
        return (atoms, self.heavy[atoms, :n_heavy], self.hydrogens[atoms, :n_hydrogens],
                self.length[atoms, :n_hydrogens], self.angle[atoms])

    @classmethod
    def from_topology(cls, top: Topology) -> "HydrogenGroups":
        n = top.n_atoms
        hydrogen = [e == "H" for e in top.elements]
        b0: dict[tuple[int, int], float] = {}
        hxh: dict[int, float] = {}
        for kind, term in top.terms.items():
            if kind.startswith("bond") and "b0" in term.params:
                for (i, j), length in zip(term.index.tolist(), term.params["b0"].tolist()):
                    b0[(min(i, j), max(i, j))] = length
            if kind.startswith("angle") and "theta0" in term.params:
                for (i, j, k), theta in zip(term.index.tolist(), term.params["theta0"].tolist()):
                    if hydrogen[i] and hydrogen[k]:
                        hxh[j] = theta
        neighbours = top.bonded_neighbours()
        heavy = torch.full((n, 3), -1, dtype=torch.long)
        hydrogens = torch.full((n, 3), -1, dtype=torch.long)
        length = torch.zeros(n, 3, dtype=torch.float64)
        angle = torch.full((n,), TETRAHEDRAL, dtype=torch.float64)
        shape: list[str | None] = [None] * n
        for x in range(n):
            if hydrogen[x]:
                continue
            hs = [a for a in neighbours[x] if hydrogen[a] and len(neighbours[a]) == 1]
            others = [a for a in neighbours[x] if not hydrogen[a]]
            kind = (len(others), len(hs))
            if (kind not in SHAPES and kind != METHYL) or len(others) + len(hs) != len(neighbours[x]):
                continue
            shape[x] = SHAPES.get(kind, "ch3")
            heavy[x, :len(others)] = torch.tensor(others)
            hydrogens[x, :len(hs)] = torch.tensor(hs)
            length[x, :len(hs)] = torch.tensor([b0.get((min(x, a), max(x, a)), 0.109) for a in hs],
                                               dtype=torch.float64)
            angle[x] = hxh.get(x, TETRAHEDRAL)
        return cls(heavy, hydrogens, length, angle, shape)

    def centres_per_step(self, step_atoms: Tensor, shapes: tuple[str, ...]) -> Tensor:
        """``[S, G]`` (-1 padded): per plan step (``step_atoms [S, L]``, -1 padded), its heavy atoms with ideal
        sites of one of ``shapes`` whose hydrogens the step does not place (they come in a later step)."""
        per_step = []
        for atoms in step_atoms.tolist():
            placed = {a for a in atoms if a >= 0}
            per_step.append([a for a in atoms if a >= 0 and self.shape[a] in shapes
                             and not placed.intersection(self.hydrogens[a].tolist())])
        out = torch.full((len(per_step), max(1, max(map(len, per_step), default=0))), -1, dtype=torch.long)
        for step, centres in enumerate(per_step):
            out[step, :len(centres)] = torch.tensor(centres, dtype=torch.long)
        return out


def ideal_sites(centre: Tensor, heavy: Tensor, n_heavy: Tensor, n_hydrogens: Tensor, length: Tensor,
                angle: Tensor) -> Tensor:
    """Hydrogen positions ``[..., 2, 3]`` (the second only for a CH2) on ``centre [..., 3]`` with heavy
    neighbours ``heavy [..., 3, 3]`` (the first ``n_heavy [...]`` valid), ``length [..., 2]``, ``angle [...]``.
    Positions must be unwrapped (a local frame, or minimum images)."""
    valid = torch.arange(3, device=heavy.device) < n_heavy.unsqueeze(-1)  # [..., 3]
    u = heavy - centre.unsqueeze(-2)
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12) * valid.unsqueeze(-1)
    away = -u.sum(-2)
    away = away / away.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # [..., 3]
    normal = torch.cross(u[..., 0, :], u[..., 1, :], dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    half = (angle / 2).unsqueeze(-1)
    pair = (n_hydrogens == 2).unsqueeze(-1)
    first = torch.where(pair, torch.cos(half) * away + torch.sin(half) * normal, away)
    second = torch.cos(half) * away - torch.sin(half) * normal
    return centre.unsqueeze(-2) + torch.stack([first, second], -2) * length.unsqueeze(-1)
