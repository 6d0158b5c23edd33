"""Moving a pendant candidate onto its centre: turned about its own atom of the holding bond, then along the line."""

from __future__ import annotations

import torch

from gdbm.sampling.held_candidates import HeldCandidates


def test_a_pendant_group_turns_about_its_pivot_then_slides_onto_its_target():
    gen = torch.Generator().manual_seed(0)
    local = torch.randn(3, 4, 6, 3, generator=gen, dtype=torch.float64) * 0.1  # [b, K, L, 3]
    weight = torch.rand(3, 6, generator=gen, dtype=torch.float64)  # [b, L]
    shift = torch.randn(3, 4, 3, generator=gen, dtype=torch.float64) * 0.01  # [b, K, 3]
    slot = torch.tensor([0, 2, 5])
    out = HeldCandidates._pivoted(local, shift, slot, weight)
    w = (weight / weight.sum(1, keepdim=True)).view(3, 1, 6, 1)
    assert torch.allclose((out * w).sum(2), (local * w).sum(2) + shift, atol=1e-12)  # the centre on its target
    inner = torch.cdist(local, local)
    assert torch.allclose(torch.cdist(out, out), inner, atol=1e-12)  # rigid
    rows = torch.arange(3)
    pivot_moved = out[rows, :, slot] - local[rows, :, slot]  # [b, K, 3]
    line = (out * w).sum(2) - out[rows, :, slot]  # from the pivot to the centre
    across = torch.linalg.cross(pivot_moved, line).norm(dim=-1)
    assert float(across.max()) < 1e-12  # the pivot moved only along the line to the centre
