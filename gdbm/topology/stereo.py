"""Stereocentres: the handedness of tetrahedral atoms, read from training frames and restored in generated ones.

A CG bead does not say on which side of its three heavy neighbours a tetrahedral carbon sits:
moving the carbon 0.1 nm through their plane inverts it, and a generator that places atoms to a
few hundredths of a nm does that often (the sPS model ``sps-voxel`` inverts about one backbone
CH in eight). MD never inverts a stereocentre, so the handedness is a fixed property of each
molecule (the tacticity of a polymer, the L form of an amino acid): it is the same in every
training frame, and a wrongly handed centre strains torsions and contacts that no relaxation
at fixed beads removes.

A stereocentre here is an atom with four bonded neighbours of which exactly one is terminal
(a hydrogen of a CH or a C-alpha): its handedness is the sign of the triple product of the
other three (in index order) seen from the centre, and inverting it reflects the centre through
the plane of the other three and puts the terminal atom beyond it, along the plane's normal. Centres with two or more
terminal neighbours (CH2, CH3) have no handedness that matters; the template keeps, per
molecule type, the centres whose handedness agrees in at least :data:`MIN_AGREEMENT` of the
training instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from gdbm.utils.pbc import minimum_image
from gdbm.topology.hydrogen_names import equivalent_hydrogens, naming, swap_first_two, turn_names
from gdbm.topology.topology import Topology

MIN_AGREEMENT = 0.9
MIN_HEIGHT = 0.04  # nm from the plane of its three neighbours, for an inverted centre (tetrahedral C: 0.05)


def stereocentres(top: Topology) -> Tensor:
    """``[c, 5]`` rows ``(centre, a, b, c, terminal)``: atoms with four bonded neighbours, exactly one terminal."""
    n = top.n_atoms
    bonds = top.connectivity
    degree = torch.bincount(bonds.flatten(), minlength=n)
    neighbours = top.bonded_neighbours()
    rows = []
    for atom in torch.nonzero(degree == 4).flatten().tolist():
        terminal = [k for k in neighbours[atom] if degree[k] == 1]
        if len(terminal) == 1:
            rows.append([atom, *sorted(k for k in neighbours[atom] if k != terminal[0]), terminal[0]])
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 5)


def _around(positions: Tensor, boxes: Tensor, centres: Tensor) -> tuple[Tensor, Tensor]:
    """The centre atoms ``[F, c, 3]`` and their four neighbours ``[F, c, 4, 3]`` as minimum images around them."""
    centre = positions[:, centres[:, 0]]
    d = positions[:, centres[:, 1:]] - centre.unsqueeze(2)  # [F, c, 4, 3]
    f, c = d.shape[:2]
    d = minimum_image(d.reshape(f, c * 4, 3), boxes).reshape(f, c, 4, 3)
    return centre, centre.unsqueeze(2) + d


def handedness(positions: Tensor, boxes: Tensor, centres: Tensor) -> Tensor:
    """``[F, c]`` +1 / -1 (0 when planar): the sign of ``(a - x) . ((b - x) x (c - x))`` per centre ``x``; the
    triple product a hydrogen group's naming is also (:func:`gdbm.topology.hydrogen_names.naming`, on the rows'
    first four columns)."""
    return naming(positions, boxes, centres)


def candidate_handedness(quads: Tensor, boxes: Tensor) -> Tensor:
    """``[P, K]`` +1 / -1 (0 when planar) of ``K`` candidate placements of ``P`` centres: ``quads [P, K, 4, 3]``
    holds each candidate's centre and its three non-terminal neighbours (the rows' order of
    :func:`stereocentres`), ``boxes [P, 3, 3]`` each centre's box. The same sign as :func:`handedness`."""
    p, k = quads.shape[:2]
    d = minimum_image((quads[:, :, 1:] - quads[:, :, :1]).reshape(p, k * 3, 3), boxes).reshape(p, k, 3, 3)
    return torch.sign((d[:, :, 0] * torch.linalg.cross(d[:, :, 1], d[:, :, 2])).sum(-1))


def invert(positions: Tensor, boxes: Tensor, centres: Tensor, which: Tensor) -> Tensor:
    """Positions with the centres ``which`` ``[F, c]`` (bool) inverted: each centre atom reflected through
    the plane of its three non-terminal neighbours (at least :data:`MIN_HEIGHT` from it: a centre found
    nearly planar gets a tetrahedral height), its terminal atom put at its bond length along the
    plane's normal on the centre's side. For a CH the carbon moves about 0.1 nm."""
    out = positions.clone()
    if not bool(which.any()):
        return out
    centre, around = _around(positions, boxes, centres)
    frame, row = torch.nonzero(which, as_tuple=True)
    x, (a, b, c, terminal) = centre[frame, row], around[frame, row].unbind(1)
    normal = torch.linalg.cross(b - a, c - a)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    height = ((x - a) * normal).sum(-1, keepdim=True)
    side = -torch.where(height >= 0, 1.0, -1.0).to(x)  # the other side of the plane
    moved = x - height * normal + side * height.abs().clamp_min(MIN_HEIGHT) * normal
    out[frame, centres[row, 0]] = moved.to(out.dtype)
    out[frame, centres[row, 4]] = (moved + (terminal - x).norm(dim=-1, keepdim=True) * side * normal).to(out.dtype)
    return out


def _agreed(pairs: list[tuple[Topology, Tensor, Tensor]], rows_of: Callable[[Topology], Tensor],
            signs_of: Callable[[Tensor, Tensor, Tensor], Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """Per molecule type of the ``(topology, positions, boxes)`` sets, the rows of ``rows_of`` (local atom
    indices; column 0 names the molecule) whose sign by ``signs_of`` agrees in at least :data:`MIN_AGREEMENT` of
    all instances, and that sign."""
    votes: dict[str, tuple[Tensor, list[Tensor]]] = {}
    for top, positions, boxes in pairs:
        rows = rows_of(top)
        if not len(rows):
            continue
        signs = signs_of(positions.double(), boxes.double(), rows)  # [F, c]
        molecule = top.molecule[rows[:, 0]]
        for block_index, block in enumerate(top.molecules):
            mine = molecule == block_index
            if not bool(mine.any()):
                continue
            local = torch.where(rows[mine] >= 0, rows[mine] - block.start, -1)
            known = votes.get(block.name)
            if known is not None and not torch.equal(known[0], local):
                continue  # another topology's molecule of the same name: keep the first definition
            votes.setdefault(block.name, (local, []))[1].append(signs[:, mine])
    agreed = {}
    for name, (local, signs) in votes.items():
        mean = torch.cat(signs).mean(0)  # [c]
        keep = mean.abs() >= 2 * MIN_AGREEMENT - 1
        if bool(keep.any()):
            agreed[name] = (local[keep], torch.sign(mean[keep]))
    return agreed


def _expand(known: dict[str, tuple[Tensor, Tensor]], top: Topology, present: Tensor,
            width: int) -> tuple[Tensor, Tensor]:
    """The rows ``[c, width]`` (system atom indices) and signs ``[c]`` of ``known`` for every molecule of ``top``,
    where the molecule has the same rows (``present``) as the template's."""
    here_rows = {tuple(row) for row in present.tolist()}
    rows, signs = [], []
    for block in top.molecules:
        if block.name not in known:
            continue
        local, sign = known[block.name]
        here = torch.where(local >= 0, local + block.start, -1)
        match = torch.tensor([tuple(row) in here_rows for row in here.tolist()], dtype=torch.bool)
        rows.append(here[match])
        signs.append(sign[match])
    if not rows:
        return torch.zeros(0, width, dtype=torch.long), torch.zeros(0)
    return torch.cat(rows), torch.cat(signs)


@dataclass(frozen=True)
class StereoTemplate:
    """Per molecule type, the stereocentres (local atom indices ``[c, 5]``) and the handedness ``[c]``
    they must have; and the groups of equivalent hydrogens (``[g, 5]``,
    :func:`gdbm.topology.hydrogen_names.equivalent_hydrogens`) with the naming ``[g]`` they follow."""

    molecules: dict[str, tuple[Tensor, Tensor]]
    names: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)

    @classmethod
    def from_frames(cls, pairs: list[tuple[Topology, Tensor, Tensor]]) -> "StereoTemplate":
        """The template of ``(topology, positions [F, n, 3], boxes [F, 3, 3])`` training sets: per molecule
        type, the centres whose handedness, and the hydrogen groups whose naming, agrees in at least
        :data:`MIN_AGREEMENT` of all instances."""
        return cls(_agreed(pairs, stereocentres, handedness), _agreed(pairs, equivalent_hydrogens, naming))

    def expand(self, top: Topology) -> tuple[Tensor, Tensor]:
        """The centres ``[c, 5]`` (system atom indices) and handedness ``[c]`` of every molecule of ``top``
        that the template knows, where the molecule has the same stereocentres as the template's."""
        return _expand(self.molecules, top, stereocentres(top), 5)

    def expand_names(self, top: Topology) -> tuple[Tensor, Tensor]:
        """The hydrogen groups ``[g, 5]`` and their naming ``[g]`` for every molecule of ``top`` the template knows."""
        return _expand(self.names, top, equivalent_hydrogens(top), 5)

    def to_dict(self) -> dict:
        out: dict[str, dict] = {name: {"centres": local.tolist(), "handedness": sign.tolist()}
                                for name, (local, sign) in self.molecules.items()}
        for name, (local, sign) in self.names.items():
            out.setdefault(name, {}).update(hydrogen_groups=local.tolist(), hydrogen_naming=sign.tolist())
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "StereoTemplate":
        """The template of :meth:`to_dict` (hydrogen naming absent in checkpoints written before it)."""
        def rows(entry: dict, key: str, sign: str) -> tuple[Tensor, Tensor]:
            return (torch.tensor(entry[key], dtype=torch.long).reshape(-1, 5),
                    torch.tensor(entry[sign], dtype=torch.float64))

        return cls({name: rows(entry, "centres", "handedness") for name, entry in data.items() if "centres" in entry},
                   {name: rows(entry, "hydrogen_groups", "hydrogen_naming") for name, entry in data.items()
                    if "hydrogen_groups" in entry})


class StereoFix:
    """``fix(positions [F, n, 3], boxes) -> (positions, inverted per frame [F])`` for one system:
    every stereocentre whose handedness differs from the template's inverted; ``name_hydrogens`` renames
    equivalent hydrogens to the template's naming."""

    def __init__(self, template: StereoTemplate, top: Topology) -> None:
        self.centres, self.signs = template.expand(top)
        self.hydrogen_groups, self.naming = template.expand_names(top)

    def name_hydrogens(self, positions: Tensor, boxes: Tensor, rng: torch.Generator) -> tuple[Tensor, Tensor]:
        """Positions with every hydrogen group's first two names traded where its naming differs from the
        template's, then each three-hydrogen group's names turned by a random 0-2 places (``rng``); and how
        many groups per frame ``[F]`` were misnamed."""
        if not len(self.hydrogen_groups):
            return positions, torch.zeros(len(positions), dtype=torch.long)
        wrong = naming(positions, boxes, self.hydrogen_groups) != self.naming.to(torch.float64)  # [F, g]
        out = swap_first_two(positions, self.hydrogen_groups, wrong)
        shift = torch.randint(0, 3, wrong.shape, generator=rng)  # [F, g]; only the CH3 rows are read
        return turn_names(out, self.hydrogen_groups, shift), wrong.sum(1)

    def __len__(self) -> int:
        return len(self.centres)

    def wrong(self, positions: Tensor, boxes: Tensor) -> Tensor:
        """``[F, c]`` bool: centres handed against the template."""
        signs = handedness(positions.double(), boxes.double(), self.centres)
        return signs != self.signs.to(signs)

    def __call__(self, positions: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
        if not len(self.centres):
            return positions, torch.zeros(len(positions), dtype=torch.long)
        wrong = self.wrong(positions, boxes)
        return invert(positions, boxes.to(positions.dtype), self.centres, wrong), wrong.sum(1)
