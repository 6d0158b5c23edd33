"""Bond constraints on real sPS frames: bonds end at b0, atoms move little, molecules stay put."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.utils.pbc import minimum_image
from gdbm.physics.constraints import bond_constraints, constrain_bonds
from gdbm.topology import read_topology


def test_noisy_frame_is_projected_back_onto_its_bond_lengths(sps: Path):
    top = read_topology(sps / "topol.top")
    frames = read_frames(sps / "train_t568" / "aa" / "90.gro")
    noise = 0.01 * torch.randn(frames.positions.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noisy = frames.positions.double() + noise
    fixed, worst = constrain_bonds(noisy, frames.boxes, top)
    pairs, b0 = bond_constraints(top)
    assert len(pairs) == 36 * 171  # every bond of the 36 chains: 161 tree bonds + 10 ring closures
    lengths = minimum_image(fixed[:, pairs[:, 1]] - fixed[:, pairs[:, 0]], frames.boxes.double()).norm(dim=-1)
    assert worst < 1e-5 and float((lengths - b0).abs().max()) < 1e-5
    assert float((fixed - noisy).norm(dim=-1).max()) < 0.06  # a correction, not a rebuild
    # mass-weighted moves: every chain's centre of mass stays (to far below a bead's size)
    m = top.masses.double().unsqueeze(-1)
    shift = torch.zeros(int(top.molecule.max()) + 1, 3, dtype=torch.float64)
    shift.index_add_(0, top.molecule, m * (fixed[0] - noisy[0]))
    total = torch.zeros(len(shift), dtype=torch.float64).index_add_(0, top.molecule, m.squeeze(-1))
    assert float((shift / total.unsqueeze(-1)).norm(dim=-1).max()) < 1e-3


def test_reference_bonds_are_already_constrained(sps: Path):
    top = read_topology(sps / "topol.top")
    frames = read_frames(sps / "train_t568" / "aa" / "90.gro")
    fixed, _ = constrain_bonds(frames.positions, frames.boxes, top)
    assert fixed.dtype == frames.positions.dtype
    assert float((fixed - frames.positions).norm(dim=-1).max()) < 0.0015  # the .gro precision


def test_a_stretch_cap_shortens_only_the_bonds_beyond_it(sps: Path):
    """``stretch``: bonds longer than b0 + stretch end at that length; every other bond keeps its length."""
    top = read_topology(sps / "topol.top")
    frames = read_frames(sps / "train_t568" / "aa" / "90.gro")
    noise = 0.005 * torch.randn(frames.positions.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = frames.positions.double() + noise
    pairs, b0 = bond_constraints(top)
    box = frames.boxes.double()

    def stretch(y: torch.Tensor) -> torch.Tensor:
        return (minimum_image(y[:, pairs[:, 1]] - y[:, pairs[:, 0]], box).norm(dim=-1) - b0)[0]

    broken = torch.tensor([10, 500, 4000])  # three bonds pulled apart by moving one atom of each
    x[0, pairs[broken, 1]] += 0.08 * torch.nn.functional.normalize(
        minimum_image(x[0, pairs[broken, 1]] - x[0, pairs[broken, 0]], box[0]), dim=-1)
    before = stretch(x)
    assert bool((before[broken] > 0.07).all())
    capped, worst = constrain_bonds(x, frames.boxes, top, stretch=0.02)
    after = stretch(capped)
    assert worst < 1e-5 and float(after.max()) < 0.02 + 1e-5
    assert torch.allclose(after[broken], torch.full((3,), 0.02, dtype=torch.float64), atol=1e-5)
    far = (before < 0.02) & ~torch.isin(torch.arange(len(pairs)), broken)
    moved = (capped - x).norm(dim=-1)[0] > 1e-9  # [n]
    assert int(moved.sum()) < 40  # the broken bonds' atoms and a few neighbours, of 5832
    assert float((after[far] - before[far]).abs().median()) == 0.0
