"""Faults of resumable jobs and of the command line: parts keyed by their inputs' contents, every part
checked before use, output paths checked before any work, cutoffs checked against the box and memory,
and every error (Ctrl-C included) one line on stderr without a traceback."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gdbm.cli.main import main
from gdbm.data import read_frames, write_frames
from gdbm.data.trajectory import Frames
from gdbm.physics import neighbors
from gdbm.physics.energy import EnergyModel
from gdbm.sampling.backmapper import Backmapper, SamplerConfig
from gdbm.sampling.jobs import BackmapJob, PartStore, backmap_trajectory
from gdbm.sampling.refine import FrameRefiner, relax_trajectory
from gdbm.utils.errors import InputError

N_FRAMES = 3


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(two_chains: Path) -> Path:
    """A one-step model of the two chains."""
    run = two_chains / "faults_run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1", "--force"]) == 0
    return run / "checkpoint.pt"


def _cg_frames(two_chains: Path, shift: float = 0.05) -> Frames:
    one = read_frames(two_chains / "cg.gro")
    shifts = shift * torch.arange(N_FRAMES, dtype=torch.float32).view(-1, 1, 1)
    return Frames(one.positions + shifts, one.boxes.repeat(N_FRAMES, 1, 1), [f"f{i}" for i in range(N_FRAMES)],
                  one.names, one.resnames, one.resids)


@pytest.fixture
def job(trained: Path, two_chains: Path, tmp_path: Path) -> BackmapJob:
    """A job over three CG frames whose files (CG frames, checkpoint) are this test's own copies."""
    write_frames(tmp_path / "cg3.pdb", _cg_frames(two_chains))
    shutil.copy(trained, tmp_path / "checkpoint.pt")
    return BackmapJob(str(tmp_path / "checkpoint.pt"), str(two_chains / "topol.top"), str(two_chains / "PS1.map"),
                      str(tmp_path / "cg3.pdb"), SamplerConfig(n_gibbs=0, candidates=2, seed=5))


@pytest.fixture
def one_fails(monkeypatch) -> None:
    """Frame 1 fails once (so the parts are kept), every later call works."""
    real, calls = Backmapper.backmap, []

    def flaky(self, cg, samples=1, init=None, progress=True, first_frame=0):
        calls.append(first_frame)
        if first_frame == 1 and calls.count(1) == 1:
            raise RuntimeError("out of luck")
        return real(self, cg, samples, init, progress, first_frame)

    monkeypatch.setattr(Backmapper, "backmap", flaky)
    return calls


def _partial(job: BackmapJob, out: Path) -> PartStore:
    report = backmap_trajectory(job, out, progress=False)
    assert set(report.failed) == {1}
    store = PartStore(out)
    assert store.done(0) and store.done(2)
    return store


# --- 1. parts keyed by the contents of the inputs ------------------------------------------------
def test_changed_cg_frames_refuse_the_stale_parts(job: BackmapJob, two_chains: Path, tmp_path: Path, one_fails):
    out = tmp_path / "out.pdb"
    _partial(job, out)
    write_frames(job.cg, _cg_frames(two_chains, shift=0.07), force=True)  # same path, other frames
    with pytest.raises(InputError, match=r"out.pdb.parts: holds frames made from other input contents "
                                         r"\(changed since: cg .*cg3.pdb\); pass --force to start over"):
        backmap_trajectory(job, out, progress=False)
    report = backmap_trajectory(job, out, progress=False, force=True)
    assert report.frames_written == N_FRAMES and not report.failed
    fresh = backmap_trajectory(job, tmp_path / "fresh.pdb", progress=False)
    assert torch.equal(read_frames(out).positions, read_frames(tmp_path / "fresh.pdb").positions)


def test_a_retrained_checkpoint_at_the_same_path_refuses_the_stale_parts(job: BackmapJob, tmp_path: Path, one_fails,
                                                                        capsys):
    out = tmp_path / "out.pdb"
    _partial(job, out)
    state = torch.load(job.checkpoint, weights_only=False)
    state["retrained"] = True
    torch.save(state, job.checkpoint)
    assert main(["backmap", "--checkpoint", job.checkpoint, "--top", job.topology, "--map", job.mapping,
                 "--cg", job.cg, "--gibbs", "0", "--candidates", "2", "--seed", "5", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "other input contents (changed since: checkpoint" in err and "--force" in err


def test_relax_parts_are_keyed_by_the_inputs_too(two_chains: Path, tmp_path: Path, monkeypatch):
    aa = tmp_path / "aa.gro"
    shutil.copy(two_chains / "aa.gro", aa)
    out = tmp_path / "relaxed.gro"
    args = dict(aa=aa, cg=two_chains / "cg.gro", topology=two_chains / "topol.top", mapping=two_chains / "PS1.map",
                output=out, steps=1)
    real = FrameRefiner.__call__
    monkeypatch.setattr(FrameRefiner, "__call__", lambda *a: (_ for _ in ()).throw(RuntimeError("stop")))
    assert relax_trajectory(**args).failed == {0: "RuntimeError: stop"}
    aa.write_text("another title" + aa.read_text()[aa.read_text().index("\n"):])  # the same frame, new contents
    monkeypatch.setattr(FrameRefiner, "__call__", real)
    with pytest.raises(InputError, match="other input contents \\(changed since: aa"):
        relax_trajectory(**args)
    assert not relax_trajectory(**args, force=True).failed and out.exists()


@pytest.mark.parametrize("recorded", ["old", "garbage", "list"])
def test_an_old_or_unreadable_parts_folder_is_refused_cleanly(job: BackmapJob, tmp_path: Path, recorded: str):
    out = tmp_path / "out.pdb"
    store = PartStore(out)
    store.folder.mkdir()
    text = {"old": json.dumps({"settings": job.settings(), "run": None}), "garbage": "\x00\xff{not json",
            "list": "[1, 2]"}[recorded]
    (store.folder / "settings.json").write_text(text, errors="surrogateescape")
    words = {"old": "input files were not recorded (an older gdbm)", "garbage": "unreadable",
             "list": "is not the settings of a gdbm job"}[recorded]
    with pytest.raises(InputError, match=re.escape(words) + ".*; pass --force to start over"):
        backmap_trajectory(job, out, progress=False)
    assert backmap_trajectory(job, out, progress=False, force=True).frames_written == N_FRAMES


# --- 2. every part checked before use -----------------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def _reshape(path: Path) -> None:
    torch.save(torch.zeros(5, 3), path)


def _nan(path: Path) -> None:
    x = torch.load(path, weights_only=True)
    x[0, 3, 1] = float("nan")
    torch.save(x, path)


def _dict(path: Path) -> None:
    torch.save({"positions": torch.zeros(3)}, path)


@pytest.mark.parametrize("spoil", [_truncate, _reshape, _nan, _dict])
def test_a_bad_part_is_redone(job: BackmapJob, tmp_path: Path, one_fails, spoil, capsys):
    out = tmp_path / "out.pdb"
    store = _partial(job, out)
    spoil(store._path(0, ".pt"))
    report = backmap_trajectory(job, out, progress=False)
    assert report.frames_written == N_FRAMES and not report.failed
    assert "frame_0000000.pt" in capsys.readouterr().err
    backmap_trajectory(job, tmp_path / "clean.pdb", progress=False)
    written = read_frames(out).positions
    assert torch.isfinite(written).all() and torch.equal(written, read_frames(tmp_path / "clean.pdb").positions)


def test_a_part_spoiled_after_the_check_is_refused_by_name_and_nothing_is_written(tmp_path: Path):
    store = PartStore(tmp_path / "out.xtc", shape=(1, 4, 3))
    store.folder.mkdir()
    with pytest.raises(FloatingPointError, match="NaN"):
        store.save(0, torch.full((1, 4, 3), float("nan")))
    assert not store.done(0)
    store.save(0, torch.zeros(1, 4, 3))
    _nan_part = torch.zeros(1, 4, 3)
    _nan_part[0, 1, 2] = float("inf")
    torch.save(_nan_part, store._path(0, ".pt"))
    with pytest.raises(InputError, match=r"frame_0000000.pt: holds NaN or infinite coordinates"):
        store.load(0)


def test_a_frame_with_nan_coordinates_fails_and_is_never_written(job: BackmapJob, tmp_path: Path, monkeypatch):
    real = Backmapper.backmap

    def nan_in_frame_1(self, cg, samples=1, init=None, progress=True, first_frame=0):
        frames = real(self, cg, samples, init, progress, first_frame)
        if first_frame == 1:
            frames.positions[0, 0, 0] = float("nan")
        return frames

    monkeypatch.setattr(Backmapper, "backmap", nan_in_frame_1)
    out = tmp_path / "out.xtc"
    report = backmap_trajectory(job, out, progress=False)
    assert set(report.failed) == {1} and "non-finite" in report.failed[1]
    assert torch.isfinite(read_frames(out, str(Path(job.topology).parent / "aa.gro")).positions).all()


# --- 3. the output path checked before any work ---------------------------------------------
@pytest.mark.parametrize("where, words", [("somefile.txt/out.xtc", "somefile.txt is a file, not a folder"),
                                           ("out.txt", "cannot write '.txt'; expected one of .dcd, .gro, .pdb, .trr, .xtc"),
                                           ("folder.xtc", "is a folder; expected a file to write")])
def test_a_bad_output_path_is_refused_before_any_work(job: BackmapJob, tmp_path: Path, monkeypatch, where, words):
    (tmp_path / "somefile.txt").write_text("keep me")
    (tmp_path / "folder.xtc").mkdir()
    monkeypatch.setattr(BackmapJob, "build_sampler", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(InputError, match=words):
        backmap_trajectory(job, tmp_path / where, progress=False, force=True)
    with pytest.raises(InputError, match=words):
        relax_trajectory(job.cg, job.cg, job.topology, job.mapping, tmp_path / where, force=True)
    assert (tmp_path / "somefile.txt").read_text() == "keep me"


def test_backmap_into_an_existing_folder_with_force_is_one_line(job: BackmapJob, tmp_path: Path, capsys):
    (tmp_path / "out.xtc").mkdir()
    assert main(["backmap", "--checkpoint", job.checkpoint, "--top", job.topology, "--map", job.mapping,
                 "--cg", job.cg, "-o", str(tmp_path / "out.xtc"), "--force"]) == 2
    err = capsys.readouterr().err
    assert err == f"gdbm backmap: error: {tmp_path / 'out.xtc'}: is a folder; expected a file to write\n"


# --- 4. limits that protect the machine -----------------------------------------------------
@pytest.mark.parametrize("cutoff", ["50", "10"])
def test_a_cutoff_beyond_half_the_box_is_refused(sps: Path, cutoff: str, capsys):
    start = time.perf_counter()
    assert main(["energy", "--top", str(sps / "topol.top"), "--aa", str(sps / "train_t568" / "aa" / "90.gro"),
                 "--cutoff", cutoff]) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"the cutoff {cutoff} nm is more than the shortest box height" in err
    assert "nm) of the box " in err and "the cutoff is in nm, not Angstrom" in err


def test_a_singular_box_is_refused(two_chains: Path):
    from gdbm.topology import read_topology

    model = EnergyModel(read_topology(two_chains / "topol.top"))
    aa = read_frames(two_chains / "aa.gro")
    box = aa.boxes[0].double().clone()
    box[2] = box[0] + box[1]
    with pytest.raises(InputError, match="has no volume"):
        model(aa.positions[0].double(), box)


def test_a_pair_list_larger_than_the_free_memory_is_refused_before_allocation(monkeypatch):
    monkeypatch.setattr(neighbors, "_free_memory", lambda device: 2**30)
    positions = torch.rand(20000, 3, dtype=torch.float64) * 20.0
    box = torch.eye(3, dtype=torch.float64) * 20.0
    with pytest.raises(InputError, match=r"the cutoff 9 nm gives about .* atom pairs .* GiB; only 1.0 GiB of "
                                         r"memory are free"):
        neighbors.neighbor_pairs(positions, box, 9.0)
    assert len(neighbors.neighbor_pairs(positions[:200], box, 1.0)) > 0  # an ordinary search goes on


# --- 5. every error the command line meets is one line ------------------------------------------
def _decode_a_latin1_file(path: Path) -> None:
    path.read_text(encoding="utf-8")


def _validation_error() -> Exception:
    import pydantic

    class Model(pydantic.BaseModel):
        steps: int

    try:
        Model(steps="many")
    except pydantic.ValidationError as err:
        return err
    raise AssertionError


def _ours_value_error() -> None:
    BackmapJob("c", "t", "m", "g", SamplerConfig()).coarse_system()  # a ValueError raised by gdbm


def _raise(err: BaseException):
    def run(args):
        raise err
    return run


def _cases(tmp_path: Path) -> list[tuple[object, int, str]]:
    latin1 = tmp_path / "latin1.gro"
    latin1.write_bytes(b"title \xe9\n")
    out = str(tmp_path / "out.json")

    def decode(args):
        _decode_a_latin1_file(latin1)

    def ours(args):
        _ours_value_error()

    return [
        (_raise(OSError(errno.ENOSPC, "No space left on device")), 2,
         f"error: {out}: no space left on device; free some space and rerun"),
        (_raise(PermissionError(errno.EACCES, "Permission denied", "/root/x.gro")), 2,
         "error: /root/x.gro: permission denied"),
        (_raise(IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp")), 2, "error: /tmp: is a folder"),
        (_raise(NotADirectoryError(errno.ENOTDIR, "Not a directory", "a.txt/b")), 2,
         "error: a.txt/b: a part of the path is a file, not a folder"),
        (decode, 2, f"error: {latin1}: byte 0xe9 at offset 6 is not utf-8 text"),
        (_raise(MemoryError()), 1, "error: out of memory"),
        (_raise(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB")), 1,
         "error: out of memory (CUDA out of memory. Tried to allocate 20 GiB)"),
        (_raise(_validation_error()), 2, "error: Model: steps: Input should be a valid integer"),
        (ours, 2, "error: the job has no cg_map"),
        (_raise(ValueError("math domain error")), 1, "internal error: ValueError: math domain error (set "
                                                     "GDBM_TRACEBACK=1"),
        (_raise(RuntimeError("boom\nsecond line")), 1, "internal error: RuntimeError: boom second line"),
        (_raise(KeyboardInterrupt()), 130, "interrupted"),
    ]


def test_every_error_type_is_one_line_without_traceback(tmp_path: Path, monkeypatch, capsys):
    import gdbm.cli.energy as energy

    monkeypatch.delenv("GDBM_TRACEBACK", raising=False)
    for run, code, words in _cases(tmp_path):
        monkeypatch.setattr(energy, "run", run)
        assert main(["energy", "--top", "t", "--aa", "x", "-o", str(tmp_path / "out.json")]) == code, words
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"gdbm energy: {words}"), err


def test_gdbm_traceback_re_raises(monkeypatch):
    import gdbm.cli.energy as energy

    monkeypatch.setattr(energy, "run", _raise(RuntimeError("boom")))
    monkeypatch.setenv("GDBM_TRACEBACK", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["energy", "--top", "t", "--aa", "x"])


@pytest.mark.parametrize("device, words", [("foo", "--device 'foo' is not a torch device"),
                                            ("cuda:99", "--device cuda:99: ")])
def test_fit_on_a_device_that_is_not_there(two_chains: Path, tmp_path: Path, device: str, words: str, capsys):
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(tmp_path / "run"),
                 "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and not (tmp_path / "run").exists()


_SLEEPER = """
import sys, time
from pathlib import Path
import gdbm.cli.energy as energy

def run(args):
    Path(args.output + ".parts").mkdir()
    print("ready", flush=True)
    time.sleep(60)

energy.run = run
from gdbm.cli.main import main
sys.exit(main(["energy", "--top", "t", "--aa", "x", "-o", sys.argv[1]]))
"""


def _default_signals() -> None:
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


@pytest.mark.parametrize("number, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_ends_the_command_within_a_second_with_one_line(tmp_path: Path, number: int, code: int):
    """Ctrl-C (SIGINT) and a kill (SIGTERM, a batch system's time limit) end a command alike: one line,
    finished frames kept; exit 130 and 143 (128 + the signal), as a shell reports them."""
    out = tmp_path / "out.xtc"
    env = {k: v for k, v in os.environ.items() if k != "GDBM_TRACEBACK"}
    # a shell without job control starts background jobs with SIGINT ignored, and children inherit that
    # (a nohup'd CI run did): the child gets the default dispositions back, as in a terminal
    proc = subprocess.Popen([sys.executable, "-c", _SLEEPER, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_signals)
    assert proc.stdout.readline() == "ready\n"
    sent = time.monotonic()
    proc.send_signal(number)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10.0  # the 1 s goal is measured by scripts/probe_bad_inputs.py; CI cores are loaded
    assert proc.returncode == code
    assert err == f"gdbm energy: interrupted; finished frames are kept in {out}.parts\n"


def test_backmap_unknown_device_is_one_line(tmp_path: Path, capsys):
    code = main(["backmap", "--checkpoint", "sps-voxel", "--top", "t.top", "--map", "m.map", "--cg", "cg.xtc",
                 "--device", "foo", "-o", str(tmp_path / "x.xtc")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device 'foo' is not a torch device" in err[0]
    assert not (tmp_path / "x.xtc").exists()


def test_a_mapping_per_molecule_type_is_keyed_by_each_file_s_contents(tmp_path: Path):
    from gdbm.sampling.jobs import file_digest

    a, b = tmp_path / "A.yaml", tmp_path / "B.yaml"
    a.write_text("a\n")
    b.write_text("b\n")
    before = file_digest(f"{a},{b}")
    assert before == f"{file_digest(a)}+{file_digest(b)}" and not before.startswith("name:")
    b.write_text("b changed\n")
    assert file_digest(f"{a}, {b}") != before
