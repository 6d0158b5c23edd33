"""OpenMM's own reading of a GROMACS topology, prepared as an independent reference for our energies.

Charges zeroed (the comparison is Lennard-Jones and bonded), no dispersion correction, and
every force periodic: frames are wrapped atom by atom, and OpenMM's GROMACS reader turns
the 1-4 pairs of ``nrexcl`` < 3 into exceptions that ignore periodic images unless told to
(530 kJ/mol off on an sPS frame otherwise).
"""

from __future__ import annotations

from pathlib import Path

import openmm as mm
import openmm.app as app
import openmm.unit as unit


def gromacs_reference_system(top: str | Path, box_vectors: list[mm.Vec3], cutoff: float = 1.0) -> mm.System:
    """``GromacsTopFile(top).createSystem`` with a plain periodic cutoff, charges off, all forces periodic."""
    top = Path(top)
    omm = app.GromacsTopFile(str(top), periodicBoxVectors=box_vectors * unit.nanometer, includeDir=str(top.parent))
    system = omm.createSystem(nonbondedMethod=app.CutoffPeriodic, nonbondedCutoff=cutoff * unit.nanometer)
    for force in system.getForces():
        if isinstance(force, mm.NonbondedForce):
            force.setUseDispersionCorrection(False)
            force.setExceptionsUsePeriodicBoundaryConditions(True)
            for i in range(force.getNumParticles()):
                _, sigma, eps = force.getParticleParameters(i)
                force.setParticleParameters(i, 0.0, sigma, eps)
            for k in range(force.getNumExceptions()):
                i, j, _, sigma, eps = force.getExceptionParameters(k)
                force.setExceptionParameters(k, i, j, 0.0, sigma, eps)
        elif hasattr(force, "setUsesPeriodicBoundaryConditions"):
            force.setUsesPeriodicBoundaryConditions(True)
    return system
