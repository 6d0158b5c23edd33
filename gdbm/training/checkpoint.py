"""Checkpoints written atomically and read back for resuming or sampling.

A checkpoint holds the state dicts of every module and optimiser, the step, the random
number generator states and the full experiment config, so that ``resume`` continues the
exact same run and a sampler can rebuild the networks without the original config file.
A crash while writing leaves the previous checkpoint intact (temp file + rename).
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gdbm.utils.atomic_files import atomic_path
from gdbm.utils.errors import InputError


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's generators (CUDA included when present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, state dicts, plain data) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such checkpoint", path)
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise InputError(f"not a readable gdbm checkpoint: {err}", path) from err
