"""CG simulations by Boltzmann inversion (gdbm.cgsim): inversion, OpenMM tables, a short run, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gdbm.cgsim.forcefield import bonded_samples, build_forcefield
from gdbm.cgsim.inversion import BOLTZMANN, invert_bonded
from gdbm.cgsim.openmm_system import build_system
from gdbm.cgsim.simulate import RunSettings, run_cg
from gdbm.cli.main import main
from gdbm.data import read_frames
from gdbm.physics.openmm_box import openmm_basis
from gdbm.topology import read_topology


def test_boltzmann_inversion_recovers_a_harmonic_bond():
    k, b0, temperature = 5000.0, 0.35, 300.0  # kJ/mol/nm^2, nm, K
    sigma = math.sqrt(BOLTZMANN * temperature / k)
    rng = np.random.default_rng(0)
    r = rng.normal(b0, sigma, 400_000)
    r = r[rng.random(r.size) < (r / r.max()) ** 2]  # P(r) ~ r^2 exp(-U/kT): the Jacobian of a distance
    table = invert_bonded(r, "bond", temperature, width=0.002)
    window = np.abs(table.x - b0) < 1.5 * sigma
    curvature, slope, _ = np.polyfit(table.x[window], table.u[window], 2)
    assert 2 * curvature == pytest.approx(k, rel=0.1)
    assert -slope / (2 * curvature) == pytest.approx(b0, abs=0.002)
    assert table.u.min() == 0.0
    far = np.abs(table.x - b0) > 6 * sigma  # never sampled: continued, rising away from b0
    assert (table.u[far] > table.u[window].max()).all()


@pytest.fixture(scope="module")
def sps_cg(sps: Path):
    top = read_topology(sps / "PS1_cg.itp", require_parameters=False, n_molecules=36)
    reference = read_frames(sps / "train_t568" / "cg")
    return top, reference, build_forcefield(top, reference, 568.0, cutoff=1.0)


def test_openmm_energies_are_the_tabulated_potentials(sps_cg):
    import openmm as mm

    top, reference, ff = sps_cg
    frame = reference.subset([0])
    rotation, vectors = openmm_basis(frame.boxes[0].double().numpy())
    system = build_system(ff, np.full(top.n_atoms, 50.0), vectors)
    for k, force in enumerate(system.getForces()):
        force.setForceGroup(k)
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    context.setPositions(frame.positions[0].double().numpy() @ rotation)
    for k, force in enumerate(system.getForces()):
        if force.getName() == "pair":
            continue
        ours = sum(float(g.table(bonded_samples(top, frame, g.kind, g.index)[g.key].numpy()).sum())
                   for g in ff.bonded if g.kind == force.getName())
        openmm = context.getState(getEnergy=True, groups={k}).getPotentialEnergy()._value
        assert openmm == pytest.approx(ours, rel=0.05)  # OpenMM splines vs our linear interpolation


def test_a_short_run_keeps_bead_count_names_box_and_bonds(sps_cg):
    top, reference, ff = sps_cg
    start = reference.subset([0])
    settings = RunSettings(temperature=568.0, timestep=0.005, equilibration=0.05, spacing=0.05, n_frames=2,
                           minimise_iterations=20)
    frames = run_cg(ff, start, settings, progress=False)
    assert frames.positions.shape == (2, top.n_atoms, 3)
    assert torch.isfinite(frames.positions).all()
    assert frames.names == start.names
    assert torch.equal(frames.boxes[0], start.boxes[0])
    bonds = [g for g in ff.bonded if g.kind == "bond"][0]
    ref_len = bonded_samples(top, start, "bond", bonds.index)[bonds.key].mean()
    run_len = bonded_samples(top, frames, "bond", bonds.index)[bonds.key].mean()
    assert abs(float(run_len - ref_len)) < 0.02


def test_terms_select_the_bonded_potentials(sps_cg):
    top, reference, _ = sps_cg
    ff = build_forcefield(top, reference.subset([0, 1, 2]), 568.0, terms=("bonds", "angles"))
    assert {g.kind for g in ff.bonded} == {"bond", "angle"}
    assert len(ff.pairs) == len(ff.type_names) * (len(ff.type_names) + 1) // 2


def test_cli_writes_frames_that_read_back_and_keeps_them(tmp_path: Path, sps: Path, capsys):
    test = sps / "test_t568"
    args = ["cgsim", "--cg-itp", str(sps / "PS1_cg.itp"), "--ref", str(sps / "train_t568" / "cg"),
            "--start", str(test / "cg.xtc"), "--start-struct", str(test / "cg.gro"), "--temperature", "568",
            "--equilibration", "0.02", "--spacing", "0.02", "--n-frames", "2", "-o", str(tmp_path / "run")]
    assert main(args) == 0
    frames = read_frames(tmp_path / "run" / "cg.xtc", tmp_path / "run" / "cg.gro")
    assert len(frames) == 2 and frames.names == read_frames(test / "cg.gro").names
    assert (tmp_path / "run" / "cg_check.png").exists() and (tmp_path / "run" / "run.json").exists()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [(["--timestep", "-1"], "timestep"),
                                          (["--terms", "bonds,torsions"], "torsions")])
def test_cli_rejects_bad_settings_with_one_line(tmp_path: Path, sps: Path, capsys, bad, message):
    test = sps / "test_t568"
    code = main(["cgsim", "--cg-itp", str(sps / "PS1_cg.itp"), "--ref", str(sps / "train_t568" / "cg"),
                 "--start", str(test / "cg.xtc"), "--start-struct", str(test / "cg.gro"), "--temperature", "568",
                 *bad, "-o", str(tmp_path / "run")])
    assert code == 2 and message in capsys.readouterr().err
