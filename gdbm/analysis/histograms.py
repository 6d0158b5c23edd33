"""Histograms on fixed bins anchored at zero, and the Jensen-Shannon divergence between them.

Bins are ``[k w, (k + 1) w)`` for integer ``k``: two sets of values are always binned on the
same grid, whatever their ranges, so divergences are comparable across runs and methods.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LN2 = math.log(2.0)


def bin_counts(values: Tensor, width: float, lo: int, hi: int) -> Tensor:
    """Counts of ``values`` in bins ``lo..hi-1`` (bin k covers ``[k w, (k+1) w)``), float64."""
    k = torch.floor(values.detach().double().flatten() / width).long() - lo  # [n]
    k = k[(k >= 0) & (k < hi - lo)]
    return torch.bincount(k, minlength=hi - lo).double()


def common_range(width: float, *value_sets: Tensor) -> tuple[int, int]:
    """The bin range ``[lo, hi)`` covering every finite value of every set."""
    finite = [v.detach().double().flatten() for v in value_sets]
    finite = [v[torch.isfinite(v)] for v in finite if v.numel()]
    finite = [v for v in finite if v.numel()]
    if not finite:
        return 0, 1
    lo = min(math.floor(float(v.min()) / width) for v in finite)
    hi = max(math.floor(float(v.max()) / width) for v in finite) + 1
    return lo, hi


def jsd_from_counts(p: Tensor, q: Tensor) -> float:
    """Jensen-Shannon divergence (natural log, 0..ln 2) of two count vectors on the same bins."""
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: Tensor) -> Tensor:
        mask = a > 0
        return (a[mask] * torch.log(a[mask] / m[mask])).sum()

    return float(0.5 * kl(p) + 0.5 * kl(q))


def jsd(a: Tensor, b: Tensor, width: float) -> float:
    """Jensen-Shannon divergence of two samples histogrammed on zero-anchored bins of ``width``.

    Only occupied bins are materialised, so an outlier far out (a clash with an LJ energy
    of 1e9 kJ/mol) costs nothing: empty bins contribute nothing to the divergence.
    """
    ka = torch.floor(a.detach().double().flatten() / width)
    kb = torch.floor(b.detach().double().flatten() / width)
    ka, kb = ka[torch.isfinite(ka)], kb[torch.isfinite(kb)]
    occupied, which = torch.unique(torch.cat([ka, kb]), return_inverse=True)
    n_bins = occupied.numel()
    return jsd_from_counts(torch.bincount(which[:ka.numel()], minlength=n_bins).double(),
                           torch.bincount(which[ka.numel():], minlength=n_bins).double())
