"""Force-field physics: periodic neighbour pairs, minimum images, differentiable energies."""

from gdbm.physics.bonded import term_energies
from gdbm.physics.energy import CATEGORIES, EnergyModel, EnergyTerms, energy_and_forces, evaluate_terms
from gdbm.physics.neighbors import PairList, nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.utils.pbc import minimum_image, selling_reduce

__all__ = ["CATEGORIES", "EnergyModel", "EnergyTerms", "PairList", "energy_and_forces", "evaluate_terms",
           "minimum_image", "nearest_excluded", "neighbor_pairs", "pair_vectors", "selling_reduce",
           "term_energies"]
