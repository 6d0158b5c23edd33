"""The one adversarial trainer (conditional WGAN-GP on unrolled atom sequences), conditioner-agnostic.

Each training item is one plan step of one frame: the atoms of one bead, placed one after
the other (thesis Sec. 4.4.2, Fig. 4.5). At step k the conditioner sees the context plus the
atoms it generated at steps 0..k-1; the critic scores each step's generated atom against
the reference atom in the *same* environment (Eq. 4.14), and the generator's loss is
back-propagated through the whole unrolled sequence, plus the ramped energy prior (Eq. 4.17).
The trainer sees the networks only through :mod:`gdbm.conditioners.interface`.
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal, NamedTuple

import torch
from torch import Tensor, nn
from gdbm.utils.progress import tqdm

from gdbm.conditioners.interface import Critic, Generator, Particles
from gdbm.data.features import FeatureSpec
from gdbm.utils.distributed import Distributed
from gdbm.utils.errors import InputError, one_line
from gdbm.utils.precision import resolve_precision
from gdbm.data.samples import (SequenceBatch, SequenceDataset, TrainingSet, collate, particles_for_step, prior_energies,
                               prior_positions)
from gdbm.data.trajectory import Frames
from gdbm.topology.stereo import StereoTemplate
from gdbm.topology.system import MappedSystem
from gdbm.physics.bonded import dihedral
from gdbm.topology.topology import TERM_KINDS
from gdbm.topology.mapping import SystemMapping
from gdbm.training.checkpoint import RESUME_KEYS, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gdbm.training.config import ExperimentConfig, TrainingConfig, config_changes
from gdbm.training.init_from import Start, check_vocabulary, plan_start
from gdbm.training.log import LOG, CSVLog
from gdbm.training.log_plot import PLOT, plot_training_log
from gdbm.training.prior import EnergyPrior
from gdbm.training.validation import ValidationBatch, split_frames, validation_batch

CHECKPOINT = "checkpoint.pt"


def generate_sequence(generator: Generator, batch: SequenceBatch, noise: Tensor) -> Tensor:
    """Place the batch's atom sequences one atom at a time: ``[B, L, 3]`` local positions.

    ``noise``: ``[B, L, noise_dim]``. Padding steps produce positions that nothing reads.
    """
    types = batch.target_types  # [B, L, T]
    placed: list[Tensor] = []
    for k in range(types.shape[1]):
        so_far = torch.stack(placed, 1) if placed else batch.targets[:, :0]  # [B, k, 3]
        placed.append(generator(particles_for_step(batch, k, so_far), types[:, k], noise[:, k]))
    return torch.stack(placed, 1)


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1)


def critic_loss(critic: Critic, batch: SequenceBatch, fake: Tensor, gp_weight: float,
                generator: torch.Generator | None = None, gp_fraction: float = 1.0) -> tuple[Tensor, dict[str, float]]:
    """WGAN-GP critic loss over every step of the sequences (generated atoms fixed).

    Real and generated atoms of step k are scored in the same environment: the context plus
    the generated atoms 0..k-1; the real ones under the equivalent labelling nearest to the generated
    sequence (:func:`nearest_targets`), so a ring generated turned by 180 degrees meets its real atoms on
    the side it chose. The gradient penalty acts on positions interpolated between them,
    for the first ``gp_fraction`` of the batch (the batch is a random draw, so this is an unbiased
    estimate; the double backward of the penalty is most of a critic update's cost on CPU).
    """
    types, mask = batch.target_types, batch.step_mask.float()  # [B, L, T], [B, L]
    fake = fake.detach()
    real = nearest_targets(fake, batch)  # [B, L, 3]
    b = fake.shape[0]
    m = max(1, math.ceil(gp_fraction * b))  # samples with a penalised interpolate
    real_scores, fake_scores, penalties = [], [], []
    for k in range(types.shape[1]):
        particles = particles_for_step(batch, k, fake)
        eps = torch.rand(m, 1, generator=generator).to(fake.device)  # [m, 1]
        mixed = (eps * real[:m, k] + (1 - eps) * fake[:m, k]).requires_grad_(True)  # [m, 3]
        # one critic call for real, generated and interpolated atoms: [2B + m]
        both = _cat_particles(particles, particles, _slice_particles(particles, m))
        scores = critic(both, torch.cat([types[:, k], types[:, k], types[:m, k]]),
                        torch.cat([real[:, k], fake[:, k], mixed]))
        real_s, fake_s, mixed_s = scores.split([b, b, m])
        (grad,) = torch.autograd.grad(mixed_s.sum(), mixed, create_graph=True)
        real_scores.append(real_s)
        fake_scores.append(fake_s)
        penalties.append((grad.norm(dim=-1) - 1.0) ** 2)
    real_s, fake_s, pen = (torch.stack(x, 1) for x in (real_scores, fake_scores, penalties))  # [B, L], [m, L]
    wasserstein = _masked_mean(real_s, mask) - _masked_mean(fake_s, mask)
    gp = _masked_mean(pen, mask[:m])
    loss = -wasserstein + gp_weight * gp
    return loss, {"critic_loss": loss.item(), "wasserstein": wasserstein.item(), "gradient_penalty": gp.item()}


def _slice_particles(particles: Particles, m: int) -> Particles:
    return Particles(particles.positions[:m], particles.features[:m], particles.mask[:m])


def _cat_particles(*parts: Particles) -> Particles:
    return Particles(torch.cat([p.positions for p in parts]), torch.cat([p.features for p in parts]),
                     torch.cat([p.mask for p in parts]))


def nearest_targets(fake: Tensor, batch: SequenceBatch) -> Tensor:
    """``[B, L, 3]``: the reference positions of each sequence under the equivalent labelling nearest to the
    generated atoms ``fake [B, L, 3]`` (``batch.relabellings``: a ring turned by 180 degrees, a CH2's hydrogens
    swapped; gdbm.topology.symmetry), so that neither the squared distance nor the critic holds the generator
    to one of several equally valid labellings. With one labelling, ``batch.targets``."""
    if batch.relabellings.shape[1] == 1:
        return batch.targets
    mask = batch.step_mask.to(fake.dtype).unsqueeze(1)  # [B, 1, L]
    rows = torch.arange(len(fake), device=fake.device).view(-1, 1, 1)
    targets = batch.targets[rows, batch.relabellings]  # [B, R, L, 3]
    distance = ((fake.detach().unsqueeze(1) - targets).square().sum(-1) * mask).sum(-1)  # [B, R]
    best = distance.argmin(1)  # [B]
    return targets[torch.arange(len(fake), device=fake.device), best]


def _sequence_squared_distance(fake: Tensor, batch: SequenceBatch, real: Tensor | None = None) -> Tensor:
    """``[B]`` summed squared distance (nm^2) of each sequence's generated atoms ``[B, L, 3]`` to the reference
    over its real steps, against its nearest equivalent labelling (:func:`nearest_targets`; ``real`` where the
    caller has it already)."""
    real = nearest_targets(fake, batch) if real is None else real
    return ((fake - real).square().sum(-1) * batch.step_mask.to(fake.dtype)).sum(1)


def _per_step(per_sequence: Tensor, batch: SequenceBatch) -> Tensor:
    """A ``[B]`` sum over each sequence's real steps as the mean over all the batch's real steps."""
    return per_sequence.sum() / batch.step_mask.sum().clamp_min(1)


def _squared_distance(fake: Tensor, batch: SequenceBatch) -> Tensor:
    """Mean squared distance (nm^2) of generated atoms ``[B, L, 3]`` to the reference, over the real steps; each
    sequence against its nearest equivalent labelling (:func:`nearest_targets`), so symmetric atoms are not
    pulled to the mean of their places."""
    return _per_step(_sequence_squared_distance(fake, batch), batch)


def _best_sequence_squared_distance(fakes: list[Tensor], batch: SequenceBatch,
                                    reals: list[Tensor] | None = None) -> Tensor:
    """``[B]``: :func:`_sequence_squared_distance` of each sequence's sample nearest the reference among ``fakes``
    (K x ``[B, L, 3]``; ``reals``: their nearest labellings, where the caller has them)."""
    reals = reals or [None] * len(fakes)
    per_sample = torch.stack([_sequence_squared_distance(f, batch, r) for f, r in zip(fakes, reals)])  # [K, B]
    return per_sample.gather(0, per_sample.detach().argmin(0, keepdim=True)).squeeze(0)


def _best_squared_distance(fakes: list[Tensor], batch: SequenceBatch) -> Tensor:
    """:func:`_squared_distance` of each sequence's sample nearest the reference among ``fakes``
    (K x ``[B, L, 3]``): the best-of-K (variety) loss, whose gradient reaches only the winning samples."""
    return _per_step(_best_sequence_squared_distance(fakes, batch), batch)


def _fit_weights(batch: SequenceBatch, sampled_weight: float) -> Tensor | None:
    """``[B]``: the weight of each sequence's fit to the reference's atoms, ``sampled_weight`` where its context
    came from a sampler's frames (``batch.sampled``), else 1; None where every weight is 1."""
    if batch.sampled is None or sampled_weight == 1.0:
        return None
    return torch.where(batch.sampled, sampled_weight, 1.0).to(batch.targets)


def _root(squared: Tensor) -> Tensor:
    """The square root of squared lengths, kept off 0 so that its gradient stays finite there."""
    return (squared + 1e-12).sqrt()


def _energy_scores(fakes: list[Tensor], batch: SequenceBatch, reals: list[Tensor] | None = None) -> Tensor:
    """``[B]``: each sequence's energy score (nm) over K >= 2 samples (K x ``[B, L, 3]``); see :func:`_energy_score`."""
    mask = batch.step_mask.to(fakes[0].dtype).unsqueeze(-1)  # [B, L, 1]
    reals = reals or [None] * len(fakes)
    to_reference = torch.stack([_root(_sequence_squared_distance(f, batch, r))
                                for f, r in zip(fakes, reals)]).mean(0)  # [B]
    between = torch.stack([_root(((a - b) * mask).square().sum((1, 2)))
                           for i, a in enumerate(fakes) for b in fakes[i + 1:]]).mean(0)  # [B]
    return to_reference - 0.5 * between


def group_sequences(batch: SequenceBatch) -> Tensor:
    """``[B]`` bool: the heavy-atom sequences of three or more atoms (a ring placed at once: its orientation is a
    choice the squared distance averages away)."""
    return batch.heavy & (batch.step_mask.sum(1) >= 3)


def _energy_score(fakes: list[Tensor], batch: SequenceBatch, weights: Tensor | None = None,
                  reals: list[Tensor] | None = None) -> Tensor:
    """Mean over the sequences of the energy score (nm; Gneiting and Raftery 2007) of K >= 2 samples
    (K x ``[B, L, 3]``): mean distance of a sample to the reference minus half the mean distance between two
    samples, each sequence's real atoms one vector. Strictly proper: it is lowest when the samples are drawn
    from the reference's distribution given the same input, so it rewards the spread that the squared
    distance (lowest at the conditional mean) trains away."""
    score = _energy_scores(fakes, batch, reals)  # [B]
    return (score if weights is None else score * weights).mean()


def _shape_distance(fake: Tensor, batch: SequenceBatch, real: Tensor | None = None) -> Tensor:
    """Squared differences (nm^2) between the distances among each sequence's generated atoms ``[B, L, 3]`` and
    the same distances in the reference (its nearest equivalent labelling), summed per atom over its partners
    and averaged over the real steps: zero for any rigid turn or shift of the right shape, so it asks for the
    sequence's size and geometry, not for its place. A deterministic network that cannot tell where a ring
    points hedges under the squared distance by shrinking it; this term does not pay for that hedge.
    ``real``: :func:`nearest_targets` of ``fake`` where the caller has it already."""
    mask = batch.step_mask.to(fake.dtype)  # [B, L]
    pair = mask.unsqueeze(2) * mask.unsqueeze(1)  # [B, L, L]; an atom's distance to itself is 0 in both
    real = nearest_targets(fake, batch) if real is None else real

    def distances(x: Tensor) -> Tensor:
        return _root((x.unsqueeze(2) - x.unsqueeze(1)).square().sum(-1))  # [B, L, L]

    difference = (distances(fake) - distances(real)).square() * pair
    return difference.sum() / mask.sum().clamp_min(1)


BONDED_SPANS = ("bond", "angle", "proper")  # term categories whose end atoms' distance the geometry term matches


def _compared_positions(fake: Tensor, batch: SequenceBatch, real: Tensor | None) -> tuple[Tensor, Tensor]:
    """The prior's ``[B * (P + L), 3]`` slots twice: the generated sequence ``fake`` among the context given, and
    the reference's (``real``, else :func:`nearest_targets`) among the reference's own context."""
    reference = prior_positions(batch, nearest_targets(fake, batch) if real is None else real, batch.reference_context)
    return prior_positions(batch, fake), reference


def _bonded_distance_error(fake: Tensor, batch: SequenceBatch, real: Tensor | None = None) -> Tensor:
    """Squared differences (nm^2) between the generated and the reference's distances across each bond, angle
    (1-3) and proper dihedral (1-4) term that places a sequence atom, the context's atoms included, summed per
    sample and averaged over the real steps. The reference is its nearest equivalent labelling
    (:func:`nearest_targets`). Unlike the squared distance, which asks where an atom lies, it asks how it sits
    against its bonded neighbours, including those of the next bead (the junction angle, the backbone angle and
    torsion across beads); unlike the energy prior, which matches each category's summed energy, it matches every
    term's own geometry, thermal spread included. Where the
    context is not the reference's (a sampler's, a jitter), the generated spans reach the context given and the
    reference's reach the reference's context (``batch.reference_context``): the atoms are asked to sit as the
    reference's do against the neighbours they have. ``real``: :func:`nearest_targets` of ``fake`` where the
    caller has it already."""
    generated, reference = _compared_positions(fake, batch, real)  # [B * (P + L), 3] each
    total = fake.new_zeros(len(fake))  # [B]

    def spans(x: Tensor, ends: Tensor) -> Tensor:
        return _root((x[ends[:, 0]] - x[ends[:, 1]]).square().sum(-1))  # [m]

    for term, sample in zip(batch.prior, batch.prior_sample):
        if TERM_KINDS[term.kind].category not in BONDED_SPANS or not len(term):
            continue
        ends = term.index[:, [0, -1]]  # [m, 2]
        total = total.index_add(0, sample, (spans(generated, ends) - spans(reference, ends)).square())
    return total.sum() / batch.step_mask.sum().clamp_min(1)


def _angle_values(x: Tensor, index: Tensor) -> Tensor:
    """``[m]`` radians: the angle at the middle atom of every row ``index [m, 3]`` of positions ``x [N, 3]``."""
    u, v = x[index[:, 0]] - x[index[:, 1]], x[index[:, 2]] - x[index[:, 1]]
    cosine = (u * v).sum(-1) / (_root(u.square().sum(-1)) * _root(v.square().sum(-1)))
    return torch.acos(cosine.clamp(-1.0 + 1e-6, 1.0 - 1e-6))


def _dihedral_values(x: Tensor, index: Tensor) -> Tensor:
    """``[m]`` radians in (-pi, pi]: the dihedral (the force field's, :func:`gdbm.physics.bonded.dihedral`) of every
    row ``index [m, 4]`` of positions ``x [N, 3]``."""
    return dihedral(x[index[:, 1:]] - x[index[:, :-1]])  # bond vectors [m, 3, 3]


def _unwrapped(fake: Tensor, real: Tensor, type_of: Tensor) -> tuple[Tensor, Tensor]:
    """Dihedrals ``[m]`` of both sets as values in [0, 2 pi) cut opposite each type's circular mean in ``real``
    (``type_of [m]``: the type of each), so a type's values are not split where they gather (a ring's near 0, a
    chain's trans near pi)."""
    n = int(type_of.max()) + 1
    sine = torch.zeros(n, dtype=real.dtype, device=real.device).index_add(0, type_of, real.detach().sin())
    cosine = torch.zeros(n, dtype=real.dtype, device=real.device).index_add(0, type_of, real.detach().cos())
    cut = torch.atan2(sine, cosine)[type_of] + math.pi  # [m] opposite the mean
    return torch.remainder(fake - cut, 2 * math.pi), torch.remainder(real - cut, 2 * math.pi)


DISTRIBUTION_TERMS = {"angle": _angle_values, "proper": _dihedral_values}  # category -> its values (radians)


def _term_distribution_error(fake: Tensor, batch: SequenceBatch, category: str, real: Tensor | None = None) -> Tensor:
    """The squared 1-D Wasserstein distance (rad^2) between the generated and the reference's values of the batch's
    ``category`` terms (``angle`` or ``proper`` dihedral), type tuple by type tuple, averaged over the types
    (each as much as the per-type JSDs weigh it), over every such term that places a sequence atom (the context's
    atoms included): within a type, the k-th smallest generated value is compared with the k-th smallest
    reference value. Zero whenever the batch's values of each type are the reference's in any order, so unlike
    the squared distance or the geometry term it does not ask an atom for its own reference angle, only the
    batch for the reference's spread: a cheap stand-in for what DBM's critic judges (the distribution of local
    geometry), aimed at the per-type JSDs on which the sampler's output is scored."""
    generated, reference = _compared_positions(fake, batch, real)  # [B * (P + L), 3] each
    types = torch.cat([batch.context_type, batch.target_type], 1).flatten()  # [B * (P + L)]
    n_types = int(types.max()) + 1
    values = DISTRIBUTION_TERMS[category]
    gaps, keys = [], []
    for term in batch.prior:
        if TERM_KINDS[term.kind].category != category or not len(term):
            continue
        t = types[term.index]  # [m, arity]
        forward = backward = torch.zeros(len(t), dtype=torch.long, device=t.device)
        for k in range(t.shape[1]):  # a tuple and its reverse are one type
            forward, backward = forward * n_types + t[:, k], backward * n_types + t[:, -1 - k]
        key = torch.minimum(forward, backward).double()  # [m]
        fake_value, real_value = values(generated, term.index), values(reference, term.index)
        if category == "proper":
            fake_value, real_value = _unwrapped(fake_value, real_value, torch.unique(key, return_inverse=True)[1])
        # type-major, then by value (in [0, 2 pi), < 8): equal counts per type, so the k-th entries of a type line up
        fake_sorted = fake_value[torch.argsort(key * 8.0 + fake_value.detach().double())]
        real_sorted = real_value[torch.argsort(key * 8.0 + real_value.double())]
        gaps.append(fake_sorted - real_sorted)
        keys.append(key.sort().values)
    if not gaps:
        return fake.new_zeros(())
    _, type_of = torch.unique(torch.cat(keys), return_inverse=True)  # [m] one index per type tuple
    squared = torch.cat(gaps).square()  # [m]
    per_type = torch.zeros(int(type_of.max()) + 1, dtype=squared.dtype, device=squared.device)
    per_type = per_type.index_add(0, type_of, squared) / torch.bincount(type_of).to(squared.dtype)
    return per_type.mean()


def cross_bead_angle_error(fake: Tensor, batch: SequenceBatch, real: Tensor | None = None) -> Tensor:
    """The rms difference (degrees) between the generated and the reference's angles of every angle term that
    joins a sequence atom to a context atom (the angles between beads: sPS's backbone and junction angles),
    each against its own context (``batch.reference_context`` for the reference); nan where there is none.
    A held-out number: the one-step precision across beads that the sampler's output inherits."""
    generated, reference = _compared_positions(fake, batch, real)  # [B * (P + L), 3] each
    n_context = batch.context_positions.shape[1]
    width = n_context + fake.shape[1]  # P + L slots per sample

    errors = []
    for term in batch.prior:
        if TERM_KINDS[term.kind].category == "angle" and len(term):
            crossing = term.index[((term.index % width) < n_context).any(1)]  # [m, 3] reaching into the context
            errors.append(torch.rad2deg(_angle_values(generated, crossing) - _angle_values(reference, crossing)))
    error = torch.cat(errors) if errors else fake.new_zeros(0)  # [m]
    return error.square().mean().sqrt() if len(error) else fake.new_tensor(float("nan"))


def jittered_context(batch: SequenceBatch, width: float, rng: torch.Generator) -> SequenceBatch:
    """``batch`` with every context atom displaced by a Gaussian of ``width`` nm per coordinate (beads and
    padding stay): training contexts that are near the reference's but not it, as the sampler's are (its
    neighbours are the network's own, 0.05 nm off the reference's). The targets stay the reference's, and the
    context before the jitter is kept as ``context_reference``."""
    atoms = (batch.context_atom >= 0).unsqueeze(-1).to(batch.context_positions.dtype)  # [B, P, 1]
    shift = torch.randn(batch.context_positions.shape, generator=rng).to(batch.context_positions)  # [B, P, 3]
    return replace(batch, context_positions=batch.context_positions + width * atoms * shift,
                   context_reference=batch.reference_context)


def _labelled(batch: SequenceBatch, symmetric: bool) -> SequenceBatch:
    """``batch``, or without ``symmetric`` the same with the reference's labels only (no relabellings)."""
    return batch if symmetric else replace(batch, relabellings=batch.relabellings[:, :1])


def _centre_shift(fake: Tensor, batch: SequenceBatch) -> Tensor:
    """Mean over the sequences of the squared distance (nm^2) between the centre of the generated atoms
    ``[B, L, 3]`` and the centre of the reference's. A sequence holds one element (a bead's heavy atoms or
    its hydrogens), so this is its mass-weighted share of the bead's CG position: zero for every sequence
    means a CG-consistent structure, whatever the per-atom scatter."""
    mask = batch.step_mask.float()[..., None]  # [B, L, 1]
    shift = ((fake - batch.targets) * mask).sum(1) / mask.sum(1).clamp_min(1)  # [B, 3]
    return shift.square().sum(-1).mean()


def _with_tethers(loss: Tensor, fake: Tensor, batch: SequenceBatch, stats: dict[str, float],
                  supervised_weight: float, centre_weight: float) -> Tensor:
    """``loss`` plus the weighted squared distance to the reference and the weighted centre shift; each
    term in use goes into ``stats`` (an adversarial row without them tells the log the warm-up is over)."""
    if supervised_weight:
        mse = _squared_distance(fake, batch)
        loss = loss + supervised_weight * mse
        stats["supervised_mse"] = mse.item()
    if centre_weight:
        centre = _centre_shift(fake, batch)
        loss = loss + centre_weight * centre
        stats["centre_mse"] = centre.item()
    return loss


def generator_loss(generator: Generator, critic: Critic, batch: SequenceBatch, noise: Tensor,
                   prior: EnergyPrior, prior_weight: float, supervised_weight: float = 0.0,
                   centre_weight: float = 0.0) -> tuple[Tensor, dict[str, float]]:
    """Adversarial loss of the unrolled sequences plus the weighted energy prior and, with
    ``supervised_weight``, that weight times their mean squared distance to the reference (nm^2): a
    tether to where the supervised phase put the atoms, which the critic alone does not hold; with
    ``centre_weight``, that weight times the centre shift (:func:`_centre_shift`)."""
    fake = generate_sequence(generator, batch, noise)  # [B, L, 3], differentiable
    types, mask = batch.target_types, batch.step_mask.float()
    scores = torch.stack([critic(particles_for_step(batch, k, fake), types[:, k], fake[:, k])
                          for k in range(types.shape[1])], 1)  # [B, L]
    adversarial = -_masked_mean(scores, mask)
    stats = {"generator_adversarial": adversarial.item()}
    loss = _with_tethers(adversarial, fake, batch, stats, supervised_weight, centre_weight)
    return _with_prior(loss, batch, fake, prior, prior_weight, stats)


def supervised_lr(training: TrainingConfig, step: int) -> float:
    """The learning rate of supervised update ``step``: ``pretrain_lr``, or with ``pretrain_lr_final`` a cosine
    from ``pretrain_lr`` (first update) to ``pretrain_lr_final`` (last supervised update). A function of the
    step alone, so a resumed run follows the same schedule."""
    start, final = training.pretrain_lr, training.pretrain_lr_final
    if final is None:
        return start
    return _cosine(start, final, step / max(training.pretrain_steps - 1, 1))


def adversarial_lr_scale(training: TrainingConfig, step: int) -> float:
    """The factor on ``lr_generator`` and ``lr_critic`` at adversarial update ``step``: 1, or with
    ``lr_decay_to`` a cosine from 1 (at ``lr_decay_start``) to ``lr_decay_to`` (at the last update, ``steps - 1``).
    A function of the step alone, so a resumed run follows the same schedule."""
    final = training.lr_decay_to
    start = training.pretrain_steps if training.lr_decay_start is None else training.lr_decay_start
    if final is None or step <= start:
        return 1.0
    return _cosine(1.0, final, (step - start) / max(training.steps - 1 - start, 1))


def _cosine(start: float, final: float, progress: float) -> float:
    """From ``start`` (progress 0) to ``final`` (progress 1 and beyond) on half a cosine."""
    return final + 0.5 * (start - final) * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def supervised_loss(generator: Generator, batch: SequenceBatch, noise: Tensor, prior: EnergyPrior,
                    prior_weight: float, reference: bool = False,
                    centre_weight: float = 0.0,
                    objective: Literal["best_of_k", "energy_score", "energy_score_groups"] = "best_of_k",
                    energy_score_weight: float = 1.0, shape_weight: float = 0.0, geometry_weight: float = 0.0,
                    sampled_context_fit: float = 1.0,
                    angle_distribution_weight: float = 0.0,
                    dihedral_distribution_weight: float = 0.0) -> tuple[Tensor, dict[str, float]]:
    """Warm-up loss: mean squared distance (nm^2) of the unrolled sequences to the reference, plus the prior
    (and ``centre_weight`` times the centre shift, :func:`_centre_shift`, ``shape_weight`` times the
    distances' error, :func:`_shape_distance`, and ``geometry_weight`` times the bonded terms' distance error,
    :func:`_bonded_distance_error`, and ``angle_distribution_weight`` / ``dihedral_distribution_weight`` times the
    per-type angle / proper dihedral distributions' distance, :func:`_term_distribution_error`, all over the K
    samples).

    Teaches the generator where atoms go before the adversarial game teaches it how they
    scatter; with ``noise [B, L, noise_dim]`` it learns the conditional mean, so its noise input is
    still unused at the end of it. With ``noise [K, B, L, noise_dim]`` each sequence is unrolled K times
    and only its sample nearest the reference counts in the squared distance
    (:func:`_best_squared_distance`), while the prior and the centre term average over all K: the noise
    then chooses among the places an atom can take; with ``objective="energy_score"`` the K samples are
    scored together instead (:func:`_energy_score`), and the squared distance of the first is only logged.
    ``sampled_context_fit``: the weight of that fit on the sequences whose context came from a sampler's frames
    (:func:`_fit_weights`; ``supervised_mse`` logs the unweighted distance).
    ``reference``: the energies of generated and reference atoms go into the numbers whatever the
    prior's mode, and the angles between beads (:func:`cross_bead_angle_error`, ``cross_angle_rms``), for the
    validation on held-out frames.
    """
    fakes = [generate_sequence(generator, batch, n) for n in (noise.unsqueeze(0) if noise.dim() == 3 else noise)]
    scored = objective.startswith("energy_score") and len(fakes) > 1
    weights = _fit_weights(batch, sampled_context_fit)  # [B] or None
    reals = [nearest_targets(f, batch) for f in fakes]  # each sample's nearest labelling, once for every term
    distance = (_sequence_squared_distance(fakes[0], batch, reals[0]) if len(fakes) == 1 or scored
                else _best_sequence_squared_distance(fakes, batch, reals))  # [B]
    mse = _per_step(distance, batch)
    if scored and objective == "energy_score_groups":
        groups = group_sequences(batch).to(distance.dtype)  # [B]
        scores = _energy_scores(fakes, batch, reals) * groups  # [B]
        rest = distance * (1 - groups)
        if weights is not None:
            scores, rest = scores * weights, rest * weights
        fit = _per_step(rest, batch) + energy_score_weight * scores.sum() / len(scores)
    elif scored:
        fit = _energy_score(fakes, batch, weights, reals)
    else:
        fit = mse if weights is None else _per_step(distance * weights, batch)

    def term(weight: float, error: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """``error(sample, its labels)`` averaged over the samples; at weight 0 only logged: no graph to build."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and weight > 0):
            return torch.stack([error(f, r) for f, r in zip(fakes, reals)]).mean()

    centre = term(centre_weight, lambda f, r: _centre_shift(f, batch))
    shape = term(shape_weight, lambda f, r: _shape_distance(f, batch, r))
    geometry = term(geometry_weight, lambda f, r: _bonded_distance_error(f, batch, r))
    angle_distribution = term(angle_distribution_weight, lambda f, r: _term_distribution_error(f, batch, "angle", r))
    dihedral_distribution = term(dihedral_distribution_weight,
                                 lambda f, r: _term_distribution_error(f, batch, "proper", r))
    stats = {"supervised_mse": mse.item(), "centre_mse": centre.item(), "shape_mse": shape.item(),
             "geometry_mse": geometry.item(), "angle_distribution": angle_distribution.item(),
             "dihedral_distribution": dihedral_distribution.item()}  # the warm-up's
    if scored:
        stats["energy_score"] = fit.item()
    if reference:  # held-out numbers only: the angles between beads, teacher forced
        stats["cross_angle_rms"] = cross_bead_angle_error(fakes[0], batch, reals[0]).item()
    loss = (fit + centre_weight * centre + shape_weight * shape + geometry_weight * geometry
            + angle_distribution_weight * angle_distribution + dihedral_distribution_weight * dihedral_distribution)
    return _with_prior(loss, batch, fakes, prior, prior_weight, stats, reference)


def _with_prior(loss: Tensor, batch: SequenceBatch, fake: Tensor | list[Tensor], prior: EnergyPrior,
                prior_weight: float, stats: dict[str, float],
                reference: bool = False) -> tuple[Tensor, dict[str, float]]:
    """``loss`` plus the weighted energy prior of the generated sequences (``[B, L, 3]``, or a list of K
    samples of them: the mean over the samples); the energies go into ``stats``
    (the reference's too when the prior matches them, or when ``reference`` asks for them)."""
    stats["prior_weight"] = prior_weight
    mode = prior.config.mode
    fakes = fake if isinstance(fake, list) else [fake]
    if mode != "none" or reference:
        core = prior.config.lj_core
        each = [prior_energies(batch, f.to(torch.float64), core) for f in fakes]
        fake_e = {name: torch.stack([e[name] for e in each]).mean(0) for name in each[0]}  # {category: [B]}
        real_e = (prior_energies(batch, batch.targets.to(torch.float64), core, batch.reference_context)
                  if mode == "match" or reference else None)
        if mode != "none":
            cost = torch.stack([prior(e, real_e) for e in each]).mean(0)  # [B] float64
            loss = loss + prior_weight * cost.mean().to(loss.dtype)
            stats["prior_cost"] = cost.mean().item()
        for name, e in fake_e.items():
            stats[f"energy_{name}"] = e.mean().item()
        for name, e in (real_e or {}).items():  # what the generated energies should approach
            stats[f"reference_{name}"] = e.mean().item()
    stats["generator_loss"] = loss.item()
    return loss, stats


def shard_draw(n_items: int, count: int, distributed: Distributed, rng: torch.Generator,
               weights: Tensor | None = None) -> Tensor:
    """``count`` random indices (with replacement) from this rank's shard: every ``world_size``-th of
    ``n_items``, starting at its rank. With one process, ``torch.randint(n_items, (count,))``;
    with ``weights`` (one per item), drawn in proportion to them."""
    d = distributed
    if weights is None:
        shard = len(range(d.rank, n_items, d.world_size))
        return d.rank + d.world_size * torch.randint(shard, (count,), generator=rng)
    shard = torch.arange(d.rank, n_items, d.world_size)
    return shard[torch.multinomial(weights[shard], count, replacement=True, generator=rng)]


@dataclass
class TrainState:
    generator: nn.Module
    critic: nn.Module
    opt_generator: torch.optim.Optimizer
    opt_critic: torch.optim.Optimizer
    step: int = 0
    seconds: float = 0.0


# besides the energies; logged as val_<name>
VALIDATION_NUMBERS = ("supervised_mse", "centre_mse", "shape_mse", "geometry_mse", "angle_distribution",
                      "dihedral_distribution", "prior_cost", "cross_angle_rms")


class Trainer:
    """Runs ``config.training.steps`` generator updates with checkpoints, a CSV log and its plot in ``out_dir``.

    With a ``validation`` set (the held-out ``data.validation_frames``) the generator is scored every
    ``training.validate_every`` updates on one fixed batch of it (:meth:`validate`).

    Under ``torchrun`` (``distributed`` with several ranks) the networks are wrapped in
    DistributedDataParallel: every rank draws ``batch_size / world_size`` sequences from its own
    shard of the dataset, gradients are averaged over the ranks, so an update is the update of
    one process on the union of the ranks' batches. Rank 0 alone logs and writes checkpoints.
    """

    def __init__(self, config: ExperimentConfig, dataset: SequenceDataset, generator: nn.Module, critic: nn.Module,
                 out_dir: str | Path, distributed: Distributed = Distributed(), stereo: StereoTemplate | None = None,
                 validation: SequenceDataset | TrainingSet | None = None):
        t = config.training
        if t.batch_size % distributed.world_size:
            raise InputError(f"training.batch_size {t.batch_size} is not divisible by the "
                             f"{distributed.world_size} processes")
        self.config, self.dataset, self.out_dir = config, dataset, Path(out_dir)
        self.stereo = stereo  # the training frames' stereocentres, for the sampler (gdbm.topology.stereo)
        self.distributed = distributed
        self.device = distributed.device(t.device)
        self.prior = EnergyPrior(config.prior)
        self.precision = resolve_precision(t.precision, self.device)  # what "auto" is on this hardware
        if self.precision == "bfloat16":
            for network in (generator, critic):  # bfloat16 convolutions want channels-last activations
                if hasattr(network, "channels_last"):
                    network.channels_last()
        self.state = TrainState(
            generator.to(self.device), critic.to(self.device),
            torch.optim.Adam(generator.parameters(), lr=t.lr_generator, betas=t.betas),
            torch.optim.Adam(critic.parameters(), lr=t.lr_critic, betas=t.betas))
        # the modules the losses call: the DDP wrappers average gradients (and copy rank 0's initial
        # weights). Buffers are constants (grids), never re-broadcast: a forward pass runs once per
        # sequence step, and the ranks' batches have sequences of different lengths.
        self._generator, self._critic = self.state.generator, self.state.critic
        if distributed.enabled:
            self._generator = distributed.wrap(self.state.generator, self.device)
            self._critic = distributed.wrap(self.state.critic, self.device)
        self.log = CSVLog(self.out_dir / LOG) if distributed.is_main else None
        self.turn = self.dataset.config.random_turns(getattr(generator, "aligned", True))  # random turns about z
        self.validation = validation
        self._validation_batch: ValidationBatch | None = None  # drawn at the first validation
        self._plot_failed = False

    def release(self) -> None:
        """Drop the DDP wrappers: they must be gone before the process group is destroyed
        (:meth:`gdbm.utils.distributed.Distributed.close`), or a rank can hang on exit."""
        self._generator, self._critic = self.state.generator, self.state.critic
        gc.collect()

    # --- checkpoints ------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict:
        s = self.state
        return {"generator": s.generator.state_dict(), "critic": s.critic.state_dict(),
                "opt_generator": s.opt_generator.state_dict(), "opt_critic": s.opt_critic.state_dict(),
                "step": s.step, "seconds": s.seconds, "rng": rng_state(),
                "config": self.config.model_dump(mode="json"),
                "features": self.dataset.spec.to_dict(),
                "stereo": self.stereo.to_dict() if self.stereo is not None else None}

    def save(self) -> Path:
        """The run's checkpoint, plus a kept copy ``checkpoint_<step>.pt`` on ``keep_every`` steps (rank 0 only)."""
        if not self.distributed.is_main:
            return self.out_dir / CHECKPOINT
        payload, keep = self.checkpoint_payload(), self.config.training.keep_every
        if keep and self.state.step % keep == 0:
            save_checkpoint(self.out_dir / f"checkpoint_{self.state.step}.pt", payload)
        path = save_checkpoint(self.out_dir / CHECKPOINT, payload)
        self.plot()
        return path

    def plot(self) -> Path | None:
        """Redraw ``training.png`` from the log (rank 0). A failure warns once and never stops training."""
        if self.log is None or not self.log.path.exists():
            return None
        try:
            return plot_training_log(self.log.path, self.out_dir / PLOT,
                                     warm_up=self.config.training.pretrain_steps)
        except Exception as err:  # noqa: BLE001 - a plot is never worth a training run
            if not self._plot_failed:
                warnings.warn(f"{self.out_dir / PLOT}: the training plot could not be drawn ({one_line(err)}); "
                              "training goes on (warned once)", RuntimeWarning, stacklevel=2)
            self._plot_failed = True
            return None

    def resume(self, path: str | Path | None = None) -> bool:
        """Continue from ``path`` (default: this run's checkpoint) if it exists."""
        path = Path(path) if path else self.out_dir / CHECKPOINT
        if not path.exists():
            return False
        ck = load_checkpoint(path, self.device, required=RESUME_KEYS)
        changed = config_changes(ck.get("config", {}), self.config)
        if changed:
            warnings.warn(f"resuming {path} with a config that differs from the one it was trained with in: "
                          f"{', '.join(changed)}", stacklevel=2)
        s = self.state
        s.generator.load_state_dict(ck["generator"])
        s.critic.load_state_dict(ck["critic"])
        s.opt_generator.load_state_dict(ck["opt_generator"])
        s.opt_critic.load_state_dict(ck["opt_critic"])
        s.step, s.seconds = ck["step"], ck["seconds"]
        set_rng_state(ck["rng"])
        if self.log is not None:  # rows logged after the checkpoint will be logged again
            self.log.drop_after(s.step)
        return True

    # --- the loop -----------------------------------------------------------------------------
    def _rng(self, step: int, draw: int) -> torch.Generator:
        """The random stream of one draw of one step: batches, turns, noise and penalty mixing
        are a pure function of (seed, step, draw, rank), so a resumed run repeats a run without stop."""
        t = self.config.training
        seed = t.seed * 1_000_003 + step * (t.n_critic + 1) + draw + self.distributed.rank * 10**12
        return torch.Generator().manual_seed(seed)

    def _batch(self, rng: torch.Generator) -> SequenceBatch:
        """``batch_size / world_size`` sequences from this rank's shard."""
        d = self.distributed
        index = shard_draw(len(self.dataset), self.config.training.batch_size // d.world_size, d, rng,
                           getattr(self.dataset, "sample_weights", None))
        batch = collate([self.dataset[int(i)] for i in index], rng, rotate=self.turn)
        return _labelled(batch, self.config.training.symmetric_atoms).to(self.device)

    def _noise(self, batch: SequenceBatch, rng: torch.Generator) -> Tensor:
        b, length = batch.step_mask.shape
        return torch.randn(b, length, self.state.generator.noise_dim, generator=rng).to(self.device)

    def validate(self) -> dict[str, float]:
        """The generator's numbers on the fixed batch of held-out sequences, as ``val_<name>``: the
        supervised MSE, the prior cost and the energies of generated and reference atoms per term
        ({} without a validation set).

        Reuses :func:`supervised_loss` in eval mode without gradients (as the sampler runs the
        generator), under the batch's fixed noise; the global random state is restored after it
        and the training draws are seeded per step, so a run trains exactly as without validation.
        """
        if self.validation is None:
            return {}
        g, t = self.state.generator, self.config.training
        if self._validation_batch is None:
            self._validation_batch = validation_batch(self.validation, t.batch_size, t.seed, g.noise_dim,
                                                      rotate=self.turn, device=self.device)
        fixed, saved, was_training = self._validation_batch, rng_state(), g.training
        g.eval()
        try:
            with torch.no_grad(), self._arithmetic():
                _, stats = supervised_loss(g, _labelled(fixed.batch, t.symmetric_atoms), fixed.noise, self.prior,
                                           self.prior.weight(self.state.step), reference=True)
        finally:
            g.train(was_training)
            set_rng_state(saved)
        return {f"val_{k}": v for k, v in stats.items()
                if k in VALIDATION_NUMBERS or k.startswith(("energy_", "reference_"))}

    def _arithmetic(self) -> torch.autocast:
        """The networks' arithmetic: bfloat16 autocast when ``training.precision`` resolves to it (positions,
        losses and energies stay in float32 / float64: autocast casts only convolutions and matrix products,
        and the voxel head's softmax and mean run in float32)."""
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bfloat16")

    def _pretrain_step(self) -> dict[str, float]:
        """One supervised generator update (:func:`supervised_loss`) at :func:`supervised_lr`; no critic
        (called by :meth:`train_step`, under its arithmetic)."""
        s, t = self.state, self.config.training
        rng = self._rng(s.step, t.n_critic)
        batch = self._batch(rng)
        noise = (self._noise(batch, rng) if t.supervised_samples == 1
                 else torch.stack([self._noise(batch, rng) for _ in range(t.supervised_samples)]))  # [(K,) B, L, N]
        if t.context_noise:
            batch = jittered_context(batch, t.context_noise, rng)
        loss, stats = supervised_loss(self._generator, batch, noise, self.prior,
                                      self.prior.weight(s.step), centre_weight=t.centre_weight,
                                      objective=t.supervised_objective,
                                      energy_score_weight=t.energy_score_weight, shape_weight=t.shape_weight,
                                      geometry_weight=t.geometry_weight, sampled_context_fit=t.sampled_context_fit,
                                      angle_distribution_weight=t.angle_distribution_weight,
                                      dihedral_distribution_weight=t.dihedral_distribution_weight)
        for group in s.opt_generator.param_groups:
            group["lr"] = supervised_lr(t, s.step)
        s.opt_generator.zero_grad(set_to_none=True)
        loss.backward()
        s.opt_generator.step()
        for group in s.opt_generator.param_groups:
            group["lr"] = t.lr_generator
        s.step += 1
        return stats

    def train_step(self) -> dict[str, float]:
        """One generator update: supervised during the first ``pretrain_steps``, else n_critic critic
        updates and one adversarial generator update; returns the logged numbers."""
        with self._arithmetic():
            return self._train_step()

    def _train_step(self) -> dict[str, float]:
        s, t = self.state, self.config.training
        if s.step < t.pretrain_steps:
            return self._pretrain_step()
        stats: dict[str, float] = {}
        scale = adversarial_lr_scale(t, s.step)
        for optimiser, lr in ((s.opt_critic, t.lr_critic), (s.opt_generator, t.lr_generator)):
            for group in optimiser.param_groups:
                group["lr"] = lr * scale
        for draw in range(t.n_critic):
            rng = self._rng(s.step, draw)
            batch = self._batch(rng)
            with torch.no_grad():
                fake = generate_sequence(s.generator, batch, self._noise(batch, rng))
            loss, stats = critic_loss(self._critic, batch, fake, t.gp_weight, rng, t.gp_fraction)
            s.opt_critic.zero_grad(set_to_none=True)
            loss.backward()
            s.opt_critic.step()
        rng = self._rng(s.step, t.n_critic)
        batch = self._batch(rng)
        for p in s.critic.parameters():
            p.requires_grad_(False)
        loss, g_stats = generator_loss(self._generator, s.critic, batch, self._noise(batch, rng), self.prior,
                                       self.prior.weight(s.step), t.supervised_weight, t.centre_weight)
        s.opt_generator.zero_grad(set_to_none=True)
        loss.backward()
        s.opt_generator.step()
        for p in s.critic.parameters():
            p.requires_grad_(True)
        s.step += 1
        return {**stats, **g_stats, **({"lr_scale": scale} if t.lr_decay_to is not None else {})}

    def fit(self, steps: int | None = None, progress: bool = True) -> TrainState:
        """Train until ``steps`` generator updates in total (default: the config's)."""
        t = self.config.training
        target = steps or t.steps
        validate_every = t.validate_every or t.checkpoint_every
        if t.threads:
            torch.set_num_threads(t.threads)
        main = self.distributed.is_main
        bar = tqdm(total=target, initial=self.state.step, desc="fit", unit="step", disable=not (progress and main))
        while self.state.step < target:
            start = time.perf_counter()
            stats = self.distributed.mean(self.train_step())  # the numbers of the whole (all-rank) batch
            self.state.seconds += time.perf_counter() - start
            bar.update(1)
            bar.set_postfix({k: f"{stats[k]:.3g}" for k in ("wasserstein", "supervised_mse", "generator_loss")
                             if k in stats})
            if not all(math.isfinite(v) for v in stats.values()):
                raise FloatingPointError(f"non-finite training numbers at step {self.state.step}: {stats}; "
                                         f"the last checkpoint in {self.out_dir} is intact")
            step = self.state.step
            validate = (self.log is not None and self.validation is not None
                        and (step % validate_every == 0 or step == target))
            if validate:  # rank 0 only, after the all-rank mean: the other ranks wait for it at the next update
                stats = {**stats, **self.validate()}
            if self.log is not None and (step % t.log_every == 0 or step == target or validate):
                self.log.write({"step": step, "seconds": round(self.state.seconds, 3), **stats})
            if (self.state.step % t.checkpoint_every == 0 or self.state.step == target
                    or (t.keep_every and self.state.step % t.keep_every == 0)):
                self.save()
        bar.close()
        self.distributed.barrier()  # no rank leaves before rank 0 has written the last checkpoint
        return self.state


class Source(NamedTuple):
    """One data source: its training AA frames, system and CG frames (None: mapped from the AA
    frames), and its held-out frames (``data.validation_frames``; None: none) with their CG frames."""

    frames: Frames
    system: MappedSystem
    beads: Frames | None
    held_out: Frames | None = None
    held_out_beads: Frames | None = None
    context: Frames | None = None  # a sampler's frames, one per training frame (data.context)


Sources = list[Source]


def _pick(frames: Frames | None, index: list[int]) -> Frames | None:
    """``frames[index]`` (the frames themselves when that is all of them, in order: no copy)."""
    if frames is None or index == list(range(len(frames))):
        return frames
    return frames.subset(index)


def load_sources(config: ExperimentConfig) -> Sources:
    """Each data source's frames (:class:`Source`), split into training and held-out frames."""
    from gdbm.data.trajectory import read_frames
    from gdbm.topology.system import load_mapped_system

    loaded = []
    for d in config.sources:
        system = load_mapped_system(d.topology, d.mapping, d.cg_itp, parameters=d.parameters)
        frames = read_frames(d.aa, d.aa_structure)
        beads = read_frames(d.cg, d.cg_structure) if d.cg else None
        train, held = split_frames(d.frames, d.validation_frames, len(frames), d.aa)
        if beads is not None and len(beads) == len(frames):  # else check_cg_frames says what is wrong
            beads = _pick(beads, train + held)
        frames = _pick(frames, train + held)
        if beads is not None:
            made_by = system if d.cg_map is None else load_mapped_system(d.topology, d.cg_map, d.cg_itp,
                                                                         parameters=d.parameters, partial=True)
            check_cg_frames(frames, beads, made_by.mapping, d.cg_map or d.mapping, d.cg)
        first, rest = list(range(len(train))), list(range(len(train), len(train) + len(held)))
        context = read_frames(d.context, d.context_structure or d.aa_structure) if d.context else None
        if context is not None and (len(context), context.n_particles) != (len(train), frames.n_particles):
            raise InputError(f"data.context holds {len(context)} frames of {context.n_particles} atoms; expected one "
                             f"per training frame: {len(train)} frames of {frames.n_particles}", d.context)
        loaded.append(Source(_pick(frames, first), system, _pick(beads, first),
                             _pick(frames, rest) if held else None, _pick(beads, rest) if held else None, context))
    return loaded


CG_TOLERANCE_NM = 0.005  # ten times the rms rounding of .xtc/.gro coordinates (0.001 nm)


def check_cg_frames(aa: Frames, cg: Frames, mapping: SystemMapping, mapping_file: object, cg_file: object) -> float:
    """The rms distance (nm) between the CG frames and the AA frames mapped by ``mapping``; a warning
    when it exceeds :data:`CG_TOLERANCE_NM`: the CG frames were made by another mapping, which
    ``data.cg_map`` should name (the bead centres that refinement and CG consistency hold)."""
    from gdbm.utils.pbc import minimum_image

    if cg.n_particles != mapping.n_beads or len(cg) != len(aa):
        raise InputError(f"holds {len(cg)} frames of {cg.n_particles} beads; expected {len(aa)} frames of the "
                         f"{mapping.n_beads} beads of {mapping_file}", cg_file)
    mapped = mapping.map_positions(aa.positions.double(), aa.boxes.double())  # [F, N, 3]
    offsets = minimum_image(cg.positions.double() - mapped, cg.boxes.double()).norm(dim=-1)  # [F, N]
    rms = float(offsets.pow(2).mean().sqrt())
    if rms > CG_TOLERANCE_NM:
        warnings.warn(f"{cg_file}: the CG frames sit {rms:.3f} nm rms (at most {float(offsets.max()):.3f} nm) from "
                      f"the AA frames mapped by {mapping_file}; expected within {CG_TOLERANCE_NM} nm: name the "
                      "mapping that made them as data.cg_map (training goes on)", UserWarning, stacklevel=2)
    return rms


def build_dataset(config: ExperimentConfig, loaded: Sources | None = None,
                  spec: FeatureSpec | None = None) -> SequenceDataset | TrainingSet:
    """The training samples named by the config's data, ordering and environment sections
    (of the sources already ``loaded`` by :func:`load_sources`, if given).

    Several data sources give one :class:`TrainingSet` whose feature layout covers the atom
    and bead types of all of them; a given ``spec`` (the vocabulary of the model a run is
    fine-tuned from, ``training.init_from``) is kept instead, and must hold all of them.
    """
    loaded = loaded if loaded is not None else load_sources(config)
    own = [FeatureSpec.from_system(s.system, config.environment) for s in loaded]
    if spec is None:
        spec = FeatureSpec.union(own)
    else:
        for source, types in zip(config.sources, own):
            check_vocabulary(spec, types, source, str(config.training.init_from))
    parts = [_samples(config, s.frames, s.system, s.beads, spec, context=s.context) for s in loaded]
    if len(parts) == 1:
        return parts[0]
    shares = [d.weight for d in config.sources] if config.sources[0].weight is not None else None
    return TrainingSet(parts, shares)


def _samples(config: ExperimentConfig, frames: Frames, system: MappedSystem, beads: Frames | None,
             spec: FeatureSpec, oversample: bool = True, context: Frames | None = None) -> SequenceDataset:
    """The samples of some frames of one system, as the config's ordering, environment and conditioner want them
    (their contexts from ``context``, a sampler's frames, where given)."""
    return SequenceDataset(frames, system, config.ordering, config.environment, beads=beads, spec=spec,
                           oversample=oversample, align=config.model.entry.aligned,
                           lookahead=config.prior.hydrogen_lookahead, context=context)


def build_validation_set(config: ExperimentConfig, loaded: Sources,
                         spec: FeatureSpec) -> SequenceDataset | TrainingSet | None:
    """The samples of the held-out frames of every source that has some (None: none has), in the
    training's feature layout ``spec``; each plan step once (no ``[mult]`` oversampling)."""
    parts = [_samples(config, s.held_out, s.system, s.held_out_beads, spec, oversample=False)
             for s in loaded if s.held_out is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else TrainingSet(parts)


@dataclass
class TrainingData:
    """What a trainer learns from: the samples and the stereocentre template of the training frames,
    and the samples of the held-out frames it is scored on (None: no ``data.validation_frames``)."""

    dataset: SequenceDataset | TrainingSet
    stereo: StereoTemplate
    validation: SequenceDataset | TrainingSet | None = None


def load_training_data(config: ExperimentConfig, spec: FeatureSpec | None = None) -> TrainingData:
    """Read and check every input the config names (touches no output: a bad input fails before
    a run folder is created or cleared); ``spec``: a feature layout to keep (:func:`build_dataset`)."""
    loaded = load_sources(config)
    stereo = StereoTemplate.from_frames([(s.system.aa, s.frames.positions, s.frames.boxes) for s in loaded])
    dataset = build_dataset(config, loaded, spec)
    return TrainingData(dataset, stereo, build_validation_set(config, loaded, dataset.spec))


def build_trainer(config: ExperimentConfig, out_dir: str | Path, distributed: Distributed = Distributed(),
                  data: TrainingData | None = None, start: Start | None = None) -> Trainer:
    """Dataset (``data``, else loaded now), networks and optimisers of an experiment, seeded from the config;
    the networks start from the weights of ``start`` when it has some (fine-tuning, :mod:`gdbm.training.init_from`;
    without ``start``, a config's ``training.init_from`` is planned here as for a new run)."""
    if start is None and config.training.init_from is not None:
        start = plan_start(config, Path(out_dir) / CHECKPOINT, resuming=False)
    config = start.config if start is not None else config
    data = data if data is not None else load_training_data(config, start.spec if start else None)
    dataset, stereo = data.dataset, data.stereo
    torch.manual_seed(config.training.seed)
    generator, critic = config.model.entry.build(dataset.spec.n_features, dataset.spec.n_target_types,
                                             config.model.options)
    if start is not None:
        start.load_into(generator, critic)
    return Trainer(config, dataset, generator, critic, out_dir, distributed, stereo, data.validation)
