"""How a phenyl ring sits on its backbone CH: the junction angle, its CG-bead line, and the ring's tilt.

The junction angle CH2-CH-ipso (C-C-C_AR) is the one per-type angle where the raw generator stays behind
DBM on sPS (docs/generator-diagnosis.md, sections 16-22). This measures where its spread comes from, on
any frames of a system whose rings hang off a backbone carbon (types C and C_AR, e.g. PS1):

- junction: the angle CH2-CH-ipso, every CH2 neighbour;
- line: the same angle with the ipso moved onto the line from the CH to its ring bead's CG position (the
  junction a ring would have if it pointed straight at its bead);
- rms(junction - line): how far the ring's ipso leaves that line, pair by pair;
- tilt: the angle between CH->ipso and ipso->ring centroid; rms over rings (a ring that takes up its bead's
  scatter tilts, one that follows its bead does not).

    python scripts/sps_junction.py --top topol.top --map PS1.map --cg cg.xtc --cg-struct cg.gro --frames 0:2 \
        reference=aa.xtc@aa.gro generated=out.xtc@aa.gro

Each set is NAME=TRAJECTORY[@STRUCTURE]; frames are taken as the window of the CG trajectory.
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from gdbm.data.trajectory import frame_range, read_frames
from gdbm.physics.bonded import angle as bond_angle
from gdbm.topology.system import load_mapped_system
from gdbm.utils.pbc import minimum_image

CH_IPSO_BOND = 0.151  # nm, where the line's ipso is put (the C-C_AR bond's b0 in PS1)


def ring_sites(top, home_bead: Tensor) -> dict[str, Tensor]:
    """Index tensors: junction angles (CH2, CH, ipso) and the rings (CH, ipso, 6 ring carbons, ring bead)."""
    neighbours: list[list[int]] = [[] for _ in range(top.n_atoms)]
    for i, j in top.connectivity.tolist():
        neighbours[i].append(j)
        neighbours[j].append(i)
    junctions, rings = [], []
    for ipso, atom_type in enumerate(top.types):
        if atom_type != "C_AR":
            continue
        ch = [n for n in neighbours[ipso] if top.types[n] == "C"]
        if not ch:
            continue
        ring, frontier = {ipso}, [ipso]
        while frontier:
            frontier = [n for a in frontier for n in neighbours[a] if top.types[n] == "C_AR" and n not in ring]
            ring.update(frontier)
        if len(ring) != 6:
            raise ValueError(f"atom {ipso}: a ring of {len(ring)} aromatic carbons, not 6")
        rings.append([ch[0], ipso, *sorted(ring), int(home_bead[ipso])])
        junctions += [[n, ch[0], ipso] for n in neighbours[ch[0]] if top.types[n] == "C"]
    return {"junction": torch.tensor(junctions), "ring": torch.tensor(rings)}


def angle(a: Tensor, b: Tensor) -> Tensor:
    """Angle between vectors ``a`` and ``b`` ``[..., 3]`` from a common atom, degrees ``[...]``."""
    return torch.rad2deg(bond_angle(torch.stack([-a, b], -2)))  # as a bond angle: chain vectors i->j, j->k


def measure(aa: Tensor, cg: Tensor, boxes: Tensor, sites: dict[str, Tensor]) -> dict[str, float]:
    """aa [F, n, 3], cg [F, beads, 3], boxes [F, 3, 3] -> the junction's and tilt's statistics."""
    aa, cg = aa.double(), cg.double()
    box = boxes.double()  # [F, 3, 3]
    j, r = sites["junction"], sites["ring"]
    ring_of_ch = {int(ch): k for k, ch in enumerate(r[:, 0])}
    k = torch.tensor([ring_of_ch[int(ch)] for ch in j[:, 1]])
    to_ch2 = minimum_image(aa[:, j[:, 0]] - aa[:, j[:, 1]], box)  # [F, J, 3]
    to_ipso = minimum_image(aa[:, j[:, 2]] - aa[:, j[:, 1]], box)
    to_bead = minimum_image(cg[:, r[k, 8]] - aa[:, j[:, 1]], box)
    junction = angle(to_ch2, to_ipso)  # [F, J]
    line = angle(to_ch2, CH_IPSO_BOND * to_bead / to_bead.norm(dim=-1, keepdim=True))
    ch_ipso = minimum_image(aa[:, r[:, 1]] - aa[:, r[:, 0]], box)  # [F, R, 3]
    f, n_rings = aa.shape[0], len(r)
    spokes = minimum_image((aa[:, r[:, 2:8]] - aa[:, r[:, 1:2]]).reshape(f, n_rings * 6, 3), box)
    ring = aa[:, r[:, 1:2]] + spokes.reshape(f, n_rings, 6, 3)  # [F, R, 6, 3], whole rings
    tilt = angle(ch_ipso, ring.mean(2) - aa[:, r[:, 1]])  # [F, R]
    return {"junction mean": float(junction.mean()), "junction std": float(junction.std()),
            "line mean": float(line.mean()), "line std": float(line.std()),
            "rms(junction - line)": float((junction - line).pow(2).mean().sqrt()),
            "tilt rms": float(tilt.pow(2).mean().sqrt()), "angles": junction.numel()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--top", required=True)
    p.add_argument("--map", required=True, help="the mapping whose beads the rings are homed on (PS1.map)")
    p.add_argument("--cg", required=True)
    p.add_argument("--cg-struct")
    p.add_argument("--frames", default=":", help="window of the CG trajectory, e.g. 0:2")
    p.add_argument("sets", nargs="+", metavar="NAME=TRAJ[@STRUCT]")
    args = p.parse_args()
    system = load_mapped_system(args.top, args.map)
    sites = ring_sites(system.aa, system.mapping.home_bead)
    cg = read_frames(args.cg, args.cg_struct)
    window = frame_range(args.frames, len(cg))
    cg_pos, boxes = cg.positions[window], cg.boxes[window]
    print("| set | junction, degrees | line angle | rms(junction - line) | tilt rms | angles |")
    print("| --- | --- | --- | --- | --- | --- |")
    for spec in args.sets:
        name, _, path = spec.partition("=")
        traj, _, struct = path.partition("@")
        frames = read_frames(traj, struct or None)
        aa = frames.positions if len(frames) == len(cg_pos) else frames.positions[window]
        m = measure(aa, cg_pos, boxes, sites)
        print(f"| {name} | {m['junction mean']:.1f} ± {m['junction std']:.2f} | {m['line mean']:.1f} ± "
              f"{m['line std']:.2f} | {m['rms(junction - line)']:.2f} | {m['tilt rms']:.1f} | {m['angles']} |")


if __name__ == "__main__":
    main()
