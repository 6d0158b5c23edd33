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

from gdbm.physics.openmm_system import build_system
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
        self.full = context(build_system(top, box, cutoff=protocol.cutoff, epsilon_rf=protocol.epsilon_rf))

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
