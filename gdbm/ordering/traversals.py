"""Traversal orderings: ``dfs``, ``bfs`` and ``random`` over the CG bonds, then over the atoms of each bead.

See :mod:`gdbm.ordering.plans` for what a plan is and the rules a traversal follows.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable

from gdbm.ordering.plans import MoleculeGraph, MoleculePlan, Ordering, OrderingConfig, Step, Traversal
from gdbm.utils.errors import InputError


def traversal_ordering(config: OrderingConfig | None = None) -> Ordering:
    """The ordering that traverses beads, then atoms inside each bead, with ``config.traversal``."""
    config = config or OrderingConfig()
    if config.traversal == "learned":
        raise ValueError("a learned ordering is built by gdbm.ordering.build_ordering, not by a traversal")

    def ordering(graph: MoleculeGraph) -> MoleculePlan:
        rng = random.Random(f"{config.seed}:{graph.name}")
        return _traversal_plan(graph, config.traversal, config.start, rng)

    return ordering


def _traversal_plan(graph: MoleculeGraph, kind: Traversal, start: int | None, rng: random.Random) -> MoleculePlan:
    """Beads by ``kind`` over the CG bonds, then atoms per bead; heavy pass, then hydrogen pass."""
    beads_nb, atoms_nb, adjacent = graph.bead_neighbours(), graph.atom_neighbours(), graph.adjacent_beads()
    heavy = graph.heavy.tolist()
    home = graph.home_bead.tolist()
    members: list[list[int]] = [[] for _ in range(graph.n_beads)]
    for a, b in enumerate(home):
        members[b].append(a)
    if start is not None and start >= graph.n_beads:
        raise InputError(f"start bead {start} is out of range: molecule {graph.name!r} has {graph.n_beads} beads")
    degree = [len(nb) for nb in beads_nb]

    def bead_root(unvisited: list[int], visited: set[int]) -> int:
        if not visited and start is not None:
            return start
        linked = [b for b in unvisited if any(n in visited for n in adjacent[b])]
        return linked[0] if linked else min(unvisited, key=lambda b: (degree[b], b))

    bead_order = _traverse(list(range(graph.n_beads)), beads_nb, bead_root, kind, rng)

    n_heavy_nb = [sum(heavy[n] for n in atoms_nb[a]) for a in range(graph.n_atoms)]
    placed: set[int] = set()

    def atom_root(unvisited: list[int], visited: set[int]) -> int:
        linked = [a for a in unvisited if any(n in placed for n in atoms_nb[a])]
        return linked[0] if linked else min(unvisited, key=lambda a: (n_heavy_nb[a], a))

    steps: list[Step] = []
    heavy_order: dict[int, list[int]] = {}
    for bead in bead_order:
        atoms = _traverse([a for a in members[bead] if heavy[a]], atoms_nb, atom_root, kind, rng)
        heavy_order[bead] = atoms
        placed.update(atoms)
        hidden = tuple(a for b in sorted({bead, *adjacent[bead]}) for a in members[b] if not heavy[a])
        if atoms:
            steps.append(Step(bead, tuple(atoms), True, hidden))
    for bead in bead_order:
        # hydrogens as met by a traversal of the bead's atoms rooted where its heavy atoms began
        order = _traverse(heavy_order[bead][:1] + [a for a in members[bead] if a not in heavy_order[bead][:1]],
                          atoms_nb, lambda unvisited, visited: unvisited[0], kind, rng)
        hydrogens = tuple(a for a in order if not heavy[a])
        placed.update(hydrogens)
        if hydrogens:
            steps.append(Step(bead, hydrogens, False, ()))
    return MoleculePlan(graph.name, graph.n_atoms, tuple(steps))


def _traverse(nodes: list[int], neighbours: list[list[int]], root: Callable[[list[int], set[int]], int],
              kind: Traversal, rng: random.Random) -> list[int]:
    """Visit ``nodes`` (edges outside them ignored) by ``kind``; ``root(unvisited, visited)`` starts each component."""
    allowed, visited, order = set(nodes), set(), []
    while len(order) < len(nodes):
        unvisited = [n for n in nodes if n not in visited]
        first = root(unvisited, visited)
        frontier: list[int] | deque[int] = [first] if kind != "bfs" else deque([first])
        while frontier:
            if kind == "dfs":
                node = frontier.pop()
            elif kind == "bfs":
                node = frontier.popleft()
            else:
                node = frontier.pop(rng.randrange(len(frontier)))
            if node in visited:
                continue
            visited.add(node)
            order.append(node)
            fresh = [n for n in neighbours[node] if n in allowed and n not in visited]
            if kind == "dfs":
                frontier.extend(reversed(fresh))  # lowest index popped first
            else:
                frontier.extend(n for n in fresh if n not in frontier)
    return order
