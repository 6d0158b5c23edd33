"""Fine-tuning: a training run that starts from another model's weights (``training.init_from``,
``gdbm fit --init-from``).

The new run keeps what gives the weights their meaning. Its network (the ``model`` and
``environment`` sections) and its feature vocabulary are the model's: a config may leave those
sections out (they are taken from the model) or repeat them, but a value that differs from the
model's is refused, naming the fields. Every atom and bead type of the training systems must be
in the model's vocabulary (types it knows that the systems lack are fine). The run starts at
step 0 with the model's generator weights, and its critic's when the checkpoint has one (a
shipped model has none: a fresh critic); optimisers, schedules (warm-up, prior ramp) and random
streams are the new config's, as for any run.

A resumed run continues from its own checkpoint and never reads the model it started from again:
its checkpoint records ``training.init_from``, the network and the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from gdbm.data.features import FeatureSpec
from gdbm.training.checkpoint import GENERATOR_KEYS, load_checkpoint
from gdbm.training.config import DataConfig, ExperimentConfig, config_changes
from gdbm.training.pretrained import resolve_checkpoint
from gdbm.training.trained_model import load_weights, recorded_model
from gdbm.utils.config_files import merge_sections, validate
from gdbm.utils.errors import InputError

#: The config sections that shape the network and its input: a fine-tuned run keeps the model's.
NETWORK_SECTIONS = ("model", "environment")


@dataclass(frozen=True)
class Start:
    """What a run is built from: its config, the feature layout it keeps (None: the systems' own) and
    the weights it starts with (None: fresh networks, or, resuming, those of the run's checkpoint)."""

    config: ExperimentConfig
    spec: FeatureSpec | None = None
    generator: dict | None = None
    critic: dict | None = None
    source: Path | None = None

    def load_into(self, generator: nn.Module, critic: nn.Module) -> None:
        """The starting weights into freshly built networks (a checkpoint without a critic leaves ``critic`` fresh)."""
        if self.generator is not None:
            load_weights(generator, self.generator, self.source)
        if self.critic is not None:
            load_weights(critic, self.critic, self.source, "critic")


def plan_start(config: ExperimentConfig, checkpoint: Path, resuming: bool,
               config_file: Path | None = None) -> Start:
    """How a run of ``config`` starts: resuming its own ``checkpoint``, from ``training.init_from``, or fresh.

    ``config_file`` is named by a refusal (else the model is).
    """
    if resuming:
        return _resumed(config, checkpoint, config_file)
    name = config.training.init_from
    if name is None:
        return Start(config)
    path = resolve_checkpoint(name)
    ck = load_checkpoint(path, required=GENERATOR_KEYS)
    recorded, spec = recorded_model(ck, path)
    return Start(adopt_network(config, recorded, name, config_file or path), spec, ck["generator"],
                 ck.get("critic"), path)


def _resumed(config: ExperimentConfig, checkpoint: Path, config_file: Path | None) -> Start:
    """A resumed run: one started from a model keeps the network, vocabulary and ``init_from`` its
    checkpoint recorded."""
    if not checkpoint.is_file():
        return Start(config)
    recorded, spec = recorded_model(load_checkpoint(checkpoint, required=GENERATOR_KEYS), checkpoint)
    name = recorded.training.init_from
    if name is None:
        return Start(config)
    if config.training.init_from is None:  # resumed without naming the model again: the run's record holds it
        config = config.model_copy(update={"training": config.training.model_copy(update={"init_from": name})})
    model = f"{checkpoint} (fine-tuned from {name})"
    return Start(adopt_network(config, recorded, model, config_file or checkpoint), spec)


def adopt_network(config: ExperimentConfig, recorded: ExperimentConfig, model: str, where: Path) -> ExperimentConfig:
    """``config`` with the ``model`` and ``environment`` sections of ``recorded`` (a checkpoint's config).

    Only what ``config`` sets itself is compared (differences found by :func:`config_changes`, as a
    resume finds them); a difference is an :class:`InputError` naming ``where``, the fields, both
    values and ``model``.
    """
    raw, saved = config.model_dump(mode="json"), recorded.model_dump(mode="json")
    for section in NETWORK_SECTIONS:
        given = getattr(config, section).model_dump(mode="json", exclude_unset=True)
        raw[section] = merge_sections(saved[section], given)
    adopted = validate(ExperimentConfig, raw, where)
    changed = [k for k in config_changes(saved, adopted) if k.split(".")[0] in NETWORK_SECTIONS]
    if changed:
        values = ", ".join(f"{k} {_at(raw, k)!r} (the model's: {_at(saved, k)!r})" for k in changed)
        raise InputError(f"sets the network differently from {model}, the model training.init_from starts from: "
                         f"{values}; a fine-tuned run keeps the model's network: leave out "
                         f"{' and '.join(NETWORK_SECTIONS)} (they are taken from the model) or give the model's values",
                         where)
    return adopted


def _at(data: dict, key: str) -> object:
    """The value at a dotted key (:func:`config_changes`' spelling) of a config dump."""
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data.get(part)
    return data


def check_vocabulary(model_spec: FeatureSpec, own: FeatureSpec, source: DataConfig, model: str) -> None:
    """Refuse a training system (``source``, whose types are ``own``) with atom or bead types that the
    vocabulary of the model it is fine-tuned from (``model_spec``) lacks."""
    atoms = sorted(set(own.atom_types) - set(model_spec.atom_types))
    beads = sorted(set(own.bead_types) - set(model_spec.bead_types))
    if not atoms and not beads:
        return
    what = "; ".join(f"{kind} types {missing}" for kind, missing in (("atom", atoms), ("bead", beads)) if missing)
    files = source.mapping if beads and not atoms else source.topology
    where = ", ".join(map(str, files)) if isinstance(files, list) else files
    raise InputError(f"{what} are not in the vocabulary of {model}, the model training.init_from starts from "
                     f"(atom types {list(model_spec.atom_types)}; bead types {list(model_spec.bead_types)}): a "
                     "fine-tuned model keeps its types; train a new model for these (no init_from)", where)
