"""Training samples on real sPS frames: contexts, reference sequences, channels, collation, energy prior."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from gdbm.data.features import CHANNELS
from gdbm.data.samples import SequenceDataset, collate, particles_for_step, prior_energies, prior_positions
from gdbm.data.trajectory import Frames, read_frames
from gdbm.physics.energy import evaluate_terms
from gdbm.utils.pbc import minimum_image
from gdbm.topology.system import MappedSystem, load_mapped_system
from gdbm.topology.topology import Term

FRAMES = ("90.gro", "135.gro")


@pytest.fixture(scope="module")
def system(sps: Path) -> MappedSystem:
    return load_mapped_system(sps / "topol.top", sps / "PS1.map")


@pytest.fixture(scope="module")
def frames(sps: Path) -> tuple[Frames, Tensor]:
    aa = [read_frames(sps / "train_t568" / "aa" / name) for name in FRAMES]
    cg = [read_frames(sps / "train_t568" / "cg" / name) for name in FRAMES]
    both = Frames(torch.cat([f.positions for f in aa]), torch.cat([f.boxes for f in aa]), list(FRAMES),
                  aa[0].names, aa[0].resnames, aa[0].resids)
    return both, torch.cat([f.positions for f in cg])


@pytest.fixture(scope="module")
def dataset(system: MappedSystem, frames: tuple[Frames, Tensor]) -> SequenceDataset:
    aa, beads = frames
    return SequenceDataset(aa, system, beads=beads)


def _spread(dataset: SequenceDataset, n: int) -> list[int]:
    """``n`` item indices spread over the dataset (both frames, both passes, all bead kinds)."""
    return torch.linspace(0, len(dataset) - 1, n).long().tolist()


def test_dataset_size_follows_plan_and_multiplicity(dataset: SequenceDataset, system: MappedSystem,
                                                    frames: tuple[Frames, Tensor]) -> None:
    mult = system.mapping.mult[:20]  # [4 4 2 2 1 ... 1 2 2 4 4]
    assert len(dataset) == len(FRAMES) * 36 * 2 * int(mult.sum())  # frames x chains x passes x sum(mult)
    unweighted = SequenceDataset(frames[0], system, beads=frames[1], oversample=False)
    assert len(unweighted) == len(FRAMES) * 36 * 40
    counts = torch.bincount(dataset.item_step * len(FRAMES) + dataset.item_frame)
    assert torch.equal(counts, mult.repeat(36 * 2).repeat_interleave(len(FRAMES)))


def test_reference_positions_map_back_to_the_frame(dataset: SequenceDataset, frames: tuple[Frames, Tensor]) -> None:
    aa, beads = frames
    for i in _spread(dataset, 20):
        s = dataset[i]
        box = aa.boxes[s.frame]
        back = s.centre + s.positions @ s.rotation  # [L, 3]
        assert float(minimum_image(back - aa.positions[s.frame, s.atoms], box).norm(dim=-1).max()) < 1e-5
        ctx = s.centre + s.context_positions @ s.rotation
        ref = torch.where((s.context_atom >= 0).unsqueeze(1), aa.positions[s.frame, s.context_atom.clamp(min=0)],
                          beads[s.frame, s.context_bead.clamp(min=0)])
        assert float(minimum_image(ctx - ref, box).norm(dim=-1).max()) < 1e-5


def test_context_is_the_reference_minus_sequence_and_hidden_hydrogens(dataset: SequenceDataset,
                                                                     frames: tuple[Frames, Tensor]) -> None:
    aa, beads = frames
    n = aa.n_particles
    for i in _spread(dataset, 12):
        s = dataset[i]
        step = dataset.steps
        hidden = set(step.hidden[s.step][step.hidden[s.step] >= 0].tolist())
        assert s.heavy == bool(step.heavy[s.step]) and (hidden != set()) == s.heavy
        everything = torch.cat([aa.positions[s.frame], beads[s.frame]])
        d = minimum_image(everything - beads[s.frame, s.bead], aa.boxes[s.frame]).norm(dim=-1)
        expected = set(torch.nonzero(d < dataset.config.cutoff).flatten().tolist()) - hidden - set(s.atoms.tolist())
        found = torch.where(s.context_atom >= 0, s.context_atom, n + s.context_bead)
        assert set(found.tolist()) == expected and len(found) == len(expected)
        atoms = s.context_atom[s.context_atom >= 0]  # atoms first, in increasing order, then beads
        assert torch.equal(s.context_atom[:len(atoms)], torch.sort(atoms).values)
        if s.heavy:  # no hydrogen of the bead or its neighbours; the other hydrogens are there
            assert not hidden & set(s.context_atom.tolist())
            assert any(aa.names[a].startswith("H") for a in s.context_atom[s.context_atom >= 0].tolist())
        else:  # the bead's heavy atoms are present at their reference positions
            own = dataset.steps.atoms[(dataset.steps.bead == s.bead) & dataset.steps.heavy][0]
            assert set(own[own >= 0].tolist()) <= set(s.context_atom.tolist())


def test_channels_relative_to_each_target(dataset: SequenceDataset) -> None:
    chain_step = 1  # bead 1 of the first chain: the phenyl ring, placed from C6 (bonded to C5)
    s = next(dataset[i] for i in range(len(dataset)) if dataset.item_step[i] == chain_step)
    assert s.atoms.tolist() == [5, 6, 8, 10, 12, 14]
    c5 = (s.context_atom == 4).nonzero().item()
    assert s.context_channel[0, c5] == CHANNELS.index("bond")  # C6-C5
    assert s.context_channel[1, c5] == CHANNELS.index("angle")  # C7-C6-C5
    assert s.sequence_channel[1, 0] == CHANNELS.index("bond")  # C7-C6
    assert s.sequence_channel[3, 0] == CHANNELS.index("dihedral")  # C11 (para) - C6: 3 bonds
    assert bool((s.sequence_channel.diagonal() == -1).all())
    assert bool((s.context_channel[:, s.context_bead >= 0] == -1).all())
    other = s.context_atom >= 162
    assert bool((s.context_channel[:, other] == CHANNELS.index("nonbonded")).all())


def test_collated_batch_shapes_masks_and_seeded_turns(dataset: SequenceDataset,
                                                      frames: tuple[Frames, Tensor]) -> None:
    aa, _ = frames
    samples = [dataset[i] for i in _spread(dataset, 16)]
    batch = collate(samples, torch.Generator().manual_seed(1))
    again = collate(samples, torch.Generator().manual_seed(1))
    plain = collate(samples, rotate=False)
    b, p, length = len(samples), max(len(s.context_atom) for s in samples), max(len(s.atoms) for s in samples)
    assert batch.context_positions.shape == (b, p, 3) and batch.targets.shape == (b, length, 3)
    assert batch.context_channel.shape == (b, length, p) and batch.sequence_channel.shape == (b, length, length)
    assert batch.target_types.shape == (b, length, dataset.spec.n_target_types)
    assert batch.context_mask.sum(1).tolist() == [len(s.context_atom) for s in samples]
    assert batch.step_mask.sum(1).tolist() == [len(s.atoms) for s in samples]
    assert bool((batch.context_type[~batch.context_mask] == -1).all())
    assert bool((batch.target_types.sum(-1) == batch.step_mask).all())
    assert torch.equal(batch.targets, again.targets) and not torch.allclose(batch.targets, plain.targets)
    torch.testing.assert_close(batch.targets.norm(dim=-1), plain.targets.norm(dim=-1))
    torch.testing.assert_close(batch.targets[..., 2], plain.targets[..., 2])  # turned about z only
    back = batch.centre.unsqueeze(1) + batch.targets @ batch.rotation  # [B, L, 3] box coordinates
    for k, s in enumerate(samples):
        d = minimum_image(back[k, :len(s.atoms)] - aa.positions[s.frame, s.atoms], aa.boxes[s.frame])
        assert float(d.norm(dim=-1).max()) < 1e-5


def test_particles_for_step_hold_context_and_earlier_atoms(dataset: SequenceDataset) -> None:
    samples = [dataset[i] for i in _spread(dataset, 8)]
    batch = collate(samples, torch.Generator().manual_seed(2))
    generated = (batch.targets + 0.01).requires_grad_(True)
    p = batch.context_positions.shape[1]
    for k in range(batch.targets.shape[1]):
        particles = particles_for_step(batch, k, generated)
        assert particles.positions.shape[1] == p + k and particles.features.shape[-1] == dataset.spec.n_features
        for b, s in enumerate(samples):
            n_ctx, n_seq = len(s.context_atom), len(s.atoms)
            present = torch.cat([torch.arange(n_ctx), p + torch.arange(min(k, n_seq))])
            assert torch.equal(particles.mask[b].nonzero().flatten(), present)
            torch.testing.assert_close(particles.positions[b, p:p + min(k, n_seq)], generated[b, :min(k, n_seq)])
            if k < n_seq:  # the placed atoms carry their channel w.r.t. target k
                channel = particles.features[b, p:p + k, -len(CHANNELS):].argmax(-1)
                assert torch.equal(channel, s.sequence_channel[k, :k].long())
                ctx = particles.features[b, :n_ctx, -len(CHANNELS):]
                atoms = s.context_atom >= 0
                assert torch.equal(ctx[atoms].argmax(-1), s.context_channel[k, atoms].long())
                assert float(ctx[~atoms].sum()) == 0.0
    particles_for_step(batch, 3, generated).positions.sum().backward()
    assert float(generated.grad[:, :3].abs().sum()) > 0 and float(generated.grad[:, 3:].abs().sum()) == 0


def test_prior_equals_the_same_terms_in_the_full_frame(dataset: SequenceDataset,
                                                       frames: tuple[Frames, Tensor]) -> None:
    aa, _ = frames
    samples = [dataset[i] for i in _spread(dataset, 12)]
    for s in samples:
        local = torch.cat([s.context_positions, s.positions]).double()  # [P + L, 3]
        owner = torch.cat([s.context_atom, s.atoms])  # local slot -> global atom
        in_sample = evaluate_terms(s.prior, local, coulomb=False)
        in_frame = evaluate_terms([Term(t.kind, owner[t.index], t.params) for t in s.prior],
                                  aa.positions[s.frame].double(), aa.boxes[s.frame].double(), coulomb=False)
        assert in_sample.keys() == in_frame.keys() >= {"bond", "angle", "lj"}
        for key in in_sample:
            torch.testing.assert_close(in_sample[key], in_frame[key], rtol=1e-4, atol=2e-3)
    # the batch's flattened terms: one call for all, and the same per sample
    batch = collate(samples, torch.Generator().manual_seed(3))
    total = evaluate_terms(batch.prior, prior_positions(batch, batch.targets).double(), coulomb=False)
    per_sample = prior_energies(batch, batch.targets.double())
    for key, value in total.items():
        expected = [float(evaluate_terms(s.prior, torch.cat([s.context_positions, s.positions]).double(),
                                         coulomb=False).get(key, 0.0)) for s in samples]
        torch.testing.assert_close(per_sample[key], torch.tensor(expected, dtype=torch.float64), rtol=1e-4, atol=2e-3)
        torch.testing.assert_close(value, per_sample[key].sum(), rtol=1e-4, atol=2e-3)


def test_prior_selects_terms_with_a_sequence_atom_and_present_others(dataset: SequenceDataset,
                                                                     system: MappedSystem) -> None:
    top = system.aa
    excluded = {tuple(e) for e in top.exclusions.tolist()}
    for i in _spread(dataset, 6):
        s = dataset[i]
        owner = torch.cat([s.context_atom, s.atoms])
        seq = set(s.atoms.tolist())
        present = seq | set(s.context_atom[s.context_atom >= 0].tolist())
        for t in s.prior:
            got = {tuple(r) for r in owner[t.index].tolist()}
            if t.kind == "pair_lj":
                expected = {(a, b) for a in seq for b in present if b not in seq or b > a}
                expected = {(a, b) for a, b in expected if (min(a, b), max(a, b)) not in excluded}
                assert got == expected and bool((t.params["qq"] == 0).all())
                continue
            rows = top.terms[t.kind].index.tolist()
            expected = {tuple(r) for r in rows if seq & set(r) and set(r) <= present}
            assert got == expected


def test_lookahead_sites_sit_on_the_hidden_hydrogens_and_batch_like_samples(system: MappedSystem,
                                                                            frames: tuple[Frames, Tensor]) -> None:
    """The prior's ``lookahead`` term: ideal sites on a heavy step's atoms, near the reference hydrogens the
    step hides, their LJ pairs the same pairs as in the full frame, and one batch call equal to per-sample sums."""
    aa, beads = frames
    data = SequenceDataset(aa, system, beads=beads, lookahead=("planar_ch", "ch", "ch2"))
    samples = [data[i] for i in _spread(data, 80)]
    assert all(s.lookahead is None for s in samples if not s.heavy)
    samples = [s for s in samples if s.lookahead is not None]
    assert len(samples) >= 20
    owner_of = data.hydrogens.hydrogens
    errors, per_sample = [], []
    for s in samples:
        local = torch.cat([s.context_positions, s.positions]).double()  # [P + L, 3]
        owner = torch.cat([s.context_atom, s.atoms])  # local slot -> global atom
        sites = s.lookahead.positions(local)  # [E, 3]
        hydrogens = owner_of[owner[s.lookahead.sites[:, 0]]]
        hydrogens = hydrogens[hydrogens >= 0]  # [E] the atoms the sites stand for, in order
        assert not torch.isin(hydrogens, owner).any()  # hidden from the step
        box = aa.boxes[s.frame].double()
        real = minimum_image(aa.positions[s.frame, hydrogens].double() - s.centre.double(), box) @ s.rotation.double().T
        errors.append((sites.unsqueeze(1) - real.unsqueeze(0)).norm(dim=-1).min(1).values)  # swapped CH2 pairs too
        # the same pairs in the full frame: context and sequence slots are their atoms, sites come after the frame
        n = aa.positions.shape[1]
        in_box = torch.cat([aa.positions[s.frame].double(), s.centre.double() + sites @ s.rotation.double()])
        index = s.lookahead.pairs.index
        glob = torch.where(index < len(owner), owner[index.clamp(max=len(owner) - 1)], n + index - len(owner))
        in_frame = evaluate_terms([Term("pair_lj", glob, s.lookahead.pairs.params)], in_box, box, coulomb=False)
        energy = s.lookahead.energies(local).sum()
        torch.testing.assert_close(energy, in_frame["lj"], rtol=1e-4, atol=2e-3)
        per_sample.append(energy)
    error = torch.cat(errors)
    assert float(error.pow(2).mean().sqrt()) < 0.04 and len(error) >= 40
    batch = collate(samples, torch.Generator().manual_seed(5))  # turned: the sites turn with their atoms
    bare = prior_energies(batch, batch.targets.double())["lookahead"]
    torch.testing.assert_close(bare, torch.stack(per_sample), rtol=1e-4, atol=2e-3)
    cored = prior_energies(batch, batch.targets.double(), lj_core=0.8)["lookahead"]
    assert torch.all(cored <= bare + 1e-9)  # the linear core caps, never raises, the energy
