"""The one interface between the trainer / sampler and a conditioner (voxel CNN, e3nn, ...).

A conditioner sees one *step* of an autoregressive reconstruction for a batch of ``B``
local environments: a padded set of ``P`` particles (context atoms, beads and the atoms
already placed), each with a one-hot feature vector that says what it is *relative to the
atom being placed* (its type channel and its interaction channel: bond, angle, dihedral,
non-bonded), plus the type of the atom to place. Positions are in the local frame of the
current bead (nm): centred on it and, for conditioners that declare ``aligned = True`` (the
voxel CNN, which must learn rotations), rotated so that the bond to its fixpoint bead lies on
+z and turned by random angles about z in training. Rotation-equivariant conditioners declare
``aligned = False`` and get unrotated environments.

Generator: ``(particles, target_type, noise) -> position [B, 3]``.
Critic:    ``(particles, target_type, position [B, 3]) -> score [B]``.

Nothing else is shared; a new conditioner is one module implementing these two calls.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from gdbm.data.particles import Particles

__all__ = ["Critic", "Generator", "Particles"]


class Generator(Protocol):
    """Places one atom per environment."""

    noise_dim: int
    aligned: bool  # True: wants environments aligned to the fixpoint bond and turned about z in training

    def __call__(self, particles: Particles, target_type: Tensor, noise: Tensor) -> Tensor:
        """``target_type``: ``[B, T]`` one-hot; ``noise``: ``[B, noise_dim]``; returns ``[B, 3]`` nm."""
        ...


class Critic(Protocol):
    """Scores how plausible an atom position is given its environment (Wasserstein critic)."""

    def __call__(self, particles: Particles, target_type: Tensor, position: Tensor) -> Tensor:
        """``position``: ``[B, 3]`` nm in the local frame; returns ``[B]``."""
        ...
