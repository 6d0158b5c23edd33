"""The experiment config of ``gdbm fit``: data, ordering, environment, model, training, prior.

One YAML file, validated by pydantic (unknown keys are errors, with the file named). Paths
in the file are relative to the file's own folder, so a config works from any directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from gdbm.utils.config_files import read_sections, validate
from gdbm.data.environment import EnvironmentConfig
from gdbm.conditioners.registry import CONDITIONERS, ConditionerEntry, conditioner
from gdbm.utils.errors import InputError
from gdbm.utils.precision import Precision
from gdbm.ordering import OrderingConfig

PRIOR_TERMS = ("bond", "angle", "proper", "improper", "lj", "lookahead")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Training frames and the system they belong to."""

    topology: Path = Field(description="AA topology with parameters (.top)")
    parameters: Path | None = Field(None, description="supplementary GROMACS parameter file")
    mapping: Path | list[Path] = Field(description="reconstruction mapping: home beads, [align], [mult] (e.g. DBM's "
                                       ".map); a list, one per molecule type, for a mixture")
    cg_itp: Path | list[Path] | None = Field(None, description="CG topology: a .top, or .itp files (default: found "
                                             "beside the mapping)")
    aa: Path = Field(description="AA training frames (trajectory or folder of .gro)")
    aa_structure: Path | None = None
    cg: Path | None = Field(None, description="CG frames paired with the AA frames (default: AA frames mapped)")
    cg_map: Path | list[Path] | None = Field(None, description="the mapping (may be partial) that made the CG "
                                             "frames: fit checks it against them and the checkpoint records it "
                                             "(default: the reconstruction mapping)")
    cg_structure: Path | None = None
    frames: str | None = Field(None, description="START:STOP of the frames to train on (default: all, less "
                               "validation_frames)")
    validation_frames: str | None = Field(None, description="START:STOP of frames held out of training and scored "
                                          "every training.validate_every updates (must not overlap frames)")
    weight: float | None = Field(None, gt=0, description="share of every batch drawn from this system, relative "
                                 "to the other systems' (default: in proportion to its number of samples)")
    context: Path | None = Field(None, description="AA frames a sampler made from this source's training CG frames, "
                                 "one per training frame in order (e.g. `gdbm backmap` of them): every sample's "
                                 "context is taken from them, its targets stay the reference's (scheduled "
                                 "sampling); needs no validation_frames")
    context_structure: Path | None = None

    @model_validator(mode="after")
    def _context_alone(self) -> "DataConfig":
        if self.context is not None and self.validation_frames is not None:
            raise ValueError("data.context trains on a sampler's contexts; hold frames out in another source "
                             "(drop validation_frames here)")
        return self


class _ModelBase(_Strict):
    """Which conditioner, and one settings section per registered conditioner (:mod:`gdbm.conditioners.registry`)."""

    @model_validator(mode="before")
    @classmethod
    def _old_key(cls, data: Any) -> Any:
        # configs and checkpoints before the conditioners registry called the key "encoder"
        if isinstance(data, dict) and "encoder" in data and "conditioner" not in data:
            data = {("conditioner" if k == "encoder" else k): v for k, v in data.items()}
        return data

    @property
    def entry(self) -> ConditionerEntry:
        """The registry entry of the chosen conditioner."""
        return conditioner(self.conditioner)

    @property
    def options(self) -> BaseModel:
        """The chosen conditioner's settings section."""
        return getattr(self, self.conditioner)


ModelConfig = create_model(
    "ModelConfig", __base__=_ModelBase, __module__=__name__,
    conditioner=(Literal[tuple(CONDITIONERS)], Field("voxel", description="conditioner, by registry name")),
    **{name: (entry.config, entry.config()) for name, entry in CONDITIONERS.items()},
)


class TrainingConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    steps: int = Field(2000, ge=1, description="generator updates")
    init_from: str | None = Field(None, description="fine-tune: start from this model's weights, a shipped "
                                  "model's name (gdbm models) or a checkpoint file; the network (model and "
                                  "environment sections) and type vocabulary stay the model's "
                                  "(gdbm.training.init_from)")
    n_critic: int = Field(5, ge=1, description="critic updates per generator update")
    precision: Precision = Field("float32", description="the networks' arithmetic in the updates: bfloat16 = "
                                 "autocast with channels-last convolutions (2.5x per update for DBM's fine-grid "
                                 "layout on a Xeon with AMX); auto = bfloat16 where native (gdbm.utils.precision); "
                                 "positions, losses and energies stay float32 / float64")
    lr_generator: float = Field(1e-4, gt=0)
    lr_critic: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.0, 0.9)
    gp_weight: float = Field(10.0, ge=0, description="gradient-penalty weight lambda_gp")
    pretrain_steps: int = Field(0, ge=0, description="first generator updates trained supervised (squared "
                                "distance to the reference + prior), without critic; they count in steps")
    pretrain_lr: float = Field(1e-3, gt=0, description="generator learning rate of the supervised updates")
    pretrain_lr_final: float | None = Field(None, gt=0, description="if set, the supervised learning rate falls "
                                            "from pretrain_lr to this on a cosine over the pretrain_steps "
                                            "(None: constant)")
    lr_decay_to: float | None = Field(None, gt=0, le=1, description="adversarial phase: if set, both learning "
                                      "rates fall on a cosine from lr_decay_start to the last update (steps), "
                                      "to this fraction of lr_generator and lr_critic (None: constant)")
    lr_decay_start: int | None = Field(None, ge=0, description="generator update where the adversarial decay "
                                       "begins (default: pretrain_steps, the first adversarial update)")
    supervised_weight: float = Field(0.0, ge=0, description="adversarial phase: this weight times the generated "
                                     "atoms' mean squared distance (nm^2) to the reference is added to the "
                                     "generator's loss (0: the critic and the prior alone)")
    centre_weight: float = Field(0.0, ge=0, description="both phases: this weight times the mean squared distance "
                                 "(nm^2) between the centre of each generated sequence and the reference's is "
                                 "added to the generator's loss: the sequence's share of its bead's CG position, "
                                 "so CG consistency (0: off)")
    shape_weight: float = Field(0.0, ge=0, description="supervised phase: this weight times the squared "
                                "differences (nm^2 per atom) between the generated and the reference's "
                                "distances among each sequence's atoms is added to the loss: it holds bond "
                                "lengths and a ring's size without fixing where the sequence points, which "
                                "the squared distance alone shrinks and the bonded prior terms bias (0: off)")
    geometry_weight: float = Field(0.0, ge=0, description="supervised phase: this weight times the squared "
                                   "differences (nm^2 per atom) between the generated and the reference's distances "
                                   "across every bond, angle (1-3) and proper dihedral (1-4) term that places a "
                                   "sequence atom, context atoms included, is added to the loss: each atom's "
                                   "geometry against its bonded neighbours, across beads too (0: off)")
    angle_distribution_weight: float = Field(0.0, ge=0, description="supervised phase: this weight times the squared "
                                             "1-D Wasserstein distance (rad^2 per angle) between the batch's generated "
                                             "and reference angles, type triple by type triple, over every angle term "
                                             "that places a sequence atom, is added to the loss: the batch's spread of "
                                             "each angle type, not each atom's own angle (0: off)")
    dihedral_distribution_weight: float = Field(0.0, ge=0, description="supervised phase: the same as "
                                                "angle_distribution_weight for the proper dihedrals (type quadruple "
                                                "by type quadruple; 0: off)")
    context_noise: float = Field(0.0, ge=0, description="supervised phase: every context atom (not the beads) is "
                                 "displaced by this Gaussian width (nm, per coordinate) in each training batch, so the "
                                 "network learns to place atoms among neighbours that are not exactly the "
                                 "reference's, as the sampler's are; the targets stay the reference's (0: off)")
    sampled_context_fit: float = Field(1.0, ge=0, description="supervised phase: the weight of the squared distance "
                                       "(or energy score) to the reference's atoms on the samples whose context "
                                       "came from a sampler's frames (data.context): 0 leaves them to the shape, "
                                       "geometry and centre terms, which do not hold an atom to where the reference's "
                                       "was among other neighbours")
    symmetric_atoms: bool = Field(False, description="the squared distances to the reference (supervised phase, "
                                  "tether, held-out numbers) and the critic's real atoms take each sequence's "
                                  "nearest equivalent labelling: a phenyl ring turned by 180 degrees, a CH2's "
                                  "hydrogens swapped (gdbm.topology.symmetry). Off by default: on sPS it "
                                  "changed neither the ring's turn nor any other column measurably "
                                  "(docs/generator-diagnosis.md section 12)")
    supervised_samples: int = Field(1, ge=1, description="supervised phase: samples per sequence, each with its "
                                    "own noise; only the one nearest the reference counts in the squared "
                                    "distance (best of K), the prior and the centre term hold every one. With 1 "
                                    "the generator learns the conditional mean and ignores its noise; more is "
                                    "meant to make the noise choose among the places an atom can take. On sPS "
                                    "(K = 4, up to 600 updates) the samples stayed 0.002-0.005 nm apart "
                                    "(docs/generator-diagnosis.md section 13)")
    supervised_objective: Literal["best_of_k", "energy_score", "energy_score_groups"] = Field(
        "best_of_k", description="supervised phase with supervised_samples > 1: 'best_of_k' counts each sequence's "
        "sample nearest the reference; 'energy_score' scores the K samples together by the energy score "
        "(mean distance to the reference minus half the mean distance between samples, each sequence one "
        "vector), a proper scoring rule: lowest when the samples scatter as the reference does given the "
        "same input, so the noise learns the spread that the squared distance averages away; "
        "'energy_score_groups' does so only for the heavy-atom sequences of three or more atoms (sPS: the "
        "phenyl rings, whose orientation the squared distance averages into a small ring), times "
        "energy_score_weight, and keeps the first sample's squared distance for the rest")
    energy_score_weight: float = Field(1.0, gt=0, description="with supervised_objective energy_score_groups: the "
                                       "weight of the groups' energy score (nm, mean over the batch's sequences) "
                                       "beside the others' squared distance (nm^2, mean over the batch's steps)")
    gp_fraction: float = Field(1.0, gt=0, le=1, description="fraction of each critic batch whose interpolates "
                               "are penalised (the penalty's double backward dominates CPU time)")
    checkpoint_every: int = Field(100, ge=1)
    keep_every: int | None = Field(None, ge=1, description="also keep a copy checkpoint_<step>.pt every this many "
                                   "steps (for choosing the best checkpoint afterwards)")
    log_every: int = Field(10, ge=1)
    validate_every: int | None = Field(None, ge=1, description="score the generator on a fixed batch of the held-out "
                                       "data.validation_frames every this many updates (default: checkpoint_every)")
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")
    device: str = "cpu"


class PriorConfig(_Strict):
    """Energy prior of the generator (thesis Sec. 4.5): C1 = ``min``, C2 = ``match``."""

    mode: Literal["none", "min", "match"] = "match"
    weight: float = Field(0.01, ge=0, description="final lambda_pot")
    ramp_start: int = Field(0, ge=0, description="generator step where lambda_pot starts rising from 0")
    ramp_end: int = Field(500, ge=0, description="generator step where lambda_pot reaches its final value")
    terms: dict[str, float] = Field(default_factory=lambda: {t: 1.0 for t in PRIOR_TERMS})
    lj_core: float | None = Field(0.8, gt=0, description="LJ continues linearly below lj_core * sigma "
                                  "(finite cost for overlapping atoms); null = bare LJ")
    hydrogen_lookahead: tuple[Literal["planar_ch", "ch", "ch2"], ...] = Field(
        (), description="heavy steps also score the LJ of ideal sites of their hydrogens of these shapes "
        "(gdbm.topology.hydrogens), the prior's 'lookahead' term; () = none")

    def model_post_init(self, _context) -> None:
        unknown = set(self.terms) - set(PRIOR_TERMS)
        if unknown:
            raise ValueError(f"unknown prior terms {sorted(unknown)}; expected some of {PRIOR_TERMS}")
        if self.ramp_end < self.ramp_start:
            raise ValueError("ramp_end must not be before ramp_start")


class RefineConfig(_Strict):
    """How ``gdbm backmap --refine`` relaxes this model's output, every CG bead centre held: the
    training system's temperature and electrostatics, recorded in the checkpoint (flags override)."""

    steps: int = Field(20, ge=0, description="steepest-descent steps, bead centres held exactly")
    constrain_bonds: bool = Field(True, description="every bond kept at b0 (descent and thermal run)")
    temperature: float | None = Field(None, gt=0, description="K, the training system's (a thermal run needs it)")
    stages: list[str] = Field(["500", "500,,2e6,0.001"], min_length=1,
                              description="thermal stages STEPS[,T[,RESTRAINT[,DT]]]; empty fields take the "
                                          "defaults (temperature, restraint, timestep)")
    restraint: float = Field(5.0e4, gt=0, description="kJ/mol/nm^2 on each bead centre")
    timestep: float = Field(0.002, gt=0, description="ps")
    friction: float = Field(10.0, gt=0, description="1/ps")
    minimize: int = Field(50, ge=0, description="L-BFGS iterations in OpenMM before the thermal run")
    cutoff: float = Field(1.0, gt=0, description="nm, non-bonded cutoff of the thermal run")
    coulomb: Literal["reaction-field", "none"] = "reaction-field"
    epsilon_rf: float = Field(2.5, ge=1, description="reaction-field dielectric beyond the cutoff")


class ExperimentConfig(_Strict):
    data: DataConfig | list[DataConfig] = Field(description="one system's training frames, or a list of "
                                                             "systems trained on together")
    ordering: OrderingConfig = OrderingConfig()
    environment: EnvironmentConfig = EnvironmentConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    prior: PriorConfig = PriorConfig()
    refine: RefineConfig = RefineConfig()

    def model_post_init(self, _context) -> None:
        weights = [d.weight is not None for d in self.sources]
        if any(weights) and not all(weights):
            raise ValueError("give every data source a weight, or none")

    @property
    def sources(self) -> list[DataConfig]:
        """The training systems, one or several."""
        return self.data if isinstance(self.data, list) else [self.data]


def _is_path(annotation: Any) -> bool:
    """Whether a field's annotation is ``Path`` or ``Path | None``."""
    return annotation is Path or Path in get_args(annotation)


PATH_FIELDS = frozenset(k for k, f in DataConfig.model_fields.items() if _is_path(f.annotation))
#: Path fields that may hold several files (a mixture: one mapping per molecule type).
LIST_FIELDS = frozenset(k for k, f in DataConfig.model_fields.items() if list[Path] in get_args(f.annotation))


def _resolve(data: dict, config: Path) -> dict:
    """Data paths (only the path fields; not ``frames`` or ``weight``) relative to the config file's folder."""
    if not isinstance(data, dict):
        raise InputError(f"each data source must be a mapping of paths, got {type(data).__name__}", config)
    base, out = config.parent, dict(data)

    def resolved(value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base / path))

    for key, value in data.items():
        if key in LIST_FIELDS and isinstance(value, str) and "," in value and not (base / value).exists():
            value = [v.strip() for v in value.split(",") if v.strip()]  # "A.yaml, B.map": one file per molecule type
        if isinstance(value, str) and key in PATH_FIELDS:
            out[key] = resolved(value)
        elif isinstance(value, list) and key in LIST_FIELDS:
            out[key] = [resolved(v) if isinstance(v, str) else v for v in value]
            if len(value) == 1:
                out[key] = out[key][0]  # a list of one file is that file
    return out


def load_config(path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment config; ``overrides`` are merged section by section."""
    path = Path(path)
    raw = read_sections(path, overrides)
    data = raw["data"]
    raw["data"] = [_resolve(d, path) for d in data] if isinstance(data, list) else _resolve(data, path)
    training = raw.get("training")
    if isinstance(training, dict) and isinstance(training.get("init_from"), str):
        raw["training"] = {**training, "init_from": model_reference(training["init_from"], path.parent)}
    return validate(ExperimentConfig, raw, path)


def model_reference(value: str, base: Path) -> str:
    """``training.init_from`` as recorded: a shipped model's name as given; a checkpoint file (a path with a
    folder or a ``.pt`` ending, or an existing file) as an absolute path, a relative one taken from ``base``."""
    path = Path(value).expanduser()
    if not (path.is_absolute() or len(path.parts) > 1 or path.suffix == ".pt" or (base / path).is_file()):
        return value
    return str((path if path.is_absolute() else base / path).resolve())


RESUMABLE_CHANGES = {"training.steps", "training.checkpoint_every", "training.keep_every", "training.log_every",
                     "training.validate_every", "training.threads", "training.device"}


def config_changes(saved: dict, current: ExperimentConfig) -> list[str]:
    """Dotted keys where ``current`` differs from a checkpoint's ``saved`` config, beyond those a
    resumed run may change freely (its length, checkpoint, log and validation cadence, threads, device).
    Paths are compared as resolved files, so the same file named from another folder is no change;
    options the saved config does not know yet (added to gdbm after the run began) are no change;
    nor are held-out frames (``data.validation_frames``) of a source that names its training
    ``frames`` (without them, the held-out frames decide the training frames)."""
    def flat(value, prefix: str = "") -> dict[str, object]:
        if isinstance(value, dict):
            return {k: v for key, sub in value.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
        if isinstance(value, list):
            return {k: v for i, sub in enumerate(value) for k, v in flat(sub, f"{prefix}{i}.").items()}
        keys = [k for k in prefix[:-1].split(".") if not k.isdigit()]
        if isinstance(value, str) and prefix.startswith("data.") and value and keys and keys[-1] in PATH_FIELDS:
            value = str(Path(value).resolve())
        return {prefix[:-1]: value}

    data = current.model_dump(mode="json")
    if not isinstance(saved.get("data"), list):  # one source and a list of one are the same data
        saved = {**saved, "data": [saved.get("data")]}
    if not isinstance(data["data"], list):
        data["data"] = [data["data"]]
    old, new = flat(saved), flat(data)
    keys = old.keys() | {k for k in new if k in old or k.startswith("data.")}  # options newer than the run: no change

    def scored_only(key: str) -> bool:  # held-out frames beside named training frames
        source, _, name = key.rpartition(".")
        return name == "validation_frames" and new.get(f"{source}.frames") is not None

    return sorted(k for k in keys if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES and not scored_only(k))
