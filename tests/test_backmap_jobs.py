"""Trajectory backmapping shared among processes: same output however the frames are shared,
failed frames reported and retried, finished frames never redone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gdbm.sampling.jobs import BackmapJob, PartStore, backmap_trajectory
from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.utils.errors import InputError
from gdbm.sampling.backmapper import Backmapper, SamplerConfig

N_FRAMES = 3


@pytest.fixture(scope="module")
def job(two_chains: Path) -> BackmapJob:
    """A one-step model of the two chains and a CG trajectory of three (shifted) frames."""
    run = two_chains / "jobs_run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1", "--force"]) == 0
    one = read_frames(two_chains / "cg.gro")
    shifts = 0.05 * torch.arange(N_FRAMES, dtype=torch.float32).view(-1, 1, 1)
    cg = Frames(one.positions + shifts, one.boxes.repeat(N_FRAMES, 1, 1), [f"f{i}" for i in range(N_FRAMES)],
                one.names, one.resnames, one.resids)
    write_frames(two_chains / "cg3.pdb", cg, force=True)
    return BackmapJob(str(run / "checkpoint.pt"), str(two_chains / "topol.top"), str(two_chains / "PS1.map"),
                      str(two_chains / "cg3.pdb"), SamplerConfig(n_gibbs=0, candidates=2, seed=5))


def positions(path: Path, two_chains: Path) -> torch.Tensor:
    return read_frames(path, two_chains / "aa.gro").positions


def test_workers_and_pieces_give_the_trajectory_of_one_process(job: BackmapJob, two_chains: Path, tmp_path: Path):
    one = backmap_trajectory(job, tmp_path / "one.pdb", progress=False)
    assert one.frames_written == N_FRAMES and not one.failed
    assert not PartStore(tmp_path / "one.pdb").folder.exists()  # parts removed once the output is written
    two = backmap_trajectory(job, tmp_path / "two.pdb", workers=2, progress=False)
    assert two.frames_written == N_FRAMES
    reference = positions(tmp_path / "one.pdb", two_chains)
    assert torch.equal(positions(tmp_path / "two.pdb", two_chains), reference)
    piece = backmap_trajectory(BackmapJob(**{**job.__dict__, "frames": "1:3"}), tmp_path / "piece.pdb",
                               progress=False)
    assert piece.frames_written == 2
    assert torch.equal(positions(tmp_path / "piece.pdb", two_chains), reference[1:])
    assert not torch.equal(reference[0], reference[1])


def test_a_failed_frame_is_reported_the_others_kept_and_a_rerun_retries_it_alone(
        job: BackmapJob, two_chains: Path, tmp_path: Path, monkeypatch):
    real = Backmapper.backmap
    calls: list[int] = []

    def flaky(self, cg, samples=1, init=None, progress=True, first_frame=0):
        calls.append(first_frame)
        if first_frame == 1 and len(calls) <= N_FRAMES:
            raise RuntimeError("out of luck")
        return real(self, cg, samples, init, progress, first_frame)

    monkeypatch.setattr(Backmapper, "backmap", flaky)
    out = tmp_path / "out.pdb"
    report = backmap_trajectory(job, out, progress=False)
    assert report.failed == {1: "RuntimeError: out of luck"} and report.frames_written == 2
    assert len(read_frames(out)) == 2
    store = PartStore(out)
    assert store.done(0) and store.done(2) and store.error(1) == "RuntimeError: out of luck"
    again = backmap_trajectory(job, out, progress=False)  # the same job continues without --force
    assert calls == [0, 1, 2, 1] and not again.failed and again.frames_written == N_FRAMES
    assert not store.folder.exists()
    reference = backmap_trajectory(job, tmp_path / "clean.pdb", progress=False)
    assert reference.frames_written == N_FRAMES
    assert torch.equal(positions(out, two_chains), positions(tmp_path / "clean.pdb", two_chains))


def test_parts_of_another_job_are_not_mixed_in(job: BackmapJob, tmp_path: Path, monkeypatch):
    out = tmp_path / "out.pdb"
    monkeypatch.setattr(Backmapper, "backmap", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("stop")))
    assert backmap_trajectory(job, out, progress=False).frames_written == 0
    other = BackmapJob(**{**job.__dict__, "sampler": SamplerConfig(n_gibbs=0, candidates=3)})
    with pytest.raises(InputError, match="job with other settings"):
        backmap_trajectory(other, out, progress=False)


def test_backmap_under_torchrun_writes_the_one_process_trajectory(job: BackmapJob, two_chains: Path,
                                                                   tmp_path: Path):
    args = ["backmap", "--checkpoint", job.checkpoint, "--top", job.topology, "--map", job.mapping, "--cg", job.cg,
            "--gibbs", "0", "--candidates", "2", "--seed", "5"]
    assert main([*args, "-o", str(tmp_path / "one.pdb")]) == 0
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "gdbm", *args, "-o", str(tmp_path / "ranks.pdb")], cwd=tmp_path, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("wrote 3 frames") == 1
    assert torch.equal(positions(tmp_path / "ranks.pdb", two_chains), positions(tmp_path / "one.pdb", two_chains))


def test_a_job_with_candidates_per_pass_resumes(job: BackmapJob, tmp_path: Path):
    """``settings.json`` keeps tuples as lists; the rerun of the same job must still match its parts."""
    per_pass = BackmapJob(**{**job.__dict__, "sampler": SamplerConfig(n_gibbs=1, candidates=2,
                                                                       pass_candidates=(2, 3))})
    assert "last_candidates" not in per_pass.settings()["sampler"]  # one number for every pass: as older jobs wrote it
    default = BackmapJob(**{**job.__dict__, "sampler": SamplerConfig()})
    assert default.settings()["sampler"]["last_candidates"] == 16
    store = PartStore(tmp_path / "out.pdb")
    store.prepare(per_pass.settings(), force=False, run=None)
    assert store.matches(per_pass.settings())
    store.check_same_job(per_pass.settings(), None)  # the same job: no error
    with pytest.raises(InputError, match="job with other settings"):
        store.check_same_job(job.settings(), None)
