"""``gdbm study``: a tiny study trains, backmaps, evaluates, summarises, skips what is done and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gdbm.data import read_frames
from gdbm.data.frame_writer import write_frames
from gdbm.utils.distributed import Distributed
from gdbm.utils.errors import InputError
from gdbm.study import StudyRunner, load_study
from gdbm.training.trainer import Trainer, shard_draw

FIT = ("data: {}\n"
       "model:\n  voxel: {resolution: 4, channels: 4, noise_dim: 4, n_blocks: 1}\n"
       "training: {batch_size: 2, n_critic: 1, steps: 2, threads: 1, checkpoint_every: 1}\n")


@pytest.fixture()
def tiny_study(tmp_path: Path, two_chains: Path) -> Path:
    """Two trained arms (prior match / none) on the two-chain sPS slice, tested on two copies of its frame."""
    aa, cg = read_frames(two_chains / "aa.gro"), read_frames(two_chains / "cg.gro")
    write_frames(tmp_path / "aa2.pdb", aa.subset([0, 0]))
    write_frames(tmp_path / "cg2.pdb", cg.subset([0, 0]))
    (tmp_path / "fit.yaml").write_text(FIT)
    (tmp_path / "study.yaml").write_text(f"""
name: tiny
fit: fit.yaml
threads: 1
systems:
  slice:
    topology: {two_chains / 'topol.top'}
    mapping: {two_chains / 'PS1.map'}
    aa: aa2.pdb
    cg: cg2.pdb
    labels: {{temperature: 568}}
models:
  - name: match
    train: {{slice: 1}}
  - name: none
    train: {{slice: 1}}
    fit: {{prior: {{mode: none}}}}
  - name: given
    backmapped: {{both: aa2.pdb}}
tests:
  - name: both
    system: slice
summary_columns: [angle/C-C-C]
backmap: {{candidates: 1, gibbs: 0}}
eval: {{per_type_rdf: false}}
""")
    return tmp_path / "study.yaml"


def _run(config: Path, out: Path) -> tuple[dict, list[str]]:
    lines: list[str] = []
    summary = StudyRunner(load_study(config), out, log=lines.append).run()
    return summary, lines


def test_a_study_trains_backmaps_evaluates_and_summarises(tiny_study: Path, tmp_path: Path):
    out = tmp_path / "out"
    summary, _ = _run(tiny_study, out)
    metrics = summary["tests"]["both"]["metrics"]
    assert {"match", "none", "reference half vs half"} <= set(metrics)
    assert metrics["match"]["all_angles"] > 0.01 and metrics["none"]["cg_rmsd"] > 0
    assert metrics["given"]["all_angles"] == 0  # given frames (here the reference itself) are evaluated as they are
    assert summary["models"]["none"]["train_steps"] == 2
    assert read_frames(out / "backmap" / "both" / "none.xtc", tiny_study.parent / "aa2.pdb").positions.shape == (2, 324, 3)
    text = (out / "summary.md").read_text()
    assert "| match |" in text and "| none |" in text and "angle/C-C-C |" in text
    assert (out / "heatmap_both.png").stat().st_size > 0
    assert (out / "eval" / "both" / "angles.png").exists()  # every arm's distributions on shared axes
    trained = yaml_load(out / "models" / "none" / "config.yaml")
    assert trained["prior"]["mode"] == "none"  # the arm's override merged into the base config


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_a_finished_study_reruns_without_any_work(tiny_study: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    _run(tiny_study, out)
    before = json.loads((out / "summary.json").read_text())

    def forbidden(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr("gdbm.training.trainer.build_trainer", forbidden)
    monkeypatch.setattr("gdbm.sampling.jobs.backmap_trajectory", forbidden)
    monkeypatch.setattr("gdbm.analysis.report.evaluate_sets", forbidden)
    summary, lines = _run(tiny_study, out)
    assert all(": done" in line for line in lines)
    assert summary == before


def test_an_interrupted_study_resumes_training_from_its_checkpoint(tiny_study: Path, tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    original, calls = Trainer.train_step, []

    def stop_at_second_step(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", stop_at_second_step)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_study, out)
    monkeypatch.setattr(Trainer, "train_step", original)
    summary, lines = _run(tiny_study, out)
    assert "[train] match: resuming at step 1 -> 2 steps" in lines
    assert summary["models"]["match"]["train_steps"] == 2


def test_a_changed_arm_is_an_error_not_a_silent_retrain(tiny_study: Path, tmp_path: Path):
    out = tmp_path / "out"
    _run(tiny_study, out)
    tiny_study.write_text(tiny_study.read_text().replace("{prior: {mode: none}}", "{prior: {mode: min}}"))
    with pytest.raises(InputError, match="another config"):
        _run(tiny_study, out)


def test_bad_study_configs_are_refused(tiny_study: Path):
    text = tiny_study.read_text()
    tiny_study.write_text(text.replace("train: {slice: 1}\n  - name: none", "train: {nowhere: 1}\n  - name: none"))
    with pytest.raises(InputError, match="unknown systems"):
        load_study(tiny_study)
    tiny_study.write_text(text.replace("    train: {slice: 1}\n  - name: none", "    checkpoint: sps-voxel\n"
                                       "    train: {slice: 1}\n  - name: none"))
    with pytest.raises(InputError, match="give one of"):
        load_study(tiny_study)


def test_training_mix_shares_set_the_composition_of_a_draw():
    from gdbm.data.samples import TrainingSet

    class Part(torch.utils.data.Dataset):
        def __init__(self, n):
            self.n, self.spec, self.config = n, _Spec(), None  # config: the parts' environment config

        def __len__(self):
            return self.n

    weights = TrainingSet([Part(10), Part(90)], shares=[3.0, 1.0]).sample_weights
    index = shard_draw(100, 20000, Distributed(), torch.Generator().manual_seed(0), weights)
    share = (index < 10).double().mean().item()
    assert share == pytest.approx(0.75, abs=0.02)  # 3:1 although the first system has 9x fewer samples
    ranks = [shard_draw(100, 1000, Distributed(rank=r, world_size=2), torch.Generator().manual_seed(0), weights)
             for r in (0, 1)]
    assert (ranks[0] % 2 == 0).all() and (ranks[1] % 2 == 1).all()  # each rank stays in its shard


class _Spec:
    def check_compatible(self, other) -> None:
        pass


def test_one_arm_trains_and_backmaps_alone_and_a_full_run_uses_it(tiny_study: Path, tmp_path: Path):
    from gdbm.cli.main import main

    out = tmp_path / "out"
    assert main(["study", "--config", str(tiny_study), "-o", str(out), "--arm", "none"]) == 0
    assert (out / "models" / "none" / "done.json").exists() and (out / "backmap" / "both" / "none.json").exists()
    assert not (out / "models" / "match").exists() and not (out / "eval").exists()
    _, lines = _run(tiny_study, out)
    assert "[train] none: done (2 steps" in " ".join(lines) and "[backmap] both / none: done" in " ".join(lines)


def test_a_training_lock_waits_for_a_live_holder_and_takes_over_a_stale_one(tmp_path: Path):
    import os
    import subprocess
    import sys
    import threading

    from gdbm.study.runner import training_lock

    lock, lines = tmp_path / "training.lock", []
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    lock.write_text(dead.stdout.strip())  # left by a process that has ended
    with training_lock(lock, lines.append, "arm", poll=0.05):
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists() and not lines

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock.write_text(str(sleeper.pid))  # held by a live process
        entered = threading.Event()

        def enter() -> None:
            with training_lock(lock, lines.append, "arm", poll=0.05):
                entered.set()

        worker = threading.Thread(target=enter)
        worker.start()
        assert not entered.wait(0.5) and "being trained by process" in lines[0]
        sleeper.kill()
        sleeper.wait()
        assert entered.wait(5)
        worker.join()
    finally:
        sleeper.kill()


def test_missing_data_is_made_by_datagen_with_the_systems_arguments(tiny_study: Path, tmp_path: Path, monkeypatch):
    import subprocess
    import sys

    text = tiny_study.read_text().replace("tests:", """  - name: other
    train: {made: 1}
tests:""").replace("models:", f"""  made:
    topology: {tmp_path / 'made' / 'topol.top'}
    mapping: {tmp_path / 'made' / 'M.yaml'}
    aa: {tmp_path / 'made' / 'aa.xtc'}
    datagen: liquid --smiles 'CC(C)c1ccccc1' --count 2
models:""")
    tiny_study.write_text(text)
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 2)

    monkeypatch.setattr("gdbm.study.runner.subprocess.run", fake_run)
    runner = StudyRunner(load_study(tiny_study), tmp_path / "out", log=lambda line: None)
    with pytest.raises(InputError, match="datagen failed"):
        runner.make_data()
    assert commands == [[sys.executable, "-m", "gdbm", "--threads", "1", "datagen", "liquid", "--smiles",
                         "CC(C)c1ccccc1", "--count", "2", "-o", str(tmp_path / "made")]]


def test_a_test_system_whose_frames_are_a_folder_of_gro_files_is_evaluated(tiny_study: Path, tmp_path: Path):
    folder = tmp_path / "frames"
    folder.mkdir()
    aa = read_frames(tiny_study.parent / "aa2.pdb")
    for i in range(2):
        write_frames(folder / f"{i}.gro", aa.subset([i]))
    tiny_study.write_text(tiny_study.read_text().replace("aa: aa2.pdb", f"aa: {folder}"))
    summary, _ = _run(tiny_study, tmp_path / "out")
    assert summary["tests"]["both"]["metrics"]["match"]["n_frames"] == 2
