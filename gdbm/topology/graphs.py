"""Molecular graphs: one PyG ``HeteroData`` per molecule instance, atoms and beads together.

Node types and their attributes::

    atom   type [n] long (index into the atom-type vocabulary), z [n] long (atomic number,
           0 for unknown), mass [n], charge [n] (float32), pos [n, 3] (optional)
    bead   type [B] long (index into the bead-type vocabulary), pos [B, 3] (optional)

Edge types (``edge_index`` [2, e], local indices)::

    (atom, bond, atom)      chemical bonds, both directions
    (bead, cg_bond, bead)   CG bonds, both directions
    (atom, in, bead)        mapping membership; ``weight`` (file weight) and ``coef``
                            (normalised coefficient of the bead position), float32
    (bead, rev_in, atom)    its reverse, same attributes
    (atom, home, bead)      the bead each atom is reconstructed with (atoms that have one)

Vocabularies are passed in so that graphs of different systems share type indices (a model
trained on octane + cumene applied to sPS); by default they are the sorted types present.
"""

from __future__ import annotations

import torch
from rdkit import Chem
from torch import Tensor
from torch_geometric.data import Batch, HeteroData

from gdbm.topology.mapping import SystemMapping
from gdbm.topology.topology import Topology


def _vocab_index(values: list[str], vocab: list[str], what: str) -> Tensor:
    code = {v: k for k, v in enumerate(vocab)}
    missing = sorted(set(values) - set(code))
    if missing:
        raise ValueError(f"{what} {missing} are not in the vocabulary {vocab}")
    return torch.tensor([code[v] for v in values], dtype=torch.long)


def _atomic_numbers(elements: list[str]) -> Tensor:
    table = Chem.GetPeriodicTable()
    z = {e: (table.GetAtomicNumber(e) if e and e != "X" else 0) for e in set(elements)}
    return torch.tensor([z[e] for e in elements], dtype=torch.long)


def _split_by(rows: Tensor, group: Tensor, n_groups: int) -> list[Tensor]:
    """Rows ``[r, ...]`` split into ``n_groups`` chunks by their group index ``[r]`` (stable)."""
    order = torch.argsort(group, stable=True)
    return list(torch.split(rows[order], torch.bincount(group, minlength=n_groups).tolist()))


def _both_directions(edges: Tensor) -> Tensor:
    """``[e, 2]`` pairs -> ``[2, 2e]`` edge index holding i->j and j->i."""
    return torch.cat([edges, edges.flip(1)]).T.contiguous()


def molecule_graphs(aa: Topology, mapping: SystemMapping, positions: Tensor | None = None,
                    bead_positions: Tensor | None = None, *, atom_types: list[str] | None = None,
                    bead_types: list[str] | None = None) -> list[HeteroData]:
    """One ``HeteroData`` per molecule instance of ``aa`` (in order), with its beads.

    ``positions [n_atoms, 3]`` and ``bead_positions [n_beads, 3]`` (one frame of the whole
    system) are attached as ``pos`` when given.
    """
    if mapping.n_atoms != aa.n_atoms:
        raise ValueError(f"the mapping covers {mapping.n_atoms} atoms, the topology {aa.n_atoms}")
    n_mol = aa.n_molecules
    atom_types = sorted(set(aa.types)) if atom_types is None else atom_types
    bead_types = sorted(set(mapping.bead_types)) if bead_types is None else bead_types
    atom_start = torch.tensor([b.start for b in aa.molecules])  # [n_mol]
    bead_count = torch.bincount(mapping.bead_molecule, minlength=n_mol)  # [n_mol]
    bead_start = torch.cumsum(bead_count, 0) - bead_count  # [n_mol]
    atom_mol, bead_mol = aa.molecule, mapping.bead_molecule  # [n_atoms], [n_beads]

    atom_feats = {
        "type": _vocab_index(aa.types, atom_types, "atom types"),
        "z": _atomic_numbers(aa.elements),
        "mass": aa.masses.float(),
        "charge": aa.charges.float(),
    }
    if positions is not None:
        atom_feats["pos"] = positions
    bead_feats = {"type": _vocab_index(mapping.bead_types, bead_types, "bead types")}
    if bead_positions is not None:
        bead_feats["pos"] = bead_positions

    # local indices, grouped per molecule in one pass each
    shift = torch.stack([atom_start, bead_start], 1)  # [n_mol, 2]
    bonds = _split_by(aa.connectivity - atom_start[atom_mol[aa.connectivity[:, 0]]].unsqueeze(1),
                      atom_mol[aa.connectivity[:, 0]], n_mol)
    cg_bonds = _split_by(mapping.cg_bonds - bead_start[bead_mol[mapping.cg_bonds[:, 0]]].unsqueeze(1),
                         bead_mol[mapping.cg_bonds[:, 0]], n_mol)
    member_mol = atom_mol[mapping.membership[:, 0]]  # [M]
    member = _split_by(mapping.membership - shift[member_mol], member_mol, n_mol)
    member_attr = _split_by(torch.stack([mapping.weights, mapping.coef], 1).float(), member_mol, n_mol)
    has_home = torch.nonzero(mapping.home_bead >= 0).flatten()  # [h]
    home_pairs = torch.stack([has_home, mapping.home_bead[has_home]], 1)  # [h, 2]
    home = _split_by(home_pairs - shift[atom_mol[has_home]], atom_mol[has_home], n_mol)

    graphs = []
    for k, block in enumerate(aa.molecules):
        data = HeteroData()
        beads = slice(int(bead_start[k]), int(bead_start[k] + bead_count[k]))
        for name, value in atom_feats.items():
            data["atom"][name] = value[block.start:block.stop]
        for name, value in bead_feats.items():
            data["bead"][name] = value[beads]
        data["atom"].num_nodes = block.n_atoms
        data["bead"].num_nodes = int(bead_count[k])
        data["atom", "bond", "atom"].edge_index = _both_directions(bonds[k])
        data["bead", "cg_bond", "bead"].edge_index = _both_directions(cg_bonds[k])
        weight, coef = member_attr[k].T
        for key, index in ((("atom", "in", "bead"), member[k].T), (("bead", "rev_in", "atom"), member[k].flip(1).T)):
            data[key].edge_index = index.contiguous()
            data[key].weight, data[key].coef = weight, coef
        data["atom", "home", "bead"].edge_index = home[k].T.contiguous()
        graphs.append(data)
    return graphs


def system_graph(aa: Topology, mapping: SystemMapping, positions: Tensor | None = None,
                 bead_positions: Tensor | None = None, *, atom_types: list[str] | None = None,
                 bead_types: list[str] | None = None) -> Batch:
    """All molecule graphs of a system as one PyG ``Batch`` (indices offset per molecule)."""
    return Batch.from_data_list(molecule_graphs(aa, mapping, positions, bead_positions,
                                                atom_types=atom_types, bead_types=bead_types))
