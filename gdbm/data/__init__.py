"""Coordinate frames (MDAnalysis) and datasets of training samples."""

from gdbm.data.trajectory import Frames, read_frames, write_frames

__all__ = ["Frames", "read_frames", "write_frames"]
