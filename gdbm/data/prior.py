"""The energy prior of a training sequence (thesis Sec. 4.5): which force-field terms, re-indexed locally.

For the atoms pi_I of one step and the atoms present around them, the prior holds

- every listed term of the topology (bonds, angles, proper and improper dihedrals, [pairs])
  with at least one sequence atom and all its other atoms present in the environment;
- the Lennard-Jones pairs of sequence atoms with the environment's atoms and with each
  other, except excluded pairs, as one ``pair_lj`` term (``qq`` = 0: Coulomb is not part of
  the prior). The environment's cutoff is the prior's: its atoms are the N_I of Eq. 4.15-4.16,
  taken per atom (distance to the bead) instead of per bead.

Indices are local: context particles ``[0, P)`` then sequence atoms ``P + [0, L)``, so the
terms can be evaluated on the sample's local positions (any rotation) with
:func:`gdbm.physics.energy.evaluate_terms`.

A heavy-atom step may also carry a :class:`HydrogenLookahead`: ideal sites of the hydrogens a
later step places (:mod:`gdbm.topology.hydrogens`) and their LJ pairs, so that the energy sees
where a ring's hydrogens will land (the sampler's candidate score, and the ``lookahead`` prior term).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.physics.bonded import term_energies
from gdbm.physics.nonbonded import lj_energy_linear_core
from gdbm.topology.hydrogens import HydrogenGroups, ideal_sites
from gdbm.topology.topology import Term, Topology


def pair_lj_energies(term: Term, positions: Tensor, lj_core: float | None = None) -> Tensor:
    """``[..., m]`` Lennard-Jones energy of the ``pair_lj`` ``term`` on ``positions [..., N, 3]``, continued
    linearly below ``lj_core * sigma`` (:func:`gdbm.physics.nonbonded.lj_energy_linear_core`; None = bare)."""
    if lj_core is None:
        return term_energies(term, positions, coulomb=False)["lj"]
    d = positions[..., term.index[:, 1], :] - positions[..., term.index[:, 0], :]  # [..., m, 3]
    return lj_energy_linear_core((d * d).sum(-1), term.params["c6"].to(d.dtype), term.params["c12"].to(d.dtype),
                                 lj_core)


@dataclass
class HydrogenLookahead:
    """Ideal hydrogen sites on some heavy atoms and the sites' LJ pairs, in slots of a position array.

    The sites are computed from the positions (so energies are differentiable in the heavy atoms);
    pair slots at or beyond the array's length ``N`` name the sites, ``N + e``, in the order of
    :meth:`positions`: row by row, the first hydrogen, then the second of a CH2.
    """

    sites: Tensor  # [g, 4] long slots: the heavy atom, then its heavy neighbours (padding repeats the atom)
    n_heavy: Tensor  # [g] long
    n_hydrogens: Tensor  # [g] long, 1 or 2
    length: Tensor  # [g, 2] nm, float64
    angle: Tensor  # [g] rad, float64 (H-X-H of a CH2)
    pairs: Term  # pair_lj

    @property
    def valid(self) -> Tensor:
        """``[g, 2]`` bool: which of each row's two site slots is a hydrogen."""
        return torch.arange(2, device=self.n_hydrogens.device) < self.n_hydrogens.unsqueeze(1)

    @property
    def n_sites(self) -> int:
        return int(self.n_hydrogens.sum())

    def positions(self, positions: Tensor) -> Tensor:
        """``[..., E, 3]``: the sites on ``positions [..., N, 3]``."""
        x = positions.double()  # the site directions in float64, as the sampler's score
        every = ideal_sites(x[..., self.sites[:, 0], :], x[..., self.sites[:, 1:], :], self.n_heavy,
                            self.n_hydrogens, self.length, self.angle)  # [..., g, 2, 3]
        return every[..., self.valid, :].to(positions.dtype)

    def energies(self, positions: Tensor, lj_core: float | None = None) -> Tensor:
        """``[..., m]`` the LJ energy of every pair, the sites built on ``positions [..., N, 3]``."""
        return pair_lj_energies(self.pairs, torch.cat([positions, self.positions(positions)], -2), lj_core)

    def to(self, device: torch.device | str) -> "HydrogenLookahead":
        return HydrogenLookahead(self.sites.to(device), self.n_heavy.to(device), self.n_hydrogens.to(device),
                                 self.length.to(device), self.angle.to(device), self.pairs.to(device))


class PriorIndex:
    """Per plan step, the topology's term instances that touch its atoms; exclusions; LJ tables."""

    def __init__(self, topology: Topology, step_atoms: Tensor) -> None:
        """``step_atoms``: ``[S, L]`` global atoms of every plan step (-1 padded), each atom in one step."""
        if topology.lj is None:
            raise ValueError(f"the energy prior needs force-field parameters; {topology.source or 'the topology'} "
                             "has none")
        n = topology.n_atoms
        self.n_atoms = n
        step_of_atom = torch.full((n,), -1, dtype=torch.long)
        rows = torch.arange(len(step_atoms)).unsqueeze(1).expand_as(step_atoms)  # [S, L]
        step_of_atom[step_atoms[step_atoms >= 0]] = rows[step_atoms >= 0]
        self.terms = [t for t in topology.terms.values() if len(t)]
        self.instances: list[tuple[Tensor, Tensor]] = [_by_step(step_of_atom[t.index], len(step_atoms))
                                                       for t in self.terms]
        excl = topology.exclusions
        self.exclusions = torch.sort((excl[:, 0] * n + excl[:, 1]).double()).values  # [e] keys i * n + j, i < j
        self.lj_type = topology.lj.atom_type  # [n]
        self.c6, self.c12 = topology.lj.c6, topology.lj.c12  # [T, T] float64

    def terms_for(self, step: int, context_atom: Tensor, sequence: Tensor) -> list[Term]:
        """The prior of plan step ``step`` with context particles ``context_atom [P]`` (-1 for beads).

        Context atoms must come first in the context, in increasing index order (as
        :func:`gdbm.data.environment.find_neighbours` sorts them); ``sequence``: ``[L]`` atoms.
        """
        atoms = context_atom[context_atom >= 0]  # [P_a], slots 0 .. P_a - 1
        n_context = len(context_atom)
        out = []
        for term, (ptr, inst) in zip(self.terms, self.instances):
            take = inst[ptr[step]:ptr[step + 1]]  # [m]
            slot = self._slots(term.index[take], atoms, sequence, n_context)  # [m, k]
            ok = (slot >= 0).all(1)
            out.append(Term(term.kind, slot[ok], {k: v[take][ok] for k, v in term.params.items()}))
        out.append(self._lj(atoms, sequence, n_context))
        return out

    def _slots(self, index: Tensor, atoms: Tensor, sequence: Tensor, n_context: int) -> Tensor:
        """Local slots of global atoms ``index [m, k]``; -1 for atoms that are not present."""
        pos = torch.searchsorted(atoms, index).clamp_(max=max(len(atoms) - 1, 0))  # [m, k]
        in_context = atoms[pos] == index if len(atoms) else torch.zeros_like(index, dtype=torch.bool)
        match = index.unsqueeze(-1) == sequence  # [m, k, L]
        in_sequence = match.any(-1)
        return torch.where(in_sequence, n_context + match.long().argmax(-1), torch.where(in_context, pos, -1))

    def _lj(self, atoms: Tensor, sequence: Tensor, n_context: int) -> Term:
        """Non-excluded LJ pairs sequence x context atoms and sequence x sequence (i < j)."""
        n_seq = len(sequence)
        seq_slot = torch.arange(n_seq).unsqueeze(1).expand(n_seq, len(atoms)).flatten()  # [L * P_a]
        ctx_slot = torch.arange(len(atoms)).repeat(n_seq)
        i, j = torch.triu_indices(n_seq, n_seq, 1)  # [2, L (L - 1) / 2]
        a = torch.cat([sequence[seq_slot], sequence[i]])  # [p] global atoms
        b = torch.cat([atoms[ctx_slot], sequence[j]])
        slots = torch.stack([torch.cat([n_context + seq_slot, n_context + i]), torch.cat([ctx_slot, n_context + j])], 1)
        return self._pair_term(a, b, slots)

    def lookahead_lj(self, context_atom: Tensor, sequence: Tensor, extra: Tensor) -> Term:
        """Non-excluded LJ pairs of ``extra [E]`` atoms (slots after the sequence's: ``P + L + [0, E)``) with the
        context atoms, the ``sequence [L]`` and each other (i < j): atoms a step will place later, scored early."""
        atoms = context_atom[context_atom >= 0]
        n_context, n_seq, n_extra = len(context_atom), len(sequence), len(extra)
        old = torch.cat([atoms, sequence])  # [P_a + L]
        old_slot = torch.cat([torch.arange(len(atoms)), n_context + torch.arange(n_seq)])
        new_slot = n_context + n_seq + torch.arange(n_extra)
        e = torch.arange(n_extra).unsqueeze(1).expand(n_extra, len(old)).flatten()  # [E (P_a + L)]
        o = torch.arange(len(old)).repeat(n_extra)
        i, j = torch.triu_indices(n_extra, n_extra, 1)
        a = torch.cat([extra[e], extra[i]])
        b = torch.cat([old[o], extra[j]])
        slots = torch.stack([torch.cat([new_slot[e], new_slot[i]]), torch.cat([old_slot[o], new_slot[j]])], 1)
        return self._pair_term(a, b, slots)

    def hydrogen_lookahead(self, groups: HydrogenGroups, centres: Tensor, context_atom: Tensor,
                           sequence: Tensor) -> HydrogenLookahead | None:
        """Ideal sites on the heavy atoms ``centres [g]`` (-1 entries ignored) and their LJ pairs with the context atoms
        ``context_atom [P]`` (-1 for beads), the ``sequence [L]`` and each other, in local slots (sites at
        ``P + L + e``). Atoms whose heavy neighbours are absent, or whose hydrogens are present, are left
        out; None when none is left."""
        centres = centres[centres >= 0]
        atoms = context_atom[context_atom >= 0]
        n_context = len(context_atom)
        heavy = groups.heavy[centres]  # [g, 3]
        slot = self._slots(torch.cat([centres.unsqueeze(1), heavy], 1), atoms, sequence, n_context)  # [g, 4]
        hydrogens = groups.hydrogens[centres, :2]  # [g, 2] (shapes with sites have at most two)
        present = torch.isin(hydrogens, atoms) & (hydrogens >= 0)
        ok = (slot[:, 0] >= 0) & ((slot[:, 1:] >= 0) | (heavy < 0)).all(1) & ~present.any(1)
        if not ok.any():
            return None
        slot, heavy, hydrogens, centres = slot[ok], heavy[ok], hydrogens[ok], centres[ok]
        slot[:, 1:] = torch.where(heavy >= 0, slot[:, 1:], slot[:, :1])
        n_hydrogens = (hydrogens >= 0).sum(1)
        extra = hydrogens[hydrogens >= 0]  # [E], row by row
        return HydrogenLookahead(slot, (heavy >= 0).sum(1), n_hydrogens, groups.length[centres, :2],
                                 groups.angle[centres], self.lookahead_lj(context_atom, sequence, extra))

    def _pair_term(self, a: Tensor, b: Tensor, slots: Tensor) -> Term:
        """The ``pair_lj`` term of global atom pairs ``a [p]``, ``b [p]`` at local ``slots [p, 2]``, exclusions
        removed."""
        key = (torch.minimum(a, b) * self.n_atoms + torch.maximum(a, b)).double()
        where = torch.searchsorted(self.exclusions, key).clamp_(max=max(len(self.exclusions) - 1, 0))
        keep = self.exclusions[where] != key if len(self.exclusions) else torch.ones_like(key, dtype=torch.bool)
        ta, tb = self.lj_type[a[keep]], self.lj_type[b[keep]]
        return Term("pair_lj", slots[keep], {"c6": self.c6[ta, tb], "c12": self.c12[ta, tb],
                                             "qq": torch.zeros(int(keep.sum()), dtype=torch.float64)})


def _by_step(steps: Tensor, n_steps: int) -> tuple[Tensor, Tensor]:
    """For term instances whose atoms lie in plan steps ``steps [m, k]``: CSR ``(ptr [S + 1], instance [h])``."""
    m, k = steps.shape
    inst = torch.arange(m).unsqueeze(1).expand(m, k)  # [m, k]
    pair = torch.unique(steps.flatten().double() * m + inst.flatten())  # (step, instance) once, by step
    step, inst = (pair // m).long(), (pair % m).long()
    ptr = torch.zeros(n_steps + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.bincount(step, minlength=n_steps), 0)
    return ptr, inst
