"""Gaussian voxelisation of local environments (thesis Eq. 4.3, 4.9-4.10) and its inverse (Eq. 4.11)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gdbm.conditioners.interface import Particles


class VoxelGrid(nn.Module):
    """A cubic grid of ``resolution``^3 voxel centres spanning ``[-length/2, length/2]`` in each axis.

    Centres sit at ``-length/2 + (i + 1/2) * length/resolution`` so the grid is symmetric about the
    origin (the current bead): a 90 degree rotation about any axis maps grid points onto grid points.
    A particle at ``r`` is the density ``exp(-|x - r|^2 / (2 sigma^2))`` (``sigma`` in nm). Density
    tensors index space as ``[..., i_x, i_y, i_z]``. The Gaussian factorises over the axes, so every
    density is built from per-axis profiles ``[..., 3, G]`` by outer products, never from a full
    distance grid. The coordinate buffers follow ``.to(device)`` and are not saved in state dicts
    (they are fixed by the constructor arguments).
    """

    def __init__(self, resolution: int, length: float, sigma: float) -> None:
        super().__init__()
        self.resolution = resolution
        self.length = length
        self.sigma = sigma
        spacing = length / resolution
        axis = -length / 2 + spacing * (torch.arange(resolution, dtype=torch.float32) + 0.5)  # [G]
        points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)  # [G, G, G, 3]
        self.register_buffer("axis", axis, persistent=False)
        self.register_buffer("points", points, persistent=False)

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}, length={self.length}, sigma={self.sigma}"

    def profiles(self, positions: Tensor) -> Tensor:
        """Per-axis Gaussian profiles ``exp(-(x_i - r_a)^2 / (2 sigma^2))``: ``[..., 3] -> [..., 3, G]``."""
        offsets = positions.unsqueeze(-1) - self.axis  # [..., 3, G]
        return torch.exp(-offsets.square() / (2 * self.sigma**2))

    def densities(self, particles: Particles) -> Tensor:
        """Feature-channel densities of a particle batch: ``[B, F, G, G, G]``.

        Each particle's Gaussian is added to its feature channels, weighted by its (one- or
        multi-hot) features; masked particles add nothing, whatever their padded coordinates hold.
        One batched matmul over particles of (features x x-profile) against (y-profile x z-profile).
        """
        n_batch, _, n_feat = particles.features.shape
        g = self.resolution
        mask = particles.mask.unsqueeze(-1)  # [B, P, 1]
        prof = self.profiles(particles.positions.masked_fill(~mask, 0.0))  # [B, P, 3, G]
        weights = particles.features * mask  # [B, P, F]
        fx = (weights.unsqueeze(-1) * prof[:, :, 0].unsqueeze(2)).flatten(2)  # [B, P, F*G]
        yz = (prof[:, :, 1].unsqueeze(-1) * prof[:, :, 2].unsqueeze(-2)).flatten(2)  # [B, P, G*G]
        return (fx.transpose(1, 2) @ yz).view(n_batch, n_feat, g, g, g)  # [B, F, G, G, G]

    def density_of(self, position: Tensor) -> Tensor:
        """The density of one point per sample: ``[B, 3] -> [B, 1, G, G, G]``."""
        prof = self.profiles(position)  # [B, 3, G]
        dens = torch.einsum("bi,bj,bk->bijk", prof[:, 0], prof[:, 1], prof[:, 2])  # [B, G, G, G]
        return dens.unsqueeze(1)

    def collapse(self, density: Tensor) -> Tensor:
        """Density-weighted mean of the grid points (Eq. 4.11): ``[B, 1, G, G, G] -> [B, 3]``.

        ``density`` must be non-negative (the generator's head makes it a softmax over voxels);
        the normaliser is clamped away from zero so an all-zero density gives the origin, not NaN.
        Always in float32, also under autocast: a bfloat16 mean would move atoms by ~0.002 nm.
        """
        with torch.autocast(density.device.type, enabled=False):
            weights = density.flatten(1)  # [B, G^3]
            if weights.dtype in (torch.bfloat16, torch.float16):
                weights = weights.float()
            total = weights.sum(-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)  # [B, 1]
            return (weights @ self.points.view(-1, 3).to(weights.dtype)) / total  # [B, 3]
