"""A padded batch of local environments as particle sets: what a conditioner reads (:mod:`gdbm.conditioners.interface`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Particles:
    """A padded batch of particle sets in local frames."""

    positions: Tensor  # [B, P, 3] float32, nm, local frame
    features: Tensor  # [B, P, F] float32, one-hot (or multi-hot) channels
    mask: Tensor  # [B, P] bool, True = present
    origin: Tensor | None = None  # [B, 3] the centre bead's position; None = the local frame's origin

    def to(self, device: torch.device | str) -> "Particles":
        return Particles(self.positions.to(device), self.features.to(device), self.mask.to(device),
                         None if self.origin is None else self.origin.to(device))

    def centre(self) -> Tensor:
        """``[B, 3]`` where the environment is centred (explicit so that a translated input stays centred)."""
        return self.positions.new_zeros(len(self.positions), 3) if self.origin is None else self.origin

    def with_particle(self, position: Tensor, features: Tensor) -> "Particles":
        """The set with one more particle per environment (``[B, 3]``, ``[B, F]``), kept differentiable."""
        return Particles(torch.cat([self.positions, position.unsqueeze(1)], 1),
                         torch.cat([self.features, features.unsqueeze(1)], 1),
                         torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], 1), self.origin)
