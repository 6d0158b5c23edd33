"""Residual 3D-CNN generator and critic on voxelised environments (thesis Appendix A.1).

Both implement the protocols of :mod:`gdbm.conditioners.interface`: callers pass particles and positions;
voxelisation happens in here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gdbm.conditioners.interface import Particles
from gdbm.conditioners.voxel.blocks import ConvNormAct, DenseToGrid, DensityHead, Norm, Resample3d, ResStack
from gdbm.conditioners.voxel.config import VoxelConfig
from gdbm.conditioners.voxel.grid import VoxelGrid


def encoder_layers(in_channels: int, channels: int, n_blocks: int, full_blocks: int, **kw) -> nn.Sequential:
    """Input densities ``[B, in, G, G, G]`` -> features ``[B, C, G/2, G/2, G/2]``.

    With ``full_blocks > 0`` (DBM's layout): a 3x3x3 stem and residual blocks at G^3, then the
    pooling step. With ``full_blocks = 0``: the pooling step acts on the input directly (a
    learned 2x2x2 patch embedding), which keeps every convolution on the 8x smaller pooled grid.
    """
    fine = [ConvNormAct(in_channels, channels, 3, **kw), ResStack(channels, channels, full_blocks, **kw),
            Resample3d(channels, channels, "down", **kw)] if full_blocks else [
        Resample3d(in_channels, channels, "down", **kw)]
    return nn.Sequential(*fine, ResStack(channels, channels, n_blocks, **kw))


class VoxelGenerator(nn.Module):
    """Environment densities + atom type + noise -> a density over voxels -> a position (Eq. 4.11).

    Encoder: :func:`encoder_layers` (full-resolution stage, one pooling step, ``n_blocks``
    residual blocks at (G/2)^3). Noise and target type are concatenated to this low-resolution
    embedding as extra channels (a dense layer reshaped onto the (G/2)^3 grid). Decoder:
    ``n_blocks`` residual blocks, one upsampling step, ``full_blocks`` residual blocks, a softmax
    density head; the density is collapsed to its weighted mean. With ``full_blocks=0`` the
    upsampling step is the density head itself (a transposed convolution to one channel), so
    nothing but the input and output lives on the fine grid.
    """

    aligned = True  # a grid is not rotation-equivariant: environments come aligned and turned about z

    def __init__(self, in_channels: int, n_types: int, noise_dim: int, channels: int, grid: VoxelGrid,
                 n_blocks: int = 2, full_blocks: int = 2, norm: Norm = "layer", groups: int = 8,
                 negative_slope: float = 0.2) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.grid = grid
        kw = dict(norm=norm, groups=groups, negative_slope=negative_slope)
        self.encoder = encoder_layers(in_channels, channels, n_blocks, full_blocks, **kw)
        self.latent = DenseToGrid(noise_dim + n_types, channels, grid.resolution // 2)
        fine = [Resample3d(channels, channels, "up", **kw), ResStack(channels, channels, full_blocks, **kw),
                DensityHead(channels)] if full_blocks else [DensityHead(channels, upsample=True)]
        self.decoder = nn.Sequential(ResStack(2 * channels, channels, n_blocks, **kw), *fine)
        self.memory_format = torch.contiguous_format

    def channels_last(self) -> "VoxelGenerator":
        """Weights and activations in channels-last order (NDHWC), in place; the values do not change.

        oneDNN's bfloat16 convolutions want it: on a Xeon with AMX, a 32-channel 3x3x3 convolution
        of 256 8^3 grids took 6 ms channels-last in bfloat16, 36 ms in the default order, 88 ms in
        float32 (docs/generator-diagnosis.md section 11). The sampler switches it on with bfloat16.
        """
        self.memory_format = torch.channels_last_3d
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
                module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
        return self

    def density(self, particles: Particles, target_type: Tensor, noise: Tensor) -> Tensor:
        """The generated density ``[B, 1, G, G, G]`` (non-negative, sums to one per sample)."""
        env = self.grid.densities(particles).contiguous(memory_format=self.memory_format)  # [B, F, G, G, G]
        embedding = self.encoder(env)  # [B, C, G/2, G/2, G/2]
        latent = self.latent(torch.cat([noise, target_type.to(noise.dtype)], -1))  # [B, C, G/2, G/2, G/2]
        joined = torch.cat([embedding, latent.contiguous(memory_format=self.memory_format)], 1)  # [B, 2C, G/2, G/2, G/2]
        return self.decoder(joined)  # [B, 1, G, G, G]

    def forward(self, particles: Particles, target_type: Tensor, noise: Tensor) -> Tensor:
        """``target_type`` ``[B, T]`` one-hot, ``noise`` ``[B, noise_dim]`` -> position ``[B, 3]`` (nm)."""
        return self.grid.collapse(self.density(particles, target_type, noise))


class VoxelCritic(nn.Module):
    """Environment densities + candidate atom density + target type -> Wasserstein score ``[B]``.

    The target type enters as constant input channels so that every layer can condition on it
    (joined only at a linear head it could add no more than a per-type offset to the score).
    :func:`encoder_layers` (full-resolution stage, one pooling step, ``n_blocks`` residual blocks at
    (G/2)^3), then a dense layer on the flattened features. The candidate is drawn with the grid's Gaussian, so the score
    is differentiable in ``position`` (for the gradient penalty).
    """

    def __init__(self, in_channels: int, n_types: int, channels: int, grid: VoxelGrid, n_blocks: int = 2,
                 full_blocks: int = 2, norm: Norm = "layer", groups: int = 8, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.grid = grid
        kw = dict(norm=norm, groups=groups, negative_slope=negative_slope)
        self.body = encoder_layers(in_channels + 1 + n_types, channels, n_blocks, full_blocks, **kw)
        self.head = nn.Linear(channels * (grid.resolution // 2) ** 3, 1)

    def forward(self, particles: Particles, target_type: Tensor, position: Tensor) -> Tensor:
        """``target_type`` ``[B, T]`` one-hot, ``position`` ``[B, 3]`` nm -> score ``[B]``."""
        env = self.grid.densities(particles)  # [B, F, G, G, G]
        candidate = self.grid.density_of(position).to(env.dtype)  # [B, 1, G, G, G]
        types = target_type.to(env.dtype)[:, :, None, None, None].expand(-1, -1, *env.shape[2:])  # [B, T, G, G, G]
        features = self.body(torch.cat([env, candidate, types], 1))  # [B, C, G/2, G/2, G/2]
        return self.head(features.flatten(1)).squeeze(-1)  # [B]


def build_voxel_conditioner(n_features: int, n_types: int,
                            config: VoxelConfig | None = None) -> tuple[VoxelGenerator, VoxelCritic]:
    """A generator and a critic for ``n_features`` particle channels and ``n_types`` atom types."""
    cfg = config or VoxelConfig()
    kw = dict(n_blocks=cfg.n_blocks, full_blocks=cfg.full_blocks, norm=cfg.norm, groups=cfg.groups, negative_slope=cfg.negative_slope)
    generator = VoxelGenerator(n_features, n_types, cfg.noise_dim, cfg.channels,
                               VoxelGrid(cfg.resolution, cfg.length, cfg.sigma), **kw)
    critic = VoxelCritic(n_features, n_types, cfg.channels, VoxelGrid(cfg.resolution, cfg.length, cfg.sigma), **kw)
    return generator, critic
