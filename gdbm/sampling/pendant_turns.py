"""Turned copies of a pendant step's candidates, so that the energy chooses the group's turn from all of them
(``SamplerConfig.pendant_turns``).

A step that places a group of heavy atoms hanging off the placed molecule by one bond (sPS: a phenyl ring on
its CH) fixes the group's turn about that bond with its candidates. The voxel generator has not learnt the
turn: a ring step's candidates spread over about 60 degrees per ring, at a turn set by the random rotation of
its input, so the lowest-energy one is often a poor turn (docs/generator-diagnosis.md, section 24). Each
candidate here gets ``copies - 1`` copies turned rigidly about the holding bond by whole fractions of a turn
(360 / copies degrees apart), before the candidates are scored: the energy then sees every turn. The copies keep
every bond length and angle of the candidate; only the dihedrals across the holding bond differ. It uses only
the topology.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gdbm.physics.pendant_pivot import rotate_about
from gdbm.topology.topology import Topology


def holding_bonds(top: Topology, step_atoms: Tensor) -> tuple[Tensor, Tensor]:
    """Per plan step ``step_atoms [S, L]`` (-1 padded) that places a pendant group (three or more heavy atoms,
    one bond to other heavy atoms): the slot of the group's atom of that bond ``[S]`` and the atom it hangs on
    ``[S]``; -1 for every other step (a single atom or a pair on the axis has no turn)."""
    heavy = [element != "H" for element in top.elements]
    neighbours = top.bonded_neighbours()
    inner, outer = [], []
    for atoms in step_atoms.tolist():
        group = {a for a in atoms if a >= 0 and heavy[a]}
        leaving = [(a, b) for a in group for b in neighbours[a] if heavy[b] and b not in group]
        turnable = len(group) >= 3 and len(leaving) == 1
        inner.append(atoms.index(leaving[0][0]) if turnable else -1)
        outer.append(leaving[0][1] if turnable else -1)
    return torch.tensor(inner, dtype=torch.long), torch.tensor(outer, dtype=torch.long)


class PendantHolds:
    """Per plan step, the bond that holds its heavy atoms (:func:`holding_bonds`), and where that bond sits in a
    step's candidates: the base of the copy makers that turn a pendant group about it."""

    def __init__(self, top: Topology, step_atoms: Tensor):
        self.inner, self.outer = holding_bonds(top, step_atoms)

    def turnable(self, steps: Tensor) -> bool:
        """Whether any of the plan steps ``steps [B]`` places a pendant group."""
        return bool((self.inner[steps] >= 0).any())

    def holding_bond(self, local: Tensor, steps: Tensor, context_atom: Tensor,
                     context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """For candidates ``local [B, K, L, 3]`` of plan steps ``steps [B]`` among environment atoms ``context_atom
        [B, P]`` (-1 for beads) at ``context [B, P, 3]`` (same frame): ``held [B]`` (the step is pendant and the
        atom it hangs on is placed), the group's atom of the bond ``pivot [B, K, 3]`` and the bond's unit direction
        from the placed atom ``bond [B, K, 3]`` (meaningless where not held)."""
        inner, outer = self.inner[steps], self.outer[steps]  # [B]
        found = (context_atom == outer.unsqueeze(1)) & (outer.unsqueeze(1) >= 0)  # [B, P]
        rows = torch.arange(len(local))
        anchor = context[rows, found.to(torch.uint8).argmax(1)]  # [B, 3] (any row where none is found)
        pivot = local[rows, :, inner.clamp(min=0)]  # [B, K, 3]
        bond = pivot - anchor.unsqueeze(1)
        return found.any(1), pivot, bond / bond.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class PendantTurns(PendantHolds):
    """Per plan step, the bond that holds its heavy atoms, and the turned copies of its candidates."""

    def __init__(self, top: Topology, step_atoms: Tensor, copies: int):
        """``step_atoms [S, L]`` (-1 padded): the plan's steps; ``copies``: versions of each candidate (>= 2)."""
        if copies < 2:
            raise ValueError(f"copies must be at least 2, not {copies}")
        super().__init__(top, step_atoms)
        self.copies = copies

    def __call__(self, local: Tensor, steps: Tensor, context_atom: Tensor, context: Tensor) -> Tensor:
        """``[B, K * copies, L, 3]``: candidates ``local [B, K, L, 3]`` of plan steps ``steps [B]`` and their
        turned copies (copy ``c`` of candidate ``k`` at ``c * K + k``; copy 0 is the candidate). The items'
        environment atoms ``context_atom [B, P]`` (-1 for beads) sit at ``context [B, P, 3]`` (same frame); an item
        whose step is not pendant, or whose holding atom is not placed yet, gets unturned copies."""
        b, k, length, _ = local.shape
        angles = torch.arange(self.copies, dtype=local.dtype) * (2 * math.pi / self.copies)  # [C]
        held, pivot, axis = self.holding_bond(local, steps, context_atom, context)  # [B], [B, K, 3] x2
        arms = (local - pivot.unsqueeze(2)).unsqueeze(1).expand(b, self.copies, k, length, 3)
        turned = pivot.view(b, 1, k, 1, 3) + rotate_about(arms, axis.unsqueeze(1).expand(b, self.copies, k, 3),
                                                          angles.view(1, -1, 1).expand(b, -1, k))  # [B, C, K, L, 3]
        out = torch.where(held.view(b, 1, 1, 1, 1), turned, local.unsqueeze(1))
        return out.reshape(b, self.copies * k, length, 3)
