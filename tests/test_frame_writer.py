"""Written frame files keep the system: residues per molecule, elements, bonds (PDB CONECT), the box,
in every format (.gro .pdb .xtc .dcd .trr); a bad output is refused before any work."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import MDAnalysis as mda
import numpy as np
import pytest
import torch

from gdbm.data.frame_writer import (MAX_CONECT_SERIAL, WRITE_SUFFIXES, AtomRecords, FrameWriter, check_output,
                                    conect_records, write_frames)
from gdbm.data.trajectory import Frames, read_frames
from gdbm.topology.gromacs import read_topology
from gdbm.utils.errors import InputError

CUMENE = Path(__file__).resolve().parents[1] / "gdbm" / "resources" / "examples" / "cumene"


@pytest.fixture(scope="module")
def topology():
    return read_topology(CUMENE / "topol.top", require_parameters=False)


@pytest.fixture(scope="module")
def frames() -> Frames:
    """Two frames of the example: the structure and a shifted copy in a larger, triclinic box."""
    one = read_frames(CUMENE / "aa.gro")
    box = one.boxes[0].clone()
    other = box.clone()
    other[1, 0] = 0.3  # b tilted along x
    other *= 1.1
    return Frames(torch.cat([one.positions, one.positions + 0.05]), torch.stack([box, other]), ["a", "b"],
                  one.names, one.resnames, one.resids)


def _universe(path: Path) -> mda.Universe:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mda.Universe(str(path))


def _conect_pairs(path: Path) -> set[tuple[int, int]]:
    """Bonds (zero-based, i < j) in the file's CONECT records, each checked to appear from both ends."""
    seen: dict[tuple[int, int], int] = {}
    for line in path.read_text().splitlines():
        if line.startswith("CONECT"):
            serials = [int(line[k:k + 5]) for k in range(6, len(line.rstrip()), 5)]
            assert 2 <= len(serials) <= 5, line  # an atom and at most four partners per record
            for partner in serials[1:]:
                pair = tuple(sorted((serials[0] - 1, partner - 1)))
                seen[pair] = seen.get(pair, 0) + 1
    assert set(seen.values()) <= {2}, "every bond is listed from both of its atoms"
    return set(seen)


def _bonds(topology) -> set[tuple[int, int]]:
    return {tuple(sorted(b)) for b in topology.connectivity.tolist()}


@pytest.mark.parametrize("suffix", sorted(WRITE_SUFFIXES))
def test_every_format_round_trips_positions_and_box(tmp_path, topology, frames, suffix):
    data = frames.subset([0]) if suffix == ".gro" else frames
    path = write_frames(tmp_path / f"out{suffix}", data, atoms=topology)
    structure = None if suffix in {".gro", ".pdb"} else write_frames(tmp_path / "s.gro", frames.subset([0]),
                                                                     atoms=topology)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted({path.name, Path(structure or path).name})  # and no temporary file
    back = read_frames(path, structure)
    assert len(back) == len(data)
    tolerance = {".gro": 6e-4, ".pdb": 6e-3, ".xtc": 6e-4}.get(suffix, 1e-5)  # the formats' precision, nm
    assert (back.positions - data.positions).abs().max() <= tolerance
    assert torch.allclose(back.boxes, data.boxes, atol=1e-3)
    assert back.names == list(topology.names)


def test_pdb_keeps_residues_elements_bonds_and_box(tmp_path, topology, frames):
    path = write_frames(tmp_path / "out.pdb", frames, atoms=topology)
    u = _universe(path)
    assert u.atoms.n_residues == topology.n_molecules == 64
    assert list(u.residues.resids) == list(range(1, 65))
    assert list(u.atoms.elements) == list(topology.elements)
    assert sorted(set(u.atoms.elements)) == ["C", "H"]
    assert _conect_pairs(path) == _bonds(topology)
    text = path.read_text().splitlines()
    assert sum(line.startswith("CRYST1") for line in text) == len(frames)  # one per model
    assert text[-1] == "END" and text.index(next(x for x in text if x.startswith("CONECT"))) > \
        max(i for i, x in enumerate(text) if x.startswith("ENDMDL"))  # CONECT once, after the last model
    assert u.dimensions[:3] == pytest.approx(frames.boxes[0].diagonal().numpy() * 10, abs=1e-3)


def test_one_frame_pdb_has_no_model_records_and_rdkit_reads_its_bonds(tmp_path, topology, frames):
    from rdkit import Chem

    path = write_frames(tmp_path / "one.pdb", frames.subset([1]), atoms=topology)
    text = path.read_text()
    assert "MODEL" not in text and "ENDMDL" not in text  # RDKit stops reading at the first ENDMDL
    assert text.count("CRYST1") == 1
    mol = Chem.MolFromPDBFile(str(path), removeHs=False, sanitize=False, proximityBonding=False)
    assert {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()} == _bonds(topology)
    assert len(Chem.GetMolFrags(mol)) == topology.n_molecules
    assert torch.allclose(read_frames(path).boxes, frames.boxes[1:], atol=1e-3)


def test_gro_keeps_residues_and_box(tmp_path, topology, frames):
    path = write_frames(tmp_path / "out.gro", frames.subset([1]), atoms=topology)
    u = _universe(path)
    assert u.atoms.n_residues == 64
    assert u.residues.resnames[0] == "CUM"
    box = [float(v) for v in path.read_text().splitlines()[-1].split()]
    b = frames.boxes[1]
    expected = [b[0, 0], b[1, 1], b[2, 2], b[0, 1], b[0, 2], b[1, 0], b[1, 2], b[2, 0], b[2, 1]]  # GROMACS order
    assert box == pytest.approx([float(v) for v in expected], abs=1e-4)


def test_several_residues_per_molecule_are_kept(tmp_path, topology, frames):
    resids = topology.resids.clone()
    for block in topology.molecules:  # split each molecule after its tenth atom: residues 1 and 2
        resids[block.start + 10:block.stop] = 2
    split = dataclasses.replace(topology, resids=resids)
    records = AtomRecords.from_topology(split)
    assert records.resids[:11] == [1] * 10 + [2] and records.resids[-1] == 128
    u = _universe(write_frames(tmp_path / "out.pdb", frames.subset([0]), atoms=split))
    assert u.atoms.n_residues == 128


def test_without_topology_frames_keep_their_own_names(tmp_path, frames):
    path = write_frames(tmp_path / "out.pdb", frames.subset([0]))
    assert "CONECT" not in path.read_text()
    assert _universe(path).atoms.n_residues == 64  # the .gro's residue numbers


def test_beads_get_no_element(tmp_path):
    cg_top = read_topology(CUMENE / "cg.top", require_parameters=False)
    cg = read_frames(CUMENE / "cg.gro")
    path = write_frames(tmp_path / "cg.pdb", cg, atoms=cg_top)
    atom = next(line for line in path.read_text().splitlines() if line.startswith("ATOM"))
    assert atom[76:78] == "  "
    assert _conect_pairs(path) == _bonds(cg_top)


def test_conect_records_follow_the_pdb_format():
    star = np.array([[0, k] for k in range(1, 7)])  # atom 1 bonded to six others
    records = conect_records(star, 7)
    assert records[:2] == ["CONECT    1    2    3    4    5\n", "CONECT    1    6    7\n"]
    assert records[2] == "CONECT    2    1\n" and len(records) == 8


def test_too_many_atoms_for_conect_warn_and_write_none(tmp_path):
    n = MAX_CONECT_SERIAL + 1
    records = AtomRecords(["C"] * n, ["RES"] * n, [1 + i // 10 for i in range(n)], ["C"] * n,
                          np.array([[0, 1], [n - 2, n - 1]]))
    positions = torch.rand(1, n, 3) * 10
    with pytest.warns(UserWarning, match="without CONECT"):
        with FrameWriter(tmp_path / "big.pdb", records, n_frames=1) as writer:
            writer.write(positions, torch.eye(3).unsqueeze(0) * 10)
    assert "CONECT" not in (tmp_path / "big.pdb").read_text()


def test_bad_outputs_are_refused_before_any_work(tmp_path, topology, frames):
    for bad in ("out.mol2", "out"):
        with pytest.raises(InputError, match="cannot write"):
            check_output(tmp_path / bad)
        with pytest.raises(InputError, match="cannot write"):
            write_frames(tmp_path / bad, frames, atoms=topology)
    with pytest.raises(InputError, match="holds one frame"):
        write_frames(tmp_path / "two.gro", frames, atoms=topology)
    with pytest.raises(InputError, match="topology has 1344 atoms, the frames 10"):
        write_frames(tmp_path / "x.pdb", Frames(frames.positions[:, :10], frames.boxes, frames.labels,
                                                frames.names[:10], frames.resnames[:10], frames.resids[:10]),
                     atoms=topology)
    assert list(tmp_path.iterdir()) == []
    # the commands check the output first: their inputs (missing here) are not even looked at
    from gdbm.baselines.backmap import baseline_backmap_files
    from gdbm.sampling.jobs import backmap_trajectory
    from gdbm.sampling.refine import relax_trajectory
    from gdbm.temporal.drivers import backmap_trajectory as temporal_backmap

    missing = tmp_path / "missing"
    calls = [lambda out: backmap_trajectory(None, out),
             lambda out: relax_trajectory(missing, missing, missing, missing, out),
             lambda out: baseline_backmap_files(missing, missing, missing, out),
             lambda out: temporal_backmap(missing, missing, out)]
    for call in calls:
        with pytest.raises(InputError, match="cannot write '.mol2'"):
            call(tmp_path / "out.mol2")
