"""Refinement of AA frames with their CG beads held: steepest descent, then optionally a thermal run.

Steepest descent (:mod:`gdbm.physics.relax`, the step ``gdbm backmap --relax`` ends with) removes
close contacts with every bead's centre held exactly on its CG position; a thermal run then
simulates a short restrained Langevin trajectory at the reference temperature
(:mod:`gdbm.physics.thermal`), which gives bonds, angles and rings their thermal widths back.
For any AA trajectory with its CG frames: another method's output, or a backmapped file to try
several settings on. Finished frames go to ``<output>.parts/`` as they end, so a rerun with the
same settings continues an interrupted job (``gdbm relax`` is the command line of
:func:`relax_trajectory`).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import Tensor
from gdbm.utils.progress import tqdm

from gdbm.data.stereo import stereo_template_from_file
from gdbm.data.frame_writer import WRITE_SUFFIXES, FrameWriter
from gdbm.data.trajectory import Frames, check_bonded_distances, check_particle_count, frame_range, read_frames
from gdbm.physics.energy import EnergyModel
from gdbm.physics.relax import CentreConstraint, RelaxResult, relax
from gdbm.sampling.jobs import PartStore, input_digests
from gdbm.utils.atomic_files import check_output_path
from gdbm.topology.stereo import StereoFix
from gdbm.topology.system import MappedSystem, load_mapped_system
from gdbm.topology.topology import Topology
from gdbm.utils.errors import InputError

if TYPE_CHECKING:
    from gdbm.physics.thermal import ThermalRelaxer, ThermalSettings

RETRY_STEPS = (100, 300)  # steepest-descent steps before each new try of a frame whose thermal run diverged


@dataclass
class RelaxReport:
    """How a trajectory relaxation ended; ``output`` is written only when no frame failed."""

    output: Path
    frames: int  # frames in the job
    failed: dict[int, str]  # frame index in the AA file -> error
    parts: Path  # the folder keeping the finished frames while some failed (a rerun retries those)


class FrameRefiner:
    """``refiner(positions [n, 3] float64, box [3, 3], beads [N, 3], frame) -> (positions [n, 3], what was done)``
    for one system: stereocentres fixed, steepest descent, then the thermal run (each optional)."""

    def __init__(self, system: MappedSystem, steps: int, constrain_bonds: bool, stereo_from: str | Path | None,
                 thermal: ThermalSettings | None) -> None:
        self.system, self.steps, self.constrain_bonds = system, steps, constrain_bonds
        self.model = EnergyModel(system.aa)
        self.relaxer: ThermalRelaxer | None = None
        if thermal is not None:
            from gdbm.physics.thermal import ThermalRelaxer  # OpenMM: needed for a thermal run only

            self.relaxer = ThermalRelaxer(system.aa, system.mapping, thermal)
        self.stereo = StereoFix(stereo_template_from_file(system.aa, stereo_from), system.aa) if stereo_from else None

    def __call__(self, x: Tensor, box: Tensor, beads: Tensor, frame: int) -> tuple[Tensor, str]:
        said = f"frame {frame}:"
        if self.stereo is not None:
            fixed, inverted = self.stereo(x.unsqueeze(0), box.unsqueeze(0))
            x, said = fixed[0], said + f" {int(inverted[0])} of {len(self.stereo)} stereocentres inverted,"
        held = CentreConstraint(self.system.mapping, beads.unsqueeze(0).double(), self.system.aa.masses)
        if self.steps:
            result = self._descend(x, box, held, self.steps)
            x = result.positions[0]
            said += f" {float(result.energy_before[0]):.1f} -> {float(result.energy_after[0]):.1f} kJ/mol"
        if self.relaxer is not None:
            x, retries = self._thermal_run(x, box, beads, held, frame)
            said += retries + " + thermal run"
        return x, said

    def _descend(self, x: Tensor, box: Tensor, held: CentreConstraint, steps: int) -> RelaxResult:
        return relax(x.unsqueeze(0), box.unsqueeze(0), self.model, steps, centres=held, bonds=self.constrain_bonds)

    def _thermal_run(self, x: Tensor, box: Tensor, beads: Tensor, held: CentreConstraint,
                     frame: int) -> tuple[Tensor, str]:
        """The thermal run; where it diverges, more steepest descent (:data:`RETRY_STEPS`) and a new try."""
        said = ""
        for extra in RETRY_STEPS:
            try:
                return self.relaxer(x, box, beads, frame=frame), said
            except FloatingPointError:  # contacts OpenMM could not open: descend further, try again
                x = self._descend(x, box, held, extra).positions[0]
                said += f" diverged, {extra} more steepest-descent steps,"
        return self.relaxer(x, box, beads, frame=frame), said


def relax_trajectory(aa: str | Path, cg: str | Path, topology: str | Path, mapping: str | Path,
                     output: str | Path, *, aa_struct: str | Path | None = None,
                     cg_struct: str | Path | None = None, cg_itp: str | Path | None = None,
                     parameters: str | Path | None = None, frames: str | None = None, steps: int = 50,
                     constrain_bonds: bool = False, stereo_from: str | Path | None = None,
                     thermal: ThermalSettings | None = None, force: bool = False,
                     cg_window: str | None = None) -> RelaxReport:
    """Relax the AA frames ``aa`` (of ``topology``) with every bead centre of ``mapping`` (may be
    partial) held on its position in ``cg`` (one CG frame per AA frame), and write them to ``output``.

    Per frame: stereocentres handed unlike in ``stereo_from`` inverted (if given), ``steps`` steps
    of steepest descent (0 only with ``thermal``; ``constrain_bonds``: every bond kept at b0),
    then the ``thermal`` run. ``frames``: ``"START:STOP"`` of both files; ``cg_window`` instead:
    of the CG file only, paired with every AA frame (the AA file holds that window's frames, as
    ``gdbm backmap --frames`` writes them; frames are then numbered as in the CG file). A frame that fails is
    reported and the others go on; finished frames are kept in ``<output>.parts/`` so a rerun
    with the same settings continues (``force``: start over, overwrite ``output``).
    """
    output = check_output_path(output, WRITE_SUFFIXES)
    if steps < 0 or (steps == 0 and thermal is None):
        raise InputError("--steps must be >= 1 (or 0 with --thermal)")
    store = PartStore(output)
    files = dict(aa=aa, aa_struct=aa_struct, cg=cg, cg_struct=cg_struct, topology=topology, mapping=mapping,
                 cg_itp=cg_itp, parameters=parameters, stereo_from=stereo_from)
    if frames and cg_window:
        raise InputError("give either frames (of both files) or cg_window (of the CG file), not both")
    settings = _settings(**files, frames=frames, cg_window=cg_window, steps=steps, constrain_bonds=constrain_bonds,
                         thermal=thermal)
    inputs = input_digests(files)
    if not force:
        store.check_same_job(settings, inputs)  # a stale store is refused before any work
    if output.exists() and not force and not store.matches(settings, inputs):
        raise InputError("exists; pass --force to overwrite", output)
    system = load_mapped_system(topology, mapping, cg_itp, parameters=parameters, partial=True)
    aa_frames, cg_frames, first = _read_pairs(system, aa, aa_struct, cg, cg_struct, frames, topology, mapping,
                                              cg_window=cg_window)
    store.shape = (system.aa.n_atoms, 3)
    for line in store.prepare(settings, force, None, inputs):
        print(f"gdbm: {line}", file=sys.stderr)
    refine = FrameRefiner(system, steps, constrain_bonds, stereo_from, thermal)
    _relax_frames(refine, aa_frames, cg_frames, first, store)
    failed = {first + f: store.error(f) or "unknown error" for f in range(len(aa_frames)) if not store.done(f)}
    if not failed:
        _write(output, aa_frames, store, system.aa)
    return RelaxReport(output, len(aa_frames), failed, store.folder)


def _read_pairs(system: MappedSystem, aa: str | Path, aa_struct: str | Path | None, cg: str | Path,
                cg_struct: str | Path | None, frames: str | None, topology: str | Path,
                mapping: str | Path, cg_window: str | None = None) -> tuple[Frames, Frames, int]:
    """The AA and CG frames to relax, checked against the system and each other, and the first one's index."""
    aa_frames = read_frames(aa, aa_struct, allow_no_box=False)  # the relaxation needs a periodic box
    cg_frames = read_frames(cg, cg_struct, allow_no_box=False)
    check_particle_count(aa_frames, system.aa.n_atoms, f"the topology {topology}", aa, names=system.aa.names)
    check_particle_count(cg_frames, system.mapping.n_beads, f"the mapping {mapping}", cg)
    check_bonded_distances(cg_frames, system.mapping.cg_bonds, f"the mapping {mapping}", cg)
    first = 0
    if frames:
        window = frame_range(frames, len(aa_frames))
        first = range(len(aa_frames))[window][0]
        aa_frames, cg_frames = aa_frames.subset(window), cg_frames.subset(frame_range(frames, len(cg_frames)))
    elif cg_window:
        window = frame_range(cg_window, len(cg_frames))
        first = range(len(cg_frames))[window][0]
        cg_frames = cg_frames.subset(window)
    if len(aa_frames) != len(cg_frames):
        raise InputError(f"{len(aa_frames)} AA frames but {len(cg_frames)} CG frames; one CG frame per AA frame", cg)
    return aa_frames, cg_frames, first


def _settings(*, thermal: ThermalSettings | None, **inputs: object) -> dict:
    """The job as JSON data: parts are reused only by a job with the same settings (threads aside)."""
    run = {key: value for key, value in asdict(thermal).items() if key != "threads"} if thermal else None
    paths = {key: str(value) if isinstance(value, Path) else value for key, value in inputs.items()}
    return json.loads(json.dumps({**paths, "thermal": run}))  # tuples as lists, as read back from the file


def _relax_frames(refine: FrameRefiner, aa: Frames, cg: Frames, first: int, store: PartStore) -> None:
    """Relax every frame without a part yet into its part file (or its error file), one line each."""
    with tqdm(total=len(aa), initial=sum(store.done(f) for f in range(len(aa))), desc="relax", unit="frame") as bar:
        for f in range(len(aa)):
            if store.done(f):
                continue
            store.retry(f)
            start = time.perf_counter()
            try:
                x, said = refine(aa.positions[f].double(), aa.boxes[f].double(), cg.positions[f], first + f)
                store.save(f, x.float())
                bar.write(f"{said} ({time.perf_counter() - start:.1f} s)")
            except Exception as err:  # noqa: BLE001 - a failed frame is reported, the others go on
                store.fail(f, f"{type(err).__name__}: {err}")
                bar.write(f"frame {first + f}: failed: {type(err).__name__}: {err}")
            bar.update(1)


def _write(output: Path, aa: Frames, store: PartStore, topology: Topology) -> None:
    """Write the relaxed frames in order (residues, elements and bonds of ``topology``), then remove the parts."""
    with FrameWriter(output, topology, True, n_frames=len(aa)) as writer:
        for f in range(len(aa)):
            writer.write(store.load(f).unsqueeze(0), aa.boxes[f:f + 1].float())
    store.remove()
