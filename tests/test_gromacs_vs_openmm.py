"""Term-by-term check of our reader against OpenMM's GromacsTopFile on the sPS topology."""

from __future__ import annotations

import math
from pathlib import Path

import openmm as mm
import openmm.app as app
import openmm.unit as unit
import pytest

from gdbm.topology import read_topology


@pytest.fixture(scope="module")
def both(sps: Path):
    box = [mm.Vec3(10, 0, 0), mm.Vec3(0, 10, 0), mm.Vec3(0, 0, 10)] * unit.nanometer
    omm = app.GromacsTopFile(str(sps / "topol.top"), periodicBoxVectors=box, includeDir=str(sps))
    system = omm.createSystem(nonbondedMethod=app.CutoffPeriodic, nonbondedCutoff=1.0 * unit.nanometer)
    # deep copies: the Force objects of getForces() die with the System that owns them
    forces = {type(f).__name__: mm.XmlSerializer.clone(f) for f in system.getForces()}
    return read_topology(sps / "topol.top"), forces


def _key(*idx: int) -> tuple[int, ...]:
    return tuple(idx) if idx[0] < idx[-1] else tuple(reversed(idx))


def test_bonds_match(both):
    ours, forces = both
    f = forces["HarmonicBondForce"]
    theirs = {}
    for k in range(f.getNumBonds()):
        i, j, b0, kb = f.getBondParameters(k)
        theirs[_key(i, j)] = (b0.value_in_unit(unit.nanometer), kb.value_in_unit(unit.kilojoule_per_mole / unit.nanometer**2))
    t = ours.terms["bond_harmonic"]
    mine = {_key(*i): (b0, k) for i, b0, k in zip(t.index.tolist(), t.params["b0"].tolist(), t.params["k"].tolist())}
    assert mine.keys() == theirs.keys()
    assert all(math.isclose(mine[k][0], theirs[k][0]) and math.isclose(mine[k][1], theirs[k][1]) for k in mine)


def test_angles_match(both):
    ours, forces = both
    f = forces["HarmonicAngleForce"]
    theirs = {}
    for k in range(f.getNumAngles()):
        i, j, l, th, kk = f.getAngleParameters(k)
        theirs[_key(i, j, l)] = (th.value_in_unit(unit.radian), kk.value_in_unit(unit.kilojoule_per_mole / unit.radian**2))
    t = ours.terms["angle_harmonic"]
    mine = {_key(*i): (a, k) for i, a, k in zip(t.index.tolist(), t.params["theta0"].tolist(), t.params["k"].tolist())}
    assert mine.keys() == theirs.keys()
    assert all(math.isclose(mine[k][0], theirs[k][0], rel_tol=1e-9) and math.isclose(mine[k][1], theirs[k][1]) for k in mine)


def test_torsions_match(both):
    ours, forces = both
    f = forces["PeriodicTorsionForce"]
    theirs = sorted((tuple(f.getTorsionParameters(k)[:5]), f.getTorsionParameters(k)[6].value_in_unit(unit.kilojoule_per_mole))
                    for k in range(f.getNumTorsions()))
    t = ours.terms["proper_periodic"]
    mine = sorted(((*i, int(n)), k) for i, n, k in zip(t.index.tolist(), t.params["n"].tolist(), t.params["k"].tolist()))
    assert [m[0] for m in mine] == [th[0] for th in theirs]
    assert [m[1] for m in mine] == pytest.approx([th[1] for th in theirs])
    imp = forces["CustomTorsionForce"]
    theirs_imp = sorted(tuple(imp.getTorsionParameters(k)[:4]) for k in range(imp.getNumTorsions()))
    assert sorted(map(tuple, ours.terms["improper_harmonic"].index.tolist())) == theirs_imp


def test_exclusions_and_lj_match(both):
    ours, forces = both
    nb = forces["NonbondedForce"]
    zero, scaled = set(), {}
    for k in range(nb.getNumExceptions()):
        i, j, q, sigma, eps = nb.getExceptionParameters(k)
        if eps.value_in_unit(unit.kilojoule_per_mole) == 0.0 and q.value_in_unit(unit.elementary_charge**2) == 0.0:
            zero.add(_key(i, j))
        else:
            scaled[_key(i, j)] = (sigma.value_in_unit(unit.nanometer), eps.value_in_unit(unit.kilojoule_per_mole))
    assert zero == set(map(tuple, ours.exclusions.tolist()))
    # OpenMM turns the 1-4 pairs of nrexcl 2 into full-strength exceptions: the same LJ as ours
    lj = ours.lj
    for (i, j), (sigma, eps) in list(scaled.items())[:500]:
        a, b = lj.atom_type[i], lj.atom_type[j]
        assert math.isclose(4 * eps * sigma**6, float(lj.c6[a, b]), rel_tol=1e-9)
        assert math.isclose(4 * eps * sigma**12, float(lj.c12[a, b]), rel_tol=1e-9)
    for i in range(0, ours.n_atoms, 97):
        q, sigma, eps = nb.getParticleParameters(i)
        assert q.value_in_unit(unit.elementary_charge) == pytest.approx(float(ours.charges[i]))
        a = lj.atom_type[i]
        assert 4 * eps.value_in_unit(unit.kilojoule_per_mole) * sigma.value_in_unit(unit.nanometer) ** 6 == pytest.approx(float(lj.c6[a, a]))
