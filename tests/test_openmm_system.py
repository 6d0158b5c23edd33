"""Our Topology -> OpenMM System builder agrees with OpenMM's own GROMACS reader per term."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
import pytest

from gdbm.data import read_frames
from gdbm.physics.openmm_system import FORCE_GROUPS, build_system
from gdbm.topology import read_topology


def _group_energies(system: mm.System, pos: np.ndarray, box: np.ndarray, groups: dict[str, int]) -> dict[str, float]:
    ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    ctx.setPeriodicBoxVectors(*(mm.Vec3(*r) for r in box))
    ctx.setPositions(pos)
    return {name: ctx.getState(getEnergy=True, groups={g}).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            for name, g in groups.items()}


def test_sps_energies_match_gromacs_top_file(sps: Path):
    frame = read_frames(sps / "train_t568" / "aa" / "350.gro")
    box, pos = frame.boxes[0].double().numpy(), frame.positions[0].double().numpy()
    ours = build_system(read_topology(sps / "topol.top"), box, cutoff=1.0, coulomb=False)
    ref = app.GromacsTopFile(str(sps / "topol.top"), periodicBoxVectors=[mm.Vec3(*r) for r in box] * unit.nanometer,
                             includeDir=str(sps)).createSystem(nonbondedMethod=app.CutoffPeriodic,
                                                               nonbondedCutoff=1.0 * unit.nanometer)
    names = {"HarmonicBondForce": "bond", "HarmonicAngleForce": "angle", "PeriodicTorsionForce": "proper",
             "CustomTorsionForce": "improper", "NonbondedForce": "lj"}
    for force in ref.getForces():
        if type(force).__name__ not in names:
            continue
        force.setForceGroup(FORCE_GROUPS[names[type(force).__name__]])
        force.setUsesPeriodicBoundaryConditions(True) if hasattr(force, "setUsesPeriodicBoundaryConditions") else None
        if isinstance(force, mm.NonbondedForce):
            # zero charges for the LJ comparison; the 1-4 exceptions OpenMM makes for nrexcl 2
            # must see periodic images too (frames are wrapped atom by atom)
            force.setUseDispersionCorrection(False)
            force.setExceptionsUsePeriodicBoundaryConditions(True)
            for i in range(force.getNumParticles()):
                _, sigma, eps = force.getParticleParameters(i)
                force.setParticleParameters(i, 0.0, sigma, eps)
            for k in range(force.getNumExceptions()):
                i, j, _, sigma, eps = force.getExceptionParameters(k)
                force.setExceptionParameters(k, i, j, 0.0, sigma, eps)
    groups = {name: FORCE_GROUPS[name] for name in names.values()}
    mine, theirs = _group_energies(ours, pos, box, groups), _group_energies(ref, pos, box, groups)
    for name in groups:
        assert mine[name] == pytest.approx(theirs[name], rel=1e-9), name


def test_bonded_only_system_has_no_nonbonded(sps: Path):
    top = read_topology(sps / "topol.top")
    system = build_system(top, np.eye(3) * 10, nonbonded=False)
    kinds = {type(f).__name__ for f in system.getForces()}
    assert kinds == {"HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce", "CustomTorsionForce"}
