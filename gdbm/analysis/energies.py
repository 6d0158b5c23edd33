"""Energies for evaluation: per molecule (bonded per term, LJ split into intra and inter), and LJ per atom-type pair."""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.physics.energy import EnergyModel
from gdbm.physics.neighbors import PairList
from gdbm.topology.topology import Topology

ENERGY_KEYS = ("bond", "angle", "proper", "improper", "lj", "lj_intra", "lj_inter", "total")


def molecule_energies(model: EnergyModel, positions: Tensor, boxes: Tensor,
                      pairs: PairList | None = None) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``{name: [F, n_molecules]}`` kJ/mol for every name of :data:`ENERGY_KEYS`, and the frames' LJ
    per atom-type pair (:func:`lj_by_type_pair`), from one evaluation.

    Intermolecular LJ is shared half and half between the two molecules, so per-molecule
    values sum to the frame totals. ``pairs``: candidate image pairs from an earlier search.
    """
    terms = model(positions.detach(), boxes.detach(), "molecule", pairs, pair_lj=True)
    found, lj = terms.pair_lj
    return {k: terms.per_molecule[k] for k in ENERGY_KEYS}, lj_by_type_pair(model.topology, found, lj, positions.shape[0])


def lj_by_type_pair(top: Topology, pairs: PairList, lj: Tensor, n_frames: int) -> dict[str, Tensor]:
    """``{"A-B intra" | "A-B inter": [F]}``: each frame's LJ energy, kJ/mol, summed per pair of atom types.

    ``pairs`` / ``lj [P]``: the non-excluded pairs and their energies (``EnergyModel(..., pair_lj=True)``).
    Says where an LJ excess sits (e.g. hydrogens of neighbouring molecules); keys are the two
    atom types in sorted order and whether the atoms share a molecule. Only pairs present in some
    frame are listed.
    """
    names = sorted(set(top.types))
    code = torch.tensor([names.index(t) for t in top.types], device=lj.device)  # [n]
    molecule = top.molecule.to(lj.device)
    a, b = code[pairs.i], code[pairs.j]
    inter = (molecule[pairs.i] != molecule[pairs.j]).long()
    key = (torch.minimum(a, b) * len(names) + torch.maximum(a, b)) * 2 + inter  # [P]
    n_keys = 2 * len(names) ** 2
    sums = torch.zeros(n_frames * n_keys, dtype=torch.float64, device=lj.device)
    sums.index_add_(0, pairs.frame * n_keys + key, lj.to(torch.float64))
    table = sums.view(n_frames, n_keys)
    out = {}
    for k in torch.unique(key).tolist():
        pair, side = divmod(k, 2)
        out[f"{names[pair // len(names)]}-{names[pair % len(names)]} {('intra', 'inter')[side]}"] = table[:, k]
    return out
