"""Geometric first guess of the baseline: each atom at the weighted average of its beads.

Wassenaar et al.'s generic placement (thesis Sec. 2.4.2 and 5.1.3): an atom that belongs to
several beads (the sPS backbone CH shared half/half) sits between them, weighted by its
mapping weights normalised per atom; an atom of one bead sits on it. A seeded random
displacement then separates atoms placed on the same point.

Geometric modifiers: rings inside one bead start as regular polygons with their
substituents outside ("out"; :mod:`gdbm.baselines.rings`). Not implemented: "cis", "trans"
and "chiral", so stereo centres (the tacticity of sPS) come out at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gdbm.baselines.rings import RingTemplate, ring_template
from gdbm.utils.errors import InputError
from gdbm.topology.mapping import SystemMapping, minimum_image


@dataclass
class Placement:
    """Per atom, the beads it is placed between: rows (atom, bead, weight), weights summing to 1 per atom.

    ``anchor`` is the bead each atom's offsets are measured from (its home bead), so that beads
    wrapped into the box one by one are first brought to the anchor's periodic image.
    """

    atom: Tensor  # [P] long
    bead: Tensor  # [P] long
    weight: Tensor  # [P] float64
    anchor: Tensor  # [n_atoms] long
    rings: RingTemplate

    @property
    def n_atoms(self) -> int:
        return len(self.anchor)


def placement(mapping: SystemMapping, connectivity: Tensor) -> Placement:
    """The placement rule of ``mapping``; atoms it leaves out go to a bonded neighbour's home bead.

    A partial mapping (one made for computing bead positions, like ``PS1_cg_fritz.map``) has no
    bead for some atoms; they inherit the home bead of the nearest mapped atom along the bonds
    (``connectivity [b, 2]``). An atom whose weights are all zero is placed on its home bead.
    """
    home = _inherited_home(mapping.home_bead, connectivity)  # [n_atoms]
    atom, bead = mapping.membership.T  # [M], [M]
    total = torch.zeros(mapping.n_atoms, dtype=torch.float64).index_add_(0, atom, mapping.weights)  # [n_atoms]
    weighted = mapping.weights > 0  # [M]
    alone = torch.nonzero(total == 0).flatten()  # atoms without a positive weight: on the home bead
    weight = torch.cat([mapping.weights[weighted] / total[atom[weighted]], torch.ones(len(alone), dtype=torch.float64)])
    atom = torch.cat([atom[weighted], alone])  # [P]
    bead = torch.cat([bead[weighted], home[alone]])  # [P]
    rows = torch.zeros(mapping.n_atoms, dtype=torch.long).index_add_(0, atom, torch.ones_like(atom))  # [n_atoms]
    single_bead = torch.full_like(home, -1).scatter_(0, atom, bead)
    single_bead = torch.where(rows == 1, single_bead, -1)  # [n_atoms]
    return Placement(
        atom=atom, bead=bead, weight=weight, anchor=home, rings=ring_template(single_bead, connectivity))


def _inherited_home(home: Tensor, connectivity: Tensor) -> Tensor:
    """Home beads with the unmapped atoms (-1) filled from bonded neighbours, one bond shell per round."""
    home = home.clone()
    i, j = torch.cat([connectivity, connectivity.flip(1)]).T  # both directions
    while bool((home < 0).any()):
        give = (home[i] < 0) & (home[j] >= 0)  # [2b]
        if not bool(give.any()):
            lost = (torch.nonzero(home < 0).flatten() + 1).tolist()
            raise InputError(f"atoms {lost[:10]}{' ...' if len(lost) > 10 else ''} are in no bead and bonded to no "
                             "mapped atom, so the baseline cannot place them; map them in the mapping file")
        # the largest neighbouring home bead wins, so the result does not depend on bond order
        filled = torch.full_like(home, -1).scatter_reduce(0, i[give], home[j[give]], "amax")
        home = torch.where(home < 0, filled, home)
    return home


def place_atoms(rule: Placement, beads: Tensor, boxes: Tensor) -> Tensor:
    """Atom positions ``[F, n_atoms, 3]`` (float64) from bead positions ``[F, n_beads, 3]`` in boxes ``[F, 3, 3]``."""
    beads, boxes = beads.double(), boxes.double()
    anchor = beads[:, rule.anchor[rule.atom]]  # [F, P, 3]
    offset = minimum_image(beads[:, rule.bead] - anchor, boxes)  # [F, P, 3]
    shift = torch.zeros(beads.shape[0], rule.n_atoms, 3, dtype=torch.float64)
    shift.index_add_(1, rule.atom, rule.weight.unsqueeze(-1) * offset)  # [F, n_atoms, 3]
    return beads[:, rule.anchor] + shift


def first_guess(rule: Placement, beads: Tensor, box: Tensor, displacement: float, seed: int,
                frame: int) -> np.ndarray:
    """The randomised start ``[n_atoms, 3]`` (nm) of one frame: placement, ring layout, Gaussian noise.

    ``displacement`` is the standard deviation per coordinate (nm). Seeded by ``(seed, frame)``
    so that a frame's start depends neither on the other frames nor on the number of workers.
    """
    rng = np.random.default_rng([seed, frame])
    box = box.double()
    positions = place_atoms(rule, beads.unsqueeze(0), box.unsqueeze(0))[0]  # [n_atoms, 3]
    positions[rule.rings.atom] += rule.rings.offsets(positions, box, rng)
    return positions.numpy() + rng.normal(0.0, displacement, size=positions.shape)
