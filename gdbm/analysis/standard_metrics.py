"""The metrics of ``gdbm eval``, each one function registered once (see :mod:`gdbm.analysis.metrics`).

Registered in the order of the summary table's columns. Distributions are compared by their
Jensen-Shannon divergence on fixed bins anchored at zero (:mod:`gdbm.analysis.histograms`).
"""

from __future__ import annotations

import torch

from gdbm.analysis.energies import ENERGY_KEYS
from gdbm.analysis.forces import FORCE_WIDTH, POOLED
from gdbm.analysis.histograms import jsd
from gdbm.analysis.metrics import Metric, Observation, Values, register
from gdbm.analysis.plots import bead_force_plots, energy_plots, family_plots, lj_pair_plots, rdf_plots

BIN_WIDTHS = {"bond": 0.001, "angle": 1.0, "proper": 2.0, "improper": 2.0, "torsion": 2.0, "energy": 5.0}
LONG_BOND = 0.2  # nm
_POOLED_FAMILY = {"all_bonds": "bond", "all_angles": "angle", "all_dihedrals": "proper", "all_impropers": "improper"}


def geometry_jsd(ref: Observation, gen: Observation) -> Values:
    """JSD of every bonded distribution, pooled (``all_bonds``...) and per type (``bond/C-C``...)."""
    return {key: jsd(values, gen.geometry[key], BIN_WIDTHS[_POOLED_FAMILY.get(key, key.split("/")[0])])
            for key, values in ref.geometry.items() if key in gen.geometry}


def energy_jsd(ref: Observation, gen: Observation) -> Values:
    """JSD of the per-molecule energy distributions, per term (``lj_jsd``, ``total_jsd``...)."""
    return {f"{key}_jsd": jsd(ref.energies[key], gen.energies[key], BIN_WIDTHS["energy"])
            for key in ENERGY_KEYS if key in ref.energies and key in gen.energies}


def rdf_mae(ref: Observation, gen: Observation) -> Values:
    """Mean absolute error of g(r): all atoms, carbons and each type pair (``rdf_mae/A-B``)."""
    g_ref, g_gen = ref.rdf.g(), gen.rdf.g()
    return {{"all": "rdf_mae", "carbon": "rdf_mae_carbon"}.get(name, f"rdf_mae/{name}"):
            float((g_ref[k] - g_gen[k]).abs().mean()) for k, name in enumerate(ref.rdf.groups)}


def force_jsd(ref: Observation, gen: Observation) -> Values:
    """JSD of the projected bead-force magnitudes, pooled (``force_jsd/all``) and per bead type."""
    if ref.bead_forces is None or gen.bead_forces is None:
        return {}
    return {f"force_jsd/{key}": jsd(values, gen.bead_forces[key], FORCE_WIDTH)
            for key, values in ref.bead_forces.items()}


def frame_count(obs: Observation) -> Values:
    """The number of frames measured."""
    return {"n_frames": obs.n_frames}


def bead_force_tail(obs: Observation) -> Values:
    """The clash tail of the projected forces, kJ/mol/nm: 99th percentile and maximum."""
    if obs.bead_forces is None:
        return {}
    pooled = obs.bead_forces[POOLED].double()
    return {"bead_force_p99": float(torch.quantile(pooled, 0.99)), "bead_force_max": float(pooled.max())}


def cg_consistency(obs: Observation) -> Values:
    """RMS and maximum distance, nm, of the mapped frames' beads to the CG input."""
    if obs.cg_deviation is None:
        return {}
    return {"cg_rmsd": float(obs.cg_deviation.pow(2).mean().sqrt()), "cg_max_dev": float(obs.cg_deviation.max())}


def clashes(obs: Observation) -> Values:
    """Non-excluded pairs closer than 0.1 nm per frame, and the closest such pair."""
    return {"clash_pairs_per_frame": obs.close.numel() / obs.n_frames,
            "min_nonexcluded_distance": float(obs.close.min()) if obs.close.numel() else None}


def heavy_clashes(obs: Observation) -> Values:
    """Intermolecular heavy-atom pairs closer than 0.2 nm per frame, and the closest such pair."""
    return {"heavy_inter_clashes_per_frame": obs.heavy.numel() / obs.n_frames,
            "min_heavy_inter_distance": float(obs.heavy.min()) if obs.heavy.numel() else None}


def long_bonds(obs: Observation) -> Values:
    """The fraction of bonds longer than :data:`LONG_BOND`."""
    bonds = obs.geometry.get("all_bonds", torch.zeros(0))
    return {"frac_bonds_over_0.2nm": float((bonds > LONG_BOND).double().mean()) if bonds.numel() else 0.0}


def lj_per_molecule(obs: Observation) -> Values:
    """Mean, spread and maximum of the per-molecule LJ energy, kJ/mol."""
    lj = obs.energies["lj"]
    return {"lj_per_mol_mean": float(lj.mean()), "lj_per_mol_std": float(lj.std()), "lj_per_mol_max": float(lj.max())}


def lj_by_type_pair(obs: Observation) -> Values:
    """LJ per frame, kJ/mol, per atom-type pair within (``lj_pair/C-H intra``) and between molecules."""
    if obs.lj_by_pair is None:
        return {}
    return {f"lj_pair/{key}": float(values.mean()) for key, values in obs.lj_by_pair.items()}


def frame_energy(obs: Observation) -> Values:
    """Mean, spread and maximum of the total energy per frame, kJ/mol."""
    total = obs.energies["total"].sum(-1)  # [F]
    return {"energy_mean": float(total.mean()), "energy_std": float(total.std()) if obs.n_frames > 1 else 0.0,
            "energy_max": float(total.max())}


register(Metric("geometry_jsd", compare=geometry_jsd, plot=family_plots,
                columns=(("all_bonds", "bonds JSD"), ("all_angles", "angles JSD"),
                         ("all_dihedrals", "dihedrals JSD"), ("all_impropers", "impropers JSD"))))
register(Metric("energy_jsd", compare=energy_jsd, plot=energy_plots,
                columns=(("lj_jsd", "LJ/mol JSD"), ("total_jsd", "E/mol JSD")),
                details=tuple(f"{k}_jsd" for k in ("bond", "angle", "proper", "improper", "lj_intra", "lj_inter"))))
register(Metric("rdf_mae", compare=rdf_mae, plot=rdf_plots,
                columns=(("rdf_mae", "RDF MAE"), ("rdf_mae_carbon", "C RDF MAE"))))
register(Metric("force_jsd", compare=force_jsd, plot=bead_force_plots, columns=(("force_jsd/all", "bead force JSD"),)))
register(Metric("n_frames", measure=frame_count))
register(Metric("bead_force_tail", measure=bead_force_tail,
                columns=(("bead_force_p99", "bead |F| p99"), ("bead_force_max", "bead |F| max"))))
register(Metric("cg_consistency", measure=cg_consistency, floor_from_whole=True,
                columns=(("cg_rmsd", "CG RMSD nm"), ("cg_max_dev", "CG max nm"))))
register(Metric("clashes", measure=clashes, columns=(("clash_pairs_per_frame", "pairs<0.1nm /frame"),)))
register(Metric("heavy_clashes", measure=heavy_clashes))
register(Metric("long_bonds", measure=long_bonds, columns=(("frac_bonds_over_0.2nm", "bonds>0.2nm"),)))
register(Metric("lj_per_molecule", measure=lj_per_molecule,
                columns=(("lj_per_mol_mean", "LJ/mol mean"), ("lj_per_mol_std", "LJ/mol std"))))
register(Metric("lj_by_type_pair", measure=lj_by_type_pair, plot=lj_pair_plots))
register(Metric("frame_energy", measure=frame_energy, columns=(("energy_mean", "E mean"),)))
