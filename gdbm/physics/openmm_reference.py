"""OpenMM's own reading of a GROMACS topology, as an independent reference for our energies.

:func:`gromacs_reference_system`: charges zeroed (Lennard-Jones and bonded only), no dispersion
correction, every force periodic; :func:`per_term_energies`: both sides per term, with a
reaction-field Coulomb. Every force periodic because frames are wrapped atom by atom, and OpenMM's GROMACS reader turns
the 1-4 pairs of ``nrexcl`` < 3 into exceptions that ignore periodic images unless told to
(530 kJ/mol off on an sPS frame otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit


def gromacs_reference_system(top: str | Path, box_vectors: list[mm.Vec3], cutoff: float = 1.0, *,
                             charges: bool = False, lennard_jones: bool = True,
                             epsilon_rf: float | None = None) -> mm.System:
    """``GromacsTopFile(top).createSystem`` with a plain periodic cutoff, no dispersion correction,
    all forces periodic; charges off unless ``charges``, LJ off unless ``lennard_jones``;
    ``epsilon_rf`` sets the reaction-field dielectric of the cutoff Coulomb."""
    top = Path(top)
    omm = app.GromacsTopFile(str(top), periodicBoxVectors=box_vectors * unit.nanometer, includeDir=str(top.parent))
    system = omm.createSystem(nonbondedMethod=app.CutoffPeriodic, nonbondedCutoff=cutoff * unit.nanometer)
    for force in system.getForces():
        if isinstance(force, mm.NonbondedForce):
            force.setUseDispersionCorrection(False)
            force.setExceptionsUsePeriodicBoundaryConditions(True)
            if epsilon_rf is not None:
                force.setReactionFieldDielectric(epsilon_rf)
            for i in range(force.getNumParticles()):
                q, sigma, eps = force.getParticleParameters(i)
                force.setParticleParameters(i, q if charges else 0.0, sigma, eps if lennard_jones else 0.0)
            for k in range(force.getNumExceptions()):
                i, j, qq, sigma, eps = force.getExceptionParameters(k)
                force.setExceptionParameters(k, i, j, qq if charges else 0.0, sigma, eps if lennard_jones else 0.0)
        elif hasattr(force, "setUsesPeriodicBoundaryConditions"):
            force.setUsesPeriodicBoundaryConditions(True)
    return system


TERMS = ("bond", "angle", "dihedral", "lj", "coulomb")


def per_term_energies(top: str | Path, positions: np.ndarray, box: np.ndarray, cutoff: float = 0.7,
                      epsilon_rf: float = 78.5) -> tuple[dict[str, float], dict[str, float], float]:
    """gdbm's and OpenMM's energies of one frame per term (kJ/mol), and the forces' relative deviation.

    Like with like: a periodic reaction field (``epsilon_rf``) at ``cutoff`` nm and no dispersion
    correction on both sides (OpenMM reading ``top`` itself with ``GromacsTopFile``); every force
    periodic. OpenMM puts propers and impropers in one ``PeriodicTorsionForce``, so they are
    compared summed as ``"dihedral"``; LJ and Coulomb come from two contexts (charges off /
    epsilons off). Returns ``(ours, theirs, force_deviation)``.
    """
    import torch

    from gdbm.physics.energy import EnergyModel, energy_and_forces
    from gdbm.topology import read_topology

    top = Path(top)

    def openmm_terms(keep: str) -> tuple[dict[str, float], np.ndarray]:
        system = gromacs_reference_system(top, [mm.Vec3(*r) for r in box.tolist()], cutoff,
                                          charges=keep != "lj", lennard_jones=keep != "coulomb",
                                          epsilon_rf=epsilon_rf)
        names = {}
        for group, force in enumerate(system.getForces()):
            force.setForceGroup(group)
            names[group] = type(force).__name__
        context = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
        context.setPositions(positions)
        kj = unit.kilojoule_per_mole
        energies = {names[g]: context.getState(getEnergy=True, groups={g}).getPotentialEnergy().value_in_unit(kj)
                    for g in names}
        forces = context.getState(getForces=True).getForces(asNumpy=True).value_in_unit(kj / unit.nanometer)
        return energies, np.asarray(forces)

    lj_only, _ = openmm_terms("lj")
    coulomb_only, _ = openmm_terms("coulomb")
    _, all_forces = openmm_terms("all")
    theirs = {"bond": lj_only["HarmonicBondForce"], "angle": lj_only["HarmonicAngleForce"],
              "dihedral": lj_only["PeriodicTorsionForce"], "lj": lj_only["NonbondedForce"],
              "coulomb": coulomb_only["NonbondedForce"]}
    model = EnergyModel(read_topology(top), cutoff=cutoff, coulomb="reaction_field", epsilon_rf=epsilon_rf)
    energies, forces = energy_and_forces(model, torch.as_tensor(positions, dtype=torch.float64),
                                         torch.as_tensor(box, dtype=torch.float64))
    ours = {"bond": float(energies.bond), "angle": float(energies.angle),
            "dihedral": float(energies.proper + energies.improper), "lj": float(energies.lj),
            "coulomb": float(energies.coulomb)}
    force_deviation = float(np.linalg.norm(forces.numpy() - all_forces) / np.linalg.norm(all_forces))
    return ours, theirs, force_deviation
