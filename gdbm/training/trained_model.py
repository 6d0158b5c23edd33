"""A trained generator back from a ``gdbm fit`` checkpoint or a shipped model, with what it was trained on."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from torch import nn

from gdbm.data.features import FeatureSpec
from gdbm.topology.stereo import StereoTemplate
from gdbm.training.checkpoint import GENERATOR_KEYS, load_checkpoint
from gdbm.utils.errors import InputError
from gdbm.training.config import ExperimentConfig
from gdbm.training.pretrained import resolve_checkpoint


def load_experiment(path: str | Path) -> ExperimentConfig:
    """The experiment config a checkpoint or shipped model was trained with (no network built)."""
    path = resolve_checkpoint(path)
    try:
        return ExperimentConfig.model_validate(load_checkpoint(path, required=GENERATOR_KEYS)["config"])
    except ValidationError as err:
        raise InputError(f"not a gdbm checkpoint: its config is unreadable ({' '.join(str(err).split()[:12])})",
                         path) from None


def recorded_model(checkpoint: dict, path: str | Path) -> tuple[ExperimentConfig, FeatureSpec]:
    """The experiment config and feature layout a loaded checkpoint recorded; unreadable ones are an
    :class:`InputError` naming ``path``."""
    try:
        return ExperimentConfig.model_validate(checkpoint["config"]), FeatureSpec.from_dict(checkpoint["features"])
    except (ValidationError, KeyError, TypeError, ValueError) as err:
        raise InputError(f"not a gdbm checkpoint: its config or feature layout is unreadable "
                         f"({' '.join(str(err).split()[:12])})", path) from None


def load_weights(module: nn.Module, state: dict, path: str | Path, what: str = "generator") -> None:
    """``state`` into ``module``; weights that do not fit are an :class:`InputError` naming ``path``."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise InputError(f"the checkpoint's {what} weights do not fit its config "
                         f"({' '.join(str(err).split()[:16])})", path) from None


def load_generator(path: str | Path, device: str = "cpu") -> tuple[nn.Module, FeatureSpec, ExperimentConfig]:
    """The trained generator of a checkpoint or a shipped model's name (:mod:`gdbm.training.pretrained`),
    its feature layout and its experiment config; a file that is not one is an :class:`InputError` naming it."""
    path = resolve_checkpoint(path)
    ck = load_checkpoint(path, device, required=GENERATOR_KEYS)
    config, spec = recorded_model(ck, path)
    generator, _ = config.model.entry.build(spec.n_features, spec.n_target_types, config.model.options)
    load_weights(generator, ck["generator"], path)
    return generator.to(device).eval(), spec, config


def load_stereo(path: str | Path) -> StereoTemplate | None:
    """The stereocentre handedness a checkpoint recorded from its training frames (None for older checkpoints)."""
    data = load_checkpoint(resolve_checkpoint(path), required=GENERATOR_KEYS).get("stereo")
    return StereoTemplate.from_dict(data) if data is not None else None


def load_sampler_settings(path: str | Path) -> dict:
    """The sampler settings a checkpoint or shipped model recorded (``export_generator(sampler=...)``): what
    ``gdbm backmap`` uses where its flags are silent; ``{}`` when it recorded none."""
    data = load_checkpoint(resolve_checkpoint(path), required=GENERATOR_KEYS).get("sampler")
    if data is not None and not isinstance(data, dict):
        raise InputError("not a gdbm checkpoint: its sampler settings are not a mapping", path)
    return dict(data or {})
