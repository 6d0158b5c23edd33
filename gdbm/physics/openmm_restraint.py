"""Hold CG bead centres on target points in an OpenMM simulation (restrained thermalisation of backmaps).

One harmonic term per bead on the weighted centre of its atoms, ``0.5 k |c - target|^2``; the
targets are per-bead parameters (changed between frames with :func:`set_centroid_targets`), the
stiffness ``k`` a global context parameter (:data:`STIFFNESS`, changeable during a run). Centres
are computed from raw coordinates: molecules must be whole.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import openmm as mm

STIFFNESS = "k_restraint"  # kJ/mol/nm^2


def centroid_restraint(groups: Iterable[tuple[list[int], list[float]]], k: float) -> mm.CustomCentroidBondForce:
    """The restraint of each ``(atoms, weights)`` group's centre, every target at the origin until set."""
    force = mm.CustomCentroidBondForce(1, f"0.5*{STIFFNESS}*((x1-x0)^2 + (y1-y0)^2 + (z1-z0)^2)")
    force.addGlobalParameter(STIFFNESS, k)
    for name in ("x0", "y0", "z0"):
        force.addPerBondParameter(name)
    for group, (atoms, weights) in enumerate(groups):
        force.addGroup(list(atoms), list(weights))
        force.addBond([group], [0.0, 0.0, 0.0])
    return force


def set_centroid_targets(force: mm.CustomCentroidBondForce, targets: np.ndarray, context: mm.Context) -> None:
    """Move every group's target to ``targets`` ``[groups, 3]`` (nm) in ``context``."""
    for group, xyz in enumerate(np.asarray(targets, dtype=float).tolist()):
        force.setBondParameters(group, [group], xyz)
    force.updateParametersInContext(context)
