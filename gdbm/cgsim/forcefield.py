"""A structure-based CG force field: tabulated bonded and pair potentials per bead-type tuple.

The CG topology gives beads, their types and the CG bonds; angles and dihedrals are every
path of two and three bonds (the sPS ``PS1_cg.itp`` lists exactly these, as tabulated
``funct 8`` terms whose tables were never published). Each potential is the Boltzmann
inversion (:mod:`gdbm.cgsim.inversion`) of the distribution measured on mapped reference
frames, one per canonical type tuple (``A-B`` pools with ``B-A``). Pairs closer than
``EXCLUDED_BONDS + 1`` bonds along a chain are excluded from the pair potential, which acts on
all other pairs, inside and between molecules. ``terms`` selects the bonded families, as the
thesis' models A/B/C differ (Sec. 6.2); the pair potential is always included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from gdbm.analysis.geometry import family_values, type_keys
from gdbm.cgsim.inversion import Table, invert_bonded, invert_rdf, rdf_from_counts
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.utils.pbc import box_widths
from gdbm.physics.neighbors import nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.topology.paths import path_distance_pairs
from gdbm.topology.topology import Topology

FAMILIES = {"bonds": "bond", "angles": "angle", "dihedrals": "dihedral"}  # --terms name -> inversion kind
GEOMETRY_FAMILY = {"bond": "bond", "angle": "angle", "dihedral": "proper"}  # kind -> analysis.geometry family
BIN_WIDTH = {"bond": 0.002, "angle": math.radians(2.0), "dihedral": math.radians(5.0)}
EXCLUDED_BONDS = 3
RDF_WIDTH = 0.01  # nm


@dataclass
class BondedGroup:
    """One bonded potential: the bead tuples ``index [m, arity]`` of one type key and their table."""

    kind: str  # bond | angle | dihedral
    key: str  # canonical type tuple, e.g. "A1r-B1u"
    index: Tensor  # [m, arity] long, global bead indices
    table: Table


@dataclass
class CGForceField:
    """Everything a CG simulation needs besides positions, masses and the box."""

    temperature: float  # K, of the reference the potentials were inverted at
    cutoff: float  # nm, of the pair potential
    bead_types: list[str]  # per bead
    type_names: list[str]  # distinct pair types, in index order
    bonded: list[BondedGroup]
    pairs: dict[tuple[int, int], Table]  # (a <= b) type indices -> table
    exclusions: Tensor  # [e, 2] long, i < j
    terms: tuple[str, ...] = field(default_factory=tuple)

    @property
    def type_index(self) -> Tensor:
        """``[n]`` long: each bead's index in ``type_names``."""
        lookup = {t: k for k, t in enumerate(self.type_names)}
        return torch.tensor([lookup[t] for t in self.bead_types], dtype=torch.long)


def bonded_tuples(connectivity: Tensor, n: int) -> dict[str, Tensor]:
    """Bonds, angles (paths of two bonds) and dihedrals (paths of three bonds) of a bond graph, each once."""
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for i, j in connectivity.tolist():
        neighbours[i].add(j)
        neighbours[j].add(i)
    bonds = sorted({(min(i, j), max(i, j)) for i, j in connectivity.tolist()})
    angles = sorted({min((i, j, k), (k, j, i)) for j in range(n) for i in neighbours[j] for k in neighbours[j]
                     if i != k})
    dihedrals = set()
    for j, k in bonds:
        for i in neighbours[j] - {k}:
            for m in neighbours[k] - {j, i}:
                dihedrals.add(min((i, j, k, m), (m, k, j, i)))
    dihedrals = sorted(dihedrals)

    def tensor(rows: list[tuple[int, ...]], arity: int) -> Tensor:
        return torch.tensor(rows, dtype=torch.long).view(-1, arity)

    return {"bond": tensor(bonds, 2), "angle": tensor(angles, 3), "dihedral": tensor(dihedrals, 4)}


def bonded_samples(top: Topology, frames: Frames, kind: str, index: Tensor) -> dict[str, Tensor]:
    """Per type key, the sampled values ``[F * m_key]`` of one bonded kind (nm or radians)."""
    if index.numel() == 0:
        return {}
    family = GEOMETRY_FAMILY[kind]
    values = family_values(frames.positions.double(), frames.boxes.double(), index, family)  # [F, m]
    if kind != "bond":
        values = values * (math.pi / 180.0)
    names, code = type_keys(top, index, "proper" if kind == "dihedral" else family)
    return {name: values[:, code == c].flatten() for c, name in enumerate(names)}


def exclusion_pairs(top: Topology) -> Tensor:
    """Bead pairs up to ``EXCLUDED_BONDS`` bonds apart, ``[e, 2]`` i < j (no pair potential between them)."""
    return path_distance_pairs(top, EXCLUDED_BONDS)[0]


def pair_histograms(frames: Frames, type_index: Tensor, n_types: int, exclusions: Tensor, cutoff: float,
                    width: float = RDF_WIDTH) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray], float]:
    """Distance histograms of the non-excluded bead pairs per type pair ``(a <= b)`` below ``cutoff``.

    Returns ``(edges, counts, mean volume)``; every periodic image pair counts.
    """
    edges = np.arange(0.0, cutoff + 0.5 * width, width)
    counts = {(a, b): np.zeros(len(edges) - 1) for a in range(n_types) for b in range(a, n_types)}
    n = frames.n_particles
    for f in range(len(frames)):
        pos, box = frames.positions[f].double(), frames.boxes[f].double()
        pairs = neighbor_pairs(pos, box, cutoff)
        r = pair_vectors(pos, box, pairs).norm(dim=-1)
        keep = ~nearest_excluded(pairs, r, exclusions, n) & (r > 0)
        ti, tj = type_index[pairs.i[keep]], type_index[pairs.j[keep]]
        a, b = torch.minimum(ti, tj), torch.maximum(ti, tj)
        for key, hist in counts.items():
            sel = (a == key[0]) & (b == key[1])
            hist += np.histogram(r[keep][sel].numpy(), edges)[0]
    volume = float(torch.linalg.det(frames.boxes.double()).abs().mean())
    return edges, counts, volume


def type_pair_rdfs(frames: Frames, type_index: Tensor, n_types: int, exclusions: Tensor, cutoff: float
                   ) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
    """``g(r)`` per type pair of the non-excluded pairs: ``(edges, {(a, b): g [bins]})``."""
    edges, counts, volume = pair_histograms(frames, type_index, n_types, exclusions, cutoff)
    members = torch.bincount(type_index, minlength=n_types).double()
    out = {}
    for (a, b), hist in counts.items():
        n_pairs = float(members[a] * (members[a] - 1) / 2 if a == b else members[a] * members[b])
        out[(a, b)] = rdf_from_counts(hist, edges, max(n_pairs, 1.0), volume, len(frames))
    return edges, out


def _check(top: Topology, frames: Frames, cutoff: float, terms: tuple[str, ...]) -> None:
    unknown = [t for t in terms if t not in FAMILIES]
    if unknown:
        raise InputError(f"unknown bonded terms {unknown}; expected a subset of {list(FAMILIES)}")
    if frames.n_particles != top.n_atoms:
        raise InputError(f"the reference CG frames hold {frames.n_particles} beads but the CG topology "
                         f"{top.n_atoms}", top.source or None)
    thinnest = float(box_widths(frames.boxes.double()).min())
    if not 0 < cutoff < 0.5 * thinnest:
        raise InputError(f"the pair cutoff {cutoff} nm must be positive and below half the thinnest box width "
                         f"({0.5 * thinnest:.3f} nm) of the reference frames")


def build_forcefield(top: Topology, reference: Frames, temperature: float, cutoff: float = 1.0,
                     terms: tuple[str, ...] = ("bonds", "angles", "dihedrals")) -> CGForceField:
    """Invert the bonded distributions and pair RDFs of ``reference`` (mapped CG frames of ``top``)."""
    _check(top, reference, cutoff, terms)
    tuples = bonded_tuples(top.connectivity, top.n_atoms)
    bonded = []
    bond_range = None
    if "bonds" in terms and tuples["bond"].numel():  # one grid for all bond tables (OpenMM combines them)
        lengths = bonded_samples(top, reference, "bond", tuples["bond"])
        bond_range = (0.0, 3.0 * max(float(v.max()) for v in lengths.values()))
    for term in terms:
        kind = FAMILIES[term]
        index = tuples[kind]
        if index.numel() == 0:
            continue
        names, code = type_keys(top, index, "proper" if kind == "dihedral" else GEOMETRY_FAMILY[kind])
        samples = bonded_samples(top, reference, kind, index)
        for c, name in enumerate(names):
            table = invert_bonded(samples[name].numpy(), kind, temperature, BIN_WIDTH[kind], bond_range)
            bonded.append(BondedGroup(kind, name, index[code == c], table))
    type_names = sorted(set(top.types))
    lookup = {t: k for k, t in enumerate(type_names)}
    type_index = torch.tensor([lookup[t] for t in top.types], dtype=torch.long)
    exclusions = exclusion_pairs(top)
    edges, rdfs = type_pair_rdfs(reference, type_index, len(type_names), exclusions, cutoff)
    pairs = {key: invert_rdf(g, edges, temperature) for key, g in rdfs.items()}
    return CGForceField(temperature, cutoff, list(top.types), type_names, bonded, pairs, exclusions, tuple(terms))
