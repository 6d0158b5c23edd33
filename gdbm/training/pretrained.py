"""Trained models shipped with the package, addressed by name (``gdbm backmap --checkpoint sps-voxel``).

Each model is ``gdbm/resources/models/<name>.pt`` (generator weights, feature layout and the full
experiment config: all a sampler needs) beside ``<name>.md``, the note of how it was trained
(data, config, steps, time, the checkpoint it was chosen from and how). The note opens with a
YAML header (``molecules``, ``trained_on``, ``conditioner``, ``updates``, ``score``) that
``gdbm models`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml

from gdbm.utils.atomic_files import atomic_path
from gdbm.utils.errors import InputError
from gdbm.topology.stereo import StereoTemplate

_MODELS = "models"


def _folder() -> Path:
    return Path(str(resources.files("gdbm") / "resources" / _MODELS))


def available() -> list[str]:
    """Names of the shipped models."""
    folder = _folder()
    return sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []


@dataclass(frozen=True)
class ModelNote:
    """What ``gdbm models`` says of a shipped model: its note's header, and where its files are."""

    name: str
    molecules: str
    trained_on: str
    conditioner: str
    updates: int | None
    score: str
    checkpoint: Path
    note: Path


NOTE_FIELDS = ("molecules", "trained_on", "conditioner", "updates", "score")


def read_note_header(note: Path) -> dict:
    """The YAML header of a model note (between the first two ``---`` lines); an :class:`InputError` without one."""
    lines = note.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "---" or "---" not in (line.strip() for line in lines[1:]):
        raise InputError("a model note starts with a YAML header between '---' lines", note, 1)
    end = 1 + [line.strip() for line in lines[1:]].index("---")
    header = yaml.safe_load("\n".join(lines[1:end])) or {}
    missing = [key for key in NOTE_FIELDS if key not in header]
    if not isinstance(header, dict) or missing:
        raise InputError(f"the note's header lacks {', '.join(missing)}; expected {', '.join(NOTE_FIELDS)}", note, 1)
    return header


def model_notes() -> list[ModelNote]:
    """Every shipped model with its note's header, by name."""
    notes = []
    for name in available():
        note = _folder() / f"{name}.md"
        if not note.is_file():
            raise InputError(f"shipped model {name!r} has no note {note.name} beside it", note)
        h = read_note_header(note)
        notes.append(ModelNote(name, str(h["molecules"]), str(h["trained_on"]), str(h["conditioner"]),
                               None if h["updates"] is None else int(h["updates"]), str(h["score"]),
                               _folder() / f"{name}.pt", note))
    return notes


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A checkpoint file: an existing path as given, else the shipped model of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise InputError("a folder; expected a .pt checkpoint file (a run folder's checkpoint.pt) or a shipped "
                         "model's name", path)
    shipped = _folder() / f"{name_or_path}.pt"
    if shipped.is_file():
        return shipped
    names = ", ".join(available()) or "none"
    raise InputError(f"neither a checkpoint file nor a shipped model (shipped: {names})", path)


def export_generator(checkpoint: str | Path, out: str | Path, stereo: StereoTemplate | None = None,
                     sampler: Mapping[str, Any] | None = None) -> Path:
    """Write the sampling part of a ``gdbm fit`` checkpoint (generator, features, config, step, stereocentres)
    to ``out``.

    Drops the critic and optimiser states: what ships is a third of the size and loads the same way.
    ``stereo``: the training frames' stereocentres, for checkpoints written before ``gdbm fit`` recorded them.
    ``sampler``: the sampler settings the model was scored with (keys of
    :class:`~gdbm.sampling.backmapper.SamplerConfig`, e.g. ``{"hold_centres": "seat"}``), which ``gdbm backmap``
    then uses wherever its flags are silent (:func:`gdbm.sampling.backmapper.sampler_for`).
    """
    from gdbm.training.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    payload = {key: ck[key] for key in ("generator", "features", "config", "step", "seconds", "stereo") if key in ck}
    if stereo is not None:
        payload["stereo"] = stereo.to_dict()
    if sampler is not None:
        payload["sampler"] = dict(sampler)
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return Path(out)
