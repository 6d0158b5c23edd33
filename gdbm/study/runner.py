"""Runs a study: make missing data, train every model arm, backmap every test set with every arm, evaluate.

Every stage leaves a stamp (JSON) beside its output naming what it was made from; a stage
whose stamp matches is skipped, so a finished study re-runs for free and an interrupted one
resumes (training from its last checkpoint, backmapping from its finished frames). A stamp
that does not match means the config changed under an existing result: that is an error,
not a silent retrain, unless the result is deleted.

Folder layout::

    DIR/study.yaml                     the config as read (absolute paths)
    DIR/models/<arm>/                  config.yaml (a plain `gdbm fit` config), checkpoint.pt, log.csv, done.json
    DIR/backmap/<test>/<arm>.xtc       backmapped frames (+ <arm>.json stamp)
    DIR/eval/<test>/                   `gdbm eval` of all arms on one test set (metrics.json, summary.md, plots)
    DIR/summary.md, summary.json       one table per test set, the models, the plots
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gdbm.utils.atomic_files import write_text
from gdbm.utils.config_files import merge_sections
from gdbm.utils.errors import InputError
from gdbm.study.config import ModelArm, StudyConfig, SystemConfig, TestSet, load_study

DONE = "done.json"


def fingerprint(data: Any) -> str:
    """A short hash of JSON-able data: what a stamp compares."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def arm_experiment(study: StudyConfig, arm: ModelArm) -> dict:
    """The `gdbm fit` config of a trained arm as plain data: the base config, the arm's overrides,
    and its training mix as the data section (absolute paths)."""
    if "data" in arm.fit:
        raise InputError(f"model {arm.name!r}: 'fit' must not override 'data'; the mix is given by 'train'")
    base = yaml.safe_load(study.fit.read_text()) or {}
    raw = merge_sections({k: v for k, v in base.items() if k != "data"}, arm.fit)
    sources = []
    for name, share in arm.train.items():
        system = study.systems[name]
        source = {k: str(v) for k, v in system.model_dump(include={"topology", "parameters", "mapping", "cg_itp",
                  "aa", "aa_structure", "cg", "cg_structure"}).items() if v is not None}
        if system.train_frames:
            source["frames"] = system.train_frames
        if len(arm.train) > 1:
            source["weight"] = share
        sources.append(source)
    raw["data"] = sources if len(sources) > 1 else sources[0]
    return raw


@dataclass
class StudyRunner:
    """The stages of one study in one folder; ``run()`` does whatever is not done yet."""

    study: StudyConfig
    out: Path
    log: Callable[[str], None] = print

    def run(self) -> dict:
        """Every stage in order; returns the summary."""
        from gdbm.study.summary import write_summary

        self.out.mkdir(parents=True, exist_ok=True)
        write_text(self.out / "study.yaml", yaml.safe_dump(self.study.model_dump(mode="json"), sort_keys=False))
        if self.study.threads:
            import torch

            torch.set_num_threads(self.study.threads)
        self.make_data()
        for arm in self.study.models:
            self.train(arm)
        for test in self.study.tests:
            for arm in self.study.models:
                self.backmap(arm, test)
            self.evaluate(test)
        return write_summary(self.study, self.out)

    def run_arms(self, names: Sequence[str]) -> None:
        """Make missing data, train the named arms and backmap every test set with them; no evaluation.

        Several processes can work on a study's arms side by side this way; a full :meth:`run`
        afterwards finds their stages done and evaluates and summarises.
        """
        self.make_data()
        for arm in [self.arm(name) for name in names]:
            self.train(arm)
            for test in self.study.tests:
                self.backmap(arm, test)

    def arm(self, name: str) -> ModelArm:
        """The model arm called ``name``."""
        for arm in self.study.models:
            if arm.name == name:
                return arm
        raise InputError(f"no model arm {name!r}; the study has {[a.name for a in self.study.models]}")

    # --- data ---------------------------------------------------------------------------------
    def used_systems(self) -> list[str]:
        names = [n for arm in self.study.models for n in (arm.train or {})] + [t.system for t in self.study.tests]
        return list(dict.fromkeys(names))

    def make_data(self) -> None:
        """Run `gdbm datagen` for every used system whose files are missing and that says how to make them."""
        for name in self.used_systems():
            system = self.study.systems[name]
            if system.topology.exists():
                continue
            if not system.datagen:
                raise InputError(f"system {name!r}: no such topology and no 'datagen' to make it", system.topology)
            command = [sys.executable, "-m", "gdbm"]
            if self.study.threads:
                command += ["--threads", str(self.study.threads)]
            command += ["datagen", *shlex.split(system.datagen), "-o", str(system.topology.parent)]
            self.log(f"[data] {name}: gdbm {shlex.join(command[3:])}")
            if subprocess.run(command, check=False).returncode:
                raise InputError(f"system {name!r}: gdbm datagen failed (its message is above)")
            if not system.topology.exists():
                raise InputError(f"system {name!r}: datagen finished but wrote no topology here", system.topology)

    # --- training -----------------------------------------------------------------------------
    def model_dir(self, arm: ModelArm) -> Path:
        return self.out / "models" / arm.name

    def checkpoint(self, arm: ModelArm) -> str:
        if arm.checkpoint is not None:
            return arm.checkpoint
        from gdbm.training.trainer import CHECKPOINT

        return str(self.model_dir(arm) / CHECKPOINT)

    def model_stamp(self, arm: ModelArm) -> str:
        """What a backmap made with this arm depends on: its training stamp or its checkpoint file."""
        if arm.checkpoint is None:
            return _read_json(self.model_dir(arm) / DONE)["fingerprint"]
        from gdbm.training.pretrained import resolve_checkpoint

        path = Path(resolve_checkpoint(arm.checkpoint))
        return fingerprint([arm.checkpoint, path.stat().st_size, path.stat().st_mtime_ns])

    def train(self, arm: ModelArm) -> None:
        """Train a trained arm unless its stamp says it is done; resume an interrupted run."""
        if arm.train is None:
            return
        from gdbm.training.config import ExperimentConfig
        from gdbm.training.run_folder import train_in_folder

        raw = arm_experiment(self.study, arm)
        config = ExperimentConfig.model_validate(raw)
        stamp = fingerprint(config.model_dump(mode="json"))
        folder = self.model_dir(arm)
        done = _read_json(folder / DONE)
        if done is not None:
            if done["fingerprint"] != stamp:
                raise InputError(f"model {arm.name!r} was trained with another config; delete the folder to "
                                 f"retrain it", folder)
            self.log(f"[train] {arm.name}: done ({done['steps']} steps, {done['seconds']:.0f} s)")
            return
        started = _read_json(folder / "started.json")
        if started is not None and started["fingerprint"] != stamp:
            raise InputError(f"model {arm.name!r} holds a run of another config; delete the folder to start over",
                             folder)
        folder.mkdir(parents=True, exist_ok=True)
        with training_lock(folder / "training.lock", self.log, arm.name):
            if (folder / DONE).exists():  # trained by another process while this one waited
                return self.train(arm)
            write_text(folder / "started.json", json.dumps({"fingerprint": stamp}) + "\n")
            state = train_in_folder(config, folder, "auto", config_text=yaml.safe_dump(raw, sort_keys=False),
                                    log=lambda line: self.log(f"[train] {arm.name}: {line}"))
            write_text(folder / DONE, json.dumps({"fingerprint": stamp, "steps": state.step,
                                                  "seconds": round(state.seconds, 1)}, indent=1) + "\n")

    # --- backmapping --------------------------------------------------------------------------
    def backmap_path(self, arm: ModelArm, test: TestSet) -> Path:
        return self.out / "backmap" / test.name / f"{arm.name}.xtc"

    def backmap_job(self, arm: ModelArm, test: TestSet):
        from gdbm.sampling.jobs import BackmapJob
        from gdbm.sampling.backmapper import SamplerConfig

        system = self.study.systems[test.system]
        if system.cg is None:
            raise InputError(f"test set {test.name!r}: system {test.system!r} has no CG frames ('cg')")
        b = self.study.backmap
        sampler = SamplerConfig(n_gibbs=b.gibbs, candidates=b.candidates, seed=b.seed, precision=b.precision,
                                max_batch=b.max_batch)
        foreign = arm.train is None or test.system not in arm.train
        alias = str(arm.type_alias) if arm.type_alias and foreign else None
        return BackmapJob(self.checkpoint(arm), str(system.topology), str(system.mapping), str(system.cg), sampler,
                          cg_struct=_str(system.cg_structure), frames=test.frames, cg_itp=_str(system.cg_itp),
                          parameters=_str(system.parameters), type_alias=alias)

    def backmap(self, arm: ModelArm, test: TestSet) -> None:
        """Backmap one test set with one arm unless its stamp matches; partial jobs continue."""
        from gdbm.sampling.jobs import backmap_trajectory

        if arm.backmapped is not None:
            return
        output = self.backmap_path(arm, test)
        stamp_path = output.with_suffix(".json")
        job = self.backmap_job(arm, test)
        stamp = {"job": job.settings(), "model": self.model_stamp(arm)}
        done = _read_json(stamp_path)
        if output.exists() and done is not None and done["stamp"] == stamp:
            self.log(f"[backmap] {test.name} / {arm.name}: done ({done['seconds']:.0f} s)")
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        self.log(f"[backmap] {test.name} / {arm.name}")
        report = backmap_trajectory(job, output, force=output.exists() and done is not None)
        if report.failed:
            raise RuntimeError(f"{len(report.failed)} frames of {test.name} failed with model {arm.name} "
                               f"(first: {next(iter(report.failed.values()))}); rerun the study to retry them")
        write_text(stamp_path, json.dumps({"stamp": stamp, "seconds": round(report.seconds, 1),
                                           "frames": report.frames_written}, indent=1) + "\n")

    def backmapped_stamp(self, arm: ModelArm, test: TestSet) -> Any:
        """What the evaluation of one arm's frames depends on: the backmap's stamp, or the given file."""
        if arm.backmapped is not None:
            path = arm.backmapped[test.name]
            return [str(path), path.stat().st_size, path.stat().st_mtime_ns]
        return _read_json(self.backmap_path(arm, test).with_suffix(".json"))["stamp"]

    # --- evaluation ---------------------------------------------------------------------------
    def eval_dir(self, test: TestSet) -> Path:
        return self.out / "eval" / test.name

    def evaluate(self, test: TestSet) -> None:
        """`gdbm eval` of all arms on one test set (shared plots), unless done for the same backmaps."""
        from gdbm.analysis.evaluate import Evaluator
        from gdbm.analysis.report import evaluate_sets
        from gdbm.data.trajectory import frame_range, read_frames
        from gdbm.topology.system import load_mapped_system

        folder = self.eval_dir(test)
        stamp = {"backmaps": {arm.name: self.backmapped_stamp(arm, test) for arm in self.study.models},
                 "eval": self.study.eval.model_dump(), "test": test.model_dump()}
        done = _read_json(folder / "stamp.json")
        if done is not None and done["stamp"] == fingerprint(stamp) and (folder / "metrics.json").exists():
            self.log(f"[eval] {test.name}: done")
            return
        self.log(f"[eval] {test.name}")
        start = time.perf_counter()
        system = self.study.systems[test.system]
        mapped = load_mapped_system(system.topology, system.eval_map or system.mapping, system.cg_itp,
                                    parameters=system.parameters)
        reference = read_frames(system.aa, system.aa_structure)
        cg = read_frames(system.cg, system.cg_structure) if system.cg else None
        if test.frames:
            window = frame_range(test.frames, len(reference))
            reference, cg = reference.subset(window), cg.subset(window) if cg is not None else None
        generated = {}
        for arm in self.study.models:
            if arm.backmapped is not None:  # all frames of the system: the test's window of them
                frames = read_frames(arm.backmapped[test.name], _structure_file(system))
                generated[arm.name] = frames.subset(frame_range(test.frames, len(frames))) if test.frames else frames
            else:
                generated[arm.name] = read_frames(self.backmap_path(arm, test), _structure_file(system))
        evaluator = Evaluator(mapped.aa, cutoff=self.study.eval.cutoff, mapping=mapped.mapping,
                              per_type_rdf=self.study.eval.per_type_rdf)
        evaluate_sets(evaluator, reference, generated, folder, cg=cg, force=True,
                      settings={"study": self.study.name, "test": test.name})
        write_text(folder / "stamp.json", json.dumps({"stamp": fingerprint(stamp),
                                                      "seconds": round(time.perf_counter() - start, 1)}) + "\n")


def run_study(config: str | Path, out: str | Path, *, arms: Sequence[str] = (), summary_only: bool = False,
              log: Callable[[str], None] = print) -> dict | None:
    """Run the study config ``config`` in the folder ``out`` (``gdbm study``); returns the summary.

    ``arms``: only train these model arms and backmap with them (:meth:`StudyRunner.run_arms`;
    returns None). ``summary_only``: rewrite the summary from the stages already finished.
    """
    from gdbm.study.summary import write_summary

    study, out = load_study(config), Path(out)
    if summary_only:
        return write_summary(study, out)
    runner = StudyRunner(study, out, log=log)
    if arms:
        runner.run_arms(arms)
        return None
    return runner.run()


def _lock_holder(path: Path) -> int | None:
    """The id of the live process named in a lock file, or None (no file, or its process is gone)."""
    try:
        pid = int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


@contextmanager
def training_lock(path: Path, log: Callable[[str], None], name: str, poll: float = 10.0) -> Iterator[None]:
    """One process trains an arm at a time: a lock file holding the trainer's process id. Another
    process waits for it; a lock left by a process that no longer runs is taken over."""
    waited = False
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is None or holder == os.getpid():
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            if not waited:
                log(f"[train] {name}: being trained by process {holder}; waiting")
                waited = True
            time.sleep(poll)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _structure_file(system: SystemConfig) -> Path:
    """A file naming the system's atoms, for reading backmapped .xtc frames: its AA structure, its
    AA frames when they are one file, or the first .gro of a folder of frames."""
    if system.aa_structure is not None:
        return system.aa_structure
    if system.aa.is_dir():
        return min(system.aa.glob("*.gro"), default=system.aa)
    return system.aa


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)
