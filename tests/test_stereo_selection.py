"""Candidate selection: a rightly handed candidate beats a wrongly handed one of lower energy; a clashing
one gets more rounds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.data import read_frames
from gdbm.sampling.backmapper import Backmapper, SamplerConfig, select_candidates
from gdbm.topology.stereo import candidate_handedness, handedness, invert, stereocentres
from gdbm.utils.pbc import minimum_image


def test_the_fewest_wrong_centres_win_then_the_lowest_energy():
    energy = torch.tensor([[5.0, 1.0, 3.0],     # candidate 1 wrong: the rightly handed 2 wins at higher energy
                           [5.0, 1.0, 3.0],     # all wrong: the energy decides
                           [5.0, 1.0, 3.0],     # one wrong centre beats two
                           [5.0, 1.0, 3.0]])    # all right: the energy decides
    wrong = torch.tensor([[0, 1, 0], [1, 1, 1], [1, 2, 2], [0, 0, 0]])
    assert select_candidates(energy, wrong).tolist() == [2, 1, 0, 1]
    assert select_candidates(energy).tolist() == [1, 1, 1, 1]
    inf = torch.tensor([[float("inf"), float("inf")]])
    assert select_candidates(inf, torch.tensor([[1, 0]])).tolist() == [1]  # a clash still keeps its handedness
    # with a finite penalty per wrong centre: a rightly handed candidate wins unless it costs more than the penalty
    assert select_candidates(torch.tensor([[0.0, 900.0], [0.0, 1100.0]]), torch.tensor([[1, 0], [1, 0]]),
                             1000.0).tolist() == [1, 0]


def test_a_boltzmann_choice_draws_by_energy_among_the_allowed_candidates():
    """``kt`` > 0: candidates drawn with weight exp(-E / kt); wrongly handed ones stay out under an infinite
    penalty; rows with no finite score keep the rule's choice."""
    rng = torch.Generator().manual_seed(0)
    energy = torch.tensor([[0.0, 4.72, 1000.0]]).expand(20000, 3)
    drawn = select_candidates(energy, kt=4.72, rng=rng)
    share = torch.bincount(drawn, minlength=3).double() / len(drawn)
    assert abs(float(share[1] / share[0]) - 0.3679) < 0.03 and int((drawn == 2).sum()) == 0  # e^-1, e^-212
    wrong = torch.tensor([[0, 1, 0]]).expand(2000, 3)
    assert set(select_candidates(energy[:2000], wrong, kt=4.72, rng=rng).tolist()) == {0}  # 1 wrong, 2 too high
    inf = torch.full((3, 2), float("inf"))
    assert select_candidates(inf, torch.tensor([[1, 0]] * 3), kt=4.72, rng=rng).tolist() == [1, 1, 1]
    assert torch.equal(select_candidates(energy[:5], kt=0.0), torch.zeros(5, dtype=torch.long))


def test_candidate_handedness_is_the_rules_handedness(sps: Path):
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    x, boxes = frame.positions.double(), frame.boxes.double()
    rows = stereocentres(frame_top(sps))
    which = torch.zeros(1, len(rows), dtype=torch.bool)
    which[0, ::3] = True
    flipped = invert(x, boxes, rows, which)
    quads = torch.stack([x[0, rows[:, :4]], flipped[0, rows[:, :4]]], 1)  # [c, 2, 4, 3]
    signs = candidate_handedness(quads, boxes.expand(len(rows), 3, 3))
    assert torch.equal(signs[:, 0], handedness(x, boxes, rows)[0])
    assert torch.equal(signs[:, 1], handedness(flipped, boxes, rows)[0])


def frame_top(sps: Path):
    from gdbm.topology.system import load_mapped_system

    return load_mapped_system(sps / "topol.top", sps / "PS1.map").aa


@pytest.fixture(scope="module")
def fitted(two_chains: Path) -> Path:
    from gdbm.cli.main import main

    run = two_chains / "stereo_selection_run"
    if not (run / "checkpoint.pt").exists():
        assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1"]) == 0
    return run / "checkpoint.pt"


@pytest.mark.parametrize("select, retries, first_all_wrong", [(True, 0, False), (False, 0, False),
                                                              (True, 1, True), (True, 0, True)])
def test_a_gibbs_step_keeps_the_rightly_handed_candidate_at_higher_energy(two_chains: Path, fitted: Path, select,
                                                                          retries, first_all_wrong):
    """A Gibbs step over the training frame itself: per item two candidates, the frame's own atoms (rightly
    handed, energy 10) and the same with the step's stereocentres inverted (energy 0). With the selection the
    frame comes back unchanged; without it, the wrongly handed candidate is written. When the first round
    offers only wrongly handed candidates, a retry round finds the right one; without retries the wrong one stays."""
    sampler = Backmapper.from_checkpoint(fitted, two_chains / "topol.top", two_chains / "PS1.map",
                                         SamplerConfig(candidates=2, stereo_select=select, stereo_retries=retries))
    assert sampler.stereo is not None and (sampler.step_centres is not None) == select
    aa, cg = read_frames(two_chains / "aa.gro"), read_frames(two_chains / "cg.gro")
    x, boxes, beads = aa.positions.float(), cg.boxes.float(), cg.positions.float()
    fix = sampler.stereo
    assert not bool(fix.wrong(x, boxes).any())
    centres = fix.centres
    wrong_frame = invert(x.double(), boxes.double(), centres, torch.ones(1, len(centres), dtype=torch.bool)).float()
    carbons = set(centres[:, 0].tolist())
    # the group whose steps place the centre carbons (the backbone heavy atoms)
    group = next(g for g in sampler.groups if carbons & set(sampler.steps.atoms[g].flatten().tolist()))
    items = sampler._items(group, 1)

    def generate(env, atoms, rng):  # candidate 0: the frame's atoms; candidate 1: the centres inverted
        def local(positions):
            box = positions[0, atoms.clamp(min=0)]  # [b, L, 3]
            d = minimum_image(box - env.frames.centre.unsqueeze(1), boxes[0].expand(len(box), 3, 3))
            return d @ env.frames.rotation.transpose(1, 2)
        calls.append(len(atoms))
        first = local(wrong_frame if first_all_wrong and len(calls) == 1 else x)
        return torch.stack([first, local(wrong_frame)], 1), None

    calls: list[int] = []

    if select and not first_all_wrong:  # in a forward pass, unplaced neighbours stand at their beads' CG positions
        from gdbm.data.environment import local_environments

        env = local_environments(x, beads, boxes, items.frame, items.bead, sampler.fixpoint,
                                 sampler.environment.cutoff, absent=items.absent)
        local = generate(env, items.atoms, None)[0]
        calls.clear()
        for placed in (torch.zeros(1, x.shape[1], dtype=torch.bool), torch.ones(1, x.shape[1], dtype=torch.bool)):
            counts = sampler._wrongly_handed(items, env, local, x, placed, beads, boxes)
            assert counts[:, 0].sum() == 0 and bool((counts[:, 1] > 0).all())
    sampler._generate = generate
    sampler._energies = lambda items, env, local: (torch.tensor([[10.0, 0.0]]).expand(len(items.frame), 2),
                                                   torch.zeros(len(items.frame), 2))  # no clash
    atoms, present = x.clone(), torch.ones(1, x.shape[1], dtype=torch.bool)
    sampler._place(items, atoms, present, beads, boxes, torch.Generator().manual_seed(0))
    wrong = fix.wrong(atoms, boxes)[0]
    moved = set(centres[:, 0][wrong].tolist())
    placed = set(items.atoms.flatten().tolist())
    if select and first_all_wrong:
        assert sampler.selection["all_wrong"] == len(items.frame) == calls[0]
        assert calls[1:] == [len(items.frame)] * retries  # one retry round, for every item
        if not retries:
            assert moved and moved <= placed and sampler.selection["wrong_after_retries"] == len(items.frame)
            return
    if select:
        assert not bool(wrong.any())
        assert torch.allclose(minimum_image(atoms - x, boxes), torch.zeros_like(x), atol=1e-5)
        assert sampler.selection["wrong_after_retries"] == 0
        if not first_all_wrong:
            assert sampler.selection["changed"] == sampler.selection["contested"] > 0
            assert sampler.selection["all_wrong"] == 0
    else:
        assert moved and moved <= placed  # the lower-energy, wrongly handed carbons were written


@pytest.mark.parametrize("retries", [0, 1])
def test_a_clashing_candidate_gets_another_round(two_chains: Path, fitted: Path, retries):
    """A Gibbs step over the training frame: the first round offers only candidates whose first atom sits
    0.05 nm from a neighbour's atom (a clash by the bare Lennard-Jones energy); the retry round offers the
    frame's own atoms. With one clash retry the frame comes back unchanged and no clash is left; without,
    the clashing atoms are written."""
    sampler = Backmapper.from_checkpoint(fitted, two_chains / "topol.top", two_chains / "PS1.map",
                                         SamplerConfig(candidates=2, stereo=False, clash_retries=retries,
                                                       clash_energy=1000.0))  # the frame's own pairs stay below
    aa, cg = read_frames(two_chains / "aa.gro"), read_frames(two_chains / "cg.gro")
    x, boxes, beads = aa.positions.float(), cg.boxes.float(), cg.positions.float()
    group = sampler.groups[len(sampler.groups) // 2]
    items = sampler._items(group, 1)
    first = items.atoms[:, 0]  # [b] the first atom of each item
    # a neighbour of each first atom: the nearest atom that is not excluded from its LJ, placed by another bead
    aa = sampler.system.aa
    offsets = x[0, first].unsqueeze(1) - x[0].unsqueeze(0)  # [b, n, 3]
    d = minimum_image(offsets, boxes.expand(len(first), 3, 3)).norm(dim=-1)  # [b, n]
    excluded = torch.zeros(aa.n_atoms, aa.n_atoms, dtype=torch.bool)
    excluded[aa.exclusions[:, 0], aa.exclusions[:, 1]] = True
    excluded |= excluded.T.clone()
    excluded |= torch.eye(aa.n_atoms, dtype=torch.bool)
    d[excluded[first]] = float("inf")
    d[:, items.atoms[items.atoms >= 0]] = float("inf")
    neighbour = d.argmin(1)
    clashing = x.clone()
    towards = minimum_image((x[0, neighbour] - x[0, first]).unsqueeze(0), boxes)[0]  # [b, 3]
    clashing[0, first] = x[0, first] + towards * (1 - 0.05 / towards.norm(dim=-1, keepdim=True))
    calls: list[int] = []

    def generate(env, atoms, rng):
        def local(positions):
            box = positions[0, atoms.clamp(min=0)]  # [b, L, 3]
            dd = minimum_image(box - env.frames.centre.unsqueeze(1), boxes[0].expand(len(box), 3, 3))
            return dd @ env.frames.rotation.transpose(1, 2)
        calls.append(len(atoms))
        one = local(clashing if len(calls) == 1 else x)
        return torch.stack([one, one], 1), None

    sampler._generate = generate
    atoms, present = x.clone(), torch.ones(1, x.shape[1], dtype=torch.bool)
    sampler._place(items, atoms, present, beads, boxes, torch.Generator().manual_seed(0))
    assert sampler.selection["clashing"] == len(items.frame)
    assert calls[1:] == [len(items.frame)] * retries
    moved = minimum_image(atoms - x, boxes).norm(dim=-1)[0]  # [n]
    if retries:
        assert sampler.selection["clashing_after_retries"] == 0
        assert float(moved.max()) < 1e-5
    else:
        assert sampler.selection["clashing_after_retries"] == len(items.frame)
        assert bool((moved[first] > 0.01).all())
