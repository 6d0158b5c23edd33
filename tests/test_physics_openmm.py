"""Our energies and forces against OpenMM: the 13 sPS training frames per term, and tiny
systems for the sign conventions of dihedral forms.

OpenMM reads ``topol.top`` itself (``GromacsTopFile``), so the check covers our GROMACS
reader as well as the energy code. Set-up: ``CutoffPeriodic`` at 1.0 nm, no dispersion
correction, no switching, all charges zero (LJ only), every force periodic (frames are
wrapped atom by atom), one force group per force, Reference platform (double precision).
OpenMM builds 1-4 exceptions from bonds whatever nrexcl says; with fudgeLJ 1 and no
[pairs] they carry the same LJ as a normal pair, so they must see periodic images too
(``setExceptionsUsePeriodicBoundaryConditions``), else 1-4 pairs split by the wrapping
vanish (530 kJ/mol on frame 90).

The lattice is handed to OpenMM in a rotated, reduced basis (:func:`openmm_basis`). With
the box vectors as given (a = 9-10.5 nm along x, b sheared by -0.5..-1.8 nm in x, only
2.3-2.9 nm thick) the Reference platform's voxel neighbour list (openmm 8.6.1) misses
pairs: its LJ is up to 37.6 kJ/mol too high (frame 688.gro: -7541.71 vs -7579.30 kJ/mol),
while the CPU platform and an explicit enumeration of images agree with ours to 1e-7.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest
import torch

from gdbm.data import read_frames
from gdbm.physics import CATEGORIES, EnergyModel, energy_and_forces
from gdbm.physics.openmm_box import openmm_basis
from gdbm.physics.openmm_reference import gromacs_reference_system
from gdbm.topology import read_topology

KJ = unit.kilojoule_per_mole
CATEGORY_OF_FORCE = {"HarmonicBondForce": "bond", "HarmonicAngleForce": "angle", "PeriodicTorsionForce": "proper",
                     "RBTorsionForce": "proper", "CustomTorsionForce": "improper", "NonbondedForce": "lj"}


def _vec3s(rows: np.ndarray) -> list[mm.Vec3]:
    return [mm.Vec3(*map(float, r)) for r in rows]


@pytest.fixture(scope="module")
def frames(sps: Path):
    return read_frames(sps / "train_t568" / "aa")


def test_openmm_basis_is_a_rotated_reduced_basis_of_the_same_lattice(frames):
    for box in frames.boxes.double().numpy():
        rot, v = openmm_basis(box)
        assert np.allclose(rot.T @ rot, np.eye(3)) and np.linalg.det(rot) == pytest.approx(1.0)
        change = (v @ rot.T) @ np.linalg.inv(box)  # integer, unimodular: the same lattice
        assert np.allclose(change, change.round(), atol=1e-9) and abs(np.linalg.det(change.round())) == 1
        assert v[0, 1] == v[0, 2] == v[1, 2] == 0.0 and (np.diag(v) > 0).all()
        assert v[0, 0] >= 2 * abs(v[1, 0]) and v[0, 0] >= 2 * abs(v[2, 0]) and v[1, 1] >= 2 * abs(v[2, 1])


@pytest.fixture(scope="module")
def openmm_results(sps: Path, frames) -> tuple[list[dict[str, float]], np.ndarray]:
    """Per-frame OpenMM energies by category and total forces ``[F, n, 3]`` (original axes)."""
    _, box0 = openmm_basis(frames.boxes[0].double().numpy())
    system = gromacs_reference_system(sps / "topol.top", _vec3s(box0), cutoff=1.0)
    groups: dict[int, str] = {}
    for g, force in enumerate(system.getForces()):
        name = type(force).__name__
        if name == "CMMotionRemover":
            continue
        assert name in CATEGORY_OF_FORCE, f"unexpected OpenMM force {name}"
        force.setForceGroup(g)
        groups[g] = CATEGORY_OF_FORCE[name]
        if isinstance(force, mm.NonbondedForce):
            assert not force.getUseSwitchingFunction()
    assert set(groups.values()) == {"bond", "angle", "proper", "improper", "lj"}
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    energies, forces = [], np.zeros((len(frames), frames.n_particles, 3))
    for f in range(len(frames)):
        rot, box = openmm_basis(frames.boxes[f].double().numpy())
        context.setPeriodicBoxVectors(*_vec3s(box))
        context.setPositions(frames.positions[f].double().numpy() @ rot)
        per = dict.fromkeys(CATEGORIES, 0.0)
        for g, category in groups.items():
            state = context.getState(getEnergy=True, getForces=True, groups={g})
            per[category] += state.getPotentialEnergy().value_in_unit(KJ)
            forces[f] += state.getForces(asNumpy=True).value_in_unit(KJ / unit.nanometer) @ rot.T
        per["total"] = sum(per[c] for c in CATEGORIES)
        energies.append(per)
    return energies, forces


@pytest.fixture(scope="module")
def our_results(sps: Path, frames) -> tuple[list[dict[str, float]], np.ndarray]:
    model = EnergyModel(read_topology(sps / "topol.top"), cutoff=1.0)
    energies, forces = [], np.zeros((len(frames), frames.n_particles, 3))
    for f in range(len(frames)):
        # float64 from the float32 positions, as OpenMM gets them: the constrained bonds are
        # within 2e-4 nm of b0, so float32 arithmetic would blur the small bond energy
        e, forc = energy_and_forces(model, frames.positions[f].double(), frames.boxes[f].double())
        energies.append({k: float(v) for k, v in e.as_dict().items()})
        forces[f] = forc.numpy()
    return energies, forces


def test_energies_per_term_match_openmm_on_13_sps_frames(frames, openmm_results, our_results):
    assert len(frames) == 13
    theirs, ours = openmm_results[0], our_results[0]
    worst = {}
    for f in range(len(frames)):
        assert ours[f]["coulomb"] == 0.0
        for name in ("bond", "angle", "proper", "improper", "lj", "total"):
            worst[name] = max(worst.get(name, 0.0), abs(ours[f][name] - theirs[f][name]) / abs(theirs[f][name]))
            assert ours[f][name] == pytest.approx(theirs[f][name], rel=1e-4), (frames.labels[f], name)
    print("max relative deviation per term:", {k: f"{v:.1e}" for k, v in worst.items()})


def test_forces_match_openmm_on_13_sps_frames(frames, openmm_results, our_results):
    theirs, ours = openmm_results[1], our_results[1]
    for f in range(len(frames)):
        rel = np.linalg.norm(ours[f] - theirs[f]) / np.linalg.norm(theirs[f])
        assert rel < 1e-3, (frames.labels[f], rel)


# --- tiny systems: dihedral sign conventions against OpenMM's own forces ---------------


def _openmm_energy(force: mm.Force, x: np.ndarray) -> float:
    system = mm.System()
    for _ in range(len(x)):
        system.addParticle(12.0)
    system.addForce(force)
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    context.setPositions(x)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(KJ)


def _random_quads(count: int) -> np.ndarray:
    g = np.random.default_rng(11)
    return g.normal(scale=0.15, size=(count, 4, 3)) + np.arange(4)[None, :, None] * np.array([0.1, 0.05, 0.0])


def test_dihedral_forms_match_openmm_sign_conventions():
    from gdbm.physics import term_energies
    from gdbm.topology.topology import Term

    quads = _random_quads(40)
    x = quads.reshape(-1, 3)
    idx = np.arange(len(x)).reshape(-1, 4)
    rb = [9.28, 12.16, -13.12, -3.06, 26.24, -31.5]
    periodic, ryck = mm.PeriodicTorsionForce(), mm.RBTorsionForce()
    for q in idx.tolist():
        periodic.addTorsion(*q, 1, 40 * math.pi / 180, 3.0)  # phi0 = 40 deg: the sign of phi matters
        periodic.addTorsion(*q, 3, 0.0, 6.0)
        ryck.addTorsion(*q, *rb)
    index = torch.tensor(np.repeat(idx, 2, axis=0))
    m = len(index)
    ours_periodic = term_energies(Term("proper_periodic", index, {
        "phi0": torch.tensor([40 * math.pi / 180, 0.0] * (m // 2), dtype=torch.float64),
        "k": torch.tensor([3.0, 6.0] * (m // 2), dtype=torch.float64),
        "n": torch.tensor([1.0, 3.0] * (m // 2), dtype=torch.float64)}), torch.tensor(x))["proper"]
    assert float(ours_periodic.sum()) == pytest.approx(_openmm_energy(periodic, x), rel=1e-10)
    ours_rb = term_energies(Term("proper_rb", torch.tensor(idx), {
        f"c{n}": torch.full((len(idx),), rb[n], dtype=torch.float64) for n in range(6)}), torch.tensor(x))["proper"]
    assert float(ours_rb.sum()) == pytest.approx(_openmm_energy(ryck, x), rel=1e-10)


def test_reaction_field_coulomb_matches_openmm(sps: Path, frames):
    """Charges on, eps_rf 2.5 (md.mdp): our reaction field against a NonbondedForce carrying
    the same charges and exclusions (no 1-4 exceptions), on one frame."""
    topology = read_topology(sps / "topol.top")
    rot, box = openmm_basis(frames.boxes[0].double().numpy())
    force = mm.NonbondedForce()
    for q in topology.charges.tolist():
        force.addParticle(q, 1.0, 0.0)
    for i, j in topology.exclusions.tolist():
        force.addException(i, j, 0.0, 1.0, 0.0)
    force.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(1.0)
    force.setReactionFieldDielectric(2.5)
    force.setUseDispersionCorrection(False)
    system = mm.System()
    for _ in range(topology.n_atoms):
        system.addParticle(12.0)
    system.setDefaultPeriodicBoxVectors(*_vec3s(box))
    system.addForce(force)
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    context.setPositions(frames.positions[0].double().numpy() @ rot)
    state = context.getState(getEnergy=True, getForces=True)
    model = EnergyModel(topology, cutoff=1.0, coulomb="reaction_field", epsilon_rf=2.5)
    ours, forces = energy_and_forces(model, frames.positions[0].double(), frames.boxes[0].double())
    assert float(ours.coulomb) == pytest.approx(state.getPotentialEnergy().value_in_unit(KJ), rel=1e-4)
    theirs = state.getForces(asNumpy=True).value_in_unit(KJ / unit.nanometer) @ rot.T
    _, lj_only = energy_and_forces(EnergyModel(topology, cutoff=1.0), frames.positions[0].double(),
                                   frames.boxes[0].double())
    coulomb_forces = (forces - lj_only).numpy()
    assert np.linalg.norm(coulomb_forces - theirs) / np.linalg.norm(theirs) < 1e-3
