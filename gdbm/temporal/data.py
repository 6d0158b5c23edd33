"""Training pairs of consecutive frames, in the local frame of the later one.

From a trajectory ``[T, n, 3]``: for each t >= 1 the CG frame ``R_t``, the previous AA frame
``r_{t-1}`` and the target ``r_t``, all in the axes fixed by ``R_t`` (:func:`local_frames`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from gdbm.temporal.system import TemporalSystem, local_frames, to_local


@dataclass
class Pairs:
    cg: Tensor  # [T-1, N, 3] local
    prev: Tensor  # [T-1, n, 3] local
    target: Tensor  # [T-1, n, 3] local

    def __len__(self) -> int:
        return len(self.cg)

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.cg[index], self.prev[index], self.target[index]


def make_pairs(system: TemporalSystem, positions: Tensor) -> Pairs:
    """Consecutive-frame pairs of one trajectory ``[T, n, 3]`` (nm, whole molecule, no PBC)."""
    cg = system.map(positions)  # [T, N, 3]
    origin, rot = local_frames(cg[1:], system.frame_beads)  # [T-1, 3], [T-1, 3, 3]
    return Pairs(to_local(cg[1:], origin, rot), to_local(positions[:-1], origin, rot),
                 to_local(positions[1:], origin, rot))
