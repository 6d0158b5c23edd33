"""A library of AA/CG frame pairs: the seed of autoregressive backmapping (Sec. 8.1.1) and the
frame-based baseline of Sec. 8.3 (each CG frame gets the AA frame of its nearest library CG frame,
placed onto it).

Distances between CG structures are RMSDs of the bead positions in their local frames
(:func:`~gdbm.temporal.system.local_frames`), which superposes every structure once by its frame
beads instead of once per pair (the optimal superposition would need an SVD per pair: 10^4 x
4*10^4 of them for the held-out set).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gdbm.temporal.system import TemporalSystem, local_frames, to_lab, to_local


class FrameLibrary:
    """AA frames ``[L, n, 3]`` (lab) with their CG frames, searchable by CG structure."""

    def __init__(self, system: TemporalSystem, aa: Tensor) -> None:
        self.system = system
        cg = system.map(aa)  # [L, N, 3]
        origin, rot = local_frames(cg, system.frame_beads)
        self.cg_local = to_local(cg, origin, rot).flatten(1)  # [L, 3N]
        self.aa_local = to_local(aa, origin, rot)  # [L, n, 3]

    def __len__(self) -> int:
        return len(self.aa_local)

    def nearest(self, cg: Tensor, chunk: int = 2048) -> Tensor:
        """Index ``[B]`` of the library frame whose CG structure is closest to each of ``cg`` ``[B, N, 3]``."""
        origin, rot = local_frames(cg, self.system.frame_beads)
        query = to_local(cg, origin, rot).flatten(1)  # [B, 3N]
        return torch.cat([torch.cdist(q, self.cg_local).argmin(1) for q in query.split(chunk)])

    def place(self, cg: Tensor, constrain_hydrogens: bool = False) -> Tensor:
        """AA frames ``[B, n, 3]`` for CG frames ``[B, N, 3]``: the nearest library frame, rotated into the
        CG frame's axes and projected onto its beads (hydrogen bonds set to ``b0`` first, if asked)."""
        origin, rot = local_frames(cg, self.system.frame_beads)
        aa = to_lab(self.aa_local[self.nearest(cg)], origin, rot)
        if constrain_hydrogens:
            aa = self.system.constrain_hydrogens(aa)
        return self.system.project(aa, cg)
