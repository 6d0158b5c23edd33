"""Which arithmetic the network runs in: bfloat16 only where the hardware computes it natively.

bfloat16 autocast cuts the time of a convolution on CPUs with AVX512-BF16 or AMX (on a Xeon with AMX,
channels-last: 6 ms against 88 ms in float32; a whole sPS frame 68 s against 87 s) and on GPUs
with bfloat16 units; elsewhere PyTorch emulates it, and measured on an AVX2-only AMD
EPYC one sPS plan step took 75 s in bfloat16 against 2.3 s in float32. ``"auto"`` therefore
picks bfloat16 only where it is native, float32 otherwise.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["auto", "float32", "bfloat16"]
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo names of native bfloat16 arithmetic


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no such file, e.g. not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
            flags.update(value.split())
    return flags


def native_bfloat16(device: str | torch.device, cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU with bfloat16 units, a CPU with AVX512-BF16 or AMX."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(cpu_flags(cpuinfo) & CPU_BF16_FLAGS)
    return False


def resolve_precision(precision: Precision, device: str | torch.device,
                      cpuinfo: str | Path = "/proc/cpuinfo") -> Literal["float32", "bfloat16"]:
    """The arithmetic to use: ``"auto"`` -> bfloat16 where native, else float32; an explicit choice is kept
    (bfloat16 on hardware that emulates it with a warning: it is many times slower there)."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device, cpuinfo) else "float32"
    if precision == "bfloat16" and not native_bfloat16(device, cpuinfo):
        warnings.warn(f"bfloat16 is emulated on this {torch.device(device).type} (no AVX512-BF16/AMX, or no "
                      f"bfloat16 GPU units): expect it many times slower than float32; --precision auto picks "
                      f"float32 here", RuntimeWarning, stacklevel=2)
    return precision


def describe_precision(requested: Precision, device: str | torch.device,
                       cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """One line saying which arithmetic runs and why, for a job's log: timings differ by that choice,
    so a user quoting one needs to know it."""
    device = torch.device(device)
    native = native_bfloat16(device, cpuinfo)
    resolved = ("bfloat16" if native else "float32") if requested == "auto" else requested
    how = "auto" if requested == "auto" else "asked"
    return (f"network arithmetic {resolved} on {device.type} ({how}; bfloat16 is "
            f"{'native' if native else 'emulated'} here)")
