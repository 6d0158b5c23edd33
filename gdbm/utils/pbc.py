"""Periodic boundaries for triclinic boxes: lattice reduction and exact minimum images.

Boxes are ``[..., 3, 3]`` with rows = box vectors (GROMACS convention). The sPS boxes are
so sheared that rounding fractional coordinates (the usual trick) can pick a farther image,
so :func:`minimum_image` searches neighbouring lattice shifts in a Selling-reduced basis
until no shift shortens any vector. For a Selling-reduced basis every Voronoi-relevant
lattice vector has coefficients in {-1, 0, 1}, so a vector that none of the 26 unit shifts
shortens is the true minimum image.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order
from torch import Tensor

# the 27 shifts {-1, 0, 1}^3, the zero shift first so ties keep the current image
_UNIT_SHIFTS = sorted(itertools.product((-1, 0, 1), repeat=3), key=lambda s: s != (0, 0, 0))
_MAX_SELLING_STEPS = 1000
_MAX_SEARCH_STEPS = 100


def selling_reduce(box: Tensor) -> Tensor:
    """A basis of the same lattice with all superbase scalar products <= 0 (Selling reduction).

    ``box``: ``[..., 3, 3]`` rows = box vectors; returns the same shape and dtype. Works on a
    batch of boxes at once (each step applies one Selling move to every box that needs one).
    """
    b = box.detach().to(torch.float64)
    v = torch.cat([-b.sum(-2, keepdim=True), b], dim=-2)  # [..., 4, 3] superbase, sums to 0
    eye = torch.eye(4, dtype=torch.bool, device=box.device)
    scale = (b * b).sum(-1).amax(-1)  # [...] squared length of the longest vector
    for _ in range(_MAX_SELLING_STEPS):
        gram = (v @ v.transpose(-1, -2)).masked_fill(eye, -torch.inf)  # [..., 4, 4]
        best, flat = gram.flatten(-2).max(-1)  # [...]
        move = best > 1e-12 * scale  # [...] boxes that are not reduced yet
        if not bool(move.any()):
            return v[..., 1:, :].to(box.dtype)
        i, j = flat // 4, flat % 4
        sel_i = torch.nn.functional.one_hot(i, 4).to(v.dtype)  # [..., 4]
        sel_j = torch.nn.functional.one_hot(j, 4).to(v.dtype)
        vi = (sel_i.unsqueeze(-1) * v).sum(-2, keepdim=True)  # [..., 1, 3]
        others = (1.0 - sel_i - sel_j).unsqueeze(-1)  # [..., 4, 1]
        step = others * vi - 2.0 * sel_i.unsqueeze(-1) * vi  # v_k += v_i (k != i, j); v_i -> -v_i
        v = v + move[..., None, None].to(v.dtype) * step
    raise RuntimeError("Selling reduction did not converge; is the box degenerate?")


def box_widths(box: Tensor) -> Tensor:
    """Distances between opposite faces, ``[..., 3]``; the shortest lattice vector is at least the smallest."""
    a, b, c = box.unbind(-2)
    volume = torch.linalg.det(box).abs().unsqueeze(-1)  # [..., 1]
    faces = torch.stack([torch.linalg.cross(b, c), torch.linalg.cross(c, a), torch.linalg.cross(a, b)], -2)
    return volume / faces.norm(dim=-1)


def minimum_image(vectors: Tensor, boxes: Tensor) -> Tensor:
    """The shortest periodic image of each displacement vector.

    ``vectors``: ``[F, m, 3]`` (or ``[m, 3]``); ``boxes``: ``[F, 3, 3]`` (or ``[3, 3]``).
    Rounding fractions in the reduced basis settles every vector shorter than half the
    thinnest width (no other image can be as close); only the rest are searched. The lattice
    shift is chosen without gradient and added as a constant, so gradients flow to
    ``vectors`` unchanged.
    """
    single = vectors.ndim == 2
    if single:
        vectors, boxes = vectors.unsqueeze(0), boxes.unsqueeze(0)
    with torch.no_grad():
        basis = selling_reduce(boxes.to(torch.float64))  # [F, 3, 3]
        d = vectors.detach().to(torch.float64)  # [F, m, 3]
        n = -torch.round(d @ torch.linalg.inv(basis))  # [F, m, 3]
        y = d + n @ basis
        half_width = 0.5 * box_widths(basis).amin(-1)  # [F]
        f, m = torch.nonzero((y * y).sum(-1) >= half_width.unsqueeze(-1) ** 2, as_tuple=True)  # unsettled
        if f.numel():
            n[f, m] = _search(d[f, m], n[f, m], basis[f])
        offset = (n @ basis).to(vectors.dtype)  # [F, m, 3]
    out = vectors + offset
    return out.squeeze(0) if single else out


def _search(d: Tensor, n: Tensor, basis: Tensor) -> Tensor:
    """Move the cell shifts ``n`` [k, 3] of vectors ``d`` [k, 3] (bases [k, 3, 3]) to the shortest image."""
    shifts = torch.tensor(_UNIT_SHIFTS, dtype=d.dtype, device=d.device)  # [27, 3]
    for _ in range(_MAX_SEARCH_STEPS):
        cand = d.unsqueeze(-2) + (n.unsqueeze(-2) + shifts) @ basis  # [k, 27, 3]
        best = (cand * cand).sum(-1).argmin(-1)  # [k]; 0 = keep (the zero shift is first)
        if not bool(best.any()):
            return n
        n = n + shifts[best]
    raise RuntimeError("minimum-image search did not converge")


def bond_levels(n_atoms: int, bonds: Tensor) -> list[tuple[Tensor, Tensor]]:
    """A breadth-first walk over the bonds ``[b, 2]`` of every molecule, as levels of ``(atoms, parents)``:
    placing level after level by the minimum image from the parent (:func:`make_whole`) joins each
    molecule that the box cuts. Computed once per topology."""
    b = bonds.cpu().numpy()
    adjacency = coo_matrix((np.ones(len(b)), (b[:, 0], b[:, 1])), shape=(n_atoms, n_atoms))
    adjacency = (adjacency + adjacency.T).tocsr()
    depth, parent = np.full(n_atoms, -1), np.full(n_atoms, -1)
    for root in range(n_atoms):
        if depth[root] >= 0:
            continue
        order, pred = breadth_first_order(adjacency, root, directed=False, return_predecessors=True)
        depth[root] = 0
        for atom in order[1:]:
            depth[atom], parent[atom] = depth[pred[atom]] + 1, pred[atom]
    return [(torch.from_numpy(np.flatnonzero(depth == d)), torch.from_numpy(parent[depth == d]))
            for d in range(1, int(depth.max(initial=0)) + 1)]


def make_whole(positions: Tensor, box: Tensor, levels: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Positions ``[n, 3]`` with every molecule unbroken: each atom moved to the image nearest its
    parent in ``levels`` (:func:`bond_levels`). Frames store atoms wrapped one by one; engines that
    compute centres or constraints from raw coordinates need molecules whole."""
    x = positions.clone()
    for atoms, parents in levels:
        x[atoms] = x[parents] + minimum_image((x[atoms] - x[parents]).unsqueeze(0), box.unsqueeze(0))[0]
    return x
