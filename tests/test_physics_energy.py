"""Energies of tiny hand-built topologies: every term kind against its formula, plus the
non-bonded cutoff, exclusions, Coulomb variants, attribution, batching and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from gdbm.utils.errors import InputError
from gdbm.physics import CATEGORIES, EnergyModel, energy_and_forces, evaluate_terms, term_energies
from gdbm.physics.bonded import COULOMB_CONSTANT, dihedral
from gdbm.physics.nonbonded import reaction_field_constants
from gdbm.topology.topology import LennardJones, MoleculeBlock, Term, Topology

F64 = torch.float64
DEG = math.pi / 180.0
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_topology(n: int, terms: dict[str, Term] | None = None, *, exclusions: list[tuple[int, int]] = (),
                  charges: list[float] | None = None, molecules: list[int] | None = None,
                  c6: float = 0.0, c12: float = 0.0, parameters: bool = True) -> Topology:
    """``n`` atoms of one LJ type (c6, c12), in molecules of the given sizes."""
    sizes = molecules or [n]
    blocks, start = [], 0
    for k, size in enumerate(sizes):
        blocks.append(MoleculeBlock(f"M{k}", start, size))
        start += size
    molecule = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    lj = LennardJones(torch.zeros(n, dtype=torch.long), ["X"], torch.tensor([[c6]], dtype=F64),
                      torch.tensor([[c12]], dtype=F64)) if parameters else None
    return Topology(
        names=[f"A{i}" for i in range(n)], types=["X"] * n, elements=["C"] * n,
        masses=torch.full((n,), 12.0, dtype=F64),
        charges=torch.tensor(charges if charges is not None else [0.0] * n, dtype=F64),
        resids=torch.ones(n, dtype=torch.long), resnames=["RES"] * n, molecule=molecule, molecules=blocks,
        connectivity=torch.zeros(0, 2, dtype=torch.long), terms=terms or {},
        exclusions=torch.tensor(list(exclusions), dtype=torch.long).reshape(-1, 2), lj=lj)


def term(kind: str, index: list[list[int]], **params: list[float]) -> Term:
    return Term(kind, torch.tensor(index), {k: torch.tensor(v, dtype=F64) for k, v in params.items()})


def dihedral_positions(phi: float) -> torch.Tensor:
    """Four atoms with IUPAC dihedral ``phi`` (rad): i on +x, j at 0, k on +z, l at angle phi."""
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0],
                         [math.cos(phi), math.sin(phi), 1.0]], dtype=F64) * 0.15


def energy(top: Topology, x: torch.Tensor, box: torch.Tensor | None = None, **kw) -> dict[str, float]:
    return {k: float(v) for k, v in EnergyModel(top, **kw)(x, box).as_dict().items()}


# --- listed terms, one kind at a time -------------------------------------------------


def test_bond_harmonic_and_g96():
    x = torch.tensor([[0.0, 0.0, 0.0], [0.12, 0.0, 0.0]], dtype=F64)
    top = make_topology(2, {"bond_harmonic": term("bond_harmonic", [[0, 1]], b0=[0.1], k=[1000.0])})
    assert energy(top, x)["bond"] == pytest.approx(0.5 * 1000 * 0.02**2)
    # GROMOS quartic: 1/4 k (r^2 - b0^2)^2
    top = make_topology(2, {"bond_g96": term("bond_g96", [[0, 1]], b0=[0.1], k=[2.0e6])})
    assert energy(top, x)["bond"] == pytest.approx(0.25 * 2.0e6 * (0.12**2 - 0.1**2) ** 2)


def test_angle_harmonic_and_g96_cosine():
    x = torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.1, 0.0]], dtype=F64)  # 90 degrees
    top = make_topology(3, {"angle_harmonic": term("angle_harmonic", [[0, 1, 2]], theta0=[100 * DEG], k=[400.0])})
    assert energy(top, x)["angle"] == pytest.approx(0.5 * 400 * (10 * DEG) ** 2)
    top = make_topology(3, {"angle_g96": term("angle_g96", [[0, 1, 2]], theta0=[120 * DEG], k=[500.0])})
    assert energy(top, x)["angle"] == pytest.approx(0.5 * 500 * (0.0 - math.cos(120 * DEG)) ** 2)


def test_dihedral_sign_convention_is_iupac():
    # looking along j->k, l turned clockwise from i by phi: +phi (GROMACS / OpenMM / IUPAC)
    for phi in (-170.0, -60.0, 0.0, 35.0, 120.0, 179.0):
        d = dihedral_positions(phi * DEG)
        vec = (d[1:] - d[:-1]).unsqueeze(0)  # [1, 3, 3]
        assert float(dihedral(vec)) == pytest.approx(phi * DEG, abs=1e-12)
    assert float(dihedral((dihedral_positions(math.pi)[1:] - dihedral_positions(math.pi)[:-1]))) == pytest.approx(
        math.pi)


def test_proper_periodic_with_several_rows_per_dihedral():
    phi = 50.0 * DEG
    top = make_topology(4, {"proper_periodic": term("proper_periodic", [[0, 1, 2, 3]] * 3,
                                                    phi0=[0.0, 30 * DEG, 180 * DEG], k=[6.0, 2.5, 1.0],
                                                    n=[3.0, 1.0, 2.0])})
    expected = 6 * (1 + math.cos(3 * phi)) + 2.5 * (1 + math.cos(phi - 30 * DEG)) + (1 + math.cos(2 * phi - math.pi))
    assert energy(top, dihedral_positions(phi))["proper"] == pytest.approx(expected)
    # the sign of phi matters once phi0 is not 0 or 180
    assert energy(top, dihedral_positions(-phi))["proper"] != pytest.approx(expected)


def test_ryckaert_bellemans_uses_psi_equal_phi_minus_180():
    c = [9.28, 12.16, -13.12, -3.06, 26.24, -31.5]
    top = make_topology(4, {"proper_rb": term("proper_rb", [[0, 1, 2, 3]], **{f"c{n}": [c[n]] for n in range(6)})})
    for phi in (180.0, 60.0, -75.0):
        cpsi = math.cos((phi - 180.0) * DEG)
        expected = sum(c[n] * cpsi**n for n in range(6))
        assert energy(top, dihedral_positions(phi * DEG))["proper"] == pytest.approx(expected, rel=1e-12)
    # cis (phi = 0) is psi = -180 deg: sum of (-1)^n c_n
    assert energy(top, dihedral_positions(0.0))["proper"] == pytest.approx(sum(c[n] * (-1) ** n for n in range(6)))


def test_improper_harmonic_wraps_around_plus_minus_180():
    top = make_topology(4, {"improper_harmonic": term("improper_harmonic", [[0, 1, 2, 3]], xi0=[170 * DEG], k=[100.0])})
    # xi = -175 deg is 15 deg past 170 deg going through 180, not 345 deg away
    assert energy(top, dihedral_positions(-175 * DEG))["improper"] == pytest.approx(0.5 * 100 * (15 * DEG) ** 2)
    assert energy(top, dihedral_positions(160 * DEG))["improper"] == pytest.approx(0.5 * 100 * (10 * DEG) ** 2)


def test_improper_periodic():
    top = make_topology(4, {"improper_periodic": term("improper_periodic", [[0, 1, 2, 3]], phi0=[180 * DEG], k=[4.6],
                                                      n=[2.0])})
    phi = 20 * DEG
    out = energy(top, dihedral_positions(phi))
    assert out["improper"] == pytest.approx(4.6 * (1 + math.cos(2 * phi - math.pi)))
    assert out["proper"] == 0.0


def test_pair_lj_splits_into_lj_and_scaled_coulomb():
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.35]], dtype=F64)
    c6, c12, qq = 2.0e-3, 3.0e-6, -0.04
    top = make_topology(2, {"pair_lj": term("pair_lj", [[0, 1]], c6=[c6], c12=[c12], qq=[qq])},
                        exclusions=[(0, 1)])
    lj = c12 / 0.35**12 - c6 / 0.35**6
    out = energy(top, x, coulomb="cutoff")
    assert out["lj"] == pytest.approx(lj)
    assert out["coulomb"] == pytest.approx(COULOMB_CONSTANT * qq / 0.35)
    # no cutoff for listed pairs; no electrostatics at all with coulomb="none"
    out = energy(top, x, cutoff=0.2)
    assert out["lj"] == pytest.approx(lj) and out["coulomb"] == 0.0


# --- non-bonded pairs -----------------------------------------------------------------


def test_lj_plain_cutoff_and_exclusions():
    c6, c12 = 1.5e-3, 1.7e-6
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.4], [0.0, 0.0, 1.3]], dtype=F64)
    top = make_topology(3, c6=c6, c12=c12)
    lj = lambda r: c12 / r**12 - c6 / r**6  # noqa: E731
    assert energy(top, x, cutoff=1.0)["lj"] == pytest.approx(lj(0.4) + lj(0.9))  # 1.3 nm is beyond
    top = make_topology(3, c6=c6, c12=c12, exclusions=[(0, 1)])
    assert energy(top, x, cutoff=1.0)["lj"] == pytest.approx(lj(0.9))


def test_exclusion_removes_only_the_nearest_periodic_image():
    c6, c12 = 1.5e-3, 1.7e-6
    # 1.5 nm thick box, cutoff 1.0: the two atoms interact at 0.6 nm and through the next image at 0.9 nm
    x = torch.tensor([[0.5, 0.5, 0.2], [0.5, 0.5, 0.8]], dtype=F64)
    box = torch.diag(torch.tensor([4.0, 4.0, 1.5], dtype=F64))
    lj = lambda r: c12 / r**12 - c6 / r**6  # noqa: E731
    assert energy(make_topology(2, c6=c6, c12=c12), x, box)["lj"] == pytest.approx(lj(0.6) + lj(0.9))
    assert energy(make_topology(2, c6=c6, c12=c12, exclusions=[(0, 1)]), x, box)["lj"] == pytest.approx(lj(0.9))


def test_coulomb_cutoff_and_reaction_field():
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5]], dtype=F64)
    top = make_topology(2, charges=[0.4, -0.3])
    qq, r, rc = -0.12, 0.5, 1.1
    assert energy(top, x, cutoff=rc)["coulomb"] == 0.0
    assert energy(top, x, cutoff=rc, coulomb="cutoff")["coulomb"] == pytest.approx(COULOMB_CONSTANT * qq / r)
    for eps_rf in (2.5, 78.3, math.inf):
        k_rf = 1 / (2 * rc**3) if math.isinf(eps_rf) else (eps_rf - 1) / ((2 * eps_rf + 1) * rc**3)
        c_rf = 1 / rc + k_rf * rc**2
        expected = COULOMB_CONSTANT * qq * (1 / r + k_rf * r**2 - c_rf)
        out = energy(top, x, cutoff=rc, coulomb="reaction_field", epsilon_rf=eps_rf)
        assert out["coulomb"] == pytest.approx(expected)
    # reaction field goes to zero at the cutoff
    k_rf, c_rf = reaction_field_constants(rc, 2.5)
    assert 1 / rc + k_rf * rc**2 - c_rf == pytest.approx(0.0, abs=1e-12)
    assert reaction_field_constants(rc, 0.0) == reaction_field_constants(rc, math.inf)  # GROMACS' 0 = inf


# --- a small mixed system: attribution, batching, dtype, gradients --------------------


def _mixed_system() -> tuple[Topology, torch.Tensor, torch.Tensor]:
    """Two 4-atom molecules with every kind of listed term, LJ and charges, in a triclinic box."""
    g = torch.Generator().manual_seed(5)
    terms = {
        "bond_harmonic": term("bond_harmonic", [[0, 1], [4, 5]], b0=[0.15, 0.15], k=[3000.0, 3000.0]),
        "bond_g96": term("bond_g96", [[1, 2], [5, 6]], b0=[0.15, 0.15], k=[1e5, 1e5]),
        "angle_harmonic": term("angle_harmonic", [[0, 1, 2]], theta0=[110 * DEG], k=[300.0]),
        "angle_g96": term("angle_g96", [[4, 5, 6]], theta0=[110 * DEG], k=[300.0]),
        "proper_periodic": term("proper_periodic", [[0, 1, 2, 3], [0, 1, 2, 3]], phi0=[0.0, 40 * DEG],
                                k=[5.0, 2.0], n=[3.0, 1.0]),
        "proper_rb": term("proper_rb", [[4, 5, 6, 7]], c0=[9.3], c1=[12.2], c2=[-13.1], c3=[-3.1], c4=[26.2],
                          c5=[-31.5]),
        "improper_harmonic": term("improper_harmonic", [[1, 0, 2, 3]], xi0=[175 * DEG], k=[50.0]),
        "improper_periodic": term("improper_periodic", [[5, 4, 6, 7]], phi0=[180 * DEG], k=[4.0], n=[2.0]),
        "pair_lj": term("pair_lj", [[0, 3], [4, 7]], c6=[1e-3, 1e-3], c12=[1e-6, 1e-6], qq=[0.02, -0.01]),
    }
    excl = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (0, 3), (4, 5), (4, 6), (5, 6), (5, 7), (6, 7), (4, 7)]
    top = make_topology(8, terms, exclusions=excl, charges=[0.2, -0.1, 0.1, -0.2, 0.3, -0.3, 0.1, -0.1],
                        molecules=[4, 4], c6=2e-3, c12=3e-6)
    chain = torch.tensor([[0.0, 0.0, 0.0], [0.15, 0.0, 0.0], [0.2, 0.14, 0.0], [0.33, 0.17, 0.08]], dtype=F64)
    x = torch.cat([chain + 0.3, chain + torch.tensor([0.9, 0.25, 0.35], dtype=F64)])
    x = x + 0.01 * torch.randn(8, 3, generator=g, dtype=F64)
    box = torch.tensor([[1.3, 0.0, 0.0], [-0.5, 1.2, 0.0], [0.3, 0.2, 1.25]], dtype=F64)
    return top, x, box


def test_per_molecule_and_per_atom_sum_to_per_frame():
    top, x, box = _mixed_system()
    model = EnergyModel(top, cutoff=0.6, coulomb="reaction_field", epsilon_rf=2.5)
    frame = model(x, box)
    mol = model(x, box, resolution="molecule")
    atom = model(x, box, resolution="atom")
    assert mol.per_molecule["total"].shape == (2,) and atom.per_atom["total"].shape == (8,)
    for name in (*CATEGORIES, "total"):
        assert float(mol.per_molecule[name].sum()) == pytest.approx(float(getattr(frame, name)), abs=1e-10)
        assert float(atom.per_atom[name].sum()) == pytest.approx(float(getattr(frame, name)), abs=1e-10)
    # listed terms belong to the molecule of their first atom
    bond = term_energies(top.terms["bond_harmonic"], x, box)["bond"]
    g96 = term_energies(top.terms["bond_g96"], x, box)["bond"]
    assert float(mol.per_molecule["bond"][1]) == pytest.approx(float(bond[1] + g96[1]))
    assert frame.total.dtype == F64 and frame.total.shape == ()


def test_nonbonded_pair_gives_half_to_each_molecule():
    c6, c12 = 1.5e-3, 1.7e-6
    x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.4]], dtype=F64)
    top = make_topology(3, molecules=[1, 2], c6=c6, c12=c12, exclusions=[(1, 2)])
    out = EnergyModel(top, cutoff=0.45)(x, None, resolution="molecule")  # only the 0-2 pair (0.4 nm)
    e = c12 / 0.4**12 - c6 / 0.4**6
    assert out.per_molecule["lj"].tolist() == pytest.approx([0.5 * e, 0.5 * e])


def test_batched_equals_single_frames_and_float32():
    top, x, box = _mixed_system()
    model = EnergyModel(top, cutoff=0.6, coulomb="cutoff")
    g = torch.Generator().manual_seed(9)
    xs = torch.stack([x, x + 0.01 * torch.randn(8, 3, generator=g, dtype=F64), x + 0.3])  # [3, 8, 3]
    boxes = torch.stack([box, box, box * 1.1])
    batch = model(xs, boxes)
    assert batch.total.shape == (3,)
    for f in range(3):
        single = model(xs[f], boxes[f])
        for name, value in single.as_dict().items():
            assert float(getattr(batch, name)[f]) == pytest.approx(float(value), rel=1e-12, abs=1e-12)
    e32, f32 = energy_and_forces(model, xs.float(), boxes.float())
    assert e32.total.dtype == F64 and f32.dtype == torch.float32 and f32.shape == xs.shape
    assert torch.allclose(e32.total, batch.total, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_forces_match_finite_differences(device: str):
    top, x, box = _mixed_system()
    model = EnergyModel(top, cutoff=0.6, coulomb="reaction_field", epsilon_rf=2.5)
    x, box = x.to(device), box.to(device)
    _, forces = energy_and_forces(model, x, box)
    assert forces.device == x.device
    h = 1e-6
    numeric = torch.zeros_like(x)
    for a in range(x.shape[0]):
        for k in range(3):
            xp, xm = x.clone(), x.clone()
            xp[a, k] += h
            xm[a, k] -= h
            numeric[a, k] = -(model(xp, box).total - model(xm, box).total) / (2 * h)
    assert torch.allclose(forces, numeric, rtol=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(lambda y: model(y, box).total, (x.clone().requires_grad_(True),))


def test_evaluate_terms_on_a_subset_without_box():
    top, x, box = _mixed_system()
    subset = [top.terms["angle_harmonic"], top.terms["angle_g96"], top.terms["pair_lj"]]
    out = evaluate_terms(subset, x.unsqueeze(0).repeat(2, 1, 1))
    assert set(out) == {"angle", "lj", "coulomb"} and out["angle"].shape == (2,)
    full = EnergyModel(top, cutoff=0.6, coulomb="cutoff")(x, None)
    assert float(out["angle"][0]) == pytest.approx(float(full.angle))
    assert "coulomb" not in evaluate_terms(subset, x, coulomb=False)


# --- errors ---------------------------------------------------------------------------


def test_errors_are_input_errors():
    top, x, box = _mixed_system()
    with pytest.raises(InputError, match="no force-field parameters"):
        EnergyModel(make_topology(3, parameters=False))
    model = EnergyModel(top)
    with pytest.raises(InputError, match="7 atoms but the topology has 8"):
        model(x[:7], box)
    bad = x.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model(bad, box)
    with pytest.raises(InputError, match="boxes must be"):
        model(x.unsqueeze(0), box)
    with pytest.raises(InputError, match="Coulomb"):
        EnergyModel(top, coulomb="pme")


def test_linear_core_lj_is_lj_outside_and_finite_inside():
    from gdbm.physics.nonbonded import lj_energy, lj_energy_linear_core

    sigma, eps = 0.3, 0.5
    c6, c12 = torch.tensor([4 * eps * sigma**6] * 4, dtype=torch.float64), torch.tensor([4 * eps * sigma**12] * 4,
                                                                                         dtype=torch.float64)
    r = torch.tensor([0.0, 0.1, 0.25, 0.4], dtype=torch.float64, requires_grad=True)
    soft = lj_energy_linear_core(r**2, c6, c12, 0.8)
    assert soft[2:].tolist() == pytest.approx(lj_energy(r[2:].detach() ** 2, c6[2:], c12[2:]).tolist())
    assert bool(torch.isfinite(soft).all()) and soft[0] > soft[1] > soft[2]  # keeps pushing apart
    (grad,) = torch.autograd.grad(soft[1], r)
    assert torch.isfinite(grad).all() and grad[1] < 0
