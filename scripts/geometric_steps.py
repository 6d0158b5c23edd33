"""Cheap geometric steps applied to finished backmapped frames (the issue-18 post-hoc experiments).

Each step uses only the frames, the topology, and the CG input with the mapping that made it;
``--steps`` applies them in the order given:

- ``bonds``: every bond projected on its ``b0`` (``gdbm.physics.constraints``, as ``--constrain-bonds``);
- ``centres``: each CG bead's atoms moved mass-weighted so its centre sits on its CG position
  (``gdbm.physics.relax.CentreConstraint``, as ``gdbm backmap --hold-centres``);
- ``bonds+centres``: both, alternated until the centres are exact (as the sampler alternates them);
- ``pivot``: each side-group bead (all its atoms its own, joined to the rest by one bond; the sPS
  phenyl) turned rigidly about the outside atom of that bond until its centre points at its CG
  position: bond lengths kept, the bead's direction corrected, its distance from the pivot not
  (``gdbm.physics.pendant_pivot``, whose ``--hold-centres pivot`` turns about the bead's own atom instead);
- ``hydrogens``: every hydrogen rebuilt on its heavy atom from the topology's equilibrium geometry
  (:class:`HydrogenBuilder`).

None of them helps sPS (ISSUE18_REPORT.md): each trades CG consistency or bond lengths against
new close contacts and worse angles. The rebuilt hydrogens are wrong even on the reference
frames: they raise its LJ energy per chain from -210 to -134 kJ/mol (at 568 K real hydrogens lie
12 degrees on average off the ideal directions, away from their contacts).

    python scripts/geometric_steps.py --top S/topol.top --cg-map S/PS1_cg_fritz.map --cg T/cg.xtc \
        --cg-struct T/cg.gro --aa gen.xtc --aa-struct T/aa.gro --steps bonds,pivot -o out.xtc

The CG frames are matched to the AA frames from the first one (``--cg-first`` to shift).

Hydrogens on a heavy atom X, from the hydrogens' ``b0`` and the H-X-H ``theta0``: three heavy
neighbours and one H (a tetrahedral CH) or two heavy neighbours and one H (an aromatic CH): opposite
the sum of the unit vectors to the neighbours; two and two (a CH2): symmetric about the neighbours'
plane, each H kept on its input side; one and three (a CH3): the tetrahedral umbrella, the first H's
torsion kept. Other hydrogens are left where they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gdbm.physics.pendant_pivot import PendantPivot
from gdbm.utils.pbc import minimum_image
from gdbm.topology.hydrogens import TETRAHEDRAL, HydrogenGroups
from gdbm.topology.topology import Topology


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass
class _Group:
    """Heavy atoms with ``k`` heavy neighbours and ``h`` hydrogens, and their bond lengths / angles."""

    centre: Tensor  # [g]
    heavy: Tensor  # [g, k]
    hydrogens: Tensor  # [g, h]
    length: Tensor  # [g, h] nm, the X-H b0
    angle: Tensor  # [g] rad, H-X-H theta0 (CH2 only)


class HydrogenBuilder:
    """Rebuilds the hydrogens of ``top`` (see the module doc) in frames ``[F, n, 3]``."""

    SHAPES = ((3, 1), (2, 1), (2, 2), (1, 3))

    def __init__(self, top: Topology):
        table = HydrogenGroups.from_topology(top)  # b0, H-X-H theta0 and neighbours per heavy atom
        self.groups = {shape: _Group(*rows) for shape in self.SHAPES
                       if (rows := table.rows(*shape)) is not None}

    @property
    def n_hydrogens(self) -> int:
        return sum(g.hydrogens.numel() for g in self.groups.values())

    def __call__(self, positions: Tensor, boxes: Tensor) -> Tensor:
        """Positions ``[F, n, 3]`` with every supported hydrogen rebuilt (float64 arithmetic, input dtype out)."""
        x = positions.to(torch.float64).clone()
        box = boxes.to(torch.float64)
        for (k, h), g in self.groups.items():
            c = x[:, g.centre]  # [F, g, 3]
            u = _unit(minimum_image((x[:, g.heavy] - c.unsqueeze(2)).flatten(1, 2), box).unflatten(1, (-1, k)))
            old = minimum_image((x[:, g.hydrogens] - c.unsqueeze(2)).flatten(1, 2), box).unflatten(1, (-1, h))
            away = _unit(-u.sum(2))  # [F, g, 3] opposite the heavy neighbours
            if h == 1:
                direction = away.unsqueeze(2)
            elif h == 2:  # CH2: +-normal, keeping each H on its input side
                normal = _unit(torch.cross(u[:, :, 0], u[:, :, 1], dim=-1))
                side = torch.where(((old[:, :, 0] - old[:, :, 1]) * normal).sum(-1, keepdim=True) >= 0, 1.0, -1.0)
                half = (g.angle / 2).view(1, -1, 1)
                first = torch.cos(half) * away + torch.sin(half) * side * normal
                second = torch.cos(half) * away - torch.sin(half) * side * normal
                direction = torch.stack([first, second], 2)
            else:  # CH3: umbrella about the bond, the first H's torsion kept
                axis = away
                p = _unit(old[:, :, 0] - (old[:, :, 0] * axis).sum(-1, keepdim=True) * axis)
                q = torch.cross(axis, p, dim=-1)
                # the second H (in input order) goes to +120 degrees when it is on q's side, else -120
                sign = torch.where((old[:, :, 1] * q).sum(-1, keepdim=True) >= 0, 1.0, -1.0)
                tilt = math.pi - TETRAHEDRAL  # the H's angle from the axis
                sites = []
                for turn in (0.0, 2 * math.pi / 3, -2 * math.pi / 3):
                    t = turn * sign
                    sites.append(math.cos(tilt) * axis + math.sin(tilt) * (torch.cos(t) * p + torch.sin(t) * q))
                direction = torch.stack(sites, 2)
            x[:, g.hydrogens] = c.unsqueeze(2) + direction * g.length.view(1, -1, h, 1)
        return x.to(positions.dtype)


def constrain_hydrogen_bonds(positions: Tensor, boxes: Tensor, top: Topology) -> Tensor:
    """Positions ``[F, n, 3]`` with every bond to a hydrogen (under 1.5 u) at ``b0``, each hydrogen moved
    along its bond (no bond angle changes); what h-bond constraints hold in the reference MD."""
    from gdbm.physics.constraints import bond_constraints

    pairs, b0 = bond_constraints(top)
    light = top.masses[pairs] < 1.5  # [m, 2]
    one = light.sum(-1) == 1
    pairs, light, b0 = pairs[one], light[one], b0[one]
    hydrogen = torch.where(light[:, 0], pairs[:, 0], pairs[:, 1])
    heavy = torch.where(light[:, 0], pairs[:, 1], pairs[:, 0])
    bond = minimum_image(positions[:, hydrogen] - positions[:, heavy], boxes.to(positions.dtype))  # [F, m, 3]
    length = bond.norm(dim=-1, keepdim=True)  # [F, m, 1]
    out = positions.clone()  # each hydrogen keeps its periodic image
    out[:, hydrogen] += (b0.to(positions.dtype).view(1, -1, 1) - length) * bond / length.clamp_min(1e-9)
    return out


def main() -> None:
    import argparse

    from gdbm.data.frame_writer import write_frames
    from gdbm.data.trajectory import Frames, read_frames
    from gdbm.physics.constraints import constrain_bonds
    from gdbm.physics.relax import CentreConstraint, project_constraints
    from gdbm.topology.system import load_mapped_system

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--top", required=True)
    p.add_argument("--cg-map", required=True, help="the mapping that made the CG frames (may be partial)")
    p.add_argument("--cg", required=True)
    p.add_argument("--cg-struct")
    p.add_argument("--cg-first", type=int, default=0, help="the CG frame of the first AA frame (default 0)")
    p.add_argument("--aa", required=True)
    p.add_argument("--aa-struct")
    p.add_argument("--steps", required=True, help="comma-separated, in order: bonds, centres, bonds+centres (alternated), pivot, hydrogens, hbonds")
    p.add_argument("-o", "--output", required=True)
    a = p.parse_args()
    system = load_mapped_system(a.top, a.cg_map, partial=True)
    top, mapping = system.aa, system.mapping
    g = read_frames(a.aa, a.aa_struct)
    targets = read_frames(a.cg, a.cg_struct).positions[a.cg_first:a.cg_first + len(g)].double()
    x, box = g.positions.double(), g.boxes.double()
    for step in a.steps.split(","):
        if step == "bonds":
            x, _ = constrain_bonds(x, box, top)
        elif step == "centres":
            x = CentreConstraint(mapping, targets, top.masses).project(x, box)
        elif step == "bonds+centres":  # both, alternated as gdbm backmap --constrain-bonds --hold-centres does
            x = project_constraints(x, box, top, bonds=True, centres=CentreConstraint(mapping, targets, top.masses))
        elif step == "pivot":
            x = PendantPivot.of(mapping, top, about="outer").turn(x, box, targets)
        elif step == "hydrogens":
            x = HydrogenBuilder(top)(x, box)
        elif step == "hbonds":  # bonds to hydrogens only
            x = constrain_hydrogen_bonds(x, box, top)
        else:
            raise SystemExit(f"unknown step {step!r}")
    write_frames(a.output, Frames(x.float(), g.boxes, g.labels, g.names, g.resnames, g.resids), force=True)


if __name__ == "__main__":
    main()
