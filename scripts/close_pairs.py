"""Short non-bonded carbon distances of AA trajectories: the left edge of the carbon RDF, as numbers.

Counts, per frame, the carbon pairs more than three bonds apart (or in different molecules:
the pairs of ``gdbm eval``'s RDFs) closer than a few distances, and the closest pair. Used
for the morphing comparison in docs/morphing.md (thesis Sec. 7.3.4: does morphing suppress too-small
non-bonded distances?).

    python scripts/close_pairs.py --top topol.top --struct aa.gro --frames 0:3 NAME=TRAJ ...
"""

from __future__ import annotations

import argparse

import torch

from gdbm.data import read_frames
from gdbm.data.trajectory import frame_range
from gdbm.physics.neighbors import neighbor_pairs, pair_vectors
from gdbm.topology import read_topology
from gdbm.topology.paths import path_distance_pairs

THRESHOLDS = (0.30, 0.33, 0.36)  # nm


def close_carbon_distances(top, positions: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Distances (nm) of the non-bonded carbon pairs closer than the largest threshold, all frames."""
    carbon = torch.tensor([e == "C" for e in top.elements])
    near, _ = path_distance_pairs(top, 3)  # [m, 2] i < j, within three bonds
    n = top.n_atoms
    excluded = set((near[:, 0] * n + near[:, 1]).tolist())
    pairs = neighbor_pairs(positions, boxes, max(THRESHOLDS))
    r = pair_vectors(positions, boxes, pairs).norm(dim=-1)
    i, j = torch.minimum(pairs.i, pairs.j), torch.maximum(pairs.i, pairs.j)
    keep = carbon[i] & carbon[j] & (i != j) & torch.tensor([int(k) not in excluded for k in (i * n + j)],
                                                            dtype=torch.bool)
    return r[keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", required=True)
    parser.add_argument("--struct", required=True, help="structure file naming the atoms of the .xtc files")
    parser.add_argument("--frames", help="START:STOP of trajectories longer than the others")
    parser.add_argument("sets", nargs="+", metavar="NAME=TRAJ")
    args = parser.parse_args()
    top = read_topology(args.top)
    print("| set | " + " | ".join(f"C-C pairs < {t} nm /frame" for t in THRESHOLDS) + " | closest nm |")
    print("| --- |" + " --- |" * (len(THRESHOLDS) + 1))
    for item in args.sets:
        name, path = item.split("=", 1)
        frames = read_frames(path, args.struct)
        if args.frames:  # a file of only the window's frames is taken whole
            frames = frames.subset(frame_range(args.frames, len(frames)))
        r = close_carbon_distances(top, frames.positions, frames.boxes)
        counts = [float((r < t).sum()) / len(frames) for t in THRESHOLDS]
        print(f"| {name} | " + " | ".join(f"{c:.1f}" for c in counts) + f" | {float(r.min()):.3f} |")


if __name__ == "__main__":
    main()
