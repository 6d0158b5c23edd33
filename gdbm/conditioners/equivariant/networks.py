"""E(3)-equivariant generator and O(3)-invariant critic on point-cloud environments (thesis Sec. 9.8).

Both implement the protocols of :mod:`gdbm.conditioners.interface` and read the same particles as the voxel
CNN (one-hot kind, type and interaction channel relative to the atom being placed), as points.
Symmetry, for every rotation or reflection ``R`` (any orthogonal matrix) and translation ``t``
of the whole input (particle positions and the centre bead, ``Particles.origin``):

- generator: ``G(R x + t, R v, s) = R G(x, v, s) + t`` for noise made of invariant scalars ``s``
  and random-direction vectors ``v`` (isotropic Gaussians). ``R v`` has the distribution of
  ``v``, so the *distribution* of generated positions is equivariant, and an environment with a
  symmetry (an axis, a mirror plane) still gets atoms off that symmetry, in directions ``v`` picks;
- critic: ``D(R x + t, R y) = D(x, y)``, invariant (to float precision).

So neither needs the local frame aligned to the fixpoint bond nor turned in training
(``aligned = False``).
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import Tensor, nn

from gdbm.conditioners.interface import Particles
from gdbm.conditioners.equivariant.blocks import InvariantReadout, ProductBasis, QueryConvolution, VectorReadout
from gdbm.conditioners.equivariant.config import E3nnConfig


class ParticleEmbedding(nn.Module):
    """Particles (+ the centre bead as one more, flagged particle) -> ``C`` invariant scalars each,
    conditioned on the type of the atom being placed."""

    def __init__(self, n_features: int, n_types: int, hidden: int, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(n_features + 1 + n_types, hidden), nn.SiLU(), nn.Linear(hidden, channels))

    def forward(self, particles: Particles, target_type: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Positions ``[B, P + 1, 3]``, scalars ``[B, P + 1, C]`` and mask ``[B, P + 1]``; the centre is last."""
        b, p, _ = particles.features.shape
        centre = particles.centre().to(particles.positions.dtype)  # [B, 3]
        positions = torch.cat([particles.positions, centre.unsqueeze(1)], 1)  # [B, P + 1, 3]
        flag = torch.zeros(b, p + 1, 1, dtype=particles.features.dtype, device=centre.device)
        flag[:, -1] = 1.0
        features = torch.cat([nn.functional.pad(particles.features, (0, 0, 0, 1)), flag,
                              target_type.to(flag.dtype).unsqueeze(1).expand(-1, p + 1, -1)], -1)  # [B, P + 1, F']
        mask = torch.cat([particles.mask, torch.ones_like(particles.mask[:, :1])], 1)  # [B, P + 1]
        return positions, self.mlp(features) * mask.unsqueeze(-1), mask


class QueryEncoder(nn.Module):
    """What one query point sees: the environment convolved onto it plus the query's own invariant
    inputs, raised to higher body order by a :class:`ProductBasis`."""

    def __init__(self, config: E3nnConfig, n_inputs: int, irreps_out: o3.Irreps, neighbours: float) -> None:
        super().__init__()
        c = config
        self.conv = QueryConvolution(c.channels, c.lmax, c.n_radial, c.r_max, c.radial_hidden, neighbours,
                                     c.max_neighbours)
        self.inputs = nn.Sequential(nn.Linear(n_inputs, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.channels))
        self.lift = o3.Linear(f"{c.channels}x0e", self.conv.irreps_out)
        self.product = ProductBasis(self.conv.irreps_out, irreps_out, c.correlation)

    def forward(self, query: Tensor, positions: Tensor, scalars: Tensor, mask: Tensor, inputs: Tensor) -> Tensor:
        """``query [B, 3]``, embedded particles (:class:`ParticleEmbedding`), ``inputs [B, n_inputs]`` -> ``[B, irreps_out]``."""
        x = self.conv(query, positions, scalars, mask) + self.lift(self.inputs(inputs))  # [B, irreps_conv]
        return self.product(x)


class NoiseDirections(nn.Module):
    """Random-direction noise vectors ``[B, V, 3]`` -> a displacement ``[B, 3]`` shaped by the features:
    ``gain * TP(features, v)`` (fully connected, 0e (x) 1o and 1o (x) 1o paths to 1o, so the size and the
    orientation relative to the environment are learned). ``gain`` starts at zero: the warm-up
    regression learns the mean position first, the adversarial game then opens up the spread."""

    def __init__(self, irreps_features: o3.Irreps, n_vectors: int) -> None:
        super().__init__()
        self.n_vectors = n_vectors
        self.tp = o3.FullyConnectedTensorProduct(irreps_features, f"{n_vectors}x1o", "1x1o")
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, features: Tensor, vectors: Tensor) -> Tensor:
        return self.gain * self.tp(features, vectors.flatten(1))  # [B, 3]


class E3nnGenerator(nn.Module):
    """Particles + atom type + noise -> position ``[B, 3]`` by equivariant refinement of a query point.

    The query starts on the centre bead; each of ``refinements`` steps looks at the environment
    from the current query (:class:`QueryEncoder`, weights shared between steps, the step index an
    input) and moves it by an equivariant displacement (:class:`VectorReadout`, plus
    :class:`NoiseDirections` of the noise vectors). Early steps see the whole neighbourhood; later
    ones, near the answer, resolve the bonded neighbours finely. Noise ``[B, noise_dim]``:
    ``noise_scalars`` invariant scalars (inputs of every step), then ``noise_vectors`` vectors.
    """

    aligned = False  # equivariant: environments need no alignment and no turns

    def __init__(self, n_features: int, n_types: int, config: E3nnConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or E3nnConfig()
        self.noise_dim = c.noise_dim
        self.embed = ParticleEmbedding(n_features, n_types, c.hidden, c.channels)
        self.readout = VectorReadout(c.hidden)
        self.encoder = QueryEncoder(c, n_types + c.noise_scalars + c.refinements, self.readout.irreps_in,
                                    c.neighbours)
        self.noise = NoiseDirections(self.readout.irreps_in, c.noise_vectors) if c.noise_vectors else None

    def forward(self, particles: Particles, target_type: Tensor, noise: Tensor) -> Tensor:
        """``target_type`` ``[B, T]`` one-hot, ``noise`` ``[B, noise_dim]`` -> position ``[B, 3]`` (nm).

        Always float32: e3nn's tensor products mix dtypes under autocast, so autocast is switched off.
        """
        with torch.autocast(particles.positions.device.type, enabled=False):
            return self._forward(particles, target_type, noise)

    def _forward(self, particles: Particles, target_type: Tensor, noise: Tensor) -> Tensor:
        c = self.config
        positions, scalars, mask = self.embed(particles, target_type)
        dtype = positions.dtype
        scalar_noise, vector_noise = noise.to(dtype).split([c.noise_scalars, 3 * c.noise_vectors], -1)
        vectors = vector_noise.view(len(noise), c.noise_vectors, 3)  # [B, V, 3]
        query = particles.centre().to(dtype)  # [B, 3]
        steps = torch.eye(c.refinements, dtype=dtype, device=query.device)
        for k in range(c.refinements):  # a few refinements, not a loop over atoms
            inputs = torch.cat([target_type.to(dtype), scalar_noise, steps[k].expand(len(query), -1)], -1)
            features = self.encoder(query, positions, scalars, mask, inputs)  # [B, readout irreps]
            step = self.readout(features) + (self.noise(features, vectors) if self.noise is not None else 0.0)
            query = query + c.step_scale * step  # [B, 3]
        return query


class E3nnCritic(nn.Module):
    """Particles + atom type + candidate position -> O(3)-invariant Wasserstein score ``[B]``.

    The environment is seen from the candidate (:class:`QueryEncoder`: convolution, product basis
    up to ``correlation``) and read out by :class:`InvariantReadout`; differentiable in the position.
    """

    def __init__(self, n_features: int, n_types: int, config: E3nnConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or E3nnConfig()
        self.embed = ParticleEmbedding(n_features, n_types, c.hidden, c.channels)
        self.readout = InvariantReadout(c.hidden, c.hidden // 2)
        self.encoder = QueryEncoder(c, n_types, self.readout.irreps_in, c.critic_neighbours)

    def forward(self, particles: Particles, target_type: Tensor, position: Tensor) -> Tensor:
        """``target_type`` ``[B, T]`` one-hot, ``position`` ``[B, 3]`` nm -> score ``[B]``."""
        positions, scalars, mask = self.embed(particles, target_type)
        features = self.encoder(position.to(positions.dtype), positions, scalars, mask, target_type.to(positions.dtype))
        return self.readout(features)


def build_e3nn_conditioner(n_features: int, n_types: int,
                           config: E3nnConfig | None = None) -> tuple[E3nnGenerator, E3nnCritic]:
    """A generator and a critic for ``n_features`` particle channels and ``n_types`` atom types."""
    return E3nnGenerator(n_features, n_types, config), E3nnCritic(n_features, n_types, config)
