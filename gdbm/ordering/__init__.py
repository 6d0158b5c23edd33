"""Reconstruction order: plans (which atoms when, what is hidden), traversals, a learned policy.

``plans`` holds the data structures, ``traversals`` the dfs / bfs / random orderings,
``learned`` the order policy, ``build`` the step from a config to a system's plan. The
policy's training needs a trained generator and lives in :mod:`gdbm.training.order_policy`.
"""

from gdbm.ordering.build import build_ordering, plan_system
from gdbm.ordering.learned import OrderPolicy, learned_ordering, load_ordering, save_policy
from gdbm.ordering.plans import (MoleculeGraph, MoleculePlan, Ordering, OrderingConfig, PlanTensors, Step,
                                 SystemPlan, Traversal, molecule_type_graphs)
from gdbm.ordering.traversals import traversal_ordering

__all__ = ["MoleculeGraph", "MoleculePlan", "Ordering", "OrderPolicy", "OrderingConfig", "PlanTensors", "Step",
           "SystemPlan", "Traversal", "build_ordering", "learned_ordering", "load_ordering", "molecule_type_graphs",
           "plan_system", "save_policy", "traversal_ordering"]
