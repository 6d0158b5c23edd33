"""Checkpoints and logs of training: atomic, resumable, exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.utils.errors import InputError
from gdbm.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gdbm.training.log import CSVLog


def test_checkpoint_round_trip_restores_rng(tmp_path: Path):
    model = torch.nn.Linear(3, 2)
    state = rng_state()
    expected = torch.rand(4)
    path = save_checkpoint(tmp_path / "ck.pt", {"model": model.state_dict(), "step": 7, "rng": state})
    back = load_checkpoint(path)
    assert back["step"] == 7 and torch.equal(back["model"]["weight"], model.weight.detach())
    set_rng_state(back["rng"])
    assert torch.equal(torch.rand(4), expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_unreadable_checkpoint_is_an_input_error(tmp_path: Path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(InputError, match="bad.pt"):
        load_checkpoint(bad)
    with pytest.raises(InputError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_csv_log_appends_across_instances(tmp_path: Path):
    log = CSVLog(tmp_path / "log.csv")
    log.write({"step": 1, "loss": 0.5})
    CSVLog(tmp_path / "log.csv").write({"step": 2, "loss": 0.25})
    rows = CSVLog(tmp_path / "log.csv").rows()
    assert [r["step"] for r in rows] == ["1", "2"] and rows[1]["loss"] == "0.25"


def test_a_resumed_log_drops_the_rows_logged_after_its_checkpoint(tmp_path: Path):
    log = CSVLog(tmp_path / "log.csv")
    for step in (5, 10, 15):
        log.write({"step": step, "loss": step / 10})
    CSVLog(tmp_path / "log.csv").drop_after(10)  # the checkpoint was at step 10; 15 is run again
    reopened = CSVLog(tmp_path / "log.csv")
    reopened.write({"step": 15, "loss": 2.0})
    assert [(r["step"], r["loss"]) for r in reopened.rows()] == [("5", "0.5"), ("10", "1.0"), ("15", "2.0")]


def test_a_log_widens_its_header_for_new_columns_and_still_resumes(tmp_path: Path):
    old = tmp_path / "log.csv"
    old.write_text("step,seconds,supervised_mse\n10,1.0,0.5\n20,2.0,0.25\n")  # a log older than its new columns
    log = CSVLog(old)
    log.drop_after(20)
    log.write({"step": 30, "seconds": 3.0, "val_supervised_mse": 0.3})
    assert old.read_text().splitlines()[0] == "step,seconds,supervised_mse,val_supervised_mse"
    CSVLog(old).drop_after(20)  # resumed again from step 20: the widened header stays
    reopened = CSVLog(old)
    reopened.write({"step": 30, "seconds": 3.5, "val_supervised_mse": 0.2})
    assert [(r["step"], r["supervised_mse"], r["val_supervised_mse"]) for r in reopened.rows()] == [
        ("10", "0.5", ""), ("20", "0.25", ""), ("30", "", "0.2")]
