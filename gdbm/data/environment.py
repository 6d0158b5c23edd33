"""Local environments of beads: centred, aligned, cut off, padded.

For a batch of (frame, bead) *items* (thesis Sec. 4.3.1):

- the centre is the bead's position; the local z axis points to its *fixpoint* bead (the
  mapping's ``[align]`` entry, else its first CG-bonded neighbour, else none: no alignment),
  along the minimum-image vector; the rotation is proper (det +1), antiparallel axes included;
- the environment holds every bead and every present atom whose minimum-image distance to the
  centre is below the cutoff (default 0.7 nm, DBM's), at that image, in the local frame;
- the turn about z is either free (a random rotation, DBM's augmentation, seeded, folded into the
  returned rotation) or fixed by an *azimuth* bead (``EnvironmentConfig.azimuth = "bead"``): the
  local x axis then points to that bead's projection on the xy plane. Either way
  ``box = centre + local @ rotation`` maps back.

What the particles *are* (their features) is :mod:`gdbm.data.features`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from gdbm.utils.pbc import box_widths, minimum_image
from gdbm.topology.mapping import SystemMapping


class EnvironmentConfig(BaseModel):
    """Which particles enter an environment and how they are described."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cutoff: float = Field(0.7, gt=0, description="nm; particles closer to the centre bead enter")
    atom_types: Literal["forcefield", "prior"] = Field(
        "forcefield", description="atom-type vocabulary: force-field types or the mapping's prior types")
    split_channels: bool = Field(False, description="split interaction channels by the particle's atom type")
    azimuth: Literal["random", "bead"] = Field(
        "random", description="the turn about the local z axis: 'random' (a random angle per environment in "
        "training and per candidate in sampling, DBM's augmentation) or 'bead' (x towards a second bead, see "
        "azimuth_points; no random turn), so the network need not read the turn from the atoms near the axis")

    def random_turns(self, aligned: bool) -> bool:
        """Whether environments are turned by random angles about z (only aligned conditioners are turned)."""
        return aligned and self.azimuth == "random"

    def axes(self, mapping: SystemMapping, aligned: bool) -> tuple[Tensor, Tensor | None]:
        """Each bead's local-frame anchors: ``fixpoint [n_beads]`` (z axis; -1: centred, not rotated) and
        ``azimuth [n_beads]`` (x axis, :func:`azimuth_points`) or None (a random turn, or none when not
        ``aligned``)."""
        fixpoint = fixpoints(mapping) if aligned else torch.full((mapping.n_beads,), -1)
        return fixpoint, azimuth_points(mapping, fixpoint) if aligned and self.azimuth == "bead" else None


def fixpoints(mapping: SystemMapping) -> Tensor:
    """``[n_beads]`` the bead each bead's local z axis points to: ``align``, else the first CG-bonded bead, else -1."""
    n = mapping.n_beads
    bonds = mapping.cg_bonds
    both = torch.cat([bonds, bonds.flip(1)])  # [2c, 2]
    first = torch.full((n,), n, dtype=torch.long).scatter_reduce(0, both[:, 0], both[:, 1], "amin")  # [n]
    first = torch.where(first < n, first, -1)
    return torch.where(mapping.align >= 0, mapping.align, first)


def azimuth_points(mapping: SystemMapping, fixpoint: Tensor) -> Tensor:
    """``[n_beads]`` the bead each bead's local x axis points to, or -1 (no second direction).

    The first bead (by index) CG-bonded to the bead other than its fixpoint, else the first one
    CG-bonded to the fixpoint other than the bead. For a polymer's side-chain bead aligned to its
    backbone bead that is a neighbouring backbone bead, so the side chain's turn about its bond to the
    backbone becomes a fixed direction in the local frame.
    """
    n = mapping.n_beads
    bonds = mapping.cg_bonds
    both = torch.cat([bonds, bonds.flip(1)])  # [2c, 2] (bead, neighbour)
    lowest = torch.full((n,), n, dtype=torch.long).scatter_reduce(0, both[:, 0], both[:, 1], "amin")  # [n]
    rest = both[both[:, 1] != lowest[both[:, 0]]]
    next_lowest = torch.full((n,), n, dtype=torch.long).scatter_reduce(0, rest[:, 0], rest[:, 1], "amin")

    def lowest_but(owner: Tensor, skip: Tensor) -> Tensor:  # [n] lowest neighbour of owner that is not skip
        o = owner.clamp(min=0)
        pick = torch.where(lowest[o] != skip, lowest[o], next_lowest[o])
        return torch.where(owner >= 0, pick, n)

    beads = torch.arange(n)
    own = lowest_but(beads, fixpoint)
    second = torch.where(own < n, own, lowest_but(fixpoint, beads))
    return torch.where((second < n) & (fixpoint >= 0), second, -1)


def rotation_to_z(axis: Tensor) -> Tensor:
    """Proper rotations ``[B, 3, 3]`` with ``R @ axis / |axis| = +z``; identity for a zero axis.

    Axes with a negative z are first turned by pi about x, so Rodrigues' formula is only used
    for angles up to 90 degrees (no instability at antiparallel axes).
    """
    a = axis.to(torch.float64)
    norm = a.norm(dim=-1, keepdim=True)  # [B, 1]
    a = torch.where(norm > 1e-12, a / norm.clamp(min=1e-12), torch.tensor([0.0, 0.0, 1.0], dtype=a.dtype,
                                                                         device=a.device))
    flip = torch.ones_like(a)
    flip[:, 1:] = torch.where(a[:, 2:] < 0, -1.0, 1.0)  # diag(1, -1, -1) = rotation by pi about x
    a = a * flip  # z >= 0 now
    zero = torch.zeros_like(a[:, 0])
    vx, vy, c = a[:, 1], -a[:, 0], a[:, 2]  # v = a x z = (a_y, -a_x, 0), c = a . z
    k = torch.stack([torch.stack([zero, zero, vy], -1), torch.stack([zero, zero, -vx], -1),
                     torch.stack([-vy, vx, zero], -1)], -2)  # [B, 3, 3] cross-product matrix of v
    eye = torch.eye(3, dtype=a.dtype, device=a.device)
    r = eye + k + k @ k / (1.0 + c).view(-1, 1, 1)
    return (r * flip.unsqueeze(-2)).to(axis.dtype)  # r @ diag(flip)


def rotation_about_z(angle: Tensor) -> Tensor:
    """Rotations ``[B, 3, 3]`` by ``angle [B]`` (radians) about z."""
    c, s = torch.cos(angle), torch.sin(angle)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                        torch.stack([zero, zero, one], -1)], -2)


def random_z_rotations(n: int, generator: torch.Generator | None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``n`` rotations about z by angles uniform in [0, 2 pi) drawn from ``generator``; ``[n, 3, 3]``."""
    return rotation_about_z(2 * torch.pi * torch.rand(n, generator=generator, dtype=torch.float64)).to(dtype)


@dataclass
class LocalFrames:
    """Centre and rotation of each item: ``local = (x - centre) @ rotation.T``."""

    centre: Tensor  # [B, 3] box coordinates of the bead
    rotation: Tensor  # [B, 3, 3] proper

    def to_box(self, local: Tensor) -> Tensor:
        """Box coordinates ``[B, K, 3]`` of local positions ``[B, K, 3]`` (not wrapped into the box)."""
        return self.centre.unsqueeze(1) + local @ self.rotation

    def rotated(self, extra: Tensor) -> "LocalFrames":
        """The frames turned further by ``extra [B, 3, 3]`` (applied after the current rotation)."""
        return LocalFrames(self.centre, extra @ self.rotation)


def local_frames(beads: Tensor, boxes: Tensor, frame: Tensor, bead: Tensor, fixpoint: Tensor,
                 azimuth: Tensor | None = None) -> LocalFrames:
    """Centre on bead ``bead [B]`` of frame ``frame [B]`` and align its fixpoint bond to +z.

    ``beads``: ``[F, N, 3]``; ``boxes``: ``[F, 3, 3]``; ``fixpoint``: ``[N]`` (see :func:`fixpoints`).
    With ``azimuth [N]`` (see :func:`azimuth_points`) the frame is then turned about z so that bead's
    direction lies in the xz half-plane with x > 0 (beads with -1, or on the z axis, are not turned).
    """
    centre = beads[frame, bead]  # [B, 3]

    def towards(points: Tensor) -> Tensor:  # [B, 3] minimum-image vectors to points[bead], zero where -1
        p = points.to(bead.device)[bead]  # [B]
        v = minimum_image((beads[frame, p.clamp(min=0)] - centre).unsqueeze(1), boxes[frame]).squeeze(1)
        return torch.where((p >= 0).unsqueeze(-1), v, 0.0)

    rotation = rotation_to_z(towards(fixpoint))  # [B, 3, 3]
    if azimuth is not None:
        v = torch.einsum("bij,bj->bi", rotation, towards(azimuth))  # [B, 3] in the aligned frame
        angle = torch.where(v[:, :2].norm(dim=-1) > 1e-6, torch.atan2(v[:, 1], v[:, 0]), 0.0)  # [B]
        rotation = rotation_about_z(-angle.to(torch.float64)).to(rotation.dtype) @ rotation
    return LocalFrames(centre, rotation)


@dataclass
class Neighbours:
    """Particles near each item's centre, flat, sorted by item, then atoms by index, then beads by index."""

    item: Tensor  # [K] long
    atom: Tensor  # [K] long, -1 for beads
    bead: Tensor  # [K] long, -1 for atoms
    vector: Tensor  # [K, 3] minimum image from the centre, box axes

    def without(self, atoms: Tensor) -> "Neighbours":
        """Drop per item the atoms ``atoms [B, k]`` (-1 padded), e.g. a sequence and its hidden hydrogens."""
        n = int(max(self.atom.max(), atoms.max()).item()) + 1 if len(self.atom) else 1
        drop = (torch.arange(len(atoms), device=atoms.device).unsqueeze(1) * n + atoms)[atoms >= 0]  # [d]
        key = torch.where(self.atom >= 0, self.item * n + self.atom, -1)  # [K]
        keep = ~torch.isin(key, drop)
        return Neighbours(self.item[keep], self.atom[keep], self.bead[keep], self.vector[keep])


def pairs_within(points: Tensor, centres: Tensor, box: Tensor, cutoff: float) -> tuple[Tensor, Tensor, Tensor]:
    """Pairs (centre, point) closer than ``cutoff`` under PBC: ``(centre [K], point [K], vector [K, 3])``,
    the vector from the centre to that image of the point.

    A cell list in fractional coordinates: along each box vector, as many cells as the
    distance between opposite faces holds cutoffs, so every image within the cutoff of a centre
    lies in one of the 27 (unwrapped) cells around the centre's, and each of those cells is one
    stored cell seen through one lattice shift. Only those candidates are looked at: time and
    memory grow with the number of centres, not with all pairs of the box. In boxes under three
    cells wide a point can be met through several images; :func:`find_neighbours` keeps the
    shortest.
    """
    box64 = box.to(torch.float64)
    if not bool(torch.linalg.det(box64).abs() > 0):
        raise ValueError("local environments need a periodic box (the frame has none)")
    device = points.device
    counts = torch.clamp(torch.floor(box_widths(box64) / cutoff), min=1).long().to(device)  # [3]
    inverse = torch.linalg.inv(box64)

    def wrapped(x: Tensor) -> tuple[Tensor, Tensor]:  # fractions in [0, 1) and cell triples
        frac = x.to(torch.float64) @ inverse
        frac = frac - torch.floor(frac)
        return frac, torch.minimum(torch.floor(frac * counts).long(), counts - 1)

    def flat(ijk: Tensor) -> Tensor:
        return (ijk[..., 0] * counts[1] + ijk[..., 1]) * counts[2] + ijk[..., 2]

    frac, ijk = wrapped(points)  # [n, 3]
    cell = flat(ijk)
    order = torch.argsort(cell)
    per_cell = torch.bincount(cell, minlength=int(counts.prod()))  # [M]
    first = torch.cumsum(per_cell, 0) - per_cell
    centre_frac, home = wrapped(centres)  # [b, 3]
    shifts = torch.cartesian_prod(*[torch.arange(-1, 2, device=device)] * 3)  # [27, 3]
    unwrapped = (home.unsqueeze(1) + shifts).flatten(0, 1)  # [b 27, 3]
    around = flat(unwrapped % counts)  # [b 27]
    lattice = torch.div(unwrapped, counts, rounding_mode="floor")  # [b 27, 3] the image's box shift
    size = per_cell[around]  # [b 27]
    slot = torch.repeat_interleave(torch.arange(len(around), device=device), size)  # [C] -> (centre, cell)
    within = torch.arange(len(slot), device=device) - (torch.cumsum(size, 0) - size)[slot]
    point = order[first[around[slot]] + within]  # [C]
    centre = torch.div(slot, 27, rounding_mode="floor")
    vector = (frac[point] + lattice[slot] - centre_frac[centre]) @ box64  # [C, 3]
    keep = (vector * vector).sum(-1) < cutoff * cutoff
    return centre[keep], point[keep], vector[keep].to(points.dtype)


def find_neighbours(atoms: Tensor, beads: Tensor, boxes: Tensor, frame: Tensor, bead: Tensor, cutoff: float,
                    atom_present: Tensor | None = None) -> Neighbours:
    """Beads and (present) atoms within ``cutoff`` of bead ``bead [B]`` of frame ``frame [B]``.

    ``atoms``: ``[F, n, 3]``; ``beads``: ``[F, N, 3]``; ``boxes``: ``[F, 3, 3]``;
    ``atom_present``: ``[F, n]`` bool (default all). Each (frame, bead) item at most once.
    Cost grows with the number of items, not with the box (:func:`pairs_within`); a particle
    seen through several images is kept once, at its minimum image. The centre bead itself is
    included (at the origin).
    """
    n, n_beads = atoms.shape[1], beads.shape[1]
    parts = []
    for f in torch.unique(frame).tolist():  # loop over frames, a handful
        items = torch.nonzero(frame == f).squeeze(1)  # [b]
        if len(torch.unique(bead[items])) != len(items):
            raise ValueError(f"frame {f}: a bead appears in more than one item")
        present = (torch.arange(n, device=atoms.device) if atom_present is None
                   else torch.nonzero(atom_present[f]).squeeze(1))  # [n_p]
        ids = torch.cat([present, n + torch.arange(n_beads, device=atoms.device)])  # [n_p + N] particle ids
        points = torch.cat([atoms[f, present], beads[f]]).detach()  # [n_p + N, 3]
        centre, point, vector = pairs_within(points, beads[f, bead[items]].detach(), boxes[f].detach(), cutoff)
        parts.append((items[centre], ids[point], vector))
    item, particle, vector = (torch.cat(t) for t in zip(*parts))
    # one entry per (item, particle): the shortest image, sorted by item then particle id
    # (keys are sorted as float64, exact below 2^53: torch's CPU sort of int64 is several times slower)
    key = (item * (n + n_beads) + particle).double()
    order = torch.argsort((vector * vector).sum(-1), stable=True)
    order = order[torch.argsort(key[order], stable=True)]
    key = key[order]
    first = torch.ones_like(key, dtype=torch.bool)
    first[1:] = key[1:] != key[:-1]
    order = order[first]
    item, particle = item[order], particle[order]
    return Neighbours(item, torch.where(particle < n, particle, -1), torch.where(particle >= n, particle - n, -1),
                      vector[order].to(atoms.dtype))


@dataclass
class Environment:
    """Padded local environments of a batch of items."""

    frames: LocalFrames
    positions: Tensor  # [B, P, 3] local frame
    atom: Tensor  # [B, P] long, -1 for beads and padding
    bead: Tensor  # [B, P] long, -1 for atoms and padding
    mask: Tensor  # [B, P] bool

    def take(self, index: slice) -> "Environment":
        """The environments of some items, padded only as wide as they need."""
        mask = self.mask[index]
        width = int(mask.sum(1).max()) if len(mask) else 0
        return Environment(LocalFrames(self.frames.centre[index], self.frames.rotation[index]),
                           self.positions[index, :width], self.atom[index, :width], self.bead[index, :width],
                           mask[:, :width])


def pad_by_item(item: Tensor, n_items: int, values: Tensor, fill: float | int) -> tuple[Tensor, Tensor]:
    """Scatter flat ``values [K, ...]`` of items ``item [K]`` (sorted) into ``[n_items, P, ...]``, plus the mask."""
    counts = torch.bincount(item, minlength=n_items)  # [B]
    start = torch.cumsum(counts, 0) - counts  # [B]
    slot = torch.arange(len(item), device=item.device) - start[item]  # [K]
    width = int(counts.max()) if n_items else 0
    out = torch.full((n_items, width, *values.shape[1:]), fill, dtype=values.dtype, device=values.device)
    out[item, slot] = values
    mask = torch.zeros(n_items, width, dtype=torch.bool, device=item.device)
    mask[item, slot] = True
    return out, mask


def local_environments(atoms: Tensor, beads: Tensor, boxes: Tensor, frame: Tensor, bead: Tensor, fixpoint: Tensor,
                       cutoff: float = 0.7, *, atom_present: Tensor | None = None, absent: Tensor | None = None,
                       generator: torch.Generator | None = None, azimuth: Tensor | None = None) -> Environment:
    """Environments of items (frame, bead) ``[B]``, ready for :meth:`gdbm.data.features.SystemFeatures.particles`.

    ``atom_present [F, n]`` says which atoms exist in each frame (forward sampling: the placed
    ones); ``absent [B, k]`` (-1 padded) drops more atoms per item (the atoms being placed and
    the hidden hydrogens). With ``generator`` each environment is turned by a random angle
    about z, and the returned frames include that turn; ``azimuth [N]`` fixes the turn instead
    (:func:`local_frames`).
    """
    frames = local_frames(beads, boxes, frame, bead, fixpoint, azimuth)
    if generator is not None:
        frames = frames.rotated(random_z_rotations(len(frame), generator, frames.rotation.dtype).to(atoms.device))
    near = find_neighbours(atoms, beads, boxes, frame, bead, cutoff, atom_present)
    if absent is not None:
        near = near.without(absent)
    local = torch.einsum("kij,kj->ki", frames.rotation[near.item], near.vector)  # [K, 3]
    positions, mask = pad_by_item(near.item, len(frame), local, 0.0)
    atom, _ = pad_by_item(near.item, len(frame), near.atom, -1)
    bead_index, _ = pad_by_item(near.item, len(frame), near.bead, -1)
    return Environment(frames, positions, atom, bead_index, mask)
