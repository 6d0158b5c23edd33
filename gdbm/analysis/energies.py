"""Energies for evaluation: per molecule (bonded per term, LJ split into intra and inter), and LJ per atom-type pair."""

from __future__ import annotations

import torch
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


def lj_by_type_pair(model: EnergyModel, positions: Tensor, boxes: Tensor,
                    pairs: PairList | None = None) -> dict[str, Tensor]:
    """``{"A-B intra" | "A-B inter": [F]}``: each frame's LJ energy, kJ/mol, summed per pair of atom types.

    Says where an LJ excess sits (e.g. hydrogens of neighbouring molecules); keys are the two
    atom types in sorted order and whether the atoms share a molecule. Only pairs present in some
    frame are listed.
    """
    top = model.topology
    names = sorted(set(top.types))
    code = torch.tensor([names.index(t) for t in top.types], device=positions.device)  # [n]
    found, lj = model.lj_pairs(positions, boxes, pairs)  # [P]
    a, b = code[found.i], code[found.j]
    inter = (top.molecule.to(positions.device)[found.i] != top.molecule.to(positions.device)[found.j]).long()
    key = (torch.minimum(a, b) * len(names) + torch.maximum(a, b)) * 2 + inter  # [P]
    n_keys, n_frames = 2 * len(names) ** 2, positions.shape[0]
    sums = torch.zeros(n_frames * n_keys, dtype=torch.float64, device=positions.device)
    sums.index_add_(0, found.frame * n_keys + key, lj.to(torch.float64))
    present = torch.zeros(n_keys, dtype=torch.bool, device=positions.device)
    present[key] = True
    table = sums.view(n_frames, n_keys)
    out = {}
    for k in torch.nonzero(present).squeeze(-1).tolist():
        pair, side = divmod(k, 2)
        out[f"{names[pair // len(names)]}-{names[pair % len(names)]} {('intra', 'inter')[side]}"] = table[:, k]
    return out
