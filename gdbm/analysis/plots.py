"""Plots overlaying every evaluated set: distributions per type, RDFs, per-molecule energies.

The ``*_plots`` functions draw one metric's figures into a folder; the metric registry
(:mod:`gdbm.analysis.standard_metrics`) attaches them to their metrics.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from gdbm.analysis.energies import ENERGY_KEYS  # noqa: E402
from gdbm.analysis.forces import plot_bead_forces  # noqa: E402
from gdbm.analysis.histograms import bin_counts, common_range  # noqa: E402
from gdbm.analysis.metrics import Observation  # noqa: E402

FAMILY_TITLES = {"bond": ("all_bonds", "bond length / nm"), "angle": ("all_angles", "angle / deg"),
                 "proper": ("all_dihedrals", "dihedral / deg"), "improper": ("all_impropers", "improper / deg")}
MAX_PANELS = 16
_PLOT_WIDTH = {"bond": 0.001, "angle": 1.0, "proper": 4.0, "improper": 1.0, "energy": 5.0}


def _grid(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _central_range(values: torch.Tensor, width: float) -> tuple[int, int]:
    """Bins covering the central 99% of ``values`` (outliers such as clashes would squash the plot)."""
    v = values.detach().double().flatten()
    v = v[torch.isfinite(v)]
    if v.numel() > 1_000_000:
        v = v[torch.linspace(0, v.numel() - 1, 1_000_000).long()]
    if v.numel() == 0:
        return 0, 1
    lo, hi = torch.quantile(v, torch.tensor([0.005, 0.995], dtype=torch.float64)).tolist()
    return common_range(width, torch.tensor([lo, hi]))


MAX_PLOT_BINS = 4000


def _density_line(ax: plt.Axes, sets: dict[str, torch.Tensor], width: float) -> None:
    """Densities on the bins spanning the central 99% of every set (out-of-range mass stays missing).

    Sets far apart (an untrained model's energies) would need astronomically many bins: the bins
    are widened until at most ``MAX_PLOT_BINS`` span them.
    """
    ranges = [_central_range(v, width) for v in sets.values()]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if hi - lo > MAX_PLOT_BINS:
        width *= math.ceil((hi - lo) / MAX_PLOT_BINS)
        ranges = [_central_range(v, width) for v in sets.values()]
        lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    pad = max((hi - lo) // 20, 2)
    lo, hi = lo - pad, hi + pad
    centres = (torch.arange(lo, hi, dtype=torch.float64) + 0.5) * width
    for k, (name, values) in enumerate(sets.items()):
        counts = bin_counts(values, width, lo, hi)
        density = counts / max(values.numel(), 1) / width
        ax.plot(centres.numpy(), density.numpy(), lw=1.4 if k == 0 else 1.0,
                color="k" if k == 0 else None, label=name)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_family(observations: dict[str, Observation], family: str, path: Path) -> Path:
    """The pooled distribution and each type of one family (bond / angle / proper / improper)."""
    pooled, xlabel = FAMILY_TITLES[family]
    first = next(iter(observations.values()))
    keys = [pooled] + sorted(k for k in first.geometry if k.startswith(f"{family}/"))
    keys = keys[:MAX_PANELS]
    fig, axes = _grid(len(keys))
    for ax, key in zip(axes, keys):
        _density_line(ax, {n: o.geometry[key] for n, o in observations.items() if key in o.geometry},
                      _PLOT_WIDTH[family])
        ax.set_title(key, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_rdfs(observations: dict[str, Observation], path: Path) -> Path:
    """g(r) of all atoms, carbons and each type pair."""
    first = next(iter(observations.values()))
    groups = first.rdf.groups[:MAX_PANELS]
    fig, axes = _grid(len(groups))
    for k, (ax, group) in enumerate(zip(axes, groups)):
        for s, (name, obs) in enumerate(observations.items()):
            ax.plot(obs.rdf.radii().numpy(), obs.rdf.g()[k].numpy(), lw=1.4 if s == 0 else 1.0,
                    color="k" if s == 0 else None, label=name)
        ax.set_title(f"g(r) {group}", fontsize=9)
        ax.set_xlabel("r / nm", fontsize=8)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def plot_energies(observations: dict[str, Observation], path: Path) -> Path:
    """Per-molecule energy distributions (LJ intra / inter / total, bonded terms, total)."""
    first = next(iter(observations.values()))
    keys = [k for k in ENERGY_KEYS if k in first.energies]
    fig, axes = _grid(len(keys))
    for ax, key in zip(axes, keys):
        _density_line(ax, {n: o.energies[key].flatten() for n, o in observations.items()}, _PLOT_WIDTH["energy"])
        ax.set_title(f"{key} energy per molecule", fontsize=9)
        ax.set_xlabel("kJ/mol", fontsize=8)
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def family_plots(observations: dict[str, Observation], directory: Path) -> list[Path]:
    """``bonds.png``, ``angles.png``, ``propers.png``, ``impropers.png``: each family measured."""
    first = next(iter(observations.values()))
    return [plot_family(observations, f, directory / f"{f}s.png") for f in FAMILY_TITLES
            if FAMILY_TITLES[f][0] in first.geometry]


def rdf_plots(observations: dict[str, Observation], directory: Path) -> list[Path]:
    """``rdf.png``."""
    return [plot_rdfs(observations, directory / "rdf.png")]


def energy_plots(observations: dict[str, Observation], directory: Path) -> list[Path]:
    """``energies.png``."""
    return [plot_energies(observations, directory / "energies.png")]


def bead_force_plots(observations: dict[str, Observation], directory: Path) -> list[Path]:
    """``bead_forces.png`` where every set holds bead forces."""
    if any(o.bead_forces is None for o in observations.values()):
        return []
    return [plot_bead_forces({n: o.bead_forces for n, o in observations.items()}, directory / "bead_forces.png")]


MAX_PAIR_BARS = 16


def plot_lj_by_pair(observations: dict[str, Observation], path: Path) -> Path:
    """Each set's LJ per frame minus the first set's (the reference), per atom-type pair: where an excess sits."""
    ref_name, ref = next(iter(observations.items()))
    others = {n: o for n, o in observations.items() if n != ref_name and o.lj_by_pair is not None}
    mean = {n: {k: float(v.mean()) for k, v in o.lj_by_pair.items()} for n, o in {ref_name: ref, **others}.items()}
    keys = sorted({k for m in mean.values() for k in m})
    excess = {n: [mean[n].get(k, 0.0) - mean[ref_name].get(k, 0.0) for k in keys] for n in others}
    order = sorted(range(len(keys)), key=lambda i: -max(abs(e[i]) for e in excess.values()))[:MAX_PAIR_BARS]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.2))
    height = 0.8 / max(1, len(excess))
    for s, (name, values) in enumerate(excess.items()):
        ax.barh([i + s * height for i in range(len(order))], [values[i] for i in order], height, label=name)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(order))], [keys[i] for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"LJ per frame minus {ref_name}'s / kJ/mol", fontsize=8)
    ax.set_title(f"LJ by atom-type pair, the {len(order)} largest differences", fontsize=9)
    if excess:
        ax.legend(fontsize=7)
    return _save(fig, path)


def lj_pair_plots(observations: dict[str, Observation], directory: Path) -> list[Path]:
    """``lj_by_pair.png`` where the sets hold LJ per type pair."""
    first = next(iter(observations.values()))
    if first.lj_by_pair is None or len(observations) < 2:
        return []
    return [plot_lj_by_pair(observations, directory / "lj_by_pair.png")]
