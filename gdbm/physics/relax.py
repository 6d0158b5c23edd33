"""A short constrained relaxation of backmapped frames: remove close contacts, keep the CG beads.

A generator that places every atom within a few hundredths of a nm still leaves some pairs of
atoms of neighbouring beads 0.15-0.2 nm apart, where Lennard-Jones repulsion costs tens of
kJ/mol each; and the centres of its beads drift from the CG input by as much. A few dozen
steps of steepest descent on the force field remove the contacts while moving the rest of
the structure little. After every step the positions are projected back onto two sets of
constraints: every bond at its ``b0`` (optional, when the reference MD constrained bonds) and
every CG bead's centre on its input position (optional, with the mapping that defined the CG
input). The projection is mass-weighted, so for a centre of mass it is a rigid shift of the
bead's atoms.

Steepest descent with an adaptive step as in GROMACS (an accepted step, lower energy, grows it
by 1.2, a rejected one shrinks it by 0.2; every frame has its own), but clipped per atom: the
atoms whose forces are in the top 10% of the frame move the full ``step`` nm along their
force, the others in proportion. Scaling by the single largest force instead (GROMACS) lets
one bad contact freeze every other atom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import Tensor

from gdbm.utils.pbc import minimum_image
from gdbm.physics.constraints import constrain_bonds
from gdbm.physics.energy import EnergyModel, energy_and_forces
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.topology import Topology

FIRST_ROUNDS = 30  # alternations of the bond and centre projections for a raw structure (bonds off by 0.1 nm)
STEP_ROUNDS = 2  # and after a small step
CLIP_QUANTILE = 0.9  # atoms with forces above this quantile of their frame's all move the full step


class CentreProjection(Protocol):
    """Anything that moves positions ``[F, n, 3]`` so that the CG bead centres sit on their targets."""

    def project(self, positions: Tensor, boxes: Tensor) -> Tensor: ...


@dataclass
class CentreConstraint:
    """Hold each bead's centre (by ``mapping``, possibly partial) on ``targets`` ``[F, n_beads, 3]``.

    ``masses`` ``[n]`` (amu) weight the moves: heavy atoms move less.
    """

    mapping: SystemMapping
    targets: Tensor
    masses: Tensor

    def __post_init__(self) -> None:
        # the per-member share of its bead's residual and the per-atom bead count (float64), once:
        # the projection runs after every relaxation step
        atom, bead = self.mapping.membership.T  # [M]
        coef = self.mapping.coef.to(torch.float64)  # [M]
        inverse_mass = 1.0 / self.masses.to(torch.float64)[atom]  # [M]
        norm = torch.zeros(self.mapping.n_beads, dtype=torch.float64).index_add_(0, bead, coef**2 * inverse_mass)
        self._share = (coef * inverse_mass / norm[bead]).view(1, -1, 1)  # [1, M, 1]
        self._count = torch.bincount(atom, minlength=len(self.masses)).clamp_min(1).to(torch.float64).view(1, -1, 1)

    def project(self, positions: Tensor, boxes: Tensor, iterations: int = 20, tolerance: float = 1e-5) -> Tensor:
        """Positions ``[F, n, 3]`` moved (mass-weighted, least change) so every centre sits on its target.

        Atoms shared by several beads get the mean of their beads' corrections; a few Jacobi
        iterations then converge (one is exact when no atom is shared).
        """
        atom, bead = self.mapping.membership.T  # [M]
        share, count = self._share.to(positions), self._count.to(positions)
        x = positions.clone()
        for _ in range(iterations):
            residual = minimum_image(self.targets.to(x) - self.mapping.map_positions(x, boxes), boxes.to(x))
            if float(residual.norm(dim=-1).max()) < tolerance:
                break
            shift = torch.zeros_like(x).index_add_(1, atom, share * residual[:, bead])
            x = x + shift / count
        return x


def project_constraints(positions: Tensor, boxes: Tensor, top: Topology, *, bonds: bool = False,
                        centres: CentreProjection | None = None, rounds: int = FIRST_ROUNDS,
                        stretch: float | None = None) -> Tensor:
    """Positions ``[F, n, 3]`` projected onto the bond constraints and/or the bead centres.

    Alternates the two projections ``rounds`` times when both apply (each undoes a little of
    the other), once when only one does; the bead centres are exact after the last round.
    ``stretch``: with ``bonds``, only bonds longer than ``b0 + stretch`` are shortened, to that length.
    """
    x = positions
    for _ in range(rounds if (bonds and centres is not None) else 1):
        if bonds:
            x, _ = constrain_bonds(x, boxes, top, stretch=stretch)
        if centres is not None:
            x = centres.project(x, boxes)
    return x


@dataclass
class RelaxResult:
    """Relaxed positions and the total energy per frame before and after (kJ/mol)."""

    positions: Tensor
    energy_before: Tensor
    energy_after: Tensor


def relax(positions: Tensor, boxes: Tensor, model: EnergyModel, steps: int, *,
          centres: CentreConstraint | None = None, bonds: bool = False, first_step: float = 0.01,
          on_step: Callable[[], None] | None = None) -> RelaxResult:
    """``steps`` steps of projected steepest descent of ``model``'s energy on ``positions`` ``[F, n, 3]``.

    ``bonds``: keep every bond at ``b0``; ``centres``: keep the CG beads where they are.
    Energies and forces in float32, positions in float64. ``on_step`` is called after each
    step (a progress bar's update).
    """
    top = model.topology
    box = boxes.to(torch.float64)

    def project(x: Tensor, rounds: int) -> Tensor:
        return project_constraints(x, box, top, bonds=bonds, centres=centres, rounds=rounds)

    def evaluate(x: Tensor) -> tuple[Tensor, Tensor]:
        energies, forces = energy_and_forces(model, x.to(torch.float32), box.to(torch.float32))
        return energies.total, forces.to(torch.float64)

    x = project(positions.to(torch.float64), FIRST_ROUNDS)
    energy, forces = evaluate(x)
    before = energy.clone()
    step = torch.full((x.shape[0],), first_step, dtype=torch.float64)
    for _ in range(steps):
        size = forces.norm(dim=-1, keepdim=True)  # [F, n, 1]
        scale = torch.maximum(size, torch.quantile(size, CLIP_QUANTILE, dim=1, keepdim=True)).clamp_min(1e-12)
        trial = project(x + forces / scale * step.view(-1, 1, 1), STEP_ROUNDS)
        trial_energy, trial_forces = evaluate(trial)
        better = trial_energy < energy  # [F]
        x = torch.where(better.view(-1, 1, 1), trial, x)
        forces = torch.where(better.view(-1, 1, 1), trial_forces, forces)
        energy = torch.where(better, trial_energy, energy)
        step = torch.where(better, step * 1.2, step * 0.2)
        if on_step is not None:
            on_step()
    x = project(x, FIRST_ROUNDS)  # the constraints to full precision, and the energy there
    return RelaxResult(x.to(positions.dtype), before, evaluate(x)[0])
