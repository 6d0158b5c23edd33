"""Energy + forces of one 5832-atom sPS frame at a 1.0 nm cutoff: gdbm against OpenMM.

gdbm: neighbour search (vesin), every listed term, LJ, autograd forces, in float32 (the
dtype of frames as read) and float64. OpenMM: the same force field read by its own
``GromacsTopFile`` (charges zeroed, LJ plain cutoff, every force periodic), on the
Reference (double) and CPU (mixed precision) platforms, box and positions set and energy +
forces fetched per round. Each round takes the next of two different frames, so that
OpenMM cannot reuse a neighbour list built for the same coordinates.
Run: ``python -m pytest benchmarks/bench_energy.py --benchmark-only``.
"""

from __future__ import annotations

from pathlib import Path

import itertools

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest
import torch

from gdbm.data import read_frames
from gdbm.physics import EnergyModel, energy_and_forces
from gdbm.physics.openmm_box import openmm_basis
from gdbm.physics.openmm_reference import gromacs_reference_system
from gdbm.topology import read_topology

SPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sps"
FRAMES = [SPS / "train_t568" / "aa" / name for name in ("90.gro", "135.gro")]


def _vec3s(rows: np.ndarray) -> list[mm.Vec3]:
    return [mm.Vec3(*map(float, r)) for r in rows]


@pytest.fixture(scope="module")
def frames():
    return [read_frames(path) for path in FRAMES]


@pytest.fixture(scope="module")
def openmm_system(frames):
    """The system and, per frame, its (box vectors, positions) in OpenMM's basis."""
    inputs = []
    for frame in frames:
        rot, box = openmm_basis(frame.boxes[0].double().numpy())
        inputs.append((_vec3s(box), frame.positions[0].double().numpy() @ rot))
    system = gromacs_reference_system(SPS / "topol.top", inputs[0][0], cutoff=1.0)
    return system, inputs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_gdbm_energy_and_forces(benchmark, frames, dtype):
    model = EnergyModel(read_topology(SPS / "topol.top"), cutoff=1.0)
    inputs = itertools.cycle([(f.positions[0].to(dtype), f.boxes[0].to(dtype)) for f in frames])

    def run() -> tuple[float, torch.Tensor]:
        energies, forces = energy_and_forces(model, *next(inputs))
        return float(energies.total), forces

    total, forces = benchmark(run)
    assert total in (pytest.approx(17333.63, abs=0.05), pytest.approx(16840.56, abs=0.05))
    assert forces.shape == (5832, 3)


@pytest.mark.parametrize("platform", ["Reference", "CPU"])
def test_openmm_energy_and_forces(benchmark, openmm_system, platform):
    system, inputs = openmm_system
    context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName(platform))
    frames = itertools.cycle(inputs)

    def run() -> tuple[float, np.ndarray]:
        box, positions = next(frames)
        context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
        state = context.getState(getEnergy=True, getForces=True)
        return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole), state.getForces(asNumpy=True)

    energy, _ = benchmark(run)
    # bonded + LJ of frame 90 or 135, as gdbm's totals
    assert energy in (pytest.approx(17333.63, abs=0.5), pytest.approx(16840.56, abs=0.5))
