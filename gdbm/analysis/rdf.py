"""Radial distribution functions in triclinic periodic boxes, per atom-type pair.

Every image pair within ``r_max`` counts (vesin), so boxes thinner than ``2 r_max`` are
handled as the physics requires. Same-molecule pairs up to ``exclude_bonds`` bonds apart
are left out (their nearest image only), as in the thesis' evaluation. Normalisation is
the ideal-gas count of the pair type in each shell: ``N_A N_B / V`` for ``A != B`` and
``N_A (N_A - 1) / (2 V)`` for ``A = A`` (each unordered pair is counted once).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.physics.neighbors import PairList, nearest_excluded, neighbor_pairs, pair_vectors


@dataclass
class RDFCounts:
    """Accumulated pair counts per group ``[G, n_bins]`` and ideal-gas normalisers ``[G]``."""

    groups: list[str]
    counts: Tensor  # [G, n_bins] float64
    ideal: Tensor  # [G] float64: sum over frames of pair density (pairs / nm^3)
    width: float
    r_max: float

    def g(self) -> Tensor:
        """g(r) per group ``[G, n_bins]``."""
        edges = torch.arange(self.counts.shape[1] + 1, dtype=torch.float64) * self.width
        shell = 4.0 / 3.0 * math.pi * (edges[1:] ** 3 - edges[:-1] ** 3)  # [n_bins]
        return self.counts / (self.ideal.unsqueeze(1) * shell).clamp_min(1e-300)

    def radii(self) -> Tensor:
        return (torch.arange(self.counts.shape[1], dtype=torch.float64) + 0.5) * self.width


class RDFAccumulator:
    """Accumulates RDF pair counts frame chunk by frame chunk (bounded memory).

    Groups: ``"all"`` atoms, ``"carbon"`` (element C) and, with ``per_type``, every
    force-field type pair ``"A-B"`` (``A <= B``), counted with one ``bincount`` per family.
    """

    def __init__(self, types: list[str], elements: list[str], excluded: Tensor, r_max: float = 1.2,
                 width: float = 0.01, per_type: bool = True):
        self.type_names = sorted(set(types))
        self.type_code = torch.tensor([self.type_names.index(t) for t in types], dtype=torch.long)  # [n]
        self.carbon = torch.tensor([e == "C" for e in elements], dtype=torch.bool)  # [n]
        self.per_type = per_type
        self.excluded = excluded
        self.n_atoms = len(types)
        self.r_max, self.width = r_max, width
        self.n_bins = int(round(r_max / width))
        n_t = len(self.type_names)
        self.pair_names = [f"{self.type_names[a]}-{self.type_names[b]}" for a in range(n_t) for b in range(a, n_t)]
        self.names = ["all", "carbon"] + (self.pair_names if per_type else [])
        self.counts = torch.zeros(len(self.names), self.n_bins, dtype=torch.float64)
        self.ideal = torch.zeros(len(self.names), dtype=torch.float64)
        counts = torch.bincount(self.type_code, minlength=n_t).double()  # [T]
        n_c = float(self.carbon.sum())
        pairs = [self.n_atoms * (self.n_atoms - 1) / 2.0, n_c * (n_c - 1) / 2.0]
        for a in range(n_t):
            for b in range(a, n_t):
                na, nb = float(counts[a]), float(counts[b])
                pairs.append(na * (na - 1) / 2.0 if a == b else na * nb)
        self.n_pairs = torch.tensor(pairs[:len(self.names)], dtype=torch.float64)  # [G]
        # upper-triangle position of each (a, b) type pair
        tri = torch.full((n_t, n_t), -1, dtype=torch.long)
        k = 0
        for a in range(n_t):
            for b in range(a, n_t):
                tri[a, b] = tri[b, a] = k
                k += 1
        self.tri = tri

    def add(self, positions: Tensor, boxes: Tensor, pairs: PairList | None = None, r: Tensor | None = None) -> None:
        """Add frames ``[F, n, 3]`` with boxes ``[F, 3, 3]``.

        ``pairs`` (and their distances ``r``) from an earlier search reaching ``r_max`` may be given.
        """
        pos, box = positions.detach(), boxes.detach()
        if pairs is None:
            pairs = neighbor_pairs(pos, box, self.r_max)
        if r is None:
            r = pair_vectors(pos, box, pairs).norm(dim=-1)  # [P]
        keep = ~nearest_excluded(pairs, r, self.excluded, self.n_atoms) & (r < self.r_max) & (pairs.i != pairs.j)
        i, j, r = pairs.i[keep], pairs.j[keep], r[keep]
        b = torch.clamp((r / self.width).long(), max=self.n_bins - 1)  # [P]
        self.counts[0] += torch.bincount(b, minlength=self.n_bins).double()
        both_c = self.carbon[i] & self.carbon[j]
        self.counts[1] += torch.bincount(b[both_c], minlength=self.n_bins).double()
        if self.per_type:
            code = self.tri[self.type_code[i], self.type_code[j]]  # [P]
            n_groups = len(self.pair_names)
            flat = torch.bincount(code * self.n_bins + b, minlength=n_groups * self.n_bins).double()
            self.counts[2:] += flat.view(n_groups, self.n_bins)
        self.ideal += self.n_pairs * (1.0 / torch.linalg.det(box.double()).abs()).sum()

    def result(self) -> RDFCounts:
        return RDFCounts(self.names, self.counts.clone(), self.ideal.clone(), self.width, self.r_max)


