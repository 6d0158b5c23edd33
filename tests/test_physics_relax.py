"""Constrained relaxation on a real sPS frame: contacts go, the CG beads and the bonds stay."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.utils.pbc import minimum_image
from gdbm.physics.constraints import bond_constraints
from gdbm.physics.energy import EnergyModel
from gdbm.physics.relax import CentreConstraint, relax
from gdbm.topology.system import load_mapped_system


def _centre_error(constraint: CentreConstraint, x: torch.Tensor, boxes: torch.Tensor) -> float:
    off = minimum_image(constraint.targets - constraint.mapping.map_positions(x, boxes), boxes)
    return float(off.norm(dim=-1).max())


def test_centre_projection_puts_every_bead_on_its_target(sps: Path):
    # Fritz's map shares 576 atoms between two beads (weight 0.5) and leaves 144 out
    system = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map", partial=True)
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    x, boxes = frame.positions.double(), frame.boxes.double()
    targets = system.mapping.map_positions(x, boxes)
    noisy = x + 0.03 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    constraint = CentreConstraint(system.mapping, targets, system.aa.masses)
    assert _centre_error(constraint, noisy, boxes) > 0.01
    fixed = constraint.project(noisy, boxes)
    assert _centre_error(constraint, fixed, boxes) < 1e-5
    move = (fixed - noisy).norm(dim=-1)
    assert float(move.pow(2).mean().sqrt()) < 0.03 and float(move.max()) < 0.2  # a shift, not a rebuild


def test_relaxation_lowers_the_energy_keeping_beads_and_bonds(sps: Path):
    system = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map", partial=True)
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    x, boxes = frame.positions.double(), frame.boxes.double()
    constraint = CentreConstraint(system.mapping, system.mapping.map_positions(x, boxes), system.aa.masses)
    noisy = x + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    model = EnergyModel(system.aa)
    calls = []
    result = relax(noisy, boxes, model, 8, centres=constraint, bonds=True, on_step=lambda: calls.append(1))
    assert len(calls) == 8
    assert float(result.energy_after[0]) < 0.5 * float(result.energy_before[0])
    recomputed = model(result.positions.float(), boxes.float()).total
    assert abs(float(recomputed[0] - result.energy_after[0])) < 1e-3 * abs(float(result.energy_after[0]))
    assert _centre_error(constraint, result.positions, boxes) < 1e-4
    pairs, b0 = bond_constraints(system.aa)
    lengths = minimum_image(result.positions[:, pairs[:, 1]] - result.positions[:, pairs[:, 0]], boxes).norm(dim=-1)
    assert float((lengths - b0).abs().max()) < 1e-3


def test_cli_relaxes_a_trajectory_against_its_cg_frames(sps: Path, tmp_path: Path, capsys):
    from gdbm.cli.main import main
    from gdbm.data import write_frames
    from gdbm.data.trajectory import Frames

    train = sps / "train_t568"
    frame = read_frames(train / "aa" / "90.gro")
    noisy = frame.positions + 0.02 * torch.randn(frame.positions.shape, generator=torch.Generator().manual_seed(3))
    write_frames(tmp_path / "noisy.gro", Frames(noisy, frame.boxes, frame.labels, frame.names, frame.resnames,
                                                frame.resids))
    args = ["relax", "--top", str(sps / "topol.top"), "--aa", str(tmp_path / "noisy.gro"),
            "--cg-map", str(sps / "PS1_cg_fritz.map"), "--cg", str(train / "cg" / "90.gro"), "--steps", "3",
            "-o", str(tmp_path / "relaxed.gro")]
    assert main(args) == 0
    assert "frame 0:" in capsys.readouterr().out
    system = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map", partial=True)
    relaxed = read_frames(tmp_path / "relaxed.gro")
    beads = system.mapping.map_positions(relaxed.positions.double(), relaxed.boxes.double())
    cg = read_frames(train / "cg" / "90.gro")
    assert float(minimum_image(beads - cg.positions.double(), cg.boxes.double()).norm(dim=-1).max()) < 2e-3  # .gro
    assert main(args) == 2  # no overwrite without --force
    assert main([*args[:-2], "--cg", str(sps / "test_t568" / "cg.xtc"), "-o", str(tmp_path / "x.gro")]) == 2
