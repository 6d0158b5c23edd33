"""Topologies, force-field terms, AA->CG mappings and molecular graphs (no networks here)."""

from gdbm.topology.gromacs import read_topology
from gdbm.topology.topology import TERM_KINDS, LennardJones, MoleculeBlock, Term, TermKind, Topology

__all__ = ["TERM_KINDS", "LennardJones", "MoleculeBlock", "Term", "TermKind", "Topology", "read_topology"]
