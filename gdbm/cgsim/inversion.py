"""Boltzmann inversion: tabulated CG potentials from distributions of mapped reference frames.

A bonded coordinate ``x`` sampled at temperature ``T`` with density ``P(x)`` gives the
potential ``U(x) = -kT ln(P(x) / J(x))``, with the Jacobian ``J = x^2`` for distances,
``sin x`` for bond angles and ``1`` for dihedrals (direct Boltzmann inversion, DBI). A pair
distribution ``g(r)`` gives the potential of mean force ``-kT ln g(r)``, the zeroth step of
iterative Boltzmann inversion (IBI). Where the reference has no samples the table is
continued so that a simulation cannot escape through it: harmonically about the sampled mean
for bonds and angles, by a steep wall at short pair distances, and by a finite barrier for
dihedrals (a pseudo-count). Units: nm, radians, kJ/mol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from gdbm.utils.errors import InputError

BOLTZMANN = 0.0083144626  # kJ/mol/K
KINDS = ("bond", "angle", "dihedral")
SMOOTH_BINS = 1.5  # Gaussian smoothing of the histograms, in bins
MIN_COUNT = 3.0  # smoothed counts below this are "not sampled"
DIHEDRAL_PSEUDO_COUNT = 0.05  # per bin: caps dihedral barriers at ~kT ln(max count / 0.05)
WALL_SLOPE_KT = 50.0  # kT/nm: the least steepness of the short-range pair wall
WALL_CURVATURE_KT = 2000.0  # kT/nm^2


@dataclass
class Table:
    """A potential ``u`` (kJ/mol) on the uniform grid ``x`` (nm or rad); ``periodic`` for dihedrals."""

    x: np.ndarray  # [n]
    u: np.ndarray  # [n]
    periodic: bool = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Linear interpolation of the table (for checks and plots; OpenMM uses splines)."""
        if self.periodic:
            x = (np.asarray(x) - self.x[0]) % (self.x[-1] - self.x[0]) + self.x[0]
        return np.interp(x, self.x, self.u)


def kt(temperature: float) -> float:
    """k_B T in kJ/mol."""
    return BOLTZMANN * temperature


def _jacobian(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "bond":
        return np.maximum(x, 1e-3) ** 2
    if kind == "angle":
        return np.maximum(np.sin(x), math.sin(math.radians(1.0)))
    return np.ones_like(x)


def _smoothed_histogram(values: np.ndarray, edges: np.ndarray, periodic: bool) -> np.ndarray:
    counts = np.histogram(values, edges)[0].astype(np.float64)
    return gaussian_filter1d(counts, SMOOTH_BINS, mode="wrap" if periodic else "constant")


def invert_bonded(values: np.ndarray, kind: str, temperature: float, width: float,
                  table_range: tuple[float, float] | None = None) -> Table:
    """Tabulated potential of one bonded coordinate from its samples ``values`` (nm or rad).

    ``width``: histogram bin and table spacing. Bonds are tabulated on ``table_range``
    (default ``[0, 3 max]``), angles on ``[0, pi]``, dihedrals on ``[-pi, pi]`` (periodic).
    The minimum of the table is 0.
    """
    if kind not in KINDS:
        raise InputError(f"unknown bonded kind {kind!r}; expected one of {KINDS}")
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size < 10:
        raise InputError(f"{values.size} samples of a {kind} are too few for Boltzmann inversion (need >= 10)")
    beta_inv = kt(temperature)
    if kind == "dihedral":
        n = int(round(2 * math.pi / width))
        edges = np.linspace(-math.pi, math.pi, n + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        counts = _smoothed_histogram(values, edges, periodic=True) + DIHEDRAL_PSEUDO_COUNT
        u_bins = -beta_inv * np.log(counts)
        grid = np.linspace(-math.pi, math.pi, n + 1)
        wrapped_x = np.concatenate([centres[-1:] - 2 * math.pi, centres, centres[:1] + 2 * math.pi])
        wrapped_u = np.concatenate([u_bins[-1:], u_bins, u_bins[:1]])
        u = np.interp(grid, wrapped_x, wrapped_u)
        u[-1] = u[0]  # exactly periodic
        return Table(grid, u - u.min(), periodic=True)
    lo, hi = (0.0, math.pi) if kind == "angle" else (table_range or (0.0, 3.0 * float(values.max())))
    grid = np.linspace(lo, hi, max(2, int(round((hi - lo) / width))) + 1)  # uniform, ends included
    edges = np.arange(math.floor(values.min() / width) - 3, math.ceil(values.max() / width) + 4) * width
    centres = 0.5 * (edges[1:] + edges[:-1])
    counts = _smoothed_histogram(values, edges, periodic=False)
    sampled = counts >= MIN_COUNT
    if sampled.sum() < 3:
        raise InputError(f"the {kind} samples fill fewer than 3 bins of {width:g}; use a smaller bin width")
    first, last = np.flatnonzero(sampled)[[0, -1]]
    x_s = centres[first:last + 1]
    u_s = -beta_inv * np.log(np.maximum(counts[first:last + 1], MIN_COUNT) / _jacobian(kind, x_s))
    # continuation outside the sampled range: harmonic about the mean, k from the variance
    mean, k = float(values.mean()), beta_inv / max(float(values.var()), 1e-12)

    def continued(x: np.ndarray, x_edge: float, u_edge: float) -> np.ndarray:
        return u_edge + 0.5 * k * ((x - mean) ** 2 - (x_edge - mean) ** 2)

    u = np.interp(grid, x_s, u_s)
    below, above = grid < x_s[0], grid > x_s[-1]
    u[below] = continued(grid[below], x_s[0], u_s[0])
    u[above] = continued(grid[above], x_s[-1], u_s[-1])
    return Table(grid, u - u.min())


def rdf_from_counts(counts: np.ndarray, edges: np.ndarray, n_pairs: float, volume: float, n_frames: int
                    ) -> np.ndarray:
    """``g(r)`` per bin from pair counts over ``n_frames`` frames of ``n_pairs`` possible pairs in ``volume``."""
    shells = 4.0 / 3.0 * math.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return counts / (n_frames * n_pairs / volume * shells)


def invert_rdf(g: np.ndarray, edges: np.ndarray, temperature: float) -> Table:
    """Pair potential ``-kT ln g(r)`` (zero at the last bin), with a steep wall where ``g`` was not sampled.

    ``g`` comes from histogram counts; bins are taken as sampled from the first bin whose
    ``g`` reaches 1% of its maximum.
    """
    beta_inv = kt(temperature)
    centres = 0.5 * (edges[1:] + edges[:-1])
    g = gaussian_filter1d(np.asarray(g, dtype=np.float64), SMOOTH_BINS, mode="nearest")
    if not (g > 0).any():
        raise InputError("a pair distribution without any sampled distance cannot be inverted")
    first = int(np.flatnonzero(g >= 0.01 * g.max())[0])
    u = -beta_inv * np.log(np.maximum(g, g[first]))
    u -= u[-1]
    x0, u0 = centres[first], u[first]
    slope = max(-(u[first + 1] - u[first]) / (centres[first + 1] - centres[first]), WALL_SLOPE_KT * beta_inv)
    grid = np.linspace(0.0, float(edges[-1]), len(edges))  # uniform, as OpenMM's tables need
    u_grid = np.interp(grid, centres, u)  # 0 beyond the last centre
    d = x0 - grid[grid < x0]
    u_grid[grid < x0] = u0 + slope * d + 0.5 * WALL_CURVATURE_KT * beta_inv * d ** 2
    return Table(grid, u_grid)
