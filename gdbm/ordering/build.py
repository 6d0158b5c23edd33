"""From an :class:`OrderingConfig` to an ordering and a system's plan: traversal or learned policy."""

from __future__ import annotations

from gdbm.ordering.learned import load_ordering
from gdbm.ordering.plans import Ordering, OrderingConfig, SystemPlan, plan_with
from gdbm.ordering.traversals import traversal_ordering
from gdbm.topology.system import MappedSystem


def build_ordering(config: OrderingConfig | None = None) -> Ordering:
    """The ordering ``config`` names: a traversal, or the learned policy in ``config.policy``."""
    config = config or OrderingConfig()
    if config.traversal == "learned":
        return load_ordering(config.policy)
    return traversal_ordering(config)


def plan_system(system: MappedSystem, ordering: Ordering | OrderingConfig | None = None) -> SystemPlan:
    """The plan of every molecule type of ``system`` (default: ``dfs`` from the first terminal bead)."""
    return plan_with(system, ordering if callable(ordering) else build_ordering(ordering))
