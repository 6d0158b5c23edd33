"""The conditional VAE of thesis Sec. 8.1.1: voxel grids with one channel per particle.

Condition (current CG frame + previous AA frame) -> features on the half-resolution grid;
posterior encoder (current AA frame + condition) -> ``mu, logvar`` of a latent code ``z``;
decoder (condition features + ``z`` spread over the grid) -> one density per atom (softmax
over voxels), whose density-weighted mean is the atom's position (Eq. 4.11). All in the local
frame of the current CG frame (:mod:`gdbm.temporal.system`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gdbm.temporal.config import GridConfig, NetworkConfig
from gdbm.conditioners.voxel.blocks import ConvNormAct, DenseToGrid, Resample3d, ResStack
from gdbm.conditioners.voxel.grid import VoxelGrid


class ParticleGrid(nn.Module):
    """Positions ``[B, P, 3]`` -> per-particle Gaussian densities ``[B, P, G, G, G]`` (peak 1)."""

    def __init__(self, grid: GridConfig) -> None:
        super().__init__()
        self.grid = VoxelGrid(grid.resolution, grid.length, grid.sigma)

    def forward(self, positions: Tensor) -> Tensor:
        prof = self.grid.profiles(positions)  # [B, P, 3, G]
        return torch.einsum("bpi,bpj,bpk->bpijk", prof[:, :, 0], prof[:, :, 1], prof[:, :, 2])

    def collapse(self, density: Tensor) -> Tensor:
        """Density-weighted mean of the voxel centres: ``[B, P, G, G, G] -> [B, P, 3]``."""
        return density.flatten(2) @ self.grid.points.view(-1, 3)


class TemporalVAE(nn.Module):
    """``forward(cg, prev, target) -> (positions, densities, mu, logvar)``; ``decode(cg, prev, z)`` samples."""

    def __init__(self, n_atoms: int, n_beads: int, grid: GridConfig, net: NetworkConfig) -> None:
        super().__init__()
        c, half = net.channels, grid.resolution // 2
        self.latent_dim = net.latent_dim
        self.voxels = ParticleGrid(grid)
        self.condition = nn.Sequential(ConvNormAct(n_beads + n_atoms, c // 2), Resample3d(c // 2, c, "down"),
                                       ResStack(c, c, net.n_blocks))
        self.posterior = nn.Sequential(ConvNormAct(n_atoms + c, c), ResStack(c, c, net.n_blocks),
                                       Resample3d(c, c, "down"), nn.Flatten(),
                                       nn.Linear(c * (half // 2) ** 3, 2 * net.latent_dim))
        self.latent = DenseToGrid(net.latent_dim, c, half)
        self.decoder = nn.Sequential(ResStack(2 * c, c, net.n_blocks), Resample3d(c, c, "up"),
                                     nn.Conv3d(c, n_atoms, 1))
        self.target_pool = nn.AvgPool3d(2)
        # sharp densities need logits that differ by tens; a learned log-scale gets there in a few hundred
        # Adam steps, where the weights of the last convolution alone grow only ~lr per step
        self.logit_scale = nn.Parameter(torch.zeros(()))
        self.prev_prior = net.prev_prior

    def features(self, cg: Tensor, prev: Tensor) -> Tensor:
        """Condition features ``[B, C, G/2, G/2, G/2]`` of CG ``[B, N, 3]`` and previous AA ``[B, n, 3]``."""
        return self.condition(torch.cat([self.voxels(cg), self.voxels(prev)], 1))

    def encode(self, features: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``mu, logvar`` ``[B, d]`` of the current AA frame ``[B, n, 3]``."""
        dens = self.target_pool(self.voxels(target))  # [B, n, G/2, G/2, G/2]
        mu, logvar = self.posterior(torch.cat([dens, features], 1)).chunk(2, -1)
        return mu, logvar.clamp(-10, 5)

    def decode_features(self, features: Tensor, z: Tensor, prev: Tensor) -> tuple[Tensor, Tensor]:
        """Positions ``[B, n, 3]`` and densities ``[B, n, G, G, G]`` (each sums to 1) from features, ``z``
        and the previous frame ``prev`` ``[B, n, 3]`` (a Gaussian prior on the logits, if configured)."""
        logits = self.decoder(torch.cat([features, self.latent(z)], 1))  # [B, n, G, G, G]
        flat = logits.flatten(2) * self.logit_scale.exp()  # [B, n, G^3]
        if self.prev_prior > 0:  # each atom's density starts as a Gaussian around where it was
            points = self.voxels.grid.points.view(-1, 3)  # [G^3, 3]
            flat = flat - (points - prev.unsqueeze(2)).square().sum(-1) / (2 * self.prev_prior**2)
        dens = torch.softmax(flat, -1).view(logits.shape)
        return self.voxels.collapse(dens), dens

    def decode(self, cg: Tensor, prev: Tensor, z: Tensor) -> Tensor:
        """Generated positions ``[B, n, 3]`` for latent codes ``z`` ``[B, d]``."""
        return self.decode_features(self.features(cg, prev), z, prev)[0]

    def forward(self, cg: Tensor, prev: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        feats = self.features(cg, prev)
        mu, logvar = self.encode(feats, target)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        positions, dens = self.decode_features(feats, z, prev)
        return positions, dens, mu, logvar
