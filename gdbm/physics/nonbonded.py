"""Lennard-Jones and Coulomb energies of neighbour pairs (plain cutoff or reaction field).

Plain cutoff means no shift, no switching and no dispersion correction: the energy of a
pair is the bare potential when its distance is below the cutoff, zero beyond. Reaction
field follows GROMACS/OpenMM with epsilon_r = 1::

    E = f qi qj (1/r + k_rf r^2 - c_rf),  k_rf = (eps_rf - 1) / ((2 eps_rf + 1) rc^3),
    c_rf = 1/rc + k_rf rc^2              (eps_rf = inf: k_rf = 1 / (2 rc^3))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gdbm.physics.bonded import COULOMB_CONSTANT

COULOMB_METHODS = ("none", "cutoff", "reaction_field")


def lj_energy(r2: Tensor, c6: Tensor, c12: Tensor) -> Tensor:
    """``c12/r^12 - c6/r^6`` per pair from squared distances ``r2`` [P]."""
    inv_r6 = r2**-3
    return c12 * inv_r6**2 - c6 * inv_r6


def lj_energy_linear_core(r2: Tensor, c6: Tensor, c12: Tensor, core: float = 0.8) -> Tensor:
    """Lennard-Jones that continues linearly below ``core * sigma`` (a constant repulsive force).

    For energy *priors* of generated structures: two atoms generated on top of each other
    give 1e16 kJ/mol and useless gradients with the bare potential, a finite cost and a
    steady push apart with this one. Equal to :func:`lj_energy` beyond ``core * sigma``.
    """
    sigma2 = torch.where(c6 > 0, (c12 / c6.clamp_min(1e-30)) ** (1.0 / 3.0), torch.zeros_like(c6))  # [P]
    rc2 = core**2 * sigma2
    r2_safe = torch.maximum(r2, rc2)
    energy = lj_energy(r2_safe, c6, c12)
    rc = rc2.sqrt().clamp_min(1e-12)
    force = 12.0 * c12 / rc**13 - 6.0 * c6 / rc**7  # -dE/dr at the core radius
    r = r2.clamp_min(1e-24).sqrt()  # no infinite sqrt slope at r = 0 (0 * inf = NaN in autograd)
    return torch.where(r2 < rc2, energy + force * (rc - r), energy)


def reaction_field_constants(cutoff: float, epsilon_rf: float) -> tuple[float, float]:
    """``(k_rf, c_rf)`` for a cutoff in nm; ``epsilon_rf`` inf (or 0, GROMACS' spelling) = conducting."""
    if epsilon_rf == 0 or math.isinf(epsilon_rf):
        k_rf = 1.0 / (2.0 * cutoff**3)
    else:
        k_rf = (epsilon_rf - 1.0) / ((2.0 * epsilon_rf + 1.0) * cutoff**3)
    return k_rf, 1.0 / cutoff + k_rf * cutoff**2


def coulomb_energy(r: Tensor, qq: Tensor, method: str, cutoff: float, epsilon_rf: float) -> Tensor:
    """Coulomb energy per pair from distances ``r`` [P] and charge products ``qq`` [P]."""
    if method == "cutoff":
        return COULOMB_CONSTANT * qq / r
    if method == "reaction_field":
        k_rf, c_rf = reaction_field_constants(cutoff, epsilon_rf)
        return COULOMB_CONSTANT * qq * (1.0 / r + k_rf * r**2 - c_rf)
    raise ValueError(f"unknown Coulomb method {method!r}; expected one of {COULOMB_METHODS}")
