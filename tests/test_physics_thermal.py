"""Thermal relaxation (``gdbm relax --thermal``) on a real sPS frame: hot noise goes, thermal widths and beads stay."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.utils.pbc import minimum_image
from gdbm.physics.constraints import bond_constraints
from gdbm.physics.energy import EnergyModel
from gdbm.physics.relax import CentreConstraint, relax
from gdbm.physics.thermal import ThermalRelaxer, ThermalSettings, ThermalStage
from gdbm.topology.system import load_mapped_system

T_REF = 568.0


def _bead_offsets(system, x: torch.Tensor, cg: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    centres = system.mapping.map_positions(x.double().unsqueeze(0), box.double().unsqueeze(0))[0]
    return minimum_image((centres - cg.double()).unsqueeze(0), box.double().unsqueeze(0))[0].norm(dim=-1)


@pytest.fixture(scope="module")
def frame(sps: Path):
    system = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map", partial=True)
    train = sps / "train_t568"
    return system, read_frames(train / "aa" / "90.gro"), read_frames(train / "cg" / "90.gro")


def test_stage_parsing_fills_in_what_is_left_out():
    default = ThermalStage(500, T_REF)
    assert ThermalStage.parse("200", default) == ThermalStage(200, T_REF)
    assert ThermalStage.parse("200,900,2e6,0.001", default) == ThermalStage(200, 900.0, 2e6, 0.001)
    for bad in ("", "a,1", "1,2,3,4,5", "0", "10,-5"):
        with pytest.raises(InputError):
            ThermalStage.parse(bad, default)


def test_thermal_run_restores_thermal_energies_and_keeps_beads_and_bonds(frame):
    system, aa, cg = frame
    box = aa.boxes[0]
    noise = 0.02 * torch.randn(aa.positions[0].shape, generator=torch.Generator().manual_seed(4))
    noisy = aa.positions[0] + noise
    relaxer = ThermalRelaxer(system.aa, system.mapping,
                             ThermalSettings((ThermalStage(100, T_REF),), minimize_iterations=20))
    with pytest.raises(FloatingPointError, match="steepest-descent"):
        relaxer(noisy, box, cg.positions[0], frame=0)  # OpenMM's minimiser meets atoms on top of each other
    held = CentreConstraint(system.mapping, cg.positions[:1].double(), system.aa.masses)
    noisy = relax(noisy.double().unsqueeze(0), aa.boxes.double(), EnergyModel(system.aa), 3, centres=held,
                  bonds=True).positions[0].float()
    out = relaxer(noisy, box, cg.positions[0], frame=0)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    model = EnergyModel(system.aa)
    e_ref, e_noisy, e_out = (model(x.unsqueeze(0), box.unsqueeze(0)) for x in (aa.positions[0], noisy, out))
    assert float(e_noisy.angle[0]) > 1.25 * float(e_ref.angle[0])
    assert abs(float(e_out.angle[0]) / float(e_ref.angle[0]) - 1) < 0.15  # thermal width, not a minimum
    assert float(e_out.lj[0]) < float(e_ref.lj[0]) + 0.1 * abs(float(e_ref.lj[0]))  # no clashes left
    pairs, b0 = bond_constraints(system.aa)
    lengths = (out[pairs[:, 1]] - out[pairs[:, 0]]).double().norm(dim=-1)  # molecules come back whole
    assert float((lengths - b0).abs().max()) < 1e-4
    kt = 0.0083145 * T_REF
    rms = float(_bead_offsets(system, out, cg.positions[0], box).pow(2).mean().sqrt())
    assert rms < 2 * (3 * kt / 5e4) ** 0.5  # the thermal spread of a bead in its restraint
    again = relaxer(noisy, box, cg.positions[0], frame=0)
    assert torch.equal(again, out)  # seeded by the frame
    assert not torch.equal(relaxer(noisy, box, cg.positions[0], frame=1), out)


def test_only_bonds_to_hydrogen_are_constrained_unless_asked(frame):
    system, *_ = frame
    settings = ThermalSettings((ThermalStage(1, T_REF),), all_bonds=False)
    relaxer = ThermalRelaxer(system.aa, system.mapping, settings)
    light = system.aa.masses < 4.1
    assert relaxer.constraints and all(bool(light[i] or light[j]) for (i, j), _ in relaxer.constraints)
    assert len(relaxer.constraints) < len(bond_constraints(system.aa)[0])


def test_cli_thermal_relaxation(sps: Path, frame, tmp_path: Path, capsys):
    from gdbm.cli.main import main

    system, aa, cg = frame
    noisy = aa.positions + 0.02 * torch.randn(aa.positions.shape, generator=torch.Generator().manual_seed(5))
    write_frames(tmp_path / "noisy.gro", Frames(noisy, aa.boxes, aa.labels, aa.names, aa.resnames, aa.resids))
    args = ["relax", "--top", str(sps / "topol.top"), "--aa", str(tmp_path / "noisy.gro"),
            "--cg-map", str(sps / "PS1_cg_fritz.map"), "--cg", str(sps / "train_t568" / "cg" / "90.gro"),
            "--steps", "2", "--constrain-bonds", "--minimize", "10", "-o", str(tmp_path / "hot.gro")]
    assert main([*args, "--thermal", "20"]) == 2  # no temperature
    assert main([*args, "--stage", "20,x", "--temperature", "568"]) == 2
    assert main([*args, "--stage", "10", "--stage", "10,600,1e5", "--temperature", "568",
                 "--stereo-from", str(sps / "train_t568" / "aa" / "90.gro")]) == 0
    said = capsys.readouterr().out
    assert "+ thermal run" in said and "of 324 stereocentres inverted" in said
    out = read_frames(tmp_path / "hot.gro")
    assert float(_bead_offsets(system, out.positions[0], cg.positions[0], aa.boxes[0]).max()) < 0.1
    assert not (tmp_path / "hot.gro.parts").exists()
    assert main([*args, "--thermal", "20", "--temperature", "568"]) == 2  # exists, other settings


def test_cli_retries_a_diverged_frame_after_more_steepest_descent(sps: Path, frame, tmp_path: Path, capsys,
                                                                 monkeypatch):
    import gdbm.sampling.refine
    from gdbm.cli.main import main

    monkeypatch.setattr(gdbm.sampling.refine, "RETRY_STEPS", (3, 5))
    _, aa, _ = frame
    noisy = aa.positions + 0.02 * torch.randn(aa.positions.shape, generator=torch.Generator().manual_seed(4))
    write_frames(tmp_path / "noisy.gro", Frames(noisy, aa.boxes, aa.labels, aa.names, aa.resnames, aa.resids))
    args = ["relax", "--top", str(sps / "topol.top"), "--aa", str(tmp_path / "noisy.gro"),
            "--cg-map", str(sps / "PS1_cg_fritz.map"), "--cg", str(sps / "train_t568" / "cg" / "90.gro"),
            "--steps", "0", "--constrain-bonds", "--minimize", "10", "--thermal", "10", "--temperature", "568",
            "-o", str(tmp_path / "hot.gro")]
    assert main(args) == 0  # without steepest descent OpenMM's minimiser meets NaNs (see above) ...
    assert "diverged, 3 more steepest-descent steps" in capsys.readouterr().out  # ... the retry descends first
