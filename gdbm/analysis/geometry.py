"""Internal coordinates of frames grouped by force-field type: bonds, angles, dihedrals.

Besides the force field's own terms, ``torsion/<types>`` measures every heavy-atom dihedral about
a chain bond (not in a ring) that no proper dihedral term covers, such as a phenyl ring's turn about
the bond to its backbone: such rotations are set by non-bonded terms alone, and no other
distribution shows them.

Every distribution is keyed ``"<family>/<types>"`` (e.g. ``"bond/C-C_AR"``,
``"angle/C-C-H"``), with the type tuple written in a canonical direction so that ``A-B`` and
``B-A`` pool together. Impropers keep the order of the topology (the centre atom matters).
Lengths in nm, angles in degrees (GROMACS conventions in reports).
"""

from __future__ import annotations

import math

import networkx as nx
import torch
from torch import Tensor

from gdbm.physics.bonded import angle, chain_vectors, dihedral
from gdbm.topology.topology import Topology

FAMILIES = {
    "bond": ("bond_harmonic", "bond_g96"),
    "angle": ("angle_harmonic", "angle_g96"),
    "proper": ("proper_periodic", "proper_rb"),
    "improper": ("improper_harmonic", "improper_periodic"),
}
POOLED_KEYS = {"bond": "all_bonds", "angle": "all_angles", "proper": "all_dihedrals", "improper": "all_impropers"}


def _unique_rows(index: Tensor) -> Tensor:
    return torch.unique(index, dim=0) if index.numel() else index


def family_index(top: Topology, family: str) -> Tensor:
    """The distinct atom tuples of a family: bonds from the connectivity, others from the terms."""
    if family == "bond":
        return _unique_rows(top.connectivity)
    parts = [top.term(kind).index for kind in FAMILIES[family]]
    return _unique_rows(torch.cat(parts))


def torsion_index(top: Topology) -> Tensor:
    """``[m, 4]`` heavy-atom paths i-j-k-l about every bond j-k outside rings that no proper term covers."""
    heavy = [e != "H" for e in top.elements]
    graph = nx.Graph([(int(a), int(b)) for a, b in top.connectivity.tolist() if heavy[a] and heavy[b]])
    covered = {tuple(row) for row in family_index(top, "proper").tolist()}
    rows = []
    for j, k in nx.bridges(graph):
        for i in graph[j]:
            for l in graph[k]:
                if i != k and l != j and i != l and (i, j, k, l) not in covered and (l, k, j, i) not in covered:
                    rows.append((i, j, k, l))
    return torch.tensor(sorted(rows), dtype=torch.long).view(-1, 4)


def type_keys(top: Topology, index: Tensor, family: str) -> tuple[list[str], Tensor]:
    """Canonical type names of each tuple: ``(names, code [m])`` with ``names[code[k]]`` its key."""
    keys = []
    for row in index.tolist():
        types = tuple(top.types[i] for i in row)
        if family != "improper":
            types = min(types, types[::-1])
        keys.append("-".join(types))
    names = sorted(set(keys))
    lookup = {k: c for c, k in enumerate(names)}
    return names, torch.tensor([lookup[k] for k in keys], dtype=torch.long)


def family_values(positions: Tensor, boxes: Tensor | None, index: Tensor, family: str) -> Tensor:
    """Values ``[F, m]``: bond lengths (nm) or angles / dihedrals (degrees)."""
    d = chain_vectors(positions.to(torch.float64), index, None if boxes is None else boxes.to(torch.float64))
    if family == "bond":
        return d[:, :, 0].norm(dim=-1)
    if family == "angle":
        return angle(d) * (180.0 / math.pi)
    return dihedral(d) * (180.0 / math.pi)


def internal_coordinates(top: Topology, positions: Tensor, boxes: Tensor | None,
                         torsions: Tensor | None = None) -> dict[str, Tensor]:
    """All bonded-geometry distributions of ``positions [F, n, 3]``: pooled and per type, flat.

    ``torsions``: :func:`torsion_index` of ``top``, when the caller measures many chunks (found here otherwise).
    """
    out: dict[str, Tensor] = {}
    for family in FAMILIES:
        index = family_index(top, family)
        if index.numel() == 0:
            continue
        values = family_values(positions, boxes, index, family)  # [F, m]
        out[POOLED_KEYS[family]] = values.flatten()
        names, code = type_keys(top, index, family)
        for c, name in enumerate(names):
            out[f"{family}/{name}"] = values[:, code == c].flatten()
    torsions = torsion_index(top) if torsions is None else torsions
    if len(torsions):
        values = family_values(positions, boxes, torsions, "torsion")  # [F, m]
        names, code = type_keys(top, torsions, "torsion")
        for c, name in enumerate(names):
            out[f"torsion/{name}"] = values[:, code == c].flatten()
    return out
