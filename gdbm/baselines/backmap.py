"""Baseline backmapping of a CG trajectory, frame by frame, on several processes.

Each frame: geometric first guess (:mod:`gdbm.baselines.placement`), then minimisation
(:mod:`gdbm.baselines.minimize`). Workers build their OpenMM contexts once; a frame that
fails is reported with its reason and left out, the others are kept in input order.
:func:`baseline_backmap_files` is ``gdbm baseline``: files in, trajectory out.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from gdbm.utils.progress import tqdm

from gdbm.baselines.minimize import FrameResult, Minimizer, Protocol
from gdbm.baselines.placement import Placement, first_guess, placement
from gdbm.data.frame_writer import WRITE_SUFFIXES, write_frames
from gdbm.data.trajectory import Frames, check_bonded_distances, check_particle_count, read_frames
from gdbm.topology.system import load_mapped_system
from gdbm.topology.topology import Topology
from gdbm.utils.errors import InputError


@dataclass
class Failure:
    """A frame that could not be backmapped."""

    index: int
    label: str
    reason: str


@dataclass
class BaselineResult:
    """The backmapped frames (input order, failed frames left out), per-frame results and failures."""

    frames: Frames
    results: list[FrameResult]  # one per frame in ``frames``
    failures: list[Failure] = field(default_factory=list)


_minimizer: Minimizer | None = None  # one per worker process


def _start_worker(top: Topology, protocol: Protocol) -> None:
    global _minimizer
    _minimizer = Minimizer(top, protocol)


def _minimize_frame(positions: np.ndarray, box: np.ndarray) -> FrameResult:
    """Minimise one frame in this worker process."""
    return _minimizer(positions, box)


def _attempt(minimizer: Minimizer, positions: np.ndarray, box: np.ndarray) -> FrameResult | str:
    """The minimised frame, or the error message if it failed (the frame is then left out)."""
    try:
        return minimizer(positions, box)
    except Exception as err:  # noqa: BLE001 - any failure of one frame must not end the others
        return _message(err)


def _message(err: Exception) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def baseline_backmap(top: Topology, rule: Placement, cg: Frames, protocol: Protocol = Protocol(), *,
                     displacement: float = 0.05, seed: int = 0, workers: int = 1,
                     progress: bool = True) -> BaselineResult:
    """Backmap every frame of ``cg`` (bead positions of ``rule``'s mapping) onto ``top``'s atoms.

    With several ``workers`` frames run in that many processes, else here; OpenMM uses one
    thread per frame either way, so the result depends on ``seed`` but not on ``workers``.
    """
    tasks = ((f, first_guess(rule, cg.positions[f], cg.boxes[f], displacement, seed, f),
              cg.boxes[f].double().numpy()) for f in range(len(cg)))
    done: dict[int, FrameResult | str] = {}
    bar = tqdm(total=len(cg), desc="baseline", unit="frame", disable=not progress or None)
    if workers == 1:
        minimizer = Minimizer(top, protocol)
        for index, positions, box in tasks:
            done[index] = _attempt(minimizer, positions, box)
            _report(bar, f"[{len(done)}/{len(cg)}] {cg.labels[index]}", done[index])
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(top, protocol)) as pool:
            futures = {pool.submit(_minimize_frame, positions, box): index for index, positions, box in tasks}
            for future in as_completed(futures):
                index = futures[future]
                try:
                    done[index] = future.result()
                except Exception as err:  # noqa: BLE001 - also a worker that died: its frames fail, not the run
                    done[index] = _message(err)
                _report(bar, f"[{len(done)}/{len(cg)}] {cg.labels[index]}", done[index])
    bar.close()
    kept = [f for f in range(len(cg)) if isinstance(done[f], FrameResult)]
    results = [done[f] for f in kept]
    positions = torch.from_numpy(np.stack([r.positions for r in results])) if results else \
        torch.zeros(0, top.n_atoms, 3)
    frames = Frames(positions, cg.boxes[kept], [cg.labels[f] for f in kept], list(top.names),
                    list(top.resnames), top.resids.tolist())
    failures = [Failure(f, cg.labels[f], done[f]) for f in range(len(cg)) if isinstance(done[f], str)]
    return BaselineResult(frames, results, failures)


def _report(bar: tqdm, label: str, outcome: FrameResult | str) -> None:
    """One log line per frame above the progress bar."""
    if isinstance(outcome, str):
        bar.write(f"{label}: FAILED: {outcome}")
    else:
        bar.write(f"{label}: energy {outcome.energy_initial:.4g} -> {outcome.energy_bonded:.4g} (bonded stage, "
                  f"{outcome.iterations[0]} it) -> {outcome.energy_final:.6g} kJ/mol ({outcome.iterations[1]} it), "
                  f"{outcome.seconds:.1f} s")
    bar.update()


def _check_request(output: Path, protocol: Protocol, displacement: float, workers: int, force: bool) -> None:
    """Input errors for an unwritable output or impossible settings, before any work."""
    if output.suffix not in WRITE_SUFFIXES:
        raise InputError(f"cannot write {output.suffix!r}; expected one of {sorted(WRITE_SUFFIXES)}", output)
    if output.exists() and not force:
        raise InputError("exists; pass --force to overwrite", output)
    if workers < 1:
        raise InputError("--workers must be >= 1")
    if min(protocol.bonded_steps, protocol.steps) < 0:
        raise InputError("--bonded-steps and --steps must be >= 0")
    if not displacement > 0:
        raise InputError("--displacement must be > 0: atoms of one bead would start on one point")


def baseline_backmap_files(top: str | Path, mapping_file: str | Path, cg: str | Path, output: str | Path, *,
                           cg_itp: str | Path | None = None, cg_struct: str | Path | None = None,
                           protocol: Protocol = Protocol(), displacement: float = 0.05, seed: int = 0,
                           workers: int = 1, force: bool = False) -> BaselineResult:
    """``gdbm baseline``: backmap the CG frames in ``cg`` onto the AA topology ``top`` via ``mapping_file``.

    Writes the frames that succeeded to ``output`` (``.xtc``, ``.dcd``, ``.trr``, ``.pdb``, or ``.gro``
    for one frame; residues, elements and bonds of ``top``), nothing if none did; failed frames are in the result's ``failures``.
    """
    output = Path(output)
    _check_request(output, protocol, displacement, workers, force)
    system = load_mapped_system(top, mapping_file, cg_itp, partial=True)
    aa = system.aa
    frames = read_frames(cg, cg_struct, allow_no_box=False)  # the minimisation needs a periodic box
    check_particle_count(frames, system.cg.n_atoms,
                         f"the CG topology {system.cg_source} ({aa.n_molecules} molecules)", cg)
    check_bonded_distances(frames, system.mapping.cg_bonds, f"the CG topology {system.cg_source}", cg)
    if output.suffix == ".gro" and len(frames) != 1:
        raise InputError(f"a .gro file holds one frame, the input has {len(frames)}; write .xtc or .pdb", output)
    result = baseline_backmap(aa, placement(system.mapping, aa.connectivity), frames, protocol,
                              displacement=displacement, seed=seed, workers=workers)
    if result.results:
        write_frames(output, result.frames, force=force, atoms=aa)
    return result
