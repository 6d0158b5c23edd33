"""Morphing (thesis Ch. 7) on two sPS chains with a one-step model: what each scheme keeps of its input X,
``gdbm backmap --init`` end to end, and the errors of bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from gdbm.sampling.jobs import backmap_trajectory
from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.data.coarse import coarse_grain
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.sampling.morph import morph, morph_job
from gdbm.sampling.backmapper import SamplerConfig

PDB = 2e-4  # nm: a .pdb stores 0.001 Angstrom = 1e-4 nm per coordinate; with margin


@pytest.fixture(scope="module")
def setup(two_chains: Path, sps: Path) -> dict:
    """A one-step model of the two chains, the coarse mapping of the published CG frames, and X."""
    run = two_chains / "morph_run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1", "--force"]) == 0
    shutil.copy(sps / "PS1_cg_fritz.map", two_chains / "PS1_cg_fritz.map")
    return dict(checkpoint=str(run / "checkpoint.pt"), topology=str(two_chains / "topol.top"),
                mapping=str(two_chains / "PS1.map"), coarse=str(two_chains / "PS1_cg_fritz.map"),
                x=str(two_chains / "aa.gro"))


def job(setup: dict, scheme: str, x: str | None = None, **sampler):
    config = SamplerConfig(**{"n_gibbs": 1, "candidates": 2, "seed": 7, **sampler})
    return morph_job(x or setup["x"], setup["coarse"], scheme, checkpoint=setup["checkpoint"],
                     topology=setup["topology"], mapping=setup["mapping"], sampler=config)


def test_backmap_init_without_sweeps_writes_the_init_frames(setup: dict, two_chains: Path, tmp_path: Path):
    out = tmp_path / "same.pdb"
    assert main(["backmap", "--checkpoint", setup["checkpoint"], "--top", setup["topology"], "--map", setup["mapping"],
                 "--cg", str(two_chains / "cg.gro"), "--init", setup["x"], "--gibbs", "0", "-o", str(out)]) == 0
    x = read_frames(setup["x"]).positions
    assert float((read_frames(out).positions - x).abs().max()) < PDB
    refined = tmp_path / "refined.pdb"
    assert main(["backmap", "--checkpoint", setup["checkpoint"], "--top", setup["topology"], "--map", setup["mapping"],
                 "--cg", str(two_chains / "cg.gro"), "--init", setup["x"], "--gibbs", "1", "--candidates", "2",
                 "-o", str(refined)]) == 0
    moved = (read_frames(refined).positions - x).norm(dim=-1)
    assert float(moved.min()) > 0  # one sweep regenerates every atom


def test_scheme_b_without_sweeps_returns_x_and_the_command_refuses_it(setup: dict, tmp_path: Path, capsys):
    with pytest.raises(InputError, match="scheme B with 0 Gibbs sweeps"):
        job(setup, "B", n_gibbs=0)
    b1 = job(setup, "B")
    unchanged = type(b1)(**{**b1.__dict__, "sampler": SamplerConfig(n_gibbs=0)})  # the same job, no sweep
    backmap_trajectory(unchanged, tmp_path / "b0.pdb", progress=False)
    x = read_frames(setup["x"]).positions
    assert float((read_frames(tmp_path / "b0.pdb").positions - x).abs().max()) < PDB
    code = main(["morph", "--checkpoint", setup["checkpoint"], "--top", setup["topology"], "--map", setup["mapping"],
                 "--cg-map", setup["coarse"], "--aa", setup["x"], "--scheme", "B", "--gibbs", "0",
                 "-o", str(tmp_path / "no.pdb")])
    assert code == 2 and "--gibbs >= 1" in capsys.readouterr().err and not (tmp_path / "no.pdb").exists()


def test_scheme_b_with_relaxation_keeps_the_cg_of_x(setup: dict, tmp_path: Path):
    """The sampler alone promises no CG consistency; its relaxation holds every bead of the coarse map on X's."""
    report = morph(job(setup, "B", relax_steps=3), tmp_path / "b.pdb", progress=False)
    system = job(setup, "B").coarse_system()
    x = read_frames(setup["x"])
    out = read_frames(tmp_path / "b.pdb")
    deviation = (coarse_grain(out, system).positions - coarse_grain(x, system).positions).norm(dim=-1)
    assert float(deviation.max()) < 1e-3
    assert report.displacement.aa_rmsd[0] > 0.01  # the atoms did move
    assert report.displacement.cg_rmsd[0] < 1e-3


def test_scheme_a_sees_only_the_cg_mapping_of_x(setup: dict, two_chains: Path, tmp_path: Path):
    x = read_frames(setup["x"])
    swapped = x.positions.clone()
    swapped[:, [16, 18]] = swapped[:, [18, 16]]  # the two hydrogens of a CH2 (same bead, mass and weight)
    other = two_chains / "aa_swapped.gro"
    write_frames(other, Frames(swapped, x.boxes, x.labels, x.names, x.resnames, x.resids), force=True)
    system = job(setup, "A").coarse_system()
    x2 = read_frames(other)
    assert not torch.equal(x2.positions, x.positions)
    assert torch.equal(coarse_grain(x2, system).positions, coarse_grain(x, system).positions)
    first = morph(job(setup, "A"), tmp_path / "a1.pdb", cg_output=tmp_path / "cg.pdb", progress=False)
    second = morph(job(setup, "A", x=str(other)), tmp_path / "a2.pdb", progress=False)
    assert torch.equal(read_frames(tmp_path / "a1.pdb").positions, read_frames(tmp_path / "a2.pdb").positions)
    assert first.backmap.frames_written == second.backmap.frames_written == 1
    cg = read_frames(tmp_path / "cg.pdb")  # the intermediate CG frames: X's mapping, named like the CG topology
    assert float((cg.positions - coarse_grain(x, system).positions).abs().max()) < PDB
    assert cg.names == list(system.cg.names)


def test_cli_morph_writes_the_output_and_says_how_far_it_moved(setup: dict, tmp_path: Path, capsys):
    out = tmp_path / "a.xtc"
    args = ["morph", "--checkpoint", setup["checkpoint"], "--top", setup["topology"], "--map", setup["mapping"],
            "--cg-map", setup["coarse"], "--aa", setup["x"], "--scheme", "A", "--gibbs", "0", "--candidates", "1",
            "--cg-out", str(tmp_path / "cg.gro"), "-o", str(out)]
    assert main(args) == 0
    assert "moved from the input: all-atom RMSD mean" in capsys.readouterr().out
    assert read_frames(out, setup["x"]).positions.shape == (1, 324, 3)
    assert main(args) == 2  # no overwrite without --force
    assert "exists; pass --force" in capsys.readouterr().err


def test_bad_input_names_the_file(setup: dict, two_chains: Path, tmp_path: Path, capsys):
    base = ["morph", "--checkpoint", setup["checkpoint"], "--top", setup["topology"], "--map", setup["mapping"],
            "--scheme", "A", "-o", str(tmp_path / "out.pdb")]
    cg = str(two_chains / "cg.gro")
    assert main(base + ["--cg-map", setup["coarse"], "--aa", cg]) == 2  # CG frames given as X
    err = capsys.readouterr().err
    assert cg in err and "40 particles per frame but the topology" in err and "324" in err
    assert main(base + ["--cg-map", setup["mapping"].replace("PS1.map", "missing.map"), "--aa", setup["x"]]) == 2
    assert "missing.map" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: an unknown scheme
        main(base[:-4] + ["--scheme", "C", "--cg-map", setup["coarse"], "--aa", setup["x"], "-o", "x.pdb"])
    assert not (tmp_path / "out.pdb").exists()
