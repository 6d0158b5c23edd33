"""Temporally coherent trajectory backmapping (thesis Chapter 8): a conditional VAE over voxel grids
that builds each AA frame from the current CG frame and the previous AA frame."""
