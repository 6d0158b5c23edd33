"""Our Topology -> OpenMM System builder agrees with OpenMM's own GROMACS reader per term."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

from gdbm.data import read_frames
from gdbm.physics import EnergyModel
from gdbm.physics.openmm_box import openmm_basis
from gdbm.physics.openmm_reference import gromacs_reference_system
from gdbm.physics.openmm_system import FORCE_GROUPS, build_system
from gdbm.topology import read_topology


def _group_energies(system: mm.System, pos: np.ndarray, box: np.ndarray, groups: dict[str, int]) -> dict[str, float]:
    ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    ctx.setPeriodicBoxVectors(*(mm.Vec3(*r) for r in box))
    ctx.setPositions(pos)
    return {name: ctx.getState(getEnergy=True, groups={g}).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            for name, g in groups.items()}


@pytest.mark.parametrize("tabulated_lj", [False, True], ids=["NonbondedForce", "tabulated"])
def test_sps_energies_match_gromacs_top_file(sps: Path, tabulated_lj: bool):
    frame = read_frames(sps / "train_t568" / "aa" / "350.gro")
    # OpenMM's Reference platform misses pairs in the sheared box as given: hand it the same
    # lattice re-reduced and rotated (openmm_basis), positions rotated alike
    rot, box = openmm_basis(frame.boxes[0].double().numpy())
    pos = frame.positions[0].double().numpy() @ rot
    ours = build_system(read_topology(sps / "topol.top"), box, cutoff=1.0, coulomb=False, tabulated_lj=tabulated_lj)
    ref = gromacs_reference_system(sps / "topol.top", [mm.Vec3(*r) for r in box], cutoff=1.0)
    names = {"HarmonicBondForce": "bond", "HarmonicAngleForce": "angle", "PeriodicTorsionForce": "proper",
             "CustomTorsionForce": "improper", "NonbondedForce": "lj"}
    for force in ref.getForces():
        if type(force).__name__ in names:
            force.setForceGroup(FORCE_GROUPS[names[type(force).__name__]])
    groups = {name: FORCE_GROUPS[name] for name in names.values()}
    mine, theirs = _group_energies(ours, pos, box, groups), _group_energies(ref, pos, box, groups)
    top = read_topology(sps / "topol.top")
    torch_terms = EnergyModel(top, cutoff=1.0)(frame.positions[0].double(), frame.boxes[0].double()).as_dict()
    for name in groups:
        assert mine[name] == pytest.approx(theirs[name], rel=1e-9), name
        assert mine[name] == pytest.approx(float(torch_terms[name]), rel=1e-9), name  # our own energies too


def test_bonded_only_system_has_no_nonbonded(sps: Path):
    top = read_topology(sps / "topol.top")
    system = build_system(top, np.eye(3) * 10, nonbonded=False)
    kinds = {type(f).__name__ for f in system.getForces()}
    assert kinds == {"HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "CustomTorsionForce"}
