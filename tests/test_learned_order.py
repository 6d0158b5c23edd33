"""The learned reconstruction order: frontier, plans, reordered samples, policy training and files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.data.samples import SequenceDataset, collate, prior_energies
from gdbm.data.trajectory import read_frames
from gdbm.utils.errors import InputError
from gdbm.ordering.learned import GraphTensors, OrderPolicy, learned_ordering, load_ordering, save_policy
from gdbm.ordering import MoleculeGraph, OrderingConfig, molecule_type_graphs, plan_system, traversal_ordering
from gdbm.topology.system import load_mapped_system
from gdbm.training.order_policy import fit_order_policy, reorder_sample


def chain() -> MoleculeGraph:
    """C0-C1-C2-C3 in one bead, an H on C0 in a second."""
    bonds = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 4]])
    return MoleculeGraph("X", torch.tensor([0, 0, 0, 0, 1]), torch.tensor([True, True, True, True, False]), bonds,
                         torch.zeros(0, 2, dtype=torch.long), 2)


def test_bond_path_neighbourhoods():
    g = GraphTensors.from_graph(chain())
    assert g.bonded[0].nonzero().flatten().tolist() == [1, 4]
    assert g.second[0].nonzero().flatten().tolist() == [2]
    assert g.third[0].nonzero().flatten().tolist() == [3]
    assert g.third[4].nonzero().flatten().tolist() == [2]


@pytest.mark.parametrize("seed", range(3))
def test_sampled_orders_grow_along_bonds(seed: int):
    """After C2 is placed, each next atom is bonded to a placed one: C1 or C3, never C0 before C1."""
    torch.manual_seed(seed)
    policy, g = OrderPolicy(), GraphTensors.from_graph(chain())
    placed = torch.zeros(64, 5)
    placed[:, 2] = 1.0
    atoms = torch.tensor([[0, 1, 3, -1]]).expand(64, -1)
    order, logp = policy.orders(g, placed, atoms, generator=torch.Generator().manual_seed(seed))
    placed_atoms = atoms.gather(1, order)  # [64, 4] atoms in placement order, the pad last
    assert (placed_atoms[:, -1] == -1).all() and (logp <= 0).all()
    first_c0 = (placed_atoms == 0).float().argmax(1)
    first_c1 = (placed_atoms == 1).float().argmax(1)
    assert (first_c1 < first_c0).all()
    assert len({tuple(r) for r in placed_atoms.tolist()}) > 1  # it samples, not always the same


def test_learned_plan_keeps_the_steps_and_permutes_inside_them(sps: Path):
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map")
    graph = next(iter(molecule_type_graphs(system).values()))
    torch.manual_seed(0)
    dfs, learned = traversal_ordering()(graph), learned_ordering(OrderPolicy())(graph)
    assert [(s.bead, s.heavy, s.hidden, sorted(s.atoms)) for s in dfs.steps] == \
           [(s.bead, s.heavy, s.hidden, sorted(s.atoms)) for s in learned.steps]
    assert sorted(learned.order()) == list(range(graph.n_atoms))


def test_reordered_samples_keep_their_energies(sps: Path):
    """Reordering moves the prior's sequence indices with the atoms (the hydrogen look-ahead's too): the
    reference energies are unchanged."""
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map")
    frames = read_frames(sps / "train_t568" / "aa" / "90.gro")
    dataset = SequenceDataset(frames, system, beads=read_frames(sps / "train_t568" / "cg" / "90.gro"),
                              lookahead=("planar_ch", "ch", "ch2"))
    samples = [dataset[i] for i in range(0, 600, 7) if len(dataset[i].atoms) > 2]
    assert any(s.lookahead is not None for s in samples)
    turned = [reorder_sample(s, torch.randperm(len(s.atoms), generator=torch.Generator().manual_seed(k)))
              for k, s in enumerate(samples)]
    a, b = collate(samples, rotate=False), collate(turned, rotate=False)
    assert not torch.equal(a.atoms, b.atoms)
    for name, energy in prior_energies(a, a.targets.double()).items():
        torch.testing.assert_close(prior_energies(b, b.targets.double())[name], energy)


def test_policy_training_and_its_file(sps: Path, tmp_path: Path):
    from gdbm.conditioners.equivariant import E3nnConfig, build_e3nn_conditioner

    system = load_mapped_system(sps / "topol.top", sps / "PS1.map")
    dataset = SequenceDataset(read_frames(sps / "train_t568" / "aa" / "90.gro"), system,
                              beads=read_frames(sps / "train_t568" / "cg" / "90.gro"), align=False)
    torch.manual_seed(0)
    generator, _ = build_e3nn_conditioner(dataset.spec.n_features, dataset.spec.n_target_types,
                                          E3nnConfig(channels=4, hidden=8, refinements=1))
    policy = OrderPolicy()
    before = [p.clone() for p in policy.parameters()]
    rows = []
    fit_order_policy(dataset, generator, molecule_type_graphs(system), iterations=2, batch_size=3, orders=2,
                     policy=policy, log=rows.append)
    assert len(rows) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    path = save_policy(tmp_path / "policy.pt", policy, OrderingConfig())
    plan = plan_system(system, OrderingConfig(traversal="learned", policy=str(path)))
    graph = next(iter(molecule_type_graphs(system).values()))
    assert plan.plans[graph.name] == learned_ordering(policy)(graph)
    with pytest.raises(InputError):
        load_ordering(tmp_path / "missing.pt")
    with pytest.raises(ValueError):
        OrderingConfig(traversal="learned")
