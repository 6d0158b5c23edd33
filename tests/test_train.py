"""The adversarial trainer on real sPS data with a tiny network: it learns, it resumes exactly; ``gdbm fit``'s run folder."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from gdbm.training.config import load_config
from gdbm.training.log import CSVLog
from gdbm.training.trainer import build_trainer, critic_loss, generate_sequence, supervised_loss
from gdbm.utils.errors import InputError

TINY = {
    "model": {"conditioner": "voxel", "voxel": {"resolution": 4, "length": 1.2, "channels": 4, "noise_dim": 4,
                                            "n_blocks": 1, "norm": "layer"}},
    "training": {"batch_size": 4, "n_critic": 1, "steps": 2, "checkpoint_every": 1, "log_every": 1,
                 "threads": 1, "lr_critic": 1e-3, "lr_generator": 1e-3},
    "prior": {"mode": "match", "weight": 1e-6, "ramp_start": 0, "ramp_end": 1},
}


@pytest.fixture()
def config(tmp_path: Path, sps: Path):
    text = f"""
data:
  topology: {sps / 'topol.top'}
  mapping: {sps / 'PS1.map'}
  aa: {sps / 'train_t568' / 'aa' / '90.gro'}
  cg: {sps / 'train_t568' / 'cg' / '90.gro'}
  cg_map: {sps / 'PS1_cg_fritz.map'}
"""
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return load_config(path, TINY)


def test_sequences_are_unrolled(config, tmp_path: Path):
    trainer = build_trainer(config, tmp_path / "run")
    batch = trainer._batch(trainer._rng(0, 0))
    noise = trainer._noise(batch, trainer._rng(0, 0))
    noise.requires_grad_(True)
    fake = generate_sequence(trainer.state.generator, batch, noise)
    assert fake.shape == batch.targets.shape
    k = int(batch.step_mask.sum(1).max()) - 1  # the last step depends on the noise of earlier steps
    (grad,) = torch.autograd.grad(fake[:, k].sum(), noise)
    assert grad[:, :k].abs().sum() > 0 and grad[:, k + 1:].abs().sum() == 0


def fixed_batch(trainer):
    """The batch of step 0, draw 0 and the generator's sequences for it (no gradients)."""
    batch = trainer._batch(trainer._rng(0, 0))
    with torch.no_grad():
        fake = generate_sequence(trainer.state.generator, batch, trainer._noise(batch, trainer._rng(0, 0)))
    return batch, fake


def test_one_critic_update_lowers_its_loss_on_a_fixed_batch(config, tmp_path: Path):
    trainer = build_trainer(config, tmp_path / "run")
    s = trainer.state
    batch, fake = fixed_batch(trainer)
    before, _ = critic_loss(s.critic, batch, fake, 10.0, torch.Generator().manual_seed(1))
    s.opt_critic.zero_grad()
    before.backward()
    s.opt_critic.step()
    after, _ = critic_loss(s.critic, batch, fake, 10.0, torch.Generator().manual_seed(1))
    assert after.item() < before.item()


def test_resume_repeats_the_uninterrupted_run(config, tmp_path: Path):
    straight = build_trainer(config, tmp_path / "a")
    straight.fit(1, progress=False)
    shutil.copy(tmp_path / "a" / "checkpoint.pt", tmp_path / "step1.pt")
    straight.fit(2, progress=False)

    resumed = build_trainer(config, tmp_path / "b")
    assert resumed.resume(tmp_path / "step1.pt") and resumed.state.step == 1
    resumed.fit(2, progress=False)
    for a, b in zip(straight.state.generator.parameters(), resumed.state.generator.parameters()):
        assert torch.equal(a, b)
    rows = straight.log.rows()
    assert [r["step"] for r in rows] == ["1", "2"] and "wasserstein" in rows[0]


def test_gradient_penalty_on_a_fraction_of_the_batch(config, tmp_path: Path):
    trainer = build_trainer(config, tmp_path / "run")
    s = trainer.state
    batch, fake = fixed_batch(trainer)
    sizes: list[int] = []
    handle = s.critic.register_forward_hook(lambda _m, args, _out: sizes.append(len(args[2])))
    _, full = critic_loss(s.critic, batch, fake, 10.0, torch.Generator().manual_seed(1))
    b = len(batch.frame)
    assert set(sizes) == {3 * b}
    sizes.clear()
    _, part = critic_loss(s.critic, batch, fake, 10.0, torch.Generator().manual_seed(1), gp_fraction=0.5)
    handle.remove()
    assert set(sizes) == {2 * b + b // 2}
    assert part["wasserstein"] == pytest.approx(full["wasserstein"], rel=1e-5)
    assert part["gradient_penalty"] > 0


def test_kept_checkpoints(config, tmp_path: Path):
    kept = config.model_copy(update={"training": config.training.model_copy(update={"keep_every": 1,
                                                                                     "checkpoint_every": 5})})
    trainer = build_trainer(kept, tmp_path / "run")
    trainer.fit(2, progress=False)
    for step in (1, 2):
        assert torch.load(tmp_path / "run" / f"checkpoint_{step}.pt", weights_only=False)["step"] == step


def test_supervised_warm_up_then_adversarial_steps(config, tmp_path: Path):
    from gdbm.training.trainer import supervised_loss

    warm = config.model_copy(update={"training": config.training.model_copy(update={"pretrain_steps": 2,
                                                                                     "steps": 3})})
    trainer = build_trainer(warm, tmp_path / "run")
    batch = trainer._batch(trainer._rng(0, 1))
    noise = trainer._noise(batch, trainer._rng(0, 1))
    before, _ = supervised_loss(trainer.state.generator, batch, noise, trainer.prior, 0.0)
    trainer.fit(2, progress=False)  # the two supervised updates (one of them on another batch)
    after, _ = supervised_loss(trainer.state.generator, batch, noise, trainer.prior, 0.0)
    assert after.item() < before.item()
    assert trainer.state.opt_generator.param_groups[0]["lr"] == warm.training.lr_generator
    trainer.fit(3, progress=False)  # an adversarial update: the log widens its header
    rows = trainer.log.rows()
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["supervised_mse"] and not rows[0]["wasserstein"] and rows[2]["wasserstein"]


def test_supervised_learning_rate_falls_on_a_cosine_to_its_final_value(config, tmp_path: Path):
    from gdbm.training.trainer import supervised_lr

    decayed = config.model_copy(update={"training": config.training.model_copy(
        update={"pretrain_steps": 3, "steps": 3, "pretrain_lr": 1e-3, "pretrain_lr_final": 1e-5})})
    assert [supervised_lr(decayed.training, k) for k in range(3)] == pytest.approx([1e-3, 5.05e-4, 1e-5])
    assert supervised_lr(config.training, 7) == config.training.pretrain_lr  # no final value: constant
    trainer = build_trainer(decayed, tmp_path / "run")
    optimiser, seen = trainer.state.opt_generator, []
    step = optimiser.step

    def spy(*args, **kwargs):
        seen.append(optimiser.param_groups[0]["lr"])
        return step(*args, **kwargs)

    optimiser.step = spy
    trainer.fit(3, progress=False)
    assert seen == pytest.approx([1e-3, 5.05e-4, 1e-5])


def test_adversarial_learning_rates_fall_on_a_cosine_from_the_decay_start(config, tmp_path: Path):
    from gdbm.training.trainer import adversarial_lr_scale

    t = config.training.model_copy(update={"pretrain_steps": 1, "steps": 5, "n_critic": 2, "lr_decay_to": 0.01,
                                           "lr_decay_start": 2})
    assert [adversarial_lr_scale(t, k) for k in range(5)] == pytest.approx([1, 1, 1, 0.505, 0.01])
    assert adversarial_lr_scale(config.training, 4) == 1.0  # no decay set: constant
    trainer = build_trainer(config.model_copy(update={"training": t}), tmp_path / "run")
    seen: dict[str, list[float]] = {"generator": [], "critic": []}
    for name in seen:
        optimiser = getattr(trainer.state, f"opt_{name}")
        step = optimiser.step

        def spy(*args, _opt=optimiser, _step=step, _name=name, **kwargs):
            seen[_name].append(_opt.param_groups[0]["lr"])
            return _step(*args, **kwargs)

        optimiser.step = spy
    trainer.fit(5, progress=False)
    factors = [1, 1, 0.505, 0.01]  # the adversarial updates 1-4
    assert seen["generator"][1:] == pytest.approx([t.lr_generator * f for f in factors])
    assert seen["critic"] == pytest.approx([t.lr_critic * f for f in factors for _ in range(2)])
    assert float(trainer.log.rows()[-1]["lr_scale"]) == pytest.approx(0.01)


def test_supervised_weight_adds_the_squared_distance_to_the_adversarial_loss(config, tmp_path: Path):
    from gdbm.training.trainer import generator_loss, supervised_loss

    trainer = build_trainer(config, tmp_path / "run")
    g, critic = trainer.state.generator, trainer.state.critic
    g.eval()  # the same forward pass for every call
    batch = trainer._batch(trainer._rng(0, 1))
    noise = trainer._noise(batch, trainer._rng(0, 1))
    plain, _ = generator_loss(g, critic, batch, noise, trainer.prior, 0.0)
    tethered, stats = generator_loss(g, critic, batch, noise, trainer.prior, 0.0, supervised_weight=3.0)
    _, reference = supervised_loss(g, batch, noise, trainer.prior, 0.0)
    assert stats["supervised_mse"] == pytest.approx(reference["supervised_mse"]) and stats["supervised_mse"] > 0
    assert tethered.item() == pytest.approx(plain.item() + 3.0 * stats["supervised_mse"], rel=1e-5)


def test_centre_shift_sees_a_shifted_sequence_but_not_scatter_about_its_centre(config, tmp_path: Path):
    from gdbm.training.trainer import _centre_shift

    trainer = build_trainer(config, tmp_path / "run")
    batch = trainer._batch(trainer._rng(0, 1))
    mask = batch.step_mask.float()[..., None]  # [B, L, 1]
    scatter = torch.randn_like(batch.targets) * mask
    scatter = scatter - scatter.sum(1, keepdim=True) / mask.sum(1, keepdim=True) * mask  # zero mean per sequence
    padding = torch.randn_like(batch.targets) * (1 - mask)  # padding steps never count
    assert _centre_shift(batch.targets + scatter + padding, batch).item() == pytest.approx(0.0, abs=1e-10)
    shift = torch.tensor([0.03, -0.04, 0.0])
    assert _centre_shift(batch.targets + scatter + shift, batch).item() == pytest.approx(0.0025, rel=1e-4)


def test_centre_weight_adds_the_centre_shift_to_both_losses(config, tmp_path: Path):
    from gdbm.training.trainer import generator_loss, supervised_loss

    trainer = build_trainer(config, tmp_path / "run")
    g, critic = trainer.state.generator, trainer.state.critic
    g.eval()
    batch = trainer._batch(trainer._rng(0, 1))
    noise = trainer._noise(batch, trainer._rng(0, 1))
    plain, stats = supervised_loss(g, batch, noise, trainer.prior, 0.0)
    held, _ = supervised_loss(g, batch, noise, trainer.prior, 0.0, centre_weight=5.0)
    assert 0 < stats["centre_mse"] < stats["supervised_mse"]  # the centre of a sequence errs less than its atoms
    assert held.item() == pytest.approx(plain.item() + 5.0 * stats["centre_mse"], rel=1e-5)
    adversarial, _ = generator_loss(g, critic, batch, noise, trainer.prior, 0.0)
    adv_held, _ = generator_loss(g, critic, batch, noise, trainer.prior, 0.0, centre_weight=5.0)
    assert adv_held.item() == pytest.approx(adversarial.item() + 5.0 * stats["centre_mse"], rel=1e-5)


def test_best_of_k_supervised_loss_counts_each_sequences_nearest_sample(config, tmp_path: Path):
    """``noise [K, B, L, N]``: the squared distance of each sequence's best sample (never more than any one
    sample's), the prior averaged over the samples; one sample in a K axis is the plain loss; the trainer
    draws K noises when ``training.supervised_samples`` says so."""
    from gdbm.training.trainer import _sequence_squared_distance, supervised_loss

    trainer = build_trainer(config, tmp_path / "run")
    g = trainer.state.generator
    g.eval()
    batch = trainer._batch(trainer._rng(0, 1))
    noises = torch.stack([trainer._noise(batch, trainer._rng(k, 1)) for k in range(3)])  # [K, B, L, N]
    single = [supervised_loss(g, batch, n, trainer.prior, 1.0) for n in noises]
    best, stats = supervised_loss(g, batch, noises, trainer.prior, 1.0)
    one, one_stats = supervised_loss(g, batch, noises[:1], trainer.prior, 1.0)
    assert one.item() == pytest.approx(single[0][0].item(), rel=1e-6)
    assert one_stats["supervised_mse"] == pytest.approx(single[0][1]["supervised_mse"], rel=1e-6)
    per_sample = torch.stack([_sequence_squared_distance(generate_sequence(g, batch, n), batch) for n in noises])
    expected = per_sample.min(0).values.sum() / batch.step_mask.sum()
    assert stats["supervised_mse"] == pytest.approx(expected.item(), rel=1e-5)
    assert stats["supervised_mse"] <= min(s["supervised_mse"] for _, s in single) + 1e-9
    assert stats["prior_cost"] == pytest.approx(sum(s["prior_cost"] for _, s in single) / 3, rel=1e-5)
    # only the winners get a gradient: a sample that is nobody's best leaves the loss unchanged
    fake = [generate_sequence(g, batch, n).detach().requires_grad_(True) for n in noises]
    from gdbm.training.trainer import _best_squared_distance
    _best_squared_distance(fake, batch).backward()
    winners = per_sample.argmin(0)  # [B]
    for k, f in enumerate(fake):
        touched = f.grad.abs().sum((1, 2)) > 0  # [B]
        assert torch.equal(touched, winners == k)

    k_config = config.model_copy(update={"training": config.training.model_copy(update={"supervised_samples": 3,
                                                                                          "pretrain_steps": 1})})
    k_trainer = build_trainer(k_config, tmp_path / "run_k")
    drawn = []
    original = k_trainer._noise
    k_trainer._noise = lambda b, rng: drawn.append(1) or original(b, rng)
    k_trainer.train_step()
    assert len(drawn) == 3


def test_energy_score_is_lowest_when_the_samples_scatter_as_the_reference_does():
    """The energy score of two samples per sequence, over many sequences whose reference scatters with
    standard deviation 1 about the same point, is lowest for samples with that spread: smaller (the
    conditional mean's collapse) and larger spreads both score worse; masked steps do not count."""
    from types import SimpleNamespace

    from gdbm.training.trainer import _energy_score

    g = torch.Generator().manual_seed(0)
    n = 20000
    batch = SimpleNamespace(targets=torch.randn(n, 2, 3, generator=g, dtype=torch.float64),
                            step_mask=torch.tensor([True, False]).repeat(n, 1),
                            relabellings=torch.zeros(n, 1, 2, dtype=torch.long))
    scores = {}
    for spread in (0.01, 0.5, 1.0, 1.5):
        fakes = [spread * torch.randn(n, 2, 3, generator=g, dtype=torch.float64) for _ in range(2)]
        for f in fakes:
            f[:, 1] = 1e3  # a masked step, far away
        scores[spread] = _energy_score(fakes, batch).item()
    assert min(scores, key=scores.get) == 1.0, scores
    assert scores[0.01] > scores[0.5] > scores[1.0] < scores[1.5]


def test_energy_score_objective_scores_the_samples_together(config, tmp_path: Path):
    """``training.supervised_objective: energy_score``: the loss is the energy score of the K samples (plus the
    prior), the first sample's squared distance is only logged, and every sample gets a gradient."""
    from gdbm.training.trainer import _energy_score, _squared_distance, supervised_loss

    trainer = build_trainer(config, tmp_path / "run")
    g = trainer.state.generator
    g.eval()
    batch = trainer._batch(trainer._rng(0, 1))
    noises = torch.stack([trainer._noise(batch, trainer._rng(k, 1)) for k in range(2)])  # [K, B, L, N]
    loss, stats = supervised_loss(g, batch, noises, trainer.prior, 0.0, objective="energy_score")
    fakes = [generate_sequence(g, batch, n) for n in noises]
    assert loss.item() == pytest.approx(_energy_score(fakes, batch).item(), rel=1e-5)
    assert stats["energy_score"] == pytest.approx(loss.item(), rel=1e-6)
    assert stats["supervised_mse"] == pytest.approx(_squared_distance(fakes[0], batch).item(), rel=1e-5)
    leaves = [f.detach().requires_grad_(True) for f in fakes]
    _energy_score(leaves, batch).backward()
    assert all(bool((f.grad.abs().sum((1, 2)) > 0).all()) for f in leaves)

    es_config = config.model_copy(update={"training": config.training.model_copy(
        update={"supervised_samples": 2, "supervised_objective": "energy_score", "pretrain_steps": 1})})
    assert "energy_score" in build_trainer(es_config, tmp_path / "run_es").train_step()


def test_energy_score_groups_scores_only_the_ring_steps_by_the_energy_score(config, tmp_path: Path):
    """``supervised_objective: energy_score_groups``: the heavy sequences of three or more atoms are scored by the
    energy score (times ``energy_score_weight``, mean over the batch's sequences), every other sequence by its first
    sample's squared distance (mean over the batch's steps)."""
    from gdbm.training.trainer import _energy_scores, _per_step, _sequence_squared_distance, group_sequences
    from gdbm.training.trainer import supervised_loss

    trainer = build_trainer(config, tmp_path / "run")
    g = trainer.state.generator
    g.eval()
    batch = trainer._batch(trainer._rng(0, 1))
    groups = group_sequences(batch)  # [B]
    assert bool(groups.any()) and bool((~groups).any())  # rings and backbone / hydrogen steps
    assert bool(batch.heavy[groups].all()) and bool((batch.step_mask[groups].sum(1) >= 3).all())
    noises = torch.stack([trainer._noise(batch, trainer._rng(k, 1)) for k in range(2)])  # [K, B, L, N]
    loss, stats = supervised_loss(g, batch, noises, trainer.prior, 0.0, objective="energy_score_groups",
                                  energy_score_weight=0.25)
    fakes = [generate_sequence(g, batch, n) for n in noises]
    rest = _per_step(_sequence_squared_distance(fakes[0], batch) * ~groups, batch)
    rings = (_energy_scores(fakes, batch) * groups).sum() / len(groups)
    assert loss.item() == pytest.approx(rest.item() + 0.25 * rings.item(), rel=1e-5)
    assert stats["energy_score"] == pytest.approx(loss.item(), rel=1e-6)


def test_resuming_with_another_config_warns_and_names_what_changed(config, tmp_path: Path):
    import warnings

    first = build_trainer(config, tmp_path / "a")
    first.fit(1, progress=False)
    longer = config.model_copy(update={"training": config.training.model_copy(update={"steps": 9})})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a longer run of the same config is no change
        assert build_trainer(longer, tmp_path / "a").resume()
    other = config.model_copy(update={"prior": config.prior.model_copy(update={"mode": "min", "weight": 0.5})})
    with pytest.warns(UserWarning, match=r"differs .* in: prior\.mode, prior\.weight$"):
        build_trainer(other, tmp_path / "a").resume()


@pytest.fixture()
def config_file(tmp_path: Path, sps: Path) -> Path:
    """The tiny experiment as a YAML file, its conditioner key spelled the old way (``encoder: e3nn``)."""
    data = {"topology": str(sps / "topol.top"), "mapping": str(sps / "PS1.map"),
            "aa": str(sps / "train_t568" / "aa" / "90.gro"), "cg": str(sps / "train_t568" / "cg" / "90.gro"),
            "cg_map": str(sps / "PS1_cg_fritz.map")}
    model = {"encoder": "e3nn", "voxel": TINY["model"]["voxel"]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "data": data, "model": model}))
    return path


def test_fit_cli_run_folder_lifecycle(config_file: Path, tmp_path: Path, capsys):
    from gdbm.cli.main import main

    run = tmp_path / "run"
    fit = ["fit", "--config", str(config_file), "-o", str(run)]
    assert main([*fit, "--resume"]) == 2  # nothing to resume: an error, not a silent fresh start
    assert "no checkpoint.pt to resume" in capsys.readouterr().err and not run.exists()

    assert main([*fit, "--encoder", "voxel", "--steps", "1"]) == 0  # the deprecated flag still works
    assert capsys.readouterr().err.count("--encoder is deprecated") == 1
    assert torch.load(run / "checkpoint.pt", weights_only=False)["config"]["model"]["conditioner"] == "voxel"
    assert (run / "config.yaml").read_text() == config_file.read_text()

    assert main([*fit, "--conditioner", "voxel"]) == 2  # a run folder is never silently overwritten
    assert "--resume" in capsys.readouterr().err
    assert main([*fit, "--conditioner", "voxel", "--resume"]) == 0
    assert "resuming at step 1 -> 2 steps" in capsys.readouterr().out
    assert [r["step"] for r in CSVLog(run / "log.csv").rows()] == ["1", "2"]

    (run / "checkpoint_2.pt").write_bytes((run / "checkpoint.pt").read_bytes())  # a kept copy
    assert main([*fit, "--conditioner", "voxel", "--force", "--steps", "1"]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.yaml", "log.csv", "training.png"]
    assert [r["step"] for r in CSVLog(run / "log.csv").rows()] == ["1"]


def test_conditioner_override_and_its_choices_come_from_the_registry(config_file: Path, capsys, monkeypatch):
    from gdbm.cli.main import build_parser
    from gdbm.conditioners.registry import CONDITIONERS, ConditionerEntry
    from gdbm.conditioners.voxel.config import VoxelConfig
    from gdbm.training.run_folder import with_conditioner

    config = load_config(config_file)
    assert config.model.conditioner == "e3nn"
    assert with_conditioner(config, "voxel", config_file).model.conditioner == "voxel"
    with pytest.raises(InputError, match="tiny.yaml"):
        with_conditioner(config, "no-such-conditioner", config_file)

    monkeypatch.setitem(CONDITIONERS, "mine", ConditionerEntry("mine", VoxelConfig, "m:f", aligned=True, summary=""))
    assert build_parser().parse_args(["fit", "--config", "x", "--conditioner", "mine"]).conditioner == "mine"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fit", "--config", "x", "--conditioner", "no-such-conditioner"])
    err = capsys.readouterr().err
    assert all(repr(name) in err for name in CONDITIONERS)


def test_fit_warns_when_the_cg_frames_were_made_by_another_mapping(two_chains):
    import warnings

    from gdbm.data.trajectory import read_frames
    from gdbm.topology.system import load_mapped_system
    from gdbm.training.trainer import check_cg_frames

    aa, cg = read_frames(two_chains / "aa.gro"), read_frames(two_chains / "cg.gro")
    fritz = load_mapped_system(two_chains / "topol.top", two_chains / "PS1_cg_fritz.map", partial=True).mapping
    dbm = load_mapped_system(two_chains / "topol.top", two_chains / "PS1.map").mapping
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_cg_frames(aa, cg, fritz, "PS1_cg_fritz.map", "cg.gro") < 0.001  # the mapping that made them
    with pytest.warns(UserWarning, match=r"cg.gro: the CG frames sit 0.0\d\d nm rms .* mapped by PS1.map"):
        assert check_cg_frames(aa, cg, dbm, "PS1.map", "cg.gro") > 0.03


def test_lookahead_prior_term_charges_the_sites_of_hidden_hydrogens(config, tmp_path: Path):
    """``prior.hydrogen_lookahead`` gives heavy steps ideal sites of their hidden hydrogens, and the prior's
    ``lookahead`` term adds the weighted |E - E_ref| of the sites' LJ to the loss."""
    from gdbm.data.samples import prior_energies
    from gdbm.training.trainer import supervised_loss

    only = {"mode": "match", "weight": 1.0, "ramp_start": 0, "ramp_end": 0, "terms": {"lookahead": 1.0},
            "hydrogen_lookahead": ["planar_ch", "ch", "ch2"]}
    looking = load_config(tmp_path / "tiny.yaml", {**TINY, "prior": only,
                                                   "training": {**TINY["training"], "batch_size": 24}})
    trainer = build_trainer(looking, tmp_path / "run")
    g = trainer.state.generator
    g.eval()
    batch = trainer._batch(trainer._rng(0, 1))
    assert batch.lookahead is not None and bool(batch.heavy[batch.lookahead_sample].all())
    noise = trainer._noise(batch, trainer._rng(0, 1))
    plain, _ = supervised_loss(g, batch, noise, trainer.prior, 0.0)
    charged, stats = supervised_loss(g, batch, noise, trainer.prior, 1.0)
    fake = generate_sequence(g, batch, noise).detach().double()
    gap = (prior_energies(batch, fake, looking.prior.lj_core)["lookahead"]
           - prior_energies(batch, batch.targets.double(), looking.prior.lj_core)["lookahead"]).abs()
    assert gap.max() > 0 and stats["prior_cost"] == pytest.approx(gap.mean().item(), rel=1e-5)
    assert charged.item() == pytest.approx(plain.item() + gap.mean().item(), rel=1e-4)
    assert {"energy_lookahead", "reference_lookahead"} <= set(stats)


def test_bfloat16_updates_train_the_same_model_in_channels_last(config, tmp_path: Path):
    """``training.precision: bfloat16``: autocast updates with channels-last convolutions; the supervised loss
    stays near the float32 one on the same draw, and the weights (float32) move."""
    import warnings

    def first_update(precision: str):
        text = config.model_dump(mode="json")
        text["training"].update(precision=precision, pretrain_steps=2)
        cfg = type(config).model_validate(text)
        trainer = build_trainer(cfg, tmp_path / precision)
        before = [p.detach().clone() for p in trainer.state.generator.parameters()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # bfloat16 may be emulated on the test machine
            stats = trainer.train_step()
        moved = any(not torch.equal(a, b) for a, b in zip(before, trainer.state.generator.parameters()))
        return trainer, stats, moved

    plain, f32, _ = first_update("float32")
    fast, bf16, moved = first_update("bfloat16")
    assert fast.precision == "bfloat16" and plain.precision == "float32" and moved
    assert fast.state.generator.memory_format == torch.channels_last_3d
    assert all(p.dtype == torch.float32 for p in fast.state.generator.parameters())
    assert bf16["supervised_mse"] == pytest.approx(f32["supervised_mse"], rel=0.05)


def test_shape_distance_ignores_where_a_sequence_points_and_charges_its_size():
    """The shape term is zero for the reference turned and shifted as one body (a ring pointing elsewhere),
    positive for the reference shrunk about its centre (the squared distance's hedge), and masked steps do not
    count; in the supervised loss it enters with its weight."""
    from types import SimpleNamespace

    from gdbm.training.trainer import _shape_distance

    g = torch.Generator().manual_seed(0)
    targets = torch.randn(8, 4, 3, generator=g, dtype=torch.float64)
    batch = SimpleNamespace(targets=targets, step_mask=torch.tensor([True, True, True, False]).repeat(8, 1),
                            relabellings=torch.arange(4).repeat(8, 1, 1))
    turn, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    moved = targets @ turn.T + torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    moved[:, 3] = 50.0  # a masked step, far away
    assert _shape_distance(moved, batch).item() == pytest.approx(0.0, abs=1e-10)
    centre = targets[:, :3].mean(1, keepdim=True)
    shrunk = centre + 0.75 * (targets - centre)
    assert _shape_distance(shrunk, batch).item() > 0.01
    assert _shape_distance(shrunk, batch).item() > _shape_distance(centre + 0.9 * (targets - centre), batch).item()


@pytest.mark.parametrize("weight, term, args, logged", [
    ("shape_weight", "_shape_distance", (), "shape_mse"),
    ("geometry_weight", "_bonded_distance_error", (), "geometry_mse"),
    ("angle_distribution_weight", "_term_distribution_error", ("angle",), "angle_distribution"),
    ("dihedral_distribution_weight", "_term_distribution_error", ("proper",), "dihedral_distribution")])
def test_a_weighted_term_enters_the_supervised_loss_with_its_weight(config, tmp_path: Path, weight: str, term: str,
                                                                   args: tuple, logged: str):
    """The shape, geometry and angle- and dihedral-distribution terms are logged as computed and add their weight
    times themselves to the loss."""
    from gdbm.training import trainer as module

    trainer = build_trainer(config, tmp_path / "run")
    g = trainer.state.generator
    g.eval()
    batch = trainer._batch(trainer._rng(0, 1))
    noise = trainer._noise(batch, trainer._rng(0, 1))
    plain, stats = module.supervised_loss(g, batch, noise, trainer.prior, 0.0)
    weighted, _ = module.supervised_loss(g, batch, noise, trainer.prior, 0.0, **{weight: 2.0})
    value = getattr(module, term)(generate_sequence(g, batch, noise), batch, *args).item()
    assert value > 0 and stats[logged] == pytest.approx(value, rel=1e-5)
    assert weighted.item() - plain.item() == pytest.approx(2.0 * value, rel=1e-4)


def test_bonded_distance_error_is_zero_at_the_reference_and_sees_the_context(config, tmp_path: Path):
    """The geometry term is zero for the reference itself, positive once the sequence moves as one body
    against its bonded context atoms (which the shape term cannot see), and grows with the move."""
    from gdbm.training.trainer import _bonded_distance_error, _shape_distance

    trainer = build_trainer(config, tmp_path / "run")
    batch = trainer._batch(trainer._rng(0, 1))
    targets = batch.targets.double()
    batch = replace(batch, targets=targets, context_positions=batch.context_positions.double())
    assert _bonded_distance_error(targets, batch).item() == pytest.approx(0.0, abs=1e-10)
    shift = torch.tensor([0.02, -0.01, 0.015], dtype=torch.float64)
    assert _shape_distance(targets + shift, batch).item() == pytest.approx(0.0, abs=1e-10)
    small = _bonded_distance_error(targets + shift, batch).item()
    assert 0 < small < _bonded_distance_error(targets + 2 * shift, batch).item()


def test_angle_distribution_error_compares_sorted_angles_type_by_type(config, tmp_path: Path):
    """The angle-distribution term is zero for the reference, positive once the sequences move against their
    context, and at most the largest squared error of an angle against its own reference angle (within a type
    the sorted pairing is the cheapest one)."""
    from gdbm.training.trainer import TERM_KINDS, _angle_values, _compared_positions, _term_distribution_error

    trainer = build_trainer(config, tmp_path / "run")
    batch = trainer._batch(trainer._rng(0, 1))
    targets = batch.targets.double()
    batch = replace(batch, targets=targets, context_positions=batch.context_positions.double())
    assert _term_distribution_error(targets, batch, "angle").item() == pytest.approx(0.0, abs=1e-12)
    assert _term_distribution_error(targets, batch, "proper").item() == pytest.approx(0.0, abs=1e-12)
    g = torch.Generator().manual_seed(2)
    moved = targets + 0.02 * torch.randn(targets.shape, generator=g, dtype=torch.float64)
    value = _term_distribution_error(moved, batch, "angle").item()
    assert _term_distribution_error(moved, batch, "proper").item() > 0
    generated, reference = _compared_positions(moved, batch, None)
    paired = torch.cat([(_angle_values(generated, t.index) - _angle_values(reference, t.index)).square()
                        for t in batch.prior if TERM_KINDS[t.kind].category == "angle" and len(t)])
    assert 0 < value <= paired.max().item()


def test_angle_distribution_error_ignores_which_instance_has_which_angle(monkeypatch):
    """Two angles of one type trade places between the generated and the reference positions: the same
    distribution, so zero; a third angle, of another type, 3 degrees off counts as its type's mean, half the
    term (each type weighs the same, however many angles it has)."""
    from types import SimpleNamespace

    from gdbm.topology.topology import Term
    from gdbm.training import trainer as module

    def corner(degrees: float, at: float) -> list[list[float]]:  # three points with the angle at the middle one
        a = math.radians(degrees)
        return [[at + 1.0, 0.0, 0.0], [at, 0.0, 0.0], [at + math.cos(a), math.sin(a), 0.0]]

    reference = torch.tensor(corner(100, 0) + corner(120, 5) + corner(110, 10), dtype=torch.float64)
    generated = torch.tensor(corner(120, 0) + corner(100, 5) + corner(110, 10), dtype=torch.float64)
    index = torch.arange(9).view(3, 3)
    batch = SimpleNamespace(context_type=torch.zeros(1, 0, dtype=torch.long),
                            target_type=torch.tensor([[0, 1, 0, 0, 1, 0, 2, 2, 2]]),
                            prior=[Term("angle_harmonic", index, {"theta0": torch.zeros(3), "k": torch.zeros(3)})])
    monkeypatch.setattr(module, "_compared_positions", lambda fake, batch, real: (generated, reference))
    assert module._term_distribution_error(generated, batch, "angle").item() == pytest.approx(0.0, abs=1e-12)
    generated[8] = torch.tensor(corner(113, 10)[2], dtype=torch.float64)  # the third angle: 110 -> 113 degrees
    assert module._term_distribution_error(generated, batch, "angle").item() == pytest.approx(math.radians(3) ** 2 / 2,
                                                                                      rel=1e-6)


def test_dihedrals_of_a_type_are_cut_opposite_their_mean():
    """A ring's dihedrals scatter about 0: cut at 0 they would fall on both ends of [0, 2 pi) and the sorted
    pairing would compare -1 degree with +1 degree as 358 degrees apart; cut opposite their mean they do not."""
    from gdbm.training.trainer import _unwrapped

    real = torch.tensor([-0.02, 0.01, 0.03, 3.1, -3.1], dtype=torch.float64)  # two types: about 0 and about pi
    fake = torch.tensor([0.02, -0.01, -0.03, -3.1, 3.1], dtype=torch.float64)
    kind = torch.tensor([0, 0, 0, 1, 1])
    f, r = _unwrapped(fake, real, kind)
    assert (f.sort().values - r.sort().values).abs().max().item() < 0.1
    assert (torch.cat([f, r]) - math.pi).abs().max().item() < 0.1  # each type gathered about the middle, pi


def test_jittered_context_moves_the_context_atoms_only(config, tmp_path: Path):
    """Context atoms move by about the width asked; beads, padding and the targets do not; the same stream
    gives the same jitter (a resumed run repeats it)."""
    from gdbm.training.trainer import jittered_context

    trainer = build_trainer(config, tmp_path / "run")
    batch = trainer._batch(trainer._rng(0, 1))
    moved = jittered_context(batch, 0.03, torch.Generator().manual_seed(5))
    shift = (moved.context_positions - batch.context_positions).norm(dim=-1)  # [B, P]
    atoms = batch.context_atom >= 0
    assert (shift[~atoms] == 0).all()
    assert shift[atoms].square().mean().sqrt().item() == pytest.approx(0.03 * 3 ** 0.5, rel=0.1)
    assert torch.equal(moved.targets, batch.targets)
    again = jittered_context(batch, 0.03, torch.Generator().manual_seed(5))
    assert torch.equal(again.context_positions, moved.context_positions)
    assert torch.equal(moved.context_reference, batch.context_positions)  # the spans' reference stays
    jittered = config.model_copy(update={"training": config.training.model_copy(
        update={"context_noise": 0.03, "pretrain_steps": 1})})
    assert "supervised_mse" in build_trainer(jittered, tmp_path / "run_jitter").train_step()


def test_context_frames_give_the_contexts_and_the_reference_keeps_the_targets(config, tmp_path: Path):
    """data.context (scheduled sampling): each sample's context atoms come from the given frames (here the
    reference moved by 0.01 nm), its targets and ``context_reference`` stay the reference's; the geometry term
    then measures the reference atoms against the moved context, and is zero against their own."""
    from gdbm.data.frame_writer import write_frames
    from gdbm.data.trajectory import read_frames
    from gdbm.training.trainer import _bonded_distance_error

    source = config.sources[0]
    frames = read_frames(source.aa)
    moved = replace(frames, positions=frames.positions + 0.01 * torch.randn(frames.positions.shape,
                                                                            generator=torch.Generator().manual_seed(3)))
    write_frames(tmp_path / "sampled.gro", moved)
    sampled = config.model_copy(update={"data": source.model_copy(update={"context": tmp_path / "sampled.gro"})})
    plain_batch = build_trainer(config, tmp_path / "plain")._batch(torch.Generator().manual_seed(0))
    batch = build_trainer(sampled, tmp_path / "sampled")._batch(torch.Generator().manual_seed(0))
    assert plain_batch.context_reference is None
    assert torch.equal(batch.targets, plain_batch.targets)
    atoms = batch.context_atom >= 0
    offset = (batch.context_positions - batch.context_reference).norm(dim=-1)  # [B, P]
    assert (offset[~atoms] == 0).all()
    assert offset[atoms].mean().item() == pytest.approx(0.01 * (8 / torch.pi) ** 0.5, rel=0.1)  # a 3D Gaussian's
    targets = batch.targets.double()
    assert _bonded_distance_error(targets, replace(batch, context_positions=batch.context_reference)).item() == \
        pytest.approx(0.0, abs=1e-9)
    assert _bonded_distance_error(targets, batch).item() > 1e-6
    from gdbm.training.trainer import cross_bead_angle_error
    assert cross_bead_angle_error(targets, replace(batch, context_positions=batch.context_reference)).item() == \
        pytest.approx(0.0, abs=1e-3)  # degrees
    assert cross_bead_angle_error(targets, batch).item() > 0.1
    trainer = build_trainer(sampled.model_copy(update={"training": sampled.training.model_copy(
        update={"pretrain_steps": 1, "sampled_context_fit": 0.0})}), tmp_path / "step")
    assert "supervised_mse" in trainer.train_step()
    assert batch.sampled.all() and plain_batch.sampled is None
    noise = trainer._noise(batch, torch.Generator().manual_seed(1))
    fitted, stats = supervised_loss(trainer._generator, batch, noise, trainer.prior, 0.0)
    unfitted, unfitted_stats = supervised_loss(trainer._generator, batch, noise, trainer.prior, 0.0,
                                               sampled_context_fit=0.0)  # only the fit term, and it is off
    assert fitted.item() == pytest.approx(stats["supervised_mse"]) and unfitted.item() == 0.0
    assert unfitted_stats["supervised_mse"] == pytest.approx(stats["supervised_mse"])  # logged all the same
