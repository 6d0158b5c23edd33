"""The GROMACS topology reader: the real sPS topology exactly, every supported form, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gdbm.utils.errors import InputError
from gdbm.topology.gromacs import read_topology

GROMOS_PARAMS = """
[ defaults ]
  1  1  no  1.0  1.0
[ atomtypes ]
; GROMOS-like C6/C12 (comb-rule 1), values for the test only
  C    6  12.011  0.000  A  0.0023406  4.937284e-06
  HC   1   1.008  0.000  A  8.464e-05  1.5129e-08
  CAro 6  12.011  0.000  A  0.0023406  4.937284e-06
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def sps_top(sps: Path):
    return read_topology(sps / "topol.top")


def test_sps_topology_counts(sps_top):
    top = sps_top
    assert top.n_atoms == 5832 and top.n_molecules == 36
    assert all(b.n_atoms == 162 and b.name == "PS1" for b in top.molecules)
    per_chain = {k: len(v) // 36 for k, v in top.terms.items()}
    # 161 tree bonds + 10 ring closures; 300 angles; 19 backbone propers; 12 impropers per phenyl
    assert per_chain == {"bond_harmonic": 171, "angle_harmonic": 300, "proper_periodic": 19, "improper_harmonic": 120}
    assert top.connectivity.shape == (36 * 171, 2)
    # nrexcl 2 -> 171 bonds + 300 angle pairs, plus 280 explicit exclusions beyond two bonds
    assert top.exclusions.shape == (36 * 751, 2)
    assert bool((top.exclusions[:, 0] < top.exclusions[:, 1]).all())
    assert top.elements.count("C") == 36 * 80 and top.elements.count("H") == 36 * 82
    assert top.molecule[161] == 0 and top.molecule[162] == 1


def test_sps_parameters_from_type_tables(sps_top):
    top = sps_top
    bonds = top.terms["bond_harmonic"]
    first = {tuple(i): (float(b0), float(k)) for i, b0, k in zip(bonds.index[:171].tolist(), bonds.params["b0"], bonds.params["k"])}
    assert first[(1, 4)] == (0.153, 10000.0)  # C2-C5, C-C from [ bondtypes ]
    assert first[(0, 1)] == (0.110, 10000.0)  # H1-C2
    angles = top.terms["angle_harmonic"]
    assert math.isclose(float(angles.params["theta0"].max()), 120.0 * math.pi / 180.0)
    assert set(angles.params["k"].tolist()) == {306.4, 366.9, 482.3, 376.6, 418.8}
    # combination rule 2: sigma arithmetic, epsilon geometric
    lj = top.lj
    c, h = lj.type_names.index("C"), lj.type_names.index("H_AR")
    sigma, eps = 0.5 * (0.3207 + 0.2420), math.sqrt(0.3519 * 0.1260)
    assert math.isclose(float(lj.c6[c, h]), 4 * eps * sigma**6, rel_tol=1e-12)
    assert math.isclose(float(lj.c12[c, h]), 4 * eps * sigma**12, rel_tol=1e-12)
    assert top.charges[6].item() == -0.115 and top.masses[1].item() == 12.011


def test_sps_exclusions_include_explicit_ones(sps_top):
    keys = set(map(tuple, sps_top.exclusions[:751].tolist()))
    assert (5, 9) in keys and (5, 10) in keys  # "6 10", "6 11" in [ exclusions ]
    assert (0, 4) in keys  # H1-C5: two bonds apart
    assert (0, 5) not in keys  # H1-C6: three bonds apart, nrexcl 2, not listed


def test_structure_only_reads_cg_itp(sps: Path):
    cg = read_topology(sps / "PS1_cg.itp", require_parameters=False, n_molecules=36)
    assert cg.n_atoms == 720 and cg.lj is None
    # func 8 (tabulated) bonds are chemical bonds; func 9 (1-5 A-A) are not
    assert cg.connectivity.shape == (36 * 19, 2)
    assert cg.types[:4] == ["A1r", "B1u", "A2r", "B2d"]


def test_missing_atomtypes_named(shared_data: Path):
    with pytest.raises(InputError) as err:
        read_topology(shared_data / "octane" / "L49C.itp", n_molecules=215)
    message = str(err.value)
    assert "L49C.itp" in message and "C, HC" in message and "--parameters" in message


def test_supplementary_parameter_file(tmp_path: Path, shared_data: Path):
    params = write(tmp_path, "gromos.itp", GROMOS_PARAMS)
    top = read_topology(shared_data / "cumene" / "G065.itp", parameters=params, n_molecules=2)
    assert top.n_atoms == 42
    assert {"bond_g96", "angle_g96", "proper_periodic", "improper_harmonic"} <= set(top.terms)
    b = top.terms["bond_g96"]
    assert len(b) == 2 * 21 and float(b.params["k"].max()) > 1e6
    # comb-rule 1: C6/C12 geometric means of the type values
    lj = top.lj
    c, hc = lj.type_names.index("C"), lj.type_names.index("HC")
    assert math.isclose(float(lj.c6[c, hc]), math.sqrt(0.0023406 * 8.464e-05))
    assert top.elements[:3] == ["H", "C", "C"]


def test_preprocessor_and_lookups(tmp_path: Path):
    write(tmp_path, "ff.itp", """
[ defaults ]
1 3 yes 0.5 0.8333
[ atomtypes ]
CT  6 12.01 0.0 A 0.35 0.276
HC  1  1.008 0.0 A 0.25 0.125
[ bondtypes ]
CT HC 1 0.109 284512.0
#ifdef FLEXIBLE
CT CT 1 0.1529 224262.4
#else
CT CT 1 0.1500 224262.4
#endif
[ angletypes ]
HC CT CT 1 110.7 313.8
[ dihedraltypes ]
X CT CT X 9 0.0 0.6276 3
X CT CT X 9 180.0 1.0 2
HC CT CT HC 3 0.6276 1.8828 0.0 -2.5104 0.0 0.0
""")
    top = write(tmp_path, "mol.top", """
#define FLEXIBLE
#define KB_CUSTOM 0.2 1000.0
#include "ff.itp"
[ moleculetype ]
ETH 3
[ atoms ]
1 CT 1 ETH C1 1 -0.18
2 CT 1 ETH C2 1 -0.18
3 HC 1 ETH H1 1  0.18
4 HC 1 ETH H2 1  0.18
[ bonds ]
1 2 1
1 3 1
2 4 1 KB_CUSTOM
[ pairs ]
3 4 1
[ angles ]
3 1 2 1
[ dihedrals ]
3 1 2 4 9
3 1 2 4 3
[ system ]
test
[ molecules ]
ETH 2
""")
    t = read_topology(top)
    bonds = t.terms["bond_harmonic"]
    assert bonds.params["b0"][:3].tolist() == [0.1529, 0.109, 0.2]  # #ifdef taken, macro substituted
    periodic = t.terms["proper_periodic"]
    assert len(periodic) == 4 and periodic.params["n"][:2].tolist() == [3.0, 2.0]  # both func-9 lines
    assert len(t.terms["proper_rb"]) == 2
    pair = t.terms["pair_lj"]
    sigma, eps = math.sqrt(0.25 * 0.25), 0.125
    assert math.isclose(float(pair.params["c6"][0]), 0.5 * 4 * eps * sigma**6)  # gen-pairs x fudgeLJ
    assert math.isclose(float(pair.params["qq"][0]), 0.8333 * 0.18 * 0.18)
    assert t.exclusions[:, 0].tolist()[:6] == [0, 0, 0, 1, 1, 2]  # nrexcl 3 covers the molecule
    assert pair.index.tolist() == [[2, 3], [6, 7]]


@pytest.mark.parametrize("line, expected", [
    ("1 2 x", "expected an integer bond func"),
    ("1 99 1", "atom 99 is out of range"),
    ("1 2 7", "bond func 7 is not supported"),
    ("1", "expected ai aj func"),
])
def test_malformed_itp_line_names_file_and_line(tmp_path: Path, line: str, expected: str):
    path = write(tmp_path, "bad.itp", f"""[ defaults ]
1 2 no 1 1
[ atomtypes ]
C 12.0 0.0 A 0.3 0.3
[ moleculetype ]
M 3
[ atoms ]
1 C 1 M C1 1 0.0
2 C 1 M C2 1 0.0
[ bonds ]
{line}
""")
    with pytest.raises(InputError) as err:
        read_topology(path)
    assert "bad.itp:11: " in str(err.value) and expected in str(err.value)


def test_unknown_atom_type_and_missing_include(tmp_path: Path):
    path = write(tmp_path, "m.itp", """[ defaults ]
1 2 no 1 1
[ atomtypes ]
C 12.0 0.0 A 0.3 0.3
[ moleculetype ]
M 3
[ atoms ]
1 C 1 M C1 1 0.0
2 Q 1 M Q2 1 0.0 1.0
""")
    with pytest.raises(InputError, match="atom types without parameters: Q"):
        read_topology(path)
    inc = write(tmp_path, "inc.top", '#include "nowhere.itp"\n')
    with pytest.raises(InputError, match=r"inc.top:1: #include \"nowhere.itp\": file not found"):
        read_topology(inc)


def test_terms_are_global_indices(sps_top):
    bonds = sps_top.terms["bond_harmonic"].index
    last = bonds[-171:] - 35 * 162
    assert torch.equal(last, bonds[:171])
