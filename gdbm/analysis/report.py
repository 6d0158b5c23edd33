"""``gdbm eval`` output: ``metrics.json``, a Markdown summary and the plots, written atomically.

:func:`evaluate_files` is ``gdbm eval`` as a library function (files in, evaluation folder
out); :func:`evaluate_sets` does the same for frames already in memory. The summary's columns
and the plots come from the metric registry (:mod:`gdbm.analysis.metrics`).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

from gdbm.analysis.evaluate import Evaluator, Observation, compare, observe_reference
from gdbm.analysis.metrics import detail_keys, floor_from_whole, plot_metrics, summary_columns
from gdbm.data.trajectory import Frames, check_bonded_distances, check_particle_count, frame_range, read_frames
from gdbm.topology import read_topology
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.system import load_mapped_system
from gdbm.topology.topology import Topology
from gdbm.utils.atomic_files import check_output_folder, staged_folder, write_text
from gdbm.utils.errors import InputError

NOISE_FLOOR = "reference half vs half"
_TRAJECTORY_SUFFIXES = (".xtc", ".trr", ".dcd")


def __getattr__(name: str) -> list[tuple[str, str]]:
    """``SUMMARY_COLUMNS``: ``(key, label)`` of the summary table's columns, read from the registry."""
    if name == "SUMMARY_COLUMNS":
        return summary_columns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    present = [(k, label) for k, label in summary_columns() if any(k in metrics[n] for n in names)]
    lines = ["| set | " + " | ".join(label for _, label in present) + " |",
             "| --- |" + " --- |" * len(present)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(format_number(metrics[n].get(k)) for k, _ in present) + " |")
    per_type = sorted({k for n in names for k in metrics[n] if "/" in k and not k.startswith("rdf_mae/")})
    per_type += sorted({k for n in names for k in metrics[n] if k.startswith("rdf_mae/")})
    per_type += [k for k in detail_keys() if any(k in metrics[n] for n in names)]
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
    out = check_output_folder(out_dir)
    if (out / "metrics.json").exists() and not force:
        raise InputError("already holds an evaluation (metrics.json); pass --force to overwrite", out)
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
        metrics[NOISE_FLOOR].update(floor_from_whole(whole))  # e.g. its own CG consistency: the xtc precision
    else:  # one frame has no halves: no noise floor
        whole = evaluator.observe(reference, cg, "reference")
    observations: dict[str, Observation] = {"reference": whole}
    for name, frames in generated.items():
        observations[name] = evaluator.observe(frames, cg, name)
        metrics[name] = compare(observations["reference"], observations[name])
    metrics["reference"] = dict(observations["reference"].scalars)

    with staged_folder(out) as staged:  # all files or none (a full disk half-way leaves nothing)
        write_text(staged / "metrics.json", json.dumps({"sets": metrics, "settings": settings or {}}, indent=1))
        write_text(staged / "summary.md", markdown_summary(metrics))
        plot_metrics(observations, staged)
    return metrics


def _load_system(top: str | Path, mapping_file: str | Path | None, cg_itp: str | Path | None,
                 parameters: str | Path | None) -> tuple[Topology, SystemMapping | None]:
    """The AA topology and, with a mapping file, the mapping onto the beads."""
    if mapping_file is None:
        return read_topology(top, parameters=parameters), None
    system = load_mapped_system(top, mapping_file, cg_itp, parameters=parameters)
    return system.aa, system.mapping


def _read_generated(sets: dict[str, str | Path], structure: str | Path | None, names: list[str],
                    what: str) -> dict[str, Frames]:
    """Every generated set, named; ``structure`` names the atoms of trajectories without names."""
    generated = {}
    for name, path in sets.items():
        generated[name] = read_frames(path, structure if Path(path).suffix in _TRAJECTORY_SUFFIXES else None)
        check_particle_count(generated[name], len(names), what, path, names=names)
    return generated


def _samples_in_window(frames: Frames, n_reference: int, window: slice, name: str = "") -> Frames:
    """The frames of a set holding ``k`` samples of every reference frame (frame by frame) within
    ``window``; a set of any other length is taken to hold the window's frames already, ``k`` samples of
    each when its length is a multiple of the window's (said in a warning: a set made for a longer
    window is not cut to this one); any other length is an error."""
    if not len(frames) % n_reference:
        k = len(frames) // n_reference
        return frames.subset([g for i in range(n_reference)[window] for g in range(i * k, (i + 1) * k)])
    n_window = len(range(n_reference)[window])
    if len(frames) % n_window:
        raise InputError(f"the generated set {name!r} holds {len(frames)} frames: neither k samples of each of the "
                         f"{n_reference} reference frames nor of the {n_window} frames of --frames")
    if len(frames) != n_window:
        warnings.warn(f"the generated set {name!r} holds {len(frames)} frames for the {n_window} CG frames of "
                      f"--frames: taken as {len(frames) // n_window} samples of each, not cut to the window",
                      UserWarning, stacklevel=2)
    return frames


def evaluate_files(top: str | Path, ref: str | Path, generated: dict[str, str | Path], output: str | Path, *,
                   parameters: str | Path | None = None, mapping_file: str | Path | None = None,
                   cg_itp: str | Path | None = None, ref_struct: str | Path | None = None,
                   cg: str | Path | None = None, cg_struct: str | Path | None = None, frames: str | None = None,
                   forces: bool = False, cutoff: float = 1.0, per_type_rdf: bool = True, force: bool = False,
                   settings: dict | None = None) -> dict:
    """``gdbm eval``: read the reference and the generated sets, evaluate them, write ``output``.

    ``top``: AA topology (``parameters``: supplementary parameters); ``generated``: ``{name:
    trajectory}``, ``k`` samples per CG frame stored frame by frame (``ref_struct`` names the
    atoms of a ``.xtc``/``.trr``/``.dcd``); ``mapping_file`` (with ``cg_itp``) enables CG
    consistency against the ``cg`` frames and the projected bead ``forces``; ``frames``:
    ``"START:STOP"`` of the CG frames, slicing the reference, ``cg`` and every generated set that
    covers all reference frames. Writes ``metrics.json``, ``summary.md`` and the plots (see
    :func:`evaluate_sets`) and returns the metrics.
    """
    if forces and mapping_file is None:
        raise InputError("--forces needs --cg-map (the mapping whose beads the forces are projected onto)")
    if cg is not None and mapping_file is None:
        raise InputError("--cg needs --cg-map (the mapping that turns generated frames into CG frames)")
    topology, mapping = _load_system(top, mapping_file, cg_itp, parameters)
    reference = read_frames(ref, ref_struct, allow_no_box=False)  # RDFs and energies need a periodic box
    check_particle_count(reference, topology.n_atoms, f"the topology {top}", ref, names=topology.names)
    sets = _read_generated(generated, ref_struct, topology.names, f"the topology {top}")
    cg_frames = None
    if cg is not None:
        cg_frames = read_frames(cg, cg_struct, allow_no_box=False)
        check_particle_count(cg_frames, mapping.n_beads, f"the mapping {mapping_file}", cg)
        check_bonded_distances(cg_frames, mapping.cg_bonds, f"the mapping {mapping_file}", cg)
    if frames:
        window, full = frame_range(frames, len(reference)), len(reference)
        reference = reference.subset(window)
        cg_frames = cg_frames.subset(window) if cg_frames is not None else None
        sets = {name: _samples_in_window(s, full, window, name) for name, s in sets.items()}
    evaluator = Evaluator(topology, cutoff=cutoff, mapping=mapping, per_type_rdf=per_type_rdf, forces=forces)
    return evaluate_sets(evaluator, reference, sets, output, cg=cg_frames, force=force, settings=settings)
