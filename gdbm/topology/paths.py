"""Bond-path distances inside molecules: which atom pairs are 1, 2, 3, ... bonds apart.

Used for ``nrexcl`` exclusions, for the RDF's exclusion of near neighbours along the chain,
and for the interaction channels (bond / angle / dihedral / non-bonded) of the conditioners.
"""

from __future__ import annotations

from collections import deque

import torch
from torch import Tensor

from gdbm.topology.topology import Topology


def pairs_within(n_atoms: int, bonds: list[tuple[int, int]] | Tensor, max_bonds: int) -> dict[tuple[int, int], int]:
    """``{(i, j): d}`` for every pair ``i < j`` at most ``max_bonds`` bonds apart (``d`` = shortest path)."""
    if isinstance(bonds, Tensor):
        bonds = [tuple(b) for b in bonds.tolist()]
    neighbours: list[list[int]] = [[] for _ in range(n_atoms)]
    for i, j in bonds:
        neighbours[i].append(j)
        neighbours[j].append(i)
    pairs: dict[tuple[int, int], int] = {}
    for start in range(n_atoms):
        depth = {start: 0}
        queue = deque([start])
        while queue:
            atom = queue.popleft()
            if depth[atom] == max_bonds:
                continue
            for nb in neighbours[atom]:
                if nb not in depth:
                    depth[nb] = depth[atom] + 1
                    queue.append(nb)
                    if start < nb:
                        pairs[(start, nb)] = depth[nb]
    return pairs


def path_distance_pairs(topology: Topology, max_bonds: int) -> tuple[Tensor, Tensor]:
    """All same-molecule pairs of a system within ``max_bonds`` bonds: ``([m, 2] i<j, [m] distance)``.

    Computed once per molecule type and replicated over its instances.
    """
    index, dist = [torch.zeros(0, 2, dtype=torch.long)], [torch.zeros(0, dtype=torch.long)]
    conn = topology.connectivity
    cache: dict[str, tuple[Tensor, Tensor]] = {}
    for block in topology.molecules:
        if block.name not in cache:
            inside = (conn[:, 0] >= block.start) & (conn[:, 0] < block.stop)
            local = pairs_within(block.n_atoms, conn[inside] - block.start, max_bonds)
            keys = torch.tensor(list(local.keys()), dtype=torch.long).view(-1, 2)
            cache[block.name] = (keys, torch.tensor(list(local.values()), dtype=torch.long))
        keys, d = cache[block.name]
        index.append(keys + block.start)
        dist.append(d)
    return torch.cat(index), torch.cat(dist)
