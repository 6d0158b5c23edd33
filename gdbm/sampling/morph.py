"""Morphing (thesis Ch. 7): AA frames of another distribution through the CG resolution and back.

``X`` are AA frames of the target's topology drawn from another distribution (another force
field, a geometric or minimised build, an older model's output, a fine-CG model mapped up).
The encoder is the mapping that made the model's CG input (``coarse_map``; sPS:
``PS1_cg_fritz.map``), the decoder a backmapping model trained only on the target
distribution: local features learned from the target are reinserted into X's large-scale
structure (thesis Sec. 7.1).

- Scheme A: a forward pass and Gibbs sweeps on the CG mapping of X; X's atom positions are
  used for nothing else.
- Scheme B: Gibbs sweeps only, starting from X itself; the CG input is still X's mapping.

Both are a :class:`~gdbm.sampling.jobs.BackmapJob` whose CG input is X mapped on the fly
(``cg_map``), scheme B with X as ``init``, so morphing shares the backmapping's parts,
retries, processes and seeds. :func:`displacement` says how far the output moved from X.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gdbm.sampling.jobs import BackmapJob, BackmapReport, PartStore, backmap_trajectory
from gdbm.data.coarse import coarse_grain
from gdbm.data.frame_writer import check_output, write_frames
from gdbm.data.trajectory import Frames, check_particle_count, frame_range, read_frames
from gdbm.utils.distributed import Distributed
from gdbm.utils.errors import InputError
from gdbm.utils.pbc import minimum_image
from gdbm.topology.mapping import SystemMapping
from gdbm.topology.system import MappedSystem

SCHEMES = ("A", "B")


def morph_job(source: str, coarse_map: str, scheme: str, *, source_struct: str | None = None,
              **options: Any) -> BackmapJob:
    """The backmapping job that morphs the AA frames ``source`` by ``scheme``.

    ``coarse_map``: the mapping that turns ``source`` into the model's CG input; it is also the
    mapping ``--relax`` holds unless ``options`` name another (``hold``). ``options``: the other
    :class:`~gdbm.sampling.jobs.BackmapJob` fields (checkpoint, topology, reconstruction
    mapping, sampler, frames, ...).
    """
    if scheme not in SCHEMES:
        raise InputError(f"unknown morphing scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if scheme == "B" and options["sampler"].n_gibbs == 0:
        raise InputError("scheme B with 0 Gibbs sweeps returns the input unchanged; give --gibbs >= 1")
    options["hold"] = options.get("hold") or coarse_map
    init = dict(init=source, init_struct=source_struct) if scheme == "B" else {}
    return BackmapJob(cg=source, cg_struct=source_struct, cg_map=coarse_map, **init, **options)


def source_frames(job: BackmapJob, system: MappedSystem) -> Frames:
    """The job's AA input frames X (its ``cg`` file read as AA frames), cut to ``job.frames``."""
    source = read_frames(job.cg, job.cg_struct, allow_no_box=False)
    check_particle_count(source, system.aa.n_atoms, f"the topology {job.topology}", job.cg,
                         names=system.aa.names)
    return source.subset(frame_range(job.frames, len(source))) if job.frames else source


@dataclass
class Displacement:
    """How far morphed frames lie from X, per output frame (nm): all atoms, and their CG mapping."""

    aa_rmsd: list[float]
    cg_rmsd: list[float]

    def summary(self) -> str:
        def stats(values: list[float]) -> str:
            return f"mean {sum(values) / len(values):.4f} nm, max {max(values):.4f} nm"

        return f"moved from the input: all-atom RMSD {stats(self.aa_rmsd)}; CG RMSD {stats(self.cg_rmsd)}"


def displacement(source: Frames, morphed: Frames, mapping: SystemMapping) -> Displacement:
    """RMSD of each morphed frame from its source frame (``samples`` consecutive outputs per source frame),
    of the atoms and of the beads of ``mapping``, periodic boundaries included."""
    if len(morphed) % max(len(source), 1):
        raise ValueError(f"{len(morphed)} morphed frames for {len(source)} source frames")
    samples = len(morphed) // len(source)
    x = source.positions.double().repeat_interleave(samples, 0)  # [G, n, 3]
    boxes = source.boxes.double().repeat_interleave(samples, 0)  # [G, 3, 3]
    y = morphed.positions.double()

    def rmsd(a: torch.Tensor, b: torch.Tensor) -> list[float]:
        return minimum_image(a - b, boxes).pow(2).sum(-1).mean(-1).sqrt().tolist()

    return Displacement(rmsd(y, x), rmsd(mapping.map_positions(y, boxes), mapping.map_positions(x, boxes)))


@dataclass
class MorphReport:
    """How a morphing ended: the backmapping's report and, when every frame was made, the displacement."""

    backmap: BackmapReport
    displacement: Displacement | None


def morph(job: BackmapJob, output: str | Path, *, cg_output: str | Path | None = None, workers: int = 1,
          distributed: Distributed = Distributed(), force: bool = False, progress: bool = True) -> MorphReport | None:
    """Run a :func:`morph_job` into ``output``; ``cg_output``: also write the intermediate CG frames (X mapped).

    Like ``gdbm backmap``, a rerun of an interrupted job continues it. Returns the report on the main process (None on the other ranks of torchrun).
    """
    system = job.coarse_system()
    continuing = PartStore(output).matches(job.settings())  # a rerun of an interrupted job rewrites its CG frames
    if cg_output is not None:
        check_output(cg_output, force=force or continuing)
    report = backmap_trajectory(job, output, workers=workers, distributed=distributed, force=force,
                                progress=progress)
    if report is None:
        return None
    source = source_frames(job, system)
    if cg_output is not None:
        write_frames(cg_output, coarse_grain(source, system), force=True, atoms=system.cg)
    moved = None
    if not report.failed:
        moved = displacement(source, read_frames(output, _structure(job, output)), system.mapping)
    return MorphReport(report, moved)


def _structure(job: BackmapJob, output: str | Path) -> str | Path | None:
    """A structure file naming the atoms of ``output`` when its format carries none (.xtc/.dcd/.trr): the input's."""
    if Path(output).suffix in {".gro", ".pdb"}:
        return None
    if job.cg_struct:
        return job.cg_struct
    source = Path(job.cg)
    return min(source.glob("*.gro")) if source.is_dir() else source
