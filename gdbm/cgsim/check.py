"""The CG-level check of a CG run: its bonded distributions and pair RDFs against the mapped reference.

What a structure-based CG model is fitted to reproduce (thesis Fig. 6.2): JSD of every bonded
distribution per type tuple (the bins of ``gdbm eval``: 0.001 nm, 1 degree, 2 degrees) and the
mean absolute error of every type-pair ``g(r)``, plus one figure overlaying both sets.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from gdbm.analysis.histograms import jsd  # noqa: E402
from gdbm.utils.atomic_files import atomic_path  # noqa: E402
from gdbm.cgsim.forcefield import CGForceField, bonded_samples, bonded_tuples, type_pair_rdfs  # noqa: E402
from gdbm.data.trajectory import Frames  # noqa: E402
from gdbm.topology.topology import Topology  # noqa: E402

JSD_WIDTH = {"bond": 0.001, "angle": math.radians(1.0), "dihedral": math.radians(2.0)}
PLOT_BINS = {"bond": 0.002, "angle": math.radians(2.0), "dihedral": math.radians(5.0)}


def _distributions(top: Topology, frames: Frames) -> dict[str, torch.Tensor]:
    tuples = bonded_tuples(top.connectivity, top.n_atoms)
    out = {}
    for kind, index in tuples.items():
        for key, values in bonded_samples(top, frames, kind, index).items():
            out[f"{kind}/{key}"] = values
    return out


def compare_cg(top: Topology, ff: CGForceField, reference: Frames, simulated: Frames
               ) -> tuple[dict[str, float], dict]:
    """``(metrics, curves)``: JSD per bonded distribution and g(r) MAE per type pair; the raw data for plots."""
    ref_d, sim_d = _distributions(top, reference), _distributions(top, simulated)
    metrics = {f"jsd/{k}": jsd(v, sim_d[k], JSD_WIDTH[k.split("/")[0]]) for k, v in ref_d.items()}
    n_types = len(ff.type_names)
    edges, g_ref = type_pair_rdfs(reference, ff.type_index, n_types, ff.exclusions, ff.cutoff)
    _, g_sim = type_pair_rdfs(simulated, ff.type_index, n_types, ff.exclusions, ff.cutoff)
    for (a, b), g in g_ref.items():
        metrics[f"rdf_mae/{ff.type_names[a]}-{ff.type_names[b]}"] = float(np.abs(g - g_sim[(a, b)]).mean())
    return metrics, {"ref": ref_d, "sim": sim_d, "edges": edges, "g_ref": g_ref, "g_sim": g_sim}


def plot_cg_check(curves: dict, type_names: list[str], path: str | Path, force: bool = False) -> Path:
    """One panel per bonded distribution and per type-pair g(r): reference vs CG simulation."""
    keys = list(curves["ref"])
    pairs = list(curves["g_ref"])
    n = len(keys) + len(pairs)
    cols = 4
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, key in zip(flat, keys):
        kind = key.split("/")[0]
        scale = 1.0 if kind == "bond" else 180.0 / math.pi
        ref, sim = curves["ref"][key].numpy() * scale, curves["sim"][key].numpy() * scale
        lo, hi = min(ref.min(), sim.min()), max(ref.max(), sim.max())
        bins = np.arange(lo, hi + PLOT_BINS[kind] * scale, PLOT_BINS[kind] * scale)
        ax.hist(ref, bins, density=True, histtype="step", label="mapped reference")
        ax.hist(sim, bins, density=True, histtype="step", label="CG simulation")
        ax.set_title(key, fontsize=8)
        ax.set_xlabel("nm" if kind == "bond" else "deg", fontsize=7)
    centres = 0.5 * (curves["edges"][1:] + curves["edges"][:-1])
    for ax, (a, b) in zip(flat[len(keys):], pairs):
        ax.plot(centres, curves["g_ref"][(a, b)], label="mapped reference")
        ax.plot(centres, curves["g_sim"][(a, b)], label="CG simulation")
        ax.set_title(f"g(r) {type_names[a]}-{type_names[b]}", fontsize=8)
        ax.set_xlabel("r / nm", fontsize=7)
    for ax in flat[n:]:
        ax.set_visible(False)
    flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, force) as tmp:
        fig.savefig(tmp, dpi=90, format=path.suffix.lstrip("."))
    plt.close(fig)
    return path
