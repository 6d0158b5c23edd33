"""Reconstruction plans: coverage, passes, DBM's sPS order, hidden hydrogens, seeds, expansion."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.utils.errors import InputError
from gdbm.ordering import (
    MoleculeGraph, OrderingConfig, molecule_type_graphs, plan_system, traversal_ordering,
)
from gdbm.topology.system import MappedSystem, load_mapped_system


@pytest.fixture(scope="module")
def system(sps: Path) -> MappedSystem:
    return load_mapped_system(sps / "topol.top", sps / "PS1.map")


@pytest.fixture(scope="module")
def graph(system: MappedSystem) -> MoleculeGraph:
    return molecule_type_graphs(system)["PS1"]


@pytest.mark.parametrize("traversal", ["dfs", "bfs", "random"])
def test_plan_covers_every_atom_once_heavy_first(graph: MoleculeGraph, traversal: str) -> None:
    plan = traversal_ordering(OrderingConfig(traversal=traversal, seed=3))(graph)
    assert sorted(plan.order()) == list(range(graph.n_atoms))
    heavy = [s.heavy for s in plan.steps]
    assert heavy == sorted(heavy, reverse=True)  # every heavy step before every hydrogen step
    for step in plan.steps:
        assert all(int(graph.home_bead[a]) == step.bead for a in step.atoms)
        assert all(bool(graph.heavy[a]) == step.heavy for a in step.atoms)
    # one heavy and one hydrogen step per bead, beads in the same order in both passes
    beads = [s.bead for s in plan.steps]
    assert beads[:graph.n_beads] == beads[graph.n_beads:] and sorted(beads[:graph.n_beads]) == list(range(20))


def test_random_plan_is_seeded(graph: MoleculeGraph) -> None:
    def order(seed: int) -> list[int]:
        return traversal_ordering(OrderingConfig(traversal="random", seed=seed))(graph).order()

    assert order(1) == order(1)
    assert len({tuple(order(seed)) for seed in range(6)}) > 1
    dfs = traversal_ordering()
    assert dfs(graph) == dfs(graph)


def test_sps_dfs_plan_is_dbms(system: MappedSystem, graph: MoleculeGraph) -> None:
    plan = plan_system(system).plans["PS1"]
    heavy = [s for s in plan.steps if s.heavy]
    labels = [system.mapping.bead_labels[s.bead] for s in heavy]
    assert [s.bead for s in heavy] == list(range(20))  # from the terminal bead along the chain
    assert labels == ["BB", "SC"] * 10  # backbone and phenyl alternating
    # bead 0 starts at the terminal CH3 carbon C2; each later bead at the atom bonded to a placed one
    assert heavy[0].atoms == (1, 4)  # C2, C5
    assert heavy[1].atoms == (5, 6, 8, 10, 12, 14)  # C6 (bonded to C5), then round the ring
    assert heavy[2].atoms == (17, 20)  # C18 (bonded to C5), C21
    hydrogens = [s for s in plan.steps if not s.heavy]
    # hydrogens as a dfs over the bead's atoms from C2 meets them: H1, H3, (C5) H4, then H161
    assert hydrogens[0].atoms == (0, 2, 3, 160)
    bfs = plan_system(system, OrderingConfig(traversal="bfs")).plans["PS1"]
    assert bfs.steps[1].atoms == (5, 6, 14, 8, 12, 10)  # the ring breadth first


def test_heavy_steps_hide_hydrogens_of_the_bead_and_its_neighbours(graph: MoleculeGraph) -> None:
    plan = traversal_ordering()(graph)
    adjacent = graph.adjacent_beads()
    for step in plan.steps:
        if not step.heavy:
            assert step.hidden == ()
            continue
        near = {step.bead, *adjacent[step.bead]}
        expected = {a for a in range(graph.n_atoms) if not graph.heavy[a] and int(graph.home_bead[a]) in near}
        assert set(step.hidden) == expected
    # bead 2 (backbone) sees neither its own hydrogens, nor the phenyls' on both sides (CG bonds),
    # nor H4 of the previous backbone bead (chemical bond C5-C18)
    hidden = set(plan.steps[2].hidden)
    assert {16, 18, 19} <= hidden and {7, 9, 11, 13, 15} <= hidden and 3 in hidden
    assert {23, 25, 27, 29, 31} <= hidden


def test_start_bead_and_its_range(graph: MoleculeGraph) -> None:
    plan = traversal_ordering(OrderingConfig(start=19))(graph)
    assert [s.bead for s in plan.steps if s.heavy] == list(range(19, -1, -1))
    with pytest.raises(InputError, match="start bead 20"):
        traversal_ordering(OrderingConfig(start=20))(graph)


def test_expand_over_instances(system: MappedSystem) -> None:
    plan = plan_system(system)
    steps, molecule, index = plan.expand()
    local = plan.plans["PS1"].tensors()
    assert len(steps) == 36 * len(local)
    assert torch.equal(molecule, torch.arange(36).repeat_interleave(len(local)))
    atoms = steps.atoms[steps.atoms >= 0]
    assert torch.equal(torch.sort(atoms).values, torch.arange(system.aa.n_atoms))
    k = 7  # the 8th chain: local indices shifted by its atom and bead offsets
    rows = molecule == k
    assert torch.equal(index[rows], torch.arange(len(local)))
    assert torch.equal(steps.atoms[rows], torch.where(local.atoms >= 0, local.atoms + 162 * k, -1))
    assert torch.equal(steps.hidden[rows][:, :local.hidden.shape[1]],
                       torch.where(local.hidden >= 0, local.hidden + 162 * k, -1))
    assert torch.equal(steps.bead[rows], local.bead + 20 * k)
    # global hidden hydrogens are hydrogens of the same chain
    hid = steps.hidden[steps.hidden >= 0]
    assert all(system.aa.elements[a] == "H" for a in hid.tolist())


def test_an_ordering_is_any_callable(system: MappedSystem) -> None:
    bfs = traversal_ordering(OrderingConfig(traversal="bfs"))
    calls = []

    def ordering(graph: MoleculeGraph):
        calls.append(graph.name)
        return bfs(graph)

    plan = plan_system(system, ordering)
    assert calls == ["PS1"] and plan.plans["PS1"] == bfs(molecule_type_graphs(system)["PS1"])


def test_a_partial_mapping_cannot_be_planned(sps: Path) -> None:
    fritz = load_mapped_system(sps / "topol.top", sps / "PS1_cg_fritz.map")  # hydrogens have no home bead
    with pytest.raises(InputError, match="home bead for every atom"):
        plan_system(fritz)
