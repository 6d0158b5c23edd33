"""Metrics of backmapped trajectories against a reference trajectory (thesis Sec. 8.3): potential
energies, the phi/psi free-energy surface, intra-frame velocities (Eq. 8.9) and MSM implied
timescales on phi/psi.

JSDs use natural logs (0..ln 2) on fixed bins: energies 2 kJ/mol, velocities 0.01 nm/ps, the
phi/psi plane in 36 x 36 bins of 10 degrees.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from gdbm.analysis.histograms import jsd, jsd_from_counts

ENERGY_BIN = 2.0  # kJ/mol
VELOCITY_BIN = 0.01  # nm/ps
FES_BINS = 36
KB = 0.0083144626  # kJ/mol/K


def backbone_dihedral_atoms(names: list[str], resids: list[int]) -> dict[str, tuple[int, int, int, int]]:
    """phi (C-N-CA-C) and psi (N-CA-C-N) of the first residue with both neighbours, as atom indices."""
    index = {(r, n): i for i, (r, n) in enumerate(zip(resids, names))}
    for r in sorted(set(resids)):
        keys = [(r - 1, "C"), (r, "N"), (r, "CA"), (r, "C"), (r + 1, "N")]
        if all(k in index for k in keys):
            c0, n, ca, c, n1 = (index[k] for k in keys)
            return {"phi": (c0, n, ca, c), "psi": (n, ca, c, n1)}
    raise ValueError("no residue with N, CA, C and both neighbouring backbone atoms (needs phi and psi)")


def dihedral(positions: Tensor, atoms: tuple[int, int, int, int]) -> Tensor:
    """Dihedral angles ``[T]`` (radians, -pi..pi) of four atoms in frames ``[T, n, 3]``."""
    p0, p1, p2, p3 = (positions[:, a].double() for a in atoms)
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = torch.linalg.cross(b0, b1), torch.linalg.cross(b1, b2)
    m1 = torch.linalg.cross(n1, torch.nn.functional.normalize(b1, dim=-1))
    return torch.atan2(-(m1 * n2).sum(-1), (n1 * n2).sum(-1))  # IUPAC sign: clockwise is positive


def phi_psi(positions: Tensor, names: list[str], resids: list[int]) -> Tensor:
    """``[T, 2]`` (phi, psi) in radians."""
    atoms = backbone_dihedral_atoms(names, resids)
    return torch.stack([dihedral(positions, atoms["phi"]), dihedral(positions, atoms["psi"])], -1)


def fes_counts(angles: Tensor, bins: int = FES_BINS) -> Tensor:
    """Counts ``[bins, bins]`` of (phi, psi) on the periodic square."""
    k = ((angles.double() + math.pi) / (2 * math.pi) * bins).floor().long().clamp(0, bins - 1)  # [T, 2]
    return torch.bincount(k[:, 0] * bins + k[:, 1], minlength=bins * bins).double().view(bins, bins)


def free_energy(counts: Tensor, temperature: float) -> Tensor:
    """F = -kT ln p (kJ/mol), minimum at 0; empty bins are inf."""
    p = counts / counts.sum()
    f = -KB * temperature * torch.log(p)
    return f - f[torch.isfinite(f)].min()


def torsion_atoms(system_xml: str) -> Tensor:
    """The distinct proper torsions ``[m, 4]`` of an OpenMM System's ``PeriodicTorsionForce`` terms."""
    import openmm as mm

    system = mm.XmlSerializer.deserialize(system_xml)
    quads = set()
    for force in system.getForces():
        if isinstance(force, mm.PeriodicTorsionForce):
            for k in range(force.getNumTorsions()):
                q = tuple(force.getTorsionParameters(k)[:4])
                quads.add(min(q, q[::-1]))
    return torch.tensor(sorted(quads), dtype=torch.long).view(-1, 4)


def intraframe_velocities(positions: Tensor, lag_ps: float, segments: int = 1) -> Tensor:
    """``|r(t) - r(t - tau)| / tau`` (nm/ps, Eq. 8.9) ``[T', n]``, leaving out pairs across segment starts."""
    v = (positions[1:] - positions[:-1]).norm(dim=-1) / lag_ps  # [T-1, n]
    bounds = np.linspace(0, len(positions), segments + 1).round().astype(int)[1:-1]
    keep = torch.ones(len(v), dtype=torch.bool)
    keep[torch.as_tensor(bounds - 1, dtype=torch.long)] = False  # pair (b-1, b) crosses the start b
    return v[keep]


def implied_timescales(angles: dict[str, Tensor], reference: str, lag: int, n_clusters: int, n_timescales: int,
                       lag_ps: float, seed: int = 0) -> dict[str, list[float]]:
    """Implied timescales (ps) of reversible MSMs on phi/psi, states from k-means on the reference.

    Angles enter k-means as (cos, sin) pairs, so clusters respect the periodicity. deeptime does
    the clustering, counting (sliding window) and estimation; each set's MSM lives on its largest
    connected set.
    """
    from deeptime.clustering import KMeans
    from deeptime.markov import TransitionCountEstimator
    from deeptime.markov.msm import MaximumLikelihoodMSM

    def embed(a: Tensor) -> np.ndarray:
        return torch.cat([a.cos(), a.sin()], -1).numpy().astype(np.float64)

    clustering = KMeans(n_clusters, init_strategy="kmeans++", max_iter=100, fixed_seed=seed).fit(
        embed(angles[reference])).fetch_model()
    out = {}
    for name, a in angles.items():
        dtraj = clustering.transform(embed(a))
        counts = TransitionCountEstimator(lag, "sliding").fit(dtraj).fetch_model().submodel_largest()
        msm = MaximumLikelihoodMSM(reversible=True).fit(counts).fetch_model()
        out[name] = [float(t) * lag_ps for t in msm.timescales(n_timescales)]
    return out


def compare(reference: Tensor, generated: dict[str, Tensor], names: list[str], resids: list[int],
            energies: dict[str, Tensor], torsions: Tensor, lag_ps: float, segments: int = 1,
            msm: dict | None = None) -> tuple[dict, dict]:
    """Metrics per set (reference first) and the raw observations behind the plots.

    ``torsions`` ``[m, 4]``: every force-field torsion, pooled into one distribution (2 degree bins):
    phi and psi are fixed by the CG beads here, the torsions of the generated atoms are not.
    """
    sets = {"reference": reference, **generated}
    angles = {k: phi_psi(v, names, resids) for k, v in sets.items()}
    tors = {k: torch.stack([dihedral(v, tuple(q)) for q in torsions.tolist()], 1) for k, v in sets.items()}
    vel = {k: intraframe_velocities(v, lag_ps, 1 if k == "reference" else segments) for k, v in sets.items()}
    heavy = torch.tensor([not n.startswith("H") for n in names])
    fes = {k: fes_counts(a) for k, a in angles.items()}
    metrics: dict[str, dict] = {}
    for k in sets:
        e = energies[k]
        metrics[k] = {
            "frames": len(sets[k]), "energy_mean": float(e.mean()), "energy_std": float(e.std()),
            "energy_jsd": jsd(e, energies["reference"], ENERGY_BIN),
            "fes_jsd": jsd_from_counts(fes[k].flatten(), fes["reference"].flatten()),
            "torsion_jsd": jsd(tors[k].rad2deg(), tors["reference"].rad2deg(), 2.0),
            "velocity_mean": float(vel[k].mean()),
            "velocity_jsd": jsd(vel[k], vel["reference"], VELOCITY_BIN),
            "velocity_jsd_heavy": jsd(vel[k][:, heavy], vel["reference"][:, heavy], VELOCITY_BIN),
            "velocity_jsd_hydrogen": jsd(vel[k][:, ~heavy], vel["reference"][:, ~heavy], VELOCITY_BIN),
        }
    if msm is not None:
        for k, ts in implied_timescales(angles, "reference", lag_ps=lag_ps, **msm).items():
            metrics[k]["timescales_ps"] = ts
    return metrics, {"angles": angles, "velocities": vel, "fes": fes, "energies": energies}
