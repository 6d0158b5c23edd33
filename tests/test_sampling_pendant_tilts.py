"""Leaned and tilted copies of a pendant step's candidates (sPS's phenyl rings about their ipso)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gdbm.ordering import OrderingConfig, plan_system
from gdbm.sampling.pendant_tilts import PendantTilts
from gdbm.topology.system import load_mapped_system


def _angle(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Angle a-b-c in degrees, ``[...]`` from points ``[..., 3]``."""
    u, v = a - b, c - b
    return torch.rad2deg(torch.acos((u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))))


@pytest.fixture(scope="module")
def ring(sps: Path):
    """An ideal phenyl ring in the xy plane, its ipso at the origin and its CH at -0.151 nm on x, written into the
    slots of sPS's first ring step."""
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map", partial=False)
    steps, _, _ = plan_system(system, OrderingConfig()).expand()
    tilts = PendantTilts(system.aa, steps.atoms, 10)
    step = int(torch.nonzero(tilts.inner >= 0)[0])
    atoms = steps.atoms[step]
    ipso = int(atoms[tilts.inner[step]])
    bonded = system.aa.bonded_neighbours()
    order, previous = [ipso], -1
    while len(order) < 6:  # walk round the ring from the ipso
        here = order[-1]
        nxt = next(a for a in bonded[here] if a in atoms.tolist() and a != previous and a not in order)
        previous = here
        order.append(nxt)
    site = {a: torch.tensor([0.139 * (1 - math.cos(math.pi / 3 * n)), 0.139 * math.sin(math.pi / 3 * n), 0.0],
                            dtype=torch.float64)
            for n, a in enumerate(order)}  # a hexagon of side 0.139 (its circumradius) with its ipso at the origin
    local = torch.stack([site[int(a)] if a >= 0 else torch.zeros(3, dtype=torch.float64) for a in atoms])
    ch = torch.tensor([-0.151, 0.0, 0.0], dtype=torch.float64)
    return tilts, step, atoms, order, local.view(1, 1, -1, 3), ch


def test_copies_lean_and_tilt_the_ring_about_its_ipso_keeping_it_whole(ring):
    tilts, step, atoms, order, local, ch = ring
    context_atom = torch.tensor([[int(tilts.outer[step]), -1]])
    out = tilts(local, torch.tensor([step]), context_atom, torch.stack([ch, torch.ones(3, dtype=ch.dtype)]).view(1, 2, 3))
    assert out.shape == (1, 5, len(atoms), 3)
    assert torch.equal(out[0, 0], local[0, 0])  # copy 0 is the candidate
    valid = atoms >= 0
    distances = torch.cdist(out[0][:, valid], out[0][:, valid])  # [5, l, l]
    assert torch.allclose(distances, distances[:1].expand_as(distances), atol=1e-12)  # rigid
    slot = {int(a): s for s, a in enumerate(atoms.tolist())}
    ipso, first, last, para = (out[0, :, slot[order[n]]] for n in (0, 1, 5, 3))  # [5, 3] each
    assert torch.allclose(ipso, local[0, 0, slot[order[0]]].expand(5, 3))  # the ipso, so the CH-ipso bond, stays
    ortho = torch.stack([_angle(ch, ipso, first), _angle(ch, ipso, last)], 1)  # [5, 2]
    lean = ortho[:, 0] - ortho[:, 1]
    assert torch.allclose(ortho.sum(1)[:3], torch.full((3,), 240.0, dtype=ch.dtype))  # in-plane: the pair's sum kept
    assert torch.allclose(lean[1:3].abs(), torch.full((2,), 20.0, dtype=ch.dtype)) and lean[1] * lean[2] < 0
    assert torch.allclose(out[0, 1:3, :, 2][:, valid], torch.zeros(2, int(valid.sum()), dtype=ch.dtype))
    bend = 180 - _angle(ch, ipso, para)  # the ring's axis off the bond's line
    assert torch.allclose(bend[3:], torch.full((2,), 10.0, dtype=ch.dtype))
    assert torch.allclose(lean[3:], torch.zeros(2, dtype=ch.dtype), atol=1e-9)  # out of plane: both orthos alike
    assert out[0, 3, slot[order[3]], 2] * out[0, 4, slot[order[3]], 2] < 0  # one up, one down


def test_items_without_their_holding_atom_get_unchanged_copies_and_bad_angles_are_refused(ring):
    tilts, step, atoms, _, local, _ = ring
    out = tilts(local, torch.tensor([step]), torch.full((1, 1), -1), torch.zeros(1, 1, 3, dtype=local.dtype))
    assert torch.equal(out, local.repeat(1, 5, 1, 1))
    for bad in (0, 90, -5):
        with pytest.raises(ValueError):
            PendantTilts(None, atoms.view(1, -1), bad)  # refused before the topology is read
