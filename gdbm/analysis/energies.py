"""Per-molecule energies for evaluation: bonded per term, LJ split into intra and inter."""

from __future__ import annotations

from torch import Tensor

from gdbm.physics.energy import EnergyModel
from gdbm.physics.neighbors import PairList

ENERGY_KEYS = ("bond", "angle", "proper", "improper", "lj", "lj_intra", "lj_inter", "total")


def molecule_energies(model: EnergyModel, positions: Tensor, boxes: Tensor,
                      pairs: PairList | None = None) -> dict[str, Tensor]:
    """``{name: [F, n_molecules]}`` kJ/mol for every name of :data:`ENERGY_KEYS`.

    Intermolecular LJ is shared half and half between the two molecules, so per-molecule
    values sum to the frame totals. ``pairs``: candidate image pairs from an earlier search.
    """
    terms = model(positions.detach(), boxes.detach(), "molecule", pairs)
    return {k: terms.per_molecule[k] for k in ENERGY_KEYS}
