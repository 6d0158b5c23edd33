"""``gdbm models``: every shipped model is listed with what it was trained on and how it scored."""

from __future__ import annotations

import pytest

from gdbm.cli.main import main
from gdbm.training.pretrained import available, model_notes, read_note_header
from gdbm.utils.errors import InputError


def test_every_shipped_model_has_a_note_with_its_header():
    notes = model_notes()
    assert [n.name for n in notes] == available() and "sps-voxel" in available()
    for n in notes:
        assert n.checkpoint.is_file() and n.molecules and n.trained_on and n.score and n.conditioner


def test_models_lists_them_and_prints_one_note(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "sps-voxel\n  molecules:   PS1" in out and "score:" in out and "1200 generator updates" in out
    assert main(["models", "sps-voxel"]) == 0
    assert "# sps-voxel" in capsys.readouterr().out
    assert main(["models", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no shipped model 'nope' (shipped: " in err


def test_a_note_without_its_header_is_named(tmp_path):
    note = tmp_path / "m.md"
    note.write_text("# m\n\nno header\n")
    with pytest.raises(InputError, match="starts with a YAML header"):
        read_note_header(note)
    note.write_text("---\nmolecules: X\n---\n# m\n")
    with pytest.raises(InputError, match="lacks trained_on, conditioner, updates, score"):
        read_note_header(note)
