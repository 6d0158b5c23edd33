"""Training of the learned reconstruction order (:mod:`gdbm.ordering.learned`) against a trained generator.

REINFORCE with a leave-one-out baseline: training items are drawn, several orders per item from
the policy, the fixed generator places the step's atoms in each order (unrolled, as in
training), and the reward is ``-log(1 + sum over force-field terms |E(generated) - E(reference)|)``.
:func:`learn_order` runs it from a checkpoint to a policy file (``gdbm order``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from gdbm.conditioners.interface import Generator
from gdbm.data.samples import SequenceBatch, SequenceDataset, SequenceSample, collate, prior_energies
from gdbm.utils.errors import InputError
from gdbm.ordering.learned import GraphTensors, OrderPolicy
from gdbm.ordering import MoleculeGraph, molecule_type_graphs, save_policy
from gdbm.topology.system import load_mapped_system
from gdbm.topology.topology import Term
from gdbm.training.config import load_config
from gdbm.training.trained_model import load_generator
from gdbm.training.trainer import build_dataset, generate_sequence


def reorder_sample(sample: SequenceSample, order: Tensor) -> SequenceSample:
    """The same training item with its atoms placed in ``order [L]`` (a permutation of its slots)."""
    n_context = len(sample.context_atom)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))

    def move_slots(index: Tensor) -> Tensor:  # sequence slots follow the order; context and site slots stay
        sequence = (index >= n_context) & (index < n_context + len(order))
        return torch.where(sequence, n_context + inverse[(index - n_context).clamp(0, len(order) - 1)], index)

    def move(term: Term) -> Term:
        return Term(term.kind, move_slots(term.index), term.params)

    look = sample.lookahead
    if look is not None:
        look = replace(look, sites=move_slots(look.sites), pairs=move(look.pairs))

    return replace(sample, atoms=sample.atoms[order], positions=sample.positions[order],
                   target_type=sample.target_type[order], context_channel=sample.context_channel[order],
                   sequence_channel=sample.sequence_channel[order][:, order], prior=[move(t) for t in sample.prior],
                   relabellings=inverse[sample.relabellings[:, order]], lookahead=look)


class StepContext:
    """For every expanded plan step of a dataset: its molecule type's graph, local atoms and atoms placed before."""

    def __init__(self, dataset: SequenceDataset, graphs: dict[str, MoleculeGraph]) -> None:
        plan = dataset.plan
        steps, mol, self.position = plan.expand()  # position: the step's index in its type's plan
        start = plan.atom_start[mol]  # [S]
        self.type = [plan.molecules[m] for m in mol.tolist()]
        self.graphs = {name: GraphTensors.from_graph(g) for name, g in graphs.items()}
        self.atoms = torch.where(steps.atoms >= 0, steps.atoms - start.unsqueeze(1), -1)  # [S, L] local
        self.placed: dict[str, Tensor] = {}
        for name, p in plan.plans.items():  # per type: atoms placed before each of its steps, [S_type, n]
            local = p.tensors().atoms
            once = torch.zeros(len(local), p.n_atoms)
            rows = torch.arange(len(local)).unsqueeze(1).expand_as(local)
            once[rows[local >= 0], local[local >= 0]] = 1.0
            self.placed[name] = torch.cumsum(once, 0) - once


def energy_deviation(batch: SequenceBatch, fake: Tensor, lj_core: float | None) -> Tensor:
    """``[B]`` sum over force-field terms of |E(generated) - E(reference)| (kJ/mol) of each sequence."""
    gen = prior_energies(batch, fake.to(torch.float64), lj_core)
    ref = prior_energies(batch, batch.targets.to(torch.float64), lj_core)
    return sum((gen[k] - ref[k]).abs() for k in gen)


def fit_order_policy(dataset: SequenceDataset, generator: Generator, graphs: dict[str, MoleculeGraph],
                     iterations: int = 100, batch_size: int = 16, orders: int = 4, lr: float = 1e-2,
                     lj_core: float | None = 0.8, seed: int = 0, policy: OrderPolicy | None = None,
                     log=print) -> OrderPolicy:
    """Train an :class:`OrderPolicy` by REINFORCE against ``generator`` (kept fixed) on ``dataset``'s items.

    Each iteration draws ``batch_size`` items with more than one atom, ``orders`` orders each;
    advantage = reward minus the mean reward of the item's other orders (leave-one-out).
    """
    if orders < 2:
        raise InputError("the leave-one-out baseline needs at least 2 orders per item")
    policy = policy or OrderPolicy()
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    context = StepContext(dataset, graphs)
    multi = torch.nonzero((context.atoms[dataset.item_step] >= 0).sum(1) > 1).squeeze(1)  # items worth ordering
    rng = torch.Generator().manual_seed(seed)
    turn = dataset.config.random_turns(getattr(generator, "aligned", True))
    for it in range(iterations):
        items = multi[torch.randint(len(multi), (batch_size,), generator=rng)]
        samples = [dataset[int(i)] for i in items]
        steps = dataset.item_step[items]
        logps, reordered = [], []
        for s, sample in zip(steps.tolist(), samples):  # per item: the orders of its step
            name = context.type[s]
            length = len(sample.atoms)
            atoms = context.atoms[s, :length].expand(orders, -1)
            placed = context.placed[name][context.position[s]].expand(orders, -1)
            order, logp = policy.orders(context.graphs[name], placed, atoms, generator=rng)
            logps.append(logp)
            reordered += [reorder_sample(sample, o) for o in order]
        batch = collate(reordered, rng, rotate=turn)
        with torch.no_grad():
            noise = torch.randn(*batch.step_mask.shape, generator.noise_dim, generator=rng)
            deviation = energy_deviation(batch, generate_sequence(generator, batch, noise), lj_core)
        reward = -torch.log1p(deviation).float()  # log: one clash (1e4 kJ/mol) must not drown the rest
        reward = reward.view(batch_size, orders)  # [B, K]
        advantage = reward - (reward.sum(1, keepdim=True) - reward) / (orders - 1)
        advantage = advantage / advantage.std().clamp_min(1e-6)
        loss = -(advantage * torch.stack(logps)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        log({"iteration": it + 1, "reward": reward.mean().item(), "loss": loss.item()})
    return policy




def learn_order(checkpoint: str | Path, output: str | Path, *, config: str | Path | None = None,
                iterations: int = 100, batch_size: int = 16, orders: int = 4, lr: float = 1e-2, seed: int = 0,
                force: bool = False, log: Callable[[dict], None] = print) -> Path:
    """Train an order policy for the generator of ``checkpoint`` (kept fixed) with
    :func:`fit_order_policy` on the training frames of ``config`` (an experiment config file;
    default: the checkpoint's) and write it to ``output`` for ``gdbm backmap --ordering``.

    The config's ordering must be a traversal (the policy reorders its steps) of one system.
    ``log`` gets one row per iteration; ``force`` overwrites ``output``. Returns ``output``.
    """
    output = Path(output)
    if output.exists() and not force:
        raise InputError("exists; pass --force to overwrite", output)
    generator, _, experiment = load_generator(checkpoint)
    settings = load_config(config) if config else experiment
    if settings.ordering.traversal == "learned":
        raise InputError("the training plan must be a traversal (dfs, bfs, random); the policy reorders its steps",
                         config)
    settings = settings.model_copy(update={"model": experiment.model})
    torch.manual_seed(seed)
    dataset = build_dataset(settings)
    if not hasattr(dataset, "plan"):
        raise InputError("gdbm order trains on one system; the config lists several", config)
    d = settings.sources[0]
    graphs = molecule_type_graphs(load_mapped_system(d.topology, d.mapping, d.cg_itp, parameters=d.parameters))
    policy = fit_order_policy(dataset, generator, graphs, iterations, batch_size, orders, lr,
                              settings.prior.lj_core, seed, log=log)
    return save_policy(output, policy, settings.ordering)
