"""Builds the generator and critic named by a model config (``voxel``; more conditioners plug in here)."""

from __future__ import annotations

from torch import nn

from gdbm.data.features import FeatureSpec
from gdbm.training.config import ModelConfig
from gdbm.voxel import build_voxel_conditioner


def build_conditioner(config: ModelConfig, spec: FeatureSpec) -> tuple[nn.Module, nn.Module]:
    """A fresh generator and critic for the particle features and atom types of ``spec``."""
    if config.encoder == "voxel":
        return build_voxel_conditioner(spec.n_features, spec.n_target_types, config.voxel)
    raise ValueError(f"unknown encoder {config.encoder!r}")
