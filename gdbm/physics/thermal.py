"""Thermal relaxation of AA frames, each CG bead's centre restrained (``gdbm relax --thermal``).

Why: a minimiser held to the CG beads removes clashes but cools the structure (bond angles and
ring planarity become too narrow), while a backmapping model places atoms to a few hundredths of
a nm, too coarse for bonds and angles to carry their thermal energy. A short Langevin run at the
reference temperature gives the stiff modes (bonds, angles, ring planarity: equilibrated within
about 0.1 ps) their Boltzmann widths and relieves contacts, while a harmonic restraint on each
bead's centre keeps the structure on its CG input. The restraint is a spring, not a constraint:
a bead of mass M fluctuates by sqrt(3 kT / k) around its CG position, 0.015 nm at 5e4
kJ/mol/nm^2 and 568 K; stages with a stiffer restraint (and a shorter step) tighten that.

Per frame: molecules made whole (centroids and constraints see raw coordinates), bonds
constrained at ``b0`` (all, as in a reference MD with constrained bonds, or those to hydrogen),
a short L-BFGS minimisation, Maxwell-Boltzmann velocities, then the stages in order. OpenMM
runs the dynamics; its system is :func:`gdbm.physics.openmm_system.build_system`, the same
parameters as gdbm's own energies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gdbm.utils.errors import InputError
from gdbm.utils.pbc import bond_levels, box_widths, make_whole, minimum_image
from gdbm.physics.constraints import bond_constraints
from gdbm.physics.openmm_restraint import STIFFNESS, centroid_restraint, set_centroid_targets
from gdbm.physics.openmm_system import build_system
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.topology import Topology

HYDROGEN_MAX_MASS = 4.1  # amu: hydrogen and deuterium
DIVERGED = ("Atoms on top of each other need a few steepest-descent steps first (gdbm relax --steps), "
            "a stiffer restraint a shorter time step.")


@dataclass(frozen=True)
class ThermalStage:
    """``steps`` Langevin steps at ``temperature`` (K), bead centres held by ``restraint``
    (kJ/mol/nm^2), with a time step of ``timestep_ps``."""

    steps: int
    temperature: float
    restraint: float = 5.0e4
    timestep_ps: float = 0.002

    def __post_init__(self) -> None:
        if self.steps < 1 or min(self.temperature, self.restraint, self.timestep_ps) <= 0:
            raise InputError(f"a thermal stage needs steps >= 1 and a positive temperature, restraint and "
                             f"time step, got {self}")

    @classmethod
    def parse(cls, text: str, default: ThermalStage) -> ThermalStage:
        """``STEPS[,T[,K[,DT]]]``; the fields left out come from ``default``."""
        fields = text.split(",")
        if not 1 <= len(fields) <= 4:
            raise InputError(f"a stage is STEPS[,TEMPERATURE[,RESTRAINT[,TIMESTEP]]], got {text!r}")
        try:
            steps = int(fields[0])
            rest = [float(v) if v.strip() else None for v in fields[1:]]  # an empty field: the default
        except ValueError as error:
            raise InputError(f"a stage is STEPS[,TEMPERATURE[,RESTRAINT[,TIMESTEP]]], got {text!r}") from error
        defaults = [default.temperature, default.restraint, default.timestep_ps]
        given = [defaults[k] if value is None else value for k, value in enumerate(rest)] + defaults[len(rest):]
        return cls(steps, *given)


@dataclass(frozen=True)
class ThermalSettings:
    """The stages run in order on each frame, and what comes before them."""

    stages: tuple[ThermalStage, ...]
    friction: float = 10.0  # 1/ps
    minimize_iterations: int = 50
    all_bonds: bool = True  # constrain every bond at b0; False: only bonds to hydrogen
    seed: int = 0
    platform: str = "CPU"
    threads: int = 1
    cutoff: float = 1.0  # nm, non-bonded
    coulomb: bool = True  # reaction field beyond the cutoff; False: no charges
    epsilon_rf: float = 2.5  # the sPS value

    def __post_init__(self) -> None:
        if not self.stages:
            raise InputError("a thermal relaxation needs at least one stage")
        if self.friction <= 0 or self.minimize_iterations < 0:
            raise InputError(f"friction must be positive and minimisation iterations >= 0, got {self}")
        if not 0 < self.cutoff < float("inf") or not self.epsilon_rf >= 1:
            raise InputError(f"the thermal run needs a positive cutoff (nm) and a dielectric >= 1, got cutoff "
                             f"{self.cutoff}, epsilon_rf {self.epsilon_rf}")


class ThermalRelaxer:
    """``relaxer(positions [n, 3], box [3, 3], beads [N, 3], frame) -> [n, 3]`` for one system.

    ``beads`` are the CG positions of the bead centres of ``mapping`` (the mapping that made the
    CG frames); ``frame`` seeds the velocities and the thermostat, so a frame's result does not
    depend on which frames were relaxed before it. Returned molecules are whole, not wrapped.
    """

    def __init__(self, top: Topology, mapping: SystemMapping, settings: ThermalSettings) -> None:
        if not top.has_parameters:
            raise InputError("a thermal relaxation needs a topology with force-field parameters", top.source)
        if mapping.n_atoms != top.n_atoms:
            raise InputError(f"the mapping covers {mapping.n_atoms} atoms, the topology {top.n_atoms}")
        self.top, self.mapping, self.settings = top, mapping, settings
        self.levels = bond_levels(top.n_atoms, top.connectivity)
        pairs, lengths = bond_constraints(top)
        if not settings.all_bonds:
            light = top.masses < HYDROGEN_MAX_MASS
            keep = light[pairs].any(1)
            pairs, lengths = pairs[keep], lengths[keep]
        self.constraints = list(zip(pairs.tolist(), lengths.tolist(), strict=True))
        atom, bead = mapping.membership.T
        self.groups = [(atom[bead == b].tolist(), mapping.coef[bead == b].tolist()) for b in range(mapping.n_beads)]

    def __call__(self, positions: Tensor, box: Tensor, beads: Tensor, frame: int = 0) -> Tensor:
        import openmm as mm

        s = self.settings
        box64 = box.detach().cpu().double()
        x = make_whole(positions.detach().cpu().double(), box64, self.levels)
        centres = self.mapping.map_positions(x)
        targets = centres + minimum_image((beads.detach().cpu().double() - centres).unsqueeze(0),
                                          box64.unsqueeze(0))[0]
        heights = box_widths(box64)
        if s.cutoff > 0.5 * float(heights.min()):
            raise InputError(f"the thermal run's cutoff {s.cutoff:g} nm is more than half the box's shortest height "
                             f"({float(heights.min()):.3f} nm); expected a smaller --cutoff or a larger box")
        system = build_system(self.top, box64.numpy(), cutoff=s.cutoff, coulomb=s.coulomb, epsilon_rf=s.epsilon_rf)
        for (i, j), length in self.constraints:
            system.addConstraint(i, j, length)
        first = s.stages[0]
        restraint = centroid_restraint(self.groups, first.restraint)
        system.addForce(restraint)
        integrator = mm.LangevinMiddleIntegrator(first.temperature, s.friction, first.timestep_ps)
        seed = 1 + (s.seed * 1_000_003 + frame) % (2**31 - 2)  # OpenMM reads 0 as "pick one at random"
        integrator.setRandomNumberSeed(seed)
        properties = {"Threads": str(s.threads)} if s.platform == "CPU" else {}
        context = mm.Context(system, integrator, mm.Platform.getPlatformByName(s.platform), properties)
        set_centroid_targets(restraint, targets.numpy(), context)
        context.setPositions(x.numpy())
        context.applyConstraints(1e-6)
        try:
            if s.minimize_iterations:
                mm.LocalEnergyMinimizer.minimize(context, 10.0, s.minimize_iterations)
            context.setVelocitiesToTemperature(first.temperature, seed)
            for stage in s.stages:
                context.setParameter(STIFFNESS, stage.restraint)
                integrator.setStepSize(stage.timestep_ps)
                integrator.setTemperature(stage.temperature)
                integrator.step(stage.steps)
            out = torch.from_numpy(np.asarray(context.getState(getPositions=True).getPositions(asNumpy=True)._value))
        except mm.OpenMMException as error:
            raise FloatingPointError(f"frame {frame}: {error} {DIVERGED}") from None
        finally:  # free the OpenMM objects now, in order, not at interpreter exit from a kept traceback
            del context, integrator, restraint, system
        if not bool(torch.isfinite(out).all()):
            raise FloatingPointError(f"frame {frame}: non-finite positions. {DIVERGED}")
        return out.to(positions.dtype)
