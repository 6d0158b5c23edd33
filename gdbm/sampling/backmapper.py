"""Backmapping: a forward pass along the plan, then Gibbs sweeps, keeping the lowest-energy candidate.

Thesis Sec. 4.2.2-4.2.3 and 5.1.4. Every plan step (the heavy atoms or the hydrogens of one
bead) is generated for many items at once: the same step of every molecule instance in
every frame of a chunk, split into batches whose items do not interact (no item's new atoms
can enter another's environment, so none waits for another). For each item, ``candidates`` versions are generated
(``last_candidates`` in the last pass: 4 and 16 by default), each in its
environment turned by a random angle about z (none with ``EnvironmentConfig.azimuth = "bead"``) and with its own noise; the one whose atoms
have the lowest energy with their environment (bonded terms + Lennard-Jones, the terms of
the energy prior; with ``hydrogen_lookahead`` also those of ideal hydrogen sites on a heavy-atom
step's atoms, standing in for the bead's own hydrogens built later) is kept; where the step decides a stereocentre's handedness, each wrongly handed
centre adds ``stereo_penalty`` to a candidate's score, and items left wrongly handed get more rounds of
candidates (``stereo_select``, ``stereo_retries``; the stereocentre rule inverts what is still wrong
after each pass); items whose kept candidate still has a clashing atom pair (one Lennard-Jones pair above
``clash_energy``) get up to ``clash_retries`` more rounds. In the forward pass an environment holds the atoms placed so
far; in a Gibbs sweep it holds every other atom. Hidden hydrogens stay out in both.
The sampler sees the network only through :mod:`gdbm.conditioners.interface`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Literal

import torch
from pydantic import (BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, ValidationError, field_validator,
                      model_validator)
from torch import Tensor
from gdbm.utils.progress import tqdm

from gdbm.conditioners.interface import Generator
from gdbm.data.environment import (Environment, EnvironmentConfig, local_environments, pairs_within,
                                   random_z_rotations)
from gdbm.data.features import FeatureSpec, SystemFeatures, TypeAliases
from gdbm.data.prior import PriorIndex
from gdbm.data.stereo import stereo_template_from_file
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.utils.pbc import minimum_image
from gdbm.ordering import OrderingConfig, SystemPlan
from gdbm.physics.bonded import term_energies
from gdbm.physics.energy import EnergyModel
from gdbm.physics.centre_shift import SmoothCentreShift
from gdbm.physics.pendant_pivot import PendantPivot, TurnThenSmooth
from gdbm.physics.pendant_seat import PendantSeat
from gdbm.physics.relax import CentreConstraint, CentreProjection, project_constraints, relax
from gdbm.sampling.bond_fit import StepBondFit
from gdbm.sampling.held_candidates import HeldCandidates
from gdbm.sampling.pendant_tilts import PendantTilts
from gdbm.sampling.pendant_turns import PendantTurns
from gdbm.utils.precision import Precision, resolve_precision
from gdbm.topology.hydrogens import HydrogenGroups
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.stereo import StereoFix, StereoTemplate, candidate_handedness
from gdbm.topology.system import MappedSystem
from gdbm.topology.topology import Term

log = logging.getLogger(__name__)


NAMES_STREAM = 1 << 40  # the hydrogen names' random stream, apart from the candidates' (seeded seed * 1000003 + frame)
SUSPICIOUS_CENTRE_OFFSET = 0.1  # nm rms; a pass of a trained generator misses the CG centres by up to 0.05 (cumene-voxel)


class SamplerConfig(BaseModel):
    """How to backmap: Gibbs sweeps after the forward pass, candidates per item, seed, frames per chunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_gibbs: int = Field(2, ge=0)
    candidates: int = Field(4, ge=1, description="versions generated per item in every pass but the last; the "
                                                  "lowest-energy one is kept")
    last_candidates: int = Field(16, ge=1, description="versions per item in the last pass, whose choice is kept "
                                                       "(default 16; set ``candidates`` alone and it applies here "
                                                       "too): the sweeps rebuild every bead, so candidates count "
                                                       "most at the end")
    pass_candidates: tuple[PositiveInt, ...] | None = Field(
        None, min_length=1, description="candidates per pass instead of ``candidates`` and ``last_candidates``: "
                                        "the forward pass (when there is one), then each sweep; the last value "
                                        "repeats")
    hydrogen_candidates: PositiveInt | None = Field(
        None, description="candidates per item for the hydrogen-only steps, in every pass (at most that pass's "
                          "count); None: as many as the heavy atoms. Half the atoms of a hydrocarbon are "
                          "hydrogens and the network's cost is per candidate, so fewer here is the cheapest cut "
                          "where ``hydrogen_lookahead`` has already scored ideal hydrogen sites")
    noise_scale: float = Field(1.0, gt=0, description="the generator's latent noise times this (a sampling "
                               "temperature of the network itself): a supervised model barely uses its noise, "
                               "so its candidates differ mostly by the random turn; more spreads them")
    seed: int = 0
    frames_per_chunk: int = Field(1, ge=1, description="CG frames processed together (memory vs speed)")
    precision: Precision = Field(
        "auto", description="network arithmetic; bfloat16 (autocast, channels-last convolutions) is faster on CPUs "
                            "with AVX512-BF16 or AMX and on GPUs with bfloat16 units (an sPS frame on a Xeon with "
                            "AMX: 68 s against 87 s), many times slower where it is emulated; "
                            "auto: bfloat16 where native, else float32 (gdbm.utils.precision); positions and "
                            "energies stay float32/float64")
    compile: bool = Field(False, description="torch.compile the generator (dynamic shapes): measured 1.3x "
                                             "faster per call on CPU after a compilation of about 90 s, so "
                                             "for many frames per process, not one")
    constrain_bonds: bool = Field(False, description="after each pass, project every bond to its b0 (for "
                                                     "references simulated with bond constraints)")
    hold_centres: Literal["off", "rigid", "smooth", "pivot", "seat"] = Field(
        "off", description="after each pass, move the atoms so that every CG bead's centre by the hold mapping sits "
                           "on the CG input: rigid moves each bead's atoms as one body (mass-weighted: a rigid "
                           "shift for a centre of mass), which bends the bonds between beads; smooth spreads each "
                           "bead's correction along the molecule, changing the bond and 1-3 vectors least "
                           "(gdbm.physics.centre_shift); pivot first turns each pendant bead (its atoms hang off "
                           "the molecule by one bond: a phenyl ring) about that bond's atom to point its centre at "
                           "the input, keeping the angles at that atom's neighbour, then smooth for what is left "
                           "(gdbm.physics.pendant_pivot); seat first turns each pendant bead about the atom it "
                           "hangs on towards that atom's ideal site (keeping seat_keep of the deviation), then "
                           "bends it out of its plane at its own atom towards the input, then smooth "
                           "(gdbm.physics.pendant_seat). True/False read as rigid/off")
    fit_bonds: bool = Field(False, description="before the candidates are scored, fit each to the topology's bond "
                                               "lengths without bending it: a step's heavy atoms scaled about their "
                                               "centroid to b0 (least squares), each hydrogen moved along its bond "
                                               "to b0 (gdbm.sampling.bond_fit)")
    bond_cap: float | None = Field(None, gt=0, description="nm: after the last pass, every bond longer than its "
                                   "b0 + bond_cap is shortened to that length, the rest left as generated (with "
                                   "hold_centres the centres are held again, by the smooth projection for "
                                   "pivot and seat): the generator's rare broken bonds "
                                   "(sPS: one or two CH-ipso bonds per frame beyond 0.19 nm, section 24 of "
                                   "docs/generator-diagnosis.md) without its bond-length spread; None: off")
    pendant_turns: PositiveInt = Field(1, description="versions of each candidate of a step that places a pendant "
                                                      "group (heavy atoms held by one bond: a phenyl ring), turned "
                                                      "about that bond 360 / pendant_turns degrees apart, scored with "
                                                      "the others (gdbm.sampling.pendant_turns): the energy then "
                                                      "chooses the group's turn from every turn, not from the "
                                                      "network's narrow spread; 1: none")
    pendant_tilt: float | None = Field(None, gt=0, lt=90, description="degrees: besides each candidate of a "
                                       "pendant step, four copies turned about the group's own atom of its holding "
                                       "bond (the ipso) by +- this much in the group's plane and out of it, scored "
                                       "with the others (gdbm.sampling.pendant_tilts): the energy then chooses the "
                                       "ring's lean and tilt as well; None: none")
    held_candidates: bool = Field(False, description="in the Gibbs sweeps, move each candidate of a heavy-atom step "
                                                     "so that the centres of its atoms' beads (by the hold mapping) "
                                                     "sit on the CG input, least squares, before it is scored (a "
                                                     "pendant group turned about its atom of the holding bond, then "
                                                     "slid along the line to its target): the energy then chooses "
                                                     "among held candidates rather than ``hold_centres`` moving the "
                                                     "chosen one after (gdbm.sampling.held_candidates)")
    hydrogen_sweep: bool = Field(False, description="after the last pass and its centre hold, place the hydrogen-only "
                                                    "steps once more, not held again: their candidates are chosen "
                                                    "by energy among the held heavy atoms, whose hold moved the "
                                                    "hydrogens into each other's way (sPS: H-H across backbone "
                                                    "bonds). A hydrogen is a small share of its bead's mass, so "
                                                    "the centres move little")
    seat_keep: float = Field(0.7, ge=0, le=1, description="with hold_centres seat: the fraction of each pendant "
                                                          "attachment's angle from its ideal site that is kept "
                                                          "(1: none moved; 0: every one on its site)")
    stereo: bool = Field(True, description="after each pass, invert every stereocentre handed against the "
                                           "model's training data (gdbm.topology.stereo)")
    hydrogen_names: bool = Field(True, description="with stereo, after the last pass: name each CH2's and CH3's "
                                                   "equivalent hydrogens as the training frames do (the model's "
                                                   "stereo template, where it recorded the naming) and turn each "
                                                   "CH3's names by a random 0-2 places; no atom of the set moves "
                                                   "(gdbm.topology.hydrogen_names)")
    stereo_select: bool = Field(True, description="with stereo: score the candidates of a step that places a "
                                                  "stereocentre's carbon or a heavy neighbour by energy + "
                                                  "stereo_penalty per wrongly handed centre (unplaced neighbours at "
                                                  "their beads' CG positions); the rule after the pass then inverts "
                                                  "only what is still wrong")
    selection_kt: float = Field(0.0, ge=0, description="kJ/mol: 0 keeps each item's lowest-energy candidate; above "
                                                        "0 a Boltzmann choice among them (probability proportional "
                                                        "to exp(-energy / selection_kt)): the lowest of many "
                                                        "candidates is lower than a thermal one, which shifts "
                                                        "the energies below the ensemble's (kT at 568 K: 4.72)")
    stereo_penalty: float = Field(1000.0, gt=0, description="with stereo_select: kJ/mol added to a candidate's "
                                                            "energy per wrongly handed centre (inf: a rightly "
                                                            "handed candidate wins at any energy); the rule's "
                                                            "inversion of a centre costs about as much in LJ")
    stereo_retries: int = Field(8, ge=0, description="with stereo_select: rounds of ``candidates`` more for the items "
                                                     "whose kept candidate is still wrongly handed (a few per "
                                                     "sweep); a new one is kept when it has fewer wrong centres, "
                                                     "or as few at lower energy")
    selection_weights: dict[Literal["bond", "angle", "proper", "improper", "lj", "lookahead"], NonNegativeFloat] = Field(
        default_factory=dict, description="weight of each energy category in the score that picks a candidate "
                                          "(default 1 each): e.g. bond 0.1 lets the Lennard-Jones and angle "
                                          "terms, not the noise of the bond lengths, decide between candidates; "
                                          "lookahead: the ideal hydrogen sites' LJ (``hydrogen_lookahead``)")
    score_hidden: bool = Field(False, description="score the candidates of a heavy-atom step with the adjacent "
                                                 "beads' hydrogens present (those placed so far); the network "
                                                 "still does not see them. The bead's own hydrogens stay out: "
                                                 "they are rebuilt after it. A ring's turn about its bond to "
                                                 "the backbone is decided by its hydrogens against the "
                                                 "backbone's, which the heavy atoms alone do not show")
    hydrogen_lookahead: tuple[Literal["planar_ch", "ch", "ch2"], ...] = Field(
        (), description="score the candidates of a heavy-atom step with the Lennard-Jones energy of ideal hydrogen "
                        "sites (gdbm.topology.hydrogens) on its atoms of these shapes (planar_ch: an aromatic CH; "
                        "ch: a tetrahedral CH; ch2), standing in for the bead's own hydrogens, which are built "
                        "only after it: the contacts of those hydrogens (a phenyl's with its neighbours') then "
                        "count when the heavy atoms are chosen. Sites on atoms whose heavy neighbours are not "
                        "placed yet are left out. Real hydrogens sit off the ideal sites, away from their "
                        "contacts (on sPS reference frames the sites add 0.3 kJ/mol per aromatic H, 2 per CH "
                        "and 0.5 per CH2 hydrogen)")
    clash_energy: float = Field(10.0, gt=0, description="kJ/mol: a kept candidate with a Lennard-Jones pair above "
                                                       "this (a clash; about r < 0.78 sigma for the hydrogens of "
                                                       "sPS, 26 pairs in a 5832-atom reference frame) gets "
                                                       "``clash_retries`` more rounds of candidates")
    clash_retries: int = Field(0, ge=0, description="rounds of ``candidates`` more for the items whose kept candidate "
                                                   "clashes; a new one is kept when it scores lower (energy + "
                                                   "stereo penalty)")
    relax_steps: int = Field(0, ge=0, description="steps of constrained steepest descent after the last "
                                                   "sweep, CG beads held on their input (gdbm.physics.relax)")
    reach: float = Field(0.3, ge=0, description="nm an atom may lie from its bead: two items of a step run in "
                                                "separate batches when their beads are closer than cutoff + reach")
    max_batch: int = Field(4096, ge=1, description="environments (items x candidates) per network call: bounds "
                                                    "the memory of large boxes and many candidates")

    @field_validator("hold_centres", mode="before")
    @classmethod
    def _hold_centres_flag(cls, value: object) -> object:
        """The earlier boolean: True is the rigid shift, False none."""
        return {True: "rigid", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="before")
    @classmethod
    def _one_number_for_every_pass(cls, data: object) -> object:
        """``candidates`` given without ``last_candidates``: the same number in every pass, as before the
        last pass had its own."""
        if isinstance(data, dict) and "candidates" in data and "last_candidates" not in data:
            return {**data, "last_candidates": data["candidates"]}
        return data

    def candidates_in(self, index: int, last: bool = False) -> int:
        """Candidates per item in pass ``index`` (0: the first pass run); ``last``: it is the last pass."""
        if self.pass_candidates is not None:
            return self.pass_candidates[min(index, len(self.pass_candidates) - 1)]
        return self.last_candidates if last else self.candidates


def sampler_for(checkpoint: str | Path, overrides: Mapping[str, Any] | None = None) -> SamplerConfig:
    """The sampler settings for a model: :class:`SamplerConfig`'s defaults, then those the checkpoint recorded
    (the settings a shipped model was scored with, ``export_generator(sampler=...)``), then ``overrides``
    (e.g. the flags a user gave). Recorded settings that are not :class:`SamplerConfig`'s are an
    :class:`InputError` naming the checkpoint."""
    from gdbm.training.trained_model import load_sampler_settings

    recorded = load_sampler_settings(checkpoint)
    try:
        SamplerConfig.model_validate(recorded)
    except ValidationError as err:
        raise InputError(f"the model's recorded sampler settings are not valid ({' '.join(str(err).split()[:16])})",
                         checkpoint) from None
    given = dict(overrides or {})
    if "candidates" in given:  # a count given replaces the recorded counts per pass
        given = {"last_candidates": given["candidates"], "pass_candidates": None, **given}
    return SamplerConfig.model_validate({**recorded, **given})


def select_candidates(energy: Tensor, wrong: Tensor | None = None, penalty: float = float("inf"), kt: float = 0.0,
                      rng: torch.Generator | None = None) -> Tensor:
    """``[B]``: the candidate kept per item of ``energy [B, K]``: the lowest-energy one, or, given ``wrong [B, K]``
    (wrongly handed stereocentres per candidate), the lowest of ``energy + penalty * wrong``; with an infinite
    ``penalty`` the lowest-energy one of those with the fewest wrong centres: a rightly handed candidate wins at
    any energy. Where all are wrong the energy decides (the rule inverts later). With ``kt`` > 0 (kJ/mol) a
    Boltzmann choice instead: each allowed candidate with probability proportional to exp(-score / kt), drawn
    from ``rng``; where every score is infinite, the rule's choice."""
    if wrong is None:
        score = energy
    elif penalty != float("inf"):
        score = energy + penalty * wrong.to(energy.dtype)
    else:
        fewest = wrong == wrong.min(1, keepdim=True).values
        score = torch.where(fewest, energy, torch.inf)
    best = score.argmin(1)
    if wrong is not None and penalty == float("inf"):
        outside = ~fewest.gather(1, best.unsqueeze(1)).squeeze(1)  # every one of the fewest at infinite energy
        best = torch.where(outside, fewest.to(torch.uint8).argmax(1), best)
    if kt <= 0:
        return best
    low = score.gather(1, best.unsqueeze(1))  # [B, 1]
    weight = torch.where(torch.isfinite(score) & torch.isfinite(low), torch.exp(-(score - low) / kt), 0.0)
    none = weight.sum(1, keepdim=True) == 0  # [B, 1] every score infinite: any row will do for the draw
    drawn = torch.multinomial(weight.double() + none, 1, generator=rng).squeeze(1)
    return torch.where(none.squeeze(1), best, drawn)


@dataclass
class _Items:
    """The items of one plan-step group in a chunk: (frame, step) pairs and their atoms."""

    frame: Tensor  # [B]
    step: Tensor  # [B] index into the expanded plan
    bead: Tensor  # [B]
    atoms: Tensor  # [B, L] -1 padded
    absent: Tensor  # [B, L + H] the atoms to place and the hidden ones
    unscored: Tensor  # [B, L + H] the atoms to place and the bead's own hidden ones (-1 padded)

    def take(self, index: Tensor | slice) -> "_Items":
        return _Items(*(getattr(self, f.name)[index] for f in fields(_Items)))


class Backmapper:
    """Backmaps CG frames of one system with a trained generator.

    ``hold``: the mapping whose bead centres the relaxation and ``hold_centres`` keep on the CG input (default:
    the system's own; give the one that made the CG frames when the reconstruction mapping
    differs from it, as DBM's sPS map does). ``aliases``: the model's names for this system's
    atom and bead types, when it was trained on other ones. ``stereo``: the handedness of the
    stereocentres of each molecule type (from the training frames), restored after every pass.
    """

    def __init__(self, system: MappedSystem, generator: Generator, spec: FeatureSpec, plan: SystemPlan,
                 environment: EnvironmentConfig | None = None, config: SamplerConfig | None = None,
                 device: str | torch.device = "cpu", hold: SystemMapping | None = None,
                 aliases: TypeAliases | None = None, stereo: StereoTemplate | None = None):
        self.system, self.spec = system, spec
        self.hold = hold or system.mapping
        self.environment = environment or EnvironmentConfig()
        self.config = config or SamplerConfig()
        self.device = torch.device(device)
        self.precision = resolve_precision(self.config.precision, self.device)  # what "auto" is on this hardware
        if self.precision == "bfloat16" and hasattr(generator, "channels_last"):
            generator.channels_last()  # bfloat16 convolutions want channels-last activations (5x on AMX)
        self.generator = torch.compile(generator, dynamic=True) if self.config.compile else generator
        self.steps, _, position = plan.expand()
        # steps at the same position of their molecule's plan run together
        self.groups = [torch.nonzero(position == p).squeeze(1) for p in range(int(position.max()) + 1)]
        hydrogen_groups = (group[~self.steps.heavy[group]] for group in self.groups)
        self.hydrogen_groups = [group for group in hydrogen_groups if len(group)]  # hydrogen_sweep's steps
        self.features = SystemFeatures(system, spec, aliases)
        self.prior = PriorIndex(system.aa, self.steps.atoms)
        # aligned conditioners get environments rotated to the fixpoint bond, then turned per candidate by a
        # random angle, or to the azimuth bead when the environment config says so
        self.aligned = getattr(generator, "aligned", True)
        self.fixpoint, self.azimuth = self.environment.axes(system.mapping, self.aligned)
        self.turn = self.environment.random_turns(self.aligned)
        self.stereo = StereoFix(stereo, system.aa) if stereo is not None and self.config.stereo else None
        # centres the rule inverted, per pass of the last chunk ([frames] each): how often the generator got them wrong
        self.inverted: list[Tensor] = []
        self.step_centres = (self._centres_per_step() if self.stereo is not None and self.config.stereo_select
                             else None)
        self._candidates = self.config.candidates_in(0)  # of the pass being run
        self._bond_fit = StepBondFit(system.aa) if self.config.fit_bonds else None
        self._held = (HeldCandidates.of(self.hold, system.aa, self.steps.atoms) if self.config.held_candidates
                      else None)
        self._turns = (PendantTurns(system.aa, self.steps.atoms, self.config.pendant_turns)
                       if self.config.pendant_turns > 1 else None)
        self._tilts = (PendantTilts(system.aa, self.steps.atoms, self.config.pendant_tilt)
                       if self.config.pendant_tilt is not None else None)
        self.hydrogens = HydrogenGroups.from_topology(system.aa) if self.config.hydrogen_lookahead else None
        self.step_sites = (self.hydrogens.centres_per_step(self.steps.atoms, self.config.hydrogen_lookahead)
                           if self.hydrogens is not None else None)
        # per pass: items with a wrongly handed candidate, items where that changed the choice, items with no
        # rightly handed candidate (left to the rule), items whose kept candidate clashed, before and after
        # the clash retries
        self.selection = {"contested": 0, "changed": 0, "all_wrong": 0, "wrong_after_retries": 0, "clashing": 0,
                          "clashing_after_retries": 0}

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, topology: str | Path, mapping: str | Path,
                        config: SamplerConfig | None = None, *, cg_itp: str | Path | None = None,
                        parameters: str | Path | None = None, device: str | torch.device = "cpu",
                        hold: str | Path | None = None, aliases: TypeAliases | None = None,
                        ordering: OrderingConfig | None = None,
                        stereo_from: str | Path | None = None) -> "Backmapper":
        """A sampler for the system of ``topology`` + ``mapping`` with a trained model.

        ``config``: the sampler settings; None: the model's own (:func:`sampler_for`: those it recorded,
        else :class:`SamplerConfig`'s defaults).
        ``checkpoint``: a ``gdbm fit`` checkpoint or a shipped model's name (``"sps-voxel"``); its
        experiment config supplies the reconstruction order (unless ``ordering``) and the environment cutoff.
        ``hold``: a mapping file (may be partial) whose bead centres the relaxation keeps on the
        CG input; default ``mapping``. ``stereo_from``: an AA structure of this system whose
        stereocentres to copy, instead of the handedness recorded from the model's training frames.
        """
        from gdbm.training.trained_model import load_generator, load_stereo
        from gdbm.ordering import plan_system
        from gdbm.topology.system import load_mapped_system

        generator, spec, experiment = load_generator(checkpoint, str(device))
        system = load_mapped_system(topology, mapping, cg_itp, parameters=parameters, partial=False)
        held = None
        if hold is not None:
            held = load_mapped_system(topology, hold, cg_itp, parameters=parameters, partial=True).mapping
            if held.n_beads != system.mapping.n_beads:
                raise InputError(f"the hold mapping has {held.n_beads} beads, the mapping {system.mapping.n_beads}",
                                 hold)
        stereo = stereo_template_from_file(system.aa, stereo_from) if stereo_from is not None else load_stereo(checkpoint)
        config = config if config is not None else sampler_for(checkpoint)
        return cls(system, generator, spec, plan_system(system, ordering or experiment.ordering), experiment.environment,
                   config, device=device, hold=held, aliases=aliases, stereo=stereo)

    def _held_centres(self, beads: Tensor) -> CentreProjection | None:
        """The projection ``hold_centres`` asks for, onto one chunk's CG positions ``beads`` ``[F, n_beads, 3]``."""
        if self.config.hold_centres == "pivot":
            return TurnThenSmooth(self._pendant_pivot.turn, self._smooth_shift, beads.double())
        if self.config.hold_centres == "seat":
            return TurnThenSmooth(self._pendant_seat.turn, self._smooth_shift, beads.double())
        return self._centres_kept(beads)  # off, rigid, smooth

    def finish(self, atoms: Tensor, beads: Tensor, boxes: Tensor, first: int) -> Tensor:
        """The sampler's last step, a function of the last pass's ``atoms [F, n, 3]`` alone (``first``: the
        index of the chunk's first output frame, which seeds it): equivalent hydrogens renamed to the training
        frames' naming (``hydrogen_names``), every bond longer than b0 + ``bond_cap`` shortened to that length,
        and the centres held again on ``beads [F, n_beads, 3]`` (``_centres_kept``) where either moved an atom,
        unless ``hydrogen_sweep`` has placed the hydrogens after the hold."""
        renamed = self.stereo is not None and self.config.hydrogen_names and len(self.stereo.hydrogen_groups) > 0
        if renamed:
            rng = torch.Generator().manual_seed(self.config.seed * 1_000_003 + first + NAMES_STREAM)
            atoms, misnamed = self.stereo.name_hydrogens(atoms, boxes, rng)
            log.info("frames from %d: %s of %d hydrogen groups renamed", first, misnamed.tolist(),
                     len(self.stereo.hydrogen_groups))
        held = None if self.config.hydrogen_sweep else self._centres_kept(beads)
        if self.config.bond_cap is None and not (renamed and held is not None):
            return atoms
        return project_constraints(atoms, boxes, self.system.aa, bonds=self.config.bond_cap is not None,
                                   centres=held, stretch=self.config.bond_cap)

    def _centres_kept(self, beads: Tensor) -> CentreProjection | None:
        """What holds the centres while a few atoms move (``bond_cap``): the hold's own projection without its
        pendant turns (they would turn every ring again), i.e. rigid or smooth."""
        if self.config.hold_centres == "off":
            return None
        if self.config.hold_centres == "rigid":
            return CentreConstraint(self.hold, beads.double(), self.system.aa.masses)
        return self._smooth_shift.holding(beads.double())

    def _report_centre_offset(self, atoms: Tensor, beads: Tensor, boxes: Tensor, name: str) -> None:
        """Log how far the pass left the bead centres from the CG input before ``hold_centres`` moves them; warn
        when it is twice a weak generator's error (a hold mapping other than the one that made the CG frames?)."""
        off = minimum_image(beads.double() - self.hold.map_positions(atoms.double(), boxes.double()), boxes.double())
        rms = float(off.pow(2).sum(-1).mean().sqrt())
        log.info("%s pass: bead centres %.4f nm (rms) from the CG input before the %s projection",
                 name, rms, self.config.hold_centres)
        if rms > SUSPICIOUS_CENTRE_OFFSET:
            log.warning("the bead centres by the hold mapping are %.3f nm (rms) from the CG input: is --cg-map the "
                        "mapping that made the CG frames? (the projection moves the atoms that far)", rms)

    @cached_property
    def _smooth_shift(self) -> SmoothCentreShift:
        return SmoothCentreShift(self.hold, self.system.aa)

    @cached_property
    def _pendant_pivot(self) -> PendantPivot:
        return PendantPivot.of(self.hold, self.system.aa)

    @cached_property
    def _pendant_seat(self) -> PendantSeat:
        return PendantSeat.of(self.hold, self.system.aa, self.config.seat_keep)

    def _centres_per_step(self) -> Tensor:
        """``[S, M]`` (-1 padded): per plan step, the stereocentres (rows of the rule's centres) whose carbon
        or one of its three heavy neighbours the step places, i.e. whose handedness its candidates decide."""
        assert self.stereo is not None
        touching: dict[int, list[int]] = {}
        for row, quad in enumerate(self.stereo.centres[:, :4].tolist()):
            for atom in quad:
                touching.setdefault(atom, []).append(row)
        per_step = [sorted({row for atom in atoms if atom >= 0 for row in touching.get(atom, ())})
                    for atoms in self.steps.atoms.tolist()]
        width = max((len(rows) for rows in per_step), default=0)
        out = torch.full((len(per_step), max(width, 1)), -1, dtype=torch.long)
        for step, rows in enumerate(per_step):
            out[step, :len(rows)] = torch.tensor(rows, dtype=torch.long)
        return out

    def _lookahead(self, step: int, context: Tensor, sequence: Tensor, positions: Tensor) -> Tensor:
        """``[K]``: Lennard-Jones energy of ideal hydrogen sites on the step's heavy atoms, per candidate, with
        the context atoms ``context [P]`` (-1: none), the ``sequence [L]`` and each other; ``positions
        [K, P + L', 3]`` local, the sequence's slots maybe padded (L' >= L). Sites whose heavy neighbours are
        absent, or whose hydrogens are present, are left out."""
        assert self.hydrogens is not None and self.step_sites is not None
        look = self.prior.hydrogen_lookahead(self.hydrogens, self.step_sites[step], context, sequence)
        if look is None:
            return torch.zeros(len(positions), dtype=torch.float64)
        x = positions[:, :len(context) + len(sequence)].double()  # [K, P + L, 3] unpadded
        return look.energies(x).sum(-1)

    def _wrongly_handed(self, items: _Items, env: Environment, local: Tensor, atoms: Tensor, present: Tensor,
                        beads: Tensor, boxes: Tensor) -> Tensor | None:
        """``[B, K]``: per candidate, how many stereocentres it makes wrongly handed, of the centres the step
        touches whose carbon is placed (before or by the step); None when no item touches one. A neighbour
        not placed yet (forward pass) stands at its home bead's CG position: on the reference frames of sPS
        that gives every centre's handedness right (docs/generator-diagnosis.md, section 6), and it lets the
        step that places the carbon choose its side before the later steps fix it."""
        assert self.stereo is not None and self.step_centres is not None
        rows = self.step_centres[items.step]  # [B, M]
        item, column = torch.nonzero(rows >= 0, as_tuple=True)
        if not len(item):
            return None
        b, k, length, _ = local.shape
        row = rows[item, column]  # [P]
        quad = self.stereo.centres[row, :4]  # [P, 4] centre, a, b, c
        match = items.atoms[item].unsqueeze(1) == quad.unsqueeze(2)  # [P, 4, L]
        in_step = match.any(2)
        slot = match.to(torch.uint8).argmax(2)  # [P, 4]
        frame = items.frame[item]
        placed = in_step | present[frame.unsqueeze(1), quad]  # [P, 4]
        known = placed[:, 0]
        candidates = env.frames.to_box(local.reshape(b, k * length, 3)).view(b, k, length, 3).transpose(1, 2)
        new = candidates[item.unsqueeze(1), slot]  # [P, 4, K, 3]
        proxy = beads[frame.unsqueeze(1), self.system.mapping.home_bead[quad].clamp(min=0)]  # [P, 4, 3]
        old = torch.where(placed.unsqueeze(2), atoms[frame.unsqueeze(1), quad], proxy).unsqueeze(2).expand_as(new)
        quads = torch.where(in_step.view(*in_step.shape, 1, 1), new, old).transpose(1, 2)  # [P, K, 4, 3]
        signs = candidate_handedness(quads.double(), boxes[frame].double())  # [P, K]
        wrong = (signs != self.stereo.signs[row].to(signs).unsqueeze(1)) & known.unsqueeze(1)
        return torch.zeros(b, k, dtype=torch.long).index_add_(0, item, wrong.long())

    # --- one group of items ---------------------------------------------------------------
    def _items(self, group: Tensor, n_frames: int) -> _Items:
        frame = torch.arange(n_frames).repeat_interleave(len(group))  # [B]
        step = group.repeat(n_frames)
        atoms, bead, hidden = self.steps.atoms[step], self.steps.bead[step], self.steps.hidden[step]
        own = self.system.mapping.home_bead[hidden.clamp(min=0)] == bead.unsqueeze(1)
        return _Items(frame, step, bead, atoms, torch.cat([atoms, hidden], 1),
                      torch.cat([atoms, torch.where((hidden >= 0) & own, hidden, -1)], 1))

    def _independent(self, items: _Items, beads: Tensor, boxes: Tensor) -> list[_Items]:
        """``items`` split into batches whose environments do not see each other's new atoms.

        Two items interact when they are in the same frame and their beads are closer than
        cutoff + reach: one's atoms could then enter the other's environment. Greedy colouring
        of that conflict graph; each colour is one batch (the same number of network evaluations,
        in a few batches rather than one).
        """
        centre = beads[items.frame, items.bead]  # [B, 3]
        first, second = [], []
        for f in torch.unique(items.frame).tolist():  # pairs of close items from a cell list, per frame
            mine = torch.nonzero(items.frame == f).squeeze(1)
            i, j, _ = pairs_within(centre[mine], centre[mine], boxes[f], self.environment.cutoff + self.config.reach)
            first.append(mine[i])
            second.append(mine[j])
        first, second = torch.cat(first), torch.cat(second)
        edge = first != second
        first, second = first[edge], second[edge]
        order = torch.argsort(first)
        neighbours = second[order]
        start = torch.cumsum(torch.bincount(first, minlength=len(centre)), 0).tolist()
        colour = torch.full((len(centre),), -1, dtype=torch.long)
        for k in range(len(centre)):  # greedy colouring; a few dozen neighbours per item
            taken = set(colour[neighbours[(start[k - 1] if k else 0):start[k]]].tolist())
            colour[k] = next(c for c in range(len(centre)) if c not in taken)
        return [items.take(colour == c) for c in range(int(colour.max()) + 1)]

    def _by_candidates(self, items: _Items, candidates: int) -> list[tuple[_Items, int]]:
        """``items`` with their candidate count: the hydrogen-only steps apart with ``hydrogen_candidates``."""
        wanted = self.config.hydrogen_candidates
        if wanted is None or wanted >= candidates:
            return [(items, candidates)]
        hydrogen = ~self.steps.heavy[items.step]  # [B] the plan's hydrogen pass
        parts = [(items.take(~hydrogen), candidates), (items.take(hydrogen), wanted)]
        return [(part, k) for part, k in parts if len(part.step)]

    def _proposals(self, env: Environment, items: _Items, rng: torch.Generator, atoms: Tensor, present: Tensor,
                   beads: Tensor, boxes: Tensor) -> Tensor:
        """The candidates to score: the network's ``[B, K, L, 3]``, for a pendant step with ``pendant_turns``
        turned copies of each (``[B, K * pendant_turns, L, 3]``) and with ``pendant_tilt`` four leaned and tilted
        copies of every one of those (``[B, K * pendant_turns * 5, L, 3]``); with ``held_candidates``, once every
        atom is placed, each moved onto its beads' CG centres."""
        local, _ = self._generate(env, items.atoms, rng)
        for copies in (self._turns, self._tilts):
            if copies is not None and copies.turnable(items.step):
                local = copies(local, items.step, env.atom, env.positions)
        if self._held is not None and bool(present[items.frame].all()):
            local = self._held(local, items.step, items.atoms, env.frames, items.frame, atoms, beads, boxes)
        return local

    def _generate(self, env: Environment, atoms: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """``candidates`` sequences per item: local positions ``[B, K, L, 3]`` in the item's frame."""
        b, k = len(atoms), self._candidates
        turn = (random_z_rotations(b * k, rng, env.positions.dtype) if self.turn
                else torch.eye(3, dtype=env.positions.dtype).expand(b * k, 3, 3))  # [B K, 3, 3]
        positions = env.positions.repeat_interleave(k, 0) @ turn.transpose(1, 2)  # [B K, P, 3]
        atom_ids = env.atom.repeat_interleave(k, 0)
        bead_ids = env.bead.repeat_interleave(k, 0)
        mask = env.mask.repeat_interleave(k, 0)
        seq = atoms.repeat_interleave(k, 0)  # [B K, L]
        placed: list[Tensor] = []
        for j in range(seq.shape[1]):
            target = seq[:, j]
            grown = Environment(env.frames, torch.cat([positions, *[p.unsqueeze(1) for p in placed]], 1),
                                torch.cat([atom_ids, seq[:, :j]], 1),
                                torch.cat([bead_ids, torch.full_like(seq[:, :j], -1)], 1),
                                torch.cat([mask, seq[:, :j] >= 0], 1))
            particles = self.features.particles(grown, target.clamp(min=0)).to(self.device)
            types = self.spec.target_types(self.features.atom_type[target.clamp(min=0)]).to(self.device)
            noise = self.config.noise_scale * torch.randn(len(target), self.generator.noise_dim, generator=rng)
            noise = noise.to(self.device)
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bfloat16"):
                placed.append(self.generator(particles, types, noise).to(positions.dtype).cpu())
        local = (torch.stack(placed, 1) @ turn).view(b, k, -1, 3)  # [B, K, L, 3] back to the item's unturned frame
        if self._bond_fit is not None:
            local = self._bond_fit(local, atoms, env.atom, env.positions)
        return local, turn

    def _energies(self, items: _Items, env: Environment, local: Tensor) -> tuple[Tensor, Tensor]:
        """Score ``[B, K]`` of each candidate: the energy of its atoms with its environment (the prior's terms,
        each category times its ``selection_weights`` entry), and its
        largest Lennard-Jones pair energy ``[B, K]`` (a clash when above ``clash_energy``)."""
        b, k, length, _ = local.shape
        p = env.positions.shape[1]
        slots = p + length
        positions = torch.cat([env.positions.unsqueeze(1).expand(b, k, p, 3), local], 2).reshape(-1, 3)
        total = torch.zeros(b * k, dtype=torch.float64)
        weights = self.config.selection_weights
        worst_pair = torch.full((b * k,), -torch.inf, dtype=torch.float64)
        for item in range(b):  # a few dozen items per group; the terms differ per item
            atoms = env.atom[item]
            context = torch.where(env.mask[item], atoms, -1)
            seq = items.atoms[item]
            terms = self.prior.terms_for(int(items.step[item]), context, seq[seq >= 0])
            base = (item * k + torch.arange(k)) * slots  # [K]
            for term in terms:
                if len(term) == 0:
                    continue
                index = (term.index.unsqueeze(0) + base.view(k, 1, 1)).flatten(0, 1)  # [K m, arity]
                params = {n: v.repeat(k) for n, v in term.params.items()}
                owner = torch.arange(k).repeat_interleave(len(term)) + item * k  # [K m]
                for category, e in term_energies(Term(term.kind, index, params), positions, coulomb=False).items():
                    total.index_add_(0, owner, e.to(torch.float64) * weights.get(category, 1.0))
                    if category == "lj":
                        worst_pair.scatter_reduce_(0, owner, e.to(torch.float64), "amax")
            if self.step_sites is not None:
                x = positions.view(b, k, slots, 3)[item]  # [K, P + L, 3]
                total[item * k:(item + 1) * k] += (weights.get("lookahead", 1.0) *
                                                   self._lookahead(int(items.step[item]), context, seq[seq >= 0], x))
        return total.view(b, k), worst_pair.view(b, k)

    def _place(self, items: _Items, atoms: Tensor, present: Tensor, beads: Tensor, boxes: Tensor,
               rng: torch.Generator) -> None:
        """Generate, select and write the atoms of independent ``items``, ``max_batch`` environments at a time."""
        env = local_environments(atoms, beads, boxes, items.frame, items.bead, self.fixpoint,
                                 self.environment.cutoff, atom_present=present, absent=items.absent,
                                 azimuth=self.azimuth)
        scored = env
        if self.config.score_hidden and bool((items.absent >= 0).sum() > (items.unscored >= 0).sum()):
            # the same frames (same item, bead and fixpoint), more atoms: the adjacent beads' hydrogens
            scored = local_environments(atoms, beads, boxes, items.frame, items.bead, self.fixpoint,
                                        self.environment.cutoff, atom_present=present, absent=items.unscored,
                                        azimuth=self.azimuth)
        per_call = max(1, self.config.max_batch // self._candidates)
        for start in range(0, len(items.frame), per_call):
            part, part_env = items.take(slice(start, start + per_call)), env.take(slice(start, start + per_call))
            part_scored = scored.take(slice(start, start + per_call))
            local = self._proposals(part_env, part, rng, atoms, present, beads, boxes)  # [b, K, L, 3]
            energy, worst_pair = self._energies(part, part_scored, local)  # [b, K]
            wrong = (self._wrongly_handed(part, part_env, local, atoms, present, beads, boxes)
                     if self.step_centres is not None else None)
            best = select_candidates(energy, wrong, self.config.stereo_penalty, self.config.selection_kt, rng)  # [b]
            rows = torch.arange(len(best))
            chosen = local[rows, best]  # [b, L, 3]
            if wrong is not None:
                self.selection["contested"] += int((wrong.max(1).values > 0).sum())
                self.selection["changed"] += int((best != energy.argmin(1)).sum())
                self.selection["all_wrong"] += int((wrong.min(1).values > 0).sum())
            kept_worst = worst_pair[rows, best]  # [b]
            self.selection["clashing"] += int((kept_worst > self.config.clash_energy).sum())
            if wrong is not None or self.config.clash_retries:
                chosen, kept_worst = self._retry(part, part_env, part_scored, chosen, None if wrong is None else wrong[rows, best],
                                                 energy[rows, best], kept_worst, atoms, present, beads, boxes, rng)
            self.selection["clashing_after_retries"] += int((kept_worst > self.config.clash_energy).sum())
            box_positions = part_env.frames.to_box(chosen)  # [b, L, 3]
            valid = part.atoms >= 0
            frame = part.frame.unsqueeze(1).expand_as(part.atoms)
            atoms[frame[valid], part.atoms[valid]] = box_positions[valid].to(atoms.dtype)
            present[frame[valid], part.atoms[valid]] = True

    def _retry(self, part: _Items, env: Environment, scored: Environment, chosen: Tensor, wrong: Tensor | None,
               energy: Tensor, worst_pair: Tensor, atoms: Tensor, present: Tensor, beads: Tensor, boxes: Tensor,
               rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """``chosen [b, L, 3]`` and its ``worst_pair [b]`` after more rounds of candidates for the items whose
        kept one is wrongly handed (``wrong [b]`` centres; up to ``stereo_retries`` rounds) or clashes
        (``worst_pair [b]`` above ``clash_energy``; up to ``clash_retries`` rounds), at ``energy [b]``; a new
        one replaces it when it scores lower (energy + stereo_penalty per wrong centre). ``scored``: the
        environments the energies see (``env``, or with ``score_hidden`` the same plus hydrogens)."""
        c = self.config
        penalty = c.stereo_penalty
        chosen, energy, worst_pair = chosen.clone(), energy.clone(), worst_pair.clone()
        wrong = torch.zeros(len(chosen), dtype=torch.long) if wrong is None else wrong.clone()
        stereo_rounds = c.stereo_retries if self.step_centres is not None else 0
        for round in range(max(stereo_rounds, c.clash_retries)):
            need = torch.zeros(len(chosen), dtype=torch.bool)
            if round < stereo_rounds:
                need |= wrong > 0
            if round < c.clash_retries:
                need |= worst_pair > c.clash_energy
            stuck = torch.nonzero(need).squeeze(1)
            if not len(stuck):
                break
            sub, sub_env = part.take(stuck), env.take(stuck)
            local = self._proposals(sub_env, sub, rng, atoms, present, beads, boxes)
            more_energy, more_worst = self._energies(sub, scored.take(stuck), local)
            more_wrong = (self._wrongly_handed(sub, sub_env, local, atoms, present, beads, boxes)
                          if self.step_centres is not None else None)
            if more_wrong is None:
                more_wrong = torch.zeros_like(more_energy, dtype=torch.long)
            pick = select_candidates(more_energy, more_wrong, penalty, c.selection_kt, rng)
            rows = torch.arange(len(stuck))
            new_wrong, new_energy = more_wrong[rows, pick], more_energy[rows, pick]
            if penalty == float("inf"):
                better = (new_wrong < wrong[stuck]) | ((new_wrong == wrong[stuck]) & (new_energy < energy[stuck]))
            else:
                better = new_energy + penalty * new_wrong < energy[stuck] + penalty * wrong[stuck]
            take = stuck[better]
            chosen[take], wrong[take], energy[take] = local[rows, pick][better], new_wrong[better], new_energy[better]
            worst_pair[take] = more_worst[rows, pick][better]
        if self.step_centres is not None:
            self.selection["wrong_after_retries"] += int((wrong > 0).sum())
        return chosen, worst_pair

    def _run_groups(self, groups: list[Tensor], pass_candidates: int, atoms: Tensor, present: Tensor, beads: Tensor,
                    boxes: Tensor, rng: torch.Generator, bar) -> None:
        """Place the plan-step ``groups`` in order, each in batches of independent items, with
        ``pass_candidates`` per item (the hydrogen steps' own count where set), for every frame of the chunk."""
        for group in groups:
            for batch in self._independent(self._items(group, len(atoms)), beads, boxes):
                for part, candidates in self._by_candidates(batch, pass_candidates):
                    self._candidates = candidates
                    self._place(part, atoms, present, beads, boxes, rng)
            bar.update(len(atoms))

    # --- whole frames -----------------------------------------------------------------------
    @torch.no_grad()
    def backmap(self, cg: Frames, samples: int = 1, init: Frames | None = None, progress: bool = True,
                first_frame: int = 0) -> Frames:
        """AA frames for every CG frame (``samples`` per frame, frame by frame: ``g // samples`` is the CG frame).

        ``init``: AA frames to start the Gibbs sweeps from instead of a forward pass (morphing,
        thesis Ch. 7, scheme B); one per CG frame. ``first_frame``: the index of ``cg``'s first
        frame in a longer trajectory; the random stream of each chunk depends only on the
        config's seed and its frames' indices, so a trajectory backmapped in pieces (or by
        several processes) equals the trajectory backmapped at once.
        """
        parts = list(self.iter_backmap(cg, samples, init, progress, first_frame))
        aa = self.system.aa
        return Frames(torch.cat(parts) if parts else torch.empty(0, aa.n_atoms, 3),
                      cg.boxes.repeat_interleave(samples, 0).float(),
                      [label for label in cg.labels for _ in range(samples)], list(aa.names), list(aa.resnames),
                      aa.resids.tolist())

    @torch.no_grad()
    def iter_backmap(self, cg: Frames, samples: int = 1, init: Frames | None = None, progress: bool = True,
                     first_frame: int = 0) -> Iterator[Tensor]:
        """:meth:`backmap` one chunk at a time: yields the AA positions ``[c, n, 3]`` of each chunk of
        ``frames_per_chunk`` output frames, so memory does not grow with the trajectory."""
        aa, mapping = self.system.aa, self.system.mapping
        if cg.n_particles != mapping.n_beads:
            raise ValueError(f"the CG frames hold {cg.n_particles} beads, the mapping {mapping.n_beads}")
        order = torch.arange(len(cg)).repeat_interleave(samples)  # [F samples]
        chunk = self.config.frames_per_chunk
        passes = ([] if init is not None else ["forward"]) + ["gibbs"] * self.config.n_gibbs
        relax_steps = self.config.relax_steps
        energy = EnergyModel(aa) if relax_steps else None
        swept = self.hydrogen_groups if self.config.hydrogen_sweep and passes else []
        bar = tqdm(total=len(order) * (len(passes) * len(self.groups) + len(swept) + relax_steps), desc="backmap",
                   unit="step", disable=not progress)
        for start in range(0, len(order), chunk):
            rng = torch.Generator().manual_seed(self.config.seed * 1_000_003 + first_frame * samples + start)
            idx = order[start:start + chunk]
            beads, boxes = cg.positions[idx].float(), cg.boxes[idx].float()
            if init is not None:
                atoms, present = init.positions[idx].float().clone(), torch.ones(len(idx), aa.n_atoms, dtype=torch.bool)
            else:
                atoms, present = torch.zeros(len(idx), aa.n_atoms, 3), torch.zeros(len(idx), aa.n_atoms, dtype=torch.bool)
            self.inverted = []
            for index, name in enumerate(passes):
                pass_candidates = self.config.candidates_in(index, last=index == len(passes) - 1)
                self._run_groups(self.groups, pass_candidates, atoms, present, beads, boxes, rng, bar)
                if self.stereo is not None:
                    atoms, wrong = self.stereo(atoms, boxes)
                    self.inverted.append(wrong)
                    log.info("frames %s, %s pass: the stereocentre rule inverted %s of %d centres; candidate "
                             "selection: %s", (first_frame * samples + start) // samples, name, wrong.tolist(),
                             len(self.stereo), self.selection)
                self.selection = dict.fromkeys(self.selection, 0)
                if self.config.hold_centres != "off":
                    self._report_centre_offset(atoms, beads, boxes, name)
                if self.config.constrain_bonds or self.config.hold_centres != "off":
                    atoms = project_constraints(atoms, boxes, aa, bonds=self.config.constrain_bonds,
                                                centres=self._held_centres(beads))
            self._run_groups(swept, self.config.candidates_in(len(passes), True), atoms, present, beads, boxes, rng,
                             bar)  # hydrogen_sweep
            if passes:  # the init frames, untouched, when no pass ran
                atoms = self.finish(atoms, beads, boxes, first_frame * samples + start)
            if energy is not None:
                held = CentreConstraint(self.hold, beads.double(), aa.masses)
                atoms = relax(atoms, boxes, energy, relax_steps, centres=held, bonds=self.config.constrain_bonds,
                              on_step=lambda: bar.update(len(idx))).positions
            yield atoms
        bar.close()
