"""Bad input to the readers (issue 20): each ends in one InputError naming file and line, never a traceback
or a silently wrong result. Corrupted copies of the shipped cumene set and the shared sPS files, built in tmp_path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from fuzz_helpers import one_line_error as _cli
from gdbm.topology.gromacs import read_topology
from gdbm.topology.mapfiles import load_mapping
from gdbm.training.checkpoint import GENERATOR_KEYS, check_device, load_checkpoint
from gdbm.training.config import load_config
from gdbm.training.pretrained import resolve_checkpoint
from gdbm.training.trained_model import load_generator
from gdbm.utils.errors import InputError

CUMENE = Path(__file__).resolve().parents[1] / "gdbm" / "resources" / "examples" / "cumene"
GARBAGE = bytes(range(128, 256)) + bytes(range(1, 128)) * 8  # no NUL: the UTF-8 check must catch it, on line 1


def _copy(src: Path, dst: Path, old: str = "", new: str = "") -> Path:
    """``src`` copied to ``dst`` with ``old`` replaced once by ``new``."""
    text = src.read_text()
    assert old in text
    dst.write_text(text.replace(old, new, 1))
    return dst


def _latin1(src: Path, dst: Path, anchor: bytes) -> Path:
    """``src`` with one Latin-1 byte (0xe9) put before ``anchor`` (in a comment where the anchor is one)."""
    data = src.read_bytes()
    assert anchor in data
    dst.write_bytes(data.replace(anchor, b"\xe9" + anchor, 1))
    return dst


def _line_of(path: Path, needle: bytes) -> int:
    data = path.read_bytes()
    return data[:data.index(needle)].count(b"\n") + 1


def _raises(call, path: Path, line: int | None, *words: str) -> InputError:
    """``call()`` raises one InputError naming ``path`` (and ``line``) and saying ``words``."""
    with pytest.raises(InputError) as err:
        call()
    assert err.value.path == str(path), str(err.value)
    if line is not None:
        assert err.value.line == line, str(err.value)
    for word in words:
        assert word in str(err.value), str(err.value)
    return err.value


# ---------------------------------------------------------------------------- encodings and binary files


def test_latin1_byte_in_top_comment(tmp_path):
    top = _latin1(CUMENE / "topol.top", tmp_path / "topol.top", b"By user")
    _raises(lambda: read_topology(top), top, 3, "byte 0xe9", "not UTF-8", "column 5")


def test_latin1_byte_in_included_itp_names_the_itp(tmp_path, sps):
    itp = _latin1(sps / "topol_PS1.itp", tmp_path / "topol_PS1.itp", b"[atoms]")
    top = _copy(sps / "topol.top", tmp_path / "topol.top")
    _raises(lambda: read_topology(top), itp, _line_of(itp, b"\xe9"), "0xe9", "UTF-8")


def test_binary_top(tmp_path):
    top = tmp_path / "garbage.top"
    top.write_bytes(GARBAGE)
    _raises(lambda: read_topology(top), top, 1, "not UTF-8")
    top.write_bytes(b"[ defaults ]\n\0\0\0")
    _raises(lambda: read_topology(top), top, 2, "binary data")


def test_byte_order_mark_is_accepted(tmp_path):
    top = tmp_path / "topol.top"
    top.write_bytes(b"\xef\xbb\xbf" + (CUMENE / "topol.top").read_bytes())
    assert read_topology(top).n_atoms == 64 * 21


@pytest.fixture(scope="module")
def sps_topologies(sps):
    aa = read_topology(sps / "topol.top")
    cg = read_topology(sps / "PS1_cg.itp", require_parameters=False, n_molecules=aa.n_molecules)
    return aa, cg


def test_latin1_byte_in_map_comment(tmp_path, sps, sps_topologies):
    path = _latin1(sps / "PS1_cg_fritz.map", tmp_path / "fritz.map", b"Columns")
    _raises(lambda: load_mapping(path, *sps_topologies, partial=True), path, 2, "0xe9", "UTF-8")
    path.write_bytes(GARBAGE)
    _raises(lambda: load_mapping(path, *sps_topologies), path, 1, "not UTF-8")


def test_latin1_byte_in_yaml_mapping_and_config(tmp_path):
    mapping = _latin1(CUMENE / "CUM.yaml", tmp_path / "CUM.yaml", b"molecule:")
    mapping.write_bytes(mapping.read_bytes().replace(b"\xe9molecule:", b"# caf\xe9\nmolecule:"))
    _raises(lambda: load_mapping(mapping), mapping, 2, "0xe9")
    config = tmp_path / "fit.yaml"
    config.write_bytes(b"# r\xe9sum\xe9\ndata: {topology: topol.top, mapping: CUM.yaml, aa: aa.gro}\n")
    _raises(lambda: load_config(config), config, 1, "0xe9")
    config.write_bytes(GARBAGE)
    _raises(lambda: load_config(config), config, 1)


def test_cli_latin1_and_binary(tmp_path, capsys):
    top = _latin1(CUMENE / "topol.top", tmp_path / "topol.top", b"By user")
    _cli(["energy", "--top", str(top), "--aa", str(CUMENE / "aa.gro")], capsys, f"{top}:3:", "not UTF-8")
    config = tmp_path / "fit.yaml"
    config.write_bytes(GARBAGE)
    _cli(["fit", "--config", str(config), "-o", str(tmp_path / "run")], capsys, f"{config}:1:")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- topology values


@pytest.mark.parametrize("count, words", [
    ("-3", ["molecule 'CUM'", "expected an integer count >= 0, got '-3'"]),
    ("2.5", ["expected an integer count >= 0, got '2.5'"]),
    ("many", ["got 'many'"]),
    ("0", ["holds no atoms"]),
])
def test_bad_molecule_count(tmp_path, count, words):
    top = _copy(CUMENE / "topol.top", tmp_path / "topol.top", "CUM                 64", f"CUM  {count}")
    _raises(lambda: read_topology(top), top, _line_of(top, f"CUM  {count}".encode()), *words)


@pytest.mark.parametrize("old, new, words", [
    ("0.33977095      0.4510352", "0.33977095      -0.4510352", ["negative epsilon -0.451035 for atom type 'c3'"]),
    ("0.33977095      0.4510352", "-0.33977095      0.4510352", ["negative sigma -0.339771", "sigma >= 0"]),
    ("0.33977095      0.4510352", "nan      0.4510352", ["expected finite numbers"]),
])
def test_bad_lennard_jones(tmp_path, old, new, words):
    top = _copy(CUMENE / "topol.top", tmp_path / "topol.top", old, new)
    _raises(lambda: read_topology(top), top, _line_of(top, b"c3             6"), *words)


@pytest.mark.parametrize("old, new, words", [
    ("-0.08510000  12.010000", "-0.0851x000  12.010000", ["expected numbers for charge, got '-0.0851x000'"]),
    ("-0.08510000  12.010000", "-0.08510000  -12.01", ["negative mass -12.01 for atom 1 (C1)"]),
])
def test_bad_atom_line(tmp_path, old, new, words):
    top = _copy(CUMENE / "topol.top", tmp_path / "topol.top", old, new)
    _raises(lambda: read_topology(top), top, _line_of(top, new.encode()), *words)


def test_undefined_atom_type_is_named_not_missing_bonds(tmp_path):
    top = _copy(CUMENE / "topol.top", tmp_path / "topol.top", "c3             6  12.010000", "cx             6  12.010000")
    err = _raises(lambda: read_topology(top), top, None, "atom types without parameters: c3", "[ atomtypes ]")
    assert "no parameters for bond" not in str(err)
    assert re.search(r"^\s+1\s+c3\s", top.read_text().splitlines()[err.line - 1])  # the first [ atoms ] use


def test_cli_negative_epsilon(tmp_path, capsys):
    top = _copy(CUMENE / "topol.top", tmp_path / "topol.top", "0.33977095      0.4510352", "0.33977095      -0.45")
    _cli(["energy", "--top", str(top), "--aa", str(CUMENE / "aa.gro")], capsys, f"{top}:", "negative epsilon -0.45")


# ---------------------------------------------------------------------------- .map content


def _bad_map(tmp_path: Path, sps: Path, pattern: str, replacement: str, count: int = 1) -> Path:
    text, n = re.subn(pattern, replacement, (sps / "PS1.map").read_text(), count=count, flags=re.M)
    assert n
    path = tmp_path / "PS1.map"
    path.write_text(text)
    return path


@pytest.mark.parametrize("pattern, replacement, count, bad_line, words", [
    (r"^7 C_AR 2 SC$", "7 H 2 SC", 1, "7 H 2 SC", ["ff_type 'H' is the type of H atoms", "atom 7 (C7"]),
    (r"^7 C_AR 2 SC$", "7 XX 2 SC", 1, "7 XX 2 SC", ["ff_type 'XX' of atom 7 is not an atom type", "C, C_AR, H"]),
    (r"^(\d+ \S+) 1 BB$", r"\1 1 QQ", 0, "5 C 1 QQ", ["named", "'QQ'", "one bead name per CG bead type"]),
    (r"^7 C_AR 2 SC$", "7 C_AR 2 SC\n7 C_AR 4 SC", 1, "7 C_AR 4 SC", ["atom 7 is listed for beads 2, 4",
                                                                      "weight"]),
    (r"^\[/map\]$", "", 1, "[align]", ["[map] opened on line 1 is not closed by [/map]"]),
])
def test_wrong_map_is_rejected(tmp_path, sps, sps_topologies, pattern, replacement, count, bad_line, words):
    path = _bad_map(tmp_path, sps, pattern, replacement, count)
    lines = path.read_text().splitlines()
    err = _raises(lambda: load_mapping(path, *sps_topologies), path, None, *words)
    expected = [k for k, t in enumerate(lines, start=1) if t == bad_line]
    assert err.line in expected or (bad_line.endswith("QQ") and err.line <= 40), (err.line, expected)


def test_map_closer_at_end_and_mismatched_closer(tmp_path, sps, sps_topologies):
    path = _bad_map(tmp_path, sps, r"^\[/mult\]$", "[/map]")
    _raises(lambda: load_mapping(path, *sps_topologies), path, len(path.read_text().splitlines()),
            "[/map] closes a section that is not open; found [mult]")
    fritz = _copy(sps / "PS1_cg_fritz.map", tmp_path / "fritz.map", "[/map]", "")
    assert load_mapping(fritz, *sps_topologies, partial=True).n_beads == 20  # no closers at all: still fine


def test_good_maps_still_load(sps, sps_topologies):
    assert load_mapping(sps / "PS1.map", *sps_topologies).prior_types[:6] == ["H", "C", "H", "H", "C", "C_AR"]
    assert load_mapping(sps / "PS1_cg_fritz.map", *sps_topologies, partial=True).n_beads == 20


def test_cli_wrong_map(tmp_path, sps, capsys):
    path = _bad_map(tmp_path, sps, r"^7 C_AR 2 SC$", "7 H 2 SC")
    _cli(["backmap", "--top", str(sps / "topol.top"), "--map", str(path), "--cg", str(sps / "train_t568/cg/90.gro"),
          "--checkpoint", "sps-voxel", "-o", str(tmp_path / "out.gro")], capsys, f"{path}:8:", "ff_type 'H'")
    assert not (tmp_path / "out.gro").exists()


# ---------------------------------------------------------------------------- fit config paths


def test_frames_is_not_a_path(tmp_path):
    config = tmp_path / "fit.yaml"
    config.write_text('data: {topology: topol.top, mapping: CUM.yaml, aa: aa.xtc, frames: "0:2"}\n')
    data = load_config(config).data
    assert data.frames == "0:2"
    assert data.topology == tmp_path / "topol.top" and data.aa == tmp_path / "aa.xtc"


def test_section_that_is_not_a_mapping_with_overrides(tmp_path):
    config = tmp_path / "fit.yaml"
    config.write_text("data: {topology: topol.top, mapping: CUM.yaml, aa: aa.xtc}\ntraining: 5\n")
    _raises(lambda: load_config(config, {"training": {"steps": 3}}), config, None,
            "section 'training': expected a mapping of settings, got int 5")


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("payload, words", [
    ([1, 2], ["not a gdbm checkpoint: it holds a list"]),
    (torch.zeros(3), ["not a gdbm checkpoint: it holds a Tensor"]),
    ({"step": 3}, ["not a gdbm checkpoint: missing keys generator, features, config"]),
])
def test_checkpoint_of_the_wrong_shape(tmp_path, payload, words):
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    _raises(lambda: load_checkpoint(path, required=GENERATOR_KEYS), path, None, *words)
    _raises(lambda: load_generator(path), path, None, *words)


def test_checkpoint_garbage_and_folder(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(GARBAGE)
    _raises(lambda: load_generator(path), path, None, "not a readable gdbm checkpoint")
    _raises(lambda: resolve_checkpoint(tmp_path), tmp_path, None, "a folder; expected a .pt checkpoint")


def test_missing_cuda_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="CUDA is not available") as err:
        load_generator("sps-voxel", "cuda")
    assert "not a readable checkpoint" not in str(err.value)
    with pytest.raises(InputError, match="--device 'foo' is not a torch device; expected cpu, cuda or cuda:N"):
        check_device("foo")


def test_cli_checkpoint_list(tmp_path, sps, capsys):
    path = tmp_path / "model.pt"
    torch.save([1, 2], path)
    _cli(["backmap", "--top", str(sps / "topol.top"), "--map", str(sps / "PS1.map"), "--cg",
          str(sps / "train_t568/cg/90.gro"), "--checkpoint", str(path), "-o", str(tmp_path / "out.gro")], capsys,
         f"{path}: not a gdbm checkpoint: it holds a list")
