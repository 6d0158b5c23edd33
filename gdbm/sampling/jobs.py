"""Backmapping a CG trajectory into one AA trajectory, the frames shared among processes.

Each CG frame is one task. Its AA frames go to ``<output>.parts/frame_<i>.pt`` as soon as it is
done; a frame that fails leaves ``frame_<i>.error`` instead, and the other frames go on. A rerun
with the same settings and inputs of the same contents (their hashes are kept in
``settings.json``) skips finished frames and retries failed ones, so a crash loses at most the
frames in progress; a rerun whose inputs changed is refused (``--force`` starts over). Every part
is checked (readable, its shape, finite) before it is used: a bad one is redone, and nothing
non-finite is kept or written. When every task has ended, one process writes the output in frame
order, streaming from the parts (memory does not grow with the trajectory), and removes them.

Tasks are shared by ``workers`` local processes (``gdbm backmap --workers N``) or by the ranks
of ``torchrun`` (frames ``rank::world_size``; the output folder must then be on a file system
every rank sees). Each frame's random stream depends only on the seed and the frame's index in
the CG file (:meth:`gdbm.sampling.backmapper.Backmapper.backmap`), so the output does not depend on how the
frames were shared.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import torch
from gdbm.utils.precision import describe_precision
from gdbm.utils.progress import tqdm

from gdbm.utils.atomic_files import atomic_path, check_output_path, write_text
from gdbm.data.frame_writer import WRITE_SUFFIXES, FrameWriter
from gdbm.data.trajectory import Frames, check_bonded_distances, check_particle_count, frame_range, read_frames
from gdbm.utils.distributed import Distributed
from gdbm.utils.errors import InputError
from gdbm.ordering import OrderingConfig
from gdbm.sampling.backmapper import Backmapper, SamplerConfig
from gdbm.topology.system import MappedSystem


@dataclass(frozen=True)
class BackmapJob:
    """What to backmap and how: all a process needs to rebuild the sampler and read its input."""

    checkpoint: str
    topology: str
    mapping: str
    cg: str
    sampler: SamplerConfig
    cg_struct: str | None = None
    frames: str | None = None  # "START:STOP" of the CG file
    init: str | None = None
    init_struct: str | None = None
    samples: int = 1
    cg_itp: str | None = None
    parameters: str | None = None
    hold: str | None = None
    type_alias: str | None = None
    device: str = "cpu"
    ordering: OrderingConfig | None = None  # instead of the checkpoint's (gdbm backmap --ordering)
    cg_map: str | None = None  # set: ``cg`` holds AA frames, the CG input is their mapping by this file (morphing)
    stereo_from: str | None = None  # an AA structure whose stereocentres to copy, instead of the checkpoint's

    def build_sampler(self, device: str | torch.device | None = None) -> Backmapper:
        from gdbm.data.features import TypeAliases

        return Backmapper.from_checkpoint(
            self.checkpoint, self.topology, self.mapping, self.sampler, cg_itp=self.cg_itp,
            parameters=self.parameters, device=device or self.device, hold=self.hold,
            aliases=TypeAliases.from_yaml(self.type_alias) if self.type_alias else None, ordering=self.ordering,
            stereo_from=self.stereo_from)

    def read_inputs(self, sampler: Backmapper) -> tuple[Frames, Frames | None, list[int]]:
        """The CG frames to backmap, the AA frames to start from (``--init``) and each frame's index in the CG file."""
        cg = read_frames(self.cg, self.cg_struct, allow_no_box=False)  # environments need a periodic box
        if self.cg_map:
            cg = self._coarse_grained(cg, sampler)
        check_particle_count(cg, sampler.system.mapping.n_beads, f"the mapping {self.mapping}",
                             self.cg_map or self.cg)
        check_bonded_distances(cg, sampler.system.mapping.cg_bonds, f"the mapping {self.mapping}",
                               self.cg_map or self.cg)
        window = frame_range(self.frames, len(cg)) if self.frames else slice(None)
        index = list(range(len(cg)))[window]
        init = None
        if self.init:
            init = read_frames(self.init, self.init_struct, allow_no_box=False)
            check_particle_count(init, sampler.system.aa.n_atoms, f"the topology {self.topology}", self.init,
                                 names=sampler.system.aa.names)
            if len(init) != len(cg):
                raise InputError(f"holds {len(init)} frames, the CG input {len(cg)}", self.init)
            init = init.subset(window)
        return cg.subset(window), init, index

    def coarse_system(self) -> MappedSystem:
        """The topology with ``cg_map``: the mapping that turns the AA input ``cg`` into CG frames."""
        from gdbm.topology.system import load_mapped_system

        if not self.cg_map:
            raise ValueError("the job has no cg_map: its input is CG frames already")
        return load_mapped_system(self.topology, self.cg_map, self.cg_itp, parameters=self.parameters, partial=True)

    def _coarse_grained(self, aa: Frames, sampler: Backmapper) -> Frames:
        """``aa`` (frames of the topology) mapped to CG by ``cg_map``."""
        from gdbm.data.coarse import coarse_grain

        check_particle_count(aa, sampler.system.aa.n_atoms, f"the topology {self.topology}", self.cg,
                             names=sampler.system.aa.names)
        return coarse_grain(aa, self.coarse_system())

    def input_files(self) -> dict[str, str]:
        """Every input file of the job by its field name (checkpoint, topology, frames, ...)."""
        names = ("checkpoint", "topology", "mapping", "cg", "cg_struct", "init", "init_struct", "cg_itp",
                 "parameters", "hold", "type_alias", "cg_map", "stereo_from")
        return {name: str(getattr(self, name)) for name in names if getattr(self, name)}

    def settings(self) -> dict:
        """The job as JSON-able data: parts are reused only by a job with the same settings
        (and inputs of the same contents, :func:`input_digests`)."""
        out = asdict(self)
        out["sampler"] = self.sampler.model_dump()
        if out["sampler"]["last_candidates"] == out["sampler"]["candidates"]:  # as jobs before the field wrote it
            del out["sampler"]["last_candidates"]
        if not out["sampler"]["selection_weights"]:  # the default: as jobs before the field wrote it
            del out["sampler"]["selection_weights"]
        # off, the default: as jobs before the field wrote it
        for flag in ("score_hidden", "hydrogen_lookahead", "hydrogen_sweep", "held_candidates"):
            if not out["sampler"][flag]:
                del out["sampler"][flag]
        if out["sampler"]["pendant_turns"] == 1:  # none, the default: as jobs before the field wrote it
            del out["sampler"]["pendant_turns"]
        if out["sampler"]["pendant_tilt"] is None:  # none, the default: as jobs before the field wrote it
            del out["sampler"]["pendant_tilt"]
        if out["sampler"]["selection_kt"] == 0:  # the lowest, the default: as jobs before the field wrote it
            del out["sampler"]["selection_kt"]
        out["ordering"] = self.ordering.model_dump(mode="json") if self.ordering else None
        for key in ("cg_map", "stereo_from"):  # unset: the settings of older jobs, so their parts and stamps still match
            if out[key] is None:
                del out[key]
        return out


_INCLUDE = re.compile(rb'^\s*#include\s+"([^"]+)"', re.MULTILINE)
_CHUNK = 1 << 20


def _hash_file(path: Path, digest: "hashlib._Hash") -> None:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)


def _included(path: Path) -> list[Path]:
    """The files a GROMACS topology ``#include``s that exist next to it (recursively, best effort)."""
    seen: list[Path] = []
    todo = [path]
    while todo:
        current = todo.pop()
        if current.suffix not in (".top", ".itp") or current.stat().st_size > 64 * _CHUNK:
            continue
        for name in _INCLUDE.findall(current.read_bytes()):
            child = current.parent / name.decode("utf-8", "replace")
            if child.is_file() and child not in seen and child != path:
                seen.append(child)
                todo.append(child)
    return seen


def file_digest(path: str | Path) -> str:
    """A content hash of ``path``: a file (with the files a topology includes), a folder's files,
    several files joined by commas (a mapping per molecule type), or, for a name that is no path
    (a shipped model), the name itself."""
    if isinstance(path, str) and "," in path and not Path(path).exists():
        return "+".join(file_digest(part.strip()) for part in path.split(","))
    path = Path(path)
    digest = hashlib.blake2b(digest_size=16)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.is_file():
        files = [path, *_included(path)]
    else:
        return f"name:{path}"
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        _hash_file(file, digest)
    return digest.hexdigest()


def input_digests(files: dict[str, str | Path | None]) -> dict[str, str]:
    """``{name: content hash}`` of the input files that are set (:func:`file_digest`)."""
    return {name: file_digest(path) for name, path in files.items() if path}


def check_part(value: object, shape: tuple[int, ...] | None) -> str | None:
    """Why ``value`` (a loaded part) cannot be used: not a float tensor of ``shape``, or non-finite; None if fine."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return f"holds {type(value).__name__}, expected a float tensor"
    if shape is not None and tuple(value.shape) != tuple(shape):
        return f"holds shape {list(value.shape)}, expected {list(shape)}"
    if not bool(torch.isfinite(value).all()):
        return "holds NaN or infinite coordinates"
    return None


def _as_json(settings: dict) -> dict:
    """``settings`` as ``settings.json`` gives them back (tuples become lists), so a rerun compares like with like."""
    return json.loads(json.dumps(settings))


class PartStore:
    """``<output>.parts/``: one file per finished frame (``frame_<i>.pt``) or failed one (``frame_<i>.error``),
    and ``settings.json``: the settings and input hashes of the job the parts belong to."""

    SETTINGS = "settings.json"
    RESTART = "pass --force to start over"

    def __init__(self, output: str | Path, shape: tuple[int, ...] | None = None):
        output = Path(output)
        self.folder = output.with_name(output.name + ".parts")
        self.shape = shape  # of every part, checked when it is loaded (None: any)

    def _recorded(self) -> dict | None:
        """The content of ``settings.json`` (None when missing); an :class:`InputError` when unreadable."""
        path = self.folder / self.SETTINGS
        if not path.is_file():
            return None
        try:
            recorded = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise InputError(f"unreadable ({type(err).__name__}); {self.RESTART}", path) from None
        if not isinstance(recorded, dict) or "settings" not in recorded:
            raise InputError(f"is not the settings of a gdbm job; {self.RESTART}", path)
        return recorded

    def matches(self, settings: dict, inputs: dict[str, str] | None = None) -> bool:
        """Whether the folder holds parts of a job with these settings (and, given, these input hashes)."""
        try:
            recorded = self._recorded()
        except InputError:
            return False
        return (recorded is not None and recorded["settings"] == _as_json(settings)
                and (inputs is None or recorded.get("inputs") == inputs))

    def check_same_job(self, settings: dict, inputs: dict[str, str] | None) -> None:
        """An :class:`InputError` when the folder holds parts of another job or of other input contents."""
        recorded = self._recorded()
        if recorded is None:
            return
        if recorded["settings"] != _as_json(settings):
            raise InputError(f"holds frames of a job with other settings; {self.RESTART}", self.folder)
        if inputs is None:
            return
        if "inputs" not in recorded:
            raise InputError(f"holds frames of a job whose input files were not recorded (an older gdbm); "
                             f"{self.RESTART}", self.folder)
        old = recorded["inputs"] if isinstance(recorded["inputs"], dict) else {}
        changed = sorted(name for name in set(old) | set(inputs) if old.get(name) != inputs.get(name))
        if changed:
            files = ", ".join(f"{name} {settings.get(name, '')}".strip() for name in changed)
            raise InputError(f"holds frames made from other input contents (changed since: {files}); "
                             f"{self.RESTART}", self.folder)

    def prepare(self, settings: dict, force: bool, run: str | None, inputs: dict[str, str] | None = None) -> list[str]:
        """Create the folder for a job, or check that the parts in it belong to the same job (settings and
        input contents); parts that cannot be used are removed to be redone. Returns what was removed, one
        line each."""
        if force and (self.folder.exists() or self.folder.is_symlink()):
            if self.folder.is_dir() and not self.folder.is_symlink():
                shutil.rmtree(self.folder)
            else:
                self.folder.unlink()
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"is a file, expected the parts folder of the output; {self.RESTART}", self.folder)
        self.check_same_job(settings, inputs)
        self.folder.mkdir(parents=True, exist_ok=True)
        removed = self.discard_bad()
        key = {"settings": settings, "run": run, **({"inputs": inputs} if inputs is not None else {})}
        write_text(self.folder / self.SETTINGS, json.dumps(key, indent=1) + "\n")
        return removed

    def wait_for(self, run: str | None, timeout: float = 600.0) -> None:
        """Wait until the main process has prepared the folder for run ``run``."""
        start = time.monotonic()
        while not self._prepared_for(run):
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{self.folder} was not prepared within {timeout:.0f} s")
            time.sleep(0.5)

    def _prepared_for(self, run: str | None) -> bool:
        try:
            recorded = self._recorded()
        except InputError:  # being written
            return False
        return recorded is not None and recorded.get("run") == run

    def _path(self, frame: int, suffix: str) -> Path:
        return self.folder / f"frame_{frame:07d}{suffix}"

    def done(self, frame: int) -> bool:
        return self._path(frame, ".pt").exists()

    def error(self, frame: int) -> str | None:
        path = self._path(frame, ".error")
        return path.read_text(errors="replace") if path.exists() else None

    def ended(self, frame: int) -> bool:
        return self.done(frame) or self.error(frame) is not None

    def save(self, frame: int, positions: torch.Tensor) -> None:
        """Keep a finished frame; non-finite or misshapen positions are refused (:class:`FloatingPointError`)."""
        positions = positions.detach().cpu().clone()
        problem = check_part(positions, self.shape)
        if problem is not None:
            raise FloatingPointError(f"the frame {problem}; not kept")
        self._path(frame, ".error").unlink(missing_ok=True)
        with atomic_path(self._path(frame, ".pt")) as tmp:
            torch.save(positions, tmp)

    def fail(self, frame: int, message: str) -> None:
        write_text(self._path(frame, ".error"), message)

    def retry(self, frame: int) -> None:
        self._path(frame, ".error").unlink(missing_ok=True)

    def _read(self, path: Path) -> tuple[torch.Tensor | None, str | None]:
        """The part file ``path`` and why it cannot be used (unreadable, not a tensor, wrong shape,
        non-finite), or None if it can."""
        try:
            value = torch.load(path, weights_only=True, map_location="cpu")
        except Exception as err:  # noqa: BLE001 - truncated, garbage or not a tensor file: the part is bad
            return None, f"unreadable ({type(err).__name__}: {' '.join(str(err).split())[:120]})"
        problem = check_part(value, self.shape)
        return (value, None) if problem is None else (None, problem)

    def problem(self, path: Path) -> str | None:
        """Why the part file ``path`` cannot be used; None if it can."""
        return self._read(path)[1]

    def discard_bad(self) -> list[str]:
        """Remove the part files that cannot be used, so that their frames are redone; one line per part."""
        removed = []
        for path in sorted(self.folder.glob("frame_*.pt")):
            problem = self.problem(path)
            if problem is not None:
                path.unlink(missing_ok=True)
                removed.append(f"{path}: {problem}; the frame is redone")
        return removed

    def load(self, frame: int) -> torch.Tensor:
        """The positions of a finished frame, checked; an :class:`InputError` naming the part when bad."""
        path = self._path(frame, ".pt")
        value, problem = self._read(path)
        if value is None:
            raise InputError(f"{problem}; remove it (or pass --force) and rerun to redo the frame", path)
        return value

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class BackmapReport:
    """How a trajectory backmapping ended."""

    output: Path
    frames_written: int
    failed: dict[int, str]  # CG frame index in the file -> error
    seconds: float


def backmap_frames(sampler: Backmapper, job: BackmapJob, cg: Frames, init: Frames | None, index: list[int],
                   tasks: list[int], store: PartStore, progress_steps: bool = False,
                   on_end: Callable[[int], None] | None = None) -> None:
    """Backmap the tasks (positions in ``cg``) that have no part yet, each into its part file;
    ``on_end(task)`` after each of them."""
    for t in tasks:
        if store.done(t):
            continue
        store.retry(t)
        try:
            out = sampler.backmap(cg.subset([t]), job.samples, init.subset([t]) if init is not None else None,
                                  progress=progress_steps, first_frame=index[t])
            if not bool(torch.isfinite(out.positions).all()):
                raise FloatingPointError("non-finite coordinates")
            store.save(t, out.positions)
        except Exception as err:  # noqa: BLE001 - a failed frame is reported, the others are kept
            store.fail(t, f"{type(err).__name__}: {err}")
        if on_end is not None:
            on_end(t)


# --- local worker processes ---------------------------------------------------------------
_WORKER: dict = {}


def _start_worker(job: BackmapJob, store: PartStore, threads: int, devices: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the main process, which ends the workers
    torch.set_num_threads(threads)
    device = job.device
    if torch.device(device).type == "cuda" and devices:  # one GPU per worker, round robin
        device = f"cuda:{os.getpid() % devices}"
    sampler = job.build_sampler(device)
    cg, init, index = job.read_inputs(sampler)
    _WORKER.update(job=job, store=store, sampler=sampler, cg=cg, init=init, index=index)


def _work(task: int) -> int:
    w = _WORKER
    backmap_frames(w["sampler"], w["job"], w["cg"], w["init"], w["index"], [task], w["store"])
    return task


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ctrl-C ignored meanwhile (in the main thread; processes started now inherit it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the worker processes at once (Ctrl-C): their frames in progress are lost, finished parts are kept."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)


def _run_workers(job: BackmapJob, tasks: list[int], store: PartStore, workers: int, bar: tqdm) -> None:
    threads = max(1, torch.get_num_threads() // workers)
    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                               initargs=(job, store, threads, devices))
    try:
        with _sigint_ignored():  # the workers start with Ctrl-C ignored (no traceback of theirs)
            futures = [pool.submit(_work, t) for t in tasks]
        for future in as_completed(futures):
            future.result()
            bar.update(1)
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown()


# --- the whole job ------------------------------------------------------------------------
def backmap_trajectory(job: BackmapJob, output: str | Path, *, workers: int = 1,
                       distributed: Distributed = Distributed(), force: bool = False,
                       progress: bool = True) -> BackmapReport | None:
    """Backmap ``job`` into ``output`` (.xtc/.dcd/.trr/.pdb/.gro; residues, elements, bonds and
    box as in :mod:`gdbm.data.frame_writer`), sharing the frames among ``workers``
    processes or the ranks of ``distributed``; returns the report on the main process (None elsewhere).

    Finished frames are kept in ``<output>.parts/`` under the job's settings and the content hashes of
    its input files: a rerun of the same job continues, one whose inputs changed is refused (``force``:
    start over). Every part is checked (readable, shape, finite) before it is used; a bad one is redone.
    """
    start = time.perf_counter()
    output = check_output_path(output, WRITE_SUFFIXES)
    if workers < 1:
        raise InputError("--workers must be >= 1")
    if distributed.enabled and workers > 1:
        raise InputError("use either torchrun or --workers, not both")
    store, run = PartStore(output), os.environ.get("TORCHELASTIC_RUN_ID")
    inputs = input_digests(job.input_files()) if distributed.is_main else None
    if distributed.is_main and not force:
        store.check_same_job(job.settings(), inputs)  # a stale store is refused before any work
    if output.exists() and not force and not store.matches(job.settings(), inputs):  # else: a rerun of a partial job
        raise InputError("exists; pass --force to overwrite", output)
    sampler = job.build_sampler(distributed.device(job.device))
    cg, init, index = job.read_inputs(sampler)
    if output.suffix == ".gro" and len(cg) * job.samples != 1:
        raise InputError(f"a .gro file holds one frame, this job makes {len(cg) * job.samples}; write .xtc or .pdb",
                         output)
    store.shape = (job.samples, sampler.system.aa.n_atoms, 3)
    if distributed.is_main:
        for line in store.prepare(job.settings(), force, run, inputs):
            print(f"gdbm: {line}", file=sys.stderr)
        if progress:  # once the inputs are known good: the line every timing depends on
            print(f"gdbm: {describe_precision(job.sampler.precision, sampler.device)}", file=sys.stderr)
    else:
        store.wait_for(run)
    tasks = list(range(len(cg)))
    mine = tasks[distributed.rank::distributed.world_size]
    bar = tqdm(total=len(mine), initial=sum(store.done(t) for t in mine), desc="frames", unit="frame",
               disable=not progress or not distributed.is_main)
    if workers > 1:
        _run_workers(job, [t for t in mine if not store.done(t)], store, workers, bar)
    else:
        single = workers == 1 and not distributed.enabled
        backmap_frames(sampler, job, cg, init, index, mine, store, progress_steps=progress and single,
                       on_end=lambda t: bar.update(1))
    bar.close()
    if not distributed.is_main:
        return None
    while not all(store.ended(t) for t in tasks):  # the other ranks' frames
        time.sleep(1.0)
    return _merge(job, sampler, cg, index, tasks, store, output, time.perf_counter() - start)


def _merge(job: BackmapJob, sampler: Backmapper, cg: Frames, index: list[int], tasks: list[int], store: PartStore,
           output: Path, seconds: float) -> BackmapReport:
    """Write the finished frames in order; keep the parts when some frames failed (a rerun retries them)."""
    aa = sampler.system.aa
    finished = [t for t in tasks if store.done(t)]
    failed = {index[t]: store.error(t) or "unknown error" for t in tasks if not store.done(t)}
    if finished:
        with FrameWriter(output, aa, True,
                         n_frames=len(finished) * job.samples) as writer:
            for t in finished:
                writer.write(store.load(t), cg.boxes[[t]].float().repeat_interleave(job.samples, 0))
    if not failed:
        store.remove()
    return BackmapReport(output, len(finished) * job.samples, failed, seconds)
