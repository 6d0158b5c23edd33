"""A study's results in one place: ``summary.json``, ``summary.md`` and comparison plots.

Per test set, one row per model arm beside the reference's noise floor (its first half
against its second half); per model, its training mix, training time and backmapping time.
Plots: a heat-map of each metric against the arms (colour: the metric in units of the
noise floor, log scale), one per test set, and, when the test sets carry a numeric label
(e.g. temperature), each metric against that label with one line per arm. The distributions
of every arm on shared axes are `gdbm eval`'s plots in ``eval/<test>/``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gdbm.analysis.report import NOISE_FLOOR, SUMMARY_COLUMNS, format_number
from gdbm.utils.atomic_files import write_text
from gdbm.study.config import ModelArm, StudyConfig

_LABELS = dict(SUMMARY_COLUMNS)
METRICS = [(k, _LABELS[k]) for k in ("all_bonds", "all_angles", "all_dihedrals", "all_impropers", "lj_jsd",
                                     "rdf_mae_carbon", "rdf_mae", "cg_rmsd", "clash_pairs_per_frame",
                                     "frac_bonds_over_0.2nm", "lj_per_mol_mean", "lj_per_mol_std")]
HEATMAP = ["all_bonds", "all_angles", "all_dihedrals", "all_impropers", "lj_jsd", "rdf_mae_carbon", "cg_rmsd"]


def composition(arm: ModelArm) -> str:
    """The arm's training mix as text, e.g. ``cumene 1 + octane 1``, or its checkpoint."""
    if arm.checkpoint is not None:
        return f"checkpoint {arm.checkpoint}"
    if arm.backmapped is not None:
        return "given backmaps"
    return " + ".join(f"{name} {share:g}" for name, share in arm.train.items())


def collect(study: StudyConfig, out: Path) -> dict:
    """The numbers of every finished stage (missing ones are left out)."""
    models = {}
    for arm in study.models:
        entry: dict = {"training": composition(arm), "fit": arm.fit}
        done = out / "models" / arm.name / "done.json"
        if done.exists():
            d = json.loads(done.read_text())
            entry.update(train_steps=d["steps"], train_seconds=d["seconds"])
        models[arm.name] = entry
    tests = {}
    for test in study.tests:
        entry = {"system": test.system, "frames": test.frames, "labels": study.systems[test.system].labels,
                 "backmap_seconds_per_frame": {}, "metrics": {}}
        for arm in study.models:
            stamp = out / "backmap" / test.name / f"{arm.name}.json"
            if stamp.exists():
                s = json.loads(stamp.read_text())
                entry["backmap_seconds_per_frame"][arm.name] = round(s["seconds"] / max(s["frames"], 1), 1)
        metrics = out / "eval" / test.name / "metrics.json"
        if metrics.exists():
            sets = json.loads(metrics.read_text())["sets"]
            entry["metrics"] = {name: sets[name] for name in [NOISE_FLOOR, *[a.name for a in study.models]]
                                if name in sets}
        tests[test.name] = entry
    return {"study": study.name, "description": study.description, "models": models, "tests": tests}


def markdown(summary: dict, extra: list[str]) -> str:
    lines = [f"# Study: {summary['study']}", ""]
    if summary["description"]:
        lines += [summary["description"].strip(), ""]
    lines += ["## Models", "", "| model | training | overrides | steps | training time s |", "| --- | --- | --- | --- | --- |"]
    for name, m in summary["models"].items():
        fit = json.dumps(m["fit"]) if m["fit"] else "–"
        lines.append(f"| {name} | {m['training']} | {fit} | {m.get('train_steps', '–')} | "
                     f"{m.get('train_seconds', '–')} |")
    for test, t in summary["tests"].items():
        labels = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in t["labels"].items())
        lines += ["", f"## Test set {test}: system {t['system']}, frames {t['frames'] or 'all'}"
                  + (f" ({labels})" if labels else ""), ""]
        if not t["metrics"]:
            lines.append("(not evaluated yet)")
            continue
        present = [(k, label) for k, label in [*METRICS, *((k, k) for k in extra)]
                   if any(k in m for m in t["metrics"].values())]
        lines += ["| set | " + " | ".join(label for _, label in present) + " | backmap s/frame |",
                  "| --- |" + " --- |" * (len(present) + 1)]
        for name, m in t["metrics"].items():
            seconds = t["backmap_seconds_per_frame"].get(name, "–")
            lines.append(f"| {name} | " + " | ".join(format_number(m.get(k)) for k, _ in present) + f" | {seconds} |")
        lines += ["", (f"Distributions of every model on shared axes: `eval/{test}/*.png`; per-type JSDs: "
                       f"`eval/{test}/summary.md`; heat-map: `heatmap_{test}.png`.")]
    return "\n".join(lines) + "\n"


def plot_heatmap(test: str, entry: dict, models: dict, path: Path, extra: list[str]) -> bool:
    """Metrics (rows) against arms (columns), coloured by log10(metric / noise floor); a metric
    whose floor is zero (or unknown) is scaled by its best arm instead."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    floor = entry["metrics"].get(NOISE_FLOOR, {})
    arms = [a for a in entry["metrics"] if a != NOISE_FLOOR]
    rows = [k for k in [*HEATMAP, *extra] if any(entry["metrics"][a].get(k) is not None for a in arms)]
    if not arms or not rows:
        return False
    values = np.array([[_number(entry["metrics"][a].get(k)) for a in arms] for k in rows], dtype=float)
    best = [np.nanmin(np.where(row > 0, row, np.nan)) if (row > 0).any() else math.nan for row in values]
    scale = np.array([[f if (f := _number(floor.get(k))) > 0 else b] for k, b in zip(rows, best)], dtype=float)
    ratio = np.log10(np.clip(values / scale, 1e-3, None))
    fig, ax = plt.subplots(figsize=(3.2 + 1.9 * len(arms), 0.9 + 0.5 * len(rows)))
    image = ax.imshow(ratio, cmap="viridis_r", aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, format_number(float(v)), ha="center", va="center", fontsize=8,
                color="white" if np.isfinite(ratio[i, j]) and ratio[i, j] > np.nanmean(ratio) else "black")
    labels = dict(METRICS)
    ax.set_yticks(range(len(rows)), [labels.get(k, k) for k in rows])
    ax.set_xticks(range(len(arms)), [f"{a}\n" + models[a]["training"].replace(" + ", "\n+ ") for a in arms], fontsize=8)
    ax.set_title(f"test set {test}")
    fig.colorbar(image, ax=ax, label="log10(metric / noise floor, or / best arm)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _number(value) -> float:
    return math.nan if value is None else float(value)


def plot_vs_label(summary: dict, path: Path) -> str | None:
    """Each metric against a numeric label the test sets share (e.g. temperature), one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = {name: t for name, t in summary["tests"].items() if t["metrics"]}
    shared = set.intersection(*(set(t["labels"]) for t in tests.values())) if tests else set()
    label = next((k for k in sorted(shared) if all(isinstance(t["labels"][k], (int, float)) for t in tests.values())
                  and len({t["labels"][k] for t in tests.values()}) > 1), None)
    if label is None:
        return None
    keys = HEATMAP[:6]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    order = sorted(tests, key=lambda n: tests[n]["labels"][label])
    x = [tests[n]["labels"][label] for n in order]
    arms = [a for a in summary["models"]]
    names = dict(METRICS)
    for ax, key in zip(axes.flat, keys):
        for arm in [NOISE_FLOOR, *arms]:
            y = [tests[n]["metrics"].get(arm, {}).get(key) for n in order]
            if any(v is not None for v in y):
                ax.plot(x, [math.nan if v is None else v for v in y], "o-", label=arm,
                        color="grey" if arm == NOISE_FLOOR else None, ls="--" if arm == NOISE_FLOOR else "-")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_title(names[key])
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return label


def write_summary(study: StudyConfig, out: Path) -> dict:
    """Write ``summary.json``, ``summary.md`` and the plots; return the summary."""
    summary = collect(study, out)
    text = markdown(summary, study.summary_columns)
    for test, entry in summary["tests"].items():
        if entry["metrics"]:
            plot_heatmap(test, entry, summary["models"], out / f"heatmap_{test}.png", study.summary_columns)
    label = plot_vs_label(summary, out / "metrics_vs_label.png")
    if label:
        text += f"\nEvery metric against the test sets' {label}: `metrics_vs_label.png`.\n"
    write_text(out / "summary.json", json.dumps(summary, indent=1) + "\n")
    write_text(out / "summary.md", text)
    return summary
