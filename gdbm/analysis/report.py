"""``gdbm eval`` output: ``metrics.json``, a Markdown summary and the plots, written atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path

from gdbm.utils.atomic_files import write_text
from gdbm.analysis.evaluate import Evaluator, Observation, compare, observe_reference
from gdbm.analysis.plots import plot_all
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError

NOISE_FLOOR = "reference half vs half"
SUMMARY_COLUMNS = [
    ("all_bonds", "bonds JSD"), ("all_angles", "angles JSD"), ("all_dihedrals", "dihedrals JSD"),
    ("all_impropers", "impropers JSD"), ("lj_jsd", "LJ/mol JSD"), ("total_jsd", "E/mol JSD"),
    ("rdf_mae", "RDF MAE"), ("rdf_mae_carbon", "C RDF MAE"), ("force_jsd/all", "bead force JSD"),
    ("bead_force_p99", "bead |F| p99"), ("bead_force_max", "bead |F| max"),
    ("cg_rmsd", "CG RMSD nm"),
    ("cg_max_dev", "CG max nm"), ("clash_pairs_per_frame", "pairs<0.1nm /frame"),
    ("frac_bonds_over_0.2nm", "bonds>0.2nm"), ("lj_per_mol_mean", "LJ/mol mean"), ("lj_per_mol_std", "LJ/mol std"),
    ("energy_mean", "E mean"),
]


def format_number(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 1e6:
        return f"{value:.2e}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.2e}" if abs(value) < 0.01 else f"{value:.4f}"


def markdown_summary(metrics: dict[str, dict[str, float]]) -> str:
    """A summary table (one row per set) and a per-type JSD table (one column per set)."""
    names = list(metrics)
    present = [(k, label) for k, label in SUMMARY_COLUMNS if any(k in metrics[n] for n in names)]
    lines = ["| set | " + " | ".join(label for _, label in present) + " |",
             "| --- |" + " --- |" * len(present)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(format_number(metrics[n].get(k)) for k, _ in present) + " |")
    per_type = sorted({k for n in names for k in metrics[n] if "/" in k and not k.startswith("rdf_mae/")})
    per_type += sorted({k for n in names for k in metrics[n] if k.startswith("rdf_mae/")})
    per_type += [f"{k}_jsd" for k in ("bond", "angle", "proper", "improper", "lj_intra", "lj_inter")
                 if any(f"{k}_jsd" in metrics[n] for n in names)]
    lines += ["", "| metric | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for k in per_type:
        lines.append(f"| {k} | " + " | ".join(format_number(metrics[n].get(k)) for n in names) + " |")
    return "\n".join(lines) + "\n"


def evaluate_sets(evaluator: Evaluator, reference: Frames, generated: dict[str, Frames], out_dir: str | Path,
                  cg: Frames | None = None, force: bool = False, settings: dict | None = None) -> dict:
    """Evaluate every generated set against the reference; write metrics, summary and plots.

    Adds the noise floor (the reference's first half against its second half). Returns the
    metrics dictionary that was written to ``metrics.json``.
    """
    out = Path(out_dir)
    if (out / "metrics.json").exists() and not force:
        raise InputError("already holds an evaluation (metrics.json); pass --force to overwrite", out)
    out.mkdir(parents=True, exist_ok=True)
    for name, frames in generated.items():
        if frames.n_particles != reference.n_particles:
            raise InputError(f"set {name!r} has {frames.n_particles} atoms per frame, the reference "
                             f"{reference.n_particles}")
        if cg is not None and len(frames) % len(cg):
            raise InputError(f"set {name!r} has {len(frames)} frames, not a multiple of the {len(cg)} CG frames")
    if cg is not None and len(reference) != len(cg):
        raise InputError(f"the reference has {len(reference)} frames but the CG input {len(cg)}")

    metrics: dict[str, dict] = {}
    if len(reference) >= 2:
        first, second, whole = observe_reference(evaluator, reference, cg)
        metrics[NOISE_FLOOR] = compare(first, second)
        for key in ("cg_rmsd", "cg_max_dev"):  # the reference's own CG consistency: the xtc precision
            if key in whole.scalars:
                metrics[NOISE_FLOOR][key] = whole.scalars[key]
    else:  # one frame has no halves: no noise floor
        whole = evaluator.observe(reference, cg, "reference")
    observations: dict[str, Observation] = {"reference": whole}
    for name, frames in generated.items():
        observations[name] = evaluator.observe(frames, cg, name)
        metrics[name] = compare(observations["reference"], observations[name])
    metrics["reference"] = dict(observations["reference"].scalars)

    write_text(out / "metrics.json", json.dumps({"sets": metrics, "settings": settings or {}}, indent=1))
    write_text(out / "summary.md", markdown_summary(metrics))
    plot_all(observations, out)
    return metrics
