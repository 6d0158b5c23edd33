"""Backmapping a CG trajectory into one AA trajectory, the frames shared among processes.

Each CG frame is one task. Its AA frames go to ``<output>.parts/frame_<i>.pt`` as soon as it is
done; a frame that fails leaves ``frame_<i>.error`` instead, and the other frames go on. A rerun
with the same settings skips finished frames and retries failed ones, so a crash loses at most
the frames in progress. When every task has ended, one process writes the output in frame
order, streaming from the parts (memory does not grow with the trajectory), and removes them.

Tasks are shared by ``workers`` local processes (``gdbm backmap --workers N``) or by the ranks
of ``torchrun`` (frames ``rank::world_size``; the output folder must then be on a file system
every rank sees). Each frame's random stream depends only on the seed and the frame's index in
the CG file (:meth:`gdbm.sampling.backmapper.Backmapper.backmap`), so the output does not depend on how the
frames were shared.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from gdbm.utils.atomic_files import atomic_path, write_text
from gdbm.data.trajectory import Frames, FrameWriter, check_particle_count, frame_range, read_frames
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
        cg = read_frames(self.cg, self.cg_struct)
        if self.cg_map:
            cg = self._coarse_grained(cg, sampler)
        check_particle_count(cg, sampler.system.mapping.n_beads, f"the mapping {self.mapping}",
                             self.cg_map or self.cg)
        window = frame_range(self.frames, len(cg)) if self.frames else slice(None)
        index = list(range(len(cg)))[window]
        init = None
        if self.init:
            init = read_frames(self.init, self.init_struct)
            check_particle_count(init, sampler.system.aa.n_atoms, f"the topology {self.topology}", self.init)
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

        check_particle_count(aa, sampler.system.aa.n_atoms, f"the topology {self.topology}", self.cg)
        return coarse_grain(aa, self.coarse_system())

    def settings(self) -> dict:
        """The job as JSON-able data: parts are reused only by a job with the same settings."""
        out = asdict(self)
        out["sampler"] = self.sampler.model_dump()
        out["ordering"] = self.ordering.model_dump(mode="json") if self.ordering else None
        for key in ("cg_map", "stereo_from"):  # unset: the settings of older jobs, so their parts and stamps still match
            if out[key] is None:
                del out[key]
        return out


class PartStore:
    """``<output>.parts/``: one file per finished frame (``frame_<i>.pt``) or failed one (``frame_<i>.error``)."""

    SETTINGS = "settings.json"

    def __init__(self, output: str | Path):
        output = Path(output)
        self.folder = output.with_name(output.name + ".parts")

    def matches(self, settings: dict) -> bool:
        """Whether the folder holds parts of a job with these settings."""
        path = self.folder / self.SETTINGS
        return path.exists() and json.loads(path.read_text())["settings"] == settings

    def prepare(self, settings: dict, force: bool, run: str | None) -> None:
        """Create the folder for a job, or check that the parts in it belong to the same job."""
        path = self.folder / self.SETTINGS
        if force and self.folder.exists():
            shutil.rmtree(self.folder)
        if path.exists():
            if json.loads(path.read_text())["settings"] != settings:
                raise InputError("holds frames of a job with other settings; pass --force to start over",
                                 self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({"settings": settings, "run": run}, indent=1) + "\n")

    def wait_for(self, run: str | None, timeout: float = 600.0) -> None:
        """Wait until the main process has prepared the folder for run ``run``."""
        path, start = self.folder / self.SETTINGS, time.monotonic()
        while not (path.exists() and json.loads(path.read_text()).get("run") == run):
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{self.folder} was not prepared within {timeout:.0f} s")
            time.sleep(0.5)

    def _path(self, frame: int, suffix: str) -> Path:
        return self.folder / f"frame_{frame:07d}{suffix}"

    def done(self, frame: int) -> bool:
        return self._path(frame, ".pt").exists()

    def error(self, frame: int) -> str | None:
        path = self._path(frame, ".error")
        return path.read_text() if path.exists() else None

    def ended(self, frame: int) -> bool:
        return self.done(frame) or self.error(frame) is not None

    def save(self, frame: int, positions: torch.Tensor) -> None:
        self._path(frame, ".error").unlink(missing_ok=True)
        with atomic_path(self._path(frame, ".pt")) as tmp:
            torch.save(positions.detach().cpu().clone(), tmp)

    def fail(self, frame: int, message: str) -> None:
        write_text(self._path(frame, ".error"), message)

    def retry(self, frame: int) -> None:
        self._path(frame, ".error").unlink(missing_ok=True)

    def load(self, frame: int) -> torch.Tensor:
        return torch.load(self._path(frame, ".pt"), weights_only=True)

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


def _run_workers(job: BackmapJob, tasks: list[int], store: PartStore, workers: int, bar: tqdm) -> None:
    threads = max(1, torch.get_num_threads() // workers)
    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(job, store, threads, devices)) as pool:
        for future in as_completed([pool.submit(_work, t) for t in tasks]):
            future.result()
            bar.update(1)


# --- the whole job ------------------------------------------------------------------------
def backmap_trajectory(job: BackmapJob, output: str | Path, *, workers: int = 1,
                       distributed: Distributed = Distributed(), force: bool = False,
                       progress: bool = True) -> BackmapReport | None:
    """Backmap ``job`` into ``output`` (.xtc/.pdb/.gro), sharing the frames among ``workers``
    processes or the ranks of ``distributed``; returns the report on the main process (None elsewhere)."""
    start = time.perf_counter()
    output = Path(output)
    if workers < 1:
        raise InputError("--workers must be >= 1")
    if distributed.enabled and workers > 1:
        raise InputError("use either torchrun or --workers, not both")
    store, run = PartStore(output), os.environ.get("TORCHELASTIC_RUN_ID")
    if output.exists() and not force and not store.matches(job.settings()):  # else: a rerun of a partial job
        raise InputError("exists; pass --force to overwrite", output)
    sampler = job.build_sampler(distributed.device(job.device))
    cg, init, index = job.read_inputs(sampler)
    if output.suffix == ".gro" and len(cg) * job.samples != 1:
        raise InputError(f"a .gro file holds one frame, this job makes {len(cg) * job.samples}; write .xtc or .pdb",
                         output)
    if distributed.is_main:
        store.prepare(job.settings(), force, run)
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
        with FrameWriter(output, list(aa.names), list(aa.resnames), aa.resids.tolist(), True,
                         n_frames=len(finished) * job.samples) as writer:
            for t in finished:
                writer.write(store.load(t), cg.boxes[[t]].float().repeat_interleave(job.samples, 0))
    if not failed:
        store.remove()
    return BackmapReport(output, len(finished) * job.samples, failed, seconds)
