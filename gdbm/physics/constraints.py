"""Bond-length constraints: project positions so every bond has its equilibrium length.

Many reference simulations constrain bonds (LINCS/SHAKE; the sPS data's bonds scatter by
0.0004 nm around ``b0``, the ``.gro`` precision). A generator that lets bonds breathe by
0.005 nm is then measurably wrong in every bond histogram, whatever else it gets right. This
is the step an MD engine applies to a new structure before its first step: move each bonded
pair along its bond, inversely to the masses, until ``|d| = b0`` everywhere. Mass weighting
keeps each molecule's centre of mass where it was (and so, nearly, its CG beads).

Jacobi iteration of the pairwise corrections (each atom's corrections averaged over its
bonds, then applied together), vectorised over all bonds of all frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.utils.pbc import minimum_image
from gdbm.topology.topology import Topology


def bond_constraints(top: Topology) -> tuple[Tensor, Tensor]:
    """The constrained pairs ``[m, 2]`` and their lengths ``[m]`` nm: every harmonic-type bond's ``b0``."""
    pairs, lengths = [], []
    for kind, term in top.terms.items():
        if kind.startswith("bond") and "b0" in term.params:
            pairs.append(term.index)
            lengths.append(term.params["b0"])
    if not pairs:
        return torch.zeros(0, 2, dtype=torch.long), torch.zeros(0, dtype=torch.float64)
    return torch.cat(pairs), torch.cat(lengths)


def constrain_bonds(positions: Tensor, boxes: Tensor, top: Topology, tolerance: float = 1e-5,
                    max_iterations: int = 1000, stretch: float | None = None) -> tuple[Tensor, float]:
    """Positions ``[F, n, 3]`` with every bond at ``b0`` (to ``tolerance`` nm), and the largest deviation left.

    ``stretch`` (nm): instead, only the bonds longer than ``b0 + stretch`` are shortened to that length, the
    rest left as they are (a cap on a generator's rare broken bonds that keeps its bond-length spread).
    Works in float64 and returns the input dtype. Raises nothing when ``max_iterations`` is
    reached: the returned deviation says how far it got.
    """
    pairs, b0 = bond_constraints(top)
    if len(pairs) == 0:
        return positions, 0.0
    x = positions.to(torch.float64).clone()
    box = boxes.to(torch.float64)  # [F, 3, 3]
    i, j = pairs[:, 0], pairs[:, 1]
    inv_mass = 1.0 / top.masses.to(torch.float64)  # [n]
    share_i = (inv_mass[i] / (inv_mass[i] + inv_mass[j])).view(1, -1, 1)  # [1, m, 1]
    count = torch.bincount(pairs.flatten(), minlength=top.n_atoms).clamp_min(1).to(torch.float64).view(1, -1, 1)
    worst = float("inf")
    for _ in range(max_iterations):
        d = minimum_image(x[:, j] - x[:, i], box)  # [F, m, 3]
        length = d.norm(dim=-1, keepdim=True)  # [F, m, 1]
        error = length - b0.view(1, -1, 1)
        if stretch is not None:
            error = (error - stretch).clamp_min(0)  # [F, m, 1] only the bonds beyond the cap
        worst = float(error.abs().max())
        if worst < tolerance:
            break
        correction = error / length.clamp_min(1e-9) * d  # move i towards j by share_i of it, j the rest
        shift = torch.zeros_like(x)
        shift.index_add_(1, i, share_i * correction)
        shift.index_add_(1, j, -(1 - share_i) * correction)
        x += shift / count
    return x.to(positions.dtype), worst
