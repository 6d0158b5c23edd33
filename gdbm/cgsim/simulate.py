"""Langevin NVT of a CG force field in OpenMM, from one CG frame, frames kept at a fixed spacing.

The box is the starting frame's, handed to OpenMM in a reduced, rotated basis
(:func:`gdbm.physics.openmm_box.openmm_basis`); frames come back rotated into the
starting frame's orientation, so they share its box. Bead masses only set the dynamics, not
the sampled distribution, so one mass serves every bead.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from gdbm.utils.progress import tqdm

from gdbm.cgsim.forcefield import CGForceField
from gdbm.cgsim.openmm_system import build_system
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.physics.openmm_box import openmm_basis


class RunSettings(BaseModel):
    """Protocol of a CG run (K, ps, amu, 1/ps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(gt=0)
    timestep: float = Field(0.004, gt=0)
    friction: float = Field(1.0, gt=0)
    equilibration: float = Field(50.0, ge=0)  # ps before the first kept frame
    spacing: float = Field(10.0, gt=0)  # ps between kept frames
    n_frames: int = Field(20, ge=1)
    bead_mass: float = Field(50.0, gt=0)
    minimise_iterations: int = Field(500, ge=0)
    seed: int = 0
    platform: str = "CPU"
    threads: int = Field(1, ge=1)

    def steps(self, ps: float) -> int:
        """Integrator steps for ``ps`` picoseconds."""
        return max(0, round(ps / self.timestep))


def _context(system, settings: RunSettings):
    import openmm as mm

    names = [mm.Platform.getPlatform(k).getName() for k in range(mm.Platform.getNumPlatforms())]
    if settings.platform not in names:
        raise InputError(f"unknown OpenMM platform {settings.platform!r}; this OpenMM has {names}")
    platform = mm.Platform.getPlatformByName(settings.platform)
    properties = {"Threads": str(settings.threads)} if "Threads" in platform.getPropertyNames() else {}
    integrator = mm.LangevinMiddleIntegrator(settings.temperature, settings.friction, settings.timestep)
    integrator.setRandomNumberSeed(settings.seed + 1)  # 0 would mean "pick one at random" in OpenMM
    return mm.Context(system, integrator, platform, properties), integrator


def run_cg(ff: CGForceField, start: Frames, settings: RunSettings, progress: bool = True) -> Frames:
    """Simulate from the first frame of ``start``; returns ``settings.n_frames`` frames (names of ``start``)."""
    import openmm as mm
    import openmm.unit as unit

    if start.n_particles != len(ff.bead_types):
        raise InputError(f"the starting CG frame holds {start.n_particles} beads, the force field "
                         f"{len(ff.bead_types)}")
    box = start.boxes[0].double().numpy()
    rotation, vectors = openmm_basis(box)
    widths = np.diag(vectors)
    if ff.cutoff >= 0.5 * widths.min():
        raise InputError(f"the pair cutoff {ff.cutoff} nm is not below half the box width {widths.min():.3f} nm")
    system = build_system(ff, np.full(start.n_particles, settings.bead_mass), vectors)
    context, integrator = _context(system, settings)
    context.setPositions(start.positions[0].double().numpy() @ rotation)
    if settings.minimise_iterations:
        mm.LocalEnergyMinimizer.minimize(context, 10.0, settings.minimise_iterations)
    context.setVelocitiesToTemperature(settings.temperature, settings.seed + 1)
    chunks = [settings.steps(settings.equilibration)] + [settings.steps(settings.spacing)] * settings.n_frames
    kept = []
    total = sum(chunks)
    with tqdm(total=total, unit="step", desc="cg md", disable=not progress, unit_scale=True) as bar:
        for k, steps in enumerate(chunks):
            if steps:
                integrator.step(steps)
                bar.update(steps)
            if k == 0:
                continue
            x = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            if not np.isfinite(x).all():
                raise InputError("the CG simulation became unstable (NaN coordinates); use a shorter --timestep")
            kept.append(x @ rotation.T)
    positions = torch.tensor(np.stack(kept), dtype=torch.float32)
    boxes = start.boxes[:1].repeat(len(kept), 1, 1)
    labels = [f"cgsim#{k}" for k in range(len(kept))]
    return Frames(positions, boxes, labels, start.names, start.resnames, start.resids)
