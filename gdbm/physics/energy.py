"""Differentiable force-field energies of whole frames, per category, frame, molecule or atom.

:class:`EnergyModel` turns a parameterised :class:`~gdbm.topology.Topology` into a callable
``model(positions, boxes) -> EnergyTerms``: the listed terms (bonds, angles, dihedrals,
[pairs]) with minimum images, plus Lennard-Jones (plain cutoff) and optional Coulomb over
the non-excluded image pairs found by vesin. Energies are computed in the positions' dtype
and summed in float64; forces come from autograd (:func:`energy_and_forces`).

Attribution when resolved per molecule: a listed term belongs to the molecule of its first
atom, a non-bonded pair gives half to each atom's molecule. Per atom: a term's energy is
split equally among its atoms, a pair's half and half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor

from gdbm.utils.errors import InputError
from gdbm.physics.bonded import term_energies
from gdbm.physics.neighbors import PairList, check_cutoff, nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.physics.nonbonded import COULOMB_METHODS, coulomb_energy, lj_energy
from gdbm.topology.topology import Term, Topology

CATEGORIES = ("bond", "angle", "proper", "improper", "lj", "coulomb")
RESOLUTIONS = ("frame", "molecule", "atom")


@dataclass
class EnergyTerms:
    """Energies in kJ/mol, float64: ``[F]`` per category for a batch, ``[]`` for one frame.

    ``per_molecule`` / ``per_atom`` (when asked for) map each category and ``"total"`` to
    ``[F, n_molecules]`` / ``[F, n_atoms]`` (no leading F for one frame).
    """

    bond: Tensor
    angle: Tensor
    proper: Tensor
    improper: Tensor
    lj: Tensor
    coulomb: Tensor
    total: Tensor
    per_molecule: dict[str, Tensor] | None = None
    per_atom: dict[str, Tensor] | None = None
    pair_lj: tuple[PairList, Tensor] | None = None  # (non-excluded pairs, LJ [P]) when asked for, no gradient

    def as_dict(self) -> dict[str, Tensor]:
        """The per-frame energies by name, categories then ``"total"``."""
        return {name: getattr(self, name) for name in (*CATEGORIES, "total")}

    def detach(self) -> "EnergyTerms":
        """The same energies cut from the autograd graph."""
        def cut(d: dict[str, Tensor] | None) -> dict[str, Tensor] | None:
            return None if d is None else {k: v.detach() for k, v in d.items()}

        return EnergyTerms(**{k: v.detach() for k, v in self.as_dict().items()},
                           per_molecule=cut(self.per_molecule), per_atom=cut(self.per_atom), pair_lj=self.pair_lj)


class _Sums:
    """Float64 sums per category into bins of each frame (the frame, its molecules or atoms)."""

    def __init__(self, n_frames: int, bin_of_atom: Tensor, n_bins: int, split_terms: bool):
        self.n_frames, self.bin, self.n_bins, self.split_terms = n_frames, bin_of_atom, n_bins, split_terms
        self.frame_offset = torch.arange(n_frames, device=bin_of_atom.device).unsqueeze(1) * n_bins  # [F, 1]
        self.sums = {c: torch.zeros(n_frames * n_bins, dtype=torch.float64, device=bin_of_atom.device)
                     for c in CATEGORIES}

    def add_terms(self, category: str, energy: Tensor, index: Tensor) -> None:
        """Add per-instance energies ``[F, m]`` of terms with atoms ``index`` [m, arity]."""
        columns = range(index.shape[1]) if self.split_terms else (0,)
        share = energy.to(torch.float64) / len(columns)  # [F, m]
        for c in columns:
            target = self.frame_offset + self.bin[index[:, c]]  # [F, m]
            self.sums[category].index_add_(0, target.flatten(), share.flatten())

    def add_pairs(self, category: str, energy: Tensor, pairs: PairList) -> None:
        """Add per-pair energies ``[P]``, half to the bin of each atom."""
        half = 0.5 * energy.to(torch.float64)  # [P]
        base = pairs.frame * self.n_bins
        target = self.sums.setdefault(category, torch.zeros_like(self.sums["lj"]))
        target.index_add_(0, base + self.bin[pairs.i], half)
        target.index_add_(0, base + self.bin[pairs.j], half)

    def binned(self) -> dict[str, Tensor]:
        """``{category and "total": [F, n_bins]}``."""
        out = {c: s.view(self.n_frames, self.n_bins) for c, s in self.sums.items()}
        out["total"] = torch.stack([out[c] for c in CATEGORIES]).sum(0)
        return out


def _check_positions(positions: Tensor, boxes: Tensor | None, n_atoms: int) -> None:
    if positions.ndim not in (2, 3) or positions.shape[-1] != 3:
        raise InputError(f"positions must be [n, 3] or [F, n, 3], got {tuple(positions.shape)}")
    if positions.shape[-2] != n_atoms:
        raise InputError(f"positions hold {positions.shape[-2]} atoms but the topology has {n_atoms}")
    if not bool(torch.isfinite(positions).all()):
        raise InputError("positions contain NaN or inf; expected finite coordinates")
    if boxes is not None and boxes.shape != (*positions.shape[:-2], 3, 3):
        raise InputError(f"boxes must be {(*positions.shape[:-2], 3, 3)} for these positions, "
                         f"got {tuple(boxes.shape)}")


@dataclass
class _OnDevice:
    """The topology tensors an energy evaluation needs, on one device."""

    terms: list[Term]
    exclusions: Tensor  # [e, 2] long
    atom_type: Tensor  # [n] long
    c6: Tensor  # [T, T] float64
    c12: Tensor  # [T, T] float64
    charges: Tensor  # [n] float64
    molecule: Tensor  # [n] long


class EnergyModel:
    """The force field of a topology as a differentiable function of positions.

    ``cutoff`` (nm) applies to Lennard-Jones and Coulomb between non-excluded pairs;
    ``coulomb`` is ``"none"`` (no electrostatics at all, [pairs] charges included),
    ``"cutoff"`` or ``"reaction_field"`` (with ``epsilon_rf``; inf = conducting boundary).
    """

    def __init__(self, topology: Topology, cutoff: float = 1.0, coulomb: str = "none",
                 epsilon_rf: float = math.inf):
        if topology.lj is None:
            raise InputError("the topology has no force-field parameters (no [atomtypes] LJ); "
                             "energies need a parameterised topology", topology.source or None)
        if coulomb not in COULOMB_METHODS:
            raise InputError(f"unknown Coulomb method {coulomb!r}; expected one of {COULOMB_METHODS}")
        check_cutoff(float(cutoff), None)
        self.topology = topology
        self.cutoff = float(cutoff)
        self.coulomb = coulomb
        self.epsilon_rf = float(epsilon_rf)
        self._cache: dict[torch.device, _OnDevice] = {}

    def _on(self, device: torch.device) -> _OnDevice:
        if device not in self._cache:
            top, lj = self.topology, self.topology.lj
            self._cache[device] = _OnDevice(
                [t.to(device) for t in top.terms.values() if len(t)], top.exclusions.to(device),
                lj.atom_type.to(device), lj.c6.to(device), lj.c12.to(device),
                top.charges.to(device), top.molecule.to(device))
        return self._cache[device]

    def _pairs(self, pos: Tensor, box: Tensor | None,
               candidates: PairList | None = None) -> tuple[PairList, Tensor]:
        """Non-excluded image pairs within the cutoff and their vectors ``[P, 3]`` (differentiable).

        ``candidates``: image pairs found with a cutoff at least this model's (e.g. one
        search at the RDF radius shared by several analyses); searched here when None.
        """
        if box is not None:
            check_cutoff(self.cutoff, box)
        pairs = neighbor_pairs(pos, box, self.cutoff) if candidates is None else candidates
        d = pair_vectors(pos, box, pairs)  # [P, 3]
        r2 = (d.detach() ** 2).sum(-1)  # [P]
        drop = nearest_excluded(pairs, r2, self._on(pos.device).exclusions, self.topology.n_atoms)
        if candidates is not None:
            drop |= r2 >= self.cutoff**2
        keep = torch.nonzero(~drop).squeeze(-1)  # [P']
        return pairs.select(keep), d.index_select(0, keep)

    def _lj(self, pairs: PairList, r2: Tensor) -> Tensor:
        """Lennard-Jones energy ``[P]`` of each pair at squared distance ``r2`` ``[P]``."""
        dev = self._on(r2.device)
        type_pair = dev.atom_type[pairs.i] * dev.c6.shape[0] + dev.atom_type[pairs.j]  # [P] row of the flat tables
        c6 = dev.c6.to(r2.dtype).flatten().index_select(0, type_pair)
        c12 = dev.c12.to(r2.dtype).flatten().index_select(0, type_pair)
        return lj_energy(r2, c6, c12)

    def pair_list(self, positions: Tensor, boxes: Tensor | None = None) -> PairList:
        """Non-excluded image pairs within the cutoff (``[F, n, 3]`` or ``[n, 3]`` positions)."""
        return self._pairs(positions.detach(), boxes)[0]

    def __call__(self, positions: Tensor, boxes: Tensor | None = None, resolution: str = "frame",
                 pairs: PairList | None = None, pair_lj: bool = False) -> EnergyTerms:
        """Energies of ``positions`` ``[F, n, 3]`` or ``[n, 3]`` (nm) in ``boxes`` (rows = box vectors).

        ``boxes=None`` evaluates an open system. ``resolution`` ``"molecule"`` or ``"atom"``
        also fills ``per_molecule`` or ``per_atom``; per molecule, the non-bonded LJ is also
        split into ``"lj_intra"`` and ``"lj_inter"`` (an intermolecular pair half to each
        molecule; [pairs] terms are listed terms, counted in ``"lj"`` only). ``pairs``:
        candidate image pairs from an earlier search with a cutoff at least this model's.
        ``pair_lj``: also return the non-excluded pairs and each one's LJ energy (for breakdowns
        such as by atom types), detached.
        """
        if resolution not in RESOLUTIONS:
            raise InputError(f"unknown resolution {resolution!r}; expected one of {RESOLUTIONS}")
        _check_positions(positions, boxes, self.topology.n_atoms)
        single = positions.ndim == 2
        pos = positions.unsqueeze(0) if single else positions  # [F, n, 3]
        box = None if boxes is None else (boxes.unsqueeze(0) if single else boxes).to(pos.dtype)
        if box is not None:
            check_cutoff(self.cutoff, box)  # also a box without volume, before any minimum image
        dev = self._on(pos.device)
        n = self.topology.n_atoms
        if resolution == "frame":
            sums = _Sums(pos.shape[0], torch.zeros(n, dtype=torch.long, device=pos.device), 1, False)
        elif resolution == "molecule":
            sums = _Sums(pos.shape[0], dev.molecule, self.topology.n_molecules, False)
        else:
            sums = _Sums(pos.shape[0], torch.arange(n, device=pos.device), n, True)

        for term in dev.terms:
            for category, e in term_energies(term, pos, box, coulomb=self.coulomb != "none").items():
                sums.add_terms(category, e, term.index)

        pairs, d = self._pairs(pos, box, pairs)  # [P], [P, 3]
        r2 = (d * d).sum(-1)  # [P]
        lj = self._lj(pairs, r2)  # [P]
        sums.add_pairs("lj", lj, pairs)
        if resolution == "molecule":
            same = dev.molecule[pairs.i] == dev.molecule[pairs.j]  # [P]
            sums.add_pairs("lj_intra", torch.where(same, lj, 0.0), pairs)
            sums.add_pairs("lj_inter", torch.where(same, 0.0, lj), pairs)
        if self.coulomb != "none":
            qq = (dev.charges[pairs.i] * dev.charges[pairs.j]).to(pos.dtype)  # [P]
            sums.add_pairs("coulomb", coulomb_energy(r2.sqrt(), qq, self.coulomb, self.cutoff, self.epsilon_rf), pairs)

        binned = sums.binned()  # {name: [F, bins]}
        extra = {k: binned.pop(k) for k in ("lj_intra", "lj_inter") if k in binned}
        if single:
            binned = {k: v.squeeze(0) for k, v in binned.items()}
            extra = {k: v.squeeze(0) for k, v in extra.items()}
        per_frame = {k: v.sum(-1) for k, v in binned.items()}
        return EnergyTerms(**per_frame,
                           per_molecule={**binned, **extra} if resolution == "molecule" else None,
                           per_atom=binned if resolution == "atom" else None,
                           pair_lj=(pairs, lj.detach()) if pair_lj else None)


def evaluate_terms(terms: Iterable[Term], positions: Tensor, boxes: Tensor | None = None,
                   coulomb: bool = True) -> dict[str, Tensor]:
    """Summed energies of given listed terms, no neighbour search: ``{category: [F]}`` float64.

    For energy priors on small local environments: ``terms`` index into ``positions``
    (``[F, n, 3]`` or ``[n, 3]``); ``boxes=None`` uses the vectors as they are.
    """
    out: dict[str, Tensor] = {}
    for term in terms:
        for category, e in term_energies(term, positions, boxes, coulomb).items():
            s = e.to(torch.float64).sum(-1)
            out[category] = out[category] + s if category in out else s
    return out


def energy_and_forces(model: EnergyModel, positions: Tensor, boxes: Tensor | None = None,
                      resolution: str = "frame") -> tuple[EnergyTerms, Tensor]:
    """Energies and forces ``-dE/dx`` (kJ/mol/nm, positions' shape and dtype) by autograd."""
    with torch.enable_grad():  # forces also inside no_grad code (the sampler)
        x = positions.detach().requires_grad_(True)
        energies = model(x, boxes, resolution)
        (grad,) = torch.autograd.grad(energies.total.sum(), x)
    return energies.detach(), -grad
