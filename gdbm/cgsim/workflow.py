"""``gdbm cgsim`` as a library function: fit the CG force field, run it, check the run, write the folder.

Writes ``cg.xtc`` (the kept frames) and ``cg.gro`` (the first of them, naming the beads as the
starting frame does, so ``gdbm backmap --cg cg.xtc --cg-struct cg.gro`` reads them), the
CG-level check against the reference (``cg_check.json``, ``cg_check.png``) and ``run.json``
(settings, force-field summary, wall time).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gdbm.cgsim.check import compare_cg, plot_cg_check
from gdbm.cgsim.forcefield import build_forcefield
from gdbm.cgsim.simulate import RunSettings, run_cg
from gdbm.data.frame_writer import write_frames
from gdbm.data.trajectory import Frames, read_frames
from gdbm.topology import read_topology
from gdbm.topology.topology import Topology
from gdbm.utils.atomic_files import write_text
from gdbm.utils.errors import InputError

OUTPUTS = ("cg.xtc", "cg.gro", "cg_check.json", "cg_check.png", "run.json")
_TRAJECTORY_SUFFIXES = (".xtc", ".trr", ".dcd")


@dataclass
class CGRun:
    """The kept frames, the CG-level check against the reference and the ``run.json`` record."""

    frames: Frames
    check: dict[str, float]
    record: dict


def _read_reference(paths: list[str | Path], structure: str | Path | None) -> Frames:
    """The reference CG frames of every path, concatenated (they must agree on the bead count)."""
    parts = [read_frames(p, structure if Path(p).suffix in _TRAJECTORY_SUFFIXES else None) for p in paths]
    sizes = {f.n_particles for f in parts}
    if len(sizes) != 1:
        raise InputError(f"the reference CG frames disagree on the bead count: {sorted(sizes)}", paths[0])
    return Frames(torch.cat([f.positions for f in parts]), torch.cat([f.boxes for f in parts]),
                  [label for f in parts for label in f.labels], parts[0].names, parts[0].resnames, parts[0].resids)


def _cg_topology(path: str | Path, n_beads: int) -> Topology:
    """The CG topology of one molecule type in ``path``, repeated to ``n_beads`` beads."""
    one = read_topology(path, require_parameters=False)
    if n_beads % one.n_atoms:
        raise InputError(f"{n_beads} beads per frame are not a whole number of molecules of {one.n_atoms} beads",
                         path)
    return read_topology(path, require_parameters=False, n_molecules=n_beads // one.n_atoms)


def _start_frame(path: str | Path, structure: str | Path | None, index: int) -> Frames:
    """Frame ``index`` of the frames in ``path``."""
    start = read_frames(path, structure)
    if not 0 <= index < len(start):
        raise InputError(f"--start-frame {index} is not one of the {len(start)} frames", path)
    return start.subset([index])


def fit_and_run(cg_top: str | Path, ref: list[str | Path], start: str | Path, output: str | Path,
                settings: RunSettings, *, ref_struct: str | Path | None = None,
                start_struct: str | Path | None = None, start_frame: int = 0,
                terms: tuple[str, ...] = ("bonds", "angles", "dihedrals"), cutoff: float = 1.0,
                force: bool = False) -> CGRun:
    """Boltzmann-invert the reference CG frames ``ref``, run from frame ``start_frame`` of ``start``.

    ``terms``: the bonded potentials to include (pair potentials are always on); ``cutoff``:
    pair cutoff in nm. Writes :data:`OUTPUTS` into ``output`` (``force``: over an earlier run's).
    """
    out = Path(output)
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not force:
        raise InputError(f"already holds {', '.join(existing)}; pass --force to overwrite", out)
    began = time.perf_counter()
    reference = _read_reference(ref, ref_struct)
    top = _cg_topology(cg_top, reference.n_particles)
    first = _start_frame(start, start_struct, start_frame)
    ff = build_forcefield(top, reference, settings.temperature, cutoff, terms)
    fitted = time.perf_counter()
    frames = run_cg(ff, first, settings)
    simulated = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    write_frames(out / "cg.xtc", frames, force=force)
    write_frames(out / "cg.gro", frames.subset([0]), force=force)
    check, curves = compare_cg(top, ff, reference, frames)
    plot_cg_check(curves, ff.type_names, out / "cg_check.png", force=force)
    write_text(out / "cg_check.json", json.dumps(check, indent=1) + "\n", force)
    record = {"settings": settings.model_dump(), "terms": list(terms), "cutoff_nm": cutoff,
              "reference_frames": len(reference), "start": f"{start}#{start_frame}",
              "bonded_potentials": [f"{g.kind}/{g.key} ({len(g.index)} per frame)" for g in ff.bonded],
              "pair_types": ff.type_names, "excluded_pairs": int(ff.exclusions.shape[0]),
              "wall_s": {"fit": round(fitted - began, 1), "simulate": round(simulated - fitted, 1),
                         "total": round(time.perf_counter() - began, 1)}}
    write_text(out / "run.json", json.dumps(record, indent=1) + "\n", force)
    return CGRun(frames, check, record)
