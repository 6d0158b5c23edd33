"""The smooth centre projection on a real sPS frame: centres exact, bond and 1-3 vectors bent less than by a rigid shift."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.physics.centre_shift import SmoothCentreShift
from gdbm.physics.relax import CentreConstraint
from gdbm.topology.system import load_mapped_system
from gdbm.utils.pbc import minimum_image


def _frame(sps: Path):
    # Fritz's map shares 576 atoms between two beads (weight 0.5) and leaves 144 out
    system = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map", partial=True)
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    return system, frame.positions.double(), frame.boxes.double()


def _off(system, x: torch.Tensor, boxes: torch.Tensor, targets: torch.Tensor) -> float:
    return float(minimum_image(targets - system.mapping.map_positions(x, boxes), boxes).norm(dim=-1).max())


def _bending(system, before: torch.Tensor, after: torch.Tensor, boxes: torch.Tensor) -> float:
    """What the smooth projection minimises: the summed squared change of the bond and 1-3 vectors (nm^2)."""
    index = torch.cat([system.aa.connectivity, system.aa.term("angle_harmonic").index[:, [0, 2]]])

    def vectors(x: torch.Tensor) -> torch.Tensor:
        return minimum_image(x[:, index[:, 1]] - x[:, index[:, 0]], boxes)

    return float((vectors(after) - vectors(before)).pow(2).sum())


def test_smooth_projection_puts_every_bead_on_its_target_bending_less_than_a_rigid_shift(sps: Path):
    system, x, boxes = _frame(sps)
    shift = SmoothCentreShift(system.mapping, system.aa)
    assert len(shift.types) == 1 and tuple(shift.types[0].atoms.shape) == (36, 162)  # one operator for all chains
    # each bead's target 0.01 nm off where the frame puts it, independently: a generator's centre error
    targets = system.mapping.map_positions(x, boxes)
    targets = targets + 0.01 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert _off(system, x, boxes, targets) > 0.01
    smooth = shift.project(x, boxes, targets)
    rigid = CentreConstraint(system.mapping, targets, system.aa.masses).project(x, boxes)
    assert _off(system, smooth, boxes, targets) < 1e-9 and _off(system, rigid, boxes, targets) < 1e-5
    # both meet the same constraints, and the smooth one is the least-bending way to: on these targets
    # (each bead on its own, harsher than a generator's correlated errors) 22% less than the rigid shift
    assert _bending(system, x, smooth, boxes) < 0.9 * _bending(system, x, rigid, boxes)


def test_smooth_projection_translates_a_molecule_whose_beads_all_move_alike(sps: Path):
    system, x, boxes = _frame(sps)
    targets = system.mapping.map_positions(x, boxes)
    step = torch.tensor([0.02, -0.01, 0.015], dtype=torch.float64)
    first = system.mapping.bead_molecule == 0
    targets[:, first] += step
    moved = SmoothCentreShift(system.mapping, system.aa).holding(targets).project(x, boxes) - x  # [1, n, 3]
    chain = system.aa.molecule == 0
    assert torch.allclose(moved[0, chain], step.expand(int(chain.sum()), 3), atol=1e-9)
    assert float(moved[0, ~chain].abs().max()) < 1e-12  # the other chains' beads were on target already
