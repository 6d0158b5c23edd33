"""Builds the generator and critic named by a model config (``voxel``, ``e3nn``; more plug in here)."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from gdbm.data.features import FeatureSpec
from gdbm.topology.stereo import StereoTemplate
from gdbm.training.config import ExperimentConfig, ModelConfig
from gdbm.voxel import VoxelGenerator, build_voxel_conditioner


def build_conditioner(config: ModelConfig, spec: FeatureSpec) -> tuple[nn.Module, nn.Module]:
    """A fresh generator and critic for the particle features and atom types of ``spec``."""
    if config.encoder == "voxel":
        return build_voxel_conditioner(spec.n_features, spec.n_target_types, config.voxel)
    if config.encoder == "e3nn":
        from gdbm.equivariant import build_e3nn_conditioner

        return build_e3nn_conditioner(spec.n_features, spec.n_target_types, config.e3nn)
    raise ValueError(f"unknown encoder {config.encoder!r}")


def needs_alignment(config: ModelConfig) -> bool:
    """Whether the encoder's generator declares ``aligned``: environments aligned to the fixpoint bond
    and turned about z in training (voxel), or left as they are (e3nn, equivariant)."""
    if config.encoder == "e3nn":
        from gdbm.equivariant import E3nnGenerator

        return E3nnGenerator.aligned
    return VoxelGenerator.aligned


def load_stereo(path: str | Path) -> StereoTemplate | None:
    """The stereocentre handedness a checkpoint recorded from its training frames (None for older checkpoints)."""
    from gdbm.pretrained import resolve_checkpoint
    from gdbm.training.checkpoint import load_checkpoint

    data = load_checkpoint(resolve_checkpoint(path)).get("stereo")
    return StereoTemplate.from_dict(data) if data is not None else None


def load_generator(path: str | Path, device: str = "cpu") -> tuple[nn.Module, FeatureSpec, ExperimentConfig]:
    """The trained generator of a ``gdbm fit`` checkpoint or a shipped model's name (:mod:`gdbm.pretrained`),
    its feature layout and its experiment config."""
    from gdbm.pretrained import resolve_checkpoint
    from gdbm.training.checkpoint import load_checkpoint

    ck = load_checkpoint(resolve_checkpoint(path), device)
    config = ExperimentConfig.model_validate(ck["config"])
    spec = FeatureSpec.from_dict(ck["features"])
    generator, _ = build_conditioner(config.model, spec)
    generator.load_state_dict(ck["generator"])
    return generator.to(device).eval(), spec, config
