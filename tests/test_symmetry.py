"""Equivalent labellings of symmetric atoms (a phenyl ring turned by 180 degrees, a CH2's hydrogens) and the
supervised distance that takes the nearest of them, on real sPS chains."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.data.samples import SequenceDataset, collate
from gdbm.ordering import OrderingConfig
from gdbm.topology.symmetry import step_relabellings
from gdbm.topology.system import load_mapped_system
from gdbm.training.order_policy import reorder_sample
from gdbm.training.trainer import _labelled, _squared_distance, nearest_targets


def _dataset(two_chains: Path) -> SequenceDataset:
    system = load_mapped_system(two_chains / "topol.top", two_chains / "PS1.map")
    return SequenceDataset(read_frames(two_chains / "aa.gro"), system, OrderingConfig(traversal="dfs"),
                           oversample=False)


def test_the_ring_step_may_turn_by_half_a_turn_and_a_ch2_may_swap_its_hydrogens(two_chains: Path):
    data = _dataset(two_chains)
    system = load_mapped_system(two_chains / "topol.top", two_chains / "PS1.map")
    names = system.aa.names
    kinds: dict[str, int] = {}
    for step in range(len(data.steps.atoms)):
        atoms = data.steps.atoms[step]
        atoms = atoms[atoms >= 0].tolist()
        orders = data.relabellings(step)
        assert orders.shape[1] == len(atoms) and torch.equal(orders[0], torch.arange(len(atoms)))
        for order in orders:  # each one a permutation of the slots
            assert sorted(order.tolist()) == list(range(len(atoms)))
        element = [names[a][0] for a in atoms]
        if element.count("C") == 6 and len(atoms) == 6:  # a phenyl ring: ipso stays, the ring reverses
            assert orders.tolist() == [[0, 1, 2, 3, 4, 5], [0, 5, 4, 3, 2, 1]]
            kinds["ring"] = kinds.get("ring", 0) + 1
        if set(element) == {"C"} and len(atoms) == 2:  # a backbone CH2-CH: nothing symmetric
            assert len(orders) == 1
            kinds["backbone"] = kinds.get("backbone", 0) + 1
        hidden = data.steps.hidden[step]
        again = step_relabellings(system.aa, atoms, hidden[hidden >= 0].tolist())
        assert torch.equal(again, orders)  # the cache per molecule type gives every instance its own answer
    assert kinds["ring"] == 20 and kinds["backbone"] > 0
    middle_h = [s for s in range(len(data.steps.atoms)) if not bool(data.steps.heavy[s])
                and int((data.steps.atoms[s] >= 0).sum()) == 3]
    assert middle_h and all(data.relabellings(s).tolist() == [[0, 1, 2], [1, 0, 2]] for s in middle_h)


def test_a_ring_placed_turned_by_half_a_turn_costs_nothing_with_relabellings(two_chains: Path):
    data = _dataset(two_chains)
    ring = next(i for i in range(len(data)) if len(data.relabellings(int(data.item_step[i]))) == 2
                and bool(data.steps.heavy[int(data.item_step[i])]))
    batch = collate([data[ring]], rotate=False)
    turned = batch.targets[:, [0, 5, 4, 3, 2, 1]]  # the same ring, its labels swapped
    assert float(_squared_distance(turned, batch)) < 1e-12
    assert torch.equal(nearest_targets(turned, batch), turned)  # what the critic's real atoms become
    assert torch.equal(nearest_targets(batch.targets, batch), batch.targets)
    assert float(_squared_distance(turned, _labelled(batch, False))) > 1e-3  # labels only: far off
    assert float(_squared_distance(batch.targets, _labelled(batch, False))) == 0.0


def test_a_reordered_sample_keeps_its_relabellings_consistent(two_chains: Path):
    data = _dataset(two_chains)
    ring = next(i for i in range(len(data)) if len(data.relabellings(int(data.item_step[i]))) == 2
                and bool(data.steps.heavy[int(data.item_step[i])]))
    sample = data[ring]
    order = torch.tensor([3, 1, 0, 5, 2, 4])
    moved = reorder_sample(sample, order)
    a, b = collate([sample], rotate=False), collate([moved], rotate=False)
    for flip in a.relabellings[0]:
        fake = a.targets[:, flip]  # the reference under an equivalent labelling, in the original order
        assert float(_squared_distance(fake, a)) < 1e-12
        assert float(_squared_distance(fake[:, order], b)) < 1e-12
