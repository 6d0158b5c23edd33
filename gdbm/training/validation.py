"""Held-out frames: which frames of a data source are trained on and which are scored, and the
one fixed batch of held-out sequences the trainer scores the generator on (``val_*`` in log.csv).

The batch is drawn once, from its own seeded generator (sequences, turns and noise), so the
numbers of every validation step are of the same atoms under the same noise and comparable
across updates, and no draw touches the training's random streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gdbm.data.samples import SequenceBatch, SequenceDataset, TrainingSet, collate
from gdbm.data.trajectory import frame_range
from gdbm.utils.errors import InputError

VALIDATION_SEED_OFFSET = 7_919  # the fixed batch's seed is the training seed plus this (a stream of its own)


def _window(spec: str, key: str, n_frames: int, source: str | Path) -> list[int]:
    """The frame indices of ``spec`` (``START:STOP``), an error naming the config key and the frames' file."""
    try:
        return list(range(n_frames)[frame_range(spec, n_frames)])
    except InputError as err:
        raise InputError(f"data.{key}: {err.message}", source) from None


def split_frames(frames: str | None, validation: str | None, n_frames: int,
                 source: str | Path) -> tuple[list[int], list[int]]:
    """The training and the held-out frame indices of a source of ``n_frames`` frames (read from ``source``).

    ``frames`` (``data.frames``, None: every frame not held out) and ``validation``
    (``data.validation_frames``, None: none held out) are ``START:STOP`` ranges that must not
    overlap: a held-out frame that is also trained on would flatter the validation numbers.
    """
    held = _window(validation, "validation_frames", n_frames, source) if validation else []
    if frames is None:
        taken = set(held)
        train = [i for i in range(n_frames) if i not in taken]
        if not train:
            raise InputError(f"data.validation_frames {validation!r} holds out all {n_frames} frames; "
                             "none is left to train on", source)
        return train, held
    train = _window(frames, "frames", n_frames, source)
    overlap = sorted(set(train) & set(held))
    if overlap:
        raise InputError(f"data.validation_frames {validation!r} overlaps data.frames {frames!r} in {len(overlap)} "
                         f"of the {n_frames} frames (from frame {overlap[0]}); held-out frames must not be "
                         "trained on", source)
    return train, held


@dataclass
class ValidationBatch:
    """The fixed held-out sequences and the generator noise they are scored under."""

    batch: SequenceBatch
    noise: Tensor  # [B, L, noise_dim]


def validation_batch(dataset: SequenceDataset | TrainingSet, size: int, seed: int, noise_dim: int,
                     rotate: bool = True, device: torch.device | str = "cpu") -> ValidationBatch:
    """``size`` sequences (at most the dataset's) drawn without replacement by ``seed``, each turned
    about z when ``rotate`` (as training batches are), with noise from the same seeded stream."""
    rng = torch.Generator().manual_seed(seed + VALIDATION_SEED_OFFSET)
    index = torch.randperm(len(dataset), generator=rng)[:min(size, len(dataset))]
    batch = collate([dataset[int(i)] for i in index], rng, rotate=rotate)
    b, length = batch.step_mask.shape
    noise = torch.randn(b, length, noise_dim, generator=rng)
    return ValidationBatch(batch.to(device), noise.to(device))
