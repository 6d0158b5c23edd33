"""An OpenMM ``System`` from a :class:`~gdbm.cgsim.forcefield.CGForceField`: tabulated custom forces.

Bonded potentials are one ``CustomCompoundBondForce`` per kind (the plain custom bond forces
take no tables) of ``distance`` / ``angle`` / ``dihedral``, reading a ``Continuous2DFunction``
whose rows are the type tuples' tables (periodic in x for dihedrals; one force per kind, not
per type tuple: each force costs a fixed overhead per step); the pair potential
is one ``CustomNonbondedForce`` reading a ``Continuous2DFunction`` of ``(r, pair type)`` whose
rows are the type pairs' tables (the spline passes through each row exactly at its integer
index), with the exclusions of the force field. The box goes to OpenMM in the reduced basis of
:func:`gdbm.physics.openmm_box.openmm_basis`; positions are rotated in and out by the caller.
"""

from __future__ import annotations

import numpy as np

from gdbm.cgsim.forcefield import BondedGroup, CGForceField
from gdbm.cgsim.inversion import Table

_GEOMETRY = {"bond": "distance(p1, p2)", "angle": "angle(p1, p2, p3)", "dihedral": "dihedral(p1, p2, p3, p4)"}


def _table_function(tables: list[Table], mm):
    """One tabulated function of ``x`` (1 table) or of ``(x, row)`` (several tables on one grid)."""
    x = tables[0].x
    if any(len(t.x) != len(x) or not np.allclose(t.x, x) for t in tables):
        raise ValueError("tables combined in one force must share one grid")
    if len(tables) == 1:
        return mm.Continuous1DFunction(tables[0].u.tolist(), float(x[0]), float(x[-1]), tables[0].periodic)
    # x varies fastest; not periodic (OpenMM's 2D periodicity would wrap the rows too): a dihedral
    # table spans exactly [-pi, pi] with equal end values, so only its slope may jump at +-pi
    values = np.stack([t.u for t in tables]).ravel()  # [rows, nx]
    return mm.Continuous2DFunction(len(x), len(tables), values.tolist(), float(x[0]), float(x[-1]),
                                   0.0, float(len(tables) - 1))


def _bonded_force(kind: str, groups: list[BondedGroup], mm):
    """All groups of one kind in one force: the per-bond parameter ``g`` picks the table row."""
    arity = groups[0].index.shape[1]
    argument = _GEOMETRY[kind] + (", g" if len(groups) > 1 else "")
    force = mm.CustomCompoundBondForce(arity, f"table({argument})")
    force.addPerBondParameter("g")
    force.addTabulatedFunction("table", _table_function([g.table for g in groups], mm))
    for row, group in enumerate(groups):
        for bond in group.index.tolist():
            force.addBond(bond, [float(row)])
    force.setUsesPeriodicBoundaryConditions(True)
    force.setName(kind)
    return force


def _pair_force(ff: CGForceField, mm):
    n_types = len(ff.type_names)
    grids = [t.x for t in ff.pairs.values()]
    x = grids[0]
    if any(len(g) != len(x) or not np.allclose(g, x) for g in grids):
        raise ValueError("pair tables must share one grid")
    rows = np.zeros((n_types * n_types, len(x)))  # [T*T, nx], row t1*T+t2
    for (a, b), table in ff.pairs.items():
        rows[a * n_types + b] = rows[b * n_types + a] = table.u
    force = mm.CustomNonbondedForce(f"table(r, t1*{n_types}+t2)")
    # Continuous2DFunction values: x varies fastest
    force.addTabulatedFunction("table", mm.Continuous2DFunction(len(x), n_types * n_types, rows.ravel().tolist(),
                                                                float(x[0]), float(x[-1]), 0.0,
                                                                float(n_types * n_types - 1)))
    force.addPerParticleParameter("t")
    for t in ff.type_index.tolist():
        force.addParticle([float(t)])
    for i, j in ff.exclusions.tolist():
        force.addExclusion(i, j)
    force.setNonbondedMethod(mm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(ff.cutoff)
    force.setName("pair")
    return force


def build_system(ff: CGForceField, masses: np.ndarray, box_vectors: np.ndarray):
    """An ``openmm.System`` of the force field; ``box_vectors`` ``[3, 3]`` in OpenMM's reduced form, nm."""
    import openmm as mm

    system = mm.System()
    for m in masses:
        system.addParticle(float(m))
    system.setDefaultPeriodicBoxVectors(*(mm.Vec3(*map(float, v)) for v in box_vectors))
    for kind in dict.fromkeys(g.kind for g in ff.bonded):
        system.addForce(_bonded_force(kind, [g for g in ff.bonded if g.kind == kind], mm))
    system.addForce(_pair_force(ff, mm))
    return system
