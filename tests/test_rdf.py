"""RDFs with known answers: an ideal gas in a strongly sheared triclinic box gives g(r) = 1."""

from __future__ import annotations

import torch

from gdbm.analysis.rdf import RDFAccumulator


def test_ideal_gas_in_sheared_box_is_flat():
    g = torch.Generator().manual_seed(0)
    # thinnest width 2.0 nm < 2 r_max: some pairs are seen through two images and must count
    box = torch.tensor([[3.0, 0.0, 0.0], [-1.6, 2.5, 0.0], [0.7, 0.4, 2.0]], dtype=torch.float64)
    n, frames = 2000, 8
    frac = torch.rand(frames, n, 3, generator=g, dtype=torch.float64)
    pos = frac @ box
    types = ["A"] * (n // 2) + ["B"] * (n // 2)
    acc = RDFAccumulator(types, ["C"] * n, torch.zeros(0, 2, dtype=torch.long), r_max=1.2, width=0.05)
    acc.add(pos, box.expand(frames, 3, 3))
    res = acc.result()
    rdf = res.g()
    assert res.groups == ["all", "carbon", "A-A", "A-B", "B-B"]
    r = res.radii()
    shell = r > 0.3  # small shells hold few pairs: statistical noise only
    for k in range(len(res.groups)):
        assert (rdf[k, shell] - 1.0).abs().max() < 0.05, res.groups[k]
    assert abs(float(rdf[0, r > 1.0].mean()) - 1.0) < 0.01  # the double-image shells included


def test_excluded_pairs_are_left_out():
    box = torch.eye(3, dtype=torch.float64) * 5.0
    pos = torch.tensor([[[1.0, 1.0, 1.0], [1.1, 1.0, 1.0], [1.3, 1.0, 1.0]]], dtype=torch.float64)
    acc = RDFAccumulator(["A", "A", "A"], ["C"] * 3, torch.tensor([[0, 1]]), r_max=1.0, width=0.1)
    acc.add(pos, box.unsqueeze(0))
    assert acc.result().counts[0].sum() == 2  # (0,2) and (1,2), not (0,1)
