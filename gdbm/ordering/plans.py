"""Reconstruction order: which bead's atoms are placed when, and what is hidden meanwhile.

A *plan* is made once per molecule type (thesis Sec. 4.2.1) and expanded over the molecule
instances of a system by index offsets. It is a list of steps ``(bead, atoms, heavy)``:

- pass 1 places the heavy atoms of every bead, beads in the order of a traversal of the CG
  graph; pass 2 places the hydrogens, bead by bead in the same order;
- inside a bead, atoms follow the same traversal over the atom graph, rooted at the atom
  bonded to an already placed atom when there is one (the lowest index), else at the heavy
  atom with the fewest heavy neighbours (a terminal atom, as DBM). Hydrogens are taken in the
  order in which the same traversal over the bead's heavy atoms *and* hydrogens, rooted at
  its first heavy atom, meets them;
- during a heavy step the hydrogens of the bead and of its adjacent beads are *hidden*
  (Sec. 5.1.4): they are left out of the environment so that misplaced hydrogens cannot
  steer heavy atoms. Adjacent = CG-bonded or joined by a chemical bond between home atoms
  (the sPS CG topology bonds each phenyl bead to the next backbone bead, not the backbone
  beads to each other, so the CG bonds alone would miss the nearest backbone hydrogens).

Traversals: ``dfs`` (default, DBM's best), ``bfs`` and ``random`` (the next node drawn from
the frontier with a seeded generator). Beads are traversed over the CG bonds; the default
root is DBM's convention, a terminal bead: the first bead of lowest CG degree (the first
bead of a linear chain, from which the sPS ``[align]`` chain starts). Where the CG bonds leave
a molecule in pieces, the traversal goes on at the first unvisited bead adjacent to a visited
one. Neighbours are visited in index order, so ``dfs``/``bfs`` plans depend on nothing but
the topology.

What a step *sees* is decided by its users, from the plan: forward sampling sees the atoms
of earlier steps (minus the hidden ones); Gibbs sweeps and training see every other atom
(minus the hidden ones), see :mod:`gdbm.data.samples`.

An ordering is any callable ``MoleculeGraph -> MoleculePlan``; :func:`traversal_ordering`
makes the three traversals; a learned ordering is another such callable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from gdbm.utils.errors import InputError
from gdbm.topology.mapping import block_bonds
from gdbm.topology.system import MappedSystem

Traversal = Literal["dfs", "bfs", "random", "learned"]


@dataclass(frozen=True)
class MoleculeGraph:
    """What an ordering needs to know about one molecule type; indices local, 0-based."""

    name: str
    home_bead: Tensor  # [n_atoms] long
    heavy: Tensor  # [n_atoms] bool, False for hydrogens
    bonds: Tensor  # [b, 2] long, chemical bonds
    cg_bonds: Tensor  # [c, 2] long, bead pairs of the CG topology
    n_beads: int

    @property
    def n_atoms(self) -> int:
        return len(self.home_bead)

    def atom_neighbours(self) -> list[list[int]]:
        """Bonded atoms of every atom, in index order."""
        return _adjacency(self.n_atoms, self.bonds)

    def bead_neighbours(self) -> list[list[int]]:
        """CG-bonded beads of every bead, in index order."""
        return _adjacency(self.n_beads, self.cg_bonds)

    def adjacent_beads(self) -> list[list[int]]:
        """Beads that are CG-bonded or share a chemical bond between their home atoms."""
        links = self.home_bead[self.bonds]  # [b, 2]
        links = links[links[:, 0] != links[:, 1]]
        return _adjacency(self.n_beads, torch.cat([self.cg_bonds, links]))


@dataclass(frozen=True)
class Step:
    """Place ``atoms`` (local indices, in order) of ``bead``; ``hidden`` atoms stay out of every environment."""

    bead: int
    atoms: tuple[int, ...]
    heavy: bool  # pass 1 (heavy atoms) or pass 2 (hydrogens)
    hidden: tuple[int, ...]


@dataclass(frozen=True)
class MoleculePlan:
    """The steps that reconstruct one molecule type, each of its atoms exactly once."""

    molecule: str
    n_atoms: int
    steps: tuple[Step, ...]

    def order(self) -> list[int]:
        """Atoms in placement order."""
        return [a for step in self.steps for a in step.atoms]

    def tensors(self) -> "PlanTensors":
        """The steps as padded tensors (local indices)."""
        return PlanTensors(
            bead=torch.tensor([s.bead for s in self.steps], dtype=torch.long),
            heavy=torch.tensor([s.heavy for s in self.steps], dtype=torch.bool),
            atoms=_pad([s.atoms for s in self.steps]),
            hidden=_pad([s.hidden for s in self.steps]),
        )


@dataclass
class PlanTensors:
    """Steps as tensors; ``-1`` pads. Local to a molecule type, or global after :meth:`SystemPlan.expand`."""

    bead: Tensor  # [S] long
    heavy: Tensor  # [S] bool
    atoms: Tensor  # [S, L] long, placement order
    hidden: Tensor  # [S, H] long

    def __len__(self) -> int:
        return len(self.bead)


Ordering = Callable[[MoleculeGraph], MoleculePlan]


class OrderingConfig(BaseModel):
    """Which traversal makes the plan, from which bead, with which seed (``random`` only); ``learned``:
    the order policy in file ``policy`` (:mod:`gdbm.ordering.learned`, ``gdbm order``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    traversal: Traversal = "dfs"
    start: int | None = Field(None, ge=0, description="root bead (local index); default: first terminal bead")
    seed: int = 0
    policy: str | None = Field(None, description="order policy file (traversal: learned)")

    def model_post_init(self, _context) -> None:
        if (self.traversal == "learned") != (self.policy is not None):
            raise ValueError("traversal 'learned' and an order policy file go together")


def molecule_type_graphs(system: MappedSystem) -> dict[str, MoleculeGraph]:
    """One :class:`MoleculeGraph` per molecule type, from its first instance."""
    aa, mapping = system.aa, system.mapping
    if not bool((mapping.home_bead >= 0).all()):
        missing = (torch.nonzero(mapping.home_bead < 0).flatten()[:5] + 1).tolist()
        raise InputError(f"reconstruction needs a home bead for every atom; atoms {missing} ... have none "
                         "(use a mapping such as DBM's .map that assigns every atom)")
    bead_start = _bead_starts(system)
    heavy = torch.tensor([e != "H" for e in aa.elements], dtype=torch.bool)
    graphs: dict[str, MoleculeGraph] = {}
    for k, block in enumerate(aa.molecules):
        if block.name in graphs:
            continue
        b0, b1 = int(bead_start[k]), int(bead_start[k + 1])
        cg = mapping.cg_bonds
        inside = (cg >= b0).all(1) & (cg < b1).all(1)
        graphs[block.name] = MoleculeGraph(
            name=block.name, home_bead=mapping.home_bead[block.start:block.stop] - b0,
            heavy=heavy[block.start:block.stop], bonds=block_bonds(aa, block), cg_bonds=cg[inside] - b0,
            n_beads=b1 - b0)
    return graphs


@dataclass
class SystemPlan:
    """A plan per molecule type and where each molecule instance starts."""

    plans: dict[str, MoleculePlan]
    molecules: list[str]  # type of every molecule instance
    atom_start: Tensor  # [M + 1] long, atom offsets of the instances (and the total)
    bead_start: Tensor  # [M + 1] long

    def expand(self) -> tuple[PlanTensors, Tensor, Tensor]:
        """Every step of every instance with global indices, instances in order.

        Returns the steps, the molecule instance ``[S]`` and the step's index in its type's
        plan ``[S]``. Built per type by broadcasting offsets (no loop over instances).
        """
        parts, mols, steps_of = [], [], []
        for name, plan in self.plans.items():
            local = plan.tensors()
            inst = torch.tensor([k for k, m in enumerate(self.molecules) if m == name], dtype=torch.long)  # [K]
            a0 = self.atom_start[inst].view(-1, 1, 1)  # [K, 1, 1]
            parts.append(PlanTensors(
                bead=(local.bead + self.bead_start[inst].view(-1, 1)).flatten(),  # [K * S]
                heavy=local.heavy.repeat(len(inst)),
                atoms=_shift(local.atoms, a0), hidden=_shift(local.hidden, a0),  # [K * S, L], [K * S, H]
            ))
            mols.append(inst.repeat_interleave(len(local)))
            steps_of.append(torch.arange(len(local)).repeat(len(inst)))
        mol, step = torch.cat(mols), torch.cat(steps_of)
        order = torch.argsort(mol * (int(step.max()) + 1) + step)  # instances in order, then steps
        steps = PlanTensors(torch.cat([p.bead for p in parts])[order], torch.cat([p.heavy for p in parts])[order],
                            _cat_padded([p.atoms for p in parts])[order], _cat_padded([p.hidden for p in parts])[order])
        return steps, mol[order], step[order]


def plan_with(system: MappedSystem, ordering: Ordering) -> SystemPlan:
    """The plan that ``ordering`` makes of every molecule type of ``system``."""
    plans = {name: ordering(graph) for name, graph in molecule_type_graphs(system).items()}
    atom_start = torch.tensor([b.start for b in system.aa.molecules] + [system.aa.n_atoms], dtype=torch.long)
    return SystemPlan(plans, [b.name for b in system.aa.molecules], atom_start, _bead_starts(system))


def _bead_starts(system: MappedSystem) -> Tensor:
    """``[M + 1]`` first bead of every molecule instance, then the bead count."""
    counts = torch.bincount(system.mapping.bead_molecule, minlength=system.aa.n_molecules)  # [M]
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])


def _adjacency(n: int, edges: Tensor) -> list[list[int]]:
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for i, j in edges.tolist():
        neighbours[i].add(j)
        neighbours[j].add(i)
    return [sorted(nb) for nb in neighbours]


def _pad(rows: list[tuple[int, ...]]) -> Tensor:
    """``[len(rows), max length]`` long, ``-1`` padded."""
    out = torch.full((len(rows), max((len(r) for r in rows), default=0)), -1, dtype=torch.long)
    for k, r in enumerate(rows):
        out[k, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def _cat_padded(parts: list[Tensor]) -> Tensor:
    """Row-wise concatenation of ``-1`` padded ``[r_k, L_k]`` tensors, padded to the widest."""
    width = max(t.shape[1] for t in parts)
    return torch.cat([torch.nn.functional.pad(t, (0, width - t.shape[1]), value=-1) for t in parts])


def _shift(local: Tensor, offset: Tensor) -> Tensor:
    """Local indices ``[S, L]`` shifted by per-instance ``offset [K, 1, 1]`` (pads kept) -> ``[K * S, L]``."""
    out = torch.where(local >= 0, local + offset, -1)  # [K, S, L]
    return out.flatten(0, 1)
