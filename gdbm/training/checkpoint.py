"""Checkpoints written atomically and read back for resuming or sampling.

A checkpoint holds the state dicts of every module and optimiser, the step, the random
number generator states and the full experiment config, so that ``resume`` continues the
exact same run and a sampler can rebuild the networks without the original config file.
A crash while writing leaves the previous checkpoint intact (temp file + rename).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gdbm.utils.atomic_files import atomic_path
from gdbm.utils.devices import check_device  # noqa: F401 - re-exported: the one device check
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


GENERATOR_KEYS = ("generator", "features", "config")  # what a sampler needs (shipped models have these)
RESUME_KEYS = (*GENERATOR_KEYS, "critic", "opt_generator", "opt_critic", "step", "seconds", "rng")  # gdbm fit --resume


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                    required: Sequence[str] = ()) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`: a dict holding at least the ``required`` keys.

    Whatever else the file holds (a list, a tensor, a dict without those keys, garbage) is an
    :class:`InputError` naming the file; so is a device this machine does not have.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such checkpoint" if not path.exists() else "not a file; expected a .pt checkpoint", path)
    device = check_device(map_location)
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - torch.load fails in many ways on a file that is not a checkpoint
        raise InputError(f"not a readable gdbm checkpoint: {' '.join(str(err).split()) or type(err).__name__}",
                         path) from err
    return _checked(payload, path, required)


def _checked(payload: object, path: Path, required: Sequence[str]) -> dict[str, Any]:
    """``payload`` if it is a dict with the ``required`` keys."""
    if not isinstance(payload, dict):
        raise InputError(f"not a gdbm checkpoint: it holds a {type(payload).__name__}, expected a dict with keys "
                         f"{', '.join(required) or '(any)'}", path)
    missing = [k for k in required if k not in payload]
    if missing:
        raise InputError(f"not a gdbm checkpoint: missing keys {', '.join(missing)} (it has "
                         f"{', '.join(map(str, list(payload)[:8])) or 'none'})", path)
    return payload
