"""Force-field energies per frame and term (``gdbm energy``)."""

from __future__ import annotations

import torch
from gdbm.utils.progress import tqdm

from gdbm.data.trajectory import Frames
from gdbm.physics import EnergyModel
from gdbm.topology.topology import Topology


def frame_energies(topology: Topology, frames: Frames, cutoff: float = 1.0, coulomb: str = "none",
                   epsilon_rf: float = float("inf")) -> list[dict[str, float]]:
    """``[{term: kJ/mol}]`` per frame, in float64 from the float32 file coordinates (constrained bonds
    sit within 1e-4 nm of b0); a frame with an all-zero box is computed without periodicity."""
    model = EnergyModel(topology, cutoff=cutoff, coulomb=coulomb, epsilon_rf=epsilon_rf)
    rows = []
    with torch.no_grad():
        for f in tqdm(range(len(frames)), desc="energy", unit="frame", disable=None):
            box = frames.boxes[f].double()
            energies = model(frames.positions[f].double(), box if bool(box.any()) else None)
            rows.append({name: float(value) for name, value in energies.as_dict().items()})
    return rows
