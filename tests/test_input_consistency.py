"""Inputs that parse but do not fit each other (issue 20): atoms named otherwise than the topology,
CG beads out of their topology's order, negative boxes, bad nrexcl and weights, and a fit whose
data is missing. Each ends in one InputError (one line, exit 2 from the CLI) and leaves no output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fuzz_helpers import one_line_error
from gdbm.cli.main import main
from gdbm.data.trajectory import check_bonded_distances, check_particle_count, read_frames
from gdbm.topology.gromacs import read_topology
from gdbm.topology.mapfiles import load_mapping
from gdbm.topology.system import load_mapped_system
from gdbm.utils.errors import InputError

CUMENE = Path(__file__).resolve().parents[1] / "gdbm" / "resources" / "examples" / "cumene"


def _gro_with_name(tmp_path: Path, atom: int, name: str) -> Path:
    """The example's aa.gro with atom ``atom`` (1-based) renamed (columns 11-15)."""
    lines = (CUMENE / "aa.gro").read_text().splitlines(keepends=True)
    line = lines[atom + 1]
    lines[atom + 1] = line[:10] + f"{name:>5}" + line[15:]
    path = tmp_path / "renamed.gro"
    path.write_text("".join(lines))
    return path


def test_an_atom_named_otherwise_than_the_topology_is_refused(tmp_path, capsys):
    gro = _gro_with_name(tmp_path, 5, "XX")
    out = tmp_path / "e.json"
    one_line_error(["energy", "--top", str(CUMENE / "topol.top"), "--aa", str(gro), "-o", str(out)], capsys,
                     "renamed.gro", "particle 5 is named 'XX'", "1 of 1344 names differ")
    assert not out.exists()


def test_names_cut_to_a_file_column_width_pass():
    top = read_topology(CUMENE / "topol.top")
    frames = read_frames(CUMENE / "aa.gro")
    check_particle_count(frames, top.n_atoms, "the topology", "aa.gro", names=top.names)
    long_names = [name + "XYZ" if len(name) >= 4 else name for name in top.names]  # names a .gro cut to 5 columns
    frames.names = [name[:5] for name in long_names]
    check_particle_count(frames, top.n_atoms, "the topology", "aa.gro", names=long_names)


def test_cg_beads_out_of_order_are_refused_and_the_example_passes():
    system = load_mapped_system(CUMENE / "topol.top", CUMENE / "CUM.yaml", CUMENE / "CUM_cg.itp")
    frames = read_frames(CUMENE / "cg.xtc", CUMENE / "cg.gro")
    check_bonded_distances(frames, system.mapping.cg_bonds, "the mapping", "cg.xtc")
    shuffled = torch.randperm(frames.n_particles, generator=torch.Generator().manual_seed(0))
    frames.positions = frames.positions[:, shuffled]
    with pytest.raises(InputError, match="bonded in the mapping, are .* nm apart in frame cg.xtc#0"):
        check_bonded_distances(frames, system.mapping.cg_bonds, "the mapping", "cg.xtc")


def test_published_sps_cg_frames_pass_though_their_bead_names_differ_from_the_itp(sps):
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map", sps / "PS1_cg.itp")
    frames = read_frames(sps / "test_t568" / "cg.xtc", sps / "test_t568" / "cg.gro")
    assert frames.names[0] != system.cg.names[0]  # B1 in the file, A1 in the .itp: names are not compared
    check_bonded_distances(frames, system.mapping.cg_bonds, "the mapping", "cg.xtc")


@pytest.mark.parametrize("box", ["  -2.48900  2.48900  2.48900", "   2.48900  2.48900 -2.48900"])
def test_a_negative_box_is_refused(tmp_path, box):
    lines = (CUMENE / "aa.gro").read_text().splitlines()
    lines[-1] = box
    gro = tmp_path / "neg.gro"
    gro.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="has a negative length on its diagonal"):
        read_frames(gro)


def test_negative_nrexcl_is_refused_by_line(tmp_path):
    text = (CUMENE / "topol.top").read_text()
    assert "CUM          3" in text
    top = tmp_path / "topol.top"
    top.write_text(text.replace("CUM          3", "CUM          -3", 1))
    with pytest.raises(InputError, match="nrexcl -3; expected an integer >= 0") as err:
        read_topology(top)
    assert err.value.line == 31


@pytest.mark.parametrize("weight", [".nan", ".inf", "-0.5"])
def test_a_yaml_weight_that_is_not_a_finite_non_negative_number_is_refused(tmp_path, weight):
    text = (CUMENE / "CUM.yaml").read_text()
    bad = tmp_path / "CUM.yaml"
    bad.write_text(text.replace("beads: {1: 0.5, 2: 0.5}}", f"beads: {{1: {weight}, 2: 0.5}}}}", 1))
    cg = read_topology(CUMENE / "CUM_cg.itp", require_parameters=False)
    with pytest.raises(InputError) as err:
        load_mapping(bad, cg)
    assert err.value.line == 14 and ("finite number >= 0" in str(err.value) or "greater than" in str(err.value))


def _fit_config(two_chains: Path, path: Path, aa: Path) -> Path:
    """The tiny fit config of ``two_chains`` with absolute paths, its AA frames from ``aa``."""
    text = (two_chains / "tiny.yaml").read_text()
    for name in ("topol.top", "PS1.map", "PS1_cg_fritz.map", "cg.gro"):
        text = text.replace(f": {name}", f": {two_chains / name}")
    path.write_text(text.replace(": aa.gro", f": {aa}"))
    return path


def test_fit_with_a_missing_data_file_leaves_no_run_folder(two_chains, tmp_path, capsys):
    config = _fit_config(two_chains, tmp_path / "missing.yaml", tmp_path / "gone.gro")
    run = tmp_path / "run"
    one_line_error(["fit", "--config", str(config), "-o", str(run)], capsys, "gone.gro")
    assert not run.exists()


def test_fit_force_with_a_bad_config_keeps_the_old_run(two_chains, tmp_path, capsys):
    run = tmp_path / "run"
    good = _fit_config(two_chains, tmp_path / "good.yaml", two_chains / "aa.gro")
    assert main(["fit", "--config", str(good), "-o", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    bad = _fit_config(two_chains, tmp_path / "bad.yaml", tmp_path / "gone.gro")
    capsys.readouterr()
    one_line_error(["fit", "--config", str(bad), "-o", str(run), "--force"], capsys, "gone.gro")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
