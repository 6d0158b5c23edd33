"""The e3nn conditioner: E(3) equivariance of the generator, invariance of the critic, symmetry breaking."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from gdbm.conditioners.interface import Particles
from gdbm.conditioners.equivariant import E3nnConfig, E3nnCritic, E3nnGenerator, QueryConvolution

B, P, F, T = 6, 40, 14, 4
CONFIG = E3nnConfig(channels=8, hidden=16, max_neighbours=24, r_max=0.6)


def random_batch(seed: int) -> tuple[Particles, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    positions = 0.35 * torch.randn(B, P, 3, generator=g)
    features = torch.nn.functional.one_hot(torch.randint(F, (B, P), generator=g), F).float()
    mask = torch.rand(B, P, generator=g) > 0.25
    target = torch.nn.functional.one_hot(torch.randint(T, (B,), generator=g), T).float()
    return Particles(positions, features, mask), target


def moved(particles: Particles, rotation: torch.Tensor, shift: torch.Tensor) -> Particles:
    """The whole input turned by ``rotation`` about the centre and translated, centre included."""
    return Particles(particles.positions @ rotation.T + shift, particles.features, particles.mask,
                     particles.centre() @ rotation.T + shift)


def turned_noise(noise: torch.Tensor, rotation: torch.Tensor, config: E3nnConfig) -> torch.Tensor:
    scalars, vectors = noise.split([config.noise_scalars, 3 * config.noise_vectors], -1)
    return torch.cat([scalars, (vectors.view(len(noise), -1, 3) @ rotation.T).flatten(1)], -1)


def transforms(seed: int, n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random orthogonal matrices, every second one improper (a reflection), with random shifts."""
    torch.manual_seed(seed)
    return [(o3.rand_matrix() * (-1) ** k, torch.randn(3)) for k in range(n)]


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    generator = E3nnGenerator(F, T, CONFIG).eval()
    generator.noise.gain.data.fill_(1.0)  # the noise directions start switched off
    return generator, E3nnCritic(F, T, CONFIG).eval()


@pytest.mark.parametrize("seed", [1, 2])
def test_generator_output_moves_with_the_input(networks, seed: int):
    generator, _ = networks
    particles, target = random_batch(seed)
    noise = torch.randn(B, generator.noise_dim, generator=torch.Generator().manual_seed(seed))
    out = generator(particles, target, noise)  # [B, 3]
    assert out.shape == (B, 3) and out.abs().max() > 1e-3
    for rotation, shift in transforms(seed):
        assert rotation.det().abs().sub(1).abs() < 1e-5
        again = generator(moved(particles, rotation, shift), target, turned_noise(noise, rotation, CONFIG))
        torch.testing.assert_close(again, out @ rotation.T + shift, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("seed", [1, 2])
def test_critic_score_is_invariant(networks, seed: int):
    _, critic = networks
    particles, target = random_batch(seed)
    position = 0.2 * torch.randn(B, 3, generator=torch.Generator().manual_seed(seed))
    score = critic(particles, target, position)
    assert score.shape == (B,)
    assert (critic(particles, target, position + 0.05) - score).abs().max() > 0  # it sees the position
    for rotation, shift in transforms(seed):
        again = critic(moved(particles, rotation, shift), target, position @ rotation.T + shift)
        torch.testing.assert_close(again, score, atol=1e-5, rtol=1e-5)


def test_the_test_fails_for_a_wrong_transformation(networks):
    """Guards the two tests above: the noise vectors matter, so an unturned noise breaks equivariance."""
    generator, _ = networks
    particles, target = random_batch(3)
    noise = torch.randn(B, generator.noise_dim, generator=torch.Generator().manual_seed(3))
    rotation, shift = transforms(3)[1]
    out = generator(particles, target, noise)
    wrong = generator(moved(particles, rotation, shift), target, noise)
    assert (wrong - (out @ rotation.T + shift)).abs().max() > 1e-3


def test_padding_and_far_particles_change_nothing(networks):
    generator, critic = networks
    particles, target = random_batch(4)
    noise = torch.randn(B, generator.noise_dim)
    position = 0.1 * torch.randn(B, 3)
    garbage = Particles(torch.cat([particles.positions, torch.randn(B, 5, 3)], 1),
                        torch.cat([particles.features, torch.ones(B, 5, F)], 1),
                        torch.cat([particles.mask, torch.zeros(B, 5, dtype=torch.bool)], 1))
    torch.testing.assert_close(generator(garbage, target, noise), generator(particles, target, noise))
    torch.testing.assert_close(critic(garbage, target, position), critic(particles, target, position))


def test_noise_vectors_break_the_symmetry_of_a_symmetric_environment():
    """Particles on the z axis only: invariant noise alone keeps every atom on the axis (equivariance
    forbids anything else); random-direction noise vectors spread the atoms around it."""
    torch.manual_seed(0)
    n = 64
    z = torch.tensor([0.0, 0.15, 0.3, -0.2])
    positions = torch.stack([torch.zeros(4), torch.zeros(4), z], -1).expand(n, 4, 3)
    features = torch.eye(F)[:4].expand(n, 4, F)
    particles = Particles(positions, features, torch.ones(n, 4, dtype=torch.bool))
    target = torch.eye(T)[:1].expand(n, T)
    for vectors, off_axis in ((0, False), (2, True)):
        config = CONFIG.model_copy(update={"noise_vectors": vectors})
        generator = E3nnGenerator(F, T, config)
        if vectors:
            generator.noise.gain.data.fill_(1.0)  # as after the adversarial phase (it starts at zero)
        out = generator(particles, target, torch.randn(n, config.noise_dim))
        radial = out[:, :2].norm(dim=-1)
        assert (radial.max() > 1e-3) == off_axis
        if off_axis:  # spread over directions, not one preferred one
            direction = out[:, :2] / radial.unsqueeze(-1)
            assert direction.mean(0).norm() < 0.5


def test_critic_gradient_is_finite_on_a_particle(networks):
    """The candidate may sit exactly on a particle (the gradient penalty's interpolates can)."""
    _, critic = networks
    particles, target = random_batch(5)
    position = particles.positions[:, 0].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(particles, target, position).sum(), position, create_graph=True)
    assert torch.isfinite(grad).all()
    (second,) = torch.autograd.grad(grad.square().sum(), position)
    assert torch.isfinite(second).all()


def test_nearest_neighbour_cut_is_exact_when_all_fit():
    torch.manual_seed(0)
    full = QueryConvolution(8, 2, 8, 0.6, 16, 10.0)
    cut = QueryConvolution(8, 2, 8, 0.6, 16, 10.0, max_neighbours=P - 1)
    cut.load_state_dict(full.state_dict())
    particles, _ = random_batch(6)
    mask = particles.mask.clone()
    mask[:, -2:] = False  # at most P - 2 present: the cut keeps them all
    scalars, query = torch.randn(B, P, 8), torch.zeros(B, 3)
    torch.testing.assert_close(cut(query, particles.positions, scalars, mask),
                               full(query, particles.positions, scalars, mask))


def test_generator_ignores_bfloat16_autocast(networks):
    """The sampler's --precision bfloat16 autocasts the generator call; the e3nn one stays float32."""
    generator, _ = networks
    particles, target = random_batch(7)
    noise = torch.randn(B, generator.noise_dim)
    with torch.autocast("cpu", torch.bfloat16):
        fast = generator(particles, target, noise)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast, generator(particles, target, noise))
