"""Periodic neighbour pairs against an explicit enumeration of image shifts on real sPS frames."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from gdbm.data import read_frames
from gdbm.physics import EnergyModel, PairList, nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.topology import read_topology

N_SPS = 5832  # atoms in an sPS frame


def _brute_pairs(x: torch.Tensor, box: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image pair (i < j, shift) closer than ``cutoff``, by enumerating lattice shifts.

    Returns integer rows ``[i, j, s_a, s_b, s_c]`` and distances (float64). The shift range
    per box vector follows from the fractional extent of the positions (frames are wrapped
    atom by atom, so fractions can exceed [0, 1)) and the box widths.
    """
    x, box = x.double(), box.double()
    frac = x @ torch.linalg.inv(box)  # [n, 3]
    spread = frac.max(0).values - frac.min(0).values
    widths = torch.det(box).abs() / torch.linalg.cross(box[[1, 2, 0]], box[[2, 0, 1]]).norm(dim=1)
    reach = (spread + cutoff / widths).floor().long().tolist()  # |frac_j - frac_i + n| <= cutoff / w
    x32, rows, dists = x.float(), [], []
    for s in itertools.product(*(range(-r, r + 1) for r in reach)):
        shift = torch.tensor(s, dtype=torch.float64)
        y = x + shift @ box
        for start in range(0, len(x), 2000):
            # float32 distances with a margin find the candidates, float64 decides
            near = torch.cdist(x32[start:start + 2000], y.float()) < cutoff + 1e-3  # [2000, n]
            i, j = torch.nonzero(near, as_tuple=True)
            i = i + start
            r = (y[j] - x[i]).norm(dim=1)
            keep = (i < j) & (r < cutoff)  # i == j would be an atom and its own image: none here
            rows.append(torch.cat([torch.stack([i[keep], j[keep]], 1), shift.long().expand(int(keep.sum()), 3)], 1))
            dists.append(r[keep])
    return torch.cat(rows), torch.cat(dists)


def _rows(pairs: PairList) -> torch.Tensor:
    return torch.cat([torch.stack([pairs.i, pairs.j], 1), pairs.shift.round().long()], 1)


def _sorted_keys(rows: torch.Tensor, n: int) -> torch.Tensor:
    """One sorted integer per (i, j, shift) row (shift components in [-2, 2])."""
    s = rows[:, 2:] + 2
    return torch.sort(((rows[:, 0] * n + rows[:, 1]) * 125) + s[:, 0] * 25 + s[:, 1] * 5 + s[:, 2]).values


def _images_per_pair(rows: torch.Tensor, n: int) -> torch.Tensor:
    return torch.unique(rows[:, 0] * n + rows[:, 1], return_counts=True)[1]


@pytest.fixture(scope="module")
def train_frame(sps: Path):
    return read_frames(sps / "train_t568" / "aa" / "90.gro")


@pytest.fixture(scope="module")
def train_brute(train_frame):
    """Brute-force image pairs of the training frame at 1.2 nm (filtered for smaller cutoffs)."""
    return _brute_pairs(train_frame.positions[0], train_frame.boxes[0], 1.2)


@pytest.fixture(scope="module")
def sheared_test_frame(sps: Path):
    """Held-out frame 10: the shortest lattice vector (c, 2.387 nm) is below 2 x 1.2 nm."""
    frames = read_frames(sps / "test_t568" / "aa.xtc", sps / "test_t568" / "aa.gro")
    return frames.positions[10], frames.boxes[10]


@pytest.mark.parametrize("cutoff", [1.0, 1.2])
def test_pairs_match_brute_force_on_training_frame(train_frame, train_brute, cutoff: float):
    x, box = train_frame.positions[0], train_frame.boxes[0]
    pairs = neighbor_pairs(x.double(), box.double(), cutoff)
    rows = _rows(pairs)
    ref, ref_d = (t[train_brute[1] < cutoff] for t in train_brute)
    assert (pairs.i <= pairs.j).all()
    assert torch.equal(_sorted_keys(rows, N_SPS), _sorted_keys(ref, N_SPS))
    d = pair_vectors(x.double(), box.double(), pairs).norm(dim=1)
    assert float(d.max()) < cutoff
    assert torch.allclose(d.sort().values, ref_d.sort().values, atol=1e-9)


@pytest.fixture(scope="module")
def sheared_brute(sheared_test_frame):
    return _brute_pairs(*sheared_test_frame, 1.2)


def test_double_image_pairs_at_1_2_nm_are_all_found(sheared_test_frame, sheared_brute):
    x, box = sheared_test_frame
    pairs = neighbor_pairs(x.double(), box.double(), 1.2)
    rows = _rows(pairs)
    ref, _ = sheared_brute
    assert torch.equal(_sorted_keys(rows, N_SPS), _sorted_keys(ref, N_SPS))
    # some pairs are seen through two periodic images, and both images are in the list
    assert int((_images_per_pair(ref, N_SPS) == 2).sum()) == 77
    assert int((_images_per_pair(rows, N_SPS) == 2).sum()) == 77
    # at 1.0 nm (below half the thinnest width) every pair appears once
    assert int(_images_per_pair(_rows(neighbor_pairs(x, box, 1.0)), N_SPS).max()) == 1


def test_lj_at_1_2_nm_equals_the_sum_over_enumerated_images(sps: Path, sheared_test_frame, sheared_brute):
    top = read_topology(sps / "topol.top")
    x, box = sheared_test_frame
    rows, r = sheared_brute
    # an exclusion removes the nearest image of its pair only (plain Python, one pair at a time)
    excluded = set(map(tuple, top.exclusions.tolist()))
    nearest: dict[tuple[int, int], int] = {}
    for k, (i, j) in enumerate(rows[:, :2].tolist()):
        if (i, j) in excluded and ((i, j) not in nearest or r[k] < r[nearest[(i, j)]]):
            nearest[(i, j)] = k
    keep = torch.ones(len(rows), dtype=torch.bool)
    keep[list(nearest.values())] = False
    t = top.lj.atom_type
    ti, tj, rk = t[rows[keep, 0]], t[rows[keep, 1]], r[keep]
    per_pair = top.lj.c12[ti, tj] / rk**12 - top.lj.c6[ti, tj] / rk**6
    ours = EnergyModel(top, cutoff=1.2)(x.double(), box.double())
    assert float(ours.lj) == pytest.approx(float(per_pair.sum()), rel=1e-10)
    # the second images of the 77 doubly seen pairs are part of it
    pair_key = rows[keep, 0] * N_SPS + rows[keep, 1]
    _, first = np.unique(pair_key.numpy(), return_index=True)
    assert len(first) == int(keep.sum()) - 77
    assert abs(float(per_pair.sum() - per_pair[first].sum())) > 1e-4


def test_batched_frames_and_float32(train_frame, sheared_test_frame):
    x = torch.stack([train_frame.positions[0], sheared_test_frame[0]])
    box = torch.stack([train_frame.boxes[0], sheared_test_frame[1]])
    batch = neighbor_pairs(x, box, 1.0)
    for f in range(2):
        one = neighbor_pairs(x[f], box[f], 1.0)
        sel = batch.frame == f
        assert torch.equal(_sorted_keys(_rows(one), N_SPS), _sorted_keys(_rows(batch.select(sel)), N_SPS))
    d = pair_vectors(x, box, batch)
    assert d.dtype == torch.float32 and d.shape == (len(batch), 3)


def test_pair_vectors_carry_gradients():
    x = torch.tensor([[0.1, 0.1, 0.1], [1.9, 0.1, 0.1]], dtype=torch.float64, requires_grad=True)
    box = torch.eye(3, dtype=torch.float64) * 2.0
    pairs = neighbor_pairs(x, box, 0.5)
    d = pair_vectors(x, box, pairs)
    assert len(pairs) == 1 and torch.allclose(d.norm(dim=1), torch.tensor([0.2], dtype=torch.float64))
    (grad,) = torch.autograd.grad(d.norm(dim=1).sum(), x)
    assert torch.allclose(grad, torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]], dtype=torch.float64))


def test_open_system_matches_cdist():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(300, 3, generator=g, dtype=torch.float64) * 3.0
    pairs = neighbor_pairs(x, None, 0.6)
    d = torch.cdist(x, x)
    i, j = torch.nonzero(torch.triu(d < 0.6, diagonal=1), as_tuple=True)
    assert len(pairs) == len(i)
    assert torch.equal(torch.unique(pairs.i * 300 + pairs.j), torch.unique(i * 300 + j))
    assert (pairs.shift == 0).all()


def test_exclusion_removes_only_the_nearest_image():
    # box 1.5 nm thick in z, cutoff 1.0: atoms 0.6 nm apart in z also see each other at 0.9 nm
    x = torch.tensor([[0.5, 0.5, 0.2], [0.5, 0.5, 0.8], [2.5, 2.5, 0.2]], dtype=torch.float64)
    box = torch.diag(torch.tensor([4.0, 4.0, 1.5], dtype=torch.float64))
    pairs = neighbor_pairs(x, box, 1.0)
    r = pair_vectors(x, box, pairs).norm(dim=1)
    between = (pairs.i == 0) & (pairs.j == 1)
    assert sorted(r[between].tolist()) == pytest.approx([0.6, 0.9])
    drop = nearest_excluded(pairs, r, torch.tensor([[0, 1]]), 3)
    assert int(drop.sum()) == 1
    assert float(r[drop]) == pytest.approx(0.6)
    kept = pairs.select(~drop)
    assert int(((kept.i == 0) & (kept.j == 1)).sum()) == 1
    # an excluded pair beyond the cutoff removes nothing
    assert not nearest_excluded(pairs, r, torch.tensor([[0, 2]]), 3).any()


def test_an_atom_sees_its_own_images_once_per_plus_minus_pair():
    # a 0.8 nm cubic box: images at |a| = 0.8 (6) and |a + b| = 1.13 nm (12); a half list holds half
    x = torch.tensor([[0.1, 0.1, 0.1]], dtype=torch.float64)
    box = torch.eye(3, dtype=torch.float64) * 0.8
    assert len(neighbor_pairs(x, box, 1.0)) == 3
    pairs = neighbor_pairs(x, box, 1.2)
    assert len(pairs) == 9 and (pairs.i == pairs.j).all()
    assert torch.allclose(pair_vectors(x, box, pairs).norm(dim=1).sort().values,
                          torch.tensor([0.8] * 3 + [0.8 * 2**0.5] * 6, dtype=torch.float64))
