"""Fine-tuning (``gdbm fit --init-from``, ``training.init_from``) on two cumene molecules: the run starts
from the model's weights, keeps its network and vocabulary, refuses what would change them, and
resumes from its own checkpoint."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch

from fuzz_helpers import make_mini_cumene, stderr_lines, tiny_fit_config
from gdbm.cli.main import main
from gdbm.data.environment import EnvironmentConfig
from gdbm.data.features import FeatureSpec
from gdbm.training.config import DataConfig, load_config
from gdbm.training.init_from import check_vocabulary
from gdbm.training.run_folder import train_in_folder
from gdbm.training.trainer import Trainer
from gdbm.utils.errors import InputError

DATA_ONLY = "data: {topology: topol.top, mapping: CUM.yaml, aa: aa.gro, cg: cg.gro}\n"
SHORT = "training: {batch_size: 2, n_critic: 1, steps: 1, threads: 1}\n"


@pytest.fixture(scope="module")
def cumene(tmp_path_factory) -> Path:
    """Two cumene molecules and a one-update tiny model trained on them (``src/checkpoint.pt``)."""
    folder = make_mini_cumene(tmp_path_factory.mktemp("fine_tune"))
    (folder / "fit.yaml").write_text(tiny_fit_config(folder))
    assert main(["fit", "--config", str(folder / "fit.yaml"), "-o", str(folder / "src")]) == 0
    return folder


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=False)


def test_a_fine_tuned_run_starts_from_the_models_weights(cumene: Path, tmp_path: Path, monkeypatch):
    source = _load(cumene / "src" / "checkpoint.pt")
    config_file = cumene / "ft.yaml"  # no model section: the network is the model's
    config_file.write_text(DATA_ONLY + "training: {batch_size: 2, n_critic: 1, steps: 1, threads: 1, "
                                       "init_from: src/checkpoint.pt}\n")
    config = load_config(config_file)
    assert config.training.init_from == str((cumene / "src" / "checkpoint.pt").resolve())

    monkeypatch.setattr(Trainer, "fit", lambda self, *a, **k: self.state)  # stop before the first update
    state = train_in_folder(config, tmp_path / "before")
    for name, module in (("generator", state.generator), ("critic", state.critic)):
        loaded = module.state_dict()
        assert loaded.keys() == source[name].keys()
        assert all(torch.equal(loaded[k], source[name][k]) for k in loaded), name
    assert state.step == 0 and not state.opt_generator.state and not state.opt_critic.state
    monkeypatch.undo()

    train_in_folder(config, tmp_path / "run")  # one update from there
    ck = _load(tmp_path / "run" / "checkpoint.pt")
    assert ck["step"] == 1 and ck["features"] == source["features"]
    assert ck["config"]["model"] == source["config"]["model"]
    assert ck["config"]["training"]["init_from"] == config.training.init_from
    assert any(not torch.equal(ck["generator"][k], v) for k, v in source["generator"].items())


def test_fine_tuning_a_shipped_model(cumene: Path, tmp_path: Path, capsys):
    from gdbm.training.pretrained import resolve_checkpoint

    shipped = _load(resolve_checkpoint("cumene-voxel"))
    assert "critic" not in shipped  # a shipped model has none: the run gets a fresh critic
    config_file = cumene / "shipped.yaml"
    config_file.write_text(DATA_ONLY + "training: {batch_size: 2, n_critic: 1, steps: 1, threads: 1, "
                                       "pretrain_steps: 1}\n")
    run = tmp_path / "run"
    assert main(["fit", "--config", str(config_file), "--init-from", "cumene-voxel", "-o", str(run)]) == 0
    assert "start from cumene-voxel -> 1 steps" in capsys.readouterr().out
    ck = _load(run / "checkpoint.pt")
    assert ck["step"] == 1 and ck["features"] == shipped["features"]
    assert ck["config"]["model"] == shipped["config"]["model"]
    # the same environment; options added to gdbm since the model was shipped take their defaults
    assert EnvironmentConfig(**ck["config"]["environment"]) == EnvironmentConfig(**shipped["config"]["environment"])
    assert ck["config"]["training"]["init_from"] == "cumene-voxel"


def _refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    lines = stderr_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    return lines[0]


def test_a_config_that_changes_the_network_is_refused_in_one_line(cumene: Path, tmp_path: Path, capsys):
    config_file = cumene / "wider.yaml"
    config_file.write_text(DATA_ONLY + SHORT + "model: {voxel: {channels: 8, noise_dim: 16}}\n"
                           "environment: {cutoff: 0.9, atom_types: forcefield}\n")
    fit = ["fit", "--config", str(config_file), "--init-from", "cumene-voxel", "-o", str(tmp_path / "run")]
    line = _refused(fit, capsys)
    assert "wider.yaml: sets the network differently from cumene-voxel" in line
    assert "environment.cutoff 0.9 (the model's: 0.7), model.voxel.channels 8 (the model's: 16)" in line
    assert "noise_dim" not in line and "atom_types" not in line  # the same as the model's: no difference
    assert not (tmp_path / "run").exists()

    config_file.write_text(DATA_ONLY + SHORT)
    line = _refused([*fit, "--conditioner", "e3nn"], capsys)
    assert "model.conditioner 'e3nn' (the model's: 'voxel')" in line


def test_types_outside_the_models_vocabulary_are_refused_in_one_line(two_chains: Path, cumene: Path, tmp_path: Path,
                                                                      capsys):
    run = tmp_path / "run"
    line = _refused(["fit", "--config", str(two_chains / "tiny.yaml"), "--init-from",
                     str(cumene / "src" / "checkpoint.pt"), "-o", str(run)], capsys)
    assert line.startswith(f"gdbm fit: error: {two_chains / 'topol.top'}: atom types [")
    assert "are not in the vocabulary of" in line
    assert "(atom types ['c3', 'ca', 'ha', 'hc']; bead types ['M', 'R'])" in line
    assert not run.exists()


def test_types_the_system_lacks_are_fine():
    model = FeatureSpec(("c3", "ca", "ha", "hc"), ("B", "M", "R"))
    source = DataConfig(topology="t.top", mapping="m.yaml", aa="aa.gro")
    check_vocabulary(model, FeatureSpec(("c3", "hc"), ("M",)), source, "hydrocarbons")
    with pytest.raises(InputError, match=r"^m.yaml: bead types \['X'\] are not in the vocabulary of hydrocarbons"):
        check_vocabulary(model, FeatureSpec(("c3",), ("X",)), source, "hydrocarbons")


def test_a_resumed_fine_tuned_run_continues_from_its_own_checkpoint(cumene: Path, tmp_path: Path, capsys):
    init = tmp_path / "init.pt"
    shutil.copy(cumene / "src" / "checkpoint.pt", init)
    config_file = cumene / "resume.yaml"
    config_file.write_text(DATA_ONLY + "training: {batch_size: 2, n_critic: 1, steps: 2, threads: 1}\n")
    fit = ["fit", "--config", str(config_file)]
    assert main([*fit, "--init-from", str(init), "-o", str(tmp_path / "straight")]) == 0
    assert main([*fit, "--init-from", str(init), "-o", str(tmp_path / "run"), "--steps", "1"]) == 0
    init.unlink()  # a resumed run never reads the model it started from again
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resuming without naming the model again is no change
        assert main([*fit, "-o", str(tmp_path / "run"), "--resume"]) == 0
    assert "resuming at step 1 -> 2 steps" in capsys.readouterr().out
    straight, resumed = _load(tmp_path / "straight" / "checkpoint.pt"), _load(tmp_path / "run" / "checkpoint.pt")
    assert resumed["step"] == 2 and resumed["config"]["training"]["init_from"] == str(init.resolve())
    assert all(torch.equal(resumed["generator"][k], v) for k, v in straight["generator"].items())


def test_build_trainer_plans_init_from_itself(cumene: Path, tmp_path: Path):
    from gdbm.training.trainer import build_trainer

    config_file = cumene / "library.yaml"
    config_file.write_text(DATA_ONLY + SHORT.replace("threads: 1", "threads: 1, init_from: src/checkpoint.pt"))
    trainer = build_trainer(load_config(config_file), tmp_path / "run")
    source = _load(cumene / "src" / "checkpoint.pt")
    assert trainer.config.model.model_dump(mode="json") == source["config"]["model"]
    assert all(torch.equal(v, source["generator"][k]) for k, v in trainer.state.generator.state_dict().items())
