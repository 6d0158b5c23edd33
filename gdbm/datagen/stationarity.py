"""When a simulation has become stationary, and how far apart its samples are independent.

Each observable (density, potential energy) goes through pymbar's
``detect_equilibration`` (Chodera, JCTC 12, 1799 (2016)): the start ``t0`` that maximises
the number of effectively uncorrelated samples after it, and the statistical inefficiency
``g`` (samples per independent sample) of what follows. The run counts as stationary when,
for every observable, the part after ``t0`` is at least as long as the part before it and
holds at least ``min_uncorrelated`` independent samples: a drift still under way puts
``t0`` near the end, and a plateau seen only briefly gives few independent samples.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

DRIFT_Z = 2.0  # standard errors allowed between the means of the two halves of the stationary part


@dataclass(frozen=True)
class Observable:
    """One observable's verdict: first stationary sample, inefficiency (samples), independent samples,
    and the difference of the means of the stationary part's halves in standard errors."""

    start: int
    inefficiency: float
    n_uncorrelated: float
    drift: float


@dataclass(frozen=True)
class Stationarity:
    """The verdict over all observables: the latest start, the largest inefficiency."""

    stationary: bool
    start: int
    inefficiency: float
    n_uncorrelated: float
    observables: dict[str, Observable]


def _timeseries():
    logging.getLogger("pymbar").setLevel(logging.ERROR)  # import-time banners (JAX, caveats)
    from pymbar import timeseries

    return timeseries


def analyse(series: np.ndarray) -> Observable:
    """``detect_equilibration`` of one series (at most ~200 candidate starts, for speed)."""
    series = np.asarray(series, dtype=np.float64)
    skip = max(1, len(series) // 200)
    start, g, n_eff = _timeseries().detect_equilibration(series, fast=True, nskip=skip)
    return Observable(int(start), float(g), float(n_eff), _drift(series[int(start):], float(g)))


def _drift(stationary: np.ndarray, g: float) -> float:
    """|mean(first half) - mean(second half)| in standard errors (0 for fewer than 4 samples)."""
    half = len(stationary) // 2
    if half < 2:
        return 0.0
    first, second = stationary[:half], stationary[half:]
    error = np.sqrt(g * (first.var(ddof=1) / len(first) + second.var(ddof=1) / len(second)))
    difference = abs(first.mean() - second.mean())
    return float(difference / error) if error > 0 else (0.0 if difference == 0 else float("inf"))


def detect(series: dict[str, np.ndarray], min_uncorrelated: int) -> Stationarity:
    """Whether all ``series`` (same length, one sample per interval) are stationary, and from where."""
    lengths = {len(v) for v in series.values()}
    if len(lengths) != 1:
        raise ValueError(f"series of different lengths {sorted(lengths)}")
    n = lengths.pop()
    if n < 4:
        return Stationarity(False, n, float("inf"), 0.0, {})
    found = {name: analyse(values) for name, values in series.items()}
    start = max(o.start for o in found.values())
    stationary = all(2 * o.start <= n and o.n_uncorrelated >= min_uncorrelated and o.drift < DRIFT_Z
                     for o in found.values())
    return Stationarity(stationary, start, max(o.inefficiency for o in found.values()),
                        min(o.n_uncorrelated for o in found.values()), found)


def inefficiency(series: np.ndarray) -> float | None:
    """Statistical inefficiency of a whole series (1 = uncorrelated samples); None below 4 samples."""
    series = np.asarray(series, dtype=np.float64)
    return float(_timeseries().statistical_inefficiency(series)) if len(series) >= 4 else None


def mean_and_error(values: np.ndarray, g: float) -> tuple[float, float]:
    """Mean and its standard error for samples with statistical inefficiency ``g`` (``std * sqrt(g / n)``)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(values.std(ddof=1) * np.sqrt(g / len(values)))
