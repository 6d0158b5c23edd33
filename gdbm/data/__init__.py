"""Coordinate frames (MDAnalysis), local environments and training samples."""

from gdbm.data.environment import Environment, EnvironmentConfig, LocalFrames, local_environments
from gdbm.data.features import FeatureSpec, SystemFeatures
from gdbm.data.samples import (SequenceBatch, SequenceDataset, SequenceSample, collate, particles_for_step,
                               prior_energies, prior_positions)
from gdbm.data.frame_writer import write_frames
from gdbm.data.trajectory import Frames, read_frames

__all__ = [
    "Environment", "EnvironmentConfig", "FeatureSpec", "Frames", "LocalFrames", "SequenceBatch", "SequenceDataset",
    "SequenceSample", "SystemFeatures", "collate", "local_environments", "particles_for_step", "prior_energies",
    "prior_positions", "read_frames", "write_frames",
]
