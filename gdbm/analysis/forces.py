"""AA forces projected onto CG beads (thesis Eq. 6.3) and their distributions per bead type.

``F_I = sum_i s_iI f_i``: the force-field force ``f_i = -dE/dx_i`` of every atom of bead ``I``,
summed. The share ``s_iI`` is the mapping's weight of the atom in the bead, ``w_iI / max(1,
sum_J w_iJ)``: 1 for an atom wholly in one bead; where a mapping shares an atom between beads
(the sPS backbone CH, half in each neighbouring backbone bead) its force is split by the
weights, and an atom only partly mapped (the CH next to the sPS chain end, half in one bead
and half in none) counts with its weight, like the atoms in no bead, which add nothing. No
atom's force is counted more than once in total, and where every atom is wholly mapped the
bead forces of a molecule add up to its net force.
Backmapped frames with steric clashes show up as a long tail of large ``|F_I|`` (Sec. 6.2.2).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from gdbm.physics.energy import EnergyModel, energy_and_forces  # noqa: E402
from gdbm.topology.mapping import SystemMapping  # noqa: E402

FORCE_WIDTH = 20.0  # kJ/mol/nm, bins of the |F_I| distributions (JSD and plot)
POOLED = "all"


def atom_shares(mapping: SystemMapping) -> Tensor:
    """``[M]`` float64: each (atom, bead) membership's share of the atom's force (an atom's shares sum to <= 1)."""
    atoms = mapping.membership[:, 0]
    total = torch.zeros(mapping.n_atoms, dtype=torch.float64).index_add_(0, atoms, mapping.weights)
    return mapping.weights / total[atoms].clamp(min=1.0)


def project_forces(forces: Tensor, mapping: SystemMapping) -> Tensor:
    """Bead forces ``[F, n_beads, 3]`` from atom forces ``[F, n_atoms, 3]`` (Eq. 6.3, shared atoms by share)."""
    atoms, beads = mapping.membership[:, 0], mapping.membership[:, 1]
    share = atom_shares(mapping).to(forces.dtype)  # [M]
    contributions = forces[:, atoms] * share.view(1, -1, 1)  # [F, M, 3]
    out = torch.zeros(forces.shape[0], mapping.n_beads, 3, dtype=forces.dtype, device=forces.device)
    return out.index_add_(1, beads, contributions)


def bead_force_magnitudes(model: EnergyModel, mapping: SystemMapping, positions: Tensor, boxes: Tensor
                          ) -> dict[str, Tensor]:
    """``|F_I|`` (kJ/mol/nm) of every bead of ``positions [F, n, 3]``, flat per bead type and pooled."""
    _, forces = energy_and_forces(model, positions.double(), boxes.double())
    magnitude = project_forces(forces, mapping).norm(dim=-1)  # [F, n_beads]
    types = np.asarray(mapping.bead_types)
    out = {POOLED: magnitude.flatten()}
    for name in sorted(set(mapping.bead_types)):
        out[name] = magnitude[:, torch.from_numpy(types == name)].flatten()
    return out


def plot_bead_forces(sets: dict[str, dict[str, Tensor]], path: Path) -> Path:
    """``|F_I|`` distributions per bead type (one panel each, pooled first), every set on shared log-log axes.

    Bins are logarithmic: clashes give forces orders of magnitude above the reference's, and
    their tail is the point of the plot (thesis Fig. 6.5). The y axis is the fraction of beads
    per bin.
    """
    first = next(iter(sets.values()))
    keys = [POOLED] + [k for k in first if k != POOLED]
    values = [v[k] for v in sets.values() for k in keys if k in v and v[k].numel()]
    top = max(float(v.max()) for v in values)
    low = max(min(float(v[v > 0].min()) for v in values if (v > 0).any()), 1e-3)
    edges = np.logspace(np.log10(low), np.log10(top) + 1e-6, 60)
    centres = np.sqrt(edges[1:] * edges[:-1])
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.0), sharex=True, sharey=True, squeeze=False)
    for ax, key in zip(axes[0], keys):
        for s, (name, per_type) in enumerate(sets.items()):
            if key not in per_type:
                continue
            counts = np.histogram(per_type[key].numpy(), edges)[0] / max(per_type[key].numel(), 1)
            ax.step(centres, np.where(counts > 0, counts, np.nan), where="mid", lw=1.4 if s == 0 else 1.0,
                    color="k" if s == 0 else None, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"|F| of {key} beads" if key != POOLED else "|F| of all beads", fontsize=9)
        ax.set_xlabel("kJ/mol/nm", fontsize=8)
    axes[0][0].set_ylabel("fraction of beads", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
