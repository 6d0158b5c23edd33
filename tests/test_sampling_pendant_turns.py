"""Turned copies of a pendant step's candidates (sPS's phenyl rings about their CH-ipso bond)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gdbm.data import read_frames
from gdbm.ordering import plan_system
from gdbm.ordering import OrderingConfig
from gdbm.sampling.pendant_turns import PendantTurns
from gdbm.topology.system import load_mapped_system


def _dihedral(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Dihedral a-b-c-d in degrees, ``[...]`` from points ``[..., 3]``."""
    b0, b1, b2 = a - b, c - b, d - c
    b1 = b1 / b1.norm(dim=-1, keepdim=True)
    v = b0 - (b0 * b1).sum(-1, keepdim=True) * b1
    w = b2 - (b2 * b1).sum(-1, keepdim=True) * b1
    x = (v * w).sum(-1)
    y = (torch.linalg.cross(b1, v) * w).sum(-1)
    return torch.rad2deg(torch.atan2(y, x))


@pytest.fixture(scope="module")
def rings(sps: Path):
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map", partial=False)
    steps, _, _ = plan_system(system, OrderingConfig()).expand()
    x = read_frames(sps / "train_t568" / "aa" / "90.gro").positions[0].double()  # [n, 3]
    return system, steps.atoms, x


def test_only_the_phenyl_steps_are_turned_each_about_its_ch(rings):
    system, step_atoms, _ = rings
    turns = PendantTurns(system.aa, step_atoms, 3)
    pendant = torch.nonzero(turns.inner >= 0).squeeze(1)
    assert len(pendant) == 360  # every ring of the 36 chains; backbone and hydrogen steps none
    for step in pendant.tolist():
        ring, ipso, ch = step_atoms[step], step_atoms[step, turns.inner[step]], turns.outer[step]
        assert all(system.aa.types[int(a)] == "C_AR" for a in ring[ring >= 0])
        assert system.aa.types[int(ch)] == "C" and int(ch) not in ring.tolist()
        assert [int(ch), int(ipso)] in system.aa.connectivity.tolist() or [int(ipso), int(ch)] in system.aa.connectivity.tolist()
    with pytest.raises(ValueError):
        PendantTurns(system.aa, step_atoms, 1)


def test_copies_keep_the_ring_and_turn_it_by_whole_fractions_about_the_holding_bond(rings):
    system, step_atoms, x = rings
    copies = 4
    turns = PendantTurns(system.aa, step_atoms, copies)
    steps = torch.nonzero(turns.inner >= 0).squeeze(1)[:5]  # [B]
    atoms = step_atoms[steps]  # [B, L]
    local = x[atoms.clamp(min=0)].unsqueeze(1)  # [B, 1, L, 3] the reference's rings as candidates
    others = torch.tensor([[int(turns.outer[s]), 0] for s in steps.tolist()])  # [B, P]: the CH and another atom
    out = turns(local, steps, others, x[others])  # [B, copies, L, 3]
    assert out.shape == (5, copies, atoms.shape[1], 3)
    assert torch.equal(out[:, 0], local[:, 0])  # copy 0 is the candidate
    valid = atoms[0] >= 0
    distances = torch.cdist(out[:, :, valid], out[:, :, valid])  # [B, C, l, l]
    assert torch.allclose(distances, distances[:, :1].expand_as(distances), atol=1e-9)  # rigid
    for b, step in enumerate(steps.tolist()):
        ch, inner = x[int(turns.outer[step])], int(turns.inner[step])
        assert torch.allclose(out[b, :, inner], local[b, 0, inner].expand(copies, 3))  # the ipso stays
        backbone = x[int(system.aa.bonded_neighbours()[int(turns.outer[step])][0])]
        ortho = out[b, :, inner + 1]  # [C, 3]
        turn = _dihedral(backbone, ch, out[b, :, inner], ortho)  # [C]
        step_deg = (turn - turn[0] + 360) % 360
        assert torch.allclose(step_deg, torch.arange(copies, dtype=x.dtype) * 360 / copies, atol=1e-6)


def test_items_without_their_holding_atom_or_not_pendant_get_unturned_copies(rings):
    system, step_atoms, x = rings
    turns = PendantTurns(system.aa, step_atoms, 3)
    ring = int(torch.nonzero(turns.inner >= 0)[0])
    backbone = int(torch.nonzero(turns.inner < 0)[0])
    steps = torch.tensor([ring, backbone])
    local = x[step_atoms[steps].clamp(min=0)].unsqueeze(1).expand(2, 2, -1, 3)  # [2, 2, L, 3]
    absent = torch.full((2, 1), -1)  # the CH not in the environment
    out = turns(local, steps, absent, torch.zeros(2, 1, 3, dtype=x.dtype))
    assert out.shape == (2, 6, step_atoms.shape[1], 3) and torch.equal(out, local.repeat(1, 3, 1, 1))
    assert turns.turnable(steps) and not turns.turnable(steps[1:])
