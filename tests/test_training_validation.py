"""Validation on held-out frames and the training plot: the ``val_*`` columns of log.csv at their
steps, training unchanged by them, old logs resumed and plotted, ``training.png`` beside every run."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml
from fuzz_helpers import one_line_error

from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.training.config import config_changes, load_config
from gdbm.training.log import CSVLog
from gdbm.training.log_plot import PLOT, plot_training_log, read_log, warm_up_end
from gdbm.training.trainer import build_trainer, load_sources
from gdbm.training.validation import split_frames
from gdbm.utils.errors import InputError

N_CHAINS, ATOMS, BEADS = 2, 162, 20  # atoms and beads of one sPS chain
TINY = {
    "model": {"conditioner": "voxel", "voxel": {"resolution": 4, "length": 1.2, "channels": 4, "noise_dim": 4,
                                                "n_blocks": 1, "norm": "layer"}},
    "training": {"batch_size": 4, "n_critic": 1, "steps": 3, "pretrain_steps": 1, "checkpoint_every": 2,
                 "log_every": 1, "threads": 1, "lr_critic": 1e-3, "lr_generator": 1e-3},
    "prior": {"mode": "match", "weight": 1e-6, "ramp_start": 0, "ramp_end": 1},
}


def _cut(frames: Frames, n: int) -> Frames:
    return Frames(frames.positions[:, :n], frames.boxes, frames.labels, frames.names[:n], frames.resnames[:n],
                  frames.resids[:n])


@pytest.fixture(scope="module")
def three_frames(tmp_path_factory, sps: Path) -> Path:
    """Two sPS chains in three training frames (folders of .gro, AA and CG) and their force field."""
    folder = tmp_path_factory.mktemp("three_frames")
    top = (sps / "topol.top").read_text().replace('#include "topol_PS1.itp"', f'#include "{sps / "topol_PS1.itp"}"')
    (folder / "topol.top").write_text(top.replace("PS1       36", f"PS1       {N_CHAINS}"))
    for name in ("PS1_cg.itp", "PS1.map", "PS1_cg_fritz.map"):
        (folder / name).write_text((sps / name).read_text())
    for k, name in enumerate(("90.gro", "135.gro", "168.gro")):
        for kind, n in (("aa", ATOMS * N_CHAINS), ("cg", BEADS * N_CHAINS)):
            (folder / kind).mkdir(exist_ok=True)
            write_frames(folder / kind / f"{k}.gro", _cut(read_frames(sps / "train_t568" / kind / name), n))
    return folder


def _config(folder: Path, tmp_path: Path, training: dict | None = None, **data: str):
    source = {"topology": "topol.top", "mapping": "PS1.map", "aa": "aa", "cg": "cg", "cg_map": "PS1_cg_fritz.map",
              **data}
    path = folder / f"{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump({**TINY, "data": source}))
    return load_config(path, {"training": training} if training else None)


def test_held_out_frames_are_split_off_and_must_not_overlap(three_frames: Path, tmp_path: Path, capsys):
    assert split_frames(None, "2:3", 3, "aa") == ([0, 1], [2])  # default: train on every frame not held out
    assert split_frames("0:1", "1:", 3, "aa") == ([0], [1, 2])
    assert split_frames("0:3", None, 3, "aa") == ([0, 1, 2], [])
    with pytest.raises(InputError, match=r"^aa: data.validation_frames ':' holds out all 3 frames"):
        split_frames(None, ":", 3, "aa")
    with pytest.raises(InputError, match=r"^aa: data.validation_frames: frame range '5:9' selects none of the 3"):
        split_frames("0:2", "5:9", 3, "aa")

    overlapping = _config(three_frames, tmp_path, frames="0:2", validation_frames="1:3")
    with pytest.raises(InputError) as err:
        load_sources(overlapping)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(three_frames / "aa"))
    assert "data.validation_frames '1:3' overlaps data.frames '0:2' in 1 of the 3 frames (from frame 1)" in message

    config_file = three_frames / f"{tmp_path.name}.yaml"  # the overlapping config, as written by _config
    one_line_error(["fit", "--config", str(config_file), "-o", str(tmp_path / "run")], capsys,
                   "overlaps data.frames '0:2'")
    assert not (tmp_path / "run").exists()  # refused before the run folder is made

    source, = load_sources(_config(three_frames, tmp_path, validation_frames="1:2"))
    assert (len(source.frames), len(source.held_out), len(source.held_out_beads)) == (2, 1, 1)
    aa = read_frames(three_frames / "aa")
    assert torch.equal(source.held_out.positions[0], aa.positions[1])
    assert torch.equal(source.frames.positions[1], aa.positions[2])


def test_validation_columns_at_their_steps_and_the_plot_beside_the_log(three_frames: Path, tmp_path: Path):
    config = _config(three_frames, tmp_path, {"log_every": 5, "validate_every": 2}, frames="0:2",
                     validation_frames="2:3")
    trainer = build_trainer(config, tmp_path / "run")
    assert trainer.validation is not None and len(trainer.validation) > 0
    rng = torch.get_rng_state()
    first = trainer.validate()
    assert trainer.validate() == first  # a fixed batch under fixed noise: comparable across steps
    assert torch.equal(torch.get_rng_state(), rng) and trainer.state.generator.training
    assert {"val_supervised_mse", "val_prior_cost", "val_energy_bond", "val_reference_bond",
            "val_energy_lj", "val_reference_lj", "val_cross_angle_rms"} <= first.keys()
    assert 0 < first["val_cross_angle_rms"] < 90  # degrees: the angles between beads, teacher forced

    trainer.fit(progress=False)
    rows = trainer.log.rows()
    # rows at the validation step 2 and the last step 3 (log_every 5 alone would log step 3 only)
    assert [r["step"] for r in rows] == ["2", "3"]
    assert all(r["val_supervised_mse"] and r["val_energy_bond"] for r in rows)
    assert rows[0]["val_reference_bond"] == rows[1]["val_reference_bond"]  # the same held-out atoms
    assert rows[1]["wasserstein"] and not rows[1].get("supervised_mse")  # an adversarial update
    assert (tmp_path / "run" / PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_leaves_training_exactly_as_without_it(three_frames: Path, tmp_path: Path):
    scored = _config(three_frames, tmp_path, {"validate_every": 1}, frames="0:2", validation_frames="2:3")
    plain = _config(three_frames, tmp_path, frames="0:2")
    a, b = build_trainer(scored, tmp_path / "a"), build_trainer(plain, tmp_path / "b")
    assert b.validation is None
    a.fit(progress=False)  # one supervised and two adversarial updates, each validated
    b.fit(progress=False)
    for x, y in zip([*a.state.generator.parameters(), *a.state.critic.parameters()],
                    [*b.state.generator.parameters(), *b.state.critic.parameters()]):
        assert torch.equal(x, y)
    assert [bool(r["val_supervised_mse"]) for r in a.log.rows()] == [True, True, True]
    assert "val_supervised_mse" not in b.log.rows()[0]


def test_resuming_a_log_without_validation_columns(three_frames: Path, tmp_path: Path):
    old = _config(three_frames, tmp_path, {"checkpoint_every": 1}, frames="0:2")
    build_trainer(old, tmp_path / "run").fit(1, progress=False)  # a log as written before validation existed
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0]
    assert "val_" not in header

    scored = _config(three_frames, tmp_path, {"checkpoint_every": 1}, frames="0:2", validation_frames="2:3")
    trainer = build_trainer(scored, tmp_path / "run")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # held-out frames beside named training frames: the same training
        assert trainer.resume() and trainer.state.step == 1
    trainer.fit(progress=False)
    rows = CSVLog(tmp_path / "run" / "log.csv").rows()
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["supervised_mse"] and not rows[0]["val_supervised_mse"]  # the old row, widened
    assert rows[1]["val_supervised_mse"] and rows[2]["val_energy_lj"]
    assert (tmp_path / "run" / PLOT).exists()

    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["config"]
    unnamed = _config(three_frames, tmp_path, validation_frames="2:3")  # now the held-out frames move training's
    assert config_changes({**saved, "data": {**saved["data"], "frames": None, "validation_frames": None}},
                          unnamed) == ["data.0.validation_frames"]


def test_plot_of_any_log_old_or_new(tmp_path: Path):
    old = tmp_path / "old"
    log = CSVLog(old / "log.csv")  # the columns of a run before validation existed
    for step in (10, 20):
        log.write({"step": step, "seconds": step, "supervised_mse": 0.1 / step, "prior_weight": 0.0,
                   "prior_cost": 5.0, "energy_bond": 50.0 / step, "reference_bond": 1.0, "generator_loss": 0.1})
    for step in (30, 40):
        log.write({"step": step, "seconds": step, "prior_weight": 0.01, "prior_cost": 3.0, "energy_bond": 2.0,
                   "reference_bond": 1.0, "generator_loss": 0.5, "critic_loss": -0.5, "wasserstein": 0.6,
                   "gradient_penalty": 0.01, "generator_adversarial": 0.4})
    columns = read_log(old / "log.csv")
    assert columns["wasserstein"] == ([30, 40], [0.6, 0.6]) and warm_up_end(columns) == 20
    assert plot_training_log(old) == old / PLOT and (old / PLOT).stat().st_size > 1000

    supervised_only = CSVLog(tmp_path / "young" / "log.csv")
    supervised_only.write({"step": 1, "supervised_mse": 0.2, "prior_weight": 0.0, "angle_distribution": 0.01,
                           "dihedral_distribution": 0.02, "val_cross_angle_rms": 7.5, "val_angle_distribution": 0.012})
    out = plot_training_log(tmp_path / "young" / "log.csv", tmp_path / "elsewhere.png")
    assert out.exists() and warm_up_end(read_log(tmp_path / "young" / "log.csv")) is None

    with pytest.raises(InputError, match="no training log"):
        plot_training_log(tmp_path / "nowhere")
    (tmp_path / "bad.csv").write_text("step,loss\n1,abc\n")
    with pytest.raises(InputError, match=r"bad.csv:2: column loss: 'abc' is not a number"):
        read_log(tmp_path / "bad.csv")


def test_a_failing_plot_warns_once_and_training_goes_on(three_frames: Path, tmp_path: Path, monkeypatch):
    import gdbm.training.trainer as trainer_module

    def broken(*_args, **_kwargs):
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(trainer_module, "plot_training_log", broken)
    config = _config(three_frames, tmp_path, {"checkpoint_every": 1, "pretrain_steps": 2}, frames="0:2")
    trainer = build_trainer(config, tmp_path / "run")
    with pytest.warns(RuntimeWarning, match="training.png: the training plot could not be drawn \\(no fonts today\\)") \
            as caught:
        trainer.fit(2, progress=False)
    assert len([w for w in caught if "training plot" in str(w.message)]) == 1
    assert trainer.state.step == 2 and (tmp_path / "run" / "checkpoint.pt").exists()
