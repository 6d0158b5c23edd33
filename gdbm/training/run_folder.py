"""The run folder of a training, and its one lifecycle: start new, resume, or start over.

A run folder holds ``config.yaml`` (the experiment as given), ``checkpoint.pt``, ``log.csv``,
its plot ``training.png`` (:mod:`gdbm.training.log_plot`) and the kept copies
``checkpoint_<step>.pt``. ``gdbm fit``, studies (one folder per model arm)
and the demo all train through :func:`train_in_folder`, so the rules are the same everywhere:

- ``new``: a folder that holds a checkpoint is refused, never silently overwritten;
- ``resume``: continue from the folder's checkpoint, which must exist;
- ``force``: delete the old checkpoint, log and kept copies, then start over;
- ``auto``: resume when there is a checkpoint, else start (studies and the demo continue by themselves).

A run that starts (not one that resumes) from another model's weights, ``training.init_from``,
keeps that model's network and vocabulary (:mod:`gdbm.training.init_from`).

Under ``torchrun`` only the main rank touches files; the others wait at a barrier until the
folder is ready.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, get_args

from gdbm.training import trainer as _trainer
from gdbm.training.config import ExperimentConfig, load_config, model_reference
from gdbm.training.init_from import plan_start
from gdbm.training.log import LOG
from gdbm.training.log_plot import PLOT
from gdbm.training.trainer import CHECKPOINT, TrainState
from gdbm.utils.atomic_files import write_text
from gdbm.utils.config_files import validate
from gdbm.utils.distributed import Distributed, from_environment
from gdbm.utils.errors import InputError

RunMode = Literal["new", "resume", "force", "auto"]


def _no_log(_line: str) -> None:
    pass


def check_folder(folder: Path, mode: RunMode) -> None:
    """Refuse what ``mode`` does not allow: a checkpoint to start over on (``new``), none to resume (``resume``)."""
    if mode not in get_args(RunMode):
        raise ValueError(f"unknown run mode {mode!r}; expected one of {get_args(RunMode)}")
    has_checkpoint = (folder / CHECKPOINT).exists()
    if mode == "new" and has_checkpoint:
        raise InputError("holds a checkpoint; pass --resume to continue it or --force to start over", folder)
    if mode == "resume" and not has_checkpoint:
        raise InputError(f"no {CHECKPOINT} to resume; run without --resume to start training here", folder)


def clear_folder(folder: Path) -> None:
    """Delete a run's checkpoint, log, its plot and kept copies (``checkpoint_<step>.pt``); other files stay."""
    for path in (folder / CHECKPOINT, folder / LOG, folder / PLOT, *folder.glob("checkpoint_*.pt")):
        path.unlink(missing_ok=True)


def prepare_folder(folder: Path, mode: RunMode, config_text: str | None, distributed: Distributed) -> None:
    """Check, clear (``force``), create and write ``config.yaml`` on the main rank; every rank leaves together."""
    check_folder(folder, mode)
    if distributed.is_main:
        if mode == "force":
            clear_folder(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if config_text is not None:
            write_text(folder / "config.yaml", config_text)
    distributed.barrier()  # the folder is ready before any rank reads or resumes from it


def train_in_folder(config: ExperimentConfig, folder: str | Path, mode: RunMode = "new", *,
                    distributed: Distributed = Distributed(), config_text: str | None = None,
                    log: Callable[[str], None] = _no_log, config_file: Path | None = None) -> TrainState:
    """Train ``config`` in ``folder`` to ``config.training.steps`` by the rules of ``mode``; returns the final state.

    ``config_text`` (YAML) is written as the folder's ``config.yaml``; ``log`` hears, on the main
    rank, whether the run starts or resumes. ``distributed`` is the caller's to open and close.
    ``config_file``: the file ``config`` came from, named when its network differs from the model
    ``training.init_from`` fine-tunes.
    """
    folder = Path(folder)
    check_folder(folder, mode)
    resuming = mode == "resume" or (mode == "auto" and (folder / CHECKPOINT).exists())
    start = plan_start(config, folder / CHECKPOINT, resuming, config_file)
    config = start.config  # with the network of the model it fine-tunes, if any
    data = _trainer.load_training_data(config, start.spec)  # a bad input ends here, before the folder is touched
    prepare_folder(folder, mode, config_text, distributed)
    trainer = _trainer.build_trainer(config, folder, distributed, data, start)
    try:
        resumed = resuming and trainer.resume()
        if distributed.is_main:
            begin = f"start from {config.training.init_from}" if start.generator is not None else "start"
            log(f"{f'resuming at step {trainer.state.step}' if resumed else begin} -> {config.training.steps} steps")
        return trainer.fit()
    finally:
        trainer.release()


def fit(config_path: str | Path, output: str | Path | None = None, mode: RunMode = "new", *,
        conditioner: str | None = None, steps: int | None = None, device: str | None = None,
        init_from: str | None = None, log: Callable[[str], None] = print) -> TrainState:
    """Train the experiment of a YAML config into a run folder (``gdbm fit``); returns the final state.

    ``output`` defaults to ``runs/<config name>``; ``conditioner`` (a name in
    :data:`gdbm.conditioners.registry.CONDITIONERS`), ``steps``, ``device`` and ``init_from`` (a
    shipped model's name or a checkpoint path, relative to the working folder) override the
    config's ``model.conditioner``, ``training.steps``, ``training.device`` and ``training.init_from``. Started by
    ``torchrun``, the processes train one model with DistributedDataParallel; ``log`` hears the
    main rank's progress lines.
    """
    config_path = Path(config_path)
    training = {k: v for k, v in (("steps", steps), ("device", device)) if v is not None}
    config = load_config(config_path, {"training": training} if training else None)
    if conditioner is not None:
        config = with_conditioner(config, conditioner, config_path)
    if init_from is not None:
        reference = model_reference(init_from, Path.cwd())
        config = config.model_copy(update={"training": config.training.model_copy(update={"init_from": reference})})
    folder = Path(output) if output is not None else Path("runs") / config_path.stem
    check_folder(folder, mode)  # before joining a process group: a refusal ends every rank at once
    distributed = from_environment(config.training.device)
    try:
        state = train_in_folder(config, folder, mode, distributed=distributed, config_text=config_path.read_text(),
                                log=lambda line: log(f"{folder}: {line}"), config_file=config_path)
    finally:
        distributed.close()
    if distributed.is_main:
        processes = f" on {distributed.world_size} processes" if distributed.enabled else ""
        log(f"trained {state.step} steps in {state.seconds:.0f} s{processes}; checkpoint {folder / CHECKPOINT}")
    return state


def with_conditioner(config: ExperimentConfig, name: str, source: Path) -> ExperimentConfig:
    """``config`` with ``model.conditioner`` set to ``name``, validated again (a bad name names ``source``).

    Set on the validated config rather than merged into the file's mapping, so a file that still
    spells the key ``encoder`` is overridden too; what the file left out stays unset (a fine-tuned
    run takes it from its model, :mod:`gdbm.training.init_from`).
    """
    raw = config.model_dump(mode="json", exclude_unset=True)
    raw.setdefault("model", {})
    raw["model"]["conditioner"] = name
    return validate(ExperimentConfig, raw, source)
