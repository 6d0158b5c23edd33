"""The config of ``gdbm study``: named systems, model arms (training mixes or shipped checkpoints), test sets.

A study varies what a model is trained on (the composition of its training mix, its prior,
...) and asks how each model does on each test set. One YAML file, validated by pydantic;
paths are relative to the file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gdbm.utils.config_files import validate
from gdbm.utils.errors import InputError

_PATH_KEYS = ("topology", "parameters", "mapping", "cg_itp", "aa", "aa_structure", "cg", "cg_structure", "eval_map")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemConfig(_Strict):
    """One molecular system: its topology, mappings and paired AA/CG frames."""

    topology: Path = Field(description="AA topology with parameters (.top)")
    parameters: Path | None = None
    mapping: Path = Field(description="reconstruction mapping (home beads, [align], [mult])")
    cg_itp: Path | None = None
    aa: Path = Field(description="AA frames (trajectory or folder of .gro)")
    aa_structure: Path | None = None
    cg: Path | None = Field(None, description="CG frames paired with the AA frames (default: AA frames mapped)")
    cg_structure: Path | None = None
    eval_map: Path | None = Field(None, description="the mapping that produced the CG frames, for CG "
                                  "consistency in the evaluation (default: mapping)")
    train_frames: str | None = Field(None, description="START:STOP of the frames a model may train on")
    datagen: str | None = Field(None, description="arguments of `gdbm datagen` that write this system's files "
                                "into the topology's folder when they are missing (e.g. 'liquid --smiles ...')")
    labels: dict[str, float | str] = Field(default_factory=dict, description="e.g. {temperature: 568}")


class ModelArm(_Strict):
    """One model of the study: trained on a weighted mix of systems, or a shipped/earlier checkpoint."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    train: dict[str, float] | None = Field(None, description="system name -> share of each training batch")
    checkpoint: str | None = Field(None, description="a trained model (path or shipped name, e.g. sps-voxel) "
                                   "instead of training one")
    backmapped: dict[str, Path] | None = Field(None, description="test set name -> frames another method "
                                               "already backmapped (all frames of the test's system), e.g. "
                                               "the published DBM's: compared, not trained")
    fit: dict[str, Any] = Field(default_factory=dict, description="overrides of the study's base fit config, "
                                "merged key by key (e.g. {prior: {mode: min}})")
    type_alias: Path | None = Field(None, description="type aliases for test systems the model was not trained "
                                    "on (gdbm backmap --type-alias)")

    @model_validator(mode="after")
    def _one_source(self) -> ModelArm:
        if sum(x is not None for x in (self.train, self.checkpoint, self.backmapped)) != 1:
            raise ValueError(f"model {self.name!r}: give one of 'train' (a mix of systems), 'checkpoint' "
                             f"or 'backmapped'")
        if self.train is not None and (not self.train or min(self.train.values()) <= 0):
            raise ValueError(f"model {self.name!r}: 'train' needs positive shares of at least one system")
        return self


class TestSet(_Strict):
    """CG frames of one system to backmap, with their AA frames as the reference."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.+-]+$")
    system: str
    frames: str | None = Field(None, description="START:STOP of the system's frames (default all)")


class BackmapSettings(_Strict):
    candidates: int = Field(16, ge=1)
    gibbs: int = Field(2, ge=0)
    precision: str = "float32"
    seed: int = 0
    max_batch: int = Field(4096, ge=1)


class EvalSettings(_Strict):
    cutoff: float = Field(1.0, gt=0, description="LJ cutoff of the evaluation (nm)")
    per_type_rdf: bool = True


class StudyConfig(_Strict):
    name: str
    description: str = ""
    fit: Path | None = Field(None, description="base experiment config (gdbm fit YAML) of the trained arms; "
                             "its data section is replaced by each arm's mix")
    systems: dict[str, SystemConfig]
    models: list[ModelArm]
    tests: list[TestSet]
    backmap: BackmapSettings = BackmapSettings()
    eval: EvalSettings = EvalSettings()
    threads: int | None = Field(None, ge=1, description="torch CPU threads of every stage")
    summary_columns: list[str] = Field(default_factory=list, description="per-type metrics of `gdbm eval` "
                                       "to show beside the pooled ones, e.g. angle/C-C-C")

    @model_validator(mode="after")
    def _references(self) -> StudyConfig:
        for kind, items in (("model", self.models), ("test set", self.tests)):
            names = [i.name for i in items]
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names must be unique, got {names}")
        for arm in self.models:
            unknown = set(arm.train or {}) - set(self.systems)
            if unknown:
                raise ValueError(f"model {arm.name!r} trains on unknown systems {sorted(unknown)}")
            if arm.train is not None and self.fit is None:
                raise ValueError(f"model {arm.name!r} is trained, so the study needs a base 'fit' config")
        for test in self.tests:
            if test.system not in self.systems:
                raise ValueError(f"test set {test.name!r} names unknown system {test.system!r}")
            for arm in self.models:
                if arm.backmapped is not None and test.name not in arm.backmapped:
                    raise ValueError(f"model {arm.name!r} has no backmapped frames for test set {test.name!r}")
        return self


def _resolve(value: Any, base: Path) -> Any:
    if not isinstance(value, str):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a study YAML; its paths become relative to the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such study config", path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {err}", path) from err
    if not isinstance(raw, dict):
        raise InputError("expected a mapping (name, systems, models, tests, ...)", path)
    base = path.parent.resolve()
    if "fit" in raw:
        raw["fit"] = _resolve(raw["fit"], base)
    for system in (raw.get("systems") or {}).values():
        if isinstance(system, dict):
            system.update({k: _resolve(v, base) for k, v in system.items() if k in _PATH_KEYS})
    for arm in raw.get("models") or []:
        if isinstance(arm, dict) and "type_alias" in arm:
            arm["type_alias"] = _resolve(arm["type_alias"], base)
        if isinstance(arm, dict) and isinstance(arm.get("backmapped"), dict):
            arm["backmapped"] = {k: _resolve(v, base) for k, v in arm["backmapped"].items()}
        if isinstance(arm, dict) and isinstance(arm.get("checkpoint"), str) and (base / arm["checkpoint"]).exists():
            arm["checkpoint"] = str(base / arm["checkpoint"])  # a file beside the config, not a shipped name
    return validate(StudyConfig, raw, path)
