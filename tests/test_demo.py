"""``gdbm demo`` end to end on the shipped example set, with a 2-update model (the plumbing, not the quality)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gdbm.cli.main import main
from gdbm.study.demo import example_folder
from gdbm.utils.errors import InputError


def test_demo_trained_from_scratch_writes_a_report_with_metrics_and_plots(tmp_path: Path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--steps", "2", "--candidates", "1", "--refine", "none"]) == 0
    report = (out / "report.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())["sets"]
    held_out = metrics["generator"]["n_frames"]
    assert held_out == 10 and "`generator`" in report and "reference half vs half" in report
    assert "trained here from scratch" in report
    assert {"angles.png", "bonds.png", "rdf.png"} <= {p.name for p in out.glob("*.png")}
    assert (out / "model" / "checkpoint.pt").is_file() and (out / "backmapped.xtc").is_file()
    assert main(["demo", "-o", str(out), "--steps", "2"]) == 2  # no silent overwrite


def test_the_shipped_example_names_its_command():
    record = json.loads((example_folder("cumene") / "datagen.json").read_text())
    assert record["command"].startswith("gdbm") and "datagen liquid" in record["command"]
    with pytest.raises(InputError, match="shipped"):
        example_folder("no-such-example")
