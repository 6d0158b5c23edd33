"""Hardware names given on the command line: torch devices and the OpenMM platform they stand for.

One check, :func:`check_device`, serves every command and library function that takes a torch
device (``--device``), so that an unknown or absent device reads the same everywhere.
:func:`openmm_platform` turns ``--device cpu|cuda`` into the OpenMM platform of the commands
that simulate with OpenMM (``relax --thermal``, ``cgsim``, ``datagen``), where ``--platform``
stays the explicit choice (Reference, OpenCL, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gdbm.utils.errors import InputError

if TYPE_CHECKING:  # torch is imported when a device is checked, not when the CLI parser is built
    import torch

_EXPECTED = "expected cpu, cuda or cuda:N"


def check_device(name: str | torch.device | None, option: str = "--device") -> torch.device | None:
    """``name`` as a torch device this machine has (None: None); an :class:`InputError` naming ``option``
    for a name that is no device, a device type gdbm does not run on, or one that is not on this machine."""
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"{option} {str(name)!r} is not a torch device; {_EXPECTED}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "torch built without CUDA" if torch.version.cuda is None else "no GPU visible"
            raise InputError(f"{option} {name}: CUDA is not available on this machine (torch {torch.__version__}, "
                             f"{why}); use --device cpu")
        if device.index is not None and device.index >= count:
            raise InputError(f"{option} {name}: this machine has {count} CUDA device(s); expected cuda:0 to "
                             f"cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"{option} {name}: no MPS device is available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise InputError(f"{option} {name}: device type {device.type!r} is not supported; {_EXPECTED}")
    return device


#: ``--device`` type -> OpenMM platform name.
OPENMM_PLATFORMS = {"cpu": "CPU", "cuda": "CUDA"}


def openmm_platform(device: str | None, platform: str | None, default: str | None) -> str | None:
    """The OpenMM platform of ``--device`` (cpu -> CPU, cuda -> CUDA) or of ``--platform`` (given as is);
    ``default`` when neither is given. Both at once is an :class:`InputError` unless they agree."""
    if device is None:
        return default if platform is None else platform
    kind = device.split(":")[0].strip().lower()
    if kind not in OPENMM_PLATFORMS:
        raise InputError(f"--device {device!r}: OpenMM runs on cpu or cuda; use --platform for another OpenMM "
                         "platform (Reference, OpenCL)")
    chosen = OPENMM_PLATFORMS[kind]
    if platform is not None and platform.lower() != chosen.lower():
        raise InputError(f"--device {device} means OpenMM platform {chosen}, but --platform {platform} was given; "
                         "give one of them")
    return chosen
