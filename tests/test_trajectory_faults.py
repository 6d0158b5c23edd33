"""Bad coordinate files (issue 20): each ends in one InputError naming the file (and line or frame),
never a traceback, an "Exception ignored" message, a silent extra frame or a non-finite write.

Corrupted copies of the shipped cumene CG set are made under ``tmp_path``; truncation offsets are
drawn by ``hypothesis`` (fixed ones run too, so a failure is reproducible by eye).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdbm
from gdbm.data.frame_writer import AtomRecords, FrameWriter, write_frames
from gdbm.data.trajectory import Frames, read_frames
from gdbm.utils.errors import InputError

CUMENE = Path(gdbm.__file__).parent / "resources" / "examples" / "cumene"
FORMATS = (".xtc", ".trr", ".dcd")


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory) -> dict[str, Path]:
    """The cumene CG trajectory (40 frames, 192 beads) as .xtc, .trr and .dcd, plus its .gro."""
    import MDAnalysis as mda

    folder = tmp_path_factory.mktemp("cumene")
    (folder / "cg.gro").write_bytes((CUMENE / "cg.gro").read_bytes())
    (folder / "cg.xtc").write_bytes((CUMENE / "cg.xtc").read_bytes())
    u = mda.Universe(str(folder / "cg.gro"), str(folder / "cg.xtc"))
    for suffix in (".trr", ".dcd"):
        with mda.Writer(str(folder / f"cg{suffix}"), n_atoms=u.atoms.n_atoms) as writer:
            for _ in u.trajectory:
                writer.write(u.atoms)
    return {suffix: folder / f"cg{suffix}" for suffix in (".gro", *FORMATS)}


@pytest.fixture(scope="module")
def originals(trajectories) -> dict[str, Frames]:
    return {s: read_frames(trajectories[s], trajectories[".gro"]) for s in FORMATS}


def _cut(source: Path, folder: Path, offset: int) -> Path:
    out = folder / f"cut_{offset}{source.suffix}"
    out.write_bytes(source.read_bytes()[:offset])
    return out


def _assert_cut_is_clean(path: Path, structure: Path, original: Frames) -> None:
    """Either an InputError naming the file, or only complete frames, identical to the original's."""
    try:
        frames = read_frames(path, structure)
    except InputError as err:
        assert err.path == str(path) and "\n" not in str(err)
        return
    k = len(frames)
    assert 0 < k <= len(original)
    assert torch.equal(frames.positions, original.positions[:k]) and torch.equal(frames.boxes, original.boxes[:k])


# ---------------------------------------------------------------------------- 1. truncated trajectories


@pytest.mark.parametrize("suffix", FORMATS)
def test_truncated_trajectory_has_no_extra_zero_frame(trajectories, originals, tmp_path, suffix):
    source = trajectories[suffix]
    size = source.stat().st_size
    cut = _cut(source, tmp_path, int(size * 0.7) + 5)  # not on a frame boundary
    with pytest.raises(InputError, match=r"truncated: frame \d+ ") as err:
        read_frames(cut, trajectories[".gro"])
    assert err.value.path == str(cut)
    for offset in (size - 1, size // 2 + 7, 1000):
        _assert_cut_is_clean(_cut(source, tmp_path, offset), trajectories[".gro"], originals[suffix])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(FORMATS), fraction=st.floats(0.0, 1.0))
def test_truncated_at_random_offsets(trajectories, originals, tmp_path, suffix, fraction):
    source = trajectories[suffix]
    offset = max(1, int(source.stat().st_size * fraction))
    _assert_cut_is_clean(_cut(source, tmp_path, offset), trajectories[".gro"], originals[suffix])


# ---------------------------------------------------------------------------- 2. garbage bytes


def _unraisable(monkeypatch) -> list:
    """Collect what ``__del__`` methods raise (Python prints it as "Exception ignored in ...")."""
    seen: list = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook_args: seen.append(hook_args.exc_value))
    return seen


@pytest.mark.parametrize("suffix", [*FORMATS, ".gro", ".pdb"])
def test_garbage_is_one_error_and_nothing_printed_later(trajectories, tmp_path, monkeypatch, suffix):
    seen = _unraisable(monkeypatch)
    bad = tmp_path / f"garbage{suffix}"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as err:
        read_frames(bad, trajectories[".gro"])
    assert err.value.path == str(bad) and "\n" not in str(err.value)
    del err
    gc.collect()
    assert seen == []


def _first_frame_bytes(path: Path) -> int:
    """Where a .xtc's second frame starts; 120 bytes (inside the header or first frame) otherwise."""
    from MDAnalysis.lib.formats.libmdaxdr import XTCFile

    if path.suffix != ".xtc":
        return 120
    with XTCFile(str(path)) as fh:
        return int(fh.offsets[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("suffix", FORMATS)
def test_valid_start_then_garbage(trajectories, tmp_path, monkeypatch, suffix, seed):
    seen = _unraisable(monkeypatch)
    head = trajectories[suffix].read_bytes()[:_first_frame_bytes(trajectories[suffix])]
    bad = tmp_path / f"head{suffix}"
    bad.write_bytes(head + np.random.default_rng(seed).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as err:
        read_frames(bad, trajectories[".gro"])
    assert err.value.path == str(bad) and "\n" not in str(err.value)
    del err
    gc.collect()
    assert seen == []


def test_xtc_byte_count_that_would_overrun_the_decoder(trajectories, tmp_path):
    """A corrupt byte count in a frame header made MDAnalysis's C decoder write past its buffer
    (glibc: "corrupted size vs. prev_size", then an abort); it is refused before decoding."""
    data = bytearray(trajectories[".xtc"].read_bytes())
    second = _first_frame_bytes(trajectories[".xtc"])
    data[second + 88:second + 92] = (10**6).to_bytes(4, "big")  # frame 2's byte count
    bad = tmp_path / "count.xtc"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"corrupt: frame 2 \(at byte \d+\) .* 1000000 bytes of coordinates"):
        read_frames(bad, trajectories[".gro"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_xtc_with_flipped_coordinate_bytes(trajectories, tmp_path, seed):
    """Bytes flipped inside the compressed coordinates (headers intact) crashed MDAnalysis's decoder."""
    from MDAnalysis.lib.formats.libmdaxdr import XTCFile

    pytest.importorskip("openmm")
    with XTCFile(str(trajectories[".xtc"])) as fh:
        starts = [int(o) for o in fh.offsets]
    data = bytearray(trajectories[".xtc"].read_bytes())
    rng = np.random.default_rng(seed)
    for start, end in zip(starts, [*starts[1:], len(data)]):
        for i in rng.integers(start + 92, end, 3):
            data[int(i)] = int(rng.integers(0, 256))
    bad = tmp_path / "flipped.xtc"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt: the compressed coordinates of a frame cannot be decoded"):
        read_frames(bad, trajectories[".gro"])


# ---------------------------------------------------------------------------- 3. bytes that are not UTF-8


def _gro_lines() -> list[bytes]:
    return (CUMENE / "cg.gro").read_bytes().split(b"\n")


def test_latin1_title_is_read(tmp_path):
    lines = _gro_lines()
    lines[0] += b" caf\xe9"
    path = tmp_path / "title.gro"
    path.write_bytes(b"\n".join(lines))
    frames, clean = read_frames(path), read_frames(CUMENE / "cg.gro")
    assert torch.equal(frames.positions, clean.positions) and frames.names == clean.names


def test_latin1_in_an_atom_line_names_the_line(tmp_path):
    lines = _gro_lines()
    lines[5] = lines[5][:10] + b"\xe9" + lines[5][11:]
    path = tmp_path / "atom.gro"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError, match="byte 0xe9 at column 11 is not UTF-8 text") as err:
        read_frames(path)
    assert err.value.line == 6 and err.value.path == str(path)


def test_latin1_in_pdb_remark_is_read_and_in_atom_record_is_an_error(tmp_path):
    text = write_frames(tmp_path / "ok.pdb", read_frames(CUMENE / "cg.gro")).read_bytes()
    remark = tmp_path / "remark.pdb"
    remark.write_bytes(b"REMARK     made in M\xfcnster\n" + text)
    assert read_frames(remark).n_particles == 192
    lines = text.split(b"\n")
    k = next(i for i, line in enumerate(lines) if line.startswith(b"ATOM"))
    lines[k] = lines[k][:13] + b"\xe9" + lines[k][14:]
    atom = tmp_path / "atom.pdb"
    atom.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError, match="not UTF-8 text") as err:
        read_frames(atom)
    assert err.value.line == k + 1


# ---------------------------------------------------------------------------- 4. absurd values, wrong counts


def test_absurd_coordinate_in_gro_names_the_frame(tmp_path):
    lines = (CUMENE / "cg.gro").read_text().splitlines()
    lines[4] = lines[4][:20] + "  1.0e+9" + lines[4][28:]
    path = tmp_path / "huge.gro"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"coordinate 1e\+09 nm for particle 3 in frame huge.gro; expected \|x\| <= "):
        read_frames(path)


def test_absurd_coordinate_in_xtc_names_the_frame(trajectories, tmp_path):
    import MDAnalysis as mda

    u = mda.Universe(str(trajectories[".gro"]), str(trajectories[".xtc"]))
    path = tmp_path / "huge.xtc"
    with mda.Writer(str(path), n_atoms=u.atoms.n_atoms) as writer:
        for ts in u.trajectory[:3]:
            if ts.frame == 2:
                u.atoms.positions[7] = [1e7, 0.0, 0.0]  # Angstrom: 1e6 nm
                ts.positions[7] = [1e7, 0.0, 0.0]
            writer.write(u.atoms)
    with pytest.raises(InputError, match=r"particle 8 in frame huge.xtc#2"):
        read_frames(path, trajectories[".gro"])


def test_header_count_one_short_says_what_was_found(tmp_path):
    lines = (CUMENE / "cg.gro").read_text().splitlines()
    lines[1] = "  191"
    path = tmp_path / "short.gro"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        read_frames(path)
    assert "more than one frame" not in str(err.value) and err.value.line == 2
    assert "header says 191 atoms but the file has 192 atom lines before its box line" in str(err.value)


# ---------------------------------------------------------------------------- 5. boxes


def _gro_with_box(tmp_path: Path, box: str) -> Path:
    lines = (CUMENE / "cg.gro").read_text().splitlines()
    lines[-1] = box
    path = tmp_path / "box.gro"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("box", ["   2.0 2.0 0.0", "   2.0 2.0 2.0 0 0 0 0 0 0", "   2.0 0.0 2.0 0 0 2.0 0 0 0",
                                 "   2.0 2.0 0.0 0 0 0 0 2.0 2.0", "   2.0 nan 2.0"])
def test_singular_box_names_file_and_frame(tmp_path, box):
    path = _gro_with_box(tmp_path, box)
    if box.split() == ["2.0", "2.0", "2.0", "0", "0", "0", "0", "0", "0"]:
        assert torch.allclose(read_frames(path).boxes[0], 2.0 * torch.eye(3))  # a regular one, for contrast
        return
    with pytest.raises(InputError, match="(box of frame box.gro is singular|box line)") as err:
        read_frames(path)
    assert err.value.path == str(path)


def test_zero_box_is_no_box_unless_the_caller_needs_one(tmp_path):
    path = _gro_with_box(tmp_path, "   0.0 0.0 0.0")
    assert torch.equal(read_frames(path).boxes, torch.zeros(1, 3, 3))  # a non-periodic file
    with pytest.raises(InputError, match="frame box.gro has no box .all zero.; expected a periodic box"):
        read_frames(path, allow_no_box=False)


def test_frames_without_box_among_frames_with_one(tmp_path, cumene_frames):
    frames = cumene_frames
    frames.boxes[1] = 0.0
    path = write_frames(tmp_path / "mixed.pdb", frames)
    with pytest.raises(InputError, match=r"frame mixed.pdb#1 has no box .all zero. while other frames have one"):
        read_frames(path)
    assert torch.equal(read_frames(path, allow_no_box=True).boxes[1], torch.zeros(3, 3))


# ---------------------------------------------------------------------------- 6. the writer


@pytest.fixture
def cumene_frames(originals) -> Frames:
    """The first three frames of the cumene CG trajectory (a fresh copy, free to edit)."""
    frames = originals[".xtc"].subset([0, 1, 2])
    return Frames(frames.positions.clone(), frames.boxes.clone(), frames.labels, frames.names, frames.resnames,
                  frames.resids)


@pytest.mark.parametrize("suffix", [".xtc", ".pdb"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e9])
def test_write_frames_refuses_bad_coordinates(tmp_path, cumene_frames, suffix, value):
    frames = cumene_frames
    frames.positions[2, 5, 1] = value
    path = tmp_path / f"out{suffix}"
    with pytest.raises(InputError, match="refusing to write coordinate .* for particle 6 in frame 2"):
        write_frames(path, frames)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_frame_writer_refuses_before_writing(tmp_path, cumene_frames):
    frames = cumene_frames
    path = tmp_path / "stream.xtc"
    bad = frames.positions.clone()
    bad[1, 0, 0] = float("nan")
    with pytest.raises(InputError, match="refusing to write coordinate nan for particle 1 in frame 4"):
        with FrameWriter(path, AtomRecords.from_frames(frames)) as writer:
            writer.write(frames.positions, frames.boxes)
            writer.write(bad, frames.boxes)
    assert not path.exists()
    with pytest.raises(InputError, match=r"refusing to write positions of shape \(3, 191, 3\)"):
        with FrameWriter(path, AtomRecords.from_frames(frames)) as writer:
            writer.write(frames.positions[:, 1:], frames.boxes)
    boxes = frames.boxes.clone()
    boxes[0, 0, 0] = float("inf")
    with pytest.raises(InputError, match="refusing to write box entry inf in frame 0"):
        write_frames(path, Frames(frames.positions, boxes, frames.labels, frames.names, frames.resnames,
                                  frames.resids))
    assert not path.exists()
