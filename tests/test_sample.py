"""Backmapping plumbing on two real sPS chains with a tiny untrained network, and the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.cli.main import main
from gdbm.data import read_frames
from gdbm.data.trajectory import Frames
from gdbm.utils.pbc import minimum_image
from gdbm.sampling.backmapper import Backmapper, SamplerConfig
from gdbm.topology.system import MappedSystem, load_mapped_system
from gdbm.training.trainer import build_trainer
from gdbm.training.config import load_config

from conftest import N_CHAINS


def test_backmapped_atoms_sit_near_their_beads_and_repeat_with_a_seed(two_chains: Path):
    config = load_config(two_chains / "tiny.yaml")
    trainer = build_trainer(config, two_chains / "run")
    system = load_mapped_system(two_chains / "topol.top", two_chains / "PS1.map")
    cg = read_frames(two_chains / "cg.gro")
    sampler = Backmapper(system, trainer.state.generator.eval(), trainer.dataset.spec, trainer.dataset.plan,
                         config.environment, SamplerConfig(n_gibbs=1, candidates=2, seed=3))
    out = sampler.backmap(cg, samples=2, progress=False)
    assert out.positions.shape == (2, 162 * N_CHAINS, 3) and bool(torch.isfinite(out.positions).all())
    assert out.names[:2] == ["H1", "C2"]
    home = system.mapping.home_bead
    reach = minimum_image(out.positions - cg.positions[0, home], out.boxes).norm(dim=-1)  # [2, n]
    assert float(reach.max()) <= 0.6 * 3**0.5  # inside the voxel grid of every atom's home bead
    again = sampler.backmap(cg, samples=2, progress=False)
    assert torch.equal(out.positions, again.positions)
    assert not torch.equal(out.positions[0], out.positions[1])  # two samples of one CG frame differ


def test_cli_fit_then_backmap_writes_a_trajectory(two_chains: Path, capsys):
    run = two_chains / "cli_run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1"]) == 0
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run)]) == 2  # no silent restart
    out = two_chains / "out.xtc"
    args = ["backmap", "--checkpoint", str(run / "checkpoint.pt"), "--top", str(two_chains / "topol.top"),
            "--map", str(two_chains / "PS1.map"), "--cg", str(two_chains / "cg.gro"), "-o", str(out),
            "--gibbs", "0", "--candidates", "1", "--frames", "0:1"]
    assert main(args) == 0
    frames = read_frames(out, two_chains / "aa.gro")
    assert frames.positions.shape == (1, 162 * N_CHAINS, 3)
    assert main(args) == 2  # no overwrite without --force


def test_exported_generator_backmaps_exactly_like_its_checkpoint(two_chains: Path):
    from gdbm.utils.errors import InputError
    from gdbm.training.pretrained import export_generator, resolve_checkpoint

    run = two_chains / "export_run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1"]) == 0
    exported = export_generator(run / "checkpoint.pt", two_chains / "small.pt")
    assert exported.stat().st_size < (run / "checkpoint.pt").stat().st_size
    outputs = []
    for checkpoint in (run / "checkpoint.pt", exported):
        out = two_chains / f"{checkpoint.stem}.xtc"
        assert main(["backmap", "--checkpoint", str(checkpoint), "--top", str(two_chains / "topol.top"),
                     "--map", str(two_chains / "PS1.map"), "--cg", str(two_chains / "cg.gro"), "-o", str(out),
                     "--gibbs", "1", "--candidates", "2", "--precision", "bfloat16"]) == 0
        outputs.append(read_frames(out, two_chains / "aa.gro").positions)
    assert torch.equal(outputs[0], outputs[1])
    with pytest.raises(InputError, match="shipped"):
        resolve_checkpoint("no-such-model")


def test_constrained_backmapping_has_every_bond_at_b0(two_chains: Path):
    from gdbm.physics.constraints import bond_constraints

    config = load_config(two_chains / "tiny.yaml")
    trainer = build_trainer(config, two_chains / "run_constrained")
    system = load_mapped_system(two_chains / "topol.top", two_chains / "PS1.map")
    sampler = Backmapper(system, trainer.state.generator.eval(), trainer.dataset.spec, trainer.dataset.plan,
                         config.environment, SamplerConfig(n_gibbs=0, candidates=1, constrain_bonds=True))
    out = sampler.backmap(read_frames(two_chains / "cg.gro"), progress=False)
    pairs, b0 = bond_constraints(system.aa)
    lengths = minimum_image(out.positions[:, pairs[:, 1]] - out.positions[:, pairs[:, 0]], out.boxes).norm(dim=-1)
    assert float((lengths - b0).abs().max()) < 1e-4  # float32 output of a float64 projection


def test_fitted_bonds_put_every_hydrogen_at_b0_and_each_steps_bonds_near_it(two_chains: Path):
    from gdbm.physics.constraints import bond_constraints

    system, cg, args = _untrained_sampler(two_chains, "run_fit_bonds")
    pairs, b0 = bond_constraints(system.aa)
    light = (system.aa.masses[pairs] < 1.5).any(1)

    def errors(fit: bool) -> tuple[float, float]:
        out = Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=2, stereo=False, fit_bonds=fit)).backmap(
            cg, progress=False)
        lengths = minimum_image(out.positions[:, pairs[:, 1]] - out.positions[:, pairs[:, 0]], out.boxes).norm(dim=-1)
        error = (lengths - b0).abs()[0]
        return float(error[light].max()), float(error[~light].mean())

    (h_raw, heavy_raw), (h_fit, heavy_fit) = errors(False), errors(True)
    assert h_raw > 0.01 and h_fit < 1e-5  # an untrained network's hydrogens, put at b0 (float32 output)
    assert heavy_fit < heavy_raw  # the heavy bonds within a step fitted; those between steps not


def test_steps_run_in_batches_whose_items_do_not_interact(sps: Path):
    from gdbm.data.features import FeatureSpec
    from gdbm.data.environment import EnvironmentConfig
    from gdbm.ordering import OrderingConfig, plan_system
    from gdbm.conditioners.voxel import build_voxel_conditioner
    from gdbm.conditioners.voxel.config import VoxelConfig

    system = load_mapped_system(sps / "topol.top", sps / "PS1.map")
    spec = FeatureSpec.from_system(system, EnvironmentConfig())
    generator, _ = build_voxel_conditioner(spec.n_features, spec.n_target_types,
                                           VoxelConfig(resolution=4, channels=4, noise_dim=4, n_blocks=1))
    sampler = Backmapper(system, generator, spec, plan_system(system, OrderingConfig()))
    cg = read_frames(sps / "train_t568" / "cg" / "90.gro")
    beads = torch.cat([cg.positions, cg.positions]).float()  # two frames: items of different frames never clash
    boxes = torch.cat([cg.boxes, cg.boxes]).float()
    items = sampler._items(sampler.groups[0], 2)
    batches = sampler._independent(items, beads, boxes)
    assert sum(len(b.frame) for b in batches) == len(items.frame) == 72 and len(batches) > 1
    seen = torch.cat([b.frame * 10_000 + b.step for b in batches])
    assert torch.equal(seen.sort().values, (items.frame * 10_000 + items.step).sort().values)
    limit = sampler.environment.cutoff + sampler.config.reach
    for b in batches:
        centre = beads[b.frame, b.bead]
        gap = minimum_image(centre.unsqueeze(1) - centre.unsqueeze(0), boxes[b.frame]).norm(dim=-1)
        same = b.frame.unsqueeze(1) == b.frame
        assert not ((gap < limit) & same & ~torch.eye(len(centre), dtype=torch.bool)).any()


def _untrained_sampler(two_chains: Path, run: str) -> tuple[MappedSystem, Frames, tuple]:
    """The two chains' system, their CG frame, and the Backmapper arguments of an untrained network."""
    config = load_config(two_chains / "tiny.yaml")
    trainer = build_trainer(config, two_chains / run)
    system = load_mapped_system(two_chains / "topol.top", two_chains / "PS1.map")
    args = (system, trainer.state.generator.eval(), trainer.dataset.spec, trainer.dataset.plan, config.environment)
    return system, read_frames(two_chains / "cg.gro"), args


def test_relaxed_backmapping_holds_every_bead_on_its_cg_input(two_chains: Path):
    system, cg, args = _untrained_sampler(two_chains, "run_relaxed")
    raw = Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=1)).backmap(cg, progress=False)
    relaxed = Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=1, relax_steps=5)).backmap(cg, progress=False)

    def off(frames: Frames) -> float:
        beads = system.mapping.map_positions(frames.positions.double(), frames.boxes.double())
        return float(minimum_image(beads - cg.positions.double(), cg.boxes.double()).norm(dim=-1).max())

    assert off(raw) > 0.01  # an untrained network misses the beads ...
    assert off(relaxed) < 1e-4  # ... the relaxation puts them back (float32 output)


def test_held_centres_put_every_bead_on_its_cg_input_after_each_pass(two_chains: Path):
    from gdbm.physics.constraints import bond_constraints

    system, cg, args = _untrained_sampler(two_chains, "run_held")

    def off(frames: Frames) -> float:
        beads = system.mapping.map_positions(frames.positions.double(), frames.boxes.double())
        return float(minimum_image(beads - cg.positions.double(), cg.boxes.double()).norm(dim=-1).max())

    held = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=1, hold_centres=True)).backmap(cg, progress=False)
    assert off(held) < 1e-4  # a rigid shift per bead (PS1.map: no shared atoms), float32 output
    assert SamplerConfig(hold_centres=True).hold_centres == "rigid" and SamplerConfig().hold_centres == "off"
    smooth = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=1, hold_centres="smooth")).backmap(cg, progress=False)
    assert off(smooth) < 1e-4 and float((smooth.positions - held.positions).abs().max()) > 1e-3  # another shift
    pivot = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=1, hold_centres="pivot")).backmap(cg, progress=False)
    assert off(pivot) < 1e-4 and float((pivot.positions - smooth.positions).abs().max()) > 1e-3  # rings turned first
    seat = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=1, hold_centres="seat")).backmap(cg, progress=False)
    assert off(seat) < 1e-4 and float((seat.positions - pivot.positions).abs().max()) > 1e-3  # seated, bent
    assert _cli_sampler("--hold-centres", "seat").seat_keep == 0.7
    assert _cli_sampler("--fit-bonds").fit_bonds and not _cli_sampler().fit_bonds
    assert _cli_sampler("--hold-centres", "seat", "--seat-keep", "0.5").seat_keep == 0.5
    from gdbm.utils.errors import InputError

    with pytest.raises(InputError, match="seat-keep must be between"):
        _cli_sampler("--hold-centres", "seat", "--seat-keep", "1.5")
    with pytest.raises(InputError, match="--seat-keep is a setting of --hold-centres seat"):
        _cli_sampler("--hold-centres", "pivot", "--seat-keep", "0.5")

    both = Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=1, hold_centres=True, constrain_bonds=True))
    out = both.backmap(cg, progress=False)
    pairs, b0 = bond_constraints(system.aa)
    lengths = minimum_image(out.positions[:, pairs[:, 1]] - out.positions[:, pairs[:, 0]], out.boxes).norm(dim=-1)
    assert off(out) < 1e-4 and float((lengths - b0).abs().max()) < 1e-3  # the two projections alternated


def test_a_pass_far_off_the_cg_centres_warns_of_the_hold_mapping(two_chains: Path, caplog):
    system, cg, args = _untrained_sampler(two_chains, "run_far")
    sampler = Backmapper(*args, SamplerConfig(hold_centres="smooth"))
    start = cg.positions[:, :1].double().expand(len(cg), system.aa.n_atoms, 3)  # [F, n, 3] all atoms on bead 0
    on = sampler._smooth_shift.project(start, cg.boxes.double(), cg.positions.double())  # every centre on its bead
    with caplog.at_level("INFO", logger="gdbm.sampling.backmapper"):
        sampler._report_centre_offset(on, cg.positions, cg.boxes, "forward")
        assert "0.0000 nm (rms)" in caplog.text and "is --cg-map" not in caplog.text
        far = on + torch.tensor([0.2, 0.0, 0.0], dtype=torch.float64)
        sampler._report_centre_offset(far, cg.positions, cg.boxes, "sweep 1")
        assert "0.200 nm (rms) from the CG input: is --cg-map" in caplog.text


def test_each_pass_generates_its_own_number_of_candidates(two_chains: Path):
    from pydantic import ValidationError

    assert [SamplerConfig(pass_candidates=(4, 2, 16)).candidates_in(i) for i in range(5)] == [4, 2, 16, 16, 16]
    assert SamplerConfig(candidates=3).candidates_in(2) == SamplerConfig(candidates=3).candidates_in(2, last=True) == 3
    default = SamplerConfig()  # 4 per pass, 16 in the last, whose choice is kept
    assert [default.candidates_in(i, last=i == 2) for i in range(3)] == [4, 4, 16]
    assert SamplerConfig(candidates=2, last_candidates=5).candidates_in(0, last=True) == 5
    with pytest.raises(ValidationError):
        SamplerConfig(pass_candidates=(4, 0))
    system, cg, args = _untrained_sampler(two_chains, "run_per_pass")
    sampler = Backmapper(*args, SamplerConfig(n_gibbs=2, pass_candidates=(1, 3), stereo=False))
    seen: list[int] = []
    generate = sampler._generate

    def counting(env, atoms, rng):
        local, turn = generate(env, atoms, rng)  # [b, K, L, 3]
        seen.append(local.shape[1])
        return local, turn

    sampler._generate = counting
    sampler.backmap(cg, progress=False)
    per_pass = len(seen) // 3
    assert seen == [1] * per_pass + [3] * 2 * per_pass
    seen.clear()
    sampler = Backmapper(*args, SamplerConfig(n_gibbs=1, stereo=False))  # the default: 16 in the last pass only
    generate = sampler._generate
    sampler._generate = counting
    sampler.backmap(cg, progress=False)
    assert seen == [4] * per_pass + [16] * per_pass


def test_hydrogen_steps_take_their_own_number_of_candidates(two_chains: Path):
    """``hydrogen_candidates``: the hydrogen-only steps get that many (at most the pass's), the rest the pass's."""
    system, cg, args = _untrained_sampler(two_chains, "run_hydrogen_candidates")
    hydrogen = torch.tensor([e == "H" for e in system.aa.elements])

    def candidates_seen(pass_candidates: int) -> set[tuple[bool, int]]:
        sampler = Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=pass_candidates, hydrogen_candidates=2,
                                                  stereo=False))
        seen: set[tuple[bool, int]] = set()
        generate = sampler._generate

        def counting(env, atoms, rng):
            local, turn = generate(env, atoms, rng)  # [b, K, L, 3]
            kinds = {bool(hydrogen[row[row >= 0]].all()) for row in atoms}
            assert len(kinds) == 1  # one network call never mixes hydrogen and heavy steps
            seen.add((kinds.pop(), local.shape[1]))
            return local, turn

        sampler._generate = counting
        sampler.backmap(cg, progress=False)
        return seen

    assert candidates_seen(3) == {(True, 2), (False, 3)}
    assert candidates_seen(1) == {(True, 1), (False, 1)}  # never more than the pass's
    assert _cli_sampler("--hydrogen-candidates", "4").hydrogen_candidates == 4
    assert _cli_sampler().hydrogen_candidates is None


def test_noise_scale_multiplies_the_generators_latent_noise(two_chains: Path):
    """``noise_scale``: with the same seed, every network call gets the same noise times the scale."""
    _, cg, args = _untrained_sampler(two_chains, "run_noise_scale")

    def noises(scale: float) -> list[torch.Tensor]:
        sampler = Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=2, stereo=False, noise_scale=scale))
        seen: list[torch.Tensor] = []
        forward = sampler.generator.forward
        sampler.generator.forward = lambda particles, types, noise: seen.append(noise) or forward(particles, types, noise)
        try:
            sampler.backmap(cg, progress=False)
        finally:
            del sampler.generator.forward  # the samplers share one network
        return seen

    plain, hot = noises(1.0), noises(3.0)
    assert len(plain) == len(hot) > 0
    assert all(torch.allclose(3.0 * a, b) for a, b in zip(plain, hot))
    assert _cli_sampler("--noise-scale", "2.5").noise_scale == 2.5
    assert _cli_sampler().noise_scale == 1.0
    from gdbm.utils.errors import InputError

    with pytest.raises(InputError, match="noise-scale"):
        _cli_sampler("--noise-scale", "0")


def _cli_sampler(*flags: str) -> SamplerConfig:
    """The sampler config ``gdbm backmap FLAGS`` builds (with the arguments backmap adds itself)."""
    import argparse

    from gdbm.cli.backmap import add_sampling_arguments, job_options

    parser = argparse.ArgumentParser()
    add_sampling_arguments(parser, "CG")
    args = parser.parse_args(["--checkpoint", "sps-voxel", "-o", "out.pdb", *flags])  # records no sampler settings
    args.top, args.map, args.cg_map = "topol.top", "PS1.map", None
    return job_options(args)["sampler"]


def test_cli_candidates_per_pass_and_bad_lists():
    from gdbm.utils.errors import InputError

    assert _cli_sampler("--candidates", "4,4,16").pass_candidates == (4, 4, 16)
    six = _cli_sampler("--candidates", "6")
    assert six.candidates == 6 and six.pass_candidates is None and six.last_candidates == 6
    assert _cli_sampler() == SamplerConfig()  # no --candidates: the library's default
    for bad in ("4,0", "4,x", ""):
        with pytest.raises(InputError, match="--candidates"):
            _cli_sampler("--candidates", bad)


def _scoring_calls(sampler: Backmapper, cg: Frames) -> list[tuple]:
    """``(items, env, local)`` of every candidate scoring in one backmap of ``cg``."""
    calls: list[tuple] = []
    score = sampler._energies

    def recording(items, env, local):
        calls.append((items, env, local))
        return score(items, env, local)

    sampler._energies = recording
    sampler.backmap(cg, progress=False)
    sampler._energies = score
    return calls


def test_selection_weights_scale_each_energy_category_of_the_score(two_chains: Path):
    """The candidate score is a weighted sum: doubling the bond weight adds the bond energy once more."""
    from pydantic import ValidationError

    system, cg, args = _untrained_sampler(two_chains, "run_weights")
    sampler = Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=3, stereo=False))
    score = sampler._energies
    calls = _scoring_calls(sampler, cg)
    items, env, local = calls[len(calls) // 2]
    scores = {w: Backmapper(*args, SamplerConfig(n_gibbs=0, candidates=3, stereo=False,
                                                 selection_weights={"bond": w}))._energies(items, env, local)[0]
              for w in (0.0, 1.0, 2.0)}
    bond = scores[1.0] - scores[0.0]  # [B, K] the candidates' bond energies
    assert bond.abs().max() > 1.0
    scale = float(scores[2.0].abs().max())  # an untrained network's clashes: float64 sums of large terms
    torch.testing.assert_close(scores[2.0] - scores[1.0], bond, rtol=1e-6, atol=1e-12 * scale)
    torch.testing.assert_close(scores[1.0], score(items, env, local)[0])  # default: every weight 1
    with pytest.raises(ValidationError):
        SamplerConfig(selection_weights={"coulomb": 1.0})
    with pytest.raises(ValidationError):
        SamplerConfig(selection_weights={"bond": -1.0})


def test_cli_hydrogen_lookahead_shapes():
    from gdbm.utils.errors import InputError

    assert _cli_sampler().hydrogen_lookahead == ()
    assert _cli_sampler("--hydrogen-lookahead").hydrogen_lookahead == ("planar_ch", "ch", "ch2")
    assert _cli_sampler("--hydrogen-lookahead", "planar_ch, ch2").hydrogen_lookahead == ("planar_ch", "ch2")
    for bad in ("ch3", "", "planar_ch,x"):
        with pytest.raises(InputError, match="--hydrogen-lookahead"):
            _cli_sampler("--hydrogen-lookahead", bad)


def test_cli_selection_weights():
    from gdbm.utils.errors import InputError

    assert _cli_sampler("--selection-weights", "bond=0.1, lj=2").selection_weights == {"bond": 0.1, "lj": 2.0}
    assert _cli_sampler("--selection-weights", "lookahead=0.5").selection_weights == {"lookahead": 0.5}
    assert _cli_sampler().selection_weights == {}
    for bad in ("coulomb=1", "bond", "bond=x", "bond=-1"):
        with pytest.raises(InputError, match="--selection-weights"):
            _cli_sampler("--selection-weights", bad)


def test_bfloat16_sampling_runs_the_voxel_generator_channels_last(two_chains: Path):
    import warnings

    _, _, args = _untrained_sampler(two_chains, "run_channels_last")
    Backmapper(*args, SamplerConfig(precision="float32"))
    assert args[1].memory_format == torch.contiguous_format
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bfloat16 is emulated (and warned about) on CPUs without AVX512-BF16/AMX
        Backmapper(*args, SamplerConfig(precision="bfloat16"))
    assert args[1].memory_format == torch.channels_last_3d


def test_score_hidden_scores_heavy_candidates_with_the_adjacent_beads_hydrogens(two_chains: Path):
    """``score_hidden``: the energies of a heavy-atom step see the hydrogens the network does not (the adjacent
    beads', once placed), never the bead's own (rebuilt after it) nor the atoms being placed; off, none."""
    system, cg, args = _untrained_sampler(two_chains, "run_hidden")
    home, is_h = system.mapping.home_bead, system.aa.masses < 2.0

    for score_hidden in (False, True):
        seen_adjacent = 0
        sampler = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=2, stereo=False, score_hidden=score_hidden))
        for items, env, _ in _scoring_calls(sampler, cg):
            for b in range(len(items.frame)):
                seen = env.atom[b][env.mask[b]]
                placing = items.atoms[b][items.atoms[b] >= 0]
                hidden = items.absent[b][len(items.atoms[b]):]
                hidden = hidden[hidden >= 0]
                assert not bool(torch.isin(seen, placing).any())
                assert not bool(torch.isin(seen, hidden[home[hidden] == items.bead[b]]).any())
                adjacent = hidden[home[hidden] != items.bead[b]]
                assert bool(is_h[adjacent].all())
                seen_adjacent += int(torch.isin(seen, adjacent).sum())
        assert (seen_adjacent > 0) == score_hidden


def test_fixed_azimuth_reaches_the_generator_unturned_in_training_and_sampling(two_chains: Path):
    """``environment.azimuth: bead``: no random turn about z; every environment the generator sees, in a
    training batch or a sampling pass, has its azimuth bead in the xz half-plane with x > 0."""
    from gdbm.data.environment import azimuth_points, fixpoints
    from gdbm.training.trainer import shard_draw

    config = load_config(two_chains / "tiny.yaml")
    config = config.model_copy(update={"environment": config.environment.model_copy(update={"azimuth": "bead"})})
    trainer = build_trainer(config, two_chains / "run_azimuth")
    assert trainer.turn is False
    index = shard_draw(len(trainer.dataset), config.training.batch_size, trainer.distributed,
                       torch.Generator().manual_seed(0), None)  # the draw _batch makes first
    batch = trainer._batch(torch.Generator().manual_seed(0))
    unturned = torch.stack([trainer.dataset[int(i)].rotation for i in index])
    assert len(index) > 1 and torch.equal(batch.rotation, unturned)

    system, cg, args = _untrained_sampler(two_chains, "run_azimuth_sampler")
    sampler = Backmapper(*args[:4], config.environment, SamplerConfig(n_gibbs=1, candidates=3, stereo=False))
    assert sampler.turn is False
    azimuth = azimuth_points(system.mapping, fixpoints(system.mapping))
    generate, seen = sampler._generate, []

    def recording(env, atoms, rng):
        seen.append(env)
        return generate(env, atoms, rng)

    sampler._generate = recording
    sampler.backmap(cg, progress=False)
    checked = 0
    for env in seen:
        gap, centre_bead = torch.cdist(env.frames.centre.double(), cg.positions[0].double()).min(dim=1)  # [B]
        assert float(gap.max()) < 1e-5  # each environment sits on its own bead
        x_bead = azimuth[centre_bead]  # [B]
        hit = (env.bead == x_bead.unsqueeze(1)) & env.mask  # [B, P] the azimuth bead in the environment
        local = env.positions[hit]  # [h, 3]
        assert float(local[:, 1].abs().max()) < 1e-4 and bool((local[:, 0] > 0).all())
        checked += len(local)
    assert checked > 50


def test_hydrogen_lookahead_adds_the_lj_of_ideal_sites_to_heavy_steps_only(two_chains: Path):
    """``hydrogen_lookahead``: a heavy-atom step's score gains the Lennard-Jones energy of ideal hydrogen sites on
    its atoms with everything the score sees (recomputed here pair by pair); a hydrogen step's does not change."""
    from gdbm.topology.hydrogens import HydrogenGroups, ideal_sites

    system, cg, args = _untrained_sampler(two_chains, "run_lookahead")
    sampler = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=3, stereo=False,
                                              hydrogen_lookahead=("planar_ch", "ch", "ch2")))
    score = sampler._energies
    calls = _scoring_calls(sampler, cg)
    plain = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=3, stereo=False))
    aa, groups = system.aa, HydrogenGroups.from_topology(system.aa)
    excluded = {tuple(p) for p in aa.exclusions.tolist()}
    c6, c12, kind = aa.lj.c6, aa.lj.c12, aa.lj.atom_type
    checked = {"heavy": 0, "hydrogen": 0}
    for items, env, local in calls[len(calls) // 2:]:  # the sweep: every heavy neighbour placed
        extra = score(items, env, local)[0] - plain._energies(items, env, local)[0]  # [B, K]
        for b in range(len(items.frame)):
            seq = items.atoms[b][items.atoms[b] >= 0]
            heavy = seq[aa.masses[seq] > 2.0]
            if not len(heavy):
                assert float(extra[b].abs().max()) == 0.0
                checked["hydrogen"] += 1
                continue
            atom = env.mask[b] & (env.atom[b] >= 0)  # atoms, not beads
            where = {int(a): p.double() for a, p in zip(env.atom[b][atom], env.positions[b][atom])}
            for k in range(local.shape[1]):
                at = dict(where)
                at.update({int(a): local[b, k, i].double() for i, a in enumerate(seq)})
                sites = {}
                for c in heavy.tolist():
                    if not bool(groups.has_sites[c]):
                        continue
                    hs = groups.hydrogens[c][groups.hydrogens[c] >= 0]
                    nb = groups.heavy[c][groups.heavy[c] >= 0]
                    if not all(int(a) in at for a in nb):
                        continue
                    near = torch.stack([at[int(a)] for a in nb] + [at[int(nb[0])]] * (3 - len(nb)))
                    pos = ideal_sites(at[c], near, torch.tensor(len(nb)), torch.tensor(len(hs)), groups.length[c, :2],
                                      groups.angle[c])
                    sites.update({int(h): pos[i] for i, h in enumerate(hs)})
                expected = 0.0
                others = list(at.items())
                for h, p in sites.items():
                    for a, q in others + [(g, r) for g, r in sites.items() if g > h]:
                        if (min(h, a), max(h, a)) in excluded:
                            continue
                        r = float((p - q).norm())
                        expected += float(c12[kind[h], kind[a]]) / r**12 - float(c6[kind[h], kind[a]]) / r**6
                assert abs(float(extra[b, k]) - expected) <= 1e-6 * max(1.0, abs(expected))
            checked["heavy"] += 1
        if min(checked.values()) >= 3:
            break
    assert min(checked.values()) >= 3
    # planar_ch alone: the same sites on the phenyl's carbons, none on the backbone's CH and CH2
    planar = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=3, stereo=False, hydrogen_lookahead=("planar_ch",)))
    half = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=3, stereo=False, hydrogen_lookahead=("planar_ch",),
                                           selection_weights={"lookahead": 0.5}))
    seen = {"phenyl": 0, "backbone": 0}
    for items, env, local in calls[len(calls) // 2:]:
        every = score(items, env, local)[0] - plain._energies(items, env, local)[0]
        ring_only = planar._energies(items, env, local)[0] - plain._energies(items, env, local)[0]
        torch.testing.assert_close(half._energies(items, env, local)[0] - plain._energies(items, env, local)[0],
                                   ring_only / 2)  # selection_weights["lookahead"] scales the sites' LJ
        for b in range(len(items.frame)):
            seq = items.atoms[b][items.atoms[b] >= 0]
            heavy = seq[aa.masses[seq] > 2.0]
            if len(heavy) and all(aa.types[a].startswith("C_AR") for a in heavy.tolist()):
                torch.testing.assert_close(ring_only[b], every[b])
                seen["phenyl"] += 1
            elif len(heavy) and not any(aa.types[a].startswith("C_AR") for a in heavy.tolist()):
                assert float(ring_only[b].abs().max()) == 0.0 < float(every[b].abs().max())
                seen["backbone"] += 1
    assert min(seen.values()) > 0


def test_a_model_records_its_sampler_settings_and_the_flags_given_override_them(two_chains: Path):
    """``export_generator(sampler=...)``: what ``gdbm backmap`` and ``Backmapper.from_checkpoint`` use where no
    setting is given; each given one wins, and a recorded one can be switched off."""
    import argparse

    from gdbm.cli.backmap import add_sampling_arguments, job_options
    from gdbm.sampling.backmapper import sampler_for
    from gdbm.training.pretrained import export_generator
    from gdbm.utils.errors import InputError

    run = two_chains / "recorded_run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1"]) == 0
    recorded = dict(n_gibbs=1, pass_candidates=(2, 3), hold_centres="seat", seat_keep=0.6, fit_bonds=True,
                    pendant_turns=3, hydrogen_lookahead=("planar_ch",))
    model = export_generator(run / "checkpoint.pt", two_chains / "recorded.pt", sampler=recorded)
    assert sampler_for(run / "checkpoint.pt") == SamplerConfig()  # a fit checkpoint records none
    assert sampler_for(model) == SamplerConfig(**recorded)
    assert sampler_for(model, {"candidates": 5}).candidates_in(1) == 5  # a count given replaces the recorded list
    sampler = Backmapper.from_checkpoint(model, two_chains / "topol.top", two_chains / "PS1.map")
    assert sampler.config == SamplerConfig(**recorded)

    def cli(*flags: str) -> SamplerConfig:
        parser = argparse.ArgumentParser()
        add_sampling_arguments(parser, "CG")
        args = parser.parse_args(["--checkpoint", str(model), "-o", "out.pdb", *flags])
        args.top, args.map, args.cg_map = "topol.top", "PS1.map", None
        return job_options(args)["sampler"]

    assert cli() == SamplerConfig(**recorded)
    off = cli("--hold-centres", "off", "--no-fit-bonds", "--pendant-turns", "1", "--hydrogen-lookahead", "none",
              "--gibbs", "2")
    assert (off.hold_centres, off.fit_bonds, off.pendant_turns, off.hydrogen_lookahead, off.n_gibbs) == (
        "off", False, 1, (), 2)
    assert cli("--seat-keep", "0.5").seat_keep == 0.5  # the recorded hold is seat
    with pytest.raises(InputError, match="--seat-keep is a setting of --hold-centres seat"):
        cli("--hold-centres", "pivot", "--seat-keep", "0.5")
    bad = export_generator(run / "checkpoint.pt", two_chains / "bad.pt", sampler={"hold_centers": "seat"})
    with pytest.raises(InputError, match="recorded sampler settings"):
        sampler_for(bad)


def _scored_counts(two_chains: Path, run: str, config: SamplerConfig) -> set[tuple[bool, int]]:
    """Backmap with ``config`` and return, per scored group of items, whether they were ring steps and how many
    candidates each had."""
    from gdbm.sampling.pendant_turns import holding_bonds

    system, cg, args = _untrained_sampler(two_chains, run)
    sampler = Backmapper(*args, config)
    inner, _ = holding_bonds(system.aa, sampler.steps.atoms)
    energies = sampler._energies
    scored: list[tuple[bool, int]] = []

    def counting(items, env, local):
        scored.append((bool((inner[items.step] >= 0).all()), local.shape[1]))
        return energies(items, env, local)

    sampler._energies = counting
    out = sampler.backmap(cg, progress=False)
    assert bool(torch.isfinite(out.positions).all())
    return set(scored)


def test_pendant_turns_score_turned_copies_of_the_ring_steps_only(two_chains: Path):
    config = SamplerConfig(n_gibbs=0, candidates=2, pendant_turns=3, stereo=False)
    assert _scored_counts(two_chains, "run_pendant_turns", config) == {(True, 6), (False, 2)}  # + 2 turned copies
    assert _cli_sampler("--pendant-turns", "4").pendant_turns == 4 and _cli_sampler().pendant_turns == 1
    from gdbm.utils.errors import InputError

    with pytest.raises(InputError, match="--pendant-turns must be >= 1"):
        _cli_sampler("--pendant-turns", "0")


def test_the_bond_cap_shortens_only_the_long_bonds_as_a_last_step(two_chains: Path):
    """``bond_cap``: after the last pass, every bond beyond b0 + cap is brought to it (the centres held again),
    the others kept; with the hydrogens' renaming it is a function of the last pass's atoms alone (the same
    frames without both, finished after)."""
    from gdbm.physics.constraints import bond_constraints

    system, cg, args = _untrained_sampler(two_chains, "run_bond_cap")
    pairs, b0 = bond_constraints(system.aa)
    settings = dict(n_gibbs=0, candidates=2, hold_centres="seat")
    raw = Backmapper(*args, SamplerConfig(**settings, hydrogen_names=False)).backmap(cg, progress=False)
    capping = Backmapper(*args, SamplerConfig(**settings, bond_cap=0.03))
    capped = capping.backmap(cg, progress=False)

    def stretch(frames: Frames) -> torch.Tensor:
        x = frames.positions.double()
        return (minimum_image(x[:, pairs[:, 1]] - x[:, pairs[:, 0]], frames.boxes.double()).norm(dim=-1) - b0)[0]

    before, after = stretch(raw), stretch(capped)
    assert int((before > 0.031).sum()) > 5 and float(after.max()) < 0.031  # an untrained network breaks bonds
    beads = cg.positions.double()
    assert torch.equal(capping.finish(raw.positions, cg.positions, raw.boxes, 0), capped.positions)
    held = system.mapping.map_positions(capped.positions.double(), capped.boxes.double())
    assert float(minimum_image(held - beads, capped.boxes.double()).norm(dim=-1).max()) < 1e-3
    assert _cli_sampler("--bond-cap", "0.04").bond_cap == 0.04 and _cli_sampler().bond_cap is None
    from gdbm.utils.errors import InputError

    with pytest.raises(InputError, match="--bond-cap"):
        _cli_sampler("--bond-cap", "long")


def test_pendant_tilt_scores_leaned_and_tilted_copies_with_the_turned_ones(two_chains: Path):
    config = SamplerConfig(n_gibbs=0, candidates=2, pendant_turns=3, pendant_tilt=10, stereo=False)
    # each ring candidate, 3 turns, each with 4 leaned and tilted copies
    assert _scored_counts(two_chains, "run_pendant_tilt", config) == {(True, 30), (False, 2)}
    assert _cli_sampler("--pendant-tilt", "12").pendant_tilt == 12 and _cli_sampler().pendant_tilt is None
    assert _cli_sampler("--pendant-tilt", "off").pendant_tilt is None
    from gdbm.utils.errors import InputError

    for bad in ("0", "90", "ten"):
        with pytest.raises(InputError, match="--pendant-tilt"):
            _cli_sampler("--pendant-tilt", bad)


def test_the_hydrogen_sweep_places_only_the_hydrogens_again_after_the_hold(two_chains: Path):
    """``hydrogen_sweep``: after the last pass and its hold, the hydrogens are chosen once more among the held heavy
    atoms, which stay where the hold put them; the centres are not held again."""
    system, cg, args = _untrained_sampler(two_chains, "run_hydrogen_sweep")
    hydrogen = torch.tensor([e == "H" for e in system.aa.elements])
    settings = dict(n_gibbs=1, candidates=2, hold_centres="rigid", stereo=False)
    held = Backmapper(*args, SamplerConfig(**settings)).backmap(cg, progress=False)
    swept = Backmapper(*args, SamplerConfig(**settings, hydrogen_sweep=True)).backmap(cg, progress=False)
    assert torch.equal(swept.positions[:, ~hydrogen], held.positions[:, ~hydrogen])
    moved = (swept.positions - held.positions)[:, hydrogen].norm(dim=-1)  # [F, H]
    assert float(moved.min()) > 0  # every hydrogen placed anew

    def off(frames: Frames) -> float:
        beads = system.mapping.map_positions(frames.positions.double(), frames.boxes.double())
        return float(minimum_image(beads - cg.positions.double(), cg.boxes.double()).norm(dim=-1).max())

    assert off(held) < 1e-4 < off(swept)  # the hydrogens' share of the centres, not held again
    assert _cli_sampler("--hydrogen-sweep").hydrogen_sweep and not _cli_sampler().hydrogen_sweep


def test_held_candidates_sit_on_their_beads_cg_centres_when_scored(two_chains: Path):
    """``held_candidates``: in a sweep, every candidate of a heavy-atom step that fills one bead is moved onto its
    CG centre before scoring (least squares where the step's atoms share beads); the first pass is left alone."""
    system, cg, args = _untrained_sampler(two_chains, "run_held_candidates")
    sampler = Backmapper(*args, SamplerConfig(n_gibbs=1, candidates=3, held_candidates=True, stereo=False))
    energies = sampler._energies
    before: list[float] = []
    after: list[float] = []

    def scoring(items, env, local):
        b, k, length, _ = local.shape
        x = sampler._atoms.double().clone()  # [F, n, 3]
        worst = 0.0
        for c in range(k):
            y = x.clone()
            valid = items.atoms >= 0
            box = env.frames.to_box(local[:, c]).double()  # [b, L, 3]
            y[items.frame.unsqueeze(1).expand_as(items.atoms)[valid], items.atoms[valid]] = box[valid]
            centres = sampler.hold.map_positions(y, cg.boxes.double())
            off = minimum_image(centres - cg.positions.double(), cg.boxes.double()).norm(dim=-1)  # [F, nb]
            worst = max(worst, float(off[items.frame, items.bead].max()))
        heavy = bool(sampler.steps.heavy[items.step].all())
        (after if sampler._swept else before).append((heavy, worst))
        return energies(items, env, local)

    place = sampler._place

    def placing(items, atoms, present, beads, boxes, rng):
        sampler._atoms, sampler._swept = atoms, bool(present.all())
        return place(items, atoms, present, beads, boxes, rng)

    sampler._energies, sampler._place = scoring, placing
    sampler.backmap(cg, progress=False)
    assert max(w for _, w in before) > 0.05  # an untrained network misses the centres ...
    assert max(w for heavy, w in after if heavy) < 1e-5  # ... a held candidate does not (PS1.map: one bead each)
    assert max(w for heavy, w in after if not heavy) > 1e-3  # hydrogen steps are left as generated
    assert _cli_sampler("--held-candidates").held_candidates and not _cli_sampler().held_candidates
    assert _cli_sampler("--selection-kt", "4.72").selection_kt == 4.72 and _cli_sampler().selection_kt == 0
    from gdbm.utils.errors import InputError

    with pytest.raises(InputError, match="--selection-kt must be >= 0"):
        _cli_sampler("--selection-kt", "-1")
