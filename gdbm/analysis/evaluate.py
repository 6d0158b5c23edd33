"""Evaluation of generated AA frames against reference frames: distributions and scalars.

:func:`observe` reduces a set of frames to its observables (bonded geometry per type, RDF
counts, per-molecule energies, clashes, CG consistency), chunk by chunk so memory stays
bounded; :func:`compare` turns two observation sets into the metrics of ``gdbm eval``.
Bins are fixed and anchored at zero (:mod:`gdbm.analysis.histograms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm import tqdm

from gdbm.analysis.energies import molecule_energies
from gdbm.analysis.geometry import internal_coordinates
from gdbm.analysis.histograms import jsd
from gdbm.analysis.rdf import RDFAccumulator, RDFCounts
from gdbm.data.trajectory import Frames
from gdbm.physics.energy import EnergyModel
from gdbm.physics.neighbors import nearest_excluded, neighbor_pairs, pair_vectors
from gdbm.physics.pbc import minimum_image
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.paths import path_distance_pairs
from gdbm.topology.topology import Topology

BIN_WIDTHS = {"bond": 0.001, "angle": 1.0, "proper": 2.0, "improper": 2.0, "energy": 5.0}
ENERGY_KEYS = ("bond", "angle", "proper", "improper", "lj", "lj_intra", "lj_inter", "total")
RDF_WIDTH, RDF_MAX = 0.01, 1.2
LONG_BOND, CLASH, HEAVY_CLASH = 0.2, 0.1, 0.2


@dataclass
class Observation:
    """Everything measured on one set of frames."""

    geometry: dict[str, Tensor]  # flat values per distribution key
    energies: dict[str, Tensor]  # [F, n_molecules] per energy key
    rdf: RDFCounts
    scalars: dict[str, float] = field(default_factory=dict)


class Evaluator:
    """Measures sets of frames of one system; built once, applied to every set."""

    def __init__(self, topology: Topology, cutoff: float = 1.0, coulomb: str = "none",
                 mapping: SystemMapping | None = None, chunk: int = 4, per_type_rdf: bool = True):
        self.top = topology
        self.model = EnergyModel(topology, cutoff=cutoff, coulomb=coulomb)
        self.mapping = mapping
        self.chunk = chunk
        self.rdf_excluded = path_distance_pairs(topology, 3)[0]
        self.per_type_rdf = per_type_rdf
        self.heavy = torch.tensor([e != "H" for e in topology.elements])

    def _clashes(self, pos: Tensor, box: Tensor) -> dict[str, Tensor]:
        pairs = neighbor_pairs(pos, box, HEAVY_CLASH)
        r = pair_vectors(pos, box, pairs).norm(dim=-1)
        keep = ~nearest_excluded(pairs, r, self.top.exclusions, self.top.n_atoms) & (pairs.i != pairs.j)
        pairs, r = pairs.select(keep), r[keep]
        inter_heavy = (self.top.molecule[pairs.i] != self.top.molecule[pairs.j]) & self.heavy[pairs.i] & self.heavy[pairs.j]
        return {"close": r[r < CLASH], "heavy": r[inter_heavy & (r < HEAVY_CLASH)]}

    def observe(self, frames: Frames, cg: Frames | None = None, label: str = "") -> Observation:
        """Measure ``frames``; with ``cg`` (and a mapping), also the CG consistency.

        With ``k`` samples per CG frame, generated frames are grouped by CG frame:
        frame ``g`` belongs to CG frame ``g // k``.
        """
        n = len(frames)
        geometry: dict[str, list[Tensor]] = {}
        energies: dict[str, list[Tensor]] = {k: [] for k in ENERGY_KEYS}
        rdf = RDFAccumulator(self.top.types, self.top.elements, self.rdf_excluded, RDF_MAX, RDF_WIDTH, self.per_type_rdf)
        close, heavy, cg_dev = [], [], []
        per_cg = n // len(cg) if cg is not None else 1
        for start in tqdm(range(0, n, self.chunk), desc=f"eval {label}".strip(), unit="chunk", leave=False):
            pos = frames.positions[start:start + self.chunk].to(torch.float64)
            box = frames.boxes[start:start + self.chunk].to(torch.float64)
            for key, values in internal_coordinates(self.top, pos, box).items():
                geometry.setdefault(key, []).append(values)
            for key, values in molecule_energies(self.model, pos, box).items():
                if key in energies:
                    energies[key].append(values)
            rdf.add(pos, box)
            c = self._clashes(pos, box)
            close.append(c["close"])
            heavy.append(c["heavy"])
            if cg is not None and self.mapping is not None:
                idx = torch.arange(start, start + pos.shape[0]) // per_cg
                beads = self.mapping.map_positions(pos, box)  # [f, n_beads, 3]
                target = cg.positions[idx].to(torch.float64)
                cg_dev.append(minimum_image(beads - target, box).norm(dim=-1).flatten())
        obs = Observation({k: torch.cat(v) for k, v in geometry.items()},
                          {k: torch.cat(v) for k, v in energies.items() if v}, rdf.result())
        close_t, heavy_t = torch.cat(close), torch.cat(heavy)
        bonds = obs.geometry.get("all_bonds", torch.zeros(0))
        total = obs.energies["total"].sum(-1)  # [F] per frame
        lj = obs.energies["lj"]
        obs.scalars = {
            "n_frames": n,
            "clash_pairs_per_frame": close_t.numel() / n,
            "min_nonexcluded_distance": float(close_t.min()) if close_t.numel() else None,
            "heavy_inter_clashes_per_frame": heavy_t.numel() / n,
            "min_heavy_inter_distance": float(heavy_t.min()) if heavy_t.numel() else None,
            "frac_bonds_over_0.2nm": float((bonds > LONG_BOND).double().mean()) if bonds.numel() else 0.0,
            "energy_mean": float(total.mean()), "energy_std": float(total.std()) if n > 1 else 0.0,
            "energy_max": float(total.max()),
            "lj_per_mol_mean": float(lj.mean()), "lj_per_mol_std": float(lj.std()), "lj_per_mol_max": float(lj.max()),
        }
        if cg_dev:
            dev = torch.cat(cg_dev)
            obs.scalars["cg_rmsd"] = float(dev.pow(2).mean().sqrt())
            obs.scalars["cg_max_dev"] = float(dev.max())
        return obs


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
    out.update(gen.scalars)
    return out


def split_halves(frames: Frames) -> tuple[Frames, Frames]:
    """The first and second half of a reference set (the noise floor)."""
    half = len(frames) // 2
    return frames.subset(slice(0, half)), frames.subset(slice(half, 2 * half))
