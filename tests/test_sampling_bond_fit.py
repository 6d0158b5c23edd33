"""Fitting a step's candidates to the bond lengths without bending them (``gdbm backmap --fit-bonds``)."""

from __future__ import annotations

from pathlib import Path

import torch

from gdbm.data import read_frames
from gdbm.sampling.bond_fit import StepBondFit
from gdbm.topology.system import load_mapped_system
from gdbm.utils.pbc import minimum_image


def _ring(sps: Path):
    """sPS's topology, a training frame made whole around the first phenyl ring, and that ring's atoms."""
    system = load_mapped_system(sps / "topol.top", sps / "PS1.map")
    top = system.aa
    frame = read_frames(sps / "train_t568" / "aa" / "90.gro")
    x, box = frame.positions.double()[0], frame.boxes.double()
    ring = [i for i, t in enumerate(top.types) if t == "C_AR"][:6]
    hydrogens = [i for i, t in enumerate(top.types) if t == "H_AR"][:5]
    anchor = x[ring[0]]
    whole = anchor + minimum_image((x - anchor).unsqueeze(0), box)[0]  # every atom its image nearest the ipso
    return top, whole, ring, hydrogens


def _cosines(x: torch.Tensor) -> torch.Tensor:
    """The cosine of every angle b-a-c among the atoms of ``x [K, L, 3]``: ``[K, L, L, L]``."""
    d = x.unsqueeze(2) - x.unsqueeze(1)  # [K, L, L, 3]
    u = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.einsum("kabx,kacx->kabc", u, u)


def test_a_shrunken_ring_grows_back_to_its_bonds_with_its_angles_and_centre(sps: Path):
    top, x, ring, _ = _ring(sps)
    fit = StepBondFit(top)
    true = x[ring]  # [6, 3], bonds 0.139 nm to the .gro's precision
    centre = true.mean(0)
    candidates = torch.stack([centre + s * (true - centre) for s in (0.9, 1.0, 1.1)])  # [3, 6, 3]
    out = fit(candidates.unsqueeze(0), torch.tensor([ring]), torch.tensor([[-1]]), torch.zeros(1, 1, 3))[0]
    assert torch.allclose(out, out[1].expand_as(out), atol=1e-9)  # each candidate's own scale undone
    bonds = torch.stack([(out[:, a] - out[:, b]).norm(dim=-1) for a in range(6) for b in range(a + 1, 6)
                         if (ring[a], ring[b]) in fit.length], 1)  # [3, 6]
    assert bonds.shape[1] == 6 and abs(float(bonds.mean()) - 0.139) < 1e-5
    assert torch.allclose(_cosines(out), _cosines(candidates), atol=1e-12)  # no angle changed
    assert torch.allclose(out.mean(1), candidates.mean(1), atol=1e-12)


def test_hydrogens_move_along_their_bonds_to_b0_and_padding_stays(sps: Path):
    top, x, ring, hydrogens = _ring(sps)
    fit = StepBondFit(top)
    carbons = [fit.partner[h] for h in hydrogens]
    assert all(c in ring for c in carbons)
    context_atom = torch.tensor([sorted(ring) + [-1]])  # the ring placed, then a bead
    context = torch.cat([x[sorted(ring)], torch.zeros(1, 3, dtype=torch.float64)]).unsqueeze(0)
    short = x[carbons] + 0.9 * (x[hydrogens] - x[carbons])  # [5, 3], bonds 0.097 nm
    seq = torch.tensor([hydrogens + [-1]])
    candidates = torch.cat([short, torch.full((1, 3), 7.0, dtype=torch.float64)]).view(1, 1, 6, 3)
    out = fit(candidates, seq, context_atom, context)[0, 0]
    bond = out[:5] - x[carbons]
    assert torch.allclose(bond.norm(dim=-1), torch.full((5,), 0.108, dtype=torch.float64), atol=1e-12)
    before = short - x[carbons]
    cos = (bond * before).sum(-1) / (bond.norm(dim=-1) * before.norm(dim=-1))
    assert float(cos.min()) > 1 - 1e-12  # along the bond only
    assert torch.equal(out[5], candidates[0, 0, 5])  # a padded slot is left alone


def test_a_step_without_bonds_among_its_atoms_is_left_alone(sps: Path):
    top, x, ring, _ = _ring(sps)
    fit = StepBondFit(top)
    lone = [ring[0]]
    candidates = x[lone].view(1, 1, 1, 3) + 0.01
    out = fit(candidates, torch.tensor([lone]), torch.tensor([[-1]]), torch.zeros(1, 1, 3))
    assert torch.equal(out, candidates)
