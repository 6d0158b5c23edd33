"""Tilted copies of a pendant step's candidates, so that the energy chooses the group's lean and tilt as well as
its turn (``SamplerConfig.pendant_tilt``).

Turning a full-size phenyl ring about its CH-ipso bond (``pendant_turns``) does not seat it among its neighbours:
what such a ring needs is a lean in its own plane and a tilt out of it, both at the ipso, which the voxel
generator cannot tell and hedges by drawing the ring small (docs/generator-diagnosis.md, sections 25-26). Each
candidate here gets four copies turned rigidly about the group's own atom of its holding bond (the ipso), by
``+-degrees`` about the group's normal (the in-plane lean: one C-C_AR-C_AR angle opens, the other closes) and
about the in-plane axis across the holding bond (the tilt: the ring bends out of line with its bond). The holding
bond and the angles at the atom it hangs on are kept; the group keeps its shape. It uses only the topology.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gdbm.physics.pendant_pivot import rotate_about
from gdbm.sampling.pendant_turns import PendantHolds
from gdbm.topology.topology import Topology

COPIES = 5  # the candidate, leaned +-, tilted +-


class PendantTilts(PendantHolds):
    """Per plan step, the bond that holds its heavy atoms, and the leaned and tilted copies of its candidates."""

    def __init__(self, top: Topology, step_atoms: Tensor, degrees: float):
        """``step_atoms [S, L]`` (-1 padded): the plan's steps; ``degrees``: the lean and tilt of the copies."""
        if not 0 < degrees < 90:
            raise ValueError(f"the tilt must be between 0 and 90 degrees, not {degrees}")
        super().__init__(top, step_atoms)
        self.copies = COPIES
        self.radians = math.radians(degrees)
        heavy = torch.tensor([element != "H" for element in top.elements])
        self.heavy = (step_atoms >= 0) & heavy[step_atoms.clamp(min=0)]  # [S, L] the slots that span the plane

    def __call__(self, local: Tensor, steps: Tensor, context_atom: Tensor, context: Tensor) -> Tensor:
        """``[B, K * 5, L, 3]``: candidates ``local [B, K, L, 3]`` of plan steps ``steps [B]`` and their copies
        (copy ``c`` of candidate ``k`` at ``c * K + k``: 0 the candidate, 1-2 leaned +-, 3-4 tilted +-). The
        items' environment atoms ``context_atom [B, P]`` (-1 for beads) sit at ``context [B, P, 3]`` (same frame);
        an item whose step is not pendant, or whose holding atom is not placed yet, gets unchanged copies."""
        b, k, length, _ = local.shape
        held, pivot, bond = self.holding_bond(local, steps, context_atom, context)  # [B], [B, K, 3] x2
        normal = _unit(_reject(_normals(local, self.heavy[steps]), bond))  # [B, K, 3] the plane's, across the bond
        across = torch.linalg.cross(bond, normal)  # [B, K, 3] in the plane, across the bond
        axes = torch.stack([normal, normal, across, across], 1)  # [B, 4, K, 3]
        angles = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=local.dtype) * self.radians  # [4]
        arms = (local - pivot.unsqueeze(2)).unsqueeze(1).expand(b, 4, k, length, 3)
        turned = pivot.view(b, 1, k, 1, 3) + rotate_about(arms, axes, angles.view(1, 4, 1).expand(b, 4, k))
        copies = torch.cat([local.unsqueeze(1), turned], 1)  # [B, 5, K, L, 3]
        out = torch.where(held.view(b, 1, 1, 1, 1), copies, local.unsqueeze(1))
        return out.reshape(b, self.copies * k, length, 3)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _reject(v: Tensor, unit: Tensor) -> Tensor:
    """``v`` less its part along ``unit`` (both ``[..., 3]``)."""
    return v - (v * unit).sum(-1, keepdim=True) * unit


def _normals(local: Tensor, mask: Tensor) -> Tensor:
    """``[B, K, 3]``: the direction of least spread of each candidate's ``mask [B, L]`` slots of ``local
    [B, K, L, 3]`` (a ring's normal)."""
    weight = mask.to(local.dtype).view(mask.shape[0], 1, -1, 1)  # [B, 1, L, 1]
    centre = (local * weight).sum(2, keepdim=True) / weight.sum(2, keepdim=True).clamp_min(1)
    arms = (local - centre) * weight  # [B, K, L, 3]
    _, vectors = torch.linalg.eigh(arms.transpose(-1, -2) @ arms)  # [B, K, 3, 3], ascending eigenvalues
    return vectors[..., 0]
