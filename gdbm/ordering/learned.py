"""A learned reconstruction order (thesis Sec. 9.8): which atom of a step to place next.

The plan's bead order stays a traversal (DFS by default, the thesis' best); inside every step a
small policy chooses the next atom among those whose placement is possible (*the frontier*:
atoms bonded to an atom already placed, in this or an earlier step; all of the step's atoms
when none is). It scores each candidate from graph features only (heavy or hydrogen; bonded,
2- and 3-bonds-away atoms placed; bonds left open), so one plan per molecule type comes out
(greedy), the sampler batches it like any other plan, and it applies to molecules it was not
trained on.

Training (:func:`gdbm.training.order_policy.fit_order_policy`, REINFORCE with a leave-one-out baseline):
for training items, ``orders`` orders per item are drawn from the policy; a trained generator
places the step's atoms in each order (unrolled, as in training); the reward is ``-log(1 + deviation)``,
the deviation being the sum over force-field terms (bond, angle, proper, improper, LJ: what the
dihedral / improper / LJ JSDs of ``gdbm eval`` measure) of |E(generated) - E(reference)| in
kJ/mol; the log keeps one clash from drowning every other item. Orders whose
placements come out closer to the reference's energies become more likely.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from gdbm.utils.atomic_files import atomic_path
from gdbm.utils.errors import InputError
from gdbm.ordering.plans import MoleculeGraph, MoleculePlan, Ordering, OrderingConfig, Step
from gdbm.ordering.traversals import traversal_ordering

N_FEATURES = 8


@dataclass
class GraphTensors:
    """Bond-path neighbourhoods of one molecule type as dense ``[n, n]`` matrices (n ~ 100s of atoms)."""

    heavy: Tensor  # [n] float
    bonded: Tensor  # [n, n] float, 1 bond apart
    second: Tensor  # [n, n] float, 2 bonds apart
    third: Tensor  # [n, n] float, 3 bonds apart

    @classmethod
    def from_graph(cls, graph: MoleculeGraph) -> "GraphTensors":
        n = graph.n_atoms
        a = torch.zeros(n, n)
        a[graph.bonds[:, 0], graph.bonds[:, 1]] = 1.0
        a = ((a + a.T) > 0).float()
        seen = (a + torch.eye(n)) > 0
        second = ((a @ a) > 0) & ~seen
        seen |= second
        third = ((second.float() @ a) > 0) & ~seen
        return cls(graph.heavy.float(), a, second.float(), third.float())


def candidate_features(graph: GraphTensors, placed: Tensor, atoms: Tensor, done: Tensor) -> Tensor:
    """Features ``[B, L, N_FEATURES]`` of the step's atoms ``atoms [B, L]`` (local, -1 pad) given the
    atoms placed so far ``placed [B, n]`` (float 0/1) and those of the step already placed ``done [B, L]``."""
    idx = atoms.clamp(min=0)
    gather = lambda m: torch.gather(placed @ m, 1, idx)  # [B, L] placed neighbours per bond distance
    degree = graph.bonded.sum(1)[idx]  # [B, L]
    bonded_placed = gather(graph.bonded)
    fraction = done.float().mean(1, keepdim=True).expand_as(degree)
    return torch.stack([graph.heavy[idx], degree / 4, bonded_placed, (degree - bonded_placed) / 4,
                        gather(graph.second) / 4, gather(graph.third) / 8, fraction,
                        torch.ones_like(degree)], -1)


def frontier(graph: GraphTensors, placed: Tensor, atoms: Tensor, done: Tensor) -> Tensor:
    """``[B, L]`` bool: the step's unplaced atoms bonded to a placed atom; all unplaced ones where none is."""
    left = (atoms >= 0) & ~done
    linked = left & (torch.gather(placed @ graph.bonded, 1, atoms.clamp(min=0)) > 0)
    return torch.where(linked.any(1, keepdim=True), linked, left)


class OrderPolicy(nn.Module):
    """Candidate features -> a logit per candidate (an MLP shared by all atoms)."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, features: Tensor) -> Tensor:
        return self.mlp(features).squeeze(-1)  # [B, L]

    def orders(self, graph: GraphTensors, placed: Tensor, atoms: Tensor, greedy: bool = False,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Orders of the step atoms ``atoms [B, L]``: ``[B, L]`` slot placed k-th (pads last) and the log-probability ``[B]``."""
        placed = placed.clone()
        done = torch.zeros_like(atoms, dtype=torch.bool)
        rows = torch.arange(len(atoms))
        chosen, logp = [], torch.zeros(len(atoms))
        for _ in range(atoms.shape[1]):  # a step has a handful of atoms
            allowed = frontier(graph, placed, atoms, done)  # [B, L]
            logits = self(candidate_features(graph, placed, atoms, done)).masked_fill(~allowed, -torch.inf)
            any_left = allowed.any(1)
            logits = torch.where(any_left.unsqueeze(1), logits, 0.0)  # finished rows: a dummy choice
            log_prob = torch.log_softmax(logits, -1)
            pick = (logits.argmax(-1) if greedy
                    else torch.multinomial(log_prob.exp(), 1, generator=generator).squeeze(1))  # [B]
            pick = torch.where(any_left, pick, (~done).long().argmax(-1))
            logp = logp + torch.where(any_left, log_prob[rows, pick], 0.0)
            chosen.append(pick)
            done[rows, pick] = True
            real = atoms[rows, pick] >= 0
            placed[rows[real], atoms[rows, pick][real]] = 1.0
        return torch.stack(chosen, 1), logp


def learned_ordering(policy: OrderPolicy, base: OrderingConfig | None = None) -> Ordering:
    """The ordering that keeps ``base``'s steps (default DFS) and reorders each step's atoms greedily by ``policy``."""
    traverse = traversal_ordering(base)

    @torch.no_grad()
    def ordering(graph: MoleculeGraph) -> MoleculePlan:
        plan, tensors = traverse(graph), GraphTensors.from_graph(graph)
        placed = torch.zeros(1, graph.n_atoms)
        steps = []
        for step in plan.steps:
            atoms = torch.tensor([step.atoms])
            order, _ = policy.orders(tensors, placed, atoms, greedy=True)
            steps.append(Step(step.bead, tuple(step.atoms[k] for k in order[0].tolist()), step.heavy, step.hidden))
            placed[0, list(step.atoms)] = 1.0
        return MoleculePlan(plan.molecule, plan.n_atoms, tuple(steps))

    return ordering


def save_policy(path: str | Path, policy: OrderPolicy, base: OrderingConfig) -> Path:
    """Write the policy and the base traversal atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"policy": policy.state_dict(), "base": base.model_dump(mode="json")}, tmp)
    return path


def load_ordering(path: str | Path) -> Ordering:
    """The :func:`learned_ordering` stored at ``path`` by :func:`save_policy`."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such order policy file", path)
    data = torch.load(path, map_location="cpu", weights_only=True)
    policy = OrderPolicy()
    policy.load_state_dict(data["policy"])
    return learned_ordering(policy.eval(), OrderingConfig.model_validate(data["base"]))
