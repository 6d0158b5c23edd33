"""Bond-path distances within molecules."""

from __future__ import annotations

import torch

from gdbm.topology.paths import pairs_within, path_distance_pairs
from gdbm.topology import read_topology


def test_chain_distances():
    # 0-1-2-3-4 with a branch 2-5
    pairs = pairs_within(6, [(0, 1), (1, 2), (2, 3), (3, 4), (2, 5)], 3)
    assert pairs[(0, 1)] == 1 and pairs[(0, 2)] == 2 and pairs[(0, 3)] == 3 and pairs[(0, 5)] == 3
    assert (0, 4) not in pairs and pairs[(4, 5)] == 3


def test_sps_pairs_per_chain(sps):
    top = read_topology(sps / "topol.top")
    index, dist = path_distance_pairs(top, 3)
    assert int((dist == 1).sum()) == 36 * 171 and int((dist == 2).sum()) == 36 * 300
    assert torch.equal(index[dist == 1].sort(dim=0).values, top.connectivity.sort(dim=0).values)
