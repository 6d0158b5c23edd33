"""Training samples: one step of the plan (one bead's heavy atoms or hydrogens) in one frame.

What a training sequence sees (thesis Eq. 4.13-4.14, Fig. 4.5), in the local frame of its bead:

- the *context*: the reference structure within the cutoff, i.e. every bead and every atom
  except the sequence's own atoms and, in the heavy pass, the hidden hydrogens of the bead and
  its adjacent beads (:mod:`gdbm.ordering`). Atoms the plan places later are present too, at
  their reference positions, as in a Gibbs sweep (forward sampling sees fewer: a known gap
  between training and the first pass of sampling, also in DBM);
- the *sequence*: the step's atoms in plan order; at step k the conditioner also sees the
  sequence atoms 0..k-1 at the positions the generator gave them (unrolled training), so
  those positions come in as a tensor that may carry gradients (:func:`particles_for_step`).

Features are factorised: static codes per particle (kind, type) plus the interaction channel
of every context particle and earlier sequence atom relative to every target (``[L, P]``,
``[L, L]``), expanded to one-hots only for the step being trained. The energy prior of a
sample (:mod:`gdbm.data.prior`) indexes its local particle list, context then sequence.

Bead positions: the reconstruction plan and home beads come from the system's mapping (for
sPS DBM's ``PS1.map``); the bead positions should be the CG frames as simulated (or the AA
frames mapped with the mapping that produced them, for sPS ``PS1_cg_fritz.map``), passed as
``beads``: DBM's map puts backbone beads up to 0.07 nm away from the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import ConcatDataset, Dataset

from gdbm.data.particles import Particles
from gdbm.data.environment import EnvironmentConfig, Neighbours, find_neighbours, local_frames, random_z_rotations
from gdbm.data.features import FeatureSpec, SystemFeatures
from gdbm.data.prior import HydrogenLookahead, PriorIndex, pair_lj_energies
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.ordering import OrderingConfig, SystemPlan, plan_system
from gdbm.physics.bonded import term_energies
from gdbm.utils.pbc import minimum_image
from gdbm.topology.hydrogens import HydrogenGroups
from gdbm.topology.symmetry import step_relabellings
from gdbm.topology.system import MappedSystem
from gdbm.topology.topology import Term


@dataclass
class SequenceSample:
    """One plan step of one frame: its context, its reference atom sequence and its prior, in the local frame."""

    spec: FeatureSpec  # the layout the type codes refer to
    frame: int
    step: int  # index into the expanded plan
    bead: int
    heavy: bool
    centre: Tensor  # [3] bead position, box coordinates
    rotation: Tensor  # [3, 3] local = (x - centre) @ rotation.T
    context_positions: Tensor  # [P, 3]
    context_atom: Tensor  # [P] long global atom, -1 for beads; atoms first, increasing
    context_bead: Tensor  # [P] long global bead, -1 for atoms
    context_type: Tensor  # [P] long atom-type code (atoms) or bead-type code (beads)
    atoms: Tensor  # [L] long global atoms in placement order
    positions: Tensor  # [L, 3] reference positions
    target_type: Tensor  # [L] long atom-type codes
    context_channel: Tensor  # [L, P] int8 channel of context particle p w.r.t. target i; -1 for beads
    sequence_channel: Tensor  # [L, L] int8 channel of sequence atom j w.r.t. target i; -1 on the diagonal
    prior: list[Term]  # local indices: context [0, P), sequence P + [0, L)
    relabellings: Tensor  # [R, L] long, the identity first: equivalent labellings (gdbm.topology.symmetry)
    lookahead: HydrogenLookahead | None = None  # ideal sites of the hydrogens a later step places, local slots
    context_reference: Tensor | None = None  # [P, 3] the reference's positions of the context where it is not them


@dataclass
class SequenceBatch:
    """Samples padded to the batch's largest P and L; the prior flattened over ``[B * (P + L)]`` positions."""

    spec: FeatureSpec
    context_positions: Tensor  # [B, P, 3]
    context_atom: Tensor  # [B, P] long, -1 for beads and padding
    context_bead: Tensor  # [B, P] long, -1 for atoms and padding
    context_type: Tensor  # [B, P] long, -1 for padding
    context_mask: Tensor  # [B, P] bool
    atoms: Tensor  # [B, L] long, -1 for padding
    targets: Tensor  # [B, L, 3] reference positions
    target_type: Tensor  # [B, L] long, -1 for padding
    step_mask: Tensor  # [B, L] bool
    context_channel: Tensor  # [B, L, P] int8
    sequence_channel: Tensor  # [B, L, L] int8
    frame: Tensor  # [B] long
    bead: Tensor  # [B] long
    heavy: Tensor  # [B] bool
    centre: Tensor  # [B, 3]
    rotation: Tensor  # [B, 3, 3] alignment and augmentation: box = centre + local @ rotation
    prior: list[Term]  # index into [B * (P + L)] positions (see prior_positions)
    prior_sample: list[Tensor]  # per prior term, [m] the sample of each instance
    relabellings: Tensor  # [B, R, L] long: per sample, its equivalent labellings, padded with the identity
    lookahead: HydrogenLookahead | None = None  # every sample's, sites after the [B * (P + L)] positions
    lookahead_sample: Tensor | None = None  # [p] the sample of each lookahead pair
    context_reference: Tensor | None = None  # [B, P, 3] the reference's context, where the context is not it
    sampled: Tensor | None = None  # [B] bool: the context came from a sampler's frame (SequenceDataset's context)

    @property
    def reference_context(self) -> Tensor:
        """``[B, P, 3]``: the reference's positions of the context particles, against which a generated sequence's
        spans and energies are compared: ``context_positions`` unless the context came from elsewhere (a sampler's
        frame, a jitter)."""
        return self.context_positions if self.context_reference is None else self.context_reference

    @property
    def target_types(self) -> Tensor:
        """``[B, L, T]`` one-hot atom types of the targets (zeros for padding)."""
        return self.spec.target_types(self.target_type)

    def to(self, device: torch.device | str) -> "SequenceBatch":
        def move(value):
            if isinstance(value, list):
                return [v.to(device) for v in value]
            return value.to(device) if isinstance(value, (Tensor, HydrogenLookahead)) else value

        return SequenceBatch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})


def particles_for_step(batch: SequenceBatch, step: int, generated: Tensor) -> Particles:
    """What the conditioner sees when placing sequence atom ``step``: the context plus atoms ``0..step-1``.

    ``generated``: ``[B, L, 3]`` positions of the sequence atoms in the local frame (generated
    ones keep their gradients; only ``[:, :step]`` is used). Returns ``[B, P + step]`` particles.
    """
    spec = batch.spec
    context = spec.encode(batch.context_type, batch.context_bead >= 0, batch.context_channel[:, step].long())
    placed = spec.encode(batch.target_type[:, :step], torch.zeros_like(batch.step_mask[:, :step]),
                         batch.sequence_channel[:, step, :step].long())  # [B, step, F]
    return Particles(torch.cat([batch.context_positions, generated[:, :step]], 1),
                     torch.cat([context, placed], 1),
                     torch.cat([batch.context_mask, batch.step_mask[:, :step]], 1))


def prior_positions(batch: SequenceBatch, sequence: Tensor, context: Tensor | None = None) -> Tensor:
    """The ``[B * (P + L), 3]`` positions the prior terms index: context (``batch.context_positions`` or
    ``context [B, P, 3]``), then ``sequence [B, L, 3]``."""
    context = batch.context_positions if context is None else context
    return torch.cat([context.to(sequence.dtype), sequence], 1).flatten(0, 1)


def prior_energies(batch: SequenceBatch, sequence: Tensor, lj_core: float | None = None,
                   context: Tensor | None = None) -> dict[str, Tensor]:
    """Energy of the prior terms per sample and category, ``{category: [B]}`` float64 (differentiable).

    ``lj_core``: continue Lennard-Jones linearly below ``lj_core * sigma``
    (:func:`gdbm.physics.nonbonded.lj_energy_linear_core`); None = the bare potential. ``context``: other
    positions of the context (:func:`prior_positions`).
    """
    positions = prior_positions(batch, sequence, context)
    n = len(batch.frame)
    out: dict[str, Tensor] = {}
    for term, sample in zip(batch.prior, batch.prior_sample):
        if term.kind == "pair_lj":
            energies = {"lj": pair_lj_energies(term, positions, lj_core)}
        else:
            energies = term_energies(term, positions, coulomb=False)
        for category, e in energies.items():
            total = out.setdefault(category, torch.zeros(n, dtype=torch.float64, device=positions.device))
            out[category] = total.index_add(0, sample, e.to(torch.float64))
    if batch.lookahead is not None:
        e = batch.lookahead.energies(positions, lj_core)  # [p]
        out["lookahead"] = torch.zeros(n, dtype=torch.float64, device=positions.device).index_add(
            0, batch.lookahead_sample, e.to(torch.float64))
    return out


def collate(samples: list[SequenceSample], generator: torch.Generator | None = None,
            rotate: bool = True) -> SequenceBatch:
    """Pad samples into a :class:`SequenceBatch`, each turned by a random angle about z when ``rotate``.

    Angles come from ``generator``, or from torch's global generator when it is ``None`` (which
    a ``DataLoader`` seeds per worker from its own generator, so runs stay reproducible).
    """
    b = len(samples)
    n_ctx = torch.tensor([len(s.context_atom) for s in samples])  # [B]
    n_seq = torch.tensor([len(s.atoms) for s in samples])
    p, length = int(n_ctx.max()), int(n_seq.max())
    turn = (random_z_rotations(b, generator) if rotate else torch.eye(3).expand(b, 3, 3))  # [B, 3, 3]

    def pad(name: str, fill: float | int) -> Tensor:
        return pad_sequence([getattr(s, name) for s in samples], batch_first=True, padding_value=fill)

    context_channel = torch.full((b, length, p), -1, dtype=torch.int8)
    sequence_channel = torch.full((b, length, length), -1, dtype=torch.int8)
    for k, s in enumerate(samples):  # loop over samples, not atoms
        context_channel[k, :len(s.atoms), :len(s.context_atom)] = s.context_channel
        sequence_channel[k, :len(s.atoms), :len(s.atoms)] = s.sequence_channel
    prior, prior_sample = _flatten_prior(samples, n_ctx, p, length)
    lookahead, lookahead_sample = _flatten_lookahead(samples, n_ctx, n_seq, p, length)
    n_relabel = max(len(s.relabellings) for s in samples)
    relabellings = torch.arange(length).repeat(b, n_relabel, 1)  # [B, R, L] the identity
    for k, s in enumerate(samples):
        relabellings[k, :len(s.relabellings), :len(s.atoms)] = s.relabellings
    return SequenceBatch(
        spec=samples[0].spec,
        context_positions=pad("context_positions", 0.0) @ turn.transpose(1, 2),
        context_atom=pad("context_atom", -1), context_bead=pad("context_bead", -1),
        context_type=pad("context_type", -1),
        context_mask=torch.arange(p) < n_ctx.unsqueeze(1),
        atoms=pad("atoms", -1), targets=pad("positions", 0.0) @ turn.transpose(1, 2),
        target_type=pad("target_type", -1), step_mask=torch.arange(length) < n_seq.unsqueeze(1),
        context_channel=context_channel, sequence_channel=sequence_channel,
        frame=torch.tensor([s.frame for s in samples]), bead=torch.tensor([s.bead for s in samples]),
        heavy=torch.tensor([s.heavy for s in samples]), centre=torch.stack([s.centre for s in samples]),
        rotation=turn @ torch.stack([s.rotation for s in samples]), prior=prior, prior_sample=prior_sample,
        relabellings=relabellings, lookahead=lookahead, lookahead_sample=lookahead_sample,
        context_reference=(None if all(s.context_reference is None for s in samples) else pad_sequence(
            [s.context_positions if s.context_reference is None else s.context_reference for s in samples],
            batch_first=True) @ turn.transpose(1, 2)),
        sampled=(None if all(s.context_reference is None for s in samples)
                 else torch.tensor([s.context_reference is not None for s in samples])),
    )


def _flatten_prior(samples: list[SequenceSample], n_ctx: Tensor, p: int,
                   length: int) -> tuple[list[Term], list[Tensor]]:
    """Each sample's prior terms, merged by kind, re-indexed into ``[B * (P + L)]`` positions."""
    by_kind: dict[str, list[tuple[int, Term]]] = {}
    for k, s in enumerate(samples):
        for term in s.prior:
            by_kind.setdefault(term.kind, []).append((k, term))
    terms, owners = [], []
    for kind, parts in by_kind.items():
        sample = torch.cat([torch.full((len(t),), k, dtype=torch.long) for k, t in parts])  # [m]
        local = torch.cat([t.index for _, t in parts])  # [m, arity]
        params = {name: torch.cat([t.params[name] for _, t in parts]) for name in parts[0][1].params}
        terms.append(Term(kind, _batch_slots(local, sample, n_ctx, p, length), params))
        owners.append(sample)
    return terms, owners


def _batch_slots(local: Tensor, sample: Tensor, n_ctx: Tensor, p: int, length: int) -> Tensor:
    """Local slots ``[m, k]`` of samples ``sample [m]`` as slots of the batch's ``[B * (P + L)]`` positions."""
    ctx = n_ctx[sample].unsqueeze(1)  # [m, 1]
    return sample.unsqueeze(1) * (p + length) + torch.where(local < ctx, local, p + local - ctx)  # sequence at P + j


def _flatten_lookahead(samples: list[SequenceSample], n_ctx: Tensor, n_seq: Tensor, p: int,
                       length: int) -> tuple[HydrogenLookahead | None, Tensor | None]:
    """The samples' hydrogen look-aheads as one, in batch slots (sites after the ``[B * (P + L)]`` positions,
    sample by sample), and the sample of each pair; ``(None, None)`` when no sample has one."""
    parts = [(k, s.lookahead) for k, s in enumerate(samples) if s.lookahead is not None]
    if not parts:
        return None, None
    counts = torch.zeros(len(samples), dtype=torch.long)
    for k, look in parts:
        counts[k] = look.n_sites
    first_site = len(samples) * (p + length) + torch.cumsum(counts, 0) - counts  # [B]
    row_sample = torch.cat([torch.full((len(look.sites),), k, dtype=torch.long) for k, look in parts])  # [g]
    pair_sample = torch.cat([torch.full((len(look.pairs),), k, dtype=torch.long) for k, look in parts])  # [m]
    pairs = torch.cat([look.pairs.index for _, look in parts])  # [m, 2]
    site = pairs - (n_ctx + n_seq)[pair_sample].unsqueeze(1)  # >= 0: the e-th site of its sample
    pairs = torch.where(site >= 0, first_site[pair_sample].unsqueeze(1) + site,
                        _batch_slots(pairs, pair_sample, n_ctx, p, length))
    params = {name: torch.cat([look.pairs.params[name] for _, look in parts]) for name in parts[0][1].pairs.params}
    merged = HydrogenLookahead(
        _batch_slots(torch.cat([look.sites for _, look in parts]), row_sample, n_ctx, p, length),
        *(torch.cat([getattr(look, name) for _, look in parts]) for name in ("n_heavy", "n_hydrogens", "length",
                                                                              "angle")),
        Term("pair_lj", pairs, params))
    return merged, pair_sample


class SequenceDataset(Dataset):
    """Every plan step of every frame as a :class:`SequenceSample`, oversampled by the mapping's ``[mult]``.

    Built once: local frames of every (frame, bead) (centred on the bead; with ``align`` also rotated
    so the fixpoint bond lies on +z, for conditioners that declare ``aligned``, and turned to the
    azimuth bead when the config says so), their neighbours within the cutoff (one
    vesin search per frame), every atom relative to its home bead. Items are assembled on
    access (context minus sequence and hidden atoms, channels, prior terms). With ``lookahead`` (shapes
    of :data:`gdbm.topology.hydrogens.SHAPES`) a heavy step also carries ideal sites of the hydrogens it
    hides, for the prior's ``lookahead`` term.

    ``context``: AA frames, one per frame of ``frames`` (e.g. a sampler's backmapping of the same CG frames), from
    which every sample's context is taken instead of the reference's, the targets staying the reference's; each
    sample then carries the reference's positions of its context too (``context_reference``), for the terms
    that compare spans and energies. This trains the generator among the contexts the sampler gives it.
    """

    def __init__(self, frames: Frames, system: MappedSystem, plan: SystemPlan | OrderingConfig | None = None,
                 config: EnvironmentConfig | None = None, *, beads: Tensor | Frames | None = None,
                 spec: FeatureSpec | None = None, oversample: bool = True, align: bool = True,
                 lookahead: tuple[str, ...] = (), context: Frames | None = None) -> None:
        aa, mapping = system.aa, system.mapping
        if frames.n_particles != aa.n_atoms:
            raise InputError(f"frames hold {frames.n_particles} atoms but the topology has {aa.n_atoms}",
                             aa.source or None)
        if context is not None and (len(context), context.n_particles) != (len(frames), frames.n_particles):
            raise InputError(f"the context frames hold {len(context)} frames of {context.n_particles} atoms; expected "
                             f"{len(frames)} frames of {frames.n_particles}, one per training frame")
        self.config = config or EnvironmentConfig()
        self.plan = plan if isinstance(plan, SystemPlan) else plan_system(system, plan)
        self.steps, molecule, position = self.plan.expand()
        self.spec = spec or FeatureSpec.from_system(system, self.config)
        self.features = SystemFeatures(system, self.spec)
        self.prior = PriorIndex(aa, self.steps.atoms)
        # heavy steps' ideal hydrogen sites of these shapes (gdbm.topology.hydrogens), for the lookahead prior term
        self.hydrogens = HydrogenGroups.from_topology(aa) if lookahead else None
        self.site_centres = self.hydrogens.centres_per_step(self.steps.atoms, lookahead) if self.hydrogens else None
        self._aa = aa
        self._step_kind = [(self.plan.molecules[m], p) for m, p in zip(molecule.tolist(), position.tolist())]
        self._relabellings: dict[tuple[str, int], Tensor] = {}  # per molecule type and plan position
        atoms, boxes = frames.positions, frames.boxes  # [F, n, 3], [F, 3, 3]
        beads = mapping.map_positions(atoms, boxes).to(atoms.dtype) if beads is None else (
            beads.positions if isinstance(beads, Frames) else beads)  # [F, N, 3]
        if beads.shape[:2] != (len(atoms), mapping.n_beads):
            raise InputError(f"bead positions {tuple(beads.shape)} do not match {len(atoms)} frames of "
                             f"{mapping.n_beads} beads")
        n_frames, n_beads, self.n_atoms = len(atoms), mapping.n_beads, aa.n_atoms

        frame = torch.arange(n_frames).repeat_interleave(n_beads)  # [F * N] every (frame, bead)
        bead = torch.arange(n_beads).repeat(n_frames)
        fixpoint, azimuth = self.config.axes(mapping, align)
        self.frames = local_frames(beads, boxes, frame, bead, fixpoint, azimuth)  # [F * N, ...]
        seen = atoms if context is None else context.positions.to(atoms.dtype)  # [F, n, 3] the contexts' atoms
        near = find_neighbours(seen, beads, boxes, frame, bead, self.config.cutoff)
        self.context_ptr = torch.cat([torch.zeros(1, dtype=torch.long),
                                      torch.cumsum(torch.bincount(near.item, minlength=len(frame)), 0)])
        self.context_particle = torch.where(near.atom >= 0, near.atom, self.n_atoms + near.bead)  # [K]
        self.context_local = torch.einsum("kij,kj->ki", self.frames.rotation[near.item], near.vector)  # [K, 3]
        self.reference_local = None if context is None else torch.einsum(
            "kij,kj->ki", self.frames.rotation[near.item], _reference_vectors(near, atoms, beads, boxes, frame, bead))
        home = mapping.home_bead  # [n]
        rel = minimum_image(atoms - beads[:, home], boxes)  # [F, n, 3] every atom from its home bead
        rot = self.frames.rotation.view(n_frames, n_beads, 3, 3)[:, home]  # [F, n, 3, 3]
        self.atom_local = torch.einsum("fnij,fnj->fni", rot, rel)  # [F, n, 3]

        weight = mapping.mult[self.steps.bead] if oversample else torch.ones(len(self.steps), dtype=torch.long)
        unique_step = torch.arange(len(self.steps)).repeat(n_frames)  # [F * S]
        unique_frame = torch.arange(n_frames).repeat_interleave(len(self.steps))
        repeats = weight.repeat(n_frames)
        self.item_frame = unique_frame.repeat_interleave(repeats)  # [I]
        self.item_step = unique_step.repeat_interleave(repeats)
        self.n_beads = n_beads

    def __len__(self) -> int:
        return len(self.item_frame)

    def relabellings(self, step: int) -> Tensor:
        """``[R, L]``: the equivalent labellings of expanded plan step ``step`` (the same for every instance of
        its molecule type, so found once per type and position)."""
        key = self._step_kind[step]
        if key not in self._relabellings:
            seq, hidden = self.steps.atoms[step], self.steps.hidden[step]
            self._relabellings[key] = step_relabellings(self._aa, seq[seq >= 0].tolist(),
                                                        hidden[hidden >= 0].tolist())
        return self._relabellings[key]

    def __getitem__(self, index: int) -> SequenceSample:
        f, s = int(self.item_frame[index]), int(self.item_step[index])
        bead, heavy = int(self.steps.bead[s]), bool(self.steps.heavy[s])
        seq, hidden = self.steps.atoms[s], self.steps.hidden[s]
        seq, hidden = seq[seq >= 0], hidden[hidden >= 0]  # [L], [H]
        g = f * self.n_beads + bead
        span = slice(int(self.context_ptr[g]), int(self.context_ptr[g + 1]))
        particle, local = self.context_particle[span], self.context_local[span]
        keep = ~torch.isin(particle, torch.cat([seq, hidden]))
        particle, local = particle[keep], local[keep]
        reference = None if self.reference_local is None else self.reference_local[span][keep]  # [P, 3]
        atom = torch.where(particle < self.n_atoms, particle, -1)  # [P]
        bead_index = torch.where(particle >= self.n_atoms, particle - self.n_atoms, -1)
        channels = self.features.channels
        sequence_channel = channels(seq.unsqueeze(1), seq.unsqueeze(0)).to(torch.int8)  # [L, L]
        sequence_channel.fill_diagonal_(-1)
        return SequenceSample(
            spec=self.spec, frame=f, step=s, bead=bead, heavy=heavy,
            centre=self.frames.centre[g], rotation=self.frames.rotation[g],
            context_positions=local, context_atom=atom, context_bead=bead_index,
            context_type=self.features.type_code(atom, bead_index),
            atoms=seq, positions=self.atom_local[f, seq], target_type=self.features.atom_type[seq],
            context_channel=channels(seq.unsqueeze(1), atom.unsqueeze(0)).to(torch.int8),  # [L, P]
            sequence_channel=sequence_channel, prior=self.prior.terms_for(s, atom, seq),
            relabellings=self.relabellings(s), lookahead=self._lookahead(s, atom, seq), context_reference=reference,
        )

    def _lookahead(self, step: int, context_atom: Tensor, sequence: Tensor) -> HydrogenLookahead | None:
        """The ideal sites of the hydrogens of step ``step``'s heavy atoms, when the dataset asks for them."""
        if self.site_centres is None:
            return None
        return self.prior.hydrogen_lookahead(self.hydrogens, self.site_centres[step], context_atom, sequence)


def _reference_vectors(near: Neighbours, atoms: Tensor, beads: Tensor, boxes: Tensor, frame: Tensor,
                       bead: Tensor) -> Tensor:
    """``[K, 3]``: the minimum-image vectors from each item's centre bead to the reference's positions
    (``atoms [F, n, 3]``) of the neighbours found in other frames; a bead neighbour's vector stays as found."""
    f = frame[near.item]  # [K]
    vectors = minimum_image((atoms[f, near.atom.clamp_min(0)] - beads[f, bead[near.item]]).unsqueeze(1),
                            boxes[f]).squeeze(1)  # [K, 3]
    return torch.where((near.atom >= 0).unsqueeze(1), vectors.to(near.vector.dtype), near.vector)


class TrainingSet(ConcatDataset):
    """The samples of several systems (one :class:`SequenceDataset` each) with one feature layout.

    ``shares`` (one per part) make the systems' shares of a random draw the composition of the
    training mix, whatever their sizes: ``sample_weights`` then holds one draw weight per sample.
    Without them every sample is equally likely (``sample_weights`` is None).
    """

    def __init__(self, parts: list[SequenceDataset], shares: list[float] | None = None) -> None:
        if not parts:
            raise ValueError("a training set needs at least one dataset")
        for part in parts[1:]:
            parts[0].spec.check_compatible(part.spec)
        super().__init__(parts)
        self.parts = parts
        self.spec = parts[0].spec
        self.config = parts[0].config  # one environment config for every part (the training config's)
        self.sample_weights: Tensor | None = None
        if shares is not None:
            if len(shares) != len(parts) or min(shares) <= 0:
                raise ValueError(f"expected {len(parts)} positive shares, got {shares}")
            total = sum(shares)
            self.sample_weights = torch.cat([torch.full((len(p),), share / total / len(p), dtype=torch.float64)
                                             for p, share in zip(parts, shares)])
