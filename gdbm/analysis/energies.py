"""Per-molecule energies for evaluation: LJ split into intra- and intermolecular, bonded per term.

Intermolecular pair energies are shared half and half between the two molecules, so the
per-molecule values sum to the frame total.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.physics.energy import EnergyModel
from gdbm.physics.neighbors import pair_vectors
from gdbm.physics.nonbonded import lj_energy


def molecule_energies(model: EnergyModel, positions: Tensor, boxes: Tensor) -> dict[str, Tensor]:
    """``{name: [F, n_molecules]}`` kJ/mol: bond, angle, proper, improper, lj, lj_intra, lj_inter, total.

    ``lj`` = ``lj_intra + lj_inter`` (non-bonded pairs; [pairs] 1-4 terms count as intramolecular).
    """
    pos = positions.detach().to(torch.float64)
    box = boxes.detach().to(torch.float64)
    terms = model(pos, box, resolution="molecule")
    per_mol = {k: v for k, v in terms.per_molecule.items()}
    top = model.topology
    pairs = model.pair_list(pos, box)
    r2 = (pair_vectors(pos, box, pairs) ** 2).sum(-1)  # [P]
    t = top.lj.atom_type
    e = lj_energy(r2, top.lj.c6[t[pairs.i], t[pairs.j]], top.lj.c12[t[pairs.i], t[pairs.j]])  # [P]
    mol = top.molecule
    mi, mj = mol[pairs.i], mol[pairs.j]
    n_frames, n_mol = pos.shape[0], top.n_molecules
    same = mi == mj
    intra = torch.zeros(n_frames * n_mol, dtype=torch.float64)
    intra.index_add_(0, pairs.frame[same] * n_mol + mi[same], e[same])
    inter = torch.zeros(n_frames * n_mol, dtype=torch.float64)
    other = ~same
    inter.index_add_(0, pairs.frame[other] * n_mol + mi[other], 0.5 * e[other])
    inter.index_add_(0, pairs.frame[other] * n_mol + mj[other], 0.5 * e[other])
    intra = intra.view(n_frames, n_mol)
    # 1-4 [pairs] LJ is part of per_mol["lj"] and intramolecular
    pair_part = per_mol["lj"] - (intra + inter.view(n_frames, n_mol))
    per_mol["lj_intra"] = intra + pair_part
    per_mol["lj_inter"] = inter.view(n_frames, n_mol)
    return per_mol
