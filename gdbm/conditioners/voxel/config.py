"""Typed settings of the voxel conditioner (DBM's 'tiny' model by default)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: DBM writes its Gaussians as exp(-d^2 / (2 * 0.02)) with d in nm, i.e. a variance of 0.02 nm^2.
#: We use exp(-d^2 / (2 sigma^2)), so the same width is sigma = sqrt(0.02) nm ~ 0.141 nm.
DBM_SIGMA_NM = math.sqrt(0.02)


class VoxelConfig(BaseModel):
    """Grid and network sizes of the voxel generator / critic.

    ``sigma`` is the Gaussian width in nm in the convention exp(-|x - r|^2 / (2 sigma^2)).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolution: int = Field(8, ge=2, description="voxels per edge G (even: one 2x pooling step)")
    length: float = Field(1.2, gt=0, description="grid edge in nm (the grid spans +-length/2)")
    sigma: float = Field(DBM_SIGMA_NM, gt=0, description="Gaussian width in nm, exp(-d^2/(2 sigma^2))")
    channels: int = Field(64, ge=1, description="feature channels of every conv layer")
    noise_dim: int = Field(64, ge=1, description="size of the generator's latent noise")
    n_blocks: int = Field(2, ge=1, description="residual blocks per stage at the pooled (G/2)^3 resolution")
    full_blocks: int = Field(2, ge=0, description="residual blocks per stage at the full G^3 resolution "
                             "(8x the voxels of a pooled block); 0 = no fine-grid stage at all: the "
                             "pooling step embeds 2x2x2 patches of the input, the density head upsamples")
    norm: Literal["layer", "group"] = "layer"
    groups: int = Field(8, ge=1, description="groups of the group norm (norm='group' only)")
    negative_slope: float = Field(0.2, ge=0, description="LeakyReLU slope")

    @model_validator(mode="after")
    def _check(self) -> "VoxelConfig":
        if self.resolution % 2:
            raise ValueError(f"resolution must be even for the 2x pooling step, got {self.resolution}")
        if self.norm == "group" and self.channels % self.groups:
            raise ValueError(f"channels ({self.channels}) must be divisible by groups ({self.groups})")
        return self
