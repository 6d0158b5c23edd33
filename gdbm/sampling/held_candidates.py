"""Candidates moved onto the CG centres before they are scored (``SamplerConfig.held_candidates``).

A hold after the pass (``hold_centres``) moves the atoms the energy chose, into contacts it never saw. Here each
candidate of a heavy-atom step in a Gibbs sweep is translated, before scoring, so that the centres of the beads
(by the hold mapping) that its atoms belong to sit on their CG input, least squares over those beads with every
other atom where it is: the energy then chooses among held candidates. Hydrogen-only steps are left as they are:
their small share of a bead's mass would need long moves. A pendant group (a phenyl ring on its CH) is not
translated but turned about its own atom of the holding bond (the ipso) until its centre lies on the line to the
target, then moved along that line: a translation would move the ipso sideways and widen the junction angle
(docs/generator-diagnosis.md section 28).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.data.environment import LocalFrames
from gdbm.physics.pendant_pivot import rotate_about
from gdbm.sampling.pendant_turns import holding_bonds
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.topology import Topology
from gdbm.utils.pbc import minimum_image


class HeldCandidates:
    """Moves heavy-atom candidates so that their beads' centres sit on the CG input: translated, or a pendant group
    turned about its own atom of the holding bond and slid along the line to its target."""

    def __init__(self, hold: SystemMapping, heavy: Tensor, pivot_slot: Tensor):
        """``heavy [n_atoms]`` bool; ``pivot_slot [S]``: per plan step, the slot of a pendant group's atom of its
        holding bond (:func:`gdbm.sampling.pendant_turns.holding_bonds`), -1 for other steps."""
        self.pivot_slot = pivot_slot
        atom, bead = hold.membership.T  # [M], [M]
        width = int(torch.bincount(atom, minlength=hold.n_atoms).max())
        self.hold, self.heavy = hold, heavy  # heavy: [n_atoms] bool
        self.bead = torch.full((hold.n_atoms, width), -1, dtype=torch.long)  # [n, W] each atom's beads
        self.coef = torch.zeros(hold.n_atoms, width, dtype=torch.float64)  # [n, W] its share of each centre
        seen = torch.zeros(hold.n_atoms, dtype=torch.long)
        for a, b, c in zip(atom.tolist(), bead.tolist(), hold.coef.tolist()):
            self.bead[a, seen[a]], self.coef[a, seen[a]] = b, c
            seen[a] += 1

    @classmethod
    def of(cls, hold: SystemMapping, top: Topology, step_atoms: Tensor) -> "HeldCandidates":
        """For the plan steps ``step_atoms [S, L]`` of topology ``top``."""
        heavy = torch.tensor([element != "H" for element in top.elements])
        return cls(hold, heavy, holding_bonds(top, step_atoms)[0])

    def __call__(self, local: Tensor, steps: Tensor, step_atoms: Tensor, frames: LocalFrames, frame: Tensor,
                 atoms: Tensor, beads: Tensor, boxes: Tensor) -> Tensor:
        """``local [b, K, L, 3]`` (item frames) moved onto the CG centres; ``steps [b]`` the plan steps,
        ``step_atoms [b, L]`` their atoms (-1 padded), ``frame [b]``; ``atoms [F, n, 3]`` every atom where it is
        now, ``beads [F, n_beads, 3]`` the CG input."""
        b, k, length, _ = local.shape
        valid = (step_atoms >= 0) & self.heavy[step_atoms.clamp(min=0)]  # [b, L]
        if not bool(valid.any()):
            return local
        box = boxes[frame].double()  # [b, 3, 3]
        x = atoms.double()
        off = minimum_image(self.hold.map_positions(x, boxes.double()) - beads.double(), boxes.double())  # [F, nb, 3]
        index = step_atoms.clamp(min=0)
        width = self.bead.shape[1]
        bead = torch.where(valid.unsqueeze(2), self.bead[index], -1).view(b, length * width)  # [b, S]
        coef = torch.where(bead >= 0, self.coef[index].view(b, -1), 0.0)  # [b, S]
        y = frames.to_box(local.reshape(b, k * length, 3)).double().view(b, k, length, 3)
        now = x[frame.unsqueeze(1), index]  # [b, L, 3]
        moved = minimum_image((y - now.unsqueeze(1)).view(b, k * length, 3), box).view(b, k, length, 1, 3)
        moved = moved.expand(b, k, length, width, 3).reshape(b, k, length * width, 3)  # [b, K, S, 3]
        same = (bead.unsqueeze(2) == bead.unsqueeze(1)) & (bead >= 0).unsqueeze(2)  # [b, S, S] slots of one bead
        share = (same.double() * coef.unsqueeze(1)).sum(2)  # [b, S] the step's share of its slot's bead
        per_bead = 1.0 / same.sum(2).clamp(min=1).double() * (bead >= 0)  # [b, S] each bead counted once
        miss = off[frame.unsqueeze(1), bead.clamp(min=0)].unsqueeze(1) + torch.einsum(
            "bst,bkt...->bks...", same.double() * coef.unsqueeze(1), moved)  # [b, K, S, 3] each bead's offset
        weight = (per_bead * share).view(b, 1, -1, 1)
        t = -(weight * miss).sum(2) / (per_bead * share.pow(2)).sum(1).clamp(min=1e-12).view(b, 1, 1)  # [b, K, 3]
        shift = t @ frames.rotation.double().transpose(1, 2)  # [b, K, 3] in the item frames
        shift = torch.where(valid.any(1).view(b, 1, 1), shift, 0.0)
        moved = local.double() + shift.unsqueeze(2)
        slot = self.pivot_slot[steps]  # [b]
        if bool((slot >= 0).any()):
            weight = self.coef[index].sum(-1) * valid  # [b, L] each atom's share of the centres
            moved = torch.where((slot >= 0).view(b, 1, 1, 1),
                                self._pivoted(local.double(), shift, slot.clamp(min=0), weight), moved)
        return moved.to(local.dtype)

    @staticmethod
    def _pivoted(local: Tensor, shift: Tensor, slot: Tensor, weight: Tensor) -> Tensor:
        """Pendant candidates ``local [b, K, L, 3]`` whose weighted centre should move by ``shift [b, K, 3]``:
        turned about the atom in ``slot [b]`` so that the centre points at its target, then moved along that
        line onto it (``weight [b, L]``: each atom's share of the centre)."""
        rows = torch.arange(len(local))
        pivot = local[rows, :, slot].unsqueeze(2)  # [b, K, 1, 3]
        w = (weight / weight.sum(1, keepdim=True).clamp_min(1e-12)).view(len(local), 1, -1, 1)
        centre = (local * w).sum(2, keepdim=True)  # [b, K, 1, 3]
        arm, target = centre - pivot, centre - pivot + shift.unsqueeze(2)  # [b, K, 1, 3]
        axis = torch.linalg.cross(arm, target)
        angle = torch.atan2(axis.norm(dim=-1), (arm * target).sum(-1))  # [b, K, 1]
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        turned = pivot + rotate_about(local - pivot, axis.squeeze(2), angle.squeeze(2))  # [b, K, L, 3]
        along = target / target.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return turned + along * (target.norm(dim=-1, keepdim=True) - arm.norm(dim=-1, keepdim=True))
