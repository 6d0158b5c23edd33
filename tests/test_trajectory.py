"""Frame I/O: .gro/.xtc/.pdb/folders, round trips with triclinic boxes, and named errors."""

from __future__ import annotations

import pytest
import torch

from gdbm.data.frame_writer import write_frames
from gdbm.data.trajectory import Frames, check_particle_count, read_frames, replicate
from gdbm.utils.errors import InputError


def synthetic(n_frames: int = 3, n: int = 12) -> Frames:
    """Frames on a 0.001 nm grid in strongly sheared triclinic boxes, one box per frame."""
    torch.manual_seed(0)
    positions = torch.round(torch.rand(n_frames, n, 3) * 3000) / 1000
    boxes = torch.zeros(n_frames, 3, 3)
    for f in range(n_frames):
        boxes[f] = torch.tensor([[4.0 + f, 0.0, 0.0], [2.5 - 0.7 * f, 3.1, 0.0], [-1.2, 0.8 + 0.1 * f, 2.9]])
    names = [("C" if k % 3 == 0 else "H") + str(k + 1) for k in range(n)]
    resids = [1 + k // 6 for k in range(n)]
    return Frames(positions, boxes, [f"f{f}" for f in range(n_frames)], names, ["MOL"] * n, resids)


# ---------------------------------------------------------------------------- reading the shared data


def test_read_gro_folder_in_natural_order(sps):
    frames = read_frames(sps / "train_t568" / "aa")
    assert len(frames) == 13 and frames.positions.shape == (13, 5832, 3)
    assert frames.positions.dtype == torch.float32 and frames.boxes.shape == (13, 3, 3)
    assert frames.labels[:3] == ["90.gro", "135.gro", "168.gro"] and frames.labels[-1] == "688.gro"
    assert frames.names[:2] == ["H1", "C2"] and frames.resnames[0] == "PS1" and frames.resids[162] == 2
    box_line = (sps / "train_t568" / "aa" / "90.gro").read_text().splitlines()[-1].split()
    a, b, c, bx = (float(box_line[k]) for k in (0, 1, 2, 5))
    assert torch.allclose(frames.boxes[0], torch.tensor([[a, 0, 0], [bx, b, 0], [0, 0, c]]))
    assert frames.boxes[0, 1, 0] != 0  # triclinic


def test_read_xtc_needs_a_structure(sps):
    t = sps / "test_t568"
    frames = read_frames(t / "aa.xtc", t / "aa.gro")
    assert len(frames) == 71 and frames.n_particles == 5832 and frames.labels[1] == "aa.xtc#1"
    assert bool((frames.boxes[:, 1, 0] != 0).any())
    assert len(frames.subset(slice(0, 5))) == 5 and frames.subset([3]).labels == ["aa.xtc#3"]
    with pytest.raises(InputError, match="carries no names"):
        read_frames(t / "aa.xtc")
    with pytest.raises(InputError, match="holds 720 particles per frame but the topology has 5832"):
        check_particle_count(read_frames(t / "cg.gro"), 5832, "the topology", t / "cg.gro")


# ---------------------------------------------------------------------------- round trips


def test_pdb_round_trip_keeps_every_box(tmp_path):
    frames = synthetic()
    back = read_frames(write_frames(tmp_path / "x.pdb", frames))
    assert len(back) == 3 and back.names == frames.names and back.resids == frames.resids
    assert torch.allclose(back.positions, frames.positions, atol=1e-4)  # %8.3f Angstrom
    assert torch.allclose(back.boxes, frames.boxes, atol=2e-3)  # lengths %9.3f A, angles %7.2f deg
    assert bool((back.boxes.abs().sum((1, 2)) > 0).all())


def test_pdb_round_trip_of_a_frame_without_box(tmp_path):
    frames = synthetic()
    frames.boxes[1] = 0.0
    back = read_frames(write_frames(tmp_path / "x.pdb", frames), allow_no_box=True)
    assert torch.equal(back.boxes[1], torch.zeros(3, 3))
    assert torch.allclose(back.boxes[[0, 2]], frames.boxes[[0, 2]], atol=2e-3)


def test_pdb_round_trip_of_shared_frames(sps, tmp_path):
    t = sps / "test_t568"
    frames = read_frames(t / "cg.xtc", t / "cg.gro").subset([0, 1, 2, 3])
    back = read_frames(write_frames(tmp_path / "cg.pdb", frames))
    assert torch.allclose(back.boxes, frames.boxes, atol=2e-3)
    assert torch.allclose(back.positions, frames.positions, atol=1e-4)


def test_xtc_round_trip(tmp_path):
    frames = synthetic()
    write_frames(tmp_path / "x.gro", frames.subset([0]))
    back = read_frames(write_frames(tmp_path / "x.xtc", frames), tmp_path / "x.gro")
    assert torch.allclose(back.positions, frames.positions, atol=1e-3)  # xtc precision
    assert torch.allclose(back.boxes, frames.boxes, atol=1e-5)


def test_gro_round_trip(tmp_path):
    frames = synthetic().subset([1])
    back = read_frames(write_frames(tmp_path / "x.gro", frames))
    assert back.names == frames.names and back.resnames == frames.resnames
    assert torch.allclose(back.positions, frames.positions, atol=1e-6)
    assert torch.allclose(back.boxes, frames.boxes, atol=1e-5)


def test_gro_is_one_frame(tmp_path):
    with pytest.raises(InputError, match="a .gro file holds one frame, got 3"):
        write_frames(tmp_path / "x.gro", synthetic())
    one = write_frames(tmp_path / "one.gro", synthetic().subset([0])).read_text()
    two = tmp_path / "two.gro"
    two.write_text(one + one)
    n_lines = len(one.splitlines())
    with pytest.raises(InputError) as err:
        read_frames(two)
    assert "more than one frame" in str(err.value) and err.value.line == n_lines + 1


# ---------------------------------------------------------------------------- errors


@pytest.fixture
def gro_text(tmp_path) -> list[str]:
    return write_frames(tmp_path / "ok.gro", synthetic().subset([0])).read_text().splitlines()


def test_malformed_gro_line(tmp_path, gro_text):
    gro_text[5] = gro_text[5][:22] + "x.y" + gro_text[5][25:]
    bad = tmp_path / "bad.gro"
    bad.write_text("\n".join(gro_text) + "\n")
    with pytest.raises(InputError) as err:
        read_frames(bad)
    assert err.value.line == 6 and err.value.path == str(bad) and "x y z in %8.3f columns" in str(err.value)


@pytest.mark.parametrize("line, edit, message", [
    (1, "twelve", "expected the number of atoms"),
    (1, "   40", "header says 40 atoms"),
    (-1, "1.0 2.0", "expected a box line of 3 or 9 numbers"),
])
def test_malformed_gro_header_and_box(tmp_path, gro_text, line, edit, message):
    gro_text[line] = edit
    bad = tmp_path / "bad.gro"
    bad.write_text("\n".join(gro_text) + "\n")
    with pytest.raises(InputError, match=message):
        read_frames(bad)


def test_nan_coordinates(tmp_path, gro_text):
    gro_text[4] = gro_text[4][:28] + "     nan" + gro_text[4][36:]
    bad = tmp_path / "nan.gro"
    bad.write_text("\n".join(gro_text) + "\n")
    with pytest.raises(InputError, match="non-finite coordinate .* particle 3 in frame nan.gro"):
        read_frames(bad)


def test_no_overwrite_without_force(tmp_path):
    frames = synthetic()
    path = write_frames(tmp_path / "x.xtc", frames)
    before = path.read_bytes()
    with pytest.raises(InputError, match="exists; pass --force"):
        write_frames(path, frames.subset([0]))
    assert path.read_bytes() == before
    write_frames(path, frames.subset([0]), force=True)
    assert path.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.xtc"]  # no temporary files left


def test_unreadable_inputs(tmp_path, gro_text):
    with pytest.raises(InputError, match="no such file"):
        read_frames(tmp_path / "missing.gro")
    with pytest.raises(InputError, match="unknown coordinate format '.txt'"):
        (tmp_path / "x.txt").write_text("1\n")
        read_frames(tmp_path / "x.txt")
    with pytest.raises(InputError, match="cannot write '.txt'"):
        write_frames(tmp_path / "x.txt", synthetic())
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(InputError, match="expected a folder of .gro files"):
        read_frames(folder)
    (folder / "1.gro").write_text("\n".join(gro_text) + "\n")
    write_frames(folder / "2.gro", synthetic(1, 6))
    with pytest.raises(InputError, match=r"different particle counts: \[6, 12\]"):
        read_frames(folder)


def test_replicated_box_keeps_every_distance_of_the_original(sps):
    """Each image is the original shifted by a box vector; neighbours across the new boundary see the
    next image exactly where the old box put the periodic copy."""
    from gdbm.utils.pbc import minimum_image

    cg = read_frames(sps / "test_t568" / "cg.xtc", sps / "test_t568" / "cg.gro").subset([0])
    big = replicate(cg, (2, 1, 2))
    n = cg.n_particles
    assert big.positions.shape == (1, 4 * n, 3) and len(big.names) == 4 * n
    assert torch.allclose(big.boxes[0], cg.boxes[0] * torch.tensor([[2.0], [1.0], [2.0]]))
    assert torch.allclose(big.positions[0, n:2 * n] - big.positions[0, :n], cg.boxes[0, 2].expand(n, 3))
    assert big.resids[n] == max(cg.resids) + 1
    small = minimum_image(cg.positions[0, :1] - cg.positions[0], cg.boxes[0]).norm(dim=-1)  # [n]
    large = minimum_image(big.positions[0, :1] - big.positions[0, :n], big.boxes[0]).norm(dim=-1)
    nearest_image = torch.stack([minimum_image(big.positions[0, :1] - big.positions[0, k * n:(k + 1) * n],
                                               big.boxes[0]).norm(dim=-1) for k in range(4)]).min(0).values
    assert torch.allclose(nearest_image, small, atol=1e-5) and bool((large >= small - 1e-5).all())
    with pytest.raises(InputError, match="counts >= 1"):
        replicate(cg, (0, 1, 1))
