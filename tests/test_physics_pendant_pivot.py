"""Turning pendant beads (sPS's phenyl rings) about the bond that holds them, before the smooth centre projection."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.physics.centre_shift import SmoothCentreShift
from gdbm.physics.pendant_pivot import PendantPivot, TurnThenSmooth, rotate_onto
from gdbm.topology.system import load_mapped_system
from gdbm.utils.pbc import minimum_image


def _frame(sps: Path):
    system = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map", partial=True)
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    return system, frame.positions.double(), frame.boxes.double()


def _targets(system, x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Every bead's centre 0.01 nm off where the frame puts it, independently: a generator's centre error."""
    targets = system.mapping.map_positions(x, boxes)
    return targets + 0.01 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)


def _junction_angles(system, x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Every angle term CH2-CH-ipso (C-C-C_AR), degrees."""
    index = system.aa.term("angle_harmonic").index
    types = [tuple(system.aa.types[int(a)] for a in row) for row in index]
    rows = index[torch.tensor([t in (("C", "C", "C_AR"), ("C_AR", "C", "C")) for t in types])]
    a = minimum_image(x[:, rows[:, 0]] - x[:, rows[:, 1]], boxes)
    b = minimum_image(x[:, rows[:, 2]] - x[:, rows[:, 1]], boxes)
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.rad2deg(torch.arccos(cos))


def test_the_phenyl_beads_are_the_pendant_ones_each_turned_about_its_ipso(sps: Path):
    system, x, boxes = _frame(sps)
    pivot = PendantPivot.of(system.mapping, system.aa)
    assert len(pivot.beads) == 360 and pivot.members.shape == (360, 11)  # every C6H5, no backbone bead (shared CH)
    assert all(system.aa.types[int(a)] == "C_AR" for a in pivot.pivots)
    assert {system.mapping.bead_labels[int(b)] for b in pivot.beads} == {"SC"}


def test_turning_points_each_centre_at_its_target_and_moves_only_the_rings(sps: Path):
    system, x, boxes = _frame(sps)
    pivot = PendantPivot.of(system.mapping, system.aa)
    targets = _targets(system, x, boxes)
    turned = pivot.turn(x, boxes, targets)
    moved = minimum_image(turned - x, boxes).norm(dim=-1)[0]  # [n]
    ring_atoms = pivot.members.flatten()
    others = torch.ones(system.aa.n_atoms, dtype=torch.bool)
    others[ring_atoms] = False
    assert float(moved[others].max()) == 0.0 and float(moved[pivot.pivots].max()) < 1e-12
    assert float(moved[ring_atoms].max()) > 0.005
    centres = system.mapping.map_positions(turned, boxes)[:, pivot.beads]
    u = minimum_image(centres - turned[:, pivot.pivots], boxes)
    v = minimum_image(targets[:, pivot.beads] - turned[:, pivot.pivots], boxes)
    cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))
    assert float(cos.min()) > 1 - 1e-12
    bonds = system.aa.connectivity
    length = lambda y: minimum_image(y[:, bonds[:, 1]] - y[:, bonds[:, 0]], boxes).norm(dim=-1)  # noqa: E731
    assert torch.allclose(length(turned), length(x), atol=1e-12)  # rigid turns: every bond keeps its length


def test_rotate_onto_is_the_smallest_rotation():
    u, v = torch.tensor([[1.0, 0, 0]], dtype=torch.float64), torch.tensor([[0, 2.0, 0]], dtype=torch.float64)
    w = torch.tensor([[[1.0, 0, 0], [0, 0, 1.0], [1.0, 1.0, 0]]], dtype=torch.float64)
    out = rotate_onto(w, u, v)
    expected = torch.tensor([[[0, 1.0, 0], [0, 0, 1.0], [-1.0, 1.0, 0]]], dtype=torch.float64)
    assert torch.allclose(out, expected, atol=1e-12)
    assert torch.allclose(rotate_onto(w, u, u), w)


def test_pivot_then_smooth_holds_every_centre_and_spares_the_junction(sps: Path):
    """Both projections put every bead on its target; where the rings' centres are off (the backbone beads
    on theirs), turning the rings first changes the junction angles CH2-CH-ipso a third as much as the smooth
    shift alone, which moves the ipso with its ring (0.67 against 2.1 degrees rms)."""
    system, x, boxes = _frame(sps)
    ring = torch.tensor([label == "SC" for label in system.mapping.bead_labels])
    on_frame = system.mapping.map_positions(x, boxes)
    targets = torch.where(ring[None, :, None], _targets(system, x, boxes), on_frame)
    smooth = SmoothCentreShift(system.mapping, system.aa)
    both = TurnThenSmooth(PendantPivot.of(system.mapping, system.aa).turn, smooth, targets)
    held = {"smooth": smooth.project(x, boxes, targets), "pivot": both.project(x, boxes)}
    for y in held.values():
        off = minimum_image(targets - system.mapping.map_positions(y, boxes), boxes).norm(dim=-1)
        assert float(off.max()) < 1e-9
    before = _junction_angles(system, x, boxes)
    change = {k: float((_junction_angles(system, y, boxes) - before).pow(2).mean().sqrt()) for k, y in held.items()}
    assert change["pivot"] < 0.4 * change["smooth"], change
