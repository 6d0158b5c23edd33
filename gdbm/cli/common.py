"""Argument helpers shared by several subcommands."""

from __future__ import annotations

from gdbm.utils.errors import InputError


def parse_named_sets(specs: list[str]) -> dict[str, str]:
    """``["NAME=TRAJ", ...]`` (``--gen``) -> ``{NAME: TRAJ}``; a clear error for a bad or repeated name."""
    sets: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--gen expects NAME=TRAJ, got {spec!r}")
        if name in sets:
            raise InputError(f"--gen name {name!r} given twice")
        sets[name] = path
    return sets


def check_device(name: str | None, option: str = "--device") -> None:
    """An :class:`InputError` for a torch device ``name`` that is not one or not on this machine (None: fine)."""
    if name is None:
        return
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"{option} {name!r} is not a torch device; expected cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"{option} {name}: no CUDA device is available on this machine; use --device cpu")
        if device.index is not None and device.index >= count:
            raise InputError(f"{option} {name}: this machine has {count} CUDA device(s), cuda:0 to "
                             f"cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{option} {name}: no MPS device is available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"{option} {name}: device type {device.type!r} is not supported; expected cpu or cuda")
