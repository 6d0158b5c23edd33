"""Voxel conditioner: Gaussian densities, collapse (Eq. 4.11), symmetries, and the generator / critic contract."""

from __future__ import annotations

import math

import pytest
import torch

from gdbm.conditioners.interface import Particles
from gdbm.conditioners.voxel import DBM_SIGMA_NM, VoxelConfig, VoxelGrid, build_voxel_conditioner

G, LENGTH = 8, 1.2
B, P, F, T = 4, 12, 5, 3
SMALL = dict(channels=8, noise_dim=6, n_blocks=1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: one intra-op thread is as fast, and immune to oversubscribed CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def grid() -> VoxelGrid:
    return VoxelGrid(G, LENGTH, DBM_SIGMA_NM)


def random_particles(seed: int = 0, n_batch: int = B) -> Particles:
    gen = torch.Generator().manual_seed(seed)
    positions = (torch.rand(n_batch, P, 3, generator=gen) - 0.5) * LENGTH
    features = torch.nn.functional.one_hot(torch.randint(F, (n_batch, P), generator=gen), F).float()
    mask = torch.rand(n_batch, P, generator=gen) < 0.8
    return Particles(positions, features, mask)


def one_hot_types(n_batch: int = B) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.arange(n_batch) % T, T).float()


def rot_z(positions: torch.Tensor) -> torch.Tensor:
    """(x, y, z) -> (-y, x, z): +90 degrees about z."""
    return torch.stack([-positions[..., 1], positions[..., 0], positions[..., 2]], -1)


def models(norm: str = "layer", seed: int = 0, full_blocks: int = 1):
    torch.manual_seed(seed)
    return build_voxel_conditioner(F, T, VoxelConfig(norm=norm, groups=4, full_blocks=full_blocks, **SMALL))


LAYOUTS = pytest.mark.parametrize("norm,full_blocks", [("layer", 1), ("group", 1), ("layer", 0), ("group", 0)])


# --- grid ---------------------------------------------------------------------------------------

def test_config_sigma_is_dbm_width_and_validates():
    assert VoxelConfig().sigma == pytest.approx(math.sqrt(0.02))  # DBM: exp(-d^2 / (2 * 0.02 nm^2))
    with pytest.raises(ValueError, match="even"):
        VoxelConfig(resolution=7)
    with pytest.raises(ValueError, match="divisible"):
        VoxelConfig(norm="group", channels=10, groups=4)


def test_grid_points_are_voxel_centres_symmetric_about_zero(grid):
    assert torch.allclose(grid.axis, -grid.axis.flip(0))
    assert torch.allclose(grid.axis.diff(), torch.full((G - 1,), LENGTH / G))
    assert grid.axis[-1].item() == pytest.approx(LENGTH / 2 - LENGTH / G / 2)
    assert grid.points.shape == (G, G, G, 3) and not grid.state_dict()


def test_densities_match_direct_gaussians_with_multi_hot_weights(grid):
    particles = random_particles()
    particles.features[:, 0, :2] = torch.tensor([1.0, 0.5])  # multi-hot weights
    dens = grid.densities(particles)
    assert dens.shape == (B, F, G, G, G)
    d2 = (grid.points.view(1, 1, -1, 3) - particles.positions.unsqueeze(2)).square().sum(-1)  # [B, P, G^3]
    gauss = torch.exp(-d2 / (2 * DBM_SIGMA_NM**2)) * particles.mask.unsqueeze(-1)
    direct = torch.einsum("bpf,bpv->bfv", particles.features, gauss).view(B, F, G, G, G)
    assert torch.allclose(dens, direct, atol=1e-5)


def test_masked_particles_contribute_nothing(grid):
    particles = random_particles()
    padded = Particles(particles.positions.clone(), particles.features.clone(), particles.mask.clone())
    padded.positions[~padded.mask] = float("nan")  # whatever padding holds
    padded.features[~padded.mask] = 1.0
    assert torch.equal(grid.densities(padded), grid.densities(particles))
    present = Particles(particles.positions[:1, particles.mask[0]], particles.features[:1, particles.mask[0]],
                        particles.mask[:1, particles.mask[0]])
    assert torch.allclose(grid.densities(present), grid.densities(particles)[:1], atol=1e-6)


def test_origin_density_is_fourfold_symmetric_and_collapses_to_zero(grid):
    dens = grid.density_of(torch.zeros(1, 3))
    for k in range(1, 4):
        assert torch.allclose(torch.rot90(dens, k, dims=(2, 3)), dens)
    assert grid.collapse(dens).abs().max() < 1e-6


def test_collapse_returns_centre_of_off_centre_gaussian(grid):
    # The grid cuts the Gaussian's tails, which pulls the mean towards the centre: < 3e-4 nm for
    # |r_a| <= 0.15 nm (5e-3 nm at 0.3 nm). Sampling at 0.15 nm ~ 1.06 sigma costs ~1e-7 nm.
    centre = torch.tensor([[0.10, -0.05, 0.15], [-0.15, 0.12, -0.03]])
    assert torch.allclose(grid.collapse(grid.density_of(centre)), centre, atol=5e-4)


def test_rotation_by_90_degrees_about_z_rotates_the_voxels(grid):
    particles = random_particles()
    rotated = Particles(rot_z(particles.positions), particles.features, particles.mask)
    # new[i', j'] with x' = -y, y' = x: rot90 from the x towards the y axis.
    expected = torch.rot90(grid.densities(particles), 1, dims=(2, 3))
    assert torch.allclose(grid.densities(rotated), expected, atol=1e-5)
    assert not torch.allclose(grid.densities(particles), expected, atol=1e-3)  # the check can fail
    assert torch.allclose(grid.density_of(rot_z(particles.positions[:, 0])),
                          torch.rot90(grid.density_of(particles.positions[:, 0]), 1, dims=(2, 3)), atol=1e-6)


def test_grid_commensurate_translation_shifts_the_voxels(grid):
    particles = random_particles()
    shift = torch.tensor([LENGTH / G, 0.0, -2 * LENGTH / G])  # +1 voxel in x, -2 in z
    moved = Particles(particles.positions + shift, particles.features, particles.mask)
    before, after = grid.densities(particles), grid.densities(moved)
    assert torch.allclose(after[:, :, 1:, :, :-2], before[:, :, :-1, :, 2:], atol=1e-5)


def test_densities_are_differentiable_in_positions(grid):
    particles = random_particles()
    particles.positions.requires_grad_(True)
    grid.densities(particles).square().sum().backward()
    grad = particles.positions.grad
    assert torch.isfinite(grad).all() and grad[particles.mask].abs().sum() > 0
    assert (grad[~particles.mask] == 0).all()


# --- networks -----------------------------------------------------------------------------------

@LAYOUTS
def test_generator_places_finite_atoms_differentiably(norm, full_blocks):
    generator, _ = models(norm, full_blocks=full_blocks)
    particles = random_particles()
    particles.positions.requires_grad_(True)
    position = generator(particles, one_hot_types(), torch.randn(B, generator.noise_dim))
    assert position.shape == (B, 3) and torch.isfinite(position).all()
    assert (position.abs() <= LENGTH / 2).all()  # a convex combination of voxel centres
    density = generator.density(particles, one_hot_types(), torch.randn(B, generator.noise_dim))
    assert (density > 0).all() and torch.allclose(density.sum((1, 2, 3, 4)), torch.ones(B))
    position.sum().backward()
    assert particles.positions.grad[particles.mask].abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in generator.parameters())


@LAYOUTS
def test_channels_last_generator_places_the_same_atoms(norm, full_blocks):
    """The channels-last order (for bfloat16 convolutions) changes the memory layout, not the result."""
    generator, _ = models(norm, full_blocks=full_blocks)
    particles, types, noise = random_particles(), one_hot_types(), torch.randn(B, generator.noise_dim)
    with torch.no_grad():
        before = generator(particles, types, noise)
        after = generator.channels_last()(particles, types, noise)
        conv = next(m for m in generator.modules() if isinstance(m, torch.nn.Conv3d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
        torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)
        with torch.autocast("cpu", torch.bfloat16):
            assert generator(particles, types, noise).dtype == torch.float32  # the collapse stays float32


def test_upsampling_density_head_is_its_transposed_convolution():
    """The head's matmul form writes the same logits as the transposed convolution it stands for,
    in either memory layout, with gradients for its weights."""
    from gdbm.conditioners.voxel.blocks import DensityHead

    head = DensityHead(6, upsample=True)
    x = torch.randn(3, 6, 4, 4, 4, requires_grad=True)
    expected = torch.softmax(head.conv(x).flatten(1), -1).view(3, 1, 8, 8, 8)
    torch.testing.assert_close(head(x), expected)
    torch.testing.assert_close(head(x.contiguous(memory_format=torch.channels_last_3d)), expected)
    (head(x) * torch.randn(3, 1, 8, 8, 8)).sum().backward()
    assert head.conv.weight.grad.abs().sum() > 0 and head.conv.bias.grad is not None


@LAYOUTS
def test_critic_scores_and_gradient_penalty_backpropagates(norm, full_blocks):
    _, critic = models(norm, full_blocks=full_blocks)
    particles = random_particles()
    position = (torch.rand(B, 3) - 0.5).requires_grad_(True)
    score = critic(particles, one_hot_types(), position)
    assert score.shape == (B,) and torch.isfinite(score).all()
    (grad,) = torch.autograd.grad(score.sum(), position, create_graph=True)
    assert grad.shape == (B, 3) and grad.abs().sum() > 0
    ((grad.norm(dim=-1) - 1).square().mean()).backward()  # WGAN-GP needs double backward
    assert sum(p.grad.abs().sum() for p in critic.parameters() if p.grad is not None) > 0


def first_kept(kept: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``other`` with its sample 0 replaced by ``kept``'s."""
    out = other.clone()
    out[0] = kept[0]
    return out


@LAYOUTS
def test_samples_of_a_batch_are_independent(norm, full_blocks):
    generator, critic = models(norm, full_blocks=full_blocks)
    particles, other = random_particles(0), random_particles(1)
    changed = Particles(*(first_kept(a, b) for a, b in zip(
        (particles.positions, particles.features, particles.mask), (other.positions, other.features, other.mask))))
    types, noise, position = one_hot_types(), torch.randn(B, generator.noise_dim), torch.rand(B, 3) - 0.5
    types_2, noise_2, position_2 = (first_kept(a, b) for a, b in
                                    ((types, types.roll(1, 0)), (noise, 3 * noise), (position, position.flip(0))))
    torch.testing.assert_close(generator(changed, types_2, noise_2)[0], generator(particles, types, noise)[0],
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(critic(changed, types_2, position_2)[0], critic(particles, types, position)[0],
                               atol=1e-5, rtol=0)


def test_noise_and_type_change_the_generated_position():
    generator, _ = models()
    one = random_particles(0, 1)
    pair = Particles(one.positions.expand(2, -1, -1), one.features.expand(2, -1, -1), one.mask.expand(2, -1))
    by_noise = generator(pair, one_hot_types(1).expand(2, -1), torch.randn(2, generator.noise_dim))
    by_type = generator(pair, one_hot_types(2), torch.zeros(2, generator.noise_dim))
    assert (by_noise[0] - by_noise[1]).abs().max() > 1e-6 and (by_type[0] - by_type[1]).abs().max() > 1e-6


@pytest.mark.parametrize("full_blocks", [0, 1])
def test_bfloat16_autocast_keeps_float32_positions_close(full_blocks: int):
    generator, _ = models(full_blocks=full_blocks)
    particles, types, noise = random_particles(), one_hot_types(), torch.randn(B, generator.noise_dim)
    exact = generator(particles, types, noise)
    with torch.autocast("cpu", torch.bfloat16):
        fast = generator(particles, types, noise)
    assert fast.dtype == torch.float32
    assert (fast - exact).abs().max() < 0.01  # nm; bfloat16 logits, float32 softmax and mean


def test_seeded_models_are_deterministic_on_cpu():
    (gen_a, critic_a), (gen_b, critic_b) = models(seed=3), models(seed=3)
    particles, types = random_particles(), one_hot_types()
    noise = torch.randn(B, gen_a.noise_dim, generator=torch.Generator().manual_seed(5))
    assert torch.equal(gen_a(particles, types, noise), gen_b(particles, types, noise))
    position = gen_a(particles, types, noise)
    assert torch.equal(critic_a(particles, types, position), critic_b(particles, types, position))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # CUDA checked where there is one


@pytest.mark.parametrize("device", DEVICES)
def test_models_run_where_their_inputs_are(device: str):
    generator, critic = (m.to(device) for m in models())
    particles = random_particles().to(device)
    types = one_hot_types().to(device)
    position = generator(particles, types, torch.randn(B, generator.noise_dim, device=device))
    assert position.device.type == device and critic(particles, types, position).device.type == device
