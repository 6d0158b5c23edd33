"""Seating pendant beads (sPS's phenyl rings) near their attachment's ideal site and bending them out of plane."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.physics.centre_shift import SmoothCentreShift
from gdbm.physics.pendant_pivot import PendantPivot
from gdbm.physics.pendant_pivot import TurnThenSmooth
from gdbm.physics.pendant_seat import PendantSeat, rotate_about
from gdbm.topology.system import load_mapped_system
from gdbm.utils.pbc import minimum_image


def _frame(sps: Path):
    system = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map", partial=True)
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    return system, frame.positions.double(), frame.boxes.double()


def _angle(x: torch.Tensor, boxes: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Angles a-b-c, degrees ``[F, m]``."""
    u = minimum_image(x[:, a] - x[:, b], boxes)
    v = minimum_image(x[:, c] - x[:, b], boxes)
    return torch.rad2deg(torch.arccos((u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))))


def _moved(x: torch.Tensor, y: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    return minimum_image(y - x, boxes).norm(dim=-1)[0]  # [n]


def test_the_backbone_phenyls_are_seated_and_the_chain_end_ones_pivoted(sps: Path):
    system, x, boxes = _frame(sps)
    seat = PendantSeat.of(system.mapping, system.aa)
    assert len(seat.beads) == 324 and len(seat.rest.beads) == 36  # 9 of 10 rings per chain hang on a CH(CH2)2
    assert all(system.aa.types[int(a)] == "C_AR" for a in seat.inner)
    assert all(system.aa.types[int(a)] == "C" for a in seat.outer)
    assert bool((seat.others[:, :2] >= 0).all()) and bool((seat.others[:, 2] == -1).all())
    assert torch.allclose(seat.cos_theta0, torch.cos(torch.deg2rad(torch.tensor(109.45, dtype=torch.float64))))


def test_the_ideal_site_makes_theta0_with_both_backbone_neighbours(sps: Path):
    system, x, boxes = _frame(sps)
    seat = PendantSeat.of(system.mapping, system.aa)
    site = x.clone()
    site[:, seat.inner] = x[:, seat.outer] + 0.15 * seat.ideal(x, boxes)
    for column in (0, 1):
        angles = _angle(site, boxes, seat.others[:, column], seat.outer, seat.inner)
        assert torch.allclose(angles, torch.full_like(angles, 109.45), atol=0.2), float((angles - 109.45).abs().max())


def test_seating_keeps_the_asked_fraction_of_the_deviation_and_every_bond(sps: Path):
    system, x, boxes = _frame(sps)
    seat = PendantSeat.of(system.mapping, system.aa)
    deviation = lambda y: torch.rad2deg(torch.arccos((seat.ideal(y, boxes) * _unit_bond(y, boxes, seat)).sum(-1).clamp(-1, 1)))  # noqa: E731
    before = deviation(x)
    assert 4 < float(before.pow(2).mean().sqrt()) < 15  # the reference's ipso leaves the ideal site by degrees
    assert float(_moved(x, seat.seat(x, boxes, 1.0), boxes).max()) < 1e-12  # (atoms may change periodic image)
    seated = seat.seat(x, boxes, 0.7)
    assert torch.allclose(deviation(seated), 0.7 * before, atol=1e-3)
    assert float(deviation(seat.seat(x, boxes, 0.0)).max()) < 1e-3
    ring = seat.members[seat.members >= 0]
    others = torch.ones(system.aa.n_atoms, dtype=torch.bool)
    others[ring] = False
    assert float(_moved(x, seated, boxes)[others].max()) == 0.0
    bonds = system.aa.connectivity
    length = lambda y: minimum_image(y[:, bonds[:, 1]] - y[:, bonds[:, 0]], boxes).norm(dim=-1)  # noqa: E731
    assert torch.allclose(length(seated), length(x), atol=1e-12)


def _unit_bond(y: torch.Tensor, boxes: torch.Tensor, seat: PendantSeat) -> torch.Tensor:
    v = minimum_image(y[:, seat.inner] - y[:, seat.outer], boxes)
    return v / v.norm(dim=-1, keepdim=True)


def test_bending_moves_the_centre_towards_its_target_out_of_plane_only(sps: Path):
    """The bend turns each ring about its ipso: the ring's centre comes nearer its target's direction, nothing
    outside the ring moves, and the angles CH-ipso-ortho change far less than under the pivot's smallest turn."""
    system, x, boxes = _frame(sps)
    seat = PendantSeat.of(system.mapping, system.aa)
    targets = system.mapping.map_positions(x, boxes)
    targets = targets + 0.02 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    bent = seat.bend(x, boxes, targets)
    moved = _moved(x, bent, boxes)
    assert float(moved[seat.inner].max()) < 1e-12 and float(moved[seat.outer].max()) == 0.0
    assert float(moved[seat.members[seat.members >= 0]].max()) > 0.005
    pivoted = PendantPivot(seat.beads, seat.inner, seat.members, system.mapping).turn(x, boxes, targets)
    in_plane = lambda y: torch.cat([_angle(y, boxes, seat.outer, seat.inner, seat.plane[:, c]) for c in (0, 1)], 1)  # noqa: E731
    change = {k: float((in_plane(y) - in_plane(x)).pow(2).mean().sqrt()) for k, y in (("bend", bent), ("pivot", pivoted))}
    assert change["bend"] < 0.25 * change["pivot"], change  # 1.0 against 8.0 degrees rms
    miss = lambda y: 1 - torch.nn.functional.cosine_similarity(  # noqa: E731
        minimum_image(system.mapping.map_positions(y, boxes)[:, seat.beads] - y[:, seat.inner], boxes),
        minimum_image(targets[:, seat.beads] - y[:, seat.inner], boxes), dim=-1)
    assert bool((miss(bent) <= miss(x) + 1e-12).all()) and float(miss(bent).mean()) < 0.6 * float(miss(x).mean())


def test_seat_bend_then_smooth_holds_every_centre(sps: Path):
    system, x, boxes = _frame(sps)
    targets = system.mapping.map_positions(x, boxes)
    targets = targets + 0.01 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    hold = TurnThenSmooth(PendantSeat.of(system.mapping, system.aa, keep=0.7).turn,
                          SmoothCentreShift(system.mapping, system.aa), targets)
    held = hold.project(x, boxes)
    off = minimum_image(targets - system.mapping.map_positions(held, boxes), boxes).norm(dim=-1)
    assert float(off.max()) < 1e-9


def test_rotate_about_turns_by_the_right_hand_rule():
    v = torch.tensor([[[1.0, 0, 0], [0, 0, 2.0]]], dtype=torch.float64)
    axis = torch.tensor([[0, 0, 1.0]], dtype=torch.float64)
    out = rotate_about(v, axis, torch.tensor([torch.pi / 2], dtype=torch.float64))
    assert torch.allclose(out, torch.tensor([[[0, 1.0, 0], [0, 0, 2.0]]], dtype=torch.float64), atol=1e-12)
