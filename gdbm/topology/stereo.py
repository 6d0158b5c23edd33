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

from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.utils.pbc import minimum_image
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
    """``[F, c]`` +1 / -1 (0 when planar): the sign of ``(a - x) . ((b - x) x (c - x))`` per centre ``x``."""
    centre, around = _around(positions, boxes, centres)
    d = around[:, :, :3] - centre.unsqueeze(2)
    return torch.sign((d[:, :, 0] * torch.linalg.cross(d[:, :, 1], d[:, :, 2])).sum(-1))


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


@dataclass(frozen=True)
class StereoTemplate:
    """Per molecule type, the stereocentres (local atom indices ``[c, 5]``) and the handedness ``[c]``
    they must have."""

    molecules: dict[str, tuple[Tensor, Tensor]]

    @classmethod
    def from_frames(cls, pairs: list[tuple[Topology, Tensor, Tensor]]) -> "StereoTemplate":
        """The template of ``(topology, positions [F, n, 3], boxes [F, 3, 3])`` training sets: per molecule
        type, the centres whose handedness agrees in at least :data:`MIN_AGREEMENT` of all instances."""
        votes: dict[str, tuple[Tensor, list[Tensor]]] = {}
        for top, positions, boxes in pairs:
            centres = stereocentres(top)
            if not len(centres):
                continue
            signs = handedness(positions.double(), boxes.double(), centres)  # [F, c]
            molecule = top.molecule[centres[:, 0]]
            for block_index, block in enumerate(top.molecules):
                mine = molecule == block_index
                if not bool(mine.any()):
                    continue
                local = centres[mine] - block.start
                known = votes.get(block.name)
                if known is not None and not torch.equal(known[0], local):
                    continue  # another topology's molecule of the same name: keep the first definition
                votes.setdefault(block.name, (local, []))[1].append(signs[:, mine])
        molecules = {}
        for name, (local, signs) in votes.items():
            mean = torch.cat(signs).mean(0)  # [c]
            keep = mean.abs() >= 2 * MIN_AGREEMENT - 1
            if bool(keep.any()):
                molecules[name] = (local[keep], torch.sign(mean[keep]))
        return cls(molecules)

    def expand(self, top: Topology) -> tuple[Tensor, Tensor]:
        """The centres ``[c, 5]`` (system atom indices) and handedness ``[c]`` of every molecule of ``top``
        that the template knows, where the molecule has the same stereocentres as the template's."""
        present = {tuple(row) for row in stereocentres(top).tolist()}
        rows, signs = [], []
        for block in top.molecules:
            if block.name not in self.molecules:
                continue
            local, sign = self.molecules[block.name]
            here = local + block.start
            match = torch.tensor([tuple(row) in present for row in here.tolist()], dtype=torch.bool)
            rows.append(here[match])
            signs.append(sign[match])
        if not rows:
            return torch.zeros(0, 5, dtype=torch.long), torch.zeros(0)
        return torch.cat(rows), torch.cat(signs)

    def to_dict(self) -> dict:
        return {name: {"centres": local.tolist(), "handedness": sign.tolist()}
                for name, (local, sign) in self.molecules.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "StereoTemplate":
        return cls({name: (torch.tensor(entry["centres"], dtype=torch.long).reshape(-1, 5),
                           torch.tensor(entry["handedness"], dtype=torch.float64))
                    for name, entry in data.items()})


class StereoFix:
    """``fix(positions [F, n, 3], boxes) -> (positions, inverted per frame [F])`` for one system:
    every stereocentre whose handedness differs from the template's inverted."""

    def __init__(self, template: StereoTemplate, top: Topology) -> None:
        self.centres, self.signs = template.expand(top)

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
