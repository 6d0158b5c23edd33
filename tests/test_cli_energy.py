"""``gdbm energy`` end to end on one sPS frame: JSON shape, --force, table, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gdbm.cli.main import main

TERMS = ["bond", "angle", "proper", "improper", "lj", "coulomb", "total"]


@pytest.fixture(scope="module")
def inputs(sps: Path) -> list[str]:
    return ["--top", str(sps / "topol.top"), "--aa", str(sps / "train_t568" / "aa" / "90.gro")]


def test_json_output_and_force(inputs: list[str], tmp_path: Path, capsys):
    out = tmp_path / "energies.json"
    assert main(["energy", *inputs, "--cutoff", "1.0", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert list(data) == ["cutoff_nm", "frames"] and data["cutoff_nm"] == 1.0
    assert len(data["frames"]) == 1 and list(data["frames"][0]) == TERMS
    frame = data["frames"][0]
    assert frame["coulomb"] == 0.0  # default --coulomb none
    assert frame["lj"] == pytest.approx(-7416.6179, abs=1e-3)  # = OpenMM, see test_physics_openmm
    assert frame["total"] == pytest.approx(sum(frame[t] for t in TERMS[:-1]))
    assert [p.name for p in tmp_path.iterdir()] == ["energies.json"]  # no temp file left behind

    # an existing output is kept without --force
    out.write_text("keep me")
    capsys.readouterr()
    assert main(["energy", *inputs, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists; pass --force" in err and "Traceback" not in err
    assert out.read_text() == "keep me"
    assert main(["energy", *inputs, "--coulomb", "reaction_field", "--epsilon-rf", "2.5", "-o", str(out),
                 "--force"]) == 0
    frame = json.loads(out.read_text())["frames"][0]
    assert frame["coulomb"] < 0.0 and frame["lj"] == pytest.approx(-7416.6179, abs=1e-3)


def test_table_on_stdout(inputs: list[str], capsys):
    assert main(["energy", *inputs]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:8] == ["frame", *TERMS] and lines[1].startswith("90.gro")
    assert len(lines) == 2


def test_missing_file_is_a_one_line_error(sps: Path, tmp_path: Path, capsys):
    assert main(["energy", "--top", str(sps / "topol.top"), "--aa", str(tmp_path / "nope.gro")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.gro" in err and "no such file" in err


def test_atom_count_mismatch_is_a_one_line_error(sps: Path, shared_data: Path, capsys):
    octane = shared_data / "octane" / "aa"
    assert main(["energy", "--top", str(sps / "topol.top"), "--aa", str(octane)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "5590" in err and "5832" in err


def test_python_dash_m_exits_with_code_2_without_traceback(sps: Path, tmp_path: Path):
    proc = subprocess.run([sys.executable, "-m", "gdbm", "energy", "--top", str(tmp_path / "missing.top"),
                           "--aa", str(sps / "train_t568" / "aa" / "90.gro")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing.top" in proc.stderr and "Traceback" not in proc.stderr
