"""Local environments on a real sPS frame: alignment, cutoff under PBC, augmentation, features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from gdbm.data.environment import (
    EnvironmentConfig, azimuth_points, find_neighbours, fixpoints, local_environments, local_frames, rotation_to_z,
)
from gdbm.data.features import CHANNELS, FeatureSpec, InteractionChannels, SystemFeatures
from gdbm.data.trajectory import Frames, read_frames
from gdbm.utils.pbc import minimum_image
from gdbm.topology.system import MappedSystem, load_mapped_system

N_BEADS = 720


@pytest.fixture(scope="module")
def system(sps: Path) -> MappedSystem:
    return load_mapped_system(sps / "topol.top", sps / "PS1.map")


@pytest.fixture(scope="module")
def frame(sps: Path) -> tuple[Frames, Frames]:
    return read_frames(sps / "train_t568" / "aa" / "90.gro"), read_frames(sps / "train_t568" / "cg" / "90.gro")


def _is_proper_rotation(r: Tensor) -> None:
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(len(r), dtype=r.dtype), atol=1e-6, rtol=0)


def test_rotation_to_z_is_proper_antiparallel_included() -> None:
    axes = torch.cat([torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
                      torch.tensor([[0.0, 0.0, -2.0], [1e-9, 0.0, -1.0], [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]],
                                   dtype=torch.float64)])
    r = rotation_to_z(axes)
    _is_proper_rotation(r)
    mapped = (r @ axes.unsqueeze(-1)).squeeze(-1)  # [B, 3]
    torch.testing.assert_close(mapped[:, :2], torch.zeros(len(axes), 2, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(mapped[:, 2], axes.norm(dim=-1))
    assert torch.equal(rotation_to_z(torch.zeros(1, 3)), torch.eye(3).unsqueeze(0))  # no fixpoint: identity


def test_fixpoints_follow_align_then_cg_bonds(system: MappedSystem) -> None:
    fp = fixpoints(system.mapping)
    assert fp[:6].tolist() == [2, 0, 0, 2, 2, 4]  # PS1.map [align], 0-based
    assert torch.equal(fp[20:40], fp[:20] + 20)


def test_local_frame_puts_the_fixpoint_on_z(system: MappedSystem, frame: tuple[Frames, Frames]) -> None:
    aa, cg = frame
    beads, box = cg.positions[0], aa.boxes[0]
    fp = fixpoints(system.mapping)
    frames = local_frames(cg.positions, aa.boxes, torch.zeros(N_BEADS, dtype=torch.long), torch.arange(N_BEADS), fp)
    _is_proper_rotation(frames.rotation)
    bond = minimum_image(beads[fp] - beads, box)  # [N, 3]
    local = (frames.rotation @ bond.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(local[:, :2], torch.zeros(N_BEADS, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(local[:, 2], bond.norm(dim=-1), atol=1e-5, rtol=1e-5)


def test_azimuth_points_follow_cg_bonds_past_the_fixpoint(system: MappedSystem) -> None:
    fp = fixpoints(system.mapping)
    az = azimuth_points(system.mapping, fp)
    # 0-based; the CG beads are bonded in a line (backbone, side chain, backbone, ...; Fritz's model) and
    # [align] points a backbone bead to the backbone bead before it, a side chain to its own backbone bead:
    # a backbone bead's x axis then points to the side chain before it (the first one's to its own), a side
    # chain's to the next backbone bead (the last one's to the side chain before); 20 beads per chain
    assert az[:8].tolist() == [1, 2, 1, 4, 3, 6, 5, 8]
    assert int(az[19]) == 17
    assert torch.equal(az[20:40], az[:20] + 20)
    assert bool((az != torch.arange(N_BEADS)).all() and (az != fp).all())


def test_local_frame_turns_the_azimuth_bead_onto_x(system: MappedSystem, frame: tuple[Frames, Frames]) -> None:
    aa, cg = frame
    beads, box = cg.positions[0].double(), aa.boxes[0].double()
    fp = fixpoints(system.mapping)
    az = azimuth_points(system.mapping, fp)
    frame_index, bead = torch.zeros(N_BEADS, dtype=torch.long), torch.arange(N_BEADS)
    plain = local_frames(beads.unsqueeze(0), box.unsqueeze(0), frame_index, bead, fp)
    turned = local_frames(beads.unsqueeze(0), box.unsqueeze(0), frame_index, bead, fp, az)
    _is_proper_rotation(turned.rotation)
    bond = minimum_image(beads[fp] - beads, box)  # [N, 3] still on +z
    local = (turned.rotation @ bond.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(local[:, :2], torch.zeros(N_BEADS, 2, dtype=torch.float64), atol=1e-9, rtol=0)
    second = (turned.rotation @ minimum_image(beads[az] - beads, box).unsqueeze(-1)).squeeze(-1)  # [N, 3]
    assert float(second[:, 1].abs().max()) < 1e-9 and bool((second[:, 0] > 0).all())
    # the same frame turned about z: the turn is the only difference, and it maps back
    extra = turned.rotation @ plain.rotation.transpose(1, 2)
    torch.testing.assert_close(extra[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(N_BEADS, 3))
    # any rigid turn of the whole frame leaves the local picture unchanged (what makes the turn learnable)
    spin = rotation_to_z(torch.tensor([[0.3, -0.5, 0.8]], dtype=torch.float64))[0]
    moved = local_frames((beads @ spin.T).unsqueeze(0), (box @ spin.T).unsqueeze(0), frame_index, bead, fp, az)
    near = minimum_image(beads[torch.randperm(N_BEADS)[:N_BEADS]] - beads, box)  # [N, 3] a vector per centre
    torch.testing.assert_close(torch.einsum("bij,bj->bi", moved.rotation, near @ spin.T),
                               torch.einsum("bij,bj->bi", turned.rotation, near), atol=1e-9, rtol=0)


@pytest.mark.parametrize("cutoff", [0.7, 1.2])  # 1.2 nm: more than half the thinnest box width
def test_neighbours_are_those_within_the_cutoff_under_pbc(frame: tuple[Frames, Frames], cutoff: float) -> None:
    aa, cg = frame
    bead = torch.arange(0, N_BEADS, 18)  # 40 centres
    frame_index = torch.zeros(len(bead), dtype=torch.long)
    near = find_neighbours(aa.positions, cg.positions, aa.boxes, frame_index, bead, cutoff)
    everything = torch.cat([aa.positions[0], cg.positions[0]])  # [n + N, 3]
    brute = minimum_image(everything.unsqueeze(0) - cg.positions[0, bead].unsqueeze(1),
                          aa.boxes[0].expand(len(bead), 3, 3))  # [40, n + N, 3]
    item, particle = torch.nonzero(brute.norm(dim=-1) < cutoff, as_tuple=True)
    n = aa.n_particles
    found = torch.where(near.atom >= 0, near.atom, n + near.bead)
    assert torch.equal(near.item, item) and torch.equal(found, particle)  # same set, same (sorted) order
    torch.testing.assert_close(near.vector, brute[item, particle], atol=1e-5, rtol=0)
    itself = near.bead == bead[near.item]  # each centre bead is in its own environment, at the origin
    assert torch.equal(near.item[itself], torch.arange(len(bead))) and float(near.vector[itself].abs().max()) == 0


def test_environment_maps_back_and_drops_absent_atoms(system: MappedSystem, frame: tuple[Frames, Frames]) -> None:
    aa, cg = frame
    bead = torch.tensor([0, 5, 100, 719])
    frame_index = torch.zeros(4, dtype=torch.long)
    present = torch.ones(1, aa.n_particles, dtype=torch.bool)
    present[0, 1000:3000] = False
    absent = torch.tensor([[1, 4, -1], [81, 82, 83], [-1, -1, -1], [5831, -1, -1]])
    fp = fixpoints(system.mapping)
    kwargs = dict(atom_present=present, absent=absent)
    env = local_environments(aa.positions, cg.positions, aa.boxes, frame_index, bead, fp, 0.7, **kwargs)
    turned = local_environments(aa.positions, cg.positions, aa.boxes, frame_index, bead, fp, 0.7, **kwargs,
                                generator=torch.Generator().manual_seed(5))
    again = local_environments(aa.positions, cg.positions, aa.boxes, frame_index, bead, fp, 0.7, **kwargs,
                               generator=torch.Generator().manual_seed(5))
    assert torch.equal(turned.positions, again.positions)
    assert not torch.allclose(turned.positions, env.positions)
    assert torch.equal(turned.atom, env.atom) and torch.equal(turned.mask, env.mask)
    extra = turned.frames.rotation @ env.frames.rotation.transpose(1, 2)  # a turn about z only
    torch.testing.assert_close(extra[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(4, 3), atol=1e-6, rtol=0)
    for e in (env, turned):
        box = e.frames.to_box(e.positions)  # [B, P, 3]
        atoms = e.atom.clamp(min=0)
        ref = torch.where((e.atom >= 0).unsqueeze(-1), aa.positions[0, atoms], cg.positions[0, e.bead.clamp(min=0)])
        diff = minimum_image(box - ref, aa.boxes[0].expand(4, 3, 3)).norm(dim=-1)
        assert float(diff[e.mask].max()) < 1e-5
        assert bool((e.positions[e.mask].norm(dim=-1) < 0.7).all())
    kept = env.atom[env.mask & (env.atom >= 0)]
    assert not bool(((kept >= 1000) & (kept < 3000)).any())
    for b in range(4):
        assert not set(absent[b][absent[b] >= 0].tolist()) & set(env.atom[b].tolist())
    assert set(env.atom[0].tolist()) >= {0, 2, 3}  # the rest of bead 0 is there


def test_features_carry_kind_types_and_interaction_channels(system: MappedSystem,
                                                            frame: tuple[Frames, Frames]) -> None:
    aa, cg = frame
    spec = FeatureSpec.from_system(system)
    assert spec.atom_types == ("C", "C_AR", "H", "H_AR") and spec.bead_types == ("A1r", "A2r", "B1u", "B2d")
    assert spec.n_features == 2 + 4 + 4 + len(CHANNELS)
    features = SystemFeatures(system, spec)
    fp = fixpoints(system.mapping)
    env = local_environments(aa.positions, cg.positions, aa.boxes, torch.zeros(1, dtype=torch.long),
                             torch.tensor([0]), fp, 0.7, absent=torch.tensor([[4]]))
    target = torch.tensor([4])  # C5, being placed
    particles = features.particles(env, target)
    f = particles.features[0]  # [P, F]
    atom = env.atom[0]
    channel = f[:, 10:].argmax(-1)

    def row(a: int) -> Tensor:
        return f[(atom == a).nonzero().item()]

    assert row(1)[:2].tolist() == [1, 0] and row(1)[2:6].tolist() == [1, 0, 0, 0]  # C2: an atom of type C
    assert channel[atom == 1].item() == CHANNELS.index("bond")  # C2-C5
    assert channel[atom == 17].item() == CHANNELS.index("bond")  # C18-C5 (next bead)
    assert channel[atom == 0].item() == CHANNELS.index("angle")  # H1-C2-C5
    assert channel[atom == 6].item() == CHANNELS.index("angle")  # C7-C6-C5
    other = (atom >= 162).nonzero().flatten()  # other chains: non-bonded
    assert len(other) and bool((channel[other] == CHANNELS.index("nonbonded")).all())
    beads = env.bead[0] >= 0
    assert bool((f[beads, :2] == torch.tensor([0.0, 1.0])).all()) and float(f[beads, 10:].sum()) == 0.0
    assert f[env.bead[0] == 0][0, 6:10].tolist() == [1, 0, 0, 0]  # bead 0 is an A1r
    assert float(f[~env.mask[0]].sum()) == 0.0
    assert bool((f[env.mask[0]].sum(-1) == torch.where(beads[env.mask[0]], 2.0, 3.0)).all())


def test_split_channels_and_prior_types(system: MappedSystem) -> None:
    split = FeatureSpec.from_system(system, EnvironmentConfig(split_channels=True, atom_types="prior"))
    assert split.n_features == 2 + 4 + 4 + 4 * 4 and split.atom_type_source == "prior"
    # an H atom (code 2) in the angle channel lands in column angle * T + type
    f = split.encode(torch.tensor([2]), torch.tensor([False]), torch.tensor([CHANNELS.index("angle")]))
    assert f[0, 10:].nonzero().flatten().tolist() == [1 * 4 + 2]


def test_feature_spec_round_trips_and_checks(system: MappedSystem) -> None:
    spec = FeatureSpec.from_system(system)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    spec.check_compatible(FeatureSpec.from_dict(spec.to_dict()))
    other = FeatureSpec.from_system(system, EnvironmentConfig(split_channels=True))
    with pytest.raises(ValueError, match="split_channels"):
        spec.check_compatible(other)
    with pytest.raises(ValueError, match="not in the model's vocabulary"):
        SystemFeatures(system, FeatureSpec(("C", "H"), spec.bead_types))


def test_interaction_channels_by_bond_path(system: MappedSystem) -> None:
    channels = InteractionChannels(system.aa)
    a = torch.tensor([4, 4, 4, 4, 4, 4, -1])
    b = torch.tensor([1, 0, 6, 7, 4 + 162, 60, 1])
    assert channels(a, b).tolist() == [0, 1, 1, 2, 3, 3, -1]
    assert torch.equal(channels(a, b), channels(b, a))


def test_neighbours_in_a_replicated_box_match_brute_force(frame: tuple[Frames, Frames]) -> None:
    """A box of 4 copies (cells along every axis): the cell list finds exactly the brute-force pairs."""
    from gdbm.data.trajectory import replicate

    aa, cg = (replicate(f, (2, 1, 2)) for f in frame)
    bead = torch.arange(0, cg.n_particles, 37)
    near = find_neighbours(aa.positions, cg.positions, aa.boxes, torch.zeros(len(bead), dtype=torch.long), bead, 0.7)
    everything = torch.cat([aa.positions[0], cg.positions[0]])
    brute = minimum_image(everything.unsqueeze(0) - cg.positions[0, bead].unsqueeze(1),
                          aa.boxes[0].expand(len(bead), 3, 3))
    item, particle = torch.nonzero(brute.norm(dim=-1) < 0.7, as_tuple=True)
    found = torch.where(near.atom >= 0, near.atom, aa.n_particles + near.bead)
    assert torch.equal(near.item, item) and torch.equal(found, particle)
    torch.testing.assert_close(near.vector, brute[item, particle], atol=1e-5, rtol=0)
