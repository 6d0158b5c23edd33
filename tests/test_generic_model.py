"""The generic shipped model (``hydrocarbons-voxel``) backmaps a molecule it never saw (p-cymene),
and ``gdbm demo --model`` runs any shipped model on an example set."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.cli.main import main
from gdbm.data import read_frames
from gdbm.data.trajectory import Frames
from gdbm.sampling.backmapper import Backmapper, SamplerConfig
from gdbm.study.demo import example_folder
from gdbm.topology.system import load_mapped_system
from gdbm.training.pretrained import available, read_note_header, resolve_checkpoint
from gdbm.training.trained_model import load_generator
from gdbm.utils.pbc import minimum_image

N_MOLECULES = 4
N_BEADS = 4  # per p-cymene: the ring and three methyl beads


def _few_pcy(tmp_path: Path) -> tuple[Path, Path, Frames]:
    """The first ``N_MOLECULES`` p-cymenes of held-out frame 30 of the shipped example, with their topology."""
    folder = example_folder("p-cymene")
    top = (folder / "topol.top").read_text()
    (tmp_path / "topol.top").write_text(top.replace("PCY                 48", f"PCY                 {N_MOLECULES}"))
    for name in ("PCY.yaml", "PCY_cg.itp"):
        (tmp_path / name).write_text((folder / name).read_text())
    full = read_frames(folder / "cg.xtc", folder / "cg.gro")
    n = N_BEADS * N_MOLECULES
    cg = Frames(full.positions[30:31, :n], full.boxes[30:31], full.labels[30:31], full.names[:n], full.resnames[:n],
                full.resids[:n])
    return tmp_path / "topol.top", tmp_path / "PCY.yaml", cg


def test_the_generic_model_ships_with_a_note_naming_what_it_did_not_see():
    assert {"hydrocarbons-voxel", "p-cymene-voxel"} <= set(available())
    header = read_note_header(resolve_checkpoint("hydrocarbons-voxel").with_suffix(".md"))
    assert all(name in header["molecules"] for name in ("TOL", "EBZ", "CUM", "OCT", "PXY"))
    assert "PCY" not in header["molecules"] and "p-cymene" in header["score"]
    _, spec, config = load_generator("hydrocarbons-voxel")
    assert config.model.conditioner == "voxel" and config.refine.temperature == 350


def test_the_generic_model_backmaps_an_unseen_molecule_onto_its_beads(tmp_path: Path):
    """p-cymene is in none of the model's training molecules; its atom and bead types are. The
    backmapped atoms map back onto their beads (0.024 nm rms on the 10 held-out frames of
    docs/generic-model.md; bound 0.06 nm) and no two atoms of different molecules overlap."""
    top, mapping, cg = _few_pcy(tmp_path)
    sampler = Backmapper.from_checkpoint("hydrocarbons-voxel", top, mapping,
                                         SamplerConfig(n_gibbs=1, candidates=4, seed=1))
    out = sampler.backmap(cg, progress=False)
    system = load_mapped_system(top, mapping)
    beads = system.mapping.map_positions(out.positions.double(), out.boxes.double())
    deviation = minimum_image(beads - cg.positions.double(), cg.boxes.double()).norm(dim=-1)
    assert float(deviation.pow(2).mean().sqrt()) < 0.06
    x = out.positions[0]
    d = minimum_image(x.unsqueeze(1) - x.unsqueeze(0), out.boxes[0].expand(len(x), 3, 3)).norm(dim=-1)
    molecule = torch.arange(N_MOLECULES).repeat_interleave(system.aa.n_atoms // N_MOLECULES)
    other = molecule.unsqueeze(0) != molecule.unsqueeze(1)
    assert float(d[other].min()) > 0.1


def test_demo_takes_another_model_and_refuses_it_with_steps(tmp_path: Path, capsys):
    assert main(["demo", "-o", str(tmp_path / "a"), "--model", "no-such-model"]) == 2
    assert "shipped model" in capsys.readouterr().err and not (tmp_path / "a" / "data").exists()
    assert main(["demo", "-o", str(tmp_path / "b"), "--model", "cumene-voxel", "--steps", "2"]) == 2
    assert "not both" in capsys.readouterr().err
