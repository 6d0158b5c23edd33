"""Evaluation of generated AA frames against reference frames: distributions and scalars.

:meth:`Evaluator.observe` reduces a set of frames to its :class:`Observation` (bonded geometry
per type, RDF counts, per-molecule energies, clashes, CG consistency and, when asked, the AA
forces projected onto the beads), chunk by chunk so memory stays bounded; :func:`compare` turns
two observations into the metrics of ``gdbm eval``, every metric registered in
:mod:`gdbm.analysis.metrics` (importing this module registers the built-in ones).
"""

from __future__ import annotations

import torch
from torch import Tensor
from gdbm.utils.progress import tqdm

import gdbm.analysis.standard_metrics  # noqa: F401  (registers the built-in metrics)
from gdbm.analysis.energies import ENERGY_KEYS, molecule_energies
from gdbm.analysis.forces import bead_force_magnitudes
from gdbm.analysis.geometry import internal_coordinates, torsion_index
from gdbm.analysis.metrics import Observation, compare, join_per_frame
from gdbm.analysis.rdf import RDFAccumulator
from gdbm.data.trajectory import Frames
from gdbm.physics.energy import EnergyModel
from gdbm.physics.neighbors import PairList, nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.utils.pbc import minimum_image
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.paths import path_distance_pairs
from gdbm.topology.topology import Topology

RDF_WIDTH, RDF_MAX = 0.01, 1.2
CLASH, HEAVY_CLASH = 0.1, 0.2

__all__ = ["CLASH", "HEAVY_CLASH", "RDF_MAX", "RDF_WIDTH", "Evaluator", "Observation", "compare", "observe_reference"]


class Evaluator:
    """Measures sets of frames of one system; built once, applied to every set."""

    def __init__(self, topology: Topology, cutoff: float = 1.0, coulomb: str = "none",
                 mapping: SystemMapping | None = None, chunk: int = 4, per_type_rdf: bool = True,
                 forces: bool = False):
        self.top = topology
        self.model = EnergyModel(topology, cutoff=cutoff, coulomb=coulomb)
        self.mapping = mapping
        self.chunk = chunk
        self.rdf_excluded = path_distance_pairs(topology, 3)[0]
        self.torsions = torsion_index(topology)  # [m, 4], once for every chunk
        self.per_type_rdf = per_type_rdf
        self.heavy = torch.tensor([e != "H" for e in topology.elements])
        if forces and mapping is None:
            raise ValueError("bead forces need a mapping")
        self.forces = forces

    def _clashes(self, pairs: PairList, r: Tensor) -> tuple[Tensor, Tensor]:
        """Close and heavy-clash distances; ``pairs`` / ``r``: every image pair closer than ``HEAVY_CLASH``."""
        keep = ~nearest_excluded(pairs, r, self.top.exclusions, self.top.n_atoms) & (pairs.i != pairs.j)
        pairs, r = pairs.select(keep), r[keep]
        inter_heavy = (self.top.molecule[pairs.i] != self.top.molecule[pairs.j]) & self.heavy[pairs.i] & self.heavy[pairs.j]
        return r[r < CLASH], r[inter_heavy]

    def observe(self, frames: Frames, cg: Frames | None = None, label: str = "", cg_offset: int = 0) -> Observation:
        """Measure ``frames``; with ``cg`` (and a mapping), also the CG consistency.

        With ``k`` samples per CG frame, generated frames are grouped by CG frame: frame ``g``
        belongs to CG frame ``cg_offset + g // k``.
        """
        n = len(frames)
        geometry: dict[str, list[Tensor]] = {}
        energies: dict[str, list[Tensor]] = {k: [] for k in ENERGY_KEYS}
        rdf = RDFAccumulator(self.top.types, self.top.elements, self.rdf_excluded, RDF_MAX, RDF_WIDTH, self.per_type_rdf)
        close, heavy, cg_dev, bead_forces = [], [], [], []
        by_pair: list[tuple[int, dict[str, Tensor]]] = []  # (frames, LJ per type pair) per chunk
        per_cg = max(1, n // len(cg)) if cg is not None and cg_offset == 0 else 1
        for start in tqdm(range(0, n, self.chunk), desc=f"eval {label}".strip(), unit="chunk", leave=False):
            # float32 pair arithmetic (sums in float64): the frames are float32 to begin with
            pos = frames.positions[start:start + self.chunk].float()
            box = frames.boxes[start:start + self.chunk].float()
            for key, values in internal_coordinates(self.top, pos, box, self.torsions).items():
                geometry.setdefault(key, []).append(values)
            pairs = neighbor_pairs(pos, box, max(RDF_MAX, self.model.cutoff))  # one search for all
            r = pair_vectors(pos, box, pairs).norm(dim=-1)  # [P]
            within = torch.nonzero(r < self.model.cutoff).squeeze(-1)
            per_molecule, per_type_pair = molecule_energies(self.model, pos, box, pairs.select(within))
            for key, values in per_molecule.items():
                energies[key].append(values)
            by_pair.append((pos.shape[0], per_type_pair))
            rdf.add(pos, box, pairs, r)
            near = torch.nonzero(r < HEAVY_CLASH).squeeze(-1)
            c, h = self._clashes(pairs.select(near), r[near])
            close.append(c)
            heavy.append(h)
            if self.forces:
                bead_forces.append(bead_force_magnitudes(self.model, self.mapping, pos, box))
            if cg is not None and self.mapping is not None:
                idx = cg_offset + torch.arange(start, start + pos.shape[0]) // per_cg
                pos64, box64 = pos.double(), box.double()
                beads = self.mapping.map_positions(pos64, box64)  # [f, n_beads, 3]
                target = cg.positions[idx].to(torch.float64)
                cg_dev.append(minimum_image(beads - target, box64).norm(dim=-1).flatten())
        return Observation(n, {k: torch.cat(v) for k, v in geometry.items()},
                           {k: torch.cat(v) for k, v in energies.items()}, rdf.result(),
                           torch.cat(close), torch.cat(heavy), torch.cat(cg_dev) if cg_dev else None,
                           {k: torch.cat([b[k] for b in bead_forces]) for k in bead_forces[0]} if bead_forces else None,
                           join_per_frame(by_pair))


def observe_reference(evaluator: Evaluator, reference: Frames, cg: Frames | None = None
                      ) -> tuple[Observation, Observation, Observation]:
    """The reference measured as two halves (the noise floor) and as a whole (their merge)."""
    half = len(reference) // 2
    first = evaluator.observe(reference.subset(slice(0, half)), cg, "reference 1/2")
    second = evaluator.observe(reference.subset(slice(half, len(reference))), cg, "reference 2/2", cg_offset=half)
    return first, second, first.merge(second)
