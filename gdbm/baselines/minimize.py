"""The relaxation of the baseline: OpenMM energy minimisation, bonded terms first, then all terms.

Wassenaar et al.'s protocol as run in the thesis (Sec. 5.1.3): 200 minimisation steps with
bonded interactions only, then 5000 with all interactions; the position-restrained MD that
follows in the original protocol is deliberately left out. OpenMM minimises by L-BFGS only,
so a step here is an L-BFGS iteration, which usually gains more than a steepest-descent step.
A :class:`Minimizer` builds its two OpenMM contexts once and then only changes box and
positions per frame.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import openmm as mm
import openmm.unit as unit

from gdbm.physics.openmm_system import FORCE_GROUPS, build_system
from gdbm.topology.topology import Topology


@dataclass(frozen=True)
class Protocol:
    """Minimisation settings. ``tolerance`` is the RMS force (kJ/mol/nm) at which OpenMM's
    L-BFGS stops early, small by default so that it does not end a stage. L-BFGS still stops
    before ``steps`` once its line search cannot lower the energy any more (sPS test frames:
    after 2300-5000 of 5000 iterations, median 3400; restarting it then gained < 1 kJ/mol)."""

    bonded_steps: int = 200
    steps: int = 5000
    tolerance: float = 0.01
    cutoff: float = 1.0
    epsilon_rf: float = 2.5


@dataclass
class FrameResult:
    """One minimised frame: positions (nm), potential energies (kJ/mol, all terms) before,
    after the bonded stage and at the end, the iterations each stage ran, and its wall time."""

    positions: np.ndarray  # [n, 3] float32
    energy_initial: float
    energy_bonded: float
    energy_final: float
    iterations: tuple[int, int]
    seconds: float


def full_system(top: Topology, box: np.ndarray, cutoff: float, epsilon_rf: float) -> mm.System:
    """The system with all terms; Lennard-Jones moved into OpenMM's ``NonbondedForce`` when it can be.

    :func:`build_system` tabulates LJ in a ``CustomNonbondedForce`` (any combination rule);
    when the tables follow Lorentz-Berthelot (GROMACS comb-rule 2, as sPS) the same energy
    comes from one ``NonbondedForce`` together with the reaction field, about 5x faster on
    the CPU platform. Otherwise the tabulated system is returned unchanged.
    """
    system = build_system(top, box, cutoff=cutoff, epsilon_rf=epsilon_rf)
    per_type = _lorentz_berthelot(top)
    if per_type is None:
        return system
    sigma, epsilon = per_type
    for k in reversed(range(system.getNumForces())):
        if system.getForce(k).getForceGroup() in (FORCE_GROUPS["lj"], FORCE_GROUPS["coulomb"]):
            system.removeForce(k)
    force = mm.NonbondedForce()
    for q, t in zip(top.charges.tolist(), top.lj.atom_type.tolist()):
        force.addParticle(q, sigma[t], epsilon[t])
    for i, j in top.exclusions.tolist():
        force.addException(i, j, 0.0, 1.0, 0.0)
    force.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(cutoff)
    force.setReactionFieldDielectric(epsilon_rf)
    force.setUseDispersionCorrection(False)
    force.setForceGroup(FORCE_GROUPS["lj"])
    system.addForce(force)
    return system


def _lorentz_berthelot(top: Topology) -> tuple[list[float], list[float]] | None:
    """Per-type (sigma, epsilon) reproducing the LJ tables by Lorentz-Berthelot, or None if none does."""
    c6, c12 = top.lj.c6.numpy(), top.lj.c12.numpy()  # [T, T]
    d6, d12 = np.diag(c6), np.diag(c12)
    if np.any((d6 > 0) != (d12 > 0)):
        return None
    has = d6 > 0
    sigma = np.where(has, (d12 / np.where(has, d6, 1.0)) ** (1 / 6), 1.0)
    epsilon = np.where(has, d6**2 / (4 * np.where(has, d12, 1.0)), 0.0)
    s = 0.5 * (sigma[:, None] + sigma[None])  # [T, T]
    e = np.sqrt(epsilon[:, None] * epsilon[None])  # [T, T]
    if np.allclose(4 * e * s**6, c6, rtol=1e-6, atol=0) and np.allclose(4 * e * s**12, c12, rtol=1e-6, atol=0):
        return sigma.tolist(), epsilon.tolist()
    return None


class _Counter(mm.MinimizationReporter):
    """Counts the L-BFGS iterations of one ``minimize`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.iterations = 0

    def report(self, iteration, x, grad, args) -> bool:  # noqa: ANN001 (OpenMM's signature)
        self.iterations = iteration + 1
        return False


class Minimizer:
    """Two OpenMM CPU contexts (bonded terms only; all terms) of one topology, reused frame by frame.

    One thread each: OpenMM's multi-threaded CPU forces are summed in a varying order (also
    with ``DeterministicForces``), and minimisation amplifies the last bits, so only one
    thread gives the same result for the same seed. Run frames in parallel instead.
    """

    def __init__(self, top: Topology, protocol: Protocol):
        self.protocol = protocol
        box = np.eye(3) * 4 * protocol.cutoff  # a placeholder; every frame sets its own
        platform = mm.Platform.getPlatformByName("CPU")

        def context(system: mm.System) -> mm.Context:
            return mm.Context(system, mm.VerletIntegrator(0.001), platform, {"Threads": "1"})

        self.bonded = context(build_system(top, box, nonbonded=False))
        self.full = context(full_system(top, box, protocol.cutoff, protocol.epsilon_rf))

    def __call__(self, positions: np.ndarray, box: np.ndarray) -> FrameResult:
        """Minimise one frame: ``positions [n, 3]`` and ``box [3, 3]`` (rows = vectors), nm."""
        start = time.perf_counter()
        p = self.protocol
        vectors = [mm.Vec3(*row) for row in np.asarray(box, dtype=float)]
        for ctx in (self.bonded, self.full):
            ctx.setPeriodicBoxVectors(*vectors)
        self.full.setPositions(positions)
        e0 = self._energy()
        self.bonded.setPositions(positions)
        n_bonded = self._minimize(self.bonded, p.bonded_steps)
        self.full.setPositions(self.bonded.getState(getPositions=True).getPositions(asNumpy=True))
        e1 = self._energy()
        n_all = self._minimize(self.full, p.steps)
        state = self.full.getState(getPositions=True, getEnergy=True)
        e2 = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        out = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        if not (math.isfinite(e2) and np.isfinite(out).all()):
            raise RuntimeError(f"the minimised energy is {e2} kJ/mol; the first guess may hold atoms on top of each "
                               "other (use a displacement > 0)")
        return FrameResult(out.astype(np.float32), e0, e1, e2, (n_bonded, n_all), time.perf_counter() - start)

    def _energy(self) -> float:
        return self.full.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    def _minimize(self, ctx: mm.Context, steps: int) -> int:
        if steps <= 0:
            return 0
        counter = _Counter()
        mm.LocalEnergyMinimizer.minimize(ctx, self.protocol.tolerance, steps, counter)
        return counter.iterations
