"""Minimum images in triclinic boxes: exact against brute force and against a rectangular lattice in sheared bases."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.physics import minimum_image, selling_reduce


def _brute_minimum_image(d: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Shortest image over every lattice shift that can matter (float64).

    The minimum image y = d + n @ box has |y| <= |d|, so |n_k| <= 2 |d| / w_k with w_k the
    box width across the other two vectors.
    """
    widths = torch.det(box).abs() / torch.linalg.cross(box[[1, 2, 0]], box[[2, 0, 1]]).norm(dim=1)
    reach = (2 * d.norm(dim=1).max() / widths).ceil().long().tolist()
    shifts = torch.tensor(list(itertools.product(*(range(-r, r + 1) for r in reach))), dtype=torch.float64)
    lattice = shifts @ box  # [S, 3]
    best = torch.empty_like(d)
    for start in range(0, len(d), 200):
        cand = d[start:start + 200].unsqueeze(1) + lattice  # [200, S, 3]
        pick = (cand**2).sum(-1).argmin(1)
        best[start:start + 200] = cand[torch.arange(len(cand)), pick]
    return best


def _rectangular_lattice() -> torch.Tensor:
    """A rotated rectangular box: its minimum image is exactly the rounding of fractions."""
    angle = torch.tensor(0.7, dtype=torch.float64)
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    rot = rot @ torch.tensor([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]], dtype=torch.float64)
    return torch.diag(torch.tensor([2.5, 2.2, 2.0], dtype=torch.float64)) @ rot.T


# integer matrices of determinant 1: other, strongly sheared bases of the same lattice
_UNIMODULAR = torch.tensor([
    [[1, 0, 0], [3, 1, 0], [-2, 4, 1]],
    [[2, 1, 0], [1, 1, 0], [0, 3, 1]],
    [[1, 2, 3], [0, 1, 4], [0, 0, 1]],
], dtype=torch.float64)


def _sheared_boxes() -> torch.Tensor:
    return _UNIMODULAR @ _rectangular_lattice()  # [3, 3, 3]


def test_selling_reduce_keeps_the_lattice_and_is_obtuse():
    boxes = _sheared_boxes()
    reduced = selling_reduce(boxes)
    # same lattice: the change of basis is an integer matrix of determinant +-1
    m = reduced @ torch.linalg.inv(boxes)
    assert torch.allclose(m, m.round(), atol=1e-9)
    assert torch.allclose(torch.det(m.round()).abs(), torch.ones(3, dtype=torch.float64))
    superbase = torch.cat([-reduced.sum(1, keepdim=True), reduced], 1)  # [B, 4, 3]
    gram = superbase @ superbase.transpose(1, 2)
    off = ~torch.eye(4, dtype=torch.bool)
    assert (gram[:, off] <= 1e-9).all()


def test_minimum_image_is_exact_in_sheared_bases_of_a_rectangular_lattice():
    g = torch.Generator().manual_seed(0)
    lattice = _rectangular_lattice()
    d = (torch.rand(5000, 3, generator=g, dtype=torch.float64) - 0.5) * 40.0  # many cells away
    ref = d - torch.round(d @ torch.linalg.inv(lattice)) @ lattice
    for box in _sheared_boxes():
        ours = minimum_image(d, box)
        assert torch.allclose(ours, ref, atol=1e-9)
        # naive rounding of fractional coordinates in the sheared basis is not enough
        naive = d - torch.round(d @ torch.linalg.inv(box)) @ box
        assert (naive.norm(dim=1) > ref.norm(dim=1) + 1e-6).any()


def test_minimum_image_on_sps_boxes_batched_and_differentiable(sps: Path):
    frames = read_frames(sps / "train_t568" / "aa")
    boxes = frames.boxes.double()  # [13, 3, 3]
    g = torch.Generator().manual_seed(1)
    d = ((torch.rand(len(boxes), 500, 3, generator=g, dtype=torch.float64) - 0.5) * 10.0).requires_grad_(True)
    ours = minimum_image(d, boxes)  # [13, 500, 3]
    for f in range(len(boxes)):
        ref = _brute_minimum_image(d[f].detach(), boxes[f])
        assert torch.allclose(ours[f].detach().norm(dim=1), ref.norm(dim=1), atol=1e-9)
    # the lattice shift is a constant: the Jacobian is the identity
    (grad,) = torch.autograd.grad(ours.sum(), d)
    assert torch.equal(grad, torch.ones_like(d))


def test_minimum_image_single_frame_and_float32():
    box = _sheared_boxes()[0]
    d = torch.tensor([[7.0, 1.0, 0.1], [0.1, 0.2, 2.3]], dtype=torch.float32)
    out = minimum_image(d, box.float())
    assert out.dtype == torch.float32 and out.shape == (2, 3)
    ref = _brute_minimum_image(d.double(), box)
    assert torch.allclose(out.double().norm(dim=1), ref.norm(dim=1), atol=1e-5)


def test_make_whole_joins_molecules_the_box_cuts(sps: Path):
    from gdbm.utils.pbc import bond_levels, make_whole
    from gdbm.topology.system import load_mapped_system

    top = load_mapped_system(sps / "topol.top", sps / "PS1.map").aa
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    x, box = frame.positions[0].double(), frame.boxes[0].double()
    i, j = top.connectivity.T
    assert float((x[j] - x[i]).norm(dim=-1).max()) > 1.0  # wrapped atom by atom: some bonds cross the box
    levels = bond_levels(top.n_atoms, top.connectivity)
    assert sum(len(atoms) for atoms, _ in levels) == top.n_atoms - top.n_molecules  # every atom but the roots
    whole = make_whole(x, box, levels)
    assert float((whole[j] - whole[i]).norm(dim=-1).max()) < 0.2
    shift = torch.linalg.solve(box.T, (whole - x).T).T  # in box vectors
    assert torch.allclose(shift, shift.round(), atol=1e-6)  # only lattice translations
