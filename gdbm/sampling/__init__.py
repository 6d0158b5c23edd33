"""Backmapping with a trained model: the sampler (forward pass, Gibbs sweeps, candidate selection),
jobs over many frames and processes, refinement of the output, morphing between CG resolutions."""
