"""The DBM conditioner: Gaussian voxelisation of local environments and residual 3D-CNN generator / critic."""

from gdbm.conditioners.voxel.blocks import ConvNormAct, DenseToGrid, DensityHead, Resample3d, ResBlock3d, ResStack, norm3d
from gdbm.conditioners.voxel.config import DBM_SIGMA_NM, VoxelConfig
from gdbm.conditioners.voxel.grid import VoxelGrid
from gdbm.conditioners.voxel.networks import VoxelCritic, VoxelGenerator, build_voxel_conditioner

__all__ = ["DBM_SIGMA_NM", "ConvNormAct", "DenseToGrid", "DensityHead", "Resample3d", "ResBlock3d", "ResStack",
           "VoxelConfig", "VoxelCritic", "VoxelGenerator", "VoxelGrid", "build_voxel_conditioner", "norm3d"]
