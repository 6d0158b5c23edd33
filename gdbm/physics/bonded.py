"""Energies of listed interactions (bonds, angles, dihedrals, [pairs]) per term instance.

Each function of :data:`TERM_ENERGY` maps the displacement vectors along a term's atom
chain to per-instance energies; :func:`term_energies` gathers the vectors (minimum image
when boxes are given, since frames are wrapped atom by atom) and returns the energies by
category. The forms are those of :mod:`gdbm.topology.topology` (GROMACS manual). Dihedrals
follow the IUPAC/GROMACS/OpenMM sign convention: trans = 180 deg, and phi > 0 when, looking
along j->k, atom i must turn clockwise to eclipse atom l.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from gdbm.utils.pbc import minimum_image
from gdbm.topology.topology import TERM_KINDS, Term

COULOMB_CONSTANT = 138.935458  # kJ mol^-1 nm e^-2


def chain_vectors(positions: Tensor, index: Tensor, boxes: Tensor | None) -> Tensor:
    """Vectors ``x[a_{k+1}] - x[a_k]`` along each term's atoms, ``[F, m, arity - 1, 3]``.

    ``positions``: ``[F, n, 3]``; ``index``: ``[m, arity]``; ``boxes``: ``[F, 3, 3]`` or None.
    """
    x = positions[:, index]  # [F, m, arity, 3]
    d = x[:, :, 1:] - x[:, :, :-1]  # [F, m, arity - 1, 3]
    if boxes is None:
        return d
    f, m, k, _ = d.shape
    return minimum_image(d.reshape(f, m * k, 3), boxes).reshape(f, m, k, 3)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(-1)


def angle(d: Tensor) -> Tensor:
    """Bond angle at the middle atom (rad) from chain vectors ``[..., 2, 3]``."""
    u, w = -d[..., 0, :], d[..., 1, :]  # j->i, j->k
    return torch.atan2(torch.linalg.cross(u, w).norm(dim=-1), _dot(u, w))


def cos_angle(d: Tensor) -> Tensor:
    """Cosine of the bond angle from chain vectors ``[..., 2, 3]``."""
    u, w = -d[..., 0, :], d[..., 1, :]
    return _dot(u, w) / (u.norm(dim=-1) * w.norm(dim=-1))


def dihedral(d: Tensor) -> Tensor:
    """IUPAC dihedral angle in (-pi, pi] from chain vectors ``[..., 3, 3]`` (b1, b2, b3)."""
    b1, b2, b3 = d[..., 0, :], d[..., 1, :], d[..., 2, :]
    n1, n2 = torch.linalg.cross(b1, b2), torch.linalg.cross(b2, b3)
    return torch.atan2(b2.norm(dim=-1) * _dot(b1, n2), _dot(n1, n2))


def _bond_harmonic(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    return 0.5 * p["k"] * (d[..., 0, :].norm(dim=-1) - p["b0"]) ** 2


def _bond_g96(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    return 0.25 * p["k"] * ((d[..., 0, :] ** 2).sum(-1) - p["b0"] ** 2) ** 2


def _angle_harmonic(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    return 0.5 * p["k"] * (angle(d) - p["theta0"]) ** 2


def _angle_g96(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    return 0.5 * p["k"] * (cos_angle(d) - torch.cos(p["theta0"])) ** 2


def _periodic(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    return p["k"] * (1.0 + torch.cos(p["n"] * dihedral(d) - p["phi0"]))


def _rb(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    c = -torch.cos(dihedral(d))  # cos(psi), psi = phi - 180 deg
    e = p["c5"]
    for name in ("c4", "c3", "c2", "c1", "c0"):  # Horner
        e = e * c + p[name]
    return e


def _improper_harmonic(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    dxi = torch.remainder(dihedral(d) - p["xi0"] + math.pi, 2.0 * math.pi) - math.pi  # wrapped
    return 0.5 * p["k"] * dxi**2


def _pair_lj(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    inv_r6 = (d[..., 0, :] ** 2).sum(-1) ** -3
    return p["c12"] * inv_r6**2 - p["c6"] * inv_r6


def _pair_coulomb(d: Tensor, p: dict[str, Tensor]) -> Tensor:
    return COULOMB_CONSTANT * p["qq"] / d[..., 0, :].norm(dim=-1)


TERM_ENERGY: dict[str, Callable[[Tensor, dict[str, Tensor]], Tensor]] = {
    "bond_harmonic": _bond_harmonic,
    "bond_g96": _bond_g96,
    "angle_harmonic": _angle_harmonic,
    "angle_g96": _angle_g96,
    "proper_periodic": _periodic,
    "proper_rb": _rb,
    "improper_harmonic": _improper_harmonic,
    "improper_periodic": _periodic,
}


def term_energies(term: Term, positions: Tensor, boxes: Tensor | None = None,
                  coulomb: bool = True) -> dict[str, Tensor]:
    """Per-instance energies of one term, by energy category: ``{category: [F, m]}``.

    ``positions``: ``[F, n, 3]`` or ``[n, 3]`` (then ``{category: [m]}``); ``boxes`` like
    them or ``None`` for no periodic images. Computed in the positions' dtype. ``pair_lj``
    yields an ``"lj"`` part and, when ``coulomb``, a ``"coulomb"`` part (plain Coulomb,
    no cutoff, as GROMACS [pairs] and OpenMM exceptions).
    """
    single = positions.ndim == 2
    pos = positions.unsqueeze(0) if single else positions
    box = None if boxes is None else (boxes.unsqueeze(0) if single else boxes).to(pos.dtype)
    index = term.index.to(pos.device)
    params = {k: v.to(device=pos.device, dtype=pos.dtype) for k, v in term.params.items()}
    d = chain_vectors(pos, index, box)  # [F, m, arity - 1, 3]
    if term.kind == "pair_lj":
        out = {"lj": _pair_lj(d, params)}
        if coulomb:
            out["coulomb"] = _pair_coulomb(d, params)
    else:
        out = {TERM_KINDS[term.kind].category: TERM_ENERGY[term.kind](d, params)}
    return {k: v.squeeze(0) if single else v for k, v in out.items()}
