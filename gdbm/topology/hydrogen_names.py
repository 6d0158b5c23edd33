"""Which of a carbon's equivalent hydrogens carries which name: the naming the training frames use.

A CH2 or CH3 has two or three hydrogens of one type, interchangeable in every energy, but a topology names
each, and the names follow a convention in the reference data: seen from the carbon, the first heavy
neighbour and the first two named hydrogens turn one way in every sPS training and test frame (396 groups,
all of them). Diastereotopic hydrogens (a CH2 in a chain of stereocentres) are told apart by NMR, and labelled
analyses and the force field's labelled dihedral terms (sPS: H1-C2-C5-C18, C133-C146-C149-H148) read the names;
a mapping may weigh them differently (the sPS CG map counts H148 in its end bead and not H162). A generator
that places a group's hydrogens as a set gets the names right half of the time (docs/generator-diagnosis.md,
section 25). Renaming them moves no atom of the set: two identical hydrogens trade places.

A CH3 turns in MD (a barrier of about 12 kJ/mol), so each of its named hydrogens visits all three sites; a
generator places the first name on one site every time. Turning the three names by a random 0, 1 or 2 places
(their cyclic order, the naming, kept) gives each name every site.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.utils.pbc import minimum_image
from gdbm.topology.topology import Topology


def equivalent_hydrogens(top: Topology) -> Tensor:
    """``[g, 5]`` rows ``(carbon, heavy, h1, h2, h3)``: atoms with four bonded neighbours of which two or three are
    terminal hydrogens of one type, charge and mass (``h3 = -1`` for two), ``heavy`` its first heavy neighbour."""
    neighbours = top.bonded_neighbours()
    rows = []
    for atom, around in enumerate(neighbours):
        if len(around) != 4:
            continue
        hydrogens = sorted(k for k in around if top.elements[k] == "H" and len(neighbours[k]) == 1)
        heavy = sorted(k for k in around if k not in hydrogens)
        if len(hydrogens) not in (2, 3) or not heavy:
            continue
        if len({(top.types[k], float(top.charges[k]), float(top.masses[k])) for k in hydrogens}) != 1:
            continue  # not interchangeable: names carry physics
        rows.append([atom, heavy[0], *hydrogens, *([-1] if len(hydrogens) == 2 else [])])
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 5)


def naming(positions: Tensor, boxes: Tensor, groups: Tensor) -> Tensor:
    """``[F, g]`` +1 / -1 (0 when planar): the sign of ``(heavy - c) . ((h1 - c) x (h2 - c))`` per group's carbon
    ``c``, from the rows' first four columns (a stereocentre's handedness is the same triple product)."""
    x, box = positions.double(), boxes.double()
    arms = [minimum_image(x[:, groups[:, k]] - x[:, groups[:, 0]], box) for k in (1, 2, 3)]  # 3 x [F, g, 3]
    return torch.sign((arms[0] * torch.linalg.cross(arms[1], arms[2])).sum(-1))


def swap_first_two(positions: Tensor, groups: Tensor, which: Tensor) -> Tensor:
    """Positions ``[F, n, 3]`` with the places of ``h1`` and ``h2`` traded in the groups ``which [F, g]``."""
    out = positions.clone()
    frame, row = torch.nonzero(which, as_tuple=True)
    first, second = groups[row, 2], groups[row, 3]
    out[frame, first], out[frame, second] = positions[frame, second], positions[frame, first]
    return out


def turn_names(positions: Tensor, groups: Tensor, shift: Tensor) -> Tensor:
    """Positions ``[F, n, 3]`` with each three-hydrogen group's names turned by ``shift [F, g]`` (0, 1 or 2)
    places: ``h1`` takes the place of ``h(1 + shift)``, and so on round; the cyclic order is kept."""
    out = positions.clone()
    rotors = torch.nonzero(groups[:, 4] >= 0).squeeze(1)  # [r]
    names = groups[rotors, 2:]  # [r, 3]
    for k in (1, 2):
        frame, pick = torch.nonzero(shift[:, rotors] == k, as_tuple=True)
        cycle = names[pick]  # [m, 3]
        moved = cycle.roll(-k, dims=1)  # the place each name takes
        out[frame.unsqueeze(1), cycle] = positions[frame.unsqueeze(1), moved]
    return out
