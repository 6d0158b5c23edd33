"""Stereocentres on the real sPS data: found, read from training frames, inverted and restored by the sampler."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.data import read_frames
from gdbm.data.stereo import stereo_template_from_file
from gdbm.utils.pbc import minimum_image
from gdbm.topology.stereo import StereoFix, StereoTemplate, handedness, invert, stereocentres
from gdbm.topology.system import load_mapped_system

from conftest import N_CHAINS


@pytest.fixture(scope="module")
def sps_system(sps: Path):
    return load_mapped_system(sps / "topol.top", sps / "PS1.map").aa


def test_the_backbone_ch_of_every_monomer_is_a_stereocentre(sps_system):
    rows = stereocentres(sps_system)
    assert rows.shape == (36 * 9, 5)  # 10 monomers per chain; the end monomer's CH has two terminal H
    types = sps_system.types
    for centre, a, b, c, terminal in rows[:9].tolist():
        assert types[centre] == "C" and types[terminal] == "H"
        assert sorted(types[k] for k in (a, b, c)) == ["C", "C", "C_AR"]


def test_training_frames_give_the_syndiotactic_template_and_test_frames_agree(sps: Path, sps_system):
    template = stereo_template_from_file(sps_system, sps / "train_t568" / "aa")
    centres, signs = template.molecules["PS1"]
    assert centres.shape == (9, 5)
    assert signs.tolist() == [1.0, -1.0] * 4 + [1.0]  # alternating: syndiotactic
    assert StereoTemplate.from_dict(template.to_dict()).to_dict() == template.to_dict()
    test = read_frames(sps / "test_t568" / "aa.xtc", sps / "test_t568" / "aa.gro")
    fix = StereoFix(template, sps_system)
    assert len(fix) == 324 and not bool(fix.wrong(test.positions[:10], test.boxes[:10]).any())


def test_inversion_flips_the_chosen_centres_only_and_restores_them(sps: Path, sps_system):
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    x, boxes = frame.positions.double(), frame.boxes.double()
    rows = stereocentres(sps_system)
    which = torch.zeros(1, len(rows), dtype=torch.bool)
    which[0, ::7] = True
    flipped = invert(x, boxes, rows, which)
    before, after = handedness(x, boxes, rows), handedness(flipped, boxes, rows)
    assert torch.equal(after[which], -before[which]) and torch.equal(after[~which], before[~which])
    moved = minimum_image(flipped - x, boxes).norm(dim=-1)[0]
    assert set(torch.nonzero(moved > 1e-9).flatten().tolist()) == set(rows[which[0]][:, [0, 4]].flatten().tolist())
    assert float(moved.max()) < 0.4  # the centre moves about 0.1 nm, its hydrogen about 0.3
    h = rows[which[0]]
    length = lambda y: minimum_image(y[:, h[:, 4]] - y[:, h[:, 0]], boxes).norm(dim=-1)  # noqa: E731
    assert torch.allclose(length(flipped), length(x))  # the C-H bond keeps its length
    fix = StereoFix(stereo_template_from_file(sps_system, sps / "train_t568" / "aa" / "90.gro"), sps_system)
    restored, inverted = fix(flipped, boxes)
    assert inverted.tolist() == [int(which.sum())]
    back = minimum_image(restored - x, boxes).norm(dim=-1)[0]
    assert float(back[h[:, 0]].max()) < 0.01  # the reflection undoes itself (exactly, unless nearly planar)
    assert float(back.max()) < 0.06  # and the hydrogen lands near where MD had it (thermal bending)


def test_the_sampler_restores_the_handedness_its_checkpoint_recorded(two_chains: Path):
    from gdbm.cli.main import main
    from gdbm.training.trained_model import load_stereo
    from gdbm.sampling.backmapper import Backmapper, SamplerConfig

    run = two_chains / "stereo_run"
    assert main(["fit", "--config", str(two_chains / "tiny.yaml"), "-o", str(run), "--steps", "1"]) == 0
    template = load_stereo(run / "checkpoint.pt")
    assert template is not None and template.molecules["PS1"][0].shape == (9, 5)
    cg = read_frames(two_chains / "cg.gro")
    common = dict(checkpoint=run / "checkpoint.pt", topology=two_chains / "topol.top",
                  mapping=two_chains / "PS1.map")
    free = Backmapper.from_checkpoint(**common, config=SamplerConfig(n_gibbs=0, candidates=1, stereo=False))
    held = Backmapper.from_checkpoint(**common, config=SamplerConfig(n_gibbs=0, candidates=1))
    top = held.system.aa
    fix = StereoFix(template, top)
    assert len(fix) == 9 * N_CHAINS and held.stereo is not None and free.stereo is None
    raw = free.backmap(cg, progress=False)
    assert bool(fix.wrong(raw.positions, raw.boxes).any())  # an untrained network gets some wrong ...
    out = held.backmap(cg, progress=False)
    assert not bool(fix.wrong(out.positions, out.boxes).any())  # ... the sampler inverts them
