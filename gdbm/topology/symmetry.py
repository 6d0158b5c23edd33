"""Equivalent labellings of a plan step's atoms: the molecule's symmetries that move only them.

A phenyl ring's two ortho carbons (and its two meta ones) are interchangeable: turning the ring
by 180 degrees gives the same molecule with their labels swapped; so are the two hydrogens of a
CH2 and the three of a CH3. Given the atoms placed before a step, a reference structure could
as well carry either labelling, so a squared distance to the labelled reference teaches a
generator to put the first ortho carbon midway between the two sides: on the ring's axis. With
``training.symmetric_atoms`` the supervised loss instead takes, per sequence, the nearest of its
equivalent labellings (:func:`gdbm.training.trainer.nearest_targets`), as structure predictors do for
symmetric atoms (on sPS it made no measurable difference: docs/generator-diagnosis.md section 12).

A relabelling is an automorphism of the molecular graph (atoms matched by type) that fixes every
atom outside ``movable`` (the step's atoms and its hidden hydrogens) and maps the step's atoms
onto themselves; only atoms bonded to a movable one constrain it, so the search runs on that
small subgraph of the bonds that touch the movable atoms (networkx's VF2 matcher).
"""

from __future__ import annotations

import logging

import networkx as nx
import torch
from networkx.algorithms.isomorphism import GraphMatcher
from torch import Tensor

from gdbm.topology.topology import Topology

log = logging.getLogger(__name__)

MAX_RELABELLINGS = 64  # e.g. two CH3 groups in one step: 36; more are cut (identity kept first)


def step_relabellings(aa: Topology, atoms: list[int], hidden: list[int] = ()) -> Tensor:
    """``[R, L]`` (R >= 1, the identity first): for each equivalent labelling of the step's ``atoms`` (global
    indices, in placement order), ``order[r, i]`` is the slot whose reference position atom ``i`` may take."""
    movable = torch.tensor(sorted(set(atoms) | set(hidden)), dtype=torch.long)
    bonds = aa.connectivity[torch.isin(aa.connectivity, movable).any(1)]  # [m, 2] the bonds that touch them
    local = nx.Graph()
    local.add_edges_from(bonds.tolist())
    local.add_nodes_from(movable.tolist())
    free = set(movable.tolist())
    for n in local.nodes:  # movable atoms by type; a fixed neighbour by a label no other atom has
        local.nodes[n]["label"] = aa.types[n] if n in free else ("fixed", n)
    slot = {a: i for i, a in enumerate(atoms)}
    identity = tuple(range(len(atoms)))
    orders = {identity: None}
    matcher = GraphMatcher(local, local, node_match=lambda x, y: x["label"] == y["label"])
    for mapping in matcher.isomorphisms_iter():
        if any(mapping[a] not in slot for a in atoms):
            continue  # moves a step atom onto a hidden one
        orders.setdefault(tuple(slot[mapping[a]] for a in atoms), None)
        if len(orders) >= MAX_RELABELLINGS:
            log.warning("a plan step with atoms %s has more than %d equivalent labellings; the loss uses %d",
                        atoms[:6], MAX_RELABELLINGS, MAX_RELABELLINGS)
            break
    return torch.tensor(list(orders), dtype=torch.long).view(len(orders), len(atoms))
