"""Topologies, force-field terms, AA->CG mappings, molecular graphs and their symmetric atoms (no networks here)."""

from gdbm.topology.convert import to_ase, to_rdkit
from gdbm.topology.graphs import molecule_graphs, system_graph
from gdbm.topology.gromacs import read_topology
from gdbm.topology.mapfiles import load_mapping, write_map, write_yaml
from gdbm.topology.mapping import MoleculeMapping, SystemMapping, expand_mapping
from gdbm.topology.topology import TERM_KINDS, LennardJones, MoleculeBlock, Term, TermKind, Topology

__all__ = [
    "TERM_KINDS", "LennardJones", "MoleculeBlock", "MoleculeMapping", "SystemMapping", "Term", "TermKind",
    "Topology", "expand_mapping", "load_mapping", "molecule_graphs", "read_topology", "system_graph",
    "to_ase", "to_rdkit", "write_map", "write_yaml",
]
