"""The stereocentre template of AA frames on disk (``--stereo-from``): the handedness to restore in generated frames."""

from __future__ import annotations

from pathlib import Path

from gdbm.data.trajectory import check_particle_count, read_frames
from gdbm.topology.stereo import StereoTemplate
from gdbm.topology.topology import Topology


def stereo_template_from_file(top: Topology, path: str | Path, structure: str | Path | None = None) -> StereoTemplate:
    """The handedness of every stereocentre in the AA frames of ``path`` (a structure file, or a
    trajectory with its ``structure``), per molecule type of ``top``."""
    frames = read_frames(path, structure)
    check_particle_count(frames, top.n_atoms, "the topology", path)
    return StereoTemplate.from_frames([(top, frames.positions, frames.boxes)])
