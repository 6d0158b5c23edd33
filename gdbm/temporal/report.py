"""The temporal evaluation report: metrics.json, summary.md and plots (energies, phi/psi free-energy
surfaces, intra-frame velocities, implied timescales)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gdbm.utils.atomic_files import atomic_path, write_text  # noqa: E402
from gdbm.temporal.metrics import free_energy  # noqa: E402

COLUMNS = [("frames", "frames"), ("energy_mean", "E mean kJ/mol"), ("energy_std", "E std"),
           ("energy_jsd", "E JSD"), ("fes_jsd", "phi/psi JSD"), ("torsion_jsd", "torsions JSD"),
           ("velocity_mean", "v mean nm/ps"), ("velocity_jsd", "v JSD"), ("velocity_jsd_heavy", "v JSD heavy"),
           ("velocity_jsd_hydrogen", "v JSD H")]


def _fmt(v) -> str:
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return ", ".join(f"{x:.0f}" for x in v)
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.1f}"


def markdown(metrics: dict) -> str:
    cols = COLUMNS + ([("timescales_ps", "MSM timescales ps")] if "timescales_ps" in metrics["reference"] else [])
    lines = ["| set | " + " | ".join(c for _, c in cols) + " |", "| --- " * (len(cols) + 1) + "|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m[k]) for k, _ in cols) + " |")
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _histogram(ax, values: dict[str, torch.Tensor], width: float, xlabel: str, log: bool = False) -> None:
    """Step histograms on the reference's central range widened by its own span on each side (a set's
    outliers, e.g. clashes at 1e6 kJ/mol, fall outside; the legend says how many)."""
    ref = values["reference"].double().flatten().numpy()
    q_lo, q_hi = np.quantile(ref, [0.001, 0.999])
    span = q_hi - q_lo
    lo = q_lo - span if ref.min() < 0 else max(0.0, q_lo - span)  # speeds stay >= 0
    bins = np.arange(math.floor(lo / width) * width, q_hi + span + width, width)
    for name, v in values.items():
        v = v.double().flatten().numpy()
        outside = np.mean((v < bins[0]) | (v > bins[-1]))
        label = name + (f" ({100 * outside:.1f}% outside)" if outside > 0 else "")
        ax.hist(v, bins=bins, density=True, histtype="step", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)


def plots(observations: dict, metrics: dict, out: Path, temperature: float) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 3.5))
    _histogram(ax, observations["energies"], 2.0, "potential energy / kJ/mol")
    paths.append(_save(fig, out / "energies.png"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    _histogram(axes[0], observations["velocities"], 0.01, "intra-frame velocity |dr|/tau / nm/ps")
    _histogram(axes[1], observations["velocities"], 0.01, "intra-frame velocity |dr|/tau / nm/ps", log=True)
    paths.append(_save(fig, out / "velocities.png"))
    names = list(observations["fes"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False, sharey=True)
    for k, (ax, name) in enumerate(zip(axes[0], names)):
        f = free_energy(observations["fes"][name], temperature).numpy()
        im = ax.imshow(np.where(np.isfinite(f), f, np.nan).T, origin="lower", extent=(-180, 180, -180, 180),
                       vmin=0, vmax=25, cmap="viridis")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("phi / deg")
        if k == 0:
            ax.set_ylabel("psi / deg")
    fig.colorbar(im, ax=axes[0].tolist(), label="F / kJ/mol")
    paths.append(_save(fig, out / "fes.png"))
    if "timescales_ps" in metrics["reference"]:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for k, name in enumerate(metrics):
            ts = metrics[name]["timescales_ps"]
            ax.scatter(np.arange(1, len(ts) + 1) + 0.1 * k, ts, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("process")
        ax.set_ylabel("implied timescale / ps")
        ax.legend(fontsize=8)
        paths.append(_save(fig, out / "timescales.png"))
    return paths


def write_report(metrics: dict, observations: dict, out: str | Path, temperature: float, header: str = "",
                 force: bool = False) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n", force)
    plots(observations, metrics, out, temperature)
    return write_text(out / "summary.md", header + markdown(metrics), force)
