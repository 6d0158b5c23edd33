"""Trained models shipped with the package, addressed by name (``gdbm backmap --checkpoint sps-voxel``).

Each model is ``gdbm/resources/models/<name>.pt`` (generator weights, feature layout and the full
experiment config: all a sampler needs) beside ``<name>.md``, the note of how it was trained
(data, config, steps, time, the checkpoint it was chosen from and how).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

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


def export_generator(checkpoint: str | Path, out: str | Path, stereo: StereoTemplate | None = None) -> Path:
    """Write the sampling part of a ``gdbm fit`` checkpoint (generator, features, config, step, stereocentres)
    to ``out``.

    Drops the critic and optimiser states: what ships is a third of the size and loads the same way.
    ``stereo``: the training frames' stereocentres, for checkpoints written before ``gdbm fit`` recorded them.
    """
    from gdbm.training.checkpoint import load_checkpoint

    ck = load_checkpoint(checkpoint)
    payload = {key: ck[key] for key in ("generator", "features", "config", "step", "seconds", "stereo") if key in ck}
    if stereo is not None:
        payload["stereo"] = stereo.to_dict()
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)
    return Path(out)
