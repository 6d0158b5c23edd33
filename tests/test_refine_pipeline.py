"""``gdbm backmap --refine``: backmapping and refinement in one call, the recipe from the checkpoint,
the raw output kept beside, and a rerun that continues instead of starting over (issue 21)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.sampling.backmapper import SamplerConfig
from gdbm.sampling.jobs import BackmapJob
from gdbm.sampling.pipeline import backmap_refined, raw_output_path, refinement_for, thermal_settings
from gdbm.utils.errors import InputError


@pytest.fixture(scope="module")
def trained(two_chains: Path) -> Path:
    """A one-step model of the two chains, its config recording a refine recipe at 568 K."""
    config = two_chains / "refine.yaml"
    config.write_text((two_chains / "tiny.yaml").read_text()
                      + "refine: {temperature: 568, steps: 3, stages: ['4', '4,,2e6,0.001'], minimize: 5}\n")
    run = two_chains / "refine_run"
    assert main(["fit", "--config", str(config), "-o", str(run), "--steps", "1", "--force"]) == 0
    return run / "checkpoint.pt"


@pytest.fixture
def job(trained: Path, two_chains: Path, tmp_path: Path) -> BackmapJob:
    """Frames 1:3 of three CG frames (the first two shifted copies of the two chains' frame)."""
    one = read_frames(two_chains / "cg.gro")
    shifts = 0.05 * torch.arange(3, dtype=torch.float32).view(-1, 1, 1)
    write_frames(tmp_path / "cg3.xtc", Frames(one.positions + shifts, one.boxes.repeat(3, 1, 1),
                                              ["a", "b", "c"], one.names, one.resnames, one.resids))
    shutil.copy(two_chains / "cg.gro", tmp_path / "cg.gro")
    return BackmapJob(str(trained), str(two_chains / "topol.top"), str(two_chains / "PS1.map"),
                      str(tmp_path / "cg3.xtc"), SamplerConfig(n_gibbs=0, candidates=2, seed=5),
                      cg_struct=str(tmp_path / "cg.gro"), frames="1:3")


def test_the_recipe_comes_from_the_checkpoint_then_a_file_then_flags(trained: Path, tmp_path: Path):
    thermal = refinement_for(trained, "thermal")
    assert thermal.recipe.temperature == 568 and thermal.recipe.steps == 3
    stages = thermal_settings(thermal).stages
    assert [(s.steps, s.temperature, s.restraint, s.timestep_ps) for s in stages] == \
        [(4, 568, 5e4, 0.002), (4, 568, 2e6, 0.001)]  # empty fields take the recipe's defaults
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("temperature: 300\ncoulomb: none\n")
    given = refinement_for(trained, "thermal", recipe_file=recipe, overrides={"steps": 7, "temperature": None})
    assert (given.recipe.temperature, given.recipe.coulomb, given.recipe.steps) == (300, "none", 7)
    assert thermal_settings(given).coulomb is False
    recipe.write_text("temprature: 300\n")
    with pytest.raises(InputError, match="recipe.yaml") as err:
        refinement_for(trained, "thermal", recipe_file=recipe)
    assert "temprature" in str(err.value)
    with pytest.raises(InputError, match="expected one of none, minimize, thermal"):
        refinement_for(trained, "anneal")


def test_thermal_without_a_temperature_is_refused_before_any_work(two_chains: Path, tmp_path: Path):
    run = tmp_path / "run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1"]) == 0
    with pytest.raises(InputError, match="--refine thermal needs the temperature"):
        refinement_for(run / "checkpoint.pt", "thermal")
    assert refinement_for(run / "checkpoint.pt", "minimize").recipe.steps == 20  # the default recipe


def test_one_call_backmaps_refines_keeps_the_raw_frames_and_continues(job: BackmapJob, tmp_path: Path,
                                                                      monkeypatch):
    out = tmp_path / "out.xtc"
    refinement = refinement_for(job.checkpoint, "minimize")  # (a one-step model's frames are too wild for MD)
    report = backmap_refined(job, out, refinement)
    assert report.failed == {} and report.frames_written == 2
    structure = Path(job.topology).parent / "aa.gro"
    raw, refined = read_frames(tmp_path / "out.raw.xtc", structure), read_frames(out, structure)
    assert len(raw) == len(refined) == 2 and bool(torch.isfinite(refined.positions).all())
    assert float((raw.positions - refined.positions).abs().max()) > 0.01  # the refinement moved atoms

    def forbidden(*args, **kwargs):
        raise AssertionError("the finished backmapping ran again")

    out.unlink()  # as if the refinement had been interrupted: the raw frames are reused, not remade
    monkeypatch.setattr("gdbm.sampling.pipeline.backmap_trajectory", forbidden)
    assert backmap_refined(job, out, refinement).frames_written == 2 and out.is_file()
    with pytest.raises(InputError, match="exists; pass --force"):
        backmap_refined(job, out, refinement)


def test_refine_refuses_several_samples_per_frame(job: BackmapJob, tmp_path: Path):
    from dataclasses import replace

    with pytest.raises(InputError, match="--samples 1"):
        backmap_refined(replace(job, samples=2), tmp_path / "o.xtc", refinement_for(job.checkpoint, "minimize"))
    assert not list(tmp_path.glob("o*"))


def test_the_raw_file_of_a_gro_output_is_an_xtc():
    assert raw_output_path("x/frame.gro") == Path("x/frame.raw.xtc")
    assert raw_output_path("x/frames.pdb") == Path("x/frames.raw.pdb")


def test_the_command_line_runs_it_in_one_command(job: BackmapJob, tmp_path: Path, capsys):
    out = tmp_path / "cli.xtc"
    argv = ["backmap", "--top", job.topology, "--map", job.mapping, "--cg", job.cg, "--cg-struct", job.cg_struct,
            "--checkpoint", job.checkpoint, "--frames", "1:3", "--gibbs", "0", "--candidates", "2", "-o", str(out)]
    assert main([*argv, "--temperature", "300"]) == 2
    assert "--temperature belong to --refine" in capsys.readouterr().err
    assert main([*argv, "--refine", "minimize"]) == 0
    assert "wrote 2 frames to" in capsys.readouterr().out
    assert out.is_file() and (tmp_path / "cli.raw.xtc").is_file() and (tmp_path / "cli.raw.gro").is_file()
