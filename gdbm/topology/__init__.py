"""Topologies, force-field terms, AA->CG mappings and molecular graphs (no networks here)."""

from gdbm.topology.topology import TERM_KINDS, Term, TermKind, Topology

__all__ = ["TERM_KINDS", "Term", "TermKind", "Topology"]
