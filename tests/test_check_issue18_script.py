"""scripts/check_issue18.py: issue 18's 17 items counted from a gdbm eval run's sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("check_issue18")


def _set(value: float, **extra) -> dict:
    base = {k: value for k in ["angle/C-C-C", "angle/C-C-C_AR", "angle/C-C-H", "angle/C-C_AR-C_AR", "angle/C_AR-C-H",
                               "angle/C_AR-C_AR-C_AR", "angle/C_AR-C_AR-H_AR", "angle/H-C-H", "proper/C-C-C-C",
                               "all_angles", "all_dihedrals", "lj_jsd", "rdf_mae_carbon"]}
    base.update(lj_per_mol_mean=-211.0, lj_per_mol_std=29.0, cg_rmsd=0.0002, clash_pairs_per_frame=0.0)
    base["frac_bonds_over_0.2nm"] = 0.0
    base.update(extra)
    return base


def test_items_at_or_below_dbm_and_the_absolute_ones(script):
    sets = {"reference": _set(0.0), "published_dbm": _set(0.01), "good": _set(0.01),
            "close": _set(0.005, **{"angle/C-C-C_AR": 0.02, "lj_per_mol_mean": -250.0, "frac_bonds_over_0.2nm": 1e-6})}
    assert sum(ok for _, ok in script.items(sets, "good")) == 17  # a tie with DBM counts
    met = [ok for _, ok in script.items(sets, "close")]
    assert len(met) == 17 and sum(met) == 14  # junction worse, LJ mean 39 from the reference's (std 29), a long bond
    line, count = script.row(sets, "close")
    assert count == 14 and line.endswith("| 14 of 17 |") and "**0.0050**" in line and "| 0.0200 |" in line


def test_exit_code_says_whether_every_set_meets_all(script, tmp_path: Path, monkeypatch, capsys):
    sets = {"reference": _set(0.0), "published_dbm": _set(0.01), "good": _set(0.01), "bad": _set(0.02)}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"sets": sets}))
    monkeypatch.setattr("sys.argv", ["check_issue18.py", str(path), "good"])
    assert script.main() == 0
    monkeypatch.setattr("sys.argv", ["check_issue18.py", str(path), "good", "bad"])
    assert script.main() == 1
    assert "| bad |" in capsys.readouterr().out
