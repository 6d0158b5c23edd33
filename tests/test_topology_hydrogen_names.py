"""Naming a carbon's equivalent hydrogens as the training frames do (sPS: every CH2 and CH3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.data import read_frames
from gdbm.topology import read_topology
from gdbm.topology.hydrogen_names import equivalent_hydrogens, naming, swap_first_two, turn_names
from gdbm.topology.stereo import StereoFix, StereoTemplate


@pytest.fixture(scope="module")
def sps_frames(sps: Path):
    top = read_topology(sps / "topol.top")
    frames = read_frames(sps / "train_t568" / "aa")
    return top, frames.positions.double(), frames.boxes.double()


def test_every_ch2_and_ch3_of_sps_is_a_group_and_named_alike_in_every_training_frame(sps_frames):
    top, x, boxes = sps_frames
    groups = equivalent_hydrogens(top)
    assert len(groups) == 36 * 11  # per chain: 9 backbone CH2, the end CH2 and the start CH3
    assert int((groups[:, 4] >= 0).sum()) == 36
    assert all(top.elements[int(h)] == "H" for h in groups[:, 2:4].flatten())
    signs = naming(x, boxes, groups)  # [13, g]
    assert bool((signs == signs[:1]).all())  # the reference data's convention, in all 13 frames
    template = StereoTemplate.from_frames([(top, x, boxes)])
    local, sign = template.names["PS1"]
    assert local.shape == (11, 5) and torch.equal(sign, signs[0, :11])
    again = StereoTemplate.from_dict(template.to_dict())
    assert torch.equal(again.names["PS1"][0], local) and torch.equal(again.molecules["PS1"][0], template.molecules["PS1"][0])
    old = StereoTemplate.from_dict({"PS1": {k: v for k, v in template.to_dict()["PS1"].items()
                                            if not k.startswith("hydrogen")}})  # a checkpoint from before
    assert old.names == {} and len(StereoFix(old, top).hydrogen_groups) == 0


def test_misnamed_hydrogens_trade_places_and_a_ch3_s_names_turn_at_random(sps_frames):
    top, x, boxes = sps_frames
    fix = StereoFix(StereoTemplate.from_frames([(top, x, boxes)]), top)
    groups = fix.hydrogen_groups
    scramble = torch.rand(x.shape[0], len(groups), generator=torch.Generator().manual_seed(0)) < 0.5
    wrong = swap_first_two(x, groups, scramble)
    assert float((naming(wrong, boxes, groups) != fix.naming).double().mean()) == pytest.approx(
        float(scramble.double().mean()))
    named, count = fix.name_hydrogens(wrong, boxes, torch.Generator().manual_seed(1))
    assert torch.equal(count, scramble.sum(1))
    assert bool((naming(named, boxes, groups) == fix.naming).all())
    hydrogens = groups[:, 2:].flatten()
    hydrogens = hydrogens[hydrogens >= 0]
    others = torch.ones(top.n_atoms, dtype=torch.bool)
    others[hydrogens] = False
    assert torch.equal(named[:, others], x[:, others])  # no other atom moves
    valid = (groups[:, 2:] >= 0).to(x.dtype).view(1, -1, 3, 1)

    def places(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # per group: sum and sum of squares
        h = y[:, groups[:, 2:].clamp(min=0)] * valid  # [F, g, 3, 3]
        return h.sum(2), (h * h).sum(2)

    for a, b in zip(places(named), places(x)):
        assert torch.allclose(a, b)  # each group's hydrogens sit on the same places, named otherwise
    rotors = groups[groups[:, 4] >= 0]
    first = named[:, rotors[:, 2]].unsqueeze(2)  # [F, r, 1, 3] where H1 went
    site = (first - x[:, rotors[:, 2:]]).norm(dim=-1).argmin(-1)  # [F, r] which of the three places
    assert set(site.flatten().tolist()) == {0, 1, 2}  # every place taken by the first name somewhere
    turned = turn_names(x, groups, torch.ones(x.shape[0], len(groups), dtype=torch.long))
    assert bool((naming(turned, boxes, groups) == naming(x, boxes, groups)).all())  # the cyclic order kept
