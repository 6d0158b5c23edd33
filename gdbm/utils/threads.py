"""How many CPU threads torch uses when the user does not say (``gdbm --threads N`` does)."""

from __future__ import annotations

import functools
import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@functools.cache
def default_threads() -> int:
    """The usable CPUs less those other processes keep busy (the 1-minute load average, rounded
    down), at least 1. Decided once per process, so that repeated calls (tests, resumed runs)
    compute with the same thread count. On the 2-core development machine, `make demo`'s backmap
    and refinement took 392 s with torch's default of 2 threads beside one other job, 188 s with
    one thread beside three; an idle machine gets all its cores."""
    cpus = usable_cpus()
    try:
        busy = int(os.getloadavg()[0])
    except (OSError, AttributeError):
        busy = 0
    return max(1, min(cpus, cpus - busy))


def choose_threads(requested: int | None) -> int | None:
    """The torch thread count to set: ``requested`` if given, else :func:`default_threads`, else
    ``None`` (leave torch's own choice) when the environment already fixes it (``OMP_NUM_THREADS``)."""
    if requested is not None:
        return requested
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return None
    return default_threads()
