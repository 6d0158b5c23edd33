"""Mappings: file formats, errors, expansion, PBC-aware bead positions, and the real CG frames."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gdbm.data.trajectory import read_frames
from gdbm.utils.errors import InputError
from gdbm.utils.pbc import minimum_image
from gdbm.topology.gromacs import read_topology
from gdbm.topology.mapfiles import load_mapping, write_map, write_yaml
from gdbm.topology.mapping import MoleculeMapping, expand_mapping
from gdbm.topology.topology import TERM_KINDS, MoleculeBlock, Topology

XTC_PRECISION = 0.0015  # nm, per coordinate


def toy_topology(names: list[str], masses: list[float], bonds: list[tuple[int, int]], n_mol: int,
                 molecule: str = "TOY", source: str = "toy.itp") -> Topology:
    """``n_mol`` copies of one molecule, built by hand (structure only)."""
    n = len(names)
    conn = torch.tensor(bonds, dtype=torch.long).view(-1, 2)
    return Topology(
        names=names * n_mol, types=names * n_mol, elements=[s[0] for s in names] * n_mol,
        masses=torch.tensor(masses * n_mol, dtype=torch.float64), charges=torch.zeros(n * n_mol, dtype=torch.float64),
        resids=torch.ones(n * n_mol, dtype=torch.long), resnames=[molecule] * (n * n_mol),
        molecule=torch.arange(n_mol).repeat_interleave(n),
        molecules=[MoleculeBlock(molecule, k * n, n) for k in range(n_mol)],
        connectivity=torch.cat([conn + k * n for k in range(n_mol)]), source=source)


@pytest.fixture
def toy(tmp_path: Path):
    """A 5-atom molecule C1 H2 C3 H4 H5 -> beads A (C1 H2 + half C3) and B (half C3 + H4 H5)."""
    aa = toy_topology(["C1", "H2", "C3", "H4", "H5"], [12.0, 1.0, 12.0, 1.0, 1.0],
                      [(0, 1), (0, 2), (2, 3), (2, 4)], 2, source="toy_aa.itp")
    cg = toy_topology(["A", "B"], [1.0, 1.0], [(0, 1)], 2, source="toy_cg.itp")
    text = """; toy mapping
[map]
1 C   1 BB        ; weight 1 by default
2 H   1 BB 1.0
3 C   1 BB 0.5
3 C   2 SC 0.5    ; tie: the first listed bead is home
4 H   2 SC
5 H   2 SC
[/map]
[align]
1 2
2 1
[/align]
[mult]
2 3
"""
    path = tmp_path / "toy.map"
    path.write_text(text)
    return aa, cg, path


def same_mapping(a: MoleculeMapping, b: MoleculeMapping) -> bool:
    tensors = ("cg_bonds", "membership", "weights", "home_bead", "align", "mult")
    lists = ("molecule", "n_atoms", "bead_names", "bead_types", "bead_labels", "prior_types", "center")
    return all(torch.equal(getattr(a, t), getattr(b, t)) for t in tensors) and \
        all(getattr(a, k) == getattr(b, k) for k in lists)


# ---------------------------------------------------------------------------- .map reading


def test_read_map(toy):
    aa, cg, path = toy
    m = load_mapping(path, aa, cg)
    assert (m.molecule, m.n_atoms, m.n_beads) == ("TOY", 5, 2)
    assert m.bead_names == ["A", "B"] and m.bead_labels == ["BB", "SC"]
    assert m.membership.tolist() == [[0, 0], [1, 0], [2, 0], [2, 1], [3, 1], [4, 1]]
    assert m.weights.tolist() == [1.0, 1.0, 0.5, 0.5, 1.0, 1.0]
    assert m.home_bead.tolist() == [0, 0, 0, 1, 1]
    assert m.prior_types == ["C", "H", "C", "H", "H"]
    assert m.align.tolist() == [1, 0] and m.mult.tolist() == [1, 3]
    assert m.cg_bonds.tolist() == [[0, 1]]
    assert m.source == str(path)


def test_home_bead_is_largest_weight_then_first_listed(toy, tmp_path):
    aa, cg, _ = toy
    path = tmp_path / "w.map"
    path.write_text("[map]\n1 C 1 A\n2 H 1 A\n3 C 2 B 0.25\n3 C 1 A 0.75\n4 H 2 B 0.5\n4 H 1 A 0.5\n5 H 2 B\n")
    assert load_mapping(path, aa, cg).home_bead.tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("line, expected", [
    ("1 C x BB", "bead_index"),
    ("1 C 1", "atom_index ff_type bead_index bead_name [weight]"),
    ("0 C 1 BB", "integers >= 1"),
    ("1 C 1 BB -0.5", "weight >= 0"),
    ("1 C 1 BB 1.0 7", "got '1 C 1 BB 1.0 7'"),
])
def test_malformed_map_line(toy, tmp_path, line, expected):
    aa, cg, _ = toy
    path = tmp_path / "bad.map"
    path.write_text(f"; header\n[map]\n2 H 1 BB\n{line}\n")
    with pytest.raises(InputError) as err:
        load_mapping(path, aa, cg)
    assert err.value.path == str(path) and err.value.line == 4
    assert expected in str(err.value) and str(err.value).startswith(f"{path}:4: ")


@pytest.mark.parametrize("text, line, message", [
    ("[map]\n1 C 1 A\n2 H 3 A\n", 3, "bead 3, but molecule 'TOY' has 2 beads in the CG topology toy_cg.itp"),
    ("[map]\n1 C 1 A\n9 H 1 A\n", 3, "atom 9, but molecule 'TOY' has 5 atoms in toy_aa.itp"),
    ("[map]\n1 C 1 A\n1 C 1 A 0.5\n", 3, "listed twice for bead 1"),
    ("[map]\n1 C 1 A\n2 H 1 X\n", 3, "named 'X' here but 'A'"),
    ("[maps]\n1 C 1 A\n", 1, "unknown section [maps]"),
    ("1 C 1 A\n", 1, "outside any section"),
    ("[map]\n1 C 1 A\n[align]\n1 2 3\n", 4, "'bead fixpoint_bead'"),
    ("[map]\n1 C 1 A\n[align]\n1 5\n", 4, "[align] names a bead beyond the 2 beads"),
    ("[map]\n1 C 1 A\n[mult]\n1 2\n1 3\n", 5, "listed twice in [mult]"),
])
def test_map_errors_name_file_and_line(toy, tmp_path, text, line, message):
    aa, cg, _ = toy
    path = tmp_path / "bad.map"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_mapping(path, aa, cg, partial=True)
    assert err.value.line == line and message in str(err.value)


def test_atom_never_mapped(toy, tmp_path):
    aa, cg, _ = toy
    path = tmp_path / "partial.map"
    path.write_text("[map]\n1 C 1 A\n4 H 2 B\n")
    with pytest.raises(InputError, match=r"atoms 2-3, 5 of 'TOY' are never mapped"):
        load_mapping(path, aa, cg)
    m = load_mapping(path, aa, cg, partial=True)
    assert m.home_bead.tolist() == [0, -1, -1, 1, -1] and not m.is_complete
    assert m.prior_types == ["C", "", "", "H", ""]


def test_atom_count_mismatch_names_files(toy):
    aa, cg, path = toy
    m = load_mapping(path, aa, cg)
    bigger = toy_topology(["C1", "H2", "C3", "H4", "H5", "H6"], [12.0, 1, 12, 1, 1, 1], [(0, 1)], 2,
                          source="other_aa.itp")
    with pytest.raises(InputError) as err:
        expand_mapping(m, bigger, cg)
    assert "has 6 atoms in other_aa.itp but 5 in the mapping" in str(err.value) and err.value.path == str(path)
    other_cg = toy_topology(["A", "C"], [1.0, 1.0], [(0, 1)], 2, source="other_cg.itp")
    with pytest.raises(InputError, match="bead types \\['A', 'C'\\] in other_cg.itp"):
        expand_mapping(m, aa, other_cg)
    with pytest.raises(InputError, match="2 molecules in the AA topology but 1"):
        expand_mapping(m, aa, toy_topology(["A", "B"], [1.0, 1.0], [(0, 1)], 1))


def test_zero_weight_bead_rejected(toy, tmp_path):
    aa, cg, _ = toy
    path = tmp_path / "zero.map"
    path.write_text("[map]\n1 C 1 A\n2 H 1 A\n3 C 1 A\n4 H 2 B 0\n5 H 2 B 0\n")
    with pytest.raises(InputError, match=r"beads \[2\] have no atom with a positive weight"):
        load_mapping(path, aa, cg)


# ---------------------------------------------------------------------------- YAML


def test_map_yaml_map_round_trip(toy, tmp_path):
    aa, cg, path = toy
    m = load_mapping(path, aa, cg)
    y = load_mapping(write_yaml(m, tmp_path / "toy.yaml"))
    assert same_mapping(m, y)
    assert load_mapping(tmp_path / "toy.yaml", center="cog").center == "cog"  # an explicit centre overrides
    again = load_mapping(write_map(y, tmp_path / "again.map"), aa, cg)
    assert same_mapping(m, again)
    with pytest.raises(InputError, match="exists"):
        write_yaml(m, tmp_path / "toy.yaml")
    write_yaml(m, tmp_path / "toy.yaml", force=True)


def test_sps_map_yaml_round_trip(sps_system, tmp_path):
    aa, cg = sps_system
    for name, partial in (("PS1.map", False), ("PS1_cg_fritz.map", True)):
        m = load_mapping(Path(aa.source).parent / name, aa, cg, partial=partial)
        y = load_mapping(write_yaml(m, tmp_path / f"{name}.yaml"), partial=partial)
        assert same_mapping(m, y)


@pytest.mark.parametrize("edit, line, message", [
    (("home: 1", "home: 2"), 11, "home bead 2 is not one of its beads"),
    (("mult: 3", "mult: 0"), 7, "beads.1.mult: Input should be greater than or equal to 1"),
    (("center: com", "center: middle"), 4, "center"),
    (("n_atoms: 5", "n_atoms: 4"), 15, "atom 5 but n_atoms is 4"),
    (("version: 1", "version: 2"), 1, "version"),
])
def test_yaml_errors_name_the_line(toy, tmp_path, edit, line, message):
    aa, cg, path = toy
    text = write_yaml(load_mapping(path, aa, cg), tmp_path / "toy.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(*edit, 1))
    with pytest.raises(InputError) as err:
        load_mapping(bad)
    assert message in str(err.value) and err.value.line == line, (str(err.value), text)


def test_map_cannot_say_a_light_home_bead(toy, tmp_path):
    aa, cg, path = toy
    m = load_mapping(path, aa, cg)
    m.home_bead[2] = 1
    m.weights[m.membership.tolist().index([2, 1])] = 0.25
    with pytest.raises(ValueError, match="atom 3: home bead 2 has a smaller weight"):
        write_map(m, tmp_path / "x.map")
    assert same_mapping(m, load_mapping(write_yaml(m, tmp_path / "x.yaml")))


# ---------------------------------------------------------------------------- positions


def sheared_box() -> torch.Tensor:
    """A strongly sheared triclinic box (37 degrees between a and b, as in the sPS frames)."""
    return torch.tensor([[3.0, 0.0, 0.0], [2.4, 1.8, 0.0], [-1.3, 0.9, 2.2]])


def test_minimum_image_matches_brute_force_in_sheared_box():
    torch.manual_seed(0)
    box = sheared_box()
    d = (torch.rand(1, 4000, 3) - 0.5) @ box * 3.0  # [1, m, 3]
    ours = minimum_image(d, box.unsqueeze(0))
    grid = torch.cartesian_prod(*[torch.arange(-4.0, 5.0)] * 3) @ box  # [729, 3]
    brute = (d.unsqueeze(2) + grid).norm(dim=-1).amin(-1)  # [1, m]
    assert torch.allclose(ours.norm(dim=-1), brute, atol=1e-5)
    rounded = d - torch.round(d @ torch.linalg.inv(box)) @ box  # fractional rounding alone
    assert (rounded.norm(dim=-1) > brute + 1e-3).any()  # is not enough in this box


def test_map_positions_com_cog_and_pbc(toy):
    aa, cg, path = toy
    torch.manual_seed(1)
    box = sheared_box()
    whole = torch.rand(3, 10, 3) * 0.4 + torch.tensor([2.8, 0.0, -0.1])  # [F, n, 3], across box faces
    frac = whole @ torch.linalg.inv(box)
    wrapped = (frac - torch.floor(frac)) @ box  # every atom wrapped on its own
    assert (wrapped - whole).abs().max() > 1.0
    boxes = box.expand(3, 3, 3)
    file_weights = torch.tensor([[1.0, 1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 1.0, 1.0]])  # [bead, atom]
    for center, scale in (("com", aa.masses[:5].float()), ("cog", torch.ones(5))):
        c = file_weights * scale
        c = c / c.sum(1, keepdim=True)  # [2, 5]
        expected = torch.einsum("ba,fmak->fmbk", c, whole.view(3, 2, 5, 3)).reshape(3, 4, 3)
        beads = expand_mapping(load_mapping(path, aa, cg, center=center), aa, cg).map_positions(wrapped, boxes)
        assert minimum_image(beads - expected, boxes).abs().max() < 1e-5
    single = expand_mapping(load_mapping(path, aa, cg), aa, cg).map_positions(wrapped[0], box)
    assert single.shape == (4, 3)


def test_map_positions_is_differentiable(toy):
    aa, cg, path = toy
    sm = expand_mapping(load_mapping(path, aa, cg), aa, cg)
    x = (torch.rand(2, 10, 3) * 2).requires_grad_()
    sm.map_positions(x, sheared_box().expand(2, 3, 3))[..., 0].sum().backward()
    # d(sum of bead x)/d(atom x) = sum of the atom's coefficients
    per_atom = torch.zeros(10, dtype=torch.float64).index_add_(0, sm.membership[:, 0], sm.coef)
    assert torch.allclose(x.grad[0, :, 0].double(), per_atom, atol=1e-6)
    assert torch.allclose(per_atom.view(2, 5).sum(1), torch.tensor([2.0, 2.0], dtype=torch.float64))


# ---------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def sps_system(sps: Path):
    aa = read_topology(sps / "topol.top")
    cg = read_topology(sps / "PS1_cg.itp", require_parameters=False, n_molecules=36)
    return aa, cg


@pytest.fixture(scope="module")
def sps_fritz(sps, sps_system):
    aa, cg = sps_system
    return expand_mapping(load_mapping(sps / "PS1_cg_fritz.map", aa, cg, partial=True), aa, cg)


def max_deviation(mapping, aa_frames, cg_frames) -> float:
    beads = mapping.map_positions(aa_frames.positions, aa_frames.boxes)
    return minimum_image(beads - cg_frames.positions, cg_frames.boxes).abs().max().item()


def test_sps_fritz_reproduces_training_frames(sps, sps_fritz):
    aa, cg = read_frames(sps / "train_t568" / "aa"), read_frames(sps / "train_t568" / "cg")
    assert len(aa) == len(cg) == 13 and aa.labels == cg.labels
    assert max_deviation(sps_fritz, aa, cg) <= XTC_PRECISION


def test_sps_fritz_reproduces_test_frames(sps, sps_fritz):
    t = sps / "test_t568"
    aa, cg = read_frames(t / "aa.xtc", t / "aa.gro"), read_frames(t / "cg.xtc", t / "cg.gro")
    assert len(aa) == len(cg) == 71
    assert max_deviation(sps_fritz, aa, cg) <= XTC_PRECISION


def test_sps_bead_order(sps, sps_system):
    """Bead k is the same bead in the CG frames, the map and the CG itp; only the names differ."""
    aa, cg = sps_system
    m = load_mapping(sps / "PS1.map", aa, cg)
    frame_names = read_frames(sps / "test_t568" / "cg.gro").names[:20]
    assert frame_names[:4] == ["B1", "S1", "B2", "S2"]  # frames: B = backbone, S = phenyl
    assert m.bead_labels[:2] == ["BB", "SC"] and m.bead_names[:4] == ["A1", "B1", "A2", "B2"]  # itp: A = backbone
    backbone = [k for k in range(20) if m.bead_labels[k] == "BB"]
    assert backbone == list(range(0, 20, 2))
    assert all(frame_names[k][0] == "B" and m.bead_types[k][0] == "A" for k in backbone)
    assert m.is_complete and m.mult.tolist()[:4] == [4, 4, 2, 2] and m.align.tolist()[:3] == [2, 0, 0]


def test_sps_dbm_map_does_not_reproduce_frames(sps, sps_system):
    aa_top, cg_top = sps_system
    sm = expand_mapping(load_mapping(sps / "PS1.map", aa_top, cg_top), aa_top, cg_top)
    aa, cg = read_frames(sps / "train_t568" / "aa" / "90.gro"), read_frames(sps / "train_t568" / "cg" / "90.gro")
    assert max_deviation(sm, aa, cg) > 0.05


def small_liquid(shared_data: Path, name: str, molecule: str, count: int):
    folder = shared_data / name
    aa = read_topology(folder / f"{molecule}.itp", require_parameters=False, n_molecules=count)
    cg = read_topology(folder / f"{molecule}_cg.itp", require_parameters=False, n_molecules=count)
    return folder, aa, cg, read_frames(folder / "aa"), read_frames(folder / "cg")


@pytest.mark.parametrize("name, molecule, count, frames", [("octane", "L49C", 215, 10), ("cumene", "G065", 265, 8)])
def test_shipped_mappings_reproduce_small_liquids(shared_data, name, molecule, count, frames):
    folder, aa, cg, aa_frames, cg_frames = small_liquid(shared_data, name, molecule, count)
    assert len(aa_frames) == len(cg_frames) == frames and aa_frames.labels == cg_frames.labels
    shipped = load_mapping(f"{molecule}_cg.map", aa, cg, partial=True)  # found by name in gdbm/resources
    assert max_deviation(expand_mapping(shipped, aa, cg), aa_frames, cg_frames) <= 0.0006  # .gro rounding
    dbm = load_mapping(folder / f"{molecule}.map", aa, cg)  # one bead per atom: not the frames' mapping
    assert max_deviation(expand_mapping(dbm, aa, cg), aa_frames, cg_frames) > 0.05


def test_octane_first_bead_is_the_terminal_carbon(shared_data):
    aa = read_frames(shared_data / "octane" / "aa" / "350.gro")
    cg = read_frames(shared_data / "octane" / "cg" / "350.gro")
    assert aa.names[1] == "C8" and torch.equal(aa.positions[0, 1], cg.positions[0, 0])
    assert math.isclose(float(aa.positions[0, 1, 0]), 0.709, abs_tol=1e-6)


def test_the_ipso_map_homes_each_ipso_on_its_ch_bead(sps: Path, tmp_path: Path):
    """scripts/sps_ipso_map.py moves exactly the ten ipso carbons of a chain, each onto the bead of the backbone
    carbon it is bonded to; every other atom keeps DBM's home bead."""
    from script_loader import load_script

    from gdbm.topology.system import load_mapped_system

    script = load_script("sps_ipso_map")
    (tmp_path / "ipso.map").write_text("\n".join(script.ipso_on_backbone((sps / "PS1.map").read_text().splitlines())))
    dbm = load_mapped_system(sps / "topol.top", sps / "PS1.map", None, partial=False)
    moved = load_mapped_system(sps / "topol.top", tmp_path / "ipso.map", None, partial=False)
    changed = torch.nonzero(dbm.mapping.home_bead != moved.mapping.home_bead).squeeze(1)
    types = list(dbm.aa.types)
    assert len(changed) == 10 * dbm.aa.n_molecules and all(types[i] == "C_AR" for i in changed.tolist())
    bonds = torch.cat([t.index for k, t in dbm.aa.terms.items() if TERM_KINDS[k].category == "bond"])  # [b, 2]
    for i in changed.tolist()[:20]:
        partners = bonds[(bonds == i).any(1)].flatten().tolist()
        ch = [j for j in partners if j != i and types[j] == "C"]
        assert len(ch) == 1 and moved.mapping.home_bead[i] == dbm.mapping.home_bead[ch[0]]
