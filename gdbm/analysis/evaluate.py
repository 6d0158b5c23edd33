"""Evaluation of generated AA frames against reference frames: distributions and scalars.

:func:`observe` reduces a set of frames to its observables (bonded geometry per type, RDF
counts, per-molecule energies, clashes, CG consistency and, when asked, the AA forces
projected onto the beads), chunk by chunk so memory stays bounded; :func:`compare` turns two
observation sets into the metrics of ``gdbm eval``.
Bins are fixed and anchored at zero (:mod:`gdbm.analysis.histograms`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from gdbm.analysis.energies import ENERGY_KEYS, molecule_energies
from gdbm.analysis.forces import FORCE_WIDTH, POOLED, bead_force_magnitudes
from gdbm.analysis.geometry import internal_coordinates
from gdbm.analysis.histograms import jsd
from gdbm.analysis.rdf import RDFAccumulator, RDFCounts
from gdbm.data.trajectory import Frames
from gdbm.physics.energy import EnergyModel
from gdbm.physics.neighbors import PairList, nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.utils.pbc import minimum_image
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.paths import path_distance_pairs
from gdbm.topology.topology import Topology

BIN_WIDTHS = {"bond": 0.001, "angle": 1.0, "proper": 2.0, "improper": 2.0, "energy": 5.0}
RDF_WIDTH, RDF_MAX = 0.01, 1.2
LONG_BOND, CLASH, HEAVY_CLASH = 0.2, 0.1, 0.2


@dataclass
class Observation:
    """Everything measured on one set of frames, kept raw so that sets can be merged."""

    n_frames: int
    geometry: dict[str, Tensor]  # flat values per distribution key
    energies: dict[str, Tensor]  # [F, n_molecules] per energy key
    rdf: RDFCounts
    close: Tensor  # distances of non-excluded pairs closer than CLASH
    heavy: Tensor  # distances of intermolecular heavy-atom pairs closer than HEAVY_CLASH
    cg_deviation: Tensor | None = None  # [F * n_beads] bead distances to the CG input
    bead_forces: dict[str, Tensor] | None = None  # |F_I| (Eq. 6.3) per bead type and pooled, flat

    def merge(self, other: "Observation") -> "Observation":
        """The observation of both sets of frames together."""
        def cat(a: Tensor | None, b: Tensor | None) -> Tensor | None:
            return None if a is None or b is None else torch.cat([a, b])

        rdf = RDFCounts(self.rdf.groups, self.rdf.counts + other.rdf.counts, self.rdf.ideal + other.rdf.ideal,
                        self.rdf.width, self.rdf.r_max)
        return Observation(self.n_frames + other.n_frames,
                           {k: torch.cat([v, other.geometry[k]]) for k, v in self.geometry.items()},
                           {k: torch.cat([v, other.energies[k]]) for k, v in self.energies.items()},
                           rdf, torch.cat([self.close, other.close]), torch.cat([self.heavy, other.heavy]),
                           cat(self.cg_deviation, other.cg_deviation),
                           None if self.bead_forces is None or other.bead_forces is None else
                           {k: torch.cat([v, other.bead_forces[k]]) for k, v in self.bead_forces.items()})

    @property
    def scalars(self) -> dict[str, float | None]:
        """Per-set numbers that need no reference: clashes, long bonds, energies, CG consistency."""
        n = self.n_frames
        bonds = self.geometry.get("all_bonds", torch.zeros(0))
        total = self.energies["total"].sum(-1)  # [F] per frame
        lj = self.energies["lj"]
        out = {
            "n_frames": n,
            "clash_pairs_per_frame": self.close.numel() / n,
            "min_nonexcluded_distance": float(self.close.min()) if self.close.numel() else None,
            "heavy_inter_clashes_per_frame": self.heavy.numel() / n,
            "min_heavy_inter_distance": float(self.heavy.min()) if self.heavy.numel() else None,
            "frac_bonds_over_0.2nm": float((bonds > LONG_BOND).double().mean()) if bonds.numel() else 0.0,
            "energy_mean": float(total.mean()), "energy_std": float(total.std()) if n > 1 else 0.0,
            "energy_max": float(total.max()),
            "lj_per_mol_mean": float(lj.mean()), "lj_per_mol_std": float(lj.std()), "lj_per_mol_max": float(lj.max()),
        }
        if self.bead_forces is not None:  # the clash tail of the projected forces, kJ/mol/nm
            pooled = self.bead_forces[POOLED].double()
            out["bead_force_p99"] = float(torch.quantile(pooled, 0.99))
            out["bead_force_max"] = float(pooled.max())
        if self.cg_deviation is not None:
            out["cg_rmsd"] = float(self.cg_deviation.pow(2).mean().sqrt())
            out["cg_max_dev"] = float(self.cg_deviation.max())
        return out


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
        per_cg = max(1, n // len(cg)) if cg is not None and cg_offset == 0 else 1
        for start in tqdm(range(0, n, self.chunk), desc=f"eval {label}".strip(), unit="chunk", leave=False):
            # float32 pair arithmetic (sums in float64): the frames are float32 to begin with
            pos = frames.positions[start:start + self.chunk].float()
            box = frames.boxes[start:start + self.chunk].float()
            for key, values in internal_coordinates(self.top, pos, box).items():
                geometry.setdefault(key, []).append(values)
            pairs = neighbor_pairs(pos, box, max(RDF_MAX, self.model.cutoff))  # one search for all
            r = pair_vectors(pos, box, pairs).norm(dim=-1)  # [P]
            within = torch.nonzero(r < self.model.cutoff).squeeze(-1)
            for key, values in molecule_energies(self.model, pos, box, pairs.select(within)).items():
                energies[key].append(values)
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
                           {k: torch.cat([b[k] for b in bead_forces]) for k in bead_forces[0]} if bead_forces else None)


def _rdf_mae(ref: RDFCounts, gen: RDFCounts) -> dict[str, float]:
    g_ref, g_gen = ref.g(), gen.g()
    out = {}
    for k, name in enumerate(ref.groups):
        key = {"all": "rdf_mae", "carbon": "rdf_mae_carbon"}.get(name, f"rdf_mae/{name}")
        out[key] = float((g_ref[k] - g_gen[k]).abs().mean())
    return out


def compare(ref: Observation, gen: Observation) -> dict[str, float | None]:
    """The metrics of ``gen`` against ``ref``: JSDs, RDF errors, then ``gen``'s own scalars."""
    out: dict[str, float | None] = {}
    for key, values in ref.geometry.items():
        family = {"all_bonds": "bond", "all_angles": "angle", "all_dihedrals": "proper",
                  "all_impropers": "improper"}.get(key, key.split("/")[0])
        if key in gen.geometry:
            out[key] = jsd(values, gen.geometry[key], BIN_WIDTHS[family])
    for key in ENERGY_KEYS:
        if key in ref.energies and key in gen.energies:
            out[f"{key}_jsd"] = jsd(ref.energies[key], gen.energies[key], BIN_WIDTHS["energy"])
    out.update(_rdf_mae(ref.rdf, gen.rdf))
    if ref.bead_forces is not None and gen.bead_forces is not None:
        for key, values in ref.bead_forces.items():
            out[f"force_jsd/{key}"] = jsd(values, gen.bead_forces[key], FORCE_WIDTH)
    out.update(gen.scalars)
    return out


def observe_reference(evaluator: Evaluator, reference: Frames, cg: Frames | None = None
                      ) -> tuple[Observation, Observation, Observation]:
    """The reference measured as two halves (the noise floor) and as a whole (their merge)."""
    half = len(reference) // 2
    first = evaluator.observe(reference.subset(slice(0, half)), cg, "reference 1/2")
    second = evaluator.observe(reference.subset(slice(half, len(reference))), cg, "reference 2/2", cg_offset=half)
    return first, second, first.merge(second)
