"""AA frames -> CG frames by a mapping: the encoder of morphing (thesis Ch. 7) and of any on-the-fly CG input.

The bead positions are the mapping's centres (:meth:`gdbm.topology.mapping.SystemMapping.map_positions`,
periodic boundaries included), computed in float64 from the float32 file coordinates; names,
residue names and ids come from the CG topology, boxes and labels from the AA frames.
"""

from __future__ import annotations

import torch

from gdbm.data.trajectory import Frames
from gdbm.topology.system import MappedSystem
from gdbm.utils.errors import InputError


def coarse_grain(frames: Frames, system: MappedSystem) -> Frames:
    """The CG frames ``[F, n_beads, 3]`` of AA frames ``[F, n_atoms, 3]`` by ``system``'s mapping."""
    mapping, cg = system.mapping, system.cg
    if frames.n_particles != mapping.n_atoms:
        raise InputError(f"the frames hold {frames.n_particles} atoms per frame but the mapping has "
                         f"{mapping.n_atoms}; expected the mapping's atoms")
    beads = mapping.map_positions(frames.positions.double(), frames.boxes.double())  # [F, n_beads, 3]
    return Frames(beads.to(torch.float32), frames.boxes.clone(), list(frames.labels), list(cg.names),
                  list(cg.resnames), cg.resids.tolist())
