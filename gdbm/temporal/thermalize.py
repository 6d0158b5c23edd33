"""A short Langevin run per generated frame, CG beads restrained (``gdbm backmap --temporal --thermalize``).

Why: the voxel decoder places atoms to about 0.03 nm, while bonds and angles need a few thousandths
of a nm to carry their thermal energy and not more; the generated frames' potential energy sits far
above the reference's, almost all of it in bonds and angles. Those are the fastest modes of the
molecule: at the reference temperature and friction they equilibrate within about 0.1 ps, two
orders of magnitude faster than the torsions and the CG beads move. So a run of that length, with
every bead held on its CG position by a stiff harmonic restraint on its centre, gives the stiff
modes their Boltzmann distribution and leaves the slow coordinates (what the model decided) in
place. Bonds to hydrogen are constrained to ``b0`` during the run, as in the reference MD.

Each frame starts from a few steepest-descent iterations (removing clashes that would blow up a
2 fs step), then fresh Maxwell-Boltzmann velocities and ``steps`` Langevin steps. OpenMM's
Reference platform: tens of atoms cost about a millisecond per frame.
"""

from __future__ import annotations

import warnings

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gdbm.utils.errors import InputError
from gdbm.physics.openmm_restraint import centroid_restraint, set_centroid_targets
from gdbm.temporal.system import TemporalSystem


#: an atom this far (nm) from where it was generated means the short run diverged
DIVERGED_NM = 1.0


@dataclass(frozen=True)
class ThermalizeSettings:
    """Length and conditions of the per-frame run (defaults: the dipeptide reference MD's)."""

    steps: int = 50
    temperature: float = 300.0  # K
    friction: float = 50.0  # 1/ps
    timestep_ps: float = 0.002
    minimize_iterations: int = 20
    restraint: float = 5.0e4  # kJ/mol/nm^2 on each bead centre's distance from its CG position
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.temperature <= 0 or self.friction <= 0 or self.timestep_ps <= 0:
            raise InputError(f"thermalisation needs steps >= 1 and positive temperature, friction and "
                             f"time step, got {self}")


class Thermalizer:
    """``thermalizer(positions [B, n, 3], beads [B, N, 3]) -> [B, n, 3]``: each frame run briefly at
    the reference temperature with its beads restrained to ``beads`` (then still projected by the caller)."""

    def __init__(self, system: TemporalSystem, settings: ThermalizeSettings = ThermalizeSettings()) -> None:
        import openmm as mm

        self.settings = settings
        omm = mm.XmlSerializer.deserialize(system.system_xml)
        for (heavy, hydrogen), length in zip(system.h_bonds.tolist(), system.h_lengths.tolist(), strict=True):
            omm.addConstraint(heavy, hydrogen, length)
        groups = [(torch.nonzero(row).flatten().tolist(), row[row != 0].tolist()) for row in system.weights.double()]
        self.restraint = centroid_restraint(groups, settings.restraint)
        omm.addForce(self.restraint)
        integrator = mm.LangevinMiddleIntegrator(settings.temperature, settings.friction, settings.timestep_ps)
        integrator.setRandomNumberSeed(settings.seed + 1)  # OpenMM reads 0 as "pick one at random"
        self.context = mm.Context(omm, integrator, mm.Platform.getPlatformByName("Reference"))
        self.rng = np.random.default_rng(settings.seed)
        self.diverged = 0  # frames whose run gave non-finite positions (kept unrefined)

    def close(self) -> None:
        """Free the OpenMM context now, before its system and forces (as :class:`gdbm.physics.thermal.ThermalRelaxer`
        does): left to the garbage collector, a reference cycle may free them in any order."""
        self.context = self.restraint = None

    def __call__(self, positions: Tensor, beads: Tensor) -> Tensor:
        import openmm as mm

        x = positions.detach().to("cpu", torch.float64).numpy()
        targets = beads.detach().to("cpu", torch.float64).numpy()
        out = np.empty_like(x)
        s = self.settings
        for k, (frame, target) in enumerate(zip(x, targets, strict=True)):
            set_centroid_targets(self.restraint, target, self.context)
            self.context.setPositions(frame)
            self.context.applyConstraints(1e-6)
            mm.LocalEnergyMinimizer.minimize(self.context, 1.0, s.minimize_iterations)
            self.context.setVelocitiesToTemperature(s.temperature, int(self.rng.integers(1, 2**31 - 1)))
            self.context.getIntegrator().step(s.steps)
            out[k] = self.context.getState(getPositions=True).getPositions(asNumpy=True)._value
            moved = np.abs(out[k] - frame).max() if np.isfinite(out[k]).all() else np.inf
            if moved > DIVERGED_NM:  # the run diverged (beads are restrained): keep the generated frame
                out[k] = frame
                self.diverged += 1
                warnings.warn(f"thermalization diverged on a frame ({self.diverged} so far); the generated frame "
                              "is kept unrefined", RuntimeWarning, stacklevel=2)
        return torch.from_numpy(out).to(positions.device, positions.dtype)

