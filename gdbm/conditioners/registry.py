"""The conditioners gdbm knows, by name: each one's config class, builder and whether it wants aligned frames.

A new conditioner is one folder (config, blocks, networks implementing
:mod:`gdbm.conditioners.interface`) plus one :func:`register` call below: the experiment
config (``model.conditioner`` and the conditioner's own section), ``gdbm fit --conditioner``
and checkpoint loading all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from pydantic import BaseModel
from torch import nn

from gdbm.conditioners.equivariant.config import E3nnConfig
from gdbm.conditioners.voxel.config import VoxelConfig


@dataclass(frozen=True)
class ConditionerEntry:
    """One conditioner: ``builder`` is ``"module:function"``, imported on first use (optional dependencies)."""

    name: str
    config: type[BaseModel]
    builder: str
    aligned: bool  # environments aligned to the fixpoint bond and turned about z in training (see interface)
    summary: str

    def build(self, n_features: int, n_target_types: int, options: BaseModel) -> tuple[nn.Module, nn.Module]:
        """A fresh generator and critic for ``n_features`` particle channels and ``n_target_types`` atom types."""
        module, function = self.builder.split(":")
        try:
            build = getattr(import_module(module), function)
        except ModuleNotFoundError as err:
            raise ImportError(f"the {self.name} conditioner needs {err.name}: pip install 'gdbm[all]'") from err
        return build(n_features, n_target_types, options)


CONDITIONERS: dict[str, ConditionerEntry] = {}


def register(entry: ConditionerEntry) -> ConditionerEntry:
    """Add ``entry`` to :data:`CONDITIONERS` (its name must be new)."""
    if entry.name in CONDITIONERS:
        raise ValueError(f"a conditioner named {entry.name!r} is already registered")
    CONDITIONERS[entry.name] = entry
    return entry


def conditioner(name: str) -> ConditionerEntry:
    """The registered conditioner ``name``; a clear error naming the known ones otherwise."""
    if name not in CONDITIONERS:
        raise ValueError(f"unknown conditioner {name!r}; known: {', '.join(CONDITIONERS)}")
    return CONDITIONERS[name]


register(ConditionerEntry("voxel", VoxelConfig, "gdbm.conditioners.voxel.networks:build_voxel_conditioner",
                          aligned=True, summary="DBM: Gaussian voxel grids, residual 3D CNNs"))
register(ConditionerEntry("e3nn", E3nnConfig, "gdbm.conditioners.equivariant.networks:build_e3nn_conditioner",
                          aligned=False, summary="rotation-equivariant point-cloud networks (e3nn)"))
