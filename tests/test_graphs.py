"""Molecular graphs: one HeteroData per molecule with atoms, beads, bonds and mapping edges."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.data.trajectory import read_frames
from gdbm.topology.gromacs import read_topology
from gdbm.topology.graphs import molecule_graphs, system_graph
from gdbm.topology.mapfiles import load_mapping
from gdbm.topology.mapping import expand_mapping


@pytest.fixture(scope="module")
def sps_graph_inputs(sps: Path):
    aa = read_topology(sps / "topol.top")
    cg = read_topology(sps / "PS1_cg.itp", require_parameters=False, n_molecules=36)
    return aa, cg, expand_mapping(load_mapping(sps / "PS1.map", aa, cg), aa, cg)


def edge_set(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, index.T.tolist()))


def test_sps_molecule_graphs(sps_graph_inputs):
    aa, cg, mapping = sps_graph_inputs
    graphs = molecule_graphs(aa, mapping)
    assert len(graphs) == 36
    g = graphs[5]
    assert g["atom"].num_nodes == 162 and g["bead"].num_nodes == 20
    assert g["atom"].type.tolist()[:6] == [2, 0, 2, 2, 0, 1]  # H C H H C C_AR in sorted vocabulary C, C_AR, H, H_AR
    assert g["atom"].z.tolist()[:2] == [1, 6] and g["atom"].mass.dtype == torch.float32
    assert g["bead"].type.tolist()[:4] == [0, 2, 1, 3]  # A1r B1u A2r B2d in vocabulary A1r, A2r, B1u, B2d
    bonds = g["atom", "bond", "atom"].edge_index
    assert bonds.shape == (2, 2 * 171) and int(bonds.max()) == 161
    local = aa.connectivity[171 * 5:171 * 6] - 162 * 5
    assert edge_set(bonds) == edge_set(local.T) | edge_set(local.flip(1).T)
    assert g["bead", "cg_bond", "bead"].edge_index.shape == (2, 38)
    member = g["atom", "in", "bead"]
    assert member.edge_index.shape == (2, 162) and torch.equal(member.weight, torch.ones(162))
    assert torch.equal(g["bead", "rev_in", "atom"].edge_index, member.edge_index.flip(0))
    home = g["atom", "home", "bead"].edge_index
    assert home[0].tolist() == list(range(162)) and home[1, :6].tolist() == [0, 0, 0, 0, 0, 1]
    # the sum of coefficients into each bead is 1
    per_bead = torch.zeros(20).index_add_(0, member.edge_index[1], member.coef)
    assert torch.allclose(per_bead, torch.ones(20))


def test_sps_system_graph_with_positions_and_shared_atoms(sps, sps_graph_inputs):
    aa, cg, _ = sps_graph_inputs
    fritz = expand_mapping(load_mapping(sps / "PS1_cg_fritz.map", aa, cg, partial=True), aa, cg)
    frames = read_frames(sps / "train_t568" / "aa" / "90.gro")
    beads = fritz.map_positions(frames.positions[0], frames.boxes[0])
    batch = system_graph(aa, fritz, frames.positions[0], beads, atom_types=["C", "C_AR", "H", "H_AR", "extra"])
    assert batch.num_graphs == 36
    assert torch.equal(batch["atom"].pos, frames.positions[0]) and torch.equal(batch["bead"].pos, beads)
    member = batch["atom", "in", "bead"]
    assert member.edge_index.shape[1] == len(fritz.membership)  # shared CH atoms appear twice
    assert edge_set(member.edge_index) == edge_set(fritz.membership.T)  # batching offsets = global indices
    assert sorted(set(member.weight.tolist())) == [0.5, 1.0]
    assert batch["atom", "home", "bead"].edge_index.shape[1] == 36 * 158  # 4 atoms per chain unlisted
    assert batch["atom", "bond", "atom"].edge_index.shape[1] == 2 * len(aa.connectivity)


def test_unknown_type_in_vocabulary(sps_graph_inputs):
    aa, _, mapping = sps_graph_inputs
    with pytest.raises(ValueError, match="atom types \\['C_AR', 'H_AR'\\] are not in the vocabulary"):
        molecule_graphs(aa, mapping, atom_types=["C", "H"])
