"""3D convolutional building blocks of the voxel generator and critic.

Normalisation is per sample only (WGAN-GP's gradient penalty assumes the critic treats samples
independently, so no batch norm): ``"layer"`` normalises each sample over (C, G, G, G), as the
thesis' layer norm, with a per-channel affine (``GroupNorm(1, C)``, which unlike ``LayerNorm([C, G,
G, G])`` keeps the convolutions' translation symmetry and does not tie weights to the grid size);
``"group"`` normalises over groups of channels.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Norm = Literal["layer", "group"]


def norm3d(kind: Norm, channels: int, groups: int = 8) -> nn.GroupNorm:
    """A per-sample norm over ``[B, C, G, G, G]``: layer norm (one group) or group norm."""
    return nn.GroupNorm(1 if kind == "layer" else groups, channels)


class ConvNormAct(nn.Module):
    """Conv3d ('same' padding) -> norm -> LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, norm: Norm = "layer",
                 groups: int = 8, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = norm3d(norm, out_channels, groups)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class ResBlock3d(nn.Module):
    """conv-norm-LeakyReLU-conv-norm plus a skip (1x1x1 projection if channels change), then LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, norm: Norm = "layer",
                 groups: int = 8, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.first = ConvNormAct(in_channels, out_channels, kernel_size, norm, groups, negative_slope)
        self.conv = nn.Conv3d(out_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = norm3d(norm, out_channels, groups)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv3d(in_channels, out_channels, 1)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(self.conv(self.first(x)))  # [B, C_out, G, G, G]
        return self.act(h + self.skip(x))


class ResStack(nn.Sequential):
    """``n_blocks`` residual blocks at one resolution; the first maps ``in_channels`` to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, n_blocks: int, norm: Norm = "layer",
                 groups: int = 8, negative_slope: float = 0.2) -> None:
        super().__init__(*(ResBlock3d(in_channels if i == 0 else out_channels, out_channels, norm=norm,
                                      groups=groups, negative_slope=negative_slope) for i in range(n_blocks)))


class Resample3d(nn.Module):
    """Halve (2x2x2 convolution, stride 2) or double (2x2x2 transposed convolution, stride 2) the
    grid, then norm and LeakyReLU.

    A learned pooling / upsampling layer. Kernel size equal to the stride means every output
    voxel has exactly one input voxel behind it: no overlap, so no checkerboard artefacts, and
    8x fewer multiply-adds than a 3x3x3 convolution on the fine grid (where most time went).
    """

    def __init__(self, in_channels: int, out_channels: int, direction: Literal["down", "up"],
                 norm: Norm = "layer", groups: int = 8, negative_slope: float = 0.2) -> None:
        super().__init__()
        conv = nn.Conv3d if direction == "down" else nn.ConvTranspose3d
        self.conv = conv(in_channels, out_channels, 2, stride=2)
        self.norm = norm3d(norm, out_channels, groups)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))  # [B, C_out, G/2 or 2G, ...]


class DenseToGrid(nn.Module):
    """A vector per sample -> a ``channels`` x ``size``^3 feature grid (dense layer, reshaped).

    Lets a latent vector (noise, atom type) say something different at every voxel of the
    low-resolution embedding it is concatenated to.
    """

    def __init__(self, in_features: int, channels: int, size: int) -> None:
        super().__init__()
        self.shape = (channels, size, size, size)
        self.linear = nn.Linear(in_features, channels * size**3)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(x.shape[0], *self.shape)  # [B, C, S, S, S]


class DensityHead(nn.Module):
    """Features -> a non-negative density that sums to one: logits per voxel, softmax over voxels.

    The logits come from a 1x1x1 convolution, or with ``upsample`` from a 2x2x2 transposed
    convolution with stride 2 (features on the pooled grid, density on the full one). A softmax
    (rather than ReLU + eps) never goes dead: every voxel keeps a gradient, and an all-negative
    output cannot freeze the atom at the grid centre. Its normaliser is exactly one. The softmax
    runs in at least float32, also under bfloat16 autocast.
    """

    def __init__(self, in_channels: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose3d(in_channels, 1, 2, stride=2) if upsample else nn.Conv3d(in_channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        logits = self._upsampled(x) if isinstance(self.conv, nn.ConvTranspose3d) else self.conv(x)  # [B, 1, G, G, G]
        flat = logits.flatten(1)
        return torch.softmax(flat, -1, dtype=torch.promote_types(flat.dtype, torch.float32)).view(logits.shape)

    def _upsampled(self, x: Tensor) -> Tensor:
        """The transposed convolution (kernel 2, stride 2, one output channel) as one matmul: every input
        voxel writes its own 2x2x2 block. The same numbers as ``self.conv(x)``; on a CPU about 4x faster
        for the generator's small grids, where the library call was 5% of a forward pass."""
        b, c, g = x.shape[0], x.shape[1], x.shape[2]
        weight = self.conv.weight.view(c, 8).to(x.dtype)  # [C, 2*2*2]
        blocks = x.flatten(2).transpose(1, 2) @ weight  # [B, g^3, 8]
        blocks = blocks.view(b, g, g, g, 2, 2, 2).permute(0, 1, 4, 2, 5, 3, 6)  # [B, g, 2, g, 2, g, 2]
        return (blocks.reshape(b, 1, 2 * g, 2 * g, 2 * g) + self.conv.bias.to(x.dtype)).contiguous()
