"""Building blocks of the e3nn conditioner, each usable alone.

Everything looks at a padded particle set ``[B, P, ...]`` from one query point per sample
``[B, 3]`` (dense over the pad: a local environment holds ~150 particles, so no edge lists are
needed). Features are e3nn irreps with parity (O(3): rotations and reflections); the l = 1
irreps are Cartesian vectors in (x, y, z) order, so ``Irreps('1o').D_from_matrix(R) == R``.
"""

from __future__ import annotations

import math

import torch
from e3nn import nn as enn
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from torch import Tensor, nn

#: nm; regularises |r| at r = 0 (a particle on the query point) so that every gradient stays finite
EPS_NM = 1e-3


def natural_irreps(channels: int, lmax: int) -> o3.Irreps:
    """``C x 0e + C x 1o + C x 2e + ...``: what spherical harmonics of polar vectors span."""
    return o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])


def all_irreps(channels: int, lmax: int) -> o3.Irreps:
    """``C x 0e + C x 0o + C x 1o + C x 1e + ...``: both parities (products make pseudo-scalars, axial vectors)."""
    return o3.Irreps([(channels, (l, p)) for l in range(lmax + 1) for p in ((-1) ** l, -(-1) ** l)])


class RadialBasis(nn.Module):
    """Distances ``[...]`` -> ``[..., n]`` Gaussians on [0, r_max] times a cosine envelope (zero, with
    zero slope, at ``r_max``), so a particle crossing ``r_max`` changes nothing abruptly. Scaled by
    sqrt(n) (as in e3nn's examples): about two Gaussians are non-zero at any distance, and the
    radial MLP after it expects inputs of unit second moment."""

    def __init__(self, n: int, r_max: float) -> None:
        super().__init__()
        self.n, self.r_max = n, r_max

    def forward(self, d: Tensor) -> Tensor:
        basis = soft_one_hot_linspace(d, 0.0, self.r_max, self.n, basis="gaussian", cutoff=False)  # [..., n]
        envelope = torch.where(d < self.r_max, 0.5 * (torch.cos(math.pi * d / self.r_max) + 1.0), 0.0)
        return basis * (envelope * self.n**0.5).unsqueeze(-1)


class QueryConvolution(nn.Module):
    """Particles' scalar embeddings -> equivariant features at a query point (one e3nn convolution).

    ``A_q = 1/N sum_p TP(h_p, Y(r_p - q)) with weights R(|r_p - q|)``: a channel-wise ('uvu')
    tensor product of each particle's ``C x 0e`` embedding with the spherical harmonics of its
    direction from ``q``, weighted per channel and degree by an MLP of the distance (NequIP /
    MACE's interaction, with the query as the only receiver). Output: :func:`natural_irreps`.
    With ``max_neighbours`` only that many particles nearest to the query are convolved (a gather
    before the tensor product: its cost is linear in them); exact when no more lie within ``r_max``.
    """

    def __init__(self, channels: int, lmax: int, n_radial: int, r_max: float, radial_hidden: int,
                 neighbours: float, max_neighbours: int | None = None) -> None:
        super().__init__()
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        self.irreps_out = natural_irreps(channels, lmax)
        self.radial = RadialBasis(n_radial, r_max)
        self.tp = o3.TensorProduct(f"{channels}x0e", self.irreps_sh, self.irreps_out,
                                   [(0, l, l, "uvu", True) for l in range(lmax + 1)],
                                   shared_weights=False, internal_weights=False)
        self.weights = enn.FullyConnectedNet([n_radial, radial_hidden, self.tp.weight_numel], torch.nn.functional.silu)
        self.neighbours, self.max_neighbours = neighbours, max_neighbours

    def forward(self, query: Tensor, positions: Tensor, scalars: Tensor, mask: Tensor) -> Tensor:
        """``query [B, 3]``, ``positions [B, P, 3]``, ``scalars [B, P, C]``, ``mask [B, P]`` -> ``[B, irreps_out]``."""
        r = positions - query.unsqueeze(1)  # [B, P, 3]
        d = torch.sqrt(r.square().sum(-1) + EPS_NM**2)  # [B, P]
        if self.max_neighbours is not None and self.max_neighbours < d.shape[1]:
            nearest = d.masked_fill(~mask, torch.inf).topk(self.max_neighbours, -1, largest=False).indices  # [B, K]
            r, d = r.gather(1, nearest.unsqueeze(-1).expand(-1, -1, 3)), d.gather(1, nearest)
            scalars = scalars.gather(1, nearest.unsqueeze(-1).expand(-1, -1, scalars.shape[-1]))
            mask = mask.gather(1, nearest)
        sh = o3.spherical_harmonics(self.irreps_sh, r / d.unsqueeze(-1), normalize=False,
                                    normalization="component")  # [B, P, sh]
        radial = self.radial(d) * mask.unsqueeze(-1)  # [B, P, n_radial], padding contributes nothing
        messages = self.tp(scalars, sh, self.weights(radial))  # [B, P, irreps_out]
        return (messages * mask.unsqueeze(-1)).sum(1) / self.neighbours  # [B, irreps_out]


def channelwise_product(irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, keep: set[o3.Irrep]) -> o3.TensorProduct:
    """A weighted ('uuu') tensor product of two inputs with equal channel counts: channel c of one with
    channel c of the other, every pair of degrees, every output irrep in ``keep``."""
    out, instructions = [], []
    for i1, (mul, ir1) in enumerate(irreps_in1):
        for i2, (mul2, ir2) in enumerate(irreps_in2):
            if mul != mul2:
                raise ValueError(f"channel counts differ: {irreps_in1} vs {irreps_in2}")
            for ir in ir1 * ir2:
                if ir in keep:
                    instructions.append((i1, i2, len(out), "uuu", True))
                    out.append((mul, ir))
    return o3.TensorProduct(irreps_in1, irreps_in2, o3.Irreps(out), instructions)


class ProductBasis(nn.Module):
    """Features ``x`` -> polynomials of ``x`` up to degree ``correlation``, mixed linearly to ``irreps_out``.

    ``y_1 = x``, ``y_{k+1} = TP(Linear(y_k), x)`` (channel-wise, :func:`channelwise_product`), output
    ``Linear([y_1, ..., y_correlation])``: MACE's higher-body-order features at one node. Degree 2
    gives angles between directions from the query, degree 3 triple products (the sign of a dihedral).
    The last product computes only the irreps of ``irreps_out`` (a linear map cannot reach others).
    """

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, correlation: int) -> None:
        super().__init__()
        channels, lmax = irreps_in[0].mul, irreps_in.lmax
        hidden = all_irreps(channels, lmax)
        self.mix = nn.ModuleList()
        self.products = nn.ModuleList()
        irreps_y, parts = o3.Irreps(irreps_in), [o3.Irreps(irreps_in)]
        every, needed = {ir for _, ir in hidden}, {ir for _, ir in o3.Irreps(irreps_out)}
        for k in range(correlation - 1):
            self.mix.append(o3.Linear(irreps_y, hidden))
            self.products.append(channelwise_product(hidden, irreps_in, needed if k == correlation - 2 else every))
            irreps_y = self.products[-1].irreps_out
            parts.append(irreps_y)
        self.out = o3.Linear(sum(parts, o3.Irreps()), irreps_out)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, irreps_in] -> [B, irreps_out]``."""
        y, parts = x, [x]
        for mix, product in zip(self.mix, self.products):
            y = product(mix(y), x)  # [B, irreps of degree k + 1]
            parts.append(y)
        return self.out(torch.cat(parts, -1))


class VectorReadout(nn.Module):
    """Features -> one equivariant vector ``[B, 3]`` (1o): a gated layer (SiLU scalars, sigmoid gates on
    ``hidden`` vectors), then a linear map."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(f"{2 * hidden}x0e + {hidden}x1o")
        self.gate = enn.Gate(f"{hidden}x0e", [torch.nn.functional.silu], f"{hidden}x0e", [torch.sigmoid],
                             f"{hidden}x1o")
        self.out = o3.Linear(self.gate.irreps_out, "1x1o")

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.gate(x))  # [B, 3]


class InvariantReadout(nn.Module):
    """Features ``H x 0e + K x 0o`` -> one O(3)-invariant number ``[B]``.

    Pseudo-scalars change sign under reflections, so they enter only through their pairwise
    products (``K x 0o`` (x) ``K x 0o`` -> ``K x 0e``): the sign of one *relative to* another (is
    the candidate on the same side as the environment's handedness) survives, the absolute one not.
    """

    def __init__(self, hidden: int, pseudo: int) -> None:
        super().__init__()
        self.hidden, self.pseudo = hidden, pseudo
        self.irreps_in = o3.Irreps(f"{hidden}x0e + {pseudo}x0o")
        self.pairs = o3.FullyConnectedTensorProduct(f"{pseudo}x0o", f"{pseudo}x0o", f"{pseudo}x0e")
        self.mlp = nn.Sequential(nn.Linear(hidden + pseudo, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        s, t = x.split([self.hidden, self.pseudo], -1)  # [B, H], [B, K]
        return self.mlp(torch.cat([s, self.pairs(t, t)], -1)).squeeze(-1)  # [B]
