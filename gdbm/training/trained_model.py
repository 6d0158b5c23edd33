"""A trained generator back from a ``gdbm fit`` checkpoint or a shipped model, with what it was trained on."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from gdbm.data.features import FeatureSpec
from gdbm.topology.stereo import StereoTemplate
from gdbm.training.checkpoint import load_checkpoint
from gdbm.training.config import ExperimentConfig
from gdbm.training.pretrained import resolve_checkpoint


def load_generator(path: str | Path, device: str = "cpu") -> tuple[nn.Module, FeatureSpec, ExperimentConfig]:
    """The trained generator of a checkpoint or a shipped model's name (:mod:`gdbm.training.pretrained`),
    its feature layout and its experiment config."""
    ck = load_checkpoint(resolve_checkpoint(path), device)
    config = ExperimentConfig.model_validate(ck["config"])
    spec = FeatureSpec.from_dict(ck["features"])
    generator, _ = config.model.entry.build(spec.n_features, spec.n_target_types, config.model.options)
    generator.load_state_dict(ck["generator"])
    return generator.to(device).eval(), spec, config


def load_stereo(path: str | Path) -> StereoTemplate | None:
    """The stereocentre handedness a checkpoint recorded from its training frames (None for older checkpoints)."""
    data = load_checkpoint(resolve_checkpoint(path)).get("stereo")
    return StereoTemplate.from_dict(data) if data is not None else None
