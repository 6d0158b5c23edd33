"""An OpenMM ``System`` built from a gdbm :class:`~gdbm.topology.Topology`, term by term.

Used where OpenMM does the work (energy minimisation for the baseline, reference MD) so
that every topology gdbm can read — including ``.itp`` files completed by a parameter file —
runs in OpenMM with exactly the parameters gdbm's own energies use. Each energy category
gets its own force group (:data:`FORCE_GROUPS`) so energies can be compared per term.
"""

from __future__ import annotations

import math

import numpy as np
import openmm as mm

from gdbm.topology.topology import Topology

COULOMB_CONSTANT = 138.935458  # kJ mol^-1 nm e^-2
FORCE_GROUPS = {"bond": 0, "angle": 1, "proper": 2, "improper": 3, "lj": 4, "coulomb": 5, "pair": 6}


def _bonded_forces(top: Topology) -> list[tuple[str, mm.Force]]:
    forces: list[tuple[str, mm.Force]] = []

    def add(category: str, force: mm.Force) -> None:
        force.setUsesPeriodicBoundaryConditions(True)  # frames are wrapped atom by atom
        forces.append((category, force))

    t = top.term("bond_harmonic")
    if len(t):
        f = mm.HarmonicBondForce()
        for (i, j), b0, k in zip(t.index.tolist(), t.params["b0"].tolist(), t.params["k"].tolist()):
            f.addBond(i, j, b0, k)
        add("bond", f)
    t = top.term("bond_g96")
    if len(t):
        f = mm.CustomBondForce("0.25*k*(r^2-b0^2)^2")
        f.addPerBondParameter("b0")
        f.addPerBondParameter("k")
        for (i, j), b0, k in zip(t.index.tolist(), t.params["b0"].tolist(), t.params["k"].tolist()):
            f.addBond(i, j, [b0, k])
        add("bond", f)
    t = top.term("angle_harmonic")
    if len(t):
        f = mm.HarmonicAngleForce()
        for (i, j, k), th, kk in zip(t.index.tolist(), t.params["theta0"].tolist(), t.params["k"].tolist()):
            f.addAngle(i, j, k, th, kk)
        add("angle", f)
    t = top.term("angle_g96")
    if len(t):
        f = mm.CustomAngleForce("0.5*k*(cos(theta)-cos(theta0))^2")
        f.addPerAngleParameter("theta0")
        f.addPerAngleParameter("k")
        for (i, j, k), th, kk in zip(t.index.tolist(), t.params["theta0"].tolist(), t.params["k"].tolist()):
            f.addAngle(i, j, k, [th, kk])
        add("angle", f)
    for kind, category in (("proper_periodic", "proper"), ("improper_periodic", "improper")):
        t = top.term(kind)
        if len(t):
            f = mm.PeriodicTorsionForce()
            for idx, phi0, k, n in zip(t.index.tolist(), t.params["phi0"].tolist(), t.params["k"].tolist(),
                                       t.params["n"].tolist()):
                f.addTorsion(*idx, int(n), phi0, k)
            add(category, f)
    t = top.term("proper_rb")
    if len(t):
        f = mm.RBTorsionForce()
        c = np.stack([t.params[f"c{n}"].numpy() for n in range(6)], axis=1)
        for idx, row in zip(t.index.tolist(), c.tolist()):
            f.addTorsion(*idx, *row)
        add("proper", f)
    t = top.term("improper_harmonic")
    if len(t):
        f = mm.CustomTorsionForce(f"0.5*k*d^2; d=min(a, {2 * math.pi}-a); a=abs(theta-xi0)")
        f.addPerTorsionParameter("xi0")
        f.addPerTorsionParameter("k")
        for idx, xi0, k in zip(t.index.tolist(), t.params["xi0"].tolist(), t.params["k"].tolist()):
            f.addTorsion(*idx, [xi0, k])
        add("improper", f)
    t = top.term("pair_lj")
    if len(t):
        f = mm.CustomBondForce(f"c12/r^12 - c6/r^6 + {COULOMB_CONSTANT}*qq/r")
        for name in ("c6", "c12", "qq"):
            f.addPerBondParameter(name)
        for (i, j), c6, c12, qq in zip(t.index.tolist(), t.params["c6"].tolist(), t.params["c12"].tolist(),
                                       t.params["qq"].tolist()):
            f.addBond(i, j, [c6, c12, qq])
        add("pair", f)
    return forces


def _lennard_jones(top: Topology, cutoff: float) -> mm.CustomNonbondedForce:
    lj = top.lj
    n_types = len(lj.type_names)
    f = mm.CustomNonbondedForce("c12(t1,t2)/r^12 - c6(t1,t2)/r^6")
    # Discrete2DFunction is indexed x + n*y, i.e. column-major
    f.addTabulatedFunction("c6", mm.Discrete2DFunction(n_types, n_types, lj.c6.T.flatten().tolist()))
    f.addTabulatedFunction("c12", mm.Discrete2DFunction(n_types, n_types, lj.c12.T.flatten().tolist()))
    f.addPerParticleParameter("t")
    for t in lj.atom_type.tolist():
        f.addParticle([float(t)])
    f.setNonbondedMethod(mm.CustomNonbondedForce.CutoffPeriodic)
    f.setCutoffDistance(cutoff)
    f.setUseSwitchingFunction(False)
    f.setUseLongRangeCorrection(False)
    for i, j in top.exclusions.tolist():
        f.addExclusion(i, j)
    return f


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


def _nonbonded_force(top: Topology, per_type: tuple[list[float], list[float]] | None, cutoff: float,
                     coulomb: bool, epsilon_rf: float) -> mm.NonbondedForce:
    """Reaction-field Coulomb and, for tables that follow Lorentz-Berthelot (``per_type``), LJ in one
    ``NonbondedForce``; ``per_type=None`` gives Coulomb alone (LJ then lives in a tabulated force)."""
    types = top.lj.atom_type.tolist()
    sigma, epsilon = per_type if per_type is not None else ([1.0] * (max(types) + 1), [0.0] * (max(types) + 1))
    f = mm.NonbondedForce()
    for q, t in zip(top.charges.tolist(), types):
        f.addParticle(q if coulomb else 0.0, sigma[t], epsilon[t])
    for i, j in top.exclusions.tolist():
        f.addException(i, j, 0.0, 1.0, 0.0)
    f.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic)
    f.setCutoffDistance(cutoff)
    f.setReactionFieldDielectric(epsilon_rf)
    f.setUseDispersionCorrection(False)
    return f


def build_system(top: Topology, box: np.ndarray, cutoff: float = 1.0, coulomb: bool = True,
                 epsilon_rf: float = 2.5, nonbonded: bool = True, tabulated_lj: bool = False) -> mm.System:
    """An OpenMM system of ``top`` in ``box`` (``[3, 3]`` nm, rows = vectors).

    ``nonbonded=False`` leaves out LJ, Coulomb and pairs (the bonded-only stage of the
    baseline minimisation). Coulomb uses OpenMM's periodic reaction field. LJ tables that
    follow Lorentz-Berthelot (GROMACS comb-rule 2, as sPS) go into one ``NonbondedForce``
    together with the Coulomb term (both in the ``"lj"`` force group then), about 5x faster on
    the CPU platform than the tabulated ``CustomNonbondedForce`` used otherwise or when
    ``tabulated_lj``.
    """
    if top.lj is None:
        raise ValueError(f"{top.source}: the topology has no force-field parameters")
    system = mm.System()
    for m in top.masses.tolist():
        system.addParticle(m)
    box = np.asarray(box, dtype=float)
    system.setDefaultPeriodicBoxVectors(*(mm.Vec3(*row) for row in box))
    for category, force in _bonded_forces(top):
        if category == "pair" and not nonbonded:
            continue
        force.setForceGroup(FORCE_GROUPS[category])
        system.addForce(force)
    per_type = None if tabulated_lj else _lorentz_berthelot(top)
    if nonbonded and per_type is not None:
        force = _nonbonded_force(top, per_type, cutoff, coulomb, epsilon_rf)
        force.setForceGroup(FORCE_GROUPS["lj"])
        system.addForce(force)
    elif nonbonded:
        lj = _lennard_jones(top, cutoff)
        lj.setForceGroup(FORCE_GROUPS["lj"])
        system.addForce(lj)
        if coulomb and bool((top.charges != 0).any()):
            qq = _nonbonded_force(top, None, cutoff, coulomb, epsilon_rf)
            qq.setForceGroup(FORCE_GROUPS["coulomb"])
            system.addForce(qq)
    return system
